//! The Redis lock dialect: the subset of Redis that lock clients use (`SET NX PX`, the
//! compare-and-delete scripts, hashes for dist-lock), over RESP ([`super::resp`]), with
//! keys as lock names in the one table. The contract is `docs/redis.md`.
//!
//! # Mapping onto the engine
//! - A key is the engine name [`super::names::engine_name`]`("", key)`.
//! - A **Redis key** is a detached exclusive hold made by a connection of this protocol
//!   ([`Engine::acquire_detached`], origin [`Protocol::Redis`]); its attachment is the
//!   key's value, encoded by `Value`: `s` then the string, or `h` then each field
//!   name and value as a 2-byte big-endian length and the bytes. `SET ... PX` is the
//!   hold's lease; a key without a deadline is a hold without one.
//! - Any other hold on the name (a native `LOCK`, a foreign protocol's lock, a native
//!   detached hold) makes the key **foreign**: visible (`EXISTS`, `KEYS`, `GET` answers
//!   [`FOREIGN_VALUE`]) but never changed from here (`-LOCKED`), and `DEL` skips it.
//! - Every command first fires the deadlines due (`Engine::advance`), so a key past its
//!   deadline is gone for every command, as in Redis.
//! - Scripts are never run: [`super::redis_scripts`] maps each catalogued one to a
//!   typed [`Call`], executed here as one atomic operation (the loop is one thread).
//!
//! # Invariants
//! - At most one request is decoded per [`Wire::decode`] call; a malformed one gets its
//!   error and the connection closes (nothing it created is lost: keys are detached).
//! - The steady `SET NX PX` / compare-and-delete cycle allocates nothing: the argument
//!   spans ([`Args`]) and the value encoding buffer are kept by the session, and the
//!   engine reuses attachment buffers.
//! - A value, field name or field value is at most [`MAX_VALUE`] bytes, and a hash has
//!   at most [`MAX_FIELDS`] fields, so one key's attachment stays under
//!   [`crate::engine::MAX_ATTACHMENT`].

use super::names::{client_name, engine_name, is_plain, wire_name, EngineName};
use super::redis_scripts::{self as scripts, Aliases, Call, ScriptError};
use super::resp::{self, Args, Limits, Parsed, Request, Version};
use super::{Ctx, Progress, Protocol, Wire};
use crate::config::{Config, VERSION};
use crate::engine::{AcquireRequest, Acquired, DetachedHold, Engine, Event, LockInfo, Mode};

mod conn;
mod keys;
mod script;
mod value;
mod write;

pub use keys::glob;
use value::{
    create, delete, delete_if_equal, expire, fields, hash_get, key_state, ms_left, push_field,
    string_equal, Key, Value,
};

/// Most bytes of a string value, a field name or a field value.
pub const MAX_VALUE: usize = 1024;
/// Most fields of one hash key.
pub const MAX_FIELDS: usize = 16;
/// What `GET` answers for a name held through another protocol: no compare ever
/// matches it, because comparisons look at Redis keys only.
pub const FOREIGN_VALUE: &[u8] = b"lockbox:held";
/// The Redis version lockbox answers as (`INFO`, `HELLO`).
pub const REDIS_VERSION: &str = "7.0.0";
/// Most keys `SCAN` returns per call when no `COUNT` is given.
const SCAN_COUNT: usize = 10;
/// Most lock slots `SCAN` visits per key it may return.
const SCAN_SLOTS_PER_KEY: usize = 10;
/// The largest `COUNT` honoured.
const MAX_SCAN_COUNT: usize = 10_000;
/// Most bytes of one argument quoted in an unknown-command error (as Redis).
const QUOTE_MAX: usize = 128;

const WRONGTYPE: &[u8] = b"WRONGTYPE Operation against a key holding the wrong kind of value";
const LOCKED: &[u8] = b"LOCKED the name is held by a client of another protocol";
const NOT_INTEGER: &[u8] = b"ERR value is not an integer or out of range";
const SYNTAX: &[u8] = b"ERR syntax error";
const OOM: &[u8] = b"OOM command not allowed when used memory > 'maxmemory'.";
const TOO_LONG_KEY: &[u8] = b"ERR key is too long for a lock name (most 255 bytes once escaped)";
const TOO_LONG_VALUE: &[u8] = b"ERR value is too long for a lock key (most 1024 bytes)";
const TOO_MANY_FIELDS: &[u8] = b"ERR too many fields for a lock key (most 16)";
const NOAUTH: &[u8] = b"NOAUTH Authentication required.";
const WRONGPASS: &[u8] = b"WRONGPASS invalid username-password pair or user is disabled.";

