//! The typed requests of the native protocol: one variant per verb, with the
//! `LOCK`/`SHARE` options gathered in [`Acquire`].

/// Exclusive or shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `LOCK`: one holder.
    Exclusive,
    /// `SHARE`: many holders; with `max`, at most that many (a counting semaphore).
    Shared {
        /// `max=<n>` (n >= 1), or no limit.
        max: Option<u32>,
    },
}

/// `LOCK` or `SHARE` with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquire {
    /// Lock name.
    pub name: String,
    /// Exclusive or shared.
    pub kind: LockKind,
    /// `wait=<ms>`: how long to wait; `None` waits as long as the connection lives,
    /// `Some(0)` tries once.
    pub wait: Option<u32>,
    /// `hold=<ms>`: a lease; the server takes the lock back this long after the grant.
    pub hold: Option<u32>,
    /// `queue=<n>`: fail with `queue_full` instead of waiting behind `n` or more waiters.
    pub queue: Option<u32>,
}

impl Acquire {
    /// Sets `wait`.
    pub fn wait(mut self, ms: u32) -> Self {
        self.wait = Some(ms);
        self
    }
    /// Sets `hold`.
    pub fn hold(mut self, ms: u32) -> Self {
        self.hold = Some(ms);
        self
    }
    /// Sets `queue`.
    pub fn queue(mut self, n: u32) -> Self {
        self.queue = Some(n);
        self
    }
}

impl From<Acquire> for Request {
    fn from(a: Acquire) -> Request {
        Request::Acquire(a)
    }
}

/// A request of the native protocol, one variant per verb (`LOCK` and `SHARE` share
/// [`Request::Acquire`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `LOCK` / `SHARE`.
    Acquire(Acquire),
    /// `UNLOCK <name> [<token>]`.
    Unlock {
        /// Lock name.
        name: String,
        /// Which hold; required when this connection has several on the name.
        token: Option<u64>,
    },
    /// `EXTEND <name> <token> hold=<ms>`.
    Extend {
        /// Lock name.
        name: String,
        /// The hold.
        token: u64,
        /// New deadline, from now.
        hold: u32,
    },
    /// `CANCEL <request-id>`.
    Cancel {
        /// The id of the waits to end.
        id: String,
    },
    /// `RESET`: release every hold and cancel every wait of the connection.
    Reset,
    /// `INSPECT <name>`.
    Inspect {
        /// Lock name.
        name: String,
    },
    /// `LIST [<prefix>]`.
    List {
        /// Only names starting with this.
        prefix: Option<String>,
    },
    /// `NAME <client-name>`.
    Name {
        /// The connection's friendly name.
        name: String,
    },
    /// `WHOAMI`.
    Whoami,
    /// `CLIENTS`.
    Clients,
    /// `STATS`.
    Stats,
    /// `PING`.
    Ping,
    /// `QUIT`.
    Quit,
    /// `AUTH <secret>`.
    Auth {
        /// The shared secret.
        secret: String,
    },
}

impl Request {
    /// `LOCK <name>` with no options.
    pub fn lock(name: impl Into<String>) -> Acquire {
        Acquire {
            name: name.into(),
            kind: LockKind::Exclusive,
            wait: None,
            hold: None,
            queue: None,
        }
    }

    /// `SHARE <name>` with no options (`max` none).
    pub fn share(name: impl Into<String>) -> Acquire {
        Acquire {
            name: name.into(),
            kind: LockKind::Shared { max: None },
            wait: None,
            hold: None,
            queue: None,
        }
    }

    /// The verb, uppercase.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Acquire(a) => match a.kind {
                LockKind::Exclusive => "LOCK",
                LockKind::Shared { .. } => "SHARE",
            },
            Request::Unlock { .. } => "UNLOCK",
            Request::Extend { .. } => "EXTEND",
            Request::Cancel { .. } => "CANCEL",
            Request::Reset => "RESET",
            Request::Inspect { .. } => "INSPECT",
            Request::List { .. } => "LIST",
            Request::Name { .. } => "NAME",
            Request::Whoami => "WHOAMI",
            Request::Clients => "CLIENTS",
            Request::Stats => "STATS",
            Request::Ping => "PING",
            Request::Quit => "QUIT",
            Request::Auth { .. } => "AUTH",
        }
    }
}
