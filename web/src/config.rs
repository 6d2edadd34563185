//! `[web]`: where the frontend listens, its API token and the records database.

use crate::store::RecordsDb;
use filmgate_actors::invalid::InvalidConfig;
use filmgate_actors::token::Token;
use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Listen address; loopback by default.
    #[serde(deserialize_with = "socket_addr")]
    pub bind: SocketAddr,
    /// When set, every non-GET `/api` endpoint needs `Authorization: Bearer <token>`
    /// (or `Token <token>`).
    #[serde(with = "filmgate_actors::token::optional")]
    pub token: Option<Token>,
    /// Where the embedded records service keeps its rows: a SQLite file path, or a
    /// `postgres://user:password@host:port/db` URL several filmgate nodes may share.
    pub records_db: RecordsDb,
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
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            records_db: RecordsDb::Sqlite("data/records.sqlite3".into()),
            allowed_hosts: Vec::new(),
            body_idle_timeout_ms: 5000,
            protect_reads: false,
            access_log: false,
        }
    }
}

impl WebConfig {
    /// The limits a request body is read under.
    pub fn body_timeouts(&self) -> crate::body_timeout::BodyTimeouts {
        crate::body_timeout::BodyTimeouts {
            idle: std::time::Duration::from_millis(self.body_idle_timeout_ms),
            total: crate::body_timeout::BODY_TOTAL_TIMEOUT,
        }
    }

    pub fn validate(&self, prefix: &str) -> Result<(), InvalidConfig> {
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
        if self.protect_reads && self.token.is_none() {
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
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.as_str().contains(' '))
        {
            return Err(InvalidConfig::new(
                prefix,
                "token",
                "a token without spaces",
            ));
        }
        Ok(())
    }
}

/// Reads `bind`, saying what an address looks like when it is not one.
fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "an address:port such as 127.0.0.1:8080, found {text:?}"
        ))
    })
}
