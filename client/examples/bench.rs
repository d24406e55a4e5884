//! Lock cycles per second through the async client: N tasks over one connection, each
//! looping `LOCK <name> [wait=W] [hold=H]` -> `OK <token>` -> `UNLOCK <name> <token>`
//! -> `OK`, for a fixed time.
//!
//! The workload is loadgen's lock cycle with `--clients 1 --pipeline N`: every cycle
//! picks its name uniformly from `PREFIX0`..`PREFIX(K-1)` with a seeded PRNG (so with
//! K = 10000 and 50 tasks a cycle rarely meets another one's hold, and then waits), and
//! `--wait`/`--hold` send the same options. It runs on one thread (a current-thread
//! runtime, tasks spawned with `tokio::spawn` as an application would; a `LocalSet`
//! costs one more `epoll_wait` per batch of replies), like loadgen's one poll loop,
//! and reports its own CPU time per cycle
//! (and with `--server-pid`, the server's) so the client's cost can be compared with
//! loadgen's on the same server.
//!
//! ```sh
//! cargo run --release -p lockbox-client --example bench -- --tasks 50 --duration 5 --server 127.0.0.1:7654
//! ```
//!
//! Without `--server` it starts a lockbox in-process on 127.0.0.1:0 (sharing this
//! machine's cores with the client; use a separate server for real measurements).

use lockbox_client::Client;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clock ticks per second of /proc's utime/stime (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

struct Args {
    tasks: usize,
    duration: f64,
    server: Option<String>,
    locks: u64,
    prefix: String,
    wait: Option<u32>,
    hold: Option<u32>,
    seed: u64,
    server_pid: Option<u32>,
    json: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench [--tasks N (50)] [--duration SECONDS (5)] [--server HOST:PORT]\n\
         \x20            [--locks K (10000)] [--prefix P (lg:)] [--wait MS] [--hold MS]\n\
         \x20            [--seed N (1)] [--server-pid PID] [--json]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        tasks: 50,
        duration: 5.0,
        server: None,
        locks: 10_000,
        prefix: "lg:".to_string(),
        wait: None,
        hold: None,
        seed: 1,
        server_pid: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--tasks" => a.tasks = value().parse().unwrap_or_else(|_| usage()),
            "--duration" => a.duration = value().parse().unwrap_or_else(|_| usage()),
            "--server" => a.server = Some(value()),
            "--locks" => a.locks = value().parse().unwrap_or_else(|_| usage()),
            "--prefix" => a.prefix = value(),
            "--wait" => a.wait = Some(value().parse().unwrap_or_else(|_| usage())),
            "--hold" => a.hold = Some(value().parse().unwrap_or_else(|_| usage())),
            "--seed" => a.seed = value().parse().unwrap_or_else(|_| usage()),
            "--server-pid" => a.server_pid = Some(value().parse().unwrap_or_else(|_| usage())),
            "--json" => a.json = true,
            _ => usage(),
        }
    }
    if a.tasks == 0 || a.locks == 0 || !a.duration.is_finite() || a.duration <= 0.0 {
        usage()
    }
    a
}

fn start_local_server() -> String {
    let cfg = lockbox::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let server = lockbox::server::Server::bind(cfg).expect("bind a local lockbox");
    let addr = server.local_addr().to_string();
    std::thread::spawn(move || server.run());
    addr
}

/// User + system CPU seconds of a process, from `/proc/<pid>/stat` (Linux only).
fn cpu_secs(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: utime and stime are fields 14 and 15.
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut + st) as f64 / USER_HZ)
}

/// (user, system) CPU seconds of this process.
fn self_cpu() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut as f64 / USER_HZ, st as f64 / USER_HZ))
}

