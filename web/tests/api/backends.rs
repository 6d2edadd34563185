//! The promise that the records API is the same on both backends: any run of writes and reads
//! answers alike, status and body, on SQLite and on PostgreSQL (only `created` differs, and
//! the server's own address in page links). Ids included: neither backend spends an id on a
//! replay or a rejected film.

use crate::helpers::{Backend, Postgres, TestApp, spawn_app_on};
use filmgate_testkit::wait_for;
use serde_json::{Value, json};

/// Requests per run; `FILMGATE_BACKEND_CASES` raises it for a long run.
const DEFAULT_CASES: usize = 300;

/// One generated request.
#[derive(Debug)]
enum Request {
    Post { path: &'static str, body: Value },
    Get(String),
}

fn pick<T: Clone>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())].clone()
}

/// A film body: mostly valid, sometimes with an unknown sequence, a bad field or a replayed
/// uid, nested or flat.
fn film(rng: &mut fastrand::Rng) -> Value {
    let mut body = json!({
        "uid": format!("f{}", rng.u32(0..40)),
        "sequence": rng.i64(1..=8),
        "source": pick(rng, &["a", "b"]),
        "received_at": "2026-11-22T05:03:05.123Z",
        "raw": pick(rng, &["A,1,12.5", "B;2;ü €", "  spaced  ", "{\"json\": true}"]),
    });
    let obj = body.as_object_mut().unwrap();
    if rng.bool() {
        obj.insert("data".into(), json!({"lot": "A", "n": rng.u32(..100)}));
    } else {
        obj.insert("thickness_um".into(), json!(rng.f64()));
    }
    match rng.u32(0..12) {
        0 => {
            obj.remove("source");
        }
        1 => {
            obj.insert("sequence".into(), json!("x"));
        }
        2 => {
            obj.insert("raw".into(), json!("nul\u{0}byte"));
        }
        _ => {}
    }
    body
}

fn request(rng: &mut fastrand::Rng) -> Request {
    let filters = |rng: &mut fastrand::Rng, with_sequence: bool| {
        let mut q = format!("limit={}&offset={}", rng.u32(1..6), rng.u32(0..4));
        if rng.u8(..3) == 0 {
            q += &format!("&source={}", pick(rng, &["a", "b"]));
        }
        if with_sequence && rng.u8(..3) == 0 {
            q += &format!("&sequence={}", rng.u32(1..8));
        }
        if rng.u8(..3) == 0 {
            q += &format!("&since_id={}", rng.u32(0..30));
        }
        q
    };
    match rng.u32(0..10) {
        0 | 1 => Request::Post {
            path: "/api/sequences/",
            body: json!({
                "uid": format!("s{}", rng.u32(0..8)),
                "source": pick(rng, &["a", "b"]),
                "key": pick(rng, &[json!("K"), json!(null), json!(7)]),
            }),
        },
        2 | 3 => Request::Post {
            path: "/api/films/",
            body: film(rng),
        },
        4 | 5 => Request::Post {
            path: "/api/films/batch/",
            body: Value::Array((0..rng.usize(0..15)).map(|_| film(rng)).collect()),
        },
        6 => Request::Get(format!("/api/films/?{}", filters(rng, true))),
        7 => Request::Get(format!("/api/sequences/?{}", filters(rng, false))),
        8 => Request::Get(match rng.bool() {
            true => format!("/api/films/{}/", rng.u32(1..40)),
            false => format!("/api/sequences/{}/", rng.u32(1..10)),
        }),
        _ => Request::Get(format!(
            "/api/refresh/?cursor=s{}.f{}",
            rng.u32(0..8),
            rng.u32(0..40)
        )),
    }
}

/// The answer with what legitimately differs taken out.
async fn answer(app: &TestApp, request: &Request) -> (u16, Value) {
    let (status, body) = match request {
        Request::Post { path, body } => app.post_json(path, body).await,
        Request::Get(path) => app.get(path).await,
    };
    let text = body.to_string().replace(&app.address, "");
    let mut body: Value = serde_json::from_str(&text).unwrap();
    if let Some(obj) = body.as_object_mut()
        && obj.contains_key("cursor")
    {
        // A refresh: the rows and the cursor, not this app's queue and links.
        obj.retain(|k, _| ["cursor", "sequences", "films"].contains(&k.as_str()));
    }
    strip_created(&mut body);
    (status.as_u16(), body)
}

fn strip_created(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            obj.remove("created");
            obj.values_mut().for_each(strip_created);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_created),
        _ => {}
    }
}

