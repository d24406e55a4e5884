//! The engine: the lock table, the timer wheel and the client registry behind one API
//! that knows nothing of any wire format.
//!
//! Codecs ([`crate::proto`]) turn bytes into calls here and the results back into bytes.
//! A call's own answer is its return value. Everything that happens *later* or *to
//! another connection* (a waiter granted, a wait timed out, a hold expired) is queued
//! as an [`Event`] addressed to a client, with the tag the codec gave the request;
//! the server routes events to their connections' codecs after every call.
//!
//! Time is a count of *ticks* passed into every call that needs it, so tests drive the
//! engine without sleeping. A tick is a millisecond unless the engine was built
//! [`Engine::with_ticks_per_ms`] (the server uses microseconds, so deadlines keep
//! sub-millisecond resolution and fire exactly). Deadlines are computed as
//! `now + ms * ticks_per_ms + 1`: `now` is truncated to the tick, and the extra tick
//! makes sure a deadline never fires before `ms` full milliseconds have passed since
//! the request arrived. Durations the engine reports (the histograms, uptime) are in
//! milliseconds whatever the tick; deadlines it reports are in ticks.
//!
//! **Layout.** Here: the vocabulary, the client registry, acquire, release, extend,
//! cancel and the deadlines (`advance`). `detached`: detached holds and their
//! attachments; `work`: deferred grants, closing clients and the bookkeeping of every
//! grant and removal; `views`: read-only views for lookups and listings; `stats`:
//! counters, gauges, histograms and refusals; `cursor`: scans a batch at a time.
//!
//! # Invariants
//! - A claim has a timer iff it waits with a `wait` deadline or is held with a `hold`
//!   deadline; the timer's payload names the claim and which deadline it is.
//! - Client slots are indexed by an id the caller chooses; a slot is `Some` from
//!   [`Engine::connect`] until the client's claims are all gone after
//!   [`Engine::begin_disconnect`] (then the id is handed out by [`Engine::take_freed`])
//!   or [`Engine::disconnect`]; a client with no slot owns no claim.
//! - A closing client (between those two points) gets no more events and no more
//!   grants: the table drops its waits from the queues they would be granted from,
//!   and [`Engine::work`] removes the rest of its claims, a budget at a time, so that
//!   closing a connection with a million claims does not stall everyone else. A
//!   closing client is left out of every listing ([`Engine::clients`],
//!   [`Engine::scan_clients`], [`Engine::scan_holds`], [`Engine::holds_on`]) and
//!   counts as connected nowhere; its remaining claims still count in lock totals
//!   (holders, waiters) until removed, since they still block others until then.
//! - At most `max_claims` (itself at most [`MAX_CLAIMS`]) holds plus waits exist at once
//!   (closing clients' and detached holds included).
//! - **Detached holds** ([`Engine::acquire_detached`]) belong to no connection once
//!   granted (their owner is [`DETACHED`]): they end at their hold deadline, or when
//!   released or extended by token from any connection. Until the grant the request
//!   waits as its connection's (a closing connection's detached request is dropped like
//!   its other waits, never granted). No event is ever addressed to [`DETACHED`], and
//!   closing the connection that made a detached hold never removes it.
//! - A claim has an entry in `attachments` iff it was made by `acquire_detached` (its
//!   `Pending::detached` is set); the entry goes with the claim, including a wait the
//!   table drops for a closing client. `attachment_bytes` is
//!   the sum of their value lengths, at most [`MAX_ATTACHMENT_BYTES`], and there are at
//!   most [`MAX_DETACHED`] entries.
//! - Every grant adds one observation to the grant-wait histogram (0 ms when immediate)
//!   and every hold that ends (release, expiry, disconnect, force release) one to the
//!   hold-duration histogram, so their counts equal `grants_total` and the grants minus
//!   the current holds.
//! - Every timer that fires adds one observation to the lateness histogram: the tick it
//!   fired at minus its deadline, in microseconds (never negative: the wheel never fires
//!   early).
//! - A claim's tag of more than [`INLINE`] and at most
//!   [`TAG_BUFFER`] bytes is in a heap buffer of exactly [`TAG_BUFFER`] bytes; longer
//!   tags in one of their own length. When a claim ends, whatever ends it, its data
//!   comes back to the engine in one of two places: `Engine::remove` (release,
//!   expiry, wait timeout, cancel, reset, force release, a closing client's claims)
//!   and `forget_dropped` (a closing client's waits that the table dropped from their
//!   queues, grants cut short included); both hand a [`TAG_BUFFER`]-byte buffer to
//!   `spare_tags`, which holds at most `SPARE_TAGS` of them (the rest are freed).
//!   A new tag of that size takes a spare when there is one, so a steady stream of
//!   requests with ids of 23 to 32 bytes allocates nothing. A refused request (busy,
//!   queue full, limits) takes no buffer: the claim's data is made only when the table
//!   makes the claim. Only a buffer's first `len` bytes are the tag (see
//!   [`crate::compact`]): what a recycled buffer held before is never read.

