//! The locker protocol: the binary frames of bobrik's
//! `locker` server (Node), spoken by the `locker` npm client (`lib/Locker.js`).
//!
//! # Format
//! Little-endian. A request is a 14-byte header followed by the name:
//! ```text
//! offset size field
//!      0   u8 name length (0..=255)
//!      1  u32 sequence number (the client's id for the lock request)
//!      5  u32 wait ms
//!      9  u32 hold ms
//!     13   u8 action: 1 = lock, 0 = unlock
//!     14  len name bytes
//! ```
//! A reply is 6 bytes: u32 sequence, u8 action (echoed), u8 result (1 ok, 0 failed).
//! A frame is at most [`MAX_FRAME`] (14 + 255) bytes, so a session never buffers more
//! than that: [`Session::decode`] says `Incomplete` until a whole frame is there.
//!
//! # Mapping onto the engine
//! - Lock `(seq, wait, hold, name)` -> [`Engine::acquire`] exclusive, tag = the 4 bytes of
//!   `seq` (LE), `wait = Some(wait)`, `hold = Some(hold)`. `wait = 0` tries once and
//!   `hold = 0` ends the hold at once, as in the original server, whose wait and hold
//!   timers were `setTimeout(.., ms)` (so 0 fired on the next tick; the client does the
//!   same on its side). Granted now ->
//!   `(seq,1,1)`; busy with `wait = 0`, or the per-connection limit -> `(seq,1,0)`; else
//!   queued, FIFO per name, and answered later by the `Granted` -> `(seq,1,1)` or
//!   `Timeout` -> `(seq,1,0)` event. Not re-entrant: a second lock on a name this
//!   connection holds queues behind the first.
//! - Hold expiry is silent, as in the original: the `Expired` event writes nothing; the
//!   next waiter is granted by the engine.
//! - Unlock `seq` -> release of the hold granted to that lock request -> `(seq,0,1)`;
//!   an unknown, expired or already released sequence -> `(seq,0,0)`.
//! - Names: a locker name maps to the engine name
//!   [`super::names::engine_name`]`("", NAME)`, as lockd's and officer's do: itself for
//!   ordinary names, with bytes `0x00..=0x20`, `0x7F` and `%` written as `%XX` and the
//!   empty name as `%`. So locker's `foo` is the same lock as native `LOCK foo`, lockd's
//!   `g foo` and officer's `foo`, and `"job 1"` shows as `job%201` in native `LIST`. A
//!   name whose escaped form is over 255 bytes is refused with `(seq,1,0)`.
//! - A disconnect releases the connection's holds and cancels its waits (the engine
//!   does it after [`Session::on_close`]).
//!
//! The session keeps a [`RequestMap`] `seq -> (name, waiting | held(token))` of its live
//! lock requests, so an unlock is a hash lookup plus [`Engine::release`] by name and
//! token (O(1) for an exclusive lock) rather than a walk over the connection's claims.
//! The map follows the engine's events; a hold taken away without an event (a forced
//! release) is found stale at its next use or at the map's next rebuild from the engine,
//! so its size stays within twice the connection's live claims plus a constant. It
//! remembers no gone requests: an unlock of an expired or forced-away sequence is
//! always `(seq,0,0)`.
//!
//! # Deviations from the original server
//! - Timed-out waits leave the queue. (The original kept a timed-out waiter queued: it
//!   was granted later anyway, answered `(seq,1,1)` a second time and held the lock
//!   until its hold ran out.)
//! - Unlock of a sequence that is still waiting cancels that wait and answers
//!   `(seq,1,0)` (the lock request failed) then `(seq,0,1)` (the request is withdrawn).
//!   The original answered `(seq,0,0)` and left the request queued. The npm client never
//!   sends it: it only unlocks acquired locks.
//! - A lock request reusing the sequence of a live (waiting or held) request of the same
//!   connection is refused with `(seq,1,0)`; the original replaced its bookkeeping and
//!   lost track of the first lock. A name whose escaped form is over 255 bytes is
//!   refused with `(seq,1,0)`.
//! - A frame whose action is neither 0 nor 1 is consumed and ignored (counted in
//!   `errors_total`), as in the original.

