//! Counters the poster keeps and `/metrics` reads: posts by outcome and the latency
//! histogram from a frame's last byte to the upstream's answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram buckets, in milliseconds (`+Inf` is implied).
pub const LATENCY_BUCKETS_MS: [f64; 14] = [
    0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0, 30000.0,
];

/// Post counters and latency histogram, shared by the poster (writer) and the web side.
#[derive(Default)]
pub struct PostMetrics {
    /// Items answered 2xx (201 and 200 replays).
    pub delivered: AtomicU64,
    /// Items that will be retried (408, 429, 5xx, connect errors, timeouts).
    pub retried: AtomicU64,
    /// Items made dead by a permanent 4xx.
    pub dead: AtomicU64,
    /// Sequences posted (created or replayed).
    pub sequences_posted: AtomicU64,
    /// Histogram counts per bucket of [`LATENCY_BUCKETS_MS`], plus one for `+Inf`.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    /// Sum of observed latencies in microseconds.
    latency_sum_us: AtomicU64,
}

/// A shared handle to [`PostMetrics`].
pub type SharedPostMetrics = Arc<PostMetrics>;

/// A consistent-enough copy of the latency histogram for rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS_MS`], then `+Inf`.
    pub cumulative: Vec<u64>,
    /// Sum of all observations, seconds.
    pub sum_s: f64,
    /// Number of observations.
    pub count: u64,
}

impl PostMetrics {
    /// Records one delivered item's latency (last byte read to 2xx), in microseconds.
    pub fn observe_latency_us(&self, latency_us: u64) {
        let ms = latency_us as f64 / 1000.0;
        let idx = LATENCY_BUCKETS_MS
            .iter()
            .position(|&le| ms <= le)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency_buckets[idx].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(latency_us, Ordering::Relaxed);
    }

    /// The histogram in Prometheus' cumulative form.
    pub fn latency(&self) -> LatencySnapshot {
        let mut running = 0;
        let cumulative = self
            .latency_buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        LatencySnapshot {
            cumulative,
            sum_s: self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            count: running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_histogram_is_cumulative() {
        let m = PostMetrics::default();
        m.observe_latency_us(400); // 0.4 ms -> first bucket
        m.observe_latency_us(4_000); // 4 ms -> le 5
        m.observe_latency_us(60_000_000); // 60 s -> +Inf
        let snap = m.latency();
        assert_eq!(snap.count, 3);
        assert_eq!(snap.cumulative[0], 1);
        assert_eq!(snap.cumulative[4], 2);
        assert_eq!(*snap.cumulative.last().unwrap(), 3);
        assert!((snap.sum_s - 60.0044).abs() < 1e-9);
    }
}
