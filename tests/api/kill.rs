//! The real binary killed with SIGKILL in the middle of a flood loses no safe frame, and the
//! upstream sees no duplicate; SIGTERM stops it cleanly with exit code 0.

use crate::helpers::*;
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Film numbers of every item in the queue file, in any state (what was safe on disk).
fn film_numbers_on_disk(queue: &Path) -> BTreeSet<u64> {
    let db = rusqlite::Connection::open(queue).unwrap();
    let mut stmt = db.prepare("SELECT raw FROM items").unwrap();
    stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|raw| {
            let raw = String::from_utf8(raw.unwrap()).unwrap();
            raw.split(',').nth(1).unwrap().parse().unwrap()
        })
        .collect()
}

#[actix_rt::test]
async fn sigkill_during_a_flood_loses_no_safe_frame_and_duplicates_nothing() {
    // Big enough that the writer is still flooding when the gateway is killed.
    const FILMS: u64 = 200_000;
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let mut settings = test_settings(dir.path(), Some(&link), Some(&upstream.base_url));
    settings.queue.posted_history = 10_000_000; // keep every delivered item for the check
    settings.upstream.batch_size = 50; // drain the rest quickly after the restart
    // The stop's drain may wait this long for posts in flight; an idle poster has none.
    settings.upstream.timeout_ms = 20_000;
    let config = dir.path().join("filmgate.toml");
    write_config(&config, &settings);

    let mut gateway = Gateway::start(&config);
    let address = gateway.address.clone();
    let client = awc::Client::default();
    let link_up = async || {
        let mut res = client
            .get(format!("{address}/api/links/"))
            .send()
            .await
            .ok()?;
        let links: serde_json::Value = res.json().await.ok()?;
        (links[0]["state"] == "up").then_some(())
    };
    wait_for(Duration::from_secs(20), "gateway link up", link_up).await;

    // Flood from a thread; the pty blocks the writer when the gateway does not read.
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop) = (written.clone(), stop.clone());
        let mut pty = pty;
        std::thread::spawn(move || {
            for chunk in (1..=FILMS).collect::<Vec<_>>().chunks(100) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let text: String = chunk
                    .iter()
                    .map(|&n| film_line(&format!("K{}", n / 1000), n))
                    .collect();
                // Once the gateway is killed nobody reads, and the pty gives up on the write.
                if pty.write_all(text.as_bytes()).is_err() {
                    break;
                }
                written.store(*chunk.last().unwrap(), Ordering::Relaxed);
            }
            pty
        })
    };
    wait_for(
        Duration::from_secs(30),
        "part of the flood delivered",
        async || (upstream.seen().films.len() >= 3_000).then_some(()),
    )
    .await;
    gateway.stop(Signal::SIGKILL);
    let written_at_kill = written.load(Ordering::Relaxed);
    let delivered_at_kill = upstream.seen().films.len();
    stop.store(true, Ordering::Relaxed);
    let _pty = writer.join().unwrap();
    let written_total = written.load(Ordering::Relaxed);

    let safe = film_numbers_on_disk(&settings.queue.path);
    assert!(!safe.is_empty());

    let mut gateway = Gateway::start(&config);
    wait_for(
        Duration::from_secs(60),
        "queue drained after restart",
        async || {
            let mut res = client
                .get(format!("{address}/api/queue/stats"))
                .send()
                .await
                .ok()?;
            let stats: serde_json::Value = res.json().await.ok()?;
            let idle = stats["pending"] == 0 && stats["in_flight"] == 0;
            (idle && upstream.seen().films.len() as u64 >= safe.len() as u64).then_some(())
        },
    )
    .await;

    let delivered: Vec<u64> = upstream.film_numbers();
    let delivered_set: BTreeSet<u64> = delivered.iter().copied().collect();
    assert_eq!(
        delivered.len(),
        delivered_set.len(),
        "a film was stored twice upstream"
    );
    assert!(
        upstream.seen().created.values().all(|&n| n == 1),
        "a uid was created twice"
    );
    let lost_safe: Vec<_> = safe.difference(&delivered_set).take(10).collect();
    assert!(
        lost_safe.is_empty(),
        "safe frames never delivered: {lost_safe:?}"
    );
    // Every film up to the writer's count was written whole; the chunk it gave up on may be
    // partly written too, and films of it can arrive: count up to the higher of the two.
    let highest = delivered_set.last().copied().unwrap_or(0);
    let never_delivered = written_total.max(highest) - delivered_set.len() as u64;
    // Only frames read since the last commit can go: the batch in the open transaction and
    // the burst the link was reading (each at most 1,024 frames), plus its read buffer.
    assert!(
        never_delivered <= 4096,
        "{never_delivered} frames lost: more than one read window"
    );
    println!(
        "kill -9 flood: written {written_total} (at kill {written_at_kill}), delivered before kill \
         {delivered_at_kill}, safe on disk at kill {}, delivered in all {}, frames lost (read or \
         buffered but not yet committed) {never_delivered}",
        safe.len(),
        delivered_set.len()
    );

    // SIGTERM: a graceful stop exits 0, and an idle poster's lease kept at the queue does not
    // hold the drain until the posts' timeout.
    let stopping = Instant::now();
    let status = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "SIGTERM exit: {status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "the stop took {:?}: the drain waited for a post that was never sent",
        stopping.elapsed()
    );
}
