//! The queue file itself: connection settings, the schema and its upgrade, the integrity check
//! at open, and the errors that name the file. Plain rusqlite; [`super::store::QueueStore::open`]
//! calls these in order.

use super::QueueError;
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

// `items.state`, written once: as SQL text for the statements (`concat!` takes only
// literals, and the lease query must repeat the partial index's predicate literally for SQLite
// to use it), and as numbers for Rust (`store::STATE_*`, from the same text).

/// `items.state` of an item waiting to be posted (or in flight, which is not stored).
macro_rules! pending {
    () => {
        "0"
    };
}
/// `items.state` of an item that needs an operator (rejected frame, fragment, permanent 4xx).
macro_rules! dead {
    () => {
        "2"
    };
}
/// `items.state` of a delivered item kept for inspection.
macro_rules! posted {
    () => {
        "3"
    };
}
pub(super) use {dead, pending, posted};

/// `PRAGMA user_version` of the current schema. 0: the first one, whose item ids SQLite could
/// reuse (no AUTOINCREMENT) and which had no `fragment` column; [`migrate`] upgrades it.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// WAL pages after which SQLite checkpoints (1 MiB with 4 KiB pages): keeps the WAL, and with
/// it the room a checkpoint needs on a full disk, small (see [`super::space`]).
pub(super) const WAL_CHECKPOINT_PAGES: i64 = 256;

/// `marks` holds what one process tells the next: `lease_limit` (no fresh item above it is
/// leased before a higher limit is committed), and, written by a graceful stop only, `clean_stop` and
/// `handover:<link>` (the port, and that the link stopped at a record boundary). Both kinds
/// of the latter are taken (read and deleted) at open.
///
/// `spc_charts` holds each watched chart's state (JSON of [`crate::spc::Chart`]), `spc_points`
/// its plotted subgroups and `spc_alarms` the rules that fired (ids given by the store).
///
/// Item ids are AUTOINCREMENT: never reused, even after the newest row is deleted, so the
/// fresh-lease cursor (every id above it is newer) stays true whatever is deleted or trimmed.
pub(super) const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS sequences (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    key TEXT,
    upstream_id TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    source TEXT NOT NULL,
    sequence_id INTEGER,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,
    received_at_ms INTEGER NOT NULL,
    raw BLOB NOT NULL,
    data TEXT,
    upstream_id TEXT,
    posted_at_ms INTEGER,
    fragment INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spc_charts (
    link TEXT NOT NULL,
    field TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (link, field)
);
CREATE TABLE IF NOT EXISTS spc_points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    link TEXT NOT NULL,
    field TEXT NOT NULL,
    sequence_uid TEXT NOT NULL,
    idx INTEGER,
    n INTEGER NOT NULL,
    mean REAL NOT NULL,
    range REAL,
    m2 REAL NOT NULL,
    alarms TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spc_points_lot ON spc_points(sequence_uid);
CREATE INDEX IF NOT EXISTS spc_points_index ON spc_points(link, field, idx);
CREATE TABLE IF NOT EXISTS spc_alarms (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    link TEXT NOT NULL,
    field TEXT NOT NULL,
    sequence_uid TEXT NOT NULL,
    idx INTEGER,
    rule TEXT NOT NULL,
    value REAL NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_state_id ON items(state, id);
CREATE INDEX IF NOT EXISTS items_due_retry ON items(next_attempt_at_ms)
    WHERE state = ",
    pending!(),
    " AND next_attempt_at_ms > 0;
"
);

/// Connection settings: WAL with `synchronous=FULL`, and a WAL kept small (see [`super::space`]).
pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.set_prepared_statement_cache_capacity(64);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(
            "queue: SQLite refused WAL mode (journal_mode = {mode}); commits will be slower"
        );
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_CHECKPOINT_PAGES * 4096)?;
    Ok(())
}

/// SQLite's `quick_check` (every page and index structure, in time linear in the file):
/// a damaged queue must not run, or it may re-send what was delivered and lose what was not.
pub(super) fn check_integrity(conn: &Connection, path: &str) -> Result<(), QueueError> {
    let damaged = |detail: String| QueueError::Damaged {
        path: path.to_owned(),
        detail,
    };
    let open_err = |e: rusqlite::Error| QueueError::Open {
        path: path.to_owned(),
        source: e.into(),
    };
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| damaged_or(path, e, open_err))?;
    match problems.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(damaged(problems.join("; "))),
    }
}

/// A corruption error is [`QueueError::Damaged`]; anything else goes through `other`.
pub(super) fn damaged_or(
    path: &str,
    e: rusqlite::Error,
    other: impl FnOnce(rusqlite::Error) -> QueueError,
) -> QueueError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            QueueError::Damaged {
                path: path.to_owned(),
                detail: e.to_string(),
            }
        }
        _ => other(e),
    }
}

/// Creates the schema, or upgrades an older one, under a write lock (which also proves the
/// file is writable before the queue starts).
pub(super) fn create_or_migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let has_items: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'items'",
            [],
            |r| r.get(0),
        )?;
        if version > SCHEMA_VERSION {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(format!(
                    "the file has queue schema version {version}, newer than this filmgate's \
                     {SCHEMA_VERSION}: run the newer filmgate"
                )),
            ));
        }
        if has_items && version < SCHEMA_VERSION {
            migrate(conn)?;
        }
        conn.execute_batch(SCHEMA)?;
        if version < SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Version 0 to 1: the items table again with AUTOINCREMENT ids and a `fragment` column, rows
/// and ids kept (the schema's `CREATE ... IF NOT EXISTS` then adds the indexes back).
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    log::info!("queue: upgrading the queue file to schema version {SCHEMA_VERSION}");
    let columns = "id, uid, source, sequence_id, state, attempts, last_error, next_attempt_at_ms,
        received_at_ms, raw, data, upstream_id, posted_at_ms";
    conn.execute_batch(&format!(
        "ALTER TABLE items RENAME TO items_v0;
         DROP INDEX IF EXISTS items_state_id;
         DROP INDEX IF EXISTS items_due_retry;
         {SCHEMA}
         INSERT INTO items ({columns}) SELECT {columns} FROM items_v0;
         DROP TABLE items_v0;"
    ))
}

pub(super) fn dir_error(dir: &Path, e: std::io::Error) -> std::io::Error {
    // create_dir_all reports a file in the way as "File exists", which hides the problem.
    if dir.exists() && !dir.is_dir() {
        let what = format!("{} exists and is not a directory", dir.display());
        return std::io::Error::new(std::io::ErrorKind::NotADirectory, what);
    }
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => " (check the permissions of its parent)",
        _ => "",
    };
    std::io::Error::new(
        e.kind(),
        format!("cannot create directory {}: {e}{hint}", dir.display()),
    )
}

/// SQLite's "unable to open database file" says little; add what usually causes it.
pub(super) fn sqlite_open_error(
    path: &Path,
    e: rusqlite::Error,
) -> Box<dyn std::error::Error + Send + Sync> {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::PermissionDenied
            ) =>
        {
            let dir = path
                .parent()
                .map_or_else(|| ".".into(), |d| d.display().to_string());
            format!("{e} (the file and its directory {dir} must be writable)").into()
        }
        _ => e.into(),
    }
}
