//! One pipeline slot ([`Slot`]): where it is in its cycle ([`SlotState`]), what it
//! does wrong on purpose under `--chaos` ([`Chaos`]), and what it holds.

use std::time::{Duration, Instant};

/// Where a pipeline slot is in its cycle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum SlotState {
    /// Not yet started.
    Idle,
    /// Acquire request sent.
    Acquire,
    /// Granted, waiting for the work timer.
    Hold,
    /// Release request sent.
    Release,
    /// Redis: busy, waiting for the retry timer.
    Retry,
    /// Ping sent.
    Ping,
    /// Chaos: the wait was answered `CANCELLED`, the `CANCEL`'s own reply is pending.
    Cancelled,
    /// Chaos: `EXTEND` sent.
    Extend,
    /// Chaos: `RESET` sent.
    Reset,
    /// Chaos: the connection was closed by loadgen and is being opened again.
    Reconnect,
    /// Chaos: `INSPECT` sent after a confirmed close.
    Probe,
    /// Finished for good.
    Done,
}

impl SlotState {
    /// Whether the slot's main request is waiting for its reply.
    pub(super) fn awaits_reply(self) -> bool {
        matches!(
            self,
            SlotState::Acquire
                | SlotState::Release
                | SlotState::Ping
                | SlotState::Extend
                | SlotState::Reset
                | SlotState::Probe
        )
    }

    /// Whether the slot holds a lock the server granted (or granted and was asked to
    /// release, with no answer yet).
    pub(super) fn has_hold(self) -> bool {
        matches!(
            self,
            SlotState::Hold | SlotState::Release | SlotState::Extend | SlotState::Reset
        )
    }
}

/// What a cycle does wrong on purpose (`--chaos`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Chaos {
    /// Nothing: a well-behaved cycle.
    None,
    /// Close the connection while the acquire waits.
    CloseWaiting,
    /// Close the connection while holding.
    CloseHolding,
    /// `CANCEL` the pending acquire.
    Cancel,
    /// `RESET` the connection while holding.
    Reset,
    /// `EXTEND` the hold, then hold on and unlock.
    Extend,
    /// Take a short lease and let it expire.
    Expire,
}

impl Chaos {
    /// The misbehaviours [`Worker::start_cycle`] picks from, uniformly.
    pub(super) const PICK: [Chaos; 6] = [
        Chaos::CloseWaiting,
        Chaos::CloseHolding,
        Chaos::Cancel,
        Chaos::Reset,
        Chaos::Extend,
        Chaos::Expire,
    ];
}

/// One of a client's `--pipeline` cycles in flight.
pub(super) struct Slot {
    pub(super) st: SlotState,
    /// Client number within this loop.
    pub(super) client: u32,
    /// Slot number within the client.
    pub(super) j: u32,
    pub(super) server: u16,
    /// Lock number (the name is the prefix and this number).
    pub(super) name: u64,
    /// Requests sent so far by this slot (ids are `j + D*k`).
    pub(super) k: u64,
    /// Id of the request whose reply is expected (lockbox), or NO_ID.
    pub(super) expect: u64,
    /// Id of the acquire request of the current hold (EXPIRED events carry it).
    pub(super) hold_id: u64,
    pub(super) token: u64,
    /// Cycle start (first acquire attempt).
    pub(super) t_start: Instant,
    /// Latest acquire request sent.
    pub(super) t_sent: Instant,
    /// Release request sent.
    pub(super) t_rel: Instant,
    /// Timer generation; a popped timer with another generation is stale.
    pub(super) gen: u32,
    pub(super) expired: bool,
    /// Holds one of the `--cycles` budget.
    pub(super) ticket: bool,
    /// This cycle's misbehaviour (`--chaos`).
    pub(super) chaos: Chaos,
    /// This cycle acquires with `SHARE` (share mode, or a semaphore name under chaos).
    pub(super) shared: bool,
    /// `max=` of this cycle's `SHARE`.
    pub(super) max: Option<u64>,
    /// The lease (`hold=`) this cycle's acquire asks for.
    pub(super) lease: Option<Duration>,
    /// Connection sequence number of the pending main request.
    pub(super) expect_seq: u64,
    /// Id of a pending `CANCEL`, or NO_ID.
    pub(super) side: u64,
    /// The acquire id the pending `CANCEL` cancels.
    pub(super) side_for: u64,
    /// Connection sequence number of the pending `CANCEL`.
    pub(super) side_seq: u64,
    /// The server the pending `CANCEL` went to (the slot may have moved on to another).
    pub(super) side_server: u16,
    /// Id of the latest acquire answered `CANCELLED` (a grant for it is a violation).
    pub(super) cancelled: u64,
    /// Largest token seen from this server before the acquire was sent (`--verify`).
    pub(super) floor: u64,
    /// Sequence number of the `RESET` that released the hold, or 0.
    pub(super) reset_seq: u64,
    /// Token of an exclusive hold to look for with `INSPECT` after a confirmed close,
    /// or 0.
    pub(super) probe: u64,
    /// When the pending `EXTEND` was sent, and its `hold=`.
    pub(super) t_ext: Instant,
    pub(super) ext_ms: u64,
}
