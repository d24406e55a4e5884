//! The signals `run` passes on to its command, and sending signals to a process.
//!
//! # Invariants
//! - The handlers are installed before `run` connects, so from then on SIGINT, SIGTERM
//!   and SIGHUP never kill lockbox-cli: they end the wait for the lock, or go to the
//!   command, and the lock is released in order.

use rustix::process::{kill_process, Pid, Signal};
use tokio::signal::unix::{signal, SignalKind};

use crate::exit::Fail;

/// SIGINT, SIGTERM and SIGHUP, received.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn new() -> Result<Signals, Fail> {
        let install =
            |kind| signal(kind).map_err(|e| Fail::new(1, format!("cannot handle signals: {e}")));
        Ok(Signals {
            int: install(SignalKind::interrupt())?,
            term: install(SignalKind::terminate())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    /// The next signal received. Cancel-safe.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.int.recv() => Signal::INT,
            Some(()) = self.term.recv() => Signal::TERM,
            Some(()) = self.hup.recv() => Signal::HUP,
            else => std::future::pending().await,
        }
    }
}

/// Sends `sig` to process `pid`; false if it could not be sent (the process is gone).
pub fn send(pid: Option<u32>, sig: Signal) -> bool {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw)
    else {
        return false;
    };
    kill_process(pid, sig).is_ok()
}

/// A signal's name for messages.
pub fn name(sig: Signal) -> String {
    match sig {
        s if s == Signal::INT => "SIGINT".into(),
        s if s == Signal::TERM => "SIGTERM".into(),
        s if s == Signal::HUP => "SIGHUP".into(),
        s if s == Signal::KILL => "SIGKILL".into(),
        s => format!("signal {}", s.as_raw()),
    }
}
