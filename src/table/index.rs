//! The wait index: each owner's waiting claims grouped by key (the engine's reply
//! tag) in `by_key`, a hash table of intrusive lists, so that "this owner's waits with
//! key K" costs O(those waits).
//!
//! # Invariants
//! - `by_key` has one list per (owner, key) with at least one waiting claim, found by
//!   the hash of (owner, key) and recognised by its head claim; an emptied list is
//!   removed at once.

use super::*;

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
            .find(hash, |l| heads(claims, l, owner, key))
            .copied()
            .unwrap_or(List::EMPTY);
        list.iter(&self.claims, by_key())
    }

    /// Puts waiting claim `claim` at the end of its (owner, key) list.
    pub(super) fn link_key(&mut self, claim: ClaimId) {
        let c = &self.claims[claim as usize];
        let (owner, hash) = (c.owner, self.hasher.hash_one((c.owner, c.data.key())));
        let claims = &self.claims;
        let key = c.data.key();
        if let Some(list) = self.by_key.find_mut(hash, |l| heads(claims, l, owner, key)) {
            list.push_back(&mut self.claims, &by_key(), claim);
            return;
        }
        let mut list = List::EMPTY;
        list.push_back(&mut self.claims, &by_key(), claim);
        let (claims, hasher) = (&self.claims, &self.hasher);
        self.by_key.insert_unique(hash, list, |l| {
            let head = &claims[l.front().unwrap_or(0) as usize];
            hasher.hash_one((head.owner, head.data.key()))
        });
    }

    /// Takes waiting claim `claim` out of its (owner, key) list.
    pub(super) fn unlink_key(&mut self, claim: ClaimId) {
        let c = &self.claims[claim as usize];
        let (owner, hash) = (c.owner, self.hasher.hash_one((c.owner, c.data.key())));
        let claims = &self.claims;
        let key = c.data.key();
        match self
            .by_key
            .find_entry(hash, |l| heads(claims, l, owner, key))
        {
            Ok(mut entry) => {
                entry.get_mut().unlink(&mut self.claims, &by_key(), claim);
                if entry.get().is_empty() {
                    entry.remove();
                }
            }
            Err(_) => debug_assert!(false, "waiting claim {claim} missing from by_key"),
        }
    }
}

/// True when `list` (a `by_key` list) is `owner`'s list for `key`.
fn heads<P: Keyed>(claims: &Slab<Claim<P>>, list: &List, owner: OwnerId, key: &[u8]) -> bool {
    list.front().is_some_and(|h| {
        let head = &claims[h as usize];
        head.owner == owner && head.data.key() == key
    })
}
