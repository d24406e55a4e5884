//! Hardening, hostile input (fuzz-style).
//!
//! - The parser `lockbox::proto::native::parse` is fed seeded random bytes, structured
//!   lines built from a small grammar (with exactly one known defect or none, so the
//!   expected answer is known), truncated and bit-flipped lines, control bytes, invalid
//!   UTF-8 and huge numbers: it never panics, and its answer matches the spec.
//! - A live server gets the same kinds of lines pipelined in batches, each non-blank line
//!   with a unique id: every one is answered by exactly one final line carrying its id
//!   (or `*` when the id is unreadable), while other clients cycle LOCK/INSPECT/UNLOCK on
//!   a contended lock and must see correct replies throughout.
//! - Oversized lines: `ERR line_too_long`, the connection closes, its locks are released,
//!   nobody else notices.
//!
//! Seeded: `LOCKBOX_FUZZ_SEED=<n>` replays a run; `LOCKBOX_FUZZ_SCALE=<percent>` scales
//! the number of cases (default 100).

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_err, ok_token, start, start_with, Client, Rng};
use lockbox::config::Config;
use lockbox::proto::native::{parse, valid_id, ErrorCode, Request, Verb};
use lockbox::table::Mode;

// ---------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------

fn seed() -> u64 {
    let s = std::env::var("LOCKBOX_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x10C4_B0C5_F022);
    eprintln!("fuzz seed {s} (replay with LOCKBOX_FUZZ_SEED={s})");
    s
}

/// `n` scaled by `LOCKBOX_FUZZ_SCALE` percent (at least 1).
fn scaled(n: usize) -> usize {
    let pct: usize = std::env::var("LOCKBOX_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    (n * pct / 100).max(1)
}

// ---------------------------------------------------------------------------
// Line generator: a small grammar of the spec, with at most one known defect
// ---------------------------------------------------------------------------

/// What `parse` must answer for a generated line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// Blank line: `Ok(None)`.
    Blank,
    /// The id cannot be read: error with no id, `bad_request`.
    Star,
    /// An error with the line's id and this code.
    Err(&'static str),
    /// A request equal to this.
    Ok(Owned),
}

/// An owned mirror of `Request`, to compare against what `parse` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Acquire {
        name: Vec<u8>,
        exclusive: bool,
        max: u32,
        wait: Option<u32>,
        hold: Option<u32>,
        queue: Option<u32>,
    },
    Unlock {
        name: Vec<u8>,
        token: Option<u64>,
    },
    Extend {
        name: Vec<u8>,
        token: u64,
        hold: u32,
    },
    Cancel(Vec<u8>),
    Inspect(Vec<u8>),
    List(Vec<u8>),
    Name(Vec<u8>),
    Auth(Vec<u8>),
    Plain(Verb),
    /// `detached=1` (never generated here: any appearance is a mismatch).
    Detached(Vec<u8>),
}

