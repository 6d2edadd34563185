//! The guard every request passes first: a local web UI is attacked through the operator's own
//! browser, so, as Jupyter and Syncthing do (README, Security):
//! - a `Host` that is neither an IP address, `localhost` (or `*.localhost`) nor in
//!   `web.allowed_hosts` gets 403 — a page on a rebound DNS name cannot read or drive the API;
//! - a state-changing request (any method but GET and HEAD) whose `Origin` is another site, or
//!   that the browser marks `Sec-Fetch-Site: cross-site`, gets 403 (CSRF), token or not;
//! - every response carries `Content-Security-Policy` (`default-src 'self'`,
//!   `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff` and
//!   `Referrer-Policy: no-referrer` (no framing, no sniffing, no leaking URLs).
//!
//! `Forwarded` and `X-Forwarded-*` are not read anywhere: nothing a client sends can change what
//! the server believes its own host is. The decisions are plain functions, unit-tested.

use crate::errors::json_error;
use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use std::sync::Arc;

/// The policy the page is served with: its own scripts, styles and API only, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Host names (without port) the server answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Arc<Vec<String>>,
}

impl AllowedHosts {
    /// `localhost` and `extra` (`web.allowed_hosts`). Addresses, the bind address among them
    /// (`web.bind` is always one), need no entry: see [`AllowedHosts::allows`].
    pub fn new(extra: &[String]) -> AllowedHosts {
        let names = std::iter::once("localhost".to_owned())
            .chain(extra.iter().map(|h| h.to_ascii_lowercase()))
            .collect();
        AllowedHosts {
            names: Arc::new(names),
        }
    }

    /// Whether a `Host` header value (with or without port) names this server. An IP address
    /// is always accepted, as Jupyter does: DNS rebinding needs a name, and a page cannot make
    /// the browser send another site's address as `Host`.
    pub fn allows(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        let ip = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        ip || name.ends_with(".localhost") || self.names.iter().any(|n| n == name)
    }
}

/// The host part of a `Host` value: `[::1]:8080` → `[::1]`, `h:80` → `h`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Why a state-changing request comes from another site, if it does: an `Origin` whose
/// host:port is not the request's `Host`, `Origin: null`, or `Sec-Fetch-Site: cross-site`.
pub fn cross_site(
    origin: Option<&str>,
    sec_fetch_site: Option<&str>,
    host: Option<&str>,
) -> Option<String> {
    if sec_fetch_site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return Some("Sec-Fetch-Site: cross-site".into());
    }
    let origin = origin?;
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => None,
        _ => Some(format!("Origin {origin} is not this site")),
    }
}

/// Marks a request that came as HEAD (it is routed as a GET): a handler whose GET has side
/// effects (an event stream takes a slot) can skip them.
#[derive(Debug, Clone, Copy)]
pub struct HeadRequest;

/// Middleware (for `middleware::from_fn`) applying the rules of the module docs. It also
/// serves HEAD wherever GET is served: the request is routed as a GET, and actix-http (which
/// noted the HEAD when it parsed the request) sends the headers without the body.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let header = |name: HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let host = header(header::HOST);
    let allowed = req.app_data::<AllowedHosts>().cloned();
    let refusal = match (&host, allowed) {
        (Some(host), Some(allowed)) if !allowed.allows(host) => Some(format!(
            "Host {host} is not served here; add it to web.allowed_hosts if it is this gateway's name"
        )),
        _ if !matches!(*req.method(), Method::GET | Method::HEAD) => cross_site(
            header(header::ORIGIN).as_deref(),
            header(HeaderName::from_static("sec-fetch-site")).as_deref(),
            host.as_deref(),
        )
        .map(|why| format!("cross-site request refused ({why})")),
        _ => None,
    };
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(HeadRequest);
    }
    let mut response = match refusal {
        Some(message) => req.into_response(json_error(StatusCode::FORBIDDEN, &message, None)),
        None => next.call(req).await?.map_into_boxed_body(),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_loopback_names_and_allowed_names_are_served_nothing_else() {
        let hosts = AllowedHosts::new(&["Gateway.Plant".into()]);
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.0.0.5:8080",
            "10.0.0.6",
            "[fe80::1]:8080",
            "gateway.plant",
            "line1.localhost",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "10.0.0.6.nip.io",
            "localhost.evil",
            "gateway.plant.evil.example",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }

    #[test]
    fn only_same_origin_writes_pass() {
        let host = Some("127.0.0.1:8080");
        assert_eq!(cross_site(Some("http://127.0.0.1:8080"), None, host), None);
        assert_eq!(cross_site(None, Some("same-origin"), host), None);
        assert_eq!(
            cross_site(None, None, host),
            None,
            "curl and the gateways send no Origin"
        );
        assert!(cross_site(Some("http://evil.example"), None, host).is_some());
        assert!(cross_site(Some("null"), None, host).is_some());
        assert!(cross_site(Some("http://127.0.0.1:9999"), None, host).is_some());
        assert!(cross_site(None, Some("cross-site"), host).is_some());
    }
}
