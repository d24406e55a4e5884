//! Deadlines: the engine's (wait and hold deadlines) and the server's own timers
//! ([`ConnTimer`]: the auth deadline, the auth-failure delay and the end of lingering,
//! at most one per connection), fired between connections' turns; and the poll
//! timeout, which is the next deadline of either wheel (or the
//! [`Alarm`](crate::alarm::Alarm)'s).
//!
//! Deadlines do not wait for the end of an iteration: after every connection's turn
//! (a turn is up to [`READ_BUDGET`] and [`TURN_MS`], and an iteration may give a
//! hundred connections one each), [`Server::between_turns`] compares the latest clock
//! reading (one the turn took anyway, [`Clock::latest_us`]) with both wheels' lower
//! bound of their next deadline (`due`), and only when one is due takes a deadlines'
//! turn: batches of at most [`DEADLINE_BATCH`], the clock read afresh for each, so a
//! timer fired late in a big batch counts the time the batch took in its lateness,
//! for at most [`TURN_MS`]; the rest continues after the next connection's turn. A
//! connection's turn itself ends early at its next clock check (every
//! `TURN_CHECK_REQUESTS` requests) when that reading finds a deadline due, so a due
//! deadline waits for a few requests of a turn, not for the whole turn.
//!
//! # Invariants
//! - A deadline never fires early: every batch fires only timers due at a clock
//!   reading taken before it, and wheels never fire early.
//! - Bounded batches fire what one whole advance to the same time would, in the same
//!   order ([`Engine::advance_bounded`], [`Wheel::advance_bounded`]), so grants that
//!   timeouts and expiries cause keep their FIFO order; each batch's later readings
//!   only let later deadlines join.
//! - Replies of fired deadlines are routed to their connections' output after every
//!   engine batch and flushed with everyone's at the end of the iteration.

use super::*;
use crate::engine::Advance;

/// Deadlines fired per batch, each batch on a fresh clock reading (about a
/// millisecond of timeouts with their replies).
pub const DEADLINE_BATCH: usize = 1024;

/// What a server timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConnTimer {
    /// `--auth-timeout` ran out.
    AuthDeadline,
    /// The auth-failure delay is over: send the reply and close.
    AuthDelay,
    /// Lingering is over: close.
    Linger,
}

impl Server {
    /// Zero while work is pending; else until the next deadline (or forever), which the
    /// alarm, when there is one, marks exactly: then the poll itself waits forever.
    pub(super) fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.dirty.is_empty()
            || !self.resume.is_empty()
            || self.engine.has_events()
            || self.engine.has_work()
        {
            return Some(Duration::ZERO);
        }
        let wake = [
            self.engine.next_wake(),
            self.timers.next_wake(),
            self.accept_after,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX)
        .min(self.maintain_at);
        let now = self.clock.now_us();
        if wake <= now {
            return Some(Duration::ZERO);
        }
        if let Some(alarm) = &mut self.alarm {
            match alarm.wake_at(&self.clock, wake, now) {
                Ok(()) => return None,
                Err(e) => {
                    warn!("timerfd: {e}; deadlines may fire up to 1 ms late");
                    self.alarm = None;
                }
            }
        }
        Some(self.clock.until_us(wake))
    }

    /// Takes a deadlines' turn if a deadline is due at the latest clock reading: the
    /// check between two connections' turns, one comparison per wheel.
    #[inline(always)]
    pub(super) fn between_turns(&mut self) {
        let seen = self.clock.latest_us();
        if self.engine.due(seen) || self.timers.due(seen) {
            self.fire_deadlines();
        }
    }

    /// A deadlines' turn: the engine's and then the server's due deadlines in batches
    /// of at most [`DEADLINE_BATCH`] each, on a fresh clock reading per batch, until
    /// none is due or [`TURN_MS`] have passed (the rest is left due for the next turn).
    #[inline(never)]
    fn fire_deadlines(&mut self) {
        let mut now = self.clock.now_us();
        let end = now + TURN_MS * US_PER_MS;
        loop {
            let engine = self.engine.advance_bounded(now, DEADLINE_BATCH);
            if self.engine.has_events() {
                self.route_events();
            }
            let server = self.fire_timers(now, DEADLINE_BATCH);
            if engine == Advance::Done && server == Advance::Done {
                return;
            }
            now = self.clock.now_us();
            if now >= end {
                return;
            }
        }
    }

    /// Fires at most `limit` of the server's own timers due at `now`.
    fn fire_timers(&mut self, now: u64, limit: usize) -> Advance {
        if !self.timers.due(now) {
            return Advance::Done;
        }
        let mut fired = std::mem::take(&mut self.fired);
        let outcome = self.timers.advance_bounded(now, limit, &mut fired);
        for (_, (k, timer)) in fired.drain(..) {
            let Some(conn) = self.conns.get_mut(k) else {
                continue;
            };
            conn.timer = None;
            match timer {
                ConnTimer::AuthDeadline => {
                    let open = matches!(conn.phase, Phase::Open | Phase::HalfClosed);
                    if !open || !conn.codec.awaiting_auth() {
                        continue;
                    }
                    self.stats.auth_timeouts_total += 1;
                    if let Some(left_out) = self.stats.refusal_log.auth.admit(now / US_PER_MS) {
                        warn!(
                            "{}: not authenticated within {} ms (--auth-timeout), \
                             closing{left_out}",
                            conn.addr, self.cfg.auth_timeout_ms
                        );
                    }
                    conn.codec.auth_timed_out(&mut conn.out);
                    conn.phase = Phase::Draining;
                    conn.linger = true;
                    self.mark_dirty(k);
                }
                ConnTimer::AuthDelay => {
                    if conn.phase == Phase::Delayed {
                        conn.phase = Phase::Draining;
                        self.mark_dirty(k);
                    }
                }
                ConnTimer::Linger => self.close(k),
            }
        }
        self.fired = fired;
        outcome
    }

    /// Starts connection `k`'s timer (replacing any) for `timer` at `at`.
    pub(super) fn set_timer(&mut self, k: usize, at: u64, timer: ConnTimer) {
        if let Some(conn) = self.conns.get_mut(k) {
            if let Some(t) = conn.timer.take() {
                self.timers.cancel(t);
            }
            conn.timer = Some(self.timers.insert(at, (k, timer)));
        }
    }
}
