//! The lock table: every lock with holders or waiters, and every claim on one.
//!
//! A **claim** is one acquire request: it is either *waiting* in its lock's FIFO queue or
//! *held* (granted, with a fencing token). Claims live in one `Slab` and never move, so a
//! claim's index is its identity from request to release, and the engine can hang a
//! timer and a reply tag on it. Each claim is threaded through two intrusive lists
//! ([`crate::list`]): its lock's `holds` or `waiters`, and its owner's `holds` or `waits`.
//! Locks live in a second `Slab`; a `hashbrown::HashTable` of lock indices, hashed by
//! name, finds them (the name is stored once, in the lock).
//!
//! # Invariants
//! - A lock exists iff it has at least one hold or waiter; it is removed (memory
//!   returned) by the operation that empties it.
//! - `exclusive` holds: a lock with an exclusive hold has exactly one hold. A lock's holds
//!   are all shared or all exclusive.
//! - FIFO: a waiter is never granted before a waiter queued ahead of it on the same
//!   lock. After every operation the head waiter, if any, is *incompatible* with the
//!   current holds (otherwise it would have been granted): the queue never stalls.
//! - Compatibility: an exclusive claim needs no holds; a shared claim needs no exclusive
//!   hold and, with `max = n`, fewer than `n` shared holds.
//! - Tokens strictly increase over every grant ([`crate::fence`]).
//! - An owner's `holds` / `waits` lists hold exactly its held / waiting claims, so a
//!   disconnect costs O(own claims), not O(table).

use crate::fence::Fence;
use crate::list::{Chain, Link, List};
use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;
use smallvec::SmallVec;
use std::hash::BuildHasher;

/// A lock name: at most 255 bytes; short names are stored inline.
pub type Name = SmallVec<[u8; INLINE_NAME]>;

/// The longest lock name, in bytes (every codec enforces it before calling in).
pub const MAX_NAME: usize = 255;

/// Names up to this many bytes are stored inside the lock, without a heap buffer.
pub const INLINE_NAME: usize = 24;

/// Heap buffers of dropped long names kept for reuse, so that locks with names longer
/// than the inline 24 bytes do not allocate in steady state either.
const SPARE_NAMES: usize = 256;

/// Index of a claim: stable from request until release, reused afterwards.
pub type ClaimId = u32;

/// Identifies a connection (its owner slot); chosen by the caller.
pub type OwnerId = u32;

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

