//! Film fixtures in the default record format (`lot,film_no,thickness_um,width_mm,defects`).

use filmgate_actors::record::parse::parse_frame;
use filmgate_actors::record::{ItemBody, NewItem, RecordConfig, SequenceRef, new_uid, now_ms};

/// The record a machine prints for film `n` of `lot`, with its `\r` delimiter.
pub fn film_line(lot: &str, n: u64) -> String {
    format!("{lot},{n},25.{:02},1200.5,{}\r", n % 100, n % 3)
}

/// Film `n` of lot `L1` as link `line-1` makes it from the frame `L1,{n},25.4,1200,0`, in
/// sequence `seq-L1`.
pub fn film_item(n: u32) -> NewItem {
    let raw = format!("L1,{n},25.4,1200,0");
    let data = parse_frame(&RecordConfig::default(), raw.as_bytes()).expect("a valid film");
    NewItem {
        uid: new_uid(),
        source: "line-1".into(),
        received_at_ms: now_ms(),
        raw: raw.into_bytes(),
        body: ItemBody::Film(data),
        sequence: Some(SequenceRef {
            uid: "seq-L1".into(),
            key: Some("L1".into()),
        }),
    }
}

/// A frame link `line-1` rejected with `reason`: the queue stores it as a dead item.
pub fn rejected_item(raw: &[u8], reason: &str) -> NewItem {
    NewItem {
        uid: new_uid(),
        source: "line-1".into(),
        received_at_ms: now_ms(),
        raw: raw.to_vec(),
        body: ItemBody::Rejected {
            reason: reason.into(),
        },
        sequence: None,
    }
}
