//! Queue routes against the real queue: items are put in it with the messages the links and
//! the poster send (`Enqueue`, `Lease`, `Ack`), then inspected and controlled over HTTP.

use crate::helpers::{TestApp, spawn_app, spawn_app_with_token};
use awc::http::StatusCode;
use filmgate_actors::messages::Outcome;
use filmgate_testkit::{film_item, rejected_item};
use serde_json::{Value, json};

/// Queue ids of a queue holding items in every state; see [`fill_every_state`].
struct Filled {
    /// Film 1: its post failed with a 503, retried in an hour (pending, 1 attempt).
    retry_later: i64,
    /// Film 2: delivered, the upstream gave it id 501.
    posted: i64,
    /// Film 2's uid.
    posted_uid: String,
    /// Film 3: the upstream answered 400 (dead, 1 attempt).
    dead_by_4xx: i64,
    /// Films 4 and 5: leased, not acked yet (newest first).
    in_flight: [i64; 2],
    /// Films 6 to 9: never leased (newest first).
    fresh: [i64; 4],
    /// A frame that is not UTF-8 (dead on arrival).
    not_utf8: i64,
    /// A frame that is not a record (dead on arrival).
    nonsense: i64,
}

const NOT_UTF8: &[u8] = b"L1,\xff\xfe,25.4";
const REASON_4XX: &str = "400 Bad Request: thickness_um out of range";
const REASON_503: &str = "503 Service Unavailable";