/// One acquire request, waiting or held, plus the caller's payload `P`.
#[derive(Debug)]
pub struct Claim<P> {
    lock: u32,
    owner: OwnerId,
    mode: Mode,
    /// The fencing token when held; 0 while waiting (tokens start at 1).
    token: u64,
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
        self.mode
    }
    /// Waiting or held.
    pub fn state(&self) -> State {
        match self.token {
            0 => State::Waiting,
            token => State::Held { token },
        }
    }
    /// The fencing token, when held.
    pub fn token(&self) -> Option<u64> {
        (self.token != 0).then_some(self.token)
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

#[derive(Debug)]
struct Lock {
    name: Name,
    holds: List,
    waiters: List,
    /// The holds (if any) are exclusive.
    exclusive: bool,
}

/// A connection's claims.
#[derive(Debug, Default, Clone, Copy)]
struct Owner {
    holds: List,
    waits: List,
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
    locks: Slab<Lock>,
    claims: Slab<Claim<P>>,
    owners: Vec<Owner>,
    fence: Fence,
    held: usize,
    /// Spilled name buffers of removed locks, reused by new locks (at most `SPARE_NAMES`).
    spare_names: Vec<Name>,
}

impl<P> Table<P> {
    /// An empty table issuing tokens from `fence`.
    pub fn new(fence: Fence) -> Self {
        Table {
            hasher: DefaultHashBuilder::default(),
            index: HashTable::new(),
            locks: Slab::new(),
            claims: Slab::new(),
            owners: Vec::new(),
            fence,
            held: 0,
            spare_names: Vec::new(),
        }
    }

    /// Number of locks with holds or waiters.
    pub fn lock_count(&self) -> usize {
        self.locks.len()
    }
    /// Number of held claims.
    pub fn hold_count(&self) -> usize {
        self.held
    }
    /// Number of waiting claims.
    pub fn wait_count(&self) -> usize {
        self.claims.len() - self.held
    }

    /// True when `id` is a live claim.
    pub fn contains(&self, id: ClaimId) -> bool {
        self.claims.contains(id as usize)
    }
    /// A claim by index; it must be live.
    pub fn claim(&self, id: ClaimId) -> &Claim<P> {
        &self.claims[id as usize]
    }
    /// A claim by index, mutably; it must be live.
    pub fn claim_mut(&mut self, id: ClaimId) -> &mut Claim<P> {
        &mut self.claims[id as usize]
    }
    /// The name of a live claim's lock.
    pub fn claim_name(&self, id: ClaimId) -> &[u8] {
        &self.locks[self.claims[id as usize].lock as usize].name
    }

    /// Number of holds and waits of `owner`.
    pub fn owner_counts(&self, owner: OwnerId) -> (u32, u32) {
        self.owners
            .get(owner as usize)
            .map_or((0, 0), |o| (o.holds.len(), o.waits.len()))
    }
    /// The first held claim of `owner`, if any (to release all, one at a time).
    pub fn first_hold(&self, owner: OwnerId) -> Option<ClaimId> {
        self.owners.get(owner as usize)?.holds.front()
    }
    /// The first waiting claim of `owner`, if any.
    #[cfg(test)]
    pub fn first_wait(&self, owner: OwnerId) -> Option<ClaimId> {
        self.owners.get(owner as usize)?.waits.front()
    }
    /// The held claims of `owner`, in grant order.
    pub fn holds_of(&self, owner: OwnerId) -> impl Iterator<Item = ClaimId> + '_ {
        let list = self
            .owners
            .get(owner as usize)
            .map_or(List::EMPTY, |o| o.holds);
        list.iter(&self.claims, by_owner())
    }
    /// The waiting claims of `owner`, in request order.
    pub fn waits_of(&self, owner: OwnerId) -> impl Iterator<Item = ClaimId> + '_ {
        let list = self
            .owners
            .get(owner as usize)
            .map_or(List::EMPTY, |o| o.waits);
        list.iter(&self.claims, by_owner())
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

    /// Looks a lock up by name.
    pub fn inspect(&self, name: &[u8]) -> Option<LockInfo> {
        let l = self.find_lock(self.hash(name), name)?;
        let lock = &self.locks[l as usize];
        Some(LockInfo {
            exclusive: lock.exclusive,
            holders: lock.holds.len(),
            waiters: lock.waiters.len(),
        })
    }

    /// The held claims of lock `name`, in grant order.
    pub fn holds_on<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = ClaimId> + 'a {
        let list = self
            .find_lock(self.hash(name), name)
            .map_or(List::EMPTY, |l| self.locks[l as usize].holds);
        list.iter(&self.claims, by_lock())
    }

    /// The waiting claims of lock `name`, in FIFO order.
    pub fn waiters_on<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = ClaimId> + 'a {
        let list = self
            .find_lock(self.hash(name), name)
            .map_or(List::EMPTY, |l| self.locks[l as usize].waiters);
        list.iter(&self.claims, by_lock())
    }

    /// Every lock, in no particular order: (name, info).
    pub fn locks(&self) -> impl Iterator<Item = (&[u8], LockInfo)> + '_ {
        self.locks.iter().map(|(_, l)| {
            (
                l.name.as_slice(),
                LockInfo {
                    exclusive: l.exclusive,
                    holders: l.holds.len(),
                    waiters: l.waiters.len(),
                },
            )
        })
    }

    /// Asks for `name` in `mode` on behalf of `owner`.
    ///
    /// Granted at once only when nobody waits and the holds are compatible (strict FIFO).
    /// Otherwise: `Busy` if `may_wait` is false, `QueueFull` if `queue` is set and at least
    /// that many already wait, else `Queued`.
    pub fn acquire(
        &mut self,
        owner: OwnerId,
        name: &[u8],
        mode: Mode,
        may_wait: bool,
        queue: Option<u32>,
        data: P,
    ) -> Acquire {
        debug_assert!(
            !name.is_empty() && name.len() <= MAX_NAME,
            "bad name length {}",
            name.len()
        );
        let hash = self.hash(name);
        let l = match self.find_lock(hash, name) {
            Some(l) => l,
            None => {
                let l = self.locks.insert(Lock {
                    name: new_name(&mut self.spare_names, name),
                    holds: List::EMPTY,
                    waiters: List::EMPTY,
                    exclusive: false,
                }) as u32;
                let (locks, hasher) = (&self.locks, &self.hasher);
                // Growing the index rehashes every name (amortized O(1) per insert); not
                // storing the hash saves 8 bytes per lock.
                self.index.insert_unique(hash, l, |&i| {
                    hasher.hash_one(locks[i as usize].name.as_slice())
                });
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
        let claim = self.claims.insert(Claim {
            lock: l,
            owner,
            mode,
            token: 0,
            by_lock: Link::UNLINKED,
            by_owner: Link::UNLINKED,
            data,
        }) as u32;
        if grantable {
            let token = self.hold(l, claim);
            Acquire::Granted {
                claim,
                token,
                holders: self.locks[l as usize].holds.len(),
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
            Acquire::Queued { claim }
        }
    }

    /// Links an unlinked claim as a hold of lock `l` and issues its token.
    fn hold(&mut self, l: u32, claim: ClaimId) -> u64 {
        let token = self.fence.issue();
        let c = &mut self.claims[claim as usize];
        debug_assert!(token != 0, "token 0 means waiting");
        c.token = token;
        let (owner, exclusive) = (c.owner, c.mode == Mode::Exclusive);
        let lock = &mut self.locks[l as usize];
        lock.exclusive = exclusive;
        lock.holds.push_back(&mut self.claims, &by_lock(), claim);
        owner_slot(&mut self.owners, owner)
            .holds
            .push_back(&mut self.claims, &by_owner(), claim);
        self.held += 1;
        token
    }

    /// Grants waiters from the head of lock `l`'s queue while they are compatible.
    fn grant_waiters(&mut self, l: u32, granted: &mut Vec<Grant>) {
        while let Some(head) = self.locks[l as usize].waiters.front() {
            let mode = self.claims[head as usize].mode;
            if !compatible(&self.locks[l as usize], mode) {
                break;
            }
            let owner = self.claims[head as usize].owner;
            self.locks[l as usize]
                .waiters
                .unlink(&mut self.claims, &by_lock(), head);
            self.owners[owner as usize]
                .waits
                .unlink(&mut self.claims, &by_owner(), head);
            self.hold(l, head);
            granted.push(Grant {
                claim: head,
                holders: self.locks[l as usize].holds.len(),
            });
        }
    }

    /// Removes a claim, waiting or held, and grants whatever waiters that unblocks
    /// (appended to `granted` in grant order). Drops the lock if it is now empty.
    pub fn remove(&mut self, claim: ClaimId, granted: &mut Vec<Grant>) -> Removed<P> {
        let c = &self.claims[claim as usize];
        let (l, owner, state) = (c.lock, c.owner, c.state());
        let lock = &mut self.locks[l as usize];
        let own = &mut self.owners[owner as usize];
        match state {
            State::Waiting => {
                lock.waiters.unlink(&mut self.claims, &by_lock(), claim);
                own.waits.unlink(&mut self.claims, &by_owner(), claim);
            }
            State::Held { .. } => {
                lock.holds.unlink(&mut self.claims, &by_lock(), claim);
                own.holds.unlink(&mut self.claims, &by_owner(), claim);
                self.held -= 1;
            }
        }
        let data = self.claims.remove(claim as usize).data;
        self.grant_waiters(l, granted);
        let lock = &self.locks[l as usize];
        if lock.holds.is_empty() && lock.waiters.is_empty() {
            let hash = self.hash(&lock.name);
            match self.index.find_entry(hash, |&i| i == l) {
                Ok(entry) => {
                    entry.remove();
                }
                Err(_) => debug_assert!(false, "lock {l} missing from the index"),
            }
            let lock = self.locks.remove(l as usize);
            if lock.name.spilled() && self.spare_names.len() < SPARE_NAMES {
                self.spare_names.push(lock.name);
            }
        }
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
        let Some(l) = self.find_lock(self.hash(name), name) else {
            return Err(FindError::NotHeld);
        };
        let Some(own) = self.owners.get(owner as usize) else {
            return Err(FindError::NotHeld);
        };
        let lock = &self.locks[l as usize];
        let mine = |&c: &ClaimId| {
            let claim = &self.claims[c as usize];
            claim.lock == l && claim.owner == owner && token.is_none_or(|t| claim.token == t)
        };
        let (list, chain) = if lock.holds.len() <= own.holds.len() {
            (lock.holds, by_lock())
        } else {
            (own.holds, by_owner())
        };
        let mut found = list.iter(&self.claims, chain).filter(mine);
        match (found.next(), found.next()) {
            (None, _) => Err(FindError::NotHeld),
            (Some(c), None) => Ok(c),
            (Some(_), Some(_)) => Err(FindError::TokenRequired),
        }
    }

    /// Checks every invariant in the module doc; for tests.
    #[cfg(test)]
    pub fn check(&self) {
        let mut held = 0;
        for (l, lock) in self.locks.iter() {
            assert!(
                !(lock.holds.is_empty() && lock.waiters.is_empty()),
                "empty lock {l} kept"
            );
            assert_eq!(
                self.find_lock(self.hash(&lock.name), &lock.name),
                Some(l as u32),
                "lock {l} not indexed"
            );
            let holds: Vec<_> = lock.holds.iter(&self.claims, by_lock()).collect();
            for &c in &holds {
                let claim = &self.claims[c as usize];
                assert!(
                    matches!(claim.state(), State::Held { .. }),
                    "claim {c} in holds but waiting"
                );
                assert_eq!(claim.lock, l as u32);
                assert_eq!(
                    claim.mode == Mode::Exclusive,
                    lock.exclusive,
                    "mixed modes on lock {l}"
                );
            }
            if lock.exclusive {
                assert_eq!(
                    holds.len(),
                    1,
                    "exclusive lock {l} with {} holds",
                    holds.len()
                );
            }
            held += holds.len();
            for c in lock.waiters.iter(&self.claims, by_lock()) {
                let claim = &self.claims[c as usize];
                assert_eq!(
                    claim.state(),
                    State::Waiting,
                    "claim {c} in waiters but held"
                );
                assert_eq!(claim.lock, l as u32);
            }
            if let Some(head) = lock.waiters.front() {
                assert!(
                    !compatible(lock, self.claims[head as usize].mode),
                    "lock {l} stalls: head {head} grantable"
                );
            }
        }
        assert_eq!(held, self.held);
        assert_eq!(self.index.len(), self.locks.len());
        let mut owned = 0;
        for (o, own) in self.owners.iter().enumerate() {
            for c in own.holds.iter(&self.claims, by_owner()) {
                assert_eq!(self.claims[c as usize].owner, o as u32);
                assert!(matches!(
                    self.claims[c as usize].state(),
                    State::Held { .. }
                ));
                owned += 1;
            }
            for c in own.waits.iter(&self.claims, by_owner()) {
                assert_eq!(self.claims[c as usize].owner, o as u32);
                assert_eq!(self.claims[c as usize].state(), State::Waiting);
                owned += 1;
            }
        }
        assert_eq!(
            owned,
            self.claims.len(),
            "claims not in exactly one owner list"
        );
    }
}

/// A lock name, in a recycled heap buffer when it does not fit inline.
fn new_name(spare: &mut Vec<Name>, name: &[u8]) -> Name {
    match spare.pop() {
        Some(mut buf) if name.len() > INLINE_NAME => {
            buf.clear();
            buf.extend_from_slice(name);
            buf
        }
        Some(buf) => {
            spare.push(buf);
            Name::from_slice(name)
        }
        None => Name::from_slice(name),
    }
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
            lock.holds.is_empty() || (!lock.exclusive && (max == 0 || lock.holds.len() < max))
        }
    }
}

