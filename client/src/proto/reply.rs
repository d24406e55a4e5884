//! The typed replies of the native protocol and their parts: grants, lock and
//! client descriptions, statistics.

use super::frame::protocol;
use crate::error::Result;

/// A granted `LOCK` or `SHARE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The fencing token: strictly increasing over every grant of the server.
    pub token: u64,
    /// For `SHARE`: the shared holds of the lock at the grant, this one included.
    pub holders: Option<u64>,
}

/// The mode of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No holders.
    Free,
    /// One exclusive hold.
    Exclusive,
    /// One or more shared holds.
    Shared,
}

impl Mode {
    pub(super) fn parse(s: &str, line: &str) -> Result<Mode> {
        match s {
            "free" => Ok(Mode::Free),
            "exclusive" => Ok(Mode::Exclusive),
            "shared" => Ok(Mode::Shared),
            _ => Err(protocol("unknown mode", line)),
        }
    }

    /// The protocol's word for the mode (`free`, `exclusive`, `shared`), as `INSPECT`
    /// and `LIST` write it; also what [`Mode`]'s `Display` prints.
    ///
    /// ```
    /// use lockbox_client::Mode;
    /// assert_eq!(Mode::Shared.as_str(), "shared");
    /// assert_eq!(Mode::Exclusive.to_string(), "exclusive");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Free => "free",
            Mode::Exclusive => "exclusive",
            Mode::Shared => "shared",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// `INSPECT`: the state of one lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// Free, exclusive or shared.
    pub mode: Mode,
    /// Number of holds.
    pub holders: u64,
    /// Number of waiting requests.
    pub waiters: u64,
    /// When exclusive: the hold's token.
    pub token: Option<u64>,
    /// When exclusive: the owner's client name (its `ip:port` when unnamed).
    pub owner: Option<String>,
}

/// One `LIST` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockSummary {
    /// Lock name.
    pub name: String,
    /// Exclusive or shared.
    pub mode: Mode,
    /// Number of holds.
    pub holders: u64,
    /// Number of waiting requests.
    pub waiters: u64,
}

/// `WHOAMI`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoAmI {
    /// This connection's `ip:port` as the server sees it.
    pub addr: String,
    /// Its name (`addr` when unnamed).
    pub name: String,
}

/// One `CLIENTS` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// `ip:port`.
    pub addr: String,
    /// Its name (`addr` when unnamed).
    pub name: String,
    /// Holds of the connection.
    pub holds: u64,
    /// Pending waits of the connection.
    pub waits: u64,
}

/// `STATS`: every `key value` row, in the server's order. Values are kept as sent:
/// almost all are counters or levels, but the protocol allows any token (`version`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The rows.
    pub rows: Vec<(String, String)>,
}

impl Stats {
    /// The value of `key` as a number (e.g. `holds`, `cmd_lock`); `None` when the key is
    /// missing or its value is not a number.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.value(key).and_then(|v| v.parse().ok())
    }

    /// The value of `key` as sent (e.g. `version`).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.rows
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A typed reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `LOCK` / `SHARE` granted.
    Granted(Grant),
    /// `OK` with no fields (`UNLOCK`, `EXTEND`, `NAME`, `AUTH`, `QUIT`).
    Ok,
    /// `CANCEL`: how many waits it ended.
    Cancelled(u64),
    /// `RESET`.
    Reset {
        /// Holds released.
        released: u64,
        /// Waits cancelled.
        cancelled: u64,
    },
    /// `INSPECT`.
    Inspect(LockInfo),
    /// `LIST`.
    List(Vec<LockSummary>),
    /// `WHOAMI`.
    Whoami(WhoAmI),
    /// `CLIENTS`.
    Clients(Vec<ClientInfo>),
    /// `STATS`.
    Stats(Stats),
    /// `PING`.
    Pong,
}
