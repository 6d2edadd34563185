//! Tests of the queue stage: a real [`QueueActor`] on its own arbiter over a real SQLite file in
//! a temp dir, driven through its messages.

use actix::prelude::*;
use filmgate_actors::messages::{
    Ack, AwaitLease, CancelLease, DeleteItem, Enqueue, Flush, GetItem, GetStats, ItemState, Lease,
    LeasedItem, ListItems, Outcome, RetryAllDead, RetryItem, SequencePosted, Subscribe,
    WorkAvailable,
};
use filmgate_actors::queue::{QueueActor, QueueConfig, QueueError, QueueStore};
use filmgate_actors::record::{NewItem, now_ms};
use filmgate_actors::serial::RecordConfig;
use filmgate_testkit::{film_item, rejected_item, wait_for};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(10);

struct TestQueue {
    addr: Addr<QueueActor>,
    cfg: QueueConfig,
    _dir: TempDir,
}

impl TestQueue {
    /// Writes `items` as a link does; they are safe after the group commit.
    async fn enqueue(&self, items: Vec<NewItem>) {
        self.addr.send(Enqueue { items }).await.unwrap().unwrap();
    }
}

fn spawn_queue() -> TestQueue {
    let dir = TempDir::new().unwrap();
    let cfg = QueueConfig {
        path: dir.path().join("data/queue.sqlite3"),
        ..QueueConfig::default()
    };
    let store = QueueStore::open(&cfg).expect("open queue");
    let parsers = HashMap::from([("line-1".to_string(), RecordConfig::default().into())]);
    let addr = QueueActor::start(store, cfg.clone(), parsers);
    TestQueue {
        addr,
        cfg,
        _dir: dir,
    }
}

/// Receives the queue's [`WorkAvailable`] notices into a channel.
struct Listener(mpsc::UnboundedSender<WorkAvailable>);

impl Actor for Listener {
    type Context = Context<Self>;
}

impl Handler<WorkAvailable> for Listener {
    type Result = ();
    fn handle(&mut self, msg: WorkAvailable, _ctx: &mut Self::Context) {
        let _ = self.0.send(msg);
    }
}

async fn subscribe(queue: &TestQueue) -> mpsc::UnboundedReceiver<WorkAvailable> {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = Listener(tx).start();
    queue
        .addr
        .send(Subscribe(listener.recipient()))
        .await
        .unwrap();
    rx
}

/// Leases until `n` items came back or the deadline passed.
async fn lease_n(queue: &TestQueue, n: usize) -> Vec<LeasedItem> {
    let start = Instant::now();
    let mut items = Vec::new();
    while items.len() < n && start.elapsed() < DEADLINE {
        let leased = queue
            .addr
            .send(Lease {
                max_items: n - items.len(),
            })
            .await
            .unwrap()
            .unwrap();
        if leased.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        items.extend(leased);
    }
    items
}

