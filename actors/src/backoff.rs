//! Delays between attempts, one formula for the crate: a ceiling that doubles with each failure
//! from an initial delay up to a maximum. Pure; no clock, no randomness of its own.
//!
//! - A serial link reopens after the ceiling itself ([`Reconnects`]): one port, nobody to
//!   spread apart, and an operator reading the link status can predict the next attempt.
//! - The poster waits a jittered delay ([`Backoff::jittered`]) so gateways sharing an upstream
//!   do not retry in step.

use std::time::Duration;

/// The delays of one retry policy (`initial` and `max` as configured, `initial <= max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// A policy doubling from `initial` (at least 1 ms) to `max` (at least `initial`).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// `min(max, initial * 2^failures)`, where `failures` counts the failures before this one
    /// (0 for the first retry).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doubled = self.initial.saturating_mul(1u32 << failures.min(30));
        doubled.min(self.max)
    }

    /// Full jitter with a floor: uniform in `[initial / 2, ceiling(failures)]` for
    /// `unit_random` in `[0, 1]`. Plain full jitter starts at 0; the floor keeps a dead
    /// upstream from being hammered by near-zero retries while still spreading clients apart.
    /// Whole milliseconds, at least 1 (a value that is not a number counts as 0).
    pub fn jittered(&self, failures: u32, unit_random: f64) -> Duration {
        let ceiling_ms = self.ceiling(failures).as_secs_f64() * 1000.0;
        let floor_ms = (self.initial.as_secs_f64() * 500.0).min(ceiling_ms);
        let unit = if unit_random.is_nan() {
            0.0
        } else {
            unit_random.clamp(0.0, 1.0)
        };
        let ms = floor_ms + (ceiling_ms - floor_ms) * unit;
        Duration::from_millis(ms.round().max(1.0) as u64)
    }
}

/// The reopen delays of one serial link: the ceiling of its [`Backoff`] per failure in a row,
/// back to the initial delay after a good connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnects {
    backoff: Backoff,
    failures: u32,
}

impl Reconnects {
    pub fn new(backoff: Backoff) -> Reconnects {
        Reconnects {
            backoff,
            failures: 0,
        }
    }

    /// The delay before the next reopen; counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.backoff.ceiling(self.failures);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// A connection went well: the next delay is the initial one again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_max() {
        let b = Backoff::new(ms(200), ms(30_000));
        assert_eq!(b.ceiling(0), ms(200));
        assert_eq!(b.ceiling(3), ms(1600));
        assert_eq!(b.ceiling(20), ms(30_000));
        assert_eq!(b.ceiling(u32::MAX), ms(30_000));
    }

    #[test]
    fn jitter_spans_from_half_the_initial_delay_to_the_ceiling() {
        let b = Backoff::new(ms(200), ms(30_000));
        assert_eq!(b.jittered(5, 0.0), ms(100));
        assert_eq!(b.jittered(5, 1.0), ms(6400));
        let mid = b.jittered(5, 0.5);
        assert!(mid > ms(100) && mid < ms(6400), "{mid:?}");
        assert_eq!(b.jittered(5, 7.0), ms(6400), "clamped");
        assert_eq!(b.jittered(5, f64::NAN), ms(100), "not a number: the floor");
        assert_eq!(
            Backoff::new(ms(3), ms(10)).jittered(0, 0.0),
            ms(2),
            "rounded: 1.5 ms"
        );
    }

    #[test]
    fn reconnects_double_to_the_ceiling_and_reset() {
        let mut r = Reconnects::new(Backoff::new(ms(200), ms(1000)));
        let delays: Vec<Duration> = (0..5).map(|_| r.next_delay()).collect();
        assert_eq!(delays, [ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        r.reset();
        assert_eq!(r.next_delay(), ms(200));
    }
}