/// Per-connection state.
#[derive(Debug)]
pub struct Session {
    args: Args,
    st: State,
}

#[derive(Debug)]
struct State {
    limits: Limits,
    version: Version,
    authed: bool,
    aliases: Box<Aliases>,
    /// Value encoding buffer, reused.
    enc: Vec<u8>,
}

/// Whether the connection goes on after a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: &Config) -> Self {
        Session {
            args: Args::new(),
            st: State {
                limits: Limits::default(),
                version: Version::Resp2,
                authed: cfg.auth_file.is_none(),
                aliases: Box::default(),
                enc: Vec::new(),
            },
        }
    }
}

impl Wire for Session {
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        match resp::parse(input, &self.st.limits, &mut self.args) {
            Parsed::Incomplete => Progress::Incomplete,
            Parsed::Error(e) => {
                log::debug!("client {}: RESP protocol error {e:?}", cx.client);
                cx.stats.errors_total += 1;
                e.write(cx.out);
                Progress::Close(input.len())
            }
            Parsed::Request(req, n) => {
                if req.is_empty() {
                    return Progress::Consumed(n);
                }
                match self.st.execute(&req, cx) {
                    Flow::Continue => Progress::Consumed(n),
                    Flow::Close => Progress::Close(n),
                }
            }
        }
    }

    /// Nothing here ever waits, so no event is addressed to a Redis connection.
    fn encode_event(&mut self, _event: &Event, _engine: &Engine, _out: &mut Vec<u8>) {}
}

/// A key's engine name: the key itself when it needs no escape (most keys), else its
/// escaped image. It lives on the stack for one command: boxing the large variant would
/// allocate for every escaped key.
#[allow(clippy::large_enum_variant)]
enum KeyName<'a> {
    Plain(&'a [u8]),
    Escaped(EngineName),
}

impl KeyName<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            KeyName::Plain(k) => k,
            KeyName::Escaped(n) => n.as_bytes(),
        }
    }
}

/// The engine name of `key` ([`engine_name`]`(b"", key)`), or `None` when it is too long.
fn key_name(key: &[u8]) -> Option<KeyName<'_>> {
    if is_plain(key) {
        Some(KeyName::Plain(key))
    } else {
        engine_name(b"", key).map(KeyName::Escaped)
    }
}

/// The engine name of `key`, or the error written.
fn name_of<'k>(key: &'k [u8], cx: &mut Ctx) -> Option<KeyName<'k>> {
    let name = key_name(key);
    if name.is_none() {
        err(cx, TOO_LONG_KEY);
    }
    name
}

fn err(cx: &mut Ctx, msg: &[u8]) {
    cx.stats.errors_total += 1;
    resp::error(cx.out, msg);
}

fn wrong_args(cx: &mut Ctx, cmd: &[u8]) {
    cx.stats.errors_total += 1;
    cx.out
        .extend_from_slice(b"-ERR wrong number of arguments for '");
    cx.out.extend(cmd.iter().map(u8::to_ascii_lowercase));
    cx.out.extend_from_slice(b"' command\r\n");
}

/// Redis's strict integer (its `string2ll`): [`resp::parse_i64`], so `-0`, `+1`,
/// `01` and spaces are no integers, as in Redis.
fn int(s: &[u8]) -> Option<i64> {
    resp::parse_i64(s)
}

fn is(word: &[u8], name: &str) -> bool {
    word.eq_ignore_ascii_case(name.as_bytes())
}