#[actix_rt::test]
async fn enqueued_items_are_leased_after_the_group_commit() {
    let queue = spawn_queue();
    let outcome = queue
        .addr
        .send(Enqueue {
            items: (1..=3).map(film_item).collect(),
        })
        .await
        .unwrap();
    assert_eq!(outcome.unwrap().accepted, 3);
    let leased = lease_n(&queue, 3).await;
    let film_nos: Vec<_> = leased
        .iter()
        .map(|i| i.fields()["film_no"].as_u64().unwrap())
        .collect();
    assert_eq!(film_nos, [1, 2, 3]);
    assert_eq!(leased[0].sequence.key.as_deref(), Some("L1"));
    assert!(
        queue
            .addr
            .send(Lease { max_items: 10 })
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
}

#[actix_rt::test]
async fn subscriber_hears_work_available_after_a_commit() {
    let queue = spawn_queue();
    let mut work = subscribe(&queue).await;
    queue.enqueue(vec![film_item(1)]).await;
    tokio::time::timeout(DEADLINE, work.recv())
        .await
        .expect("no WorkAvailable")
        .unwrap();
    // The notice means a lease finds the item now.
    let leased = queue
        .addr
        .send(Lease { max_items: 10 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leased.len(), 1);
}

#[actix_rt::test]
async fn a_retry_wakes_the_subscriber_when_it_falls_due() {
    let queue = spawn_queue();
    queue.enqueue(vec![film_item(1)]).await;
    let id = lease_n(&queue, 1).await[0].id;
    let mut work = subscribe(&queue).await;
    let retry = Outcome::Retry {
        error: "HTTP 503".into(),
        delay_ms: 150,
    };
    let acked_at = Instant::now();
    queue
        .addr
        .send(Ack {
            outcomes: vec![(id, retry)],
        })
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(DEADLINE, work.recv())
        .await
        .expect("no wake-up")
        .unwrap();
    assert!(
        acked_at.elapsed() >= Duration::from_millis(150),
        "woken before the retry was due"
    );
    let leased = queue
        .addr
        .send(Lease { max_items: 10 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((leased.len(), leased[0].attempts), (1, 1));
}

#[actix_rt::test]
async fn a_kept_lease_is_answered_by_the_commit_that_makes_items_leasable_and_no_notice_is_sent() {
    let queue = spawn_queue();
    let mut work = subscribe(&queue).await;
    let kept = queue.addr.send(AwaitLease { max_items: 10 });
    let kept = actix_rt::spawn(kept);
    // The queue holds it: nothing to lease yet.
    queue.addr.send(GetStats).await.unwrap().unwrap();
    assert!(!kept.is_finished(), "answered with nothing to lease");
    queue.enqueue(vec![film_item(1), film_item(2)]).await;
    let leased = tokio::time::timeout(DEADLINE, kept)
        .await
        .expect("the kept lease was not answered")
        .unwrap()
        .unwrap()
        .unwrap();
    let film_nos: Vec<_> = leased
        .iter()
        .map(|i| i.fields()["film_no"].as_u64())
        .collect();
    assert_eq!(film_nos, [Some(1), Some(2)]);
    // The lease took the work: the subscriber was not told as well.
    queue.addr.send(GetStats).await.unwrap().unwrap();
    assert!(
        work.try_recv().is_err(),
        "a notice beside the answered lease"
    );
}

#[actix_rt::test]
async fn a_kept_lease_is_answered_when_a_retry_falls_due() {
    let queue = spawn_queue();
    queue.enqueue(vec![film_item(1)]).await;
    let id = lease_n(&queue, 1).await[0].id;
    let retry = Outcome::Retry {
        error: "HTTP 503".into(),
        delay_ms: 150,
    };
    let acked_at = Instant::now();
    queue.addr.do_send(Ack {
        outcomes: vec![(id, retry)],
    });
    let leased = tokio::time::timeout(DEADLINE, queue.addr.send(AwaitLease { max_items: 10 }))
        .await
        .expect("the retry was not handed out")
        .unwrap()
        .unwrap();
    assert!(
        acked_at.elapsed() >= Duration::from_millis(150),
        "leased before it was due"
    );
    assert_eq!((leased.len(), leased[0].id, leased[0].attempts), (1, id, 1));
}

#[actix_rt::test]
async fn a_kept_lease_ends_empty_when_cancelled_or_replaced_and_leases_nothing() {
    let queue = spawn_queue();
    let first = actix_rt::spawn(queue.addr.send(AwaitLease { max_items: 10 }));
    let second = actix_rt::spawn(queue.addr.send(AwaitLease { max_items: 10 }));
    let answer = |lease: actix_rt::task::JoinHandle<_>| async move {
        tokio::time::timeout(DEADLINE, lease)
            .await
            .expect("not answered")
            .unwrap()
    };
    let first: Result<Result<Vec<LeasedItem>, QueueError>, _> = answer(first).await;
    assert!(first.unwrap().unwrap().is_empty(), "the replaced lease");
    queue.addr.send(CancelLease).await.unwrap();
    let second: Result<Result<Vec<LeasedItem>, QueueError>, _> = answer(second).await;
    assert!(second.unwrap().unwrap().is_empty(), "the cancelled lease");
    // Work that comes after the cancel stays pending for whoever leases next.
    queue.enqueue(vec![film_item(1)]).await;
    assert_eq!(lease_n(&queue, 1).await.len(), 1);
}

#[actix_rt::test]
async fn stats_count_items_by_state() {
    let queue = spawn_queue();
    let items = vec![
        film_item(1),
        film_item(2),
        film_item(3),
        rejected_item(b"L1,4", "expected 5 fields"),
    ];
    queue.enqueue(items).await;
    let leased = lease_n(&queue, 2).await;
    let delivered = Outcome::Delivered {
        upstream_id: Some(json!(7)),
    };
    queue
        .addr
        .send(Ack {
            outcomes: vec![(leased[0].id, delivered)],
        })
        .await
        .unwrap()
        .unwrap();
    queue
        .addr
        .send(Flush { last: false })
        .await
        .unwrap()
        .unwrap();
    let stats = queue.addr.send(GetStats).await.unwrap().unwrap();
    assert_eq!(
        (stats.pending, stats.in_flight, stats.dead, stats.posted),
        (1, 1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(
        (
            stats.enqueued_total,
            stats.delivered_total,
            stats.refused_total
        ),
        (4, 1, 0)
    );
    assert!(stats.store_ok);
    assert!(
        stats.read_rate_per_s > 0.0 && stats.post_rate_per_s > 0.0,
        "{stats:?}"
    );
    let in_flight = ListItems {
        state: Some(ItemState::InFlight),
        limit: 10,
        offset: 0,
    };
    let page = queue.addr.send(in_flight).await.unwrap().unwrap();
    assert_eq!((page.count, page.results[0].id), (1, leased[1].id));
    let posted = queue
        .addr
        .send(GetItem { id: leased[0].id })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (posted.state, posted.upstream_id),
        (ItemState::Posted, Some(json!(7)))
    );
}

#[actix_rt::test]
async fn flushed_frames_and_sequence_ids_are_on_disk_for_another_connection() {
    let queue = spawn_queue();
    queue.enqueue(vec![film_item(1), film_item(2)]).await;
    let first = lease_n(&queue, 1).await.remove(0);
    let posted = SequencePosted {
        sequence_id: first.sequence.id,
        upstream_id: json!(99),
    };
    queue.addr.send(posted).await.unwrap().unwrap();
    queue
        .addr
        .send(Flush { last: true })
        .await
        .unwrap()
        .unwrap();

    // A second store on the same file sees both films (one of them leased, unacknowledged,
    // is pending to it) and the sequence's upstream id.
    let mut other = QueueStore::open(&queue.cfg).unwrap();
    let leased = other.lease(10, now_ms()).unwrap();
    assert_eq!(leased.len(), 2);
    assert!(
        leased
            .iter()
            .all(|i| i.sequence.upstream_id == Some(json!(99)))
    );
}

#[actix_rt::test]
async fn dead_items_can_be_retried_and_deleted_through_the_actor() {
    let queue = spawn_queue();
    let items = vec![
        rejected_item(b"L1,1,2,3,4", "expected 5 fields"),
        rejected_item(b"nonsense", "expected 5 fields"),
    ];
    queue.enqueue(items).await;
    queue
        .addr
        .send(Flush { last: false })
        .await
        .unwrap()
        .unwrap();
    let dead = ListItems {
        state: Some(ItemState::Dead),
        limit: 10,
        offset: 0,
    };
    let page = queue.addr.send(dead).await.unwrap().unwrap();
    assert_eq!(page.count, 2);
    let (bad_id, good_id) = (page.results[0].id, page.results[1].id);

    let mut work = subscribe(&queue).await;
    let view = queue
        .addr
        .send(RetryItem { id: good_id })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.state, ItemState::Pending);
    tokio::time::timeout(DEADLINE, work.recv())
        .await
        .expect("no WorkAvailable")
        .unwrap();
    assert_eq!(lease_n(&queue, 1).await[0].id, good_id);

    let outcome = queue.addr.send(RetryAllDead).await.unwrap().unwrap();
    assert_eq!((outcome.retried, outcome.still_dead), (0, 1));
    let err = queue
        .addr
        .send(DeleteItem { id: good_id })
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            QueueError::NotDead {
                state: "in_flight",
                ..
            }
        ),
        "{err}"
    );
    queue
        .addr
        .send(DeleteItem { id: bad_id })
        .await
        .unwrap()
        .unwrap();
    let err = queue
        .addr
        .send(GetItem { id: bad_id })
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, QueueError::NotFound(id) if id == bad_id));
}

