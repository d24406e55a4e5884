//! RESP framing for the Redis dialect: requests in (RESP2 arrays of bulk strings and
//! inline commands), replies out (RESP2, and the few RESP3 forms a `HELLO 3` client gets).
//!
//! # Requests
//! [`parse`] frames at most one request from the start of a connection's buffered input
//! and returns borrowed slices into it: nothing is copied, and the only storage is the
//! caller's [`Args`], whose capacity is kept from request to request (no allocation per
//! request once it has grown to the widest request seen, at most [`MAX_ARGS`] spans).
//!
//! - A request starting with `*` is an array: `*<n>\r\n` then `n` bulk strings
//!   `$<len>\r\n<len bytes>\r\n`. Anything but a bulk string inside it (a nested array, an
//!   integer, ...) is an error: requests are never nested.
//! - Anything else is an inline command: one line ending in `\n` (a `\r` before it is
//!   dropped), arguments separated by spaces, tabs or `\r` (and `\v`, `\f` before an
//!   argument), as Redis splits them. A line with a quote anywhere is refused
//!   ([`RespError::QuotedInline`]) rather than unquoted.
//! - `*0`, any negative count and a blank inline line are empty requests (no
//!   arguments), which a server ignores without a reply, as Redis does.
//!
//! # Invariants
//! - `parse` never panics and never reads past `input`.
//! - [`Parsed::Request`] consumed at least one byte and at most `input.len()`.
//! - [`Parsed::Incomplete`] only while the buffered bytes can still be the start of a
//!   request within the [`Limits`]: a connection never has to buffer more than
//!   [`Limits::max_buffered`] bytes to get either a request or an error. Limits are
//!   checked as soon as a header is read, before its data arrives.
//! - An error is final for the connection: the input cannot be resynchronised, so the
//!   server writes [`RespError::write`] and closes.

use memchr::{memchr, memchr2};

/// Most arguments in one request (command name included).
pub const MAX_ARGS: usize = 1024;
/// Most bytes in one bulk string.
pub const MAX_BULK: usize = 64 * 1024;
/// Most bytes in one array request, headers and CRLFs included.
pub const MAX_REQUEST: usize = 256 * 1024;
/// Most bytes in one inline line before its `\n` (Redis's own inline limit).
pub const MAX_INLINE: usize = 64 * 1024;
/// Most bytes of a `*<n>` or `$<n>` header line, its CRLF excluded.
pub const MAX_HEADER: usize = 32;
/// Most decimal digits in a length (enough for any `i64`).
const MAX_DIGITS: usize = 19;
/// Bytes of the CRLF that ends every line and bulk string.
const CRLF: usize = 2;

/// The limits one listener applies to requests; [`Limits::default`] is the named constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most arguments per request.
    pub max_args: usize,
    /// Most bytes per bulk string.
    pub max_bulk: usize,
    /// Most bytes per array request.
    pub max_request: usize,
    /// Most bytes per inline line.
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_args: MAX_ARGS,
            max_bulk: MAX_BULK,
            max_request: MAX_REQUEST,
            max_inline: MAX_INLINE,
        }
    }
}

impl Limits {
    /// The most bytes [`parse`] can answer `Incomplete` for: past this it has decided.
    pub fn max_buffered(&self) -> usize {
        // An array request stops at max_request plus one unfinished header line; an
        // inline line at max_inline plus its `\r`.
        (self.max_request + 1 + MAX_HEADER + CRLF).max(self.max_inline + 1)
    }
}

