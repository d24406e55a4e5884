//! The admin commands, errors, usage and help of the real `lockbox-cli` binary against
//! real servers on 127.0.0.1.

mod common;

use common::*;
use lockbox::config::Config;
use serde_json::json;

#[test]
fn inspect_list_and_clients_as_json() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    let token = raw.try_lock("app:a").unwrap();
    raw.req("s1 SHARE app:b");
    raw.req("n NAME holder-1");
    raw.try_lock("zzz").unwrap();

    let v = cli(&["-s", &addr, "--json", "inspect", "app:a"]).json();
    assert_eq!(
        v,
        json!({"name": "app:a", "server": addr, "mode": "exclusive", "holders": 1,
               "waiters": 0, "token": token.to_string(), "owner": raw_owner(&mut raw)})
    );
    let v = cli(&["-s", &addr, "--json", "inspect", "nobody"]).json();
    assert_eq!(
        v,
        json!({"name": "nobody", "server": addr, "mode": "free", "holders": 0,
               "waiters": 0, "token": null, "owner": null})
    );

    let v = cli(&["-s", &addr, "--json", "list", "app:"]).json();
    assert_eq!(
        v,
        json!([
            {"name": "app:a", "server": addr, "mode": "exclusive", "holders": 1, "waiters": 0},
            {"name": "app:b", "server": addr, "mode": "shared", "holders": 1, "waiters": 0},
        ])
    );
    let all = cli(&["-s", &addr, "--json", "list"]).json();
    assert_eq!(all.as_array().unwrap().len(), 3);

    let v = cli(&["-s", &addr, "--json", "--client-name", "ops", "clients"]).json();
    let rows = v.as_array().unwrap();
    let holder = rows
        .iter()
        .find(|r| r["name"] == "holder-1")
        .expect("holder");
    assert_eq!(holder["holds"], 3);
    assert_eq!(holder["waits"], 0);
    assert_eq!(holder["server"], addr.as_str());
    assert!(rows.iter().any(|r| r["name"] == "ops"), "{v}");
}

/// The owner name INSPECT reports for the raw connection.
fn raw_owner(raw: &mut Raw) -> String {
    let i = raw.inspect("app:a");
    i.split(' ')
        .find_map(|f| f.strip_prefix("owner="))
        .unwrap()
        .to_string()
}

