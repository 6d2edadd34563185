//! [`TestUpstream`]: a records service of our own, for what no real server does on purpose —
//! outages on cue, stalls after storing, rejections by content — and to count exactly what
//! arrived (every uid created once). Real peers (Django, nginx) are in the tests that need them.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the scripted upstream does with the next requests.
#[derive(Default)]
pub struct Script {
    /// Answer this many requests with 503 first.
    pub fail_next: usize,
    /// Delay the answer to this many film requests by `stall` (after storing the film).
    pub stall_next: usize,
    pub stall: Duration,
    /// Films whose `raw` contains one of these strings get 400.
    pub reject_raw: Vec<String>,
}

/// Everything the upstream saw and stored.
#[derive(Default)]
pub struct Seen {
    pub sequences: HashMap<String, (u64, Value)>,
    /// Stored films by uid: (id, body).
    pub films: HashMap<String, (u64, Value)>,
    /// How many times each uid was *created* (must stay 1).
    pub created: HashMap<String, u32>,
    /// Requests answered 2xx, including replays.
    pub answered_ok: u64,
    pub replays: u64,
    /// Each request's (path, Authorization, Idempotency-Key).
    pub headers: Vec<(String, Option<String>, Option<String>)>,
    pub next_id: u64,
}

#[derive(Clone, Default)]
pub struct UpstreamState {
    pub script: Arc<Mutex<Script>>,
    pub seen: Arc<Mutex<Seen>>,
}

/// A real actix-web records service on port 0, scripted to fail, stall or reject.
pub struct TestUpstream {
    pub base_url: String,
    pub state: UpstreamState,
}

impl TestUpstream {
    pub async fn start() -> TestUpstream {
        Self::start_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            UpstreamState::default(),
        )
    }

    /// Starts on `listener` with existing `state` (to bring a "down" upstream back).
    pub fn start_on(listener: TcpListener, state: UpstreamState) -> TestUpstream {
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(64 << 20))
                .route("/api/sequences/", web::post().to(post_sequence))
                .route("/api/films/", web::post().to(post_film))
                .route("/api/films/batch/", web::post().to(post_batch))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_rt::spawn(server);
        TestUpstream {
            base_url: format!("http://127.0.0.1:{port}/api/"),
            state,
        }
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.state.seen.lock().unwrap()
    }

    pub fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.state.script.lock().unwrap()
    }

    /// Film numbers stored, sorted, from nested or flat bodies.
    pub fn film_numbers(&self) -> Vec<u64> {
        let seen = self.seen();
        let mut numbers: Vec<u64> = seen
            .films
            .values()
            .map(|(_, b)| {
                b.get("data").unwrap_or(b)["film_no"]
                    .as_u64()
                    .expect("film_no")
            })
            .collect();
        numbers.sort_unstable();
        numbers
    }
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Logs the request and applies a scripted outage: `Some(503)` when the request fails.
fn scripted_failure(state: &UpstreamState, req: &HttpRequest) -> Option<HttpResponse> {
    let mut script = state.script.lock().unwrap();
    state.seen.lock().unwrap().headers.push((
        req.path().to_owned(),
        header(req, "Authorization"),
        header(req, "Idempotency-Key"),
    ));
    if script.fail_next > 0 {
        script.fail_next -= 1;
        return Some(HttpResponse::ServiceUnavailable().json(json!({"error": "scripted outage"})));
    }
    None
}

/// Sends `response` after a scripted stall, if one is due. The row is already stored, so a
/// client that timed out meets a replay (200) when it retries.
async fn after_stall(state: &UpstreamState, response: HttpResponse) -> HttpResponse {
    let stall = {
        let mut script = state.script.lock().unwrap();
        (script.stall_next > 0).then(|| {
            script.stall_next -= 1;
            script.stall
        })
    };
    if let Some(stall) = stall {
        actix_rt::time::sleep(stall).await;
    }
    response
}

/// Stores `body` under its uid: (status, id) — 201 when new, 200 when replayed.
fn store(seen: &mut Seen, films: bool, body: Value) -> (u16, u64) {
    let uid = body["uid"].as_str().expect("uid in body").to_owned();
    let table = if films { &seen.films } else { &seen.sequences };
    if let Some((id, _)) = table.get(&uid) {
        let id = *id;
        seen.replays += 1;
        seen.answered_ok += 1;
        return (200, id);
    }
    seen.next_id += 1;
    let id = seen.next_id;
    *seen.created.entry(uid.clone()).or_default() += 1;
    let table = if films {
        &mut seen.films
    } else {
        &mut seen.sequences
    };
    table.insert(uid, (id, body));
    seen.answered_ok += 1;
    (201, id)
}

async fn post_sequence(
    state: web::Data<UpstreamState>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(r) = scripted_failure(&state, &req) {
        return r;
    }
    let body = body.into_inner();
    let (status, id) = store(&mut state.seen.lock().unwrap(), false, body.clone());
    answer(status, with_id(body, id))
}

/// The stored row: the body with its id.
fn with_id(mut body: Value, id: u64) -> Value {
    body["id"] = json!(id);
    body
}

fn answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
}

fn film_result(state: &UpstreamState, body: Value) -> (u16, Value) {
    let raw = body["raw"].as_str().unwrap_or_default().to_owned();
    if state
        .script
        .lock()
        .unwrap()
        .reject_raw
        .iter()
        .any(|r| raw.contains(r.as_str()))
    {
        return (
            400,
            json!({"error": "scripted rejection", "raw": ["not accepted"]}),
        );
    }
    let mut seen = state.seen.lock().unwrap();
    let known: HashSet<u64> = seen.sequences.values().map(|(id, _)| *id).collect();
    if !body["sequence"]
        .as_u64()
        .is_some_and(|s| known.contains(&s))
    {
        return (400, json!({"error": "unknown sequence"}));
    }
    let (status, id) = store(&mut seen, true, body.clone());
    (status, with_id(body, id))
}

async fn post_film(
    state: web::Data<UpstreamState>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(r) = scripted_failure(&state, &req) {
        return r;
    }
    let (status, row) = film_result(&state, body.into_inner());
    after_stall(&state, answer(status, row)).await
}

async fn post_batch(
    state: web::Data<UpstreamState>,
    req: HttpRequest,
    body: web::Json<Vec<Value>>,
) -> HttpResponse {
    if let Some(r) = scripted_failure(&state, &req) {
        return r;
    }
    let results: Vec<Value> = body
        .into_inner()
        .into_iter()
        .map(|film| {
            let uid = film["uid"].clone();
            let (status, row) = film_result(&state, film);
            if status < 300 {
                json!({"uid": uid, "status": status, "id": row["id"]})
            } else {
                json!({"uid": uid, "status": status, "error": row["error"]})
            }
        })
        .collect();
    HttpResponse::Ok().json(json!({ "results": results }))
}
