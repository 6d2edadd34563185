//! What an upstream's answer means for the items it answers (`docs/ARCHITECTURE.md`, delivery rules). Pure: a
//! [`Reply`] (status, body, the headers that matter) in, an [`Outcome`] per item out.

use super::body::created_id;
use super::retry::{body_excerpt, status_outcome};
use crate::messages::Outcome;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Redirects (307, 308) followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// How much of an error body is kept with a dead item.
const ERROR_BODY_CHARS: usize = 300;
/// The longest `Retry-After` honoured.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// An upstream's answer to one request (after any 307/308 was followed).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    /// `Retry-After`, read as a delay (only kept for 429 and 503).
    pub retry_after: Option<Duration>,
    /// `Location` of a redirect.
    pub location: Option<String>,
}

/// The outcome one reply means for the single item (film or sequence) it answers.
pub fn judge(reply: &Reply, id_field: &str) -> Outcome {
    let status = reply.status;
    let excerpt = || body_excerpt(&reply.body, ERROR_BODY_CHARS);
    let error = || format!("HTTP {status}: {}", excerpt());
    match status_outcome(status, error) {
        Outcome::Delivered { .. } => Outcome::Delivered {
            upstream_id: serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| created_id(&v, id_field)),
        },
        Outcome::Retry { error, .. } => Outcome::Retry {
            error,
            delay_ms: reply.retry_after.map_or(0, |d| d.as_millis() as u64),
        },
        Outcome::Dead { .. } if matches!(status, 301..=303) => Outcome::Dead {
            error: redirect_error(reply),
        },
        Outcome::Dead { .. } if matches!(status, 307 | 308) => Outcome::Dead {
            error: format!(
                "HTTP {status}: redirected more than {MAX_REDIRECTS} times or without a Location"
            ),
        },
        dead => dead,
    }
}

/// Whether a 400 or 409 says that the posted item's own uid already exists upstream: stock
/// Django REST Framework answers a replayed unique `uid` with 400
/// `{"uid": ["film with this uid already exists."]}`. Such an item was delivered by an earlier
/// attempt whose answer was lost. The body must say it of the `uid` field, or name the uid
/// itself, so an unrelated 400 never passes for a delivery.
pub fn uid_already_exists(reply: &Reply, uid: &str) -> bool {
    if !matches!(reply.status, 400 | 409) {
        return false;
    }
    let says_exists = |text: &str| {
        let text = text.to_lowercase();
        text.contains("already exist")
    };
    let names_uid = |text: &str| !uid.is_empty() && text.contains(uid) && says_exists(text);
    match serde_json::from_slice::<Value>(&reply.body) {
        Ok(Value::Object(fields)) => {
            let about_uid = match fields.get("uid") {
                Some(Value::String(message)) => says_exists(message),
                Some(Value::Array(messages)) => messages
                    .iter()
                    .any(|m| m.as_str().is_some_and(&says_exists)),
                _ => false,
            };
            about_uid || names_uid(&Value::Object(fields).to_string())
        }
        _ => names_uid(&String::from_utf8_lossy(&reply.body)),
    }
}

/// The upstream id of the row with `uid` in a list answer to `GET <sequences>?uid=<uid>`,
/// only when the answer really is filtered to that uid: a DRF page (`{"results": [...]}`)
/// or a plain array holding exactly one row, whose `uid` is `uid`. A backend without a
/// `?uid=` filter answers its first page of every sequence: `None`.
pub fn row_by_uid(body: &[u8], uid: &str, id_field: &str) -> Option<Value> {
    let rows = match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(mut page) => match page.remove("results")? {
            Value::Array(rows) => rows,
            _ => return None,
        },
        Value::Array(rows) => rows,
        _ => return None,
    };
    match rows.as_slice() {
        [row] if row.get("uid").and_then(Value::as_str) == Some(uid) => created_id(row, id_field),
        _ => None,
    }
}

/// The error of a POST answered 301, 302 or 303 (not followed: a client may turn such a POST
/// into a GET, which would lose the film), naming the setting to fix.
pub fn redirect_error(reply: &Reply) -> String {
    format!(
        "HTTP {} redirect to {} (a POST is not redirected): set upstream.base_url (or \
         sequences_path / films_path) to the address the records service answers at",
        reply.status,
        reply.location.as_deref().unwrap_or("(no Location)")
    )
}

/// The outcomes a 2xx answer to a batch of `uids` means, item by item: a `{"results": [...]}`
/// matched by uid (the embedded service); else a JSON array as long as the batch, by position
/// (Django REST Framework's `many=True` create); else every item delivered, id unknown. An
/// item the answer does not mention was answered 2xx with the rest: delivered.
pub fn batch_delivered(body: &[u8], uids: &[&str], id_field: &str) -> Vec<Outcome> {
    let unknown = || {
        uids.iter()
            .map(|_| Outcome::Delivered { upstream_id: None })
            .collect()
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(answer)) => match answer.get("results").and_then(Value::as_array) {
            Some(results) => {
                let by_uid: HashMap<&str, &Value> = results
                    .iter()
                    .filter_map(|r| Some((r.get("uid")?.as_str()?, r)))
                    .collect();
                uids.iter()
                    .map(|uid| match by_uid.get(uid) {
                        Some(result) => batch_result(result, id_field),
                        None => Outcome::Delivered { upstream_id: None },
                    })
                    .collect()
            }
            None => unknown(),
        },
        Ok(Value::Array(rows)) if rows.len() == uids.len() => rows
            .iter()
            .map(|row| Outcome::Delivered {
                upstream_id: created_id(row, id_field),
            })
            .collect(),
        _ => unknown(),
    }
}

