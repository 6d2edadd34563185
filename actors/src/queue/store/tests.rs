//! Unit tests of the queue store on real SQLite files in temp dirs.

use super::lease::{DUE_RETRIES_SQL, FRESH_SQL};
use super::*;
use crate::messages::{ItemState, LeasedItem, Outcome, RetryAllOutcome};
use crate::record::parse::parse_frame;
use crate::record::{ItemBody, LinkParser, RecordConfig, SequenceRef, new_uid};
use serde_json::Value;
use serde_json::json;
use std::collections::HashMap;
use tempfile::TempDir;

const NOW: i64 = 1_700_000_000_000;

fn config(dir: &TempDir) -> QueueConfig {
    QueueConfig {
        path: dir.path().join("data/queue.sqlite3"),
        ..QueueConfig::default()
    }
}

fn open(dir: &TempDir) -> QueueStore {
    QueueStore::open(&config(dir)).expect("open queue")
}

fn seq(uid: &str, key: &str) -> Option<SequenceRef> {
    Some(SequenceRef {
        uid: uid.into(),
        key: Some(key.into()),
    })
}

fn film(n: i64) -> NewItem {
    let raw = format!("L1,{n},25.4,1200,0");
    let data = parse_frame(&RecordConfig::default(), raw.as_bytes()).unwrap();
    NewItem {
        uid: new_uid(),
        source: "line-1".into(),
        received_at_ms: NOW + n,
        raw: raw.into_bytes(),
        body: ItemBody::Film(data),
        sequence: seq("seq-L1", "L1"),
    }
}

fn rejected(raw: &[u8], sequence: Option<SequenceRef>) -> NewItem {
    let reason = parse_frame(&RecordConfig::default(), raw).unwrap_err();
    NewItem {
        uid: new_uid(),
        source: "line-1".into(),
        received_at_ms: NOW,
        raw: raw.to_vec(),
        body: ItemBody::Rejected { reason },
        sequence,
    }
}

/// A store holding one film, leased (as the poster holds it before its ack); and its id.
fn one_film_leased(dir: &TempDir) -> (QueueStore, i64) {
    let mut store = open(dir);
    store.enqueue(films(1, 1), NOW).unwrap();
    store.commit().unwrap();
    let id = store.lease(1, NOW).unwrap()[0].id;
    (store, id)
}

fn films(from: i64, to: i64) -> Vec<NewItem> {
    (from..=to).map(film).collect()
}

fn film_nos(items: &[LeasedItem]) -> Vec<i64> {
    items
        .iter()
        .map(|i| i.fields()["film_no"].as_i64().unwrap())
        .collect()
}

fn parsers(record: RecordConfig) -> HashMap<String, LinkParser> {
    HashMap::from([("line-1".to_string(), record.into())])
}

fn delivered(id: i64) -> (i64, Outcome) {
    (
        id,
        Outcome::Delivered {
            upstream_id: Some(json!(id * 100)),
        },
    )
}

#[test]
fn committed_items_are_leased_once_in_read_order() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let outcome = store.enqueue(films(1, 5), NOW).unwrap();
    assert_eq!(
        outcome,
        EnqueueOutcome {
            accepted: 5,
            refused: 0
        }
    );
    store.commit().unwrap();
    assert!(store.take_new_work());
    assert_eq!(film_nos(&store.lease(3, NOW).unwrap()), [1, 2, 3]);
    assert_eq!(film_nos(&store.lease(10, NOW).unwrap()), [4, 5]);
    assert!(store.lease(10, NOW).unwrap().is_empty());
    let stats = store.stats(NOW);
    assert_eq!((stats.pending, stats.in_flight), (0, 5));
}

#[test]
fn lease_excludes_uncommitted_rows() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store.enqueue(films(1, 2), NOW).unwrap();
    assert!(
        store.lease(10, NOW).unwrap().is_empty(),
        "uncommitted rows were leased"
    );
    store.commit().unwrap();
    store.enqueue(films(3, 4), NOW).unwrap();
    assert_eq!(film_nos(&store.lease(10, NOW).unwrap()), [1, 2]);
    store.commit().unwrap();
    assert_eq!(film_nos(&store.lease(10, NOW).unwrap()), [3, 4]);
}

#[test]
fn lease_excludes_in_flight_retries() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store.enqueue(films(1, 2), NOW).unwrap();
    store.commit().unwrap();
    let leased = store.lease(10, NOW).unwrap();
    let retry = |i: &LeasedItem| {
        (
            i.id,
            Outcome::Retry {
                error: "503".into(),
                delay_ms: 0,
            },
        )
    };
    store.ack(leased.iter().map(retry).collect(), NOW);
    store.commit().unwrap();
    let again = store.lease(1, NOW + 1).unwrap();
    assert_eq!(film_nos(&again), [1]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        film_nos(&store.lease(10, NOW + 1).unwrap()),
        [2],
        "item 1 leased twice"
    );
    assert!(store.lease(10, NOW + 1).unwrap().is_empty());
}

