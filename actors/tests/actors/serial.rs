//! Tests of the serial stage: real pseudo-terminals opened through tokio-serial by real
//! supervised SerialActors. The queue's place is taken by a small recording sink actor (the
//! end-to-end tests use the real queue).

use actix::prelude::*;
use filmgate_actors::links::{LinkRegistry, LinkState, LinkStatus};
use filmgate_actors::messages::{Enqueue, EnqueueOutcome, RestartLink, StopLink};
use filmgate_actors::queue::QueueError;
use filmgate_actors::record::{ItemBody, NewItem};
use filmgate_actors::serial::pty::Pty;
use filmgate_actors::serial::{SerialConfig, start_link};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---- helpers ---------------------------------------------------------------------------------

/// Stands in for the queue: records every batch, refusing the first `refuse_first` sends.
struct Sink {
    batches: Arc<Mutex<Vec<Vec<NewItem>>>>,
    refuse_first: usize,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<Enqueue> for Sink {
    type Result = Result<EnqueueOutcome, QueueError>;

    fn handle(&mut self, msg: Enqueue, _: &mut Context<Self>) -> Self::Result {
        if self.refuse_first > 0 {
            self.refuse_first -= 1;
            return Err(QueueError::Unavailable("test sink refuses".into()));
        }
        let accepted = msg.items.len();
        self.batches.lock().unwrap().push(msg.items);
        Ok(EnqueueOutcome {
            accepted,
            refused: 0,
        })
    }
}

/// What a [`Sink`] received.
#[derive(Clone)]
struct Received(Arc<Mutex<Vec<Vec<NewItem>>>>);

impl Received {
    fn items(&self) -> Vec<NewItem> {
        self.0.lock().unwrap().iter().flatten().cloned().collect()
    }

