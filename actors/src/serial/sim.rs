//! The simulated vision machine (`port = "sim"`): a thread writing CSV film records on the
//! master side of a raw [`Pty`], at a steady rate; the link opens [`Simulator::slave_path`]
//! through tokio-serial like any device. Records match the default `[serial.record]` fields:
//! `lot,film_no,thickness_um,width_mm,defects`, each ended by `\r`.
//!
//! Like a machine on a cable nobody listens to, it writes only while a reader has the line
//! open, and starts [`SETTLE_AFTER_ATTACH`] after the reader came: its first record then finds
//! the link past its start check (no fragment), and nothing stale waits in the pty.

use super::pty::Pty;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Films per lot: the `lot` field (the default sequence key) changes this often.
pub const FILMS_PER_LOT: u32 = 100;

/// Unwritten bytes held while nobody reads; beyond it new records are dropped, as a real
/// line drops what nobody listens to.
const MAX_PENDING_BYTES: usize = 64 * 1024;

/// How far the schedule may fall behind before it is restarted from now instead of
/// bursting to catch up.
const MAX_LAG: Duration = Duration::from_secs(1);

/// Silence after a reader opens the line before the first record: longer than a link's start
/// check (`super::config::START_QUIET_MIN_MS`).
pub const SETTLE_AFTER_ATTACH: Duration = Duration::from_millis(120);

/// How often a simulator with no reader looks for one.
const ATTACH_POLL: Duration = Duration::from_millis(10);

/// Pause after a failed write (EIO: on some kernels, no reader has the slave open yet).
const WRITE_FAILURE_PAUSE: Duration = Duration::from_millis(100);

/// A running simulated machine. Dropping it stops the thread and closes the pty.
pub struct Simulator {
    /// Where a link opens the simulated line.
    slave_path: PathBuf,
    /// Set on drop; the writer thread checks it every wake-up.
    stop: Arc<AtomicBool>,
    /// The writer thread (joined on drop).
    thread: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Opens a raw pty and starts writing records at `rate_hz` (clamped to 0.1..=100000).
    pub fn start(rate_hz: f64) -> io::Result<Simulator> {
        let pty = Pty::open_raw()?;
        let slave_path = pty.slave_path().to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let rate_hz = if rate_hz.is_finite() {
            rate_hz.clamp(0.1, 100_000.0)
        } else {
            5.0
        };
        let thread = std::thread::Builder::new()
            .name("filmgate-sim".into())
            .spawn({
                let stop = stop.clone();
                move || run(pty, rate_hz, &stop)
            })?;
        Ok(Simulator {
            slave_path,
            stop,
            thread: Some(thread),
        })
    }

    /// The slave device path to open as the serial port.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The writer loop: records are due at absolute times `start + n / rate`, so write delays do
/// not lower the rate; each wake-up writes every record due.
fn run(mut pty: Pty, rate_hz: f64, stop: &AtomicBool) {
    let mut records = RecordMaker::new(today_yyyymmdd());
    let mut pending: Vec<u8> = Vec::new();
    let mut schedule_start = Instant::now();
    let mut due_count: u64 = 0;
    let mut failure_logged = false;
    let mut attached_since: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if !pty.reader_attached() {
            // What nobody hears is gone; the schedule starts afresh with the next reader.
            attached_since = None;
            pending.clear();
            std::thread::park_timeout(ATTACH_POLL);
            continue;
        }
        let attached_at = *attached_since.get_or_insert_with(Instant::now);
        let settled_at = attached_at + SETTLE_AFTER_ATTACH;
        if Instant::now() < settled_at {
            schedule_start = settled_at;
            due_count = 0;
            std::thread::park_timeout(settled_at - Instant::now());
            continue;
        }
        let now = Instant::now();
        if now.duration_since(schedule_start + per(due_count, rate_hz)) > MAX_LAG {
            schedule_start = now;
            due_count = 0;
        }
        while schedule_start + per(due_count, rate_hz) <= now {
            due_count += 1;
            let record = records.next_record();
            if pending.len() + record.len() <= MAX_PENDING_BYTES {
                pending.extend_from_slice(record.as_bytes());
            }
        }
        if !pending.is_empty() {
            match pty.try_write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                    failure_logged = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    if !failure_logged {
                        log::debug!("simulator: write failed ({e}); retrying");
                        failure_logged = true;
                    }
                    std::thread::park_timeout(WRITE_FAILURE_PAUSE);
                    continue;
                }
            }
        }
        let next_due = schedule_start + per(due_count, rate_hz);
        // At least 1 ms between wake-ups: high rates are written in bursts.
        let wait = next_due
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        std::thread::park_timeout(wait);
    }
}

