//! The rows, write requests and list filters both records backends share: what the HTTP
//! layer sees, whichever database is behind it.

use super::input::{NewFilm, NewSequence};
use serde::Serialize;
use serde_json::Value;

/// A sequence row as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceRow {
    pub id: i64,
    pub uid: String,
    pub source: String,
    pub key: Option<String>,
    /// RFC 3339, when the row was created.
    pub created: String,
}

/// A film row as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilmRow {
    pub id: i64,
    pub uid: String,
    /// Id of the film's sequence row.
    pub sequence: i64,
    pub source: String,
    pub received_at: String,
    pub raw: String,
    /// The film's fields (a JSON object).
    pub data: Value,
    /// RFC 3339, when the row was created.
    pub created: String,
}

/// Whether a write created the row or found it already stored under the same uid.
#[derive(Debug, Clone, PartialEq)]
pub enum Saved<T> {
    /// New row (HTTP 201).
    Created(T),
    /// The uid was stored before; this is the stored row (HTTP 200).
    Replayed(T),
}

impl<T> Saved<T> {
    /// The row either way.
    pub fn row(&self) -> &T {
        match self {
            Saved::Created(row) | Saved::Replayed(row) => row,
        }
    }

    /// Whether the row is new.
    pub fn is_created(&self) -> bool {
        matches!(self, Saved::Created(_))
    }
}

/// Why a film was not stored (a client error, per film).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilmRejected {
    /// The `sequence` id names no sequence row.
    #[error("unknown sequence {0}")]
    UnknownSequence(i64),
}

/// One write of a group commit.
#[derive(Debug)]
pub enum RecordWrite {
    Sequence(NewSequence),
    Films(Vec<NewFilm>),
}

/// The answer to one [`RecordWrite`].
#[derive(Debug)]
pub enum WriteAnswer {
    Sequence(Saved<SequenceRow>),
    Films(Vec<Result<Saved<FilmRow>, FilmRejected>>),
}

/// Which rows a list query returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Only rows from this source.
    pub source: Option<String>,
    /// Only films of this sequence id (ignored for sequences).
    pub sequence: Option<i64>,
    /// Only rows with a higher id, ascending; `None` lists newest first.
    pub since_id: Option<i64>,
    /// Page size.
    pub limit: u64,
    /// Rows to skip.
    pub offset: u64,
}

impl ListFilter {
    /// Whether the filter selects every film (the count is then the table's total).
    pub fn selects_all_films(&self) -> bool {
        self.sequence.is_none() && self.selects_all_sequences()
    }

    /// Whether the filter selects every sequence (`sequence` does not apply to them).
    pub fn selects_all_sequences(&self) -> bool {
        self.source.is_none() && self.since_id.is_none()
    }
}
