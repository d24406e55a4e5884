//! Foreign protocol suite: the lockd, locker, officer and live-mutex listeners, byte by
//! byte against an in-process server, and the real npm clients of locker and live-mutex
//! (`npm`, skipped unless `LOCKBOX_NPM_DIR` is set; `.ci/run` sets it), the Redis
//! dialect with the real Redis lock clients (`redis`, see its module doc), and the Redis
//! dialect against a real redis-server 7.0, reply by reply and byte by byte
//! (`redis_diff`; `.ci/run` installs redis-server).
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
