//! One run from start to end: resolve the servers, build the [`Plan`] the poll loops
//! share, start them, stop the load at `--duration` (or after `--cycles`), print a
//! progress line per second, enforce `--timeout`, then add the loops' tallies up
//! into a [`Report`].
//!
//! Owns the controlling thread and what it shares with the poll loops ([`Plan`],
//! [`Shared`], [`Msg`]); the loops themselves are in `worker`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::ascii::fmt_u64;
use crate::options::{CycleKind, Options, Target, DEFAULT_REDIS_HOLD_MS};
use crate::procfs::{cpu_secs_between, read_cpu_secs, read_status_kb};
use crate::report::{new_histogram, ChaosCounts, Check, CpuUsage, Latency, Report, ServerUsage};
use crate::shard::{fmix64, PrefixRouter};
use crate::verify::{Property, Verifier};
use crate::worker::{self, Samples, WorkerInit, WorkerResult};

/// Why a run could not happen at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// A `--server` address did not resolve.
    Resolve(String),
    /// Connecting failed (refused, timed out, out of file descriptors...).
    Connect(String),
    /// `--server-pid` names no readable process.
    ServerPid(String),
    /// Anything else (a poll loop could not be created, a thread panicked).
    Internal(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Resolve(m) => write!(f, "cannot resolve server address: {m}"),
            RunError::Connect(m) => write!(f, "cannot connect: {m}"),
            RunError::ServerPid(m) => write!(f, "--server-pid: {m}"),
            RunError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for RunError {}

/// How long connecting may take at most (plus 1 ms per connection).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections being set up at once, over all poll loops (below a listen backlog of 128).
const CONNECT_PARALLEL: usize = 96;
/// Connections one poll loop sets up at once, whatever the number of loops.
const CONNECT_PARALLEL_MIN: usize = 8;
/// Samples kept in a report.
const SAMPLES_MAX: usize = 50;
/// When the first progress line is printed (a little after the first full second, so
/// the loops' first interval has arrived).
const FIRST_PROGRESS: Duration = Duration::from_millis(1030);
/// Time between progress lines (the per-second interval).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Immutable run plan shared by the poll loops.
pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) mode: CycleKind,
    pub(crate) servers: Vec<String>,
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) pipeline: usize,
    pub(crate) locks: u64,
    pub(crate) prefix: Vec<u8>,
    /// Routes `prefix ++ decimal(name)` to a server.
    router: PrefixRouter,
    pub(crate) work: Duration,
    pub(crate) wait: Option<Duration>,
    /// ` wait=.. hold=.. max=..\n` for lockbox acquires.
    pub(crate) acquire_suffix: Vec<u8>,
    /// Redis `PX` value as a bulk string (`$len\r\nvalue\r\n`).
    pub(crate) redis_px: Vec<u8>,
    /// Redis `EVAL` header up to the key.
    pub(crate) redis_eval_head: Vec<u8>,
    pub(crate) retry: Duration,
    pub(crate) drain: Duration,
    pub(crate) verify: bool,
    /// The hold deadline every acquire asks for (`--hold`; Redis: `PX`), if any.
    pub(crate) hold: Option<Duration>,
    /// `--hold` as sent in `hold=`.
    pub(crate) hold_ms: Option<u64>,
    /// `--wait` as sent in `wait=`.
    pub(crate) wait_ms: Option<u64>,
    /// `--max` (share mode).
    pub(crate) max: Option<u64>,
    /// `--chaos`: the fraction of cycles that misbehave.
    pub(crate) chaos: Option<f64>,
    pub(crate) seed: u64,
    pub(crate) cycles_limit: Option<u64>,
    pub(crate) connect_deadline: Instant,
    /// Connections a poll loop sets up at once.
    pub(crate) connect_parallel: usize,
    /// `--id-len`: the width request ids are padded to (0: none).
    pub(crate) id_len: usize,
}

