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
//! - One connection per server, made at [`Cluster::connect`]; each reconnects on its own.

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
    /// Connects to every server of `servers` with the default options.
    pub async fn connect<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Result<Cluster> {
        Cluster::connect_with(servers, ConnectOptions::new()).await
    }

    /// Connects to every server of `servers` with `opts` (all at once).
    pub async fn connect_with<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        opts: ConnectOptions,
    ) -> Result<Cluster> {
        let servers: Vec<String> = servers.into_iter().map(Into::into).collect();
        if servers.is_empty() {
            return Err(Error::BadOption(
                "a cluster needs at least one server".into(),
            ));
        }
        let mut tasks = Vec::with_capacity(servers.len());
        for s in &servers {
            tasks.push(tokio::spawn(Client::connect_with(s.clone(), opts.clone())));
        }
        let mut clients = Vec::with_capacity(servers.len());
        for t in tasks {
            clients.push(t.await.map_err(|e| Error::Io(std::io::Error::other(e)))??);
        }
        Ok(Cluster { servers, clients })
    }

    /// The server addresses, in the order given (the order of [`Cluster::route`]).
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// One client per server, in the order of [`Cluster::servers`].
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// The index of the server that owns `name`.
    pub fn route(&self, name: &str) -> usize {
        rendezvous_route(&self.servers, name.as_bytes()).unwrap_or(0)
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
}
