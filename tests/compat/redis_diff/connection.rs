//! Connection commands, and RESP3 after `HELLO 3`.

use super::*;

pub(super) fn connection(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "connection");
    for line in [
        "PING",
        "PING hello",
        "ping",
        "PING a b",
        "ECHO hi",
        "ECHO ''",
        "ECHO",
        "ECHO a b",
        "SELECT 0",
        "SELECT 16",
        "SELECT -1",
        "SELECT x",
        "SELECT -0",
        "SELECT 00",
        "SELECT",
        "SELECT 0 0",
        "CLIENT GETNAME",
        "CLIENT SETNAME worker-1",
        "CLIENT GETNAME",
        "CLIENT SETNAME ''",
        "CLIENT GETNAME",
        "CLIENT SETNAME",
        "CLIENT SETNAME a b",
        "CLIENT GETNAME x",
        "CLIENT FOO",
        "CLIENT",
        "client getname",
    ] {
        p.same(line);
    }
    p.same_args(&[b"CLIENT", b"SETNAME", b"a b"]);
    p.same_args(&[b"CLIENT", b"SETNAME", b"a\nb"]);
    p.same_args(&[b"CLIENT", b"GETNAME"]);
    p.same_args(&[b"PING", b"a\r\nb"]);
    let name = "n".repeat(64);
    p.same(&format!("CLIENT SETNAME {name}"));
    p.same("CLIENT GETNAME");
    p.differs(
        &format!("CLIENT SETNAME {name}x"),
        "-ERR client name is too long (most 64 bytes)\r\n",
    );
    // Documented differences: CLIENT SETINFO as Redis 7.2 has it (redis-py sends it
    // and ignores an error), and one database.
    p.differs("CLIENT SETINFO LIB-NAME redis-py", "+OK\r\n");
    p.differs("CLIENT SETINFO LIB-VER 8.1.0", "+OK\r\n");
    p.differs(
        "CLIENT SETINFO LIB-NAME",
        "-ERR wrong number of arguments for 'client|setinfo' command\r\n",
    );
    p.differs("SELECT 1", "-ERR DB index is out of range\r\n");
    p.differs("SELECT 15", "-ERR DB index is out of range\r\n");
    // QUIT: +OK, then the connection closes.
    p.same("QUIT");
    let (r, l) = (p.redis.reply(), p.lockbox.reply());
    if !(r.is_empty() && l.is_empty()) {
        p.note(format!(
            "after QUIT: redis {} lockbox {}",
            show(&r),
            show(&l)
        ));
    }
    p.finish()
}

pub(super) fn resp3(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "RESP3");
    for line in [
        "HELLO 4",
        "HELLO 1",
        "HELLO x",
        "HELLO -0",
        "HELLO 3 FOO",
        "HELLO 3 SETNAME",
        "HELLO 3 AUTH default",
        "HELLO 3 AUTH other x",
        "AUTH x",
        "AUTH other x",
        "AUTH Default x",
        "AUTH default x",
    ] {
        p.same(line);
    }
    for line in [
        "HELLO",
        "HELLO 2",
        "HELLO 3",
        "HELLO 3 SETNAME conn-a",
        "HELLO 2 AUTH default x",
        "hello 3 setname conn-b",
    ] {
        let w = words(line);
        let args: Vec<&[u8]> = w.iter().map(Vec::as_slice).collect();
        let (rr, ll) = p.both(&args);
        let (rm, lm) = (hello_masked(&rr), hello_masked(&ll));
        if rm != lm {
            p.note(format!("{line}: redis {rm:?} lockbox {lm:?}"));
        }
    }
    for line in [
        "CLIENT GETNAME",
        "GET missing",
        "SET k v",
        "SET k v NX",
        "SET k w XX GET",
        "SET n v NX GET",
        "HSET h f v g w",
        "HGET h nope",
        "HMGET h f nope",
        "HGETALL h",
        "HGETALL missing",
        "PTTL k",
        "SCAN 0 MATCH nothing*",
        "CLIENT SETNAME ''",
        "CLIENT GETNAME",
        "PING",
        "ECHO x",
        "EXISTS k h",
        "TYPE h",
        "DEL k h",
    ] {
        p.same(line);
    }
    p.same_sorted("KEYS *");
    // Back to RESP2.
    let (rr, ll) = p.both(&[b"HELLO", b"2"]);
    if hello_masked(&rr) != hello_masked(&ll) {
        p.note(format!(
            "HELLO 2: redis {} lockbox {}",
            show(&rr),
            show(&ll)
        ));
    }
    p.same("GET missing");
    p.same("HGETALL missing");
    p.finish()
}
