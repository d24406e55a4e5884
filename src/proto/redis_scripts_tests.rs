//! Tests of the script catalogue: SHA1s against the texts and the docs, lookups by SHA1
//! and by text, variants, the alias ring, and argument binding.

use super::*;
use crate::proto::resp::{self, Args, Limits, Parsed};

/// Runs `f` on the request `args` encoded as a RESP array and parsed back.
fn with_request<R>(args: &[&[u8]], f: impl FnOnce(&Request<'_>) -> R) -> R {
    let mut buf = Vec::new();
    resp::array(&mut buf, args.len());
    for a in args {
        resp::bulk(&mut buf, a);
    }
    let mut store = Args::new();
    match resp::parse(&buf, &Limits::default(), &mut store) {
        Parsed::Request(req, used) => {
            assert_eq!(used, buf.len());
            f(&req)
        }
        other => panic!("did not parse: {other:?}"),
    }
}

fn script(name: &str) -> &'static Script {
    CATALOGUE
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no script {name}"))
}

fn error_text(e: ScriptError) -> String {
    let mut out = Vec::new();
    e.write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn every_sha1_is_the_sha1_of_its_text() {
    for s in &CATALOGUE {
        let mut hex = Vec::new();
        push_sha1_hex(&mut hex, &sha1_of(s.text.as_bytes()));
        assert_eq!(std::str::from_utf8(&hex).unwrap(), s.sha1_hex, "{}", s.name);
        assert_eq!(
            parse_sha1_hex(s.sha1_hex.as_bytes()),
            Some(s.sha1),
            "{}",
            s.name
        );
    }
    for (i, a) in CATALOGUE.iter().enumerate() {
        for b in &CATALOGUE[i + 1..] {
            assert_ne!(a.sha1, b.sha1, "{} and {}", a.name, b.name);
        }
    }
}

/// The SHA1s redis-server 7.0 answered to SCRIPT LOAD of each client's scripts.
#[test]
fn sha1s_match_what_redis_reported() {
    let reported = [
        (
            "dist-lock createLock",
            "68c369c9caadc07bd3c92dfbf3f41b7c6d2b035d",
        ),
        (
            "dist-lock deleteLock",
            "d21abcd8dbaac30fe46fd7c5d03779ac14e09182",
        ),
        (
            "dist-lock extendLock",
            "7d26418ef39fdae69592a6b43f82fea7b05db06e",
        ),
        (
            "redis-py Lock release",
            "c3f8721cbb97f72bc19e972846bd7aaf91901658",
        ),
        (
            "redis-py Lock extend",
            "a4e8783852e6b949f9ef3a97212805108459a890",
        ),
        (
            "redis-py Lock reacquire",
            "1cac51482acf5858da00f6d685d68f886cd6b6b2",
        ),
        (
            "redlock 4.1-4.2 lock",
            "e5a322e2634ef59a516e8ea150cb085afafee684",
        ),
        (
            "redlock 4.2 unlock",
            "0f0f23b9048b36752b5be114f357ba083449f908",
        ),
        (
            "redlock 4.2 extend",
            "ce46f80993d5dac20dd066eb301a4e37994bdbed",
        ),
    ];
    for (name, hex) in reported {
        assert_eq!(
            sha1_of(script(name).text.as_bytes()),
            parse_sha1_hex(hex.as_bytes()).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn the_docs_list_exactly_the_catalogue() {
    let doc = include_str!("../../docs/redis.md");
    let section = &doc[doc
        .find("## Scripts")
        .expect("docs/redis.md has a Scripts section")..];
    for s in &CATALOGUE {
        assert!(
            section.contains(s.sha1_hex),
            "docs/redis.md lacks {} ({})",
            s.sha1_hex,
            s.name
        );
    }
    // Every 40-hex word in the section is a catalogued SHA1.
    let mut listed = 0;
    for word in section.split(|c: char| !c.is_ascii_hexdigit()) {
        if word.len() == SHA1_HEX_LEN {
            listed += 1;
            let sha = parse_sha1_hex(word.as_bytes()).unwrap();
            assert!(
                by_sha1(&sha).is_some(),
                "docs/redis.md lists {word}, which is not catalogued"
            );
        }
    }
    assert_eq!(listed, CATALOGUE.len());
}

#[test]
fn lookup_by_sha1() {
    for s in &CATALOGUE {
        assert!(core::ptr::eq(by_sha1(&s.sha1).unwrap(), s));
        let upper = s.sha1_hex.to_ascii_uppercase();
        assert_eq!(
            parse_sha1_hex(upper.as_bytes()),
            Some(s.sha1),
            "EVALSHA takes either case"
        );
    }
    assert!(by_sha1(&[0; SHA1_LEN]).is_none());
    assert_eq!(
        parse_sha1_hex(b"68c369c9caadc07bd3c92dfbf3f41b7c6d2b035"),
        None,
        "39 digits"
    );
    assert_eq!(
        parse_sha1_hex(b"68c369c9caadc07bd3c92dfbf3f41b7c6d2b035dd"),
        None,
        "41 digits"
    );
    assert_eq!(
        parse_sha1_hex(b"g8c369c9caadc07bd3c92dfbf3f41b7c6d2b035d"),
        None,
        "not hex"
    );
}

#[test]
fn ops_of_the_clients_scripts() {
    let want = [
        ("dist-lock createLock", Op::HashCreate),
        ("dist-lock deleteLock", Op::HashCompareDelete),
        ("dist-lock extendLock", Op::HashComparePexpire),
        ("redis-py Lock release", Op::CompareDelete),
        ("redis-py Lock extend", Op::CompareExtend),
        ("redis-py Lock reacquire", Op::ComparePexpire),
        ("redlock 4.0 lock", Op::MultiSetIfNone),
        ("redlock 4.0-4.1 unlock", Op::CompareDelete),
        ("redlock 4.1 extend", Op::MultiCompareSet),
        ("compare-and-delete", Op::CompareDelete),
        ("compare-and-pexpire", Op::ComparePexpire),
    ];
    for (name, op) in want {
        assert_eq!(script(name).op, op, "{name}");
    }
}

#[test]
fn lookup_by_exact_text() {
    for s in &CATALOGUE {
        let (found, sha) = by_text(s.text.as_bytes()).unwrap();
        assert!(core::ptr::eq(found, s), "{}", s.name);
        assert_eq!(sha, s.sha1);
    }
    assert!(by_text(b"return 1").is_none());
    assert!(by_text(b"").is_none());
}

#[test]
fn variants_are_the_same_script() {
    // The unlock script as the Redis documentation prints it.
    let doc_cad = "if redis.call(\"get\",KEYS[1]) == ARGV[1]\nthen\n    return redis.call(\"del\",KEYS[1])\nelse\n    return 0\nend\n";
    // Single quotes, spaces after commas, a comment, CRLF line ends, tabs.
    let other_cad = "-- release\r\nif redis.call('get', KEYS[1]) == ARGV[1] then\r\n\treturn redis.call('del', KEYS[1]) -- ok\r\nelse return 0 end";
    let one_line_cap = "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"pexpire\",KEYS[1],ARGV[2]) else return 0 end";
    for (text, name) in [
        (doc_cad, "compare-and-delete"),
        (other_cad, "compare-and-delete"),
        (one_line_cap, "compare-and-pexpire"),
    ] {
        let (s, sha) =
            by_text(text.as_bytes()).unwrap_or_else(|| panic!("not recognised: {text:?}"));
        assert_eq!(s.name, name);
        assert_eq!(
            sha,
            sha1_of(text.as_bytes()),
            "the SHA1 is the variant's own"
        );
        assert_ne!(sha, s.sha1);
    }
    // redis-py's release re-indented is still redis-py's release.
    let reindented: String = script("redis-py Lock release")
        .text
        .lines()
        .map(|l| format!("  {}\n", l.trim()))
        .collect();
    assert_eq!(
        by_text(reindented.as_bytes()).unwrap().0.name,
        "redis-py Lock release"
    );
}

#[test]
fn different_scripts_are_not_variants() {
    let cad = script("compare-and-delete").text;
    for changed in [
        cad.replace("==", "~="),              // inverted comparison
        cad.replace("\"del\"", "\"unlink\""), // another command
        cad.replace("ARGV[1]", "ARGV[2]"),    // another argument
        cad.replace("return 0", "return0"),   // white space between words counts
        cad.replace("return 0", "return 1"),
        format!("{cad}\nredis.call(\"flushall\")"),
        cad.replace("\"get\"", "\"GET\""), // case is not folded
    ] {
        assert!(
            by_text(changed.as_bytes()).is_none(),
            "taken as a variant: {changed:?}"
        );
    }
    assert!(!same_script(b"a b", b"ab"));
    assert!(same_script(b"a  ( b )", b"a(b)"));
    assert!(same_script(b"x -- comment\ny", b"x y"));
    assert!(same_script(b"'s'", b"\"s\""));
}

#[test]
fn aliases_remember_variants_and_forget_the_oldest() {
    let mut aliases = Aliases::new();
    let s = script("compare-and-delete");
    // A catalogued text is not an alias.
    assert_eq!(aliases.load(s.text.as_bytes()).unwrap().1, s.sha1);
    assert!(aliases.is_empty());
    // A variant is remembered and then resolves by its own SHA1.
    let v0 = "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end".to_string();
    let (found, sha0) = aliases.load(v0.as_bytes()).unwrap();
    assert!(core::ptr::eq(found, s));
    assert_eq!(aliases.len(), 1);
    assert!(core::ptr::eq(aliases.resolve(&sha0).unwrap(), s));
    aliases.load(v0.as_bytes()).unwrap();
    assert_eq!(
        aliases.len(),
        1,
        "loading the same variant again does not add it twice"
    );
    // MAX_ALIASES more variants push the first one out.
    let mut shas = Vec::new();
    for i in 1..=MAX_ALIASES {
        let v = format!("{v0}{}", " ".repeat(i)); // trailing spaces: same script, new SHA1
        shas.push(aliases.load(v.as_bytes()).unwrap().1);
    }
    assert_eq!(aliases.len(), MAX_ALIASES);
    assert!(
        aliases.resolve(&sha0).is_none(),
        "the oldest variant is forgotten"
    );
    for sha in &shas {
        assert!(aliases.resolve(sha).is_some());
    }
    // Catalogued SHA1s always resolve; clear forgets variants only.
    aliases.clear();
    assert!(aliases.is_empty());
    assert!(aliases.resolve(&shas[0]).is_none());
    assert!(core::ptr::eq(aliases.resolve(&s.sha1).unwrap(), s));
    assert!(aliases.load(b"return redis.call('flushall')").is_none());
    assert!(aliases.is_empty());
}

/// The alias ring without the text memo: recognition from scratch on every load.
struct RefAliases {
    ring: Vec<(Sha1, &'static Script)>,
    next: usize,
}

impl RefAliases {
    fn resolve(&self, sha: &Sha1) -> Option<&'static Script> {
        by_sha1(sha).or_else(|| self.ring.iter().find(|(s, _)| s == sha).map(|(_, s)| *s))
    }

    fn load(&mut self, text: &[u8]) -> Option<(&'static Script, Sha1)> {
        let (script, sha) = by_text(text)?;
        if self.resolve(&sha).is_none() {
            if self.ring.len() < MAX_ALIASES {
                self.ring.push((sha, script));
            } else {
                self.ring[self.next] = (sha, script);
            }
            self.next = (self.next + 1) % MAX_ALIASES;
        }
        Some((script, sha))
    }
}

#[test]
fn aliases_with_the_text_memo_answer_as_recognition_from_scratch() {
    let base = "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";
    // Variants (trailing spaces change the SHA1, not the script), as many again longer
    // than the memo takes (their aliases push out those of remembered texts), catalogued
    // texts, a text that is no script, and the empty text.
    let short = |i: usize| format!("{base}{}", " ".repeat(i)).into_bytes();
    let long = |i: usize| format!("{base}{}", " ".repeat(MAX_MEMO_TEXT + i)).into_bytes();
    let longs: Vec<Vec<u8>> = (0..2 * MAX_ALIASES).map(long).collect();
    let mut texts: Vec<Vec<u8>> = (0..2 * MAX_ALIASES).map(short).collect();
    texts.push(script("compare-and-delete").text.as_bytes().to_vec());
    texts.push(script("redis-py Lock release").text.as_bytes().to_vec());
    texts.push(b"return redis.call('flushall')".to_vec());
    texts.push(Vec::new());
    for seed in 0..20 {
        let mut rng = crate::testrng::Rng::new(seed);
        let mut aliases = Aliases::new();
        let mut model = RefAliases {
            ring: Vec::new(),
            next: 0,
        };
        // A few texts repeated often (memo hits), texts the memo does not take often
        // (their aliases push out those of the repeated ones), any text now and then.
        let hot: Vec<usize> = (0..MAX_MEMO - 1)
            .map(|_| rng.below(texts.len() as u64) as usize)
            .collect();
        for step in 0..3_000 {
            let t = match rng.below(100) {
                0..60 => &texts[*rng.pick(&hot)],
                60..99 => rng.pick(&longs),
                _ => &texts[rng.below(texts.len() as u64) as usize],
            };
            if rng.chance(1) {
                aliases.clear();
                model.ring.clear();
                model.next = 0;
            }
            let got = aliases.load(t).map(|(s, sha)| (s.name, sha));
            let want = model.load(t).map(|(s, sha)| (s.name, sha));
            assert_eq!(got, want, "seed {seed} step {step}");
            assert_eq!(aliases.len(), model.ring.len(), "seed {seed} step {step}");
            let probe = sha1_of(&texts[rng.below(texts.len() as u64) as usize]);
            assert_eq!(
                aliases.resolve(&probe).map(|s| s.name),
                model.resolve(&probe).map(|s| s.name),
                "seed {seed} step {step}"
            );
        }
    }
}

#[test]
fn bind_dist_lock() {
    let create = script("dist-lock createLock");
    with_request(
        &[
            b"EVAL", b"<text>", b"1", b"lock:a", b"cid1", b"me", b"30000",
        ],
        |r| match bind(create, r).unwrap() {
            Call::HashCreate {
                key,
                id,
                owner,
                ttl_ms,
            } => {
                assert_eq!(
                    (key, id, owner, ttl_ms),
                    (&b"lock:a"[..], &b"cid1"[..], &b"me"[..], 30000)
                );
            }
            other => panic!("{other:?}"),
        },
    );
    with_request(&[b"EVAL", b"<text>", b"1", b"lock:a", b"cid1"], |r| {
        assert!(matches!(
            bind(script("dist-lock deleteLock"), r).unwrap(),
            Call::HashCompareDelete {
                key: b"lock:a",
                id: b"cid1"
            }
        ));
    });
    with_request(
        &[b"EVAL", b"<text>", b"1", b"lock:a", b"cid1", b"-5"],
        |r| {
            assert!(matches!(
                bind(script("dist-lock extendLock"), r).unwrap(),
                Call::HashComparePexpire { ttl_ms: -5, .. }
            ));
        },
    );
    with_request(
        &[b"EVAL", b"<text>", b"1", b"lock:a", b"cid1", b"me", b"soon"],
        |r| {
            assert_eq!(bind(create, r).unwrap_err(), ScriptError::NotInteger);
        },
    );
    with_request(
        &[
            b"EVAL",
            b"<text>",
            b"1",
            b"lock:a",
            b"cid1",
            b"me",
            b"4294967296",
        ],
        |r| {
            assert_eq!(
                bind(create, r).unwrap_err(),
                ScriptError::InvalidExpire("pexpire")
            );
        },
    );
    with_request(
        &[b"EVAL", b"<text>", b"1", b"lock:a", b"cid1", b"me"],
        |r| {
            assert_eq!(
                bind(create, r).unwrap_err(),
                ScriptError::WrongArity("dist-lock createLock")
            );
        },
    );
}

#[test]
fn bind_redis_py() {
    with_request(
        &[b"EVALSHA", b"sha", b"1", b"k", b"tok", b"1000", b"0"],
        |r| {
            assert!(matches!(
                bind(script("redis-py Lock extend"), r).unwrap(),
                Call::CompareExtend {
                    key: b"k",
                    value: b"tok",
                    ms: 1000,
                    replace: false
                }
            ));
        },
    );
    with_request(
        &[b"EVALSHA", b"sha", b"1", b"k", b"tok", b"1000", b"1"],
        |r| {
            assert!(matches!(
                bind(script("redis-py Lock extend"), r).unwrap(),
                Call::CompareExtend { replace: true, .. }
            ));
        },
    );
    with_request(&[b"EVALSHA", b"sha", b"1", b"k", b"tok", b"1000"], |r| {
        assert!(matches!(
            bind(script("redis-py Lock reacquire"), r).unwrap(),
            Call::ComparePexpire {
                key: b"k",
                value: b"tok",
                ttl_ms: 1000
            }
        ));
    });
    with_request(&[b"EVALSHA", b"sha", b"1", b"k", b"tok"], |r| {
        match bind(script("redis-py Lock release"), r).unwrap() {
            Call::CompareDelete { keys, value } => {
                assert_eq!(value, b"tok");
                assert_eq!(keys.iter().collect::<Vec<_>>(), vec![&b"k"[..]]);
            }
            other => panic!("{other:?}"),
        }
    });
    // KEYS[1] scripts take exactly one key.
    with_request(&[b"EVALSHA", b"sha", b"2", b"k", b"k2", b"tok"], |r| {
        assert_eq!(
            bind(script("redis-py Lock release"), r).unwrap_err(),
            ScriptError::WrongArity("redis-py Lock release")
        );
    });
    with_request(&[b"EVALSHA", b"sha", b"0", b"tok"], |r| {
        assert_eq!(
            bind(script("compare-and-delete"), r).unwrap_err(),
            ScriptError::WrongArity("compare-and-delete")
        );
    });
}

#[test]
fn bind_redlock() {
    with_request(
        &[b"EVALSHA", b"sha", b"3", b"a", b"b", b"a", b"v", b"2000"],
        |r| match bind(script("redlock 4.1-4.2 lock"), r).unwrap() {
            Call::MultiSetIfNone {
                keys,
                value,
                ttl_ms,
            } => {
                assert_eq!(keys.len(), 3);
                assert_eq!(keys.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"b", b"a"]);
                assert_eq!(keys.get(3), None);
                assert_eq!((value, ttl_ms), (&b"v"[..], 2000));
            }
            other => panic!("{other:?}"),
        },
    );
    with_request(&[b"EVALSHA", b"sha", b"1", b"a", b"v", b"0"], |r| {
        assert_eq!(
            bind(script("redlock 4.2 extend"), r).unwrap_err(),
            ScriptError::InvalidExpire("set")
        );
    });
    with_request(&[b"EVALSHA", b"sha", b"1", b"a", b"v"], |r| {
        assert_eq!(
            bind(script("redlock 4.2 extend"), r).unwrap_err(),
            ScriptError::WrongArity("redlock 4.2 extend")
        );
    });
    let many: Vec<Vec<u8>> = (0..=MAX_SCRIPT_KEYS)
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    let n = many.len().to_string();
    let mut args: Vec<&[u8]> = vec![b"EVALSHA", b"sha", n.as_bytes()];
    args.extend(many.iter().map(Vec::as_slice));
    args.push(b"v");
    with_request(&args, |r| {
        assert_eq!(
            bind(script("redlock 4.2 unlock"), r).unwrap_err(),
            ScriptError::TooManyKeys("redlock 4.2 unlock")
        );
    });
}

#[test]
fn bind_checks_numkeys_as_redis_does() {
    let s = script("compare-and-delete");
    with_request(&[b"EVAL", b"x", b"one", b"k", b"v"], |r| {
        assert_eq!(bind(s, r).unwrap_err(), ScriptError::NotInteger)
    });
    with_request(&[b"EVAL", b"x", b"-1", b"k", b"v"], |r| {
        assert_eq!(bind(s, r).unwrap_err(), ScriptError::NegativeKeys)
    });
    with_request(&[b"EVAL", b"x", b"3", b"k", b"v"], |r| {
        assert_eq!(bind(s, r).unwrap_err(), ScriptError::KeysOverArgs)
    });
    with_request(&[b"EVAL", b"x"], |r| {
        assert_eq!(bind(s, r).unwrap_err(), ScriptError::WrongArgCount("eval"))
    });
    // Extra arguments are ignored, as Lua ignores unused ARGV entries.
    with_request(&[b"EVAL", b"x", b"1", b"k", b"v", b"extra"], |r| {
        assert!(bind(s, r).is_ok())
    });
}

#[test]
fn error_replies() {
    let cases = [
        (
            ScriptError::NoScript,
            "-NOSCRIPT No matching script. Please use EVAL.\r\n",
        ),
        (
            ScriptError::NotInteger,
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            ScriptError::NegativeKeys,
            "-ERR Number of keys can't be negative\r\n",
        ),
        (
            ScriptError::KeysOverArgs,
            "-ERR Number of keys can't be greater than number of args\r\n",
        ),
        (
            ScriptError::InvalidExpire("set"),
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            ScriptError::WrongArgCount("evalsha"),
            "-ERR wrong number of arguments for 'evalsha' command\r\n",
        ),
        (
            ScriptError::WrongArity("x"),
            "-ERR wrong number of keys or arguments for built-in script 'x'\r\n",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(error_text(e), want);
    }
    let unknown = error_text(ScriptError::UnknownScript);
    let doc = include_str!("../../docs/redis.md");
    assert!(
        doc.contains(unknown.trim_end()),
        "docs/redis.md shows the unknown-script error as sent: {unknown}"
    );
}
