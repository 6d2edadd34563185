//! Serial links: one supervised [`SerialActor`] per `[[serial]]`.
//!
//! Bytes enter from a tokio-serial port and are read by one connection's read loop
//! (`reader`); [`codec::FrameCodec`] cuts them into frames (a bad frame becomes an item, never
//! an error); `items` parses each frame ([`crate::record::parse`]) and gives it a uid and a
//! sequence ([`sequence::SequenceTracker`]); they leave as [`crate::messages::Enqueue`].
//! `actor` opens the port, restarts the link with a backoff and answers restart and stop.
//! [`pty`] and [`sim`] provide a pseudo-terminal line and the simulated machine (`port = "sim"`).

mod actor;
pub mod codec;
mod config;
mod items;
pub mod pty;
mod reader;
pub mod sequence;
pub mod sim;

pub use actor::{SerialActor, start_link, start_link_resuming};
pub use config::{DataBits, FlowControl, Parity, Port, RecordConfig, RecordFormat, SerialConfig};
