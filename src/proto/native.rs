//! The native lockbox protocol, version 1 (`shared/spec/protocol.md`).
//!
//! # Format
//! ```text
//! line     = *blank id 1*blank verb *(1*blank arg) *blank [CR] LF
//! blank    = SP / HTAB
//! id       = 1*32( ALPHA / DIGIT / "_" / "." / ":" / "-" )
//! verb     = case-insensitive word (LOCK, SHARE, UNLOCK, ...)
//! name     = 1*255( %x21-7E / %x80-FF )        ; no controls, space or DEL
//! option   = key "=" number                     ; each key at most once, any order
//! number   = 1*DIGIT                            ; unsigned decimal, range checked
//!
//! LOCK    name [wait=ms] [hold=ms] [queue=n]
//! SHARE   name [max=n] [wait=ms] [hold=ms] [queue=n]
//! UNLOCK  name [token]
//! EXTEND  name token hold=ms
//! CANCEL  request-id
//! RESET | WHOAMI | CLIENTS | STATS | PING | QUIT
//! INSPECT name
//! LIST    [prefix]
//! NAME    client-name                            ; 1 to 64 bytes, name rules
//! AUTH    secret
//! ```
//! Parsing borrows from the input line and allocates nothing; [`parse`] is the only
//! place a line's grammar is decided. A blank line is no request and gets no reply.

use super::{
    frame_line, push_addr, push_label, push_u64, Ctx, Line as Framed, Progress, U64_DIGITS,
};
use crate::config::Config;
use crate::engine::{AcquireRequest, Acquired, Engine, Event, EventKind};
use crate::table::{FindError, Mode};
use memchr::memchr;

/// Longest request id.
pub const MAX_ID: usize = 32;
/// Longest lock name.
pub const MAX_NAME: usize = crate::table::MAX_NAME;
/// Longest client name.
pub const MAX_CLIENT_NAME: usize = 64;

/// The verbs, in `STATS` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// LOCK
    Lock,
    /// SHARE
    Share,
    /// UNLOCK
    Unlock,
    /// EXTEND
    Extend,
    /// CANCEL
    Cancel,
    /// RESET
    Reset,
    /// INSPECT
    Inspect,
    /// LIST
    List,
    /// NAME
    Name,
    /// WHOAMI
    Whoami,
    /// CLIENTS
    Clients,
    /// STATS
    Stats,
    /// PING
    Ping,
    /// QUIT
    Quit,
    /// AUTH
    Auth,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 15] = [
        Verb::Lock,
        Verb::Share,
        Verb::Unlock,
        Verb::Extend,
        Verb::Cancel,
        Verb::Reset,
        Verb::Inspect,
        Verb::List,
        Verb::Name,
        Verb::Whoami,
        Verb::Clients,
        Verb::Stats,
        Verb::Ping,
        Verb::Quit,
        Verb::Auth,
    ];

    /// The lowercase verb, as in `cmd_<verb>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Lock => "lock",
            Verb::Share => "share",
            Verb::Unlock => "unlock",
            Verb::Extend => "extend",
            Verb::Cancel => "cancel",
            Verb::Reset => "reset",
            Verb::Inspect => "inspect",
            Verb::List => "list",
            Verb::Name => "name",
            Verb::Whoami => "whoami",
            Verb::Clients => "clients",
            Verb::Stats => "stats",
            Verb::Ping => "ping",
            Verb::Quit => "quit",
            Verb::Auth => "auth",
        }
    }

    fn from_word(word: &[u8]) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| word.eq_ignore_ascii_case(v.as_str().as_bytes()))
    }
}

/// Stable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The line cannot be parsed.
    BadRequest,
    /// No such verb.
    UnknownCommand,
    /// A lock or client name breaks the name rules.
    BadName,
    /// Unknown, repeated or malformed option or number.
    BadOption,
    /// Not held by this connection.
    NotHeld,
    /// Several holds on that name: say which.
    TokenRequired,
    /// No pending wait with that id.
    NotWaiting,
    /// Too many waiters already.
    QueueFull,
    /// A server limit.
    Limit,
    /// AUTH first.
    AuthRequired,
    /// Wrong secret.
    AuthFailed,
    /// The line is longer than the server accepts.
    LineTooLong,
}

