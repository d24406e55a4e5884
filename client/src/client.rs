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

use crate::error::{Error, Result};
use crate::proto::{
    Acquire, ClientInfo, Grant, LockInfo, LockKind, LockSummary, Reply, Request, Stats, WhoAmI,
};
use crate::session::{Lease, Lost, Session};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// Default connect timeout (TCP connect plus the AUTH/NAME/PING handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of connection attempts a new request makes after a connection is lost.
pub const DEFAULT_RECONNECT_ATTEMPTS: u32 = 6;
/// First delay between reconnect attempts; it doubles after each failure.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// Longest delay between reconnect attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// A kept-alive lease is renewed this many times per `hold`.
const KEEP_ALIVE_PER_HOLD: u32 = 3;
/// Shortest `hold` that can be kept alive: the client vouches for a lease only
/// [`crate::session::LEASE_MARGIN`] short of `hold`, and a renewal must make a round
/// trip within the rest.
pub const MIN_KEEP_ALIVE_HOLD_MS: u32 = 30;

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
    auth: Option<String>,
    name: Option<String>,
    connect_timeout: Duration,
    reconnect_attempts: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
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
    /// a [`Client::connect_lazy`] client, was never made).
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

    fn validate(&self) -> Result<()> {
        if let Some(s) = &self.auth {
            Request::Auth { secret: s.clone() }.validate()?;
        }
        if let Some(n) = &self.name {
            Request::Name { name: n.clone() }.validate()?;
        }
        Ok(())
    }
}

/// One connection: its session, the writer's wake-up, and whether it lives.
pub(crate) struct Conn {
    session: Mutex<Session>,
    write: Notify,
    alive: AtomicBool,
    /// Set when the client is gone: the writer flushes and shuts the socket down.
    shutdown: AtomicBool,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            session: Mutex::new(Session::new()),
            write: Notify::new(),
            alive: AtomicBool::new(true),
            shutdown: AtomicBool::new(false),
        }
    }

    pub(crate) fn session(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock cannot leave the session half-updated in a way
        // that matters more than losing the connection; keep going.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection that never was: the first request of a lazy client replaces it.
    fn unconnected() -> Conn {
        let c = Conn::new();
        c.alive.store(false, Ordering::Release);
        c.session().close(&mut Vec::new());
        c
    }

    fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Queues a request and wakes the writer. Only the request that finds the queue
    /// empty wakes it: whoever queued the bytes already there woke it after queueing
    /// them, and the writer takes everything queued when it runs.
    fn submit(&self, req: Request) -> Result<u64> {
        let (id, first) = {
            let mut s = self.session();
            let first = s.out_is_empty();
            (s.submit(req)?, first)
        };
        if first {
            self.write.notify_one();
        }
        Ok(id)
    }

    /// Sends `req` and waits for its reply.
    pub(crate) async fn call(&self, req: Request) -> Result<Reply> {
        ReplyFuture::send(self, req).await
    }

    /// Runs a session operation that may queue bytes, then wakes the writer.
    pub(crate) fn with_session(&self, f: impl FnOnce(&mut Session)) {
        f(&mut self.session());
        self.write.notify_one();
    }

    /// The connection is gone: fail everything pending, lose every hold.
    fn fail(&self) {
        self.alive.store(false, Ordering::Release);
        let mut wake = Vec::new();
        self.session().close(&mut wake);
        self.write.notify_one();
        wake.into_iter().for_each(Waker::wake);
    }

    fn shut_down(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.write.notify_one();
    }
}

async fn writer(conn: Arc<Conn>, mut w: OwnedWriteHalf) {
    let mut buf = Vec::new();
    loop {
        let (had, closed) = {
            let mut s = conn.session();
            (s.take_out(&mut buf), s.is_closed())
        };
        if closed {
            break;
        }
        if !had {
            if conn.shutdown.load(Ordering::Acquire) {
                break;
            }
            conn.write.notified().await;
            continue;
        }
        if w.write_all(&buf).await.is_err() {
            conn.fail();
            break;
        }
        buf.clear();
    }
    // Dropping the write half shuts the socket's write side down: the server answers
    // what it got, then closes, and the reader sees the end.
    let _ = w.shutdown().await;
}

