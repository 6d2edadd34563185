//! Request bodies for the upstream, and reading the created id out of its answers. Pure.

use super::config::BodyShape;
use crate::messages::{LeasedItem, LeasedSequence};
use crate::record::rfc3339_ms;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

/// The body that creates a sequence under `uid` (its own, or one derived from it):
/// `{uid, source, key}`.
pub fn sequence_body(sequence: &LeasedSequence, uid: &str) -> Value {
    json!({ "uid": uid, "source": sequence.source, "key": sequence.key })
}

/// The body of one film, in the configured shape, pointing at the sequence's upstream id:
/// written straight from the leased item, with its data as stored (no tree of values).
///
/// `flat` puts the data fields beside the others; a data field named like one of them
/// (`uid`, `sequence`, ...) is not allowed to overwrite it and stays only in `nested`.
pub fn film_body<'a>(
    item: &'a LeasedItem,
    sequence_upstream_id: &'a Value,
    shape: BodyShape,
) -> FilmBody<'a> {
    FilmBody {
        item,
        sequence_upstream_id,
        shape,
    }
}

/// A film's body as [`film_body`] makes it, serialised on demand.
pub struct FilmBody<'a> {
    item: &'a LeasedItem,
    sequence_upstream_id: &'a Value,
    shape: BodyShape,
}

/// The keys of a film's body besides its data.
const ENVELOPE: [&str; 5] = ["uid", "sequence", "source", "received_at", "raw"];

impl Serialize for FilmBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let item = self.item;
        let mut body = serializer.serialize_map(None)?;
        body.serialize_entry("uid", &item.uid)?;
        body.serialize_entry("sequence", self.sequence_upstream_id)?;
        body.serialize_entry("source", &item.source)?;
        body.serialize_entry("received_at", &rfc3339_ms(item.received_at_ms))?;
        body.serialize_entry("raw", &item.raw)?;
        match self.shape {
            BodyShape::Nested => body.serialize_entry("data", &item.data)?,
            BodyShape::Flat => {
                for (key, value) in &item.fields() {
                    if !ENVELOPE.contains(&key.as_str()) {
                        body.serialize_entry(key, value)?;
                    }
                }
            }
        }
        body.end()
    }
}

/// The created row's id in a response body, at `id_field` (a top-level key).
pub fn created_id(response: &Value, id_field: &str) -> Option<Value> {
    response.get(id_field).filter(|v| !v.is_null()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> LeasedItem {
        LeasedItem {
            id: 7,
            uid: "u-1".into(),
            source: "line-1".into(),
            received_at_ms: 1_700_000_000_123,
            raw: "L7,1".into(),
            data: serde_json::value::to_raw_value(
                &json!({"lot": "L7", "film_no": 1, "uid": "evil"}),
            )
            .unwrap(),
            attempts: 0,
            sequence: std::sync::Arc::new(LeasedSequence {
                id: 1,
                uid: "s-1".into(),
                source: "line-1".into(),
                key: Some("L7".into()),
                upstream_id: None,
            }),
        }
    }

    #[test]
    fn nested_body_keeps_data_apart() {
        let body = json!(film_body(&item(), &json!(42), BodyShape::Nested));
        assert_eq!(
            body,
            json!({"uid": "u-1", "sequence": 42, "source": "line-1",
                   "received_at": "2023-11-14T22:13:20.123Z", "raw": "L7,1",
                   "data": {"lot": "L7", "film_no": 1, "uid": "evil"}})
        );
    }

    #[test]
    fn flat_body_lifts_data_without_overwriting_the_envelope() {
        let body = json!(film_body(&item(), &json!(42), BodyShape::Flat));
        assert_eq!(body["uid"], "u-1");
        assert_eq!(body["lot"], "L7");
        assert_eq!(body["film_no"], 1);
        assert!(body.get("data").is_none());
    }

    #[test]
    fn created_id_reads_the_configured_field() {
        assert_eq!(created_id(&json!({"id": 5}), "id"), Some(json!(5)));
        assert_eq!(created_id(&json!({"pk": "a"}), "pk"), Some(json!("a")));
        assert_eq!(created_id(&json!({"id": null}), "id"), None);
        assert_eq!(
            sequence_body(&item().sequence, "s-1"),
            json!({"uid": "s-1", "source": "line-1", "key": "L7"})
        );
    }
}