impl ErrorCode {
    /// The code word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::BadName => "bad_name",
            ErrorCode::BadOption => "bad_option",
            ErrorCode::NotHeld => "not_held",
            ErrorCode::TokenRequired => "token_required",
            ErrorCode::NotWaiting => "not_waiting",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::Limit => "limit",
            ErrorCode::AuthRequired => "auth_required",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::LineTooLong => "line_too_long",
        }
    }
}

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// LOCK or SHARE: exactly what the engine takes.
    Acquire(AcquireRequest<'a>),
    /// `UNLOCK name [token]`.
    Unlock {
        /// Lock name.
        name: &'a [u8],
        /// Which hold, when several.
        token: Option<u64>,
    },
    /// EXTEND name token hold=ms.
    Extend {
        /// Lock name.
        name: &'a [u8],
        /// The hold.
        token: u64,
        /// New hold from now.
        hold: u32,
    },
    /// CANCEL request-id.
    Cancel {
        /// The id of the waits to end.
        rid: &'a [u8],
    },
    /// RESET.
    Reset,
    /// INSPECT name.
    Inspect {
        /// Lock name.
        name: &'a [u8],
    },
    /// `LIST [prefix]`.
    List {
        /// Only names starting with this.
        prefix: &'a [u8],
    },
    /// NAME client-name.
    Name {
        /// The new friendly name.
        name: &'a [u8],
    },
    /// WHOAMI.
    Whoami,
    /// CLIENTS.
    Clients,
    /// STATS.
    Stats,
    /// PING.
    Ping,
    /// QUIT.
    Quit,
    /// AUTH secret.
    Auth {
        /// The secret as sent.
        secret: &'a [u8],
    },
}

/// A request line: its id, verb and typed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The client's request id.
    pub id: &'a [u8],
    /// The verb (for per-verb stats).
    pub verb: Verb,
    /// The request.
    pub request: Request<'a>,
}

/// Why a line was refused. `id` is `None` when the id itself could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError<'a> {
    /// The request id, if readable (else the reply uses `*`).
    pub id: Option<&'a [u8]>,
    /// The error code.
    pub code: ErrorCode,
    /// Human text.
    pub text: &'static str,
}

/// Splits a line into blank-separated tokens.
struct Tokens<'a>(&'a [u8]);

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = self.0.iter().position(|b| !is_blank(b))?;
        let rest = &self.0[start..];
        let end = rest.iter().position(is_blank).unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

/// True for a valid request id.
pub fn valid_id(id: &[u8]) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// True for a valid name of at most `max` bytes.
pub fn valid_name(name: &[u8], max: usize) -> bool {
    (1..=max).contains(&name.len()) && name.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// Parses an unsigned decimal number no larger than `max`.
fn parse_number(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > U64_DIGITS {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (n <= max).then_some(n)
}

/// The options a verb accepts, as parsed.
#[derive(Default)]
struct Options {
    max: Option<u32>,
    wait: Option<u32>,
    hold: Option<u32>,
    queue: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Max,
    Wait,
    Hold,
    Queue,
}

impl Options {
    /// Parses `key=value` tokens, accepting only `allowed` keys, each at most once.
    fn parse<'a>(
        tokens: impl Iterator<Item = &'a [u8]>,
        allowed: &[Key],
    ) -> Result<Options, &'static str> {
        let mut o = Options::default();
        for t in tokens {
            let eq = memchr(b'=', t).ok_or("expected key=value")?;
            let (k, v) = (&t[..eq], &t[eq + 1..]);
            let key = [
                (&b"max"[..], Key::Max),
                (b"wait", Key::Wait),
                (b"hold", Key::Hold),
                (b"queue", Key::Queue),
            ]
            .into_iter()
            .find(|(word, _)| k.eq_ignore_ascii_case(word))
            .map(|(_, key)| key)
            .filter(|key| allowed.contains(key))
            .ok_or("unknown option")?;
            let n = parse_number(v, u64::from(u32::MAX))
                .ok_or("option value must be a number from 0 to 4294967295")?
                as u32;
            let slot = match key {
                Key::Max => &mut o.max,
                Key::Wait => &mut o.wait,
                Key::Hold => &mut o.hold,
                Key::Queue => &mut o.queue,
            };
            if slot.replace(n).is_some() {
                return Err("repeated option");
            }
        }
        Ok(o)
    }
}