impl Plan {
    /// The plan for `opts` with resolved `addrs`, `threads` poll loops and the hold
    /// deadline `hold_ms` in effect; the connect deadline counts from `t_entry`.
    fn new(
        opts: &Options,
        addrs: Vec<SocketAddr>,
        hold_ms: Option<u64>,
        threads: usize,
        t_entry: Instant,
    ) -> Plan {
        let connections = (opts.clients * opts.servers.len()) as u64;
        Plan {
            target: opts.target,
            mode: opts.mode,
            servers: opts.servers.clone(),
            addrs,
            pipeline: opts.pipeline,
            locks: opts.locks.max(1),
            prefix: opts.prefix.as_bytes().to_vec(),
            router: PrefixRouter::new(&opts.servers, opts.prefix.as_bytes()),
            work: Duration::from_millis(opts.work_ms),
            wait: opts.wait_ms.map(Duration::from_millis),
            acquire_suffix: worker::native::acquire_suffix(opts),
            redis_px: worker::redis::px_bulk(hold_ms.unwrap_or(DEFAULT_REDIS_HOLD_MS)),
            redis_eval_head: worker::redis::eval_head(),
            retry: Duration::from_millis(opts.retry_ms),
            drain: opts.drain,
            verify: opts.verify,
            hold: hold_ms.map(Duration::from_millis),
            hold_ms: opts.hold_ms,
            wait_ms: opts.wait_ms,
            max: if opts.mode == CycleKind::Share {
                opts.max
            } else {
                None
            },
            chaos: opts.chaos,
            seed: opts.seed,
            cycles_limit: opts.cycles,
            connect_deadline: t_entry
                + (CONNECT_TIMEOUT + Duration::from_millis(connections)).min(opts.timeout),
            connect_parallel: (CONNECT_PARALLEL / threads).max(CONNECT_PARALLEL_MIN),
            id_len: opts.id_len.unwrap_or(0),
        }
    }

    /// The server (index) owning lock number `name`.
    pub(crate) fn route(&self, name: u64) -> u16 {
        if self.router.servers() == 1 {
            // one server owns every name: no need to write the name out to hash it
            return 0;
        }
        let mut digits = [0u8; 20];
        self.router.route(fmt_u64(name, &mut digits)) as u16
    }

    /// Lock number `name` as its full name, for messages.
    pub(crate) fn name_string(&self, name: u64) -> String {
        format!("{}{}", String::from_utf8_lossy(&self.prefix), name)
    }
}

/// State shared between the poll loops and the controlling thread.
pub(crate) struct Shared {
    /// Stop issuing new cycles (drain).
    pub(crate) stop: AtomicBool,
    /// Stop now.
    pub(crate) abort: AtomicBool,
    stop_at: Mutex<Option<Instant>>,
    connect_failed: Mutex<Option<String>>,
    /// Cycles started and not failed (`--cycles` budget).
    pub(crate) tickets: AtomicU64,
    /// Cycles completed (`--cycles`).
    pub(crate) completed: AtomicU64,
    pub(crate) verifier: Option<Verifier>,
    /// Per server, the largest grant token any poll loop has seen (`--verify`, lockbox):
    /// a request sent afterwards must get a larger one.
    pub(crate) token_floor: Vec<AtomicU64>,
}

