//! The process logger: env_logger (`RUST_LOG`, default `info`). Every line passes
//! [`filmgate_actors::redact`] (the configuration's secrets redacted, control characters
//! escaped), and one guard against floods. Under systemd (`JOURNAL_STREAM` names stderr)
//! each line is `<priority>target: message`, which the journal files at that priority and
//! stamps itself. actix-http logs every malformed request a client sends at ERROR ("stream error:
//! request parse error"), so any client could flood the log; and while the records database
//! is down every post a gateway retries fails alike. Those lines pass at most once per
//! [`REPEAT_LOG_INTERVAL`] per source, saying how many were left out.

use filmgate_actors::redact::{escape_controls, redact};
use log::{Level, Log, Metadata, Record};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Least time between two logged lines of one throttled source.
pub const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The throttled log targets, what their lines are about, and the least level they log at.
const THROTTLED: [(&str, &str, Level); 3] = [
    // actix-http's per-connection errors: a client's doing, so a warning. (Its module path:
    // the one target here that is not ours to name.)
    (
        "actix_http::h1::dispatcher",
        "a client's request; ",
        Level::Warn,
    ),
    // Records store failures, of writes and of reads.
    (filmgate_web::log_targets::RECORDS_STORE, "", Level::Error),
    (
        filmgate_web::log_targets::STORE_UNAVAILABLE,
        "",
        Level::Error,
    ),
];

/// env_logger behind the repeat rate limit.
pub struct Logger {
    inner: env_logger::Logger,
    /// Per [`THROTTLED`] target: when its last line was logged, and how many were left out.
    throttled: Mutex<[(Option<Instant>, u64); THROTTLED.len()]>,
}

/// Whether stderr is the journal's stream (systemd sets `JOURNAL_STREAM` to its
/// `device:inode`): then lines carry a syslog priority prefix and no timestamp of their own.
fn stderr_is_journal() -> bool {
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| {
        let (dev, ino) = v.split_once(':')?;
        Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
    }) else {
        return false;
    };
    nix::sys::stat::fstat(std::io::stderr()).is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
}

/// The syslog priority the journal files a line of `level` under (`<3>` err … `<7>` debug).
fn journal_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Installs the logger for the process (once, at start).
pub fn init() {
    // actix-server's own start and stop chatter is left out of the default level.
    let mut builder = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,actix_server=warn"),
    );
    if stderr_is_journal() {
        builder.format(|buf, record| {
            use std::io::Write;
            writeln!(
                buf,
                "<{}>{}: {}",
                journal_priority(record.level()),
                record.target(),
                record.args()
            )
        });
    }
    let inner = builder.build();
    let max = inner.filter();
    let logger = Logger {
        inner,
        throttled: Mutex::new([(None, 0); THROTTLED.len()]),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

impl Logger {
    /// Writes `message` as `record`'s line, with every secret of the configuration redacted
    /// and control characters escaped: whatever a line quotes (an upstream's answer, a
    /// frame, an error naming a URL), it stays one line, drives no terminal and leaks nothing.
    fn write(&self, record: &Record, message: &str) {
        let redacted = redact(message);
        let line = escape_controls(&redacted);
        self.inner.log(
            &Record::builder()
                .args(format_args!("{line}"))
                .level(record.level())
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.inner.matches(record) {
            return;
        }
        let Some(i) = THROTTLED.iter().position(|t| t.0 == record.target()) else {
            return self.write(record, &record.args().to_string());
        };
        let (_, about, least_level) = THROTTLED[i];
        let mut throttled = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
        let (last, left_out) = &mut throttled[i];
        if last.is_some_and(|at| at.elapsed() < REPEAT_LOG_INTERVAL) {
            *left_out += 1;
            return;
        }
        let message = format!(
            "{} ({about}{} more like it in the last {} s not logged)",
            record.args(),
            left_out,
            REPEAT_LOG_INTERVAL.as_secs()
        );
        *last = Some(Instant::now());
        *left_out = 0;
        drop(throttled);
        let record = Record::builder()
            .level(record.level().max(least_level))
            .target(record.target())
            .args(*record.args())
            .build();
        self.write(&record, &message);
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
