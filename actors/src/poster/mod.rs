//! Delivery: the [`PosterActor`] leases from the queue and acks outcomes; a post task
//! (`post`) delivers one lease's sequences and films through the `http::Upstream` client
//! (awc over [`connector`], which with `framing` reads close-delimited answers; [`tls`] for
//! https). What answers mean is pure: `answer`, the retry policy `retry`, bodies `body`.

mod actor;
mod answer;
mod body;
mod config;
pub mod connector;
mod framing;
mod http;
mod post;
mod retry;
pub mod tls;

pub use actor::{Drain, PosterActor, QueueLinks, start_poster};
pub use config::{BodyShape, UpstreamConfig};
pub use http::Upstream;
