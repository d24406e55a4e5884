//! The same client without async, for threads and scripts.
//!
//! A facade over the async [`crate::Client`]: each blocking client starts one
//! background thread running a single-threaded tokio runtime that owns the connection
//! (its reader and writer tasks, keep-alives); calls hand their future to that runtime
//! and block the calling thread until it completes. [`Client`] is `Send + Sync` and
//! cheap to clone: many threads share one connection, their requests pipelined on it.
//!
//! Do not call these methods from inside an async runtime (they block the thread; use
//! the async client there).
//!
//! ```
//! # fn main() -> Result<(), lockbox_client::Error> {
//! # let server = lockbox::server::Server::bind(lockbox::config::Config {
//! #     listen: "127.0.0.1:0".parse().unwrap(),
//! #     ..Default::default()
//! # })?;
//! # let addr = server.local_addr().to_string();
//! # std::thread::spawn(move || server.run());
//! use lockbox_client::blocking::Client;
//!
//! let client = Client::connect(addr)?;
//! let workers: Vec<_> = (0..4)
//!     .map(|i| {
//!         let client = client.clone();
//!         std::thread::spawn(move || -> Result<u64, lockbox_client::Error> {
//!             let guard = client.lock("report").wait(5000).hold(10_000).acquire()?;
//!             // ... the work the lock protects ...
//!             let token = guard.token();
//!             guard.release()?;
//!             Ok(token)
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     println!("token {}", w.join().unwrap()?);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`Cluster`] is the same facade over [`crate::Cluster`]: one background runtime for
//! the clients of all its servers.
//!
//! # Invariants
//! - Every request runs on the one background runtime; the connection and its tasks
//!   live as long as any clone of the client or any guard.
//! - Dropping a guard releases its hold without blocking (the `UNLOCK` is queued for
//!   the background writer).

use crate::client::{self as async_client, ConnectOptions};
use crate::cluster as async_cluster;
use crate::error::{Error, Result};
use crate::proto::{ClientInfo, LockInfo, LockSummary, Reply, Request, Stats, WhoAmI};
use crate::session::Lost;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// The background runtime thread; stopped when the last client or guard drops.
#[derive(Debug)]
struct Runtime {
    handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Runtime {
    fn start() -> Result<Runtime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lockbox-client".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Runtime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `fut` on the runtime and blocks until it completes.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.blocking_recv().unwrap_or(Err(Error::ConnectionLost))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// A blocking lockbox client (see the module docs). `Send + Sync`; clones share the
/// connection.
#[derive(Clone)]
pub struct Client {
    inner: async_client::Client,
    rt: Arc<Runtime>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Client")
            .field("addr", &self.inner.addr())
            .finish()
    }
}

impl Client {
    /// Connects to `addr` with the default options.
    pub fn connect(addr: impl Into<String>) -> Result<Client> {
        Client::connect_with(addr, ConnectOptions::new())
    }

    /// Connects to `addr` with `opts`.
    pub fn connect_with(addr: impl Into<String>, opts: ConnectOptions) -> Result<Client> {
        let rt = Arc::new(Runtime::start()?);
        let addr = addr.into();
        let inner = rt.run(async_client::Client::connect_with(addr, opts))?;
        Ok(Client { inner, rt })
    }

    /// A client that connects on its first request (see [`crate::Client::connect_lazy`]).
    pub fn connect_lazy(addr: impl Into<String>, opts: ConnectOptions) -> Result<Client> {
        let inner = async_client::Client::connect_lazy(addr, opts)?;
        let rt = Arc::new(Runtime::start()?);
        Ok(Client { inner, rt })
    }

    /// The address this client connects to, as given.
    pub fn addr(&self) -> &str {
        self.inner.addr()
    }

    /// The async client behind this one (usable from async code on any runtime only
    /// through this client's runtime; mostly for inspection).
    pub fn as_async(&self) -> &async_client::Client {
        &self.inner
    }

    fn call<T: Send + 'static, F>(&self, f: impl FnOnce(async_client::Client) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
    {
        self.rt.run(f(self.inner.clone()))
    }

    /// An exclusive lock on `name`; finish with [`LockBuilder::acquire`].
    pub fn lock(&self, name: impl Into<String>) -> LockBuilder {
        LockBuilder {
            client: self.clone(),
            inner: self.inner.lock(name),
        }
    }

    /// A shared lock on `name` (with [`LockBuilder::max`], a counted one).
    pub fn share(&self, name: impl Into<String>) -> LockBuilder {
        LockBuilder {
            client: self.clone(),
            inner: self.inner.share(name),
        }
    }

