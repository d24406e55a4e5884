//! The native protocol without I/O: typed requests, their encoding and validation,
//! request ids, and the decoding of reply lines into typed replies.
//!
//! The async and blocking clients are drivers around this module; it can also drive a
//! connection of any other kind (a test harness, another runtime):
//!
//! ```
//! use lockbox_client::proto::{parse_line, Assembler, Frame, Reply, Request};
//!
//! let req: Request = Request::lock("jobs:42").wait(2000).hold(30_000).into();
//! req.validate().unwrap();
//! let mut out = Vec::new();
//! req.encode("7", &mut out);
//! assert_eq!(out, b"7 LOCK jobs:42 wait=2000 hold=30000\n");
//!
//! // The reply, routed by its id, completes the request's assembler.
//! let (id, frame) = parse_line("7 OK 1795447529579363382").unwrap();
//! assert_eq!(id, "7");
//! let mut asm = Assembler::new(&req);
//! match asm.push(frame) {
//!     Some(Ok(Reply::Granted(g))) => assert_eq!(g.token, 1795447529579363382),
//!     other => panic!("{other:?}"),
//! }
//! ```
//!
//! # Invariants
//! - [`Request::validate`] accepts exactly what the server's parser accepts for that
//!   request (names, ids, option ranges, `max >= 1`, a line of at most [`MAX_LINE`]
//!   bytes), so a validated request never gets `bad_request`, `bad_name`, `bad_option`
//!   or `line_too_long` from a server with the default `--max-line`.
//! - [`Request::encode`] of a validated request writes exactly one line ending in `\n`.
//! - An [`Assembler`] returns a result once: on the request's final line (`OK`,
//!   `TIMEOUT`, `ERR`, `CANCELLED`, `PONG`, or `END` after the rows); rows before it
//!   return `None`.

use crate::error::{Error, Result};

/// Longest request id.
pub const MAX_ID: usize = 32;
/// Longest lock name.
pub const MAX_NAME: usize = 255;
/// Longest client name (`NAME`).
pub const MAX_CLIENT_NAME: usize = 64;
/// Longest request line the server accepts by default (`--max-line`), without `\n`.
pub const MAX_LINE: usize = 4096;
/// Longest reply line this client accepts: far above anything the server sends (a
/// `LIST` row with a 255-byte name is under 400 bytes).
pub const MAX_REPLY_LINE: usize = 64 * 1024;

/// True for a valid request id: 1 to 32 bytes of `A-Z a-z 0-9 _ . : -`.
pub fn valid_id(id: &[u8]) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// True for a valid name of at most `max` bytes: no ASCII control characters, space or
/// DEL (UTF-8 is fine).
pub fn valid_name(name: &[u8], max: usize) -> bool {
    (1..=max).contains(&name.len()) && name.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// Checks a lock name: [`Error::BadName`] when the server would refuse it.
pub fn check_name(name: &str) -> Result<()> {
    if valid_name(name.as_bytes(), MAX_NAME) {
        Ok(())
    } else {
        Err(Error::BadName(format!(
            "lock names are 1 to {MAX_NAME} bytes with no control characters, spaces or DEL: {name:?}"
        )))
    }
}

/// Request ids of one connection: decimal numbers counting up from 1, so an id is never
/// reused while the connection lives and a reply's id maps back to its request.
#[derive(Debug, Default)]
pub struct IdAllocator {
    last: u64,
}

impl IdAllocator {
    /// A new allocator; the first id is 1.
    pub fn new() -> Self {
        IdAllocator::default()
    }

    /// The next id.
    pub fn next_id(&mut self) -> u64 {
        self.last += 1;
        self.last
    }
}

/// Parses an id this crate allocated (decimal); `None` for any other id.
pub fn parse_id(id: &str) -> Option<u64> {
    parse_digits(id)
}

/// A non-empty run of ASCII digits as a `u64`, in one pass; `None` for anything else
/// (a sign, a blank, an empty string, a value over `u64::MAX`).
fn parse_digits(s: &str) -> Option<u64> {
    /// Up to 19 digits always fit in a `u64`.
    const SAFE_DIGITS: usize = 19;
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let split = b.len().min(SAFE_DIGITS);
    let mut n: u64 = 0;
    for &c in &b[..split] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    for &c in &b[split..] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Splits `s` at its first space: (before, after), or `None` without one. (A byte
/// scan: reply lines are short, and this beats the general `str` searcher on them.)
fn split_space(s: &str) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == b' ')?;
    // A space is one byte, so both sides are on character boundaries.
    Some((&s[..i], &s[i + 1..]))
}

/// The words of `s` between single spaces, empty ones skipped.
fn words(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (w, r) = split_space(rest).unwrap_or((rest, ""));
        rest = r;
        if !w.is_empty() {
            return Some(w);
        }
    })
}

/// Exclusive or shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `LOCK`: one holder.
    Exclusive,
    /// `SHARE`: many holders; with `max`, at most that many (a counting semaphore).
    Shared {
        /// `max=<n>` (n >= 1), or no limit.
        max: Option<u32>,
    },
}

/// `LOCK` or `SHARE` with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquire {
    /// Lock name.
    pub name: String,
    /// Exclusive or shared.
    pub kind: LockKind,
    /// `wait=<ms>`: how long to wait; `None` waits as long as the connection lives,
    /// `Some(0)` tries once.
    pub wait: Option<u32>,
    /// `hold=<ms>`: a lease; the server takes the lock back this long after the grant.
    pub hold: Option<u32>,
    /// `queue=<n>`: fail with `queue_full` instead of waiting behind `n` or more waiters.
    pub queue: Option<u32>,
}

