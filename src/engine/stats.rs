//! The engine's figures: counters, gauges, the grant-wait, hold-duration and timer
//! lateness histograms, capacity, the latest refusal and uptime.

use super::*;

/// Engine-wide counters (current values are computed on demand).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections ever accepted.
    pub connections_total: u64,
    /// Grants, immediate and deferred.
    pub grants_total: u64,
    /// Lock requests that queued (behind holds or earlier waiters) rather than being
    /// granted or refused at once: the contention a workload meets.
    pub waits_total: u64,
    /// Waits that ran out, including `wait=0` tries that found the lock busy.
    pub timeouts_total: u64,
    /// Holds taken back at their deadline.
    pub expired_total: u64,
    /// Holds released because their connection closed.
    pub released_on_disconnect_total: u64,
    /// Acquires refused by a limit (`max_pending`, `max_claims`, the detached-hold
    /// limits): every `ERR limit` and each foreign protocol's equivalent.
    pub limit_refusals_total: u64,
}

/// Which limit refused the latest acquire that [`Counters::limit_refusals_total`]
/// counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Refusal {
    /// The client's `max_pending` holds and waits.
    #[default]
    Pending,
    /// The server's `max_claims` holds and waits.
    Claims,
    /// [`MAX_DETACHED`], [`MAX_ATTACHMENT`] or [`MAX_ATTACHMENT_BYTES`].
    Detached,
}

impl Engine {
    /// Counters since start.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Capacities of the structures [`Engine::maintain`] shrinks: the table's, and the
    /// timer slab's.
    pub fn capacity(&self) -> (Capacity, usize) {
        (self.table.capacity(), self.wheel.capacity())
    }

    /// Counts a refused acquire and remembers which limit refused it.
    pub(super) fn refuse(&mut self, why: Refusal) {
        self.counters.limit_refusals_total += 1;
        self.last_refusal = why;
    }

    /// Which limit refused the latest refused acquire (see
    /// [`Counters::limit_refusals_total`]).
    pub fn last_refusal(&self) -> Refusal {
        self.last_refusal
    }

    /// Milliseconds from request to grant, of every grant since start.
    pub fn grant_wait(&self) -> &Histogram {
        &self.grant_wait
    }

    /// Milliseconds from grant to end (release, expiry, disconnect) of every hold that
    /// ended since start.
    pub fn hold_duration(&self) -> &Histogram {
        &self.hold_duration
    }

    /// How late every deadline fired since start (fire time minus deadline, in µs).
    pub fn timer_lateness(&self) -> &Lateness {
        &self.lateness
    }

    /// Milliseconds since the engine started.
    pub fn uptime(&self, now: u64) -> u64 {
        now.saturating_sub(self.started) / self.ticks_per_ms
    }

    /// Current (connections, locks, holds, waiters).
    pub fn gauges(&self) -> (usize, usize, usize, usize) {
        (
            self.connections,
            self.table.lock_count(),
            self.table.hold_count(),
            self.table.wait_count(),
        )
    }
}
