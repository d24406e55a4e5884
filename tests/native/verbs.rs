//! Native protocol: framing, ids, every verb's reply form and every error code
//! (`docs/protocol.md`, "Framing", "Replies", "Verbs", "Errors").

use crate::common;

use common::*;
use lockbox::config::Config;

// ---------------------------------------------------------------------------
// Framing and ids
// ---------------------------------------------------------------------------

#[test]
fn ping_pong() {
    let mut c = Client::connect(start());
    assert_eq!(c.req("a1 PING"), "a1 PONG");
    assert_eq!(c.req("a1 PING"), "a1 PONG", "ids need not be unique");
}

#[test]
fn ids_of_1_to_32_bytes_of_the_allowed_charset_are_echoed() {
    let mut c = Client::connect(start());
    let all = "ABCXYZabcxyz0189_.:-";
    let id32 = "a".repeat(32);
    for id in ["7", "Z", "_", ".", ":", "-", all, id32.as_str()] {
        assert_eq!(
            c.req(&format!("{id} PING")),
            format!("{id} PONG"),
            "id {id:?}"
        );
    }
    let t = c.lock("req:1.a_b-C", "x");
    assert!(t > 0);
}

#[test]
fn unreadable_id_is_answered_with_star() {
    let mut c = Client::connect(start());
    let id33 = "a".repeat(33);
    for line in [
        format!("{id33} PING"),
        "a/b PING".to_string(),
        "a,b PING".to_string(),
        "(a) PING".to_string(),
        "é PING".to_string(),
        "a=1 PING".to_string(),
    ] {
        let r = c.req(&line);
        assert_err(&r, "*", "bad_request");
    }
    // The connection is still fine afterwards.
    assert_eq!(c.req("ok PING"), "ok PONG");
}

#[test]
fn id_without_verb_is_bad_request() {
    let mut c = Client::connect(start());
    let r = c.req("a1");
    assert_err(&r, "a1", "bad_request");
    let r = c.req("  a2  \t ");
    assert_err(&r, "a2", "bad_request");
}

#[test]
fn verbs_are_case_insensitive() {
    let mut c = Client::connect(start());
    assert_eq!(c.req("a1 ping"), "a1 PONG");
    assert_eq!(c.req("a2 PiNg"), "a2 PONG");
    let t = ok_token(&c.req("a3 lock x"), "a3");
    assert_eq!(
        c.req("a4 inspect x"),
        format!(
            "a4 OK mode=exclusive holders=1 waiters=0 token={t} owner={}",
            c.local_addr()
        )
    );
    assert_eq!(c.req("a5 Unlock x"), "a5 OK");
    let (_, h) = ok_share(&c.req("a6 sHaRe y"), "a6");
    assert_eq!(h, 1);
    assert_eq!(c.req("a7 unlock y"), "a7 OK");
    assert!(c.req_rows("a8 list").is_empty());
    assert!(!c.req_rows("a9 Stats").is_empty());
}

#[test]
fn tabs_multiple_spaces_and_surrounding_blanks() {
    let mut c = Client::connect(start());
    assert_eq!(c.req("  \t a1 \t\t PING \t "), "a1 PONG");
    let t = ok_token(&c.req("a2\tLOCK\t\tx  \t wait=0\t"), "a2");
    assert!(t > 0);
    assert_eq!(c.req("a3   UNLOCK    x   "), "a3 OK");
    let t = ok_token(&c.req("\ta4 LOCK x hold=100000\t\t wait=5 "), "a4");
    assert_eq!(c.req(&format!("a5 UNLOCK\tx\t{t}")), "a5 OK");
}

#[test]
fn crlf_is_accepted_and_replies_end_with_lf_alone() {
    let mut c = Client::connect(start());
    c.send_bytes(b"a1 PING\r\n");
    // recv strips only `\n`: a `\r` in the reply would make this differ.
    assert_eq!(c.recv(), "a1 PONG");
    c.send_bytes(b"a2 LOCK x\r\na3 PING\na4 UNLOCK x\r\n");
    ok_token(&c.recv(), "a2");
    assert_eq!(c.recv(), "a3 PONG");
    assert_eq!(c.recv(), "a4 OK");
}

