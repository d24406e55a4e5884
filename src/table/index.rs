//! The wait index: each owner's waiting claims grouped by key (the engine's reply
//! tag) in `by_key`, a hash table of intrusive lists, so that "this owner's waits with
//! key K" costs O(those waits).
//!
//! The index is built per owner, on demand: an owner's waits enter it on the first
//! lookup by key ([`Table::waits_with_key`]: `CANCEL`, officer's and live-mutex's
//! "already waiting") that finds more than [`KEY_SCAN_MAX`] of them (fewer are
//! scanned), and from then on as they are queued, until the owner has no waits left.
//! A client that never looks its waits up by key (most: they cancel nothing, or by
//! closing) never pays for the index; one that does pays O(its waits) once, then O(1)
//! a lookup, so N cancels still cost O(N). With 100,000 queued waits, linking each
//! into a shared hash table and unlinking it when it timed out was a cache miss each
//! way: over a third of the server's time while their deadlines came due.
//!
//! Each list is stored with its hash ([`KeyList`]). A probe compares the hash before
//! it looks at the list's head claim, and a rehash (which hashbrown also does in
//! place, to clear the tombstones of removed lists) reads no claim.
//!
//! # Invariants
//! - For a `keyed` owner, `by_key` has one list per (owner, key) with at least one of
//!   its waiting claims, found by the hash of (owner, key) and recognised by that hash
//!   and its head claim; an emptied list is removed at once. `by_key` has no list of an
//!   owner that is not `keyed`. An owner whose waits all ended may stay `keyed` (with
//!   no list) until its next wait is queued, which clears the flag.
//! - A [`KeyList`]'s `hash` is the hash of its claims' (owner, key).

use super::*;

/// One (owner, key)'s waits, with the hash of (owner, key).
#[derive(Clone, Copy, Debug)]
pub(super) struct KeyList {
    hash: u64,
    list: List,
}

/// An owner with at most this many waits has them scanned by a lookup by key; past
/// it, the lookup indexes them (once) in `by_key`.
pub const KEY_SCAN_MAX: u32 = 16;

/// The waits of [`Table::waits_with_key`]: through the index, or a scan of the owner's
/// few waits.
pub enum KeyWaits<'a, P> {
    /// The owner's (owner, key) list.
    Indexed(crate::list::Iter<'a, Claim<P>>),
    /// The owner's waits, those with the key.
    Scan(crate::list::Iter<'a, Claim<P>>, &'a [u8]),
}

impl<P: Keyed> Iterator for KeyWaits<'_, P> {
    type Item = ClaimId;

    fn next(&mut self) -> Option<ClaimId> {
        match self {
            KeyWaits::Indexed(it) => it.next(),
            KeyWaits::Scan(it, key) => {
                let claims = it.slab();
                it.find(|&c| claims[c as usize].data.key() == *key)
            }
        }
    }
}

impl<P: Keyed> Table<P> {
    /// The waiting claims of `owner` whose key is `key`, in request order: O(1) to find
    /// (amortised: the first lookup of an owner with more than `KEY_SCAN_MAX` (16) waits
    /// indexes them), then O(1) per claim.
    pub fn waits_with_key<'a>(&'a mut self, owner: OwnerId, key: &'a [u8]) -> KeyWaits<'a, P> {
        let Some(o) = self.owners.get(owner as usize) else {
            return KeyWaits::Indexed(List::EMPTY.iter(&self.claims, by_key()));
        };
        if !o.keyed && o.waits.len() > self.key_scan_max {
            self.index_owner(owner);
        }
        let o = &self.owners[owner as usize];
        if !o.keyed {
            return KeyWaits::Scan(o.waits.iter(&self.claims, by_owner()), key);
        }
        KeyWaits::Indexed(self.indexed_waits(owner, key))
    }

