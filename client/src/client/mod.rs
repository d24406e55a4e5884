//! The async client: one TCP connection carrying many concurrent requests, routed by
//! request id, with guards for holds and reconnection for new requests.
//!
//! # Invariants
//! - One connection has one reader task and one writer task (spawned on the tokio
//!   runtime that connected); callers queue requests into the connection's
//!   [`Session`] and wake the writer, the reader routes every reply line to its entry.
//! - A guard and its keep-alive talk only to the connection that granted the hold
//!   (a hold cannot move to another connection); only new requests reconnect.
//! - Dropping any pending request future tells the session ([`Session::abandon`]), so
//!   an acquire never leaves an orphan wait or hold.
//!
//! # Layout
//! - `options`: [`ConnectOptions`] and the connect and reconnect defaults.
//! - `connection`: one connection ([`Conn`]): its reader and writer tasks, the
//!   handshake, and the future of one request's reply.
//! - `builder`: [`LockBuilder`], a `LOCK` or `SHARE` being built and awaited.
//! - `guard`: [`Guard`], [`Extender`] and [`LostFuture`], a granted hold.
//! - `keepalive`: renewing a lease and watching its local deadline.

mod builder;
mod connection;
mod guard;
mod keepalive;
mod options;

pub use builder::LockBuilder;
pub use guard::{Extender, Guard, LostFuture};
pub use keepalive::MIN_KEEP_ALIVE_HOLD_MS;
pub use options::{
    ConnectOptions, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RECONNECT_ATTEMPTS,
};

use self::connection::{connect_once, Conn, ReplyFuture};
use crate::error::{Error, Result};
use crate::proto::{ClientInfo, LockInfo, LockSummary, Reply, Request, Stats, WhoAmI};
use std::sync::{Arc, Mutex};

struct ClientInner {
    addr: String,
    opts: ConnectOptions,
    current: Mutex<Arc<Conn>>,
    reconnect: tokio::sync::Mutex<()>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let conn = self.current.lock().unwrap_or_else(|e| e.into_inner());
        conn.shut_down();
    }
}