async fn reader(conn: Arc<Conn>, mut r: OwnedReadHalf) {
    let mut lines = crate::proto::LineBuffer::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut wake = Vec::new();
    'read: loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lines.extend(&chunk[..n]);
        let (broken, queued) = {
            let mut s = conn.session();
            let broken = match lines.complete_lines() {
                Ok(block) => s.on_lines(block, &mut wake).is_err(),
                Err(_) => true,
            };
            (broken, !s.out_is_empty())
        };
        // The woken tasks run first and queue their next requests; the writer, woken
        // after them, sends them all in one write.
        wake.drain(..).for_each(Waker::wake);
        // Replies may have queued requests (an UNLOCK of a grant nobody took).
        if queued {
            conn.write.notify_one();
        }
        if broken {
            break 'read;
        }
    }
    conn.fail();
}

/// Connects once: TCP (with TCP_NODELAY), tasks, then `AUTH`, `NAME` and `PING`
/// pipelined, all within the connect timeout.
async fn connect_once(addr: &str, opts: &ConnectOptions) -> Result<Arc<Conn>> {
    let timeout = opts.connect_timeout;
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(Error::ConnectTimeout(addr.to_string())),
        Ok(r) => r?,
    };
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    let conn = Arc::new(Conn::new());
    tokio::spawn(reader(conn.clone(), r));
    tokio::spawn(writer(conn.clone(), w));
    let handshake = async {
        let mut ids = Vec::new();
        if let Some(secret) = &opts.auth {
            ids.push(conn.submit(Request::Auth {
                secret: secret.clone(),
            })?);
        }
        if let Some(name) = &opts.name {
            ids.push(conn.submit(Request::Name { name: name.clone() })?);
        }
        ids.push(conn.submit(Request::Ping)?);
        for id in ids {
            ReplyFuture::sent(&conn, id).await?;
        }
        Ok::<_, Error>(())
    };
    let result = match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err(Error::ConnectTimeout(addr.to_string())),
        Ok(r) => r,
    };
    match result {
        Ok(()) => Ok(conn),
        Err(e) => {
            conn.shut_down();
            conn.fail();
            Err(e)
        }
    }
}

/// Sends one request (on its first poll) and waits for its reply; dropping it after
/// the request was queued abandons the request.
///
/// Queueing on the first poll takes the session lock once for what would otherwise be
/// a submit and a first poll (queue the line, register the waker), and lets a guard's
/// release forget its entry in the same step.
pub(crate) struct ReplyFuture<'a> {
    conn: &'a Conn,
    call: Call,
    /// For an acquire whose caller keeps the name: set with the grant.
    name: Option<String>,
    take_name: bool,
}

enum Call {
    /// Not queued yet. `forget`: an entry to drop when it is (a released hold's).
    Unsent { req: Request, forget: Option<u64> },
    /// Queued with this id; the reply is not taken yet.
    Sent(u64),
    /// The reply was taken (or queueing failed).
    Done(Option<u64>),
}

impl<'a> ReplyFuture<'a> {
    /// A request to queue when first polled.
    fn send(conn: &'a Conn, req: Request) -> Self {
        ReplyFuture {
            conn,
            call: Call::Unsent { req, forget: None },
            name: None,
            take_name: false,
        }
    }

    /// The reply to a request already queued as `id`.
    fn sent(conn: &'a Conn, id: u64) -> Self {
        ReplyFuture {
            conn,
            call: Call::Sent(id),
            name: None,
            take_name: false,
        }
    }

    /// Also forgets session entry `id` when the request is queued.
    fn forgetting(mut self, id: u64) -> Self {
        if let Call::Unsent { forget, .. } = &mut self.call {
            *forget = Some(id);
        }
        self
    }

    /// For an acquire: with the grant, move the lock name out of the session entry
    /// (see [`ReplyFuture::take_name`]).
    fn taking_name(mut self) -> Self {
        self.take_name = true;
        self
    }

    /// The request id, once queued.
    fn id(&self) -> Option<u64> {
        match self.call {
            Call::Unsent { .. } => None,
            Call::Sent(id) => Some(id),
            Call::Done(id) => id,
        }
    }

    /// The lock name handed over with a grant (with [`ReplyFuture::taking_name`]).
    fn take_name(&mut self) -> Option<String> {
        self.name.take()
    }
}

