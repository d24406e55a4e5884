//! The server's monotonic clock: milliseconds since the server started, read straight
//! from `CLOCK_MONOTONIC` (the clock `std::time::Instant` uses on Linux).
//!
//! The poll loop reads it once per read batch, so a reading has to be cheap: one vDSO
//! `clock_gettime` through `rustix` and integer arithmetic, where `Instant::elapsed`
//! adds a checked `Timespec` subtraction, a `Duration` and a `u128` conversion (about
//! 90 user-space instructions per reading, measured with callgrind).
//!
//! # Invariants
//! - [`Clock::now`] never decreases, and millisecond `m` begins exactly `m` ms after
//!   the clock's start: [`Clock::until`]`(m)` is zero from then on and the time left
//!   before it otherwise, so a wait until a deadline never ends before it.

use rustix::time::{clock_gettime, ClockId};
use std::time::Duration;

/// Nanoseconds per millisecond.
const NS_PER_MS: u64 = 1_000_000;
/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// Milliseconds on a monotonic clock that starts at [`Clock::start`].
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// `CLOCK_MONOTONIC` at the start, in ns.
    origin: u64,
}

impl Clock {
    /// A clock whose millisecond 0 begins now.
    pub fn start() -> Clock {
        Clock {
            origin: monotonic_ns(),
        }
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        monotonic_ns().saturating_sub(self.origin)
    }

    /// Whole milliseconds since the start (truncated).
    pub fn now(&self) -> u64 {
        self.now_ns() / NS_PER_MS
    }

    /// Time left until millisecond `ms` begins (zero once it has).
    pub fn until(&self, ms: u64) -> Duration {
        match ms.checked_mul(NS_PER_MS) {
            Some(at) => Duration::from_nanos(at.saturating_sub(self.now_ns())),
            None => Duration::MAX,
        }
    }
}

/// `CLOCK_MONOTONIC` in ns (since boot; fits a `u64` for 584 years).
fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    (t.tv_sec as u64)
        .wrapping_mul(NS_PER_S)
        .wrapping_add(t.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::Clock;
    use std::time::{Duration, Instant};

    #[test]
    fn counts_milliseconds_like_instant() {
        let std_start = Instant::now();
        let clock = Clock::start();
        let mut last = 0;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(3));
            let ours = clock.now();
            let theirs = std_start.elapsed().as_millis() as u64;
            assert!(ours >= last, "went back: {last} -> {ours}");
            assert!(ours <= theirs, "ahead of Instant: {ours} > {theirs}");
            assert!(theirs - ours <= 2, "behind Instant: {ours} vs {theirs}");
            last = ours;
        }
    }

    #[test]
    fn until_reaches_zero_at_the_millisecond_and_not_before() {
        let clock = Clock::start();
        let target = clock.now() + 5;
        let left = clock.until(target);
        assert!(left > Duration::ZERO && left <= Duration::from_millis(5));
        std::thread::sleep(left);
        assert!(clock.now() >= target, "woke before millisecond {target}");
        assert_eq!(clock.until(target), Duration::ZERO);
        assert_eq!(clock.until(u64::MAX), Duration::MAX);
    }
}
