//! Generated requests against every JSON route: whatever the body or query, the answer is
//! never a 5xx, every error is a JSON `{"error": ...}` (or DRF field errors), and the server is
//! alive afterwards. `FILMGATE_FUZZ_CASES` sets the number of cases (default 2,000).

use crate::helpers::spawn_app;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

/// Any JSON value, nested a few levels, with strings that look like what the routes expect.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9:.T -]{0,12}".prop_map(Value::String),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("uid".to_owned()),
                    Just("sequence".to_owned()),
                    Just("source".to_owned()),
                    Just("received_at".to_owned()),
                    Just("raw".to_owned()),
                    Just("data".to_owned()),
                    Just("key".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..7
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request: a POST of a JSON (or not quite JSON) body, or a GET with a query string.
#[derive(Debug, Clone)]
enum Request {
    Post { path: &'static str, body: Vec<u8> },
    Get { path: String },
}

fn request() -> impl Strategy<Value = Request> {
    let post_path = prop_oneof![
        Just("/api/sequences/"),
        Just("/api/films/"),
        Just("/api/films/batch/"),
        Just("/api/queue/retry"),
        Just("/api/queue/1/retry"),
        Just("/api/links/line-1/restart"),
    ];
    let body = prop_oneof![
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    let get_path = prop_oneof![
        Just("/api/films/"),
        Just("/api/sequences/"),
        Just("/api/queue/"),
        Just("/api/refresh/"),
        Just("/api/films/7/"),
    ];
    let query = proptest::collection::vec(
        (
            prop_oneof![
                Just("limit"),
                Just("offset"),
                Just("since_id"),
                Just("source"),
                Just("sequence"),
                Just("state"),
                Just("cursor"),
            ],
            "[-a-z0-9.%]{0,12}",
        ),
        0..4,
    );
    prop_oneof![
        (post_path, body).prop_map(|(path, body)| Request::Post { path, body }),
        (get_path, query).prop_map(|(path, query)| {
            let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Request::Get {
                path: format!("{path}?{}", query.join("&")),
            }
        }),
    ]
}

#[actix_rt::test]
async fn generated_requests_never_get_a_5xx_and_errors_are_json() {
    let cases: u32 = std::env::var("FILMGATE_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    let app = spawn_app().await;
    let client = app.client();
    let mut runner = TestRunner::new(Config::default());
    let strategy = request();
    for _ in 0..cases {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let mut res = match &case {
            Request::Post { path, body } => client
                .post(app.url(path))
                .insert_header(("Content-Type", "application/json"))
                .send_body(body.clone())
                .await
                .unwrap(),
            Request::Get { path } => client.get(app.url(path)).send().await.unwrap(),
        };
        let status = res.status().as_u16();
        let body = res.body().limit(64 << 20).await.unwrap();
        assert!(
            status < 500,
            "{case:?} -> {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            let json: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{case:?} -> {status}, not JSON ({e})"));
            assert!(json.is_object(), "{case:?} -> {json}");
        }
    }
    let (status, _) = app.get("/healthz").await;
    assert!(
        status.is_success(),
        "alive after {cases} generated requests"
    );
}
