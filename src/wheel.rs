//! Hierarchical timer wheel with 1 ms resolution.
//!
//! # Data structure
//!
//! The wheel has 6 levels of 64 slots each. A slot of level `L` spans
//! `64^L` ms and a whole level spans `64^(L+1)` ms, so the wheel reaches
//! `2^36 - 1` ms ahead of its clock `now`. Every slot is a FIFO list of entries,
//! doubly linked through `u32` slab indices (`NIL` ends a list), so linking at the
//! tail and unlinking anywhere are O(1). The entries themselves live in one
//! [`slab::Slab`]; a [`TimerId`] is the slab key. Besides the 384 slot lists there is
//! one *pending* list for timers inserted with a deadline `<= now`.
//!
//! # Invariants (relative to the current `now`)
//!
//! - An entry with deadline `d <= now` is in the pending list (it was inserted
//!   already due and fires on the next [`Wheel::advance`]).
//! - An entry with `d > now` is at level `L = level_for(now, d)`: the index of the
//!   most significant bit in which `now` and `d` differ, divided by 6 (bits 0..5
//!   map to level 0); differences at bit 36 or above map to the top level 5.
//!   Its slot is `(d >> 6L) & 63`. Because `d - now <= 2^36 - 1` (inserts are
//!   clamped), a top-level slot index `<=` the current one means "next rotation";
//!   that is the only place where the wheel wraps.
//! - Consequently all entries with the same deadline share one list, in the order
//!   they were inserted (lists are pushed at the tail, popped at the head, and a
//!   cascade moves a whole list in order).
//! - Each level's `occupied` bitmap has bit `s` set iff slot `s`'s list is non-empty.
//!   The slot `now` is in is empty below the top level (its entries would belong to a
//!   lower level), so the next slot due at a level is found by rotating the bitmap to
//!   start just after that slot and taking `trailing_zeros` (at the top level the
//!   current slot thereby comes last, as befits next-rotation entries). The first
//!   non-empty level holds the earliest slot, because every entry of a lower level
//!   lies inside the current slot of each higher level.
//! - Near a `2^36` boundary a timer only a few ms away can sit in the top level; it is
//!   still never fired early, [`Wheel::next_wake`] just reports its slot start.
//!
//! # Firing
//!
//! [`Wheel::advance`] repeatedly takes the earliest due slot whose *start* time is
//! `<= now`, moves the clock to that start, fires the entries whose deadline equals it
//! (always all of them at level 0) and cascades the rest down to the level they now
//! belong to. A timer is therefore **never fired before its deadline**, and always by
//! the first `advance` whose argument reaches it. The cost is proportional to the
//! occupied slots visited plus the entries moved, never to the elapsed milliseconds.

use slab::Slab;

/// Number of levels.
const LEVELS: usize = 6;
/// Bits of the deadline consumed per level.
const LEVEL_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << LEVEL_BITS;
/// Largest distance from `now` a timer may be scheduled at; further ones are clamped.
const MAX_DELTA: u64 = (1 << (LEVEL_BITS as u64 * LEVELS as u64)) - 1;
/// End-of-list sentinel for slab indices.
const NIL: u32 = u32::MAX;
/// Index of the pending list (deadlines already due at insertion) in `lists`.
const PENDING: usize = LEVELS * SLOTS;

/// Handle to a scheduled timer.
///
/// Valid from [`Wheel::insert`] until the timer fires or is cancelled; after that the
/// same number may be handed out again by a later insert, so holders must drop it.
///
/// It holds the slab key plus one, so `Option<TimerId>` is as small as a `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(std::num::NonZeroU32);

impl TimerId {
    fn from_key(key: u32) -> TimerId {
        TimerId(std::num::NonZeroU32::MIN.saturating_add(key))
    }
    fn key(self) -> u32 {
        self.0.get() - 1
    }
}

