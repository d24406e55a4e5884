//! Byte-level tests of the Redis dialect: requests whole, pipelined and split at every
//! byte, the lock cycle of each client, TTLs, foreign names, bad input, and the glob.

use super::*;
use crate::engine::{Engine, EventKind};
use crate::fence::Fence;
use crate::proto::redis_scripts::{COMPARE_AND_DELETE, REDIS_PY_EXTEND};
use crate::proto::Totals;

/// One engine with Redis-dialect connections (clients 0 and 1) and a native one (2).
struct World {
    engine: Engine,
    stats: Totals,
    sessions: Vec<Session>,
    now: u64,
    /// The AUTH secret, when the server has one.
    secret: Option<&'static [u8]>,
}

const NATIVE: ClientId = 2;
use crate::engine::ClientId;

fn addr() -> std::net::SocketAddr {
    "127.0.0.1:5000".parse().unwrap()
}

impl World {
    fn new() -> World {
        World::with_secret(None)
    }

    /// A world whose server has the AUTH secret `secret`.
    fn with_secret(secret: Option<&'static [u8]>) -> World {
        let mut engine = Engine::new(Fence::starting_at(1), 0, 1000);
        let cfg = Config {
            auth_file: secret.map(|_| "secret-file".into()),
            ..Config::default()
        };
        for c in 0..2 {
            engine.connect_in(c, addr(), Protocol::Redis as u8);
        }
        engine.connect_in(NATIVE, addr(), Protocol::Native as u8);
        World {
            engine,
            stats: Totals::default(),
            sessions: vec![Session::new(&cfg), Session::new(&cfg)],
            now: 0,
            secret,
        }
    }

    /// Feeds `input` to client `c` as the server does, in chunks of `step` bytes
    /// (0: all at once); returns the output and whether the connection was closed.
    fn feed(&mut self, c: ClientId, input: &[u8], step: usize) -> (Vec<u8>, bool) {
        let step = if step == 0 { input.len().max(1) } else { step };
        self.feed_chunks(c, input.chunks(step))
    }

    /// Feeds the chunks to client `c` one after the other, as reads of the socket.
    fn feed_chunks<'a>(
        &mut self,
        c: ClientId,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                let mut cx = Ctx {
                    engine: &mut self.engine,
                    client: c,
                    out: &mut out,
                    now: self.now,
                    stats: &mut self.stats,
                    secret: self.secret,
                };
                match self.sessions[c as usize].decode(&buf, &mut cx) {
                    Progress::Consumed(n) => {
                        assert!(n > 0 && n <= buf.len());
                        buf.drain(..n);
                    }
                    Progress::Incomplete => break,
                    Progress::Close(n) | Progress::CloseDelayed(n) => {
                        assert!(n <= buf.len());
                        return (out, true);
                    }
                }
            }
        }
        (out, false)
    }

    fn req(&mut self, c: ClientId, args: &[&[u8]]) -> String {
        let (out, _) = self.feed(c, &cmd(args), 0);
        String::from_utf8(out).unwrap()
    }
}

/// A RESP array of bulk strings.
fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn cad(key: &[u8], token: &[u8]) -> Vec<u8> {
    cmd(&[b"EVAL", COMPARE_AND_DELETE.as_bytes(), b"1", key, token])
}

#[test]
fn the_lock_cycle_pipelined_whole_and_split_at_every_byte() {
    let mut input = Vec::new();
    input.extend(cmd(&[b"SET", b"job", b"t1", b"NX", b"PX", b"5000"]));
    input.extend(cmd(&[b"SET", b"job", b"t2", b"NX", b"PX", b"5000"]));
    input.extend(b"GET job\r\n");
    input.extend(cmd(&[b"PTTL", b"job"]));
    input.extend(cad(b"job", b"t2"));
    input.extend(cad(b"job", b"t1"));
    input.extend(cmd(&[b"EXISTS", b"job", b"job"]));
    input.extend(b"PING\r\n");
    let want = "+OK\r\n$-1\r\n$2\r\nt1\r\n:5000\r\n:0\r\n:1\r\n:0\r\n+PONG\r\n";
    for step in 0..=input.len() {
        let mut w = World::new();
        let (out, closed) = w.feed(0, &input, step);
        assert_eq!(String::from_utf8(out).unwrap(), want, "step {step}");
        assert!(!closed);
        assert_eq!(w.engine.gauges().1, 0, "step {step}: no lock left");
    }
}

