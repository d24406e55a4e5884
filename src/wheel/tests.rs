//! The wheel's level arithmetic, its firing rules one by one, and a model test against
//! a sorted list of live timers.

use super::*;
use crate::testrng::Rng;

impl<T> Wheel<T> {
    /// Verifies every structural invariant; panics with context on the first violation.
    fn check_invariants(&self) {
        let chain = chain();
        let mut seen = 0usize;
        let lists = self.levels.iter().enumerate().flat_map(|(level, l)| {
            (0..SLOTS).map(move |slot| (level * SLOTS + slot, l.slot(slot), l.occupied(slot)))
        });
        for (list, keys, occupied) in lists.chain([(PENDING, &self.pending, true)]) {
            if list < PENDING {
                assert_eq!(
                    occupied,
                    !keys.is_empty(),
                    "bitmap bit of level {} slot {} disagrees with its list",
                    list / SLOTS,
                    list % SLOTS
                );
            }
            let mut count = 0usize;
            for key in keys.iter(&self.entries, chain) {
                count += 1;
                assert!(count <= self.entries.len(), "list {list} has a cycle");
                let e = &self.entries[key as usize];
                assert_eq!(
                    e.list as usize, list,
                    "entry {key} is in list {list} but says {}",
                    e.list
                );
                let d = e.deadline;
                if list == PENDING {
                    assert!(
                        d <= self.now,
                        "pending entry {key} deadline {d} > now {}",
                        self.now
                    );
                } else {
                    assert!(
                        d > self.now,
                        "wheel entry {key} deadline {d} <= now {}",
                        self.now
                    );
                    assert!(
                        d - self.now <= MAX_DELTA,
                        "entry {key} deadline {d} too far from now {}",
                        self.now
                    );
                    let level = level_for(self.now, d);
                    assert_eq!(
                        (list / SLOTS, list % SLOTS),
                        (level, slot_for(d, level)),
                        "entry {key} deadline {d} at (level, slot) wrong for now {}",
                        self.now
                    );
                }
            }
            assert_eq!(count, keys.len() as usize, "list {list}: len");
            seen += count;
        }
        assert_eq!(
            seen,
            self.entries.len(),
            "entries reachable from lists vs slab len"
        );
        assert_eq!(seen, self.len(), "len");
        let pending: Vec<u64> = self
            .pending
            .iter(&self.entries, chain)
            .map(|key| self.entries[key as usize].deadline)
            .collect();
        if self.pending_sorted {
            assert!(
                pending.windows(2).all(|w| w[0] <= w[1]),
                "pending_sorted but the pending list is {pending:?}"
            );
        }
        for (key, e) in self.entries.iter() {
            assert!(
                self.wake <= e.deadline,
                "wake {} after entry {key}'s deadline {}",
                self.wake,
                e.deadline
            );
        }
        assert!(self.scratch.is_empty(), "scratch left non-empty");
    }
}

/// Advances to `now` in bounded steps of `limit` until [`Advance::Done`], checking the
/// invariants and that [`Wheel::due`] says so while timers are left.
fn adv_bounded<T>(w: &mut Wheel<T>, now: u64, limit: usize, fired: &mut Vec<(u64, T)>) {
    for step in 0.. {
        let before = fired.len();
        let outcome = w.advance_bounded(now, limit, fired);
        w.check_invariants();
        assert!(fired.len() - before <= limit, "step {step}: over the limit");
        if outcome == Advance::Done {
            assert_eq!(w.now(), now, "clock after Done");
            return;
        }
        assert_eq!(
            fired.len() - before,
            limit,
            "step {step}: More below the limit"
        );
        assert!(w.due(now), "step {step}: More but not due");
    }
}

fn adv<T>(w: &mut Wheel<T>, now: u64) -> Vec<(u64, T)> {
    let mut fired = Vec::new();
    w.advance(now, &mut fired);
    w.check_invariants();
    fired
}

