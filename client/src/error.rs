//! The one error type of the crate.

/// Everything that can go wrong: the server's error codes (one variant each, carrying the
/// server's human text, or the client's when the client caught it before sending), the
/// outcomes of a wait that did not end in a grant, and connection failures.
///
/// Client-side validation uses the server's variants: a lock name the server would
/// refuse with `bad_name` is [`Error::BadName`] before anything is sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `bad_request`: the line could not be parsed (missing or extra arguments, bad id).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// `unknown_command`: the server does not know the verb.
    #[error("unknown command: {0}")]
    UnknownCommand(String),
    /// `bad_name`: a lock or client name breaks the name rules.
    #[error("bad name: {0}")]
    BadName(String),
    /// `bad_option`: an unknown, repeated or malformed option, or a number out of range.
    #[error("bad option: {0}")]
    BadOption(String),
    /// `not_held`: UNLOCK or EXTEND of a hold this connection does not have (never held,
    /// released, or expired).
    #[error("not held: {0}")]
    NotHeld(String),
    /// `token_required`: UNLOCK without a token while holding several holds on the name.
    #[error("token required: {0}")]
    TokenRequired(String),
    /// `not_waiting`: CANCEL of a request id with no pending wait.
    #[error("not waiting: {0}")]
    NotWaiting(String),
    /// `queue_full`: `queue=n` and n or more requests already wait on the lock.
    #[error("queue full: {0}")]
    QueueFull(String),
    /// `limit`: a server limit (too many connections, or holds plus waits on this one).
    #[error("server limit: {0}")]
    Limit(String),
    /// `auth_required`: the server wants AUTH first (set a secret in the connect options).
    #[error("authentication required: {0}")]
    AuthRequired(String),
    /// `auth_failed`: wrong secret; the server closed the connection.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// `line_too_long`: the request line is longer than the server accepts.
    #[error("line too long: {0}")]
    LineTooLong(String),
    /// An error code this client does not know (a newer server).
    #[error("server error {code}: {text}")]
    Server {
        /// The code word.
        code: String,
        /// The server's text.
        text: String,
    },
    /// The wait ran out (`TIMEOUT`), or `wait=0` found the lock busy.
    #[error("timed out waiting for the lock")]
    Timeout,
    /// The wait was ended by CANCEL or RESET on this connection.
    #[error("the wait was cancelled")]
    Cancelled,
    /// The connection closed or failed while the request was pending, or before it was
    /// sent. A new request on the same client reconnects.
    #[error("connection lost")]
    ConnectionLost,
    /// Connecting did not finish within the connect timeout.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    /// A kept-alive lease granted after a long wait could not be confirmed with an
    /// `EXTEND` before it ran out (the server or the network stopped answering); the
    /// guard was dropped, which releases the hold if it still exists.
    #[error("the lease was not confirmed in time")]
    LeaseUnconfirmed,
    /// The server sent something that is not the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The error for a server reply `ERR <code> <text>`.
    pub fn from_code(code: &str, text: &str) -> Error {
        let t = text.to_string();
        match code {
            "bad_request" => Error::BadRequest(t),
            "unknown_command" => Error::UnknownCommand(t),
            "bad_name" => Error::BadName(t),
            "bad_option" => Error::BadOption(t),
            "not_held" => Error::NotHeld(t),
            "token_required" => Error::TokenRequired(t),
            "not_waiting" => Error::NotWaiting(t),
            "queue_full" => Error::QueueFull(t),
            "limit" => Error::Limit(t),
            "auth_required" => Error::AuthRequired(t),
            "auth_failed" => Error::AuthFailed(t),
            "line_too_long" => Error::LineTooLong(t),
            _ => Error::Server {
                code: code.to_string(),
                text: t,
            },
        }
    }

    /// The server's code word for this error, when it is one of the server's errors.
    pub fn code(&self) -> Option<&str> {
        Some(match self {
            Error::BadRequest(_) => "bad_request",
            Error::UnknownCommand(_) => "unknown_command",
            Error::BadName(_) => "bad_name",
            Error::BadOption(_) => "bad_option",
            Error::NotHeld(_) => "not_held",
            Error::TokenRequired(_) => "token_required",
            Error::NotWaiting(_) => "not_waiting",
            Error::QueueFull(_) => "queue_full",
            Error::Limit(_) => "limit",
            Error::AuthRequired(_) => "auth_required",
            Error::AuthFailed(_) => "auth_failed",
            Error::LineTooLong(_) => "line_too_long",
            Error::Server { code, .. } => code,
            _ => return None,
        })
    }

    /// True for [`Error::Timeout`]: the lock was busy for the whole wait.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
