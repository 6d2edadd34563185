//! What the tests of every filmgate crate share, so each is written once.
//!
//! - [`wait_for`]: poll a condition with a deadline (never a fixed sleep as synchronisation).
//! - [`films`]: the film fixtures — a record line as a machine prints it, and the queue item a
//!   link makes of it.
//! - [`upstream`]: a scripted records service on port 0.
//!
//! A unit test inside `filmgate-actors` cannot use these fixtures (it would get a second copy of
//! the crate's types), so the queue store's unit tests keep their own.

pub mod films;
pub mod upstream;

pub use films::{film_item, film_line, rejected_item};
pub use upstream::{Script, Seen, TestUpstream, UpstreamState};

use std::time::{Duration, Instant};

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
