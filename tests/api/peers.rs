//! Real servers the tests post to, as plants run them: Django REST Framework (`runserver` and
//! gunicorn, from `tests/django` in the venv `tests/peers.sh` makes), nginx, PostgreSQL, and a
//! test CA made with the openssl command. Each runs in the test's temp dir and is stopped when
//! dropped.

use crate::helpers::*;
#[path = "../support/nginx.rs"]
mod nginx;
pub use nginx::Nginx;
#[allow(dead_code)] // shared with the records suite and the benchmark, which use all of it
#[path = "../support/postgres.rs"]
mod postgres;
pub use postgres::Postgres;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository root (peers and their installs live below it).
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A program the test needs, or a panic saying how to install it.
fn peer_program(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run tests/peers.sh (it installs the tests' peers)",
        path.display()
    );
    path
}

/// Waits until `port` on loopback accepts connections.
async fn wait_listening(port: u16, what: &str, child: &mut Child) {
    wait_for(Duration::from_secs(30), what, async || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
    .await;
}

/// How the Django service is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DjangoServer {
    /// `manage.py runserver` with no middleware: close-delimited HTTP/1.1 answers.
    Runserver,
    /// gunicorn with two workers and the usual middleware.
    Gunicorn,
}

/// A Django REST Framework records service (see `tests/django/README.md`).
pub struct Django {
    child: Child,
    /// `http://127.0.0.1:PORT` (API roots are `/api/` and `/flat/api/` below it).
    pub origin: String,
    server: DjangoServer,
    env: Vec<(String, String)>,
    port: u16,
}

impl Django {
    pub const TOKEN: &'static str = "django-test-token";

    /// Migrates a fresh database in `dir` and starts the server; `extra_env` adds settings
    /// (`FILMGATE_DJANGO_THROTTLE`, `FILMGATE_DJANGO_MAX_BATCH`).
    pub async fn start(dir: &Path, server: DjangoServer, extra_env: &[(&str, &str)]) -> Django {
        let mut env = vec![
            (
                "FILMGATE_DJANGO_DB".to_owned(),
                dir.join("drf.sqlite3").display().to_string(),
            ),
            ("FILMGATE_DJANGO_TOKEN".to_owned(), Django::TOKEN.to_owned()),
        ];
        if server == DjangoServer::Runserver {
            env.push(("FILMGATE_DJANGO_MIDDLEWARE".into(), "none".into()));
        }
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        for step in ["migrate", "filmgate_token"] {
            let status = Command::new(python())
                .arg(repo().join("tests/django/manage.py"))
                .arg(step)
                .args(["-v", "0"])
                .envs(env.iter().cloned())
                .status()
                .expect("python runs");
            assert!(status.success(), "manage.py {step}: {status}");
        }
        let port = unclaimed_port();
        let mut django = Django {
            child: Django::spawn(server, port, &env),
            origin: format!("http://127.0.0.1:{port}"),
            server,
            env,
            port,
        };
        wait_listening(port, "django", &mut django.child).await;
        django
    }

    fn spawn(server: DjangoServer, port: u16, env: &[(String, String)]) -> Child {
        let bind = format!("127.0.0.1:{port}");
        let mut command = match server {
            DjangoServer::Runserver => {
                let mut c = Command::new(python());
                c.arg(repo().join("tests/django/manage.py")).args([
                    "runserver",
                    &bind,
                    "--noreload",
                    "--skip-checks",
                ]);
                c
            }
            DjangoServer::Gunicorn => {
                let mut c =
                    Command::new(peer_program(repo().join("target/peers/venv/bin/gunicorn")));
                c.arg("--chdir")
                    .arg(repo().join("tests/django"))
                    .args(["--bind", &bind, "--workers", "2", "--no-control-socket"])
                    .arg("filmgate_drf.wsgi");
                c
            }
        };
        command
            .process_group(0)
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Django server starts")
    }

    /// Kills the server and its workers (SIGKILL to its process group).
    fn kill(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and database.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = Django::spawn(self.server, self.port, &self.env);
        wait_listening(self.port, "django again", &mut self.child).await;
    }

    /// A client that reads the development server's close-delimited answers (plain awc reads
    /// them as empty: the gateway's own connector is what makes them readable).
    fn client() -> awc::Client {
        let connector = awc::Connector::new()
            .connector(filmgate_actors::poster::connector::FramingConnector::new());
        awc::Client::builder().connector(connector).finish()
    }

    /// `{"films", "distinct_uids", "sequences"}` of the nested (`/api/`) or flat (`/flat/api/`)
    /// films; `None` while the server does not answer (restarting).
    pub async fn counts(&self, api: &str) -> Option<serde_json::Value> {
        Django::client()
            .get(format!("{}{api}films/count/", self.origin))
            .insert_header(("Authorization", format!("Token {}", Django::TOKEN)))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Every film row of `api` (at most 100,000); `None` while the server does not answer.
    pub async fn films(&self, api: &str) -> Option<Vec<serde_json::Value>> {
        self.rows(&format!("{api}films/")).await
    }

    /// Every row of the list at `path` (at most 100,000); `None` while the server does not
    /// answer.
    pub async fn rows(&self, path: &str) -> Option<Vec<serde_json::Value>> {
        let page: serde_json::Value = Django::client()
            .get(format!("{}{path}?limit=100000", self.origin))
            .insert_header(("Authorization", format!("Token {}", Django::TOKEN)))
            .send()
            .await
            .ok()?
            .json()
            .limit(256 << 20)
            .await
            .ok()?;
        page["results"].as_array().cloned()
    }
}

impl Django {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// `tests/django/proxy504.py` in front of a server on `127.0.0.1:upstream_port`: relays every
/// request, but answers the POSTs its rules name with 504 after the backend has answered
/// (the backend committed; the client never learns it), as a proxy whose timeout is shorter
/// than the backend's answer does.
pub struct Proxy504 {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
}

impl Proxy504 {
    /// `rules`: see the script (`sequences:2,films:every5`).
    pub async fn start(upstream_port: u16, rules: &str) -> Proxy504 {
        let port = unclaimed_port();
        let mut child = Command::new(python())
            .arg(repo().join("tests/django/proxy504.py"))
            .args([&port.to_string(), &upstream_port.to_string(), rules])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the proxy starts");
        wait_listening(port, "proxy504", &mut child).await;
        Proxy504 {
            child,
            origin: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Proxy504 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        self.kill();
    }
}

fn python() -> PathBuf {
    peer_program(repo().join("target/peers/venv/bin/python"))
}

/// A test CA and certificates it signed, as PEM files in a directory.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Makes a CA, a server certificate for `127.0.0.1` and `localhost`, and a client
    /// certificate, with the openssl command.
    pub fn make(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=filmgate test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for who in ["server", "client"] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=filmgate {who}"),
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
                "-out",
                &format!("{who}.pem"),
            ]);
        }
        TestPki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}
