//! Fencing tokens: one strictly increasing `u64` per grant.
//!
//! The counter starts at the wall clock in nanoseconds since the Unix epoch, so a
//! restarted instance continues above every token it issued before (as long as the
//! clock did not go back and it issued fewer than one token per nanosecond of uptime).
//!
//! # Invariant
//! Every value returned by [`Fence::issue`] is greater than every value returned before.

use std::time::{SystemTime, UNIX_EPOCH};

/// The token counter.
#[derive(Debug)]
pub struct Fence {
    next: u64,
}

impl Fence {
    /// A counter whose first token is `first`.
    pub fn starting_at(first: u64) -> Self {
        Fence { next: first.max(1) }
    }

    /// A counter seeded from the wall clock (nanoseconds since the Unix epoch).
    pub fn from_wall_clock() -> Self {
        Fence::starting_at(wall_clock_ns())
    }

    /// The next token; strictly greater than every earlier one.
    pub fn issue(&mut self) -> u64 {
        let t = self.next;
        self.next = t.checked_add(1).expect("fencing token space exhausted");
        t
    }

    /// The token the next grant will get.
    pub fn peek(&self) -> u64 {
        self.next
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
