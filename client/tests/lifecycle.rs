//! Holds that end: EXPIRED, a dead server, kept-alive leases, reconnection.

mod common;

use common::{start, Proxy, Raw};
use lockbox_client::{blocking, Client, ConnectOptions, Error, Lost, Mode};
use std::time::{Duration, Instant};

/// Generous bound for "this happens soon" on a busy 2-core machine.
const SOON: Duration = Duration::from_secs(10);

#[tokio::test]
async fn guard_learns_its_hold_expired() {
    let addr = start();
    let c = Client::connect(&addr).await.unwrap();
    let start = Instant::now();
    let g = c.lock("l:exp").hold(150).await.unwrap();
    assert_eq!(g.is_lost(), None);
    let lost = tokio::time::timeout(SOON, g.lost())
        .await
        .expect("lost in time");
    assert_eq!(lost, Lost::Expired(g.token()));
    assert!(start.elapsed() >= Duration::from_millis(150), "never early");
    assert_eq!(g.is_lost(), Some(Lost::Expired(g.token())));
    // The lock is free for others; a late release says the hold was gone.
    let other = Client::connect(&addr).await.unwrap();
    let taken = other.lock("l:exp").wait(0).await.unwrap();
    assert!(matches!(g.release().await, Err(Error::NotHeld(_))));
    // ... and it did not release the new holder's hold.
    assert_eq!(
        other.inspect("l:exp").await.unwrap().token,
        Some(taken.token())
    );
    // A lost() future moved to another task completes when the guard releases.
    let g = c.lock("l:rel").await.unwrap();
    let watcher = tokio::spawn(g.lost());
    g.release().await.unwrap();
    let why = tokio::time::timeout(SOON, watcher).await.unwrap().unwrap();
    assert_eq!(why, Lost::Released);
    // hold=0: granted then expired at once; the guard is lost right away.
    let z = c.lock("l:zero").hold(0).await.unwrap();
    let lost = tokio::time::timeout(SOON, z.lost()).await.unwrap();
    assert_eq!(lost, Lost::Expired(z.token()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_death_loses_guards_fails_pending_and_reconnects() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let c = Client::connect(&proxy.addr).await.unwrap();
    let g = c.lock("d:held").await.unwrap();
    let mut raw = Raw::connect(&addr);
    raw.lock("d:busy");
    // A request that waits when the server dies.
    let waiting = tokio::spawn({
        let c = c.clone();
        async move { c.lock("d:busy").await }
    });
    let lost = tokio::spawn(g.lost());
    common::eventually("the client waits", || {
        raw.inspect("d:busy").contains("waiters=1")
    });
    proxy.kill();
    let w = tokio::time::timeout(SOON, waiting).await.unwrap().unwrap();
    assert!(matches!(w, Err(Error::ConnectionLost)), "{w:?}");
    assert_eq!(
        tokio::time::timeout(SOON, lost).await.unwrap().unwrap(),
        Lost::ConnectionLost
    );
    assert_eq!(g.is_lost(), Some(Lost::ConnectionLost));
    assert!(matches!(g.extend(1000).await, Err(Error::ConnectionLost)));
    drop(g);
    // The server released the dead connection's hold.
    common::eventually("released", || {
        raw.inspect("d:held").starts_with("mode=free")
    });
    // A new request reconnects.
    let g2 = c.lock("d:held").wait(1000).await.unwrap();
    assert!(c.is_connected());
    g2.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_backs_off_until_the_server_is_back() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let opts = ConnectOptions::new()
        .reconnect_attempts(50)
        .backoff(Duration::from_millis(20), Duration::from_millis(100));
    let c = Client::connect_with(&proxy.addr, opts).await.unwrap();
    proxy.refuse(true);
    proxy.kill();
    // A request racing the death may still go to the dying connection (and fail with
    // ConnectionLost); wait until the client has noticed.
    common::eventually("the client notices", || !c.is_connected());
    let back = tokio::spawn({
        let c = c.clone();
        async move {
            let t = Instant::now();
            let r = c.ping().await;
            (r, t.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.refuse(false);
    let (r, took) = tokio::time::timeout(SOON, back).await.unwrap().unwrap();
    r.unwrap();
    assert!(
        took >= Duration::from_millis(250),
        "reconnected while refused?"
    );

    // With few attempts and the server gone for good, the request fails.
    let opts = ConnectOptions::new()
        .reconnect_attempts(3)
        .backoff(Duration::from_millis(10), Duration::from_millis(10));
    let c = Client::connect_with(&proxy.addr, opts).await.unwrap();
    proxy.refuse(true);
    proxy.kill();
    common::eventually("the client notices", || !c.is_connected());
    let r = tokio::time::timeout(SOON, c.ping()).await.unwrap();
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_holds_three_times_the_hold() {
    let addr = start();
    let c = Client::connect(&addr).await.unwrap();
    let other = Client::connect(&addr).await.unwrap();
    // EXTEND every 400 ms keeps a 1200 ms lease: a stall of up to ~800 ms is survived.
    let hold = 1200;
    let g = c.lock("k:alive").hold(hold).keep_alive(true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3 * u64::from(hold) + 300)).await;
    assert_eq!(g.is_lost(), None, "kept alive");
    let info = other.inspect("k:alive").await.unwrap();
    assert_eq!(info.token, Some(g.token()), "still the same hold");
    assert!(matches!(
        other.lock("k:alive").wait(0).await,
        Err(Error::Timeout)
    ));
    let extends = other.stats().await.unwrap().get("cmd_extend").unwrap();
    assert!(extends >= 3, "EXTEND every hold/3: {extends}");
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_keep_alive_loses_the_lock_within_hold() {
    let addr = start();
    let c = Client::connect(&addr).await.unwrap();
    let mut g = c.lock("k:stuck").hold(300).keep_alive(true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    g.stop_keep_alive(); // a stuck client: no more EXTEND
    let stopped = Instant::now();
    let lost = tokio::time::timeout(SOON, g.lost()).await.unwrap();
    assert_eq!(lost, Lost::Expired(g.token()));
    // At most `hold` after the last EXTEND, i.e. soon after stopping (with slack).
    assert!(stopped.elapsed() < Duration::from_millis(300 + 2000));
    let other = Client::connect(&addr).await.unwrap();
    assert_eq!(other.inspect("k:stuck").await.unwrap().mode, Mode::Free);
}

#[test]
fn blocking_guard_sees_expiry_and_death() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let c = blocking::Client::connect(&proxy.addr).unwrap();
    let g = c.lock("bl:1").hold(100).acquire().unwrap();
    assert_eq!(g.wait_lost(SOON), Some(Lost::Expired(g.token())));
    let g = c.lock("bl:2").acquire().unwrap();
    assert_eq!(g.wait_lost(Duration::from_millis(50)), None);
    proxy.kill();
    assert_eq!(g.wait_lost(SOON), Some(Lost::ConnectionLost));
    drop(g);
    // Reconnects for the next request.
    c.lock("bl:2")
        .wait(1000)
        .acquire()
        .unwrap()
        .release()
        .unwrap();
}
