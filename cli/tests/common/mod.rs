//! Shared helpers of the lockbox-cli tests (`mod common;` in each file).
//!
//! - [`start`] / [`start_with`]: a real lockbox, in-process, on `127.0.0.1:0`.
//! - [`Raw`]: a raw protocol client, to check the server's view independently of the
//!   binary under test.
//! - [`Proxy`]: a TCP relay in front of a server that the test can cut (the server
//!   died) or freeze (the network dropped every packet, so nothing, not even a close,
//!   gets through).
//! - [`cli`] / [`Bg`]: the real `lockbox-cli` binary, run to completion or in the
//!   background; every child is killed on drop, also when a test panics.
//! - [`Dir`]: a scratch directory the commands under test write to.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lockbox::config::Config;
use lockbox::server::Server;

/// How long any expected state, reply or exit may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

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

/// An address on 127.0.0.1 where nothing listens (bound, then closed).
pub fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A raw native-protocol client for checking the server's view.
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
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
        }
    }

    /// Sends `line` and returns the next reply line.
    pub fn req(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        let mut s = String::new();
        self.reader.read_line(&mut s).expect("raw read");
        assert!(s.ends_with('\n'), "connection closed: {s:?}");
        s.trim_end().to_string()
    }

    /// Sends `line` without waiting for a reply (a request that queues).
    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// `LOCK name wait=0`: the token, or `None` when busy.
    pub fn try_lock(&mut self, name: &str) -> Option<u64> {
        let reply = self.req(&format!("l LOCK {name} wait=0"));
        if reply == "l TIMEOUT" {
            return None;
        }
        let tok = reply
            .strip_prefix("l OK ")
            .unwrap_or_else(|| panic!("raw LOCK {name}: {reply}"));
        Some(tok.parse().unwrap())
    }

    /// `UNLOCK` that must succeed.
    pub fn unlock(&mut self, name: &str) {
        assert_eq!(self.req(&format!("u UNLOCK {name}")), "u OK");
    }

    /// What follows `OK ` in `INSPECT <name>`.
    pub fn inspect(&mut self, name: &str) -> String {
        let reply = self.req(&format!("i INSPECT {name}"));
        reply
            .strip_prefix("i OK ")
            .unwrap_or_else(|| panic!("INSPECT: {reply}"))
            .to_string()
    }

    /// The token of an exclusively held lock (`None` when not held exclusively).
    pub fn holder_token(&mut self, name: &str) -> Option<u64> {
        let i = self.inspect(name);
        i.split(' ')
            .find_map(|f| f.strip_prefix("token="))
            .map(|t| t.parse().unwrap())
    }

    /// True when the lock has no holders.
    pub fn is_free(&mut self, name: &str) -> bool {
        self.inspect(name).starts_with("mode=free ")
    }
}

/// Polls `f` until true, at most [`PATIENCE`].
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for: {what}");
}

/// A TCP relay to a server. [`Proxy::kill`] closes every relayed connection at once
/// (what clients see when the server dies); [`Proxy::freeze`] silently drops every
/// byte in both directions from then on (a network partition: no close, no reply).
pub struct Proxy {
    /// The address clients connect to.
    pub addr: String,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    frozen: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts a relay to `upstream` on `127.0.0.1:0`.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let frozen = Arc::new(AtomicBool::new(false));
        let (c2, f2, up) = (conns.clone(), frozen.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
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
                    f2.clone(),
                );
                pipe(server, client, f2.clone());
            }
        });
        Proxy {
            addr,
            conns,
            frozen,
        }
    }

    /// Closes every relayed connection (both sides) now.
    pub fn kill(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Drops everything relayed from now on, in both directions, without closing.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
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
        if !frozen.load(Ordering::SeqCst) {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        }
    });
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_lockbox-cli")
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Out {
    /// Exit code (`None` if a signal killed lockbox-cli itself).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Out {
    /// Asserts the run failed with `code` and exactly one line on stderr, no panic;
    /// returns that line.
    pub fn one_line_error(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr must be one line: {self:?}");
        assert!(lines[0].starts_with("lockbox-cli: "), "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        assert!(!self.stderr.contains("RUST_BACKTRACE"), "{self:?}");
        lines[0]
    }

    /// stdout parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// A command line for the binary: no inherited lockbox environment.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args)
        .env_remove("LOCKBOX_SERVER")
        .env_remove("LOCKBOX_AUTH_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs the binary with `args` to completion (at most [`PATIENCE`]).
pub fn cli(args: &[&str]) -> Out {
    Bg::spawn(command(args)).finish()
}

/// Runs `cmd` (made by [`command`]) to completion.
pub fn cli_cmd(cmd: Command) -> Out {
    Bg::spawn(cmd).finish()
}

/// Kills the child on drop (also on panic), then reaps it.
struct ChildGuard(Child);

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

/// The binary running in the background.
pub struct Bg {
    child: ChildGuard,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

impl Bg {
    /// Starts `cmd` (made by [`command`]).
    pub fn spawn(mut cmd: Command) -> Bg {
        let mut child = cmd.spawn().expect("spawn lockbox-cli");
        let out = reader_thread(child.stdout.take().expect("stdout"));
        let err = reader_thread(child.stderr.take().expect("stderr"));
        Bg {
            child: ChildGuard(child),
            out: Some(out),
            err: Some(err),
        }
    }

    /// Starts the binary with `args`.
    pub fn start(args: &[&str]) -> Bg {
        Bg::spawn(command(args))
    }

    /// lockbox-cli's process id.
    pub fn pid(&self) -> i32 {
        self.child.0.id() as i32
    }

    /// True while it runs.
    pub fn running(&mut self) -> bool {
        self.child.0.try_wait().expect("try_wait").is_none()
    }

    /// Sends `sig` to lockbox-cli.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// Waits for it to exit (at most [`PATIENCE`]) and collects its output.
    pub fn finish(mut self) -> Out {
        let deadline = Instant::now() + PATIENCE;
        let status: ExitStatus = loop {
            if let Some(st) = self.child.0.try_wait().expect("try_wait") {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "lockbox-cli did not exit within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Out {
            code: status.code(),
            stdout: self.out.take().unwrap().join().unwrap(),
            stderr: self.err.take().unwrap().join().unwrap(),
        }
    }
}

/// A scratch directory, removed on drop.
pub struct Dir(PathBuf);

impl Dir {
    /// A new empty directory under the system's temporary directory.
    pub fn new() -> Dir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "lockbox-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    /// `name` inside the directory, as a string for shell commands.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Waits for file `name` to exist with a complete line; returns it trimmed.
    pub fn wait_line(&self, name: &str) -> String {
        let path = self.0.join(name);
        let mut got = String::new();
        eventually(&format!("file {name}"), || {
            match std::fs::read_to_string(&path) {
                Ok(s) if s.ends_with('\n') => {
                    got = s.trim().to_string();
                    true
                }
                _ => false,
            }
        });
        got
    }

    /// The content of file `name`, if it exists.
    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(name))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
