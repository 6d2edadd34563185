//! The PostgreSQL records store's SQL: the group commit and the list queries, as async
//! functions over a client, with bound parameters only.
//!
//! Ids come from identity columns, and every writing transaction takes `WRITE_LOCK` before
//! its first insert and holds it until its COMMIT. So ids are handed out in commit order on
//! every node, and a reader that has seen id X has seen every committed row below it: the
//! `id > X` cursor of refresh and SSE never skips a row that commits late. PostgreSQL makes a
//! commit visible before it releases the transaction's locks, so the next writer's ids are
//! always above every row a reader can already see.

use crate::store::{
    FilmRejected, FilmRow, ListFilter, NewFilm, NewSequence, RecordWrite, RecordsError, Saved,
    SequenceRow, TableCounts, WriteAnswer,
};
use deadpool_postgres::{Client, GenericClient, Transaction};
use serde_json::Value;
use std::collections::HashMap;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Advisory lock key every writing transaction holds (ASCII "filmgate").
const WRITE_LOCK: i64 = 0x66696c6d67617465;

/// `created` of the table or alias `t` as the API shows it: RFC 3339 in UTC with
/// milliseconds, as on SQLite.
fn created(t: &str) -> String {
    format!("to_char({t}created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
}

fn sequence_columns() -> String {
    format!("id, uid, source, key, {}", created(""))
}

/// The film columns [`film_from_row`] reads, of the table or alias `t` (`""` or `"old."`).
fn film_columns(t: &str) -> String {
    format!(
        "{t}id, {t}uid, {t}sequence, {t}source, {t}received_at, {t}raw, {t}data::text, {}",
        created(t)
    )
}

fn sequence_from_row(r: &Row) -> SequenceRow {
    SequenceRow {
        id: r.get(0),
        uid: r.get(1),
        source: r.get(2),
        key: r.get(3),
        created: r.get(4),
    }
}

/// A film from the columns of [`film_columns`] starting at `at`.
fn film_from_row(r: &Row, at: usize) -> FilmRow {
    let data_text: String = r.get(at + 6);
    FilmRow {
        id: r.get(at),
        uid: r.get(at + 1),
        sequence: r.get(at + 2),
        source: r.get(at + 3),
        received_at: r.get(at + 4),
        raw: r.get(at + 5),
        data: serde_json::from_str(&data_text).unwrap_or(Value::String(data_text)),
        created: r.get(at + 7),
    }
}

/// Runs `ops` in one transaction holding `WRITE_LOCK` and commits once. Any error rolls the
/// whole group back. The group's sequences are inserted first, then all its films in one
/// statement, in request order: a handful of round trips per group however many requests it
/// holds. Returns the answers and the totals after the commit.
pub async fn write_group(
    client: &mut Client,
    ops: &[&RecordWrite],
) -> Result<(Vec<WriteAnswer>, TableCounts), RecordsError> {
    let tx = client.transaction().await?;
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await?;
    tx.execute(&lock, &[&WRITE_LOCK]).await?;
    let mut added = TableCounts::default();
    // Each op's answer in op order: the sequences' now, the films' after their insert.
    let mut answers = Vec::with_capacity(ops.len());
    for op in ops {
        answers.push(match op {
            RecordWrite::Sequence(new) => {
                let saved = insert_sequence(&tx, new).await?;
                if let Saved::Created(row) = &saved {
                    added.sequences += 1;
                    added.max_sequence_id = added.max_sequence_id.max(row.id);
                }
                Some(WriteAnswer::Sequence(saved))
            }
            RecordWrite::Films(_) => None,
        });
    }
    let films: Vec<&NewFilm> = ops
        .iter()
        .filter_map(|op| match op {
            RecordWrite::Films(films) => Some(films.iter()),
            RecordWrite::Sequence(_) => None,
        })
        .flatten()
        .collect();
    let film_results = insert_films(&tx, &films).await?;
    for result in &film_results {
        if let Ok(Saved::Created(row)) = result {
            added.films += 1;
            added.max_film_id = added.max_film_id.max(row.id);
        }
    }
    let mut film_results = film_results.into_iter();
    let answers = ops
        .iter()
        .zip(answers)
        .map(|(op, answer)| {
            answer.unwrap_or_else(|| {
                let count = match op {
                    RecordWrite::Films(films) => films.len(),
                    RecordWrite::Sequence(_) => 0,
                };
                WriteAnswer::Films(film_results.by_ref().take(count).collect())
            })
        })
        .collect();
    let update = tx
        .prepare_cached(
            "UPDATE records_totals SET
                sequences = sequences + $1,
                films = films + $2,
                max_sequence_id = GREATEST(max_sequence_id, $3),
                max_film_id = GREATEST(max_film_id, $4)
             RETURNING sequences, films, max_sequence_id, max_film_id",
        )
        .await?;
    let totals = tx
        .query_one(
            &update,
            &[
                &(added.sequences as i64),
                &(added.films as i64),
                &added.max_sequence_id,
                &added.max_film_id,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok((answers, counts_from_row(&totals)))
}

/// The committed totals.
pub async fn counts(client: &Client) -> Result<TableCounts, tokio_postgres::Error> {
    let statement = client
        .prepare_cached("SELECT sequences, films, max_sequence_id, max_film_id FROM records_totals")
        .await?;
    let row = client.query_one(&statement, &[]).await?;
    Ok(counts_from_row(&row))
}

fn counts_from_row(row: &Row) -> TableCounts {
    TableCounts {
        sequences: row.get::<_, i64>(0).max(0) as u64,
        films: row.get::<_, i64>(1).max(0) as u64,
        max_sequence_id: row.get(2),
        max_film_id: row.get(3),
    }
}

/// Inserts a sequence, or returns the stored one with the same uid. Looking first (under
/// `WRITE_LOCK` nobody can insert in between) means a replay never takes an id, so the same
/// requests get the same ids as on SQLite (a group rolled back, or a node killed
/// mid-transaction, still leaves a gap).
async fn insert_sequence(
    tx: &Transaction<'_>,
    new: &NewSequence,
) -> Result<Saved<SequenceRow>, tokio_postgres::Error> {
    let columns = sequence_columns();
    let select = tx
        .prepare_cached(&format!("SELECT {columns} FROM sequences WHERE uid = $1"))
        .await?;
    let stored = tx.query_opt(&select, &[&new.uid]).await?;
    if let Some(row) = stored {
        return Ok(Saved::Replayed(sequence_from_row(&row)));
    }
    let insert = tx
        .prepare_cached(&format!(
            "INSERT INTO sequences (uid, source, key) VALUES ($1, $2, $3) RETURNING {columns}"
        ))
        .await?;
    let row = tx
        .query_one(&insert, &[&new.uid, &new.source, &new.key])
        .await?;
    Ok(Saved::Created(sequence_from_row(&row)))
}

/// Inserts films in one statement (one round trip however many), answering per film in
/// order exactly as inserting them one by one would: a uid stored before, or earlier in the
/// same list, is a replay (even with another sequence); else an unknown sequence is rejected.
async fn insert_films(
    tx: &Transaction<'_>,
    films: &[&NewFilm],
) -> Result<Vec<Result<Saved<FilmRow>, FilmRejected>>, RecordsError> {
    if films.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&NewFilm) -> &str| films.iter().map(|film| f(film)).collect::<Vec<&str>>();
    let uids = column(|f| &f.uid);
    let sources = column(|f| &f.source);
    let received = column(|f| &f.received_at);
    let raws = column(|f| &f.raw);
    let sequences: Vec<i64> = films.iter().map(|f| f.sequence).collect();
    let data: Vec<String> = films
        .iter()
        .map(|f| serde_json::to_string(&f.data).unwrap_or_else(|_| "{}".into()))
        .collect();
    // `input` numbers the films; `ins` inserts, in that order, the first film of each uid not
    // stored yet whose sequence exists (so no id is spent on a replay); the answer lists the
    // inserted rows (kind 0), then per input film whether its sequence exists and the row
    // its uid had before (kind 1).
    let sql = format!(
        "WITH input AS (
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                                 $6::text[])
                WITH ORDINALITY AS t (uid, sequence, source, received_at, raw, data, ord)
         ), ins AS (
            INSERT INTO films (uid, sequence, source, received_at, raw, data)
            SELECT uid, sequence, source, received_at, raw, data::json FROM (
                SELECT DISTINCT ON (uid) * FROM input
                WHERE EXISTS (SELECT 1 FROM sequences s WHERE s.id = input.sequence)
                  AND NOT EXISTS (SELECT 1 FROM films f WHERE f.uid = input.uid)
                ORDER BY uid, ord
            ) AS first_of_uid
            ORDER BY ord
            RETURNING *
         )
         SELECT 0, 0::bigint, true, {} FROM ins
         UNION ALL
         SELECT 1, input.ord,
                EXISTS (SELECT 1 FROM sequences s WHERE s.id = input.sequence),
                {}
         FROM input LEFT JOIN films old ON old.uid = input.uid",
        film_columns("ins."),
        film_columns("old.")
    );
    let params: [&(dyn ToSql + Sync); 6] = [&uids, &sequences, &sources, &received, &raws, &data];
    let statement = tx.prepare_cached(&sql).await?;
    let rows = tx.query(&statement, &params).await?;
    let mut inserted: HashMap<String, FilmRow> = HashMap::new();
    let mut before: Vec<(bool, Option<FilmRow>)> = vec![(false, None); films.len()];
    for row in &rows {
        let kind: i32 = row.get(0);
        if kind == 0 {
            let film = film_from_row(row, 3);
            inserted.insert(film.uid.clone(), film);
        } else {
            let ord: i64 = row.get(1);
            let old = row.get::<_, Option<i64>>(3).map(|_| film_from_row(row, 3));
            before[(ord - 1) as usize] = (row.get(2), old);
        }
    }
    // Replays of a film created earlier in this list.
    let mut created_here: HashMap<&str, FilmRow> = HashMap::new();
    let mut results = Vec::with_capacity(films.len());
    for (&film, (known, old)) in films.iter().zip(before) {
        results.push(if let Some(old) = old {
            Ok(Saved::Replayed(old))
        } else if let Some(row) = created_here.get(film.uid.as_str()) {
            Ok(Saved::Replayed(row.clone()))
        } else if known {
            // Under the lock nothing else inserts: every new uid with a known sequence was
            // inserted by this statement.
            let row = inserted.remove(&film.uid).ok_or_else(|| {
                RecordsError::Store(format!("film {} was neither stored nor inserted", film.uid))
            })?;
            created_here.insert(&film.uid, row.clone());
            Ok(Saved::Created(row))
        } else {
            Err(FilmRejected::UnknownSequence(film.sequence))
        });
    }
    Ok(results)
}

