//! Message-level tests of the live-mutex codec (`docs/compat.md`, "live-mutex")
//! against an in-process server: every message form, busy-then-granted, repeated uuids,
//! unlock by `_uuid` and by force, ttl expiry, semaphores, disconnect cleanup, limits
//! and pipelined lines split anywhere.
//!
//! Every read has a timeout, so a missing reply fails the test instead of hanging it.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{assert_deadline_within, start_with_listeners, SILENCE_MS};
use lockbox::proto::Protocol::LiveMutex as LIVEMUTEX;
use serde_json::{json, Value};

/// Upper slack on deadlines.
const LATE: Duration = Duration::from_millis(1500);

fn start_with(max_line: usize) -> SocketAddr {
    start_with_listeners(&[LIVEMUTEX], |c| c.max_line = max_line).addr(LIVEMUTEX)
}

fn start() -> SocketAddr {
    start_with(lockbox::config::DEFAULT_MAX_LINE)
}

/// A raw live-mutex client (JSON lines over the shared test client).
struct Client {
    c: common::Client,
    syncs: u32,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let mut c = Client {
            c: common::Client::connect(addr),
            syncs: 0,
        };
        // What the real client sends first.
        c.send(&json!({"type": "version", "value": "0.2.25", "max": null, "pid": 1}));
        c
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.c.send_bytes(bytes);
    }

    fn send(&mut self, v: &Value) {
        self.c.send_json(v);
    }

    fn lock(&mut self, uuid: &str, key: &str, ttl: Value, max: Value) {
        self.send(&json!({
            "keepLocksAfterDeath": false, "retryCount": 0, "uuid": uuid, "key": key,
            "type": "lock", "ttl": ttl, "rwStatus": null, "max": max, "pid": 1
        }));
    }

    fn unlock(&mut self, uuid: &str, lock_uuid: Option<&str>, key: &str, force: bool) {
        self.send(&json!({
            "_uuid": lock_uuid, "uuid": uuid, "key": key, "rwStatus": null,
            "force": force, "type": "unlock", "max": null, "pid": 1
        }));
    }

    /// The next reply line as JSON, or panics after [`common::REPLY_TIMEOUT`].
    fn recv(&mut self) -> Value {
        self.c.recv_json()
    }

    /// The next reply line, `\n` included, or panics after [`common::REPLY_TIMEOUT`].
    fn recv_line(&mut self) -> String {
        format!("{}\n", self.c.recv())
    }

    /// Expects nothing to arrive for a while.
    fn expect_silence(&mut self) {
        self.c.expect_silence(SILENCE_MS);
    }

    /// Makes sure everything sent so far on this connection was handled (an `ls`).
    fn sync(&mut self) {
        self.syncs += 1;
        let id = format!("sync-{}", self.syncs);
        self.send(&json!({"type": "ls", "uuid": id}));
        let r = self.recv();
        assert_eq!(r["uuid"], id, "expected the sync reply, got {r}");
    }

    /// Locks and expects the immediate reply `acquired`.
    fn lock_expect(&mut self, uuid: &str, key: &str, ttl: Value, acquired: bool) {
        self.lock(uuid, key, ttl, Value::Null);
        expect_lock(&self.recv(), uuid, key, acquired);
    }

    /// Unlocks and expects `unlocked: true`.
    fn unlock_ok(&mut self, uuid: &str, lock_uuid: &str, key: &str) {
        self.unlock(uuid, Some(lock_uuid), key, false);
        expect_unlocked(&self.recv(), uuid, key);
    }
}

fn expect_lock(r: &Value, uuid: &str, key: &str, acquired: bool) {
    assert_eq!(r["type"], "lock", "{r}");
    assert_eq!(r["uuid"], uuid, "{r}");
    assert_eq!(r["key"], key, "{r}");
    assert_eq!(r["acquired"], acquired, "{r}");
    assert!(r.get("error").is_none(), "{r}");
    assert!(r["lockRequestCount"].is_u64(), "{r}");
    assert_eq!(r["readersCount"], 0, "{r}");
}

fn expect_unlocked(r: &Value, uuid: &str, key: &str) {
    assert_eq!(r["type"], "unlock", "{r}");
    assert_eq!(r["uuid"], uuid, "{r}");
    assert_eq!(r["key"], key, "{r}");
    assert_eq!(r["unlocked"], true, "{r}");
    assert!(r.get("error").is_none(), "{r}");
}

