//! Tests of the serial stage: real pseudo-terminals opened through tokio-serial by real
//! supervised SerialActors, feeding a real [`QueueActor`] over a SQLite file in a temp dir.
//! What the links delivered is read back through the queue's own messages: [`Lease`] for films
//! in read order with their sequences, [`ListItems`] for every item (rejected frames are dead
//! items with their exact bytes), [`GetStats`] for counts.

use actix::prelude::*;
use filmgate_actors::links::{LinkRegistry, LinkState, LinkStatus};
use filmgate_actors::messages::{
    Enqueue, GetStats, ItemState, Lease, LeasedItem, ListItems, QueueStats, QueuedItem,
    RestartLink, StopLink,
};
use filmgate_actors::queue::{QueueActor, QueueConfig, QueueStore};
use filmgate_actors::record::now_ms;
use filmgate_actors::serial::pty::Pty;
use filmgate_actors::serial::{RecordConfig, SerialConfig, start_link};
use filmgate_testkit::wait_for;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tempfile::TempDir;

// ---- helpers ---------------------------------------------------------------------------------

/// How long a test waits for frames to reach the queue.
const DEADLINE: Duration = Duration::from_secs(5);

/// Page size for listing every item of a test's queue (a test writes far fewer).
const LIST_LIMIT: usize = 100_000;

/// The real queue the links under test write to.
struct TestQueue {
    addr: Addr<QueueActor>,
    /// The SQLite file, for a second connection that locks it.
    path: PathBuf,
    _dir: TempDir,
}

/// Opens a queue in a new temp dir, knowing the record config of the links named.
fn spawn_queue(link_names: &[&str]) -> TestQueue {
    let dir = TempDir::new().unwrap();
    let cfg = QueueConfig {
        path: dir.path().join("queue.sqlite3"),
        ..QueueConfig::default()
    };
    let store = QueueStore::open(&cfg).expect("open queue");
    let parsers = link_names
        .iter()
        .map(|name| (name.to_string(), RecordConfig::default().into()))
        .collect::<HashMap<_, _>>();
    let path = cfg.path.clone();
    let addr = QueueActor::start(store, cfg, parsers);
    TestQueue {
        addr,
        path,
        _dir: dir,
    }
}

impl TestQueue {
    /// The queue's mailbox as a link holds it.
    fn recipient(&self) -> Recipient<Enqueue> {
        self.addr.clone().recipient()
    }

    async fn stats(&self) -> QueueStats {
        self.addr.send(GetStats).await.unwrap().unwrap()
    }

    /// Every item the queue holds (written or committed), in read order.
    async fn items(&self) -> Vec<QueuedItem> {
        let all = ListItems {
            state: None,
            limit: LIST_LIMIT,
            offset: 0,
        };
        let page = self.addr.send(all).await.unwrap().unwrap();
        assert_eq!(
            page.count as usize,
            page.results.len(),
            "one page holds all"
        );
        // Listed newest first; ids follow the order of writing.
        let mut items = page.results;
        items.reverse();
        items
    }

    /// Polls until the queue holds at least `count` items; returns them in read order.
    async fn wait_items(&self, count: usize) -> Vec<QueuedItem> {
        let what = format!("{count} items in the queue");
        wait_for(DEADLINE, &what, async || {
            let items = self.items().await;
            (items.len() >= count).then_some(items)
        })
        .await
    }

    /// Polls until at least `count` frames were enqueued; returns the stats then.
    async fn wait_enqueued(&self, count: u64) -> QueueStats {
        let what = format!("{count} enqueued frames");
        wait_for(DEADLINE, &what, async || {
            let stats = self.stats().await;
            (stats.enqueued_total >= count).then_some(stats)
        })
        .await
    }

    /// Leases films until `count` came back (failing after `limit`): the oldest committed
    /// films, in read order. A failing store refuses leases until it recovers; like the
    /// poster, this waits for that.
    async fn lease_films(&self, count: usize, limit: Duration) -> Vec<LeasedItem> {
        let mut films = Vec::new();
        wait_for(limit, &format!("{count} films leased"), async || {
            let lease = Lease {
                max_items: count - films.len(),
            };
            if let Ok(leased) = self.addr.send(lease).await.unwrap() {
                films.extend(leased);
            }
            (films.len() >= count).then_some(())
        })
        .await;
        films
    }
}

