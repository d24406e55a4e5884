//! What an operator sees: the Prometheus endpoint (`--metrics-listen`) read by real HTTP
//! clients and checked by the reference Prometheus text parser (the pinned
//! `prometheus_client` of `tests/programs/requirements.txt`), the startup line of every
//! listener and the SIGTERM/SIGINT shutdown from the real binary's stderr, rate-limited
//! refusal warnings that name `ip:port`, and error texts that name their input.
//!
//! The parser runs with `LOCKBOX_PYTHON` (default `python3`); `.ci/run` installs it into
//! a virtual environment. Without it the parser checks print a `SKIP` line and pass,
//! except under CI (`CI=true`), where they fail. The same holds for `curl`.

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lockbox::proto::Protocol;
use serde_json::Value;

/// One HTTP response as read off the socket up to the server's close.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// Sends `request` as is on a new connection and reads until the server closes it (a
/// test failure after [`REPLY_TIMEOUT`]).
fn http_raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics listener");
    s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    s.write_all(request).expect("send the request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the server answers and closes within the timeout");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8(raw.to_vec()).expect("the response is UTF-8");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or_else(|| panic!("header {l:?}"));
            (k.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    let r = Response {
        status,
        headers,
        body: body.to_string(),
    };
    let len: usize = r.headers["content-length"].parse().unwrap();
    assert_eq!(len, r.body.len(), "Content-Length vs body: {r:?}");
    assert_eq!(r.headers["connection"], "close", "{r:?}");
    r
}

fn get(addr: SocketAddr, path: &str) -> Response {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n").as_bytes(),
    )
}

/// The Python that has `prometheus_client`, or `None` after a SKIP line (a failure
/// under CI).
fn prometheus_python() -> Option<String> {
    let python = std::env::var("LOCKBOX_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let why = format!(
        "{python} cannot import prometheus_client: pip install -r \
         tests/programs/requirements.txt and set LOCKBOX_PYTHON (see .ci/run)"
    );
    assert!(!in_ci(), "under CI the Prometheus parser must run: {why}");
    skip_notice("Prometheus text parser check", &why);
    None
}

/// The exposition `text` as parsed by prometheus_client: its families as JSON.
fn prometheus_parse(python: &str, text: &str) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/prom_parse.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejects the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("parser output is JSON") {
        Value::Array(v) => v,
        other => panic!("not a list: {other}"),
    }
}

/// The value of the sample `name` with exactly `labels`, from parsed families.
fn value(families: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    for f in families {
        for s in f["samples"].as_array().unwrap() {
            let l = s[1].as_object().unwrap();
            if s[0] == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(v))
            {
                return s[2].as_f64().unwrap();
            }
        }
    }
    panic!("no sample {name} {labels:?}");
}

/// A server with the metrics listener, where a lock was held 30+ ms, another request
/// waited for it and got it, and one request was refused at --max-pending.
fn busy_server() -> (common::Listeners, Client, Client) {
    let s = start_with_listeners(&[Protocol::Metrics], |c| c.max_pending = 1);
    let mut a = Client::connect(s.native);
    let mut b = Client::connect(s.native);
    a.lock("a1", "x");
    b.send("b1 LOCK x");
    b.sync();
    std::thread::sleep(Duration::from_millis(30));
    a.unlock("a2", "x");
    ok_token(&b.recv(), "b1");
    assert_err(&b.req("b2 LOCK y"), "b2", "limit");
    (s, a, b)
}

