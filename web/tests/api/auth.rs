//! The API token: writes need it when set, reads never do.

use crate::helpers::{spawn_app, spawn_app_with_token};
use awc::http::StatusCode;
use serde_json::{Value, json};

async fn post_with_auth(app: &crate::helpers::TestApp, auth: Option<&str>) -> (StatusCode, Value) {
    let mut req = app.client().post(app.url("/api/sequences/"));
    if let Some(value) = auth {
        req = req.insert_header(("Authorization", value));
    }
    let mut resp = req
        .send_json(&json!({"source": "line-1"}))
        .await
        .expect("request");
    let body = resp.body().await.expect("body");
    (
        resp.status(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn writes_without_a_valid_token_are_401_json() {
    let app = spawn_app_with_token("s3cret").await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0"),
        Some("s3cret"),
        Some("Bearer s3cre"),
    ] {
        let (status, body) = post_with_auth(&app, auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(
            body["error"].as_str().unwrap().contains("Authorization"),
            "{body}"
        );
    }
    let mut resp = app
        .client()
        .delete(app.url("/api/queue/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = resp.body().await.unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("s3cret"));
    let (_, page) = app.get_json("/api/sequences/").await;
    assert_eq!(page["count"], 0, "a refused write must store nothing");
}

#[actix_rt::test]
async fn bearer_and_token_schemes_are_both_accepted() {
    let app = spawn_app_with_token("s3cret").await;
    let (status, _) = post_with_auth(&app, Some("Bearer s3cret")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = post_with_auth(&app, Some("Token s3cret")).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_rt::test]
async fn reads_stay_open_when_a_token_is_set() {
    let app = spawn_app_with_token("s3cret").await;
    for path in [
        "/api/sequences/",
        "/api/films/",
        "/api/links/",
        "/api/queue/stats",
        "/api/refresh/",
    ] {
        let (status, _) = app.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, _) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_rt::test]
async fn without_a_configured_token_writes_need_no_header() {
    let app = spawn_app().await;
    let (status, _) = post_with_auth(&app, None).await;
    assert_eq!(status, StatusCode::CREATED);
}
