//! The command line: global flags, subcommands, durations.
//!
//! # Invariants
//! - Every duration on the command line goes through [`parse_duration`]: `500ms`, `30s`,
//!   `5m`, `1h`, a plain number is seconds (as for sleep(1) and flock -w), fractions
//!   are rounded up to the next millisecond, and the result fits the protocol's
//!   32-bit millisecond fields.
//! - Server addresses are kept exactly as written: they are hashed as strings to route
//!   lock names, so every client must spell the list the same way.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit;

/// The server used when neither `--server` nor `LOCKBOX_SERVER` names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7654";
/// Longest duration any flag takes: the protocol's `wait=` and `hold=` are 32-bit
/// millisecond counts (about 49.7 days).
pub const MAX_DURATION_MS: u64 = u32::MAX as u64;
/// Shortest `--hold`: the lease is renewed every third of it, so below this the renewals
/// would be a busy loop and one scheduling hiccup would lose the lock.
pub const MIN_HOLD_MS: u64 = 100;
/// Default lease of `run`.
pub const DEFAULT_HOLD: &str = "30s";
/// Default time the command gets between SIGTERM and SIGKILL after the lease was lost.
pub const DEFAULT_KILL_AFTER: &str = "10s";
/// Default bound on connecting to a server (TCP connect and the AUTH/NAME handshake).
pub const DEFAULT_CONNECT_TIMEOUT: &str = "5s";
/// Default number of `ping` round trips per server.
pub const DEFAULT_PING_COUNT: &str = "10";
/// Default pause between two `ping` round trips.
pub const DEFAULT_PING_INTERVAL: &str = "100ms";

/// The exit statuses, for the help texts (a macro so `concat!` can use it).
macro_rules! exit_codes_help {
    () => {
        "\
Exit status of every command:
  0     success (for `run`: the command's own status)
  64    usage error: bad flag, duration, address or lock name
  66    the --auth-file cannot be read
  69    a server cannot be reached, or the connection broke before the lock was granted
  70    `run`: the lease was lost while the command ran (the command got SIGTERM)
  75    `run`: the lock was not acquired within --wait (see --conflict-exit-code)
  76    the server answered with an error or something unexpected
  77    authentication failed (wrong or missing --auth-file)
  126   `run`: the command is not executable
  127   `run`: the command was not found
  128+N `run`: the command was killed by signal N

Environment:
  LOCKBOX_SERVER     servers, comma-separated (instead of --server)
  LOCKBOX_AUTH_FILE  the secret's file (instead of --auth-file)"
    };
}

/// The help heading of the flags every subcommand takes.
const GLOBAL: &str = "Global options";

const ABOUT: &str = "lockbox from the shell: run a command under a network lock, look at a server";

const LONG_ABOUT: &str = "\
lockbox from the shell.

`run` is flock(1) across machines: it takes a lock on a lockbox server, runs a command \
while keeping the lock's lease alive, releases the lock when the command ends and exits \
with the command's status. The admin commands (`inspect`, `list`, `clients`, `stats`, \
`ping`) show what a running server is doing, as tables or, with --json, as JSON.

With several --server addresses, each lock name lives on the one server that \
rendezvous hashing picks for it, as in every lockbox client: give every client the \
same list, spelled the same way.";

/// `lockbox-cli`: global flags and one subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "lockbox-cli",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = exit_codes_help!(),
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Server address HOST:PORT; repeat it (or separate with commas) for several
    /// servers, over which lock names are sharded
    #[arg(
        long = "server",
        short = 's',
        value_name = "ADDR",
        env = "LOCKBOX_SERVER",
        value_delimiter = ',',
        default_value = DEFAULT_SERVER,
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL
    )]
    pub servers: Vec<String>,

    /// File whose first line is the server's secret (sent with AUTH)
    #[arg(
        long,
        value_name = "PATH",
        env = "LOCKBOX_AUTH_FILE",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL
    )]
    pub auth_file: Option<PathBuf>,

    /// Machine-readable output for inspect, list, clients, stats and ping: JSON instead
    /// of tables
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Client name the server shows in CLIENTS and as a lock's owner (by default
    /// `lockbox-cli@HOST:PID`).
    #[arg(
        long,
        value_name = "NAME",
        global = true,
        help_heading = GLOBAL,
        help = "Client name the server shows in CLIENTS and as a lock's owner [default: lockbox-cli@HOST:PID]"
    )]
    pub client_name: Option<String>,

    /// Give up connecting to a server after this long
    #[arg(
        long,
        value_name = "DUR",
        default_value = DEFAULT_CONNECT_TIMEOUT,
        value_parser = parse_duration,
        global = true,
        help_heading = GLOBAL
    )]
    pub connect_timeout: Duration,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command while holding a lock (flock(1) across machines)
    #[command(
        long_about = "\
Take the lock NAME, run CMD with LOCKBOX_LOCK (the name) and LOCKBOX_TOKEN (the fencing \
token) in its environment, renew the lock's lease while it runs, release the lock when it \
ends, and exit with its status (128+N when signal N killed it).

