//! [`QueueStore`]: the queue's SQLite file and the SQL that moves items through it. Plain
//! rusqlite, no actix: the [`super::QueueActor`] owns one and decides *when* to commit.
//!
//! Data enters as [`NewItem`]s ([`QueueStore::enqueue`]) and outcomes ([`QueueStore::ack`]),
//! both written into one open transaction that [`QueueStore::commit`] closes (group commit).
//! It leaves as [`LeasedItem`]s ([`QueueStore::lease`]) and as [`QueuedItem`]s and counts for inspection.
//!
//! Rules the code keeps:
//! - Only committed rows are leased; a lease does not write. "In flight" lives in memory, so a
//!   restart makes every unacknowledged item pending again for free.
//! - Every write of the open transaction is also kept in `log` until its commit succeeds. When a
//!   commit fails (disk full, I/O error) the transaction is rolled back and the log is replayed
//!   by the next [`QueueStore::commit`]; meanwhile new frames are refused with
//!   [`QueueError::Store`] so the links hold them. Nothing acknowledged to a link is dropped.
//! - Memory does not grow with the backlog: counts are kept incrementally, leases and pages are
//!   bounded queries.
//!
//! The code by concern: this file holds the store, opening it and the write path (enqueue,
//! ack, commit); `writes` the write log with its replay and failure handling; `lease` what
//! the poster gets next; `admin` retrying and deleting dead items; `inspect` the views for
//! the inspection API; `rates` the read and post rates; `spc` judging the films written and
//! keeping SPC's charts, points and alarms.

mod admin;
mod inspect;
mod lease;
mod rates;
mod spc;
mod writes;

use self::rates::RateRing;
use self::writes::{StoreFailure, WriteOp};
use super::lock::QueueLock;
use super::schema::{
    check_integrity, configure, create_or_migrate, damaged_or, dir_error, sqlite_open_error,
};
use super::schema::{dead, pending, posted};
use super::space::SpaceReserve;
use super::{QueueConfig, QueueError};
use crate::changes::Changes;
use crate::messages::{EnqueueOutcome, Outcome};
use crate::record::{FilmData, NewItem, SequenceRef, now_ms};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// `items.state` as a number, from its SQL text (one digit).
const fn state(sql: &str) -> i64 {
    (sql.as_bytes()[0] - b'0') as i64
}
/// `items.state` of an item waiting to be posted (or in flight, which is not stored).
const STATE_PENDING: i64 = state(pending!());
/// `items.state` of an item that needs an operator (rejected frame, fragment, permanent 4xx).
const STATE_DEAD: i64 = state(dead!());
/// `items.state` of a delivered item kept for inspection.
const STATE_POSTED: i64 = state(posted!());

/// Sequence uids remembered before the cache is cleared (one per lot, so it stays tiny).
const SEQUENCE_CACHE_MAX: usize = 1024;

/// The durable queue in one SQLite file (WAL, `synchronous=FULL`).
pub struct QueueStore {
    /// The only connection to the file.
    conn: Connection,
    /// Keeps other filmgate processes off the file until [`QueueStore::release_lock`].
    lock: Option<QueueLock>,
    /// Space given back when the disk is full, so the WAL can be checkpointed.
    reserve: SpaceReserve,
    /// The file, for messages.
    path: String,
    /// Items (pending, in flight, dead) beyond which new frames are refused.
    max_items: u64,
    /// Delivered items kept for inspection.
    posted_history: u64,
    /// The open transaction (`BEGIN` ran, `COMMIT` not yet), if one is.
    tx: OpenTx,
    /// The writes of the open transaction, kept until its commit succeeds (replayed if it fails).
    log: Vec<WriteOp>,
    /// Committed counts by state (in-flight items are pending here).
    counts: StateCounts,
    /// Highest committed item id: fresh leases never go beyond it.
    committed_max_id: i64,
    /// Highest id handed out as a fresh (never attempted) item this run.
    fresh_cursor: i64,
    /// Leased items not yet acknowledged (memory only, by design).
    in_flight: HashSet<i64>,
    /// Sequence uid -> row id, so a lot's films do not each look their sequence up.
    sequence_ids: HashMap<String, i64>,
    /// Source -> the sequence given to films that arrived without one (a link's bug).
    orphan_sequences: HashMap<String, SequenceRef>,
    /// Set while the store is failing: commits are retried, new frames refused.
    failure: Option<StoreFailure>,
    /// A commit made items leasable since the last [`QueueStore::take_new_work`].
    new_work: bool,
    /// Frames accepted since start.
    enqueued_total: u64,
    /// Items delivered since start.
    delivered_total: u64,
    /// Frames refused since start because the queue was full.
    refused_total: u64,
    /// Transactions committed since start.
    commits_total: u64,
    /// Per-second counters behind the read and post rates.
    rates: RateRing,
    /// Signalled by every commit and lease (what the inspection views show has changed).
    changes: Changes,
    /// Items that became dead in committed transactions, not yet taken for the log.
    dead_notices: Vec<DeadNotice>,
    /// Pending items that may have been in flight when the last process died (its stop was
    /// not clean): posting one again is an uncertain resend.
    uncertain: HashSet<i64>,
    /// Items of `uncertain` leased again since start.
    uncertain_resends_total: u64,
    /// The committed `lease_limit` mark: fresh items above it are not leased until a higher
    /// one is committed, so after a crash every item that may have been in flight is known.
    lease_limit: i64,
    /// The `lease_limit` mark as last written (above `lease_limit` while its commit is due).
    lease_limit_written: i64,
    /// `handover:<link>` marks of the last graceful stop: link name -> port it stopped on at
    /// a record boundary.
    handovers: HashMap<String, String>,
    /// The queue file's device and inode when opened, to notice it replaced or removed.
    file_identity: Option<(u64, u64)>,
    /// Set once the file at `path` is not the one open (replaced or removed).
    replaced: Option<String>,
    /// The SPC charts of the watched fields ([`QueueStore::watch_spc`]).
    spc: spc::SpcCharts,
}

