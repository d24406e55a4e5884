//! Server configuration and the command-line parser that builds it.
//!
//! `main.rs` is only `parse_args` -> `Config` -> `server::run`; everything here is a
//! plain function of its inputs so tests can exercise every flag without a process. The
//! one exception: an address given as `HOST:PORT` is resolved here, once, at startup.
//!
//! # Invariants
//! - Every numeric flag has a named range (`MIN_*`/`MAX_*`), used both by the parser
//!   and by `--help`; ranges are printed as `1 to 65535`.
//! - Every flag error is one lowercase line that starts with the flag it is about, with
//!   its dashes (`--max-line: 'abc' is not a number from 64 to 1048576`), or with the
//!   stray argument.
//! - `output_high_water <= output_limit`.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// `lockbox --version`: the package version and the git commit it was built from
/// (`unknown` outside a git checkout; see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LOCKBOX_GIT_COMMIT"),
    ")"
);

/// The git commit the binary was built from (`unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("LOCKBOX_GIT_COMMIT");

/// Default address of the native listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7654";
/// Default longest request line, in bytes, excluding the `\n`.
pub const DEFAULT_MAX_LINE: usize = 4096;
/// The smallest `--max-line` accepted: room for an id, a verb and a short name.
pub const MIN_MAX_LINE: usize = 64;
/// The largest `--max-line` accepted (1 MiB): a line is buffered whole before parsing.
pub const MAX_MAX_LINE: usize = 1 << 20;

/// Default `--backlog` (the kernel caps it at `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: u32 = 1024;
/// The smallest `--backlog` accepted.
pub const MIN_BACKLOG: usize = 1;
/// The largest `--backlog` accepted (Linux keeps the backlog in 16 bits).
pub const MAX_BACKLOG: usize = 65535;
/// Default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// The smallest `--max-connections` accepted.
pub const MIN_MAX_CONNECTIONS: usize = 1;
/// The largest `--max-connections` accepted (each needs a file descriptor).
pub const MAX_MAX_CONNECTIONS: usize = 1 << 24;
/// Default `--max-pending` (holds plus waits per connection).
pub const DEFAULT_MAX_PENDING: u32 = 100_000;
/// The smallest `--max-pending` accepted.
pub const MIN_MAX_PENDING: usize = 1;
/// The largest `--max-pending` accepted.
pub const MAX_MAX_PENDING: usize = u32::MAX as usize;
/// Default `--output-high-water`: stop reading a client whose unsent replies pass this.
pub const DEFAULT_OUTPUT_HIGH_WATER: usize = 1 << 20;
/// Default `--output-limit`: disconnect a client whose unsent replies pass this.
pub const DEFAULT_OUTPUT_LIMIT: usize = 16 << 20;
/// The smallest `--output-high-water` and `--output-limit` accepted.
pub const MIN_OUTPUT_BYTES: usize = 4096;
/// The largest `--output-high-water` accepted (1 GiB).
pub const MAX_OUTPUT_HIGH_WATER: usize = 1 << 30;
/// The largest `--output-limit` accepted (4 GiB).
pub const MAX_OUTPUT_LIMIT: usize = 1 << 32;
/// Default `--max-claims` (holds plus waits of all connections): at about 200 bytes per
/// claim (a lock each, tags inline), 4M claims are about 0.8 GB.
pub const DEFAULT_MAX_CLAIMS: usize = 4_000_000;
/// The smallest `--max-claims` accepted.
pub const MIN_MAX_CLAIMS: usize = 1;
/// The largest `--max-claims` accepted: the engine's bound, 2^31 - 1 (a lock's lists
/// of claims keep a flag in the top bit of their 32-bit length).
pub const MAX_MAX_CLAIMS: usize = crate::engine::MAX_CLAIMS;
/// Default `--auth-timeout`, ms: an unauthenticated connection is closed after this.
pub const DEFAULT_AUTH_TIMEOUT_MS: u64 = 10_000;
/// The smallest `--auth-timeout` accepted, ms.
pub const MIN_AUTH_TIMEOUT_MS: usize = 1;
/// The largest `--auth-timeout` accepted, ms (a day).
pub const MAX_AUTH_TIMEOUT_MS: usize = 86_400_000;

