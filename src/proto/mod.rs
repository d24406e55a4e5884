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
//!   [`livemutex`]: the foreign protocols lockbox speaks for migrating clients;
//!   [`redis`]: Redis's lock dialect (framing in [`resp`], scripts in [`redis_scripts`]).
//!   [`metrics`]: the Prometheus endpoint, an HTTP responder.
//! - [`framing`]: line framing shared by the line protocols; [`json`]: the JSON writer;
//!   [`names`]: foreign names to engine names; [`requests`]: the map of client-named
//!   requests (locker, live-mutex); [`listing`]: listings written a batch at a time.
//!
//! # Invariants
//! - `Incomplete` means "need more bytes", never failure: a codec consumes nothing then.
//! - A codec buffers at most one request's worth of input (lines are bounded by
//!   `--max-line`, locker frames by their one-byte length).
//! - While [`Wire::listing`] is true the server calls [`Wire::proceed`], never
//!   [`Wire::decode`], and [`Codec`] holds the connection's events back until the
//!   listing ends (see [`listing`]).

pub mod framing;
pub mod json;
pub mod listing;
pub mod livemutex;
pub mod lockd;
pub mod locker;
pub mod metrics;
pub mod names;
pub mod native;
pub mod officer;
pub mod redis;
pub mod redis_scripts;
pub mod requests;
pub mod resp;

use crate::config::Config;
use crate::engine::{ClientId, Engine, Event, DETACHED};
use crate::lograte::RefusalLog;
use listing::Batch;
use std::fmt;
use std::net::SocketAddr;

/// Server-wide totals of the wire side, kept by the server and the codecs for native
/// `STATS`, lockd's `q` and the metrics endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Open connections, per protocol (indexed by [`Protocol`]).
    pub open_connections: [u64; Protocol::ALL.len()],
    /// Connections accepted, per protocol.
    pub connections_total: [u64; Protocol::ALL.len()],
    /// Requests decoded (lines, frames, HTTP requests), per protocol.
    pub requests_total: [u64; Protocol::ALL.len()],
    /// Connections refused at `--max-connections`.
    pub refused_connections_total: u64,
    /// `AUTH` requests with a wrong secret.
    pub auth_failures_total: u64,
    /// Connections closed by `--auth-timeout` before they authenticated.
    pub auth_timeouts_total: u64,
    /// The rate limits of the refusal warnings.
    pub refusal_log: RefusalLog,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Error replies sent.
    pub errors_total: u64,
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
    /// Current time in the engine's ticks (microseconds in the server; see
    /// [`Engine::ticks_per_ms`]).
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
    /// Redis's lock dialect over RESP.
    Redis,
    /// The Prometheus metrics endpoint (HTTP).
    Metrics,
}

impl Protocol {
    /// Every protocol, in listener order (the index is `protocol as usize`).
    pub const ALL: [Protocol; 7] = [
        Protocol::Native,
        Protocol::Lockd,
        Protocol::Locker,
        Protocol::Officer,
        Protocol::LiveMutex,
        Protocol::Redis,
        Protocol::Metrics,
    ];

