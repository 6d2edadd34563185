//! Delivery: retry policy, request bodies, and the [`PosterActor`] that posts with awc.

pub mod config;

pub use config::{BodyShape, UpstreamConfig};
