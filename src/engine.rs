//! The engine: the lock table, the timer wheel and the client registry behind one API
//! that knows nothing of any wire format.
//!
//! Codecs ([`crate::proto`]) turn bytes into calls here and the results back into bytes.
//! A call's own answer is its return value. Everything that happens *later* or *to
//! another connection* (a waiter granted, a wait timed out, a hold expired) is queued
//! as an [`Event`] addressed to a client, with the tag the codec gave the request;
//! the server routes events to their connections' codecs after every call.
//!
//! Time is a millisecond count passed into every call that needs it, so tests drive
//! the engine without sleeping. Deadlines are computed as `now + ms + 1`: `now` is
//! truncated to the millisecond, and the extra millisecond makes sure a deadline never
//! fires before `ms` full milliseconds have passed since the request arrived.
//!
//! # Invariants
//! - A claim has a timer iff it waits with a `wait` deadline or is held with a `hold`
//!   deadline; the timer's payload names the claim and which deadline it is.
//! - Client slots are indexed by the server's connection key; a slot is `Some` exactly
//!   between [`Engine::connect`] and [`Engine::disconnect`], and a client with no slot
//!   owns no claim.

use crate::fence::Fence;
use crate::table::{Acquire, ClaimId, FindError, Grant, LockInfo, Mode, State, Table};
use crate::wheel::{TimerId, Wheel};
use smallvec::SmallVec;
use std::net::SocketAddr;

/// Identifies a connection: the server's connection key.
pub type ClientId = u32;

/// The codec's handle for a request (the native request id, a locker sequence number,
/// ...): copied into events about that request. Up to 32 bytes are stored inline.
pub type Tag = SmallVec<[u8; 32]>;

/// Which deadline a timer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    Wait,
    Hold,
}

/// The engine's per-claim data.
#[derive(Debug)]
pub struct Pending {
    tag: Tag,
    timer: Option<TimerId>,
    hold: Option<u32>,
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

/// Engine-wide counters (current values are computed on demand).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections ever accepted.
    pub connections_total: u64,
    /// Grants, immediate and deferred.
    pub grants_total: u64,
    /// Waits that ran out, including `wait=0` tries that found the lock busy.
    pub timeouts_total: u64,
    /// Holds taken back at their deadline.
    pub expired_total: u64,
    /// Holds released because their connection closed.
    pub released_on_disconnect_total: u64,
}

/// Who holds a lock exclusively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The hold's token.
    pub token: u64,
    /// The connection holding it.
    pub client: ClientId,
}

