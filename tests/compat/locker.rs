//! Byte-level tests of the locker codec (`docs/compat.md`, "locker") against an
//! in-process server: every frame form, waits, timeouts, silent hold expiry, unlock by
//! sequence, FIFO, disconnect cleanup and pipelined frames split anywhere.
//!
//! Every read has a timeout, so a missing reply fails the test instead of hanging it.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{assert_deadline_within, start_with_listeners, SILENCE_MS};
use lockbox::config::Config;
use lockbox::proto::locker::{encode_request, Frame, ACTION_LOCK, ACTION_UNLOCK, REPLY};
use lockbox::proto::Protocol::{LiveMutex as LIVEMUTEX, Locker as LOCKER};

/// Upper slack on deadlines (correctness on a noisy machine, not a benchmark).
const LATE: Duration = Duration::from_millis(1500);

/// Starts a server with a locker listener; returns (locker address, native address).
fn start() -> (SocketAddr, SocketAddr) {
    let s = start_with_listeners(&[LOCKER], |_: &mut Config| {});
    (s.addr(LOCKER), s.native)
}

fn lock_frame(seq: u32, name: &[u8], wait: u32, hold: u32) -> Vec<u8> {
    let mut v = Vec::new();
    encode_request(
        &mut v,
        &Frame {
            seq,
            wait,
            hold,
            action: ACTION_LOCK,
            name,
        },
    );
    v
}

fn unlock_frame(seq: u32) -> Vec<u8> {
    let mut v = Vec::new();
    encode_request(
        &mut v,
        &Frame {
            seq,
            wait: 0,
            hold: 0,
            action: ACTION_UNLOCK,
            name: b"",
        },
    );
    v
}

fn reply(seq: u32, action: u8, result: u8) -> [u8; REPLY] {
    let s = seq.to_le_bytes();
    [s[0], s[1], s[2], s[3], action, result]
}

/// A raw locker client (frames over the shared test client).
struct Client {
    c: common::Client,
    /// Sequence numbers for [`Client::sync`], far from the tests' own.
    probe: u32,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        Client {
            c: common::Client::connect(addr),
            probe: 0xF000_0000,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.c.send_bytes(bytes);
    }

    fn lock(&mut self, seq: u32, name: &str, wait: u32, hold: u32) {
        self.send(&lock_frame(seq, name.as_bytes(), wait, hold));
    }

    fn unlock(&mut self, seq: u32) {
        self.send(&unlock_frame(seq));
    }

    /// Reads exactly `n` bytes or panics after [`common::REPLY_TIMEOUT`].
    fn read_n(&mut self, n: usize) -> Vec<u8> {
        self.c.recv_exact(n)
    }

    /// Expects the next reply to be `(seq, action, result)`.
    fn expect(&mut self, seq: u32, action: u8, result: u8) {
        let got = self.read_n(REPLY);
        assert_eq!(
            got,
            reply(seq, action, result),
            "expected (seq {seq}, action {action}, result {result})"
        );
    }

    /// Expects nothing to arrive for a while.
    fn expect_silence(&mut self) {
        self.c.expect_silence(SILENCE_MS);
    }

    /// Makes sure the server has handled everything sent so far on this connection
    /// (an unlock of an unknown sequence, answered `(seq,0,0)`).
    fn sync(&mut self) {
        self.probe += 1;
        let seq = self.probe;
        self.unlock(seq);
        self.expect(seq, ACTION_UNLOCK, 0);
    }
}

#[test]
fn lock_unlock_and_unknown_sequences() {
    let (addr, _) = start();
    let mut a = Client::connect(addr);
    a.lock(1, "five", 1000, 10_000);
    a.expect(1, ACTION_LOCK, 1);
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 1);
    // Already released, and never used.
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 0);
    a.unlock(99);
    a.expect(99, ACTION_UNLOCK, 0);
    // Free again: wait=0 on a free lock is granted.
    a.lock(2, "five", 0, 10_000);
    a.expect(2, ACTION_LOCK, 1);
    a.unlock(2);
    a.expect(2, ACTION_UNLOCK, 1);
}

