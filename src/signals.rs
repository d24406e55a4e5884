//! SIGINT and SIGTERM as poll-loop readiness: the self-pipe pattern, with the signal
//! handlers installed by `signal-hook` (its `low_level::pipe`).
//!
//! For each signal a Unix socket pair is made; the handler writes a byte to one end
//! (it does nothing else, so it is async-signal-safe) and the other end is registered
//! with the server's `mio::Poll`. The poll loop sees the signal as a readable token and
//! acts on it outside the handler, where anything may be done.
//!
//! # Invariants
//! - The handlers stay installed for the life of the process (a second SIGTERM during
//!   the shutdown is harmless: the loop has already stopped reading its pipe).
//! - Only the `lockbox` binary installs them ([`crate::server::Server::stop_on_signals`]);
//!   a server run inside another program (the tests) leaves that program's signals alone.

use mio::net::UnixStream;
use std::io::{self, Read};

/// A signal that stops the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, systemd's stop).
    Terminate,
}

impl Signal {
    /// Both, in the order their pipes are registered.
    pub const ALL: [Signal; 2] = [Signal::Interrupt, Signal::Terminate];

    /// The signal's name, as in logs.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    fn number(self) -> i32 {
        match self {
            Signal::Interrupt => signal_hook::consts::SIGINT,
            Signal::Terminate => signal_hook::consts::SIGTERM,
        }
    }
}

/// The read end of one signal's self-pipe.
#[derive(Debug)]
pub struct SignalPipe {
    /// Which signal writes to it.
    pub signal: Signal,
    /// The end to register for READABLE.
    pub stream: UnixStream,
}

impl SignalPipe {
    /// Installs the handler of `signal`, which from now on writes to the returned pipe
    /// instead of ending the process.
    pub fn install(signal: Signal) -> io::Result<SignalPipe> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(signal.number(), write)?;
        Ok(SignalPipe {
            signal,
            stream: UnixStream::from_std(read),
        })
    }

    /// Empties the pipe; true if the signal arrived since the last call.
    pub fn take(&mut self) -> bool {
        let mut buf = [0u8; 64];
        let mut seen = false;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return seen,
                Ok(_) => seen = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return seen,
            }
        }
    }
}
