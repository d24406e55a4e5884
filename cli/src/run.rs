//! `run`: take a lock, run a command under it, keep the lease alive, release, and exit
//! with the command's status.
//!
//! # Invariants
//! - The command never starts before the lock is granted and its lease confirmed, and it
//!   gets SIGTERM as soon as lockbox-cli can no longer be sure the lock is still its own.
//! - "Sure" is measured locally, by the client library's kept-alive lease: the lease
//!   runs out on the server `hold` after the server read the last `EXTEND`, which is
//!   after lockbox-cli sent it. So the lease is known to be held until `send time of the
//!   last confirmed EXTEND + hold`; renewals go out every `hold / 3`, and when that
//!   instant passes without a newer confirmation (the server went away, or the network
//!   is cut and no `EXPIRED` can reach us) the guard reports the lock lost. A grant
//!   after a long wait is confirmed with an `EXTEND` before the command starts.
//! - The lock is released (and the release awaited) before lockbox-cli exits, except
//!   when it was lost; a connection that closes releases it on the server in any case.

use lockbox_client::{Error, Lost};
use rustix::process::Signal;
use std::future::IntoFuture;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use tokio::process::Command;
use tokio::time::Instant;

use crate::args::{ms, RunArgs};
use crate::conn::Ctx;
use crate::exit::{self, Fail};
use crate::out::warn;
use crate::signals::{self, Signals};

/// The environment variable that tells the command the lock's name.
pub const ENV_LOCK: &str = "LOCKBOX_LOCK";
/// The environment variable that carries the fencing token to the command.
pub const ENV_TOKEN: &str = "LOCKBOX_TOKEN";

