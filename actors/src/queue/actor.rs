//! [`QueueActor`]: owns the [`QueueStore`] on an arbiter (thread) of its own, so SQLite never
//! blocks the web or poster threads, and decides when to commit.
//!
//! Messages in: [`Enqueue`] from the links; [`Subscribe`], [`AwaitLease`], [`CancelLease`],
//! [`Ack`], [`SequencePosted`] from the poster; [`Flush`] at shutdown; the inspection messages
//! (and a plain [`Lease`]) from the web side and tests. Out: answers. After a commit that made
//! items leasable, or when a retry falls due, a kept [`AwaitLease`] is answered with them (and
//! it is tried every 5 s while items wait, a safety net); a subscriber without one (busy
//! posting) gets the [`WorkAvailable`] notice instead.
//!
//! Group commit, made explicit: the first write of a transaction sends the actor a
//! [`CommitGroup`] through its own mailbox, behind every message already waiting there (the
//! mailbox is a FIFO queue). The group is every write that came before that marker: they are
//! all in the transaction when it is handled, and one commit — one fsync — makes them safe.
//! Writes that come later join the next group. If the mailbox never drains, a write finding the
//! transaction older than `commit_interval_ms` commits at once. A failed commit is retried every
//! [`STORE_RETRY_INTERVAL`] without losing a write (see [`QueueStore::commit`]).

use super::dead_log::{DeadLog, WINDOW as DEAD_LOG_WINDOW};
use super::{QueueConfig, QueueError, QueueStore};
use crate::messages::{
    AcceptItem, Ack, AckAlarm, AlarmPage, AlarmView, AwaitLease, CancelLease, DeleteItem, Enqueue,
    EnqueueOutcome, Flush, GetItem, GetSpc, GetSpcLots, GetSpcPoints, GetStats, ItemPage, Lease,
    LeasedItem, ListAlarms, ListItems, MarkStop, Outcome, Ping, QueueStats, QueuedItem, ResetSpc,
    RetryAllDead, RetryAllOutcome, RetryItem, SequencePosted, SpcChartView, SpcLot, SpcPoints,
    Subscribe, WorkAvailable,
};
use crate::record::LinkParser;
use crate::record::steady_ms;
use actix::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a failing store waits before its next commit attempt.
pub const STORE_RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// Longest outcomes (acks, sequence ids) wait for a commit of their own. At a line's rate the
/// next frames come sooner and take them along: one fsync per film instead of two.
const OUTCOMES_COMMIT_WINDOW: Duration = Duration::from_millis(250);
/// Writes after which waiting outcomes are committed at once: a burst's acks must not pile up
/// in the open transaction (its dirty pages and the write log are memory).
const OUTCOMES_COMMIT_WRITES: usize = 512;
/// Least time between two "queue full" error logs.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often the queue file is checked to be the one open (replaced or removed: `/readyz`
/// answers 503 and an ERROR names it, within a minute).
const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(20);
/// How often a kept [`AwaitLease`] is tried while items wait: a safety net only, since commits
/// and due retries answer it.
const KEPT_LEASE_RECHECK: Duration = Duration::from_secs(5);

/// The durable queue's actor.
pub struct QueueActor {
    /// The SQLite file and its in-memory companions (in flight set, counts).
    store: QueueStore,
    /// `[queue]`.
    cfg: QueueConfig,
    /// The current record config of every link, by name, to re-parse dead items on retry.
    parsers: HashMap<String, LinkParser>,
    /// Who hears [`WorkAvailable`] (the poster).
    subscriber: Option<Recipient<WorkAvailable>>,
    /// The poster's [`AwaitLease`] that found nothing, answered when work comes.
    kept_lease: Option<KeptLease>,
    /// A [`CommitGroup`] marker is in the mailbox.
    commit_scheduled: bool,
    /// A commit of outcomes is scheduled at the end of the commit window.
    outcomes_commit_scheduled: bool,
    /// A commit retry of a failing store is scheduled.
    store_retry_scheduled: bool,
    /// The current store failure was logged (logged once per episode).
    failure_logged: bool,
    /// When the earliest scheduled retry wake-up fires, epoch ms.
    retry_wake_at_ms: Option<i64>,
    /// When "queue full" was last logged.
    refusal_logged_at: Option<Instant>,
    /// Frames refused since the last "queue full" log.
    refused_unlogged: u64,
    /// The budget of dead-item WARN lines.
    dead_log: DeadLog,
    /// A dead-item summary line is scheduled.
    dead_summary_scheduled: bool,
}

