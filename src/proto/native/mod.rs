//! The native lockbox protocol, version 1: the grammar ([`parse`]) and the session that
//! executes parsed requests against the engine.
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
//! LOCK    name [wait=ms] [hold=ms] [queue=n] [detached=0|1]   ; detached=1 needs hold=
//! SHARE   name [max=n] [wait=ms] [hold=ms] [queue=n] [detached=0|1]
//! UNLOCK  name [token]
//! EXTEND  name token hold=ms
//! CANCEL  request-id
//! RESET | WHOAMI | CLIENTS | STATS | PING | QUIT
//! INSPECT name
//! LIST    [prefix]
//! NAME    client-name                            ; 1 to 64 bytes, name rules
//! AUTH    secret
//! ```
//! Parsing borrows from the input line and allocates nothing; [`parse()`] is the only
//! place a line's grammar is decided. A blank line is no request and gets no reply.
//!
//! # Invariants
//! - Every request line gets exactly one reply line (or, for `LIST`, `CLIENTS` and
//!   `STATS`, rows then one `END`), except `LOCK`/`SHARE` that queue: their answer is a
//!   later event with the same id.
//! - `LIST` and `CLIENTS` are listings ([`crate::proto::listing`]), written a batch at
//!   a time: `LIST` rows sorted by name, `CLIENTS` rows in connection-slot order; the
//!   connection's next line is executed, and its events written, after the `END`.
//! - Until `AUTH` succeeds on a server with a secret, only `PING`, `QUIT` and `AUTH`
//!   are executed.

use super::framing::{decode_line, Flow, Lines};
use super::listing::Batch;
use super::{push_addr, push_label, push_u64, Ctx, Progress, Protocol, Wire};
use crate::config::Config;
use crate::engine::{AcquireRequest, Acquired, Engine, Event, EventKind, FindError, Mode};

mod fast;
mod listing;
mod parse;
#[cfg(test)]
mod tests;

use parse::Tokens;
pub use parse::{
    parse, valid_id, valid_name, ErrorCode, Message, ParseError, Request, RequestLine, Verb,
    MAX_CLIENT_NAME, MAX_ID, MAX_NAME, MAX_QUOTE,
};

/// Longest AUTH secret.
pub const MAX_SECRET: usize = 1024;

/// Sent (best effort) to a connection refused by `--max-connections`.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"* ERR limit too many connections\n";

/// Sent to a connection closed by `--auth-timeout`.
pub const AUTH_TIMED_OUT: &[u8] = b"* ERR auth_required AUTH timed out; closing\n";

/// Bytes a connection may send before `AUTH` succeeds (when a secret is required): room
/// for a few `PING`s and an `AUTH` with the longest secret, so an unauthenticated client
/// can make the server neither buffer nor answer much.
pub const PRE_AUTH_INPUT: usize = 8 * 1024;

/// The longest request line before `AUTH` succeeds: an id, `AUTH` and the secret.
pub const PRE_AUTH_LINE: usize = MAX_ID + 6 + MAX_SECRET;

/// The AUTH secret in the text of an auth file: its first line without the line end,
/// when that is 1 to [`MAX_SECRET`] bytes with no spaces or control characters.
pub fn secret_from_file(text: &[u8]) -> Option<&[u8]> {
    let line = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    valid_name(line, MAX_SECRET).then_some(line)
}

/// Per-connection state of the native codec.
#[derive(Debug)]
pub struct Session {
    lines: Lines,
    /// AUTH succeeded (or none is required).
    authed: bool,
    /// `LIST` / `CLIENTS` in progress.
    listings: listing::Listings,
    /// Bytes consumed before AUTH succeeded.
    pre_auth: usize,
    /// `--max-line`, in force once authenticated.
    max_line: usize,
}

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: &Config) -> Self {
        let authed = cfg.auth_file.is_none();
        let first_line = if authed {
            cfg.max_line
        } else {
            cfg.max_line.min(PRE_AUTH_LINE)
        };
        Session {
            lines: Lines::new(first_line),
            authed,
            pre_auth: 0,
            max_line: cfg.max_line,
            listings: listing::Listings::default(),
        }
    }
}

/// Answers an acquire; `detached` says whether it asked for a detached hold, the only
/// kind the server-wide detached-hold limit refuses.
fn acquired(cx: &mut Ctx, id: &[u8], a: &AcquireRequest, detached: bool, answer: Acquired) {
    {
        match answer {
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
            Acquired::Limit if detached => error(
                cx,
                Some(id),
                ErrorCode::Limit,
                "too many holds and waits on this connection, or detached holds on the server",
            ),
            Acquired::Limit => error(
                cx,
                Some(id),
                ErrorCode::Limit,
                "too many holds and waits on this connection",
            ),
            Acquired::Full => error(
                cx,
                Some(id),
                ErrorCode::Limit,
                "too many holds and waits on this server",
            ),
        }
    }
}

