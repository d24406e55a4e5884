//! Deadlines, events and counters of the engine, one behaviour per test, and its
//! memory budget; [`model`] checks it against a reference that predicts every answer
//! and event. Time is an argument: no test sleeps.

use super::*;

mod histograms;
mod model;
mod shrink;
mod tags;
mod ticks;

const X: Mode = Mode::Exclusive;
const S: Mode = Mode::Shared { max: 0 };

fn addr() -> SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

/// An engine at time 0 with clients 0..4 connected.
fn engine_with(max_pending: u32) -> Engine {
    let mut e = Engine::new(Fence::starting_at(1), 0, max_pending);
    for c in 0..4 {
        e.connect(c, addr());
    }
    e
}

fn engine() -> Engine {
    engine_with(1000)
}

fn req(name: &[u8], mode: Mode, wait: Option<u32>, hold: Option<u32>) -> AcquireRequest<'_> {
    AcquireRequest {
        name,
        mode,
        wait,
        hold,
        queue: None,
    }
}

/// Waits as long as the connection lives, holds until released.
fn forever(name: &[u8], mode: Mode) -> AcquireRequest<'_> {
    req(name, mode, None, None)
}

fn events(e: &mut Engine) -> Vec<Event> {
    let mut v = Vec::new();
    e.take_events(&mut v);
    v
}

fn ev(client: ClientId, tag: &str, kind: EventKind) -> Event {
    Event {
        client,
        tag: Tag::from_slice(tag.as_bytes()),
        kind,
    }
}

fn granted(token: u64, holders: u32, shared: bool) -> EventKind {
    EventKind::Granted {
        token,
        holders,
        shared,
    }
}

/// (holders, waiters) of a lock; (0, 0) when free.
fn counts(e: &Engine, name: &[u8]) -> (u32, u32) {
    e.inspect(name)
        .map_or((0, 0), |(i, _)| (i.holders, i.waiters))
}

