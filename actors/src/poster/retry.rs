//! Retry policy as data: which answers deliver, which retry and which kill an item, and the
//! exponential backoff with full jitter between retries. Pure; no I/O.

use std::time::Duration;

/// What an upstream answer (or failure to get one) means for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Any 2xx: the upstream has it (201 created, 200 replay).
    Delivered,
    /// 408, 429, 5xx, connection errors, timeouts: try again later, forever.
    Retry,
    /// Any other status: the item is dead until an operator acts.
    Dead,
}

/// The verdict for an HTTP status code.
pub fn classify_status(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Dead,
    }
}

/// Exponential backoff with full jitter: a uniformly random delay in
/// `[initial/2, min(max, initial * 2^failures)]`, where `failures` counts the failures so far
/// (0 for the first retry).
///
/// Plain full jitter starts at 0; the floor of half the initial delay keeps a dead upstream
/// from being hammered by near-zero retries while still spreading clients apart.
pub fn backoff(failures: u32, initial: Duration, max: Duration, unit_random: f64) -> Duration {
    let initial_ms = initial.as_millis().max(1) as f64;
    let ceiling_ms = (initial_ms * 2f64.powi(failures.min(30) as i32)).min(max.as_millis() as f64);
    let floor_ms = (initial_ms / 2.0).min(ceiling_ms);
    let ms = floor_ms + (ceiling_ms - floor_ms) * unit_random.clamp(0.0, 1.0);
    Duration::from_millis(ms.round().max(1.0) as u64)
}

/// The start of a response body, as kept with a dead item's error (at most `max_chars`).
pub fn body_excerpt(body: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text.chars().take(max_chars).collect();
    if text.chars().nth(max_chars).is_some() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_per_spec() {
        for s in [200, 201, 204, 299] {
            assert_eq!(classify_status(s), Verdict::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 599] {
            assert_eq!(classify_status(s), Verdict::Retry, "{s}");
        }
        for s in [301, 400, 401, 403, 404, 409, 413, 422] {
            assert_eq!(classify_status(s), Verdict::Dead, "{s}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_max() {
        let (i, m) = (Duration::from_millis(200), Duration::from_millis(30_000));
        assert_eq!(backoff(0, i, m, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(3, i, m, 1.0), Duration::from_millis(1600));
        assert_eq!(backoff(20, i, m, 1.0), m);
        assert_eq!(backoff(u32::MAX, i, m, 1.0), m);
    }

    #[test]
    fn backoff_jitter_spans_from_half_the_initial_delay() {
        let (i, m) = (Duration::from_millis(200), Duration::from_millis(30_000));
        assert_eq!(backoff(5, i, m, 0.0), Duration::from_millis(100));
        let mid = backoff(5, i, m, 0.5);
        assert!(mid > Duration::from_millis(100) && mid < Duration::from_millis(6400));
    }

    #[test]
    fn body_excerpt_is_cut_with_an_ellipsis() {
        assert_eq!(body_excerpt(b"short", 10), "short");
        assert_eq!(body_excerpt(b"0123456789abc", 10), "0123456789…");
        assert_eq!(body_excerpt(b"\xffok", 10), "\u{fffd}ok");
    }
}