#[test]
fn blank_lines_get_no_reply() {
    let mut c = Client::connect(start());
    c.send_bytes(b"\n\r\n   \n\t \t\n \r\n");
    c.expect_silence(SILENCE_MS);
    c.send_bytes(b"\n\na1 PING\n\n");
    assert_eq!(c.recv(), "a1 PONG");
    c.expect_silence(100);
}

#[test]
fn a_line_split_across_writes_is_one_request() {
    let mut c = Client::connect(start());
    c.send_bytes(b"a1 PI");
    c.expect_silence(100);
    c.send_bytes(b"NG\na2 PING");
    assert_eq!(c.recv(), "a1 PONG");
    c.expect_silence(100);
    c.send_bytes(b"\n");
    assert_eq!(c.recv(), "a2 PONG");
}

#[test]
fn pipelined_requests_in_one_write() {
    let mut c = Client::connect(start());
    c.send_bytes(b"a1 PING\na2 LOCK p\na3 INSPECT p\na4 UNLOCK p\na5 INSPECT p\n");
    assert_eq!(c.recv(), "a1 PONG");
    let t = ok_token(&c.recv(), "a2");
    let me = c.local_addr();
    assert_eq!(
        c.recv(),
        format!("a3 OK mode=exclusive holders=1 waiters=0 token={t} owner={me}")
    );
    assert_eq!(c.recv(), "a4 OK");
    assert_eq!(c.recv(), "a5 OK mode=free holders=0 waiters=0");
}

// ---------------------------------------------------------------------------
// unknown_command, bad_request
// ---------------------------------------------------------------------------

#[test]
fn unknown_verbs() {
    let mut c = Client::connect(start());
    assert_err(&c.req("a1 FROBNICATE x"), "a1", "unknown_command");
    assert_err(&c.req("a2 LOCKX x"), "a2", "unknown_command");
    assert_err(&c.req("a3 OK"), "a3", "unknown_command");
    assert_eq!(c.req("a4 PING"), "a4 PONG");
}