    /// The protocol's name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Lockd => "lockd",
            Protocol::Locker => "locker",
            Protocol::Officer => "officer",
            Protocol::LiveMutex => "live-mutex",
            Protocol::Redis => "redis",
            Protocol::Metrics => "metrics",
        }
    }

    /// Every listener `cfg` asks for, native first.
    pub fn listeners(cfg: &Config) -> Vec<(Protocol, std::net::SocketAddr)> {
        let optional = [
            (Protocol::Lockd, cfg.lockd_listen),
            (Protocol::Locker, cfg.locker_listen),
            (Protocol::Officer, cfg.officer_listen),
            (Protocol::LiveMutex, cfg.livemutex_listen),
            (Protocol::Redis, cfg.redis_listen),
            (Protocol::Metrics, cfg.metrics_listen),
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
            Protocol::Metrics => Some(metrics::TOO_MANY_CONNECTIONS),
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

    /// True while a listing started by an earlier request is still being written.
    fn listing(&self) -> bool {
        false
    }

    /// Writes the next batch of the listing in progress (see [`listing`]); ends it
    /// with its last line when the scan is done.
    fn proceed(&mut self, _cx: &mut Ctx, _batch: Batch) {}

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

/// One connection's codec state: its protocol's session, and the engine events written
/// while a listing was in progress, held back until it ends.
#[derive(Debug)]
pub struct Codec {
    session: Session,
    held: Vec<u8>,
}

/// The session of whichever protocol the connection speaks.
#[derive(Debug)]
enum Session {
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
    /// The Redis dialect.
    Redis(redis::Session),
    /// The metrics endpoint.
    Metrics(metrics::Session),
}

/// Calls the same [`Wire`] method on whichever session `codec` holds.
macro_rules! each_session {
    ($codec:expr, $s:ident => $call:expr) => {
        match $codec {
            Session::Native($s) => $call,
            Session::Lockd($s) => $call,
            Session::Locker($s) => $call,
            Session::Officer($s) => $call,
            Session::LiveMutex($s) => $call,
            Session::Redis($s) => $call,
            Session::Metrics($s) => $call,
        }
    };
}

impl Codec {
    /// A fresh session of `protocol` for a new connection.
    pub fn new(protocol: Protocol, cfg: &Config) -> Codec {
        let session = match protocol {
            Protocol::Native => Session::Native(native::Session::new(cfg)),
            Protocol::Lockd => Session::Lockd(lockd::Session::new(cfg)),
            Protocol::Locker => Session::Locker(locker::Session::new(cfg)),
            Protocol::Officer => Session::Officer(officer::Session::new(cfg)),
            Protocol::LiveMutex => Session::LiveMutex(livemutex::Session::new(cfg)),
            Protocol::Redis => Session::Redis(redis::Session::new(cfg)),
            Protocol::Metrics => Session::Metrics(metrics::Session::new()),
        };
        Codec {
            session,
            held: Vec::new(),
        }
    }

    /// Decodes and handles at most one request from `input` (never called while
    /// [`Codec::listing`]).
    pub fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        debug_assert!(!self.listing(), "decode during a listing");
        each_session!(&mut self.session, s => s.decode(input, cx))
    }

    /// Writes an engine event for this connection; while a listing is in progress it
    /// is written aside and goes out after the listing's last line.
    pub fn encode_event(&mut self, event: &Event, engine: &Engine, out: &mut Vec<u8>) {
        let out = if self.listing() { &mut self.held } else { out };
        each_session!(&mut self.session, s => s.encode_event(event, engine, out))
    }

    /// Bytes of events held back by a listing in progress: output the client has not
    /// read yet either, so it counts against `--output-limit`.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Called just before the engine forgets the connection (its claims still exist).
    pub fn on_close(&mut self, cx: &mut Ctx) {
        each_session!(&mut self.session, s => s.on_close(cx))
    }

    /// True while a listing is in progress: call [`Codec::proceed`], not `decode`.
    pub fn listing(&self) -> bool {
        each_session!(&self.session, s => s.listing())
    }

    /// Writes the next batch of the listing in progress; once it has ended, writes the
    /// events held back meanwhile, in order.
    pub fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        each_session!(&mut self.session, s => s.proceed(cx, batch));
        if !self.listing() && !self.held.is_empty() {
            cx.out.extend_from_slice(&self.held);
            self.held = Vec::new();
        }
    }

    /// See [`Wire::answers_after_half_close`].
    pub fn answers_after_half_close(&self) -> bool {
        each_session!(&self.session, s => s.answers_after_half_close())
    }

    /// True while the connection must still `AUTH`.
    pub fn awaiting_auth(&self) -> bool {
        each_session!(&self.session, s => s.awaiting_auth())
    }

    /// Writes what a connection closed by `--auth-timeout` is told.
    pub fn auth_timed_out(&self, out: &mut Vec<u8>) {
        if let Session::Native(_) = self.session {
            out.extend_from_slice(native::AUTH_TIMED_OUT);
        }
    }
}

/// A client as log lines name it: `ip:port`, and its friendly name in parentheses when
/// it has one (never the server's internal connection key).
#[derive(Clone, Copy, Debug)]
pub struct Peer<'a> {
    /// The peer address (unspecified if the client is gone).
    pub addr: SocketAddr,
    /// The friendly name, if set.
    pub name: Option<&'a [u8]>,
}

