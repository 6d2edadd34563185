//! The record model at the bottom of the crate: the plain data a frame becomes on its way into
//! the queue, how its text is parsed ([`format`](mod@format) says how, [`parse`] does it), and the time
//! helpers every stage uses (epoch milliseconds inside, RFC 3339 with milliseconds outside).

pub mod format;
pub mod parse;

pub use format::{RecordConfig, RecordFormat};

use serde_json::{Map, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The parsed fields of a film: JSON numbers where the text parses as a number, else strings.
pub type FilmData = Map<String, Value>;

/// One frame read from a link, ready to be written to the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    /// Globally unique id; sent upstream in the body and as `Idempotency-Key`.
    pub uid: String,
    /// The link (`[[serial]].name`) the frame was read from.
    pub source: String,
    /// When the frame's last byte was read, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The frame's bytes without the delimiter, exactly as read (lossless).
    pub raw: Vec<u8>,
    /// What parsing made of the frame.
    pub body: ItemBody,
    /// The sequence the film belongs to; `None` for a fragment and for a rejected frame read
    /// before any sequence started on its link.
    pub sequence: Option<SequenceRef>,
}

/// The outcome of parsing one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemBody {
    /// A film with its fields.
    Film(FilmData),
    /// A frame that could not be parsed; it is stored as a dead item with this reason.
    Rejected { reason: String },
    /// Bytes that may belong to a record the link did not see whole (`docs/ARCHITECTURE.md`, fragment rules): stored
    /// dead with this reason, never parsed, never retried, in no sequence.
    Fragment { reason: String },
}

/// How one link's frames are parsed, with the limit every frame meets: what the queue uses
/// to re-parse a dead item on retry or accept, so such an item passes the same checks as a
/// new frame.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkParser {
    /// `[serial.record]` of the link.
    pub record: RecordConfig,
    /// `max_frame_bytes` of the link.
    pub max_frame_bytes: usize,
}

impl LinkParser {
    /// `max_frame_bytes` when a config does not say (as `[[serial]]`'s default).
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 4096;

    /// The frame's fields, or why it is not a film (too long, or not parsable).
    pub fn parse(&self, raw: &[u8]) -> Result<FilmData, String> {
        if raw.len() > self.max_frame_bytes {
            return Err(format!(
                "frame exceeds max_frame_bytes ({}): {} bytes",
                self.max_frame_bytes,
                raw.len()
            ));
        }
        parse::parse_frame(&self.record, raw)
    }
}

impl From<RecordConfig> for LinkParser {
    /// The record config with the default frame limit.
    fn from(record: RecordConfig) -> LinkParser {
        LinkParser {
            record,
            max_frame_bytes: LinkParser::DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// A sequence as the link knows it: a local uid and the key value that started it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceRef {
    /// Locally made uid; sent upstream in the sequence body and as `Idempotency-Key`.
    pub uid: String,
    /// The `sequence_key` field's value that started this sequence, if a key is configured.
    pub key: Option<String>,
}

impl SequenceRef {
    /// A new sequence, with a new uid, started by a film whose key field holds `key` (`None`
    /// without a `sequence_key`). The one place sequences are made: by a link's
    /// [`crate::serial::sequence::SequenceTracker`], and by the queue for a film that has none.
    pub fn start(key: Option<String>) -> SequenceRef {
        SequenceRef {
            uid: new_uid(),
            key,
        }
    }
}

/// A new time-ordered unique id (UUID v7: 48 bits of milliseconds, 74 random bits) as text.
///
/// The random bits come from a per-thread generator seeded by the OS, not from a system call
/// per id: uids need uniqueness, not secrecy, and one is made for every frame read.
pub fn new_uid() -> String {
    let mut random = [0u8; 10];
    fastrand::fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(now_ms() as u64, &random)
        .into_uuid()
        .to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Milliseconds on the gateway's steady clock: the wall clock when the process first asked,
/// then monotonic time. A wall-clock step (NTP, a wrong RTC at boot, a hand-set clock) does
/// not move it, so retry due times kept on it neither hold an item back nor fire it early.
/// Not comparable across processes: the queue makes stored due times due at once at open.
pub fn steady_ms() -> i64 {
    static START: std::sync::OnceLock<(std::time::Instant, i64)> = std::sync::OnceLock::new();
    let (at, wall_ms) = START.get_or_init(|| (std::time::Instant::now(), now_ms()));
    wall_ms + at.elapsed().as_millis() as i64
}

/// RFC 3339 text (UTC, milliseconds) for epoch milliseconds, e.g. `2026-11-22T05:03:05.123Z`.
pub fn rfc3339_ms(epoch_ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(epoch_ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_ms_formats_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn new_uids_are_unique_and_ordered_by_millisecond() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        // A uid made in a later millisecond sorts after (UUIDv7: the time comes first).
        let made_at = now_ms();
        while now_ms() == made_at {
            std::hint::spin_loop();
        }
        let later = new_uid();
        assert!(a < later && b < later, "{a} {b} {later}");
    }
}
