//! [`SerialActor`]: one supervised serial link. It opens the port with tokio-serial, reads
//! frames ([`super::codec::FrameCodec`]), turns each read burst into one [`Enqueue`] for the queue, and
//! reports its state and counters to the [`LinkRegistry`].
//!
//! Data enters as bytes on the port and leaves as [`crate::record::NewItem`]s sent with `send().await` (no
//! reading while the queue has not taken a batch; a batch the queue refuses is held and
//! retried, never dropped). Control enters as [`RestartLink`] and [`StopLink`].
//!
//! An open failure, EOF, read error or idle timeout stops the actor; its `actix::Supervisor`
//! restarts it at once and [`SerialActor`] waits out a backoff itself (`ctx.run_later`),
//! doubling from `reconnect_initial_ms` to `reconnect_max_ms`, reset by the first film read on
//! a connection. Each connection gets a new codec; the bytes of a record a connection did not
//! finish are kept as a fragment (a dead item), never joined to the next connection's bytes.
//!
//! The read loop itself is in `reader`: the link's sequence tracker moves into it for the
//! connection and comes back with its end, so the actor and the loop share no cells.

use super::config::SerialConfig;
use super::items::ItemMaker;
use super::pty::handover_identity;
use super::reader::{Connection, Finished, ReadEnd, Signal, open_port, read_loop};
use super::sequence::SequenceTracker;
use super::sim::Simulator;
use crate::backoff::{Backoff, Reconnects};
use crate::links::{LinkRegistry, LinkState};
use crate::messages::{Enqueue, RestartLink, StopLink};
use crate::record::SequenceRef;
use actix::prelude::*;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Starts the link described by `cfg` under an `actix::Supervisor`, sending its frames to
/// `queue` and reporting to `links` (registered here, with its restart and stop handles).
///
/// With `port = "sim"` a [`Simulator`] is started first; the actor owns it for its whole life
/// (across restarts) and opens its slave path. Fails only when the simulator cannot start; a
/// device that cannot be opened is a link failure handled by restarts.
pub fn start_link(
    cfg: SerialConfig,
    queue: Recipient<Enqueue>,
    links: LinkRegistry,
) -> io::Result<Addr<SerialActor>> {
    start_link_resuming(cfg, queue, links, None, None, None)
}

/// [`start_link`] continuing `last_sequence`, the newest sequence the queue holds for this link
/// (see [`SequenceTracker::resuming`]), on a port the last process may have handed over at a
/// record boundary: `handover` is the port identity it stopped on
/// ([`super::pty::handover_identity`]); the first open of the same port starts at a record.
pub fn start_link_resuming(
    cfg: SerialConfig,
    queue: Recipient<Enqueue>,
    links: LinkRegistry,
    last_sequence: Option<SequenceRef>,
    handover: Option<String>,
    arbiter: Option<&ArbiterHandle>,
) -> io::Result<Addr<SerialActor>> {
    let simulator = if cfg.is_sim() {
        Some(Simulator::start(cfg.sim_rate_hz)?)
    } else {
        None
    };
    let port_path = match (&simulator, &cfg.port) {
        (Some(sim), _) => sim.slave_path().to_string_lossy().into_owned(),
        (None, port) => port.to_string(),
    };
    links.register(&cfg.name, &cfg.port.to_string());
    let name = cfg.name.clone();
    let actor = SerialActor {
        tracker: Some(SequenceTracker::resuming(
            cfg.record.sequence_key().is_some(),
            last_sequence,
        )),
        reconnects: Reconnects::new(Backoff::new(cfg.reconnect_initial(), cfg.reconnect_max())),
        cfg: Arc::new(cfg),
        port_path,
        queue,
        links: links.clone(),
        _simulator: simulator,
        film_seen: false,
        first_start: true,
        reopen_now: false,
        stopped_for_good: false,
        reader: None,
        pending_open: None,
        last_logged_error: None,
        boundary_port: handover,
    };
    let addr = match arbiter {
        Some(arbiter) => Supervisor::start_in_arbiter(arbiter, move |_| actor),
        None => Supervisor::start(move |_| actor),
    };
    links.set_control(&name, addr.clone().recipient(), addr.clone().recipient());
    Ok(addr)
}

/// One serial link; see the module docs. Restarted in place by its supervisor, so its fields
/// (simulator, sequence, backoff) outlive connections.
pub struct SerialActor {
    /// The link's settings.
    cfg: Arc<SerialConfig>,
    /// The path opened: the configured device, or the simulator's slave.
    port_path: String,
    /// The queue's mailbox.
    queue: Recipient<Enqueue>,
    /// Where the link's state and counters are shown.
    links: LinkRegistry,
    /// The simulated machine of a `port = "sim"` link, alive as long as the actor.
    _simulator: Option<Simulator>,
    /// The current sequence, kept across reconnects; moved into each connection's read loop
    /// (`None` while one runs) and given back when it ends.
    tracker: Option<SequenceTracker>,
    /// Delay before the next reopen.
    reconnects: Reconnects,
    /// Whether the last connection read a film; resets the backoff.
    film_seen: bool,
    /// The very first start opens at once.
    first_start: bool,
    /// A manual restart reopens at once.
    reopen_now: bool,
    /// After [`StopLink`]: never open again.
    stopped_for_good: bool,
    /// Tells the running read loop to end (present while one runs).
    reader: Option<watch::Sender<Signal>>,
    /// The scheduled (backed-off) open, cancelled by [`StopLink`].
    pending_open: Option<SpawnHandle>,
    /// The last error logged at warn, so a link failing the same way again logs at debug.
    last_logged_error: Option<String>,
    /// The port identity the last connection (or process) stopped on at a record boundary.
    boundary_port: Option<String>,
}

