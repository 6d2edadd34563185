//! [`QueueStore`]: the durable queue in one SQLite file (WAL, `synchronous=FULL`). Plain
//! rusqlite code, no actix; the [`super::QueueActor`] decides when to commit.
//!
//! Writes go into one open transaction that the owner commits in groups. Items are `pending`
//! (0), `dead` (2) or `posted` (3) on disk; *in flight* exists only in memory, so a crash or
//! restart makes every unacknowledged item pending again without a write per lease.
//! Fresh items are leased through a cursor over the primary key, retries through a partial
//! index on their due time, so a lease never scans the backlog and memory never holds it.

use super::config::QueueConfig;
use super::error::QueueError;
use crate::messages::{
    EnqueueOutcome, ItemState, ItemView, LeasedItem, LeasedSequence, Outcome, QueueStats,
};
use crate::record::{FilmData, ItemBody, NewItem, SequenceRef, new_uid, now_ms, rfc3339_ms};
use crate::serial::RecordConfig;
use crate::serial::parse::{parse_frame, sequence_key_value};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

const PENDING: i64 = 0;
const DEAD: i64 = 2;
const POSTED: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sequences (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    key TEXT,
    upstream_id TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
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
    posted_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS items_state_id ON items(state, id);
CREATE INDEX IF NOT EXISTS items_due_retries ON items(next_attempt_at_ms)
    WHERE state = 0 AND next_attempt_at_ms > 0;
";

const LEASE_COLUMNS: &str = "i.id, i.uid, i.source, i.received_at_ms, i.raw, i.data, i.attempts,
    s.id, s.uid, s.source, s.key, s.upstream_id FROM items i JOIN sequences s ON s.id = i.sequence_id";

const VIEW_COLUMNS: &str = "i.id, i.uid, i.source, i.state, i.attempts, i.last_error,
    i.next_attempt_at_ms, i.received_at_ms, i.raw, i.data, s.uid, i.upstream_id
    FROM items i LEFT JOIN sequences s ON s.id = i.sequence_id";

/// Items on disk by state (pending includes those in flight).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    pending: u64,
    dead: u64,
    posted: u64,
}

/// The queue file and the in-memory lease state.
pub struct QueueStore {
    conn: Connection,
    /// Delivered items kept for inspection.
    posted_history: u64,
    /// Pending + dead beyond which new frames are refused.
    max_items: u64,
    /// A transaction is open.
    in_tx: bool,
    /// Highest item id inserted (committed or not).
    last_inserted_id: i64,
    /// Highest item id known committed; fresh leases stop there.
    committed_max_id: i64,
    /// Fresh items up to this id were handed out (or skipped) this run.
    fresh_cursor: i64,
    /// Leased and not yet acked.
    in_flight: HashSet<i64>,
    /// Sequence uid -> row id, for the sequences seen recently.
    sequence_ids: HashMap<String, i64>,
    counts: Counts,
}