#[test]
fn metrics_are_valid_prometheus_text_with_every_stats_figure() {
    let (s, mut a, _b) = busy_server();
    let r = get(s.addr(Protocol::Metrics), "/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let stats = a.stats();
    // Every family has HELP and TYPE lines right before its samples.
    for line in r.body.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(name.starts_with("lockbox_"), "{line}");
        assert!(
            r.body.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        let kind = line.split(' ').nth(3).unwrap();
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "counters and only counters end in _total: {line}"
        );
    }
    let Some(python) = prometheus_python() else {
        return;
    };
    let families = prometheus_parse(&python, &r.body);
    let kind: HashMap<&str, &str> = families
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    // prometheus_client names counter families without their `_total`.
    for (name, t) in [
        ("lockbox_build_info", "gauge"),
        ("lockbox_pid", "gauge"),
        ("lockbox_uptime_seconds", "gauge"),
        ("lockbox_connections_open", "gauge"),
        ("lockbox_connections", "counter"),
        ("lockbox_requests", "counter"),
        ("lockbox_locks", "gauge"),
        ("lockbox_holds", "gauge"),
        ("lockbox_waiters", "gauge"),
        ("lockbox_grants", "counter"),
        ("lockbox_waits", "counter"),
        ("lockbox_timeouts", "counter"),
        ("lockbox_expired", "counter"),
        ("lockbox_released_on_disconnect", "counter"),
        ("lockbox_errors", "counter"),
        ("lockbox_bytes_in", "counter"),
        ("lockbox_bytes_out", "counter"),
        ("lockbox_refused_connections", "counter"),
        ("lockbox_limit_refusals", "counter"),
        ("lockbox_auth_failures", "counter"),
        ("lockbox_auth_timeouts", "counter"),
        ("lockbox_native_commands", "counter"),
        ("lockbox_grant_wait_seconds", "histogram"),
        ("lockbox_hold_duration_seconds", "histogram"),
        ("lockbox_timer_lateness_seconds", "histogram"),
    ] {
        assert_eq!(kind.get(name), Some(&t), "family {name}: {kind:?}");
    }
    assert_eq!(kind.len(), 25, "{kind:?}");
    // The figures agree with STATS (nothing but STATS happened in between).
    let v = |name: &str| value(&families, name, &[]);
    assert_eq!(v("lockbox_pid"), f64::from(std::process::id()));
    assert_eq!(
        value(
            &families,
            "lockbox_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", lockbox::config::GIT_COMMIT)
            ]
        ),
        1.0
    );
    for (metric, stat) in [
        ("lockbox_locks", "locks"),
        ("lockbox_holds", "holds"),
        ("lockbox_waiters", "waiters"),
        ("lockbox_grants_total", "grants_total"),
        ("lockbox_waits_total", "waits_total"),
        ("lockbox_timeouts_total", "timeouts_total"),
        ("lockbox_limit_refusals_total", "limit_refusals_total"),
        (
            "lockbox_refused_connections_total",
            "refused_connections_total",
        ),
        ("lockbox_auth_failures_total", "auth_failures_total"),
        ("lockbox_expired_total", "expired_total"),
        ("lockbox_errors_total", "errors_total"),
    ] {
        assert_eq!(v(metric), stats[stat] as f64, "{metric} vs STATS {stat}");
    }
    assert_eq!(v("lockbox_grants_total"), 2.0);
    assert_eq!(v("lockbox_waits_total"), 1.0, "b1 queued behind a1");
    assert_eq!(v("lockbox_limit_refusals_total"), 1.0);
    let conns = |kind: &str, p: &str| value(&families, kind, &[("protocol", p)]);
    assert_eq!(conns("lockbox_connections_open", "native"), 2.0);
    assert_eq!(
        conns("lockbox_connections_open", "metrics"),
        1.0,
        "the scrape"
    );
    assert_eq!(conns("lockbox_connections_total", "native"), 2.0);
    assert_eq!(conns("lockbox_connections_open", "lockd"), 0.0);
    // A scrape counts once it is answered: the next one sees it.
    assert_eq!(conns("lockbox_requests_total", "metrics"), 0.0);
    let again = prometheus_parse(&python, &get(s.addr(Protocol::Metrics), "/metrics").body);
    let requests = value(&again, "lockbox_requests_total", &[("protocol", "metrics")]);
    assert_eq!(requests, 1.0);
    // a1 LOCK, b1 LOCK, b's sync PING, a2 UNLOCK, b2 LOCK (STATS came after).
    assert_eq!(conns("lockbox_requests_total", "native"), 5.0);
    let cmd = |verb: &str| {
        value(
            &families,
            "lockbox_native_commands_total",
            &[("verb", verb)],
        )
    };
    assert_eq!(cmd("lock") as u64, stats["cmd_lock"]);
    assert_eq!(cmd("unlock"), 1.0);
    // Histograms: cumulative buckets up to +Inf = count; the waiter waited >= 30 ms, the
    // released hold lasted >= 30 ms.
    for (h, count) in [
        ("lockbox_grant_wait_seconds", 2.0),
        ("lockbox_hold_duration_seconds", 1.0),
    ] {
        let f = families.iter().find(|f| f["name"] == h).unwrap();
        let mut last = 0.0;
        let mut bounds = Vec::new();
        for s in f["samples"].as_array().unwrap() {
            if s[0] == format!("{h}_bucket") {
                let n = s[2].as_f64().unwrap();
                assert!(n >= last, "{h} buckets are cumulative: {s}");
                last = n;
                bounds.push(s[1]["le"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(bounds.last().map(String::as_str), Some("+Inf"), "{h}");
        assert_eq!(last, count, "{h} +Inf bucket");
        assert_eq!(v(&format!("{h}_count")), count, "{h}_count");
        assert!(v(&format!("{h}_sum")) >= 0.03, "{h}_sum");
        assert_eq!(
            value(&families, &format!("{h}_bucket"), &[("le", "0.025")]),
            count - 1.0,
            "{h}: one observation of 30 ms or more, the rest of 0"
        );
    }
}

#[test]
fn metrics_endpoint_answers_only_get_and_head_of_metrics() {
    let s = start_with_listeners(&[Protocol::Metrics], |_| {});
    let m = s.addr(Protocol::Metrics);
    let r = get(m, "/");
    assert_eq!(r.status, 404, "{r:?}");
    let r = get(m, "/metrics/x");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(get(m, "/metrics?name=lockbox_holds").status, 200);
    let r = http_raw(m, b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.headers["allow"], "GET, HEAD");
    // HEAD: the length of the body GET would send, and no body.
    let mut sock = TcpStream::connect(m).unwrap();
    sock.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    sock.write_all(b"HEAD /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = String::new();
    sock.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw:?}");
    assert!(raw.ends_with("\r\n\r\n"), "{raw:?}");
    assert!(raw.contains("Content-Length: "), "{raw:?}");
}

#[test]
fn hostile_scrapers_are_bounded_and_never_disturb_clients() {
    let s = start_with_listeners(&[Protocol::Metrics], |_| {});
    let m = s.addr(Protocol::Metrics);
    let mut c = Client::connect(s.native);
    let t = c.lock("a", "held");
    // Not HTTP: 400, then closed.
    let r = http_raw(m, b"a1 LOCK held\n\n");
    assert_eq!(r.status, 400, "{r:?}");
    let r = http_raw(m, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n");
    assert_eq!(r.status, 400, "{r:?}");
    // A head that never ends is cut at its limit: 431, then closed.
    let mut sock = TcpStream::connect(m).unwrap();
    sock.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    sock.write_all(b"GET /metrics HTTP/1.1\r\nX-Junk: ")
        .unwrap();
    let chunk = [b'a'; 1024];
    let mut raw = Vec::new();
    for _ in 0..64 {
        if sock.write_all(&chunk).is_err() {
            break; // closed after the answer
        }
    }
    let _ = sock.read_to_end(&mut raw);
    assert!(
        raw.starts_with(b"HTTP/1.1 431 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    // Too many headers: 431.
    let mut many = String::from("GET /metrics HTTP/1.1\r\n");
    for i in 0..=lockbox::proto::metrics::MAX_HEADERS {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(http_raw(m, many.as_bytes()).status, 431);
    // A slow scraper, one byte at a time, is answered once its head is complete.
    let mut sock = TcpStream::connect(m).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" {
        sock.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_response(&raw).status, 200);
    // A second request on the same connection is not read: one request per connection.
    let r = http_raw(
        m,
        b"GET /metrics HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("HTTP/1.1"), "one response only");
    // The client and its lock were never touched.
    assert_eq!(
        c.inspect("held"),
        format!(
            "mode=exclusive holders=1 waiters=0 token={t} owner={}",
            c.addr()
        )
    );
    c.sync();
}

#[test]
fn curl_reads_the_metrics() {
    let s = start_with_listeners(&[Protocol::Metrics], |_| {});
    let url = format!("http://{}/metrics", s.addr(Protocol::Metrics));
    let out = match Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{content_type}",
            &url,
        ])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(!in_ci(), "under CI curl must be installed: {e}");
            skip_notice("curl_reads_the_metrics", &format!("cannot run curl: {e}"));
            return;
        }
    };
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    assert_eq!(tail, "200 text/plain; version=0.0.4; charset=utf-8");
    assert!(body.contains("\nlockbox_holds 0\n"), "{body}");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-X", "DELETE", &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "405");
}

// ---------------------------------------------------------------------------
// The binary's log
// ---------------------------------------------------------------------------

/// Collects stderr until `done` holds for the lines so far (a failure after 10 s).
fn stderr_until(p: &mut ServerProcess, what: &str, done: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&p.stderr) {
        assert!(
            Instant::now() < deadline,
            "no {what} on stderr within 10 s: {:?}",
            p.stderr
        );
        p.drain_stderr(Duration::from_millis(20));
    }
}

/// Sends `signal` (`TERM`, `INT`) to the process.
fn send_signal(p: &ServerProcess, signal: &str) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &p.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{signal}");
}

#[test]
fn every_listener_logs_a_startup_line() {
    let any = "127.0.0.1:0";
    let mut p = ServerProcess::spawn(&[
        "--listen",
        any,
        "--lockd-listen",
        any,
        "--locker-listen",
        any,
        "--officer-listen",
        any,
        "--livemutex-listen",
        any,
        "--metrics-listen",
        any,
    ]);
    let protocols = [
        "native",
        "lockd",
        "locker",
        "officer",
        "live-mutex",
        "metrics",
    ];
    stderr_until(&mut p, "six listening lines", |l| {
        l.iter().filter(|l| l.contains("listening on")).count() >= 6
    });
    let lines: Vec<&String> = p
        .stderr
        .iter()
        .filter(|l| l.contains("listening on"))
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for (line, protocol) in lines.iter().zip(protocols) {
        assert!(line.contains(" INFO "), "{line}");
        assert!(
            line.contains(&format!("] {protocol} ")),
            "{protocol}: {line}"
        );
        let addr = listening_addr(line).unwrap_or_else(|| panic!("no address: {line}"));
        assert_ne!(addr.port(), 0, "{line}");
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert!(lines[5].contains("/metrics"), "{}", lines[5]);
    p.kill();
}

#[test]
fn sigterm_logs_what_it_releases_and_exits_0() {
    for signal in ["TERM", "INT"] {
        let mut p = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
        let mut a = Client::connect(p.addr);
        let mut b = Client::connect(p.addr);
        a.lock("a1", "x");
        a.share("a2", "y");
        b.send("b1 LOCK x");
        b.sync();
        send_signal(&p, signal);
        let code = p.wait_exit(Duration::from_secs(10));
        assert_eq!(code, Ok(Some(0)), "SIG{signal}: {:?}", p.stderr);
        a.expect_closed();
        b.expect_closed();
        p.drain_stderr(Duration::from_millis(200));
        let line = p
            .stderr
            .iter()
            .find(|l| l.contains(&format!("SIG{signal} received")))
            .unwrap_or_else(|| panic!("no SIG{signal} line: {:?}", p.stderr));
        assert!(
            line.ends_with(
                "shutting down; closing 2 connections, releasing 2 holds and cancelling 1 waits"
            ),
            "{line}"
        );
        assert!(
            p.stderr
                .iter()
                .any(|l| l.ends_with("stopped: 0 connections, 0 holds and 0 waits left")),
            "{:?}",
            p.stderr
        );
    }
}

/// Parses the `(N more since the last such line)` of a rate-limited line (0 if none).
fn left_out(line: &str) -> u64 {
    line.split_once(" more since the last such line)")
        .and_then(|(before, _)| before.rsplit_once('(')?.1.parse().ok())
        .unwrap_or(0)
}

#[test]
fn refused_connections_are_warned_at_most_once_a_second_with_a_count() {
    let mut p = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--max-connections", "1"]);
    let mut c = Client::connect(p.addr);
    c.sync();
    let start = Instant::now();
    let refuse = |n: usize| {
        for _ in 0..n {
            let mut r = Client::connect(p.addr);
            assert_eq!(r.recv(), "* ERR limit too many connections");
            r.expect_closed();
        }
    };
    refuse(30);
    std::thread::sleep(Duration::from_millis(1_100));
    refuse(1);
    let elapsed = start.elapsed().as_secs() + 1;
    let warned = |l: &[String]| -> Vec<String> {
        l.iter()
            .filter(|l| {
                l.contains(" WARN ") && l.contains("refused native connection from 127.0.0.1:")
            })
            .cloned()
            .collect()
    };
    stderr_until(&mut p, "31 refusals in the warnings", |l| {
        warned(l).iter().map(|l| 1 + left_out(l)).sum::<u64>() == 31
    });
    let lines = warned(&p.stderr);
    assert!(
        (lines.len() as u64) <= elapsed + 1 && lines.len() >= 2,
        "at most one line per second: {lines:?}"
    );
    assert!(
        lines[0].contains("1 connections open (--max-connections)"),
        "{}",
        lines[0]
    );
    assert!(lines.iter().skip(1).any(|l| left_out(l) > 0), "{lines:?}");
    assert_eq!(c.stats()["refused_connections_total"], 31);
    p.kill();
}

#[test]
fn limit_and_auth_refusals_name_the_client_not_a_slot() {
    let dir = std::env::temp_dir().join(format!("lockbox-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let mut p = ServerProcess::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--max-pending",
        "1",
        "--auth-file",
        secret.to_str().unwrap(),
    ]);
    let mut a = Client::connect(p.addr);
    assert_eq!(a.req("a0 AUTH s3cret"), "a0 OK");
    assert_eq!(a.req("a1 NAME worker-7"), "a1 OK");
    a.lock("a2", "x");
    assert_err(&a.req("a3 LOCK y"), "a3", "limit");
    let mut b = Client::connect(p.addr);
    assert_err(&b.req("b1 AUTH wrong"), "b1", "auth_failed");
    b.expect_closed();
    let me = a.addr();
    let limit_line = format!("{me} (worker-7): lock request refused, 1 holds and waits");
    let auth_line = format!("{}: wrong AUTH secret, closing", b.addr());
    stderr_until(&mut p, "the limit and auth warnings", |l| {
        l.iter()
            .any(|l| l.contains(" WARN ") && l.contains(&limit_line))
            && l.iter()
                .any(|l| l.contains(" WARN ") && l.contains(&auth_line))
    });
    assert!(
        !p.stderr
            .iter()
            .any(|l| l.contains("client 0") || l.contains("client 1")),
        "{:?}",
        p.stderr
    );
    let s = a.stats();
    assert_eq!(
        (s["limit_refusals_total"], s["auth_failures_total"]),
        (1, 1)
    );
    p.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Error texts and STATS
// ---------------------------------------------------------------------------

#[test]
fn errors_name_their_input() {
    let mut c = Client::connect(start());
    for (req, reply) in [
        ("a FROB x", "a ERR unknown_command unknown verb 'FROB'"),
        (
            "b LOCK x bogus=1",
            "b ERR bad_option unknown option 'bogus'",
        ),
        (
            "c LOCK x wait=12x",
            "c ERR bad_option wait: '12x' is not a number of milliseconds",
        ),
        (
            "d LOCK x hold=99999999999",
            "d ERR bad_option hold: '99999999999' is over the limit of 4294967295 milliseconds",
        ),
        (
            "e SHARE x max=-1",
            "e ERR bad_option max: '-1' is not a number",
        ),
        (
            "f LOCK x max=2",
            "f ERR bad_option option 'max' does not apply to this verb",
        ),
        (
            "g LOCK x wait=1 WAIT=2",
            "g ERR bad_option repeated option 'WAIT'",
        ),
        (
            "h LOCK x wait",
            "h ERR bad_option expected key=value, got 'wait'",
        ),
        (
            "i UNLOCK x 12ab",
            "i ERR bad_option token: '12ab' is not a number",
        ),
        ("j PING now", "j ERR bad_request unexpected argument 'now'"),
    ] {
        assert_eq!(c.req(req), reply, "{req}");
    }
    // Quotes are escaped (no control byte, quote or backslash gets through) and cut.
    c.send_bytes(b"k FR\x01O'B\\\xff\n");
    assert_eq!(
        c.recv(),
        "k ERR unknown_command unknown verb 'FR\\x01O\\x27B\\x5c\\xff'"
    );
    let long = "Z".repeat(100);
    assert_eq!(
        c.req(&format!("l {long}")),
        format!("l ERR unknown_command unknown verb '{}...'", &long[..32])
    );
    c.sync();
}

#[test]
fn stats_report_version_pid_and_refusals() {
    let mut c = Client::connect(start());
    let rows = c.req_rows("s STATS");
    let version = format!("s STAT version {}", env!("CARGO_PKG_VERSION"));
    let at = rows
        .iter()
        .position(|r| r == &version)
        .expect("a version row");
    assert!(
        rows[at - 1].starts_with("s STAT auth_timeouts_total "),
        "version follows the keys of the first release: {rows:?}"
    );
    // Keys added later come after it: the timer lateness rows, then waits_total, last.
    assert!(
        rows[at + 1].starts_with("s STAT timers_fired_total "),
        "{rows:?}"
    );
    assert!(
        rows[rows.len() - 2].starts_with("s STAT timer_lateness_le_1000000us "),
        "{rows:?}"
    );
    assert!(
        rows.last().unwrap().starts_with("s STAT waits_total "),
        "{rows:?}"
    );
    let s = c.stats();
    // The server runs in this process.
    assert_eq!(s["pid"], u64::from(std::process::id()));
    for k in [
        "refused_connections_total",
        "limit_refusals_total",
        "auth_failures_total",
    ] {
        assert_eq!(s[k], 0, "{k}");
    }
    // Keys of the first version keep their places: uptime_ms first, the cmd_ rows next
    // to each other.
    assert!(rows[0].starts_with("s STAT uptime_ms "), "{rows:?}");
}
