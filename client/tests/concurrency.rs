//! Many requests over one connection: mutual exclusion with 100 tasks, cancel-on-drop
//! (also when the grant is already on the wire), the blocking client from 8 threads.

mod common;

use common::{eventually, start, Raw};
use lockbox_client::{blocking, Client, Error, Mode};
use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

const NAMES: usize = 5;
const TASKS: usize = 100;
const ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_tasks_one_connection_mutual_exclusion() {
    let addr = start();
    let client = Client::connect(&addr).await.unwrap();
    // Per name: is somebody inside, and the tokens in the order they got in.
    let inside: Arc<Vec<AtomicBool>> =
        Arc::new((0..NAMES).map(|_| AtomicBool::new(false)).collect());
    let order: Arc<Vec<Mutex<Vec<u64>>>> =
        Arc::new((0..NAMES).map(|_| Mutex::new(Vec::new())).collect());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (client, inside, order) = (client.clone(), inside.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            for r in 0..ROUNDS {
                let n = (t + r) % NAMES;
                let g = client
                    .lock(format!("mx:{n}"))
                    .wait(60_000)
                    .await
                    .expect("lock");
                assert!(
                    !inside[n].swap(true, Ordering::SeqCst),
                    "two holders of mx:{n} at once"
                );
                order[n].lock().unwrap().push(g.token());
                if r % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                inside[n].store(false, Ordering::SeqCst);
                if r % 2 == 0 {
                    g.release().await.expect("release");
                } else {
                    drop(g);
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("tasks finish")
            .unwrap();
    }
    let mut total = 0;
    for (n, o) in order.iter().enumerate() {
        let tokens = o.lock().unwrap();
        total += tokens.len();
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]),
            "mx:{n}: tokens not strictly increasing in the order of entry"
        );
    }
    assert_eq!(total, TASKS * ROUNDS);
    // One connection carried it all, and nothing is left held.
    let clients = client.clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    eventually("all released", || {
        let mut raw = Raw::connect(&addr);
        raw.stat("holds") == 0
    });
}

/// Polls `fut` once (so its request is queued), without waiting.
async fn poll_once<F: Future + Unpin>(fut: &mut F) {
    std::future::poll_fn(|cx| {
        assert!(std::pin::Pin::new(&mut *fut).poll(cx).is_pending());
        Poll::Ready(())
    })
    .await
}

#[tokio::test]
async fn dropping_a_waiting_acquire_cancels_it() {
    let addr = start();
    let mut holder = Raw::connect(&addr);
    holder.lock("c:1");
    let client = Client::connect(&addr).await.unwrap();
    // A timeout drops the acquire future while it waits.
    let r = tokio::time::timeout(Duration::from_millis(100), client.lock("c:1")).await;
    assert!(r.is_err());
    // The server cancelled the wait: nobody waits, and after the holder leaves the lock
    // is free, not granted to an orphan.
    let ins = client.inspect("c:1").await.unwrap();
    assert_eq!(ins.waiters, 0, "{ins:?}");
    holder.unlock("c:1");
    let ins = client.inspect("c:1").await.unwrap();
    assert_eq!(ins.mode, Mode::Free, "{ins:?}");
    let st = client.stats().await.unwrap();
    assert_eq!(st.get("cmd_cancel"), Some(1));
}