const FOREVER: Value = Value::Null;

#[test]
fn version_lock_unlock_exact_replies() {
    let addr = start();
    let mut a = Client::connect(addr);
    a.lock("L1", "k", json!(7050), Value::Null);
    assert_eq!(
        a.recv_line(),
        "{\"readersCount\":0,\"uuid\":\"L1\",\"key\":\"k\",\"lockRequestCount\":0,\
         \"type\":\"lock\",\"acquired\":true}\n"
    );
    a.send(&json!({"uuid": "L1", "key": "k", "type": "lock-received"}));
    a.unlock("U1", Some("L1"), "k", false);
    assert_eq!(
        a.recv_line(),
        "{\"uuid\":\"U1\",\"key\":\"k\",\"lockRequestCount\":0,\"type\":\"unlock\",\
         \"unlocked\":true}\n"
    );
    // The version message and lock-received got no reply.
    a.expect_silence();
}

#[test]
fn busy_then_unprompted_grant_with_the_same_uuid() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock_expect("A", "res", json!(60_000), true);
    b.lock("B", "res", json!(60_000), Value::Null);
    let r = b.recv();
    expect_lock(&r, "B", "res", false);
    assert_eq!(r["lockRequestCount"], 0);
    b.expect_silence();
    a.unlock_ok("UA", "A", "res");
    let g = b.recv();
    expect_lock(&g, "B", "res", true);
    b.send(&json!({"uuid": "B", "key": "res", "type": "lock-received"}));
    b.unlock_ok("UB", "B", "res");
    b.expect_silence();
}

#[test]
fn repeated_uuid_is_the_same_request() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut c = Client::connect(addr);
    a.lock_expect("A", "rep", FOREVER, true);
    b.lock_expect("B", "rep", FOREVER, false);
    // The client's retry: same uuid, retryCount 1. Still queued, not queued twice.
    b.send(
        &json!({"uuid": "B", "key": "rep", "type": "lock", "ttl": null,
                   "max": null, "retryCount": 1}),
    );
    expect_lock(&b.recv(), "B", "rep", false);
    c.lock_expect("C", "rep", FOREVER, false);
    a.unlock_ok("UA", "A", "rep");
    expect_lock(&b.recv(), "B", "rep", true);
    // Asking again once held says acquired, and takes no second hold.
    b.lock_expect("B", "rep", FOREVER, true);
    b.unlock_ok("UB", "B", "rep");
    expect_lock(&c.recv(), "C", "rep", true);
    c.unlock_ok("UC", "C", "rep");
    // Nothing left: a new request is granted at once.
    a.lock_expect("A2", "rep", FOREVER, true);
}

#[test]
fn wrong_uuid_fails_force_succeeds() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock_expect("A", "f", FOREVER, true);
    b.lock_expect("B", "f", FOREVER, false);
    // Wrong _uuid, no force.
    a.unlock("U1", Some("nope"), "f", false);
    let r = a.recv();
    assert_eq!(
        r,
        json!({"uuid": "U1", "key": "f", "lockRequestCount": 1, "type": "unlock",
               "error": "You need to pass the correct uuid, or use force.",
               "unlocked": false})
    );
    // Another connection cannot unlock a's hold by naming it either.
    b.unlock("U2", Some("A"), "f", false);
    assert_eq!(b.recv()["unlocked"], false);
    // Force from another connection releases it; the waiter is granted.
    let mut c = Client::connect(addr);
    c.unlock("U3", None, "f", true);
    let r = c.recv();
    expect_unlocked(&r, "U3", "f");
    expect_lock(&b.recv(), "B", "f", true);
    // a's own unlock afterwards succeeds (the original: lockholdersAllReleased).
    a.unlock_ok("U4", "A", "f");
    // Nothing to unlock on a free key: unlocked with a warning.
    b.unlock_ok("U5", "B", "f");
    c.unlock("U6", Some("ghost"), "f", false);
    let r = c.recv();
    expect_unlocked(&r, "U6", "f");
    assert!(r["warning"].is_string(), "{r}");
}

