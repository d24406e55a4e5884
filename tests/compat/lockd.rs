//! lockd / glockd compatibility: byte-exact replies to every command of the table in
//! `docs/compat.md` ("lockd / glockd"), over a real socket to an in-process server.
//!
//! Multi-line replies (`d`, `sd`, `who`, `q`) have no terminator in lockd, so
//! `Lockd::rows` sends a sentinel `i` request after the command and collects the lines
//! before its reply.

use crate::common;

use common::{start_with_listeners, Client, Listeners, REPLY_TIMEOUT, SILENCE_MS};
use lockbox::config::Config;
use lockbox::proto::Protocol::Lockd as LOCKD;
use std::time::{Duration, Instant};

/// A name no test locks: its `i` reply ends a multi-line read.
const SENTINEL: &str = "~sentinel~";

/// An in-process server with a lockd listener; `tweak` adjusts the config first.
fn start_with(tweak: impl FnOnce(&mut Config)) -> Listeners {
    start_with_listeners(&[LOCKD], tweak)
}

fn start() -> Listeners {
    start_with(|_| {})
}

/// lockd's multi-line replies on a line client.
trait Lockd {
    /// Sends `line` and returns every reply line it caused (possibly none).
    fn rows(&mut self, line: &str) -> Vec<String>;
    /// `q` as key -> value, checking the `key: value` form and the key order.
    fn q(&mut self) -> Vec<(String, u64)>;
    /// One value of `q`.
    fn q_stat(&mut self, key: &str) -> u64;
}

impl Lockd for Client {
    fn rows(&mut self, line: &str) -> Vec<String> {
        self.send(&format!("{line}\ni {SENTINEL}"));
        let end = format!("0 Lock Not Locked: {SENTINEL}");
        let mut rows = Vec::new();
        for _ in 0..10_000 {
            let l = self.recv();
            if l == end {
                return rows;
            }
            rows.push(l);
        }
        panic!("no sentinel reply after 10000 lines");
    }

    fn q(&mut self) -> Vec<(String, u64)> {
        let rows = self.rows("q");
        let pairs: Vec<(String, u64)> = rows
            .iter()
            .map(|r| {
                let (k, v) = r.split_once(": ").unwrap_or_else(|| panic!("{r:?}"));
                (k.to_string(), v.parse().unwrap_or_else(|_| panic!("{r:?}")))
            })
            .collect();
        let mut sorted = pairs.clone();
        sorted.sort();
        assert_eq!(pairs, sorted, "q is sorted by key");
        pairs
    }

    fn q_stat(&mut self, key: &str) -> u64 {
        self.q()
            .into_iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("q has no {key}"))
            .1
    }
}

#[test]
fn get_release_inspect() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(LOCKD)),
        Client::connect(s.addr(LOCKD)),
    );
    assert_eq!(a.req("i x"), "0 Lock Not Locked: x");
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    assert_eq!(b.req("g x"), "0 Lock Get Failure: x");
    assert_eq!(a.req("i x"), "1 Lock Is Locked: x");
    assert_eq!(b.req("i x"), "1 Lock Is Locked: x");
    assert_eq!(b.req("r x"), "0 Lock Release Failure: x", "only the holder");
    assert_eq!(a.req("r x"), "1 Lock Release Success: x");
    assert_eq!(b.req("i x"), "0 Lock Not Locked: x");
    assert_eq!(a.req("r x"), "0 Lock Release Failure: x");
    assert_eq!(b.req("g x"), "1 Lock Get Success: x");
}

#[test]
fn reget_keeps_one_claim() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(LOCKD)),
        Client::connect(s.addr(LOCKD)),
    );
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    // One release frees it: the re-gets did not stack.
    assert_eq!(a.req("r x"), "1 Lock Release Success: x");
    assert_eq!(a.req("r x"), "0 Lock Release Failure: x");
    assert_eq!(b.req("g x"), "1 Lock Get Success: x");

    assert_eq!(a.req("sg s"), "1 Shared Lock Get Success: s");
    assert_eq!(
        a.req("sg s"),
        "1 Shared Lock Get Success: s",
        "count stays 1"
    );
    assert_eq!(b.req("sg s"), "2 Shared Lock Get Success: s");
    assert_eq!(b.req("sg s"), "2 Shared Lock Get Success: s");
    assert_eq!(a.req("si s"), "2 Shared Lock Is Locked: s");
    assert_eq!(a.req("sr s"), "1 Shared Lock Release Success: s");
    assert_eq!(a.req("sr s"), "0 Shared Lock Release Failure: s");
    assert_eq!(a.req("si s"), "1 Shared Lock Is Locked: s");
}

