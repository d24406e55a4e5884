//! Rendezvous hashing: which of several servers owns a lock name.
//!
//! The function itself lives in `lockbox_client::shard`, its only implementation (its
//! definition and known vectors are documented and tested there); this module re-exports
//! it and adds the [`PrefixRouter`] the poll loops use, which hashes the servers and the
//! name prefix once and then only the name's digits per request.

use lockbox_client::shard::server_state as name_state;
pub use lockbox_client::shard::{
    fmix64, fnv1a64, fnv1a64_extend, rendezvous_route, rendezvous_score, FNV1A64_OFFSET,
    FNV1A64_PRIME,
};

/// [`rendezvous_route`] for names that all start with one prefix, over a fixed server
/// list: the servers and the prefix are hashed once, each route hashes only the rest.
#[derive(Clone, Debug)]
pub(crate) struct PrefixRouter {
    /// [`name_state`] of each server with the prefix, in server order.
    states: Vec<u64>,
}

impl PrefixRouter {
    pub(crate) fn new<S: AsRef<str>>(servers: &[S], prefix: &[u8]) -> PrefixRouter {
        PrefixRouter {
            states: servers
                .iter()
                .map(|s| name_state(s.as_ref(), prefix))
                .collect(),
        }
    }

    /// How many servers it routes to.
    pub(crate) fn servers(&self) -> usize {
        self.states.len()
    }

    /// The index of the server owning `prefix ++ rest` (0 with a single server).
    pub(crate) fn route(&self, rest: &[u8]) -> usize {
        if self.states.len() == 1 {
            return 0;
        }
        let mut best = 0;
        let mut best_score = 0u64;
        for (i, &st) in self.states.iter().enumerate() {
            let score = fmix64(fnv1a64_extend(st, rest));
            if i == 0 || score > best_score {
                best = i;
                best_score = score;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests;