/// Puts 9 films and 2 rejected frames in the queue and leases and acks some, so the queue
/// holds 5 pending (one of them older than the in-flight ones), 2 in flight, 3 dead and
/// 1 posted item. Waits until the API shows those counts.
async fn fill_every_state(app: &TestApp) -> Filled {
    let mut items: Vec<_> = (1..=9).map(film_item).collect();
    items.push(rejected_item(NOT_UTF8, "invalid UTF-8 at byte 3 of 10"));
    items.push(rejected_item(
        b"nonsense",
        "expected 5 fields separated by \",\", found 1",
    ));
    app.enqueue(items).await;
    let all = app.wait_for_json("/api/queue/", |p| p["count"] == 11).await;
    let mut by_age = ids(&all);
    by_age.reverse();

    let first = app.lease(2).await;
    assert_eq!(first.iter().map(|i| i.id).collect::<Vec<_>>(), by_age[..2]);
    app.ack(vec![
        (
            first[0].id,
            Outcome::Retry {
                error: REASON_503.into(),
                delay_ms: 3_600_000,
            },
        ),
        (
            first[1].id,
            Outcome::Delivered {
                upstream_id: Some(json!(501)),
            },
        ),
    ])
    .await;
    let second = app.lease(3).await;
    assert_eq!(
        second.iter().map(|i| i.id).collect::<Vec<_>>(),
        by_age[2..5]
    );
    app.ack(vec![(
        second[0].id,
        Outcome::Dead {
            error: REASON_4XX.into(),
        },
    )])
    .await;
    app.wait_for_json("/api/queue/stats", |s| {
        (&s["pending"], &s["in_flight"], &s["dead"], &s["posted"])
            == (&json!(5), &json!(2), &json!(3), &json!(1))
    })
    .await;
    Filled {
        retry_later: by_age[0],
        posted: by_age[1],
        posted_uid: first[1].uid.clone(),
        dead_by_4xx: by_age[2],
        in_flight: [by_age[4], by_age[3]],
        fresh: [by_age[8], by_age[7], by_age[6], by_age[5]],
        not_utf8: by_age[9],
        nonsense: by_age[10],
    }
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

/// Sends a queue write without the app's token (or with `auth` as the header).
async fn unauthorised(app: &TestApp, method: &str, path: &str, auth: Option<&str>) -> StatusCode {
    let client = app.client();
    let mut req = match method {
        "DELETE" => client.delete(app.url(path)),
        _ => client.post(app.url(path)),
    };
    if let Some(value) = auth {
        req = req.insert_header(("Authorization", value));
    }
    let mut resp = req.send().await.expect("request");
    let body = resp.body().await.expect("body");
    let json: Value = serde_json::from_slice(&body).expect("JSON error body");
    assert!(json["error"].is_string(), "{json}");
    resp.status()
}

// ---- an empty queue ---------------------------------------------------------------------------

#[actix_rt::test]
async fn queue_list_of_an_empty_queue_is_an_empty_drf_page() {
    let app = spawn_app().await;
    let (status, page) = app.get("/api/queue/?state=dead&limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[actix_rt::test]
async fn queue_list_rejects_an_unknown_state_with_400() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/queue/?state=done").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("pending"));
}

#[actix_rt::test]
async fn queue_stats_are_served_as_json() {
    let app = spawn_app().await;
    let (status, stats) = app.get("/api/queue/stats").await;
    assert_eq!(status, StatusCode::OK);
    for key in [
        "pending",
        "in_flight",
        "dead",
        "posted",
        "oldest_pending_age_ms",
        "read_rate_per_s",
        "post_rate_per_s",
        "store_ok",
    ] {
        assert!(stats.get(key).is_some(), "missing {key} in {stats}");
    }
    assert_eq!(stats["store_ok"], true);
}

#[actix_rt::test]
async fn unknown_queue_items_are_404_json_for_get_retry_and_delete() {
    let app = spawn_app().await;
    app.enqueue(vec![rejected_item(b"x", "expected 5 fields")])
        .await;
    let (status, body) = app.get("/api/queue/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("12345"));
    let (status, body) = app.post_json("/api/queue/12345/retry", &Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("12345"));
    let (status, body) = app.delete("/api/queue/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("12345"));
}

#[actix_rt::test]
async fn retry_all_on_an_empty_queue_retries_nothing() {
    let app = spawn_app().await;
    let (status, body) = app.post_json("/api/queue/retry", &Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"retried": 0, "still_dead": 0}));
}

// ---- listing ----------------------------------------------------------------------------------

#[actix_rt::test]
async fn queue_list_filters_items_by_each_state_newest_first() {
    let app = spawn_app().await;
    let q = fill_every_state(&app).await;
    let [f6, f7, f8, f9] = q.fresh;
    let expected = [
        ("pending", vec![f6, f7, f8, f9, q.retry_later]),
        ("in_flight", q.in_flight.to_vec()),
        ("dead", vec![q.nonsense, q.not_utf8, q.dead_by_4xx]),
        ("posted", vec![q.posted]),
    ];
    for (state, want) in expected {
        let (status, page) = app.get(&format!("/api/queue/?state={state}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["count"], want.len(), "{state}: {page}");
        assert_eq!(ids(&page), want, "{state}");
        assert_eq!(
            (&page["next"], &page["previous"]),
            (&Value::Null, &Value::Null)
        );
        for item in page["results"].as_array().unwrap() {
            assert_eq!(item["state"], state, "{item}");
        }
    }
    let (_, all) = app.get("/api/queue/").await;
    assert_eq!(all["count"], 11);
    let all_ids = ids(&all);
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "{all_ids:?}");
}

#[actix_rt::test]
async fn queue_list_pages_with_drf_next_and_previous_links_skipping_in_flight_items() {
    let app = spawn_app().await;
    let q = fill_every_state(&app).await;
    let [f6, f7, f8, f9] = q.fresh;

    let (_, page1) = app.get("/api/queue/?state=pending&limit=2").await;
    assert_eq!(page1["count"], 5);
    assert_eq!(ids(&page1), [f6, f7]);
    assert_eq!(page1["previous"], Value::Null);
    let next = page1["next"].as_str().unwrap();
    assert_eq!(next, app.url("/api/queue/?state=pending&limit=2&offset=2"));

    let (_, page2) = app.get(next.strip_prefix(&app.address).unwrap()).await;
    assert_eq!(ids(&page2), [f8, f9]);
    assert_eq!(
        page2["previous"],
        app.url("/api/queue/?state=pending&limit=2")
    );
    let next = page2["next"].as_str().unwrap();
    assert_eq!(next, app.url("/api/queue/?state=pending&limit=2&offset=4"));

    // The last page lies beyond the in-flight films, which a pending page must not count.
    let (_, page3) = app.get(next.strip_prefix(&app.address).unwrap()).await;
    assert_eq!(ids(&page3), [q.retry_later]);
    assert_eq!(page3["next"], Value::Null);
    assert_eq!(
        page3["previous"],
        app.url("/api/queue/?state=pending&limit=2&offset=2")
    );

    let (_, dead2) = app.get("/api/queue/?state=dead&limit=2&offset=2").await;
    assert_eq!(dead2["count"], 3);
    assert_eq!(ids(&dead2), [q.dead_by_4xx]);
    assert_eq!(dead2["next"], Value::Null);
    assert_eq!(dead2["previous"], app.url("/api/queue/?state=dead&limit=2"));
}

// ---- one item ---------------------------------------------------------------------------------

#[actix_rt::test]
async fn queue_item_shows_every_field_with_raw_hex_sequence_and_upstream_id() {
    let app = spawn_app().await;
    let q = fill_every_state(&app).await;

    let (status, posted) = app.get(&format!("/api/queue/{}", q.posted)).await;
    assert_eq!(status, StatusCode::OK);
    let received_at = posted["received_at"].as_str().unwrap().to_owned();
    assert!(
        received_at.len() == 24 && received_at.ends_with('Z'),
        "{received_at}"
    );
    assert_eq!(
        posted,
        json!({
            "id": q.posted,
            "uid": q.posted_uid,
            "source": "line-1",
            "state": "posted",
            "attempts": 1,
            "last_error": null,
            "next_attempt_at": null,
            "received_at": received_at,
            "raw": "L1,2,25.4,1200,0",
            "data": {"lot": "L1", "film_no": 2, "thickness_um": 25.4, "width_mm": 1200, "defects": 0},
            "sequence_uid": "seq-L1",
            "upstream_id": 501,
        })
    );

    let (_, bad) = app.get(&format!("/api/queue/{}", q.not_utf8)).await;
    assert_eq!(bad["state"], "dead");
    assert_eq!(bad["raw"], "L1,\u{FFFD}\u{FFFD},25.4");
    assert_eq!(bad["raw_hex"], "4c312cfffe2c32352e34");
    assert_eq!(bad["data"], Value::Null);
    assert_eq!(bad["sequence_uid"], Value::Null);
    assert_eq!(bad["upstream_id"], Value::Null);
    assert_eq!(bad["last_error"], "invalid UTF-8 at byte 3 of 10");
    assert_eq!(bad["attempts"], 0);

    let (_, dead) = app.get(&format!("/api/queue/{}", q.dead_by_4xx)).await;
    assert_eq!(
        (&dead["state"], &dead["attempts"], &dead["last_error"]),
        (&json!("dead"), &json!(1), &json!(REASON_4XX))
    );
    assert!(
        dead.get("raw_hex").is_none(),
        "raw_hex only for invalid UTF-8"
    );

    let (_, waiting) = app.get(&format!("/api/queue/{}", q.retry_later)).await;
    assert_eq!(
        (
            &waiting["state"],
            &waiting["attempts"],
            &waiting["last_error"]
        ),
        (&json!("pending"), &json!(1), &json!(REASON_503))
    );
    let due = waiting["next_attempt_at"].as_str().expect("a due time");
    assert!(
        due > received_at.as_str(),
        "due {due} not after {received_at}"
    );

    let (_, leased) = app.get(&format!("/api/queue/{}", q.in_flight[0])).await;
    assert_eq!(leased["state"], "in_flight");
    assert_eq!(leased["next_attempt_at"], Value::Null);
}

// ---- retry and delete -------------------------------------------------------------------------

#[actix_rt::test]
async fn retrying_a_dead_item_reparses_its_frame_and_makes_it_pending_for_the_poster() {
    let app = spawn_app().await;
    // Rejected while the link's config expected another field; the config has been fixed.
    let reason = "expected 6 fields separated by \",\", found 5";
    app.enqueue(vec![rejected_item(b"L7,42,25.4,1200,0", reason)])
        .await;
    let page = app
        .wait_for_json("/api/queue/?state=dead", |p| p["count"] == 1)
        .await;
    let id = ids(&page)[0];

    let (status, item) = app
        .post_json(&format!("/api/queue/{id}/retry"), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["id"], id);
    assert_eq!(item["state"], "pending");
    assert_eq!(item["last_error"], Value::Null);
    assert_eq!(item["data"]["lot"], "L7");
    assert_eq!(item["data"]["film_no"], 42);
    assert!(
        item["sequence_uid"].is_string(),
        "a film needs a sequence: {item}"
    );

    let stats = app
        .wait_for_json("/api/queue/stats", |s| s["pending"] == 1)
        .await;
    assert_eq!(stats["dead"], 0);
    let leased = app.lease(1).await;
    assert_eq!(leased[0].id, id);
    assert_eq!(leased[0].fields()["film_no"], 42);
    assert_eq!(leased[0].sequence.key.as_deref(), Some("L7"));
}

#[actix_rt::test]
async fn retrying_a_frame_that_still_does_not_parse_leaves_it_dead_with_the_new_reason() {
    let app = spawn_app().await;
    // Rejected under an older `format = "json"` config; it is no CSV record either.
    app.enqueue(vec![rejected_item(b"L1;7;25.4", "expected a JSON object")])
        .await;
    let page = app
        .wait_for_json("/api/queue/?state=dead", |p| p["count"] == 1)
        .await;
    let id = ids(&page)[0];

    let (status, item) = app
        .post_json(&format!("/api/queue/{id}/retry"), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["state"], "dead");
    assert_eq!(
        item["last_error"],
        "expected 5 fields separated by \",\", found 1"
    );
    assert_eq!(item["data"], Value::Null);
    let (_, stats) = app.get("/api/queue/stats").await;
    assert_eq!((&stats["dead"], &stats["pending"]), (&json!(1), &json!(0)));
}

#[actix_rt::test]
async fn retry_all_makes_every_parsable_dead_item_pending_and_counts_the_rest() {
    let app = spawn_app().await;
    let q = fill_every_state(&app).await;

    let (status, body) = app.post_json("/api/queue/retry", &Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"retried": 1, "still_dead": 2}));

    let (_, revived) = app.get(&format!("/api/queue/{}", q.dead_by_4xx)).await;
    assert_eq!(revived["state"], "pending");
    let (_, dead) = app.get("/api/queue/?state=dead").await;
    assert_eq!(ids(&dead), [q.nonsense, q.not_utf8]);
    assert_eq!(
        dead["results"][1]["last_error"],
        "invalid UTF-8 at byte 3 of 10"
    );
    let (_, stats) = app.get("/api/queue/stats").await;
    assert_eq!((&stats["pending"], &stats["dead"]), (&json!(6), &json!(2)));

    let (_, again) = app.post_json("/api/queue/retry", &Value::Null).await;
    assert_eq!(again, json!({"retried": 0, "still_dead": 2}));
}

#[actix_rt::test]
async fn deleting_a_dead_item_is_204_and_removes_it() {
    let app = spawn_app().await;
    let q = fill_every_state(&app).await;

    let (status, body) = app.delete(&format!("/api/queue/{}", q.not_utf8)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, _) = app.get(&format!("/api/queue/{}", q.not_utf8)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, dead) = app.get("/api/queue/?state=dead").await;
    assert_eq!(dead["count"], 2);
    assert_eq!(ids(&dead), [q.nonsense, q.dead_by_4xx]);
    let (status, _) = app.delete(&format!("/api/queue/{}", q.not_utf8)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_rt::test]
async fn retrying_or_deleting_an_item_that_is_not_dead_is_409_and_changes_nothing() {
    let app = spawn_app().await;
    let q = fill_every_state(&app).await;
    for (id, state) in [
        (q.fresh[0], "pending"),
        (q.retry_later, "pending"),
        (q.in_flight[0], "in_flight"),
        (q.posted, "posted"),
    ] {
        let (status, body) = app
            .post_json(&format!("/api/queue/{id}/retry"), &Value::Null)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "retry {state}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(state) && error.contains("not dead"),
            "{error}"
        );
        let (status, body) = app.delete(&format!("/api/queue/{id}")).await;
        assert_eq!(status, StatusCode::CONFLICT, "delete {state}: {body}");
        let (_, item) = app.get(&format!("/api/queue/{id}")).await;
        assert_eq!(item["state"], state);
    }
    let (_, stats) = app.get("/api/queue/stats").await;
    assert_eq!(
        (
            &stats["pending"],
            &stats["in_flight"],
            &stats["dead"],
            &stats["posted"]
        ),
        (&json!(5), &json!(2), &json!(3), &json!(1))
    );
}

// ---- counts elsewhere, and the token ----------------------------------------------------------

#[actix_rt::test]
async fn metrics_refresh_and_stats_show_the_real_queue_counts() {
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    fill_every_state(&app).await;

    let (_, stats) = app.get("/api/queue/stats").await;
    assert_eq!(stats["enqueued_total"], 11);
    assert_eq!(stats["delivered_total"], 1);
    // The oldest pending film was read during this test.
    let age_ms = stats["oldest_pending_age_ms"].as_u64().unwrap();
    assert!(
        age_ms as u128 <= started.elapsed().as_millis() + 1,
        "{stats}"
    );

    let (_, _, text) = app.get_text("/metrics").await;
    for series in [
        "filmgate_queue_items{state=\"pending\"} 5",
        "filmgate_queue_items{state=\"in_flight\"} 2",
        "filmgate_queue_items{state=\"dead\"} 3",
        "filmgate_queue_items{state=\"posted\"} 1",
        "filmgate_queue_refused_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "missing {series:?} in\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("filmgate_queue_oldest_pending_age_seconds ")),
        "{text}"
    );

    let (_, refresh) = app.get("/api/refresh/").await;
    let queue = &refresh["queue"];
    assert_eq!(
        (
            &queue["pending"],
            &queue["in_flight"],
            &queue["dead"],
            &queue["posted"]
        ),
        (&json!(5), &json!(2), &json!(3), &json!(1)),
        "{refresh}"
    );
    assert_eq!(queue["store_ok"], true);
}

