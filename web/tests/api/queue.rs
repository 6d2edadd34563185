//! Queue routes against an empty queue. Tests with items (dead retry, delete, 409 on a
//! non-dead item, state filters, pagination) need the real QueueActor and come at the merge.

use crate::helpers::spawn_app;
use awc::http::StatusCode;
use serde_json::{Value, json};

#[actix_rt::test]
async fn queue_list_of_an_empty_queue_is_an_empty_drf_page() {
    let app = spawn_app().await;
    let (status, page) = app.get_json("/api/queue/?state=dead&limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[actix_rt::test]
async fn queue_list_rejects_an_unknown_state_with_400() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/queue/?state=done").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("pending"));
}

#[actix_rt::test]
async fn queue_stats_are_served_as_json() {
    let app = spawn_app().await;
    let (status, stats) = app.get_json("/api/queue/stats").await;
    assert_eq!(status, StatusCode::OK);
    for key in [
        "pending",
        "in_flight",
        "dead",
        "posted",
        "oldest_pending_age_ms",
        "store_ok",
    ] {
        assert!(stats.get(key).is_some(), "missing {key} in {stats}");
    }
}

#[actix_rt::test]
async fn unknown_queue_items_are_404_json_for_get_retry_and_delete() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/queue/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("12345"));
    let (status, _) = app.post_json("/api/queue/12345/retry", &Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete("/api/queue/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_rt::test]
async fn retry_all_on_an_empty_queue_retries_nothing() {
    let app = spawn_app().await;
    let (status, body) = app.post_json("/api/queue/retry", &Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"retried": 0, "still_dead": 0}));
}
