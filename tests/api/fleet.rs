//! The records service as a fleet (README, the PostgreSQL section): several filmgate nodes on one PostgreSQL database
//! behind nginx, line gateways posting to it through their serial links, and the failures a
//! fleet meets: a node killed mid-flood, the database restarted.

use crate::helpers::*;
use crate::peers::{Nginx, Postgres};
use filmgate::config::Settings;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How long a fleet test may take to settle after its last line (a debug build of five
/// processes on two cores).
const SETTLE: Duration = Duration::from_secs(120);

/// A records node: no serial link, its rows in `url`.
fn node_settings(dir: &Path, url: &str) -> Settings {
    let mut s = test_settings(dir, None, None);
    s.web.records_db = filmgate_web::store::RecordsDb::Postgres(url.to_owned());
    s
}

/// A line gateway: link `name` on a pty, posting to `base_url` in batches of `batch_size`.
fn gateway_settings(dir: &Path, name: &str, base_url: &str, batch_size: usize) -> Settings {
    let mut s = test_settings(dir, Some(&device_link(dir)), Some(base_url));
    s.serial[0].name = name.into();
    s.upstream.batch_size = batch_size;
    s
}

/// A line being written from a thread the way a line writes: ten records at a time, a short
/// pause between, lots of 25 (`<prefix>-<lot>`). The first half goes out at once, the second
/// once [`Line::release`] is called (or the `Line` is dropped), so a test can make sure the
/// line is still posting when it breaks something.
struct Line {
    go: std::sync::mpsc::Sender<()>,
    writer: std::thread::JoinHandle<(LinkedPty, Vec<String>)>,
}

impl Line {
    fn write(mut pty: LinkedPty, prefix: &str, films: u64) -> Line {
        let lines: Vec<String> = (1..=films)
            .map(|n| film_line(&format!("{prefix}-{}", (n - 1) / 25), n))
            .collect();
        let (go, released) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let (first, second) = lines.split_at(lines.len() / 2);
            for (half, part) in [first, second].into_iter().enumerate() {
                if half == 1 {
                    let _ = released.recv();
                }
                for chunk in part.chunks(10) {
                    pty.write_all(chunk.concat().as_bytes()).expect("pty write");
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
            let lines = lines
                .iter()
                .map(|l| l.trim_end_matches('\r').to_owned())
                .collect();
            (pty, lines)
        });
        Line { go, writer }
    }

    /// Lets the second half go out.
    fn release(&self) {
        let _ = self.go.send(());
    }

    /// Waits until every line is written; the pty (keep it while its gateway runs) and the
    /// lines without their delimiter.
    fn join(self) -> (LinkedPty, Vec<String>) {
        self.release();
        self.writer.join().unwrap()
    }
}

/// Waits until `gateway` has read all `films` of its line and nothing waits in its queue;
/// none may be dead.
async fn wait_settled(gateway: &Gateway, films: u64) {
    let last_seen = std::cell::RefCell::new(String::from("no answer"));
    let settled = wait_for(
        SETTLE * 2,
        "the line read and its queue drained",
        async || {
            let links = gateway.try_get_json("/api/links/").await?;
            let stats = gateway.try_get_json("/api/queue/stats").await?;
            *last_seen.borrow_mut() = format!("link {} queue {stats}", links[0]);
            let read = links[0]["frames_read"] == films;
            (read && stats["pending"] == 0 && stats["in_flight"] == 0).then_some(stats)
        },
    );
    let Ok(stats) = actix_rt::time::timeout(SETTLE, settled).await else {
        let pending = gateway
            .try_get_json("/api/queue/?state=pending&limit=3")
            .await;
        panic!(
            "{} not settled within {SETTLE:?} ({films} films): {}; pending {pending:?}",
            gateway.address,
            last_seen.borrow()
        );
    };
    assert_eq!(stats["dead"], 0, "{stats}");
}

/// Films stored in the database.
fn stored_films(pg: &Postgres) -> u64 {
    pg.psql("records", "SELECT count(*) FROM films")
        .parse()
        .unwrap_or(0)
}

/// `source -> raws` of every stored film, each raw as often as it is stored.
fn stored_raws(pg: &Postgres) -> HashMap<String, Vec<String>> {
    let mut by_source: HashMap<String, Vec<String>> = HashMap::new();
    let rows = pg.psql(
        "records",
        "SELECT source || '|' || raw FROM films ORDER BY id",
    );
    for row in rows.lines() {
        let (source, raw) = row.split_once('|').unwrap();
        by_source.entry(source.into()).or_default().push(raw.into());
    }
    by_source
}

/// Follows `/api/refresh/` from the start, as a dashboard or a reporting client does, until
/// its cursor has passed film id `until` (0 until the test knows the last id); returns
/// `(id, uid)` of every film in the order seen.
async fn follow_refresh(origin: String, until: Arc<AtomicI64>) -> Vec<(i64, String)> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut cursor = "s0.f0".to_owned();
    let mut seen = Vec::new();
    loop {
        let last = until.load(Ordering::Relaxed);
        if last > 0 && seen.last().is_some_and(|(id, _)| *id >= last) {
            return seen;
        }
        let answer: Option<Value> = async {
            let mut res = client
                .get(format!("{origin}/api/refresh/?cursor={cursor}"))
                .send()
                .await
                .ok()?;
            if !res.status().is_success() {
                return None;
            }
            res.json().limit(64 << 20).await.ok()
        }
        .await;
        let Some(page) = answer else {
            // A node down or restarting: ask again shortly.
            actix_rt::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Asking again at once when nothing is new keeps a read in flight all the time, so
        // a row committed late (after a higher id) is read past if the cursor allows it.
        for film in page["films"].as_array().unwrap() {
            seen.push((
                film["id"].as_i64().unwrap(),
                film["uid"].as_str().unwrap().to_owned(),
            ));
        }
        cursor = page["cursor"].as_str().unwrap().to_owned();
    }
}

#[actix_rt::test]
async fn three_lines_two_nodes_one_database_a_node_killed_mid_flood() {
    const FILMS: u64 = 600;
    let dir = temp_dir();
    let pg = Postgres::start();
    let url = pg.create_database("records");
    let mut nodes: Vec<Gateway> = (0..2)
        .map(|i| {
            let node_dir = dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            Gateway::launch(&node_dir, &node_settings(&node_dir, &url))
        })
        .collect();
    for node in &nodes {
        node.wait_answering().await;
    }
    let upstreams: String = nodes
        .iter()
        .map(|n| {
            format!(
                "server {} max_fails=1 fail_timeout=1s; ",
                n.address.trim_start_matches("http://")
            )
        })
        .collect();
    // Every post names its uid, so a retry on the other node is a replay: safe to pass even
    // POSTs on (`non_idempotent`).
    let (_nginx, port) = Nginx::start(
        &dir.path().join("nginx"),
        &format!(
            "upstream records {{ {upstreams} keepalive 16; }}
             server {{ listen 127.0.0.1:PORT;
               location / {{ proxy_pass http://records; proxy_http_version 1.1;
                 proxy_set_header Connection \"\"; proxy_set_header Host $host;
                 proxy_next_upstream error timeout http_502 non_idempotent; }} }}"
        ),
    )
    .await;
    let origin = format!("http://127.0.0.1:{port}");
    let last_id = Arc::new(AtomicI64::new(0));
    // One follower through nginx (either node), one on the node that stays up.
    let followers = [origin.clone(), nodes[1].address.clone()]
        .map(|at| actix_rt::spawn(follow_refresh(at, last_id.clone())));

    let mut gateways = Vec::new();
    let mut writers = Vec::new();
    for (i, batch_size) in [1, 10, 50].into_iter().enumerate() {
        let gw_dir = dir.path().join(format!("line-{i}"));
        std::fs::create_dir_all(&gw_dir).unwrap();
        let pty = pty_behind(&device_link(&gw_dir));
        let settings = gateway_settings(
            &gw_dir,
            &format!("line-{i}"),
            &format!("{origin}/api/"),
            batch_size,
        );
        let gateway = Gateway::launch(&gw_dir, &settings);
        gateway.wait_link_up().await;
        writers.push(Line::write(pty, &format!("L{i}"), FILMS));
        gateways.push(gateway);
    }

    wait_for(SETTLE, "150 films stored", async || {
        (stored_films(&pg) >= 150).then_some(())
    })
    .await;
    let killed_at = stored_films(&pg);
    nodes[0].stop(Signal::SIGKILL);
    // The second halves go out while node 0 is down: there is always more to post.
    writers.iter().for_each(Line::release);
    wait_for(SETTLE, "films stored through the other node", async || {
        (stored_films(&pg) >= killed_at + 150).then_some(())
    })
    .await;
    let config = dir.path().join("node-0/filmgate.toml");
    nodes[0] = Gateway::start(&config);
    nodes[0].wait_answering().await;

    let mut emitted: HashMap<String, Vec<String>> = HashMap::new();
    let mut ptys = Vec::new();
    for (i, writer) in writers.into_iter().enumerate() {
        let (pty, lines) = writer.join();
        ptys.push(pty);
        emitted.insert(format!("line-{i}"), lines);
    }
    for gateway in &gateways {
        wait_settled(gateway, FILMS).await;
    }

    // Every emitted line stored exactly once, under its own line, nothing else.
    let mut stored = stored_raws(&pg);
    for (source, lines) in &emitted {
        let mut got = stored.remove(source).unwrap_or_default();
        let mut want = lines.clone();
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len(), "{source}: films stored");
        assert!(
            got == want,
            "{source}: stored raws differ from the emitted lines"
        );
    }
    assert!(stored.is_empty(), "films from nowhere: {:?}", stored.keys());
    let twice = pg.psql(
        "records",
        "SELECT count(*) FROM (SELECT source, key FROM sequences GROUP BY 1, 2 HAVING count(*) > 1) t",
    );
    assert_eq!(twice, "0", "a lot stored as two sequences");

    // Each follower saw every row exactly once, in id order.
    last_id.store(
        pg.psql("records", "SELECT max(id) FROM films")
            .parse()
            .unwrap(),
        Ordering::Relaxed,
    );
    let stored_uids = pg.psql("records", "SELECT uid FROM films");
    for (follower, at) in followers.into_iter().zip(["nginx", "node 1"]) {
        let seen = actix_rt::time::timeout(SETTLE, follower)
            .await
            .expect("the follower reached the last film")
            .unwrap();
        let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{at}: refresh went back or repeated a row"
        );
        let seen_uids: HashSet<&str> = seen.iter().map(|(_, uid)| uid.as_str()).collect();
        let missed: Vec<&str> = stored_uids
            .lines()
            .filter(|uid| !seen_uids.contains(uid))
            .collect();
        assert!(
            missed.is_empty(),
            "{at}: the follower missed {} of {} rows, e.g. {:?}",
            missed.len(),
            3 * FILMS,
            &missed[..missed.len().min(5)]
        );
        assert_eq!(seen.len(), 3 * FILMS as usize, "{at}");
    }
}

