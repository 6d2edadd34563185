//! How the records service holds up under volume: list speed at 200k films, and (ignored,
//! a benchmark) single-film post throughput.

use crate::helpers::{film_body, spawn_app};
use awc::http::StatusCode;
use filmgate_web::store::NewFilm;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// Seeds 200k films straight through the store (a few seconds), then times the list
/// endpoints; `--nocapture` prints the figures.
#[actix_rt::test]
async fn list_queries_stay_fast_with_200k_films() {
    let app = spawn_app().await;
    let x = app.create_sequence("x").await["id"].as_i64().unwrap();
    let y = app.create_sequence("y").await["id"].as_i64().unwrap();
    let total = 200_000;
    let started = Instant::now();
    for chunk in 0..(total / 1000) {
        let films = (0..1000)
            .map(|i| {
                let n = chunk * 1000 + i;
                let (seq, source) = if n % 2 == 0 { (x, "x") } else { (y, "y") };
                let mut data = Map::new();
                data.insert("film_no".into(), Value::from(n));
                NewFilm {
                    uid: format!("perf-{n}"),
                    sequence: seq,
                    source: source.into(),
                    received_at: "2026-11-22T05:03:05.123Z".into(),
                    raw: format!("A,{n},12.5,300,0"),
                    data,
                }
            })
            .collect();
        app.records.create_films(films).await.expect("seed");
    }
    println!(
        "seeded {total} films in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for path in [
        "/api/films/?limit=100",
        "/api/films/?source=x&limit=100",
        &format!("/api/films/?sequence={y}&limit=100"),
        "/api/films/?since_id=199000&limit=100",
        "/api/films/?limit=100&offset=10000",
    ] {
        let (status, page) = app.get(path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["results"].as_array().unwrap().len(), 100);
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            app.get(path).await;
            best = best.min(t.elapsed());
        }
        println!(
            "GET {path}: {:.1} ms (best of 5), count {}",
            best.as_secs_f64() * 1e3,
            page["count"]
        );
        assert!(best < Duration::from_millis(500), "{path} took {best:?}");
    }
}

/// Posts films one per request from `CONCURRENCY` loops, as the poster does, and prints the
/// rate. Run with `cargo test -p filmgate-web --test api -- --ignored --nocapture`.
#[actix_rt::test]
#[ignore = "benchmark; prints films/s"]
async fn single_film_posts_throughput() {
    const CONCURRENCY: usize = 4;
    const PER_LOOP: usize = 5_000;
    let app = spawn_app().await;
    let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
    let client = app.client();
    let url = app.url("/api/films/");
    let started = Instant::now();
    let loops = (0..CONCURRENCY).map(|l| {
        let client = client.clone();
        let url = url.clone();
        async move {
            for i in 0..PER_LOOP {
                let uid = format!("tp-{l}-{i}");
                let resp = client
                    .post(&url)
                    .insert_header(("Idempotency-Key", uid.as_str()))
                    .send_json(&film_body(seq, "line-1", &uid))
                    .await
                    .expect("post");
                assert_eq!(resp.status(), StatusCode::CREATED);
            }
        }
    });
    futures_util::future::join_all(loops).await;
    let elapsed = started.elapsed().as_secs_f64();
    let total = CONCURRENCY * PER_LOOP;
    println!(
        "{total} single-film posts, {CONCURRENCY} in flight: {:.0} films/s",
        total as f64 / elapsed
    );
    assert_eq!(app.records.films_total(), total as u64);
}
