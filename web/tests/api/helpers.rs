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
use filmgate_testkit::wait_for;
use filmgate_web::store::RecordsDb;
use filmgate_web::{AppState, RecordsStore};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// `http://127.0.0.1:<port>`.
    pub address: String,
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
    /// Sent as `Authorization: Bearer` by the write helpers, when set.
    pub token: Option<String>,
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
        address: format!("http://127.0.0.1:{port}"),
        records,
        db_path,
        links,
        post_metrics,
        queue,
        queue_path,
        token,
        _dir: dir,
        postgres,
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn client(&self) -> awc::Client {
        awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish()
    }

    /// POSTs JSON (with the app's token, if any) and returns the status and JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_json_with(path, body, &[]).await
    }

    pub async fn post_json_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self.client().post(self.url(path));
        if let Some(token) = &self.token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut resp = req.send_json(body).await.expect("request");
        let json = read_json(&mut resp).await;
        (resp.status(), json)
    }

    /// Sends a raw body with the given content type; returns status and JSON body.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client()
            .post(self.url(path))
            .insert_header(("Content-Type", content_type));
        if let Some(token) = &self.token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut resp = req.send_body(body).await.expect("request");
        let json = read_json(&mut resp).await;
        (resp.status(), json)
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let mut resp = self
            .client()
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let json = read_json(&mut resp).await;
        (resp.status(), json)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let mut req = self.client().delete(self.url(path));
        if let Some(token) = &self.token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut resp = req.send().await.expect("request");
        let json = read_json(&mut resp).await;
        (resp.status(), json)
    }

    /// GET returning status, content type and body text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String, String) {
        let mut resp = self
            .client()
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let body = resp.body().limit(16 << 20).await.expect("body");
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (
            resp.status(),
            ctype,
            String::from_utf8_lossy(&body).into_owned(),
        )
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
        let deadline = Instant::now() + DEADLINE;
        let mut items = Vec::new();
        while items.len() < count {
            assert!(
                Instant::now() < deadline,
                "leased {} of {count} items",
                items.len()
            );
            let leased = self
                .queue
                .send(Lease {
                    max_items: count - items.len(),
                })
                .await
                .expect("queue mailbox")
                .expect("lease");
            if leased.is_empty() {
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            items.extend(leased);
        }
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

    /// GETs `path` until its JSON body satisfies `check` (or the deadline passes, failing the
    /// test); returns that body.
    pub async fn wait_for_json(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let what = format!("GET {path} to satisfy the check");
        wait_for(DEADLINE, &what, async || {
            let (status, body) = self.get_json(path).await;
            (status == StatusCode::OK && check(&body)).then_some(body)
        })
        .await
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

async fn read_json<S>(resp: &mut awc::ClientResponse<S>) -> Value
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = resp.body().limit(32 << 20).await.expect("body");
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))
}
