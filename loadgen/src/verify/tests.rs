//! The verifier alone, on hand-made grant sequences: overlaps, tokens going back,
//! expiry races and the shared maximum.

use super::*;

fn verifier(exclusive: bool, max: Option<u64>, hold: Option<Duration>) -> Verifier {
    Verifier {
        shards: (0..4).map(|_| Mutex::new(HashMap::new())).collect(),
        exclusive,
        check_order: exclusive,
        max,
        hold,
        servers: vec!["s:1".into()],
        prefix: "lg:".into(),
        start: Instant::now(),
    }
}

fn rec(owner: u64, token: u64, sent: Instant, granted: Instant) -> HoldRec {
    HoldRec {
        owner,
        token,
        sent,
        granted,
    }
}

#[test]
fn verifier_exclusive() {
    let v = verifier(true, None, None);
    let t = Instant::now();
    assert!(v.grant(0, 1, rec(1 << 20, 10, t, t), None).is_empty());
    // Second grant while the first is live: overlap.
    let out = v.grant(0, 1, rec(2 << 20, 11, t, t), None);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].contains("exclusive overlap on lg:1 on s:1"));
    v.release(0, 1, 1 << 20, 10);
    v.release(0, 1, 2 << 20, 11);
    // Fine after release; another name is independent.
    assert!(v.grant(0, 1, rec(1 << 20, 12, t, t), None).is_empty());
    assert!(v.grant(0, 2, rec(2 << 20, 13, t, t), None).is_empty());
    v.release(0, 1, 1 << 20, 12);
    // Token going backwards on a name.
    let out = v.grant(0, 1, rec(1 << 20, 5, t, t), None);
    assert!(
        out.iter().any(|m| m.contains("tokens not increasing")),
        "{out:?}"
    );
}

#[test]
fn verifier_hold_expiry_is_not_an_overlap() {
    let v = verifier(true, None, Some(Duration::from_millis(10)));
    let t = Instant::now();
    assert!(v.grant(0, 1, rec(1, 10, t, t), None).is_empty());
    // 5 ms later: surely still held.
    let out = v.grant(0, 1, rec(2, 11, t, t + Duration::from_millis(5)), None);
    assert_eq!(out.len(), 1);
    v.release(0, 1, 2, 11);
    // 20 ms later the first may have expired: no violation.
    let later = t + Duration::from_millis(20);
    assert!(v.grant(0, 1, rec(3, 12, later, later), None).is_empty());
}

#[test]
fn verifier_shared_max() {
    let v = verifier(false, Some(2), None);
    let t = Instant::now();
    assert!(v.grant(0, 1, rec(1, 10, t, t), Some(1)).is_empty());
    assert!(v.grant(0, 1, rec(2, 11, t, t), Some(2)).is_empty());
    let out = v.grant(0, 1, rec(3, 12, t, t), Some(3));
    assert_eq!(out.len(), 2, "{out:?}");
    v.release(0, 1, 1, 10);
    v.release(0, 1, 3, 12);
    assert!(v.grant(0, 1, rec(4, 13, t, t), Some(2)).is_empty());
}
