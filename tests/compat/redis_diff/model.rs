//! Random request sequences over a few keys, `redis-server` as the reference model.

use super::*;

/// Random requests per seed, and the seeds.
const MODEL_STEPS: usize = 1000;
const MODEL_SEEDS: [u64; 4] = [1, 2, 0x5eed, 0xdead_beef];

/// Random request sequences over three keys, sent to both: every reply the same bytes
/// (time left within [`SLACK_MS`]; `KEYS` in any order). Scripts run only on keys of their
/// type (Redis would fail inside the Lua, possibly half-way; lockbox answers 0).
#[test]
pub(super) fn random_sequences_answer_as_redis_server_does() {
    let Some(server) = reference("Redis dialect model test against redis-server", &[]) else {
        return;
    };
    let mut all = Vec::new();
    for seed in MODEL_SEEDS {
        let mut p = Pair::new(server.addr, "model");
        if seed % 2 == 0 {
            // RESP3 replies (nulls, maps) for half of the seeds.
            let (r, l) = p.both(&[b"HELLO", b"3"]);
            assert_eq!(hello_masked(&r), hello_masked(&l), "HELLO 3");
        }
        for s in CATALOGUE.iter() {
            p.same_args(&[b"SCRIPT", b"LOAD", s.text.as_bytes()]);
        }
        let mut rng = Rng::new(seed);
        for step in 0..MODEL_STEPS {
            let before = p.mismatches.len();
            let line = model_step(&mut p, &mut rng);
            if p.mismatches.len() > before {
                all.push(format!("seed {seed} step {step}: {line}"));
                all.append(&mut p.mismatches);
                break; // the states differ from here on
            }
        }
        all.extend(p.finish());
    }
    report(all);
}

/// One random request (run on both, checked); returns it as a line for the report.
pub(super) fn model_step(p: &mut Pair, rng: &mut Rng) -> String {
    const KEYS: [&str; 3] = ["a", "b", "c"];
    const VALUES: [&str; 2] = ["t1", "t2"];
    const FIELDS: [&str; 3] = ["f", "id", "owner"];
    let k = *rng.pick(&KEYS);
    let k2 = *rng.pick(&KEYS);
    let v = *rng.pick(&VALUES);
    let ms = || ["-1", "0", "100000", "150000", "250000"];
    let line = match rng.below(23) {
        0..=3 => {
            let mut l = format!("SET {k} {v}");
            match rng.below(4) {
                0 => l += " NX",
                1 => l += " XX",
                _ => {}
            }
            if rng.chance(25) {
                l += " GET";
            }
            match rng.below(4) {
                0 => l += &format!(" PX {}", rng.range(100_000, 300_000)),
                1 => l += &format!(" EX {}", rng.range(100, 300)),
                _ => {}
            }
            l
        }
        4 => format!("GET {k}"),
        5 => format!("DEL {k} {k2}"),
        6 => format!("EXISTS {k} {k2}"),
        7 => format!("PEXPIRE {k} {}", rng.pick(&ms())),
        8 => format!("EXPIRE {k} {}", rng.pick(&["-1", "0", "100", "200"])),
        9 => {
            let l = format!("PTTL {k}");
            p.close(&l, SLACK_MS);
            return l;
        }
        10 => {
            let l = format!("TTL {k}");
            p.close(&l, 1);
            return l;
        }
        11 => format!("TYPE {k}"),
        12 => format!("HSET {k} {} {v} {} x", rng.pick(&FIELDS), rng.pick(&FIELDS)),
        13 => format!("HGET {k} {}", rng.pick(&FIELDS)),
        14 => format!("HMGET {k} id owner f"),
        15 => format!("HGETALL {k}"),
        16 => {
            let l = format!("KEYS {}", rng.pick(&["*", "[ab]", "?", "[^a]*"]));
            p.same_sorted(&l);
            return l;
        }
        17 => format!(
            "PEXPIRE {k} {} {}",
            rng.range(100_000, 300_000),
            rng.pick(&["NX", "XX", "GT", "LT", "xx lt", "XX GT"])
        ),
        18 => {
            let opts = *rng.pick(&["", "COUNT 2", "MATCH [ab]", "TYPE hash", "TYPE string"]);
            p.scan_all(opts);
            return format!("full SCAN {opts}");
        }
        19 => format!("HMSET {k} {} {v}", rng.pick(&FIELDS)),
        _ => return model_script(p, rng, k, k2, v),
    };
    p.same(&line);
    line
}

/// A catalogued script on keys of its type (see [`random_sequences_answer_as_redis_server_does`]).
pub(super) fn model_script(p: &mut Pair, rng: &mut Rng, k: &str, k2: &str, v: &str) -> String {
    use scripts::{
        COMPARE_AND_DELETE, COMPARE_AND_PEXPIRE, DIST_LOCK_CREATE, DIST_LOCK_DELETE,
        DIST_LOCK_EXTEND, REDIS_PY_EXTEND, REDLOCK_4_1_LOCK, REDLOCK_4_2_EXTEND,
        REDLOCK_4_2_UNLOCK,
    };
    let (text, rest, hash) = match rng.below(9) {
        0 => (COMPARE_AND_DELETE, format!("1 {k} {v}"), false),
        1 => (COMPARE_AND_PEXPIRE, format!("1 {k} {v} 200000"), false),
        2 => (
            REDIS_PY_EXTEND,
            format!("1 {k} {v} 50000 {}", rng.below(2)),
            false,
        ),
        3 => (REDLOCK_4_1_LOCK, format!("2 {k} {k2} {v} 120000"), false),
        4 => (REDLOCK_4_2_EXTEND, format!("2 {k} {k2} {v} 220000"), false),
        5 => (REDLOCK_4_2_UNLOCK, format!("2 {k} {k2} {v}"), false),
        6 => (DIST_LOCK_CREATE, format!("1 {k} {v} o 130000"), true),
        7 => (DIST_LOCK_EXTEND, format!("1 {k} {v} 230000"), true),
        _ => (DIST_LOCK_DELETE, format!("1 {k} {v}"), true),
    };
    let s = script(text);
    let line = format!("EVALSHA <{}> {rest}", s.name);
    // The reference's types of the keys (a probe of the reference only).
    let n = usize::from(rest.starts_with('2')) + 1;
    for key in [k, k2].into_iter().take(n) {
        let t = p.redis.call(&[b"TYPE", key.as_bytes()]);
        let wrong: &[u8] = if hash { b"+string\r\n" } else { b"+hash\r\n" };
        if t == wrong {
            return format!("{line} (skipped: {key} is {})", show(&t));
        }
    }
    let w = words(&rest);
    let cmd: &[u8] = if rng.chance(50) { b"EVALSHA" } else { b"EVAL" };
    let first: &[u8] = if cmd == b"EVAL" {
        s.text.as_bytes()
    } else {
        s.sha1_hex.as_bytes()
    };
    let mut args: Vec<&[u8]> = vec![cmd, first];
    args.extend(w.iter().map(Vec::as_slice));
    p.same_args(&args);
    line
}