#[test]
fn shared_counts() {
    let s = start();
    let mut c: Vec<Client> = (0..3).map(|_| Client::connect(s.addr(LOCKD))).collect();
    assert_eq!(c[0].req("si s"), "0 Shared Lock Not Locked: s");
    for (i, conn) in c.iter_mut().enumerate() {
        assert_eq!(
            conn.req("sg s"),
            format!("{} Shared Lock Get Success: s", i + 1)
        );
    }
    assert_eq!(c[0].req("si s"), "3 Shared Lock Is Locked: s");
    assert_eq!(c[1].req("sr s"), "1 Shared Lock Release Success: s");
    assert_eq!(c[0].req("si s"), "2 Shared Lock Is Locked: s");
    assert_eq!(c[1].req("sr s"), "0 Shared Lock Release Failure: s");
    assert_eq!(c[0].req("sr s"), "1 Shared Lock Release Success: s");
    assert_eq!(c[2].req("sr s"), "1 Shared Lock Release Success: s");
    assert_eq!(c[0].req("si s"), "0 Shared Lock Not Locked: s");
}

#[test]
fn exclusive_and_shared_namespaces_are_separate() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(LOCKD)),
        Client::connect(s.addr(LOCKD)),
    );
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    assert_eq!(b.req("sg x"), "1 Shared Lock Get Success: x");
    assert_eq!(a.req("sg x"), "2 Shared Lock Get Success: x");
    assert_eq!(b.req("si x"), "2 Shared Lock Is Locked: x");
    assert_eq!(b.req("i x"), "1 Lock Is Locked: x");
    assert_eq!(b.req("r x"), "0 Lock Release Failure: x");
    assert_eq!(a.req("r x"), "1 Lock Release Success: x");
    assert_eq!(b.req("si x"), "2 Shared Lock Is Locked: x");
    assert_eq!(b.req("i x"), "0 Lock Not Locked: x");
    // The exclusive lock holder's shared release does not touch the exclusive lock.
    assert_eq!(b.req("g x"), "1 Lock Get Success: x");
    assert_eq!(b.req("sr x"), "1 Shared Lock Release Success: x");
    assert_eq!(a.req("i x"), "1 Lock Is Locked: x");
    assert_eq!(a.req("si x"), "1 Shared Lock Is Locked: x");
}

#[test]
fn names_are_the_rest_of_the_line() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(LOCKD)),
        Client::connect(s.addr(LOCKD)),
    );
    assert_eq!(a.req("g a b  c"), "1 Lock Get Success: a b  c");
    assert_eq!(b.req("g a b  c"), "0 Lock Get Failure: a b  c");
    assert_eq!(
        b.req("g a b"),
        "1 Lock Get Success: a b",
        "a different name"
    );
    assert_eq!(a.req("g"), "1 Lock Get Success: ", "the empty name");
    assert_eq!(b.req("g "), "0 Lock Get Failure: ");
    assert_eq!(b.req("i"), "1 Lock Is Locked: ");
    assert_eq!(a.req("sg"), "1 Shared Lock Get Success: ");
    assert_eq!(a.req("g 50%"), "1 Lock Get Success: 50%");
    // `\r\n` ends a line as well.
    a.send_bytes(b"g crlf\r\n");
    assert_eq!(a.recv(), "1 Lock Get Success: crlf");
    assert_eq!(b.req("i crlf"), "1 Lock Is Locked: crlf");
    // Names the engine cannot hold (over 255 bytes escaped) fail cleanly.
    let long = "n".repeat(300);
    assert_eq!(
        a.req(&format!("g {long}")),
        format!("0 Lock Get Failure: {long}")
    );
    assert_eq!(
        a.req(&format!("i {long}")),
        format!("0 Lock Not Locked: {long}")
    );
    assert_eq!(
        a.req(&format!("sg {long}")),
        format!("0 Shared Lock Get Failure: {long}")
    );
    let (aa, ba) = (a.addr(), b.addr());
    assert_eq!(
        a.rows("d"),
        [
            format!("a b  c: {aa}"),
            format!("a b: {ba}"),
            format!(": {aa}"),
            format!("50%: {aa}"),
            format!("crlf: {aa}"),
        ]
    );
}

