//! Shared helpers for the integration tests (`mod common;` in each test file).
//!
//! - [`start`] / [`start_with`]: an in-process server on `127.0.0.1:0`, one per test;
//!   [`start_with_listeners`]: the same with foreign-protocol listeners too.
//! - [`Client`]: a raw protocol line client with timeouts, so a missing reply fails the
//!   test instead of hanging it.
//! - Reply parsers ([`ok_token`], [`ok_share`], [`assert_err`], ...).
//! - [`Rng`]: a seeded SplitMix64 for random operation sequences that replay from a seed.
//! - [`ServerProcess`] / [`run_binary`]: the `lockbox` binary in a child process that is
//!   always killed on drop (also when the test panics).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lockbox::config::Config;
use lockbox::proto::Protocol;
use lockbox::server::Server;

/// How long any expected reply may take before the test fails.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Default window for "this does not happen" checks.
pub const SILENCE_MS: u64 = 150;

/// Generous upper slack for deadlines: a correctness check on noisy CI, not a benchmark.
pub const LATE_SLACK: Duration = Duration::from_millis(250);

/// Starts an in-process server with the default configuration on `127.0.0.1:0`.
pub fn start() -> SocketAddr {
    start_with(Config::default())
}

/// Starts an in-process server with `cfg`; `cfg.listen` is forced to `127.0.0.1:0`.
/// The server thread runs until the test process exits.
pub fn start_with(mut cfg: Config) -> SocketAddr {
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = Server::bind(cfg).expect("Server::bind(127.0.0.1:0)");
    let addr = server.local_addr();
    run_in_thread(server);
    addr
}

/// Runs `server` on its own thread until the test process exits.
fn run_in_thread(server: Server) {
    std::thread::Builder::new()
        .name("lockbox-server".into())
        .spawn(move || {
            if let Err(e) = server.run() {
                panic!("server.run() returned an error: {e}");
            }
        })
        .expect("spawn the server thread");
}

/// The listener addresses of a server started by [`start_with_listeners`].
#[derive(Clone, Debug)]
pub struct Listeners {
    /// The native protocol's address.
    pub native: SocketAddr,
    foreign: Vec<(Protocol, SocketAddr)>,
}

impl Listeners {
    /// The address of `protocol`'s listener (panics if it was not asked for).
    pub fn addr(&self, protocol: Protocol) -> SocketAddr {
        if protocol == Protocol::Native {
            return self.native;
        }
        self.foreign
            .iter()
            .find(|(p, _)| *p == protocol)
            .unwrap_or_else(|| panic!("no {} listener was started", protocol.as_str()))
            .1
    }
}

/// Starts an in-process server on `127.0.0.1:0` with the native listener and one
/// listener on `127.0.0.1:0` per protocol of `foreign`; `tweak` adjusts the
/// configuration first (the listen addresses are set after it).
pub fn start_with_listeners(foreign: &[Protocol], tweak: impl FnOnce(&mut Config)) -> Listeners {
    let mut cfg = Config::default();
    tweak(&mut cfg);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.listen = any;
    for p in foreign {
        match p {
            Protocol::Native => {}
            Protocol::Lockd => cfg.lockd_listen = Some(any),
            Protocol::Locker => cfg.locker_listen = Some(any),
            Protocol::Officer => cfg.officer_listen = Some(any),
            Protocol::LiveMutex => cfg.livemutex_listen = Some(any),
            Protocol::Redis => cfg.redis_listen = Some(any),
            Protocol::Metrics => cfg.metrics_listen = Some(any),
        }
    }
    let server = Server::bind(cfg).expect("Server::bind(127.0.0.1:0)");
    let listeners = Listeners {
        native: server.local_addr(),
        foreign: foreign
            .iter()
            .map(|&p| {
                let addr = server
                    .listener_addr(p)
                    .unwrap_or_else(|| panic!("no {} listener", p.as_str()));
                (p, addr)
            })
            .collect(),
    };
    run_in_thread(server);
    listeners
}

/// A raw native-protocol client: writes lines, reads `\n`-terminated reply lines.
pub struct Client {
    stream: TcpStream,
    /// Bytes received but not yet returned as lines.
    buf: Vec<u8>,
    /// Counter for [`Client::sync`] ids.
    syncs: u64,
}

