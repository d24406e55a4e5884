//! Intrusive doubly linked lists threaded through slab indices.
//!
//! A [`List`] owns no memory: it is a head, a tail and a length, and each element (an
//! entry of some `Slab<T>`) carries one [`Link`] per list it can be in, reached through
//! a [`Chain`] (a pair of accessor functions). Unlinking is O(1) from the element's
//! index alone, which is what lets a disconnect, a timeout or a cancel remove a waiter
//! from the middle of a FIFO queue without searching it. The lock table threads claims
//! through two chains (per lock and per owner); the timer wheel threads its entries
//! through one (per slot).
//!
//! A list never holds more than [`MAX_LEN`] elements, so the top bit of its length word
//! is free: it is the list's **flag**, one bit its user may keep there
//! ([`List::flag`], [`List::set_flag`]) at no cost in size. No list operation reads or
//! changes it; the lock table keeps each lock's two flags in its two lists, which makes
//! a lock 48 bytes instead of 56.
//!
//! # Invariants
//! Checked by this module's model test and by its users' model tests:
//! - `len() == 0` iff `head == NIL` iff `tail == NIL`;
//! - walking `next` from `head` visits exactly `len()` elements and ends at `tail`, and
//!   every element's `prev` is the one visited before it;
//! - `len() <= MAX_LEN`, so counting never reaches the flag bit (`debug_assert` in
//!   `push_back`): the users bound their lists, the table's by its claims, which the
//!   engine keeps within `MAX_LEN`, a timer wheel's by its timers (one per claim, or
//!   per connection);
//! - the flag is what `set_flag` last set (`false` in [`List::EMPTY`]);
//! - an element is in at most one list per chain; an unlinked element's link is
//!   [`Link::UNLINKED`].

use slab::Slab;

/// The "no element" index.
pub const NIL: u32 = u32::MAX;

/// The most elements one list holds: the length takes 31 bits of its word, the
/// list's flag the top one.
pub const MAX_LEN: u32 = u32::MAX >> 1;

/// The flag's bit in the length word.
const FLAG: u32 = !MAX_LEN;

/// One element's position in one list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    prev: u32,
    next: u32,
}

impl Link {
    /// The link of an element that is in no list.
    pub const UNLINKED: Link = Link {
        prev: NIL,
        next: NIL,
    };

    /// A "link" that carries 64 bits of other data, for an element that keeps something
    /// else in that link's place while it is in no list of the chain (the table keeps a
    /// held claim's token where a waiting claim has its link).
    pub const fn from_bits(bits: u64) -> Link {
        Link {
            prev: (bits >> 32) as u32,
            next: bits as u32,
        }
    }

    /// The 64 bits stored by [`Link::from_bits`].
    pub const fn bits(self) -> u64 {
        ((self.prev as u64) << 32) | self.next as u64
    }
}

/// Selects which [`Link`] of a `T` a list is threaded through.
pub struct Chain<T> {
    /// Shared access to the link.
    pub get: fn(&T) -> &Link,
    /// Mutable access to the link.
    pub get_mut: fn(&mut T) -> &mut Link,
}

impl<T> Clone for Chain<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Chain<T> {}

/// Head, tail and length of one intrusive list, and one flag for its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct List {
    head: u32,
    tail: u32,
    /// The number of elements (the low 31 bits) and the flag ([`FLAG`], the top bit).
    len: u32,
}

impl Default for List {
    fn default() -> Self {
        List::EMPTY
    }
}

impl List {
    /// A list with no elements.
    pub const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> u32 {
        self.len & MAX_LEN
    }

    /// True when the list has no elements (read from the head, which needs no mask).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// The user's flag: what [`List::set_flag`] last set, `false` for a new list. No
    /// list operation reads or changes it.
    #[inline]
    pub fn flag(&self) -> bool {
        self.len & FLAG != 0
    }

    /// Sets the user's flag, leaving the elements as they are.
    #[inline]
    pub fn set_flag(&mut self, on: bool) {
        self.len = (self.len & MAX_LEN) | if on { FLAG } else { 0 };
    }

    /// Index of the first element.
    pub fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// Index of the last element.
    pub fn back(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Appends element `idx` (which must be in no list of this chain).
    #[inline]
    pub fn push_back<T>(&mut self, slab: &mut Slab<T>, chain: &Chain<T>, idx: u32) {
        let link = (chain.get_mut)(&mut slab[idx as usize]);
        debug_assert_eq!(
            *link,
            Link::UNLINKED,
            "push_back of element {idx} that is already linked"
        );
        debug_assert!(self.len() < MAX_LEN, "push_back onto a list of MAX_LEN");
        link.prev = self.tail;
        link.next = NIL;
        if self.tail == NIL {
            self.head = idx;
        } else {
            (chain.get_mut)(&mut slab[self.tail as usize]).next = idx;
        }
        self.tail = idx;
        self.len += 1;
    }

    /// Removes element `idx` (which must be in this list) in O(1).
    ///
    /// `push_back` and `unlink` are `#[inline]` so that the chain's accessors are
    /// known at the call site: called out of line, through the `Chain`'s function
    /// pointers, they cost about 100 more instructions per lock cycle (callgrind).
    #[inline]
    pub fn unlink<T>(&mut self, slab: &mut Slab<T>, chain: &Chain<T>, idx: u32) {
        debug_assert!(
            !self.is_empty(),
            "unlink of element {idx} from an empty list"
        );
        let link = std::mem::replace((chain.get_mut)(&mut slab[idx as usize]), Link::UNLINKED);
        if link.prev == NIL {
            debug_assert_eq!(
                self.head, idx,
                "element {idx} has no prev but is not the head"
            );
            self.head = link.next;
        } else {
            (chain.get_mut)(&mut slab[link.prev as usize]).next = link.next;
        }
        if link.next == NIL {
            debug_assert_eq!(
                self.tail, idx,
                "element {idx} has no next but is not the tail"
            );
            self.tail = link.prev;
        } else {
            (chain.get_mut)(&mut slab[link.next as usize]).prev = link.prev;
        }
        self.len -= 1;
    }

    /// Unlinks and returns the first element, in O(1).
    pub fn pop_front<T>(&mut self, slab: &mut Slab<T>, chain: &Chain<T>) -> Option<u32> {
        let idx = self.front()?;
        self.unlink(slab, chain, idx);
        Some(idx)
    }

    /// Iterates the element indices front to back.
    pub fn iter<'a, T>(&self, slab: &'a Slab<T>, chain: Chain<T>) -> Iter<'a, T> {
        Iter {
            slab,
            chain,
            next: self.head,
        }
    }
}