#[test]
fn level_and_slot_arithmetic() {
    assert_eq!(level_for(0, 1), 0);
    assert_eq!(level_for(0, 63), 0);
    assert_eq!(level_for(0, 64), 1);
    assert_eq!(level_for(63, 64), 1);
    assert_eq!(level_for(64, 127), 0);
    assert_eq!(level_for(0, 1 << 12), 2);
    assert_eq!(level_for(0, 1 << 36), 6);
    assert_eq!(level_for(0, MAX_DELTA), LEVELS - 1);
    // Crossing a 2^42 boundary folds into the top level.
    assert_eq!(level_for(MAX_DELTA, MAX_DELTA + 2), LEVELS - 1);
    assert_eq!(level_for(MAX_DELTA - 100, MAX_DELTA + 2), LEVELS - 1);
    assert_eq!(MAX_DELTA, (1 << 42) - 1);
    assert_eq!(slot_for(0b10_000011, 0), 3);
    assert_eq!(slot_for(0b10_000011, 1), 2);
}

#[test]
fn fires_at_exact_ms_across_levels() {
    for &d in &[
        1u64,
        5,
        63,
        64,
        65,
        100,
        4095,
        4096,
        4097,
        1 << 20,
        (1 << 30) + 7,
        1 << 35,
        (1 << 36) + 3,
        (1 << 41) + 999,
    ] {
        let start = 1000;
        let mut w = Wheel::new(start);
        let id = w.insert(start + d, d);
        w.check_invariants();
        assert_eq!(w.deadline(id), start + d);
        // Wake points before the deadline never fire it.
        loop {
            let t = w.next_wake().unwrap();
            assert!(t <= start + d && t >= w.now(), "d={d} next_wake {t}");
            if t == start + d {
                break;
            }
            assert!(adv(&mut w, t).is_empty(), "d={d}: fired early at {t}");
        }
        assert!(adv(&mut w, start + d - 1).is_empty(), "d={d}: fired at d-1");
        assert_eq!(adv(&mut w, start + d), vec![(start + d, d)], "d={d}");
        assert!(w.is_empty());
        assert_eq!(w.next_wake(), None);
    }
}

#[test]
fn fires_without_intermediate_wakes() {
    let mut w = Wheel::new(0);
    w.insert(100_000, 'a');
    assert!(adv(&mut w, 99_999).is_empty());
    assert_eq!(adv(&mut w, 100_000), vec![(100_000, 'a')]);
}

#[test]
fn past_deadline_fires_on_next_advance_in_order() {
    let mut w = Wheel::new(500);
    w.insert(500, "now");
    w.insert(10, "past");
    w.insert(501, "next");
    w.insert(10, "past2");
    w.check_invariants();
    assert_eq!(w.next_wake(), Some(500));
    assert_eq!(
        adv(&mut w, 500),
        vec![(10, "past"), (10, "past2"), (500, "now")]
    );
    assert_eq!(w.next_wake(), Some(501));
    assert_eq!(adv(&mut w, 501), vec![(501, "next")]);
    assert_eq!(w.next_wake(), None);
}

#[test]
fn cancel_prevents_firing() {
    let mut w = Wheel::new(0);
    let a = w.insert(10, 1);
    let b = w.insert(10, 2);
    let c = w.insert(5000, 3);
    let d = w.insert(0, 4);
    assert_eq!(w.cancel(b), 2);
    assert_eq!(w.cancel(c), 3);
    assert_eq!(w.cancel(d), 4);
    w.check_invariants();
    assert_eq!(w.len(), 1);
    assert_eq!(adv(&mut w, 10_000), vec![(10, 1)]);
    let _ = a;
    assert!(w.is_empty());
    assert!(w.levels.iter().all(Level::is_empty));
}

#[test]
fn next_wake_exact_at_level0_lower_bound_above() {
    let mut w = Wheel::new(0);
    assert_eq!(w.next_wake(), None);
    w.insert(37, ());
    assert_eq!(w.next_wake(), Some(37));
    w.insert(12, ());
    assert_eq!(w.next_wake(), Some(12));

    let mut w = Wheel::new(0);
    w.insert(200, ());
    let t = w.next_wake().unwrap();
    assert_eq!(t, 192, "start of the level-1 slot holding 200");
    assert!(adv(&mut w, t).is_empty());
    assert_eq!(w.next_wake(), Some(200), "exact once cascaded to level 0");

    let mut w = Wheel::new(0);
    w.insert(3_000_000, ());
    let t = w.next_wake().unwrap();
    assert!(t <= 3_000_000 && t > 0);
}