#[actix_rt::test]
async fn both_backends_answer_every_request_alike() {
    let seed = std::env::var("FILMGATE_BACKEND_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let cases = std::env::var("FILMGATE_BACKEND_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let sqlite = spawn_app_on(Backend::Sqlite).await;
    let postgres = spawn_app_on(Backend::Postgres).await;
    let mut rng = fastrand::Rng::with_seed(seed);
    for case in 0..cases {
        let request = request(&mut rng);
        let on_sqlite = answer(&sqlite, &request).await;
        let on_postgres = answer(&postgres, &request).await;
        assert_eq!(
            on_sqlite, on_postgres,
            "request {case} of seed {seed} (FILMGATE_BACKEND_SEED) answered differently \
             (left SQLite, right PostgreSQL): {request:?}"
        );
    }
    // The run exercised creating, not only refusing and replaying.
    let films = sqlite.records.films_total();
    assert!(films >= 20, "only {films} films created");
}

/// Two nodes on one database (two stores, each with its own pool and writer, as two processes
/// have) receiving the same uids at the same moment store one row per uid: one 201, the rest
/// replays of that row.
#[actix_rt::test]
async fn two_nodes_receiving_the_same_uid_at_once_store_one_row() {
    use filmgate_web::RecordsStore;
    use filmgate_web::store::{NewFilm, NewSequence, RecordsDb, Saved};
    let pg = crate::helpers::Postgres::start();
    let db = RecordsDb::Postgres(pg.create_database("records"));
    let nodes = [
        RecordsStore::open(&db).unwrap(),
        RecordsStore::open(&db).unwrap(),
    ];
    let sequence = NewSequence {
        uid: "same-seq".into(),
        source: "a".into(),
        key: None,
    };
    let answers = futures_util::future::join_all(
        (0..40).map(|i| nodes[i % 2].create_sequence(sequence.clone())),
    )
    .await;
    let rows: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(rows.iter().filter(|s| s.is_created()).count(), 1);
    let id = rows[0].row().id;
    assert!(rows.iter().all(|s| s.row().id == id));
    for round in 0..10 {
        let film = |uid: String| NewFilm {
            uid,
            sequence: id,
            source: "a".into(),
            received_at: "2026-11-22T05:03:05.123Z".into(),
            raw: "A,1".into(),
            data: Default::default(),
        };
        // Single posts and batches holding the same uid, on both nodes at once.
        let uid = format!("same-film-{round}");
        let answers = futures_util::future::join_all((0..20).map(|i| {
            let films = if i % 3 == 0 {
                vec![film(format!("other-{round}-{i}")), film(uid.clone())]
            } else {
                vec![film(uid.clone())]
            };
            nodes[i % 2].create_films(films)
        }))
        .await;
        let saved: Vec<Saved<_>> = answers
            .into_iter()
            .flat_map(Result::unwrap)
            .map(Result::unwrap)
            .filter(|s| s.row().uid == uid)
            .collect();
        assert_eq!(saved.len(), 20);
        assert_eq!(saved.iter().filter(|s| s.is_created()).count(), 1, "{uid}");
        let id = saved[0].row().id;
        assert!(saved.iter().all(|s| s.row().id == id), "{uid}");
    }
    let stored = pg.psql(
        "records",
        "SELECT count(*) FROM films WHERE uid LIKE 'same-film-%'",
    );
    assert_eq!(stored, "10");
}

/// A psql session (`lock-holder`) that takes the fleet's write lock (WRITE_LOCK, ASCII
/// "filmgate") and keeps it; returns once PostgreSQL has granted it.
async fn hold_the_write_lock(pg: &Postgres) -> std::process::Child {
    let holder = pg.psql_in_background(
        "records",
        "SELECT pg_advisory_xact_lock(7379548681564943461); SELECT pg_sleep(600)",
        "lock-holder",
    );
    let granted = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted";
    wait_for(
        crate::helpers::DEADLINE,
        "psql holding the lock",
        async || (count(pg, granted) > 0).then_some(()),
    )
    .await;
    holder
}

/// The number a `SELECT count(*)` answers.
fn count(pg: &Postgres, sql: &str) -> u32 {
    pg.psql("records", sql).parse().unwrap()
}

/// On PostgreSQL every write waits for the fleet's write lock (what keeps ids in commit
/// order): while another session holds it, a post is not answered and its node's session waits
/// on the lock; once that session is gone, the post is answered 201.
#[actix_rt::test]
async fn a_write_waits_for_the_fleet_write_lock() {
    use crate::helpers::film_body;
    let app = spawn_app_on(Backend::Postgres).await;
    let seq = app.create_sequence("a").await["id"].as_i64().unwrap();
    let pg = app.postgres.as_ref().unwrap();
    let mut holder = hold_the_write_lock(pg).await;
    let body = film_body(seq, "a", "waits");
    let post = app.post_json("/api/films/", &body);
    let release = async {
        let waiting = "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'filmgate' AND wait_event_type = 'Lock'";
        let what = "a filmgate session waiting for the write lock";
        wait_for(crate::helpers::DEADLINE, what, async || {
            (count(pg, waiting) > 0).then_some(())
        })
        .await;
        assert_eq!(app.committed_films("waits"), 0);
        pg.psql(
            "records",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'lock-holder'",
        );
    };
    let ((status, row), ()) = futures_util::join!(post, release);
    assert_eq!(status, 201, "{row}");
    assert_eq!(app.committed_films("waits"), 1);
    let _ = holder.wait();
}

/// A session that holds the write lock and never lets go (a node frozen mid-commit) cannot
/// hang the fleet: the next write gets a 503 once `lock_timeout` passes, and the retry after
/// the holder is gone is stored.
#[actix_rt::test]
async fn a_write_lock_held_for_good_gives_a_503_not_a_hang() {
    use crate::helpers::film_body;
    let app = spawn_app_on(Backend::Postgres).await;
    let seq = app.create_sequence("a").await["id"].as_i64().unwrap();
    let pg = app.postgres.as_ref().unwrap();
    let mut holder = hold_the_write_lock(pg).await;
    let body = film_body(seq, "a", "held");
    let (status, answer) = app.post_json("/api/films/", &body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("lock timeout"),
        "{answer}"
    );
    assert_eq!(app.committed_films("held"), 0);
    pg.psql(
        "records",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'lock-holder'",
    );
    let _ = holder.wait();
    let (status, answer) = app.post_json("/api/films/", &body).await;
    assert_eq!(status, 201, "{answer}");
}
