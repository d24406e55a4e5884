//! Records the git commit the binary is built from as `LOCKBOX_GIT_COMMIT`, for
//! `lockbox --version`: the `LOCKBOX_GIT_COMMIT` environment variable if set (builds
//! from a source archive), else `git rev-parse HEAD` in the source tree, else `unknown`
//! (no git, or not a git checkout). Uncommitted changes are not marked.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LOCKBOX_GIT_COMMIT");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    let commit = match std::env::var("LOCKBOX_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => match git(dir, &["rev-parse", "--short=12", "HEAD"]) {
            Some(c) => {
                // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it
                // points at (a commit), loose or packed. Paths come from git, so a
                // worktree or a separate git dir works too.
                let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
                if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
                    watch.push(r);
                }
                for file in &watch {
                    let Some(p) = git(dir, &["rev-parse", "--git-path", file]) else {
                        continue;
                    };
                    let p = dir.join(p);
                    // A missing file would rerun this script on every build. A missing
                    // packed-refs does not matter (the loose ref is watched); for a
                    // branch whose ref is packed, watch the directory a loose one
                    // would appear in.
                    let p = match (p.exists(), file.as_str()) {
                        (true, _) => p,
                        (false, "HEAD" | "packed-refs") => continue,
                        (false, _) => match p.parent() {
                            Some(d) if d.exists() => d.to_path_buf(),
                            _ => continue,
                        },
                    };
                    println!("cargo:rerun-if-changed={}", p.display());
                }
                c
            }
            None => "unknown".to_string(),
        },
    };
    println!("cargo:rustc-env=LOCKBOX_GIT_COMMIT={commit}");
}
