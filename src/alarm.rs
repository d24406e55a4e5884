//! An exact wake-up for the poll loop: a Linux `timerfd` in the `mio` poll set, set to
//! the absolute `CLOCK_MONOTONIC` time of the next deadline.
//!
//! `epoll_wait` takes its timeout in whole milliseconds (mio rounds up), which made
//! every deadline fire up to a millisecond late on top of its own rounding. A timerfd
//! has nanosecond resolution and, set with an absolute time, does not drift with the
//! time the loop spends between reading the clock and polling.
//!
//! The alarm is only re-armed when the wanted time is earlier than the armed one, or
//! the armed one has passed: a deadline that is cancelled or pushed back leaves the
//! alarm as it was, and the loop then wakes once early and finds nothing due (cheaper
//! than a `timerfd_settime` per request on a workload that makes and cancels timers).
//!
//! # Invariants
//! - `armed` is the time (µs on the server's [`Clock`]) the timerfd is set for, or
//!   `None` when it is disarmed or has rung and been [`Alarm::clear`]ed.
//! - [`Alarm::wake_at`]`(t, now)` leaves the timerfd set for some time `<= t` that is
//!   still ahead of `now`, or for `t` itself: the loop never sleeps past `t`.

use crate::clock::Clock;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};
use std::io;

/// A timerfd on `CLOCK_MONOTONIC` and the time it is set for.
#[derive(Debug)]
pub struct Alarm {
    fd: OwnedFd,
    armed: Option<u64>,
}

impl Alarm {
    /// A disarmed alarm.
    pub fn new() -> io::Result<Alarm> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(Alarm { fd, armed: None })
    }

    /// Adds the alarm to a poll set: it becomes readable under `token` when it rings.
    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.fd.as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    /// Makes sure the alarm rings by microsecond `at` of `clock` (see the module doc
    /// for when that sets the timerfd); `now` is a recent reading of `clock`.
    pub fn wake_at(&mut self, clock: &Clock, at: u64, now: u64) -> io::Result<()> {
        if self.armed.is_some_and(|a| a > now && a <= at) {
            return Ok(());
        }
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: clock.instant_us(at),
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::ABSTIME, &spec)?;
        self.armed = Some(at);
        Ok(())
    }

    /// Takes the ring (reads the expiration count) after the poll reported it.
    pub fn clear(&mut self) {
        let mut count = [0u8; 8];
        // Nothing to read (WouldBlock) is fine: it was re-armed since it rang.
        let _ = rustix::io::read(&self.fd, &mut count);
        self.armed = None;
    }

    /// The time the alarm is set for, if any.
    pub fn armed(&self) -> Option<u64> {
        self.armed
    }
}

#[cfg(test)]
mod tests {
    use super::Alarm;
    use crate::clock::Clock;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    /// Polls (at most `bound`) until the alarm's token is reported; returns when.
    fn ring(poll: &mut Poll, clock: &Clock, bound: Duration) -> Option<u64> {
        let mut events = Events::with_capacity(4);
        let end = clock.now_us() + bound.as_micros() as u64;
        while clock.now_us() < end {
            poll.poll(&mut events, Some(clock.until_us(end))).unwrap();
            if events.iter().any(|e| e.token() == Token(7)) {
                return Some(clock.now_us());
            }
        }
        None
    }

    #[test]
    fn rings_at_the_microsecond_and_not_before() {
        let clock = Clock::start();
        let mut poll = Poll::new().unwrap();
        let mut alarm = Alarm::new().unwrap();
        alarm.register(poll.registry(), Token(7)).unwrap();
        for delay in [300u64, 1_250, 2_700] {
            let now = clock.now_us();
            let at = now + delay;
            alarm.wake_at(&clock, at, now).unwrap();
            assert_eq!(alarm.armed(), Some(at));
            let rang = ring(&mut poll, &clock, Duration::from_secs(5)).expect("never rang");
            assert!(rang >= at, "rang at {rang}, before {at}");
            alarm.clear();
            assert_eq!(alarm.armed(), None);
        }
    }

    #[test]
    fn a_later_time_keeps_the_earlier_alarm_and_an_earlier_one_replaces_it() {
        let clock = Clock::start();
        let mut poll = Poll::new().unwrap();
        let mut alarm = Alarm::new().unwrap();
        alarm.register(poll.registry(), Token(7)).unwrap();
        let now = clock.now_us();
        alarm.wake_at(&clock, now + 200_000, now).unwrap();
        alarm.wake_at(&clock, now + 900_000, now).unwrap();
        assert_eq!(alarm.armed(), Some(now + 200_000), "later time keeps it");
        alarm.wake_at(&clock, now + 2_000, now).unwrap();
        assert_eq!(alarm.armed(), Some(now + 2_000), "earlier time replaces it");
        let rang = ring(&mut poll, &clock, Duration::from_secs(5)).expect("never rang");
        assert!(
            rang >= now + 2_000 && rang < now + 200_000,
            "rang at {rang}"
        );
        // Once its time has passed, a later time re-arms it.
        let now2 = clock.now_us();
        alarm.wake_at(&clock, now2 + 1_000, now2).unwrap();
        assert_eq!(alarm.armed(), Some(now2 + 1_000));
        alarm.clear();
    }
}
