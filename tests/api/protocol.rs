//! The poster against answers no framework sends on purpose, from a raw-socket server of our
//! own: close-delimited HTTP/1.1 bodies and HTTP/1.0, a reset in the middle of an answer,
//! 307/308 chains and a 301, a 413 for batches, `Retry-After`, a sequence created without an id.

use crate::helpers::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the raw server read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub at: Instant,
    pub path: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the raw server does with a request.
pub enum RawAnswer {
    /// These bytes; then the connection is closed if `close`.
    Bytes { bytes: Vec<u8>, close: bool },
    /// These bytes, then a TCP reset (SO_LINGER 0).
    ResetAfter(Vec<u8>),
}

/// A response with a `Content-Length`, kept alive.
pub fn counted(status: &str, body: &str) -> RawAnswer {
    RawAnswer::Bytes {
        bytes: format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        close: false,
    }
}

/// A response ended by closing the connection, as Django's development server answers.
pub fn close_delimited(version: &str, status: &str, body: &str) -> RawAnswer {
    RawAnswer::Bytes {
        bytes: format!(
            "{version} {status}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{body}"
        )
        .into_bytes(),
        close: true,
    }
}

/// A bodiless response with extra header lines.
pub fn with_headers(status: &str, headers: &str) -> RawAnswer {
    RawAnswer::Bytes {
        bytes: format!("HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\n\r\n").into_bytes(),
        close: false,
    }
}

type Script = dyn Fn(usize, &RawRequest) -> RawAnswer + Send + Sync;

/// A raw HTTP server on port 0: every request is logged and answered by `script` (called with
/// the request's index among all requests).
pub struct RawServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<RawRequest>>>,
}

impl RawServer {
    pub fn start(
        script: impl Fn(usize, &RawRequest) -> RawAnswer + Send + Sync + 'static,
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, script) = (log.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &log, &*script));
            }
        });
        RawServer { port, requests }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/", self.port)
    }

    /// The requests to paths ending in `suffix`.
    pub fn to(&self, suffix: &str) -> Vec<RawRequest> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|r| r.path.ends_with(suffix))
            .cloned()
            .collect()
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<RawRequest>>, script: &Script) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf) else {
            return;
        };
        let index = {
            let mut log = log.lock().unwrap();
            log.push(request.clone());
            log.len() - 1
        };
        match script(index, &request) {
            RawAnswer::Bytes { bytes, close } => {
                if stream.write_all(&bytes).is_err() || close {
                    return;
                }
            }
            RawAnswer::ResetAfter(bytes) => {
                let _ = stream.write_all(&bytes);
                let linger = nix::libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &linger)
                    .unwrap();
                return;
            }
        }
    }
}

/// Reads one request (head and Content-Length body); `None` at EOF.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RawRequest> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Some(RawRequest {
        at: Instant::now(),
        path,
        body,
    })
}

/// A gateway reading a pty and posting to `base_url`, with `batch_size` films per request.
async fn gateway(dir: &std::path::Path, base_url: &str, batch_size: usize) -> (TestApp, LinkedPty) {
    let link = device_link(dir);
    let pty = pty_behind(&link);
    let mut settings = test_settings(dir, Some(&link), Some(base_url));
    settings.upstream.batch_size = batch_size;
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    (app, pty)
}

fn write(pty: &mut LinkedPty, from: u64, to: u64) {
    let text: String = (from..=to).map(|n| film_line("P", n)).collect();
    pty.write_all(text.as_bytes()).unwrap();
}

/// Waits until the queue has `posted` delivered and `dead` dead items and nothing waiting.
async fn wait_settled(app: &TestApp, posted: u64, dead: u64) -> Value {
    wait_for(Duration::from_secs(30), "the queue settled", async || {
        let stats = app.stats().await;
        let done = stats["posted"] == posted
            && stats["dead"] == dead
            && stats["pending"] == 0
            && stats["in_flight"] == 0;
        done.then_some(stats)
    })
    .await
}

async fn queue_items(app: &TestApp, state: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!("/api/queue/?state={state}&limit=1000"))
        .await;
    page["results"].as_array().cloned().unwrap_or_default()
}