impl Future for ReplyFuture<'_> {
    type Output = Result<Reply>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Reply>> {
        let this = &mut *self;
        let mut s = this.conn.session();
        let id = match std::mem::replace(&mut this.call, Call::Done(None)) {
            Call::Unsent { req, forget } => {
                if let Some(f) = forget {
                    s.forget(f);
                }
                // Only the request that finds the queue empty wakes the writer: whoever
                // queued the bytes already there woke it, and it takes everything.
                let first = s.out_is_empty();
                let id = match s.submit_waiting(req, cx.waker()) {
                    Ok(id) => id,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                drop(s);
                this.call = Call::Sent(id);
                if first {
                    this.conn.write.notify_one();
                }
                return Poll::Pending;
            }
            Call::Sent(id) => id,
            Call::Done(_) => {
                return Poll::Ready(Err(Error::Protocol(
                    "reply polled after it was taken".into(),
                )))
            }
        };
        let r = if this.take_name {
            s.poll_grant(id, cx, &mut this.name)
        } else {
            s.poll_reply(id, cx)
        };
        this.call = if r.is_ready() {
            Call::Done(Some(id))
        } else {
            Call::Sent(id)
        };
        r
    }
}

impl Drop for ReplyFuture<'_> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.call, Call::Done(None)) {
            Call::Sent(id) => self.conn.with_session(|s| s.abandon(id)),
            // Never queued; a release that never ran still releases (in the background).
            Call::Unsent {
                req,
                forget: Some(f),
            } => self.conn.with_session(|s| {
                s.forget(f);
                s.submit_detached(req);
            }),
            Call::Unsent { forget: None, .. } | Call::Done(_) => {}
        }
    }
}

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
    /// (released, cancelled). Guards of this connection report [`Lost::Reset`].
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

/// A `LOCK` or `SHARE` being built; `.await` it for a [`Guard`].
///
/// Dropping the future before it completes (a `select!`, a `timeout`, an aborted task)
/// sends `CANCEL` for the request; a grant that crossed the `CANCEL` is released at
/// once.
#[must_use = "a lock request does nothing until awaited"]
#[derive(Debug)]
pub struct LockBuilder {
    client: Client,
    acquire: Acquire,
    max: Option<u32>,
    keep_alive: bool,
}

impl LockBuilder {
    fn new(client: Client, acquire: Acquire) -> Self {
        LockBuilder {
            client,
            acquire,
            max: None,
            keep_alive: false,
        }
    }

    /// Wait at most `ms` for the lock (`0`: try once); then [`Error::Timeout`].
    pub fn wait(mut self, ms: u32) -> Self {
        self.acquire.wait = Some(ms);
        self
    }

    /// A lease: the server takes the lock back `ms` after the grant (the guard then
    /// reports [`Lost::Expired`]) unless extended.
    pub fn hold(mut self, ms: u32) -> Self {
        self.acquire.hold = Some(ms);
        self
    }

    /// Fail with [`Error::QueueFull`] instead of waiting behind `n` or more waiters.
    pub fn queue(mut self, n: u32) -> Self {
        self.acquire.queue = Some(n);
        self
    }

    /// For [`Client::share`]: at most `n` (>= 1) shared holders, a counting semaphore.
    /// On an exclusive lock this is a [`Error::BadOption`].
    pub fn max(mut self, n: u32) -> Self {
        self.max = Some(n);
        self
    }

