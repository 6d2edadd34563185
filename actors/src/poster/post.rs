//! One post task: the leased items of one request slot, delivered in the order of `docs/ARCHITECTURE.md` (delivery rules) —
//! each item's sequence first (once; its upstream id stored in the queue), then the films, one
//! per request or as a batch — and summed up in a [`PostReport`] for the actor to ack.
//!
//! Batches report per item, never all or nothing; a 413 splits a batch in halves down to single
//! items. A sequence answered without an id makes its films dead with that reason, and is not
//! posted again for each of them.

use super::answer::{Reply, batch_delivered, judge, row_by_uid, uid_already_exists};
use super::body::{film_body, sequence_body};
use super::http::Upstream;
use crate::backoff::Backoff;
use crate::messages::{LeasedItem, LeasedSequence, Outcome, SequencePosted};
use crate::redact::redact;
use actix::Recipient;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// Sequences remembered at most (a lot changes rarely; the queue store keeps them all).
const SEQUENCE_CACHE_MAX: usize = 10_000;

/// What this process learned about sequences, shared by the post tasks. Posting a sequence
/// holds `post_lock`, so tasks in flight together post each new sequence once.
#[derive(Default)]
pub struct SequenceCache {
    /// Upstream ids by local sequence id.
    ids: RefCell<HashMap<i64, Value>>,
    /// Sequences the upstream created without giving an id, with the error their films get.
    without_id: RefCell<HashMap<i64, String>>,
    post_lock: tokio::sync::Mutex<()>,
}

impl SequenceCache {
    /// The upstream id of a sequence, if this process learned it.
    pub fn id_of(&self, sequence_id: i64) -> Option<Value> {
        self.ids.borrow().get(&sequence_id).cloned()
    }

    fn remember(&self, sequence_id: i64, upstream_id: Value) {
        let mut ids = self.ids.borrow_mut();
        if ids.len() >= SEQUENCE_CACHE_MAX {
            ids.clear();
        }
        ids.insert(sequence_id, upstream_id);
    }
}

/// What one post task did.
pub struct PostReport {
    /// Per item outcome, for the ack.
    pub outcomes: Vec<(i64, Outcome)>,
    /// Sequences posted in this task.
    pub sequences_posted: u64,
    /// `received_at_ms` of each delivered item, for the latency histogram.
    pub delivered_received_at_ms: Vec<i64>,
    /// The first retryable failure, if any: leasing pauses for `retry_delay`.
    pub failure: Option<String>,
    /// The delay given to retried items (the backoff, or a longer `Retry-After`).
    pub retry_delay: Duration,
    /// A redirect the poster does not follow, once per task, for the actor to log.
    pub redirect: Option<String>,
}

