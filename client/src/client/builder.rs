//! [`LockBuilder`]: a `LOCK` or `SHARE` with its options, awaited for a [`Guard`];
//! dropped early, it cancels the request.

use super::connection::ReplyFuture;
use super::guard::Guard;
use super::keepalive::{millis, MIN_KEEP_ALIVE_HOLD_MS};
use super::{unexpected, Client};
use crate::error::{Error, Result};
use crate::proto::{Acquire, LockKind, Reply, Request};
use crate::session::Lease;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Instant;

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
    pub(super) fn new(client: Client, acquire: Acquire) -> Self {
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
    /// reports [`Lost::Expired`](crate::Lost::Expired)) unless extended.
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
    /// `EXPIRED` nor a close can arrive), the guard reports [`Lost::LeaseUnconfirmed`](crate::Lost::LeaseUnconfirmed).
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
