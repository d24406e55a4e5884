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
//! - [`proto`]: wire codecs, bytes to engine calls and engine events to bytes (`proto::native`).
//!
//! Nothing here locks, shares or allocates per request: one thread owns every structure.
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
