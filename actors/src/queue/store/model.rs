//! The queue store against a model (as Vector tests its disk buffer): random sequences of
//! enqueues, commits, leases, acks, operator actions, crashes and graceful restarts applied
//! to the real store on a real file and to a tiny in-memory model, compared after every step.
//!
//! What it states: no committed item is lost or changes state by itself; a crash loses exactly
//! the uncommitted writes; an item is never leased twice while in flight, and every pending
//! item is leased again eventually (nothing waits while the poster asks); ids are never
//! reused; after a crash every item that was in flight is counted as an uncertain resend when
//! it is leased again, and after a graceful stop none is.

use super::QueueStore;
use crate::messages::{ItemState, Outcome};
use crate::queue::QueueConfig;
use crate::record::parse::parse_frame;
use crate::record::{ItemBody, NewItem, RecordConfig, SequenceRef};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use tempfile::TempDir;

/// One step of a run.
#[derive(Debug, Clone)]
enum Op {
    /// Frames read: films, and whether a rejected frame comes last.
    Enqueue {
        films: u8,
        rejected: bool,
    },
    Commit,
    Lease {
        max: u8,
    },
    /// Acks the in-flight item at this position (mod their count) with the outcome.
    Ack {
        pick: u8,
        outcome: u8,
    },
    /// Retries every dead item (the rejected frames stay dead; dead films revive).
    RetryAllDead,
    /// Deletes the dead item at this position (mod their count).
    DeleteDead {
        pick: u8,
    },
    /// The process dies: what was not committed is gone.
    Crash,
    /// A graceful stop: everything in flight is acked as delivered, the stop marked, committed.
    GracefulRestart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6, any::<bool>()).prop_map(|(films, rejected)| Op::Enqueue { films, rejected }),
        4 => Just(Op::Commit),
        4 => (1u8..8).prop_map(|max| Op::Lease { max }),
        4 => (any::<u8>(), 0u8..3).prop_map(|(pick, outcome)| Op::Ack { pick, outcome }),
        1 => Just(Op::RetryAllDead),
        1 => any::<u8>().prop_map(|pick| Op::DeleteDead { pick }),
        1 => Just(Op::Crash),
        1 => Just(Op::GracefulRestart),
    ]
}

/// What the model knows of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelItem {
    state: ItemState,
    /// A frame that does not parse: dead, and it stays dead on retry.
    rejected: bool,
}

#[derive(Debug, Default)]
struct Model {
    /// Committed items by id.
    committed: BTreeMap<i64, ModelItem>,
    /// The open transaction's view (committed plus uncommitted changes).
    live: BTreeMap<i64, ModelItem>,
    in_flight: HashSet<i64>,
    /// Items in flight when the last crash came, not leased again since.
    uncertain: HashSet<i64>,
    /// Highest id handed out (a crash rolls back the ids of uncommitted rows).
    max_id: i64,
    /// Highest id ever committed: ids up to it are never handed out again.
    committed_max_id: i64,
}

impl Model {
    fn commit(&mut self) {
        self.committed = self.live.clone();
        self.committed_max_id = self.max_id;
    }

    fn crash(&mut self) {
        self.live = self.committed.clone();
        self.max_id = self.committed_max_id;
        self.uncertain.extend(
            self.in_flight
                .drain()
                .filter(|id| self.committed.contains_key(id)),
        );
        self.uncertain.retain(|id| {
            self.committed
                .get(id)
                .is_some_and(|i| i.state == ItemState::Pending)
        });
    }

    fn counts(&self) -> (u64, u64, u64, u64) {
        let count = |s| self.live.values().filter(|i| i.state == s).count() as u64;
        let in_flight = self.in_flight.len() as u64;
        (
            count(ItemState::Pending) - in_flight,
            in_flight,
            count(ItemState::Dead),
            count(ItemState::Posted),
        )
    }
}

fn film_item(n: u64) -> NewItem {
    let raw = format!("L1,{n},25.4,1200,0");
    let data = parse_frame(&RecordConfig::default(), raw.as_bytes()).expect("a film");
    NewItem {
        uid: format!("u{n}"),
        source: "line-1".into(),
        received_at_ms: 1_700_000_000_000,
        raw: raw.into_bytes(),
        body: ItemBody::Film(data),
        sequence: Some(SequenceRef {
            uid: "seq-L1".into(),
            key: Some("L1".into()),
        }),
    }
}

fn rejected_item(n: u64) -> NewItem {
    NewItem {
        body: ItemBody::Rejected {
            reason: "expected 5 fields".into(),
        },
        raw: b"L1,x".to_vec(),
        sequence: None,
        ..film_item(n)
    }
}