#[test]
fn missing_required_arguments() {
    let mut c = Client::connect(start());
    // Spec silent on the exact code for a missing positional argument: an unparseable
    // line (bad_request) or a missing name (bad_name) are both reasonable.
    for (line, id) in [
        ("m1 LOCK", "m1"),
        ("m2 SHARE", "m2"),
        ("m3 UNLOCK", "m3"),
        ("m4 INSPECT", "m4"),
        ("m5 NAME", "m5"),
    ] {
        let code = err_code(&c.req(line), id);
        assert!(
            code == "bad_request" || code == "bad_name",
            "{line:?}: got {code}"
        );
    }
    let code = err_code(&c.req("m6 EXTEND x"), "m6");
    assert!(code == "bad_request" || code == "bad_option", "got {code}");
    let code = err_code(&c.req("m7 EXTEND x 5"), "m7");
    assert!(code == "bad_request" || code == "bad_option", "got {code}");
    let code = err_code(&c.req("m8 CANCEL"), "m8");
    assert!(code == "bad_request", "got {code}");
    assert_eq!(c.req("m9 PING"), "m9 PONG");
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

#[test]
fn utf8_and_arbitrary_non_control_bytes_are_valid_names() {
    let mut c = Client::connect(start());
    let name = "ключ/🔒:ü";
    let t = c.lock("u1", name);
    assert_eq!(
        c.inspect(name),
        format!(
            "mode=exclusive holders=1 waiters=0 token={t} owner={}",
            c.local_addr()
        )
    );
    c.send("u2 LIST");
    let rows = c.recv_until_end("u2");
    assert_eq!(
        rows,
        vec![format!("u2 ITEM {name} mode=exclusive holders=1 waiters=0")]
    );
    c.unlock("u3", name);

    // Not UTF-8 at all, but no control byte, space or DEL: a valid name.
    c.send_bytes(b"u4 LOCK \x80\xff\xfe!\n");
    ok_token(&c.recv(), "u4");
    c.send_bytes(b"u5 UNLOCK \x80\xff\xfe!\n");
    assert_eq!(c.recv(), "u5 OK");
}

#[test]
fn name_length_255_ok_256_bad_name() {
    let mut c = Client::connect(start());
    let n255 = "n".repeat(255);
    let t = c.lock("l1", &n255);
    assert!(c.inspect(&n255).contains(&format!("token={t}")));
    c.unlock("l2", &n255);

    let n256 = "n".repeat(256);
    assert_err(&c.req(&format!("l3 LOCK {n256}")), "l3", "bad_name");
    assert_err(&c.req(&format!("l4 SHARE {n256}")), "l4", "bad_name");
    assert_err(&c.req(&format!("l5 UNLOCK {n256}")), "l5", "bad_name");
    assert_err(&c.req(&format!("l6 INSPECT {n256}")), "l6", "bad_name");
    assert_err(
        &c.req(&format!("l7 EXTEND {n256} 1 hold=5")),
        "l7",
        "bad_name",
    );
    // Length is in bytes, not characters: 254 + 2-byte char = 256 bytes.
    let multi = format!("{}é", "n".repeat(254));
    assert_err(&c.req(&format!("l8 LOCK {multi}")), "l8", "bad_name");
    let multi_ok = format!("{}é", "n".repeat(253));
    c.lock("l9", &multi_ok);
    // Nothing was taken by the rejected requests.
    c.send("l10 LIST");
    let rows = c.recv_until_end("l10");
    assert_eq!(rows.len(), 1, "{rows:?}");
}

#[test]
fn control_characters_and_del_are_bad_names() {
    let mut c = Client::connect(start());
    let bad: [&[u8]; 6] = [
        b"b1 LOCK ab\x01c\n",
        b"b1 LOCK \x00\n",
        b"b1 LOCK esc\x1b[0m\n",
        b"b1 LOCK del\x7f\n",
        b"b1 LOCK a\rb\n",
        b"b1 SHARE x\x1f\n",
    ];
    for line in bad {
        c.send_bytes(line);
        let r = c.recv();
        assert_err(&r, "b1", "bad_name");
    }
    c.send_bytes(b"b2 INSPECT a\x02\n");
    assert_err(&c.recv(), "b2", "bad_name");
    c.send_bytes(b"b3 UNLOCK a\x7f\n");
    assert_err(&c.recv(), "b3", "bad_name");
    c.send("b4 LIST");
    assert!(c.recv_until_end("b4").is_empty());
}

// ---------------------------------------------------------------------------
// Options: bad_option
// ---------------------------------------------------------------------------

#[test]
fn option_bounds_0_and_4294967295_are_accepted() {
    let mut c = Client::connect(start());
    let t = c.lock("o1", "a wait=4294967295 hold=4294967295");
    c.unlock("o2", &format!("a {t}"));
    c.lock("o3", "a wait=0 hold=4294967295 queue=4294967295");
    let (_, h) = c.share("o4", "b max=4294967295 wait=4294967295 hold=4294967295");
    assert_eq!(h, 1);
    // hold=4294967295 must not be taken for an immediate expiry.
    c.expect_silence(100);
    // Options in any order.
    c.lock("o5", "c queue=7 hold=100000 wait=10");
    c.share("o6", "d hold=100000 queue=3 max=5 wait=10");
}

#[test]
fn bad_options() {
    let mut c = Client::connect(start());
    let cases = [
        "LOCK x foo=1",
        "LOCK x wait=1 wait=1",
        "LOCK x hold=5 wait=5 hold=5",
        "LOCK x wait=4294967296",
        "LOCK x hold=4294967296",
        "LOCK x wait=18446744073709551616",
        "LOCK x wait=99999999999999999999999999",
        "LOCK x wait=",
        "LOCK x wait",
        "LOCK x =5",
        "LOCK x wait=-1",
        "LOCK x wait=+1",
        "LOCK x wait=1x",
        "LOCK x wait=0x10",
        "LOCK x wait=1.5",
        "LOCK x queue=abc",
        "SHARE x max=0",
        "SHARE x max=abc",
        "SHARE x max=",
        "SHARE x max=2 max=2",
        "SHARE x wait=4294967296",
        "SHARE x hold=-5",
        "SHARE x bogus=1",
        "EXTEND x 1 hold=4294967296",
        "EXTEND x 1 hold=abc",
        "EXTEND x 1 hold=1 hold=1",
        "EXTEND x 1 hold=5 wait=5",
    ];
    for (i, req) in cases.iter().enumerate() {
        let id = format!("o{i}");
        let r = c.req(&format!("{id} {req}"));
        assert!(
            err_code(&r, &id) == "bad_option",
            "{req:?}: expected ERR bad_option, got {r:?}"
        );
    }
    // None of them took or queued anything.
    assert_eq!(c.inspect("x"), "mode=free holders=0 waiters=0");
}

#[test]
fn malformed_token_is_bad_option() {
    // "bad_option (unknown, repeated or malformed option or number)".
    let mut c = Client::connect(start());
    c.lock("t0", "x");
    for (i, tok) in ["abc", "-1", "1x", "18446744073709551616"]
        .iter()
        .enumerate()
    {
        let id = format!("t{}", i + 1);
        let r = c.req(&format!("{id} UNLOCK x {tok}"));
        assert_err(&r, &id, "bad_option");
    }
    let r = c.req("t9 EXTEND x abc hold=5");
    assert_err(&r, "t9", "bad_option");
    // Still held.
    assert!(c.inspect("x").starts_with("mode=exclusive holders=1"));
}

// ---------------------------------------------------------------------------
// not_held, token_required, not_waiting, queue_full
// ---------------------------------------------------------------------------

#[test]
fn not_held_cases() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    assert_err(&a.req("n1 UNLOCK never"), "n1", "not_held");
    assert_err(&a.req("n2 UNLOCK never 12345"), "n2", "not_held");
    assert_err(&a.req("n3 EXTEND never 12345 hold=10"), "n3", "not_held");

    let t = a.lock("n4", "x");
    // Another connection's token, with and without giving it.
    assert_err(&b.req(&format!("n5 UNLOCK x {t}")), "n5", "not_held");
    assert_err(&b.req("n6 UNLOCK x"), "n6", "not_held");
    assert_err(
        &b.req(&format!("n7 EXTEND x {t} hold=10")),
        "n7",
        "not_held",
    );
    // The right token on the wrong name.
    a.lock("n8", "y");
    assert_err(
        &a.req(&format!("n9 EXTEND y {t} hold=10")),
        "n9",
        "not_held",
    );
    // Wrong token on the right name.
    assert_err(
        &a.req(&format!("n10 UNLOCK x {}", t + 1_000_000)),
        "n10",
        "not_held",
    );
    // Still A's after all of that.
    assert!(a
        .inspect("x")
        .contains(&format!("token={t} owner={}", a.local_addr())));
    // Already released.
    a.unlock("n11", &format!("x {t}"));
    assert_err(&a.req(&format!("n12 UNLOCK x {t}")), "n12", "not_held");
    assert_err(&a.req("n13 UNLOCK x"), "n13", "not_held");
    assert_err(
        &a.req(&format!("n14 EXTEND x {t} hold=10")),
        "n14",
        "not_held",
    );
}

