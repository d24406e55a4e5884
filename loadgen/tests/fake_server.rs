//! End-to-end tests of the load engine and `--verify` against tiny in-process fake
//! servers speaking a subset of the lockbox protocol (LOCK, SHARE max=, UNLOCK, PING):
//! a correct one, one that ignores mutual exclusion, and one that answers twice.
//! The real server is tested by the root package.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Correct,
    NoExclusion,
    DoubleReply,
    /// Closes every connection after its 5th request.
    HangUp,
    /// Answers loadgen's connection check, then never again.
    Silent,
    /// Refuses every connection as a full server does.
    Refuse,
}

struct Waiter {
    conn: u64,
    id: String,
    shared: bool,
    max: Option<u64>,
}

#[derive(Default)]
struct LockState {
    /// (conn, token, shared)
    holders: Vec<(u64, u64, bool)>,
    queue: VecDeque<Waiter>,
}

struct Inner {
    next_token: u64,
    locks: HashMap<String, LockState>,
    writers: HashMap<u64, TcpStream>,
}

impl Inner {
    fn send(&mut self, conn: u64, line: &str) {
        if let Some(w) = self.writers.get_mut(&conn) {
            let _ = w.write_all(line.as_bytes());
        }
    }

    fn grant_waiters(&mut self, name: &str) {
        let mut out = Vec::new();
        if let Some(l) = self.locks.get_mut(name) {
            while let Some(w) = l.queue.front() {
                let shared_count = l.holders.len() as u64;
                let ok = if w.shared {
                    l.holders.iter().all(|h| h.2) && w.max.is_none_or(|m| shared_count < m)
                } else {
                    l.holders.is_empty()
                };
                if !ok {
                    break;
                }
                let w = l.queue.pop_front().unwrap();
                self.next_token += 1;
                let token = self.next_token;
                l.holders.push((w.conn, token, w.shared));
                let line = if w.shared {
                    format!("{} OK {} {}\n", w.id, token, l.holders.len())
                } else {
                    format!("{} OK {}\n", w.id, token)
                };
                out.push((w.conn, line));
            }
        }
        for (c, line) in out {
            self.send(c, &line);
        }
    }
}

/// Start a fake server on an ephemeral loopback port; returns its address.
fn start(flavor: Flavor) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let inner = Arc::new(Mutex::new(Inner {
        next_token: 1_000,
        locks: HashMap::new(),
        writers: HashMap::new(),
    }));
    thread::spawn(move || {
        for (conn, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { break };
            let inner = Arc::clone(&inner);
            thread::spawn(move || serve(conn as u64, stream, inner, flavor));
        }
    });
    addr
}