fn link_cfg(name: &str, port: &str) -> SerialConfig {
    SerialConfig {
        name: name.into(),
        port: port.into(),
        reconnect_initial_ms: 20,
        reconnect_max_ms: 200,
        ..Default::default()
    }
}

fn status(links: &LinkRegistry, name: &str) -> LinkStatus {
    links.get(name).expect("link registered")
}

async fn wait_up(links: &LinkRegistry, name: &str) {
    wait_for(Duration::from_secs(30), &format!("{name} up"), async || {
        (status(links, name).state == LinkState::Up).then_some(())
    })
    .await;
}

/// Writes on a blocking thread: a write larger than the pty's buffer waits for the reader,
/// which runs on this test's (single) runtime thread.
async fn write(mut pty: Pty, bytes: impl Into<Vec<u8>>) -> Pty {
    let bytes = bytes.into();
    tokio::task::spawn_blocking(move || {
        pty.write_all(&bytes).expect("pty write");
        pty
    })
    .await
    .unwrap()
}

fn record(lot: &str, film_no: u32) -> String {
    format!("{lot},{film_no},25.{film_no:02},1200.5,0\r")
}

fn film_no(film: &LeasedItem) -> i64 {
    film.fields()["film_no"].as_i64().unwrap()
}

fn film_nos(films: &[LeasedItem]) -> Vec<i64> {
    films.iter().map(film_no).collect()
}

/// The film number of a listed item that must be a film (pending, parsed, no error).
fn listed_film_no(item: &QueuedItem) -> i64 {
    assert_eq!(item.state, ItemState::Pending, "expected a film: {item:?}");
    assert_eq!(item.last_error, None);
    let data = item.data.as_ref().expect("a film has data");
    data["film_no"].as_i64().unwrap()
}

/// The reason of a listed item that must be a rejected frame (dead, unparsed).
fn rejected_reason(item: &QueuedItem) -> &str {
    assert_eq!(
        item.state,
        ItemState::Dead,
        "expected a rejected frame: {item:?}"
    );
    assert_eq!(item.data, None);
    item.last_error
        .as_deref()
        .expect("a rejected frame has a reason")
}

/// Every uid once: nothing was written twice.
fn assert_unique_uids<'a>(uids: impl Iterator<Item = &'a String>, count: usize) {
    let mut uids: Vec<_> = uids.collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), count, "duplicate uids");
}

// ---- tests -----------------------------------------------------------------------------------

#[actix_rt::test]
async fn records_written_to_a_pty_arrive_as_parsed_films_in_order_with_sequences_by_lot() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["line-1"]);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue.recipient(), links.clone()).unwrap();
    wait_up(&links, "line-1").await;

    let lots = ["A", "A", "A", "B", "B", "C"];
    let text: String = lots
        .iter()
        .enumerate()
        .map(|(i, lot)| record(lot, i as u32 + 1))
        .collect();
    let _pty = write(pty, text).await;
    let films = queue.lease_films(6, DEADLINE).await;

    assert_eq!(films.len(), 6);
    assert_eq!(film_nos(&films), [1, 2, 3, 4, 5, 6]);
    assert_eq!(films[0].raw, "A,1,25.01,1200.5,0");
    assert!(films.iter().all(|f| f.source == "line-1"));
    assert_eq!(
        serde_json::Value::Object(films[3].fields()),
        json!({"lot": "B", "film_no": 4, "thickness_um": 25.04, "width_mm": 1200.5, "defects": 0})
    );
    let seq = |i: usize| &films[i].sequence;
    assert_eq!(seq(0), seq(1));
    assert_eq!(seq(1), seq(2));
    assert_ne!(seq(2).uid, seq(3).uid);
    assert_eq!(seq(3), seq(4));
    assert_ne!(seq(4).uid, seq(5).uid);
    assert_eq!(
        [seq(0), seq(3), seq(5)].map(|s| s.key.as_deref()),
        [Some("A"), Some("B"), Some("C")]
    );
    assert!(films.iter().all(|f| f.sequence.source == "line-1"));
    assert_unique_uids(films.iter().map(|f| &f.uid), 6);
    let stats = queue.stats().await;
    assert_eq!(
        (
            stats.enqueued_total,
            stats.pending,
            stats.in_flight,
            stats.dead
        ),
        (6, 0, 6, 0),
        "{stats:?}"
    );

    let s = wait_for(Duration::from_secs(2), "counters", async || {
        let s = status(&links, "line-1");
        (s.frames_read == 6).then_some(s)
    })
    .await;
    assert_eq!(s.frames_rejected, 0);
    assert!(s.last_frame_at.is_some());
    assert_eq!(s.restarts, 0);
}