The lease (--hold) is what frees the lock if this machine dies or is cut off: the server \
takes the lock back DUR after the last renewal. Renewals go out every third of --hold. \
If the lease is lost anyway (the server went away, or renewals did not get through in \
time), CMD gets SIGTERM (SIGKILL after --kill-after), and lockbox-cli exits 70.

SIGINT, SIGTERM and SIGHUP sent to lockbox-cli are passed on to CMD; the lock is released \
when CMD ends. (Ctrl-C in a terminal reaches CMD directly too, so it sees SIGINT twice.)

Durations: 500ms, 30s, 5m, 1h; a plain number is seconds.",
        after_help = concat!(
            "\
Examples:
  lockbox-cli run backup --wait 0 -- /usr/local/bin/backup.sh
  lockbox-cli -s db1:7654 -s db2:7654 run nightly --wait 10m --hold 1m -- make nightly
  lockbox-cli run reports --shared --max 4 -- ./report.sh

",
            exit_codes_help!()
        )
    )]
    Run(RunArgs),

    /// Show one lock: mode, holders, waiters, and the token and owner of an exclusive hold
    Inspect {
        /// The lock name
        name: String,
    },

    /// List the locks that have holders or waiters, sorted by name
    List {
        /// Only names starting with this
        prefix: Option<String>,
    },

    /// List the connections of every server: address, name, holds, waits
    Clients,

    /// Show server counters once, or one line per interval with rates (--watch)
    #[command(long_about = "\
Without --watch: every STATS counter of every server.

With --watch DUR: one line per DUR (a header every 20 lines), summed over the servers: \
the levels (locks, holds, waiters, connections) and the rates over the last interval \
(grants, waits, timeouts, expired leases, errors and requests per second), like \
redis-cli --stat. Runs until interrupted, or for --count lines.")]
    Stats {
        /// Print a line every DUR
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        watch: Option<Duration>,
        /// With --watch: stop after N lines
        #[arg(long, value_name = "N", requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },

    /// Measure round-trip latency to every server (min, avg, p99, max)
    Ping {
        /// Round trips per server; 0: until interrupted
        #[arg(long, value_name = "N", default_value = DEFAULT_PING_COUNT)]
        count: u64,
        /// Pause between round trips
        #[arg(long, value_name = "DUR", default_value = DEFAULT_PING_INTERVAL, value_parser = parse_duration)]
        interval: Duration,
    },
}

