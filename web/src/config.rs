//! `[web]`: where the frontend listens, its API token and the records database.

use filmgate_actors::invalid::InvalidConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Listen address; loopback by default.
    pub bind: String,
    /// When set, every non-GET `/api` endpoint needs `Authorization: Bearer <token>`
    /// (or `Token <token>`).
    pub token: String,
    /// SQLite file of the embedded records service.
    pub records_db: PathBuf,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            bind: "127.0.0.1:8080".into(),
            token: String::new(),
            records_db: "data/records.sqlite3".into(),
        }
    }
}

impl WebConfig {
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
        if self.records_db.as_os_str().is_empty() {
            return Err(InvalidConfig::new(prefix, "records_db", "a file path"));
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
