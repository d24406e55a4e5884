//! The Lua scripts of the Redis dialect, as data: lockbox runs no Lua. Each script the
//! named lock clients send is recognised by its SHA1 (`EVALSHA`) or its text (`EVAL`,
//! `SCRIPT LOAD`) and mapped to one typed built-in [`Op`]; [`bind`] checks an `EVAL`'s
//! keys and arguments and turns them into a [`Call`] that the engine side runs as one
//! atomic operation.
//!
//! # The catalogue
//! [`CATALOGUE`] holds each script's exact text (so its SHA1 is what Redis computes) and
//! its operation: dist-lock 2.0.1's createLock/deleteLock/extendLock, redis-py `Lock`'s
//! release/extend/reacquire (the same text from redis-py 4.6 to 8.1), node-redlock 4.0,
//! 4.1 and 4.2's lock/unlock/extend, and the common compare-and-delete and
//! compare-and-pexpire scripts.
//!
//! # Variants
//! A text that differs from a catalogued one only in comments (`--` to the end of the
//! line), in the amount of white space (white space between two word characters still
//! counts as one space) and in `'` for `"` is the same script ([`same_script`]): hand-
//! written compare-and-delete scripts vary in exactly that. Its own SHA1 is remembered
//! in [`Aliases`] when it is loaded, so `EVALSHA` finds it afterwards.
//!
//! The script texts themselves are data, in the `texts` module; variants and their
//! aliases are in `variants`.
//!
//! # Invariants
//! - Every catalogue entry's `sha1` is the SHA1 of its `text` (checked by the tests), and
//!   no two entries share a SHA1.
//! - Lookups and [`bind`] allocate nothing; [`Aliases`] is a fixed array of
//!   [`MAX_ALIASES`] entries plus a memo of [`MAX_MEMO`] reused text buffers.
//! - [`bind`] accepts a call only when the script would not fail in Redis on these
//!   arguments: counts, integers and expiry times are checked before anything runs.

use super::resp::{self, Request};

mod texts;
mod variants;

pub use texts::*;
pub use variants::{same_script, Aliases};

/// Most keys a multi-key script (redlock's) may name in one call.
pub const MAX_SCRIPT_KEYS: usize = 64;
/// Most remembered SHA1s of loaded variants; the oldest is forgotten first.
pub const MAX_ALIASES: usize = 64;
/// Most variant texts remembered by their bytes per connection (see [`Aliases`]).
pub const MAX_MEMO: usize = 4;
/// Longest variant text remembered by its bytes.
pub const MAX_MEMO_TEXT: usize = 1024;
/// Longest expiry a script may set, in ms: the engine's longest hold.
pub const MAX_TTL_MS: i64 = u32::MAX as i64;
/// Bytes of a SHA1.
pub const SHA1_LEN: usize = 20;
/// Hex digits of a SHA1, as `EVALSHA` and `SCRIPT LOAD` carry it.
pub const SHA1_HEX_LEN: usize = 2 * SHA1_LEN;

/// A SHA1 digest.
pub type Sha1 = [u8; SHA1_LEN];

/// The built-in operations the catalogued scripts run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// 1 key; id, owner, ttl ms. If the key does not exist: a hash with fields `id` and
    /// `owner` and deadline now + ttl (ttl <= 0: created and gone at once, as PEXPIRE);
    /// reply 1. Else 0.
    HashCreate,
    /// 1 key; id. If field `id` equals: delete the key, reply 1. Else 0.
    HashCompareDelete,
    /// 1 key; id, ms. If field `id` equals: deadline now + ms (ms <= 0 deletes), reply 1.
    /// Else 0.
    HashComparePexpire,
    /// 1 key, or 1..=[`MAX_SCRIPT_KEYS`] (redlock); value. Delete each key whose string
    /// value equals; reply the number deleted.
    CompareDelete,
    /// 1 key; value, ms. If the string value equals: deadline now + ms (ms <= 0
    /// deletes), reply 1. Else 0.
    ComparePexpire,
    /// 1 key; value, ms, replace. If the string value equals and the key has a
    /// deadline: deadline now + ms when `replace`, else the old deadline + ms; reply 1.
    /// Else 0.
    CompareExtend,
    /// 1..=[`MAX_SCRIPT_KEYS`] keys; value, ttl ms (1 or more). If no key exists: set
    /// each to value with deadline now + ttl, reply the number of keys. Else 0.
    MultiSetIfNone,
    /// 1..=[`MAX_SCRIPT_KEYS`] keys; value, ttl ms (1 or more). If every key's string
    /// value equals: set each again with deadline now + ttl, reply the number of keys.
    /// Else 0.
    MultiCompareSet,
}

