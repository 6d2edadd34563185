//! The embedded records service's store: DRF-shaped `sequences` and `films`, kept in a local
//! SQLite file (the default, [`sqlite`]) or in PostgreSQL (`records_db = "postgres://..."`,
//! [`postgres`]), which several filmgate nodes may share.
//!
//! [`RecordsStore`] is the one handle the HTTP layer uses; it answers the same on both
//! backends. Both follow the same rules:
//! - a write is answered only after its COMMIT, so a 201 never names a row that is not stored;
//! - writes are group-committed by one writer per node (every request already waiting goes
//!   into one transaction);
//! - reads run off the HTTP workers' event loops, at most [`MAX_CONCURRENT_READS`] at a time;
//! - the unfiltered row counts and the highest ids are kept in memory (`Totals`) and, on
//!   PostgreSQL, in a one-row table, so `count` never needs a `COUNT(*)` over millions of rows
//!   and change detection (refresh, SSE) is two loads.

pub mod input;
pub mod postgres;
mod rows;
pub mod sqlite;

pub use input::{FieldErrors, NewFilm, NewSequence};
pub use rows::{FilmRejected, FilmRow, ListFilter, RecordWrite, Saved, SequenceRow, WriteAnswer};

use filmgate_actors::changes::Changes;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Reads run at once, each with its own connection: a burst of requests waits its turn as
/// cheap futures instead of taking hundreds of threads, file descriptors or connections.
pub const MAX_CONCURRENT_READS: usize = 4;

/// Write requests waiting for the writer; senders wait when it is full (back-pressure).
const WRITE_QUEUE_CAPACITY: usize = 4096;

/// Most write requests one group commit takes, so one commit never grows unbounded.
const MAX_GROUP_REQUESTS: usize = 1024;

/// Films beyond which a group commit takes no more requests (a batch is at most 1,000), so
/// one transaction, one statement and one hold of PostgreSQL's write lock stay bounded.
const MAX_GROUP_FILMS: usize = 10_000;

/// Where the records live, as `web.records_db` names it; read once at load.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RecordsDb {
    /// A SQLite file (created with its parent directory when missing).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl RecordsDb {
    /// Reads `web.records_db`: a URL with a PostgreSQL scheme, else a file path.
    pub fn parse(text: &str) -> Result<RecordsDb, String> {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            postgres::check_url(text)?;
            Ok(RecordsDb::Postgres(text.to_owned()))
        } else if lower.contains("://") {
            Err(format!(
                "a SQLite file path or a postgres:// URL, found the scheme of {:?}",
                filmgate_actors::redact::redact_url(text)
            ))
        } else if text.trim().is_empty() {
            Err("a SQLite file path or a postgres:// URL".into())
        } else {
            Ok(RecordsDb::Sqlite(PathBuf::from(text)))
        }
    }
}

impl TryFrom<String> for RecordsDb {
    type Error = String;

    fn try_from(text: String) -> Result<RecordsDb, String> {
        RecordsDb::parse(&text)
    }
}

impl From<RecordsDb> for String {
    fn from(db: RecordsDb) -> String {
        db.to_string()
    }
}

impl std::fmt::Debug for RecordsDb {
    /// Without the URL's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordsDb::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            RecordsDb::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&filmgate_actors::redact::redact_url(url))
                .finish(),
        }
    }
}

impl std::fmt::Display for RecordsDb {
    /// As written in the config (a URL with its password: redact it before showing it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordsDb::Sqlite(path) => write!(f, "{}", path.display()),
            RecordsDb::Postgres(url) => f.write_str(url),
        }
    }
}

/// What can go wrong with the records store.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The database could not be created, reached or migrated at start (the cause is the
    /// error's source).
    #[error("cannot open the records store at {path}")]
    Open {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A query or the group commit failed (disk full, I/O error, database down).
    #[error("records store failed: {0}")]
    Store(String),
    /// The writer is gone (it only stops when every handle is dropped).
    #[error("records writer is not running")]
    WriterGone,
}

impl From<rusqlite::Error> for RecordsError {
    fn from(e: rusqlite::Error) -> Self {
        RecordsError::Store(e.to_string())
    }
}

/// One page of rows with the count of all rows the filter selects.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub count: u64,
    pub results: Vec<T>,
}

