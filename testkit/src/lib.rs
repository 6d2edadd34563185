//! What the tests of every filmgate crate share, so each is written once.
//!
//! - [`wait_for`]: poll a condition with a deadline (never a fixed sleep as synchronisation).
//! - [`api`]: the one HTTP client shape every test talks to a filmgate's API with.
//! - [`textbook`]: a published control-chart data set and its published results.
//! - [`films`]: the film fixtures — a record line as a machine prints it, and the queue item a
//!   link makes of it.
//! - [`upstream`]: a scripted records service on port 0; [`unclaimed_port`] for peers that
//!   cannot bind port 0 themselves.
//!
//! A unit test inside `filmgate-actors` cannot use these fixtures (it would get a second copy of
//! the crate's types), so the queue store's unit tests keep their own.

pub mod api;
pub mod films;
pub mod textbook;
pub mod upstream;

pub use api::Api;
pub use films::{film_item, film_line, rejected_item};
pub use upstream::{Script, Seen, TestUpstream, UpstreamState};

use std::time::{Duration, Instant};

/// A port nothing listens on now, for a peer that cannot be told to bind port 0 (Django's
/// runserver, chromedriver, a node whose address goes into nginx's config first) or a test that
/// needs a port closed at first. Another process may take it before the peer binds it, so a
/// peer started on it must fail loudly, not hang.
pub fn unclaimed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on loopback")
        .port()
}

/// Polls `check` every 10 ms until it returns `Some`, failing the test with `what` after
/// `timeout`.
pub async fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}