/// Parses one request line (without its line end). `Ok(None)` for a blank line.
pub fn parse<'a>(line: &'a [u8]) -> Result<Option<Line<'a>>, ParseError<'a>> {
    let mut tokens = Tokens(line);
    let Some(id) = tokens.next() else {
        return Ok(None);
    };
    if !valid_id(id) {
        return Err(ParseError {
            id: None,
            code: ErrorCode::BadRequest,
            text: "invalid request id",
        });
    }
    let err = |code, text| ParseError {
        id: Some(id),
        code,
        text,
    };
    let verb_word = tokens
        .next()
        .ok_or(err(ErrorCode::BadRequest, "missing verb"))?;
    let verb = Verb::from_word(verb_word).ok_or(err(ErrorCode::UnknownCommand, "unknown verb"))?;
    let name_arg = |t: Option<&'a [u8]>, max: usize| -> Result<&'a [u8], ParseError<'a>> {
        let t = t.ok_or(err(ErrorCode::BadRequest, "missing name"))?;
        if valid_name(t, max) {
            Ok(t)
        } else {
            Err(err(
                ErrorCode::BadName,
                "names are 1 to 255 bytes with no control characters, spaces or DEL",
            ))
        }
    };
    let no_more = |mut t: Tokens| match t.next() {
        None => Ok(()),
        Some(_) => Err(err(ErrorCode::BadRequest, "too many arguments")),
    };
    let request = match verb {
        Verb::Lock | Verb::Share => {
            let name = name_arg(tokens.next(), MAX_NAME)?;
            let allowed: &[Key] = if verb == Verb::Lock {
                &[Key::Wait, Key::Hold, Key::Queue]
            } else {
                &[Key::Max, Key::Wait, Key::Hold, Key::Queue]
            };
            let o = Options::parse(tokens, allowed).map_err(|t| err(ErrorCode::BadOption, t))?;
            let mode = match (verb, o.max) {
                (Verb::Lock, _) => Mode::Exclusive,
                (_, Some(0)) => return Err(err(ErrorCode::BadOption, "max must be at least 1")),
                (_, max) => Mode::Shared {
                    max: max.unwrap_or(0),
                },
            };
            Request::Acquire(AcquireRequest {
                name,
                mode,
                wait: o.wait,
                hold: o.hold,
                queue: o.queue,
            })
        }
        Verb::Unlock => {
            let name = name_arg(tokens.next(), MAX_NAME)?;
            let token = match tokens.next() {
                None => None,
                Some(t) => Some(
                    parse_number(t, u64::MAX)
                        .ok_or(err(ErrorCode::BadOption, "token must be a number"))?,
                ),
            };
            no_more(tokens)?;
            Request::Unlock { name, token }
        }
        Verb::Extend => {
            let name = name_arg(tokens.next(), MAX_NAME)?;
            let t = tokens
                .next()
                .ok_or(err(ErrorCode::BadRequest, "missing token"))?;
            let token = parse_number(t, u64::MAX)
                .ok_or(err(ErrorCode::BadOption, "token must be a number"))?;
            let o =
                Options::parse(tokens, &[Key::Hold]).map_err(|t| err(ErrorCode::BadOption, t))?;
            let hold = o
                .hold
                .ok_or(err(ErrorCode::BadOption, "hold= is required"))?;
            Request::Extend { name, token, hold }
        }
        Verb::Cancel => {
            let rid = tokens
                .next()
                .ok_or(err(ErrorCode::BadRequest, "missing request id"))?;
            if !valid_id(rid) {
                return Err(err(ErrorCode::BadRequest, "invalid request id to cancel"));
            }
            no_more(tokens)?;
            Request::Cancel { rid }
        }
        Verb::Inspect => {
            let name = name_arg(tokens.next(), MAX_NAME)?;
            no_more(tokens)?;
            Request::Inspect { name }
        }
        Verb::List => {
            let prefix = match tokens.next() {
                None => &[][..],
                t => name_arg(t, MAX_NAME)?,
            };
            no_more(tokens)?;
            Request::List { prefix }
        }
        Verb::Name => {
            let t = tokens
                .next()
                .ok_or(err(ErrorCode::BadRequest, "missing client name"))?;
            if !valid_name(t, MAX_CLIENT_NAME) {
                return Err(err(
                    ErrorCode::BadName,
                    "client names are 1 to 64 bytes with no control characters, spaces or DEL",
                ));
            }
            no_more(tokens)?;
            Request::Name { name: t }
        }
        Verb::Auth => {
            let secret = tokens
                .next()
                .ok_or(err(ErrorCode::BadRequest, "missing secret"))?;
            no_more(tokens)?;
            Request::Auth { secret }
        }
        Verb::Reset | Verb::Whoami | Verb::Clients | Verb::Stats | Verb::Ping | Verb::Quit => {
            no_more(tokens)?;
            match verb {
                Verb::Reset => Request::Reset,
                Verb::Whoami => Request::Whoami,
                Verb::Clients => Request::Clients,
                Verb::Stats => Request::Stats,
                Verb::Ping => Request::Ping,
                _ => Request::Quit,
            }
        }
    };
    Ok(Some(Line { id, verb, request }))
}

