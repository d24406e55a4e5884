//! Hardening suite: hostile input (`fuzz`), random load with abrupt disconnects checked
//! against the protocol's guarantees (`chaos`), and limits, backpressure, AUTH and the
//! fencing state file (`limits`), and listings that must neither stall others nor be cut
//! off (`listings`). Every run is seeded and bounded in count and time.

#[path = "../common/mod.rs"]
mod common;

mod chaos;
mod fuzz;
mod limits;
mod listings;
