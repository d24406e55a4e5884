//! officer compatibility: byte-exact JSON replies (officer's key order) to every request
//! of `docs/compat.md` ("officer"), over a real socket to an in-process server.

use crate::common;

use common::{
    assert_deadline_within, start_with_listeners, Client, Listeners, REPLY_TIMEOUT, SILENCE_MS,
};
use lockbox::config::Config;
use lockbox::proto::Protocol::{Lockd as LOCKD, Officer as OFFICER};
use std::time::{Duration, Instant};

/// Upper slack on deadlines (a correctness check, not a benchmark).
const LATE_SLACK: Duration = Duration::from_millis(400);

/// An in-process server with officer and lockd listeners; `tweak` adjusts the config.
fn start_with(tweak: impl FnOnce(&mut Config)) -> Listeners {
    start_with_listeners(&[OFFICER, LOCKD], tweak)
}

fn start() -> Listeners {
    start_with(|_| {})
}

/// `my_locks`, checked against `names`.
fn my_locks(c: &mut Client, names: &str) {
    assert_eq!(
        c.req(r#"{"command":"my_locks"}"#),
        format!(r#"{{"value":[{names}],"result":"my_locks"}}"#)
    );
}

fn lock(name: &str) -> String {
    format!(r#"{{"command":"lock","name":"{name}"}}"#)
}

fn lock_with(name: &str, extra: &str) -> String {
    format!(r#"{{"command":"lock","name":"{name}",{extra}}}"#)
}

fn unlock(name: &str) -> String {
    format!(r#"{{"command":"unlock","name":"{name}"}}"#)
}

fn acquired(name: &str) -> String {
    format!(r#"{{"name":"{name}","result":"acquired"}}"#)
}

fn with_queue(name: &str, queue: &[&str], result: &str) -> String {
    let q: Vec<String> = queue.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"name":"{name}","queue":[{}],"result":"{result}"}}"#,
        q.join(",")
    )
}

#[test]
fn lock_already_acquired_unlock() {
    let s = start();
    let mut a = Client::connect(s.addr(OFFICER));
    assert_eq!(a.req(&lock("a")), acquired("a"));
    assert_eq!(
        a.req(&lock("a")),
        r#"{"name":"a","result":"already_acquired"}"#
    );
    my_locks(&mut a, r#""a""#);
    assert_eq!(a.req(&unlock("a")), r#"{"name":"a","result":"released"}"#);
    assert_eq!(
        a.req(&unlock("a")),
        r#"{"name":"a","result":"release_failed"}"#
    );
    my_locks(&mut a, "");
    // Timeouts and queue_max do not matter when the lock is free.
    assert_eq!(
        a.req(&lock_with("b", r#""timeout":0,"queue_max":1"#)),
        acquired("b")
    );
    assert_eq!(
        a.req(&lock_with("c", r#""timeout":null,"queue_max":null"#)),
        acquired("c")
    );
}

#[test]
fn unlock_by_another_connection_fails() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
    );
    assert_eq!(a.req(&lock("a")), acquired("a"));
    assert_eq!(
        b.req(&unlock("a")),
        r#"{"name":"a","result":"release_failed"}"#
    );
    my_locks(&mut a, r#""a""#);
}

#[test]
fn deferred_grant_after_the_holder_unlocks() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
    );
    assert_eq!(a.req(&lock("a")), acquired("a"));
    b.send(&lock("a"));
    b.expect_silence(SILENCE_MS);
    // Asking again while waiting changes nothing and gets no reply.
    b.send(&lock("a"));
    b.expect_silence(SILENCE_MS);
    my_locks(&mut b, r#""a""#);
    assert_eq!(a.req(&unlock("a")), r#"{"name":"a","result":"released"}"#);
    assert_eq!(b.recv(), acquired("a"));
    my_locks(&mut b, r#""a""#);
    my_locks(&mut a, "");
}

#[test]
fn deferred_grant_after_the_holder_disconnects() {
    let s = start();
    let mut b = Client::connect(s.addr(OFFICER));
    {
        let mut a = Client::connect(s.addr(OFFICER));
        assert_eq!(a.req(&lock("a")), acquired("a"));
        b.send(&lock_with("a", r#""timeout":30"#));
        b.expect_silence(SILENCE_MS);
    }
    assert_eq!(b.recv(), acquired("a"));
}

#[test]
fn timed_out_with_queue() {
    let s = start();
    let (mut a, mut b, mut c) = (
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
    );
    let (aa, ca) = (a.addr(), c.addr());
    assert_eq!(a.req(&lock("t")), acquired("t"));
    // timeout 0: at once.
    assert_eq!(
        b.req(&lock_with("t", r#""timeout":0"#)),
        with_queue("t", &[&aa], "timed_out")
    );
    c.send(&lock("t"));
    c.expect_silence(SILENCE_MS);
    // A fractional timeout: after at least that long, with holders then waiters.
    let t0 = Instant::now();
    b.send(&lock_with("t", r#""timeout":0.3"#));
    assert_eq!(b.recv(), with_queue("t", &[&aa, &ca], "timed_out"));
    assert_deadline_within("the timeout", t0, Duration::from_millis(300), LATE_SLACK);
    my_locks(&mut b, "");
    // The timed-out wait is gone: the next grant goes to c.
    assert_eq!(a.req(&unlock("t")), r#"{"name":"t","result":"released"}"#);
    assert_eq!(c.recv(), acquired("t"));
    b.expect_silence(SILENCE_MS);
}

#[test]
fn queue_maxed_with_queue() {
    let s = start();
    let mut c: Vec<Client> = (0..4).map(|_| Client::connect(s.addr(OFFICER))).collect();
    let addrs: Vec<String> = c.iter().map(Client::addr).collect();
    assert_eq!(c[0].req(&lock("q")), acquired("q"));
    c[1].send(&lock("q"));
    c[1].expect_silence(SILENCE_MS);
    c[2].send(&lock("q"));
    c[2].expect_silence(SILENCE_MS);
    let queue = [addrs[0].as_str(), &addrs[1], &addrs[2]];
    // holders + waiters = 3 >= 3: refused, with the queue.
    assert_eq!(
        c[3].req(&lock_with("q", r#""queue_max":3"#)),
        with_queue("q", &queue, "queue_maxed")
    );
    assert_eq!(
        c[3].req(&lock_with("q", r#""queue_max":1,"timeout":5"#)),
        with_queue("q", &queue, "queue_maxed")
    );
    // A queued connection asking again is not refused (and gets no reply).
    c[2].send(&lock_with("q", r#""queue_max":1"#));
    c[2].expect_silence(SILENCE_MS);
    // The holder asking again is told it has it.
    assert_eq!(
        c[0].req(&lock_with("q", r#""queue_max":1"#)),
        r#"{"name":"q","result":"already_acquired"}"#
    );
    // 3 < 4: queued.
    c[3].send(&lock_with("q", r#""queue_max":4"#));
    c[3].expect_silence(SILENCE_MS);
    assert_eq!(
        c[0].req(r#"{"command":"locks"}"#),
        format!(
            r#"{{"value":{{"q":["{}","{}","{}","{}"]}},"result":"locks"}}"#,
            addrs[0], addrs[1], addrs[2], addrs[3]
        ),
    );
}

#[test]
fn unlock_withdraws_a_wait() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
    );
    assert_eq!(a.req(&lock("w")), acquired("w"));
    b.send(&lock("w"));
    b.expect_silence(SILENCE_MS);
    assert_eq!(b.req(&unlock("w")), r#"{"name":"w","result":"released"}"#);
    my_locks(&mut b, "");
    assert_eq!(a.req(&unlock("w")), r#"{"name":"w","result":"released"}"#);
    b.expect_silence(SILENCE_MS);
    assert_eq!(
        a.req(r#"{"command":"locks"}"#),
        r#"{"value":{},"result":"locks"}"#
    );
}

#[test]
fn reset_releases_and_cancels() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
    );
    assert_eq!(a.req(&lock("r1")), acquired("r1"));
    assert_eq!(a.req(&lock("r2")), acquired("r2"));
    assert_eq!(b.req(&lock("r3")), acquired("r3"));
    b.send(&lock("r1"));
    b.expect_silence(SILENCE_MS);
    a.send(&lock("r3"));
    a.expect_silence(SILENCE_MS);
    my_locks(&mut a, r#""r1","r2","r3""#);
    assert_eq!(
        a.req(r#"{"command":"reset"}"#),
        r#"{"result":"reset_succeeded"}"#
    );
    assert_eq!(b.recv(), acquired("r1"));
    my_locks(&mut a, "");
    assert_eq!(b.req(&unlock("r3")), r#"{"name":"r3","result":"released"}"#);
    a.expect_silence(SILENCE_MS);
    assert_eq!(
        a.req(r#"{"command":"reset"}"#),
        r#"{"result":"reset_succeeded"}"#,
        "reset with nothing held"
    );
}

#[test]
fn locks_and_connections() {
    let s = start();
    let (mut a, mut b, mut idle) = (
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
        Client::connect(s.addr(OFFICER)),
    );
    let (aa, ba) = (a.addr(), b.addr());
    assert_eq!(
        idle.req(r#"{"command":"locks"}"#),
        r#"{"value":{},"result":"locks"}"#
    );
    assert_eq!(
        idle.req(r#"{"command":"connections"}"#),
        r#"{"value":{},"result":"connections"}"#
    );
    assert_eq!(a.req(&lock("l2")), acquired("l2"));
    assert_eq!(a.req(&lock("l1")), acquired("l1"));
    assert_eq!(b.req(&lock("l3")), acquired("l3"));
    b.send(&lock("l2"));
    b.expect_silence(SILENCE_MS);
    assert_eq!(
        idle.req(r#"{"command":"locks"}"#),
        format!(
            r#"{{"value":{{"l1":["{aa}"],"l2":["{aa}","{ba}"],"l3":["{ba}"]}},"result":"locks"}}"#
        ),
    );
    let mut rows = [
        (aa.clone(), r#"["l2","l1"]"#),
        (ba.clone(), r#"["l3","l2"]"#),
    ];
    rows.sort();
    let value: Vec<String> = rows.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    assert_eq!(
        idle.req(r#"{"command":"connections"}"#),
        format!(
            r#"{{"value":{{{}}},"result":"connections"}}"#,
            value.join(",")
        ),
    );
    my_locks(&mut b, r#""l3","l2""#);
}

#[test]
fn keep_alive_is_silent() {
    let s = start();
    let mut a = Client::connect(s.addr(OFFICER));
    a.send(r#"{"command":"keep_alive"}"#);
    a.expect_silence(SILENCE_MS);
    my_locks(&mut a, "");
}

#[test]
fn pipelined_requests_in_one_write() {
    let s = start();
    let mut a = Client::connect(s.addr(OFFICER));
    a.send_bytes(
        format!(
            "{}\n{}\r\n{{\"command\":\"keep_alive\"}}\n{}\n{}\n{{\"command\":\"my_locks\"}}\n",
            lock("p1"),
            lock("p2"),
            lock("p1"),
            unlock("p2")
        )
        .as_bytes(),
    );
    for want in [
        acquired("p1"),
        acquired("p2"),
        r#"{"name":"p1","result":"already_acquired"}"#.to_string(),
        r#"{"name":"p2","result":"released"}"#.to_string(),
        r#"{"value":["p1"],"result":"my_locks"}"#.to_string(),
    ] {
        assert_eq!(a.recv(), want);
    }
    a.expect_silence(SILENCE_MS);
}

#[test]
fn bad_requests_close_the_connection() {
    let s = start();
    for bad in [
        "not json",
        "{\"command\":\"lock\"",
        "{\"command\":\"dance\"}",
        "{\"name\":\"x\"}",
        "[\"lock\"]",
        "{\"command\":\"lock\",\"name\":\"\"}",
        "{\"command\":\"lock\",\"name\":\"x\",\"timeout\":\"soon\"}",
        "{\"command\":\"lock\",\"name\":\"x\",\"queue_max\":0}",
        "",
    ] {
        let mut a = Client::connect(s.addr(OFFICER));
        assert_eq!(a.req(&lock("ok")), acquired("ok"), "before {bad:?}");
        a.send_bytes(format!("{bad}\n{}\n", lock("after")).as_bytes());
        a.expect_closed();
    }
    // Every one of those connections' holds was released on close.
    let mut b = Client::connect(s.addr(OFFICER));
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let r = b.req(&lock_with("ok", r#""timeout":0"#));
        if r == acquired("ok") {
            break;
        }
        assert!(Instant::now() < deadline, "still held: {r}");
        std::thread::sleep(Duration::from_millis(10));
    }
    b.expect_silence(SILENCE_MS);
}

#[test]
fn overlong_line_closes() {
    let s = start_with(|c| c.max_line = 200);
    let mut a = Client::connect(s.addr(OFFICER));
    a.send_bytes("x".repeat(5000).as_bytes());
    a.expect_closed();
}

#[test]
fn one_lock_box_with_lockd_and_native() {
    let s = start();
    let mut o = Client::connect(s.addr(OFFICER));
    let mut l = Client::connect(s.addr(LOCKD));
    let mut n = Client::connect(s.native);
    // A name with a space is one lock for officer and lockd.
    assert_eq!(o.req(&lock("my lock")), acquired("my lock"));
    assert_eq!(l.req("g my lock"), "0 Lock Get Failure: my lock");
    let r = n.req("n1 INSPECT my%20lock");
    assert!(r.starts_with("n1 OK mode=exclusive holders=1 "), "{r}");
    // lockd's exclusive lock makes officer wait; lockd's release grants it.
    assert_eq!(l.req("g job"), "1 Lock Get Success: job");
    o.send(&lock("job"));
    o.expect_silence(SILENCE_MS);
    assert_eq!(l.req("r job"), "1 Lock Release Success: job");
    assert_eq!(o.recv(), acquired("job"));
    // Native locks show in officer's views; lockd's shared namespace does not.
    let r = n.req("n2 LOCK nat");
    assert!(r.starts_with("n2 OK "), "{r}");
    assert_eq!(l.req("sg job"), "1 Shared Lock Get Success: job");
    let (oa, na) = (o.addr(), n.addr());
    assert_eq!(
        o.req(r#"{"command":"locks"}"#),
        format!(
            r#"{{"value":{{"job":["{oa}"],"my lock":["{oa}"],"nat":["{na}"]}},"result":"locks"}}"#
        ),
    );
    assert_eq!(
        o.req(&lock_with("nat", r#""timeout":0"#)),
        with_queue("nat", &[&na], "timed_out")
    );
}

#[test]
fn a_detached_hold_is_listed_as_detached() {
    let s = start();
    let mut a = Client::connect(s.addr(OFFICER));
    let mut n = Client::connect(s.native);
    let r = n.req("a1 LOCK dx hold=600000 detached=1");
    assert!(r.starts_with("a1 OK "), "{r}");
    assert_eq!(
        a.req(r#"{"command":"locks"}"#),
        r#"{"value":{"dx":["detached"]},"result":"locks"}"#
    );
    let r = a.req(&lock_with("dx", r#""timeout":0"#));
    assert_eq!(r, with_queue("dx", &["detached"], "timed_out"));
}
