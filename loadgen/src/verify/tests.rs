//! The verifier alone, on hand-made grant sequences: overlaps, tokens going back,
//! expiry races, leases changed by EXTEND, the shared maximum and exclusive and shared
//! holds on one name.

use super::*;

fn verifier(tracks: bool) -> Verifier {
    Verifier {
        shards: (0..4).map(|_| Mutex::new(HashMap::new())).collect(),
        tracks,
        check_order: true,
        servers: vec!["s:1".into()],
        prefix: "lg:".into(),
        start: Instant::now(),
    }
}

fn rec(owner: u64, token: u64, granted: Instant) -> HoldRec {
    HoldRec {
        owner,
        token,
        granted,
        shared: false,
        lease_end: None,
        holders: None,
    }
}

fn shared(owner: u64, token: u64, granted: Instant) -> HoldRec {
    HoldRec {
        shared: true,
        ..rec(owner, token, granted)
    }
}

fn props(out: &[Finding]) -> Vec<Property> {
    out.iter().map(|f| f.0).collect()
}

#[test]
fn verifier_exclusive() {
    let v = verifier(true);
    let t = Instant::now();
    assert!(v.grant(0, 1, rec(1 << 20, 10, t), None, None).is_empty());
    // Second grant while the first is live: overlap.
    let out = v.grant(0, 1, rec(2 << 20, 11, t), None, None);
    assert_eq!(props(&out), [Property::Exclusion], "{out:?}");
    assert!(out[0].1.contains("exclusive overlap on lg:1 on s:1"));
    v.release(0, 1, 1 << 20, 10);
    v.release(0, 1, 2 << 20, 11);
    // Fine after release; another name is independent.
    assert!(v.grant(0, 1, rec(1 << 20, 12, t), None, None).is_empty());
    assert!(v.grant(0, 2, rec(2 << 20, 13, t), None, None).is_empty());
    v.release(0, 1, 1 << 20, 12);
    // Token going backwards on a name.
    let out = v.grant(0, 1, rec(1 << 20, 5, t), None, None);
    assert_eq!(props(&out), [Property::Tokens], "{out:?}");
    assert!(out[0].1.contains("tokens not increasing"));
}

#[test]
fn verifier_hold_expiry_is_not_an_overlap() {
    let v = verifier(true);
    let t = Instant::now();
    let ms = Duration::from_millis;
    let leased = |owner, token, granted| HoldRec {
        lease_end: Some(t + ms(10)),
        ..rec(owner, token, granted)
    };
    assert!(v.grant(0, 1, leased(1, 10, t), None, None).is_empty());
    // 5 ms later: surely still held.
    let out = v.grant(0, 1, rec(2, 11, t + ms(5)), None, None);
    assert_eq!(out.len(), 1);
    v.release(0, 1, 2, 11);
    // 20 ms later the first may have expired: no violation.
    let later = t + ms(20);
    assert!(v.grant(0, 1, rec(3, 12, later), None, None).is_empty());
}

#[test]
fn extend_moves_the_lease() {
    let v = verifier(true);
    let t = Instant::now();
    let ms = Duration::from_millis;
    let held = HoldRec {
        lease_end: Some(t + ms(10)),
        ..rec(1, 10, t)
    };
    assert!(v.grant(0, 1, held, None, None).is_empty());
    // An EXTEND in flight to a later end changes nothing: the old lease may still fire.
    v.set_lease(0, 1, 1, 10, LeaseChange::AtMost(t + ms(100)));
    assert!(v.grant(0, 1, rec(2, 11, t + ms(20)), None, None).is_empty());
    v.release(0, 1, 2, 11);
    // Its OK replaces the lease: now a grant at +20 ms overlaps.
    v.set_lease(0, 1, 1, 10, LeaseChange::Replace(t + ms(100)));
    let out = v.grant(0, 1, rec(3, 12, t + ms(20)), None, None);
    assert_eq!(props(&out), [Property::Exclusion], "{out:?}");
    // An EXTEND in flight to an earlier end lowers it at once.
    v.release(0, 1, 3, 12);
    v.set_lease(0, 1, 1, 10, LeaseChange::AtMost(t + ms(30)));
    assert!(v.grant(0, 1, rec(4, 13, t + ms(40)), None, None).is_empty());
    // A released hold is not revived by a late lease change.
    v.release(0, 1, 1, 10);
    v.release(0, 1, 4, 13);
    v.set_lease(0, 1, 1, 10, LeaseChange::Replace(t + ms(1000)));
    assert!(v.grant(0, 1, rec(5, 14, t + ms(50)), None, None).is_empty());
}

#[test]
fn verifier_shared_max() {
    let v = verifier(true);
    let t = Instant::now();
    let max = Some(2);
    assert!(v.grant(0, 1, shared(1, 10, t), max, Some(1)).is_empty());
    assert!(v.grant(0, 1, shared(2, 11, t), max, Some(2)).is_empty());
    let out = v.grant(0, 1, shared(3, 12, t), max, Some(3));
    assert_eq!(
        props(&out),
        [Property::SharedMax, Property::SharedMax],
        "{out:?}"
    );
    v.release(0, 1, 1, 10);
    v.release(0, 1, 3, 12);
    assert!(v.grant(0, 1, shared(4, 13, t), max, Some(2)).is_empty());
}

