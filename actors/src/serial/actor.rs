//! [`SerialActor`]: one link. Opens its port with tokio-serial, frames and parses what it
//! reads, and sends each read burst to the queue as one [`Enqueue`] (waiting for the answer,
//! so a busy queue pushes back onto the line). Any failure stops the actor; its
//! `actix::Supervisor` restarts it after a backoff.

use super::codec::{FrameCodec, RawFrame};
use super::config::{FlowControl, Parity, SerialConfig};
use super::parse::{parse_frame, sequence_key_value};
use super::sequence::SequenceTracker;
use super::sim::Simulator;
use crate::links::{LinkRegistry, LinkState};
use crate::messages::{Enqueue, RestartLink, StopLink};
use crate::record::{ItemBody, NewItem, new_uid, now_ms, rfc3339_ms};
use actix::prelude::*;
use futures_util::StreamExt;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::codec::FramedRead;

/// Frames read in one burst that go into one `Enqueue` at most.
const MAX_BATCH_FRAMES: usize = 1024;
/// Read buffer size per connection.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Wait between attempts to hand a batch to a failing queue.
const ENQUEUE_RETRY: Duration = Duration::from_millis(500);

/// Supervised reader of one serial link.
pub struct SerialActor {
    /// The link's settings.
    cfg: Rc<SerialConfig>,
    /// The path opened: the configured port, or the simulator's pty slave.
    device: String,
    /// Where read frames go.
    queue: Recipient<Enqueue>,
    /// Shared status for the web side.
    links: LinkRegistry,
    /// Sequence state; kept across restarts (same actor value under the supervisor).
    tracker: Rc<RefCell<SequenceTracker>>,
    /// Delay before the next open after a failure.
    next_backoff: Duration,
    /// The connection being read has produced a good frame (resets the backoff).
    got_frame: Rc<Cell<bool>>,
    /// Interrupts the read loop between bursts (restart or stop requested).
    interrupt: Rc<Notify>,
    /// Open the next time without delay (manual restart or first start).
    open_now: bool,
    /// `StopLink` received: never open again.
    stopped: bool,
    /// The simulated machine, for `port = "sim"`; lives as long as the link.
    _sim: Option<Simulator>,
}

/// Registers and starts a supervised link. For `port = "sim"` the simulated machine starts
/// first and the link reads its pty.
pub fn start_link(
    cfg: SerialConfig,
    queue: Recipient<Enqueue>,
    links: LinkRegistry,
) -> std::io::Result<Addr<SerialActor>> {
    let sim = if cfg.is_sim() {
        Some(Simulator::start(cfg.sim_rate_hz)?)
    } else {
        None
    };
    let device = sim.as_ref().map_or_else(
        || cfg.port.clone(),
        |s| s.slave_path().display().to_string(),
    );
    links.register(&cfg.name, &cfg.port);
    let name = cfg.name.clone();
    let actor = SerialActor {
        tracker: Rc::new(RefCell::new(SequenceTracker::new(
            cfg.record.sequence_key().is_some(),
        ))),
        next_backoff: cfg.reconnect_initial(),
        cfg: Rc::new(cfg),
        device,
        queue,
        links: links.clone(),
        got_frame: Rc::new(Cell::new(false)),
        interrupt: Rc::new(Notify::new()),
        open_now: true,
        stopped: false,
        _sim: sim,
    };
    let addr = actix::Supervisor::start(move |_| actor);
    links.set_control(&name, addr.clone().recipient(), addr.clone().recipient());
    Ok(addr)
}

impl Actor for SerialActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.stopped {
            self.set_state(LinkState::Down, Some("stopped".into()));
            return;
        }
        self.set_state(LinkState::Connecting, None);
        let delay = if self.open_now {
            Duration::ZERO
        } else {
            self.next_backoff
        };
        if !self.open_now {
            self.next_backoff = (self.next_backoff * 2).min(self.cfg.reconnect_max());
        }
        self.open_now = false;
        ctx.run_later(delay, |act, ctx| act.open(ctx));
    }
}

impl actix::Supervised for SerialActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        if self.got_frame.replace(false) {
            self.next_backoff = self.cfg.reconnect_initial();
        }
        self.links.update(&self.cfg.name, |s| s.restarts += 1);
    }
}

impl Handler<RestartLink> for SerialActor {
    type Result = ();

    fn handle(&mut self, _: RestartLink, _: &mut Self::Context) {
        log::info!("link {}: restart requested", self.cfg.name);
        self.open_now = true;
        self.interrupt.notify_one();
    }
}

