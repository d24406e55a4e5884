//! # loadgen: capacity and correctness load generator for lockbox (and Redis locks)
//!
//! One tool measures lockbox and the usual Redis lock recipe under the same workload,
//! and checks lockbox's guarantees while it does (`--verify`).
//!
//! Library layout (the binary in `main.rs` is parse -> run -> print -> exit code):
//! - [`parse_args`] turns command-line arguments into [`Options`] (or a [`UsageError`]);
//! - [`run`] connects, runs the workload on `--threads` `mio` poll loops, drains, and
//!   returns a [`Report`] (or a [`RunError`] when it could not run at all);
//! - [`Report`] prints as a human summary ([`std::fmt::Display`]) or as one JSON object
//!   ([`Report::to_json`]);
//! - [`fnv1a64`], [`fmix64`], [`rendezvous_score`] and [`rendezvous_route`]: the sharding
//!   function, below.
//!
//! ## Sharding: rendezvous hashing over several servers
//!
//! With several servers (`--server A,B,C`), every lock name lives on exactly one server,
//! chosen by rendezvous (highest random weight) hashing. This is the sharding function
//! every lockbox client uses; it is defined on bytes so any language can reproduce it:
//!
//! ```text
//! fnv1a64(bytes):  h = 0xcbf29ce484222325
//!                  for each byte b: h = (h XOR b) * 0x100000001b3   (mod 2^64)
//! fmix64(k):       k ^= k >> 33; k *= 0xff51afd7ed558ccd;          (mod 2^64)
//!                  k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53;
//!                  k ^= k >> 33
//! score(server, name) = fmix64(fnv1a64(server ++ [0x00] ++ name))
//! route(servers, name) = the index i with the highest score(servers[i], name);
//!                        on equal scores the lowest index wins
//! ```
//!
//! - `server` is the server's address string exactly as configured, as UTF-8 bytes,
//!   e.g. `127.0.0.1:7654` or `[::1]:7654` (clients must agree on the spelling; no
//!   resolution or normalisation happens before hashing).
//! - `name` is the lock name's bytes as sent on the wire.
//! - `fmix64` is MurmurHash3's 64-bit finaliser. It is needed because plain FNV-1a
//!   distributes badly here: for names `lg:0`..`lg:99999` over `127.0.0.1:7654` and
//!   `127.0.0.1:7655` plain FNV-1a splits 43% / 57%, with `fmix64` 49.7% / 50.3%.
//! - Adding or removing a server moves only the names that go to or come from it.
//!
//! Known vectors (pinned in the tests): `fnv1a64("") = 0xcbf29ce484222325`,
//! `fnv1a64("a") = 0xaf63dc4c8601ec8c`,
//! `score("127.0.0.1:7001", "lg:0") = 0x44c20e1aab9887ca`,
//! `score("127.0.0.1:7002", "lg:0") = 0x912161898369f58e`,
//! `score("127.0.0.1:7003", "lg:0") = 0xe9f91e111cddfe73`, so `lg:0` goes to
//! `127.0.0.1:7003` among those three.
//!
//! ## Workload
//!
//! `--clients N` logical clients each hold one TCP connection to every server and keep
//! `--pipeline D` cycles outstanding (so with one server: N connections, D requests in
//! flight on each). Clients are split over `--threads T` poll loops. A cycle picks a lock
//! name `<prefix><i>` with `i` uniform in `0..K` (`--locks K`, seeded PRNG `--seed`),
//! routes it, and runs:
//! - lockbox lock/share: `LOCK name` (or `SHARE name max=M`) with `wait=`/`hold=` when
//!   given -> `OK token` -> hold for `--work-ms` (a timer in the loop) -> `UNLOCK name
//!   token` -> `OK`. `TIMEOUT` ends the cycle as a timeout, `ERR` as an error. An
//!   `EXPIRED` event while holding ends the cycle as expired; if it arrives after the
//!   `UNLOCK` was sent, the `ERR not_held` reply is expected and the cycle counts.
//! - Redis: `SET name token NX PX hold` (hold = `--hold`, default 30000 ms), a nil reply
//!   is retried after `--retry-ms` until `--wait` runs out (then a timeout; no `--wait`:
//!   retry until the run stops); release with the compare-and-delete `EVAL` script
//!   ([`REDIS_UNLOCK_SCRIPT`]); a `0` result means the key had expired (counted as
//!   expired, the cycle still counts). Tokens are random 64-bit values in hex.
//! - ping: one `PING` -> `PONG` per cycle (to the server the random name routes to).
//!
//! Connections are set up at most 96 at a time (over all threads), and each is confirmed
//! by one `lg-hello PING` -> `lg-hello PONG` round trip (Redis: `PING` -> `+PONG`) before
//! the load starts, so the server has really accepted it: a connect burst never overflows
//! a small listen backlog (dropped SYNs would cost 1 s retransmits), and a server that
//! refuses connections (`* ERR limit`) is reported as such.
//!
//! Request ids are decimal: the k-th request of pipeline slot j is `j + D*k`, so a reply
//! maps to its slot without a lookup table, and ids are unique on a connection.
//!
//! The run stops issuing new cycles after `--duration` or when `--cycles` cycles have
//! completed, then drains: in-flight cycles finish (holds are released) for at most
//! `--drain-s`; requests still unanswered then are reported as `unanswered`. `--timeout-s`
//! bounds the whole run (connect, work and drain). Connections that the server closes
//! end their client (pending requests count as errors).
//!
//! ## Verification (`--verify`)
//!
//! Checked while running, from what this process observes:
//! - **Mutual exclusion** (lock mode, lockbox and Redis): when a grant for name X arrives,
//!   no other hold on X may be *live*. A hold is live from the moment its grant is
//!   received until loadgen queues its `UNLOCK` (or sees `EXPIRED`). This is conservative:
//!   the server grants the next holder only after it has read our `UNLOCK`, which is
//!   written after the hold was marked ended, so a correct server never produces an
//!   overlap here, and any overlap seen is a real one (the second grant happened at the
//!   server while the first holder had not yet asked to release). With `--hold H` a hold
//!   can also end at the server without loadgen knowing yet (its `EXPIRED` may still be
//!   in flight on another connection): such a hold is only counted live while
//!   `now + 2 ms < acquire_sent + H` (the server's grant came after the request was
//!   sent, and deadlines never fire early), so expiry races are never reported.
//! - **Tokens increase** (lockbox): every grant token on a connection is greater than all
//!   grant tokens seen before on that connection (the server appends replies in grant
//!   order, and tokens strictly increase over all grants); in lock mode also per name:
//!   a grant observed after another grant of the same name carries a larger token
//!   (unless, with `--hold`, it may have expired before we saw it).
//! - **Shared max** (share mode with `--max M`): the grant's `holders` field is at most
//!   M, and at most M-1 other live shared holds on that name exist when it arrives.
//! - **Exactly once**: every reply carries the id of a request that is still pending on
//!   that connection (a reply with an unknown id, to the wrong connection, or a second
//!   reply to the same request is a violation); Redis: no reply without a pending
//!   request. Requests left unanswered by the end of the drain are counted as
//!   `unanswered`, not as violations (the run end cut them off).
//!
//! Each violation is counted in [`Report::violations`] with evidence in
//! [`Report::violation_samples`]; the binary exits 1 when there is any.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

// ---------------------------------------------------------------------------------------
// Rendezvous hashing
// ---------------------------------------------------------------------------------------

/// FNV-1a 64-bit offset basis.
pub const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
pub const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_extend(FNV1A64_OFFSET, bytes)
}

/// Continue an FNV-1a 64 hash whose state is `h` over more `bytes`
/// (`fnv1a64(a ++ b) == fnv1a64_extend(fnv1a64(a), b)`).
pub fn fnv1a64_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV1A64_PRIME);
    }
    h
}

/// MurmurHash3's 64-bit finaliser (`fmix64`), a bijection that spreads every input bit
/// over the whole output.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The rendezvous score of lock `name` on `server`:
/// `fmix64(fnv1a64(server ++ [0x00] ++ name))` (see the crate documentation).
pub fn rendezvous_score(server: &str, name: &[u8]) -> u64 {
    fmix64(fnv1a64_extend(server_state(server, b""), name))
}

/// FNV-1a state after `server ++ [0x00] ++ prefix`.
fn server_state(server: &str, prefix: &[u8]) -> u64 {
    let h = fnv1a64_extend(FNV1A64_OFFSET, server.as_bytes());
    let h = fnv1a64_extend(h, &[0]);
    fnv1a64_extend(h, prefix)
}

/// The index of the server that owns lock `name`: the highest [`rendezvous_score`],
/// the lowest index on equal scores. `None` when `servers` is empty.
pub fn rendezvous_route<S: AsRef<str>>(servers: &[S], name: &[u8]) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, s) in servers.iter().enumerate() {
        let score = rendezvous_score(s.as_ref(), name);
        match best {
            Some((_, b)) if score <= b => {}
            _ => best = Some((i, score)),
        }
    }
    best.map(|(i, _)| i)
}

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// The kind of server loadgen talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// lockbox's native protocol.
    Lockbox,
    /// Redis, with the `SET NX PX` / compare-and-delete `EVAL` lock recipe.
    Redis,
}

impl Target {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Lockbox => "lockbox",
            Target::Redis => "redis",
        }
    }
}

/// What one cycle does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Exclusive lock, hold, unlock.
    Lock,
    /// Shared lock (`SHARE`, optionally `max=`), hold, unlock.
    Share,
    /// One `PING` / `PONG` round trip.
    Ping,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Lock => "lock",
            Mode::Share => "share",
            Mode::Ping => "ping",
        }
    }
}

/// Default lockbox address.
pub const DEFAULT_LOCKBOX_ADDR: &str = "127.0.0.1:7654";
/// Default Redis address.
pub const DEFAULT_REDIS_ADDR: &str = "127.0.0.1:6379";
/// Redis key lifetime (`PX`) when `--hold` is not given, in ms.
pub const DEFAULT_REDIS_HOLD_MS: u64 = 30_000;
/// The compare-and-delete release script sent with `EVAL` to Redis.
pub const REDIS_UNLOCK_SCRIPT: &str =
    "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

/// A parsed command line. Build one with [`parse_args`] (or start from
/// [`Options::default`] and change fields).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// `--target lockbox|redis` (default lockbox).
    pub target: Target,
    /// `--mode lock|share|ping` (default lock).
    pub mode: Mode,
    /// `--server ADDR`, repeatable or comma-separated, as written (default
    /// 127.0.0.1:7654, or 127.0.0.1:6379 for Redis). The strings feed the rendezvous hash.
    pub servers: Vec<String>,
    /// `--clients N` logical clients, each with one connection per server (default 50).
    pub clients: usize,
    /// `--pipeline D` cycles outstanding per client (default 1).
    pub pipeline: usize,
    /// `--threads T` poll loops (default 1; at most `clients`).
    pub threads: usize,
    /// `--locks K` distinct lock names (default 10000).
    pub locks: u64,
    /// `--prefix P`: lock names are `P0`..`P(K-1)` (default `lg:`).
    pub prefix: String,
    /// `--work-ms W`: hold time before unlocking, 0 = unlock at once (default 0).
    pub work_ms: u64,
    /// `--wait MS`: `wait=` option (Redis: how long to keep retrying). Default: absent.
    pub wait_ms: Option<u64>,
    /// `--hold MS`: `hold=` option (Redis: `PX`, default 30000). Default: absent.
    pub hold_ms: Option<u64>,
    /// `--max M`: `SHARE ... max=M` (share mode only).
    pub max: Option<u64>,
    /// `--duration S` (seconds, fractions allowed); default 10 s when `--cycles` is absent.
    pub duration: Option<Duration>,
    /// `--cycles N`: stop after N completed cycles in total.
    pub cycles: Option<u64>,
    /// `--timeout-s S`: hard bound on the whole run (default duration + drain + 30 s,
    /// or 300 s with `--cycles` alone). [`parse_args`] derives it; when you build
    /// `Options` by hand and lengthen `duration`, lengthen this too.
    pub timeout: Duration,
    /// `--drain-s S`: how long in-flight cycles may take to finish after the stop
    /// (default 10 s).
    pub drain: Duration,
    /// `--retry-ms MS`: Redis retry interval when the lock is busy (default 1).
    pub retry_ms: u64,
    /// `--seed N`: seed of the name-choosing PRNG (default 1).
    pub seed: u64,
    /// `--verify`: check mutual exclusion, token order, shared max and exactly-once replies.
    pub verify: bool,
    /// `--json`: print one JSON object instead of the human summary.
    pub json: bool,
    /// `--quiet`: no progress lines.
    pub quiet: bool,
    /// `--server-pid PID`: report that process's RSS, peak RSS and CPU time.
    pub server_pid: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target: Target::Lockbox,
            mode: Mode::Lock,
            servers: vec![DEFAULT_LOCKBOX_ADDR.to_string()],
            clients: 50,
            pipeline: 1,
            threads: 1,
            locks: 10_000,
            prefix: "lg:".to_string(),
            work_ms: 0,
            wait_ms: None,
            hold_ms: None,
            max: None,
            duration: Some(Duration::from_secs(10)),
            cycles: None,
            timeout: Duration::from_secs(50),
            drain: Duration::from_secs(10),
            retry_ms: 1,
            seed: 1,
            verify: false,
            json: false,
            quiet: false,
            server_pid: None,
        }
    }
}