#[test]
fn token_required_with_two_holds_on_one_name() {
    let mut c = Client::connect(start());
    let (t1, h1) = c.share("s1", "s");
    let (t2, h2) = c.share("s2", "s");
    assert_eq!((h1, h2), (1, 2));
    assert!(t2 > t1);
    assert_err(&c.req("s3 UNLOCK s"), "s3", "token_required");
    assert_eq!(c.inspect("s"), "mode=shared holders=2 waiters=0");
    c.unlock("s4", &format!("s {t1}"));
    assert_err(&c.req(&format!("s5 UNLOCK s {t1}")), "s5", "not_held");
    // Exactly one left: no token needed.
    c.unlock("s6", "s");
    assert_eq!(c.inspect("s"), "mode=free holders=0 waiters=0");
}

#[test]
fn not_waiting_cases() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    assert_err(&a.req("c1 CANCEL nothing"), "c1", "not_waiting");
    // A granted request is not waiting.
    a.lock("g1", "x");
    assert_err(&a.req("c2 CANCEL g1"), "c2", "not_waiting");
    // Another connection's wait cannot be cancelled from here.
    b.send("w1 LOCK x");
    b.sync();
    assert_err(&a.req("c3 CANCEL w1"), "c3", "not_waiting");
    assert_eq!(a.inspect("x").split(' ').nth(2), Some("waiters=1"));
    // A wait that timed out is not waiting either.
    assert_eq!(b.req("w2 LOCK x wait=0"), "w2 TIMEOUT");
    assert_err(&b.req("c4 CANCEL w2"), "c4", "not_waiting");
}