/// The size of one lock entry, for the engine's memory budget test.
#[cfg(test)]
pub(crate) fn lock_size() -> usize {
    std::mem::size_of::<Lock>()
}

#[cfg(test)]
mod tests {
    //! The table against a naive reference model, plus unit tests that spell out the
    //! queueing rules of the protocol's "Locks and holds" section.

    use super::*;
    use crate::testrng::Rng;
    use std::collections::{BTreeMap, VecDeque};

    // ---------------------------------------------------------------- unit tests

    const X: Mode = Mode::Exclusive;
    const S: Mode = Mode::Shared { max: 0 };

    fn table() -> Table<u64> {
        Table::new(Fence::starting_at(1))
    }

    /// Acquires with `may_wait` and no queue limit.
    fn ask(t: &mut Table<u64>, owner: OwnerId, name: &[u8], mode: Mode) -> Acquire {
        t.acquire(owner, name, mode, true, None, 0)
    }

    fn claim_of(a: &Acquire) -> ClaimId {
        match *a {
            Acquire::Granted { claim, .. } | Acquire::Queued { claim } => claim,
            ref other => panic!("no claim in {other:?}"),
        }
    }

    fn info(t: &Table<u64>, name: &[u8]) -> (bool, u32, u32) {
        let i = t.inspect(name).expect("lock exists");
        (i.exclusive, i.holders, i.waiters)
    }

