//! The durable queue: [`store::QueueStore`] (plain rusqlite) owned by [`QueueActor`] on a
//! thread of its own.
//!
//! - `store`: items through their states, the group-commit write log, leases, views.
//! - `schema`: the file itself — settings, schema and upgrade, integrity check at open.
//! - `lock`: one process per queue file. `space`: the reserve released on a full disk.
//! - `actor`: when to commit, wake-ups, failure and recovery logging; `dead_log`: the
//!   per-minute budget of dead-item lines.

mod actor;
mod client;
mod config;
mod dead_log;
mod lock;
mod schema;
mod space;
mod store;

pub use crate::messages::QueueError;
pub use actor::QueueActor;
pub use client::QueueClient;
pub use config::QueueConfig;
pub use store::QueueStore;
