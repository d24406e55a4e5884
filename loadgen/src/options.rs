//! The command line: what a run is asked to do.
//!
//! Owns [`Options`] (with its defaults), the `--help` text and [`parse_args`], which
//! checks every flag's range and the combinations that make no sense, so a run never
//! starts from options it cannot honour. Nothing here touches the network.

use std::fmt;
use std::time::Duration;

mod units;

use units::{parse_time, whole_millis, Unit};

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
    /// `--work TIME` (or `--work-ms`), in ms: hold time before unlocking, 0 = unlock at
    /// once (default 0).
    pub work_ms: u64,
    /// `--wait TIME`, in ms: `wait=` option (Redis: how long to keep retrying).
    /// Default: absent.
    pub wait_ms: Option<u64>,
    /// `--hold TIME`, in ms: `hold=` option (Redis: `PX`, default 30000). Default: absent.
    pub hold_ms: Option<u64>,
    /// `--max M`: `SHARE ... max=M` (share mode only).
    pub max: Option<u64>,
    /// `--duration TIME`; default 10 s when `--cycles` is absent.
    pub duration: Option<Duration>,
    /// `--cycles N`: stop after N completed cycles in total.
    pub cycles: Option<u64>,
    /// `--timeout TIME` (or `--timeout-s`): hard bound on the whole run (default duration + drain + 30 s,
    /// or 300 s with `--cycles` alone). [`parse_args`] derives it; when you build
    /// `Options` by hand and lengthen `duration`, lengthen this too.
    pub timeout: Duration,
    /// `--drain TIME` (or `--drain-s`): how long in-flight cycles may take to finish
    /// after the stop
    /// (default 10 s).
    pub drain: Duration,
    /// `--retry TIME` (or `--retry-ms`), in ms: Redis retry interval when the lock is
    /// busy (default 1).
    pub retry_ms: u64,
    /// `--seed N`: seed of the name-choosing PRNG (default 1).
    pub seed: u64,
    /// `--verify`: check mutual exclusion, token order, shared max and exactly-once replies
    /// (and, with `--chaos`, cancelled waits and ended holds).
    pub verify: bool,
    /// `--chaos RATE`: the fraction of cycles (0 < RATE <= 1) that misbehave on purpose
    /// (lockbox only; see the crate documentation). Default: absent.
    pub chaos: Option<f64>,
    /// `--json`: print one JSON object instead of the human summary.
    pub json: bool,
    /// `--quiet`: no progress lines.
    pub quiet: bool,
    /// `--server-pid PID`: report that process's RSS, peak RSS and CPU time.
    pub server_pid: Option<u32>,
    /// `--id-len N`: every request id is exactly N bytes (its decimal digits left-padded
    /// with `0`; lockbox only). Default: absent, ids are bare decimal numbers.
    pub id_len: Option<usize>,
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
            chaos: None,
            json: false,
            quiet: false,
            server_pid: None,
            id_len: None,
        }
    }
}

