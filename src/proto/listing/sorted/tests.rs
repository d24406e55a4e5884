//! Model tests of [`Sorted`]: listings of a real engine's locks (by name) and holds
//! (by token) in random steps, with random changes to the table between steps and
//! random budgets (so many listings take several passes), checked against a reference:
//! keys strictly increasing, every item that lasted the whole listing exactly once, and
//! nothing that never existed.

use super::*;
use crate::engine::{AcquireRequest, ClientId, Engine, Mode};
use crate::fence::Fence;
use crate::proto::listing::Batch;
use crate::testrng::Rng;
use std::collections::HashSet;
use std::net::SocketAddr;

const CLIENTS: u32 = 6;

fn addr() -> SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

/// A name from a pool of `names`, of varied length (so rows have varied sizes).
fn name(rng: &mut Rng, names: u64) -> Vec<u8> {
    let i = rng.below(names);
    format!("n{i}-{}", "x".repeat((i % 7) as usize)).into_bytes()
}

/// One random change: an acquire, a release, or a client dropping all its claims.
fn mutate(e: &mut Engine, rng: &mut Rng, names: u64) {
    let c = rng.below(u64::from(CLIENTS)) as ClientId;
    if e.client(c).is_none() {
        e.connect(c, addr());
        return;
    }
    match rng.below(10) {
        0..=5 => {
            let n = name(rng, names);
            let mode = if rng.chance(50) {
                Mode::Exclusive
            } else {
                Mode::Shared { max: 0 }
            };
            let wait = if rng.chance(50) { None } else { Some(0) };
            let req = AcquireRequest {
                name: &n,
                mode,
                wait,
                hold: None,
                queue: None,
            };
            e.acquire(c, b"t", &req, 0);
        }
        6..=8 => {
            let held: Vec<(Vec<u8>, u64)> = e
                .holds_of(c)
                .map(|h| (h.name.to_vec(), h.token.unwrap()))
                .collect();
            if !held.is_empty() {
                let (n, t) = &held[rng.below(held.len() as u64) as usize];
                e.release(c, n, Some(*t), 0).unwrap();
            }
        }
        _ => {
            e.disconnect(c, 0);
        }
    }
    let mut sink = Vec::new();
    e.take_events(&mut sink);
}

fn locks(e: &Engine) -> HashSet<Vec<u8>> {
    e.locks().map(|(n, _)| n.to_vec()).collect()
}

fn holds(e: &Engine) -> HashSet<u64> {
    e.locks()
        .flat_map(|(n, _)| e.holds_on(n).map(|(t, _)| t).collect::<Vec<_>>())
        .collect()
}

/// What is listed: locks by name (rows `name holders=n`), or holds by token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum What {
    Locks,
    Holds,
}

/// One step of the listing in progress; the rows written are appended to `out`, one
/// per line. True once the listing is over.
fn step(e: &Engine, s: &mut Sorted, what: What, out: &mut Vec<u8>, batch: Batch) -> bool {
    s.proceed(
        out,
        batch,
        |cursor, slots, rows| match what {
            What::Locks => e.scan_locks(cursor, slots, |(name, info)| {
                rows.add_prefixed(name, |row| {
                    row.extend_from_slice(name);
                    row.extend_from_slice(format!(" holders={}", info.holders).as_bytes());
                });
                true
            }),
            What::Holds => e.scan_holds(cursor, slots, |h| {
                rows.add(&h.token.to_be_bytes(), |row| {
                    row.extend_from_slice(h.token.to_string().as_bytes())
                });
                true
            }),
        },
        |out, row| {
            out.extend_from_slice(row);
            out.push(b'\n');
        },
    )
}

/// The listed keys, in the order written.
fn keys(what: What, out: &[u8]) -> Vec<Vec<u8>> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| match what {
            What::Locks => l.split(|&b| b == b' ').next().unwrap().to_vec(),
            What::Holds => {
                let t: u64 = std::str::from_utf8(l).unwrap().parse().unwrap();
                t.to_be_bytes().to_vec()
            }
        })
        .collect()
}

fn random_batch(rng: &mut Rng) -> Batch {
    Batch {
        slots: rng.range_usize(1, 40),
        bytes: rng.range_usize(1, 200),
        // From a budget that holds a row or two to one that holds everything.
        sort_bytes: rng.range_usize(1, 3000),
    }
}

