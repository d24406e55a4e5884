//! The poll loop: one thread, one `mio::Poll`, every connection in one `Slab`.
//!
//! Each iteration: wait for readiness (the timeout is the next deadline of the engine's
//! or the server's timer wheel), accept until `WouldBlock`, read each readable
//! connection until its socket is drained (see `Drain`) or its fairness budget is used
//! and decode every complete request, fire due deadlines (the engine's, then the
//! server's own: auth deadlines, the auth-failure delay, lingering closes), flush every
//! connection with pending output once, reap the connections that closed, and give the
//! engine [`WORK_BUDGET`] steps of deferred work (grants cut short, claims of closed
//! connections), so that no single event stalls everyone else.
//!
//! **Closing.** A connection the peer half-closed (EOF) is answered to the end: a native
//! one stays until its waits with a deadline have ended (granted or timed out) and its
//! output (a listing included) is flushed, then closes; a foreign one closes once its
//! output is flushed. One the server closes (`QUIT`, an error that closes, a wrong
//! `AUTH`, the auth deadline, `--output-limit`) has its write side shut down after its
//! output, and its unread input is read and dropped for at most [`LINGER_MS`] and
//! [`LINGER_BYTES`] until the peer closes too, so that the last reply is not destroyed
//! by the reset a close with unread input sends. Its claims are released from the
//! moment it is reaped, whatever the lingering.
//!
//! **Ids.** The engine knows a connection by a client id from `ids`, not by its slab
//! key: a closed connection's id stays taken until the engine has removed every claim
//! of it (that may take several iterations), while its slab slot is free at once.
//!
//! Replies never go straight to a socket: a codec appends them to its connection's
//! output buffer and the connection joins the `dirty` list; engine events for other
//! connections are routed to theirs after every request. A connection is never freed
//! mid-dispatch: it is marked and handled in `Server::reap` after the batch, which is
//! also where the engine starts releasing its holds and dropping its waits (most often
//! all of them in the same iteration, see **Closing**).
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
//! - `Phase::Closed` iff the key is in `closing`; `reap` handles exactly those, at the
//!   end of the iteration: a live connection is handed to the engine to forget (then it
//!   lingers or is freed); a lingering one is freed.
//! - `ids[c] == Some(k)` iff connection `k` is live (not yet reaped) with client id `c`;
//!   `ids[c] == None` while the engine still removes closed client `c`'s claims.
//! - A connection has at most one server timer (`conn.timer`), cancelled when it is
//!   freed, so a timer never fires for a reused slab key.

use crate::alarm::Alarm;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{ClientId, Engine, Event, Refusal};
use crate::fence::{wall_clock_ns, Fence};
use crate::proto::listing::{output_mark, Batch};
use crate::proto::native::{secret_from_file, MAX_SECRET};
use crate::proto::{Codec, Ctx, Peer, Progress, Protocol, Totals};
use crate::shrink;
use crate::signals::{Signal, SignalPipe};
use crate::wheel::{TimerId, Wheel};
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
/// Steps of deferred engine work per iteration (about a millisecond): grants cut short
/// by the table's batch limit, and claims of closed connections.
pub const WORK_BUDGET: u32 = 16 * 1024;
/// How long a wrong `AUTH` is answered late (the connection is neither read nor
/// written meanwhile; everyone else is served): at most ten guesses per second and
/// connection.
pub const AUTH_FAIL_DELAY_MS: u64 = 100;
/// How long a connection the server closed keeps reading (and dropping) its input
/// after shutting down its write side, waiting for the peer to close.
pub const LINGER_MS: u64 = 500;
/// Input a lingering connection reads and drops before it is closed anyway.
pub const LINGER_BYTES: usize = 256 * 1024;

/// What a server timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnTimer {
    /// `--auth-timeout` ran out.
    AuthDeadline,
    /// The auth-failure delay is over: send the reply and close.
    AuthDelay,
    /// Lingering is over: close.
    Linger,
}

/// A connection's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading and answering.
    Open,
    /// The peer shut down its write side: close once its waits have ended and the
    /// output is flushed.
    HalfClosed,
    /// Reading stopped; close once the output is flushed.
    Draining,
    /// A wrong `AUTH`: neither read nor written until the delay is over, then Draining.
    Delayed,
    /// Reaped: the write side is shut down and input is read and dropped until the
    /// peer closes, [`LINGER_BYTES`] or [`LINGER_MS`].
    Lingering,
    /// To be reaped at the end of this iteration.
    Closed,
}

struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    /// The engine's id for this connection.
    client: ClientId,
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
    /// The server closes it (not the peer): linger after the close.
    linger: bool,
    /// Reaped: the engine forgets it; only the socket is left (lingering).
    ended: bool,
    /// Input dropped while lingering.
    lingered: usize,
    /// Its one server timer.
    timer: Option<TimerId>,
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
    /// Client id -> connection key (`None`: closed, claims still being removed).
    ids: Slab<Option<usize>>,
    freed: Vec<ClientId>,
    timers: Wheel<(usize, ConnTimer)>,
    fired: Vec<(u64, (usize, ConnTimer))>,
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
        let engine = Engine::new(fence, clock.now_us(), cfg.max_pending)
            .with_ticks_per_ms(US_PER_MS)
            .with_max_claims(cfg.max_claims);
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
        let timers = Wheel::new(clock.now_us());
        Ok(Server {
            poll,
            listeners,
            cfg,
            clock,
            conns: Slab::new(),
            engine,
            ids: Slab::new(),
            freed: Vec::new(),
            timers,
            fired: Vec::new(),
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
                    // A half-closed peer that is gone for good (reset).
                    Token(k) if event.is_error() || event.is_write_closed() => {
                        self.close_if(k, Phase::HalfClosed);
                        self.on_ready(k, event);
                    }
                    Token(k) => self.on_ready(k, event),
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
            if self.timers.next_wake().is_some() {
                self.fire_timers(self.clock.now_us());
            }
            self.route_events();
            self.flush();
            if !self.closing.is_empty() {
                self.reap(self.clock.now_us());
            }
            // Deferred work, a budget per iteration: grants cut short, closed clients.
            if self.engine.has_work() {
                self.engine.work(self.clock.now_us(), WORK_BUDGET);
                self.route_events();
                self.engine.take_freed(&mut self.freed);
                for id in self.freed.drain(..) {
                    self.ids.remove(id as usize);
                }
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

    /// Handles a readiness event of connection `k`.
    fn on_ready(&mut self, k: usize, event: &mio::event::Event) {
        match k {
            // Its resumed turn below reads it (to WouldBlock) in this iteration.
            k if self.conns.get(k).is_some_and(|c| c.resuming) => {
                if event.is_writable() {
                    self.mark_dirty(k);
                }
            }
            k => {
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
            if let Some(conn) = self.conns.get_mut(k) {
                // Nobody is left to read a last reply: no lingering.
                conn.linger = false;
            }
            self.close(k);
        }
        let now = self.clock.now_us();
        self.reap(now);
        // Lingering connections, reaped once already, are freed by a second pass.
        self.reap(now);
        while self.engine.has_work() {
            self.engine.work(now, WORK_BUDGET);
        }
        let (connections, _, holds, waits) = self.engine.gauges();
        info!("stopped: {connections} connections, {holds} holds and {waits} waits left");
    }

    /// Zero while work is pending; else until the next deadline (or forever), which the
    /// alarm, when there is one, marks exactly: then the poll itself waits forever.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.dirty.is_empty()
            || !self.resume.is_empty()
            || self.engine.has_events()
            || self.engine.has_work()
        {
            return Some(Duration::ZERO);
        }
        let wake = [
            self.engine.next_wake(),
            self.timers.next_wake(),
            self.accept_after,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX)
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

    /// Fires the server's own due timers.
    fn fire_timers(&mut self, now: u64) {
        if self.timers.next_wake().is_none_or(|t| t > now) {
            return;
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.timers.advance(now, &mut fired);
        for (_, (k, timer)) in fired.drain(..) {
            let Some(conn) = self.conns.get_mut(k) else {
                continue;
            };
            conn.timer = None;
            match timer {
                ConnTimer::AuthDeadline => {
                    let open = matches!(conn.phase, Phase::Open | Phase::HalfClosed);
                    if !open || !conn.codec.awaiting_auth() {
                        continue;
                    }
                    self.stats.auth_timeouts_total += 1;
                    if let Some(left_out) = self.stats.refusal_log.auth.admit(now / US_PER_MS) {
                        warn!(
                            "{}: not authenticated within {} ms (--auth-timeout), \
                             closing{left_out}",
                            conn.addr, self.cfg.auth_timeout_ms
                        );
                    }
                    conn.codec.auth_timed_out(&mut conn.out);
                    conn.phase = Phase::Draining;
                    conn.linger = true;
                    self.mark_dirty(k);
                }
                ConnTimer::AuthDelay => {
                    if conn.phase == Phase::Delayed {
                        conn.phase = Phase::Draining;
                        self.mark_dirty(k);
                    }
                }
                ConnTimer::Linger => self.close(k),
            }
        }
        self.fired = fired;
    }

    /// Starts connection `k`'s timer (replacing any) for `timer` at `at`.
    fn set_timer(&mut self, k: usize, at: u64, timer: ConnTimer) {
        if let Some(conn) = self.conns.get_mut(k) {
            if let Some(t) = conn.timer.take() {
                self.timers.cancel(t);
            }
            conn.timer = Some(self.timers.insert(at, (k, timer)));
        }
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
            let client = self.ids.insert(Some(k)) as ClientId;
            let codec = Codec::new(protocol, &self.cfg);
            let awaiting_auth = codec.awaiting_auth();
            entry.insert(Conn {
                stream,
                addr,
                client,
                protocol,
                codec,
                partial: Vec::new(),
                out: Vec::new(),
                phase: Phase::Open,
                dirty: false,
                writable: false,
                paused: false,
                resuming: false,
                linger: false,
                ended: false,
                lingered: 0,
                timer: None,
            });
            self.engine.connect_in(client, addr, protocol as u8);
            if awaiting_auth {
                let at = now + self.cfg.auth_timeout_ms * US_PER_MS;
                self.set_timer(k, at, ConnTimer::AuthDeadline);
            }
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
        if self
            .conns
            .get(k)
            .is_some_and(|c| c.phase == Phase::Lingering)
        {
            self.linger_read(k);
            return;
        }
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
                    // Peer closed its side: answer what it sent (native: waits with a
                    // deadline included), then close (see `flush`).
                    conn.phase = Phase::HalfClosed;
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

    /// Reads and drops a lingering connection's input; closes it at EOF, on an error or
    /// past [`LINGER_BYTES`].
    fn linger_read(&mut self, k: usize) {
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        loop {
            match conn.stream.read(&mut self.rbuf) {
                Ok(n) if n > 0 && conn.lingered + n <= LINGER_BYTES => conn.lingered += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EOF, an error, or too much: done.
                _ => {
                    self.close(k);
                    return;
                }
            }
        }
    }

    /// Closes `k` if it is in `phase`.
    fn close_if(&mut self, k: usize, phase: Phase) {
        if self.conns.get(k).is_some_and(|c| c.phase == phase) {
            self.close(k);
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
            let live = matches!(
                conn.phase,
                Phase::Open | Phase::HalfClosed | Phase::Draining
            );
            if live && conn.codec.listing() {
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
                    client: conn.client,
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
                client: conn.client,
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
                    conn.linger = true;
                }
                Progress::CloseDelayed(n) => {
                    pos += n;
                    conn.phase = Phase::Delayed;
                    conn.linger = true;
                }
            }
            self.stats.requests_total[conn.protocol as usize] += 1;
            unchecked += 1;
            if unchecked >= TURN_CHECK_REQUESTS || conn.out.len() >= out_before + TURN_CHECK_BYTES {
                unchecked = 0;
                now = self.clock.now_us();
            }
            let client = conn.client;
            if conn.phase == Phase::Delayed {
                self.set_timer(
                    k,
                    now + AUTH_FAIL_DELAY_MS * US_PER_MS,
                    ConnTimer::AuthDelay,
                );
            } else if !conn.out.is_empty() || conn.phase != Phase::Open {
                self.mark_dirty(k);
            }
            self.warn_refusals(client, refusals, now);
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

    /// Logs (rate-limited, at warn) the refusals one request of client `client`
    /// caused, given the counters `(limit refusals, auth failures)` from before it.
    fn warn_refusals(&mut self, client: ClientId, before: (u64, u64), now: u64) {
        let limits = self.engine.counters().limit_refusals_total;
        if limits != before.0 {
            if let Some(left_out) = self.stats.refusal_log.limits.admit(now / US_PER_MS) {
                let peer = Peer::of(&self.engine, client);
                match self.engine.last_refusal() {
                    Refusal::Pending => warn!(
                        "{peer}: lock request refused, {} holds and waits on this \
                         connection (--max-pending){left_out}",
                        self.cfg.max_pending
                    ),
                    Refusal::Claims => warn!(
                        "{peer}: lock request refused, {} holds and waits on the server \
                         (--max-claims){left_out}",
                        self.cfg.max_claims
                    ),
                    Refusal::Detached => warn!(
                        "{peer}: lock request refused, detached holds at their limit \
                         ({} holds or {} bytes of values){left_out}",
                        crate::engine::MAX_DETACHED,
                        crate::engine::MAX_ATTACHMENT_BYTES
                    ),
                }
            }
        }
        if self.stats.auth_failures_total != before.1 {
            if let Some(left_out) = self.stats.refusal_log.auth.admit(now / US_PER_MS) {
                warn!(
                    "{}: wrong AUTH secret, closing{left_out}",
                    Peer::of(&self.engine, client)
                );
            }
        }
    }

    /// Hands every queued engine event to its connection's codec.
    fn route_events(&mut self) {
        self.engine.take_events(&mut self.events);
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            let Some(&Some(k)) = self.ids.get(event.client as usize) else {
                continue; // a closed connection's: nobody to tell
            };
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
            if !matches!(
                conn.phase,
                Phase::Open | Phase::HalfClosed | Phase::Draining
            ) {
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
                    Peer::of(&self.engine, conn.client),
                    conn.out.len() + conn.codec.held_len()
                );
                conn.linger = true;
                self.close(k);
            } else if conn.phase == Phase::Draining && conn.out.is_empty() && !conn.codec.listing()
            {
                self.close(k);
            } else if conn.phase == Phase::HalfClosed
                && conn.out.is_empty()
                && !conn.codec.listing()
                && (!conn.codec.answers_after_half_close()
                    || self.engine.timed_waits(conn.client) == 0)
            {
                // Every wait with a deadline has been answered: the rest of the claims
                // go with the connection.
                self.close(k);
            } else if conn.paused && conn.out.len() < self.cfg.output_high_water / 2 {
                // Drained enough: read again (edge-triggered, so nobody else will say so).
                conn.paused = false;
                self.push_resume(k);
            }
        }
        self.dirty = dirty;
    }

    /// Handles closed connections: a live one is handed to the engine to forget (its
    /// waits are never granted from now on; its claims are removed by the engine's
    /// deferred work, most often in this same iteration) and then lingers or is freed;
    /// a lingering one is freed.
    fn reap(&mut self, now: u64) {
        if self.closing.is_empty() {
            return;
        }
        let mut closing = std::mem::take(&mut self.closing);
        for k in closing.drain(..) {
            let Some(conn) = self.conns.get_mut(k) else {
                continue;
            };
            if conn.ended {
                self.free(k);
                continue;
            }
            conn.ended = true;
            let mut cx = Ctx {
                engine: &mut self.engine,
                client: conn.client,
                out: &mut conn.out,
                now,
                stats: &mut self.stats,
                secret: self.secret.as_deref(),
            };
            conn.codec.on_close(&mut cx);
            let peer = log::log_enabled!(log::Level::Debug)
                .then(|| Peer::of(&self.engine, conn.client).to_string());
            self.engine.begin_disconnect(conn.client);
            self.ids[conn.client as usize] = None;
            self.stats.open_connections[conn.protocol as usize] -= 1;
            if let Some(peer) = peer {
                let (holds, waits) = self.engine.pending(conn.client);
                debug!(
                    "close {} {peer}: releasing {holds} holds, dropping {waits} waits",
                    conn.protocol.as_str()
                );
            }
            conn.out = Vec::new();
            conn.partial = Vec::new();
            if conn.linger && conn.stream.shutdown(std::net::Shutdown::Write).is_ok() {
                conn.phase = Phase::Lingering;
                self.set_timer(k, now + LINGER_MS * US_PER_MS, ConnTimer::Linger);
                // Input may be waiting already (no new readiness event would say so).
                self.linger_read(k);
            } else {
                self.free(k);
            }
        }
        // Lingering connections closed just now are freed next iteration.
        let later = std::mem::replace(&mut self.closing, closing);
        self.closing.extend(later);
        self.route_events();
    }

    /// Drops a reaped connection's socket and slot.
    fn free(&mut self, k: usize) {
        let mut conn = self.conns.remove(k);
        if let Some(t) = conn.timer.take() {
            self.timers.cancel(t);
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
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
