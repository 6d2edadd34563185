//! Integration tests of filmgate-web: a real server on 127.0.0.1:0 with a temp records
//! database and the real queue actor over a temp SQLite file (plus, for link control, a real
//! serial link on a pseudo-terminal), driven over HTTP with awc.

mod auth;
mod backends;
mod fuzz;
mod guard;
mod helpers;
mod links;
mod ops;
mod perf;
mod queue;
mod records;
mod refresh;
mod stall;
mod store;
