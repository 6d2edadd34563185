//! The API token check: when a token is configured, every non-GET, non-HEAD request under
//! `/api` needs `Authorization: Bearer <token>` or `Authorization: Token <token>`.
//! With `web.protect_reads`, every `/api` read and `/metrics` need it too, or a session
//! cookie: the dashboard exchanges the token once (`POST /api/session`, itself a write with
//! the header) for an HttpOnly, SameSite=Strict cookie that authorizes reads — the event
//! stream included, which a browser's `EventSource` cannot send a header for. Writes always
//! need the header, so a cookie alone (a cross-site request) can change nothing.
//! The token, the header and the cookie are never logged.

use crate::AppState;
use crate::errors::json_error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use filmgate_actors::token::Token;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The cookie that carries a read session.
pub const SESSION_COOKIE: &str = "filmgate_session";

/// How long a read session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Sessions kept at most (the oldest goes first).
const MAX_SESSIONS: usize = 256;

/// The read sessions handed out by `POST /api/session`, shared by the server's workers.
#[derive(Debug, Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, Instant>>>);

impl Sessions {
    /// A new session id (32 random bytes, hex).
    pub fn open(&self) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.lock();
        sessions.retain(|_, at| at.elapsed() < SESSION_LIFETIME);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), Instant::now());
        Ok(id)
    }

    /// Whether `id` is a live session (compared in constant time).
    fn valid(&self, id: &str) -> bool {
        self.lock().iter().any(|(known, at)| {
            at.elapsed() < SESSION_LIFETIME && constant_time_eq(known.as_bytes(), id.as_bytes())
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether the request carries the token in its `Authorization` header.
fn has_token(req: &HttpRequest, expected: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented_token)
        .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
}

/// Whether a read (GET or HEAD) may be answered: reads are open unless `web.protect_reads`;
/// then the token header or a live session cookie authorizes it.
pub fn read_allowed(req: &HttpRequest, state: &AppState) -> bool {
    let Some(expected) = state
        .token
        .as_ref()
        .map(Token::as_str)
        .filter(|_| state.protect_reads)
    else {
        return true;
    };
    has_token(req, expected)
        || req
            .cookie(SESSION_COOKIE)
            .is_some_and(|c| state.sessions.valid(c.value()))
}

/// The JSON 401 of a request without the credentials it needs.
pub fn unauthorized(message: &str) -> HttpResponse {
    let mut resp = json_error(StatusCode::UNAUTHORIZED, message, None);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// Middleware (for `middleware::from_fn`) rejecting unauthenticated writes (and, with
/// `web.protect_reads`, reads) with a JSON 401.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    let refusal = match state.token.as_ref().map(Token::as_str) {
        Some(expected) if !is_read && !has_token(req.request(), expected) => {
            Some("authentication required: send Authorization: Bearer <token> or Token <token>")
        }
        _ if is_read && !read_allowed(req.request(), &state) => Some(
            "reads need the token here (web.protect_reads): send Authorization: Bearer \
             <token>, or open a session with POST /api/session",
        ),
        _ => None,
    };
    match refusal {
        Some(message) => Ok(req.into_response(unauthorized(message))),
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// `POST /api/session`: a write, so the token header was checked already; answers with the
/// read-session cookie.
pub async fn open_session(state: web::Data<AppState>) -> HttpResponse {
    if state.token.is_none() {
        return json_error(
            StatusCode::NOT_FOUND,
            "no web.token is set: reads and writes are open, no session is needed",
            None,
        );
    }
    match state.sessions.open() {
        Ok(id) => {
            let cookie = Cookie::build(SESSION_COOKIE, id)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .max_age(actix_web::cookie::time::Duration::seconds(
                    SESSION_LIFETIME.as_secs() as i64,
                ))
                .finish();
            HttpResponse::Ok().cookie(cookie).json(
                serde_json::json!({"session": "open", "expires_in_s": SESSION_LIFETIME.as_secs()}),
            )
        }
        Err(e) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("no random bytes for a session: {e}"),
            None,
        ),
    }
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