/// How many keys a script takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCount {
    /// Exactly one (`KEYS[1]`).
    One,
    /// One to [`MAX_SCRIPT_KEYS`] (`ipairs(KEYS)`).
    Many,
}

impl Op {
    /// The arguments (`ARGV`) the operation needs; more are ignored, as Lua does.
    pub fn args(self) -> usize {
        match self {
            Op::HashCompareDelete | Op::CompareDelete => 1,
            Op::HashComparePexpire | Op::ComparePexpire => 2,
            Op::MultiSetIfNone | Op::MultiCompareSet => 2,
            Op::HashCreate | Op::CompareExtend => 3,
        }
    }
}

/// One catalogued script.
#[derive(Clone, Copy, Debug)]
pub struct Script {
    /// A short name for errors and logs (`dist-lock createLock`).
    pub name: &'static str,
    /// Its SHA1 as lowercase hex, as Redis reports it.
    pub sha1_hex: &'static str,
    /// Its SHA1.
    pub sha1: Sha1,
    /// Its exact text.
    pub text: &'static str,
    /// What it does.
    pub op: Op,
    /// The keys it takes: `KEYS[1]` scripts one, `ipairs(KEYS)` scripts many.
    pub keys: KeyCount,
}

/// Decodes 40 hex digits at compile time (panics at build time on a bad constant).
const fn sha1_of_hex(hex: &str) -> Sha1 {
    let h = hex.as_bytes();
    assert!(h.len() == SHA1_HEX_LEN);
    let mut out = [0u8; SHA1_LEN];
    let mut i = 0;
    while i < SHA1_LEN {
        let (Some(a), Some(b)) = (hex_val(h[2 * i]), hex_val(h[2 * i + 1])) else {
            panic!("bad hex in a catalogue SHA1");
        };
        out[i] = (a << 4) | b;
        i += 1;
    }
    out
}