/// A malformed request. Each is final: the server answers with it and closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// `*<n>` is not a number, is over the argument limit or has no `\r`.
    InvalidMultibulkLength,
    /// `$<len>` is not a number, is negative, is over the bulk limit or has no `\r`.
    InvalidBulkLength,
    /// An array element does not start with `$` (this byte instead): a nested array,
    /// an integer, a simple string...
    ExpectedBulk(u8),
    /// The bulk data is not followed by `\r\n`.
    ExpectedCrlf,
    /// An inline line longer than the limit.
    TooBigInline,
    /// A `*<n>` header line longer than [`MAX_HEADER`].
    TooBigMultibulkCount,
    /// A `$<len>` header line longer than [`MAX_HEADER`].
    TooBigBulkCount,
    /// An array request longer than the request limit.
    RequestTooBig,
    /// More inline arguments than the argument limit.
    TooManyArgs,
    /// An inline line has a `"` or `'`.
    QuotedInline,
}

impl RespError {
    /// Appends the error reply, worded as Redis words its protocol errors:
    /// `-ERR Protocol error: ...\r\n`.
    pub fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR Protocol error: ");
        match self {
            RespError::InvalidMultibulkLength => out.extend_from_slice(b"invalid multibulk length"),
            RespError::InvalidBulkLength => out.extend_from_slice(b"invalid bulk length"),
            RespError::ExpectedBulk(b) => {
                out.extend_from_slice(b"expected '$', got '");
                if b.is_ascii_graphic() || b == b' ' {
                    out.push(b);
                } else {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(&[
                        b'\\',
                        b'x',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 15) as usize],
                    ]);
                }
                out.push(b'\'');
            }
            RespError::ExpectedCrlf => out.extend_from_slice(b"expected CRLF after bulk data"),
            RespError::TooBigInline => out.extend_from_slice(b"too big inline request"),
            RespError::TooBigMultibulkCount => out.extend_from_slice(b"too big mbulk count string"),
            RespError::TooBigBulkCount => out.extend_from_slice(b"too big bulk count string"),
            RespError::RequestTooBig => out.extend_from_slice(b"request too big"),
            RespError::TooManyArgs => out.extend_from_slice(b"too many arguments"),
            RespError::QuotedInline => out
                .extend_from_slice(b"quoted inline arguments are not supported, send a RESP array"),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The argument spans of the last parsed request: reusable storage owned by a session.
#[derive(Debug, Default)]
pub struct Args {
    spans: Vec<(usize, usize)>,
}

impl Args {
    /// Empty storage; it grows to the widest request it sees and stays there.
    pub fn new() -> Self {
        Args::default()
    }

    /// Spans currently allocated for.
    pub fn capacity(&self) -> usize {
        self.spans.capacity()
    }
}

/// One framed request: its arguments, borrowed from the input.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    input: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Request<'a> {
    /// Number of arguments (0 for an empty request).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for an empty request (`*0`, `*-1`, a blank line): ignore it, no reply.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 is the command name).
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let input = self.input;
        self.spans.get(i).map(|&(s, e)| &input[s..e])
    }

    /// Every argument in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let input = self.input;
        self.spans.iter().map(move |&(s, e)| &input[s..e])
    }
}

/// What [`parse`] found at the start of the input.
#[derive(Clone, Copy, Debug)]
pub enum Parsed<'a> {
    /// A complete request and the bytes it used.
    Request(Request<'a>, usize),
    /// Not a whole request yet, and still within the limits.
    Incomplete,
    /// Malformed: answer with it and close.
    Error(RespError),
}

/// Frames the first request of `input` (see the module doc).
pub fn parse<'a>(input: &'a [u8], limits: &Limits, args: &'a mut Args) -> Parsed<'a> {
    args.spans.clear();
    let result = match input.first() {
        None => return Parsed::Incomplete,
        Some(b'*') => parse_array(input, limits, &mut args.spans),
        Some(_) => parse_inline(input, limits, &mut args.spans),
    };
    match result {
        Ok(Some(used)) => Parsed::Request(
            Request {
                input,
                spans: &args.spans,
            },
            used,
        ),
        Ok(None) => Parsed::Incomplete,
        Err(e) => Parsed::Error(e),
    }
}

