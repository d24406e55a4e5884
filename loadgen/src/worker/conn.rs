//! A poll loop's connections: opening them (at most `connect_parallel` at a time),
//! the connection check (`PING` -> `PONG`) that proves the server accepted each one,
//! writing queued requests, reading replies into the protocol's parser, and closing a
//! client's connections when one of them fails.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Token};

use super::{native, redis, Worker, EVENTS, MAX_REPLY, NO_ID};
use crate::ascii::show;
use crate::options::Target;
use crate::verify::Property;

/// Longest wait in one poll while connecting.
const CONNECT_POLL_MAX: Duration = Duration::from_millis(100);
/// Longest answer to the connection check loadgen waits for.
const HELLO_MAX: usize = 4096;
/// errno for "too many open files".
const EMFILE: i32 = 24;

/// Where a connection is in its setup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Setup {
    /// TCP connect in progress.
    Connecting,
    /// Connected, PING sent, waiting for PONG.
    Hello,
    /// Ready for the workload.
    Ready,
    /// `--chaos`: loadgen shut the writing side and waits for the server to close.
    Closing,
}

/// One client's connection to one server.
pub(super) struct ServerConn {
    pub(super) stream: TcpStream,
    /// Client number within the poll loop.
    pub(super) client: u32,
    pub(super) server: u16,
    pub(super) setup: Setup,
    pub(super) dead: bool,
    /// Received bytes not yet parsed (an incomplete reply).
    pub(super) rbuf: Vec<u8>,
    /// Requests not yet written, from `wpos` on.
    pub(super) wbuf: Vec<u8>,
    pub(super) wpos: usize,
    /// Listed in the worker's `dirty`.
    pub(super) dirty: bool,
    /// Largest grant token seen on this connection (`--verify`).
    pub(super) max_token: u64,
    /// Redis: slots in request order.
    pub(super) fifo: VecDeque<u32>,
    /// Requests written on this connection since it was opened (lockbox).
    pub(super) seq: u64,
    /// `seq` of the latest `RESET` written on it, or 0 (`--chaos`).
    pub(super) last_reset_seq: u64,
}

impl Worker {
    /// Connect every connection of this loop, at most `plan.connect_parallel` at a time,
    /// each confirmed by a PING round trip (so the server has accepted it: a burst of
    /// connects never overflows a small listen backlog), and create the slots.
    pub(super) fn connect_all(&mut self) -> Result<(), String> {
        self.create_slots();
        let total = self.nclients * self.nservers();
        let mut ready = 0;
        let mut inflight = 0;
        let mut events = Events::with_capacity(EVENTS);
        while ready < total {
            while self.conns.len() < total && inflight < self.plan.connect_parallel {
                self.open_conn()?;
                inflight += 1;
            }
            let now = Instant::now();
            if self.shared.abort.load(Ordering::Relaxed) {
                return Err("aborted".into());
            }
            if now >= self.plan.connect_deadline {
                let who = self
                    .conns
                    .iter()
                    .find(|c| c.setup != Setup::Ready)
                    .map_or("?", |c| self.plan.servers[c.server as usize].as_str());
                return Err(format!(
                    "{who}: timed out connecting ({ready} of {total} connections of a thread ready)"
                ));
            }
            let to = (self.plan.connect_deadline - now).min(CONNECT_POLL_MAX);
            if let Err(e) = self.poll.poll(&mut events, Some(to)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll: {e}"));
            }
            for ev in events.iter() {
                let ci = ev.token().0;
                if self.conns[ci].setup == Setup::Ready {
                    continue;
                }
                if self.connect_step(ci)? {
                    inflight -= 1;
                    ready += 1;
                } else if self.conns[ci].setup == Setup::Connecting
                    && (ev.is_error() || ev.is_read_closed() || ev.is_write_closed())
                {
                    let server = &self.plan.servers[self.conns[ci].server as usize];
                    return Err(format!("{server}: connection refused or reset"));
                }
            }
        }
        Ok(())
    }