const NOW: i64 = 1_700_000_000_000;

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = TempDir::new().unwrap();
    let cfg = QueueConfig {
        path: dir.path().join("queue.sqlite3"),
        posted_history: 1_000_000,
        ..QueueConfig::default()
    };
    let parsers = std::collections::HashMap::from([(
        "line-1".to_owned(),
        crate::record::LinkParser::from(RecordConfig::default()),
    )]);
    let mut store = QueueStore::open(&cfg).unwrap();
    let mut model = Model::default();
    let mut next_uid = 0u64;
    let mut uncertain_seen = 0u64;
    for op in ops {
        match op {
            Op::Enqueue { films, rejected } => {
                let mut items = Vec::new();
                let mut kinds = Vec::new();
                for _ in 0..films {
                    next_uid += 1;
                    items.push(film_item(next_uid));
                    kinds.push(false);
                }
                if rejected {
                    next_uid += 1;
                    items.push(rejected_item(next_uid));
                    kinds.push(true);
                }
                store.enqueue(items, NOW).unwrap();
                for rejected in kinds {
                    model.max_id += 1;
                    let state = if rejected {
                        ItemState::Dead
                    } else {
                        ItemState::Pending
                    };
                    model
                        .live
                        .insert(model.max_id, ModelItem { state, rejected });
                }
            }
            Op::Commit => {
                store.commit().unwrap();
                model.commit();
            }
            Op::Lease { max } => {
                let max = max as usize;
                let leasable: HashSet<i64> = model
                    .committed
                    .iter()
                    .filter(|(id, i)| {
                        i.state == ItemState::Pending
                            && model
                                .live
                                .get(id)
                                .is_some_and(|l| l.state == ItemState::Pending)
                            && !model.in_flight.contains(id)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                let mut leased = store.lease(max, NOW).unwrap();
                if leased.len() < max.min(leasable.len()) {
                    // Only the lease limit may hold leasable items back, and the limit it
                    // raised is committed at once (as the queue actor does); then they come.
                    prop_assert!(store.has_uncommitted(), "leasable items held back");
                    store.commit().unwrap();
                    model.commit();
                    let more = store.lease(max - leased.len(), NOW).unwrap();
                    prop_assert!(!more.is_empty(), "leasable items wait after the commit");
                    leased.extend(more);
                }
                for item in &leased {
                    prop_assert!(
                        leasable.contains(&item.id),
                        "leased {} which is not committed, pending and free",
                        item.id
                    );
                    prop_assert!(model.in_flight.insert(item.id), "leased twice");
                    if model.uncertain.remove(&item.id) {
                        uncertain_seen += 1;
                    }
                }
            }
            Op::Ack { pick, outcome } => {
                let mut flying: Vec<i64> = model.in_flight.iter().copied().collect();
                if flying.is_empty() {
                    continue;
                }
                flying.sort_unstable();
                let id = flying[pick as usize % flying.len()];
                let (outcome, state) = match outcome {
                    0 => (Outcome::Delivered { upstream_id: None }, ItemState::Posted),
                    1 => (
                        Outcome::Retry {
                            error: "HTTP 503".into(),
                            delay_ms: 0,
                        },
                        ItemState::Pending,
                    ),
                    _ => (
                        Outcome::Dead {
                            error: "HTTP 400".into(),
                        },
                        ItemState::Dead,
                    ),
                };
                store.ack(vec![(id, outcome)], NOW);
                model.in_flight.remove(&id);
                if let Some(item) = model.live.get_mut(&id) {
                    item.state = state;
                }
            }
            Op::RetryAllDead => {
                store.retry_all_dead(&parsers, NOW).unwrap();
                // It commits each page of dead items it went through (none: no commit).
                let any_dead = model.live.values().any(|i| i.state == ItemState::Dead);
                for item in model.live.values_mut() {
                    if item.state == ItemState::Dead && !item.rejected {
                        item.state = ItemState::Pending;
                    }
                }
                if any_dead {
                    model.commit();
                }
            }
            Op::DeleteDead { pick } => {
                let dead: Vec<i64> = model
                    .live
                    .iter()
                    .filter(|(_, i)| i.state == ItemState::Dead)
                    .map(|(id, _)| *id)
                    .collect();
                if dead.is_empty() {
                    continue;
                }
                let id = dead[pick as usize % dead.len()];
                store.delete_dead(id).unwrap();
                model.live.remove(&id);
                model.commit();
            }
            Op::Crash => {
                drop(store);
                store = QueueStore::open(&cfg).unwrap();
                model.crash();
                uncertain_seen = 0;
            }
            Op::GracefulRestart => {
                let flying: Vec<i64> = model.in_flight.iter().copied().collect();
                store.ack(
                    flying
                        .iter()
                        .map(|&id| (id, Outcome::Delivered { upstream_id: None }))
                        .collect(),
                    NOW,
                );
                for id in flying {
                    model.in_flight.remove(&id);
                    if let Some(item) = model.live.get_mut(&id) {
                        item.state = ItemState::Posted;
                    }
                }
                store.mark_stop(Vec::new(), true);
                store.commit().unwrap();
                model.commit();
                store.release_lock();
                drop(store);
                store = QueueStore::open(&cfg).unwrap();
                model.uncertain.clear();
                uncertain_seen = 0;
            }
        }
        let stats = store.stats(NOW);
        let (pending, in_flight, dead, posted) = model.counts();
        prop_assert_eq!(
            (stats.pending, stats.in_flight, stats.dead, stats.posted),
            (pending, in_flight, dead, posted),
            "counts after {:?}",
            model.live
        );
        // Every item that was in flight at a crash is counted when leased again (the count
        // may be higher: items up to the lease limit are uncertain too).
        prop_assert!(stats.uncertain_resends_total >= uncertain_seen);
    }
    // The file holds exactly the committed model, ids never reused.
    store.commit().unwrap();
    model.commit();
    let page = store.list(None, 100_000, 0).unwrap();
    let mut stored: Vec<(i64, ItemState)> = page
        .results
        .iter()
        .map(|i| {
            let state = match i.state {
                ItemState::InFlight => ItemState::Pending,
                s => s,
            };
            (i.id, state)
        })
        .collect();
    stored.sort_unstable_by_key(|(id, _)| *id);
    let expected: Vec<(i64, ItemState)> = model
        .committed
        .iter()
        .map(|(id, i)| (*id, i.state))
        .collect();
    prop_assert_eq!(stored, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FILMGATE_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_behaves_like_its_model_through_crashes_and_restarts(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        run(ops)?;
    }
}
