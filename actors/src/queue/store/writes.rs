//! The write log: every write of the open transaction is applied and kept until its commit
//! succeeds; a failed commit rolls back, and the next one replays the log.

use super::{
    DeadNotice, OpenTx, QueueStore, SEQUENCE_CACHE_MAX, STATE_DEAD, STATE_PENDING, json_text,
};
use crate::messages::Outcome;
use crate::messages::QueueError;
use crate::queue::schema::{dead, pending, posted};
use crate::record::{ItemBody, NewItem, SequenceRef};
use rusqlite::params;
use serde_json::Value;
use std::time::Instant;

/// A write of the open transaction, as needed to apply it again after a rollback.
#[derive(Debug)]
pub(super) enum WriteOp {
    /// A frame accepted by [`QueueStore::enqueue`].
    Insert(NewItem),
    /// An outcome from [`QueueStore::ack`], with the time it arrived.
    Ack {
        id: i64,
        outcome: Outcome,
        at_ms: i64,
    },
    /// A mark for the next process (see [`crate::queue::QueueStore::mark_stop`]).
    Mark { name: String, value: String },
    /// An upstream id from [`QueueStore::sequence_posted`].
    SequencePosted {
        sequence_id: i64,
        /// JSON text.
        upstream_id: String,
    },
    /// What judging films changed, an acknowledged alarm or a reset (see `store/spc.rs`).
    Spc(super::spc::SpcWrite),
}

/// The error that put the store into its failing state, kept to answer with it.
#[derive(Debug, Clone)]
pub(super) struct StoreFailure {
    /// SQLite's (extended) result code, or `SQLITE_ERROR` for a non-SQLite error.
    code: i32,
    /// The error as text with its cause.
    pub(super) message: String,
}

impl StoreFailure {
    pub(super) fn to_error(&self) -> QueueError {
        QueueError::Store(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(self.code),
            Some(self.message.clone()),
        ))
    }
}

impl QueueStore {
    pub(super) fn begin(&mut self) -> rusqlite::Result<()> {
        if !self.tx.is_open() {
            // Cached: parsed once, not at every transaction.
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            self.tx.started = Some(Instant::now());
        }
        Ok(())
    }

    /// Applies `op` to the open transaction and keeps it; if the store is failing (or the
    /// write fails) it is only kept, to be applied by the replay of the next commit.
    pub(super) fn write(&mut self, op: WriteOp) {
        if self.failure.is_none()
            && let Err(e) = self.begin().and_then(|()| self.apply(&op))
        {
            self.fail(e);
        }
        self.log.push(op);
    }