/// Posts `items` (sequences first) and reports each item's outcome.
pub async fn post_items(
    upstream: &Upstream,
    sequence_posted: &Recipient<SequencePosted>,
    sequences: &SequenceCache,
    items: Vec<LeasedItem>,
) -> PostReport {
    let cfg = &upstream.cfg;
    let failures = items.iter().map(|i| i.attempts).max().unwrap_or(0);
    let mut report = PostReport {
        outcomes: Vec::with_capacity(items.len()),
        sequences_posted: 0,
        delivered_received_at_ms: Vec::new(),
        failure: None,
        retry_delay: Backoff::new(
            Duration::from_millis(cfg.retry_initial_ms),
            Duration::from_millis(cfg.retry_max_ms),
        )
        .jittered(failures, fastrand::f64()),
        redirect: None,
    };

    // Sequences first: each distinct one without an upstream id is posted once. Its result:
    // the upstream id, or the outcome its films share.
    let mut sequence_results: HashMap<i64, Result<Value, Outcome>> = HashMap::new();
    for item in &items {
        let seq = &item.sequence;
        if seq.upstream_id.is_some() || sequence_results.contains_key(&seq.id) {
            continue;
        }
        let _posting = sequences.post_lock.lock().await;
        if let Some(id) = sequences.id_of(seq.id) {
            sequence_results.insert(seq.id, Ok(id));
            continue;
        }
        if let Some(error) = sequences.without_id.borrow().get(&seq.id) {
            let error = error.clone();
            sequence_results.insert(seq.id, Err(Outcome::Dead { error }));
            continue;
        }
        let result = match create_sequence(upstream, seq, &mut report).await {
            Outcome::Delivered {
                upstream_id: Some(id),
            } => {
                report.sequences_posted += 1;
                sequences.remember(seq.id, id.clone());
                let stored = sequence_posted
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
                Ok(id)
            }
            Outcome::Delivered { upstream_id: None } => {
                let error = format!(
                    "the sequence was created but its answer has no `{}` field (check \
                     upstream.id_field)",
                    cfg.id_field
                );
                log::warn!("poster: sequence {}: {error}; its films are dead", seq.uid);
                report.sequences_posted += 1;
                sequences
                    .without_id
                    .borrow_mut()
                    .insert(seq.id, error.clone());
                Err(Outcome::Dead { error })
            }
            failed => Err(failed),
        };
        sequence_results.insert(seq.id, result);
    }

    let mut ready = Vec::with_capacity(items.len());
    for item in items {
        match (
            &item.sequence.upstream_id,
            sequence_results.get(&item.sequence.id),
        ) {
            (Some(id), _) | (None, Some(Ok(id))) => {
                let id = id.clone();
                ready.push((item, id));
            }
            (None, failed) => {
                let outcome = match failed {
                    Some(Err(Outcome::Dead { error })) => Outcome::Dead {
                        error: format!("sequence: {error}"),
                    },
                    Some(Err(Outcome::Retry { error, delay_ms })) => Outcome::Retry {
                        error: format!("sequence: {error}"),
                        delay_ms: *delay_ms,
                    },
                    // Not met: every sequence without an id was posted above, and a delivered
                    // one has its id. Were it met, the film would wait for its sequence.
                    _ => Outcome::transport("sequence: not posted yet".into()),
                };
                report.push(&item, outcome);
            }
        }
    }
    if ready.is_empty() {
        return report;
    }

    let outcomes = if cfg.batch_size > 1 {
        post_batch(upstream, &ready, &mut report).await
    } else {
        let (item, sequence_id) = &ready[0];
        let body = film_body(item, sequence_id, cfg.body);
        vec![match upstream
            .post(&cfg.films_url(), Some(&item.uid), &body)
            .await
        {
            // An earlier attempt stored it and its answer was lost (stock DRF's replay answer).
            Ok(reply) if uid_already_exists(&reply, &item.uid) => {
                Outcome::Delivered { upstream_id: None }
            }
            Ok(reply) => report.judged(&reply, &cfg.id_field),
            Err(e) => Outcome::transport(e),
        }]
    };
    for ((item, _), outcome) in ready.iter().zip(outcomes) {
        report.push(item, outcome);
    }
    report
}

/// How many uids derived from a sequence's own one are tried in one post task before its
/// films wait for the next retry. Every derived uid found taken is the orphan of a lost
/// answer, so the walk ends long before this; the task starts from the sequence's own uid
/// again (the derived ones are not stored) and walks the same names.
const DERIVED_UIDS_PER_TASK: u32 = 100;

/// Creates one sequence upstream. A backend that answers that the sequence's uid already
/// exists (an earlier answer was lost) is asked for that row (`?uid=`, used only when the
/// answer is filtered to it); a backend that cannot say posts the sequence again under a uid
/// derived from its own (`<uid>.2`, `.3`, ...: the same ones after a restart), with one WARN
/// naming the orphaned row.
async fn create_sequence(
    upstream: &Upstream,
    seq: &LeasedSequence,
    report: &mut PostReport,
) -> Outcome {
    let cfg = &upstream.cfg;
    let mut uid = seq.uid.clone();
    for derived in 2..2 + DERIVED_UIDS_PER_TASK {
        let body = sequence_body(seq, &uid);
        let reply = match upstream.post(&cfg.sequences_url(), Some(&uid), &body).await {
            Ok(reply) => reply,
            Err(e) => return Outcome::transport(e),
        };
        if !uid_already_exists(&reply, &uid) {
            return report.judged(&reply, &cfg.id_field);
        }
        let lookup = format!("{}?uid={}", cfg.sequences_url(), urlencoding_uid(&uid));
        let found = match upstream.get(&lookup).await {
            Ok(answer) if (200..300).contains(&answer.status) => {
                row_by_uid(&answer.body, &uid, &cfg.id_field)
            }
            Ok(_) => None,
            Err(e) => return Outcome::transport(e),
        };
        if let Some(id) = found {
            return Outcome::Delivered {
                upstream_id: Some(id),
            };
        }
        let next = format!("{}.{derived}", seq.uid);
        log::warn!(
            "poster: sequence {uid} already exists upstream but its id cannot be learned \
             (GET {} is not filtered by ?uid=); posting it again as {next}, which leaves the \
             row {uid} upstream orphaned, without films",
            cfg.sequences_url()
        );
        uid = next;
    }
    Outcome::transport(format!(
        "sequence {}: {DERIVED_UIDS_PER_TASK} uids derived from it already exist upstream",
        seq.uid
    ))
}

