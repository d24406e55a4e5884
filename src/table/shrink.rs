//! Giving the table's memory back after a burst (see [`crate::shrink`] for the rule):
//! the name index rehashes into a smaller table, and the lock and claim slabs drop their
//! vacant tails. Called by the engine's periodic maintenance, never per request.
//!
//! # Invariants
//! - No lock, claim or index changes: only capacity (claim and lock indices stay valid).

use super::Table;
use crate::shrink;
use std::hash::BuildHasher;

/// The capacities of the table's growable parts, for tests and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Name index (hash table) capacity.
    pub index: usize,
    /// Lock slab capacity.
    pub locks: usize,
    /// Claim slab capacity.
    pub claims: usize,
}

impl<P> Table<P> {
    /// Shrinks every part that is below a quarter full; returns whether any shrank.
    /// Costs O(live locks) for the index and O(slab extent) for a slab that is trimmed.
    pub fn shrink(&mut self) -> bool {
        let (locks, hasher) = (&self.locks, &self.hasher);
        let index = shrink::table(&mut self.index, |&i| {
            hasher.hash_one(locks[i as usize].name.as_slice())
        });
        let locks = shrink::slab(&mut self.locks);
        let claims = shrink::slab(&mut self.claims);
        index | locks | claims
    }

    /// The current capacities.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            index: self.index.capacity(),
            locks: self.locks.capacity(),
            claims: self.claims.capacity(),
        }
    }
}
