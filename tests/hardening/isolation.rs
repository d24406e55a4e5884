//! Isolation: what one client can do to the others, and what a closing client is still
//! told.
//!
//! - Batch work is spread: one `UNLOCK` in front of many shared waiters grants a batch,
//!   serves the next request, and grants the rest later, in FIFO order, each once; a
//!   closed connection's many waits are forgotten without being granted.
//! - `--max-claims` refuses in every protocol with its own refusal; STATS counts
//!   refused connections, limit refusals and AUTH failures.
//! - AUTH: `--auth-timeout` closes an unauthenticated connection; a wrong secret is
//!   answered late without stalling anyone; little input is accepted before AUTH.
//! - A half-closed client gets the answers to its waits before the connection closes.
//! - A connection the server closes with unread input still delivers its last reply.
//!
//! Everything talks to an in-process server over 127.0.0.1.

use crate::common;
use common::*;
use lockbox::config::Config;
use lockbox::proto::locker::{encode_request, Frame, ACTION_LOCK};
use lockbox::proto::Protocol;
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One `UNLOCK` before 50,000 shared waiters: the `STATS` pipelined right after it is
/// served before all of them are granted (they used to be granted in one go, stalling
/// the loop), and then every waiter is granted, exactly once, in FIFO order.
#[test]
fn an_unlock_before_many_shared_waiters_grants_in_batches_in_fifo_order() {
    const N: usize = 50_000;
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock("a1", "x");
    let mut burst = String::new();
    for i in 0..N {
        burst.push_str(&format!("s{i} SHARE x\n"));
    }
    b.send_bytes(burst.as_bytes());
    b.sync();
    let queued = format!("mode=exclusive holders=1 waiters={N} ");
    assert!(a.inspect("x").starts_with(&queued), "{}", a.inspect("x"));
    a.send_bytes(b"u UNLOCK x\nst STATS\n");
    assert_eq!(a.recv(), "u OK");
    let rows = a.recv_until_end("st");
    let stat = |key: &str| -> u64 {
        rows.iter()
            .find_map(|r| r.strip_prefix(&format!("st STAT {key} ")))
            .unwrap_or_else(|| panic!("no {key} in {rows:?}"))
            .parse()
            .unwrap()
    };
    assert!(
        stat("holds") < N as u64 && stat("waiters") > 0,
        "all {N} granted before the next request: holds {} waiters {}",
        stat("holds"),
        stat("waiters")
    );
    let mut last_token = 0;
    for i in 0..N {
        let (token, holders) = ok_share(&b.recv(), &format!("s{i}"));
        assert!(token > last_token, "token order at s{i}");
        assert_eq!(holders, i as u64 + 1, "holders at s{i}");
        last_token = token;
    }
    b.sync();
    assert_eq!(a.inspect("x"), format!("mode=shared holders={N} waiters=0"));
}

/// A connection closed with 50,000 waits: they are withdrawn (a budget per loop
/// iteration), never granted, and the waiter behind them is granted exactly once.
#[test]
fn a_closed_connection_with_many_waits_is_forgotten_without_granting_them() {
    const N: usize = 50_000;
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut c = Client::connect(addr);
    a.lock("a1", "x");
    let mut burst = String::new();
    for i in 0..N {
        burst.push_str(&format!("w{i} LOCK x\n"));
    }
    b.send_bytes(burst.as_bytes());
    b.sync();
    c.send("c1 LOCK x");
    c.sync();
    let grants = a.stats()["grants_total"];
    drop(b);
    eventually("b's waits withdrawn", || a.stats()["waiters"] == 1);
    a.unlock("a2", "x");
    ok_token(&c.recv(), "c1");
    c.expect_silence(SILENCE_MS);
    assert_eq!(a.stats()["grants_total"], grants + 1, "only c was granted");
    assert_eq!(a.stats()["connections"], 2);
}