#[actix_rt::test]
async fn close_delimited_http_1_1_and_http_1_0_answers_are_read_whole() {
    let server = RawServer::start(|i, req| {
        let version = if i % 2 == 0 { "HTTP/1.1" } else { "HTTP/1.0" };
        if req.path.ends_with("/sequences/") {
            close_delimited(version, "201 Created", r#"{"id": 41}"#)
        } else {
            let n = req.json()["data"]["film_no"].as_u64().unwrap();
            close_delimited(
                version,
                "201 Created",
                &format!(r#"{{"id": {}}}"#, 1000 + n),
            )
        }
    });
    let dir = temp_dir();
    let (app, mut pty) = gateway(dir.path(), &server.base_url(), 1).await;
    write(&mut pty, 1, 20);
    wait_settled(&app, 20, 0).await;
    assert_eq!(
        server.to("/sequences/").len(),
        1,
        "the sequence is posted once"
    );
    for item in queue_items(&app, "posted").await {
        let n = item["data"]["film_no"].as_u64().unwrap();
        assert_eq!(item["upstream_id"], json!(1000 + n), "{item}");
    }
    app.stop().await;
}

#[actix_rt::test]
async fn a_reset_in_the_middle_of_an_answer_is_retried_and_the_film_arrives_once() {
    let server = RawServer::start(|_, req| {
        if req.path.ends_with("/sequences/") {
            return counted("201 Created", r#"{"id": 1}"#);
        }
        static RESET_DONE: std::sync::atomic::AtomicBool =
            std::sync::atomic::AtomicBool::new(false);
        if !RESET_DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return RawAnswer::ResetAfter(b"HTTP/1.1 201 Cre".to_vec());
        }
        counted("201 Created", r#"{"id": 7}"#)
    });
    let dir = temp_dir();
    let (app, mut pty) = gateway(dir.path(), &server.base_url(), 1).await;
    write(&mut pty, 1, 1);
    wait_settled(&app, 1, 0).await;
    let posted = queue_items(&app, "posted").await;
    assert_eq!(posted[0]["attempts"], 2, "{posted:?}");
    let uids: Vec<Value> = server
        .to("/films/")
        .iter()
        .map(|r| r.json()["uid"].clone())
        .collect();
    assert_eq!(uids.len(), 2);
    assert_eq!(uids[0], uids[1], "the retry carries the same uid");
    app.stop().await;
}

#[actix_rt::test]
async fn redirects_307_and_308_are_followed_with_the_same_body_and_a_301_is_dead_with_its_location()
{
    let server = RawServer::start(|_, req| match req.path.as_str() {
        "/api/sequences/" => counted("201 Created", r#"{"id": 1}"#),
        "/api/films/" => with_headers("307 Temporary Redirect", "Location: /v2/films/\r\n"),
        "/v2/films/" => with_headers("308 Permanent Redirect", "Location: v3/\r\n"),
        "/v2/films/v3/" => counted("201 Created", r#"{"id": 9}"#),
        _ => counted("404 Not Found", "{}"),
    });
    let dir = temp_dir();
    let (app, mut pty) = gateway(dir.path(), &server.base_url(), 1).await;
    write(&mut pty, 1, 1);
    wait_settled(&app, 1, 0).await;
    let first = &server.to("/api/films/")[0];
    let last = &server.to("/v2/films/v3/")[0];
    assert_eq!(first.body, last.body, "the body went along each hop");
    app.stop().await;

    let moved = RawServer::start(|_, req| match req.path.as_str() {
        "/api/sequences/" => counted("201 Created", r#"{"id": 1}"#),
        _ => with_headers(
            "301 Moved Permanently",
            "Location: https://records.plant/api/films/\r\n",
        ),
    });
    let dir = temp_dir();
    let (app, mut pty) = gateway(dir.path(), &moved.base_url(), 1).await;
    write(&mut pty, 1, 1);
    wait_settled(&app, 0, 1).await;
    let dead = queue_items(&app, "dead").await;
    let error = dead[0]["last_error"].as_str().unwrap();
    assert!(error.starts_with("HTTP 301"), "{error}");
    assert!(
        error.contains("https://records.plant/api/films/"),
        "{error}"
    );
    assert!(error.contains("upstream.base_url"), "{error}");
    app.stop().await;
}

#[actix_rt::test]
async fn a_413_splits_the_batch_until_it_fits_and_kills_only_the_film_too_large_alone() {
    let server = RawServer::start(|_, req| {
        if req.path.ends_with("/sequences/") {
            return counted("201 Created", r#"{"id": 1}"#);
        }
        let films = req.json();
        let films = films.as_array().unwrap();
        let has_13 = films.iter().any(|f| f["data"]["film_no"] == 13);
        if films.len() > 8 || has_13 {
            counted("413 Payload Too Large", r#"{"detail": "too large"}"#)
        } else {
            counted("201 Created", "")
        }
    });
    let dir = temp_dir();
    let (app, mut pty) = gateway(dir.path(), &server.base_url(), 50).await;
    write(&mut pty, 1, 30);
    wait_settled(&app, 29, 1).await;
    let dead = queue_items(&app, "dead").await;
    assert_eq!(dead[0]["data"]["film_no"], 13);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 413")
    );
    app.stop().await;
}

#[actix_rt::test]
async fn retry_after_on_a_429_is_waited_out() {
    let server = RawServer::start(|i, req| {
        if req.path.ends_with("/sequences/") {
            counted("201 Created", r#"{"id": 1}"#)
        } else if i == 1 {
            with_headers("429 Too Many Requests", "Retry-After: 2\r\n")
        } else {
            counted("201 Created", r#"{"id": 2}"#)
        }
    });
    let dir = temp_dir();
    let (app, mut pty) = gateway(dir.path(), &server.base_url(), 1).await;
    write(&mut pty, 1, 1);
    wait_settled(&app, 1, 0).await;
    let films = server.to("/films/");
    let waited = films[1].at - films[0].at;
    assert!(
        waited >= Duration::from_millis(1990),
        "retried after {waited:?}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn a_sequence_created_without_an_id_kills_its_films_and_is_posted_once() {
    let server = RawServer::start(|_, _| counted("201 Created", r#"{"pk": 5}"#));
    let dir = temp_dir();
    let (app, mut pty) = gateway(dir.path(), &server.base_url(), 1).await;
    write(&mut pty, 1, 5);
    wait_settled(&app, 0, 5).await;
    assert_eq!(server.to("/sequences/").len(), 1);
    assert!(server.to("/films/").is_empty());
    let dead = queue_items(&app, "dead").await;
    let error = dead[0]["last_error"].as_str().unwrap();
    assert!(error.contains("no `id` field"), "{error}");
    app.stop().await;
}

#[actix_rt::test]
async fn an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let down = Arc::new(AtomicBool::new(true));
    let server = RawServer::start({
        let down = down.clone();
        move |_, req| {
            if down.load(Ordering::SeqCst) {
                counted(
                    "503 Service Unavailable",
                    r#"{"detail": "down for maintenance"}"#,
                )
            } else if req.path.ends_with("/sequences/") {
                counted("201 Created", r#"{"id": 1}"#)
            } else {
                counted("201 Created", r#"{"id": 2}"#)
            }
        }
    });
    let dir = temp_dir();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let settings = test_settings(dir.path(), Some(&link), Some(&server.base_url()));
    let (mut gateway, log_path) = Gateway::launch_logging(dir.path(), &settings);
    gateway.wait_link_up().await;
    write(&mut pty, 1, 10);
    wait_for(
        Duration::from_secs(30),
        "a few failed attempts",
        async || (server.requests.lock().unwrap().len() >= 5).then_some(()),
    )
    .await;
    down.store(false, Ordering::SeqCst);
    wait_for(Duration::from_secs(30), "all delivered", async || {
        (gateway.try_get_json("/api/queue/stats").await?["posted"] == 10).then_some(())
    })
    .await;
    assert!(gateway.stop(nix::sys::signal::Signal::SIGTERM).success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let failing: Vec<&str> = log.lines().filter(|l| l.contains("is failing")).collect();
    let recovered: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("recovered after"))
        .collect();
    assert_eq!(failing.len(), 1, "{log}");
    assert!(
        failing[0].contains("WARN") && failing[0].contains("HTTP 503"),
        "{log}"
    );
    assert!(failing[0].contains("10 items wait"), "{log}");
    assert_eq!(recovered.len(), 1, "{log}");
    assert!(recovered[0].contains("INFO"), "{log}");
}
