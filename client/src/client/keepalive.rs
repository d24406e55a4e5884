//! Leases: renewing a hold (`EXTEND`), renewing it every `hold / 3` while a kept-alive
//! guard lives, and watching the local deadline a renewal must beat.

use super::connection::Conn;
use super::unexpected;
use crate::error::{Error, Result};
use crate::proto::{Reply, Request};
use crate::session::{Lease, Lost};
use std::future::Future;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// A kept-alive lease is renewed this many times per `hold`.
pub(super) const KEEP_ALIVE_PER_HOLD: u32 = 3;
/// Shortest `hold` that can be kept alive: the client vouches for a lease only
/// [`crate::session::LEASE_MARGIN`] short of `hold`, and a renewal must make a round
/// trip within the rest.
pub const MIN_KEEP_ALIVE_HOLD_MS: u32 = 30;

/// `ms` milliseconds as a [`Duration`].
pub(super) fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// How often a kept-alive lease of `hold` ms is renewed.
pub(super) fn keep_alive_period(hold: u32) -> Duration {
    millis((hold / KEEP_ALIVE_PER_HOLD).max(1))
}

/// `EXTEND <name> <token> hold=<ms>` for hold `id`; records the confirmed lease, or the
/// loss when the server no longer has the hold.
pub(super) async fn extend_hold(
    conn: &Conn,
    id: u64,
    name: String,
    token: u64,
    hold_ms: u32,
) -> Result<()> {
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

/// Runs `fut` while hold `id` is held and its lease has not run out; `None` (and the
/// hold marked [`Lost::LeaseUnconfirmed`] if that is why) once it is not.
pub(super) async fn watch_lease<F: Future>(conn: &Conn, id: u64, fut: F) -> Option<F::Output> {
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
pub(super) async fn keep_alive_loop(conn: Arc<Conn>, id: u64, name: String, token: u64, hold: u32) {
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
