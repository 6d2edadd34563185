//! [`ApiError`], the one error every route answers with (`{"error": message, ..extra}` and a
//! status), the `From` impls that say what each lower error means over HTTP, and the extractor
//! configurations that turn malformed JSON, oversized bodies and bad query or path values into
//! it.

use crate::store::{FieldErrors, FilmRejected, RecordsError};
use actix::MailboxError;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use filmgate_actors::queue::QueueError;
use serde_json::{Value, json};
use std::fmt;

/// Body cap for single-object posts.
pub const MAX_JSON_BYTES: usize = 1 << 20;

/// Body cap for batch posts: 1,000 films of a few KiB each.
pub const MAX_BATCH_JSON_BYTES: usize = 8 << 20;

/// An error answered as `{"error": message, ..extra}` with a status.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// The `error` text.
    pub message: String,
    /// More keys merged into the body (DRF-style field errors, the offending value, ...).
    pub extra: Option<serde_json::Map<String, Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            extra: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 503, logged: what the answer says went wrong on this side (a store, an actor).
    pub fn unavailable(message: impl Into<String>) -> Self {
        let message = message.into();
        log::error!(target: crate::log_targets::STORE_UNAVAILABLE, "{message}");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// A body that failed validation (`what`: "film", "sequence"): 400 with DRF's field
    /// errors beside the summary.
    pub fn invalid(what: &str, errors: &FieldErrors) -> Self {
        let mut err = ApiError::bad_request(errors.summary(what));
        for (field, messages) in &errors.fields {
            err = err.with(field, Value::from(messages.clone()));
        }
        err
    }

    /// Adds one more key to the body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        json_error(self.status, &self.message, self.extra.clone())
    }
}

/// A JSON error answer: `{"error": message, ..extra}`.
pub fn json_error(
    status: StatusCode,
    message: &str,
    extra: Option<serde_json::Map<String, Value>>,
) -> HttpResponse {
    let mut body = extra.unwrap_or_default();
    body.insert("error".into(), Value::String(message.to_owned()));
    HttpResponse::build(status).json(Value::Object(body))
}

/// JSON body extractor config with a byte cap; errors become JSON 400 (413 when too large).
pub fn json_config(limit_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit_bytes)
        .error_handler(|err, _req| {
            let api = match &err {
                JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body of {length} bytes is larger than the limit of {limit} bytes"
                    ),
                ),
                JsonPayloadError::Overflow { limit } => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than the limit of {limit} bytes"),
                ),
                JsonPayloadError::ContentType => ApiError::bad_request(
                    "expected a JSON body with Content-Type: application/json",
                ),
                JsonPayloadError::Deserialize(e) => {
                    ApiError::bad_request(format!("malformed JSON: {e}"))
                }
                other => ApiError::bad_request(format!("cannot read the JSON body: {other}")),
            };
            api.into()
        })
}

/// Query-string extractor config: a bad value becomes a JSON 400 naming it.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req: &HttpRequest| {
        ApiError::bad_request(format!("bad query parameter: {err}")).into()
    })
}

/// Path extractor config: a malformed id becomes a JSON 400.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req: &HttpRequest| {
        ApiError::bad_request(format!("bad path parameter: {err}")).into()
    })
}

/// The default service's answer: a JSON 404 for paths no route matches.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}", req.method(), req.path()),
        None,
    )
}

/// A records-store failure: 503, so posting clients retry.
impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}

/// A film naming a sequence that does not exist: 400, worded as DRF words it.
impl From<FilmRejected> for ApiError {
    fn from(rejected: FilmRejected) -> Self {
        match rejected {
            FilmRejected::UnknownSequence(id) => {
                ApiError::bad_request(format!("unknown sequence {id}")).with(
                    "sequence",
                    json!([format!("Invalid pk \"{id}\" - object does not exist.")]),
                )
            }
        }
    }
}

/// The queue's answer: 404 for no such item, 409 for an item in the wrong state, 503 when
/// the store failed.
impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NotFound(_) => ApiError::not_found(e.to_string()),
            QueueError::NotDead { .. } | QueueError::NotFragment(_) => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            QueueError::Store(_)
            | QueueError::Open { .. }
            | QueueError::InUse { .. }
            | QueueError::Damaged { .. } => ApiError::unavailable(e.to_string()),
        }
    }
}

/// The queue actor could not be reached.
impl From<MailboxError> for ApiError {
    fn from(e: MailboxError) -> Self {
        ApiError::unavailable(format!("queue actor unavailable: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_errors_map_to_statuses() {
        let status = |e: QueueError| ApiError::from(e).status_code();
        assert_eq!(status(QueueError::NotFound(1)), StatusCode::NOT_FOUND);
        let not_dead = QueueError::NotDead {
            id: 1,
            state: "pending",
        };
        assert_eq!(status(not_dead), StatusCode::CONFLICT);
        let store = QueueError::Store(rusqlite::Error::InvalidQuery);
        assert_eq!(status(store), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn api_error_body_has_error_and_extra_keys() {
        let err = ApiError::bad_request("unknown sequence 9").with("sequence", json!(["x"]));
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        let extra = err.extra.clone().unwrap();
        assert_eq!(extra["sequence"], json!(["x"]));
    }
}
