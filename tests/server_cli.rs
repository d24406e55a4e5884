//! The `lockbox` binary's address forms, `--version` and flag errors, through the real
//! binary in a child process.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;

use common::*;

/// The commit `git` reports for this source tree, if it is a git checkout.
fn git_head() -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_git_commit() {
    for flag in ["-V", "--version"] {
        let out = run_binary(&[flag]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let line = out.stdout.trim_end();
        assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
        let commit = line
            .strip_prefix(concat!("lockbox ", env!("CARGO_PKG_VERSION"), " (commit "))
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{flag}: {line:?}"));
        match git_head() {
            // The binary was built from this checkout: the same commit, abbreviated.
            Some(head) if std::env::var_os("LOCKBOX_GIT_COMMIT").is_none() => assert!(
                commit.len() >= 7 && head.starts_with(commit),
                "{flag}: {commit:?} is not a prefix of HEAD {head}"
            ),
            _ => assert!(!commit.is_empty(), "{line:?}"),
        }
    }
}

#[test]
fn listen_accepts_a_host_name() {
    let p = ServerProcess::spawn(&["--listen", "localhost:0"]);
    assert!(p.addr.ip().is_loopback(), "{:?}", p.addr);
    assert_ne!(p.addr.port(), 0);
    let mut c = Client::connect(p.addr);
    assert_eq!(c.req("a PING"), "a PONG");
}

#[test]
fn listen_accepts_a_bare_port_on_127_0_0_1() {
    // A port the kernel just handed out and released: free unless another process
    // grabs it in between.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("probe bind");
        probe.local_addr().unwrap().port()
    };
    let p = ServerProcess::spawn(&["--listen", &port.to_string()]);
    assert_eq!(p.addr, SocketAddr::from(([127, 0, 0, 1], port)));
    let mut c = Client::connect(p.addr);
    assert_eq!(c.req("a PING"), "a PONG");
}

#[test]
fn foreign_listeners_take_the_same_address_forms() {
    let mut p = ServerProcess::spawn(&[
        "--listen",
        "0",
        "--lockd-listen",
        "localhost:0",
        "--officer-listen",
        "0",
    ]);
    assert_eq!(p.addr.ip().to_string(), "127.0.0.1");
    // Every listener is bound (a failure would have exited 2 before the startup line).
    p.kill();
}

#[test]
fn flag_errors_are_one_line_naming_the_flag() {
    for (args, want) in [
        (
            &["--listen", "70000"][..],
            "--listen: port '70000' is not a number from 0 to 65535",
        ),
        (
            &["--lockd-listen", "localhost"],
            "--lockd-listen: 'localhost' is not an address",
        ),
        (
            &["--backlog", "70000"],
            "--backlog: '70000' is not a number from 1 to 65535",
        ),
        (&["--bogus"], "--bogus: unknown flag"),
        (
            &["--output-high-water", "65536", "--output-limit", "8192"],
            "--output-limit: 8192 is below --output-high-water (65536)",
        ),
    ] {
        let out = run_binary(args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {out:?}");
        assert!(
            lines[0].starts_with(&format!("lockbox: {want}")),
            "{args:?}: {:?}",
            lines[0]
        );
        assert!(
            !lines[0].contains(".."),
            "Rust range syntax: {:?}",
            lines[0]
        );
    }
}

#[test]
fn help_shows_ranges_and_the_output_rule() {
    let out = run_binary(&["--help"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let flat = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "1 to 65535 (default 1024;",
        "64 to 1048576 (default 4096)",
        "--output-limit must be at least --output-high-water",
        "a port alone for 127.0.0.1:PORT",
    ] {
        assert!(
            flat.contains(needle),
            "--help lacks {needle:?}:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains(".."), "{}", out.stdout);
}

/// The systemd units in dist/ start lockbox with flags it accepts, and give it at least
/// one file descriptor per allowed connection plus some room.
#[test]
fn dist_units_use_valid_flags_and_enough_descriptors() {
    for (unit, instance) in [("lockbox.service", ""), ("lockbox@.service", "7001")] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("dist")
            .join(unit);
        let text = std::fs::read_to_string(&path).expect("read unit");
        let value = |key: &str| -> String {
            let hits: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .collect();
            assert_eq!(hits.len(), 1, "{unit}: one {key}= expected");
            hits[0].replace("%S", "/var/lib").replace("%i", instance)
        };
        let exec = value("ExecStart");
        let args: Vec<&str> = exec
            .split_whitespace()
            .skip(1)
            .filter(|a| !a.starts_with('$'))
            .collect();
        let cfg = match lockbox::config::parse_args(&args) {
            Ok(lockbox::config::Command::Run(cfg)) => cfg,
            other => panic!("{unit}: {args:?}: {other:?}"),
        };
        assert!(cfg.state_file.is_some(), "{unit}: no --state-file");
        if !instance.is_empty() {
            assert_eq!(cfg.listen.port().to_string(), instance, "{unit}");
            assert!(
                cfg.state_file
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .ends_with(instance),
                "{unit}: one state file per instance"
            );
        }
        let nofile: usize = value("LimitNOFILE").parse().expect("LimitNOFILE number");
        assert!(
            nofile >= cfg.max_connections + 32,
            "{unit}: LimitNOFILE={nofile} for --max-connections {}",
            cfg.max_connections
        );
    }
}
