//! The pipeline benchmark: the real release binary reads a pseudo-terminal flooded (or paced)
//! with film records, keeps them in its durable queue and posts them to an upstream; this
//! program writes the records, runs the upstream, and reports films/s, latency from a
//! record's last byte written to the upstream receiving it, and the gateway's peak RSS.
//!
//! `cargo bench --bench pipeline` runs every mode; `-- --smoke` runs each briefly (CI);
//! `-- --mode flood|batch|steady|backlog|embedded|nginx|nginx-batch|seed|line|line4|line-embedded|floor|spc`
//! runs one; `-- --films N`
//! sets the size. The nginx modes post to a real nginx answering a plain 201 to every film
//! post and batch (and an id to sequence posts), as a reverse proxy in front of a records
//! service would answer; they need nginx (`tests/peers.sh`).
//!
//! The `line` and `line4` modes measure what a gateway costs beside a real line: one (or
//! four) links on pseudo-terminals written the way a device writes (one whole record every
//! 40 ms: 25 films/s each), posting to nginx (`line-embedded`: one link posting to the
//! gateway's own records service). After a warm-up they read the gateway's CPU time
//! (utime + stime from `/proc/PID/stat`) over a window (60 s; `--seconds N`; 3 s in a smoke
//! run) and print the % of one core and the µs of CPU per film. The `floor` mode measures,
//! the same way, what the one thing per film no gateway may skip costs on this machine: a
//! durable commit (SQLite, WAL, `synchronous=FULL`) of one film-sized row every 40 ms, on a
//! thread of this program (the rest of a line's cost is reading, posting and waking).
//!
//! The `seed` mode runs the system filmgate replaced (`seed.py`, rebuilt from its description:
//! pyserial-asyncio, a deque, aiohttp, one film per request; it needs `tests/peers.sh`'s venv)
//! on the same pty writer into the same nginx, then filmgate's `nginx` and `nginx-batch` modes,
//! and prints filmgate's films/s as a multiple of the seed's.
//!
//! `--spc` makes every link watch `thickness_um` with SPC as the shipped config does (X̄-R,
//! subgroups of 5), to compare a mode with and without it; the `spc` mode times the pure
//! chart alone (ns per film judged).

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
    /// The mode's name, with `+spc` when the link watched a field.
    mode: String,
    films: u64,
    seconds: f64,
    latencies_us: Vec<u64>,
    peak_rss_kb: u64,
    /// The gateway's CPU time (utime + stime) over the measured span, per film: steadier
    /// than films/s on a machine whose speed drifts.
    cpu_us_per_film: f64,
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
            "seed",
            "line",
            "line4",
            "line-embedded",
            "floor",
            "spc",
        ]
        .map(String::from)
        .to_vec(),
    };
    println!(
        "filmgate pipeline benchmark: {films} films per mode{}",
        if smoke { " (smoke)" } else { "" }
    );
    // How long the line and floor modes read CPU time.
    let cpu_window = Duration::from_secs(if smoke { 3 } else { args.seconds(60) });
    for mode in modes {
        if mode == "spc" {
            judging_cost(if smoke { 100_000 } else { 10_000_000 });
            continue;
        }
        if mode == "seed" {
            let seed = actix_rt::System::new().block_on(seed_films_per_s(films));
            println!("seed         films={films:<7} films/s={seed:<9.0} (seed.py into nginx)");
            for mode in ["nginx", "nginx-batch"] {
                let run = actix_rt::System::new().block_on(run_mode(mode, films, smoke, false));
                report(&run);
                let ratio = run.films as f64 / run.seconds / seed;
                println!("{mode:<12} = {ratio:.1}× the seed's films/s in this run");
            }
            continue;
        }
        if mode == "floor" {
            durable_commit_floor(cpu_window);
            continue;
        }
        if let Some(links) = line_links(&mode) {
            actix_rt::System::new().block_on(run_line(&mode, links, cpu_window, args.spc));
            continue;
        }
        let run = actix_rt::System::new().block_on(run_mode(&mode, films, smoke, args.spc));
        report(&run);
    }
}

