//! Delivery (`docs/ARCHITECTURE.md`, delivery rules): everything arrives once, whatever the upstream does.

use crate::helpers::*;
use filmgate_actors::poster::BodyShape;
use filmgate_actors::token::Token;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

/// Writes films `from..=to` of `lot` to the pty.
fn write_films(pty: &mut LinkedPty, lot: &str, from: u64, to: u64) {
    let text: String = (from..=to).map(|n| film_line(lot, n)).collect();
    pty.write_all(text.as_bytes()).unwrap();
}

async fn wait_films(upstream: &TestUpstream, count: usize) {
    wait_for(PATIENCE, &format!("{count} films upstream"), async || {
        (upstream.seen().films.len() >= count).then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn every_film_arrives_once_with_nested_body_token_and_idempotency_key() {
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    let mut pty = pty_behind(&device_link(dir.path()));
    let mut settings = test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&upstream.base_url),
    );
    settings.upstream.token = Token::parse("s3cret-token").unwrap();
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;

    write_films(&mut pty, "LOT-A", 1, 30);
    write_films(&mut pty, "LOT-B", 31, 50);
    wait_films(&upstream, 50).await;

    assert_eq!(upstream.film_numbers(), (1..=50).collect::<Vec<_>>());
    {
        let seen = upstream.seen();
        assert!(
            seen.created.values().all(|&n| n == 1),
            "a uid was created twice"
        );
        assert_eq!(seen.sequences.len(), 2, "one sequence per lot");
        let lot_of_sequence: std::collections::HashMap<u64, String> = seen
            .sequences
            .values()
            .map(|(id, body)| (*id, body["key"].as_str().unwrap().to_owned()))
            .collect();
        for (uid, (_, body)) in &seen.films {
            assert_eq!(body["uid"], uid.as_str());
            assert_eq!(body["source"], "line-1");
            let data = &body["data"];
            assert_eq!(
                lot_of_sequence[&body["sequence"].as_u64().unwrap()],
                data["lot"].as_str().unwrap()
            );
            assert_eq!(
                body["raw"].as_str().unwrap(),
                film_line(
                    data["lot"].as_str().unwrap(),
                    data["film_no"].as_u64().unwrap()
                )
                .trim_end_matches('\r')
            );
            assert!(
                data["thickness_um"].is_f64() && data["defects"].is_u64(),
                "{data}"
            );
            assert!(body["received_at"].as_str().unwrap().ends_with('Z'));
        }
        for (path, auth, key) in &seen.headers {
            assert_eq!(auth.as_deref(), Some("Token s3cret-token"), "{path}");
            assert!(key.is_some(), "{path} without Idempotency-Key");
        }
        let film_keys = seen
            .headers
            .iter()
            .filter(|(p, _, _)| p == "/api/films/")
            .count();
        assert_eq!(film_keys, 50);
    }
    wait_for(PATIENCE, "posted count", async || {
        (app.stats().await["posted"] == 50).then_some(())
    })
    .await;
    app.stop().await;
}

#[actix_rt::test]
async fn flat_bodies_carry_data_fields_at_top_level() {
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    let mut pty = pty_behind(&device_link(dir.path()));
    let mut settings = test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&upstream.base_url),
    );
    settings.upstream.body = BodyShape::Flat;
    settings.upstream.concurrency = 1;
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "F", 1, 10);
    wait_films(&upstream, 10).await;
    {
        let seen = upstream.seen();
        for (_, body) in seen.films.values() {
            assert!(body.get("data").is_none());
            assert_eq!(body["lot"], "F");
            assert!(body["film_no"].is_u64() && body["width_mm"].is_f64());
        }
        // concurrency = 1 keeps read order: ids were given in film order.
        let mut by_id: Vec<(u64, u64)> = seen
            .films
            .values()
            .map(|(id, b)| (*id, b["film_no"].as_u64().unwrap()))
            .collect();
        by_id.sort_unstable();
        assert_eq!(
            by_id.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
    }
    app.stop().await;
}