    /// With a `hold` (of at least [`MIN_KEEP_ALIVE_HOLD_MS`]): while the guard lives,
    /// send `EXTEND` every `hold / 3`, so a live client keeps the lock and a dead or
    /// cut-off one loses it within `hold`. The client knows it too: when no renewal is
    /// confirmed before [`Guard::valid_until`] (the network is cut, and neither
    /// `EXPIRED` nor a close can arrive), the guard reports [`Lost::LeaseUnconfirmed`].
    /// A grant that came late in its first lease (after a long wait) is confirmed with
    /// an `EXTEND` before the guard is returned ([`Error::LeaseUnconfirmed`] if no
    /// answer comes in time).
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.keep_alive = on;
        self
    }

    async fn run(self) -> Result<Guard> {
        let LockBuilder {
            client,
            mut acquire,
            max,
            keep_alive,
        } = self;
        if let Some(n) = max {
            match acquire.kind {
                LockKind::Shared { .. } => acquire.kind = LockKind::Shared { max: Some(n) },
                LockKind::Exclusive => {
                    return Err(Error::BadOption("max= is only for shared locks".into()))
                }
            }
        }
        let hold = acquire.hold;
        let keep_alive = match (keep_alive, hold) {
            (false, _) => None,
            (true, Some(h)) if h >= MIN_KEEP_ALIVE_HOLD_MS => Some(h),
            (true, Some(_)) => {
                return Err(Error::BadOption(format!(
                    "keep_alive needs a hold= of at least {MIN_KEEP_ALIVE_HOLD_MS} ms"
                )))
            }
            (true, None) => {
                return Err(Error::BadOption(
                    "keep_alive needs a hold= to keep alive".into(),
                ))
            }
        };
        let req = Request::Acquire(acquire);
        req.validate()?;
        let conn = client.conn().await?;
        // Queued no earlier than this: the server's deadline is later than `sent + hold`.
        let sent = hold.map(|_| Instant::now());
        // The request's entry keeps the name (to give back a grant nobody takes) until
        // the grant is taken; the guard owns it from then on.
        let mut call = ReplyFuture::send(&conn, req).taking_name();
        let reply = (&mut call).await?;
        let (id, name) = (call.id(), call.take_name());
        drop(call);
        let (Some(id), Reply::Granted(grant), Some(name)) = (id, &reply, name) else {
            if let Some(id) = id {
                conn.session().forget(id);
            }
            return Err(unexpected(reply));
        };
        let grant = *grant;
        if let (Some(sent), Some(h)) = (sent, hold) {
            conn.session()
                .confirm_lease(id, Lease::new(sent, millis(h)));
        }
        let mut guard = Guard::new(client, conn, id, name, grant);
        if let Some(h) = keep_alive {
            // Dropping this future from here on drops the guard, which releases. Boxed:
            // the confirmation's timer would otherwise enlarge every lock future.
            Box::pin(guard.start_keep_alive(h)).await?;
        }
        Ok(guard)
    }
}

impl IntoFuture for LockBuilder {
    type Output = Result<Guard>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Guard>> + Send>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// How often a kept-alive lease of `hold` ms is renewed.
fn keep_alive_period(hold: u32) -> Duration {
    millis((hold / KEEP_ALIVE_PER_HOLD).max(1))
}

/// A granted lock. Dropping it releases the hold (`UNLOCK <name> <token>`, sent in the
/// background); [`Guard::release`] does the same and waits for the answer.
#[must_use = "dropping a guard releases the lock at once"]
pub struct Guard {
    client: Client,
    conn: Arc<Conn>,
    id: u64,
    name: String,
    grant: Grant,
    armed: bool,
    keep_alive: Option<AbortHandle>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("name", &self.name)
            .field("token", &self.grant.token)
            .field("holders", &self.grant.holders)
            .finish()
    }
}

impl Guard {
    fn new(client: Client, conn: Arc<Conn>, id: u64, name: String, grant: Grant) -> Guard {
        Guard {
            client,
            conn,
            id,
            name,
            grant,
            armed: true,
            keep_alive: None,
        }
    }

    /// Starts the keep-alive of a `hold` ms lease. A grant that came late in its first
    /// lease (after a wait, the server's deadline counts from a moment the client does
    /// not know) is confirmed first with an `EXTEND` sent now: [`Error::NotHeld`] if
    /// it is already gone, [`Error::LeaseUnconfirmed`] if no answer came within that
    /// `EXTEND`'s own lease.
    async fn start_keep_alive(&mut self, hold: u32) -> Result<()> {
        let every = keep_alive_period(hold);
        let due = self.conn.session().lease(self.id).map(|l| l.sent + every);
        if due.is_none_or(|due| Instant::now() >= due) {
            let until = Lease::new(Instant::now(), millis(hold)).until;
            match tokio::time::timeout_at(until.into(), self.extend(hold)).await {
                Ok(r) => r?,
                Err(_) => return Err(Error::LeaseUnconfirmed),
            }
        }
        let task = keep_alive_loop(
            self.conn.clone(),
            self.id,
            self.name.clone(),
            self.grant.token,
            hold,
        );
        self.keep_alive = Some(tokio::spawn(task).abort_handle());
        Ok(())
    }

    /// The fencing token: strictly increasing over every grant of the server. Pass it
    /// to the storage you protect and have it refuse writes with an older token.
    pub fn token(&self) -> u64 {
        self.grant.token
    }

