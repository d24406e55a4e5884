//! The sharding function: rendezvous (highest random weight) hashing of lock names over
//! server addresses. Pure functions with no I/O and no runtime, usable without the
//! `runtime` feature (`default-features = false`).
//!
//! Every lockbox client must route a name to the same server, so the function is
//! defined on bytes and any language can reproduce it:
//!
//! ```text
//! fnv1a64(bytes):  h = 0xcbf29ce484222325
//!                  for each byte b: h = (h XOR b) * 0x100000001b3   (mod 2^64)
//! fmix64(k):       k ^= k >> 33; k *= 0xff51afd7ed558ccd;          (mod 2^64)
//!                  k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53;
//!                  k ^= k >> 33
//! score(server, name) = fmix64(fnv1a64(server ++ [0x00] ++ name))
//! route(servers, name) = the index i with the highest score(servers[i], name);
//!                        on equal scores the lowest index wins
//! ```
//!
//! - `server` is the server's address string exactly as configured, as UTF-8 bytes,
//!   e.g. `127.0.0.1:7654` or `[::1]:7654`: no resolution or normalisation happens
//!   before hashing, so every client must spell the list the same way.
//! - `name` is the lock name's bytes as sent on the wire.
//! - `fmix64` is MurmurHash3's 64-bit finaliser. Plain FNV-1a spreads similar inputs
//!   badly (`lg:0`..`lg:99999` over two adjacent ports: 43% / 57%); with `fmix64`
//!   49.7% / 50.3%.
//! - Adding or removing a server moves only the names that go to or come from it.
//!
//! ```
//! use lockbox_client::shard::{fnv1a64, rendezvous_route, rendezvous_score};
//!
//! assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
//! assert_eq!(rendezvous_score("127.0.0.1:7001", b"lg:0"), 0x44c20e1aab9887ca);
//! let servers = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
//! assert_eq!(rendezvous_route(&servers, b"lg:0"), Some(2));
//! ```
//!
//! # Invariants
//! - The result depends only on the address strings and the name bytes: the same
//!   inputs route the same way in every process, version and language.
//! - `rendezvous_route` returns `None` only for an empty server list, otherwise an index
//!   into it.

/// FNV-1a 64-bit offset basis.
pub const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
pub const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_extend(FNV1A64_OFFSET, bytes)
}

/// Continues an FNV-1a 64 hash whose state is `h` over more `bytes`
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

/// The FNV-1a state after `server ++ [0x00] ++ prefix`: callers that route many names
/// sharing a prefix hash the prefix once and finish each name with
/// `fmix64(fnv1a64_extend(state, rest_of_name))`.
pub fn server_state(server: &str, prefix: &[u8]) -> u64 {
    let h = fnv1a64_extend(FNV1A64_OFFSET, server.as_bytes());
    let h = fnv1a64_extend(h, &[0]);
    fnv1a64_extend(h, prefix)
}

/// The rendezvous score of lock `name` on `server`:
/// `fmix64(fnv1a64(server ++ [0x00] ++ name))`.
pub fn rendezvous_score(server: &str, name: &[u8]) -> u64 {
    fmix64(server_state(server, name))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64_extend(fnv1a64(b"foo"), b"bar"), fnv1a64(b"foobar"));
        assert_eq!(fmix64(0), 0);
    }

    #[test]
    fn rendezvous_known_vectors() {
        // Computed independently from the definition above (the README pins the same).
        let v: &[(&str, &[u8], u64)] = &[
            ("127.0.0.1:7001", b"", 0xa63bfbff87ef688c),
            ("127.0.0.1:7001", b"a", 0x47f07d38ab897fa1),
            ("127.0.0.1:7001", b"lg:0", 0x44c20e1aab9887ca),
            ("127.0.0.1:7001", b"jobs:42", 0x91cca51fa2e3ac99),
            ("127.0.0.1:7001", "été".as_bytes(), 0xed30aa2cc65c01ee),
            ("127.0.0.1:7002", b"", 0xacd3d7c1b369d34f),
            ("127.0.0.1:7002", b"a", 0x0940320f3a8fea68),
            ("127.0.0.1:7002", b"lg:0", 0x912161898369f58e),
            ("127.0.0.1:7002", b"jobs:42", 0x0fa2407e4a910973),
            ("127.0.0.1:7002", "été".as_bytes(), 0xfd486a78c1f7e70a),
            ("127.0.0.1:7003", b"", 0xb9ce5fed59d440c4),
            ("127.0.0.1:7003", b"a", 0x0e7df7455d545417),
            ("127.0.0.1:7003", b"lg:0", 0xe9f91e111cddfe73),
            ("127.0.0.1:7003", b"jobs:42", 0x710a99e1a2dc830d),
            ("127.0.0.1:7003", "été".as_bytes(), 0xe1058a63343b0baa),
        ];
        for &(server, name, want) in v {
            assert_eq!(
                rendezvous_score(server, name),
                want,
                "score({server}, {:?})",
                String::from_utf8_lossy(name)
            );
        }
        let servers = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
        assert_eq!(rendezvous_route(&servers, b""), Some(2));
        assert_eq!(rendezvous_route(&servers, b"a"), Some(0));
        assert_eq!(rendezvous_route(&servers, b"lg:0"), Some(2));
        assert_eq!(rendezvous_route(&servers, b"jobs:42"), Some(0));
        assert_eq!(rendezvous_route(&servers, "été".as_bytes()), Some(1));
        assert_eq!(rendezvous_route::<&str>(&[], b"x"), None);
        assert_eq!(rendezvous_route(&["only:1"], b"x"), Some(0));
    }

    #[test]
    fn ties_go_to_lower_index() {
        assert_eq!(rendezvous_route(&["h:1", "h:1"], b"x"), Some(0));
    }

    #[test]
    fn prefix_state_matches_score() {
        for n in 0..500u32 {
            let rest = n.to_string();
            let name = format!("lg:{rest}");
            let s = server_state("127.0.0.1:7001", b"lg:");
            assert_eq!(
                fmix64(fnv1a64_extend(s, rest.as_bytes())),
                rendezvous_score("127.0.0.1:7001", name.as_bytes())
            );
        }
    }

    #[test]
    fn spread_is_even_and_removal_moves_only_the_removed_servers_names() {
        let servers: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", 7001 + i)).collect();
        let mut counts = [0u32; 3];
        for n in 0..30_000 {
            let name = format!("jobs:{n}");
            let i = rendezvous_route(&servers, name.as_bytes()).unwrap();
            counts[i] += 1;
            // Without server 1, names of 0 and 2 stay put.
            let rest = [servers[0].as_str(), servers[2].as_str()];
            let j = rendezvous_route(&rest, name.as_bytes()).unwrap();
            if i != 1 {
                assert_eq!(rest[j], servers[i], "{name} moved");
            }
        }
        for c in counts {
            assert!((9_000..=11_000).contains(&c), "uneven: {counts:?}");
        }
    }
}
