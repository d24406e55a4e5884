//! Wire codecs: each turns bytes into [`Engine`] calls and engine events into bytes.
//!
//! A codec sees one connection's buffered input and decodes at most one request per
//! [`Codec::decode`] call, writing that request's immediate reply into the
//! connection's output buffer. `Incomplete` means "need more bytes", never failure.
//! Deferred answers arrive later as engine [`Event`]s and are written by
//! [`Codec::encode_event`]. Neither the engine nor the server knows any wire format.

pub mod foreign;
pub mod livemutex;
pub mod lockd;
pub mod locker;
pub mod native;
pub mod officer;
pub mod redis_scripts;
pub mod resp;

use crate::config::Config;
use crate::engine::{ClientId, Engine, Event};

/// Counters kept by the server and the codecs for `STATS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Error replies sent.
    pub errors_total: u64,
    /// Native requests parsed, per verb (indexed by [`native::Verb`]).
    pub native_commands: [u64; native::Verb::ALL.len()],
    /// lockd's own counters (its `q` command).
    pub lockd: lockd::Counters,
}

/// Everything a codec may touch while it handles one request.
pub struct Ctx<'a> {
    /// The lock engine.
    pub engine: &'a mut Engine,
    /// The connection the request came from.
    pub client: ClientId,
    /// That connection's output buffer.
    pub out: &'a mut Vec<u8>,
    /// Current time, ms on the engine's clock.
    pub now: u64,
    /// Server-wide counters.
    pub stats: &'a mut Stats,
    /// The AUTH secret, when the server requires one.
    pub secret: Option<&'a [u8]>,
}

/// What a codec did with the buffered input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Handled one request of this many bytes; call again with the rest.
    Consumed(usize),
    /// No complete request is buffered.
    Incomplete,
    /// Consumed this many bytes and wants the connection closed once its output is flushed.
    Close(usize),
}

/// The wire protocols a listener can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// lockbox's own protocol (`shared/spec/protocol.md`).
    Native,
    /// lockd / glockd text lines.
    Lockd,
    /// locker's binary frames.
    Locker,
    /// officer's JSON lines.
    Officer,
    /// live-mutex's JSON lines.
    LiveMutex,
}

impl Protocol {
    /// The protocol's name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Lockd => "lockd",
            Protocol::Locker => "locker",
            Protocol::Officer => "officer",
            Protocol::LiveMutex => "live-mutex",
        }
    }

    /// Every listener `cfg` asks for, native first.
    pub fn listeners(cfg: &Config) -> Vec<(Protocol, std::net::SocketAddr)> {
        let optional = [
            (Protocol::Lockd, cfg.lockd_listen),
            (Protocol::Locker, cfg.locker_listen),
            (Protocol::Officer, cfg.officer_listen),
            (Protocol::LiveMutex, cfg.livemutex_listen),
        ];
        let mut v = vec![(Protocol::Native, cfg.listen)];
        v.extend(optional.into_iter().filter_map(|(p, a)| Some((p, a?))));
        v
    }
}

/// One connection's codec state.
#[derive(Debug)]
pub enum Codec {
    /// The native protocol.
    Native(native::Session),
    /// lockd / glockd.
    Lockd(lockd::Session),
    /// locker.
    Locker(locker::Session),
    /// officer.
    Officer(officer::Session),
    /// live-mutex.
    LiveMutex(livemutex::Session),
}

impl Codec {
    /// A fresh session of `protocol` for a new connection.
    pub fn new(protocol: Protocol, cfg: &Config) -> Codec {
        match protocol {
            Protocol::Native => Codec::Native(native::Session::new(cfg)),
            Protocol::Lockd => Codec::Lockd(lockd::Session::new(cfg)),
            Protocol::Locker => Codec::Locker(locker::Session::new(cfg)),
            Protocol::Officer => Codec::Officer(officer::Session::new(cfg)),
            Protocol::LiveMutex => Codec::LiveMutex(livemutex::Session::new(cfg)),
        }
    }

