//! Wire codecs: each turns bytes into [`Engine`] calls and engine events into bytes.
//!
//! A codec sees one connection's buffered input and decodes at most one request per
//! [`Codec::decode`] call, writing that request's immediate reply into the
//! connection's output buffer. `Incomplete` means "need more bytes", never failure.
//! Deferred answers arrive later as engine [`Event`]s and are written by
//! [`Codec::encode_event`]. Neither the engine nor the server knows any wire format.

pub mod native;

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

/// One connection's codec state.
#[derive(Debug)]
pub enum Codec {
    /// The native protocol.
    Native(native::Session),
}

impl Codec {
    /// Decodes and handles at most one request from `input`.
    pub fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        match self {
            Codec::Native(s) => s.decode(input, cx),
        }
    }

    /// Writes an engine event for this connection.
    pub fn encode_event(&mut self, event: &Event, out: &mut Vec<u8>) {
        match self {
            Codec::Native(_) => native::encode_event(event, out),
        }
    }
}

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
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