/// `--max-claims`: past it every protocol refuses in its own words, and STATS counts
/// the refusals.
#[test]
fn max_claims_is_refused_in_every_protocol_and_counted() {
    let l = start_with_listeners(
        &[Protocol::Locker, Protocol::Officer, Protocol::LiveMutex],
        |cfg| cfg.max_claims = 2,
    );
    let mut a = Client::connect(l.native);
    a.lock("a1", "n1");
    a.send("a2 LOCK n2 wait=0");
    ok_token(&a.recv(), "a2");
    a.send("a3 LOCK n3");
    assert_eq!(
        a.recv(),
        "a3 ERR limit too many holds and waits on this server"
    );
    // A wait counts as much as a hold, for the server as for a connection.
    a.send("a4 SHARE n1 wait=0");
    assert_err(&a.recv(), "a4", "limit");

    let mut o = Client::connect(l.addr(Protocol::Officer));
    o.send_json(&json!({"command": "lock", "name": "o1"}));
    let v = o.recv_json();
    assert_eq!(
        (v["name"].as_str(), v["result"].as_str()),
        (Some("o1"), Some("queue_maxed"))
    );

    let mut m = Client::connect(l.addr(Protocol::LiveMutex));
    m.send_json(&json!({"type": "lock", "uuid": "u1", "key": "m1", "ttl": null}));
    let v = m.recv_json();
    assert_eq!(v["error"], "too many holds and waits on this server", "{v}");

    let mut k = Client::connect(l.addr(Protocol::Locker));
    let mut frame = Vec::new();
    let lock = Frame {
        seq: 7,
        wait: 0,
        hold: 1000,
        action: ACTION_LOCK,
        name: b"k1",
    };
    encode_request(&mut frame, &lock);
    k.send_bytes(&frame);
    assert_eq!(k.recv_exact(6), [7, 0, 0, 0, ACTION_LOCK, 0]);

    assert_eq!(a.stats()["limit_refusals_total"], 5);
    // Room again after a release.
    a.unlock("a5", "n1");
    a.lock("a6", "n3");
}

#[test]
fn refused_connections_are_counted() {
    let addr = start_with(Config {
        max_connections: 2,
        ..Config::default()
    });
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.sync();
    b.sync();
    let mut c = Client::connect(addr);
    assert_eq!(c.recv(), "* ERR limit too many connections");
    c.expect_closed();
    assert_eq!(a.stats()["refused_connections_total"], 1);
}

/// A secret file of its own for one test.
fn secret_file(test: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "lockbox-limits2-{}-{test}.secret",
        std::process::id()
    ));
    std::fs::write(&path, b"s3cret\n").expect("write secret file");
    path
}

fn auth_server(test: &str, tweak: impl FnOnce(&mut Config)) -> std::net::SocketAddr {
    let mut cfg = Config {
        auth_file: Some(secret_file(test)),
        ..Config::default()
    };
    tweak(&mut cfg);
    start_with(cfg)
}

#[test]
fn an_unauthenticated_connection_is_closed_at_the_auth_timeout() {
    let addr = auth_server("timeout", |cfg| cfg.auth_timeout_ms = 300);
    let mut authed = Client::connect(addr);
    assert_eq!(authed.req("a1 AUTH s3cret"), "a1 OK");
    let mut idle = Client::connect(addr);
    assert_eq!(idle.req("p1 PING"), "p1 PONG");
    let t0 = Instant::now();
    let line = idle.recv();
    assert_eq!(line, "* ERR auth_required AUTH timed out; closing");
    assert!(t0.elapsed() < Duration::from_secs(3), "closed late");
    idle.expect_closed();
    // The authenticated connection outlives the deadline.
    std::thread::sleep(Duration::from_millis(400));
    authed.sync();
}

/// A wrong secret is answered after the fixed delay, and the server serves others
/// meanwhile; STATS counts the failure.
#[test]
fn a_wrong_auth_is_answered_late_without_stalling_anyone() {
    let addr = auth_server("delay", |_| {});
    let mut good = Client::connect(addr);
    assert_eq!(good.req("a1 AUTH s3cret"), "a1 OK");
    let mut guesser = Client::connect(addr);
    let t0 = Instant::now();
    guesser.send("g1 AUTH guess");
    good.sync();
    assert!(
        guesser.recv_within(Duration::ZERO).is_none(),
        "the wrong AUTH was answered before another client's PING"
    );
    assert_err(&guesser.recv(), "g1", "auth_failed");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(95),
        "answered after {waited:?}"
    );
    guesser.expect_closed();
    assert_eq!(good.stats()["auth_failures_total"], 1);
}