/// A scheduled timer.
struct Entry<T> {
    /// Absolute deadline (ms), after clamping.
    deadline: u64,
    /// Previous entry in the same list, or `NIL`.
    prev: u32,
    /// Next entry in the same list, or `NIL`.
    next: u32,
    /// Index into `Wheel::lists`: `level * SLOTS + slot`, or `PENDING`.
    list: u16,
    value: T,
}

/// Head and tail of one intrusive FIFO list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// A slot that is due: which list, and the time its span starts.
#[derive(Clone, Copy, Debug)]
struct Expiration {
    level: usize,
    slot: usize,
    start: u64,
}

/// Hierarchical timer wheel with 1 ms resolution.
///
/// Time is an argument: the wheel never reads a clock. Deadlines are absolute ms on the
/// caller's clock; see the module documentation for the layout and guarantees.
pub struct Wheel<T> {
    /// The time last advanced to.
    now: u64,
    /// Per level, bit `s` set iff `lists[level * SLOTS + s]` is non-empty.
    occupied: [u64; LEVELS],
    /// `LEVELS * SLOTS` slot lists followed by the pending list.
    lists: Box<[List; PENDING + 1]>,
    entries: Slab<Entry<T>>,
}

/// The level an entry with deadline `deadline > now` belongs to.
fn level_for(now: u64, deadline: u64) -> usize {
    // `| (SLOTS - 1)` maps differences in the low bits to level 0; differences beyond
    // the top level's range are folded into the top level (next rotation).
    let masked = ((now ^ deadline) | (SLOTS as u64 - 1)).min(MAX_DELTA);
    let significant = 63 - masked.leading_zeros();
    (significant / LEVEL_BITS) as usize
}

/// The slot of `deadline` within `level`.
fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (LEVEL_BITS as usize * level)) & (SLOTS as u64 - 1)) as usize
}

impl<T> Wheel<T> {
    /// A wheel whose clock starts at `now` (ms).
    pub fn new(now: u64) -> Self {
        Wheel {
            now,
            occupied: [0; LEVELS],
            lists: Box::new([List::EMPTY; PENDING + 1]),
            entries: Slab::new(),
        }
    }