mod cursor;
mod detached;
mod stats;
mod views;
mod work;

pub use cursor::{Cursor, HoldView, Scan};
use detached::Attachment;
pub use detached::{AttachError, DetachedHold};
pub use stats::{Counters, Refusal};
pub use views::{ClaimView, Holder};

use crate::compact::{Compact, INLINE};
use crate::fence::Fence;
use crate::histogram::{Histogram, Lateness};
use crate::shrink;
use crate::table::{Acquire, Capacity, ClaimId, Found, Grant, Keyed, State, Table};
pub use crate::wheel::Advance;
use crate::wheel::{TimerId, Wheel, REACH};
use hashbrown::HashMap;
use smallvec::SmallVec;
use std::net::SocketAddr;

/// What codecs need of the table's vocabulary, so that they depend on the engine alone.
pub use crate::table::{FindError, LockInfo, Mode, MAX_NAME};

/// Identifies a connection: the server's connection key.
pub type ClientId = u32;

/// The "client" of a detached hold: no connection. [`Holder::client`] and
/// [`Engine::holds_on`] report it for detached holds.
pub const DETACHED: ClientId = crate::table::DETACHED;

/// Most detached holds (and detached requests still waiting) at once; beyond it
/// [`Engine::acquire_detached`] answers [`Acquired::Limit`].
pub const MAX_DETACHED: usize = 1 << 20;

/// Most bytes of one detached hold's attachment.
pub const MAX_ATTACHMENT: usize = 64 * 1024;

/// Most bytes of all attachments together.
pub const MAX_ATTACHMENT_BYTES: usize = 256 * 1024 * 1024;

/// Most holds plus waits of all clients at once, and the default of
/// [`Engine::with_max_claims`]: the table's bound ([`crate::table::MAX_CLAIMS`],
/// 2^31 - 1). The engine's timer wheel, with at most one timer per claim, stays
/// within it too.
pub const MAX_CLAIMS: usize = crate::table::MAX_CLAIMS;

/// Attachment buffers of removed detached holds kept for reuse (so a steady create and
/// release cycle allocates nothing), each of at most [`SPARE_VALUE_CAPACITY`] bytes.
const SPARE_VALUES: usize = 1024;

/// The largest attachment buffer kept for reuse.
const SPARE_VALUE_CAPACITY: usize = 4096;

/// The codec's handle for a request (the native request id, a locker sequence number,
/// ...): copied into events about that request. Up to 32 bytes are stored inline.
pub type Tag = SmallVec<[u8; 32]>;

/// The heap buffer of every tag longer than the inline 22 bytes and at most this long,
/// and so of every spare buffer: the native protocol's longest request id (its codec
/// checks its limit against this), so that every native id fits every spare.
pub const TAG_BUFFER: usize = 32;

