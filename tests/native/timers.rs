//! Deadlines at sub-millisecond resolution: waits and holds that end at or after their
//! duration (counted from when the request was sent, so never early), and the lateness
//! figures `STATS` reports for them.

use crate::common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The lateness rows of `STATS`: (fired, sum, max, cumulative buckets by bound).
fn lateness(s: &HashMap<String, u64>) -> (u64, u64, u64, Vec<(u64, u64)>) {
    let mut buckets: Vec<(u64, u64)> = s
        .iter()
        .filter_map(|(k, &v)| {
            let bound = k.strip_prefix("timer_lateness_le_")?.strip_suffix("us")?;
            Some((bound.parse().unwrap(), v))
        })
        .collect();
    buckets.sort();
    (
        s["timers_fired_total"],
        s["timer_lateness_sum_us"],
        s["timer_lateness_max_us"],
        buckets,
    )
}

#[test]
fn waits_and_holds_never_end_early_and_each_one_counts_in_the_lateness_rows() {
    let addr = start();
    let mut holder = Client::connect(addr);
    let mut waiter = Client::connect(addr);
    let (fired, sum, max, buckets) = lateness(&holder.stats());
    assert_eq!((fired, sum, max), (0, 0, 0), "a fresh server fired nothing");
    assert_eq!(buckets.len(), 12, "{buckets:?}");
    assert!(buckets.iter().all(|&(_, n)| n == 0), "{buckets:?}");

    holder.lock("h1", "busy");
    // Short waits, a few milliseconds each: every one ends with TIMEOUT, no earlier than
    // its duration after the request was sent.
    let waits = [1u64, 2, 3, 5, 7];
    for (i, &ms) in waits.iter().enumerate() {
        let sent = Instant::now();
        waiter.send(&format!("w{i} LOCK busy wait={ms}"));
        assert_eq!(waiter.recv(), format!("w{i} TIMEOUT"));
        assert_deadline(&format!("wait={ms}"), sent, Duration::from_millis(ms));
    }
    // A lease: EXPIRED no earlier than its hold after the request.
    let sent = Instant::now();
    let token = waiter.lock("x1", "lease hold=4");
    assert_eq!(expired_token(&waiter.recv(), "x1"), token);
    assert_deadline("hold=4", sent, Duration::from_millis(4));

    let (fired, sum, max, buckets) = lateness(&holder.stats());
    assert_eq!(fired, waits.len() as u64 + 1, "one per deadline that fired");
    assert!(max <= sum, "max {max} > sum {sum}");
    let mut last = 0;
    for &(bound, n) in &buckets {
        assert!(n >= last && n <= fired, "le_{bound}us = {n}: {buckets:?}");
        last = n;
    }
    // The largest observation sits in the first bucket whose bound reaches it.
    let first_with_max = buckets.iter().find(|&&(b, _)| b >= max);
    if let Some(&(_, n)) = first_with_max {
        assert_eq!(n, fired, "all {fired} are <= {max} us: {buckets:?}");
    }
}