use super::names::engine_name;
use super::requests::{RequestMap, Status};
use super::{Ctx, Progress, Wire};
use crate::config::Config;
use crate::engine::{AcquireRequest, Acquired, Engine, Event, EventKind, Mode};

/// Size of a request header.
pub const HEADER: usize = 14;
/// Size of a reply.
pub const REPLY: usize = 6;
/// Longest name a frame can carry: its length is one byte. (The same number as the
/// engine's limit [`super::native::MAX_NAME`], but the engine limit applies to the
/// escaped name, which may be longer.)
pub const MAX_NAME: usize = u8::MAX as usize;
/// The largest request: a header and the longest name. A session never buffers more.
pub const MAX_FRAME: usize = HEADER + MAX_NAME;
/// Action byte of a lock request.
pub const ACTION_LOCK: u8 = 1;
/// Action byte of an unlock request.
pub const ACTION_UNLOCK: u8 = 0;

/// One decoded request frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The client's sequence number.
    pub seq: u32,
    /// How long to wait, ms.
    pub wait: u32,
    /// How long to hold, ms.
    pub hold: u32,
    /// [`ACTION_LOCK`], [`ACTION_UNLOCK`] or anything else (ignored).
    pub action: u8,
    /// The lock name as sent (empty for unlock).
    pub name: &'a [u8],
}

/// Decodes the first frame of `input`: the frame and its size, or `None` until a
/// whole frame is buffered.
pub fn parse(input: &[u8]) -> Option<(Frame<'_>, usize)> {
    let len = usize::from(*input.first()?);
    let size = HEADER + len;
    if input.len() < size {
        return None;
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([input[i], input[i + 1], input[i + 2], input[i + 3]]);
    let frame = Frame {
        seq: u32_at(1),
        wait: u32_at(5),
        hold: u32_at(9),
        action: input[13],
        name: &input[HEADER..size],
    };
    Some((frame, size))
}

/// Encodes a request frame (for clients and tests). `name` must be at most
/// [`MAX_NAME`] bytes.
pub fn encode_request(out: &mut Vec<u8>, frame: &Frame) {
    assert!(
        frame.name.len() <= MAX_NAME,
        "locker names are at most {MAX_NAME} bytes"
    );
    out.push(frame.name.len() as u8);
    out.extend_from_slice(&frame.seq.to_le_bytes());
    out.extend_from_slice(&frame.wait.to_le_bytes());
    out.extend_from_slice(&frame.hold.to_le_bytes());
    out.push(frame.action);
    out.extend_from_slice(frame.name);
}

/// Appends a reply `(seq, action, result)`.
pub fn encode_reply(out: &mut Vec<u8>, seq: u32, action: u8, ok: bool) {
    let s = seq.to_le_bytes();
    let reply: [u8; REPLY] = [s[0], s[1], s[2], s[3], action, u8::from(ok)];
    out.extend_from_slice(&reply);
}

/// The sequence number of an engine tag made by this codec (its 4 bytes, LE).
fn seq_of(tag: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(tag.try_into().ok()?))
}

/// Per-connection state: the live lock requests by sequence number. A hold that ends
/// without the client asking (expiry, a forced release) is simply forgotten.
#[derive(Debug)]
pub struct Session {
    live: RequestMap<u32>,
}

impl Session {
    /// A session for a new connection.
    pub fn new(_cfg: &Config) -> Self {
        Session {
            live: RequestMap::new(seq_of, 0),
        }
    }

    /// Executes one request frame.
    fn execute(&mut self, frame: Frame, cx: &mut Ctx) {
        match frame.action {
            ACTION_LOCK => self.lock(&frame, cx),
            ACTION_UNLOCK => self.unlock(frame.seq, cx),
            other => {
                log::debug!(
                    "locker {}: action {other} ignored",
                    super::Peer::of(cx.engine, cx.client)
                );
                cx.stats.errors_total += 1;
            }
        }
    }

