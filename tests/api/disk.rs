//! The queue file's edges, with the real binary: a second process on the same queue, and a
//! queue on a real full filesystem (a 3 MiB tmpfs this test mounts; it needs root, as CI has).

use crate::helpers::*;
use crate::protocol::{RawServer, counted};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A tmpfs mounted on a directory for the life of the value.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this test mounts a tmpfs and needs root (mount exited {status})"
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Fills the filesystem with `filler` until a write fails for lack of space.
    fn fill(&self, filler: &Path) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(filler)
            .unwrap();
        let block = vec![0x55u8; 4096];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_data())
            .is_ok()
        {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

async fn ready_status(client: &awc::Client, address: &str) -> Option<u16> {
    let res = client.get(format!("{address}/readyz")).send().await.ok()?;
    Some(res.status().as_u16())
}

/// Writes lines `from..=to` of lot `D` to the pty from a thread.
fn write_lines(mut pty: LinkedPty, from: u64, to: u64) -> std::thread::JoinHandle<LinkedPty> {
    std::thread::spawn(move || {
        for chunk in (from..=to).collect::<Vec<_>>().chunks(50) {
            let text: String = chunk.iter().map(|&n| film_line("D", n)).collect();
            if let Err(e) = pty.write_all(text.as_bytes()) {
                eprintln!("pty write of lines up to {to} failed: {e}");
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        pty
    })
}

#[actix_rt::test]
async fn a_second_process_on_one_queue_exits_2_naming_the_first() {
    let dir = temp_dir();
    let settings = test_settings(dir.path(), None, None);
    let config = dir.path().join("first.toml");
    write_config(&config, &settings);
    let first = Gateway::start(&config);
    let address = first.address.clone();
    let client = awc::Client::default();
    wait_for(Duration::from_secs(20), "first gateway ready", async || {
        (ready_status(&client, &address).await? == 200).then_some(())
    })
    .await;

    let second = settings.clone();
    let config = dir.path().join("second.toml");
    write_config(&config, &second);
    let out = Command::new(env!("CARGO_BIN_EXE_filmgate"))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "queue {} is in use by another filmgate (pid {})",
        settings.queue.path.display(),
        first.child.id()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[actix_rt::test]
async fn a_full_disk_freed_again_resumes_reading_and_delivery_by_itself() {
    // The upstream is down while the disk fills, so the backlog has to grow on the full disk.
    let down = Arc::new(AtomicBool::new(false));
    // Film numbers answered 201, with how many times each was.
    let delivered: Arc<Mutex<BTreeMap<u64, usize>>> = Arc::default();
    let server = RawServer::start({
        let (down, delivered) = (down.clone(), delivered.clone());
        move |_, req| {
            if down.load(Ordering::SeqCst) {
                return counted("503 Service Unavailable", "{}");
            }
            if let Some(n) = req.json()["data"]["film_no"].as_u64() {
                *delivered.lock().unwrap().entry(n).or_insert(0) += 1;
            }
            counted("201 Created", r#"{"id": 1}"#)
        }
    });
    let dir = temp_dir();
    let tmpfs = Tmpfs::mount(&dir.path().join("q"), "3m");
    let filler = tmpfs.dir.join("filler");
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let mut settings = test_settings(dir.path(), Some(&link), Some(&server.base_url()));
    settings.queue.path = tmpfs.dir.join("queue.sqlite3");
    settings.queue.posted_history = 100;
    let client = awc::Client::default();
    let (gateway, log_path) = Gateway::launch_logging(dir.path(), &settings);
    let address = gateway.address.clone();
    gateway.wait_link_up().await;
    let wait_delivered = async |count: u64, what: &str| {
        wait_for(Duration::from_secs(60), what, async || {
            (delivered.lock().unwrap().len() as u64 >= count).then_some(())
        })
        .await
    };

    let pty = write_lines(pty, 1, 500).join().unwrap();
    wait_delivered(500, "the first 500 films").await;

    // Full, upstream down: the backlog cannot grow, the store fails, /readyz says so, and the
    // link holds its frames.
    down.store(true, Ordering::SeqCst);
    tmpfs.fill(&filler);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut pty = pty;
        std::thread::spawn(move || {
            let mut last = 500;
            while !stop.load(Ordering::SeqCst) {
                let text: String = (last + 1..=last + 20).map(|n| film_line("D", n)).collect();
                pty.write_all(text.as_bytes()).expect("pty write");
                last += 20;
                std::thread::sleep(Duration::from_millis(10));
            }
            (pty, last)
        })
    };
    wait_for(
        Duration::from_secs(60),
        "the queue store failing",
        async || {
            tmpfs.fill(&filler); // take what the queue frees for itself
            (ready_status(&client, &address).await? == 503).then_some(())
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);

    // Freed: everything held arrives, and the queue keeps going far past the disk's size.
    std::fs::remove_file(&filler).unwrap();
    down.store(false, Ordering::SeqCst);
    let (pty, last) = writer.join().unwrap();
    wait_delivered(last, "the films held while the disk was full").await;
    // Paced like a line the gateway keeps up with: the backlog, not the WAL, must fit.
    let mut pty = pty;
    let total = last + 20_000;
    for from in (last + 1..=total).step_by(500) {
        let to = (from + 499).min(total);
        pty = write_lines(pty, from, to).join().unwrap();
        wait_delivered(to, "the films written so far").await;
    }
    assert_eq!(ready_status(&client, &address).await, Some(200));
    let seen = delivered.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, total, "every film written arrived");
    assert_eq!(seen.keys().last(), Some(&total));
    assert!(
        seen.values().all(|&n| n == 1),
        "a film was answered 201 twice"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains("not kept"), "{log}");
    println!(
        "full disk: {last} films written before and while full, {total} in all, all delivered"
    );
}

#[actix_rt::test]
async fn a_stop_on_a_full_disk_keeps_or_names_every_frame_the_link_held() {
    let dir = temp_dir();
    let tmpfs = Tmpfs::mount(&dir.path().join("q"), "3m");
    let filler = tmpfs.dir.join("filler");
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let mut settings = test_settings(dir.path(), Some(&link), None);
    settings.queue.path = tmpfs.dir.join("queue.sqlite3");
    let config = dir.path().join("filmgate.toml");
    write_config(&config, &settings);
    let client = awc::Client::default();
    let first_log = dir.path().join("first.log");
    let mut gateway = Gateway::start_logging(&config, std::fs::File::create(&first_log).unwrap());
    let address = gateway.address.clone();
    gateway.wait_link_up().await;
    let pty = write_lines(pty, 1, 100).join().unwrap();
    wait_for(Duration::from_secs(60), "the first films", async || {
        let films = gateway.try_get_json("/api/films/?limit=1").await?;
        (films["count"].as_u64()? >= 100).then_some(())
    })
    .await;

    tmpfs.fill(&filler);
    let writer = write_lines(pty, 101, 200);
    wait_for(
        Duration::from_secs(30),
        "the queue store failing",
        async || {
            tmpfs.fill(&filler);
            (ready_status(&client, &address).await? == 503).then_some(())
        },
    )
    .await;
    let pty = writer.join().unwrap();
    let status = gateway.stop(Signal::SIGTERM);
    let log = std::fs::read_to_string(&first_log).unwrap();
    let not_kept: Vec<&str> = log.lines().filter(|l| l.contains("not kept")).collect();
    assert_eq!(
        status.success(),
        not_kept.is_empty(),
        "exit {status}: {log}"
    );

    std::fs::remove_file(&filler).unwrap();
    let gateway = Gateway::start(&config);
    gateway.wait_link_up().await;
    // The `raw` of every row a list answers.
    let raws = async |path: &str| -> Vec<String> {
        let page = gateway.try_get_json(path).await.unwrap();
        let rows = page["results"].as_array().unwrap();
        rows.iter()
            .map(|r| r["raw"].as_str().unwrap().to_owned())
            .collect()
    };
    let fragments = raws("/api/queue/?state=dead&limit=1000").await;
    gateway.wait_idle(Duration::from_secs(30)).await;
    let delivered = raws("/api/films/?limit=1000").await;
    for n in 101..=200 {
        let line = film_line("D", n);
        let line = line.trim_end_matches('\r');
        let kept = delivered.iter().any(|d| d == line)
            || fragments.iter().any(|f| line.contains(f.as_str()))
            || not_kept
                .iter()
                .any(|l| l.contains(&format!("raw \"{line}\"")));
        assert!(
            kept,
            "line {n} neither delivered, a fragment, nor named: {log}"
        );
    }
    drop(pty);
}
