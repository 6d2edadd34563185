//! [`QueueActor`]: owns the [`QueueStore`] on an arbiter (thread) of its own so SQLite never
//! blocks the web or poster threads, and decides when to commit.
//!
//! Group commit: every write goes into the open transaction and is answered at once; the
//! commit runs as soon as the mailbox is drained (a spawned ready future runs after actix has
//! handled every queued message), or inside a write once the transaction is older than
//! `commit_interval_ms`. Under load, many writes share one fsync; when idle, a frame waits
//! for just its own commit.

use super::config::QueueConfig;
use super::error::QueueError;
use super::store::QueueStore;
use crate::messages::*;
use crate::record::{NewItem, now_ms};
use crate::serial::RecordConfig;
use actix::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds over which read and post rates are averaged.
const RATE_WINDOW_S: usize = 10;
/// Pause before retrying a failed commit.
const COMMIT_RETRY: Duration = Duration::from_millis(500);
/// At most one "queue full" error line per this interval.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The durable queue's actor.
pub struct QueueActor {
    store: QueueStore,
    cfg: QueueConfig,
    /// Record formats by link name, for re-parsing retried dead items.
    parsers: HashMap<String, RecordConfig>,
    /// Told when committed items are ready to lease.
    subscriber: Option<Recipient<WorkAvailable>>,
    /// A commit is scheduled after the mailbox drains.
    commit_scheduled: bool,
    /// When the open transaction began.
    tx_started: Option<Instant>,
    /// New items are in the open transaction (notify the subscriber after commit).
    new_work: bool,
    /// Batches in the open transaction, kept until their commit succeeds (re-inserted after
    /// a failed one).
    uncommitted: Vec<Arc<Vec<NewItem>>>,
    /// The store is failing (a commit failed and has not yet succeeded again).
    failing: bool,
    /// Per-second (enqueued, delivered) counts, newest last, for rates.
    rates: VecDeque<(u64, u64, u64)>,
    enqueued_total: u64,
    delivered_total: u64,
    refused_total: u64,
    last_full_log: Option<Instant>,
}

impl QueueActor {
    /// Starts the actor on its own arbiter.
    pub fn start(
        store: QueueStore,
        cfg: QueueConfig,
        parsers: HashMap<String, RecordConfig>,
    ) -> Addr<QueueActor> {
        let arbiter = Arbiter::new();
        QueueActor::start_in_arbiter(&arbiter.handle(), move |_| QueueActor {
            store,
            cfg,
            parsers,
            subscriber: None,
            commit_scheduled: false,
            tx_started: None,
            new_work: false,
            uncommitted: Vec::new(),
            failing: false,
            rates: VecDeque::new(),
            enqueued_total: 0,
            delivered_total: 0,
            refused_total: 0,
            last_full_log: None,
        })
    }

    /// Notes a write: schedules the group commit, or commits now if the window has passed.
    fn wrote(&mut self, ctx: &mut Context<Self>) {
        let started = *self.tx_started.get_or_insert_with(Instant::now);
        if started.elapsed() >= self.cfg.commit_interval() {
            self.commit(ctx);
        } else if !self.commit_scheduled {
            self.commit_scheduled = true;
            ctx.spawn(fut::ready(()).map(|_, act: &mut Self, ctx| {
                act.commit_scheduled = false;
                act.commit(ctx);
            }));
        }
    }

    fn commit(&mut self, ctx: &mut Context<Self>) {
        if !self.store.has_uncommitted() {
            return;
        }
        match self.store.commit() {
            Ok(()) => {
                self.tx_started = None;
                self.uncommitted.clear();
                if self.failing {
                    log::info!("queue: store writable again; commits resumed");
                    self.failing = false;
                }
                if std::mem::take(&mut self.new_work)
                    && let Some(s) = &self.subscriber
                {
                    s.do_send(WorkAvailable);
                }
            }
            Err(e) => self.commit_failed(ctx, e),
        }
    }

    /// Rolls back, keeps the batches of the failed transaction, and re-inserts them later.
    fn commit_failed(&mut self, ctx: &mut Context<Self>, error: QueueError) {
        if !self.failing {
            log::error!(
                "queue: commit failed, holding {} batch(es) and retrying: {error}",
                self.uncommitted.len()
            );
            self.failing = true;
        }
        if let Err(e) = self.store.rollback() {
            log::error!("queue: rollback failed: {e}");
        }
        self.tx_started = None;
        ctx.run_later(COMMIT_RETRY, |act, ctx| {
            let batches = std::mem::take(&mut act.uncommitted);
            for batch in batches {
                if let Err(e) = act.store.insert(&batch) {
                    log::debug!("queue: re-insert failed: {e}");
                }
                act.uncommitted.push(batch);
            }
            act.new_work = true;
            if act.store.has_uncommitted() {
                act.commit(ctx);
            } else if act.failing {
                act.commit_failed(
                    ctx,
                    QueueError::Unavailable("nothing could be re-inserted".into()),
                );
            }
        });
    }

    /// Adds to the current second's counters.
    fn count(&mut self, enqueued: u64, delivered: u64) {
        let second = (now_ms() / 1000) as u64;
        match self.rates.back_mut() {
            Some((s, e, d)) if *s == second => {
                *e += enqueued;
                *d += delivered;
            }
            _ => {
                self.rates.push_back((second, enqueued, delivered));
                while self.rates.len() > RATE_WINDOW_S + 1 {
                    self.rates.pop_front();
                }
            }
        }
    }

