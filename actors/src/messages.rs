//! The typed mailbox vocabulary: every message an actor accepts, the views it answers with, and
//! the queue's error ([`QueueError`]) its answers carry.
//!
//! Stages send with `send().await` (or `try_send`) so a full mailbox pushes back; the poster
//! sends its [`Ack`]s with `do_send` (bounded by its requests in flight, and the queue keeps
//! every one, so there is nothing to wait for), and [`WorkAvailable`] is a droppable notice.

use crate::record::{FilmData, NewItem};
use actix::prelude::*;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

// ---- the queue's error ------------------------------------------------------------------

/// What can go wrong with the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue file could not be created or opened (path, directory, permissions, disk).
    #[error("cannot open the queue at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process holds the queue file (one filmgate per queue file).
    #[error(
        "queue {path} is in use by another filmgate{}; give each process its own queue.path",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    InUse { path: String, pid: Option<u32> },
    /// The integrity check at open failed: the file is damaged.
    #[error(
        "queue {path} is damaged ({detail}). filmgate will not run on it: a damaged queue can \
         re-send delivered records or lose pending ones. Stop filmgate, move {path} and its -wal \
         and -shm files aside, recover what is readable with \
         `sqlite3 DAMAGED.sqlite3 .recover | sqlite3 {path}`, and start again (the records \
         service answers re-sent uids as replays); or start on a new empty queue file"
    )]
    Damaged { path: String, detail: String },
    /// A SQLite operation failed (disk full, I/O error, corruption).
    #[error("queue store failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// No item with this id.
    #[error("no queue item with id {0}")]
    NotFound(i64),
    /// The operation needs a dead item and this one is not dead.
    #[error("queue item {id} is {state}, not dead")]
    NotDead { id: i64, state: &'static str },
    /// Accept takes a dead fragment; this dead item is a frame that did not parse (retry it).
    #[error("queue item {0} is not a fragment; retry it instead")]
    NotFragment(i64),
}

// ---- serial link -> queue ----------------------------------------------------------------

/// Frames read from one link, to be written to the queue in the next group commit.
///
/// Answered once the items are in the open transaction (not yet committed): the answer is
/// back-pressure, not durability. Items beyond `queue.max_items` are refused and counted.
#[derive(Message, Debug)]
#[rtype(result = "Result<EnqueueOutcome, QueueError>")]
pub struct Enqueue {
    /// The items, in read order.
    pub items: Vec<NewItem>,
}

/// How many items of an [`Enqueue`] were taken and how many were refused (queue full).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnqueueOutcome {
    /// Items written to the open transaction.
    pub accepted: usize,
    /// Items refused because the queue holds `max_items` already.
    pub refused: usize,
}

// ---- queue <-> poster --------------------------------------------------------------------

/// Notice from the queue to its subscriber that committed items are ready to lease.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct WorkAvailable;

/// Registers the recipient of [`WorkAvailable`] notices (the poster).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<WorkAvailable>);

/// Asks the queue for up to `max_items` committed items that are due, oldest first.
/// Leased items are in flight until an [`Ack`] names them (in memory only: a restart makes
/// them pending again).
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<LeasedItem>, QueueError>")]
pub struct Lease {
    /// The most items to return.
    pub max_items: usize,
}

/// [`Lease`] for the poster: when nothing is leasable the queue keeps the request and answers
/// it with the first commit (or due retry) that makes items leasable, so a waiting poster is
/// neither told nor asks again. One is kept at a time: a second answers the first with nothing,
/// as does [`CancelLease`].
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<LeasedItem>, QueueError>")]
pub struct AwaitLease {
    /// The most items to return.
    pub max_items: usize,
}

/// Answers a kept [`AwaitLease`] with nothing (the poster drains).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CancelLease;

/// A film handed to the poster.
#[derive(Debug, Clone)]
pub struct LeasedItem {
    /// Queue row id.
    pub id: i64,
    /// The item's uid (`uid` in the body, `Idempotency-Key` header).
    pub uid: String,
    /// The link it was read from.
    pub source: String,
    /// When its last byte was read, epoch milliseconds.
    pub received_at_ms: i64,
    /// The frame as text (films are valid UTF-8 by construction).
    pub raw: String,
    /// The parsed fields, as the JSON object text stored at enqueue: passed on to the body
    /// as it is, not parsed again.
    pub data: Box<RawValue>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The film's sequence (one shared by the films of a lease that belong to it).
    pub sequence: Arc<LeasedSequence>,
}

