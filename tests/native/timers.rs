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

/// Busy connections in [`a_wait_deadline_fires_between_the_turns_of_busy_connections`]:
/// together their turns take many times the waiter's 1 ms, even in a release build.
const BUSY: usize = 400;
/// `INSPECT`s each busy connection pipelines: no more than a turn handles before it
/// first looks at the clock (16), so each connection's pipeline is exactly one turn.
const DEPTH: usize = 16;

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// A wait deadline fires between two connections' turns, not only once every ready
/// connection has had its turn. With the server stopped, a waiter's `LOCK ... wait=1`
/// and then the pipelines of `BUSY` connections, `INSPECT`s of the lock waited for,
/// are all sent, so that the resumed server finds them in one poll, the waiter's
/// first. The busy turns together take far longer than the 1 ms wait, so its timeout
/// fires before the last of them, which see the wait gone; the timeout is never early,
/// and the lock's holder is untouched. (A server that fires deadlines only at the end
/// of an iteration answers every `INSPECT` with `waiters=1`.)
#[test]
fn a_wait_deadline_fires_between_the_turns_of_busy_connections() {
    let server = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
    let addr = server.addr;
    let mut holder = Client::connect(addr);
    holder.lock("h", "busy");
    let mut waiter = Client::connect(addr);
    waiter.sync();
    let mut busy: Vec<Client> = (0..BUSY).map(|_| Client::connect(addr)).collect();
    for c in &mut busy {
        c.sync();
    }
    let pipeline: String = (0..DEPTH).map(|i| format!("i{i} INSPECT busy\n")).collect();
    signal("STOP", server.pid());
    let sent = Instant::now();
    waiter.send("w LOCK busy wait=1");
    for c in &mut busy {
        c.send_bytes(pipeline.as_bytes());
    }
    signal("CONT", server.pid());
    assert_eq!(waiter.recv(), "w TIMEOUT");
    assert_deadline("wait=1", sent, Duration::from_millis(1));
    let mut seen = [0usize; 2];
    for (n, c) in busy.iter_mut().enumerate() {
        let mut last = 1;
        for i in 0..DEPTH {
            let line = c.recv();
            let prefix = format!("i{i} OK mode=exclusive holders=1 waiters=");
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("busy {n}: {line:?}"));
            let waiters: usize = rest.split(' ').next().unwrap().parse().unwrap();
            assert!(
                waiters <= last,
                "busy {n}: the wait came back ({line:?} after waiters={last})"
            );
            last = waiters;
            seen[waiters] += 1;
        }
    }
    eprintln!("INSPECTs without and with the wait: {seen:?}");
    assert!(
        seen[0] > 0,
        "every INSPECT saw the wait ({seen:?}): its deadline did not fire between turns"
    );
    assert_eq!(seen[0] + seen[1], BUSY * DEPTH);
    assert_eq!(
        holder
            .req("i INSPECT busy")
            .split(" token=")
            .next()
            .unwrap(),
        "i OK mode=exclusive holders=1 waiters=0"
    );
}

/// `INSPECT`s the long pipeline of
/// [`a_due_deadline_ends_a_long_turn_at_its_next_clock_check`] sends: more than one turn
/// handles before its time or output limit ends it.
const LONG: usize = 4_000;

/// A connection's turn ends at its next clock check (every 16 requests) once a
/// deadline is due, not at the turn's time limit. The waiter's deadline (100 ms) passes
/// while the server is stopped, after one busy connection's long pipeline of `INSPECT`s
/// of the lock waited for has arrived; so when the server resumes, that connection is
/// ready before the alarm and its turn comes first, with the deadline already due. Only
/// the `INSPECT`s before the turn's first check may see the wait (a few checks' worth
/// are allowed); a turn that runs to its 2 ms or 16 KiB limit first answers hundreds.
#[test]
fn a_due_deadline_ends_a_long_turn_at_its_next_clock_check() {
    let server = ServerProcess::spawn(&["--listen", "127.0.0.1:0"]);
    let addr = server.addr;
    let mut holder = Client::connect(addr);
    holder.lock("h", "long");
    let mut waiter = Client::connect(addr);
    let sent = Instant::now();
    waiter.send("w LOCK long wait=100");
    // The wait is queued: a PING after it on its connection is answered.
    waiter.sync();
    assert!(holder.req("q INSPECT long").contains(" waiters=1"));
    let mut busy = Client::connect(addr);
    busy.sync();
    let pipeline: String = (0..LONG).map(|i| format!("i{i} INSPECT long\n")).collect();
    signal("STOP", server.pid());
    busy.send_bytes(pipeline.as_bytes());
    // Well past the deadline (100 ms after the wait was read, soon after `sent`), with
    // the pipeline in the socket first.
    std::thread::sleep(Duration::from_millis(500).saturating_sub(sent.elapsed()));
    signal("CONT", server.pid());
    assert_eq!(waiter.recv(), "w TIMEOUT");
    // Late by the stop, by design; never early.
    assert!(sent.elapsed() >= Duration::from_millis(100));
    let mut saw_wait = 0;
    for i in 0..LONG {
        let line = busy.recv();
        let prefix = format!("i{i} OK mode=exclusive holders=1 waiters=");
        let rest = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line:?}"));
        if rest.starts_with('1') {
            assert_eq!(saw_wait, i, "the wait came back at {line:?}");
            saw_wait += 1;
        }
    }
    eprintln!("INSPECTs that saw the wait: {saw_wait} of {LONG}");
    assert!(
        saw_wait <= 64,
        "{saw_wait} INSPECTs of one turn saw a deadline that was due when it began"
    );
}