#[test]
fn queue_full() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut c = Client::connect(addr);
    a.lock("a1", "q");
    // Nobody waits: queue=1 is fine to join.
    b.send("b1 LOCK q queue=1");
    b.sync();
    // One waits now: queue=1 fails at once, for LOCK and SHARE alike.
    assert_err(&c.req("c1 LOCK q queue=1"), "c1", "queue_full");
    assert_err(&c.req("c2 SHARE q queue=1 wait=100000"), "c2", "queue_full");
    c.send("c3 LOCK q queue=2");
    c.sync();
    assert_err(&a.req("a2 SHARE q queue=2"), "a2", "queue_full");
    assert_eq!(a.inspect("q").split(' ').nth(2), Some("waiters=2"));
}

// ---------------------------------------------------------------------------
// line_too_long
// ---------------------------------------------------------------------------

/// The reply id of a too-long line: the spec does not say whether the server still
/// reads the id of a line it refuses; accept the id or `*`.
fn assert_line_too_long(line: &str, id: &str) {
    let rid = line.split(' ').next().unwrap_or("");
    assert!(rid == id || rid == "*", "unexpected id in {line:?}");
    assert_err(line, rid, "line_too_long");
}

#[test]
fn line_of_exactly_max_line_bytes_is_accepted() {
    let mut c = Client::connect(start());
    // Trailing blanks are ignored, so pad a PING up to exactly 4096 bytes.
    let mut line = String::from("a1 PING");
    line.push_str(&" ".repeat(4096 - line.len()));
    assert_eq!(line.len(), 4096);
    assert_eq!(c.req(&line), "a1 PONG");
}

#[test]
fn line_too_long_closes_the_connection_and_releases_its_locks() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut other = Client::connect(addr);
    let ta = a.lock("a1", "big");
    a.lock("a2", "big2");
    b.send("b1 LOCK big");
    b.sync();
    let to = other.lock("o1", "unrelated");

    let mut line = String::from("a3 PING");
    line.push_str(&" ".repeat(4097 - line.len()));
    assert_eq!(line.len(), 4097);
    let _ = a.try_send_bytes(format!("{line}\n").as_bytes());
    let r = a.recv();
    assert_line_too_long(&r, "a3");
    a.expect_closed();

    // A's locks are released: B (waiting) is granted, big2 is free for anyone.
    let tb = ok_token(&b.recv(), "b1");
    assert!(tb > ta);
    assert_eq!(other.inspect("big2"), "mode=free holders=0 waiters=0");
    other.lock("o2", "big2");
    // Another connection is not affected.
    assert!(other
        .inspect("unrelated")
        .contains(&format!("token={to} owner={}", other.local_addr())));
    assert_eq!(other.req("o3 PING"), "o3 PONG");
}

#[test]
fn line_too_long_without_any_newline() {
    // The server must not buffer an endless line waiting for its `\n`.
    let mut c = Client::connect(start());
    let junk = vec![b'x'; 5000];
    let _ = c.try_send_bytes(&junk);
    // The id (5000 bytes of `x`) cannot be read: `*`.
    assert_err(&c.recv(), "*", "line_too_long");
    c.expect_closed();
}

#[test]
fn max_line_from_config() {
    let cfg = Config {
        max_line: 100,
        ..Config::default()
    };
    let mut c = Client::connect(start_with(cfg));
    let mut line = String::from("a1 PING");
    line.push_str(&" ".repeat(100 - line.len()));
    assert_eq!(c.req(&line), "a1 PONG");
    line.push(' ');
    assert_eq!(line.len(), 101);
    let _ = c.try_send_bytes(format!("{line}\n").as_bytes());
    assert_line_too_long(&c.recv(), "a1");
    c.expect_closed();
}

