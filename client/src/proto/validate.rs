//! The server's rules for what a request may carry: ids, lock and client names,
//! option ranges and line length, checked before anything is sent.

use super::{LockKind, Request, MAX_CLIENT_NAME, MAX_ID, MAX_LINE, MAX_NAME};
use crate::error::{Error, Result};

/// True for a valid request id: 1 to 32 bytes of `A-Z a-z 0-9 _ . : -`.
pub fn valid_id(id: &[u8]) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// True for a valid name of at most `max` bytes: no ASCII control characters, space or
/// DEL (UTF-8 is fine).
pub fn valid_name(name: &[u8], max: usize) -> bool {
    (1..=max).contains(&name.len()) && name.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// Checks a lock name: [`Error::BadName`] when the server would refuse it.
pub fn check_name(name: &str) -> Result<()> {
    if valid_name(name.as_bytes(), MAX_NAME) {
        Ok(())
    } else {
        Err(Error::BadName(format!(
            "lock names are 1 to {MAX_NAME} bytes with no control characters, spaces or DEL: {name:?}"
        )))
    }
}

impl Request {
    /// Checks the request with the server's rules, so that nothing the server would
    /// refuse as malformed is sent.
    pub fn validate(&self) -> Result<()> {
        match self {
            Request::Acquire(a) => {
                check_name(&a.name)?;
                if a.kind == (LockKind::Shared { max: Some(0) }) {
                    return Err(Error::BadOption("max must be at least 1".into()));
                }
            }
            Request::Unlock { name, .. }
            | Request::Extend { name, .. }
            | Request::Inspect { name } => check_name(name)?,
            Request::List { prefix: Some(p) } => check_name(p)?,
            Request::Cancel { id } => {
                if !valid_id(id.as_bytes()) {
                    return Err(Error::BadRequest(format!(
                        "request ids are 1 to {MAX_ID} bytes of A-Z a-z 0-9 _ . : -: {id:?}"
                    )));
                }
            }
            Request::Name { name } => {
                if !valid_name(name.as_bytes(), MAX_CLIENT_NAME) {
                    return Err(Error::BadName(format!(
                        "client names are 1 to {MAX_CLIENT_NAME} bytes with no control \
                         characters, spaces or DEL: {name:?}"
                    )));
                }
            }
            Request::Auth { secret } => {
                if secret.is_empty()
                    || secret
                        .bytes()
                        .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                {
                    return Err(Error::BadRequest(
                        "the secret must be one non-empty word (no blanks or line ends)".into(),
                    ));
                }
                // The id is at most 20 digits: "<id> AUTH <secret>".
                if 20 + " AUTH ".len() + secret.len() > MAX_LINE {
                    return Err(Error::LineTooLong(format!(
                        "a secret of {} bytes makes a line over {MAX_LINE} bytes",
                        secret.len()
                    )));
                }
            }
            Request::List { prefix: None }
            | Request::Reset
            | Request::Whoami
            | Request::Clients
            | Request::Stats
            | Request::Ping
            | Request::Quit => {}
        }
        Ok(())
    }
}
