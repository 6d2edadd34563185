//! The PostgreSQL schema as numbered migrations, applied at start in one transaction.
//!
//! `filmgate_migrations` records each version applied. Nodes starting at the same time take
//! `MIGRATION_LOCK` first, so exactly one applies a migration and the others find it done.
//! A database whose newest version is beyond [`MIGRATIONS`] (written by a newer filmgate) is
//! refused rather than used: this build would not know what its tables mean.

use tokio_postgres::Client;

/// Advisory lock key the migrating node holds (ASCII "filmgatm").
const MIGRATION_LOCK: i64 = 0x66696c6d6761746d;

/// `(version, name, SQL)`, oldest first. Never edit a released entry; append a new one.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "sequences, films and their totals",
    "
CREATE TABLE sequences (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    key TEXT,
    created TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE films (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    sequence BIGINT NOT NULL REFERENCES sequences (id),
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    raw TEXT NOT NULL,
    data JSON NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX films_sequence_id ON films (sequence, id);
CREATE INDEX films_source_id ON films (source, id);
CREATE INDEX sequences_source_id ON sequences (source, id);
CREATE TABLE records_totals (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    sequences BIGINT NOT NULL,
    films BIGINT NOT NULL,
    max_sequence_id BIGINT NOT NULL,
    max_film_id BIGINT NOT NULL
);
INSERT INTO records_totals VALUES (true, 0, 0, 0, 0);
",
)];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(
        "the database is at schema version {found}, newer than this filmgate knows \
         ({known}); run a filmgate at least as new as the one that migrated it"
    )]
    Newer { found: i32, known: i32 },
}

/// Applies every migration the database lacks; returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS filmgate_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM filmgate_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(MigrateError::Newer { found, known });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO filmgate_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase_by_one() {
        for (i, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
        }
    }
}
