//! The lock table: every lock with holders or waiters, and every claim on one.
//!
//! A **claim** is one acquire request: it is either *waiting* in its lock's FIFO queue or
//! *held* (granted, with a fencing token). Claims live in one `Slab` and never move, so a
//! claim's index is its identity from request to release, and the engine can hang a
//! timer and a reply tag on it. Each claim is threaded through two intrusive lists
//! ([`crate::list`]): its lock's `holds` or `waits`, and its owner's `holds` or `waits`.
//! A waiting claim is in a third: its owner's waits with the same **key** (the caller's
//! [`Keyed::key`], the engine's reply tag), found through the `by_key` index, so that
//! "this owner's waits with key K" costs O(those waits), not O(the owner's waits).
//! Locks live in a second `Slab`; a `hashbrown::HashTable` of lock indices, hashed by
//! name, finds them (the name is stored once, in the lock).
//!
//! **Layout.** Here: the types, acquire, grant, remove and the grant backlog. `index`:
//! the `by_key` wait index; `views`: read-only lookups and slot access; `shrink`:
//! giving capacity back.
//!
//! # Invariants
//! - A lock exists iff it has at least one hold or waiter; it is removed (memory
//!   returned) by the operation that empties it.
//! - `exclusive` holds: a lock with an exclusive hold has exactly one hold. A lock's holds
//!   are all shared or all exclusive.
//! - A lock's two flags live in its two lists' spare bits ([`crate::list::List::flag`]):
//!   `Lock::exclusive` in `holds`, `Lock::backlogged` in `waiters`; this keeps a lock
//!   at 48 bytes (a `const` assertion). A list counts at most [`crate::list::MAX_LEN`]
//!   claims: the caller keeps its claims within [`MAX_CLAIMS`] (the engine does).
//! - FIFO: a waiter is never granted before a waiter queued ahead of it on the same
//!   lock. After every operation the head waiter, if any, is *incompatible* with the
//!   current holds (otherwise it would have been granted) and its owner is not closing,
//!   unless the lock is on the grant `backlog`: one operation grants (or drops) at most
//!   [`GRANT_BATCH`] waiters, and [`Table::continue_grants`] goes on later, from the
//!   head, so the queue never stalls and FIFO order holds across the pause.
//! - A closing owner's ([`Table::close_owner`]) waits are never granted: reaching the
//!   head of a queue that would grant them, they are dropped (their payloads handed out
//!   by [`Table::take_dropped`]).
//! - Compatibility: an exclusive claim needs no holds; a shared claim needs no exclusive
//!   hold and, with `max = n`, fewer than `n` shared holds.
//! - Tokens strictly increase over every grant ([`crate::fence`]).
//! - An owner's `holds` / `waits` lists hold exactly its held / waiting claims, so a
//!   disconnect costs O(own claims), not O(table).
//! - A **detached** hold ([`Table::detach`]) has owner [`DETACHED`] and is on the table's
//!   `detached` list instead of any owner's: no owner's release or disconnect touches it
//!   (nor closing its owner: [`Table::close_owner`] drops waits, and a detached claim is
//!   held). Only held claims are detached; a waiting claim always has a real owner.
//! - `by_key` has one list per (owner, key) with at least one waiting claim: exactly
//!   that owner's waits with that key, in request order. A held claim is in no such
//!   list (its token takes the place of that link).
//! - A [`Found`] (from [`Table::find_hold_at`]) names its lock's slot in the name
//!   index; it is only used before the index next changes (the engine's release
//!   removes the hold it found right away), and `drop_if_empty` checks the slot
//!   still holds that lock (`debug_assert`).
//! - Capacity comes back after a burst: [`Table::shrink`] (module `shrink`) trims the
//!   index and the slabs below a quarter full, without moving anything.

mod index;
mod shrink;
mod views;

pub use shrink::Capacity;

use crate::compact::Compact;
use crate::fence::Fence;
use crate::list::{Chain, Link, List};
use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;
use std::hash::BuildHasher;

/// A lock name: at most 255 bytes; short names are stored inline (24 bytes in all).
pub type Name = Compact;

/// The longest lock name, in bytes (every codec enforces it before calling in).
pub const MAX_NAME: usize = 255;

/// Names up to this many bytes are stored inside the lock, without a heap buffer.
pub const INLINE_NAME: usize = crate::compact::INLINE;

