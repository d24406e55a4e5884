//! End-to-end tests of the load engine and `--verify` against tiny in-process fake
//! servers speaking a subset of the lockbox protocol (LOCK and SHARE with max=, wait=
//! and hold=, UNLOCK, EXTEND, CANCEL, RESET, INSPECT, PING): a correct one, and ones
//! that break one guarantee each on purpose (no mutual exclusion, second replies, and
//! under `--chaos`: granting a cancelled wait, keeping a closed connection's holds,
//! reusing a token, answering EXTEND twice; and one that strips the zeros `--id-len`
//! pads ids with), each of which `--verify` must catch.
//! The real server is tested by the root package.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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
    /// CANCEL answers `CANCELLED` and `OK 1` but leaves the wait queued, to be granted.
    GrantsCancelled,
    /// A closed connection's holds stay (its waits go).
    KeepsClosedHolds,
    /// Every 7th grant gets the previous grant's token again.
    ReusesToken,
    /// EXTEND is answered twice.
    DoubleExtend,
    /// PING is answered with the request id's leading zeros stripped.
    TrimsIds,
}

struct Waiter {
    conn: u64,
    id: String,
    shared: bool,
    max: Option<u64>,
    hold: Option<u64>,
    deadline: Option<Instant>,
}

struct Hold {
    conn: u64,
    token: u64,
    shared: bool,
    id: String,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct LockState {
    holders: Vec<Hold>,
    queue: VecDeque<Waiter>,
}

struct Inner {
    flavor: Flavor,
    next_token: u64,
    grants: u64,
    locks: HashMap<String, LockState>,
    writers: HashMap<u64, TcpStream>,
    /// The length of every request id seen (and of every `CANCEL`'s argument), apart
    /// from loadgen's connection check.
    id_lens: BTreeSet<usize>,
}

impl Inner {
    fn send(&mut self, conn: u64, line: &str) {
        if let Some(w) = self.writers.get_mut(&conn) {
            let _ = w.write_all(line.as_bytes());
        }
    }

    /// The next grant's token (the `ReusesToken` flavor repeats one now and then).
    fn token(&mut self) -> u64 {
        self.grants += 1;
        if !(self.flavor == Flavor::ReusesToken && self.grants.is_multiple_of(7)) {
            self.next_token += 1;
        }
        self.next_token
    }

    fn grant_waiters(&mut self, name: &str) {
        let mut out = Vec::new();
        let Some(mut l) = self.locks.remove(name) else {
            return;
        };
        while let Some(w) = l.queue.front() {
            let shared_count = l.holders.len() as u64;
            let ok = if w.shared {
                l.holders.iter().all(|h| h.shared) && w.max.is_none_or(|m| shared_count < m)
            } else {
                l.holders.is_empty()
            };
            if !ok {
                break;
            }
            let w = l.queue.pop_front().unwrap();
            let token = self.token();
            l.holders.push(Hold {
                conn: w.conn,
                token,
                shared: w.shared,
                id: w.id.clone(),
                deadline: w.hold.map(|h| Instant::now() + Duration::from_millis(h)),
            });
            let line = if w.shared {
                format!("{} OK {} {}\n", w.id, token, l.holders.len())
            } else {
                format!("{} OK {}\n", w.id, token)
            };
            out.push((w.conn, line));
        }
        if !l.holders.is_empty() || !l.queue.is_empty() {
            self.locks.insert(name.to_string(), l);
        }
        for (c, line) in out {
            self.send(c, &line);
        }
    }

    /// Fire due deadlines: `TIMEOUT` for waits, `EXPIRED` for holds.
    fn tick(&mut self, now: Instant) {
        let names: Vec<String> = self.locks.keys().cloned().collect();
        for n in names {
            let mut out = Vec::new();
            if let Some(l) = self.locks.get_mut(&n) {
                l.queue.retain(|w| {
                    let due = w.deadline.is_some_and(|d| d <= now);
                    if due {
                        out.push((w.conn, format!("{} TIMEOUT\n", w.id)));
                    }
                    !due
                });
                l.holders.retain(|h| {
                    let due = h.deadline.is_some_and(|d| d <= now);
                    if due {
                        out.push((h.conn, format!("{} EXPIRED {}\n", h.id, h.token)));
                    }
                    !due
                });
            }
            for (c, line) in out {
                self.send(c, &line);
            }
            self.grant_waiters(&n);
        }
    }

