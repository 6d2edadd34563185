//! [`Changes`]: a "something changed" signal from a part of the gateway (the queue, the links,
//! the records store) to whoever shows it live (the dashboard's event streams), so a watcher
//! wakes when there is news instead of polling. A signal carries no data: the watcher reads
//! the current state itself, and several changes before it looks are seen as one.

use std::sync::Arc;
use tokio::sync::watch;

/// The sending side, cheap to clone; every clone signals the same watchers.
#[derive(Debug, Clone)]
pub struct Changes(Arc<watch::Sender<u64>>);

impl Default for Changes {
    fn default() -> Changes {
        Changes(Arc::new(watch::Sender::new(0)))
    }
}

impl Changes {
    /// Wakes every watcher (cheap when there is none).
    pub fn notify(&self) {
        self.0
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    /// A new watcher: its `changed()` resolves at the next [`Changes::notify`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        let mut receiver = self.0.subscribe();
        receiver.mark_unchanged();
        receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_watcher_wakes_once_for_changes_made_before_it_looks() {
        let changes = Changes::default();
        let mut watcher = changes.watch();
        assert!(!watcher.has_changed().unwrap(), "nothing changed yet");
        changes.clone().notify();
        changes.notify();
        tokio::time::timeout(Duration::from_secs(5), watcher.changed())
            .await
            .expect("woken")
            .unwrap();
        assert!(!watcher.has_changed().unwrap(), "two changes, one wake-up");
    }
}
