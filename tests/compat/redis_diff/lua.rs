//! The script catalogue through `EVAL`/`EVALSHA`, the `SCRIPT` commands, unknown commands and wrong arities.

use super::*;

/// Each catalogued script through `EVAL` (Redis runs the Lua, lockbox its built-in
/// operation), then `EVALSHA` once Redis knows it: the same replies and the same keys.
pub(super) fn scripts_as_lua_runs_them(r: SocketAddr) -> Vec<String> {
    use scripts::{
        COMPARE_AND_DELETE as CAD, COMPARE_AND_PEXPIRE as CAP, DIST_LOCK_CREATE, DIST_LOCK_DELETE,
        DIST_LOCK_EXTEND, REDIS_PY_EXTEND, REDIS_PY_REACQUIRE, REDIS_PY_RELEASE,
        REDLOCK_4_0_EXTEND, REDLOCK_4_0_LOCK, REDLOCK_4_0_UNLOCK, REDLOCK_4_1_EXTEND,
        REDLOCK_4_1_LOCK, REDLOCK_4_2_UNLOCK,
    };
    let mut p = Pair::new(r, "scripts");
    // Each (text, keys and arguments) is run by EVAL, then again by EVALSHA.
    let eval = |p: &mut Pair, text: &str, rest: &str| {
        let w = words(rest);
        let mut args: Vec<&[u8]> = vec![b"EVAL", text.as_bytes()];
        args.extend(w.iter().map(Vec::as_slice));
        p.same_args(&args);
    };
    let evalsha = |p: &mut Pair, text: &str, rest: &str| {
        let w = words(rest);
        let sha = script(text).sha1_hex;
        let mut args: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes()];
        args.extend(w.iter().map(Vec::as_slice));
        p.same_args(&args);
    };
    // compare-and-delete / compare-and-pexpire.
    eval(&mut p, CAD, "1 k t1");
    p.setup("SET k t1 PX 100000");
    eval(&mut p, CAD, "1 k t2");
    eval(&mut p, CAP, "1 k t2 200000");
    eval(&mut p, CAP, "1 k t1 200000");
    p.close("PTTL k", SLACK_MS);
    eval(&mut p, CAP, "1 k t1 0");
    p.same("EXISTS k");
    p.setup("SET k t1");
    evalsha(&mut p, CAD, "1 k t1");
    p.same("EXISTS k");
    p.setup("SET k t1");
    evalsha(&mut p, CAP, "1 k t1 -5");
    p.same("EXISTS k");
    // redis-py Lock: release, extend (replace or add), reacquire.
    p.setup("SET py tok PX 100000");
    eval(&mut p, REDIS_PY_RELEASE, "1 py other");
    eval(&mut p, REDIS_PY_EXTEND, "1 py tok 50000 0");
    p.close("PTTL py", SLACK_MS);
    eval(&mut p, REDIS_PY_EXTEND, "1 py tok 50000 1");
    p.close("PTTL py", SLACK_MS);
    eval(&mut p, REDIS_PY_EXTEND, "1 py other 50000 1");
    eval(&mut p, REDIS_PY_REACQUIRE, "1 py tok 300000");
    p.close("PTTL py", SLACK_MS);
    eval(&mut p, REDIS_PY_REACQUIRE, "1 py other 300000");
    eval(&mut p, REDIS_PY_RELEASE, "1 py tok");
    p.same("EXISTS py");
    eval(&mut p, REDIS_PY_RELEASE, "1 py tok");
    p.setup("SET py tok");
    evalsha(&mut p, REDIS_PY_EXTEND, "1 py tok 50000 1"); // no deadline: 0
    p.same("PTTL py");
    evalsha(&mut p, REDIS_PY_REACQUIRE, "1 py tok 100000");
    p.close("PTTL py", SLACK_MS);
    evalsha(&mut p, REDIS_PY_RELEASE, "1 py tok");
    // dist-lock: hash create, extend, delete.
    eval(&mut p, DIST_LOCK_CREATE, "1 dl id1 owner1 100000");
    eval(&mut p, DIST_LOCK_CREATE, "1 dl id2 owner2 100000");
    p.same("HMGET dl id owner");
    p.same("HGETALL dl");
    p.close("PTTL dl", SLACK_MS);
    eval(&mut p, DIST_LOCK_EXTEND, "1 dl id2 300000");
    eval(&mut p, DIST_LOCK_EXTEND, "1 dl id1 300000");
    p.close("PTTL dl", SLACK_MS);
    eval(&mut p, DIST_LOCK_DELETE, "1 dl id2");
    eval(&mut p, DIST_LOCK_DELETE, "1 dl id1");
    p.same("EXISTS dl");
    evalsha(&mut p, DIST_LOCK_CREATE, "1 dl id1 owner1 100000");
    evalsha(&mut p, DIST_LOCK_EXTEND, "1 dl id1 0");
    p.same("EXISTS dl");
    evalsha(&mut p, DIST_LOCK_CREATE, "1 dl id1 owner1 100000");
    evalsha(&mut p, DIST_LOCK_DELETE, "1 dl id1");
    eval(&mut p, DIST_LOCK_DELETE, "1 missing id1");
    // redlock 4.x: multi-key lock, extend, unlock.
    for (lock, extend, unlock) in [
        (REDLOCK_4_0_LOCK, REDLOCK_4_0_EXTEND, REDLOCK_4_0_UNLOCK),
        (REDLOCK_4_1_LOCK, REDLOCK_4_1_EXTEND, REDLOCK_4_2_UNLOCK),
    ] {
        eval(&mut p, lock, "3 r1 r2 r3 val 100000");
        eval(&mut p, lock, "2 r3 r4 other 100000");
        p.same("EXISTS r4");
        for k in ["r1", "r2", "r3"] {
            p.same(&format!("GET {k}"));
        }
        p.close("PTTL r2", SLACK_MS);
        eval(&mut p, extend, "2 r1 r2 other 300000");
        eval(&mut p, extend, "3 r1 r2 r3 val 300000");
        p.close("PTTL r3", SLACK_MS);
        eval(&mut p, extend, "2 r1 r4 val 300000");
        eval(&mut p, unlock, "4 r1 r2 r4 r3 val");
        p.same("EXISTS r1 r2 r3");
        evalsha(&mut p, lock, "2 r1 r1 val 100000");
        p.same("EXISTS r1");
        evalsha(&mut p, unlock, "2 r1 r1 val");
        evalsha(&mut p, lock, "1 r1 val 100000");
        evalsha(&mut p, extend, "1 r1 val 100000");
        evalsha(&mut p, unlock, "1 r1 val");
    }
    // Script names are case-insensitive commands too.
    p.same_args(&[b"eval", CAD.as_bytes(), b"1", b"none", b"x"]);
    p.same_args(&[
        b"evalsha",
        script(CAD).sha1_hex.as_bytes(),
        b"1",
        b"none",
        b"x",
    ]);
    // The SHA1 in upper case.
    let upper = script(CAD).sha1_hex.to_ascii_uppercase();
    p.same_args(&[b"EVALSHA", upper.as_bytes(), b"1", b"none", b"x"]);
    p.finish()
}