/// Why the command line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsageError {
    /// `-h` / `--help` was given: print [`usage`] and exit 0.
    Help,
    /// A bad argument, with a one-line explanation.
    Invalid(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Help => f.write_str("help requested"),
            UsageError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for UsageError {}

/// The `--help` text.
pub fn usage() -> String {
    "\
Usage: loadgen [OPTIONS]

Load generator and checker for lockbox (and Redis locks, for comparison).

Target:
  --target lockbox|redis   server kind (default lockbox)
  --server ADDR            server address, repeatable or comma-separated; several
                           servers shard names by rendezvous hashing
                           (default 127.0.0.1:7654, redis 127.0.0.1:6379)
Workload:
  --mode lock|share|ping   cycle kind (default lock)
  --clients N              logical clients, one connection per server each (default 50)
  --pipeline D             cycles outstanding per client (default 1)
  --threads T              poll loops / threads (default 1)
  --locks K                distinct lock names PREFIX0..PREFIX(K-1) (default 10000)
  --prefix P               lock name prefix (default lg:)
  --work-ms W              hold time before unlock, ms (default 0)
  --wait MS                wait= option (redis: retry budget) (default: none)
  --hold MS                hold= option (redis: PX, default 30000) (default: none)
  --max M                  share mode: SHARE ... max=M (default: none)
  --retry-ms MS            redis: retry interval when busy (default 1)
  --seed N                 PRNG seed for name choice (default 1)
Length:
  --duration S             seconds of load (default 10 unless --cycles)
  --cycles N               stop after N completed cycles
  --drain-s S              time allowed to finish in-flight cycles (default 10)
  --timeout-s S            hard bound on the whole run
                           (default duration + drain + 30, or 300 with --cycles)
Output:
  --verify                 check mutual exclusion, token order, shared max and
                           exactly-once replies; exit 1 on any violation
  --json                   print one JSON object instead of the summary
  --quiet                  no progress lines on stderr
  --server-pid PID         report the server's RSS, peak RSS and CPU time
  -h, --help               this text

Exit status: 0 ok; 1 violations, lost connections or no run; 2 bad arguments.
"
    .to_string()
}

fn invalid(msg: impl Into<String>) -> UsageError {
    UsageError::Invalid(msg.into())
}

fn opt_u64(
    m: &getopts::Matches,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, UsageError> {
    let Some(s) = m.opt_str(name) else {
        return Ok(None);
    };
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| invalid(format!("--{name}: '{s}' is not a whole number")))?;
    if v < min || v > max {
        return Err(invalid(format!(
            "--{name}: {v} is out of range {min}..={max}"
        )));
    }
    Ok(Some(v))
}

fn opt_secs(
    m: &getopts::Matches,
    name: &str,
    min: f64,
    max: f64,
) -> Result<Option<Duration>, UsageError> {
    let Some(s) = m.opt_str(name) else {
        return Ok(None);
    };
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| invalid(format!("--{name}: '{s}' is not a number of seconds")))?;
    if !v.is_finite() || v < min || v > max {
        return Err(invalid(format!(
            "--{name}: {s} is out of range {min}..={max} seconds"
        )));
    }
    Ok(Some(Duration::from_secs_f64(v)))
}

/// Check that `addr` looks like `host:port` (resolution happens in [`run`]).
fn check_addr(addr: &str) -> Result<(), UsageError> {
    let bad = || invalid(format!("--server: '{addr}' is not HOST:PORT"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace()) {
        return Err(bad());
    }
    if host.starts_with('[') != host.ends_with(']') {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad()),
    }
}

/// Parse command-line arguments (without the program name) into [`Options`].
///
/// Errors are one-line messages meant for stderr (the binary exits 2 on them);
/// `-h`/`--help` gives [`UsageError::Help`].
///
/// ```
/// let opts = loadgen::parse_args(&[
///     "--server", "127.0.0.1:7654", "--clients", "4", "--locks", "1",
///     "--duration", "0.5", "--verify", "--quiet",
/// ])
/// .unwrap();
/// assert_eq!((opts.clients, opts.locks, opts.verify), (4, 1, true));
/// assert!(matches!(
///     loadgen::parse_args(&["--clients", "0"]),
///     Err(loadgen::UsageError::Invalid(_))
/// ));
/// ```
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Options, UsageError> {
    let mut spec = getopts::Options::new();
    spec.optmulti("", "server", "server address", "ADDR")
        .optopt("", "target", "lockbox|redis", "T")
        .optopt("", "mode", "lock|share|ping", "M")
        .optopt("", "clients", "clients", "N")
        .optopt("", "pipeline", "pipeline depth", "D")
        .optopt("", "threads", "threads", "T")
        .optopt("", "locks", "distinct locks", "K")
        .optopt("", "prefix", "lock name prefix", "P")
        .optopt("", "work-ms", "hold time", "W")
        .optopt("", "wait", "wait ms", "MS")
        .optopt("", "hold", "hold ms", "MS")
        .optopt("", "max", "shared max", "M")
        .optopt("", "duration", "seconds", "S")
        .optopt("", "cycles", "cycles", "N")
        .optopt("", "timeout-s", "hard timeout", "S")
        .optopt("", "drain-s", "drain timeout", "S")
        .optopt("", "retry-ms", "redis retry", "MS")
        .optopt("", "seed", "seed", "N")
        .optopt("", "server-pid", "server pid", "PID")
        .optflag("", "verify", "verify")
        .optflag("", "json", "json")
        .optflag("", "quiet", "quiet")
        .optflag("h", "help", "help");
    let m = spec
        .parse(args.iter().map(|a| a.as_ref()))
        .map_err(|e| invalid(e.to_string()))?;
    if m.opt_present("help") {
        return Err(UsageError::Help);
    }
    if let Some(extra) = m.free.first() {
        return Err(invalid(format!("unexpected argument '{extra}'")));
    }
    let mut o = Options::default();
    if let Some(t) = m.opt_str("target") {
        o.target = match t.to_ascii_lowercase().as_str() {
            "lockbox" => Target::Lockbox,
            "redis" => Target::Redis,
            _ => return Err(invalid(format!("--target: '{t}' is not lockbox or redis"))),
        };
    }
    if let Some(v) = m.opt_str("mode") {
        o.mode = match v.to_ascii_lowercase().as_str() {
            "lock" => Mode::Lock,
            "share" => Mode::Share,
            "ping" => Mode::Ping,
            _ => return Err(invalid(format!("--mode: '{v}' is not lock, share or ping"))),
        };
    }
    let mut servers: Vec<String> = Vec::new();
    for arg in m.opt_strs("server") {
        for part in arg.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(invalid(format!("--server: empty address in '{arg}'")));
            }
            check_addr(part)?;
            if servers.iter().any(|s| s == part) {
                return Err(invalid(format!("--server: '{part}' given twice")));
            }
            servers.push(part.to_string());
        }
    }
    if servers.len() > 1024 {
        return Err(invalid("--server: at most 1024 servers"));
    }
    o.servers = if servers.is_empty() {
        vec![match o.target {
            Target::Lockbox => DEFAULT_LOCKBOX_ADDR,
            Target::Redis => DEFAULT_REDIS_ADDR,
        }
        .to_string()]
    } else {
        servers
    };
    if let Some(v) = opt_u64(&m, "clients", 1, 1_000_000)? {
        o.clients = v as usize;
    }
    if let Some(v) = opt_u64(&m, "pipeline", 1, 100_000)? {
        o.pipeline = v as usize;
    }
    if o.clients.saturating_mul(o.pipeline) > 10_000_000 {
        return Err(invalid(
            "--clients x --pipeline: at most 10000000 cycles in flight",
        ));
    }
    if let Some(v) = opt_u64(&m, "threads", 1, 256)? {
        o.threads = v as usize;
    }
    o.threads = o.threads.min(o.clients);
    if let Some(v) = opt_u64(&m, "locks", 1, u64::from(u32::MAX))? {
        o.locks = v;
    }
    if let Some(p) = m.opt_str("prefix") {
        if p.len() > 200 {
            return Err(invalid("--prefix: at most 200 bytes"));
        }
        if p.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid("--prefix: no spaces or control characters"));
        }
        o.prefix = p;
    }
    const MS_MAX: u64 = u32::MAX as u64;
    if let Some(v) = opt_u64(&m, "work-ms", 0, MS_MAX)? {
        o.work_ms = v;
    }
    o.wait_ms = opt_u64(&m, "wait", 0, MS_MAX)?;
    o.hold_ms = opt_u64(&m, "hold", 0, MS_MAX)?;
    o.max = opt_u64(&m, "max", 1, MS_MAX)?;
    o.cycles = opt_u64(&m, "cycles", 1, u64::MAX / 2)?;
    o.duration = opt_secs(&m, "duration", 0.001, 1e7)?;
    if o.duration.is_none() && o.cycles.is_none() {
        o.duration = Some(Duration::from_secs(10));
    }
    if let Some(d) = opt_secs(&m, "drain-s", 0.0, 1e7)? {
        o.drain = d;
    }
    o.timeout = match opt_secs(&m, "timeout-s", 0.001, 1e8)? {
        Some(t) => t,
        None => match o.duration {
            Some(d) => d + o.drain + Duration::from_secs(30),
            None => Duration::from_secs(300),
        },
    };
    if let Some(v) = opt_u64(&m, "retry-ms", 0, 60_000)? {
        o.retry_ms = v;
    }
    if let Some(v) = opt_u64(&m, "seed", 0, u64::MAX)? {
        o.seed = v;
    }
    o.server_pid = opt_u64(&m, "server-pid", 1, u64::from(u32::MAX))?.map(|p| p as u32);
    o.verify = m.opt_present("verify");
    o.json = m.opt_present("json");
    o.quiet = m.opt_present("quiet");

    if o.max.is_some() && o.mode != Mode::Share {
        return Err(invalid("--max only applies to --mode share"));
    }
    if o.target == Target::Redis {
        if o.mode == Mode::Share {
            return Err(invalid("--mode share is not supported with --target redis"));
        }
        if o.hold_ms == Some(0) {
            return Err(invalid(
                "--hold 0 is not valid with --target redis (PX must be >= 1)",
            ));
        }
    }
    if o.mode == Mode::Ping
        && (o.work_ms > 0 || o.wait_ms.is_some() || o.hold_ms.is_some() || o.max.is_some())
    {
        return Err(invalid(
            "--mode ping takes no --work-ms, --wait, --hold or --max",
        ));
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

/// Latency percentiles in microseconds, from an HDR histogram (3 significant digits).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Summarise a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }

    fn json(&self) -> String {
        let mut j = JsonObj::new();
        j.u64("count", self.count)
            .u64("p50", self.p50)
            .u64("p90", self.p90)
            .u64("p99", self.p99)
            .u64("p999", self.p999)
            .u64("max", self.max)
            .f64("mean", self.mean);
        j.finish()
    }
}

/// loadgen's own CPU use during the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuUsage {
    /// User CPU seconds of the whole process.
    pub user_s: f64,
    /// System CPU seconds of the whole process.
    pub sys_s: f64,
    /// (user + sys) / wall time, in percent of one core.
    pub percent: f64,
    /// Each poll-loop thread's CPU time over its own wall time, in percent of one core.
    /// A value near 100 means that thread, not the server, may have been the limit.
    pub thread_percent: Vec<f64>,
    /// Cores available to this process.
    pub cores: usize,
}

/// The server process's memory and CPU (`--server-pid`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerUsage {
    /// Its pid.
    pub pid: u32,
    /// `VmRSS` at the end of the run, KiB.
    pub rss_kb: u64,
    /// `VmHWM` (peak RSS) at the end of the run, KiB.
    pub peak_rss_kb: u64,
    /// User + system CPU seconds it used during the run.
    pub cpu_s: f64,
    /// Its CPU microseconds per completed cycle (0 when no cycle completed).
    pub cpu_us_per_cycle: f64,
}

/// The result of a run. Printing it ([`fmt::Display`]) gives the human summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Server kind.
    pub target: Target,
    /// Cycle kind.
    pub mode: Mode,
    /// Server addresses as given.
    pub servers: Vec<String>,
    /// Logical clients.
    pub clients: usize,
    /// Cycles outstanding per client.
    pub pipeline: usize,
    /// Poll-loop threads.
    pub threads: usize,
    /// Distinct lock names.
    pub locks: u64,
    /// Hold time before unlock, ms.
    pub work_ms: u64,
    /// `wait=` option.
    pub wait_ms: Option<u64>,
    /// `hold=` option (Redis: the PX actually used).
    pub hold_ms: Option<u64>,
    /// `max=` option.
    pub max: Option<u64>,
    /// PRNG seed.
    pub seed: u64,
    /// Whether `--verify` checks ran.
    pub verify: bool,
    /// Seconds from the start of the load to the stop (end of `--duration`, the last of
    /// `--cycles`, or the end of the run): the window `cycles_per_sec` is measured over.
    pub elapsed_s: f64,
    /// Seconds of the whole run, from connect to the end of the drain.
    pub total_s: f64,
    /// Completed cycles, drain included.
    pub cycles: u64,
    /// Completed cycles within the measurement window.
    pub window_cycles: u64,
    /// `window_cycles / elapsed_s`.
    pub cycles_per_sec: f64,
    /// Completed cycles per server, in `servers` order.
    pub per_server_cycles: Vec<u64>,
    /// Acquires that ended with `TIMEOUT` (Redis: retries ran out of `--wait`).
    pub timeouts: u64,
    /// `ERR` replies, lost connections (one per pending request) and, without `--verify`,
    /// protocol anomalies.
    pub errors: u64,
    /// Holds that the server expired (`EXPIRED` events; Redis: release found the key gone).
    pub expired: u64,
    /// Requests still unanswered at the end of the run.
    pub unanswered: u64,
    /// Clients whose connection the server closed (or that failed) during the run.
    /// The binary exits 1 when this is not 0.
    pub lost_clients: u64,
    /// `--verify` violations (see the crate documentation).
    pub violations: u64,
    /// Whether `--timeout-s` cut the run short.
    pub hit_timeout: bool,
    /// Acquire latency (request sent to grant; Redis: first `SET` to `OK`); ping: round trip.
    pub acquire: Latency,
    /// Release latency (`UNLOCK` / `EVAL` sent to its reply).
    pub release: Latency,
    /// lockbox `TIMEOUT` replies: time from request to reply minus `--wait` (timer
    /// lateness as seen by the client, including one round trip). Empty for Redis.
    pub timeout_lateness: Latency,
    /// loadgen's CPU use (Linux /proc; `None` elsewhere).
    pub cpu: Option<CpuUsage>,
    /// The server's memory and CPU, with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// Evidence for the first violations (at most 50).
    pub violation_samples: Vec<String>,
    /// The first error messages (at most 50).
    pub error_samples: Vec<String>,
}