#[test]
fn exclusive_and_shared_on_one_name() {
    let v = verifier(true);
    let t = Instant::now();
    assert!(v.grant(0, 1, shared(1, 10, t), Some(3), Some(1)).is_empty());
    assert!(v.grant(0, 1, shared(2, 11, t), Some(3), Some(2)).is_empty());
    // An exclusive grant while shared holds are live overlaps them.
    let out = v.grant(0, 1, rec(3, 12, t), None, None);
    assert_eq!(props(&out), [Property::Exclusion], "{out:?}");
    v.release(0, 1, 1, 10);
    v.release(0, 1, 2, 11);
    // And a shared grant while the exclusive one is live.
    let out = v.grant(0, 1, shared(4, 13, t), Some(3), Some(1));
    assert_eq!(props(&out), [Property::Exclusion], "{out:?}");
    v.release(0, 1, 3, 12);
    v.release(0, 1, 4, 13);
    // Shared grants seen out of token order are fine (they may coexist)...
    assert!(v.grant(0, 1, shared(5, 20, t), Some(3), Some(1)).is_empty());
    assert!(v.grant(0, 1, shared(6, 19, t), Some(3), Some(2)).is_empty());
    v.release(0, 1, 5, 20);
    v.release(0, 1, 6, 19);
    // ...but a live shared hold with a token below the last exclusive one is not.
    let out = v.grant(0, 1, shared(7, 11, t), Some(3), Some(1));
    assert_eq!(props(&out), [Property::Tokens], "{out:?}");
}

#[test]
fn untracked_names_check_only_the_holders_field() {
    let v = verifier(false);
    let t = Instant::now();
    assert!(v.grant(0, 1, shared(1, 10, t), None, Some(7)).is_empty());
    let out = v.grant(0, 1, shared(2, 11, t), Some(2), Some(3));
    assert_eq!(props(&out), [Property::SharedMax], "{out:?}");
}

#[test]
fn a_grant_that_may_have_expired_first_is_no_overlap() {
    let v = verifier(true);
    let t = Instant::now();
    let ms = Duration::from_millis;
    // A later grant (token 12) arrives first; then the grant of token 11, whose 3 ms
    // lease may have run out before token 12 was granted: no proof they overlapped.
    assert!(v.grant(0, 1, rec(1, 12, t + ms(10)), None, None).is_empty());
    let short = HoldRec {
        lease_end: Some(t + ms(3)),
        ..rec(2, 11, t + ms(11))
    };
    assert!(v.grant(0, 1, short, None, None).is_empty());
    v.release(0, 1, 2, 11);
    // Without the lease it would have been held when token 12 was granted.
    let out = v.grant(0, 1, rec(3, 11, t + ms(12)), None, None);
    assert!(props(&out).contains(&Property::Exclusion), "{out:?}");
    v.release(0, 1, 3, 11);
    // An older live hold (smaller token) conflicts whatever the new lease.
    let short = HoldRec {
        lease_end: Some(t + ms(3)),
        ..rec(4, 13, t + ms(13))
    };
    let out = v.grant(0, 1, short, None, None);
    assert_eq!(props(&out), [Property::Exclusion], "{out:?}");
}

/// The Redis timeline behind a flaky `exclusive overlap` under CPU load, with the
/// verifier of a real `--target redis --hold 3` run (random tokens, every hold leased):
/// a `+OK` read late, after its own `PX` may have run out at Redis and another client
/// took the name, is no overlap; the same pair is one when the late grant's lease could
/// not have run out before the other grant arrived.
#[test]
fn redis_grant_read_after_its_lease_may_have_run_out_is_no_overlap() {
    let args: Vec<String> = "--target redis --server 127.0.0.1:6379 --clients 8 --pipeline 2 \
                             --locks 2 --work 1 --hold 3 --wait 500 --verify"
        .split_whitespace()
        .map(String::from)
        .collect();
    let opts = crate::options::parse_args(&args).unwrap();
    let t = Instant::now();
    let v = Verifier::for_run(&opts, t).unwrap();
    let us = Duration::from_micros;
    let px = Duration::from_millis(3);
    let leased = |owner, token, sent: Instant, granted| HoldRec {
        lease_end: Some(sent + px),
        ..rec(owner, token, granted)
    };
    // Client 1's SET is sent at t and granted at once, but its poll loop is off the CPU
    // and reads the +OK only at t+5.6 ms. Its key expired at t+3; client 7's retry, sent
    // at t+4.8, took the name and was read at t+4.9.
    let o = leased(7 << SLOT_BITS, 10, t + us(4800), t + us(4900));
    assert!(v.grant(0, 0, o, None, None).is_empty());
    // Client 7 is surely holding at t+5.6 (its lease runs to t+7.8), but client 1's own
    // lease may have run out before client 7's grant. Tokens are random: the larger
    // token of client 1 says nothing about the order of the grants.
    let late = leased(1 << SLOT_BITS, 20, t, t + us(5600));
    let out = v.grant(0, 0, late, None, None);
    assert!(out.is_empty(), "{out:?}");
    v.release(0, 0, 1 << SLOT_BITS, 20);
    // Sent at t+4.0 instead, client 1's key was surely still there when client 7's
    // grant arrived (t+4.9 + 2 ms slack < t+7.0): both held at one moment.
    let real = leased(2 << SLOT_BITS, 30, t + us(4000), t + us(5600));
    let out = v.grant(0, 0, real, None, None);
    assert_eq!(props(&out), [Property::Exclusion], "{out:?}");
}