/// Heap buffers of dropped long names kept for reuse, so that locks with names longer
/// than the inline 22 bytes do not allocate in steady state either.
const SPARE_NAMES: usize = 256;

/// The smallest heap buffer of a long name; longer ones are a power of two (so that
/// reused buffers fit most names: at most four sizes up to [`MAX_NAME`]).
const NAME_BUFFER_MIN: usize = 32;

/// Waiters one operation grants (or drops, for a closing owner) on one lock before it
/// leaves the rest to [`Table::continue_grants`]: an `UNLOCK` in front of two million
/// shared waiters must not stall everyone else while it grants them all.
pub const GRANT_BATCH: u32 = 1024;

/// The most claims (holds plus waits) the caller may have in the table at once: every
/// list of claims (a lock's holds or waiters, an owner's, the detached holds) counts at
/// most [`crate::list::MAX_LEN`], the top bit of its length word being a lock's flag.
/// The table does not check it (`debug_assert` in the lists); the engine refuses
/// acquires past it.
pub const MAX_CLAIMS: usize = crate::list::MAX_LEN as usize;

/// Index of a claim: stable from request until release, reused afterwards.
pub type ClaimId = u32;

/// Identifies a connection (its owner slot); chosen by the caller.
pub type OwnerId = u32;

/// The owner of detached holds: no connection. Callers never use it as an owner id.
pub const DETACHED: OwnerId = OwnerId::MAX;

/// What a claim asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Alone: no other hold at the same time.
    Exclusive,
    /// With other shared holds; `max` > 0 caps their number (a counting semaphore).
    Shared {
        /// Granted only while fewer than `max` shared holds exist; 0 = no cap.
        max: u32,
    },
}

/// Where a claim is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Queued on its lock.
    Waiting,
    /// Granted with this fencing token.
    Held {
        /// The fencing token of the grant.
        token: u64,
    },
}

/// What the table indexes a waiting claim by, together with its owner.
pub trait Keyed {
    /// The key (the engine's reply tag).
    fn key(&self) -> &[u8];
}

/// A payload without a key: all waits of an owner share the empty key.
impl Keyed for () {
    fn key(&self) -> &[u8] {
        b""
    }
}

/// One acquire request, waiting or held, plus the caller's payload `P`.
///
/// [`Mode`] is stored as `exclusive` and `max` (8 bytes would be 12), which leaves room
/// for `held` within the claim's 96-byte budget.
#[derive(Debug)]
pub struct Claim<P> {
    lock: u32,
    owner: OwnerId,
    /// A shared claim's cap (0: none); 0 for an exclusive one.
    max: u32,
    exclusive: bool,
    held: bool,
    /// Held: the fencing token ([`Link::bits`]). Waiting: the link in its owner's list
    /// of waits with the same key.
    by_key: Link,
    by_lock: Link,
    by_owner: Link,
    /// The caller's data (the engine keeps the reply tag and the timer here).
    pub data: P,
}

impl<P> Claim<P> {
    /// The connection that made the request.
    pub fn owner(&self) -> OwnerId {
        self.owner
    }
    /// Exclusive or shared.
    pub fn mode(&self) -> Mode {
        if self.exclusive {
            Mode::Exclusive
        } else {
            Mode::Shared { max: self.max }
        }
    }
    /// Waiting or held.
    pub fn state(&self) -> State {
        match self.token() {
            None => State::Waiting,
            Some(token) => State::Held { token },
        }
    }
    /// The fencing token, when held.
    pub fn token(&self) -> Option<u64> {
        self.held.then(|| self.by_key.bits())
    }
}

fn by_lock<P>() -> Chain<Claim<P>> {
    Chain {
        get: |c| &c.by_lock,
        get_mut: |c| &mut c.by_lock,
    }
}

fn by_owner<P>() -> Chain<Claim<P>> {
    Chain {
        get: |c| &c.by_owner,
        get_mut: |c| &mut c.by_owner,
    }
}

/// Waiting claims only: a held claim keeps its token in this link's place.
fn by_key<P>() -> Chain<Claim<P>> {
    Chain {
        get: |c| &c.by_key,
        get_mut: |c| &mut c.by_key,
    }
}