/// Row counts and highest ids of both tables.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TableCounts {
    pub sequences: u64,
    pub films: u64,
    /// Highest sequence id (0 when none).
    pub max_sequence_id: i64,
    /// Highest film id (0 when none).
    pub max_film_id: i64,
}

/// The committed [`TableCounts`] in memory, shared by the writer and the readers. Rows are never
/// deleted, so every value only grows: a stale update can never move them back.
#[derive(Debug, Default)]
struct Totals {
    sequences: AtomicU64,
    films: AtomicU64,
    max_sequence_id: AtomicI64,
    max_film_id: AtomicI64,
    /// Signalled when a value rises (new rows, from this node or, on PostgreSQL, another).
    changes: Changes,
}

impl Totals {
    fn new(counts: TableCounts) -> Totals {
        let totals = Totals::default();
        totals.raise(counts);
        totals
    }

    /// Raises each value to at least the one in `counts`.
    fn raise(&self, counts: TableCounts) {
        let before = TableCounts {
            sequences: self
                .sequences
                .fetch_max(counts.sequences, Ordering::Relaxed),
            films: self.films.fetch_max(counts.films, Ordering::Relaxed),
            max_sequence_id: self
                .max_sequence_id
                .fetch_max(counts.max_sequence_id, Ordering::Release),
            max_film_id: self
                .max_film_id
                .fetch_max(counts.max_film_id, Ordering::Release),
        };
        let risen = counts.sequences > before.sequences
            || counts.films > before.films
            || counts.max_sequence_id > before.max_sequence_id
            || counts.max_film_id > before.max_film_id;
        if risen {
            self.changes.notify();
        }
    }

    fn get(&self) -> TableCounts {
        TableCounts {
            sequences: self.sequences.load(Ordering::Relaxed),
            films: self.films.load(Ordering::Relaxed),
            max_sequence_id: self.max_sequence_id.load(Ordering::Acquire),
            max_film_id: self.max_film_id.load(Ordering::Acquire),
        }
    }
}

/// Handle to the records store; cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct RecordsStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::SqliteRecords),
    Postgres(postgres::PgRecords),
}

/// Calls the same method on whichever backend is behind the store.
macro_rules! on_backend {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($store) => $call,
            Backend::Postgres($store) => $call,
        }
    };
}

impl RecordsStore {
    /// Opens the store `db` names: creates the SQLite file and schema, or connects to
    /// PostgreSQL and runs its migrations; then starts the writer.
    pub fn open(db: &RecordsDb) -> Result<RecordsStore, RecordsError> {
        let backend = match db {
            RecordsDb::Sqlite(path) => Backend::Sqlite(sqlite::SqliteRecords::open(path)?),
            RecordsDb::Postgres(url) => Backend::Postgres(postgres::PgRecords::open(url)?),
        };
        Ok(RecordsStore { backend })
    }

    /// Opens a SQLite store at `path`.
    pub fn open_sqlite(path: &std::path::Path) -> Result<RecordsStore, RecordsError> {
        RecordsStore::open(&RecordsDb::Sqlite(path.to_owned()))
    }

    /// Creates a sequence, or returns the stored one with the same uid. Answers after commit.
    pub async fn create_sequence(
        &self,
        new: NewSequence,
    ) -> Result<Saved<SequenceRow>, RecordsError> {
        match self.write(RecordWrite::Sequence(new)).await? {
            WriteAnswer::Sequence(saved) => Ok(saved),
            WriteAnswer::Films(_) => Err(wrong_answer()),
        }
    }

