//! The Redis lock dialect: the subset of Redis that lock clients use (`SET NX PX`, the
//! compare-and-delete scripts, hashes for dist-lock), over RESP ([`super::resp`]), with
//! keys as lock names in the one table. The contract is `docs/redis.md`.
//!
//! # Mapping onto the engine
//! - A key is the engine name [`super::names::engine_name`]`("", key)`.
//! - A **Redis key** is a detached exclusive hold made by a connection of this protocol
//!   ([`Engine::acquire_detached`], origin [`Protocol::Redis`]); its attachment is the
//!   key's value, encoded by [`Value`]: `s` then the string, or `h` then each field
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

use super::names::{client_name, engine_name, wire_name, EngineName};
use super::redis_scripts::{self as scripts, Aliases, Call, ScriptError};
use super::resp::{self, Args, Limits, Parsed, Request, Version};
use super::{Ctx, Progress, Protocol, Wire};
use crate::config::{Config, VERSION};
use crate::engine::{AcquireRequest, Acquired, Engine, Event, Mode};

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

/// A key's value as stored in its hold's attachment (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value<'a> {
    Str(&'a [u8]),
    /// Encoded fields: (2-byte length, bytes) name then value, repeated.
    Hash(&'a [u8]),
}

impl<'a> Value<'a> {
    fn decode(raw: &'a [u8]) -> Value<'a> {
        match raw.split_first() {
            Some((b'h', rest)) => Value::Hash(rest),
            Some((_, rest)) => Value::Str(rest),
            None => Value::Str(&[]),
        }
    }
}

/// The fields of an encoded hash, in order.
fn fields(mut enc: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let f = take_field(&mut enc)?;
        let v = take_field(&mut enc)?;
        Some((f, v))
    })
}

fn take_field<'a>(enc: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = enc.split_first_chunk::<2>()?;
    let n = usize::from(u16::from_be_bytes(*len));
    let (v, rest) = rest.split_at_checked(n)?;
    *enc = rest;
    Some(v)
}

fn push_field(out: &mut Vec<u8>, v: &[u8]) {
    debug_assert!(v.len() <= MAX_VALUE);
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

fn hash_get<'a>(enc: &'a [u8], field: &[u8]) -> Option<&'a [u8]> {
    fields(enc).find(|(f, _)| *f == field).map(|(_, v)| v)
}

/// What a key is right now.
#[derive(Clone, Copy, Debug)]
enum Key<'a> {
    /// No hold, no waiter.
    None,
    /// A Redis key: its hold's token, deadline and value.
    Redis {
        token: u64,
        deadline: Option<u64>,
        value: Value<'a>,
    },
    /// Held (or waited for) through another protocol.
    Foreign,
}

fn key_state<'e>(engine: &'e Engine, name: &[u8]) -> Key<'e> {
    let Some((info, _)) = engine.inspect(name) else {
        return Key::None;
    };
    match engine.detached_on(name) {
        Some(d) if info.exclusive && d.origin == Protocol::Redis as u8 => Key::Redis {
            token: d.token,
            deadline: d.deadline,
            value: Value::decode(d.value),
        },
        _ => Key::Foreign,
    }
}

/// Milliseconds left before `deadline` (engine ticks; the hold ends once the clock
/// reaches it), given the engine's ticks per millisecond.
fn ms_left(deadline: u64, now: u64, ticks_per_ms: u64) -> i64 {
    (deadline.saturating_sub(now + 1) / ticks_per_ms) as i64
}

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