/// An item that became dead, for the one WARN line it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadNotice {
    pub id: i64,
    pub uid: String,
    pub source: String,
    pub reason: String,
}

/// What the open transaction holds besides its writes (they are in the store's `log`):
/// replaced whole when it commits or rolls back, so nothing of it is reset by hand.
#[derive(Debug, Default)]
struct OpenTx {
    /// When its first write came; `None`: no transaction is open.
    started: Option<Instant>,
    /// What it changes in the counts.
    delta: StateCounts,
    /// Highest item id it inserted.
    max_id: i64,
    /// Whether it makes items leasable (new films, revived dead items, a raised lease limit).
    new_work: bool,
    /// Items that became dead in it, told once it commits.
    dead: Vec<DeadNotice>,
}

impl OpenTx {
    fn is_open(&self) -> bool {
        self.started.is_some()
    }
}

/// Item counts by stored state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StateCounts {
    /// State 0, in flight included.
    pending: i64,
    /// State 2.
    dead: i64,
    /// State 3.
    posted: i64,
}

impl StateCounts {
    fn plus(self, d: StateCounts) -> StateCounts {
        StateCounts {
            pending: self.pending + d.pending,
            dead: self.dead + d.dead,
            posted: self.posted + d.posted,
        }
    }
}

impl QueueStore {
    /// Opens (creating if needed) the queue file at `cfg.path` and its directory.
    ///
    /// Any failure — an uncreatable directory, a read-only file or directory — is
    /// [`QueueError::Open`] naming the path; a file held by another process is
    /// [`QueueError::InUse`], and one that fails SQLite's integrity check is
    /// [`QueueError::Damaged`]. An older schema is upgraded in place.
    pub fn open(cfg: &QueueConfig) -> Result<QueueStore, QueueError> {
        let path = cfg.path.display().to_string();
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| QueueError::Open {
            path: path.clone(),
            source,
        };
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(dir_error(dir, e).into()))?;
        }
        let lock = QueueLock::acquire(&cfg.path)?;
        let conn =
            Connection::open(&cfg.path).map_err(|e| open_err(sqlite_open_error(&cfg.path, e)))?;
        configure(&conn)
            .map_err(|e| damaged_or(&path, e, |e| open_err(sqlite_open_error(&cfg.path, e))))?;
        check_integrity(&conn, &path)?;
        create_or_migrate(&conn).map_err(|e| open_err(sqlite_open_error(&cfg.path, e)))?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(open_err(
                "the file is read-only (check its permissions)".into(),
            ));
        }
        // Due times were kept on the last process's steady clock: all are due now.
        // (A failure, such as a full disk, only leaves them due later.)
        if let Err(e) = conn.execute(
            concat!(
                "UPDATE items SET next_attempt_at_ms = 1 WHERE state = ",
                pending!(),
                " AND next_attempt_at_ms > 1"
            ),
            [],
        ) {
            log::warn!("queue: {path}: waiting retries not made due at open: {e}");
        }
        let marks = take_marks(&conn, &path).map_err(|e| open_err(e.into()))?;
        let counts = load_counts(&conn).map_err(|e| open_err(e.into()))?;
        let committed_max_id: i64 = conn
            .query_row("SELECT coalesce(max(id), 0) FROM items", [], |r| r.get(0))
            .map_err(|e| open_err(e.into()))?;
        Ok(QueueStore {
            conn,
            lock: Some(lock),
            reserve: SpaceReserve::new(&cfg.path),
            path,
            max_items: cfg.max_items,
            posted_history: cfg.posted_history,
            tx: OpenTx::default(),
            log: Vec::new(),
            counts,
            committed_max_id,
            fresh_cursor: 0,
            in_flight: HashSet::new(),
            sequence_ids: HashMap::new(),
            orphan_sequences: HashMap::new(),
            failure: None,
            new_work: false,
            enqueued_total: 0,
            delivered_total: 0,
            refused_total: 0,
            commits_total: 0,
            rates: RateRing::new(now_ms()),
            changes: Changes::default(),
            dead_notices: Vec::new(),
            uncertain: marks.uncertain,
            uncertain_resends_total: 0,
            lease_limit: marks.lease_limit,
            lease_limit_written: marks.lease_limit,
            handovers: marks.handovers,
            file_identity: file_identity(&cfg.path),
            replaced: None,
            spc: spc::SpcCharts::default(),
        })
    }

    /// The port identity the last graceful stop left `link` on at a record boundary, if it
    /// did (the link starts at a record only if it opens that same port again).
    pub fn handover(&self, link: &str) -> Option<&str> {
        self.handovers.get(link).map(String::as_str)
    }

    /// Records a graceful stop in the open transaction (the final commit keeps it): which
    /// links stopped at a record boundary on which port, and whether every post had ended
    /// (`drained`), so the next process knows no item's outcome is unknown.
    pub fn mark_stop(&mut self, boundaries: Vec<(String, String)>, drained: bool) {
        for (link, port) in boundaries {
            self.write(WriteOp::Mark {
                name: format!("handover:{link}"),
                value: port,
            });
        }
        if drained {
            self.write(WriteOp::Mark {
                name: "clean_stop".into(),
                value: "1".into(),
            });
        }
    }

    /// The items that became dead in committed transactions since the last call.
    pub fn take_dead_notices(&mut self) -> Vec<DeadNotice> {
        std::mem::take(&mut self.dead_notices)
    }

    /// Checks that the file at the queue's path is still the one open; the first time it is
    /// not (replaced or removed while running), the answer says so.
    pub fn check_file(&mut self) -> Option<String> {
        if self.replaced.is_some() {
            return None;
        }
        let now = file_identity(std::path::Path::new(&self.path));
        if now.is_some() && now == self.file_identity {
            return None;
        }
        let what = if now.is_none() { "removed" } else { "replaced" };
        let message = format!(
            "the queue file {} was {what} while filmgate runs: new records are kept only in \
             the file still open (now unreachable by path) and are lost at the next start. \
             Stop filmgate, put the file back, and start it again",
            self.path
        );
        self.replaced = Some(message.clone());
        self.changes.notify();
        Some(message)
    }

    /// The newest sequence stored for `source` (a link name), so the link can continue it.
    pub fn last_sequence(&self, source: &str) -> Result<Option<SequenceRef>, QueueError> {
        let last = self
            .conn
            .query_row(
                "SELECT uid, key FROM sequences WHERE source = ?1 ORDER BY id DESC LIMIT 1",
                [source],
                |r| {
                    Ok(SequenceRef {
                        uid: r.get(0)?,
                        key: r.get(1)?,
                    })
                },
            )
            .optional()?;
        Ok(last)
    }

    /// Signalled by every commit and lease; take it before the store moves to its actor.
    pub fn change_signal(&self) -> Changes {
        self.changes.clone()
    }

    /// The queue file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the last commit succeeded (false while a failure is being retried) and the
    /// file open is still the one at the queue's path.
    pub fn store_ok(&self) -> bool {
        self.failure.is_none() && self.replaced.is_none()
    }

    /// The error the store is failing with, as text with its cause.
    pub fn failure_message(&self) -> Option<&str> {
        self.failure
            .as_ref()
            .map(|f| f.message.as_str())
            .or(self.replaced.as_deref())
    }

    /// Whether writes wait for a commit (including writes kept for replay after a failure).
    pub fn has_uncommitted(&self) -> bool {
        self.tx.is_open() || !self.log.is_empty()
    }

    /// Writes waiting for a commit.
    pub fn uncommitted_writes(&self) -> usize {
        self.log.len()
    }

    /// How long the open transaction has held its first write.
    pub fn uncommitted_age(&self) -> Option<Duration> {
        self.tx.started.map(|t| t.elapsed())
    }

    /// Whether a commit made items leasable since the last call (and resets it).
    pub fn take_new_work(&mut self) -> bool {
        std::mem::take(&mut self.new_work)
    }

    /// Whether committed pending items wait that are not in flight.
    pub fn has_leasable(&self) -> bool {
        self.counts.pending > self.in_flight.len() as i64
    }

    /// Writes `items` into the open transaction, in order, as far as `max_items` allows.
    ///
    /// Rejected frames become dead items. The answer is back-pressure, not durability: the
    /// items are safe after the next [`QueueStore::commit`]. While the store is failing, or if
    /// a write fails, nothing of this batch is taken and the answer is [`QueueError::Store`].
    pub fn enqueue(
        &mut self,
        items: Vec<NewItem>,
        now_ms: i64,
    ) -> Result<EnqueueOutcome, QueueError> {
        if let Some(f) = &self.failure {
            return Err(f.to_error());
        }
        let live = self.live_counts();
        let room = (self.max_items as i64 - live.pending - live.dead).max(0) as usize;
        let accepted = items.len().min(room);
        let refused = items.len() - accepted;
        let log_len = self.log.len();
        for item in items.into_iter().take(accepted) {
            match self.begin().and_then(|()| self.apply_insert(&item)) {
                Ok(()) => self.log.push(WriteOp::Insert(item)),
                Err(e) => {
                    // The whole batch is answered with an error, so none of it may be replayed.
                    self.log.truncate(log_len);
                    return Err(self.fail(e));
                }
            }
        }
        self.judge_films(log_len);
        self.enqueued_total += accepted as u64;
        self.refused_total += refused as u64;
        self.rates.add(now_ms, accepted as u64, 0);
        Ok(EnqueueOutcome { accepted, refused })
    }

    /// Records the outcome of posting leased items and ends their lease.
    ///
    /// Never loses an outcome: if the write fails it is kept and applied by the commit that
    /// succeeds (see [`QueueStore::store_ok`]).
    pub fn ack(&mut self, outcomes: Vec<(i64, Outcome)>, now_ms: i64) {
        let mut delivered = 0;
        for (id, outcome) in outcomes {
            self.in_flight.remove(&id);
            if matches!(outcome, Outcome::Delivered { .. }) {
                delivered += 1;
            }
            self.write(WriteOp::Ack {
                id,
                outcome,
                at_ms: now_ms,
            });
        }
        self.delivered_total += delivered;
        self.rates.add(now_ms, 0, delivered);
    }

    /// Stores the upstream id of a sequence (kept like [`QueueStore::ack`] if the write fails).
    pub fn sequence_posted(&mut self, sequence_id: i64, upstream_id: &Value) {
        let upstream_id = upstream_id.to_string();
        self.write(WriteOp::SequencePosted {
            sequence_id,
            upstream_id,
        });
    }

    /// Commits the open transaction (first trimming the posted history), or, while the store
    /// is failing, replays the kept writes in a new transaction and commits that.
    pub fn commit(&mut self) -> Result<(), QueueError> {
        if self.failure.is_some() {
            self.make_room();
            if let Err(e) = self.replay() {
                return Err(self.fail(e));
            }
        }
        if !self.tx.is_open() {
            return Ok(());
        }
        self.raise_lease_limit_for_new_items();
        self.write_dirty_charts();
        if let Err(e) = self
            .trim_posted()
            .and_then(|()| self.trim_spc())
            .and_then(|()| self.conn.prepare_cached("COMMIT")?.execute([]).map(drop))
        {
            return Err(self.fail(e));
        }
        self.commits_total += 1;
        self.spc_committed();
        self.counts = self.counts.plus(self.tx.delta);
        self.committed_max_id = self.committed_max_id.max(self.tx.max_id);
        self.lease_limit = self.lease_limit_written;
        self.new_work |= self.tx.new_work;
        self.failure = None;
        self.dead_notices.append(&mut self.tx.dead);
        self.reset_tx();
        self.reserve.restore_if_due();
        self.changes.notify();
        Ok(())
    }

    /// Lets another process open the file (after the last commit of a shutdown; the store must
    /// not be written after this).
    pub fn release_lock(&mut self) {
        self.lock = None;
    }

    /// The raw bytes of every frame a failing store holds only in memory (none while it is
    /// healthy): what a stop now would lose.
    pub fn unkept_frames(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.log
            .iter()
            .filter(|_| self.failure.is_some())
            .filter_map(|op| match op {
                WriteOp::Insert(item) => Some((item.uid.as_str(), item.raw.as_slice())),
                _ => None,
            })
    }

    // ---- private helpers -------------------------------------------------------------------

    /// Committed counts plus what the open transaction changes.
    fn live_counts(&self) -> StateCounts {
        self.counts.plus(self.tx.delta)
    }
}

