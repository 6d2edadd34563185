//! The SQLite records store's SQL: schema, the inserts one group commit runs, and the list
//! queries.
//! Plain functions over a [`rusqlite::Connection`] (no threads, no actix), with bound
//! parameters only.

use crate::store::{
    FilmRejected, FilmRow, ListFilter, NewFilm, NewSequence, RecordWrite, Saved, SequenceRow,
    TableCounts, WriteAnswer,
};
use filmgate_actors::record::{now_ms, rfc3339_ms};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;

/// Tables and the indexes the list queries rely on: `films(sequence, id)` and
/// `films(source, id)` serve the filtered, id-ordered pages without scanning millions of rows.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sequences (
    id INTEGER PRIMARY KEY,
    uid TEXT UNIQUE NOT NULL,
    source TEXT NOT NULL,
    key TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS films (
    id INTEGER PRIMARY KEY,
    uid TEXT UNIQUE NOT NULL,
    sequence INTEGER NOT NULL REFERENCES sequences(id),
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    raw TEXT NOT NULL,
    data TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS films_sequence_id ON films(sequence, id);
CREATE INDEX IF NOT EXISTS films_source_id ON films(source, id);
CREATE INDEX IF NOT EXISTS sequences_source_id ON sequences(source, id);
";

/// Opens the writer connection: WAL with `synchronous=NORMAL` (see the module doc of
/// [`super`]), foreign keys on, schema created.
pub fn open_writer(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Opens a read-only connection for list and detail queries.
pub fn open_reader(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// Runs `ops` in one transaction and commits once. Any SQL error rolls the whole group back
/// (nothing is answered as stored unless the COMMIT succeeded).
/// Also returns what the group added: the rows created and the highest ids among them.
pub fn write_group<O: std::borrow::Borrow<RecordWrite>>(
    conn: &mut Connection,
    ops: &[O],
) -> rusqlite::Result<(Vec<WriteAnswer>, TableCounts)> {
    let tx = conn.transaction()?;
    let mut added = TableCounts::default();
    let mut answers = Vec::with_capacity(ops.len());
    let created = rfc3339_ms(now_ms());
    for op in ops {
        answers.push(match op.borrow() {
            RecordWrite::Sequence(new) => {
                let saved = insert_sequence(&tx, new, &created)?;
                if let Saved::Created(row) = &saved {
                    added.sequences += 1;
                    added.max_sequence_id = added.max_sequence_id.max(row.id);
                }
                WriteAnswer::Sequence(saved)
            }
            RecordWrite::Films(films) => {
                let mut results = Vec::with_capacity(films.len());
                for new in films {
                    let result = insert_film(&tx, new, &created)?;
                    if let Ok(Saved::Created(row)) = &result {
                        added.films += 1;
                        added.max_film_id = added.max_film_id.max(row.id);
                    }
                    results.push(result);
                }
                WriteAnswer::Films(results)
            }
        });
    }
    tx.commit()?;
    Ok((answers, added))
}

/// Inserts a sequence, or returns the stored one with the same uid.
pub fn insert_sequence(
    conn: &Connection,
    new: &NewSequence,
    created: &str,
) -> rusqlite::Result<Saved<SequenceRow>> {
    if let Some(row) = sequence_by_uid(conn, &new.uid)? {
        return Ok(Saved::Replayed(row));
    }
    conn.prepare_cached(
        "INSERT INTO sequences (uid, source, key, created) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![new.uid, new.source, new.key, created])?;
    Ok(Saved::Created(SequenceRow {
        id: conn.last_insert_rowid(),
        uid: new.uid.clone(),
        source: new.source.clone(),
        key: new.key.clone(),
        created: created.to_owned(),
    }))
}

/// Inserts a film, returns the stored one with the same uid, or rejects an unknown sequence.
/// A replayed uid wins over the sequence check: the client already has its row.
pub fn insert_film(
    conn: &Connection,
    new: &NewFilm,
    created: &str,
) -> rusqlite::Result<Result<Saved<FilmRow>, FilmRejected>> {
    if let Some(row) = film_by_uid(conn, &new.uid)? {
        return Ok(Ok(Saved::Replayed(row)));
    }
    let known: Option<i64> = conn
        .prepare_cached("SELECT id FROM sequences WHERE id = ?1")?
        .query_row([new.sequence], |r| r.get(0))
        .optional()?;
    if known.is_none() {
        return Ok(Err(FilmRejected::UnknownSequence(new.sequence)));
    }
    let data_text = serde_json::to_string(&new.data).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached(
        "INSERT INTO films (uid, sequence, source, received_at, raw, data, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.uid,
        new.sequence,
        new.source,
        new.received_at,
        new.raw,
        data_text,
        created
    ])?;
    Ok(Ok(Saved::Created(FilmRow {
        id: conn.last_insert_rowid(),
        uid: new.uid.clone(),
        sequence: new.sequence,
        source: new.source.clone(),
        received_at: new.received_at.clone(),
        raw: new.raw.clone(),
        data: Value::Object(new.data.clone()),
        created: created.to_owned(),
    })))
}

const SEQUENCE_COLUMNS: &str = "id, uid, source, key, created";
const FILM_COLUMNS: &str = "id, uid, sequence, source, received_at, raw, data, created";

fn sequence_from_row(r: &Row<'_>) -> rusqlite::Result<SequenceRow> {
    Ok(SequenceRow {
        id: r.get(0)?,
        uid: r.get(1)?,
        source: r.get(2)?,
        key: r.get(3)?,
        created: r.get(4)?,
    })
}

fn film_from_row(r: &Row<'_>) -> rusqlite::Result<FilmRow> {
    let data_text: String = r.get(6)?;
    Ok(FilmRow {
        id: r.get(0)?,
        uid: r.get(1)?,
        sequence: r.get(2)?,
        source: r.get(3)?,
        received_at: r.get(4)?,
        raw: r.get(5)?,
        // Only this store writes `data`, always as a serialized object; text that does not
        // parse (a hand-edited row) is shown as a string rather than failing the page.
        data: serde_json::from_str(&data_text).unwrap_or(Value::String(data_text)),
        created: r.get(7)?,
    })
}

pub fn sequence_by_uid(conn: &Connection, uid: &str) -> rusqlite::Result<Option<SequenceRow>> {
    conn.prepare_cached(&format!(
        "SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE uid = ?1"
    ))?
    .query_row([uid], sequence_from_row)
    .optional()
}

pub fn film_by_uid(conn: &Connection, uid: &str) -> rusqlite::Result<Option<FilmRow>> {
    conn.prepare_cached(&format!("SELECT {FILM_COLUMNS} FROM films WHERE uid = ?1"))?
        .query_row([uid], film_from_row)
        .optional()
}

pub fn sequence_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<SequenceRow>> {
    conn.prepare_cached(&format!(
        "SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE id = ?1"
    ))?
    .query_row([id], sequence_from_row)
    .optional()
}

pub fn film_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<FilmRow>> {
    conn.prepare_cached(&format!("SELECT {FILM_COLUMNS} FROM films WHERE id = ?1"))?
        .query_row([id], film_from_row)
        .optional()
}

impl ListFilter {
    fn where_clause(&self, with_sequence: bool) -> (String, Vec<SqlValue>) {
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        if let Some(source) = &self.source {
            clauses.push("source = ?");
            values.push(SqlValue::Text(source.clone()));
        }
        if let (true, Some(seq)) = (with_sequence, self.sequence) {
            clauses.push("sequence = ?");
            values.push(SqlValue::Integer(seq));
        }
        if let Some(since) = self.since_id {
            clauses.push("id > ?");
            values.push(SqlValue::Integer(since));
        }
        let text = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        (text, values)
    }

    fn order(&self) -> &'static str {
        if self.since_id.is_some() {
            "ORDER BY id ASC"
        } else {
            "ORDER BY id DESC"
        }
    }
}

fn page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    with_sequence: bool,
    filter: &ListFilter,
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let (clause, mut values) = filter.where_clause(with_sequence);
    values.push(SqlValue::Integer(filter.limit.min(i64::MAX as u64) as i64));
    values.push(SqlValue::Integer(filter.offset.min(i64::MAX as u64) as i64));
    let sql = format!(
        "SELECT {columns} FROM {table} {clause} {} LIMIT ? OFFSET ?",
        filter.order()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), map)?;
    rows.collect()
}