/// A header line `<prefix><number>\r\n` at `at`: `Ok(Some((number, next)))`,
/// `Ok(None)` for incomplete, or `bad`/`too_big`.
#[inline(always)]
fn header(
    input: &[u8],
    at: usize,
    bad: RespError,
    too_big: RespError,
) -> Result<Option<(i64, usize)>, RespError> {
    if let Some(found) = plain_number(input, at + 1) {
        return Ok(Some(found));
    }
    header_general(input, at, bad, too_big)
}

/// [`header`] for every line [`plain_number`] leaves: out of line, as it is rare.
#[cold]
#[inline(never)]
fn header_general(
    input: &[u8],
    at: usize,
    bad: RespError,
    too_big: RespError,
) -> Result<Option<(i64, usize)>, RespError> {
    let start = at + 1; // past the `*` or `$`
    let window_end = input.len().min(start + MAX_HEADER + CRLF);
    let window = input.get(start..window_end).unwrap_or(&[]);
    let Some(nl) = memchr(b'\n', window) else {
        return if window.len() >= MAX_HEADER + CRLF {
            Err(too_big)
        } else {
            Ok(None)
        };
    };
    let line = window[..nl].strip_suffix(b"\r").ok_or(bad)?;
    let n = parse_i64(line).ok_or(bad)?;
    Ok(Some((n, start + nl + 1)))
}

/// The common header in one pass: at `start`, `0` or up to [`MAX_PLAIN_DIGITS`] digits
/// without a leading zero, then `\r\n`, all in `input`: `Some((number, next))`. `None`
/// for anything else (a sign, more digits, a missing or partial line end...), which
/// [`header`]'s general path then decides; on every input where this answers, that
/// path answers the same.
#[inline(always)]
fn plain_number(input: &[u8], start: usize) -> Option<(i64, usize)> {
    let digits = input.get(start..)?;
    let mut n: u64 = 0;
    let mut i = 0;
    // One digit past the most taken, to tell "too many" from "just right".
    for &b in digits.iter().take(MAX_PLAIN_DIGITS + 1) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    if i == 0 || i > MAX_PLAIN_DIGITS || (i > 1 && digits[0] == b'0') {
        return None;
    }
    match digits.get(i..i + CRLF) {
        // At most 18 digits: below i64::MAX, no wrap happened.
        Some(b"\r\n") => Some((n as i64, start + i + CRLF)),
        _ => None,
    }
}

/// Most digits [`plain_number`] adds up: 18 never overflow an `i64`.
const MAX_PLAIN_DIGITS: usize = 18;

/// Strict decimal, as Redis parses integers (RESP lengths and command arguments): an
/// optional `-`, then `0` or digits without a leading zero; never `-0`.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > MAX_DIGITS || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    if neg && digits == b"0" {
        return None; // "-0"
    }
    // Accumulated with the final sign, so that i64::MIN, whose magnitude is no i64,
    // is taken as Redis takes it.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

fn parse_array(
    input: &[u8],
    limits: &Limits,
    spans: &mut Vec<(usize, usize)>,
) -> Result<Option<usize>, RespError> {
    let bad = RespError::InvalidMultibulkLength;
    let Some((count, mut pos)) = header(input, 0, bad, RespError::TooBigMultibulkCount)? else {
        return Ok(None);
    };
    if count <= 0 {
        return Ok(Some(pos)); // Redis takes any count of 0 or less as no request
    }
    let count = usize::try_from(count).map_err(|_| bad)?;
    if count > limits.max_args {
        return Err(bad);
    }
    for _ in 0..count {
        if pos > limits.max_request {
            return Err(RespError::RequestTooBig);
        }
        let Some(&first) = input.get(pos) else {
            return Ok(None);
        };
        if first != b'$' {
            return Err(RespError::ExpectedBulk(first));
        }
        let bad = RespError::InvalidBulkLength;
        let Some((len, data)) = header(input, pos, bad, RespError::TooBigBulkCount)? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| bad)?;
        if len > limits.max_bulk {
            return Err(bad);
        }
        let end = data + len;
        if end + CRLF > limits.max_request {
            return Err(RespError::RequestTooBig);
        }
        // Check the CRLF as far as it is there, so a wrong byte fails at once.
        match input.get(end..end + CRLF) {
            Some(b"\r\n") => {}
            Some(_) => return Err(RespError::ExpectedCrlf),
            None if input.get(end).is_some_and(|&b| b != b'\r') => {
                return Err(RespError::ExpectedCrlf)
            }
            None => return Ok(None),
        }
        spans.push((data, end));
        pos = end + CRLF;
    }
    Ok(Some(pos))
}