    fn lock(&mut self, frame: &Frame, cx: &mut Ctx) {
        let seq = frame.seq;
        let in_use = self.live.status(&seq, cx.engine, cx.client).is_some();
        let Some(name) = engine_name(b"", frame.name).filter(|_| !in_use) else {
            log::debug!(
                "locker {}: lock {seq} refused (name too long or sequence in use)",
                super::Peer::of(cx.engine, cx.client)
            );
            cx.stats.errors_total += 1;
            encode_reply(cx.out, seq, ACTION_LOCK, false);
            return;
        };
        let req = AcquireRequest {
            name: name.as_bytes(),
            mode: Mode::Exclusive,
            wait: Some(frame.wait),
            hold: Some(frame.hold),
            queue: None,
        };
        let status = match cx
            .engine
            .acquire(cx.client, &seq.to_le_bytes(), &req, cx.now)
        {
            Acquired::Granted { token, .. } => {
                encode_reply(cx.out, seq, ACTION_LOCK, true);
                Status::Held { token }
            }
            Acquired::Queued => Status::Waiting,
            Acquired::Timeout | Acquired::QueueFull | Acquired::Limit | Acquired::Full => {
                encode_reply(cx.out, seq, ACTION_LOCK, false);
                return;
            }
        };
        self.live
            .insert(seq, name.as_bytes(), status, cx.engine, cx.client);
    }

    fn unlock(&mut self, seq: u32, cx: &mut Ctx) {
        let ok = match self.live.take(&seq) {
            Some((name, Status::Held { token })) => cx
                .engine
                .release(cx.client, &name, Some(token), cx.now)
                .is_ok(),
            Some((_, Status::Waiting)) => {
                cx.engine
                    .cancel(cx.client, &seq.to_le_bytes(), cx.now, |_| {});
                encode_reply(cx.out, seq, ACTION_LOCK, false);
                true
            }
            Some((_, Status::Gone)) | None => false,
        };
        encode_reply(cx.out, seq, ACTION_UNLOCK, ok);
    }
}

impl Wire for Session {
    /// Decodes and handles at most one request.
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        let Some((frame, size)) = parse(input) else {
            return Progress::Incomplete;
        };
        self.execute(frame, cx);
        Progress::Consumed(size)
    }

    /// Writes an engine event: grants and timeouts are answered, expiries are silent.
    fn encode_event(&mut self, event: &Event, _engine: &Engine, out: &mut Vec<u8>) {
        let Some(seq) = seq_of(&event.tag) else {
            debug_assert!(false, "locker tag of {} bytes", event.tag.len());
            return;
        };
        match event.kind {
            EventKind::Granted { token, .. } => {
                self.live.granted(&seq, token);
                encode_reply(out, seq, ACTION_LOCK, true);
            }
            EventKind::Timeout => {
                self.live.timed_out(&seq);
                encode_reply(out, seq, ACTION_LOCK, false);
            }
            EventKind::Expired { token } => self.live.expired(&seq, token),
        }
    }

    /// The connection is closing: the engine releases its claims right after.
    fn on_close(&mut self, _cx: &mut Ctx) {
        self.live.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_needs_a_whole_frame() {
        let mut buf = Vec::new();
        let frame = Frame {
            seq: 0x0403_0201,
            wait: 500,
            hold: 70000,
            action: ACTION_LOCK,
            name: b"five",
        };
        encode_request(&mut buf, &frame);
        assert_eq!(buf.len(), HEADER + 4);
        assert_eq!(&buf[..6], &[4, 1, 2, 3, 4, 0xf4]);
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), None, "cut at {cut}");
        }
        buf.extend_from_slice(&[9, 9]);
        assert_eq!(parse(&buf), Some((frame, HEADER + 4)));
    }

    #[test]
    fn the_longest_frame() {
        let name = [b'n'; MAX_NAME];
        let frame = Frame {
            seq: 1,
            wait: 0,
            hold: 0,
            action: ACTION_LOCK,
            name: &name,
        };
        let mut buf = Vec::new();
        encode_request(&mut buf, &frame);
        assert_eq!(buf.len(), MAX_FRAME);
        assert_eq!(parse(&buf[..MAX_FRAME - 1]), None);
        assert_eq!(parse(&buf), Some((frame, MAX_FRAME)));
    }

    #[test]
    fn reply_layout() {
        let mut out = Vec::new();
        encode_reply(&mut out, 0x0102_0304, ACTION_UNLOCK, true);
        assert_eq!(out, [4, 3, 2, 1, 0, 1]);
        assert_eq!(out.len(), REPLY);
    }
}
