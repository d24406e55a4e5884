//! Giving memory back after a burst: the one rule every growable structure of the server
//! follows (slabs, hash tables, scratch vectors), and the helpers that apply it.
//!
//! A structure is shrunk when it is **below a quarter full** and bigger than
//! [`SHRINK_MIN`] entries. A vector or hash table is then shrunk to twice its length,
//! so it is half full afterwards: it has to grow 2x before it reallocates again and to
//! fall below a quarter again (to half its new length) before it is shrunk again, and a steady load never oscillates
//! between the two (hysteresis). A [`Slab`] cannot move its live entries (their keys
//! are held elsewhere), so it can only drop the vacant entries after its last live one
//! ([`Slab::shrink_to_fit`]); once its tail is vacant, as after a mass release, that is
//! all of the memory.
//!
//! Memory of a freed allocation above glibc's mmap threshold goes back to the kernel at
//! once; the big slabs and tables are far above it.
//!
//! # Invariants
//! - A shrink never changes a key, an index or an element: only capacity.
//! - Nothing is shrunk while at least a quarter full, or when at most [`SHRINK_MIN`].

use hashbrown::HashTable;
use slab::Slab;

/// Structures with at most this many entries of capacity are never shrunk (not worth
/// the reallocation).
pub const SHRINK_MIN: usize = 1024;

/// A structure is shrunk when its length times this is below its capacity.
pub const SHRINK_BELOW: usize = 4;

/// True when a structure of `len` entries and `capacity` is due for shrinking.
pub fn due(len: usize, capacity: usize) -> bool {
    capacity > SHRINK_MIN && len.saturating_mul(SHRINK_BELOW) < capacity
}

/// The capacity a due structure is shrunk to: half full, at least [`SHRINK_MIN`].
fn target(len: usize) -> usize {
    len.saturating_mul(2).max(SHRINK_MIN)
}

/// Shrinks a vector when due; returns whether its capacity changed.
pub fn vec<T>(v: &mut Vec<T>) -> bool {
    if !due(v.len(), v.capacity()) {
        return false;
    }
    let before = v.capacity();
    v.shrink_to(target(v.len()));
    v.capacity() != before
}

/// Shrinks a hash table when due, rehashing its entries with `hash`; returns whether
/// its capacity changed.
pub fn table<T>(t: &mut HashTable<T>, hash: impl Fn(&T) -> u64) -> bool {
    if !due(t.len(), t.capacity()) {
        return false;
    }
    let before = t.capacity();
    t.shrink_to(target(t.len()), hash);
    t.capacity() != before
}

/// Drops a slab's vacant tail when the slab is due; returns whether its capacity
/// changed. O(entries up to the last live one) when it trims, O(1) otherwise.
pub fn slab<T>(s: &mut Slab<T>) -> bool {
    if !due(s.len(), s.capacity()) {
        return false;
    }
    let before = s.capacity();
    s.shrink_to_fit();
    s.capacity() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_structures_below_a_quarter_full_and_above_the_minimum_shrink() {
        assert!(!due(0, SHRINK_MIN));
        assert!(due(0, SHRINK_MIN + 1));
        assert!(!due(1_000, 4_000), "exactly a quarter full stays");
        assert!(due(999, 4_000));
        let mut v: Vec<u64> = Vec::with_capacity(100_000);
        v.extend(0..30_000);
        assert!(!vec(&mut v), "30% full: kept");
        v.truncate(20_000);
        assert!(vec(&mut v));
        assert!(
            v.capacity() >= 40_000 && v.capacity() < 100_000,
            "{}",
            v.capacity()
        );
        assert_eq!(v[19_999], 19_999, "elements kept");
        // Half full now: no oscillation at a steady length.
        assert!(!vec(&mut v));
        let mut small: Vec<u8> = Vec::with_capacity(SHRINK_MIN);
        assert!(!vec(&mut small), "at the minimum: kept");
    }

    #[test]
    fn a_slab_gives_back_its_vacant_tail_and_keeps_its_keys() {
        let mut s: Slab<u64> = Slab::new();
        let keys: Vec<usize> = (0..50_000).map(|i| s.insert(i)).collect();
        // A live entry near the top pins the extent: nothing can be trimmed.
        for &k in &keys[10..49_000] {
            s.remove(k);
        }
        let before = s.capacity();
        slab(&mut s);
        assert!(s.capacity() >= 49_000 && s.capacity() <= before);
        for &k in &keys[49_000..] {
            s.remove(k);
        }
        assert!(slab(&mut s), "the vacant tail goes");
        assert!(s.capacity() < SHRINK_MIN, "{}", s.capacity());
        for (i, &k) in keys[..10].iter().enumerate() {
            assert_eq!(s[k], i as u64, "key {k} kept");
        }
        // New inserts reuse the slab as usual.
        let k = s.insert(7);
        assert_eq!(s[k], 7);
        assert_eq!(s.len(), 11);
    }

    #[test]
    fn a_hash_table_shrinks_to_half_full() {
        let h = |x: &u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut t: HashTable<u64> = HashTable::new();
        for x in 0..100_000u64 {
            t.insert_unique(h(&x), x, h);
        }
        for x in 1_000..100_000u64 {
            t.find_entry(h(&x), |&y| y == x).unwrap().remove();
        }
        let before = t.capacity();
        assert!(table(&mut t, h));
        assert!(t.capacity() < before / 8, "{} -> {}", before, t.capacity());
        for x in 0..1_000u64 {
            assert!(t.find(h(&x), |&y| y == x).is_some(), "{x} kept");
        }
        assert!(!table(&mut t, h), "nothing more to do");
    }
}
