//! Leases: which committed items go to the poster next, and when a waiting retry is due.

use super::writes::WriteOp;
use super::{LEASE_LIMIT_MARK, QueueStore, json_value, leased_data};
use crate::messages::QueueError;
use crate::messages::{LeasedItem, LeasedSequence};
use crate::queue::schema::pending;
use rusqlite::{Row, params};
use std::sync::Arc;

/// How far a raised lease limit reaches beyond the items leased: at most this many fresh
/// items (and every item with a retry) count as uncertain after a crash, and the limit is
/// written about once per this many items, riding with the commits of frames.
const LEASE_AHEAD: i64 = 1024;

/// Retries whose time has come (`?1` = now), in the partial index's own order: no sort, and
/// the scan stops as soon as enough are taken. `INDEXED BY` because on a young file the
/// planner has no statistics and may choose a sort of every pending row instead. `+?1`, not
/// `?1`: a bare parameter compared with the partial index's column makes SQLite look at its
/// value when it plans, and so prepare the statement again at every new value (every lease).
/// Columns as [`leased_item`] reads them.
pub(super) const DUE_RETRIES_SQL: &str = concat!(
    "SELECT i.id, i.uid, i.source, i.received_at_ms, i.raw, i.data,
    i.attempts, s.id, s.uid, s.source, s.key, s.upstream_id
    FROM items i INDEXED BY items_due_retry JOIN sequences s ON s.id = i.sequence_id
    WHERE i.state = ",
    pending!(),
    " AND i.next_attempt_at_ms > 0 AND i.next_attempt_at_ms <= +?1
    ORDER BY i.next_attempt_at_ms, i.id"
);

/// Fresh items after the cursor (`?1`) up to the highest committed id (`?2`), `?3` at most
/// (`+?3`: SQLite plans with a bare `LIMIT ?`'s value, and so prepares it again at each new one).
pub(super) const FRESH_SQL: &str = concat!(
    "SELECT i.id, i.uid, i.source, i.received_at_ms, i.raw, i.data,
    i.attempts, s.id, s.uid, s.source, s.key, s.upstream_id
    FROM items i JOIN sequences s ON s.id = i.sequence_id
    WHERE i.id > ?1 AND i.id <= ?2 AND i.state = ",
    pending!(),
    " AND i.next_attempt_at_ms = 0
    ORDER BY i.id LIMIT +?3"
);

impl QueueStore {
    /// Up to `max_items` committed items that are due and not in flight: retries whose time
    /// has come first (earliest due first), then fresh items in read order. Marks them in flight.
    ///
    /// Fresh items are leased only up to the committed lease limit; when more wait, a higher
    /// limit is written (the caller commits it at once). So after a crash the next process
    /// knows which items may have been posted without their outcome being stored (see
    /// `uncertain` in [`QueueStore`]).
    pub fn lease(&mut self, max_items: usize, now_ms: i64) -> Result<Vec<LeasedItem>, QueueError> {
        if let Some(f) = &self.failure {
            // Outcomes could not be stored now; the poster waits for the store to recover.
            return Err(f.to_error());
        }
        let mut leased = Vec::with_capacity(max_items.min(1024));
        if max_items == 0 {
            return Ok(leased);
        }
        {
            let mut stmt = self.conn.prepare_cached(DUE_RETRIES_SQL)?;
            let mut rows = stmt.query(params![now_ms])?;
            while leased.len() < max_items {
                let Some(row) = rows.next()? else { break };
                if !self.in_flight.contains(&row.get::<_, i64>(0)?) {
                    let item = leased_item(row, leased.last())?;
                    leased.push(item);
                }
            }
        }
        let retries = leased.len();
        let fresh_up_to = self.committed_max_id.min(self.lease_limit);
        if leased.len() < max_items && self.fresh_cursor < fresh_up_to {
            let mut stmt = self.conn.prepare_cached(FRESH_SQL)?;
            let limit = (max_items - leased.len()) as i64;
            let mut rows = stmt.query(params![self.fresh_cursor, fresh_up_to, limit])?;
            while let Some(row) = rows.next()? {
                let item = leased_item(row, leased.last())?;
                leased.push(item);
            }
        }
        if let Some(last) = leased[retries..].last() {
            self.fresh_cursor = last.id;
        }
        if self.committed_max_id > self.lease_limit && self.lease_limit_written == self.lease_limit
        {
            // More fresh items wait than the limit lets go: raise it. They wait for its commit
            // (the caller commits at once), which wakes the poster.
            self.write_lease_limit(self.fresh_cursor.max(self.lease_limit) + LEASE_AHEAD);
            self.tx.new_work = true;
        }
        if !self.uncertain.is_empty() {
            let before = self.uncertain.len();
            for item in &leased {
                self.uncertain.remove(&item.id);
            }
            self.uncertain_resends_total += (before - self.uncertain.len()) as u64;
        }
        self.in_flight.extend(leased.iter().map(|item| item.id));
        if !leased.is_empty() {
            self.changes.notify();
        }
        Ok(leased)
    }

    /// Whether a raised lease limit waits for its commit (fresh items beyond the committed
    /// limit are not leased until then).
    pub fn raised_lease_limit_waits(&self) -> bool {
        self.lease_limit_written > self.lease_limit
    }

    /// Called before a commit: when it brings items beyond the lease limit, the limit rises
    /// to [`LEASE_AHEAD`] past the items leased, in the same transaction (no commit of its
    /// own), so the poster's next lease finds them.
    pub(super) fn raise_lease_limit_for_new_items(&mut self) {
        let wanted = self.fresh_cursor + LEASE_AHEAD;
        if self.tx.max_id > self.lease_limit_written && wanted > self.lease_limit_written {
            self.write_lease_limit(wanted);
        }
    }

    fn write_lease_limit(&mut self, limit: i64) {
        self.lease_limit_written = limit;
        self.write(WriteOp::Mark {
            name: LEASE_LIMIT_MARK.into(),
            value: limit.to_string(),
        });
    }

    /// The earliest time after `now_ms` at which a waiting retry becomes due.
    pub fn next_retry_due_after(&self, now_ms: i64) -> Result<Option<i64>, QueueError> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT min(next_attempt_at_ms) FROM items WHERE state = ",
            pending!(),
            " AND next_attempt_at_ms > 0 AND next_attempt_at_ms > +?1"
        ))?;
        Ok(stmt.query_row(params![now_ms], |r| r.get(0))?)
    }
}

/// A leased item from a row of [`DUE_RETRIES_SQL`] or [`FRESH_SQL`]; its sequence is the
/// one of `previous` when both have the same (films of a lot come together), so a lease
/// reads each sequence's columns once per run of its films.
fn leased_item(row: &Row<'_>, previous: Option<&LeasedItem>) -> rusqlite::Result<LeasedItem> {
    let id: i64 = row.get(0)?;
    let raw: Vec<u8> = row.get(4)?;
    let sequence_id: i64 = row.get(7)?;
    let sequence = match previous {
        Some(previous) if previous.sequence.id == sequence_id => previous.sequence.clone(),
        _ => Arc::new(LeasedSequence {
            id: sequence_id,
            uid: row.get(8)?,
            source: row.get(9)?,
            key: row.get(10)?,
            upstream_id: row
                .get::<_, Option<String>>(11)?
                .map(|text| json_value(&text)),
        }),
    };
    Ok(LeasedItem {
        id,
        uid: row.get(1)?,
        source: row.get(2)?,
        received_at_ms: row.get(3)?,
        raw: String::from_utf8(raw)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        data: leased_data(id, row.get(5)?),
        attempts: row.get(6)?,
        sequence,
    })
}