impl Acquire {
    /// Sets `wait`.
    pub fn wait(mut self, ms: u32) -> Self {
        self.wait = Some(ms);
        self
    }
    /// Sets `hold`.
    pub fn hold(mut self, ms: u32) -> Self {
        self.hold = Some(ms);
        self
    }
    /// Sets `queue`.
    pub fn queue(mut self, n: u32) -> Self {
        self.queue = Some(n);
        self
    }
}

impl From<Acquire> for Request {
    fn from(a: Acquire) -> Request {
        Request::Acquire(a)
    }
}

/// A request of the native protocol, one variant per verb (`LOCK` and `SHARE` share
/// [`Request::Acquire`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `LOCK` / `SHARE`.
    Acquire(Acquire),
    /// `UNLOCK <name> [<token>]`.
    Unlock {
        /// Lock name.
        name: String,
        /// Which hold; required when this connection has several on the name.
        token: Option<u64>,
    },
    /// `EXTEND <name> <token> hold=<ms>`.
    Extend {
        /// Lock name.
        name: String,
        /// The hold.
        token: u64,
        /// New deadline, from now.
        hold: u32,
    },
    /// `CANCEL <request-id>`.
    Cancel {
        /// The id of the waits to end.
        id: String,
    },
    /// `RESET`: release every hold and cancel every wait of the connection.
    Reset,
    /// `INSPECT <name>`.
    Inspect {
        /// Lock name.
        name: String,
    },
    /// `LIST [<prefix>]`.
    List {
        /// Only names starting with this.
        prefix: Option<String>,
    },
    /// `NAME <client-name>`.
    Name {
        /// The connection's friendly name.
        name: String,
    },
    /// `WHOAMI`.
    Whoami,
    /// `CLIENTS`.
    Clients,
    /// `STATS`.
    Stats,
    /// `PING`.
    Ping,
    /// `QUIT`.
    Quit,
    /// `AUTH <secret>`.
    Auth {
        /// The shared secret.
        secret: String,
    },
}

impl Request {
    /// `LOCK <name>` with no options.
    pub fn lock(name: impl Into<String>) -> Acquire {
        Acquire {
            name: name.into(),
            kind: LockKind::Exclusive,
            wait: None,
            hold: None,
            queue: None,
        }
    }

    /// `SHARE <name>` with no options (`max` none).
    pub fn share(name: impl Into<String>) -> Acquire {
        Acquire {
            name: name.into(),
            kind: LockKind::Shared { max: None },
            wait: None,
            hold: None,
            queue: None,
        }
    }

    /// The verb, uppercase.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Acquire(a) => match a.kind {
                LockKind::Exclusive => "LOCK",
                LockKind::Shared { .. } => "SHARE",
            },
            Request::Unlock { .. } => "UNLOCK",
            Request::Extend { .. } => "EXTEND",
            Request::Cancel { .. } => "CANCEL",
            Request::Reset => "RESET",
            Request::Inspect { .. } => "INSPECT",
            Request::List { .. } => "LIST",
            Request::Name { .. } => "NAME",
            Request::Whoami => "WHOAMI",
            Request::Clients => "CLIENTS",
            Request::Stats => "STATS",
            Request::Ping => "PING",
            Request::Quit => "QUIT",
            Request::Auth { .. } => "AUTH",
        }
    }

    /// Checks the request with the server's rules, so that nothing the server would
    /// refuse as malformed is sent.
    pub fn validate(&self) -> Result<()> {
        match self {
            Request::Acquire(a) => {
                check_name(&a.name)?;
                if a.kind == (LockKind::Shared { max: Some(0) }) {
                    return Err(Error::BadOption("max must be at least 1".into()));
                }
            }
            Request::Unlock { name, .. }
            | Request::Extend { name, .. }
            | Request::Inspect { name } => check_name(name)?,
            Request::List { prefix: Some(p) } => check_name(p)?,
            Request::Cancel { id } => {
                if !valid_id(id.as_bytes()) {
                    return Err(Error::BadRequest(format!(
                        "request ids are 1 to {MAX_ID} bytes of A-Z a-z 0-9 _ . : -: {id:?}"
                    )));
                }
            }
            Request::Name { name } => {
                if !valid_name(name.as_bytes(), MAX_CLIENT_NAME) {
                    return Err(Error::BadName(format!(
                        "client names are 1 to {MAX_CLIENT_NAME} bytes with no control \
                         characters, spaces or DEL: {name:?}"
                    )));
                }
            }
            Request::Auth { secret } => {
                if secret.is_empty()
                    || secret
                        .bytes()
                        .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                {
                    return Err(Error::BadRequest(
                        "the secret must be one non-empty word (no blanks or line ends)".into(),
                    ));
                }
                // The id is at most 20 digits: "<id> AUTH <secret>".
                if 20 + " AUTH ".len() + secret.len() > MAX_LINE {
                    return Err(Error::LineTooLong(format!(
                        "a secret of {} bytes makes a line over {MAX_LINE} bytes",
                        secret.len()
                    )));
                }
            }
            Request::List { prefix: None }
            | Request::Reset
            | Request::Whoami
            | Request::Clients
            | Request::Stats
            | Request::Ping
            | Request::Quit => {}
        }
        Ok(())
    }

    /// Appends the request line with id `id` and its `\n` to `out`. Call
    /// [`Request::validate`] first: this writes what it is given.
    pub fn encode(&self, id: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(id.as_bytes());
        self.encode_tail(out);
    }

    /// [`Request::encode`] with a numeric id (as [`IdAllocator`] hands out), written
    /// straight into `out` without formatting machinery or a temporary string.
    pub fn encode_with_id(&self, id: u64, out: &mut Vec<u8>) {
        push_u64(out, id);
        self.encode_tail(out);
    }

    /// Everything after the id: ` VERB args\n`.
    fn encode_tail(&self, out: &mut Vec<u8>) {
        // The hot verbs as constants (copied inline; a verb of unknown length is a
        // call to memcpy).
        match self {
            Request::Acquire(Acquire {
                kind: LockKind::Exclusive,
                ..
            }) => out.extend_from_slice(b" LOCK"),
            Request::Unlock { .. } => out.extend_from_slice(b" UNLOCK"),
            _ => {
                out.push(b' ');
                out.extend_from_slice(self.verb().as_bytes());
            }
        }
        match self {
            Request::Acquire(a) => {
                push_word(out, &a.name);
                if let LockKind::Shared { max: Some(m) } = a.kind {
                    push_option(out, b" max=", m);
                }
                if let Some(w) = a.wait {
                    push_option(out, b" wait=", w);
                }
                if let Some(h) = a.hold {
                    push_option(out, b" hold=", h);
                }
                if let Some(q) = a.queue {
                    push_option(out, b" queue=", q);
                }
            }
            Request::Unlock { name, token } => {
                push_word(out, name);
                if let Some(t) = token {
                    out.push(b' ');
                    push_u64(out, *t);
                }
            }
            Request::Extend { name, token, hold } => {
                push_word(out, name);
                out.push(b' ');
                push_u64(out, *token);
                push_option(out, b" hold=", *hold);
            }
            Request::Cancel { id } => push_word(out, id),
            Request::Inspect { name } | Request::Name { name } => push_word(out, name),
            Request::List { prefix: Some(p) } => push_word(out, p),
            Request::Auth { secret } => push_word(out, secret),
            Request::List { prefix: None }
            | Request::Reset
            | Request::Whoami
            | Request::Clients
            | Request::Stats
            | Request::Ping
            | Request::Quit => {}
        }
        out.push(b'\n');
    }
}