#[test]
fn waiter_is_granted_after_release() {
    let (addr, native) = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock(1, "res", 1000, 60_000);
    a.expect(1, ACTION_LOCK, 1);
    b.lock(7, "res", 5000, 60_000);
    b.expect_silence();
    // A foreign request that queues counts in STATS' waits_total like a native one.
    let stats = common::Client::connect(native).stats();
    assert_eq!((stats["waits_total"], stats["grants_total"]), (1, 1));
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 1);
    b.expect(7, ACTION_LOCK, 1);
    b.unlock(7);
    b.expect(7, ACTION_UNLOCK, 1);
}

#[test]
fn wait_runs_out_and_wait_zero_tries_once() {
    let (addr, _) = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock(1, "busy", 1000, 60_000);
    a.expect(1, ACTION_LOCK, 1);
    // wait=0 on a busy lock: refused at once.
    let t = Instant::now();
    b.lock(2, "busy", 0, 60_000);
    b.expect(2, ACTION_LOCK, 0);
    assert!(
        t.elapsed() < LATE,
        "wait=0 answered after {:?}",
        t.elapsed()
    );
    // wait=120: refused when it runs out, not before.
    let t = Instant::now();
    b.lock(3, "busy", 120, 60_000);
    b.expect(3, ACTION_LOCK, 0);
    assert_deadline_within("the wait", t, Duration::from_millis(120), LATE);
    // The timed-out request left the queue: a release grants nobody, and its unlock fails.
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 1);
    b.expect_silence();
    b.unlock(3);
    b.expect(3, ACTION_UNLOCK, 0);
    b.lock(4, "busy", 0, 60_000);
    b.expect(4, ACTION_LOCK, 1);
}

#[test]
fn hold_expiry_is_silent_and_grants_the_next_waiter() {
    let (addr, _) = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let t = Instant::now();
    a.lock(1, "short", 1000, 150);
    a.expect(1, ACTION_LOCK, 1);
    b.lock(2, "short", 5000, 60_000);
    b.expect(2, ACTION_LOCK, 1);
    assert_deadline_within("the hold", t, Duration::from_millis(150), LATE);
    // Nothing was sent to the holder whose hold expired; its unlock now fails.
    a.expect_silence();
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 0);
    // hold=0: the hold ends right away (the original's setTimeout(release, 0)).
    b.unlock(2);
    b.expect(2, ACTION_UNLOCK, 1);
    a.lock(3, "zero", 1000, 0);
    a.expect(3, ACTION_LOCK, 1);
    b.lock(4, "zero", 5000, 60_000);
    b.expect(4, ACTION_LOCK, 1);
    a.expect_silence();
}

#[test]
fn not_reentrant_second_request_queues() {
    let (addr, _) = start();
    let mut a = Client::connect(addr);
    a.lock(1, "re", 1000, 60_000);
    a.expect(1, ACTION_LOCK, 1);
    a.lock(2, "re", 5000, 60_000);
    a.expect_silence();
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 1);
    a.expect(2, ACTION_LOCK, 1);
}

#[test]
fn fifo_with_three_waiters() {
    let (addr, _) = start();
    let mut h = Client::connect(addr);
    h.lock(1, "fifo", 1000, 60_000);
    h.expect(1, ACTION_LOCK, 1);
    let mut w: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    for (i, c) in w.iter_mut().enumerate() {
        c.lock(10 + i as u32, "fifo", 10_000, 60_000);
        c.sync(); // queued in this order
    }
    h.unlock(1);
    h.expect(1, ACTION_UNLOCK, 1);
    for i in 0..3 {
        let seq = 10 + i as u32;
        w[i].expect(seq, ACTION_LOCK, 1);
        for later in &mut w[i + 1..] {
            later.expect_silence();
        }
        w[i].unlock(seq);
        w[i].expect(seq, ACTION_UNLOCK, 1);
    }
}