/// Everything the server needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address of the native protocol listener.
    pub listen: SocketAddr,
    /// Longest accepted request line in bytes (without the line end).
    pub max_line: usize,
    /// Listen backlog of every listener.
    pub backlog: u32,
    /// Connections beyond this are refused with `* ERR limit`.
    pub max_connections: usize,
    /// Holds plus waits one connection may have.
    pub max_pending: u32,
    /// Unsent reply bytes past which a connection is not read.
    pub output_high_water: usize,
    /// Unsent reply bytes past which a connection is closed.
    pub output_limit: usize,
    /// Holds plus waits of all connections together.
    pub max_claims: usize,
    /// With `auth_file`: ms a connection may stay unauthenticated.
    pub auth_timeout_ms: u64,
    /// File holding the AUTH secret.
    pub auth_file: Option<PathBuf>,
    /// File recording the fencing-token reservation.
    pub state_file: Option<PathBuf>,
    /// lockd/glockd protocol listener.
    pub lockd_listen: Option<SocketAddr>,
    /// lockd: serve `dump` (else `0 disabled`).
    pub lockd_dump: bool,
    /// lockd: serve the client registry `me`/`iam`/`who` (else `0 disabled`).
    pub lockd_registry: bool,
    /// locker (binary) protocol listener.
    pub locker_listen: Option<SocketAddr>,
    /// officer (JSON lines) protocol listener.
    pub officer_listen: Option<SocketAddr>,
    /// live-mutex (JSON lines) protocol listener.
    pub livemutex_listen: Option<SocketAddr>,
    /// Redis lock dialect (RESP) listener.
    pub redis_listen: Option<SocketAddr>,
    /// Prometheus metrics (HTTP `GET /metrics`) listener.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("default address parses"),
            max_line: DEFAULT_MAX_LINE,
            backlog: DEFAULT_BACKLOG,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending: DEFAULT_MAX_PENDING,
            output_high_water: DEFAULT_OUTPUT_HIGH_WATER,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            max_claims: DEFAULT_MAX_CLAIMS,
            auth_timeout_ms: DEFAULT_AUTH_TIMEOUT_MS,
            auth_file: None,
            state_file: None,
            lockd_listen: None,
            lockd_dump: true,
            lockd_registry: true,
            locker_listen: None,
            officer_listen: None,
            livemutex_listen: None,
            redis_listen: None,
            metrics_listen: None,
        }
    }
}

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print this usage text and exit 0.
    Help(String),
    /// Print the version and exit 0.
    Version,
}

/// A command-line error: print it on one line and exit 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first lines of `--help`.
const HELP_BRIEF: &str = "\
Usage: lockbox [options]

A network lock server. Logging goes to stderr: RUST_LOG (default info).
ADDR is HOST:PORT, IP:PORT, [IPv6]:PORT, or a port alone for 127.0.0.1:PORT;
0.0.0.0:PORT or [::]:PORT listens on every interface. A host name is resolved
once at startup and the first address it resolves to is used.
--output-limit must be at least --output-high-water.";

/// The forms `parse_addr` accepts, for its error message.
const ADDR_FORMS: &str = "use HOST:PORT, IP:PORT, [IPv6]:PORT or a port alone";

