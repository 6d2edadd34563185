//! `[upstream]`: where and how the poster delivers films.

use crate::invalid::InvalidConfig;
use crate::token::Token;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// API root (a DRF API root, `http://` or `https://`); empty: the embedded records
    /// service at `web.bind` (see [`UpstreamConfig::with_embedded_default`]).
    pub base_url: String,
    /// Sequences endpoint, relative to `base_url`.
    pub sequences_path: String,
    /// Films endpoint, relative to `base_url`; batches go to `<films_path>batch/`.
    pub films_path: String,
    /// Shape of a film body.
    pub body: BodyShape,
    /// Secret sent as `Authorization: <auth_scheme> <token>`; none (`""`) sends none.
    #[serde(with = "crate::token::optional")]
    pub token: Option<Token>,
    /// `Token`, `Bearer` or `Basic` (then `token` is `user:password`, sent base64-encoded).
    pub auth_scheme: String,
    /// PEM file of CA certificates for https; empty: the system's roots.
    pub ca_file: String,
    /// PEM client certificate (chain) for servers that require mutual TLS; empty: none.
    pub client_cert_file: String,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: String,
    /// Field of a created row's response that holds its id.
    pub id_field: String,
    /// Whole-request timeout.
    pub timeout_ms: u64,
    /// Requests in flight at once; 1 keeps strict read order.
    pub concurrency: usize,
    /// Films per request; > 1 posts arrays to `<films_path>batch/`.
    pub batch_size: usize,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

/// `nested`: `{uid, sequence, source, received_at, raw, data: {..}}`;
/// `flat`: the data fields at top level beside the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyShape {
    Nested,
    Flat,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            base_url: String::new(),
            sequences_path: "sequences/".into(),
            films_path: "films/".into(),
            body: BodyShape::Nested,
            token: None,
            auth_scheme: "Token".into(),
            ca_file: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            id_field: "id".into(),
            timeout_ms: 5000,
            concurrency: 4,
            batch_size: 1,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
        }
    }
}

impl UpstreamConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// This config with an empty `base_url` pointing at the embedded records service on
    /// `web_addr` (the web server's bound address; a wildcard address is reached on loopback).
    pub fn with_embedded_default(mut self, web_addr: std::net::SocketAddr) -> UpstreamConfig {
        if self.base_url.is_empty() {
            let host = match web_addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
                ip if ip.is_unspecified() => "[::1]".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            self.base_url = format!("http://{host}:{}/api/", web_addr.port());
        }
        self
    }

    /// Whether the upstream is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// The `Authorization` header value, if a token is set.
    pub fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        let token = self.token.as_ref()?.as_str();
        Some(if self.auth_scheme.eq_ignore_ascii_case("basic") {
            let encoded = base64::engine::general_purpose::STANDARD.encode(token);
            format!("Basic {encoded}")
        } else {
            format!("{} {token}", self.auth_scheme)
        })
    }

    /// Full URL of the sequences endpoint.
    pub fn sequences_url(&self) -> String {
        join_url(&self.base_url, &self.sequences_path)
    }

    /// Full URL of the films endpoint.
    pub fn films_url(&self) -> String {
        join_url(&self.base_url, &self.films_path)
    }

    /// Full URL of the batch endpoint (`<films_path>batch/`).
    pub fn films_batch_url(&self) -> String {
        let films = self.films_url();
        let sep = if films.ends_with('/') { "" } else { "/" };
        format!("{films}{sep}batch/")
    }

    pub fn validate(&self, prefix: &str) -> Result<(), InvalidConfig> {
        let bad = |key: &str, expected: &str| Err(InvalidConfig::new(prefix, key, expected));
        let scheme_ok = self.base_url.starts_with("http://") || self.is_https();
        if !self.base_url.is_empty()
            && (!scheme_ok || self.base_url.parse::<awc::http::Uri>().is_err())
        {
            return bad(
                "base_url",
                "an http:// or https:// URL such as https://records.plant/api/, or \"\" for the embedded service",
            );
        }
        if !["Token", "Bearer", "Basic"].contains(&self.auth_scheme.as_str()) {
            return bad("auth_scheme", "Token, Bearer or Basic");
        }
        let token = self.token.as_ref().map_or("", Token::as_str);
        if self.auth_scheme == "Basic" && !token.is_empty() && !token.contains(':') {
            return bad("token", "user:password with auth_scheme = \"Basic\"");
        }
        if self.client_cert_file.is_empty() != self.client_key_file.is_empty() {
            let key = if self.client_cert_file.is_empty() {
                "client_cert_file"
            } else {
                "client_key_file"
            };
            return bad(
                key,
                "set together with client_cert_file and client_key_file",
            );
        }
        for (key, path) in [
            ("ca_file", &self.ca_file),
            ("client_cert_file", &self.client_cert_file),
            ("client_key_file", &self.client_key_file),
        ] {
            if !path.is_empty() && !std::path::Path::new(path).is_file() {
                return bad(key, "a readable PEM file (no such file)");
            }
        }
        if self.id_field.is_empty() {
            return bad(
                "id_field",
                "the response field holding the created id, e.g. \"id\"",
            );
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms", "a positive number of milliseconds");
        }
        if !(1..=256).contains(&self.concurrency) {
            return bad("concurrency", "1 to 256 requests in flight");
        }
        if !(1..=1000).contains(&self.batch_size) {
            return bad("batch_size", "1 to 1000 films per request");
        }
        if self.retry_initial_ms == 0 || self.retry_initial_ms > self.retry_max_ms {
            return bad(
                "retry_initial_ms",
                "a positive number of ms not above retry_max_ms",
            );
        }
        if token.contains(' ') && self.auth_scheme != "Basic" {
            return bad("token", "a token without spaces");
        }
        Ok(())
    }
}