#[test]
fn jump_by_2_pow_32_fires_due_and_nothing_more() {
    let base = 12_345;
    let mut w = Wheel::new(base);
    let jump = 1u64 << 32;
    for (i, &d) in [
        1,
        64,
        5000,
        1 << 20,
        jump - 1,
        jump,
        jump + 1,
        jump + 64,
        1 << 34,
    ]
    .iter()
    .enumerate()
    {
        w.insert(base + d, i);
    }
    let fired = adv(&mut w, base + jump);
    let deadlines: Vec<u64> = fired.iter().map(|f| f.0 - base).collect();
    assert_eq!(deadlines, vec![1, 64, 5000, 1 << 20, jump - 1, jump]);
    assert_eq!(w.len(), 3);
    assert_eq!(adv(&mut w, base + jump + 1), vec![(base + jump + 1, 6)]);
    assert_eq!(adv(&mut w, base + (1 << 35)).len(), 2);
}

#[test]
fn top_level_wraps_around() {
    // Clock just below a 2^42 boundary, deadline just past it: top level, next rotation.
    let now = (1u64 << 42) - 10;
    let mut w = Wheel::new(now);
    w.insert(now + 20, 'x');
    let far = now + MAX_DELTA;
    w.insert(far, 'y');
    w.check_invariants();
    assert_eq!(adv(&mut w, now + 19), vec![]);
    assert_eq!(adv(&mut w, now + 20), vec![(now + 20, 'x')]);
    assert_eq!(adv(&mut w, far - 1), vec![]);
    assert_eq!(adv(&mut w, far), vec![(far, 'y')]);
}

#[test]
fn clamps_far_deadlines() {
    let now = 777;
    let mut w = Wheel::new(now);
    let id = w.insert(u64::MAX, 'c');
    let id2 = w.insert(now + MAX_DELTA, 'd');
    w.check_invariants();
    assert_eq!(w.deadline(id), now + MAX_DELTA);
    assert_eq!(w.deadline(id2), now + MAX_DELTA);
    assert!(adv(&mut w, now + MAX_DELTA - 1).is_empty());
    assert_eq!(
        adv(&mut w, now + MAX_DELTA),
        vec![(now + MAX_DELTA, 'c'), (now + MAX_DELTA, 'd')]
    );

    // Near the end of u64 time nothing overflows.
    let mut w = Wheel::new(u64::MAX - 5);
    w.insert(u64::MAX, 1);
    w.insert(u64::MAX - 5, 2);
    w.check_invariants();
    assert_eq!(
        adv(&mut w, u64::MAX),
        vec![(u64::MAX - 5, 2), (u64::MAX, 1)]
    );
}

#[test]
fn ids_reused_after_fire_and_cancel() {
    let mut w = Wheel::new(0);
    let a = w.insert(5, 'a');
    let b = w.insert(6, 'b');
    assert_eq!(adv(&mut w, 5), vec![(5, 'a')]);
    let c = w.insert(100, 'c');
    assert_eq!(c, a, "slab key of a fired timer is reused");
    assert_eq!(w.deadline(c), 100);
    assert_eq!(w.cancel(b), 'b');
    let d = w.insert(7, 'd');
    assert_eq!(d, b, "slab key of a cancelled timer is reused");
    w.check_invariants();
    assert_eq!(adv(&mut w, 200), vec![(7, 'd'), (100, 'c')]);
}

#[test]
fn equal_deadlines_fire_in_insertion_order_across_cascades() {
    let mut w = Wheel::new(0);
    w.insert(100_000, 0);
    adv(&mut w, 50_000);
    w.insert(100_000, 1);
    adv(&mut w, 99_990);
    w.insert(100_000, 2);
    w.insert(100_000, 3);
    let order: Vec<i32> = adv(&mut w, 200_000).into_iter().map(|f| f.1).collect();
    assert_eq!(order, vec![0, 1, 2, 3]);
}