impl QueueActor {
    /// Starts the actor on a new arbiter (its own thread). Must be called inside a running
    /// actix `System`. The arbiter stops when the actor does.
    pub fn start(
        store: QueueStore,
        cfg: QueueConfig,
        parsers: HashMap<String, LinkParser>,
    ) -> Addr<QueueActor> {
        QueueActor::start_on(&Arbiter::new().handle(), store, cfg, parsers)
    }

    /// [`QueueActor::start`] on `arbiter`, which then stops when the actor does.
    pub fn start_on(
        arbiter: &ArbiterHandle,
        store: QueueStore,
        cfg: QueueConfig,
        parsers: HashMap<String, LinkParser>,
    ) -> Addr<QueueActor> {
        QueueActor::start_in_arbiter(arbiter, move |_| QueueActor {
            store,
            cfg,
            parsers,
            subscriber: None,
            kept_lease: None,
            commit_scheduled: false,
            outcomes_commit_scheduled: false,
            store_retry_scheduled: false,
            failure_logged: false,
            retry_wake_at_ms: None,
            refusal_logged_at: None,
            refused_unlogged: 0,
            dead_log: DeadLog::default(),
            dead_summary_scheduled: false,
        })
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let stats = self.store.stats(steady_ms());
        log::info!(
            "queue: {} open ({} pending, {} dead, {} posted)",
            self.store.path(),
            stats.pending,
            stats.dead,
            stats.posted,
        );
        self.schedule_next_wake(ctx);
        ctx.run_interval(FILE_CHECK_INTERVAL, |act, _| {
            if let Some(problem) = act.store.check_file() {
                log::error!("queue: {problem}");
            }
        });
        ctx.run_interval(KEPT_LEASE_RECHECK, |act, ctx| {
            if act.kept_lease.is_some() && act.store.has_leasable() {
                act.offer_work(ctx);
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Err(e) = self.store.commit() {
            log::error!("queue: final commit of {} failed: {e}", self.store.path());
        }
        Arbiter::current().stop();
    }
}

impl Handler<Enqueue> for QueueActor {
    type Result = Result<EnqueueOutcome, QueueError>;

    fn handle(&mut self, msg: Enqueue, ctx: &mut Self::Context) -> Self::Result {
        let result = self.store.enqueue(msg.items, steady_ms());
        if let Ok(outcome) = &result
            && outcome.refused > 0
        {
            self.log_refusal(outcome.refused as u64);
        }
        self.settle(ctx);
        result
    }
}

impl Handler<Subscribe> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Self::Context) {
        self.subscriber = Some(msg.0);
        if self.store.has_leasable() {
            self.offer_work(ctx);
        }
    }
}

/// An [`AwaitLease`] kept until items are leasable.
struct KeptLease {
    max_items: usize,
    answer: oneshot::Sender<Result<Vec<LeasedItem>, QueueError>>,
}

impl Handler<Lease> for QueueActor {
    type Result = Result<Vec<LeasedItem>, QueueError>;

    fn handle(&mut self, msg: Lease, ctx: &mut Self::Context) -> Self::Result {
        self.lease(msg.max_items, ctx)
    }
}

impl Handler<AwaitLease> for QueueActor {
    type Result = ResponseActFuture<Self, Result<Vec<LeasedItem>, QueueError>>;

    fn handle(&mut self, msg: AwaitLease, ctx: &mut Self::Context) -> Self::Result {
        let leased = self.lease(msg.max_items, ctx);
        if !matches!(&leased, Ok(items) if items.is_empty()) {
            return Box::pin(fut::ready(leased));
        }
        let (answer, answered) = oneshot::channel();
        let kept = KeptLease {
            max_items: msg.max_items,
            answer,
        };
        self.cancel_kept_lease();
        self.kept_lease = Some(kept);
        // Dropped unanswered only when this actor stops: nothing was leased.
        Box::pin(fut::wrap_future(answered).map(|answer, _, _| answer.unwrap_or(Ok(Vec::new()))))
    }
}

impl Handler<CancelLease> for QueueActor {
    type Result = ();

    fn handle(&mut self, _: CancelLease, _ctx: &mut Self::Context) {
        self.cancel_kept_lease();
    }
}

impl Handler<Ack> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: Ack, ctx: &mut Self::Context) -> Self::Result {
        let now = steady_ms();
        let first_retry_ms = msg
            .outcomes
            .iter()
            .filter_map(|(_, outcome)| match outcome {
                Outcome::Retry { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .min();
        // Kept even if the store is failing: applied by the commit that succeeds.
        self.store.ack(msg.outcomes, now);
        self.settle_outcomes(ctx);
        if let Some(delay_ms) = first_retry_ms {
            self.schedule_wake(now + delay_ms as i64, ctx);
        }
        Ok(())
    }
}

impl Handler<SequencePosted> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: SequencePosted, ctx: &mut Self::Context) -> Self::Result {
        self.store
            .sequence_posted(msg.sequence_id, &msg.upstream_id);
        self.settle_outcomes(ctx);
        Ok(())
    }
}