#[test]
fn listings_come_sorted_and_whole_under_random_changes() {
    let mut passes_over_one = 0;
    for seed in 0..400u64 {
        let mut rng = Rng::new(seed);
        let names = rng.range(1, 200);
        let mut e = Engine::new(Fence::starting_at(1), 0, 1000);
        for c in 0..CLIENTS {
            e.connect(c, addr());
        }
        for _ in 0..rng.below(400) {
            mutate(&mut e, &mut rng, names);
        }
        // One Sorted per connection, reused listing after listing.
        let mut s = Sorted::default();
        for round in 0..3 {
            let what = if rng.chance(50) {
                What::Locks
            } else {
                What::Holds
            };
            let set = |e: &Engine| -> HashSet<Vec<u8>> {
                match what {
                    What::Locks => locks(e),
                    What::Holds => holds(e)
                        .into_iter()
                        .map(|t| t.to_be_bytes().to_vec())
                        .collect(),
                }
            };
            let mut kept = set(&e);
            let mut ever = kept.clone();
            let changes = if round == 0 { 0 } else { 5 };
            let batch = random_batch(&mut rng);
            s.start();
            let mut out = Vec::new();
            let mut steps = 0;
            let mut scans_started = 0;
            loop {
                steps += 1;
                assert!(steps < 1_000_000, "seed {seed}: listing never ends");
                if s.phase == Phase::Collect && s.cursor == Cursor::default() {
                    scans_started += 1;
                }
                let batch = if rng.chance(30) {
                    random_batch(&mut rng)
                } else {
                    batch
                };
                let batch = Batch {
                    sort_bytes: batch.sort_bytes.max(1),
                    ..batch
                };
                if step(&e, &mut s, what, &mut out, batch) {
                    break;
                }
                let n = if changes == 0 { 0 } else { rng.below(changes) };
                for _ in 0..n {
                    mutate(&mut e, &mut rng, names);
                    let now = set(&e);
                    kept.retain(|k| now.contains(k));
                    ever.extend(now);
                }
            }
            if scans_started > 1 {
                passes_over_one += 1;
            }
            let got = keys(what, &out);
            for w in got.windows(2) {
                assert!(w[0] < w[1], "seed {seed} {what:?}: {w:?} out of order");
            }
            let got: HashSet<Vec<u8>> = got.into_iter().collect();
            for k in &kept {
                assert!(got.contains(k), "seed {seed} {what:?}: {k:?} missed");
            }
            for k in &got {
                assert!(
                    ever.contains(k),
                    "seed {seed} {what:?}: {k:?} never existed"
                );
            }
            if changes == 0 {
                assert_eq!(
                    got, kept,
                    "seed {seed} {what:?}: a still table, listed whole"
                );
            }
        }
    }
    assert!(
        passes_over_one > 100,
        "only {passes_over_one} listings took several passes"
    );
}

/// With no change to the table, the sorter writes exactly `sort()` + `dedup()` of the
/// keys, whatever the budget, batch and step sizes.
#[test]
fn a_still_table_lists_as_sort_does() {
    for seed in 0..200u64 {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let mut e = Engine::new(Fence::starting_at(1), 0, 100_000);
        for c in 0..CLIENTS {
            e.connect(c, addr());
        }
        let names = rng.range(1, 2000);
        for _ in 0..rng.below(3000) {
            mutate(&mut e, &mut rng, names);
        }
        let mut want: Vec<Vec<u8>> = locks(&e).into_iter().collect();
        want.sort();
        let mut s = Sorted::default();
        s.start();
        let batch = Batch {
            sort_bytes: rng.range_usize(200, 100_000),
            ..random_batch(&mut rng)
        };
        let mut out = Vec::new();
        while !step(&e, &mut s, What::Locks, &mut out, batch) {}
        assert_eq!(keys(What::Locks, &out), want, "seed {seed}");
        // Small buffers are kept for the next listing, big ones released.
        assert!(s.rows.arena.capacity() <= RETAIN_BYTES);
        assert!(s.rows.heap.is_empty());
    }
}

/// The live rows stay within the budget (one row always kept), and the arena within
/// twice it (or the compaction floor), while a pass keeps dropping rows.
#[test]
fn the_kept_rows_stay_within_the_budget() {
    let mut rows = Rows {
        budget: 1000,
        ..Rows::default()
    };
    let mut rng = Rng::new(7);
    let mut max_live = 0;
    for _ in 0..100_000 {
        let key = rng.next_u64().to_be_bytes();
        let len = rng.range_usize(0, 60);
        rows.add(&key, |r| r.resize(r.len() + len, b'r'));
        max_live = max_live.max(rows.live);
        assert!(rows.live <= 1000 || rows.heap.len() == 1);
        assert!(rows.arena.len() < 2 * RETAIN_BYTES.max(2000) + 100);
    }
    assert!(max_live > 900, "{max_live}");
    assert!(rows.has_ceiling);
    // The kept keys are all below the ceiling, and they are the smallest offered since
    // the ceiling was last lowered (a max-heap of them).
    for i in 0..rows.heap.len() {
        assert!(rows.key(rows.heap[i]) < &rows.ceiling[..]);
        if i > 0 {
            assert!(rows.cmp((i - 1) / 2, i) != Ordering::Less, "heap order");
        }
    }
}

/// A key added more than once (a lock removed and created again in a slot ahead of the
/// cursor) is written once, in every pass arrangement.
#[test]
fn a_repeated_key_is_written_once() {
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed ^ 0xd0b1e);
        let added: Vec<u64> = (0..rng.range(1, 300)).map(|_| rng.below(40)).collect();
        let mut want: Vec<Vec<u8>> = added.iter().map(|k| k.to_be_bytes().to_vec()).collect();
        want.sort();
        want.dedup();
        let batch = random_batch(&mut rng);
        let mut s = Sorted::default();
        s.start();
        let mut out = Vec::new();
        let scan = |_: &mut Cursor, _: usize, rows: &mut Rows| {
            for k in &added {
                rows.add(&k.to_be_bytes(), |row| {
                    row.extend_from_slice(k.to_string().as_bytes())
                });
            }
            Scan::Done
        };
        let row = |out: &mut Vec<u8>, row: &[u8]| {
            out.extend_from_slice(row);
            out.push(b'\n');
        };
        while !s.proceed(&mut out, batch, scan, row) {}
        assert_eq!(keys(What::Holds, &out), want, "seed {seed}");
    }
}