impl State {
    fn execute(&mut self, req: &Request, cx: &mut Ctx) -> Flow {
        let cmd = req.get(0).unwrap_or(&[]);
        let argc = req.len();
        if !(self.authed || is(cmd, "auth") || is(cmd, "hello") || is(cmd, "quit")) {
            err(cx, NOAUTH);
            return Flow::Continue;
        }
        cx.engine.advance(cx.now);
        let arity_ok = |min: usize, exact: bool| if exact { argc == min } else { argc >= min };
        // (name, arguments with the command, exactly that many or at least)
        macro_rules! arity {
            ($min:expr, $exact:expr) => {
                if !arity_ok($min, $exact) {
                    wrong_args(cx, cmd);
                    return Flow::Continue;
                }
            };
        }
        let arg = |i: usize| req.get(i).unwrap_or(&[]);
        match cmd::word(cmd) {
            cmd::SET => {
                arity!(3, false);
                self.set(req, cx);
            }
            cmd::GET => {
                arity!(2, true);
                let Some(name) = name_of(arg(1), cx) else {
                    return Flow::Continue;
                };
                match key_state(cx.engine, name.as_bytes()) {
                    Key::None => resp::null(cx.out, self.version),
                    Key::Foreign => resp::bulk(cx.out, FOREIGN_VALUE),
                    Key::Redis {
                        value: Value::Str(v),
                        ..
                    } => resp::bulk(cx.out, v),
                    Key::Redis { .. } => err(cx, WRONGTYPE),
                }
            }
            cmd::DEL | cmd::UNLINK => {
                arity!(2, false);
                let mut n = 0;
                for key in req.iter().skip(1) {
                    let Some(name) = key_name(key) else {
                        continue;
                    };
                    if let Key::Redis { token, .. } = key_state(cx.engine, name.as_bytes()) {
                        delete(cx, name.as_bytes(), token);
                        n += 1;
                    }
                }
                resp::integer(cx.out, n);
            }
            cmd::EXISTS => {
                arity!(2, false);
                let n = req
                    .iter()
                    .skip(1)
                    .filter_map(key_name)
                    .filter(|name| !matches!(key_state(cx.engine, name.as_bytes()), Key::None))
                    .count();
                resp::integer(cx.out, n as i64);
            }
            cmd::PEXPIRE | cmd::EXPIRE => {
                arity!(3, false);
                self.pexpire(req, cx, is(cmd, "expire"));
            }
            cmd::PTTL | cmd::TTL => {
                arity!(2, true);
                let Some(name) = name_of(arg(1), cx) else {
                    return Flow::Continue;
                };
                let left = match key_state(cx.engine, name.as_bytes()) {
                    Key::None => -2,
                    Key::Redis { deadline, .. } => {
                        deadline.map_or(-1, |d| ms_left(d, cx.now, cx.engine.ticks_per_ms()))
                    }
                    Key::Foreign => {
                        let mut left = None;
                        for d in cx.engine.hold_deadlines(name.as_bytes()) {
                            let ms = d.map_or(-1, |d| ms_left(d, cx.now, cx.engine.ticks_per_ms()));
                            left = Some(match left {
                                None => ms,
                                Some(_) if ms == -1 => -1,
                                Some(-1) => -1,
                                Some(l) => ms.min(l),
                            });
                        }
                        left.unwrap_or(-1)
                    }
                };
                let left = if is(cmd, "ttl") && left >= 0 {
                    (left + 500) / 1000
                } else {
                    left
                };
                resp::integer(cx.out, left);
            }
            cmd::TYPE => {
                arity!(2, true);
                let Some(name) = name_of(arg(1), cx) else {
                    return Flow::Continue;
                };
                let t: &[u8] = match key_state(cx.engine, name.as_bytes()) {
                    Key::None => b"none",
                    Key::Redis {
                        value: Value::Hash(_),
                        ..
                    } => b"hash",
                    _ => b"string",
                };
                resp::simple(cx.out, t);
            }
            cmd::KEYS => {
                arity!(2, true);
                let pattern = arg(1);
                let mut keys: Vec<Vec<u8>> = cx
                    .engine
                    .locks()
                    .filter_map(|(name, _)| wire_name(name))
                    .filter(|k| glob(pattern, k))
                    .collect();
                keys.sort_unstable();
                resp::array(cx.out, keys.len());
                for k in &keys {
                    resp::bulk(cx.out, k);
                }
            }
            cmd::SCAN => {
                arity!(2, false);
                self.scan(req, cx);
            }
            cmd::HSET | cmd::HMSET => {
                arity!(4, false);
                if !argc.is_multiple_of(2) {
                    wrong_args(cx, cmd);
                    return Flow::Continue;
                }
                self.hset(req, cx, is(cmd, "hmset"));
            }
            cmd::HGET | cmd::HMGET | cmd::HGETALL => {
                let getall = is(cmd, "hgetall");
                if getall {
                    arity!(2, true);
                } else if is(cmd, "hget") {
                    arity!(3, true);
                } else {
                    arity!(3, false);
                }
                let Some(name) = name_of(arg(1), cx) else {
                    return Flow::Continue;
                };
                let enc: &[u8] = match key_state(cx.engine, name.as_bytes()) {
                    Key::None => &[],
                    Key::Redis {
                        value: Value::Hash(h),
                        ..
                    } => h,
                    _ => {
                        err(cx, WRONGTYPE);
                        return Flow::Continue;
                    }
                };
                if getall {
                    resp::map(cx.out, fields(enc).count(), self.version);
                    for (f, v) in fields(enc) {
                        resp::bulk(cx.out, f);
                        resp::bulk(cx.out, v);
                    }
                } else if is(cmd, "hget") {
                    match hash_get(enc, arg(2)) {
                        Some(v) => resp::bulk(cx.out, v),
                        None => resp::null(cx.out, self.version),
                    }
                } else {
                    resp::array(cx.out, argc - 2);
                    for f in req.iter().skip(2) {
                        match hash_get(enc, f) {
                            Some(v) => resp::bulk(cx.out, v),
                            None => resp::null(cx.out, self.version),
                        }
                    }
                }
            }
            cmd::EVAL | cmd::EVALSHA => {
                arity!(3, false);
                // As Redis: the key count first, then the script.
                let script = if let Err(e) = scripts::numkeys(req) {
                    Err(e)
                } else if is(cmd, "eval") {
                    self.aliases
                        .load(arg(1))
                        .map(|(s, _)| s)
                        .ok_or(ScriptError::UnknownScript)
                } else {
                    scripts::parse_sha1_hex(arg(1))
                        .and_then(|sha| self.aliases.resolve(&sha))
                        .ok_or(ScriptError::NoScript)
                };
                match script.and_then(|s| scripts::bind(s, req)) {
                    Ok(call) => self.run(call, cx),
                    Err(e) => {
                        cx.stats.errors_total += 1;
                        e.write(cx.out);
                    }
                }
            }
            cmd::SCRIPT => {
                arity!(2, false);
                self.script(req, cx);
            }
            cmd::PING => match argc {
                1 => resp::simple(cx.out, b"PONG"),
                2 => resp::bulk(cx.out, arg(1)),
                _ => wrong_args(cx, cmd),
            },
            cmd::ECHO => {
                arity!(2, true);
                resp::bulk(cx.out, arg(1));
            }
            cmd::QUIT => {
                resp::simple(cx.out, b"OK");
                return Flow::Close;
            }
            cmd::SELECT => {
                arity!(2, true);
                match int(arg(1)) {
                    Some(0) => resp::simple(cx.out, b"OK"),
                    Some(_) => err(cx, b"ERR DB index is out of range"),
                    None => err(cx, NOT_INTEGER),
                }
            }
            cmd::INFO => self.info(cx),
            cmd::CLIENT => {
                arity!(2, false);
                self.client(req, cx);
            }
            cmd::HELLO => return self.hello(req, cx),
            cmd::AUTH => {
                arity!(2, false);
                if argc > 3 {
                    err(cx, SYNTAX);
                    return Flow::Continue;
                }
                let user = (argc == 3).then(|| arg(1));
                self.auth(user, arg(argc - 1), cx);
            }
            cmd::COMMAND => {
                let sub = req.get(1);
                match sub {
                    Some(s) if is(s, "count") => resp::integer(cx.out, COMMANDS as i64),
                    _ => resp::array(cx.out, 0),
                }
            }
            _ => unknown_command(req, cx),
        }
        Flow::Continue
    }
}

