//! JSON error bodies shared by every route, and the extractor configurations that turn
//! malformed JSON, oversized bodies and bad query or path values into them.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::Value;
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

/// `{"error": ..}` for a records-store failure; 503 so posting clients retry.
pub fn store_unavailable(e: &crate::store::RecordsError) -> ApiError {
    log::error!(target: crate::log_targets::STORE_UNAVAILABLE, "{e}");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_error_body_has_error_and_extra_keys() {
        let err = ApiError::bad_request("unknown sequence 9").with("sequence", json!(["x"]));
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        let extra = err.extra.clone().unwrap();
        assert_eq!(extra["sequence"], json!(["x"]));
    }
}
