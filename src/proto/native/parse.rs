//! The native request grammar: one line in, one typed [`RequestLine`] out.
//!
//! [`parse`] is the only place a line's grammar is decided (see the grammar in
//! [`super`]); it borrows from the line and allocates nothing.
//!
//! # Invariants
//! - A name in a parsed request satisfies [`valid_name`] with its limit, an id
//!   [`valid_id`]; numbers are range checked; each option appears at most once.

use super::super::U64_DIGITS;
use crate::engine::{AcquireRequest, Mode};
use memchr::memchr;

/// Longest request id.
pub const MAX_ID: usize = 32;
// Every id that spills out of a tag's inline bytes fits the engine's recycled buffers.
const _: () = assert!(MAX_ID <= crate::engine::TAG_BUFFER);
/// Longest lock name.
pub const MAX_NAME: usize = crate::engine::MAX_NAME;
/// Longest client name.
pub const MAX_CLIENT_NAME: usize = 64;
/// At most this many bytes of a client's input are quoted in an error text.
pub const MAX_QUOTE: usize = 32;

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
    /// LOCK or SHARE with `detached=1` (`hold=` present): a detached hold once granted.
    AcquireDetached(AcquireRequest<'a>),
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

/// A parsed request line: its id, verb and typed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The client's request id.
    pub id: &'a [u8],
    /// The verb (for per-verb stats).
    pub verb: Verb,
    /// The request.
    pub request: Request<'a>,
}

/// The human text of an error: fixed words around an optional quote of the input that
/// caused it (`unknown verb 'FROB'`, `wait: '12x' is not a number of milliseconds`).
///
/// The quote is written without allocating: at most [`MAX_QUOTE`] bytes of the input
/// (then `...`), in single quotes, printable ASCII as is and every other byte, `'` and
/// `\` as `\xNN`, so a reply line never carries a control character from its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Text before the quote.
    pub before: &'static str,
    /// The input the error is about.
    pub quote: Option<&'a [u8]>,
    /// Text after the quote.
    pub after: &'static str,
}

impl<'a> Message<'a> {
    /// A fixed text.
    pub const fn plain(text: &'static str) -> Message<'a> {
        Message {
            before: text,
            quote: None,
            after: "",
        }
    }

    /// `before`, then `input` quoted, then `after`.
    pub const fn quoting(before: &'static str, input: &'a [u8], after: &'static str) -> Self {
        Message {
            before,
            quote: Some(input),
            after,
        }
    }

    /// True when the text would be empty.
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.quote.is_none() && self.after.is_empty()
    }

    /// Appends the text to a reply.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.before.as_bytes());
        if let Some(q) = self.quote {
            out.push(b'\'');
            for &b in &q[..q.len().min(MAX_QUOTE)] {
                if (b' '..=b'~').contains(&b) && b != b'\'' && b != b'\\' {
                    out.push(b);
                } else {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let esc = [
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ];
                    out.extend_from_slice(&esc);
                }
            }
            if q.len() > MAX_QUOTE {
                out.extend_from_slice(b"...");
            }
            out.push(b'\'');
        }
        out.extend_from_slice(self.after.as_bytes());
    }
}

impl From<&'static str> for Message<'_> {
    fn from(text: &'static str) -> Self {
        Message::plain(text)
    }
}

impl std::fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = Vec::new();
        self.write(&mut v);
        f.write_str(&String::from_utf8_lossy(&v))
    }
}

/// Why a line was refused. `id` is `None` when the id itself could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError<'a> {
    /// The request id, if readable (else the reply uses `*`).
    pub id: Option<&'a [u8]>,
    /// The error code.
    pub code: ErrorCode,
    /// Human text, naming the input it is about.
    pub text: Message<'a>,
}

/// Splits a line into blank-separated tokens.
pub(super) struct Tokens<'a>(pub(super) &'a [u8]);

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

/// Why a number did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BadNumber {
    /// Empty, or not all digits.
    NotANumber,
    /// Digits, but above the limit.
    TooLarge,
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