impl Session {
    /// Executes one parsed request line.
    fn execute(&mut self, line: RequestLine, cx: &mut Ctx) -> Flow {
        let RequestLine { id, verb, request } = line;
        cx.stats.native_commands[verb as usize] += 1;
        // `authed` starts true when the server has no secret.
        if !self.authed && !matches!(verb, Verb::Ping | Verb::Quit | Verb::Auth) {
            error(cx, Some(id), ErrorCode::AuthRequired, "AUTH first");
            return Flow::Continue;
        }
        let now = cx.now;
        match request {
            Request::Acquire(_) | Request::AcquireDetached(_) => {
                let (a, detached, answer) = match request {
                    Request::AcquireDetached(a) => {
                        let answer = cx.engine.acquire_detached(cx.client, id, &a, &[], now);
                        (a, true, answer)
                    }
                    Request::Acquire(a) => {
                        let answer = cx.engine.acquire(cx.client, id, &a, now);
                        (a, false, answer)
                    }
                    _ => unreachable!("matched above"),
                };
                acquired(cx, id, &a, detached, answer);
            }
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
            Request::List { prefix } => self.listings.start_locks(id, prefix),
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
            Request::Clients => self.listings.start_clients(id),
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
                    self.lines.set_max_line(self.max_line);
                    reply(cx.out, id, b"OK");
                }
                Some(_) => {
                    // Counted here, logged (rate-limited) by the server.
                    cx.stats.auth_failures_total += 1;
                    error(cx, Some(id), ErrorCode::AuthFailed, "wrong secret; closing");
                    return Flow::CloseDelayed;
                }
            },
        }
        Flow::Continue
    }
}

impl Wire for Session {
    /// Decodes and executes at most one line. Once authenticated (or when no secret is
    /// required: the common case, one branch), `LOCK` and `UNLOCK` lines in canonical
    /// form go through the one-pass fast path and are executed without building a
    /// `Request`; everything else through the line framing and the general parser.
    #[inline]
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        if !self.authed {
            return self.decode_pre_auth(input, cx);
        }
        if let Some((line, used)) = fast::parse_line(input, self.lines.max_line()) {
            // The framing's memory of a partial line is about the input it last saw,
            // which started where this line does: that line is gone now.
            self.lines.restart();
            execute_fast(line, input, cx);
            return Progress::Consumed(used);
        }
        self.decode_line(input, cx)
    }

    /// Writes an engine event as a native reply line.
    fn encode_event(&mut self, event: &Event, _engine: &Engine, out: &mut Vec<u8>) {
        encode_event(event, out)
    }

    fn listing(&self) -> bool {
        self.listings.active()
    }

    fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        self.listings.proceed(cx, batch)
    }

    fn awaiting_auth(&self) -> bool {
        !self.authed
    }

    /// Waits with a deadline are answered when they end (granted or timed out).
    fn answers_after_half_close(&self) -> bool {
        true
    }
}

impl Session {
    /// Before `AUTH` succeeded: frames, parses and executes at most one line through the
    /// general parser (which answers `auth_required` to what needs `AUTH`), counting the
    /// input against [`PRE_AUTH_INPUT`].
    #[cold]
    fn decode_pre_auth(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        let progress = self.decode_line(input, cx);
        if let Progress::Consumed(n) = progress {
            self.pre_auth += n;
            if !self.authed && self.pre_auth > PRE_AUTH_INPUT {
                log::debug!(
                    "{}: too much input before AUTH, closing",
                    super::Peer::of(cx.engine, cx.client)
                );
                error(
                    cx,
                    None,
                    ErrorCode::AuthRequired,
                    "too much input before AUTH; closing",
                );
                return Progress::Close(n);
            }
        }
        progress
    }

    /// Frames, parses and executes at most one line through the line framing and the
    /// general parser.
    fn decode_line(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        decode_line(
            Protocol::Native,
            self.lines.frame(input),
            cx,
            too_long,
            |line, cx| match parse(line) {
                Ok(Some(line)) => self.execute(line, cx),
                Ok(None) => Flow::Continue,
                Err(e) => {
                    log::debug!(
                        "{}: {} ({})",
                        super::Peer::of(cx.engine, cx.client),
                        e.code.as_str(),
                        e.text
                    );
                    error(cx, e.id, e.code, e.text);
                    Flow::Continue
                }
            },
        )
    }
}

/// Bytes copied at once for the id at the start of a fast-path reply (see [`push_id`]).
const ID_COPY: usize = 16;

/// Appends the request id that starts `input`: when the input has [`ID_COPY`] bytes and
/// the id fits in them, as one fixed-size copy cut back to the id (no `memcpy` call).
#[inline]
fn push_id(out: &mut Vec<u8>, input: &[u8], id: &[u8]) {
    debug_assert!(input.starts_with(id));
    match input.first_chunk::<ID_COPY>() {
        Some(head) if id.len() <= ID_COPY => {
            let at = out.len();
            out.extend_from_slice(head);
            out.truncate(at + id.len());
        }
        _ => out.extend_from_slice(id),
    }
}