fn per(count: u64, rate_hz: f64) -> Duration {
    Duration::from_secs_f64(count as f64 / rate_hz)
}

fn today_yyyymmdd() -> String {
    let text = humantime::format_rfc3339(SystemTime::now()).to_string();
    text[..10].replace('-', "")
}

/// Films per cycle of the thickness drift (five minutes at the shipped 5 films/s).
const DRIFT_PERIOD_FILMS: f64 = 1500.0;
/// The drift's amplitude, µm: under one standard deviation of a subgroup mean of 5, so SPC's
/// run rules fire now and then while the drift is high or low, not only on single points.
const DRIFT_UM: f64 = 0.025;
/// One film in this many is a thickness spike of 0.5–0.65 µm: beyond the shipped spec limits
/// (24.5–25.5 µm) unless the noise pulls it back.
const SPIKE_ONE_IN: u32 = 400;

/// Makes plausible film records: lots of [`FILMS_PER_LOT`] films, thickness around 25 µm
/// (σ ≈ 0.12 µm) drifting slowly up and down with a rare spike out of spec, width around
/// 1200 mm, an occasional defect.
struct RecordMaker {
    /// `YYYYMMDD` in the lot id.
    date: String,
    /// Lot counter within the day.
    lot_no: u32,
    /// Film number within the lot, 1-based.
    film_no: u32,
    /// Films made so far (the drift's phase).
    made: u64,
}

impl RecordMaker {
    fn new(date: String) -> RecordMaker {
        RecordMaker {
            date,
            lot_no: 1,
            film_no: 0,
            made: 0,
        }
    }

    fn next_record(&mut self) -> String {
        if self.film_no == FILMS_PER_LOT {
            self.film_no = 0;
            self.lot_no += 1;
        }
        self.film_no += 1;
        self.made += 1;
        // Four uniforms summed: close enough to normal, σ = 0.2 · √(4/12) ≈ 0.115 µm.
        let noise_um = ((0..4).map(|_| fastrand::f64()).sum::<f64>() - 2.0) * 0.2;
        let phase = std::f64::consts::TAU * self.made as f64 / DRIFT_PERIOD_FILMS;
        let spike_um = if fastrand::u32(0..SPIKE_ONE_IN) == 0 {
            (0.5 + fastrand::f64() * 0.15) * if fastrand::bool() { 1.0 } else { -1.0 }
        } else {
            0.0
        };
        let thickness_um = 25.0 + DRIFT_UM * phase.sin() + noise_um + spike_um;
        let width_mm = 1200.0 + (fastrand::f64() - 0.5) * 2.0;
        let defects = if fastrand::u32(0..20) == 0 {
            fastrand::u32(1..4)
        } else {
            0
        };
        format!(
            "L{}-{:04},{},{:.2},{:.1},{}\r",
            self.date, self.lot_no, self.film_no, thickness_um, width_mm, defects
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse::{parse_frame, sequence_key_value};
    use crate::serial::config::RecordConfig;

    #[test]
    fn records_parse_with_the_default_record_config_and_lots_change_every_100_films() {
        let cfg = RecordConfig::default();
        let mut maker = RecordMaker::new("20261122".into());
        let mut lots = Vec::new();
        for i in 0..250u32 {
            let record = maker.next_record();
            let frame = record.strip_suffix('\r').expect("ends with \\r");
            let data = parse_frame(&cfg, frame.as_bytes()).unwrap();
            assert_eq!(data["film_no"], serde_json::json!(i % 100 + 1));
            let t = data["thickness_um"].as_f64().unwrap();
            assert!((23.8..26.2).contains(&t), "{t}");
            assert!(data["defects"].is_u64());
            lots.push(sequence_key_value(&cfg, &data).unwrap());
        }
        assert_eq!(lots[0], "L20261122-0001");
        assert_eq!(lots[99], "L20261122-0001");
        assert_eq!(lots[100], "L20261122-0002");
        assert_eq!(lots[249], "L20261122-0003");
    }

    #[test]
    fn dropping_the_simulator_stops_it_even_when_nobody_reads() {
        let started = Instant::now();
        let sim = Simulator::start(50_000.0).unwrap();
        assert!(sim.slave_path().exists());
        std::thread::sleep(Duration::from_millis(50));
        drop(sim);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