/// Command names as integers: the name folded to lowercase, packed with its length, so
/// dispatch is one integer match instead of a chain of case-insensitive comparisons.
mod cmd {
    /// Longest command name (`command`, `evalsha`, `hgetall`, `pexpire`).
    const MAX_LEN: usize = 7;

    /// The key of a name of at most [`MAX_LEN`] bytes: its bytes in ASCII lowercase, and
    /// its length in the top byte (so no two names that differ other than in case share
    /// a key).
    const fn key(name: &[u8]) -> u64 {
        let mut k = (name.len() as u64) << 56;
        let mut i = 0;
        while i < name.len() {
            k |= (name[i].to_ascii_lowercase() as u64) << (8 * i);
            i += 1;
        }
        k
    }

    /// The key of a request's command name; 0 (no command's) when it is longer than any.
    pub fn word(name: &[u8]) -> u64 {
        if name.len() > MAX_LEN {
            0
        } else {
            key(name)
        }
    }

    pub const AUTH: u64 = key(b"auth");
    pub const CLIENT: u64 = key(b"client");
    pub const COMMAND: u64 = key(b"command");
    pub const DEL: u64 = key(b"del");
    pub const ECHO: u64 = key(b"echo");
    pub const EVAL: u64 = key(b"eval");
    pub const EVALSHA: u64 = key(b"evalsha");
    pub const EXISTS: u64 = key(b"exists");
    pub const EXPIRE: u64 = key(b"expire");
    pub const GET: u64 = key(b"get");
    pub const HELLO: u64 = key(b"hello");
    pub const HGET: u64 = key(b"hget");
    pub const HGETALL: u64 = key(b"hgetall");
    pub const HMGET: u64 = key(b"hmget");
    pub const HMSET: u64 = key(b"hmset");
    pub const HSET: u64 = key(b"hset");
    pub const INFO: u64 = key(b"info");
    pub const KEYS: u64 = key(b"keys");
    pub const PEXPIRE: u64 = key(b"pexpire");
    pub const PING: u64 = key(b"ping");
    pub const PTTL: u64 = key(b"pttl");
    pub const QUIT: u64 = key(b"quit");
    pub const SCAN: u64 = key(b"scan");
    pub const SCRIPT: u64 = key(b"script");
    pub const SELECT: u64 = key(b"select");
    pub const SET: u64 = key(b"set");
    pub const TTL: u64 = key(b"ttl");
    pub const TYPE: u64 = key(b"type");
    pub const UNLINK: u64 = key(b"unlink");
}