/// Appends ` word`.
fn push_word(out: &mut Vec<u8>, word: &str) {
    out.push(b' ');
    out.extend_from_slice(word.as_bytes());
}

/// Appends ` key=value` (`key` given with its space and `=`).
#[inline(always)]
fn push_option<const N: usize>(out: &mut Vec<u8>, key: &[u8; N], value: u32) {
    out.extend_from_slice(key);
    push_u64(out, u64::from(value));
}

/// "00" to "99": two digits per division when formatting numbers.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

/// One reply line, split: what follows the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `OK [fields]` (fields without the leading space; empty when none).
    Ok(&'a str),
    /// `TIMEOUT`.
    Timeout,
    /// `ERR <code> <text>`.
    Err {
        /// The stable code word.
        code: &'a str,
        /// Human text.
        text: &'a str,
    },
    /// `EXPIRED <token>`: a hold of this request ran out and was taken back.
    Expired(u64),
    /// `CANCELLED`: the wait was ended by CANCEL or RESET.
    Cancelled,
    /// `PONG`.
    Pong,
    /// `END <rows>`: the end of a multi-line reply.
    End(u64),
    /// A row of a multi-line reply: `ITEM ...`, `CLIENT ...`, `STAT ...`.
    Row {
        /// The row word.
        kind: &'a str,
        /// The rest of the row.
        rest: &'a str,
    },
}

fn protocol(what: &str, line: &str) -> Error {
    Error::Protocol(format!("{what}: {line:?}"))
}

fn parse_u64(s: &str, line: &str) -> Result<u64> {
    match parse_digits(s) {
        Some(n) => Ok(n),
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(protocol("number out of range", line))
        }
        None => Err(protocol("expected a number", line)),
    }
}

/// Splits a reply line (without its `\n`; a `\r` before it is not expected) into its id
/// and [`Frame`].
pub fn parse_line(line: &str) -> Result<(&str, Frame<'_>)> {
    let (id, rest) = split_space(line)
        .ok_or_else(|| protocol("reply line without a word after the id", line))?;
    let (word, fields) = split_space(rest).unwrap_or((rest, ""));
    let frame = match word {
        "OK" => Frame::Ok(fields),
        "TIMEOUT" => Frame::Timeout,
        "CANCELLED" => Frame::Cancelled,
        "PONG" => Frame::Pong,
        "EXPIRED" => Frame::Expired(parse_u64(fields, line)?),
        "END" => Frame::End(parse_u64(fields, line)?),
        "ERR" => {
            let (code, text) = split_space(fields).unwrap_or((fields, ""));
            if code.is_empty() {
                return Err(protocol("ERR without a code", line));
            }
            Frame::Err { code, text }
        }
        "ITEM" | "CLIENT" | "STAT" => Frame::Row {
            kind: word,
            rest: fields,
        },
        _ => return Err(protocol("unknown reply word", line)),
    };
    Ok((id, frame))
}

