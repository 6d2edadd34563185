//! filmgate's actors: the path a film record takes from a serial line to the records service.
//!
//! # Layout
//!
//! - [`record`]: the plain data a frame becomes ([`record::NewItem`]) and the time helpers.
//! - [`messages`]: the typed mailbox vocabulary the actors and the web frontend exchange.
//! - [`serial`]: one supervised [`serial::SerialActor`] per `[[serial]]` link — framing
//!   ([`serial::codec`]), parsing ([`serial::parse`]), sequences, and the simulated machine.
//! - [`links`]: the shared link registry the web side reads (state, counters, restart handles).
//! - [`queue`]: the durable SQLite queue ([`queue::store`], plain code) and the
//!   [`queue::QueueActor`] that owns it on a thread of its own.
//! - [`poster`]: retry policy ([`poster::retry`], pure), request bodies, and the
//!   [`poster::PosterActor`] that posts with awc.
//! - [`metrics`]: counters and the post latency histogram shared with `/metrics`.
//!
//! Data enters as bytes on a serial port, becomes [`record::NewItem`]s in an
//! [`messages::Enqueue`], is made durable by the queue, leased by the poster
//! ([`messages::Lease`]) and leaves as an HTTP POST; the outcome returns as [`messages::Ack`].

pub mod invalid;
pub mod links;
pub mod messages;
pub mod metrics;
pub mod poster;
pub mod queue;
pub mod record;
pub mod serial;
