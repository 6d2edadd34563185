//! Operator actions on dead items: retry (re-parse with the current config), accept a
//! fragment that parses as a whole record, and delete. A revived item meets every check a
//! new frame meets (`max_frame_bytes` included).

use super::{QueueStore, json_text};
use crate::messages::QueueError;
use crate::messages::{ItemState, QueuedItem, RetryAllOutcome};
use crate::queue::schema::{dead, pending};
use crate::record::parse::sequence_key_value;
use crate::record::{LinkParser, SequenceRef};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

/// `items.fragment` of a fragment (bytes of a record the link did not see whole).
pub(super) const FRAGMENT: i64 = 1;
/// `items.fragment` of a fragment an operator accepted as a whole record.
pub(super) const ACCEPTED_FRAGMENT: i64 = 2;

/// Which operator action revives a dead item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revive {
    /// Retry: a frame that did not parse (a fragment stays dead).
    Frame,
    /// Accept: a fragment said by hand to be a whole record.
    Fragment,
}

/// Dead items re-parsed per transaction by [`QueueStore::retry_all_dead`].
const RETRY_ALL_PAGE: i64 = 256;

impl QueueStore {
    /// Makes a dead item pending again if its raw frame parses with the current config of its
    /// source (`parsers` by link name); else it stays dead with the new reason. Commits.
    pub fn retry_item(
        &mut self,
        id: i64,
        parsers: &HashMap<String, LinkParser>,
        now_ms: i64,
    ) -> Result<QueuedItem, QueueError> {
        self.check_dead(id)?;
        self.revive_one(id, parsers, now_ms, Revive::Frame)
    }

    /// Accepts a dead fragment by hand: if its bytes parse as a whole record under every
    /// limit a new frame meets, it is delivered like any film and noted as accepted by hand;
    /// else it stays dead with the reason. Commits. A dead item that is not a fragment is
    /// [`QueueError::NotFragment`] (retry is its action).
    pub fn accept_fragment(
        &mut self,
        id: i64,
        parsers: &HashMap<String, LinkParser>,
        now_ms: i64,
    ) -> Result<QueuedItem, QueueError> {
        self.check_dead(id)?;
        let fragment: i64 = self
            .conn
            .prepare_cached("SELECT fragment FROM items WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))?;
        if fragment != FRAGMENT {
            return Err(QueueError::NotFragment(id));
        }
        self.revive_one(id, parsers, now_ms, Revive::Fragment)
    }

    /// [`QueueStore::revive`] of one dead item in a transaction of its own, committed; the
    /// item as it is then.
    fn revive_one(
        &mut self,
        id: i64,
        parsers: &HashMap<String, LinkParser>,
        now_ms: i64,
        how: Revive,
    ) -> Result<QueuedItem, QueueError> {
        if let Err(e) = self
            .begin()
            .and_then(|()| self.revive(id, parsers, now_ms, how))
        {
            return Err(self.fail(e));
        }
        self.commit()?;
        self.item(id)
    }

    /// Retries every dead item like [`QueueStore::retry_item`], a page per transaction.
    pub fn retry_all_dead(
        &mut self,
        parsers: &HashMap<String, LinkParser>,
        now_ms: i64,
    ) -> Result<RetryAllOutcome, QueueError> {
        let mut outcome = RetryAllOutcome::default();
        let mut after_id = 0;
        loop {
            if let Some(f) = &self.failure {
                return Err(f.to_error());
            }
            let ids: Vec<i64> = {
                let mut stmt = self.conn.prepare_cached(concat!(
                    "SELECT id FROM items WHERE state = ",
                    dead!(),
                    " AND id > ?1 ORDER BY id LIMIT ?2"
                ))?;
                stmt.query_map(params![after_id, RETRY_ALL_PAGE], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let Some(&last) = ids.last() else { break };
            after_id = last;
            for id in ids {
                match self
                    .begin()
                    .and_then(|()| self.revive(id, parsers, now_ms, Revive::Frame))
                {
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
                .prepare_cached(concat!(
                    "DELETE FROM items WHERE id = ?1 AND state = ",
                    dead!()
                ))?
                .execute(params![id])
        });
        match deleted {
            Ok(n) => self.tx.delta.dead -= n as i64,
            Err(e) => return Err(self.fail(e)),
        }
        self.commit()
    }

    /// Re-parses dead item `id`; pending again (true) or still dead with the new reason (false).
    fn revive(
        &mut self,
        id: i64,
        parsers: &HashMap<String, LinkParser>,
        now_ms: i64,
        how: Revive,
    ) -> rusqlite::Result<bool> {
        let (source, raw, sequence_id, fragment): (String, Vec<u8>, Option<i64>, i64) = self
            .conn
            .prepare_cached(concat!(
                "SELECT source, raw, sequence_id, fragment FROM items WHERE id = ?1 AND state = ",
                dead!()
            ))?
            .query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        if fragment == FRAGMENT && how == Revive::Frame {
            // Its record was not seen whole: only an operator may say it is (accept).
            return Ok(false);
        }
        let parsed = match parsers.get(&source) {
            None => Err(format!("no [[serial]] named {source} to parse it with")),
            Some(parser) => parser.parse(&raw).map(|data| (parser, data)),
        };
        let (parser, data) = match parsed {
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
                // A fragment was in no sequence: it joins its link's newest one with its key
                // (its lot), else starts one.
                let key = sequence_key_value(&parser.record, &data);
                let newest: Option<i64> = self
                    .conn
                    .prepare_cached(
                        "SELECT id FROM sequences WHERE source = ?1 AND key IS ?2
                         ORDER BY id DESC LIMIT 1",
                    )?
                    .query_row(params![source, key], |r| r.get(0))
                    .optional()?;
                match newest {
                    Some(id) if key.is_some() => id,
                    _ => self.sequence_row(&source, &SequenceRef::start(key), now_ms)?,
                }
            }
        };
        let fragment = match how {
            Revive::Fragment => ACCEPTED_FRAGMENT,
            Revive::Frame => fragment,
        };
        // Due now (> 0) so the retry query, not the fresh cursor, finds it.
        self.conn
            .prepare_cached(concat!(
                "UPDATE items SET state = ",
                pending!(),
                ", data = ?1, last_error = NULL, next_attempt_at_ms = ?2,
                 sequence_id = ?3, fragment = ?4 WHERE id = ?5"
            ))?
            .execute(params![
                json_text(&data),
                now_ms.max(1),
                sequence_id,
                fragment,
                id
            ])?;
        self.tx.delta.dead -= 1;
        self.tx.delta.pending += 1;
        self.tx.new_work = true;
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
