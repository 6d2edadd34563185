//! filmgate's actors: the path a film record takes from a serial line to the records service.
//!
//! # Layout
//!
//! - [`record`]: the record model at the bottom: the plain data a frame becomes
//!   ([`record::NewItem`]), the record format ([`record::format`]) and parsing
//!   ([`record::parse`]), used by the links and the queue alike; the time helpers.
//! - [`messages`]: the typed mailbox vocabulary the actors and the web frontend exchange, and
//!   [`error`]: the queue's error they answer with.
//! - [`serial`]: one supervised [`serial::SerialActor`] per `[[serial]]` link — framing
//!   ([`serial::codec`], which also cuts fragments), sequences, and the simulated machine.
//! - [`links`]: the shared link registry the web side reads (state, counters, restart handles).
//! - [`queue`]: the durable SQLite queue ([`queue::store`], plain code) and the
//!   [`queue::QueueActor`] that owns it on a thread of its own.
//! - [`poster`]: the [`poster::PosterActor`] (lease, post task, ack), the HTTP client that
//!   reads every framing and speaks https ([`poster::http`]), and the pure parts: what answers
//!   mean ([`poster::answer`]), the retry policy ([`poster::retry`]) and request bodies.
//! - [`metrics`]: counters and the post latency histogram shared with `/metrics`.
//!
//! A frame's way to a row in the records service: bytes on a serial port are cut into frames by
//! the link's codec (a fragment where a record was not seen whole), parsed into
//! [`record::NewItem`]s and sent to the queue in an [`messages::Enqueue`]; the queue's group
//! commit makes them safe; the poster leases them ([`messages::Lease`]), posts each film's
//! sequence once and then the film, and acks the outcome ([`messages::Ack`]) — delivered items
//! move to the posted history, failed ones wait for a retry, rejected ones are dead. The
//! records service (`filmgate-web`, or any DRF backend) stores the film under its uid once.

pub mod backoff;
pub mod changes;
pub mod error;
pub mod invalid;
pub mod links;
pub mod messages;
pub mod metrics;
pub mod poster;
pub mod queue;
pub mod record;
pub mod serial;
