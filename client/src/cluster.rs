//! Sharding over several lockbox instances: each lock name lives on the one server the
//! rendezvous function ([`crate::shard`]) picks from the address list.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lockbox_client::Error> {
//! use lockbox_client::Cluster;
//!
//! let cluster = Cluster::connect(["10.0.0.1:7654", "10.0.0.2:7654", "10.0.0.3:7654"]).await?;
//! let guard = cluster.lock("jobs:42").wait(2000).await?;
//! // Tokens are per instance: compare them only for the same lock (same server).
//! println!("jobs:42 lives on {}", cluster.servers()[cluster.route("jobs:42")]);
//! guard.release().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Invariants
//! - Every client of the same address list, spelled the same way, routes a name to the
//!   same server (the addresses are hashed as given, never resolved first).
//! - One client per server ([`Client::connect_lazy`]): it connects on the first request
//!   for a name routed to it and reconnects on its own, with the options' backoff. A
//!   server that is down fails only the names routed to it, never the cluster.

use crate::client::{Client, ConnectOptions, LockBuilder};
use crate::error::{Error, Result};
use crate::shard::rendezvous_route;

/// Clients for N servers and the routing of names to them.
#[derive(Clone, Debug)]
pub struct Cluster {
    servers: Vec<String>,
    clients: Vec<Client>,
}

impl Cluster {
    /// A cluster of `servers` with the default options (see [`Cluster::connect_with`]).
    pub async fn connect<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Result<Cluster> {
        Cluster::connect_with(servers, ConnectOptions::new()).await
    }

    /// A cluster of `servers` with `opts`. Nothing is connected yet: each server's
    /// client connects on the first request routed to it, so a server that is down
    /// fails (after the reconnect attempts of `opts`) only the names it owns. Errors
    /// only for an empty list or bad options.
    pub async fn connect_with<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        opts: ConnectOptions,
    ) -> Result<Cluster> {
        Cluster::new(servers, opts)
    }

    /// [`Cluster::connect_with`] without async (it does no I/O).
    pub fn new<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        opts: ConnectOptions,
    ) -> Result<Cluster> {
        let servers: Vec<String> = servers.into_iter().map(Into::into).collect();
        if servers.is_empty() {
            return Err(Error::BadOption(
                "a cluster needs at least one server".into(),
            ));
        }
        let clients = servers
            .iter()
            .map(|s| Client::connect_lazy(s.clone(), opts.clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Cluster { servers, clients })
    }

    /// The server addresses, in the order given (the order of [`Cluster::route`]).
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The index of the server that owns `name`.
    pub fn route(&self, name: &str) -> usize {
        rendezvous_route(&self.servers, name.as_bytes()).unwrap_or(0)
    }

    routed_methods!();
}

/// The methods the async and the blocking cluster share: their clients, and a name's
/// client and locks on its server. Expands inside the `impl` of a type with a field
/// `clients: Vec<Client>` and a method `route(&self, &str) -> usize`, where `Client`
/// and `LockBuilder` name that flavour's types.
macro_rules! routed_methods {
    () => {
        /// One client per server, in the order of [`Cluster::servers`].
        pub fn clients(&self) -> &[Client] {
            &self.clients
        }

        /// The client of the server that owns `name`.
        pub fn client_for(&self, name: &str) -> &Client {
            &self.clients[self.route(name)]
        }

        /// An exclusive lock on `name`, on its server.
        pub fn lock(&self, name: impl Into<String>) -> LockBuilder {
            let name = name.into();
            self.client_for(&name).lock(name)
        }

        /// A shared lock on `name`, on its server.
        pub fn share(&self, name: impl Into<String>) -> LockBuilder {
            let name = name.into();
            self.client_for(&name).share(name)
        }
    };
}
pub(crate) use routed_methods;