    /// Open connection number `self.conns.len()` (client `idx / ns`, server `idx % ns`).
    fn open_conn(&mut self) -> Result<(), String> {
        let ns = self.nservers();
        let idx = self.conns.len();
        let s = idx % ns;
        let addr = self.plan.addrs[s];
        let mut stream = TcpStream::connect(addr).map_err(|e| {
            let hint = if e.raw_os_error() == Some(EMFILE) {
                " (too many open files: raise `ulimit -n`)"
            } else {
                ""
            };
            format!("{}: {e}{hint}", self.plan.servers[s])
        })?;
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(idx),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("register: {e}"))?;
        self.conns.push(ServerConn {
            stream,
            client: (idx / ns) as u32,
            server: s as u16,
            setup: Setup::Connecting,
            dead: false,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            dirty: false,
            max_token: 0,
            fifo: VecDeque::new(),
            seq: 0,
            last_reset_seq: 0,
        });
        Ok(())
    }

    /// Advance connection `ci` through connect and the PING check; `Ok(true)` once ready.
    pub(super) fn connect_step(&mut self, ci: usize) -> Result<bool, String> {
        let server = self.plan.servers[self.conns[ci].server as usize].clone();
        let target = self.plan.target;
        let c = &mut self.conns[ci];
        if c.setup == Setup::Connecting && !c.connected(&server)? {
            return Ok(false);
        }
        if c.setup == Setup::Connecting {
            let _ = c.stream.set_nodelay(true);
            c.setup = Setup::Hello;
            c.wbuf.extend_from_slice(match target {
                Target::Lockbox => native::HELLO,
                Target::Redis => redis::HELLO,
            });
        }
        if c.setup != Setup::Hello {
            return Ok(c.setup == Setup::Ready);
        }
        let Some(line) = c.hello_exchange(&server)? else {
            return Ok(false);
        };
        let want = match target {
            Target::Lockbox => native::HELLO_REPLY,
            Target::Redis => redis::HELLO_REPLY,
        };
        if line != want {
            return Err(format!(
                "{server}: unexpected answer to the connection check (PING): '{}'",
                show(&line)
            ));
        }
        let used = c.rbuf.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        c.rbuf.drain(..used);
        c.wbuf.clear();
        c.wpos = 0;
        c.setup = Setup::Ready;
        Ok(true)
    }

    /// Write whatever the sockets that have requests queued will take.
    pub(super) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &ci in &dirty {
            self.conns[ci].dirty = false;
            if !self.conns[ci].dead {
                self.flush(ci);
            }
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Write connection `ci`'s queued requests until done or the socket is full.
    pub(super) fn flush(&mut self, ci: usize) {
        if self.conns[ci].setup != Setup::Ready {
            return;
        }
        loop {
            let c = &mut self.conns[ci];
            if c.wpos >= c.wbuf.len() {
                c.wbuf.clear();
                c.wpos = 0;
                return;
            }
            match c.stream.write(&c.wbuf[c.wpos..]) {
                Ok(0) => {
                    self.close_client(ci, "write returned 0".into());
                    return;
                }
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close_client(ci, format!("write: {e}"));
                    return;
                }
            }
        }
    }

    /// Close every connection of the client owning connection `ci` and retire its slots.
    pub(super) fn close_client(&mut self, ci: usize, reason: String) {
        let ns = self.nservers();
        let client = self.conns[ci].client as usize;
        let server = self.plan.servers[self.conns[ci].server as usize].clone();
        for k in 0..ns {
            let c = &mut self.conns[client * ns + k];
            if !c.dead {
                c.dead = true;
                let _ = self.poll.registry().deregister(&mut c.stream);
                let _ = c.stream.shutdown(Shutdown::Both);
            }
        }
        let d = self.plan.pipeline;
        let mut pending = 0;
        for s in client * d..(client + 1) * d {
            let st = self.slots[s].st;
            pending += match self.plan.target {
                Target::Lockbox => {
                    u64::from(self.slots[s].expect != NO_ID)
                        + u64::from(self.slots[s].side != NO_ID)
                }
                Target::Redis => u64::from(st.awaits_reply()),
            };
            if st.has_hold() {
                self.release_hold(s);
            }
            self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
            self.slots[s].expect = NO_ID;
            self.slots[s].side = NO_ID;
            self.retire(s);
        }
        let c = self.first_client + client;
        self.tally.lost_clients += 1;
        self.error(format!(
            "connection of client {c} to {server} closed: {reason} ({pending} requests pending)"
        ));
        if pending > 1 {
            self.tally.errors += pending - 1;
            self.interval.errors += pending - 1;
        }
    }

    /// Read everything connection `ci` has and hand it to the protocol's parser.
    pub(super) fn on_readable(&mut self, ci: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        // Bounded: the server only sends replies to our (at most D) requests and events.
        for _ in 0..1_000_000 {
            if self.conns[ci].dead {
                break;
            }
            match self.conns[ci].stream.read(&mut scratch) {
                Ok(0) => {
                    let reason = if self.stopping() {
                        "closed by the server during the drain"
                    } else {
                        "closed by the server"
                    };
                    self.close_client(ci, reason.into());
                    break;
                }
                Ok(n) => {
                    let now = Instant::now();
                    self.consume(ci, &scratch[..n], now);
                    // A short read drained the socket; with edge-triggered polling any
                    // later data raises a new event, so skip the read that would only
                    // say WouldBlock (one syscall less per reply batch).
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close_client(ci, format!("read: {e}"));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Parse `data` (after any incomplete reply kept from before) and keep what is left.
    fn consume(&mut self, ci: usize, data: &[u8], now: Instant) {
        let mut buf = std::mem::take(&mut self.conns[ci].rbuf);
        match self.plan.target {
            Target::Lockbox => self.consume_lines(ci, &mut buf, data, now),
            Target::Redis => {
                let input: &[u8] = if buf.is_empty() {
                    data
                } else {
                    buf.extend_from_slice(data);
                    &buf
                };
                let used = self.consume_resp(ci, input, now);
                if buf.is_empty() {
                    buf.extend_from_slice(&data[used..]);
                } else {
                    buf.drain(..used);
                }
            }
        }
        if self.conns[ci].dead {
            return;
        }
        if buf.len() > MAX_REPLY {
            self.anomaly(
                Property::Protocol,
                format!("reply longer than {MAX_REPLY} bytes"),
            );
            self.close_client(ci, "reply too long".into());
            return;
        }
        self.conns[ci].rbuf = buf;
    }
}

impl ServerConn {
    /// Whether the TCP connect has completed (`Ok(false)`: not yet).
    fn connected(&mut self, server: &str) -> Result<bool, String> {
        if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
            return Err(format!("{server}: {e}"));
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(format!("{server}: {e}")),
        }
    }

    /// Write the connection check and read its answer line (without the line end);
    /// `Ok(None)` while either is still under way.
    fn hello_exchange(&mut self, server: &str) -> Result<Option<Vec<u8>>, String> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(format!("{server}: connection closed")),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{server}: {e}")),
            }
        }
        let mut buf = [0u8; 512];
        loop {
            if let Some(nl) = self.rbuf.iter().position(|&b| b == b'\n') {
                let line = &self.rbuf[..nl];
                return Ok(Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec()));
            }
            if self.rbuf.len() > HELLO_MAX {
                return Err(format!("{server}: no reply line to the connection check"));
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    let got = show(&self.rbuf);
                    return Err(format!(
                        "{server}: connection closed during the PING check{}",
                        if got.is_empty() {
                            String::new()
                        } else {
                            format!(" after '{got}'")
                        }
                    ));
                }
                Ok(n) => self.rbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{server}: {e}")),
            }
        }
    }
}
