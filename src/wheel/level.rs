//! One level of the timer wheel: its slot arithmetic, its 64 slot lists and the bitmap
//! of the occupied ones.
//!
//! A slot of level `L` spans `64^L` ticks and the whole level `64^(L+1)` ticks. Which level
//! and slot a deadline belongs to depends only on the deadline and the wheel's clock
//! ([`level_for`], [`slot_for`]), so the wheel can find and move entries without storing
//! more than their list index.
//!
//! # Invariants
//! - Bit `s` of `occupied` is set iff `slots[s]` is non-empty.
//! - Every entry in `slots[s]` of level `L` has a deadline `d` with
//!   `slot_for(d, L) == s` (the wheel checks the rest: that `L == level_for(now, d)`).

use crate::list::{Chain, List};
use slab::Slab;

/// Number of levels: 7 levels of 6 bits reach `2^42 - 1` ticks ahead, which in
/// microseconds (the server's tick) is 50.9 days, past the longest `u32` millisecond
/// deadline (49.7 days), so no deadline a client can ask for is ever clamped.
pub(super) const LEVELS: usize = 7;
/// Bits of the deadline consumed per level.
pub(super) const LEVEL_BITS: u32 = 6;
/// Slots per level.
pub(super) const SLOTS: usize = 1 << LEVEL_BITS;
/// Largest distance from `now` a timer may be scheduled at; further ones are clamped.
pub(super) const MAX_DELTA: u64 = (1 << (LEVEL_BITS as u64 * LEVELS as u64)) - 1;

/// The level an entry with deadline `deadline > now` belongs to.
pub(super) fn level_for(now: u64, deadline: u64) -> usize {
    // `| (SLOTS - 1)` maps differences in the low bits to level 0; differences beyond
    // the top level's range are folded into the top level (next rotation).
    let masked = ((now ^ deadline) | (SLOTS as u64 - 1)).min(MAX_DELTA);
    let significant = 63 - masked.leading_zeros();
    (significant / LEVEL_BITS) as usize
}

/// The slot of `deadline` within `level`.
pub(super) fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (LEVEL_BITS as usize * level)) & (SLOTS as u64 - 1)) as usize
}

/// A slot that is due: which level and slot, and the time its span starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Expiration {
    pub(super) level: usize,
    pub(super) slot: usize,
    pub(super) start: u64,
}

/// The slot lists of one level and their occupancy bitmap.
pub(super) struct Level {
    /// Bit `s` set iff `slots[s]` is non-empty.
    occupied: u64,
    slots: [List; SLOTS],
}

impl Level {
    /// A level with every slot empty.
    pub(super) const EMPTY: Level = Level {
        occupied: 0,
        slots: [List::EMPTY; SLOTS],
    };

    /// True when no slot holds an entry.
    pub(super) fn is_empty(&self) -> bool {
        self.occupied == 0
    }

    /// The list of `slot` (for the wheel's invariant check).
    #[cfg(test)]
    pub(super) fn slot(&self, slot: usize) -> &List {
        &self.slots[slot]
    }

    /// Appends entry `key` to `slot`; O(1).
    pub(super) fn push<E>(&mut self, slot: usize, slab: &mut Slab<E>, chain: &Chain<E>, key: u32) {
        self.slots[slot].push_back(slab, chain, key);
        self.occupied |= 1 << slot;
    }

    /// Unlinks entry `key` from `slot`; O(1).
    pub(super) fn unlink<E>(
        &mut self,
        slot: usize,
        slab: &mut Slab<E>,
        chain: &Chain<E>,
        key: u32,
    ) {
        self.slots[slot].unlink(slab, chain, key);
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// Empties `slot` and returns its list (the entries stay linked to each other).
    pub(super) fn take_slot(&mut self, slot: usize) -> List {
        self.occupied &= !(1 << slot);
        std::mem::take(&mut self.slots[slot])
    }

    /// The first occupied slot of this level (number `level`) that is due after `now`,
    /// and its start time; `None` when the level is empty.
    ///
    /// Below the top level the slot `now` is in is always empty (its entries would
    /// belong to a lower level), so the search starts just after it; at the top level
    /// that slot can only hold next-rotation entries, which thereby come last.
    pub(super) fn next_expiration(&self, level: usize, now: u64) -> Option<Expiration> {
        if self.is_empty() {
            return None;
        }
        let first = (slot_for(now, level) + 1) % SLOTS;
        let offset = self.occupied.rotate_right(first as u32).trailing_zeros() as usize;
        let slot = (first + offset) % SLOTS;
        let slot_range = 1u64 << (LEVEL_BITS as usize * level);
        let level_range = slot_range << LEVEL_BITS;
        let level_start = now & !(level_range - 1);
        let mut start = level_start + slot as u64 * slot_range;
        if start <= now {
            // Only the top level wraps: a slot at or before the current one is in the
            // next rotation.
            debug_assert_eq!(
                level,
                LEVELS - 1,
                "wheel: slot {slot} of level {level} is not after now {now}"
            );
            start += level_range;
        }
        Some(Expiration { level, slot, start })
    }

    /// The occupancy bit of `slot` (for the wheel's invariant check).
    #[cfg(test)]
    pub(super) fn occupied(&self, slot: usize) -> bool {
        self.occupied >> slot & 1 == 1
    }
}