fn count(
    conn: &Connection,
    table: &str,
    with_sequence: bool,
    filter: &ListFilter,
) -> rusqlite::Result<u64> {
    let (clause, values) = filter.where_clause(with_sequence);
    let sql = format!("SELECT COUNT(*) FROM {table} {clause}");
    conn.prepare_cached(&sql)?
        .query_row(params_from_iter(values), |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

pub fn list_films(conn: &Connection, filter: &ListFilter) -> rusqlite::Result<Vec<FilmRow>> {
    page(conn, "films", FILM_COLUMNS, true, filter, film_from_row)
}

pub fn count_films(conn: &Connection, filter: &ListFilter) -> rusqlite::Result<u64> {
    count(conn, "films", true, filter)
}

pub fn list_sequences(
    conn: &Connection,
    filter: &ListFilter,
) -> rusqlite::Result<Vec<SequenceRow>> {
    page(
        conn,
        "sequences",
        SEQUENCE_COLUMNS,
        false,
        filter,
        sequence_from_row,
    )
}

pub fn count_sequences(conn: &Connection, filter: &ListFilter) -> rusqlite::Result<u64> {
    count(conn, "sequences", false, filter)
}

/// Rows and highest ids of both tables, read once at open to seed the in-memory totals.
pub fn counts(conn: &Connection) -> rusqlite::Result<TableCounts> {
    let of = |table: &str| {
        let sql = format!("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM {table}");
        conn.query_row(&sql, [], |r| {
            Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?))
        })
    };
    let (sequences, max_sequence_id) = of("sequences")?;
    let (films, max_film_id) = of("films")?;
    Ok(TableCounts {
        sequences,
        films,
        max_sequence_id,
        max_film_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn mem() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn seq(uid: &str, source: &str) -> NewSequence {
        NewSequence {
            uid: uid.into(),
            source: source.into(),
            key: None,
        }
    }

    fn film(uid: &str, sequence: i64, source: &str) -> NewFilm {
        NewFilm {
            uid: uid.into(),
            sequence,
            source: source.into(),
            received_at: "2026-01-01T00:00:00.000Z".into(),
            raw: "A,1".into(),
            data: Map::new(),
        }
    }

    #[test]
    fn a_group_creates_replays_and_rejects_per_item() {
        let mut conn = mem();
        let ops = vec![
            RecordWrite::Sequence(seq("s1", "a")),
            RecordWrite::Films(vec![
                film("f1", 1, "a"),
                film("f1", 1, "a"),
                film("f2", 9, "a"),
            ]),
        ];
        let (answers, added) = write_group(&mut conn, &ops).unwrap();
        assert_eq!(
            added,
            TableCounts {
                sequences: 1,
                films: 1,
                max_sequence_id: 1,
                max_film_id: 1
            }
        );
        let WriteAnswer::Films(results) = &answers[1] else {
            panic!("films answer")
        };
        assert!(results[0].as_ref().unwrap().is_created());
        assert!(!results[1].as_ref().unwrap().is_created());
        assert_eq!(results[2], Err(FilmRejected::UnknownSequence(9)));
    }

    #[test]
    fn replayed_film_uid_returns_the_stored_row_even_with_another_sequence() {
        let mut conn = mem();
        write_group(&mut conn, &[RecordWrite::Sequence(seq("s1", "a"))]).unwrap();
        write_group(&mut conn, &[RecordWrite::Films(vec![film("f1", 1, "a")])]).unwrap();
        let (answers, _) =
            write_group(&mut conn, &[RecordWrite::Films(vec![film("f1", 42, "a")])]).unwrap();
        let WriteAnswer::Films(results) = &answers[0] else {
            panic!("films answer")
        };
        let Ok(Saved::Replayed(row)) = &results[0] else {
            panic!("replay")
        };
        assert_eq!(row.sequence, 1);
    }

    #[test]
    fn lists_are_newest_first_or_ascending_after_since_id_and_filter() {
        let mut conn = mem();
        write_group(
            &mut conn,
            &[
                RecordWrite::Sequence(seq("s1", "a")),
                RecordWrite::Sequence(seq("s2", "b")),
            ],
        )
        .unwrap();
        let films: Vec<_> = (1..=6)
            .map(|i| {
                film(
                    &format!("f{i}"),
                    if i % 2 == 0 { 2 } else { 1 },
                    if i % 2 == 0 { "b" } else { "a" },
                )
            })
            .collect();
        write_group(&mut conn, &[RecordWrite::Films(films)]).unwrap();
        let ids = |f: &ListFilter| {
            list_films(&conn, f)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        let all = ListFilter {
            limit: 3,
            ..Default::default()
        };
        assert_eq!(ids(&all), [6, 5, 4]);
        assert_eq!(
            ids(&ListFilter {
                offset: 3,
                ..all.clone()
            }),
            [3, 2, 1]
        );
        assert_eq!(
            ids(&ListFilter {
                since_id: Some(2),
                ..all.clone()
            }),
            [3, 4, 5]
        );
        let b = ListFilter {
            source: Some("b".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(ids(&b), [6, 4, 2]);
        assert_eq!(count_films(&conn, &b).unwrap(), 3);
        let seq1 = ListFilter {
            sequence: Some(1),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(ids(&seq1), [5, 3, 1]);
        assert_eq!(
            counts(&conn).unwrap(),
            TableCounts {
                sequences: 2,
                films: 6,
                max_sequence_id: 2,
                max_film_id: 6
            }
        );
    }

    #[test]
    fn filtered_list_queries_use_the_indexes() {
        let conn = mem();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let by_source = plan("SELECT id FROM films WHERE source = 'a' ORDER BY id DESC LIMIT 100");
        assert!(by_source.contains("films_source_id"), "{by_source}");
        let by_seq = plan("SELECT id FROM films WHERE sequence = 1 ORDER BY id DESC LIMIT 100");
        assert!(by_seq.contains("films_sequence_id"), "{by_seq}");
    }
}
