//! The Redis dialect (`--redis-listen`) over real TCP: a native wait queued behind a
//! Redis-dialect key, malformed RESP, and the real lock clients (npm `dist-lock` on
//! `redis` 0.12, npm `redlock` on `ioredis`, PyPI `redis` (redis-py) `Lock`) by running
//! the scripts in `tests/redis/`.
//!
//! The real clients need `LOCKBOX_REDIS_CLIENTS_DIR` (a directory where `npm ci` ran
//! with `tests/redis/package.json` and `package-lock.json`) and `LOCKBOX_PYTHON` (a
//! Python with `tests/redis/requirements.txt` installed); `.ci/run` sets both. Without
//! them those tests print a SKIP line and pass, unless `LOCKBOX_REQUIRE_REDIS_CLIENTS=1`,
//! which makes a missing install a failure. `LOCKBOX_NODE` names the node binary.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Client;
use lockbox::proto::Protocol;

/// The scripts have their own timeouts; this one is the last resort.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn required() -> bool {
    std::env::var("LOCKBOX_REQUIRE_REDIS_CLIENTS").is_ok_and(|v| v == "1")
}

/// The npm install directory, or `None` (after a SKIP line) when the test should skip.
fn npm_dir() -> Option<PathBuf> {
    match std::env::var_os("LOCKBOX_REDIS_CLIENTS_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let m = dir.join("node_modules");
            for p in ["dist-lock", "redis", "redlock", "ioredis"] {
                assert!(
                    m.join(p).is_dir(),
                    "LOCKBOX_REDIS_CLIENTS_DIR={} has no node_modules/{p}: run `npm ci` there \
                     with tests/redis/package.json and package-lock.json",
                    dir.display()
                );
            }
            Some(dir)
        }
        None if required() => panic!(
            "LOCKBOX_REQUIRE_REDIS_CLIENTS=1 but LOCKBOX_REDIS_CLIENTS_DIR is not set (see .ci/run)"
        ),
        None => {
            common::skip_notice(
                "npm Redis lock clients (dist-lock, redlock)",
                "set LOCKBOX_REDIS_CLIENTS_DIR (see .ci/run)",
            );
            None
        }
    }
}

/// The Python with redis-py installed, or `None` (after a SKIP line).
fn python() -> Option<PathBuf> {
    match std::env::var_os("LOCKBOX_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if required() => {
            panic!("LOCKBOX_REQUIRE_REDIS_CLIENTS=1 but LOCKBOX_PYTHON is not set (see .ci/run)")
        }
        None => {
            common::skip_notice(
                "redis-py Lock",
                "set LOCKBOX_PYTHON to a Python with tests/redis/requirements.txt installed",
            );
            None
        }
    }
}

/// A server with the Redis listener: (native, redis).
fn start() -> (SocketAddr, SocketAddr) {
    let s = common::start_with_listeners(&[Protocol::Redis], |_| {});
    (s.addr(Protocol::Native), s.addr(Protocol::Redis))
}

/// Runs `program tests/redis/<script> <addr>`, asserts it exits 0 and that its last line
/// is the script's `{"pass": ...}` summary.
fn run_script(mut cmd: Command, script: &str, addr: SocketAddr) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/redis")
        .join(script);
    cmd.arg(&path).arg(addr.to_string());
    let (status, stdout, report) = common::run_client_script(cmd, script, SCRIPT_TIMEOUT);
    match status {
        Some(s) if s.success() => {
            let last = stdout.lines().last().unwrap_or("");
            assert!(
                last.replace(' ', "").starts_with("{\"pass\":"),
                "{script}: no pass line\n{report}"
            );
            println!("{report}");
        }
        Some(s) => panic!("{script} failed ({s})\n{report}"),
        None => panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}\n{report}"),
    }
}

fn node(npm: &Path) -> Command {
    let node = std::env::var_os("LOCKBOX_NODE").unwrap_or_else(|| "node".into());
    let mut c = Command::new(node);
    c.arg("--no-deprecation")
        .env("NODE_PATH", npm.join("node_modules"));
    c
}

#[test]
fn redis_dist_lock_client() {
    let Some(npm) = npm_dir() else { return };
    let (_, redis) = start();
    run_script(node(&npm), "distlock.js", redis);
}

