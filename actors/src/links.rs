//! The link registry: what each serial link is doing, shared between the SerialActors (which
//! write it) and the web frontend (which reads it and asks for restarts).

use crate::changes::Changes;
use crate::messages::{RestartLink, StopLink};
use actix::Recipient;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Opening the port, or open but not yet sure where records start (`docs/ARCHITECTURE.md`, fragment rules).
    Connecting,
    /// The port is open and records are being read.
    Up,
    /// The port failed (`last_error` says how); a reopen is scheduled after the backoff.
    Down,
}

/// One link's status as `/api/links/` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkStatus {
    pub name: String,
    pub port: String,
    pub state: LinkState,
    /// Times the link was restarted (failures and manual restarts).
    pub restarts: u64,
    pub last_error: Option<String>,
    /// Frames read that parsed into films.
    pub frames_read: u64,
    /// Frames that became dead items (too long, not UTF-8, unparsable).
    pub frames_rejected: u64,
    /// RFC 3339 time of the last frame, if any.
    pub last_frame_at: Option<String>,
    /// Frames read but given up at a stop because the queue refused them (disk full); each
    /// is logged with its bytes.
    pub frames_lost: u64,
    /// Times the queue refused a batch of this link (its store failing). The link holds the
    /// batch, pauses reading and offers it again every 500 ms.
    pub queue_refusals: u64,
    /// NUL bytes dropped in front of records: what a BREAK or a framing error leaves.
    pub noise_bytes: u64,
    /// The port identity the last connection ended on at a record boundary, when the port
    /// keeps what the device sends while closed (for the next process; not shown).
    #[serde(skip)]
    pub boundary_port: Option<String>,
}

/// A link's status plus the handles to control it.
struct LinkEntry {
    status: LinkStatus,
    restart: Option<Recipient<RestartLink>>,
    stop: Option<Recipient<StopLink>>,
}

/// Shared, cheaply cloned registry of all links, keyed by name.
#[derive(Clone, Default)]
pub struct LinkRegistry {
    inner: Arc<Mutex<BTreeMap<String, LinkEntry>>>,
    /// Signalled by every status change.
    changes: Changes,
}

impl LinkRegistry {
    /// Adds (or resets) a link in state `connecting`.
    pub fn register(&self, name: &str, port: &str) {
        self.lock().insert(
            name.to_owned(),
            LinkEntry {
                status: LinkStatus {
                    name: name.to_owned(),
                    port: port.to_owned(),
                    state: LinkState::Connecting,
                    restarts: 0,
                    last_error: None,
                    frames_read: 0,
                    frames_rejected: 0,
                    last_frame_at: None,
                    frames_lost: 0,
                    queue_refusals: 0,
                    noise_bytes: 0,
                    boundary_port: None,
                },
                restart: None,
                stop: None,
            },
        );
    }

    /// Stores the handles the web side and shutdown use to control the link.
    pub fn set_control(
        &self,
        name: &str,
        restart: Recipient<RestartLink>,
        stop: Recipient<StopLink>,
    ) {
        if let Some(entry) = self.lock().get_mut(name) {
            entry.restart = Some(restart);
            entry.stop = Some(stop);
        }
    }

    /// Changes a link's status in place (no-op for an unknown name).
    pub fn update(&self, name: &str, change: impl FnOnce(&mut LinkStatus)) {
        if let Some(entry) = self.lock().get_mut(name) {
            change(&mut entry.status);
        }
        self.changes.notify();
    }

    /// Signalled whenever a link's status changes.
    pub fn change_signal(&self) -> &Changes {
        &self.changes
    }

    /// All links' statuses, ordered by name.
    pub fn snapshot(&self) -> Vec<LinkStatus> {
        self.lock().values().map(|e| e.status.clone()).collect()
    }

    /// One link's status.
    pub fn get(&self, name: &str) -> Option<LinkStatus> {
        self.lock().get(name).map(|e| e.status.clone())
    }

    /// The restart handle of a link, if it exists and is running.
    pub fn restart_handle(&self, name: &str) -> Option<Recipient<RestartLink>> {
        self.lock().get(name).and_then(|e| e.restart.clone())
    }

    /// The stop handles of every link (for shutdown).
    pub fn stop_handles(&self) -> Vec<Recipient<StopLink>> {
        self.lock()
            .values()
            .filter_map(|e| e.stop.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, LinkEntry>> {
        // A panic while holding this lock cannot leave a status half-written in a way that
        // matters (plain counters), so a poisoned lock is used as is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_changes_only_the_named_link() {
        let links = LinkRegistry::default();
        links.register("b", "/dev/ttyUSB1");
        links.register("a", "sim");
        links.update("a", |s| {
            s.state = LinkState::Up;
            s.frames_read += 3;
        });
        let all = links.snapshot();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "a");
        assert_eq!(all[0].state, LinkState::Up);
        assert_eq!(all[0].frames_read, 3);
        assert_eq!(all[1].state, LinkState::Connecting);
        assert!(links.restart_handle("a").is_none());
    }
}