/// [`parse_number`], saying why it failed.
fn number(s: &[u8], max: u64) -> Result<u64, BadNumber> {
    match parse_number(s, max) {
        Some(n) => Ok(n),
        None if !s.is_empty() && s.iter().all(u8::is_ascii_digit) => Err(BadNumber::TooLarge),
        None => Err(BadNumber::NotANumber),
    }
}

/// The options a verb accepts, as parsed.
#[derive(Default)]
struct Options {
    max: Option<u32>,
    wait: Option<u32>,
    hold: Option<u32>,
    queue: Option<u32>,
    detached: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Max,
    Wait,
    Hold,
    Queue,
    Detached,
}

impl Key {
    /// The text of an error about this option's value.
    fn bad_value(self, v: &[u8], why: BadNumber) -> Message<'_> {
        let before = match self {
            Key::Max => "max: ",
            Key::Wait => "wait: ",
            Key::Hold => "hold: ",
            Key::Queue => "queue: ",
            Key::Detached => "detached: ",
        };
        let after = match (self, why) {
            (Key::Wait | Key::Hold, BadNumber::NotANumber) => " is not a number of milliseconds",
            (Key::Wait | Key::Hold, BadNumber::TooLarge) => {
                " is over the limit of 4294967295 milliseconds"
            }
            (_, BadNumber::NotANumber) => " is not a number",
            (_, BadNumber::TooLarge) => " is over the limit of 4294967295",
        };
        Message::quoting(before, v, after)
    }
}

impl Options {
    /// Parses `key=value` tokens, accepting only `allowed` keys, each at most once.
    fn parse<'a>(
        tokens: impl Iterator<Item = &'a [u8]>,
        allowed: &[Key],
    ) -> Result<Options, Message<'a>> {
        let mut o = Options::default();
        for t in tokens {
            let eq = memchr(b'=', t).ok_or(Message::quoting("expected key=value, got ", t, ""))?;
            let (k, v) = (&t[..eq], &t[eq + 1..]);
            let key = [
                (&b"max"[..], Key::Max),
                (b"wait", Key::Wait),
                (b"hold", Key::Hold),
                (b"queue", Key::Queue),
                (b"detached", Key::Detached),
            ]
            .into_iter()
            .find(|(word, _)| k.eq_ignore_ascii_case(word))
            .map(|(_, key)| key)
            .ok_or(Message::quoting("unknown option ", k, ""))?;
            if !allowed.contains(&key) {
                return Err(Message::quoting(
                    "option ",
                    k,
                    " does not apply to this verb",
                ));
            }
            let n = number(v, u64::from(u32::MAX)).map_err(|why| key.bad_value(v, why))? as u32;
            let slot = match key {
                Key::Max => &mut o.max,
                Key::Wait => &mut o.wait,
                Key::Hold => &mut o.hold,
                Key::Queue => &mut o.queue,
                Key::Detached => &mut o.detached,
            };
            if slot.replace(n).is_some() {
                return Err(Message::quoting("repeated option ", k, ""));
            }
        }
        Ok(o)
    }
}