impl Shared {
    fn new(verifier: Option<Verifier>, servers: usize) -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            stop_at: Mutex::new(None),
            connect_failed: Mutex::new(None),
            tickets: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            verifier,
            token_floor: (0..servers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Stop issuing new cycles; the first call records when.
    pub(crate) fn request_stop(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            let mut g = self.stop_at.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                *g = Some(Instant::now());
            }
        }
    }

    /// Stop now, without a drain.
    fn abort_now(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }

    /// Record why connecting failed (the first reason is kept).
    pub(crate) fn set_connect_failed(&self, msg: String) {
        let mut g = self
            .connect_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(msg);
        }
    }

    /// Whether some poll loop failed to connect.
    pub(crate) fn connect_failed(&self) -> bool {
        self.connect_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn take_connect_failure(&self) -> Option<String> {
        self.connect_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// When the load stopped (`end` when it never did), at the latest `end`.
    fn stopped_at(&self, end: Instant) -> Instant {
        self.stop_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(end)
            .min(end)
    }
}

/// What one poll loop did in one per-second interval (for the progress lines).
pub(crate) struct Interval {
    pub(crate) cycles: u64,
    pub(crate) timeouts: u64,
    pub(crate) errors: u64,
    /// Acquire latency, microseconds.
    pub(crate) acquire: Histogram<u64>,
}

impl Interval {
    pub(crate) fn new() -> Interval {
        Interval {
            cycles: 0,
            timeouts: 0,
            errors: 0,
            acquire: new_histogram(),
        }
    }

    fn add(&mut self, other: &Interval) {
        self.cycles += other.cycles;
        self.timeouts += other.timeouts;
        self.errors += other.errors;
        let _ = self.acquire.add(&other.acquire);
    }

    fn reset(&mut self) {
        self.cycles = 0;
        self.timeouts = 0;
        self.errors = 0;
        self.acquire.reset();
    }
}

/// Messages from poll loops to the controlling thread.
pub(crate) enum Msg {
    /// One per-second interval's counts.
    Interval(Box<Interval>),
    /// The loop has ended.
    Done,
}

/// Run the workload described by `opts` and report. Progress lines go to stderr unless
/// `opts.quiet`; nothing else is printed. Blocks for the whole run (at most
/// `opts.timeout`); it starts its own threads and needs nothing from the caller's.
///
/// ```no_run
/// let opts = loadgen::parse_args(&[
///     "--server", "127.0.0.1:7654", "--clients", "8", "--pipeline", "4", "--locks", "3",
///     "--work-ms", "1", "--duration", "1", "--verify", "--quiet",
/// ])
/// .unwrap();
/// let report = loadgen::run(&opts).expect("server reachable");
/// assert_eq!(report.violations, 0, "{report}");
/// assert_eq!(report.errors, 0, "{report}");
/// assert!(report.cycles > 0);
/// println!("{}", report.to_json());
/// ```
pub fn run(opts: &Options) -> Result<Report, RunError> {
    let t_entry = Instant::now();
    let addrs = resolve(&opts.servers)?;
    let server_cpu0 = match opts.server_pid {
        Some(pid) => {
            read_status_kb(pid).map_err(RunError::ServerPid)?;
            read_cpu_secs(&format!("/proc/{pid}/stat"))
        }
        None => None,
    };
    let threads = opts.threads.clamp(1, opts.clients.max(1));
    let hold_ms = effective_hold_ms(opts);
    let plan = Arc::new(Plan::new(opts, addrs, hold_ms, threads, t_entry));
    let shared = Arc::new(Shared::new(
        Verifier::for_run(opts, t_entry),
        opts.servers.len(),
    ));
    let (tx, rx) = mpsc::channel::<Msg>();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles = spawn_workers(opts.clients, threads, &plan, &shared, tx, &barrier)?;
    barrier.wait();
    let start = Instant::now();
    let cpu0 = read_cpu_secs("/proc/self/stat");
    if let Some(msg) = shared.take_connect_failure() {
        shared.abort_now();
        for h in handles {
            let _ = h.join();
        }
        return Err(RunError::Connect(msg));
    }
    let hit_timeout = control(opts, &shared, &rx, threads, t_entry + opts.timeout, start);
    let results = join_workers(handles)?;
    let end = Instant::now();
    let cpu1 = read_cpu_secs("/proc/self/stat");
    let mut r = blank_report(opts, threads, hold_ms);
    r.hit_timeout = hit_timeout;
    r.elapsed_s = shared
        .stopped_at(end)
        .saturating_duration_since(start)
        .as_secs_f64();
    r.total_s = end.saturating_duration_since(t_entry).as_secs_f64();
    let thread_percent = add_tallies(&mut r, &results);
    let wall = end.saturating_duration_since(start).as_secs_f64();
    r.cpu = loadgen_cpu(cpu0, cpu1, wall, thread_percent);
    if let Some(pid) = opts.server_pid {
        match server_usage(pid, server_cpu0, r.cycles) {
            Some(s) => r.server = Some(s),
            None => r
                .error_samples
                .push(format!("server pid {pid} was gone at the end of the run")),
        }
    }
    Ok(r)
}

/// The first address of each server.
fn resolve(servers: &[String]) -> Result<Vec<SocketAddr>, RunError> {
    servers
        .iter()
        .map(|s| {
            s.to_socket_addrs()
                .map_err(|e| RunError::Resolve(format!("{s}: {e}")))?
                .next()
                .ok_or_else(|| RunError::Resolve(format!("{s}: no address")))
        })
        .collect()
}

/// The hold deadline in ms: `--hold`, and for Redis locks the `PX` used without it.
fn effective_hold_ms(opts: &Options) -> Option<u64> {
    match opts.target {
        Target::Redis if opts.mode != CycleKind::Ping => {
            Some(opts.hold_ms.unwrap_or(DEFAULT_REDIS_HOLD_MS))
        }
        _ => opts.hold_ms,
    }
}

/// Start `threads` poll loops, splitting `clients` evenly over them. Each waits at
/// `barrier` once its connections are ready (or failed).
fn spawn_workers(
    clients: usize,
    threads: usize,
    plan: &Arc<Plan>,
    shared: &Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    barrier: &Arc<Barrier>,
) -> Result<Vec<JoinHandle<WorkerResult>>, RunError> {
    // Redis tokens differ between runs and processes, not only between slots.
    let salt = fmix64(
        u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
    );
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let first = clients * t / threads;
        let last = clients * (t + 1) / threads;
        let init = WorkerInit {
            tid: t,
            first_client: first,
            nclients: last - first,
            plan: Arc::clone(plan),
            shared: Arc::clone(shared),
            tx: tx.clone(),
            barrier: Arc::clone(barrier),
            salt: salt ^ fmix64(t as u64 + 1),
        };
        let h = thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || worker::thread_main(init))
            .map_err(|e| RunError::Internal(format!("spawn thread: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

/// Wait for every poll loop's result.
fn join_workers(handles: Vec<JoinHandle<WorkerResult>>) -> Result<Vec<WorkerResult>, RunError> {
    let mut results = Vec::with_capacity(handles.len());
    let mut panicked = false;
    for h in handles {
        match h.join() {
            Ok(r) => results.push(r),
            Err(_) => panicked = true,
        }
    }
    if panicked {
        return Err(RunError::Internal("a poll-loop thread panicked".into()));
    }
    Ok(results)
}

/// The controlling thread's loop until every poll loop is done: stop the load at the
/// end of `--duration`, print the progress lines, and abort at `hard_deadline`.
/// Returns whether the hard deadline cut the run.
fn control(
    opts: &Options,
    shared: &Shared,
    rx: &mpsc::Receiver<Msg>,
    threads: usize,
    hard_deadline: Instant,
    start: Instant,
) -> bool {
    let stop_deadline = opts.duration.map(|d| start + d);
    let mut progress = Progress::new(start, opts.quiet);
    let mut finished = 0usize;
    while finished < threads {
        let now = Instant::now();
        if now >= hard_deadline {
            shared.request_stop();
            shared.abort_now();
            return true;
        }
        if let Some(sd) = stop_deadline {
            if now >= sd {
                shared.request_stop();
            }
        }
        let mut wake = progress.next_print.min(hard_deadline);
        if let Some(sd) = stop_deadline {
            if !shared.stop.load(Ordering::Relaxed) {
                wake = wake.min(sd);
            }
        }
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(Msg::Interval(iv)) => progress.interval.add(&iv),
            Ok(Msg::Done) => finished += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= progress.next_print {
            progress.print(shared.stop.load(Ordering::Relaxed));
        }
    }
    false
}

/// The progress lines on stderr: one per second with that per-second interval's
/// cycles and acquire latency, and the run's timeouts and errors so far.
struct Progress {
    quiet: bool,
    next_print: Instant,
    /// Seconds since the start, at the end of the interval being gathered.
    second: u64,
    /// The interval being gathered, over all poll loops.
    interval: Interval,
    /// Timeouts over the whole run, up to the last line printed.
    timeouts: u64,
    /// Errors over the whole run, up to the last line printed.
    errors: u64,
}

impl Progress {
    fn new(start: Instant, quiet: bool) -> Progress {
        Progress {
            quiet,
            next_print: start + FIRST_PROGRESS,
            second: 1,
            interval: Interval::new(),
            timeouts: 0,
            errors: 0,
        }
    }

    /// Print the interval's line (unless quiet) and start the next interval.
    fn print(&mut self, draining: bool) {
        self.timeouts += self.interval.timeouts;
        self.errors += self.interval.errors;
        if !self.quiet {
            let acq = &self.interval.acquire;
            let q = |q: f64| {
                if acq.is_empty() {
                    0
                } else {
                    acq.value_at_quantile(q)
                }
            };
            eprintln!(
                "loadgen: {:>4}s  per-second interval: {:>9} cycles, acquire_us p50 {} p99 {};  \
                 run so far: timeouts {}, errors {}{}",
                self.second,
                self.interval.cycles,
                q(0.5),
                q(0.99),
                self.timeouts,
                self.errors,
                if draining { "  (draining)" } else { "" }
            );
        }
        self.interval.reset();
        self.second += 1;
        self.next_print += PROGRESS_EVERY;
    }
}

/// A report of `opts` with every measurement still zero.
fn blank_report(opts: &Options, threads: usize, hold_ms: Option<u64>) -> Report {
    Report {
        target: opts.target,
        mode: opts.mode,
        servers: opts.servers.clone(),
        clients: opts.clients,
        pipeline: opts.pipeline,
        threads,
        locks: opts.locks,
        work_ms: opts.work_ms,
        wait_ms: opts.wait_ms,
        hold_ms,
        max: opts.max,
        id_len: opts.id_len,
        seed: opts.seed,
        verify: opts.verify,
        chaos: opts.chaos.map(ChaosCounts::new),
        checks: if opts.verify {
            Property::ALL
                .iter()
                .map(|&p| Check {
                    property: p,
                    checked: 0,
                    violations: 0,
                })
                .collect()
        } else {
            Vec::new()
        },
        elapsed_s: 0.0,
        total_s: 0.0,
        cycles: 0,
        window_cycles: 0,
        cycles_per_sec: 0.0,
        per_server_cycles: vec![0; opts.servers.len()],
        timeouts: 0,
        errors: 0,
        expired: 0,
        unanswered: 0,
        lost_clients: 0,
        violations: 0,
        hit_timeout: false,
        acquire: Latency::default(),
        release: Latency::default(),
        timeout_lateness: Latency::default(),
        cpu: None,
        server: None,
        violation_samples: Vec::new(),
        violation_samples_omitted: 0,
        error_samples: Vec::new(),
        error_samples_omitted: 0,
    }
}

/// Add the poll loops' tallies into `r` (whose `elapsed_s` is set) and return each
/// loop's CPU percentage.
fn add_tallies(r: &mut Report, results: &[WorkerResult]) -> Vec<f64> {
    let mut acq = new_histogram();
    let mut rel = new_histogram();
    let mut late = new_histogram();
    let mut thread_percent = Vec::new();
    for w in results {
        let s = &w.tally;
        r.cycles += s.cycles;
        r.window_cycles += s.window_cycles;
        r.timeouts += s.timeouts;
        r.errors += s.errors;
        r.expired += s.expired;
        r.violations += s.violations;
        if let Some(c) = &mut r.chaos {
            c.add(&s.chaos);
        }
        for c in &mut r.checks {
            c.checked += s.checked[c.property.index()];
            c.violations += s.failed[c.property.index()];
        }
        r.unanswered += w.unanswered;
        r.lost_clients += s.lost_clients;
        for (a, b) in r.per_server_cycles.iter_mut().zip(&s.per_server) {
            *a += b;
        }
        let _ = acq.add(&s.acquire);
        let _ = rel.add(&s.release);
        let _ = late.add(&s.timeout_lateness);
        r.violation_samples_omitted += keep_samples(&mut r.violation_samples, &s.violation_samples);
        r.error_samples_omitted += keep_samples(&mut r.error_samples, &s.error_samples);
        if let Some(p) = w.cpu_percent {
            thread_percent.push(p);
        }
    }
    r.acquire = Latency::from_histogram(&acq);
    r.release = Latency::from_histogram(&rel);
    r.timeout_lateness = Latency::from_histogram(&late);
    r.cycles_per_sec = if r.elapsed_s > 0.0 {
        r.window_cycles as f64 / r.elapsed_s
    } else {
        0.0
    };
    thread_percent
}

/// Append a loop's samples to `kept` up to [`SAMPLES_MAX`] in all; returns how many of
/// its messages are left out (those it did not keep either included).
fn keep_samples(kept: &mut Vec<String>, more: &Samples) -> u64 {
    let room = SAMPLES_MAX.saturating_sub(kept.len()).min(more.kept.len());
    kept.extend_from_slice(&more.kept[..room]);
    more.omitted + (more.kept.len() - room) as u64
}

/// loadgen's CPU use between the readings `cpu0` and `cpu1`, `wall` seconds apart.
fn loadgen_cpu(
    cpu0: Option<(f64, f64)>,
    cpu1: Option<(f64, f64)>,
    wall: f64,
    thread_percent: Vec<f64>,
) -> Option<CpuUsage> {
    let ((u0, s0), (u1, s1)) = (cpu0?, cpu1?);
    let user = (u1 - u0).max(0.0);
    let sys = (s1 - s0).max(0.0);
    Some(CpuUsage {
        user_s: user,
        sys_s: sys,
        percent: if wall > 0.0 {
            (user + sys) / wall * 100.0
        } else {
            0.0
        },
        thread_percent,
        cores: thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The server's memory now and CPU since `cpu0`; `None` when the process is gone.
fn server_usage(pid: u32, cpu0: Option<(f64, f64)>, cycles: u64) -> Option<ServerUsage> {
    let (rss, hwm) = read_status_kb(pid).ok()?;
    let cpu_s = cpu_secs_between(cpu0, read_cpu_secs(&format!("/proc/{pid}/stat"))).unwrap_or(0.0);
    Some(ServerUsage {
        pid,
        rss_kb: rss,
        peak_rss_kb: hwm,
        cpu_s,
        cpu_us_per_cycle: if cycles > 0 {
            cpu_s * 1e6 / cycles as f64
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests;