/// The end of a commit group: sent by the actor to itself behind the messages already in
/// its mailbox (see the module docs).
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct CommitGroup;

impl Handler<CommitGroup> for QueueActor {
    type Result = ();

    fn handle(&mut self, _: CommitGroup, ctx: &mut Self::Context) {
        self.commit_scheduled = false;
        let _ = self.commit(ctx);
    }
}

impl Handler<Ping> for QueueActor {
    type Result = ();

    fn handle(&mut self, _: Ping, _ctx: &mut Self::Context) {}
}

impl Handler<MarkStop> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: MarkStop, _ctx: &mut Self::Context) {
        self.store.mark_stop(msg.boundaries, msg.drained);
    }
}

impl Handler<Flush> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: Flush, ctx: &mut Self::Context) -> Self::Result {
        let mut result = self.commit(ctx);
        if msg.last
            && let Err(e) = &result
        {
            let mut frames = 0;
            for (uid, raw) in self.store.unkept_frames() {
                frames += 1;
                log::error!(
                    "queue: frame not kept: uid {uid} raw \"{}\"",
                    raw.escape_ascii()
                );
            }
            if frames == 0 {
                // Only outcomes were not stored: their items are posted again at the next
                // start and the service answers replays. Nothing read is lost, so the stop
                // is not a failure (exit 1 means frames were lost).
                log::warn!(
                    "queue: the last commit failed ({e}); it held no frame, only delivery \
                     outcomes, whose items are posted again at the next start"
                );
                result = Ok(());
            }
        }
        if msg.last {
            // The process ends now; a new one (or a new app in the same process) may open
            // the file at once, and this actor takes no more writes.
            self.store.release_lock();
            self.cancel_kept_lease();
            ctx.stop();
        }
        result
    }
}

impl Handler<ListItems> for QueueActor {
    type Result = Result<ItemPage, QueueError>;

    fn handle(&mut self, msg: ListItems, _ctx: &mut Self::Context) -> Self::Result {
        self.store.list(msg.state, msg.limit, msg.offset)
    }
}

impl Handler<GetItem> for QueueActor {
    type Result = Result<QueuedItem, QueueError>;

    fn handle(&mut self, msg: GetItem, _ctx: &mut Self::Context) -> Self::Result {
        self.store.item(msg.id)
    }
}

impl Handler<RetryItem> for QueueActor {
    type Result = Result<QueuedItem, QueueError>;

    fn handle(&mut self, msg: RetryItem, ctx: &mut Self::Context) -> Self::Result {
        let result = self.store.retry_item(msg.id, &self.parsers, steady_ms());
        self.settle(ctx);
        result
    }
}

impl Handler<AcceptItem> for QueueActor {
    type Result = Result<QueuedItem, QueueError>;

    fn handle(&mut self, msg: AcceptItem, ctx: &mut Self::Context) -> Self::Result {
        let result = self
            .store
            .accept_fragment(msg.id, &self.parsers, steady_ms());
        self.settle(ctx);
        result
    }
}

impl Handler<RetryAllDead> for QueueActor {
    type Result = Result<RetryAllOutcome, QueueError>;

    fn handle(&mut self, _msg: RetryAllDead, ctx: &mut Self::Context) -> Self::Result {
        let result = self.store.retry_all_dead(&self.parsers, steady_ms());
        self.settle(ctx);
        result
    }
}

impl Handler<DeleteItem> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: DeleteItem, ctx: &mut Self::Context) -> Self::Result {
        let result = self.store.delete_dead(msg.id);
        self.settle(ctx);
        result
    }
}

impl Handler<GetStats> for QueueActor {
    type Result = Result<QueueStats, QueueError>;

    fn handle(&mut self, _msg: GetStats, _ctx: &mut Self::Context) -> Self::Result {
        Ok(self.store.stats(steady_ms()))
    }
}

impl Handler<GetSpc> for QueueActor {
    type Result = Result<Vec<SpcChartView>, QueueError>;

    fn handle(&mut self, msg: GetSpc, _ctx: &mut Self::Context) -> Self::Result {
        let chart = msg.chart.as_ref().map(|(l, f)| (l.as_str(), f.as_str()));
        Ok(self.store.spc_charts(chart))
    }
}