/// Commands answered here, for `COMMAND COUNT`.
const COMMANDS: usize = 34;

/// A byte as it may appear inside an error line.
fn safe(b: u8) -> u8 {
    if b == b'\r' || b == b'\n' {
        b' '
    } else {
        b
    }
}

/// `-ERR unknown command '<cmd>', with args beginning with: '<a>' ... `, as Redis.
fn unknown_command(req: &Request, cx: &mut Ctx) {
    cx.stats.errors_total += 1;
    let out = &mut *cx.out;
    out.extend_from_slice(b"-ERR unknown command '");
    let cmd = req.get(0).unwrap_or(&[]);
    out.extend(cmd.iter().take(QUOTE_MAX).map(|&b| safe(b)));
    out.extend_from_slice(b"', with args beginning with: ");
    let mut room = QUOTE_MAX;
    for a in req.iter().skip(1) {
        if room == 0 {
            break;
        }
        let n = a.len().min(room);
        out.push(b'\'');
        out.extend(a[..n].iter().map(|&b| safe(b)));
        out.extend_from_slice(b"' ");
        room -= n.max(1).min(room);
    }
    out.extend_from_slice(b"\r\n");
}

fn unknown_subcommand(cx: &mut Ctx, sub: &[u8], cmd: &str) {
    cx.stats.errors_total += 1;
    cx.out.extend_from_slice(b"-ERR unknown subcommand '");
    cx.out.extend(sub.iter().take(QUOTE_MAX).map(|&b| safe(b)));
    cx.out.extend_from_slice(b"'. Try ");
    cx.out.extend_from_slice(cmd.as_bytes());
    cx.out.extend_from_slice(b" HELP.\r\n");
}

#[cfg(test)]
#[path = "redis_tests.rs"]
mod tests;