/// The splitmix64 generator (as loadgen uses for its names).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Default)]
struct Tally {
    cycles: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

async fn run(args: &Args, addr: &str) {
    let client = Client::connect(addr).await.unwrap_or_else(|e| {
        eprintln!("connect {addr}: {e}");
        std::process::exit(1)
    });
    let prefix: Arc<str> = args.prefix.as_str().into();
    let tally = Arc::new(Tally::default());
    let server_cpu0 = args.server_pid.and_then(|p| cpu_secs(&p.to_string()));
    let cpu0 = self_cpu();
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..args.tasks {
        let (client, prefix, tally) = (client.clone(), prefix.clone(), tally.clone());
        let (wait, hold, locks) = (args.wait, args.hold, args.locks);
        let mut rng = args.seed ^ (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        handles.push(tokio::spawn(async move {
            while !tally.stop.load(Ordering::Relaxed) {
                let r = splitmix64(&mut rng);
                let n = ((u128::from(r) * u128::from(locks)) >> 64) as u64;
                let mut b = client.lock(lock_name(&prefix, n));
                if let Some(w) = wait {
                    b = b.wait(w);
                }
                if let Some(h) = hold {
                    b = b.hold(h);
                }
                let ok = match b.await {
                    Ok(g) => g.release().await.is_ok(),
                    Err(_) => false,
                };
                let c = if ok { &tally.cycles } else { &tally.errors };
                c.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let duration = Duration::from_secs_f64(args.duration);
    tokio::time::sleep(duration).await;
    let window = (
        tally.cycles.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    );
    tally.stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu1 = self_cpu();
    let server_cpu1 = args.server_pid.and_then(|p| cpu_secs(&p.to_string()));
    let n = tally.cycles.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    let (user, sys) = match (cpu0, cpu1) {
        (Some((u0, s0)), Some((u1, s1))) => ((u1 - u0).max(0.0), (s1 - s0).max(0.0)),
        _ => (f64::NAN, f64::NAN),
    };
    let per = |s: f64| if n > 0 { s * 1e6 / n as f64 } else { 0.0 };
    let server_cpu = match (server_cpu0, server_cpu1) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => None,
    };
    let window_cps = window.0 as f64 / window.1;
    if args.json {
        let server = match server_cpu {
            Some(s) => format!(
                r#"{{"pid":{},"cpu_s":{s:.3},"cpu_us_per_cycle":{:.4}}}"#,
                args.server_pid.unwrap_or(0),
                per(s)
            ),
            None => "null".to_string(),
        };
        println!(
            r#"{{"tasks":{},"locks":{},"wait_ms":{},"hold_ms":{},"cycles":{n},"errors":{errors},"window_cycles":{},"elapsed_s":{:.4},"total_s":{secs:.4},"cycles_per_sec":{window_cps:.1},"client_cpu":{{"user_s":{user:.3},"sys_s":{sys:.3},"cpu_us_per_cycle":{:.4},"percent":{:.1}}},"server":{server}}}"#,
            args.tasks,
            args.locks,
            opt_json(args.wait),
            opt_json(args.hold),
            window.0,
            window.1,
            per(user + sys),
            (user + sys) / secs * 100.0,
        );
    } else {
        println!(
            "server {addr}  tasks {}  locks {}  duration {:.2}s  cycles {}  errors {errors}  cycles/s {window_cps:.0}",
            args.tasks, args.locks, window.1, window.0
        );
        println!(
            "client cpu: user {user:.2}s  sys {sys:.2}s  = {:.2} us/cycle ({n} cycles in {secs:.2}s, {:.0}% of one core)",
            per(user + sys),
            (user + sys) / secs * 100.0
        );
        if let Some(s) = server_cpu {
            println!("server cpu: {s:.2}s = {:.2} us/cycle", per(s));
        }
    }
}

/// `prefix` followed by `n` in decimal, as loadgen writes its names (the client takes
/// an owned name, so a cycle builds one).
fn lock_name(prefix: &str, mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut name = String::with_capacity(prefix.len() + digits.len() - i);
    name.push_str(prefix);
    // Only ASCII digits were written.
    name.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
    name
}

fn opt_json(v: Option<u32>) -> String {
    v.map_or_else(|| "null".to_string(), |x| x.to_string())
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let addr = args.server.clone().unwrap_or_else(start_local_server);
    rt.block_on(run(&args, &addr));
}
