//! [`PosterActor`]: leases ready items from the queue, hands them to post tasks
//! ([`super::post`]) with up to `concurrency` requests in flight, and acks every outcome back
//! to the queue.
//!
//! When the upstream fails in a retryable way the poster pauses all leasing for the backoff (or
//! the upstream's `Retry-After`), so an outage costs one probe per backoff rather than a churn
//! through the backlog; the failed items are due exactly when the pause ends, and are leased
//! first (earliest due first), which keeps read order with `concurrency = 1`. The start of a
//! failure and the recovery are each logged once.
//!
//! While it has a free slot the poster keeps one [`AwaitLease`] at the queue, which answers it
//! with the commit that makes items leasable: at a line's rate a film costs no notice and no
//! second round trip between the two threads. After a lease that did not come back full the
//! next one is sent when a post ends, beside its ack; work committed meanwhile is announced
//! ([`WorkAvailable`]).

use super::config::UpstreamConfig;
use super::http::Upstream;
use super::post::{PostReport, SequenceCache, post_items};
use crate::messages::{
    Ack, AwaitLease, CancelLease, GetStats, LeasedItem, LeasedSequence, Outcome, Ping,
    SequencePosted, WorkAvailable,
};
use crate::metrics::SharedPostMetrics;
use crate::queue::QueueActor;
use crate::record::now_ms;
use actix::prelude::*;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Least time between two log lines of a lease that keeps failing.
const LEASE_FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// How soon a lease the queue could not answer (its store failing) is asked again.
const LEASE_FAILURE_RECHECK: Duration = Duration::from_millis(500);

/// Stops leasing and answers once every request in flight has been acked (or `timeout` passed).
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct Drain {
    /// Longest wait for posts in flight; they stay pending in the queue if cut off.
    pub timeout: Duration,
}

/// The queue mailboxes the poster uses.
#[derive(Clone)]
pub struct QueueLinks {
    pub lease: Recipient<AwaitLease>,
    /// Ends a kept lease when the poster drains or pauses.
    pub cancel_lease: Recipient<CancelLease>,
    pub ack: Recipient<Ack>,
    pub sequence_posted: Recipient<SequencePosted>,
    /// For the number of items waiting, in the delivery-failing warning.
    pub stats: Recipient<GetStats>,
}

impl QueueLinks {
    /// Every mailbox of `queue`'s actor.
    pub fn to(queue: &Addr<QueueActor>) -> Self {
        QueueLinks {
            lease: queue.clone().recipient(),
            cancel_lease: queue.clone().recipient(),
            ack: queue.clone().recipient(),
            sequence_posted: queue.clone().recipient(),
            stats: queue.clone().recipient(),
        }
    }
}

/// Posts leased films upstream.
pub struct PosterActor {
    /// The queue's mailboxes.
    queue: QueueLinks,
    /// Shared counters for `/metrics`.
    metrics: SharedPostMetrics,
    /// The HTTP side, made on this actor's thread (awc::Client is !Send; see [`start_poster`]).
    upstream: Rc<Upstream>,
    /// Posts and the lease under way; `Drain` waits for both to end.
    busy: watch::Sender<Busy>,
    /// No leasing before this instant (upstream backoff).
    paused_until: Option<Instant>,
    /// Work was announced while a lease was out: lease again when it is answered.
    work_announced: bool,
    /// The last lease came back full: more may wait (leased again while a slot is free).
    lease_was_full: bool,
    /// Upstream ids of sequences learned this run, shared with the post tasks.
    sequences: Rc<SequenceCache>,
    /// Set by `Drain`: lease nothing more.
    draining: bool,
    /// An idle re-check is scheduled.
    recheck_scheduled: bool,
    /// Since when delivery fails (logged once when it starts, once when it recovers).
    failing_since: Option<Instant>,
    /// Redirect errors already logged at WARN (each once).
    redirects_warned: HashSet<String>,
    /// When a failing lease (the queue store failing) was last logged: once, then once a
    /// minute while it repeats.
    lease_failure_logged_at: Option<Instant>,
}

/// Starts a poster on an arbiter (thread) of its own, its HTTP client made there (awc's client
/// is `!Send`). Fails, naming the key, when the client cannot be made (a TLS file that cannot
/// be loaded): the caller exits instead of running a poster that posts nothing.
pub async fn start_poster(
    cfg: UpstreamConfig,
    queue: QueueLinks,
    metrics: SharedPostMetrics,
) -> Result<Addr<PosterActor>, String> {
    let arbiter = Arbiter::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    arbiter.spawn_fn(move || {
        let started = Upstream::new(Rc::new(cfg))
            .map(|upstream| PosterActor::new(upstream, queue, metrics).start());
        let _ = started_tx.send(started);
    });
    started_rx
        .await
        .map_err(|_| "the poster's thread ended before it started".to_owned())?
}