#[actix_rt::test]
async fn bad_frames_become_rejected_items_with_raw_bytes_while_the_frames_around_them_arrive() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["line-1"]);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue.recipient(), links.clone()).unwrap();
    wait_up(&links, "line-1").await;

    let long_line: Vec<u8> = (0..70_001u32).map(|i| b'0' + (i % 10) as u8).collect();
    let not_utf8: &[u8] = b"A,\xff\xfe,25.0,1200,0";
    let mut bytes = Vec::new();
    bytes.extend_from_slice(record("A", 1).as_bytes());
    bytes.extend_from_slice(not_utf8);
    bytes.push(b'\r');
    bytes.extend_from_slice(record("A", 2).as_bytes());
    bytes.extend_from_slice(&long_line);
    bytes.push(b'\r');
    bytes.extend_from_slice(record("A", 3).as_bytes());
    bytes.extend_from_slice(b"A,4,25.0\r");
    bytes.extend_from_slice(record("A", 5).as_bytes());
    let _pty = write(pty, bytes).await;
    let items = queue.wait_items(7).await;

    assert_eq!(items.len(), 7);
    assert_eq!(listed_film_no(&items[0]), 1);
    assert_eq!(items[0].raw, b"A,1,25.01,1200.5,0");
    // Not UTF-8: kept byte for byte.
    assert_eq!(rejected_reason(&items[1]), "invalid UTF-8 at byte 2 of 16");
    assert_eq!(items[1].raw, not_utf8);
    assert_eq!(listed_film_no(&items[2]), 2);
    assert_eq!(
        rejected_reason(&items[3]),
        "frame exceeds max_frame_bytes (4096): 70001 bytes"
    );
    assert_eq!(items[3].raw, long_line);
    assert_eq!(listed_film_no(&items[4]), 3);
    assert!(
        rejected_reason(&items[5]).contains("expected 5 fields"),
        "{}",
        rejected_reason(&items[5])
    );
    assert_eq!(items[5].raw, b"A,4,25.0");
    assert_eq!(listed_film_no(&items[6]), 5);
    assert!(items.iter().all(|i| i.source == "line-1"));
    // Rejected frames ride in the current sequence without changing it.
    assert!(items[0].sequence_uid.is_some());
    assert!(
        items
            .iter()
            .all(|i| i.sequence_uid == items[0].sequence_uid)
    );
    assert_unique_uids(items.iter().map(|i| &i.uid), 7);
    let stats = queue.stats().await;
    assert_eq!(
        (stats.enqueued_total, stats.pending, stats.dead),
        (7, 4, 3),
        "{stats:?}"
    );

    wait_for(Duration::from_secs(2), "counters", async || {
        let s = status(&links, "line-1");
        (s.frames_read == 4 && s.frames_rejected == 3).then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn a_device_unplugged_and_plugged_back_behind_the_same_symlink_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let link_path = dir.path().join("ttyFILM");
    let first = Pty::open_raw().unwrap();
    std::os::unix::fs::symlink(first.slave_path(), &link_path).unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["line-1"]);
    let cfg = link_cfg("line-1", link_path.to_str().unwrap());
    let reconnect_max_ms = cfg.reconnect_max_ms;
    let _link = start_link(cfg, queue.recipient(), links.clone()).unwrap();
    wait_up(&links, "line-1").await;
    let first = write(first, record("A", 1)).await;
    queue.wait_enqueued(1).await;

    // Unplug: the device goes away with its name (as udev removes it); the link notices and
    // goes down. The name goes first: a pty number, once closed, is soon another test's.
    std::fs::remove_file(&link_path).unwrap();
    drop(first);
    let unplugged_at = Instant::now();
    let down = wait_for(Duration::from_secs(5), "link down", async || {
        let s = status(&links, "line-1");
        (s.state != LinkState::Up && s.restarts >= 1).then_some(s)
    })
    .await;
    println!(
        "device loss noticed after {} ms",
        unplugged_at.elapsed().as_millis()
    );
    let error = down.last_error.unwrap_or_default();
    assert!(
        error.contains("end of file") || error.contains("read error"),
        "{error}"
    );
    // Leave it unplugged for a few backoff rounds.
    let restarts_at_unplug = down.restarts;
    wait_for(Duration::from_secs(5), "reopen attempts", async || {
        (status(&links, "line-1").restarts >= restarts_at_unplug + 3).then_some(())
    })
    .await;

    // Plug back: a new pty, the symlink re-pointed atomically (as udev does).
    let second = Pty::open_raw().unwrap();
    let tmp_link = dir.path().join("ttyFILM.new");
    std::os::unix::fs::symlink(second.slave_path(), &tmp_link).unwrap();
    std::fs::rename(&tmp_link, &link_path).unwrap();
    let plugged_at = Instant::now();
    wait_up(&links, "line-1").await;
    let reconnect = plugged_at.elapsed();
    println!(
        "reconnect after plug-back: {} ms (reconnect_max_ms = {reconnect_max_ms})",
        reconnect.as_millis()
    );
    assert!(
        reconnect < Duration::from_millis(reconnect_max_ms + 1000),
        "{reconnect:?}"
    );

    let _second = write(second, record("A", 2)).await;
    let films = queue.lease_films(2, DEADLINE).await;
    assert_eq!(film_nos(&films), [1, 2]);
    // Same lot across the reconnect: the sequence goes on.
    assert_eq!(films[0].sequence, films[1].sequence);
    assert_unique_uids(films.iter().map(|f| &f.uid), 2);
    let stats = queue.stats().await;
    assert_eq!((stats.enqueued_total, stats.dead), (2, 0), "{stats:?}");
    assert!(status(&links, "line-1").restarts >= 1);
}