impl Handler<GetSpcPoints> for QueueActor {
    type Result = Result<Option<SpcPoints>, QueueError>;

    fn handle(&mut self, msg: GetSpcPoints, _ctx: &mut Self::Context) -> Self::Result {
        self.store
            .spc_points(&msg.link, &msg.field, &msg.lot, msg.last)
    }
}

impl Handler<GetSpcLots> for QueueActor {
    type Result = Result<Option<Vec<SpcLot>>, QueueError>;

    fn handle(&mut self, msg: GetSpcLots, _ctx: &mut Self::Context) -> Self::Result {
        self.store.spc_lots(&msg.link, &msg.field)
    }
}

impl Handler<ResetSpc> for QueueActor {
    type Result = Result<Option<SpcChartView>, QueueError>;

    fn handle(&mut self, msg: ResetSpc, ctx: &mut Self::Context) -> Self::Result {
        let view = self.store.spc_reset(&msg.link, &msg.field);
        self.settle(ctx);
        Ok(view)
    }
}

impl Handler<ListAlarms> for QueueActor {
    type Result = Result<AlarmPage, QueueError>;

    fn handle(&mut self, msg: ListAlarms, _ctx: &mut Self::Context) -> Self::Result {
        self.store.alarms(&msg)
    }
}

impl Handler<AckAlarm> for QueueActor {
    type Result = Result<Option<AlarmView>, QueueError>;

    fn handle(&mut self, msg: AckAlarm, ctx: &mut Self::Context) -> Self::Result {
        let result = self.store.ack_alarm(msg.id);
        self.settle(ctx);
        result
    }
}

impl QueueActor {
    /// After any store call: follow up on a failure or recovery, tell the subscriber about new
    /// work, and make sure open writes get committed.
    fn settle(&mut self, ctx: &mut Context<Self>) {
        if !self.store.store_ok() {
            self.on_store_failure(ctx);
        } else {
            if self.failure_logged {
                self.failure_logged = false;
                log::info!("queue: store {} is writable again", self.store.path());
                // Retries acked while it failed are in the file only now: wake for the first.
                self.retry_wake_at_ms = None;
                self.schedule_next_wake(ctx);
            }
            if self.store.has_uncommitted() {
                self.schedule_commit(ctx);
            }
        }
        if self.store.take_new_work() {
            self.offer_work(ctx);
        }
    }

    /// Like [`QueueActor::settle`] for outcomes and sequence ids, which may wait up to
    /// [`OUTCOMES_COMMIT_WINDOW`] (or ride along with the next frames' commit): a crash before
    /// it only re-sends items, which the upstream answers as replays (counted as uncertain
    /// resends). This keeps an fsync per post off the delivery path.
    fn settle_outcomes(&mut self, ctx: &mut Context<Self>) {
        if !self.store.store_ok() || self.store.uncommitted_writes() >= OUTCOMES_COMMIT_WRITES {
            return self.settle(ctx);
        }
        if self.store.has_uncommitted() && !self.commit_scheduled && !self.outcomes_commit_scheduled
        {
            self.outcomes_commit_scheduled = true;
            let window = self.cfg.commit_interval().max(OUTCOMES_COMMIT_WINDOW);
            ctx.run_later(window, |act, ctx| {
                act.outcomes_commit_scheduled = false;
                let _ = act.commit(ctx);
            });
        }
        if self.store.take_new_work() {
            self.offer_work(ctx);
        }
    }

    fn schedule_commit(&mut self, ctx: &mut Context<Self>) {
        let overdue = self
            .store
            .uncommitted_age()
            .is_some_and(|age| age >= self.cfg.commit_interval());
        if overdue {
            // The mailbox has not drained for a whole window: commit now rather than wait.
            let _ = self.commit(ctx);
        } else if !self.commit_scheduled {
            self.commit_scheduled = true;
            ctx.address().do_send(CommitGroup);
        }
    }

    /// Commits now; a failure is logged and retried by [`QueueActor::settle`].
    fn commit(&mut self, ctx: &mut Context<Self>) -> Result<(), QueueError> {
        let result = self.store.commit();
        self.log_dead(ctx);
        self.settle(ctx);
        result
    }