#[test]
fn redis_redlock_client() {
    let Some(npm) = npm_dir() else { return };
    let (_, redis) = start();
    run_script(node(&npm), "redlock.js", redis);
}

#[test]
fn redis_py_lock_client() {
    let Some(py) = python() else { return };
    let (_, redis) = start();
    run_script(Command::new(py), "redis_py_lock.py", redis);
}

/// A raw RESP connection.
struct Resp(TcpStream);

impl Resp {
    fn connect(addr: SocketAddr) -> Resp {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Resp(s)
    }

    fn send(&mut self, args: &[&str]) {
        let mut v = format!("*{}\r\n", args.len());
        for a in args {
            v += &format!("${}\r\n{a}\r\n", a.len());
        }
        self.0.write_all(v.as_bytes()).unwrap();
    }

    /// Reads until `want` bytes arrived (or the peer closed); returns them.
    fn read(&mut self, want: usize) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while buf.len() < want {
            match self.0.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&buf)),
            }
        }
        String::from_utf8(buf).unwrap()
    }

    fn req(&mut self, args: &[&str], reply: &str) {
        self.send(args);
        assert_eq!(self.read(reply.len()), reply, "{args:?}");
    }

    /// True when the server closed the connection.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0) | Err(_))
    }
}

#[test]
fn a_native_wait_queued_behind_a_key_is_granted_when_it_is_deleted_or_expires() {
    let (native, redis) = start();
    let mut r = Resp::connect(redis);
    let mut n = Client::connect(native);
    r.req(&["SET", "job", "t1", "NX", "PX", "60000"], "+OK\r\n");
    n.send("w1 LOCK job wait=60000");
    n.expect_silence(50);
    let inspect = n.inspect("job");
    assert!(
        inspect.contains("owner=detached") && inspect.contains("waiters=1"),
        "{inspect}"
    );
    // Another Redis connection deletes it: the native waiter gets it at once.
    let mut r2 = Resp::connect(redis);
    r2.req(&["DEL", "job"], ":1\r\n");
    assert!(n.recv().starts_with("w1 OK "));
    // A native hold: DEL leaves it, SET NX finds it taken.
    r2.req(&["DEL", "job"], ":0\r\n");
    r2.req(&["SET", "job", "t2", "NX", "PX", "100"], "$-1\r\n");
    n.unlock("u1", "job");
    // Expiry: the key made by a connection that is gone ends at its PX.
    r.req(&["SET", "job", "t3", "NX", "PX", "150"], "+OK\r\n");
    r.req(&["QUIT"], "+OK\r\n");
    assert!(r.closed());
    n.send("w2 LOCK job wait=60000");
    let t0 = Instant::now();
    let granted = n
        .recv_within(Duration::from_secs(10))
        .expect("granted at expiry");
    assert!(granted.starts_with("w2 OK "), "{granted}");
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "not before the key's PX"
    );
}

#[test]
fn malformed_resp_is_answered_and_closed_and_harms_nobody_else() {
    let (_, redis) = start();
    let mut keeper = Resp::connect(redis);
    keeper.req(&["SET", "kept", "v"], "+OK\r\n");
    for (bad, want) in [
        (
            &b"*1\r\n$-2\r\n"[..],
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$4294967296\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1048577\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n*1\r\n$1\r\na\r\n",
            "-ERR Protocol error: expected '$', got '*'\r\n",
        ),
        (
            b"*1\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*1\r\n$1\r\naXY",
            "-ERR Protocol error: expected CRLF after bulk data\r\n",
        ),
    ] {
        let mut c = Resp::connect(redis);
        c.0.write_all(bad).unwrap();
        assert_eq!(c.read(want.len()), want, "{bad:?}");
        assert!(c.closed(), "{bad:?} closes");
    }
    // An inline line that never ends is cut off at the limit, not buffered.
    let mut c = Resp::connect(redis);
    let junk = vec![b'a'; 70 * 1024];
    let _ = c.0.write_all(&junk);
    let want = "-ERR Protocol error: too big inline request\r\n";
    assert_eq!(c.read(want.len()), want);
    assert!(c.closed());
    keeper.req(&["GET", "kept"], "$1\r\nv\r\n");
}