impl Handler<StopLink> for SerialActor {
    type Result = ();

    fn handle(&mut self, _: StopLink, ctx: &mut Self::Context) {
        self.stopped = true;
        self.interrupt.notify_one();
        // Not reading yet (backoff or open pending): nothing to finish.
        if !matches!(
            self.links.get(&self.cfg.name).map(|s| s.state),
            Some(LinkState::Up)
        ) {
            ctx.stop();
        }
    }
}

impl SerialActor {
    fn set_state(&self, state: LinkState, error: Option<String>) {
        self.links.update(&self.cfg.name, |s| {
            s.state = state;
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    fn open(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return ctx.stop();
        }
        let port = match open_port(&self.cfg, &self.device) {
            Ok(port) => port,
            Err(e) => return self.fail(ctx, format!("cannot open {}: {e}", self.device)),
        };
        log::info!("link {}: reading {}", self.cfg.name, self.device);
        self.set_state(LinkState::Up, None);
        self.tracker.borrow_mut().on_connect();
        let reader = read_port(
            port,
            self.cfg.clone(),
            self.queue.clone(),
            self.links.clone(),
            self.tracker.clone(),
            self.got_frame.clone(),
            self.interrupt.clone(),
        );
        ctx.spawn(
            reader
                .into_actor(self)
                .map(|reason, act, ctx| match reason {
                    ReadEnd::Interrupted if act.stopped => {
                        act.set_state(LinkState::Down, Some("stopped".into()));
                        ctx.stop();
                    }
                    ReadEnd::Interrupted => {
                        act.set_state(LinkState::Down, Some("restart requested".into()));
                        ctx.stop();
                    }
                    ReadEnd::Failed(reason) => act.fail(ctx, reason),
                }),
        );
    }

    /// Records the failure and stops; the supervisor restarts the actor after the backoff.
    fn fail(&mut self, ctx: &mut Context<Self>, reason: String) {
        log::warn!(
            "link {}: {reason}; reopening in {} ms",
            self.cfg.name,
            if self.got_frame.get() {
                self.cfg.reconnect_initial_ms
            } else {
                self.next_backoff.as_millis() as u64
            }
        );
        self.set_state(LinkState::Down, Some(reason));
        ctx.stop();
    }
}

fn open_port(cfg: &SerialConfig, device: &str) -> tokio_serial::Result<tokio_serial::SerialStream> {
    use tokio_serial::SerialPortBuilderExt;
    let data_bits = match cfg.data_bits {
        5 => tokio_serial::DataBits::Five,
        6 => tokio_serial::DataBits::Six,
        7 => tokio_serial::DataBits::Seven,
        _ => tokio_serial::DataBits::Eight,
    };
    let parity = match cfg.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop_bits = if cfg.stop_bits == 2 {
        tokio_serial::StopBits::Two
    } else {
        tokio_serial::StopBits::One
    };
    let flow_control = match cfg.flow_control {
        FlowControl::None => tokio_serial::FlowControl::None,
        FlowControl::Software => tokio_serial::FlowControl::Software,
        FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
    };
    tokio_serial::new(device, cfg.baud_rate)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(flow_control)
        .open_native_async()
}

/// Why a read loop ended.
enum ReadEnd {
    /// `RestartLink` or `StopLink` interrupted it between bursts.
    Interrupted,
    /// EOF, a read error or the idle timeout.
    Failed(String),
}

/// Reads bursts of frames until the port fails or an interrupt comes; every burst read is
/// handed to the queue before the next read (never dropped).
async fn read_port(
    port: tokio_serial::SerialStream,
    cfg: Rc<SerialConfig>,
    queue: Recipient<Enqueue>,
    links: LinkRegistry,
    tracker: Rc<RefCell<SequenceTracker>>,
    got_frame: Rc<Cell<bool>>,
    interrupt: Rc<Notify>,
) -> ReadEnd {
    let codec = FrameCodec::new(cfg.delimiter.as_bytes(), cfg.max_frame_bytes);
    let mut bursts =
        FramedRead::with_capacity(port, codec, READ_BUFFER_BYTES).ready_chunks(MAX_BATCH_FRAMES);
    loop {
        let next = async {
            match cfg.idle_timeout() {
                Some(idle) => tokio::time::timeout(idle, bursts.next())
                    .await
                    .map_err(|_| idle),
                None => Ok(bursts.next().await),
            }
        };
        let burst = tokio::select! {
            _ = interrupt.notified() => return ReadEnd::Interrupted,
            next = next => match next {
                Err(idle) => return ReadEnd::Failed(format!("no data for {} ms", idle.as_millis())),
                Ok(None) => return ReadEnd::Failed("end of file: device closed".into()),
                Ok(Some(burst)) => burst,
            },
        };
        let received_at_ms = now_ms();
        let mut items = Vec::with_capacity(burst.len());
        let mut read_error = None;
        for frame in burst {
            match frame {
                Ok(frame) => items.push(frame_to_item(
                    &cfg,
                    &mut tracker.borrow_mut(),
                    frame,
                    received_at_ms,
                )),
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        if !items.is_empty() {
            let rejected = items
                .iter()
                .filter(|i| matches!(i.body, ItemBody::Rejected { .. }))
                .count() as u64;
            let films = items.len() as u64 - rejected;
            enqueue(&queue, &cfg.name, Arc::new(items)).await;
            if films > 0 {
                got_frame.set(true);
            }
            links.update(&cfg.name, |s| {
                s.frames_read += films;
                s.frames_rejected += rejected;
                s.last_frame_at = Some(rfc3339_ms(received_at_ms));
            });
        }
        if let Some(e) = read_error {
            return ReadEnd::Failed(format!("read error: {e}"));
        }
    }
}

/// Hands a batch to the queue, retrying while the queue fails: a read frame is never dropped
/// (the line waits instead).
async fn enqueue(queue: &Recipient<Enqueue>, link: &str, items: Arc<Vec<NewItem>>) {
    let mut failing = false;
    loop {
        let error = match queue
            .send(Enqueue {
                items: items.clone(),
            })
            .await
        {
            Ok(Ok(outcome)) => {
                if failing {
                    log::info!("link {link}: queue accepts frames again");
                }
                if outcome.refused > 0 {
                    log::error!(
                        "link {link}: queue full, {} frame(s) refused",
                        outcome.refused
                    );
                }
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        if !failing {
            log::error!(
                "link {link}: queue cannot take {} frame(s) ({error}); holding them and retrying",
                items.len()
            );
            failing = true;
        }
        actix_rt::time::sleep(ENQUEUE_RETRY).await;
    }
}

/// One frame as a queue item: a parsed film, or a rejected frame with its reason.
pub fn frame_to_item(
    cfg: &SerialConfig,
    tracker: &mut SequenceTracker,
    frame: RawFrame,
    received_at_ms: i64,
) -> NewItem {
    let (raw, parsed) = match frame {
        RawFrame::Frame(raw) => {
            let parsed = parse_frame(&cfg.record, &raw);
            (raw, parsed)
        }
        RawFrame::TooLong(raw) => {
            let reason = format!(
                "frame exceeds max_frame_bytes ({}): {} bytes",
                cfg.max_frame_bytes,
                raw.len()
            );
            (raw, Err(reason))
        }
    };
    let (body, sequence) = match parsed {
        Ok(data) => {
            let key = sequence_key_value(&cfg.record, &data);
            let sequence = tracker.sequence_for(key.as_deref());
            (ItemBody::Film(data), Some(sequence))
        }
        Err(reason) => (ItemBody::Rejected { reason }, tracker.current()),
    };
    NewItem {
        uid: new_uid(),
        source: cfg.name.clone(),
        received_at_ms,
        raw: raw.to_vec(),
        body,
        sequence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn frames_become_films_or_rejected_items_with_raw_bytes() {
        let cfg = SerialConfig {
            name: "l".into(),
            port: "sim".into(),
            ..Default::default()
        };
        let mut tracker = SequenceTracker::new(true);
        let film = frame_to_item(
            &cfg,
            &mut tracker,
            RawFrame::Frame(Bytes::from_static(b"A,1,2,3,0")),
            5,
        );
        assert!(matches!(film.body, ItemBody::Film(_)));
        assert_eq!(film.sequence.as_ref().unwrap().key.as_deref(), Some("A"));
        let bad = frame_to_item(
            &cfg,
            &mut tracker,
            RawFrame::Frame(Bytes::from_static(b"B,1")),
            6,
        );
        assert!(matches!(bad.body, ItemBody::Rejected { .. }));
        assert_eq!(
            bad.sequence, film.sequence,
            "a rejected frame does not change the sequence"
        );
        assert_eq!(bad.raw, b"B,1");
        let long = frame_to_item(
            &cfg,
            &mut tracker,
            RawFrame::TooLong(Bytes::from(vec![b'x'; 5000])),
            7,
        );
        match long.body {
            ItemBody::Rejected { reason } => {
                assert_eq!(reason, "frame exceeds max_frame_bytes (4096): 5000 bytes")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(long.raw.len(), 5000);
    }
}