    /// Any request, typed reply (see [`crate::Client::request`]).
    pub fn request(&self, req: Request) -> Result<Reply> {
        self.call(|c| async move { c.request(req).await })
    }

    /// `UNLOCK <name> [<token>]`.
    pub fn unlock(&self, name: &str, token: Option<u64>) -> Result<()> {
        let name = name.to_string();
        self.call(|c| async move { c.unlock(&name, token).await })
    }

    /// `EXTEND <name> <token> hold=<ms>`.
    pub fn extend(&self, name: &str, token: u64, hold_ms: u32) -> Result<()> {
        let name = name.to_string();
        self.call(|c| async move { c.extend(&name, token, hold_ms).await })
    }

    /// `CANCEL <request-id>`.
    pub fn cancel(&self, request_id: &str) -> Result<u64> {
        let id = request_id.to_string();
        self.call(|c| async move { c.cancel(&id).await })
    }

    /// `RESET`: (released, cancelled).
    pub fn reset(&self) -> Result<(u64, u64)> {
        self.call(|c| async move { c.reset().await })
    }

    /// `INSPECT <name>`.
    pub fn inspect(&self, name: &str) -> Result<LockInfo> {
        let name = name.to_string();
        self.call(|c| async move { c.inspect(&name).await })
    }

    /// `LIST [<prefix>]`.
    pub fn list(&self, prefix: Option<&str>) -> Result<Vec<LockSummary>> {
        let prefix = prefix.map(str::to_string);
        self.call(|c| async move { c.list(prefix.as_deref()).await })
    }

    /// `NAME <name>` for the current connection.
    pub fn set_name(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.call(|c| async move { c.set_name(&name).await })
    }

    /// `WHOAMI`.
    pub fn whoami(&self) -> Result<WhoAmI> {
        self.call(|c| async move { c.whoami().await })
    }

    /// `CLIENTS`.
    pub fn clients(&self) -> Result<Vec<ClientInfo>> {
        self.call(|c| async move { c.clients().await })
    }

    /// `STATS`.
    pub fn stats(&self) -> Result<Stats> {
        self.call(|c| async move { c.stats().await })
    }

    /// `PING`.
    pub fn ping(&self) -> Result<()> {
        self.call(|c| async move { c.ping().await })
    }

    /// `AUTH <secret>` on the current connection.
    pub fn auth(&self, secret: &str) -> Result<()> {
        let secret = secret.to_string();
        self.call(|c| async move { c.auth(&secret).await })
    }

    /// `QUIT`.
    pub fn quit(&self) -> Result<()> {
        self.call(|c| async move { c.quit().await })
    }
}

/// A `LOCK` or `SHARE` being built; [`LockBuilder::acquire`] blocks for the [`Guard`].
#[must_use = "a lock request does nothing until acquired"]
#[derive(Debug)]
pub struct LockBuilder {
    client: Client,
    inner: async_client::LockBuilder,
}

impl LockBuilder {
    /// See [`crate::LockBuilder::wait`].
    pub fn wait(mut self, ms: u32) -> Self {
        self.inner = self.inner.wait(ms);
        self
    }
    /// See [`crate::LockBuilder::hold`].
    pub fn hold(mut self, ms: u32) -> Self {
        self.inner = self.inner.hold(ms);
        self
    }
    /// See [`crate::LockBuilder::queue`].
    pub fn queue(mut self, n: u32) -> Self {
        self.inner = self.inner.queue(n);
        self
    }
    /// See [`crate::LockBuilder::max`].
    pub fn max(mut self, n: u32) -> Self {
        self.inner = self.inner.max(n);
        self
    }
    /// See [`crate::LockBuilder::keep_alive`].
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.inner = self.inner.keep_alive(on);
        self
    }

    /// Sends the request and blocks until it is granted or fails.
    pub fn acquire(self) -> Result<Guard> {
        let LockBuilder { client, inner } = self;
        let guard = client.rt.run(async move { inner.await })?;
        Ok(Guard {
            inner: Some(guard),
            rt: client.rt.clone(),
        })
    }
}

/// A granted lock; dropping it releases the hold.
#[must_use = "dropping a guard releases the lock at once"]
#[derive(Debug)]
pub struct Guard {
    inner: Option<async_client::Guard>,
    rt: Arc<Runtime>,
}

impl Guard {
    fn g(&self) -> &async_client::Guard {
        self.inner.as_ref().expect("guard present until consumed")
    }

    /// The fencing token.
    pub fn token(&self) -> u64 {
        self.g().token()
    }

    /// The lock name.
    pub fn name(&self) -> &str {
        self.g().name()
    }

    /// For shared locks: the shared holds at the grant, this one included.
    pub fn holders(&self) -> Option<u64> {
        self.g().holders()
    }