/// The engine name of `key`, or the error written.
fn name_of(key: &[u8], cx: &mut Ctx) -> Option<EngineName> {
    let name = engine_name(b"", key);
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

/// Redis's strict integer.
fn int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -n } else { n })
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
        match cmd.len() {
            _ if is(cmd, "set") => {
                arity!(3, false);
                self.set(req, cx);
            }
            _ if is(cmd, "get") => {
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
            _ if is(cmd, "del") || is(cmd, "unlink") => {
                arity!(2, false);
                let mut n = 0;
                for key in req.iter().skip(1) {
                    let Some(name) = engine_name(b"", key) else {
                        continue;
                    };
                    if let Key::Redis { token, .. } = key_state(cx.engine, name.as_bytes()) {
                        delete(cx, name.as_bytes(), token);
                        n += 1;
                    }
                }
                resp::integer(cx.out, n);
            }
            _ if is(cmd, "exists") => {
                arity!(2, false);
                let n = req
                    .iter()
                    .skip(1)
                    .filter_map(|k| engine_name(b"", k))
                    .filter(|name| !matches!(key_state(cx.engine, name.as_bytes()), Key::None))
                    .count();
                resp::integer(cx.out, n as i64);
            }
            _ if is(cmd, "pexpire") || is(cmd, "expire") => {
                arity!(3, false);
                if argc > 3 {
                    err(cx, SYNTAX);
                    return Flow::Continue;
                }
                let Some(n) = int(arg(2)) else {
                    err(cx, NOT_INTEGER);
                    return Flow::Continue;
                };
                let ms = if is(cmd, "expire") {
                    n.checked_mul(1000)
                } else {
                    Some(n)
                };
                let Some(ms) = ms.filter(|&ms| ms <= scripts::MAX_TTL_MS) else {
                    cx.stats.errors_total += 1;
                    cx.out.extend_from_slice(b"-ERR invalid expire time in '");
                    cx.out.extend(cmd.iter().map(u8::to_ascii_lowercase));
                    cx.out.extend_from_slice(b"' command\r\n");
                    return Flow::Continue;
                };
                let Some(name) = name_of(arg(1), cx) else {
                    return Flow::Continue;
                };
                match key_state(cx.engine, name.as_bytes()) {
                    Key::None => resp::integer(cx.out, 0),
                    Key::Foreign => err(cx, LOCKED),
                    Key::Redis { token, .. } => {
                        expire(cx, name.as_bytes(), token, ms);
                        resp::integer(cx.out, 1);
                    }
                }
            }
            _ if is(cmd, "pttl") || is(cmd, "ttl") => {
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
            _ if is(cmd, "type") => {
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
            _ if is(cmd, "keys") => {
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
            _ if is(cmd, "scan") => {
                arity!(2, false);
                self.scan(req, cx);
            }
            _ if is(cmd, "hset") || is(cmd, "hmset") => {
                arity!(4, false);
                if !argc.is_multiple_of(2) {
                    wrong_args(cx, cmd);
                    return Flow::Continue;
                }
                self.hset(req, cx, is(cmd, "hmset"));
            }
            _ if is(cmd, "hget") || is(cmd, "hmget") || is(cmd, "hgetall") => {
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
            _ if is(cmd, "eval") || is(cmd, "evalsha") => {
                arity!(3, false);
                let script = if is(cmd, "eval") {
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
            _ if is(cmd, "script") => {
                arity!(2, false);
                self.script(req, cx);
            }
            _ if is(cmd, "ping") => match argc {
                1 => resp::simple(cx.out, b"PONG"),
                2 => resp::bulk(cx.out, arg(1)),
                _ => wrong_args(cx, cmd),
            },
            _ if is(cmd, "echo") => {
                arity!(2, true);
                resp::bulk(cx.out, arg(1));
            }
            _ if is(cmd, "quit") => {
                resp::simple(cx.out, b"OK");
                return Flow::Close;
            }
            _ if is(cmd, "select") => {
                arity!(2, true);
                match int(arg(1)) {
                    Some(0) => resp::simple(cx.out, b"OK"),
                    Some(_) => err(cx, b"ERR DB index is out of range"),
                    None => err(cx, NOT_INTEGER),
                }
            }
            _ if is(cmd, "info") => self.info(cx),
            _ if is(cmd, "client") => {
                arity!(2, false);
                self.client(req, cx);
            }
            _ if is(cmd, "hello") => return self.hello(req, cx),
            _ if is(cmd, "auth") => {
                arity!(2, false);
                if argc > 3 {
                    err(cx, SYNTAX);
                    return Flow::Continue;
                }
                self.auth(arg(argc - 1), cx);
            }
            _ if is(cmd, "command") => {
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

    /// `SET key value [NX|XX] [GET] [PX ms|EX s]`.
    fn set(&mut self, req: &Request, cx: &mut Ctx) {
        let (key, value) = (req.get(1).unwrap_or(&[]), req.get(2).unwrap_or(&[]));
        let (mut nx, mut xx, mut get, mut ttl) = (false, false, false, None);
        let mut i = 3;
        while let Some(opt) = req.get(i) {
            if is(opt, "nx") && !xx {
                nx = true;
            } else if is(opt, "xx") && !nx {
                xx = true;
            } else if is(opt, "get") {
                get = true;
            } else if (is(opt, "px") || is(opt, "ex")) && ttl.is_none() {
                let Some(n) = req.get(i + 1) else {
                    err(cx, SYNTAX);
                    return;
                };
                let Some(n) = int(n) else {
                    err(cx, NOT_INTEGER);
                    return;
                };
                let ms = if is(opt, "ex") {
                    n.checked_mul(1000)
                } else {
                    Some(n)
                };
                match ms.filter(|ms| (1..=scripts::MAX_TTL_MS).contains(ms)) {
                    Some(ms) => ttl = Some(ms),
                    None => {
                        err(cx, b"ERR invalid expire time in 'set' command");
                        return;
                    }
                }
                i += 1;
            } else {
                err(cx, SYNTAX);
                return;
            }
            i += 1;
        }
        if value.len() > MAX_VALUE {
            err(cx, TOO_LONG_VALUE);
            return;
        }
        let Some(name) = name_of(key, cx) else {
            return;
        };
        let name = name.as_bytes();
        let hold = ttl.map(|ms| ms as u32);
        let version = self.version;
        match key_state(cx.engine, name) {
            Key::None if xx => resp::null(cx.out, version),
            Key::None => {
                self.enc.clear();
                self.enc.push(b's');
                self.enc.extend_from_slice(value);
                if create(cx, name, &self.enc, hold) {
                    if get {
                        resp::null(cx.out, version);
                    } else {
                        resp::simple(cx.out, b"OK");
                    }
                }
            }
            Key::Foreign if nx => {
                if get {
                    resp::bulk(cx.out, FOREIGN_VALUE);
                } else {
                    resp::null(cx.out, version);
                }
            }
            Key::Foreign => err(cx, LOCKED),
            Key::Redis {
                value: Value::Hash(_),
                ..
            } if get => err(cx, WRONGTYPE),
            Key::Redis {
                value: Value::Str(old),
                ..
            } if nx => {
                if get {
                    resp::bulk(cx.out, old);
                } else {
                    resp::null(cx.out, version);
                }
            }
            Key::Redis { .. } if nx => resp::null(cx.out, version),
            Key::Redis {
                token, value: old, ..
            } => {
                let mark = cx.out.len();
                if get {
                    match old {
                        Value::Str(v) => resp::bulk(cx.out, v),
                        Value::Hash(_) => resp::null(cx.out, version),
                    }
                } else {
                    resp::simple(cx.out, b"OK");
                }
                self.enc.clear();
                self.enc.push(b's');
                self.enc.extend_from_slice(value);
                if cx.engine.attach(name, token, &self.enc).is_err() {
                    cx.out.truncate(mark);
                    err(cx, OOM);
                    return;
                }
                let _ = cx.engine.extend_detached(name, token, hold, cx.now);
            }
        }
    }

    /// `HSET key f v [f v ...]` (`HMSET`: the same, answering `+OK`).
    fn hset(&mut self, req: &Request, cx: &mut Ctx, hmset: bool) {
        let Some(name) = name_of(req.get(1).unwrap_or(&[]), cx) else {
            return;
        };
        let name = name.as_bytes();
        if req.iter().skip(2).any(|a| a.len() > MAX_VALUE) {
            err(cx, TOO_LONG_VALUE);
            return;
        }
        let (token, old): (Option<u64>, &[u8]) = match key_state(cx.engine, name) {
            Key::None => (None, &[]),
            Key::Foreign => return err(cx, LOCKED),
            Key::Redis {
                value: Value::Str(_),
                ..
            } => return err(cx, WRONGTYPE),
            Key::Redis {
                token,
                value: Value::Hash(h),
                ..
            } => (Some(token), h),
        };
        // Merge: old fields (updated), then new ones in request order.
        self.enc.clear();
        self.enc.push(b'h');
        let pairs = || {
            let mut it = req.iter().skip(2);
            std::iter::from_fn(move || Some((it.next()?, it.next()?)))
        };
        let last = |f: &[u8]| pairs().filter(|(g, _)| *g == f).last().map(|(_, v)| v);
        let mut count = 0;
        for (f, v) in fields(old) {
            push_field(&mut self.enc, f);
            push_field(&mut self.enc, last(f).unwrap_or(v));
            count += 1;
        }
        let mut added = 0;
        for (i, (f, v)) in pairs().enumerate() {
            let seen_before = pairs().take(i).any(|(g, _)| g == f);
            if seen_before || hash_get(old, f).is_some() {
                continue;
            }
            push_field(&mut self.enc, f);
            push_field(&mut self.enc, last(f).unwrap_or(v));
            added += 1;
            count += 1;
        }
        if count > MAX_FIELDS {
            return err(cx, TOO_MANY_FIELDS);
        }
        let done = match token {
            None => create(cx, name, &self.enc, None),
            Some(t) => match cx.engine.attach(name, t, &self.enc) {
                Ok(()) => true,
                Err(_) => {
                    err(cx, OOM);
                    false
                }
            },
        };
        if done {
            if hmset {
                resp::simple(cx.out, b"OK");
            } else {
                resp::integer(cx.out, added);
            }
        }
    }

    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`: the cursor is a lock slot.
    fn scan(&mut self, req: &Request, cx: &mut Ctx) {
        let Some(cursor) = req.get(1).and_then(int).filter(|&c| c >= 0) else {
            return err(cx, b"ERR invalid cursor");
        };
        let (mut pattern, mut count, mut type_) = (&b"*"[..], SCAN_COUNT, None);
        let mut i = 2;
        while let Some(opt) = req.get(i) {
            let Some(v) = req.get(i + 1) else {
                return err(cx, SYNTAX);
            };
            if is(opt, "match") {
                pattern = v;
            } else if is(opt, "count") {
                match int(v) {
                    Some(n) if n >= 1 => count = (n as usize).min(MAX_SCAN_COUNT),
                    Some(_) => return err(cx, SYNTAX),
                    None => return err(cx, NOT_INTEGER),
                }
            } else if is(opt, "type") {
                type_ = Some(v);
            } else {
                return err(cx, SYNTAX);
            }
            i += 2;
        }
        let slots = cx.engine.lock_slots();
        let mut slot = cursor as usize;
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut visited = 0;
        while slot < slots && found.len() < count && visited < count * SCAN_SLOTS_PER_KEY {
            if let Some(key) = cx.engine.lock_at(slot).and_then(wire_name) {
                let is_hash = engine_name(b"", &key).is_some_and(|n| {
                    matches!(
                        key_state(cx.engine, n.as_bytes()),
                        Key::Redis {
                            value: Value::Hash(_),
                            ..
                        }
                    )
                });
                let t: &[u8] = if is_hash { b"hash" } else { b"string" };
                if glob(pattern, &key) && type_.is_none_or(|w| w.eq_ignore_ascii_case(t)) {
                    found.push(key);
                }
            }
            slot += 1;
            visited += 1;
        }
        let next = if slot >= slots { 0 } else { slot };
        resp::array(cx.out, 2);
        let mut digits = Vec::with_capacity(20);
        super::push_u64(&mut digits, next as u64);
        resp::bulk(cx.out, &digits);
        resp::array(cx.out, found.len());
        for k in &found {
            resp::bulk(cx.out, k);
        }
    }

    /// `SCRIPT LOAD|EXISTS|FLUSH|KILL`.
    fn script(&mut self, req: &Request, cx: &mut Ctx) {
        let sub = req.get(1).unwrap_or(&[]);
        if is(sub, "load") {
            if req.len() != 3 {
                return wrong_args(cx, b"script|load");
            }
            match self.aliases.load(req.get(2).unwrap_or(&[])) {
                Some((_, sha)) => {
                    let mut hex = Vec::with_capacity(scripts::SHA1_HEX_LEN);
                    scripts::push_sha1_hex(&mut hex, &sha);
                    resp::bulk(cx.out, &hex);
                }
                None => {
                    cx.stats.errors_total += 1;
                    ScriptError::UnknownScript.write(cx.out);
                }
            }
        } else if is(sub, "exists") {
            if req.len() < 3 {
                return wrong_args(cx, b"script|exists");
            }
            resp::array(cx.out, req.len() - 2);
            for s in req.iter().skip(2) {
                let known = scripts::parse_sha1_hex(s)
                    .and_then(|sha| self.aliases.resolve(&sha))
                    .is_some();
                resp::integer(cx.out, i64::from(known));
            }
        } else if is(sub, "flush") {
            self.aliases.clear();
            resp::simple(cx.out, b"OK");
        } else if is(sub, "kill") {
            err(cx, b"NOTBUSY No scripts in execution right now.");
        } else {
            unknown_subcommand(cx, sub, "SCRIPT");
        }
    }

    /// Runs one bound script call.
    fn run(&mut self, call: Call, cx: &mut Ctx) {
        let n = match call {
            Call::HashCreate {
                key,
                id,
                owner,
                ttl_ms,
            } => {
                let Some(name) = name_of(key, cx) else { return };
                if !matches!(key_state(cx.engine, name.as_bytes()), Key::None) {
                    0
                } else if id.len() > MAX_VALUE || owner.len() > MAX_VALUE {
                    return err(cx, TOO_LONG_VALUE);
                } else if ttl_ms <= 0 {
                    1 // created and gone at once, as PEXPIRE <= 0 does
                } else {
                    self.enc.clear();
                    self.enc.push(b'h');
                    for v in [&b"id"[..], id, b"owner", owner] {
                        push_field(&mut self.enc, v);
                    }
                    if !create(cx, name.as_bytes(), &self.enc, Some(ttl_ms as u32)) {
                        return;
                    }
                    1
                }
            }
            Call::HashCompareDelete { key, id } | Call::HashComparePexpire { key, id, .. } => {
                let Some(name) = name_of(key, cx) else { return };
                match key_state(cx.engine, name.as_bytes()) {
                    Key::Redis {
                        token,
                        value: Value::Hash(h),
                        ..
                    } if hash_get(h, b"id") == Some(id) => {
                        match call {
                            Call::HashComparePexpire { ttl_ms, .. } => {
                                expire(cx, name.as_bytes(), token, ttl_ms)
                            }
                            _ => delete(cx, name.as_bytes(), token),
                        }
                        1
                    }
                    _ => 0,
                }
            }
            Call::CompareDelete { keys, value } => {
                let mut n = 0;
                for key in keys.iter() {
                    let Some(name) = engine_name(b"", key) else {
                        continue;
                    };
                    if let Some(token) = string_equal(cx.engine, name.as_bytes(), value) {
                        delete(cx, name.as_bytes(), token);
                        n += 1;
                    }
                }
                n
            }
            Call::ComparePexpire { key, value, ttl_ms } => {
                let Some(name) = name_of(key, cx) else { return };
                match string_equal(cx.engine, name.as_bytes(), value) {
                    Some(token) => {
                        expire(cx, name.as_bytes(), token, ttl_ms);
                        1
                    }
                    None => 0,
                }
            }
            Call::CompareExtend {
                key,
                value,
                ms,
                replace,
            } => {
                let Some(name) = name_of(key, cx) else { return };
                match key_state(cx.engine, name.as_bytes()) {
                    Key::Redis {
                        token,
                        deadline: Some(d),
                        value: Value::Str(v),
                    } if v == value => {
                        let new = if replace {
                            ms
                        } else {
                            ms_left(d, cx.now, cx.engine.ticks_per_ms()).saturating_add(ms)
                        };
                        if new > scripts::MAX_TTL_MS {
                            return err(cx, b"ERR invalid expire time in 'pexpire' command");
                        }
                        expire(cx, name.as_bytes(), token, new);
                        1
                    }
                    _ => 0,
                }
            }
            Call::MultiSetIfNone {
                keys,
                value,
                ttl_ms,
            } => {
                if value.len() > MAX_VALUE {
                    return err(cx, TOO_LONG_VALUE);
                }
                for key in keys.iter() {
                    let Some(name) = name_of(key, cx) else { return };
                    if !matches!(key_state(cx.engine, name.as_bytes()), Key::None) {
                        resp::integer(cx.out, 0);
                        return;
                    }
                }
                self.enc.clear();
                self.enc.push(b's');
                self.enc.extend_from_slice(value);
                for (i, key) in keys.iter().enumerate() {
                    let name = engine_name(b"", key).expect("checked above");
                    if keys.iter().take(i).any(|k| k == key) {
                        continue; // named twice: set once
                    }
                    if !create(cx, name.as_bytes(), &self.enc, Some(ttl_ms as u32)) {
                        // Out of room: undo, so the call stays all or nothing.
                        for k in keys.iter().take(i) {
                            let n = engine_name(b"", k).expect("checked above");
                            if let Some(t) = string_equal(cx.engine, n.as_bytes(), value) {
                                delete(cx, n.as_bytes(), t);
                            }
                        }
                        return;
                    }
                }
                keys.len() as i64
            }
            Call::MultiCompareSet {
                keys,
                value,
                ttl_ms,
            } => {
                let all = keys.iter().all(|key| {
                    engine_name(b"", key)
                        .is_some_and(|n| string_equal(cx.engine, n.as_bytes(), value).is_some())
                });
                if !all {
                    0
                } else {
                    for key in keys.iter() {
                        let name = engine_name(b"", key).expect("checked above");
                        if let Some(t) = string_equal(cx.engine, name.as_bytes(), value) {
                            expire(cx, name.as_bytes(), t, ttl_ms);
                        }
                    }
                    keys.len() as i64
                }
            }
        };
        resp::integer(cx.out, n);
    }

    /// `INFO [section]`: enough for clients' ready checks.
    fn info(&mut self, cx: &mut Ctx) {
        let (connections, ..) = cx.engine.gauges();
        let text = format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
             lockbox_version:{VERSION}\r\nuptime_in_seconds:{}\r\n\r\n# Clients\r\n\
             connected_clients:{connections}\r\n\r\n# Persistence\r\nloading:0\r\n",
            cx.engine.uptime(cx.now) / 1000
        );
        resp::bulk(cx.out, text.as_bytes());
    }

    /// `CLIENT ID|SETNAME|GETNAME|SETINFO`.
    fn client(&mut self, req: &Request, cx: &mut Ctx) {
        let sub = req.get(1).unwrap_or(&[]);
        let argc = req.len();
        if is(sub, "id") && argc == 2 {
            resp::integer(cx.out, i64::from(cx.client) + 1);
        } else if is(sub, "setname") && argc == 3 {
            let name = req.get(2).unwrap_or(&[]);
            if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return err(
                    cx,
                    b"ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            match client_name(name) {
                Some(n) => cx.engine.set_name(cx.client, Some(n.as_bytes())),
                None if name.is_empty() => cx.engine.set_name(cx.client, None),
                None => return err(cx, b"ERR client name is too long (most 64 bytes)"),
            }
            resp::simple(cx.out, b"OK");
        } else if is(sub, "getname") && argc == 2 {
            let name = cx
                .engine
                .client(cx.client)
                .and_then(|c| c.name())
                .and_then(wire_name);
            match name {
                Some(n) => resp::bulk(cx.out, &n),
                None => resp::null(cx.out, self.version),
            }
        } else if is(sub, "setinfo") && argc == 4 {
            resp::simple(cx.out, b"OK");
        } else if ["id", "setname", "getname", "setinfo"]
            .iter()
            .any(|s| is(sub, s))
        {
            let mut full = b"client|".to_vec();
            full.extend(sub.iter().map(u8::to_ascii_lowercase));
            wrong_args(cx, &full);
        } else {
            unknown_subcommand(cx, sub, "CLIENT");
        }
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    fn hello(&mut self, req: &Request, cx: &mut Ctx) -> Flow {
        let mut version = self.version;
        let mut i = 1;
        if let Some(v) = req.get(1) {
            match int(v) {
                Some(2) => version = Version::Resp2,
                Some(3) => version = Version::Resp3,
                Some(_) => {
                    err(cx, b"NOPROTO unsupported protocol version");
                    return Flow::Continue;
                }
                None => {
                    err(
                        cx,
                        b"ERR Protocol version is not an integer or out of range",
                    );
                    return Flow::Continue;
                }
            }
            i = 2;
        }
        let mut setname = None;
        while let Some(opt) = req.get(i) {
            if is(opt, "auth") && req.len() > i + 2 {
                let pass = req.get(i + 2).unwrap_or(&[]);
                if !self.check_secret(pass, cx) {
                    return Flow::Continue;
                }
                i += 3;
            } else if is(opt, "setname") && req.len() > i + 1 {
                setname = req.get(i + 1);
                i += 2;
            } else {
                cx.stats.errors_total += 1;
                cx.out
                    .extend_from_slice(b"-ERR Syntax error in HELLO option '");
                cx.out.extend(opt.iter().take(QUOTE_MAX).map(|&b| safe(b)));
                cx.out.extend_from_slice(b"'\r\n");
                return Flow::Continue;
            }
        }
        if !self.authed {
            err(cx, NOAUTH);
            return Flow::Continue;
        }
        if let Some(n) = setname.and_then(client_name) {
            cx.engine.set_name(cx.client, Some(n.as_bytes()));
        }
        self.version = version;
        resp::map(cx.out, 7, version);
        resp::bulk(cx.out, b"server");
        resp::bulk(cx.out, b"redis");
        resp::bulk(cx.out, b"version");
        resp::bulk(cx.out, REDIS_VERSION.as_bytes());
        resp::bulk(cx.out, b"proto");
        resp::integer(cx.out, if version == Version::Resp3 { 3 } else { 2 });
        resp::bulk(cx.out, b"id");
        resp::integer(cx.out, i64::from(cx.client) + 1);
        resp::bulk(cx.out, b"mode");
        resp::bulk(cx.out, b"standalone");
        resp::bulk(cx.out, b"role");
        resp::bulk(cx.out, b"master");
        resp::bulk(cx.out, b"modules");
        resp::array(cx.out, 0);
        Flow::Continue
    }

    fn auth(&mut self, pass: &[u8], cx: &mut Ctx) {
        if cx.secret.is_none() {
            return err(
                cx,
                b"ERR AUTH <password> called without any password configured for the default user. \
                  Are you sure your configuration is correct?",
            );
        }
        if self.check_secret(pass, cx) {
            resp::simple(cx.out, b"OK");
        }
    }

    /// Checks an AUTH password; writes `WRONGPASS` when it is wrong.
    fn check_secret(&mut self, pass: &[u8], cx: &mut Ctx) -> bool {
        match cx.secret {
            None => true,
            Some(s) if constant_time_eq(pass, s) => {
                self.authed = true;
                true
            }
            Some(_) => {
                err(cx, WRONGPASS);
                false
            }
        }
    }
}

/// Commands answered here, for `COMMAND COUNT`.
const COMMANDS: usize = 34;

/// Compares in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        diff |= u64::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The token of `name` when it is a Redis string key whose value is `value`.
fn string_equal(engine: &Engine, name: &[u8], value: &[u8]) -> Option<u64> {
    match key_state(engine, name) {
        Key::Redis {
            token,
            value: Value::Str(v),
            ..
        } if v == value => Some(token),
        _ => None,
    }
}

/// Creates a Redis key (`name` must be free); writes `-OOM` and says false when the
/// engine has no room.
fn create(cx: &mut Ctx, name: &[u8], value: &[u8], hold: Option<u32>) -> bool {
    let req = AcquireRequest {
        name,
        mode: Mode::Exclusive,
        wait: Some(0),
        hold,
        queue: None,
    };
    match cx
        .engine
        .acquire_detached(cx.client, b"", &req, value, cx.now)
    {
        Acquired::Granted { .. } => true,
        // The detached-hold limits, or `--max-claims`.
        Acquired::Limit | Acquired::Full => {
            err(cx, OOM);
            false
        }
        // Checked free just before: nothing else runs in between.
        other => {
            debug_assert!(false, "create of a free key: {other:?}");
            err(cx, OOM);
            false
        }
    }
}

/// Deletes a Redis key; its waiters are granted.
fn delete(cx: &mut Ctx, name: &[u8], token: u64) {
    let _ = cx.engine.release(cx.client, name, Some(token), cx.now);
}

/// `PEXPIRE` of a Redis key: 0 or less deletes it.
fn expire(cx: &mut Ctx, name: &[u8], token: u64, ms: i64) {
    if ms <= 0 {
        delete(cx, name, token);
    } else {
        let hold = u32::try_from(ms).unwrap_or(u32::MAX);
        let _ = cx.engine.extend_detached(name, token, Some(hold), cx.now);
    }
}

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

/// Redis's glob: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`.
pub fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, end)) = class(pattern, p, s[i]) {
                        if matched {
                            p = end;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == s[i] => {
                    p += 2;
                    i += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, si)) => {
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[p] == '['`: (matched, index
/// after `]`), or `None` when the class is not closed.
fn class(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    loop {
        let b = *pattern.get(j)?;
        if b == b']' {
            return Some((matched != negate, j + 1));
        }
        if b == b'\\' {
            let e = *pattern.get(j + 1)?;
            matched |= e == c;
            j += 2;
        } else if pattern.get(j + 1) == Some(&b'-')
            && pattern.get(j + 2).is_some_and(|&e| e != b']')
        {
            let (lo, hi) = (b.min(pattern[j + 2]), b.max(pattern[j + 2]));
            matched |= (lo..=hi).contains(&c);
            j += 3;
        } else {
            matched |= b == c;
            j += 1;
        }
    }
}

#[cfg(test)]
#[path = "redis_tests.rs"]
mod tests;
