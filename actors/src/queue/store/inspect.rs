//! Reading the queue for the inspection API: one item, a page by state, counts and rates.

use super::{QueueStore, STATE_DEAD, STATE_PENDING, STATE_POSTED, film_data, json_value};
use crate::messages::QueueError;
use crate::messages::{ItemPage, ItemState, QueueStats, QueuedItem};
use crate::queue::schema::pending;
use crate::record::{now_ms, steady_ms};
use rusqlite::{OptionalExtension, Row, params};

/// The columns [`QueueStore::item`] reads.
const VIEW_COLUMNS: &str = "i.id, i.uid, i.source, i.state, i.attempts, i.last_error,
    i.next_attempt_at_ms, i.received_at_ms, i.raw, i.data, s.uid, i.upstream_id, i.fragment";

impl QueueStore {
    /// One item as stored, for inspection.
    pub fn item(&self, id: i64) -> Result<QueuedItem, QueueError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {VIEW_COLUMNS} FROM items i LEFT JOIN sequences s ON s.id = i.sequence_id
             WHERE i.id = ?1"
        ))?;
        let now = steady_ms();
        stmt.query_row(params![id], |row| self.item_of(row, now))
            .optional()?
            .ok_or(QueueError::NotFound(id))
    }

    /// A page of items, newest first, in one state or all, with the count for the filter.
    pub fn list(
        &self,
        state: Option<ItemState>,
        limit: usize,
        offset: usize,
    ) -> Result<ItemPage, QueueError> {
        let live = self.live_counts();
        let in_flight = self.in_flight.len() as u64;
        let now = steady_ms();
        let (limit_sql, offset_sql) = (limit as i64, offset as i64);
        let results = match state {
            Some(ItemState::InFlight) => {
                let mut ids: Vec<i64> = self.in_flight.iter().copied().collect();
                ids.sort_unstable_by(|a, b| b.cmp(a));
                let ids = ids.into_iter().skip(offset).take(limit);
                let mut views = Vec::new();
                for id in ids {
                    views.push(self.item(id)?);
                }
                views
            }
            Some(ItemState::Pending) => {
                // In-flight items are pending rows; skip them (few) while paging.
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {VIEW_COLUMNS} FROM items i LEFT JOIN sequences s ON s.id = i.sequence_id
                     WHERE i.state = {STATE_PENDING} ORDER BY i.id DESC"
                ))?;
                let mut rows = stmt.query([])?;
                let (mut skipped, mut views) = (0, Vec::new());
                while views.len() < limit {
                    let Some(row) = rows.next()? else { break };
                    if self.in_flight.contains(&row.get::<_, i64>(0)?) {
                        continue;
                    }
                    if skipped < offset {
                        skipped += 1;
                        continue;
                    }
                    views.push(self.item_of(row, now)?);
                }
                views
            }
            Some(other) => {
                let code = if other == ItemState::Dead {
                    STATE_DEAD
                } else {
                    STATE_POSTED
                };
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {VIEW_COLUMNS} FROM items i LEFT JOIN sequences s ON s.id = i.sequence_id
                     WHERE i.state = ?1 ORDER BY i.id DESC LIMIT ?2 OFFSET ?3"
                ))?;
                stmt.query_map(params![code, limit_sql, offset_sql], |row| {
                    self.item_of(row, now)
                })?
                .collect::<Result<_, _>>()?
            }
            None => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {VIEW_COLUMNS} FROM items i LEFT JOIN sequences s ON s.id = i.sequence_id
                     ORDER BY i.id DESC LIMIT ?1 OFFSET ?2"
                ))?;
                stmt.query_map(params![limit_sql, offset_sql], |row| self.item_of(row, now))?
                    .collect::<Result<_, _>>()?
            }
        };
        let count = match state {
            Some(ItemState::Pending) => (live.pending.max(0) as u64).saturating_sub(in_flight),
            Some(ItemState::InFlight) => in_flight,
            Some(ItemState::Dead) => live.dead.max(0) as u64,
            Some(ItemState::Posted) => live.posted.max(0) as u64,
            None => (live.pending + live.dead + live.posted).max(0) as u64,
        };
        Ok(ItemPage { count, results })
    }

    /// StateCounts by state (including uncommitted writes), oldest pending age, rates and totals.
    pub fn stats(&self, now_ms: i64) -> QueueStats {
        let live = self.live_counts();
        let in_flight = self.in_flight.len() as u64;
        let oldest_received_ms: Option<i64> = self
            .conn
            .prepare_cached(concat!(
                "SELECT received_at_ms FROM items WHERE state = ",
                pending!(),
                " ORDER BY id LIMIT 1"
            ))
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)).optional())
            .unwrap_or_else(|e| {
                log::debug!("queue stats: oldest pending item unavailable: {e}");
                None
            });
        let (read_rate_per_s, post_rate_per_s) = self.rates.rates(now_ms);
        QueueStats {
            pending: (live.pending.max(0) as u64).saturating_sub(in_flight),
            in_flight,
            dead: live.dead.max(0) as u64,
            posted: live.posted.max(0) as u64,
            oldest_pending_age_ms: oldest_received_ms.map_or(0, |r| (now_ms - r).max(0)),
            read_rate_per_s,
            post_rate_per_s,
            enqueued_total: self.enqueued_total,
            delivered_total: self.delivered_total,
            refused_total: self.refused_total,
            commits_total: self.commits_total,
            uncertain_resends_total: self.uncertain_resends_total,
            store_ok: self.store_ok(),
            last_alarm_id: self.last_alarm_id(),
        }
    }

    pub(super) fn item_state(&self, id: i64, code: i64) -> ItemState {
        match code {
            STATE_DEAD => ItemState::Dead,
            STATE_POSTED => ItemState::Posted,
            _ if self.in_flight.contains(&id) => ItemState::InFlight,
            _ => ItemState::Pending,
        }
    }

    fn item_of(&self, row: &Row<'_>, steady_now_ms: i64) -> rusqlite::Result<QueuedItem> {
        let id: i64 = row.get(0)?;
        let state = self.item_state(id, row.get(3)?);
        let next_attempt_at_ms: i64 = row.get(6)?;
        let waiting = matches!(state, ItemState::Pending) && next_attempt_at_ms > steady_now_ms;
        Ok(QueuedItem {
            id,
            uid: row.get(1)?,
            source: row.get(2)?,
            state,
            attempts: row.get(4)?,
            last_error: row.get(5)?,
            // Due times are on the steady clock; shown on the wall clock.
            next_attempt_at_ms: waiting.then(|| now_ms() + (next_attempt_at_ms - steady_now_ms)),
            received_at_ms: row.get(7)?,
            raw: row.get(8)?,
            data: row
                .get::<_, Option<String>>(9)?
                .map(|text| film_data(id, &text)),
            sequence_uid: row.get(10)?,
            upstream_id: row
                .get::<_, Option<String>>(11)?
                .map(|text| json_value(&text)),
            accepted_by_hand: row.get::<_, i64>(12)? == super::admin::ACCEPTED_FRAGMENT,
        })
    }
}