#[test]
fn tables_for_people() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    raw.req("n NAME table-test");
    let token = raw.try_lock("jobs:42").unwrap();

    let out = cli(&["-s", &addr, "list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "NAME     MODE       HOLDERS  WAITERS\njobs:42  exclusive        1        0\n"
    );
    let out = cli(&["-s", &addr, "inspect", "jobs:42"]);
    assert_eq!(
        out.stdout,
        format!(
            "name     jobs:42\nserver   {addr}\nmode     exclusive\nholders  1\nwaiters  0\n\
             token    {token}\nowner    table-test\n"
        )
    );
    let out = cli(&["-s", &addr, "clients"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ADDR ") && lines[0].ends_with("HOLDS  WAITS"),
        "{out:?}"
    );
    let row = lines.iter().find(|l| l.contains("table-test")).unwrap();
    assert!(row.ends_with("    1      0"), "{row:?}");

    let out = cli(&["-s", &addr, "stats"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let holds = out
        .stdout
        .lines()
        .find(|l| l.starts_with("holds "))
        .expect("holds row");
    assert_eq!(holds.split_whitespace().collect::<Vec<_>>(), ["holds", "1"]);

    // Two servers: a SERVER column.
    let other = start();
    let out = cli(&["-s", &addr, "-s", &other, "list"]);
    assert_eq!(
        out.stdout.lines().next().unwrap().split_whitespace().last(),
        Some("SERVER")
    );
}

#[test]
fn stats_once_and_watch() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    raw.try_lock("s").unwrap();
    // A second client queues behind the first: one wait.
    let mut waiter = Raw::connect(&addr);
    waiter.send("w LOCK s");
    eventually("the LOCK queues", || raw.inspect("s").contains("waiters=1"));
    let v = cli(&["-s", &addr, "--json", "stats"]).json();
    let s = &v[0];
    assert_eq!(s["server"], addr.as_str());
    assert_eq!(s["stats"]["holds"], 1);
    assert!(s["stats"]["grants_total"].as_u64().unwrap() >= 1);
    assert_eq!(s["stats"]["waits_total"], 1);

    // Three JSON lines; rates from the second line on.
    let out = cli(&[
        "-s", &addr, "--json", "stats", "--watch", "100ms", "--count", "3",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(lines[0]["holds"], 1);
    assert_eq!(lines[0]["locks"], 1);
    assert!(lines[0]["grants_per_s"].is_null());
    assert!(lines[0]["waits_per_s"].is_null());
    for l in &lines[1..] {
        assert!(l["grants_per_s"].as_f64().unwrap() >= 0.0, "{l}");
        assert!(l["waits_per_s"].as_f64().unwrap() >= 0.0, "{l}");
        assert!(l["requests_per_s"].as_f64().unwrap() > 0.0, "{l}");
        assert!(l["connections"].as_u64().unwrap() >= 2, "{l}");
    }

    // For people: a header, then a line per sample.
    let out = cli(&["-s", &addr, "stats", "--watch", "50ms", "--count", "2"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(lines[0].contains("GRANTS/S") && lines[0].contains("WAITERS"));
    assert!(lines[0].contains("WAITS/S"), "{out:?}");
    assert!(lines[1].trim_end().ends_with('-'), "{out:?}");
}

#[test]
fn ping_reports_latency() {
    let (a, b) = (start(), start());
    let v = cli(&[
        "-s",
        &a,
        "-s",
        &b,
        "--json",
        "ping",
        "--count",
        "5",
        "--interval",
        "1ms",
    ])
    .json();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (r, s) in rows.iter().zip([&a, &b]) {
        assert_eq!(r["server"], s.as_str());
        assert_eq!(r["count"], 5);
        let f = |k: &str| r[k].as_f64().unwrap();
        assert!(f("min_ms") > 0.0, "{r}");
        assert!(
            f("min_ms") <= f("avg_ms") && f("avg_ms") <= f("max_ms"),
            "{r}"
        );
        assert!(
            f("min_ms") <= f("p99_ms") && f("p99_ms") <= f("max_ms"),
            "{r}"
        );
    }
    let out = cli(&["-s", &a, "ping", "--count", "2", "--interval", "1ms"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("SERVER "), "{out:?}");
    assert!(out.stdout.contains("P99 ms"), "{out:?}");
}

#[test]
fn unreachable_server_exits_69_with_one_line() {
    let dead = dead_addr();
    for cmd in [
        vec!["inspect", "x"],
        vec!["list"],
        vec!["clients"],
        vec!["stats"],
        vec!["stats", "--watch", "1s"],
        vec!["ping"],
        vec!["run", "x", "--", "true"],
    ] {
        let mut args = vec!["-s", dead.as_str()];
        args.extend(&cmd);
        let out = cli(&args);
        let line = out.one_line_error(69);
        assert!(line.contains(&dead), "{cmd:?}: {line}");
        assert!(line.contains("cannot connect"), "{cmd:?}: {line}");
    }
    // The environment variable works the same way.
    let mut c = command(&["ping"]);
    c.env("LOCKBOX_SERVER", &dead);
    cli_cmd(c).one_line_error(69);

    // One of two servers down: the other's rows, one line about the dead one.
    let live = start();
    let mut raw = Raw::connect(&live);
    raw.try_lock("here").unwrap();
    let out = cli(&["-s", &dead, "-s", &live, "--json", "list"]);
    let line = out.one_line_error(69);
    assert!(line.contains(&dead), "{line}");
    assert_eq!(out.json()[0]["name"], "here");
}

#[test]
fn usage_errors_exit_64_with_one_line() {
    let addr = start();
    for args in [
        vec!["--bogus", "list"],
        vec!["nosuchcommand"],
        vec!["run"],
        vec!["run", "x"],
        vec!["run", "x", "true"],
        vec!["run", "x", "--wait", "5x", "--", "true"],
        vec!["run", "x", "--wait", "-1", "--", "true"],
        vec!["run", "x", "--hold", "10ms", "--", "true"],
        vec!["run", "x", "--max", "2", "--", "true"],
        vec!["run", "x", "--shared", "--max", "0", "--", "true"],
        vec!["run", "x", "--conflict-exit-code", "256", "--", "true"],
        vec!["run", "bad name", "--", "true"],
        vec!["inspect"],
        vec!["inspect", "bad\tname"],
        vec!["ping", "--interval", "soon"],
        vec!["stats", "--count", "3"],
        vec!["--client-name", "two words", "list"],
    ] {
        let mut full = vec!["-s", addr.as_str()];
        full.extend(&args);
        cli(&full).one_line_error(64);
    }
    for server in ["nohost", "h:notaport", ""] {
        cli(&["-s", server, "list"]).one_line_error(64);
    }
    cli(&["-s", &addr, "-s", &addr, "list"]).one_line_error(64);
    // No arguments at all: the help, as a usage error.
    let out = cli(&[]);
    assert_eq!(out.code, Some(64), "{out:?}");
    assert!(out.stderr.contains("Usage:"), "{out:?}");
}

#[test]
fn help_on_every_subcommand_and_version() {
    let top = cli(&["--help"]);
    assert_eq!(top.code, Some(0), "{top:?}");
    for word in [
        "run",
        "inspect",
        "list",
        "clients",
        "stats",
        "ping",
        "75",
        "69",
        "LOCKBOX_SERVER",
    ] {
        assert!(
            top.stdout.contains(word),
            "--help lacks {word}: {}",
            top.stdout
        );
    }
    for sub in ["run", "inspect", "list", "clients", "stats", "ping"] {
        let out = cli(&[sub, "--help"]);
        assert_eq!(out.code, Some(0), "{sub}: {out:?}");
        assert!(out.stdout.contains("Usage: lockbox-cli"), "{sub}: {out:?}");
        assert!(out.stdout.contains("--server"), "{sub}: {out:?}");
    }
    let run = cli(&["help", "run"]).stdout;
    for word in ["LOCKBOX_TOKEN", "--conflict-exit-code", "--hold", "SIGTERM"] {
        assert!(run.contains(word), "run --help lacks {word}: {run}");
    }
    let v = cli(&["--version"]);
    assert_eq!(v.code, Some(0));
    assert_eq!(
        v.stdout.trim(),
        format!("lockbox-cli {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn auth_file() {
    let dir = Dir::new();
    let secret = dir.file("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let addr = start_with(Config {
        auth_file: Some(secret.clone().into()),
        ..Config::default()
    });
    let wrong = dir.file("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();

    let ok = cli(&[
        "-s",
        &addr,
        "--auth-file",
        &secret,
        "run",
        "a",
        "--",
        "true",
    ]);
    assert_eq!(ok.code, Some(0), "{ok:?}");
    let mut c = command(&["-s", &addr, "inspect", "a"]);
    c.env("LOCKBOX_AUTH_FILE", &secret);
    assert_eq!(cli_cmd(c).code, Some(0));

    let line = cli(&["-s", &addr, "inspect", "a"])
        .one_line_error(77)
        .to_string();
    assert!(
        line.contains(&addr) && line.contains("--auth-file"),
        "{line}"
    );
    let line = cli(&["-s", &addr, "--auth-file", &wrong, "list"])
        .one_line_error(77)
        .to_string();
    assert!(line.contains(&addr), "{line}");
    let missing = dir.file("missing");
    let line = cli(&["-s", &addr, "--auth-file", &missing, "list"])
        .one_line_error(66)
        .to_string();
    assert!(line.contains("missing"), "{line}");
}

#[test]
fn closed_stdout_is_not_a_crash() {
    let addr = start();
    let mut raw = Raw::connect(&addr);
    // Far more than a pipe holds, so the writer is still writing when the reader exits.
    for i in 0..3000 {
        raw.try_lock(&format!("many:{i:05}")).unwrap();
    }
    // `lockbox-cli list | head -1`: the reader goes away early.
    let sh = std::process::Command::new("sh")
        .args(["-c", &format!("'{}' -s {addr} list | head -1", binary())])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sh.stderr), "");
    assert!(String::from_utf8_lossy(&sh.stdout).starts_with("NAME "));
    assert_eq!(sh.status.code(), Some(0));
}
