//! Sorted listings a batch at a time: a connection's reusable sort buffer.
//!
//! The engine's cursors visit items in slot order, but some listings promise an order
//! (native `LIST` by name, lockd `d` / `sd` in grant order, ...). [`Sorted`] gives
//! that order without an index kept up to date on the lock path and without giving
//! up batches: a listing is one or more *passes*, each in three phases, each phase a
//! series of bounded steps (one per [`Sorted::proceed`]):
//!
//! 1. **Collect**: a cursor scan, one batch at a time, hands each matching item's sort
//!    key and formatted row to [`Rows::add`], which keeps them in an arena ordered as a
//!    max-heap by key. The rows kept are bounded by a byte budget
//!    ([`crate::proto::listing::Batch::sort_bytes`]): past it, the largest key is
//!    dropped and becomes the pass's *ceiling*, and later keys at or above the ceiling
//!    are not kept. So a pass keeps the smallest keys it sees, as many as fit.
//! 2. **Sort**: the heap is sorted in place (heapsort), at most [`SORT_STEPS`] steps
//!    per call.
//! 3. **Write**: rows are written in key order as the client reads, a key repeated
//!    (a lock removed and created again in a slot ahead of the cursor) only once.
//!
//! When a pass had to drop keys, another pass follows with everything up to the last
//! key written excluded; most listings fit in one pass, a listing bigger than the
//! budget takes several (each a full scan of the table, keeping the next keys).
//!
//! # Invariants
//! - Keys come out strictly increasing over the whole listing, passes included: each
//!   pass keeps only keys above the last one written.
//! - An item that exists for the whole listing is written exactly once (the SCAN
//!   guarantee of [`crate::engine::Cursor`] carried over): in a pass, every key seen
//!   below the final ceiling is kept, and the next pass starts just above the largest
//!   kept key, which is at most the ceiling. Its row shows it as it was when collected.
//! - The live rows (bytes of keys and rows plus [`ENTRY_BYTES`] each) stay within the
//!   budget, except that one row is always kept; the arena, dropped rows included, is
//!   compacted when it reaches twice the budget, so it stays under twice the budget
//!   plus one row.
//! - After a listing, buffers bigger than [`RETAIN_BYTES`] are released; smaller ones
//!   are kept, so a small listing allocates nothing once the connection has made one.

use crate::engine::{Cursor, Scan};
use std::cmp::Ordering;

/// Sift steps (each a few key comparisons) one call of the sort phase does at most:
/// well under a millisecond, so the turn budget is checked often.
pub const SORT_STEPS: usize = 1024;

/// Buffers at most this big (bytes) are kept for the connection's next listing.
pub const RETAIN_BYTES: usize = 64 << 10;

/// Bytes an entry costs beyond its key and row (its offsets), counted in the budget.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// A row in the arena: its key is `arena[at..at + key_len]`, its row `arena[row..end]`
/// (`row == at` when the row starts with its key).
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: u32,
    key_len: u32,
    row: u32,
    end: u32,
}

impl Entry {
    fn cost(&self) -> usize {
        (self.end - self.at) as usize + ENTRY_BYTES
    }
}

/// The rows of the current pass: what a collect step adds to.
#[derive(Debug, Default)]
pub struct Rows {
    arena: Vec<u8>,
    /// A max-heap by key while collecting; ascending once sorted.
    heap: Vec<Entry>,
    /// Bytes the kept entries cost ([`Entry::cost`]).
    live: usize,
    budget: usize,
    /// Keys at or below this one were written by an earlier pass (`has_low`).
    low: Vec<u8>,
    has_low: bool,
    /// Keys at or above this one are not kept in this pass (`has_ceiling`).
    ceiling: Vec<u8>,
    has_ceiling: bool,
}

impl Rows {
    fn key(&self, e: Entry) -> &[u8] {
        &self.arena[e.at as usize..(e.at + e.key_len) as usize]
    }

    fn row(&self, e: Entry) -> &[u8] {
        &self.arena[e.row as usize..e.end as usize]
    }

