//! Lock cycles per second through the async client: N tasks over one connection, each
//! looping `LOCK <name>` -> `OK <token>` -> `UNLOCK <name> <token>` -> `OK` on its own
//! name (no contention), for a fixed time.
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

struct Args {
    tasks: usize,
    duration: f64,
    server: Option<String>,
}

fn usage() -> ! {
    eprintln!("usage: bench [--tasks N (50)] [--duration SECONDS (5)] [--server HOST:PORT]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        tasks: 50,
        duration: 5.0,
        server: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--tasks" => a.tasks = value().parse().unwrap_or_else(|_| usage()),
            "--duration" => a.duration = value().parse().unwrap_or_else(|_| usage()),
            "--server" => a.server = Some(value()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if a.tasks == 0 || !a.duration.is_finite() || a.duration <= 0.0 {
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = parse_args();
    let addr = args.server.clone().unwrap_or_else(start_local_server);
    let client = Client::connect(&addr).await.unwrap_or_else(|e| {
        eprintln!("connect {addr}: {e}");
        std::process::exit(1)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for t in 0..args.tasks {
        let (client, stop, cycles, errors) =
            (client.clone(), stop.clone(), cycles.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("bench:{t}");
            while !stop.load(Ordering::Relaxed) {
                match client.lock(name.as_str()).await {
                    Ok(g) => match g.release().await {
                        Ok(()) => {
                            cycles.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = cycles.load(Ordering::Relaxed);
    println!(
        "server {addr}  tasks {}  duration {secs:.2}s  cycles {n}  errors {}  cycles/s {:.0}",
        args.tasks,
        errors.load(Ordering::Relaxed),
        n as f64 / secs
    );
}