#[test]
fn retry_ack_waits_for_its_delay() {
    let dir = TempDir::new().unwrap();
    let (mut store, id) = one_film_leased(&dir);
    store.ack(
        vec![(
            id,
            Outcome::Retry {
                error: "HTTP 503".into(),
                delay_ms: 200,
            },
        )],
        NOW,
    );
    store.commit().unwrap();
    assert!(
        store.lease(10, NOW + 199).unwrap().is_empty(),
        "leased before its delay"
    );
    assert_eq!(store.next_retry_due_after(NOW).unwrap(), Some(NOW + 200));
    let view = store.item(id).unwrap();
    assert_eq!(view.state, ItemState::Pending);
    assert_eq!(view.last_error.as_deref(), Some("HTTP 503"));
    let leased = store.lease(10, NOW + 200).unwrap();
    assert_eq!((leased[0].id, leased[0].attempts), (id, 1));
}

#[test]
fn delivered_ack_posts_the_item_with_its_upstream_id() {
    let dir = TempDir::new().unwrap();
    let (mut store, id) = one_film_leased(&dir);
    store.ack(vec![delivered(id)], NOW);
    store.commit().unwrap();
    let view = store.item(id).unwrap();
    assert_eq!(view.state, ItemState::Posted);
    assert_eq!(view.upstream_id, Some(json!(id * 100)));
    assert_eq!((view.attempts, view.last_error), (1, None));
    let stats = store.stats(NOW);
    assert_eq!((stats.pending, stats.in_flight, stats.posted), (0, 0, 1));
    assert_eq!(stats.delivered_total, 1);
}

#[test]
fn dead_ack_makes_the_item_dead_with_its_error() {
    let dir = TempDir::new().unwrap();
    let (mut store, id) = one_film_leased(&dir);
    store.ack(
        vec![(
            id,
            Outcome::Dead {
                error: "HTTP 400: bad lot".into(),
            },
        )],
        NOW,
    );
    store.commit().unwrap();
    let view = store.item(id).unwrap();
    assert_eq!(view.state, ItemState::Dead);
    assert_eq!(view.last_error.as_deref(), Some("HTTP 400: bad lot"));
    assert_eq!(store.stats(NOW).dead, 1);
    assert!(store.lease(10, NOW + 1_000_000).unwrap().is_empty());
}

#[test]
fn reopen_makes_unacked_leases_pending_and_keeps_dead_and_posted() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = open(&dir);
        store.enqueue(films(1, 4), NOW).unwrap();
        store.commit().unwrap();
        let leased = store.lease(4, NOW).unwrap();
        store.ack(
            vec![
                delivered(leased[0].id),
                (
                    leased[1].id,
                    Outcome::Dead {
                        error: "410".into(),
                    },
                ),
            ],
            NOW,
        );
        store.commit().unwrap();
        // Items 3 and 4 stay leased and unacknowledged: the process "crashes".
    }
    let mut store = open(&dir);
    let stats = store.stats(NOW);
    assert_eq!(
        (stats.pending, stats.in_flight, stats.dead, stats.posted),
        (2, 0, 1, 1)
    );
    assert_eq!(film_nos(&store.lease(10, NOW).unwrap()), [3, 4]);
}

#[test]
fn uncommitted_writes_are_lost_only_if_never_committed() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = open(&dir);
        store.enqueue(films(1, 2), NOW).unwrap();
        store.commit().unwrap();
        store.enqueue(films(3, 3), NOW).unwrap();
    }
    let mut store = open(&dir);
    assert_eq!(film_nos(&store.lease(10, NOW).unwrap()), [1, 2]);
}

#[test]
fn posted_history_is_trimmed_to_its_size_oldest_first() {
    let dir = TempDir::new().unwrap();
    let cfg = QueueConfig {
        posted_history: 5,
        ..config(&dir)
    };
    let mut store = QueueStore::open(&cfg).unwrap();
    store.enqueue(films(1, 20), NOW).unwrap();
    store.commit().unwrap();
    let leased = store.lease(20, NOW).unwrap();
    store.ack(leased.iter().map(|i| delivered(i.id)).collect(), NOW);
    store.commit().unwrap();
    let page = store.list(Some(ItemState::Posted), 100, 0).unwrap();
    assert_eq!(page.count, 5);
    let ids: Vec<i64> = page.results.iter().map(|v| v.id).collect();
    let newest: Vec<i64> = leased.iter().rev().take(5).map(|i| i.id).collect();
    assert_eq!(ids, newest);
    let on_disk: i64 = store
        .conn
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(on_disk, 5);
}

