//! The PostgreSQL records backend: the rows in a database that several filmgate nodes share.
//!
//! All database work runs on a small runtime of its own (`records-pg` threads), never on the
//! HTTP workers: the handle sends a future there and awaits its answer. A bounded pool holds
//! the connections (`POOL_SIZE`); each wait for one is bounded by [`POOL_WAIT`], sessions
//! carry server-side limits (`SESSION_OPTIONS`) and every request is answered within
//! [`REQUEST_TIMEOUT`]. So when the database is down or restarting a request gets a 503 (the
//! gateways retry), and the next one after it is back gets a fresh connection: the node
//! recovers by itself.
//!
//! Writes are group-committed by one writer task per node; uid uniqueness is the database's
//! (a unique index), and the ids are in commit order across nodes (see [`sql`]). Each node
//! reads the committed totals back after its own commits and every
//! [`TOTALS_POLL_INTERVAL`], which is how rows other nodes commit reach its refresh and SSE.

pub mod schema;
pub mod sql;

use super::{
    FilmRow, ListFilter, MAX_CONCURRENT_READS, Page, RecordWrite, RecordsError, SequenceRow,
    TableCounts, Totals, WRITE_QUEUE_CAPACITY, WriteAnswer, WriteJob,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use filmgate_actors::changes::Changes;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Connections per node: the reads, the writer and the totals poll.
const POOL_SIZE: usize = MAX_CONCURRENT_READS + 2;

/// Longest wait for a pooled connection, or to open one (unless the URL sets
/// `connect_timeout`).
pub const POOL_WAIT: Duration = Duration::from_secs(5);

/// How often a node reads the totals other nodes may have raised.
pub const TOTALS_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Server-side limits every session gets (before any `options` the URL sets, which win): a
/// node that freezes or loses its network mid-transaction loses its session, and with it the
/// write lock, in seconds rather than when TCP keepalive gives up hours later; no statement or
/// lock wait hangs a writer for good.
const SESSION_OPTIONS: &str = "-c lock_timeout=10s -c statement_timeout=30s \
     -c idle_in_transaction_session_timeout=10s";

/// Longest a write or a read may take in all, waiting included, before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

/// Checks that `url` is a PostgreSQL connection URL this driver accepts.
pub fn check_url(url: &str) -> Result<(), String> {
    tokio_postgres::Config::from_str(url)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "a postgres://user:password@host:port/database URL ({e}), found {:?}",
                filmgate_actors::redact::redact_url(url)
            )
        })
}