impl LeasedItem {
    /// The data's fields as a map (parsed from the stored text; not a JSON object: none).
    pub fn fields(&self) -> FilmData {
        serde_json::from_str(self.data.get()).unwrap_or_default()
    }
}

/// The sequence of a leased film, with its upstream id once known.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedSequence {
    /// Local row id in the queue store's `sequences` table.
    pub id: i64,
    /// Local uid.
    pub uid: String,
    /// The link it belongs to.
    pub source: String,
    /// The key value that started it, if any.
    pub key: Option<String>,
    /// The id the upstream gave it, once posted.
    pub upstream_id: Option<Value>,
}

/// The outcome of posting leased items; ends their lease. Always taken (`Ok`): a failing
/// store keeps it for the next commit that succeeds.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), QueueError>")]
pub struct Ack {
    /// `(queue row id, outcome)` per item.
    pub outcomes: Vec<(i64, Outcome)>,
}

/// What happened to one posted item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx: moved to the posted history with the upstream's id (if it gave one).
    Delivered { upstream_id: Option<Value> },
    /// Retryable failure (408, 429, 5xx, no answer): pending again, due after `delay_ms`.
    Retry { error: String, delay_ms: u64 },
    /// Permanent failure (a 4xx other than 408/429): dead until an operator acts.
    Dead { error: String },
}

impl Outcome {
    /// A retryable failure of the request itself (connect error, timeout, reset).
    pub fn transport(error: String) -> Outcome {
        Outcome::Retry { error, delay_ms: 0 }
    }
}

/// Stores the upstream id of a sequence so every later film and retry reuses it.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), QueueError>")]
pub struct SequencePosted {
    /// Local sequence row id.
    pub sequence_id: i64,
    /// The id the upstream answered with.
    pub upstream_id: Value,
}

/// Answered at once: a round trip proves the actor's mailbox is being served (the service
/// manager's watchdog asks the queue and the poster).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Ping;

/// Tells the next process about this graceful stop (sent before the last [`Flush`]).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct MarkStop {
    /// `(link, port)` of each link that stopped at a record boundary on a port that keeps
    /// what the device sends while closed.
    pub boundaries: Vec<(String, String)>,
    /// Every post in flight ended (no item's outcome is unknown).
    pub drained: bool,
}

/// Commits whatever is in the open transaction now (used at shutdown).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), QueueError>")]
pub struct Flush {
    /// The last commit before the process ends: if it fails, every frame it could not keep is
    /// logged with its bytes; either way the queue file's lock is released.
    pub last: bool,
}

// ---- web -> queue (inspection and control) -----------------------------------------------

/// The state of a queue item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemState {
    Pending,
    InFlight,
    Dead,
    Posted,
}

impl ItemState {
    /// Every state, in the order an item passes through them.
    pub const ALL: [ItemState; 4] = [
        ItemState::Pending,
        ItemState::InFlight,
        ItemState::Dead,
        ItemState::Posted,
    ];

    /// The API name (`pending`, `in_flight`, `dead`, `posted`).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::InFlight => "in_flight",
            ItemState::Dead => "dead",
            ItemState::Posted => "posted",
        }
    }

    /// The state an API name stands for.
    pub fn from_name(name: &str) -> Option<ItemState> {
        ItemState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Lists queue items, newest first within a state (or all states).
#[derive(Message, Debug)]
#[rtype(result = "Result<ItemPage, QueueError>")]
pub struct ListItems {
    /// Only items in this state; `None` for all.
    pub state: Option<ItemState>,
    /// Page size.
    pub limit: usize,
    /// Items to skip.
    pub offset: usize,
}

/// One page of queue items with the total count for the filter.
#[derive(Debug, Clone)]
pub struct ItemPage {
    /// Items matching the filter.
    pub count: u64,
    /// This page.
    pub results: Vec<QueuedItem>,
}

/// A queue item as stored, for inspection: exact bytes and epoch milliseconds (the web
/// frontend decides how they look in JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedItem {
    pub id: i64,
    pub uid: String,
    pub source: String,
    pub state: ItemState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When a waiting retry becomes due, epoch milliseconds; `None` when due now.
    pub next_attempt_at_ms: Option<i64>,
    /// When the frame's last byte was read, epoch milliseconds.
    pub received_at_ms: i64,
    /// The frame's bytes exactly as read.
    pub raw: Vec<u8>,
    /// Parsed fields; `None` for a rejected frame or a fragment.
    pub data: Option<FilmData>,
    pub sequence_uid: Option<String>,
    /// The upstream's id of the posted film (posted items only).
    pub upstream_id: Option<Value>,
    /// A fragment an operator accepted as a whole record ([`AcceptItem`]).
    pub accepted_by_hand: bool,
}

