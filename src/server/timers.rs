//! The server's own timers ([`ConnTimer`]): the auth deadline, the auth-failure delay
//! and the end of lingering, at most one per connection; and the poll timeout, which
//! is the next deadline of either wheel (or the [`Alarm`](crate::alarm::Alarm)'s).

use super::*;

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

    /// Fires the server's own due timers.
    pub(super) fn fire_timers(&mut self, now: u64) {
        if self.timers.next_wake().is_none_or(|t| t > now) {
            return;
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.timers.advance(now, &mut fired);
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
