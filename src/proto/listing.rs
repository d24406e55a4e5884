//! Listings written a batch at a time: native `LIST` and `CLIENTS`, lockd `q`, `d`,
//! `sd`, `dump` and `who`, officer `locks` and `connections`, live-mutex `ls`.
//!
//! A request whose reply covers the whole table (or every connection) does not write
//! it at once. Its codec keeps an [`crate::engine::Cursor`] in the connection's session
//! and reports [`super::Wire::listing`]; the server then calls [`super::Wire::proceed`]
//! once per batch instead of decoding the connection's next request, checking its turn
//! budget between batches and stopping while the connection's unsent output is at or
//! above [`output_mark`], so a listing advances only as fast as its client reads and
//! never pushes the output past `--output-limit`. Other connections get their turns
//! between batches, so a flood of listings on a big table does not stall them.
//!
//! What a listing shows follows the engine's scan guarantee (the one of Redis `SCAN`):
//! an item that exists for the whole listing appears exactly once, one created or
//! removed meanwhile may or may not appear. The cursor visits items in slot order;
//! listings with an order (all but `CLIENTS` and `q`) go through the connection's
//! [`Sorted`], which collects rows a batch at a time, sorts them a bounded step at a
//! time and writes them in key order, each key once. A count in a listing's last line
//! counts the rows sent.
//!
//! # Invariants
//! - While a session's listing is in progress, its connection's later requests wait
//!   (undecoded) and the engine events for it are held back by [`super::Codec`] and
//!   written when the listing ends, so replies keep their order and a listing that is
//!   one JSON line is never split by another line.
//! - A batch visits at most [`Batch::slots`] slots and stops writing rows once it has
//!   written [`Batch::bytes`] bytes: it overshoots by at most one row, and every row is
//!   bounded (rows that embed a list cap it: see each codec).

pub mod sorted;

pub use sorted::{Rows, Sorted};

/// Slots (locks, claims or client slots) one batch visits at most: a few tens of
/// microseconds of work, so the turn budget is checked often.
pub const BATCH_SLOTS: usize = 1024;

/// Bytes of rows one batch writes before it stops (plus at most one row).
pub const BATCH_BYTES: usize = 16 * 1024;

/// The smallest budget of a sorted listing's rows kept at once ([`Batch::sort_bytes`]).
pub const SORT_BYTES_MIN: usize = 1 << 20;

/// The largest budget of a sorted listing's rows kept at once ([`Batch::sort_bytes`]).
pub const SORT_BYTES_MAX: usize = 32 << 20;

/// How much one call of [`super::Wire::proceed`] may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Slots to visit at most.
    pub slots: usize,
    /// Bytes of rows after which the batch stops.
    pub bytes: usize,
    /// Bytes of keys and rows a sorted listing keeps at once ([`sorted`]).
    pub sort_bytes: usize,
}

impl Batch {
    /// The batch for a server whose `--output-limit` is `output_limit`: at most
    /// [`BATCH_BYTES`], and at most a quarter of the limit; a sorted listing keeps
    /// rows worth half the limit, from [`SORT_BYTES_MIN`] to [`SORT_BYTES_MAX`] (its
    /// arena, dropped rows included, stays under twice that: the size of the limit).
    pub fn new(output_limit: usize) -> Batch {
        Batch {
            slots: BATCH_SLOTS,
            bytes: BATCH_BYTES.min(output_limit / 4).max(1),
            sort_bytes: (output_limit / 2).clamp(SORT_BYTES_MIN, SORT_BYTES_MAX),
        }
    }

    /// The output length at which a batch that starts with `start` bytes pending stops.
    pub fn stop_at(&self, start: usize) -> usize {
        start.saturating_add(self.bytes)
    }
}

/// Unsent output at or above which a listing waits for its client to read: the lower
/// of `--output-high-water` and half of `--output-limit`. With [`Batch::new`]'s batches
/// the output of a listing thus stays below the limit (unless one row is over a
/// quarter of it), however big the listing.
pub fn output_mark(output_high_water: usize, output_limit: usize) -> usize {
    output_high_water.min(output_limit / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_stays_under_the_output_limit() {
        for (hw, limit) in [
            (1 << 20, 16 << 20),
            (4096, 4096),
            (65536, 65536),
            (4096, 1 << 30),
        ] {
            let b = Batch::new(limit);
            let mark = output_mark(hw, limit);
            assert!(mark <= hw);
            // The worst case: a batch starts just below the mark and overshoots.
            assert!(b.stop_at(mark - 1) <= limit * 3 / 4, "{hw} {limit}");
            assert!(b.bytes >= 1 && b.bytes <= BATCH_BYTES);
        }
    }
}
