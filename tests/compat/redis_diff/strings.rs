//! `SET`/`GET`, `DEL`/`EXISTS`/`TYPE` and deadlines (`PEXPIRE`, `TTL`).

use super::*;

pub(super) fn set_and_get(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "SET/GET");
    for line in [
        "SET k v",
        "GET k",
        "SET k v NX",
        "SET k w XX",
        "GET k",
        "SET missing v XX",
        "GET missing",
        "SET k v NX XX",
        "SET k v XX NX",
        "SET k v NX NX",
        "SET k v PX 100000 EX 100",
        "SET k v EX 100 PX 100000",
        "SET k v PX 100000 PX 100000",
        "SET k v PX abc PX 100000",
        "SET k v PX 100000 PX abc",
        "SET k v PX abc FOO",
        "SET k v PX 0 NX XX",
        "SET k v EX 10 EX 100",
        "SET k v EX 100 EX 0",
        "SET k v PX",
        "SET k v EX",
        "SET k v PX abc",
        "SET k v PX 1.5",
        "SET k v PX 01",
        "SET k v PX +1",
        "SET k v PX -0",
        "SET k v EX -0",
        "SET k v PX 0",
        "SET k v EX 0",
        "SET k v PX -1",
        "SET k v EX -1",
        "SET k v PX -9223372036854775808",
        "SET k v PX 9223372036854775807",
        "SET k v PX 9223372036854775808",
        "SET k v EX 9223372036854776",
        "SET k v EX 9223372036854775807",
        "SET k v FOO",
        "SET k v PX 100000 FOO",
        "SET k",
        "SET",
        "GET",
        "GET k k",
        "SET k v GET",
        "SET k w GET NX",
        "GET k",
        "SET fresh v GET NX",
        "SET fresh2 v GET XX",
        "SET k x GET GET",
        "set k y px 100000 nx",
        "sEt k y Px 100000 xX gEt",
        "SET k v",
        "PTTL k",
        "SET e ''",
        "GET e",
        "SET '' empty-key",
        "GET ''",
        "EXISTS ''",
    ] {
        p.same(line);
    }
    p.close("PTTL k", 0);
    p.setup("SET k v PX 100000");
    p.close("PTTL k", SLACK_MS);
    p.setup("SET k v XX");
    p.same("PTTL k"); // SET without PX/EX drops the deadline, as Redis
    p.setup("SET k v EX 100");
    p.close("TTL k", 1);
    p.setup("SET k v");
    // Binary values and keys, CR LF and NUL included.
    p.same_args(&[b"SET", b"b\r\n\0k", b"v\r\n\0\xff"]);
    p.same_args(&[b"GET", b"b\r\n\0k"]);
    p.same_args(&[b"SET", b"k", b"v", b"PX", b" 1"]);
    p.same_args(&[b"SET", b"k", b"v", b"PX", b"1 "]);
    p.same_args(&[b"SET", b"k", b"v", b"PX", b""]);
    // A hash under SET.
    p.setup("HSET h f v");
    p.same("GET h");
    p.same("SET h v GET");
    p.same("SET h v NX");
    p.same("TYPE h");
    p.same("SET h v");
    p.same("TYPE h");
    p.same("GET h");
    // Documented differences: deadlines past 2^32-1 ms, and the absolute/keep options.
    p.differs(
        "SET k v PX 4294967296",
        "-ERR invalid expire time in 'set' command\r\n",
    );
    p.differs(
        "SET k v EX 4294968",
        "-ERR invalid expire time in 'set' command\r\n",
    );
    p.same("SET k v PX 4294967295");
    p.differs("SET k v KEEPTTL", "-ERR syntax error\r\n");
    p.differs("SET k v EXAT 99999999999", "-ERR syntax error\r\n");
    p.differs("SET k v PXAT 99999999999999", "-ERR syntax error\r\n");
    p.finish()
}

pub(super) fn del_exists_type(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "DEL/EXISTS/TYPE");
    for line in [
        "SET a 1",
        "SET b 2",
        "HSET h f v",
        "EXISTS a",
        "EXISTS a b c a",
        "EXISTS c",
        "EXISTS a h",
        "EXISTS",
        "TYPE a",
        "TYPE h",
        "TYPE c",
        "TYPE",
        "TYPE a b",
        "DEL",
        "DEL c",
        "DEL a c a",
        "EXISTS a",
        "DEL b h",
        "EXISTS a b h",
        "UNLINK a",
        "SET a 1",
        "UNLINK a a",
        "UNLINK",
    ] {
        p.same(line);
    }
    p.finish()
}