    /// Creates films in one commit, answering per film in order. Answers after commit.
    pub async fn create_films(
        &self,
        new: Vec<NewFilm>,
    ) -> Result<Vec<Result<Saved<FilmRow>, FilmRejected>>, RecordsError> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(RecordWrite::Films(new)).await? {
            WriteAnswer::Films(results) => Ok(results),
            WriteAnswer::Sequence(_) => Err(wrong_answer()),
        }
    }

    async fn write(&self, op: RecordWrite) -> Result<WriteAnswer, RecordsError> {
        on_backend!(self, store => store.write(op).await)
    }

    /// One page of films (newest first, or ascending after `since_id`) and the filter's count.
    pub async fn list_films(&self, filter: ListFilter) -> Result<Page<FilmRow>, RecordsError> {
        on_backend!(self, store => store.list_films(filter).await)
    }

    /// One page of sequences (newest first, or ascending after `since_id`).
    pub async fn list_sequences(
        &self,
        filter: ListFilter,
    ) -> Result<Page<SequenceRow>, RecordsError> {
        on_backend!(self, store => store.list_sequences(filter).await)
    }

    /// Films and sequences for a refresh: after the given ids ascending (capped at `limit`),
    /// or, without ids, the newest `limit` of each.
    pub async fn changes(
        &self,
        after: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<(Vec<SequenceRow>, Vec<FilmRow>), RecordsError> {
        let filter = |since_id: Option<i64>| ListFilter {
            since_id,
            limit,
            ..Default::default()
        };
        let (sequences, films) = match after {
            Some((s, f)) => (filter(Some(s)), filter(Some(f))),
            None => (filter(None), filter(None)),
        };
        on_backend!(self, store => store.changes(sequences, films).await)
    }

    pub async fn film(&self, id: i64) -> Result<Option<FilmRow>, RecordsError> {
        on_backend!(self, store => store.film(id).await)
    }

    pub async fn sequence(&self, id: i64) -> Result<Option<SequenceRow>, RecordsError> {
        on_backend!(self, store => store.sequence(id).await)
    }

    /// Films stored (committed), from memory.
    pub fn films_total(&self) -> u64 {
        self.totals().films
    }

    /// Sequences stored (committed), from memory.
    pub fn sequences_total(&self) -> u64 {
        self.totals().sequences
    }

    /// `(highest sequence id, highest film id)` committed so far, from memory. On PostgreSQL
    /// this includes other nodes' rows within [`postgres::TOTALS_POLL_INTERVAL`].
    pub fn latest_ids(&self) -> (i64, i64) {
        let t = self.totals();
        (t.max_sequence_id, t.max_film_id)
    }

    /// Signalled when rows are added (by this node, or by another on the same database).
    pub fn change_signal(&self) -> &Changes {
        on_backend!(self, store => store.change_signal())
    }

    fn totals(&self) -> TableCounts {
        on_backend!(self, store => store.totals())
    }
}

fn wrong_answer() -> RecordsError {
    RecordsError::Store("writer answered the wrong kind".into())
}

/// One request to a writer.
struct WriteJob {
    op: RecordWrite,
    reply: tokio::sync::oneshot::Sender<Result<WriteAnswer, RecordsError>>,
}

/// Sends `op` to a writer and waits for its answer.
async fn send_to_writer(
    writer: &tokio::sync::mpsc::Sender<WriteJob>,
    op: RecordWrite,
) -> Result<WriteAnswer, RecordsError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    writer
        .send(WriteJob { op, reply })
        .await
        .map_err(|_| RecordsError::WriterGone)?;
    answer.await.map_err(|_| RecordsError::WriterGone)?
}

/// `first` and every write request already queued behind it, up to [`MAX_GROUP_REQUESTS`]
/// requests or [`MAX_GROUP_FILMS`] films: the requests of one group commit.
fn take_group(first: WriteJob, rx: &mut tokio::sync::mpsc::Receiver<WriteJob>) -> Vec<WriteJob> {
    let films = |job: &WriteJob| match &job.op {
        RecordWrite::Films(films) => films.len(),
        RecordWrite::Sequence(_) => 0,
    };
    let mut group_films = films(&first);
    let mut jobs = vec![first];
    while jobs.len() < MAX_GROUP_REQUESTS && group_films < MAX_GROUP_FILMS {
        match rx.try_recv() {
            Ok(job) => {
                group_films += films(&job);
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs
}

/// Answers each job of a group: with its own answer after a commit, or with the group's error.
fn answer_group(jobs: Vec<WriteJob>, result: Result<Vec<WriteAnswer>, RecordsError>) {
    match result {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                // A client that went away no longer waits for its answer; its row is stored
                // all the same and a retry will be answered as a replay.
                let _ = job.reply.send(Ok(answer));
            }
        }
        Err(e) => {
            log::error!(
                target: crate::log_targets::RECORDS_STORE,
                "records store: group commit of {} requests failed: {e}",
                jobs.len()
            );
            let text = match e {
                RecordsError::Store(text) => text,
                other => other.to_string(),
            };
            for job in jobs {
                let _ = job.reply.send(Err(RecordsError::Store(text.clone())));
            }
        }
    }
}
