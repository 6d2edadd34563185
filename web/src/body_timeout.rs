//! A request body must keep arriving. A client that announces a body and then stalls (no byte
//! for `web.body_idle_timeout_ms`) or trickles it for longer than [`BODY_TOTAL_TIMEOUT`] in
//! all holds a connection (and a descriptor) for nothing: it is answered 408 and the
//! connection closed, token or not. A request whose body was not read to its end (a route
//! that needs none, a refusal before the body) has its connection closed after the answer,
//! so a trickling body cannot keep it either.
//!
//! The middleware wraps the request's payload in `TimedBody`; whoever reads the body meets
//! an error when a limit passes, and the answer becomes the 408.

use crate::errors::json_error;
use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use bytes::Bytes;
use futures_util::Stream;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep, sleep_until};

/// The longest a whole request body may take to arrive.
pub const BODY_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The limits a body is read under (`web.body_idle_timeout_ms`, and the 30 s total).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeouts {
    /// Longest wait for the next byte.
    pub idle: Duration,
    /// Longest wait for the whole body.
    pub total: Duration,
}

impl Default for BodyTimeouts {
    /// The limits of the default `[web]`.
    fn default() -> Self {
        crate::WebConfig::default().body_timeouts()
    }
}

/// What the reader of a [`TimedBody`] left behind for the middleware.
#[derive(Default)]
struct BodyState {
    /// A limit passed: the answer is 408.
    stalled: Cell<Option<&'static str>>,
    /// The body was read to its end.
    finished: Cell<bool>,
}

/// A request payload that fails when its next chunk is late or the whole is too slow.
struct TimedBody {
    inner: Payload,
    idle: Duration,
    idle_deadline: Pin<Box<Sleep>>,
    total_deadline: Pin<Box<Sleep>>,
    state: Rc<BodyState>,
}

impl Stream for TimedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let next = Instant::now() + this.idle;
                this.idle_deadline.as_mut().reset(next);
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(None) => {
                this.state.finished.set(true);
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Pending => {}
        }
        let stalled = if this.total_deadline.as_mut().poll(cx).is_ready() {
            "the request body took longer than 30 s"
        } else if this.idle_deadline.as_mut().poll(cx).is_ready() {
            "the request body stalled (no byte within web.body_idle_timeout_ms)"
        } else {
            return Poll::Pending;
        };
        this.state.stalled.set(Some(stalled));
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            stalled,
        )))))
    }
}

/// Whether the request announces a body (a length above 0, or chunked).
fn announces_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// The middleware (see the module docs).
pub async fn limit_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let announced = announces_body(&req);
    let timeouts = req.app_data::<BodyTimeouts>().copied().unwrap_or_default();
    let state = Rc::new(BodyState::default());
    if announced {
        let now = Instant::now();
        let timed = TimedBody {
            inner: req.take_payload(),
            idle: timeouts.idle,
            idle_deadline: Box::pin(sleep_until(now + timeouts.idle)),
            total_deadline: Box::pin(sleep_until(now + timeouts.total)),
            state: state.clone(),
        };
        req.set_payload(Payload::from(
            Box::pin(timed) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
        ));
    }
    let res = next.call(req).await?;
    let mut res = match state.stalled.get() {
        Some(why) => {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, json_error(StatusCode::REQUEST_TIMEOUT, why, None))
        }
        None => res.map_into_boxed_body(),
    };
    if announced && !state.finished.get() {
        // The rest of the body was never read: the connection cannot carry another request.
        res.response_mut()
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res)
}