impl PosterActor {
    /// A poster posting through `upstream`; start it on the thread that made `upstream`
    /// ([`start_poster`] does).
    pub fn new(upstream: Upstream, queue: QueueLinks, metrics: SharedPostMetrics) -> Self {
        PosterActor {
            queue,
            metrics,
            upstream: Rc::new(upstream),
            busy: watch::Sender::new(Busy::default()),
            paused_until: None,
            work_announced: false,
            lease_was_full: false,
            sequences: Rc::default(),
            draining: false,
            recheck_scheduled: false,
            failing_since: None,
            redirects_warned: HashSet::new(),
            lease_failure_logged_at: None,
        }
    }
}

impl Actor for PosterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.fill(ctx);
    }
}

impl Handler<WorkAvailable> for PosterActor {
    type Result = ();

    fn handle(&mut self, _: WorkAvailable, ctx: &mut Self::Context) {
        self.work_announced = true;
        self.fill(ctx);
    }
}

impl Handler<Ping> for PosterActor {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Self::Context) {}
}

impl Handler<Drain> for PosterActor {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Drain, _: &mut Self::Context) -> Self::Result {
        self.draining = true;
        if self.busy.borrow().leasing {
            // Items it brings back before the cancel arrives are posted; the drain waits.
            self.queue.cancel_lease.do_send(CancelLease);
        }
        let mut busy = self.busy.subscribe();
        Box::pin(async move {
            let drained = busy.wait_for(Busy::idle);
            matches!(tokio::time::timeout(msg.timeout, drained).await, Ok(Ok(_)))
        })
    }
}

/// What the poster has under way.
#[derive(Debug, Default, Clone, Copy)]
struct Busy {
    /// Posts whose ack is not sent yet.
    posts: usize,
    /// A lease is out (one at a time keeps leases in order).
    leasing: bool,
}

impl Busy {
    fn idle(&self) -> bool {
        self.posts == 0 && !self.leasing
    }
}

impl PosterActor {
    /// Leases work while a slot is free, the upstream is not in backoff and no lease is out;
    /// schedules a re-check when paused.
    fn fill(&mut self, ctx: &mut Context<Self>) {
        let busy = *self.busy.borrow();
        if self.draining || busy.leasing || busy.posts >= self.upstream.cfg.concurrency {
            return;
        }
        if let Some(until) = self.paused_until {
            let now = Instant::now();
            if until > now {
                self.schedule_recheck(ctx, until - now);
                return;
            }
            self.paused_until = None;
        }
        self.busy.send_modify(|busy| busy.leasing = true);
        self.work_announced = false;
        // One lease fills every free slot: a lease is a round trip to the queue's thread.
        let free_slots = self.upstream.cfg.concurrency - busy.posts;
        let max_items = self.upstream.cfg.batch_size * free_slots;
        let lease = self.queue.lease.send(AwaitLease { max_items });
        ctx.spawn(lease.into_actor(self).map(move |answer, act, ctx| {
            act.busy.send_modify(|busy| busy.leasing = false);
            act.lease_was_full = false;
            match answer {
                Ok(Ok(mut items)) if !items.is_empty() => {
                    act.lease_failure_logged_at = None;
                    act.lease_was_full = items.len() == max_items;
                    while !items.is_empty() {
                        let rest = items.split_off(items.len().min(act.upstream.cfg.batch_size));
                        act.start_post(items, ctx);
                        items = rest;
                    }
                    if act.lease_was_full || act.work_announced {
                        act.fill(ctx);
                    }
                }
                // Cancelled: by a drain (no lease follows) or a pause (the next follows when
                // it ends); or the queue is stopping.
                Ok(Ok(_)) => act.fill(ctx),
                Ok(Err(e)) => {
                    if act
                        .lease_failure_logged_at
                        .is_none_or(|at| at.elapsed() >= LEASE_FAILURE_LOG_INTERVAL)
                    {
                        log::warn!("poster: cannot lease from the queue, posting waits: {e}");
                        act.lease_failure_logged_at = Some(Instant::now());
                    }
                    act.schedule_recheck(ctx, LEASE_FAILURE_RECHECK);
                }
                Err(e) => log::error!("poster: queue unavailable, posting stops: {e}"),
            }
        }));
    }