/// Reference model: live timers as (deadline, seq, id); fires all with deadline <= now
/// sorted by (deadline, seq). With `limit`, every advance is a run of bounded advances
/// of at most that many (1 to `limit`, at random) each.
fn run_model(seed: u64, ops: usize, limit: Option<u64>) {
    let mut rng = Rng::new(seed);
    let start = rng.below(1 << 40);
    let mut now = start;
    let mut w: Wheel<u64> = Wheel::new(now);
    let mut model: Vec<(u64, u64, TimerId)> = Vec::new();
    let mut seq = 0u64;
    let mut fired = Vec::new();
    for op in 0..ops {
        if rng.chance(45) {
            let d = match rng.below(11) {
                0 => now.saturating_sub(rng.below(1000)),
                1 => now,
                2..=4 => now + rng.below(64),
                5 | 6 => now + rng.below(1 << 18),
                7 | 8 => now + rng.below(1 << 32),
                9 => now + (1 << 42) - 64 + rng.below(1 << 10),
                // Microsecond ticks: a millisecond duration times 1000 plus a
                // sub-millisecond offset, up to the longest u32 millisecond deadline.
                _ => now + (rng.below(1 << 32) * 1000) + rng.below(1000),
            };
            let id = w.insert(d, seq);
            let clamped = d.min(now + MAX_DELTA);
            assert_eq!(w.deadline(id), clamped, "seed {seed} op {op}: deadline");
            assert!(
                model.iter().all(|m| m.2 != id),
                "seed {seed} op {op}: live id {id:?} handed out twice"
            );
            model.push((clamped, seq, id));
            seq += 1;
        } else if rng.chance(27) {
            if !model.is_empty() {
                let i = rng.below(model.len() as u64) as usize;
                let (d, s, id) = model.swap_remove(i);
                assert_eq!(
                    w.deadline(id),
                    d,
                    "seed {seed} op {op}: deadline before cancel"
                );
                assert_eq!(w.cancel(id), s, "seed {seed} op {op}: cancel value");
            }
        } else {
            let to = match rng.below(9) {
                0 => now,
                1 | 2 => now + rng.below(70),
                3 => now + rng.below(5000),
                4 => now + rng.below(1 << 33),
                // A few microsecond ticks past a due deadline (an exact wake).
                7 => model
                    .iter()
                    .map(|m| m.0)
                    .min()
                    .map_or(now, |m| m.max(now) + rng.below(3)),
                5 | 6 => w.next_wake().unwrap_or(now),
                _ => model.iter().map(|m| m.0).min().unwrap_or(now).max(now),
            };
            fired.clear();
            match limit {
                Some(limit) => adv_bounded(&mut w, to, 1 + rng.below(limit) as usize, &mut fired),
                None => w.advance(to, &mut fired),
            }
            now = to;
            let mut expect: Vec<(u64, u64, TimerId)> =
                model.iter().copied().filter(|m| m.0 <= now).collect();
            expect.sort_by_key(|m| (m.0, m.1));
            model.retain(|m| m.0 > now);
            let expect: Vec<(u64, u64)> = expect.iter().map(|m| (m.0, m.1)).collect();
            assert_eq!(
                fired, expect,
                "seed {seed} op {op}: fired set/order at advance to {now}"
            );
        }
        w.check_invariants();
        assert_eq!(w.now(), now, "seed {seed} op {op}: now");
        assert_eq!(w.len(), model.len(), "seed {seed} op {op}: len");
        if let Some(min) = model.iter().map(|m| m.0).min() {
            assert!(
                w.due(min),
                "seed {seed} op {op}: not due at the earliest deadline"
            );
        }
        if let Some(t) = w.next_wake() {
            // A caller that polls until `next_wake` and advances when `due` says so
            // must find it due then (else it would wake and spin until the deadline).
            assert!(w.due(t), "seed {seed} op {op}: not due at next_wake {t}");
        }
        match model.iter().map(|m| m.0).min() {
            None => assert_eq!(
                w.next_wake(),
                None,
                "seed {seed} op {op}: next_wake of empty"
            ),
            Some(min) => {
                let t = w.next_wake().expect("next_wake None while non-empty");
                assert!(
                    t >= now && t <= min.max(now),
                    "seed {seed} op {op}: next_wake {t} outside [now {now}, min {min}]"
                );
                if min <= now {
                    assert_eq!(t, now, "seed {seed} op {op}: due timer, next_wake");
                } else if (min ^ now) < SLOTS as u64 {
                    assert_eq!(t, min, "seed {seed} op {op}: level-0 next_wake not exact");
                }
            }
        }
    }
}

