//! `[queue]`: where the durable queue lives and how it commits.

use crate::invalid::InvalidConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// SQLite file of the queue (created with its directory if missing).
    pub path: PathBuf,
    /// Longest a read frame waits for its group commit.
    pub commit_interval_ms: u64,
    /// Items (pending, in flight and dead) beyond which new frames are refused.
    pub max_items: u64,
    /// Delivered items kept for inspection.
    pub posted_history: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            path: "data/queue.sqlite3".into(),
            commit_interval_ms: 5,
            max_items: 10_000_000,
            posted_history: 10_000,
        }
    }
}

impl QueueConfig {
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms)
    }

    pub fn validate(&self, prefix: &str) -> Result<(), InvalidConfig> {
        if self.path.as_os_str().is_empty() {
            return Err(InvalidConfig::new(
                prefix,
                "path",
                "a file path for the queue database",
            ));
        }
        if self.max_items == 0 {
            return Err(InvalidConfig::new(
                prefix,
                "max_items",
                "a positive item count",
            ));
        }
        Ok(())
    }
}