#[test]
fn ttl_expiry_is_silent_and_grants_the_next_waiter() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let t = Instant::now();
    a.lock_expect("A", "ttl", json!(150), true);
    b.lock_expect("B", "ttl", FOREVER, false);
    expect_lock(&b.recv(), "B", "ttl", true);
    assert_deadline_within("the ttl", t, Duration::from_millis(150), LATE);
    a.expect_silence();
    // The holder's late unlock succeeds, as in the original, and frees nothing of b's.
    a.unlock_ok("UA", "A", "ttl");
    let mut c = Client::connect(addr);
    c.lock_expect("C", "ttl", FOREVER, false);
    // ttl null: no deadline.
    b.expect_silence();
    c.expect_silence();
    b.unlock_ok("UB", "B", "ttl");
    expect_lock(&c.recv(), "C", "ttl", true);
}

#[test]
fn max_makes_a_semaphore() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    for u in ["S1", "S2"] {
        a.lock(u, "sem", FOREVER, json!(2));
        expect_lock(&a.recv(), u, "sem", true);
    }
    b.lock("S3", "sem", FOREVER, json!(2));
    expect_lock(&b.recv(), "S3", "sem", false);
    a.unlock_ok("U1", "S1", "sem");
    expect_lock(&b.recv(), "S3", "sem", true);
    // A request without max is exclusive: it waits for the semaphore to empty.
    let mut c = Client::connect(addr);
    c.lock_expect("X", "sem", FOREVER, false);
    a.unlock_ok("U2", "S2", "sem");
    c.expect_silence();
    b.unlock_ok("U3", "S3", "sem");
    expect_lock(&c.recv(), "X", "sem", true);
    // max must be a positive integer.
    a.lock("bad", "sem2", FOREVER, json!(0));
    let r = a.recv();
    assert_eq!(r["uuid"], "bad");
    assert!(r["error"].is_string(), "{r}");
}

#[test]
fn unknown_type_and_bad_input() {
    let addr = start();
    let mut a = Client::connect(addr);
    a.send(&json!({"type": "increment-readers", "uuid": "Q", "key": "k"}));
    assert_eq!(
        a.recv(),
        json!({"key": "k", "uuid": "Q",
               "error": "Malformed data sent to Live-Mutex broker."})
    );
    a.send(&json!({"uuid": "Q2"}));
    assert_eq!(
        a.recv(),
        json!({"uuid": "Q2", "error": "Malformed data sent to Live-Mutex broker."})
    );
    // Not JSON, and blank lines: ignored.
    a.send_raw(b"this is not json\n\r\n\n");
    a.sync();
    // Bad fields of a lock: an error reply naming the request.
    let long_key = " ".repeat(100); // 300 bytes once escaped
    a.send(&json!({"type": "lock", "uuid": "E1", "key": long_key, "ttl": null}));
    let r = a.recv();
    assert_eq!(r["uuid"], "E1");
    assert_eq!(r["type"], "lock");
    assert!(r["error"].is_string(), "{r}");
    a.send(&json!({"type": "lock", "uuid": "E2", "key": "k", "ttl": "soon"}));
    assert!(a.recv()["error"].is_string());
    a.send(&json!({"type": "lock", "key": "k", "ttl": null}));
    assert!(a.recv()["error"].is_string());
    a.expect_silence();
}

#[test]
fn line_too_long_closes_the_connection() {
    let addr = start_with(256);
    let mut a = Client::connect(addr);
    a.sync();
    a.send_raw(&vec![b'x'; 2000]);
    a.c.expect_closed();
    // A line at the limit is fine.
    let mut c = Client::connect(addr);
    let pad = "p".repeat(256 - 60);
    let line = format!("{{\"type\":\"ls\",\"uuid\":\"x\",\"pad\":\"{pad}\"}}");
    assert!(line.len() <= 256);
    c.send_raw(format!("{line}\n").as_bytes());
    assert_eq!(c.recv()["uuid"], "x");
}