/// A uid as a query value (uids are uuids, but a hand-made one may hold anything).
fn urlencoding_uid(uid: &str) -> String {
    uid.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Posts films as one array to `<films_path>batch/` and reads each item's result; a 413
/// splits the batch in halves (a single item's 413 makes it dead).
fn post_batch<'a>(
    upstream: &'a Upstream,
    ready: &'a [(LeasedItem, Value)],
    report: &'a mut PostReport,
) -> LocalBoxFuture<'a, Vec<Outcome>> {
    Box::pin(async move {
        let cfg = &upstream.cfg;
        let body: Vec<_> = ready
            .iter()
            .map(|(item, seq)| film_body(item, seq, cfg.body))
            .collect();
        let reply = match upstream.post(&cfg.films_batch_url(), None, &body).await {
            Ok(reply) => reply,
            Err(e) => {
                return ready
                    .iter()
                    .map(|_| Outcome::transport(e.clone()))
                    .collect();
            }
        };
        if reply.status == 413 && ready.len() > 1 {
            let (first, second) = ready.split_at(ready.len() / 2);
            let mut outcomes = post_batch(upstream, first, report).await;
            outcomes.extend(post_batch(upstream, second, report).await);
            return outcomes;
        }
        if (200..300).contains(&reply.status) {
            let uids: Vec<&str> = ready.iter().map(|(item, _)| item.uid.as_str()).collect();
            return batch_delivered(&reply.body, &uids, &cfg.id_field);
        }
        let outcome = report.judged(&reply, &cfg.id_field);
        ready.iter().map(|_| outcome.clone()).collect()
    })
}

impl PostReport {
    /// [`judge`], noting a redirect the poster does not follow for the actor's warning.
    fn judged(&mut self, reply: &Reply, id_field: &str) -> Outcome {
        let outcome = judge(reply, id_field);
        if matches!(reply.status, 301..=303)
            && let Outcome::Dead { error } = &outcome
        {
            self.redirect.get_or_insert_with(|| error.clone());
        }
        outcome
    }

    /// Notes one item's outcome. Its error is kept with the item and shown by the API, so the
    /// configuration's secrets (a transport error names the URL) are redacted here, before it
    /// is stored.
    fn push(&mut self, item: &LeasedItem, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Delivered { upstream_id } => {
                self.delivered_received_at_ms.push(item.received_at_ms);
                Outcome::Delivered { upstream_id }
            }
            Outcome::Retry { error, delay_ms } => {
                let error = redact(&error).into_owned();
                self.retry_delay = self.retry_delay.max(Duration::from_millis(delay_ms));
                self.failure.get_or_insert_with(|| error.clone());
                Outcome::Retry { error, delay_ms }
            }
            Outcome::Dead { error } => Outcome::Dead {
                error: redact(&error).into_owned(),
            },
        };
        self.outcomes.push((item.id, outcome));
    }

    /// The outcomes with every retry due after the report's final `retry_delay` (which a
    /// `Retry-After` later in the task may have raised).
    pub fn take_outcomes(&mut self) -> Vec<(i64, Outcome)> {
        let delay_ms = self.retry_delay.as_millis() as u64;
        let mut outcomes = std::mem::take(&mut self.outcomes);
        for (_, outcome) in &mut outcomes {
            if let Outcome::Retry { delay_ms: d, .. } = outcome {
                *d = delay_ms;
            }
        }
        outcomes
    }
}
