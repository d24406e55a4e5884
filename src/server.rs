//! The poll loop: one thread, one `mio::Poll`, every connection in one `Slab`.
//!
//! Each iteration: wait for readiness (the timeout is the timer wheel's next deadline),
//! accept until `WouldBlock`, read each readable connection until its socket is drained
//! (see `Drain`) or its fairness budget is used and decode every complete request, fire
//! due deadlines, flush every connection with pending output once, then reap the
//! connections that closed.
//!
//! Replies never go straight to a socket: a codec appends them to its connection's
//! output buffer and the connection joins the `dirty` list; engine events for other
//! connections are routed to theirs after every request. A connection is never freed
//! mid-dispatch: it is marked and freed in `Server::reap` after the batch, which is
//! also where the engine releases its holds and cancels its waits (same iteration).
//!
//! Input is read into one shared buffer and decoded in place; only a trailing partial
//! request is copied into the connection's own `partial` buffer, so idle connections
//! hold no input memory.
//!
//! # Invariants
//! - `conn.dirty` iff the connection's key is in `dirty` (at most once); `dirty` is
//!   emptied by every `flush`.
//! - `conn.writable` iff the connection is registered for WRITABLE, which is iff its
//!   output was not fully written by the last flush.
//! - `conn.paused` means reading stopped at the output high-water mark; `flush` clears it
//!   and puts the key on `resume` once the output is below half the mark (edge-triggered
//!   readiness would not report the bytes already waiting).
//! - A key is on `resume` when its connection has unread or undecoded input, or a
//!   listing to continue, that no readiness event will report again: its turn ran out
//!   or it was just un-paused. `resume` is taken at the start of an iteration, so each
//!   connection gets at most one turn per iteration: a key is on it at most once
//!   (`conn.resuming`), and a connection taken from it is not also read for a readiness
//!   event in that iteration (its resumed turn reads to `WouldBlock`). A turn is at most
//!   `READ_BUDGET` bytes and `TURN_MS` of work (the clock checked every
//!   `TURN_CHECK_REQUESTS` requests, and after any request that wrote `TURN_CHECK_BYTES`
//!   of output).
//! - While a connection's codec has a listing in progress, `dispatch` writes it a batch
//!   at a time ([`crate::proto::listing`]) before decoding anything else, and pauses the
//!   connection (`paused`, as above) when its output reaches the listing mark, so the
//!   listing advances only as the client reads.
//! - The clock is read once per read batch, right after the `read` that returned the
//!   bytes, so every request in them counts its deadlines from a moment at or after its
//!   bytes arrived (never earlier): deadlines never fire early. Input held back from an
//!   earlier iteration gets the clock of the moment it is decoded.
//! - The server's time is microseconds ([`Clock::now_us`]), and so is the engine's (built
//!   [`Engine::with_ticks_per_ms`]`(US_PER_MS)`): every `now` here is in µs, and
//!   millisecond settings are multiplied by `US_PER_MS` before they meet it.
//! - When a deadline is pending and nothing else is, the loop sleeps in `poll` with no
//!   timeout and the [`Alarm`] (a timerfd in the poll set) set at or before that deadline,
//!   so it wakes within the kernel's timer slack of it, not up to a millisecond later
//!   (`epoll_wait`'s resolution). Without a timerfd it falls back to the poll timeout.
//! - `Phase::Closed` iff the key is in `closing`; `reap` frees exactly those, at the end
//!   of the iteration, and only then does the engine release their claims.

