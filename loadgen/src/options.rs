//! The command line: what a run is asked to do.
//!
//! Owns [`Options`] (with its defaults), the `--help` text and [`parse_args`], which
//! checks every flag's range and the combinations that make no sense, so a run never
//! starts from options it cannot honour. Nothing here touches the network.

use std::fmt;
use std::time::Duration;

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
pub enum CycleKind {
    /// Exclusive lock, hold, unlock.
    Lock,
    /// Shared lock (`SHARE`, optionally `max=`), hold, unlock.
    Share,
    /// One `PING` / `PONG` round trip.
    Ping,
}

impl CycleKind {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleKind::Lock => "lock",
            CycleKind::Share => "share",
            CycleKind::Ping => "ping",
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
    pub mode: CycleKind,
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
            mode: CycleKind::Lock,
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
    let m = flag_spec()
        .parse(args.iter().map(|a| a.as_ref()))
        .map_err(|e| invalid(e.to_string()))?;
    if m.opt_present("help") {
        return Err(UsageError::Help);
    }
    if let Some(extra) = m.free.first() {
        return Err(invalid(format!("unexpected argument '{extra}'")));
    }
    let mut o = Options::default();
    parse_target(&m, &mut o)?;
    parse_workload(&m, &mut o)?;
    parse_length(&m, &mut o)?;
    parse_rest(&m, &mut o)?;
    check_combinations(&o)?;
    Ok(o)
}

/// Every flag `getopts` should accept.
fn flag_spec() -> getopts::Options {
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
    spec
}

/// `--target`, `--mode` and `--server`.
fn parse_target(m: &getopts::Matches, o: &mut Options) -> Result<(), UsageError> {
    if let Some(t) = m.opt_str("target") {
        o.target = match t.to_ascii_lowercase().as_str() {
            "lockbox" => Target::Lockbox,
            "redis" => Target::Redis,
            _ => return Err(invalid(format!("--target: '{t}' is not lockbox or redis"))),
        };
    }
    if let Some(v) = m.opt_str("mode") {
        o.mode = match v.to_ascii_lowercase().as_str() {
            "lock" => CycleKind::Lock,
            "share" => CycleKind::Share,
            "ping" => CycleKind::Ping,
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
    Ok(())
}

/// `--clients`, `--pipeline`, `--threads`, `--locks`, `--prefix`, `--work-ms`, `--wait`,
/// `--hold` and `--max`.
fn parse_workload(m: &getopts::Matches, o: &mut Options) -> Result<(), UsageError> {
    if let Some(v) = opt_u64(m, "clients", 1, 1_000_000)? {
        o.clients = v as usize;
    }
    if let Some(v) = opt_u64(m, "pipeline", 1, 100_000)? {
        o.pipeline = v as usize;
    }
    if o.clients.saturating_mul(o.pipeline) > 10_000_000 {
        return Err(invalid(
            "--clients x --pipeline: at most 10000000 cycles in flight",
        ));
    }
    if let Some(v) = opt_u64(m, "threads", 1, 256)? {
        o.threads = v as usize;
    }
    o.threads = o.threads.min(o.clients);
    if let Some(v) = opt_u64(m, "locks", 1, u64::from(u32::MAX))? {
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
    if let Some(v) = opt_u64(m, "work-ms", 0, MS_MAX)? {
        o.work_ms = v;
    }
    o.wait_ms = opt_u64(m, "wait", 0, MS_MAX)?;
    o.hold_ms = opt_u64(m, "hold", 0, MS_MAX)?;
    o.max = opt_u64(m, "max", 1, MS_MAX)?;
    Ok(())
}

/// `--cycles`, `--duration`, `--drain-s` and `--timeout-s` (derived when absent).
fn parse_length(m: &getopts::Matches, o: &mut Options) -> Result<(), UsageError> {
    o.cycles = opt_u64(m, "cycles", 1, u64::MAX / 2)?;
    o.duration = opt_secs(m, "duration", 0.001, 1e7)?;
    if o.duration.is_none() && o.cycles.is_none() {
        o.duration = Some(Duration::from_secs(10));
    }
    if let Some(d) = opt_secs(m, "drain-s", 0.0, 1e7)? {
        o.drain = d;
    }
    o.timeout = match opt_secs(m, "timeout-s", 0.001, 1e8)? {
        Some(t) => t,
        None => match o.duration {
            Some(d) => d + o.drain + Duration::from_secs(30),
            None => Duration::from_secs(300),
        },
    };
    Ok(())
}

/// `--retry-ms`, `--seed`, `--server-pid`, `--verify`, `--json` and `--quiet`.
fn parse_rest(m: &getopts::Matches, o: &mut Options) -> Result<(), UsageError> {
    if let Some(v) = opt_u64(m, "retry-ms", 0, 60_000)? {
        o.retry_ms = v;
    }
    if let Some(v) = opt_u64(m, "seed", 0, u64::MAX)? {
        o.seed = v;
    }
    o.server_pid = opt_u64(m, "server-pid", 1, u64::from(u32::MAX))?.map(|p| p as u32);
    o.verify = m.opt_present("verify");
    o.json = m.opt_present("json");
    o.quiet = m.opt_present("quiet");
    Ok(())
}

/// Flags that are valid alone but not together.
fn check_combinations(o: &Options) -> Result<(), UsageError> {
    if o.max.is_some() && o.mode != CycleKind::Share {
        return Err(invalid("--max only applies to --mode share"));
    }
    if o.target == Target::Redis {
        if o.mode == CycleKind::Share {
            return Err(invalid("--mode share is not supported with --target redis"));
        }
        if o.hold_ms == Some(0) {
            return Err(invalid(
                "--hold 0 is not valid with --target redis (PX must be >= 1)",
            ));
        }
    }
    if o.mode == CycleKind::Ping
        && (o.work_ms > 0 || o.wait_ms.is_some() || o.hold_ms.is_some() || o.max.is_some())
    {
        return Err(invalid(
            "--mode ping takes no --work-ms, --wait, --hold or --max",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
