//! The read and post rates: per-second counters over a short window.

/// Seconds of history behind the read and post rates.
const RATE_WINDOW_S: usize = 10;

/// Per-second counters of the last [`RATE_WINDOW_S`] seconds, for the read and post rates.
#[derive(Debug, Clone)]
pub(super) struct RateRing {
    /// The epoch second each slot counts.
    second: [i64; RATE_WINDOW_S],
    /// Frames accepted in each slot's second.
    reads: [u64; RATE_WINDOW_S],
    /// Items delivered in each slot's second.
    posts: [u64; RATE_WINDOW_S],
    /// When counting started, so a young queue's rate is not diluted by seconds it did not see.
    started_ms: i64,
}

impl RateRing {
    pub(super) fn new(now_ms: i64) -> RateRing {
        RateRing {
            second: [i64::MIN; RATE_WINDOW_S],
            reads: [0; RATE_WINDOW_S],
            posts: [0; RATE_WINDOW_S],
            started_ms: now_ms,
        }
    }

    pub(super) fn add(&mut self, now_ms: i64, reads: u64, posts: u64) {
        if reads == 0 && posts == 0 {
            return;
        }
        let second = now_ms.div_euclid(1000);
        let slot = second.rem_euclid(RATE_WINDOW_S as i64) as usize;
        if self.second[slot] != second {
            self.second[slot] = second;
            self.reads[slot] = 0;
            self.posts[slot] = 0;
        }
        self.reads[slot] += reads;
        self.posts[slot] += posts;
    }

    /// (reads per second, posts per second) over the window ending at `now_ms`.
    pub(super) fn rates(&self, now_ms: i64) -> (f64, f64) {
        let second = now_ms.div_euclid(1000);
        let oldest = second - RATE_WINDOW_S as i64 + 1;
        let (mut reads, mut posts) = (0, 0);
        for slot in 0..RATE_WINDOW_S {
            if (oldest..=second).contains(&self.second[slot]) {
                reads += self.reads[slot];
                posts += self.posts[slot];
            }
        }
        let window_ms = (now_ms - (oldest * 1000).max(self.started_ms)).max(1000) as f64;
        (
            reads as f64 * 1000.0 / window_ms,
            posts as f64 * 1000.0 / window_ms,
        )
    }
}