/// Fetches one item.
#[derive(Message, Debug)]
#[rtype(result = "Result<QueuedItem, QueueError>")]
pub struct GetItem {
    pub id: i64,
}

/// Makes a dead item pending again, re-parsing its raw frame with the current config.
/// A frame that still does not parse stays dead with the new reason
/// (answered with the item; check its state).
#[derive(Message, Debug)]
#[rtype(result = "Result<QueuedItem, QueueError>")]
pub struct RetryItem {
    pub id: i64,
}

/// Accepts a dead fragment whose bytes parse as a whole record: it is then delivered like
/// any film. One that does not parse stays dead with the reason (answered with the item).
#[derive(Message, Debug)]
#[rtype(result = "Result<QueuedItem, QueueError>")]
pub struct AcceptItem {
    pub id: i64,
}

/// Retries every dead item; answers how many became pending.
#[derive(Message, Debug)]
#[rtype(result = "Result<RetryAllOutcome, QueueError>")]
pub struct RetryAllDead;

/// The result of [`RetryAllDead`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct RetryAllOutcome {
    /// Items now pending.
    pub retried: u64,
    /// Items still dead because their frame still does not parse.
    pub still_dead: u64,
}

/// Deletes a dead item (only dead items can be deleted).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), QueueError>")]
pub struct DeleteItem {
    pub id: i64,
}

/// Asks for the queue's counts and rates.
#[derive(Message, Debug)]
#[rtype(result = "Result<QueueStats, QueueError>")]
pub struct GetStats;

/// Counts by state, oldest pending age and rates.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QueueStats {
    pub pending: u64,
    pub in_flight: u64,
    pub dead: u64,
    pub posted: u64,
    /// Age of the oldest pending (or in-flight) item, milliseconds; 0 when none.
    pub oldest_pending_age_ms: i64,
    /// Frames accepted per second over the last few seconds.
    pub read_rate_per_s: f64,
    /// Items delivered per second over the last few seconds.
    pub post_rate_per_s: f64,
    /// Frames accepted since start.
    pub enqueued_total: u64,
    /// Items delivered since start.
    pub delivered_total: u64,
    /// Frames refused since start because the queue was full.
    pub refused_total: u64,
    /// Transactions committed since start (each one fsync): frames and outcomes ride together.
    pub commits_total: u64,
    /// Items posted again since start whose earlier post's outcome was unknown when the last
    /// process died (a backend without a unique `uid` may store them twice).
    pub uncertain_resends_total: u64,
    /// Whether the last store operation succeeded (false makes `/readyz` answer 503).
    pub store_ok: bool,
    /// The newest SPC alarm's id (0: none yet); a change means new alarms to show.
    pub last_alarm_id: i64,
}

// ---- web -> queue (SPC) --------------------------------------------------------------------

/// Asks for the watched charts: all, or the one of `(link, field)`.
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<SpcChartView>, QueueError>")]
pub struct GetSpc {
    pub chart: Option<(String, String)>,
}

