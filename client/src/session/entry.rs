//! One pending request or hold of a session ([`Entry`]), the connection-level error
//! ([`Fatal`]), and the hasher of the request ids that key the entries.

use super::{Lease, Lost};
use crate::error::Result;
use crate::proto::{Assembler, Reply};
use std::hash::Hasher;
use std::task::Waker;

pub(super) enum State {
    /// Sent (or queued), reply not complete.
    Waiting { asm: Assembler, discard: bool },
    /// Reply complete, not yet taken by the caller.
    Done(Result<Reply>),
    /// A grant owned by a guard.
    Held,
}

pub(super) struct Entry {
    pub(super) state: State,
    /// For acquires: the lock name (to release a grant nobody will take).
    pub(super) name: Option<String>,
    pub(super) waker: Option<Waker>,
    pub(super) lost: Option<Lost>,
    pub(super) lost_wakers: Vec<Waker>,
    /// For holds with a deadline: what the client knows of it.
    pub(super) lease: Option<Lease>,
}

/// The connection-level error the server sent with id `*` (e.g. `limit`).
pub(super) struct Fatal {
    pub(super) code: String,
    pub(super) text: String,
}

/// Hashes the request ids that key [`Session`]'s entries: one multiplication by an odd
/// constant. The ids are this session's own sequential numbers (nothing a peer can
/// choose), so no defence against flooding is needed, and the low bits that pick a
/// bucket stay distinct for consecutive ids.
#[derive(Clone, Copy, Default)]
pub(super) struct IdHasher(u64);

/// 2^64 / golden ratio, odd.
const ID_HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used for `u64` keys; correct for anything else.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(ID_HASH_MUL);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(ID_HASH_MUL);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