impl<'a> Peer<'a> {
    /// The client `client` of `engine`.
    pub fn of(engine: &'a Engine, client: ClientId) -> Peer<'a> {
        match engine.client(client) {
            Some(c) => Peer {
                addr: c.addr(),
                name: c.name(),
            },
            None => Peer {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                name: None,
            },
        }
    }
}

impl fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(name) = self.name {
            f.write_str(" (")?;
            for chunk in name.utf8_chunks() {
                f.write_str(chunk.valid())?;
                for b in chunk.invalid() {
                    write!(f, "\\x{b:02x}")?;
                }
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// How every listing names the owner of a detached hold (a native `detached=1` hold or
/// a Redis-dialect key): it has no connection, so no address and no name.
pub const DETACHED_LABEL: &[u8] = b"detached";

/// Appends a client's `ip:port` (nothing if it is gone), or [`DETACHED_LABEL`] for
/// [`DETACHED`].
pub fn push_addr(out: &mut Vec<u8>, engine: &Engine, client: ClientId) {
    use std::io::Write;
    if client == DETACHED {
        out.extend_from_slice(DETACHED_LABEL);
    } else if let Some(c) = engine.client(client) {
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

/// `10^8`: the numbers one eight-digit word holds.
const EIGHT_DIGITS: u64 = 100_000_000;
/// `0x3030..30`: ASCII `'0'` in every byte of a word.
const ASCII_ZEROS: u64 = u64::from_le_bytes([b'0'; 8]);

/// The eight decimal digits of `n` (< 10^8, with leading zeros) as one little-endian
/// word, first digit in the lowest byte, each byte 0 to 9 (not yet ASCII).
///
/// Each step splits every lane of the word into a high and a low half in one
/// multiply-shift division: 4+4 digits in 32-bit lanes, 2+2 in 16-bit lanes, 1+1 in
/// bytes. The multipliers are exact in range: `x * 10486 >> 20 == x / 100` for
/// `x < 10^4`, `x * 103 >> 10 == x / 10` for `x < 100`, and no lane overflows into
/// the next (`9999 * 10486 < 2^32`, `99 * 103 < 2^16`).
fn digit_word(n: u64) -> u64 {
    debug_assert!(n < EIGHT_DIGITS);
    let v = (n / 10_000) | ((n % 10_000) << 32);
    let q = ((v * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let v = q | ((v - q * 100) << 16);
    let q = ((v * 103) >> 10) & 0x000f_000f_000f_000f;
    q | ((v - q * 10) << 8)
}

/// Appends the decimal digits of `n` (a 19-digit fencing token is in every grant):
/// split into at most three eight-digit words (`digit_word`, no table, no loop), the
/// first without its leading zeros, each appended as one eight-byte copy.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    // (leading part, the eight-digit words after it)
    let (lead, rest) = if n < EIGHT_DIGITS {
        (n, 0)
    } else if n < EIGHT_DIGITS * EIGHT_DIGITS {
        (n / EIGHT_DIGITS, 1)
    } else {
        (n / (EIGHT_DIGITS * EIGHT_DIGITS), 2)
    };
    let w = digit_word(lead);
    // Leading zero digits: zero bytes from the lowest (0 itself keeps its last digit).
    let zeros = (w.trailing_zeros() / 8).min(7) as usize;
    // Three words at most, composed in a fixed buffer and appended in one fixed copy.
    let mut buf = [0u8; 24];
    buf[..8].copy_from_slice(&((w >> (zeros * 8)) | ASCII_ZEROS).to_le_bytes());
    let mut len = 8 - zeros;
    if rest == 2 {
        let mid = n / EIGHT_DIGITS % EIGHT_DIGITS;
        buf[len..len + 8].copy_from_slice(&(digit_word(mid) | ASCII_ZEROS).to_le_bytes());
        len += 8;
    }
    if rest >= 1 {
        let low = n % EIGHT_DIGITS;
        buf[len..len + 8].copy_from_slice(&(digit_word(low) | ASCII_ZEROS).to_le_bytes());
        len += 8;
    }
    let at = out.len();
    out.extend_from_slice(&buf);
    out.truncate(at + len);
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_u64_digits() {
        let mut rng = crate::testrng::Rng::new(7);
        let edges = [
            0u64,
            7,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            1234567890,
            u64::MAX,
        ];
        let random = (0..10_000).map(|_| rng.next_u64() >> rng.below(64));
        let powers = (0..20).flat_map(|p| {
            let t = 10u64.pow(p);
            [t - 1, t, t + 1]
        });
        for n in edges.into_iter().chain(random).chain(powers) {
            let mut v = b"x".to_vec();
            super::push_u64(&mut v, n);
            assert_eq!(v, format!("x{n}").as_bytes());
        }
    }
}
