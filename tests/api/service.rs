//! Running under systemd, on the real binary: the notify protocol over a real unix datagram
//! socket (READY=1, WATCHDOG=1 every half of `WATCHDOG_USEC`, STOPPING=1 at SIGTERM), the
//! journal's line format, and a quiet log at the default level — no line per film or per
//! request, a line for each change of a link's state.

use crate::helpers::*;
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// The datagrams received on `socket` until `until` says enough or `within` passes.
fn notifications(
    socket: &UnixDatagram,
    within: Duration,
    until: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !until(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not within {within:?}; got {seen:?}");
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_owned());
        }
    }
    seen
}

#[actix_rt::test]
async fn the_service_manager_hears_ready_then_watchdogs_then_stopping() {
    let dir = temp_dir();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let settings = test_settings(dir.path(), None, None);
    let config = dir.path().join("filmgate.toml");
    write_config(&config, &settings);
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let notify_socket = socket_path.display().to_string();
    let mut gateway = Gateway::start_logging_with(
        &config,
        log,
        &[
            ("NOTIFY_SOCKET", notify_socket.as_str()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let socket = std::sync::Arc::new(socket);
    let reader = socket.clone();
    let seen = actix_rt::task::spawn_blocking(move || {
        notifications(&reader, Duration::from_secs(20), |seen| {
            seen.iter().filter(|m| *m == "WATCHDOG=1").count() >= 5
        })
    })
    .await
    .unwrap();
    assert_eq!(seen[0], "READY=1", "{seen:?}");
    assert!(seen[1..].iter().all(|m| m == "WATCHDOG=1"), "{seen:?}");
    // The gateway is up and answering when it says it is ready.
    assert!(gateway.try_get_json("/healthz").await.is_some());
    let status = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");
    let after = actix_rt::task::spawn_blocking(move || {
        notifications(&socket, Duration::from_secs(10), |seen| {
            seen.iter().any(|m| m == "STOPPING=1")
        })
    })
    .await
    .unwrap();
    assert!(
        after.iter().all(|m| m == "WATCHDOG=1" || m == "STOPPING=1"),
        "{after:?}"
    );
}

#[actix_rt::test]
async fn under_the_journal_lines_carry_their_priority_and_no_timestamp() {
    use std::os::unix::fs::MetadataExt;
    let dir = temp_dir();
    let settings = test_settings(dir.path(), None, None);
    let config = dir.path().join("filmgate.toml");
    write_config(&config, &settings);
    let path = dir.path().join("journal.log");
    let log = std::fs::File::create(&path).unwrap();
    let meta = log.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let mut gateway = Gateway::start_logging_with(&config, log, &[("JOURNAL_STREAM", &stream)]);
    gateway.wait_answering().await;
    gateway.stop(Signal::SIGTERM);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("<6>filmgate")), "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('<') && !l.contains("Z ")),
        "{text}"
    );
}

#[actix_rt::test]
async fn at_line_rate_the_default_log_says_only_what_changes() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let settings = test_settings(dir.path(), Some(&link), None);
    let (mut gateway, log_path) = Gateway::launch_logging(dir.path(), &settings);
    gateway.wait_link_up().await;
    // A line printing 25 films a second, posted to the embedded records service.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut pty = pty;
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                pty.write_all(film_line("QUIET", n).as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(40));
            }
            pty
        })
    };
    wait_for(Duration::from_secs(30), "films delivered", async || {
        let stats = gateway.try_get_json("/api/queue/stats").await?;
        (stats["delivered_total"].as_u64()? >= 25).then_some(())
    })
    .await;
    let settled = std::fs::read_to_string(&log_path).unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after = std::fs::read_to_string(&log_path).unwrap();
    let delivered = gateway.try_get_json("/api/queue/stats").await.unwrap()["delivered_total"]
        .as_u64()
        .unwrap();
    assert!(delivered >= 400, "the line ran ({delivered} films)");
    assert_eq!(
        &after[settled.len()..],
        "",
        "lines written in 20 s of steady line rate"
    );
    // Unplugged (the pty goes), then plugged back (a new pty behind the same name).
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(writer.join().unwrap());
    wait_for(Duration::from_secs(30), "the link down", async || {
        let links = gateway.try_get_json("/api/links/").await?;
        (links[0]["state"] == "down").then_some(())
    })
    .await;
    let _pty = pty_behind(&link);
    gateway.wait_link_up().await;
    gateway.stop(Signal::SIGTERM);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let changes: Vec<&str> = log[after.len()..]
        .lines()
        .filter(|l| !l.contains("shutting down") && !l.contains("stopped"))
        .collect();
    let link_lines: Vec<&&str> = changes
        .iter()
        .filter(|l| l.contains("serial link line-1"))
        .collect();
    assert!(
        link_lines.len() <= 5 && changes.len() == link_lines.len(),
        "{changes:#?}"
    );
    assert!(link_lines[0].contains("WARN"), "{changes:#?}");
    assert!(
        link_lines.last().unwrap().contains("INFO") && link_lines.last().unwrap().contains("up"),
        "{changes:#?}"
    );
}
