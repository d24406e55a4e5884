//! `lockbox-cli`: lockbox from the shell.
//!
//! `run` holds a lock for the life of a command (flock(1) across machines); `inspect`,
//! `list`, `clients`, `stats` and `ping` look at running servers. `--help` on every
//! subcommand documents the flags and the exit statuses.
//!
//! # Layout
//! - `args`: the command line (clap) and durations.
//! - `conn`: servers, routing, the secret, connecting.
//! - `run`: the `run` command; `signals`: its signal forwarding.
//! - `admin`: the other commands; `out`: tables, JSON and stdout.
//! - `exit`: exit statuses and the one error type.
//!
//! # Invariants
//! - Whatever goes wrong ends as one line on stderr and a documented exit status:
//!   errors are values up to `main`, usage errors are reduced to one line, and a panic
//!   (a bug) is reported in one line too.
#![forbid(unsafe_code)]

mod admin;
mod args;
mod conn;
mod exit;
mod out;
mod run;
mod signals;

use clap::error::ErrorKind;
use clap::Parser;
use std::process::ExitCode;

use args::{Cli, Command};
use conn::Ctx;
use exit::Fail;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        out::warn(&Fail::new(exit::LEASE_LOST, format!("internal error{at}: {what}")).msg);
        std::process::exit(i32::from(exit::LEASE_LOST));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out::warn(&format!("cannot start: {e}"));
            return ExitCode::from(exit::LEASE_LOST);
        }
    };
    ExitCode::from(rt.block_on(dispatch(cli)))
}

async fn dispatch(cli: Cli) -> u8 {
    let r = match Ctx::new(&cli) {
        Err(f) => Err(f),
        Ok(ctx) => match cli.command {
            Command::Run(a) => run::run(&ctx, a).await,
            Command::Inspect { name } => admin::inspect(&ctx, &name).await,
            Command::List { prefix } => admin::list(&ctx, prefix.as_deref()).await,
            Command::Clients => admin::clients(&ctx).await,
            Command::Stats { watch, count } => admin::stats(&ctx, watch, count).await,
            Command::Ping { count, interval } => admin::ping(&ctx, count, interval).await,
        },
    };
    match r {
        Ok(code) => code,
        Err(f) => {
            if !f.msg.is_empty() {
                out::warn(&f.msg);
            }
            f.code
        }
    }
}

/// `--help` and `--version` print and succeed; anything else is a usage error: one line
/// and status 64.
fn usage(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(exit::USAGE)
        }
        _ => {
            out::warn(&format!(
                "{} (see --help)",
                usage_line(&e.render().to_string())
            ));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// clap's error text up to its usage block, as one line without the `error: ` prefix.
fn usage_line(text: &str) -> String {
    let body = text
        .split("\nUsage:")
        .next()
        .unwrap_or(text)
        .split("\nFor more information")
        .next()
        .unwrap_or(text);
    let line = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_become_one_line() {
        let text = "error: the following required arguments were not provided:\n  <NAME>\n  <CMD>...\n\nUsage: lockbox-cli run <NAME> -- <CMD>...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(text),
            "the following required arguments were not provided: <NAME> <CMD>..."
        );
        assert_eq!(usage_line("error: x\n"), "x");
    }
}