#[test]
fn max_items_refuses_the_rest_of_the_batch_and_counts_it() {
    let dir = TempDir::new().unwrap();
    let cfg = QueueConfig {
        max_items: 5,
        ..config(&dir)
    };
    let mut store = QueueStore::open(&cfg).unwrap();
    assert_eq!(store.enqueue(films(1, 3), NOW).unwrap().accepted, 3);
    // Uncommitted items count too, and so do dead ones.
    let outcome = store
        .enqueue(vec![rejected(b"x", None), film(4), film(5)], NOW)
        .unwrap();
    assert_eq!(
        outcome,
        EnqueueOutcome {
            accepted: 2,
            refused: 1
        }
    );
    store.commit().unwrap();
    assert_eq!(store.enqueue(films(6, 6), NOW).unwrap().refused, 1);
    let stats = store.stats(NOW);
    assert_eq!(
        (
            stats.pending,
            stats.dead,
            stats.refused_total,
            stats.enqueued_total
        ),
        (4, 1, 2, 5)
    );
    // Delivering frees room.
    let id = store.lease(1, NOW).unwrap()[0].id;
    store.ack(vec![delivered(id)], NOW);
    assert_eq!(
        store.enqueue(films(7, 8), NOW).unwrap(),
        EnqueueOutcome {
            accepted: 1,
            refused: 1
        }
    );
}

#[test]
fn rejected_frame_is_stored_dead_with_its_exact_bytes() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store
        .enqueue(vec![rejected(b"L1,\xff\xfe,1,2,3", None)], NOW)
        .unwrap();
    store.commit().unwrap();
    assert!(!store.take_new_work(), "a dead item is not work");
    let page = store.list(Some(ItemState::Dead), 10, 0).unwrap();
    let view = &page.results[0];
    assert_eq!(
        view.last_error.as_deref(),
        Some("invalid UTF-8 at byte 3 of 11")
    );
    assert_eq!(view.raw, b"L1,\xff\xfe,1,2,3");
    assert_eq!((view.data.clone(), view.sequence_uid.clone()), (None, None));
}

#[test]
fn retry_reparses_a_dead_frame_with_the_current_config() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let short = rejected(b"L2,7,25.1", seq("seq-L2", "L2"));
    let garbage = rejected(b"garbage", None);
    store.enqueue(vec![short, garbage], NOW).unwrap();
    store.commit().unwrap();
    let ids: Vec<i64> = store
        .list(Some(ItemState::Dead), 10, 0)
        .unwrap()
        .results
        .iter()
        .map(|v| v.id)
        .collect();
    let (garbage_id, short_id) = (ids[0], ids[1]);

    // Unchanged config: still dead, with the reason again.
    let view = store
        .retry_item(short_id, &parsers(RecordConfig::default()), NOW)
        .unwrap();
    assert_eq!(view.state, ItemState::Dead);
    assert!(view.last_error.unwrap().contains("expected 5 fields"));

    // The config gains the three-field layout.
    let three = RecordConfig {
        fields: ["lot", "film_no", "thickness_um"]
            .map(String::from)
            .to_vec(),
        ..RecordConfig::default()
    };
    let view = store
        .retry_item(short_id, &parsers(three.clone()), NOW)
        .unwrap();
    assert_eq!(view.state, ItemState::Pending);
    assert_eq!(view.last_error, None);
    assert_eq!(
        view.data.map(Value::Object),
        Some(json!({"lot": "L2", "film_no": 7, "thickness_um": 25.1}))
    );
    assert_eq!(view.sequence_uid.as_deref(), Some("seq-L2"));
    assert!(store.take_new_work());
    let leased = store.lease(10, NOW).unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(
        (leased[0].id, leased[0].sequence.key.as_deref()),
        (short_id, Some("L2"))
    );

    let view = store.retry_item(garbage_id, &parsers(three), NOW).unwrap();
    assert_eq!(view.state, ItemState::Dead);
    assert!(view.last_error.unwrap().contains("found 1"));
    let stats = store.stats(NOW);
    assert_eq!((stats.dead, stats.in_flight), (1, 1));
}

#[test]
fn retried_frame_without_sequence_gets_one_keyed_by_its_data() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store.enqueue(vec![rejected(b"L9,1,2", None)], NOW).unwrap();
    store.commit().unwrap();
    let three = RecordConfig {
        fields: ["lot", "film_no", "width_mm"].map(String::from).to_vec(),
        ..RecordConfig::default()
    };
    let outcome = store.retry_all_dead(&parsers(three), NOW).unwrap();
    assert_eq!(
        outcome,
        RetryAllOutcome {
            retried: 1,
            still_dead: 0
        }
    );
    let leased = store.lease(10, NOW).unwrap();
    assert_eq!(leased[0].sequence.key.as_deref(), Some("L9"));
    assert_eq!(leased[0].sequence.source, "line-1");
    assert_eq!(leased[0].sequence.uid.len(), 36);
}

