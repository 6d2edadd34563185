//! filmgate's actors: the path a film record takes from a serial line to the records service.
//!
//! # Layout
//!
//! Bottom up; a module uses only those above it in this list (no cycles).
//!
//! - [`invalid`]: a config error naming its key.
//! - [`token`]: a secret shared with a peer, made once at load.
//! - [`redact`]: secrets and control characters kept out of logs, errors and answers.
//! - [`record`]: the record model — what a frame becomes ([`record::NewItem`]), the record
//!   format and its parsing ([`record::parse`]), new sequences ([`record::SequenceRef::start`]),
//!   uids and time helpers.
//! - [`spc`]: statistical process control — the pure chart ([`spc::Chart`]: subgroups, limits,
//!   Western Electric rules) and its config; judged by the queue store with the films.
//! - [`backoff`]: the one retry-delay formula (link reopen and upstream retry).
//! - [`changes`]: the "something changed" signal the live views wait on.
//! - [`messages`]: the typed mailbox vocabulary of the actors and the web frontend, with the
//!   queue's error its answers carry.
//! - [`links`]: the link registry the web side reads (state, counters, restart handles).
//! - [`metrics`]: the poster's counters and latency histogram.
//! - [`serial`]: one supervised [`serial::SerialActor`] per `[[serial]]` link. Inside: `actor`
//!   (open, restart with backoff, stop), `reader` (one connection's read loop), [`serial::codec`]
//!   (bytes to frames, fragments), `items` (frames to items), [`serial::sequence`],
//!   [`serial::pty`] and [`serial::sim`].
//! - [`queue`]: the durable SQLite queue — [`queue::QueueStore`] (plain rusqlite, in a folder:
//!   open and write path, write log, lease, admin, inspect, rates, SPC's rows) owned by
//!   [`queue::QueueActor`] on a thread of its own (the binary runs the links there too), which
//!   decides when to commit.
//! - [`poster`]: the [`poster::PosterActor`] (lease, post task, ack) and its pure parts (what an
//!   answer means, retries, bodies), the awc client that reads every framing
//!   ([`poster::connector`]) and speaks https ([`poster::tls`]).
//!
//! # A frame's way to a row in the records service
//!
//! 1. Bytes arrive on the serial port; the link's read loop hands them to the codec, which cuts
//!    frames at the delimiter (a record not seen whole becomes a fragment).
//! 2. Each frame is parsed into a [`record::NewItem`] (a film with its sequence, or a rejected
//!    frame) and the read burst goes to the queue in one [`messages::Enqueue`].
//! 3. The queue writes it into its open transaction; the group commit makes it safe.
//! 4. The poster leases committed items ([`messages::AwaitLease`], answered by the commit that
//!    makes them leasable), posts each new sequence once and
//!    then the films (one per request or in batches), and acks the outcomes
//!    ([`messages::Ack`]): delivered items move to the posted history, failed ones wait for a
//!    retry, rejected ones are dead until an operator acts.
//! 5. The records service (`filmgate-web`'s, or any DRF backend) stores each film under its uid
//!    once; a repeated post is answered with the stored row.

pub mod backoff;
pub mod changes;
pub mod invalid;
pub mod links;
pub mod messages;
pub mod metrics;
pub mod poster;
pub mod queue;
pub mod record;
pub mod redact;
pub mod serial;
pub mod spc;
pub mod token;
