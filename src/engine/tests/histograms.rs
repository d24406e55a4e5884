//! The grant-wait and hold-duration histograms: what each grant and each end of a hold
//! records, on the engine's millisecond clock.

use super::*;

/// (bound, cumulative count) of the first bucket whose bound is at least `ms`.
fn le(h: &Histogram, ms: u64) -> u64 {
    h.cumulative()
        .find(|&(b, _)| b >= ms)
        .map(|(_, n)| n)
        .expect("a bucket")
}

#[test]
fn immediate_grants_wait_zero_and_queued_ones_their_time() {
    let mut e = engine();
    assert!(matches!(
        e.acquire(0, b"t1", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    assert_eq!(e.acquire(1, b"t2", &forever(b"a", X), 10), Acquired::Queued);
    assert_eq!(e.grant_wait().count(), 1);
    assert_eq!(e.grant_wait().sum_ms(), 0);
    // Released at 250: the waiter waited 240 ms, the first hold lasted 250 ms.
    e.release(0, b"a", None, 250).unwrap();
    assert_eq!(events(&mut e).len(), 1);
    assert_eq!(e.grant_wait().count(), 2);
    assert_eq!(e.grant_wait().sum_ms(), 240);
    assert_eq!(
        le(e.grant_wait(), 100),
        1,
        "only the immediate grant is <= 100 ms"
    );
    assert_eq!(le(e.grant_wait(), 250), 2);
    assert_eq!(e.hold_duration().count(), 1);
    assert_eq!(e.hold_duration().sum_ms(), 250);
    // The second hold counts from its grant at 250, ending with its connection at 1250.
    e.disconnect(1, 1250);
    assert_eq!(e.hold_duration().count(), 2);
    assert_eq!(e.hold_duration().sum_ms(), 1250);
    assert_eq!(le(e.hold_duration(), 1000), 2);
}

#[test]
fn waits_that_end_without_a_grant_record_nothing() {
    let mut e = engine();
    e.acquire(0, b"t1", &forever(b"a", X), 0);
    // A try that finds the lock busy, a wait that times out, a wait that is cancelled.
    assert_eq!(
        e.acquire(1, b"t2", &req(b"a", X, Some(0), None), 1),
        Acquired::Timeout
    );
    assert_eq!(
        e.acquire(1, b"t3", &req(b"a", X, Some(5), None), 1),
        Acquired::Queued
    );
    assert_eq!(e.acquire(2, b"t4", &forever(b"a", X), 1), Acquired::Queued);
    e.advance(100);
    assert_eq!(e.cancel(2, b"t4", 100, |_| {}), 1);
    assert_eq!(e.grant_wait().count(), 1);
    assert_eq!(e.hold_duration().count(), 0);
}

#[test]
fn expired_holds_record_their_lease() {
    let mut e = engine();
    e.acquire(0, b"t1", &req(b"a", S, None, Some(30)), 0);
    e.acquire(1, b"t2", &req(b"a", S, None, Some(60)), 0);
    // Deadlines fire at now + ms + 1 (never early).
    e.advance(31);
    e.advance(61);
    assert_eq!(events(&mut e).len(), 2);
    assert_eq!(e.hold_duration().count(), 2);
    assert_eq!(e.hold_duration().sum_ms(), 31 + 61);
}

#[test]
fn refusals_at_max_pending_are_counted() {
    let mut e = engine_with(1);
    e.acquire(0, b"t1", &forever(b"a", X), 0);
    assert_eq!(e.acquire(0, b"t2", &forever(b"b", X), 0), Acquired::Limit);
    assert_eq!(e.acquire(0, b"t3", &forever(b"c", X), 0), Acquired::Limit);
    assert_eq!(e.counters().limit_refusals_total, 2);
}
