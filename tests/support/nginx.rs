//! nginx as a test peer (shared by the integration tests and the benchmark): started in a temp
//! dir on a free loopback port with the server blocks given, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx in a temp dir, serving the `server { ... }` blocks it is given.
pub struct Nginx {
    child: Child,
    /// The directory with its config, logs and temp files.
    pub dir: PathBuf,
}

impl Nginx {
    /// Starts nginx with `servers` (server blocks; `PORT` in them is replaced by the port it
    /// listens on), waiting until that port accepts connections. Returns it and the port.
    pub async fn start(dir: &Path, servers: &str) -> (Nginx, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let conf = format!(
            "worker_processes 1;\npid {pid};\nerror_log {dir}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log {dir}/logs/access.log;\n  client_body_temp_path {dir}/body;\n\
             proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n\
             scgi_temp_path {dir}/scgi;\n  client_max_body_size 64m;\n  keepalive_requests 1000000;\n  {servers}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            dir = dir.display(),
            servers = servers.replace("PORT", &port.to_string()),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let nginx = Path::new("/usr/sbin/nginx");
        assert!(nginx.exists(), "nginx is missing: run tests/peers.sh");
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nginx exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 30 s"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        (
            Nginx {
                child,
                dir: dir.to_owned(),
            },
            port,
        )
    }

    /// Requests nginx logged (one access-log line each).
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(self.dir.join("logs/access.log"))
            .map(|log| log.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master ends its worker too (a SIGKILLed master leaves the worker
    /// running, reparented to init); SIGKILL if it has not ended within 5 s.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
