//! Retry policy as data: which answers deliver, which retry and which kill an item (the delay
//! between retries is [`crate::backoff`]). Pure; no I/O.

use crate::messages::Outcome;

/// The outcome an HTTP status means for an item: any 2xx delivers (201 created, 200 replay;
/// the caller reads the id); 408, 429 and 5xx retry, forever (`error()` says why; the caller
/// sets the delay a `Retry-After` asks for); any other status kills it until an operator acts.
pub fn status_outcome(status: u16, error: impl FnOnce() -> String) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered { upstream_id: None },
        408 | 429 | 500..=599 => Outcome::Retry {
            error: error(),
            delay_ms: 0,
        },
        _ => Outcome::Dead { error: error() },
    }
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
            assert!(
                matches!(status_outcome(s, String::new), Outcome::Delivered { .. }),
                "{s}"
            );
        }
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(
                matches!(status_outcome(s, String::new), Outcome::Retry { .. }),
                "{s}"
            );
        }
        for s in [301, 400, 401, 403, 404, 409, 413, 422] {
            assert!(
                matches!(status_outcome(s, String::new), Outcome::Dead { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn body_excerpt_is_cut_with_an_ellipsis() {
        assert_eq!(body_excerpt(b"short", 10), "short");
        assert_eq!(body_excerpt(b"0123456789abc", 10), "0123456789…");
        assert_eq!(body_excerpt(b"\xffok", 10), "\u{fffd}ok");
    }
}
