//! Native protocol: AUTH (`auth_required`, `auth_failed`) and server limits (`limit`).

use crate::common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use lockbox::config::Config;

const SECRET: &str = "s3cret:Value-42";

/// A secret file in the temp directory, removed on drop.
struct SecretFile(PathBuf);

impl SecretFile {
    fn new(contents: &str) -> SecretFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "lockbox-test-secret-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, contents).expect("write the secret file");
        SecretFile(path)
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An in-process server requiring [`SECRET`].
fn start_with_secret() -> (std::net::SocketAddr, SecretFile) {
    let file = SecretFile::new(&format!("{SECRET}\n"));
    let cfg = Config {
        auth_file: Some(file.0.clone()),
        ..Config::default()
    };
    (start_with(cfg), file)
}

#[test]
fn auth_without_a_configured_secret_is_ok() {
    // Spec silent; the server accepts AUTH as a no-op when it has no secret.
    let mut c = Client::connect(start());
    assert_eq!(c.req("a1 AUTH whatever"), "a1 OK");
    ok_token(&c.req("a2 LOCK x"), "a2");
}

#[test]
fn every_verb_but_ping_and_quit_requires_auth() {
    let (addr, _f) = start_with_secret();
    let mut c = Client::connect(addr);
    assert_eq!(c.req("p PING"), "p PONG");
    for (i, req) in [
        "LOCK x",
        "SHARE x",
        "UNLOCK x",
        "EXTEND x 1 hold=5",
        "CANCEL w",
        "RESET",
        "INSPECT x",
        "LIST",
        "NAME me",
        "WHOAMI",
        "CLIENTS",
        "STATS",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("r{i}");
        assert_err(&c.req(&format!("{id} {req}")), &id, "auth_required");
    }
    // Nothing was taken meanwhile.
    assert_eq!(c.req(&format!("au AUTH {SECRET}")), "au OK");
    assert_eq!(c.inspect("x"), "mode=free holders=0 waiters=0");
    ok_token(&c.req("a1 LOCK x"), "a1");
    assert!(!c.req_rows("s STATS").is_empty());
}

#[test]
fn wrong_secret_fails_and_closes() {
    let (addr, _f) = start_with_secret();
    for (i, wrong) in [
        "nope",
        &SECRET[..SECRET.len() - 1],
        &format!("{SECRET}x"),
        &SECRET.to_uppercase(),
    ]
    .iter()
    .enumerate()
    {
        let mut c = Client::connect(addr);
        let id = format!("a{i}");
        assert_err(&c.req(&format!("{id} AUTH {wrong}")), &id, "auth_failed");
        c.expect_closed();
    }
    // The right secret still works for a new connection.
    let mut c = Client::connect(addr);
    assert_eq!(c.req(&format!("ok AUTH {SECRET}")), "ok OK");
}

#[test]
fn auth_is_per_connection_and_quit_works_without_it() {
    let (addr, _f) = start_with_secret();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    assert_eq!(a.req(&format!("a AUTH {SECRET}")), "a OK");
    a.lock("a1", "x");
    assert_err(&b.req("b1 LOCK x"), "b1", "auth_required");
    assert_eq!(b.req("q QUIT"), "q OK");
    b.expect_closed();
    // A still holds x.
    assert!(a.inspect("x").starts_with("mode=exclusive holders=1"));
}

#[test]
fn max_pending_holds_and_waits_per_connection_is_limit() {
    let cfg = Config {
        max_pending: 2,
        ..Config::default()
    };
    let addr = start_with(cfg);
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock("a1", "x");
    b.lock("b1", "y");
    // One hold plus one wait fill A's allowance.
    a.send("a2 LOCK y");
    a.sync();
    assert_err(&a.req("a3 LOCK z"), "a3", "limit");
    // The text is the one the limits table of docs/protocol.md gives.
    assert_eq!(
        a.req("a4 SHARE z"),
        "a4 ERR limit too many holds and waits on this connection"
    );
    // Another connection is not affected.
    b.lock("b2", "z");
    // Room again after a release.
    a.unlock("a5", "x");
    a.lock("a6", "w");
    assert_err(&a.req("a7 LOCK v"), "a7", "limit");
}

#[test]
fn max_connections_refuses_with_limit() {
    let cfg = Config {
        max_connections: 2,
        ..Config::default()
    };
    let addr = start_with(cfg);
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.sync();
    b.sync();
    let mut c = Client::connect(addr);
    // Refused: the reply can have no request id yet.
    assert_err(&c.recv(), "*", "limit");
    c.expect_closed();
    drop(a);
    // A slot frees up once the server has reaped A.
    eventually("a new connection is accepted", || {
        let mut d = Client::connect(addr);
        d.send("p PING");
        d.recv_within(REPLY_TIMEOUT).as_deref() == Some("p PONG")
    });
}
