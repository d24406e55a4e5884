//! `lockbox-cli run`: the real binary against a real server on 127.0.0.1.

mod common;

use common::*;
use rustix::process::Signal;
use std::time::Duration;

/// A shell command that writes its `LOCKBOX_TOKEN` and `LOCKBOX_LOCK` to files, then
/// waits; on `sig` it writes `got` and exits 7. The sleep runs in the background so the
/// shell's trap runs at once, and the trap kills it so no orphan keeps the pipes open.
fn waiter(dir: &Dir, sig: &str) -> String {
    format!(
        "trap 'kill $! 2>/dev/null; echo {sig} > {got}; exit 7' {sig}; \
         echo \"$LOCKBOX_LOCK\" > {lock}; \
         echo \"$LOCKBOX_TOKEN\" > {tok}.tmp && mv {tok}.tmp {tok}; \
         sleep 60 & wait",
        got = dir.file("got"),
        lock = dir.file("lock"),
        tok = dir.file("token"),
    )
}

fn run_bg(servers: &[&str], name: &str, extra: &[&str], script: &str) -> Bg {
    let mut args: Vec<&str> = Vec::new();
    for s in servers {
        args.extend(["--server", s]);
    }
    args.extend(["run", name]);
    args.extend(extra);
    args.extend(["--", "sh", "-c", script]);
    Bg::start(&args)
}

#[test]
fn run_holds_the_lock_while_the_command_runs_and_sigterm_releases_it() {
    let addr = start();
    let dir = Dir::new();
    let mut raw = Raw::connect(&addr);
    let mut bg = run_bg(&[&addr], "job", &[], &waiter(&dir, "TERM"));
    let token: u64 = dir.wait_line("token").parse().unwrap();
    assert_eq!(dir.read("lock").as_deref(), Some("job"));

    // The server's view: held, with the token the command got.
    assert_eq!(raw.holder_token("job"), Some(token));
    let inspect = cli(&["-s", &addr, "--json", "inspect", "job"]);
    assert_eq!(inspect.code, Some(0), "{inspect:?}");
    let v = inspect.json();
    assert_eq!(v["token"], serde_json::json!(token.to_string()), "{v}");
    assert_eq!(v["mode"], "exclusive");
    assert!(
        v["owner"].as_str().unwrap().starts_with("lockbox-cli@"),
        "{v}"
    );

    // A second run does not get it.
    let busy = cli(&["-s", &addr, "run", "job", "--wait", "0", "--", "true"]);
    let line = busy.one_line_error(75);
    assert!(line.contains(&addr) && line.contains("busy"), "{line}");
    let busy = cli(&[
        "-s",
        &addr,
        "run",
        "job",
        "--wait",
        "0",
        "--conflict-exit-code",
        "3",
        "--",
        "true",
    ]);
    assert_eq!(busy.code, Some(3), "{busy:?}");
    let quiet = cli(&[
        "-s", &addr, "run", "job", "--wait", "150ms", "-q", "--", "true",
    ]);
    assert_eq!(quiet.code, Some(75), "{quiet:?}");
    assert_eq!(quiet.stderr, "", "{quiet:?}");
    assert_eq!(raw.try_lock("job"), None);
    assert!(bg.running());

    // SIGTERM goes to the command; its status comes back; the lock is free.
    bg.signal(Signal::TERM);
    let out = bg.finish();
    assert_eq!(out.code, Some(7), "{out:?}");
    assert_eq!(dir.read("got").as_deref(), Some("TERM"));
    assert!(raw.is_free("job"));
    let again = cli(&["-s", &addr, "run", "job", "--wait", "0", "--", "true"]);
    assert_eq!(again.code, Some(0), "{again:?}");
}

#[test]
fn sigint_and_sighup_are_forwarded_too() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    for (sig, name) in [(Signal::INT, "INT"), (Signal::HUP, "HUP")] {
        let dir = Dir::new();
        let bg = run_bg(&[&addr], "job", &[], &waiter(&dir, name));
        dir.wait_line("token");
        bg.signal(sig);
        let out = bg.finish();
        assert_eq!(out.code, Some(7), "{name}: {out:?}");
        assert_eq!(dir.read("got").as_deref(), Some(name));
        assert!(raw.is_free("job"));
    }
}