    /// The lock name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// For shared locks: the shared holds at the grant, this one included.
    pub fn holders(&self) -> Option<u64> {
        self.grant.holders
    }

    /// The client this guard came from.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Until when the client can vouch for the hold, by its own clock: the send time of
    /// the last confirmed request that set its deadline (the grant's `LOCK`/`SHARE`, or
    /// an `EXTEND`) plus that `hold`, less [`crate::session::LEASE_MARGIN`]. The server's
    /// deadline is later. `None` for a hold without a deadline (it lasts as long as the
    /// connection). Check it before a write the lock protects when a partition is
    /// possible; a kept-alive guard reports [`Lost::LeaseUnconfirmed`] when it passes.
    pub fn valid_until(&self) -> Option<std::time::Instant> {
        self.conn.session().lease(self.id).map(|l| l.until)
    }

    /// Resets the hold's deadline to now + `hold_ms` (also gives a hold without one a
    /// deadline), and moves [`Guard::valid_until`] on when the server confirms.
    /// [`Error::NotHeld`] if the hold is already gone (the guard then reports
    /// [`Lost::Expired`]).
    pub async fn extend(&self, hold_ms: u32) -> Result<()> {
        extend_hold(
            &self.conn,
            self.id,
            self.name.clone(),
            self.grant.token,
            hold_ms,
        )
        .await
    }

    /// A handle that extends this hold without borrowing the guard: clone it into the
    /// task that renews the lease. It does nothing useful once the guard is gone (the
    /// server answers [`Error::NotHeld`]).
    pub fn extender(&self) -> Extender {
        Extender {
            conn: self.conn.clone(),
            id: self.id,
            name: self.name.clone(),
            token: self.grant.token,
        }
    }

    /// Releases the lock and waits for the server's answer. [`Error::NotHeld`] means
    /// the hold was already gone (it expired); [`Error::ConnectionLost`] that the
    /// connection died (which released it).
    pub async fn release(mut self) -> Result<()> {
        self.stop_keep_alive();
        self.armed = false;
        let req = Request::Unlock {
            name: std::mem::take(&mut self.name),
            token: Some(self.grant.token),
        };
        // The entry goes when the UNLOCK is queued, in the same step.
        expect_ok(
            ReplyFuture::send(&self.conn, req)
                .forgetting(self.id)
                .await?,
        )
    }

    /// Gives up the guard without releasing: the hold stays until its `hold` runs out,
    /// an explicit `UNLOCK` with [`Guard::token`], or the connection closes. Returns
    /// the token.
    pub fn detach(mut self) -> u64 {
        self.stop_keep_alive();
        self.armed = false;
        let id = self.id;
        self.conn.session().forget(id);
        self.grant.token
    }

    /// Stops the keep-alive (if any) and with it the watch on the local lease deadline:
    /// the hold then runs out `hold` ms after the last `EXTEND`, and the guard learns it
    /// from the server's `EXPIRED`. Tests use it to play a stuck client.
    pub fn stop_keep_alive(&mut self) {
        if let Some(h) = self.keep_alive.take() {
            h.abort();
        }
    }

    /// Why the hold is gone, if it is. A kept-alive guard whose lease ran out
    /// unconfirmed says [`Lost::LeaseUnconfirmed`] from that moment on.
    pub fn is_lost(&self) -> Option<Lost> {
        if self.keep_alive.is_some() {
            let mut wake = Vec::new();
            self.conn
                .session()
                .check_lease(self.id, Instant::now(), &mut wake);
            wake.into_iter().for_each(Waker::wake);
        }
        self.conn.session().lost(self.id)
    }