    /// Time the wheel has advanced to (the `now` of the last [`advance`](Self::advance),
    /// or of [`new`](Self::new)).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Schedules `value` to fire at `deadline` (absolute ms); O(1).
    ///
    /// A deadline `<= now()` fires on the next [`advance`](Self::advance), whatever its
    /// argument. A deadline more than `2^36 - 1` ms after `now()` is clamped to
    /// `now() + 2^36 - 1` (about 2.2 years); [`deadline`](Self::deadline) and the fired
    /// pair then report the clamped value.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerId {
        let deadline = deadline.min(self.now.saturating_add(MAX_DELTA));
        let list = self.list_for(deadline);
        let key = self.entries.insert(Entry {
            deadline,
            prev: NIL,
            next: NIL,
            list: list as u16,
            value,
        });
        assert!(key < NIL as usize, "wheel: more than 2^32 - 1 timers");
        let key = key as u32;
        self.link(key, list);
        TimerId::from_key(key)
    }

    /// Removes a scheduled timer and returns its value; O(1).
    ///
    /// `id` must be live (inserted and neither fired nor cancelled since).
    pub fn cancel(&mut self, id: TimerId) -> T {
        debug_assert!(
            self.entries.contains(id.key() as usize),
            "wheel: cancel of {id:?}, which is not scheduled (fired or cancelled already?)"
        );
        self.unlink(id.key());
        self.entries.remove(id.key() as usize).value
    }

    /// The deadline of a scheduled timer (after clamping, see [`insert`](Self::insert)).
    ///
    /// `id` must be live.
    pub fn deadline(&self, id: TimerId) -> u64 {
        debug_assert!(
            self.entries.contains(id.key() as usize),
            "wheel: deadline of {id:?}, which is not scheduled"
        );
        self.entries[id.key() as usize].deadline
    }

    /// A lower bound on the earliest deadline, for the poll timeout; O(levels).
    ///
    /// `None` when nothing is scheduled. Otherwise `t` with `now() <= t`, and
    /// `t <= ` the earliest deadline whenever that deadline is `>= now()`; a timer
    /// inserted already due makes it `now()`. When the earliest timer sits in level 0
    /// (less than 64 ms away, same 64 ms block) `t` is exactly its deadline; further
    /// out it is the start of the timer's slot, so the caller may wake early, call
    /// [`advance`](Self::advance) (which cascades and fires nothing yet) and ask again.
    pub fn next_wake(&self) -> Option<u64> {
        if self.lists[PENDING].head != NIL {
            return Some(self.now);
        }
        self.next_expiration().map(|e| e.start)
    }

    /// Moves the clock to `now` and fires every timer with deadline `<= now`, appending
    /// `(deadline, value)` to `fired` in nondecreasing deadline order (insertion order
    /// among equal deadlines).
    ///
    /// `now` must be `>= now()` (an earlier `now` is treated as `now()` in release
    /// builds). Cost: occupied slots visited plus entries fired or cascaded.
    pub fn advance(&mut self, now: u64, fired: &mut Vec<(u64, T)>) {
        debug_assert!(
            now >= self.now,
            "wheel: advance to {now} but the clock is already at {}",
            self.now
        );
        let now = now.max(self.now);

        // Timers inserted already due: all deadlines <= the old now < any wheel entry.
        let start = fired.len();
        let mut key = self.take_list(PENDING);
        while key != NIL {
            let entry = self.entries.remove(key as usize);
            key = entry.next;
            fired.push((entry.deadline, entry.value));
        }
        // Stable: equal deadlines keep insertion order.
        fired[start..].sort_by_key(|f| f.0);

        while let Some(exp) = self.next_expiration() {
            if exp.start > now {
                break;
            }
            debug_assert!(
                exp.start > self.now,
                "wheel: expiration {exp:?} not after clock {}",
                self.now
            );
            self.now = exp.start;
            let mut key = self.take_list(exp.level * SLOTS + exp.slot);
            while key != NIL {
                let (deadline, next) = {
                    let e = &self.entries[key as usize];
                    (e.deadline, e.next)
                };
                debug_assert!(
                    deadline >= exp.start && (exp.level > 0 || deadline == exp.start),
                    "wheel: entry {key} with deadline {deadline} found in {exp:?}"
                );
                if deadline <= exp.start {
                    let entry = self.entries.remove(key as usize);
                    fired.push((entry.deadline, entry.value));
                } else {
                    let list = self.list_for(deadline);
                    debug_assert!(
                        list / SLOTS < exp.level,
                        "wheel: cascade of entry {key} (deadline {deadline}) from {exp:?} \
                         to list {list} is not downwards"
                    );
                    self.link(key, list);
                }
                key = next;
            }
        }
        self.now = now;
    }

    /// Number of scheduled timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The list (index into `lists`) an entry with `deadline` belongs to at `self.now`.
    fn list_for(&self, deadline: u64) -> usize {
        if deadline <= self.now {
            PENDING
        } else {
            let level = level_for(self.now, deadline);
            level * SLOTS + slot_for(deadline, level)
        }
    }

    /// The earliest non-empty slot and its start time; O(levels).
    fn next_expiration(&self) -> Option<Expiration> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        let shift = LEVEL_BITS as usize * level;
        let now_slot = slot_for(self.now, level);
        // Search from the slot after the current one: below the top level the current
        // slot is always empty, and at the top level it can only hold next-rotation
        // entries, which are due after every other top-level slot.
        let first = (now_slot + 1) % SLOTS;
        let offset = self.occupied[level]
            .rotate_right(first as u32)
            .trailing_zeros() as usize;
        let slot = (first + offset) % SLOTS;
        let slot_range = 1u64 << shift;
        let level_range = slot_range << LEVEL_BITS;
        let level_start = self.now & !(level_range - 1);
        let mut start = level_start + slot as u64 * slot_range;
        if start <= self.now {
            // Only the top level wraps: a slot at or before the current one is in the
            // next rotation.
            debug_assert_eq!(
                level,
                LEVELS - 1,
                "wheel: slot {slot} of level {level} is not after now {}",
                self.now
            );
            start += level_range;
        }
        Some(Expiration { level, slot, start })
    }

    /// Appends entry `key` at the tail of list `list` and records the list in it.
    fn link(&mut self, key: u32, list: usize) {
        let tail = self.lists[list].tail;
        {
            let e = &mut self.entries[key as usize];
            e.list = list as u16;
            e.prev = tail;
            e.next = NIL;
        }
        if tail == NIL {
            debug_assert_eq!(
                self.lists[list].head, NIL,
                "wheel: list {list} has a head but no tail"
            );
            self.lists[list].head = key;
            if list < PENDING {
                self.occupied[list / SLOTS] |= 1 << (list % SLOTS);
            }
        } else {
            self.entries[tail as usize].next = key;
        }
        self.lists[list].tail = key;
    }

    /// Unlinks entry `key` from the list it is in (the entry stays in the slab).
    fn unlink(&mut self, key: u32) {
        let (list, prev, next) = {
            let e = &self.entries[key as usize];
            (e.list as usize, e.prev, e.next)
        };
        if prev == NIL {
            debug_assert_eq!(
                self.lists[list].head, key,
                "wheel: entry {key} has no prev but is not head"
            );
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            debug_assert_eq!(
                self.lists[list].tail, key,
                "wheel: entry {key} has no next but is not tail"
            );
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if self.lists[list].head == NIL && list < PENDING {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
    }

    /// Empties list `list` and returns its old head; the entries keep their `next` links.
    fn take_list(&mut self, list: usize) -> u32 {
        let head = self.lists[list].head;
        self.lists[list] = List::EMPTY;
        if list < PENDING {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
        head
    }

    /// Verifies every structural invariant; panics with context on the first violation.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut seen = 0usize;
        for list in 0..=PENDING {
            let List { head, tail } = self.lists[list];
            if list < PENDING {
                let bit = self.occupied[list / SLOTS] >> (list % SLOTS) & 1 == 1;
                assert_eq!(
                    bit,
                    head != NIL,
                    "bitmap bit of level {} slot {} disagrees with its list (head {head})",
                    list / SLOTS,
                    list % SLOTS
                );
            }
            assert_eq!(
                head == NIL,
                tail == NIL,
                "list {list}: head {head} tail {tail}"
            );
            let mut prev = NIL;
            let mut key = head;
            let mut count = 0usize;
            while key != NIL {
                count += 1;
                assert!(count <= self.entries.len(), "list {list} has a cycle");
                let e = self
                    .entries
                    .get(key as usize)
                    .unwrap_or_else(|| panic!("list {list} links to free slab key {key}"));
                assert_eq!(e.prev, prev, "list {list}: entry {key} has a wrong prev");
                assert_eq!(
                    e.list as usize, list,
                    "entry {key} is in list {list} but says {}",
                    e.list
                );
                let d = e.deadline;
                if list == PENDING {
                    assert!(
                        d <= self.now,
                        "pending entry {key} deadline {d} > now {}",
                        self.now
                    );
                } else {
                    assert!(
                        d > self.now,
                        "wheel entry {key} deadline {d} <= now {}",
                        self.now
                    );
                    assert!(
                        d - self.now <= MAX_DELTA,
                        "entry {key} deadline {d} too far from now {}",
                        self.now
                    );
                    let level = level_for(self.now, d);
                    assert_eq!(
                        (list / SLOTS, list % SLOTS),
                        (level, slot_for(d, level)),
                        "entry {key} deadline {d} at (level, slot) wrong for now {}",
                        self.now
                    );
                }
                prev = key;
                key = e.next;
            }
            assert_eq!(tail, prev, "list {list}: tail is not the last entry");
            seen += count;
        }
        assert_eq!(
            seen,
            self.entries.len(),
            "entries reachable from lists vs slab len"
        );
        assert_eq!(seen, self.len(), "len");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrng::Rng;

    fn adv<T>(w: &mut Wheel<T>, now: u64) -> Vec<(u64, T)> {
        let mut fired = Vec::new();
        w.advance(now, &mut fired);
        w.check_invariants();
        fired
    }

    #[test]
    fn level_and_slot_arithmetic() {
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(63, 64), 1);
        assert_eq!(level_for(64, 127), 0);
        assert_eq!(level_for(0, 1 << 12), 2);
        assert_eq!(level_for(0, MAX_DELTA), 5);
        // Crossing a 2^36 boundary folds into the top level.
        assert_eq!(level_for(MAX_DELTA, MAX_DELTA + 2), 5);
        assert_eq!(level_for(MAX_DELTA - 100, MAX_DELTA + 2), 5);
        assert_eq!(slot_for(0b10_000011, 0), 3);
        assert_eq!(slot_for(0b10_000011, 1), 2);
    }

    #[test]
    fn fires_at_exact_ms_across_levels() {
        for &d in &[
            1u64,
            5,
            63,
            64,
            65,
            100,
            4095,
            4096,
            4097,
            1 << 20,
            (1 << 30) + 7,
            1 << 35,
        ] {
            let start = 1000;
            let mut w = Wheel::new(start);
            let id = w.insert(start + d, d);
            w.check_invariants();
            assert_eq!(w.deadline(id), start + d);
            // Wake points before the deadline never fire it.
            loop {
                let t = w.next_wake().unwrap();
                assert!(t <= start + d && t >= w.now(), "d={d} next_wake {t}");
                if t == start + d {
                    break;
                }
                assert!(adv(&mut w, t).is_empty(), "d={d}: fired early at {t}");
            }
            assert!(adv(&mut w, start + d - 1).is_empty(), "d={d}: fired at d-1");
            assert_eq!(adv(&mut w, start + d), vec![(start + d, d)], "d={d}");
            assert!(w.is_empty());
            assert_eq!(w.next_wake(), None);
        }
    }

    #[test]
    fn fires_without_intermediate_wakes() {
        let mut w = Wheel::new(0);
        w.insert(100_000, 'a');
        assert!(adv(&mut w, 99_999).is_empty());
        assert_eq!(adv(&mut w, 100_000), vec![(100_000, 'a')]);
    }

    #[test]
    fn past_deadline_fires_on_next_advance_in_order() {
        let mut w = Wheel::new(500);
        w.insert(500, "now");
        w.insert(10, "past");
        w.insert(501, "next");
        w.insert(10, "past2");
        w.check_invariants();
        assert_eq!(w.next_wake(), Some(500));
        assert_eq!(
            adv(&mut w, 500),
            vec![(10, "past"), (10, "past2"), (500, "now")]
        );
        assert_eq!(w.next_wake(), Some(501));
        assert_eq!(adv(&mut w, 501), vec![(501, "next")]);
        assert_eq!(w.next_wake(), None);
    }

    #[test]
    fn cancel_prevents_firing() {
        let mut w = Wheel::new(0);
        let a = w.insert(10, 1);
        let b = w.insert(10, 2);
        let c = w.insert(5000, 3);
        let d = w.insert(0, 4);
        assert_eq!(w.cancel(b), 2);
        assert_eq!(w.cancel(c), 3);
        assert_eq!(w.cancel(d), 4);
        w.check_invariants();
        assert_eq!(w.len(), 1);
        assert_eq!(adv(&mut w, 10_000), vec![(10, 1)]);
        let _ = a;
        assert!(w.is_empty());
        assert_eq!(w.occupied, [0; LEVELS]);
    }

    #[test]
    fn next_wake_exact_at_level0_lower_bound_above() {
        let mut w = Wheel::new(0);
        assert_eq!(w.next_wake(), None);
        w.insert(37, ());
        assert_eq!(w.next_wake(), Some(37));
        w.insert(12, ());
        assert_eq!(w.next_wake(), Some(12));

        let mut w = Wheel::new(0);
        w.insert(200, ());
        let t = w.next_wake().unwrap();
        assert_eq!(t, 192, "start of the level-1 slot holding 200");
        assert!(adv(&mut w, t).is_empty());
        assert_eq!(w.next_wake(), Some(200), "exact once cascaded to level 0");

        let mut w = Wheel::new(0);
        w.insert(3_000_000, ());
        let t = w.next_wake().unwrap();
        assert!(t <= 3_000_000 && t > 0);
    }

    #[test]
    fn jump_by_2_pow_32_fires_due_and_nothing_more() {
        let base = 12_345;
        let mut w = Wheel::new(base);
        let jump = 1u64 << 32;
        for (i, &d) in [
            1,
            64,
            5000,
            1 << 20,
            jump - 1,
            jump,
            jump + 1,
            jump + 64,
            1 << 34,
        ]
        .iter()
        .enumerate()
        {
            w.insert(base + d, i);
        }
        let fired = adv(&mut w, base + jump);
        let deadlines: Vec<u64> = fired.iter().map(|f| f.0 - base).collect();
        assert_eq!(deadlines, vec![1, 64, 5000, 1 << 20, jump - 1, jump]);
        assert_eq!(w.len(), 3);
        assert_eq!(adv(&mut w, base + jump + 1), vec![(base + jump + 1, 6)]);
        assert_eq!(adv(&mut w, base + (1 << 35)).len(), 2);
    }

    #[test]
    fn top_level_wraps_around() {
        // Clock just below a 2^36 boundary, deadline just past it: top level, next rotation.
        let now = (1u64 << 36) - 10;
        let mut w = Wheel::new(now);
        w.insert(now + 20, 'x');
        let far = now + MAX_DELTA;
        w.insert(far, 'y');
        w.check_invariants();
        assert_eq!(adv(&mut w, now + 19), vec![]);
        assert_eq!(adv(&mut w, now + 20), vec![(now + 20, 'x')]);
        assert_eq!(adv(&mut w, far - 1), vec![]);
        assert_eq!(adv(&mut w, far), vec![(far, 'y')]);
    }

    #[test]
    fn clamps_far_deadlines() {
        let now = 777;
        let mut w = Wheel::new(now);
        let id = w.insert(u64::MAX, 'c');
        let id2 = w.insert(now + MAX_DELTA, 'd');
        w.check_invariants();
        assert_eq!(w.deadline(id), now + MAX_DELTA);
        assert_eq!(w.deadline(id2), now + MAX_DELTA);
        assert!(adv(&mut w, now + MAX_DELTA - 1).is_empty());
        assert_eq!(
            adv(&mut w, now + MAX_DELTA),
            vec![(now + MAX_DELTA, 'c'), (now + MAX_DELTA, 'd')]
        );

        // Near the end of u64 time nothing overflows.
        let mut w = Wheel::new(u64::MAX - 5);
        w.insert(u64::MAX, 1);
        w.insert(u64::MAX - 5, 2);
        w.check_invariants();
        assert_eq!(
            adv(&mut w, u64::MAX),
            vec![(u64::MAX - 5, 2), (u64::MAX, 1)]
        );
    }

    #[test]
    fn ids_reused_after_fire_and_cancel() {
        let mut w = Wheel::new(0);
        let a = w.insert(5, 'a');
        let b = w.insert(6, 'b');
        assert_eq!(adv(&mut w, 5), vec![(5, 'a')]);
        let c = w.insert(100, 'c');
        assert_eq!(c, a, "slab key of a fired timer is reused");
        assert_eq!(w.deadline(c), 100);
        assert_eq!(w.cancel(b), 'b');
        let d = w.insert(7, 'd');
        assert_eq!(d, b, "slab key of a cancelled timer is reused");
        w.check_invariants();
        assert_eq!(adv(&mut w, 200), vec![(7, 'd'), (100, 'c')]);
    }

    #[test]
    fn equal_deadlines_fire_in_insertion_order_across_cascades() {
        let mut w = Wheel::new(0);
        w.insert(100_000, 0);
        adv(&mut w, 50_000);
        w.insert(100_000, 1);
        adv(&mut w, 99_990);
        w.insert(100_000, 2);
        w.insert(100_000, 3);
        let order: Vec<i32> = adv(&mut w, 200_000).into_iter().map(|f| f.1).collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    /// Reference model: live timers as (deadline, seq, id); fires all with deadline <= now
    /// sorted by (deadline, seq).
    fn run_model(seed: u64, ops: usize) {
        let mut rng = Rng::new(seed);
        let start = rng.below(1 << 40);
        let mut now = start;
        let mut w: Wheel<u64> = Wheel::new(now);
        let mut model: Vec<(u64, u64, TimerId)> = Vec::new();
        let mut seq = 0u64;
        let mut fired = Vec::new();
        for op in 0..ops {
            if rng.chance(45) {
                let d = match rng.below(10) {
                    0 => now.saturating_sub(rng.below(1000)),
                    1 => now,
                    2..=4 => now + rng.below(64),
                    5 | 6 => now + rng.below(1 << 18),
                    7 | 8 => now + rng.below(1 << 32),
                    _ => now + (1 << 36) - 64 + rng.below(1 << 10),
                };
                let id = w.insert(d, seq);
                let clamped = d.min(now + MAX_DELTA);
                assert_eq!(w.deadline(id), clamped, "seed {seed} op {op}: deadline");
                assert!(
                    model.iter().all(|m| m.2 != id),
                    "seed {seed} op {op}: live id {id:?} handed out twice"
                );
                model.push((clamped, seq, id));
                seq += 1;
            } else if rng.chance(27) {
                if !model.is_empty() {
                    let i = rng.below(model.len() as u64) as usize;
                    let (d, s, id) = model.swap_remove(i);
                    assert_eq!(
                        w.deadline(id),
                        d,
                        "seed {seed} op {op}: deadline before cancel"
                    );
                    assert_eq!(w.cancel(id), s, "seed {seed} op {op}: cancel value");
                }
            } else {
                let to = match rng.below(8) {
                    0 => now,
                    1 | 2 => now + rng.below(70),
                    3 => now + rng.below(5000),
                    4 => now + rng.below(1 << 33),
                    5 | 6 => w.next_wake().unwrap_or(now),
                    _ => model.iter().map(|m| m.0).min().unwrap_or(now).max(now),
                };
                fired.clear();
                w.advance(to, &mut fired);
                now = to;
                let mut expect: Vec<(u64, u64, TimerId)> =
                    model.iter().copied().filter(|m| m.0 <= now).collect();
                expect.sort_by_key(|m| (m.0, m.1));
                model.retain(|m| m.0 > now);
                let expect: Vec<(u64, u64)> = expect.iter().map(|m| (m.0, m.1)).collect();
                assert_eq!(
                    fired, expect,
                    "seed {seed} op {op}: fired set/order at advance to {now}"
                );
            }
            w.check_invariants();
            assert_eq!(w.now(), now, "seed {seed} op {op}: now");
            assert_eq!(w.len(), model.len(), "seed {seed} op {op}: len");
            match model.iter().map(|m| m.0).min() {
                None => assert_eq!(
                    w.next_wake(),
                    None,
                    "seed {seed} op {op}: next_wake of empty"
                ),
                Some(min) => {
                    let t = w.next_wake().expect("next_wake None while non-empty");
                    assert!(
                        t >= now && t <= min.max(now),
                        "seed {seed} op {op}: next_wake {t} outside [now {now}, min {min}]"
                    );
                    if min <= now {
                        assert_eq!(t, now, "seed {seed} op {op}: due timer, next_wake");
                    } else if (min ^ now) < SLOTS as u64 {
                        assert_eq!(t, min, "seed {seed} op {op}: level-0 next_wake not exact");
                    }
                }
            }
        }
    }

    #[test]
    fn model_random_sequences() {
        for seed in 0..20 {
            run_model(0x10CB_0000 + seed, 5000);
        }
    }
}