#[test]
fn exit_status_of_the_command_is_the_exit_status() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    let dir = Dir::new();
    let run = |cmd: &[&str]| {
        let mut args = vec!["-s", addr.as_str(), "run", "st", "--"];
        args.extend(cmd);
        cli(&args)
    };
    assert_eq!(run(&["true"]).code, Some(0));
    assert_eq!(run(&["sh", "-c", "exit 3"]).code, Some(3));
    assert_eq!(run(&["sh", "-c", "exit 255"]).code, Some(255));
    let killed = run(&["sh", "-c", "kill -KILL $$"]);
    assert_eq!(killed.code, Some(128 + 9), "{killed:?}");
    let termed = run(&["sh", "-c", "kill -TERM $$"]);
    assert_eq!(termed.code, Some(128 + 15), "{termed:?}");

    let missing = run(&["/nonexistent/command"]);
    let line = missing.one_line_error(127);
    assert!(line.contains("/nonexistent/command"), "{line}");
    let plain = dir.file("not-executable");
    std::fs::write(&plain, "echo hi\n").unwrap();
    let line = run(&[&plain]).one_line_error(126).to_string();
    assert!(line.contains("not-executable"), "{line}");

    // The command's own output goes straight through.
    let echo = run(&["sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(
        (echo.stdout.as_str(), echo.stderr.as_str()),
        ("out\n", "err\n")
    );
    assert!(raw.is_free("st"));
}

#[test]
fn a_command_that_outlives_three_leases_keeps_the_lock() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    let dir = Dir::new();
    // Runs until the test creates the file `go`.
    let script = format!(
        "echo \"$LOCKBOX_TOKEN\" > {tok}; while [ ! -e {go} ]; do sleep 0.05; done",
        tok = dir.file("token"),
        go = dir.file("go"),
    );
    let bg = run_bg(&[&addr], "long", &["--hold", "1s"], &script);
    let token: u64 = dir.wait_line("token").parse().unwrap();
    // Over three leases later, still the same hold.
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(raw.holder_token("long"), Some(token));
    assert_eq!(raw.try_lock("long"), None);
    std::fs::write(dir.file("go"), "").unwrap();
    let out = bg.finish();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    assert!(raw.is_free("long"));
}

#[test]
fn lease_lost_when_the_server_goes_away_terminates_the_command() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let dir = Dir::new();
    let bg = run_bg(&[&proxy.addr], "doomed", &[], &waiter(&dir, "TERM"));
    dir.wait_line("token");
    proxy.kill();
    let out = bg.finish();
    let line = out.one_line_error(70);
    assert!(
        line.contains("lost lock doomed") && line.contains("SIGTERM"),
        "{line}"
    );
    assert_eq!(dir.read("got").as_deref(), Some("TERM"));
    assert!(Raw::connect(&addr).is_free("doomed"));
}

#[test]
fn lease_lost_when_the_network_is_cut_terminates_the_command() {
    // Nothing gets through: no EXPIRED, no close. Only the local lease deadline can
    // tell that the server has freed the lock.
    let addr = start();
    let proxy = Proxy::start(&addr);
    let dir = Dir::new();
    let bg = run_bg(
        &[&proxy.addr],
        "cut",
        &["--hold", "500ms"],
        &waiter(&dir, "TERM"),
    );
    dir.wait_line("token");
    proxy.freeze();
    let out = bg.finish();
    let line = out.one_line_error(70);
    assert!(line.contains("lost lock cut"), "{line}");
    assert_eq!(dir.read("got").as_deref(), Some("TERM"));
    let mut raw = Raw::connect(&addr);
    eventually("the server frees the lease", || raw.is_free("cut"));
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_kill_after() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let dir = Dir::new();
    let script = format!(
        "trap '' TERM; echo \"$LOCKBOX_TOKEN\" > {tok}; exec sleep 60",
        tok = dir.file("token")
    );
    let bg = run_bg(
        &[&proxy.addr],
        "stubborn",
        &["--kill-after", "300ms"],
        &script,
    );
    dir.wait_line("token");
    proxy.kill();
    let out = bg.finish();
    assert_eq!(out.code, Some(70), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[1].contains("SIGKILL"), "{out:?}");
}

