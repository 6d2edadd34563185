//! Operator actions on dead items: retry (re-parse with the current config) and delete.

use super::{QueueStore, json_text};
use crate::error::QueueError;
use crate::messages::{ItemState, QueuedItem, RetryAllOutcome};
use crate::record::parse::{parse_frame, sequence_key_value};
use crate::record::{RecordConfig, SequenceRef};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

/// Dead items re-parsed per transaction by [`QueueStore::retry_all_dead`].
const RETRY_ALL_PAGE: i64 = 256;

impl QueueStore {
    /// Makes a dead item pending again if its raw frame parses with the current config of its
    /// source (`parsers` by link name); else it stays dead with the new reason. Commits.
    pub fn retry_item(
        &mut self,
        id: i64,
        parsers: &HashMap<String, RecordConfig>,
        now_ms: i64,
    ) -> Result<QueuedItem, QueueError> {
        self.check_dead(id)?;
        if let Err(e) = self.begin().and_then(|()| self.revive(id, parsers, now_ms)) {
            return Err(self.fail(e));
        }
        self.commit()?;
        self.item(id)
    }

    /// Retries every dead item like [`QueueStore::retry_item`], a page per transaction.
    pub fn retry_all_dead(
        &mut self,
        parsers: &HashMap<String, RecordConfig>,
        now_ms: i64,
    ) -> Result<RetryAllOutcome, QueueError> {
        let mut outcome = RetryAllOutcome::default();
        let mut after_id = 0;
        loop {
            if let Some(f) = &self.failure {
                return Err(f.to_error());
            }
            let ids: Vec<i64> = {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT id FROM items WHERE state = 2 AND id > ?1 ORDER BY id LIMIT ?2",
                )?;
                stmt.query_map(params![after_id, RETRY_ALL_PAGE], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let Some(&last) = ids.last() else { break };
            after_id = last;
            for id in ids {
                match self.begin().and_then(|()| self.revive(id, parsers, now_ms)) {
                    Ok(true) => outcome.retried += 1,
                    Ok(false) => outcome.still_dead += 1,
                    Err(e) => return Err(self.fail(e)),
                }
            }
            self.commit()?;
        }
        Ok(outcome)
    }

    /// Deletes a dead item (only dead items can be deleted). Commits.
    pub fn delete_dead(&mut self, id: i64) -> Result<(), QueueError> {
        self.check_dead(id)?;
        let deleted = self.begin().and_then(|()| {
            self.conn
                .prepare_cached("DELETE FROM items WHERE id = ?1 AND state = 2")?
                .execute(params![id])
        });
        match deleted {
            Ok(n) => self.tx_delta.dead -= n as i64,
            Err(e) => return Err(self.fail(e)),
        }
        self.commit()
    }

    /// Re-parses dead item `id`; pending again (true) or still dead with the new reason (false).
    fn revive(
        &mut self,
        id: i64,
        parsers: &HashMap<String, RecordConfig>,
        now_ms: i64,
    ) -> rusqlite::Result<bool> {
        let (source, raw, sequence_id, fragment): (String, Vec<u8>, Option<i64>, bool) = self
            .conn
            .prepare_cached(
                "SELECT source, raw, sequence_id, fragment FROM items WHERE id = ?1 AND state = 2",
            )?
            .query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        if fragment {
            // Its record was not seen whole: parsing it could deliver a garbled film.
            return Ok(false);
        }
        let parsed = match parsers.get(&source) {
            None => Err(format!("no [[serial]] named {source} to parse it with")),
            Some(cfg) => parse_frame(cfg, &raw).map(|data| (cfg, data)),
        };
        let (cfg, data) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.conn
                    .prepare_cached("UPDATE items SET last_error = ?1 WHERE id = ?2")?
                    .execute(params![reason, id])?;
                return Ok(false);
            }
        };
        let sequence_id = match sequence_id {
            Some(sequence_id) => sequence_id,
            None => {
                let seq = SequenceRef::start(sequence_key_value(cfg, &data));
                self.sequence_row(&source, &seq, now_ms)?
            }
        };
        // Due now (> 0) so the retry query, not the fresh cursor, finds it.
        self.conn
            .prepare_cached(
                "UPDATE items SET state = 0, data = ?1, last_error = NULL, next_attempt_at_ms = ?2,
                 sequence_id = ?3 WHERE id = ?4",
            )?
            .execute(params![json_text(&data), now_ms.max(1), sequence_id, id])?;
        self.tx_delta.dead -= 1;
        self.tx_delta.pending += 1;
        self.tx_new_work = true;
        Ok(true)
    }

    /// Ok when the store is healthy and item `id` exists and is dead.
    fn check_dead(&self, id: i64) -> Result<(), QueueError> {
        if let Some(f) = &self.failure {
            return Err(f.to_error());
        }
        match self.state_of(id)?.ok_or(QueueError::NotFound(id))? {
            ItemState::Dead => Ok(()),
            state => Err(QueueError::NotDead {
                id,
                state: state.as_str(),
            }),
        }
    }

    fn state_of(&self, id: i64) -> Result<Option<ItemState>, QueueError> {
        let code: Option<i64> = self
            .conn
            .prepare_cached("SELECT state FROM items WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        Ok(code.map(|code| self.item_state(id, code)))
    }
}