fn range(lo: usize, hi: usize) -> String {
    format!("{lo} to {hi}")
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt(
        "l",
        "listen",
        &format!("native protocol address (default {DEFAULT_LISTEN})"),
        "ADDR",
    );
    o.optopt(
        "",
        "max-line",
        &format!(
            "longest request line in bytes, {} (default {DEFAULT_MAX_LINE})",
            range(MIN_MAX_LINE, MAX_MAX_LINE)
        ),
        "BYTES",
    );
    o.optopt(
        "",
        "backlog",
        &format!(
            "listen backlog of every listener, {} (default {DEFAULT_BACKLOG}; the kernel caps it at net.core.somaxconn)",
            range(MIN_BACKLOG, MAX_BACKLOG)
        ),
        "N",
    );
    o.optopt(
        "",
        "max-connections",
        &format!(
            "refuse connections beyond this many, {} (default {DEFAULT_MAX_CONNECTIONS}); each needs a file descriptor",
            range(MIN_MAX_CONNECTIONS, MAX_MAX_CONNECTIONS)
        ),
        "N",
    );
    o.optopt(
        "",
        "max-pending",
        &format!(
            "holds plus waits allowed per connection, {} (default {DEFAULT_MAX_PENDING})",
            range(MIN_MAX_PENDING, MAX_MAX_PENDING)
        ),
        "N",
    );
    o.optopt(
        "",
        "output-high-water",
        &format!(
            "stop reading a client with this many unsent reply bytes, {} (default {DEFAULT_OUTPUT_HIGH_WATER})",
            range(MIN_OUTPUT_BYTES, MAX_OUTPUT_HIGH_WATER)
        ),
        "BYTES",
    );
    o.optopt(
        "",
        "output-limit",
        &format!(
            "disconnect a client with this many unsent reply bytes, {} and at least --output-high-water (default {DEFAULT_OUTPUT_LIMIT})",
            range(MIN_OUTPUT_BYTES, MAX_OUTPUT_LIMIT)
        ),
        "BYTES",
    );
    o.optopt(
        "",
        "max-claims",
        &format!(
            "holds plus waits of all connections together, {} (default {DEFAULT_MAX_CLAIMS})",
            range(MIN_MAX_CLAIMS, MAX_MAX_CLAIMS)
        ),
        "N",
    );
    o.optopt(
        "",
        "auth-timeout",
        &format!(
            "with --auth-file: close a connection not authenticated after this many ms, {} (default {DEFAULT_AUTH_TIMEOUT_MS})",
            range(MIN_AUTH_TIMEOUT_MS, MAX_AUTH_TIMEOUT_MS)
        ),
        "MS",
    );
    o.optopt(
        "",
        "auth-file",
        "require AUTH with the secret on the first line of this file (default: none, no AUTH)",
        "PATH",
    );
    o.optopt(
        "",
        "state-file",
        "keep fencing tokens increasing across restarts and clock steps (default: none, tokens start at the clock)",
        "PATH",
    );
    o.optopt(
        "",
        "lockd-listen",
        "also speak the lockd/glockd protocol here (default: off)",
        "ADDR",
    );
    o.optflag(
        "",
        "lockd-no-dump",
        "lockd: answer dump with '0 disabled' (default: dump is served)",
    );
    o.optflag(
        "",
        "lockd-no-registry",
        "lockd: answer me/iam/who with '0 disabled' (default: they are served)",
    );
    o.optopt(
        "",
        "locker-listen",
        "also speak the locker binary protocol here (default: off)",
        "ADDR",
    );
    o.optopt(
        "",
        "officer-listen",
        "also speak the officer JSON protocol here (default: off)",
        "ADDR",
    );
    o.optopt(
        "",
        "livemutex-listen",
        "also speak the live-mutex JSON protocol here (default: off)",
        "ADDR",
    );
    o.optopt(
        "",
        "redis-listen",
        "also speak Redis's lock dialect (RESP) here (default: off)",
        "ADDR",
    );
    o.optopt(
        "",
        "metrics-listen",
        "serve Prometheus metrics at GET /metrics over HTTP here (default: off)",
        "ADDR",
    );
    o.optflag("h", "help", "print this help and exit");
    o.optflag(
        "V",
        "version",
        "print the version and the git commit it was built from, and exit",
    );
    o
}

/// A flag name as typed: `-l` or `--listen`.
fn dashed(name: &str) -> String {
    if name.chars().count() == 1 {
        format!("-{name}")
    } else {
        format!("--{name}")
    }
}