    fn apply(&mut self, op: &WriteOp) -> rusqlite::Result<()> {
        match op {
            WriteOp::Insert(item) => self.apply_insert(item),
            WriteOp::Ack { id, outcome, at_ms } => self.apply_ack(*id, outcome, *at_ms),
            WriteOp::Mark { name, value } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO marks (name, value) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![name, value])?;
                Ok(())
            }
            WriteOp::SequencePosted {
                sequence_id,
                upstream_id,
            } => {
                self.conn
                    .prepare_cached("UPDATE sequences SET upstream_id = ?1 WHERE id = ?2")?
                    .execute(params![upstream_id, sequence_id])?;
                Ok(())
            }
            WriteOp::Spc(write) => self.apply_spc(write),
        }
    }

    pub(super) fn apply_insert(&mut self, item: &NewItem) -> rusqlite::Result<()> {
        let sequence_id = match (&item.sequence, &item.body) {
            (Some(seq), _) => Some(self.sequence_row(&item.source, seq, item.received_at_ms)?),
            (None, ItemBody::Film(_)) => {
                // A film must have a sequence to be posted; give it one rather than lose it.
                let seq = self
                    .orphan_sequences
                    .entry(item.source.clone())
                    .or_insert_with(|| SequenceRef::start(None))
                    .clone();
                Some(self.sequence_row(&item.source, &seq, item.received_at_ms)?)
            }
            (None, ItemBody::Rejected { .. } | ItemBody::Fragment { .. }) => None,
        };
        let fragment = matches!(item.body, ItemBody::Fragment { .. });
        let (state, last_error, data) = match &item.body {
            ItemBody::Film(data) => (STATE_PENDING, None, Some(json_text(data))),
            ItemBody::Rejected { reason } | ItemBody::Fragment { reason } => {
                (STATE_DEAD, Some(reason.as_str()), None)
            }
        };
        self.conn
            .prepare_cached(
                "INSERT INTO items (uid, source, sequence_id, state, last_error, received_at_ms, raw, data, fragment)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                item.uid,
                item.source,
                sequence_id,
                state,
                last_error,
                item.received_at_ms,
                item.raw,
                data,
                fragment
            ])?;
        self.tx.max_id = self.conn.last_insert_rowid();
        if state == STATE_PENDING {
            self.tx.delta.pending += 1;
            self.tx.new_work = true;
        } else {
            self.tx.delta.dead += 1;
            self.tx.dead.push(DeadNotice {
                id: self.tx.max_id,
                uid: item.uid.clone(),
                source: item.source.clone(),
                reason: last_error.unwrap_or_default().to_owned(),
            });
        }
        Ok(())
    }

    /// The row id of a link's sequence, inserting it the first time its uid is seen.
    pub(super) fn sequence_row(
        &mut self,
        source: &str,
        seq: &SequenceRef,
        at_ms: i64,
    ) -> rusqlite::Result<i64> {
        if let Some(&id) = self.sequence_ids.get(&seq.uid) {
            return Ok(id);
        }
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO sequences (uid, source, key, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![seq.uid, source, seq.key, at_ms])?;
        let id = if inserted == 1 {
            self.conn.last_insert_rowid()
        } else {
            self.conn
                .prepare_cached("SELECT id FROM sequences WHERE uid = ?1")?
                .query_row(params![seq.uid], |r| r.get(0))?
        };
        if self.sequence_ids.len() >= SEQUENCE_CACHE_MAX {
            self.sequence_ids.clear();
        }
        self.sequence_ids.insert(seq.uid.clone(), id);
        Ok(id)
    }

    fn apply_ack(&mut self, id: i64, outcome: &Outcome, at_ms: i64) -> rusqlite::Result<()> {
        // Only a pending item changes: a repeated or stray ack leaves a posted or dead one be.
        let changed = match outcome {
            Outcome::Delivered { upstream_id } => {
                let upstream_id = upstream_id.as_ref().map(Value::to_string);
                let n = self
                    .conn
                    .prepare_cached(concat!(
                        "UPDATE items SET state = ",
                        posted!(),
                        ", upstream_id = ?1, posted_at_ms = ?2,
                         attempts = attempts + 1, last_error = NULL, next_attempt_at_ms = 0
                         WHERE id = ?3 AND state = ",
                        pending!()
                    ))?
                    .execute(params![upstream_id, at_ms, id])? as i64;
                self.tx.delta.posted += n;
                n
            }
            Outcome::Retry { error, delay_ms } => {
                // Always > 0: zero means "fresh" to the lease queries.
                let due_ms = (at_ms + *delay_ms as i64).max(1);
                self.conn
                    .prepare_cached(concat!(
                        "UPDATE items SET attempts = attempts + 1, last_error = ?1,
                         next_attempt_at_ms = ?2 WHERE id = ?3 AND state = ",
                        pending!()
                    ))?
                    .execute(params![error, due_ms, id])?;
                0
            }
            Outcome::Dead { error } => {
                let n = self
                    .conn
                    .prepare_cached(concat!(
                        "UPDATE items SET state = ",
                        dead!(),
                        ", attempts = attempts + 1, last_error = ?1,
                         next_attempt_at_ms = 0 WHERE id = ?2 AND state = ",
                        pending!()
                    ))?
                    .execute(params![error, id])? as i64;
                self.tx.delta.dead += n;
                if n == 1 {
                    let (uid, source) = self
                        .conn
                        .prepare_cached("SELECT uid, source FROM items WHERE id = ?1")?
                        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    self.tx.dead.push(DeadNotice {
                        id,
                        uid,
                        source,
                        reason: error.clone(),
                    });
                }
                n
            }
        };
        self.tx.delta.pending -= changed;
        Ok(())
    }

    /// Deletes the oldest posted items once the history is over its size by 1%.
    pub(super) fn trim_posted(&mut self) -> rusqlite::Result<()> {
        let posted = self.live_counts().posted;
        let keep = self.posted_history as i64;
        if posted <= keep + keep / 100 {
            return Ok(());
        }
        let deleted = self
            .conn
            .prepare_cached(concat!(
                "DELETE FROM items WHERE id IN
                 (SELECT id FROM items WHERE state = ",
                posted!(),
                " ORDER BY id LIMIT +?1)"
            ))?
            .execute(params![posted - keep])?;
        self.tx.delta.posted -= deleted as i64;
        Ok(())
    }

    /// Frees space for a store failing on a full disk: a checkpoint that truncates the WAL
    /// (it needs room only for the pages the database file grows by), and if that fails too,
    /// the reserve given up first. Errors here are the commit's to report.
    pub(super) fn make_room(&mut self) {
        if self.checkpoint().is_ok() {
            return;
        }
        if self.reserve.release() {
            log::warn!(
                "queue: the disk of {} is full; released the space kept in reserve for this",
                self.path
            );
            if let Err(e) = self.checkpoint() {
                log::debug!("queue: checkpoint after releasing the reserve failed: {e}");
            }
        }
    }

    /// Copies the WAL into the database file and truncates the WAL (no transaction may be open).
    pub(super) fn checkpoint(&self) -> rusqlite::Result<()> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some("the WAL checkpoint could not finish".into()),
            ));
        }
        Ok(())
    }

    /// Opens a transaction and applies every kept write again (after a failed commit).
    pub(super) fn replay(&mut self) -> rusqlite::Result<()> {
        self.begin()?;
        let log = std::mem::take(&mut self.log);
        let result = log.iter().try_for_each(|op| self.apply(op));
        self.log = log;
        result
    }

    /// Rolls the open transaction back and enters (or stays in) the failing state.
    pub(super) fn fail(&mut self, e: rusqlite::Error) -> QueueError {
        if !self.conn.is_autocommit()
            && let Err(rollback) = self.conn.execute_batch("ROLLBACK")
        {
            log::debug!("queue rollback after a failed write also failed: {rollback}");
        }
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
            _ => rusqlite::ffi::SQLITE_ERROR,
        };
        // Set before the reset so the log is kept for the replay.
        self.failure = Some(StoreFailure {
            code,
            message: e.to_string(),
        });
        self.reset_tx();
        // Rolled-back sequence rows may be cached.
        self.sequence_ids.clear();
        // `store_ok` is shown live.
        self.changes.notify();
        QueueError::Store(e)
    }

    pub(super) fn reset_tx(&mut self) {
        self.tx = OpenTx::default();
        if self.failure.is_none() {
            self.log.clear();
        }
    }
}
