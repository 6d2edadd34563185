//! `/api/refresh/` and the SSE stream `/api/events/`.

use crate::helpers::{film_body, spawn_app};
use crate::on_both_backends;
use awc::http::StatusCode;
use filmgate_testkit::{film_item, wait_for};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn ids(rows: &Value) -> Vec<i64> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

on_both_backends! {
    async fn refresh_without_a_cursor_returns_the_newest_rows_queue_links_and_a_cursor(app) {
        let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        let films: Vec<Value> = (0..60)
            .map(|i| film_body(seq, "line-1", &format!("f{i}")))
            .collect();
        app.post_json("/api/films/batch/", &Value::from(films))
            .await;
        let (status, body) = app.get("/api/refresh/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["cursor"], "s1.f60");
        let film_ids = ids(&body["films"]);
        assert_eq!(film_ids.len(), 50);
        assert_eq!(film_ids[0], 60, "newest first");
        assert_eq!(ids(&body["sequences"]), [1]);
        assert_eq!(body["queue"]["store_ok"], true);
        assert_eq!(body["links"][0]["name"], "line-1");
    }
}

on_both_backends! {
    async fn refresh_with_a_cursor_returns_only_newer_rows_ascending_and_catches_up_in_steps(app) {
        let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        app.create_film(seq, "line-1", "first").await;
        let (_, body) = app.get("/api/refresh/").await;
        let cursor = body["cursor"].as_str().unwrap().to_owned();
        assert_eq!(cursor, "s1.f1");
        let (_, body) = app
            .get(&format!("/api/refresh/?cursor={cursor}"))
            .await;
        assert_eq!(body["films"], json!([]));
        assert_eq!(body["cursor"], cursor, "nothing new keeps the cursor");

        let films: Vec<Value> = (0..700)
            .map(|i| film_body(seq, "line-1", &format!("f{i}")))
            .collect();
        app.post_json("/api/films/batch/", &Value::from(films))
            .await;
        let (_, step1) = app
            .get(&format!("/api/refresh/?cursor={cursor}"))
            .await;
        let step1_ids = ids(&step1["films"]);
        assert_eq!(step1_ids.len(), 500);
        assert_eq!(
            (step1_ids[0], step1_ids[499]),
            (2, 501),
            "ascending after the cursor"
        );
        assert_eq!(step1["cursor"], "s1.f501");
        assert_eq!(step1["more"], true, "the page was cut");
        let (_, step2) = app
            .get(&format!(
                "/api/refresh/?cursor={}",
                step1["cursor"].as_str().unwrap()
            ))
            .await;
        assert_eq!(ids(&step2["films"]).len(), 200);
        assert_eq!(step2["cursor"], "s1.f701");
        assert_eq!(step2["more"], false);
        assert_eq!(step2["sequences"], json!([]));
    }
}

on_both_backends! {
    async fn refresh_with_a_bad_cursor_is_400_json(app) {
        for cursor in ["garbage", "s1", "s1.fx", "f1.s1"] {
            let (status, body) = app
                .get(&format!("/api/refresh/?cursor={cursor}"))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{cursor}");
            assert!(body["error"].as_str().unwrap().contains("cursor"));
        }
        let (status, _) = app.get("/api/events/?cursor=garbage").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

on_both_backends! {
    async fn events_stream_delivers_a_refresh_event_after_a_film_is_posted(app) {
        let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        let mut resp = open_events(&app).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        app.create_film(seq, "line-1", "sse-film").await;
        let event = event_with(&mut resp, "sse-film").await;
        assert!(event.starts_with("event: refresh\n"), "{event}");
        let data = event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        let body: Value = serde_json::from_str(data).unwrap();
        assert_eq!(body["films"][0]["uid"], "sse-film");
        assert_eq!(body["cursor"], "s1.f1");
        assert!(event.contains("\nid: s1.f1\n"));
    }
}

/// Each part that the stream shows signals its changes: a link's and the queue's each reach an
/// open stream (an idle stream that is not signalled sends only keep-alives).
#[actix_rt::test]
async fn a_link_change_and_a_queue_write_each_push_an_event() {
    let app = spawn_app().await;
    let mut resp = open_events(&app).await;
    event_with(&mut resp, "\"links\"").await;
    // The queue is idle: nothing but a signal makes the stream look again.
    app.links.update("line-1", |s| s.frames_read = 77);
    event_with(&mut resp, "\"frames_read\":77").await;
    app.enqueue(vec![film_item(1)]).await;
    event_with(&mut resp, "\"pending\":1").await;
}

/// `GET /api/events/`, its answer streaming.
async fn open_events(
    app: &crate::helpers::TestApp,
) -> awc::ClientResponse<
    impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin + use<>,
> {
    open_events_from(app, [127, 0, 0, 1]).await
}

/// [`open_events`] from another peer address of the loopback /8.
async fn open_events_from(
    app: &crate::helpers::TestApp,
    peer: [u8; 4],
) -> awc::ClientResponse<
    impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin + use<>,
> {
    let connector = awc::Connector::new().local_address(std::net::IpAddr::from(peer));
    let client = awc::Client::builder().connector(connector).finish();
    let resp = client.get(app.url("/api/events/")).send().await;
    resp.expect("connect")
}

/// Reads an event stream until an event with `needle` arrives (10 s at most).
async fn event_with(
    resp: &mut awc::ClientResponse<
        impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
    >,
    needle: &str,
) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = actix_rt::time::timeout(left, resp.next())
            .await
            .unwrap_or_else(|_| panic!("no event with {needle} within 10 s:\n{seen}"))
            .expect("stream open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        // Only whole events: those followed by their blank line.
        let complete = seen.rsplit_once("\n\n").map_or("", |(whole, _)| whole);
        if let Some(event) = complete.split("\n\n").find(|e| e.contains(needle)) {
            return event.to_owned();
        }
    }
}

on_both_backends! {
    async fn a_cursor_far_behind_gets_one_catch_up_page_then_the_newest_rows(app) {
        let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        for batch in 0..2 {
            let films: Vec<Value> = (0..700)
                .map(|i| crate::helpers::film_body(seq, "line-1", &format!("old-{batch}-{i}")))
                .collect();
            let (status, _) = app
                .post_json("/api/films/batch/", &Value::Array(films))
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        let mut resp = app
            .client()
            .get(app.url("/api/events/?cursor=s0.f0"))
            .send()
            .await
            .unwrap();
        let first = event_with(&mut resp, "event: refresh").await;
        let data: Value = serde_json::from_str(
            first
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["films"].as_array().unwrap().len(), 500, "one page");
        assert_eq!(
            data["cursor"], "s1.f1400",
            "then the newest rows, not the history"
        );
        app.create_film(seq, "line-1", "new-after-catch-up").await;
        let next = event_with(&mut resp, "new-after-catch-up").await;
        assert!(next.contains("\"cursor\":\"s1.f1401\""), "{next}");
    }
}

on_both_backends! {
    async fn event_streams_are_capped_per_peer_and_in_all_with_a_json_503(app) {
        use filmgate_web::routes::events::{MAX_CLIENTS, MAX_CLIENTS_PER_PEER};
        let mut open = Vec::new();
        // One peer asks for every slot and gets its share.
        for _ in 0..MAX_CLIENTS {
            let resp = open_events_from(&app, [127, 0, 0, 1]).await;
            if resp.status() != StatusCode::OK {
                assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
                break;
            }
            open.push(resp);
        }
        assert_eq!(open.len(), MAX_CLIENTS_PER_PEER);
        // HEAD answers the stream's headers and takes no slot.
        let head = app.client().head(app.url("/api/events/")).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(
            head.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        assert_eq!(open_streams(&app).await, MAX_CLIENTS_PER_PEER as u64);
        // Other peers get theirs, up to the cap in all.
        let peers = MAX_CLIENTS / MAX_CLIENTS_PER_PEER;
        for peer in 2..=peers as u8 {
            for _ in 0..MAX_CLIENTS_PER_PEER {
                let resp = open_events_from(&app, [127, 0, 0, peer]).await;
                assert_eq!(resp.status(), StatusCode::OK, "127.0.0.{peer}");
                open.push(resp);
            }
        }
        let mut full = open_events_from(&app, [127, 0, 0, peers as u8 + 1]).await;
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = full.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("/api/refresh/"),
            "{body}"
        );
        // Closed streams free their slots (the server notices on its next write).
        drop(open);
        wait_for_slot(&app).await;
    }
}

/// A closed stream frees its slot (the server notices the close on its next write).
async fn wait_for_slot(app: &crate::helpers::TestApp) {
    let what = "the closed stream's slot freed";
    wait_for(Duration::from_secs(60), what, async || {
        let resp = app
            .client()
            .get(app.url("/api/events/"))
            .send()
            .await
            .ok()?;
        (resp.status() == StatusCode::OK).then_some(())
    })
    .await;
}

/// Open event streams, as `/metrics` reports them.
async fn open_streams(app: &crate::helpers::TestApp) -> u64 {
    let (_, _, text) = app.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("filmgate_event_streams "))
        .and_then(|n| n.parse().ok())
        .expect("the event-stream gauge")
}

/// A client that opens the event stream and then never reads: once the server's data has
/// waited unacknowledged for `STALLED_CONNECTION_TIMEOUT`, the connection ends and the
/// stream's slot is free again (else 32 such clients would lock everyone out for good).
#[actix_rt::test]
async fn an_event_client_that_stops_reading_loses_its_stream() {
    use std::io::Write;
    let app = crate::helpers::spawn_app().await;
    let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
    let address = app.address.trim_start_matches("http://");
    let mut stalled = std::net::TcpStream::connect(address).unwrap();
    write!(
        stalled,
        "GET /api/events/ HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    wait_for(crate::helpers::DEADLINE, "the stream open", async || {
        (open_streams(&app).await == 1).then_some(())
    })
    .await;
    // New rows every tick fill the stalled client's window and the server's send buffer.
    let fill_until = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while Instant::now() < fill_until {
        let batch: Vec<Value> = (0..500)
            .map(|_| {
                n += 1;
                film_body(seq, "line-1", &format!("stall-{n}"))
            })
            .collect();
        let (status, _) = app.post_json("/api/films/batch/", &json!(batch)).await;
        assert_eq!(status, StatusCode::OK);
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    let limit = filmgate_web::STALLED_CONNECTION_TIMEOUT + Duration::from_secs(60);
    wait_for(limit, "the stalled stream's slot freed", async || {
        (open_streams(&app).await == 0).then_some(())
    })
    .await;
    drop(stalled);
}