/// The runtime the database work runs on; shut down without waiting when the last handle goes.
struct DbRuntime {
    /// Taken only by `drop`.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl DbRuntime {
    fn new(runtime: tokio::runtime::Runtime) -> DbRuntime {
        DbRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        }
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for DbRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct Shared {
    runtime: DbRuntime,
    pool: Pool,
    writer: mpsc::Sender<WriteJob>,
    read_permits: Arc<tokio::sync::Semaphore>,
    totals: Arc<Totals>,
}

/// The PostgreSQL backend of [`super::RecordsStore`].
#[derive(Clone)]
pub struct PgRecords {
    shared: Arc<Shared>,
}

impl PgRecords {
    /// Connects, applies the migrations, reads the totals and starts the writer and the
    /// totals poll. Fails when the database cannot be reached now: a node that cannot start
    /// says so at once (systemd's `Restart=` retries it), rather than serving 503s.
    pub fn open(url: &str) -> Result<PgRecords, RecordsError> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| RecordsError::Open {
            path: filmgate_actors::redact::redact_url(url),
            source: e,
        };
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| open_err(e.into()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_WAIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("filmgate");
        }
        let options = match config.get_options() {
            Some(theirs) => format!("{SESSION_OPTIONS} {theirs}"),
            None => SESSION_OPTIONS.to_owned(),
        };
        config.options(options);
        if config.get_tcp_user_timeout().is_none() {
            // Unacknowledged data (a silent database host) ends the connection in 30 s.
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("records-pg")
            .enable_all()
            .build()
            .map_err(|e| open_err(e.into()))?;
        let runtime = DbRuntime::new(runtime);
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| open_err(e.into()))?;
        let setup_pool = pool.clone();
        let counts = block_on(runtime.handle(), async move {
            let mut client = setup_pool.get().await.map_err(|e| pool_error_text(&e))?;
            let applied = schema::migrate(&mut client)
                .await
                .map_err(|e| e.to_string())?;
            if !applied.is_empty() {
                log::info!("records database: applied schema migrations {applied:?}");
            }
            sql::counts(&client).await.map_err(|e| e.to_string())
        })
        .map_err(|e| open_err(e.into()))?;
        let totals = Arc::new(Totals::new(counts));
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        runtime
            .handle()
            .spawn(run_writer(pool.clone(), rx, totals.clone()));
        runtime
            .handle()
            .spawn(poll_totals(pool.clone(), totals.clone()));
        Ok(PgRecords {
            shared: Arc::new(Shared {
                runtime,
                pool,
                writer: tx,
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

    /// A page of films; the unfiltered count is the committed total, read with the page
    /// (memory may lag other nodes' commits by a poll).
    pub(super) async fn list_films(
        &self,
        filter: ListFilter,
    ) -> Result<Page<FilmRow>, RecordsError> {
        self.read(move |client| async move {
            let results = sql::list_films(&client, &filter).await?;
            let count = if filter.selects_all_films() {
                sql::counts(&client).await?.films
            } else {
                sql::count_films(&client, &filter).await?
            };
            Ok(Page { count, results })
        })
        .await
    }

    pub(super) async fn list_sequences(
        &self,
        filter: ListFilter,
    ) -> Result<Page<SequenceRow>, RecordsError> {
        self.read(move |client| async move {
            let results = sql::list_sequences(&client, &filter).await?;
            let count = if filter.selects_all_sequences() {
                sql::counts(&client).await?.sequences
            } else {
                sql::count_sequences(&client, &filter).await?
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
        self.read(move |client| async move {
            Ok((
                sql::list_sequences(&client, &sequences).await?,
                sql::list_films(&client, &films).await?,
            ))
        })
        .await
    }

    pub(super) async fn film(&self, id: i64) -> Result<Option<FilmRow>, RecordsError> {
        self.read(move |client| async move { Ok(sql::film_by_id(&client, id).await?) })
            .await
    }

    pub(super) async fn sequence(&self, id: i64) -> Result<Option<SequenceRow>, RecordsError> {
        self.read(move |client| async move { Ok(sql::sequence_by_id(&client, id).await?) })
            .await
    }

    /// Runs `f` with a pooled connection on the database runtime, at most
    /// [`MAX_CONCURRENT_READS`] at once, answering within [`REQUEST_TIMEOUT`] in all.
    async fn read<T, F, Fut>(&self, f: F) -> Result<T, RecordsError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RecordsError>> + Send,
    {
        let permits = self.shared.read_permits.clone();
        let pool = self.shared.pool.clone();
        let read = async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| RecordsError::Store(format!("read permits closed: {e}")))?;
            let client = pool.get().await.map_err(pool_error)?;
            f(client).await
        };
        self.shared
            .runtime
            .handle()
            .spawn(async move {
                tokio::time::timeout(REQUEST_TIMEOUT, read)
                    .await
                    .unwrap_or_else(|_| Err(timed_out()))
            })
            .await
            .map_err(|e| RecordsError::Store(format!("read task failed: {e}")))?
    }
}

impl From<tokio_postgres::Error> for RecordsError {
    fn from(e: tokio_postgres::Error) -> Self {
        RecordsError::Store(db_error_text(&e))
    }
}

/// The error's text with its cause (the server's message, the refused connection), which
/// `Display` leaves out ("db error", "error connecting to server").
fn db_error_text(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> RecordsError {
    RecordsError::Store(format!("no database connection: {}", pool_error_text(&e)))
}

fn pool_error_text(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(db) => db_error_text(db),
        other => other.to_string(),
    }
}

/// Runs `future` on the database runtime and waits for it on this thread (start-up only).
fn block_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    future: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv()
        .map_err(|_| "the database runtime stopped".to_owned())?
}

/// The writer task: group-commits queued requests until every handle is dropped. Each group
/// runs in a task of its own, so even a panic only fails that group (its clients get a 503
/// and retry) and the writer goes on.
async fn run_writer(pool: Pool, mut rx: mpsc::Receiver<WriteJob>, totals: Arc<Totals>) {
    while let Some(first) = rx.recv().await {
        let jobs = super::take_group(first, &mut rx);
        let group = tokio::spawn(commit_group(pool.clone(), jobs, totals.clone()));
        if let Err(e) = group.await {
            log::error!(
                target: crate::log_targets::RECORDS_STORE,
                "records store: a group commit failed unexpectedly: {e}"
            );
        }
    }
}

/// Commits one group within [`REQUEST_TIMEOUT`] and answers its requests.
async fn commit_group(pool: Pool, jobs: Vec<WriteJob>, totals: Arc<Totals>) {
    let ops: Vec<&RecordWrite> = jobs.iter().map(|j| &j.op).collect();
    let commit = async {
        let mut client = pool.get().await.map_err(pool_error)?;
        let (answers, counts) = sql::write_group(&mut client, &ops).await?;
        totals.raise(counts);
        Ok(answers)
    };
    let result = tokio::time::timeout(REQUEST_TIMEOUT, commit)
        .await
        .unwrap_or_else(|_| Err(timed_out()));
    drop(ops);
    super::answer_group(jobs, result);
}

fn timed_out() -> RecordsError {
    RecordsError::Store(format!(
        "the database did not answer within {} s",
        REQUEST_TIMEOUT.as_secs()
    ))
}

/// Raises the totals to what the database holds, every [`TOTALS_POLL_INTERVAL`] until the
/// runtime shuts down. A failed read is skipped: the next one catches up.
async fn poll_totals(pool: Pool, totals: Arc<Totals>) {
    let mut tick = tokio::time::interval(TOTALS_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Ok(client) = pool.get().await
            && let Ok(counts) = sql::counts(&client).await
        {
            totals.raise(counts);
        }
    }
}