#[test]
fn retry_of_an_unknown_source_says_so() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store.enqueue(vec![rejected(b"L1,2", None)], NOW).unwrap();
    store.commit().unwrap();
    let outcome = store.retry_all_dead(&HashMap::new(), NOW).unwrap();
    assert_eq!(
        outcome,
        RetryAllOutcome {
            retried: 0,
            still_dead: 1
        }
    );
    let view = &store.list(None, 1, 0).unwrap().results[0];
    assert_eq!(
        view.last_error.as_deref(),
        Some("no [[serial]] named line-1 to parse it with")
    );
}

#[test]
fn a_frame_after_the_newest_dead_item_was_deleted_is_leased() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store
        .enqueue(vec![film(1), rejected(b"x", None)], NOW)
        .unwrap();
    store.commit().unwrap();
    let first = store.lease(10, NOW).unwrap();
    store.ack(vec![delivered(first[0].id)], NOW);
    let dead_id = first[0].id + 1;
    store.delete_dead(dead_id).unwrap();
    store.enqueue(vec![film(2)], NOW).unwrap();
    store.commit().unwrap();
    let next = store.lease(10, NOW).unwrap();
    assert_eq!(
        film_nos(&next),
        [2],
        "the new frame is not stuck behind the cursor"
    );
    assert!(next[0].id > dead_id, "id {} reused", next[0].id);
}

#[test]
fn with_no_posted_history_every_frame_is_leased() {
    let dir = TempDir::new().unwrap();
    let cfg = QueueConfig {
        posted_history: 0,
        ..config(&dir)
    };
    let mut store = QueueStore::open(&cfg).unwrap();
    let mut leased_nos = Vec::new();
    for n in 1..=20 {
        store.enqueue(vec![film(n)], NOW).unwrap();
        store.commit().unwrap();
        let leased = store.lease(10, NOW).unwrap();
        leased_nos.extend(film_nos(&leased));
        store.ack(leased.iter().map(|i| delivered(i.id)).collect(), NOW);
        store.commit().unwrap();
    }
    assert_eq!(leased_nos, (1..=20).collect::<Vec<_>>());
    assert_eq!(store.stats(NOW).pending, 0);
}

#[test]
fn a_fragment_is_dead_in_no_sequence_and_never_retried() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let fragment = NewItem {
        body: ItemBody::Fragment {
            reason: "partial frame at link start".into(),
        },
        sequence: None,
        raw: b"0,25.4,1200,0".to_vec(),
        ..film(1)
    };
    store.enqueue(vec![fragment], NOW).unwrap();
    store.commit().unwrap();
    let p = parsers(RecordConfig {
        fields: vec!["a".into(), "b".into(), "c".into(), "d".into()],
        ..RecordConfig::default()
    });
    let view = store.retry_item(1, &p, NOW).unwrap();
    assert_eq!(view.state, ItemState::Dead);
    assert_eq!(
        view.last_error.as_deref(),
        Some("partial frame at link start")
    );
    assert_eq!(view.sequence_uid, None);
    assert_eq!(store.retry_all_dead(&p, NOW).unwrap().still_dead, 1);
    assert!(store.lease(10, NOW).unwrap().is_empty());
}

#[test]
fn a_first_version_queue_file_is_upgraded_keeping_its_rows_and_ids() {
    let dir = TempDir::new().unwrap();
    let cfg = config(&dir);
    std::fs::create_dir_all(cfg.path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&cfg.path).unwrap();
        conn.execute_batch(
            "CREATE TABLE sequences (id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,
               source TEXT NOT NULL, key TEXT, upstream_id TEXT, created_at_ms INTEGER NOT NULL);
             CREATE TABLE items (id INTEGER PRIMARY KEY, uid TEXT NOT NULL, source TEXT NOT NULL,
               sequence_id INTEGER, state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
               last_error TEXT, next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,
               received_at_ms INTEGER NOT NULL, raw BLOB NOT NULL, data TEXT, upstream_id TEXT,
               posted_at_ms INTEGER);
             INSERT INTO sequences VALUES (1, 'seq-L1', 'line-1', 'L1', NULL, 0);
             INSERT INTO items (id, uid, source, sequence_id, state, received_at_ms, raw, data)
               VALUES (41, 'u41', 'line-1', 1, 0, 0, CAST('L1,41,25.4,1200,0' AS BLOB),
               '{\"lot\":\"L1\",\"film_no\":41}');",
        )
        .unwrap();
    }
    let mut store = QueueStore::open(&cfg).unwrap();
    store.enqueue(vec![film(42)], NOW).unwrap();
    store.commit().unwrap();
    let leased = store.lease(10, NOW).unwrap();
    assert_eq!(leased.iter().map(|i| i.id).collect::<Vec<_>>(), [41, 42]);
    let sql: String = store
        .conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'items'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("AUTOINCREMENT"), "{sql}");
}

