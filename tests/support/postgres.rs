//! PostgreSQL as a test peer (shared by the integration tests, the records suite and the
//! benchmark): a throwaway cluster made with Debian's `initdb` in a temp dir, served by
//! `pg_ctl` on a free loopback port, stopped and deleted when dropped. As root (CI), the
//! cluster belongs to the `postgres` user, as PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running throwaway cluster.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The port it listens on (127.0.0.1 only).
    pub port: u16,
}

impl Postgres {
    /// Makes a cluster and starts it. Panics, naming `tests/peers.sh`, when PostgreSQL is not
    /// installed.
    pub fn start() -> Postgres {
        let bin = server_bin();
        let dir = tempfile::Builder::new()
            .prefix("filmgate-pg")
            .tempdir()
            .expect("temp dir");
        if let Some((uid, gid)) = postgres_user() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let pg = Postgres { bin, dir, port };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             max_connections = 200\nlog_min_messages = warning\n",
            dir = pg.dir.path().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(pg.data().join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .expect("postgresql.conf");
        pg.start_server();
        pg
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// Runs SQL with `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = self.run_output("psql", &self.psql_args(database, sql));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts `psql` running SQL in a session named `application_name` and returns at once
    /// (for a session that holds a lock while a test watches).
    pub fn psql_in_background(
        &self,
        database: &str,
        sql: &str,
        application_name: &str,
    ) -> std::process::Child {
        self.command("psql")
            .args(self.psql_args(database, sql))
            .env("PGAPPNAME", application_name)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("psql starts")
    }

    fn psql_args(&self, database: &str, sql: &str) -> Vec<String> {
        let port = self.port.to_string();
        [
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Stops the server the way an administrator's restart does (`-m fast`: sessions are
    /// ended, the data is flushed).
    pub fn stop_server(&self) {
        let data = self.data().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        self.run_output(tool, args);
    }

    /// A PostgreSQL tool, to run as the cluster's owner in its directory.
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut cmd = if postgres_user().is_some() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs a PostgreSQL tool as the cluster's owner; panics with its output when it fails.
    fn run_output<A: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
        &self,
        tool: &str,
        args: &[A],
    ) -> Output {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} does not run ({e}): run tests/peers.sh"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The newest installed server's `bin` directory (`/usr/lib/postgresql/<version>/bin`).
fn server_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is missing (no {}/*/bin/initdb): run tests/peers.sh",
            root.display()
        ),
    }
}

/// The `postgres` user's uid and gid when running as root, else `None` (run as oneself).
fn postgres_user() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok()? != 0 {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}
