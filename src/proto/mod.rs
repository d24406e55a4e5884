//! Wire codecs: each turns bytes into [`Engine`] calls and engine events into bytes.
//!
//! Every codec has one shape: a typed request parsed in one place (`parse(bytes) ->
//! Request`), then executed against the engine (`execute(Request, &mut Ctx)`), and a
//! per-connection `Session` that keeps the [`Wire`] contract: it sees the connection's
//! buffered input and decodes at most one request per [`Wire::decode`] call, writing
//! that request's immediate reply into the connection's output buffer; deferred answers
//! arrive later as engine [`Event`]s and are written by [`Wire::encode_event`].
//! Neither the engine nor the server knows any wire format.
//!
//! - [`native`]: lockbox's own protocol; [`lockd`], [`locker`], [`officer`],
//!   [`livemutex`]: the foreign protocols lockbox speaks for migrating clients.
//! - [`framing`]: line framing shared by the line protocols; [`json`]: the JSON writer;
//!   [`names`]: foreign names to engine names; [`requests`]: the map of client-named
//!   requests (locker, live-mutex).
//!
//! # Invariants
//! - `Incomplete` means "need more bytes", never failure: a codec consumes nothing then.
//! - A codec buffers at most one request's worth of input (lines are bounded by
//!   `--max-line`, locker frames by their one-byte length).

pub mod framing;
pub mod json;
pub mod livemutex;
pub mod lockd;
pub mod locker;
pub mod names;
pub mod native;
pub mod officer;
pub mod requests;

use crate::config::Config;
use crate::engine::{ClientId, Engine, Event};

/// Server-wide totals of the wire side, kept by the server and the codecs for native
/// `STATS` and lockd's `q`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Error replies sent.
    pub errors_total: u64,
    /// Connections refused by `--max-connections`.
    pub refused_connections_total: u64,
    /// Wrong `AUTH` secrets.
    pub auth_failures_total: u64,
    /// Native requests parsed, per verb (indexed by [`native::Verb`]).
    pub native_commands: [u64; native::Verb::ALL.len()],
    /// lockd's own tally (its `q` command).
    pub lockd: lockd::Tally,
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
    /// Server-wide totals.
    pub stats: &'a mut Totals,
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
    /// Like `Close`, but the output is held back for the auth-failure delay first
    /// (a wrong `AUTH`: guessing must be slow).
    CloseDelayed(usize),
}

/// The wire protocols a listener can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// lockbox's own protocol.
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

    /// What to send (best effort) to a connection refused by `--max-connections`, for
    /// the protocols that can say so.
    pub fn refusal(self) -> Option<&'static [u8]> {
        match self {
            Protocol::Native => Some(native::TOO_MANY_CONNECTIONS),
            _ => None,
        }
    }
}

/// The contract of a codec's per-connection state.
pub trait Wire {
    /// Decodes and executes at most one request from `input`.
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress;

    /// Writes an engine event for this connection.
    fn encode_event(&mut self, event: &Event, engine: &Engine, out: &mut Vec<u8>);

    /// Called just before the engine forgets the connection (its claims still exist).
    fn on_close(&mut self, _cx: &mut Ctx) {}

    /// After the peer shut down its write side (or closed: a server cannot tell which),
    /// does the connection stay until its waits with a deadline have been answered?
    /// No by default: the foreign protocols' clients never half-close, and their locks
    /// must go with them at once.
    fn answers_after_half_close(&self) -> bool {
        false
    }

    /// True while the connection must still `AUTH` (only the native protocol has AUTH).
    fn awaiting_auth(&self) -> bool {
        false
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

/// Calls the same [`Wire`] method on whichever session `codec` holds.
macro_rules! each_session {
    ($codec:expr, $s:ident => $call:expr) => {
        match $codec {
            Codec::Native($s) => $call,
            Codec::Lockd($s) => $call,
            Codec::Locker($s) => $call,
            Codec::Officer($s) => $call,
            Codec::LiveMutex($s) => $call,
        }
    };
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
        each_session!(self, s => s.decode(input, cx))
    }

    /// Writes an engine event for this connection.
    pub fn encode_event(&mut self, event: &Event, engine: &Engine, out: &mut Vec<u8>) {
        each_session!(self, s => s.encode_event(event, engine, out))
    }

    /// Called just before the engine forgets the connection (its claims still exist).
    pub fn on_close(&mut self, cx: &mut Ctx) {
        each_session!(self, s => s.on_close(cx))
    }

    /// See [`Wire::answers_after_half_close`].
    pub fn answers_after_half_close(&self) -> bool {
        each_session!(self, s => s.answers_after_half_close())
    }

    /// True while the connection must still `AUTH`.
    pub fn awaiting_auth(&self) -> bool {
        each_session!(self, s => s.awaiting_auth())
    }

    /// Writes what a connection closed by `--auth-timeout` is told.
    pub fn auth_timed_out(&self, out: &mut Vec<u8>) {
        if let Codec::Native(_) = self {
            out.extend_from_slice(native::AUTH_TIMED_OUT);
        }
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
    #[test]
    fn push_u64_digits() {
        for n in [0u64, 7, 10, 99, 1234567890, u64::MAX] {
            let mut v = Vec::new();
            super::push_u64(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
        }
    }
}
