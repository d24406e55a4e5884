//! The `loadgen` binary's exit codes and messages for bad arguments and `--help`.

use std::process::Command;

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
