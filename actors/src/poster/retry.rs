//! Retry policy as data: which answers deliver, which retry and which kill an item (the delay
//! between retries is [`crate::backoff`]). Pure; no I/O.

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
    fn body_excerpt_is_cut_with_an_ellipsis() {
        assert_eq!(body_excerpt(b"short", 10), "short");
        assert_eq!(body_excerpt(b"0123456789abc", 10), "0123456789…");
        assert_eq!(body_excerpt(b"\xffok", 10), "\u{fffd}ok");
    }
}
