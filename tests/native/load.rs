//! Native protocol under load: deep pipelining, a thousand concurrent connections,
//! large multi-line replies. Every loop is bounded in count and in time.

use crate::common;

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;

/// Writes `bytes` in one `write_all` from another thread, so the test can read replies
/// meanwhile (a server may stop reading while its output to us is backed up).
fn write_in_background(c: &Client, bytes: Vec<u8>) -> JoinHandle<()> {
    let mut w = c.try_clone_stream();
    thread::spawn(move || {
        w.write_all(&bytes).expect("pipelined write");
        w.flush().expect("flush");
    })
}

#[test]
fn ten_thousand_pipelined_requests_in_one_write_are_each_answered_once() {
    const N: usize = 10_000;
    let mut c = Client::connect(start());
    let mut batch = Vec::with_capacity(N * 24);
    for i in 0..N {
        let line = match i % 4 {
            0 => format!("p{i} PING\n"),
            1 => format!("l{i} LOCK k{i}\n"),
            2 => format!("u{i} UNLOCK k{}\n", i - 1),
            _ => format!("i{i} INSPECT k{}\n", i - 2),
        };
        batch.extend_from_slice(line.as_bytes());
    }
    let writer = write_in_background(&c, batch);
    let mut seen = vec![false; N];
    let mut last_token = 0u64;
    for _ in 0..N {
        let line = c.recv();
        let id = line.split(' ').next().unwrap_or("").to_string();
        let i: usize = id
            .get(1..)
            .and_then(|s| s.parse().ok())
            .filter(|&i: &usize| i < N)
            .unwrap_or_else(|| panic!("reply with an id never sent: {line:?}"));
        assert!(!seen[i], "request {id} answered twice: {line:?}");
        seen[i] = true;
        match (i % 4, &id[..1]) {
            (0, "p") => assert_eq!(line, format!("{id} PONG")),
            (1, "l") => {
                let t = ok_token(&line, &id);
                assert!(t > last_token, "tokens must increase");
                last_token = t;
            }
            (2, "u") => assert_eq!(line, format!("{id} OK")),
            (3, "i") => assert_eq!(line, format!("{id} OK mode=free holders=0 waiters=0")),
            _ => panic!("reply with an id never sent: {line:?}"),
        }
    }
    writer.join().expect("writer thread");
    c.expect_silence(100);
    assert!(seen.iter().all(|&s| s));
    let s = c.stats();
    assert_eq!(s["cmd_ping"], (N / 4) as u64);
    assert_eq!(s["grants_total"], (N / 4) as u64);
    assert_eq!(s["holds"], 0);
}

/// A one-shot gate that threads block on (no busy polling by a thousand threads).
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            open: Mutex::new(false),
            cv: Condvar::new(),
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Blocks until opened; panics at `deadline`.
    fn wait(&self, what: &str, deadline: Instant) {
        let g = self.open.lock().unwrap();
        let left = deadline.saturating_duration_since(Instant::now());
        let (g, _) = self.cv.wait_timeout_while(g, left, |open| !*open).unwrap();
        assert!(*g, "timed out waiting for {what}");
    }
}

/// State shared by the thousand-connection test's threads.
struct Shared {
    connected: AtomicUsize,
    go: Gate,
    done: AtomicUsize,
    release: Gate,
    in_critical: AtomicBool,
}

/// Polls (1 ms sleeps, one thread only) until `f` holds, or panics at `deadline`.
fn wait_for(what: &str, deadline: Instant, f: impl Fn() -> bool) {
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn thousand_connections(addr: SocketAddr, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(45);
    let sh = Arc::new(Shared {
        connected: AtomicUsize::new(0),
        go: Gate::new(),
        done: AtomicUsize::new(0),
        release: Gate::new(),
        in_critical: AtomicBool::new(false),
    });
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let sh = sh.clone();
        let h = thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut c = Client::connect(addr);
                // The server has accepted and served this connection.
                c.sync();
                sh.connected.fetch_add(1, SeqCst);
                sh.go.wait("go", deadline);
                let id = format!("c{i}");
                c.send(&format!("{id} LOCK hot wait=40000"));
                let reply = c
                    .recv_within(deadline.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|| panic!("{id}: no grant"));
                let t = ok_token(&reply, &id);
                assert!(
                    !sh.in_critical.swap(true, SeqCst),
                    "two connections hold the exclusive lock at once"
                );
                sh.in_critical.store(false, SeqCst);
                c.unlock("u", &format!("hot {t}"));
                sh.done.fetch_add(1, SeqCst);
                // Keep the connection open until the main thread has looked.
                sh.release.wait("release", deadline);
                t
            })
            .expect("spawn client thread");
        handles.push(h);
    }
    let mut obs = Client::connect(addr);
    wait_for("all connected", deadline, || sh.connected.load(SeqCst) == n);
    let s = obs.stats();
    assert_eq!(s["connections"], n as u64 + 1, "all open at once");
    sh.go.open();
    wait_for("all done", deadline, || sh.done.load(SeqCst) == n);
    let s = obs.stats();
    assert_eq!(s["grants_total"], n as u64);
    assert_eq!(s["holds"], 0);
    assert_eq!(s["waiters"], 0);
    assert_eq!(s["connections"], n as u64 + 1);
    sh.release.open();
    let mut tokens = HashSet::new();
    for h in handles {
        let t = h.join().expect("client thread panicked");
        assert!(tokens.insert(t), "token {t} granted twice");
    }
    eventually("all client connections closed", || {
        obs.stats()["connections"] == 1
    });
    assert_eq!(obs.inspect("hot"), "mode=free holders=0 waiters=0");
}

#[test]
fn a_thousand_concurrent_connections_each_lock_and_unlock() {
    const N: usize = 1000;
    // In process, each connection costs two descriptors (client and server side).
    match fd_soft_limit() {
        Some(l) if l >= (2 * N + 200) as u64 => thousand_connections(start(), N),
        Some(l) if l >= (N + 100) as u64 => {
            // Not enough for both ends in one process: the server in a child process.
            let p = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
            thousand_connections(p.addr, N);
        }
        other => panic!("open-files soft limit {other:?} is too low for {N} connections"),
    }
}

#[test]
fn thousands_of_locks_listed_in_order() {
    const N: usize = 3000;
    let mut c = Client::connect(start());
    let mut batch = Vec::new();
    // Insert in a scrambled order; LIST must sort by name.
    for i in 0..N {
        let k = (i * 7919) % N;
        batch.extend_from_slice(format!("l LOCK key{k:05}\n").as_bytes());
    }
    let writer = write_in_background(&c, batch);
    for _ in 0..N {
        ok_token(&c.recv(), "l");
    }
    writer.join().expect("writer thread");
    let rows = c.req_rows("all LIST");
    assert_eq!(rows.len(), N);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row,
            &format!("all ITEM key{i:05} mode=exclusive holders=1 waiters=0")
        );
    }
    let rows = c.req_rows("some LIST key012");
    assert_eq!(rows.len(), 100);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row,
            &format!("some ITEM key012{i:02} mode=exclusive holders=1 waiters=0")
        );
    }
    assert_eq!(c.req("r RESET"), format!("r OK {N} 0"));
    assert!(c.req_rows("none LIST").is_empty());
}
