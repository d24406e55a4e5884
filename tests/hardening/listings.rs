//! Listings and replies that other clients can grow, against a real server over TCP.
//!
//! - A reply whose size others decide (officer's `timed_out` / `queue_maxed` queue) is
//!   capped, so a client that reads is never disconnected by `--output-limit` (and never
//!   loses its locks) because others crowded a lock.
//! - Every listing (native `LIST` and `CLIENTS`, lockd `d`, `dump` and `who`, officer
//!   `locks` and `connections`, live-mutex `ls`) arrives whole to a client that reads
//!   slowly, however much bigger than `--output-limit` it is: it is written a batch at a
//!   time as the client reads; and in its order (all but `CLIENTS`), though its rows
//!   are far over the sort buffer the limit allows, so it takes many passes.
//! - While one client lists a big table, other clients get their turns between the
//!   listing's batches.

use crate::common;

use common::{start_with_listeners, Client, Listeners, REPLY_TIMEOUT};
use lockbox::proto::Protocol::{LiveMutex, Lockd, Officer};
use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// A server with every listener and this `--output-high-water` and `--output-limit`.
fn start_small(high_water: usize, limit: usize) -> Listeners {
    start_with_listeners(&[Lockd, Officer, LiveMutex], |cfg| {
        cfg.output_high_water = high_water;
        cfg.output_limit = limit;
    })
}

/// Output limits of the listing tests: far below each listing (and the kernel's
/// buffers are kept from hiding that by asking for [`FLOOD_BYTES`] at once), big
/// enough that the transfer is quick.
const HIGH_WATER: usize = 64 << 10;
const LIMIT: usize = 128 << 10;

/// Takes `n` native locks named `lst-NNNNNN-padding` on one connection (kept open),
/// in a scrambled order: the names in the order taken (grant order).
fn fill(addr: SocketAddr, n: usize) -> (Client, Vec<String>) {
    let mut c = Client::connect(addr);
    let names: Vec<String> = (0..n)
        .map(|i| format!("lst-{:06}-padding", (i * 7919) % n))
        .collect();
    let mut wire = Vec::new();
    for name in &names {
        wire.extend_from_slice(format!("f LOCK {name}\n").as_bytes());
    }
    let mut w = c.try_clone_stream();
    let writer = thread::spawn(move || w.write_all(&wire).expect("fill"));
    for _ in 0..n {
        let line = c.recv();
        assert!(line.starts_with("f OK "), "{line}");
    }
    writer.join().unwrap();
    (c, names)
}

/// A connection for a reader that reads late: its receive buffer starts small, so
/// while it does not read the kernel holds little of what the server writes and the
/// server's own output buffer is what backs up. [`slow_flood`] enlarges it once it
/// reads (a tiny window makes a transfer crawl).
fn slow_reader(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect_timeout(&addr.into(), REPLY_TIMEOUT).unwrap();
    let s: TcpStream = s.into();
    s.set_nodelay(true).unwrap();
    s
}

/// What each slow reader below asks for in all: more than the kernel's socket buffers
/// hold while it does not read, so a server that wrote each reply whole would pass
/// `--output-limit` with it.
const FLOOD_BYTES: usize = 8 << 20;

/// How long a slow reader waits before it reads: time for a server that wrote each
/// reply whole to fill the kernel's buffers.
const READ_AFTER: Duration = Duration::from_millis(500);

/// How many times to send a request whose reply is about `reply_bytes` long.
fn times_for(reply_bytes: usize) -> usize {
    FLOOD_BYTES / reply_bytes + 1
}

