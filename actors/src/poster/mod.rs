//! Delivery: the retry policy ([`retry`], pure), request bodies ([`body`], pure), and the
//! [`PosterActor`] that leases from the queue and posts with awc.

pub mod actor;
pub mod body;
pub mod config;
pub mod retry;

pub use actor::{Drain, PosterActor, QueueLinks};
pub use config::{BodyShape, UpstreamConfig};
