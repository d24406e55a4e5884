//! The `lockbox` binary: flags, exit codes, startup log, serving on `127.0.0.1:0`.
//! Every child process is killed on drop (also when a test panics).

use crate::common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;
use lockbox::config;

/// Asserts the run failed like a Unix daemon should on bad usage: exit code 2, exactly
/// one non-empty line on stderr, no panic.
fn assert_usage_error(args: &[&str]) -> String {
    let out = run_binary(args);
    assert_eq!(out.code, Some(2), "lockbox {args:?}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "lockbox {args:?}: stderr must be one line: {out:?}"
    );
    assert!(!lines[0].trim().is_empty(), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out.stderr
}

#[test]
fn help_lists_every_flag_with_defaults() {
    for flag in ["-h", "--help"] {
        let out = run_binary(&[flag]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let text = &out.stdout;
        let defaults = [
            config::DEFAULT_LISTEN.to_string(),
            config::DEFAULT_MAX_LINE.to_string(),
            config::DEFAULT_MAX_CONNECTIONS.to_string(),
            config::DEFAULT_MAX_PENDING.to_string(),
            config::DEFAULT_OUTPUT_HIGH_WATER.to_string(),
            config::DEFAULT_OUTPUT_LIMIT.to_string(),
        ];
        let flags = [
            "-l, --listen",
            "--max-line",
            "--max-connections",
            "--max-pending",
            "--output-high-water",
            "--output-limit",
            "--auth-file",
            "--state-file",
            "-h, --help",
            "-V, --version",
        ];
        for needle in defaults.iter().map(String::as_str).chain(flags) {
            assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
        }
        assert!(out.stderr.is_empty(), "{out:?}");
    }
}

#[test]
fn version_prints_the_package_version() {
    for flag in ["-V", "--version"] {
        let out = run_binary(&[flag]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            out.stdout.contains(env!("CARGO_PKG_VERSION")),
            "{flag}: {out:?}"
        );
        assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    }
}

#[test]
fn bad_flags_exit_2_with_one_stderr_line() {
    assert_usage_error(&["--nope"]);
    assert_usage_error(&["-x"]);
    assert_usage_error(&["stray-argument"]);
    assert_usage_error(&["--listen"]);
    let e = assert_usage_error(&["--listen", "not-an-address"]);
    assert!(e.contains("listen"), "should name the flag: {e:?}");
    assert_usage_error(&["-l", "127.0.0.1:99999"]);
    let e = assert_usage_error(&["--max-line", "abc"]);
    assert!(e.contains("max-line"), "should name the flag: {e:?}");
    assert_usage_error(&["--max-line", "1"]);
}

#[test]
fn address_in_use_exits_2_with_one_stderr_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port to occupy");
    let addr = taken.local_addr().unwrap().to_string();
    assert_usage_error(&["--listen", &addr]);
    assert_usage_error(&["-l", &addr]);
    drop(taken);
}

#[test]
fn listen_on_port_0_logs_the_bound_address_and_serves() {
    let p = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
    assert_ne!(p.addr.port(), 0, "the log must show the bound port");
    assert!(p.addr.ip().is_loopback());
    let mut c = Client::connect(p.addr);
    assert_eq!(c.req("a1 PING"), "a1 PONG");
    let t = c.lock("a2", "x");
    assert!(t > 0);
    c.unlock("a3", "x");
}

#[test]
fn short_listen_flag_works() {
    let p = ServerProcess::spawn(&["-l", "127.0.0.1:0"]);
    let mut c = Client::connect(p.addr);
    assert_eq!(c.req("a1 PING"), "a1 PONG");
}

#[test]
fn max_line_flag_is_applied() {
    let p = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--max-line", "100"]);
    let mut c = Client::connect(p.addr);
    let mut line = String::from("a1 PING");
    line.push_str(&" ".repeat(100 - line.len()));
    assert_eq!(c.req(&line), "a1 PONG");
    line.push(' ');
    let _ = c.try_send_bytes(format!("{line}\n").as_bytes());
    let r = c.recv();
    let rid = r.split(' ').next().unwrap_or("").to_string();
    assert!(rid == "a1" || rid == "*", "{r:?}");
    assert_err(&r, &rid, "line_too_long");
    c.expect_closed();
}

#[test]
fn nothing_per_request_is_logged_at_the_default_level() {
    let mut p = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
    {
        let mut c = Client::connect(p.addr);
        for i in 0..20 {
            assert_eq!(c.req(&format!("p{i} PING")), format!("p{i} PONG"));
        }
        c.lock("l", "x");
        assert_err(&c.req("e NOPE"), "e", "unknown_command");
        assert_eq!(c.req("q QUIT"), "q OK");
        c.expect_closed();
    }
    // Connection open/close and protocol errors are debug; requests are never info.
    let lines = p.drain_stderr(Duration::from_millis(200)).to_vec();
    assert_eq!(lines.len(), 1, "only the startup line expected: {lines:?}");
    assert!(lines[0].contains("listening on"), "{lines:?}");
}

#[test]
fn tokens_increase_across_restarts() {
    let mut p = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
    let t1 = {
        let mut c = Client::connect(p.addr);
        c.lock("a", "x");
        c.lock("b", "y")
    };
    p.kill();
    let p2 = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
    let mut c = Client::connect(p2.addr);
    let t2 = c.lock("c", "x");
    assert!(t2 > t1, "token after restart {t2} not above {t1}");
}
