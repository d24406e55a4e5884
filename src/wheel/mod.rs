//! Hierarchical timer wheel with a resolution of one tick.
//!
//! The wheel knows no unit: deadlines and `now` are ticks of the caller's clock (the
//! server uses microseconds, so deadlines keep sub-millisecond resolution; tests often
//! use milliseconds).
//!
//! # Data structure
//!
//! The wheel has 7 levels of 64 slots each. A slot of level `L` spans
//! `64^L` ticks and a whole level spans `64^(L+1)` ticks, so the wheel reaches
//! `2^42 - 1` ticks ahead of its clock `now`. Every slot is a FIFO [`crate::list::List`]
//! of entries, threaded through their slab indices, so linking at the tail and
//! unlinking anywhere are O(1) and allocate nothing. The entries themselves live in one
//! [`slab::Slab`]; a [`TimerId`] is the slab key. Besides the 384 slot lists there is
//! one *pending* list for timers already due (see the invariants). A level's slot
//! arithmetic, lists and bitmap are in `level`.
//!
//! # Invariants (relative to the current `now`)
//!
//! - An entry with deadline `d <= now` is in the pending list (it was inserted
//!   already due, or an advance stopped at its limit before it, see **Firing**) and
//!   fires on the next [`Wheel::advance`].
//! - `pending_sorted` implies the pending list is in nondecreasing deadline order
//!   (each entry linked at its tail is checked against the tail). An advance sorts an
//!   unsorted pending list first (stably, with the `scratch` vector), which only
//!   inserts of deadlines already past out of order make necessary.
//! - `wake` is at most the start of every occupied slot and every pending deadline,
//!   so at most [`Wheel::next_wake`] (`u64::MAX` when nothing is scheduled): an insert
//!   lowers it to its slot's start (its deadline at level 0), an advance sets it to the
//!   next wake, a cancel leaves it (so it may be low, never high). So
//!   [`Wheel::due`]`(t)` is false only when nothing is due at `t`, with one
//!   comparison; and it is true when a slot is due for its cascade, so a caller that
//!   advances whenever `due` says so cascades a far slot at its start, ahead of the
//!   deadlines in it, not when the first of them is due (and never spins on a
//!   `next_wake` that `due` denies).
//! - An entry with `d > now` is at level `L = level_for(now, d)`: the index of the
//!   most significant bit in which `now` and `d` differ, divided by 6 (bits 0..5
//!   map to level 0); differences at bit 42 or above map to the top level 6.
//!   Its slot is `(d >> 6L) & 63`. Because `d - now <= 2^42 - 1` (inserts are
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
//! - An entry's `list` field names the list its [`Link`] is in.
//! - Near a `2^42` boundary a timer only a few ticks away can sit in the top level; it is
//!   still never fired early, [`Wheel::next_wake`] just reports its slot start.
//!
//! # Firing
//!
//! [`Wheel::advance`] repeatedly takes the earliest due slot whose *start* time is
//! `<= now`, moves the clock to that start, fires the entries whose deadline equals it
//! (always all of them at level 0) and cascades the rest down to the level they now
//! belong to. A timer is therefore **never fired before its deadline**, and always by
//! the first `advance` whose argument reaches it. The cost is proportional to the
//! occupied slots visited plus the entries moved, never to the elapsed ticks.
//!
//! [`Wheel::advance_bounded`] does the same but stops after `limit` timers. When it
//! stops inside a slot, the clock stays at that slot's start: the slot's remaining
//! entries whose deadline equals it go to the (then empty) pending list in their order,
//! the others cascade as usual. When it stops before a slot, the clock stays where the
//! last slot put it. Either way the next advance fires the pending list first, so a run
//! of bounded advances to the same `now` fires exactly what one advance would, in the
//! same order; only later inserts can come between.

use crate::list::{Chain, Link, List, NIL};
use level::{level_for, slot_for, Expiration, Level, LEVELS, MAX_DELTA, SLOTS};
use slab::Slab;

mod level;

/// How far ahead of its clock the wheel schedules (in ticks); further deadlines are
/// clamped to it.
pub const REACH: u64 = MAX_DELTA;

/// Index of the pending list (deadlines already due at insertion) in an entry's `list`.
const PENDING: usize = LEVELS * SLOTS;

/// How far a [`Wheel::advance_bounded`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advance {
    /// Every timer due at its `now` fired, and the clock is at that `now`.
    Done,
    /// It stopped at its limit with timers still due: the next advance fires them first.
    More,
}

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
    /// Absolute deadline (ticks), after clamping.
    deadline: u64,
    /// Its place in its slot's (or the pending) list.
    link: Link,
    /// Which list: `level * SLOTS + slot`, or `PENDING`.
    list: u16,
    value: T,
}