/// One lock: its name and its claims. Its two flags are kept in its lists' spare bits
/// (see [`Lock::exclusive`] and [`Lock::backlogged`]), which makes it 48 bytes, not 56.
#[derive(Debug)]
struct Lock {
    name: Name,
    /// Held claims, in grant order; its flag is [`Lock::exclusive`].
    holds: List,
    /// Waiting claims, in FIFO order; its flag is [`Lock::backlogged`].
    waiters: List,
}

/// What a lock costs in its slab, the slab's entry enum adding nothing (the name's
/// tag is its niche): a million held locks are a million of these.
const _: () = assert!(std::mem::size_of::<Lock>() == 48);

impl Lock {
    /// A lock named `name` with no claims, neither exclusive nor backlogged.
    fn new(name: Name) -> Lock {
        Lock {
            name,
            holds: List::EMPTY,
            waiters: List::EMPTY,
        }
    }

    /// The holds (if any) are exclusive: the mode of the latest grant, kept after the
    /// holds are gone (as [`LockInfo::exclusive`] shows it). Stored as the flag of
    /// `holds`.
    #[inline]
    fn exclusive(&self) -> bool {
        self.holds.flag()
    }

    /// Sets [`Lock::exclusive`].
    #[inline]
    fn set_exclusive(&mut self, exclusive: bool) {
        self.holds.set_flag(exclusive);
    }

    /// On the grant backlog: the head waiter may be grantable, and the lock's index is
    /// in `Table::backlog` (perhaps more than once). Stored as the flag of `waiters`.
    #[inline]
    fn backlogged(&self) -> bool {
        self.waiters.flag()
    }

    /// Sets [`Lock::backlogged`].
    #[inline]
    fn set_backlogged(&mut self, backlogged: bool) {
        self.waiters.set_flag(backlogged);
    }
}

/// A connection's claims.
#[derive(Debug, Default, Clone, Copy)]
struct Owner {
    holds: List,
    waits: List,
    /// Its connection closed: its waits are never granted.
    closing: bool,
    /// Its waits are in the `by_key` index (built on the first lookup by key that
    /// finds more than [`index::KEY_SCAN_MAX`] waits; see `index`).
    keyed: bool,
}

/// Result of [`Table::acquire`].
#[derive(Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Granted at once.
    Granted {
        /// The new claim (held).
        claim: ClaimId,
        /// Its fencing token.
        token: u64,
        /// Holds of the lock now, this one included.
        holders: u32,
    },
    /// Queued behind `ahead` earlier waiters or incompatible holds.
    Queued {
        /// The new claim (waiting).
        claim: ClaimId,
    },
    /// Not grantable now and the caller would not wait.
    Busy,
    /// Not grantable now and at least `queue` requests already wait.
    QueueFull,
}

/// Why a hold could not be found for release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindError {
    /// The owner holds nothing on that name (or not that token).
    NotHeld,
    /// The owner holds several claims on that name and named no token.
    TokenRequired,
}

/// A hold found by [`Table::find_hold_at`]: the claim, and the name index slot of its
/// lock, so that [`Table::remove_found`] drops an emptied lock without hashing the
/// name and probing the index again. Valid until the index next changes: a lock is
/// added or removed, or the index is shrunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    claim: ClaimId,
    /// The index bucket holding the claim's lock, when known.
    bucket: Option<usize>,
}

impl Found {
    /// The claim found.
    pub fn claim(self) -> ClaimId {
        self.claim
    }
}

/// A claim alone: removing it hashes its lock's name if the lock empties.
impl From<ClaimId> for Found {
    fn from(claim: ClaimId) -> Found {
        Found {
            claim,
            bucket: None,
        }
    }
}

/// One waiter granted by a release, cancel or timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The claim, now held.
    pub claim: ClaimId,
    /// Holds of its lock right after this grant, this one included.
    pub holders: u32,
}

/// A claim just removed from the table.
#[derive(Debug)]
pub struct Removed<P> {
    /// Whether it was waiting or held (with its token).
    pub state: State,
    /// The caller's payload, handed back.
    pub data: P,
}

/// A read-only view of one lock, for introspection.
#[derive(Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// Holds are exclusive (else shared, when holders > 0).
    pub exclusive: bool,
    /// Number of holds.
    pub holders: u32,
    /// Number of waiters.
    pub waiters: u32,
}