/// The value of one hex digit (either case).
const fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a 40-hex-digit SHA1 as `EVALSHA` sends it (either case).
pub fn parse_sha1_hex(hex: &[u8]) -> Option<Sha1> {
    if hex.len() != SHA1_HEX_LEN {
        return None;
    }
    let mut out = [0u8; SHA1_LEN];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

/// Appends a SHA1 as 40 lowercase hex digits.
pub fn push_sha1_hex(out: &mut Vec<u8>, sha: &Sha1) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in sha {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// The SHA1 of a script text, as Redis computes it.
pub fn sha1_of(text: &[u8]) -> Sha1 {
    sha1_smol::Sha1::from(text).digest().bytes()
}

const fn entry(
    name: &'static str,
    sha1_hex: &'static str,
    text: &'static str,
    op: Op,
    keys: KeyCount,
) -> Script {
    Script {
        name,
        sha1_hex,
        sha1: sha1_of_hex(sha1_hex),
        text,
        op,
        keys,
    }
}

/// Every script lockbox runs, newest client versions first within a client.
pub static CATALOGUE: [Script; 15] = [
    entry(
        "dist-lock createLock",
        "68c369c9caadc07bd3c92dfbf3f41b7c6d2b035d",
        DIST_LOCK_CREATE,
        Op::HashCreate,
        KeyCount::One,
    ),
    entry(
        "dist-lock deleteLock",
        "d21abcd8dbaac30fe46fd7c5d03779ac14e09182",
        DIST_LOCK_DELETE,
        Op::HashCompareDelete,
        KeyCount::One,
    ),
    entry(
        "dist-lock extendLock",
        "7d26418ef39fdae69592a6b43f82fea7b05db06e",
        DIST_LOCK_EXTEND,
        Op::HashComparePexpire,
        KeyCount::One,
    ),
    entry(
        "redis-py Lock release",
        "c3f8721cbb97f72bc19e972846bd7aaf91901658",
        REDIS_PY_RELEASE,
        Op::CompareDelete,
        KeyCount::One,
    ),
    entry(
        "redis-py Lock extend",
        "a4e8783852e6b949f9ef3a97212805108459a890",
        REDIS_PY_EXTEND,
        Op::CompareExtend,
        KeyCount::One,
    ),
    entry(
        "redis-py Lock reacquire",
        "1cac51482acf5858da00f6d685d68f886cd6b6b2",
        REDIS_PY_REACQUIRE,
        Op::ComparePexpire,
        KeyCount::One,
    ),
    entry(
        "redlock 4.1-4.2 lock",
        "e5a322e2634ef59a516e8ea150cb085afafee684",
        REDLOCK_4_1_LOCK,
        Op::MultiSetIfNone,
        KeyCount::Many,
    ),
    entry(
        "redlock 4.0 lock",
        "d01fb69e6ecc8bad3ca9bacba9f4f9e96862313f",
        REDLOCK_4_0_LOCK,
        Op::MultiSetIfNone,
        KeyCount::Many,
    ),
    entry(
        "redlock 4.2 unlock",
        "0f0f23b9048b36752b5be114f357ba083449f908",
        REDLOCK_4_2_UNLOCK,
        Op::CompareDelete,
        KeyCount::Many,
    ),
    entry(
        "redlock 4.0-4.1 unlock",
        "517e7ed95f00c0c4a209c6a7afcc6ab797d30b85",
        REDLOCK_4_0_UNLOCK,
        Op::CompareDelete,
        KeyCount::Many,
    ),
    entry(
        "redlock 4.2 extend",
        "ce46f80993d5dac20dd066eb301a4e37994bdbed",
        REDLOCK_4_2_EXTEND,
        Op::MultiCompareSet,
        KeyCount::Many,
    ),
    entry(
        "redlock 4.1 extend",
        "1d48b4c6fea2cdadc46b3346de5c2eaf121c7bb3",
        REDLOCK_4_1_EXTEND,
        Op::MultiCompareSet,
        KeyCount::Many,
    ),
    entry(
        "redlock 4.0 extend",
        "acaf90b4697bb48bb5f603e9e613a54df7536c70",
        REDLOCK_4_0_EXTEND,
        Op::MultiCompareSet,
        KeyCount::Many,
    ),
    entry(
        "compare-and-delete",
        "647c65a442733a1aa440f99908d249d13b4d6c4a",
        COMPARE_AND_DELETE,
        Op::CompareDelete,
        KeyCount::One,
    ),
    entry(
        "compare-and-pexpire",
        "1bfbb99810d66d9ea59b16336fdf07c12b8be9fc",
        COMPARE_AND_PEXPIRE,
        Op::ComparePexpire,
        KeyCount::One,
    ),
];

/// The catalogued script with this SHA1.
pub fn by_sha1(sha: &Sha1) -> Option<&'static Script> {
    CATALOGUE.iter().find(|s| s.sha1 == *sha)
}

/// The catalogued script whose text is exactly `text`: lengths first, bytes only on a
/// length match.
pub fn by_exact_text(text: &[u8]) -> Option<&'static Script> {
    CATALOGUE
        .iter()
        .find(|s| s.text.len() == text.len() && s.text.as_bytes() == text)
}

/// The catalogued script `text` is, exactly or as a variant (see the module doc), and
/// the SHA1 of `text` itself.
pub fn by_text(text: &[u8]) -> Option<(&'static Script, Sha1)> {
    if let Some(s) = by_exact_text(text) {
        return Some((s, s.sha1));
    }
    let s = CATALOGUE
        .iter()
        .find(|s| same_script(s.text.as_bytes(), text))?;
    Some((s, sha1_of(text)))
}

/// The keys of one call: consecutive arguments of the `EVAL`/`EVALSHA` request.
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    req: Request<'a>,
    first: usize,
    len: usize,
}

impl<'a> Keys<'a> {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true for a bound call (every operation takes a key); for completeness.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Key `i`.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        if i < self.len {
            self.req.get(self.first + i)
        } else {
            None
        }
    }

    /// Every key in order (a key named twice comes twice).
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (req, first) = (self.req, self.first);
        (0..self.len).filter_map(move |i| req.get(first + i))
    }
}

