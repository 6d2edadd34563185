//! Frames to queue items, pure: parsing, a new uid per frame and its sequence, and the stamps
//! that make the same items again when the queue refused a batch.

use super::codec::RawFrame;
use super::config::{RecordConfig, SerialConfig};
use super::sequence::SequenceTracker;
use crate::record::parse::{parse_frame, sequence_key_value};
use crate::record::{ItemBody, NewItem, SequenceRef, new_uid};

/// Turns frames into queue items (the parts of the config this needs).
#[derive(Debug, Clone)]
pub(super) struct ItemMaker {
    /// The link name, each item's `source`.
    pub(super) source: String,
    /// How frames are parsed.
    record: RecordConfig,
    /// For the reason given to a too-long frame.
    max_frame_bytes: usize,
}

/// The identity given to a frame on its first pass (uid, sequence), kept so a batch the queue
/// refused is retried with exactly the same items. Holds the frame's bytes by reference count.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    pub(super) frame: RawFrame,
    pub(super) uid: String,
    sequence: Option<SequenceRef>,
}

impl ItemMaker {
    pub(super) fn new(cfg: &SerialConfig) -> ItemMaker {
        ItemMaker {
            source: cfg.name.clone(),
            record: cfg.record.clone(),
            max_frame_bytes: cfg.max_frame_bytes,
        }
    }

    /// What parsing makes of a frame.
    fn body(&self, frame: &RawFrame) -> ItemBody {
        match frame {
            RawFrame::TooLong(bytes) => ItemBody::Rejected {
                reason: format!(
                    "frame exceeds max_frame_bytes ({}): {} bytes",
                    self.max_frame_bytes,
                    bytes.len()
                ),
            },
            RawFrame::Fragment(_, at) => ItemBody::Fragment {
                reason: at.reason().to_owned(),
            },
            RawFrame::Frame(bytes) => match parse_frame(&self.record, bytes) {
                Ok(data) => ItemBody::Film(data),
                Err(reason) => ItemBody::Rejected { reason },
            },
        }
    }

    /// Parses `frames` into items with new uids and their sequences (advancing `tracker`:
    /// a film may start a sequence; a rejected frame gets the current one and changes
    /// nothing; a fragment gets none). Also returns the stamps to [`ItemMaker::remake_items`] them from.
    pub(super) fn make_items(
        &self,
        tracker: &mut SequenceTracker,
        frames: Vec<RawFrame>,
        received_at_ms: i64,
    ) -> (Vec<NewItem>, Vec<Stamp>) {
        let mut items = Vec::with_capacity(frames.len());
        let mut stamps = Vec::with_capacity(frames.len());
        for frame in frames {
            let body = self.body(&frame);
            let sequence = match &body {
                ItemBody::Film(data) => {
                    let key = sequence_key_value(&self.record, data);
                    Some(tracker.sequence_for(key.as_deref()))
                }
                ItemBody::Rejected { .. } => tracker.current(),
                // A fragment never starts, splits or joins a sequence.
                ItemBody::Fragment { .. } => None,
            };
            let uid = new_uid();
            items.push(NewItem {
                uid: uid.clone(),
                source: self.source.clone(),
                received_at_ms,
                raw: frame.bytes().to_vec(),
                body,
                sequence: sequence.clone(),
            });
            stamps.push(Stamp {
                frame,
                uid,
                sequence,
            });
        }
        (items, stamps)
    }

    /// The same items again (parsing is deterministic; uids and sequences come from the stamps).
    pub(super) fn remake_items(&self, stamps: &[Stamp], received_at_ms: i64) -> Vec<NewItem> {
        stamps
            .iter()
            .map(|stamp| NewItem {
                uid: stamp.uid.clone(),
                source: self.source.clone(),
                received_at_ms,
                raw: stamp.frame.bytes().to_vec(),
                body: self.body(&stamp.frame),
                sequence: stamp.sequence.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn maker() -> ItemMaker {
        let cfg = SerialConfig {
            name: "line-1".into(),
            port: "/dev/null".into(),
            max_frame_bytes: 4096,
            ..Default::default()
        };
        ItemMaker::new(&cfg)
    }

    fn frame(b: &'static [u8]) -> RawFrame {
        RawFrame::Frame(Bytes::from_static(b))
    }

    #[test]
    fn films_get_parsed_fields_and_sequences_by_lot() {
        let mut tracker = SequenceTracker::new(true);
        tracker.on_connect();
        let frames = vec![
            frame(b"A,1,25.1,1200,0"),
            frame(b"A,2,25.2,1200,0"),
            frame(b"B,1,25.3,1200,1"),
        ];
        let (items, _) = maker().make_items(&mut tracker, frames, 1234);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].source, "line-1");
        assert_eq!(items[0].received_at_ms, 1234);
        assert_eq!(items[0].raw, b"A,1,25.1,1200,0");
        let ItemBody::Film(data) = &items[2].body else {
            panic!("{:?}", items[2].body)
        };
        assert_eq!(data["defects"], json!(1));
        let seq = |i: usize| items[i].sequence.clone().unwrap();
        assert_eq!(seq(0), seq(1));
        assert_eq!(seq(0).key.as_deref(), Some("A"));
        assert_ne!(seq(1).uid, seq(2).uid);
        assert_eq!(seq(2).key.as_deref(), Some("B"));
        assert_ne!(items[0].uid, items[1].uid);
    }

    #[test]
    fn rejected_frames_keep_their_bytes_and_do_not_touch_the_sequence() {
        let mut tracker = SequenceTracker::new(true);
        let long = RawFrame::TooLong(Bytes::from(vec![b'x'; 70_001]));
        let frames = vec![
            frame(b"\xff\xfe"),
            frame(b"A,1,25.1,1200,0"),
            long,
            frame(b"B,1,2"),
            frame(b"A,2,25.1,1200,0"),
        ];
        let (items, _) = maker().make_items(&mut tracker, frames, 0);
        let reason = |i: usize| match &items[i].body {
            ItemBody::Rejected { reason } => reason.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(0), "invalid UTF-8 at byte 0 of 2");
        assert_eq!(items[0].sequence, None, "no sequence started yet");
        assert_eq!(
            reason(2),
            "frame exceeds max_frame_bytes (4096): 70001 bytes"
        );
        assert_eq!(items[2].raw.len(), 70_001);
        assert!(reason(3).contains("expected 5 fields"), "{}", reason(3));
        assert_eq!(items[3].raw, b"B,1,2");
        assert_eq!(items[2].sequence, items[1].sequence);
        assert_eq!(
            items[3].sequence, items[1].sequence,
            "a rejected B does not start B"
        );
        assert_eq!(items[4].sequence, items[1].sequence);
    }

    #[test]
    fn remade_items_are_identical_to_the_first_ones() {
        let mut tracker = SequenceTracker::new(true);
        let frames = vec![frame(b"A,1,25.1,1200,0"), frame(b"bad")];
        let m = maker();
        let (items, stamps) = m.make_items(&mut tracker, frames, 42);
        assert_eq!(m.remake_items(&stamps, 42), items);
    }
}
