//! One connection's read loop: bytes from the port, frames from the codec, items to the queue.
//! It owns what a connection changes (the sequence tracker, whether a film came) and gives it
//! back to the [`super::SerialActor`] when it ends, in a [`Finished`].

use super::codec::{FrameCodec, RawFrame};
use super::config::{self, FlowControl, Parity, SerialConfig};
use super::items::ItemMaker;
use super::sequence::SequenceTracker;
use crate::links::{LinkRegistry, LinkState};
use crate::messages::Enqueue;
use crate::record::{ItemBody, now_ms, rfc3339_ms};
use actix::Recipient;
use bytes::BytesMut;
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// Most frames in one [`Enqueue`]: one read burst, bounded.
const MAX_FRAMES_PER_BATCH: usize = 1024;

/// Bytes one read may bring. Reads go into one buffer, zeroed once per connection, and are
/// copied behind the bytes held (`tokio-serial` zeroes whatever spare room a read is given, so
/// reading into the growing frame buffer would clear 64 KiB per record).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How long a stop or restart that finds a record half read waits for the rest of it, so
/// that the connection ends between two records (no fragment, and a clean hand-over).
const STOP_FINISH_RECORD: Duration = Duration::from_millis(500);

/// Pause between attempts to hand a refused batch to the queue again.
const ENQUEUE_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// What the actor asks of its running read loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    /// Keep reading.
    Run,
    /// End after handing the batch in hand to the queue; the actor reopens.
    Restart,
    /// End for good (shutdown); a batch the queue keeps refusing is given up.
    Stop,
}

/// Why a read loop ended.
#[derive(Debug)]
pub(super) enum ReadEnd {
    /// EOF, read error or idle timeout: the link is down with this error.
    Failed(String),
    /// [`Signal::Restart`] or [`Signal::Stop`].
    Requested,
}

/// Everything one connection's read loop needs besides the port.
pub(super) struct Connection {
    pub(super) maker: ItemMaker,
    pub(super) cfg: Arc<SerialConfig>,
    pub(super) queue: Recipient<Enqueue>,
    pub(super) links: LinkRegistry,
    /// The link's sequences, lent to this connection and given back in [`Finished`].
    pub(super) tracker: SequenceTracker,
    /// Whether a film was read on this connection (a good connection resets the backoff).
    pub(super) film_seen: bool,
    pub(super) signal: watch::Receiver<Signal>,
    /// The port was handed over at a record boundary: its first byte starts a record.
    pub(super) at_boundary: bool,
    /// The port's identity if it keeps what the device sends while closed; shown in the
    /// link's `boundary_port` when the connection ends at a record boundary.
    pub(super) identity: Option<String>,
}

/// What a read loop gives back to its actor when it ends.
pub(super) struct Finished {
    pub(super) end: ReadEnd,
    pub(super) tracker: SequenceTracker,
    pub(super) film_seen: bool,
    /// The port's identity when the connection ended at a record boundary (the last byte
    /// consumed was a delimiter, or line noise after one, and no unfinished bytes were held)
    /// on a port that keeps what the device sends while closed: the next open of the same
    /// port starts at a record.
    pub(super) boundary_port: Option<String>,
}

pub(super) fn open_port(path: &str, cfg: &SerialConfig) -> tokio_serial::Result<SerialStream> {
    use tokio_serial::{DataBits, FlowControl as Flow, Parity as Par, StopBits};
    tokio_serial::new(path, cfg.baud_rate)
        .data_bits(match cfg.data_bits {
            config::DataBits::Five => DataBits::Five,
            config::DataBits::Six => DataBits::Six,
            config::DataBits::Seven => DataBits::Seven,
            config::DataBits::Eight => DataBits::Eight,
        })
        .parity(match cfg.parity {
            Parity::None => Par::None,
            Parity::Even => Par::Even,
            Parity::Odd => Par::Odd,
        })
        .stop_bits(if cfg.stop_bits == 2 {
            StopBits::Two
        } else {
            StopBits::One
        })
        .flow_control(match cfg.flow_control {
            FlowControl::None => Flow::None,
            FlowControl::Software => Flow::Software,
            FlowControl::Hardware => Flow::Hardware,
        })
        .open_native_async()
}