/// The pure SPC core's cost per film: `values` thickness values (a slow drift and noise, in
/// lots of 100) judged by an X̄-R chart of subgroups of 5 after a baseline of 25.
fn judging_cost(values: u64) {
    use filmgate_actors::spc::Chart;
    let spec = thickness_spc().spec("bench").unwrap();
    let mut chart = Chart::new(&spec);
    let lots: Vec<String> = (0..=values / 100).map(|i| format!("lot-{i}")).collect();
    let (mut alarms, mut points) = (0usize, 0usize);
    let started = Instant::now();
    for n in 0..values {
        let noise = ((n.wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0 - 0.5) * 0.4;
        let value = 25.0 + 0.02 * (n as f64 / 300.0).sin() + noise;
        let step = chart.observe(&spec, &lots[(n / 100) as usize], value);
        alarms += step.alarms.len();
        points += step.closed.len();
    }
    let ns = started.elapsed().as_nanos() as f64 / values as f64;
    println!(
        "spc       judging={ns:.0}ns per film  ({values} films, {points} points, {alarms} alarms; \
         the pure chart, without the store's writes)"
    );
}

/// `thickness_um` watched as the shipped config does: X̄-R of 5, baseline 25, spec limits.
fn thickness_spc() -> filmgate_actors::spc::SpcConfig {
    filmgate_actors::spc::SpcConfig {
        lsl: Some(24.5),
        usl: Some(25.5),
        ..Default::default()
    }
}

/// Makes `link` watch `thickness_um` (`--spc`).
fn watch_thickness(link: &mut filmgate_actors::serial::SerialConfig) {
    link.spc.insert("thickness_um".into(), thickness_spc());
}

/// Links of a line mode (`line`: 1, `line4`: 4), or `None` for the other modes.
fn line_links(mode: &str) -> Option<usize> {
    match mode {
        "line" | "line-embedded" => Some(1),
        "line4" => Some(4),
        _ => None,
    }
}

/// Records per second a line mode's device writes on each link.
const LINE_RATE_HZ: u64 = 25;

/// A gateway beside `links` real-rate lines posting to nginx: its CPU over `window`.
async fn run_line(mode: &str, links: usize, window: Duration, spc: bool) {
    let dir = tempfile::tempdir().unwrap();
    let web_port = unclaimed_port();
    // `line-embedded` posts to the gateway's own records service (SQLite), the others to nginx.
    let (_nginx, upstream_port) = if mode == "line-embedded" {
        (None, web_port)
    } else {
        let (nginx, port) = nginx_answering_201(dir.path()).await;
        (Some(nginx), port)
    };
    let mut settings = Settings::from_toml("", "bench", std::iter::empty()).unwrap();
    settings.web.bind = std::net::SocketAddr::from(([127, 0, 0, 1], web_port));
    settings.web.records_db =
        filmgate_web::store::RecordsDb::Sqlite(dir.path().join("records.sqlite3"));
    settings.queue.path = dir.path().join("queue.sqlite3");
    settings.upstream.base_url = format!("http://127.0.0.1:{upstream_port}/api/");
    let mut ptys = Vec::new();
    for i in 0..links {
        let pty = Pty::open_raw().unwrap();
        let link = dir.path().join(format!("ttyLINE{i}"));
        std::os::unix::fs::symlink(pty.slave_path(), &link).unwrap();
        let mut line = filmgate_actors::serial::SerialConfig {
            name: format!("line-{i}"),
            port: link.display().to_string().into(),
            ..Default::default()
        };
        if spc {
            watch_thickness(&mut line);
        }
        settings.serial.push(line);
        ptys.push(pty);
    }
    let mut gateway = start_filmgate(&settings, &dir.path().join("bench.toml"));
    let api = format!("http://127.0.0.1:{web_port}");
    let client = awc::Client::default();
    wait_for(Duration::from_secs(30), "the links up", async || {
        let all: Value = get_json(&client, &format!("{api}/api/links/")).await?;
        let up = all
            .as_array()?
            .iter()
            .filter(|l| l["state"] == "up")
            .count();
        (up == links).then_some(())
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = ptys
        .into_iter()
        .enumerate()
        .map(|(i, mut pty)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let every = Duration::from_micros(1_000_000 / LINE_RATE_HZ);
                let mut next = Instant::now();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let line = format!("L{i}-{},{n},25.{:02},1200.5,0\r", n / 100, n % 100);
                    pty.write_all(line.as_bytes()).unwrap();
                    next += every;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                pty
            })
        })
        .collect();
    // Warm-up: connections open, sequences posted, the first lots delivered.
    let delivered = async || -> Option<u64> {
        let stats: Value = get_json(&client, &format!("{api}/api/queue/stats")).await?;
        stats["delivered_total"].as_u64()
    };
    wait_for(Duration::from_secs(30), "the warm-up", async || {
        (delivered().await? >= 2 * LINE_RATE_HZ * links as u64).then_some(())
    })
    .await;
    let (cpu_before, delivered_before, started) = (
        cpu_ticks(&format!("/proc/{}/stat", gateway.id())),
        delivered().await.unwrap_or(0),
        Instant::now(),
    );
    actix_rt::time::sleep(window).await;
    let (cpu_after, delivered_after, seconds) = (
        cpu_ticks(&format!("/proc/{}/stat", gateway.id())),
        delivered().await.unwrap_or(0),
        started.elapsed().as_secs_f64(),
    );
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.join();
    }
    stop_gateway(&mut gateway);
    let cpu_s = (cpu_after - cpu_before) as f64 / USER_HZ;
    let films = delivered_after.saturating_sub(delivered_before);
    let mode = if spc {
        format!("{mode}+spc")
    } else {
        mode.to_owned()
    };
    println!(
        "{mode:<9} links={links} films/s={:<5.1} cpu={:.2}% of a core  cpu_per_film={:.0}us  \
         (over {seconds:.0} s, {films} films)",
        films as f64 / seconds,
        cpu_s / seconds * 100.0,
        if films > 0 {
            cpu_s * 1e6 / films as f64
        } else {
            0.0
        },
    );
}