    /// One WARN line for each item that became dead (within the per-minute budget; the rest
    /// are summed up in one line when the minute ends).
    fn log_dead(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for dead in self.store.take_dead_notices() {
            if self.dead_log.admit(now) {
                log::warn!(
                    "queue: item {} (uid {}, link {}) is dead: {}; it waits for an operator \
                     (retry or delete it: /api/queue/{}/)",
                    dead.id,
                    dead.uid,
                    dead.source,
                    dead.reason.escape_debug(),
                    dead.id
                );
            } else if !self.dead_summary_scheduled {
                self.dead_summary_scheduled = true;
                ctx.run_later(DEAD_LOG_WINDOW, |act, _| {
                    act.dead_summary_scheduled = false;
                    if let Some(count) = act.dead_log.take_summary(Instant::now()) {
                        log::warn!(
                            "queue: {count} more items became dead in the last minute (not \
                             logged one by one); see /api/queue/?state=dead"
                        );
                    }
                });
            }
        }
    }

    fn on_store_failure(&mut self, ctx: &mut Context<Self>) {
        if !self.failure_logged {
            self.failure_logged = true;
            log::error!(
                "queue: store {} is failing, new frames are held back and the commit is retried every {} ms: {}",
                self.store.path(),
                STORE_RETRY_INTERVAL.as_millis(),
                self.store.failure_message().unwrap_or("unknown error"),
            );
        }
        if !self.store_retry_scheduled {
            self.store_retry_scheduled = true;
            ctx.run_later(STORE_RETRY_INTERVAL, |act, ctx| {
                act.store_retry_scheduled = false;
                let _ = act.commit(ctx);
            });
        }
    }

    fn log_refusal(&mut self, refused: u64) {
        self.refused_unlogged += refused;
        if self
            .refusal_logged_at
            .is_some_and(|at| at.elapsed() < REFUSAL_LOG_INTERVAL)
        {
            return;
        }
        log::error!(
            "QUEUE FULL: {} holds queue.max_items = {} items (pending, in flight, dead); \
             {} new frames REFUSED since the last report ({} in all). Deliver or delete dead items, or raise max_items.",
            self.store.path(),
            self.cfg.max_items,
            self.refused_unlogged,
            self.store.stats(steady_ms()).refused_total,
        );
        self.refused_unlogged = 0;
        self.refusal_logged_at = Some(Instant::now());
    }

    /// Up to `max_items` leasable items, marked in flight. A lease that raised the lease limit
    /// has it committed at once (that commit offers the items beyond it); any other lease
    /// writes nothing and leaves the commits to the writes.
    fn lease(
        &mut self,
        max_items: usize,
        ctx: &mut Context<Self>,
    ) -> Result<Vec<LeasedItem>, QueueError> {
        let leased = self.store.lease(max_items, steady_ms());
        if self.store.raised_lease_limit_waits() {
            self.settle(ctx);
        }
        leased
    }

    /// Answers the kept [`AwaitLease`], if any, with nothing.
    fn cancel_kept_lease(&mut self) {
        if let Some(kept) = self.kept_lease.take() {
            let _ = kept.answer.send(Ok(Vec::new()));
        }
    }

    /// Items may be leasable: answers the kept [`AwaitLease`] with them, or, when none is
    /// kept, tells the subscriber.
    fn offer_work(&mut self, ctx: &mut Context<Self>) {
        let Some(kept) = self.kept_lease.take() else {
            if let Some(subscriber) = &self.subscriber {
                subscriber.do_send(WorkAvailable);
            }
            return;
        };
        if kept.answer.is_closed() {
            return;
        }
        match self.lease(kept.max_items, ctx) {
            // All of it in flight already, or beyond a lease limit not yet committed.
            Ok(items) if items.is_empty() => self.kept_lease = Some(kept),
            answer => {
                let _ = kept.answer.send(answer);
            }
        }
    }

    /// Wakes the subscriber when a retry falls due at `due_ms` (unless an earlier wake-up is
    /// already scheduled; that one schedules the next).
    fn schedule_wake(&mut self, due_ms: i64, ctx: &mut Context<Self>) {
        if self.retry_wake_at_ms.is_some_and(|at| at <= due_ms) {
            return;
        }
        self.retry_wake_at_ms = Some(due_ms);
        // +1 ms: the timer may round down; the lease compares against the steady clock.
        let delay = Duration::from_millis((due_ms - steady_ms()).max(0) as u64 + 1);
        ctx.run_later(delay, move |act, ctx| {
            if act.retry_wake_at_ms != Some(due_ms) {
                return;
            }
            act.retry_wake_at_ms = None;
            act.offer_work(ctx);
            act.schedule_next_wake(ctx);
        });
    }

    fn schedule_next_wake(&mut self, ctx: &mut Context<Self>) {
        match self.store.next_retry_due_after(steady_ms()) {
            Ok(Some(due_ms)) => self.schedule_wake(due_ms, ctx),
            Ok(None) => {}
            Err(e) => log::warn!("queue: cannot find the next retry time: {e}"),
        }
    }
}
