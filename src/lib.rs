//! The filmgate binary's library: configuration and the wiring of the actors and the web
//! frontend into one running application.
//!
//! # Layout
//!
//! - [`config`]: [`config::Settings`] — load, override from the environment, validate, redact.
//! - [`logging`]: env_logger with malformed-request lines rate-limited, secrets redacted, and
//!   the journal's format under systemd.
//! - [`service`]: the systemd notify protocol (ready, watchdog, stopping).
//! - [`startup`]: [`startup::Application`] — open the stores, start the actors, bind the
//!   listener, serve, and shut down in order (stop reading, commit, drain posts).
//!
//! The actors live in `filmgate-actors`, the HTTP side in `filmgate-web`.

pub mod config;
pub mod logging;
pub mod service;
pub mod startup;
