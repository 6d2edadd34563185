//! Every JSON shape the web side answers with that is not a stored row as it is (the
//! records' rows, [`crate::store::FilmRow`] and [`crate::store::SequenceRow`], serialize as
//! DRF shows them; the actors' answers such as `QueueStats` and the SPC views serialize as
//! themselves), in one place: what a client can rely on is read here.

use crate::store::{FilmRow, SequenceRow};
use filmgate_actors::links::LinkStatus;
use filmgate_actors::messages::{QueueStats, QueuedItem};
use filmgate_actors::record::{FilmData, rfc3339_ms};
use filmgate_actors::redact::redact;
use serde::Serialize;
use serde_json::Value;

/// A DRF `LimitOffsetPagination` page.
#[derive(Debug, Serialize)]
pub struct PageBody<T> {
    pub count: u64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// One refresh answer.
#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    /// Pass back as `?cursor=` to get what is newer.
    pub cursor: String,
    /// New sequences: ascending after a cursor, else the newest first.
    pub sequences: Vec<SequenceRow>,
    /// New films: ascending after a cursor, else the newest first.
    pub films: Vec<FilmRow>,
    /// Queue counts and rates; `null` when the queue did not answer.
    pub queue: Option<QueueStats>,
    /// Every link's status.
    pub links: Vec<LinkStatus>,
    /// Why `queue` is `null`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_error: Option<String>,
    /// The rows were cut at the catch-up limit: more wait after `cursor`.
    pub more: bool,
}

/// A queue item as the inspection API shows it.
#[derive(Debug, Serialize)]
pub struct ItemView {
    pub id: i64,
    pub uid: String,
    pub source: String,
    /// `pending`, `in_flight`, `dead` or `posted`.
    pub state: &'static str,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// RFC 3339; `null` when due now.
    pub next_attempt_at: Option<String>,
    /// RFC 3339.
    pub received_at: String,
    /// The frame as text (invalid UTF-8 replaced by U+FFFD; see `raw_hex`).
    pub raw: String,
    /// The exact bytes as hex, present only when the frame is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_hex: Option<String>,
    /// Parsed fields; `null` for a rejected frame.
    pub data: Option<FilmData>,
    pub sequence_uid: Option<String>,
    /// The upstream's id of the posted film (posted items only).
    pub upstream_id: Option<Value>,
    /// A fragment an operator accepted as a whole record (present only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub accepted_by_hand: bool,
}

impl From<QueuedItem> for ItemView {
    fn from(item: QueuedItem) -> ItemView {
        let (raw, raw_hex) = match String::from_utf8(item.raw) {
            Ok(text) => (text, None),
            Err(e) => {
                let bytes = e.into_bytes();
                let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
                (String::from_utf8_lossy(&bytes).into_owned(), Some(hex))
            }
        };
        ItemView {
            id: item.id,
            uid: item.uid,
            source: item.source,
            state: item.state.as_str(),
            attempts: item.attempts,
            // Errors stored before secrets were redacted at the source are redacted here.
            last_error: item.last_error.map(|e| redact(&e).into_owned()),
            next_attempt_at: item.next_attempt_at_ms.map(rfc3339_ms),
            received_at: rfc3339_ms(item.received_at_ms),
            raw,
            raw_hex,
            data: item.data,
            sequence_uid: item.sequence_uid,
            upstream_id: item.upstream_id,
            accepted_by_hand: item.accepted_by_hand,
        }
    }
}

/// One line of a batch answer.
#[derive(Debug, Serialize, PartialEq)]
pub struct BatchResult {
    /// The item's uid (`null` only when an invalid item named none).
    pub uid: Option<String>,
    /// 201 created, 200 replayed, 400 rejected.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to a batch post.
#[derive(Debug, Serialize)]
pub struct BatchBody {
    pub results: Vec<BatchResult>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use filmgate_actors::messages::ItemState;

    #[test]
    fn an_item_shows_exact_bytes_as_hex_only_when_they_are_not_text() {
        let item = |raw: &[u8]| QueuedItem {
            id: 1,
            uid: "u".into(),
            source: "line-1".into(),
            state: ItemState::Dead,
            attempts: 0,
            last_error: None,
            next_attempt_at_ms: Some(1_700_000_000_123),
            received_at_ms: 0,
            raw: raw.to_vec(),
            data: None,
            sequence_uid: None,
            upstream_id: None,
            accepted_by_hand: false,
        };
        let text = serde_json::to_value(ItemView::from(item(b"L1,1"))).unwrap();
        assert_eq!(text["raw"], "L1,1");
        assert!(text.get("raw_hex").is_none(), "{text}");
        assert_eq!(text["next_attempt_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(text["received_at"], "1970-01-01T00:00:00.000Z");
        let bytes = serde_json::to_value(ItemView::from(item(b"L1,\xff\xfe,1"))).unwrap();
        assert_eq!(bytes["raw"], "L1,\u{fffd}\u{fffd},1");
        assert_eq!(bytes["raw_hex"], "4c312cfffe2c31");
        assert_eq!(bytes["state"], "dead");
    }
}
