//! Integration tests of the actors crate against real parts: pseudo-terminals opened through
//! tokio-serial, real SQLite files in temp dirs, real HTTP servers on port 0.

mod poster;
mod queue;
mod serial;