use crate::alarm::Alarm;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{ClientId, Engine, Event};
use crate::fence::{wall_clock_ns, Fence};
use crate::proto::listing::{output_mark, Batch};
use crate::proto::native::{secret_from_file, MAX_SECRET};
use crate::proto::{Codec, Ctx, Peer, Progress, Protocol, Totals};
use crate::shrink;
use crate::signals::{Signal, SignalPipe};
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Listener `i` has token `LISTENER_BASE - i`; connections use their slab key.
const LISTENER_BASE: usize = usize::MAX;
/// At most one listener per protocol.
const MAX_LISTENERS: usize = 8;
/// Signal pipe `i` has token `SIGNAL_BASE - i`, below the listeners' tokens.
const SIGNAL_BASE: usize = LISTENER_BASE - MAX_LISTENERS;
/// At most this many signal pipes.
const MAX_SIGNALS: usize = 4;
/// The alarm's token, below the signal pipes' tokens.
const ALARM: usize = SIGNAL_BASE - MAX_SIGNALS;
/// Microseconds per millisecond: the engine's ticks per millisecond.
const US_PER_MS: u64 = 1_000;
/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 1024;
/// Size of the shared read buffer (one `read` call at most).
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read from one connection per turn before others get theirs.
const READ_BUDGET: usize = 256 * 1024;
/// Milliseconds of request handling one connection gets per turn (a burst of costly
/// requests such as `LIST` on a big table must not stall every other connection).
const TURN_MS: u64 = 2;
/// Requests handled on one read batch's clock reading before the turn's time is
/// checked again (the clock is not read per request).
const TURN_CHECK_REQUESTS: u32 = 16;
/// A request that wrote at least this much output (a big `LIST`, `CLIENTS`) has the
/// turn's time checked at once.
const TURN_CHECK_BYTES: usize = 4096;
/// An emptied output buffer bigger than this is given back to the allocator.
const OUT_KEEP: usize = 64 * 1024;
/// An emptied partial-input buffer bigger than this is given back to the allocator.
const PARTIAL_KEEP: usize = 1024;
/// Period of the maintenance step that gives memory back after a burst
/// ([`crate::shrink`]); the loop wakes for it when otherwise idle.
const MAINTAIN_MS: u64 = 1_000;
/// Pause before retrying `accept` after it failed (e.g. out of file descriptors).
const ACCEPT_BACKOFF_MS: u64 = 100;

/// A connection's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading and answering.
    Open,
    /// Reading stopped; close once the output is flushed.
    Draining,
    /// To be reaped at the end of this iteration.
    Closed,
}

struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    protocol: Protocol,
    codec: Codec,
    /// Unconsumed input (a partial request, or requests held back by backpressure).
    partial: Vec<u8>,
    /// Replies not yet written.
    out: Vec<u8>,
    phase: Phase,
    /// In the server's `dirty` list.
    dirty: bool,
    /// Registered for WRITABLE (only while output is pending after a short write).
    writable: bool,
    /// Reading stopped because the output passed the high-water mark.
    paused: bool,
    /// On the `resume` list (at most once), or taken from it for this iteration.
    resuming: bool,
}

/// How a connection's turn at the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    /// Everything buffered was handled (or is incomplete).
    Done,
    /// Its time ran out; the rest waits for the next iteration.
    Yielded,
}

/// How far `read` must go before it may stop.
///
/// mio is edge-triggered: readiness is reported again only when something new happens.
/// On Linux (epoll) every segment that arrives after a read wakes the socket anew, so a
/// read that returns less than the buffer has emptied the receive queue and the next
/// read would only say `WouldBlock`: one syscall saved per request. That does not hold
/// for an EOF or error that came with the current event (nothing new will follow it),
/// nor for work resumed without an event, so those read to `WouldBlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drain {
    /// Stop after a read shorter than the buffer.
    UntilShortRead,
    /// Read until `WouldBlock` or EOF.
    ToWouldBlock,
}

/// Where `dispatch` reads from.
#[derive(Clone, Copy)]
enum Source {
    /// The first `n` bytes of the shared read buffer.
    Shared(usize),
    /// The connection's own `partial` buffer.
    Partial,
}

struct Listener {
    socket: TcpListener,
    protocol: Protocol,
    addr: SocketAddr,
}

/// A bound, not yet running, lockbox server.
pub struct Server {
    poll: Poll,
    listeners: Vec<Listener>,
    cfg: Config,
    clock: Clock,
    conns: Slab<Conn>,
    engine: Engine,
    stats: Totals,
    rbuf: Box<[u8]>,
    events: Vec<Event>,
    dirty: Vec<usize>,
    closing: Vec<usize>,
    resume: Vec<usize>,
    accept_after: Option<u64>,
    secret: Option<Box<[u8]>>,
    /// SIGINT and SIGTERM pipes, once [`Server::stop_on_signals`] installed them.
    signals: Vec<SignalPipe>,
    /// The exact wake-up for deadlines (`None`: no timerfd, the poll timeout serves).
    alarm: Option<Alarm>,
    /// When the next maintenance step is due (µs).
    maintain_at: u64,
}