/// The lock table. `P` is the caller's per-claim payload.
pub struct Table<P> {
    hasher: DefaultHashBuilder,
    index: HashTable<u32>,
    /// Per (owner, key): that owner's waits with that key, in request order.
    by_key: HashTable<index::KeyList>,
    locks: Slab<Lock>,
    claims: Slab<Claim<P>>,
    owners: Vec<Owner>,
    fence: Fence,
    held: usize,
    /// Heap buffers of removed locks' long names, reused by new locks (at most
    /// `SPARE_NAMES`).
    spare_names: Vec<Box<[u8]>>,
    /// Detached holds, in detach order.
    detached: List,
    /// Locks whose grants were cut short by [`GRANT_BATCH`] (an index may be stale: its
    /// lock is gone, or it is listed twice).
    backlog: std::collections::VecDeque<u32>,
    /// Closing owners' waits dropped from queues (the claim id they had, and their
    /// payload), for the caller.
    dropped: Vec<(ClaimId, P)>,
    /// Waits an owner may have before a lookup by key indexes them
    /// ([`index::KEY_SCAN_MAX`]; lower in tests, so small models index too).
    key_scan_max: u32,
}

impl<P: Keyed> Table<P> {
    /// An empty table issuing tokens from `fence`.
    pub fn new(fence: Fence) -> Self {
        Table {
            hasher: DefaultHashBuilder::default(),
            index: HashTable::new(),
            by_key: HashTable::new(),
            locks: Slab::new(),
            claims: Slab::new(),
            owners: Vec::new(),
            fence,
            held: 0,
            spare_names: Vec::new(),
            detached: List::EMPTY,
            backlog: std::collections::VecDeque::new(),
            dropped: Vec::new(),
            key_scan_max: index::KEY_SCAN_MAX,
        }
    }

    /// Marks `owner` as closing: its waits are never granted from now on.
    pub fn close_owner(&mut self, owner: OwnerId) {
        owner_slot(&mut self.owners, owner).closing = true;
    }

    /// Makes `owner` an ordinary owner again (its id is reused; it has no claims).
    pub fn open_owner(&mut self, owner: OwnerId) {
        let o = owner_slot(&mut self.owners, owner);
        debug_assert!(
            o.holds.is_empty() && o.waits.is_empty(),
            "owner {owner} reused"
        );
        o.closing = false;
    }

    /// Moves closing owners' waits dropped from queues (the claim id each had, and its
    /// payload) into `into`. The ids are free again: the caller forgets what it kept
    /// under them.
    pub fn take_dropped(&mut self, into: &mut Vec<(ClaimId, P)>) {
        into.append(&mut self.dropped);
    }

    /// True when waits dropped from queues wait for [`Table::take_dropped`].
    #[inline]
    pub fn has_dropped(&self) -> bool {
        !self.dropped.is_empty()
    }

