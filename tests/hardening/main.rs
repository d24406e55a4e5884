//! Hardening suite: hostile input (`fuzz`), random load with abrupt disconnects checked
//! against the protocol's guarantees (`chaos`), and limits, backpressure, AUTH and the
//! fencing state file (`limits`), listings that must neither stall others nor be cut
//! off (`listings`), and what one client can do to the others: batched grants and
//! disconnects, `--max-claims`, the AUTH deadline and delay, half-close and the last
//! reply before a close (`isolation`). Every run is seeded and bounded in count and time.

#[path = "../common/mod.rs"]
mod common;

mod chaos;
mod fuzz;
mod isolation;
mod limits;
mod listings;
