//! Which sequence a film belongs to: a change of the `sequence_key` value starts a new one;
//! without a key, each connection of the link starts one. Pure.

use crate::record::{SequenceRef, new_uid};

/// Tracks a link's current sequence across frames (and, with a key, across reconnects).
pub struct SequenceTracker {
    /// Whether `sequence_key` is configured.
    keyed: bool,
    /// The current sequence, if one started.
    current: Option<SequenceRef>,
    /// Without a key: the next film starts a new sequence (set at each connect).
    start_new: bool,
}

impl SequenceTracker {
    pub fn new(sequence_key_configured: bool) -> Self {
        SequenceTracker {
            keyed: sequence_key_configured,
            current: None,
            start_new: true,
        }
    }

    /// A new connection of the link: without a key, the next film starts a new sequence.
    pub fn on_connect(&mut self) {
        self.start_new = true;
    }

    /// The sequence of a film whose key field has `key_value`.
    pub fn sequence_for(&mut self, key_value: Option<&str>) -> SequenceRef {
        let change = match (&self.current, self.keyed) {
            (None, _) => true,
            (Some(cur), true) => cur.key.as_deref() != key_value,
            (Some(_), false) => self.start_new,
        };
        if change {
            let key = if self.keyed {
                key_value.map(str::to_owned)
            } else {
                None
            };
            self.current = Some(SequenceRef {
                uid: new_uid(),
                key,
            });
        }
        self.start_new = false;
        self.current.clone().expect("set above")
    }

    /// The current sequence (for a rejected frame, which neither starts nor changes one).
    pub fn current(&self) -> Option<SequenceRef> {
        self.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_sequences_change_with_the_value_and_survive_reconnects() {
        let mut t = SequenceTracker::new(true);
        let a = t.sequence_for(Some("A"));
        assert_eq!(t.sequence_for(Some("A")), a);
        t.on_connect();
        assert_eq!(t.sequence_for(Some("A")), a);
        let b = t.sequence_for(Some("B"));
        assert_ne!(a.uid, b.uid);
        assert_eq!(b.key.as_deref(), Some("B"));
    }

    #[test]
    fn unkeyed_sequences_change_per_connection() {
        let mut t = SequenceTracker::new(false);
        assert!(t.current().is_none());
        let a = t.sequence_for(None);
        assert_eq!(t.sequence_for(None), a);
        t.on_connect();
        assert_eq!(t.current(), Some(a.clone()));
        assert_ne!(t.sequence_for(None), a);
    }
}