/// getopts' errors in this module's style: the flag first, lowercase.
fn flag_error(f: getopts::Fail) -> UsageError {
    use getopts::Fail;
    UsageError(match f {
        Fail::ArgumentMissing(n) => format!("{}: needs a value", dashed(&n)),
        // Also an argument that is not UTF-8 (then `n` is its debug form).
        Fail::UnrecognizedOption(n) if n.starts_with('"') => {
            format!("{n}: not valid UTF-8")
        }
        Fail::UnrecognizedOption(n) => format!("{}: unknown flag", dashed(&n)),
        Fail::OptionMissing(n) => format!("{}: required", dashed(&n)),
        Fail::OptionDuplicated(n) => format!("{}: given more than once", dashed(&n)),
        Fail::UnexpectedArgument(n) => format!("{}: takes no value", dashed(&n)),
    })
}

/// Parses the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let opts = options();
    let m = opts.parse(args).map_err(flag_error)?;
    if m.opt_present("h") {
        return Ok(Command::Help(opts.usage(HELP_BRIEF)));
    }
    if m.opt_present("V") {
        return Ok(Command::Version);
    }
    if let Some(extra) = m.free.first() {
        return Err(UsageError(format!(
            "'{extra}': unexpected argument (lockbox takes only flags)"
        )));
    }
    let mut cfg = Config::default();
    if let Some(a) = m.opt_str("listen") {
        cfg.listen = parse_addr("--listen", &a)?;
    }
    let num = |name: &str, lo: usize, hi: usize| -> Result<Option<usize>, UsageError> {
        m.opt_str(name)
            .map(|v| parse_in_range(&dashed(name), &v, lo, hi))
            .transpose()
    };
    if let Some(n) = num("max-line", MIN_MAX_LINE, MAX_MAX_LINE)? {
        cfg.max_line = n;
    }
    if let Some(n) = num("backlog", MIN_BACKLOG, MAX_BACKLOG)? {
        cfg.backlog = n as u32;
    }
    if let Some(n) = num("max-connections", MIN_MAX_CONNECTIONS, MAX_MAX_CONNECTIONS)? {
        cfg.max_connections = n;
    }
    if let Some(n) = num("max-pending", MIN_MAX_PENDING, MAX_MAX_PENDING)? {
        cfg.max_pending = n as u32;
    }
    if let Some(n) = num("output-high-water", MIN_OUTPUT_BYTES, MAX_OUTPUT_HIGH_WATER)? {
        cfg.output_high_water = n;
    }
    if let Some(n) = num("output-limit", MIN_OUTPUT_BYTES, MAX_OUTPUT_LIMIT)? {
        cfg.output_limit = n;
    }
    if let Some(n) = num("max-claims", MIN_MAX_CLAIMS, MAX_MAX_CLAIMS)? {
        cfg.max_claims = n;
    }
    if let Some(n) = num("auth-timeout", MIN_AUTH_TIMEOUT_MS, MAX_AUTH_TIMEOUT_MS)? {
        cfg.auth_timeout_ms = n as u64;
    }
    if cfg.output_limit < cfg.output_high_water {
        return Err(UsageError(format!(
            "--output-limit: {} is below --output-high-water ({}); it must be at least as large",
            cfg.output_limit, cfg.output_high_water
        )));
    }
    cfg.auth_file = m.opt_str("auth-file").map(PathBuf::from);
    cfg.state_file = m.opt_str("state-file").map(PathBuf::from);
    let addr = |flag: &str| -> Result<Option<SocketAddr>, UsageError> {
        m.opt_str(flag)
            .map(|a| parse_addr(&dashed(flag), &a))
            .transpose()
    };
    cfg.lockd_listen = addr("lockd-listen")?;
    cfg.locker_listen = addr("locker-listen")?;
    cfg.officer_listen = addr("officer-listen")?;
    cfg.livemutex_listen = addr("livemutex-listen")?;
    cfg.redis_listen = addr("redis-listen")?;
    cfg.metrics_listen = addr("metrics-listen")?;
    cfg.lockd_dump = !m.opt_present("lockd-no-dump");
    cfg.lockd_registry = !m.opt_present("lockd-no-registry");
    Ok(Command::Run(Box::new(cfg)))
}

