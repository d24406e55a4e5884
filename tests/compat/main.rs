//! Foreign protocol suite: the lockd, locker, officer and live-mutex listeners, byte by
//! byte against an in-process server, and the real npm clients of locker and live-mutex
//! (`npm`, skipped unless `LOCKBOX_NPM_DIR` is set; `.ci/run` sets it), and the Redis
//! dialect with the real Redis lock clients (`redis`, see its module doc).
//!
//! The wire formats these tests hold the server to are in `docs/compat.md`.

#[path = "../common/mod.rs"]
mod common;

mod livemutex;
mod lockd;
mod locker;
mod npm;
mod officer;
mod redis;
mod redis_diff;
