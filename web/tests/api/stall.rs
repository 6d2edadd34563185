//! Request bodies that stall or trickle, on raw sockets: answered 408 and closed within the
//! limits, token or not; a refused request's unread body does not keep its connection.

use crate::helpers::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends a POST head announcing a body of `length` bytes and `first` of it.
fn announce(app: &TestApp, path: &str, length: usize, first: &[u8]) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream
}

/// Reads until the server closes the connection (at most `within`): what it answered.
fn answer_then_close(stream: &mut TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return String::from_utf8_lossy(&answer).into_owned(),
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&answer).into_owned();
            }
            Err(e) => panic!(
                "not closed within {within:?} ({e}); got {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
}

#[actix_rt::test]
async fn a_body_that_stops_coming_is_answered_408_and_closed() {
    let app = spawn_app().await;
    let started = Instant::now();
    let answer = actix_rt::task::spawn_blocking(move || {
        let mut stream = announce(&app, "/api/films/", 1_000_000, b"{\"uid\": ");
        answer_then_close(&mut stream, Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("stalled"), "{answer}");
    let took = started.elapsed();
    // web.body_idle_timeout_ms defaults to 5000.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[actix_rt::test]
async fn a_body_trickled_a_byte_every_2_s_is_cut_off_within_30_s() {
    let app = spawn_app().await;
    let started = Instant::now();
    let answer = actix_rt::task::spawn_blocking(move || {
        let mut stream = announce(&app, "/api/films/", 1_000_000, b"[");
        let mut writer = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            while writer.write_all(b" ").is_ok() {
                std::thread::sleep(Duration::from_secs(2));
            }
        });
        answer_then_close(&mut stream, Duration::from_secs(45))
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(35), "{took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[actix_rt::test]
async fn a_refused_write_with_a_trickling_body_does_not_keep_its_connection() {
    let app = spawn_app_with_token("s3cret-token").await;
    let started = Instant::now();
    let answer = actix_rt::task::spawn_blocking(move || {
        let mut stream = announce(&app, "/api/queue/retry", 1_000_000, b"x");
        let mut writer = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            while writer.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        answer_then_close(&mut stream, Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
}