fn owned(r: &Request) -> Owned {
    match *r {
        Request::Acquire(a) => {
            let (exclusive, max) = match a.mode {
                Mode::Exclusive => (true, 0),
                Mode::Shared { max } => (false, max),
            };
            Owned::Acquire {
                name: a.name.to_vec(),
                exclusive,
                max,
                wait: a.wait,
                hold: a.hold,
                queue: a.queue,
            }
        }
        Request::AcquireDetached(a) => Owned::Detached(a.name.to_vec()),
        Request::Unlock { name, token } => Owned::Unlock {
            name: name.to_vec(),
            token,
        },
        Request::Extend { name, token, hold } => Owned::Extend {
            name: name.to_vec(),
            token,
            hold,
        },
        Request::Cancel { rid } => Owned::Cancel(rid.to_vec()),
        Request::Inspect { name } => Owned::Inspect(name.to_vec()),
        Request::List { prefix } => Owned::List(prefix.to_vec()),
        Request::Name { name } => Owned::Name(name.to_vec()),
        Request::Auth { secret } => Owned::Auth(secret.to_vec()),
        Request::Reset => Owned::Plain(Verb::Reset),
        Request::Whoami => Owned::Plain(Verb::Whoami),
        Request::Clients => Owned::Plain(Verb::Clients),
        Request::Stats => Owned::Plain(Verb::Stats),
        Request::Ping => Owned::Plain(Verb::Ping),
        Request::Quit => Owned::Plain(Verb::Quit),
    }
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-";

fn blanks(rng: &mut Rng) -> Vec<u8> {
    (0..rng.range_usize(1, 3))
        .map(|_| if rng.chance(70) { b' ' } else { b'\t' })
        .collect()
}

fn gen_id(rng: &mut Rng) -> Vec<u8> {
    let n = if rng.chance(5) {
        32
    } else {
        rng.range_usize(1, 8)
    };
    (0..n).map(|_| *rng.pick(ID_CHARS)).collect()
}

/// A token that is not a valid request id (and has no blank in it).
fn gen_bad_id(rng: &mut Rng) -> Vec<u8> {
    let mut id = gen_id(rng);
    match rng.below(5) {
        0 => id = (0..33).map(|_| *rng.pick(ID_CHARS)).collect(),
        1 => {
            let at = rng.range_usize(0, id.len());
            id.insert(at, *rng.pick(b"#/,=()!?*'\"\\{}[]@$%^&~`+;<>|"));
        }
        2 => id.extend_from_slice("é".as_bytes()),
        3 => id.push(0xff), // invalid UTF-8
        _ => {
            let at = rng.range_usize(0, id.len());
            id.insert(at, *rng.pick(&[0x00u8, 0x01, 0x07, 0x0b, 0x1b, 0x7f])); // a control byte
        }
    }
    id.retain(|&b| b != b' ' && b != b'\t' && b != b'\n');
    if valid_id(&id) || id.is_empty() {
        b"a#b".to_vec()
    } else {
        id
    }
}

/// A valid lock name: bytes 0x21..=0x7E and 0x80..=0xFF (so also invalid UTF-8).
fn gen_name(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = match rng.below(10) {
        0 => max,
        1 => rng.range_usize(1, max),
        _ => rng.range_usize(1, 12.min(max)),
    };
    (0..n)
        .map(|_| {
            if rng.chance(85) {
                rng.range_usize(0x21, 0x7e) as u8
            } else {
                rng.range_usize(0x80, 0xff) as u8
            }
        })
        .collect()
}

/// A name token that breaks the name rules (no blank, no `\n`, no `\r`).
fn gen_bad_name(rng: &mut Rng, max: usize) -> Vec<u8> {
    if rng.chance(30) {
        return vec![b'n'; max + 1 + rng.range_usize(0, 3)];
    }
    let mut name = gen_name(rng, max.min(40));
    let bad = *rng.pick(&[0x00u8, 0x01, 0x07, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f]);
    let at = rng.range_usize(0, name.len());
    name.insert(at, bad);
    name
}

/// A number token whose value is known: (text, value) with leading zeros sometimes.
fn gen_number(rng: &mut Rng, max: u64) -> (Vec<u8>, u64) {
    let v = match rng.below(6) {
        0 => 0,
        1 => 1,
        2 => max,
        3 => rng.below(1000),
        _ => rng.next_u64() % max.saturating_add(1).max(1),
    };
    let mut text = v.to_string().into_bytes();
    if rng.chance(10) && text.len() < 18 {
        text.insert(0, b'0');
    }
    (text, v)
}

/// A number token that must be refused for a field whose largest value is `max`.
fn gen_bad_number(rng: &mut Rng, max: u64) -> Vec<u8> {
    let too_big = (u128::from(max) + 1).to_string();
    let choices: [Vec<u8>; 10] = [
        too_big.into_bytes(),
        b"99999999999999999999999".to_vec(),
        b"18446744073709551616".to_vec(),
        b"-1".to_vec(),
        b"+1".to_vec(),
        b"1e3".to_vec(),
        b"0x10".to_vec(),
        b"12a".to_vec(),
        "٣".as_bytes().to_vec(), // a non-ASCII digit
        vec![b'1', 0xff],
    ];
    rng.pick(&choices).clone()
}

fn verb_word(rng: &mut Rng, verb: Verb) -> Vec<u8> {
    verb.as_str()
        .bytes()
        .map(|b| {
            if rng.chance(50) {
                b.to_ascii_uppercase()
            } else {
                b
            }
        })
        .collect()
}

/// `key=value` options for LOCK/SHARE/EXTEND; returns tokens and the parsed values, or the
/// tokens with a single defect (then `bad` is true).
struct Opts {
    tokens: Vec<Vec<u8>>,
    max: Option<u32>,
    wait: Option<u32>,
    hold: Option<u32>,
    queue: Option<u32>,
    bad: bool,
}

fn gen_options(rng: &mut Rng, allowed: &[&'static str], defect: bool, live: bool) -> Opts {
    let mut o = Opts {
        tokens: Vec::new(),
        max: None,
        wait: None,
        hold: None,
        queue: None,
        bad: false,
    };
    let mut keys: Vec<&str> = allowed.iter().copied().filter(|_| rng.chance(50)).collect();
    if live {
        // Live lines must be answered at once and never expire: wait=0, no hold.
        keys.retain(|k| *k != "hold" && *k != "wait");
        if allowed.contains(&"wait") {
            keys.push("wait");
        }
    }
    for k in &keys {
        let (text, v) = gen_number(rng, u64::from(u32::MAX));
        let (text, v) = match *k {
            "max" if v == 0 => (b"1".to_vec(), 1),
            "wait" if live => (b"0".to_vec(), 0),
            _ => (text, v as u32),
        };
        let mut t = k.as_bytes().to_vec();
        t.push(b'=');
        t.extend_from_slice(&text);
        o.tokens.push(t);
        let slot = match *k {
            "max" => &mut o.max,
            "wait" => &mut o.wait,
            "hold" => &mut o.hold,
            _ => &mut o.queue,
        };
        *slot = Some(v);
    }
    // Any order.
    for i in (1..o.tokens.len()).rev() {
        let j = rng.range_usize(0, i);
        o.tokens.swap(i, j);
    }
    if defect {
        o.bad = true;
        let bad: Vec<u8> = match rng.below(6) {
            0 => {
                // An unknown key (or one this verb does not take).
                let k = *rng.pick(&["bogus", "timeout", "max", "w", "holdx", "queue_"]);
                let k = if allowed.contains(&k) { "nope" } else { k };
                format!("{k}=1").into_bytes()
            }
            1 => {
                let k = *rng.pick(allowed);
                let mut t = format!("{k}=").into_bytes();
                t.extend_from_slice(&gen_bad_number(rng, u64::from(u32::MAX)));
                t
            }
            2 => format!("{}=", rng.pick(allowed)).into_bytes(), // empty value
            3 => rng.pick(allowed).as_bytes().to_vec(),          // no '='
            4 if !o.tokens.is_empty() => {
                // A repeated option (same or different value).
                let t = rng.pick(&o.tokens).clone();
                if rng.chance(50) {
                    t
                } else {
                    let eq = t.iter().position(|&b| b == b'=').unwrap();
                    let mut t2 = t[..=eq].to_vec();
                    t2.extend_from_slice(b"7");
                    t2
                }
            }
            _ if allowed.contains(&"max") => b"max=0".to_vec(),
            _ => b"=5".to_vec(),
        };
        let at = rng.range_usize(0, o.tokens.len());
        o.tokens.insert(at, bad);
    }
    o
}

/// Builds one line from the grammar: returns the line (no line end) and what `parse`
/// must say. About half the lines have exactly one defect. With `live`, the line is fit
/// for a live server: `id` is used, acquisitions are `wait=0` without `hold`, no QUIT.
fn gen_structured(rng: &mut Rng, live: Option<&[u8]>) -> (Vec<u8>, Expect) {
    let defect = rng.chance(50);
    if !defect && live.is_none() && rng.chance(3) {
        let line = (0..rng.range_usize(0, 6))
            .map(|_| *rng.pick(b" \t"))
            .collect::<Vec<u8>>();
        return (line, Expect::Blank);
    }
    let bad_id = defect && live.is_none() && rng.chance(12);
    let id = match live {
        Some(id) => id.to_vec(),
        None if bad_id => gen_bad_id(rng),
        None => gen_id(rng),
    };
    // Everything after the id, as tokens.
    let mut toks: Vec<Vec<u8>> = Vec::new();
    let mut verbs = Verb::ALL.to_vec();
    if live.is_some() {
        verbs.retain(|v| *v != Verb::Quit);
    }
    let verb = *rng.pick(&verbs);
    // Defects on the verb itself come first: they win over everything after it.
    let expect_err = |code: ErrorCode| Expect::Err(code.as_str());
    let mut expect;
    if defect && !bad_id && rng.chance(8) {
        if rng.chance(40) {
            // Missing verb: the line is only the id.
            let mut line = id;
            if rng.chance(50) {
                line.extend_from_slice(&blanks(rng));
            }
            return (line, expect_err(ErrorCode::BadRequest));
        }
        const UNKNOWN: [&[u8]; 8] = [
            b"LOCKS",
            b"LOC",
            b"FOO",
            b"GET",
            b"PINGPING",
            b"L0CK",
            b"\x00",
            b"\xff\xfe",
        ];
        toks.push(rng.pick(&UNKNOWN).to_vec());
        toks.push(gen_name(rng, 20));
        expect = expect_err(ErrorCode::UnknownCommand);
    } else {
        toks.push(verb_word(rng, verb));
        let sub_defect = defect && !bad_id;
        expect = match verb {
            Verb::Lock | Verb::Share => {
                let allowed: &[&'static str] = if verb == Verb::Lock {
                    &["wait", "hold", "queue"]
                } else {
                    &["max", "wait", "hold", "queue"]
                };
                let which = if sub_defect { rng.below(3) } else { 9 };
                let name = match which {
                    0 => None,
                    1 => Some(gen_bad_name(rng, 255)),
                    _ => Some(gen_name(rng, 255)),
                };
                if let Some(n) = &name {
                    toks.push(n.clone());
                }
                let o = gen_options(rng, allowed, which == 2, live.is_some());
                // Without the name, an option would take the name's place: none then.
                if which != 0 {
                    toks.extend(o.tokens.iter().cloned());
                }
                match which {
                    0 => expect_err(ErrorCode::BadRequest),
                    1 => expect_err(ErrorCode::BadName),
                    2 => expect_err(ErrorCode::BadOption),
                    _ => Expect::Ok(Owned::Acquire {
                        name: name.unwrap(),
                        exclusive: verb == Verb::Lock,
                        max: o.max.unwrap_or(0),
                        wait: o.wait,
                        hold: o.hold,
                        queue: o.queue,
                    }),
                }
            }
            Verb::Unlock => {
                let name = gen_name(rng, 255);
                let (tt, token) = gen_number(rng, u64::MAX);
                let with_token = rng.chance(60);
                match if sub_defect { rng.below(4) } else { 9 } {
                    0 => expect_err(ErrorCode::BadRequest), // missing name
                    1 => {
                        toks.push(gen_bad_name(rng, 255));
                        expect_err(ErrorCode::BadName)
                    }
                    2 => {
                        toks.push(name);
                        toks.push(gen_bad_number(rng, u64::MAX));
                        expect_err(ErrorCode::BadOption)
                    }
                    3 => {
                        toks.push(name);
                        toks.push(tt);
                        toks.push(b"extra".to_vec());
                        expect_err(ErrorCode::BadRequest)
                    }
                    _ => {
                        toks.push(name.clone());
                        if with_token {
                            toks.push(tt);
                        }
                        Expect::Ok(Owned::Unlock {
                            name,
                            token: with_token.then_some(token),
                        })
                    }
                }
            }
            Verb::Extend => {
                let name = gen_name(rng, 255);
                let (tt, token) = gen_number(rng, u64::MAX);
                let (ht, hold) = gen_number(rng, u64::from(u32::MAX));
                let mut hold_tok = b"hold=".to_vec();
                hold_tok.extend_from_slice(&ht);
                match if sub_defect { rng.below(6) } else { 9 } {
                    0 => {
                        toks.push(name);
                        expect_err(ErrorCode::BadRequest) // missing token
                    }
                    1 => {
                        toks.push(name);
                        toks.push(gen_bad_number(rng, u64::MAX));
                        toks.push(hold_tok);
                        expect_err(ErrorCode::BadOption)
                    }
                    2 => {
                        toks.push(name);
                        toks.push(tt);
                        expect_err(ErrorCode::BadOption) // hold= is required
                    }
                    3 => {
                        toks.push(name);
                        toks.push(tt);
                        toks.push(hold_tok.clone());
                        toks.push(hold_tok);
                        expect_err(ErrorCode::BadOption) // repeated
                    }
                    4 => {
                        toks.push(name);
                        toks.push(tt);
                        toks.push(b"wait=5".to_vec());
                        expect_err(ErrorCode::BadOption) // not an EXTEND option
                    }
                    5 => {
                        toks.push(gen_bad_name(rng, 255));
                        toks.push(tt);
                        toks.push(hold_tok);
                        expect_err(ErrorCode::BadName)
                    }
                    _ => {
                        toks.push(name.clone());
                        toks.push(tt);
                        toks.push(hold_tok);
                        Expect::Ok(Owned::Extend {
                            name,
                            token,
                            hold: hold as u32,
                        })
                    }
                }
            }
            Verb::Cancel => {
                let rid = gen_id(rng);
                match if sub_defect { rng.below(3) } else { 9 } {
                    0 => expect_err(ErrorCode::BadRequest),
                    1 => {
                        toks.push(gen_bad_id(rng));
                        expect_err(ErrorCode::BadRequest)
                    }
                    2 => {
                        toks.push(rid);
                        toks.push(gen_id(rng));
                        expect_err(ErrorCode::BadRequest)
                    }
                    _ => {
                        toks.push(rid.clone());
                        Expect::Ok(Owned::Cancel(rid))
                    }
                }
            }
            Verb::Inspect | Verb::List | Verb::Name | Verb::Auth => {
                let max = if verb == Verb::Name { 64 } else { 255 };
                let arg = gen_name(rng, max);
                let optional = verb == Verb::List;
                match if sub_defect { rng.below(3) } else { 9 } {
                    0 if !optional => expect_err(ErrorCode::BadRequest),
                    1 if verb != Verb::Auth => {
                        toks.push(gen_bad_name(rng, max));
                        expect_err(ErrorCode::BadName)
                    }
                    _ if sub_defect => {
                        toks.push(arg);
                        toks.push(gen_name(rng, 8));
                        expect_err(ErrorCode::BadRequest)
                    }
                    _ => {
                        let arg = if optional && rng.chance(30) {
                            Vec::new()
                        } else {
                            arg
                        };
                        if !arg.is_empty() {
                            toks.push(arg.clone());
                        }
                        Expect::Ok(match verb {
                            Verb::Inspect => Owned::Inspect(arg),
                            Verb::List => Owned::List(arg),
                            Verb::Name => Owned::Name(arg),
                            _ => Owned::Auth(arg),
                        })
                    }
                }
            }
            _ => {
                if sub_defect {
                    toks.push(gen_name(rng, 10));
                    expect_err(ErrorCode::BadRequest)
                } else {
                    Expect::Ok(Owned::Plain(verb))
                }
            }
        };
    }
    if bad_id {
        expect = Expect::Star;
    }
    let mut line = Vec::new();
    if rng.chance(20) {
        line.extend_from_slice(&blanks(rng));
    }
    line.extend_from_slice(&id);
    for t in &toks {
        line.extend_from_slice(&blanks(rng));
        line.extend_from_slice(t);
    }
    if rng.chance(20) {
        line.extend_from_slice(&blanks(rng));
    }
    (line, expect)
}

/// Random bytes, biased towards the interesting ones.
fn gen_bytes(rng: &mut Rng, max_len: usize, newlines: bool) -> Vec<u8> {
    let n = rng.range_usize(0, max_len);
    (0..n)
        .map(|_| match rng.below(10) {
            0 => *rng.pick(b" \t\r\x00\x7f\xff\x80="),
            1 => rng.below(256) as u8,
            2 if newlines => b'\n',
            _ => rng.range_usize(0x21, 0x7e) as u8,
        })
        .filter(|&b| newlines || b != b'\n')
        .collect()
}

// ---------------------------------------------------------------------------
// Generic invariants of `parse`, for any input
// ---------------------------------------------------------------------------

fn blank_tokens(line: &[u8]) -> Vec<&[u8]> {
    line.split(|&b| b == b' ' || b == b'\t')
        .filter(|t| !t.is_empty())
        .collect()
}

const PARSE_CODES: [&str; 4] = ["bad_request", "unknown_command", "bad_name", "bad_option"];

/// Checks what holds for every input; returns an explanation on violation.
fn check_generic(line: &[u8]) -> Result<(), String> {
    let toks = blank_tokens(line);
    let res = parse(line);
    match (&res, toks.first()) {
        (Ok(None), None) => Ok(()),
        (_, None) => Err(format!("blank line not ignored: {res:?}")),
        (Ok(None), Some(_)) => Err("non-blank line answered as blank".into()),
        (Err(e), Some(first)) if !valid_id(first) => {
            if e.id.is_none() && e.code == ErrorCode::BadRequest {
                Ok(())
            } else {
                Err(format!(
                    "unreadable id must give `* ERR bad_request`: {e:?}"
                ))
            }
        }
        (Ok(Some(_)), Some(first)) if !valid_id(first) => {
            Err("line with an unreadable id was accepted".into())
        }
        (Err(e), Some(first)) => {
            if e.id != Some(*first) {
                return Err(format!("error reply id {:?} is not the line's id", e.id));
            }
            if !PARSE_CODES.contains(&e.code.as_str()) || e.text.is_empty() {
                return Err(format!(
                    "parse error with a non-parse code or no text: {e:?}"
                ));
            }
            Ok(())
        }
        (Ok(Some(l)), Some(first)) => {
            if l.id != *first {
                return Err(format!("request id {:?} is not the first token", l.id));
            }
            match toks.get(1) {
                Some(v) if v.eq_ignore_ascii_case(l.verb.as_str().as_bytes()) => Ok(()),
                v => Err(format!("verb {:?} parsed from token {v:?}", l.verb)),
            }
        }
    }
}

fn check_expected(line: &[u8], expect: &Expect) -> Result<(), String> {
    check_generic(line)?;
    let res = parse(line);
    let ok = match (expect, &res) {
        (Expect::Blank, Ok(None)) => true,
        (Expect::Star, Err(e)) => e.id.is_none(),
        (Expect::Err(code), Err(e)) => e.id.is_some() && e.code.as_str() == *code,
        (Expect::Ok(want), Ok(Some(l))) => owned(&l.request) == *want,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, parse gave {res:?}"))
    }
}

/// A line for a message (at most 200 bytes of it).
fn show(line: &[u8]) -> String {
    let cut = &line[..line.len().min(200)];
    let more = if line.len() > 200 { "..." } else { "" };
    format!("{:?}{more}", String::from_utf8_lossy(cut))
}

#[test]
fn parser_fuzz_never_panics_and_answers_per_spec() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let cases = scaled(200_000);
    let mut failures = Vec::new();
    let mut counts = HashMap::new();
    let started = Instant::now();
    for case in 0..cases {
        let kind = case % 5;
        let (line, expect) = match kind {
            // A grammar line with zero or one known defect.
            0 | 1 => {
                let (l, e) = gen_structured(&mut rng, None);
                (l, Some(e))
            }
            // Seeded random bytes (controls, NUL, DEL, invalid UTF-8, even newlines).
            2 => {
                let newlines = rng.chance(20);
                (gen_bytes(&mut rng, 300, newlines), None)
            }
            // A grammar line truncated anywhere.
            3 => {
                let (mut l, _) = gen_structured(&mut rng, None);
                l.truncate(rng.range_usize(0, l.len()));
                (l, None)
            }
            // A grammar line with a few bytes replaced by random ones.
            _ => {
                let (mut l, _) = gen_structured(&mut rng, None);
                for _ in 0..rng.range_usize(1, 3) {
                    if !l.is_empty() {
                        let at = rng.range_usize(0, l.len() - 1);
                        l[at] = rng.below(256) as u8;
                    }
                }
                (l, None)
            }
        };
        let outcome = std::panic::catch_unwind(|| match &expect {
            Some(e) => check_expected(&line, e),
            None => check_generic(&line),
        });
        let verdict = match outcome {
            Ok(r) => r,
            Err(_) => Err("parse panicked".to_string()),
        };
        if let Err(why) = verdict {
            if failures.len() < 20 {
                failures.push(format!("case {case}: {} -> {why}", show(&line)));
            }
        }
        let label = match parse(&line) {
            Ok(None) => "blank",
            Ok(Some(_)) => "ok",
            Err(e) if e.id.is_none() => "star",
            Err(_) => "err",
        };
        *counts.entry(label).or_insert(0usize) += 1;
    }
    eprintln!(
        "{cases} parser cases in {:?}: {counts:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} parser failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The generator must reach every outcome, or the test proves little.
    for label in ["blank", "ok", "star", "err"] {
        assert!(
            counts.get(label).copied().unwrap_or(0) > cases / 100,
            "too few {label} cases: {counts:?}"
        );
    }
}

#[test]
fn parser_edge_numbers_and_names() {
    let ok = |l: &str| match parse(l.as_bytes()) {
        Ok(Some(line)) => owned(&line.request),
        other => panic!("{l:?}: expected a request, got {other:?}"),
    };
    let code = |l: &[u8]| match parse(l) {
        Err(e) => e.code.as_str(),
        other => panic!("{:?}: expected an error, got {other:?}", show(l)),
    };
    assert_eq!(
        ok("a LOCK n wait=4294967295 hold=0 queue=4294967295"),
        Owned::Acquire {
            name: b"n".to_vec(),
            exclusive: true,
            max: 0,
            wait: Some(u32::MAX),
            hold: Some(0),
            queue: Some(u32::MAX),
        }
    );
    for bad in [
        "a LOCK n wait=4294967296",
        "a LOCK n hold=99999999999999999999999",
        "a LOCK n wait=18446744073709551616",
        "a LOCK n wait=",
        "a LOCK n wait=1 wait=1",
        "a LOCK n hold=1 hold=2",
        "a SHARE n max=0",
        "a SHARE n max=4294967296",
        "a UNLOCK n 18446744073709551616",
        "a UNLOCK n 99999999999999999999999",
        "a EXTEND n 1 hold=4294967296",
        "a EXTEND n 18446744073709551616 hold=1",
    ] {
        assert_eq!(code(bad.as_bytes()), "bad_option", "{bad:?}");
    }
    assert_eq!(
        ok("a UNLOCK n 18446744073709551615"),
        Owned::Unlock {
            name: b"n".to_vec(),
            token: Some(u64::MAX)
        }
    );
    let n255 = "x".repeat(255);
    assert_eq!(
        ok(&format!("a INSPECT {n255}")),
        Owned::Inspect(n255.into())
    );
    assert_eq!(
        code(format!("a INSPECT {}", "x".repeat(256)).as_bytes()),
        "bad_name"
    );
    // Invalid UTF-8 is fine in names (any byte but controls, space and DEL).
    assert_eq!(ok("a INSPECT \u{e9}"), Owned::Inspect("é".into()));
    assert_eq!(
        parse(b"a INSPECT \xff\xfe").map(|l| l.map(|l| owned(&l.request))),
        Ok(Some(Owned::Inspect(vec![0xff, 0xfe])))
    );
    for bad in [
        &b"a INSPECT x\x00y"[..],
        b"a INSPECT x\x7f",
        b"a INSPECT \x1b[0m",
    ] {
        assert_eq!(code(bad), "bad_name");
    }
    // Control bytes in the id: `*`.
    assert_eq!(parse(b"a\x00 PING").map_err(|e| e.id), Err(None));
}

// ---------------------------------------------------------------------------
// Live server
// ---------------------------------------------------------------------------

/// A raw line reader with its own timeout handling, for a connection whose replies are
/// not predictable line by line.
struct Lines {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Lines {
    fn connect(addr: SocketAddr) -> Lines {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Lines {
            stream,
            buf: Vec::new(),
        }
    }

    /// The next line (raw bytes, without `\n`), or an error text on timeout/EOF.
    fn next(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=p).collect();
                line.pop();
                return Ok(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "timed out waiting for a reply line (partial {})",
                    show(&self.buf)
                ));
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

/// What a live line must be answered with.
#[derive(Debug)]
enum LiveExpect {
    /// `<id> ERR <code> ...` (from the parser).
    Err(&'static str),
    /// A request of this verb: any non-parse-error final reply.
    Ok(Verb),
}

/// The final word of a reply to a request of `verb` (rows before it are allowed for the
/// multi-line verbs).
fn is_final(verb: Option<Verb>, word: &str) -> bool {
    match verb {
        Some(Verb::List | Verb::Clients | Verb::Stats) => word == "END" || word == "ERR",
        _ => true,
    }
}

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a reply line `<id> <word> <rest...>` fits a valid request of `verb` on the
/// live fuzz connection (whose acquisitions are all `wait=0`, so it never waits).
fn reply_fits(verb: Verb, word: &str, rest: &[&str]) -> bool {
    let err = |codes: &[&str]| word == "ERR" && rest.len() >= 2 && codes.contains(&rest[0]);
    match verb {
        Verb::Ping => word == "PONG" && rest.is_empty(),
        Verb::Lock => {
            (word == "OK" && rest.len() == 1 && is_num(rest[0]))
                || (word == "TIMEOUT" && rest.is_empty())
                || err(&["queue_full"])
        }
        Verb::Share => {
            (word == "OK" && rest.len() == 2 && is_num(rest[0]) && is_num(rest[1]))
                || (word == "TIMEOUT" && rest.is_empty())
                || err(&["queue_full"])
        }
        Verb::Unlock => (word == "OK" && rest.is_empty()) || err(&["not_held", "token_required"]),
        Verb::Extend => (word == "OK" && rest.is_empty()) || err(&["not_held"]),
        // Nothing ever waits on this connection.
        Verb::Cancel => err(&["not_waiting"]),
        Verb::Reset => word == "OK" && rest.len() == 2 && is_num(rest[0]) && rest[1] == "0",
        Verb::Inspect => word == "OK" && rest.first().is_some_and(|m| m.starts_with("mode=")),
        Verb::Name | Verb::Auth => word == "OK" && rest.is_empty(),
        Verb::Whoami => word == "OK" && rest.len() == 2,
        Verb::List | Verb::Clients | Verb::Stats => {
            (word == "END" && rest.len() == 1 && is_num(rest[0])) || Some(word) == row_word(verb)
        }
        Verb::Quit => false,
    }
}

fn row_word(verb: Verb) -> Option<&'static str> {
    match verb {
        Verb::List => Some("ITEM"),
        Verb::Clients => Some("CLIENT"),
        Verb::Stats => Some("STAT"),
        _ => None,
    }
}

/// One batch on the live fuzz connection: builds lines, sends them with a sentinel PING
/// and checks that each is answered by exactly one final line with its id.
fn live_batch(rng: &mut Rng, c: &mut Lines, batch: usize) -> Result<usize, String> {
    let mut expect: HashMap<Vec<u8>, LiveExpect> = HashMap::new();
    let mut stars = 0usize;
    // Start each batch clean, so LIST replies stay small.
    let reset = format!("b{batch}reset").into_bytes();
    expect.insert(reset.clone(), LiveExpect::Ok(Verb::Reset));
    let mut wire = reset;
    wire.extend_from_slice(b" RESET\n");
    let mut sent = 0;
    let n = rng.range_usize(20, 120);
    for i in 0..n {
        let id = format!("b{batch}n{i}").into_bytes();
        let mut line = match rng.below(10) {
            0..=5 => gen_structured(rng, Some(&id)).0,
            6 => {
                // An unreadable id: answered with `*`.
                let mut l = gen_bad_id(rng);
                l.extend_from_slice(b" PING");
                l
            }
            7 => (0..rng.range_usize(0, 4))
                .map(|_| *rng.pick(b" \t"))
                .collect(),
            _ => {
                // The id, then random bytes (controls, invalid UTF-8, no newline).
                let mut l = id.clone();
                l.push(b' ');
                l.extend_from_slice(&gen_bytes(rng, 200, false));
                l
            }
        };
        // What the server sees after it strips the line end (`\r\n` or `\n`).
        let add_cr = rng.chance(10);
        let seen = if add_cr {
            line.clone()
        } else {
            line.strip_suffix(b"\r").unwrap_or(&line).to_vec()
        };
        let fit = match parse(&seen) {
            Ok(None) => true,
            Err(e) if e.id.is_none() => {
                stars += 1;
                true
            }
            Err(e) => {
                expect.insert(e.id.unwrap().to_vec(), LiveExpect::Err(e.code.as_str()));
                true
            }
            Ok(Some(l)) => {
                // Only requests that are answered at once and leave no timer behind.
                let immediate = match l.request {
                    Request::Acquire(a) => a.wait == Some(0) && a.hold.is_none(),
                    Request::Quit => false,
                    _ => true,
                };
                if immediate && l.id == &id[..] {
                    expect.insert(id.clone(), LiveExpect::Ok(l.verb));
                }
                immediate && l.id == &id[..]
            }
        };
        if !fit {
            continue;
        }
        if add_cr {
            line.push(b'\r');
        }
        line.push(b'\n');
        wire.extend_from_slice(&line);
        sent += 1;
    }
    let sentinel = format!("b{batch}end");
    wire.extend_from_slice(format!("{sentinel} PING\n").as_bytes());
    c.stream
        .write_all(&wire)
        .map_err(|e| format!("write: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut finals: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut rows: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut got_stars = 0usize;
    loop {
        let line = c.next(deadline)?;
        let text = String::from_utf8_lossy(&line).into_owned();
        let mut words = text.split(' ');
        let id = words.next().unwrap_or("").as_bytes().to_vec();
        let word = words.next().unwrap_or("");
        if id == sentinel.as_bytes() {
            if word != "PONG" {
                return Err(format!("sentinel answered {text:?}"));
            }
            break;
        }
        if id == b"*" {
            if word != "ERR" || words.next() != Some("bad_request") {
                return Err(format!("`*` reply is not `* ERR bad_request`: {text:?}"));
            }
            got_stars += 1;
            continue;
        }
        let Some(want) = expect.get(&id) else {
            return Err(format!("reply with an id that was not sent: {text:?}"));
        };
        let verb = match want {
            LiveExpect::Err(code) => {
                if word != "ERR" || words.next() != Some(code) {
                    return Err(format!("expected `ERR {code}`, got {text:?}"));
                }
                None
            }
            LiveExpect::Ok(verb) => {
                let rest: Vec<&str> = words.collect();
                if !reply_fits(*verb, word, &rest) {
                    return Err(format!("a valid {verb:?} request got {text:?}"));
                }
                Some(*verb)
            }
        };
        if is_final(verb, word) {
            if word == "END" {
                let n = rows.get(&id).copied().unwrap_or(0);
                if !text.ends_with(&format!(" END {n}")) {
                    return Err(format!("{text:?} after {n} rows"));
                }
            }
            *finals.entry(id).or_insert(0) += 1;
        } else if verb.and_then(row_word) != Some(word) {
            return Err(format!("unexpected row {text:?} for {verb:?}"));
        } else if finals.contains_key(&id) {
            return Err(format!("row after the END line: {text:?}"));
        } else {
            *rows.entry(id).or_insert(0) += 1;
        }
    }
    if got_stars != stars {
        return Err(format!(
            "{stars} lines with unreadable ids, {got_stars} `*` replies"
        ));
    }
    for id in expect.keys() {
        let n = finals.get(id).copied().unwrap_or(0);
        if n != 1 {
            return Err(format!(
                "request {} got {n} final replies (want exactly 1)",
                show(id)
            ));
        }
    }
    Ok(sent)
}

/// Cycles LOCK/INSPECT/UNLOCK on one contended name until `stop`; checks every reply.
/// Returns the number of cycles.
fn cycler(addr: SocketAddr, me: usize, stop: Arc<AtomicBool>) -> usize {
    let mut c = Client::connect(addr);
    let label = format!("cycler{me}");
    assert_eq!(c.req(&format!("n NAME {label}")), "n OK");
    let mut last = 0u64;
    let mut cycles = 0;
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let id = format!("c{cycles}");
        let t = ok_token(&c.req(&format!("{id} LOCK live-cycle-lock wait=5000")), &id);
        assert!(t > last, "{label}: token {t} not above {last}");
        last = t;
        // The other cycler may wait (waiters 0 or 1); this one must be the owner.
        let ins = c.inspect("live-cycle-lock");
        let tail = format!(" token={t} owner={label}");
        assert!(
            ins.starts_with("mode=exclusive holders=1 waiters=") && ins.ends_with(&tail),
            "{label}: INSPECT while holding token {t}: {ins:?}"
        );
        let u = format!("u{cycles}");
        assert_eq!(
            c.req(&format!("{u} UNLOCK live-cycle-lock {t}")),
            format!("{u} OK")
        );
        assert_eq!(c.req("p PING"), "p PONG");
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{label}: one cycle took {:?}",
            t0.elapsed()
        );
        cycles += 1;
    }
    cycles
}

/// Pure garbage with newlines on one connection: every reply line starts with a
/// readable id or `*`. Ends with a sentinel PING (after a `\n` to end any partial line).
fn garbage(addr: SocketAddr, seed: u64, rounds: usize) {
    let mut rng = Rng::new(seed);
    let mut c = Lines::connect(addr);
    for r in 0..rounds {
        let mut wire = gen_bytes(&mut rng, 3000, true);
        // Never let a random line end the connection on purpose.
        let quits = wire.split(|&b| b == b'\n').any(|w| {
            let w = w.strip_suffix(b"\r").unwrap_or(w);
            matches!(parse(w), Ok(Some(l)) if l.verb == Verb::Quit)
        });
        if quits {
            continue;
        }
        let sentinel = format!("g{r}end");
        wire.extend_from_slice(format!("\n{sentinel} PING\n").as_bytes());
        c.stream.write_all(&wire).expect("garbage write");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = c
                .next(deadline)
                .unwrap_or_else(|e| panic!("garbage round {r}: {e}"));
            let text = String::from_utf8_lossy(&line).into_owned();
            let id = text.split(' ').next().unwrap_or("");
            assert!(
                id == "*" || valid_id(id.as_bytes()),
                "reply line without a readable id or `*`: {text:?}"
            );
            assert!(
                text.len() > id.len() + 1,
                "reply line with nothing after the id: {text:?}"
            );
            if id == sentinel {
                assert_eq!(text, format!("{sentinel} PONG"));
                break;
            }
        }
    }
}

#[test]
fn live_server_answers_every_fuzzed_line_once_while_others_keep_working() {
    let seed = seed();
    let addr = start();
    let stop = Arc::new(AtomicBool::new(false));
    let cyclers: Vec<_> = (0..2)
        .map(|me| {
            let stop = stop.clone();
            thread::spawn(move || cycler(addr, me, stop))
        })
        .collect();
    let g = thread::spawn(move || garbage(addr, seed ^ 0xABCD, scaled(120)));
    let mut rng = Rng::new(seed);
    let mut c = Lines::connect(addr);
    let mut lines = 0;
    let started = Instant::now();
    let batches = scaled(400);
    for batch in 0..batches {
        match live_batch(&mut rng, &mut c, batch) {
            Ok(n) => lines += n,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                panic!("seed {seed}, batch {batch}: {e}");
            }
        }
    }
    g.join().expect("garbage connection");
    stop.store(true, Ordering::Relaxed);
    let cycles: Vec<usize> = cyclers
        .into_iter()
        .map(|h| h.join().expect("cycler thread"))
        .collect();
    eprintln!(
        "{lines} fuzzed lines in {batches} batches, cycles {cycles:?}, {:?}",
        started.elapsed()
    );
    assert!(
        cycles.iter().all(|&n| n > 0),
        "a cycler made no progress: {cycles:?}"
    );
    // The fuzz connection still works normally.
    c.stream.write_all(b"fin PING\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let l = c.next(deadline).expect("final PONG");
        if l == b"fin PONG" {
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Oversized lines
// ---------------------------------------------------------------------------

#[test]
fn line_of_exactly_max_line_bytes_is_accepted_one_more_is_refused() {
    let cfg = Config {
        max_line: 200,
        ..Config::default()
    };
    let addr = start_with(cfg);
    let mut c = Client::connect(addr);
    // 200 bytes (trailing blanks are ignored), with and without `\r`.
    let line = format!("{:<200}", "e1 PING");
    assert_eq!(line.len(), 200);
    assert_eq!(c.req(&line), "e1 PONG");
    c.send_bytes(format!("{line}\r\n").as_bytes());
    assert_eq!(c.recv(), "e1 PONG");
    // 201 bytes: refused with the line's id, then closed.
    let line = format!("{:<201}", "e2 PING");
    c.send(&line);
    assert_err(&c.recv(), "e2", "line_too_long");
    c.expect_closed();
}

#[test]
fn oversized_line_is_refused_closed_and_its_locks_released_others_unaffected() {
    let addr = start();
    let mut bystander = Client::connect(addr);
    let tb = bystander.lock("b1", "bystander-lock");
    let mut holder = Client::connect(addr);
    let t1 = holder.lock("h1", "big-held");
    let mut waiter = Client::connect(addr);
    waiter.send("w1 LOCK big-held wait=10000");
    waiter.sync();
    // Good requests before the big line in the same write are answered; nothing after.
    let mut wire = b"h2 PING\n".to_vec();
    wire.extend_from_slice(b"h3 LOCK ");
    wire.extend(std::iter::repeat_n(b'x', 5000));
    wire.extend_from_slice(b"\nh4 PING\n");
    holder.try_send_bytes(&wire).ok();
    assert_eq!(holder.recv(), "h2 PONG");
    assert_err(&holder.recv(), "h3", "line_too_long");
    holder.expect_closed();
    // Its lock goes to the waiter.
    let t2 = ok_token(&waiter.recv(), "w1");
    assert!(t2 > t1);
    // The bystander never noticed.
    assert_eq!(bystander.req("b2 PING"), "b2 PONG");
    assert_eq!(
        bystander.inspect("bystander-lock"),
        format!(
            "mode=exclusive holders=1 waiters=0 token={tb} owner={}",
            bystander.local_addr()
        )
    );
    // An oversized line whose id cannot be read is refused with `*`.
    let mut anon = Client::connect(addr);
    let mut wire = vec![0xffu8; 5000];
    wire.push(b'\n');
    anon.try_send_bytes(&wire).ok();
    assert_err(&anon.recv(), "*", "line_too_long");
    anon.expect_closed();
    assert_eq!(waiter.req("w2 PING"), "w2 PONG");
}

#[test]
fn random_oversized_and_truncated_writes_never_hurt_other_connections() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0x5151);
    let cfg = Config {
        max_line: 512,
        ..Config::default()
    };
    let addr = start_with(cfg);
    let mut good = Client::connect(addr);
    let t = good.lock("g1", "good-lock");
    for round in 0..scaled(60) {
        let mut bad = Client::connect(addr);
        // Sometimes a readable id first: the refusal carries it; else `*`.
        let id = format!("o{round}");
        let with_id = rng.chance(50);
        let mut wire = if with_id {
            format!("{id} LOCK ").into_bytes()
        } else {
            Vec::new()
        };
        let n = rng.range_usize(514, 5000);
        wire.extend((0..n).map(|_| rng.range_usize(0x21, 0x7e) as u8));
        if rng.chance(50) {
            wire.push(b'\n');
        }
        let _ = bad.try_send_bytes(&wire);
        let reply = bad.recv();
        assert_err(&reply, if with_id { &id } else { "*" }, "line_too_long");
        bad.expect_closed();
        if round % 10 == 0 {
            assert_eq!(good.req("g PING"), "g PONG");
        }
    }
    assert_eq!(
        good.inspect("good-lock"),
        format!(
            "mode=exclusive holders=1 waiters=0 token={t} owner={}",
            good.local_addr()
        )
    );
    let s = good.stats();
    assert_eq!(s["connections"], 1, "every oversized client was closed");
    assert_eq!(s["holds"], 1);
}
