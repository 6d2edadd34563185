//! Health, readiness, metrics and the dashboard assets.

use crate::helpers::{DEADLINE, spawn_app};
use awc::http::StatusCode;
use filmgate_actors::messages::Enqueue;
use filmgate_testkit::{film_item, wait_for};
use serde_json::{Value, json};

#[actix_rt::test]
async fn healthz_is_200_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[actix_rt::test]
async fn readyz_is_200_when_the_queue_answers() {
    let app = spawn_app().await;
    let (status, _) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_rt::test]
async fn readyz_is_503_while_the_queue_file_is_locked_by_another_process_and_200_once_freed() {
    let app = spawn_app().await;
    // Another writer on the queue file (a second gateway, an sqlite3 shell left in a
    // transaction) holds its write lock: the store's next write fails with SQLITE_BUSY after
    // its busy timeout (2 s). `max_page_count` cannot do this from outside: it is a setting
    // of the connection that sets it, not of the file.
    let other = rusqlite::Connection::open(&app.queue_path).expect("second connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("write lock");

    let refused = app
        .queue
        .send(Enqueue {
            items: vec![film_item(1)],
        })
        .await
        .unwrap();
    let err = refused.expect_err("a write under another's lock succeeded");
    assert!(err.to_string().contains("locked"), "{err}");

    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert!(body["error"].as_str().unwrap().contains("failed"), "{body}");
    // Reads keep working and say why; writes are refused with 503 and the cause.
    let (status, stats) = app.get("/api/queue/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["store_ok"], false);
    let (status, body) = app.post_json("/api/queue/retry", &Value::Null).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("locked"), "{body}");
    let (status, _) = app.get("/api/films/").await;
    assert_eq!(status, StatusCode::OK);

    // The queue retries its commit on its own; once the lock is gone it is ready again and
    // takes frames.
    other.execute_batch("ROLLBACK").expect("release the lock");
    wait_for(DEADLINE, "readyz OK after the lock was freed", async || {
        (app.get("/readyz").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    app.enqueue(vec![film_item(1)]).await;
    app.wait_for_json("/api/queue/stats", |s| {
        s["pending"] == 1 && s["store_ok"] == true
    })
    .await;
}

#[actix_rt::test]
async fn metrics_expose_every_series_in_prometheus_text() {
    let app = spawn_app().await;
    app.post_metrics.delivered.inc_by(3);
    app.post_metrics.observe_latency_us(2_500);
    let (status, ctype, text) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        ctype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ctype}"
    );
    for series in [
        "filmgate_frames_read_total{link=\"line-1\"} 0",
        "filmgate_frames_rejected_total{link=\"line-1\"} 0",
        "filmgate_link_restarts_total{link=\"line-1\"} 0",
        "filmgate_link_up{link=\"line-1\"} 0",
        "filmgate_queue_items{state=\"pending\"} 0",
        "filmgate_queue_items{state=\"in_flight\"} 0",
        "filmgate_queue_items{state=\"dead\"} 0",
        "filmgate_queue_items{state=\"posted\"} 0",
        "filmgate_queue_refused_total 0",
        "filmgate_queue_oldest_pending_age_seconds 0.0",
        "filmgate_posts_total{outcome=\"delivered\"} 3",
        "filmgate_posts_total{outcome=\"retried\"} 0",
        "filmgate_posts_total{outcome=\"dead\"} 0",
        "filmgate_sequences_posted_total 0",
        "filmgate_post_latency_seconds_bucket{le=\"0.003\"} 1",
        "filmgate_post_latency_seconds_bucket{le=\"+Inf\"} 1",
        "filmgate_post_latency_seconds_sum 0.0025",
        "filmgate_post_latency_seconds_count 1",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "missing {series:?} in\n{text}"
        );
    }
    assert!(text.contains("# HELP filmgate_post_latency_seconds "));
    assert_eq!(
        text.lines().last(),
        Some("# EOF"),
        "an OpenMetrics text ends with EOF"
    );
}

#[actix_rt::test]
async fn dashboard_and_assets_are_served_with_types_and_no_cache() {
    let app = spawn_app().await;
    for (path, ctype) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/main.js", "text/javascript; charset=utf-8"),
        ("/assets/live.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
    ] {
        let resp = app.client().get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers().get("content-type").unwrap(), ctype, "{path}");
        assert_eq!(
            resp.headers().get("cache-control").unwrap(),
            "no-cache",
            "{path}"
        );
    }
}