/// Heap buffers of ended claims' tags kept for reuse, each of [`TAG_BUFFER`] bytes (64
/// bytes with the allocator's header and the pool's pointer: 256 KiB when full). The
/// pool must cover how far the number of live long-tag claims falls and rises again
/// between reuses: 50 clients pipelining 32 requests each keep 1,600 in flight, and a
/// close of all of them followed by as many new ones (the clients reconnect) is a swing
/// of that size; the bound leaves room for a few such.
const SPARE_TAGS: usize = 4096;

/// Which deadline a timer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    Wait,
    Hold,
}

/// The engine's per-claim data.
#[derive(Debug)]
pub struct Pending {
    /// The request's [`Tag`], in 24 bytes (up to 22 inline) instead of the tag's 40.
    tag: Compact,
    timer: Option<TimerId>,
    hold: Option<u32>,
    /// When the request arrived, then (once granted) when it was granted: the low 32
    /// bits of the clock in ms (not ticks) (a `u64` would grow the claim past its budget; durations
    /// are taken with wrapping arithmetic, exact below 2^32 ms, 49 days).
    since: u32,
}

impl Keyed for Pending {
    /// Waits are indexed by their tag, so a cancel by tag is O(1).
    fn key(&self) -> &[u8] {
        &self.tag
    }
}

/// An acquire request, as every codec expresses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcquireRequest<'a> {
    /// The lock name (already validated by the codec: 1 to 255 bytes).
    pub name: &'a [u8],
    /// Exclusive or shared (with an optional cap).
    pub mode: Mode,
    /// How long to wait: `None` = as long as the connection lives, `Some(0)` = try once.
    pub wait: Option<u32>,
    /// How long the hold may last after the grant; `None` = until released.
    pub hold: Option<u32>,
    /// Refuse at once when this many requests already wait.
    pub queue: Option<u32>,
}

/// The immediate answer to an acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// Granted now.
    Granted {
        /// Fencing token.
        token: u64,
        /// Holds of the lock, this one included.
        holders: u32,
    },
    /// Queued: an [`Event`] will follow (granted, timeout or cancelled).
    Queued,
    /// Not grantable and `wait` was 0.
    Timeout,
    /// `queue` or more requests already wait.
    QueueFull,
    /// This client already has `max_pending` holds and waits.
    Limit,
    /// The server already has `max_claims` holds and waits.
    Full,
}

/// What happened to a queued request or a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A waiter was granted.
    Granted {
        /// Fencing token.
        token: u64,
        /// Holds of the lock right after the grant, this one included.
        holders: u32,
        /// The request was shared.
        shared: bool,
    },
    /// A wait ran out.
    Timeout,
    /// A hold deadline passed and the lock was taken back.
    Expired {
        /// The token of the hold that expired.
        token: u64,
    },
}

/// A deferred notification for one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Whom it is for.
    pub client: ClientId,
    /// The tag of the request it answers.
    pub tag: Tag,
    /// What happened.
    pub kind: EventKind,
}

/// A connected client.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    name: Option<Box<[u8]>>,
    group: u8,
    /// Disconnected; its claims are being removed.
    closing: bool,
    /// Its waits with a `wait` deadline.
    timed_waits: u32,
}

impl Client {
    /// The peer address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The friendly name, if set.
    pub fn name(&self) -> Option<&[u8]> {
        self.name.as_deref()
    }
}