    fn cmp(&self, a: usize, b: usize) -> Ordering {
        self.key(self.heap[a]).cmp(self.key(self.heap[b]))
    }

    /// True when a row with `key` would be kept: above the keys already written and
    /// below this pass's ceiling. Lets a caller skip formatting a row.
    pub fn wants(&self, key: &[u8]) -> bool {
        (!self.has_low || key > &self.low[..]) && (!self.has_ceiling || key < &self.ceiling[..])
    }

    /// Adds a row with sort key `key`; `row` appends the row's bytes. The key is
    /// stored before the row.
    pub fn add(&mut self, key: &[u8], row: impl FnOnce(&mut Vec<u8>)) {
        self.push(key, false, row)
    }

    /// Adds a row that starts with its sort key `key` (stored once).
    pub fn add_prefixed(&mut self, key: &[u8], row: impl FnOnce(&mut Vec<u8>)) {
        self.push(key, true, row)
    }

    fn push(&mut self, key: &[u8], prefixed: bool, row: impl FnOnce(&mut Vec<u8>)) {
        if !self.wants(key) {
            return;
        }
        let at = self.arena.len();
        if !prefixed {
            self.arena.extend_from_slice(key);
        }
        let row_at = self.arena.len();
        row(&mut self.arena);
        debug_assert!(!prefixed || self.arena[at..].starts_with(key));
        let e = Entry {
            at: at as u32,
            key_len: key.len() as u32,
            row: row_at as u32,
            end: self.arena.len() as u32,
        };
        self.live += e.cost();
        self.heap.push(e);
        self.sift_up(self.heap.len() - 1);
        while self.live > self.budget && self.heap.len() > 1 {
            self.drop_largest();
        }
        if self.arena.len() >= 2 * self.budget.max(RETAIN_BYTES / 2) {
            self.compact();
        }
    }

    /// Drops the largest key kept; it becomes the ceiling (never above the last one).
    fn drop_largest(&mut self) {
        let last = self.heap.len() - 1;
        self.heap.swap(0, last);
        let e = self.heap.pop().expect("not empty");
        self.sift_down(0, self.heap.len());
        self.live -= e.cost();
        let (at, len) = (e.at as usize, e.key_len as usize);
        self.ceiling.clear();
        self.ceiling.extend_from_slice(&self.arena[at..at + len]);
        self.has_ceiling = true;
    }

    /// Copies the kept entries into a fresh arena, leaving the dropped ones behind.
    fn compact(&mut self) {
        let mut fresh = Vec::with_capacity(self.live);
        for e in &mut self.heap {
            let start = fresh.len() as u32;
            fresh.extend_from_slice(&self.arena[e.at as usize..e.end as usize]);
            let shift = e.at - start;
            *e = Entry {
                at: start,
                key_len: e.key_len,
                row: e.row - shift,
                end: e.end - shift,
            };
        }
        self.arena = fresh;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.cmp(i, parent) != Ordering::Greater {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    /// Restores the heap below `i` within `heap[..len]`.
    fn sift_down(&mut self, mut i: usize, len: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut big = i;
            if l < len && self.cmp(l, big) == Ordering::Greater {
                big = l;
            }
            if r < len && self.cmp(r, big) == Ordering::Greater {
                big = r;
            }
            if big == i {
                return;
            }
            self.heap.swap(i, big);
            i = big;
        }
    }

    /// Empties the rows for the next pass (or listing), keeping the buffers.
    fn clear(&mut self) {
        self.arena.clear();
        self.heap.clear();
        self.live = 0;
        self.has_ceiling = false;
    }
}

/// Where a sorted listing is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Scanning the table (the cursor's position).
    #[default]
    Collect,
    /// Sorting: `heap[..unsorted]` is still a heap.
    Sort { unsorted: usize },
    /// Writing `heap[next..]`; `last` is the entry written last in this pass.
    Write { next: usize, last: Option<usize> },
}