/// Parses a listen address: `IP:PORT`, `[IPv6]:PORT`, a port alone (`7700` is
/// `127.0.0.1:7700`) or `HOST:PORT`, resolved now to the first address it names.
pub fn parse_addr(flag: &str, s: &str) -> Result<SocketAddr, UsageError> {
    let bad_port = |p: &str| {
        UsageError(format!(
            "{flag}: port '{p}' is not a number from 0 to 65535"
        ))
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port = s.parse::<u16>().map_err(|_| bad_port(s))?;
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let not_addr = || UsageError(format!("{flag}: '{s}' is not an address: {ADDR_FORMS}"));
    let (host, port) = s.rsplit_once(':').ok_or_else(not_addr)?;
    // An IPv6 literal needs brackets; anything else with a ':' or a space is not a name.
    if host.is_empty() || host.contains([':', '[', ']', ' ']) {
        return Err(not_addr());
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_port(port));
    }
    let port = port.parse::<u16>().map_err(|_| bad_port(port))?;
    let resolved = (host, port)
        .to_socket_addrs()
        .map_err(|e| UsageError(format!("{flag}: cannot resolve '{host}': {e}")))?
        .next();
    resolved.ok_or_else(|| UsageError(format!("{flag}: '{host}' resolves to no address")))
}