/// Clock ticks per second of `/proc/PID/stat` (Linux reports them in USER_HZ, 100).
const USER_HZ: f64 = 100.0;

/// The rebuilt seed script's films/s: `films` written into a pty as fast as it reads them,
/// posted to nginx answering 201, timed from the first byte written to the script's exit.
async fn seed_films_per_s(films: u64) -> f64 {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, port) = nginx_answering_201(dir.path()).await;
    let mut pty = Pty::open_raw().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/peers/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/peers.sh",
        python.display()
    );
    let mut seed = std::process::Command::new(python)
        .arg(root.join("tests/bench/seed.py"))
        .arg(pty.slave_path())
        .arg(format!("http://127.0.0.1:{port}/api/"))
        .arg(films.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("seed.py starts");
    let mut ready = String::new();
    std::io::BufReader::new(seed.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "seed.py did not open the port");
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        for first in (1..=films).step_by(100) {
            let text: String = (first..=(first + 99).min(films)).map(film_line).collect();
            pty.write_all(text.as_bytes()).unwrap();
        }
        pty
    });
    let status = seed.wait().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "seed.py failed: {status}");
    drop(writer.join());
    films as f64 / seconds
}

/// One durable commit of a film-sized row every 40 ms for `window` on this thread, in a fresh
/// SQLite file set up as the queue's (WAL, `synchronous=FULL`): the thread's CPU per commit.
fn durable_commit_floor(window: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("floor.sqlite3")).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE,
                             raw TEXT NOT NULL, state INTEGER NOT NULL);",
    )
    .unwrap();
    let period = Duration::from_millis(1000 / LINE_RATE_HZ);
    let raw = "L0-3,301,25.01,1200.5,0".repeat(4);
    let (started, cpu_before) = (Instant::now(), cpu_ticks("/proc/thread-self/stat"));
    let mut commits = 0u32;
    while started.elapsed() < window {
        let tx = db.unchecked_transaction().unwrap();
        tx.execute(
            "INSERT INTO items (uid, raw, state) VALUES (?1, ?2, 0)",
            rusqlite::params![format!("floor-{commits}"), raw],
        )
        .unwrap();
        tx.commit().unwrap();
        commits += 1;
        std::thread::sleep((period * commits).saturating_sub(started.elapsed()));
    }
    let cpu_s = (cpu_ticks("/proc/thread-self/stat") - cpu_before) as f64 / USER_HZ;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "floor     commits/s={:<5.1} cpu={:.2}% of a core  cpu_per_commit={:.0}us  (one durable \
         commit per film, over {seconds:.0} s, {commits} commits)",
        commits as f64 / seconds,
        cpu_s / seconds * 100.0,
        cpu_s * 1e6 / commits.max(1) as f64,
    );
}