#[test]
fn pipelined_requests_in_one_write() {
    let s = start();
    let mut a = Client::connect(s.addr(LOCKD));
    a.send_bytes(b"g p1\ng p2\ni p1\nbogus\n\nsg p3\nsi p3\nr p1\nr p1\ni p1\n");
    let want = [
        "1 Lock Get Success: p1",
        "1 Lock Get Success: p2",
        "1 Lock Is Locked: p1",
        "1 Shared Lock Get Success: p3",
        "1 Shared Lock Is Locked: p3",
        "1 Lock Release Success: p1",
        "0 Lock Release Failure: p1",
        "0 Lock Not Locked: p1",
    ];
    for w in want {
        assert_eq!(a.recv(), w);
    }
    a.expect_silence(SILENCE_MS);
    // A request split across writes is answered once complete.
    a.send_bytes(b"g sp");
    a.expect_silence(SILENCE_MS);
    a.send_bytes(b"lit\n");
    assert_eq!(a.recv(), "1 Lock Get Success: split");
}

#[test]
fn unknown_commands_are_silent_and_counted() {
    let s = start();
    let mut a = Client::connect(s.addr(LOCKD));
    for line in ["stats", "G x", "get x", " g x", "gx", "dumpshared"] {
        a.send(line);
        a.expect_silence(SILENCE_MS);
    }
    a.send_bytes(b"\n\r\n");
    a.expect_silence(SILENCE_MS);
    assert_eq!(
        a.q_stat("invalid_commands"),
        6,
        "blank lines are not counted"
    );
    assert_eq!(a.req("i x"), "0 Lock Not Locked: x", "` g x` took nothing");
}

#[test]
fn stats_exact() {
    let s = start();
    let mut a = Client::connect(s.addr(LOCKD));
    let mut b = Client::connect(s.addr(LOCKD));
    assert_eq!(a.req("g a"), "1 Lock Get Success: a");
    assert_eq!(a.req("g b"), "1 Lock Get Success: b");
    assert_eq!(b.req("g a"), "0 Lock Get Failure: a");
    assert_eq!(a.req("sg s"), "1 Shared Lock Get Success: s");
    assert_eq!(b.req("sg s"), "2 Shared Lock Get Success: s");
    a.send_bytes(b"nope\n");
    let want = "command_d: 0
command_dump: 0
command_g: 3
command_i: 0
command_q: 1
command_r: 0
command_sd: 0
command_sg: 2
command_si: 0
command_sr: 0
connections: 2
invalid_commands: 1
locks: 2
orphans: 0
shared_locks: 1
shared_orphans: 0";
    assert_eq!(a.rows("q").join("\n"), want);
    // me / iam / who appear once used, in key order.
    assert!(a.req("me").starts_with("1 "));
    assert_eq!(a.req("iam x"), "1 ok");
    let keys: Vec<String> = a.q().into_iter().map(|(k, _)| k).collect();
    let want_keys = [
        "command_d",
        "command_dump",
        "command_g",
        "command_i",
        "command_iam",
        "command_me",
        "command_q",
        "command_r",
        "command_sd",
        "command_sg",
        "command_si",
        "command_sr",
        "connections",
        "invalid_commands",
        "locks",
        "orphans",
        "shared_locks",
        "shared_orphans",
    ];
    assert_eq!(keys, want_keys);
    let st = a.q();
    let get = |k: &str| st.iter().find(|(key, _)| key == k).unwrap().1;
    assert_eq!(
        (get("command_q"), get("command_i"), get("command_me")),
        (3, 2, 1),
        "q counts itself; each rows() sends one sentinel i"
    );
}