#[actix_rt::test]
async fn a_queue_path_under_a_regular_file_is_an_open_error_naming_the_path() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().join("queue.sqlite3");
    let cfg = QueueConfig {
        path: path.clone(),
        ..QueueConfig::default()
    };
    let err = QueueStore::open(&cfg)
        .err()
        .expect("a queue opened under a regular file");
    assert!(matches!(err, QueueError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

/// Flood check through the actor (debug build figures are pessimistic). Run with
/// `cargo test -p filmgate-actors --test actors -- --ignored --nocapture queue_actor_throughput`.
#[actix_rt::test]
#[ignore]
async fn queue_actor_throughput() {
    const N: usize = 100_000;
    let queue = spawn_queue();
    let start = Instant::now();
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let addr = queue.addr.clone();
            actix_rt::spawn(async move {
                // One film per message, as a link reading at line rate sends them.
                for n in 0..N / 2 {
                    addr.send(Enqueue {
                        items: vec![film_item(n as u32)],
                    })
                    .await
                    .unwrap()
                    .unwrap();
                }
            })
        })
        .collect();
    let mut delivered = 0;
    while delivered < N && start.elapsed() < Duration::from_secs(120) {
        let leased = queue
            .addr
            .send(Lease { max_items: 100 })
            .await
            .unwrap()
            .unwrap();
        if leased.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        delivered += leased.len();
        let outcomes = leased
            .iter()
            .map(|i| {
                (
                    i.id,
                    Outcome::Delivered {
                        upstream_id: Some(json!(i.id)),
                    },
                )
            })
            .collect();
        queue.addr.send(Ack { outcomes }).await.unwrap().unwrap();
    }
    for s in senders {
        s.await.unwrap();
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    assert_eq!(delivered, N);
    println!(
        "queue actor: {N} single-film Enqueues from 2 senders, leased and acked in batches of 100: \
         {elapsed_s:.2} s ({:.0} films/s)",
        N as f64 / elapsed_s
    );
}

/// The group commit relies only on the mailbox being a queue: writes waiting in the mailbox
/// when the first of them opened the transaction are all in its one commit. (If the commit
/// ran before the waiting writes, this would count more commits.)
#[actix_rt::test]
async fn writes_waiting_in_the_mailbox_share_one_commit() {
    let queue = spawn_queue();
    // Another connection holds the write lock: the first write waits in BEGIN (busy timeout)
    // while the rest of the burst lands in the mailbox behind it.
    let holder = rusqlite::Connection::open(&queue.cfg.path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    for n in 1..=50 {
        queue.addr.do_send(Enqueue {
            items: vec![film_item(n)],
        });
    }
    holder.execute_batch("COMMIT").unwrap();
    wait_for(DEADLINE, "the burst enqueued", async || {
        let stats = queue.addr.send(GetStats).await.ok()?.ok()?;
        (stats.enqueued_total == 50).then_some(())
    })
    .await;
    // A flush behind them all commits whatever a later group still held: nothing.
    queue
        .addr
        .send(Flush { last: false })
        .await
        .unwrap()
        .unwrap();
    let stats = queue.addr.send(GetStats).await.unwrap().unwrap();
    assert_eq!((stats.commits_total, stats.pending), (1, 50), "{stats:?}");
}