/// When an entry with `deadline` in list `list` needs the wheel's attention: the
/// deadline itself in the pending list or level 0, else the start of its slot, where
/// an advance cascades it down (the same time [`Wheel::next_wake`] reports for it).
fn slot_start(list: usize, deadline: u64) -> u64 {
    if list == PENDING {
        return deadline;
    }
    let level = list / SLOTS;
    deadline & !((1u64 << (level::LEVEL_BITS as usize * level)) - 1)
}

/// The chain the slot lists are threaded through.
fn chain<T>() -> Chain<Entry<T>> {
    Chain {
        get: |e| &e.link,
        get_mut: |e| &mut e.link,
    }
}

/// Hierarchical timer wheel with a resolution of one tick.
///
/// Time is an argument: the wheel never reads a clock. Deadlines are absolute ticks on
/// the caller's clock; see the module documentation for the layout and guarantees.
pub struct Wheel<T> {
    /// The time last advanced to.
    now: u64,
    /// The slot lists, level 0 first.
    levels: Box<[Level; LEVELS]>,
    /// Timers inserted already due, and those a bounded advance left (see **Firing**).
    pending: List,
    /// The pending list is in nondecreasing deadline order.
    pending_sorted: bool,
    /// At most every scheduled deadline (see [`Wheel::due`]).
    wake: u64,
    /// Scratch for sorting the pending list (empty between calls; kept for its capacity).
    scratch: Vec<u32>,
    entries: Slab<Entry<T>>,
}

impl<T> Wheel<T> {
    /// A wheel whose clock starts at `now` (ticks).
    pub fn new(now: u64) -> Self {
        Wheel {
            now,
            levels: Box::new([Level::EMPTY; LEVELS]),
            pending: List::EMPTY,
            pending_sorted: true,
            wake: u64::MAX,
            scratch: Vec::new(),
            entries: Slab::new(),
        }
    }

    /// Time the wheel has advanced to (the `now` of the last [`advance`](Self::advance),
    /// or of [`new`](Self::new)).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Schedules `value` to fire at `deadline` (absolute ticks); O(1).
    ///
    /// A deadline `<= now()` fires on the next [`advance`](Self::advance), whatever its
    /// argument. A deadline more than `2^42 - 1` ticks after `now()` is clamped to
    /// `now() + 2^42 - 1` (50.9 days in microseconds); [`deadline`](Self::deadline) and the fired
    /// pair then report the clamped value.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerId {
        let deadline = deadline.min(self.now.saturating_add(MAX_DELTA));
        let list = self.list_for(deadline);
        let key = self.entries.insert(Entry {
            deadline,
            link: Link::UNLINKED,
            list: list as u16,
            value,
        });
        assert!(key < NIL as usize, "wheel: more than 2^32 - 1 timers");
        let key = key as u32;
        self.link(key, list);
        self.wake = self.wake.min(slot_start(list, deadline));
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
    /// (less than 64 ticks away, same 64-tick block) `t` is exactly its deadline; further
    /// out it is the start of the timer's slot, so the caller may wake early, call
    /// [`advance`](Self::advance) (which cascades and fires nothing yet) and ask again.
    pub fn next_wake(&self) -> Option<u64> {
        if !self.pending.is_empty() {
            return Some(self.now);
        }
        self.next_expiration().map(|e| e.start)
    }

    /// False only when no timer is due at `now` (`now >= now()`): one comparison, for
    /// a caller that checks often. It may be true with nothing due (a timer was
    /// cancelled); the next advance then fires nothing and makes it exact again.
    #[inline]
    pub fn due(&self, now: u64) -> bool {
        now >= self.wake
    }

    /// Moves the clock to `now` and fires every timer with deadline `<= now`, appending
    /// `(deadline, value)` to `fired` in nondecreasing deadline order (insertion order
    /// among equal deadlines).
    ///
    /// `now` must be `>= now()` (an earlier `now` is treated as `now()` in release
    /// builds). Cost: occupied slots visited plus entries fired or cascaded.
    pub fn advance(&mut self, now: u64, fired: &mut Vec<(u64, T)>) {
        let done = self.advance_bounded(now, usize::MAX, fired);
        debug_assert_eq!(done, Advance::Done);
    }