#[actix_rt::test]
async fn the_database_restarted_while_a_line_posts() {
    const FILMS: u64 = 400;
    let dir = temp_dir();
    let pg = Postgres::start();
    let url = pg.create_database("records");
    let node_dir = dir.path().join("node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let started = std::time::Instant::now();
    let (node, log_path) = Gateway::launch_logging(&node_dir, &node_settings(&node_dir, &url));
    node.wait_answering().await;
    let gw_dir = dir.path().join("line");
    std::fs::create_dir_all(&gw_dir).unwrap();
    let pty = pty_behind(&device_link(&gw_dir));
    let base_url = format!("{}/api/", node.address);
    let gateway = Gateway::launch(&gw_dir, &gateway_settings(&gw_dir, "line-1", &base_url, 10));
    gateway.wait_link_up().await;
    let line = Line::write(pty, "DB", FILMS);

    wait_for(SETTLE, "100 films stored", async || {
        (stored_films(&pg) >= 100).then_some(())
    })
    .await;
    pg.stop_server();
    // The second half goes out while the database is down: posts that must be refused.
    line.release();
    // Meanwhile the node answers 503 with a JSON error, and the line's posts wait.
    let client = awc::Client::default();
    // Within seconds, not when some connection times out.
    let answer = wait_for(Duration::from_secs(15), "a 503 from the node", async || {
        let mut res = client
            .get(format!("{}/api/films/?source=line-1", node.address))
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        (res.status() == 503).then_some(body)
    })
    .await;
    assert!(answer["error"].is_string(), "{answer}");
    let refused = wait_for(SETTLE, "a post refused with 503", async || {
        for state in ["pending", "in_flight"] {
            let page = gateway
                .try_get_json(&format!("/api/queue/?state={state}&limit=1000"))
                .await?;
            let refused = page["results"]
                .as_array()?
                .iter()
                .filter_map(|item| item["last_error"].as_str())
                // The second half starts a new lot, so its first refused post is usually its
                // sequence's (`sequence: HTTP 503 …`, sequence first).
                .find(|e| e.trim_start_matches("sequence: ").starts_with("HTTP 503"));
            if let Some(refused) = refused {
                return Some(refused.to_owned());
            }
        }
        None
    })
    .await;
    assert!(refused.contains("records store"), "{refused}");
    pg.start_server();

    let (_pty, lines) = line.join();
    wait_settled(&gateway, FILMS).await;
    let mut stored = stored_raws(&pg).remove("line-1").unwrap_or_default();
    let mut want = lines;
    stored.sort();
    want.sort();
    assert_eq!(stored.len(), want.len());
    assert!(stored == want, "stored raws differ from the emitted lines");
    // The node serves reads again without having been restarted.
    let page = node
        .try_get_json("/api/films/?source=line-1&limit=1")
        .await
        .unwrap();
    assert_eq!(page["count"], FILMS);
    // Hundreds of refused requests, but the log names the failure at most once per 10 s for
    // writes and once for reads.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let failures = log
        .lines()
        .filter(|l| l.contains("records store failed"))
        .count();
    let allowed = 2 * (1 + started.elapsed().as_secs() as usize / 10);
    assert!(
        (1..=allowed).contains(&failures),
        "{failures} store failures logged:\n{log}"
    );
}
