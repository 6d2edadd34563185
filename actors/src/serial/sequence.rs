//! Sequences: which sequence each film of one link belongs to. Pure; the link calls
//! [`SequenceTracker::on_connect`] when its port opens and [`SequenceTracker::sequence_for`]
//! for each parsed film, and attaches [`SequenceTracker::current`] to rejected frames.

use crate::record::SequenceRef;

/// The current sequence of one link and when the next one starts.
///
/// With a `sequence_key` configured, a new sequence starts whenever the key's value differs
/// from the current sequence's (reconnects do not matter). Without one, the first film after
/// each connect starts a new sequence.
#[derive(Debug, Clone)]
pub struct SequenceTracker {
    /// Whether `[serial.record] sequence_key` is set.
    keyed: bool,
    /// The sequence films are being added to, once one started.
    current: Option<SequenceRef>,
    /// Without a key: set by a connect, cleared by the first film after it.
    connected_since_last_film: bool,
}

impl SequenceTracker {
    /// A tracker with no sequence yet.
    pub fn new(sequence_key_configured: bool) -> SequenceTracker {
        SequenceTracker {
            keyed: sequence_key_configured,
            current: None,
            connected_since_last_film: true,
        }
    }

    /// A tracker that continues `last`, the newest sequence stored for the link, when a key is
    /// configured: after a process restart, films with the same key value stay in it.
    /// Without a key every connection starts a new sequence anyway, so `last` is not used.
    pub fn resuming(sequence_key_configured: bool, last: Option<SequenceRef>) -> SequenceTracker {
        let mut tracker = SequenceTracker::new(sequence_key_configured);
        if sequence_key_configured {
            tracker.current = last;
        }
        tracker
    }

    /// The link's port was (re)opened.
    pub fn on_connect(&mut self) {
        self.connected_since_last_film = true;
    }

    /// The sequence of a parsed film whose key field has `key_value` (`None` when there is no
    /// key or the film lacks the field); starts a new sequence when the rules above say so.
    pub fn sequence_for(&mut self, key_value: Option<&str>) -> SequenceRef {
        let starts_new = match &self.current {
            None => true,
            Some(_) if !self.keyed => self.connected_since_last_film,
            Some(current) => current.key.as_deref() != key_value,
        };
        self.connected_since_last_film = false;
        if starts_new {
            self.current = None;
        }
        let keyed = self.keyed;
        self.current
            .get_or_insert_with(|| {
                SequenceRef::start(key_value.filter(|_| keyed).map(str::to_owned))
            })
            .clone()
    }

    /// The sequence the last film went to, if any (given to rejected frames, which never start
    /// or change a sequence).
    pub fn current(&self) -> Option<SequenceRef> {
        self.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_key_a_new_sequence_starts_when_the_value_changes() {
        let mut t = SequenceTracker::new(true);
        t.on_connect();
        let a1 = t.sequence_for(Some("A"));
        let a2 = t.sequence_for(Some("A"));
        let b = t.sequence_for(Some("B"));
        let a3 = t.sequence_for(Some("A"));
        assert_eq!(a1, a2);
        assert_eq!(a1.key.as_deref(), Some("A"));
        assert_ne!(a1.uid, b.uid);
        assert_eq!(b.key.as_deref(), Some("B"));
        assert_ne!(
            a3.uid, a1.uid,
            "going back to an old value is a new sequence"
        );
    }

    #[test]
    fn with_a_key_the_sequence_survives_a_reconnect_with_the_same_value() {
        let mut t = SequenceTracker::new(true);
        t.on_connect();
        let before = t.sequence_for(Some("A"));
        t.on_connect();
        assert_eq!(t.sequence_for(Some("A")), before);
    }

    #[test]
    fn with_a_key_a_film_missing_the_field_is_its_own_keyless_sequence() {
        let mut t = SequenceTracker::new(true);
        let a = t.sequence_for(Some("A"));
        let none = t.sequence_for(None);
        assert_ne!(a.uid, none.uid);
        assert_eq!(none.key, None);
        assert_eq!(t.sequence_for(None), none);
    }

    #[test]
    fn without_a_key_each_connect_starts_a_sequence_at_its_first_film() {
        let mut t = SequenceTracker::new(false);
        t.on_connect();
        let first = t.sequence_for(Some("ignored"));
        assert_eq!(first.key, None);
        assert_eq!(t.sequence_for(Some("other")), first);
        t.on_connect();
        assert_eq!(
            t.current(),
            Some(first.clone()),
            "a connect alone starts nothing"
        );
        let second = t.sequence_for(None);
        assert_ne!(second.uid, first.uid);
        assert_eq!(t.sequence_for(None), second);
    }

    #[test]
    fn current_is_none_before_the_first_film() {
        let mut t = SequenceTracker::new(true);
        t.on_connect();
        assert_eq!(t.current(), None);
        let s = t.sequence_for(Some("A"));
        assert_eq!(t.current(), Some(s));
    }

    #[test]
    fn a_keyed_tracker_resumes_the_stored_sequence_and_an_unkeyed_one_starts_anew() {
        let stored = SequenceRef {
            uid: "stored".into(),
            key: Some("LOT-7".into()),
        };
        let mut keyed = SequenceTracker::resuming(true, Some(stored.clone()));
        keyed.on_connect();
        assert_eq!(keyed.sequence_for(Some("LOT-7")), stored);
        assert_ne!(keyed.sequence_for(Some("LOT-8")).uid, "stored");
        let mut unkeyed = SequenceTracker::resuming(false, Some(stored));
        unkeyed.on_connect();
        assert_ne!(unkeyed.sequence_for(None).uid, "stored");
    }
}