/// Per-connection state of the native codec.
#[derive(Debug)]
pub struct Session {
    max_line: usize,
    /// AUTH succeeded (or none is required).
    authed: bool,
}

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: &Config) -> Self {
        Session {
            max_line: cfg.max_line,
            authed: cfg.auth_file.is_none(),
        }
    }

    /// Writes an engine event as a native reply line.
    pub fn encode_event(&mut self, event: &Event, _engine: &Engine, out: &mut Vec<u8>) {
        encode_event(event, out)
    }

    /// Decodes and handles at most one line.
    pub fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        match frame_line(input, self.max_line) {
            Framed::Incomplete => Progress::Incomplete,
            Framed::TooLong(line, consumed) => self.too_long(line, consumed, cx),
            Framed::Complete(line, consumed) => match self.handle(line, cx) {
                Flow::Continue => Progress::Consumed(consumed),
                Flow::Close => Progress::Close(consumed),
            },
        }
    }

    /// Replies `line_too_long` (with the line's id if it can be read) and closes.
    fn too_long(&mut self, line: &[u8], consumed: usize, cx: &mut Ctx) -> Progress {
        let id = Tokens(line).next().filter(|id| valid_id(id));
        log::debug!(
            "client {}: line over {} bytes, closing",
            cx.client,
            self.max_line
        );
        error(
            cx,
            id,
            ErrorCode::LineTooLong,
            "request line too long; closing",
        );
        Progress::Close(consumed)
    }

    fn handle(&mut self, line: &[u8], cx: &mut Ctx) -> Flow {
        let Line { id, verb, request } = match parse(line) {
            Ok(Some(l)) => l,
            Ok(None) => return Flow::Continue,
            Err(e) => {
                log::debug!("client {}: {} ({})", cx.client, e.code.as_str(), e.text);
                error(cx, e.id, e.code, e.text);
                return Flow::Continue;
            }
        };
        cx.stats.native_commands[verb as usize] += 1;
        // `authed` starts true when the server has no secret.
        if !self.authed && !matches!(verb, Verb::Ping | Verb::Quit | Verb::Auth) {
            error(cx, Some(id), ErrorCode::AuthRequired, "AUTH first");
            return Flow::Continue;
        }
        let now = cx.now;
        match request {
            Request::Acquire(a) => match cx.engine.acquire(cx.client, id, &a, now) {
                Acquired::Granted { token, holders } => {
                    let shared = matches!(a.mode, Mode::Shared { .. });
                    write_granted(cx.out, id, token, shared.then_some(holders));
                }
                Acquired::Queued => {}
                Acquired::Timeout => reply(cx.out, id, b"TIMEOUT"),
                Acquired::QueueFull => error(
                    cx,
                    Some(id),
                    ErrorCode::QueueFull,
                    "too many requests already wait",
                ),
                Acquired::Limit => error(
                    cx,
                    Some(id),
                    ErrorCode::Limit,
                    "too many holds and waits on this connection",
                ),
            },
            Request::Unlock { name, token } => match cx.engine.release(cx.client, name, token, now)
            {
                Ok(()) => reply(cx.out, id, b"OK"),
                Err(e) => find_error(cx, id, e),
            },
            Request::Extend { name, token, hold } => {
                match cx.engine.extend(cx.client, name, token, hold, now) {
                    Ok(()) => reply(cx.out, id, b"OK"),
                    Err(e) => find_error(cx, id, e),
                }
            }
            Request::Cancel { rid } => {
                let out = &mut *cx.out;
                let n = cx
                    .engine
                    .cancel(cx.client, rid, now, |tag| reply(out, tag, b"CANCELLED"));
                if n == 0 {
                    error(
                        cx,
                        Some(id),
                        ErrorCode::NotWaiting,
                        "no pending wait with that id",
                    );
                } else {
                    start(cx.out, id, b"OK");
                    push_u64(cx.out, u64::from(n));
                    cx.out.push(b'\n');
                }
            }
            Request::Reset => {
                let out = &mut *cx.out;
                let (released, cancelled) = cx
                    .engine
                    .reset(cx.client, now, |tag| reply(out, tag, b"CANCELLED"));
                start(cx.out, id, b"OK");
                push_u64(cx.out, u64::from(released));
                cx.out.push(b' ');
                push_u64(cx.out, u64::from(cancelled));
                cx.out.push(b'\n');
            }
            Request::Inspect { name } => write_inspect(cx, id, name),
            Request::List { prefix } => write_list(cx, id, prefix),
            Request::Name { name } => {
                cx.engine.set_name(cx.client, Some(name));
                reply(cx.out, id, b"OK");
            }
            Request::Whoami => {
                start(cx.out, id, b"OK");
                push_addr(cx.out, cx.engine, cx.client);
                cx.out.push(b' ');
                push_label(cx.out, cx.engine, cx.client);
                cx.out.push(b'\n');
            }
            Request::Clients => write_clients(cx, id),
            Request::Stats => write_stats(cx, id),
            Request::Ping => reply(cx.out, id, b"PONG"),
            Request::Quit => {
                reply(cx.out, id, b"OK");
                return Flow::Close;
            }
            Request::Auth { secret } => match cx.secret {
                // No secret configured: every client is already allowed.
                None => reply(cx.out, id, b"OK"),
                Some(expected) if constant_time_eq(secret, expected) => {
                    self.authed = true;
                    reply(cx.out, id, b"OK");
                }
                Some(_) => {
                    log::debug!("client {}: wrong AUTH secret, closing", cx.client);
                    error(cx, Some(id), ErrorCode::AuthFailed, "wrong secret; closing");
                    return Flow::Close;
                }
            },
        }
        Flow::Continue
    }
}

