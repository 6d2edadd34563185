//! Serial links: one supervised [`SerialActor`] per `[[serial]]`.
//!
//! Bytes enter from a tokio-serial port, are cut into frames by [`codec::FrameCodec`] (which
//! turns a bad frame into an item, never an error), parsed by [`parse::parse_frame`], given a
//! sequence by [`sequence::SequenceTracker`], and leave as [`crate::messages::Enqueue`].

pub mod config;
pub mod parse;

pub use config::{FlowControl, Parity, RecordConfig, RecordFormat, SerialConfig};
