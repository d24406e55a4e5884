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
//!
//! # Layout
//! - `request`: the typed requests ([`Request`], [`Acquire`], [`LockKind`]).
//! - `validate`: the server's rules for names, ids and options ([`Request::validate`]).
//! - `encode`: a request as its wire line ([`Request::encode`]).
//! - `frame`: reply lines from a byte stream ([`LineBuffer`]) split into [`Frame`]s.
//! - `reply`: the typed replies ([`Reply`] and its parts).
//! - `assemble`: the frames of one request into its [`Reply`] ([`Assembler`]).

mod assemble;
mod encode;
mod frame;
mod reply;
mod request;
#[cfg(test)]
mod tests;
mod validate;

pub use assemble::{Assembler, Expect};
pub use frame::{parse_line, Frame, LineBuffer};
pub use reply::{ClientInfo, Grant, LockInfo, LockSummary, Mode, Reply, Stats, WhoAmI};
pub use request::{Acquire, LockKind, Request};
pub use validate::{check_name, valid_id, valid_name};

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
