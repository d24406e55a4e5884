//! A Rust client for lockbox: async and blocking clients, lock guards with fencing
//! tokens, kept-alive leases, and sharding over several servers.
//!
//! ```
//! # fn main() -> Result<(), lockbox_client::Error> {
//! # let server = lockbox::server::Server::bind(lockbox::config::Config {
//! #     listen: "127.0.0.1:0".parse().unwrap(),
//! #     ..Default::default()
//! # })?;
//! # let addr = server.local_addr().to_string();
//! # std::thread::spawn(move || server.run());
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use lockbox_client::{Client, Error};
//!
//! let client = Client::connect(addr).await?;
//! // Wait up to 2 s for the lock; the server takes it back 30 s after the grant.
//! let guard = client.lock("jobs:42").wait(2000).hold(30_000).await?;
//! println!("job 42 is ours, fencing token {}", guard.token());
//!
//! // Somebody else trying at the same time gets a timeout.
//! let other = client.lock("jobs:42").wait(0).await;
//! assert!(matches!(other, Err(Error::Timeout)));
//!
//! guard.release().await?; // or just drop the guard
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! # What you get
//! - [`Client`]: one TCP connection (TCP_NODELAY) shared by every clone and task;
//!   requests are pipelined and their replies routed by request id. `lock(name)` and
//!   `share(name)` return a [`LockBuilder`] (`.wait(ms)`, `.hold(ms)`, `.queue(n)`,
//!   `.max(n)`, `.keep_alive(true)`) that you `.await` for a [`Guard`]. One method per
//!   other verb (`inspect`, `list`, `stats`, ...), and [`Client::request`] for any
//!   [`proto::Request`].
//! - [`Guard`]: [`Guard::token`] (the fencing token), [`Guard::extend`],
//!   [`Guard::release`]; dropping it releases the lock. [`Guard::lost`] completes when
//!   the hold is gone: it expired, a `RESET` released it, the connection died, or a
//!   kept-alive lease ran out unconfirmed. [`Guard::extender`] gives an [`Extender`], a
//!   cloneable handle that renews the hold from another task without borrowing the
//!   guard.
//! - **Cancellation is safe**: dropping a lock future before it completes (a
//!   `tokio::select!`, a `tokio::time::timeout`, an aborted task) sends `CANCEL`; a grant
//!   that crossed the `CANCEL` on the wire is released at once. No orphan waits, no
//!   orphan holds.
//! - **Leases kept alive, and checked locally**: `.hold(ms).keep_alive(true)` sends
//!   `EXTEND` every `hold / 3` while the guard lives, so a live client keeps the lock
//!   and a crashed or cut-off one loses it within `hold`. The client knows it too:
//!   [`Guard::valid_until`] is the send time of the last confirmed `EXTEND` (or of the
//!   grant's request) plus `hold` (less a few ms of margin), a moment the server's
//!   deadline cannot precede; when it passes without a newer confirmation (a cut
//!   network, where neither `EXPIRED` nor a close arrives), the guard reports
//!   [`Lost::LeaseUnconfirmed`], so the client stops trusting the lock before the
//!   server can give it to anyone else (as far as its timers fire on time). A grant
//!   after a long wait is confirmed with an `EXTEND` before it is returned.
//! - **Connection loss**: everything pending fails with [`Error::ConnectionLost`],
//!   every guard reports [`Lost::ConnectionLost`] (the server released those holds), and
//!   the next request reconnects with exponential backoff ([`ConnectOptions`]).
//!   [`Client::connect_lazy`] makes no connection until the first request.
//! - [`blocking::Client`]: the same API without async, `Send + Sync`, for threads and
//!   scripts; [`blocking::Cluster`] likewise for [`Cluster`].
//! - [`Cluster`]: N servers, each name routed to one by [`shard::rendezvous_route`].
//!   Each server is connected on first use and reconnected on its own, so a server that
//!   is down fails only the names it owns.
//! - [`proto`] and [`session`]: the protocol without I/O (typed requests, validation
//!   with the server's rules, encoder, request ids, reply decoder), for other drivers.
//! - One [`Error`] enum: the server's error codes as variants (`NotHeld`, `QueueFull`,
//!   `TokenRequired`, `Limit`, `AuthFailed`, ...) plus `Timeout`, `Cancelled`,
//!   `ConnectionLost`, `ConnectTimeout`, `LeaseUnconfirmed`, `Protocol`, `Io`. Names
//!   and options are checked before sending: a bad name is [`Error::BadName`] without
//!   a round trip.
//! - [`Mode`] prints as the protocol's word ([`Mode::as_str`], `Display`);
//!   [`ConnectOptions::get_connect_timeout`] and [`ConnectOptions::get_name`] read the
//!   options back.
//!
//! # Layout
//! - `proto`: the protocol without I/O; `proto::request` (the typed requests),
//!   `proto::validate` (the server's rules), `proto::encode` (a request as its line),
//!   `proto::frame` (reply lines split into frames), `proto::reply` (the typed replies),
//!   `proto::assemble` (a request's frames into its reply).
//! - `session`: one connection's state without I/O; `session::lease` (what a hold's
//!   end is known to be), `session::entry` (one pending request or hold).
//! - `client`: the async driver; `client::options` ([`ConnectOptions`]),
//!   `client::connection` (the reader and writer tasks, the handshake, the wait for a
//!   reply), `client::builder` ([`LockBuilder`]), `client::guard` ([`Guard`],
//!   [`Extender`], [`LostFuture`]), `client::keepalive` (lease renewal and its local
//!   deadline).
//! - `cluster`: [`Cluster`], names routed over several servers; `blocking`: the same
//!   API without async; `shard`: the routing function; `error`: [`Error`].
//!
//! # Features
//! - `runtime` (default): the async client, [`blocking`] and [`Cluster`], on tokio.
//!   Without it (`default-features = false`) the crate is [`proto`], [`session`],
//!   [`shard`] and [`Error`], with no tokio dependency.
//!
//! # Examples
//! `examples/` in the crate: `lock_job` (lock a job with a lease), `semaphore` (a
//! counted lock), `reader_writer` (shared and exclusive), `fencing` (the token passed to
//! a storage write), and `bench` (lock cycles per second over one connection).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod proto;
pub mod session;
pub mod shard;

#[cfg(feature = "runtime")]
pub mod blocking;
#[cfg(feature = "runtime")]
mod client;
#[cfg(feature = "runtime")]
mod cluster;

#[cfg(feature = "runtime")]
pub use client::{
    Client, ConnectOptions, Extender, Guard, LockBuilder, LostFuture, DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RECONNECT_ATTEMPTS,
    MIN_KEEP_ALIVE_HOLD_MS,
};
#[cfg(feature = "runtime")]
pub use cluster::Cluster;
pub use error::{Error, Result};
pub use proto::{ClientInfo, Grant, LockInfo, LockSummary, Mode, Reply, Stats, WhoAmI};
pub use session::Lost;
