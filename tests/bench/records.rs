//! The records service benchmark: films/s into the real release binary running as a records
//! node (no serial link), from clients posting single films (`POST /api/films/`, 32 in
//! flight) or batches of 100 (`POST /api/films/batch/`, 8 in flight), as line gateways do.
//!
//! Backends: the SQLite file, a PostgreSQL cluster (Debian's `postgresql`, a throwaway
//! cluster with fsync and synchronous commit on), and two nodes on that PostgreSQL behind
//! nginx (round robin, keep-alive). Every answer is checked (201, per film in a batch too)
//! and the films counted in the database at the end.
//!
//! `cargo bench --bench records` runs every mode; `-- --smoke` runs each briefly (CI);
//! `-- --mode sqlite|postgres|postgres-2` runs one backend; `-- --films N` sets the size.

#[path = "../support/bench.rs"]
mod bench;
#[allow(dead_code)]
#[path = "../support/nginx.rs"]
mod nginx;
#[allow(dead_code)]
#[path = "../support/postgres.rs"]
mod postgres;
use bench::{BenchArgs, start_filmgate};
use filmgate_testkit::{unclaimed_port, wait_for};

use filmgate::config::Settings;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Single-film posts in flight.
const SINGLE_IN_FLIGHT: usize = 32;
/// Films per batch post.
const BATCH_FILMS: usize = 100;
/// Batch posts in flight.
const BATCHES_IN_FLIGHT: usize = 8;

fn main() {
    let args = BenchArgs::from_env();
    let (smoke, films) = (args.smoke, args.films(20_000));
    let backends: Vec<String> = match args.mode.clone() {
        Some(m) => vec![m],
        None => ["sqlite", "postgres", "postgres-2"]
            .map(String::from)
            .to_vec(),
    };
    println!(
        "filmgate records benchmark: {films} films per run{}",
        if smoke { " (smoke)" } else { "" }
    );
    for backend in &backends {
        for batch in [false, true] {
            let films_per_s = actix_rt::System::new().block_on(run(backend, batch, films));
            println!(
                "{:<11} {:<9} films={films:<7} films/s={films_per_s:.0}",
                backend,
                if batch { "batch100" } else { "single" },
            );
        }
    }
}

/// A records node: the release binary on `records_db`, stopped when dropped.
struct Node {
    child: Child,
    origin: String,
}

impl Node {
    async fn start(dir: &Path, records_db: &str) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let port = unclaimed_port();
        let mut settings = Settings::from_toml("", "bench", std::iter::empty()).unwrap();
        settings.web.bind = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        settings.web.records_db = records_db.to_owned().try_into().expect("a records_db");
        settings.queue.path = dir.join("queue.sqlite3");
        let node = Node {
            child: start_filmgate(&settings, &dir.join("node.toml")),
            origin: format!("http://127.0.0.1:{port}"),
        };
        let client = awc::Client::default();
        let healthz = format!("{}/healthz", node.origin);
        wait_for(Duration::from_secs(60), "the node answering", async || {
            client.get(healthz.as_str()).send().await.ok().map(|_| ())
        })
        .await;
        node
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn film(sequence: i64, n: u64) -> Value {
    json!({
        "uid": format!("bench-{n}"),
        "sequence": sequence,
        "source": "bench",
        "received_at": "2026-11-22T05:03:05.123Z",
        "raw": format!("B1,{n},25.{:02},1200.5,{}", n % 100, n % 3),
        "data": {"lot": "B1", "film_no": n, "thickness_um": 25.5, "width_mm": 1200.5, "defects": n % 3},
    })
}

/// Starts the backend, posts `films` and returns films/s.
async fn run(backend: &str, batch: bool, films: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let pg = (backend != "sqlite").then(postgres::Postgres::start);
    let records_db = match &pg {
        Some(pg) => pg.create_database("records"),
        None => dir.path().join("records.sqlite3").display().to_string(),
    };
    let node_count = if backend == "postgres-2" { 2 } else { 1 };
    let mut nodes = Vec::new();
    for i in 0..node_count {
        nodes.push(Node::start(&dir.path().join(format!("node-{i}")), &records_db).await);
    }
    let mut _nginx = None;
    let origin = if node_count == 1 {
        nodes[0].origin.clone()
    } else {
        let servers: String = nodes
            .iter()
            .map(|n| format!("server {}; ", n.origin.trim_start_matches("http://")))
            .collect();
        let (server, port) = nginx::Nginx::start(
            &dir.path().join("nginx"),
            &format!(
                "access_log off;
                 upstream records {{ {servers} keepalive 64; }}
                 server {{ listen 127.0.0.1:PORT;
                   location / {{ proxy_pass http://records; proxy_http_version 1.1;
                     proxy_set_header Connection \"\"; proxy_set_header Host $host; }} }}"
            ),
        )
        .await;
        _nginx = Some(server);
        format!("http://127.0.0.1:{port}")
    };
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let mut res = client
        .post(format!("{origin}/api/sequences/"))
        .send_json(&json!({"uid": "bench-seq", "source": "bench", "key": "B1"}))
        .await
        .unwrap();
    let sequence = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let start = Instant::now();
    if batch {
        let posts: Vec<Vec<Value>> = (1..=films)
            .collect::<Vec<_>>()
            .chunks(BATCH_FILMS)
            .map(|chunk| chunk.iter().map(|&n| film(sequence, n)).collect())
            .collect();
        futures_util::stream::iter(posts)
            .map(|body| {
                let client = &client;
                let url = format!("{origin}/api/films/batch/");
                async move {
                    let mut res = client.post(url).send_json(&body).await.unwrap();
                    let answer: Value = res.json().limit(16 << 20).await.unwrap();
                    let results = answer["results"].as_array().unwrap();
                    assert_eq!(results.len(), body.len());
                    assert!(
                        results.iter().all(|r| r["status"] == 201),
                        "a film not created"
                    );
                }
            })
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .collect::<()>()
            .await;
    } else {
        futures_util::stream::iter(1..=films)
            .map(|n| {
                let client = &client;
                let url = format!("{origin}/api/films/");
                async move {
                    let res = client
                        .post(url)
                        .send_json(&film(sequence, n))
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 201);
                }
            })
            .buffer_unordered(SINGLE_IN_FLIGHT)
            .collect::<()>()
            .await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut res = client
        .get(format!("{origin}/api/films/?limit=1"))
        .send()
        .await
        .unwrap();
    let count = res.json::<Value>().await.unwrap()["count"]
        .as_u64()
        .unwrap();
    assert_eq!(count, films, "films stored");
    films as f64 / seconds
}