pub(super) fn script_commands(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "SCRIPT");
    let cad = script(scripts::COMPARE_AND_DELETE);
    let unknown_sha = "0123456789abcdef0123456789abcdef01234567";
    for line in [
        "SCRIPT",
        "SCRIPT LOAD",
        "SCRIPT LOAD a b",
        "SCRIPT EXISTS",
        "SCRIPT FOO",
        "SCRIPT KILL",
        "SCRIPT FLUSH",
        "EVAL",
        "EVAL x",
        "EVALSHA",
        "EVALSHA x",
    ] {
        p.same(line);
    }
    p.same(&format!("SCRIPT EXISTS {unknown_sha}"));
    p.same(&format!("EVALSHA {unknown_sha} 0"));
    p.same("EVALSHA xyz 0");
    p.same_args(&[b"SCRIPT", b"LOAD", cad.text.as_bytes()]);
    p.same(&format!(
        "SCRIPT EXISTS {} {unknown_sha} {}",
        cad.sha1_hex, cad.sha1_hex
    ));
    // Variants (other quotes, a comment): their own SHA1s, as Redis computes them, and
    // run as the catalogued script.
    for variant in [
        cad.text.replace('"', "'"),
        format!("-- release the lock\n{}", cad.text),
    ] {
        p.same_args(&[b"SCRIPT", b"LOAD", variant.as_bytes()]);
        p.setup("SET kv t");
        p.same_args(&[b"EVAL", variant.as_bytes(), b"1", b"kv", b"x"]);
        p.same_args(&[b"EVAL", variant.as_bytes(), b"1", b"kv", b"t"]);
        p.same("EXISTS kv");
    }
    // A variant (other white space): its own SHA1, as Redis computes it.
    let variant = cad.text.replace('\n', "\n\n");
    p.same_args(&[b"SCRIPT", b"LOAD", variant.as_bytes()]);
    let vsha = scripts::sha1_of(variant.as_bytes());
    let mut vhex = Vec::new();
    scripts::push_sha1_hex(&mut vhex, &vsha);
    p.setup("SET k t");
    p.same_args(&[b"EVALSHA", &vhex, b"1", b"k", b"t"]);
    p.same_args(&[b"EVAL", variant.as_bytes(), b"1", b"k", b"t"]);
    p.same_args(&[b"SCRIPT", b"EXISTS", &vhex]);
    // Documented differences. lockbox runs no Lua: an unknown text is refused.
    let no_lua = format!("-ERR {}\r\n", no_lua_text());
    p.differs("EVAL return 0", &no_lua);
    p.differs_args(
        &[b"EVAL", b"return redis.call('get', KEYS[1])", b"1", b"k"],
        &no_lua,
    );
    p.differs_args(&[b"SCRIPT", b"LOAD", b"return 1"], &no_lua);
    // The catalogue is known by SHA1 without a SCRIPT LOAD (Redis: after SCRIPT FLUSH,
    // not until loaded again).
    p.setup("SCRIPT FLUSH");
    p.same_args(&[b"SCRIPT", b"EXISTS", &vhex]); // a variant is forgotten
    p.same_args(&[b"EVALSHA", &vhex, b"1", b"k", b"t"]);
    p.setup("SET k t");
    p.differs(&format!("SCRIPT EXISTS {}", cad.sha1_hex), "*1\r\n:1\r\n");
    p.differs(&format!("EVALSHA {} 1 k t", cad.sha1_hex), ":1\r\n");
    // A variant's SHA1 is known on the connection that loaded it only.
    p.same_args(&[b"SCRIPT", b"LOAD", variant.as_bytes()]);
    let mut other = p.second();
    other.differs_args(
        &[b"EVALSHA", &vhex, b"1", b"k", b"t"],
        "-NOSCRIPT No matching script. Please use EVAL.\r\n",
    );
    p.mismatches.append(&mut other.mismatches);
    // Wrong key or argument counts: lockbox's own error (Lua would run with nils).
    let wrong = |name: &str| {
        format!("-ERR wrong number of keys or arguments for built-in script '{name}'\r\n")
    };
    p.differs(&format!("EVALSHA {} 0", cad.sha1_hex), &wrong(cad.name));
    p.differs(&format!("EVALSHA {} 1 k", cad.sha1_hex), &wrong(cad.name));
    p.differs(&format!("EVALSHA {} 2 k t", cad.sha1_hex), &wrong(cad.name));
    p.same(&format!("EVALSHA {} -1 k t", cad.sha1_hex));
    p.same(&format!("EVALSHA {} x k t", cad.sha1_hex));
    p.same(&format!("EVALSHA {} 3 k t", cad.sha1_hex));
    p.same(&format!("EVALSHA {} -0 k t", cad.sha1_hex));
    p.same(&format!("EVALSHA {} 01 k t", cad.sha1_hex));
    // A bad number for the script: Redis fails inside the Lua (its error names the
    // script), lockbox before running anything.
    let cap = script(scripts::COMPARE_AND_PEXPIRE);
    p.setup("SET k t");
    p.differs(
        &format!("EVALSHA {} 1 k t abc", cap.sha1_hex),
        "-ERR value is not an integer or out of range\r\n",
    );
    p.differs(
        &format!("EVALSHA {} 1 k t 4294967296", cap.sha1_hex),
        "-ERR invalid expire time in 'pexpire' command\r\n",
    );
    p.same("PTTL k");
    // A Lua error inside the script: Redis answers the error, lockbox's comparison
    // finds no string value and answers 0.
    p.setup("HSET h f v");
    p.differs_args(&[b"EVAL", cad.text.as_bytes(), b"1", b"h", b"t"], ":0\r\n");
    let delete = script(scripts::DIST_LOCK_DELETE);
    p.setup("SET k t");
    p.differs_args(
        &[b"EVAL", delete.text.as_bytes(), b"1", b"k", b"t"],
        ":0\r\n",
    );
    p.same("EXISTS k");
    p.finish()
}

