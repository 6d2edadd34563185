//! filmgate's actix-web frontend.
//!
//! # Layout
//!
//! - [`config`]: `[web]`.
//! - `records`: the embedded records service's SQLite store (DRF-shaped films and sequences).
//! - `routes`: one module per area — records, queue, links, refresh, events, ops, dashboard.
//! - `assets/`: the dashboard (HTML, CSS, JS), embedded in the binary.
//!
//! Requests enter through [`server`]; the records routes read and write the records store,
//! the inspection routes talk to the queue through [`filmgate_actors::queue::QueueClient`] and
//! read the [`filmgate_actors::links::LinkRegistry`].

pub mod config;

pub use config::WebConfig;