pub(super) fn expire_and_ttl(r: SocketAddr) -> Vec<String> {
    let mut p = Pair::new(r, "PEXPIRE/EXPIRE/PTTL/TTL");
    for line in [
        "PEXPIRE missing 100000",
        "EXPIRE missing 100",
        "PTTL missing",
        "TTL missing",
        "SET k v",
        "PTTL k",
        "TTL k",
        "PEXPIRE k 100000",
    ] {
        p.same(line);
    }
    p.close("PTTL k", SLACK_MS);
    p.close("TTL k", 1);
    p.same("EXPIRE k 200");
    p.close("TTL k", 1);
    p.close("PTTL k", SLACK_MS);
    for line in [
        "PEXPIRE k",
        "PEXPIRE",
        "EXPIRE k",
        "PTTL",
        "PTTL k k",
        "TTL",
        "TTL k k",
        "PEXPIRE k abc",
        "PEXPIRE k 1.5",
        "PEXPIRE k 01",
        "PEXPIRE k +5",
        "PEXPIRE k -0",
        "EXPIRE k -0",
        "PEXPIRE k 9223372036854775807",
        "PEXPIRE k 9223372036854775808",
        "EXPIRE k 9223372036854775",
        "EXPIRE k 9223372036854775807",
        "EXPIRE k -9223372036854775",
        "TTL k",
        "PEXPIRE k 0",
        "EXISTS k",
        "SET k v",
        "PEXPIRE k -5",
        "EXISTS k",
        "SET k v",
        "EXPIRE k -1",
        "EXISTS k",
        "HSET h f v",
        "PEXPIRE h 100000",
    ] {
        p.same(line);
    }
    p.close("PTTL h", SLACK_MS);
    p.same("HSET h g w"); // a write to a field keeps the deadline
    p.close("PTTL h", SLACK_MS);
    p.same("HMSET h g x");
    p.close("PTTL h", SLACK_MS);
    p.same("PEXPIRE h 0");
    p.same("HGETALL h");
    // SET over a hash with a deadline: a string without one.
    p.setup("HSET h f v");
    p.setup("PEXPIRE h 100000");
    p.same("SET h v");
    p.same("PTTL h");
    p.same("TYPE h");
    // Keys past their deadline are gone for every command.
    for line in [
        "SET gone1 v PX 50",
        "HSET gone2 f v",
        "PEXPIRE gone2 50",
        "SET stays v PX 100000",
    ] {
        p.same(line);
    }
    std::thread::sleep(Duration::from_millis(300));
    for line in [
        "GET gone1",
        "EXISTS gone1 gone2 stays",
        "PTTL gone1",
        "TTL gone2",
        "TYPE gone2",
        "HGETALL gone2",
        "DEL gone1 gone2",
        "SET gone1 w NX",
        "PEXPIRE gone2 100",
    ] {
        p.same(line);
    }
    p.same_sorted("KEYS gone*");
    p.setup("SET k v");
    p.same("PEXPIRE k 4294967295");
    p.close("PTTL k", SLACK_MS);
    // The options: which deadline may change, in which order errors come.
    p.setup("SET o v");
    for line in [
        "PEXPIRE o 100000 XX",
        "PEXPIRE o 100000 GT",
        "PTTL o",
        "PEXPIRE o 100000 NX NX",
        "PEXPIRE o 100000 nx",
        "PEXPIRE o 100000 NX",
        "PEXPIRE o 50000 NX",
        "PEXPIRE o 200000 XX",
        "PEXPIRE o 150000 GT",
        "PEXPIRE o 300000 gt",
        "PEXPIRE o 400000 LT",
        "PEXPIRE o 50000 lt",
        "PEXPIRE o 60000 XX LT",
        "PEXPIRE o 60000 XX GT",
        "EXPIRE o 100 NX GT",
        "EXPIRE o 100 NX XX",
        "EXPIRE o 100 NX LT",
        "EXPIRE o 100 GT LT",
        "EXPIRE o 100 XX GT LT",
        "EXPIRE o 100 FOO",
        "EXPIRE o abc FOO",
        "EXPIRE o abc NX",
        "EXPIRE o 9223372036854775807 NX",
        "PEXPIRE missing 100 NX",
        "PEXPIRE missing 100 GT",
        "PEXPIRE o 0 GT",
        "EXISTS o",
        "PEXPIRE o -1 LT",
        "EXISTS o",
        "SET o v",
        "PEXPIRE o -1 NX",
        "EXISTS o",
        "SET o v",
        "PEXPIRE o 0 LT",
        "EXISTS o",
    ] {
        p.same(line);
    }
    p.setup("SET o v PX 100000");
    p.same("PEXPIRE o 40000 LT");
    p.close("PTTL o", SLACK_MS);
    p.same("EXPIRE o 200 GT");
    p.close("TTL o", 1);
    p.same_args(&[b"PEXPIRE", b"o", b"1", b"a\r\nb"]);
    // Documented differences: deadlines past 2^32-1 ms.
    p.differs(
        "PEXPIRE k 4294967296",
        "-ERR invalid expire time in 'pexpire' command\r\n",
    );
    p.differs(
        "EXPIRE k 4294968",
        "-ERR invalid expire time in 'expire' command\r\n",
    );
    p.finish()
}