#[test]
fn disconnect_releases_only_that_connections_claims() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut c = Client::connect(addr);
    a.lock_expect("A1", "k1", FOREVER, true);
    b.lock_expect("B2", "k2", FOREVER, true);
    // a also waits on k2, ahead of c.
    a.lock_expect("A2", "k2", FOREVER, false);
    c.lock_expect("C1", "k1", FOREVER, false);
    c.lock_expect("C2", "k2", FOREVER, false);
    drop(a);
    expect_lock(&c.recv(), "C1", "k1", true);
    // b keeps k2 (the original would have force-released every key).
    c.expect_silence();
    b.unlock_ok("UB", "B2", "k2");
    // a's wait on k2 was cancelled: c is next.
    expect_lock(&c.recv(), "C2", "k2", true);
}

#[test]
fn client_give_up_ends_the_request() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut c = Client::connect(addr);
    a.lock_expect("A", "g", FOREVER, true);
    b.lock_expect("B", "g", FOREVER, false);
    c.lock_expect("C", "g", FOREVER, false);
    b.send(&json!({"uuid": "B", "key": "g", "type": "lock-client-timeout"}));
    b.sync();
    a.unlock_ok("UA", "A", "g");
    expect_lock(&c.recv(), "C", "g", true);
    b.expect_silence();
    // A grant that crossed the give-up is released by the give-up too.
    b.lock_expect("B2", "g", FOREVER, false);
    c.unlock_ok("UC", "C", "g");
    expect_lock(&b.recv(), "B2", "g", true);
    b.send(&json!({"uuid": "B2", "key": "g", "type": "lock-client-error"}));
    b.send(&json!({"uuid": "B2", "key": "g", "type": "lock-received-rejected"}));
    b.sync();
    a.lock_expect("A2", "g", FOREVER, true);
}

#[test]
fn fifo_with_three_waiters() {
    let addr = start();
    let mut h = Client::connect(addr);
    h.lock_expect("H", "q", FOREVER, true);
    let mut w: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    for (i, c) in w.iter_mut().enumerate() {
        c.lock(&format!("W{i}"), "q", FOREVER, Value::Null);
        let r = c.recv();
        expect_lock(&r, &format!("W{i}"), "q", false);
        assert_eq!(r["lockRequestCount"], i as u64, "{r}");
    }
    h.unlock_ok("UH", "H", "q");
    for i in 0..3 {
        let u = format!("W{i}");
        expect_lock(&w[i].recv(), &u, "q", true);
        for later in &mut w[i + 1..] {
            later.expect_silence();
        }
        w[i].unlock_ok("U", &u, "q");
    }
}

#[test]
fn ls_and_lock_info() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock_expect("A", "info", FOREVER, true);
    b.lock_expect("B", "info", FOREVER, false);
    a.send(&json!({"type": "lock-info-request", "uuid": "I", "key": "info"}));
    assert_eq!(
        a.recv(),
        json!({"key": "info", "uuid": "I", "lockholderUUIDs": [], "lockRequestCount": 1,
               "isLocked": true, "lockInfo": true, "type": "lock-info-response"})
    );
    // Keys with bytes the lock table escapes (%XX) come back as sent.
    b.lock_expect("B2", "my key %", FOREVER, true);
    b.lock_expect("B3", "", FOREVER, true);
    a.send(&json!({"type": "ls", "uuid": "L"}));
    assert_eq!(
        a.recv(),
        json!({"ls_result": ["", "info", "my key %"], "uuid": "L"})
    );
}