impl Client {
    /// Connects to `addr` (panics after [`REPLY_TIMEOUT`]).
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("set_nodelay");
        stream
            .set_write_timeout(Some(REPLY_TIMEOUT))
            .expect("set_write_timeout");
        Client {
            stream,
            buf: Vec::new(),
            syncs: 0,
        }
    }

    /// This side's address: the `ip:port` the server knows this connection by.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local_addr")
    }

    /// [`Client::local_addr`] as text, the way replies print it.
    pub fn addr(&self) -> String {
        self.local_addr().to_string()
    }

    /// A second handle on the same socket (e.g. for a writer thread).
    pub fn try_clone_stream(&self) -> TcpStream {
        self.stream.try_clone().expect("try_clone")
    }

    /// Sends `line` followed by `\n`.
    pub fn send(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send_bytes(&bytes);
    }

    /// Sends raw bytes exactly as given (no line end added).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send_bytes(bytes) {
            panic!("write of {} bytes failed: {e}", bytes.len());
        }
    }

    /// Sends raw bytes, returning the error (the server may already have closed).
    pub fn try_send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one reply line (without its `\n`) within `d`; `None` on timeout.
    /// Panics if the server closes the connection first.
    pub fn recv_within(&mut self, d: Duration) -> Option<String> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(String::from_utf8_lossy(&line[..pos]).into_owned());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            match self.read_some(deadline - now) {
                Ok(0) => panic!(
                    "server closed the connection while a reply line was expected \
                     (partial bytes: {:?})",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("read failed while a reply line was expected: {e}"),
            }
        }
    }

    /// Reads into `buf`, waiting at most `d`.
    fn read_some(&mut self, d: Duration) -> io::Result<usize> {
        let d = d.max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(d))?;
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads exactly `n` bytes (for binary protocols); panics after [`REPLY_TIMEOUT`] or
    /// if the server closes the connection first.
    pub fn recv_exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        while self.buf.len() < n {
            let now = Instant::now();
            assert!(now < deadline, "timed out: got {:?} of {n} bytes", self.buf);
            match self.read_some(deadline - now) {
                Ok(0) => panic!("connection closed after {:?} of {n} bytes", self.buf),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("read failed while {n} bytes were expected: {e}"),
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one reply line as JSON; panics after [`REPLY_TIMEOUT`] or if it is not JSON.
    pub fn recv_json(&mut self) -> serde_json::Value {
        let line = self.recv();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {line}"))
    }

    /// Sends `v` as one JSON line.
    pub fn send_json(&mut self, v: &serde_json::Value) {
        let mut line = serde_json::to_vec(v).expect("serialize JSON");
        line.push(b'\n');
        self.send_bytes(&line);
    }

    /// Reads one reply line; panics (with context) after [`REPLY_TIMEOUT`].
    pub fn recv(&mut self) -> String {
        match self.recv_within(REPLY_TIMEOUT) {
            Some(line) => line,
            None => panic!(
                "no reply line within {REPLY_TIMEOUT:?} (partial bytes: {:?})",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads exactly `n` reply lines.
    pub fn recv_n(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.recv()).collect()
    }

    /// Sends `line` and reads the next reply line.
    pub fn req(&mut self, line: &str) -> String {
        self.send(line);
        self.recv()
    }

    /// Asserts that nothing at all arrives within `ms` milliseconds.
    pub fn expect_silence(&mut self, ms: u64) {
        if !self.buf.is_empty() {
            panic!(
                "expected silence, but already received {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            match self.read_some(deadline - now) {
                Ok(0) => panic!("expected silence, but the server closed the connection"),
                Ok(_) => {
                    // Give the rest of the line a moment, to show it in the message.
                    let _ = self.recv_within(Duration::from_millis(50));
                    panic!(
                        "expected silence for {ms} ms, but received {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("expected silence, but read failed: {e}"),
            }
        }
    }

    /// Reads a multi-line reply to request `id`: rows `<id> ...` up to `<id> END <rows>`.
    /// Checks that every line carries `id` and that the END count equals the row count.
    /// Returns the rows (without the END line).
    pub fn recv_until_end(&mut self, id: &str) -> Vec<String> {
        let prefix = format!("{id} ");
        let mut rows = Vec::new();
        for _ in 0..1_000_000 {
            let line = self.recv();
            assert!(
                line.starts_with(&prefix),
                "line of a multi-line reply to {id:?} without that id: {line:?}"
            );
            let rest = &line[prefix.len()..];
            if let Some(count) = rest.strip_prefix("END ") {
                let n: usize = count
                    .parse()
                    .unwrap_or_else(|_| panic!("END count is not a number: {line:?}"));
                assert_eq!(n, rows.len(), "END count vs rows received: {rows:?}");
                return rows;
            }
            rows.push(line);
        }
        panic!("no END line for {id:?} within a million rows");
    }

    /// Sends a multi-line request (its first word is the id) and returns its rows.
    pub fn req_rows(&mut self, line: &str) -> Vec<String> {
        let id = line
            .split_whitespace()
            .next()
            .expect("request id")
            .to_string();
        self.send(line);
        self.recv_until_end(&id)
    }

    /// Sends a PING with a fresh id and asserts that its PONG is the very next line.
    /// Lines of one connection are handled in order, so everything sent before has been
    /// processed by the server (and any immediate reply would have come first).
    pub fn sync(&mut self) {
        self.syncs += 1;
        let id = format!("sync{}", self.syncs);
        let got = self.req(&format!("{id} PING"));
        assert_eq!(got, format!("{id} PONG"), "sync: expected the PONG next");
    }

    /// Asserts the server closes the connection (EOF or reset) with no further bytes.
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "expected close, but received {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let now = Instant::now();
            assert!(now < deadline, "server did not close the connection");
            match self.read_some(deadline - now) {
                Ok(0) => return,
                Ok(_) => panic!(
                    "expected close, but received {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Err(e) if is_timeout(&e) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return
                }
                Err(e) => panic!("expected close, but read failed: {e}"),
            }
        }
    }

    /// `<id> LOCK <args>` that must be granted at once; returns the token.
    pub fn lock(&mut self, id: &str, args: &str) -> u64 {
        let reply = self.req(&format!("{id} LOCK {args}"));
        ok_token(&reply, id)
    }

    /// `<id> SHARE <args>` that must be granted at once; returns (token, holders).
    pub fn share(&mut self, id: &str, args: &str) -> (u64, u64) {
        let reply = self.req(&format!("{id} SHARE {args}"));
        ok_share(&reply, id)
    }

    /// `<id> UNLOCK <args>` that must succeed with `<id> OK`.
    pub fn unlock(&mut self, id: &str, args: &str) {
        let reply = self.req(&format!("{id} UNLOCK {args}"));
        assert_eq!(reply, format!("{id} OK"), "UNLOCK {args}");
    }

    /// `INSPECT <name>`; returns what follows `<id> OK ` (e.g. `mode=free holders=0 waiters=0`).
    pub fn inspect(&mut self, name: &str) -> String {
        let reply = self.req(&format!("ins INSPECT {name}"));
        match reply.strip_prefix("ins OK ") {
            Some(rest) => rest.to_string(),
            None => panic!("INSPECT {name}: expected `ins OK ...`, got {reply:?}"),
        }
    }

    /// `STATS` as a map key -> value; every value but `version`'s (left out) must be an
    /// unsigned integer.
    pub fn stats(&mut self) -> HashMap<String, u64> {
        self.stats_sized().0
    }

    /// `STATS` as a map, plus the exact number of bytes of the whole reply.
    pub fn stats_sized(&mut self) -> (HashMap<String, u64>, usize) {
        self.send("st STATS");
        let rows = self.recv_until_end("st");
        let size = rows.iter().map(|r| r.len() + 1).sum::<usize>()
            + format!("st END {}\n", rows.len()).len();
        let mut map = HashMap::new();
        for row in rows {
            let w: Vec<&str> = row.split(' ').collect();
            assert!(
                w.len() == 4 && w[1] == "STAT",
                "STATS row not `st STAT <key> <value>`: {row:?}"
            );
            if w[2] == "version" {
                // The one value that is not a number (the server's version).
                continue;
            }
            let v: u64 = w[3]
                .parse()
                .unwrap_or_else(|_| panic!("STATS value not an unsigned integer: {row:?}"));
            assert!(
                map.insert(w[2].to_string(), v).is_none(),
                "STATS key repeated: {row:?}"
            );
        }
        (map, size)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Parses `<id> OK <token>` (exactly); returns the token.
pub fn ok_token(line: &str, id: &str) -> u64 {
    let w: Vec<&str> = line.split(' ').collect();
    assert!(
        w.len() == 3 && w[0] == id && w[1] == "OK",
        "expected `{id} OK <token>`, got {line:?}"
    );
    w[2].parse()
        .unwrap_or_else(|_| panic!("token is not a u64 in {line:?}"))
}

/// Parses `<id> OK <token> <holders>` (exactly); returns (token, holders).
pub fn ok_share(line: &str, id: &str) -> (u64, u64) {
    let w: Vec<&str> = line.split(' ').collect();
    assert!(
        w.len() == 4 && w[0] == id && w[1] == "OK",
        "expected `{id} OK <token> <holders>`, got {line:?}"
    );
    let t = w[2]
        .parse()
        .unwrap_or_else(|_| panic!("token is not a u64 in {line:?}"));
    let h = w[3]
        .parse()
        .unwrap_or_else(|_| panic!("holders is not a number in {line:?}"));
    (t, h)
}

/// Returns the error code of `<id> ERR <code> <text>`; asserts the form (non-empty text).
pub fn err_code(line: &str, id: &str) -> String {
    let w: Vec<&str> = line.splitn(4, ' ').collect();
    assert!(
        w.len() == 4 && w[0] == id && w[1] == "ERR" && !w[3].trim().is_empty(),
        "expected `{id} ERR <code> <text>`, got {line:?}"
    );
    assert!(
        !w[2].is_empty() && w[2].bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "error code is not a lowercase word in {line:?}"
    );
    w[2].to_string()
}

/// Asserts `line` is `<id> ERR <code> <text>` with exactly this code.
pub fn assert_err(line: &str, id: &str, code: &str) {
    let got = err_code(line, id);
    assert_eq!(got, code, "error code in {line:?}");
}

/// Parses `<id> EXPIRED <token>`; returns the token.
pub fn expired_token(line: &str, id: &str) -> u64 {
    let w: Vec<&str> = line.split(' ').collect();
    assert!(
        w.len() == 3 && w[0] == id && w[1] == "EXPIRED",
        "expected `{id} EXPIRED <token>`, got {line:?}"
    );
    w[2].parse()
        .unwrap_or_else(|_| panic!("token is not a u64 in {line:?}"))
}

/// Asserts `start.elapsed()` lies in `[at_least, at_least + slack)` (for tests whose
/// deadlines are timed through more round trips than [`assert_deadline`] allows for).
pub fn assert_deadline_within(what: &str, start: Instant, at_least: Duration, slack: Duration) {
    let el = start.elapsed();
    assert!(
        el >= at_least,
        "{what} fired early: after {el:?}, deadline {at_least:?}"
    );
    assert!(
        el < at_least + slack,
        "{what} fired late: after {el:?}, deadline {at_least:?}"
    );
}

/// Asserts `start.elapsed()` lies in `[at_least, at_least + LATE_SLACK)`.
pub fn assert_deadline(what: &str, start: Instant, at_least: Duration) {
    assert_deadline_within(what, start, at_least, LATE_SLACK);
}

/// Calls `f` until it returns true, at most for [`REPLY_TIMEOUT`] (1 ms apart);
/// for states the server reaches asynchronously (e.g. after a peer's disconnect).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("timed out waiting for: {what}");
}

// ---------------------------------------------------------------------------
// The binary in a child process.
// ---------------------------------------------------------------------------

/// Path of the `lockbox` binary built for the tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_lockbox")
}

/// What a finished run of the binary produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Kills the child on drop (also on panic), then reaps it.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reader_thread(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// Runs the binary with `args` (RUST_LOG unset) to completion; it is killed and the
/// test fails if it has not exited within 10 s (e.g. it started serving instead).
pub fn run_binary(args: &[&str]) -> RunOutput {
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the lockbox binary");
    let out = reader_thread(child.stdout.take().expect("stdout"));
    let err = reader_thread(child.stderr.take().expect("stderr"));
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = guard.0.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "lockbox {args:?} did not exit within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    RunOutput {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// The binary running as a server in a child process; killed on drop.
pub struct ServerProcess {
    guard: ChildGuard,
    lines: mpsc::Receiver<String>,
    /// Every stderr line seen so far.
    pub stderr: Vec<String>,
    /// The address from the `listening on <ADDR>` startup line.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Spawns the binary with `args` (RUST_LOG unset: default level) and waits up to
    /// 10 s for its `listening on <ADDR>` line.
    pub fn spawn(args: &[&str]) -> ServerProcess {
        let mut child = Command::new(binary())
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the lockbox binary");
        let stderr = child.stderr.take().expect("stderr");
        let guard = ChildGuard(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        let mut p = ServerProcess {
            guard,
            lines: rx,
            stderr: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.lines.recv_timeout(left) {
                Ok(line) => {
                    let addr = listening_addr(&line);
                    p.stderr.push(line);
                    if let Some(a) = addr {
                        p.addr = a;
                        return p;
                    }
                }
                Err(_) => panic!(
                    "lockbox {args:?}: no `listening on <ADDR>` line within 10 s; stderr: {:?}",
                    p.stderr
                ),
            }
        }
    }

    /// Collects the stderr lines that arrive within `d`.
    pub fn drain_stderr(&mut self, d: Duration) -> &[String] {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.lines.recv_timeout(left) {
                Ok(l) => self.stderr.push(l),
                Err(_) => break,
            }
        }
        &self.stderr
    }

    /// The child's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }

    /// Waits up to `d` for the child to exit; its exit code (`None` if killed by a
    /// signal), or `Err` if it is still running.
    pub fn wait_exit(&mut self, d: Duration) -> Result<Option<i32>, ()> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(st) = self.guard.0.try_wait().expect("try_wait") {
                return Ok(st.code());
            }
            if Instant::now() >= deadline {
                return Err(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the child now and waits for it.
    pub fn kill(&mut self) {
        let _ = self.guard.0.kill();
        let _ = self.guard.0.wait();
    }
}

/// Extracts `<ADDR>` from a log line containing `listening on <ADDR>`.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let word = rest.split_whitespace().next()?;
    let word = word.trim_end_matches(|c: char| !(c.is_ascii_digit() || c == ']'));
    let word = word.trim_start_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '['));
    word.parse().ok()
}

/// Says on the terminal that (part of) a test was skipped and why, as `SKIP <what>:
/// <why>`. cargo's test harness captures `print!`/`eprint!` of passing tests, so this
/// writes to the process's stderr directly, which `cargo test` shows as it runs.
pub fn skip_notice(what: &str, why: &str) {
    let _ = writeln!(io::stderr(), "SKIP {what}: {why}");
}

/// True when running under CI (`CI=true`, as `.ci/run` is run), where a missing test
/// dependency is a failure rather than a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The soft limit on open files of this process, from `/proc/self/limits` (Linux).
pub fn fd_soft_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// The crate's own seeded SplitMix64 (`src/testrng.rs`), shared with the unit tests.
#[path = "../../src/testrng.rs"]
mod testrng;
#[allow(unused_imports)] // not every test file draws random numbers
pub use testrng::Rng;

/// Kills a child process when dropped (a test that panics still reaps it).
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a real client of another ecosystem (`cmd`, already given its script and
/// arguments) with no input, its output read on threads so a chatty script cannot block
/// on a full pipe, and kills it after `limit`. Returns its exit status (`None` when it
/// was killed), its stdout, and a report of both outputs labelled with `label`.
pub fn run_client_script(
    mut cmd: Command,
    label: &str,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, String, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut child = Reaper(child);
    let mut out = child.0.stdout.take().unwrap();
    let mut err = child.0.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the client script") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.0.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child);
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let report = format!("--- {label} stdout ---\n{stdout}--- {label} stderr ---\n{stderr}");
    (status, stdout, report)
}

/// True when a test needing `redis-server` must fail rather than skip without one: in
/// CI, or with `LOCKBOX_REQUIRE_REDIS_SERVER=1`.
pub fn redis_server_required() -> bool {
    in_ci() || std::env::var("LOCKBOX_REQUIRE_REDIS_SERVER").is_ok_and(|v| v == "1")
}

/// A real `redis-server`, the reference for the Redis dialect's differential tests,
/// started on a free loopback port with no persistence, and killed on drop.
pub struct RedisServer {
    _child: Reaper,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Attempts at starting `redis-server` (the port is picked free, then handed over, so
/// another process may take it in between: the server then exits and we try again).
const REDIS_START_ATTEMPTS: usize = 5;
/// How long `redis-server` may take to listen.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(10);

impl RedisServer {
    /// Starts `redis-server`, or says why not: `None` after a SKIP line locally, a panic
    /// in CI or with `LOCKBOX_REQUIRE_REDIS_SERVER=1` (`.ci/run` installs it).
    pub fn start(what: &str) -> Option<RedisServer> {
        RedisServer::start_with(what, &[])
    }

    /// [`RedisServer::start`] with more command-line arguments (`--requirepass x`).
    pub fn start_with(what: &str, extra: &[&str]) -> Option<RedisServer> {
        let required = redis_server_required();
        let bin = std::env::var_os("LOCKBOX_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let mut why = String::new();
        for _ in 0..REDIS_START_ATTEMPTS {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("bind 127.0.0.1:0")
                .port();
            let child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match child {
                Ok(c) => Reaper(c),
                Err(e) => {
                    why = format!("cannot run {bin:?} ({e}); install redis-server");
                    break;
                }
            };
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let start = Instant::now();
            while start.elapsed() < REDIS_START_TIMEOUT {
                if let Ok(Some(status)) = child.0.try_wait() {
                    why = format!("redis-server exited ({status}) on port {port}");
                    break;
                }
                if let Ok(s) = TcpStream::connect(addr) {
                    // It is ours only if it answers as Redis does.
                    // (a password makes the answer NOAUTH)
                    let mut c = RespConn::from_stream(s);
                    let pong = c.call(&[b"PING"]);
                    if pong == b"+PONG\r\n" || pong.starts_with(b"-NOAUTH") {
                        return Some(RedisServer {
                            _child: child,
                            addr,
                        });
                    }
                    why = format!("port {port} answered PING with something else");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if why.is_empty() {
                why = format!("redis-server did not listen on port {port}");
            }
        }
        assert!(
            !required,
            "{what}: {why} (CI or LOCKBOX_REQUIRE_REDIS_SERVER=1: redis-server is required)"
        );
        skip_notice(what, &why);
        None
    }
}

/// A raw RESP client: sends arrays of bulk strings (or any bytes), and returns each
/// reply as its exact bytes, framed by [`resp_reply_len`].
pub struct RespConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RespConn {
    pub fn connect(addr: SocketAddr) -> RespConn {
        RespConn::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    fn from_stream(stream: TcpStream) -> RespConn {
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        RespConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends bytes as they are, if the peer still reads (false when it closed).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Sends one request as an array of bulk strings.
    pub fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&resp_request(args));
    }

    /// The next whole reply, its exact bytes; an empty vector when the peer closed
    /// before one arrived. Panics after [`REPLY_TIMEOUT`].
    pub fn reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = resp_reply_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return std::mem::take(&mut self.buf)
                }
                Err(e) => panic!(
                    "no whole RESP reply: {e} after {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// The next whole reply, or `None` when none came within `d` (the bytes of a part
    /// of one stay buffered).
    pub fn reply_within(&mut self, d: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(n) = resp_reply_len(&self.buf) {
                return Some(self.buf.drain(..n).collect());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = [0u8; 16384];
            let got = self.stream.read(&mut chunk);
            self.stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
            match got {
                Ok(0) => return Some(std::mem::take(&mut self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => return None,
                Err(_) => return Some(std::mem::take(&mut self.buf)),
            }
        }
    }

    /// Sends one request and returns its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.reply()
    }
}

/// One request as a RESP array of bulk strings.
pub fn resp_request(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// The length of the whole RESP2/RESP3 reply at the start of `b`, or `None` while it is
/// incomplete. Panics on bytes that are no RESP reply.
pub fn resp_reply_len(b: &[u8]) -> Option<usize> {
    let line_end = |from: usize| {
        b[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
    };
    let end = line_end(0)?;
    let head = std::str::from_utf8(&b[1..end]).expect("RESP header");
    let after = end + 2;
    let count = || -> i64 {
        head.parse()
            .unwrap_or_else(|_| panic!("RESP count {head:?}"))
    };
    match b[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'!' | b'=' => {
            let n = count();
            if n < 0 {
                return Some(after);
            }
            let total = after + n as usize + 2;
            (b.len() >= total).then_some(total)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = count();
            let elems = if matches!(b[0], b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut at = after;
            for _ in 0..elems.max(0) {
                at += resp_reply_len(&b[at..])?;
            }
            Some(at)
        }
        c => panic!("not a RESP reply: {:?}", String::from_utf8_lossy(&[c])),
    }
}
