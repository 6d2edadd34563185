//! [`PosterActor`]: leases ready items from the queue, posts each film's sequence once (to get
//! its upstream id) and then the films, with up to `concurrency` requests in flight, and acks
//! every outcome back to the queue.
//!
//! When the upstream fails in a retryable way the poster pauses all leasing for the backoff, so
//! an outage costs one probe per backoff rather than a churn through the backlog; the failed
//! items are due exactly when the pause ends, and are leased first (earliest due first), which keeps
//! read order with `concurrency = 1`.

use super::body::{created_id, film_body, sequence_body};
use super::config::UpstreamConfig;
use super::retry::{Verdict, backoff, body_excerpt, classify_status};
use crate::messages::{
    Ack, Lease, LeasedItem, LeasedSequence, Outcome, SequencePosted, WorkAvailable,
};
use crate::metrics::SharedPostMetrics;
use crate::record::now_ms;
use actix::prelude::*;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How much of an error body is kept with a dead item.
const ERROR_BODY_CHARS: usize = 300;
/// Largest response body read from the upstream.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// How often an idle poster looks for retries that became due (new items wake it at once).
const IDLE_POLL: Duration = Duration::from_millis(100);

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
    pub lease: Recipient<Lease>,
    pub ack: Recipient<Ack>,
    pub sequence_posted: Recipient<SequencePosted>,
}

/// Posts leased films upstream.
pub struct PosterActor {
    /// Where and how to post.
    cfg: Rc<UpstreamConfig>,
    /// The queue's mailboxes.
    queue: QueueLinks,
    /// Shared counters for `/metrics`.
    metrics: SharedPostMetrics,
    /// HTTP client, made in `started` on this actor's thread (awc::Client is !Send).
    client: Option<awc::Client>,
    /// Requests (lease + post + ack) under way; shared with `Drain`'s waiting future.
    in_flight: Rc<Cell<usize>>,
    /// A lease request is under way (one at a time keeps leases in order).
    leasing: bool,
    /// No leasing before this instant (upstream backoff).
    paused_until: Option<Instant>,
    /// New work was announced since the last lease started (a lease that raced the commit
    /// and came back empty is repeated at once instead of waiting for the idle poll).
    work_announced: bool,
    /// Upstream ids of sequences learned this run, shared with the post tasks.
    sequences: Rc<SequenceCache>,
    /// Set by `Drain`: lease nothing more.
    draining: bool,
    /// An idle re-check is scheduled.
    recheck_scheduled: bool,
}

impl PosterActor {
    pub fn new(cfg: UpstreamConfig, queue: QueueLinks, metrics: SharedPostMetrics) -> Self {
        PosterActor {
            cfg: Rc::new(cfg),
            queue,
            metrics,
            client: None,
            in_flight: Rc::new(Cell::new(0)),
            leasing: false,
            paused_until: None,
            work_announced: false,
            sequences: Rc::default(),
            draining: false,
            recheck_scheduled: false,
        }
    }
}

impl Actor for PosterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let connector = awc::Connector::new()
            .limit(self.cfg.concurrency)
            .timeout(self.cfg.timeout());
        self.client = Some(
            awc::Client::builder()
                .connector(connector)
                .timeout(self.cfg.timeout())
                .disable_redirects()
                .finish(),
        );
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

impl Handler<Drain> for PosterActor {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Drain, _: &mut Self::Context) -> Self::Result {
        self.draining = true;
        let in_flight = self.in_flight.clone();
        Box::pin(async move {
            let deadline = Instant::now() + msg.timeout;
            while in_flight.get() > 0 && Instant::now() < deadline {
                actix_rt::time::sleep(Duration::from_millis(10)).await;
            }
            in_flight.get() == 0
        })
    }
}