/// Compares in time that depends only on the lengths, not on where bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

enum Flow {
    Continue,
    Close,
}

/// Writes an engine event as a native reply line.
fn encode_event(event: &Event, out: &mut Vec<u8>) {
    match event.kind {
        EventKind::Granted {
            token,
            holders,
            shared,
        } => write_granted(out, &event.tag, token, shared.then_some(holders)),
        EventKind::Timeout => reply(out, &event.tag, b"TIMEOUT"),
        EventKind::Expired { token } => {
            start(out, &event.tag, b"EXPIRED");
            push_u64(out, token);
            out.push(b'\n');
        }
    }
}

/// `<id> <word>` followed by a space, ready for fields.
fn start(out: &mut Vec<u8>, id: &[u8], word: &[u8]) {
    out.extend_from_slice(id);
    out.push(b' ');
    out.extend_from_slice(word);
    out.push(b' ');
}

/// A whole `<id> <word>\n` line.
fn reply(out: &mut Vec<u8>, id: &[u8], word: &[u8]) {
    out.extend_from_slice(id);
    out.push(b' ');
    out.extend_from_slice(word);
    out.push(b'\n');
}

fn write_granted(out: &mut Vec<u8>, id: &[u8], token: u64, holders: Option<u32>) {
    start(out, id, b"OK");
    push_u64(out, token);
    if let Some(h) = holders {
        out.push(b' ');
        push_u64(out, u64::from(h));
    }
    out.push(b'\n');
}

fn error(cx: &mut Ctx, id: Option<&[u8]>, code: ErrorCode, text: &str) {
    cx.stats.errors_total += 1;
    start(cx.out, id.unwrap_or(b"*"), b"ERR");
    cx.out.extend_from_slice(code.as_str().as_bytes());
    cx.out.push(b' ');
    cx.out.extend_from_slice(text.as_bytes());
    cx.out.push(b'\n');
}

fn find_error(cx: &mut Ctx, id: &[u8], e: FindError) {
    match e {
        FindError::NotHeld => error(
            cx,
            Some(id),
            ErrorCode::NotHeld,
            "not held by this connection",
        ),
        FindError::TokenRequired => error(
            cx,
            Some(id),
            ErrorCode::TokenRequired,
            "several holds on this name: give the token",
        ),
    }
}

