//! The real npm clients (`locker`, `live-mutex`) against an in-process server, by
//! running the node scripts in `tests/compat/npm/`.
//!
//! Needs the packages of `tests/compat/npm/package.json` installed somewhere and
//! `LOCKBOX_NPM_DIR` naming that directory (the one holding `node_modules`); `.ci/run`
//! does it. Without it the tests print a `SKIP` line saying why (on the terminal, past
//! cargo's capture of test output) and pass, unless
//! `LOCKBOX_REQUIRE_NPM=1`, which makes a missing install a failure. `LOCKBOX_NODE`
//! names the node binary (default `node`).

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lockbox::proto::Protocol;

/// The scripts have their own 60 s timeout; this one is the last resort.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The npm install directory, or `None` (after saying why) when the test should skip.
fn npm_dir() -> Option<PathBuf> {
    let required = std::env::var("LOCKBOX_REQUIRE_NPM").is_ok_and(|v| v == "1");
    match std::env::var_os("LOCKBOX_NPM_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let modules = dir.join("node_modules");
            assert!(
                modules.join("locker").is_dir() && modules.join("live-mutex").is_dir(),
                "LOCKBOX_NPM_DIR={} has no node_modules/locker and node_modules/live-mutex: \
                 run `npm ci` there with tests/compat/npm/package.json and package-lock.json",
                dir.display()
            );
            Some(dir)
        }
        None if required => panic!(
            "LOCKBOX_REQUIRE_NPM=1 but LOCKBOX_NPM_DIR is not set: install tests/compat/npm/package.json \
             with npm into a directory and point LOCKBOX_NPM_DIR at it (see .ci/run)"
        ),
        None => {
            common::skip_notice(
                "npm client tests (locker, live-mutex)",
                "LOCKBOX_NPM_DIR is not set; see .ci/run to install the clients",
            );
            None
        }
    }
}

/// Starts a server with the locker and live-mutex listeners on 127.0.0.1.
fn start() -> (SocketAddr, SocketAddr) {
    let s = common::start_with_listeners(&[Protocol::Locker, Protocol::LiveMutex], |_| {});
    (s.addr(Protocol::Locker), s.addr(Protocol::LiveMutex))
}

/// Runs `node tests/compat/npm/<script> <addr>` and asserts it exits 0, showing its output.
fn run_script(npm: &Path, script: &str, addr: SocketAddr) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("tests/compat/npm").join(script);
    let node = std::env::var_os("LOCKBOX_NODE").unwrap_or_else(|| "node".into());
    let mut cmd = Command::new(&node);
    cmd.arg("--no-deprecation")
        .arg(&path)
        .arg(addr.to_string())
        .env("NODE_PATH", npm.join("node_modules"));
    let (status, _, report) = common::run_client_script(cmd, script, SCRIPT_TIMEOUT);
    match status {
        Some(s) if s.success() => println!("{report}"),
        Some(s) => panic!("{script} failed ({s})\n{report}"),
        None => panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}\n{report}"),
    }
}

#[test]
fn npm_locker_client() {
    let Some(npm) = npm_dir() else { return };
    let (locker, _) = start();
    run_script(&npm, "locker.js", locker);
}

#[test]
fn npm_livemutex_client() {
    let Some(npm) = npm_dir() else { return };
    let (_, livemutex) = start();
    run_script(&npm, "livemutex.js", livemutex);
}