/// One script call with its arguments checked and typed, borrowed from the request.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    /// [`Op::HashCreate`].
    HashCreate {
        /// The key.
        key: &'a [u8],
        /// Field `id`.
        id: &'a [u8],
        /// Field `owner`.
        owner: &'a [u8],
        /// Deadline from now, ms (<= 0: gone at once).
        ttl_ms: i64,
    },
    /// [`Op::HashCompareDelete`].
    HashCompareDelete {
        /// The key.
        key: &'a [u8],
        /// Compared with field `id`.
        id: &'a [u8],
    },
    /// [`Op::HashComparePexpire`].
    HashComparePexpire {
        /// The key.
        key: &'a [u8],
        /// Compared with field `id`.
        id: &'a [u8],
        /// New deadline from now, ms (<= 0 deletes).
        ttl_ms: i64,
    },
    /// [`Op::CompareDelete`].
    CompareDelete {
        /// The keys.
        keys: Keys<'a>,
        /// Compared with each key's value.
        value: &'a [u8],
    },
    /// [`Op::ComparePexpire`].
    ComparePexpire {
        /// The key.
        key: &'a [u8],
        /// Compared with the key's value.
        value: &'a [u8],
        /// New deadline from now, ms (<= 0 deletes).
        ttl_ms: i64,
    },
    /// [`Op::CompareExtend`].
    CompareExtend {
        /// The key.
        key: &'a [u8],
        /// Compared with the key's value.
        value: &'a [u8],
        /// Milliseconds to set (`replace`) or add.
        ms: i64,
        /// Replace the time left rather than add to it.
        replace: bool,
    },
    /// [`Op::MultiSetIfNone`].
    MultiSetIfNone {
        /// The keys.
        keys: Keys<'a>,
        /// The value to set.
        value: &'a [u8],
        /// Deadline from now, 1 to [`MAX_TTL_MS`].
        ttl_ms: i64,
    },
    /// [`Op::MultiCompareSet`].
    MultiCompareSet {
        /// The keys.
        keys: Keys<'a>,
        /// Compared with, and set again as, each key's value.
        value: &'a [u8],
        /// Deadline from now, 1 to [`MAX_TTL_MS`].
        ttl_ms: i64,
    },
}

