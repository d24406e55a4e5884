//! Server configuration and the command-line parser that builds it.
//!
//! `main.rs` is only `parse_args` -> `Config` -> `server::run`; everything here is a
//! plain function of its inputs so tests can exercise every flag without a process.

use std::net::SocketAddr;

/// Default address of the native listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7654";
/// Default longest request line, in bytes, excluding the `\n`.
pub const DEFAULT_MAX_LINE: usize = 4096;
/// The smallest `--max-line` accepted: room for an id, a verb and a short name.
pub const MIN_MAX_LINE: usize = 64;
/// The largest `--max-line` accepted (1 MiB): a line is buffered whole before parsing.
pub const MAX_MAX_LINE: usize = 1 << 20;

/// Everything the server needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address of the native protocol listener.
    pub listen: SocketAddr,
    /// Longest accepted request line in bytes (without the line end).
    pub max_line: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("default address parses"),
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Config),
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
    Ok(Command::Run(cfg))
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
            Command::Run(c) => Ok(c),
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
    fn help_version_and_junk() {
        match parse_args(["-h"]).unwrap() {
            Command::Help(t) => assert!(t.contains("--max-line") && t.contains("4096")),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_args(["-V"]).unwrap(), Command::Version);
        assert!(parse_args(["--nope"]).is_err());
        assert!(parse_args(["stray"]).is_err());
    }
}
