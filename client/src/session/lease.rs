//! What a client knows of a hold's end: why it is gone ([`Lost`]) and until when it is
//! known to be held ([`Lease`]).

use std::time::{Duration, Instant};

/// Taken off every lease deadline the client vouches for: the server counts a hold's
/// time in whole milliseconds from when it read the request (so it may expire up to
/// 1 ms before `send time + hold`), and a client timer fires a little late.
pub const LEASE_MARGIN: Duration = Duration::from_millis(5);

/// Why a guard's hold is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Its `hold` ran out and the server took the lock back (`EXPIRED <token>`).
    Expired(u64),
    /// A `RESET` on the connection released it.
    Reset,
    /// The connection closed or failed; the server releases a closed connection's holds.
    ConnectionLost,
    /// The guard released (or dropped, or detached) the hold itself.
    Released,
    /// A kept-alive lease ran out on the client's clock: no `EXTEND` sent in the last
    /// `hold` was confirmed (the server or the network is gone, and no `EXPIRED` or
    /// close could reach the client). The server may already have freed the lock and
    /// granted it to someone else.
    LeaseUnconfirmed,
}

impl Lost {
    /// True when the server is known to have let the hold go (it expired, a `RESET`
    /// or a closed connection released it): nothing is left to release.
    pub fn released_on_server(self) -> bool {
        matches!(self, Lost::Expired(_) | Lost::Reset | Lost::ConnectionLost)
    }
}

/// What a hold's lease is known to be: the deadline the client can vouch for, and the
/// send time of the request that confirmed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// When the confirming request (the grant's `LOCK`/`SHARE`, or an `EXTEND`) was
    /// queued: the server read it later, so its deadline is later than this plus the
    /// hold.
    pub sent: Instant,
    /// The moment until which the hold is known to be held: `sent + hold`, less
    /// [`LEASE_MARGIN`].
    pub until: Instant,
}

impl Lease {
    /// The lease confirmed by a request queued at `sent` with a hold of `hold`.
    pub fn new(sent: Instant, hold: Duration) -> Lease {
        Lease {
            sent,
            until: sent + hold.saturating_sub(LEASE_MARGIN),
        }
    }
}
