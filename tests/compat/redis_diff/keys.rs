//! Hashes, and `KEYS`/`SCAN` with their glob patterns and cursors.

use super::*;

pub(super) fn hashes(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "hashes");
    for line in [
        "HSET h f1 v1 f2 v2",
        "HSET h f1 x f3 y",
        "HGET h f1",
        "HGET h nope",
        "HGET missing f",
        "HMGET h f1 nope f3",
        "HMGET missing a b",
        "HGETALL h",
        "HGETALL missing",
        "HMSET h a b",
        "HMSET h2 a b c d",
        "HGETALL h2",
        "HSET h2 a 1 a 2",
        "HGET h2 a",
        "HSET h3 a 1 b 2 a 3",
        "HGETALL h3",
        "HSET h f",
        "HSET h f v g",
        "HSET h",
        "HSET",
        "HMSET h f",
        "HMSET h f v g",
        "HGET h",
        "HGET h a b",
        "HMGET h",
        "HGETALL",
        "HGETALL h h",
        "SET s v",
        "HSET s f v",
        "HMSET s f v",
        "HGET s f",
        "HMGET s f",
        "HGETALL s",
        "TYPE h",
        "hset lower f v",
        "HGETALL lower",
        "DEL h",
        "HGETALL h",
        "HSET e '' ''",
        "HGET e ''",
        "HGETALL e",
    ] {
        p.same(line);
    }
    p.finish()
}

pub(super) fn keys_and_scan(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "KEYS/SCAN");
    let keys: [&[u8]; 21] = [
        b"a", b"b", b"ab", b"abc", b"a*", b"a?b", b"[x]", b"\\x", b"h-llo", b"hello", b"hallo",
        b"hxllo", b"hllo", b"x", b"]", b"^", b"-", b"a b", b"lock:1", b"", b"*",
    ];
    for k in keys {
        p.same_args(&[b"SET", k, b"v"]);
    }
    p.setup("HSET hash f v");
    // Names the lock table escapes: listed as written.
    for k in [
        &b"%"[..],
        b"%41",
        b"\x01ctl",
        b"\x7f",
        b"tab\there",
        b"\xff\xfe",
    ] {
        p.same_args(&[b"SET", k, b"v"]);
        p.same_args(&[b"GET", k]);
    }
    for pattern in [
        &b"%*"[..],
        b"[%]41",
        b"\x01*",
        b"*\x7f",
        b"tab?here",
        b"\xff*",
    ] {
        let (r, l) = p.both(&[b"KEYS", pattern]);
        if elements(&r) != elements(&l) {
            p.note(format!(
                "KEYS {}: redis {} lockbox {}",
                show(pattern),
                show(&r),
                show(&l)
            ));
        }
    }
    for pattern in [
        "*",
        "''",
        "**",
        "?",
        "??",
        "a*",
        "a?",
        "*b*",
        "a\\*",
        "a\\?b",
        "a?b",
        "\\a",
        "\\",
        "*\\",
        "a\\",
        "[ab]",
        "[^a]",
        "[^ab]*",
        "[a-b]*",
        "[b-a]*",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-b]llo",
        "h[!e]llo",
        "h*llo",
        "h?llo",
        "\\[x\\]",
        "[[]x]",
        "[\\]]",
        "[]]",
        "[]",
        "[",
        "[a",
        "a[",
        "[a-",
        "[a-]",
        "[-]",
        "[^]",
        "[^",
        "[\\^]",
        "[a-\\z]*",
        "[\\a-z]*",
        "*[*",
        "lock:*",
        "lock:[12]",
        "lock:[^1]",
        "a b",
        "h*",
    ] {
        p.same_sorted(&format!("KEYS {pattern}"));
    }
    for opts in [
        "",
        "COUNT 1",
        "COUNT 3",
        "COUNT 1000",
        "MATCH a*",
        "MATCH h[^e]llo COUNT 2",
        "TYPE hash",
        "TYPE string",
        "TYPE HASH",
        "TYPE none",
        "MATCH * TYPE string COUNT 5",
    ] {
        p.scan_all(opts);
    }
    for line in [
        "SCAN",
        "SCAN x",
        "SCAN 1.5",
        "SCAN 18446744073709551616",
        "SCAN 0 COUNT 0",
        "SCAN 0 COUNT -1",
        "SCAN 0 COUNT x",
        "SCAN 0 COUNT -0",
        "SCAN 0 MATCH",
        "SCAN 0 COUNT",
        "SCAN 0 TYPE",
        "SCAN 0 FOO bar",
        "SCAN 0 MATCH * FOO",
        "KEYS",
        "KEYS a b",
    ] {
        p.same(line);
    }
    p.same_args(&[b"SCAN", b" 0"]);
    p.same_args(&[b"SCAN", b"0 "]);
    // A cursor is parsed as C's strtoul: a sign is taken, a negative one wraps around
    // (to the last place of the walk: the scan is over, whatever the last step found),
    // and an empty one is 0.
    for cursor in ["18446744073709551615", "-1", "-18446744073709551615"] {
        let (r, l) = p.both(&[b"SCAN", cursor.as_bytes(), b"COUNT", b"1000"]);
        let (r, l) = (scan_reply(&r), scan_reply(&l));
        if !matches!((&r, &l), (Some((rc, _)), Some((lc, _))) if rc == b"0" && lc == b"0") {
            p.note(format!("SCAN {cursor}: redis {r:?} lockbox {l:?}"));
        }
    }
    p.same("SCAN -18446744073709551616");
    p.same("SCAN +");
    p.same("SCAN -");
    p.same("SCAN 0x10");
    p.same_args(&[b"SCAN", b"\t0"]);
    p.scan_all_from("");
    p.scan_all_from("-0");
    p.scan_all_from("+0");
    p.scan_all_from("00");
    p.finish()
}

impl Pair {
    /// A whole SCAN that starts at `cursor`, which both must read as 0.
    pub(super) fn scan_all_from(&mut self, cursor: &str) {
        let (r, l) = self.both(&[b"SCAN", cursor.as_bytes(), b"COUNT", b"1000"]);
        let (r, l) = (scan_reply(&r), scan_reply(&l));
        match (&r, &l) {
            (Some((rc, rk)), Some((lc, lk))) if rc == b"0" && lc == b"0" && rk == lk => {}
            _ => self.note(format!(
                "SCAN {cursor} COUNT 1000: redis {r:?} lockbox {l:?}"
            )),
        }
    }
}