/// What the marks of the last process say (see [`super::schema::SCHEMA`]).
struct Marks {
    lease_limit: i64,
    uncertain: HashSet<i64>,
    handovers: HashMap<String, String>,
}

/// The mark that bounds fresh leases (see [`QueueStore::lease`]).
pub(super) const LEASE_LIMIT_MARK: &str = "lease_limit";

/// Most items remembered as uncertain after a crash (a few leases' worth in practice).
const UNCERTAIN_MAX: i64 = 100_000;

/// Reads the marks and deletes the one-time ones (`clean_stop`, `handover:*`) at once, so a
/// crash of this process cannot pass for a clean stop. If they cannot be deleted (a full
/// disk), they are not trusted.
fn take_marks(conn: &Connection, path: &str) -> rusqlite::Result<Marks> {
    let mut marks: HashMap<String, String> = conn
        .prepare("SELECT name, value FROM marks")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let lease_limit = marks
        .remove(LEASE_LIMIT_MARK)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let deleted = conn.execute("DELETE FROM marks WHERE name <> ?1", [LEASE_LIMIT_MARK]);
    if let Err(e) = &deleted {
        log::warn!("queue: {path}: the last stop's marks cannot be cleared ({e}); not used");
    }
    let trusted = deleted.is_ok();
    let clean_stop = trusted && marks.remove("clean_stop").is_some();
    let handovers = marks
        .into_iter()
        .filter(|_| trusted)
        .filter_map(|(name, port)| Some((name.strip_prefix("handover:")?.to_owned(), port)))
        .collect();
    // Every item that may have been in flight: fresh ones up to the lease limit, and any
    // item a retry was due for (revived ones included, whatever their id).
    let uncertain = if clean_stop {
        HashSet::new()
    } else {
        conn.prepare(
            "SELECT id FROM items WHERE state = ?1 AND (id <= ?2 OR next_attempt_at_ms > 0)
             ORDER BY id LIMIT ?3",
        )?
        .query_map(params![STATE_PENDING, lease_limit, UNCERTAIN_MAX], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    Ok(Marks {
        lease_limit,
        uncertain,
        handovers,
    })
}

/// Device and inode of the file at `path`, if it exists.
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn load_counts(conn: &Connection) -> rusqlite::Result<StateCounts> {
    let mut counts = StateCounts::default();
    let mut stmt = conn.prepare("SELECT state, count(*) FROM items GROUP BY state")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let n: i64 = row.get(1)?;
        match row.get::<_, i64>(0)? {
            STATE_DEAD => counts.dead += n,
            STATE_POSTED => counts.posted += n,
            _ => counts.pending += n,
        }
    }
    Ok(counts)
}

fn json_text(data: &FilmData) -> String {
    // Serialising a map of JSON values cannot fail.
    serde_json::to_string(data).unwrap_or_default()
}

/// Stored JSON text as a value; text that is not JSON (written by hand) is kept as a string.
fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn film_data(id: i64, text: &str) -> FilmData {
    match serde_json::from_str(text) {
        Ok(data) => data,
        Err(e) => {
            log::warn!("queue item {id}: stored data is not a JSON object ({e}); using no fields");
            FilmData::new()
        }
    }
}

/// A leased film's stored data as the JSON object text it is (checked, not parsed into a
/// map): none, or text that is not a JSON object (written by hand), is an empty object.
fn leased_data(id: i64, text: Option<String>) -> Box<RawValue> {
    let empty = || RawValue::from_string("{}".to_owned()).unwrap_or_default();
    let Some(text) = text else { return empty() };
    let problem = match RawValue::from_string(text) {
        Ok(data) if data.get().starts_with('{') => return data,
        Ok(data) => data.to_string(),
        Err(e) => e.to_string(),
    };
    log::warn!("queue item {id}: stored data is not a JSON object ({problem}); using no fields");
    empty()
}

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;