#[test]
fn disconnect_releases_holds_and_cancels_waits() {
    let (addr, _) = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut c = Client::connect(addr);
    let mut d = Client::connect(addr);
    c.lock(1, "y", 1000, 60_000);
    c.expect(1, ACTION_LOCK, 1);
    a.lock(1, "x", 1000, 60_000);
    a.expect(1, ACTION_LOCK, 1);
    a.lock(2, "y", 10_000, 60_000); // a waits on y, first in line
    a.sync();
    b.lock(5, "x", 10_000, 60_000);
    d.lock(6, "y", 10_000, 60_000);
    b.sync();
    d.sync();
    drop(a);
    // a's hold on x is released: b gets it.
    b.expect(5, ACTION_LOCK, 1);
    // a's wait on y was cancelled: c's release goes to d.
    c.unlock(1);
    c.expect(1, ACTION_UNLOCK, 1);
    d.expect(6, ACTION_LOCK, 1);
}

#[test]
fn pipelined_frames_split_at_any_byte() {
    let (addr, _) = start();
    let long = vec![b'n'; 255];
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut add = |frame: Vec<u8>, rep: Option<[u8; 6]>| {
        stream.extend_from_slice(&frame);
        if let Some(r) = rep {
            expected.extend_from_slice(&r);
        }
    };
    add(lock_frame(1, b"p1", 1000, 60_000), Some(reply(1, 1, 1)));
    add(lock_frame(2, b"p2", 1000, 60_000), Some(reply(2, 1, 1)));
    add(unlock_frame(1), Some(reply(1, 0, 1)));
    add(lock_frame(3, &long, 0, 60_000), Some(reply(3, 1, 1)));
    add(unlock_frame(77), Some(reply(77, 0, 0)));
    add(lock_frame(4, b"p2", 0, 60_000), Some(reply(4, 1, 0)));
    add(unlock_frame(2), Some(reply(2, 0, 1)));
    add(unlock_frame(3), Some(reply(3, 0, 1)));
    add(lock_frame(5, b"p2", 0, 60_000), Some(reply(5, 1, 1)));
    add(unlock_frame(5), Some(reply(5, 0, 1)));
    // Chunk patterns: one byte at a time, primes, and all at once.
    for pattern in [
        &[1usize][..],
        &[13, 1, 7, 2, 31],
        &[5, 269, 3],
        &[usize::MAX],
    ] {
        let mut c = Client::connect(addr);
        let mut pos = 0;
        let mut i = 0;
        while pos < stream.len() {
            let n = pattern[i % pattern.len()].min(stream.len() - pos);
            c.send(&stream[pos..pos + n]);
            pos += n;
            i += 1;
            if i % 16 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(c.read_n(expected.len()), expected, "pattern {pattern:?}");
        c.expect_silence();
    }
}

#[test]
fn refusals_and_odd_frames() {
    let (addr, _) = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    // A name whose escaped form is over 255 bytes: refused. (255 spaces are 765 bytes
    // as `%20`s.)
    a.send(&lock_frame(1, &[b' '; 255], 1000, 1000));
    a.expect(1, ACTION_LOCK, 0);
    // The empty name is a name (engine name `%`), as in the original.
    a.lock(5, "", 0, 60_000);
    a.expect(5, ACTION_LOCK, 1);
    b.lock(6, "", 0, 60_000);
    b.expect(6, ACTION_LOCK, 0);
    a.unlock(5);
    a.expect(5, ACTION_UNLOCK, 1);
    // A sequence already in use on this connection: refused, the first stays.
    a.lock(2, "dup", 1000, 60_000);
    a.expect(2, ACTION_LOCK, 1);
    a.lock(2, "other", 1000, 60_000);
    a.expect(2, ACTION_LOCK, 0);
    // Unknown action: consumed, no reply.
    let mut odd = lock_frame(3, b"dup", 1000, 1000);
    odd[13] = 7;
    a.send(&odd);
    a.sync();
    // Unlock of a waiting sequence withdraws it: (seq,1,0) then (seq,0,1).
    b.lock(9, "dup", 10_000, 60_000);
    b.sync();
    b.unlock(9);
    b.expect(9, ACTION_LOCK, 0);
    b.expect(9, ACTION_UNLOCK, 1);
    a.unlock(2);
    a.expect(2, ACTION_UNLOCK, 1);
    b.expect_silence();
    // Sequence numbers may be reused once their request is over.
    a.lock(2, "dup", 0, 60_000);
    a.expect(2, ACTION_LOCK, 1);
}

#[test]
fn locker_names_are_the_native_names() {
    let (addr, native) = start();
    let mut a = Client::connect(addr);
    a.lock(1, "shared-table", 1000, 60_000);
    a.expect(1, ACTION_LOCK, 1);
    let mut n = common::Client::connect(native);
    assert_eq!(n.req("r1 LOCK shared-table wait=0"), "r1 TIMEOUT");
    // Bytes the native grammar cannot carry are escaped as %XX, as for lockd and officer.
    a.lock(2, "job 1%", 1000, 60_000);
    a.expect(2, ACTION_LOCK, 1);
    assert_eq!(n.req("r2 LOCK job%201%25 wait=0"), "r2 TIMEOUT");
}

#[test]
fn many_holds_on_one_connection() {
    // Past the session's map rebuild (at 1024 live requests): every hold stays known.
    let (addr, _) = start();
    let mut a = Client::connect(addr);
    const N: u32 = 3000;
    let mut frames = Vec::new();
    let mut expected = Vec::new();
    for seq in 1..=N {
        frames.extend_from_slice(&lock_frame(
            seq,
            format!("many-{seq}").as_bytes(),
            0,
            60_000,
        ));
        expected.extend_from_slice(&reply(seq, ACTION_LOCK, 1));
    }
    a.send(&frames);
    assert_eq!(a.read_n(expected.len()), expected);
    // A second request with a live sequence is still refused after the rebuild.
    a.lock(7, "many-other", 0, 60_000);
    a.expect(7, ACTION_LOCK, 0);
    frames.clear();
    expected.clear();
    for seq in (1..=N).rev() {
        frames.extend_from_slice(&unlock_frame(seq));
        expected.extend_from_slice(&reply(seq, ACTION_UNLOCK, 1));
    }
    a.send(&frames);
    assert_eq!(a.read_n(expected.len()), expected);
    a.expect_silence();
}

#[test]
fn another_protocols_force_unlock_leaves_locker_holds_alone() {
    // live-mutex's force unlock releases only live-mutex holds on the key: a locker
    // hold of the same name survives it, and its sequence stays in use.
    let s = start_with_listeners(&[LOCKER, LIVEMUTEX], |_| {});
    let (addr, lm) = (s.addr(LOCKER), s.addr(LIVEMUTEX));
    let mut a = Client::connect(addr);
    a.lock(1, "forced", 0, 60_000);
    a.expect(1, ACTION_LOCK, 1);
    let mut f = common::Client::connect(lm);
    f.send(r#"{"type":"unlock","uuid":"F","key":"forced","force":true}"#);
    let r = f.recv_json();
    assert_eq!(r["unlocked"], true, "{r}");
    // Still held: the sequence is in use, another connection cannot take the name,
    // and the hold unlocks normally.
    a.lock(1, "forced", 0, 60_000);
    a.expect(1, ACTION_LOCK, 0);
    let mut b = Client::connect(addr);
    b.lock(2, "forced", 0, 60_000);
    b.expect(2, ACTION_LOCK, 0);
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 1);
    a.unlock(1);
    a.expect(1, ACTION_UNLOCK, 0);
    b.lock(2, "forced", 0, 60_000);
    b.expect(2, ACTION_LOCK, 1);
}
