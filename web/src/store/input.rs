//! Turning request bodies into new rows, DRF-style: pure functions from JSON to
//! [`NewSequence`] / [`NewFilm`] or to field errors shaped like a DRF serializer's
//! (`{"field": ["message", ..]}`). No I/O.

use filmgate_actors::record::{FilmData, new_uid};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest uid accepted (a UUID is 36 characters; DRF backends often use 64 to 128).
pub const MAX_UID_CHARS: usize = 128;

/// Film body keys that are row columns; in the flat shape every other key is a data field.
const FILM_COLUMNS: [&str; 6] = ["uid", "sequence", "source", "received_at", "raw", "data"];

/// DRF's message for a text field holding U+0000, which it refuses (so does PostgreSQL's
/// `text`); the same on both backends.
const NUL_MESSAGE: &str = "Null characters are not allowed.";

/// Read-only row fields a client may echo back; ignored on input, as DRF ignores them.
const READ_ONLY: [&str; 2] = ["id", "created"];

/// A sequence to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSequence {
    /// Client's uid (body, else `Idempotency-Key`), or a fresh one.
    pub uid: String,
    /// The link or line the sequence comes from.
    pub source: String,
    /// The key value that started the sequence, if any.
    pub key: Option<String>,
}

/// A film to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFilm {
    /// Client's uid (body, else `Idempotency-Key`), or a fresh one.
    pub uid: String,
    /// Id of an existing sequence row.
    pub sequence: i64,
    /// The link or line the film comes from.
    pub source: String,
    /// When the gateway read the film, as the client sent it (RFC 3339 text).
    pub received_at: String,
    /// The frame as text.
    pub raw: String,
    /// The parsed fields (nested `data` merged with flat top-level fields).
    pub data: FilmData,
}

/// Field errors of one body, keyed by field name like a DRF serializer's `errors`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors {
    /// Messages per field (`non_field_errors` for the body as a whole).
    pub fields: BTreeMap<String, Vec<String>>,
}

impl FieldErrors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// A one-line summary for the `error` key, e.g. `invalid film: sequence, source`.
    pub fn summary(&self, what: &str) -> String {
        let names: Vec<&str> = self.fields.keys().map(String::as_str).collect();
        format!("invalid {what}: {}", names.join(", "))
    }
}

/// Parses a `POST /api/sequences/` body `{uid?, source, key?}`.
pub fn parse_sequence(body: Value, header_uid: Option<&str>) -> Result<NewSequence, FieldErrors> {
    let mut errors = FieldErrors::default();
    let Some(mut obj) = expect_object(body, &mut errors) else {
        return Err(errors);
    };
    let uid = take_uid(&mut obj, header_uid, &mut errors);
    let source = take_required_text(&mut obj, "source", &mut errors);
    let key = match obj.remove("key") {
        None | Some(Value::Null) => None,
        Some(v) => checked_text(&v, "key", &mut errors),
    };
    match (errors.fields.is_empty(), uid, source) {
        (true, Some(uid), Some(source)) => Ok(NewSequence { uid, source, key }),
        _ => Err(errors),
    }
}

/// Parses a `POST /api/films/` body, nested (`data: {..}`) or flat (extra top-level keys are
/// data fields; both at once are merged, nested `data` winning on a clash).
pub fn parse_film(body: Value, header_uid: Option<&str>) -> Result<NewFilm, FieldErrors> {
    let mut errors = FieldErrors::default();
    let Some(mut obj) = expect_object(body, &mut errors) else {
        return Err(errors);
    };
    let uid = take_uid(&mut obj, header_uid, &mut errors);
    let sequence = match obj.remove("sequence") {
        None | Some(Value::Null) => {
            errors.add("sequence", "This field is required.");
            None
        }
        Some(v) => match pk_of(&v) {
            Some(pk) => Some(pk),
            None => {
                errors.add(
                    "sequence",
                    format!(
                        "Incorrect type. Expected pk value, received {}.",
                        type_name(&v)
                    ),
                );
                None
            }
        },
    };
    let source = take_required_text(&mut obj, "source", &mut errors);
    let received_at = take_required_text(&mut obj, "received_at", &mut errors).filter(|text| {
        let valid = is_rfc3339(text);
        if !valid {
            errors.add(
                "received_at",
                "Datetime has wrong format. Use one of these formats instead: \
                 YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
            );
        }
        valid
    });
    let raw = take_required(&mut obj, "raw", &mut errors);
    let mut data = match obj.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            errors.add(
                "data",
                format!(
                    "Expected a dictionary of items but got type \"{}\".",
                    type_name(&other)
                ),
            );
            Map::new()
        }
    };
    for key in READ_ONLY {
        obj.remove(key);
    }
    debug_assert!(FILM_COLUMNS.iter().all(|c| !obj.contains_key(*c)));
    for (key, value) in obj {
        data.entry(key).or_insert(value);
    }
    match (
        errors.fields.is_empty(),
        uid,
        sequence,
        source,
        received_at,
        raw,
    ) {
        (true, Some(uid), Some(sequence), Some(source), Some(received_at), Some(raw)) => {
            Ok(NewFilm {
                uid,
                sequence,
                source,
                received_at,
                raw,
                data,
            })
        }
        _ => Err(errors),
    }
}