fn parse_in_range(flag: &str, s: &str, lo: usize, hi: usize) -> Result<usize, UsageError> {
    match s.parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "{flag}: '{s}' is not a number from {}",
            range(lo, hi)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, UsageError> {
        match parse_args(args)? {
            Command::Run(c) => Ok(*c),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7654");
        assert_eq!(c.max_line, 4096);
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            run(&["-l", "0.0.0.0:9"]).unwrap().listen.to_string(),
            "0.0.0.0:9"
        );
        assert_eq!(
            run(&["--listen", "[::]:80"]).unwrap().listen.to_string(),
            "[::]:80"
        );
        assert!(run(&["--listen", "localhost"])
            .unwrap_err()
            .0
            .contains("--listen"));
    }

    #[test]
    fn max_line_bounds() {
        assert_eq!(run(&["--max-line", "100"]).unwrap().max_line, 100);
        assert!(run(&["--max-line", "1"]).is_err());
        assert!(run(&["--max-line", "x"]).is_err());
    }

    #[test]
    fn limits_and_listeners() {
        let c = run(&[
            "--max-connections",
            "10",
            "--max-pending",
            "5",
            "--output-high-water",
            "8192",
            "--output-limit",
            "65536",
            "--auth-file",
            "/tmp/s",
            "--state-file",
            "/tmp/t",
            "--lockd-listen",
            "127.0.0.1:9999",
            "--lockd-no-dump",
            "--locker-listen",
            "127.0.0.1:4545",
        ])
        .unwrap();
        assert_eq!(
            (
                c.max_connections,
                c.max_pending,
                c.output_high_water,
                c.output_limit
            ),
            (10, 5, 8192, 65536)
        );
        assert_eq!(c.auth_file.as_deref(), Some(std::path::Path::new("/tmp/s")));
        assert_eq!(
            c.state_file.as_deref(),
            Some(std::path::Path::new("/tmp/t"))
        );
        assert_eq!(c.lockd_listen.unwrap().port(), 9999);
        assert_eq!(c.locker_listen.unwrap().port(), 4545);
        assert!(!c.lockd_dump && c.lockd_registry);
        assert_eq!((c.officer_listen, c.livemutex_listen), (None, None));
        assert_eq!(c.redis_listen, None);
        assert!(run(&["--max-connections", "0"]).is_err());
        assert!(run(&["--output-high-water", "70000", "--output-limit", "65536"]).is_err());
        assert!(run(&["--lockd-listen", "nope"])
            .unwrap_err()
            .0
            .contains("--lockd-listen"));
    }

    #[test]
    fn claims_and_auth_timeout() {
        let c = run(&[]).unwrap();
        assert_eq!((c.max_claims, c.auth_timeout_ms), (4_000_000, 10_000));
        let c = run(&["--max-claims", "7", "--auth-timeout", "250"]).unwrap();
        assert_eq!((c.max_claims, c.auth_timeout_ms), (7, 250));
        assert!(run(&["--max-claims", "0"]).is_err());
        let c = run(&["--max-claims", "2147483647"]).unwrap();
        assert_eq!(c.max_claims, crate::engine::MAX_CLAIMS);
        assert!(run(&["--auth-timeout", "0"]).is_err());
    }

    #[test]
    fn help_version_and_junk() {
        match parse_args(["-h"]).unwrap() {
            Command::Help(t) => {
                for flag in [
                    "--listen",
                    "--max-line",
                    "--backlog",
                    "--max-connections",
                    "--max-pending",
                    "--output-high-water",
                    "--output-limit",
                    "--max-claims",
                    "--auth-timeout",
                    "--auth-file",
                    "--state-file",
                    "--lockd-listen",
                    "--lockd-no-dump",
                    "--lockd-no-registry",
                    "--locker-listen",
                    "--officer-listen",
                    "--livemutex-listen",
                    "--redis-listen",
                ] {
                    assert!(t.contains(flag), "help lacks {flag}");
                }
                assert!(t.contains("4096") && t.contains("16384"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_args(["-V"]).unwrap(), Command::Version);
        assert!(parse_args(["--nope"]).is_err());
        assert!(parse_args(["stray"]).is_err());
    }

    #[test]
    fn bare_port_and_host_names() {
        assert_eq!(
            run(&["--listen", "7700"]).unwrap().listen,
            SocketAddr::from(([127, 0, 0, 1], 7700))
        );
        assert_eq!(run(&["-l", "0"]).unwrap().listen.port(), 0);
        // `localhost` comes from the hosts file: no name server is asked.
        let c = run(&[
            "--listen",
            "localhost:7654",
            "--lockd-listen",
            "localhost:0",
        ])
        .unwrap();
        assert!(
            c.listen.ip().is_loopback() && c.listen.port() == 7654,
            "{c:?}"
        );
        assert!(c.lockd_listen.unwrap().ip().is_loopback());
        assert_eq!(
            run(&["--officer-listen", "9001"]).unwrap().officer_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9001)))
        );
        assert_eq!(
            run(&["--redis-listen", "6380"]).unwrap().redis_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 6380)))
        );
        assert!(run(&["--redis-listen", "nope"])
            .unwrap_err()
            .0
            .contains("--redis-listen"));
        for (bad, says) in [
            ("70000", "port '70000' is not a number from 0 to 65535"),
            ("localhost:", "port '' is not a number from 0 to 65535"),
            (
                "localhost:http",
                "port 'http' is not a number from 0 to 65535",
            ),
            (
                "localhost:99999",
                "port '99999' is not a number from 0 to 65535",
            ),
            ("localhost", "'localhost' is not an address: use HOST:PORT"),
            (":80", "':80' is not an address"),
            ("::1:80", "'::1:80' is not an address"),
            ("", "'' is not an address"),
        ] {
            let e = run(&["--locker-listen", bad]).unwrap_err().0;
            assert_eq!(e, format!("--locker-listen: {}", &e[17..]), "{bad:?}");
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn errors_name_the_flag_in_one_lowercase_style() {
        for (args, want) in [
            (&["--nope"][..], "--nope: unknown flag"),
            (&["-x"], "-x: unknown flag"),
            (&["--listen"], "--listen: needs a value"),
            (&["--help=1"], "--help: takes no value"),
            (&["--backlog", "1", "--backlog", "2"], "--backlog: given more than once"),
            (&["--max-line", "abc"], "--max-line: 'abc' is not a number from 64 to 1048576"),
            (&["--backlog", "0"], "--backlog: '0' is not a number from 1 to 65535"),
            (&["--max-connections", "-1"], "--max-connections: '-1' is not a number from 1 to 16777216"),
            (&["--max-pending", "4294967296"], "--max-pending: '4294967296' is not a number from 1 to 4294967295"),
            (&["--max-claims", "2147483648"], "--max-claims: '2147483648' is not a number from 1 to 2147483647"),
            (&["--output-high-water", "1"], "--output-high-water: '1' is not a number from 4096 to 1073741824"),
            (&["--output-limit", "1"], "--output-limit: '1' is not a number from 4096 to 4294967296"),
            (
                &["--output-high-water", "8192", "--output-limit", "4096"],
                "--output-limit: 4096 is below --output-high-water (8192); it must be at least as large",
            ),
            (&["stray"], "'stray': unexpected argument (lockbox takes only flags)"),
        ] {
            let e = parse_args(args).unwrap_err().0;
            assert_eq!(e, want, "{args:?}");
            assert!(!e.contains(".."), "no Rust range syntax: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn help_shows_every_range_default_and_the_output_rule() {
        let Command::Help(t) = parse_args(["--help"]).unwrap() else {
            panic!("expected help");
        };
        // getopts wraps descriptions: compare with whitespace collapsed.
        let flat = t.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            format!("(default {DEFAULT_LISTEN})"),
            format!("{MIN_MAX_LINE} to {MAX_MAX_LINE} (default {DEFAULT_MAX_LINE})"),
            format!("{MIN_BACKLOG} to {MAX_BACKLOG} (default {DEFAULT_BACKLOG};"),
            format!(
                "{MIN_MAX_CONNECTIONS} to {MAX_MAX_CONNECTIONS} (default {DEFAULT_MAX_CONNECTIONS})"
            ),
            format!("{MIN_MAX_PENDING} to {MAX_MAX_PENDING} (default {DEFAULT_MAX_PENDING})"),
            format!(
                "{MIN_OUTPUT_BYTES} to {MAX_OUTPUT_HIGH_WATER} (default {DEFAULT_OUTPUT_HIGH_WATER})"
            ),
            format!(
                "{MIN_OUTPUT_BYTES} to {MAX_OUTPUT_LIMIT} and at least --output-high-water (default {DEFAULT_OUTPUT_LIMIT})"
            ),
            "--output-limit must be at least --output-high-water.".to_string(),
            "a port alone for 127.0.0.1:PORT".to_string(),
        ] {
            assert!(flat.contains(&needle), "help lacks {needle:?}:\n{t}");
        }
        // Every flag's entry says its default. An entry starts on a line indented less
        // than the description column.
        let mut items: Vec<String> = Vec::new();
        for line in options()
            .usage("")
            .lines()
            .skip_while(|l| !l.starts_with("Options"))
        {
            let indent = line.len() - line.trim_start().len();
            if line.trim_start().starts_with('-') && indent < 24 {
                items.push(String::new());
            }
            if let Some(item) = items.last_mut() {
                item.push(' ');
                item.push_str(line.trim());
            }
        }
        let flags = items.len();
        for item in &items {
            let exempt = item.starts_with(" -h,") || item.starts_with(" -V,");
            assert!(exempt || item.contains("(default"), "no default: {item}");
        }
        assert_eq!(flags, 21);
        assert!(!t.contains(".."), "no Rust range syntax");
    }

    #[test]
    fn metrics_listener_is_off_unless_asked_for() {
        assert_eq!(run(&[]).unwrap().metrics_listen, None);
        let c = run(&["--metrics-listen", "9464"]).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        let e = run(&["--metrics-listen", "nope:x"]).unwrap_err().0;
        assert!(e.starts_with("--metrics-listen: "), "{e}");
    }

    #[test]
    fn version_names_a_commit() {
        let commit = VERSION
            .strip_prefix(concat!(env!("CARGO_PKG_VERSION"), " (commit "))
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{VERSION}"));
        assert!(
            commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{VERSION}"
        );
    }
}
