//! `spawn_app()`: a real filmgate-web server on 127.0.0.1:0 with a temp records database (a
//! SQLite file, or with [`spawn_app_on`] a database in a throwaway PostgreSQL cluster) and a
//! real [`QueueActor`] over a temp SQLite queue, and a `TestApp` with typed request helpers
//! (awc) and helpers to put items in the queue through its own messages.
//!
//! [`on_both_backends!`] runs one test body against each records backend.

use actix::prelude::*;
use awc::http::StatusCode;
use filmgate_actors::links::LinkRegistry;
use filmgate_actors::messages::{Ack, Enqueue, EnqueueOutcome, Lease, LeasedItem, Outcome};
use filmgate_actors::metrics::{PostMetrics, SharedPostMetrics};
use filmgate_actors::queue::{QueueActor, QueueClient, QueueConfig, QueueStore};
use filmgate_actors::record::NewItem;
use filmgate_actors::serial::RecordConfig;
use filmgate_actors::token::Token;
use filmgate_testkit::{Api, wait_for};
use filmgate_web::store::RecordsDb;
use filmgate_web::{AppState, RecordsStore};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[allow(dead_code)] // shared with the gateway tests and the benchmark, which use all of it
#[path = "../../../tests/support/postgres.rs"]
mod postgres;
pub use postgres::Postgres;

/// How long the polling helpers wait for the queue or a link before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The link every queued test item comes from; the queue re-parses its dead items with
/// [`RecordConfig::default`] (`lot,film_no,thickness_um,width_mm,defects`, key `lot`).
pub const SOURCE: &str = "line-1";

/// A running server and what the tests need to drive and observe it.
pub struct TestApp {
    /// The server's API (the write helpers send the token, when set); deref.
    api: Api,
    /// The store behind the server (for seeding many rows directly).
    pub records: RecordsStore,
    /// The registry the server reads links from.
    pub links: LinkRegistry,
    /// The counters `/metrics` renders.
    pub post_metrics: SharedPostMetrics,
    /// The records database file (SQLite backend only).
    pub db_path: PathBuf,
    /// The real queue the server inspects; tests enqueue, lease and ack through it as the
    /// links and the poster do.
    pub queue: Addr<QueueActor>,
    /// The queue's SQLite file.
    pub queue_path: PathBuf,
    /// Keeps the databases alive for the test's duration.
    _dir: tempfile::TempDir,
    /// The PostgreSQL cluster of the PostgreSQL backend, stopped when the test ends.
    pub postgres: Option<Postgres>,
}

/// Which database the records service keeps its rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per records backend, as `<name>::sqlite` and `<name>::postgres`:
/// `on_both_backends! { async fn name(app) { ... } }`, with `app` a [`TestApp`].
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::helpers::TestApp) $body

            #[actix_rt::test]
            async fn sqlite() {
                run($crate::helpers::spawn_app_on($crate::helpers::Backend::Sqlite).await).await
            }

            #[actix_rt::test]
            async fn postgres() {
                run($crate::helpers::spawn_app_on($crate::helpers::Backend::Postgres).await).await
            }
        }
    )*};
}

pub async fn spawn_app() -> TestApp {
    spawn(None, Backend::Sqlite, false).await
}

pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn(None, backend, false).await
}

pub async fn spawn_app_with_token(token: &str) -> TestApp {
    spawn(Some(token.to_owned()), Backend::Sqlite, false).await
}

/// With `web.protect_reads`: reads need `token` (or a session) too.
pub async fn spawn_app_protecting_reads(token: &str) -> TestApp {
    spawn(Some(token.to_owned()), Backend::Sqlite, true).await
}

