//! Bursts against the real binary, measured from /proc of the server while they run: a huge
//! batch body costs no more than its bytes and is refused, and the gateway stays responsive.

use crate::helpers::*;
use std::time::{Duration, Instant};

/// A /proc/PID/status field in kB (VmHWM, VmRSS) or a count (Threads).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap()
}

#[actix_rt::test]
async fn huge_batch_bodies_are_refused_in_bounded_memory_while_healthz_answers() {
    let dir = temp_dir();
    let settings = test_settings(dir.path(), None, None);
    let gateway = Gateway::launch(dir.path(), &settings);
    let address = gateway.address.clone();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    gateway.wait_answering().await;
    let pid = gateway.child.id();

    // 2.8 million tiny items in 8 MiB (within the byte cap), and a 16 MiB body (over it).
    let items: bytes::Bytes = std::iter::once(b'[')
        .chain(std::iter::repeat_n(*b"{},", 2_796_000).flatten())
        .chain(*b"{}]")
        .collect::<Vec<u8>>()
        .into();
    let oversized: bytes::Bytes = vec![b' '; 16 << 20].into();
    let post = |body: bytes::Bytes| {
        let client = client.clone();
        let url = format!("{address}/api/films/batch/");
        async move {
            let mut res = client
                .post(url)
                .insert_header(("Content-Type", "application/json"))
                .send_body(body)
                .await
                .unwrap();
            let json: serde_json::Value = res.json().await.unwrap();
            (res.status().as_u16(), json)
        }
    };
    let burst = futures_util::future::join_all(
        (0..4)
            .map(|i| {
                post(if i % 2 == 0 {
                    items.clone()
                } else {
                    oversized.clone()
                })
            })
            .collect::<Vec<_>>(),
    );
    let probe = async {
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let started = Instant::now();
            let res = client
                .get(format!("{address}/healthz"))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success());
            slowest = slowest.max(started.elapsed());
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    };
    let (answers, slowest) = futures_util::join!(burst, probe);
    for (status, body) in answers {
        assert_eq!(status, 413, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz took {slowest:?} during the burst"
    );
    let peak_mb = proc_status(pid, "VmHWM:") / 1024;
    let threads = proc_status(pid, "Threads:");
    println!("burst: peak RSS {peak_mb} MB, {threads} threads, slowest /healthz {slowest:?}");
    assert!(peak_mb < 200, "peak RSS {peak_mb} MB");
}

/// Threads of a process and its open descriptors to files named `name`.
fn threads_and_fds(pid: u32, name: &str) -> (u64, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().contains(name))
                .count()
        })
        .unwrap_or(0);
    (proc_status(pid, "Threads:"), fds)
}

#[actix_rt::test]
async fn a_burst_of_700_list_requests_takes_a_bounded_number_of_threads_and_connections() {
    let dir = temp_dir();
    let settings = test_settings(dir.path(), None, None);
    let gateway = Gateway::launch(dir.path(), &settings);
    let address = gateway.address.clone();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .connector(awc::Connector::new().limit(800))
        .finish();
    gateway.wait_answering().await;
    let pid = gateway.child.id();
    let mut res = client
        .post(format!("{address}/api/sequences/"))
        .send_json(&serde_json::json!({"source": "b"}))
        .await
        .unwrap();
    let seq: serde_json::Value = res.json().await.unwrap();
    for batch in 0..20 {
        let films: Vec<serde_json::Value> = (0..1000)
            .map(|i| {
                serde_json::json!({"uid": format!("b{batch}-{i}"), "sequence": seq["id"],
                    "source": "b", "received_at": "2026-11-22T05:03:05.123Z",
                    "raw": "B,1,25.0,1200.0,0", "data": {"lot": "B", "film_no": i}})
            })
            .collect();
        let res = client
            .post(format!("{address}/api/films/batch/"))
            .send_json(&films)
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    let requests = (0..700).map(|_| {
        let client = client.clone();
        let url = format!("{address}/api/films/?limit=1000&offset=10000");
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    let burst = futures_util::future::join_all(requests);
    let sampler = async {
        let mut worst = (0, 0);
        for _ in 0..40 {
            let (threads, fds) = threads_and_fds(pid, "records.sqlite3");
            worst = (worst.0.max(threads), worst.1.max(fds));
            let started = Instant::now();
            let res = client
                .get(format!("{address}/healthz"))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success());
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "/healthz slow: {:?}",
                started.elapsed()
            );
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        worst
    };
    let (answers, (threads, fds)) = futures_util::join!(burst, sampler);
    let ok = answers.iter().filter(|a| matches!(a, Ok(200))).count();
    println!(
        "700 list requests: {ok} answered 200; at most {threads} threads, {fds} records.sqlite3 descriptors"
    );
    assert_eq!(ok, 700, "{answers:?}");
    assert!(threads < 64, "{threads} threads");
    assert!(fds <= 16, "{fds} descriptors on records.sqlite3");
}

#[actix_rt::test]
async fn a_flood_of_malformed_requests_is_logged_once_per_interval() {
    use std::io::{Read, Write};
    let dir = temp_dir();
    let settings = test_settings(dir.path(), None, None);
    let (mut gateway, log_path) = Gateway::launch_logging(dir.path(), &settings);
    let address = gateway.address.clone();
    let client = awc::Client::default();
    gateway.wait_answering().await;
    for _ in 0..200 {
        let mut s = std::net::TcpStream::connect(address.trim_start_matches("http://")).unwrap();
        s.write_all(b"GARBAGE LINE\r\n\r\n").unwrap();
        let _ = s.read(&mut [0u8; 64]);
    }
    let res = client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert!(gateway.stop(nix::sys::signal::Signal::SIGTERM).success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("parse error")).collect();
    assert!(
        (1..=2).contains(&lines.len()),
        "{} lines for 200 malformed requests:\n{log}",
        lines.len()
    );
    assert!(
        lines[0].contains("WARN") && lines[0].contains("not logged"),
        "{log}"
    );
}