/// A granted `LOCK` or `SHARE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The fencing token: strictly increasing over every grant of the server.
    pub token: u64,
    /// For `SHARE`: the shared holds of the lock at the grant, this one included.
    pub holders: Option<u64>,
}

/// The mode of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No holders.
    Free,
    /// One exclusive hold.
    Exclusive,
    /// One or more shared holds.
    Shared,
}

impl Mode {
    fn parse(s: &str, line: &str) -> Result<Mode> {
        match s {
            "free" => Ok(Mode::Free),
            "exclusive" => Ok(Mode::Exclusive),
            "shared" => Ok(Mode::Shared),
            _ => Err(protocol("unknown mode", line)),
        }
    }

    /// The protocol's word for the mode (`free`, `exclusive`, `shared`), as `INSPECT`
    /// and `LIST` write it; also what [`Mode`]'s `Display` prints.
    ///
    /// ```
    /// use lockbox_client::Mode;
    /// assert_eq!(Mode::Shared.as_str(), "shared");
    /// assert_eq!(Mode::Exclusive.to_string(), "exclusive");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Free => "free",
            Mode::Exclusive => "exclusive",
            Mode::Shared => "shared",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// `INSPECT`: the state of one lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// Free, exclusive or shared.
    pub mode: Mode,
    /// Number of holds.
    pub holders: u64,
    /// Number of waiting requests.
    pub waiters: u64,
    /// When exclusive: the hold's token.
    pub token: Option<u64>,
    /// When exclusive: the owner's client name (its `ip:port` when unnamed).
    pub owner: Option<String>,
}

/// One `LIST` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockSummary {
    /// Lock name.
    pub name: String,
    /// Exclusive or shared.
    pub mode: Mode,
    /// Number of holds.
    pub holders: u64,
    /// Number of waiting requests.
    pub waiters: u64,
}

/// `WHOAMI`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoAmI {
    /// This connection's `ip:port` as the server sees it.
    pub addr: String,
    /// Its name (`addr` when unnamed).
    pub name: String,
}

/// One `CLIENTS` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// `ip:port`.
    pub addr: String,
    /// Its name (`addr` when unnamed).
    pub name: String,
    /// Holds of the connection.
    pub holds: u64,
    /// Pending waits of the connection.
    pub waits: u64,
}

/// `STATS`: every `key value` row, in the server's order. Values are kept as sent:
/// almost all are counters or levels, but the protocol allows any token (`version`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The rows.
    pub rows: Vec<(String, String)>,
}

impl Stats {
    /// The value of `key` as a number (e.g. `holds`, `cmd_lock`); `None` when the key is
    /// missing or its value is not a number.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.value(key).and_then(|v| v.parse().ok())
    }

    /// The value of `key` as sent (e.g. `version`).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.rows
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A typed reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `LOCK` / `SHARE` granted.
    Granted(Grant),
    /// `OK` with no fields (`UNLOCK`, `EXTEND`, `NAME`, `AUTH`, `QUIT`).
    Ok,
    /// `CANCEL`: how many waits it ended.
    Cancelled(u64),
    /// `RESET`.
    Reset {
        /// Holds released.
        released: u64,
        /// Waits cancelled.
        cancelled: u64,
    },
    /// `INSPECT`.
    Inspect(LockInfo),
    /// `LIST`.
    List(Vec<LockSummary>),
    /// `WHOAMI`.
    Whoami(WhoAmI),
    /// `CLIENTS`.
    Clients(Vec<ClientInfo>),
    /// `STATS`.
    Stats(Stats),
    /// `PING`.
    Pong,
}

/// The shape of reply a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `OK <token>` or, shared, `OK <token> <holders>`; or `TIMEOUT` / `CANCELLED`.
    Acquire {
        /// `SHARE`.
        shared: bool,
    },
    /// A bare `OK`.
    Ok,
    /// `OK <n>`.
    Cancel,
    /// `OK <released> <cancelled>`.
    Reset,
    /// `OK mode=...`.
    Inspect,
    /// `ITEM` rows, `END`.
    List,
    /// `OK <addr> <name>`.
    Whoami,
    /// `CLIENT` rows, `END`.
    Clients,
    /// `STAT` rows, `END`.
    Stats,
    /// `PONG`.
    Pong,
}

impl Expect {
    /// What `req` gets.
    pub fn of(req: &Request) -> Expect {
        match req {
            Request::Acquire(a) => Expect::Acquire {
                shared: matches!(a.kind, LockKind::Shared { .. }),
            },
            Request::Unlock { .. }
            | Request::Extend { .. }
            | Request::Name { .. }
            | Request::Quit
            | Request::Auth { .. } => Expect::Ok,
            Request::Cancel { .. } => Expect::Cancel,
            Request::Reset => Expect::Reset,
            Request::Inspect { .. } => Expect::Inspect,
            Request::List { .. } => Expect::List,
            Request::Whoami => Expect::Whoami,
            Request::Clients => Expect::Clients,
            Request::Stats => Expect::Stats,
            Request::Ping => Expect::Pong,
        }
    }

    /// True when the reply is rows then `END`.
    pub fn multi_line(self) -> bool {
        matches!(self, Expect::List | Expect::Clients | Expect::Stats)
    }
}

/// Collects the lines of one request's reply into a [`Reply`].
#[derive(Debug)]
pub struct Assembler {
    expect: Expect,
    list: Vec<LockSummary>,
    clients: Vec<ClientInfo>,
    stats: Vec<(String, String)>,
    rows: u64,
}

