//! A granted hold: [`Guard`] (token, extend, release, release on drop),
//! [`Extender`] (renewal from another task) and [`LostFuture`] (the hold's loss).

use super::connection::{Conn, ReplyFuture};
use super::keepalive::{extend_hold, keep_alive_loop, keep_alive_period, millis};
use super::{expect_ok, Client};
use crate::error::{Error, Result};
use crate::proto::{Grant, Request};
use crate::session::{Lease, Lost};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::task::AbortHandle;

/// A granted lock. Dropping it releases the hold (`UNLOCK <name> <token>`, sent in the
/// background); [`Guard::release`] does the same and waits for the answer.
#[must_use = "dropping a guard releases the lock at once"]
pub struct Guard {
    client: Client,
    conn: Arc<Conn>,
    id: u64,
    pub(super) name: String,
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
    pub(super) fn new(
        client: Client,
        conn: Arc<Conn>,
        id: u64,
        name: String,
        grant: Grant,
    ) -> Guard {
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
    pub(super) async fn start_keep_alive(&mut self, hold: u32) -> Result<()> {
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
    pub(super) name: String,
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
