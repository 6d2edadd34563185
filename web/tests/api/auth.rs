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
    let (_, page) = app.get("/api/sequences/").await;
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
        let (status, _) = app.get(path).await;
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

/// Status of a GET of `path` with the given `Authorization` and `Cookie` values.
async fn get_status(
    app: &crate::helpers::TestApp,
    path: &str,
    auth: Option<&str>,
    cookie: Option<&str>,
) -> StatusCode {
    let mut req = app.client().get(app.url(path));
    if let Some(value) = auth {
        req = req.insert_header(("Authorization", value));
    }
    if let Some(value) = cookie {
        req = req.insert_header(("Cookie", value));
    }
    req.send().await.expect("request").status()
}

#[actix_rt::test]
async fn protected_reads_need_the_token_or_a_session_and_writes_still_need_the_header() {
    let app = crate::helpers::spawn_app_protecting_reads("s3cret-token").await;
    let reads = [
        "/api/queue/",
        "/api/queue/stats",
        "/api/films/",
        "/api/links/",
        "/api/refresh/",
        "/api/events/",
        "/metrics",
    ];
    for path in reads {
        assert_eq!(
            get_status(&app, path, None, None).await,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            get_status(&app, path, Some("Bearer wrong"), None).await,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    for path in ["/healthz", "/readyz", "/", "/favicon.ico"] {
        assert_eq!(
            get_status(&app, path, None, None).await,
            StatusCode::OK,
            "{path} stays open"
        );
    }
    assert_eq!(
        get_status(&app, "/api/queue/", Some("Bearer s3cret-token"), None).await,
        StatusCode::OK
    );

    // The dashboard's way: the token once, for a cookie that authorizes reads.
    let refused = app
        .client()
        .post(app.url("/api/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let opened = app
        .client()
        .post(app.url("/api/session"))
        .insert_header(("Authorization", "Bearer s3cret-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let set_cookie = opened
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    for path in reads {
        assert_eq!(
            get_status(&app, path, None, Some(&cookie)).await,
            StatusCode::OK,
            "{path} with the session"
        );
    }
    let forged =
        "filmgate_session=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_eq!(
        get_status(&app, "/api/queue/", None, Some(forged)).await,
        StatusCode::UNAUTHORIZED
    );
    // A cookie never authorizes a write (a cross-site request would carry it).
    let write = app
        .client()
        .post(app.url("/api/queue/retry"))
        .insert_header(("Cookie", cookie.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);
}