/// Reads until EOF, a read error, the idle timeout or a signal, handing each read's frames to
/// the queue. When the connection ends, the bytes of an unfinished frame are handed over as a
/// fragment (`docs/ARCHITECTURE.md`, fragment rules), so nothing read is dropped.
///
/// Whether the first record of the connection is whole: the line counts as quiet only when a
/// check [`SerialConfig::start_quiet`] after the open finds no byte waiting (the read is polled
/// first, so a byte that came before the check makes the start unseen, even if this task ran
/// late). Every misjudgement this allows is on the safe side: a whole record kept as a fragment.
/// The link is shown `up` (reading records) from that moment, or from the first delimiter when
/// bytes came first: a record that starts after the link is up is never a fragment.
///
/// Exclusive access needs no care here: serialport sets TIOCEXCL at open and clears it when
/// the port is closed, so the same path (e.g. the simulator's pty) reopens after a restart.
pub(super) async fn read_loop(mut conn: Connection, port: SerialStream) -> Finished {
    let (end, at_boundary) = read_until_end(&mut conn, port).await;
    let boundary_port = conn.identity.take().filter(|_| at_boundary);
    // Before the signal receiver goes (a stop is answered then): shutdown reads it.
    let shown = boundary_port.clone();
    conn.links
        .update(&conn.maker.source, |s| s.boundary_port = shown);
    Finished {
        end,
        tracker: conn.tracker,
        film_seen: conn.film_seen,
        boundary_port,
    }
}