impl Server {
    /// Binds every listener; nothing is served until [`Server::run`].
    pub fn bind(cfg: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        for (i, (protocol, addr)) in Protocol::listeners(&cfg).into_iter().enumerate() {
            debug_assert!(i < MAX_LISTENERS, "{i} listeners");
            let mut socket = listen(addr, cfg.backlog).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{} listener on {addr}: {e}", protocol.as_str()),
                )
            })?;
            let addr = socket.local_addr()?;
            poll.registry()
                .register(&mut socket, Token(LISTENER_BASE - i), Interest::READABLE)?;
            listeners.push(Listener {
                socket,
                protocol,
                addr,
            });
        }
        let fence = match &cfg.state_file {
            Some(path) => {
                Fence::with_state_file(path, wall_clock_ns()).map_err(io::Error::other)?
            }
            None => Fence::from_wall_clock().map_err(io::Error::other)?,
        };
        let secret = match &cfg.auth_file {
            Some(path) => Some(read_secret(path)?),
            None => None,
        };
        let foreign = listeners
            .iter()
            .any(|l| !matches!(l.protocol, Protocol::Native | Protocol::Metrics));
        if secret.is_some() && foreign {
            warn!(
                "--auth-file protects the native protocol only: the foreign protocols have no AUTH"
            );
        }
        let clock = Clock::start();
        let engine =
            Engine::new(fence, clock.now_us(), cfg.max_pending).with_ticks_per_ms(US_PER_MS);
        let alarm = match Alarm::new().and_then(|a| {
            a.register(poll.registry(), Token(ALARM))?;
            Ok(a)
        }) {
            Ok(a) => Some(a),
            Err(e) => {
                warn!("no timerfd ({e}): deadlines may fire up to 1 ms late");
                None
            }
        };
        Ok(Server {
            poll,
            listeners,
            cfg,
            clock,
            conns: Slab::new(),
            engine,
            stats: Totals::default(),
            rbuf: vec![0; READ_CHUNK].into_boxed_slice(),
            events: Vec::new(),
            dirty: Vec::new(),
            closing: Vec::new(),
            resume: Vec::new(),
            accept_after: None,
            secret,
            signals: Vec::new(),
            alarm,
            maintain_at: MAINTAIN_MS * US_PER_MS,
        })
    }

    /// Makes SIGINT and SIGTERM stop the server: [`Server::run`] then closes every
    /// connection (releasing holds, cancelling waits), logs what it released and
    /// returns `Ok`. For the binary; a server embedded in another program leaves the
    /// process's signals alone unless it calls this.
    pub fn stop_on_signals(&mut self) -> io::Result<()> {
        for (i, signal) in Signal::ALL.into_iter().enumerate() {
            debug_assert!(i < MAX_SIGNALS);
            let mut pipe = SignalPipe::install(signal)?;
            self.poll.registry().register(
                &mut pipe.stream,
                Token(SIGNAL_BASE - i),
                Interest::READABLE,
            )?;
            self.signals.push(pipe);
        }
        Ok(())
    }

    /// Every listener: its protocol and the address it is bound to, native first.
    pub fn listeners(&self) -> impl Iterator<Item = (Protocol, SocketAddr)> + '_ {
        self.listeners.iter().map(|l| (l.protocol, l.addr))
    }

    /// The address the native listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].addr
    }

    /// The address the listener for `protocol` is bound to, if configured.
    pub fn listener_addr(&self, protocol: Protocol) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.protocol == protocol)
            .map(|l| l.addr)
    }

    /// Serves until a fatal poll error, or (after [`Server::stop_on_signals`]) until
    /// SIGINT or SIGTERM, when it closes every connection and returns `Ok`.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = self.clock.now_us();
            // Turns that ran out in the previous iteration continue after this batch.
            let mut resume = std::mem::take(&mut self.resume);
            for event in events.iter() {
                match event.token() {
                    // New connections: accept until WouldBlock.
                    Token(t) if t > LISTENER_BASE - MAX_LISTENERS => {
                        self.accept(LISTENER_BASE - t, now)
                    }
                    Token(ALARM) => {
                        if let Some(alarm) = &mut self.alarm {
                            alarm.clear();
                        }
                    }
                    Token(t) if t > SIGNAL_BASE - MAX_SIGNALS => {
                        let pipe = &mut self.signals[SIGNAL_BASE - t];
                        if pipe.take() {
                            let signal = pipe.signal;
                            self.shut_down(signal);
                            return Ok(());
                        }
                    }
                    // Its resumed turn below reads it (to WouldBlock) in this iteration.
                    Token(k) if self.conns.get(k).is_some_and(|c| c.resuming) => {
                        if event.is_writable() {
                            self.mark_dirty(k);
                        }
                    }
                    Token(k) => {
                        // Input, EOF or error: read and decode. When the peer closed or
                        // failed, read to the end; else a short read drains the socket.
                        if event.is_read_closed() || event.is_error() {
                            self.read(k, Drain::ToWouldBlock);
                        } else if event.is_readable() {
                            self.read(k, Drain::UntilShortRead);
                        }
                        // Room in the socket buffer again: flush below.
                        if event.is_writable() {
                            self.mark_dirty(k);
                        }
                    }
                }
            }
            self.retry_accept(now);
            for k in resume.drain(..) {
                if let Some(conn) = self.conns.get_mut(k) {
                    conn.resuming = false;
                }
                self.read(k, Drain::ToWouldBlock);
            }
            if self.resume.is_empty() {
                self.resume = resume; // keep the capacity
            }
            // Deadlines: timeouts, expiries, and the grants they cause.
            if self.engine.next_wake().is_some() {
                self.engine.advance(self.clock.now_us());
            }
            self.route_events();
            self.flush();
            if !self.closing.is_empty() {
                self.reap(self.clock.now_us());
            }
            if now >= self.maintain_at {
                self.maintain(now);
            }
        }
    }

    /// The periodic maintenance step: gives back memory that a burst left unused, in
    /// the engine and in the server's own connection slab and scratch lists.
    fn maintain(&mut self, now: u64) {
        self.maintain_at = now + MAINTAIN_MS * US_PER_MS;
        let mut shrank = self.engine.maintain();
        shrank |= shrink::slab(&mut self.conns);
        shrank |= shrink::vec(&mut self.events);
        shrank |= shrink::vec(&mut self.dirty);
        shrank |= shrink::vec(&mut self.closing);
        shrank |= shrink::vec(&mut self.resume);
        if shrank {
            debug!("maintenance: gave back memory left over from a burst");
        }
    }

    /// Stops serving: flushes what is already written, then closes every connection
    /// (their holds are released and waits cancelled as they close), logging what that
    /// releases.
    fn shut_down(&mut self, signal: Signal) {
        let (connections, _, holds, waits) = self.engine.gauges();
        info!(
            "{} received: shutting down; closing {connections} connections, releasing \
             {holds} holds and cancelling {waits} waits",
            signal.name()
        );
        self.flush();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(k);
        }
        self.reap(self.clock.now_us());
        let (connections, _, holds, waits) = self.engine.gauges();
        info!("stopped: {connections} connections, {holds} holds and {waits} waits left");
    }

    /// Zero while work is pending; else until the next deadline (or forever), which the
    /// alarm, when there is one, marks exactly: then the poll itself waits forever.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.dirty.is_empty() || !self.resume.is_empty() || self.engine.has_events() {
            return Some(Duration::ZERO);
        }
        let wake = match (self.engine.next_wake(), self.accept_after) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => u64::MAX,
        }
        .min(self.maintain_at);
        let now = self.clock.now_us();
        if wake <= now {
            return Some(Duration::ZERO);
        }
        if let Some(alarm) = &mut self.alarm {
            match alarm.wake_at(&self.clock, wake, now) {
                Ok(()) => return None,
                Err(e) => {
                    warn!("timerfd: {e}; deadlines may fire up to 1 ms late");
                    self.alarm = None;
                }
            }
        }
        Some(self.clock.until_us(wake))
    }

    /// Accepts from listener `i` until WouldBlock.
    fn accept(&mut self, i: usize, now: u64) {
        loop {
            let (mut stream, addr) = match self.listeners[i].socket.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // That one connection died before we took it: take the next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of descriptors or memory: stop accepting for a while, keep serving.
                    warn!("accept failed: {e}; retrying in {ACCEPT_BACKOFF_MS} ms");
                    self.accept_after = Some(now + ACCEPT_BACKOFF_MS * US_PER_MS);
                    return;
                }
            };
            let addr = canonical(addr);
            let protocol = self.listeners[i].protocol;
            if self.conns.len() >= self.cfg.max_connections {
                // Refuse politely and move on; the socket closes when dropped.
                self.stats.refused_connections_total += 1;
                if let Some(left_out) = self.stats.refusal_log.connections.admit(now / US_PER_MS) {
                    warn!(
                        "refused {} connection from {addr}: {} connections open \
                         (--max-connections){left_out}",
                        protocol.as_str(),
                        self.conns.len()
                    );
                }
                if let Some(refusal) = protocol.refusal() {
                    let _ = stream.write(refusal);
                }
                continue;
            }
            let _ = stream.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let k = entry.key();
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut stream, Token(k), Interest::READABLE)
            {
                warn!("cannot register connection from {addr}: {e}");
                continue;
            }
            debug!("open {} connection from {addr}", protocol.as_str());
            self.stats.open_connections[protocol as usize] += 1;
            self.stats.connections_total[protocol as usize] += 1;
            entry.insert(Conn {
                stream,
                addr,
                protocol,
                codec: Codec::new(protocol, &self.cfg),
                partial: Vec::new(),
                out: Vec::new(),
                phase: Phase::Open,
                dirty: false,
                writable: false,
                paused: false,
                resuming: false,
            });
            self.engine.connect_in(k as ClientId, addr, protocol as u8);
        }
    }

    /// Accepts again once an accept backoff has passed.
    fn retry_accept(&mut self, now: u64) {
        if self.accept_after.is_some_and(|t| now >= t) {
            self.accept_after = None;
            for i in 0..self.listeners.len() {
                self.accept(i, now);
            }
        }
    }

    /// Decodes held-back input, then reads until the socket is drained (see [`Drain`]),
    /// EOF or the end of the connection's turn: [`READ_BUDGET`] bytes or [`TURN_MS`] of
    /// work, after which it waits on the `resume` list for the next iteration (fairness).
    fn read(&mut self, k: usize, drain: Drain) {
        // Set by the turn's first clock reading.
        let mut turn_end = None;
        if self
            .conns
            .get(k)
            .is_some_and(|c| !c.partial.is_empty() || c.codec.listing())
        {
            let now = self.clock.now_us();
            let end = *turn_end.insert(now + TURN_MS * US_PER_MS);
            if self.dispatch(k, Source::Partial, now, end) == Turn::Yielded {
                self.push_resume(k);
                return;
            }
        }
        let mut budget = READ_BUDGET;
        loop {
            let Some(conn) = self.conns.get_mut(k) else {
                return;
            };
            if conn.phase != Phase::Open {
                return;
            }
            if conn.paused || conn.out.len() >= self.cfg.output_high_water {
                // Backpressure: stop reading until flush drains the output.
                conn.paused = true;
                return;
            }
            if budget == 0 {
                self.push_resume(k);
                return;
            }
            let turn = match conn.stream.read(&mut self.rbuf) {
                Ok(0) => {
                    // Peer closed its side: answer what it sent, then close.
                    conn.phase = Phase::Draining;
                    self.mark_dirty(k);
                    return;
                }
                Ok(n) => {
                    self.stats.bytes_in += n as u64;
                    budget = budget.saturating_sub(n);
                    // One clock reading for the batch: all of it has arrived by now.
                    let now = self.clock.now_us();
                    let end = *turn_end.get_or_insert(now + TURN_MS * US_PER_MS);
                    let turn = if conn.partial.is_empty() {
                        self.dispatch(k, Source::Shared(n), now, end)
                    } else {
                        conn.partial.extend_from_slice(&self.rbuf[..n]);
                        self.dispatch(k, Source::Partial, now, end)
                    };
                    if turn == Turn::Done && n < self.rbuf.len() && drain == Drain::UntilShortRead {
                        // The kernel had no more: skip the read that would say WouldBlock.
                        return;
                    }
                    turn
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("read from {}: {e}", conn.addr);
                    self.close(k);
                    return;
                }
            };
            if turn == Turn::Yielded {
                self.push_resume(k);
                return;
            }
        }
    }

    /// Continues the connection's listing, if any, then decodes and handles every
    /// complete request in `src`, routing engine events after each one; keeps what is
    /// left in the connection's `partial` buffer.
    ///
    /// `now` is the clock read after the bytes in `src` were read, so no request's
    /// deadlines start before it was read; it is read again whenever the turn's time is
    /// checked. Stops early (`Yielded`) once the clock passes `turn_end`.
    fn dispatch(&mut self, k: usize, src: Source, mut now: u64, turn_end: u64) -> Turn {
        let mut pos = 0;
        let mut turn = Turn::Done;
        let mut unchecked = 0;
        let listing_mark = output_mark(self.cfg.output_high_water, self.cfg.output_limit);
        loop {
            let Some(conn) = self.conns.get_mut(k) else {
                return turn;
            };
            if conn.phase != Phase::Closed && conn.codec.listing() {
                // A listing in progress goes first: later requests wait their turn.
                if conn.out.len() >= listing_mark {
                    // Continue once the client has read (flush resumes it).
                    conn.paused = true;
                    break;
                }
                let now = self.clock.now_us();
                if now >= turn_end {
                    turn = Turn::Yielded;
                    break;
                }
                let mut cx = Ctx {
                    engine: &mut self.engine,
                    client: k as ClientId,
                    out: &mut conn.out,
                    now,
                    stats: &mut self.stats,
                    secret: self.secret.as_deref(),
                };
                conn.codec
                    .proceed(&mut cx, Batch::new(self.cfg.output_limit));
                self.mark_dirty(k);
                continue;
            }
            let input = match src {
                Source::Shared(n) => &self.rbuf[pos..n],
                Source::Partial => &conn.partial[pos..],
            };
            if input.is_empty() || conn.phase != Phase::Open {
                break;
            }
            if conn.out.len() >= self.cfg.output_high_water {
                // Backpressure with requests still buffered: `flush` resumes the
                // connection once its output drains (no readiness event will).
                conn.paused = true;
                break;
            }
            if now >= turn_end {
                turn = Turn::Yielded;
                break;
            }
            let out_before = conn.out.len();
            let mut cx = Ctx {
                engine: &mut self.engine,
                client: k as ClientId,
                out: &mut conn.out,
                now,
                stats: &mut self.stats,
                secret: self.secret.as_deref(),
            };
            let refusals = (
                cx.engine.counters().limit_refusals_total,
                cx.stats.auth_failures_total,
            );
            let progress = conn.codec.decode(input, &mut cx);
            match progress {
                Progress::Consumed(n) => pos += n,
                Progress::Incomplete => break,
                Progress::Close(n) => {
                    pos += n;
                    conn.phase = Phase::Draining;
                }
            }
            self.stats.requests_total[conn.protocol as usize] += 1;
            unchecked += 1;
            if unchecked >= TURN_CHECK_REQUESTS || conn.out.len() >= out_before + TURN_CHECK_BYTES {
                unchecked = 0;
                now = self.clock.now_us();
            }
            if !conn.out.is_empty() || conn.phase != Phase::Open {
                self.mark_dirty(k);
            }
            self.warn_refusals(k, refusals, now);
            if self.engine.has_events() {
                self.route_events();
            }
        }
        let Some(conn) = self.conns.get_mut(k) else {
            return turn;
        };
        match src {
            Source::Shared(n) if conn.phase == Phase::Open => {
                conn.partial.extend_from_slice(&self.rbuf[pos..n])
            }
            Source::Shared(_) => {}
            Source::Partial if conn.phase == Phase::Open => {
                conn.partial.drain(..pos);
                if conn.partial.is_empty() && conn.partial.capacity() > PARTIAL_KEEP {
                    // Idle connections keep no input memory worth counting.
                    conn.partial = Vec::new();
                }
            }
            Source::Partial => conn.partial = Vec::new(),
        }
        turn
    }

    /// Logs (rate-limited, at warn) the refusals one request of connection `k` caused,
    /// given the counters `(limit refusals, auth failures)` from before it.
    fn warn_refusals(&mut self, k: usize, before: (u64, u64), now: u64) {
        let limits = self.engine.counters().limit_refusals_total;
        if limits != before.0 {
            if let Some(left_out) = self.stats.refusal_log.limits.admit(now / US_PER_MS) {
                warn!(
                    "{}: lock request refused, {} holds and waits on this connection \
                     (--max-pending){left_out}",
                    Peer::of(&self.engine, k as ClientId),
                    self.cfg.max_pending
                );
            }
        }
        if self.stats.auth_failures_total != before.1 {
            if let Some(left_out) = self.stats.refusal_log.auth.admit(now / US_PER_MS) {
                warn!(
                    "{}: wrong AUTH secret, closing{left_out}",
                    Peer::of(&self.engine, k as ClientId)
                );
            }
        }
    }

    /// Hands every queued engine event to its connection's codec.
    fn route_events(&mut self) {
        self.engine.take_events(&mut self.events);
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            let k = event.client as usize;
            if let Some(conn) = self.conns.get_mut(k) {
                if conn.phase != Phase::Closed {
                    conn.codec.encode_event(&event, &self.engine, &mut conn.out);
                    self.mark_dirty(k);
                }
            }
        }
        self.events = events;
    }

    /// Puts a connection on the `resume` list, unless it is on it already.
    fn push_resume(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k) {
            if !conn.resuming {
                conn.resuming = true;
                self.resume.push(k);
            }
        }
    }

    fn mark_dirty(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(k);
            }
        }
    }

    /// Marks a connection for reaping at the end of this iteration.
    fn close(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k) {
            if conn.phase != Phase::Closed {
                conn.phase = Phase::Closed;
                self.closing.push(k);
            }
        }
    }

    /// Writes every dirty connection's output once.
    fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for k in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(k) else {
                continue;
            };
            conn.dirty = false;
            if conn.phase == Phase::Closed {
                continue;
            }
            let written = match write_some(&mut conn.stream, &conn.out) {
                Ok(n) => n,
                Err(e) => {
                    debug!("write to {}: {e}", conn.addr);
                    self.close(k);
                    continue;
                }
            };
            self.stats.bytes_out += written as u64;
            conn.out.drain(..written);
            if conn.out.is_empty() && conn.out.capacity() > OUT_KEEP {
                // A burst is over: give the memory back. Only a client that gets more
                // than OUT_KEEP (over 2,000 replies) in one round regrows it, once.
                conn.out = Vec::new();
            }
            let want_writable = !conn.out.is_empty();
            if want_writable != conn.writable {
                let interest = if want_writable {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                if let Err(e) =
                    self.poll
                        .registry()
                        .reregister(&mut conn.stream, Token(k), interest)
                {
                    debug!("reregister {}: {e}", conn.addr);
                    self.close(k);
                    continue;
                }
                conn.writable = want_writable;
            }
            if conn.out.len() + conn.codec.held_len() > self.cfg.output_limit {
                // A hard limit: whatever the client reads, memory stays bounded.
                warn!(
                    "{} does not read its replies ({} bytes pending): disconnecting",
                    Peer::of(&self.engine, k as ClientId),
                    conn.out.len() + conn.codec.held_len()
                );
                self.close(k);
            } else if conn.phase == Phase::Draining && conn.out.is_empty() && !conn.codec.listing()
            {
                self.close(k);
            } else if conn.paused && conn.out.len() < self.cfg.output_high_water / 2 {
                // Drained enough: read again (edge-triggered, so nobody else will say so).
                conn.paused = false;
                self.push_resume(k);
            }
        }
        self.dirty = dirty;
    }

    /// Frees closed connections: their holds are released and waits cancelled now.
    fn reap(&mut self, now: u64) {
        if self.closing.is_empty() {
            return;
        }
        let mut closing = std::mem::take(&mut self.closing);
        for k in closing.drain(..) {
            let mut conn = self.conns.remove(k);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            let mut cx = Ctx {
                engine: &mut self.engine,
                client: k as ClientId,
                out: &mut conn.out,
                now,
                stats: &mut self.stats,
                secret: self.secret.as_deref(),
            };
            conn.codec.on_close(&mut cx);
            let peer = log::log_enabled!(log::Level::Debug)
                .then(|| Peer::of(&self.engine, k as ClientId).to_string());
            let released = self.engine.disconnect(k as ClientId, now);
            self.stats.open_connections[conn.protocol as usize] -= 1;
            if let Some(peer) = peer {
                let protocol = conn.protocol.as_str();
                debug!("close {protocol} {peer}: {released} holds released");
            }
        }
        self.closing = closing;
        self.route_events();
    }
}

/// Binds a non-blocking listener with `backlog` (std and mio always use 128).
fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Reads the AUTH secret: the file's first line, without its line end.
fn read_secret(path: &std::path::Path) -> io::Result<Box<[u8]>> {
    let text = std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read auth file {}: {e}", path.display()),
        )
    })?;
    let Some(secret) = secret_from_file(&text) else {
        let why = format!(
            "auth file {}: the secret must be 1 to {MAX_SECRET} bytes with no spaces or control characters",
            path.display()
        );
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    };
    Ok(secret.into())
}

/// Writes as much of `buf` as the socket takes; `Ok(n)` with n < len on WouldBlock.
fn write_some(stream: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match stream.write(&buf[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// IPv4 peers of an IPv6 listener are shown as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}