/// `run`'s flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The lock name (1 to 255 bytes, no spaces or control characters)
    pub name: String,

    /// Wait at most DUR for the lock (0: try once); default: wait as long as it takes
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub wait: Option<Duration>,

    /// The lease: the server frees the lock DUR after the last renewal if lockbox-cli
    /// stops renewing it (at least 100ms)
    #[arg(long, value_name = "DUR", default_value = DEFAULT_HOLD, value_parser = parse_hold)]
    pub hold: Duration,

    /// Take a shared (read) lock instead of an exclusive one
    #[arg(long)]
    pub shared: bool,

    /// With --shared: at most N shared holders at once (a semaphore)
    #[arg(long, value_name = "N", requires = "shared", value_parser = clap::value_parser!(u32).range(1..))]
    pub max: Option<u32>,

    /// Exit status when the lock was not acquired within --wait
    #[arg(long, value_name = "N", default_value_t = exit::TEMPFAIL)]
    pub conflict_exit_code: u8,

    /// After the lease was lost: SIGKILL the command if it has not exited DUR after SIGTERM
    #[arg(long, value_name = "DUR", default_value = DEFAULT_KILL_AFTER, value_parser = parse_duration)]
    pub kill_after: Duration,

    /// Print nothing when the lock is busy (the exit status says it)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// The command and its arguments, after `--`
    #[arg(value_name = "CMD", required = true, last = true, num_args = 1..)]
    pub command: Vec<OsString>,
}

/// Parses `500ms`, `30s`, `5m`, `1h`, or a plain number of seconds; fractions (`1.5s`,
/// `0.25`) are rounded up to whole milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit_ms: u128 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s, m or h)")),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(format!("{s:?} is not a duration (like 500ms, 30s, 5m)"));
    }
    // At most 9 fraction digits count; more cannot change a millisecond count up to the
    // limit by more than the rounding.
    let frac = &frac[..frac.len().min(9)];
    let digits = format!("{int}{frac}");
    let scaled: u128 = digits
        .parse()
        .map_err(|_| format!("{s:?} is too long or not a number"))?;
    let denom = 10u128.pow(frac.len() as u32);
    let ms = (scaled * unit_ms).div_ceil(denom);
    if ms > u128::from(MAX_DURATION_MS) {
        return Err(format!(
            "{s:?} is longer than the longest duration ({MAX_DURATION_MS}ms)"
        ));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// [`parse_duration`], at least [`MIN_HOLD_MS`].
pub fn parse_hold(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(MIN_HOLD_MS) {
        return Err(format!("the lease must be at least {MIN_HOLD_MS}ms"));
    }
    Ok(d)
}

/// A duration as the protocol's millisecond count (every parsed duration fits).
pub fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Checks a server address: `HOST:PORT` with a numeric port and a non-empty host.
pub fn check_server(addr: &str) -> Result<(), String> {
    let ok = match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok()
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "server address {addr:?} is not HOST:PORT (like 127.0.0.1:7654 or [::1]:7654)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn d(s: &str) -> Result<u64, String> {
        parse_duration(s).map(|d| d.as_millis() as u64)
    }

    #[test]
    fn durations() {
        assert_eq!(d("500ms"), Ok(500));
        assert_eq!(d("0"), Ok(0));
        assert_eq!(d("0ms"), Ok(0));
        assert_eq!(d("30s"), Ok(30_000));
        assert_eq!(d("30"), Ok(30_000));
        assert_eq!(d("5m"), Ok(300_000));
        assert_eq!(d("2h"), Ok(7_200_000));
        assert_eq!(d("1.5s"), Ok(1500));
        assert_eq!(d("0.25"), Ok(250));
        assert_eq!(d(".5s"), Ok(500));
        assert_eq!(d("1.0001ms"), Ok(2), "fractions round up");
        assert_eq!(d("4294967295ms"), Ok(u64::from(u32::MAX)));
        for bad in [
            "",
            "ms",
            "-1s",
            "5x",
            "1..2s",
            "1.2.3",
            "4294967296ms",
            "50d",
            "99999999999999999999999999999999999999999h",
            "1 s",
        ] {
            assert!(d(bad).is_err(), "{bad:?} parsed as {:?}", d(bad));
        }
    }

    #[test]
    fn hold_has_a_floor() {
        assert!(parse_hold("99ms").is_err());
        assert_eq!(parse_hold("100ms"), Ok(Duration::from_millis(100)));
    }

    #[test]
    fn server_addresses() {
        for ok in ["127.0.0.1:7654", "[::1]:7654", "db1.example:1", "h:65535"] {
            assert_eq!(check_server(ok), Ok(()), "{ok}");
        }
        for bad in ["", "127.0.0.1", ":7654", "h:", "h:65536", "h:x", "a b:1"] {
            assert!(check_server(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
