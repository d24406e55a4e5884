//! The fencing-token state file through the real binary: instances sharing a directory,
//! restarts after kill -9, and a token space too close to its end to start.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use lockbox::fence::{MIN_HEADROOM, RESERVATION};

/// A fresh directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("lockbox-fence-state-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn state_line(end: u64) -> String {
    format!("lockbox-fence 1 {end}\n")
}

fn recorded(path: &Path) -> u64 {
    let text = fs::read_to_string(path).expect("read state file");
    text.strip_prefix("lockbox-fence 1 ")
        .and_then(|t| t.strip_suffix('\n'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{}: bad state {text:?}", path.display()))
}

fn serve(state: &Path) -> ServerProcess {
    ServerProcess::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--state-file",
        state.to_str().expect("utf-8 path"),
    ])
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .collect();
    v.sort();
    v
}

/// Two sharded instances with their state files in one directory, each killed with
/// SIGKILL and restarted twice: every token after a restart is above every token before
/// it, each file holds its own instance's reservation, and no temporary file is left.
#[test]
fn two_instances_in_one_directory_survive_kill_and_restart() {
    let dir = scratch_dir("pair");
    let paths = [dir.join("fence.7001"), dir.join("fence.7002")];
    // Recorded ends far above the wall clock, so the tokens come from the files: a
    // restart continues at the recorded end, not at the clock.
    let seeds = [1u64 << 62, 1u64 << 61];
    for (p, s) in paths.iter().zip(seeds) {
        fs::write(p, state_line(s)).unwrap();
    }
    let mut last = [0u64; 2];
    for round in 0..3 {
        let mut servers: Vec<ServerProcess> = paths.iter().map(|p| serve(p)).collect();
        for (i, srv) in servers.iter_mut().enumerate() {
            let mut c = Client::connect(srv.addr);
            let mut tokens = Vec::new();
            for j in 0..5 {
                let name = format!("r{round}-{j}");
                tokens.push(c.lock(&format!("l{j}"), &name));
                c.unlock(&format!("u{j}"), &name);
            }
            assert!(
                tokens.windows(2).all(|w| w[0] < w[1]),
                "{}: round {round}: {tokens:?}",
                paths[i].display()
            );
            assert!(
                tokens[0] > last[i],
                "{}: round {round} started at {} after {}",
                paths[i].display(),
                tokens[0],
                last[i]
            );
            // The first run starts at the seed, each restart at the previous run's
            // reservation end: the file holds this instance's own reservation.
            let expected_first = seeds[i] + round * RESERVATION;
            assert_eq!(tokens[0], expected_first, "{}", paths[i].display());
            assert_eq!(
                recorded(&paths[i]),
                expected_first + RESERVATION,
                "{}",
                paths[i].display()
            );
            last[i] = *tokens.last().unwrap();
        }
        for srv in &mut servers {
            srv.kill();
        }
    }
    assert_eq!(files_in(&dir), ["fence.7001", "fence.7002"]);
}

/// A state file named like a temporary file is written through a separate one.
#[test]
fn state_file_named_tmp_works() {
    let dir = scratch_dir("tmpname");
    let path = dir.join("x.tmp");
    let seed = 1u64 << 62;
    fs::write(&path, state_line(seed)).unwrap();
    let mut srv = serve(&path);
    let mut c = Client::connect(srv.addr);
    assert_eq!(c.lock("a", "x"), seed);
    assert_eq!(recorded(&path), seed + RESERVATION);
    srv.kill();
    assert_eq!(files_in(&dir), ["x.tmp"]);
}

/// A state file near the end of the 64-bit token space: the binary refuses to start
/// with exit status 2 and one line naming the file, and leaves the file alone (it used
/// to grant twice and then panic, on every restart).
#[test]
fn nearly_exhausted_token_space_refuses_to_start() {
    let dir = scratch_dir("exhausted");
    let path = dir.join("fence");
    for end in [
        u64::MAX - 1,
        u64::MAX - RESERVATION,
        u64::MAX - MIN_HEADROOM + 1,
    ] {
        fs::write(&path, state_line(end)).unwrap();
        let out = run_binary(&[
            "--listen",
            "127.0.0.1:0",
            "--state-file",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.code, Some(2), "state {end}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one stderr line: {out:?}");
        assert!(
            lines[0].contains("exhausted") && lines[0].contains(path.to_str().unwrap()),
            "{out:?}"
        );
        assert!(!out.stderr.contains("panicked"), "{out:?}");
        assert_eq!(fs::read_to_string(&path).unwrap(), state_line(end));
    }
}

/// Exactly the required headroom left: the binary starts and its first token is the
/// recorded end.
#[test]
fn token_space_with_exactly_the_headroom_starts() {
    let dir = scratch_dir("edge");
    let path = dir.join("fence");
    let end = u64::MAX - MIN_HEADROOM;
    fs::write(&path, state_line(end)).unwrap();
    let srv = serve(&path);
    let mut c = Client::connect(srv.addr);
    assert_eq!(c.lock("a", "x"), end);
    c.unlock("b", "x");
    assert_eq!(c.lock("c", "x"), end + 1);
}
