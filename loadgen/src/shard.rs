//! Rendezvous hashing: which of several servers owns a lock name.
//!
//! Owns the sharding function every lockbox client must reproduce byte for byte (its
//! definition and known vectors are in the crate documentation) and nothing else: no
//! I/O, no state. The poll loops route through a [`PrefixRouter`], which hashes the
//! servers and the name prefix once and then only the name's digits per request.

/// FNV-1a 64-bit offset basis.
pub const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
pub const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_extend(FNV1A64_OFFSET, bytes)
}

/// Continue an FNV-1a 64 hash whose state is `h` over more `bytes`
/// (`fnv1a64(a ++ b) == fnv1a64_extend(fnv1a64(a), b)`).
pub fn fnv1a64_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV1A64_PRIME);
    }
    h
}

/// MurmurHash3's 64-bit finaliser (`fmix64`), a bijection that spreads every input bit
/// over the whole output.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The rendezvous score of lock `name` on `server`:
/// `fmix64(fnv1a64(server ++ [0x00] ++ name))` (see the crate documentation).
pub fn rendezvous_score(server: &str, name: &[u8]) -> u64 {
    fmix64(fnv1a64_extend(name_state(server, b""), name))
}

/// The index of the server that owns lock `name`: the highest [`rendezvous_score`],
/// the lowest index on equal scores. `None` when `servers` is empty.
pub fn rendezvous_route<S: AsRef<str>>(servers: &[S], name: &[u8]) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, s) in servers.iter().enumerate() {
        let score = rendezvous_score(s.as_ref(), name);
        match best {
            Some((_, b)) if score <= b => {}
            _ => best = Some((i, score)),
        }
    }
    best.map(|(i, _)| i)
}

/// FNV-1a state after `server ++ [0x00] ++ prefix`: hashing the rest of a name from
/// here gives the same score as [`rendezvous_score`] of the whole name.
fn name_state(server: &str, prefix: &[u8]) -> u64 {
    let h = fnv1a64_extend(FNV1A64_OFFSET, server.as_bytes());
    let h = fnv1a64_extend(h, &[0]);
    fnv1a64_extend(h, prefix)
}

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
