//! End to end on the embedded records service: pty -> link -> queue -> poster -> this same
//! process's `/api/films/`, read back through the records and refresh APIs; bad frames become
//! dead items while the frames around them arrive.

use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

#[actix_rt::test]
async fn films_from_a_pty_reach_the_embedded_records_service_and_the_refresh_api() {
    let dir = temp_dir();
    let mut pty = pty_behind(&device_link(dir.path()));
    let app = spawn_app(test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        None,
    ))
    .await;
    app.wait_link_up("line-1").await;
    let first = app.get_json("/api/refresh/").await;
    let cursor = first["cursor"].as_str().unwrap().to_owned();

    let text: String = (1..=12)
        .map(|n| film_line(if n <= 6 { "E1" } else { "E2" }, n))
        .collect();
    pty.write_all(text.as_bytes()).unwrap();
    let films = wait_for(PATIENCE, "12 films stored", async || {
        let page = app.get_json("/api/films/?limit=100").await;
        (page["count"] == 12).then_some(page)
    })
    .await;
    let results = films["results"].as_array().unwrap();
    let mut numbers: Vec<u64> = results
        .iter()
        .map(|f| f["data"]["film_no"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=12).collect::<Vec<_>>());
    for film in results {
        assert_eq!(film["source"], "line-1");
        assert!(film["id"].is_u64() && film["sequence"].is_u64() && film["uid"].is_string());
    }
    let sequences = app.get_json("/api/sequences/").await;
    assert_eq!(sequences["count"], 2);

    let since = app
        .get_json(&format!("/api/refresh/?cursor={cursor}"))
        .await;
    assert_eq!(since["films"].as_array().unwrap().len(), 12);
    assert_eq!(since["sequences"].as_array().unwrap().len(), 2);
    assert_eq!(since["links"][0]["name"], "line-1");
    assert!(
        since["queue"]["posted"].as_u64().unwrap() >= 12 || since["queue"]["in_flight"].is_u64()
    );
    let again = app
        .get_json(&format!(
            "/api/refresh/?cursor={}",
            since["cursor"].as_str().unwrap()
        ))
        .await;
    assert!(
        again["films"].as_array().unwrap().is_empty(),
        "nothing new since the last cursor"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn bad_frames_become_inspectable_dead_items_while_their_neighbours_arrive() {
    let dir = temp_dir();
    let pty = pty_behind(&device_link(dir.path()));
    let app = spawn_app(test_settings(
        dir.path(),
        Some(&device_link(dir.path())),
        None,
    ))
    .await;
    app.wait_link_up("line-1").await;

    let mut bytes = film_line("B", 1).into_bytes();
    bytes.extend_from_slice(b"B,2,\xff\xfe,1,0\r"); // invalid UTF-8
    bytes.extend(film_line("B", 3).into_bytes());
    bytes.extend(std::iter::repeat_n(b'x', 70_000)); // 70 KB without a delimiter...
    bytes.push(b'\r'); // ...until this one
    bytes.extend(film_line("B", 5).into_bytes());
    bytes.extend_from_slice(b"B,6,too,few\r"); // wrong field count
    bytes.extend(film_line("B", 7).into_bytes());
    let _pty = write_off_thread(pty, bytes).await;

    wait_for(PATIENCE, "4 films stored", async || {
        (app.get_json("/api/films/").await["count"] == 4).then_some(())
    })
    .await;
    let films = app.get_json("/api/films/").await;
    let mut numbers: Vec<u64> = films["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["data"]["film_no"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 3, 5, 7]);

    let dead = app.get_json("/api/queue/?state=dead&limit=10").await;
    assert_eq!(dead["count"], 3, "{dead}");
    let dead: Vec<Value> = dead["results"].as_array().unwrap().clone();
    let utf8 = dead
        .iter()
        .find(|d| d["raw_hex"].is_string())
        .expect("the invalid UTF-8 frame");
    assert_eq!(utf8["raw_hex"], hex(b"B,2,\xff\xfe,1,0"));
    assert!(utf8["last_error"].as_str().unwrap().contains("UTF-8"));
    let long = dead
        .iter()
        .find(|d| d["raw"].as_str().unwrap().len() == 70_000)
        .expect("the 70 KB frame, whole");
    assert!(
        long["last_error"]
            .as_str()
            .unwrap()
            .contains("max_frame_bytes")
    );
    let few = dead
        .iter()
        .find(|d| d["raw"] == "B,6,too,few")
        .expect("the short frame");
    assert!(few["last_error"].as_str().unwrap().contains("fields"));

    let link = app.link("line-1").await;
    assert_eq!(link["frames_read"], 4);
    assert_eq!(link["frames_rejected"], 3);
    assert_eq!(link["state"], "up");
    app.stop().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