/// Splits `key=value`, checking the key.
fn field<'a>(tok: Option<&'a str>, key: &str, line: &str) -> Result<&'a str> {
    tok.and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('='))
        .ok_or_else(|| protocol(&format!("expected {key}=..."), line))
}

impl Assembler {
    /// An assembler for the reply to `req`.
    pub fn new(req: &Request) -> Assembler {
        Assembler::for_expect(Expect::of(req))
    }

    /// An assembler for a reply of shape `expect`.
    pub fn for_expect(expect: Expect) -> Assembler {
        Assembler {
            expect,
            list: Vec::new(),
            clients: Vec::new(),
            stats: Vec::new(),
            rows: 0,
        }
    }

    /// The expected shape.
    pub fn expect(&self) -> Expect {
        self.expect
    }

    /// Takes the next line of the reply: `Some(result)` when it was the last one.
    /// `EXPIRED` is not part of a reply (it comes after a grant): route it before.
    pub fn push(&mut self, frame: Frame<'_>) -> Option<Result<Reply>> {
        match self.push_inner(frame) {
            Ok(None) => None,
            Ok(Some(r)) => Some(Ok(r)),
            Err(e) => Some(Err(e)),
        }
    }

    fn push_inner(&mut self, frame: Frame<'_>) -> Result<Option<Reply>> {
        let e = self.expect;
        let unexpected = |what: &str| Err(Error::Protocol(format!("unexpected {what} for {e:?}")));
        match frame {
            Frame::Err { code, text } => Err(Error::from_code(code, text)),
            Frame::Timeout if matches!(e, Expect::Acquire { .. }) => Err(Error::Timeout),
            Frame::Cancelled if matches!(e, Expect::Acquire { .. }) => Err(Error::Cancelled),
            Frame::Pong if e == Expect::Pong => Ok(Some(Reply::Pong)),
            Frame::Ok(fields) => self.ok(fields).map(Some),
            Frame::Row { kind, rest } => {
                self.row(kind, rest)?;
                Ok(None)
            }
            Frame::End(n) if e.multi_line() => {
                if n != self.rows {
                    return Err(Error::Protocol(format!("END {n} after {} rows", self.rows)));
                }
                Ok(Some(match e {
                    Expect::List => Reply::List(std::mem::take(&mut self.list)),
                    Expect::Clients => Reply::Clients(std::mem::take(&mut self.clients)),
                    _ => Reply::Stats(Stats {
                        rows: std::mem::take(&mut self.stats),
                    }),
                }))
            }
            Frame::Timeout => unexpected("TIMEOUT"),
            Frame::Cancelled => unexpected("CANCELLED"),
            Frame::Pong => unexpected("PONG"),
            Frame::End(_) => unexpected("END"),
            Frame::Expired(_) => unexpected("EXPIRED"),
        }
    }

    fn ok(&mut self, fields: &str) -> Result<Reply> {
        let line = fields;
        let mut w = words(fields);
        let reply = match self.expect {
            Expect::Acquire { shared } => {
                let token = parse_u64(w.next().unwrap_or(""), line)?;
                let holders = if shared {
                    Some(parse_u64(w.next().unwrap_or(""), line)?)
                } else {
                    None
                };
                Reply::Granted(Grant { token, holders })
            }
            Expect::Ok => Reply::Ok,
            Expect::Cancel => Reply::Cancelled(parse_u64(w.next().unwrap_or(""), line)?),
            Expect::Reset => {
                let released = parse_u64(w.next().unwrap_or(""), line)?;
                let cancelled = parse_u64(w.next().unwrap_or(""), line)?;
                Reply::Reset {
                    released,
                    cancelled,
                }
            }
            Expect::Inspect => {
                let mode = Mode::parse(field(w.next(), "mode", line)?, line)?;
                let holders = parse_u64(field(w.next(), "holders", line)?, line)?;
                let waiters = parse_u64(field(w.next(), "waiters", line)?, line)?;
                let (token, owner) = match w.next() {
                    None => (None, None),
                    t => (
                        Some(parse_u64(field(t, "token", line)?, line)?),
                        Some(field(w.next(), "owner", line)?.to_string()),
                    ),
                };
                Reply::Inspect(LockInfo {
                    mode,
                    holders,
                    waiters,
                    token,
                    owner,
                })
            }
            Expect::Whoami => {
                let addr = w.next().ok_or_else(|| protocol("WHOAMI", line))?;
                let name = w.next().ok_or_else(|| protocol("WHOAMI", line))?;
                Reply::Whoami(WhoAmI {
                    addr: addr.to_string(),
                    name: name.to_string(),
                })
            }
            Expect::Pong | Expect::List | Expect::Clients | Expect::Stats => {
                return Err(protocol("unexpected OK", line))
            }
        };
        if w.next().is_some() {
            return Err(protocol("extra fields", line));
        }
        Ok(reply)
    }