/// Parses one request line (without its line end). `Ok(None)` for a blank line.
pub fn parse<'a>(line: &'a [u8]) -> Result<Option<RequestLine<'a>>, ParseError<'a>> {
    let mut tokens = Tokens(line);
    let Some(id) = tokens.next() else {
        return Ok(None);
    };
    if !valid_id(id) {
        return Err(ParseError {
            id: None,
            code: ErrorCode::BadRequest,
            text: Message::quoting(
                "invalid request id ",
                id,
                ": 1 to 32 of A-Z a-z 0-9 _ . : -",
            ),
        });
    }
    let err = |code, text: Message<'a>| ParseError {
        id: Some(id),
        code,
        text,
    };
    let verb_word = tokens
        .next()
        .ok_or(err(ErrorCode::BadRequest, "missing verb".into()))?;
    let verb = Verb::from_word(verb_word).ok_or(err(
        ErrorCode::UnknownCommand,
        Message::quoting("unknown verb ", verb_word, ""),
    ))?;
    let name_arg = |t: Option<&'a [u8]>, max: usize| -> Result<&'a [u8], ParseError<'a>> {
        let t = t.ok_or(err(ErrorCode::BadRequest, "missing name".into()))?;
        if valid_name(t, max) {
            Ok(t)
        } else {
            Err(err(
                ErrorCode::BadName,
                Message::quoting(
                    "bad name ",
                    t,
                    ": names are 1 to 255 bytes with no control characters, spaces or DEL",
                ),
            ))
        }
    };
    let no_more = |mut t: Tokens<'a>| match t.next() {
        None => Ok(()),
        Some(extra) => Err(err(
            ErrorCode::BadRequest,
            Message::quoting("unexpected argument ", extra, ""),
        )),
    };
    let token_arg = |t: &'a [u8]| -> Result<u64, ParseError<'a>> {
        number(t, u64::MAX).map_err(|why| {
            let after = match why {
                BadNumber::NotANumber => " is not a number",
                BadNumber::TooLarge => " is over the limit of 18446744073709551615",
            };
            err(ErrorCode::BadOption, Message::quoting("token: ", t, after))
        })
    };
    let request = match verb {
        Verb::Lock | Verb::Share => {
            let name = name_arg(tokens.next(), MAX_NAME)?;
            let allowed: &[Key] = if verb == Verb::Lock {
                &[Key::Wait, Key::Hold, Key::Queue, Key::Detached]
            } else {
                &[Key::Max, Key::Wait, Key::Hold, Key::Queue, Key::Detached]
            };
            let o = Options::parse(tokens, allowed).map_err(|t| err(ErrorCode::BadOption, t))?;
            let mode = match (verb, o.max) {
                (Verb::Lock, _) => Mode::Exclusive,
                (_, Some(0)) => {
                    return Err(err(ErrorCode::BadOption, "max: must be at least 1".into()))
                }
                (_, max) => Mode::Shared {
                    max: max.unwrap_or(0),
                },
            };
            let req = AcquireRequest {
                name,
                mode,
                wait: o.wait,
                hold: o.hold,
                queue: o.queue,
            };
            match o.detached {
                None | Some(0) => Request::Acquire(req),
                Some(1) if o.hold.is_some() => Request::AcquireDetached(req),
                Some(1) => {
                    return Err(err(ErrorCode::BadOption, "detached=1 needs hold=".into()));
                }
                Some(_) => return Err(err(ErrorCode::BadOption, "detached must be 0 or 1".into())),
            }
        }
        Verb::Unlock => {
            let name = name_arg(tokens.next(), MAX_NAME)?;
            let token = match tokens.next() {
                None => None,
                Some(t) => Some(token_arg(t)?),
            };
            no_more(tokens)?;
            Request::Unlock { name, token }
        }
        Verb::Extend => {
            let name = name_arg(tokens.next(), MAX_NAME)?;
            let t = tokens
                .next()
                .ok_or(err(ErrorCode::BadRequest, "missing token".into()))?;
            let token = token_arg(t)?;
            let o =
                Options::parse(tokens, &[Key::Hold]).map_err(|t| err(ErrorCode::BadOption, t))?;
            let hold = o
                .hold
                .ok_or(err(ErrorCode::BadOption, "hold= is required".into()))?;
            Request::Extend { name, token, hold }
        }
        Verb::Cancel => {
            let rid = tokens
                .next()
                .ok_or(err(ErrorCode::BadRequest, "missing request id".into()))?;
            if !valid_id(rid) {
                return Err(err(
                    ErrorCode::BadRequest,
                    Message::quoting("invalid request id to cancel ", rid, ""),
                ));
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
                .ok_or(err(ErrorCode::BadRequest, "missing client name".into()))?;
            if !valid_name(t, MAX_CLIENT_NAME) {
                return Err(err(
                    ErrorCode::BadName,
                    Message::quoting(
                        "bad client name ",
                        t,
                        ": client names are 1 to 64 bytes with no control characters, spaces or DEL",
                    ),
                ));
            }
            no_more(tokens)?;
            Request::Name { name: t }
        }
        Verb::Auth => {
            let secret = tokens
                .next()
                .ok_or(err(ErrorCode::BadRequest, "missing secret".into()))?;
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
    Ok(Some(RequestLine { id, verb, request }))
}