impl QueueStore {
    /// Opens (creating if needed) the queue file at `cfg.path`.
    pub fn open(cfg: &QueueConfig) -> Result<QueueStore, QueueError> {
        let path = cfg.path.display().to_string();
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| QueueError::Open {
            path: path.clone(),
            source,
        };
        if let Some(parent) = cfg.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_err(Box::new(e)))?;
        }
        let conn = Connection::open(&cfg.path).map_err(|e| open_err(Box::new(e)))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(|e| open_err(Box::new(e)))?;
        let mut store = QueueStore {
            conn,
            posted_history: cfg.posted_history,
            max_items: cfg.max_items,
            in_tx: false,
            last_inserted_id: 0,
            committed_max_id: 0,
            fresh_cursor: 0,
            in_flight: HashSet::new(),
            sequence_ids: HashMap::new(),
            counts: Counts::default(),
        };
        store.reload_counts()?;
        Ok(store)
    }

    /// Re-reads the counts and the highest id from disk (at open, and after a rollback).
    fn reload_counts(&mut self) -> Result<(), QueueError> {
        let mut counts = Counts::default();
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM items GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?)))?;
        for row in rows {
            match row? {
                (PENDING, n) => counts.pending = n,
                (DEAD, n) => counts.dead = n,
                (POSTED, n) => counts.posted = n,
                _ => {}
            }
        }
        drop(stmt);
        self.counts = counts;
        let max: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM items", [], |r| r.get(0))?;
        self.last_inserted_id = max;
        self.committed_max_id = max;
        Ok(())
    }

    fn begin(&mut self) -> Result<(), QueueError> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN")?;
            self.in_tx = true;
        }
        Ok(())
    }

    /// Whether a transaction holds uncommitted writes.
    pub fn has_uncommitted(&self) -> bool {
        self.in_tx
    }

    /// Commits the open transaction; afterwards its items can be leased.
    pub fn commit(&mut self) -> Result<(), QueueError> {
        if self.in_tx {
            self.conn.execute_batch("COMMIT")?;
            self.in_tx = false;
            self.committed_max_id = self.last_inserted_id;
            self.trim_posted()?;
        }
        Ok(())
    }

    /// Abandons the open transaction (after a failed commit) and re-reads the state from disk.
    /// Leases are re-scanned from the start; the in-flight set keeps them from being doubled.
    pub fn rollback(&mut self) -> Result<(), QueueError> {
        if self.in_tx {
            self.in_tx = false;
            if !self.conn.is_autocommit() {
                self.conn.execute_batch("ROLLBACK")?;
            }
        }
        self.fresh_cursor = 0;
        self.sequence_ids.clear();
        self.reload_counts()
    }

    /// Writes items to the open transaction; films as pending, rejected frames as dead.
    /// Items beyond `max_items` are refused.
    pub fn insert(&mut self, items: &[NewItem]) -> Result<EnqueueOutcome, QueueError> {
        let room = self
            .max_items
            .saturating_sub(self.counts.pending + self.counts.dead) as usize;
        let accepted = items.len().min(room);
        if accepted == 0 {
            return Ok(EnqueueOutcome {
                accepted: 0,
                refused: items.len(),
            });
        }
        self.begin()?;
        for item in &items[..accepted] {
            let sequence_id = match &item.sequence {
                Some(seq) => Some(self.sequence_id(&item.source, seq)?),
                None => None,
            };
            let (state, error, data) = match &item.body {
                ItemBody::Film(data) => {
                    (PENDING, None, Some(Value::Object(data.clone()).to_string()))
                }
                ItemBody::Rejected { reason } => (DEAD, Some(reason.as_str()), None),
            };
            self.conn
                .prepare_cached(
                    "INSERT INTO items (uid, source, sequence_id, state, last_error, received_at_ms, raw, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![item.uid, item.source, sequence_id, state, error, item.received_at_ms, item.raw, data])?;
            self.last_inserted_id = self.conn.last_insert_rowid();
            if state == PENDING {
                self.counts.pending += 1;
            } else {
                self.counts.dead += 1;
            }
        }
        Ok(EnqueueOutcome {
            accepted,
            refused: items.len() - accepted,
        })
    }

    /// The row id of a sequence, inserting it on first sight.
    fn sequence_id(&mut self, source: &str, seq: &SequenceRef) -> Result<i64, QueueError> {
        if let Some(id) = self.sequence_ids.get(&seq.uid) {
            return Ok(*id);
        }
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO sequences (uid, source, key, created_at_ms) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![seq.uid, source, seq.key, now_ms()])?;
        let id: i64 = self
            .conn
            .prepare_cached("SELECT id FROM sequences WHERE uid = ?1")?
            .query_row([&seq.uid], |r| r.get(0))?;
        if self.sequence_ids.len() >= 1024 {
            self.sequence_ids.clear();
        }
        self.sequence_ids.insert(seq.uid.clone(), id);
        Ok(id)
    }

    /// Up to `max_items` committed, due items not in flight: due retries first, then fresh
    /// items, each oldest first. They are in flight until acked.
    pub fn lease(&mut self, max_items: usize, now_ms: i64) -> Result<Vec<LeasedItem>, QueueError> {
        let mut leased = Vec::with_capacity(max_items);
        let extra = self.in_flight.len().min(10_000);
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {LEASE_COLUMNS} WHERE i.state = 0 AND i.next_attempt_at_ms > 0
                 AND i.next_attempt_at_ms <= ?1 ORDER BY i.id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![now_ms, (max_items + extra) as i64], leased_item)?;
            for row in rows {
                let item = row?;
                if leased.len() < max_items && !self.in_flight.contains(&item.id) {
                    leased.push(item);
                }
            }
        }
        if leased.len() < max_items && self.fresh_cursor < self.committed_max_id {
            let want = max_items - leased.len();
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {LEASE_COLUMNS} WHERE i.state = 0 AND i.next_attempt_at_ms = 0
                 AND i.id > ?1 AND i.id <= ?2 ORDER BY i.id LIMIT ?3"
            ))?;
            let rows: Vec<LeasedItem> = stmt
                .query_map(
                    params![self.fresh_cursor, self.committed_max_id, want as i64],
                    leased_item,
                )?
                .collect::<Result<_, _>>()?;
            self.fresh_cursor = match rows.last() {
                Some(last) if rows.len() == want => last.id,
                _ => self.committed_max_id,
            };
            leased.extend(rows.into_iter().filter(|i| !self.in_flight.contains(&i.id)));
        }
        self.in_flight.extend(leased.iter().map(|i| i.id));
        Ok(leased)
    }

    /// Ends leases with their outcomes (in the open transaction). Returns how many delivered.
    pub fn ack(&mut self, outcomes: &[(i64, Outcome)], now_ms: i64) -> Result<u64, QueueError> {
        self.begin()?;
        let mut delivered = 0;
        for (id, outcome) in outcomes {
            self.in_flight.remove(id);
            let changed = match outcome {
                Outcome::Delivered { upstream_id } => {
                    let upstream_id = upstream_id.as_ref().map(Value::to_string);
                    let n = self
                        .conn
                        .prepare_cached(
                            "UPDATE items SET state = 3, upstream_id = ?2, posted_at_ms = ?3,
                             attempts = attempts + 1, last_error = NULL, next_attempt_at_ms = 0
                             WHERE id = ?1 AND state = 0",
                        )?
                        .execute(params![id, upstream_id, now_ms])?;
                    if n > 0 {
                        self.counts.pending -= 1;
                        self.counts.posted += 1;
                        delivered += 1;
                    }
                    n
                }
                Outcome::Retry { error, delay_ms } => self
                    .conn
                    .prepare_cached(
                        "UPDATE items SET attempts = attempts + 1, last_error = ?2, next_attempt_at_ms = ?3
                         WHERE id = ?1 AND state = 0",
                    )?
                    .execute(params![id, error, now_ms + (*delay_ms as i64).max(1)])?,
                Outcome::Dead { error } => {
                    let n = self
                        .conn
                        .prepare_cached(
                            "UPDATE items SET state = 2, attempts = attempts + 1, last_error = ?2
                             WHERE id = ?1 AND state = 0",
                        )?
                        .execute(params![id, error])?;
                    if n > 0 {
                        self.counts.pending -= 1;
                        self.counts.dead += 1;
                    }
                    n
                }
            };
            if changed == 0 {
                log::warn!("queue: ack for item {id}, which is no longer pending");
            }
        }
        Ok(delivered)
    }

    /// Stores a sequence's upstream id (in the open transaction).
    pub fn set_sequence_upstream_id(
        &mut self,
        sequence_id: i64,
        upstream_id: &Value,
    ) -> Result<(), QueueError> {
        self.begin()?;
        self.conn
            .prepare_cached("UPDATE sequences SET upstream_id = ?2 WHERE id = ?1")?
            .execute(params![sequence_id, upstream_id.to_string()])?;
        Ok(())
    }

    /// Deletes the oldest posted items beyond `posted_history` (with 1% slack).
    fn trim_posted(&mut self) -> Result<(), QueueError> {
        let slack = self.posted_history / 100 + 100;
        if self.counts.posted <= self.posted_history + slack {
            return Ok(());
        }
        let excess = self.counts.posted - self.posted_history;
        let n = self.conn.execute(
            "DELETE FROM items WHERE id IN (SELECT id FROM items WHERE state = 3 ORDER BY id LIMIT ?1)",
            [excess as i64],
        )?;
        self.counts.posted -= n as u64;
        Ok(())
    }

    /// Makes a dead item pending again, re-parsing its frame with `parsers[source]`.
    /// A frame that still does not parse stays dead with the new reason.
    pub fn retry_dead(
        &mut self,
        id: i64,
        parsers: &HashMap<String, RecordConfig>,
    ) -> Result<ItemView, QueueError> {
        let (state, source, raw, sequence_id): (i64, String, Vec<u8>, Option<i64>) = self
            .conn
            .query_row(
                "SELECT state, source, raw, sequence_id FROM items WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or(QueueError::NotFound(id))?;
        if state != DEAD {
            return Err(QueueError::NotDead {
                id,
                state: self.state_of(id, state).as_str(),
            });
        }
        self.begin()?;
        let parsed = match parsers.get(&source) {
            Some(cfg) => parse_frame(cfg, &raw).map(|data| (cfg, data)),
            None => Err(format!("no [[serial]] named {source} to parse it with")),
        };
        match parsed {
            Ok((cfg, data)) => {
                let sequence_id = match sequence_id {
                    Some(s) => s,
                    None => {
                        let key = sequence_key_value(cfg, &data);
                        self.sequence_id(
                            &source,
                            &SequenceRef {
                                uid: new_uid(),
                                key,
                            },
                        )?
                    }
                };
                self.conn.execute(
                    "UPDATE items SET state = 0, data = ?2, last_error = NULL, next_attempt_at_ms = ?3,
                     sequence_id = ?4 WHERE id = ?1",
                    params![id, Value::Object(data).to_string(), now_ms().max(1), sequence_id],
                )?;
                self.counts.dead -= 1;
                self.counts.pending += 1;
            }
            Err(reason) => {
                self.conn.execute(
                    "UPDATE items SET last_error = ?2 WHERE id = ?1",
                    params![id, reason],
                )?;
            }
        }
        self.get(id)
    }

    /// Ids of every dead item, oldest first.
    pub fn dead_ids(&self) -> Result<Vec<i64>, QueueError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM items WHERE state = 2 ORDER BY id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Deletes a dead item.
    pub fn delete_dead(&mut self, id: i64) -> Result<(), QueueError> {
        let view = self.get(id)?;
        if view.state != ItemState::Dead {
            return Err(QueueError::NotDead {
                id,
                state: view.state.as_str(),
            });
        }
        self.begin()?;
        self.conn
            .execute("DELETE FROM items WHERE id = ?1 AND state = 2", [id])?;
        self.counts.dead -= 1;
        Ok(())
    }

    fn state_of(&self, id: i64, state: i64) -> ItemState {
        match state {
            DEAD => ItemState::Dead,
            POSTED => ItemState::Posted,
            _ if self.in_flight.contains(&id) => ItemState::InFlight,
            _ => ItemState::Pending,
        }
    }

    /// One item as the API shows it.
    pub fn get(&self, id: i64) -> Result<ItemView, QueueError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {VIEW_COLUMNS} WHERE i.id = ?1"))?;
        stmt.query_row([id], |r| self.view(r))
            .optional()?
            .ok_or(QueueError::NotFound(id))
    }

    /// A page of items, newest first, and the count for the filter.
    pub fn list(
        &self,
        state: Option<ItemState>,
        limit: usize,
        offset: usize,
    ) -> Result<(u64, Vec<ItemView>), QueueError> {
        if state == Some(ItemState::InFlight) {
            let mut ids: Vec<i64> = self.in_flight.iter().copied().collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            let page = ids
                .iter()
                .skip(offset)
                .take(limit)
                .map(|&id| self.get(id))
                .collect::<Result<_, _>>()?;
            return Ok((ids.len() as u64, page));
        }
        let (filter, count) = match state {
            None => (
                "",
                self.counts.pending + self.counts.dead + self.counts.posted,
            ),
            Some(ItemState::Pending) => ("WHERE i.state = 0", self.counts.pending),
            Some(ItemState::Dead) => ("WHERE i.state = 2", self.counts.dead),
            Some(_) => ("WHERE i.state = 3", self.counts.posted),
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {VIEW_COLUMNS} {filter} ORDER BY i.id DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let page = stmt
            .query_map(params![limit as i64, offset as i64], |r| self.view(r))?
            .collect::<Result<_, _>>()?;
        Ok((count, page))
    }

    /// Counts by state and the oldest pending age (rates and totals are the actor's).
    pub fn stats(&self, now_ms: i64) -> Result<QueueStats, QueueError> {
        let oldest: Option<i64> = self
            .conn
            .prepare_cached("SELECT received_at_ms FROM items WHERE state = 0 ORDER BY id LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        let in_flight = self.in_flight.len() as u64;
        Ok(QueueStats {
            pending: self.counts.pending.saturating_sub(in_flight),
            in_flight,
            dead: self.counts.dead,
            posted: self.counts.posted,
            oldest_pending_age_ms: oldest.map_or(0, |t| (now_ms - t).max(0)),
            store_ok: true,
            ..QueueStats::default()
        })
    }

    fn view(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemView> {
        let id: i64 = r.get(0)?;
        let raw: Vec<u8> = r.get(8)?;
        let (raw, raw_hex) = match String::from_utf8(raw) {
            Ok(text) => (text, None),
            Err(e) => {
                let bytes = e.into_bytes();
                let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
                (String::from_utf8_lossy(&bytes).into_owned(), Some(hex))
            }
        };
        let next: i64 = r.get(6)?;
        Ok(ItemView {
            id,
            uid: r.get(1)?,
            source: r.get(2)?,
            state: self.state_of(id, r.get(3)?),
            attempts: r.get(4)?,
            last_error: r.get(5)?,
            next_attempt_at: (next > 0).then(|| rfc3339_ms(next)),
            received_at: rfc3339_ms(r.get(7)?),
            raw,
            raw_hex,
            data: r
                .get::<_, Option<String>>(9)?
                .and_then(|d| serde_json::from_str(&d).ok()),
            sequence_uid: r.get(10)?,
            upstream_id: r
                .get::<_, Option<String>>(11)?
                .and_then(|u| serde_json::from_str(&u).ok()),
        })
    }
}

fn leased_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<LeasedItem> {
    let raw: Vec<u8> = r.get(4)?;
    let data: Option<String> = r.get(5)?;
    let upstream_id: Option<String> = r.get(11)?;
    Ok(LeasedItem {
        id: r.get(0)?,
        uid: r.get(1)?,
        source: r.get(2)?,
        received_at_ms: r.get(3)?,
        raw: String::from_utf8_lossy(&raw).into_owned(),
        data: data
            .and_then(|d| serde_json::from_str::<FilmData>(&d).ok())
            .unwrap_or_default(),
        attempts: r.get(6)?,
        sequence: LeasedSequence {
            id: r.get(7)?,
            uid: r.get(8)?,
            source: r.get(9)?,
            key: r.get(10)?,
            upstream_id: upstream_id.and_then(|u| serde_json::from_str(&u).ok()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FilmData;
    use serde_json::json;

    fn cfg(dir: &tempfile::TempDir) -> QueueConfig {
        QueueConfig {
            path: dir.path().join("q.sqlite3"),
            max_items: 100,
            posted_history: 2,
            ..Default::default()
        }
    }

    fn film(n: u64) -> NewItem {
        let data: FilmData = serde_json::from_value(json!({"lot": "A", "film_no": n})).unwrap();
        NewItem {
            uid: format!("u{n}"),
            source: "line-1".into(),
            received_at_ms: 1000 + n as i64,
            raw: format!("A,{n}").into_bytes(),
            body: ItemBody::Film(data),
            sequence: Some(SequenceRef {
                uid: "s1".into(),
                key: Some("A".into()),
            }),
        }
    }

    #[test]
    fn leases_see_only_committed_items_in_order_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = QueueStore::open(&cfg(&dir)).unwrap();
        store.insert(&[film(1), film(2), film(3)]).unwrap();
        assert!(
            store.lease(10, 0).unwrap().is_empty(),
            "uncommitted items are not leased"
        );
        store.commit().unwrap();
        let first = store.lease(2, 0).unwrap();
        assert_eq!(
            first.iter().map(|i| i.uid.as_str()).collect::<Vec<_>>(),
            ["u1", "u2"]
        );
        assert_eq!(first[0].sequence.uid, "s1");
        let rest = store.lease(10, 0).unwrap();
        assert_eq!(rest.len(), 1);
        assert!(store.lease(10, 0).unwrap().is_empty());
        assert_eq!(store.stats(0).unwrap().in_flight, 3);
    }

    #[test]
    fn outcomes_move_items_and_retries_wait_for_their_delay() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = QueueStore::open(&cfg(&dir)).unwrap();
        store.insert(&[film(1), film(2), film(3)]).unwrap();
        store.commit().unwrap();
        let leased = store.lease(3, 0).unwrap();
        let outcomes = vec![
            (
                leased[0].id,
                Outcome::Delivered {
                    upstream_id: Some(json!(41)),
                },
            ),
            (
                leased[1].id,
                Outcome::Retry {
                    error: "HTTP 503".into(),
                    delay_ms: 1000,
                },
            ),
            (
                leased[2].id,
                Outcome::Dead {
                    error: "HTTP 400: no".into(),
                },
            ),
        ];
        assert_eq!(store.ack(&outcomes, 5000).unwrap(), 1);
        store.commit().unwrap();
        assert!(
            store.lease(10, 5999).unwrap().is_empty(),
            "retry not yet due"
        );
        let again = store.lease(10, 6000).unwrap();
        assert_eq!(
            (again.len(), again[0].uid.as_str(), again[0].attempts),
            (1, "u2", 1)
        );
        let stats = store.stats(0).unwrap();
        assert_eq!(
            (stats.pending, stats.in_flight, stats.dead, stats.posted),
            (0, 1, 1, 1)
        );
        assert_eq!(
            store.get(leased[0].id).unwrap().upstream_id,
            Some(json!(41))
        );
    }

    #[test]
    fn a_restart_makes_unacked_leases_pending_and_keeps_dead_and_posted() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = QueueStore::open(&cfg(&dir)).unwrap();
        store.insert(&[film(1), film(2)]).unwrap();
        store.commit().unwrap();
        let leased = store.lease(2, 0).unwrap();
        store
            .ack(
                &[(leased[0].id, Outcome::Delivered { upstream_id: None })],
                1,
            )
            .unwrap();
        store
            .set_sequence_upstream_id(leased[0].sequence.id, &json!(7))
            .unwrap();
        store.commit().unwrap();
        drop(store);
        let mut store = QueueStore::open(&cfg(&dir)).unwrap();
        let again = store.lease(10, 0).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].uid, "u2");
        assert_eq!(again[0].sequence.upstream_id, Some(json!(7)));
        assert_eq!(store.stats(0).unwrap().posted, 1);
    }

    #[test]
    fn rejected_frames_are_dead_and_a_retry_reparses_them_with_the_current_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = QueueStore::open(&cfg(&dir)).unwrap();
        let bad = NewItem {
            raw: b"A,1,extra".to_vec(),
            body: ItemBody::Rejected {
                reason: "expected 2 fields".into(),
            },
            sequence: None,
            ..film(9)
        };
        store.insert(&[bad]).unwrap();
        store.commit().unwrap();
        let id = store.dead_ids().unwrap()[0];
        let two = RecordConfig {
            fields: vec!["lot".into(), "n".into()],
            sequence_key: "lot".into(),
            ..RecordConfig::default()
        };
        let mut parsers = HashMap::from([("line-1".to_owned(), two)]);
        let still = store.retry_dead(id, &parsers).unwrap();
        assert_eq!(still.state, ItemState::Dead);
        assert!(still.last_error.unwrap().contains("expected 2 fields"));
        parsers.get_mut("line-1").unwrap().fields.push("x".into());
        let now = store.retry_dead(id, &parsers).unwrap();
        assert_eq!(now.state, ItemState::Pending);
        assert_eq!(now.data.unwrap()["x"], "extra");
        store.commit().unwrap();
        let leased = store.lease(10, now_ms()).unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].sequence.key.as_deref(), Some("A"));
        assert!(matches!(
            store.retry_dead(id, &parsers),
            Err(QueueError::NotDead { .. })
        ));
        assert!(matches!(
            store.delete_dead(id),
            Err(QueueError::NotDead { .. })
        ));
    }

    #[test]
    fn max_items_refuses_the_rest_and_posted_history_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(&dir);
        c.max_items = 150;
        c.posted_history = 10;
        let mut store = QueueStore::open(&c).unwrap();
        let items: Vec<NewItem> = (1..=200).map(film).collect();
        let outcome = store.insert(&items).unwrap();
        assert_eq!((outcome.accepted, outcome.refused), (150, 50));
        store.commit().unwrap();
        let leased = store.lease(150, 0).unwrap();
        let acks: Vec<_> = leased
            .iter()
            .map(|i| (i.id, Outcome::Delivered { upstream_id: None }))
            .collect();
        store.ack(&acks, 0).unwrap();
        store.commit().unwrap();
        assert_eq!(store.stats(0).unwrap().posted, 10);
        assert_eq!(store.insert(&[film(300)]).unwrap().accepted, 1);
    }

    #[test]
    fn a_path_under_a_regular_file_is_an_open_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let c = QueueConfig {
            path: dir.path().join("file/q.sqlite3"),
            ..Default::default()
        };
        let err = QueueStore::open(&c).err().unwrap().to_string();
        assert!(
            err.contains("cannot open the queue") && err.contains("file/q.sqlite3"),
            "{err}"
        );
    }
}