    /// True when some lock's grants were cut short and wait for
    /// [`Table::continue_grants`].
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Goes on granting (from each queue's head) on locks whose grants were cut short,
    /// at most `budget` grants and drops in all; returns how many were made.
    pub fn continue_grants(&mut self, budget: u32, granted: &mut Vec<Grant>) -> u32 {
        let mut used = 0;
        while used < budget {
            let Some(l) = self.backlog.pop_front() else {
                break;
            };
            match self.locks.get_mut(l as usize) {
                Some(lock) if lock.backlogged() => lock.set_backlogged(false),
                _ => continue, // stale
            }
            used += self.grant_waiters(l, granted, budget - used);
            self.drop_if_empty(l, None);
        }
        used
    }

    /// Makes a held claim detached: it leaves its owner's holds for the table's
    /// `detached` list and its owner becomes [`DETACHED`]. A claim already detached is
    /// left as it is.
    pub fn detach(&mut self, claim: ClaimId) {
        let c = &self.claims[claim as usize];
        debug_assert!(c.held, "detaching waiting claim {claim}");
        let owner = c.owner;
        if owner == DETACHED {
            return;
        }
        self.owners[owner as usize]
            .holds
            .unlink(&mut self.claims, &by_owner(), claim);
        self.claims[claim as usize].owner = DETACHED;
        self.detached
            .push_back(&mut self.claims, &by_owner(), claim);
    }

    fn find_lock(&self, hash: u64, name: &[u8]) -> Option<u32> {
        let locks = &self.locks;
        self.index
            .find(hash, |&l| locks[l as usize].name.as_slice() == name)
            .copied()
    }

    fn hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    /// Asks for `name` in `mode` on behalf of `owner`.
    ///
    /// Granted at once only when nobody waits and the holds are compatible (strict FIFO).
    /// Otherwise: `Busy` if `may_wait` is false, `QueueFull` if `queue` is set and at least
    /// that many already wait, else `Queued`.
    #[inline]
    pub fn acquire(
        &mut self,
        owner: OwnerId,
        name: &[u8],
        mode: Mode,
        may_wait: bool,
        queue: Option<u32>,
        data: P,
    ) -> Acquire {
        self.acquire_with(owner, name, mode, may_wait, queue, move || data)
    }

    /// [`Table::acquire`] with the payload made by `make`, called only when a claim is
    /// made (`Granted` or `Queued`): a refused request builds none, so a payload that
    /// takes a recycled buffer takes none for it.
    #[inline]
    pub fn acquire_with(
        &mut self,
        owner: OwnerId,
        name: &[u8],
        mode: Mode,
        may_wait: bool,
        queue: Option<u32>,
        make: impl FnOnce() -> P,
    ) -> Acquire {
        debug_assert!(
            !name.is_empty() && name.len() <= MAX_NAME,
            "bad name length {}",
            name.len()
        );
        let hash = self.hash(name);
        let (locks, hasher) = (&self.locks, &self.hasher);
        // One probe finds the lock or the slot for a new one. Growing the index rehashes
        // every name (amortized O(1) per insert); not storing the hash saves 8 bytes per
        // lock.
        let entry = self.index.entry(
            hash,
            |&l| locks[l as usize].name.as_slice() == name,
            |&i| hasher.hash_one(locks[i as usize].name.as_slice()),
        );
        let l = match entry {
            hashbrown::hash_table::Entry::Occupied(e) => *e.get(),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let l = self
                    .locks
                    .insert(Lock::new(new_name(&mut self.spare_names, name)))
                    as u32;
                v.insert(l);
                l
            }
        };
        let lock = &self.locks[l as usize];
        let grantable = lock.waiters.is_empty() && compatible(lock, mode);
        if !grantable {
            if !may_wait {
                return Acquire::Busy;
            }
            if queue.is_some_and(|q| lock.waiters.len() >= q) {
                return Acquire::QueueFull;
            }
        }
        let (exclusive, max) = match mode {
            Mode::Exclusive => (true, 0),
            Mode::Shared { max } => (false, max),
        };
        let claim = self.claims.insert(Claim {
            lock: l,
            owner,
            max,
            exclusive,
            held: false,
            by_key: Link::UNLINKED,
            by_lock: Link::UNLINKED,
            by_owner: Link::UNLINKED,
            data: make(),
        }) as u32;
        if grantable {
            let (token, holders) = self.hold(l, claim);
            Acquire::Granted {
                claim,
                token,
                holders,
            }
        } else {
            self.locks[l as usize]
                .waiters
                .push_back(&mut self.claims, &by_lock(), claim);
            owner_slot(&mut self.owners, owner).waits.push_back(
                &mut self.claims,
                &by_owner(),
                claim,
            );
            self.link_key(claim);
            Acquire::Queued { claim }
        }
    }

    /// Links an unlinked claim as a hold of lock `l` and issues its token. Returns the
    /// token and the lock's holds now, this one included.
    #[inline]
    fn hold(&mut self, l: u32, claim: ClaimId) -> (u64, u32) {
        let token = self.fence.issue();
        let c = &mut self.claims[claim as usize];
        debug_assert!(
            !c.held && c.by_key == Link::UNLINKED,
            "claim {claim} held twice or still keyed"
        );
        c.held = true;
        c.by_key = Link::from_bits(token);
        let (owner, exclusive) = (c.owner, c.exclusive);
        let lock = &mut self.locks[l as usize];
        lock.holds.push_back(&mut self.claims, &by_lock(), claim);
        // After the push, which leaves the length word's new value at hand.
        lock.set_exclusive(exclusive);
        let holders = lock.holds.len();
        owner_slot(&mut self.owners, owner)
            .holds
            .push_back(&mut self.claims, &by_owner(), claim);
        self.held += 1;
        (token, holders)
    }