/// Why the command line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsageError {
    /// `-h` / `--help` was given: print [`usage`] and exit 0.
    Help,
    /// `-V` / `--version` was given: print [`version`] and exit 0.
    Version,
    /// A bad argument, with a one-line explanation.
    Invalid(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Help => f.write_str("help requested"),
            UsageError::Version => f.write_str("version requested"),
            UsageError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for UsageError {}

/// Most `--clients`.
const CLIENTS_MAX: u64 = 1_000_000;
/// Most `--pipeline`.
const PIPELINE_MAX: u64 = 100_000;
/// Most `--clients` x `--pipeline` (cycles in flight).
const IN_FLIGHT_MAX: u64 = 10_000_000;
/// Most `--threads`.
const THREADS_MAX: u64 = 256;
/// Most `--locks`, and most `--max` and `--server-pid`.
const U32_MAX: u64 = u32::MAX as u64;
/// Most `--work`, `--wait` and `--hold`, in ms (what the server accepts).
const MS_MAX: u64 = u32::MAX as u64;
/// Most `--retry`, in ms.
const RETRY_MS_MAX: u64 = 60_000;
/// Most `--id-len`: the longest request id lockbox accepts.
const ID_LEN_MAX: u64 = 32;
/// Most `--cycles`.
const CYCLES_MAX: u64 = u64::MAX / 2;
/// Most `--server` addresses.
const SERVERS_MAX: usize = 1024;
/// Longest `--prefix`, in bytes.
const PREFIX_MAX: usize = 200;
/// Shortest `--duration` and `--timeout`.
const DURATION_MIN: Duration = Duration::from_millis(1);
/// Longest `--duration` and `--drain`.
const DURATION_MAX: Duration = Duration::from_secs(10_000_000);
/// Longest `--timeout`.
const TIMEOUT_MAX: Duration = Duration::from_secs(100_000_000);
/// Added to `--duration` + `--drain` for the default `--timeout`.
const TIMEOUT_SLACK: Duration = Duration::from_secs(30);
/// The default `--timeout` with `--cycles` and no `--duration`.
const TIMEOUT_CYCLES_ONLY: Duration = Duration::from_secs(300);

/// The `--version` text: `loadgen` and its version.
pub fn version() -> String {
    format!("loadgen {}\n", env!("CARGO_PKG_VERSION"))
}

/// The `--help` text: every flag with its range and default.
pub fn usage() -> String {
    let d = Options::default();
    format!(
        "\
Usage: loadgen [OPTIONS]

Load generator and checker for lockbox (and Redis locks, for comparison).

Times are written 500ms or 3s (fractions allowed: 1.5s). A plain number is in
milliseconds for --work, --wait, --hold and --retry, in seconds for --duration,
--drain and --timeout. --work-ms, --retry-ms, --drain-s and --timeout-s are the
older names of --work, --retry, --drain and --timeout.

Target:
  --target lockbox|redis   server kind (default lockbox)
  --server ADDR            HOST:PORT, repeatable or comma-separated, 1 to {SERVERS_MAX}
                           addresses; several shard names by rendezvous hashing
                           (default {DEFAULT_LOCKBOX_ADDR}, redis {DEFAULT_REDIS_ADDR})
Workload:
  --mode lock|share|ping   cycle kind (default lock)
  --clients N              logical clients, one connection per server each
                           (1 to {CLIENTS_MAX}, default {clients})
  --pipeline D             cycles outstanding per client
                           (1 to {PIPELINE_MAX}, default {pipeline});
                           clients x pipeline at most {IN_FLIGHT_MAX}
  --threads T              poll loops / threads (1 to {THREADS_MAX}, at most --clients,
                           default {threads})
  --locks K                distinct lock names PREFIX0..PREFIX(K-1)
                           (1 to {U32_MAX}, default {locks})
  --prefix P               lock name prefix, at most {PREFIX_MAX} bytes, no spaces or
                           control characters (default {prefix})
  --work TIME              hold time before unlock
                           (0 to {MS_MAX}ms, default {work}ms)
  --wait TIME              wait= option (redis: retry budget)
                           (0 to {MS_MAX}ms, default none)
  --hold TIME              hold= option (redis: PX)
                           (0 to {MS_MAX}ms, redis 1ms and up;
                           default none, redis {DEFAULT_REDIS_HOLD_MS}ms)
  --max M                  share mode: SHARE ... max=M
                           (1 to {U32_MAX}, default none)
  --retry TIME             redis: retry interval when busy
                           (0 to {RETRY_MS_MAX}ms, default {retry}ms)
  --seed N                 PRNG seed for name choice and chaos
                           (0 to {u64_max}, default {seed})
  --chaos RATE             misbehave on purpose in a fraction RATE of cycles
                           (above 0, at most 1, e.g. 0.05; default none;
                           lockbox only: refused with --target redis and
                           --mode ping). Each such cycle does one of, at random:
                           close its connection while waiting or while holding
                           (then reconnect; half the closes wait for the
                           server's close and INSPECT the held names), CANCEL
                           its wait, RESET the connection while holding, EXTEND
                           its hold, or take a {lease}ms lease and let it expire.
                           In lock mode one name in {sem_every} is a semaphore: half
                           the cycles on it use SHARE max=M (M 1 to 3) instead
                           of LOCK
  --id-len N               lockbox: every request id exactly N bytes, its
                           decimal number left-padded with 0 (1 to {ID_LEN_MAX};
                           default none: bare decimal ids of 1 to 20 digits).
                           An id with more than N digits is sent whole, so
                           with N below 20 a long run has longer ids too
Length:
  --duration TIME          length of the load ({dur_min} to {dur_max};
                           default 10s unless --cycles)
  --cycles N               stop after N completed cycles
                           (1 to {CYCLES_MAX}, default none)
  --drain TIME             time allowed to finish in-flight cycles
                           (0 to {dur_max}, default {drain})
  --timeout TIME           hard bound on the whole run ({dur_min} to {timeout_max};
                           default duration + drain + {slack},
                           or {cycles_only} with --cycles alone)
Output:
  --verify                 check, and count in the report, each property
                           (exit 1 on any violation):
                           exclusion: no grant while a conflicting hold is
                             surely still held (until its UNLOCK or RESET is
                             sent, its connection closed, its EXPIRED seen or
                             its lease may have run out);
                           shared_max: shared holds stay within max=;
                           tokens: a grant's token exceeds every token seen
                             from that server before its request was sent,
                             and tokens increase per connection and per name;
                           exactly_once: every reply answers exactly one
                             pending request (exempt: requests on connections
                             loadgen closed itself);
                           cancelled_waits: a wait ended by CANCEL or RESET is
                             never granted, its CANCELLED comes first; a grant
                             that crossed the CANCEL is not a violation;
                           ended_holds: after a close the server drops the
                             holds (INSPECT), after RESET UNLOCK finds nothing;
                           protocol: replies have the expected shape.
                           With several --server every check is per server
  --json                   print one JSON object instead of the summary
  --quiet                  no progress lines on stderr
  --server-pid PID         report the server's RSS, peak RSS and CPU time
                           (1 to {U32_MAX}, default none)
  -h, --help               this text
  -V, --version            loadgen's version

Exit status: 0 ok; 1 violations, lost connections or no run; 2 bad arguments.
",
        clients = d.clients,
        pipeline = d.pipeline,
        threads = d.threads,
        locks = d.locks,
        prefix = d.prefix,
        work = d.work_ms,
        retry = d.retry_ms,
        seed = d.seed,
        lease = crate::worker::CHAOS_LEASE_MS,
        sem_every = crate::worker::SEMAPHORE_EVERY,
        u64_max = u64::MAX,
        dur_min = fmt_time(DURATION_MIN),
        dur_max = fmt_time(DURATION_MAX),
        drain = fmt_time(d.drain),
        timeout_max = fmt_time(TIMEOUT_MAX),
        slack = fmt_time(TIMEOUT_SLACK),
        cycles_only = fmt_time(TIMEOUT_CYCLES_ONLY),
    )
}

/// A time as the help and the errors print it: whole seconds as `3s`, else `500ms`.
fn fmt_time(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn invalid(msg: impl Into<String>) -> UsageError {
    UsageError::Invalid(msg.into())
}

/// A flag's message: `--name: what`.
fn flag_err(name: &str, what: impl fmt::Display) -> UsageError {
    invalid(format!("--{name}: {what}"))
}

/// A whole-number flag in `min to max`.
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
        .map_err(|_| flag_err(name, format!("'{s}' is not a whole number")))?;
    if v < min || v > max {
        return Err(flag_err(
            name,
            format!("{v} is out of range ({min} to {max})"),
        ));
    }
    Ok(Some(v))
}

/// The value of a time flag given as `name` or by its older name `old`, with the
/// flag name used (never both).
fn time_arg(
    m: &getopts::Matches,
    name: &str,
    old: Option<&str>,
) -> Result<Option<(String, String)>, UsageError> {
    let new = m.opt_str(name).map(|v| (name.to_string(), v));
    let old = old.and_then(|o| m.opt_str(o).map(|v| (o.to_string(), v)));
    match (new, old) {
        (Some(_), Some((o, _))) => Err(invalid(format!(
            "--{name} and --{o} are the same flag: give one"
        ))),
        (n, o) => Ok(n.or(o)),
    }
}

/// A time flag in whole milliseconds, `0 to max` ms; a plain number is milliseconds.
fn opt_ms(
    m: &getopts::Matches,
    name: &str,
    old: Option<&str>,
    max: u64,
) -> Result<Option<u64>, UsageError> {
    let Some((flag, s)) = time_arg(m, name, old)? else {
        return Ok(None);
    };
    let d = parse_time(&s, Unit::Millis).map_err(|e| flag_err(&flag, e))?;
    let ms = whole_millis(&s, d).map_err(|e| flag_err(&flag, e))?;
    if ms > max {
        return Err(flag_err(
            &flag,
            format!(
                "'{s}' is out of range (0 to {max}{})",
                Unit::Millis.suffix()
            ),
        ));
    }
    Ok(Some(ms))
}

/// A time flag in `min to max`; a plain number is seconds.
fn opt_time(
    m: &getopts::Matches,
    name: &str,
    old: Option<&str>,
    min: Duration,
    max: Duration,
) -> Result<Option<Duration>, UsageError> {
    let Some((flag, s)) = time_arg(m, name, old)? else {
        return Ok(None);
    };
    let d = parse_time(&s, Unit::Secs).map_err(|e| flag_err(&flag, e))?;
    if d < min || d > max {
        let min = if min.is_zero() {
            "0".to_string()
        } else {
            fmt_time(min)
        };
        return Err(flag_err(
            &flag,
            format!("'{s}' is out of range ({min} to {})", fmt_time(max)),
        ));
    }
    Ok(Some(d))
}

/// `getopts`' complaint as one lowercase line naming the flag with its dashes.
fn getopts_error(e: getopts::Fail) -> UsageError {
    let dashes = |n: &str| {
        if n.chars().count() == 1 {
            format!("-{n}")
        } else {
            format!("--{n}")
        }
    };
    let bare = |n: &str| n.trim_start_matches('-').to_string();
    match e {
        getopts::Fail::ArgumentMissing(n) => {
            invalid(format!("{}: needs a value", dashes(&bare(&n))))
        }
        getopts::Fail::UnrecognizedOption(n) => {
            invalid(format!("{}: unknown flag", dashes(&bare(&n))))
        }
        getopts::Fail::OptionMissing(n) => invalid(format!("{}: missing", dashes(&bare(&n)))),
        getopts::Fail::OptionDuplicated(n) => {
            invalid(format!("{}: given more than once", dashes(&bare(&n))))
        }
        getopts::Fail::UnexpectedArgument(n) => {
            invalid(format!("{}: takes no value", dashes(&bare(&n))))
        }
    }
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
/// `-h`/`--help` gives [`UsageError::Help`], `-V`/`--version` [`UsageError::Version`].
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
        .map_err(getopts_error)?;
    if m.opt_present("help") {
        return Err(UsageError::Help);
    }
    if m.opt_present("version") {
        return Err(UsageError::Version);
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
        .optopt("", "work", "hold time", "TIME")
        .optopt("", "work-ms", "older name of --work", "TIME")
        .optopt("", "wait", "wait time", "TIME")
        .optopt("", "hold", "hold time", "TIME")
        .optopt("", "max", "shared max", "M")
        .optopt("", "duration", "load time", "TIME")
        .optopt("", "cycles", "cycles", "N")
        .optopt("", "timeout", "hard timeout", "TIME")
        .optopt("", "timeout-s", "older name of --timeout", "TIME")
        .optopt("", "drain", "drain timeout", "TIME")
        .optopt("", "drain-s", "older name of --drain", "TIME")
        .optopt("", "retry", "redis retry", "TIME")
        .optopt("", "retry-ms", "older name of --retry", "TIME")
        .optopt("", "seed", "seed", "N")
        .optopt("", "server-pid", "server pid", "PID")
        .optopt("", "chaos", "chaos rate", "RATE")
        .optopt("", "id-len", "request id length", "N")
        .optflag("", "verify", "verify")
        .optflag("", "json", "json")
        .optflag("", "quiet", "quiet")
        .optflag("h", "help", "help")
        .optflag("V", "version", "version");
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
    if servers.len() > SERVERS_MAX {
        return Err(invalid(format!(
            "--server: {} addresses, at most {SERVERS_MAX}",
            servers.len()
        )));
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

/// `--clients`, `--pipeline`, `--threads`, `--locks`, `--prefix`, `--work`, `--wait`,
/// `--hold`, `--max` and `--id-len`.
fn parse_workload(m: &getopts::Matches, o: &mut Options) -> Result<(), UsageError> {
    if let Some(v) = opt_u64(m, "clients", 1, CLIENTS_MAX)? {
        o.clients = v as usize;
    }
    if let Some(v) = opt_u64(m, "pipeline", 1, PIPELINE_MAX)? {
        o.pipeline = v as usize;
    }
    if (o.clients as u64).saturating_mul(o.pipeline as u64) > IN_FLIGHT_MAX {
        return Err(invalid(format!(
            "--clients x --pipeline: at most {IN_FLIGHT_MAX} cycles in flight"
        )));
    }
    if let Some(v) = opt_u64(m, "threads", 1, THREADS_MAX)? {
        o.threads = v as usize;
    }
    o.threads = o.threads.min(o.clients);
    if let Some(v) = opt_u64(m, "locks", 1, U32_MAX)? {
        o.locks = v;
    }
    if let Some(p) = m.opt_str("prefix") {
        if p.len() > PREFIX_MAX {
            return Err(invalid(format!(
                "--prefix: {} bytes, at most {PREFIX_MAX}",
                p.len()
            )));
        }
        if p.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid("--prefix: no spaces or control characters"));
        }
        o.prefix = p;
    }
    if let Some(v) = opt_ms(m, "work", Some("work-ms"), MS_MAX)? {
        o.work_ms = v;
    }
    o.wait_ms = opt_ms(m, "wait", None, MS_MAX)?;
    o.hold_ms = opt_ms(m, "hold", None, MS_MAX)?;
    o.max = opt_u64(m, "max", 1, U32_MAX)?;
    o.id_len = opt_u64(m, "id-len", 1, ID_LEN_MAX)?.map(|n| n as usize);
    Ok(())
}

/// `--cycles`, `--duration`, `--drain` and `--timeout` (derived when absent).
fn parse_length(m: &getopts::Matches, o: &mut Options) -> Result<(), UsageError> {
    o.cycles = opt_u64(m, "cycles", 1, CYCLES_MAX)?;
    o.duration = opt_time(m, "duration", None, DURATION_MIN, DURATION_MAX)?;
    if o.duration.is_none() && o.cycles.is_none() {
        o.duration = Some(Duration::from_secs(10));
    }
    if let Some(d) = opt_time(m, "drain", Some("drain-s"), Duration::ZERO, DURATION_MAX)? {
        o.drain = d;
    }
    o.timeout = match opt_time(m, "timeout", Some("timeout-s"), DURATION_MIN, TIMEOUT_MAX)? {
        Some(t) => t,
        None => match o.duration {
            Some(d) => d + o.drain + TIMEOUT_SLACK,
            None => TIMEOUT_CYCLES_ONLY,
        },
    };
    Ok(())
}

/// `--retry`, `--seed`, `--server-pid`, `--chaos`, `--verify`, `--json` and `--quiet`.
fn parse_rest(m: &getopts::Matches, o: &mut Options) -> Result<(), UsageError> {
    if let Some(v) = opt_ms(m, "retry", Some("retry-ms"), RETRY_MS_MAX)? {
        o.retry_ms = v;
    }
    if let Some(v) = opt_u64(m, "seed", 0, u64::MAX)? {
        o.seed = v;
    }
    o.server_pid = opt_u64(m, "server-pid", 1, U32_MAX)?.map(|p| p as u32);
    if let Some(v) = m.opt_str("chaos") {
        let rate: f64 = v
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite())
            .ok_or_else(|| flag_err("chaos", format!("'{v}' is not a number")))?;
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(flag_err(
                "chaos",
                format!("'{v}' is out of range (a fraction of cycles, above 0 and at most 1)"),
            ));
        }
        o.chaos = Some(rate);
    }
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
    if o.chaos.is_some() {
        if o.target == Target::Redis {
            return Err(invalid(
                "--chaos needs --target lockbox (it uses CANCEL, RESET, EXTEND and INSPECT, \
                 which the Redis lock recipe has no equivalent of)",
            ));
        }
        if o.mode == CycleKind::Ping {
            return Err(invalid("--chaos needs --mode lock or share"));
        }
    }
    if o.target == Target::Redis {
        if o.mode == CycleKind::Share {
            return Err(invalid("--mode share is not supported with --target redis"));
        }
        if o.id_len.is_some() {
            return Err(invalid(
                "--id-len needs --target lockbox (Redis requests carry no id)",
            ));
        }
        if o.hold_ms == Some(0) {
            return Err(invalid(
                "--hold: 0 is not valid with --target redis (PX is 1ms or more)",
            ));
        }
    }
    if o.mode == CycleKind::Ping
        && (o.work_ms > 0 || o.wait_ms.is_some() || o.hold_ms.is_some() || o.max.is_some())
    {
        return Err(invalid(
            "--mode ping takes no --work, --wait, --hold or --max",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