    /// `owner`'s list for `key` in the index, as it is (empty when the owner is not
    /// indexed).
    pub(super) fn indexed_waits<'a>(
        &'a self,
        owner: OwnerId,
        key: &[u8],
    ) -> crate::list::Iter<'a, Claim<P>> {
        let hash = self.hasher.hash_one((owner, key));
        let claims = &self.claims;
        self.by_key
            .find(hash, |l| heads(claims, l, hash, owner, key))
            .map_or(List::EMPTY, |l| l.list)
            .iter(&self.claims, by_key())
    }

    /// The same table indexing an owner's waits on a lookup by key past `max` of them
    /// instead of [`KEY_SCAN_MAX`] (tests: small models index too).
    #[cfg(test)]
    pub(crate) fn with_key_scan_max(mut self, max: u32) -> Self {
        self.key_scan_max = max;
        self
    }

    /// True when `owner`'s waits are indexed by key (for tests and diagnostics).
    pub fn keyed(&self, owner: OwnerId) -> bool {
        self.owners.get(owner as usize).is_some_and(|o| o.keyed)
    }

    /// Indexes every wait of `owner` by key, in request order.
    fn index_owner(&mut self, owner: OwnerId) {
        let waits: Vec<ClaimId> = self.owners[owner as usize]
            .waits
            .iter(&self.claims, by_owner())
            .collect();
        self.owners[owner as usize].keyed = true;
        for claim in waits {
            self.insert_key(claim);
        }
    }

    /// A wait was just queued for its owner: it joins the owner's (owner, key) list when
    /// the owner is indexed. The owner's first wait finds no list of the owner's in
    /// `by_key` (it had no waits), so the owner starts unindexed again.
    pub(super) fn link_key(&mut self, claim: ClaimId) {
        let o = &mut self.owners[self.claims[claim as usize].owner as usize];
        if o.waits.len() == 1 {
            o.keyed = false;
        }
        if o.keyed {
            self.insert_key(claim);
        }
    }

    /// Puts waiting claim `claim` at the end of its (owner, key) list.
    fn insert_key(&mut self, claim: ClaimId) {
        let c = &self.claims[claim as usize];
        let (owner, hash) = (c.owner, self.hasher.hash_one((c.owner, c.data.key())));
        let claims = &self.claims;
        let key = c.data.key();
        if let Some(l) = self
            .by_key
            .find_mut(hash, |l| heads(claims, l, hash, owner, key))
        {
            l.list.push_back(&mut self.claims, &by_key(), claim);
            return;
        }
        let mut list = List::EMPTY;
        list.push_back(&mut self.claims, &by_key(), claim);
        self.by_key
            .insert_unique(hash, KeyList { hash, list }, |l| l.hash);
    }

    /// Takes waiting claim `claim` out of its (owner, key) list, if its owner is indexed.
    pub(super) fn unlink_key(&mut self, claim: ClaimId) {
        let c = &self.claims[claim as usize];
        if !self.owners[c.owner as usize].keyed {
            return;
        }
        let (owner, hash) = (c.owner, self.hasher.hash_one((c.owner, c.data.key())));
        let claims = &self.claims;
        let key = c.data.key();
        match self
            .by_key
            .find_entry(hash, |l| heads(claims, l, hash, owner, key))
        {
            Ok(mut entry) => {
                entry
                    .get_mut()
                    .list
                    .unlink(&mut self.claims, &by_key(), claim);
                if entry.get().list.is_empty() {
                    entry.remove();
                }
            }
            Err(_) => debug_assert!(false, "waiting claim {claim} missing from by_key"),
        }
    }
}

/// True when `l` (a `by_key` list) is `owner`'s list for `key`, whose hash is `hash`.
#[inline]
fn heads<P: Keyed>(
    claims: &Slab<Claim<P>>,
    l: &KeyList,
    hash: u64,
    owner: OwnerId,
    key: &[u8],
) -> bool {
    l.hash == hash
        && l.list.front().is_some_and(|h| {
            let head = &claims[h as usize];
            head.owner == owner && head.data.key() == key
        })
}