/// The protocol-agnostic core.
pub struct Engine {
    table: Table<Pending>,
    wheel: Wheel<(ClaimId, Deadline)>,
    clients: Vec<Option<Client>>,
    connections: usize,
    counters: Counters,
    events: Vec<Event>,
    granted: Vec<Grant>,
    fired: Vec<(u64, (ClaimId, Deadline))>,
    scratch: Vec<ClaimId>,
    dropped: Vec<(ClaimId, Pending)>,
    /// Closing clients whose claims [`Engine::work`] still has to remove.
    closing: std::collections::VecDeque<ClientId>,
    /// Closing clients whose claims are all gone, until [`Engine::take_freed`].
    freed: Vec<ClientId>,
    started: u64,
    max_pending: u32,
    max_claims: usize,
    /// Which limit refused the latest refused acquire.
    last_refusal: Refusal,
    attachments: HashMap<ClaimId, Attachment>,
    attachment_bytes: usize,
    spare_values: Vec<Vec<u8>>,
    /// Buffers of ended claims' tags, for new ones (at most [`SPARE_TAGS`], each of
    /// [`TAG_BUFFER`] bytes).
    spare_tags: Vec<Box<[u8]>>,
    /// Time from request to grant of every grant (0 for immediate ones).
    grant_wait: Histogram,
    /// Time from grant to release, expiry or disconnect of every hold that ended.
    hold_duration: Histogram,
    /// How late every fired timer fired.
    lateness: Lateness,
    /// Ticks per millisecond of every `now` argument (1: the tick is a millisecond).
    ticks_per_ms: u64,
}

impl Engine {
    /// An empty engine at time `now` (ms), issuing tokens from `fence`, allowing each
    /// client at most `max_pending` holds plus waits.
    pub fn new(fence: Fence, now: u64, max_pending: u32) -> Self {
        Engine {
            table: Table::new(fence),
            wheel: Wheel::new(now),
            clients: Vec::new(),
            connections: 0,
            counters: Counters::default(),
            events: Vec::new(),
            granted: Vec::new(),
            fired: Vec::new(),
            scratch: Vec::new(),
            dropped: Vec::new(),
            closing: std::collections::VecDeque::new(),
            freed: Vec::new(),
            started: now,
            max_pending,
            max_claims: MAX_CLAIMS,
            last_refusal: Refusal::Pending,
            attachments: HashMap::new(),
            attachment_bytes: 0,
            spare_values: Vec::new(),
            spare_tags: Vec::new(),
            grant_wait: Histogram::default(),
            hold_duration: Histogram::default(),
            lateness: Lateness::default(),
            ticks_per_ms: 1,
        }
    }

    /// The same engine counting time in ticks of `1/ticks_per_ms` ms (e.g. 1000 for
    /// microseconds): every `now` argument, `now` of [`Engine::new`] included, and every
    /// deadline reported is then in those ticks. Call it before anything else.
    ///
    /// Panics when `ticks_per_ms` is 0, or so large that the longest `u32` millisecond
    /// deadline would not fit the timer wheel's reach.
    pub fn with_ticks_per_ms(mut self, ticks_per_ms: u64) -> Self {
        assert!(
            ticks_per_ms >= 1
                && u64::from(u32::MAX)
                    .checked_mul(ticks_per_ms)
                    .is_some_and(|t| t < REACH),
            "engine: {ticks_per_ms} ticks per ms"
        );
        self.ticks_per_ms = ticks_per_ms;
        self
    }

    /// Ticks per millisecond of this engine's time (see [`Engine::with_ticks_per_ms`]).
    pub fn ticks_per_ms(&self) -> u64 {
        self.ticks_per_ms
    }

    /// Allows at most `max_claims` holds plus waits in all (default and most:
    /// [`MAX_CLAIMS`], to which a larger `max_claims` is lowered).
    pub fn with_max_claims(mut self, max_claims: usize) -> Self {
        self.max_claims = max_claims.min(MAX_CLAIMS);
        self
    }

    /// Registers a new connection under `id` (which must be free).
    pub fn connect(&mut self, id: ClientId, addr: SocketAddr) {
        self.connect_in(id, addr, 0);
    }

    /// Registers a new connection under `id` in `group`: an opaque label (the server
    /// uses the protocol) that [`Engine::force_release`] respects.
    pub fn connect_in(&mut self, id: ClientId, addr: SocketAddr, group: u8) {
        let i = id as usize;
        if i >= self.clients.len() {
            self.clients.resize_with(i + 1, || None);
        }
        debug_assert!(
            self.clients[i].is_none(),
            "client slot {id} reused while live"
        );
        self.clients[i] = Some(Client {
            addr,
            name: None,
            group,
            closing: false,
            timed_waits: 0,
        });
        self.table.open_owner(id);
        self.connections += 1;
        self.counters.connections_total += 1;
    }