/// A connection's sorted listing: its cursor, rows and phase; reusable.
#[derive(Debug, Default)]
pub struct Sorted {
    cursor: Cursor,
    rows: Rows,
    phase: Phase,
}

impl Sorted {
    /// Starts a listing (the buffers of the last one are reused).
    pub fn start(&mut self) {
        self.rows.clear();
        self.rows.has_low = false;
        self.cursor = Cursor::default();
        self.phase = Phase::Collect;
    }

    /// [`Sorted::proceed`] for a JSON array's elements: each row written after a `,`
    /// unless it is the first of the listing (`wrote` says whether one was written).
    pub fn proceed_joined(
        &mut self,
        out: &mut Vec<u8>,
        batch: super::Batch,
        scan: impl FnOnce(&mut Cursor, usize, &mut Rows) -> Scan,
        wrote: &mut bool,
    ) -> Scan {
        let write = |out: &mut Vec<u8>, row: &[u8]| {
            if std::mem::replace(wrote, true) {
                out.push(b',');
            }
            out.extend_from_slice(row);
        };
        match self.proceed(out, batch, scan, write) {
            true => Scan::Done,
            false => Scan::More,
        }
    }

    /// Does one step of the listing. Collecting, calls `scan` with the cursor, the
    /// slots to visit and the rows to add to; sorting, sorts a while; writing, calls
    /// `row` with each row in key order until `out` has grown by `batch.bytes`. True
    /// once the last row is written: the listing is over and its big buffers are
    /// released.
    pub fn proceed(
        &mut self,
        out: &mut Vec<u8>,
        batch: super::Batch,
        scan: impl FnOnce(&mut Cursor, usize, &mut Rows) -> Scan,
        mut row: impl FnMut(&mut Vec<u8>, &[u8]),
    ) -> bool {
        let rows = &mut self.rows;
        match self.phase {
            Phase::Collect => {
                rows.budget = batch.sort_bytes;
                if scan(&mut self.cursor, batch.slots, rows) == Scan::Done {
                    self.phase = Phase::Sort {
                        unsorted: rows.heap.len(),
                    };
                }
            }
            Phase::Sort { unsorted } => {
                let mut n = unsorted;
                for _ in 0..SORT_STEPS {
                    if n <= 1 {
                        break;
                    }
                    n -= 1;
                    rows.heap.swap(0, n);
                    rows.sift_down(0, n);
                }
                self.phase = if n <= 1 {
                    Phase::Write {
                        next: 0,
                        last: None,
                    }
                } else {
                    Phase::Sort { unsorted: n }
                };
            }
            Phase::Write { mut next, mut last } => {
                let stop = batch.stop_at(out.len());
                while next < rows.heap.len() && out.len() < stop {
                    let e = rows.heap[next];
                    let repeated = last.is_some_and(|l| rows.key(rows.heap[l]) == rows.key(e));
                    if !repeated {
                        row(out, rows.row(e));
                        last = Some(next);
                    }
                    next += 1;
                }
                if next < rows.heap.len() {
                    self.phase = Phase::Write { next, last };
                    return false;
                }
                if !rows.has_ceiling {
                    self.finish();
                    return true;
                }
                // Keys were dropped: the next pass keeps those above the last written.
                let last = rows.heap[last.expect("a pass that dropped keys kept one")];
                let (at, len) = (last.at as usize, last.key_len as usize);
                rows.low.clear();
                rows.low.extend_from_slice(&rows.arena[at..at + len]);
                rows.has_low = true;
                rows.clear();
                self.cursor = Cursor::default();
                self.phase = Phase::Collect;
            }
        }
        false
    }

    /// Ends the listing: releases big buffers, keeps small ones.
    fn finish(&mut self) {
        let r = &mut self.rows;
        r.clear();
        if r.arena.capacity() > RETAIN_BYTES {
            r.arena = Vec::new();
        }
        if r.heap.capacity() * ENTRY_BYTES > RETAIN_BYTES {
            r.heap = Vec::new();
        }
        self.phase = Phase::Collect;
    }
}

#[cfg(test)]
mod tests;
