//! The API token check: when a token is configured, every non-GET, non-HEAD request under
//! `/api` needs `Authorization: Bearer <token>` or `Authorization: Token <token>`.
//! The token and the header are never logged.

use crate::AppState;
use crate::errors::json_error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web;
use subtle::ConstantTimeEq;

/// Middleware (for `middleware::from_fn`) rejecting unauthenticated writes with a JSON 401.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.token.clone());
    let needs_token = !matches!(*req.method(), Method::GET | Method::HEAD);
    if let (true, Some(expected)) = (needs_token, expected) {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token);
        let ok = presented.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()));
        if !ok {
            let resp = json_error(
                StatusCode::UNAUTHORIZED,
                "authentication required: send Authorization: Bearer <token> or Token <token>",
                None,
            );
            let mut resp = resp;
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return Ok(req.into_response(resp));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The token of an `Authorization` value with scheme `Bearer` or `Token` (case-insensitive).
pub fn presented_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let scheme_ok = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    scheme_ok.then(|| token.trim())
}

/// Compares in time independent of where the inputs differ (`subtle`; the length is not
/// secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemes_are_accepted_case_insensitively() {
        assert_eq!(presented_token("Bearer abc"), Some("abc"));
        assert_eq!(presented_token("token abc"), Some("abc"));
        assert_eq!(presented_token("Basic abc"), None);
        assert_eq!(presented_token("abc"), None);
    }

    #[test]
    fn constant_time_eq_matches_only_equal_bytes() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
