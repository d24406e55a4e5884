//! lockbox: a network lock server on one `mio` poll loop.
//!
//! # Layout
//! Each layer calls only the ones below it: server -> proto -> engine -> table ->
//! wheel / list.
//! - [`clock`]: the server's monotonic clock in milliseconds and microseconds (cheap
//!   enough to read per read batch), and [`alarm`]: a timerfd in the poll set that wakes
//!   the loop exactly at the next deadline.
//! - [`config`]: `Config` and the command-line parser that builds it.
//! - [`server`]: the poll loop: accept, read, dispatch, flush once per iteration, reap,
//!   then the engine's deferred work; deadlines (the engine's and its own timers: auth
//!   deadline and delay, lingering) fired in bounded batches between connections'
//!   turns, each step a module of its own (`server::accept`, `read`, `dispatch`,
//!   `timers`, `flush`, `reap`); with [`signals`] (SIGINT/SIGTERM as poll readiness)
//!   and [`lograte`] (rate limits of the refusal warnings).
//! - [`proto`]: wire codecs, bytes to engine calls and engine events to bytes, each a
//!   typed `parse` then `execute` behind the [`proto::Wire`] contract:
//!   - [`proto::native`] (grammar in its `parse` module), and the foreign
//!     [`proto::lockd`], [`proto::locker`], [`proto::officer`], [`proto::livemutex`];
//!   - [`proto::redis`]: the Redis lock dialect over [`proto::resp`], with its scripts
//!     mapped to typed calls in [`proto::redis_scripts`]; the session and dispatch in
//!     its root, values and key state in `redis::value`, `SET`/`HSET` in
//!     `redis::write`, `SCAN` and the glob in `redis::keys`, `SCRIPT` and script calls
//!     in `redis::script`, the connection commands in `redis::conn`;
//!   - [`proto::metrics`]: the Prometheus endpoint, an HTTP/1.1 responder;
//!   - their shared parts: [`proto::framing`] (lines), [`proto::json`] (the JSON
//!     writer), [`proto::names`] (foreign names to engine names), [`proto::requests`]
//!     (client-named requests), [`proto::listing`] (listings written a batch at a
//!     time, and `listing::sorted`, which puts them in order a batch at a time; each
//!     codec's own listings are in its `listing` module).
//! - [`engine`]: the protocol-agnostic core: table + wheel + clients + counters; requests
//!   in, events out. It re-exports the table's vocabulary the codecs use. Its grant-wait
//!   and hold-duration figures are [`histogram`]s with fixed buckets. Its `cursor`
//!   module scans the lock slab, the claim slab and the client slots a batch at a time;
//!   `detached` holds detached holds and their attachments, `work` the deferred grants
//!   and closing clients, `views` the read-only lookups, `stats` the figures.
//! - [`table`]: the lock table: locks, holds and waiters in slabs, linked in intrusive
//!   FIFO lists; the wait index by key in `table::index`, read-only lookups in
//!   `table::views`.
//! - [`fence`]: fencing tokens, strictly increasing across grants and restarts.
//! - [`wheel`]: hierarchical timer wheel for wait and hold deadlines; time is an argument;
//!   it fires in bounded batches as exactly as all at once.
//!   Its per-level slot arithmetic and bitmaps are in `wheel::level`.
//! - [`shrink`]: the rule by which slabs, hash tables and scratch vectors give memory
//!   back after a burst (below a quarter full, with hysteresis), applied by a periodic
//!   maintenance step of the poll loop.
//! - [`compact`]: the 24-byte byte strings that hold lock names and request tags
//!   (short ones inline), the bulk of what a million holds cost.
//! - [`list`]: the one intrusive doubly linked list, threaded through slab indices (O(1)
//!   unlink), used by the table and the wheel.
//! - `testrng` (tests only): the seeded SplitMix64 of every model and fuzz test.
//!
//! Tests live beside the code they test, not inside it: `engine/tests`, `table/tests`
//! (unit tests, and a `model` against a reference), `wheel/tests.rs`,
//! `proto/native/tests.rs`; small modules keep a `tests` module at their end.
//!
//! Nothing here locks or shares, and the native hot path allocates nothing in steady
//! state: one thread owns every structure.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alarm;
pub mod clock;
pub mod compact;
pub mod config;
pub mod engine;
pub mod fence;
pub mod histogram;
pub mod list;
pub mod lograte;
pub mod proto;
pub mod server;
pub mod shrink;
pub mod signals;
pub mod table;
pub mod wheel;

#[cfg(test)]
pub(crate) mod testrng;