/// Why a batch body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// More items than the cap.
    TooMany,
    /// Not a JSON array (the parser's message).
    Invalid(String),
}

/// The items of a JSON array body, refusing it as soon as it holds more than `cap`: a body of
/// millions of tiny items is never built in memory.
pub fn parse_batch(body: &[u8], cap: usize) -> Result<Vec<Value>, BatchError> {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    const TOO_MANY: &str = "batch over its item cap";
    struct Capped(usize);
    impl<'de> Visitor<'de> for Capped {
        type Value = Vec<Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a JSON array of films")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == self.0 {
                    return Err(serde::de::Error::custom(TOO_MANY));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = de
        .deserialize_seq(Capped(cap))
        .and_then(|items| de.end().map(|()| items))
        .map_err(|e| {
            if e.to_string().starts_with(TOO_MANY) {
                BatchError::TooMany
            } else {
                BatchError::Invalid(format!("malformed JSON: {e}"))
            }
        })?;
    Ok(items)
}

/// The uid an item of a batch names, for its result line even when the item is invalid.
pub fn uid_hint(body: &Value) -> Option<String> {
    body.get("uid").and_then(text_of)
}

fn expect_object(body: Value, errors: &mut FieldErrors) -> Option<Map<String, Value>> {
    match body {
        Value::Object(obj) => Some(obj),
        other => {
            errors.add(
                "non_field_errors",
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    type_name(&other)
                ),
            );
            None
        }
    }
}

