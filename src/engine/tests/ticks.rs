//! The engine on a microsecond clock (`with_ticks_per_ms(1000)`, as the server runs
//! it): deadlines keep the sub-millisecond part of `now`, fire at their tick and never
//! before, durations are still reported in milliseconds, and every fired timer records
//! its lateness in microseconds.

use super::*;

const US: u64 = 1000;

fn engine_us(now: u64) -> Engine {
    let fence = Fence::starting_at(1);
    Engine::new(fence, now, 8).with_ticks_per_ms(US)
}

#[test]
fn a_wait_fires_at_its_microsecond_and_not_one_before() {
    // The request is read 0.7 ms into millisecond 5.
    let start = 5 * US + 700;
    let mut e = engine_us(start);
    e.connect(0, addr());
    e.connect(1, addr());
    assert!(matches!(
        e.acquire(0, b"h", &forever(b"a", X), start),
        Acquired::Granted { .. }
    ));
    let wait = req(b"a", X, Some(3), None);
    assert_eq!(e.acquire(1, b"w", &wait, start), Acquired::Queued);
    let deadline = start + 3 * US + 1;
    assert_eq!(e.next_wake().map(|t| t <= deadline), Some(true));
    e.advance(deadline - 1);
    assert_eq!(events(&mut e), vec![], "fired a tick early");
    assert_eq!(e.timer_lateness().count(), 0);
    // Fired 40 µs after its deadline: one observation of 40 µs.
    e.advance(deadline + 40);
    assert_eq!(events(&mut e), vec![ev(1, "w", EventKind::Timeout)]);
    let late = e.timer_lateness();
    assert_eq!((late.count(), late.sum_us(), late.max_us()), (1, 40, 40));
    assert_eq!(late.cumulative().find(|&(b, _)| b == 50), Some((50, 1)));
    assert_eq!(late.cumulative().find(|&(b, _)| b == 25), Some((25, 0)));
}

#[test]
fn holds_expire_at_their_microsecond_and_durations_stay_in_milliseconds() {
    let start = 1_000 * US + 999;
    let mut e = engine_us(start);
    e.connect(0, addr());
    let token = match e.acquire(0, b"h", &req(b"a", X, None, Some(2)), start) {
        Acquired::Granted { token, .. } => token,
        other => panic!("{other:?}"),
    };
    let deadline = start + 2 * US + 1;
    assert_eq!(
        e.hold_deadlines(b"a").collect::<Vec<_>>(),
        vec![Some(deadline)]
    );
    e.advance(deadline - 1);
    assert_eq!(events(&mut e), vec![]);
    e.advance(deadline);
    assert_eq!(
        events(&mut e),
        vec![ev(0, "h", EventKind::Expired { token })]
    );
    assert_eq!(e.timer_lateness().sum_us(), 0, "fired exactly on time");
    // The histogram counts whole milliseconds of the clock: granted in ms 1000, ended
    // in ms 1003 (2.001 ms later).
    assert_eq!(e.hold_duration().count(), 1);
    assert_eq!(e.hold_duration().sum_ms(), 3);
    assert_eq!(e.uptime(start + 7 * US), 7);
}

#[test]
fn the_longest_millisecond_deadline_fits_the_wheel() {
    let start = 12_345;
    let mut e = engine_us(start);
    e.connect(0, addr());
    e.acquire(0, b"h", &req(b"a", X, None, Some(u32::MAX)), start);
    let deadline = start + u64::from(u32::MAX) * US + 1;
    assert_eq!(
        e.hold_deadlines(b"a").collect::<Vec<_>>(),
        vec![Some(deadline)],
        "not clamped"
    );
    e.advance(deadline - 1);
    assert_eq!(events(&mut e), vec![]);
    e.advance(deadline);
    assert_eq!(events(&mut e).len(), 1);
}