impl PosterActor {
    /// Leases work while a slot is free, the upstream is not in backoff and nothing else is
    /// leasing; schedules a re-check when idle or paused.
    fn fill(&mut self, ctx: &mut Context<Self>) {
        if self.draining || self.leasing || self.in_flight.get() >= self.cfg.concurrency {
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
        self.leasing = true;
        self.work_announced = false;
        // One lease fills every free slot: a lease is a round trip to the queue's thread.
        let free_slots = self.cfg.concurrency - self.in_flight.get();
        let lease = self.queue.lease.send(Lease {
            max_items: self.cfg.batch_size * free_slots,
        });
        ctx.spawn(lease.into_actor(self).map(|answer, act, ctx| {
            act.leasing = false;
            match answer {
                Ok(Ok(mut items)) if !items.is_empty() => {
                    while !items.is_empty() {
                        let rest = items.split_off(items.len().min(act.cfg.batch_size));
                        act.start_post(items, ctx);
                        items = rest;
                    }
                    act.fill(ctx);
                }
                Ok(Ok(_)) if act.work_announced => act.fill(ctx),
                Ok(Ok(_)) => act.schedule_recheck(ctx, IDLE_POLL),
                Ok(Err(e)) => {
                    log::warn!("poster: lease failed: {e}");
                    act.schedule_recheck(ctx, Duration::from_millis(500));
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
        for item in &mut items {
            if item.sequence.upstream_id.is_none() {
                item.sequence.upstream_id =
                    self.sequences.ids.borrow().get(&item.sequence.id).cloned();
            }
        }
        self.in_flight.set(self.in_flight.get() + 1);
        let client = self.client.clone().expect("client is made in started");
        let post = post_items(
            client,
            self.cfg.clone(),
            self.queue.clone(),
            self.sequences.clone(),
            items,
        );
        ctx.spawn(post.into_actor(self).then(|report, act, _| {
            act.record(&report);
            let ack = act.queue.ack.send(Ack {
                outcomes: report.outcomes,
            });
            let in_flight = act.in_flight.clone();
            async move {
                match ack.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        log::error!("poster: ack not stored ({e}); items will be re-sent")
                    }
                    Err(e) => log::error!("poster: queue gone before ack ({e})"),
                }
                in_flight.set(in_flight.get() - 1);
            }
            .into_actor(act)
            .map(|_, act, ctx| act.fill(ctx))
        }));
    }

    /// Updates counters and the upstream backoff from one report.
    fn record(&mut self, report: &PostReport) {
        let m = &self.metrics;
        let now = now_ms();
        for (_, outcome) in &report.outcomes {
            use std::sync::atomic::Ordering::Relaxed;
            match outcome {
                Outcome::Delivered { .. } => m.delivered.fetch_add(1, Relaxed),
                Outcome::Retry { .. } => m.retried.fetch_add(1, Relaxed),
                Outcome::Dead { .. } => m.dead.fetch_add(1, Relaxed),
            };
        }
        for received_at_ms in &report.delivered_received_at_ms {
            self.metrics
                .observe_latency_us(((now - received_at_ms).max(0) as u64) * 1000);
        }
        self.metrics.sequences_posted.fetch_add(
            report.sequences_learned.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if report.upstream_failing {
            self.paused_until = Some(Instant::now() + report.retry_delay);
        }
    }
}

/// Upstream ids of sequences by local id. Posting a sequence holds `post_lock`, so tasks in
/// flight together post each new sequence once and the later ones reuse its id.
#[derive(Default)]
struct SequenceCache {
    ids: RefCell<HashMap<i64, Value>>,
    post_lock: tokio::sync::Mutex<()>,
}

/// Sequences remembered at most (a lot changes rarely; the queue store keeps them all).
const SEQUENCE_CACHE_MAX: usize = 10_000;

impl SequenceCache {
    fn remember(&self, sequence_id: i64, upstream_id: Value) {
        let mut ids = self.ids.borrow_mut();
        if ids.len() >= SEQUENCE_CACHE_MAX {
            ids.clear();
        }
        ids.insert(sequence_id, upstream_id);
    }
}

/// What one post task did.
struct PostReport {
    /// Per item outcome, for the ack.
    outcomes: Vec<(i64, Outcome)>,
    /// Sequences posted in this task: (local id, upstream id).
    sequences_learned: Vec<(i64, Value)>,
    /// `received_at_ms` of each delivered item, for the latency histogram.
    delivered_received_at_ms: Vec<i64>,
    /// A retryable failure happened: pause leasing for `retry_delay`.
    upstream_failing: bool,
    /// The delay given to retried items.
    retry_delay: Duration,
}

/// An attempt's result before it becomes an [`Outcome`].
enum Attempt {
    Ok(Option<Value>),
    Retry(String),
    Dead(String),
}

async fn post_items(
    client: awc::Client,
    cfg: Rc<UpstreamConfig>,
    queue: QueueLinks,
    sequences: Rc<SequenceCache>,
    items: Vec<LeasedItem>,
) -> PostReport {
    let failures = items.iter().map(|i| i.attempts).max().unwrap_or(0);
    let retry_delay = backoff(
        failures,
        Duration::from_millis(cfg.retry_initial_ms),
        Duration::from_millis(cfg.retry_max_ms),
        fastrand::f64(),
    );
    let mut report = PostReport {
        outcomes: Vec::with_capacity(items.len()),
        sequences_learned: Vec::new(),
        delivered_received_at_ms: Vec::new(),
        upstream_failing: false,
        retry_delay,
    };

    // Sequences first: each distinct one without an upstream id is posted once.
    let mut sequence_results: HashMap<i64, Attempt> = HashMap::new();
    for item in &items {
        let seq = &item.sequence;
        if seq.upstream_id.is_some() || sequence_results.contains_key(&seq.id) {
            continue;
        }
        let _posting = sequences.post_lock.lock().await;
        let known = sequences.ids.borrow().get(&seq.id).cloned();
        if let Some(id) = known {
            sequence_results.insert(seq.id, Attempt::Ok(Some(id)));
            continue;
        }
        let attempt = post_sequence(&client, &cfg, seq).await;
        if let Attempt::Ok(Some(id)) = &attempt {
            sequences.remember(seq.id, id.clone());
            report.sequences_learned.push((seq.id, id.clone()));
            let stored = queue
                .sequence_posted
                .send(SequencePosted {
                    sequence_id: seq.id,
                    upstream_id: id.clone(),
                })
                .await;
            if !matches!(stored, Ok(Ok(()))) {
                log::warn!(
                    "poster: sequence {} id not stored; it will be re-posted",
                    seq.uid
                );
            }
        }
        sequence_results.insert(seq.id, attempt);
    }

    let mut ready = Vec::with_capacity(items.len());
    for item in items {
        let upstream_id = item.sequence.upstream_id.clone().or_else(|| {
            match sequence_results.get(&item.sequence.id) {
                Some(Attempt::Ok(id)) => id.clone(),
                _ => None,
            }
        });
        match (upstream_id, sequence_results.get(&item.sequence.id)) {
            (Some(id), _) => ready.push((item, id)),
            (None, Some(Attempt::Dead(e))) => report.outcomes.push((
                item.id,
                Outcome::Dead {
                    error: format!("sequence: {e}"),
                },
            )),
            (None, Some(Attempt::Retry(e))) => {
                report.upstream_failing = true;
                let error = format!("sequence: {e}");
                let delay_ms = retry_delay.as_millis() as u64;
                report
                    .outcomes
                    .push((item.id, Outcome::Retry { error, delay_ms }));
            }
            (None, _) => report.outcomes.push((
                item.id,
                Outcome::Dead {
                    error: format!("sequence response has no `{}` field", cfg.id_field),
                },
            )),
        }
    }
    if ready.is_empty() {
        return report;
    }

    let attempts = if cfg.batch_size > 1 {
        post_batch(&client, &cfg, &ready).await
    } else {
        let (item, seq_id) = &ready[0];
        vec![post_film(&client, &cfg, item, seq_id).await]
    };
    for ((item, _), attempt) in ready.iter().zip(attempts) {
        let outcome = match attempt {
            Attempt::Ok(upstream_id) => {
                report.delivered_received_at_ms.push(item.received_at_ms);
                Outcome::Delivered { upstream_id }
            }
            Attempt::Retry(error) => {
                report.upstream_failing = true;
                Outcome::Retry {
                    error,
                    delay_ms: retry_delay.as_millis() as u64,
                }
            }
            Attempt::Dead(error) => Outcome::Dead { error },
        };
        report.outcomes.push((item.id, outcome));
    }
    report
}

fn request(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    url: &str,
    uid: Option<&str>,
) -> awc::ClientRequest {
    let mut req = client
        .post(url)
        .insert_header(("Accept", "application/json"));
    if let Some(uid) = uid {
        req = req.insert_header(("Idempotency-Key", uid));
    }
    if !cfg.token.is_empty() {
        req = req.insert_header((
            "Authorization",
            format!("{} {}", cfg.auth_scheme, cfg.token),
        ));
    }
    req
}

/// Sends one JSON request; the status and body, or a retryable transport error.
async fn send_json(req: awc::ClientRequest, body: &Value) -> Result<(u16, bytes::Bytes), String> {
    let mut response = req
        .send_json(body)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body()
        .limit(MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| format!("reading the response failed: {e}"))?;
    Ok((status, body))
}

/// Turns a status and body into an attempt, reading the created id from a 2xx.
fn judge(status: u16, body: &[u8], id_field: &str) -> Attempt {
    match classify_status(status) {
        Verdict::Delivered => {
            let id = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| created_id(&v, id_field));
            Attempt::Ok(id)
        }
        Verdict::Retry => Attempt::Retry(format!(
            "HTTP {status}: {}",
            body_excerpt(body, ERROR_BODY_CHARS)
        )),
        Verdict::Dead => Attempt::Dead(format!(
            "HTTP {status}: {}",
            body_excerpt(body, ERROR_BODY_CHARS)
        )),
    }
}

async fn post_sequence(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    seq: &LeasedSequence,
) -> Attempt {
    let req = request(client, cfg, &cfg.sequences_url(), Some(&seq.uid));
    match send_json(req, &sequence_body(seq)).await {
        Ok((status, body)) => judge(status, &body, &cfg.id_field),
        Err(e) => Attempt::Retry(e),
    }
}

async fn post_film(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    item: &LeasedItem,
    seq_id: &Value,
) -> Attempt {
    let req = request(client, cfg, &cfg.films_url(), Some(&item.uid));
    match send_json(req, &film_body(item, seq_id, cfg.body)).await {
        Ok((status, body)) => judge(status, &body, &cfg.id_field),
        Err(e) => Attempt::Retry(e),
    }
}

/// Posts films as one array to `<films_path>batch/` and reads each item's own result.
/// A batch-level failure applies to every item; an item missing from the results is retried.
async fn post_batch(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    ready: &[(LeasedItem, Value)],
) -> Vec<Attempt> {
    let body = Value::Array(
        ready
            .iter()
            .map(|(item, seq)| film_body(item, seq, cfg.body))
            .collect(),
    );
    let req = request(client, cfg, &cfg.films_batch_url(), None);
    let (status, response) = match send_json(req, &body).await {
        Ok(answer) => answer,
        Err(e) => return ready.iter().map(|_| Attempt::Retry(e.clone())).collect(),
    };
    if classify_status(status) != Verdict::Delivered {
        return ready
            .iter()
            .map(|_| judge(status, &response, &cfg.id_field))
            .collect();
    }
    let results = serde_json::from_slice::<Value>(&response)
        .ok()
        .and_then(|v| v.get("results").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let by_uid: HashMap<&str, &Value> = results
        .iter()
        .filter_map(|r| Some((r.get("uid")?.as_str()?, r)))
        .collect();
    ready
        .iter()
        .map(|(item, _)| match by_uid.get(item.uid.as_str()) {
            Some(result) => {
                let status = result.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
                match classify_status(status) {
                    Verdict::Delivered => Attempt::Ok(created_id(result, &cfg.id_field)),
                    verdict => {
                        let error = result.get("error").map(|e| match e {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        });
                        let error =
                            format!("HTTP {status} in batch: {}", error.unwrap_or_default());
                        if verdict == Verdict::Retry {
                            Attempt::Retry(error)
                        } else {
                            Attempt::Dead(error)
                        }
                    }
                }
            }
            None => Attempt::Retry("batch response has no result for this uid".into()),
        })
        .collect()
}