/// Before AUTH only a little input is read: a client that floods `PING` is closed.
#[test]
fn too_much_input_before_auth_closes_the_connection() {
    let addr = auth_server("flood", |_| {});
    let mut c = Client::connect(addr);
    let mut flood = String::new();
    for i in 0..2000 {
        flood.push_str(&format!("p{i} PING\n"));
    }
    assert!(flood.len() > 16 * 1024);
    let _ = c.try_send_bytes(flood.as_bytes());
    let mut pongs = 0;
    loop {
        let line = c.recv();
        if line.starts_with('p') {
            assert!(line.ends_with(" PONG"), "{line}");
            pongs += 1;
            continue;
        }
        assert_eq!(
            line,
            "* ERR auth_required too much input before AUTH; closing"
        );
        break;
    }
    assert!(pongs < 2000, "every PING was answered");
    c.expect_closed();
}

/// A half-closed client gets the answer to its timed wait (here a TIMEOUT), then EOF.
#[test]
fn a_half_closed_client_gets_its_timeout_then_eof() {
    let addr = start();
    let mut h = Client::connect(addr);
    h.lock("h1", "x");
    let mut b = Client::connect(addr);
    b.send_bytes(b"b1 LOCK x wait=300\nb2 PING\n");
    b.try_clone_stream()
        .shutdown(Shutdown::Write)
        .expect("shutdown");
    assert_eq!(b.recv(), "b2 PONG");
    assert_eq!(b.recv(), "b1 TIMEOUT");
    b.expect_closed();
}

/// A half-closed client granted after its half-close gets the OK, then the connection
/// closes: its holds (also the new one) are released, its wait without a deadline is
/// cancelled.
#[test]
fn a_half_closed_client_gets_its_grant_and_its_holds_go_with_the_connection() {
    let addr = start();
    let mut h = Client::connect(addr);
    h.lock("h1", "x");
    h.lock("h2", "y");
    let mut b = Client::connect(addr);
    b.lock("b0", "z");
    b.send_bytes(b"b1 LOCK x wait=10000\nb2 LOCK y\n");
    b.sync();
    b.try_clone_stream()
        .shutdown(Shutdown::Write)
        .expect("shutdown");
    b.expect_silence(SILENCE_MS);
    assert!(h.inspect("z").starts_with("mode=exclusive holders=1 "));
    h.unlock("h3", "x");
    ok_token(&b.recv(), "b1");
    b.expect_closed();
    eventually("b's claims gone", || {
        h.inspect("x") == "mode=free holders=0 waiters=0"
            && h.inspect("z") == "mode=free holders=0 waiters=0"
            && h.inspect("y").contains(" waiters=0 ")
    });
}

/// `QUIT` after a 4 MB reply, and more input the server never reads: the whole reply
/// arrives, then EOF (a close with unread input used to reset the connection and drop
/// what the kernel had not sent yet).
#[test]
fn the_last_reply_survives_a_close_with_unread_input() {
    const N: usize = 100_000;
    let addr = start_with(Config {
        max_pending: N as u32,
        output_high_water: 64 << 20,
        output_limit: 128 << 20,
        ..Config::default()
    });
    let mut c = Client::connect(addr);
    let mut burst = String::new();
    for i in 0..N {
        burst.push_str(&format!("l{i} LOCK lock-with-a-longish-name-{i:08}\n"));
    }
    c.send_bytes(burst.as_bytes());
    for i in 0..N {
        ok_token(&c.recv(), &format!("l{i}"));
    }
    c.send_bytes(b"ls LIST\nq QUIT\n");
    // The server has processed QUIT and is writing; this input is never read by it.
    std::thread::sleep(Duration::from_millis(300));
    let mut raw: TcpStream = c.try_clone_stream();
    raw.write_all(&vec![b'j'; 64 * 1024])
        .expect("send unread input");
    raw.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        match raw.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
    }
    let text = String::from_utf8(got).unwrap();
    let items = text.lines().filter(|l| l.starts_with("ls ITEM ")).count();
    assert_eq!(items, N);
    assert!(
        text.ends_with(&format!("ls END {N}\nq OK\n")),
        "reply tail: {:?}",
        &text[text.len().saturating_sub(80)..]
    );
}
