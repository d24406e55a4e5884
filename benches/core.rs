//! Micro-benchmarks of the hot structures: the native parser, the lock table and the
//! timer wheel. `cargo bench` runs them; PERF.md quotes the results.

use divan::{black_box, Bencher};
use lockbox::fence::Fence;
use lockbox::proto::native;
use lockbox::table::{Acquire, Grant, Mode, Table};
use lockbox::wheel::Wheel;

fn main() {
    divan::main();
}

/// Parse one typical request line.
#[divan::bench]
fn parse_lock_request() -> bool {
    let line = black_box(&b"a1 LOCK jobs:42 wait=2000 hold=30000"[..]);
    native::parse(line).is_ok()
}

/// Acquire and release a free lock: the lock entry is created and dropped each time.
#[divan::bench]
fn table_acquire_release_uncontended(bencher: Bencher) {
    let mut table: Table<()> = Table::new(Fence::starting_at(1));
    let names: Vec<Vec<u8>> = (0..1024)
        .map(|i| format!("jobs:{i}").into_bytes())
        .collect();
    let mut granted: Vec<Grant> = Vec::new();
    let mut i = 0;
    bencher.bench_local(|| {
        let name = &names[i & 1023];
        i += 1;
        let Acquire::Granted { claim, .. } =
            table.acquire(1, name, Mode::Exclusive, true, None, ())
        else {
            unreachable!("free lock not granted")
        };
        table.remove(claim, &mut granted);
        granted.clear();
    });
}

/// Release the holder of a lock with 100 FIFO waiters (granting the head) and queue a
/// new waiter at the tail: the steady state of a contended lock.
#[divan::bench]
fn table_release_with_100_waiters(bencher: Bencher) {
    let mut table: Table<()> = Table::new(Fence::starting_at(1));
    let Acquire::Granted { claim, .. } = table.acquire(0, b"hot", Mode::Exclusive, true, None, ())
    else {
        unreachable!()
    };
    let mut holder = claim;
    for owner in 1..=100 {
        table.acquire(owner, b"hot", Mode::Exclusive, true, None, ());
    }
    let mut granted: Vec<Grant> = Vec::new();
    let mut owner = 101;
    bencher.bench_local(|| {
        table.remove(holder, &mut granted);
        holder = granted.pop().expect("head granted").claim;
        table.acquire(owner, b"hot", Mode::Exclusive, true, None, ());
        owner = (owner + 1) % 1000;
    });
}

const TIMERS: u64 = 1_000_000;

/// Insert 1M timers spread over the first 2^20 ms (all six levels see traffic).
#[divan::bench(sample_count = 5)]
fn wheel_insert_1m(bencher: Bencher) {
    bencher
        .with_inputs(|| Wheel::<u32>::new(0))
        .bench_local_values(|mut wheel| {
            for i in 0..TIMERS {
                wheel.insert(spread(i), i as u32);
            }
            wheel
        });
}

/// Cancel 1M timers in insertion order.
#[divan::bench(sample_count = 5)]
fn wheel_cancel_1m(bencher: Bencher) {
    bencher
        .with_inputs(|| {
            let mut wheel = Wheel::<u32>::new(0);
            let ids: Vec<_> = (0..TIMERS)
                .map(|i| wheel.insert(spread(i), i as u32))
                .collect();
            (wheel, ids)
        })
        .bench_local_values(|(mut wheel, ids)| {
            for id in ids {
                black_box(wheel.cancel(id));
            }
            wheel
        });
}

/// Advance through 1M timers, firing all of them, one millisecond at a time up to the
/// last deadline (about 1M advance calls, most of them firing one or two timers).
#[divan::bench(sample_count = 5)]
fn wheel_advance_1m(bencher: Bencher) {
    bencher
        .with_inputs(|| {
            let mut wheel = Wheel::<u32>::new(0);
            for i in 0..TIMERS {
                wheel.insert(spread(i), i as u32);
            }
            wheel
        })
        .bench_local_values(|mut wheel| {
            let mut fired = Vec::with_capacity(1024);
            let mut now = 0;
            while !wheel.is_empty() {
                now = wheel.next_wake().expect("not empty").max(now + 1);
                wheel.advance(now, &mut fired);
                fired.clear();
            }
            wheel
        });
}

/// Deterministic deadlines spread over 2^20 ms.
fn spread(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44
}