/// Why a script call is refused. Each is answered with [`ScriptError::write`]; the
/// connection stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptError {
    /// `EVAL`/`EVALSHA` with fewer than 3 arguments.
    WrongArgCount(&'static str),
    /// numkeys (or a number argument) is not an integer.
    NotInteger,
    /// numkeys below 0.
    NegativeKeys,
    /// numkeys more than the arguments after it.
    KeysOverArgs,
    /// Keys or arguments do not fit the script.
    WrongArity(&'static str),
    /// More keys than [`MAX_SCRIPT_KEYS`].
    TooManyKeys(&'static str),
    /// An expiry the script's command would refuse (`set` or `pexpire`).
    InvalidExpire(&'static str),
    /// `EVALSHA` of a SHA1 that is neither catalogued nor a loaded variant.
    NoScript,
    /// `EVAL`/`SCRIPT LOAD` of a text that is not a catalogued script.
    UnknownScript,
}

/// The supported set, as [`ScriptError::UnknownScript`] names it.
pub const SUPPORTED: &str = "dist-lock 2.0.1, redis-py Lock, node-redlock 4.x, \
compare-and-delete, compare-and-pexpire";

impl ScriptError {
    /// Appends the error reply line.
    pub fn write(self, out: &mut Vec<u8>) {
        let push = |out: &mut Vec<u8>, parts: &[&str]| {
            out.push(b'-');
            for p in parts {
                out.extend_from_slice(p.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        };
        match self {
            ScriptError::WrongArgCount(cmd) => push(
                out,
                &["ERR wrong number of arguments for '", cmd, "' command"],
            ),
            ScriptError::NotInteger => push(out, &["ERR value is not an integer or out of range"]),
            ScriptError::NegativeKeys => push(out, &["ERR Number of keys can't be negative"]),
            ScriptError::KeysOverArgs => push(
                out,
                &["ERR Number of keys can't be greater than number of args"],
            ),
            ScriptError::WrongArity(name) => push(
                out,
                &[
                    "ERR wrong number of keys or arguments for built-in script '",
                    name,
                    "'",
                ],
            ),
            ScriptError::TooManyKeys(name) => push(
                out,
                &[
                    "ERR too many keys for built-in script '",
                    name,
                    "' (most 64)",
                ],
            ),
            ScriptError::InvalidExpire(cmd) => {
                push(out, &["ERR invalid expire time in '", cmd, "' command"])
            }
            ScriptError::NoScript => push(out, &["NOSCRIPT No matching script. Please use EVAL."]),
            ScriptError::UnknownScript => push(
                out,
                &[
                    "ERR lockbox runs no Lua: only its built-in lock scripts are accepted (",
                    SUPPORTED,
                    ")",
                ],
            ),
        }
    }
}

/// A `pexpire` time: any integer up to [`MAX_TTL_MS`] (0 or less deletes).
fn pexpire_ms(arg: &[u8]) -> Result<i64, ScriptError> {
    let ms = resp::parse_i64(arg).ok_or(ScriptError::NotInteger)?;
    if ms > MAX_TTL_MS {
        return Err(ScriptError::InvalidExpire("pexpire"));
    }
    Ok(ms)
}

/// A `set ... PX` time: 1 to [`MAX_TTL_MS`].
fn set_px_ms(arg: &[u8]) -> Result<i64, ScriptError> {
    let ms = resp::parse_i64(arg).ok_or(ScriptError::NotInteger)?;
    if !(1..=MAX_TTL_MS).contains(&ms) {
        return Err(ScriptError::InvalidExpire("set"));
    }
    Ok(ms)
}

/// The key count of `EVAL`/`EVALSHA` request `req` (argument 2), checked as Redis
/// checks it before it looks for the script.
pub fn numkeys(req: &Request) -> Result<usize, ScriptError> {
    if req.len() < 3 {
        return Err(ScriptError::WrongArgCount("eval"));
    }
    let numkeys = req
        .get(2)
        .and_then(resp::parse_i64)
        .ok_or(ScriptError::NotInteger)?;
    let numkeys = usize::try_from(numkeys).map_err(|_| ScriptError::NegativeKeys)?;
    if numkeys > req.len() - 3 {
        return Err(ScriptError::KeysOverArgs);
    }
    Ok(numkeys)
}

/// Checks the keys and arguments of `EVAL`/`EVALSHA` request `req` (argument 0 the
/// command, 1 the script or SHA1, 2 numkeys) for `script`, and types them.
pub fn bind<'a>(script: &Script, req: &Request<'a>) -> Result<Call<'a>, ScriptError> {
    let numkeys = numkeys(req)?;
    let after = req.len() - 3;
    let keys = Keys {
        req: *req,
        first: 3,
        len: numkeys,
    };
    let nargs = after - numkeys;
    let op = script.op;
    match script.keys {
        KeyCount::One if numkeys != 1 => return Err(ScriptError::WrongArity(script.name)),
        KeyCount::Many if numkeys == 0 => return Err(ScriptError::WrongArity(script.name)),
        KeyCount::Many if numkeys > MAX_SCRIPT_KEYS => {
            return Err(ScriptError::TooManyKeys(script.name))
        }
        _ => {}
    }
    if nargs < op.args() {
        return Err(ScriptError::WrongArity(script.name));
    }
    let arg = |i: usize| req.get(3 + numkeys + i).unwrap_or(&[]);
    let key = keys.get(0).unwrap_or(&[]);
    Ok(match op {
        Op::HashCreate => Call::HashCreate {
            key,
            id: arg(0),
            owner: arg(1),
            ttl_ms: pexpire_ms(arg(2))?,
        },
        Op::HashCompareDelete => Call::HashCompareDelete { key, id: arg(0) },
        Op::HashComparePexpire => Call::HashComparePexpire {
            key,
            id: arg(0),
            ttl_ms: pexpire_ms(arg(1))?,
        },
        Op::CompareDelete => Call::CompareDelete {
            keys,
            value: arg(0),
        },
        Op::ComparePexpire => Call::ComparePexpire {
            key,
            value: arg(0),
            ttl_ms: pexpire_ms(arg(1))?,
        },
        Op::CompareExtend => Call::CompareExtend {
            key,
            value: arg(0),
            ms: resp::parse_i64(arg(1)).ok_or(ScriptError::NotInteger)?,
            // The script adds when ARGV[3] is exactly "0" and replaces otherwise.
            replace: arg(2) != b"0",
        },
        Op::MultiSetIfNone => Call::MultiSetIfNone {
            keys,
            value: arg(0),
            ttl_ms: set_px_ms(arg(1))?,
        },
        Op::MultiCompareSet => Call::MultiCompareSet {
            keys,
            value: arg(0),
            ttl_ms: set_px_ms(arg(1))?,
        },
    })
}

#[cfg(test)]
#[path = "redis_scripts_tests.rs"]
mod tests;