#[tokio::test(flavor = "current_thread")]
async fn grant_that_crossed_the_cancel_is_released() {
    // One runtime thread: while this test blocks it, the client's reader cannot run, so
    // the grant sits unread in the socket when the future is dropped, exactly as if it
    // had crossed the CANCEL on the wire.
    let addr = start();
    let mut holder = Raw::connect(&addr);
    let mut watcher = Raw::connect(&addr);
    holder.lock("c:2");
    let client = Client::connect(&addr).await.unwrap();
    let mut fut = client.lock("c:2").into_future();
    poll_once(&mut fut).await; // LOCK queued
                               // Yield (async sleeps) so the client's writer sends it; nothing comes back yet.
    let mut queued = false;
    for _ in 0..2000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if watcher.inspect("c:2").contains("waiters=1") {
            queued = true;
            break;
        }
    }
    assert!(queued, "the client's LOCK never reached the queue");
    // Release: the server grants the client's LOCK and sends `OK <token>`.
    holder.unlock("c:2");
    assert!(watcher
        .inspect("c:2")
        .starts_with("mode=exclusive holders=1"));
    std::thread::sleep(Duration::from_millis(50)); // the OK reaches the client's socket
    drop(fut); // sends CANCEL; the grant is already there
               // Let the client run (async sleeps): it reads the grant and gives it back.
    let mut freed = false;
    for _ in 0..2000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if watcher.inspect("c:2").starts_with("mode=free") {
            freed = true;
            break;
        }
    }
    assert!(freed, "the crossed grant was never released");
    let st = client.stats().await.unwrap();
    assert_eq!(st.get("cmd_cancel"), Some(1), "CANCEL was sent");
    assert_eq!(
        st.get("cmd_unlock"),
        Some(2),
        "holder's UNLOCK and the client's"
    );
    let me = client.whoami().await.unwrap();
    let rows = client.clients().await.unwrap();
    let row = rows.iter().find(|r| r.addr == me.addr).unwrap();
    assert_eq!((row.holds, row.waits), (0, 0), "no orphan hold or wait");
    // The lock works normally afterwards.
    client
        .lock("c:2")
        .wait(0)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_drops_leave_nothing_behind() {
    // Many acquires dropped at random points around grants: whichever way each race
    // goes, no hold or wait is left behind.
    let addr = start();
    let a = Client::connect(&addr).await.unwrap();
    let b = Client::connect(&addr).await.unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..150u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Bounded: an orphan hold left by an earlier round fails here, not hangs.
        let g = a.lock("race").wait(10_000).await.unwrap();
        let cut = Duration::from_micros(rng % 3000);
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { tokio::time::timeout(cut, b.lock("race")).await }
        });
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_micros((rng >> 20) % 3000)).await;
        }
        drop(g);
        if let Ok(Ok(guard)) = waiting.await.unwrap() {
            drop(guard);
        }
    }
    eventually("nothing left", || {
        let mut raw = Raw::connect(&addr);
        raw.stat("holds") == 0 && raw.stat("waiters") == 0
    });
    // Both connections still work.
    a.lock("race")
        .wait(0)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    b.ping().await.unwrap();
}

#[test]
fn blocking_client_from_eight_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<blocking::Client>();
    assert_send_sync::<blocking::Guard>();

    let addr = start();
    let client = blocking::Client::connect(&addr).unwrap();
    let inside: Arc<HashMap<&'static str, AtomicU32>> = Arc::new(
        [("b:0", AtomicU32::new(0)), ("b:1", AtomicU32::new(0))]
            .into_iter()
            .collect(),
    );
    let counted = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (client, inside, counted) = (client.clone(), inside.clone(), counted.clone());
            std::thread::spawn(move || {
                for r in 0..25 {
                    let name = if (t + r) % 2 == 0 { "b:0" } else { "b:1" };
                    let g = client.lock(name).wait(30_000).acquire().unwrap();
                    assert_eq!(inside[name].fetch_add(1, Ordering::SeqCst), 0, "{name}");
                    std::thread::sleep(Duration::from_micros(200));
                    inside[name].fetch_sub(1, Ordering::SeqCst);
                    if r % 2 == 0 {
                        g.release().unwrap();
                    } else {
                        drop(g);
                    }
                    // A counted lock: at most 3 of the 8 threads inside.
                    let s = client.share("b:sem").max(3).wait(30_000).acquire().unwrap();
                    assert!(s.holders().unwrap() <= 3);
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counted.load(Ordering::SeqCst), 200);
    assert_eq!(client.clients().unwrap().len(), 1, "one shared connection");
    eventually("all released", || {
        client.stats().unwrap().get("holds") == Some(0)
    });
    // Errors come through the blocking API as well.
    let g = client.lock("b:0").acquire().unwrap();
    let other = blocking::Client::connect(&addr).unwrap();
    assert!(matches!(
        other.lock("b:0").wait(0).acquire(),
        Err(Error::Timeout)
    ));
    g.extend(5000).unwrap();
    assert_eq!(g.wait_lost(Duration::from_millis(50)), None);
    g.release().unwrap();
}