    fn batch_count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn sink(refuse_first: usize) -> (Recipient<Enqueue>, Received) {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let addr = Sink {
        batches: batches.clone(),
        refuse_first,
    }
    .start();
    (addr.recipient(), Received(batches))
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

/// Polls `check` every 10 ms until it gives a value, failing the test after `limit`.
async fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status(links: &LinkRegistry, name: &str) -> LinkStatus {
    links.get(name).expect("link registered")
}

async fn wait_up(links: &LinkRegistry, name: &str) {
    wait_for(&format!("{name} up"), Duration::from_secs(5), || {
        (status(links, name).state == LinkState::Up).then_some(())
    })
    .await;
}

async fn wait_items(received: &Received, count: usize) -> Vec<NewItem> {
    wait_for(&format!("{count} items"), Duration::from_secs(5), || {
        let items = received.items();
        (items.len() >= count).then_some(items)
    })
    .await
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

fn film_no(item: &NewItem) -> i64 {
    match &item.body {
        ItemBody::Film(data) => data["film_no"].as_i64().unwrap(),
        other => panic!("expected a film, got {other:?}"),
    }
}

fn reason(item: &NewItem) -> &str {
    match &item.body {
        ItemBody::Rejected { reason } => reason,
        other => panic!("expected a rejected frame, got {other:?}"),
    }
}

// ---- tests -----------------------------------------------------------------------------------

#[actix_rt::test]
async fn records_written_to_a_pty_arrive_as_parsed_films_in_order_with_sequences_by_lot() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let (queue, received) = sink(0);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue, links.clone()).unwrap();
    wait_up(&links, "line-1").await;

    let lots = ["A", "A", "A", "B", "B", "C"];
    let text: String = lots
        .iter()
        .enumerate()
        .map(|(i, lot)| record(lot, i as u32 + 1))
        .collect();
    let _pty = write(pty, text).await;
    let items = wait_items(&received, 6).await;

    assert_eq!(items.len(), 6);
    assert_eq!(
        items.iter().map(film_no).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(items[0].raw, b"A,1,25.01,1200.5,0");
    assert_eq!(items[0].source, "line-1");
    let ItemBody::Film(data) = &items[3].body else {
        unreachable!()
    };
    assert_eq!(
        serde_json::Value::Object(data.clone()),
        json!({"lot": "B", "film_no": 4, "thickness_um": 25.04, "width_mm": 1200.5, "defects": 0})
    );
    let seq = |i: usize| items[i].sequence.clone().expect("films have a sequence");
    assert_eq!(seq(0), seq(1));
    assert_eq!(seq(1), seq(2));
    assert_ne!(seq(2).uid, seq(3).uid);
    assert_eq!(seq(3), seq(4));
    assert_ne!(seq(4).uid, seq(5).uid);
    assert_eq!(
        [seq(0).key, seq(3).key, seq(5).key].map(Option::unwrap),
        ["A", "B", "C"]
    );
    let mut uids: Vec<_> = items.iter().map(|i| i.uid.clone()).collect();
    uids.dedup();
    assert_eq!(uids.len(), 6);

    let s = wait_for("counters", Duration::from_secs(2), || {
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
    let (queue, received) = sink(0);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue, links.clone()).unwrap();
    wait_up(&links, "line-1").await;

    let long_line: Vec<u8> = (0..70_001u32).map(|i| b'0' + (i % 10) as u8).collect();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(record("A", 1).as_bytes());
    bytes.extend_from_slice(b"A,\xff\xfe,25.0,1200,0\r");
    bytes.extend_from_slice(record("A", 2).as_bytes());
    bytes.extend_from_slice(&long_line);
    bytes.push(b'\r');
    bytes.extend_from_slice(record("A", 3).as_bytes());
    bytes.extend_from_slice(b"A,4,25.0\r");
    bytes.extend_from_slice(record("A", 5).as_bytes());
    let _pty = write(pty, bytes).await;
    let items = wait_items(&received, 7).await;

    assert_eq!(items.len(), 7);
    assert_eq!(film_no(&items[0]), 1);
    assert_eq!(items[1].raw, b"A,\xff\xfe,25.0,1200,0");
    assert_eq!(reason(&items[1]), "invalid UTF-8 at byte 2 of 16");
    assert_eq!(film_no(&items[2]), 2);
    assert_eq!(items[3].raw, long_line);
    assert_eq!(
        reason(&items[3]),
        "frame exceeds max_frame_bytes (4096): 70001 bytes"
    );
    assert_eq!(film_no(&items[4]), 3);
    assert_eq!(items[5].raw, b"A,4,25.0");
    assert!(
        reason(&items[5]).contains("expected 5 fields"),
        "{}",
        reason(&items[5])
    );
    assert_eq!(film_no(&items[6]), 5);
    // Rejected frames ride in the current sequence without changing it.
    assert!(items.iter().all(|i| i.sequence == items[0].sequence));

    wait_for("counters", Duration::from_secs(2), || {
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
    let (queue, received) = sink(0);
    let cfg = link_cfg("line-1", link_path.to_str().unwrap());
    let reconnect_max_ms = cfg.reconnect_max_ms;
    let _link = start_link(cfg, queue, links.clone()).unwrap();
    wait_up(&links, "line-1").await;
    let first = write(first, record("A", 1)).await;
    wait_items(&received, 1).await;

    // Unplug: the device goes away; the link notices and goes down.
    drop(first);
    let unplugged_at = Instant::now();
    let down = wait_for("link down", Duration::from_secs(5), || {
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
    actix_rt::time::sleep(Duration::from_millis(300)).await;

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
    let items = wait_items(&received, 2).await;
    assert_eq!(items.iter().map(film_no).collect::<Vec<_>>(), [1, 2]);
    // Same lot across the reconnect: the sequence goes on.
    assert_eq!(items[0].sequence, items[1].sequence);
    assert!(status(&links, "line-1").restarts >= 1);
}

#[actix_rt::test]
async fn a_link_with_a_missing_port_keeps_restarting_while_the_other_link_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ttyUSB9");
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let (queue, received) = sink(0);
    let _ghost = start_link(
        link_cfg("ghost", missing.to_str().unwrap()),
        queue.clone(),
        links.clone(),
    )
    .unwrap();
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _good = start_link(link_cfg("good", &port), queue, links.clone()).unwrap();
    wait_up(&links, "good").await;

    let text: String = (1..=50).map(|n| record("A", n)).collect();
    let _pty = write(pty, text).await;
    let items = wait_items(&received, 50).await;
    assert_eq!(items.len(), 50);
    assert!(items.iter().all(|i| i.source == "good"));
    assert_eq!(
        items.iter().map(film_no).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>()
    );

    let ghost = wait_for("ghost restarts", Duration::from_secs(5), || {
        let s = status(&links, "ghost");
        (s.restarts >= 3).then_some(s)
    })
    .await;
    assert_ne!(ghost.state, LinkState::Up);
    let error = ghost.last_error.unwrap_or_default();
    assert!(error.contains("cannot open"), "{error}");
    assert_eq!(ghost.frames_read, 0);
    assert_eq!(status(&links, "good").restarts, 0);
}

#[actix_rt::test]
async fn idle_timeout_restarts_a_silent_link() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let (queue, _received) = sink(0);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let cfg = SerialConfig {
        idle_timeout_ms: 300,
        ..link_cfg("quiet", &port)
    };
    let started = Instant::now();
    let _link = start_link(cfg, queue, links.clone()).unwrap();
    let s = wait_for("an idle restart", Duration::from_secs(5), || {
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
    drop(pty);
}

#[actix_rt::test]
async fn restart_link_through_the_registry_reopens_the_link_and_counts_a_restart() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let (queue, received) = sink(0);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue, links.clone()).unwrap();
    wait_up(&links, "line-1").await;
    let pty = write(pty, record("A", 1)).await;
    wait_items(&received, 1).await;
    assert_eq!(status(&links, "line-1").restarts, 0);

    let handle = links.restart_handle("line-1").expect("restart handle");
    handle.send(RestartLink).await.unwrap();
    wait_for(
        "a counted restart, up again",
        Duration::from_secs(3),
        || {
            let s = status(&links, "line-1");
            (s.restarts == 1 && s.state == LinkState::Up).then_some(())
        },
    )
    .await;

    let _pty = write(pty, record("A", 2)).await;
    let items = wait_items(&received, 2).await;
    assert_eq!(items.iter().map(film_no).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(status(&links, "line-1").restarts, 1);
}

#[actix_rt::test]
async fn stop_link_stops_reading_for_good() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let (queue, received) = sink(0);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue, links.clone()).unwrap();
    wait_up(&links, "line-1").await;
    let pty = write(pty, record("A", 1)).await;
    wait_items(&received, 1).await;

    for stop in links.stop_handles() {
        stop.send(StopLink).await.unwrap();
    }
    let s = status(&links, "line-1");
    assert_eq!(s.state, LinkState::Down);
    assert_eq!(s.last_error.as_deref(), Some("stopped"));

    let _pty = write(pty, record("A", 2)).await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received.items().len(), 1, "nothing read after the stop");
    assert_eq!(status(&links, "line-1").state, LinkState::Down);
    assert_eq!(status(&links, "line-1").restarts, 0);
}

#[actix_rt::test]
async fn a_batch_the_queue_refuses_is_held_and_retried_with_the_same_items() {
    let pty = Pty::open_raw().unwrap();
    let links = LinkRegistry::default();
    let (queue, received) = sink(2);
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let _link = start_link(link_cfg("line-1", &port), queue, links.clone()).unwrap();
    wait_up(&links, "line-1").await;
    let text: String = (1..=3).map(|n| record("A", n)).collect();
    let pty = write(pty, text).await;
    // Two refusals, 500 ms apart, then taken.
    let items = wait_items(&received, 3).await;
    assert_eq!(items.iter().map(film_no).collect::<Vec<_>>(), [1, 2, 3]);
    let _pty = write(pty, record("A", 4)).await;
    let items = wait_items(&received, 4).await;
    assert_eq!(items.iter().map(film_no).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(status(&links, "line-1").frames_read, 4);
    assert_eq!(status(&links, "line-1").restarts, 0);
}

#[actix_rt::test]
async fn a_sim_link_reads_films_from_the_simulated_machine() {
    let links = LinkRegistry::default();
    let (queue, received) = sink(0);
    let cfg = SerialConfig {
        sim_rate_hz: 200.0,
        ..link_cfg("sim-1", "sim")
    };
    let _link = start_link(cfg, queue, links.clone()).unwrap();
    let items = wait_items(&received, 20).await;
    for item in &items {
        let ItemBody::Film(data) = &item.body else {
            panic!("{:?} {:?}", item.body, String::from_utf8_lossy(&item.raw))
        };
        assert!(data["lot"].as_str().unwrap().starts_with('L'));
        assert!(item.sequence.is_some());
    }
    let numbers: Vec<i64> = items.iter().map(film_no).collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1 || w[1] == 1),
        "{numbers:?}"
    );
    assert!(received.batch_count() >= 1);
    let s = status(&links, "sim-1");
    assert_eq!(s.port, "sim");
    assert_eq!(s.state, LinkState::Up);
}