    /// Grants waiters from the head of lock `l`'s queue while they are compatible, and
    /// drops those of closing owners, at most `budget` of both; when the budget runs out
    /// with more to do, puts the lock on the backlog. Returns grants plus drops.
    fn grant_waiters(&mut self, l: u32, granted: &mut Vec<Grant>, budget: u32) -> u32 {
        let mut used = 0;
        while let Some(head) = self.locks[l as usize].waiters.front() {
            let c = &self.claims[head as usize];
            let (owner, mode) = (c.owner, c.mode());
            let closing = self.owners[owner as usize].closing;
            if !closing && !compatible(&self.locks[l as usize], mode) {
                break;
            }
            if used == budget {
                let lock = &mut self.locks[l as usize];
                if !lock.backlogged() {
                    lock.set_backlogged(true);
                    self.backlog.push_back(l);
                }
                break;
            }
            used += 1;
            self.locks[l as usize]
                .waiters
                .unlink(&mut self.claims, &by_lock(), head);
            self.owners[owner as usize]
                .waits
                .unlink(&mut self.claims, &by_owner(), head);
            self.unlink_key(head);
            if closing {
                let data = self.claims.remove(head as usize).data;
                self.dropped.push((head, data));
                continue;
            }
            let (_, holders) = self.hold(l, head);
            granted.push(Grant {
                claim: head,
                holders,
            });
        }
        used
    }

    /// Removes lock `l` if it has no holds and no waiters (inlined: it is on the lock
    /// cycle's path, as it was when it was part of `remove`). `bucket` is the index slot
    /// of `l` when the caller knows it (see [`Found`]); else the name is hashed and the
    /// index probed.
    #[inline(always)]
    fn drop_if_empty(&mut self, l: u32, bucket: Option<usize>) {
        let lock = &self.locks[l as usize];
        if lock.holds.is_empty() && lock.waiters.is_empty() {
            let entry = match bucket {
                Some(b) => self.index.get_bucket_entry(b).map_err(|_| ()),
                None => {
                    let hash = self.hash(&lock.name);
                    self.index.find_entry(hash, |&i| i == l).map_err(|_| ())
                }
            };
            match entry {
                Ok(entry) => {
                    debug_assert_eq!(*entry.get(), l, "index slot of lock {l}");
                    entry.remove();
                }
                Err(()) => debug_assert!(false, "lock {l} missing from the index"),
            }
            let lock = self.locks.remove(l as usize);
            if lock.name.spilled() && self.spare_names.len() < SPARE_NAMES {
                self.spare_names.extend(lock.name.into_buffer());
            }
        }
    }

    /// Removes a claim, waiting or held, and grants whatever waiters that unblocks
    /// (appended to `granted` in grant order; at most [`GRANT_BATCH`], the rest later).
    /// Removing a waiter grants nothing while its lock is on the backlog: the grants
    /// already due go on in [`Table::continue_grants`], in order. Drops the lock if it
    /// is now empty.
    pub fn remove(&mut self, claim: ClaimId, granted: &mut Vec<Grant>) -> Removed<P> {
        self.remove_found(Found::from(claim), granted)
    }

    /// [`Table::remove`] of a claim found by [`Table::find_hold_at`] (or of a bare
    /// claim id, converted): the lock, if emptied, leaves the index through the slot
    /// found then, with no second hash and probe.
    #[inline(always)]
    pub fn remove_found(&mut self, found: Found, granted: &mut Vec<Grant>) -> Removed<P> {
        let Found { claim, bucket } = found;
        let c = &self.claims[claim as usize];
        let (l, owner, state) = (c.lock, c.owner, c.state());
        if state == State::Waiting {
            self.unlink_key(claim);
        }
        let lock = &mut self.locks[l as usize];
        match state {
            State::Waiting => {
                lock.waiters.unlink(&mut self.claims, &by_lock(), claim);
                let own = &mut self.owners[owner as usize];
                own.waits.unlink(&mut self.claims, &by_owner(), claim);
            }
            State::Held { .. } => {
                lock.holds.unlink(&mut self.claims, &by_lock(), claim);
                let list = if owner == DETACHED {
                    &mut self.detached
                } else {
                    &mut self.owners[owner as usize].holds
                };
                list.unlink(&mut self.claims, &by_owner(), claim);
                self.held -= 1;
            }
        }
        // A lock on the backlog has grantable waiters at its head already: removing a
        // waiter must not grant them here, or a caller withdrawing several waits (latest
        // first, see the engine's `withdraw_scratch`) could see one it is about to
        // withdraw granted. `continue_grants` goes on from the head. (Decided from the
        // lock at hand: removing the claim from its slab leaves the lock as it is.)
        let backlogged_wait = state == State::Waiting && lock.backlogged();
        let grant = !lock.waiters.is_empty() && !backlogged_wait;
        let data = self.claims.remove(claim as usize).data;
        if grant {
            self.grant_waiters(l, granted, GRANT_BATCH);
        }
        self.drop_if_empty(l, bucket);
        Removed { state, data }
    }