pub async fn film_by_id(
    client: &Client,
    id: i64,
) -> Result<Option<FilmRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {} FROM films WHERE id = $1", film_columns(""));
    let statement = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .map(|r| film_from_row(&r, 0)))
}

pub async fn sequence_by_id(
    client: &Client,
    id: i64,
) -> Result<Option<SequenceRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {} FROM sequences WHERE id = $1", sequence_columns());
    let statement = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .map(|r| sequence_from_row(&r)))
}

/// `WHERE ...` text of a list filter and its bound values (`$1`, `$2`, ... in order).
fn where_clause(
    filter: &ListFilter,
    with_sequence: bool,
) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut clauses = Vec::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if let Some(source) = &filter.source {
        values.push(Box::new(source.clone()));
        clauses.push(format!("source = ${}", values.len()));
    }
    if let (true, Some(seq)) = (with_sequence, filter.sequence) {
        values.push(Box::new(seq));
        clauses.push(format!("sequence = ${}", values.len()));
    }
    if let Some(since) = filter.since_id {
        values.push(Box::new(since));
        clauses.push(format!("id > ${}", values.len()));
    }
    let text = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (text, values)
}

async fn page(
    client: &Client,
    table: &str,
    columns: &str,
    with_sequence: bool,
    filter: &ListFilter,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let (clause, mut values) = where_clause(filter, with_sequence);
    values.push(Box::new(filter.limit.min(i64::MAX as u64) as i64));
    values.push(Box::new(filter.offset.min(i64::MAX as u64) as i64));
    let order = if filter.since_id.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    let sql = format!(
        "SELECT {columns} FROM {table} {clause} ORDER BY id {order} LIMIT ${} OFFSET ${}",
        values.len() - 1,
        values.len()
    );
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
    let statement = client.prepare_cached(&sql).await?;
    client.query(&statement, &params).await
}