/// An async lockbox client: one connection shared by every clone and task.
///
/// Cloning is cheap and every clone uses the same connection; requests from many tasks
/// are pipelined on it and their replies routed by request id. Guards keep the client
/// alive; the connection closes when the last clone and the last guard are gone.
/// Methods spawn tasks on the current tokio runtime (connect inside one).
///
/// ```
/// # fn main() -> Result<(), lockbox_client::Error> {
/// # let server = lockbox::server::Server::bind(lockbox::config::Config {
/// #     listen: "127.0.0.1:0".parse().unwrap(),
/// #     ..Default::default()
/// # })?;
/// # let addr = server.local_addr().to_string();
/// # std::thread::spawn(move || server.run());
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use lockbox_client::Client;
///
/// let client = Client::connect(addr).await?;
/// let guard = client.lock("jobs:42").wait(2000).hold(30_000).await?;
/// println!("working on job 42 with fencing token {}", guard.token());
/// guard.release().await?;
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl Client {
    /// Connects to `addr` (`host:port`) with the default options.
    pub async fn connect(addr: impl Into<String>) -> Result<Client> {
        Client::connect_with(addr, ConnectOptions::new()).await
    }

    /// Connects to `addr` with `opts`. Fails with the server's error if `AUTH` or
    /// `NAME` is refused, [`Error::ConnectTimeout`] after the connect timeout.
    pub async fn connect_with(addr: impl Into<String>, opts: ConnectOptions) -> Result<Client> {
        opts.validate()?;
        let addr = addr.into();
        let conn = connect_once(&addr, &opts).await?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                addr,
                opts,
                current: Mutex::new(conn),
                reconnect: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// A client for `addr` that connects on its first request, not now (so it never
    /// fails here on a server that is down): that request connects with the backoff of
    /// a reconnect ([`ConnectOptions::reconnect_attempts`], [`ConnectOptions::backoff`])
    /// and fails with the last attempt's error. Options are checked now. No runtime is
    /// needed to create it; requests run on the runtime they are awaited on.
    pub fn connect_lazy(addr: impl Into<String>, opts: ConnectOptions) -> Result<Client> {
        opts.validate()?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                addr: addr.into(),
                opts,
                current: Mutex::new(Arc::new(Conn::unconnected())),
                reconnect: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The address this client connects to, as given.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    fn current(&self) -> Arc<Conn> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The live connection, reconnecting with backoff if it was lost.
    async fn conn(&self) -> Result<Arc<Conn>> {
        let c = self.current();
        if c.alive() {
            return Ok(c);
        }
        // Boxed: the reconnect future is large (connect, handshake, timers), and every
        // request's future would otherwise carry its size and copy it around.
        Box::pin(self.reconnect()).await
    }

    /// Replaces a lost connection (one caller at a time), with backoff.
    async fn reconnect(&self) -> Result<Arc<Conn>> {
        let _one_at_a_time = self.inner.reconnect.lock().await;
        let c = self.current();
        if c.alive() {
            return Ok(c);
        }
        let opts = &self.inner.opts;
        let mut delay = opts.backoff_initial;
        let mut attempt = 1;
        loop {
            match connect_once(&self.inner.addr, opts).await {
                Ok(conn) => {
                    *self.inner.current.lock().unwrap_or_else(|e| e.into_inner()) = conn.clone();
                    return Ok(conn);
                }
                // Retrying does not fix a refused secret or name.
                Err(e @ (Error::AuthFailed(_) | Error::AuthRequired(_) | Error::BadName(_))) => {
                    return Err(e)
                }
                Err(e) if attempt >= opts.reconnect_attempts => return Err(e),
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(opts.backoff_max);
                    attempt += 1;
                }
            }
        }
    }

    /// True while the current connection is up (a new request reconnects if not).
    pub fn is_connected(&self) -> bool {
        self.current().alive()
    }

    /// An exclusive lock on `name`: set options on the builder, then `.await` it for a
    /// [`Guard`]. Without `wait` it waits as long as the connection lives.
    pub fn lock(&self, name: impl Into<String>) -> LockBuilder {
        LockBuilder::new(self.clone(), Request::lock(name))
    }

    /// A shared lock on `name` (a read lock); with [`LockBuilder::max`], a counted one
    /// (a semaphore of `max` holders).
    pub fn share(&self, name: impl Into<String>) -> LockBuilder {
        LockBuilder::new(self.clone(), Request::share(name))
    }

    /// Sends any request and returns its typed reply. A grant obtained this way is not
    /// guarded: release it with [`Client::unlock`] and its token.
    pub async fn request(&self, req: Request) -> Result<Reply> {
        req.validate()?;
        let conn = self.conn().await?;
        let mut call = ReplyFuture::send(&conn, req);
        let reply = (&mut call).await?;
        if let (Reply::Granted(_), Some(id)) = (&reply, call.id()) {
            conn.session().forget(id);
        }
        Ok(reply)
    }

    /// `UNLOCK <name> [<token>]`.
    pub async fn unlock(&self, name: &str, token: Option<u64>) -> Result<()> {
        let req = Request::Unlock {
            name: name.to_string(),
            token,
        };
        expect_ok(self.request(req).await?)
    }

    /// `EXTEND <name> <token> hold=<ms>`.
    pub async fn extend(&self, name: &str, token: u64, hold_ms: u32) -> Result<()> {
        let req = Request::Extend {
            name: name.to_string(),
            token,
            hold: hold_ms,
        };
        expect_ok(self.request(req).await?)
    }

    /// `CANCEL <request-id>`: ends this connection's waits with that id; returns how
    /// many. (Dropping an acquire future cancels it; this is for ids you chose.)
    pub async fn cancel(&self, request_id: &str) -> Result<u64> {
        let req = Request::Cancel {
            id: request_id.to_string(),
        };
        match self.request(req).await? {
            Reply::Cancelled(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// `RESET`: releases every hold and cancels every wait of this connection; returns
    /// (released, cancelled). Guards of this connection report [`Lost::Reset`](crate::Lost::Reset).
    pub async fn reset(&self) -> Result<(u64, u64)> {
        match self.request(Request::Reset).await? {
            Reply::Reset {
                released,
                cancelled,
            } => Ok((released, cancelled)),
            other => Err(unexpected(other)),
        }
    }

    /// `INSPECT <name>`.
    pub async fn inspect(&self, name: &str) -> Result<LockInfo> {
        let req = Request::Inspect {
            name: name.to_string(),
        };
        match self.request(req).await? {
            Reply::Inspect(i) => Ok(i),
            other => Err(unexpected(other)),
        }
    }

    /// `LIST [<prefix>]`: locks with holders or waiters, sorted by name.
    pub async fn list(&self, prefix: Option<&str>) -> Result<Vec<LockSummary>> {
        let req = Request::List {
            prefix: prefix.map(str::to_string),
        };
        match self.request(req).await? {
            Reply::List(l) => Ok(l),
            other => Err(unexpected(other)),
        }
    }

    /// `NAME <name>` for the current connection (use [`ConnectOptions::name`] to
    /// name every connection, reconnects included).
    pub async fn set_name(&self, name: &str) -> Result<()> {
        let req = Request::Name {
            name: name.to_string(),
        };
        expect_ok(self.request(req).await?)
    }

    /// `WHOAMI`.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        match self.request(Request::Whoami).await? {
            Reply::Whoami(w) => Ok(w),
            other => Err(unexpected(other)),
        }
    }

    /// `CLIENTS`.
    pub async fn clients(&self) -> Result<Vec<ClientInfo>> {
        match self.request(Request::Clients).await? {
            Reply::Clients(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// `STATS`.
    pub async fn stats(&self) -> Result<Stats> {
        match self.request(Request::Stats).await? {
            Reply::Stats(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<()> {
        match self.request(Request::Ping).await? {
            Reply::Pong => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// `AUTH <secret>` on the current connection (use [`ConnectOptions::auth`] to
    /// authenticate every connection, reconnects included).
    pub async fn auth(&self, secret: &str) -> Result<()> {
        let req = Request::Auth {
            secret: secret.to_string(),
        };
        expect_ok(self.request(req).await?)
    }

    /// `QUIT`: the server answers and closes the connection, releasing its holds. A
    /// later request reconnects.
    pub async fn quit(&self) -> Result<()> {
        expect_ok(self.request(Request::Quit).await?)
    }
}

fn unexpected(r: Reply) -> Error {
    Error::Protocol(format!("unexpected reply {r:?}"))
}

fn expect_ok(r: Reply) -> Result<()> {
    match r {
        Reply::Ok => Ok(()),
        other => Err(unexpected(other)),
    }
}