fn take_uid(
    obj: &mut Map<String, Value>,
    header_uid: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<String> {
    let uid = match obj.remove("uid") {
        None | Some(Value::Null) => match header_uid {
            Some(h) => h.trim().to_owned(),
            None => return Some(new_uid()),
        },
        Some(v) => match text_of(&v) {
            Some(t) => t,
            None => {
                errors.add("uid", "Not a valid string.");
                return None;
            }
        },
    };
    if uid.trim().is_empty() {
        errors.add("uid", "This field may not be blank.");
        None
    } else if uid.contains('\0') {
        errors.add("uid", NUL_MESSAGE);
        None
    } else if uid.chars().count() > MAX_UID_CHARS {
        errors.add(
            "uid",
            format!("Ensure this field has no more than {MAX_UID_CHARS} characters."),
        );
        None
    } else {
        Some(uid)
    }
}

/// Whether `text` is an RFC 3339 date-time (`2026-11-22T05:03:05.123Z`,
/// `2026-11-22t05:03:05+01:00`, a space for the `T`), with every field in its range.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: &u8, b: &u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
            };
            matches!((two(h1, h2), two(m1, m2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

fn take_required_text(
    obj: &mut Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    let text = take_required(obj, field, errors)?;
    if text.is_empty() {
        errors.add(field, "This field may not be blank.");
        return None;
    }
    Some(text)
}

/// A required text field that may be blank (DRF's `allow_blank`; `raw` is one).
fn take_required(
    obj: &mut Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    match obj.remove(field) {
        None | Some(Value::Null) => {
            errors.add(field, "This field is required.");
            None
        }
        Some(v) => checked_text(&v, field, errors),
    }
}

/// The text of `field`'s value (blank allowed), or `None` with its error added: not a string
/// or number, or holding U+0000.
fn checked_text(v: &Value, field: &str, errors: &mut FieldErrors) -> Option<String> {
    match text_of(v) {
        Some(t) if t.contains('\0') => {
            errors.add(field, NUL_MESSAGE);
            None
        }
        Some(t) => Some(t),
        None => {
            errors.add(field, "Not a valid string.");
            None
        }
    }
}

/// Text of a string or number (DRF's CharField accepts both), else `None`.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A primary key from an integer or a string of digits (DRF accepts both).
fn pk_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_over_its_cap_is_refused_without_being_built() {
        let ok = parse_batch(br#"[{"a": 1}, {}, 3]"#, 3).unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(
            parse_batch(b"[{}, {}, {}, {}]", 3),
            Err(BatchError::TooMany)
        );
        let huge: Vec<u8> = std::iter::once(b'[')
            .chain(std::iter::repeat_n(*b"{},", 1_000_000).flatten())
            .chain(*b"{}]")
            .collect();
        assert_eq!(parse_batch(&huge, 1000), Err(BatchError::TooMany));
        assert!(matches!(parse_batch(b"{}", 3), Err(BatchError::Invalid(_))));
        assert!(matches!(
            parse_batch(b"[1] x", 3),
            Err(BatchError::Invalid(_))
        ));
    }
    use serde_json::json;

    #[test]
    fn nested_film_body_parses() {
        let film = parse_film(
            json!({"uid": "u1", "sequence": 3, "source": "line-1",
                   "received_at": "2026-01-01T00:00:00.000Z", "raw": "A,1", "data": {"lot": "A"}}),
            None,
        )
        .unwrap();
        assert_eq!(film.uid, "u1");
        assert_eq!(film.sequence, 3);
        assert_eq!(film.data, json!({"lot": "A"}).as_object().unwrap().clone());
    }

    #[test]
    fn flat_film_body_puts_extra_keys_in_data() {
        let film = parse_film(
            json!({"sequence": "7", "source": "s", "received_at": "2026-01-01T00:00:00Z", "raw": "r",
                   "lot": "A", "width_mm": 1.5, "id": 99, "created": "x"}),
            Some("from-header"),
        )
        .unwrap();
        assert_eq!(film.uid, "from-header");
        assert_eq!(film.sequence, 7);
        assert_eq!(
            film.data,
            json!({"lot": "A", "width_mm": 1.5})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn body_uid_wins_over_header_and_missing_uid_is_generated() {
        let body = json!({"uid": "body", "source": "s"});
        assert_eq!(parse_sequence(body, Some("header")).unwrap().uid, "body");
        let generated = parse_sequence(json!({"source": "s"}), None).unwrap().uid;
        assert_eq!(generated.len(), 36);
    }

    #[test]
    fn received_at_must_be_an_rfc_3339_date_time() {
        for good in [
            "2026-11-22T05:03:05.123Z",
            "2026-11-22T05:03:05Z",
            "2024-02-29t23:59:60+01:00",
            "2026-11-22 05:03:05.123456-05:30",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "not a date <b>",
            "",
            "2026-11-22",
            "2026-11-22T05:03Z",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T05:03:05",
            "2026-11-22T05:03:05.Z",
            "2026-11-22T05:03:05+0100",
            "2026-11-22T05:03:05Zjunk",
            "２０２６-11-22T05:03:05Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
        let err = parse_film(
            json!({"uid": "u", "sequence": 1, "source": "s", "received_at": "not a date <b>",
                   "raw": "r"}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.fields.keys().collect::<Vec<_>>(), ["received_at"]);
    }

    #[test]
    fn missing_film_fields_are_each_named() {
        let err = parse_film(json!({"uid": "u"}), None).unwrap_err();
        let names: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["raw", "received_at", "sequence", "source"]);
        assert_eq!(err.fields["sequence"], ["This field is required."]);
        assert_eq!(
            err.summary("film"),
            "invalid film: raw, received_at, sequence, source"
        );
    }

    #[test]
    fn wrong_types_are_field_errors() {
        let err = parse_film(
            json!({"sequence": [1], "source": {}, "received_at": "t", "raw": "r", "data": 5}),
            None,
        )
        .unwrap_err();
        assert!(err.fields["sequence"][0].contains("Expected pk value"));
        assert_eq!(err.fields["source"], ["Not a valid string."]);
        assert!(err.fields["data"][0].contains("dictionary"));
    }

    #[test]
    fn non_object_body_is_a_non_field_error() {
        let err = parse_sequence(json!([1, 2]), None).unwrap_err();
        assert!(err.fields["non_field_errors"][0].contains("got list"));
    }

    #[test]
    fn blank_and_overlong_uids_are_rejected() {
        assert!(parse_sequence(json!({"uid": " ", "source": "s"}), None).is_err());
        let long = "x".repeat(MAX_UID_CHARS + 1);
        assert!(parse_sequence(json!({"uid": long, "source": "s"}), None).is_err());
    }

    #[test]
    fn null_characters_in_text_fields_are_refused_like_drf() {
        let body = json!({"uid": "u\u{0}", "sequence": 1, "source": "a\u{0}",
                          "received_at": "t", "raw": "x\u{0}y", "data": {"k": "v\u{0}"}});
        let errors = parse_film(body, None).unwrap_err();
        for field in ["uid", "source", "raw"] {
            assert_eq!(errors.fields[field], [NUL_MESSAGE], "{field}");
        }
        let errors = parse_sequence(json!({"source": "s", "key": "\u{0}"}), None).unwrap_err();
        assert_eq!(errors.fields["key"], [NUL_MESSAGE]);
    }

    #[test]
    fn sequence_key_accepts_numbers_and_null() {
        let s = parse_sequence(json!({"source": "s", "key": 12}), None).unwrap();
        assert_eq!(s.key.as_deref(), Some("12"));
        let s = parse_sequence(json!({"source": "s", "key": null}), None).unwrap();
        assert_eq!(s.key, None);
    }
}