    /// Forgets a connection at once: cancels its waits (silently), then releases its
    /// holds, granting the next waiters (events for their clients). Returns holds
    /// released. The server uses [`Engine::begin_disconnect`] instead, which spreads
    /// the work.
    pub fn disconnect(&mut self, id: ClientId, now: u64) -> u32 {
        if !self.begin_disconnect(id) {
            return 0;
        }
        let before = self.counters.released_on_disconnect_total;
        while self.reclaim_one(id, now) {}
        self.closing.retain(|&c| c != id);
        self.freed.retain(|&c| c != id);
        self.clients[id as usize] = None;
        (self.counters.released_on_disconnect_total - before) as u32
    }

    /// A client's (holds, waits).
    pub fn pending(&self, id: ClientId) -> (u32, u32) {
        self.table.owner_counts(id)
    }

    /// Sets a client's friendly name (`None` clears it).
    pub fn set_name(&mut self, id: ClientId, name: Option<&[u8]>) {
        if let Some(Some(c)) = self.clients.get_mut(id as usize) {
            c.name = name.map(Box::from);
        }
    }

    /// A connected client.
    pub fn client(&self, id: ClientId) -> Option<&Client> {
        self.clients.get(id as usize)?.as_ref()
    }

    /// Every connected client with its (holds, waits); closing ones are left out.
    pub fn clients(&self) -> impl Iterator<Item = (ClientId, &Client, (u32, u32))> + '_ {
        self.clients.iter().enumerate().filter_map(|(i, c)| {
            let c = c.as_ref().filter(|c| !c.closing)?;
            Some((i as ClientId, c, self.table.owner_counts(i as ClientId)))
        })
    }

    /// Asks for a lock. See [`Acquired`] for the answers; a `Queued` request is answered
    /// later by an event with `tag`.
    #[inline(always)]
    pub fn acquire(
        &mut self,
        client: ClientId,
        tag: &[u8],
        req: &AcquireRequest,
        now: u64,
    ) -> Acquired {
        self.acquire_as(client, tag, req, None, now)
    }

    fn acquire_as(
        &mut self,
        client: ClientId,
        tag: &[u8],
        req: &AcquireRequest,
        detached: Option<&[u8]>,
        now: u64,
    ) -> Acquired {
        let (holds, waits) = self.table.owner_counts(client);
        if holds + waits >= self.max_pending {
            self.refuse(Refusal::Pending);
            return Acquired::Limit;
        }
        if self.table.hold_count() + self.table.wait_count() >= self.max_claims {
            self.refuse(Refusal::Claims);
            return Acquired::Full;
        }
        let since = self.ms(now) as u32;
        let spare = &mut self.spare_tags;
        let data = || Pending {
            tag: new_tag(spare, tag),
            timer: None,
            hold: req.hold,
            since,
        };
        match self.table.acquire_with(
            client,
            req.name,
            req.mode,
            req.wait != Some(0),
            req.queue,
            data,
        ) {
            Acquire::Granted {
                claim,
                token,
                holders,
            } => {
                self.counters.grants_total += 1;
                self.grant_wait.observe(0);
                if let Some(value) = detached {
                    self.attach_new(client, claim, value);
                    self.table.detach(claim);
                }
                self.start_hold_timer(claim, now);
                Acquired::Granted { token, holders }
            }
            Acquire::Queued { claim } => {
                self.counters.waits_total += 1;
                if let Some(value) = detached {
                    self.attach_new(client, claim, value);
                }
                if let Some(ms) = req.wait {
                    let id = self
                        .wheel
                        .insert(self.deadline(now, ms), (claim, Deadline::Wait));
                    self.table.claim_mut(claim).data.timer = Some(id);
                    self.count_timed(client, true);
                }
                Acquired::Queued
            }
            Acquire::Busy => {
                self.counters.timeouts_total += 1;
                Acquired::Timeout
            }
            Acquire::QueueFull => Acquired::QueueFull,
        }
    }

    /// Releases `client`'s hold on `name` (the one with `token`, or its only one). The
    /// lookup hashes the name once: the lock, if emptied, leaves the table through the
    /// index slot found then (see [`Found`]).
    pub fn release(
        &mut self,
        client: ClientId,
        name: &[u8],
        token: Option<u64>,
        now: u64,
    ) -> Result<(), FindError> {
        let found = self.find_hold(client, name, token)?;
        self.remove(found, now);
        Ok(())
    }

    /// `client`'s hold on `name` (with `token`, or its only one), else the detached
    /// hold with `token`.
    #[inline]
    fn find_hold(
        &self,
        client: ClientId,
        name: &[u8],
        token: Option<u64>,
    ) -> Result<Found, FindError> {
        match (self.table.find_hold_at(client, name, token), token) {
            (Err(FindError::NotHeld), Some(t)) => self
                .table
                .find_detached(name, t)
                .map(Found::from)
                .ok_or(FindError::NotHeld),
            (found, _) => found,
        }
    }

    /// Moves a held claim's deadline to `now + hold` (or takes it away).
    fn set_hold(&mut self, claim: ClaimId, hold: Option<u32>, now: u64) {
        if let Some(t) = self.table.claim_mut(claim).data.timer.take() {
            self.wheel.cancel(t);
        }
        self.table.claim_mut(claim).data.hold = hold;
        self.start_hold_timer(claim, now);
    }

    /// Moves the deadline of `client`'s hold on `name` with `token` to `now + hold`.
    pub fn extend(
        &mut self,
        client: ClientId,
        name: &[u8],
        token: u64,
        hold: u32,
        now: u64,
    ) -> Result<(), FindError> {
        let claim = self.find_hold(client, name, Some(token))?.claim();
        self.set_hold(claim, Some(hold), now);
        Ok(())
    }

    /// Ends `client`'s waits whose tag is `tag`, calling `on_cancel` for each in request
    /// order. Returns how many. Costs O(those waits), whatever else the client waits for.
    pub fn cancel(
        &mut self,
        client: ClientId,
        tag: &[u8],
        now: u64,
        mut on_cancel: impl FnMut(&[u8]),
    ) -> u32 {
        self.scratch.clear();
        self.scratch.extend(self.table.waits_with_key(client, tag));
        for _ in &self.scratch {
            on_cancel(tag);
        }
        self.withdraw_scratch(now)
    }

    /// How many waits of `client` have a `wait` deadline: O(1). A connection whose peer
    /// shut down its write side stays until this is 0, so each gets its answer.
    pub fn timed_waits(&self, client: ClientId) -> u32 {
        self.client(client).map_or(0, |c| c.timed_waits)
    }

    /// A wait deadline of `client`'s was set (`+1`) or is gone (`-1`).
    fn count_timed(&mut self, client: ClientId, up: bool) {
        if let Some(Some(c)) = self.clients.get_mut(client as usize) {
            if up {
                c.timed_waits += 1;
            } else {
                c.timed_waits -= 1;
            }
        }
    }

    /// True when `client` has a wait with tag `tag`: O(1).
    pub fn is_waiting(&mut self, client: ClientId, tag: &[u8]) -> bool {
        self.table.waits_with_key(client, tag).next().is_some()
    }

    /// Cancels every wait of `client` (calling `on_cancel` with each tag, in request
    /// order), then releases every hold. Returns (released, cancelled).
    pub fn reset(
        &mut self,
        client: ClientId,
        now: u64,
        mut on_cancel: impl FnMut(&[u8]),
    ) -> (u32, u32) {
        self.scratch.clear();
        self.scratch.extend(self.table.waits_of(client));
        for &claim in &self.scratch {
            on_cancel(&self.table.claim(claim).data.tag);
        }
        let cancelled = self.withdraw_scratch(now);
        let mut released = 0;
        while let Some(claim) = self.table.first_hold(client) {
            self.remove(claim, now);
            released += 1;
        }
        (released, cancelled)
    }

    /// Fires every deadline due at `now`: timeouts, expiries and the grants they cause.
    pub fn advance(&mut self, now: u64) {
        while self.advance_bounded(now, usize::MAX) == Advance::More {}
    }

    /// [`Engine::advance`], but at most `limit` deadlines (`limit > 0`): [`Advance::More`]
    /// when some due at `now` are left, for the next advance, which fires them first.
    /// A run of bounded advances to the same `now` has exactly the effect of one
    /// advance, events in the same order, except that a wait deadline of a claim
    /// granted by an earlier batch is cancelled, not fired (and so not counted in the
    /// lateness histogram). Each batch counts its timers' lateness against its own
    /// `now`, so a caller that reads the clock before each batch measures honestly.
    pub fn advance_bounded(&mut self, now: u64, limit: usize) -> Advance {
        if !self.wheel.due(now) {
            return Advance::Done;
        }
        let mut fired = std::mem::take(&mut self.fired);
        let outcome = self.wheel.advance_bounded(now, limit, &mut fired);
        // First forget every fired timer, so that grants below never cancel one of them.
        for &(deadline, (claim, which)) in &fired {
            debug_assert!(deadline <= now, "timer for {deadline} fired at {now}");
            let late = now.saturating_sub(deadline);
            self.lateness
                .observe(late.saturating_mul(1000) / self.ticks_per_ms);
            let c = self.table.claim_mut(claim);
            c.data.timer = None;
            if which == Deadline::Wait {
                let owner = c.owner();
                self.count_timed(owner, false);
            }
        }
        for &(_, (claim, which)) in &fired {
            // A claim granted by an earlier entry of this batch has outlived its wait
            // deadline: skip that entry. (No claim is created during advance, so an
            // index still names the claim its timer was set for.)
            if !self.table.contains(claim) {
                continue;
            }
            let c = self.table.claim(claim);
            let closing = self
                .clients
                .get(c.owner() as usize)
                .and_then(Option::as_ref)
                .is_some_and(|o| o.closing);
            match (which, c.state()) {
                // A closing client's claim: removed with no event (its waits are
                // never granted, its holds are being released anyway).
                (Deadline::Wait, State::Waiting) | (Deadline::Hold, State::Held { .. })
                    if closing => {}
                (Deadline::Wait, State::Waiting) => {
                    self.counters.timeouts_total += 1;
                    let event = Event {
                        client: c.owner(),
                        tag: Tag::from_slice(&c.data.tag),
                        kind: EventKind::Timeout,
                    };
                    self.events.push(event);
                }
                (Deadline::Hold, State::Held { token }) => {
                    self.counters.expired_total += 1;
                    if c.owner() == DETACHED {
                        self.remove(claim, now);
                        continue;
                    }
                    let event = Event {
                        client: c.owner(),
                        tag: Tag::from_slice(&c.data.tag),
                        kind: EventKind::Expired { token },
                    };
                    self.events.push(event);
                }
                _ => continue,
            }
            self.remove(claim, now);
        }
        fired.clear();
        self.fired = fired;
        outcome
    }

    /// False only when no deadline is due at `now`: one comparison (see
    /// [`Wheel::due`]), cheap enough to check between any two connections' turns.
    #[inline]
    pub fn due(&self, now: u64) -> bool {
        self.wheel.due(now)
    }

    /// The earliest time at which [`Engine::advance`] may have work (a lower bound).
    pub fn next_wake(&self) -> Option<u64> {
        self.wheel.next_wake()
    }

    /// Moves the queued events into `into` (which should be empty; capacity is kept).
    pub fn take_events(&mut self, into: &mut Vec<Event>) {
        debug_assert!(into.is_empty(), "take_events into a non-empty buffer");
        std::mem::swap(&mut self.events, into);
    }

    /// True when events wait to be taken.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Releases every hold on `name` owned by a client of `group` (a foreign protocol's
    /// "force unlock" among its own clients); returns how many.
    ///
    /// The holds are listed before any is released, so the waiters that the releases
    /// grant keep their grants. Holds of other groups are never touched: a force unlock in
    /// one protocol cannot silently take a lock from a client of another.
    pub fn force_release(&mut self, name: &[u8], group: u8, now: u64) -> u32 {
        self.scratch.clear();
        let (table, clients) = (&self.table, &self.clients);
        self.scratch.extend(table.holds_on(name).filter(|&c| {
            let owner = table.claim(c).owner() as usize;
            clients
                .get(owner)
                .and_then(Option::as_ref)
                .is_some_and(|o| o.group == group)
        }));
        let n = self.scratch.len() as u32;
        while let Some(claim) = self.scratch.pop() {
            self.remove(claim, now);
        }
        n
    }

    /// Periodic maintenance (the server calls it about once a second, never per
    /// request): gives back the memory of structures left below a quarter full by a
    /// burst (the table's index and slabs, the timer slab, the scratch buffers and the
    /// client slots past the last connection). Returns whether anything shrank.
    pub fn maintain(&mut self) -> bool {
        let mut shrank = self.table.shrink();
        shrank |= self.wheel.shrink();
        while self.clients.last().is_some_and(Option::is_none) {
            self.clients.pop();
        }
        shrank |= shrink::vec(&mut self.clients);
        shrank |= shrink::vec(&mut self.events);
        shrank |= shrink::vec(&mut self.granted);
        shrank |= shrink::vec(&mut self.fired);
        shrank |= shrink::vec(&mut self.scratch);
        if shrink::due(self.attachments.len(), self.attachments.capacity()) {
            self.attachments.shrink_to(self.attachments.len() * 2);
            shrank = true;
        }
        shrank
    }

    /// `now` (ticks) in milliseconds.
    fn ms(&self, now: u64) -> u64 {
        now / self.ticks_per_ms
    }

    /// The deadline for a duration of `ms` starting at tick `now` (see module doc).
    fn deadline(&self, now: u64, ms: u32) -> u64 {
        now + u64::from(ms) * self.ticks_per_ms + 1
    }
}

