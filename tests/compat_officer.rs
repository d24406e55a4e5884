//! officer compatibility: byte-exact JSON replies (officer's key order) to every request
//! of `shared/spec/compat.md` ("officer"), over a real socket to an in-process server.

use lockbox::config::Config;
use lockbox::proto::Protocol;
use lockbox::server::Server;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long an expected reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Window of "no reply" checks.
const SILENCE: Duration = Duration::from_millis(150);
/// Upper slack on deadlines (a correctness check, not a benchmark).
const LATE_SLACK: Duration = Duration::from_millis(400);

struct Servers {
    officer: SocketAddr,
    lockd: SocketAddr,
    native: SocketAddr,
}

/// An in-process server with officer and lockd listeners; `tweak` adjusts the config.
fn start_with(tweak: impl FnOnce(&mut Config)) -> Servers {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        officer_listen: Some("127.0.0.1:0".parse().unwrap()),
        lockd_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    };
    tweak(&mut cfg);
    let server = Server::bind(cfg).expect("bind");
    let servers = Servers {
        officer: server.listener_addr(Protocol::Officer).expect("officer"),
        lockd: server.listener_addr(Protocol::Lockd).expect("lockd"),
        native: server.local_addr(),
    };
    std::thread::spawn(move || server.run());
    servers
}

fn start() -> Servers {
    start_with(|_| {})
}

