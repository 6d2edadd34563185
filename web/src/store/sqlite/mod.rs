//! The SQLite records backend: both tables in one local file, for a gateway's own embedded
//! records service (the default).
//!
//! Writes go over a channel to one dedicated writer thread, which group-commits them (see
//! [`super`]). Durability choice: WAL with `synchronous=NORMAL`. A committed transaction
//! survives a process crash (`kill -9`): the WAL is written before COMMIT returns, only the
//! fsync is deferred to checkpoints. A power cut may lose the last commits; the gateway's own
//! queue (which uses `synchronous=FULL`) still holds those films and the uid makes the re-post
//! a replay. A commit with fsync per request would cap throughput far below the spec's targets.
//!
//! Reads use a small pool of separate read-only connections and run on the blocking thread
//! pool (`web::block`), never on the async workers.

pub mod sql;

use super::{
    FilmRow, ListFilter, MAX_CONCURRENT_READS, Page, RecordWrite, RecordsError, SequenceRow,
    TableCounts, Totals, WRITE_QUEUE_CAPACITY, WriteAnswer, WriteJob,
};
use filmgate_actors::changes::Changes;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

struct Shared {
    path: PathBuf,
    writer: mpsc::Sender<WriteJob>,
    idle_readers: Mutex<Vec<rusqlite::Connection>>,
    /// Bounds the reads in progress to [`MAX_CONCURRENT_READS`].
    read_permits: Arc<tokio::sync::Semaphore>,
    totals: Arc<Totals>,
}

/// The SQLite backend of [`super::RecordsStore`].
#[derive(Clone)]
pub struct SqliteRecords {
    shared: Arc<Shared>,
}

impl SqliteRecords {
    /// Opens (creating the file, its parent directory and the schema if needed) and starts
    /// the writer thread. Reads the row counts once, which scans an index: at millions of
    /// films this takes a fraction of a second, at startup only.
    pub fn open(path: &Path) -> Result<SqliteRecords, RecordsError> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| RecordsError::Open {
            path: path.display().to_string(),
            source: e,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.into()))?;
        }
        let mut conn = sql::open_writer(path).map_err(|e| open_err(e.into()))?;
        let counts = sql::counts(&conn).map_err(|e| open_err(e.into()))?;
        let totals = Arc::new(Totals::new(counts));
        let reader = sql::open_reader(path).map_err(|e| open_err(e.into()))?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let writer_totals = totals.clone();
        std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || run_writer(&mut conn, rx, &writer_totals))
            .map_err(|e| open_err(e.into()))?;
        Ok(SqliteRecords {
            shared: Arc::new(Shared {
                path: path.to_owned(),
                writer: tx,
                idle_readers: Mutex::new(vec![reader]),
                read_permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_READS)),
                totals,
            }),
        })
    }

    pub(super) async fn write(&self, op: RecordWrite) -> Result<WriteAnswer, RecordsError> {
        super::send_to_writer(&self.shared.writer, op).await
    }

    pub(super) fn totals(&self) -> TableCounts {
        self.shared.totals.get()
    }

    pub(super) fn change_signal(&self) -> &Changes {
        &self.shared.totals.changes
    }

    /// A page of films; the unfiltered count is the committed total, from memory.
    pub(super) async fn list_films(
        &self,
        filter: ListFilter,
    ) -> Result<Page<FilmRow>, RecordsError> {
        let total = self.totals().films;
        self.read(move |conn| {
            let results = sql::list_films(conn, &filter)?;
            let count = if filter.selects_all_films() {
                total
            } else {
                sql::count_films(conn, &filter)?
            };
            Ok(Page { count, results })
        })
        .await
    }

    pub(super) async fn list_sequences(
        &self,
        filter: ListFilter,
    ) -> Result<Page<SequenceRow>, RecordsError> {
        let total = self.totals().sequences;
        self.read(move |conn| {
            let results = sql::list_sequences(conn, &filter)?;
            let count = if filter.selects_all_sequences() {
                total
            } else {
                sql::count_sequences(conn, &filter)?
            };
            Ok(Page { count, results })
        })
        .await
    }

    pub(super) async fn changes(
        &self,
        sequences: ListFilter,
        films: ListFilter,
    ) -> Result<(Vec<SequenceRow>, Vec<FilmRow>), RecordsError> {
        self.read(move |conn| {
            Ok((
                sql::list_sequences(conn, &sequences)?,
                sql::list_films(conn, &films)?,
            ))
        })
        .await
    }

    pub(super) async fn film(&self, id: i64) -> Result<Option<FilmRow>, RecordsError> {
        self.read(move |conn| Ok(sql::film_by_id(conn, id)?)).await
    }

    pub(super) async fn sequence(&self, id: i64) -> Result<Option<SequenceRow>, RecordsError> {
        self.read(move |conn| Ok(sql::sequence_by_id(conn, id)?))
            .await
    }

    /// Runs `f` with a pooled read connection on the blocking thread pool.
    async fn read<T, F>(&self, f: F) -> Result<T, RecordsError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, RecordsError> + Send + 'static,
    {
        let shared = self.shared.clone();
        let permit = shared
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| RecordsError::Store(format!("read permits closed: {e}")))?;
        actix_web::web::block(move || {
            let _permit = permit;
            let pooled = shared
                .idle_readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => sql::open_reader(&shared.path)?,
            };
            let result = f(&conn);
            let mut idle = shared
                .idle_readers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| RecordsError::Store(format!("read task failed: {e}")))?
    }
}

/// The writer thread: group-commits queued requests until every handle is dropped.
fn run_writer(conn: &mut rusqlite::Connection, mut rx: mpsc::Receiver<WriteJob>, totals: &Totals) {
    while let Some(first) = rx.blocking_recv() {
        let jobs = super::take_group(first, &mut rx);
        let ops: Vec<&RecordWrite> = jobs.iter().map(|j| &j.op).collect();
        let result = sql::write_group(conn, &ops).map(|(answers, added)| {
            let before = totals.get();
            totals.raise(TableCounts {
                sequences: before.sequences + added.sequences,
                films: before.films + added.films,
                ..added
            });
            answers
        });
        super::answer_group(jobs, result.map_err(RecordsError::from));
    }
}
