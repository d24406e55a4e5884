//! Read-only lookups of the table: counts, claims by id, an owner's holds and waits,
//! a lock's holds and waiters by name, and the lock and claim slots that scans walk.

use super::*;

impl<P: Keyed> Table<P> {
    /// Number of detached holds.
    pub fn detached_count(&self) -> usize {
        self.detached.len() as usize
    }

    /// The detached hold on `name` with `token`, if any.
    pub fn find_detached(&self, name: &[u8], token: u64) -> Option<ClaimId> {
        self.holds_on(name).find(|&c| {
            let claim = &self.claims[c as usize];
            claim.owner == DETACHED && claim.token() == Some(token)
        })
    }

    /// The first detached hold on `name` (in grant order), if any.
    pub fn first_detached_on(&self, name: &[u8]) -> Option<ClaimId> {
        let l = self.find_lock(self.hash(name), name)?;
        self.first_detached(&self.locks[l as usize])
    }

    /// Lock `name` as [`Table::inspect`] gives it, and its first detached hold as
    /// [`Table::first_detached_on`] does, from one lookup.
    pub fn inspect_detached(&self, name: &[u8]) -> Option<(LockInfo, Option<ClaimId>)> {
        let l = self.find_lock(self.hash(name), name)?;
        let lock = &self.locks[l as usize];
        Some((info(lock), self.first_detached(lock)))
    }

    /// `lock`'s first detached hold, in grant order.
    fn first_detached(&self, lock: &Lock) -> Option<ClaimId> {
        lock.holds
            .iter(&self.claims, by_lock())
            .find(|&c| self.claims[c as usize].owner == DETACHED)
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

    /// Looks a lock up by name.
    pub fn inspect(&self, name: &[u8]) -> Option<LockInfo> {
        let l = self.find_lock(self.hash(name), name)?;
        Some(info(&self.locks[l as usize]))
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

    /// The name of the lock in slot `i`, if one lives there.
    pub fn lock_at(&self, i: usize) -> Option<&[u8]> {
        self.locks.get(i).map(|l| l.name.as_slice())
    }

    /// Every lock, in no particular order: (name, info).
    pub fn locks(&self) -> impl Iterator<Item = (&[u8], LockInfo)> + '_ {
        self.locks.iter().map(|(_, l)| (l.name.as_slice(), info(l)))
    }

    /// One past the highest lock slot that may be in use: a scan by slot ends there.
    /// Slots never move, so a lock keeps its slot from creation to removal.
    pub fn lock_slots(&self) -> usize {
        self.locks.capacity()
    }

    /// The lock in slot `slot`, if one is there: (name, info).
    pub fn lock_in_slot(&self, slot: usize) -> Option<(&[u8], LockInfo)> {
        self.locks.get(slot).map(|l| (l.name.as_slice(), info(l)))
    }

    /// One past the highest claim slot that may be in use (a claim's slot is its id).
    pub fn claim_slots(&self) -> usize {
        self.claims.capacity()
    }
}

/// What [`Table::inspect`] and the listings show of `lock`.
fn info(lock: &Lock) -> LockInfo {
    LockInfo {
        exclusive: lock.exclusive(),
        holders: lock.holds.len(),
        waiters: lock.waiters.len(),
    }
}