#[test]
fn model_random_sequences() {
    for seed in 0..20 {
        run_model(0x10CB_0000 + seed, 5000, None);
    }
}

/// Bounded advances (batches of 1 to 3, 1 to 50) fire the same timers in the same
/// order as whole ones.
#[test]
fn model_bounded_advances_fire_as_whole_ones() {
    for seed in 0..20 {
        run_model(0x10CB_1000 + seed, 5000, Some(3));
        run_model(0x10CB_2000 + seed, 5000, Some(50));
    }
}

/// A bounded advance that stops inside a slot leaves the rest of it due, first in line:
/// before timers inserted already due later, and before the next slot.
#[test]
fn bounded_advance_stops_inside_a_slot_and_resumes_in_order() {
    let mut w: Wheel<u32> = Wheel::new(0);
    for v in 0..5 {
        w.insert(100, v);
    }
    let cancel = w.insert(100, 5);
    w.insert(101, 6);
    w.insert(5000, 7);
    let mut fired = Vec::new();
    assert_eq!(w.advance_bounded(200, 2, &mut fired), Advance::More);
    w.check_invariants();
    assert_eq!(fired, vec![(100, 0), (100, 1)]);
    assert_eq!(
        w.now(),
        100,
        "stopped before the due slot 101: the clock stays"
    );
    // Between the steps: a cancel of a left-over timer, an insert already due.
    assert_eq!(w.cancel(cancel), 5);
    w.insert(150, 8);
    w.insert(99, 9);
    w.check_invariants();
    assert!(!w.pending_sorted, "99 after 150 and 100");
    assert!(w.due(200));
    fired.clear();
    assert_eq!(w.advance_bounded(200, 3, &mut fired), Advance::More);
    w.check_invariants();
    assert_eq!(fired, vec![(99, 9), (100, 2), (100, 3)]);
    fired.clear();
    assert_eq!(w.advance_bounded(200, 3, &mut fired), Advance::Done);
    w.check_invariants();
    assert_eq!(fired, vec![(100, 4), (101, 6), (150, 8)]);
    // A lower bound: the start of 5000's level-2 slot.
    assert!(w.due(5000) && !w.due(w.next_wake().unwrap() - 1));
    fired.clear();
    assert_eq!(w.advance_bounded(6000, 1, &mut fired), Advance::Done);
    assert_eq!(fired, vec![(5000, 7)]);
    assert!(!w.due(u64::MAX - 1) && w.is_empty());
    // A cancel leaves `due` low until the next advance, which makes it exact.
    w.insert(7000, 10);
    let id = w.insert(6500, 11);
    w.cancel(id);
    assert!(w.due(6500));
    fired.clear();
    assert_eq!(w.advance_bounded(6500, 1, &mut fired), Advance::Done);
    assert!(fired.is_empty() && w.due(7000) && !w.due(w.next_wake().unwrap() - 1));
}

/// A bounded advance that stops between slots leaves the clock at the last slot it
/// fired from, and the next one goes on from there.
#[test]
fn bounded_advance_stops_between_slots() {
    let mut w: Wheel<u32> = Wheel::new(0);
    w.insert(10, 0);
    w.insert(20, 1);
    w.insert(70_000, 2);
    let mut fired = Vec::new();
    assert_eq!(w.advance_bounded(100_000, 1, &mut fired), Advance::More);
    w.check_invariants();
    assert_eq!((fired.clone(), w.now()), (vec![(10, 0)], 10));
    w.insert(15, 3);
    assert_eq!(w.advance_bounded(100_000, 2, &mut fired), Advance::More);
    w.check_invariants();
    assert_eq!(fired, vec![(10, 0), (15, 3), (20, 1)]);
    assert_eq!(w.advance_bounded(100_000, 2, &mut fired), Advance::Done);
    assert_eq!(fired, vec![(10, 0), (15, 3), (20, 1), (70_000, 2)]);
    assert_eq!(w.now(), 100_000);
}