// ---------------------------------------------------------------------------
// QUIT
// ---------------------------------------------------------------------------

#[test]
fn quit_replies_ok_closes_and_releases() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.lock("a1", "x");
    b.send("b1 LOCK x");
    b.sync();
    assert_eq!(a.req("q quit"), "q OK");
    a.expect_closed();
    ok_token(&b.recv(), "b1");
}

#[test]
fn nothing_after_quit_is_answered() {
    let mut c = Client::connect(start());
    c.send_bytes(b"q QUIT\nz PING\n");
    assert_eq!(c.recv(), "q OK");
    c.expect_closed();
}

// ---------------------------------------------------------------------------
// NAME / WHOAMI / CLIENTS
// ---------------------------------------------------------------------------

#[test]
fn name_and_whoami() {
    let mut c = Client::connect(start());
    let me = c.local_addr();
    assert_eq!(c.req("w1 WHOAMI"), format!("w1 OK {me} {me}"));
    assert_eq!(c.req("w2 NAME worker-7"), "w2 OK");
    assert_eq!(c.req("w3 WHOAMI"), format!("w3 OK {me} worker-7"));
    assert_eq!(c.req("w4 NAME büro:ü"), "w4 OK");
    assert_eq!(c.req("w5 whoami"), format!("w5 OK {me} büro:ü"));
    let n64 = "n".repeat(64);
    assert_eq!(c.req(&format!("w6 NAME {n64}")), "w6 OK");
    assert_eq!(c.req("w7 WHOAMI"), format!("w7 OK {me} {n64}"));
    // 65 bytes and control characters: bad_name, and the name is unchanged.
    assert_err(
        &c.req(&format!("w8 NAME {}", "n".repeat(65))),
        "w8",
        "bad_name",
    );
    c.send_bytes(b"w9 NAME a\x01b\n");
    assert_err(&c.recv(), "w9", "bad_name");
    c.send_bytes(b"w10 NAME a\x7f\n");
    assert_err(&c.recv(), "w10", "bad_name");
    assert_eq!(c.req("w11 WHOAMI"), format!("w11 OK {me} {n64}"));
}

#[test]
fn clients_lists_every_connection() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut c = Client::connect(addr);
    assert_eq!(a.req("a1 NAME alice"), "a1 OK");
    b.lock("b1", "l1");
    b.share("b2", "l2");
    a.lock("a2", "l3");
    b.send("b3 LOCK l3");
    b.sync();
    c.sync();
    c.send("c1 CLIENTS");
    let mut rows = c.recv_until_end("c1");
    rows.sort();
    let mut want = vec![
        format!("c1 CLIENT {} name=alice holds=1 waits=0", a.local_addr()),
        format!(
            "c1 CLIENT {} name={} holds=2 waits=1",
            b.local_addr(),
            b.local_addr()
        ),
        format!(
            "c1 CLIENT {} name={} holds=0 waits=0",
            c.local_addr(),
            c.local_addr()
        ),
    ];
    want.sort();
    assert_eq!(rows, want);

    // A closed connection disappears from the list.
    drop(a);
    ok_token(&b.recv(), "b3");
    c.send("c2 CLIENTS");
    let rows = c.recv_until_end("c2");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.contains(&format!(
        "c2 CLIENT {} name={} holds=3 waits=0",
        b.local_addr(),
        b.local_addr()
    )));
}

// ---------------------------------------------------------------------------
// INSPECT
// ---------------------------------------------------------------------------

#[test]
fn inspect_every_mode() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    assert_eq!(
        a.req("i1 INSPECT free"),
        "i1 OK mode=free holders=0 waiters=0"
    );

    let t = a.lock("a1", "ex");
    assert_eq!(
        a.req("i2 INSPECT ex"),
        format!(
            "i2 OK mode=exclusive holders=1 waiters=0 token={t} owner={}",
            a.local_addr()
        )
    );
    b.send("b1 LOCK ex");
    b.send("b2 SHARE ex");
    b.sync();
    assert_eq!(
        b.req("i3 INSPECT ex"),
        format!(
            "i3 OK mode=exclusive holders=1 waiters=2 token={t} owner={}",
            a.local_addr()
        )
    );

    a.share("a2", "sh");
    b.share("b3", "sh");
    assert_eq!(
        a.req("i4 INSPECT sh"),
        "i4 OK mode=shared holders=2 waiters=0"
    );
    a.send("a3 LOCK sh");
    a.sync();
    assert_eq!(
        b.req("i5 INSPECT sh"),
        "i5 OK mode=shared holders=2 waiters=1"
    );
}

