//! [`Api`]: the one way every test talks to a filmgate's HTTP API, whether the app runs in the
//! test's own actix system or as a spawned binary. One name per shape of answer:
//!
//! - [`Api::get`], [`Api::post_json`], [`Api::delete`], ...: the status and the JSON body
//!   (`null` when empty), whatever the status — for tests of the answer itself;
//! - [`Api::get_json`]: the JSON of a 2xx; anything else fails the test;
//! - [`Api::try_get_json`]: `None` while nothing answers (a gateway starting or restarting),
//!   for polling with [`crate::wait_for`].
//!
//! Writes carry the token (`Authorization: Bearer`) when one is set.

use actix_web::http::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Longest wait for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest [`Api::wait_for_json`] waits.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body read.
const MAX_BODY_BYTES: usize = 64 << 20;

/// A filmgate's HTTP API at `address` (`http://127.0.0.1:PORT`).
#[derive(Debug, Clone)]
pub struct Api {
    pub address: String,
    /// Sent with writes when set.
    pub token: Option<String>,
}

impl Api {
    pub fn new(address: impl Into<String>) -> Api {
        Api {
            address: address.into(),
            token: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A client made on the calling thread (`awc::Client` is `!Send`).
    pub fn client(&self) -> awc::Client {
        awc::Client::builder().timeout(REQUEST_TIMEOUT).finish()
    }

    /// Status and JSON of `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.client().get(self.url(path)).send().await;
        answer(resp.expect("the request is answered")).await
    }

    /// The JSON of `GET path`, which must answer 2xx.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    /// The JSON of `GET path`; `None` while nothing answers or the answer is not JSON.
    pub async fn try_get_json(&self, path: &str) -> Option<Value> {
        let mut resp = self.client().get(self.url(path)).send().await.ok()?;
        resp.json().limit(MAX_BODY_BYTES).await.ok()
    }

    /// Status, content type and text of `GET path`.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String, String) {
        let mut resp = self
            .client()
            .get(self.url(path))
            .send()
            .await
            .expect("the request is answered");
        let body = resp.body().limit(MAX_BODY_BYTES).await.expect("a body");
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = String::from_utf8_lossy(&body).into_owned();
        (resp.status(), content_type, text)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.get_text("/metrics").await.2
    }

    /// `POST path` without a body.
    pub async fn post(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.write(self.client().post(self.url(path))).send().await;
        answer(resp.expect("the request is answered")).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_json_with(path, body, &[]).await
    }

    /// `POST path` with a JSON body and more headers.
    pub async fn post_json_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self.write(self.client().post(self.url(path)));
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        answer(req.send_json(body).await.expect("the request is answered")).await
    }

    /// `POST path` with a body of any content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let req = self
            .write(self.client().post(self.url(path)))
            .insert_header(("Content-Type", content_type));
        answer(req.send_body(body).await.expect("the request is answered")).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .write(self.client().delete(self.url(path)))
            .send()
            .await;
        answer(resp.expect("the request is answered")).await
    }

    /// `GET path` until it answers 2xx with JSON that satisfies `check` (within
    /// [`WAIT_TIMEOUT`], else the test fails); that JSON.
    pub async fn wait_for_json(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let what = format!("GET {path} to satisfy the check");
        crate::wait_for(WAIT_TIMEOUT, &what, async || {
            let mut resp = self.client().get(self.url(path)).send().await.ok()?;
            let body = resp.json().limit(MAX_BODY_BYTES).await.ok()?;
            (resp.status().is_success() && check(&body)).then_some(body)
        })
        .await
    }

    fn write(&self, req: awc::ClientRequest) -> awc::ClientRequest {
        match &self.token {
            Some(token) => req.insert_header(("Authorization", format!("Bearer {token}"))),
            None => req,
        }
    }
}

/// The status and JSON body (`null` when empty; a body that is not JSON fails the test).
async fn answer<S>(mut resp: awc::ClientResponse<S>) -> (StatusCode, Value)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = resp.body().limit(MAX_BODY_BYTES).await.expect("a body");
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))
    };
    (resp.status(), json)
}