async fn count(
    client: &Client,
    table: &str,
    with_sequence: bool,
    filter: &ListFilter,
) -> Result<u64, tokio_postgres::Error> {
    let (clause, values) = where_clause(filter, with_sequence);
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
    let statement = client
        .prepare_cached(&format!("SELECT COUNT(*) FROM {table} {clause}"))
        .await?;
    let row = client.query_one(&statement, &params).await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

pub async fn list_films(
    client: &Client,
    filter: &ListFilter,
) -> Result<Vec<FilmRow>, tokio_postgres::Error> {
    let rows = page(client, "films", &film_columns(""), true, filter).await?;
    Ok(rows.iter().map(|r| film_from_row(r, 0)).collect())
}

pub async fn count_films(
    client: &Client,
    filter: &ListFilter,
) -> Result<u64, tokio_postgres::Error> {
    count(client, "films", true, filter).await
}

pub async fn list_sequences(
    client: &Client,
    filter: &ListFilter,
) -> Result<Vec<SequenceRow>, tokio_postgres::Error> {
    let rows = page(client, "sequences", &sequence_columns(), false, filter).await?;
    Ok(rows.iter().map(sequence_from_row).collect())
}

pub async fn count_sequences(
    client: &Client,
    filter: &ListFilter,
) -> Result<u64, tokio_postgres::Error> {
    count(client, "sequences", false, filter).await
}
