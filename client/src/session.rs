//! The state of one connection without I/O: pending requests by id, the bytes to send,
//! and what each reply line does. The async driver (`client`) owns one per connection
//! behind a mutex, feeds it the lines it reads, and writes out what it queues.
//!
//! # Invariants
//! - Every request id is used once per connection ([`IdAllocator`]), so a reply line
//!   belongs to at most one entry; lines for unknown ids (a finished request's late
//!   event) are ignored.
//! - An abandoned acquire (its future dropped before it returned) never leaves a hold
//!   behind: while it waits, a `CANCEL` is queued; if the grant comes anyway (it
//!   crossed the `CANCEL` on the wire), an `UNLOCK <name> <token>` is queued at once.
//! - An entry of a granted acquire lives until its guard releases, detaches or drops,
//!   so `EXPIRED` reaches the guard.
//! - After [`Session::close`], every waiting request is finished with
//!   `ConnectionLost` (or the server's connection-level error), every hold is marked
//!   lost, nothing more is queued, and every new request fails at once.
//! - A hold's lease record ([`Session::confirm_lease`]) only moves to the deadline of a
//!   request sent later than the one it records, so a late reply to an older `EXTEND`
//!   never stretches it. A hold whose lease ran out unconfirmed
//!   ([`Lost::LeaseUnconfirmed`]) may still exist on the server: dropping its guard
//!   still sends `UNLOCK <name> <token>`.

use crate::error::{Error, Result};
use crate::proto::{parse_id, parse_line, Assembler, Frame, IdAllocator, Reply, Request};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Taken off every lease deadline the client vouches for: the server counts a hold's
/// time in whole milliseconds from when it read the request (so it may expire up to
/// 1 ms before `send time + hold`), and a client timer fires a little late.
pub const LEASE_MARGIN: Duration = Duration::from_millis(5);

/// Why a guard's hold is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Its `hold` ran out and the server took the lock back (`EXPIRED <token>`).
    Expired(u64),
    /// A `RESET` on the connection released it.
    Reset,
    /// The connection closed or failed; the server releases a closed connection's holds.
    ConnectionLost,
    /// The guard released (or dropped, or detached) the hold itself.
    Released,
    /// A kept-alive lease ran out on the client's clock: no `EXTEND` sent in the last
    /// `hold` was confirmed (the server or the network is gone, and no `EXPIRED` or
    /// close could reach the client). The server may already have freed the lock and
    /// granted it to someone else.
    LeaseUnconfirmed,
}

impl Lost {
    /// True when the server is known to have let the hold go (it expired, a `RESET`
    /// or a closed connection released it): nothing is left to release.
    pub fn released_on_server(self) -> bool {
        matches!(self, Lost::Expired(_) | Lost::Reset | Lost::ConnectionLost)
    }
}

/// What a hold's lease is known to be: the deadline the client can vouch for, and the
/// send time of the request that confirmed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// When the confirming request (the grant's `LOCK`/`SHARE`, or an `EXTEND`) was
    /// queued: the server read it later, so its deadline is later than this plus the
    /// hold.
    pub sent: Instant,
    /// The moment until which the hold is known to be held: `sent + hold`, less
    /// [`LEASE_MARGIN`].
    pub until: Instant,
}

impl Lease {
    /// The lease confirmed by a request queued at `sent` with a hold of `hold`.
    pub fn new(sent: Instant, hold: Duration) -> Lease {
        Lease {
            sent,
            until: sent + hold.saturating_sub(LEASE_MARGIN),
        }
    }
}

enum State {
    /// Sent (or queued), reply not complete.
    Waiting { asm: Assembler, discard: bool },
    /// Reply complete, not yet taken by the caller.
    Done(Result<Reply>),
    /// A grant owned by a guard.
    Held,
}

struct Entry {
    state: State,
    /// For acquires: the lock name (to release a grant nobody will take).
    name: Option<String>,
    waker: Option<Waker>,
    lost: Option<Lost>,
    lost_wakers: Vec<Waker>,
    /// For holds with a deadline: what the client knows of it.
    lease: Option<Lease>,
}

