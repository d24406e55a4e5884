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
//!
//! # Layout
//! - `lease`: [`Lost`] (why a hold is gone) and [`Lease`] (what is known of its
//!   deadline).
//! - `entry`: one pending request or hold, and the hasher of the ids that key them.
//! - this file: [`Session`], which queues requests and routes reply lines.

mod entry;
mod lease;
#[cfg(test)]
mod tests;

pub use lease::{Lease, Lost, LEASE_MARGIN};

use self::entry::{Entry, Fatal, IdHasher, State};
use crate::error::{Error, Result};
use crate::proto::{parse_id, parse_line, Assembler, Frame, IdAllocator, Reply, Request};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

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
