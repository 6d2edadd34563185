//! Health, readiness, metrics and the dashboard assets.

use crate::helpers::{spawn_app, spawn_app_with, stopped_queue};
use awc::http::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;

#[actix_rt::test]
async fn healthz_is_200_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[actix_rt::test]
async fn readyz_is_200_when_the_queue_answers() {
    let app = spawn_app().await;
    let (status, _) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_rt::test]
async fn readyz_is_503_when_the_queue_actor_is_gone() {
    let app = spawn_app_with(None, stopped_queue()).await;
    let mut status = StatusCode::OK;
    // The placeholder stops asynchronously; poll until it has.
    for _ in 0..100 {
        status = app.get_json("/readyz").await.0;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (_, body) = app.get_json("/readyz").await;
    assert!(body["error"].is_string());
    // Everything not needing the queue keeps working.
    let (status, _) = app.get_json("/api/films/").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get_json("/api/queue/stats").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"].is_string());
}

#[actix_rt::test]
async fn metrics_expose_every_series_in_prometheus_text() {
    let app = spawn_app().await;
    app.post_metrics.delivered.fetch_add(3, Ordering::Relaxed);
    app.post_metrics.observe_latency_us(2_500);
    let (status, ctype, text) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
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
        "filmgate_queue_oldest_pending_age_seconds 0",
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
}

#[actix_rt::test]
async fn dashboard_and_assets_are_served_with_types_and_no_cache() {
    let app = spawn_app().await;
    for (path, ctype) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
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
