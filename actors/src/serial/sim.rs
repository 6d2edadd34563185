//! The simulated vision machine (`port = "sim"`): a thread writing CSV film records to a raw
//! pty's master at a fixed rate, so the link reads them through tokio-serial like a device.

use super::pty::Pty;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Films per lot before the simulated machine starts a new lot (a new sequence).
const FILMS_PER_LOT: u64 = 100;

/// A running simulated machine; stops when dropped.
pub struct Simulator {
    /// The slave path the link opens.
    slave_path: PathBuf,
    /// Tells the writer thread to end.
    stop: Arc<AtomicBool>,
}

impl Simulator {
    /// Opens a pty and starts writing `rate_hz` records per second to it.
    pub fn start(rate_hz: f64) -> io::Result<Simulator> {
        let mut pty = Pty::open_raw()?;
        let slave_path = pty.slave_path().to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let period = Duration::from_secs_f64(1.0 / rate_hz);
        std::thread::Builder::new()
            .name("filmgate-sim".into())
            .spawn(move || {
                let day = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
                let day: String = day[..10].chars().filter(|c| c.is_ascii_digit()).collect();
                let mut next = Instant::now();
                let mut film_no: u64 = 0;
                while !stopped.load(Ordering::Relaxed) {
                    film_no += 1;
                    let record = sim_record(&day, film_no);
                    if pty.write_all(record.as_bytes()).is_err() {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    // Absolute deadlines keep the rate; after a long stall, do not burst.
                    next += period;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else if now - next > Duration::from_secs(1) {
                        next = now;
                    }
                }
            })?;
        Ok(Simulator { slave_path, stop })
    }

    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One record: `lot,film_no,thickness_um,width_mm,defects` and `\r`.
pub fn sim_record(day: &str, film_no: u64) -> String {
    let lot = format!("L{day}-{:04}", (film_no - 1) / FILMS_PER_LOT + 1);
    let thickness_um = 25.0 + (fastrand::f64() - 0.5) * 0.8;
    let width_mm = 1200.0 + (fastrand::f64() - 0.5) * 1.0;
    let defects = if fastrand::u8(..) < 20 {
        fastrand::u8(1..4)
    } else {
        0
    };
    format!("{lot},{film_no},{thickness_um:.2},{width_mm:.1},{defects}\r")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::config::RecordConfig;
    use crate::serial::parse::parse_frame;

    #[test]
    fn sim_records_parse_with_the_default_format_and_change_lot_every_100() {
        let r1 = sim_record("20261122", 1);
        let data = parse_frame(
            &RecordConfig::default(),
            r1.trim_end_matches('\r').as_bytes(),
        )
        .unwrap();
        assert_eq!(data["lot"], "L20261122-0001");
        assert_eq!(data["film_no"], 1);
        assert!(data["thickness_um"].is_f64());
        assert!(sim_record("20261122", 101).starts_with("L20261122-0002,101,"));
    }
}
