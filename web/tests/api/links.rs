//! Serial links over REST.

use crate::helpers::spawn_app;
use awc::http::StatusCode;
use filmgate_actors::links::LinkState;
use filmgate_actors::serial::pty::Pty;
use filmgate_actors::serial::{SerialConfig, start_link};
use serde_json::{Value, json};

#[actix_rt::test]
async fn links_list_shows_every_registered_link_with_its_status() {
    let app = spawn_app().await;
    app.links.register("line-2", "/dev/ttyUSB1");
    app.links.update("line-2", |s| {
        s.state = LinkState::Up;
        s.frames_read = 12;
    });
    let (status, body) = app.get("/api/links/").await;
    assert_eq!(status, StatusCode::OK);
    let links = body.as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["name"], "line-1");
    assert_eq!(links[0]["state"], "connecting");
    assert_eq!(links[1]["name"], "line-2");
    assert_eq!(links[1]["state"], "up");
    assert_eq!(links[1]["frames_read"], 12);
    for key in [
        "port",
        "restarts",
        "last_error",
        "frames_rejected",
        "last_frame_at",
    ] {
        assert!(links[1].get(key).is_some(), "missing {key}");
    }
}

#[actix_rt::test]
async fn restarting_an_unknown_link_is_404_json() {
    let app = spawn_app().await;
    let (status, body) = app.post_json("/api/links/nope/restart", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nope"));
}

#[actix_rt::test]
async fn restarting_a_link_that_is_not_running_is_409() {
    let app = spawn_app().await;
    let (status, body) = app.post_json("/api/links/line-1/restart", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].is_string());
}

#[actix_rt::test]
async fn restarting_a_running_link_reopens_its_port_counts_a_restart_and_it_reads_again() {
    let app = spawn_app().await;
    let mut pty = Pty::open_raw().expect("pty");
    let port = pty.slave_path().to_str().unwrap().to_owned();
    let cfg = SerialConfig {
        name: "line-2".into(),
        port: port.clone().into(),
        reconnect_initial_ms: 20,
        reconnect_max_ms: 200,
        ..Default::default()
    };
    let _link = start_link(cfg, app.queue.clone().recipient(), app.links.clone()).expect("link");
    let link = |body: &Value| body.as_array().unwrap()[1].clone();
    app.wait_for_json("/api/links/", |b| link(b)["state"] == "up")
        .await;

    let (status, body) = app.post_json("/api/links/line-2/restart", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"restarting": "line-2"}));
    let links = app
        .wait_for_json("/api/links/", |b| {
            link(b)["restarts"] == 1 && link(b)["state"] == "up"
        })
        .await;
    assert_eq!(link(&links)["name"], "line-2");
    assert_eq!(link(&links)["port"], port);

    // The reopened port is read: a frame written now reaches the queue.
    // A few bytes fit the pty's buffer, so this write does not block.
    pty.write_all(b"L9,1,25.4,1200,0\r").expect("pty write");
    let page = app
        .wait_for_json("/api/queue/?state=pending", |p| p["count"] == 1)
        .await;
    assert_eq!(page["results"][0]["source"], "line-2");
    assert_eq!(page["results"][0]["raw"], "L9,1,25.4,1200,0");
    let links = app
        .wait_for_json("/api/links/", |b| link(b)["frames_read"] == 1)
        .await;
    assert_eq!(link(&links)["restarts"], 1);
}