    /// Finds `owner`'s hold on `name`: the one with `token`, or the only one.
    ///
    /// Walks whichever list is shorter: the lock's holds or the owner's holds.
    pub fn find_hold(
        &self,
        owner: OwnerId,
        name: &[u8],
        token: Option<u64>,
    ) -> Result<ClaimId, FindError> {
        self.find_hold_at(owner, name, token).map(Found::claim)
    }

    /// [`Table::find_hold`], also keeping where the lock sits in the name index, for
    /// [`Table::remove_found`].
    #[inline]
    pub fn find_hold_at(
        &self,
        owner: OwnerId,
        name: &[u8],
        token: Option<u64>,
    ) -> Result<Found, FindError> {
        let locks = &self.locks;
        let found = self.index.find_bucket_index(self.hash(name), |&l| {
            locks[l as usize].name.as_slice() == name
        });
        let Some(bucket) = found else {
            return Err(FindError::NotHeld);
        };
        let Some(&l) = self.index.get_bucket(bucket) else {
            return Err(FindError::NotHeld);
        };
        let Some(own) = self.owners.get(owner as usize) else {
            return Err(FindError::NotHeld);
        };
        let lock = &self.locks[l as usize];
        let mine = |&c: &ClaimId| {
            let claim = &self.claims[c as usize];
            claim.lock == l
                && claim.owner == owner
                && token.is_none_or(|t| claim.token() == Some(t))
        };
        let here = |claim| Found {
            claim,
            bucket: Some(bucket),
        };
        if lock.holds.len() == 1 {
            // The common case (an exclusive hold): that one hold is it, or nothing is.
            return match lock.holds.front().filter(mine) {
                Some(claim) => Ok(here(claim)),
                None => Err(FindError::NotHeld),
            };
        }
        let (list, chain) = if lock.holds.len() <= own.holds.len() {
            (lock.holds, by_lock())
        } else {
            (own.holds, by_owner())
        };
        let mut found = list.iter(&self.claims, chain).filter(mine);
        match (found.next(), found.next()) {
            (None, _) => Err(FindError::NotHeld),
            (Some(claim), None) => Ok(here(claim)),
            (Some(_), Some(_)) => Err(FindError::TokenRequired),
        }
    }
}

/// A lock name, in a recycled heap buffer when it does not fit inline (a spare buffer
/// too short for it is dropped: the new one, of the next power of two, replaces it).
#[inline]
fn new_name(spare: &mut Vec<Box<[u8]>>, name: &[u8]) -> Name {
    if name.len() <= INLINE_NAME {
        return Name::from_slice(name); // the common case, kept inline in the caller
    }
    let fresh = name.len().next_power_of_two().max(NAME_BUFFER_MIN);
    Name::from_spare(spare, name, fresh)
}

/// The owner's slot, created on first use.
fn owner_slot(owners: &mut Vec<Owner>, owner: OwnerId) -> &mut Owner {
    let i = owner as usize;
    if i >= owners.len() {
        owners.resize(i + 1, Owner::default());
    }
    &mut owners[i]
}

fn compatible(lock: &Lock, mode: Mode) -> bool {
    match mode {
        Mode::Exclusive => lock.holds.is_empty(),
        Mode::Shared { max } => {
            lock.holds.is_empty() || (!lock.exclusive() && (max == 0 || lock.holds.len() < max))
        }
    }
}

/// The size of one lock entry, for the engine's memory budget test.
#[cfg(test)]
pub(crate) fn lock_size() -> usize {
    std::mem::size_of::<Lock>()
}

#[cfg(test)]
mod tests;