/// White space skipped between inline arguments (Redis skips `isspace`).
fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

/// The bytes that end an inline argument (Redis's `sdssplitargs`: `\v` and `\f` do
/// not, they are part of the argument).
fn ends_arg(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

fn parse_inline(
    input: &[u8],
    limits: &Limits,
    spans: &mut Vec<(usize, usize)>,
) -> Result<Option<usize>, RespError> {
    // The line may still get a `\r` before its `\n`: allow one byte more.
    let window = &input[..input.len().min(limits.max_inline + 2)];
    let Some(nl) = memchr(b'\n', window) else {
        return if input.len() > limits.max_inline + 1 {
            Err(RespError::TooBigInline)
        } else {
            Ok(None)
        };
    };
    let line = input[..nl].strip_suffix(b"\r").unwrap_or(&input[..nl]);
    if line.len() > limits.max_inline {
        return Err(RespError::TooBigInline);
    }
    // Redis unquotes from a quote anywhere in an argument: refuse them all.
    if memchr2(b'"', b'\'', line).is_some() {
        return Err(RespError::QuotedInline);
    }
    let mut i = 0;
    while i < line.len() {
        if is_sep(line[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && !ends_arg(line[i]) {
            i += 1;
        }
        if spans.len() == limits.max_args {
            return Err(RespError::TooManyArgs);
        }
        spans.push((start, i));
    }
    Ok(Some(nl + 1))
}

/// Which reply forms a connection gets: RESP2 until it says `HELLO 3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// RESP2: null is `$-1`, maps are flat arrays.
    #[default]
    Resp2,
    /// RESP3: null is `_`, maps are `%`.
    Resp3,
}

/// Appends `+<s>\r\n`. `s` must not contain `\r` or `\n`; any that do are written as spaces.
pub fn simple(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'+');
    push_line(out, s);
}

/// Appends `-<msg>\r\n`; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`).
/// `\r` and `\n` in it are written as spaces, so a reply is always one line.
pub fn error(out: &mut Vec<u8>, msg: &[u8]) {
    out.push(b'-');
    push_line(out, msg);
}

/// Appends `:<n>\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_i64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$<len>\r\n<data>\r\n`.
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    push_i64(out, data.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the null reply: `$-1\r\n` (RESP2) or `_\r\n` (RESP3).
pub fn null(out: &mut Vec<u8>, version: Version) {
    out.extend_from_slice(match version {
        Version::Resp2 => b"$-1\r\n",
        Version::Resp3 => b"_\r\n",
    });
}

/// Appends an array header `*<len>\r\n`; the `len` elements follow.
pub fn array(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    push_i64(out, len as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends a map header for `pairs` key/value pairs: `%<pairs>\r\n` (RESP3) or the flat
/// array `*<2 * pairs>\r\n` (RESP2); the keys and values follow, alternating.
pub fn map(out: &mut Vec<u8>, pairs: usize, version: Version) {
    match version {
        Version::Resp2 => array(out, 2 * pairs),
        Version::Resp3 => {
            out.push(b'%');
            push_i64(out, pairs as i64);
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn push_line(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            s.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal digits of `n`.
fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut m = n.unsigned_abs();
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