#[test]
fn a_queue_file_with_a_damaged_page_is_refused_naming_the_file_and_the_recovery() {
    let dir = TempDir::new().unwrap();
    let cfg = config(&dir);
    {
        let mut store = QueueStore::open(&cfg).unwrap();
        store.enqueue(films(1, 2000), NOW).unwrap();
        store.commit().unwrap();
        store.checkpoint().unwrap();
    }
    let mut bytes = std::fs::read(&cfg.path).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 10, "{pages} pages");
    let mut rng = fastrand::Rng::with_seed(7);
    let page = pages / 2;
    for b in &mut bytes[page * 4096..(page + 1) * 4096] {
        *b = rng.u8(..);
    }
    std::fs::write(&cfg.path, bytes).unwrap();
    let err = QueueStore::open(&cfg)
        .err()
        .expect("a damaged file is refused");
    let text = err.to_string();
    assert!(matches!(err, QueueError::Damaged { .. }), "{text}");
    assert!(text.contains(&cfg.path.display().to_string()), "{text}");
    assert!(text.contains(".recover"), "{text}");
}

#[test]
fn a_second_store_on_one_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let _first = open(&dir);
    let err = QueueStore::open(&config(&dir)).err().expect("refused");
    assert!(
        err.to_string().contains(&format!(
            "in use by another filmgate (pid {})",
            std::process::id()
        )),
        "{err}"
    );
}

#[test]
fn only_dead_items_can_be_retried_or_deleted() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store
        .enqueue(vec![film(1), rejected(b"x", None)], NOW)
        .unwrap();
    store.commit().unwrap();
    let leased = store.lease(1, NOW).unwrap();
    let film_id = leased[0].id;
    let dead_id = film_id + 1;
    let p = parsers(RecordConfig::default());
    assert!(matches!(
        store.retry_item(film_id, &p, NOW),
        Err(QueueError::NotDead {
            state: "in_flight",
            ..
        })
    ));
    assert!(matches!(
        store.delete_dead(film_id),
        Err(QueueError::NotDead {
            state: "in_flight",
            ..
        })
    ));
    assert!(matches!(
        store.delete_dead(999),
        Err(QueueError::NotFound(999))
    ));
    assert!(matches!(
        store.retry_item(999, &p, NOW),
        Err(QueueError::NotFound(999))
    ));
    store.delete_dead(dead_id).unwrap();
    assert!(matches!(store.item(dead_id), Err(QueueError::NotFound(_))));
    assert_eq!(store.stats(NOW).dead, 0);
}

#[test]
fn sequence_upstream_id_is_stored_and_returned_by_lease() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store.enqueue(films(1, 2), NOW).unwrap();
    store.commit().unwrap();
    let first = store.lease(1, NOW).unwrap().remove(0);
    assert_eq!(first.sequence.upstream_id, None);
    store.sequence_posted(first.sequence.id, &json!(42));
    store.commit().unwrap();
    let second = store.lease(1, NOW).unwrap().remove(0);
    assert_eq!(second.sequence.id, first.sequence.id);
    assert_eq!(second.sequence.upstream_id, Some(json!(42)));
    assert_eq!(
        (second.sequence.uid.as_str(), second.sequence.key.as_deref()),
        ("seq-L1", Some("L1"))
    );
}

#[test]
fn a_failed_commit_keeps_every_accepted_frame_and_outcome_for_the_replay() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store.enqueue(films(1, 2), NOW).unwrap();
    store.commit().unwrap();
    let leased = store.lease(2, NOW).unwrap();
    // A real SQLITE_FULL: the file may not grow beyond its current pages.
    let pages: i64 = store
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    store.ack(vec![delivered(leased[0].id)], NOW);
    let mut accepted = 0;
    let err = loop {
        match store.enqueue(films(accepted + 3, accepted + 3), NOW) {
            Ok(o) => accepted += o.accepted as i64,
            Err(e) => break e,
        }
        assert!(accepted < 100_000, "the file never filled up");
    };
    assert!(err.to_string().contains("full"), "{err}");
    assert!(!store.stats(NOW).store_ok);
    assert!(matches!(
        store.enqueue(films(1, 1), NOW),
        Err(QueueError::Store(_))
    ));
    // The refused batch is not replayed, so this commit may well fit; either way nothing
    // accepted may be lost.
    let _ = store.commit();
    store.ack(vec![delivered(leased[1].id)], NOW);

    store
        .conn
        .pragma_update(None, "max_page_count", 1_000_000)
        .unwrap();
    store.commit().unwrap();
    assert!(store.stats(NOW).store_ok);
    let fresh = store.lease(1_000_000, NOW).unwrap();
    assert_eq!(fresh.len() as i64, accepted, "accepted frames were lost");
    assert_eq!(film_nos(&fresh), (3..accepted + 3).collect::<Vec<_>>());
    let stats = store.stats(NOW);
    assert_eq!(
        (stats.posted, stats.in_flight, stats.pending),
        (2, accepted as u64, 0)
    );
}