#[test]
fn pipelined_lines_split_at_any_byte() {
    let addr = start();
    let mut stream = Vec::new();
    let mut add = |v: Value| {
        stream.extend_from_slice(&serde_json::to_vec(&v).unwrap());
        stream.extend_from_slice(b"\r\n");
    };
    add(json!({"type": "version", "value": "0.2.25"}));
    add(json!({"type": "lock", "uuid": "p1", "key": "é\n\"k", "ttl": null}));
    add(json!({"type": "lock", "uuid": "p2", "key": "é\n\"k", "ttl": null}));
    add(json!({"type": "unlock", "uuid": "u1", "_uuid": "p1", "key": "é\n\"k"}));
    add(json!({"type": "lock-received", "uuid": "p2", "key": "é\n\"k"}));
    add(json!({"type": "unlock", "uuid": "u2", "_uuid": "p2", "key": "é\n\"k"}));
    let expected = [
        json!({"readersCount": 0, "uuid": "p1", "key": "é\n\"k", "lockRequestCount": 0,
               "type": "lock", "acquired": true}),
        json!({"readersCount": 0, "uuid": "p2", "key": "é\n\"k", "lockRequestCount": 0,
               "type": "lock", "acquired": false}),
        // The unlock's reply comes first, then the grant it caused (as the original).
        json!({"uuid": "u1", "key": "é\n\"k", "lockRequestCount": 0, "type": "unlock",
               "unlocked": true}),
        json!({"readersCount": 0, "uuid": "p2", "key": "é\n\"k", "lockRequestCount": 0,
               "type": "lock", "acquired": true}),
        json!({"uuid": "u2", "key": "é\n\"k", "lockRequestCount": 0, "type": "unlock",
               "unlocked": true}),
    ];
    for pattern in [&[1usize][..], &[7, 2, 19, 3], &[usize::MAX]] {
        let stream_once = stream.clone();
        let mut c = Client::connect(addr);
        let mut pos = 0;
        let mut i = 0;
        while pos < stream_once.len() {
            let n = pattern[i % pattern.len()].min(stream_once.len() - pos);
            c.send_raw(&stream_once[pos..pos + n]);
            pos += n;
            i += 1;
            if i % 16 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        for e in &expected {
            assert_eq!(&c.recv(), e, "pattern {pattern:?}");
        }
        c.expect_silence();
    }
}

#[test]
fn many_requests_on_one_connection() {
    // Past the session's map rebuild (at 1024 requests): every request stays known.
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    const N: usize = 1500;
    let mut lines = Vec::new();
    for i in 0..N {
        let v = json!({"type": "lock", "uuid": format!("m{i}"), "key": format!("many-{i}"),
                       "ttl": null});
        lines.extend_from_slice(&serde_json::to_vec(&v).unwrap());
        lines.push(b'\n');
    }
    a.send_raw(&lines);
    for i in 0..N {
        expect_lock(&a.recv(), &format!("m{i}"), &format!("many-{i}"), true);
    }
    // Repeats are still recognised after the rebuild.
    a.lock_expect("m3", "many-3", FOREVER, true);
    b.lock_expect("w3", "many-3", FOREVER, false);
    b.lock_expect("w3", "many-3", FOREVER, false);
    let mut lines = Vec::new();
    for i in 0..N {
        let v = json!({"type": "unlock", "uuid": format!("u{i}"), "_uuid": format!("m{i}"),
                       "key": format!("many-{i}")});
        lines.extend_from_slice(&serde_json::to_vec(&v).unwrap());
        lines.push(b'\n');
    }
    a.send_raw(&lines);
    for i in 0..N {
        let r = a.recv();
        expect_unlocked(&r, &format!("u{i}"), &format!("many-{i}"));
        assert!(r.get("warning").is_none(), "{r}");
    }
    expect_lock(&b.recv(), "w3", "many-3", true);
}

#[test]
fn unlock_of_an_expired_request_does_not_depend_on_map_rebuilds() {
    // The original remembers a hold that ran out (lockholderTimeouts) and answers its
    // late unlock with unlocked:true once; a session map rebuild must not forget it.
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock_expect("A", "gone", json!(30), true);
    b.lock_expect("B", "gone", FOREVER, false);
    expect_lock(&b.recv(), "B", "gone", true);
    // Enough requests to rebuild a's map (at 1024 entries).
    const N: usize = 1100;
    let mut lines = Vec::new();
    for i in 0..N {
        let v = json!({"type": "lock", "uuid": format!("r{i}"), "key": format!("rb-{i}"),
                       "ttl": null});
        lines.extend_from_slice(&serde_json::to_vec(&v).unwrap());
        lines.push(b'\n');
    }
    a.send_raw(&lines);
    for i in 0..N {
        expect_lock(&a.recv(), &format!("r{i}"), &format!("rb-{i}"), true);
    }
    // b holds the key now; a's late unlock of its expired request is still known...
    a.unlock_ok("UA", "A", "gone");
    // ...once: a second one is the wrong uuid for b's hold.
    a.unlock("UA2", Some("A"), "gone", false);
    let r = a.recv();
    assert_eq!(r["unlocked"], false, "{r}");
    assert_eq!(
        r["error"],
        "You need to pass the correct uuid, or use force."
    );
    // And b's hold was untouched.
    b.unlock_ok("UB", "B", "gone");
}