    fn row(&mut self, kind: &str, rest: &str) -> Result<()> {
        let line = rest;
        let mut w = rest.split(' ');
        match (self.expect, kind) {
            (Expect::List, "ITEM") => {
                let name = w.next().ok_or_else(|| protocol("ITEM", line))?;
                let mode = Mode::parse(field(w.next(), "mode", line)?, line)?;
                let holders = parse_u64(field(w.next(), "holders", line)?, line)?;
                let waiters = parse_u64(field(w.next(), "waiters", line)?, line)?;
                self.list.push(LockSummary {
                    name: name.to_string(),
                    mode,
                    holders,
                    waiters,
                });
            }
            (Expect::Clients, "CLIENT") => {
                let addr = w.next().ok_or_else(|| protocol("CLIENT", line))?;
                let name = field(w.next(), "name", line)?;
                let holds = parse_u64(field(w.next(), "holds", line)?, line)?;
                let waits = parse_u64(field(w.next(), "waits", line)?, line)?;
                self.clients.push(ClientInfo {
                    addr: addr.to_string(),
                    name: name.to_string(),
                    holds,
                    waits,
                });
            }
            (Expect::Stats, "STAT") => {
                let key = w.next().ok_or_else(|| protocol("STAT", line))?;
                let value = w.next().ok_or_else(|| protocol("STAT", line))?;
                self.stats.push((key.to_string(), value.to_string()));
            }
            _ => {
                return Err(Error::Protocol(format!(
                    "unexpected {kind} row for {:?}",
                    self.expect
                )))
            }
        }
        if w.next().is_some() {
            return Err(protocol("extra fields in row", line));
        }
        self.rows += 1;
        Ok(())
    }
}

/// The index of the first `\n` in `bytes`, eight bytes at a time.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Bytes equal to '\n' become zero; the lowest flagged byte is the first zero
        // (flags above a zero byte can be false, below it they cannot).
        let x = u64::from_le_bytes(word) ^ NEWLINES;
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| base + i)
}

