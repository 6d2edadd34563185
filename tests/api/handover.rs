//! The line through restarts and oddities, on the real binary: graceful restarts and link
//! restarts on a pseudo-terminal (which keeps what the device sends while closed) turn no
//! whole record into a fragment; a fragment that is a whole record can be accepted by hand;
//! BREAK noise does not kill the record behind it; a wall-clock step holds nothing back; an
//! upstream's interim `100 Continue` is skipped; a queue file replaced under a running
//! gateway is noticed; every dead item is logged once.

use crate::helpers::*;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Every film row of the embedded records service, as `raw -> rows with it`.
async fn raws_stored(gateway: &Gateway) -> Option<HashMap<String, usize>> {
    let page = gateway.try_get_json("/api/films/?limit=1000000").await?;
    let mut raws = HashMap::new();
    for film in page["results"].as_array()? {
        *raws.entry(film["raw"].as_str()?.to_owned()).or_insert(0) += 1;
    }
    Some(raws)
}

/// The dead items of the gateway's queue.
async fn dead(gateway: &Gateway) -> Vec<Value> {
    let page = gateway
        .try_get_json("/api/queue/?state=dead&limit=1000")
        .await
        .expect("the queue answers");
    page["results"].as_array().unwrap().clone()
}

#[actix_rt::test]
async fn graceful_restarts_and_link_restarts_on_a_pty_turn_no_record_into_a_fragment() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let settings = test_settings(dir.path(), Some(&link), None);
    let mut gateway = Gateway::launch(dir.path(), &settings);
    gateway.wait_link_up().await;

    // A device printing 200 records a second, whatever the gateway does.
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop) = (written.clone(), stop.clone());
        let mut pty = pty;
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let line = film_line(&format!("H{}", n / 250), n);
                pty.write_all(line.as_bytes()).expect("pty write");
                written.store(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
            pty
        })
    };
    let restart_link = async |gateway: &Gateway| {
        let client = awc::Client::default();
        let res = client
            .post(format!("{}/api/links/line-1/restart", gateway.address))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    };
    // Restarts of both kinds, in an order and at moments drawn from a seed the log shows.
    let seed = fastrand::u64(..);
    println!("restart seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..6 {
        let at = written.load(Ordering::Relaxed) + rng.u64(20..200);
        wait_for(Duration::from_secs(30), "the device writing", async || {
            (written.load(Ordering::Relaxed) >= at).then_some(())
        })
        .await;
        if rng.bool() {
            gateway.restart(Signal::SIGTERM).await;
        } else {
            restart_link(&gateway).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _pty = writer.join().unwrap();
    let written = written.load(Ordering::Relaxed);
    let last = film_line(&format!("H{}", written / 250), written);
    let raws = wait_for(Duration::from_secs(60), "every record stored", async || {
        let raws = raws_stored(&gateway).await?;
        raws.contains_key(last.trim_end_matches('\r'))
            .then_some(raws)
    })
    .await;
    gateway.wait_idle(Duration::from_secs(30)).await;
    let dead = dead(&gateway).await;
    assert!(dead.is_empty(), "seed {seed}: {dead:?}");
    assert_eq!(raws.len() as u64, written, "seed {seed}: records missing");
    assert!(raws.values().all(|&rows| rows == 1), "seed {seed}");
}

#[actix_rt::test]
async fn a_whole_record_kept_as_a_fragment_can_be_accepted_by_hand_and_is_then_delivered() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    // Printed before the gateway came: where it starts is unknown, so it is a fragment.
    pty.write_all(film_line("LOT-ACC", 1).as_bytes()).unwrap();
    let settings = test_settings(dir.path(), Some(&link), None);
    let gateway = Gateway::launch(dir.path(), &settings);
    gateway.wait_link_up().await;
    pty.write_all(film_line("LOT-ACC", 2).as_bytes()).unwrap();
    wait_for(
        Duration::from_secs(30),
        "the later record stored",
        async || {
            let raws = raws_stored(&gateway).await?;
            (raws.len() == 1).then_some(())
        },
    )
    .await;
    let dead = dead(&gateway).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["last_error"], "partial frame at link start");
    let whole = dead[0]["id"].as_i64().unwrap();
    let client = awc::Client::default();
    let post = async |action: &str| {
        let mut res = client
            .post(format!("{}/api/queue/{whole}/{action}", gateway.address))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        (res.status().as_u16(), body)
    };
    // Retry does not deliver a fragment; accept does, its bytes being a whole record.
    let (status, item) = post("retry").await;
    assert_eq!((status, &item["state"]), (200, &Value::from("dead")));
    let (status, item) = post("accept").await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["accepted_by_hand"], true, "{item}");
    wait_for(
        Duration::from_secs(30),
        "the accepted record stored",
        async || {
            let raws = raws_stored(&gateway).await?;
            (raws.len() == 2).then_some(())
        },
    )
    .await;
    let films = gateway.try_get_json("/api/films/").await.unwrap();
    let sequences: Vec<&Value> = films["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["sequence"])
        .collect();
    assert_eq!(
        sequences[0], sequences[1],
        "the accepted film joins its lot"
    );
    let posted = gateway
        .try_get_json(&format!("/api/queue/{whole}"))
        .await
        .unwrap();
    assert_eq!(
        (&posted["state"], &posted["accepted_by_hand"]),
        (&Value::from("posted"), &Value::from(true))
    );
}