/// One entry of a `results` answer: `{uid, status, id?, error?}`; no status means 2xx.
fn batch_result(result: &Value, id_field: &str) -> Outcome {
    let status = result
        .get("status")
        .and_then(Value::as_u64)
        .map_or(200, |s| s as u16);
    let error = || {
        let text = match result.get("error") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        format!("HTTP {status} in batch: {text}")
    };
    match status_outcome(status, error) {
        Outcome::Delivered { .. } => Outcome::Delivered {
            upstream_id: created_id(result, id_field),
        },
        failed => failed,
    }
}

/// A `Retry-After` value (seconds, or an HTTP date) as a delay from `now`, at most
/// [`RETRY_AFTER_MAX`]; `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or_default(),
    };
    Some(delay.min(RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: Bytes::from(body.to_owned()),
            retry_after: None,
            location: None,
        }
    }

    #[test]
    fn a_2xx_delivers_with_the_id_if_the_answer_has_one() {
        assert_eq!(
            judge(&reply(201, r#"{"id": 7}"#), "id"),
            Outcome::Delivered {
                upstream_id: Some(json!(7))
            }
        );
        assert_eq!(
            judge(&reply(200, ""), "id"),
            Outcome::Delivered { upstream_id: None }
        );
    }

    #[test]
    fn retry_after_is_kept_and_redirects_name_the_setting() {
        let throttled = Reply {
            retry_after: Some(Duration::from_secs(3)),
            ..reply(429, r#"{"detail": "throttled"}"#)
        };
        assert!(matches!(
            judge(&throttled, "id"),
            Outcome::Retry { delay_ms: 3000, .. }
        ));
        let moved = Reply {
            location: Some("https://records.plant/api/films/".into()),
            ..reply(301, "")
        };
        let Outcome::Dead { error } = judge(&moved, "id") else {
            panic!()
        };
        assert!(
            error.contains("https://records.plant/api/films/"),
            "{error}"
        );
        assert!(error.contains("upstream.base_url"), "{error}");
    }

    #[test]
    fn batch_answers_are_read_by_uid_by_position_or_as_all_delivered() {
        let uids = ["a", "b", "c"];
        let results = json!({"results": [
            {"uid": "c", "status": 201, "id": 3},
            {"uid": "a", "status": 400, "error": "bad"},
        ]})
        .to_string();
        assert_eq!(
            batch_delivered(results.as_bytes(), &uids, "id"),
            [
                Outcome::Dead {
                    error: "HTTP 400 in batch: bad".into()
                },
                Outcome::Delivered { upstream_id: None },
                Outcome::Delivered {
                    upstream_id: Some(json!(3))
                },
            ]
        );
        let rows = json!([{"id": 1}, {"id": 2}, {"id": 3}]).to_string();
        assert_eq!(
            batch_delivered(rows.as_bytes(), &uids, "id"),
            [1, 2, 3].map(|id| Outcome::Delivered {
                upstream_id: Some(json!(id))
            })
        );
        for other in ["", "created", "[1]", r#"{"ok": true}"#] {
            assert_eq!(
                batch_delivered(other.as_bytes(), &uids, "id"),
                [0, 1, 2].map(|_| Outcome::Delivered { upstream_id: None }),
                "{other}"
            );
        }
    }

    #[test]
    fn a_stock_drf_replay_answer_means_the_uid_exists_and_nothing_else_does() {
        let uid = "0193-abc";
        for (status, body) in [
            (400, r#"{"uid": ["film with this uid already exists."]}"#),
            (
                400,
                r#"{"uid": ["sequence with this uid already exists."], "key": ["x"]}"#,
            ),
            (409, r#"{"detail": "uid 0193-abc already exists"}"#),
            (409, "Film 0193-abc already exists"),
            (400, r#"{"uid": "Film with this Uid already exists."}"#),
        ] {
            assert!(uid_already_exists(&reply(status, body), uid), "{body}");
        }
        for (status, body) in [
            (
                400,
                r#"{"sequence": ["Invalid pk \"9\" - object does not exist."]}"#,
            ),
            (400, r#"{"uid": ["This field is required."]}"#),
            (409, r#"{"detail": "another uid already exists"}"#),
            (422, r#"{"uid": ["film with this uid already exists."]}"#),
            (500, r#"{"uid": ["film with this uid already exists."]}"#),
            (400, "already exists"),
        ] {
            assert!(!uid_already_exists(&reply(status, body), uid), "{body}");
        }
    }

    #[test]
    fn a_row_is_taken_by_uid_only_from_an_answer_filtered_to_it() {
        let page = |rows: Value| json!({"count": 1, "next": null, "results": rows}).to_string();
        let one = page(json!([{"id": 4, "uid": "s-1"}]));
        assert_eq!(row_by_uid(one.as_bytes(), "s-1", "id"), Some(json!(4)));
        let array = json!([{"id": 4, "uid": "s-1"}]).to_string();
        assert_eq!(row_by_uid(array.as_bytes(), "s-1", "id"), Some(json!(4)));
        // An unfiltered list (the backend ignores ?uid=): never taken, even if it leads with
        // another row, or holds ours among others.
        for unfiltered in [
            page(json!([{"id": 1, "uid": "s-0"}])),
            page(json!([{"id": 1, "uid": "s-0"}, {"id": 4, "uid": "s-1"}])),
            page(json!([])),
            r#"{"detail": "not found"}"#.to_owned(),
        ] {
            assert_eq!(
                row_by_uid(unfiltered.as_bytes(), "s-1", "id"),
                None,
                "{unfiltered}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_capped_at_an_hour() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now), Some(RETRY_AFTER_MAX));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