/// Front-to-back iterator over a [`List`]'s element indices.
pub struct Iter<'a, T> {
    slab: &'a Slab<T>,
    chain: Chain<T>,
    next: u32,
}

impl<'a, T> Iter<'a, T> {
    /// The slab the iterated elements live in.
    pub fn slab(&self) -> &'a Slab<T> {
        self.slab
    }
}

impl<T> Iterator for Iter<'_, T> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.next == NIL {
            return None;
        }
        let idx = self.next;
        self.next = (self.chain.get)(&self.slab[idx as usize]).next;
        #[cfg(test)]
        steps::count();
        Some(idx)
    }
}

/// Elements visited by list iterators on this thread, so tests can count the work an
/// operation does (not its time).
#[cfg(test)]
pub(crate) mod steps {
    use std::cell::Cell;

    thread_local! {
        static STEPS: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) fn count() {
        STEPS.with(|s| s.set(s.get() + 1));
    }

    /// Elements visited so far on this thread.
    pub(crate) fn get() -> u64 {
        STEPS.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrng::Rng;
    use std::collections::VecDeque;

    struct Node(Link);
    const CHAIN: Chain<Node> = Chain {
        get: |n| &n.0,
        get_mut: |n| &mut n.0,
    };

    #[test]
    fn bits_round_trip() {
        for v in [0, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(Link::from_bits(v).bits(), v);
        }
        assert_eq!(Link::from_bits(u64::MAX), Link::UNLINKED);
    }

    /// The flag and the longest length share the word without touching each other.
    #[test]
    fn flag_beside_the_longest_length() {
        let mut slab = Slab::new();
        let idx = slab.insert(Node(Link::UNLINKED)) as u32;
        let mut list = List::EMPTY;
        list.push_back(&mut slab, &CHAIN, idx);
        list.len = MAX_LEN; // as if MAX_LEN - 1 more were linked ahead of it
        for on in [true, false, true] {
            list.set_flag(on);
            assert_eq!((list.len(), list.flag()), (MAX_LEN, on));
        }
        list.unlink(&mut slab, &CHAIN, idx);
        assert_eq!((list.len(), list.flag()), (MAX_LEN - 1, true));
        assert!(!List::EMPTY.flag());
    }

    /// Linking a list's `MAX_LEN + 1`-th element would carry into the flag: debug builds
    /// stop it.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "push_back onto a list of MAX_LEN")]
    fn pushing_past_max_len_is_caught() {
        let mut slab = Slab::new();
        let first = slab.insert(Node(Link::UNLINKED)) as u32;
        let next = slab.insert(Node(Link::UNLINKED)) as u32;
        let mut list = List::EMPTY;
        list.push_back(&mut slab, &CHAIN, first);
        list.len = MAX_LEN;
        list.push_back(&mut slab, &CHAIN, next);
    }

    /// Random pushes, pops and unlinks from anywhere, and flips of the flag, against a
    /// VecDeque and a bool: the flag never changes the elements nor they the flag.
    #[test]
    fn model() {
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let mut slab = Slab::new();
            let mut list = List::EMPTY;
            let mut model: VecDeque<u32> = VecDeque::new();
            let mut flag = false;
            for step in 0..2000 {
                if rng.chance(5) {
                    flag = !flag;
                    list.set_flag(flag);
                } else if !model.is_empty() && rng.chance(10) {
                    let idx = list.pop_front(&mut slab, &CHAIN);
                    assert_eq!(idx, model.pop_front(), "seed {seed} step {step}");
                    slab.remove(idx.unwrap() as usize);
                } else if model.is_empty() || rng.chance(55) {
                    let idx = slab.insert(Node(Link::UNLINKED)) as u32;
                    list.push_back(&mut slab, &CHAIN, idx);
                    model.push_back(idx);
                } else {
                    let at = rng.below(model.len() as u64) as usize;
                    let idx = model.remove(at).unwrap();
                    list.unlink(&mut slab, &CHAIN, idx);
                    assert_eq!(slab[idx as usize].0, Link::UNLINKED);
                    slab.remove(idx as usize);
                }
                let got: Vec<u32> = list.iter(&slab, CHAIN).collect();
                assert_eq!(got, Vec::from(model.clone()), "seed {seed} step {step}");
                assert_eq!(list.len() as usize, model.len(), "seed {seed} step {step}");
                assert_eq!(list.is_empty(), model.is_empty(), "seed {seed} step {step}");
                assert_eq!(list.flag(), flag, "seed {seed} step {step}");
                assert_eq!(
                    list.front(),
                    model.front().copied(),
                    "seed {seed} step {step}"
                );
            }
        }
    }
}
