//! The pipeline benchmark: the real release binary reads a pseudo-terminal flooded (or paced)
//! with film records, keeps them in its durable queue and posts them to an upstream; this
//! program writes the records, runs the upstream, and reports films/s, latency from a
//! record's last byte written to the upstream receiving it, and the gateway's peak RSS.
//!
//! `cargo bench --bench pipeline` runs every mode; `-- --smoke` runs each briefly (CI);
//! `-- --mode flood|batch|steady|backlog|embedded|nginx|nginx-batch` runs one; `-- --films N`
//! sets the size. The nginx modes post to a real nginx answering a plain 201 to every film
//! post and batch (and an id to sequence posts), as a reverse proxy in front of a records
//! service would answer; they need nginx (`tests/peers.sh`).

#[path = "../support/bench.rs"]
mod bench;
// Shared with the integration tests, which also read nginx's request log.
#[allow(dead_code)]
#[path = "../support/nginx.rs"]
mod nginx;

use actix_web::{App, HttpResponse, HttpServer, web};
use bench::{BenchArgs, start_filmgate};
use filmgate::config::Settings;
use filmgate_actors::serial::pty::Pty;
use filmgate_testkit::{unclaimed_port, wait_for};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the minimal upstream saw: arrival time per film number.
struct Arrivals {
    at: Mutex<Vec<Option<Instant>>>,
    received: AtomicU64,
    /// Answer 503 while set (backlog mode).
    down: AtomicBool,
}

struct Run {
    mode: &'static str,
    films: u64,
    seconds: f64,
    latencies_us: Vec<u64>,
    peak_rss_kb: u64,
}

fn main() {
    let args = BenchArgs::from_env();
    let (smoke, films) = (args.smoke, args.films(100_000));
    let modes: Vec<String> = match args.mode.clone() {
        Some(m) => vec![m],
        None => [
            "flood",
            "batch",
            "steady",
            "backlog",
            "embedded",
            "nginx",
            "nginx-batch",
        ]
        .map(String::from)
        .to_vec(),
    };
    println!(
        "filmgate pipeline benchmark: {films} films per mode{}",
        if smoke { " (smoke)" } else { "" }
    );
    for mode in modes {
        let run = actix_rt::System::new().block_on(run_mode(&mode, films, smoke));
        report(&run);
    }
}

