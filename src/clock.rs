//! The server's monotonic clock: milliseconds or microseconds since the server started,
//! read straight from `CLOCK_MONOTONIC` (the clock `std::time::Instant` uses on Linux).
//! The engine runs on the microseconds, so its deadlines keep sub-millisecond
//! resolution; [`Clock::instant_us`] turns one back into the absolute
//! `CLOCK_MONOTONIC` time an alarm ([`crate::alarm`]) is set for.
//!
//! The poll loop reads it once per read batch, so a reading has to be cheap: one vDSO
//! `clock_gettime` through `rustix` and integer arithmetic, where `Instant::elapsed`
//! adds a checked `Timespec` subtraction, a `Duration` and a `u128` conversion (about
//! 90 user-space instructions per reading, measured with callgrind).
//!
//! Every microsecond reading is also kept ([`Clock::latest_us`]): the loop checks its deadlines
//! between two connections' turns against the latest reading of the turns' own read
//! batches, without reading the clock for it.
//!
//! # Invariants
//! - [`Clock::now`] never decreases, and millisecond `m` begins exactly `m` ms after
//!   the clock's start: [`Clock::until`]`(m)` is zero from then on and the time left
//!   before it otherwise, so a wait until a deadline never ends before it.
//! - The same holds for microseconds ([`Clock::now_us`], [`Clock::until_us`]), and
//!   `CLOCK_MONOTONIC` reaches [`Clock::instant_us`]`(u)` exactly when microsecond `u`
//!   begins.
//! - [`Clock::latest_us`] is the latest [`Clock::now_us`] reading, so never later than
//!   the next one: a deadline found due by it is due.

use rustix::time::{clock_gettime, ClockId, Timespec};
use std::cell::Cell;
use std::time::Duration;

/// Nanoseconds per millisecond.
const NS_PER_MS: u64 = 1_000_000;
/// Nanoseconds per microsecond.
const NS_PER_US: u64 = 1_000;
/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// Milliseconds on a monotonic clock that starts at [`Clock::start`].
#[derive(Clone, Debug)]
pub struct Clock {
    /// `CLOCK_MONOTONIC` at the start, in ns.
    origin: u64,
    /// The latest [`Clock::now_us`] reading.
    latest_us: Cell<u64>,
}

impl Clock {
    /// A clock whose millisecond 0 begins now.
    pub fn start() -> Clock {
        Clock {
            origin: monotonic_ns(),
            latest_us: Cell::new(0),
        }
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        monotonic_ns().saturating_sub(self.origin)
    }

    /// What the latest [`Clock::now_us`] returned (0 before the first), without
    /// reading the clock.
    #[inline]
    pub fn latest_us(&self) -> u64 {
        self.latest_us.get()
    }

    /// Whole milliseconds since the start (truncated).
    pub fn now(&self) -> u64 {
        self.now_ns() / NS_PER_MS
    }

    /// Whole microseconds since the start (truncated); kept for [`Clock::latest_us`].
    pub fn now_us(&self) -> u64 {
        let us = self.now_ns() / NS_PER_US;
        self.latest_us.set(us);
        us
    }

    /// Time left until microsecond `us` begins (zero once it has).
    pub fn until_us(&self, us: u64) -> Duration {
        match us.checked_mul(NS_PER_US) {
            Some(at) => Duration::from_nanos(at.saturating_sub(self.now_ns())),
            None => Duration::MAX,
        }
    }

    /// The `CLOCK_MONOTONIC` time at which microsecond `us` begins (saturating far in
    /// the future).
    pub fn instant_us(&self, us: u64) -> Timespec {
        let ns = us.saturating_mul(NS_PER_US).saturating_add(self.origin);
        Timespec {
            tv_sec: (ns / NS_PER_S).min(i64::MAX as u64) as i64,
            tv_nsec: (ns % NS_PER_S) as _,
        }
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
    fn latest_is_the_latest_reading() {
        let clock = Clock::start();
        assert_eq!(clock.latest_us(), 0);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.latest_us(), 0, "no reading yet");
        let us = clock.now_us();
        assert!(us >= 2_000);
        assert_eq!(clock.latest_us(), us);
        std::thread::sleep(Duration::from_millis(1));
        let ms = clock.now();
        assert_eq!(clock.latest_us(), us, "only microsecond readings count");
        let later = clock.now_us();
        assert!(later >= us + 1_000 && later / 1000 >= ms);
        assert_eq!(clock.latest_us(), later);
    }

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
    fn microseconds_agree_with_milliseconds_and_the_monotonic_clock() {
        let clock = Clock::start();
        let ms = clock.now();
        let us = clock.now_us();
        assert!(
            us / 1000 >= ms && us / 1000 <= clock.now(),
            "{us} us vs {ms} ms"
        );
        let target = us + 1_500;
        let left = clock.until_us(target);
        assert!(left > Duration::ZERO && left <= Duration::from_micros(1_500));
        // The absolute time of `target` is where CLOCK_MONOTONIC will be then.
        let at = clock.instant_us(target);
        let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let diff_ns = (at.tv_sec - mono.tv_sec) as i128 * 1_000_000_000
            + (at.tv_nsec as i128 - mono.tv_nsec as i128);
        assert!(diff_ns > 0 && diff_ns <= 1_500_000, "{diff_ns} ns ahead");
        std::thread::sleep(left);
        assert!(clock.now_us() >= target, "woke before microsecond {target}");
        assert_eq!(clock.until_us(target), Duration::ZERO);
        assert_eq!(clock.until_us(u64::MAX), Duration::MAX);
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