    /// End `conn`'s waits with id `rid` (all of them when `None`); returns their ids.
    fn cancel(&mut self, conn: u64, rid: Option<&str>) -> Vec<String> {
        let mut ended = Vec::new();
        let names: Vec<String> = self.locks.keys().cloned().collect();
        for n in &names {
            if let Some(l) = self.locks.get_mut(n) {
                l.queue.retain(|w| {
                    let hit = w.conn == conn && rid.is_none_or(|r| r == w.id);
                    if hit {
                        ended.push(w.id.clone());
                    }
                    !hit
                });
            }
        }
        for n in &names {
            self.grant_waiters(n);
        }
        ended
    }
}

/// Start a fake server on an ephemeral loopback port; returns its address.
fn start(flavor: Flavor) -> String {
    start_shared(flavor).0
}

/// [`start`], also returning the server's state, to look at what it saw.
fn start_shared(flavor: Flavor) -> (String, Arc<Mutex<Inner>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let inner = Arc::new(Mutex::new(Inner {
        flavor,
        next_token: 1_000,
        grants: 0,
        locks: HashMap::new(),
        writers: HashMap::new(),
        id_lens: BTreeSet::new(),
    }));
    let shared = Arc::clone(&inner);
    let ticker = Arc::downgrade(&inner);
    thread::spawn(move || {
        while let Some(inner) = ticker.upgrade() {
            inner.lock().unwrap().tick(Instant::now());
            drop(inner);
            thread::sleep(Duration::from_millis(1));
        }
    });
    thread::spawn(move || {
        for (conn, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { break };
            let inner = Arc::clone(&inner);
            thread::spawn(move || serve(conn as u64, stream, inner, flavor));
        }
    });
    (addr, shared)
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
        if id != "lg-hello" {
            g.id_lens.insert(id.len());
            if verb == "CANCEL" {
                g.id_lens.insert(parts[2].len());
            }
        }
        match verb.as_str() {
            "PING" if flavor == Flavor::TrimsIds => {
                g.send(conn, &format!("{} PONG\n", id.trim_start_matches('0')));
            }
            "PING" => {
                g.send(conn, &format!("{id} PONG\n"));
                if flavor == Flavor::DoubleReply {
                    g.send(conn, &format!("{id} PONG\n"));
                }
            }
            "LOCK" | "SHARE" => {
                let name = parts[2].to_string();
                let shared = verb == "SHARE";
                let opt = |k: &str| {
                    parts[3..]
                        .iter()
                        .find_map(|o| o.strip_prefix(k))
                        .map(|m| m.parse::<u64>().unwrap())
                };
                let (max, wait, hold) = (opt("max="), opt("wait="), opt("hold="));
                if flavor == Flavor::NoExclusion {
                    let t = g.token();
                    g.locks.entry(name).or_default().holders.push(Hold {
                        conn,
                        token: t,
                        shared,
                        id: id.to_string(),
                        deadline: None,
                    });
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
                            hold,
                            deadline: wait.map(|w| Instant::now() + Duration::from_millis(w)),
                        });
                    g.grant_waiters(&name);
                }
            }
            "UNLOCK" => {
                let name = parts[2];
                let token: u64 = parts[3].parse().unwrap();
                let found = g.locks.get_mut(name).and_then(|l| {
                    let i = l
                        .holders
                        .iter()
                        .position(|h| h.conn == conn && h.token == token)?;
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
            "EXTEND" => {
                let (name, token) = (parts[2], parts[3].parse::<u64>().unwrap());
                let ms: u64 = parts[4].strip_prefix("hold=").unwrap().parse().unwrap();
                let hold = g.locks.get_mut(name).and_then(|l| {
                    l.holders
                        .iter_mut()
                        .find(|h| h.conn == conn && h.token == token)
                });
                if let Some(h) = hold {
                    h.deadline = Some(Instant::now() + Duration::from_millis(ms));
                    g.send(conn, &format!("{id} OK\n"));
                    if flavor == Flavor::DoubleExtend {
                        g.send(conn, &format!("{id} OK\n"));
                    }
                } else {
                    g.send(conn, &format!("{id} ERR not_held not held\n"));
                }
            }
            "CANCEL" => {
                let rid = parts[2];
                let ended = if flavor == Flavor::GrantsCancelled {
                    // Claims to cancel, but the wait stays queued.
                    let queued = g
                        .locks
                        .values()
                        .any(|l| l.queue.iter().any(|w| w.conn == conn && w.id == rid));
                    if queued {
                        vec![rid.to_string()]
                    } else {
                        Vec::new()
                    }
                } else {
                    g.cancel(conn, Some(rid))
                };
                for r in &ended {
                    g.send(conn, &format!("{r} CANCELLED\n"));
                }
                if ended.is_empty() {
                    g.send(conn, &format!("{id} ERR not_waiting no wait\n"));
                } else {
                    g.send(conn, &format!("{id} OK {}\n", ended.len()));
                }
            }
            "RESET" => {
                let ended = g.cancel(conn, None);
                for r in &ended {
                    g.send(conn, &format!("{r} CANCELLED\n"));
                }
                let mut released = 0;
                let names: Vec<String> = g.locks.keys().cloned().collect();
                for n in &names {
                    if let Some(l) = g.locks.get_mut(n) {
                        let before = l.holders.len();
                        l.holders.retain(|h| h.conn != conn);
                        released += before - l.holders.len();
                    }
                }
                g.send(conn, &format!("{id} OK {released} {}\n", ended.len()));
                for n in &names {
                    g.grant_waiters(n);
                }
            }
            "INSPECT" => {
                let line = match g.locks.get(parts[2]) {
                    Some(l) if !l.holders.is_empty() && !l.holders[0].shared => format!(
                        "{id} OK mode=exclusive holders=1 waiters={} token={} owner=c{}\n",
                        l.queue.len(),
                        l.holders[0].token,
                        l.holders[0].conn
                    ),
                    Some(l) if !l.holders.is_empty() => format!(
                        "{id} OK mode=shared holders={} waiters={}\n",
                        l.holders.len(),
                        l.queue.len()
                    ),
                    _ => format!("{id} OK mode=free holders=0 waiters=0\n"),
                };
                g.send(conn, &line);
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
            if flavor != Flavor::KeepsClosedHolds {
                l.holders.retain(|h| h.conn != conn);
            }
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

/// A `--chaos` run against `addr`: contended names (`--locks` in `extra`), waits and
/// leases, 30% of the cycles misbehaving.
fn chaos_opts(addr: &str, extra: &str) -> loadgen::Options {
    opts(&format!(
        "--server {addr} --clients 8 --pipeline 2 --threads 2 --work-ms 1 \
         --wait 20 --hold 300 --chaos 0.3 --duration 1.5 --verify --quiet {extra}"
    ))
}

fn checked(r: &loadgen::Report, p: loadgen::Property) -> (u64, u64) {
    let c = r.checks.iter().find(|c| c.property == p).unwrap();
    (c.checked, c.violations)
}

#[test]
fn chaos_against_a_correct_server_is_clean_and_does_everything() {
    let addr = start(Flavor::Correct);
    // Semaphore names are chosen by hash: with seed 1, some of these 16.
    let r = loadgen::run(&chaos_opts(&addr, "--locks 16")).unwrap();
    assert_eq!(r.violations, 0, "{r}");
    assert_eq!((r.errors, r.lost_clients, r.unanswered), (0, 0, 0), "{r}");
    let c = r.chaos.clone().unwrap();
    for (what, n) in c.fields() {
        // Waits are rarely pending when a RESET comes: that one may be 0.
        if what != "reset_cancelled" {
            assert!(n > 0, "no {what} in {r}");
        }
    }
    assert_eq!(c.rate, 0.3);
    for p in loadgen::Property::ALL {
        let (n, bad) = checked(&r, p);
        assert!(n > 0 && bad == 0, "{}: {n}/{bad} in {r}", p.as_str());
    }
    assert_eq!(
        r.checks.iter().map(|c| c.violations).sum::<u64>(),
        r.violations
    );
    let j = r.to_json();
    assert!(j.contains("\"chaos\":{\"rate\":0.3,"), "{j}");
    assert!(j.contains("\"checks\":{\"exclusion\":{\"checked\":"), "{j}");
}

#[test]
fn chaos_share_mode_over_two_servers_is_clean() {
    let a = start(Flavor::Correct);
    let b = start(Flavor::Correct);
    // Names go to servers by rendezvous hashing over addresses with random ports: with
    // 32 names, the chance that one server gets none is 2^-31 (with 6 it was 1 in 32).
    let r = loadgen::run(&chaos_opts(
        &format!("{a},{b}"),
        "--mode share --max 2 --locks 32",
    ))
    .unwrap();
    assert_eq!(r.violations, 0, "{r}");
    assert_eq!((r.errors, r.lost_clients, r.unanswered), (0, 0, 0), "{r}");
    assert!(r.per_server_cycles.iter().all(|&c| c > 0), "{r}");
    assert!(checked(&r, loadgen::Property::SharedMax).0 > 0, "{r}");
}

/// A chaos run against a server broken in one way: the violations found, all of
/// `prop`, with evidence containing `evidence`.
fn caught(flavor: Flavor, prop: loadgen::Property, evidence: &str) -> loadgen::Report {
    let addr = start(flavor);
    let r = loadgen::run(&chaos_opts(&addr, "--locks 4")).unwrap();
    let (_, bad) = checked(&r, prop);
    assert!(bad > 0, "{} not caught: {r}", prop.as_str());
    assert!(
        r.violation_samples.iter().any(|v| v.contains(evidence)),
        "no '{evidence}' in {r}"
    );
    r
}

#[test]
fn chaos_catches_a_granted_cancelled_wait() {
    caught(
        Flavor::GrantsCancelled,
        loadgen::Property::CancelledWaits,
        "grant of a cancelled wait",
    );
}

#[test]
fn chaos_catches_a_hold_kept_after_its_connection_closed() {
    caught(
        Flavor::KeepsClosedHolds,
        loadgen::Property::EndedHolds,
        "hold kept after its connection closed",
    );
}

#[test]
fn chaos_catches_a_reused_token() {
    caught(
        Flavor::ReusesToken,
        loadgen::Property::Tokens,
        "token reused or going back",
    );
}

#[test]
fn chaos_catches_a_second_reply() {
    let r = caught(
        Flavor::DoubleExtend,
        loadgen::Property::ExactlyOnce,
        "second reply",
    );
    // Only that: the other properties hold on this server.
    assert_eq!(checked(&r, loadgen::Property::Exclusion).1, 0, "{r}");
}

#[test]
fn the_binary_reports_chaos_violations_and_exits_1() {
    let addr = start(Flavor::GrantsCancelled);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--server",
            &addr,
            "--clients",
            "8",
            "--pipeline",
            "2",
            "--locks",
            "2",
            "--work",
            "1",
            "--wait",
            "20",
            "--chaos",
            "0.3",
            "--duration",
            "1",
            "--verify",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("violation(s), evidence above"), "{stderr}");
    assert!(
        stdout.contains("violation_samples   grant of a cancelled wait"),
        "{stdout}"
    );
    assert!(stdout.contains("cancelled_waits "), "{stdout}");
}

#[test]
fn padded_ids_are_exactly_that_long_everywhere_under_chaos() {
    for len in [23, 32] {
        let (addr, state) = start_shared(Flavor::Correct);
        let r = loadgen::run(&chaos_opts(&addr, &format!("--locks 16 --id-len {len}"))).unwrap();
        assert_eq!(r.violations, 0, "{r}");
        assert_eq!((r.errors, r.lost_clients, r.unanswered), (0, 0, 0), "{r}");
        assert!(r.chaos.as_ref().unwrap().cancel > 0, "no CANCEL sent: {r}");
        assert_eq!(r.id_len, Some(len));
        let lens = state.lock().unwrap().id_lens.clone();
        assert_eq!(lens, BTreeSet::from([len]), "id lengths the server saw");
    }
}

#[test]
fn a_reply_with_the_padding_stripped_is_a_reply_to_no_request() {
    let addr = start(Flavor::TrimsIds);
    let o = opts(&format!(
        "--server {addr} --mode ping --clients 2 --id-len 8 --duration 0.3 --drain 0.2 \
         --verify --quiet"
    ));
    let r = loadgen::run(&o).unwrap();
    assert!(r.violations > 0, "{r}");
    assert!(
        r.violation_samples
            .iter()
            .any(|v| v.contains("id loadgen never sent")),
        "{r}"
    );
    assert_eq!(r.cycles, 0, "{r}");
}