    /// Removes a claim and returns the grants it caused.
    fn remove(t: &mut Table<u64>, claim: ClaimId) -> Vec<Grant> {
        let mut granted = Vec::new();
        t.remove(claim, &mut granted);
        t.check();
        granted
    }

    #[test]
    fn long_names_reuse_heap_buffers() {
        let mut t: Table<()> = Table::new(Fence::starting_at(1));
        let mut granted = Vec::new();
        let long = [b'n'; 40];
        let Acquire::Granted { claim, .. } = t.acquire(0, &long, Mode::Exclusive, true, None, ())
        else {
            panic!("free lock not granted")
        };
        let first = t.claim_name(claim).as_ptr();
        t.remove(claim, &mut granted);
        assert_eq!(t.spare_names.len(), 1, "the dropped long name is kept");
        // A short name stays inline and leaves the spare alone.
        let Acquire::Granted { claim: short, .. } =
            t.acquire(0, b"s", Mode::Exclusive, true, None, ())
        else {
            panic!()
        };
        assert_eq!(t.spare_names.len(), 1);
        t.remove(short, &mut granted);
        let other = [b'm'; 30];
        let Acquire::Granted { claim, .. } = t.acquire(0, &other, Mode::Exclusive, true, None, ())
        else {
            panic!()
        };
        assert_eq!(t.claim_name(claim), &other[..]);
        assert_eq!(
            t.claim_name(claim).as_ptr(),
            first,
            "the heap buffer was reused"
        );
        assert!(t.spare_names.is_empty());
        t.check();
    }

    #[test]
    fn first_request_is_granted_with_token_and_lock_vanishes_when_released() {
        let mut t = table();
        assert_eq!(
            ask(&mut t, 0, b"a", X),
            Acquire::Granted {
                claim: 0,
                token: 1,
                holders: 1
            }
        );
        assert_eq!(info(&t, b"a"), (true, 1, 0));
        assert_eq!(t.find_hold(0, b"a", None), Ok(0));
        assert_eq!(t.find_hold(1, b"a", None), Err(FindError::NotHeld));
        assert!(remove(&mut t, 0).is_empty());
        assert_eq!(t.inspect(b"a"), None);
        assert_eq!((t.lock_count(), t.hold_count(), t.wait_count()), (0, 0, 0));
        assert_eq!(t.find_hold(0, b"a", None), Err(FindError::NotHeld));
    }

    #[test]
    fn exclusive_waits_for_shared_holds_to_drain() {
        let mut t = table();
        let s1 = claim_of(&ask(&mut t, 0, b"a", S));
        let s2 = claim_of(&ask(&mut t, 1, b"a", S));
        let x = ask(&mut t, 2, b"a", X);
        assert!(matches!(x, Acquire::Queued { .. }));
        assert_eq!(info(&t, b"a"), (false, 2, 1));
        assert!(
            remove(&mut t, s1).is_empty(),
            "one shared hold left: still waits"
        );
        let g = remove(&mut t, s2);
        assert_eq!(
            g,
            vec![Grant {
                claim: claim_of(&x),
                holders: 1
            }]
        );
        assert_eq!(t.claim(claim_of(&x)).token(), Some(3));
        assert_eq!(info(&t, b"a"), (true, 1, 0));
    }

    #[test]
    fn shared_behind_a_waiting_exclusive_waits() {
        let mut t = table();
        let s1 = claim_of(&ask(&mut t, 0, b"a", S));
        let x = claim_of(&ask(&mut t, 1, b"a", X));
        // Compatible with the shared hold, but a writer waits ahead: no overtaking.
        let s2 = ask(&mut t, 2, b"a", S);
        assert_eq!(
            s2,
            Acquire::Queued {
                claim: claim_of(&s2)
            }
        );
        assert_eq!(t.acquire(3, b"a", S, false, None, 0), Acquire::Busy);
        assert_eq!(
            t.waiters_on(b"a").collect::<Vec<_>>(),
            vec![x, claim_of(&s2)]
        );
        // The writer goes first, then the reader.
        assert_eq!(
            remove(&mut t, s1),
            vec![Grant {
                claim: x,
                holders: 1
            }]
        );
        assert_eq!(
            remove(&mut t, x),
            vec![Grant {
                claim: claim_of(&s2),
                holders: 1
            }]
        );
    }