#[test]
fn force_release_keeps_the_grants_it_causes_and_other_groups_holds() {
    let mut e = Engine::new(Fence::starting_at(1), 0, 1000);
    for c in 0..3 {
        e.connect_in(c, addr(), 7);
    }
    e.connect_in(3, addr(), 0);
    // Group 7: a holder and two waiters on "a".
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    assert_eq!(e.acquire(1, b"w1", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(e.acquire(2, b"w2", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(e.force_release(b"a", 7, 0), 1, "only the hold that existed");
    assert_eq!(events(&mut e), vec![ev(1, "w1", granted(2, 1, false))]);
    assert_eq!(
        counts(&e, b"a"),
        (1, 1),
        "w1 keeps its grant, w2 still waits"
    );
    assert_eq!(e.holds_on(b"a").collect::<Vec<_>>(), vec![(2, 1)]);
    // Group 0's hold on "b" is out of group 7's reach.
    assert!(matches!(
        e.acquire(3, b"n", &forever(b"b", X), 0),
        Acquired::Granted { .. }
    ));
    assert_eq!(e.force_release(b"b", 7, 0), 0);
    assert_eq!(counts(&e, b"b"), (1, 0));
    assert!(events(&mut e).is_empty());
}

#[test]
fn wait_deadline_fires_at_now_plus_wait_plus_one() {
    for (now, wait) in [(100, 10), (100, 0), (100, 1000), (63, 1), (4095, 70_000)] {
        let mut e = engine();
        let held = e.acquire(0, b"h", &forever(b"a", X), now);
        assert_eq!(
            held,
            Acquired::Granted {
                token: 1,
                holders: 1
            }
        );
        let w = req(b"a", X, Some(wait), None);
        if wait == 0 {
            // wait=0 is a try: answered at once, no deadline.
            assert_eq!(e.acquire(1, b"w", &w, now), Acquired::Timeout);
            assert_eq!(e.next_wake(), None);
            continue;
        }
        assert_eq!(e.acquire(1, b"w", &w, now), Acquired::Queued);
        let deadline = now + u64::from(wait) + 1;
        let ctx = format!("now {now} wait {wait}");
        assert!(
            e.next_wake().is_some_and(|t| t <= deadline),
            "{ctx}: {:?}",
            e.next_wake()
        );
        // `wait` full milliseconds after the request's millisecond: not yet.
        e.advance(deadline - 1);
        assert_eq!(events(&mut e), vec![], "{ctx}: fired early");
        assert_eq!(counts(&e, b"a"), (1, 1), "{ctx}");
        assert!(
            e.next_wake().is_some_and(|t| t <= deadline),
            "{ctx}: {:?}",
            e.next_wake()
        );
        e.advance(deadline);
        assert_eq!(
            events(&mut e),
            vec![ev(1, "w", EventKind::Timeout)],
            "{ctx}"
        );
        assert_eq!(counts(&e, b"a"), (1, 0), "{ctx}");
        assert_eq!(e.counters().timeouts_total, 1, "{ctx}");
        assert_eq!(e.next_wake(), None, "{ctx}");
    }
}

#[test]
fn hold_expiry_grants_the_next_waiter_in_the_same_advance() {
    let mut e = engine();
    let h = e.acquire(0, b"h", &req(b"a", X, None, Some(10)), 0);
    assert_eq!(
        h,
        Acquired::Granted {
            token: 1,
            holders: 1
        }
    );
    assert_eq!(e.acquire(1, b"w", &forever(b"a", X), 5), Acquired::Queued);
    e.advance(10);
    assert_eq!(events(&mut e), vec![]);
    e.advance(11);
    assert_eq!(
        events(&mut e),
        vec![
            ev(0, "h", EventKind::Expired { token: 1 }),
            ev(1, "w", granted(2, 1, false)),
        ]
    );
    assert_eq!(
        e.inspect(b"a").unwrap().1,
        Some(Holder {
            token: 2,
            client: 1
        })
    );
    assert_eq!(
        e.release(0, b"a", None, 12),
        Err(FindError::NotHeld),
        "expired"
    );
    assert_eq!(
        e.release(0, b"a", Some(1), 12),
        Err(FindError::NotHeld),
        "expired"
    );
    let c = e.counters();
    assert_eq!(
        (c.grants_total, c.expired_total, c.timeouts_total),
        (2, 1, 0)
    );
    // The new holder has no deadline: nothing more ever fires.
    assert_eq!(e.next_wake(), None);
}

#[test]
fn a_waiter_granted_in_the_batch_of_its_own_wait_deadline_is_granted_not_timed_out() {
    // Holder with hold=10 and waiter with wait=10 at the same `now`: same deadline.
    for advance_to in [11, 12, 40, 5000] {
        let mut e = engine();
        e.acquire(0, b"h", &req(b"a", X, None, Some(10)), 0);
        assert_eq!(
            e.acquire(1, b"w", &req(b"a", X, Some(10), Some(3)), 0),
            Acquired::Queued
        );
        e.advance(advance_to);
        assert_eq!(
            events(&mut e),
            vec![
                ev(0, "h", EventKind::Expired { token: 1 }),
                ev(1, "w", granted(2, 1, false)),
            ],
            "advance to {advance_to}"
        );
        assert_eq!(e.counters().timeouts_total, 0, "advance to {advance_to}");
        // The grant started the waiter's own hold deadline at the advance's `now`.
        e.advance(advance_to + 3);
        assert_eq!(events(&mut e), vec![], "advance to {advance_to}");
        e.advance(advance_to + 4);
        assert_eq!(
            events(&mut e),
            vec![ev(1, "w", EventKind::Expired { token: 2 })]
        );
        assert_eq!(e.gauges(), (4, 0, 0, 0));
    }
}

#[test]
fn a_wait_deadline_before_the_expiry_in_one_batch_times_out_first() {
    let mut e = engine();
    e.acquire(0, b"h", &req(b"a", X, None, Some(20)), 0); // expires at 21
    e.acquire(1, b"w", &req(b"a", X, Some(5), None), 0); // times out at 6
    e.acquire(2, b"v", &req(b"a", X, Some(50), None), 0); // would time out at 51
    e.advance(100);
    assert_eq!(
        events(&mut e),
        vec![
            ev(1, "w", EventKind::Timeout),
            ev(0, "h", EventKind::Expired { token: 1 }),
            ev(2, "v", granted(2, 1, false)),
        ]
    );
}

#[test]
fn extend_moves_the_expiry() {
    let mut e = engine();
    e.acquire(0, b"h", &req(b"a", X, None, Some(10)), 0); // expires at 11
    assert_eq!(e.extend(0, b"a", 1, 50, 5), Ok(())); // now at 56
    assert_eq!(
        e.extend(0, b"a", 2, 50, 5),
        Err(FindError::NotHeld),
        "wrong token"
    );
    assert_eq!(
        e.extend(1, b"a", 1, 50, 5),
        Err(FindError::NotHeld),
        "not the owner"
    );
    assert_eq!(
        e.extend(0, b"b", 1, 50, 5),
        Err(FindError::NotHeld),
        "other name"
    );
    e.advance(11);
    e.advance(55);
    assert_eq!(events(&mut e), vec![]);
    assert!(e.next_wake().is_some_and(|t| t <= 56));
    // Shortening works too.
    assert_eq!(e.extend(0, b"a", 1, 0, 55), Ok(())); // now at 56
    e.advance(56);
    assert_eq!(
        events(&mut e),
        vec![ev(0, "h", EventKind::Expired { token: 1 })]
    );
    assert_eq!(
        e.extend(0, b"a", 1, 50, 57),
        Err(FindError::NotHeld),
        "expired"
    );
    // A hold without a deadline gets one.
    e.acquire(0, b"g", &forever(b"a", X), 60);
    assert_eq!(e.next_wake(), None);
    assert_eq!(e.extend(0, b"a", 2, 7, 60), Ok(()));
    e.advance(67);
    assert_eq!(events(&mut e), vec![]);
    e.advance(68);
    assert_eq!(
        events(&mut e),
        vec![ev(0, "g", EventKind::Expired { token: 2 })]
    );
}

#[test]
fn cancel_ends_the_waits_with_that_tag_in_request_order() {
    let mut e = engine();
    e.acquire(0, b"h", &forever(b"a", X), 0);
    e.acquire(0, b"h", &forever(b"b", X), 0);
    for (tag, name) in [("t", b"a"), ("u", b"a"), ("t", b"b")] {
        assert_eq!(
            e.acquire(1, tag.as_bytes(), &req(name, X, Some(100), None), 1),
            Acquired::Queued
        );
    }
    let mut seen = Vec::new();
    assert_eq!(e.cancel(1, b"t", 2, |t| seen.push(t.to_vec())), 2);
    assert_eq!(seen, vec![b"t".to_vec(), b"t".to_vec()]);
    assert_eq!(e.waiters_on(b"a").collect::<Vec<_>>(), vec![1]);
    assert_eq!(counts(&e, b"b"), (1, 0));
    assert_eq!(
        events(&mut e),
        vec![],
        "a cancelled wait gets no event from the engine"
    );
    // Not waiting (any more, or another client's, or a hold's tag): 0, no calls.
    assert_eq!(e.cancel(1, b"t", 3, |_| panic!("nothing to cancel")), 0);
    assert_eq!(e.cancel(2, b"u", 3, |_| panic!("nothing to cancel")), 0);
    assert_eq!(e.cancel(0, b"h", 3, |_| panic!("nothing to cancel")), 0);
    // The cancelled waits' deadlines are gone: only "u" times out.
    e.advance(200);
    assert_eq!(events(&mut e), vec![ev(1, "u", EventKind::Timeout)]);
    assert_eq!(e.counters().timeouts_total, 1);
}

#[test]
fn cancelling_the_head_exclusive_waiter_grants_the_shared_waiters_behind_it() {
    let mut e = engine();
    assert_eq!(
        e.acquire(0, b"s1", &forever(b"a", S), 0),
        Acquired::Granted {
            token: 1,
            holders: 1
        }
    );
    assert_eq!(e.acquire(1, b"x", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(e.acquire(2, b"s2", &forever(b"a", S), 0), Acquired::Queued);
    assert_eq!(
        e.acquire(3, b"s3", &req(b"a", Mode::Shared { max: 3 }, None, None), 0),
        Acquired::Queued
    );
    assert_eq!(e.cancel(1, b"x", 1, |_| {}), 1);
    assert_eq!(
        events(&mut e),
        vec![
            ev(2, "s2", granted(2, 2, true)),
            ev(3, "s3", granted(3, 3, true))
        ]
    );
    assert_eq!(
        e.holds_on(b"a").collect::<Vec<_>>(),
        vec![(1, 0), (2, 2), (3, 3)]
    );
    assert_eq!(e.inspect(b"a").unwrap().1, None, "shared: no single holder");
}

#[test]
fn reset_cancels_waits_then_releases_holds() {
    let mut e = engine();
    e.acquire(0, b"h1", &forever(b"a", X), 0);
    e.acquire(0, b"h2", &forever(b"b", S), 0);
    e.acquire(2, b"o1", &forever(b"c", X), 0);
    e.acquire(2, b"o2", &forever(b"d", X), 0);
    e.acquire(0, b"q1", &req(b"c", X, Some(30), None), 0);
    e.acquire(0, b"q2", &forever(b"d", S), 0);
    e.acquire(1, b"w", &forever(b"a", S), 0);
    let mut tags = Vec::new();
    assert_eq!(e.reset(0, 1, |t| tags.push(t.to_vec())), (2, 2));
    assert_eq!(tags, vec![b"q1".to_vec(), b"q2".to_vec()]);
    assert_eq!(events(&mut e), vec![ev(1, "w", granted(5, 1, true))]);
    assert_eq!(
        e.gauges(),
        (4, 3, 3, 0),
        "a (client 1), c and d (client 2); b is gone"
    );
    assert_eq!(e.reset(0, 2, |_| panic!("nothing left")), (0, 0));
    e.advance(100);
    assert_eq!(events(&mut e), vec![], "q1's wait deadline was cancelled");
    assert_eq!(
        e.client(0).map(Client::addr),
        Some(addr()),
        "reset keeps the connection"
    );
}

#[test]
fn disconnect_releases_holds_cancels_waits_and_counts() {
    let mut e = engine();
    e.acquire(0, b"h1", &forever(b"a", X), 0); // token 1
    e.acquire(0, b"h2", &req(b"b", S, None, Some(5)), 0); // token 2
    e.acquire(1, b"o", &forever(b"c", X), 0); // token 3
    assert_eq!(e.acquire(0, b"q", &forever(b"c", X), 0), Acquired::Queued);
    assert_eq!(e.acquire(1, b"w", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(
        e.acquire(2, b"t", &req(b"a", X, Some(0), None), 0),
        Acquired::Timeout
    );
    assert_eq!(e.acquire(2, b"v", &forever(b"b", X), 0), Acquired::Queued);
    assert_eq!(e.disconnect(0, 3), 2);
    assert_eq!(
        events(&mut e),
        vec![
            ev(1, "w", granted(4, 1, false)),
            ev(2, "v", granted(5, 1, false))
        ]
    );
    assert!(e.client(0).is_none());
    assert_eq!(
        e.clients().map(|(id, _, n)| (id, n)).collect::<Vec<_>>(),
        vec![(1, (2, 0)), (2, (1, 0)), (3, (0, 0)),]
    );
    assert_eq!(e.gauges(), (3, 3, 3, 0));
    e.advance(100);
    assert_eq!(events(&mut e), vec![], "h2's hold deadline was cancelled");
    let c = e.counters();
    assert_eq!(
        c,
        Counters {
            connections_total: 4,
            grants_total: 5,
            waits_total: 3,
            timeouts_total: 1,
            expired_total: 0,
            released_on_disconnect_total: 2,
            limit_refusals_total: 0,
        }
    );
    // The slot can be reused.
    e.connect(0, addr());
    assert_eq!(
        e.acquire(0, b"n", &forever(b"d", X), 101),
        Acquired::Granted {
            token: 6,
            holders: 1
        }
    );
    assert_eq!((e.counters().connections_total, e.gauges().0), (5, 4));
}

#[test]
fn max_pending_counts_holds_and_waits() {
    let mut e = engine_with(2);
    e.acquire(0, b"1", &forever(b"a", X), 0);
    assert_eq!(e.acquire(0, b"2", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(e.acquire(0, b"3", &forever(b"b", X), 0), Acquired::Limit);
    assert_eq!(
        e.acquire(0, b"3", &req(b"b", X, Some(0), None), 0),
        Acquired::Limit
    );
    assert_eq!(
        e.acquire(1, b"1", &forever(b"b", X), 0),
        Acquired::Granted {
            token: 2,
            holders: 1
        }
    );
    assert_eq!(e.gauges(), (4, 2, 2, 1), "a refusal leaves no trace");
    // Releasing the hold grants the wait: 1 pending (the new hold), room for one more.
    assert_eq!(e.release(0, b"a", None, 1), Ok(()));
    assert_eq!(events(&mut e), vec![ev(0, "2", granted(3, 1, false))]);
    assert_eq!(
        e.acquire(0, b"3", &forever(b"c", X), 1),
        Acquired::Granted {
            token: 4,
            holders: 1
        }
    );
    assert_eq!(e.acquire(0, b"4", &forever(b"d", X), 1), Acquired::Limit);
    assert_eq!(e.counters().grants_total, 4, "a refusal is not a grant");
}

#[test]
fn wait_zero_on_a_busy_lock_is_an_immediate_timeout() {
    let mut e = engine();
    let try_once = req(b"a", S, Some(0), Some(10));
    assert_eq!(
        e.acquire(0, b"1", &try_once, 0),
        Acquired::Granted {
            token: 1,
            holders: 1
        }
    );
    assert_eq!(
        e.acquire(1, b"2", &try_once, 0),
        Acquired::Granted {
            token: 2,
            holders: 2
        }
    );
    e.acquire(2, b"x", &forever(b"a", X), 0);
    // Compatible with the holds, but an exclusive waits ahead of it.
    assert_eq!(e.acquire(3, b"3", &try_once, 0), Acquired::Timeout);
    assert_eq!(
        e.acquire(3, b"4", &req(b"a", X, Some(0), None), 0),
        Acquired::Timeout
    );
    assert_eq!(e.counters().timeouts_total, 2);
    assert_eq!(counts(&e, b"a"), (2, 1));
    assert_eq!(
        events(&mut e),
        vec![],
        "a try is answered by its return value only"
    );
}

/// Every list of claims counts at most `list::MAX_LEN` (its length word's top bit is a
/// lock's flag), so no engine allows more claims than that, whatever it is asked.
#[test]
fn max_claims_is_at_most_what_a_list_counts() {
    assert_eq!(MAX_CLAIMS, crate::list::MAX_LEN as usize);
    assert_eq!(engine().max_claims, MAX_CLAIMS);
    let e = Engine::new(Fence::starting_at(1), 0, 1).with_max_claims(usize::MAX);
    assert_eq!(e.max_claims, MAX_CLAIMS);
    let e = Engine::new(Fence::starting_at(1), 0, 1).with_max_claims(7);
    assert_eq!(e.max_claims, 7);
}

#[test]
fn queue_limit_refuses_when_that_many_wait() {
    let mut e = engine();
    e.acquire(0, b"h", &forever(b"a", X), 0);
    let q1 = AcquireRequest {
        queue: Some(1),
        ..forever(b"a", X)
    };
    assert_eq!(e.acquire(1, b"1", &q1, 0), Acquired::Queued);
    assert_eq!(e.acquire(2, b"2", &q1, 0), Acquired::QueueFull);
    let q2 = AcquireRequest {
        queue: Some(2),
        ..forever(b"a", S)
    };
    assert_eq!(e.acquire(2, b"2", &q2, 0), Acquired::Queued);
    assert_eq!(e.acquire(3, b"3", &q2, 0), Acquired::QueueFull);
    // A free lock is granted whatever the limit.
    let q0 = AcquireRequest {
        queue: Some(0),
        ..forever(b"b", X)
    };
    assert_eq!(
        e.acquire(3, b"3", &q0, 0),
        Acquired::Granted {
            token: 2,
            holders: 1
        }
    );
    assert_eq!(e.gauges(), (4, 2, 2, 2));
    let c = e.counters();
    assert_eq!((c.grants_total, c.timeouts_total), (2, 0));
}

/// Client 0 waits twice on one lock: an exclusive request, and a shared one that the
/// current (shared) hold would admit once the exclusive is gone. RESET must cancel
/// both: the spec's "cancel every wait", `OK 0 2`.
#[test]
fn reset_cancels_a_clients_second_wait_on_the_same_lock() {
    let mut e = engine();
    e.acquire(1, b"h", &forever(b"a", S), 0);
    assert_eq!(e.acquire(0, b"w1", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(e.acquire(0, b"w2", &forever(b"a", S), 0), Acquired::Queued);
    let mut tags = Vec::new();
    let got = e.reset(0, 1, |t| tags.push(t.to_vec()));
    assert_eq!(
        events(&mut e),
        vec![],
        "nothing is granted to a wait being cancelled"
    );
    assert_eq!(got, (0, 2), "(released, cancelled): client 0 held nothing");
    assert_eq!(tags, vec![b"w1".to_vec(), b"w2".to_vec()]);
    assert_eq!(e.counters().grants_total, 1);
    assert_eq!(e.holds_on(b"a").collect::<Vec<_>>(), vec![(1, 1)]);
}

/// Same situation, on disconnect: no event for the closing client, nothing counted as
/// released on disconnect.
#[test]
fn disconnect_cancels_a_clients_second_wait_on_the_same_lock() {
    let mut e = engine();
    e.acquire(1, b"h", &forever(b"a", S), 0);
    e.acquire(0, b"w1", &forever(b"a", X), 0);
    e.acquire(0, b"w2", &forever(b"a", S), 0);
    assert_eq!(e.disconnect(0, 1), 0, "client 0 held nothing");
    assert_eq!(events(&mut e), vec![]);
    let c = e.counters();
    assert_eq!((c.grants_total, c.released_on_disconnect_total), (1, 0));
}

/// CANCEL of a request id that two pending waits share (the spec allows reusing ids):
/// both are pending, so both are cancelled; neither is granted.
#[test]
fn cancel_of_a_shared_tag_never_grants_one_of_the_cancelled_waits() {
    let mut e = engine();
    e.acquire(1, b"h", &forever(b"a", S), 0);
    e.acquire(0, b"t", &forever(b"a", X), 0);
    e.acquire(0, b"t", &forever(b"a", S), 0);
    assert_eq!(e.cancel(0, b"t", 1, |_| {}), 2);
    assert_eq!(
        events(&mut e),
        vec![],
        "a wait being cancelled is not granted"
    );
    assert_eq!(e.counters().grants_total, 1);
    assert_eq!(e.holds_on(b"a").collect::<Vec<_>>(), vec![(1, 1)]);
}

#[test]
fn a_detached_hold_outlives_its_connection_and_is_released_by_token_from_another() {
    let mut e = engine();
    let r = req(b"a", X, Some(0), Some(100));
    let Acquired::Granted { token, .. } = e.acquire_detached(0, b"t0", &r, b"v", 0) else {
        panic!("not granted")
    };
    assert_eq!(e.acquire(1, b"t1", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(e.disconnect(0, 1), 0, "a detached hold is no connection's");
    assert_eq!(
        e.holds_on(b"a").collect::<Vec<_>>(),
        vec![(token, DETACHED)]
    );
    assert_eq!(e.inspect(b"a").unwrap().1.unwrap().client, DETACHED);
    let d = e.detached_on(b"a").unwrap();
    assert_eq!(
        (d.token, d.deadline, d.value),
        (token, Some(101), &b"v"[..])
    );
    assert_eq!(
        e.clients().map(|c| c.2).collect::<Vec<_>>(),
        vec![(0, 1), (0, 0), (0, 0)]
    );
    // Without its token nobody else has it; with it, anyone does.
    assert_eq!(e.release(2, b"a", None, 2), Err(FindError::NotHeld));
    assert_eq!(
        e.release(2, b"a", Some(token + 7), 2),
        Err(FindError::NotHeld)
    );
    assert_eq!(e.extend(2, b"a", token, 500, 2), Ok(()));
    assert_eq!(e.detached_on(b"a").unwrap().deadline, Some(503));
    assert_eq!(e.release(2, b"a", Some(token), 3), Ok(()));
    let ev1 = events(&mut e);
    assert_eq!(ev1.len(), 1);
    assert_eq!((ev1[0].client, ev1[0].tag.as_slice()), (1, &b"t1"[..]));
    assert_eq!((e.detached_count(), e.detached_on(b"a")), (0, None));
}

#[test]
fn release_detached_takes_only_a_detached_hold_with_its_token() {
    let mut e = engine();
    let Acquired::Granted { token, .. } = e.acquire_detached(0, b"t0", &forever(b"a", X), b"v", 0)
    else {
        panic!("not granted")
    };
    let Acquired::Granted { token: own, .. } = e.acquire(1, b"t1", &forever(b"b", X), 0) else {
        panic!("not granted")
    };
    assert_eq!(e.acquire(2, b"t2", &forever(b"a", X), 0), Acquired::Queued);
    assert_eq!(
        e.release_detached(b"a", token + 7, 1),
        Err(FindError::NotHeld)
    );
    assert_eq!(
        e.release_detached(b"b", own, 1),
        Err(FindError::NotHeld),
        "a client's hold"
    );
    assert_eq!(e.release_detached(b"c", token, 1), Err(FindError::NotHeld));
    let (info, d) = e.inspect_detached(b"a").unwrap();
    assert_eq!(
        (info.holders, info.waiters, d.map(|d| d.token)),
        (1, 1, Some(token))
    );
    assert_eq!(e.release_detached(b"a", token, 2), Ok(()));
    let ev = events(&mut e);
    assert_eq!((ev.len(), ev[0].client), (1, 2), "the waiter is granted");
    assert_eq!((e.detached_count(), e.detached_on(b"a")), (0, None));
    assert_eq!(
        e.inspect_detached(b"a")
            .map(|(i, d)| (i.holders, d.is_none())),
        Some((1, true))
    );
    assert_eq!(e.inspect_detached(b"c"), None);
}

#[test]
fn release_detached_if_asks_before_it_releases() {
    let mut e = engine();
    let Acquired::Granted { token, .. } = e.acquire_detached(0, b"t0", &forever(b"a", X), b"v", 0)
    else {
        panic!("not granted")
    };
    assert!(matches!(
        e.acquire(1, b"t1", &forever(b"b", X), 0),
        Acquired::Granted { .. }
    ));
    assert_eq!(e.acquire(2, b"t2", &forever(b"a", X), 0), Acquired::Queued);
    let never =
        |_: &LockInfo, _: &DetachedHold<'_>| -> bool { panic!("asked with no detached hold") };
    assert!(
        !e.release_detached_if(b"b", 1, never),
        "a client's hold is not detached"
    );
    assert!(!e.release_detached_if(b"c", 1, never), "no lock");
    let mut seen = None;
    assert!(!e.release_detached_if(b"a", 1, |i, d| {
        seen = Some((i.holders, i.waiters, d.token, d.value.to_vec()));
        false
    }));
    assert_eq!(seen, Some((1, 1, token, b"v".to_vec())));
    assert_eq!(e.detached_count(), 1, "kept when told no");
    assert!(e.release_detached_if(b"a", 2, |_, d| d.value == b"v"));
    let ev = events(&mut e);
    assert_eq!((ev.len(), ev[0].client), (1, 2), "the waiter is granted");
    assert_eq!((e.detached_count(), e.detached_on(b"a")), (0, None));
}

#[test]
fn a_detached_hold_expires_silently_and_grants_the_next_waiter() {
    let mut e = engine();
    let r = req(b"a", X, Some(0), Some(10));
    assert!(matches!(
        e.acquire_detached(0, b"t0", &r, b"", 0),
        Acquired::Granted { .. }
    ));
    assert_eq!(e.acquire(1, b"t1", &forever(b"a", X), 0), Acquired::Queued);
    e.advance(10);
    assert!(events(&mut e).is_empty(), "not due before now + hold + 1");
    e.advance(11);
    let got = events(&mut e);
    assert_eq!(got.len(), 1, "only the waiter hears: {got:?}");
    assert_eq!(got[0].client, 1);
    assert!(matches!(got[0].kind, EventKind::Granted { .. }));
    assert_eq!(e.counters().expired_total, 1);
}

#[test]
fn a_detached_request_waits_as_its_connections_and_detaches_at_the_grant() {
    let mut e = engine();
    assert!(matches!(
        e.acquire(0, b"t0", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    let r = req(b"a", X, None, None);
    assert_eq!(
        e.acquire_detached(1, b"t1", &r, b"val", 0),
        Acquired::Queued
    );
    assert_eq!(e.clients().map(|c| c.2).collect::<Vec<_>>()[1], (0, 1));
    assert_eq!(e.release(0, b"a", None, 1), Ok(()));
    let got = events(&mut e);
    assert_eq!(
        (got.len(), got[0].client),
        (1, 1),
        "the grant goes to the asker"
    );
    assert_eq!(e.clients().map(|c| c.2).collect::<Vec<_>>()[1], (0, 0));
    assert_eq!(e.detached_on(b"a").unwrap().value, b"val");
    assert_eq!(
        e.detached_on(b"a").unwrap().deadline,
        None,
        "no hold: never ends"
    );
    // A waiting detached request is cancelled with its connection.
    assert_eq!(e.acquire_detached(2, b"t2", &r, b"", 2), Acquired::Queued);
    e.disconnect(2, 3);
    assert_eq!(counts(&e, b"a"), (1, 0));
    e.advance(1_000_000);
    assert_eq!(e.detached_count(), 1, "a hold without a deadline stays");
}

#[test]
fn attachments_are_bounded_and_their_buffers_reused() {
    let mut e = engine();
    let r = req(b"a", X, Some(0), None);
    let big = vec![7u8; MAX_ATTACHMENT + 1];
    assert_eq!(e.acquire_detached(0, b"t", &r, &big, 0), Acquired::Limit);
    let Acquired::Granted { token, .. } = e.acquire_detached(0, b"t", &r, b"abc", 0) else {
        panic!()
    };
    assert_eq!(e.attach(b"a", token, &big), Err(AttachError::Limit));
    assert_eq!(e.attach(b"a", token + 1, b"x"), Err(AttachError::NotHeld));
    assert_eq!(e.attach(b"a", token, b"xyz!"), Ok(()));
    assert_eq!(e.detached_on(b"a").unwrap().value, b"xyz!");
    assert_eq!(e.attachment_bytes, 4);
    e.release(0, b"a", Some(token), 0).unwrap();
    assert_eq!((e.attachment_bytes, e.spare_values.len()), (0, 1));
    let Acquired::Granted { .. } = e.acquire_detached(0, b"t", &r, b"abc", 0) else {
        panic!()
    };
    assert_eq!(e.spare_values.len(), 0, "the buffer was reused");
}

/// The memory per hold that PERF.md's "1M held locks" figure rests on: a claim (in its
/// slab), a lock (in its slab) and an index slot. Growing either struct is a decision to
/// take on purpose, with PERF.md updated.
#[test]
fn claim_and_lock_stay_within_their_budget() {
    let claim = std::mem::size_of::<crate::table::Claim<Pending>>();
    let lock = crate::table::lock_size();
    assert_eq!(
        std::mem::size_of::<Pending>(),
        40,
        "tag 24, timer, hold, since"
    );
    assert_eq!(claim, 80, "a claim is 80 bytes");
    assert_eq!(lock, 48, "a lock is 48 bytes (its flags in its lists)");
    assert_eq!(
        std::mem::size_of::<Tag>(),
        40,
        "request tags in events are 32 bytes inline"
    );
}

/// Request ids of up to 22 bytes (loadgen's and the Rust client's decimal counters) are
/// stored in the claim, without a heap buffer; longer ones (up to the native 32, or a
/// foreign codec's longer tags) in one, and every event still carries the whole tag.
#[test]
fn short_request_ids_are_inline_and_long_ones_come_back_whole() {
    let mut e = engine();
    let long = [b'L'; 200];
    for tag in [&b"12345678901234567890ab"[..], &[b'i'; 23][..], &long[..]] {
        let Acquired::Granted { token, .. } = e.acquire(0, b"h", &forever(b"q", X), 0) else {
            panic!("free lock not granted")
        };
        assert_eq!(e.acquire(1, tag, &forever(b"q", X), 0), Acquired::Queued);
        let claim = e.table.waits_of(1).next().unwrap();
        assert_eq!(
            e.table.claim(claim).data.tag.spilled(),
            tag.len() > crate::compact::INLINE,
            "tag of {} bytes",
            tag.len()
        );
        e.release(0, b"q", Some(token), 0).unwrap();
        let got = events(&mut e);
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].tag[..], tag);
        let EventKind::Granted { token, .. } = got[0].kind else {
            panic!("not granted: {got:?}")
        };
        e.release(1, b"q", Some(token), 0).unwrap();
    }
}

/// Elements of intrusive lists visited by `f`: a count of work, not of time.
fn steps(f: impl FnOnce()) -> u64 {
    let before = crate::list::steps::get();
    f();
    crate::list::steps::get() - before
}

/// `cancel` and `is_waiting` find a client's waits by tag through the table's key
/// index: once the first lookup has indexed the client's waits (O(waits), once), their
/// work does not grow with the client's other waits (it used to walk them all, so N
/// cancels cost O(N^2)).
#[test]
fn cancel_and_is_waiting_cost_does_not_grow_with_the_clients_other_waits() {
    let mut cost = Vec::new();
    for n in [100u32, 10_000] {
        let mut e = engine_with(n + 10);
        assert!(matches!(
            e.acquire(0, b"h", &forever(b"a", X), 0),
            Acquired::Granted { .. }
        ));
        for i in 0..n {
            let tag = format!("w{i}");
            assert_eq!(
                e.acquire(1, tag.as_bytes(), &forever(b"a", X), 0),
                Acquired::Queued
            );
        }
        let mut found = false;
        let mut cancelled = 0;
        let index = steps(|| found = e.is_waiting(1, b"w1"));
        assert!(found);
        assert!(
            index <= u64::from(n) * 2 + 10,
            "indexing {n} waits took {index} list steps"
        );
        let work = steps(|| {
            found = e.is_waiting(1, b"w0") && !e.is_waiting(1, b"nope");
            cancelled = e.cancel(1, b"w0", 0, |_| {});
            cancelled += e.cancel(1, b"nope", 0, |_| {});
        });
        assert!(found);
        assert_eq!(cancelled, 1);
        assert!(!e.is_waiting(1, b"w0"));
        cost.push(work);
    }
    assert_eq!(
        cost[0], cost[1],
        "list steps for 100 vs 10,000 other waits: {cost:?}"
    );
}

/// A closing client's claims are removed by `work`, a budget at a time; its waits are
/// dropped, never granted, and it gets no events; the others get their grants, once.
#[test]
fn a_closing_client_is_removed_a_budget_at_a_time_and_its_waits_are_never_granted() {
    let mut e = engine_with(100_000);
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    for i in 0..3000 {
        let tag = format!("w{i}");
        let r = e.acquire(1, tag.as_bytes(), &req(b"a", X, Some(50), None), 0);
        assert_eq!(r, Acquired::Queued);
    }
    for i in 0..2000 {
        let name = format!("h{i}");
        assert!(matches!(
            e.acquire(1, b"held", &forever(name.as_bytes(), X), 0),
            Acquired::Granted { .. }
        ));
    }
    assert_eq!(
        e.acquire(2, b"on-h0", &forever(b"h0", X), 0),
        Acquired::Queued
    );
    assert_eq!(
        e.acquire(3, b"behind", &forever(b"a", X), 0),
        Acquired::Queued
    );

    assert!(e.begin_disconnect(1));
    assert!(!e.begin_disconnect(1), "only once");
    assert_eq!(e.gauges().0, 3);
    assert!(e.clients().all(|(c, _, _)| c != 1));
    // The holder goes: client 1's waits reach the head and are dropped, not granted.
    e.release(0, b"a", None, 1).unwrap();
    let mut got = events(&mut e);
    let mut calls = 0;
    while e.has_work() {
        let used = e.work(2, 500);
        assert!(used <= 500, "work used {used} of a budget of 500");
        calls += 1;
        got.extend(events(&mut e));
        // The wait deadlines of the dropped waits never fire.
        e.advance(2 + calls);
        got.extend(events(&mut e));
        assert!(calls < 100, "work does not finish");
    }
    // The release dropped a batch of the waits; the other ~4,000 claims take 8 calls.
    assert!(calls >= 8, "5,000 claims removed in {calls} calls of 500");
    assert!(got.iter().all(|ev| ev.client != 1), "{got:?}");
    let mine: Vec<(ClientId, &[u8])> = got.iter().map(|ev| (ev.client, &ev.tag[..])).collect();
    assert_eq!(mine, vec![(3, &b"behind"[..]), (2, &b"on-h0"[..])]);
    let mut freed = Vec::new();
    e.take_freed(&mut freed);
    assert_eq!(freed, vec![1]);
    assert_eq!(e.counters().released_on_disconnect_total, 2000);
    assert_eq!(e.counters().timeouts_total, 0);
    assert_eq!(e.gauges(), (3, 2, 2, 0));
    // The id can be used again.
    e.connect(1, addr());
    assert!(matches!(
        e.acquire(1, b"n", &forever(b"h1", X), 300),
        Acquired::Granted { .. }
    ));
}

/// One release in front of more compatible waiters than a batch: a batch now, the rest
/// by `work`, in FIFO order, each once; a newcomer queues behind them.
#[test]
fn grants_beyond_a_batch_continue_in_work_in_fifo_order() {
    let n = 3 * crate::table::GRANT_BATCH + 5;
    let mut e = engine_with(100_000);
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    for i in 0..n {
        let tag = format!("s{i}");
        assert_eq!(
            e.acquire(1, tag.as_bytes(), &forever(b"a", S), 0),
            Acquired::Queued
        );
    }
    e.release(0, b"a", None, 1).unwrap();
    let mut got = events(&mut e);
    assert_eq!(got.len(), crate::table::GRANT_BATCH as usize);
    assert_eq!(
        e.acquire(2, b"late", &forever(b"a", S), 1),
        Acquired::Queued,
        "no overtaking while grants are pending"
    );
    while e.has_work() {
        e.work(1, 100);
        got.extend(events(&mut e));
    }
    let tags: Vec<String> = got
        .iter()
        .map(|ev| String::from_utf8(ev.tag.to_vec()).unwrap())
        .collect();
    let mut want: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    want.push("late".into());
    assert_eq!(tags, want);
    assert_eq!(counts(&e, b"a"), (n + 1, 0));
}

/// A detached hold outlives its connection's deferred close, and a closing connection's
/// detached request still waiting is dropped with its value: never granted, and its
/// claim id, reused, does not make another client's hold detached.
#[test]
fn a_closing_client_keeps_its_detached_holds_and_drops_its_detached_waits() {
    let mut e = engine_with(100_000);
    let r = req(b"d", X, None, Some(60_000));
    let Acquired::Granted { token, .. } = e.acquire_detached(1, b"kept", &r, b"v", 0) else {
        panic!("a free lock");
    };
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    let wait = req(b"a", X, None, Some(60_000));
    assert_eq!(
        e.acquire_detached(1, b"waits", &wait, b"value", 0),
        Acquired::Queued
    );
    assert!(e.begin_disconnect(1));
    // The holder goes: the closing client's detached request reaches the head and is
    // dropped there, not granted.
    e.release(0, b"a", None, 1).unwrap();
    while e.has_work() {
        e.work(1, 10);
    }
    assert!(events(&mut e).is_empty());
    assert_eq!(counts(&e, b"a"), (0, 0));
    assert_eq!(e.detached_count(), 1);
    assert_eq!(
        e.attachment_bytes, 1,
        "the dropped request's value is forgotten"
    );
    assert_eq!(e.detached_on(b"d").map(|d| d.token), Some(token));
    // Client 2 queues (taking the dropped claim's id) and is granted: its own hold.
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"b", X), 2),
        Acquired::Granted { .. }
    ));
    assert_eq!(e.acquire(2, b"w", &forever(b"b", X), 2), Acquired::Queued);
    e.release(0, b"b", None, 3).unwrap();
    assert_eq!(e.holds_of(2).count(), 1, "client 2's grant is its own");
    assert_eq!(e.detached_count(), 1);
    // The detached hold ends by token, from any connection.
    e.release(3, b"d", Some(token), 4).unwrap();
    assert_eq!(e.detached_count(), 0);
}

/// More detached shared requests than one grant batch: a batch at once, the rest by
/// `work`, each detached at its grant, in FIFO order, each answered once; the
/// connection that made them then closes and every one of them stays.
#[test]
fn detached_requests_beyond_a_grant_batch_are_detached_when_granted_later() {
    let n = 2 * crate::table::GRANT_BATCH + 3;
    let mut e = engine_with(100_000);
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    let r = req(b"a", S, None, Some(60_000));
    for i in 0..n {
        let tag = format!("s{i}");
        assert_eq!(
            e.acquire_detached(1, tag.as_bytes(), &r, b"x", 0),
            Acquired::Queued
        );
    }
    e.release(0, b"a", None, 1).unwrap();
    let mut got = events(&mut e);
    assert_eq!(got.len(), crate::table::GRANT_BATCH as usize);
    while e.has_work() {
        e.work(1, 100);
        got.extend(events(&mut e));
    }
    let tags: Vec<String> = got
        .iter()
        .map(|ev| String::from_utf8(ev.tag.to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    assert_eq!(tags, want);
    assert!(got.iter().all(|ev| ev.client == 1));
    assert_eq!(e.detached_count(), n as usize);
    assert_eq!(e.holds_of(1).count(), 0, "every grant was detached");
    assert!(e.disconnect(1, 2) == 0);
    assert_eq!(e.detached_count(), n as usize);
    assert_eq!(counts(&e, b"a"), (n, 0));
}

/// Cancelling two waits with one tag while grants of their lock are cut short by the
/// batch limit: the later wait's removal must not grant the earlier one on the way
/// (it was about to be cancelled: the client would get `CANCELLED` and a grant, and
/// the grant would then be released as a cancel).
#[test]
fn cancel_during_a_grant_backlog_never_grants_a_wait_being_cancelled() {
    let n = crate::table::GRANT_BATCH + 5;
    let mut e = engine_with(100_000);
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"a", X), 0),
        Acquired::Granted { .. }
    ));
    for i in 0..n {
        let tag = format!("s{i}");
        assert_eq!(
            e.acquire(2, tag.as_bytes(), &forever(b"a", S), 0),
            Acquired::Queued
        );
    }
    for _ in 0..2 {
        assert_eq!(e.acquire(1, b"t", &forever(b"a", S), 0), Acquired::Queued);
    }
    e.release(0, b"a", None, 1).unwrap();
    assert_eq!(events(&mut e).len(), crate::table::GRANT_BATCH as usize);
    assert!(e.has_work(), "grants cut short by the batch");
    let mut cancelled = 0;
    assert_eq!(e.cancel(1, b"t", 1, |_| cancelled += 1), 2);
    assert_eq!(cancelled, 2);
    let mut got = events(&mut e);
    while e.has_work() {
        e.work(1, 100);
        got.extend(events(&mut e));
    }
    assert!(got.iter().all(|ev| ev.client == 2), "{got:?}");
    assert_eq!(got.len(), 5);
    assert_eq!(counts(&e, b"a"), (n, 0));
    assert_eq!(e.holds_of(1).count(), 0);
}

/// While a closed client's claims are still being removed, no listing shows it or its
/// holds, though they still count in the lock's holders (they still block).
#[test]
fn a_closing_client_is_in_no_listing_while_its_claims_are_removed() {
    let mut e = engine_with(100_000);
    for i in 0..10 {
        let name = format!("n{i}");
        assert!(matches!(
            e.acquire(1, b"t", &forever(name.as_bytes(), X), 0),
            Acquired::Granted { .. }
        ));
    }
    assert_eq!(e.acquire(2, b"w", &forever(b"n0", X), 0), Acquired::Queued);
    assert_eq!(e.acquire(1, b"w", &forever(b"n0", X), 0), Acquired::Queued);
    assert!(e.begin_disconnect(1));
    e.work(0, 2); // the wait and one hold: the others are left
    assert!(e.has_work());
    let mut clients = Vec::new();
    assert_eq!(
        e.scan_clients(&mut Cursor::default(), 100, |(id, _, _)| {
            clients.push(id);
            true
        }),
        Scan::Done
    );
    assert_eq!(clients, vec![0, 2, 3]);
    assert!(e.clients().all(|(id, _, _)| id != 1));
    let mut holders = Vec::new();
    e.scan_holds(&mut Cursor::default(), 100, |h| {
        holders.push(h.client);
        true
    });
    assert!(holders.iter().all(|&c| c != 1), "{holders:?}");
    assert_eq!(counts(&e, b"n9"), (1, 0), "still held until removed");
    let (info, holder) = e.inspect(b"n9").unwrap();
    assert!(info.exclusive && holder.is_none());
    assert_eq!(e.holds_on(b"n9").count(), 0);
    while e.has_work() {
        e.work(0, 2);
    }
    assert_eq!(counts(&e, b"n9"), (0, 0));
    let got = events(&mut e);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].client, &got[0].tag[..]), (2, &b"w"[..]));
}
