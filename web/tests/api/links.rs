//! Serial links over REST.

use crate::helpers::{RestartProbe, eventually, spawn_app};
use actix::Actor;
use awc::http::StatusCode;
use filmgate_actors::links::LinkState;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[actix_rt::test]
async fn links_list_shows_every_registered_link_with_its_status() {
    let app = spawn_app().await;
    app.links.register("line-2", "/dev/ttyUSB1");
    app.links.update("line-2", |s| {
        s.state = LinkState::Up;
        s.frames_read = 12;
    });
    let (status, body) = app.get_json("/api/links/").await;
    assert_eq!(status, StatusCode::OK);
    let links = body.as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["name"], "line-1");
    assert_eq!(links[0]["state"], "connecting");
    assert_eq!(links[1]["name"], "line-2");
    assert_eq!(links[1]["state"], "up");
    assert_eq!(links[1]["frames_read"], 12);
    for key in [
        "port",
        "restarts",
        "last_error",
        "frames_rejected",
        "last_frame_at",
    ] {
        assert!(links[1].get(key).is_some(), "missing {key}");
    }
}

#[actix_rt::test]
async fn restarting_an_unknown_link_is_404_json() {
    let app = spawn_app().await;
    let (status, body) = app.post_json("/api/links/nope/restart", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nope"));
}

#[actix_rt::test]
async fn restarting_a_link_that_is_not_running_is_409() {
    let app = spawn_app().await;
    let (status, body) = app.post_json("/api/links/line-1/restart", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].is_string());
}

#[actix_rt::test]
async fn restarting_a_running_link_sends_it_restart_and_answers_202() {
    let app = spawn_app().await;
    let restarts = Arc::new(AtomicU64::new(0));
    let probe = RestartProbe {
        restarts: restarts.clone(),
    }
    .start();
    app.links
        .set_control("line-1", probe.clone().recipient(), probe.recipient());
    let (status, body) = app.post_json("/api/links/line-1/restart", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"restarting": "line-1"}));
    assert!(
        eventually(Duration::from_secs(5), || restarts.load(Ordering::SeqCst)
            == 1)
        .await
    );
}
