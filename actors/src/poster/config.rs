//! `[upstream]`: where and how the poster delivers films.

use crate::invalid::InvalidConfig;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// API root, ending in `/` (the embedded service's `/api/`, or a DRF API root).
    pub base_url: String,
    /// Sequences endpoint, relative to `base_url`.
    pub sequences_path: String,
    /// Films endpoint, relative to `base_url`; batches go to `<films_path>batch/`.
    pub films_path: String,
    /// Shape of a film body.
    pub body: BodyShape,
    /// Secret sent as `Authorization: <auth_scheme> <token>`; empty sends none.
    pub token: String,
    pub auth_scheme: String,
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
            base_url: "http://127.0.0.1:8080/api/".into(),
            sequences_path: "sequences/".into(),
            films_path: "films/".into(),
            body: BodyShape::Nested,
            token: String::new(),
            auth_scheme: "Token".into(),
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
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return bad(
                "base_url",
                "an http:// or https:// URL, e.g. http://127.0.0.1:8080/api/",
            );
        }
        if self.base_url.starts_with("https://") {
            return bad(
                "base_url",
                "an http:// URL (https upstreams are not supported yet)",
            );
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
        if self.token.chars().any(|c| c.is_control() || c == ' ') {
            return bad("token", "a token without spaces or control characters");
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