    #[test]
    fn consecutive_shared_waiters_are_granted_together_up_to_an_exclusive() {
        let mut t = table();
        let x1 = claim_of(&ask(&mut t, 0, b"a", X));
        let s: Vec<ClaimId> = (1..4).map(|o| claim_of(&ask(&mut t, o, b"a", S))).collect();
        let x2 = claim_of(&ask(&mut t, 4, b"a", X));
        let s4 = claim_of(&ask(&mut t, 5, b"a", S));
        let g = remove(&mut t, x1);
        assert_eq!(
            g,
            vec![
                Grant {
                    claim: s[0],
                    holders: 1
                },
                Grant {
                    claim: s[1],
                    holders: 2
                },
                Grant {
                    claim: s[2],
                    holders: 3
                },
            ]
        );
        let tokens: Vec<u64> = s.iter().map(|&c| t.claim(c).token().unwrap()).collect();
        assert_eq!(tokens, vec![2, 3, 4], "tokens in grant order");
        assert_eq!(t.waiters_on(b"a").collect::<Vec<_>>(), vec![x2, s4]);
        assert_eq!(info(&t, b"a"), (false, 3, 2));
    }

    #[test]
    fn semaphore_max_caps_shared_holds() {
        let mut t = table();
        let sem = Mode::Shared { max: 2 };
        let a = claim_of(&ask(&mut t, 0, b"q", sem));
        assert!(matches!(
            ask(&mut t, 1, b"q", sem),
            Acquire::Granted { holders: 2, .. }
        ));
        assert_eq!(t.acquire(2, b"q", sem, false, None, 0), Acquire::Busy);
        let c = claim_of(&ask(&mut t, 2, b"q", sem));
        // Uncapped shared would fit, but it queues behind the waiting semaphore request.
        let d = claim_of(&ask(&mut t, 3, b"q", S));
        assert_eq!(info(&t, b"q"), (false, 2, 2));
        // One slot frees: the capped request takes it, and the uncapped one follows.
        assert_eq!(
            remove(&mut t, a),
            vec![
                Grant {
                    claim: c,
                    holders: 2
                },
                Grant {
                    claim: d,
                    holders: 3
                }
            ]
        );
        // max is per request: a request with max=1 waits while any shared hold exists.
        assert_eq!(
            t.acquire(4, b"q", Mode::Shared { max: 1 }, false, None, 0),
            Acquire::Busy
        );
        assert!(matches!(
            t.acquire(4, b"q", Mode::Shared { max: 4 }, false, None, 0),
            Acquire::Granted { holders: 4, .. }
        ));
    }

    #[test]
    fn removing_the_waiting_exclusive_at_the_head_grants_the_shared_behind_it() {
        let mut t = table();
        let s1 = claim_of(&ask(&mut t, 0, b"a", S));
        let x = claim_of(&ask(&mut t, 1, b"a", X));
        let s2 = claim_of(&ask(&mut t, 2, b"a", S));
        let s3 = claim_of(&ask(&mut t, 3, b"a", S));
        // A timeout or cancel of the writer: the readers behind it join the hold.
        assert_eq!(
            remove(&mut t, x),
            vec![
                Grant {
                    claim: s2,
                    holders: 2
                },
                Grant {
                    claim: s3,
                    holders: 3
                }
            ]
        );
        assert_eq!(t.holds_on(b"a").collect::<Vec<_>>(), vec![s1, s2, s3]);
        assert_eq!(t.wait_count(), 0);
    }

    #[test]
    fn try_is_busy_and_queue_limit_is_queue_full() {
        let mut t = table();
        ask(&mut t, 0, b"a", X);
        assert_eq!(t.acquire(1, b"a", X, false, None, 0), Acquire::Busy);
        assert_eq!(t.acquire(1, b"a", X, true, Some(0), 0), Acquire::QueueFull);
        assert!(matches!(
            t.acquire(1, b"a", X, true, Some(1), 0),
            Acquire::Queued { .. }
        ));
        assert_eq!(t.acquire(2, b"a", S, true, Some(1), 0), Acquire::QueueFull);
        assert!(matches!(
            t.acquire(2, b"a", S, true, Some(2), 0),
            Acquire::Queued { .. }
        ));
        // Refusals leave no trace.
        assert_eq!((t.lock_count(), t.hold_count(), t.wait_count()), (1, 1, 2));
        t.check();
    }

    #[test]
    fn an_owner_queues_behind_itself_and_needs_tokens_for_several_holds() {
        let mut t = table();
        let x = claim_of(&ask(&mut t, 0, b"a", X));
        let again = ask(&mut t, 0, b"a", X);
        assert!(
            matches!(again, Acquire::Queued { .. }),
            "holds are per request"
        );
        remove(&mut t, x);
        assert_eq!(t.find_hold(0, b"a", None), Ok(claim_of(&again)));
        let s1 = claim_of(&ask(&mut t, 1, b"b", S));
        let s2 = claim_of(&ask(&mut t, 1, b"b", S));
        assert_eq!(t.find_hold(1, b"b", None), Err(FindError::TokenRequired));
        let tok2 = t.claim(s2).token().unwrap();
        assert_eq!(t.find_hold(1, b"b", Some(tok2)), Ok(s2));
        assert_eq!(t.find_hold(0, b"b", Some(tok2)), Err(FindError::NotHeld));
        assert_eq!(
            t.find_hold(1, b"b", Some(tok2 + 100)),
            Err(FindError::NotHeld)
        );
        let tok1 = t.claim(s1).token().unwrap();
        assert_eq!(t.find_hold(1, b"a", Some(tok1)), Err(FindError::NotHeld));
    }

    // ---------------------------------------------------------------- model test

    /// Model id of a claim; also the payload `P` of the table under test.
    type Mid = u64;