#[test]
fn stats_show_oldest_pending_age_and_rates() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store.enqueue(films(1, 3), NOW).unwrap();
    store.commit().unwrap();
    let stats = store.stats(NOW + 1_001);
    assert_eq!(stats.oldest_pending_age_ms, 1_000);
    assert_eq!((stats.pending, stats.enqueued_total), (3, 3));
}

#[test]
fn rates_count_the_last_ten_seconds() {
    let mut ring = RateRing::new(0);
    for s in 0..20 {
        ring.add(s * 1000 + 500, 100, 10);
    }
    let (reads, posts) = ring.rates(19_999);
    assert!((reads - 100.0).abs() < 1.0, "{reads}");
    assert!((posts - 10.0).abs() < 0.1, "{posts}");
    assert_eq!(ring.rates(60_000), (0.0, 0.0));
    // A young queue is not diluted by seconds before it started.
    let mut young = RateRing::new(100_000);
    young.add(101_500, 200, 0);
    assert!((young.rates(102_000).0 - 100.0).abs() < 1.0);
}

#[test]
fn lease_queries_use_the_indexes() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let plan = |sql: &str| -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    let due = plan(&DUE_RETRIES_SQL.replace("?1", "5"));
    assert!(
        due.contains("items_due_retry") && !due.contains("TEMP B-TREE"),
        "{due}"
    );
    let fresh = plan(
        &FRESH_SQL
            .replace("?1", "0")
            .replace("?2", "9")
            .replace("?3", "5"),
    );
    assert!(
        fresh.contains("INTEGER PRIMARY KEY") && !fresh.contains("TEMP B-TREE"),
        "{fresh}"
    );
    let oldest = plan("SELECT received_at_ms FROM items WHERE state = 0 ORDER BY id LIMIT 1");
    assert!(
        oldest.contains("items_state_id") && !oldest.contains("TEMP B-TREE"),
        "{oldest}"
    );
}

#[test]
fn a_path_under_a_regular_file_is_an_open_error_naming_it() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().join("queue.sqlite3");
    let cfg = QueueConfig {
        path: path.clone(),
        ..QueueConfig::default()
    };
    let err = QueueStore::open(&cfg)
        .err()
        .expect("opened a queue under a file");
    assert!(matches!(err, QueueError::Open { .. }));
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("Not a directory") || text.contains("not a directory"),
        "{text}"
    );
}

#[test]
fn an_uncreatable_directory_is_an_open_error() {
    let cfg = QueueConfig {
        path: "/proc/filmgate-test/queue.sqlite3".into(),
        ..QueueConfig::default()
    };
    let err = QueueStore::open(&cfg)
        .err()
        .expect("opened a queue in /proc");
    assert!(
        err.to_string()
            .starts_with("cannot open the queue at /proc/filmgate-test/queue.sqlite3: "),
        "{err}"
    );
}

/// Run with `cargo test -p filmgate-actors --lib -- --ignored --nocapture store_throughput`.
#[test]
#[ignore]
fn store_throughput_100k() {
    const N: i64 = 100_000;
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let items = films(1, N);
    let t = Instant::now();
    for chunk in items.chunks(500) {
        store.enqueue(chunk.to_vec(), NOW).unwrap();
        store.commit().unwrap();
    }
    let insert_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut done = 0;
    loop {
        let leased = store.lease(100, NOW).unwrap();
        if leased.is_empty() {
            break;
        }
        done += leased.len();
        store.ack(leased.iter().map(|i| delivered(i.id)).collect(), NOW);
        store.commit().unwrap();
    }
    let drain_s = t.elapsed().as_secs_f64();
    assert_eq!(done as i64, N);
    println!(
        "store: {N} inserts in {insert_s:.2} s ({:.0}/s, commits of 500); lease+ack {:.0}/s (batches of 100)",
        N as f64 / insert_s,
        N as f64 / drain_s
    );
}