/// Executes a line the fast path found at the start of `input`, on an authenticated
/// session: what [`Session::execute`] does for the same `RequestLine`, without building
/// one.
#[inline]
fn execute_fast(line: fast::Fast, input: &[u8], cx: &mut Ctx) {
    match line {
        fast::Fast::Lock { id, name } => {
            cx.stats.native_commands[Verb::Lock as usize] += 1;
            let a = AcquireRequest {
                name,
                mode: Mode::Exclusive,
                wait: None,
                hold: None,
                queue: None,
            };
            match cx.engine.acquire(cx.client, id, &a, cx.now) {
                Acquired::Granted { token, .. } => {
                    // `write_granted` of an exclusive grant, constant parts in one copy.
                    push_id(cx.out, input, id);
                    cx.out.extend_from_slice(b" OK ");
                    push_u64(cx.out, token);
                    cx.out.push(b'\n');
                }
                answer => acquired(cx, id, &a, false, answer),
            }
        }
        fast::Fast::Unlock { id, name, token } => {
            cx.stats.native_commands[Verb::Unlock as usize] += 1;
            match cx.engine.release(cx.client, name, token, cx.now) {
                Ok(()) => {
                    // `reply(.., b"OK")`, constant parts in one copy.
                    push_id(cx.out, input, id);
                    cx.out.extend_from_slice(b" OK\n");
                }
                Err(e) => find_error(cx, id, e),
            }
        }
    }
}

/// Replies `line_too_long` (with the line's id if it can be read); the line framing
/// closes the connection.
fn too_long(line: &[u8], cx: &mut Ctx) {
    let id = Tokens(line).next().filter(|id| valid_id(id));
    error(
        cx,
        id,
        ErrorCode::LineTooLong,
        "request line too long; closing",
    );
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

fn error<'m>(cx: &mut Ctx, id: Option<&[u8]>, code: ErrorCode, text: impl Into<Message<'m>>) {
    cx.stats.errors_total += 1;
    start(cx.out, id.unwrap_or(b"*"), b"ERR");
    cx.out.extend_from_slice(code.as_str().as_bytes());
    cx.out.push(b' ');
    text.into().write(cx.out);
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

fn write_end(out: &mut Vec<u8>, id: &[u8], rows: usize) {
    start(out, id, b"END");
    push_u64(out, rows as u64);
    out.push(b'\n');
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
    let first_late = rows.len();
    // Keys added after the first release go last, so the order of the others holds.
    rows.extend([
        ("pid", u64::from(std::process::id())),
        ("refused_connections_total", s.refused_connections_total),
        ("limit_refusals_total", c.limit_refusals_total),
        ("auth_failures_total", s.auth_failures_total),
        ("auth_timeouts_total", s.auth_timeouts_total),
    ]);
    for (i, (key, value)) in rows.iter().enumerate() {
        start(cx.out, id, b"STAT");
        if (first_cmd..first_late).contains(&i) {
            cx.out.extend_from_slice(b"cmd_");
        }
        cx.out.extend_from_slice(key.as_bytes());
        cx.out.push(b' ');
        push_u64(cx.out, *value);
        cx.out.push(b'\n');
    }
    // The one value that is not a number.
    start(cx.out, id, b"STAT");
    cx.out.extend_from_slice(b"version ");
    cx.out
        .extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    cx.out.push(b'\n');
    // Keys added after `version`: how late deadlines fired, in microseconds.
    let late = cx.engine.timer_lateness();
    let mut later = 3;
    for (key, value) in [
        ("timers_fired_total", late.count()),
        ("timer_lateness_sum_us", late.sum_us()),
        ("timer_lateness_max_us", late.max_us()),
    ] {
        start(cx.out, id, b"STAT");
        cx.out.extend_from_slice(key.as_bytes());
        cx.out.push(b' ');
        push_u64(cx.out, value);
        cx.out.push(b'\n');
    }
    for (bound, n) in late.cumulative() {
        start(cx.out, id, b"STAT");
        cx.out.extend_from_slice(b"timer_lateness_le_");
        push_u64(cx.out, bound);
        cx.out.extend_from_slice(b"us ");
        push_u64(cx.out, n);
        cx.out.push(b'\n');
        later += 1;
    }
    // Added after the lateness rows: lock requests that had to queue.
    start(cx.out, id, b"STAT");
    cx.out.extend_from_slice(b"waits_total ");
    push_u64(cx.out, c.waits_total);
    cx.out.push(b'\n');
    later += 1;
    write_end(cx.out, id, rows.len() + 1 + later);
}
