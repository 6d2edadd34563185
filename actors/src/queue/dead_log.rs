//! [`DeadLog`]: every item that becomes dead gets one WARN line naming it, its uid, link and
//! reason, up to [`LINES_PER_MINUTE`] a minute; beyond that the rest of the minute is counted
//! and told in one summary line. Pure: the caller gives the time and writes the lines.

use std::time::{Duration, Instant};

/// Dead-item lines logged one by one in a minute.
pub const LINES_PER_MINUTE: u32 = 20;
/// The window the budget is counted over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The per-minute budget of dead-item lines.
#[derive(Debug, Default)]
pub struct DeadLog {
    /// When the current window began.
    window_start: Option<Instant>,
    /// Lines logged in the current window.
    logged: u32,
    /// Dead items not logged one by one in the current window.
    suppressed: u64,
}

impl DeadLog {
    /// Whether one more dead item may be logged on its own line at `now`; when not, it is
    /// counted for the summary.
    pub fn admit(&mut self, now: Instant) -> bool {
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged < LINES_PER_MINUTE {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// The count for the summary line, once a window with suppressed items has ended (or
    /// `None`); the next window starts clean.
    pub fn take_summary(&mut self, now: Instant) -> Option<u64> {
        let ended = self
            .window_start
            .is_some_and(|start| now.duration_since(start) >= WINDOW);
        if !ended || self.suppressed == 0 {
            return None;
        }
        self.window_start = None;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_lines_a_minute_then_one_summary_with_the_rest() {
        let start = Instant::now();
        let mut log = DeadLog::default();
        let admitted = (0..50).filter(|_| log.admit(start)).count();
        assert_eq!(admitted, LINES_PER_MINUTE as usize);
        assert_eq!(log.take_summary(start + Duration::from_secs(59)), None);
        assert_eq!(log.take_summary(start + WINDOW), Some(30));
        assert_eq!(log.take_summary(start + WINDOW * 2), None);
        assert!(
            log.admit(start + WINDOW * 2),
            "a new minute has a new budget"
        );
    }
}