#[actix_rt::test]
async fn queue_writes_need_the_token_and_change_nothing_without_it() {
    let app = spawn_app_with_token("s3cret").await;
    app.enqueue(vec![
        rejected_item(b"L1,1,25.4,1200,0", "expected 6 fields"),
        rejected_item(b"L1,2,25.4,1200,0", "expected 6 fields"),
    ])
    .await;
    let page = app
        .wait_for_json("/api/queue/?state=dead", |p| p["count"] == 2)
        .await;
    let [newer, older] = ids(&page)[..] else {
        panic!("{page}")
    };

    for auth in [None, Some("Bearer wrong")] {
        for (method, path) in [
            ("POST", format!("/api/queue/{older}/retry")),
            ("POST", "/api/queue/retry".to_owned()),
            ("DELETE", format!("/api/queue/{newer}")),
        ] {
            let status = unauthorised(&app, method, &path, auth).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {auth:?}");
        }
    }
    let (status, dead) = app.get("/api/queue/?state=dead").await;
    assert_eq!(status, StatusCode::OK, "reads need no token");
    assert_eq!(
        ids(&dead),
        [newer, older],
        "a refused write changed the queue"
    );

    let (status, item) = app
        .post_json(&format!("/api/queue/{older}/retry"), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item["state"], "pending");
    let (status, _) = app.delete(&format!("/api/queue/{newer}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