/// The connection-level error the server sent with id `*` (e.g. `limit`).
struct Fatal {
    code: String,
    text: String,
}

/// Hashes the request ids that key [`Session`]'s entries: one multiplication by an odd
/// constant. The ids are this session's own sequential numbers (nothing a peer can
/// choose), so no defence against flooding is needed, and the low bits that pick a
/// bucket stay distinct for consecutive ids.
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

/// 2^64 / golden ratio, odd.
const ID_HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used for `u64` keys; correct for anything else.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(ID_HASH_MUL);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(ID_HASH_MUL);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One connection's protocol state.
#[derive(Default)]
pub struct Session {
    ids: IdAllocator,
    out: Vec<u8>,
    entries: HashMap<u64, Entry, BuildHasherDefault<IdHasher>>,
    closed: bool,
    fatal: Option<Fatal>,
}

fn add_waker(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

impl Session {
    /// A fresh session.
    pub fn new() -> Session {
        Session::default()
    }

    /// True once [`Session::close`] ran.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Queues `req` (validated by the caller) and returns its id.
    pub fn submit(&mut self, req: Request) -> Result<u64> {
        self.submit_inner(req, false, None)
    }

    /// Queues `req` with `waker` already registered for its reply: a submit and the
    /// first [`Session::poll_reply`] in one step.
    pub fn submit_waiting(&mut self, req: Request, waker: &Waker) -> Result<u64> {
        self.submit_inner(req, false, Some(waker.clone()))
    }

    /// Queues a request whose reply nobody waits for (an `UNLOCK` of a hold nobody
    /// will release, a `CANCEL`); its reply is dropped when it comes.
    pub fn submit_detached(&mut self, req: Request) {
        let _ = self.submit_inner(req, true, None);
    }

    fn submit_inner(&mut self, req: Request, discard: bool, waker: Option<Waker>) -> Result<u64> {
        if self.closed {
            return Err(self.lost_error());
        }
        let id = self.ids.next_id();
        req.encode_with_id(id, &mut self.out);
        let asm = Assembler::new(&req);
        let name = match req {
            Request::Acquire(a) => Some(a.name),
            _ => None,
        };
        self.entries.insert(
            id,
            Entry {
                state: State::Waiting { asm, discard },
                name,
                waker,
                lost: None,
                lost_wakers: Vec::new(),
                lease: None,
            },
        );
        Ok(id)
    }

    /// True when no bytes are queued (the writer has taken everything).
    pub fn out_is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Moves the queued bytes into `buf` (which must be empty); true if there were any.
    pub fn take_out(&mut self, buf: &mut Vec<u8>) -> bool {
        std::mem::swap(&mut self.out, buf);
        !buf.is_empty()
    }

    /// Polls request `id`'s reply. A grant is handed out once and its entry kept (as
    /// held) for its guard; any other reply removes the entry.
    pub fn poll_reply(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<Result<Reply>> {
        self.poll_reply_inner(id, cx, None)
    }

    /// [`Session::poll_reply`] for an acquire whose caller keeps the lock name: with
    /// the grant, the name moves from the entry to `name` (see
    /// [`Session::take_name`]).
    pub fn poll_grant(
        &mut self,
        id: u64,
        cx: &mut Context<'_>,
        name: &mut Option<String>,
    ) -> Poll<Result<Reply>> {
        self.poll_reply_inner(id, cx, Some(name))
    }

    fn poll_reply_inner(
        &mut self,
        id: u64,
        cx: &mut Context<'_>,
        name: Option<&mut Option<String>>,
    ) -> Poll<Result<Reply>> {
        let Some(e) = self.entries.get_mut(&id) else {
            return Poll::Ready(Err(Error::ConnectionLost));
        };
        match &mut e.state {
            State::Waiting { .. } => {
                match &e.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => e.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Held => Poll::Ready(Err(Error::Protocol("reply taken twice".into()))),
            State::Done(_) => {
                if matches!(e.state, State::Done(Ok(Reply::Granted(_)))) {
                    let State::Done(r) = std::mem::replace(&mut e.state, State::Held) else {
                        unreachable!()
                    };
                    e.waker = None;
                    if let Some(name) = name {
                        *name = e.name.take();
                    }
                    return Poll::Ready(r);
                }
                match self.entries.remove(&id) {
                    Some(Entry {
                        state: State::Done(r),
                        ..
                    }) => Poll::Ready(r),
                    _ => unreachable!(),
                }
            }
        }
    }

    /// The caller of `id` stopped waiting before taking its reply. A waiting acquire
    /// is cancelled; a grant nobody took is released; anything else is forgotten.
    pub fn abandon(&mut self, id: u64) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        match &mut e.state {
            State::Waiting { discard, .. } => {
                *discard = true;
                e.waker = None;
                if e.name.is_some() {
                    self.submit_detached(Request::Cancel { id: id.to_string() });
                }
            }
            State::Done(_) => {
                if let Some(Entry {
                    state: State::Done(Ok(Reply::Granted(g))),
                    name: Some(name),
                    lost,
                    ..
                }) = self.entries.remove(&id)
                {
                    if lost.is_none() {
                        self.submit_detached(Request::Unlock {
                            name,
                            token: Some(g.token),
                        });
                    }
                }
            }
            State::Held => {}
        }
    }

    /// Moves the lock name out of the entry of acquire `id` (for its guard, once the
    /// grant is taken: the entry then no longer needs it, see
    /// [`Session::release_detached`]).
    pub fn take_name(&mut self, id: u64) -> Option<String> {
        self.entries.get_mut(&id).and_then(|e| e.name.take())
    }

    /// A guard dropped its hold on `name`: forget the entry and queue
    /// `UNLOCK <name> <token>` unless the hold is already gone.
    pub fn release_detached(&mut self, id: u64, name: String, token: u64) {
        if let Some(e) = self.entries.remove(&id) {
            e.lost_wakers.into_iter().for_each(Waker::wake);
            if !e.lost.is_some_and(Lost::released_on_server) {
                self.submit_detached(Request::Unlock {
                    name,
                    token: Some(token),
                });
            }
        }
    }

    /// Forgets entry `id` without sending anything (a released or detached guard).
    pub fn forget(&mut self, id: u64) {
        if let Some(e) = self.entries.remove(&id) {
            // Pending `lost()` futures of a released guard complete (with `Released`).
            e.lost_wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Why hold `id` is gone, if it is (an id with no entry was released by its guard,
    /// or went with the connection).
    pub fn lost(&self, id: u64) -> Option<Lost> {
        match self.entries.get(&id) {
            Some(e) => e.lost,
            None if self.closed => Some(Lost::ConnectionLost),
            None => Some(Lost::Released),
        }
    }

    /// Records that a request queued at `lease.sent` confirmed hold `id` until
    /// `lease.until`, unless a request sent later already confirmed it.
    pub fn confirm_lease(&mut self, id: u64, lease: Lease) {
        if let Some(e) = self.entries.get_mut(&id) {
            if e.lease.is_none_or(|l| l.sent <= lease.sent) {
                e.lease = Some(lease);
            }
        }
    }

    /// What is known of hold `id`'s lease (`None`: no deadline, or no such hold).
    pub fn lease(&self, id: u64) -> Option<Lease> {
        self.entries.get(&id).and_then(|e| e.lease)
    }

    /// For a kept-alive hold: the moment its lease runs out, if it is still held at
    /// `now`. A lease that ran out by `now` marks the hold [`Lost::LeaseUnconfirmed`]
    /// (its `lost()` wakers go to `wake`); a lost or released hold gives `None`.
    pub fn check_lease(&mut self, id: u64, now: Instant, wake: &mut Vec<Waker>) -> Option<Instant> {
        let e = self.entries.get_mut(&id)?;
        if e.lost.is_some() {
            return None;
        }
        let until = e.lease?.until;
        if now < until {
            return Some(until);
        }
        e.lost = Some(Lost::LeaseUnconfirmed);
        wake.append(&mut e.lost_wakers);
        None
    }

    /// Marks hold `id` lost for `why` (unless it already is); its `lost()` wakers go to
    /// `wake`.
    pub fn mark_lost(&mut self, id: u64, why: Lost, wake: &mut Vec<Waker>) {
        if let Some(e) = self.entries.get_mut(&id) {
            if e.lost.is_none() {
                e.lost = Some(why);
                wake.append(&mut e.lost_wakers);
            }
        }
    }

    /// Polls for hold `id` being lost.
    pub fn poll_lost(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<Lost> {
        if let Some(l) = self.lost(id) {
            return Poll::Ready(l);
        }
        if let Some(e) = self.entries.get_mut(&id) {
            add_waker(&mut e.lost_wakers, cx.waker());
        }
        Poll::Pending
    }

    /// Handles a block of whole reply lines, each ending in `\n` (as
    /// [`crate::proto::LineBuffer::complete_lines`] returns them), like [`Session::on_line`]
    /// for each in turn, stopping at the first error. The block's text is checked
    /// once, not line by line.
    pub fn on_lines(&mut self, block: &[u8], wake: &mut Vec<Waker>) -> Result<()> {
        match std::str::from_utf8(block) {
            Ok(text) => {
                for line in text.split_terminator('\n') {
                    self.on_text_line(line.strip_suffix('\r').unwrap_or(line), wake)?;
                }
            }
            Err(_) if block.is_empty() => {}
            Err(_) => {
                let body = block.strip_suffix(b"\n").unwrap_or(block);
                for line in body.split(|&b| b == b'\n') {
                    self.on_line(line.strip_suffix(b"\r").unwrap_or(line), wake)?;
                }
            }
        }
        Ok(())
    }

    /// Handles one reply line; wakers to wake (after unlocking) go to `wake`. An error
    /// means the server broke the protocol: close the connection.
    pub fn on_line(&mut self, line: &[u8], wake: &mut Vec<Waker>) -> Result<()> {
        // Replies are ASCII; a peer sending anything else still gets a clear error.
        let text = match std::str::from_utf8(line) {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        self.on_text_line(&text, wake)
    }

    fn on_text_line(&mut self, text: &str, wake: &mut Vec<Waker>) -> Result<()> {
        let (id, frame) = parse_line(text)?;
        if id == "*" {
            if let Frame::Err { code, text } = frame {
                // A connection-level error (e.g. `limit`); the server closes next.
                self.fatal = Some(Fatal {
                    code: code.to_string(),
                    text: text.to_string(),
                });
            }
            return Ok(());
        }
        let Some(n) = parse_id(id) else {
            return Ok(());
        };
        let Some(e) = self.entries.get_mut(&n) else {
            return Ok(());
        };
        if let Frame::Expired(token) = frame {
            let granted = match &e.state {
                State::Held => true,
                State::Done(Ok(Reply::Granted(g))) => g.token == token,
                _ => false,
            };
            if granted && e.lost.is_none() {
                e.lost = Some(Lost::Expired(token));
                wake.append(&mut e.lost_wakers);
            }
            return Ok(());
        }
        let State::Waiting { asm, discard } = &mut e.state else {
            return Ok(());
        };
        let Some(result) = asm.push(frame) else {
            return Ok(());
        };
        let is_reset = matches!(result, Ok(Reply::Reset { .. }));
        if *discard {
            let name = e.name.take();
            self.entries.remove(&n);
            if let (Ok(Reply::Granted(g)), Some(name)) = (result, name) {
                // The grant crossed our CANCEL: give it back.
                self.submit_detached(Request::Unlock {
                    name,
                    token: Some(g.token),
                });
            }
        } else {
            e.state = State::Done(result);
            if let Some(w) = e.waker.take() {
                wake.push(w);
            }
        }
        if is_reset {
            // RESET released every hold of this connection.
            for e in self.entries.values_mut() {
                let held = matches!(e.state, State::Held | State::Done(Ok(Reply::Granted(_))));
                if held && e.lost.is_none() {
                    e.lost = Some(Lost::Reset);
                    wake.append(&mut e.lost_wakers);
                }
            }
        }
        Ok(())
    }

    /// The connection is gone: finish everything (see the module invariants).
    pub fn close(&mut self, wake: &mut Vec<Waker>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.out = Vec::new();
        let mut finished = Vec::new();
        for (&id, e) in self.entries.iter_mut() {
            match &e.state {
                State::Waiting { discard: true, .. } => finished.push(id),
                State::Waiting { .. } => {
                    e.state = State::Done(Err(match &self.fatal {
                        Some(f) => Error::from_code(&f.code, &f.text),
                        None => Error::ConnectionLost,
                    }));
                    if let Some(w) = e.waker.take() {
                        wake.push(w);
                    }
                }
                State::Done(Ok(Reply::Granted(_))) | State::Held => {
                    if e.lost.is_none() {
                        e.lost = Some(Lost::ConnectionLost);
                    }
                    wake.append(&mut e.lost_wakers);
                }
                State::Done(_) => {}
            }
        }
        for id in finished {
            self.entries.remove(&id);
        }
    }

    fn lost_error(&self) -> Error {
        match &self.fatal {
            Some(f) => Error::from_code(&f.code, &f.text),
            None => Error::ConnectionLost,
        }
    }

    /// Number of entries (pending requests plus holds of live guards).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Grant;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag;
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {}
    }

    fn cx_waker() -> Waker {
        Waker::from(Arc::new(Flag))
    }

    fn out(s: &mut Session) -> String {
        let mut b = Vec::new();
        s.take_out(&mut b);
        String::from_utf8(b).unwrap()
    }

    fn feed(s: &mut Session, line: &str) {
        let mut w = Vec::new();
        s.on_line(line.as_bytes(), &mut w).unwrap();
    }

    fn poll(s: &mut Session, id: u64) -> Poll<Result<Reply>> {
        let w = cx_waker();
        s.poll_reply(id, &mut Context::from_waker(&w))
    }

    #[test]
    fn routes_by_id_in_completion_order() {
        let mut s = Session::new();
        let a = s.submit(Request::lock("x").into()).unwrap();
        let b = s.submit(Request::Ping).unwrap();
        assert_eq!(out(&mut s), "1 LOCK x\n2 PING\n");
        assert!(poll(&mut s, a).is_pending());
        feed(&mut s, "2 PONG");
        assert!(matches!(poll(&mut s, b), Poll::Ready(Ok(Reply::Pong))));
        feed(&mut s, "1 OK 77");
        assert!(matches!(
            poll(&mut s, a),
            Poll::Ready(Ok(Reply::Granted(Grant { token: 77, .. })))
        ));
        // The grant's entry stays for its guard, and gets EXPIRED.
        assert_eq!(s.lost(a), None);
        feed(&mut s, "1 EXPIRED 77");
        assert_eq!(s.lost(a), Some(Lost::Expired(77)));
        s.release_detached(a, "x".into(), 77);
        assert_eq!(out(&mut s), "", "an expired hold is not unlocked again");
        assert_eq!(s.len(), 0);
        assert_eq!(s.lost(a), Some(Lost::Released));
    }

    #[test]
    fn submit_waiting_wakes_and_poll_grant_hands_over_the_name() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(Default::default()));
        let waker = Waker::from(count.clone());
        let mut s = Session::new();
        let a = s
            .submit_waiting(Request::lock("jobs:1").into(), &waker)
            .unwrap();
        assert_eq!(out(&mut s), "1 LOCK jobs:1\n");
        let mut wake = Vec::new();
        s.on_line(b"1 OK 42", &mut wake).unwrap();
        assert_eq!(
            wake.len(),
            1,
            "the waker given at submit is woken by the reply"
        );
        wake.into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        let mut name = None;
        let r = s.poll_grant(a, &mut Context::from_waker(&waker), &mut name);
        assert!(matches!(
            r,
            Poll::Ready(Ok(Reply::Granted(Grant { token: 42, .. })))
        ));
        assert_eq!(name.as_deref(), Some("jobs:1"));
        assert_eq!(s.take_name(a), None, "the entry no longer has it");
        // The hold is still tracked (EXPIRED reaches it) and released with the
        // caller's name.
        assert_eq!(s.lost(a), None);
        s.release_detached(a, name.unwrap(), 42);
        assert_eq!(out(&mut s), "2 UNLOCK jobs:1 42\n");
        assert_eq!(s.len(), 1, "only the UNLOCK's own entry");
        feed(&mut s, "2 OK");
        assert_eq!(s.len(), 0, "a detached request's reply is dropped");
    }

    #[test]
    fn abandoned_wait_is_cancelled() {
        let mut s = Session::new();
        let a = s.submit(Request::lock("x").into()).unwrap();
        out(&mut s);
        s.abandon(a);
        assert_eq!(out(&mut s), "2 CANCEL 1\n");
        feed(&mut s, "1 CANCELLED");
        feed(&mut s, "2 OK 1");
        assert_eq!(out(&mut s), "");
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn grant_that_crossed_the_cancel_is_released() {
        let mut s = Session::new();
        let a = s.submit(Request::lock("x").into()).unwrap();
        out(&mut s);
        s.abandon(a);
        assert_eq!(out(&mut s), "2 CANCEL 1\n");
        // The server granted before it read the CANCEL.
        feed(&mut s, "1 OK 99");
        assert_eq!(out(&mut s), "3 UNLOCK x 99\n");
        feed(&mut s, "2 ERR not_waiting no pending wait with that id");
        feed(&mut s, "3 OK");
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn grant_received_but_not_taken_is_released() {
        let mut s = Session::new();
        let a = s.submit(Request::share("q").into()).unwrap();
        out(&mut s);
        feed(&mut s, "1 OK 5 1");
        s.abandon(a);
        assert_eq!(out(&mut s), "2 UNLOCK q 5\n");
    }

    #[test]
    fn close_fails_pending_and_loses_holds() {
        let mut s = Session::new();
        let a = s.submit(Request::lock("x").into()).unwrap();
        let b = s.submit(Request::lock("y").into()).unwrap();
        feed(&mut s, "1 OK 1");
        assert!(poll(&mut s, a).is_ready());
        let mut w = Vec::new();
        s.close(&mut w);
        assert_eq!(s.lost(a), Some(Lost::ConnectionLost));
        assert!(matches!(
            poll(&mut s, b),
            Poll::Ready(Err(Error::ConnectionLost))
        ));
        assert!(matches!(
            s.submit(Request::Ping),
            Err(Error::ConnectionLost)
        ));
        assert_eq!(out(&mut s), "");
    }

    #[test]
    fn connection_level_error_is_reported_to_pending() {
        let mut s = Session::new();
        let a = s.submit(Request::Ping).unwrap();
        feed(&mut s, "* ERR limit too many connections");
        s.close(&mut Vec::new());
        assert!(matches!(poll(&mut s, a), Poll::Ready(Err(Error::Limit(_)))));
    }

    #[test]
    fn reset_loses_every_hold() {
        let mut s = Session::new();
        let a = s.submit(Request::lock("x").into()).unwrap();
        feed(&mut s, "1 OK 1");
        assert!(poll(&mut s, a).is_ready());
        let r = s.submit(Request::Reset).unwrap();
        feed(&mut s, "2 OK 1 0");
        assert!(matches!(
            poll(&mut s, r),
            Poll::Ready(Ok(Reply::Reset { .. }))
        ));
        assert_eq!(s.lost(a), Some(Lost::Reset));
    }

    #[test]
    fn a_block_of_lines_is_routed_line_by_line() {
        let mut s = Session::new();
        let a = s.submit(Request::Ping).unwrap();
        let b = s.submit(Request::lock("x").into()).unwrap();
        let c = s.submit(Request::Ping).unwrap();
        let mut w = Vec::new();
        s.on_lines(b"1 PONG\r\n2 OK 7\n", &mut w).unwrap();
        assert!(matches!(poll(&mut s, a), Poll::Ready(Ok(Reply::Pong))));
        assert!(matches!(
            poll(&mut s, b),
            Poll::Ready(Ok(Reply::Granted(Grant { token: 7, .. })))
        ));
        assert!(poll(&mut s, c).is_pending());
        s.on_lines(b"", &mut w).unwrap();
        // Not UTF-8: still handled line by line, and the bad line is an error after
        // the good ones before it were routed.
        assert!(s.on_lines(b"3 PONG\n\xff\n", &mut w).is_err());
        assert!(matches!(poll(&mut s, c), Poll::Ready(Ok(Reply::Pong))));
        // An empty line is a protocol error, as on its own.
        assert!(s.on_lines(b"\n", &mut w).is_err());
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut s = Session::new();
        assert!(s.on_line(b"nonsense", &mut Vec::new()).is_err());
        // Unknown ids are ignored.
        s.on_line(b"42 OK", &mut Vec::new()).unwrap();
    }

    #[test]
    fn a_lease_moves_only_to_a_later_confirmation_and_runs_out_on_time() {
        let mut s = Session::new();
        let a = s.submit(Request::lock("x").into()).unwrap();
        feed(&mut s, "1 OK 5");
        assert!(poll(&mut s, a).is_ready());
        let t0 = Instant::now();
        let hold = Duration::from_millis(100);
        s.confirm_lease(a, Lease::new(t0, hold));
        assert_eq!(s.lease(a).unwrap().until, t0 + hold - LEASE_MARGIN);
        // A late reply to an EXTEND sent before the one already recorded changes nothing.
        let later = Lease::new(t0 + Duration::from_millis(50), hold);
        s.confirm_lease(a, later);
        s.confirm_lease(a, Lease::new(t0 + Duration::from_millis(10), hold));
        assert_eq!(s.lease(a), Some(later));
        let mut wake = Vec::new();
        assert_eq!(
            s.check_lease(a, later.until - Duration::from_millis(1), &mut wake),
            Some(later.until)
        );
        assert_eq!(s.lost(a), None);
        // At the deadline it is lost, once.
        let w = cx_waker();
        assert!(s.poll_lost(a, &mut Context::from_waker(&w)).is_pending());
        assert_eq!(s.check_lease(a, later.until, &mut wake), None);
        assert_eq!(wake.len(), 1, "the lost() waker is woken");
        assert_eq!(s.lost(a), Some(Lost::LeaseUnconfirmed));
        // EXPIRED or a close afterwards do not change why.
        feed(&mut s, "1 EXPIRED 5");
        assert_eq!(s.lost(a), Some(Lost::LeaseUnconfirmed));
        // The server may still have it: dropping the guard still unlocks it.
        out(&mut s);
        s.release_detached(a, "x".into(), 5);
        assert_eq!(out(&mut s), "2 UNLOCK x 5\n");
    }

    #[test]
    fn holds_without_a_lease_or_already_lost_are_not_watched() {
        let mut s = Session::new();
        let a = s.submit(Request::lock("x").into()).unwrap();
        feed(&mut s, "1 OK 5");
        assert!(poll(&mut s, a).is_ready());
        let mut wake = Vec::new();
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(s.check_lease(a, far, &mut wake), None);
        assert_eq!(s.lost(a), None, "no deadline, nothing to run out");
        s.confirm_lease(a, Lease::new(Instant::now(), Duration::from_millis(10)));
        s.mark_lost(a, Lost::Expired(5), &mut wake);
        assert_eq!(s.check_lease(a, far, &mut wake), None);
        assert_eq!(s.lost(a), Some(Lost::Expired(5)));
        // A hold the server let go is not unlocked again; a hold shorter than the
        // margin is vouched for no time at all.
        out(&mut s);
        s.release_detached(a, "x".into(), 5);
        assert_eq!(out(&mut s), "");
        let t = Instant::now();
        assert_eq!(Lease::new(t, Duration::from_millis(1)).until, t);
    }
}
