//! Shared helpers of the client's integration tests (`mod common;` in each file).
//!
//! - [`start`] / [`start_with`]: a real lockbox, in-process, on `127.0.0.1:0`.
//! - [`Raw`]: a raw protocol line client (std TCP, with timeouts), to check the
//!   server's view independently of the client under test.
//! - [`Proxy`]: a TCP relay in front of a server that the test can cut, to play a
//!   server that died (every connection closed at once), one that refuses
//!   connections for a while, and a network that silently drops everything.
//! - [`dead_addr`]: an address where nothing listens.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lockbox::config::Config;
use lockbox::server::Server;

/// How long any expected reply or state may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Starts a server with the default configuration; returns its address.
pub fn start() -> String {
    start_with(Config::default())
}

/// Starts a server with `cfg` (listening on `127.0.0.1:0`); it runs until the test
/// process exits.
pub fn start_with(mut cfg: Config) -> String {
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = Server::bind(cfg).expect("Server::bind(127.0.0.1:0)");
    let addr = server.local_addr();
    std::thread::spawn(move || server.run().expect("server.run"));
    addr.to_string()
}

/// A raw native-protocol client for checking the server's view.
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    n: u64,
}

impl Raw {
    /// Connects to `addr`.
    pub fn connect(addr: &str) -> Raw {
        let s = TcpStream::connect(addr).expect("raw connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        Raw {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            n: 0,
        }
    }

    /// Sends `line` and returns the next reply line.
    pub fn req(&mut self, line: &str) -> String {
        self.send(line);
        self.recv()
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Reads one line (panics after [`PATIENCE`]).
    pub fn recv(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_line(&mut s).expect("raw read");
        assert!(s.ends_with('\n'), "connection closed: {s:?}");
        s.trim_end().to_string()
    }

    /// `LOCK` that must be granted at once; returns the token.
    pub fn lock(&mut self, name: &str) -> u64 {
        self.n += 1;
        let id = format!("r{}", self.n);
        let reply = self.req(&format!("{id} LOCK {name} wait=0"));
        let tok = reply
            .strip_prefix(&format!("{id} OK "))
            .unwrap_or_else(|| panic!("raw LOCK {name}: {reply}"));
        tok.parse().unwrap()
    }

    /// `UNLOCK` that must succeed.
    pub fn unlock(&mut self, name: &str) {
        let reply = self.req(&format!("u UNLOCK {name}"));
        assert_eq!(reply, "u OK", "raw UNLOCK {name}");
    }

    /// What follows `OK ` in `INSPECT <name>`.
    pub fn inspect(&mut self, name: &str) -> String {
        let reply = self.req(&format!("i INSPECT {name}"));
        reply
            .strip_prefix("i OK ")
            .unwrap_or_else(|| panic!("INSPECT: {reply}"))
            .to_string()
    }

    /// `STATS` value of `key`.
    pub fn stat(&mut self, key: &str) -> u64 {
        self.send("s STATS");
        let mut found = None;
        loop {
            let l = self.recv();
            if l.starts_with("s END") {
                break;
            }
            let w: Vec<&str> = l.split(' ').collect();
            if w[2] == key {
                found = Some(w[3].parse().unwrap());
            }
        }
        found.unwrap_or_else(|| panic!("no stat {key}"))
    }
}

/// Polls `f` until true, at most [`PATIENCE`].
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for: {what}");
}

/// An address on 127.0.0.1 where nothing listens (a port just freed): connecting is
/// refused.
pub fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A TCP relay to a server. [`Proxy::kill`] closes every relayed connection at once
/// (what clients see when the server dies); [`Proxy::refuse`] makes it close new
/// connections at once; [`Proxy::freeze`] silently drops every byte in both
/// directions without closing anything (a network partition).
pub struct Proxy {
    /// The address clients connect to.
    pub addr: String,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    refusing: Arc<AtomicBool>,
    /// Drop what clients send.
    frozen_up: Arc<AtomicBool>,
    /// Drop what the server sends.
    frozen_down: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts a relay to `upstream` on `127.0.0.1:0`.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let frozen_up = Arc::new(AtomicBool::new(false));
        let frozen_down = Arc::new(AtomicBool::new(false));
        let (c2, r2, fu, fd, up) = (
            conns.clone(),
            refusing.clone(),
            frozen_up.clone(),
            frozen_down.clone(),
            upstream.to_string(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if r2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut c = c2.lock().unwrap();
                    c.push(client.try_clone().unwrap());
                    c.push(server.try_clone().unwrap());
                }
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    fu.clone(),
                );
                pipe(server, client, fd.clone());
            }
        });
        Proxy {
            addr,
            conns,
            refusing,
            frozen_up,
            frozen_down,
        }
    }

    /// Closes every relayed connection (both sides) now.
    pub fn kill(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// While true, new connections are closed as soon as they are accepted.
    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    /// Drops everything relayed from now on, in both directions, without closing.
    pub fn freeze(&self) {
        self.frozen_up.store(true, Ordering::SeqCst);
        self.frozen_down.store(true, Ordering::SeqCst);
    }

    /// Drops what clients send from now on; the server's replies still get through.
    pub fn freeze_upstream(&self) {
        self.frozen_up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if frozen.load(Ordering::SeqCst) {
                        continue;
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        // A frozen network closes nothing either.
        if !frozen.load(Ordering::SeqCst) {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        }
    });
}