/// One watched (link, field) as `GET /api/spc/{link}/{field}/` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpcChartView {
    pub link: String,
    pub field: String,
    pub subgroup: usize,
    pub baseline: usize,
    /// `baselining` or `monitoring`.
    pub state: &'static str,
    pub center: Option<f64>,
    pub ucl: Option<f64>,
    pub lcl: Option<f64>,
    pub range: SpcRangeView,
    pub sigma: Option<f64>,
    pub cp: Option<f64>,
    pub cpk: Option<f64>,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
    pub target: Option<f64>,
    /// Complete subgroups so far (of the baseline, while baselining).
    pub subgroups: u64,
    /// Films whose value was missing or not a number.
    pub skipped: u64,
    /// Alarms by rule since this process started (the `/metrics` counters).
    pub alarms_total: std::collections::BTreeMap<&'static str, u64>,
}

/// The range (moving range) chart's limits; `null`s while baselining or when not judged.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SpcRangeView {
    pub center: Option<f64>,
    pub ucl: Option<f64>,
    pub lcl: Option<f64>,
}

/// Which lot's points to show.
#[derive(Debug, Clone, PartialEq)]
pub enum LotFilter {
    /// The lot with this id in the records service.
    Sequence(String),
    /// The newest lot with this key.
    Key(String),
    /// The newest lot charted.
    Newest,
}

/// Asks for one lot's points of a chart; `None` when the chart is not watched.
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<SpcPoints>, QueueError>")]
pub struct GetSpcPoints {
    pub link: String,
    pub field: String,
    pub lot: LotFilter,
    /// Only the lot's newest this many points (the dashboard's window); `None`: all of them.
    pub last: Option<u64>,
}

/// One lot's points, in order, the incomplete last subgroup included.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpcPoints {
    /// The lot's id in the records service, when known.
    pub sequence: Option<Value>,
    /// The lot's key.
    pub lot: Option<String>,
    pub results: Vec<SpcPointView>,
    /// The lot's own mean, standard deviation, Pp and Ppk (of the points answered).
    pub summary: crate::spc::LotSummary,
}

/// One plotted subgroup.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpcPointView {
    pub index: Option<u64>,
    /// The lot's id in the records service (on every point, as the API promises).
    pub sequence: Option<Value>,
    pub n: usize,
    pub mean: f64,
    pub range: Option<f64>,
    pub alarms: Vec<crate::spc::Rule>,
}

/// Asks for the newest lots a chart has points of (the lot picker); `None` when the chart is
/// not watched.
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<Vec<SpcLot>>, QueueError>")]
pub struct GetSpcLots {
    pub link: String,
    pub field: String,
}

/// A lot in the picker.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpcLot {
    pub sequence: Option<Value>,
    pub lot: Option<String>,
    /// Points of this chart in it.
    pub points: u64,
}

/// Starts a chart afresh (new baseline, indexes from 1); `None` when it is not watched.
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<SpcChartView>, QueueError>")]
pub struct ResetSpc {
    pub link: String,
    pub field: String,
}

/// Asks for a page of alarms, newest first.
#[derive(Message, Debug, Default)]
#[rtype(result = "Result<AlarmPage, QueueError>")]
pub struct ListAlarms {
    pub acknowledged: Option<bool>,
    /// Only the lot with this id in the records service.
    pub sequence: Option<String>,
    /// Only alarms of this link, and of this field.
    pub link: Option<String>,
    pub field: Option<String>,
    /// Only alarms with a larger id, oldest first (the event stream's catch-up).
    pub after_id: Option<i64>,
    pub offset: u64,
    pub limit: u64,
}

/// A page of alarms and how many match.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlarmPage {
    pub count: u64,
    pub results: Vec<AlarmView>,
}

/// One alarm, as `/api/alarms/` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlarmView {
    pub id: i64,
    /// When it was judged, RFC 3339.
    pub time: String,
    pub link: String,
    pub field: String,
    /// The lot's id in the records service, when known.
    pub sequence: Option<Value>,
    /// The lot's key.
    pub lot: Option<String>,
    /// The subgroup's index; `null` for `out_of_spec`.
    pub index: Option<u64>,
    pub rule: crate::spc::Rule,
    pub value: f64,
    pub acknowledged: bool,
}

/// Acknowledges an alarm; `None` when there is none with that id.
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<AlarmView>, QueueError>")]
pub struct AckAlarm {
    pub id: i64,
}

// ---- web -> serial link --------------------------------------------------------------------

/// Asks a link to close its port and reopen it (counts as a restart, without backoff).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct RestartLink;

/// Asks a link to stop reading for good (shutdown).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StopLink;
