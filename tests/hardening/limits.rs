//! Hardening: limits, backpressure, partial lines, AUTH and the fencing state file.
//!
//! - Slow reader: a client that pipelines and never reads is paused at the high-water
//!   mark (server RSS stays bounded, everybody else is served, it gets every reply once it
//!   reads), and one whose replies pass `--output-limit` is disconnected, its lock released.
//! - Connection flood beyond `--max-connections`: `* ERR limit ...` then EOF, the server
//!   keeps serving; at the file-descriptor limit `accept` failures do not spin the loop.
//! - `--max-pending` under pipelining: `ERR limit`, nothing leaks, the connection works on.
//! - Partial lines: a line of `--max-line` bytes may still end; past it the connection is
//!   closed with `line_too_long`; never-ending partial lines cost bounded memory and block
//!   nobody.
//! - AUTH: secret files with line ends, nothing pipelined around a failed AUTH runs.
//! - `--state-file`: tokens increase across `kill -9`, a reservation ahead of the clock is
//!   honoured, a corrupt or unreadable file stops startup with exit code 2.
//!   (The clock-set-back case of `Fence` itself is a unit test in `src/fence.rs`.)
//!
//! Child processes are the real binary, killed on drop; only 127.0.0.1 is used.

use crate::common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_err, binary, listening_addr, ok_token, run_binary, start, start_with, Client,
    REPLY_TIMEOUT,
};
use lockbox::config::Config;

// ---------------------------------------------------------------------------
// Helpers: the binary as a child process with a pid, scratch directories
// ---------------------------------------------------------------------------