    /// Few names, so contention is high; the last one is too long to be stored inline.
    const NAMES: [&[u8]; 4] = [
        b"a",
        b"b",
        b"jobs:42",
        b"a-name-longer-than-twenty-four-bytes-so-it-spills",
    ];
    const OWNERS: u32 = 5;

    #[derive(Clone, Copy, Debug)]
    struct MClaim {
        owner: OwnerId,
        name: usize,
        mode: Mode,
        /// `Some` once held (the token the table gave it).
        token: Option<u64>,
        /// The table's index of this claim.
        id: ClaimId,
    }

    #[derive(Default, Debug)]
    struct MLock {
        /// In grant order.
        holds: Vec<Mid>,
        /// Strict FIFO, exclusive and shared together.
        waiters: VecDeque<Mid>,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Fate {
        Granted { holders: u32 },
        Queued,
        Busy,
        QueueFull,
    }

    /// The spec's rules, implemented in the most obvious way.
    struct Model {
        claims: BTreeMap<Mid, MClaim>,
        locks: Vec<MLock>,
        next: Mid,
    }

    impl Model {
        fn new() -> Self {
            Model {
                claims: BTreeMap::new(),
                locks: (0..NAMES.len()).map(|_| MLock::default()).collect(),
                next: 0,
            }
        }

        fn compatible(&self, l: usize, mode: Mode) -> bool {
            let holds = &self.locks[l].holds;
            match mode {
                Mode::Exclusive => holds.is_empty(),
                Mode::Shared { max } => {
                    holds.iter().all(|h| self.claims[h].mode != Mode::Exclusive)
                        && (max == 0 || holds.len() < max as usize)
                }
            }
        }

        /// The fate of a new request, decided before it is recorded.
        fn fate(&self, l: usize, mode: Mode, may_wait: bool, queue: Option<u32>) -> Fate {
            let lock = &self.locks[l];
            if lock.waiters.is_empty() && self.compatible(l, mode) {
                Fate::Granted {
                    holders: lock.holds.len() as u32 + 1,
                }
            } else if !may_wait {
                Fate::Busy
            } else if queue.is_some_and(|q| lock.waiters.len() >= q as usize) {
                Fate::QueueFull
            } else {
                Fate::Queued
            }
        }

        /// Grants head waiters while compatible: (claim, holders after its grant).
        fn grant(&mut self, l: usize) -> Vec<(Mid, u32)> {
            let mut out = Vec::new();
            while let Some(&head) = self.locks[l].waiters.front() {
                if !self.compatible(l, self.claims[&head].mode) {
                    break;
                }
                self.locks[l].waiters.pop_front();
                self.locks[l].holds.push(head);
                out.push((head, self.locks[l].holds.len() as u32));
            }
            out
        }

        fn remove(&mut self, m: Mid) -> (MClaim, Vec<(Mid, u32)>) {
            let c = self.claims.remove(&m).expect("model claim");
            let lock = &mut self.locks[c.name];
            if c.token.is_some() {
                lock.holds.retain(|&h| h != m);
            } else {
                lock.waiters.retain(|&w| w != m);
            }
            (c, self.grant(c.name))
        }

        fn held(&self) -> Vec<Mid> {
            self.claims
                .iter()
                .filter(|(_, c)| c.token.is_some())
                .map(|(&m, _)| m)
                .collect()
        }

        fn waiting(&self) -> Vec<Mid> {
            self.claims
                .iter()
                .filter(|(_, c)| c.token.is_none())
                .map(|(&m, _)| m)
                .collect()
        }

        /// An owner's waits in request order.
        fn waits_of(&self, o: OwnerId) -> Vec<Mid> {
            self.claims
                .iter()
                .filter(|(_, c)| c.owner == o && c.token.is_none())
                .map(|(&m, _)| m)
                .collect()
        }

        /// An owner's holds in grant (= token) order.
        fn holds_of(&self, o: OwnerId) -> Vec<Mid> {
            let mut v: Vec<Mid> = self
                .claims
                .iter()
                .filter(|(_, c)| c.owner == o && c.token.is_some())
                .map(|(&m, _)| m)
                .collect();
            v.sort_by_key(|m| self.claims[m].token);
            v
        }
    }

    struct Harness {
        table: Table<Mid>,
        model: Model,
        last_token: u64,
        ctx: String,
        /// How often interesting cases came up, to check the mix exercises them.
        seen: Seen,
    }

    #[derive(Default, Debug)]
    struct Seen {
        fates: [u64; 4],
        multi_grants: u64,
        token_required: u64,
        found: u64,
    }

    impl Harness {
        /// Checks the table's grants against the model's and records their tokens.
        fn grants(&mut self, got: &[Grant], want: &[(Mid, u32)]) {
            let ctx = &self.ctx;
            let got_m: Vec<(Mid, u32)> = got
                .iter()
                .map(|g| (self.table.claim(g.claim).data, g.holders))
                .collect();
            assert_eq!(got_m, want, "{ctx}: grants (model id, holders)");
            self.seen.multi_grants += u64::from(got.len() > 1);
            for g in got {
                let m = self.table.claim(g.claim).data;
                let token = self.table.claim(g.claim).token();
                let token =
                    token.unwrap_or_else(|| panic!("{}: granted claim {m} not held", self.ctx));
                self.token(token);
                self.model.claims.get_mut(&m).unwrap().token = Some(token);
            }
        }

        fn token(&mut self, token: u64) {
            assert!(
                token > self.last_token,
                "{}: token {token} not above {}",
                self.ctx,
                self.last_token
            );
            self.last_token = token;
        }