#[actix_rt::test]
async fn upstream_answering_503_for_a_while_then_201_gets_everything_once() {
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    upstream.script().fail_next = 25;
    let mut pty = pty_behind(&device_link(dir.path()));
    let app = spawn_app(test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&upstream.base_url),
    ))
    .await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "X", 1, 40);
    wait_films(&upstream, 40).await;
    assert_eq!(upstream.film_numbers(), (1..=40).collect::<Vec<_>>());
    assert!(upstream.seen().created.values().all(|&n| n == 1));
    assert_eq!(
        upstream.script().fail_next,
        0,
        "the outage was really served"
    );
    let metrics = app.metrics().await;
    // Each of the 25 refused requests sent back at least one item for a retry.
    let retried: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("filmgate_posts_total{outcome=\"retried\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retried count in\n{metrics}"));
    assert!(retried >= 25, "{retried} items retried after 25 refusals");
    app.stop().await;
}

#[actix_rt::test]
async fn upstream_down_at_start_gets_everything_when_it_comes_up() {
    let dir = temp_dir();
    let port = unclaimed_port();
    let base_url = format!("http://127.0.0.1:{port}/api/");
    let mut pty = pty_behind(&device_link(dir.path()));
    let app = spawn_app(test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&base_url),
    ))
    .await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "D", 1, 20);
    wait_for(
        PATIENCE,
        "20 items queued while the upstream is down",
        async || {
            let s = app.stats().await;
            (s["pending"].as_u64().unwrap() + s["in_flight"].as_u64().unwrap() == 20).then_some(())
        },
    )
    .await;
    // Down, not just late: the poster has tried and failed more than once.
    wait_for(
        PATIENCE,
        "posts failing against the closed port",
        async || {
            let pending = app.get_json("/api/queue/?state=pending&limit=20").await;
            let results = pending["results"].as_array()?;
            let most_attempts = results
                .iter()
                .filter_map(|i| i["attempts"].as_u64())
                .max()?;
            (most_attempts >= 2).then_some(())
        },
    )
    .await;
    let upstream = TestUpstream::start_on(
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(),
        UpstreamState::default(),
    );
    wait_films(&upstream, 20).await;
    assert_eq!(upstream.film_numbers(), (1..=20).collect::<Vec<_>>());
    app.stop().await;
}

#[actix_rt::test]
async fn a_400_makes_a_dead_item_that_a_retry_delivers_after_the_upstream_is_fixed() {
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    upstream.script().reject_raw = vec!["BADLOT".into()];
    let mut pty = pty_behind(&device_link(dir.path()));
    let app = spawn_app(test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&upstream.base_url),
    ))
    .await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "OK", 1, 1);
    write_films(&mut pty, "BADLOT", 2, 2);
    write_films(&mut pty, "OK2", 3, 3);
    wait_films(&upstream, 2).await;
    let dead = wait_for(PATIENCE, "one dead item", async || {
        let page = app.get_json("/api/queue/?state=dead").await;
        (page["count"] == 1).then(|| page["results"][0].clone())
    })
    .await;
    assert!(
        dead["last_error"].as_str().unwrap().starts_with("HTTP 400"),
        "{dead}"
    );
    assert!(dead["raw"].as_str().unwrap().starts_with("BADLOT,2,"));
    assert_eq!(dead["state"], "dead");

    upstream.script().reject_raw.clear();
    let (status, item) = app.post(&format!("/api/queue/{}/retry", dead["id"])).await;
    assert_eq!(status, 200, "{item}");
    wait_films(&upstream, 3).await;
    assert_eq!(upstream.film_numbers(), vec![1, 2, 3]);
    wait_for(PATIENCE, "no dead items", async || {
        (app.stats().await["dead"] == 0).then_some(())
    })
    .await;
    app.stop().await;
}

#[actix_rt::test]
async fn a_stalled_post_is_retried_and_the_replayed_200_counts_as_delivered() {
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    {
        let mut script = upstream.script();
        script.stall_next = 1;
        script.stall = Duration::from_millis(1500);
    }
    let mut pty = pty_behind(&device_link(dir.path()));
    let mut settings = test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&upstream.base_url),
    );
    settings.upstream.timeout_ms = 300;
    settings.upstream.concurrency = 1;
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "S", 1, 3);
    wait_for(PATIENCE, "all posted", async || {
        (app.stats().await["posted"] == 3).then_some(())
    })
    .await;
    {
        let seen = upstream.seen();
        assert_eq!(seen.films.len(), 3);
        assert!(seen.created.values().all(|&n| n == 1));
        assert!(
            seen.replays >= 1,
            "the retry met the stored film and got 200"
        );
    }
    let stats = app.stats().await;
    assert_eq!(stats["dead"], 0);
    app.stop().await;
}