impl Actor for SerialActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.stopped_for_good {
            return;
        }
        if std::mem::take(&mut self.film_seen) {
            self.reconnects.reset();
        }
        let first_start = std::mem::take(&mut self.first_start);
        let manual_restart = std::mem::take(&mut self.reopen_now);
        let delay = if first_start || manual_restart {
            Duration::ZERO
        } else {
            self.reconnects.next_delay()
        };
        if delay.is_zero() {
            self.open(ctx);
        } else {
            self.pending_open = Some(ctx.run_later(delay, |act, ctx| act.open(ctx)));
        }
    }
}

impl Supervised for SerialActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.links.update(&self.cfg.name, |s| s.restarts += 1);
    }
}

impl Handler<RestartLink> for SerialActor {
    type Result = ();

    /// Ends the current connection (after the batch in hand reaches the queue) and reopens
    /// at once; counts as a restart.
    fn handle(&mut self, _: RestartLink, ctx: &mut Context<Self>) {
        if self.stopped_for_good {
            return;
        }
        log::info!("serial link {}: restart requested", self.cfg.name);
        match &self.reader {
            Some(reader) => {
                reader.send_replace(Signal::Restart);
            }
            None => {
                self.reopen_now = true;
                ctx.stop();
            }
        }
    }
}

impl Handler<StopLink> for SerialActor {
    type Result = ResponseFuture<()>;

    /// Stops reading for good. Answers once the read loop has ended, so every frame it read
    /// has been handed to the queue (unless the queue was refusing them).
    fn handle(&mut self, _: StopLink, ctx: &mut Context<Self>) -> ResponseFuture<()> {
        self.stopped_for_good = true;
        if let Some(handle) = self.pending_open.take() {
            ctx.cancel_future(handle);
        }
        self.links.update(&self.cfg.name, |s| {
            s.state = LinkState::Down;
            s.last_error = Some("stopped".into());
        });
        match self.reader.take() {
            Some(reader) => {
                reader.send_replace(Signal::Stop);
                Box::pin(async move { reader.closed().await })
            }
            None => Box::pin(async {}),
        }
    }
}

impl SerialActor {
    /// Opens the port and starts the read loop, or fails the link.
    fn open(&mut self, ctx: &mut Context<Self>) {
        self.pending_open = None;
        if self.stopped_for_good {
            return;
        }
        let name = self.cfg.name.clone();
        self.links
            .update(&name, |s| s.state = LinkState::Connecting);
        let port = match open_port(&self.port_path, &self.cfg) {
            Ok(port) => port,
            Err(e) => {
                let error = format!("cannot open {}: {e}", self.port_path);
                return self.fail(error, ctx);
            }
        };
        // `up` once the read loop knows where records start (see `read_loop`): at once when
        // the same port was handed over at a record boundary.
        let identity = handover_identity(&self.port_path);
        let at_boundary = identity.is_some() && self.boundary_port.take() == identity;
        log::info!("serial link {name}: reading {}", self.port_path);
        let mut tracker = self.tracker.take().unwrap_or_else(|| {
            // Only if a read loop ended without giving it back, which no path does.
            log::error!(
                "serial link {name}: its sequence was lost; the next film starts a new one"
            );
            SequenceTracker::new(self.cfg.record.sequence_key().is_some())
        });
        tracker.on_connect();
        let (signal_tx, signal_rx) = watch::channel(Signal::Run);
        self.reader = Some(signal_tx);
        let connection = Connection {
            maker: ItemMaker::new(&self.cfg),
            cfg: self.cfg.clone(),
            queue: self.queue.clone(),
            links: self.links.clone(),
            tracker,
            film_seen: false,
            signal: signal_rx,
            at_boundary,
            identity,
        };
        let read = read_loop(connection, port)
            .into_actor(self)
            .map(|finished, act, ctx| act.on_read_end(finished, ctx));
        ctx.spawn(read);
    }

    fn on_read_end(&mut self, finished: Finished, ctx: &mut Context<Self>) {
        self.reader = None;
        self.tracker = Some(finished.tracker);
        self.film_seen = finished.film_seen;
        self.boundary_port = finished.boundary_port;
        let end = finished.end;
        if self.stopped_for_good {
            return;
        }
        match end {
            ReadEnd::Failed(error) => self.fail(error, ctx),
            ReadEnd::Requested => {
                self.reopen_now = true;
                ctx.stop();
            }
        }
    }

    /// Marks the link down with `error` and stops the actor; the supervisor restarts it.
    fn fail(&mut self, error: String, ctx: &mut Context<Self>) {
        let name = &self.cfg.name;
        if self.last_logged_error.as_deref() == Some(error.as_str()) {
            log::debug!("serial link {name}: {error}; reconnecting");
        } else {
            log::warn!("serial link {name}: {error}; reconnecting");
            self.last_logged_error = Some(error.clone());
        }
        self.links.update(name, |s| {
            s.state = LinkState::Down;
            s.last_error = Some(error);
        });
        ctx.stop();
    }
}
