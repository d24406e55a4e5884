//! Rate limits for log lines a client can cause (refused connections, limit refusals,
//! failed `AUTH`, `--auth-timeout`), so that a flood of them cannot flood the log.
//!
//! Each kind of line has a [`Throttle`]: at most one line per [`LOG_INTERVAL_MS`]; the
//! lines in between are counted, and the next line that is written says how many were
//! left out ([`Suppressed`]).
//!
//! # Invariants
//! - `suppressed` counts the events refused since the last admitted one.
//! - Time is an argument (ms on the server's clock); nothing here reads a clock.

use std::fmt;

/// At most one line per kind in this many milliseconds.
pub const LOG_INTERVAL_MS: u64 = 1_000;

/// The rate limit of one kind of log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// When the next line may be written (ms); 0 before the first.
    next_ms: u64,
    suppressed: u64,
}

impl Throttle {
    /// `Some(n)` when a line may be written at `now`, with the number of events left
    /// out since the last line; `None` (and the event counted) otherwise.
    pub fn admit(&mut self, now: u64) -> Option<Suppressed> {
        if now < self.next_ms {
            self.suppressed += 1;
            return None;
        }
        self.next_ms = now + LOG_INTERVAL_MS;
        Some(Suppressed(std::mem::take(&mut self.suppressed)))
    }
}

/// How many lines of a kind were left out before this one; displays as nothing when
/// none were, else as ` (N more since the last such line)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suppressed(pub u64);

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} more since the last such line)"),
        }
    }
}

/// The throttles of the server's refusal warnings, one per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefusalLog {
    /// Connections refused at `--max-connections`.
    pub connections: Throttle,
    /// Acquires refused by a limit (`--max-pending`, `--max-claims`, detached holds).
    pub limits: Throttle,
    /// Wrong `AUTH` secrets and connections closed by `--auth-timeout`.
    pub auth: Throttle,
}

#[cfg(test)]
mod tests {
    use super::{Suppressed, Throttle, LOG_INTERVAL_MS};

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let mut t = Throttle::default();
        assert_eq!(t.admit(0), Some(Suppressed(0)));
        for ms in 1..LOG_INTERVAL_MS {
            assert_eq!(t.admit(ms), None, "at {ms}");
        }
        assert_eq!(t.admit(LOG_INTERVAL_MS), Some(Suppressed(999)));
        assert_eq!(t.admit(LOG_INTERVAL_MS + 1), None);
        assert_eq!(t.admit(10 * LOG_INTERVAL_MS), Some(Suppressed(1)));
        assert_eq!(t.admit(20 * LOG_INTERVAL_MS), Some(Suppressed(0)));
    }

    #[test]
    fn suppressed_count_shows_only_when_some_were_left_out() {
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(
            Suppressed(7).to_string(),
            " (7 more since the last such line)"
        );
    }
}