fn push_counts(out: &mut Vec<u8>, mode: &[u8], holders: u32, waiters: u32) {
    out.extend_from_slice(b"mode=");
    out.extend_from_slice(mode);
    out.extend_from_slice(b" holders=");
    push_u64(out, u64::from(holders));
    out.extend_from_slice(b" waiters=");
    push_u64(out, u64::from(waiters));
}

fn mode_word(exclusive: bool, holders: u32) -> &'static [u8] {
    match (holders, exclusive) {
        (0, _) => b"free",
        (_, true) => b"exclusive",
        (_, false) => b"shared",
    }
}

fn write_inspect(cx: &mut Ctx, id: &[u8], name: &[u8]) {
    start(cx.out, id, b"OK");
    match cx.engine.inspect(name) {
        None => push_counts(cx.out, b"free", 0, 0),
        Some((info, holder)) => {
            push_counts(
                cx.out,
                mode_word(info.exclusive, info.holders),
                info.holders,
                info.waiters,
            );
            if let Some(h) = holder {
                cx.out.extend_from_slice(b" token=");
                push_u64(cx.out, h.token);
                cx.out.extend_from_slice(b" owner=");
                push_label(cx.out, cx.engine, h.client);
            }
        }
    }
    cx.out.push(b'\n');
}

fn write_list(cx: &mut Ctx, id: &[u8], prefix: &[u8]) {
    // Introspection, not the hot path: sorting needs a list of the matching names.
    let mut rows: Vec<_> = cx
        .engine
        .locks()
        .filter(|(name, _)| name.starts_with(prefix))
        .collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (name, info) in &rows {
        start(cx.out, id, b"ITEM");
        cx.out.extend_from_slice(name);
        cx.out.push(b' ');
        push_counts(
            cx.out,
            mode_word(info.exclusive, info.holders),
            info.holders,
            info.waiters,
        );
        cx.out.push(b'\n');
    }
    write_end(cx.out, id, rows.len());
}

fn write_end(out: &mut Vec<u8>, id: &[u8], rows: usize) {
    start(out, id, b"END");
    push_u64(out, rows as u64);
    out.push(b'\n');
}

fn write_clients(cx: &mut Ctx, id: &[u8]) {
    let mut rows = 0;
    for (client, _, (holds, waits)) in cx.engine.clients() {
        start(cx.out, id, b"CLIENT");
        push_addr(cx.out, cx.engine, client);
        cx.out.extend_from_slice(b" name=");
        push_label(cx.out, cx.engine, client);
        cx.out.extend_from_slice(b" holds=");
        push_u64(cx.out, u64::from(holds));
        cx.out.extend_from_slice(b" waits=");
        push_u64(cx.out, u64::from(waits));
        cx.out.push(b'\n');
        rows += 1;
    }
    write_end(cx.out, id, rows);
}

fn write_stats(cx: &mut Ctx, id: &[u8]) {
    let c = cx.engine.counters();
    let (connections, locks, holds, waiters) = cx.engine.gauges();
    let s = &*cx.stats;
    let mut rows: Vec<(&str, u64)> = vec![
        ("uptime_ms", cx.engine.uptime(cx.now)),
        ("connections", connections as u64),
        ("connections_total", c.connections_total),
        ("locks", locks as u64),
        ("holds", holds as u64),
        ("waiters", waiters as u64),
        ("grants_total", c.grants_total),
        ("timeouts_total", c.timeouts_total),
        ("expired_total", c.expired_total),
        (
            "released_on_disconnect_total",
            c.released_on_disconnect_total,
        ),
        ("errors_total", s.errors_total),
        ("bytes_in", s.bytes_in),
        ("bytes_out", s.bytes_out),
    ];
    let cmd_rows = Verb::ALL
        .iter()
        .map(|v| (v.as_str(), s.native_commands[*v as usize]));
    let first_cmd = rows.len();
    rows.extend(cmd_rows);
    for (i, (key, value)) in rows.iter().enumerate() {
        start(cx.out, id, b"STAT");
        if i >= first_cmd {
            cx.out.extend_from_slice(b"cmd_");
        }
        cx.out.extend_from_slice(key.as_bytes());
        cx.out.push(b' ');
        push_u64(cx.out, *value);
        cx.out.push(b'\n');
    }
    write_end(cx.out, id, rows.len());
}
