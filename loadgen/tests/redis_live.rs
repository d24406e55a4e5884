//! A short run against a real Redis, started on a free loopback port. Skips, with a
//! `SKIP` line on the terminal saying why, when `redis-server` is not installed, unless
//! `CI=true` or `LOCKBOX_REQUIRE_REDIS_SERVER=1`, which make that a failure.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Redis(Child);

/// Skipping is not allowed: in CI, or when asked.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("LOCKBOX_REQUIRE_REDIS_SERVER").is_ok_and(|v| v == "1")
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Says on the terminal that the test is skipped (cargo's test harness captures
/// `print!`/`eprint!` of passing tests, so this writes to stderr directly), or fails
/// when skipping is not allowed.
fn skip(why: &str) {
    use std::io::Write;
    assert!(
        !required(),
        "{why} (CI or LOCKBOX_REQUIRE_REDIS_SERVER=1: redis-server is required)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIP loadgen against redis-server: {why}"
    );
}

fn start_redis() -> Option<(Redis, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => Redis(c),
        Err(e) => {
            skip(&format!(
                "cannot start redis-server ({e}); install it with apt-get install redis-server"
            ));
            return None;
        }
    };
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(&addr).is_ok() {
            return Some((child, addr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    skip(&format!("redis-server did not start listening on {addr}"));
    None
}

fn run(args: &str) -> loadgen::Report {
    let v: Vec<String> = args.split_whitespace().map(String::from).collect();
    loadgen::run(&loadgen::parse_args(&v).unwrap()).unwrap()
}

#[test]
fn redis_ping_and_verified_locks() {
    let Some((_redis, addr)) = start_redis() else {
        return;
    };
    let r = run(&format!(
        "--target redis --server {addr} --mode ping --clients 4 --pipeline 4 --cycles 2000 --quiet"
    ));
    assert_eq!(r.cycles, 2000, "{r}");
    assert_eq!(r.errors, 0, "{r}");

    // Contended, with short key lifetimes so expiry races happen too.
    let r = run(&format!(
        "--target redis --server {addr} --clients 8 --pipeline 2 --threads 2 --locks 2 \
         --work-ms 1 --hold 3 --wait 500 --duration 0.8 --verify --quiet"
    ));
    assert_eq!(r.violations, 0, "{r}");
    assert_eq!(r.errors, 0, "{r}");
    assert!(r.cycles > 20, "{r}");

    let r = run(&format!(
        "--target redis --server {addr} --clients 8 --pipeline 4 --locks 10000 --cycles 3000 \
         --verify --quiet"
    ));
    assert_eq!(r.violations, 0, "{r}");
    assert_eq!(r.cycles, 3000, "{r}");
    assert_eq!(r.expired, 0, "{r}");
}