    /// Completes when the hold is lost: [`Lost::Expired`] when its `hold` ran out (or
    /// an `EXTEND` found it gone), [`Lost::Reset`] after a `RESET`,
    /// [`Lost::ConnectionLost`] when the connection died, [`Lost::LeaseUnconfirmed`]
    /// when a kept-alive lease passed [`Guard::valid_until`] without a confirmed renewal
    /// (a cut network), and [`Lost::Released`] (for a future moved elsewhere) once the
    /// guard released the hold itself. Stop the work the lock protects when it does.
    /// The future owns what it needs, so it can be moved into another task.
    pub fn lost(&self) -> LostFuture {
        LostFuture {
            conn: self.conn.clone(),
            id: self.id,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_keep_alive();
        if self.armed {
            let (id, token, name) = (self.id, self.grant.token, std::mem::take(&mut self.name));
            self.conn
                .with_session(|s| s.release_detached(id, name, token));
        }
    }
}

/// Extends one guard's hold from anywhere, without borrowing the guard (see
/// [`Guard::extender`]). Cheap to clone.
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
/// let client = lockbox_client::Client::connect(addr).await?;
/// let guard = client.lock("report").hold(10_000).await?;
/// let extender = guard.extender();
/// // A task of its own renews the lease while this one works.
/// let renew = tokio::spawn(async move { extender.extend(10_000).await });
/// renew.await.unwrap()?;
/// assert!(guard.valid_until().is_some());
/// guard.release().await?;
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone)]
pub struct Extender {
    conn: Arc<Conn>,
    id: u64,
    name: String,
    token: u64,
}

impl std::fmt::Debug for Extender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extender")
            .field("name", &self.name)
            .field("token", &self.token)
            .finish()
    }
}

impl Extender {
    /// [`Guard::extend`] for the guard this came from.
    pub async fn extend(&self, hold_ms: u32) -> Result<()> {
        extend_hold(&self.conn, self.id, self.name.clone(), self.token, hold_ms).await
    }

    /// The fencing token of the hold it extends.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// `EXTEND <name> <token> hold=<ms>` for hold `id`; records the confirmed lease, or the
/// loss when the server no longer has the hold.
async fn extend_hold(conn: &Conn, id: u64, name: String, token: u64, hold_ms: u32) -> Result<()> {
    let sent = Instant::now();
    let req = Request::Extend {
        name,
        token,
        hold: hold_ms,
    };
    match conn.call(req).await {
        Ok(Reply::Ok) => {
            conn.session()
                .confirm_lease(id, Lease::new(sent, millis(hold_ms)));
            Ok(())
        }
        Ok(other) => Err(unexpected(other)),
        Err(e @ Error::NotHeld(_)) => {
            let mut wake = Vec::new();
            conn.session()
                .mark_lost(id, Lost::Expired(token), &mut wake);
            wake.into_iter().for_each(Waker::wake);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Completes when a guard's hold is lost (see [`Guard::lost`]).
pub struct LostFuture {
    conn: Arc<Conn>,
    id: u64,
}

impl Future for LostFuture {
    type Output = Lost;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Lost> {
        self.conn.session().poll_lost(self.id, cx)
    }
}

/// Runs `fut` while hold `id` is held and its lease has not run out; `None` (and the
/// hold marked [`Lost::LeaseUnconfirmed`] if that is why) once it is not.
async fn watch_lease<F: Future>(conn: &Conn, id: u64, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    loop {
        let mut wake = Vec::new();
        let until = conn.session().check_lease(id, Instant::now(), &mut wake);
        wake.into_iter().for_each(Waker::wake);
        let sleep = tokio::time::sleep_until(until?.into());
        let mut sleep = std::pin::pin!(sleep);
        let done = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => sleep.as_mut().poll(cx).map(|()| None),
        })
        .await;
        if done.is_some() {
            return done;
        }
    }
}

/// Renews a `hold` ms lease every `hold / 3` and watches its local deadline: when no
/// renewal sent in the last `hold` was confirmed by then, the hold is marked
/// [`Lost::LeaseUnconfirmed`] and the loop ends.
async fn keep_alive_loop(conn: Arc<Conn>, id: u64, name: String, token: u64, hold: u32) {
    let every = keep_alive_period(hold);
    let Some(lease) = conn.session().lease(id) else {
        return;
    };
    let mut next = lease.sent + every;
    loop {
        if watch_lease(&conn, id, tokio::time::sleep_until(next.into()))
            .await
            .is_none()
        {
            return;
        }
        let sent = Instant::now();
        let renewal = extend_hold(&conn, id, name.clone(), token, hold);
        match watch_lease(&conn, id, renewal).await {
            None => return,
            Some(Ok(())) => next = sent + every,
            // The hold is gone (marked lost by then); nothing to renew.
            Some(Err(_)) if !conn.alive() || conn.session().lost(id).is_some() => return,
            // Anything else: try again; the lease deadline still bounds the wait.
            Some(Err(_)) => next = Instant::now() + every,
        }
    }
}