        fn remove(&mut self, m: Mid) {
            let id = self.model.claims[&m].id;
            let mut got = Vec::new();
            let removed = self.table.remove(id, &mut got);
            let (c, want) = self.model.remove(m);
            assert_eq!(removed.data, m, "{}: removed payload", self.ctx);
            let state = c
                .token
                .map_or(State::Waiting, |token| State::Held { token });
            assert_eq!(removed.state, state, "{}: removed state", self.ctx);
            self.grants(&got, &want);
        }

        fn acquire(
            &mut self,
            owner: OwnerId,
            l: usize,
            mode: Mode,
            may_wait: bool,
            queue: Option<u32>,
        ) {
            let m = self.model.next;
            self.model.next += 1;
            let want = self.model.fate(l, mode, may_wait, queue);
            self.seen.fates[match want {
                Fate::Granted { .. } => 0,
                Fate::Queued => 1,
                Fate::Busy => 2,
                Fate::QueueFull => 3,
            }] += 1;
            let got = self
                .table
                .acquire(owner, NAMES[l], mode, may_wait, queue, m);
            let ctx = &self.ctx;
            let (id, token) = match (got, want) {
                (
                    Acquire::Granted {
                        claim,
                        token,
                        holders,
                    },
                    Fate::Granted { holders: h },
                ) => {
                    assert_eq!(holders, h, "{ctx}: holders of an immediate grant");
                    (claim, Some(token))
                }
                (Acquire::Queued { claim }, Fate::Queued) => (claim, None),
                (Acquire::Busy, Fate::Busy) | (Acquire::QueueFull, Fate::QueueFull) => return,
                (got, want) => panic!("{ctx}: acquire gave {got:?}, model says {want:?}"),
            };
            assert!(
                !self.model.claims.values().any(|c| c.id == id),
                "{ctx}: claim index {id} in use"
            );
            let c = MClaim {
                owner,
                name: l,
                mode,
                token,
                id,
            };
            self.model.claims.insert(m, c);
            match token {
                Some(t) => {
                    self.token(t);
                    self.model.locks[l].holds.push(m);
                }
                None => self.model.locks[l].waiters.push_back(m),
            }
        }

        /// Removes every claim of `owner` the way a disconnect does: waits, then holds.
        fn remove_owner(&mut self, o: OwnerId) {
            while let Some(id) = self.table.first_wait(o) {
                let m = self.table.claim(id).data;
                let want = self.model.waits_of(o).first().copied();
                assert_eq!(Some(m), want, "{}: first_wait({o})", self.ctx);
                self.remove(m);
            }
            assert!(
                self.model.waits_of(o).is_empty(),
                "{}: waits of {o} left",
                self.ctx
            );
            while let Some(id) = self.table.first_hold(o) {
                let m = self.table.claim(id).data;
                let want = self.model.holds_of(o).first().copied();
                assert_eq!(Some(m), want, "{}: first_hold({o})", self.ctx);
                self.remove(m);
            }
            assert!(
                self.model.holds_of(o).is_empty(),
                "{}: holds of {o} left",
                self.ctx
            );
            assert_eq!(self.table.owner_counts(o), (0, 0), "{}", self.ctx);
        }

        fn find_hold(&mut self, o: OwnerId, l: usize, token: Option<u64>) {
            let mine: Vec<Mid> = self.model.locks[l]
                .holds
                .iter()
                .copied()
                .filter(|h| {
                    let c = &self.model.claims[h];
                    c.owner == o && token.is_none_or(|t| c.token == Some(t))
                })
                .collect();
            let want = match mine[..] {
                [] => Err(FindError::NotHeld),
                [m] => Ok(self.model.claims[&m].id),
                _ => Err(FindError::TokenRequired),
            };
            let got = self.table.find_hold(o, NAMES[l], token);
            self.seen.token_required += u64::from(want == Err(FindError::TokenRequired));
            self.seen.found += u64::from(want.is_ok());
            assert_eq!(got, want, "{}: find_hold({o}, {l}, {token:?})", self.ctx);
        }