/// How the wait for the command ended.
enum End {
    /// It exited.
    Exited(std::io::Result<ExitStatus>),
    /// The lease was lost (why).
    Lost(&'static str),
}

/// Runs `run`; returns the exit status.
pub async fn run(ctx: &Ctx, a: RunArgs) -> Result<u8, Fail> {
    lockbox_client::proto::check_name(&a.name)
        .map_err(|e| Fail::new(exit::USAGE, e.to_string()))?;
    let server = ctx.route(&a.name).to_string();
    let mut signals = Signals::new()?;

    let client = tokio::select! {
        r = ctx.connect(&server) => r?,
        sig = signals.recv() => return Ok(interrupted(&a.name, sig)),
    };
    let hold_ms = ms(a.hold);
    let mut req = if a.shared {
        client.share(a.name.clone())
    } else {
        client.lock(a.name.clone())
    }
    .hold(hold_ms)
    .keep_alive(true);
    if let Some(w) = a.wait {
        req = req.wait(ms(w));
    }
    if let Some(m) = a.max {
        req = req.max(m);
    }
    // Dropping the request (on a signal) cancels the wait on the server, or releases a
    // grant whose lease is still being confirmed.
    let guard = tokio::select! {
        r = req.into_future() => match r {
            Ok(g) => g,
            Err(Error::Timeout) => {
                if !a.quiet {
                    let within = a.wait.map(|w| format!(" within {} ms", w.as_millis())).unwrap_or_default();
                    warn(&format!("{server}: lock {} is busy: not acquired{within}", a.name));
                }
                return Ok(a.conflict_exit_code);
            }
            Err(Error::ConnectionLost) => {
                return Err(Fail::new(exit::UNAVAILABLE, format!("{server}: the connection broke while waiting for lock {}", a.name)));
            }
            Err(Error::NotHeld(e)) => {
                return Err(Fail::new(exit::UNAVAILABLE, format!("{server}: lock {} was lost right after the grant: {e}", a.name)));
            }
            Err(Error::LeaseUnconfirmed) => {
                return Err(Fail::new(exit::UNAVAILABLE, format!("{server}: the server stopped answering right after granting lock {}", a.name)));
            }
            Err(e) => return Err(Fail::server(&server, &e)),
        },
        sig = signals.recv() => return Ok(interrupted(&a.name, sig)),
    };
    let token = guard.token();

    let mut lost = guard.lost();

    let (program, rest) = match a.command.split_first() {
        Some(x) => x,
        None => return Err(Fail::new(exit::USAGE, "no command given after --")),
    };
    let spawned = Command::new(program)
        .args(rest)
        .env(ENV_LOCK, &a.name)
        .env(ENV_TOKEN, token.to_string())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = tokio::time::timeout(ctx.timeout(), guard.release()).await;
            let program = program.to_string_lossy();
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Fail::new(exit::NOT_FOUND, format!("{program}: command not found"))
                }
                _ => Fail::new(exit::NOT_EXECUTABLE, format!("{program}: cannot run: {e}")),
            });
        }
    };
    let pid = child.id();

    let end = loop {
        tokio::select! {
            biased;
            why = &mut lost => break End::Lost(lost_reason(why)),
            st = child.wait() => break End::Exited(st),
            sig = signals.recv() => {
                signals::send(pid, sig);
            }
        }
    };

    match end {
        End::Exited(status) => {
            let code = match status {
                Ok(st) => status_code(st),
                Err(e) => {
                    warn(&format!("cannot wait for the command: {e}"));
                    1
                }
            };
            match tokio::time::timeout(ctx.timeout(), guard.release()).await {
                // A broken connection released it on the server.
                Ok(Ok(())) | Ok(Err(Error::ConnectionLost)) => Ok(code),
                Ok(Err(Error::NotHeld(_))) => Err(Fail::new(
                    exit::LEASE_LOST,
                    format!(
                        "{server}: lock {} was no longer held when the command ended (its lease ran out)",
                        a.name
                    ),
                )),
                Ok(Err(e)) => {
                    warn(&format!("{server}: could not release lock {}: {e}", a.name));
                    Ok(code)
                }
                Err(_) => {
                    warn(&format!(
                        "{server}: release of lock {} not confirmed; the server frees it within {} ms",
                        a.name,
                        a.hold.as_millis()
                    ));
                    Ok(code)
                }
            }
        }
        End::Lost(why) => {
            warn(&format!(
                "{server}: lost lock {} while the command ran ({why}); sending SIGTERM to the command",
                a.name
            ));
            signals::send(pid, Signal::TERM);
            let kill_at = Instant::now() + a.kill_after;
            let mut killed = false;
            loop {
                tokio::select! {
                    _ = child.wait() => break,
                    sig = signals.recv() => {
                        signals::send(pid, sig);
                    }
                    _ = tokio::time::sleep_until(kill_at), if !killed => {
                        warn(&format!(
                            "the command did not exit within {} ms of SIGTERM; sending SIGKILL",
                            a.kill_after.as_millis()
                        ));
                        signals::send(pid, Signal::KILL);
                        killed = true;
                    }
                }
            }
            drop(guard);
            Err(Fail::silent(exit::LEASE_LOST))
        }
    }
}

fn lost_reason(l: Lost) -> &'static str {
    match l {
        Lost::Expired(_) => "its lease ran out on the server",
        Lost::Reset => "a RESET on the connection released it",
        Lost::ConnectionLost => "the connection to the server broke",
        Lost::LeaseUnconfirmed => {
            "no renewal of its lease was confirmed in time: the server or the network is gone"
        }
        // Only this program releases the guard, and not before the command ended.
        Lost::Released => "it was released",
    }
}

/// The shell's status for a finished command: its exit code, or 128 + the signal that
/// killed it.
fn status_code(st: ExitStatus) -> u8 {
    if let Some(c) = st.code() {
        return (c & 0xff) as u8;
    }
    match st.signal() {
        Some(s) => exit::SIGNAL_BASE.saturating_add(u8::try_from(s).unwrap_or(u8::MAX)),
        None => 1,
    }
}

/// A signal ended the wait for the lock: say so, exit as if killed by it.
fn interrupted(name: &str, sig: Signal) -> u8 {
    warn(&format!(
        "{} while waiting for lock {name}; not acquired",
        signals::name(sig)
    ));
    exit::SIGNAL_BASE.saturating_add(u8::try_from(sig.as_raw()).unwrap_or(u8::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_like_a_shell() {
        assert_eq!(status_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(status_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(status_code(ExitStatus::from_raw(255 << 8)), 255);
        assert_eq!(status_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(status_code(ExitStatus::from_raw(15)), 143);
    }
}
