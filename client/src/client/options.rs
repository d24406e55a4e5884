//! How a client connects: [`ConnectOptions`] and the connect and reconnect defaults.

use crate::error::Result;
use crate::proto::Request;
use std::time::Duration;

/// Default connect timeout (TCP connect plus the AUTH/NAME/PING handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of connection attempts a new request makes after a connection is lost.
pub const DEFAULT_RECONNECT_ATTEMPTS: u32 = 6;
/// First delay between reconnect attempts; it doubles after each failure.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// Longest delay between reconnect attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How to connect: secret, client name, timeouts, reconnect backoff.
///
/// ```
/// use lockbox_client::ConnectOptions;
/// use std::time::Duration;
///
/// let opts = ConnectOptions::new()
///     .auth("s3cret")
///     .name("billing-worker-1")
///     .connect_timeout(Duration::from_secs(2));
/// assert_eq!(opts.get_name(), Some("billing-worker-1"));
/// assert_eq!(opts.get_connect_timeout(), Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub(super) auth: Option<String>,
    pub(super) name: Option<String>,
    pub(super) connect_timeout: Duration,
    pub(super) reconnect_attempts: u32,
    pub(super) backoff_initial: Duration,
    pub(super) backoff_max: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            auth: None,
            name: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect_attempts: DEFAULT_RECONNECT_ATTEMPTS,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}

impl ConnectOptions {
    /// The defaults: no secret, no name, [`DEFAULT_CONNECT_TIMEOUT`], reconnect with
    /// [`DEFAULT_RECONNECT_ATTEMPTS`] attempts from [`DEFAULT_BACKOFF_INITIAL`] up to
    /// [`DEFAULT_BACKOFF_MAX`].
    pub fn new() -> Self {
        ConnectOptions::default()
    }

    /// Sends `AUTH <secret>` first on every connection (also fine on an open server).
    pub fn auth(mut self, secret: impl Into<String>) -> Self {
        self.auth = Some(secret.into());
        self
    }

    /// Sends `NAME <name>` on every connection: how `CLIENTS` and `INSPECT owner=`
    /// show this client.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The client name, if set.
    pub fn get_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Bound on one connection attempt: TCP connect and handshake.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// The bound on one connection attempt ([`DEFAULT_CONNECT_TIMEOUT`] unless set).
    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Attempts (at least 1) a new request makes when the connection was lost (or, for
    /// a [`Client::connect_lazy`](super::Client::connect_lazy) client, was never made).
    pub fn reconnect_attempts(mut self, n: u32) -> Self {
        self.reconnect_attempts = n.max(1);
        self
    }

    /// First and longest delay between reconnect attempts (doubling in between).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    pub(super) fn validate(&self) -> Result<()> {
        if let Some(s) = &self.auth {
            Request::Auth { secret: s.clone() }.validate()?;
        }
        if let Some(n) = &self.name {
            Request::Name { name: n.clone() }.validate()?;
        }
        Ok(())
    }
}