struct JsonObj {
    buf: String,
    first: bool,
}

impl JsonObj {
    fn new() -> JsonObj {
        JsonObj {
            buf: String::from("{"),
            first: true,
        }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        json_str(&mut self.buf, k);
        self.buf.push(':');
        &mut self.buf
    }
    fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k).push_str(v);
        self
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let b = self.key(k);
        json_str(b, v);
        self
    }
    fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        let _ = write!(self.key(k), "{v}");
        self
    }
    fn opt_u64(&mut self, k: &str, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.u64(k, v),
            None => self.raw(k, "null"),
        }
    }
    fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        let s = json_f64(v);
        self.raw(k, &s)
    }
    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, if v { "true" } else { "false" })
    }
    fn strs(&mut self, k: &str, v: &[String]) -> &mut Self {
        let b = self.key(k);
        b.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                b.push(',');
            }
            json_str(b, s);
        }
        b.push(']');
        self
    }
    fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

fn json_f64(v: f64) -> String {
    if v.is_finite() {
        // Three decimals are plenty for rates, seconds and percentages.
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        "null".to_string()
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Report {
    /// One JSON object (one line, no trailing newline) with every field of the report.
    /// Latencies are objects `{count,p50,p90,p99,p999,max,mean}` in microseconds;
    /// absent options and unavailable measurements are `null`.
    pub fn to_json(&self) -> String {
        let mut j = JsonObj::new();
        j.str("target", self.target.as_str())
            .str("mode", self.mode.as_str())
            .strs("servers", &self.servers)
            .u64("clients", self.clients as u64)
            .u64("pipeline", self.pipeline as u64)
            .u64("threads", self.threads as u64)
            .u64("locks", self.locks)
            .u64("work_ms", self.work_ms)
            .opt_u64("wait_ms", self.wait_ms)
            .opt_u64("hold_ms", self.hold_ms)
            .opt_u64("max", self.max)
            .u64("seed", self.seed)
            .bool("verify", self.verify)
            .f64("elapsed_s", self.elapsed_s)
            .f64("total_s", self.total_s)
            .u64("cycles", self.cycles)
            .u64("window_cycles", self.window_cycles)
            .f64("cycles_per_sec", self.cycles_per_sec);
        let per: Vec<String> = self
            .per_server_cycles
            .iter()
            .map(|c| c.to_string())
            .collect();
        j.raw("per_server_cycles", &format!("[{}]", per.join(",")))
            .u64("timeouts", self.timeouts)
            .u64("errors", self.errors)
            .u64("expired", self.expired)
            .u64("unanswered", self.unanswered)
            .u64("lost_clients", self.lost_clients)
            .u64("violations", self.violations)
            .bool("hit_timeout", self.hit_timeout)
            .raw("acquire_us", &self.acquire.json())
            .raw("release_us", &self.release.json())
            .raw("timeout_lateness_us", &self.timeout_lateness.json());
        match &self.cpu {
            Some(c) => {
                let mut o = JsonObj::new();
                let th: Vec<String> = c.thread_percent.iter().map(|p| json_f64(*p)).collect();
                o.f64("user_s", c.user_s)
                    .f64("sys_s", c.sys_s)
                    .f64("percent", c.percent)
                    .raw("thread_percent", &format!("[{}]", th.join(",")))
                    .u64("cores", c.cores as u64);
                j.raw("loadgen_cpu", &o.finish());
            }
            None => {
                j.raw("loadgen_cpu", "null");
            }
        }
        match &self.server {
            Some(s) => {
                let mut o = JsonObj::new();
                o.u64("pid", u64::from(s.pid))
                    .u64("rss_kb", s.rss_kb)
                    .u64("peak_rss_kb", s.peak_rss_kb)
                    .f64("cpu_s", s.cpu_s)
                    .f64("cpu_us_per_cycle", s.cpu_us_per_cycle);
                j.raw("server", &o.finish());
            }
            None => {
                j.raw("server", "null");
            }
        }
        j.strs("violation_samples", &self.violation_samples)
            .strs("error_samples", &self.error_samples);
        j.finish()
    }
}

fn fmt_lat(f: &mut fmt::Formatter<'_>, label: &str, l: &Latency) -> fmt::Result {
    if l.count == 0 {
        return writeln!(f, "{label:<14}-");
    }
    writeln!(
        f,
        "{label:<14}p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {:.1}  (n={})",
        l.p50, l.p90, l.p99, l.p999, l.max, l.mean, l.count
    )
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}: {} clients x pipeline {} on {} thread(s), {} locks, work {} ms, wait {}, hold {}{}",
            self.target.as_str(),
            self.mode.as_str(),
            self.clients,
            self.pipeline,
            self.threads,
            self.locks,
            self.work_ms,
            opt_ms(self.wait_ms),
            opt_ms(self.hold_ms),
            self.max.map_or(String::new(), |m| format!(", max {m}")),
        )?;
        writeln!(f, "servers       {}", self.servers.join(", "))?;
        writeln!(
            f,
            "cycles        {} in {:.2} s = {:.0} cycles/s  ({} in total, {:.2} s with connect and drain)",
            self.window_cycles, self.elapsed_s, self.cycles_per_sec, self.cycles, self.total_s
        )?;
        if self.servers.len() > 1 {
            let per: Vec<String> = self
                .servers
                .iter()
                .zip(&self.per_server_cycles)
                .map(|(s, c)| format!("{s}={c}"))
                .collect();
            writeln!(f, "per server    {}", per.join("  "))?;
        }
        fmt_lat(f, "acquire (us)", &self.acquire)?;
        if self.mode != Mode::Ping {
            fmt_lat(f, "release (us)", &self.release)?;
        }
        if self.timeout_lateness.count > 0 {
            fmt_lat(f, "late TO (us)", &self.timeout_lateness)?;
        }
        writeln!(
            f,
            "outcomes      timeouts {}  errors {}  expired {}  unanswered {}  lost clients {}{}",
            self.timeouts,
            self.errors,
            self.expired,
            self.unanswered,
            self.lost_clients,
            if self.hit_timeout {
                "  (run cut by --timeout-s)"
            } else {
                ""
            }
        )?;
        if let Some(c) = &self.cpu {
            let th: Vec<String> = c
                .thread_percent
                .iter()
                .map(|p| format!("{p:.0}%"))
                .collect();
            writeln!(
                f,
                "loadgen CPU   {:.0}% of one core (user {:.2} s, sys {:.2} s, {} cores); per thread {}",
                c.percent,
                c.user_s,
                c.sys_s,
                c.cores,
                th.join(" ")
            )?;
            if c.thread_percent.iter().any(|p| *p >= 90.0) {
                writeln!(
                    f,
                    "              note: a loadgen thread was near 100% CPU, loadgen may have been the limit"
                )?;
            }
        }
        if let Some(s) = &self.server {
            writeln!(
                f,
                "server        pid {}: RSS {:.1} MiB, peak {:.1} MiB, CPU {:.2} s = {:.2} us/cycle",
                s.pid,
                s.rss_kb as f64 / 1024.0,
                s.peak_rss_kb as f64 / 1024.0,
                s.cpu_s,
                s.cpu_us_per_cycle
            )?;
        }
        for e in &self.error_samples {
            writeln!(f, "error         {e}")?;
        }
        if self.verify {
            writeln!(f, "verify        {} violation(s)", self.violations)?;
        } else if self.violations > 0 {
            writeln!(f, "violations    {}", self.violations)?;
        }
        for v in &self.violation_samples {
            writeln!(f, "VIOLATION     {v}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------

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
/// Verification slack for hold deadlines (see the crate documentation).
const HOLD_SLACK: Duration = Duration::from_millis(2);
/// Samples kept per thread for errors and violations.
const SAMPLES_PER_THREAD: usize = 20;
/// Samples kept in a report.
const SAMPLES_MAX: usize = 50;
/// Longest reply loadgen accepts before calling the connection broken.
const MAX_REPLY: usize = 1 << 20;

/// Immutable run plan shared by the poll loops.
struct Plan {
    target: Target,
    mode: Mode,
    servers: Vec<String>,
    addrs: Vec<SocketAddr>,
    pipeline: usize,
    locks: u64,
    prefix: Vec<u8>,
    /// FNV state after `server ++ 0x00 ++ prefix`, per server.
    route_state: Vec<u64>,
    work: Duration,
    wait: Option<Duration>,
    /// ` wait=.. hold=.. max=..\n` for lockbox acquires.
    acquire_suffix: Vec<u8>,
    /// Redis `PX` value as a bulk string (`$len\r\nvalue\r\n`).
    redis_px: Vec<u8>,
    /// Redis `EVAL` header up to the key.
    redis_eval_head: Vec<u8>,
    retry: Duration,
    drain: Duration,
    verify: bool,
    seed: u64,
    cycles_limit: Option<u64>,
    connect_deadline: Instant,
    /// Connections a poll loop sets up at once.
    connect_parallel: usize,
}

impl Plan {
    fn route(&self, name: u64) -> u16 {
        if self.route_state.len() == 1 {
            return 0;
        }
        let mut digits = [0u8; 20];
        let d = fmt_u64(name, &mut digits);
        let mut best = 0u16;
        let mut best_score = 0u64;
        for (i, &st) in self.route_state.iter().enumerate() {
            let score = fmix64(fnv1a64_extend(st, d));
            if i == 0 || score > best_score {
                best = i as u16;
                best_score = score;
            }
        }
        best
    }

    fn name_string(&self, name: u64) -> String {
        format!("{}{}", String::from_utf8_lossy(&self.prefix), name)
    }
}

/// State shared between the poll loops and the controlling thread.
struct Shared {
    /// Stop issuing new cycles (drain).
    stop: AtomicBool,
    /// Stop now.
    abort: AtomicBool,
    stop_at: Mutex<Option<Instant>>,
    connect_failed: Mutex<Option<String>>,
    /// Cycles started and not failed (`--cycles` budget).
    tickets: AtomicU64,
    /// Cycles completed (`--cycles`).
    completed: AtomicU64,
    verifier: Option<Verifier>,
}

impl Shared {
    fn request_stop(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            let mut g = self.stop_at.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                *g = Some(Instant::now());
            }
        }
    }
}

/// Messages from poll loops to the controlling thread.
enum Msg {
    Tick {
        cycles: u64,
        timeouts: u64,
        errors: u64,
        acq: Box<Histogram<u64>>,
    },
    Done,
}

fn new_hist() -> Histogram<u64> {
    // 1 us .. 1 hour, 3 significant digits; values beyond saturate.
    Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
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
    let mut addrs = Vec::with_capacity(opts.servers.len());
    for s in &opts.servers {
        let a = s
            .to_socket_addrs()
            .map_err(|e| RunError::Resolve(format!("{s}: {e}")))?
            .next()
            .ok_or_else(|| RunError::Resolve(format!("{s}: no address")))?;
        addrs.push(a);
    }
    let server_cpu0 = match opts.server_pid {
        Some(pid) => {
            read_status_kb(pid).map_err(RunError::ServerPid)?;
            read_cpu_secs(&format!("/proc/{pid}/stat"))
        }
        None => None,
    };
    let threads = opts.threads.clamp(1, opts.clients.max(1));
    let hold_ms = match opts.target {
        Target::Redis if opts.mode != Mode::Ping => {
            Some(opts.hold_ms.unwrap_or(DEFAULT_REDIS_HOLD_MS))
        }
        _ => opts.hold_ms,
    };
    let mut acquire_suffix = Vec::new();
    if opts.mode == Mode::Share {
        if let Some(m) = opts.max {
            let _ = write!(acquire_suffix, " max={m}");
        }
    }
    if let Some(w) = opts.wait_ms {
        let _ = write!(acquire_suffix, " wait={w}");
    }
    if let Some(h) = opts.hold_ms {
        let _ = write!(acquire_suffix, " hold={h}");
    }
    acquire_suffix.push(b'\n');
    let px = hold_ms.unwrap_or(DEFAULT_REDIS_HOLD_MS).to_string();
    let redis_px = format!("${}\r\n{}\r\n", px.len(), px).into_bytes();
    let redis_eval_head = format!(
        "*5\r\n$4\r\nEVAL\r\n${}\r\n{}\r\n$1\r\n1\r\n",
        REDIS_UNLOCK_SCRIPT.len(),
        REDIS_UNLOCK_SCRIPT
    )
    .into_bytes();
    let plan = Arc::new(Plan {
        target: opts.target,
        mode: opts.mode,
        servers: opts.servers.clone(),
        addrs,
        pipeline: opts.pipeline,
        locks: opts.locks.max(1),
        prefix: opts.prefix.as_bytes().to_vec(),
        route_state: opts
            .servers
            .iter()
            .map(|s| server_state(s, opts.prefix.as_bytes()))
            .collect(),
        work: Duration::from_millis(opts.work_ms),
        wait: opts.wait_ms.map(Duration::from_millis),
        acquire_suffix,
        redis_px,
        redis_eval_head,
        retry: Duration::from_millis(opts.retry_ms),
        drain: opts.drain,
        verify: opts.verify,
        seed: opts.seed,
        cycles_limit: opts.cycles,
        connect_deadline: t_entry
            + (CONNECT_TIMEOUT + Duration::from_millis((opts.clients * opts.servers.len()) as u64))
                .min(opts.timeout),
        connect_parallel: (CONNECT_PARALLEL / threads).max(8),
    });
    let verifier = (opts.verify && opts.mode != Mode::Ping).then(|| Verifier {
        shards: (0..64).map(|_| Mutex::new(HashMap::new())).collect(),
        exclusive: opts.mode == Mode::Lock,
        check_order: opts.mode == Mode::Lock && opts.target == Target::Lockbox,
        max: if opts.mode == Mode::Share {
            opts.max
        } else {
            None
        },
        hold: hold_ms.map(Duration::from_millis),
        servers: opts.servers.clone(),
        prefix: opts.prefix.clone(),
        start: t_entry,
    });
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        abort: AtomicBool::new(false),
        stop_at: Mutex::new(None),
        connect_failed: Mutex::new(None),
        tickets: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        verifier,
    });
    let (tx, rx) = mpsc::channel::<Msg>();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let salt = fmix64(
        u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
    );
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let first = opts.clients * t / threads;
        let last = opts.clients * (t + 1) / threads;
        let init = WorkerInit {
            tid: t,
            first_client: first,
            nclients: last - first,
            plan: Arc::clone(&plan),
            shared: Arc::clone(&shared),
            tx: tx.clone(),
            barrier: Arc::clone(&barrier),
            salt: salt ^ fmix64(t as u64 + 1),
        };
        let h = thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || worker_main(init))
            .map_err(|e| RunError::Internal(format!("spawn thread: {e}")))?;
        handles.push(h);
    }
    drop(tx);
    barrier.wait();
    let start = Instant::now();
    let cpu0 = read_cpu_secs("/proc/self/stat");
    let connect_err = shared
        .connect_failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(msg) = connect_err {
        shared.abort.store(true, Ordering::SeqCst);
        for h in handles {
            let _ = h.join();
        }
        return Err(RunError::Connect(msg));
    }

    // Control loop: stop at the duration, progress every second, hard timeout.
    let hard_deadline = t_entry + opts.timeout;
    let stop_deadline = opts.duration.map(|d| start + d);
    let mut next_print = start + Duration::from_millis(1030);
    let mut second = 1u64;
    let mut finished = 0usize;
    let mut hit_timeout = false;
    let mut iv_cycles = 0u64;
    let mut iv_timeouts = 0u64;
    let mut iv_errors = 0u64;
    let mut iv_acq = new_hist();
    let mut tot_timeouts = 0u64;
    let mut tot_errors = 0u64;
    while finished < threads {
        let now = Instant::now();
        if now >= hard_deadline {
            hit_timeout = true;
            shared.request_stop();
            shared.abort.store(true, Ordering::SeqCst);
            break;
        }
        if let Some(sd) = stop_deadline {
            if now >= sd {
                shared.request_stop();
            }
        }
        let mut wake = next_print.min(hard_deadline);
        if let Some(sd) = stop_deadline {
            if !shared.stop.load(Ordering::Relaxed) {
                wake = wake.min(sd);
            }
        }
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(Msg::Tick {
                cycles,
                timeouts,
                errors,
                acq,
            }) => {
                iv_cycles += cycles;
                iv_timeouts += timeouts;
                iv_errors += errors;
                let _ = iv_acq.add(&*acq);
            }
            Ok(Msg::Done) => finished += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_print {
            tot_timeouts += iv_timeouts;
            tot_errors += iv_errors;
            if !opts.quiet {
                eprintln!(
                    "loadgen: {:>4}s {:>9} cycles/s  acquire p50 {} us p99 {} us  timeouts {}  errors {}{}",
                    second,
                    iv_cycles,
                    if iv_acq.is_empty() { 0 } else { iv_acq.value_at_quantile(0.5) },
                    if iv_acq.is_empty() { 0 } else { iv_acq.value_at_quantile(0.99) },
                    tot_timeouts,
                    tot_errors,
                    if shared.stop.load(Ordering::Relaxed) { "  (draining)" } else { "" }
                );
            }
            iv_cycles = 0;
            iv_timeouts = 0;
            iv_errors = 0;
            iv_acq.reset();
            second += 1;
            next_print += Duration::from_secs(1);
        }
    }
    let mut results = Vec::with_capacity(threads);
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
    let end = Instant::now();
    let cpu1 = read_cpu_secs("/proc/self/stat");
    let stop_at = shared
        .stop_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(end)
        .min(end);

    // Aggregate.
    let mut acq = new_hist();
    let mut rel = new_hist();
    let mut late = new_hist();
    let mut r = Report {
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
        seed: opts.seed,
        verify: opts.verify,
        elapsed_s: stop_at.saturating_duration_since(start).as_secs_f64(),
        total_s: end.saturating_duration_since(t_entry).as_secs_f64(),
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
        hit_timeout,
        acquire: Latency::default(),
        release: Latency::default(),
        timeout_lateness: Latency::default(),
        cpu: None,
        server: None,
        violation_samples: Vec::new(),
        error_samples: Vec::new(),
    };
    let mut thread_percent = Vec::new();
    for w in &results {
        let s = &w.stats;
        r.cycles += s.cycles;
        r.window_cycles += s.window_cycles;
        r.timeouts += s.timeouts;
        r.errors += s.errors;
        r.expired += s.expired;
        r.violations += s.violations;
        r.unanswered += w.unanswered;
        r.lost_clients += s.lost_clients;
        for (a, b) in r.per_server_cycles.iter_mut().zip(&s.per_server) {
            *a += b;
        }
        let _ = acq.add(&s.acq);
        let _ = rel.add(&s.rel);
        let _ = late.add(&s.late);
        for v in &s.violation_samples {
            if r.violation_samples.len() < SAMPLES_MAX {
                r.violation_samples.push(v.clone());
            }
        }
        for e in &s.error_samples {
            if r.error_samples.len() < SAMPLES_MAX {
                r.error_samples.push(e.clone());
            }
        }
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
    if let (Some((u0, s0)), Some((u1, s1))) = (cpu0, cpu1) {
        let wall = end.saturating_duration_since(start).as_secs_f64();
        let user = (u1 - u0).max(0.0);
        let sys = (s1 - s0).max(0.0);
        r.cpu = Some(CpuUsage {
            user_s: user,
            sys_s: sys,
            percent: if wall > 0.0 {
                (user + sys) / wall * 100.0
            } else {
                0.0
            },
            thread_percent,
            cores: thread::available_parallelism().map_or(1, |n| n.get()),
        });
    }
    if let Some(pid) = opts.server_pid {
        if let Ok((rss, hwm)) = read_status_kb(pid) {
            let cpu_s = match (server_cpu0, read_cpu_secs(&format!("/proc/{pid}/stat"))) {
                (Some((u0, s0)), Some((u1, s1))) => ((u1 + s1) - (u0 + s0)).max(0.0),
                _ => 0.0,
            };
            r.server = Some(ServerUsage {
                pid,
                rss_kb: rss,
                peak_rss_kb: hwm,
                cpu_s,
                cpu_us_per_cycle: if r.cycles > 0 {
                    cpu_s * 1e6 / r.cycles as f64
                } else {
                    0.0
                },
            });
        } else {
            r.error_samples
                .push(format!("server pid {pid} was gone at the end of the run"));
        }
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// /proc readers
// ---------------------------------------------------------------------------------------

/// Clock ticks per second of /proc's utime/stime (USER_HZ, 100 on Linux everywhere).
const USER_HZ: f64 = 100.0;

/// (user, system) CPU seconds from a /proc `stat` file.
fn read_cpu_secs(path: &str) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(path).ok()?;
    parse_stat_cpu(&s)
}

fn parse_stat_cpu(s: &str) -> Option<(f64, f64)> {
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut as f64 / USER_HZ, st as f64 / USER_HZ))
}

