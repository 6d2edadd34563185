//! The durable queue: [`store::QueueStore`] (plain rusqlite) owned by [`QueueActor`] on a
//! thread of its own.

pub mod client;
pub mod config;
pub mod error;

pub use client::QueueClient;
pub use config::QueueConfig;
pub use error::QueueError;
