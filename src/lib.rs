//! lockbox: a network lock server on one `mio` poll loop.
//!
//! # Layout
//! - [`config`]: `Config` and the command-line parser that builds it.
//! - [`server`]: the poll loop: accept, read, dispatch, flush once per iteration, reap.
//! - [`engine`]: the protocol-agnostic core: table + wheel + clients + stats; requests in, events out.
//! - [`table`]: the lock table: locks, holds and waiters in slabs, linked in intrusive FIFO lists.
//! - [`fence`]: fencing tokens, strictly increasing across grants and restarts.
//! - [`list`]: intrusive doubly linked lists threaded through slab indices (O(1) unlink).
//! - [`wheel`]: hierarchical timer wheel for wait and hold deadlines; time is an argument.
//! - [`proto`]: wire codecs, bytes to engine calls and engine events to bytes: `native`,
//!   the foreign `lockd`, `locker`, `officer`, `livemutex`, and their shared `foreign` helpers.
//! - `testrng` (tests only): the seeded SplitMix64 of every model and fuzz test.
//!
//! Nothing here locks or shares, and the native hot path allocates nothing in steady
//! state: one thread owns every structure.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod fence;
pub mod list;
pub mod proto;
pub mod server;
pub mod table;
pub mod wheel;

#[cfg(test)]
pub(crate) mod testrng;