#[actix_rt::test]
async fn a_link_with_a_missing_port_keeps_restarting_while_the_other_link_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ttyUSB9");
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["ghost", "good"]);
    let _ghost = start_link(
        link_cfg("ghost", missing.to_str().unwrap()),
        queue.recipient(),
        links.clone(),
    )
    .unwrap();
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _good = start_link(link_cfg("good", &port), queue.recipient(), links.clone()).unwrap();
    wait_up(&links, "good").await;

    let text: String = (1..=50).map(|n| record("A", n)).collect();
    let _pty = write(pty, text).await;
    let films = queue.lease_films(50, DEADLINE).await;
    assert_eq!(films.len(), 50);
    assert!(films.iter().all(|f| f.source == "good"));
    assert_eq!(film_nos(&films), (1..=50).collect::<Vec<_>>());
    assert_unique_uids(films.iter().map(|f| &f.uid), 50);

    let ghost = wait_for(Duration::from_secs(5), "ghost restarts", async || {
        let s = status(&links, "ghost");
        (s.restarts >= 3).then_some(s)
    })
    .await;
    assert_ne!(ghost.state, LinkState::Up);
    let error = ghost.last_error.unwrap_or_default();
    assert!(error.contains("cannot open"), "{error}");
    assert_eq!(ghost.frames_read, 0);
    assert_eq!(status(&links, "good").restarts, 0);
    let stats = queue.stats().await;
    assert_eq!((stats.enqueued_total, stats.dead), (50, 0), "{stats:?}");
}