async fn spawn(token: Option<String>, backend: Backend, protect_reads: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    // A nested path also checks that the store creates its parent directory.
    let db_path = dir.path().join("data/records.sqlite3");
    let (db, postgres) = match backend {
        Backend::Sqlite => (RecordsDb::Sqlite(db_path.clone()), None),
        Backend::Postgres => {
            let pg = Postgres::start();
            (RecordsDb::Postgres(pg.create_database("records")), Some(pg))
        }
    };
    let records = RecordsStore::open(&db).expect("records store");
    let queue_cfg = QueueConfig {
        path: dir.path().join("data/queue.sqlite3"),
        ..QueueConfig::default()
    };
    let queue_store = QueueStore::open(&queue_cfg).expect("queue store");
    let parsers = HashMap::from([(SOURCE.to_owned(), RecordConfig::default().into())]);
    let queue_path = queue_cfg.path.clone();
    let queue_changes = queue_store.change_signal();
    let queue = QueueActor::start(queue_store, queue_cfg, parsers);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let links = LinkRegistry::default();
    links.register(SOURCE, "sim");
    let post_metrics: SharedPostMetrics = Arc::new(PostMetrics::default());
    let state = AppState {
        records: records.clone(),
        queue: QueueClient::new(&queue, queue_changes),
        links: links.clone(),
        post_metrics: post_metrics.clone(),
        token: token.as_deref().and_then(|t| Token::parse(t).unwrap()),
        allowed_hosts: Vec::new(),
        event_clients: Default::default(),
        body_timeouts: Default::default(),
        protect_reads,
        sessions: Default::default(),
        access_log: false,
        record_fields: HashMap::from([(SOURCE.to_owned(), RecordConfig::default().fields)]),
    };
    let server = filmgate_web::server(listener, state).expect("server");
    actix_rt::spawn(server);
    TestApp {
        api: Api {
            address: format!("http://127.0.0.1:{port}"),
            token,
        },
        records,
        db_path,
        links,
        post_metrics,
        queue,
        queue_path,
        _dir: dir,
        postgres,
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    /// Films stored under `uid`, read over a connection of its own, which sees only committed
    /// rows.
    pub fn committed_films(&self, uid: &str) -> i64 {
        match &self.postgres {
            Some(pg) => pg
                .psql(
                    "records",
                    &format!("SELECT COUNT(*) FROM films WHERE uid = '{uid}'"),
                )
                .parse()
                .expect("a count"),
            None => rusqlite::Connection::open(&self.db_path)
                .and_then(|conn| {
                    conn.query_row("SELECT COUNT(*) FROM films WHERE uid = ?1", [uid], |r| {
                        r.get(0)
                    })
                })
                .expect("a count"),
        }
    }

    /// Writes `items` into the queue as a link does; asserts the queue took them all.
    pub async fn enqueue(&self, items: Vec<NewItem>) {
        let count = items.len();
        let outcome = self
            .queue
            .send(Enqueue { items })
            .await
            .expect("queue mailbox")
            .expect("enqueue");
        assert_eq!(
            outcome,
            EnqueueOutcome {
                accepted: count,
                refused: 0
            }
        );
    }

    /// Leases `count` items as the poster does, oldest first. Only committed items are
    /// leased, so this polls until the group commit has run.
    pub async fn lease(&self, count: usize) -> Vec<LeasedItem> {
        let mut items = Vec::new();
        wait_for(DEADLINE, &format!("{count} items leased"), async || {
            let leased = self
                .queue
                .send(Lease {
                    max_items: count - items.len(),
                })
                .await
                .expect("queue mailbox")
                .expect("lease");
            items.extend(leased);
            (items.len() == count).then_some(())
        })
        .await;
        items
    }

    /// Ends leases with the poster's outcomes.
    pub async fn ack(&self, outcomes: Vec<(i64, Outcome)>) {
        self.queue
            .send(Ack { outcomes })
            .await
            .expect("queue mailbox")
            .expect("ack");
    }

    /// Creates a sequence and returns its row (asserts 201).
    pub async fn create_sequence(&self, source: &str) -> Value {
        let (status, row) = self
            .post_json("/api/sequences/", &json!({"source": source, "key": "A"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{row}");
        row
    }

    /// Creates a film and returns its row (asserts 201).
    pub async fn create_film(&self, sequence: i64, source: &str, uid: &str) -> Value {
        let (status, row) = self
            .post_json("/api/films/", &film_body(sequence, source, uid))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{row}");
        row
    }
}

/// A nested film body as the poster sends it.
pub fn film_body(sequence: i64, source: &str, uid: &str) -> Value {
    json!({
        "uid": uid,
        "sequence": sequence,
        "source": source,
        "received_at": "2026-11-22T05:03:05.123Z",
        "raw": "A,1,12.5,300,0",
        "data": {"lot": "A", "film_no": 1, "thickness_um": 12.5},
    })
}