impl Pair {
    /// Other connections to the same two servers.
    pub(super) fn second(&self) -> Pair {
        Pair {
            redis: RespConn::connect(self.redis_addr),
            lockbox: RespConn::connect(self.lockbox_addr),
            lockbox_addr: self.lockbox_addr,
            redis_addr: self.redis_addr,
            group: self.group,
            mismatches: Vec::new(),
        }
    }
}

pub(super) fn no_lua_text() -> String {
    format!(
        "lockbox runs no Lua: only its built-in lock scripts are accepted ({})",
        scripts::SUPPORTED
    )
}

pub(super) fn unknown_and_arity(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "unknown commands");
    for line in ["FOO", "FOO a", "foo a b c", "FOO '' x", "NOSUCHCOMMAND a b"] {
        p.same(line);
    }
    // Too few and too many arguments for every command of the dialect.
    for cmd in [
        "SET", "GET", "DEL", "UNLINK", "EXISTS", "PEXPIRE", "EXPIRE", "PTTL", "TTL", "TYPE",
        "KEYS", "SCAN", "HSET", "HMSET", "HGET", "HMGET", "HGETALL", "EVAL", "EVALSHA", "SCRIPT",
        "PING", "ECHO", "SELECT", "CLIENT", "AUTH",
    ] {
        p.same(cmd);
        if cmd != "EVAL" {
            p.same(&format!("{cmd} 0 0 0 0 0 0 0")); // (EVAL: Lua's compile error)
        }
        p.same(&format!("{} a", cmd.to_lowercase()));
    }
    p.same("EVAL x -1");
    p.same("EVAL x 2 k");
    p.same("EVAL x abc");
    p.same("EVALSHA 0123456789abcdef0123456789abcdef01234567 x");
    p.same("EVALSHA 0123456789abcdef0123456789abcdef01234567 2 k");
    p.on_new_connections(&["QUIT a b"]);
    let long = "x".repeat(300);
    p.same(&format!("FOO {long} b"));
    p.same(&format!("{long} a"));
    p.same_args(&[b"FOO", b"a\r\nb", b"c"]);
    p.same_args(&[b""]);
    // Commands Redis has and the dialect does not: unknown here (docs/redis.md).
    p.differs(
        "INCR k",
        "-ERR unknown command 'INCR', with args beginning with: 'k' \r\n",
    );
    p.differs(
        "MULTI",
        "-ERR unknown command 'MULTI', with args beginning with: \r\n",
    );
    p.differs(
        "MGET a b",
        "-ERR unknown command 'MGET', with args beginning with: 'a' 'b' \r\n",
    );
    p.differs("COMMAND", "*0\r\n");
    p.differs("COMMAND DOCS", "*0\r\n");
    // The key limits.
    let big = "v".repeat(1025);
    p.differs(
        &format!("SET k {big}"),
        "-ERR value is too long for a lock key (most 1024 bytes)\r\n",
    );
    p.differs(
        &format!("HSET k f {big}"),
        "-ERR value is too long for a lock key (most 1024 bytes)\r\n",
    );
    let fields: Vec<String> = (0..17).map(|i| format!("f{i} v")).collect();
    p.differs(
        &format!("HSET h {}", fields.join(" ")),
        "-ERR too many fields for a lock key (most 16)\r\n",
    );
    let long_key = "k".repeat(256);
    p.differs(
        &format!("SET {long_key} v"),
        "-ERR key is too long for a lock name (most 255 bytes once escaped)\r\n",
    );
    p.finish()
}