/// The loop of [`read_loop`]: why it ended, and whether at a record boundary.
async fn read_until_end(conn: &mut Connection, mut port: SerialStream) -> (ReadEnd, bool) {
    let mut codec = FrameCodec::new(conn.cfg.delimiter.as_bytes(), conn.cfg.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let mut scratch = vec![0u8; READ_BUFFER_BYTES];
    let opened_at = Instant::now();
    let mut quiet_check_at = Some(opened_at + conn.cfg.start_quiet());
    let idle = conn.cfg.idle_timeout();
    let mut last_byte_at = opened_at;
    let mut up = false;
    if conn.at_boundary {
        // Handed over where the last connection stopped: between two records.
        codec.line_was_quiet();
        quiet_check_at = None;
        mark_up(conn, "handed over at a record boundary");
        up = true;
    }
    // Set when a stop or restart came while a record was half read: until then its rest may
    // still come, so the stop falls between two records.
    let mut finish_by: Option<Instant> = None;
    let end = loop {
        // Checked here, not only in the select below: a signal seen while a batch waited
        // for the queue counts too.
        let stopping = *conn.signal.borrow() != Signal::Run;
        if stopping {
            if buf.is_empty() || finish_by.is_some_and(|at| Instant::now() >= at) {
                break ReadEnd::Requested;
            }
            finish_by.get_or_insert_with(|| Instant::now() + STOP_FINISH_RECORD);
        }
        let idle_deadline = last_byte_at + idle.unwrap_or(Duration::from_secs(86_400));
        let read = tokio::select! {
            biased;
            changed = conn.signal.changed(), if !stopping => {
                if changed.is_err() {
                    break ReadEnd::Requested;
                }
                continue;
            }
            _ = tokio::time::sleep_until(finish_by.unwrap_or(opened_at)), if finish_by.is_some() => {
                break ReadEnd::Requested;
            }
            read = port.read(&mut scratch) => read,
            _ = tokio::time::sleep_until(quiet_check_at.unwrap_or(opened_at)), if quiet_check_at.is_some() => {
                codec.line_was_quiet();
                quiet_check_at = None;
                mark_up(conn, "the line was quiet");
                up = true;
                continue;
            }
            _ = tokio::time::sleep_until(idle_deadline), if idle.is_some() => {
                let idle = idle.unwrap_or_default();
                break ReadEnd::Failed(format!("no data for {} ms", idle.as_millis()));
            }
        };
        // A byte (or EOF, or an error) came before the line was proven quiet.
        quiet_check_at = None;
        let mut read_bytes = match read {
            Ok(0) => break ReadEnd::Failed("end of file: device closed".into()),
            Err(e) => break ReadEnd::Failed(format!("read error: {e}")),
            Ok(n) => n,
        };
        buf.extend_from_slice(&scratch[..read_bytes]);
        let mut frames: Vec<RawFrame> = std::iter::from_fn(|| codec.decode(&mut buf)).collect();
        // A read that filled the buffer may have left more ready: take it now, so that a flood
        // goes to the queue in batches of up to MAX_FRAMES_PER_BATCH (one group commit each),
        // not one read at a time. A shorter read found the port empty.
        while read_bytes == scratch.len() && frames.len() < MAX_FRAMES_PER_BATCH {
            match port.read(&mut scratch).now_or_never() {
                Some(Ok(n)) if n > 0 => {
                    read_bytes = n;
                    buf.extend_from_slice(&scratch[..n]);
                    frames.extend(std::iter::from_fn(|| codec.decode(&mut buf)))
                }
                // EOF and errors are met again by the next read.
                _ => break,
            }
        }
        let received_at_ms = now_ms();
        let noise = codec.take_noise_bytes();
        if noise > 0 {
            conn.links
                .update(&conn.maker.source, |s| s.noise_bytes += noise);
        }
        if !up && !codec.start_unseen() {
            mark_up(conn, "a record boundary seen");
            up = true;
        }
        for (i, batch) in frames.chunks(MAX_FRAMES_PER_BATCH).enumerate() {
            if let Err(end) = deliver(conn, batch.to_vec(), received_at_ms).await {
                // A stop gave this batch up; the rest of the read goes the same way, said.
                let rest = frames.iter().skip((i + 1) * MAX_FRAMES_PER_BATCH).cloned();
                let rest: Vec<RawFrame> = rest.chain(codec.finish(&mut buf)).collect();
                not_kept(conn, rest.iter().map(|f| (None, f)));
                return (end, false);
            }
        }
        // Time spent waiting for the queue is not silence on the line.
        last_byte_at = Instant::now();
    };
    let position_known = !codec.start_unseen();
    match codec.finish(&mut buf) {
        Some(fragment) => {
            // A stop that gives the fragment up says so in `deliver`.
            let _ = deliver(conn, vec![fragment], now_ms()).await;
            (end, false)
        }
        None => (end, position_known),
    }
}

/// Shows the link `up` (it knows where records start) and says so once per connection.
fn mark_up(conn: &Connection, how: &str) {
    let name = conn.maker.source.as_str();
    conn.links.update(name, |s| s.state = LinkState::Up);
    log::info!("serial link {name}: up, reading records ({how})");
}

/// Hands one batch to the queue, retrying the same items every 500 ms while it refuses
/// them; reading waits meanwhile. Only a [`Signal::Stop`] abandons a refused batch, and then
/// every abandoned frame is logged with its bytes: the log is the last place left to keep it.
async fn deliver(
    conn: &mut Connection,
    frames: Vec<RawFrame>,
    received_at_ms: i64,
) -> Result<(), ReadEnd> {
    let (mut items, stamps) = conn
        .maker
        .make_items(&mut conn.tracker, frames, received_at_ms);
    let films = items
        .iter()
        .filter(|i| matches!(i.body, ItemBody::Film(_)))
        .count() as u64;
    let rejected = items.len() as u64 - films;
    conn.film_seen |= films > 0;
    let name = conn.maker.source.as_str();
    let mut failed_attempts = 0u32;
    loop {
        let count = items.len();
        let error = match conn.queue.send(Enqueue { items }).await {
            Ok(Ok(_)) => break,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("queue mailbox: {e}"),
        };
        if failed_attempts == 0 {
            log::error!(
                "serial link {name}: the queue did not take {count} frames ({error}); \
                 holding them, reading paused, retrying every {} ms",
                ENQUEUE_RETRY_INTERVAL.as_millis()
            );
        }
        failed_attempts += 1;
        conn.links.update(name, |s| s.queue_refusals += 1);
        let stopped = tokio::select! {
            _ = tokio::time::sleep(ENQUEUE_RETRY_INTERVAL) => false,
            // A restart waits until the batch is in the queue; only a stop gives it up.
            _ = conn.signal.wait_for(|s| *s == Signal::Stop) => true,
        };
        if stopped {
            log::error!(
                "serial link {name}: stopped with {count} frames the queue never took ({error}); \
                 they are NOT kept anywhere but in the lines below"
            );
            not_kept(
                conn,
                stamps.iter().map(|s| (Some(s.uid.as_str()), &s.frame)),
            );
            return Err(ReadEnd::Requested);
        }
        items = conn.maker.remake_items(&stamps, received_at_ms);
    }
    if failed_attempts > 0 {
        log::info!(
            "serial link {name}: the queue took the held frames after {failed_attempts} refusals"
        );
    }
    conn.links.update(name, |s| {
        s.frames_read += films;
        s.frames_rejected += rejected;
        s.last_frame_at = Some(rfc3339_ms(received_at_ms));
    });
    Ok(())
}

/// Logs frames a stop gives up, each with its bytes (the log is the last place left to keep
/// them), and counts them in the link's `frames_lost`.
fn not_kept<'a>(conn: &Connection, frames: impl Iterator<Item = (Option<&'a str>, &'a RawFrame)>) {
    let name = conn.maker.source.as_str();
    let mut count = 0;
    for (uid, frame) in frames {
        count += 1;
        log::error!(
            "serial link {name}: frame not kept: uid {} raw \"{}\"",
            uid.unwrap_or("-"),
            frame.bytes().escape_ascii()
        );
    }
    conn.links.update(name, |s| s.frames_lost += count);
}
