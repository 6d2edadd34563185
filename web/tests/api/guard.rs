//! What a hostile page in the operator's browser can do: nothing. A foreign `Host` (DNS
//! rebinding) is refused, a cross-site write is refused with or without the token, no response
//! may be framed or sniffed; HEAD works wherever GET does.

use crate::helpers::{spawn_app, spawn_app_with_token};
use awc::http::StatusCode;

#[actix_rt::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/api/films/",
        "/healthz",
        "/metrics",
        "/no/such/page",
        "/favicon.ico",
    ] {
        let res = app.client().get(app.url(path)).send().await.unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
}

#[actix_rt::test]
async fn a_foreign_host_is_refused_with_a_json_403() {
    let app = spawn_app().await;
    for host in [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.evil.example",
    ] {
        let mut res = app
            .client()
            .get(app.url("/api/queue/stats"))
            .insert_header(("Host", host))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{host}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("allowed_hosts"),
            "{body}"
        );
    }
    for host in ["localhost:1234", "127.0.0.1"] {
        let res = app
            .client()
            .get(app.url("/healthz"))
            .insert_header(("Host", host))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{host}");
    }
}

#[actix_rt::test]
async fn cross_site_writes_are_refused_token_or_not() {
    for app in [spawn_app().await, spawn_app_with_token("s3cret").await] {
        let own = app.address.trim_start_matches("http://").to_owned();
        for (name, value) in [
            ("Origin", "http://evil.example".to_owned()),
            ("Origin", "null".to_owned()),
            ("Sec-Fetch-Site", "cross-site".to_owned()),
        ] {
            let (status, body) = app
                .post_json_with(
                    "/api/queue/retry",
                    &serde_json::json!({}),
                    &[(name, &value)],
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
            assert!(
                body["error"].as_str().unwrap().contains("cross-site"),
                "{body}"
            );
        }
        let same_origin = format!("http://{own}");
        let (status, _) = app
            .post_json_with(
                "/api/queue/retry",
                &serde_json::json!({}),
                &[("Origin", &same_origin)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "the dashboard's own page may write");
    }
}

#[actix_rt::test]
async fn head_answers_wherever_get_does_and_favicon_is_served() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/healthz",
        "/api/films/",
        "/favicon.ico",
        "/assets/main.js",
    ] {
        let mut res = app.client().head(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "HEAD {path}");
        assert!(
            res.body().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    let (status, content_type, body) = app.get_text("/favicon.ico").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "image/svg+xml");
    assert!(body.starts_with("<svg"));
}