#[test]
fn after_a_crash_every_item_that_was_in_flight_counts_as_an_uncertain_resend() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = open(&dir);
        store.enqueue(films(1, 5), NOW).unwrap();
        store.commit().unwrap();
        let leased = store.lease(3, NOW).unwrap();
        store.ack(vec![delivered(leased[0].id)], NOW);
        store.commit().unwrap();
        // Items 2 and 3 are in flight: the process dies.
    }
    let mut store = open(&dir);
    let leased = store.lease(10, NOW).unwrap();
    assert_eq!(film_nos(&leased), [2, 3, 4, 5]);
    let uncertain = store.stats(NOW).uncertain_resends_total;
    // Never fewer than were in flight; at most what the lease limit let go (all here).
    assert!((2..=4).contains(&uncertain), "{uncertain}");
    // A graceful stop with every post ended leaves nothing uncertain.
    store.ack(leased.iter().map(|i| delivered(i.id)).collect(), NOW);
    store.enqueue(films(6, 7), NOW).unwrap();
    store.mark_stop(Vec::new(), true);
    store.commit().unwrap();
    drop(store);
    let mut store = open(&dir);
    assert_eq!(film_nos(&store.lease(10, NOW).unwrap()), [6, 7]);
    assert_eq!(store.stats(NOW).uncertain_resends_total, 0);
}

#[test]
fn fresh_items_beyond_the_committed_lease_limit_wait_for_its_commit() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    // More than one lease limit's worth, committed in one go.
    store.enqueue(films(1, 1500), NOW).unwrap();
    store.commit().unwrap();
    let first = store.lease(2000, NOW).unwrap();
    assert_eq!(first.len(), 1024, "the limit lets the first 1,024 go");
    assert!(store.has_uncommitted(), "a higher limit was written");
    assert!(store.lease(2000, NOW).unwrap().is_empty());
    store.commit().unwrap();
    assert!(store.take_new_work(), "the raised limit wakes the poster");
    assert_eq!(store.lease(2000, NOW).unwrap().len(), 476);
}

#[test]
fn waiting_retries_are_due_at_once_after_a_reopen() {
    let dir = TempDir::new().unwrap();
    {
        let (mut store, id) = one_film_leased(&dir);
        let hour_ms = 3_600_000;
        store.ack(
            vec![(
                id,
                Outcome::Retry {
                    error: "HTTP 503".into(),
                    delay_ms: hour_ms,
                },
            )],
            NOW,
        );
        store.commit().unwrap();
        assert!(store.lease(10, NOW + 1).unwrap().is_empty());
    }
    // The next process's steady clock has nothing to do with this one's.
    let mut store = open(&dir);
    assert_eq!(store.lease(10, 2).unwrap().len(), 1);
}

#[test]
fn a_stop_at_a_record_boundary_hands_the_port_over_to_the_next_open_only() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = open(&dir);
        store.mark_stop(
            vec![("line-1".into(), "/dev/pts/7 (device 0x8807)".into())],
            true,
        );
        store.commit().unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.handover("line-1"), Some("/dev/pts/7 (device 0x8807)"));
    assert_eq!(store.handover("line-2"), None);
    drop(store);
    // This process "crashed": nothing is known of where the line stood.
    let store = open(&dir);
    assert_eq!(store.handover("line-1"), None);
}

fn fragment(raw: &[u8]) -> NewItem {
    NewItem {
        body: ItemBody::Fragment {
            reason: "partial frame at link start".into(),
        },
        sequence: None,
        raw: raw.to_vec(),
        ..film(1)
    }
}

#[test]
fn an_accepted_fragment_is_delivered_in_its_lot_and_says_so_and_limits_still_hold() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    store
        .enqueue(
            vec![
                film(1),
                fragment(b"L1,2,25.4,1200,0"),
                fragment(b"25.4,1200,0"),
                fragment(&[b'L'; 5000]),
                rejected(b"L1,x", None),
            ],
            NOW,
        )
        .unwrap();
    store.commit().unwrap();
    let p = parsers(RecordConfig::default());
    let whole = store.accept_fragment(2, &p, NOW).unwrap();
    assert_eq!(whole.state, ItemState::Pending);
    assert!(whole.accepted_by_hand);
    assert_eq!(
        whole.sequence_uid.as_deref(),
        Some("seq-L1"),
        "joins its lot"
    );
    let tail = store.accept_fragment(3, &p, NOW).unwrap();
    assert_eq!(tail.state, ItemState::Dead);
    assert!(!tail.accepted_by_hand);
    let long = store.accept_fragment(4, &p, NOW).unwrap();
    assert_eq!(long.state, ItemState::Dead);
    assert_eq!(
        long.last_error.as_deref(),
        Some("frame exceeds max_frame_bytes (4096): 5000 bytes")
    );
    assert!(matches!(
        store.accept_fragment(5, &p, NOW),
        Err(QueueError::NotFragment(5))
    ));
    let leased = store.lease(10, NOW).unwrap();
    assert_eq!(leased.iter().map(|i| i.id).collect::<Vec<_>>(), [2, 1]);
    // Dead items were told once each, when their commit succeeded.
    let told: Vec<i64> = store.take_dead_notices().iter().map(|d| d.id).collect();
    assert_eq!(told, [2, 3, 4, 5]);
    assert!(store.take_dead_notices().is_empty());
}