#[test]
fn disconnect_orphans_and_frees() {
    let s = start();
    let mut a = Client::connect(s.addr(LOCKD));
    {
        let mut b = Client::connect(s.addr(LOCKD));
        assert_eq!(b.req("g o1"), "1 Lock Get Success: o1");
        assert_eq!(b.req("g o2"), "1 Lock Get Success: o2");
        assert_eq!(b.req("g o2"), "1 Lock Get Success: o2");
        assert_eq!(b.req("sg s1"), "1 Shared Lock Get Success: s1");
        assert_eq!(a.req("sg s1"), "2 Shared Lock Get Success: s1");
        assert_eq!(a.q_stat("connections"), 2);
    }
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let st = a.q();
        let get = |k: &str| st.iter().find(|(key, _)| key == k).unwrap().1;
        if get("connections") == 1 {
            assert_eq!((get("orphans"), get("shared_orphans")), (2, 1));
            assert_eq!((get("locks"), get("shared_locks")), (0, 1));
            break;
        }
        assert!(Instant::now() < deadline, "disconnect not processed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(a.req("g o1"), "1 Lock Get Success: o1");
    assert_eq!(a.req("si s1"), "1 Shared Lock Is Locked: s1");
    // A holder that releases before closing orphans nothing.
    {
        let mut c = Client::connect(s.addr(LOCKD));
        assert_eq!(c.req("g o3"), "1 Lock Get Success: o3");
        assert_eq!(c.req("r o3"), "1 Lock Release Success: o3");
    }
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while a.q_stat("connections") != 1 {
        assert!(Instant::now() < deadline, "disconnect not processed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(a.q_stat("orphans"), 2);
}

#[test]
fn d_and_sd_in_grant_order() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(LOCKD)),
        Client::connect(s.addr(LOCKD)),
    );
    let (aa, ba) = (a.addr(), b.addr());
    assert!(a.rows("d").is_empty(), "nothing when no locks");
    assert!(a.rows("sd").is_empty());
    assert!(a.rows("d z").is_empty());
    assert_eq!(a.req("g z"), "1 Lock Get Success: z");
    assert_eq!(b.req("g a"), "1 Lock Get Success: a");
    assert_eq!(a.req("g m"), "1 Lock Get Success: m");
    assert_eq!(
        b.rows("d"),
        [format!("z: {aa}"), format!("a: {ba}"), format!("m: {aa}")]
    );
    assert_eq!(b.rows("d a"), [format!("a: {ba}")]);
    assert!(b.rows("d nope").is_empty());
    assert_eq!(b.req("sg t"), "1 Shared Lock Get Success: t");
    assert_eq!(a.req("sg s"), "1 Shared Lock Get Success: s");
    assert_eq!(b.req("sg s"), "2 Shared Lock Get Success: s");
    assert_eq!(
        a.rows("sd"),
        [format!("t: {ba}"), format!("s: {aa}"), format!("s: {ba}")]
    );
    assert_eq!(a.rows("sd s"), [format!("s: {aa}"), format!("s: {ba}")]);
    // Shared locks never show in d, nor exclusive ones in sd.
    assert!(a.rows("d s").is_empty());
    assert!(a.rows("sd z").is_empty());
    // Registered names replace the address.
    assert_eq!(a.req("iam alice"), "1 ok");
    assert_eq!(b.rows("d z"), ["z: alice"]);
    assert_eq!(b.rows("sd s"), ["s: alice".to_string(), format!("s: {ba}")]);
    // A grant that reuses a freed slot (z's) still comes last: grant order, not slot
    // order.
    assert_eq!(a.req("r z"), "1 Lock Release Success: z");
    assert_eq!(b.req("g y"), "1 Lock Get Success: y");
    assert_eq!(
        a.rows("d"),
        [format!("a: {ba}"), "m: alice".into(), format!("y: {ba}")]
    );
}