    fn schedule_recheck(&mut self, ctx: &mut Context<Self>, after: Duration) {
        if self.recheck_scheduled || self.draining {
            return;
        }
        self.recheck_scheduled = true;
        ctx.run_later(after, |act, ctx| {
            act.recheck_scheduled = false;
            act.fill(ctx);
        });
    }

    /// Posts one lease's items (sequences first), then acks their outcomes.
    fn start_post(&mut self, mut items: Vec<LeasedItem>, ctx: &mut Context<Self>) {
        // The films of a sequence share it: the id learned for one goes to the next ones.
        let mut learned: Option<Arc<LeasedSequence>> = None;
        for item in &mut items {
            if item.sequence.upstream_id.is_some() {
                continue;
            }
            if let Some(seq) = learned.as_ref().filter(|seq| seq.id == item.sequence.id) {
                item.sequence = seq.clone();
            } else if let Some(id) = self.sequences.id_of(item.sequence.id) {
                Arc::make_mut(&mut item.sequence).upstream_id = Some(id);
                learned = Some(item.sequence.clone());
            }
        }
        self.busy.send_modify(|busy| busy.posts += 1);
        let upstream = self.upstream.clone();
        let sequence_posted = self.queue.sequence_posted.clone();
        let sequences = self.sequences.clone();
        let post = async move { post_items(&upstream, &sequence_posted, &sequences, items).await };
        ctx.spawn(post.into_actor(self).map(|mut report, act, ctx| {
            act.record(&report, ctx);
            // Not awaited: the queue keeps every ack (even while its store fails, to apply at
            // the next commit that succeeds), so its answer says nothing; awaiting it would
            // wake this thread once more per post. `do_send` passes a full mailbox too (an ack
            // is never dropped; only a queue already gone loses it, and its items are re-sent
            // after a restart). Sent before the slot is freed, so a drain that sees no post in
            // flight finds every ack in the queue's mailbox before its flush. The next lease
            // follows it at once: the queue's thread wakes once for both.
            act.queue.ack.do_send(Ack {
                outcomes: report.take_outcomes(),
            });
            act.busy.send_modify(|busy| busy.posts -= 1);
            act.fill(ctx);
        }));
    }

    /// Updates counters, the upstream backoff and the failing/recovered log from one report.
    fn record(&mut self, report: &PostReport, ctx: &mut Context<Self>) {
        let m = &self.metrics;
        let now = now_ms();
        for (_, outcome) in &report.outcomes {
            match outcome {
                Outcome::Delivered { .. } => m.delivered.inc(),
                Outcome::Retry { .. } => m.retried.inc(),
                Outcome::Dead { .. } => m.dead.inc(),
            };
        }
        for received_at_ms in &report.delivered_received_at_ms {
            m.observe_latency_us(((now - received_at_ms).max(0) as u64) * 1000);
        }
        m.sequences_posted.inc_by(report.sequences_posted);
        if let Some(redirect) = &report.redirect
            && self.redirects_warned.insert(redirect.clone())
        {
            log::warn!("poster: {redirect}; the items are dead until retried");
        }
        match &report.failure {
            Some(error) => {
                // A longer pause (a Retry-After) is never cut short by another task's backoff.
                let until = Instant::now() + report.retry_delay;
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                if self.busy.borrow().leasing {
                    // A kept lease would be answered during the pause.
                    self.queue.cancel_lease.do_send(CancelLease);
                }
                if self.failing_since.is_none() {
                    self.failing_since = Some(Instant::now());
                    self.warn_failing(error.clone(), report.retry_delay, ctx);
                }
            }
            None if !report.delivered_received_at_ms.is_empty() => {
                if let Some(since) = self.failing_since.take() {
                    log::info!(
                        "poster: delivery to {} recovered after {:.1} s",
                        self.upstream.cfg.base_url,
                        since.elapsed().as_secs_f64()
                    );
                }
            }
            None => {}
        }
    }

    /// The one WARN line of a delivery failure, with how many items wait.
    fn warn_failing(&self, error: String, retry_in: Duration, ctx: &mut Context<Self>) {
        // The logger redacts the configuration's secrets in every line.
        let base_url = self.upstream.cfg.base_url.clone();
        let stats = self.queue.stats.send(GetStats);
        ctx.spawn(
            async move {
                let waiting = match stats.await {
                    Ok(Ok(s)) => format!("{} items wait", s.pending + s.in_flight),
                    _ => "items wait".to_owned(),
                };
                log::warn!(
                    "poster: delivery to {base_url} is failing: {error}; {waiting}, retrying \
                     (next in {} ms, with backoff)",
                    retry_in.as_millis()
                );
            }
            .into_actor(self),
        );
    }
}