/// Sends `request` `times` times in one write on `s`, waits (the server's output backs
/// up meanwhile), then reads slowly, in small pieces, until `ends_reply` (called with
/// each complete line) has said `times` times that a line ends a reply. Panics if the
/// server closes the connection first.
fn slow_flood(
    mut s: TcpStream,
    request: &str,
    times: usize,
    mut ends_reply: impl FnMut(&[u8]) -> bool,
) -> Vec<u8> {
    s.write_all(request.repeat(times).as_bytes()).unwrap();
    thread::sleep(READ_AFTER);
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(1 << 20)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let (mut reads, mut replies, mut line_start) = (0u32, 0, 0);
    // Bytes already searched for a line end (a JSON line is long).
    let mut scanned = 0;
    s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    while replies < times {
        assert!(Instant::now() < deadline, "listings incomplete after 60 s");
        match s.read(&mut chunk) {
            Ok(0) => panic!(
                "server closed the connection after {} bytes of {times} x {request:?}",
                got.len()
            ),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
        while let Some(nl) = got[scanned..].iter().position(|&b| b == b'\n') {
            let end = scanned + nl;
            if ends_reply(&got[line_start..end]) {
                replies += 1;
            }
            line_start = end + 1;
            scanned = line_start;
        }
        scanned = got.len();
        reads += 1;
        if reads % 256 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(got.len() > FLOOD_BYTES, "only {} bytes", got.len());
    got
}

/// A line ends a reply every `n` lines (lockd's multi-line replies have no end line).
fn every(n: usize) -> impl FnMut(&[u8]) -> bool {
    let mut seen = 0;
    move |_| {
        seen += 1;
        seen % n == 0
    }
}

/// A line ends a reply when it is `<id> END ...`.
fn end_of(id: &str) -> impl FnMut(&[u8]) -> bool {
    let end = format!("{id} END ").into_bytes();
    move |line| line.starts_with(&end)
}

/// Every line ends a reply (one-line JSON replies).
fn any_line(_: &[u8]) -> bool {
    true
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .expect("UTF-8 reply")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Native rows up to each `<id> END <n>`: every reply lists `want` (its first field
/// after `<id> <WORD> `) exactly once, and END counts its rows; `sorted`: in order.
fn check_native(what: &str, got: &[u8], id: &str, word: &str, want: &[String], sorted: bool) {
    let mut rows = Vec::new();
    let mut replies = 0;
    for line in lines(got) {
        if let Some(n) = line.strip_prefix(&format!("{id} END ")) {
            assert_eq!(n.parse::<usize>().unwrap(), rows.len(), "{what}: END count");
            if sorted {
                assert_in_order(what, &rows);
            }
            assert_once_each(what, std::mem::take(&mut rows), want);
            replies += 1;
        } else {
            let row = line.strip_prefix(&format!("{id} {word} ")).expect(&line);
            rows.push(row.split(' ').next().unwrap().to_string());
        }
    }
    assert!(replies > 0 && rows.is_empty());
}

/// Rows without an end (lockd `d`, `who`): `times` replies in a row, each exactly
/// `want`, in that order.
fn check_times(what: &str, got: Vec<String>, want: &[String], times: usize) {
    assert_eq!(got.len(), want.len() * times, "{what}: rows");
    for reply in got.chunks(want.len()) {
        assert!(reply == want, "{what}: a reply not in order");
    }
    let mut counts = std::collections::HashMap::new();
    for g in got {
        *counts.entry(g).or_insert(0usize) += 1;
    }
    assert_eq!(counts.len(), want.len(), "{what}: distinct items");
    for w in want {
        assert_eq!(counts.get(w), Some(&times), "{what}: {w}");
    }
}

/// `items` strictly increasing.
fn assert_in_order(what: &str, items: &[String]) {
    if let Some(w) = items.windows(2).find(|w| w[0] >= w[1]) {
        panic!("{what}: {:?} before {:?}", w[0], w[1]);
    }
}

/// Each item of `got` exactly once, and exactly the items of `want`.
fn assert_once_each(what: &str, got: Vec<String>, want: &[String]) {
    let set: HashSet<&String> = got.iter().collect();
    assert_eq!(set.len(), got.len(), "{what}: an item listed twice");
    let want: HashSet<&String> = want.iter().collect();
    assert!(
        set == want,
        "{what}: {} items, {} expected",
        set.len(),
        want.len()
    );
}

/// One-line JSON replies: each must start with `head` and end with `tail`, and list
/// `want` exactly once (counted in the raw text too, where a repeated key would show)
/// and in order (in the raw text: the parsed object forgets it); `items` takes the
/// listed names from the parsed line.
fn check_json(
    what: &str,
    got: &[u8],
    head: &str,
    tail: &str,
    want: &[String],
    items: impl Fn(&serde_json::Value) -> Vec<String>,
) {
    for line in lines(got) {
        assert!(
            line.starts_with(head),
            "{what}: {}",
            &line[..60.min(line.len())]
        );
        assert!(
            line.ends_with(tail),
            "{what}: ...{}",
            &line[line.len() - 60..]
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON reply");
        let raw = want.first().map_or(0, |w| {
            let stem = &w[..w.len().min(4)];
            line.matches(&format!("\"{stem}")).count()
        });
        assert_eq!(raw, want.len(), "{what}: raw entries");
        assert_once_each(what, items(&v), want);
        // In order: each one found after the one before (a linear search).
        let mut sorted = want.to_vec();
        sorted.sort();
        let mut at = 0;
        for w in &sorted {
            let found = line[at..].find(&format!("\"{w}\""));
            at += found.unwrap_or_else(|| panic!("{what}: {w} out of order")) + w.len();
        }
    }
}

fn keys_of(field: &'static str) -> impl Fn(&serde_json::Value) -> Vec<String> {
    move |v| match &v[field] {
        serde_json::Value::Object(m) => m.keys().cloned().collect(),
        serde_json::Value::Array(a) => a.iter().map(|k| k.as_str().unwrap().to_string()).collect(),
        other => panic!("{field} is {other}"),
    }
}

#[test]
fn listings_far_over_the_output_limit_arrive_whole_to_a_slow_reader() {
    const N: usize = 20_000;
    let s = start_small(HIGH_WATER, LIMIT);
    let (filler, names) = fill(s.native, N);
    let holder = filler.addr();

    // Native LIST: every lock once per reply, and END counts the rows.
    let times = times_for(N * 55);
    let reader = slow_reader(s.native);
    let got = slow_flood(reader, "l LIST lst-\n", times, end_of("l"));
    check_native("LIST", &got, "l", "ITEM", &names, true);

    // lockd `d`: one `NAME: HOLDER` per hold, in grant order.
    let times = times_for(N * 28);
    let reader = slow_reader(s.addr(Lockd));
    let got = slow_flood(reader, "d\n", times, every(N));
    let rows = lines(&got)
        .iter()
        .map(|r| {
            let (name, h) = r.split_once(": ").expect(r);
            assert_eq!(h, holder);
            name.to_string()
        })
        .collect();
    check_times("lockd d", rows, &names, times);

    // lockd `dump`: one JSON object per line.
    let times = times_for(N * 34);
    let reader = slow_reader(s.addr(Lockd));
    let got = slow_flood(reader, "dump\n", times, any_line);
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect();
    check_json("lockd dump", &got, "{\"lst-", "\"}", &names, keys);

    // officer `locks`: officer's envelope around the entries.
    let times = times_for(N * 36);
    let reader = slow_reader(s.addr(Officer));
    let got = slow_flood(reader, "{\"command\":\"locks\"}\n", times, any_line);
    let (head, tail) = (r#"{"value":{"#, r#"},"result":"locks"}"#);
    check_json("officer locks", &got, head, tail, &names, keys_of("value"));

    // live-mutex `ls`.
    let times = times_for(N * 20);
    let ls = "{\"type\":\"ls\",\"uuid\":\"u\"}\n";
    let reader = slow_reader(s.addr(LiveMutex));
    let got = slow_flood(reader, ls, times, any_line);
    let (head, tail) = (r#"{"ls_result":["#, r#"],"uuid":"u"}"#);
    check_json(
        "live-mutex ls",
        &got,
        head,
        tail,
        &names,
        keys_of("ls_result"),
    );
}

#[test]
fn connection_listings_far_over_the_output_limit_arrive_whole_to_a_slow_reader() {
    const CONNS: usize = 240;
    let s = start_small(HIGH_WATER, LIMIT);
    // Each connection has a lockd registry name (`who` lists named clients only) and
    // holds a lock (officer `connections` lists holders only).
    let mut named = Vec::new();
    for i in 0..CONNS {
        let mut l = Client::connect(s.addr(Lockd));
        let name = format!("client-{i:04}-with-a-registry-name-padded-to-sixty-bytes");
        assert_eq!(l.req(&format!("iam {name}")), "1 ok");
        let held = format!("held-by-{i:04}-with-a-lock-name-padded-to-about-sixty-bytes");
        assert_eq!(
            l.req(&format!("g {held}")),
            format!("1 Lock Get Success: {held}")
        );
        named.push(l);
    }
    let addrs: Vec<String> = named.iter().map(Client::addr).collect();

    // native CLIENTS: every connection once per reply (the reader's own included).
    let reader = slow_reader(s.native);
    let mut all = addrs.clone();
    all.push(reader.local_addr().unwrap().to_string());
    let times = times_for(CONNS * 80);
    let got = slow_flood(reader, "c CLIENTS\n", times, end_of("c"));
    check_native("CLIENTS", &got, "c", "CLIENT", &all, false);

    // lockd `who`: every named client once per reply.
    let times = times_for(CONNS * 65);
    let reader = slow_reader(s.addr(Lockd));
    let got = slow_flood(reader, "who\n", times, every(CONNS));
    let rows = lines(&got)
        .iter()
        .map(|r| r.split_once(": ").expect(r).0.to_string())
        .collect();
    let mut by_addr = addrs.clone();
    by_addr.sort();
    check_times("lockd who", rows, &by_addr, times);

    // officer `connections`: every holder once per reply.
    let times = times_for(CONNS * 75);
    let req = "{\"command\":\"connections\"}\n";
    let reader = slow_reader(s.addr(Officer));
    let got = slow_flood(reader, req, times, any_line);
    let (head, tail) = (r#"{"value":{"#, r#"},"result":"connections"}"#);
    check_json(
        "officer connections",
        &got,
        head,
        tail,
        &addrs,
        keys_of("value"),
    );
}

/// A victim holds A through officer and asks for B, which a crowd queues on: its
/// `queue_maxed` and `timed_out` replies list a capped queue, so it stays connected and
/// keeps A. Uncapped, the queue of 3,000 waiters is about 54 KB, over the limit: the
/// victim, asking a few hundred times before it reads (more than the kernel's socket
/// buffers hold), was disconnected and lost A.
#[test]
fn a_crowded_queue_does_not_get_a_reader_disconnected() {
    const CROWD: usize = 3000;
    const ASKS: usize = 200;
    let s = start_small(4096, 8192);
    let mut victim = Client::connect(s.addr(Officer));
    assert_eq!(
        victim.req(r#"{"command":"lock","name":"A"}"#),
        r#"{"name":"A","result":"acquired"}"#
    );
    let mut holder = Client::connect(s.native);
    let line = holder.req("h LOCK B");
    assert!(line.starts_with("h OK "), "{line}");
    // The crowd: one native connection, thousands of waits on B.
    let mut crowd = Client::connect(s.native);
    let mut wire = Vec::new();
    for i in 0..CROWD {
        wire.extend_from_slice(format!("w{i} LOCK B\n").as_bytes());
    }
    crowd.send_bytes(&wire);
    crowd.sync();
    let queue_of = |line: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        v["queue"]
            .as_array()
            .expect("queue")
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let cap = lockbox::proto::officer::LIST_CAP;
    // queue_maxed: answered at once, capped.
    let ask = "{\"command\":\"lock\",\"name\":\"B\",\"queue_max\":1}\n";
    victim.send_bytes(ask.repeat(ASKS).as_bytes());
    thread::sleep(Duration::from_millis(300));
    for _ in 0..ASKS {
        let line = victim.recv();
        assert!(line.ends_with(r#""result":"queue_maxed"}"#), "{line}");
        let q = queue_of(&line);
        assert_eq!(q.len(), cap);
        assert_eq!(q[0], holder.addr(), "holders first");
        assert!(
            q[1..].iter().all(|a| *a == crowd.addr()),
            "then the waiters"
        );
    }
    // timed_out: after the wait, from an event; capped too.
    victim.send(r#"{"command":"lock","name":"B","timeout":0.05}"#);
    let line = victim.recv();
    assert!(line.ends_with(r#""result":"timed_out"}"#), "{line}");
    assert_eq!(queue_of(&line).len(), cap);
    // Still connected, still holding A.
    assert_eq!(
        victim.req(r#"{"command":"my_locks"}"#),
        r#"{"value":["A"],"result":"my_locks"}"#
    );
    let r = holder.req("i INSPECT A");
    assert!(r.contains("holders=1"), "{r}");
    assert!(r.ends_with(&format!("owner={}", victim.addr())), "{r}");
}

/// A `LIST` on a big table is many batches of work, and other clients get their turns
/// between them: locks another client takes while the scan runs show up in it (they
/// land in slots the cursor has not reached). Written at once, each scan kept the loop
/// for its whole length, so it saw at most one lock taken after it was asked for (one
/// handled in the same loop iteration, just before it).
#[test]
fn other_clients_are_served_while_a_big_table_is_listed() {
    const N: usize = 300_000;
    const ROUNDS: usize = 3;
    let s = start_with_listeners(&[], |cfg| cfg.max_pending = 2 * N as u32);
    let (_filler, _) = fill(s.native, N);
    let mut other = Client::connect(s.native);
    other.sync();
    let mut seen_during = 0;
    for round in 0..ROUNDS {
        let mut lister = Client::connect(s.native);
        lister.sync();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Asked for before the first lock below is.
        lister.send(&format!("z LIST zz{round}-"));
        let listing = {
            let stop = stop.clone();
            thread::spawn(move || {
                let rows = lister.recv_until_end("z");
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                rows.len()
            })
        };
        // Take new locks one after the other until the listing has ended (bounded).
        let mut taken = 0;
        let started = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::SeqCst)
            && taken < 100_000
            && started.elapsed() < Duration::from_secs(30)
        {
            let line = other.req(&format!("t LOCK zz{round}-{taken} wait=0"));
            assert!(line.starts_with("t OK "), "{line}");
            taken += 1;
        }
        let rows = listing.join().unwrap();
        eprintln!("round {round}: {taken} locks taken during the listing, {rows} of them listed");
        seen_during += rows;
    }
    assert!(
        seen_during > ROUNDS,
        "{seen_during} locks taken during {ROUNDS} listings were listed"
    );
}