    /// [`advance`](Self::advance), but firing at most `limit` timers (`limit > 0`):
    /// [`Advance::More`] when some due at `now` are left, for the next advance, which
    /// fires them before anything else (see **Firing** in the module documentation).
    /// Repeated until `Done` with the same `now` and no insert in between, it fires
    /// exactly the timers one `advance(now)` fires, in the same order.
    pub fn advance_bounded(
        &mut self,
        now: u64,
        limit: usize,
        fired: &mut Vec<(u64, T)>,
    ) -> Advance {
        debug_assert!(
            now >= self.now,
            "wheel: advance to {now} but the clock is already at {}",
            self.now
        );
        debug_assert!(limit > 0, "wheel: advance with a limit of 0");
        let now = now.max(self.now);
        let chain = chain();
        let mut left = limit;
        if !self.pending_sorted {
            self.sort_pending();
        }
        let outcome = 'fire: {
            // Timers already due (inserted so, or left by a bounded advance), sorted:
            // every deadline <= the old now < any slot entry's.
            while let Some(key) = self.pending.front() {
                if left == 0 {
                    break 'fire Advance::More;
                }
                self.pending.unlink(&mut self.entries, &chain, key);
                let entry = self.entries.remove(key as usize);
                fired.push((entry.deadline, entry.value));
                left -= 1;
            }
            while let Some(exp) = self.next_expiration() {
                if exp.start > now {
                    break;
                }
                if left == 0 {
                    break 'fire Advance::More;
                }
                debug_assert!(
                    exp.start > self.now,
                    "wheel: expiration {exp:?} not after clock {}",
                    self.now
                );
                self.now = exp.start;
                let mut due = self.levels[exp.level].take_slot(exp.slot);
                while let Some(key) = due.pop_front(&mut self.entries, &chain) {
                    let deadline = self.entries[key as usize].deadline;
                    debug_assert!(
                        deadline >= exp.start && (exp.level > 0 || deadline == exp.start),
                        "wheel: entry {key} with deadline {deadline} found in {exp:?}"
                    );
                    if deadline <= exp.start && left > 0 {
                        let entry = self.entries.remove(key as usize);
                        fired.push((entry.deadline, entry.value));
                        left -= 1;
                    } else {
                        // A cascade, or (past the limit) a due entry to the pending list.
                        let list = self.list_for(deadline);
                        debug_assert!(
                            list == PENDING || list / SLOTS < exp.level,
                            "wheel: cascade of entry {key} (deadline {deadline}) from {exp:?} \
                             to list {list} is not downwards"
                        );
                        self.link(key, list);
                    }
                }
            }
            self.now = now;
            if self.pending.is_empty() {
                Advance::Done
            } else {
                Advance::More
            }
        };
        self.wake = match self.pending.front() {
            Some(key) => self.entries[key as usize].deadline, // sorted: the earliest
            None => self.next_expiration().map_or(u64::MAX, |e| e.start),
        };
        outcome
    }

    /// Sorts the pending list by deadline, stably (equal deadlines keep their order).
    fn sort_pending(&mut self) {
        let chain = chain();
        let mut keys = std::mem::take(&mut self.scratch);
        while let Some(key) = self.pending.pop_front(&mut self.entries, &chain) {
            keys.push(key);
        }
        keys.sort_by_key(|&key| self.entries[key as usize].deadline);
        for &key in &keys {
            self.pending.push_back(&mut self.entries, &chain, key);
        }
        keys.clear();
        self.scratch = keys;
        self.pending_sorted = true;
    }

    /// Gives back the entry slab's vacant tail when it is below a quarter full (see
    /// [`crate::shrink`]); returns whether its capacity changed. No timer moves.
    pub fn shrink(&mut self) -> bool {
        crate::shrink::slab(&mut self.entries) | crate::shrink::vec(&mut self.scratch)
    }

    /// Capacity of the entry slab.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Number of scheduled timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The list (`level * SLOTS + slot`, or `PENDING`) an entry with `deadline` belongs
    /// to at `self.now`.
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
        self.levels
            .iter()
            .enumerate()
            .find_map(|(level, l)| l.next_expiration(level, self.now))
    }

    /// Appends entry `key` at the tail of list `list` and records the list in it.
    fn link(&mut self, key: u32, list: usize) {
        self.entries[key as usize].list = list as u16;
        let chain = chain();
        if list == PENDING {
            let deadline = self.entries[key as usize].deadline;
            self.pending_sorted = match self.pending.back() {
                Some(tail) => {
                    self.pending_sorted && self.entries[tail as usize].deadline <= deadline
                }
                None => true,
            };
            self.pending.push_back(&mut self.entries, &chain, key);
        } else {
            self.levels[list / SLOTS].push(list % SLOTS, &mut self.entries, &chain, key);
        }
    }

    /// Unlinks entry `key` from the list it is in (the entry stays in the slab).
    fn unlink(&mut self, key: u32) {
        let list = usize::from(self.entries[key as usize].list);
        let chain = chain();
        if list == PENDING {
            self.pending.unlink(&mut self.entries, &chain, key);
        } else {
            self.levels[list / SLOTS].unlink(list % SLOTS, &mut self.entries, &chain, key);
        }
    }
}

#[cfg(test)]
mod tests;