#[test]
fn dump_json() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(LOCKD)),
        Client::connect(s.addr(LOCKD)),
    );
    let (aa, ba) = (a.addr(), b.addr());
    assert_eq!(a.req("dump"), "{}");
    assert_eq!(a.req("dump shared"), "{}");
    assert_eq!(a.req("g z"), "1 Lock Get Success: z");
    assert_eq!(b.req("g a"), "1 Lock Get Success: a");
    assert_eq!(a.req("g q\"uote"), "1 Lock Get Success: q\"uote");
    assert_eq!(b.req("sg t"), "1 Shared Lock Get Success: t");
    assert_eq!(a.req("sg s"), "1 Shared Lock Get Success: s");
    assert_eq!(b.req("sg s"), "2 Shared Lock Get Success: s");
    // dump shows addresses even for named clients, as glockd's raw map did.
    assert_eq!(a.req("iam alice"), "1 ok");
    assert_eq!(
        b.req("dump"),
        format!(r#"{{"a":"{ba}","q\"uote":"{aa}","z":"{aa}"}}"#)
    );
    assert_eq!(
        b.req("dump shared"),
        format!(r#"{{"s":["{aa}","{ba}"],"t":["{ba}"]}}"#)
    );
    assert_eq!(b.req("dump other"), b.req("dump"), "only `shared` selects");
}

#[test]
fn registry_me_iam_who() {
    let s = start();
    let (mut a, mut b) = (
        Client::connect(s.addr(LOCKD)),
        Client::connect(s.addr(LOCKD)),
    );
    let (aa, ba) = (a.addr(), b.addr());
    assert!(aa.starts_with("127.0.0.1:"), "dotted quad: {aa}");
    assert_eq!(a.req("me"), format!("1 {aa} {aa}"));
    assert!(a.rows("who").is_empty());
    assert_eq!(a.req("iam the boss"), "1 ok");
    assert_eq!(a.req("me"), format!("1 {aa} the boss"));
    assert_eq!(b.req("iam carol"), "1 ok");
    let mut both = vec![format!("{aa}: the boss"), format!("{ba}: carol")];
    both.sort();
    assert_eq!(a.rows("who"), both);
    assert_eq!(a.rows("who carol"), [format!("{ba}: carol")]);
    assert_eq!(a.rows("who the boss"), [format!("{aa}: the boss")]);
    assert!(a.rows("who nobody").is_empty());
    assert_eq!(a.req("iam"), "1 ok", "bare iam resets");
    assert_eq!(a.req("me"), format!("1 {aa} {aa}"));
    assert_eq!(b.rows("who"), [format!("{ba}: carol")]);
    assert_eq!(b.req("iam "), "1 ok");
    assert!(b.rows("who").is_empty());
}

#[test]
fn dump_disabled_by_flag() {
    let s = start_with(|c| c.lockd_dump = false);
    let mut a = Client::connect(s.addr(LOCKD));
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    for cmd in ["d", "d x", "sd", "sd x", "dump", "dump shared", "who"] {
        assert_eq!(a.req(cmd), "0 disabled", "{cmd}");
    }
    assert_eq!(a.req("iam me"), "1 ok");
    assert_eq!(a.req("me"), format!("1 {} me", a.addr()));
    assert_eq!(a.q_stat("command_dump"), 2, "disabled commands still count");
}

#[test]
fn registry_disabled_by_flag() {
    let s = start_with(|c| c.lockd_registry = false);
    let mut a = Client::connect(s.addr(LOCKD));
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    for cmd in ["me", "iam bob", "iam", "who", "who bob"] {
        assert_eq!(a.req(cmd), "0 disabled", "{cmd}");
    }
    assert_eq!(a.rows("d"), [format!("x: {}", a.addr())], "no name was set");
    assert_eq!(a.req("dump"), format!(r#"{{"x":"{}"}}"#, a.addr()));
}

#[test]
fn overlong_line_closes() {
    let s = start_with(|c| c.max_line = 100);
    let mut a = Client::connect(s.addr(LOCKD));
    let name = "n".repeat(98);
    assert_eq!(
        a.req(&format!("g {name}")),
        format!("1 Lock Get Success: {name}")
    );
    a.send(&format!("g {name}x"));
    a.expect_closed();
    let mut b = Client::connect(s.addr(LOCKD));
    b.send_bytes("y".repeat(10_000).as_bytes());
    b.expect_closed();
    // The first connection's lock went with it.
    let mut c = Client::connect(s.addr(LOCKD));
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while c.req(&format!("i {name}")) != format!("0 Lock Not Locked: {name}") {
        assert!(Instant::now() < deadline, "lock not released on close");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One native request, one reply line.
fn native(c: &mut Client, line: &str) -> String {
    c.req(line)
}

#[test]
fn one_lock_box_with_native_clients() {
    let s = start();
    let mut l = Client::connect(s.addr(LOCKD));
    let mut n = Client::connect(s.native);
    let na = n.addr();
    let r = native(&mut n, "a1 LOCK x");
    assert!(r.starts_with("a1 OK "), "{r}");
    assert_eq!(l.req("g x"), "0 Lock Get Failure: x");
    assert_eq!(l.req("i x"), "1 Lock Is Locked: x");
    assert_eq!(l.rows("d x"), [format!("x: {na}")]);
    assert_eq!(l.req("sg x"), "1 Shared Lock Get Success: x");
    assert_eq!(l.req("g job 1"), "1 Lock Get Success: job 1");
    assert_eq!(l.req("g"), "1 Lock Get Success: ");
    // Native clients see lockd's names escaped, and shared ones under the prefix.
    assert_eq!(
        native(&mut n, "a2 INSPECT %shared:x"),
        "a2 OK mode=shared holders=1 waiters=0"
    );
    let r = native(&mut n, "a3 INSPECT job%201");
    assert!(r.starts_with("a3 OK mode=exclusive holders=1 "), "{r}");
    let r = native(&mut n, "a4 LOCK % wait=0");
    assert_eq!(r, "a4 TIMEOUT", "the empty lockd name is `%`");
    assert_eq!(native(&mut n, "a5 UNLOCK x"), "a5 OK");
    assert_eq!(l.req("g x"), "1 Lock Get Success: x");
    let r = native(&mut n, "a6 LOCK x wait=0");
    assert_eq!(r, "a6 TIMEOUT");
    // The native NAME shows in lockd's registry views.
    assert_eq!(native(&mut n, "a7 NAME nat"), "a7 OK");
    assert_eq!(l.rows("who"), [format!("{na}: nat")]);
}

#[test]
fn a_detached_hold_is_shown_as_detached() {
    let s = start();
    let mut l = Client::connect(s.addr(LOCKD));
    let mut n = Client::connect(s.native);
    let r = native(&mut n, "a1 LOCK dx hold=600000 detached=1");
    assert!(r.starts_with("a1 OK "), "{r}");
    // It belongs to no connection: the holder is the word `detached`, as in the
    // native `INSPECT`, never an empty label.
    assert_eq!(l.req("g dx"), "0 Lock Get Failure: dx");
    assert_eq!(l.rows("d dx"), ["dx: detached"]);
    assert_eq!(l.rows("d"), ["dx: detached"]);
    assert_eq!(l.req("dump"), r#"{"dx":"detached"}"#);
    drop(n);
    assert_eq!(
        l.rows("d dx"),
        ["dx: detached"],
        "the hold outlives its connection"
    );
}

/// Splits a native reply line into words, asserting the reply grammar: words of
/// printable non-space bytes separated by single spaces.
fn native_words(line: &str) -> Vec<&str> {
    assert!(
        line.bytes()
            .all(|b| (0x21..0x7f).contains(&b) || b == b' ' || b >= 0x80),
        "control byte in native reply {line:?}"
    );
    let w: Vec<&str> = line.split(' ').collect();
    assert!(w.iter().all(|w| !w.is_empty()), "empty word in {line:?}");
    w
}

#[test]
fn iam_names_never_break_native_replies() {
    let s = start();
    let mut l = Client::connect(s.addr(LOCKD));
    let mut other = Client::connect(s.addr(LOCKD));
    let mut n = Client::connect(s.native);
    let la = l.addr();
    assert_eq!(l.req("g held"), "1 Lock Get Success: held");
    let long = "y".repeat(300);
    // (lockd name, what native shows for it)
    let cases = [
        ("the boss".to_string(), "the%20boss".to_string()),
        ("cr\rin".to_string(), "cr%0Din".to_string()),
        ("\x1b[31mred".to_string(), "%1B[31mred".to_string()),
        ("50% off".to_string(), "50%25%20off".to_string()),
        ("fits".to_string(), "fits".to_string()),
        // 64 bytes escaped is the native limit: 21 spaces + 1 byte = 64.
        (
            format!("{}z", " ".repeat(21)),
            format!("{}z", "%20".repeat(21)),
        ),
        // Over the limit once escaped: native shows the address.
        (format!("{}z", " ".repeat(22)), la.clone()),
        (long.clone(), la.clone()),
    ];
    for (name, shown) in &cases {
        assert_eq!(l.req(&format!("iam {name}")), "1 ok");
        // lockd itself shows the name exactly as given.
        assert_eq!(l.req("me"), format!("1 {la} {name}"));
        assert_eq!(l.rows("d held"), [format!("held: {name}")]);
        assert_eq!(l.rows("who"), [format!("{la}: {name}")]);
        // Native sees a valid client name (escaped) or the address.
        let rows = native_rows(&mut n, "c1 CLIENTS");
        let row = rows
            .iter()
            .find(|r| r.contains(&format!(" {la} ")))
            .unwrap_or_else(|| panic!("no CLIENTS row for {la}: {rows:?}"));
        let w = native_words(row);
        assert_eq!(w.len(), 6, "{row:?}");
        assert_eq!(w[3], format!("name={shown}"), "{row:?}");
        let r = n.req("i1 INSPECT held");
        let w = native_words(&r);
        assert_eq!(w.last().unwrap(), &format!("owner={shown}"), "{r:?}");
        let r = n.req("w1 WHOAMI");
        assert_eq!(native_words(&r).len(), 4, "{r:?}");
        // Other lockd connections see the name when the engine could keep it.
        let seen = if *shown == la {
            la.clone()
        } else {
            name.clone()
        };
        assert_eq!(other.rows("d held"), [format!("held: {seen}")]);
    }
    assert_eq!(l.req("iam"), "1 ok");
    let r = n.req("i2 INSPECT held");
    assert!(r.ends_with(&format!(" owner={la}")), "{r:?}");
}

/// A native multi-line reply: rows up to `<id> END <n>`.
fn native_rows(c: &mut Client, line: &str) -> Vec<String> {
    let id = line.split(' ').next().unwrap().to_string();
    c.send(line);
    let mut rows = Vec::new();
    loop {
        let l = c.recv();
        if l.starts_with(&format!("{id} END ")) {
            return rows;
        }
        rows.push(l);
    }
}

#[test]
fn d_with_an_empty_name_shows_the_empty_named_lock() {
    let s = start();
    let mut a = Client::connect(s.addr(LOCKD));
    let aa = a.addr();
    assert_eq!(a.req("g "), "1 Lock Get Success: ");
    assert_eq!(a.req("g x"), "1 Lock Get Success: x");
    assert_eq!(a.req("sg "), "1 Shared Lock Get Success: ");
    assert_eq!(a.req("sg y"), "1 Shared Lock Get Success: y");
    // `d NAME` with an empty NAME: that lock only.
    assert_eq!(a.rows("d "), [format!(": {aa}")]);
    assert_eq!(a.rows("sd "), [format!(": {aa}")]);
    // Bare `d`: every holder.
    assert_eq!(a.rows("d"), [format!(": {aa}"), format!("x: {aa}")]);
    assert_eq!(a.rows("sd"), [format!(": {aa}"), format!("y: {aa}")]);
    assert_eq!(a.req("r "), "1 Lock Release Success: ");
    assert!(a.rows("d ").is_empty());
    assert_eq!(a.rows("d"), [format!("x: {aa}")]);
}