/// The server binary in a child process (optionally under `ulimit -n`); killed on drop.
struct Proc {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_limited(args, None)
    }

    /// With `nofile`, the server runs under `ulimit -n nofile` (via `sh -c ... exec`, so
    /// the child's pid is the server's).
    fn spawn_limited(args: &[&str], nofile: Option<u32>) -> Proc {
        let mut cmd = match nofile {
            None => Command::new(binary()),
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(binary());
                c
            }
        };
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the lockbox binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut p = Proc {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            stderr: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.lines.recv_timeout(left) {
                Ok(l) => {
                    let a = listening_addr(&l);
                    p.stderr.push(l);
                    if let Some(a) = a {
                        p.addr = a;
                        return p;
                    }
                }
                Err(_) => panic!("lockbox {args:?} did not start: {:?}", p.stderr),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB (`VmRSS` of /proc/PID/status).
    fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }

    /// User plus system CPU time in clock ticks (/proc/PID/stat fields 14 and 15).
    fn cpu_ticks(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after = &s[s.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        // `after` starts at field 3 (state): utime is field 14, stime 15.
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// Waits up to `d` for a stderr line containing `needle`.
    fn wait_log(&mut self, needle: &str, d: Duration) -> bool {
        if self.stderr.iter().any(|l| l.contains(needle)) {
            return true;
        }
        let deadline = Instant::now() + d;
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let hit = l.contains(needle);
            self.stderr.push(l);
            if hit {
                return true;
            }
        }
        false
    }

    /// `kill -9` and reap.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lockbox-hardening-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Reads lines from a raw stream until `deadline`; `None` at EOF/reset.
fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Option<String> {
    loop {
        if let Some(p) = buf.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = buf.drain(..=p).collect();
            return Some(String::from_utf8_lossy(&l[..p]).into_owned());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no reply line in time");
        stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 65536];
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// PINGs on `c` and returns the round trip.
fn ping_rtt(c: &mut Client, id: &str) -> Duration {
    let t = Instant::now();
    assert_eq!(c.req(&format!("{id} PING")), format!("{id} PONG"));
    t.elapsed()
}

// ---------------------------------------------------------------------------
// Slow readers and output backpressure
// ---------------------------------------------------------------------------

#[test]
fn slow_reader_is_paused_with_bounded_memory_others_served_then_gets_every_reply() {
    let server = Proc::spawn(&["--output-high-water", "4096", "--output-limit", "65536"]);
    let addr = server.addr;
    let mut probe = Client::connect(addr);
    ping_rtt(&mut probe, "warm");
    let rss0 = server.rss_kb();

    // The flooder pipelines PINGs (unique, increasing ids) and does not read. It writes
    // until the server stops taking them (blocked 1 s), 256 MiB, or 6 s.
    let flooder = TcpStream::connect(addr).unwrap();
    flooder.set_nodelay(true).unwrap();
    let mut w = flooder.try_clone().unwrap();
    let writer = thread::spawn(move || {
        w.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
        let started = Instant::now();
        let (mut next, mut complete, mut total) = (0u64, 0u64, 0usize);
        loop {
            // A batch of lines and where each ends.
            let mut batch = Vec::new();
            let mut ends = Vec::new();
            for _ in 0..4096 {
                batch.extend_from_slice(format!("p{next} PING\n").as_bytes());
                next += 1;
                ends.push(batch.len());
            }
            let mut pos = 0;
            let mut stop = false;
            while pos < batch.len() && !stop {
                match w.write(&batch[pos..]) {
                    Ok(n) => {
                        pos += n;
                        total += n;
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        stop = true
                    }
                    Err(e) => {
                        return Err(format!(
                            "the server dropped a client that only pipelines PINGs after \
                             {total} bytes ({e}); it should stop reading it instead"
                        ))
                    }
                }
                stop |= total >= 256 << 20 || started.elapsed() > Duration::from_secs(6);
            }
            complete += ends.iter().filter(|&&e| e <= pos).count() as u64;
            if stop {
                // The unwritten rest of the line in progress (empty at a line boundary).
                let end = ends.iter().copied().find(|&e| e > pos).unwrap_or(pos);
                let rest = batch[pos..end].to_vec();
                return Ok((complete, rest, total));
            }
        }
    });

    // Meanwhile others are served promptly, and locks work.
    let mut worst = Duration::ZERO;
    let mut other = Client::connect(addr);
    for i in 0..40 {
        worst = worst.max(ping_rtt(&mut probe, &format!("q{i}")));
        let t = other.lock(&format!("l{i}"), "served-lock wait=1000");
        other.unlock(&format!("u{i}"), &format!("served-lock {t}"));
        thread::sleep(Duration::from_millis(25));
    }
    let (lines, rest, bytes) = writer
        .join()
        .expect("flooder writer")
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..10 {
        worst = worst.max(ping_rtt(&mut probe, &format!("r{i}")));
    }
    let rss1 = server.rss_kb();
    eprintln!(
        "flooder wrote {lines} requests ({bytes} bytes) unread; RSS {rss0} -> {rss1} KiB; \
         worst probe RTT {worst:?}"
    );
    assert!(
        worst < Duration::from_secs(1),
        "another client waited {worst:?} for a PONG while one client did not read"
    );
    assert!(
        bytes < 200 << 20,
        "the server kept taking requests from a client that reads nothing ({bytes} bytes)"
    );
    assert!(
        rss1 < rss0 + 128 * 1024,
        "server RSS grew from {rss0} KiB to {rss1} KiB for one non-reading client"
    );

    // Once the flooder reads, it gets exactly one PONG per request, in order: reading
    // resumed after the pause, and nothing was dropped.
    let mut r = flooder;
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..lines {
        let l = read_line(&mut r, &mut buf, deadline)
            .unwrap_or_else(|| panic!("flooder disconnected after {i} of {lines} replies"));
        assert_eq!(l, format!("p{i} PONG"), "reply {i} of {lines}");
    }
    // Finish the line that was cut off, then a last PING.
    r.write_all(&rest).unwrap();
    r.write_all(b"end PING\n").unwrap();
    if !rest.is_empty() {
        let l = read_line(&mut r, &mut buf, deadline);
        assert_eq!(l, Some(format!("p{lines} PONG")));
    }
    assert_eq!(
        read_line(&mut r, &mut buf, deadline).as_deref(),
        Some("end PONG")
    );
}

#[test]
fn reader_past_output_limit_is_disconnected_and_its_lock_released() {
    let mut server = Proc::spawn(&["--output-high-water", "4096", "--output-limit", "16384"]);
    let addr = server.addr;
    // The slow client takes 3000 locks with an 8 s hold deadline, and one without. The
    // deadline must outlast the LIST flood below: if the holds expired first (a slow
    // machine), LIST would shrink to one row and nothing would fill its output.
    let mut slow = Client::connect(addr);
    let mut wire = Vec::new();
    for i in 0..3000 {
        wire.extend_from_slice(
            format!("h{i} LOCK list-padding-lock-name-number-{i:05} wait=0 hold=8000\n").as_bytes(),
        );
    }
    slow.send_bytes(&wire);
    for i in 0..3000 {
        ok_token(&slow.recv(), &format!("h{i}"));
    }
    let t_slow = slow.lock("s1", "slow-held");
    let mut waiter = Client::connect(addr);
    waiter.send("w1 LOCK slow-held wait=20000");
    waiter.sync();
    // Now it asks for LIST (about 240 KB each) again and again and reads nothing: the
    // server stops reading it once its output is backed up. Replies that do not depend on
    // reading it (here 3000 EXPIRED events) then push its unsent output past the limit
    // (if LIST replies have not already), and it is disconnected.
    let mut w = slow.try_clone_stream();
    let writer = thread::spawn(move || {
        w.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0..400 {
            if w.write_all(format!("L{i} LIST\n").as_bytes()).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let line = waiter.recv_within(Duration::from_secs(15));
    let t_w = ok_token(
        line.as_deref()
            .expect("the non-reading client was not disconnected: its lock was never released"),
        "w1",
    );
    assert!(t_w > t_slow);
    eprintln!("slow reader disconnected after {:?}", started.elapsed());
    let _ = writer.join();
    assert!(
        server.wait_log("disconnecting", Duration::from_secs(5)),
        "the disconnect of a client that does not read is not logged: {:?}",
        server.stderr
    );
    // Nothing of it is left; the waiter is fine.
    let s = waiter.stats();
    assert_eq!((s["connections"], s["holds"], s["waiters"]), (1, 1, 0));
    assert_eq!(waiter.req("p PING"), "p PONG");
}

// ---------------------------------------------------------------------------
// Connection limits
// ---------------------------------------------------------------------------

/// A connection the server refused: it must say so, then close.
fn expect_refused(addr: SocketAddr) -> Result<(), String> {
    let mut st = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    st.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match st.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("read: {e} after {got:?}")),
        }
    }
    if got == b"* ERR limit too many connections\n" {
        Ok(())
    } else {
        Err(format!("refusal was {:?}", String::from_utf8_lossy(&got)))
    }
}

#[test]
fn connection_flood_beyond_max_connections_is_refused_cleanly_and_serving_goes_on() {
    const MAX: usize = 50;
    let cfg = Config {
        max_connections: MAX,
        ..Config::default()
    };
    let addr = start_with(cfg);
    let mut kept: Vec<Client> = (0..MAX).map(|_| Client::connect(addr)).collect();
    for (i, c) in kept.iter_mut().enumerate() {
        assert_eq!(c.req(&format!("k{i} PING")), format!("k{i} PONG"));
    }
    let t = kept[0].lock("t", "flood-lock");
    // 30 more at once, from 3 threads: each is refused with the limit line, then EOF.
    let floods: Vec<_> = (0..3)
        .map(|_| thread::spawn(move || (0..10).map(|_| expect_refused(addr)).collect::<Vec<_>>()))
        .collect();
    for f in floods {
        for r in f.join().unwrap() {
            r.expect("a connection beyond --max-connections");
        }
    }
    // Everybody already connected is still served.
    for (i, c) in kept.iter_mut().enumerate() {
        assert_eq!(c.req(&format!("a{i} PING")), format!("a{i} PONG"));
    }
    assert!(kept[1]
        .inspect("flood-lock")
        .contains(&format!("token={t}")));
    // Close 10: exactly 10 new ones are accepted (once the server has reaped the old).
    kept.truncate(MAX - 10);
    let mut fresh = Vec::new();
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while fresh.len() < 10 {
        assert!(Instant::now() < deadline, "freed slots were not reused");
        let mut c = Client::connect(addr);
        c.send("n PING");
        match c.recv_within(REPLY_TIMEOUT).as_deref() {
            Some("n PONG") => fresh.push(c),
            Some("* ERR limit too many connections") => thread::sleep(Duration::from_millis(5)),
            other => panic!("new connection got {other:?}"),
        }
    }
    expect_refused(addr).expect("the 51st connection");
    let s = kept[0].stats();
    assert_eq!(s["connections"], MAX as u64);
    assert!(s["connections_total"] >= (MAX + 10) as u64);
}

#[test]
fn accept_failures_at_the_descriptor_limit_do_not_spin_and_serving_goes_on() {
    // Room for about 30 connections besides the server's own descriptors. Connect 45,
    // each sending a PING: the server accepts them in order until accept fails with
    // EMFILE, so the answered ones are a prefix and the rest wait in the backlog.
    let mut server = Proc::spawn_limited(&[], Some(40));
    let addr = server.addr;
    let mut all: Vec<Client> = (0..45).map(|_| Client::connect(addr)).collect();
    for (i, c) in all.iter_mut().enumerate() {
        c.send(&format!("b{i} PING"));
    }
    let mut accepted = 0;
    for (i, c) in all.iter_mut().enumerate() {
        match c.recv_within(Duration::from_secs(2)) {
            Some(l) => {
                assert_eq!(l, format!("b{i} PONG"));
                accepted += 1;
            }
            None => break,
        }
    }
    assert!(
        (20..45).contains(&accepted),
        "{accepted} of 45 connections accepted under ulimit -n 40"
    );
    let mut queued = all.split_off(accepted);
    let mut kept = all;
    for c in queued.iter_mut() {
        c.expect_silence(50);
    }
    // The loop must not spin: CPU time over one second stays low.
    let ticks0 = server.cpu_ticks();
    let t0 = Instant::now();
    for (i, c) in kept.iter_mut().enumerate().take(10) {
        assert!(ping_rtt(c, &format!("e{i}")) < Duration::from_millis(500));
        thread::sleep(Duration::from_millis(100));
    }
    let ticks = server.cpu_ticks() - ticks0;
    let hz = 100; // USER_HZ on Linux
    let busy = Duration::from_millis(ticks * 1000 / hz);
    eprintln!(
        "{accepted} accepted; server CPU {busy:?} in {:?} while out of descriptors",
        t0.elapsed()
    );
    assert!(
        busy < t0.elapsed() / 3,
        "server used {busy:?} of CPU in {:?} while accept failed: the loop spins",
        t0.elapsed()
    );
    assert!(
        server.wait_log("accept failed", Duration::from_secs(2)),
        "accept failures are not logged: {:?}",
        server.stderr
    );
    // Free descriptors, one per queued connection and a spare (how many the server
    // holds itself, listener, poll, timerfd and the like, is not this test's business):
    // the queued connections are accepted and answered.
    assert!(kept.len() > queued.len() + 1, "{accepted} accepted");
    kept.truncate(kept.len() - queued.len() - 1);
    for (i, c) in queued.iter_mut().enumerate() {
        assert_eq!(c.recv(), format!("b{} PONG", accepted + i));
    }
    for (i, c) in kept.iter_mut().enumerate() {
        assert_eq!(c.req(&format!("z{i} PING")), format!("z{i} PONG"));
    }
}

// ---------------------------------------------------------------------------
// --max-pending under pipelining
// ---------------------------------------------------------------------------

#[test]
fn max_pending_refuses_pipelined_excess_with_limit_and_the_connection_works_on() {
    let cfg = Config {
        max_pending: 5,
        ..Config::default()
    };
    let addr = start_with(cfg);
    let mut b = Client::connect(addr);
    let tb = b.lock("b1", "busy");
    let mut a = Client::connect(addr);
    // One write: 3 grants, 2 waits, then 8 more waits and 2 SHAREs over the limit, a PING.
    let mut wire = String::new();
    for i in 0..3 {
        wire += &format!("h{i} LOCK own-{i} wait=0\n");
    }
    for i in 0..10 {
        wire += &format!("w{i} LOCK busy\n");
    }
    wire += "s1 SHARE free-share\ns2 SHARE free-share max=3 wait=0\np PING\n";
    a.send_bytes(wire.as_bytes());
    for i in 0..3 {
        ok_token(&a.recv(), &format!("h{i}"));
    }
    for i in 2..10 {
        assert_err(&a.recv(), &format!("w{i}"), "limit");
    }
    assert_err(&a.recv(), "s1", "limit");
    assert_err(&a.recv(), "s2", "limit");
    assert_eq!(a.recv(), "p PONG");
    assert_eq!(
        b.inspect("busy"),
        format!(
            "mode=exclusive holders=1 waiters=2 token={tb} owner={}",
            b.local_addr()
        )
    );
    assert_eq!(b.inspect("free-share"), "mode=free holders=0 waiters=0");
    // A grant turns a wait into a hold: still 5 pending.
    b.unlock("b2", "busy");
    let t0 = ok_token(&a.recv(), "w0");
    assert!(t0 > tb);
    assert_err(&a.req("x1 LOCK other wait=0"), "x1", "limit");
    // A release makes room for exactly one.
    a.unlock("u0", "own-0");
    ok_token(&a.req("x2 LOCK other wait=0"), "x2");
    assert_err(&a.req("x3 LOCK other2 wait=0"), "x3", "limit");
    // RESET: 4 holds (own-1, own-2, busy, other) released, 1 wait (w1) cancelled.
    a.send("r RESET");
    assert_eq!(a.recv(), "w1 CANCELLED");
    assert_eq!(a.recv(), "r OK 4 1");
    let s = a.stats();
    assert_eq!((s["holds"], s["waiters"]), (0, 0));
    assert_eq!(s["grants_total"], 1 + 3 + 1 + 1, "refusals issue no token");
}

// ---------------------------------------------------------------------------
// Partial lines
// ---------------------------------------------------------------------------

#[test]
fn partial_line_of_max_line_bytes_may_still_end_one_over_is_closed() {
    let cfg = Config {
        max_line: 256,
        ..Config::default()
    };
    let addr = start_with(cfg);
    let mut c = Client::connect(addr);
    let full = format!("{:<256}", "a1 PING");
    // 256 bytes and no line end yet: a legal line in progress, no reply, not closed.
    c.send_bytes(full.as_bytes());
    c.expect_silence(200);
    c.send_bytes(b"\r\n");
    assert_eq!(c.recv(), "a1 PONG");
    // Again, then two more bytes before any line end: over the limit, closed.
    let full = format!("{:<256}", "a2 PING");
    c.send_bytes(full.as_bytes());
    c.expect_silence(100);
    let _ = c.try_send_bytes(b"xx");
    assert_err(&c.recv(), "a2", "line_too_long");
    c.expect_closed();
    // The same, trickled one byte at a time to 300 bytes.
    let mut d = Client::connect(addr);
    for b in format!("{:<300}", "a3 LOCK trickle").bytes() {
        if d.try_send_bytes(&[b]).is_err() {
            break;
        }
    }
    assert_err(&d.recv(), "a3", "line_too_long");
    d.expect_closed();
}

#[test]
fn never_ending_partial_lines_block_nobody_and_cost_bounded_memory() {
    let server = Proc::spawn(&[]);
    let addr = server.addr;
    let mut probe = Client::connect(addr);
    ping_rtt(&mut probe, "warm");
    let rss0 = server.rss_kb();
    // 500 connections, each with a 4000-byte line that never ends (legal: under 4096).
    let mut partial: Vec<Client> = (0..500).map(|_| Client::connect(addr)).collect();
    let body = format!("{:<4000}", "pp PING");
    for c in partial.iter_mut() {
        c.send_bytes(body.as_bytes());
    }
    // 100 more send a few bytes and stop.
    let mut few: Vec<Client> = (0..100).map(|_| Client::connect(addr)).collect();
    for (i, c) in few.iter_mut().enumerate() {
        c.send_bytes(format!("f{i} PI").as_bytes());
    }
    // Others are served meanwhile, locks work.
    for i in 0..20 {
        assert!(ping_rtt(&mut probe, &format!("q{i}")) < Duration::from_millis(500));
    }
    let t = probe.lock("l", "partial-test wait=0");
    probe.unlock("u", &format!("partial-test {t}"));
    let rss1 = server.rss_kb();
    eprintln!("RSS {rss0} -> {rss1} KiB with 500 x 4000-byte partial lines");
    // 500 x 4 KB = 2 MB of legal partial input; allow per-connection overhead, but not
    // a full-size (64 KiB) buffer per connection (32 MB).
    assert!(
        rss1 < rss0 + 16 * 1024,
        "RSS grew {} KiB for 2 MB of partial lines",
        rss1 - rss0
    );
    // Finishing the lines gets each its answer.
    for (i, c) in few.iter_mut().enumerate().step_by(7) {
        c.send_bytes(b"NG\n");
        assert_eq!(c.recv(), format!("f{i} PONG"));
    }
    for c in partial.iter_mut().step_by(13) {
        c.send_bytes(b"\n");
        assert_eq!(c.recv(), "pp PONG");
    }
    // And pushing one past max-line closes only that connection.
    let c = &mut partial[1];
    let _ = c.try_send_bytes(&[b'x'; 100]);
    assert_err(&c.recv(), "pp", "line_too_long");
    c.expect_closed();
    assert_eq!(probe.req("z PING"), "z PONG");
}

// ---------------------------------------------------------------------------
// AUTH
// ---------------------------------------------------------------------------

fn auth_server(dir: &Scratch, contents: &[u8]) -> SocketAddr {
    let path = dir.path("secret");
    std::fs::write(&path, contents).unwrap();
    start_with(Config {
        auth_file: Some(path),
        ..Config::default()
    })
}

#[test]
fn auth_secret_file_line_ends_and_no_auth_file() {
    let dir = Scratch::new("auth");
    for contents in [&b"Tr0ub4dor&3\n"[..], b"Tr0ub4dor&3\r\n", b"Tr0ub4dor&3"] {
        let addr = auth_server(&dir, contents);
        let mut c = Client::connect(addr);
        assert_err(&c.req("a0 LOCK k"), "a0", "auth_required");
        assert_eq!(c.req("p PING"), "p PONG", "PING before AUTH");
        assert_eq!(
            c.req("a1 AUTH Tr0ub4dor&3"),
            "a1 OK",
            "secret file {contents:?}"
        );
        ok_token(&c.req("a2 LOCK k"), "a2");
        // The line end is not part of the secret.
        let mut d = Client::connect(addr);
        assert_err(&d.req("b1 AUTH Tr0ub4dor&3x"), "b1", "auth_failed");
        d.expect_closed();
        // QUIT works before AUTH.
        let mut q = Client::connect(addr);
        assert_eq!(q.req("q QUIT"), "q OK");
        q.expect_closed();
    }
    // Without --auth-file, AUTH is accepted (documented choice) and changes nothing.
    let mut c = Client::connect(start());
    assert_eq!(c.req("a AUTH anything"), "a OK");
    ok_token(&c.req("l LOCK k"), "l");
}

#[test]
fn nothing_pipelined_around_a_failed_auth_is_executed() {
    let dir = Scratch::new("auth2");
    let addr = auth_server(&dir, b"right\n");
    let mut good = Client::connect(addr);
    assert_eq!(good.req("g AUTH right"), "g OK");
    let tg = good.lock("g1", "kept");
    // One write: a LOCK before AUTH, a wrong AUTH, then requests that must never run.
    let mut evil = Client::connect(addr);
    evil.send_bytes(b"e1 LOCK stolen\ne2 AUTH wrong\ne3 LOCK stolen2\ne4 UNLOCK kept\ne5 PING\n");
    assert_err(&evil.recv(), "e1", "auth_required");
    assert_err(&evil.recv(), "e2", "auth_failed");
    evil.expect_closed();
    for name in ["stolen", "stolen2"] {
        assert_eq!(good.inspect(name), "mode=free holders=0 waiters=0");
    }
    assert!(good.inspect("kept").contains(&format!("token={tg}")));
    let s = good.stats();
    assert_eq!(
        s["cmd_unlock"], 0,
        "a request after a failed AUTH was executed"
    );
    assert_eq!(s["connections"], 1);
    // Wrong secrets of other lengths and a brute-force burst on fresh connections.
    for (i, wrong) in ["r", "righ", "right!", "RIGHT", &"x".repeat(1024)]
        .iter()
        .enumerate()
    {
        let mut c = Client::connect(addr);
        assert_err(
            &c.req(&format!("w{i} AUTH {wrong}")),
            &format!("w{i}"),
            "auth_failed",
        );
        c.expect_closed();
    }
    assert_eq!(good.req("p PING"), "p PONG");
}

#[test]
fn unusable_auth_file_stops_startup_with_exit_code_2() {
    let dir = Scratch::new("auth3");
    let empty = dir.path("empty");
    std::fs::write(&empty, b"").unwrap();
    let spaced = dir.path("spaced");
    std::fs::write(&spaced, b"two words\n").unwrap();
    let missing = dir.path("missing");
    for path in [&empty, &spaced, &missing] {
        let out = run_binary(&["--listen", "127.0.0.1:0", "--auth-file", s(path)]);
        assert_eq!(out.code, Some(2), "--auth-file {}: {out:?}", path.display());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one stderr line: {out:?}");
        assert!(lines[0].contains(s(path)), "names the file: {out:?}");
    }
}

// ---------------------------------------------------------------------------
// --state-file
// ---------------------------------------------------------------------------

fn reservation(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("state file");
    text.strip_prefix("lockbox-fence 1 ")
        .and_then(|t| t.strip_suffix('\n'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("state file format: {text:?}"))
}

#[test]
fn state_file_keeps_tokens_increasing_across_kill_9() {
    let dir = Scratch::new("state");
    let state = dir.path("fence.state");
    let mut server = Proc::spawn(&["--state-file", s(&state)]);
    // A missing file is created, with a reservation above every token it hands out.
    let mut c = Client::connect(server.addr);
    let mut t1 = 0;
    for i in 0..20 {
        let t = c.lock(&format!("l{i}"), &format!("k{i}"));
        assert!(t > t1);
        t1 = t;
    }
    let r1 = reservation(&state);
    assert!(
        r1 > t1,
        "token {t1} issued beyond the persisted reservation {r1}"
    );
    server.kill9();
    drop(c);
    let server = Proc::spawn(&["--state-file", s(&state)]);
    let mut c = Client::connect(server.addr);
    let t2 = c.lock("a", "k0");
    assert!(t2 > t1, "after kill -9 and restart: {t2} <= {t1}");
    assert!(reservation(&state) > t2);
}

#[test]
fn state_file_reservation_ahead_of_the_clock_is_honoured() {
    // As after a restart with the clock set back: the file's reservation is far above
    // the clock, and the first token must be above it (at the binary level).
    let dir = Scratch::new("ahead");
    let state = dir.path("state");
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let ahead = now_ns + 3_600_000_000_000_000; // the clock 1000 hours "back"
    std::fs::write(&state, format!("lockbox-fence 1 {ahead}\n")).unwrap();
    let server = Proc::spawn(&["--state-file", s(&state)]);
    let mut c = Client::connect(server.addr);
    let t = c.lock("a", "k");
    assert!(
        t >= ahead,
        "token {t} below the recorded reservation {ahead}"
    );
    assert!(reservation(&state) > t);
}

#[test]
fn corrupt_or_unreadable_state_file_stops_startup_with_exit_code_2() {
    let dir = Scratch::new("corrupt");
    for (i, bad) in [
        &b"garbage\n"[..],
        b"",
        b"lockbox-fence 1 12x\n",
        b"lockbox-fence 2 5\n",
        b"lockbox-fence 1 99999999999999999999999\n",
        b"\xff\xfe\n",
    ]
    .iter()
    .enumerate()
    {
        let state = dir.path(&format!("state{i}"));
        std::fs::write(&state, bad).unwrap();
        let out = run_binary(&["--listen", "127.0.0.1:0", "--state-file", s(&state)]);
        assert_eq!(out.code, Some(2), "state file {bad:?}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one stderr line: {out:?}");
        assert!(
            lines[0].contains(s(&state)) && lines[0].contains("corrupt"),
            "message names the file and says it is corrupt: {out:?}"
        );
        assert_eq!(
            std::fs::read(&state).unwrap(),
            *bad,
            "a corrupt state file must be left as it is"
        );
    }
    // A directory where the file should be: unreadable, exit 2.
    let d = dir.path("a-directory");
    std::fs::create_dir_all(&d).unwrap();
    let out = run_binary(&["--listen", "127.0.0.1:0", "--state-file", s(&d)]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

#[test]
fn startup_failures_of_state_and_auth_files_do_not_claim_a_listen_error() {
    let dir = Scratch::new("msg");
    let state = dir.path("state");
    std::fs::write(&state, b"garbage\n").unwrap();
    let out = run_binary(&["--listen", "127.0.0.1:0", "--state-file", s(&state)]);
    assert_eq!(out.code, Some(2));
    assert!(
        !out.stderr.contains("cannot listen"),
        "a corrupt state file is not a listen failure: {:?}",
        out.stderr
    );
    let out = run_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--auth-file",
        s(&dir.path("none")),
    ]);
    assert_eq!(out.code, Some(2));
    assert!(
        !out.stderr.contains("cannot listen"),
        "a missing auth file is not a listen failure: {:?}",
        out.stderr
    );
}
