//! The poster's metrics, kept with `prometheus-client` types so `/metrics` encodes them as they
//! are: posts by outcome, sequences posted, and the latency histogram from a frame's last byte
//! read to the upstream's 2xx.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;

/// Upper bounds of the latency histogram buckets, in seconds (`+Inf` is implied).
const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// Post counters and latency histogram, shared by the poster (writer) and the web side.
#[derive(Debug)]
pub struct PostMetrics {
    /// Items answered 2xx (201 and 200 replays).
    pub delivered: Counter,
    /// Items that will be retried (408, 429, 5xx, connect errors, timeouts).
    pub retried: Counter,
    /// Items made dead by a permanent 4xx.
    pub dead: Counter,
    /// Sequences posted (created or replayed).
    pub sequences_posted: Counter,
    /// Seconds from a delivered frame's last byte read to its 2xx.
    pub latency_s: Histogram,
}

impl Default for PostMetrics {
    fn default() -> PostMetrics {
        PostMetrics {
            delivered: Counter::default(),
            retried: Counter::default(),
            dead: Counter::default(),
            sequences_posted: Counter::default(),
            latency_s: Histogram::new(LATENCY_BUCKETS_S),
        }
    }
}

/// A shared handle to [`PostMetrics`].
pub type SharedPostMetrics = Arc<PostMetrics>;

impl PostMetrics {
    /// Records one delivered item's latency (last byte read to 2xx), in microseconds.
    pub fn observe_latency_us(&self, latency_us: u64) {
        self.latency_s.observe(latency_us as f64 / 1e6);
    }
}