#[test]
fn inspect_owner_is_the_client_name_once_set() {
    // Spec: `owner=<client>`; a client is known by its name (= ip:port when unset).
    let mut a = Client::connect(start());
    assert_eq!(a.req("n NAME alice"), "n OK");
    let t = a.lock("a1", "x");
    assert_eq!(
        a.inspect("x"),
        format!("mode=exclusive holders=1 waiters=0 token={t} owner=alice")
    );
}

// ---------------------------------------------------------------------------
// LIST
// ---------------------------------------------------------------------------

#[test]
fn list_rows_sorted_with_prefix_and_count() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    a.send("l0 LIST");
    assert!(a.recv_until_end("l0").is_empty());

    for name in ["b", "a", "ab", "B"] {
        a.lock("x", name);
    }
    a.share("s1", "c");
    b.share("s2", "c");
    b.send("w1 LOCK a");
    b.sync();
    // Taken and released again: no holders, no waiters, not listed.
    a.lock("z1", "zz");
    a.unlock("z2", "zz");

    a.send("l1 LIST");
    assert_eq!(
        a.recv_until_end("l1"),
        vec![
            "l1 ITEM B mode=exclusive holders=1 waiters=0",
            "l1 ITEM a mode=exclusive holders=1 waiters=1",
            "l1 ITEM ab mode=exclusive holders=1 waiters=0",
            "l1 ITEM b mode=exclusive holders=1 waiters=0",
            "l1 ITEM c mode=shared holders=2 waiters=0",
        ]
    );
    a.send("l2 LIST a");
    assert_eq!(
        a.recv_until_end("l2"),
        vec![
            "l2 ITEM a mode=exclusive holders=1 waiters=1",
            "l2 ITEM ab mode=exclusive holders=1 waiters=0",
        ]
    );
    a.send("l3 list ab");
    assert_eq!(
        a.recv_until_end("l3"),
        vec!["l3 ITEM ab mode=exclusive holders=1 waiters=0"]
    );
    a.send("l4 LIST zz");
    assert!(a.recv_until_end("l4").is_empty());
    a.send("l5 LIST abc");
    assert!(a.recv_until_end("l5").is_empty());
}

// ---------------------------------------------------------------------------
// STATS
// ---------------------------------------------------------------------------

const STAT_KEYS: [&str; 14] = [
    "uptime_ms",
    "connections",
    "connections_total",
    "locks",
    "holds",
    "waiters",
    "grants_total",
    "timeouts_total",
    "expired_total",
    "released_on_disconnect_total",
    "errors_total",
    "bytes_in",
    "bytes_out",
    "cmd_ping",
];

const VERBS: [&str; 15] = [
    "lock", "share", "unlock", "extend", "cancel", "reset", "inspect", "list", "name", "whoami",
    "clients", "stats", "ping", "quit", "auth",
];

#[test]
fn stats_has_every_key() {
    let mut c = Client::connect(start());
    let s = c.stats();
    for k in STAT_KEYS {
        assert!(s.contains_key(k), "STATS lacks {k}: {s:?}");
    }
    for v in VERBS {
        let k = format!("cmd_{v}");
        assert!(s.contains_key(&k), "STATS lacks {k}: {s:?}");
    }
    assert_eq!(s["connections"], 1);
    assert!(s["connections_total"] >= 1);
    for k in [
        "locks",
        "holds",
        "waiters",
        "grants_total",
        "timeouts_total",
    ] {
        assert_eq!(s[k], 0, "{k} on a fresh server");
    }
}

