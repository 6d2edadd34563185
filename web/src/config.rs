//! `[web]`: where the frontend listens, its API token and the records database.

use crate::store::RecordsDb;
use filmgate_actors::invalid::InvalidConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Listen address; loopback by default.
    pub bind: String,
    /// When set, every non-GET `/api` endpoint needs `Authorization: Bearer <token>`
    /// (or `Token <token>`).
    pub token: String,
    /// Where the embedded records service keeps its rows: a SQLite file path, or a
    /// `postgres://user:password@host:port/db` URL several filmgate nodes may share.
    pub records_db: String,
    /// `Host` names accepted besides loopback and the bind address (the DNS-rebinding guard),
    /// e.g. the gateway's name on the plant network.
    pub allowed_hosts: Vec<String>,
    /// A request body with no byte for this long is answered 408 (and one taking longer
    /// than 30 s in all), so a stalled client cannot hold a connection.
    pub body_idle_timeout_ms: u64,
    /// Every `/api` read, `/api/events/` and `/metrics` need the token too (or a session
    /// cookie from `POST /api/session`); `/healthz`, `/readyz` and the dashboard's files stay
    /// open. Needs `token`.
    pub protect_reads: bool,
    /// One INFO line per request (`peer "request" status bytes ms`); off by default.
    pub access_log: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            bind: "127.0.0.1:8080".into(),
            token: String::new(),
            records_db: "data/records.sqlite3".into(),
            allowed_hosts: Vec::new(),
            body_idle_timeout_ms: 5000,
            protect_reads: false,
            access_log: false,
        }
    }
}

impl WebConfig {
    /// The records database `records_db` names (validated by [`WebConfig::validate`]).
    pub fn records_db(&self) -> Result<RecordsDb, String> {
        RecordsDb::parse(&self.records_db)
    }

    /// The limits a request body is read under.
    pub fn body_timeouts(&self) -> crate::body_timeout::BodyTimeouts {
        crate::body_timeout::BodyTimeouts {
            idle: std::time::Duration::from_millis(self.body_idle_timeout_ms),
            total: crate::body_timeout::BODY_TOTAL_TIMEOUT,
        }
    }

    /// The token, if one is set.
    pub fn token(&self) -> Option<&str> {
        (!self.token.is_empty()).then_some(self.token.as_str())
    }

    pub fn validate(&self, prefix: &str) -> Result<(), InvalidConfig> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(InvalidConfig::new(
                prefix,
                "bind",
                format!(
                    "an address:port such as 127.0.0.1:8080, found {:?}",
                    self.bind
                ),
            ));
        }
        RecordsDb::parse(&self.records_db)
            .map_err(|expected| InvalidConfig::new(prefix, "records_db", expected))?;
        if let Some(bad) = self
            .allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains(|c: char| c.is_control() || c == ' ' || c == '/'))
        {
            return Err(InvalidConfig::new(
                prefix,
                "allowed_hosts",
                format!("host names such as \"gateway.plant\", found {bad:?}"),
            ));
        }
        if self.protect_reads && self.token.is_empty() {
            return Err(InvalidConfig::new(
                prefix,
                "protect_reads",
                "false, or a web.token to protect the reads with",
            ));
        }
        if self.body_idle_timeout_ms == 0 {
            return Err(InvalidConfig::new(
                prefix,
                "body_idle_timeout_ms",
                "a positive number of milliseconds, e.g. 5000",
            ));
        }
        if self.token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(InvalidConfig::new(
                prefix,
                "token",
                "a token without spaces",
            ));
        }
        Ok(())
    }
}