#[actix_rt::test]
async fn idle_timeout_restarts_a_silent_link() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["quiet"]);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let cfg = SerialConfig {
        idle_timeout_ms: 300,
        ..link_cfg("quiet", &port)
    };
    let started = Instant::now();
    let _link = start_link(cfg, queue.recipient(), links.clone()).unwrap();
    let s = wait_for(Duration::from_secs(5), "an idle restart", async || {
        let s = status(&links, "quiet");
        (s.restarts >= 1).then_some(s)
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let error = s.last_error.unwrap_or_default();
    assert!(error.contains("no data"), "{error}");
    assert_eq!(error, "no data for 300 ms");
    // The pty is still there: the link opens it again.
    wait_up(&links, "quiet").await;
    assert_eq!(queue.stats().await.enqueued_total, 0, "nothing was read");
    drop(pty);
}

#[actix_rt::test]
async fn restart_link_through_the_registry_reopens_the_link_and_counts_a_restart() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["line-1"]);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue.recipient(), links.clone()).unwrap();
    wait_up(&links, "line-1").await;
    let pty = write(pty, record("A", 1)).await;
    queue.wait_enqueued(1).await;
    assert_eq!(status(&links, "line-1").restarts, 0);

    let handle = links.restart_handle("line-1").expect("restart handle");
    handle.send(RestartLink).await.unwrap();
    wait_for(
        Duration::from_secs(3),
        "a counted restart, up again",
        async || {
            let s = status(&links, "line-1");
            (s.restarts == 1 && s.state == LinkState::Up).then_some(())
        },
    )
    .await;

    let _pty = write(pty, record("A", 2)).await;
    let films = queue.lease_films(2, DEADLINE).await;
    assert_eq!(film_nos(&films), [1, 2]);
    assert_unique_uids(films.iter().map(|f| &f.uid), 2);
    assert_eq!(queue.stats().await.enqueued_total, 2);
    assert_eq!(status(&links, "line-1").restarts, 1);
}

#[actix_rt::test]
async fn stop_link_stops_reading_for_good() {
    let pty = Pty::open_raw().unwrap();
    let control_pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["line-1", "line-2"]);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let link = start_link(link_cfg("line-1", &port), queue.recipient(), links.clone()).unwrap();
    let control_port = control_pty.slave_path().to_str().unwrap().to_owned();
    let _control = start_link(
        link_cfg("line-2", &control_port),
        queue.recipient(),
        links.clone(),
    )
    .unwrap();
    wait_up(&links, "line-1").await;
    wait_up(&links, "line-2").await;
    let pty = write(pty, record("A", 1)).await;
    queue.wait_enqueued(1).await;

    link.send(StopLink).await.unwrap();
    let s = status(&links, "line-1");
    assert_eq!(s.state, LinkState::Down);
    assert_eq!(s.last_error.as_deref(), Some("stopped"));

    // A record for the stopped link, then one for a running link on the same runtime: once
    // the second is in the queue, a link that wrongly kept reading had its turn too.
    let _pty = write(pty, record("A", 2)).await;
    let _control_pty = write(control_pty, record("B", 1)).await;
    queue.wait_enqueued(2).await;
    let items = queue.items().await;
    let sources: Vec<&str> = items.iter().map(|i| i.source.as_str()).collect();
    assert_eq!(sources, ["line-1", "line-2"], "nothing read after the stop");
    assert_eq!(listed_film_no(&items[0]), 1);
    assert_eq!(status(&links, "line-1").state, LinkState::Down);
    assert_eq!(status(&links, "line-1").restarts, 0);
}