fn report(run: &Run) {
    let mut l = run.latencies_us.clone();
    l.sort_unstable();
    let pct = |p: f64| {
        if l.is_empty() {
            0.0
        } else {
            l[((l.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    println!(
        "{:<9} films={:<7} films/s={:<9.0} p50={:.2}ms p99={:.2}ms max={:.2}ms peak_rss={:.1}MB",
        run.mode,
        run.films,
        run.films as f64 / run.seconds,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        run.peak_rss_kb as f64 / 1024.0
    );
}

fn film_line(n: u64) -> String {
    format!("B{},{n},25.{:02},1200.5,{}\r", n / 10_000, n % 100, n % 3)
}

async fn run_mode(mode: &str, films: u64, smoke: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyBENCH");
    let pty = Pty::open_raw().unwrap();
    std::os::unix::fs::symlink(pty.slave_path(), &link).unwrap();

    let arrivals = Arc::new(Arrivals {
        at: Mutex::new(vec![None; films as usize + 1]),
        received: AtomicU64::new(0),
        down: AtomicBool::new(mode == "backlog"),
    });
    let web_port = unclaimed_port();
    let mut _nginx = None;
    let base_url = if mode == "embedded" {
        format!("http://127.0.0.1:{web_port}/api/")
    } else if mode.starts_with("nginx") {
        let (server, port) = nginx::Nginx::start(
            &dir.path().join("nginx"),
            r#"access_log off;
               server { listen 127.0.0.1:PORT;
                 location /api/sequences/ { default_type application/json; return 201 '{"id": 1}'; }
                 location / { return 201; } }"#,
        )
        .await;
        _nginx = Some(server);
        format!("http://127.0.0.1:{port}/api/")
    } else {
        let (url, server) = minimal_upstream(arrivals.clone());
        actix_rt::spawn(server);
        url
    };
    let mut settings = Settings::from_toml("", "bench", std::iter::empty()).unwrap();
    settings.web.bind = format!("127.0.0.1:{web_port}");
    settings.web.records_db = dir.path().join("records.sqlite3").display().to_string();
    settings.queue.path = dir.path().join("queue.sqlite3");
    settings.upstream.base_url = base_url;
    settings.upstream.retry_max_ms = 1000;
    settings.upstream.batch_size = if matches!(mode, "batch" | "backlog" | "nginx-batch") {
        100
    } else {
        1
    };
    settings.serial.push(filmgate_actors::serial::SerialConfig {
        name: "bench".into(),
        port: link.display().to_string().into(),
        ..Default::default()
    });
    let mut gateway = start_filmgate(&settings, &dir.path().join("bench.toml"));
    let api = format!("http://127.0.0.1:{web_port}");
    let client = awc::Client::default();
    wait_for(Duration::from_secs(30), "a benchmark step", async || {
        let links: Value = get_json(&client, &format!("{api}/api/links/")).await?;
        (links[0]["state"] == "up").then_some(())
    })
    .await;

    // Write from a thread: flood, or paced at 1,000 films/s for steady.
    let written_at: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; films as usize + 1]));
    let start = Instant::now();
    let writer = {
        let written_at = written_at.clone();
        let steady = mode == "steady";
        let mut pty = pty;
        std::thread::spawn(move || {
            let chunk = if steady { 1 } else { 100 };
            let mut next = Instant::now();
            for first in (1..=films).step_by(chunk) {
                let last = (first + chunk as u64 - 1).min(films);
                let text: String = (first..=last).map(film_line).collect();
                pty.write_all(text.as_bytes()).unwrap();
                let now = Instant::now();
                let mut w = written_at.lock().unwrap();
                for n in first..=last {
                    w[n as usize] = Some(now);
                }
                drop(w);
                if steady {
                    next += Duration::from_millis(1);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            pty
        })
    };
    let mut measure_from = start;
    if mode == "backlog" {
        // Upstream down while the whole backlog queues, then up: measure the drain.
        let _pty = writer.join().unwrap();
        wait_for(Duration::from_secs(600), "a benchmark step", async || {
            let stats: Value = get_json(&client, &format!("{api}/api/queue/stats")).await?;
            (stats["enqueued_total"].as_u64()? >= films).then_some(())
        })
        .await;
        measure_from = Instant::now();
        arrivals.down.store(false, Ordering::SeqCst);
    }
    let limit = Duration::from_secs(if smoke { 120 } else { 900 });
    wait_for(limit, "a benchmark step", async || {
        let done = if mode == "embedded" || mode.starts_with("nginx") {
            let stats: Value = get_json(&client, &format!("{api}/api/queue/stats")).await?;
            stats["delivered_total"].as_u64()?
        } else {
            arrivals.received.load(Ordering::SeqCst)
        };
        (done >= films).then_some(())
    })
    .await;
    let seconds = measure_from.elapsed().as_secs_f64();
    let peak_rss_kb = peak_rss_kb(gateway.id());
    stop(&mut gateway);

    let latencies_us = if matches!(mode, "steady" | "flood" | "batch") {
        let w = written_at.lock().unwrap();
        let a = arrivals.at.lock().unwrap();
        (1..=films as usize)
            .filter_map(|n| Some(a[n]?.saturating_duration_since(w[n]?).as_micros() as u64))
            .collect()
    } else {
        Vec::new()
    };
    Run {
        mode: static_mode(mode),
        films,
        seconds,
        latencies_us,
        peak_rss_kb,
    }
}

fn static_mode(mode: &str) -> &'static str {
    match mode {
        "flood" => "flood",
        "batch" => "batch100",
        "steady" => "steady1k",
        "backlog" => "backlog",
        "nginx" => "nginx",
        "nginx-batch" => "nginx-batch100",
        _ => "embedded",
    }
}

/// A JSON answer from the gateway, or `None` while it is not answering yet.
async fn get_json(client: &awc::Client, url: &str) -> Option<Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

/// Peak resident set (VmHWM) of a process, in KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn stop(gateway: &mut Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gateway.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = gateway.wait();
}

/// An upstream that only answers: 201 with an id per film (or per batch item), recording
/// when each film number arrived; 503 while `down`.
fn minimal_upstream(arrivals: Arc<Arrivals>) -> (String, actix_web::dev::Server) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api/",
        listener.local_addr().unwrap().port()
    );
    let data = web::Data::from(arrivals);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(64 << 20))
            .route(
                "/api/sequences/",
                web::post().to(|a: web::Data<Arrivals>| async move {
                    if a.down.load(Ordering::SeqCst) {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    HttpResponse::Created().json(json!({"id": 1}))
                }),
            )
            .route(
                "/api/films/",
                web::post().to(
                    |a: web::Data<Arrivals>, film: web::Json<Value>| async move {
                        if a.down.load(Ordering::SeqCst) {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
                        arrived(&a, &film);
                        HttpResponse::Created().json(json!({"id": film["data"]["film_no"]}))
                    },
                ),
            )
            .route(
                "/api/films/batch/",
                web::post().to(
                    |a: web::Data<Arrivals>, films: web::Json<Vec<Value>>| async move {
                        if a.down.load(Ordering::SeqCst) {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
                        let results: Vec<Value> = films
                            .iter()
                            .map(|f| {
                                arrived(&a, f);
                                json!({"uid": f["uid"], "status": 201, "id": f["data"]["film_no"]})
                            })
                            .collect();
                        HttpResponse::Ok().json(json!({ "results": results }))
                    },
                ),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    (url, server)
}

fn arrived(a: &Arrivals, film: &Value) {
    let now = Instant::now();
    if let Some(n) = film["data"]["film_no"].as_u64() {
        let mut at = a.at.lock().unwrap();
        if let Some(slot) = at.get_mut(n as usize)
            && slot.is_none()
        {
            *slot = Some(now);
            a.received.fetch_add(1, Ordering::SeqCst);
        }
    }
}
