//! Native protocol suite: framing, every verb and error code, lock semantics, deadlines
//! and their lateness figures, request ids too long to store inline, AUTH and server
//! limits, and load (deep pipelining, many connections, large replies), each
//! against an in-process server on `127.0.0.1:0` over real TCP.
//!
//! The contract these tests hold the server to is `docs/protocol.md`.

#[path = "../common/mod.rs"]
mod common;

mod auth_limits;
mod load;
mod locking;
mod long_ids;
mod timers;
mod verbs;