/// (VmRSS, VmHWM) in KiB from /proc/PID/status.
fn read_status_kb(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_status_kb(&s).ok_or_else(|| format!("{path} has no VmRSS/VmHWM (a kernel thread?)"))
}

fn parse_status_kb(s: &str) -> Option<(u64, u64)> {
    let field = |key: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct HoldRec {
    /// `(global client << 20) | pipeline slot`.
    owner: u64,
    token: u64,
    /// When the acquire request that got this grant was sent.
    sent: Instant,
    /// When the grant was received.
    granted: Instant,
}

#[derive(Default)]
struct NameRec {
    live: Vec<HoldRec>,
    last: Option<HoldRec>,
}

/// Cross-thread per-name bookkeeping for `--verify`.
struct Verifier {
    shards: Vec<Mutex<HashMap<u64, NameRec>>>,
    exclusive: bool,
    check_order: bool,
    max: Option<u64>,
    hold: Option<Duration>,
    servers: Vec<String>,
    prefix: String,
    start: Instant,
}

impl Verifier {
    fn tracks_names(&self) -> bool {
        self.exclusive || self.max.is_some()
    }

    fn shard(&self, key: u64) -> &Mutex<HashMap<u64, NameRec>> {
        let i = (fmix64(key) % self.shards.len() as u64) as usize;
        &self.shards[i]
    }

    /// Whether a hold whose acquire was sent at `sent` is certainly still held at the
    /// server at `now` (no expiry can have happened yet).
    fn surely_live(&self, sent: Instant, now: Instant) -> bool {
        match self.hold {
            None => true,
            Some(h) => now + HOLD_SLACK < sent + h,
        }
    }

    fn who(&self, owner: u64) -> String {
        format!("client {} slot {}", owner >> 20, owner & 0xfffff)
    }

    fn at(&self, t: Instant) -> String {
        format!(
            "+{:.6}s",
            t.saturating_duration_since(self.start).as_secs_f64()
        )
    }

    fn name(&self, server: u16, name: u64) -> String {
        format!(
            "{}{} on {}",
            self.prefix,
            name,
            self.servers
                .get(server as usize)
                .map_or("?", |s| s.as_str())
        )
    }

    /// Record a grant; returns violation evidence (empty when fine).
    fn grant(&self, server: u16, name: u64, rec: HoldRec, holders: Option<u64>) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some(max), Some(h)) = (self.max, holders) {
            if h > max || h == 0 {
                out.push(format!(
                    "shared grant of {} to {} (token {}) at {} reports holders={} with max={}",
                    self.name(server, name),
                    self.who(rec.owner),
                    rec.token,
                    self.at(rec.granted),
                    h,
                    max
                ));
            }
        }
        if !self.tracks_names() {
            return out;
        }
        let key = (u64::from(server) << 32) | name;
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let nr = map.entry(key).or_default();
        let now = rec.granted;
        if self.exclusive {
            if let Some(other) = nr.live.iter().find(|o| self.surely_live(o.sent, now)) {
                out.push(format!(
                    "exclusive overlap on {}: token {} granted to {} at {} while token {} of {} \
                     (granted at {}) was still held (its UNLOCK not yet sent)",
                    self.name(server, name),
                    rec.token,
                    self.who(rec.owner),
                    self.at(now),
                    other.token,
                    self.who(other.owner),
                    self.at(other.granted)
                ));
            }
            if self.check_order {
                if let Some(last) = nr.last {
                    if rec.token <= last.token && self.surely_live(rec.sent, now) {
                        out.push(format!(
                            "tokens not increasing on {}: token {} granted to {} at {} after \
                             token {} granted to {} at {}",
                            self.name(server, name),
                            rec.token,
                            self.who(rec.owner),
                            self.at(now),
                            last.token,
                            self.who(last.owner),
                            self.at(last.granted)
                        ));
                    }
                }
                if nr.last.is_none_or(|l| rec.token > l.token) {
                    nr.last = Some(rec);
                }
            }
        }
        if let Some(max) = self.max {
            let live = nr
                .live
                .iter()
                .filter(|o| self.surely_live(o.sent, now))
                .count() as u64;
            if live + 1 > max {
                out.push(format!(
                    "shared max exceeded on {}: token {} granted to {} at {} while {} other \
                     shared holds (max={}) were still held, e.g. token {}",
                    self.name(server, name),
                    rec.token,
                    self.who(rec.owner),
                    self.at(now),
                    live,
                    max,
                    nr.live.first().map_or(0, |o| o.token)
                ));
            }
        }
        nr.live.push(rec);
        out
    }

    /// A hold ended from the client's point of view (UNLOCK queued, EXPIRED seen,
    /// connection closed).
    fn release(&self, server: u16, name: u64, owner: u64, token: u64) {
        if !self.tracks_names() {
            return;
        }
        let key = (u64::from(server) << 32) | name;
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(nr) = map.get_mut(&key) {
            if let Some(i) = nr
                .live
                .iter()
                .position(|o| o.owner == owner && o.token == token)
            {
                nr.live.swap_remove(i);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Poll loop
// ---------------------------------------------------------------------------------------

struct WorkerInit {
    tid: usize,
    first_client: usize,
    nclients: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    barrier: Arc<Barrier>,
    salt: u64,
}

struct WorkerResult {
    stats: Stats,
    unanswered: u64,
    cpu_percent: Option<f64>,
}

struct Stats {
    cycles: u64,
    window_cycles: u64,
    timeouts: u64,
    errors: u64,
    expired: u64,
    violations: u64,
    lost_clients: u64,
    per_server: Vec<u64>,
    acq: Histogram<u64>,
    rel: Histogram<u64>,
    late: Histogram<u64>,
    iv_cycles: u64,
    iv_timeouts: u64,
    iv_errors: u64,
    iv_acq: Histogram<u64>,
    violation_samples: Vec<String>,
    error_samples: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    /// Not yet started.
    Idle,
    /// Acquire request sent.
    Acquire,
    /// Granted, waiting for the work timer.
    Hold,
    /// Release request sent.
    Release,
    /// Redis: busy, waiting for the retry timer.
    Retry,
    /// Ping sent.
    Ping,
    /// Finished for good.
    Done,
}

const NO_ID: u64 = u64::MAX;

struct Slot {
    st: St,
    client: u32,
    j: u32,
    server: u16,
    name: u64,
    /// Requests sent so far by this slot (ids are `j + D*k`).
    k: u64,
    /// Id of the request whose reply is expected (lockbox), or NO_ID.
    expect: u64,
    /// Id of the acquire request of the current hold (EXPIRED events carry it).
    hold_id: u64,
    token: u64,
    /// Cycle start (first acquire attempt).
    t_start: Instant,
    /// Latest acquire request sent.
    t_sent: Instant,
    /// Release request sent.
    t_rel: Instant,
    /// Timer generation; a popped timer with another generation is stale.
    gen: u32,
    expired: bool,
    ticket: bool,
}

/// Where a connection is in its setup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Connected, PING sent, waiting for PONG.
    Hello,
    /// Ready for the workload.
    Ready,
}

/// The connection check: lockbox request and reply line (without the newline).
const HELLO_LOCKBOX: &[u8] = b"lg-hello PING\n";
const HELLO_LOCKBOX_REPLY: &[u8] = b"lg-hello PONG";
/// The connection check for Redis.
const HELLO_REDIS: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const HELLO_REDIS_REPLY: &[u8] = b"+PONG";

struct Conn {
    stream: TcpStream,
    client: u32,
    server: u16,
    phase: Phase,
    dead: bool,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    dirty: bool,
    max_token: u64,
    /// Redis: slots in request order.
    fifo: VecDeque<u32>,
}

struct Worker {
    first_client: usize,
    nclients: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    poll: Poll,
    conns: Vec<Conn>,
    slots: Vec<Slot>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    dirty: Vec<usize>,
    rng: u64,
    salt: u64,
    stats: Stats,
    draining: bool,
    active: usize,
    scratch: Vec<u8>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Write `v` in decimal into `buf`, returning the digits.
fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = [0u8; 20];
    out.extend_from_slice(fmt_u64(v, &mut b));
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

fn push_hex16(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

fn show(line: &[u8]) -> String {
    let cut = &line[..line.len().min(200)];
    String::from_utf8_lossy(cut).into_owned()
}

fn worker_main(init: WorkerInit) -> WorkerResult {
    let stats = Stats {
        cycles: 0,
        window_cycles: 0,
        timeouts: 0,
        errors: 0,
        expired: 0,
        violations: 0,
        lost_clients: 0,
        per_server: vec![0; init.plan.servers.len()],
        acq: new_hist(),
        rel: new_hist(),
        late: new_hist(),
        iv_cycles: 0,
        iv_timeouts: 0,
        iv_errors: 0,
        iv_acq: new_hist(),
        violation_samples: Vec::new(),
        error_samples: Vec::new(),
    };
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            set_connect_failed(&init.shared, format!("cannot create poll: {e}"));
            init.barrier.wait();
            let _ = init.tx.send(Msg::Done);
            return WorkerResult {
                stats,
                unanswered: 0,
                cpu_percent: None,
            };
        }
    };
    let mut rng = init.plan.seed ^ fmix64(init.tid as u64 + 0x1234);
    splitmix64(&mut rng);
    let mut w = Worker {
        first_client: init.first_client,
        nclients: init.nclients,
        plan: init.plan,
        shared: init.shared,
        tx: init.tx,
        poll,
        conns: Vec::new(),
        slots: Vec::new(),
        timers: BinaryHeap::new(),
        dirty: Vec::new(),
        rng,
        salt: init.salt,
        stats,
        draining: false,
        active: 0,
        scratch: vec![0u8; 64 * 1024],
    };
    let connected = w.connect_all();
    if let Err(msg) = connected {
        set_connect_failed(&w.shared, msg);
    }
    init.barrier.wait();
    let cpu0 = read_cpu_secs("/proc/thread-self/stat");
    let t0 = Instant::now();
    if !w.shared.abort.load(Ordering::SeqCst)
        && w.shared
            .connect_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    {
        w.run_loop(t0);
    }
    let cpu1 = read_cpu_secs("/proc/thread-self/stat");
    let wall = t0.elapsed().as_secs_f64();
    let cpu_percent = match (cpu0, cpu1) {
        (Some((u0, s0)), Some((u1, s1))) if wall > 0.0 => {
            Some((((u1 + s1) - (u0 + s0)).max(0.0)) / wall * 100.0)
        }
        _ => None,
    };
    let unanswered = w
        .slots
        .iter()
        .filter(|s| matches!(s.st, St::Acquire | St::Release | St::Ping))
        .count() as u64;
    for c in &mut w.conns {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
    let _ = w.tx.send(Msg::Done);
    WorkerResult {
        stats: w.stats,
        unanswered,
        cpu_percent,
    }
}

fn set_connect_failed(shared: &Shared, msg: String) {
    let mut g = shared
        .connect_failed
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        *g = Some(msg);
    }
}

impl Worker {
    fn nservers(&self) -> usize {
        self.plan.addrs.len()
    }

    /// Open connection number `self.conns.len()` (client `idx / ns`, server `idx % ns`).
    fn open_conn(&mut self) -> Result<(), String> {
        let ns = self.nservers();
        let idx = self.conns.len();
        let s = idx % ns;
        let addr = self.plan.addrs[s];
        let mut stream = TcpStream::connect(addr).map_err(|e| {
            let hint = if e.raw_os_error() == Some(24) {
                " (too many open files: raise `ulimit -n`)"
            } else {
                ""
            };
            format!("{}: {e}{hint}", self.plan.servers[s])
        })?;
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(idx),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("register: {e}"))?;
        self.conns.push(Conn {
            stream,
            client: (idx / ns) as u32,
            server: s as u16,
            phase: Phase::Connecting,
            dead: false,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            dirty: false,
            max_token: 0,
            fifo: VecDeque::new(),
        });
        Ok(())
    }

    /// Advance connection `ci` through connect and the PING check; `Ok(true)` once ready.
    fn connect_step(&mut self, ci: usize) -> Result<bool, String> {
        let server = self.plan.servers[self.conns[ci].server as usize].clone();
        let c = &mut self.conns[ci];
        if c.phase == Phase::Connecting {
            if let Ok(Some(e)) | Err(e) = c.stream.take_error() {
                return Err(format!("{server}: {e}"));
            }
            match c.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
                Err(e) => return Err(format!("{server}: {e}")),
            }
            let _ = c.stream.set_nodelay(true);
            c.phase = Phase::Hello;
            c.wbuf.extend_from_slice(match self.plan.target {
                Target::Lockbox => HELLO_LOCKBOX,
                Target::Redis => HELLO_REDIS,
            });
        }
        if c.phase != Phase::Hello {
            return Ok(c.phase == Phase::Ready);
        }
        while c.wpos < c.wbuf.len() {
            match c.stream.write(&c.wbuf[c.wpos..]) {
                Ok(0) => return Err(format!("{server}: connection closed")),
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{server}: {e}")),
            }
        }
        let mut buf = [0u8; 512];
        let line = loop {
            if let Some(nl) = c.rbuf.iter().position(|&b| b == b'\n') {
                break c.rbuf[..nl]
                    .strip_suffix(b"\r")
                    .unwrap_or(&c.rbuf[..nl])
                    .to_vec();
            }
            if c.rbuf.len() > 4096 {
                return Err(format!("{server}: no reply line to the connection check"));
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    let got = show(&c.rbuf);
                    return Err(format!(
                        "{server}: connection closed during the PING check{}",
                        if got.is_empty() {
                            String::new()
                        } else {
                            format!(" after '{got}'")
                        }
                    ));
                }
                Ok(n) => c.rbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{server}: {e}")),
            }
        };
        let want = match self.plan.target {
            Target::Lockbox => HELLO_LOCKBOX_REPLY,
            Target::Redis => HELLO_REDIS_REPLY,
        };
        if line != want {
            return Err(format!(
                "{server}: unexpected answer to the connection check (PING): '{}'",
                show(&line)
            ));
        }
        let used = c.rbuf.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        c.rbuf.drain(..used);
        c.wbuf.clear();
        c.wpos = 0;
        c.phase = Phase::Ready;
        Ok(true)
    }

    /// Connect every connection of this loop, at most `plan.connect_parallel` at a time,
    /// each confirmed by a PING round trip (so the server has accepted it: a burst of
    /// connects never overflows a small listen backlog), and create the slots.
    fn connect_all(&mut self) -> Result<(), String> {
        let now = Instant::now();
        for c in 0..self.nclients {
            for j in 0..self.plan.pipeline {
                self.slots.push(Slot {
                    st: St::Idle,
                    client: c as u32,
                    j: j as u32,
                    server: 0,
                    name: 0,
                    k: 0,
                    expect: NO_ID,
                    hold_id: NO_ID,
                    token: 0,
                    t_start: now,
                    t_sent: now,
                    t_rel: now,
                    gen: 0,
                    expired: false,
                    ticket: false,
                });
            }
        }
        self.active = self.slots.len();
        let total = self.nclients * self.nservers();
        let mut ready = 0;
        let mut inflight = 0;
        let mut events = Events::with_capacity(1024);
        while ready < total {
            while self.conns.len() < total && inflight < self.plan.connect_parallel {
                self.open_conn()?;
                inflight += 1;
            }
            let now = Instant::now();
            if self.shared.abort.load(Ordering::Relaxed) {
                return Err("aborted".into());
            }
            if now >= self.plan.connect_deadline {
                let who = self
                    .conns
                    .iter()
                    .find(|c| c.phase != Phase::Ready)
                    .map_or("?", |c| self.plan.servers[c.server as usize].as_str());
                return Err(format!(
                    "{who}: timed out connecting ({} of {total} connections of a thread ready)",
                    ready
                ));
            }
            let to = (self.plan.connect_deadline - now).min(Duration::from_millis(100));
            if let Err(e) = self.poll.poll(&mut events, Some(to)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll: {e}"));
            }
            for ev in events.iter() {
                let ci = ev.token().0;
                if self.conns[ci].phase == Phase::Ready {
                    continue;
                }
                if self.connect_step(ci)? {
                    inflight -= 1;
                    ready += 1;
                } else if self.conns[ci].phase == Phase::Connecting
                    && (ev.is_error() || ev.is_read_closed() || ev.is_write_closed())
                {
                    let server = &self.plan.servers[self.conns[ci].server as usize];
                    return Err(format!("{server}: connection refused or reset"));
                }
            }
        }
        Ok(())
    }

    fn run_loop(&mut self, t0: Instant) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = t0 + Duration::from_secs(1);
        let mut drain_deadline: Option<Instant> = None;
        for s in 0..self.slots.len() {
            self.start_cycle(s, t0);
        }
        loop {
            let now = Instant::now();
            if self.shared.abort.load(Ordering::Relaxed) {
                break;
            }
            if !self.draining && self.shared.stop.load(Ordering::Relaxed) {
                self.begin_drain();
                drain_deadline = Some(now + self.plan.drain);
            }
            self.fire_timers(now);
            self.flush_dirty();
            if self.active == 0 {
                break;
            }
            if let Some(dd) = drain_deadline {
                if now >= dd {
                    break;
                }
            }
            if now >= next_tick {
                self.send_tick();
                next_tick += Duration::from_secs(1);
                if next_tick <= now {
                    next_tick = now + Duration::from_secs(1);
                }
            }
            let mut wake = next_tick.min(now + Duration::from_millis(50));
            if let Some(Reverse((t, _, _))) = self.timers.peek() {
                wake = wake.min(*t);
            }
            if let Some(dd) = drain_deadline {
                wake = wake.min(dd);
            }
            if let Err(e) = self
                .poll
                .poll(&mut events, Some(wake.saturating_duration_since(now)))
            {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.error(format!("poll: {e}"));
                break;
            }
            for ev in events.iter() {
                let ci = ev.token().0;
                if self.conns[ci].dead {
                    continue;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.on_readable(ci);
                }
                if ev.is_writable() && !self.conns[ci].dead {
                    self.flush(ci);
                }
            }
        }
        self.send_tick();
    }

    fn send_tick(&mut self) {
        let acq = Box::new(std::mem::replace(&mut self.stats.iv_acq, new_hist()));
        let _ = self.tx.send(Msg::Tick {
            cycles: self.stats.iv_cycles,
            timeouts: self.stats.iv_timeouts,
            errors: self.stats.iv_errors,
            acq,
        });
        self.stats.iv_cycles = 0;
        self.stats.iv_timeouts = 0;
        self.stats.iv_errors = 0;
    }

    fn begin_drain(&mut self) {
        self.draining = true;
        for s in 0..self.slots.len() {
            match self.slots[s].st {
                St::Idle => self.finish_slot(s),
                St::Retry => {
                    self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
                    self.return_ticket(s);
                    self.finish_slot(s);
                }
                _ => {}
            }
        }
    }

    fn finish_slot(&mut self, s: usize) {
        if self.slots[s].st != St::Done {
            self.slots[s].st = St::Done;
            self.active -= 1;
        }
    }

    fn return_ticket(&mut self, s: usize) {
        if self.slots[s].ticket {
            self.slots[s].ticket = false;
            self.shared.tickets.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn owner(&self, s: usize) -> u64 {
        let slot = &self.slots[s];
        (((self.first_client + slot.client as usize) as u64) << 20) | u64::from(slot.j)
    }

    fn conn_index(&self, s: usize) -> usize {
        self.slots[s].client as usize * self.nservers() + self.slots[s].server as usize
    }

    fn mark_dirty(&mut self, ci: usize) {
        if !self.conns[ci].dirty {
            self.conns[ci].dirty = true;
            self.dirty.push(ci);
        }
    }

    fn error(&mut self, msg: String) {
        self.stats.errors += 1;
        self.stats.iv_errors += 1;
        if self.stats.error_samples.len() < SAMPLES_PER_THREAD {
            self.stats.error_samples.push(msg);
        }
    }

    fn violation(&mut self, msg: String) {
        self.stats.violations += 1;
        if self.stats.violation_samples.len() < SAMPLES_PER_THREAD {
            self.stats.violation_samples.push(msg);
        }
    }

    /// A protocol anomaly: a violation under `--verify`, an error otherwise.
    fn anomaly(&mut self, msg: String) {
        if self.plan.verify {
            self.violation(msg);
        } else {
            self.error(msg);
        }
    }

    /// Start a new cycle on slot `s`, or retire the slot when the run is stopping.
    fn start_cycle(&mut self, s: usize, now: Instant) {
        if self.draining
            || self.shared.stop.load(Ordering::Relaxed)
            || self.shared.abort.load(Ordering::Relaxed)
        {
            self.finish_slot(s);
            return;
        }
        if let Some(limit) = self.plan.cycles_limit {
            if !self.slots[s].ticket {
                let got = self
                    .shared
                    .tickets
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                        (t < limit).then_some(t + 1)
                    })
                    .is_ok();
                if !got {
                    self.finish_slot(s);
                    return;
                }
                self.slots[s].ticket = true;
            }
        }
        let r = splitmix64(&mut self.rng);
        let name = ((u128::from(r) * u128::from(self.plan.locks)) >> 64) as u64;
        let server = self.plan.route(name);
        let slot = &mut self.slots[s];
        slot.name = name;
        slot.server = server;
        slot.t_start = now;
        slot.expired = false;
        slot.hold_id = NO_ID;
        if self.plan.target == Target::Redis && self.plan.mode != Mode::Ping {
            slot.token = splitmix64(&mut self.rng) ^ self.salt;
        }
        self.send_acquire(s, now);
    }

    fn next_id(&mut self, s: usize) -> u64 {
        let slot = &mut self.slots[s];
        let id = u64::from(slot.j) + self.plan.pipeline as u64 * slot.k;
        slot.k += 1;
        slot.expect = id;
        id
    }

    fn push_name(&mut self, ci: usize, name: u64) {
        let b = &mut self.conns[ci].wbuf;
        b.extend_from_slice(&self.plan.prefix);
        push_u64(b, name);
    }

    fn push_redis_name(&mut self, ci: usize, name: u64) {
        let mut d = [0u8; 20];
        let digits = fmt_u64(name, &mut d);
        let b = &mut self.conns[ci].wbuf;
        b.push(b'$');
        push_u64(b, (self.plan.prefix.len() + digits.len()) as u64);
        b.extend_from_slice(b"\r\n");
        b.extend_from_slice(&self.plan.prefix);
        b.extend_from_slice(digits);
        b.extend_from_slice(b"\r\n");
    }

    /// Send (or, for Redis, re-send) the acquire request or ping of slot `s`.
    fn send_acquire(&mut self, s: usize, now: Instant) {
        let ci = self.conn_index(s);
        let name = self.slots[s].name;
        let mode = self.plan.mode;
        match self.plan.target {
            Target::Lockbox => {
                let id = self.next_id(s);
                let b = &mut self.conns[ci].wbuf;
                push_u64(b, id);
                match mode {
                    Mode::Ping => b.extend_from_slice(b" PING\n"),
                    Mode::Lock | Mode::Share => {
                        b.extend_from_slice(if mode == Mode::Lock {
                            b" LOCK "
                        } else {
                            b" SHARE "
                        });
                        self.push_name(ci, name);
                        let plan = Arc::clone(&self.plan);
                        self.conns[ci].wbuf.extend_from_slice(&plan.acquire_suffix);
                    }
                }
            }
            Target::Redis => {
                if mode == Mode::Ping {
                    self.conns[ci]
                        .wbuf
                        .extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
                } else {
                    self.conns[ci]
                        .wbuf
                        .extend_from_slice(b"*6\r\n$3\r\nSET\r\n");
                    self.push_redis_name(ci, name);
                    let token = self.slots[s].token;
                    let plan = Arc::clone(&self.plan);
                    let b = &mut self.conns[ci].wbuf;
                    b.extend_from_slice(b"$16\r\n");
                    push_hex16(b, token);
                    b.extend_from_slice(b"\r\n$2\r\nNX\r\n$2\r\nPX\r\n");
                    b.extend_from_slice(&plan.redis_px);
                }
                self.conns[ci].fifo.push_back(s as u32);
            }
        }
        let slot = &mut self.slots[s];
        slot.st = if mode == Mode::Ping {
            St::Ping
        } else {
            St::Acquire
        };
        slot.t_sent = now;
        self.mark_dirty(ci);
    }

    fn send_unlock(&mut self, s: usize, now: Instant) {
        let ci = self.conn_index(s);
        let (server, name, token) = (
            self.slots[s].server,
            self.slots[s].name,
            self.slots[s].token,
        );
        // The hold ends, from the client's point of view, before the request is written.
        if let Some(v) = &self.shared.verifier {
            v.release(server, name, self.owner(s), token);
        }
        match self.plan.target {
            Target::Lockbox => {
                let id = self.next_id(s);
                let b = &mut self.conns[ci].wbuf;
                push_u64(b, id);
                b.extend_from_slice(b" UNLOCK ");
                self.push_name(ci, name);
                let b = &mut self.conns[ci].wbuf;
                b.push(b' ');
                push_u64(b, token);
                b.push(b'\n');
            }
            Target::Redis => {
                let plan = Arc::clone(&self.plan);
                self.conns[ci].wbuf.extend_from_slice(&plan.redis_eval_head);
                self.push_redis_name(ci, name);
                let b = &mut self.conns[ci].wbuf;
                b.extend_from_slice(b"$16\r\n");
                push_hex16(b, token);
                b.extend_from_slice(b"\r\n");
                self.conns[ci].fifo.push_back(s as u32);
            }
        }
        let slot = &mut self.slots[s];
        slot.st = St::Release;
        slot.t_rel = now;
        self.mark_dirty(ci);
    }

    fn complete_cycle(&mut self, s: usize, now: Instant) {
        self.stats.cycles += 1;
        self.stats.iv_cycles += 1;
        let stopped = self.shared.stop.load(Ordering::Relaxed);
        if !stopped {
            self.stats.window_cycles += 1;
        }
        self.stats.per_server[self.slots[s].server as usize] += 1;
        if let Some(limit) = self.plan.cycles_limit {
            self.slots[s].ticket = false;
            let done = self.shared.completed.fetch_add(1, Ordering::SeqCst) + 1;
            if done >= limit {
                self.shared.request_stop();
            }
        }
        self.start_cycle(s, now);
    }

    /// The cycle ended without completing (timeout, error, expiry): next one.
    fn fail_cycle(&mut self, s: usize, now: Instant) {
        self.return_ticket(s);
        self.start_cycle(s, now);
    }

    /// A grant arrived for slot `s`.
    fn on_grant(&mut self, s: usize, ci: usize, token: u64, holders: Option<u64>, now: Instant) {
        let lat = micros(now.saturating_duration_since(self.slots[s].t_start));
        self.stats.acq.saturating_record(lat);
        self.stats.iv_acq.saturating_record(lat);
        if self.plan.verify && self.plan.target == Target::Lockbox {
            let max = self.conns[ci].max_token;
            if token <= max && max != 0 {
                let server = self.plan.servers[self.conns[ci].server as usize].clone();
                let c = self.first_client + self.conns[ci].client as usize;
                self.violation(format!(
                    "token order on connection of client {c} to {server}: grant token {token} \
                     for {} is not greater than earlier grant token {max}",
                    self.plan.name_string(self.slots[s].name)
                ));
            }
            self.conns[ci].max_token = max.max(token);
        }
        self.slots[s].token = token;
        if let Some(v) = &self.shared.verifier {
            let rec = HoldRec {
                owner: self.owner(s),
                token,
                sent: self.slots[s].t_sent,
                granted: now,
            };
            let out = v.grant(self.slots[s].server, self.slots[s].name, rec, holders);
            for msg in out {
                self.violation(msg);
            }
        }
        if self.plan.work.is_zero() {
            self.send_unlock(s, now);
        } else {
            let slot = &mut self.slots[s];
            slot.st = St::Hold;
            slot.gen = slot.gen.wrapping_add(1);
            self.timers
                .push(Reverse((now + self.plan.work, s as u32, slot.gen)));
        }
    }

    fn on_timeout(&mut self, s: usize, now: Instant) {
        self.stats.timeouts += 1;
        self.stats.iv_timeouts += 1;
        if let (Some(w), Target::Lockbox) = (self.plan.wait, self.plan.target) {
            let waited = now.saturating_duration_since(self.slots[s].t_start);
            self.stats
                .late
                .saturating_record(micros(waited.saturating_sub(w)));
        }
        self.fail_cycle(s, now);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, s, gen))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let s = s as usize;
            if self.slots[s].gen != gen {
                continue;
            }
            match self.slots[s].st {
                St::Hold => self.send_unlock(s, now),
                St::Retry => {
                    if self.draining {
                        self.return_ticket(s);
                        self.finish_slot(s);
                    } else {
                        self.send_acquire(s, now);
                    }
                }
                _ => {}
            }
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &ci in &dirty {
            self.conns[ci].dirty = false;
            if !self.conns[ci].dead {
                self.flush(ci);
            }
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn flush(&mut self, ci: usize) {
        loop {
            let c = &mut self.conns[ci];
            if c.wpos >= c.wbuf.len() {
                c.wbuf.clear();
                c.wpos = 0;
                return;
            }
            match c.stream.write(&c.wbuf[c.wpos..]) {
                Ok(0) => {
                    self.close_client(ci, "write returned 0".into());
                    return;
                }
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close_client(ci, format!("write: {e}"));
                    return;
                }
            }
        }
    }

    /// Close every connection of the client owning connection `ci` and retire its slots.
    fn close_client(&mut self, ci: usize, reason: String) {
        let ns = self.nservers();
        let client = self.conns[ci].client as usize;
        let server = self.plan.servers[self.conns[ci].server as usize].clone();
        for k in 0..ns {
            let c = &mut self.conns[client * ns + k];
            if !c.dead {
                c.dead = true;
                let _ = self.poll.registry().deregister(&mut c.stream);
                let _ = c.stream.shutdown(Shutdown::Both);
            }
        }
        let d = self.plan.pipeline;
        let mut pending = 0;
        for s in client * d..(client + 1) * d {
            match self.slots[s].st {
                St::Acquire | St::Release | St::Ping => pending += 1,
                St::Hold => {
                    if let Some(v) = &self.shared.verifier {
                        v.release(
                            self.slots[s].server,
                            self.slots[s].name,
                            self.owner(s),
                            self.slots[s].token,
                        );
                    }
                }
                _ => {}
            }
            self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
            self.slots[s].expect = NO_ID;
            self.return_ticket(s);
            self.finish_slot(s);
        }
        let c = self.first_client + client;
        self.stats.lost_clients += 1;
        self.error(format!(
            "connection of client {c} to {server} closed: {reason} ({pending} requests pending)"
        ));
        if pending > 1 {
            self.stats.errors += pending - 1;
            self.stats.iv_errors += pending - 1;
        }
    }

    fn on_readable(&mut self, ci: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        // Bounded: the server only sends replies to our (at most D) requests and events.
        for _ in 0..1_000_000 {
            if self.conns[ci].dead {
                break;
            }
            match self.conns[ci].stream.read(&mut scratch) {
                Ok(0) => {
                    let reason = if self.draining || self.shared.stop.load(Ordering::Relaxed) {
                        "closed by the server during the drain"
                    } else {
                        "closed by the server"
                    };
                    self.close_client(ci, reason.into());
                    break;
                }
                Ok(n) => {
                    let now = Instant::now();
                    self.consume(ci, &scratch[..n], now);
                    // A short read drained the socket; with edge-triggered polling any
                    // later data raises a new event, so skip the read that would only
                    // say WouldBlock (one syscall less per reply batch).
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close_client(ci, format!("read: {e}"));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn consume(&mut self, ci: usize, data: &[u8], now: Instant) {
        let mut buf = std::mem::take(&mut self.conns[ci].rbuf);
        let input: &[u8] = if buf.is_empty() {
            data
        } else {
            buf.extend_from_slice(data);
            &buf
        };
        let used = match self.plan.target {
            Target::Lockbox => self.consume_lines(ci, input, now),
            Target::Redis => self.consume_resp(ci, input, now),
        };
        let rest = input.len() - used;
        if self.conns[ci].dead {
            return;
        }
        if rest > MAX_REPLY {
            self.anomaly(format!("reply longer than {MAX_REPLY} bytes"));
            self.close_client(ci, "reply too long".into());
            return;
        }
        if buf.is_empty() {
            buf.extend_from_slice(&data[used..]);
        } else {
            buf.drain(..used);
        }
        self.conns[ci].rbuf = buf;
    }

    fn consume_lines(&mut self, ci: usize, input: &[u8], now: Instant) -> usize {
        let mut pos = 0;
        while let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') {
            let mut line = &input[pos..pos + nl];
            pos += nl + 1;
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            self.on_line(ci, line, now);
            if self.conns[ci].dead {
                break;
            }
        }
        pos
    }

    fn on_line(&mut self, ci: usize, line: &[u8], now: Instant) {
        let mut it = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|t| !t.is_empty());
        let Some(idb) = it.next() else {
            return;
        };
        let kind = it.next().unwrap_or(b"");
        let Some(id) = parse_u64(idb) else {
            self.anomaly(format!(
                "reply with an id loadgen never sent: '{}'",
                show(line)
            ));
            return;
        };
        let d = self.plan.pipeline as u64;
        let s = self.conns[ci].client as usize * self.plan.pipeline + (id % d) as usize;
        let server = self.conns[ci].server;
        if kind == b"EXPIRED" {
            let token = it.next().and_then(parse_u64);
            let slot = &self.slots[s];
            let ok = slot.hold_id == id
                && slot.server == server
                && matches!(slot.st, St::Hold | St::Release)
                && token == Some(slot.token)
                && !slot.expired;
            if !ok {
                self.anomaly(format!(
                    "EXPIRED event for a hold loadgen does not have: '{}'",
                    show(line)
                ));
                return;
            }
            self.stats.expired += 1;
            self.slots[s].expired = true;
            if self.slots[s].st == St::Hold {
                if let Some(v) = &self.shared.verifier {
                    v.release(
                        server,
                        self.slots[s].name,
                        self.owner(s),
                        self.slots[s].token,
                    );
                }
                self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
                self.fail_cycle(s, now);
            }
            return;
        }
        let st = self.slots[s].st;
        if self.slots[s].expect != id
            || self.slots[s].server != server
            || !matches!(st, St::Acquire | St::Release | St::Ping)
        {
            self.anomaly(format!(
                "reply to no pending request (unknown id or second reply) from {}: '{}'",
                self.plan.servers[server as usize],
                show(line)
            ));
            return;
        }
        self.slots[s].expect = NO_ID;
        match (st, kind) {
            (St::Ping, b"PONG") => {
                let lat = micros(now.saturating_duration_since(self.slots[s].t_start));
                self.stats.acq.saturating_record(lat);
                self.stats.iv_acq.saturating_record(lat);
                self.complete_cycle(s, now);
            }
            (St::Acquire, b"OK") => {
                let token = it.next().and_then(parse_u64);
                let holders = if self.plan.mode == Mode::Share {
                    it.next().and_then(parse_u64)
                } else {
                    Some(0)
                };
                match (token, holders) {
                    (Some(t), Some(h)) => {
                        self.slots[s].hold_id = id;
                        let h = (self.plan.mode == Mode::Share).then_some(h);
                        self.on_grant(s, ci, t, h, now);
                    }
                    _ => {
                        self.anomaly(format!("malformed grant: '{}'", show(line)));
                        self.fail_cycle(s, now);
                    }
                }
            }
            (St::Acquire, b"TIMEOUT") => self.on_timeout(s, now),
            (St::Release, b"OK") => {
                let lat = micros(now.saturating_duration_since(self.slots[s].t_rel));
                self.stats.rel.saturating_record(lat);
                self.complete_cycle(s, now);
            }
            (St::Release, b"ERR")
                if self.slots[s].expired && it.clone().next() == Some(b"not_held") =>
            {
                let lat = micros(now.saturating_duration_since(self.slots[s].t_rel));
                self.stats.rel.saturating_record(lat);
                self.complete_cycle(s, now);
            }
            (_, b"ERR") => {
                let what = match st {
                    St::Acquire => "acquire",
                    St::Release => "UNLOCK",
                    _ => "PING",
                };
                let name = self.plan.name_string(self.slots[s].name);
                self.error(format!(
                    "{what} of {name} on {}: '{}'",
                    self.plan.servers[server as usize],
                    show(line)
                ));
                self.fail_cycle(s, now);
            }
            _ => {
                self.anomaly(format!(
                    "unexpected reply from {} in state {:?}: '{}'",
                    self.plan.servers[server as usize],
                    st,
                    show(line)
                ));
                if st == St::Release {
                    self.complete_cycle(s, now);
                } else {
                    self.fail_cycle(s, now);
                }
            }
        }
    }

    fn consume_resp(&mut self, ci: usize, input: &[u8], now: Instant) -> usize {
        let mut pos = 0;
        loop {
            match parse_resp(&input[pos..], 0) {
                Ok(Some((v, n))) => {
                    let frame = &input[pos..pos + n];
                    pos += n;
                    self.on_resp(ci, v, frame, now);
                    if self.conns[ci].dead {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.anomaly(format!("unparseable Redis reply: {e}"));
                    self.close_client(ci, "protocol error".into());
                    break;
                }
            }
        }
        pos
    }

    fn on_resp(&mut self, ci: usize, v: Resp, frame: &[u8], now: Instant) {
        let server = self.conns[ci].server;
        let Some(s) = self.conns[ci].fifo.pop_front() else {
            self.anomaly(format!(
                "Redis reply with no pending request from {}: '{}'",
                self.plan.servers[server as usize],
                show(frame).trim_end()
            ));
            return;
        };
        let s = s as usize;
        let st = self.slots[s].st;
        match (st, v) {
            (St::Ping, Resp::Simple) if frame.starts_with(b"+PONG") => {
                let lat = micros(now.saturating_duration_since(self.slots[s].t_start));
                self.stats.acq.saturating_record(lat);
                self.stats.iv_acq.saturating_record(lat);
                self.complete_cycle(s, now);
            }
            (St::Acquire, Resp::Simple) if frame.starts_with(b"+OK") => {
                let token = self.slots[s].token;
                self.on_grant(s, ci, token, None, now);
            }
            (St::Acquire, Resp::Nil) => {
                let waited = now.saturating_duration_since(self.slots[s].t_start);
                match self.plan.wait {
                    Some(w) if waited + self.plan.retry > w => self.on_timeout(s, now),
                    _ if self.draining || self.shared.stop.load(Ordering::Relaxed) => {
                        self.return_ticket(s);
                        self.finish_slot(s);
                    }
                    _ => {
                        let slot = &mut self.slots[s];
                        slot.st = St::Retry;
                        slot.gen = slot.gen.wrapping_add(1);
                        self.timers
                            .push(Reverse((now + self.plan.retry, s as u32, slot.gen)));
                    }
                }
            }
            (St::Release, Resp::Int(n)) if n == 0 || n == 1 => {
                let lat = micros(now.saturating_duration_since(self.slots[s].t_rel));
                self.stats.rel.saturating_record(lat);
                if n == 0 {
                    self.stats.expired += 1;
                }
                self.complete_cycle(s, now);
            }
            (_, Resp::Error) => {
                let name = self.plan.name_string(self.slots[s].name);
                self.error(format!(
                    "Redis error for {name} on {}: '{}'",
                    self.plan.servers[server as usize],
                    show(frame).trim_end()
                ));
                self.fail_cycle(s, now);
            }
            _ => {
                self.anomaly(format!(
                    "unexpected Redis reply from {} in state {:?}: '{}'",
                    self.plan.servers[server as usize],
                    st,
                    show(frame).trim_end()
                ));
                if st == St::Release {
                    self.complete_cycle(s, now);
                } else {
                    self.fail_cycle(s, now);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// RESP (Redis protocol) replies
// ---------------------------------------------------------------------------------------

/// The shape of one RESP2 reply (only what loadgen needs to tell apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resp {
    /// `+...`
    Simple,
    /// `-...`
    Error,
    /// `:n`
    Int(i64),
    /// `$n` with n >= 0
    Bulk,
    /// `$-1` or `*-1`
    Nil,
    /// `*n` with n >= 0 (elements skipped)
    Array,
}

/// Parse one RESP reply at the start of `buf`: `Ok(None)` when incomplete, else the reply
/// and its length in bytes.
fn parse_resp(buf: &[u8], depth: usize) -> Result<Option<(Resp, usize)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    if depth > 8 {
        return Err("nesting too deep".into());
    }
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_REPLY {
            return Err("line too long".into());
        }
        return Ok(None);
    };
    let line = &buf[1..eol];
    let after = eol + 2;
    let num = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| format!("bad number '{}'", show(line)))
    };
    match buf[0] {
        b'+' => Ok(Some((Resp::Simple, after))),
        b'-' => Ok(Some((Resp::Error, after))),
        b':' => Ok(Some((Resp::Int(num()?), after))),
        b'$' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((Resp::Nil, after)));
            }
            let n = n as usize;
            if n > MAX_REPLY {
                return Err("bulk string too long".into());
            }
            if buf.len() < after + n + 2 {
                return Ok(None);
            }
            if &buf[after + n..after + n + 2] != b"\r\n" {
                return Err("bulk string not terminated by CRLF".into());
            }
            Ok(Some((Resp::Bulk, after + n + 2)))
        }
        b'*' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((Resp::Nil, after)));
            }
            let mut pos = after;
            for _ in 0..n.min(1 << 20) {
                match parse_resp(&buf[pos..], depth + 1)? {
                    Some((_, used)) => pos += used,
                    None => return Ok(None),
                }
            }
            Ok(Some((Resp::Array, pos)))
        }
        other => Err(format!("unknown reply type byte 0x{other:02x}")),
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(s: &str) -> Result<Options, UsageError> {
        parse_args(&args(s))
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Err(UsageError::Invalid(m)) => m,
            other => panic!("expected an error for '{s}', got {other:?}"),
        }
    }

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64_extend(fnv1a64(b"foo"), b"bar"), fnv1a64(b"foobar"));
        assert_eq!(fmix64(0), 0);
    }

    #[test]
    fn rendezvous_known_vectors() {
        // Computed independently (Python) from the definition in the crate docs.
        let v: &[(&str, &[u8], u64)] = &[
            ("127.0.0.1:7001", b"", 0xa63bfbff87ef688c),
            ("127.0.0.1:7001", b"a", 0x47f07d38ab897fa1),
            ("127.0.0.1:7001", b"lg:0", 0x44c20e1aab9887ca),
            ("127.0.0.1:7001", b"jobs:42", 0x91cca51fa2e3ac99),
            ("127.0.0.1:7001", "été".as_bytes(), 0xed30aa2cc65c01ee),
            ("127.0.0.1:7002", b"", 0xacd3d7c1b369d34f),
            ("127.0.0.1:7002", b"a", 0x0940320f3a8fea68),
            ("127.0.0.1:7002", b"lg:0", 0x912161898369f58e),
            ("127.0.0.1:7002", b"jobs:42", 0x0fa2407e4a910973),
            ("127.0.0.1:7002", "été".as_bytes(), 0xfd486a78c1f7e70a),
            ("127.0.0.1:7003", b"", 0xb9ce5fed59d440c4),
            ("127.0.0.1:7003", b"a", 0x0e7df7455d545417),
            ("127.0.0.1:7003", b"lg:0", 0xe9f91e111cddfe73),
            ("127.0.0.1:7003", b"jobs:42", 0x710a99e1a2dc830d),
            ("127.0.0.1:7003", "été".as_bytes(), 0xe1058a63343b0baa),
        ];
        for &(server, name, want) in v {
            assert_eq!(
                rendezvous_score(server, name),
                want,
                "score({server}, {:?})",
                String::from_utf8_lossy(name)
            );
        }
        let servers = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
        // Winners follow from the scores above.
        assert_eq!(rendezvous_route(&servers, b""), Some(2));
        assert_eq!(rendezvous_route(&servers, b"a"), Some(0));
        assert_eq!(rendezvous_route(&servers, b"lg:0"), Some(2));
        assert_eq!(rendezvous_route(&servers, b"jobs:42"), Some(0));
        assert_eq!(rendezvous_route(&servers, "été".as_bytes()), Some(1));
        assert_eq!(rendezvous_route::<&str>(&[], b"x"), None);
        assert_eq!(rendezvous_route(&["only:1"], b"x"), Some(0));
    }

    #[test]
    fn rendezvous_ties_go_to_lower_index() {
        // The same address twice scores equally: the first one wins.
        assert_eq!(rendezvous_route(&["h:1", "h:1"], b"x"), Some(0));
    }

    #[test]
    fn rendezvous_plan_route_matches_public_function() {
        let servers: Vec<String> = (0..5).map(|i| format!("127.0.0.1:{}", 7000 + i)).collect();
        let route_state: Vec<u64> = servers.iter().map(|s| server_state(s, b"lg:")).collect();
        let plan = test_plan(servers.clone(), route_state);
        for n in 0..2000u64 {
            let name = format!("lg:{n}");
            assert_eq!(
                Some(plan.route(n) as usize),
                rendezvous_route(&servers, name.as_bytes())
            );
        }
    }

    fn test_plan(servers: Vec<String>, route_state: Vec<u64>) -> Plan {
        Plan {
            target: Target::Lockbox,
            mode: Mode::Lock,
            addrs: servers
                .iter()
                .map(|_| "127.0.0.1:1".parse().unwrap())
                .collect(),
            servers,
            pipeline: 1,
            locks: 10,
            prefix: b"lg:".to_vec(),
            route_state,
            work: Duration::ZERO,
            wait: None,
            acquire_suffix: b"\n".to_vec(),
            redis_px: Vec::new(),
            redis_eval_head: Vec::new(),
            retry: Duration::ZERO,
            drain: Duration::ZERO,
            verify: false,
            seed: 1,
            cycles_limit: None,
            connect_deadline: Instant::now(),
            connect_parallel: 8,
        }
    }

    #[test]
    fn rendezvous_distribution_and_stability() {
        let three = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
        let four = [
            "127.0.0.1:7001",
            "127.0.0.1:7002",
            "127.0.0.1:7003",
            "127.0.0.1:7004",
        ];
        let n = 30_000;
        let mut counts = [0usize; 4];
        let mut moved_elsewhere = 0;
        for i in 0..n {
            let name = format!("lg:{i}");
            let a = rendezvous_route(&three, name.as_bytes()).unwrap();
            let b = rendezvous_route(&four, name.as_bytes()).unwrap();
            counts[b] += 1;
            // Adding a server only moves names to the new server.
            if a != b && b != 3 {
                moved_elsewhere += 1;
            }
        }
        assert_eq!(moved_elsewhere, 0);
        for (i, &c) in counts.iter().enumerate() {
            let share = c as f64 / n as f64;
            assert!((0.23..0.27).contains(&share), "server {i} got {share}");
        }
        // Two adjacent ports: the case plain FNV-1a gets wrong (43/57).
        let two = ["127.0.0.1:7654", "127.0.0.1:7655"];
        let first = (0..n)
            .filter(|i| rendezvous_route(&two, format!("lg:{i}").as_bytes()) == Some(0))
            .count();
        let share = first as f64 / n as f64;
        assert!((0.48..0.52).contains(&share), "two servers split {share}");
    }

    #[test]
    fn parse_defaults() {
        let o = parse("").unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.servers, vec!["127.0.0.1:7654"]);
        assert_eq!(o.duration, Some(Duration::from_secs(10)));
        assert_eq!(o.timeout, Duration::from_secs(50));
        let r = parse("--target redis").unwrap();
        assert_eq!(r.servers, vec!["127.0.0.1:6379"]);
        assert_eq!(r.target, Target::Redis);
    }

    #[test]
    fn parse_full() {
        let o = parse(
            "--server 127.0.0.1:1,127.0.0.1:2 --server [::1]:3 --mode share --max 3 \
             --clients 7 --pipeline 4 --threads 2 --locks 5 --work-ms 2 --wait 100 \
             --hold 5000 --cycles 1000 --duration 1.5 --drain-s 2 --timeout-s 9 \
             --seed 42 --verify --json --quiet --server-pid 1 --prefix x: --retry-ms 3",
        )
        .unwrap();
        assert_eq!(o.servers, vec!["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"]);
        assert_eq!(o.mode, Mode::Share);
        assert_eq!(o.max, Some(3));
        assert_eq!((o.clients, o.pipeline, o.threads, o.locks), (7, 4, 2, 5));
        assert_eq!(
            (o.work_ms, o.wait_ms, o.hold_ms),
            (2, Some(100), Some(5000))
        );
        assert_eq!(o.cycles, Some(1000));
        assert_eq!(o.duration, Some(Duration::from_millis(1500)));
        assert_eq!(o.drain, Duration::from_secs(2));
        assert_eq!(o.timeout, Duration::from_secs(9));
        assert_eq!((o.seed, o.retry_ms), (42, 3));
        assert!(o.verify && o.json && o.quiet);
        assert_eq!(o.server_pid, Some(1));
        assert_eq!(o.prefix, "x:");
        // Cycles alone: no duration, 300 s bound.
        let c = parse("--cycles 10").unwrap();
        assert_eq!(c.duration, None);
        assert_eq!(c.timeout, Duration::from_secs(300));
        // Threads are capped by clients.
        assert_eq!(parse("--clients 2 --threads 8").unwrap().threads, 2);
        assert_eq!(parse("--mode PING").unwrap().mode, Mode::Ping);
    }

    #[test]
    fn parse_help() {
        assert_eq!(parse("--help"), Err(UsageError::Help));
        assert_eq!(parse("-h"), Err(UsageError::Help));
        assert!(usage().contains("--verify"));
    }

    #[test]
    fn parse_errors() {
        assert!(err("--clients 0").contains("--clients"));
        assert!(err("--clients x").contains("not a whole number"));
        assert!(err("--clients -1").contains("--clients"));
        assert!(err("--pipeline 0").contains("--pipeline"));
        assert!(err("--locks 0").contains("--locks"));
        assert!(err("--mode write").contains("--mode"));
        assert!(err("--target memcached").contains("--target"));
        assert!(err("--server nope").contains("HOST:PORT"));
        assert!(err("--server 127.0.0.1:0").contains("HOST:PORT"));
        assert!(err("--server 127.0.0.1:99999").contains("HOST:PORT"));
        assert!(err("--server a:1,,b:2").contains("empty"));
        assert!(err("--server a:1 --server a:1").contains("twice"));
        assert!(err("--max 3").contains("share"));
        assert!(err("--mode share --max 0").contains("--max"));
        assert!(err("--target redis --mode share").contains("redis"));
        assert!(err("--target redis --hold 0").contains("PX"));
        assert!(err("--mode ping --work-ms 3").contains("ping"));
        assert!(err("--duration 0").contains("--duration"));
        assert!(err("--duration abc").contains("seconds"));
        assert!(err("--duration inf").contains("--duration"));
        assert!(err("--wait 4294967296").contains("--wait"));
        assert!(err("--bogus").to_lowercase().contains("bogus"));
        assert!(err("--clients").to_lowercase().contains("clients"));
        assert!(err("--clients 1 --clients 2").contains("clients"));
        assert!(err("stray").contains("unexpected argument"));
        assert!(err("--clients 1000000 --pipeline 100").contains("in flight"));
        assert!(err("--prefix a\tb").contains("--prefix") || parse("--prefix a\tb").is_err());
    }

    #[test]
    fn numbers_and_hex() {
        let mut b = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut b), b"0");
        assert_eq!(fmt_u64(u64::MAX, &mut b), b"18446744073709551615");
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1a"), None);
        let mut v = Vec::new();
        push_hex16(&mut v, 0x0123_4567_89ab_cdef);
        assert_eq!(v, b"0123456789abcdef");
    }

    #[test]
    fn resp_parser() {
        assert_eq!(parse_resp(b"+OK\r\n", 0), Ok(Some((Resp::Simple, 5))));
        assert_eq!(parse_resp(b"+OK\r", 0), Ok(None));
        assert_eq!(parse_resp(b"$-1\r\n", 0), Ok(Some((Resp::Nil, 5))));
        assert_eq!(parse_resp(b":1\r\n:0\r\n", 0), Ok(Some((Resp::Int(1), 4))));
        assert_eq!(parse_resp(b"-ERR x\r\n", 0), Ok(Some((Resp::Error, 8))));
        assert_eq!(parse_resp(b"$3\r\nabc\r\n", 0), Ok(Some((Resp::Bulk, 9))));
        assert_eq!(parse_resp(b"$3\r\nab", 0), Ok(None));
        assert_eq!(
            parse_resp(b"*2\r\n$1\r\na\r\n:5\r\n", 0),
            Ok(Some((Resp::Array, 15)))
        );
        assert_eq!(parse_resp(b"*2\r\n$1\r\na\r\n", 0), Ok(None));
        assert!(parse_resp(b"?x\r\n", 0).is_err());
        assert!(parse_resp(b":x\r\n", 0).is_err());
    }

    #[test]
    fn proc_parsers() {
        let stat = "1234 (my (odd) prog) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu(stat), Some((2.5, 1.3)));
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_kb(status), Some((1024, 2048)));
        assert_eq!(parse_status_kb("Name: x\n"), None);
        assert!(read_cpu_secs("/proc/self/stat").is_some());
    }

    fn sample_report() -> Report {
        let mut h = new_hist();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        Report {
            target: Target::Lockbox,
            mode: Mode::Lock,
            servers: vec!["127.0.0.1:7654".into(), "a\"b:1".into()],
            clients: 50,
            pipeline: 1,
            threads: 1,
            locks: 10,
            work_ms: 0,
            wait_ms: None,
            hold_ms: Some(5),
            max: None,
            seed: 1,
            verify: true,
            elapsed_s: 1.0,
            total_s: 1.25,
            cycles: 1000,
            window_cycles: 990,
            cycles_per_sec: 990.0,
            per_server_cycles: vec![600, 400],
            timeouts: 1,
            errors: 2,
            expired: 3,
            unanswered: 0,
            lost_clients: 0,
            violations: 0,
            hit_timeout: false,
            acquire: Latency::from_histogram(&h),
            release: Latency::default(),
            timeout_lateness: Latency::default(),
            cpu: Some(CpuUsage {
                user_s: 0.5,
                sys_s: 0.25,
                percent: 60.0,
                thread_percent: vec![60.0],
                cores: 2,
            }),
            server: None,
            violation_samples: vec!["line\none".into()],
            error_samples: vec![],
        }
    }

    #[test]
    fn latency_from_histogram() {
        let r = sample_report();
        assert_eq!(r.acquire.count, 1000);
        assert!((499..=501).contains(&r.acquire.p50));
        assert!((989..=991).contains(&r.acquire.p99));
        assert_eq!(r.acquire.max, 1000);
        assert_eq!(Latency::from_histogram(&new_hist()), Latency::default());
    }

    #[test]
    fn report_json_shape() {
        let j = sample_report().to_json();
        assert!(j.starts_with('{') && j.ends_with('}'));
        assert!(!j.contains('\n'));
        for key in [
            "\"target\":\"lockbox\"",
            "\"mode\":\"lock\"",
            "\"servers\":[\"127.0.0.1:7654\",\"a\\\"b:1\"]",
            "\"cycles\":1000",
            "\"cycles_per_sec\":990",
            "\"per_server_cycles\":[600,400]",
            "\"wait_ms\":null",
            "\"hold_ms\":5",
            "\"violations\":0",
            "\"verify\":true",
            "\"acquire_us\":{\"count\":1000,\"p50\":",
            "\"release_us\":{\"count\":0,",
            "\"loadgen_cpu\":{\"user_s\":0.5,\"sys_s\":0.25,\"percent\":60,\"thread_percent\":[60],\"cores\":2}",
            "\"server\":null",
            "\"violation_samples\":[\"line\\none\"]",
            "\"error_samples\":[]",
            "\"total_s\":1.25",
        ] {
            assert!(j.contains(key), "missing {key} in {j}");
        }
        // Balanced braces and brackets outside strings.
        let (mut depth, mut in_str, mut esc) = (0i32, false, false);
        for c in j.chars() {
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, '\\') => esc = true,
                    (false, '"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0);
        }
        assert_eq!(depth, 0);
        assert!(!in_str);
    }

    #[test]
    fn report_display() {
        let text = sample_report().to_string();
        assert!(text.contains("cycles        990 in 1.00 s = 990 cycles/s"));
        assert!(text.contains("acquire (us)  p50"));
        assert!(text.contains("per server    127.0.0.1:7654=600"));
        assert!(text.contains("verify        0 violation(s)"));
        assert!(text.contains("VIOLATION     line"));
    }

    #[test]
    fn json_numbers() {
        assert_eq!(json_f64(1.0), "1");
        assert_eq!(json_f64(0.0), "0");
        assert_eq!(json_f64(12.3456), "12.346");
        assert_eq!(json_f64(f64::NAN), "null");
        assert_eq!(json_f64(100.0), "100");
    }

    fn verifier(exclusive: bool, max: Option<u64>, hold: Option<Duration>) -> Verifier {
        Verifier {
            shards: (0..4).map(|_| Mutex::new(HashMap::new())).collect(),
            exclusive,
            check_order: exclusive,
            max,
            hold,
            servers: vec!["s:1".into()],
            prefix: "lg:".into(),
            start: Instant::now(),
        }
    }

    fn rec(owner: u64, token: u64, sent: Instant, granted: Instant) -> HoldRec {
        HoldRec {
            owner,
            token,
            sent,
            granted,
        }
    }

    #[test]
    fn verifier_exclusive() {
        let v = verifier(true, None, None);
        let t = Instant::now();
        assert!(v.grant(0, 1, rec(1 << 20, 10, t, t), None).is_empty());
        // Second grant while the first is live: overlap.
        let out = v.grant(0, 1, rec(2 << 20, 11, t, t), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].contains("exclusive overlap on lg:1 on s:1"));
        v.release(0, 1, 1 << 20, 10);
        v.release(0, 1, 2 << 20, 11);
        // Fine after release; another name is independent.
        assert!(v.grant(0, 1, rec(1 << 20, 12, t, t), None).is_empty());
        assert!(v.grant(0, 2, rec(2 << 20, 13, t, t), None).is_empty());
        v.release(0, 1, 1 << 20, 12);
        // Token going backwards on a name.
        let out = v.grant(0, 1, rec(1 << 20, 5, t, t), None);
        assert!(
            out.iter().any(|m| m.contains("tokens not increasing")),
            "{out:?}"
        );
    }

    #[test]
    fn verifier_hold_expiry_is_not_an_overlap() {
        let v = verifier(true, None, Some(Duration::from_millis(10)));
        let t = Instant::now();
        assert!(v.grant(0, 1, rec(1, 10, t, t), None).is_empty());
        // 5 ms later: surely still held.
        let out = v.grant(0, 1, rec(2, 11, t, t + Duration::from_millis(5)), None);
        assert_eq!(out.len(), 1);
        v.release(0, 1, 2, 11);
        // 20 ms later the first may have expired: no violation.
        let later = t + Duration::from_millis(20);
        assert!(v.grant(0, 1, rec(3, 12, later, later), None).is_empty());
    }

    #[test]
    fn verifier_shared_max() {
        let v = verifier(false, Some(2), None);
        let t = Instant::now();
        assert!(v.grant(0, 1, rec(1, 10, t, t), Some(1)).is_empty());
        assert!(v.grant(0, 1, rec(2, 11, t, t), Some(2)).is_empty());
        let out = v.grant(0, 1, rec(3, 12, t, t), Some(3));
        assert_eq!(out.len(), 2, "{out:?}");
        v.release(0, 1, 1, 10);
        v.release(0, 1, 3, 12);
        assert!(v.grant(0, 1, rec(4, 13, t, t), Some(2)).is_empty());
    }
}
