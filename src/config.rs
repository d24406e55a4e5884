//! Server configuration and the command-line parser that builds it.
//!
//! `main.rs` is only `parse_args` -> `Config` -> `server::run`; everything here is a
//! plain function of its inputs so tests can exercise every flag without a process.

use std::net::SocketAddr;
use std::path::PathBuf;

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
/// Default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Default `--max-pending` (holds plus waits per connection).
pub const DEFAULT_MAX_PENDING: u32 = 100_000;
/// Default `--output-high-water`: stop reading a client whose unsent replies pass this.
pub const DEFAULT_OUTPUT_HIGH_WATER: usize = 1 << 20;
/// Default `--output-limit`: disconnect a client whose unsent replies pass this.
pub const DEFAULT_OUTPUT_LIMIT: usize = 16 << 20;
/// Default `--max-claims` (holds plus waits of all connections): at about 200 bytes per
/// claim (a lock each, tags inline), 4M claims are about 0.8 GB.
pub const DEFAULT_MAX_CLAIMS: usize = 4_000_000;
/// Default `--auth-timeout`, ms: an unauthenticated connection is closed after this.
pub const DEFAULT_AUTH_TIMEOUT_MS: u64 = 10_000;

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

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt(
        "l",
        "listen",
        &format!(
            "native protocol address (default {DEFAULT_LISTEN}; 0.0.0.0:PORT and [::]:PORT work)"
        ),
        "ADDR",
    );
    o.optopt(
        "",
        "max-line",
        &format!(
            "longest request line in bytes (default {DEFAULT_MAX_LINE}, {MIN_MAX_LINE} to {MAX_MAX_LINE})"
        ),
        "BYTES",
    );
    o.optopt(
        "",
        "backlog",
        &format!("listen backlog of every listener (default {DEFAULT_BACKLOG}; the kernel caps it at somaxconn)"),
        "N",
    );
    o.optopt(
        "",
        "max-connections",
        &format!("refuse connections beyond this many (default {DEFAULT_MAX_CONNECTIONS})"),
        "N",
    );
    o.optopt(
        "",
        "max-pending",
        &format!("holds plus waits allowed per connection (default {DEFAULT_MAX_PENDING})"),
        "N",
    );
    o.optopt(
        "",
        "output-high-water",
        &format!("stop reading a client with this many unsent reply bytes (default {DEFAULT_OUTPUT_HIGH_WATER})"),
        "BYTES",
    );
    o.optopt(
        "",
        "output-limit",
        &format!("disconnect a client with this many unsent reply bytes (default {DEFAULT_OUTPUT_LIMIT})"),
        "BYTES",
    );
    o.optopt(
        "",
        "max-claims",
        &format!("holds plus waits of all connections together (default {DEFAULT_MAX_CLAIMS})"),
        "N",
    );
    o.optopt(
        "",
        "auth-timeout",
        &format!("with --auth-file: close a connection not authenticated after this many ms (default {DEFAULT_AUTH_TIMEOUT_MS})"),
        "MS",
    );
    o.optopt(
        "",
        "auth-file",
        "require AUTH with the secret in this file (default: no auth)",
        "PATH",
    );
    o.optopt(
        "",
        "state-file",
        "keep fencing tokens increasing across restarts and clock steps (default: none, seeded from the clock)",
        "PATH",
    );
    o.optopt(
        "",
        "lockd-listen",
        "also speak the lockd/glockd protocol here (default: off)",
        "ADDR",
    );
    o.optflag("", "lockd-no-dump", "lockd: answer dump with '0 disabled'");
    o.optflag(
        "",
        "lockd-no-registry",
        "lockd: answer me/iam/who with '0 disabled'",
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
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o
}

/// Parses the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let opts = options();
    let m = opts.parse(args).map_err(|e| UsageError(e.to_string()))?;
    if m.opt_present("h") {
        let brief =
            "Usage: lockbox [options]\n\nA network lock server. Logging: RUST_LOG (default info).";
        return Ok(Command::Help(opts.usage(brief)));
    }
    if m.opt_present("V") {
        return Ok(Command::Version);
    }
    if let Some(extra) = m.free.first() {
        return Err(UsageError(format!("unexpected argument '{extra}'")));
    }
    let mut cfg = Config::default();
    if let Some(a) = m.opt_str("listen") {
        cfg.listen = parse_addr("--listen", &a)?;
    }
    if let Some(v) = m.opt_str("max-line") {
        cfg.max_line = parse_in_range("--max-line", &v, MIN_MAX_LINE, MAX_MAX_LINE)?;
    }
    if let Some(v) = m.opt_str("backlog") {
        cfg.backlog = parse_in_range("--backlog", &v, 1, 65535)? as u32;
    }
    if let Some(v) = m.opt_str("max-connections") {
        cfg.max_connections = parse_in_range("--max-connections", &v, 1, 1 << 24)?;
    }
    if let Some(v) = m.opt_str("max-pending") {
        cfg.max_pending = parse_in_range("--max-pending", &v, 1, u32::MAX as usize)? as u32;
    }
    if let Some(v) = m.opt_str("output-high-water") {
        cfg.output_high_water = parse_in_range("--output-high-water", &v, 4096, 1 << 30)?;
    }
    if let Some(v) = m.opt_str("output-limit") {
        cfg.output_limit = parse_in_range("--output-limit", &v, 4096, 1 << 32)?;
    }
    if let Some(v) = m.opt_str("max-claims") {
        cfg.max_claims = parse_in_range("--max-claims", &v, 1, u32::MAX as usize)?;
    }
    if let Some(v) = m.opt_str("auth-timeout") {
        cfg.auth_timeout_ms = parse_in_range("--auth-timeout", &v, 1, 86_400_000)? as u64;
    }
    if cfg.output_limit < cfg.output_high_water {
        return Err(UsageError(
            "--output-limit must not be below --output-high-water".into(),
        ));
    }
    cfg.auth_file = m.opt_str("auth-file").map(PathBuf::from);
    cfg.state_file = m.opt_str("state-file").map(PathBuf::from);
    let addr = |flag: &str| -> Result<Option<SocketAddr>, UsageError> {
        m.opt_str(flag)
            .map(|a| parse_addr(&format!("--{flag}"), &a))
            .transpose()
    };
    cfg.lockd_listen = addr("lockd-listen")?;
    cfg.locker_listen = addr("locker-listen")?;
    cfg.officer_listen = addr("officer-listen")?;
    cfg.livemutex_listen = addr("livemutex-listen")?;
    cfg.lockd_dump = !m.opt_present("lockd-no-dump");
    cfg.lockd_registry = !m.opt_present("lockd-no-registry");
    Ok(Command::Run(Box::new(cfg)))
}

fn parse_addr(flag: &str, s: &str) -> Result<SocketAddr, UsageError> {
    s.parse().map_err(|_| {
        UsageError(format!(
            "{flag}: '{s}' is not an address like 127.0.0.1:7654 or [::1]:7654"
        ))
    })
}

fn parse_in_range(flag: &str, s: &str, lo: usize, hi: usize) -> Result<usize, UsageError> {
    match s.parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "{flag}: '{s}' is not a number from {lo} to {hi}"
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
}