/// Splits a byte stream into reply lines of at most [`MAX_REPLY_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        LineBuffer::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its `\n` (and a `\r` before it, if any), or
    /// `Ok(None)` when only a partial line is buffered.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>> {
        let rest = &self.buf[self.start..];
        match find_newline(rest) {
            Some(pos) => {
                let s = self.start;
                self.start += pos + 1;
                let mut line = &self.buf[s..s + pos];
                if let Some(l) = line.strip_suffix(b"\r") {
                    line = l;
                }
                Ok(Some(line))
            }
            None if rest.len() > MAX_REPLY_LINE => Err(Error::Protocol(format!(
                "reply line longer than {MAX_REPLY_LINE} bytes"
            ))),
            None => Ok(None),
        }
    }

    /// Every complete line buffered, as one block ending in `\n` (empty when there is
    /// none), for a caller that handles many lines at once (see
    /// [`crate::session::Session::on_lines`]). Err when the partial line after them is
    /// already longer than [`MAX_REPLY_LINE`].
    pub fn complete_lines(&mut self) -> Result<&[u8]> {
        let rest = &self.buf[self.start..];
        let end = rest.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if rest.len() - end > MAX_REPLY_LINE {
            return Err(Error::Protocol(format!(
                "reply line longer than {MAX_REPLY_LINE} bytes"
            )));
        }
        let s = self.start;
        self.start += end;
        Ok(&self.buf[s..s + end])
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Request) -> String {
        let mut v = Vec::new();
        r.encode("1", &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn encodes_every_verb() {
        let cases: Vec<(Request, &str)> = vec![
            (Request::lock("a").into(), "1 LOCK a\n"),
            (
                Request::lock("a").wait(0).hold(5).queue(2).into(),
                "1 LOCK a wait=0 hold=5 queue=2\n",
            ),
            (
                Request::lock("a").wait(u32::MAX).hold(4_000_000_000).into(),
                "1 LOCK a wait=4294967295 hold=4000000000\n",
            ),
            (
                Request::Unlock {
                    name: "b:7".into(),
                    token: Some(u64::MAX),
                },
                "1 UNLOCK b:7 18446744073709551615\n",
            ),
            (
                Request::Acquire(Acquire {
                    kind: LockKind::Shared { max: Some(3) },
                    ..Request::share("q").wait(10)
                }),
                "1 SHARE q max=3 wait=10\n",
            ),
            (Request::share("q").into(), "1 SHARE q\n"),
            (
                Request::Unlock {
                    name: "a".into(),
                    token: None,
                },
                "1 UNLOCK a\n",
            ),
            (
                Request::Unlock {
                    name: "a".into(),
                    token: Some(9),
                },
                "1 UNLOCK a 9\n",
            ),
            (
                Request::Extend {
                    name: "a".into(),
                    token: 9,
                    hold: 100,
                },
                "1 EXTEND a 9 hold=100\n",
            ),
            (Request::Cancel { id: "x-1".into() }, "1 CANCEL x-1\n"),
            (Request::Reset, "1 RESET\n"),
            (Request::Inspect { name: "a".into() }, "1 INSPECT a\n"),
            (Request::List { prefix: None }, "1 LIST\n"),
            (
                Request::List {
                    prefix: Some("jobs:".into()),
                },
                "1 LIST jobs:\n",
            ),
            (Request::Name { name: "me".into() }, "1 NAME me\n"),
            (Request::Whoami, "1 WHOAMI\n"),
            (Request::Clients, "1 CLIENTS\n"),
            (Request::Stats, "1 STATS\n"),
            (Request::Ping, "1 PING\n"),
            (Request::Quit, "1 QUIT\n"),
            (
                Request::Auth {
                    secret: "s3".into(),
                },
                "1 AUTH s3\n",
            ),
        ];
        for (r, want) in cases {
            r.validate().unwrap();
            assert_eq!(enc(&r), want);
            // The numeric-id encoder writes the same line after the same id.
            for id in [
                0,
                1,
                9,
                10,
                99,
                100,
                101,
                999,
                1000,
                12_345,
                10u64.pow(18),
                10u64.pow(19) - 1,
                10u64.pow(19),
                u64::MAX,
            ] {
                let mut v = Vec::new();
                r.encode_with_id(id, &mut v);
                let want = format!("{id}{}", &want[1..]);
                assert_eq!(String::from_utf8(v).unwrap(), want);
            }
        }
    }

    #[test]
    fn validation_follows_the_server_rules() {
        let bad_names = ["", "a b", "tab\there", "nl\n", "del\x7f", &"x".repeat(256)];
        for n in bad_names {
            let r: Request = Request::lock(n).into();
            assert!(matches!(r.validate(), Err(Error::BadName(_))), "{n:?}");
        }
        let ok: Request = Request::lock("x".repeat(255)).into();
        ok.validate().unwrap();
        let utf8: Request = Request::lock("été:1").into();
        utf8.validate().unwrap();
        let max0 = Request::Acquire(Acquire {
            kind: LockKind::Shared { max: Some(0) },
            ..Request::share("q")
        });
        assert!(matches!(max0.validate(), Err(Error::BadOption(_))));
        let long_client = Request::Name {
            name: "n".repeat(65),
        };
        assert!(matches!(long_client.validate(), Err(Error::BadName(_))));
        Request::Name {
            name: "n".repeat(64),
        }
        .validate()
        .unwrap();
        for id in ["", "a b", "é", &"i".repeat(33)] {
            let r = Request::Cancel { id: id.into() };
            assert!(matches!(r.validate(), Err(Error::BadRequest(_))), "{id:?}");
        }
        let r = Request::Auth {
            secret: "two words".into(),
        };
        assert!(matches!(r.validate(), Err(Error::BadRequest(_))));
        let r = Request::Auth {
            secret: "s".repeat(5000),
        };
        assert!(matches!(r.validate(), Err(Error::LineTooLong(_))));
        let r = Request::List {
            prefix: Some("a b".into()),
        };
        assert!(matches!(r.validate(), Err(Error::BadName(_))));
    }

    fn assemble(req: &Request, lines: &[&str]) -> Result<Reply> {
        let mut a = Assembler::new(req);
        for (i, l) in lines.iter().enumerate() {
            let (id, f) = parse_line(l)?;
            assert_eq!(id, "1");
            if let Some(r) = a.push(f) {
                assert_eq!(i, lines.len() - 1, "finished early");
                return r;
            }
        }
        panic!("not finished");
    }

    #[test]
    fn decodes_replies() {
        let lock: Request = Request::lock("a").into();
        assert_eq!(
            assemble(&lock, &["1 OK 42"]).unwrap(),
            Reply::Granted(Grant {
                token: 42,
                holders: None
            })
        );
        assert!(matches!(
            assemble(&lock, &["1 TIMEOUT"]),
            Err(Error::Timeout)
        ));
        assert!(matches!(
            assemble(&lock, &["1 CANCELLED"]),
            Err(Error::Cancelled)
        ));
        assert!(matches!(
            assemble(&lock, &["1 ERR queue_full too many requests already wait"]),
            Err(Error::QueueFull(t)) if t == "too many requests already wait"
        ));
        let share: Request = Request::share("q").into();
        assert_eq!(
            assemble(&share, &["1 OK 43 2"]).unwrap(),
            Reply::Granted(Grant {
                token: 43,
                holders: Some(2)
            })
        );
        assert!(matches!(
            assemble(&share, &["1 OK 43"]),
            Err(Error::Protocol(_))
        ));
        let ins = Request::Inspect { name: "a".into() };
        assert_eq!(
            assemble(
                &ins,
                &["1 OK mode=exclusive holders=1 waiters=2 token=7 owner=127.0.0.1:5"]
            )
            .unwrap(),
            Reply::Inspect(LockInfo {
                mode: Mode::Exclusive,
                holders: 1,
                waiters: 2,
                token: Some(7),
                owner: Some("127.0.0.1:5".into())
            })
        );
        let list = Request::List { prefix: None };
        let r = assemble(
            &list,
            &[
                "1 ITEM a mode=exclusive holders=1 waiters=0",
                "1 ITEM b mode=shared holders=2 waiters=1",
                "1 END 2",
            ],
        )
        .unwrap();
        match r {
            Reply::List(rows) => {
                assert_eq!(rows.len(), 2);
                assert_eq!(rows[1].name, "b");
                assert_eq!(rows[1].mode, Mode::Shared);
                assert_eq!(rows[1].waiters, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            assemble(&list, &["1 END 1"]),
            Err(Error::Protocol(_))
        ));
        let st = assemble(
            &Request::Stats,
            &["1 STAT holds 3", "1 STAT cmd_lock 9", "1 END 2"],
        )
        .unwrap();
        match st {
            Reply::Stats(s) => {
                assert_eq!(s.get("cmd_lock"), Some(9));
                assert_eq!(s.get("nope"), None);
            }
            other => panic!("{other:?}"),
        }
        let cl = assemble(
            &Request::Clients,
            &["1 CLIENT 127.0.0.1:9 name=w holds=1 waits=0", "1 END 1"],
        )
        .unwrap();
        assert!(matches!(cl, Reply::Clients(c) if c[0].name == "w" && c[0].holds == 1));
        assert_eq!(
            assemble(&Request::Whoami, &["1 OK 127.0.0.1:9 w"]).unwrap(),
            Reply::Whoami(WhoAmI {
                addr: "127.0.0.1:9".into(),
                name: "w".into()
            })
        );
        assert_eq!(
            assemble(&Request::Reset, &["1 OK 2 1"]).unwrap(),
            Reply::Reset {
                released: 2,
                cancelled: 1
            }
        );
        assert_eq!(
            assemble(&Request::Cancel { id: "x".into() }, &["1 OK 1"]).unwrap(),
            Reply::Cancelled(1)
        );
        assert_eq!(assemble(&Request::Ping, &["1 PONG"]).unwrap(), Reply::Pong);
        assert_eq!(assemble(&Request::Quit, &["1 OK"]).unwrap(), Reply::Ok);
        assert!(matches!(
            assemble(&Request::Ping, &["1 ERR wat something new"]),
            Err(Error::Server { code, .. }) if code == "wat"
        ));
    }

    #[test]
    fn finds_newlines_at_every_position() {
        for len in 0..40 {
            // Bytes that differ from '\n' by one bit, and 0x8a/0x0b around it, to catch
            // a carry or a false flag in the word-at-a-time search.
            let fill: Vec<u8> = (0..len)
                .map(|i| [b'a', 0x0b, 0x8a, 0x09, 0x00, 0xff][i % 6])
                .collect();
            assert_eq!(find_newline(&fill), None, "len {len}");
            for at in 0..len {
                let mut v = fill.clone();
                v[at] = b'\n';
                assert_eq!(find_newline(&v), Some(at), "len {len} at {at}");
                // A second newline later does not matter.
                if at + 3 < len {
                    v[at + 3] = b'\n';
                    assert_eq!(find_newline(&v), Some(at), "len {len} at {at}, twice");
                }
            }
        }
    }

    #[test]
    fn complete_lines_come_as_one_block() {
        let mut b = LineBuffer::new();
        assert_eq!(b.complete_lines().unwrap(), b"");
        b.extend(b"1 OK\n2 PO");
        assert_eq!(b.complete_lines().unwrap(), b"1 OK\n");
        assert_eq!(b.complete_lines().unwrap(), b"");
        b.extend(b"NG\n3 OK 5\n");
        assert_eq!(b.complete_lines().unwrap(), b"2 PONG\n3 OK 5\n");
        b.extend(&vec![b'x'; MAX_REPLY_LINE + 1]);
        assert!(b.complete_lines().is_err());
    }

    #[test]
    fn splits_words_on_spaces() {
        assert_eq!(split_space("1 OK 5"), Some(("1", "OK 5")));
        assert_eq!(split_space(" x"), Some(("", "x")));
        assert_eq!(split_space("é x"), Some(("é", "x")));
        assert_eq!(split_space("none"), None);
        let w: Vec<&str> = words("  a bb  c ").collect();
        assert_eq!(w, ["a", "bb", "c"]);
        assert_eq!(words("").count(), 0);
        assert_eq!(words("   ").count(), 0);
    }

    #[test]
    fn parses_events_and_rejects_garbage() {
        assert_eq!(
            parse_line("5 EXPIRED 17").unwrap(),
            ("5", Frame::Expired(17))
        );
        assert_eq!(parse_line("5 CANCELLED").unwrap(), ("5", Frame::Cancelled));
        assert!(parse_line("5").is_err());
        assert!(parse_line("5 WHAT").is_err());
        assert!(parse_line("5 EXPIRED x").is_err());
        assert_eq!(parse_id("123"), Some(123));
        assert_eq!(parse_id("*"), None);
        assert_eq!(parse_id("99999999999999999999"), None);
        assert_eq!(parse_id("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_id("18446744073709551616"), None);
        assert_eq!(parse_id("0"), Some(0));
        assert_eq!(
            parse_id("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_id("00000000000000000000042"), Some(42));
        for bad in ["", "+1", "-1", "1 ", " 1", "1a", "0x1", "\u{663}"] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
        assert!(matches!(
            parse_line("1 EXPIRED 18446744073709551615"),
            Ok((_, Frame::Expired(u64::MAX)))
        ));
        assert!(parse_line("1 EXPIRED 18446744073709551616").is_err());
        assert!(parse_line("1 EXPIRED 1x").is_err());
    }

    #[test]
    fn line_buffer_splits_and_limits() {
        let mut b = LineBuffer::new();
        b.extend(b"1 OK 5\r\n2 PO");
        assert_eq!(b.next_line().unwrap(), Some(&b"1 OK 5"[..]));
        assert_eq!(b.next_line().unwrap(), None);
        b.extend(b"NG\n");
        assert_eq!(b.next_line().unwrap(), Some(&b"2 PONG"[..]));
        b.extend(&vec![b'x'; MAX_REPLY_LINE + 1]);
        assert!(b.next_line().is_err());
    }

    #[test]
    fn ids_count_up() {
        let mut a = IdAllocator::new();
        assert_eq!(a.next_id(), 1);
        assert_eq!(a.next_id(), 2);
        assert!(valid_id(u64::MAX.to_string().as_bytes()));
    }

    #[test]
    fn mode_words_round_trip_with_the_parser() {
        for m in [Mode::Free, Mode::Exclusive, Mode::Shared] {
            assert_eq!(Mode::parse(m.as_str(), "test").unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
        }
        // Display honours width and alignment, for tables.
        assert_eq!(format!("{:<7}|", Mode::Free), "free   |");
    }
}
