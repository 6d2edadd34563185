//! The DRF-shaped records service.

use crate::helpers::film_body;
use crate::on_both_backends;
use awc::http::StatusCode;
use serde_json::{Value, json};

on_both_backends! {
    async fn create_sequence_returns_201_with_the_drf_row(app) {
        let (status, row) = app
            .post_json(
                "/api/sequences/",
                &json!({"uid": "s-1", "source": "line-1", "key": "A"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(row["uid"], "s-1");
        assert_eq!(row["source"], "line-1");
        assert_eq!(row["key"], "A");
        assert!(row["id"].as_i64().unwrap() > 0);
        assert!(row["created"].as_str().unwrap().ends_with('Z'));
    }
}

on_both_backends! {
    async fn replayed_sequence_uid_returns_200_with_the_stored_row(app) {
        let body = json!({"uid": "s-1", "source": "line-1", "key": "A"});
        let (_, first) = app.post_json("/api/sequences/", &body).await;
        let (status, again) = app
            .post_json("/api/sequences/", &json!({"uid": "s-1", "source": "other"}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again, first);
    }
}

on_both_backends! {
    async fn idempotency_key_header_is_the_uid_when_the_body_has_none(app) {
        let seq = app.create_sequence("line-1").await;
        let mut body = film_body(seq["id"].as_i64().unwrap(), "line-1", "x");
        body.as_object_mut().unwrap().remove("uid");
        let headers = [("Idempotency-Key", "from-header-1")];
        let (status, row) = app.post_json_with("/api/films/", &body, &headers).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(row["uid"], "from-header-1");
        let (status, replay) = app.post_json_with("/api/films/", &body, &headers).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(replay["id"], row["id"]);
    }
}

on_both_backends! {
    async fn create_film_returns_201_and_a_replayed_uid_returns_200_with_the_stored_row(app) {
        let seq_id = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        let (status, row) = app
            .post_json("/api/films/", &film_body(seq_id, "line-1", "f-1"))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        for key in [
            "id",
            "uid",
            "sequence",
            "source",
            "received_at",
            "raw",
            "data",
            "created",
        ] {
            assert!(row.get(key).is_some(), "missing {key} in {row}");
        }
        assert_eq!(row["sequence"], seq_id);
        assert_eq!(
            row["data"],
            json!({"lot": "A", "film_no": 1, "thickness_um": 12.5})
        );
        let (status, replay) = app
            .post_json("/api/films/", &film_body(seq_id, "line-1", "f-1"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(replay, row);
        let (_, list) = app.get("/api/films/").await;
        assert_eq!(list["count"], 1, "a replay must not store a second row");
    }
}

on_both_backends! {
    async fn film_with_an_unknown_sequence_is_400_naming_the_sequence(app) {
        let (status, body) = app
            .post_json("/api/films/", &film_body(9, "line-1", "f-1"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "unknown sequence 9");
        assert_eq!(
            body["sequence"],
            json!(["Invalid pk \"9\" - object does not exist."])
        );
    }
}

on_both_backends! {
    async fn film_missing_fields_is_400_naming_each_field_drf_style(app) {
        let (status, body) = app
            .post_json("/api/films/", &json!({"uid": "u", "raw": "x"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        for field in ["sequence", "source", "received_at"] {
            assert_eq!(body[field], json!(["This field is required."]), "{body}");
        }
        assert!(body["error"].as_str().unwrap().contains("sequence"));
        let (status, body) = app.post_json("/api/sequences/", &json!({"key": "A"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["source"], json!(["This field is required."]));
    }
}

on_both_backends! {
    async fn flat_film_body_stores_extra_top_level_keys_as_data(app) {
        let seq_id = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        let flat = json!({
            "uid": "flat-1", "sequence": seq_id, "source": "line-1",
            "received_at": "2026-11-22T05:03:05.123Z", "raw": "A,7",
            "lot": "A", "film_no": 7,
        });
        let (status, row) = app.post_json("/api/films/", &flat).await;
        assert_eq!(status, StatusCode::CREATED, "{row}");
        assert_eq!(row["data"], json!({"lot": "A", "film_no": 7}));
        let (_, stored) = app.get(&format!("/api/films/{}/", row["id"])).await;
        assert_eq!(stored["data"], json!({"lot": "A", "film_no": 7}));
    }
}

on_both_backends! {
    async fn batch_answers_per_item_in_order_and_stores_the_good_ones(app) {
        let seq_id = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        app.create_film(seq_id, "line-1", "old").await;
        let batch = json!([
            film_body(seq_id, "line-1", "b-1"),
            film_body(seq_id, "line-1", "old"),
            film_body(999, "line-1", "b-3"),
            {"uid": "b-4", "source": "line-1"},
            film_body(seq_id, "line-1", "b-5"),
        ]);
        let (status, body) = app.post_json("/api/films/batch/", &batch).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let results = body["results"].as_array().unwrap();
        let statuses: Vec<i64> = results
            .iter()
            .map(|r| r["status"].as_i64().unwrap())
            .collect();
        assert_eq!(statuses, [201, 200, 400, 400, 201]);
        let uids: Vec<&str> = results.iter().map(|r| r["uid"].as_str().unwrap()).collect();
        assert_eq!(uids, ["b-1", "old", "b-3", "b-4", "b-5"]);
        assert!(results[0]["id"].as_i64().is_some());
        assert_eq!(results[2]["error"], "unknown sequence 999");
        assert!(
            results[3]["error"]
                .as_str()
                .unwrap()
                .contains("received_at")
        );
        assert!(results[3].get("id").is_none());
        let (_, list) = app.get("/api/films/").await;
        assert_eq!(list["count"], 3);
    }
}

on_both_backends! {
    async fn batch_that_is_not_an_array_is_400(app) {
        let (status, body) = app
            .post_json("/api/films/batch/", &json!({"uid": "x"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].is_string());
    }
}

/// Creates one sequence per source and `n` films alternating between them.
async fn seed(app: &crate::helpers::TestApp, n: usize) -> (i64, i64) {
    let a = app.create_sequence("a").await["id"].as_i64().unwrap();
    let b = app.create_sequence("b").await["id"].as_i64().unwrap();
    let films: Vec<Value> = (1..=n)
        .map(|i| {
            if i % 2 == 1 {
                film_body(a, "a", &format!("f{i}"))
            } else {
                film_body(b, "b", &format!("f{i}"))
            }
        })
        .collect();
    let (status, _) = app
        .post_json("/api/films/batch/", &Value::from(films))
        .await;
    assert_eq!(status, StatusCode::OK);
    (a, b)
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

on_both_backends! {
    async fn list_films_paginates_newest_first_with_absolute_next_and_previous(app) {
        seed(&app, 5).await;
        let (status, page) = app.get("/api/films/?limit=2").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["count"], 5);
        assert_eq!(ids(&page), [5, 4]);
        assert_eq!(page["previous"], Value::Null);
        let next = page["next"].as_str().unwrap();
        assert_eq!(next, app.url("/api/films/?limit=2&offset=2"));
        let (_, page2) = app.get(next.strip_prefix(&app.address).unwrap()).await;
        assert_eq!(ids(&page2), [3, 2]);
        assert_eq!(page2["previous"], app.url("/api/films/?limit=2"));
        let (_, last) = app.get("/api/films/?limit=2&offset=4").await;
        assert_eq!(ids(&last), [1]);
        assert_eq!(last["next"], Value::Null);
        assert_eq!(last["previous"], app.url("/api/films/?limit=2&offset=2"));
    }
}

on_both_backends! {
    async fn list_films_filters_by_source_and_sequence_and_keeps_filters_in_links(app) {
        let (a, b) = seed(&app, 6).await;
        let (_, page) = app.get("/api/films/?source=b&limit=2").await;
        assert_eq!(page["count"], 3);
        assert_eq!(ids(&page), [6, 4]);
        assert_eq!(
            page["next"],
            app.url("/api/films/?source=b&limit=2&offset=2")
        );
        let (_, page) = app.get(&format!("/api/films/?sequence={a}")).await;
        assert_eq!(ids(&page), [5, 3, 1]);
        let (_, page) = app
            .get(&format!("/api/films/?sequence={b}&source=a"))
            .await;
        assert_eq!(page["count"], 0);
        assert_eq!(ids(&page), Vec::<i64>::new());
    }
}

on_both_backends! {
    async fn list_films_since_id_is_ascending_from_that_id(app) {
        seed(&app, 6).await;
        let (_, page) = app.get("/api/films/?since_id=3&limit=2").await;
        assert_eq!(page["count"], 3);
        assert_eq!(ids(&page), [4, 5]);
        assert_eq!(
            page["next"],
            app.url("/api/films/?since_id=3&limit=2&offset=2")
        );
    }
}

on_both_backends! {
    async fn list_sequences_is_newest_first_and_filters_by_source(app) {
        seed(&app, 2).await;
        let (_, page) = app.get("/api/sequences/").await;
        assert_eq!(page["count"], 2);
        assert_eq!(ids(&page), [2, 1]);
        let (_, page) = app.get("/api/sequences/?source=a").await;
        assert_eq!(page["count"], 1);
        assert_eq!(page["results"][0]["source"], "a");
    }
}

on_both_backends! {
    async fn detail_routes_return_the_row_or_a_json_404(app) {
        let seq = app.create_sequence("line-1").await;
        let film = app
            .create_film(seq["id"].as_i64().unwrap(), "line-1", "f-1")
            .await;
        let (status, got) = app.get(&format!("/api/films/{}/", film["id"])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, film);
        let (status, got) = app
            .get(&format!("/api/sequences/{}/", seq["id"]))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, seq);
        let (status, body) = app.get("/api/films/424242/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "no film with id 424242");
        let (status, body) = app.get("/api/sequences/77/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body["error"].is_string());
    }
}

on_both_backends! {
    async fn bad_query_and_path_values_are_400_json(app) {
        for path in [
            "/api/films/?limit=abc",
            "/api/films/?limit=0",
            "/api/films/?offset=-1",
            "/api/films/?since_id=x",
            "/api/sequences/?limit=-5",
            "/api/films/abc/",
        ] {
            let (status, body) = app.get(path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(body["error"].is_string(), "{path}: {body}");
        }
    }
}

on_both_backends! {
    async fn malformed_json_and_wrong_content_type_are_400_json(app) {
        let (status, body) = app
            .post_raw("/api/films/", "application/json", b"{\"uid\": ".to_vec())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");
        let (status, body) = app
            .post_raw(
                "/api/sequences/",
                "text/plain",
                b"{\"source\": \"a\"}".to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].is_string());
        let (status, body) = app
            .post_raw("/api/films/batch/", "application/json", b"[1, 2".to_vec())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].is_string());
    }
}

on_both_backends! {
    async fn bodies_over_the_cap_are_413_json_and_batches_get_a_larger_cap(app) {
        let seq_id = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        let mut big = film_body(seq_id, "line-1", "big");
        big["raw"] = Value::from("x".repeat(1_100_000));
        let (status, body) = app.post_json("/api/films/", &big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
        // The same film is within the batch cap.
        let (status, body) = app.post_json("/api/films/batch/", &json!([big])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["results"][0]["status"], 201);
        let huge = Value::from(vec![Value::from("y".repeat(1 << 20)); 17]);
        let (status, body) = app.post_json("/api/films/batch/", &huge).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body["error"].is_string());
    }
}

on_both_backends! {
    async fn unknown_routes_and_methods_answer_json(app) {
        let (status, body) = app.get("/api/nothing-here/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body["error"].is_string());
        let (status, body) = app.delete("/api/films/").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(body["error"].is_string());
    }
}

on_both_backends! {
    async fn paths_without_the_trailing_slash_work_too(app) {
        let (status, _) = app
            .post_json("/api/sequences", &json!({"source": "a"}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, page) = app.get("/api/sequences").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["count"], 1);
    }
}

on_both_backends! {
    async fn a_lots_csv_holds_every_film_once_in_order_across_its_pages(app) {
        // 2,345 films: the CSV is read from the store a thousand at a time.
        let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        let uids: Vec<String> = (0..2345).map(|i| format!("csv-{i:04}")).collect();
        for chunk in uids.chunks(1000) {
            let films: Vec<Value> = chunk.iter().map(|u| film_body(seq, "line-1", u)).collect();
            let (status, _) = app.post_json("/api/films/batch/", &Value::Array(films)).await;
            assert_eq!(status, StatusCode::OK, "a batch answers per item");
        }
        let (status, ctype, csv) = app.get_text(&format!("/api/sequences/{seq}/films.csv")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/csv"), "{ctype}");
        let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
        assert_eq!(
            rows[0],
            "lot,film_no,thickness_um,width_mm,defects,uid,received_at,raw"
        );
        let listed: Vec<&str> = rows[1..].iter().map(|r| r.split(',').nth(5).unwrap()).collect();
        assert_eq!(listed, uids, "every film once, in the order stored");
        let (status, _, _) = app.get_text("/api/sequences/999999/films.csv").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
