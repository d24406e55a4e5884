//! The client's own view of a lease: the local deadline of a kept-alive guard
//! (`valid_until`, `Lost::LeaseUnconfirmed`) under a cut network and a working one,
//! grants after long waits, and extending through an `Extender`.

mod common;

use common::{start, Proxy, Raw};
use lockbox_client::{blocking, Client, Error, Lost};
use std::time::{Duration, Instant};

/// Generous bound for "this happens soon" on a busy 2-core machine.
const SOON: Duration = Duration::from_secs(10);
/// Slack on top of `hold` for the local deadline to be noticed (timers and scheduling
/// on a loaded machine).
const NOTICE_SLACK: Duration = Duration::from_millis(1000);

fn ms(n: u32) -> Duration {
    Duration::from_millis(u64::from(n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_guard_is_lost_within_hold_when_the_network_is_cut() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let c = Client::connect(&proxy.addr).await.unwrap();
    let hold = 600;
    let g = c.lock("cut:1").hold(hold).keep_alive(true).await.unwrap();
    // A renewal or two go through first.
    tokio::time::sleep(ms(hold / 2)).await;
    assert_eq!(g.is_lost(), None);
    // Nothing gets through from now on: no EXTEND, no reply, no EXPIRED, no close.
    proxy.freeze();
    let cut = Instant::now();
    let lost = tokio::time::timeout(SOON, g.lost())
        .await
        .expect("the client notices the cut on its own");
    let noticed = Instant::now();
    assert_eq!(lost, Lost::LeaseUnconfirmed);
    assert_eq!(g.is_lost(), Some(Lost::LeaseUnconfirmed));
    let until = g.valid_until().expect("a lease");
    // Never before the deadline it vouched for, and that deadline was not past what the
    // last renewal before the cut could confirm.
    assert!(noticed >= until, "lost before valid_until");
    assert!(until <= cut + ms(hold), "vouched past the cut + hold");
    assert!(
        noticed - cut <= ms(hold) + NOTICE_SLACK,
        "noticed {:?} after the cut (hold {hold} ms)",
        noticed - cut
    );
    // The server, which got no renewal either, freed the lock for someone else.
    let mut raw = Raw::connect(&addr);
    common::eventually("the server frees the lease", || {
        raw.inspect("cut:1").starts_with("mode=free")
    });
    assert!(raw.lock("cut:1") > g.token());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_guard_through_a_working_relay_is_never_lost() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let c = Client::connect(&proxy.addr).await.unwrap();
    // Renewed every 300 ms; a stall of up to ~600 ms is survived.
    let hold = 900;
    let g = c.lock("fine:1").hold(hold).keep_alive(true).await.unwrap();
    let first = g.valid_until().expect("a lease");
    let start = Instant::now();
    // Three leases long, watching the deadline as the work would.
    while start.elapsed() < 3 * ms(hold) {
        let until = g.valid_until().unwrap();
        assert!(
            Instant::now() < until,
            "the lease ran out under a working network"
        );
        assert_eq!(g.is_lost(), None);
        let wait = tokio::time::timeout(ms(50), g.lost()).await;
        assert!(wait.is_err(), "lost: {wait:?}");
    }
    assert!(
        g.valid_until().unwrap() > first + ms(hold),
        "renewals confirmed"
    );
    let info = Client::connect(&addr)
        .await
        .unwrap()
        .inspect("fine:1")
        .await
        .unwrap();
    assert_eq!(info.token, Some(g.token()));
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_after_a_long_wait_is_confirmed_before_it_is_returned() {
    let addr = start();
    let c = Client::connect(&addr).await.unwrap();
    let mut raw = Raw::connect(&addr);
    raw.lock("late:1");
    let hold = 300;
    let waiting = tokio::spawn({
        let c = c.clone();
        async move {
            c.lock("late:1")
                .wait(10_000)
                .hold(hold)
                .keep_alive(true)
                .await
        }
    });
    common::eventually("the client waits", || {
        raw.inspect("late:1").contains("waiters=1")
    });
    // Waiting longer than the whole lease: the LOCK's send time + hold is long past
    // at the grant.
    tokio::time::sleep(ms(2 * hold)).await;
    raw.unlock("late:1");
    let g = tokio::time::timeout(SOON, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let returned = Instant::now();
    assert!(
        g.valid_until().unwrap() > returned,
        "returned with a lease it cannot vouch for"
    );
    assert_eq!(g.is_lost(), None);
    // And kept alive from there.
    let wait = tokio::time::timeout(3 * ms(hold), g.lost()).await;
    assert!(wait.is_err(), "lost: {wait:?}");
    assert!(raw
        .inspect("late:1")
        .contains(&format!("token={}", g.token())));
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_whose_confirmation_never_comes_is_not_returned() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    let c = Client::connect(&proxy.addr).await.unwrap();
    let mut raw = Raw::connect(&addr);
    raw.lock("late:2");
    let hold = 300;
    let waiting = tokio::spawn({
        let c = c.clone();
        async move {
            c.lock("late:2")
                .wait(10_000)
                .hold(hold)
                .keep_alive(true)
                .await
        }
    });
    common::eventually("the client waits", || {
        raw.inspect("late:2").contains("waiters=1")
    });
    tokio::time::sleep(ms(2 * hold)).await;
    // From now on nothing the client sends arrives: the grant still reaches it, the
    // confirming EXTEND does not.
    proxy.freeze_upstream();
    let granted = Instant::now();
    raw.unlock("late:2");
    let r = tokio::time::timeout(SOON, waiting).await.unwrap().unwrap();
    assert!(matches!(r, Err(Error::LeaseUnconfirmed)), "{r:?}");
    assert!(
        granted.elapsed() >= ms(hold) - Duration::from_millis(10),
        "gave up early"
    );
    // No renewal reached the server: it lets the hold run out.
    common::eventually("the server frees the lease", || {
        raw.inspect("late:2").starts_with("mode=free")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extender_renews_from_another_task() {
    let addr = start();
    let c = Client::connect(&addr).await.unwrap();
    let hold = 400;
    let g = c.lock("ext:1").hold(hold).await.unwrap();
    let first = g.valid_until().expect("a hold with a deadline has a lease");
    let ext = g.extender();
    assert_eq!(ext.token(), g.token());
    // Renew from a task of its own, without the guard, for three leases.
    let renewer = tokio::spawn({
        let ext = ext.clone();
        async move {
            let start = Instant::now();
            while start.elapsed() < 3 * ms(hold) {
                ext.extend(hold).await?;
                tokio::time::sleep(ms(hold / 4)).await;
            }
            Ok::<_, Error>(())
        }
    });
    tokio::time::timeout(SOON, renewer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(g.is_lost(), None, "no EXPIRED: the extender kept it");
    assert!(g.valid_until().unwrap() > first + 2 * ms(hold));
    let token = g.token();
    g.release().await.unwrap();
    // Once the guard is gone the extender has nothing to extend.
    assert!(matches!(ext.extend(hold).await, Err(Error::NotHeld(_))));
    // Without a hold there is no deadline, until an extend gives one.
    let free = c.lock("ext:2").await.unwrap();
    assert_eq!(free.valid_until(), None);
    free.extender().extend(60_000).await.unwrap();
    assert!(free.valid_until().unwrap() > Instant::now() + Duration::from_secs(50));
    assert!(free.token() > token);
}

#[test]
fn blocking_guard_extender_and_lease() {
    let addr = start();
    let c = blocking::Client::connect(&addr).unwrap();
    let g = c.lock("bext").hold(300).acquire().unwrap();
    let ext = g.extender();
    let t = std::thread::spawn(move || ext.extend(60_000));
    t.join().unwrap().unwrap();
    assert!(g.valid_until().unwrap() > Instant::now() + Duration::from_secs(50));
    assert_eq!(g.wait_lost(Duration::from_millis(500)), None, "extended");
    g.release().unwrap();
}