#[actix_rt::test]
async fn a_break_in_front_of_a_record_is_counted_noise_and_the_record_arrives_whole() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let settings = test_settings(dir.path(), Some(&link), None);
    let gateway = Gateway::launch(dir.path(), &settings);
    gateway.wait_link_up().await;
    pty.write_all(b"\0LOT-0001,40,25.1,1200,0\r\0\0LOT-0001,41,25.2,1200,0\r")
        .unwrap();
    wait_for(Duration::from_secs(30), "both records stored", async || {
        let raws = raws_stored(&gateway).await?;
        (raws.len() == 2).then_some(raws)
    })
    .await;
    let sequences = gateway.try_get_json("/api/sequences/").await.unwrap();
    assert_eq!(sequences["count"], 1);
    assert_eq!(sequences["results"][0]["key"], "LOT-0001");
    let links = gateway.try_get_json("/api/links/").await.unwrap();
    assert_eq!(links[0]["noise_bytes"], 3, "{links}");
    assert!(dead(&gateway).await.is_empty());
}

#[actix_rt::test]
async fn a_wall_clock_stepped_back_an_hour_holds_no_retry_back() {
    let libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(libfaketime).exists(),
        "libfaketime is missing: run tests/peers.sh"
    );
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    upstream.script().fail_next = usize::MAX;
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let mut settings = test_settings(dir.path(), Some(&link), Some(&upstream.base_url));
    settings.upstream.retry_max_ms = 2_000;
    let config = dir.path().join("filmgate.toml");
    write_config(&config, &settings);
    let clock = dir.path().join("faketime");
    std::fs::write(&clock, "+0").unwrap();
    let clock_path = clock.display().to_string();
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let gateway = Gateway::start_logging_with(
        &config,
        log,
        &[
            ("LD_PRELOAD", libfaketime),
            ("FAKETIME_TIMESTAMP_FILE", &clock_path),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    gateway.wait_link_up().await;
    for n in 1..=10 {
        pty.write_all(film_line("CLK", n).as_bytes()).unwrap();
    }
    wait_for(Duration::from_secs(30), "retries waiting", async || {
        let page = gateway.try_get_json("/api/queue/?state=pending").await?;
        let items = page["results"].as_array()?;
        let retried = items.iter().any(|i| i["attempts"].as_u64() >= Some(2));
        (items.len() == 10 && retried).then_some(())
    })
    .await;
    // NTP, a wrong RTC or a hand steps the clock back an hour while the upstream is down.
    std::fs::write(&clock, "-3600").unwrap();
    upstream.script().fail_next = 0;
    wait_for(
        Duration::from_secs(20),
        "every film delivered after the step",
        async || (upstream.seen().films.len() == 10).then_some(()),
    )
    .await;
    let numbers = upstream.film_numbers();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn an_interim_100_continue_before_the_final_answer_is_skipped() {
    let dir = temp_dir();
    // Answers `100 Continue` and the final `201` in one write, as some servers and proxies do.
    let (base_url, answered) = raw_upstream(|n| {
        let body = format!("{{\"id\": {n}}}");
        format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    });
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let settings = test_settings(dir.path(), Some(&link), Some(&base_url));
    let gateway = Gateway::launch(dir.path(), &settings);
    gateway.wait_link_up().await;
    for n in 1..=10 {
        pty.write_all(film_line("CONT", n).as_bytes()).unwrap();
    }
    let stats = wait_for(Duration::from_secs(30), "every film answered", async || {
        let stats = gateway.try_get_json("/api/queue/stats").await?;
        let answered = stats["posted"].as_u64()? + stats["dead"].as_u64()?;
        (answered == 10).then_some(stats)
    })
    .await;
    assert_eq!((&stats["posted"], &stats["dead"]), (&10.into(), &0.into()));
    // One sequence and ten films, each posted once.
    assert_eq!(answered.load(Ordering::Relaxed), 11);
}

#[actix_rt::test]
async fn a_queue_file_replaced_under_a_running_gateway_is_noticed_and_named() {
    let dir = temp_dir();
    let settings = test_settings(dir.path(), None, None);
    let (gateway, log) = Gateway::launch_logging(dir.path(), &settings);
    gateway.wait_answering().await;
    let queue = &settings.queue.path;
    std::fs::rename(queue, queue.with_extension("moved")).unwrap();
    std::fs::write(queue, b"").unwrap();
    let client = awc::Client::default();
    wait_for(
        Duration::from_secs(60),
        "/readyz answering 503",
        async || {
            let res = client
                .get(format!("{}/readyz", gateway.address))
                .send()
                .await
                .ok()?;
            (res.status() == 503).then_some(())
        },
    )
    .await;
    let log = std::fs::read_to_string(log).unwrap();
    let named = format!("the queue file {} was replaced", queue.display());
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains(&named)),
        "{log}"
    );
}

#[actix_rt::test]
async fn every_dead_item_is_logged_once_naming_it() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let settings = test_settings(dir.path(), Some(&link), None);
    let (mut gateway, log) = Gateway::launch_logging(dir.path(), &settings);
    gateway.wait_link_up().await;
    pty.write_all(b"L1,1,25.4\rL1,2,25.4,1200,0\r").unwrap();
    wait_for(Duration::from_secs(30), "the bad frame dead", async || {
        (dead(&gateway).await.len() == 1).then_some(())
    })
    .await;
    let item = dead(&gateway).await.remove(0);
    gateway.stop(Signal::SIGTERM);
    let log = std::fs::read_to_string(log).unwrap();
    let named = format!(
        "item {} (uid {}, link line-1)",
        item["id"],
        item["uid"].as_str().unwrap()
    );
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&named)).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("expected 5 fields"),
        "{log}"
    );
}
