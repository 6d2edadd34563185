//! What the live views show, shared by `GET /api/refresh/` and the event stream
//! (`/api/events/`) and read by `/readyz` and `/metrics`: everything new since a [`Cursor`]
//! (sequences, films, queue stats, links) in one [`Refresh`], and the queue's stats.
//!
//! The cursor is opaque text naming the highest sequence and film ids the client has seen
//! (`s12.f3456`).

use crate::AppState;
use crate::errors::ApiError;
use crate::store::{FilmRow, SequenceRow};
use crate::views::Refresh;
use filmgate_actors::messages::{GetStats, QueueStats};
use serde::Deserialize;
use std::fmt;

/// Most rows of each kind one catch-up answer carries; the client asks again for more.
pub const CATCH_UP_LIMIT: u64 = 500;

/// Rows of each kind a refresh without a cursor carries (the newest).
pub const LATEST_LIMIT: u64 = 50;

/// The highest sequence and film ids a client has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub sequence_id: i64,
    pub film_id: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}.f{}", self.sequence_id, self.film_id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("bad cursor {text:?}: expected the cursor of an earlier answer, like s12.f3456")
        };
        let (s, f) = text.trim().split_once('.').ok_or_else(bad)?;
        let id = |part: &str, prefix: char| -> Result<i64, String> {
            let digits = part.strip_prefix(prefix).ok_or_else(bad)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            digits.parse().map_err(|_| bad())
        };
        Ok(Cursor {
            sequence_id: id(s, 's')?,
            film_id: id(f, 'f')?,
        })
    }
}

/// Query of `GET /api/refresh/` and `GET /api/events/`.
#[derive(Debug, Deserialize)]
pub struct CursorQuery {
    pub cursor: Option<String>,
}

impl CursorQuery {
    /// The parsed cursor, `None` when absent or empty.
    pub fn parse(&self) -> Result<Option<Cursor>, ApiError> {
        match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(text) => text.parse().map(Some).map_err(ApiError::bad_request),
            None => Ok(None),
        }
    }
}

/// Where a client stands after receiving these rows: after a cursor the rows are ascending
/// (the last is the highest), without one they are newest first (the first is the highest).
pub fn next_cursor(since: Option<Cursor>, sequences: &[SequenceRow], films: &[FilmRow]) -> Cursor {
    let base = since.unwrap_or_default();
    let top_seq = sequences.iter().map(|r| r.id).max().unwrap_or(0);
    let top_film = films.iter().map(|r| r.id).max().unwrap_or(0);
    Cursor {
        sequence_id: base.sequence_id.max(top_seq),
        film_id: base.film_id.max(top_film),
    }
}

/// Computes a refresh: rows after `since` (ascending, capped), or the newest rows without it.
pub async fn since(state: &AppState, since: Option<Cursor>) -> Result<Refresh, ApiError> {
    let (limit, after) = match since {
        Some(c) => (CATCH_UP_LIMIT, Some((c.sequence_id, c.film_id))),
        None => (LATEST_LIMIT, None),
    };
    let (sequences, films) = state.records.changes(after, limit).await?;
    let (queue, queue_error) = queue_stats(state).await;
    let cursor = next_cursor(since, &sequences, &films).to_string();
    let more = since.is_some()
        && (sequences.len() as u64 >= CATCH_UP_LIMIT || films.len() as u64 >= CATCH_UP_LIMIT);
    Ok(Refresh {
        cursor,
        sequences,
        films,
        queue,
        links: state.links.snapshot(),
        queue_error,
        more,
    })
}

/// The queue's stats, or why there are none.
pub async fn queue_stats(state: &AppState) -> (Option<QueueStats>, Option<String>) {
    match state.queue.stats.send(GetStats).await {
        Ok(Ok(stats)) => (Some(stats), None),
        Ok(Err(e)) => (None, Some(e.to_string())),
        Err(e) => (None, Some(format!("queue actor unavailable: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = Cursor {
            sequence_id: 12,
            film_id: 3456,
        };
        assert_eq!(c.to_string(), "s12.f3456");
        assert_eq!("s12.f3456".parse::<Cursor>(), Ok(c));
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        for bad in [
            "",
            "12.3456",
            "s12",
            "s12.f",
            "s-1.f2",
            "sx.f1",
            "s1.f99999999999999999999",
            "f1.s2",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn next_cursor_keeps_the_old_position_when_nothing_is_new() {
        let since = Cursor {
            sequence_id: 3,
            film_id: 9,
        };
        assert_eq!(next_cursor(Some(since), &[], &[]), since);
        assert_eq!(next_cursor(None, &[], &[]), Cursor::default());
    }
}