/// CPU time (utime + stime, in clock ticks) from a `/proc/…/stat` file (a process's, or
/// `/proc/thread-self/stat` for the calling thread's).
fn cpu_ticks(stat_path: &str) -> u64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are 14th and 15th
    // of the whole line, so the 12th and 13th after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
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
        "{:<12} films={:<7} films/s={:<9.0} p50={:.2}ms p99={:.2}ms max={:.2}ms peak_rss={:.1}MB \
         cpu_per_film={:.1}us",
        run.mode,
        run.films,
        run.films as f64 / run.seconds,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        run.peak_rss_kb as f64 / 1024.0,
        run.cpu_us_per_film,
    );
}

fn film_line(n: u64) -> String {
    format!("B{},{n},25.{:02},1200.5,{}\r", n / 10_000, n % 100, n % 3)
}

async fn run_mode(mode: &str, films: u64, smoke: bool, spc: bool) -> Run {
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
        let (server, port) = nginx_answering_201(dir.path()).await;
        _nginx = Some(server);
        format!("http://127.0.0.1:{port}/api/")
    } else {
        let (url, server) = minimal_upstream(arrivals.clone());
        actix_rt::spawn(server);
        url
    };
    let mut settings = Settings::from_toml("", "bench", std::iter::empty()).unwrap();
    settings.web.bind = std::net::SocketAddr::from(([127, 0, 0, 1], web_port));
    settings.web.records_db =
        filmgate_web::store::RecordsDb::Sqlite(dir.path().join("records.sqlite3"));
    settings.queue.path = dir.path().join("queue.sqlite3");
    settings.upstream.base_url = base_url;
    settings.upstream.retry_max_ms = 1000;
    settings.upstream.batch_size = if matches!(mode, "batch" | "backlog" | "nginx-batch") {
        100
    } else {
        1
    };
    let mut line = filmgate_actors::serial::SerialConfig {
        name: "bench".into(),
        port: link.display().to_string().into(),
        ..Default::default()
    };
    if spc {
        watch_thickness(&mut line);
    }
    settings.serial.push(line);
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
    let gateway_stat = format!("/proc/{}/stat", gateway.id());
    let mut cpu_before = cpu_ticks(&gateway_stat);
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
        (measure_from, cpu_before) = (Instant::now(), cpu_ticks(&gateway_stat));
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
    let cpu_s = (cpu_ticks(&gateway_stat) - cpu_before) as f64 / USER_HZ;
    let peak_rss_kb = peak_rss_kb(gateway.id());
    stop_gateway(&mut gateway);

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
        mode: format!("{}{}", static_mode(mode), if spc { "+spc" } else { "" }),
        films,
        seconds,
        latencies_us,
        peak_rss_kb,
        cpu_us_per_film: cpu_s * 1e6 / films.max(1) as f64,
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

/// nginx in `dir` answering a plain 201 to every post (and an id to sequence posts), as a
/// reverse proxy in front of a records service would; and its port.
async fn nginx_answering_201(dir: &std::path::Path) -> (nginx::Nginx, u16) {
    nginx::Nginx::start(
        &dir.join("nginx"),
        r#"access_log off;
           server { listen 127.0.0.1:PORT;
             location /api/sequences/ { default_type application/json; return 201 '{"id": 1}'; }
             location / { return 201; } }"#,
    )
    .await
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

fn stop_gateway(gateway: &mut Child) {
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