fn serve(conn: u64, mut stream: TcpStream, inner: Arc<Mutex<Inner>>, flavor: Flavor) {
    stream.set_nodelay(true).unwrap();
    if flavor == Flavor::Refuse {
        let _ = stream.write_all(b"* ERR limit too many connections\n");
        return;
    }
    inner
        .lock()
        .unwrap()
        .writers
        .insert(conn, stream.try_clone().unwrap());
    let reader = BufReader::new(stream);
    for (n, line) in reader.lines().enumerate() {
        let Ok(line) = line else { break };
        if flavor == Flavor::HangUp && n == 5 {
            if let Some(w) = inner.lock().unwrap().writers.get(&conn) {
                let _ = w.shutdown(std::net::Shutdown::Both);
            }
            break;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 2 {
            continue;
        }
        if flavor == Flavor::Silent && parts[0] != "lg-hello" {
            continue;
        }
        let (id, verb) = (parts[0], parts[1].to_ascii_uppercase());
        let mut g = inner.lock().unwrap();
        match verb.as_str() {
            "PING" => {
                g.send(conn, &format!("{id} PONG\n"));
                if flavor == Flavor::DoubleReply {
                    g.send(conn, &format!("{id} PONG\n"));
                }
            }
            "LOCK" | "SHARE" => {
                let name = parts[2].to_string();
                let shared = verb == "SHARE";
                let max = parts[3..]
                    .iter()
                    .find_map(|o| o.strip_prefix("max="))
                    .map(|m| m.parse().unwrap());
                if flavor == Flavor::NoExclusion {
                    g.next_token += 1;
                    let t = g.next_token;
                    g.locks
                        .entry(name)
                        .or_default()
                        .holders
                        .push((conn, t, shared));
                    g.send(conn, &format!("{id} OK {t}\n"));
                } else {
                    g.locks
                        .entry(name.clone())
                        .or_default()
                        .queue
                        .push_back(Waiter {
                            conn,
                            id: id.to_string(),
                            shared,
                            max,
                        });
                    g.grant_waiters(&name);
                }
            }
            "UNLOCK" => {
                let name = parts[2];
                let token: u64 = parts[3].parse().unwrap();
                let found = g.locks.get_mut(name).and_then(|l| {
                    let i = l.holders.iter().position(|h| h.0 == conn && h.1 == token)?;
                    l.holders.remove(i);
                    Some(())
                });
                if found.is_some() {
                    g.send(conn, &format!("{id} OK\n"));
                    g.grant_waiters(name);
                } else {
                    g.send(conn, &format!("{id} ERR not_held not held\n"));
                }
            }
            _ => g.send(conn, &format!("{id} ERR unknown_command what\n")),
        }
    }
    // Disconnect: release holds and waits of this connection.
    let mut g = inner.lock().unwrap();
    g.writers.remove(&conn);
    let names: Vec<String> = g.locks.keys().cloned().collect();
    for n in names {
        if let Some(l) = g.locks.get_mut(&n) {
            l.holders.retain(|h| h.0 != conn);
            l.queue.retain(|w| w.conn != conn);
        }
        g.grant_waiters(&n);
    }
}

fn opts(args: &str) -> loadgen::Options {
    let v: Vec<String> = args.split_whitespace().map(String::from).collect();
    loadgen::parse_args(&v).unwrap()
}

#[test]
fn verify_contended_lock_against_correct_server() {
    let addr = start(Flavor::Correct);
    let o = opts(&format!(
        "--server {addr} --clients 8 --pipeline 4 --threads 2 --locks 3 --work-ms 1 \
         --duration 0.7 --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert_eq!(r.violations, 0, "{r}");
    assert_eq!(r.errors, 0, "{r}");
    assert_eq!(r.unanswered, 0, "{r}");
    assert!(r.cycles > 50, "{r}");
    assert_eq!(r.acquire.count, r.cycles);
    assert_eq!(r.release.count, r.cycles);
    let j = r.to_json();
    assert!(j.contains("\"violations\":0"));
}

#[test]
fn verify_shared_max_against_correct_server() {
    let addr = start(Flavor::Correct);
    let o = opts(&format!(
        "--server {addr} --mode share --max 2 --clients 6 --pipeline 2 --locks 2 \
         --work-ms 2 --duration 0.5 --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert_eq!(r.violations, 0, "{r}");
    assert_eq!(r.errors, 0, "{r}");
    assert!(r.cycles > 10, "{r}");
}

#[test]
fn verify_catches_missing_exclusion() {
    let addr = start(Flavor::NoExclusion);
    let o = opts(&format!(
        "--server {addr} --clients 4 --locks 1 --work-ms 5 --duration 0.4 --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert!(r.violations > 0, "{r}");
    assert!(
        r.violation_samples
            .iter()
            .any(|v| v.contains("exclusive overlap on lg:0")),
        "{r}"
    );
}

#[test]
fn verify_catches_second_reply() {
    let addr = start(Flavor::DoubleReply);
    let o = opts(&format!(
        "--server {addr} --mode ping --clients 2 --cycles 20 --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert!(r.violations > 0, "{r}");
    assert!(
        r.violation_samples
            .iter()
            .any(|v| v.contains("second reply")),
        "{r}"
    );
}

#[test]
fn cycles_limit_is_exact_and_ping_works() {
    let addr = start(Flavor::Correct);
    let o = opts(&format!(
        "--server {addr} --mode ping --clients 5 --pipeline 3 --threads 2 --cycles 777 --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert_eq!(r.cycles, 777, "{r}");
    assert_eq!(r.errors, 0, "{r}");
    assert_eq!(r.acquire.count, 777);
}

#[test]
fn several_servers_share_the_names() {
    let a = start(Flavor::Correct);
    let b = start(Flavor::Correct);
    let o = opts(&format!(
        "--server {a},{b} --clients 4 --pipeline 2 --locks 1000 --cycles 2000 --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert_eq!(r.violations, 0, "{r}");
    assert_eq!(r.cycles, 2000);
    assert_eq!(r.per_server_cycles.iter().sum::<u64>(), 2000);
    assert!(r.per_server_cycles.iter().all(|&c| c > 600), "{r}");
}

#[test]
fn refused_connection_is_a_run_error() {
    // Bind then drop to get a port that is (almost certainly) closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = opts(&format!("--server 127.0.0.1:{port} --duration 0.2 --quiet"));
    match loadgen::run(&o) {
        Err(loadgen::RunError::Connect(m)) => assert!(m.contains(&port.to_string()), "{m}"),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn lost_connections_are_reported() {
    let addr = start(Flavor::HangUp);
    let o = opts(&format!(
        "--server {addr} --clients 3 --locks 10 --duration 2 --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert_eq!(r.lost_clients, 3, "{r}");
    assert!(r.errors >= 3, "{r}");
    assert_eq!(r.violations, 0, "{r}");
    // Every client is gone: the run ends early instead of waiting out the duration.
    assert!(r.total_s < 1.5, "{r}");
    assert!(r.error_samples.iter().any(|e| e.contains("closed")), "{r}");
}

#[test]
fn silent_server_is_bounded_by_the_drain() {
    let addr = start(Flavor::Silent);
    let o = opts(&format!(
        "--server {addr} --clients 3 --pipeline 2 --duration 0.3 --drain-s 0.3 --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert_eq!(r.unanswered, 6, "{r}");
    assert_eq!(r.cycles, 0, "{r}");
    assert!(!r.hit_timeout, "{r}");
    assert!(r.total_s < 2.0, "{r}");
}

#[test]
fn hard_timeout_bounds_the_run() {
    let addr = start(Flavor::Silent);
    let o = opts(&format!(
        "--server {addr} --clients 2 --duration 30 --timeout-s 0.5 --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert!(r.hit_timeout, "{r}");
    assert_eq!(r.unanswered, 2, "{r}");
    assert!(r.total_s < 2.0, "{r}");
}

#[test]
fn refusing_server_is_a_clear_run_error() {
    let addr = start(Flavor::Refuse);
    let o = opts(&format!(
        "--server {addr} --clients 2 --duration 0.2 --quiet"
    ));
    match loadgen::run(&o) {
        Err(loadgen::RunError::Connect(m)) => assert!(m.contains("ERR limit"), "{m}"),
        other => panic!("expected a connect error, got {other:?}"),
    }
}