    /// Until when the client can vouch for the hold (see [`crate::Guard::valid_until`]).
    pub fn valid_until(&self) -> Option<std::time::Instant> {
        self.g().valid_until()
    }

    /// A handle that extends this hold from another thread (see
    /// [`crate::Guard::extender`]).
    pub fn extender(&self) -> Extender {
        Extender {
            inner: self.g().extender(),
            rt: self.rt.clone(),
        }
    }

    /// Resets the hold's deadline to now + `hold_ms`.
    pub fn extend(&self, hold_ms: u32) -> Result<()> {
        let e = self.g().extender();
        self.rt.run(async move { e.extend(hold_ms).await })
    }

    /// Releases the lock and waits for the answer (see [`crate::Guard::release`]).
    pub fn release(mut self) -> Result<()> {
        let g = self.inner.take().expect("guard present until consumed");
        self.rt.run(g.release())
    }

    /// Gives up the guard without releasing; returns the token.
    pub fn detach(mut self) -> u64 {
        self.inner
            .take()
            .expect("guard present until consumed")
            .detach()
    }

    /// Stops the keep-alive, if any.
    pub fn stop_keep_alive(&mut self) {
        if let Some(g) = self.inner.as_mut() {
            g.stop_keep_alive();
        }
    }

    /// Why the hold is gone, if it is.
    pub fn is_lost(&self) -> Option<Lost> {
        self.g().is_lost()
    }

    /// Blocks until the hold is lost, at most `timeout`; `None` if it is still held.
    pub fn wait_lost(&self, timeout: Duration) -> Option<Lost> {
        let lost = self.g().lost();
        self.rt
            .run(async move { Ok(tokio::time::timeout(timeout, lost).await.ok()) })
            .unwrap_or(Some(Lost::ConnectionLost))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The async guard's drop queues the UNLOCK; it does not block.
        self.inner.take();
    }
}

/// Extends one guard's hold from any thread without borrowing the guard (see
/// [`Guard::extender`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Extender {
    inner: async_client::Extender,
    rt: Arc<Runtime>,
}

impl Extender {
    /// [`Guard::extend`] for the guard this came from.
    pub fn extend(&self, hold_ms: u32) -> Result<()> {
        let e = self.inner.clone();
        self.rt.run(async move { e.extend(hold_ms).await })
    }

    /// The fencing token of the hold it extends.
    pub fn token(&self) -> u64 {
        self.inner.token()
    }
}

/// A blocking [`crate::Cluster`]: N servers, each name routed to one; every server's
/// client connects on its first request. `Send + Sync`, cheap to clone.
///
/// ```
/// # fn main() -> Result<(), lockbox_client::Error> {
/// # let mut servers = Vec::new();
/// # for _ in 0..2 {
/// #     let server = lockbox::server::Server::bind(lockbox::config::Config {
/// #         listen: "127.0.0.1:0".parse().unwrap(),
/// #         ..Default::default()
/// #     })?;
/// #     servers.push(server.local_addr().to_string());
/// #     std::thread::spawn(move || server.run());
/// # }
/// use lockbox_client::blocking::Cluster;
///
/// let cluster = Cluster::connect(servers)?;
/// let guard = cluster.lock("jobs:42").wait(2000).acquire()?;
/// let home = &cluster.servers()[cluster.route("jobs:42")];
/// println!("jobs:42 is held on {home} with token {}", guard.token());
/// guard.release()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: async_cluster::Cluster,
    clients: Vec<Client>,
}

impl Cluster {
    /// A cluster of `servers` with the default options.
    pub fn connect<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Result<Cluster> {
        Cluster::connect_with(servers, ConnectOptions::new())
    }

    /// A cluster of `servers` with `opts`; nothing is connected yet (see
    /// [`crate::Cluster::connect_with`]).
    pub fn connect_with<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        opts: ConnectOptions,
    ) -> Result<Cluster> {
        let inner = async_cluster::Cluster::new(servers, opts)?;
        let rt = Arc::new(Runtime::start()?);
        let clients = inner
            .clients()
            .iter()
            .map(|c| Client {
                inner: c.clone(),
                rt: rt.clone(),
            })
            .collect();
        Ok(Cluster { inner, clients })
    }

    /// The async cluster behind this one.
    pub fn as_async(&self) -> &async_cluster::Cluster {
        &self.inner
    }

    /// The server addresses, in the order given (the order of [`Cluster::route`]).
    pub fn servers(&self) -> &[String] {
        self.inner.servers()
    }

    /// The index of the server that owns `name`.
    pub fn route(&self, name: &str) -> usize {
        self.inner.route(name)
    }

    async_cluster::routed_methods!();
}
