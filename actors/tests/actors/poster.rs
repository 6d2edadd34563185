//! The actors wired as in production, without the web side: a pty read by a SerialActor, the
//! QueueActor on a real SQLite file, and the PosterActor posting to a real actix-web upstream.

use filmgate_actors::links::{LinkRegistry, LinkState};
use filmgate_actors::messages::{GetStats, Subscribe};
use filmgate_actors::metrics::PostMetrics;
use filmgate_actors::poster::{QueueLinks, UpstreamConfig, start_poster};
use filmgate_actors::queue::{QueueActor, QueueConfig, QueueStore};
use filmgate_actors::serial::pty::Pty;
use filmgate_actors::serial::{Port, SerialConfig, start_link};
use filmgate_testkit::{TestUpstream, wait_for};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[actix_rt::test]
async fn films_flow_from_a_pty_through_the_queue_to_the_upstream_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = TestUpstream::start().await;
    let upstream_cfg = UpstreamConfig {
        base_url: upstream.base_url.clone(),
        concurrency: 1,
        ..Default::default()
    };
    let queue_cfg = QueueConfig {
        path: dir.path().join("q.sqlite3"),
        ..Default::default()
    };
    let link_cfg = SerialConfig {
        name: "l1".into(),
        port: Port::Device(String::new()),
        ..Default::default()
    };

    let store = QueueStore::open(&queue_cfg).unwrap();
    let queue = QueueActor::start(
        store,
        queue_cfg,
        HashMap::from([("l1".to_owned(), link_cfg.parser())]),
    );
    let links = QueueLinks::to(&queue);
    let poster = start_poster(upstream_cfg, links, Arc::new(PostMetrics::default()))
        .await
        .unwrap();
    queue.send(Subscribe(poster.recipient())).await.unwrap();

    let mut pty = Pty::open_raw().unwrap();
    let registry = LinkRegistry::default();
    let cfg = SerialConfig {
        port: pty.slave_path().display().to_string().into(),
        ..link_cfg
    };
    let _link = start_link(cfg, queue.clone().recipient(), registry.clone()).unwrap();
    wait_for(Duration::from_secs(10), "the link up", async || {
        (registry.get("l1")?.state == LinkState::Up).then_some(())
    })
    .await;

    let text: String = (1..=60)
        .map(|n| format!("{},{n},25.1,1200,0\r", if n <= 30 { "A" } else { "B" }))
        .collect();
    pty.write_all(text.as_bytes()).unwrap();
    wait_for(Duration::from_secs(15), "60 films upstream", async || {
        (upstream.seen().films.len() >= 60).then_some(())
    })
    .await;
    {
        let seen = upstream.seen();
        // Ids are given in arrival order.
        let mut films: Vec<&(u64, Value)> = seen.films.values().collect();
        films.sort_by_key(|(id, _)| *id);
        let numbers: Vec<u64> = films
            .iter()
            .map(|(_, f)| f["data"]["film_no"].as_u64().unwrap())
            .collect();
        assert_eq!(
            numbers,
            (1..=60).collect::<Vec<_>>(),
            "concurrency 1 keeps read order"
        );
        assert_eq!(seen.sequences.len(), 2, "one sequence per lot");
        assert!(
            seen.created.values().all(|&n| n == 1),
            "each uid created once"
        );
        let sequence_of = |i: usize| films[i].1["sequence"].clone();
        assert!(
            (0..30).all(|i| sequence_of(i) == sequence_of(0)),
            "lot A in one sequence"
        );
        assert!(
            (30..60).all(|i| sequence_of(i) == sequence_of(59)),
            "lot B in one sequence"
        );
        assert_ne!(sequence_of(0), sequence_of(59));
    }
    wait_for(Duration::from_secs(5), "the acks recorded", async || {
        let stats = queue.send(GetStats).await.ok()?.ok()?;
        (stats.posted == 60 && stats.pending == 0 && stats.in_flight == 0).then_some(())
    })
    .await;
}