    fn rates_per_s(&self) -> (f64, f64) {
        let now_s = (now_ms() / 1000) as u64;
        // Whole seconds only: the current, partial second would read low.
        let (e, d) = self
            .rates
            .iter()
            .filter(|(s, _, _)| *s < now_s && *s + RATE_WINDOW_S as u64 >= now_s)
            .fold((0, 0), |(e, d), (_, e2, d2)| (e + e2, d + d2));
        (
            e as f64 / RATE_WINDOW_S as f64,
            d as f64 / RATE_WINDOW_S as f64,
        )
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        self.commit(ctx);
        Running::Stop
    }
}

impl Handler<Enqueue> for QueueActor {
    type Result = Result<EnqueueOutcome, QueueError>;

    fn handle(&mut self, msg: Enqueue, ctx: &mut Self::Context) -> Self::Result {
        if self.failing {
            return Err(QueueError::Unavailable(
                "the queue store is failing; see the log".into(),
            ));
        }
        let outcome = match self.store.insert(&msg.items) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.uncommitted.push(msg.items.clone());
                self.commit_failed(ctx, e);
                return Err(QueueError::Unavailable(
                    "the queue store is failing; see the log".into(),
                ));
            }
        };
        if outcome.accepted > 0 {
            let kept = if outcome.accepted == msg.items.len() {
                msg.items.clone()
            } else {
                Arc::new(msg.items[..outcome.accepted].to_vec())
            };
            self.uncommitted.push(kept);
            self.new_work = true;
            self.enqueued_total += outcome.accepted as u64;
            self.count(outcome.accepted as u64, 0);
            self.wrote(ctx);
        }
        if outcome.refused > 0 {
            self.refused_total += outcome.refused as u64;
            if self
                .last_full_log
                .is_none_or(|t| t.elapsed() >= FULL_LOG_INTERVAL)
            {
                log::error!(
                    "queue FULL: max_items = {} reached; {} frame(s) refused ({} refused since start)",
                    self.cfg.max_items,
                    outcome.refused,
                    self.refused_total
                );
                self.last_full_log = Some(Instant::now());
            }
        }
        Ok(outcome)
    }
}

impl Handler<Subscribe> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) {
        msg.0.do_send(WorkAvailable);
        self.subscriber = Some(msg.0);
    }
}

impl Handler<Lease> for QueueActor {
    type Result = Result<Vec<LeasedItem>, QueueError>;

    fn handle(&mut self, msg: Lease, _: &mut Self::Context) -> Self::Result {
        self.store.lease(msg.max_items, now_ms())
    }
}

impl Handler<Ack> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: Ack, ctx: &mut Self::Context) -> Self::Result {
        let delivered = self.store.ack(&msg.outcomes, now_ms())?;
        self.delivered_total += delivered;
        self.count(0, delivered);
        self.wrote(ctx);
        Ok(())
    }
}

impl Handler<SequencePosted> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: SequencePosted, ctx: &mut Self::Context) -> Self::Result {
        self.store
            .set_sequence_upstream_id(msg.sequence_id, &msg.upstream_id)?;
        self.wrote(ctx);
        Ok(())
    }
}

impl Handler<Flush> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        self.store.commit()?;
        self.tx_started = None;
        self.uncommitted.clear();
        Ok(())
    }
}

impl Handler<ListItems> for QueueActor {
    type Result = Result<ItemPage, QueueError>;

    fn handle(&mut self, msg: ListItems, _: &mut Self::Context) -> Self::Result {
        let (count, results) = self.store.list(msg.state, msg.limit, msg.offset)?;
        Ok(ItemPage { count, results })
    }
}

impl Handler<GetItem> for QueueActor {
    type Result = Result<ItemView, QueueError>;

    fn handle(&mut self, msg: GetItem, _: &mut Self::Context) -> Self::Result {
        self.store.get(msg.id)
    }
}

impl Handler<RetryItem> for QueueActor {
    type Result = Result<ItemView, QueueError>;

    fn handle(&mut self, msg: RetryItem, ctx: &mut Self::Context) -> Self::Result {
        let view = self.store.retry_dead(msg.id, &self.parsers)?;
        self.new_work = true;
        self.wrote(ctx);
        Ok(view)
    }
}

impl Handler<RetryAllDead> for QueueActor {
    type Result = Result<RetryAllOutcome, QueueError>;

    fn handle(&mut self, _: RetryAllDead, ctx: &mut Self::Context) -> Self::Result {
        let mut outcome = RetryAllOutcome::default();
        for id in self.store.dead_ids()? {
            match self.store.retry_dead(id, &self.parsers)?.state {
                ItemState::Dead => outcome.still_dead += 1,
                _ => outcome.retried += 1,
            }
        }
        self.new_work = true;
        self.wrote(ctx);
        Ok(outcome)
    }
}

impl Handler<DeleteItem> for QueueActor {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: DeleteItem, ctx: &mut Self::Context) -> Self::Result {
        self.store.delete_dead(msg.id)?;
        self.wrote(ctx);
        Ok(())
    }
}

impl Handler<GetStats> for QueueActor {
    type Result = Result<QueueStats, QueueError>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        let mut stats = self.store.stats(now_ms())?;
        let (read, post) = self.rates_per_s();
        stats.read_rate_per_s = read;
        stats.post_rate_per_s = post;
        stats.enqueued_total = self.enqueued_total;
        stats.delivered_total = self.delivered_total;
        stats.refused_total = self.refused_total;
        stats.store_ok = !self.failing;
        Ok(stats)
    }
}