#[test]
fn a_retried_frame_meets_max_frame_bytes_like_a_new_one() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let long = format!("L1,1,25.4,1200,{}", "0".repeat(5000));
    let too_long = NewItem {
        body: ItemBody::Rejected {
            reason: "frame exceeds max_frame_bytes (4096): 5015 bytes".into(),
        },
        sequence: None,
        raw: long.into_bytes(),
        ..film(1)
    };
    store.enqueue(vec![too_long], NOW).unwrap();
    store.commit().unwrap();
    // Parses with the current fields, but is longer than the link takes.
    let view = store
        .retry_item(1, &parsers(RecordConfig::default()), NOW)
        .unwrap();
    assert_eq!(view.state, ItemState::Dead);
    assert!(
        view.last_error
            .unwrap()
            .starts_with("frame exceeds max_frame_bytes"),
    );
}

#[test]
fn leasing_at_new_times_does_not_prepare_the_lease_statements_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    for n in 1..=20 {
        store.enqueue(vec![film(n)], NOW).unwrap();
        store.commit().unwrap();
        store.lease(1, NOW + n).unwrap();
        assert_eq!(store.next_retry_due_after(NOW + n).unwrap(), None);
    }
    for sql in [DUE_RETRIES_SQL, FRESH_SQL] {
        let stmt = store.conn.prepare_cached(sql).unwrap();
        // A re-prepare at each new time was what a bare `?1` beside the partial index cost.
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{sql}"
        );
    }
}

#[test]
fn the_lot_picker_lists_the_newest_lots_as_grouping_every_point_would() {
    use crate::spc::SpcConfig;
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let spec = |subgroup| {
        SpcConfig {
            subgroup,
            baseline: 3,
            ..SpcConfig::default()
        }
        .spec("t")
    };
    store
        .watch_spc(vec![
            ("line-1".into(), "thickness_um".into(), spec(1).unwrap()),
            ("line-1".into(), "width_mm".into(), spec(2).unwrap()),
        ])
        .unwrap();
    // 70 lots of different lengths; both charts' points interleave in the table.
    let mut n = 0;
    for lot in 0..70 {
        for _ in 0..(1 + lot % 7) {
            n += 1;
            let mut item = film(n);
            item.sequence = seq(&format!("seq-{lot}"), &format!("K{lot}"));
            store.enqueue(vec![item], NOW).unwrap();
        }
    }
    store.commit().unwrap();
    for field in ["thickness_um", "width_mm"] {
        let listed: Vec<(Option<String>, u64)> = store
            .spc_lots("line-1", field)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|l| (l.lot, l.points))
            .collect();
        // The grouping query the picker used before, as the oracle.
        let mut stmt = store
            .conn
            .prepare(
                "SELECT s.key, count(*) FROM spc_points p
                 LEFT JOIN sequences s ON s.uid = p.sequence_uid
                 WHERE p.link = 'line-1' AND p.field = ?1
                 GROUP BY p.sequence_uid ORDER BY max(p.id) DESC LIMIT 50",
            )
            .unwrap();
        let grouped: Vec<(Option<String>, u64)> = stmt
            .query_map([field], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(listed.len(), 50, "{field}");
        assert_eq!(listed, grouped, "{field}");
    }
    assert_eq!(store.spc_lots("line-1", "defects").unwrap(), None);
}

#[test]
fn a_film_leases_its_data_as_stored_and_hand_edited_data_as_no_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.enqueue(films(1, 4), NOW).unwrap();
    store.commit().unwrap();
    let edit = rusqlite::Connection::open(&config(&dir).path).unwrap();
    for (id, text) in [(2, "not json"), (3, "[1, 2]"), (4, " {\"x\": 1}")] {
        edit.execute(
            "UPDATE items SET data = ?1 WHERE id = ?2",
            params![text, id],
        )
        .unwrap();
    }
    let leased = store.lease(10, NOW).unwrap();
    let stored = json_text(&parse_frame(&RecordConfig::default(), b"L1,1,25.4,1200,0").unwrap());
    let data: Vec<&str> = leased.iter().map(|i| i.data.get()).collect();
    assert_eq!(data, [stored.as_str(), "{}", "{}", "{\"x\": 1}"]);
    assert_eq!(leased[3].fields()["x"], 1);
}