    /// Decodes and handles at most one request from `input`.
    pub fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        match self {
            Codec::Native(s) => s.decode(input, cx),
            Codec::Lockd(s) => s.decode(input, cx),
            Codec::Locker(s) => s.decode(input, cx),
            Codec::Officer(s) => s.decode(input, cx),
            Codec::LiveMutex(s) => s.decode(input, cx),
        }
    }

    /// Writes an engine event for this connection.
    pub fn encode_event(&mut self, event: &Event, engine: &Engine, out: &mut Vec<u8>) {
        match self {
            Codec::Native(s) => s.encode_event(event, engine, out),
            Codec::Lockd(s) => s.encode_event(event, engine, out),
            Codec::Locker(s) => s.encode_event(event, engine, out),
            Codec::Officer(s) => s.encode_event(event, engine, out),
            Codec::LiveMutex(s) => s.encode_event(event, engine, out),
        }
    }

    /// Called just before the engine forgets the connection (its claims still exist).
    pub fn on_close(&mut self, cx: &mut Ctx) {
        match self {
            Codec::Native(_) => {}
            Codec::Lockd(s) => s.on_close(cx),
            Codec::Locker(s) => s.on_close(cx),
            Codec::Officer(s) => s.on_close(cx),
            Codec::LiveMutex(s) => s.on_close(cx),
        }
    }
}

/// One request line framed out of a connection's buffered input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line (without `\n` and a `\r` before it) and the bytes it used.
    Complete(&'a [u8], usize),
    /// No `\n` yet, and the partial line is still within the limit.
    Incomplete,
    /// Over `max_line`: the line (or its start) and the bytes to drop. Every line
    /// protocol closes the connection then, so a line that never ends costs at most
    /// `max_line` bytes of buffer.
    TooLong(&'a [u8], usize),
}

/// Frames the first `\n`-terminated line of `input`, allowing at most `max_line` bytes
/// before the line end (a `\r` just before the `\n` does not count).
pub fn frame_line(input: &[u8], max_line: usize) -> Line<'_> {
    match memchr::memchr(b'\n', input) {
        Some(nl) => {
            let line = input[..nl].strip_suffix(b"\r").unwrap_or(&input[..nl]);
            if line.len() > max_line {
                Line::TooLong(line, nl + 1)
            } else {
                Line::Complete(line, nl + 1)
            }
        }
        // The partial line may still get a `\r` before its `\n`: allow one byte more.
        None if input.len() > max_line + 1 => Line::TooLong(input, input.len()),
        None => Line::Incomplete,
    }
}

/// Appends a client's `ip:port` (nothing if it is gone).
pub fn push_addr(out: &mut Vec<u8>, engine: &Engine, client: ClientId) {
    use std::io::Write;
    if let Some(c) = engine.client(client) {
        let _ = write!(out, "{}", c.addr());
    }
}

/// Appends a client's friendly name, or its `ip:port` when it has none.
pub fn push_label(out: &mut Vec<u8>, engine: &Engine, client: ClientId) {
    match engine.client(client).and_then(|c| c.name()) {
        Some(name) => out.extend_from_slice(name),
        None => push_addr(out, engine, client),
    }
}

/// Decimal digits of `u64::MAX`.
pub const U64_DIGITS: usize = 20;

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; U64_DIGITS];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::{frame_line, Line};

    #[test]
    fn frames_lines() {
        assert_eq!(frame_line(b"a\nb", 10), Line::Complete(b"a", 2));
        assert_eq!(frame_line(b"a\r\n", 1), Line::Complete(b"a", 3));
        assert_eq!(frame_line(b"\n", 10), Line::Complete(b"", 1));
        assert_eq!(frame_line(b"abc", 3), Line::Incomplete);
        assert_eq!(frame_line(b"abc\r", 3), Line::Incomplete);
        assert_eq!(frame_line(b"abcde", 3), Line::TooLong(b"abcde", 5));
        assert_eq!(frame_line(b"abcd\nx", 3), Line::TooLong(b"abcd", 5));
    }

    #[test]
    fn push_u64_digits() {
        for n in [0u64, 7, 10, 99, 1234567890, u64::MAX] {
            let mut v = Vec::new();
            super::push_u64(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
        }
    }
}