#[actix_rt::test]
async fn a_batch_the_queue_refuses_is_held_and_retried_with_the_same_items() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["line-1"]);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue.recipient(), links.clone()).unwrap();
    wait_up(&links, "line-1").await;

    // Another writer holds the queue file's write lock: the queue's next write fails with
    // "database is locked" after its busy timeout (2 s), and it refuses every write until
    // one of its commit retries (every 500 ms) gets through.
    let other = rusqlite::Connection::open(&queue.path).expect("second connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let text: String = (1..=3).map(|n| record("A", n)).collect();
    let pty = write(pty, text).await;
    wait_for(
        Duration::from_secs(10),
        "a failed queue write",
        async || (!queue.stats().await.store_ok).then_some(()),
    )
    .await;
    // Frame 4 waits in the pty: the link does not read while it holds a refused batch.
    let _pty = write(pty, record("A", 4)).await;
    // Refused, then offered again (each refusal can wait out the queue's 2 s busy timeout);
    // none may get in meanwhile.
    wait_for(
        Duration::from_secs(30),
        "the batch offered again",
        async || (status(&links, "line-1").queue_refusals >= 2).then_some(()),
    )
    .await;
    let stats = queue.stats().await;
    assert!(!stats.store_ok);
    assert_eq!(stats.enqueued_total, 0, "{stats:?}");
    assert!(queue.items().await.is_empty());
    assert_eq!(status(&links, "line-1").frames_read, 0);

    other.execute_batch("ROLLBACK").expect("release the lock");
    let released_at_ms = now_ms();
    // The queue's own retry may be inside a 2 s busy wait when the lock goes.
    let films = queue.lease_films(4, Duration::from_secs(10)).await;
    assert_eq!(film_nos(&films), [1, 2, 3, 4]);
    assert_unique_uids(films.iter().map(|f| &f.uid), 4);
    // The held films kept the read time of their first pass; frame 4 was read after.
    assert!(
        films[..3].iter().all(|f| f.received_at_ms < released_at_ms),
        "{:?} vs {released_at_ms}",
        films.iter().map(|f| f.received_at_ms).collect::<Vec<_>>()
    );
    assert!(films[3].received_at_ms >= released_at_ms);
    assert!(films.iter().all(|f| f.sequence == films[0].sequence));
    let stats = queue.stats().await;
    assert!(stats.store_ok);
    assert_eq!(
        (
            stats.enqueued_total,
            stats.pending,
            stats.in_flight,
            stats.dead
        ),
        (4, 0, 4, 0),
        "each frame exactly once: {stats:?}"
    );
    assert_eq!(queue.items().await.len(), 4);
    let s = wait_for(Duration::from_secs(2), "counters", async || {
        let s = status(&links, "line-1");
        (s.frames_read == 4).then_some(s)
    })
    .await;
    assert_eq!(s.restarts, 0);
}

#[actix_rt::test]
async fn a_sim_link_reads_films_from_the_simulated_machine() {
    let links = LinkRegistry::default();
    let queue = spawn_queue(&["sim-1"]);
    let cfg = SerialConfig {
        sim_rate_hz: 200.0,
        ..link_cfg("sim-1", "sim")
    };
    let _link = start_link(cfg, queue.recipient(), links.clone()).unwrap();
    // The first 20 items read are all films...
    let items = queue.wait_items(20).await;
    let first: Vec<&QueuedItem> = items.iter().take(20).collect();
    for item in &first {
        assert_eq!(item.state, ItemState::Pending, "{item:?}");
        assert!(item.sequence_uid.is_some());
    }
    // ...and lease in the same order, each in the sequence of its lot.
    let films = queue.lease_films(20, DEADLINE).await;
    assert_eq!(
        films.iter().map(|f| f.id).collect::<Vec<_>>(),
        first.iter().map(|i| i.id).collect::<Vec<_>>()
    );
    for film in &films {
        let fields = film.fields();
        let lot = fields["lot"].as_str().unwrap();
        assert!(lot.starts_with('L'), "{lot}");
        assert_eq!(film.sequence.key.as_deref(), Some(lot));
        assert_eq!(film.source, "sim-1");
    }
    let numbers = film_nos(&films);
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1 || w[1] == 1),
        "{numbers:?}"
    );
    let s = status(&links, "sim-1");
    assert_eq!(s.port, "sim");
    assert_eq!(s.state, LinkState::Up);
}