/// `tag` as a claim keeps it: inline when it fits, in a spare buffer from `spare` when
/// it is at most [`TAG_BUFFER`] bytes (a new one when none is left), else in a buffer
/// of its own.
#[inline]
fn new_tag(spare: &mut Vec<Box<[u8]>>, tag: &[u8]) -> Compact {
    if tag.len() <= INLINE || tag.len() > TAG_BUFFER {
        return Compact::from_slice(tag); // short ids, the common case, kept inline
    }
    // Every spare buffer is TAG_BUFFER bytes, so the one on top always fits.
    Compact::from_spare(spare, tag, TAG_BUFFER)
}

/// Keeps the buffer of an ended claim's `tag` in `spare` for [`new_tag`], when it has
/// one of [`TAG_BUFFER`] bytes and `spare` has fewer than [`SPARE_TAGS`].
#[inline]
fn recycle_tag(spare: &mut Vec<Box<[u8]>>, tag: Compact) {
    if tag.spilled() && spare.len() < SPARE_TAGS {
        spare.extend(tag.into_buffer().filter(|b| b.len() == TAG_BUFFER));
    }
}

/// Milliseconds from `since` (the low 32 bits of an earlier ms clock) to `now_ms`.
fn elapsed(since: u32, now_ms: u64) -> u64 {
    u64::from((now_ms as u32).wrapping_sub(since))
}

#[cfg(test)]
mod tests;