#[test]
fn the_cycle_keeps_its_buffers() {
    let mut w = World::new();
    let set = cmd(&[b"SET", b"k", b"tok", b"NX", b"PX", b"100"]);
    let del = cad(b"k", b"tok");
    for _ in 0..3 {
        w.feed(0, &set, 0);
        w.feed(0, &del, 0);
    }
    let caps = (
        w.sessions[0].args.capacity(),
        w.sessions[0].st.enc.capacity(),
    );
    for _ in 0..100 {
        assert_eq!(w.feed(0, &set, 0).0, b"+OK\r\n");
        assert_eq!(w.feed(0, &del, 0).0, b":1\r\n");
    }
    let after = (
        w.sessions[0].args.capacity(),
        w.sessions[0].st.enc.capacity(),
    );
    assert_eq!(caps, after, "session buffers grew in the steady cycle");
}

#[test]
fn keys_outlive_their_connection_and_expire_as_redis_says() {
    let mut w = World::new();
    assert_eq!(
        w.req(0, &[b"SET", b"a", b"v", b"NX", b"PX", b"1000"]),
        "+OK\r\n"
    );
    assert_eq!(w.req(0, &[b"SET", b"b", b"v"]), "+OK\r\n");
    w.engine.disconnect(0, 0);
    assert_eq!(w.req(1, &[b"PTTL", b"a"]), ":1000\r\n");
    assert_eq!(w.req(1, &[b"TTL", b"a"]), ":1\r\n");
    assert_eq!(w.req(1, &[b"PTTL", b"b"]), ":-1\r\n");
    assert_eq!(w.req(1, &[b"PTTL", b"c"]), ":-2\r\n");
    w.now = 1000;
    assert_eq!(
        w.req(1, &[b"GET", b"a"]),
        "$2\r\n".replace('2', "1") + "v\r\n"
    );
    w.now = 1001;
    assert_eq!(w.req(1, &[b"GET", b"a"]), "$-1\r\n", "gone at its deadline");
    assert_eq!(w.req(1, &[b"PEXPIRE", b"b", b"50"]), ":1\r\n");
    assert_eq!(w.req(1, &[b"PEXPIRE", b"zz", b"50"]), ":0\r\n");
    assert_eq!(w.req(1, &[b"EXPIRE", b"b", b"0"]), ":1\r\n");
    assert_eq!(w.req(1, &[b"EXISTS", b"b"]), ":0\r\n");
    assert_eq!(
        w.req(1, &[b"SET", b"x", b"v", b"PX", b"0"]),
        "-ERR invalid expire time in 'set' command\r\n"
    );
    assert_eq!(
        w.req(1, &[b"SET", b"x", b"v", b"EX", b"abc"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        w.req(1, &[b"SET", b"x", b"v", b"NX", b"XX"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        w.req(1, &[b"SET", b"x", b"v", b"KEEPTTL"]),
        "-ERR syntax error\r\n"
    );
    // Overwrite: value and deadline replaced; GET returns the old value.
    assert_eq!(w.req(1, &[b"SET", b"x", b"1", b"PX", b"10"]), "+OK\r\n");
    assert_eq!(w.req(1, &[b"SET", b"x", b"2", b"GET"]), "$1\r\n1\r\n");
    assert_eq!(w.req(1, &[b"PTTL", b"x"]), ":-1\r\n");
    assert_eq!(
        w.req(1, &[b"SET", b"x", b"3", b"XX", b"PX", b"20"]),
        "+OK\r\n"
    );
    assert_eq!(w.req(1, &[b"GET", b"x"]), "$1\r\n3\r\n");
    assert_eq!(w.req(1, &[b"SET", b"nope", b"3", b"XX"]), "$-1\r\n");
}

#[test]
fn a_native_wait_behind_a_key_is_granted_when_it_is_deleted_or_expires() {
    let mut w = World::new();
    assert_eq!(
        w.req(0, &[b"SET", b"r", b"t", b"NX", b"PX", b"100"]),
        "+OK\r\n"
    );
    let wait = AcquireRequest {
        name: b"r",
        mode: Mode::Exclusive,
        wait: None,
        hold: None,
        queue: None,
    };
    assert_eq!(w.engine.acquire(NATIVE, b"n1", &wait, 0), Acquired::Queued);
    assert_eq!(w.req(1, &[b"DEL", b"r"]), ":1\r\n");
    let mut ev = Vec::new();
    w.engine.take_events(&mut ev);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].client, ev[0].tag.as_slice()), (NATIVE, &b"n1"[..]));
    assert!(matches!(ev[0].kind, EventKind::Granted { .. }));
    // Now the name is natively held: visible, not writable, not deletable.
    assert_eq!(w.req(1, &[b"GET", b"r"]), "$12\r\nlockbox:held\r\n");
    assert_eq!(w.req(1, &[b"EXISTS", b"r"]), ":1\r\n");
    assert_eq!(w.req(1, &[b"TYPE", b"r"]), "+string\r\n");
    assert_eq!(w.req(1, &[b"PTTL", b"r"]), ":-1\r\n");
    assert_eq!(w.req(1, &[b"DEL", b"r"]), ":0\r\n");
    assert_eq!(w.req(1, &[b"SET", b"r", b"x", b"NX"]), "$-1\r\n");
    assert_eq!(
        w.req(1, &[b"SET", b"r", b"x"]),
        format!(
            "-{}\r\n",
            "LOCKED the name is held by a client of another protocol"
        )
    );
    assert!(w
        .req(1, &[b"HSET", b"r", b"f", b"v"])
        .starts_with("-LOCKED"));
    assert!(w.req(1, &[b"PEXPIRE", b"r", b"5"]).starts_with("-LOCKED"));
    assert_eq!(w.req(1, &cad_args(b"r", b"lockbox:held")), ":0\r\n");
    w.engine.release(NATIVE, b"r", None, 0).unwrap();
    // Expiry grants too.
    assert_eq!(
        w.req(0, &[b"SET", b"r", b"t", b"NX", b"PX", b"100"]),
        "+OK\r\n"
    );
    assert_eq!(w.engine.acquire(NATIVE, b"n2", &wait, 0), Acquired::Queued);
    ev.clear();
    w.engine.advance(100);
    w.engine.take_events(&mut ev);
    assert_eq!(ev.len(), 0, "not before its deadline");
    ev.clear();
    w.engine.advance(101);
    w.engine.take_events(&mut ev);
    assert_eq!((ev.len(), ev[0].tag.as_slice()), (1, &b"n2"[..]));
}

fn cad_args<'a>(key: &'a [u8], token: &'a [u8]) -> Vec<&'a [u8]> {
    vec![b"EVAL", COMPARE_AND_DELETE.as_bytes(), b"1", key, token]
}

#[test]
fn hashes_for_dist_lock() {
    let mut w = World::new();
    assert_eq!(
        w.req(0, &[b"HSET", b"h", b"id", b"1", b"owner", b"me"]),
        ":2\r\n"
    );
    assert_eq!(
        w.req(0, &[b"HSET", b"h", b"id", b"2", b"x", b"y"]),
        ":1\r\n"
    );
    assert_eq!(
        w.req(0, &[b"HMGET", b"h", b"id", b"owner", b"no"]),
        "*3\r\n$1\r\n2\r\n$2\r\nme\r\n$-1\r\n"
    );
    assert_eq!(
        w.req(0, &[b"HGETALL", b"h"]),
        "*6\r\n$2\r\nid\r\n$1\r\n2\r\n$5\r\nowner\r\n$2\r\nme\r\n$1\r\nx\r\n$1\r\ny\r\n"
    );
    assert_eq!(w.req(0, &[b"HGET", b"h", b"x"]), "$1\r\ny\r\n");
    assert_eq!(w.req(0, &[b"TYPE", b"h"]), "+hash\r\n");
    assert!(w.req(0, &[b"GET", b"h"]).starts_with("-WRONGTYPE"));
    assert_eq!(w.req(0, &[b"HMSET", b"h", b"a", b"b"]), "+OK\r\n");
    assert_eq!(w.req(0, &[b"HGETALL", b"none"]), "*0\r\n");
    assert_eq!(
        w.req(0, &[b"HSET", b"h", b"a"]),
        "-ERR wrong number of arguments for 'hset' command\r\n"
    );
    let mut many: Vec<&[u8]> = vec![b"HSET", b"big"];
    let names: Vec<Vec<u8>> = (0..17).map(|i| format!("f{i}").into_bytes()).collect();
    for n in &names {
        many.push(n);
        many.push(b"v");
    }
    assert_eq!(
        w.req(0, &many),
        "-ERR too many fields for a lock key (most 16)\r\n"
    );
}

#[test]
fn scripts_by_sha_and_text_and_unknown_ones() {
    let mut w = World::new();
    assert_eq!(
        w.req(0, &[b"SET", b"k", b"tok", b"NX", b"PX", b"1000"]),
        "+OK\r\n"
    );
    w.now = 400;
    let sha = scripts::by_text(REDIS_PY_EXTEND.as_bytes()).unwrap().1;
    let mut hex = Vec::new();
    scripts::push_sha1_hex(&mut hex, &sha);
    // redis-py extend, adding: the old deadline plus 1000.
    assert_eq!(
        w.req(0, &[b"EVALSHA", &hex, b"1", b"k", b"tok", b"1000", b"0"]),
        ":1\r\n"
    );
    assert_eq!(w.req(0, &[b"PTTL", b"k"]), ":1600\r\n");
    assert_eq!(
        w.req(0, &[b"EVALSHA", &hex, b"1", b"k", b"bad", b"1000", b"1"]),
        ":0\r\n"
    );
    assert_eq!(
        w.req(
            0,
            &[
                b"SCRIPT",
                b"EXISTS",
                &hex,
                b"0000000000000000000000000000000000000000"
            ]
        ),
        "*2\r\n:1\r\n:0\r\n"
    );
    assert_eq!(
        w.req(
            0,
            &[
                b"EVALSHA",
                b"0000000000000000000000000000000000000000",
                b"0"
            ]
        ),
        "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
    let r = w.req(0, &[b"EVAL", b"return 1", b"0"]);
    assert!(
        r.starts_with("-ERR lockbox runs no Lua: only its built-in lock scripts"),
        "{r}"
    );
    let r = w.req(0, &[b"SCRIPT", b"LOAD", COMPARE_AND_DELETE.as_bytes()]);
    assert_eq!(r, "$40\r\n647c65a442733a1aa440f99908d249d13b4d6c4a\r\n");
    assert_eq!(
        w.req(0, &[b"SCRIPT", b"KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
}

#[test]
fn commands_outside_the_dialect_are_unknown_as_redis_words_it() {
    let mut w = World::new();
    assert_eq!(
        w.req(0, &[b"MULTI"]),
        "-ERR unknown command 'MULTI', with args beginning with: \r\n"
    );
    assert_eq!(
        w.req(0, &[b"zadd", b"k", b"1"]),
        "-ERR unknown command 'zadd', with args beginning with: 'k' '1' \r\n"
    );
    assert_eq!(
        w.req(0, &[b"GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        w.req(0, &[b"SELECT", b"1"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(w.req(0, &[b"SELECT", b"0"]), "+OK\r\n");
    assert_eq!(w.req(0, &[b"CLIENT", b"SETNAME", b"w1"]), "+OK\r\n");
    assert_eq!(w.req(0, &[b"CLIENT", b"GETNAME"]), "$2\r\nw1\r\n");
    assert_eq!(w.req(0, &[b"CLIENT", b"ID"]), ":1\r\n");
    assert_eq!(
        w.req(0, &[b"CLIENT", b"KILL"]),
        "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n"
    );
    assert!(w.req(0, &[b"INFO"]).contains("loading:0\r\n"));
    assert_eq!(
        w.req(0, &[b"HELLO", b"4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    let hello = w.req(0, &[b"HELLO", b"3"]);
    assert!(
        hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello}"
    );
    assert_eq!(
        w.req(0, &[b"GET", b"none"]),
        "_\r\n",
        "RESP3 null after HELLO 3"
    );
    assert_eq!(w.req(0, &[b"ECHO", b"hi"]), "$2\r\nhi\r\n");
    let (out, closed) = w.feed(0, &cmd(&[b"QUIT"]), 0);
    assert_eq!((out.as_slice(), closed), (&b"+OK\r\n"[..], true));
}

#[test]
fn command_names_match_in_any_case_and_only_whole() {
    let mut w = World::new();
    for name in [&b"ping"[..], b"PING", b"PiNg", b"pInG"] {
        assert_eq!(w.req(0, &[name]), "+PONG\r\n");
    }
    assert_eq!(
        w.req(0, &[b"EvalSHA", b"00", b"0"]),
        "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
    // A prefix, an extension, a NUL after the name, a name longer than any command.
    for name in [
        &b"pin"[..],
        b"pings",
        b"ping\0",
        b"\0ping",
        b"commandx",
        b"pingpingping",
    ] {
        let got = w.req(0, &[name]);
        assert!(got.starts_with("-ERR unknown command '"), "{name:?}: {got}");
    }
    // Bytes whose case folding is not ASCII letters' ('@' is 'A' - 1; 0xc9 is no letter).
    for name in [&b"@ING"[..], b"p\xc9ng", b"PING\x80"] {
        let (out, _) = w.feed(0, &cmd(&[name]), 0);
        assert!(out.starts_with(b"-ERR unknown command '"), "{name:?}");
    }
}

#[test]
fn keys_and_scan_list_lock_names_unescaped() {
    let mut w = World::new();
    for k in [&b"lock:a"[..], b"lock:b", b"other", b"sp ace"] {
        assert_eq!(w.req(0, &[b"SET", k, b"v"]), "+OK\r\n");
    }
    assert_eq!(
        w.req(0, &[b"KEYS", b"lock:*"]),
        "*2\r\n$6\r\nlock:a\r\n$6\r\nlock:b\r\n"
    );
    assert_eq!(w.req(0, &[b"KEYS", b"sp?ace"]), "*1\r\n$6\r\nsp ace\r\n");
    let mut seen = Vec::new();
    let mut cursor = b"0".to_vec();
    for _ in 0..100 {
        let (out, _) = w.feed(0, &cmd(&[b"SCAN", &cursor, b"COUNT", b"1"]), 0);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        cursor = lines[2].as_bytes().to_vec();
        for l in lines[4..].iter().skip(1).step_by(2) {
            seen.push(l.to_string());
        }
        if cursor == b"0" {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["lock:a", "lock:b", "other", "sp ace"]);
}

#[test]
fn malformed_resp_gets_one_error_and_a_close() {
    for (input, want) in [
        (
            &b"*1\r\n$-5\r\n"[..],
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$99999999999\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*99999\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*2\r\n*1\r\n$1\r\na\r\n",
            "-ERR Protocol error: expected '$', got '*'\r\n",
        ),
        (
            b"*1\r\n$1\r\nab\r\n",
            "-ERR Protocol error: expected CRLF after bulk data\r\n",
        ),
        (
            b"*x\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ] {
        for step in [0, 1] {
            let mut w = World::new();
            assert_eq!(w.req(1, &[b"SET", b"kept", b"v"]), "+OK\r\n");
            let mut bytes = cmd(&[b"PING"]);
            bytes.extend_from_slice(input);
            bytes.extend(cmd(&[b"PING"]));
            let (out, closed) = w.feed(0, &bytes, step);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text, format!("+PONG\r\n{want}"), "{input:?} step {step}");
            assert!(closed, "{input:?}");
            assert_eq!(
                w.req(1, &[b"EXISTS", b"kept"]),
                ":1\r\n",
                "others untouched"
            );
        }
    }
    // A huge announced bulk is refused from its header, before its data arrives.
    let mut w = World::new();
    let (out, closed) = w.feed(0, b"*2\r\n$3\r\nSET\r\n$1048576\r\n", 1);
    assert!(closed && out.starts_with(b"-ERR Protocol error: invalid bulk length"));
}

#[test]
fn glob_as_redis() {
    for (p, s, want) in [
        ("*", "", true),
        ("a*", "abc", true),
        ("a*c", "abbbc", true),
        ("a*c", "abbb", false),
        ("a?c", "abc", true),
        ("a[bx]c", "axc", true),
        ("a[^b]c", "abc", false),
        ("a[a-c]z", "abz", true),
        ("a[c-a]z", "abz", true),
        ("a\\*", "a*", true),
        ("a\\*", "ab", false),
        ("*:*:x", "a:b:c:x", true),
        // As redis-server 7.0 answers KEYS: a class never closed ends with the
        // pattern, a trailing `\` is itself, and the empty key matches only `*`
        // alone or the empty pattern.
        ("[abc", "[abc", false),
        ("[abc", "b", true),
        ("[a-", "-", true),
        ("[a-]", "^", true),
        ("[^", "x", true),
        ("*[*", "a*", true),
        ("*[*", "[x]", false),
        ("[\\]", "]", true),
        ("a\\", "a\\", true),
        ("**", "", false),
        ("", "", true),
    ] {
        assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p} ~ {s}");
    }
}

/// Integers as Redis's `string2ll` reads them (no `-0`, `+1`, `01`; `i64::MIN` is one),
/// options before numbers in `SET`, and `SCAN` cursors as C's `strtoul`, each reply as
/// redis-server 7.0 gives it (the differential test in tests/compat checks the same
/// against a live one).
#[test]
fn integers_options_and_cursors_as_redis_reads_them() {
    let mut w = World::new();
    let not_int = "-ERR value is not an integer or out of range\r\n";
    let bad_set = "-ERR invalid expire time in 'set' command\r\n";
    assert_eq!(w.req(0, &[b"SET", b"k", b"v"]), "+OK\r\n");
    for (req, want) in [
        (&[&b"PEXPIRE"[..], b"k", b"-0"][..], not_int),
        (&[b"EXPIRE", b"k", b"-0"], not_int),
        (&[b"PEXPIRE", b"k", b"+5"], not_int),
        (&[b"SELECT", b"-0"], not_int),
        (&[b"SCAN", b"0", b"COUNT", b"-0"], not_int),
        (
            &[b"HELLO", b"-0"],
            "-ERR Protocol version is not an integer or out of range\r\n",
        ),
        (&[b"SET", b"k", b"v", b"PX", b"-0"], not_int),
        (
            &[b"SET", b"k", b"v", b"PX", b"-9223372036854775808"],
            bad_set,
        ),
        (
            &[b"SET", b"k", b"v", b"PX", b"-9223372036854775809"],
            not_int,
        ),
        (
            &[b"SET", b"k", b"v", b"PX", b"abc", b"FOO"],
            "-ERR syntax error\r\n",
        ),
        (
            &[b"SET", b"k", b"v", b"PX", b"1", b"EX", b"1"],
            "-ERR syntax error\r\n",
        ),
        (
            &[b"SET", b"k", b"v", b"PX", b"abc", b"PX", b"5000"],
            "+OK\r\n",
        ),
        (&[b"PTTL", b"k"], ":5000\r\n"),
        (&[b"SET", b"k", b"v", b"EX", b"1", b"EX", b"0"], bad_set),
        (&[b"SCAN", b"-1"], "*2\r\n$1\r\n0\r\n*0\r\n"),
        (
            &[b"SCAN", b"18446744073709551615"],
            "*2\r\n$1\r\n0\r\n*0\r\n",
        ),
        (
            &[b"SCAN", b"18446744073709551616"],
            "-ERR invalid cursor\r\n",
        ),
        (&[b"SCAN", b" 0"], "-ERR invalid cursor\r\n"),
        (&[b"SCAN", b"+"], "-ERR invalid cursor\r\n"),
        (&[b"SCAN", b""], "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
        (&[b"SCAN", b"-0"], "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
        (&[b"SCAN", b"+0"], "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
    ] {
        assert_eq!(w.req(0, req), want, "{req:?}");
    }
}

/// A pipelined stream of everything a connection may send (RESP arrays and inline
/// commands, the scripts by text and by SHA1, hashes, RESP3 after `HELLO 3` and back),
/// and the replies expected for it, byte for byte.
fn mixed_stream() -> (Vec<u8>, String) {
    use crate::proto::redis_scripts::{DIST_LOCK_CREATE, REDIS_PY_RELEASE};
    let release = scripts::by_text(REDIS_PY_RELEASE.as_bytes()).unwrap().0;
    let mut input = Vec::new();
    let mut want = String::new();
    let mut step = |bytes: &[u8], reply: &str| {
        input.extend_from_slice(bytes);
        want.push_str(reply);
    };
    step(
        &cmd(&[b"SET", b"job", b"t1", b"NX", b"PX", b"5000"]),
        "+OK\r\n",
    );
    step(
        &cmd(&[b"SET", b"job", b"t2", b"NX", b"PX", b"5000"]),
        "$-1\r\n",
    );
    step(b"GET job\r\n", "$2\r\nt1\r\n");
    step(b"\r\n", ""); // a blank line: no request
    step(b"*0\r\n*-1\r\n", ""); // empty arrays: no request
    step(&cmd(&[b"PTTL", b"job"]), ":5000\r\n");
    step(&cad(b"job", b"t2"), ":0\r\n");
    step(&cad(b"job", b"t1"), ":1\r\n");
    step(
        &cmd(&[b"SET", b"py", b"tok", b"NX", b"PX", b"30000"]),
        "+OK\r\n",
    );
    step(
        &cmd(&[b"EVALSHA", release.sha1_hex.as_bytes(), b"1", b"py", b"tok"]),
        ":1\r\n",
    );
    step(
        &cmd(&[
            b"EVAL",
            DIST_LOCK_CREATE.as_bytes(),
            b"1",
            b"dl",
            b"id1",
            b"me",
            b"10000",
        ]),
        ":1\r\n",
    );
    step(
        &cmd(&[b"HMGET", b"dl", b"id", b"owner", b"nope"]),
        "*3\r\n$3\r\nid1\r\n$2\r\nme\r\n$-1\r\n",
    );
    step(&cmd(&[b"HSET", b"h", b"f", b"v", b"g", b"w"]), ":2\r\n");
    step(b"HGET h f\n", "$1\r\nv\r\n");
    step(b"  PING \t\r\n", "+PONG\r\n");
    step(&cmd(&[b"ECHO", b"a\r\n$1\r\n*"]), "$8\r\na\r\n$1\r\n*\r\n");
    step(
        &cmd(&[b"HELLO", b"3"]),
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n\
         $5\r\nproto\r\n:3\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
         $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    );
    step(b"GET nothing\r\n", "_\r\n");
    step(
        &cmd(&[b"HGETALL", b"h"]),
        "%2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n",
    );
    step(&cmd(&[b"SET", b"job", b"x", b"XX"]), "_\r\n");
    step(
        &cmd(&[b"HELLO", b"2"]),
        "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n\
         $5\r\nproto\r\n:2\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
         $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    );
    step(b"GET nothing\r\n", "$-1\r\n");
    step(&cmd(&[b"DEL", b"h", b"dl", b"job"]), ":2\r\n");
    step(&cmd(&[b"EXISTS", b"h", b"dl", b"py"]), ":0\r\n");
    step(
        b"FOO bar\r\n",
        "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n",
    );
    step(b"PING\r\n", "+PONG\r\n");
    (input, want)
}

/// Feeds `chunks` to a new world's client 0: the replies must be `want`, the
/// connection open and no key left.
fn check_chunking(chunks: &[&[u8]], want: &str, what: &str) {
    let mut w = World::new();
    let (out, closed) = w.feed_chunks(0, chunks.iter().copied());
    assert_eq!(String::from_utf8(out).unwrap(), want, "{what}");
    assert!(!closed, "{what}");
    assert_eq!(w.engine.gauges().1, 0, "{what}: no lock left");
}

/// Random chunkings of the mixed stream, from a seeded generator.
const RANDOM_CHUNKINGS: usize = 300;

#[test]
fn a_mixed_pipeline_split_at_every_byte_and_in_random_chunks() {
    let (input, want) = mixed_stream();
    check_chunking(&[&input], &want, "whole");
    // Every byte boundary, as two reads.
    for i in 1..input.len() {
        check_chunking(&[&input[..i], &input[i..]], &want, &format!("split at {i}"));
    }
    // One byte per read.
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    check_chunking(&bytes, &want, "byte by byte");
    // Random chunk sizes, small ones mostly (a few bytes straddle every header).
    let mut rng = crate::testrng::Rng::new(0x5_9117);
    for round in 0..RANDOM_CHUNKINGS {
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let n = if rng.chance(80) {
                rng.range_usize(1, 8)
            } else {
                rng.range_usize(9, 200)
            };
            let end = (at + n).min(input.len());
            chunks.push(&input[at..end]);
            at = end;
        }
        check_chunking(&chunks, &want, &format!("random chunking {round}"));
    }
}

/// `PEXPIRE`/`EXPIRE` with `NX`/`XX`/`GT`/`LT`, as redis-server 7.0 answers (a key
/// without a deadline counts as one infinitely far).
#[test]
fn pexpire_options_as_redis() {
    let mut w = World::new();
    assert_eq!(w.req(0, &[b"SET", b"k", b"v"]), "+OK\r\n");
    for (req, want) in [
        (&[&b"PEXPIRE"[..], b"k", b"1000", b"XX"][..], ":0\r\n"),
        (&[b"PEXPIRE", b"k", b"1000", b"GT"], ":0\r\n"),
        (&[b"PTTL", b"k"], ":-1\r\n"),
        (&[b"PEXPIRE", b"k", b"1000", b"NX"], ":1\r\n"),
        (&[b"PEXPIRE", b"k", b"500", b"nx"], ":0\r\n"),
        (&[b"PEXPIRE", b"k", b"900", b"GT"], ":0\r\n"),
        (&[b"PEXPIRE", b"k", b"2000", b"gt"], ":1\r\n"),
        (&[b"PEXPIRE", b"k", b"3000", b"LT"], ":0\r\n"),
        (&[b"PEXPIRE", b"k", b"1500", b"XX", b"LT"], ":1\r\n"),
        (&[b"PTTL", b"k"], ":1500\r\n"),
        (
            &[b"EXPIRE", b"k", b"1", b"NX", b"GT"],
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
        (
            &[b"EXPIRE", b"k", b"1", b"GT", b"LT"],
            "-ERR GT and LT options at the same time are not compatible\r\n",
        ),
        (
            &[b"EXPIRE", b"k", b"x", b"Foo"],
            "-ERR Unsupported option Foo\r\n",
        ),
        (&[b"PEXPIRE", b"k", b"-1", b"LT"], ":1\r\n"),
        (&[b"EXISTS", b"k"], ":0\r\n"),
    ] {
        assert_eq!(w.req(0, req), want, "{req:?}");
    }
}

/// `AUTH [user] pass` and `HELLO ... AUTH user pass` as redis-server 7.0 answers them,
/// with and without a secret: the user, when given, must be `default`.
#[test]
fn auth_and_hello_auth_as_redis() {
    let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    let mut w = World::with_secret(Some(b"s3cret"));
    for (req, want) in [
        (
            &[&b"GET"[..], b"k"][..],
            "-NOAUTH Authentication required.\r\n",
        ),
        (
            &[b"HELLO", b"3"],
            "-NOAUTH HELLO must be called with the client already authenticated, otherwise \
             the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time\r\n",
        ),
        (&[b"AUTH", b"other", b"s3cret"], wrongpass),
        (&[b"AUTH", b"Default", b"s3cret"], wrongpass),
        (&[b"HELLO", b"3", b"AUTH", b"other", b"s3cret"], wrongpass),
        (&[b"AUTH", b"wrong"], wrongpass),
        (&[b"GET", b"k"], "-NOAUTH Authentication required.\r\n"),
        (&[b"AUTH", b"default", b"s3cret"], "+OK\r\n"),
        (&[b"GET", b"k"], "$-1\r\n"),
    ] {
        assert_eq!(w.req(0, req), want, "{req:?}");
    }
    let mut w = World::new();
    for (req, want) in [
        (
            &[&b"AUTH"[..], b"x"][..],
            "-ERR AUTH <password> called without any password configured for the default \
             user. Are you sure your configuration is correct?\r\n",
        ),
        (&[b"AUTH", b"default", b"x"], "+OK\r\n"),
        (&[b"AUTH", b"other", b"x"], wrongpass),
        (&[b"HELLO", b"2", b"AUTH", b"other", b"x"], wrongpass),
    ] {
        assert_eq!(w.req(0, req), want, "{req:?}");
    }
}

/// `EVAL`/`EVALSHA` check the key count before they look for the script, as Redis.
#[test]
fn the_key_count_is_checked_before_the_script() {
    let mut w = World::new();
    let sha = b"0123456789abcdef0123456789abcdef01234567";
    for (req, want) in [
        (
            &[&b"EVALSHA"[..], sha, b"x"][..],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &[b"EVALSHA", sha, b"2", b"k"],
            "-ERR Number of keys can't be greater than number of args\r\n",
        ),
        (
            &[b"EVAL", b"return 1", b"-1"],
            "-ERR Number of keys can't be negative\r\n",
        ),
        (
            &[b"EVALSHA", sha, b"1", b"k"],
            "-NOSCRIPT No matching script. Please use EVAL.\r\n",
        ),
    ] {
        assert_eq!(w.req(0, req), want, "{req:?}");
    }
}