        /// Everything observable, against the model.
        fn compare(&self) {
            let (t, m, ctx) = (&self.table, &self.model, &self.ctx);
            t.check();
            let mut locks = 0;
            let mut want_locks = Vec::new();
            for (l, name) in NAMES.iter().enumerate() {
                let ml = &m.locks[l];
                let holds: Vec<Mid> = t.holds_on(name).map(|c| t.claim(c).data).collect();
                let waiters: Vec<Mid> = t.waiters_on(name).map(|c| t.claim(c).data).collect();
                assert_eq!(holds, ml.holds, "{ctx}: holds on {l}");
                assert_eq!(
                    waiters,
                    Vec::from(ml.waiters.clone()),
                    "{ctx}: waiters on {l}"
                );
                if ml.holds.is_empty() {
                    assert!(ml.waiters.is_empty(), "{ctx}: model stalls on {l}");
                    assert_eq!(t.inspect(name), None, "{ctx}: empty lock {l} still there");
                    continue;
                }
                locks += 1;
                let info = LockInfo {
                    exclusive: m.claims[&ml.holds[0]].mode == Mode::Exclusive,
                    holders: ml.holds.len() as u32,
                    waiters: ml.waiters.len() as u32,
                };
                let got = t.inspect(name);
                assert_eq!(got.as_ref(), Some(&info), "{ctx}: inspect {l}");
                want_locks.push((name.to_vec(), info));
            }
            let mut got_locks: Vec<(Vec<u8>, LockInfo)> =
                t.locks().map(|(n, i)| (n.to_vec(), i)).collect();
            got_locks.sort_by(|a, b| a.0.cmp(&b.0));
            want_locks.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got_locks, want_locks, "{ctx}: locks()");
            assert_eq!(t.lock_count(), locks, "{ctx}: lock_count");
            assert_eq!(t.hold_count(), m.held().len(), "{ctx}: hold_count");
            assert_eq!(t.wait_count(), m.waiting().len(), "{ctx}: wait_count");
            for (&mid, c) in &m.claims {
                assert!(t.contains(c.id), "{ctx}: claim {mid} gone");
                let tc = t.claim(c.id);
                assert_eq!(tc.data, mid, "{ctx}: payload of {}", c.id);
                assert_eq!(
                    (tc.owner(), tc.mode(), tc.token()),
                    (c.owner, c.mode, c.token),
                    "{ctx}: claim {mid}"
                );
                let state = c
                    .token
                    .map_or(State::Waiting, |token| State::Held { token });
                assert_eq!(tc.state(), state, "{ctx}: state of {mid}");
                assert_eq!(t.claim_name(c.id), NAMES[c.name], "{ctx}: name of {mid}");
            }
            for o in 0..OWNERS {
                let (holds, waits) = (m.holds_of(o), m.waits_of(o));
                assert_eq!(
                    t.owner_counts(o),
                    (holds.len() as u32, waits.len() as u32),
                    "{ctx}: counts of {o}"
                );
                let got: Vec<Mid> = t.waits_of(o).map(|c| t.claim(c).data).collect();
                assert_eq!(got, waits, "{ctx}: waits_of({o})");
                let got: Vec<Mid> = t.holds_of(o).map(|c| t.claim(c).data).collect();
                assert_eq!(got, holds, "{ctx}: holds_of({o})");
                let id = |m: Option<&Mid>| m.map(|m| self.model.claims[m].id);
                assert_eq!(t.first_wait(o), id(waits.first()), "{ctx}: first_wait({o})");
                assert_eq!(t.first_hold(o), id(holds.first()), "{ctx}: first_hold({o})");
            }
        }
    }

    fn random_mode(rng: &mut Rng) -> Mode {
        if rng.chance(40) {
            Mode::Exclusive
        } else {
            Mode::Shared {
                max: rng.below(4) as u32,
            }
        }
    }

    fn pick(rng: &mut Rng, v: &[Mid]) -> Option<Mid> {
        (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize])
    }

    /// Random operations over 5 owners and 4 names against [`Model`].
    #[test]
    fn model() {
        let mut seen = Seen::default();
        for seed in 0..30 {
            let mut rng = Rng::new(seed);
            let mut h = Harness {
                table: Table::new(Fence::starting_at(1 + seed * 1000)),
                model: Model::new(),
                last_token: 0,
                ctx: String::new(),
                seen: Seen::default(),
            };
            for step in 0..3000 {
                // Keep the table small enough that holds and waits both come and go.
                let crowded = h.model.claims.len() >= 24;
                let r = if crowded {
                    40 + rng.below(60)
                } else {
                    rng.below(100)
                };
                let owner = rng.below(u64::from(OWNERS)) as OwnerId;
                let l = rng.below(NAMES.len() as u64) as usize;
                h.ctx = format!("seed {seed} step {step} r {r} owner {owner} name {l}");
                match r {
                    0..=39 => {
                        let mode = random_mode(&mut rng);
                        let may_wait = rng.chance(80);
                        let queue = rng.chance(30).then(|| rng.below(4) as u32);
                        h.ctx += &format!(" acquire {mode:?} may_wait {may_wait} queue {queue:?}");
                        h.acquire(owner, l, mode, may_wait, queue);
                    }
                    40..=59 => {
                        if let Some(m) = pick(&mut rng, &h.model.held()) {
                            h.ctx += &format!(" release {m}");
                            h.remove(m);
                        }
                    }
                    60..=74 => {
                        if let Some(m) = pick(&mut rng, &h.model.waiting()) {
                            h.ctx += &format!(" cancel {m}");
                            h.remove(m);
                        }
                    }
                    75..=79 => {
                        h.ctx += " disconnect";
                        h.remove_owner(owner);
                    }
                    _ => {
                        let token = match rng.below(4) {
                            0 => None,
                            1 => Some(rng.below(h.last_token + 2)),
                            _ => pick(&mut rng, &h.model.held())
                                .and_then(|m| h.model.claims[&m].token),
                        };
                        h.ctx += &format!(" find_hold {token:?}");
                        h.find_hold(owner, l, token);
                        // With no token too, and for an owner that never had anything.
                        h.find_hold(owner, l, None);
                        assert_eq!(
                            h.table.find_hold(OWNERS + 7, NAMES[l], token),
                            Err(FindError::NotHeld)
                        );
                    }
                }
                h.compare();
            }
            for o in 0..OWNERS {
                h.ctx = format!("seed {seed} final disconnect of {o}");
                h.remove_owner(o);
                h.compare();
            }
            assert_eq!(h.table.lock_count(), 0, "seed {seed}: locks left");
            for (i, n) in h.seen.fates.iter().enumerate() {
                seen.fates[i] += n;
            }
            seen.multi_grants += h.seen.multi_grants;
            seen.token_required += h.seen.token_required;
            seen.found += h.seen.found;
        }
        // The mix must reach every outcome often.
        assert!(seen.fates.iter().all(|&n| n > 1000), "{seen:?}");
        assert!(
            seen.multi_grants > 200 && seen.token_required > 100,
            "{seen:?}"
        );
        assert!(seen.found > 1000, "{seen:?}");
        eprintln!("table model: {seen:?}");
    }
}
