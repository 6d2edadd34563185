//! What leaves the real binary: an upstream password or token appears in no log line and no
//! API answer, whether the upstream is down or answers; an upstream's hostile error body
//! cannot forge a log line or drive a terminal; binding beyond loopback with reads open is
//! said at start.

use crate::helpers::*;
use filmgate_actors::token::Token;
use nix::sys::signal::Signal;
use std::time::Duration;

#[actix_rt::test]
async fn an_upstream_password_and_token_appear_in_no_log_line_and_no_api_answer() {
    let dir = temp_dir();
    let port = unclaimed_port();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let base_url = format!("http://admin:S3cretPW@127.0.0.1:{port}/api/");
    let mut settings = test_settings(dir.path(), Some(&link), Some(&base_url));
    settings.upstream.token = Token::parse("T0kenS3cret").unwrap();
    settings.upstream.auth_scheme = "Bearer".into();
    let (mut gateway, log) = Gateway::launch_logging(dir.path(), &settings);
    gateway.wait_link_up().await;
    for n in 1..=3 {
        pty.write_all(film_line("SEC", n).as_bytes()).unwrap();
    }
    // The upstream is down: every item waits with the error of its last attempt.
    let pending = wait_for(Duration::from_secs(30), "failed attempts", async || {
        let page = gateway.try_get_json("/api/queue/?state=pending").await?;
        let failed = page["results"]
            .as_array()?
            .iter()
            .any(|i| i["last_error"].is_string());
        failed.then_some(page)
    })
    .await;
    let answer = pending.to_string();
    assert!(answer.contains("request to http"), "{answer}");
    // Up again: the "recovered" line names the upstream too.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let upstream = TestUpstream::start_on(listener, UpstreamState::default());
    wait_for(Duration::from_secs(30), "delivered", async || {
        (upstream.seen().films.len() == 3).then_some(())
    })
    .await;
    let everything = [
        "/api/queue/?limit=100",
        "/api/queue/1",
        "/api/links/",
        "/api/refresh/",
        "/api/queue/stats",
    ];
    for path in everything {
        let answer = gateway.try_get_json(path).await.unwrap().to_string();
        for secret in ["S3cretPW", "T0kenS3cret"] {
            assert!(!answer.contains(secret), "{path}: {answer}");
        }
    }
    gateway.stop(Signal::SIGTERM);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("is failing") && log.contains("recovered"),
        "{log}"
    );
    assert!(log.contains("admin:<redacted>@127.0.0.1"), "{log}");
    for secret in ["S3cretPW", "T0kenS3cret"] {
        assert!(!log.contains(secret), "{log}");
    }
}

#[actix_rt::test]
async fn a_hostile_error_body_cannot_forge_a_log_line_or_drive_a_terminal() {
    let dir = temp_dir();
    let hostile = "bad\nWARN  filmgate forged line\r\u{1b}[2J\u{1b}]0;pwned\u{7}";
    let (base_url, _) = raw_upstream(move |n| {
        let (status, body) = match n {
            1 => ("201 Created", "{\"id\": 1}".to_owned()),
            _ => ("400 Bad Request", hostile.to_owned()),
        };
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    });
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let settings = test_settings(dir.path(), Some(&link), Some(&base_url));
    let (mut gateway, log) = Gateway::launch_logging(dir.path(), &settings);
    gateway.wait_link_up().await;
    pty.write_all(film_line("EVIL", 1).as_bytes()).unwrap();
    wait_for(Duration::from_secs(30), "the film dead", async || {
        let stats = gateway.try_get_json("/api/queue/stats").await?;
        (stats["dead"] == 1).then_some(())
    })
    .await;
    gateway.stop(Signal::SIGTERM);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("is dead"), "{log}");
    assert!(!log.contains('\u{1b}') && !log.contains('\r') && !log.contains('\u{7}'));
    assert!(
        !log.lines().any(|l| l.starts_with("WARN  filmgate forged")),
        "{log}"
    );
    assert!(log.contains("bad\\nWARN  filmgate forged line\\r"), "{log}");
}

#[actix_rt::test]
async fn binding_beyond_loopback_with_reads_open_is_said_at_start() {
    let dir = temp_dir();
    let mut settings = test_settings(dir.path(), None, None);
    settings.web.bind = "0.0.0.0:0".parse().unwrap();
    settings.web.token = Token::parse("s3cret-token").unwrap();
    let (mut gateway, log) = Gateway::launch_logging(dir.path(), &settings);
    gateway.wait_answering().await;
    gateway.stop(Signal::SIGTERM);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("reads open") && l.contains("protect_reads")),
        "{log}"
    );
}