/// A raw line client with timeouts: a missing reply fails instead of hanging.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(REPLY_TIMEOUT)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// `ip:port` of this side, as the server knows this connection.
    fn addr(&self) -> String {
        self.stream.local_addr().unwrap().to_string()
    }

    fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).expect("write");
    }

    fn fill(&mut self, deadline: Instant) -> std::io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next `\n`-terminated line, without the `\n`.
    fn line(&mut self) -> String {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8(line[..i].to_vec()).expect("UTF-8 reply");
            }
            match self.fill(deadline) {
                Ok(0) => panic!("closed while a line was expected ({:?})", self.buf),
                Ok(_) => {}
                Err(e) => panic!("no reply line: {e} (partial {:?})", self.buf),
            }
        }
    }

    fn req(&mut self, line: &str) -> String {
        self.send(&format!("{line}\n"));
        self.line()
    }

    fn silence(&mut self) {
        assert!(self.buf.is_empty(), "already received {:?}", self.buf);
        match self.fill(Instant::now() + SILENCE) {
            Ok(0) => panic!("closed instead of silent"),
            Ok(_) => panic!(
                "expected silence, got {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "{e}"
            ),
        }
    }

    fn closed(&mut self) {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            match self.fill(deadline) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("connection not closed: {e}"),
            }
        }
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// `my_locks`, checked against `names`.
    fn my_locks(&mut self, names: &str) {
        assert_eq!(
            self.req(r#"{"command":"my_locks"}"#),
            format!(r#"{{"value":[{names}],"result":"my_locks"}}"#)
        );
    }
}

fn lock(name: &str) -> String {
    format!(r#"{{"command":"lock","name":"{name}"}}"#)
}

fn lock_with(name: &str, extra: &str) -> String {
    format!(r#"{{"command":"lock","name":"{name}",{extra}}}"#)
}

fn unlock(name: &str) -> String {
    format!(r#"{{"command":"unlock","name":"{name}"}}"#)
}

fn acquired(name: &str) -> String {
    format!(r#"{{"name":"{name}","result":"acquired"}}"#)
}

fn with_queue(name: &str, queue: &[&str], result: &str) -> String {
    let q: Vec<String> = queue.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"name":"{name}","queue":[{}],"result":"{result}"}}"#,
        q.join(",")
    )
}

#[test]
fn lock_already_acquired_unlock() {
    let s = start();
    let mut a = Conn::connect(s.officer);
    assert_eq!(a.req(&lock("a")), acquired("a"));
    assert_eq!(
        a.req(&lock("a")),
        r#"{"name":"a","result":"already_acquired"}"#
    );
    a.my_locks(r#""a""#);
    assert_eq!(a.req(&unlock("a")), r#"{"name":"a","result":"released"}"#);
    assert_eq!(
        a.req(&unlock("a")),
        r#"{"name":"a","result":"release_failed"}"#
    );
    a.my_locks("");
    // Timeouts and queue_max do not matter when the lock is free.
    assert_eq!(
        a.req(&lock_with("b", r#""timeout":0,"queue_max":1"#)),
        acquired("b")
    );
    assert_eq!(
        a.req(&lock_with("c", r#""timeout":null,"queue_max":null"#)),
        acquired("c")
    );
}

#[test]
fn unlock_by_another_connection_fails() {
    let s = start();
    let (mut a, mut b) = (Conn::connect(s.officer), Conn::connect(s.officer));
    assert_eq!(a.req(&lock("a")), acquired("a"));
    assert_eq!(
        b.req(&unlock("a")),
        r#"{"name":"a","result":"release_failed"}"#
    );
    a.my_locks(r#""a""#);
}

#[test]
fn deferred_grant_after_the_holder_unlocks() {
    let s = start();
    let (mut a, mut b) = (Conn::connect(s.officer), Conn::connect(s.officer));
    assert_eq!(a.req(&lock("a")), acquired("a"));
    b.send(&format!("{}\n", lock("a")));
    b.silence();
    // Asking again while waiting changes nothing and gets no reply.
    b.send(&format!("{}\n", lock("a")));
    b.silence();
    b.my_locks(r#""a""#);
    assert_eq!(a.req(&unlock("a")), r#"{"name":"a","result":"released"}"#);
    assert_eq!(b.line(), acquired("a"));
    b.my_locks(r#""a""#);
    a.my_locks("");
}

#[test]
fn deferred_grant_after_the_holder_disconnects() {
    let s = start();
    let mut b = Conn::connect(s.officer);
    {
        let mut a = Conn::connect(s.officer);
        assert_eq!(a.req(&lock("a")), acquired("a"));
        b.send(&format!("{}\n", lock_with("a", r#""timeout":30"#)));
        b.silence();
    }
    assert_eq!(b.line(), acquired("a"));
}

#[test]
fn timed_out_with_queue() {
    let s = start();
    let (mut a, mut b, mut c) = (
        Conn::connect(s.officer),
        Conn::connect(s.officer),
        Conn::connect(s.officer),
    );
    let (aa, ca) = (a.addr(), c.addr());
    assert_eq!(a.req(&lock("t")), acquired("t"));
    // timeout 0: at once.
    assert_eq!(
        b.req(&lock_with("t", r#""timeout":0"#)),
        with_queue("t", &[&aa], "timed_out")
    );
    c.send(&format!("{}\n", lock("t")));
    c.silence();
    // A fractional timeout: after at least that long, with holders then waiters.
    let t0 = Instant::now();
    b.send(&format!("{}\n", lock_with("t", r#""timeout":0.3"#)));
    assert_eq!(b.line(), with_queue("t", &[&aa, &ca], "timed_out"));
    let el = t0.elapsed();
    assert!(el >= Duration::from_millis(300), "early: {el:?}");
    assert!(el < Duration::from_millis(300) + LATE_SLACK, "late: {el:?}");
    b.my_locks("");
    // The timed-out wait is gone: the next grant goes to c.
    assert_eq!(a.req(&unlock("t")), r#"{"name":"t","result":"released"}"#);
    assert_eq!(c.line(), acquired("t"));
    b.silence();
}

#[test]
fn queue_maxed_with_queue() {
    let s = start();
    let mut c: Vec<Conn> = (0..4).map(|_| Conn::connect(s.officer)).collect();
    let addrs: Vec<String> = c.iter().map(Conn::addr).collect();
    assert_eq!(c[0].req(&lock("q")), acquired("q"));
    c[1].send(&format!("{}\n", lock("q")));
    c[1].silence();
    c[2].send(&format!("{}\n", lock("q")));
    c[2].silence();
    let queue = [addrs[0].as_str(), &addrs[1], &addrs[2]];
    // holders + waiters = 3 >= 3: refused, with the queue.
    assert_eq!(
        c[3].req(&lock_with("q", r#""queue_max":3"#)),
        with_queue("q", &queue, "queue_maxed")
    );
    assert_eq!(
        c[3].req(&lock_with("q", r#""queue_max":1,"timeout":5"#)),
        with_queue("q", &queue, "queue_maxed")
    );
    // A queued connection asking again is not refused (and gets no reply).
    c[2].send(&format!("{}\n", lock_with("q", r#""queue_max":1"#)));
    c[2].silence();
    // The holder asking again is told it has it.
    assert_eq!(
        c[0].req(&lock_with("q", r#""queue_max":1"#)),
        r#"{"name":"q","result":"already_acquired"}"#
    );
    // 3 < 4: queued.
    c[3].send(&format!("{}\n", lock_with("q", r#""queue_max":4"#)));
    c[3].silence();
    assert_eq!(
        c[0].req(r#"{"command":"locks"}"#),
        format!(
            r#"{{"value":{{"q":["{}","{}","{}","{}"]}},"result":"locks"}}"#,
            addrs[0], addrs[1], addrs[2], addrs[3]
        )
    );
}

#[test]
fn unlock_withdraws_a_wait() {
    let s = start();
    let (mut a, mut b) = (Conn::connect(s.officer), Conn::connect(s.officer));
    assert_eq!(a.req(&lock("w")), acquired("w"));
    b.send(&format!("{}\n", lock("w")));
    b.silence();
    assert_eq!(b.req(&unlock("w")), r#"{"name":"w","result":"released"}"#);
    b.my_locks("");
    assert_eq!(a.req(&unlock("w")), r#"{"name":"w","result":"released"}"#);
    b.silence();
    assert_eq!(
        a.req(r#"{"command":"locks"}"#),
        r#"{"value":{},"result":"locks"}"#
    );
}

#[test]
fn reset_releases_and_cancels() {
    let s = start();
    let (mut a, mut b) = (Conn::connect(s.officer), Conn::connect(s.officer));
    assert_eq!(a.req(&lock("r1")), acquired("r1"));
    assert_eq!(a.req(&lock("r2")), acquired("r2"));
    assert_eq!(b.req(&lock("r3")), acquired("r3"));
    b.send(&format!("{}\n", lock("r1")));
    b.silence();
    a.send(&format!("{}\n", lock("r3")));
    a.silence();
    a.my_locks(r#""r1","r2","r3""#);
    assert_eq!(
        a.req(r#"{"command":"reset"}"#),
        r#"{"result":"reset_succeeded"}"#
    );
    assert_eq!(b.line(), acquired("r1"));
    a.my_locks("");
    assert_eq!(b.req(&unlock("r3")), r#"{"name":"r3","result":"released"}"#);
    a.silence();
    assert_eq!(
        a.req(r#"{"command":"reset"}"#),
        r#"{"result":"reset_succeeded"}"#,
        "reset with nothing held"
    );
}

#[test]
fn locks_and_connections() {
    let s = start();
    let (mut a, mut b, mut idle) = (
        Conn::connect(s.officer),
        Conn::connect(s.officer),
        Conn::connect(s.officer),
    );
    let (aa, ba) = (a.addr(), b.addr());
    assert_eq!(
        idle.req(r#"{"command":"locks"}"#),
        r#"{"value":{},"result":"locks"}"#
    );
    assert_eq!(
        idle.req(r#"{"command":"connections"}"#),
        r#"{"value":{},"result":"connections"}"#
    );
    assert_eq!(a.req(&lock("l2")), acquired("l2"));
    assert_eq!(a.req(&lock("l1")), acquired("l1"));
    assert_eq!(b.req(&lock("l3")), acquired("l3"));
    b.send(&format!("{}\n", lock("l2")));
    b.silence();
    assert_eq!(
        idle.req(r#"{"command":"locks"}"#),
        format!(
            r#"{{"value":{{"l1":["{aa}"],"l2":["{aa}","{ba}"],"l3":["{ba}"]}},"result":"locks"}}"#
        )
    );
    let mut rows = [
        (aa.clone(), r#"["l2","l1"]"#),
        (ba.clone(), r#"["l3","l2"]"#),
    ];
    rows.sort();
    let value: Vec<String> = rows.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    assert_eq!(
        idle.req(r#"{"command":"connections"}"#),
        format!(
            r#"{{"value":{{{}}},"result":"connections"}}"#,
            value.join(",")
        )
    );
    b.my_locks(r#""l3","l2""#);
}

#[test]
fn keep_alive_is_silent() {
    let s = start();
    let mut a = Conn::connect(s.officer);
    a.send("{\"command\":\"keep_alive\"}\n");
    a.silence();
    a.my_locks("");
}

#[test]
fn pipelined_requests_in_one_write() {
    let s = start();
    let mut a = Conn::connect(s.officer);
    a.send(&format!(
        "{}\n{}\r\n{{\"command\":\"keep_alive\"}}\n{}\n{}\n{{\"command\":\"my_locks\"}}\n",
        lock("p1"),
        lock("p2"),
        lock("p1"),
        unlock("p2")
    ));
    for want in [
        acquired("p1"),
        acquired("p2"),
        r#"{"name":"p1","result":"already_acquired"}"#.to_string(),
        r#"{"name":"p2","result":"released"}"#.to_string(),
        r#"{"value":["p1"],"result":"my_locks"}"#.to_string(),
    ] {
        assert_eq!(a.line(), want);
    }
    a.silence();
}

#[test]
fn bad_requests_close_the_connection() {
    let s = start();
    for bad in [
        "not json",
        "{\"command\":\"lock\"",
        "{\"command\":\"dance\"}",
        "{\"name\":\"x\"}",
        "[\"lock\"]",
        "{\"command\":\"lock\",\"name\":\"\"}",
        "{\"command\":\"lock\",\"name\":\"x\",\"timeout\":\"soon\"}",
        "{\"command\":\"lock\",\"name\":\"x\",\"queue_max\":0}",
        "",
    ] {
        let mut a = Conn::connect(s.officer);
        assert_eq!(a.req(&lock("ok")), acquired("ok"), "before {bad:?}");
        a.send(&format!("{bad}\n{}\n", lock("after")));
        a.closed();
    }
    // Every one of those connections' holds was released on close.
    let mut b = Conn::connect(s.officer);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let r = b.req(&lock_with("ok", r#""timeout":0"#));
        if r == acquired("ok") {
            break;
        }
        assert!(Instant::now() < deadline, "still held: {r}");
        std::thread::sleep(Duration::from_millis(10));
    }
    b.silence();
}

#[test]
fn overlong_line_closes() {
    let s = start_with(|c| c.max_line = 200);
    let mut a = Conn::connect(s.officer);
    a.send(&"x".repeat(5000));
    a.closed();
}

#[test]
fn one_lock_box_with_lockd_and_native() {
    let s = start();
    let mut o = Conn::connect(s.officer);
    let mut l = Conn::connect(s.lockd);
    let mut n = Conn::connect(s.native);
    // A name with a space is one lock for officer and lockd.
    assert_eq!(o.req(&lock("my lock")), acquired("my lock"));
    assert_eq!(l.req("g my lock"), "0 Lock Get Failure: my lock");
    let r = n.req("n1 INSPECT my%20lock");
    assert!(r.starts_with("n1 OK mode=exclusive holders=1 "), "{r}");
    // lockd's exclusive lock makes officer wait; lockd's release grants it.
    assert_eq!(l.req("g job"), "1 Lock Get Success: job");
    o.send(&format!("{}\n", lock("job")));
    o.silence();
    assert_eq!(l.req("r job"), "1 Lock Release Success: job");
    assert_eq!(o.line(), acquired("job"));
    // Native locks show in officer's views; lockd's shared namespace does not.
    let r = n.req("n2 LOCK nat");
    assert!(r.starts_with("n2 OK "), "{r}");
    assert_eq!(l.req("sg job"), "1 Shared Lock Get Success: job");
    let (oa, na) = (o.addr(), n.addr());
    assert_eq!(
        o.req(r#"{"command":"locks"}"#),
        format!(
            r#"{{"value":{{"job":["{oa}"],"my lock":["{oa}"],"nat":["{na}"]}},"result":"locks"}}"#
        )
    );
    assert_eq!(
        o.req(&lock_with("nat", r#""timeout":0"#)),
        with_queue("nat", &[&na], "timed_out")
    );
}
