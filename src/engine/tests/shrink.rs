//! Memory that comes back: after a burst of holds is released, `maintain` shrinks the
//! name index, the lock and claim slabs and the timer slab; under a steady load it
//! leaves them alone (no oscillation). Capacities, not RSS, are checked.

use super::*;
use crate::shrink::SHRINK_MIN;

const BURST: usize = 50_000;

fn name(i: usize) -> Vec<u8> {
    format!("burst:{i}").into_bytes()
}

#[test]
fn a_released_burst_gives_its_capacity_back_and_the_table_still_works() {
    let mut e = engine_with(u32::MAX);
    for i in 0..BURST {
        let n = name(i);
        let hold = req(&n, X, None, Some(600_000));
        assert!(matches!(
            e.acquire((i % 4) as ClientId, b"t", &hold, 0),
            Acquired::Granted { .. }
        ));
    }
    let (peak, timers) = e.capacity();
    assert!(peak.claims >= BURST && peak.locks >= BURST && peak.index >= BURST);
    assert!(timers >= BURST);
    assert!(!e.maintain(), "full: nothing to give back");
    assert_eq!(e.capacity(), (peak, timers));

    // Release all but the first 100 (the lowest slots): the tails are vacant.
    for i in 100..BURST {
        e.release((i % 4) as ClientId, &name(i), None, 5).unwrap();
    }
    assert!(e.maintain());
    let (after, timers_after) = e.capacity();
    for (what, cap) in [
        ("index", after.index),
        ("locks", after.locks),
        ("claims", after.claims),
        ("timers", timers_after),
    ] {
        assert!(cap <= 2 * SHRINK_MIN, "{what} kept {cap} slots");
    }
    assert!(!e.maintain(), "a second pass finds nothing more");
    // Every remaining hold is intact and the table grows again as needed.
    assert_eq!(e.gauges().2, 100);
    for i in 0..100 {
        assert_eq!(e.holds_on(&name(i)).count(), 1, "hold {i}");
        assert_eq!(e.hold_deadlines(&name(i)).next(), Some(Some(600_001)));
    }
    for i in 100..BURST {
        assert!(matches!(
            e.acquire(0, b"u", &forever(&name(i), X), 6),
            Acquired::Granted { .. }
        ));
    }
    assert_eq!(e.gauges().2, BURST);
    e.disconnect(0, 7);
    e.disconnect(1, 7);
    e.disconnect(2, 7);
    e.disconnect(3, 7);
    assert_eq!(e.gauges(), (0, 0, 0, 0));
    e.maintain();
    let (empty, _) = e.capacity();
    assert!(empty.claims <= SHRINK_MIN && empty.locks <= SHRINK_MIN);
}

#[test]
fn a_steady_load_above_a_quarter_is_never_shrunk() {
    let mut e = engine_with(u32::MAX);
    for i in 0..BURST {
        e.acquire(0, b"t", &forever(&name(i), X), 0);
    }
    // Down to 40% of the burst (above a quarter of the 65,536-slot capacity) and back
    // up, over and over: capacity never changes.
    let peak = e.capacity();
    for round in 0..3 {
        for i in (BURST * 4 / 10)..BURST {
            e.release(0, &name(i), None, round).unwrap();
        }
        assert!(!e.maintain(), "round {round}: shrank above a quarter full");
        for i in (BURST * 4 / 10)..BURST {
            e.acquire(0, b"t", &forever(&name(i), X), round);
        }
        assert!(!e.maintain());
        assert_eq!(e.capacity(), peak, "round {round}");
    }
}
