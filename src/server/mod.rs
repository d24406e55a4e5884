//! The poll loop: one thread, one `mio::Poll`, every connection in one `Slab`.
//!
//! Each iteration: wait for readiness (the timeout is the next deadline of the engine's
//! or the server's timer wheel), accept until `WouldBlock`, read each readable
//! connection until its socket is drained (see `Drain`) or its fairness budget is used
//! and decode every complete request, firing due deadlines (the engine's, then the
//! server's own: auth deadlines, the auth-failure delay, lingering closes) between two
//! connections' turns whenever one is due (see `timers`), flush every connection with
//! pending output once, reap the connections that closed, and give the
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
//! hold no input memory (and the next read completes it with a few bytes, then goes on
//! from the shared buffer). A connection's turn also ends once `OUT_TURN` bytes of
//! output wait for the flush, so neither buffer grows with a pipelined burst: their
//! memory, below glibc's mmap threshold, would stay with the process afterwards.
//!
//! **Layout.** This module holds the loop itself (`Server::run`, readiness, shutdown,
//! maintenance) and the connection's state; each step of an iteration is a module of
//! its own: `accept`, `read` (including lingering reads), `dispatch` (decoding, refusal
//! warnings, event routing), `timers` (`ConnTimer`s and the poll timeout), `flush`
//! and `reap` (closing and freeing).
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
//!   `READ_BUDGET` bytes and `TURN_MS` of work, and ends after a read that leaves
//!   `OUT_TURN` bytes of output waiting for the flush (the clock checked every
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
//! - After every connection's turn (and at the end of the iteration) deadlines due at
//!   the latest clock reading are fired, a bounded deadlines' turn at a time (see
//!   `timers`): a due deadline waits for at most the turn in progress, not for every
//!   ready connection's. The check is one comparison per wheel and reads no clock.
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

/// A codec's [`Ctx`] for one request (or the close) of connection `$conn` at `$now`:
/// the engine, the totals and the secret of server `$server`, the connection's output.
/// A macro, not a function, so that the borrows stay those of single fields.
macro_rules! ctx {
    ($server:ident, $conn:ident, $now:expr) => {
        Ctx {
            engine: &mut $server.engine,
            client: $conn.client,
            out: &mut $conn.out,
            now: $now,
            stats: &mut $server.stats,
            secret: $server.secret.as_deref(),
        }
    };
}

mod accept;
mod dispatch;
mod flush;
mod read;
mod reap;
mod timers;

use timers::ConnTimer;

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
const OUT_KEEP: usize = 16 * 1024;
/// A connection with this much output waiting for the iteration's flush ends its turn
/// before reading more (it resumes in the next iteration, after the flush): a pipelined
/// burst keeps at most this plus the replies to one read in memory per connection,
/// instead of the replies to a whole turn's [`READ_BUDGET`].
const OUT_TURN: usize = 16 * 1024;
/// An emptied partial-input buffer bigger than this is given back to the allocator.
const PARTIAL_KEEP: usize = 1024;
/// Held-back input is completed with at most this many of the new bytes (up to their
/// last line end) and decoded; the rest is decoded straight from the shared buffer, so
/// that a pipelined burst does not copy every read into `partial`.
const PARTIAL_STEP: usize = PARTIAL_KEEP / 2;
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
                    // A connection's readiness (the common case, tested first).
                    Token(k) if k < ALARM && !event.is_error() && !event.is_write_closed() => {
                        self.on_ready(k, event)
                    }
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
                    // A connection with an error or a closed write side: a half-closed
                    // peer that is gone for good (reset) is closed.
                    Token(k) => {
                        self.close_if(k, Phase::HalfClosed);
                        self.on_ready(k, event);
                    }
                }
                self.between_turns();
            }
            self.retry_accept(now);
            for k in resume.drain(..) {
                if let Some(conn) = self.conns.get_mut(k) {
                    conn.resuming = false;
                }
                self.read(k, Drain::ToWouldBlock);
                self.between_turns();
            }
            if self.resume.is_empty() {
                self.resume = resume; // keep the capacity
            }
            // Deadlines left (the clock was read right after `poll`, so an alarm's
            // deadline is due by now).
            self.between_turns();
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

#[cfg(test)]
mod tests;
