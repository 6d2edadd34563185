//! [`Upstream`]: the poster's HTTP client. It POSTs a JSON body with the item's
//! `Idempotency-Key` and the configured `Authorization`, follows 307 and 308 with the same
//! method and body (at most [`MAX_REDIRECTS`] hops; 301, 302 and 303 are answered as they
//! are, see [`super::answer::judge`]), and reads the whole answer — Content-Length, chunked or
//! close-delimited ([`super::connector`]) — within `timeout_ms`.

use super::answer::{MAX_REDIRECTS, Reply, parse_retry_after};
use super::config::UpstreamConfig;
use super::connector::FramingConnector;
use awc::ClientRequest;
use awc::http::Uri;
use bytes::Bytes;
use serde::Serialize;
use std::rc::Rc;
use std::time::SystemTime;

/// Largest answer read from the upstream.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The upstream records service as the poster talks to it.
pub struct Upstream {
    client: awc::Client,
    /// Where and how to post.
    pub cfg: Rc<UpstreamConfig>,
    /// The `Authorization` header value, if a token is set.
    authorization: Option<String>,
}

impl Upstream {
    /// Makes the client. Call it on the thread that posts: `awc::Client` is `!Send`. Fails
    /// only on a TLS setting that cannot be loaded (the error names the key).
    pub fn new(cfg: Rc<UpstreamConfig>) -> Result<Upstream, String> {
        let mut connector = awc::Connector::new()
            .connector(FramingConnector::new())
            .limit(cfg.concurrency)
            .timeout(cfg.timeout());
        if cfg.is_https() {
            connector = connector.rustls_0_23(super::tls::client_config(&cfg)?);
        }
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(cfg.timeout())
            .disable_redirects()
            .finish();
        Ok(Upstream {
            client,
            authorization: cfg.authorization(),
            cfg,
        })
    }

    /// POSTs `body` to `url`; the final answer, or a transport error (retryable) as text.
    pub async fn post(
        &self,
        url: &str,
        idempotency_key: Option<&str>,
        body: &(impl Serialize + ?Sized),
    ) -> Result<Reply, String> {
        // Serialising JSON values and bodies made of them cannot fail.
        let body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let mut url = url.to_owned();
        let origin = origin_of(&url);
        let mut hops = 0;
        loop {
            // Credentials go only where they were configured for, not along a redirect elsewhere.
            let credentials = self.authorization.is_some() && origin_of(&url) == origin;
            let mut req = self
                .json_request(self.client.post(&url), credentials)
                .insert_header(("Content-Type", "application/json"));
            if let Some(key) = idempotency_key {
                req = req.insert_header(("Idempotency-Key", key));
            }
            let response = req
                .send_body(body.clone())
                .await
                .map_err(|e| format!("request to {url} failed: {e}"))?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let location = header("location");
            if matches!(status, 307 | 308)
                && hops < MAX_REDIRECTS
                && let Some(next) = location.as_deref().and_then(|l| resolve(&url, l))
            {
                log::debug!("poster: {status} from {url}, following to {next}");
                url = next;
                hops += 1;
                continue;
            }
            let retry_after = match status {
                429 | 503 => {
                    header("retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()))
                }
                _ => None,
            };
            let body = match response
                .timeout(self.cfg.timeout())
                .body()
                .limit(MAX_RESPONSE_BYTES)
                .await
            {
                Ok(body) => body,
                // The upstream has it: a 2xx is never posted again, even if its answer
                // cannot be read (too large, cut off); only its id is unknown then.
                Err(e) if (200..300).contains(&status) => {
                    log::warn!(
                        "poster: the {status} answer from {url} could not be read ({e}); counted as delivered"
                    );
                    Bytes::new()
                }
                Err(e) => return Err(format!("reading the answer from {url} failed: {e}")),
            };
            return Ok(Reply {
                status,
                body,
                retry_after,
                location,
            });
        }
    }
}

impl Upstream {
    /// `req` asking for JSON, with the configured `Authorization` when `credentials`.
    fn json_request(&self, req: ClientRequest, credentials: bool) -> ClientRequest {
        let req = req.insert_header(("Accept", "application/json"));
        match &self.authorization {
            Some(authorization) if credentials => {
                req.insert_header(("Authorization", authorization.as_str()))
            }
            _ => req,
        }
    }

    /// GETs `url` on the configured server (redirects are not followed): the answer, or a
    /// transport error as text.
    pub async fn get(&self, url: &str) -> Result<Reply, String> {
        let mut response = self
            .json_request(self.client.get(url), true)
            .send()
            .await
            .map_err(|e| format!("request to {url} failed: {e}"))?;
        let body = response
            .body()
            .limit(MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| format!("reading the answer from {url} failed: {e}"))?;
        Ok(Reply {
            status: response.status().as_u16(),
            body,
            retry_after: None,
            location: None,
        })
    }
}

/// `scheme://authority` of a URL, to tell when a redirect leaves the configured server.
fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// A `Location` resolved against the URL it answered: absolute, absolute-path or relative.
fn resolve(base: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_owned());
    }
    let uri: Uri = base.parse().ok()?;
    let origin = format!("{}://{}", uri.scheme_str()?, uri.authority()?);
    if location.starts_with('/') {
        return Some(format!("{origin}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{origin}{dir}{location}"))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn locations_resolve_like_a_browser_would() {
        let base = "http://h:8000/api/films/?x=1";
        assert_eq!(
            resolve(base, "https://o/api/").as_deref(),
            Some("https://o/api/")
        );
        assert_eq!(
            resolve(base, "/v2/films/").as_deref(),
            Some("http://h:8000/v2/films/")
        );
        assert_eq!(
            resolve(base, "batch/").as_deref(),
            Some("http://h:8000/api/films/batch/")
        );
    }
}
