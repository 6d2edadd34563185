//! Test helpers: a running filmgate (`spawn_app`), a scripted upstream records service on
//! port 0 (`TestUpstream`), pseudo-terminals, and polling until a deadline.

use filmgate::config::Settings;
use filmgate::startup::Application;
use filmgate_actors::serial::pty::Pty;
pub use filmgate_testkit::{Api, TestUpstream, UpstreamState, film_line, unclaimed_port, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The TCP ports process `pid` listens on, from `/proc` (for a child told to bind port 0).
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let sockets: HashSet<String> = fds
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let inode = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let mut ports: Vec<u16> = ["net/tcp", "net/tcp6"]
        .into_iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/{table}")).ok())
        .flat_map(|text| {
            let listening: Vec<u16> = text
                .lines()
                .skip(1)
                .filter_map(|line| {
                    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let listening = fields.get(3) == Some(&"0A");
                    if !listening || !sockets.contains(*fields.get(9)?) {
                        return None;
                    }
                    u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok()
                })
                .collect();
            listening
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Settings for a test: stores in `dir`, web on a free port, one link reading `port_path`
/// (or none), posting to `base_url` (or to itself when `None`).
pub fn test_settings(dir: &Path, port_path: Option<&Path>, base_url: Option<&str>) -> Settings {
    let mut s = Settings::from_toml("", "test", std::iter::empty()).unwrap();
    // Port 0: the gateway binds a free port itself ([`TestApp`] and [`Gateway`] read it back)
    // and an empty base_url posts to the embedded service wherever that is.
    s.web.bind = "127.0.0.1:0".parse().unwrap();
    s.web.records_db = filmgate_web::store::RecordsDb::Sqlite(dir.join("records.sqlite3"));
    s.queue.path = dir.join("queue.sqlite3");
    s.upstream.base_url = base_url.unwrap_or_default().to_owned();
    s.upstream.retry_initial_ms = 20;
    s.upstream.retry_max_ms = 200;
    s.upstream.timeout_ms = 2000;
    if let Some(path) = port_path {
        let mut link = filmgate_actors::serial::SerialConfig {
            name: "line-1".into(),
            port: path.display().to_string().into(),
            ..Default::default()
        };
        link.reconnect_initial_ms = 20;
        link.reconnect_max_ms = 200;
        s.serial.push(link);
    }
    s
}

/// Writes `settings` as a config file for the real binary, secrets included.
pub fn write_config(path: &Path, settings: &Settings) {
    std::fs::write(path, toml::to_string(settings).unwrap()).unwrap();
}

/// A filmgate running in this test's actix system; its API through [`Api`] (deref).
pub struct TestApp {
    api: Api,
    /// Ends the app (graceful shutdown) when sent.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<actix_rt::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(settings: Settings) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let api = Api::new(format!("http://127.0.0.1:{}", app.port()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = actix_rt::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        api,
        shutdown: Some(tx),
        done: Some(done),
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    /// The link's status from `/api/links/`.
    pub async fn link(&self, name: &str) -> Value {
        let links = self.get_json("/api/links/").await;
        links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .cloned()
            .expect("link listed")
    }

    /// Waits until the named link is up.
    pub async fn wait_link_up(&self, name: &str) {
        wait_for(Duration::from_secs(10), "link up", async || {
            (self.link(name).await["state"] == "up").then_some(())
        })
        .await;
    }

    pub async fn stats(&self) -> Value {
        self.get_json("/api/queue/stats").await
    }

    /// Shuts down gracefully and waits for it.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap().unwrap();
    }
}

/// Opens a raw-mode pty and points a symlink in `dir` at its slave (the "device path").
pub fn pty_behind(link: &Path) -> LinkedPty {
    let pty = Pty::open_raw().expect("pty opens");
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(pty.slave_path(), &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
    LinkedPty {
        pty,
        link: link.to_owned(),
    }
}

/// A pty behind a device link. Dropping it removes the link before the pty closes, as udev
/// removes a device's name when it goes: a gateway still running then fails to open the link,
/// instead of opening the pty number the system has since given to another test (and reading
/// that test's lines).
pub struct LinkedPty {
    pty: Pty,
    link: PathBuf,
}

impl std::ops::Deref for LinkedPty {
    type Target = Pty;

    fn deref(&self) -> &Pty {
        &self.pty
    }
}

impl std::ops::DerefMut for LinkedPty {
    fn deref_mut(&mut self) -> &mut Pty {
        &mut self.pty
    }
}

impl Drop for LinkedPty {
    fn drop(&mut self) {
        // Only if it still names this pty (a test may have pointed it at another since).
        if std::fs::read_link(&self.link).ok().as_deref() == Some(self.pty.slave_path()) {
            let _ = std::fs::remove_file(&self.link);
        }
    }
}

/// Writes `bytes` to the pty from a blocking thread (the gateway under test reads on this
/// test's thread, so a large write from here would wait for itself), and gives the pty back.
pub async fn write_off_thread(mut pty: LinkedPty, bytes: Vec<u8>) -> LinkedPty {
    actix_rt::task::spawn_blocking(move || {
        pty.write_all(&bytes).expect("pty write");
        pty
    })
    .await
    .unwrap()
}

/// The real binary on a config file; restarted in place.
///
/// A config binding port 0 is started on a port the kernel picks, read back from `/proc`, and
/// the config file is then pinned to that port so a restart comes back at the same address.
pub struct Gateway {
    config: PathBuf,
    /// The binary it runs (restarts run the same).
    binary: PathBuf,
    api: Api,
    pub child: Child,
}

impl std::ops::Deref for Gateway {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Gateway {
    /// Writes `settings` to `dir/filmgate.toml` and starts the binary on it.
    pub fn launch(dir: &Path, settings: &Settings) -> Gateway {
        Gateway::launch_binary(&test_binary(), dir, settings)
    }

    /// [`Gateway::launch`] on the release binary when CI names it (see [`release_binary`]).
    pub fn launch_release(dir: &Path, settings: &Settings) -> Gateway {
        Gateway::launch_binary(&release_binary(), dir, settings)
    }

    fn launch_binary(binary: &Path, dir: &Path, settings: &Settings) -> Gateway {
        let config = dir.join("filmgate.toml");
        write_config(&config, settings);
        Gateway::spawn(binary, &config, None, "error", &[])
    }

    /// [`Gateway::launch`] with its log (at `info`) in `dir/gateway.log`, whose path it returns.
    pub fn launch_logging(dir: &Path, settings: &Settings) -> (Gateway, PathBuf) {
        let config = dir.join("filmgate.toml");
        write_config(&config, settings);
        let log = dir.join("gateway.log");
        let gateway = Gateway::start_logging(&config, std::fs::File::create(&log).unwrap());
        (gateway, log)
    }

    pub fn start(config: &Path) -> Gateway {
        Gateway::spawn(&test_binary(), config, None, "error", &[])
    }

    /// [`Gateway::start`] with its log (stderr, at the default `info` level, as a plant runs
    /// it) sent to `log`.
    pub fn start_logging(config: &Path, log: std::fs::File) -> Gateway {
        Gateway::spawn(&test_binary(), config, Some(log), "info", &[])
    }

    /// [`Gateway::start_logging`] with more environment (e.g. libfaketime's).
    pub fn start_logging_with(config: &Path, log: std::fs::File, env: &[(&str, &str)]) -> Gateway {
        Gateway::spawn(&test_binary(), config, Some(log), "info", env)
    }

    /// Starts the binary and waits until it listens. A pinned port (a restart) may be held for a
    /// moment by another socket that took it while the gateway was down: then the start is
    /// tried again for up to 10 s.
    fn spawn(
        binary: &Path,
        config: &Path,
        log: Option<std::fs::File>,
        level: &str,
        env: &[(&str, &str)],
    ) -> Gateway {
        let mut settings: toml::Table = toml::from_str(&std::fs::read_to_string(config).unwrap())
            .expect("a config written by the test");
        let bind = settings["web"]["bind"].as_str().unwrap().to_owned();
        let (host, port) = bind.rsplit_once(':').expect("web.bind is host:port");
        let pinned: u16 = port.parse().expect("a port number");
        // Every start attempt logs to the same place.
        let stderr = || {
            log.as_ref().map_or(Stdio::inherit(), |f| {
                f.try_clone().expect("log file").into()
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new(binary)
                .arg("--config")
                .arg(config)
                .env("RUST_LOG", level)
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(stderr())
                .spawn()
                .expect("the filmgate binary starts");
            match wait_listening(&mut child) {
                Ok(port) => {
                    assert!(
                        pinned == 0 || port == pinned,
                        "listening on {port}, not {pinned}"
                    );
                    let bound = format!("{host}:{port}");
                    if pinned == 0 {
                        // Restarts come back at the same address.
                        settings["web"]["bind"] = toml::Value::String(bound.clone());
                        std::fs::write(config, toml::to_string(&settings).unwrap()).unwrap();
                    }
                    return Gateway {
                        config: config.to_owned(),
                        binary: binary.to_owned(),
                        api: Api::new(format!("http://{bound}")),
                        child,
                    };
                }
                Err(status) if pinned != 0 && std::time::Instant::now() < deadline => {
                    eprintln!("filmgate exited before listening on {bind} ({status}); again");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(status) => panic!("filmgate exited before it listened on {bind}: {status}"),
            }
        }
    }

    /// Waits until the gateway answers HTTP.
    pub async fn wait_answering(&self) {
        wait_for(
            Duration::from_secs(20),
            "the gateway answering",
            async || self.try_get_json("/healthz").await.map(|_| ()),
        )
        .await;
    }

    /// Waits until nothing is pending or in flight in its queue; the stats then.
    pub async fn wait_idle(&self, within: Duration) -> Value {
        wait_for(within, "the queue drained", async || {
            let stats = self.try_get_json("/api/queue/stats").await?;
            (stats["pending"] == 0 && stats["in_flight"] == 0).then_some(stats)
        })
        .await
    }

    pub async fn wait_link_up(&self) {
        wait_for(Duration::from_secs(30), "link up", async || {
            let links = self.try_get_json("/api/links/").await?;
            (links[0]["state"] == "up").then_some(())
        })
        .await;
    }

    /// Sends `signal` and waits for the process to end.
    pub fn stop(&mut self, signal: Signal) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
        self.child.wait().unwrap()
    }

    /// Stops the process with `signal` and starts it again.
    pub async fn restart(&mut self, signal: Signal) {
        let status = self.stop(signal);
        if signal == Signal::SIGTERM {
            assert!(status.success(), "SIGTERM exit: {status:?}");
        }
        *self = Gateway::spawn(&self.binary, &self.config, None, "error", &[]);
        self.wait_link_up().await;
    }
}

/// Waits until `child` listens on exactly one port (30 s at most); its exit status if it
/// ended first.
fn wait_listening(child: &mut Child) -> Result<u16, std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match listening_ports(child.id()).as_slice() {
            [port] => return Ok(*port),
            [] => {}
            more => panic!("filmgate listens on several ports: {more:?}"),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "filmgate never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary cargo built for these tests.
fn test_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_filmgate"))
}

/// The release binary when `FILMGATE_RELEASE_BIN` names it (CI does, after building it for
/// the package and the benchmarks), else the tests' own build.
pub fn release_binary() -> PathBuf {
    match std::env::var_os("FILMGATE_RELEASE_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.exists(),
                "FILMGATE_RELEASE_BIN: no file {}",
                path.display()
            );
            path
        }
        None => test_binary(),
    }
}

/// A directory that lives as long as the test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `dir/ttyFILM`: the symlink tests use as the device path.
pub fn device_link(dir: &Path) -> PathBuf {
    dir.join("ttyFILM")
}

/// An upstream on a raw socket, for answers no real server gives on purpose: every request
/// (head, then `Content-Length` bytes of body) is answered with `answer(n)` for the n-th
/// request (from 1), written as it is in one write. Its base URL and the count answered.
pub fn raw_upstream(
    answer: impl Fn(u64) -> String + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Arc::new(AtomicU64::new(0));
    let counter = answered.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let (counter, answer) = (counter.clone(), answer.clone());
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&chunk[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if pending.len() < end + 4 + length {
                            break;
                        }
                        pending.drain(..end + 4 + length);
                        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                        if stream.write_all(answer(n).as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}/api/"), answered)
}
