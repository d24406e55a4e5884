//! The `loadgen` binary's exit codes and messages for bad arguments, `--help` and
//! `--version`, and the spellings its time flags accept.

use std::process::Command;
use std::time::Duration;

fn loadgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen")
}

#[test]
fn bad_arguments_exit_2_with_one_clear_line() {
    for args in [
        &["--clients", "0"][..],
        &["--mode", "write"][..],
        &["--server", "nohostport"][..],
        &["--frobnicate"][..],
        &["--target", "redis", "--mode", "share"][..],
        &["extra"][..],
    ] {
        let out = loadgen(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("loadgen: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn version_prints_name_and_version() {
    for flag in ["--version", "-V"] {
        let out = loadgen(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("loadgen {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
        assert!(out.stderr.is_empty(), "{flag}");
    }
}

fn parse(args: &[&str]) -> loadgen::Options {
    loadgen::parse_args(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn parse_err(args: &[&str]) -> String {
    match loadgen::parse_args(args) {
        Err(loadgen::UsageError::Invalid(m)) => m,
        other => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

#[test]
fn time_flags_take_units_and_plain_numbers_keep_their_unit() {
    let ms = Duration::from_millis;
    // Seconds flags: a plain number is seconds, as before units were accepted.
    let o = parse(&["--duration", "1.5", "--drain-s", "2", "--timeout-s", "9"]);
    assert_eq!(
        (o.duration, o.drain, o.timeout),
        (Some(ms(1500)), ms(2000), ms(9000))
    );
    let o = parse(&[
        "--duration",
        "500ms",
        "--drain",
        "3s",
        "--timeout",
        "2500ms",
    ]);
    assert_eq!(
        (o.duration, o.drain, o.timeout),
        (Some(ms(500)), ms(3000), ms(2500))
    );
    let o = parse(&["--drain-s", "250ms", "--timeout-s", "1.5s"]);
    assert_eq!((o.drain, o.timeout), (ms(250), ms(1500)));
    // Millisecond flags: a plain number is milliseconds.
    let o = parse(&[
        "--work-ms",
        "2",
        "--wait",
        "100",
        "--hold",
        "5000",
        "--retry-ms",
        "3",
    ]);
    assert_eq!(
        (o.work_ms, o.wait_ms, o.hold_ms, o.retry_ms),
        (2, Some(100), Some(5000), 3)
    );
    let o = parse(&[
        "--work", "2s", "--wait", "0.5s", "--hold", "30s", "--retry", "1ms",
    ]);
    assert_eq!(
        (o.work_ms, o.wait_ms, o.hold_ms, o.retry_ms),
        (2000, Some(500), Some(30000), 1)
    );
    let o = parse(&["--work-ms", "1s", "--retry-ms", "20ms"]);
    assert_eq!((o.work_ms, o.retry_ms), (1000, 20));
    // The default timeout follows the duration and drain, whatever their spelling.
    let o = parse(&["--duration", "2s", "--drain", "500ms"]);
    assert_eq!(o.timeout, ms(2000 + 500 + 30_000));
}

#[test]
fn bad_time_values_name_the_flag_and_print_ranges_in_words() {
    let e = parse_err(&["--duration", "3m"]);
    assert!(e.starts_with("--duration: '3m' is not a time"), "{e}");
    assert!(e.contains("seconds"), "{e}");
    let e = parse_err(&["--wait", "x"]);
    assert!(
        e.starts_with("--wait: ") && e.contains("milliseconds"),
        "{e}"
    );
    let e = parse_err(&["--work", "1.5ms"]);
    assert!(
        e.starts_with("--work: ") && e.contains("whole number of milliseconds"),
        "{e}"
    );
    let e = parse_err(&["--retry-ms", "61s"]);
    assert_eq!(e, "--retry-ms: '61s' is out of range (0 to 60000ms)");
    let e = parse_err(&["--duration", "0"]);
    assert_eq!(e, "--duration: '0' is out of range (1ms to 10000000s)");
    let e = parse_err(&["--work", "1", "--work-ms", "1"]);
    assert!(e.contains("--work and --work-ms"), "{e}");
    for args in [
        &["--clients", "0"][..],
        &["--pipeline", "100001"][..],
        &["--hold", "4294967296"][..],
        &["--timeout", "0.0001"][..],
    ] {
        let e = parse_err(args);
        assert!(e.starts_with(&format!("{}: ", args[0])), "{e}");
        assert!(e.contains(" to ") && !e.contains(".."), "{e}");
    }
}

#[test]
fn help_shows_every_flag_with_its_range_and_default() {
    let text = String::from_utf8_lossy(&loadgen(&["--help"]).stdout).into_owned();
    for flag in [
        "--target",
        "--server",
        "--mode",
        "--clients",
        "--pipeline",
        "--threads",
        "--locks",
        "--prefix",
        "--work",
        "--wait",
        "--hold",
        "--max",
        "--retry",
        "--seed",
        "--duration",
        "--cycles",
        "--drain",
        "--timeout",
        "--chaos",
        "--verify",
        "--json",
        "--quiet",
        "--server-pid",
        "--help",
        "--version",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
    for range in [
        "(1 to 1000000, default 50)",
        "(0 to 60000ms, default 1ms)",
        "default 10s",
    ] {
        assert!(text.contains(range), "{range} missing from --help");
    }
    assert!(!text.contains("..="));
    // --chaos says it is lockbox only, and --verify names every property it counts.
    assert!(text.contains("refused with --target redis"), "{text}");
    for p in loadgen::Property::ALL {
        assert!(
            text.contains(&format!("{}:", p.as_str())),
            "{} not explained",
            p.as_str()
        );
    }
}

#[test]
fn help_exits_0() {
    let out = loadgen(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--pipeline") && text.contains("--target"));
}

#[test]
fn unreachable_server_exits_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = loadgen(&["--server", &addr, "--duration", "0.2", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}