#[actix_rt::test]
async fn a_queue_path_that_cannot_be_created_is_a_clear_error() {
    let dir = temp_dir();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"file").unwrap();
    let mut settings = test_settings(dir.path(), None, None);
    settings.queue.path = blocker.join("queue.sqlite3");
    let err = match filmgate::startup::Application::build(settings).await {
        Ok(_) => panic!("the app must not start without its queue"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("cannot open the queue") && err.contains("not-a-dir"),
        "{err}"
    );
}

#[actix_rt::test]
async fn batches_are_judged_per_item_and_each_sequence_is_posted_once() {
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    upstream.script().reject_raw = vec!["REJECT".into()];
    let mut pty = pty_behind(&device_link(dir.path()));
    let mut settings = test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&upstream.base_url),
    );
    settings.upstream.batch_size = 50;
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "BATCH", 1, 120);
    write_films(&mut pty, "REJECT", 121, 121);
    write_films(&mut pty, "AFTER", 122, 130);
    wait_films(&upstream, 129).await;
    wait_for(PATIENCE, "the rejected film dead", async || {
        (app.stats().await["dead"] == 1).then_some(())
    })
    .await;
    assert_eq!(
        upstream.film_numbers(),
        (1..=120).chain(122..=130).collect::<Vec<_>>()
    );
    {
        let seen = upstream.seen();
        assert_eq!(seen.sequences.len(), 3);
        assert!(seen.created.values().all(|&n| n == 1));
        let batch_posts = seen
            .headers
            .iter()
            .filter(|(p, _, _)| p == "/api/films/batch/")
            .count();
        assert!(
            batch_posts < 129,
            "films went in batches ({batch_posts} requests)"
        );
        assert_eq!(
            seen.headers
                .iter()
                .filter(|(p, _, _)| p == "/api/sequences/")
                .count(),
            3
        );
    }
    let dead = app.get_json("/api/queue/?state=dead").await;
    assert!(
        dead["results"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("400"),
        "{dead}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn after_a_restart_films_of_the_same_lot_stay_in_their_sequence() {
    let dir = temp_dir();
    let upstream = TestUpstream::start().await;
    let mut pty = pty_behind(&device_link(dir.path()));
    let settings = test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        Some(&upstream.base_url),
    );
    let app = spawn_app(settings.clone()).await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "LOT-R", 1, 3);
    wait_films(&upstream, 3).await;
    app.stop().await;

    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "LOT-R", 4, 6);
    write_films(&mut pty, "LOT-S", 7, 7);
    wait_films(&upstream, 7).await;
    {
        let seen = upstream.seen();
        assert_eq!(seen.sequences.len(), 2, "LOT-R continued, LOT-S started");
        let lot_r: std::collections::HashSet<u64> = seen
            .films
            .values()
            .filter(|(_, b)| b["data"]["lot"] == "LOT-R")
            .map(|(_, b)| b["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(
            lot_r.len(),
            1,
            "films of LOT-R in one sequence across the restart"
        );
    }
    app.stop().await;
}

#[actix_rt::test]
async fn an_empty_base_url_posts_to_the_embedded_service_wherever_web_bind_is() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    // Every test posts to `base_url = ""` on 127.0.0.1:0; this one binds every address, so
    // the poster must pick loopback itself.
    let mut settings = test_settings(dir.path(), Some(&link), None);
    settings.web.bind = "0.0.0.0:0".parse().unwrap();
    assert_eq!(settings.upstream.base_url, "");
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    write_films(&mut pty, "EMB", 1, 3);
    wait_for(PATIENCE, "films in the embedded service", async || {
        let films = app.get_json("/api/films/").await;
        (films["count"] == 3).then_some(())
    })
    .await;
    app.stop().await;
}