#[test]
fn stats_values_follow_the_traffic() {
    let addr = start();
    let mut a = Client::connect(addr);
    let s0 = a.stats();

    // Gauges and grants.
    a.lock("a1", "x");
    let mut b = Client::connect(addr);
    b.send("b1 LOCK x");
    b.sync();
    let s1 = a.stats();
    assert_eq!(s1["grants_total"], s0["grants_total"] + 1);
    assert_eq!(s1["locks"], 1);
    assert_eq!(s1["holds"], 1);
    assert_eq!(s1["waiters"], 1);
    assert_eq!(s1["connections"], 2);
    assert_eq!(s1["connections_total"], s0["connections_total"] + 1);
    assert!(s1["bytes_in"] > s0["bytes_in"]);
    assert!(s1["bytes_out"] > s0["bytes_out"]);
    assert!(s1["cmd_lock"] >= s0["cmd_lock"] + 2);
    assert!(s1["uptime_ms"] >= s0["uptime_ms"]);

    // Waiter grant also counts.
    a.unlock("a2", "x");
    ok_token(&b.recv(), "b1");
    let s2 = a.stats();
    assert_eq!(s2["grants_total"], s1["grants_total"] + 1);
    assert_eq!(s2["waiters"], 0);
    assert_eq!(s2["holds"], 1);
    assert_eq!(s2["cmd_unlock"], s1["cmd_unlock"] + 1);

    // Timeout, error, expiry, ping.
    assert_eq!(a.req("a3 LOCK x wait=30"), "a3 TIMEOUT");
    assert_err(&a.req("a4 NOPE"), "a4", "unknown_command");
    let t = a.lock("a5", "y hold=20");
    assert_eq!(expired_token(&a.recv(), "a5"), t);
    assert_eq!(a.req("a6 PING"), "a6 PONG");
    let s3 = a.stats();
    assert_eq!(s3["timeouts_total"], s2["timeouts_total"] + 1);
    assert_eq!(s3["errors_total"], s2["errors_total"] + 1);
    assert_eq!(s3["expired_total"], s2["expired_total"] + 1);
    assert_eq!(s3["cmd_ping"], s2["cmd_ping"] + 1);
    assert_eq!(s3["cmd_lock"], s2["cmd_lock"] + 2);
    assert_eq!(s3["cmd_stats"], s2["cmd_stats"] + 1);
    assert_eq!(s3["grants_total"], s2["grants_total"] + 1);

    // Disconnect with a hold.
    drop(b);
    eventually("connections back to 1", || a.stats()["connections"] == 1);
    let s4 = a.stats();
    assert_eq!(
        s4["released_on_disconnect_total"],
        s3["released_on_disconnect_total"] + 1
    );
    assert_eq!(s4["holds"], 0);
    assert_eq!(s4["locks"], 0, "a lock entry disappears when unused");
    assert_eq!(s4["connections_total"], s3["connections_total"]);
}

#[test]
fn stats_bytes_in_and_out_count_every_byte() {
    let mut c = Client::connect(start());
    let (s1, size1) = c.stats_sized();
    assert_eq!(c.req("a PING"), "a PONG");
    let (s2, _) = c.stats_sized();
    // Between the two snapshots: the first STATS line and the PING line came in, the
    // first STATS reply and the PONG went out.
    assert_eq!(
        s2["bytes_in"] - s1["bytes_in"],
        ("st STATS\n".len() + "a PING\n".len()) as u64
    );
    assert_eq!(
        s2["bytes_out"] - s1["bytes_out"],
        (size1 + "a PONG\n".len()) as u64
    );
}

/// A `LOCK` line that arrives in two reads is taken by the fast path once complete; the
/// line framing must then search the next line from its own start (it remembered how
/// far it had searched the first one, which is gone), or the `PING` behind it would
/// wait for more input.
#[test]
fn a_line_after_a_split_fast_path_line_is_answered() {
    let addr = start();
    let mut c = Client::connect(addr);
    c.send_bytes(b"1 LOCK split-line-name");
    // Let the server read and buffer the partial line on its own.
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send_bytes(b"\n2 PING\n");
    let first = c.recv();
    ok_token(&first, "1");
    assert_eq!(
        c.recv_within(std::time::Duration::from_secs(5)).as_deref(),
        Some("2 PONG")
    );
}
