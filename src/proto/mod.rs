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
pub mod names;
pub mod native;
pub mod officer;
pub mod requests;

use crate::config::Config;
use crate::engine::{ClientId, Engine, Event};
use listing::Batch;

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

    /// True while a listing started by an earlier request is still being written.
    fn listing(&self) -> bool {
        false
    }

    /// Writes the next batch of the listing in progress (see [`listing`]); ends it
    /// with its last line when the scan is done.
    fn proceed(&mut self, _cx: &mut Ctx, _batch: Batch) {}
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