#[test]
fn a_signal_while_waiting_cancels_the_wait() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    raw.try_lock("queue").expect("free");
    let bg = Bg::start(&["-s", &addr, "run", "queue", "--", "true"]);
    eventually("lockbox-cli waits", || {
        raw.inspect("queue").contains("waiters=1")
    });
    bg.signal(Signal::INT);
    let out = bg.finish();
    let line = out.one_line_error(130);
    assert!(line.contains("SIGINT"), "{line}");
    eventually("the wait is gone", || {
        raw.inspect("queue").contains("waiters=0")
    });
    raw.unlock("queue");
}

#[test]
fn shared_locks_with_a_maximum() {
    let addr = start();
    let (d1, d2) = (Dir::new(), Dir::new());
    let shared = ["--shared", "--max", "2"];
    let a = run_bg(&[&addr], "pool", &shared, &waiter(&d1, "TERM"));
    let b = run_bg(&[&addr], "pool", &shared, &waiter(&d2, "TERM"));
    let (t1, t2) = (d1.wait_line("token"), d2.wait_line("token"));
    assert_ne!(t1, t2);
    let mut raw = Raw::connect(&addr);
    assert!(raw.inspect("pool").starts_with("mode=shared holders=2 "));
    let third = cli(&[
        "-s", &addr, "run", "pool", "--shared", "--max", "2", "--wait", "0", "--", "true",
    ]);
    assert_eq!(third.code, Some(75), "{third:?}");
    let excl = cli(&["-s", &addr, "run", "pool", "--wait", "0", "--", "true"]);
    assert_eq!(excl.code, Some(75), "{excl:?}");
    a.signal(Signal::TERM);
    b.signal(Signal::TERM);
    assert_eq!(a.finish().code, Some(7));
    assert_eq!(b.finish().code, Some(7));
    assert!(raw.is_free("pool"));
}

#[test]
fn sharded_run_and_inspect_agree_on_the_server() {
    let servers: Vec<String> = (0..3).map(|_| start()).collect();
    let list = servers.join(",");
    let names: Vec<String> = (0..6).map(|i| format!("shard:{i}")).collect();
    let mut running = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let dir = Dir::new();
        // Half name the servers with --server, half with LOCKBOX_SERVER.
        let cmd = if i % 2 == 0 {
            command(&[
                "-s",
                &servers[0],
                "-s",
                &servers[1],
                "-s",
                &servers[2],
                "run",
                name,
                "--",
                "sh",
                "-c",
                &waiter(&dir, "TERM"),
            ])
        } else {
            let mut c = command(&["run", name, "--", "sh", "-c", &waiter(&dir, "TERM")]);
            c.env("LOCKBOX_SERVER", &list);
            c
        };
        running.push((name, Bg::spawn(cmd), dir));
    }
    let mut used = std::collections::HashSet::new();
    for (name, _, dir) in &running {
        let token: u64 = dir.wait_line("token").parse().unwrap();
        let want = lockbox_client::shard::rendezvous_route(&servers, name.as_bytes()).unwrap();
        used.insert(want);
        let mut cmd = command(&["--json", "inspect", name]);
        cmd.env("LOCKBOX_SERVER", &list);
        let out = cli_cmd(cmd);
        assert_eq!(out.code, Some(0), "{out:?}");
        let v = out.json();
        assert_eq!(v["server"], servers[want].as_str(), "{name}: {v}");
        assert_eq!(v["token"], serde_json::json!(token.to_string()), "{v}");
        for (i, s) in servers.iter().enumerate() {
            let mut raw = Raw::connect(s);
            if i == want {
                assert_eq!(raw.holder_token(name), Some(token), "{name} on {s}");
            } else {
                assert!(raw.is_free(name), "{name} also on {s}");
            }
        }
    }
    assert!(used.len() > 1, "six names all went to one server: {used:?}");

    // `list` over the three servers shows each lock once, on its server.
    let mut cmd = command(&["--json", "list", "shard:"]);
    cmd.env("LOCKBOX_SERVER", &list);
    let v = cli_cmd(cmd).json();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), names.len(), "{v}");
    for r in rows {
        let name = r["name"].as_str().unwrap();
        let want = lockbox_client::shard::rendezvous_route(&servers, name.as_bytes()).unwrap();
        assert_eq!(r["server"], servers[want].as_str(), "{r}");
    }

    for (_, bg, _) in running {
        bg.signal(Signal::TERM);
        assert_eq!(bg.finish().code, Some(7));
    }
}
