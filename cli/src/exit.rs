//! Exit statuses (the BSD `sysexits.h` numbers where one fits) and the one error type:
//! a status and a one-line message.
//!
//! # Invariants
//! - Every failure leaves the program as a [`Fail`]: one line on stderr, prefixed with
//!   `lockbox-cli: ` and naming the server when a server is involved, and its status.

use lockbox_client::Error;

/// Success.
pub const OK: u8 = 0;
/// `EX_USAGE`: bad flags, durations, addresses or lock names.
pub const USAGE: u8 = 64;
/// `EX_NOINPUT`: the auth file cannot be read.
pub const NOINPUT: u8 = 66;
/// `EX_UNAVAILABLE`: a server cannot be reached, or the connection broke.
pub const UNAVAILABLE: u8 = 69;
/// `EX_SOFTWARE`: `run` lost its lease while the command ran.
pub const LEASE_LOST: u8 = 70;
/// `EX_TEMPFAIL`: `run` did not get the lock within `--wait`.
pub const TEMPFAIL: u8 = 75;
/// `EX_PROTOCOL`: the server answered with an error or something unexpected.
pub const PROTOCOL: u8 = 76;
/// `EX_NOPERM`: authentication failed.
pub const NOPERM: u8 = 77;
/// The command exists but cannot be executed (as shells do).
pub const NOT_EXECUTABLE: u8 = 126;
/// The command was not found (as shells do).
pub const NOT_FOUND: u8 = 127;
/// A command killed by signal N exits 128 + N (as shells do).
pub const SIGNAL_BASE: u8 = 128;

/// A failure: the exit status and the message for stderr.
#[derive(Debug)]
pub struct Fail {
    /// Exit status.
    pub code: u8,
    /// One line, without the program name.
    pub msg: String,
}

impl Fail {
    /// A failure with `code` and `msg`.
    pub fn new(code: u8, msg: impl Into<String>) -> Fail {
        Fail {
            code,
            msg: one_line(&msg.into()),
        }
    }

    /// A failure that prints nothing (the message was printed already, or there is
    /// nobody to read it).
    pub fn silent(code: u8) -> Fail {
        Fail {
            code,
            msg: String::new(),
        }
    }

    /// A client error that happened talking to `server`.
    pub fn server(server: &str, e: &Error) -> Fail {
        let code = match e {
            Error::Io(_) | Error::ConnectTimeout(_) | Error::ConnectionLost => UNAVAILABLE,
            Error::AuthFailed(_) | Error::AuthRequired(_) => NOPERM,
            Error::BadName(_) | Error::BadOption(_) => USAGE,
            _ => PROTOCOL,
        };
        let cause = match e {
            Error::Io(io) => format!("cannot connect: {io}"),
            Error::ConnectTimeout(_) => "cannot connect: timed out".to_string(),
            Error::AuthRequired(_) => {
                "the server requires a secret (give one with --auth-file)".to_string()
            }
            Error::AuthFailed(_) => "the server refused the secret of --auth-file".to_string(),
            other => other.to_string(),
        };
        Fail::new(code, format!("{server}: {cause}"))
    }
}

/// Joins the lines of `s` so a message is always one line.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        assert_eq!(Fail::new(1, "a\n  b\r\n\nc").msg, "a b c");
    }

    #[test]
    fn client_errors_map_to_statuses() {
        let refused = Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let f = Fail::server("127.0.0.1:1", &refused);
        assert_eq!(f.code, UNAVAILABLE);
        assert!(
            f.msg.starts_with("127.0.0.1:1: cannot connect: "),
            "{}",
            f.msg
        );
        assert_eq!(Fail::server("s", &Error::ConnectionLost).code, UNAVAILABLE);
        assert_eq!(
            Fail::server("s", &Error::AuthFailed("x".into())).code,
            NOPERM
        );
        assert_eq!(Fail::server("s", &Error::BadName("x".into())).code, USAGE);
        assert_eq!(Fail::server("s", &Error::Limit("x".into())).code, PROTOCOL);
    }
}
