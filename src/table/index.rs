//! The wait index: each owner's waiting claims grouped by key (the engine's reply
//! tag) in `by_key`, a hash table of intrusive lists, so that "this owner's waits with
//! key K" costs O(those waits).
//!
//! Each list is stored with its hash ([`KeyList`]). A probe compares the hash before
//! it looks at the list's head claim, and a rehash (which hashbrown also does in
//! place, to clear the tombstones of removed lists) reads no claim: with 100,000
//! waits, hashing through the claims made each rehash a cache miss per list, several
//! milliseconds in which no deadline could fire.
//!
//! # Invariants
//! - `by_key` has one list per (owner, key) with at least one waiting claim, found by
//!   the hash of (owner, key) and recognised by that hash and its head claim; an
//!   emptied list is removed at once.
//! - A [`KeyList`]'s `hash` is the hash of its claims' (owner, key).

use super::*;

/// One (owner, key)'s waits, with the hash of (owner, key).
#[derive(Clone, Copy, Debug)]
pub(super) struct KeyList {
    hash: u64,
    list: List,
}

impl<P: Keyed> Table<P> {
    /// The waiting claims of `owner` whose key is `key`, in request order: O(1) to find,
    /// then O(1) per claim.
    pub fn waits_with_key<'a>(
        &'a self,
        owner: OwnerId,
        key: &[u8],
    ) -> impl Iterator<Item = ClaimId> + 'a {
        let hash = self.hasher.hash_one((owner, key));
        let claims = &self.claims;
        let list = self
            .by_key
            .find(hash, |l| heads(claims, l, hash, owner, key))
            .map_or(List::EMPTY, |l| l.list);
        list.iter(&self.claims, by_key())
    }

    /// Puts waiting claim `claim` at the end of its (owner, key) list.
    pub(super) fn link_key(&mut self, claim: ClaimId) {
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

    /// Takes waiting claim `claim` out of its (owner, key) list.
    pub(super) fn unlink_key(&mut self, claim: ClaimId) {
        let c = &self.claims[claim as usize];
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