/// One claim as codecs see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimView<'a> {
    /// The lock name.
    pub name: &'a [u8],
    /// The request's tag.
    pub tag: &'a [u8],
    /// The fencing token, when held.
    pub token: Option<u64>,
    /// The request was shared.
    pub shared: bool,
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
    started: u64,
    max_pending: u32,
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
            started: now,
            max_pending,
        }
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
        });
        self.connections += 1;
        self.counters.connections_total += 1;
    }

    /// Forgets a connection: cancels its waits (silently), then releases its holds,
    /// granting the next waiters (events for their clients). Returns holds released.
    pub fn disconnect(&mut self, id: ClientId, now: u64) -> u32 {
        let (released, _) = self.reset(id, now, |_| {});
        if let Some(slot) = self.clients.get_mut(id as usize) {
            if slot.take().is_some() {
                self.connections -= 1;
            }
        }
        self.counters.released_on_disconnect_total += u64::from(released);
        released
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

    /// Every connected client with its (holds, waits).
    pub fn clients(&self) -> impl Iterator<Item = (ClientId, &Client, (u32, u32))> + '_ {
        self.clients.iter().enumerate().filter_map(|(i, c)| {
            let c = c.as_ref()?;
            Some((i as ClientId, c, self.table.owner_counts(i as ClientId)))
        })
    }

    /// Asks for a lock. See [`Acquired`] for the answers; a `Queued` request is answered
    /// later by an event with `tag`.
    pub fn acquire(
        &mut self,
        client: ClientId,
        tag: &[u8],
        req: &AcquireRequest,
        now: u64,
    ) -> Acquired {
        let (holds, waits) = self.table.owner_counts(client);
        if holds + waits >= self.max_pending {
            return Acquired::Limit;
        }
        let data = Pending {
            tag: Tag::from_slice(tag),
            timer: None,
            hold: req.hold,
        };
        match self.table.acquire(
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
                self.start_hold_timer(claim, now);
                Acquired::Granted { token, holders }
            }
            Acquire::Queued { claim } => {
                if let Some(ms) = req.wait {
                    let id = self
                        .wheel
                        .insert(deadline(now, ms), (claim, Deadline::Wait));
                    self.table.claim_mut(claim).data.timer = Some(id);
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

    /// Releases `client`'s hold on `name` (the one with `token`, or its only one).
    pub fn release(
        &mut self,
        client: ClientId,
        name: &[u8],
        token: Option<u64>,
        now: u64,
    ) -> Result<(), FindError> {
        let claim = self.table.find_hold(client, name, token)?;
        self.remove(claim, now);
        Ok(())
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
        let claim = self.table.find_hold(client, name, Some(token))?;
        if let Some(t) = self.table.claim_mut(claim).data.timer.take() {
            self.wheel.cancel(t);
        }
        self.table.claim_mut(claim).data.hold = Some(hold);
        self.start_hold_timer(claim, now);
        Ok(())
    }

    /// Ends `client`'s waits whose tag is `tag`, calling `on_cancel` for each in request
    /// order. Returns how many.
    pub fn cancel(
        &mut self,
        client: ClientId,
        tag: &[u8],
        now: u64,
        mut on_cancel: impl FnMut(&[u8]),
    ) -> u32 {
        self.scratch.clear();
        let table = &self.table;
        self.scratch.extend(
            table
                .waits_of(client)
                .filter(|&c| table.claim(c).data.tag.as_slice() == tag),
        );
        for _ in &self.scratch {
            on_cancel(tag);
        }
        self.withdraw_scratch(now)
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
        if self.wheel.next_wake().is_none_or(|t| t > now) {
            return;
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.advance(now, &mut fired);
        // First forget every fired timer, so that grants below never cancel one of them.
        for &(_, (claim, _)) in &fired {
            self.table.claim_mut(claim).data.timer = None;
        }
        for &(_, (claim, which)) in &fired {
            // A claim granted by an earlier entry of this batch has outlived its wait
            // deadline: skip that entry. (No claim is created during advance, so an
            // index still names the claim its timer was set for.)
            if !self.table.contains(claim) {
                continue;
            }
            let c = self.table.claim(claim);
            match (which, c.state()) {
                (Deadline::Wait, State::Waiting) => {
                    self.counters.timeouts_total += 1;
                    let event = Event {
                        client: c.owner(),
                        tag: c.data.tag.clone(),
                        kind: EventKind::Timeout,
                    };
                    self.events.push(event);
                }
                (Deadline::Hold, State::Held { token }) => {
                    self.counters.expired_total += 1;
                    let event = Event {
                        client: c.owner(),
                        tag: c.data.tag.clone(),
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

    /// The state of one lock (`None` when free).
    pub fn inspect(&self, name: &[u8]) -> Option<(LockInfo, Option<Holder>)> {
        let info = self.table.inspect(name)?;
        let holder = if info.exclusive {
            self.table.holds_on(name).next().map(|c| {
                let claim = self.table.claim(c);
                Holder {
                    token: claim.token().unwrap_or(0),
                    client: claim.owner(),
                }
            })
        } else {
            None
        };
        Some((info, holder))
    }

    /// Every lock with holds or waiters, in no particular order.
    pub fn locks(&self) -> impl Iterator<Item = (&[u8], LockInfo)> + '_ {
        self.table.locks()
    }

    /// The holds of `name` (token, client), in grant order.
    pub fn holds_on<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = (u64, ClientId)> + 'a {
        self.table.holds_on(name).map(|c| {
            let claim = self.table.claim(c);
            (claim.token().unwrap_or(0), claim.owner())
        })
    }

    /// The waiters of `name` (client), in FIFO order.
    pub fn waiters_on<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = ClientId> + 'a {
        self.table
            .waiters_on(name)
            .map(|c| self.table.claim(c).owner())
    }

    /// The holds of `client`, in grant order.
    pub fn holds_of(&self, client: ClientId) -> impl Iterator<Item = ClaimView<'_>> + '_ {
        self.table.holds_of(client).map(|c| self.view(c))
    }

    /// The waits of `client`, in request order.
    pub fn waits_of(&self, client: ClientId) -> impl Iterator<Item = ClaimView<'_>> + '_ {
        self.table.waits_of(client).map(|c| self.view(c))
    }

    fn view(&self, c: ClaimId) -> ClaimView<'_> {
        let claim = self.table.claim(c);
        ClaimView {
            name: self.table.claim_name(c),
            tag: &claim.data.tag,
            token: claim.token(),
            shared: matches!(claim.mode(), Mode::Shared { .. }),
        }
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

    /// Counters since start.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Milliseconds since the engine started.
    pub fn uptime(&self, now: u64) -> u64 {
        now.saturating_sub(self.started)
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

    /// Removes the waits listed in `scratch` (one client's, in request order), latest
    /// first, and returns how many.
    ///
    /// Latest first matters when the client waits twice on one lock: removing a waiter
    /// can only grant requests queued *behind* it, and none of those is one of the
    /// client's earlier waits, so no wait being cancelled is ever granted on the way.
    fn withdraw_scratch(&mut self, now: u64) -> u32 {
        let n = self.scratch.len() as u32;
        while let Some(claim) = self.scratch.pop() {
            debug_assert_eq!(
                self.table.claim(claim).state(),
                State::Waiting,
                "cancelling a granted claim {claim}"
            );
            self.remove(claim, now);
        }
        n
    }

    /// Removes a claim, cancelling its timer, and processes the grants it causes.
    fn remove(&mut self, claim: ClaimId, now: u64) {
        if let Some(t) = self.table.claim_mut(claim).data.timer.take() {
            self.wheel.cancel(t);
        }
        let mut granted = std::mem::take(&mut self.granted);
        self.table.remove(claim, &mut granted);
        for g in granted.drain(..) {
            self.counters.grants_total += 1;
            let c = self.table.claim_mut(g.claim);
            if let Some(t) = c.data.timer.take() {
                self.wheel.cancel(t);
            }
            let shared = matches!(c.mode(), Mode::Shared { .. });
            let token = c.token().unwrap_or(0);
            let event = Event {
                client: c.owner(),
                tag: c.data.tag.clone(),
                kind: EventKind::Granted {
                    token,
                    holders: g.holders,
                    shared,
                },
            };
            self.events.push(event);
            self.start_hold_timer(g.claim, now);
        }
        self.granted = granted;
    }

    /// Starts the hold timer of a just-granted (or extended) claim, if it has a hold.
    fn start_hold_timer(&mut self, claim: ClaimId, now: u64) {
        let c = self.table.claim_mut(claim);
        debug_assert!(c.data.timer.is_none(), "claim {claim} already has a timer");
        if let Some(ms) = c.data.hold {
            let id = self
                .wheel
                .insert(deadline(now, ms), (claim, Deadline::Hold));
            self.table.claim_mut(claim).data.timer = Some(id);
        }
    }
}

/// The deadline for a duration of `ms` starting in millisecond `now` (see module doc).
fn deadline(now: u64, ms: u32) -> u64 {
    now + u64::from(ms) + 1
}

#[cfg(test)]
mod tests {
    //! Deadlines, events and counters of the engine, and a model test against a reference
    //! that predicts every answer and event. Time is an argument: no test sleeps.

    use super::*;
    use crate::testrng::Rng;
    use std::collections::{BTreeMap, VecDeque};

    // ---------------------------------------------------------------- unit tests

    const X: Mode = Mode::Exclusive;
    const S: Mode = Mode::Shared { max: 0 };

    fn addr() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    /// An engine at time 0 with clients 0..4 connected.
    fn engine_with(max_pending: u32) -> Engine {
        let mut e = Engine::new(Fence::starting_at(1), 0, max_pending);
        for c in 0..4 {
            e.connect(c, addr());
        }
        e
    }

    fn engine() -> Engine {
        engine_with(1000)
    }

    fn req(name: &[u8], mode: Mode, wait: Option<u32>, hold: Option<u32>) -> AcquireRequest<'_> {
        AcquireRequest {
            name,
            mode,
            wait,
            hold,
            queue: None,
        }
    }

    /// Waits as long as the connection lives, holds until released.
    fn forever(name: &[u8], mode: Mode) -> AcquireRequest<'_> {
        req(name, mode, None, None)
    }

    fn events(e: &mut Engine) -> Vec<Event> {
        let mut v = Vec::new();
        e.take_events(&mut v);
        v
    }

    fn ev(client: ClientId, tag: &str, kind: EventKind) -> Event {
        Event {
            client,
            tag: Tag::from_slice(tag.as_bytes()),
            kind,
        }
    }

    fn granted(token: u64, holders: u32, shared: bool) -> EventKind {
        EventKind::Granted {
            token,
            holders,
            shared,
        }
    }

    /// (holders, waiters) of a lock; (0, 0) when free.
    fn counts(e: &Engine, name: &[u8]) -> (u32, u32) {
        e.inspect(name)
            .map_or((0, 0), |(i, _)| (i.holders, i.waiters))
    }

    #[test]
    fn force_release_keeps_the_grants_it_causes_and_other_groups_holds() {
        let mut e = Engine::new(Fence::starting_at(1), 0, 1000);
        for c in 0..3 {
            e.connect_in(c, addr(), 7);
        }
        e.connect_in(3, addr(), 0);
        // Group 7: a holder and two waiters on "a".
        assert!(matches!(
            e.acquire(0, b"h", &forever(b"a", X), 0),
            Acquired::Granted { .. }
        ));
        assert_eq!(e.acquire(1, b"w1", &forever(b"a", X), 0), Acquired::Queued);
        assert_eq!(e.acquire(2, b"w2", &forever(b"a", X), 0), Acquired::Queued);
        assert_eq!(e.force_release(b"a", 7, 0), 1, "only the hold that existed");
        assert_eq!(events(&mut e), vec![ev(1, "w1", granted(2, 1, false))]);
        assert_eq!(
            counts(&e, b"a"),
            (1, 1),
            "w1 keeps its grant, w2 still waits"
        );
        assert_eq!(e.holds_on(b"a").collect::<Vec<_>>(), vec![(2, 1)]);
        // Group 0's hold on "b" is out of group 7's reach.
        assert!(matches!(
            e.acquire(3, b"n", &forever(b"b", X), 0),
            Acquired::Granted { .. }
        ));
        assert_eq!(e.force_release(b"b", 7, 0), 0);
        assert_eq!(counts(&e, b"b"), (1, 0));
        assert!(events(&mut e).is_empty());
    }

    #[test]
    fn wait_deadline_fires_at_now_plus_wait_plus_one() {
        for (now, wait) in [(100, 10), (100, 0), (100, 1000), (63, 1), (4095, 70_000)] {
            let mut e = engine();
            let held = e.acquire(0, b"h", &forever(b"a", X), now);
            assert_eq!(
                held,
                Acquired::Granted {
                    token: 1,
                    holders: 1
                }
            );
            let w = req(b"a", X, Some(wait), None);
            if wait == 0 {
                // wait=0 is a try: answered at once, no deadline.
                assert_eq!(e.acquire(1, b"w", &w, now), Acquired::Timeout);
                assert_eq!(e.next_wake(), None);
                continue;
            }
            assert_eq!(e.acquire(1, b"w", &w, now), Acquired::Queued);
            let deadline = now + u64::from(wait) + 1;
            let ctx = format!("now {now} wait {wait}");
            assert!(
                e.next_wake().is_some_and(|t| t <= deadline),
                "{ctx}: {:?}",
                e.next_wake()
            );
            // `wait` full milliseconds after the request's millisecond: not yet.
            e.advance(deadline - 1);
            assert_eq!(events(&mut e), vec![], "{ctx}: fired early");
            assert_eq!(counts(&e, b"a"), (1, 1), "{ctx}");
            assert!(
                e.next_wake().is_some_and(|t| t <= deadline),
                "{ctx}: {:?}",
                e.next_wake()
            );
            e.advance(deadline);
            assert_eq!(
                events(&mut e),
                vec![ev(1, "w", EventKind::Timeout)],
                "{ctx}"
            );
            assert_eq!(counts(&e, b"a"), (1, 0), "{ctx}");
            assert_eq!(e.counters().timeouts_total, 1, "{ctx}");
            assert_eq!(e.next_wake(), None, "{ctx}");
        }
    }

    #[test]
    fn hold_expiry_grants_the_next_waiter_in_the_same_advance() {
        let mut e = engine();
        let h = e.acquire(0, b"h", &req(b"a", X, None, Some(10)), 0);
        assert_eq!(
            h,
            Acquired::Granted {
                token: 1,
                holders: 1
            }
        );
        assert_eq!(e.acquire(1, b"w", &forever(b"a", X), 5), Acquired::Queued);
        e.advance(10);
        assert_eq!(events(&mut e), vec![]);
        e.advance(11);
        assert_eq!(
            events(&mut e),
            vec![
                ev(0, "h", EventKind::Expired { token: 1 }),
                ev(1, "w", granted(2, 1, false)),
            ]
        );
        assert_eq!(
            e.inspect(b"a").unwrap().1,
            Some(Holder {
                token: 2,
                client: 1
            })
        );
        assert_eq!(
            e.release(0, b"a", None, 12),
            Err(FindError::NotHeld),
            "expired"
        );
        assert_eq!(
            e.release(0, b"a", Some(1), 12),
            Err(FindError::NotHeld),
            "expired"
        );
        let c = e.counters();
        assert_eq!(
            (c.grants_total, c.expired_total, c.timeouts_total),
            (2, 1, 0)
        );
        // The new holder has no deadline: nothing more ever fires.
        assert_eq!(e.next_wake(), None);
    }

    #[test]
    fn a_waiter_granted_in_the_batch_of_its_own_wait_deadline_is_granted_not_timed_out() {
        // Holder with hold=10 and waiter with wait=10 at the same `now`: same deadline.
        for advance_to in [11, 12, 40, 5000] {
            let mut e = engine();
            e.acquire(0, b"h", &req(b"a", X, None, Some(10)), 0);
            assert_eq!(
                e.acquire(1, b"w", &req(b"a", X, Some(10), Some(3)), 0),
                Acquired::Queued
            );
            e.advance(advance_to);
            assert_eq!(
                events(&mut e),
                vec![
                    ev(0, "h", EventKind::Expired { token: 1 }),
                    ev(1, "w", granted(2, 1, false)),
                ],
                "advance to {advance_to}"
            );
            assert_eq!(e.counters().timeouts_total, 0, "advance to {advance_to}");
            // The grant started the waiter's own hold deadline at the advance's `now`.
            e.advance(advance_to + 3);
            assert_eq!(events(&mut e), vec![], "advance to {advance_to}");
            e.advance(advance_to + 4);
            assert_eq!(
                events(&mut e),
                vec![ev(1, "w", EventKind::Expired { token: 2 })]
            );
            assert_eq!(e.gauges(), (4, 0, 0, 0));
        }
    }

    #[test]
    fn a_wait_deadline_before_the_expiry_in_one_batch_times_out_first() {
        let mut e = engine();
        e.acquire(0, b"h", &req(b"a", X, None, Some(20)), 0); // expires at 21
        e.acquire(1, b"w", &req(b"a", X, Some(5), None), 0); // times out at 6
        e.acquire(2, b"v", &req(b"a", X, Some(50), None), 0); // would time out at 51
        e.advance(100);
        assert_eq!(
            events(&mut e),
            vec![
                ev(1, "w", EventKind::Timeout),
                ev(0, "h", EventKind::Expired { token: 1 }),
                ev(2, "v", granted(2, 1, false)),
            ]
        );
    }

    #[test]
    fn extend_moves_the_expiry() {
        let mut e = engine();
        e.acquire(0, b"h", &req(b"a", X, None, Some(10)), 0); // expires at 11
        assert_eq!(e.extend(0, b"a", 1, 50, 5), Ok(())); // now at 56
        assert_eq!(
            e.extend(0, b"a", 2, 50, 5),
            Err(FindError::NotHeld),
            "wrong token"
        );
        assert_eq!(
            e.extend(1, b"a", 1, 50, 5),
            Err(FindError::NotHeld),
            "not the owner"
        );
        assert_eq!(
            e.extend(0, b"b", 1, 50, 5),
            Err(FindError::NotHeld),
            "other name"
        );
        e.advance(11);
        e.advance(55);
        assert_eq!(events(&mut e), vec![]);
        assert!(e.next_wake().is_some_and(|t| t <= 56));
        // Shortening works too.
        assert_eq!(e.extend(0, b"a", 1, 0, 55), Ok(())); // now at 56
        e.advance(56);
        assert_eq!(
            events(&mut e),
            vec![ev(0, "h", EventKind::Expired { token: 1 })]
        );
        assert_eq!(
            e.extend(0, b"a", 1, 50, 57),
            Err(FindError::NotHeld),
            "expired"
        );
        // A hold without a deadline gets one.
        e.acquire(0, b"g", &forever(b"a", X), 60);
        assert_eq!(e.next_wake(), None);
        assert_eq!(e.extend(0, b"a", 2, 7, 60), Ok(()));
        e.advance(67);
        assert_eq!(events(&mut e), vec![]);
        e.advance(68);
        assert_eq!(
            events(&mut e),
            vec![ev(0, "g", EventKind::Expired { token: 2 })]
        );
    }

    #[test]
    fn cancel_ends_the_waits_with_that_tag_in_request_order() {
        let mut e = engine();
        e.acquire(0, b"h", &forever(b"a", X), 0);
        e.acquire(0, b"h", &forever(b"b", X), 0);
        for (tag, name) in [("t", b"a"), ("u", b"a"), ("t", b"b")] {
            assert_eq!(
                e.acquire(1, tag.as_bytes(), &req(name, X, Some(100), None), 1),
                Acquired::Queued
            );
        }
        let mut seen = Vec::new();
        assert_eq!(e.cancel(1, b"t", 2, |t| seen.push(t.to_vec())), 2);
        assert_eq!(seen, vec![b"t".to_vec(), b"t".to_vec()]);
        assert_eq!(e.waiters_on(b"a").collect::<Vec<_>>(), vec![1]);
        assert_eq!(counts(&e, b"b"), (1, 0));
        assert_eq!(
            events(&mut e),
            vec![],
            "a cancelled wait gets no event from the engine"
        );
        // Not waiting (any more, or another client's, or a hold's tag): 0, no calls.
        assert_eq!(e.cancel(1, b"t", 3, |_| panic!("nothing to cancel")), 0);
        assert_eq!(e.cancel(2, b"u", 3, |_| panic!("nothing to cancel")), 0);
        assert_eq!(e.cancel(0, b"h", 3, |_| panic!("nothing to cancel")), 0);
        // The cancelled waits' deadlines are gone: only "u" times out.
        e.advance(200);
        assert_eq!(events(&mut e), vec![ev(1, "u", EventKind::Timeout)]);
        assert_eq!(e.counters().timeouts_total, 1);
    }

    #[test]
    fn cancelling_the_head_exclusive_waiter_grants_the_shared_waiters_behind_it() {
        let mut e = engine();
        assert_eq!(
            e.acquire(0, b"s1", &forever(b"a", S), 0),
            Acquired::Granted {
                token: 1,
                holders: 1
            }
        );
        assert_eq!(e.acquire(1, b"x", &forever(b"a", X), 0), Acquired::Queued);
        assert_eq!(e.acquire(2, b"s2", &forever(b"a", S), 0), Acquired::Queued);
        assert_eq!(
            e.acquire(3, b"s3", &req(b"a", Mode::Shared { max: 3 }, None, None), 0),
            Acquired::Queued
        );
        assert_eq!(e.cancel(1, b"x", 1, |_| {}), 1);
        assert_eq!(
            events(&mut e),
            vec![
                ev(2, "s2", granted(2, 2, true)),
                ev(3, "s3", granted(3, 3, true))
            ]
        );
        assert_eq!(
            e.holds_on(b"a").collect::<Vec<_>>(),
            vec![(1, 0), (2, 2), (3, 3)]
        );
        assert_eq!(e.inspect(b"a").unwrap().1, None, "shared: no single holder");
    }

    #[test]
    fn reset_cancels_waits_then_releases_holds() {
        let mut e = engine();
        e.acquire(0, b"h1", &forever(b"a", X), 0);
        e.acquire(0, b"h2", &forever(b"b", S), 0);
        e.acquire(2, b"o1", &forever(b"c", X), 0);
        e.acquire(2, b"o2", &forever(b"d", X), 0);
        e.acquire(0, b"q1", &req(b"c", X, Some(30), None), 0);
        e.acquire(0, b"q2", &forever(b"d", S), 0);
        e.acquire(1, b"w", &forever(b"a", S), 0);
        let mut tags = Vec::new();
        assert_eq!(e.reset(0, 1, |t| tags.push(t.to_vec())), (2, 2));
        assert_eq!(tags, vec![b"q1".to_vec(), b"q2".to_vec()]);
        assert_eq!(events(&mut e), vec![ev(1, "w", granted(5, 1, true))]);
        assert_eq!(
            e.gauges(),
            (4, 3, 3, 0),
            "a (client 1), c and d (client 2); b is gone"
        );
        assert_eq!(e.reset(0, 2, |_| panic!("nothing left")), (0, 0));
        e.advance(100);
        assert_eq!(events(&mut e), vec![], "q1's wait deadline was cancelled");
        assert_eq!(
            e.client(0).map(Client::addr),
            Some(addr()),
            "reset keeps the connection"
        );
    }

    #[test]
    fn disconnect_releases_holds_cancels_waits_and_counts() {
        let mut e = engine();
        e.acquire(0, b"h1", &forever(b"a", X), 0); // token 1
        e.acquire(0, b"h2", &req(b"b", S, None, Some(5)), 0); // token 2
        e.acquire(1, b"o", &forever(b"c", X), 0); // token 3
        assert_eq!(e.acquire(0, b"q", &forever(b"c", X), 0), Acquired::Queued);
        assert_eq!(e.acquire(1, b"w", &forever(b"a", X), 0), Acquired::Queued);
        assert_eq!(
            e.acquire(2, b"t", &req(b"a", X, Some(0), None), 0),
            Acquired::Timeout
        );
        assert_eq!(e.acquire(2, b"v", &forever(b"b", X), 0), Acquired::Queued);
        assert_eq!(e.disconnect(0, 3), 2);
        assert_eq!(
            events(&mut e),
            vec![
                ev(1, "w", granted(4, 1, false)),
                ev(2, "v", granted(5, 1, false))
            ]
        );
        assert!(e.client(0).is_none());
        assert_eq!(
            e.clients().map(|(id, _, n)| (id, n)).collect::<Vec<_>>(),
            vec![(1, (2, 0)), (2, (1, 0)), (3, (0, 0)),]
        );
        assert_eq!(e.gauges(), (3, 3, 3, 0));
        e.advance(100);
        assert_eq!(events(&mut e), vec![], "h2's hold deadline was cancelled");
        let c = e.counters();
        assert_eq!(
            c,
            Counters {
                connections_total: 4,
                grants_total: 5,
                timeouts_total: 1,
                expired_total: 0,
                released_on_disconnect_total: 2,
            }
        );
        // The slot can be reused.
        e.connect(0, addr());
        assert_eq!(
            e.acquire(0, b"n", &forever(b"d", X), 101),
            Acquired::Granted {
                token: 6,
                holders: 1
            }
        );
        assert_eq!((e.counters().connections_total, e.gauges().0), (5, 4));
    }

    #[test]
    fn max_pending_counts_holds_and_waits() {
        let mut e = engine_with(2);
        e.acquire(0, b"1", &forever(b"a", X), 0);
        assert_eq!(e.acquire(0, b"2", &forever(b"a", X), 0), Acquired::Queued);
        assert_eq!(e.acquire(0, b"3", &forever(b"b", X), 0), Acquired::Limit);
        assert_eq!(
            e.acquire(0, b"3", &req(b"b", X, Some(0), None), 0),
            Acquired::Limit
        );
        assert_eq!(
            e.acquire(1, b"1", &forever(b"b", X), 0),
            Acquired::Granted {
                token: 2,
                holders: 1
            }
        );
        assert_eq!(e.gauges(), (4, 2, 2, 1), "a refusal leaves no trace");
        // Releasing the hold grants the wait: 1 pending (the new hold), room for one more.
        assert_eq!(e.release(0, b"a", None, 1), Ok(()));
        assert_eq!(events(&mut e), vec![ev(0, "2", granted(3, 1, false))]);
        assert_eq!(
            e.acquire(0, b"3", &forever(b"c", X), 1),
            Acquired::Granted {
                token: 4,
                holders: 1
            }
        );
        assert_eq!(e.acquire(0, b"4", &forever(b"d", X), 1), Acquired::Limit);
        assert_eq!(e.counters().grants_total, 4, "a refusal is not a grant");
    }

    #[test]
    fn wait_zero_on_a_busy_lock_is_an_immediate_timeout() {
        let mut e = engine();
        let try_once = req(b"a", S, Some(0), Some(10));
        assert_eq!(
            e.acquire(0, b"1", &try_once, 0),
            Acquired::Granted {
                token: 1,
                holders: 1
            }
        );
        assert_eq!(
            e.acquire(1, b"2", &try_once, 0),
            Acquired::Granted {
                token: 2,
                holders: 2
            }
        );
        e.acquire(2, b"x", &forever(b"a", X), 0);
        // Compatible with the holds, but an exclusive waits ahead of it.
        assert_eq!(e.acquire(3, b"3", &try_once, 0), Acquired::Timeout);
        assert_eq!(
            e.acquire(3, b"4", &req(b"a", X, Some(0), None), 0),
            Acquired::Timeout
        );
        assert_eq!(e.counters().timeouts_total, 2);
        assert_eq!(counts(&e, b"a"), (2, 1));
        assert_eq!(
            events(&mut e),
            vec![],
            "a try is answered by its return value only"
        );
    }

    #[test]
    fn queue_limit_refuses_when_that_many_wait() {
        let mut e = engine();
        e.acquire(0, b"h", &forever(b"a", X), 0);
        let q1 = AcquireRequest {
            queue: Some(1),
            ..forever(b"a", X)
        };
        assert_eq!(e.acquire(1, b"1", &q1, 0), Acquired::Queued);
        assert_eq!(e.acquire(2, b"2", &q1, 0), Acquired::QueueFull);
        let q2 = AcquireRequest {
            queue: Some(2),
            ..forever(b"a", S)
        };
        assert_eq!(e.acquire(2, b"2", &q2, 0), Acquired::Queued);
        assert_eq!(e.acquire(3, b"3", &q2, 0), Acquired::QueueFull);
        // A free lock is granted whatever the limit.
        let q0 = AcquireRequest {
            queue: Some(0),
            ..forever(b"b", X)
        };
        assert_eq!(
            e.acquire(3, b"3", &q0, 0),
            Acquired::Granted {
                token: 2,
                holders: 1
            }
        );
        assert_eq!(e.gauges(), (4, 2, 2, 2));
        let c = e.counters();
        assert_eq!((c.grants_total, c.timeouts_total), (2, 0));
    }

    /// Client 0 waits twice on one lock: an exclusive request, and a shared one that the
    /// current (shared) hold would admit once the exclusive is gone. RESET must cancel
    /// both: the spec's "cancel every wait", `OK 0 2`.
    #[test]
    fn reset_cancels_a_clients_second_wait_on_the_same_lock() {
        let mut e = engine();
        e.acquire(1, b"h", &forever(b"a", S), 0);
        assert_eq!(e.acquire(0, b"w1", &forever(b"a", X), 0), Acquired::Queued);
        assert_eq!(e.acquire(0, b"w2", &forever(b"a", S), 0), Acquired::Queued);
        let mut tags = Vec::new();
        let got = e.reset(0, 1, |t| tags.push(t.to_vec()));
        assert_eq!(
            events(&mut e),
            vec![],
            "nothing is granted to a wait being cancelled"
        );
        assert_eq!(got, (0, 2), "(released, cancelled): client 0 held nothing");
        assert_eq!(tags, vec![b"w1".to_vec(), b"w2".to_vec()]);
        assert_eq!(e.counters().grants_total, 1);
        assert_eq!(e.holds_on(b"a").collect::<Vec<_>>(), vec![(1, 1)]);
    }

    /// Same situation, on disconnect: no event for the closing client, nothing counted as
    /// released on disconnect.
    #[test]
    fn disconnect_cancels_a_clients_second_wait_on_the_same_lock() {
        let mut e = engine();
        e.acquire(1, b"h", &forever(b"a", S), 0);
        e.acquire(0, b"w1", &forever(b"a", X), 0);
        e.acquire(0, b"w2", &forever(b"a", S), 0);
        assert_eq!(e.disconnect(0, 1), 0, "client 0 held nothing");
        assert_eq!(events(&mut e), vec![]);
        let c = e.counters();
        assert_eq!((c.grants_total, c.released_on_disconnect_total), (1, 0));
    }

    /// CANCEL of a request id that two pending waits share (the spec allows reusing ids):
    /// both are pending, so both are cancelled; neither is granted.
    #[test]
    fn cancel_of_a_shared_tag_never_grants_one_of_the_cancelled_waits() {
        let mut e = engine();
        e.acquire(1, b"h", &forever(b"a", S), 0);
        e.acquire(0, b"t", &forever(b"a", X), 0);
        e.acquire(0, b"t", &forever(b"a", S), 0);
        assert_eq!(e.cancel(0, b"t", 1, |_| {}), 2);
        assert_eq!(
            events(&mut e),
            vec![],
            "a wait being cancelled is not granted"
        );
        assert_eq!(e.counters().grants_total, 1);
        assert_eq!(e.holds_on(b"a").collect::<Vec<_>>(), vec![(1, 1)]);
    }

    // ---------------------------------------------------------------- model test

    const CLIENTS: u32 = 4;
    const NAMES: [&[u8]; 3] = [b"a", b"b", b"c"];
    const MAX_PENDING: u32 = 4;

    /// A request's id in the test; its tag is the decimal id, so tags are unique.
    type Rid = u64;

    fn tag_of(rid: Rid) -> Tag {
        Tag::from_slice(rid.to_string().as_bytes())
    }

    fn rid_of(tag: &[u8]) -> Rid {
        std::str::from_utf8(tag).unwrap().parse().unwrap()
    }

    /// A live request in the reference model.
    #[derive(Clone, Copy, Debug)]
    struct MReq {
        client: ClientId,
        name: usize,
        mode: Mode,
        hold: Option<u32>,
        /// `Some` once held; the token comes from the engine (checked to increase).
        token: Option<u64>,
        /// The running deadline (wait while waiting, hold while held) and the sequence
        /// number of its timer: equal deadlines fire in timer creation order.
        timer: Option<(u64, u64)>,
    }

    /// An event the model expects; a grant's token is checked separately (only its
    /// order is specified).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Want {
        Granted { holders: u32, shared: bool },
        Timeout,
        Expired { token: u64 },
    }

    /// The spec, naively: one FIFO and one hold list per name, deadlines as numbers.
    struct EModel {
        reqs: BTreeMap<Rid, MReq>,
        holds: Vec<Vec<Rid>>,
        waiters: Vec<VecDeque<Rid>>,
        connected: Vec<bool>,
        seq: u64,
        counters: Counters,
    }

    impl EModel {
        fn compatible(&self, l: usize, mode: Mode) -> bool {
            let holds = &self.holds[l];
            match mode {
                Mode::Exclusive => holds.is_empty(),
                Mode::Shared { max } => {
                    holds.iter().all(|h| self.reqs[h].mode != Mode::Exclusive)
                        && (max == 0 || holds.len() < max as usize)
                }
            }
        }

        fn timer(&mut self, now: u64, ms: Option<u32>) -> Option<(u64, u64)> {
            let ms = ms?;
            self.seq += 1;
            Some((now + u64::from(ms) + 1, self.seq))
        }

        fn grant(&mut self, l: usize, now: u64, out: &mut Vec<(Rid, Want)>) {
            while let Some(&head) = self.waiters[l].front() {
                let mode = self.reqs[&head].mode;
                if !self.compatible(l, mode) {
                    break;
                }
                self.waiters[l].pop_front();
                self.holds[l].push(head);
                self.counters.grants_total += 1;
                let hold = self.reqs[&head].hold;
                let timer = self.timer(now, hold);
                let r = self.reqs.get_mut(&head).unwrap();
                r.timer = timer;
                r.token = Some(0); // the engine's token is filled in from its event
                let holders = self.holds[l].len() as u32;
                out.push((
                    head,
                    Want::Granted {
                        holders,
                        shared: mode != Mode::Exclusive,
                    },
                ));
            }
        }

        /// Takes a request off its lock's lists (no grants).
        fn unlink(&mut self, rid: Rid) -> MReq {
            let r = self.reqs.remove(&rid).unwrap();
            self.holds[r.name].retain(|&h| h != rid);
            self.waiters[r.name].retain(|&w| w != rid);
            r
        }

        fn remove(&mut self, rid: Rid, now: u64, out: &mut Vec<(Rid, Want)>) {
            let r = self.unlink(rid);
            self.grant(r.name, now, out);
        }

        /// A client's (holds in grant order, waits in request order).
        fn pending(&self, c: ClientId) -> (Vec<Rid>, Vec<Rid>) {
            let mine = self.reqs.iter().filter(|(_, r)| r.client == c);
            let (mut holds, waits): (Vec<_>, Vec<_>) = mine.partition(|(_, r)| r.token.is_some());
            holds.sort_by_key(|(_, r)| r.token);
            let ids = |v: Vec<(&Rid, &MReq)>| v.into_iter().map(|(&id, _)| id).collect();
            (ids(holds), ids(waits))
        }

        fn find_hold(&self, c: ClientId, l: usize, token: Option<u64>) -> Result<Rid, FindError> {
            let mine: Vec<Rid> = self.holds[l]
                .iter()
                .copied()
                .filter(|h| {
                    let r = &self.reqs[h];
                    r.client == c && token.is_none_or(|t| r.token == Some(t))
                })
                .collect();
            match mine[..] {
                [] => Err(FindError::NotHeld),
                [rid] => Ok(rid),
                _ => Err(FindError::TokenRequired),
            }
        }

        /// Cancels every wait of `c` (as one step: none of them can be granted), then
        /// releases its holds in grant order. Returns (released, cancelled waits).
        fn reset(&mut self, c: ClientId, now: u64, out: &mut Vec<(Rid, Want)>) -> (u32, Vec<Rid>) {
            let (holds, waits) = self.pending(c);
            let mut names: Vec<usize> = waits.iter().map(|&w| self.unlink(w).name).collect();
            names.sort_unstable();
            names.dedup();
            for l in names {
                self.grant(l, now, out);
            }
            for &h in &holds {
                self.remove(h, now, out);
            }
            (holds.len() as u32, waits)
        }

        /// Fires every deadline `<= now`, earliest first, equal ones in creation order.
        fn advance(&mut self, now: u64, out: &mut Vec<(Rid, Want)>) {
            let mut due: Vec<(u64, u64, Rid, bool)> = self
                .reqs
                .iter()
                .filter_map(|(&id, r)| {
                    let (d, seq) = r.timer?;
                    (d <= now).then_some((d, seq, id, r.token.is_none()))
                })
                .collect();
            due.sort_unstable();
            for (_, _, rid, was_waiting) in due {
                match (was_waiting, self.reqs[&rid].token) {
                    (true, None) => {
                        self.counters.timeouts_total += 1;
                        out.push((rid, Want::Timeout));
                    }
                    // Granted earlier in this batch: it outlived its wait deadline.
                    (true, Some(_)) => continue,
                    (false, Some(token)) => {
                        self.counters.expired_total += 1;
                        out.push((rid, Want::Expired { token }));
                    }
                    (false, None) => unreachable!("a hold deadline on a wait"),
                }
                self.remove(rid, now, out);
            }
        }
    }

    /// What the test knows of a request from the engine's answers and events alone,
    /// independently of the model: its state and running deadline.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Life {
        Queued {
            deadline: Option<u64>,
        },
        Held {
            name: usize,
            mode: Mode,
            token: u64,
            deadline: Option<u64>,
        },
        Over,
    }

    /// How often interesting cases came up, to check the mix exercises them.
    #[derive(Default, Debug)]
    struct ESeen {
        /// Granted, Queued, Timeout, QueueFull, Limit.
        acquired: [u64; 5],
        grant_events: u64,
        timeouts: u64,
        expired: u64,
        cancelled: u64,
        extended: u64,
        released: u64,
        /// Grants of a request whose own wait deadline had passed (same batch).
        granted_at_own_deadline: u64,
    }

    struct Sim {
        e: Engine,
        m: EModel,
        life: BTreeMap<Rid, Life>,
        /// The client of every request ever made, by id.
        owner: Vec<ClientId>,
        now: u64,
        last_token: u64,
        ctx: String,
        seen: ESeen,
    }

    impl Sim {
        fn new() -> Self {
            let mut e = Engine::new(Fence::starting_at(1), 0, MAX_PENDING);
            for c in 0..CLIENTS {
                e.connect(c, addr());
            }
            Sim {
                e,
                m: EModel {
                    reqs: BTreeMap::new(),
                    holds: vec![Vec::new(); NAMES.len()],
                    waiters: vec![VecDeque::new(); NAMES.len()],
                    connected: vec![true; CLIENTS as usize],
                    seq: 0,
                    counters: Counters {
                        connections_total: u64::from(CLIENTS),
                        ..Counters::default()
                    },
                },
                life: BTreeMap::new(),
                owner: Vec::new(),
                now: 0,
                last_token: 0,
                ctx: String::new(),
                seen: ESeen::default(),
            }
        }

        fn token(&mut self, token: u64) {
            let last = self.last_token;
            assert!(token > last, "{}: token {token} after {last}", self.ctx);
            self.last_token = token;
        }

        /// The holds on `l` the test knows of, from the engine's answers alone.
        fn known_holds(&self, l: usize) -> Vec<(Mode, u64)> {
            self.life
                .values()
                .filter_map(|v| match *v {
                    Life::Held {
                        name, mode, token, ..
                    } if name == l => Some((mode, token)),
                    _ => None,
                })
                .collect()
        }

        /// Never an exclusive hold together with any other hold.
        fn check_exclusion(&self, l: usize) {
            let holds = self.known_holds(l);
            if holds.iter().any(|h| h.0 == Mode::Exclusive) {
                assert_eq!(
                    holds.len(),
                    1,
                    "{}: conflicting holds on {l}: {holds:?}",
                    self.ctx
                );
            }
        }

        /// Takes the engine's events and checks them against `want` (in any order across
        /// requests: each request gets at most one event per call) and against `life`.
        /// `exact_holders`: the holds the test knows of are exactly the lock's holds.
        fn events(&mut self, want: Vec<(Rid, Want)>, exact_holders: bool) {
            let got = events(&mut self.e);
            let ctx = self.ctx.clone();
            let mut got_m: Vec<(Rid, ClientId, Want)> = got
                .iter()
                .map(|ev| {
                    let kind = match ev.kind {
                        EventKind::Granted {
                            holders, shared, ..
                        } => Want::Granted { holders, shared },
                        EventKind::Timeout => Want::Timeout,
                        EventKind::Expired { token } => Want::Expired { token },
                    };
                    (rid_of(&ev.tag), ev.client, kind)
                })
                .collect();
            got_m.sort_by_key(|g| g.0);
            let mut want_m: Vec<(Rid, ClientId, Want)> = want
                .iter()
                .map(|&(rid, w)| (rid, self.owner[rid as usize], w))
                .collect();
            want_m.sort_by_key(|w| w.0);
            assert_eq!(got_m, want_m, "{ctx}: events (request, client, kind)");
            for ev in &got {
                let rid = rid_of(&ev.tag);
                let client = ev.client as usize;
                assert!(
                    self.m.connected[client],
                    "{ctx}: {ev:?} for a closed client"
                );
                let next = match (ev.kind, self.life[&rid]) {
                    (
                        EventKind::Granted {
                            token,
                            holders,
                            shared,
                        },
                        Life::Queued { deadline },
                    ) => {
                        self.token(token);
                        let r = self.m.reqs.get_mut(&rid).unwrap();
                        r.token = Some(token);
                        let r = *r;
                        if let Mode::Shared { max } = r.mode {
                            assert!(shared && (max == 0 || holders <= max), "{ctx}: {ev:?}");
                        }
                        self.seen.grant_events += 1;
                        if deadline.is_some_and(|d| d <= self.now) {
                            self.seen.granted_at_own_deadline += 1;
                        }
                        let deadline = r.hold.map(|h| self.now + u64::from(h) + 1);
                        Life::Held {
                            name: r.name,
                            mode: r.mode,
                            token,
                            deadline,
                        }
                    }
                    (EventKind::Timeout, Life::Queued { deadline: Some(d) }) => {
                        assert!(self.now >= d, "{ctx}: {rid} timed out before {d}");
                        self.seen.timeouts += 1;
                        Life::Over
                    }
                    (
                        EventKind::Expired { token },
                        Life::Held {
                            token: t,
                            deadline: Some(d),
                            ..
                        },
                    ) => {
                        assert_eq!(token, t, "{ctx}: expired token of {rid}");
                        assert!(self.now >= d, "{ctx}: hold {rid} expired before {d}");
                        self.seen.expired += 1;
                        Life::Over
                    }
                    (kind, life) => panic!("{ctx}: {kind:?} for request {rid} in state {life:?}"),
                };
                self.life.insert(rid, next);
                if let (Life::Held { name, .. }, EventKind::Granted { holders, .. }) =
                    (next, ev.kind)
                {
                    self.check_exclusion(name);
                    if exact_holders {
                        let n = self.known_holds(name).len();
                        assert_eq!(holders as usize, n, "{ctx}: holders in {ev:?}");
                    }
                }
            }
        }

        fn acquire(
            &mut self,
            c: ClientId,
            l: usize,
            mode: Mode,
            wait: Option<u32>,
            hold: Option<u32>,
            queue: Option<u32>,
        ) {
            let rid = self.owner.len() as Rid;
            self.owner.push(c);
            let now = self.now;
            let (holds, waits) = self.m.pending(c);
            let waiting = self.m.waiters[l].len();
            let want = if (holds.len() + waits.len()) as u32 >= MAX_PENDING {
                Acquired::Limit
            } else if waiting == 0 && self.m.compatible(l, mode) {
                let holders = self.m.holds[l].len() as u32 + 1;
                Acquired::Granted { token: 0, holders }
            } else if wait == Some(0) {
                Acquired::Timeout
            } else if queue.is_some_and(|q| waiting >= q as usize) {
                Acquired::QueueFull
            } else {
                Acquired::Queued
            };
            let req = AcquireRequest {
                name: NAMES[l],
                mode,
                wait,
                hold,
                queue,
            };
            let got = self.e.acquire(c, &tag_of(rid), &req, now);
            let (got_m, token) = match got {
                Acquired::Granted { token, holders } => {
                    (Acquired::Granted { token: 0, holders }, token)
                }
                other => (other, 0),
            };
            assert_eq!(got_m, want, "{}: acquire as request {rid}", self.ctx);
            let mut r = MReq {
                client: c,
                name: l,
                mode,
                hold,
                token: None,
                timer: None,
            };
            let slot = match want {
                Acquired::Granted { .. } => 0,
                Acquired::Queued => 1,
                Acquired::Timeout => 2,
                Acquired::QueueFull => 3,
                Acquired::Limit => 4,
            };
            self.seen.acquired[slot] += 1;
            match want {
                Acquired::Granted { .. } => {
                    self.token(token);
                    self.m.counters.grants_total += 1;
                    r.token = Some(token);
                    r.timer = self.m.timer(now, hold);
                    self.m.holds[l].push(rid);
                    let deadline = hold.map(|h| now + u64::from(h) + 1);
                    self.life.insert(
                        rid,
                        Life::Held {
                            name: l,
                            mode,
                            token,
                            deadline,
                        },
                    );
                    self.check_exclusion(l);
                }
                Acquired::Queued => {
                    r.timer = self.m.timer(now, wait);
                    self.m.waiters[l].push_back(rid);
                    let deadline = wait.map(|w| now + u64::from(w) + 1);
                    self.life.insert(rid, Life::Queued { deadline });
                }
                Acquired::Timeout => self.m.counters.timeouts_total += 1,
                Acquired::QueueFull | Acquired::Limit => {}
            }
            if r.timer.is_some() || r.token.is_some() || want == Acquired::Queued {
                self.m.reqs.insert(rid, r);
            }
            self.events(Vec::new(), true);
        }

        fn release(&mut self, c: ClientId, l: usize, token: Option<u64>) {
            let want = self.m.find_hold(c, l, token);
            let got = self.e.release(c, NAMES[l], token, self.now);
            assert_eq!(
                got,
                want.map(|_| ()),
                "{}: release, model says {want:?}",
                self.ctx
            );
            let mut out = Vec::new();
            if let Ok(rid) = want {
                self.seen.released += 1;
                self.m.remove(rid, self.now, &mut out);
                self.life.insert(rid, Life::Over);
            }
            self.events(out, true);
        }

        fn extend(&mut self, c: ClientId, l: usize, token: u64, hold: u32) {
            let want = self.m.find_hold(c, l, Some(token));
            let got = self.e.extend(c, NAMES[l], token, hold, self.now);
            assert_eq!(
                got,
                want.map(|_| ()),
                "{}: extend, model says {want:?}",
                self.ctx
            );
            if let Ok(rid) = want {
                self.seen.extended += 1;
                let timer = self.m.timer(self.now, Some(hold));
                let r = self.m.reqs.get_mut(&rid).unwrap();
                r.hold = Some(hold);
                r.timer = timer;
                let d = self.now + u64::from(hold) + 1;
                let Some(Life::Held { deadline, .. }) = self.life.get_mut(&rid) else {
                    panic!("{}: extended {rid}, not held", self.ctx)
                };
                *deadline = Some(d);
            }
            self.events(Vec::new(), true);
        }

        fn cancel(&mut self, c: ClientId, rid: Rid) {
            let mine = self
                .m
                .reqs
                .get(&rid)
                .is_some_and(|r| r.client == c && r.token.is_none());
            let want: Vec<Rid> = if mine { vec![rid] } else { vec![] };
            let mut called = Vec::new();
            let n = self
                .e
                .cancel(c, &tag_of(rid), self.now, |t| called.push(rid_of(t)));
            assert_eq!(
                (n as usize, &called),
                (want.len(), &want),
                "{}: cancel",
                self.ctx
            );
            let mut out = Vec::new();
            for &w in &want {
                self.seen.cancelled += 1;
                self.m.remove(w, self.now, &mut out);
                self.life.insert(w, Life::Over);
            }
            self.events(out, true);
        }

        /// Ends every request of `c` in the test's own records.
        fn forget(&mut self, c: ClientId) {
            for (rid, life) in self.life.iter_mut() {
                if self.owner[*rid as usize] == c {
                    *life = Life::Over;
                }
            }
        }

        fn reset(&mut self, c: ClientId) {
            let mut out = Vec::new();
            let (released, waits) = self.m.reset(c, self.now, &mut out);
            let mut called = Vec::new();
            let got = self.e.reset(c, self.now, |t| called.push(rid_of(t)));
            let want = (released, waits.len() as u32);
            assert_eq!((got, &called), (want, &waits), "{}: reset", self.ctx);
            self.forget(c);
            self.events(out, false);
        }

        fn disconnect(&mut self, c: ClientId) {
            let mut out = Vec::new();
            let (released, _) = self.m.reset(c, self.now, &mut out);
            self.m.counters.released_on_disconnect_total += u64::from(released);
            self.m.connected[c as usize] = false;
            let got = self.e.disconnect(c, self.now);
            assert_eq!(got, released, "{}: disconnect", self.ctx);
            self.forget(c);
            self.events(out, false);
        }

        fn connect(&mut self, c: ClientId) {
            self.e.connect(c, addr());
            self.m.connected[c as usize] = true;
            self.m.counters.connections_total += 1;
        }

        fn advance(&mut self, dt: u64) {
            self.now += dt;
            let mut out = Vec::new();
            self.m.advance(self.now, &mut out);
            self.e.advance(self.now);
            self.events(out, true);
            // Nothing due is left for a later advance.
            for (rid, life) in &self.life {
                let d = match *life {
                    Life::Queued { deadline } | Life::Held { deadline, .. } => deadline,
                    Life::Over => None,
                };
                assert!(
                    d.is_none_or(|d| d > self.now),
                    "{}: {rid} ({life:?}) did not fire by {}",
                    self.ctx,
                    self.now
                );
            }
        }

        /// Everything observable, against the model.
        fn compare(&self) {
            let (e, m, ctx) = (&self.e, &self.m, &self.ctx);
            let (mut locks, mut holds, mut waits) = (0, 0, 0);
            let mut want_locks = Vec::new();
            for (l, name) in NAMES.iter().enumerate() {
                let want_holds: Vec<(u64, ClientId)> = m.holds[l]
                    .iter()
                    .map(|h| (m.reqs[h].token.unwrap(), m.reqs[h].client))
                    .collect();
                let want_waiters: Vec<ClientId> =
                    m.waiters[l].iter().map(|w| m.reqs[w].client).collect();
                assert_eq!(
                    e.holds_on(name).collect::<Vec<_>>(),
                    want_holds,
                    "{ctx}: holds on {l}"
                );
                assert_eq!(
                    e.waiters_on(name).collect::<Vec<_>>(),
                    want_waiters,
                    "{ctx}: waiters on {l}"
                );
                holds += want_holds.len();
                waits += want_waiters.len();
                if want_holds.is_empty() {
                    assert!(want_waiters.is_empty(), "{ctx}: model stalls on {l}");
                    assert_eq!(e.inspect(name), None, "{ctx}: inspect {l}");
                    continue;
                }
                locks += 1;
                let exclusive = m.reqs[&m.holds[l][0]].mode == Mode::Exclusive;
                let info = LockInfo {
                    exclusive,
                    holders: want_holds.len() as u32,
                    waiters: want_waiters.len() as u32,
                };
                let (token, client) = want_holds[0];
                let holder = exclusive.then_some(Holder { token, client });
                let got = e.inspect(name);
                assert_eq!(got.as_ref(), Some(&(info, holder)), "{ctx}: inspect {l}");
                want_locks.push((name.to_vec(), (exclusive, want_holds.len() as u32)));
            }
            let mut got_locks: Vec<(Vec<u8>, (bool, u32))> = e
                .locks()
                .map(|(n, i)| (n.to_vec(), (i.exclusive, i.holders)))
                .collect();
            got_locks.sort();
            assert_eq!(got_locks, want_locks, "{ctx}: locks()");
            let connected = m.connected.iter().filter(|&&c| c).count();
            assert_eq!(
                e.gauges(),
                (connected, locks, holds, waits),
                "{ctx}: gauges"
            );
            assert_eq!(e.counters(), m.counters, "{ctx}: counters");
            let clients: Vec<(ClientId, (u32, u32))> =
                e.clients().map(|(c, _, n)| (c, n)).collect();
            let want_clients: Vec<(ClientId, (u32, u32))> = (0..CLIENTS)
                .filter(|&c| m.connected[c as usize])
                .map(|c| {
                    let (h, w) = m.pending(c);
                    (c, (h.len() as u32, w.len() as u32))
                })
                .collect();
            assert_eq!(clients, want_clients, "{ctx}: clients()");
            let first = m.reqs.values().filter_map(|r| r.timer).map(|t| t.0).min();
            match (e.next_wake(), first) {
                (None, None) => {}
                (Some(t), Some(d)) => assert!(t <= d, "{ctx}: next_wake {t} after deadline {d}"),
                (got, _) => panic!("{ctx}: next_wake {got:?}, first deadline {first:?}"),
            }
        }
    }

    fn pick<T: Copy>(rng: &mut Rng, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize])
    }

    /// Random operations against [`EModel`]. Unless `self_queue`, a client never has two
    /// waits on one lock at once (see the ignored tests above: that case is buggy).
    fn engine_model(seeds: std::ops::Range<u64>, ops: usize, self_queue: bool) {
        let mut seen = ESeen::default();
        for seed in seeds {
            let mut rng = Rng::new(seed);
            let mut sim = Sim::new();
            for step in 0..ops {
                let c = rng.below(u64::from(CLIENTS)) as ClientId;
                let l = rng.below(NAMES.len() as u64) as usize;
                let r = rng.below(100);
                sim.ctx = format!(
                    "seed {seed} step {step} now {} client {c} name {l}",
                    sim.now
                );
                if !sim.m.connected[c as usize] {
                    sim.ctx += " connect";
                    sim.connect(c);
                    sim.compare();
                    continue;
                }
                match r {
                    0..=39 => {
                        let mode = if rng.chance(40) {
                            Mode::Exclusive
                        } else {
                            Mode::Shared {
                                max: rng.below(4) as u32,
                            }
                        };
                        let mut wait = match rng.below(10) {
                            0 | 1 => None,
                            2 => Some(0),
                            _ => Some(rng.below(50) as u32),
                        };
                        let hold = (!rng.chance(30)).then(|| rng.below(50) as u32);
                        let queue = rng.chance(25).then(|| rng.below(3) as u32);
                        let waits_here = sim.m.waiters[l].iter().any(|w| sim.m.reqs[w].client == c);
                        if waits_here && !self_queue {
                            wait = Some(0); // a try: it cannot queue
                        }
                        sim.ctx += &format!(
                            " acquire {mode:?} wait {wait:?} hold {hold:?} queue {queue:?}"
                        );
                        sim.acquire(c, l, mode, wait, hold, queue);
                    }
                    40..=54 => {
                        let held: Vec<Rid> = sim.m.holds.iter().flatten().copied().collect();
                        let (c, l, token) = match pick(&mut rng, &held) {
                            Some(h) if rng.chance(75) => {
                                let r = sim.m.reqs[&h];
                                (r.client, r.name, rng.chance(60).then(|| r.token.unwrap()))
                            }
                            _ => (c, l, rng.chance(50).then(|| rng.below(sim.last_token + 2))),
                        };
                        sim.ctx += &format!(" release client {c} name {l} token {token:?}");
                        sim.release(c, l, token);
                    }
                    55..=61 => {
                        let held: Vec<Rid> = sim.m.holds.iter().flatten().copied().collect();
                        let (c, l, token) = match pick(&mut rng, &held) {
                            Some(h) if rng.chance(80) => {
                                let r = sim.m.reqs[&h];
                                (r.client, r.name, r.token.unwrap())
                            }
                            _ => (c, l, rng.below(sim.last_token + 2)),
                        };
                        let hold = rng.below(50) as u32;
                        sim.ctx +=
                            &format!(" extend client {c} name {l} token {token} hold {hold}");
                        sim.extend(c, l, token, hold);
                    }
                    62..=68 => {
                        let waiting: Vec<Rid> = sim.m.waiters.iter().flatten().copied().collect();
                        let (c, rid) = match pick(&mut rng, &waiting) {
                            Some(w) if rng.chance(75) => (sim.m.reqs[&w].client, w),
                            _ => (c, rng.below(sim.owner.len() as u64 + 1)),
                        };
                        sim.ctx += &format!(" cancel client {c} request {rid}");
                        sim.cancel(c, rid);
                    }
                    69..=70 => {
                        sim.ctx += " reset";
                        sim.reset(c);
                    }
                    71..=72 => {
                        sim.ctx += " disconnect";
                        sim.disconnect(c);
                    }
                    73..=96 => {
                        let dt = rng.below(31);
                        sim.ctx += &format!(" advance {dt}");
                        sim.advance(dt);
                    }
                    _ => {
                        // Time passes without an advance (the poll loop was busy).
                        sim.now += rng.below(31);
                    }
                }
                sim.compare();
            }
            for c in 0..CLIENTS {
                if sim.m.connected[c as usize] {
                    sim.ctx = format!("seed {seed} final disconnect of {c}");
                    sim.disconnect(c);
                    sim.compare();
                }
            }
            let open: Vec<_> = sim.life.iter().filter(|(_, l)| **l != Life::Over).collect();
            assert!(
                open.is_empty(),
                "seed {seed}: requests without an end: {open:?}"
            );
            assert_eq!(sim.e.gauges(), (0, 0, 0, 0), "seed {seed}");
            let s = &sim.seen;
            for (i, n) in s.acquired.iter().enumerate() {
                seen.acquired[i] += n;
            }
            seen.grant_events += s.grant_events;
            seen.timeouts += s.timeouts;
            seen.expired += s.expired;
            seen.cancelled += s.cancelled;
            seen.extended += s.extended;
            seen.released += s.released;
            seen.granted_at_own_deadline += s.granted_at_own_deadline;
        }
        eprintln!("engine model: {seen:?}");
        assert!(seen.acquired.iter().all(|&n| n > 100), "{seen:?}");
        let s = &seen;
        let counts = [
            s.grant_events,
            s.timeouts,
            s.expired,
            s.cancelled,
            s.extended,
            s.released,
        ];
        assert!(counts.iter().all(|&n| n > 100), "{seen:?}");
        assert!(seen.granted_at_own_deadline > 0, "{seen:?}");
    }

    #[test]
    fn model() {
        engine_model(0..20, 2000, false);
    }

    /// The same with clients queueing twice on one lock, which `reset` and `disconnect`
    /// get wrong (see `reset_cancels_a_clients_second_wait_on_the_same_lock`).
    #[test]
    fn model_with_clients_queueing_twice_on_one_lock() {
        engine_model(0..20, 2000, true);
    }
}

#[cfg(test)]
mod size_budget {
    /// The memory per hold that PERF.md's "1M held locks" figure rests on: a claim (in
    /// its slab), a lock (in its slab) and an index slot. Growing either struct is a
    /// decision to take on purpose, with PERF.md updated.
    #[test]
    fn claim_and_lock_stay_within_their_budget() {
        let claim = std::mem::size_of::<crate::table::Claim<super::Pending>>();
        let lock = crate::table::lock_size();
        assert!(claim <= 96, "a claim grew to {claim} bytes");
        assert!(lock <= 64, "a lock grew to {lock} bytes");
        assert_eq!(
            std::mem::size_of::<super::Tag>(),
            40,
            "request tags are 32 bytes inline"
        );
    }
}