/// `base` and a relative `path` with exactly one `/` between them.
fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_base_url_is_the_embedded_service_at_the_bound_address() {
        let at = |addr: &str| {
            UpstreamConfig::default()
                .with_embedded_default(addr.parse().unwrap())
                .base_url
        };
        assert_eq!(at("127.0.0.1:9000"), "http://127.0.0.1:9000/api/");
        assert_eq!(at("0.0.0.0:9001"), "http://127.0.0.1:9001/api/");
        assert_eq!(at("[::]:9002"), "http://[::1]:9002/api/");
        let given = UpstreamConfig {
            base_url: "https://records.plant/api/".into(),
            ..Default::default()
        };
        let kept = given.with_embedded_default("127.0.0.1:1".parse().unwrap());
        assert_eq!(kept.base_url, "https://records.plant/api/");
    }

    #[test]
    fn basic_auth_sends_the_token_base64_encoded() {
        let cfg = UpstreamConfig {
            auth_scheme: "Basic".into(),
            token: Token::parse("gw:pa ss").unwrap(),
            ..Default::default()
        };
        assert_eq!(cfg.authorization().as_deref(), Some("Basic Z3c6cGEgc3M="));
        assert!(cfg.validate("upstream").is_ok());
        let bad = UpstreamConfig {
            auth_scheme: "Token\r\nX-Evil: 1".into(),
            ..Default::default()
        };
        assert_eq!(
            bad.validate("upstream").unwrap_err().key,
            "upstream.auth_scheme"
        );
    }

    #[test]
    fn urls_join_with_one_slash() {
        let cfg = UpstreamConfig {
            base_url: "http://h:1/api".into(),
            ..Default::default()
        };
        assert_eq!(cfg.sequences_url(), "http://h:1/api/sequences/");
        assert_eq!(cfg.films_batch_url(), "http://h:1/api/films/batch/");
        let cfg = UpstreamConfig {
            films_path: "/films".into(),
            ..cfg
        };
        assert_eq!(cfg.films_batch_url(), "http://h:1/api/films/batch/");
    }
}
