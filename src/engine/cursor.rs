//! Cursors: listings of the whole table, or of every client, taken a batch at a time.
//!
//! Listing a million locks in one go would stall every other connection and fill the
//! caller's output buffer. A [`Cursor`] is a position in one of the engine's
//! slot-ordered stores: the lock slab, the claim slab or the client slots. Each
//! `scan_*` call visits at most a given number of slots from there and moves the
//! cursor past them, so a codec can write a listing in batches over many loop
//! iterations while the table changes in between. A cursor is two words and allocates
//! nothing; the engine keeps no record of it, so an abandoned listing costs nothing.
//!
//! # Invariants (the guarantee of Redis `SCAN`)
//! - An item (lock, hold, client) that exists from a listing's first batch to its last
//!   is visited exactly once: an item keeps its slot for as long as it exists, and the
//!   cursor moves forward over slot numbers only.
//! - An item created or removed during the listing may or may not be visited. A lock
//!   removed and created again (a new lock of the same name, maybe in another slot) may
//!   therefore be visited twice, once per life.
//! - Every visited item exists when it is visited (the visitor sees the live item).
//! - A closing client (disconnected, its claims not all removed yet) counts as removed:
//!   neither it nor its holds are visited, though its claims still count in a lock's
//!   holders and waiters until they are gone.
//! - Order is slot order: neither name order nor creation order. Slots are reused
//!   lowest-freed-last, so a table that only grew lists in creation order.

use super::{Client, ClientId, Engine, LockInfo};

/// A position in a slot-ordered scan; [`Cursor::default`] is the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The next slot to visit.
    next: usize,
}

/// How a scan batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Slots are left: call again with the same cursor.
    More,
    /// Every slot has been visited: the listing is complete.
    Done,
}

/// One hold, as [`Engine::scan_holds`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldView<'a> {
    /// The lock's name.
    pub name: &'a [u8],
    /// The hold's fencing token.
    pub token: u64,
    /// The connection holding it.
    pub client: ClientId,
}

/// Visits up to `slots` slots from `cursor` (one past the last slot is `end`), calling
/// `visit` for each occupied one; `visit` returns false to end the batch after that item.
fn scan<T>(
    cursor: &mut Cursor,
    slots: usize,
    end: impl Fn() -> usize,
    item: impl Fn(usize) -> Option<T>,
    mut visit: impl FnMut(T) -> bool,
) -> Scan {
    let stop = cursor.next.saturating_add(slots).min(end());
    while cursor.next < stop {
        let slot = cursor.next;
        cursor.next += 1;
        if let Some(t) = item(slot) {
            if !visit(t) {
                break;
            }
        }
    }
    if cursor.next >= end() {
        Scan::Done
    } else {
        Scan::More
    }
}

impl Engine {
    /// Visits the locks (name, info) in up to `slots` slots from `cursor`; `visit`
    /// returns false to end this batch after the lock it was given.
    pub fn scan_locks(
        &self,
        cursor: &mut Cursor,
        slots: usize,
        visit: impl FnMut((&[u8], LockInfo)) -> bool,
    ) -> Scan {
        let t = &self.table;
        scan(
            cursor,
            slots,
            || t.lock_slots(),
            |s| t.lock_in_slot(s),
            visit,
        )
    }

    /// Visits the holds (waiting claims and a closing client's holds are skipped) in up
    /// to `slots` claim slots from
    /// `cursor`; `visit` returns false to end this batch after the hold it was given.
    pub fn scan_holds(
        &self,
        cursor: &mut Cursor,
        slots: usize,
        visit: impl FnMut(HoldView<'_>) -> bool,
    ) -> Scan {
        let t = &self.table;
        let hold = |slot: usize| {
            let id = slot as u32;
            if !t.contains(id) {
                return None;
            }
            let c = t.claim(id);
            if !self.listed(c.owner()) {
                return None;
            }
            Some(HoldView {
                name: t.claim_name(id),
                token: c.token()?,
                client: c.owner(),
            })
        };
        scan(cursor, slots, || t.claim_slots(), hold, visit)
    }

    /// Visits the connected clients (id, client, (holds, waits)), closing ones left
    /// out, in up to `slots`
    /// client slots from `cursor`; `visit` returns false to end this batch after the
    /// client it was given.
    pub fn scan_clients(
        &self,
        cursor: &mut Cursor,
        slots: usize,
        visit: impl FnMut((ClientId, &Client, (u32, u32))) -> bool,
    ) -> Scan {
        let client = |slot: usize| {
            let c = self.clients.get(slot)?.as_ref().filter(|c| !c.closing)?;
            let id = slot as ClientId;
            Some((id, c, self.table.owner_counts(id)))
        };
        scan(cursor, slots, || self.clients.len(), client, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AcquireRequest, Mode};
    use crate::fence::Fence;
    use crate::testrng::Rng;
    use std::collections::{HashMap, HashSet};
    use std::net::SocketAddr;

    const CLIENTS: u32 = 6;
    const NAMES: u64 = 48;

    fn addr() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    fn name(i: u64) -> Vec<u8> {
        format!("n{i}").into_bytes()
    }

    /// Every (name, life) present, every hold token present, every client present.
    fn snapshot(e: &Engine) -> (HashSet<Vec<u8>>, HashSet<u64>, HashSet<ClientId>) {
        let locks: HashSet<Vec<u8>> = e.locks().map(|(n, _)| n.to_vec()).collect();
        let holds = locks
            .iter()
            .flat_map(|n| e.holds_on(n).map(|(t, _)| t).collect::<Vec<_>>())
            .collect();
        let clients = e.clients().map(|(id, _, _)| id).collect();
        (locks, holds, clients)
    }

    /// One random change: an acquire, a release, or a client reconnecting (which drops
    /// all its claims).
    fn mutate(e: &mut Engine, rng: &mut Rng, now: u64) {
        let c = rng.below(u64::from(CLIENTS)) as ClientId;
        if e.client(c).is_none() {
            e.connect(c, addr());
            return;
        }
        match rng.below(10) {
            0..=5 => {
                let n = name(rng.below(NAMES));
                let mode = if rng.chance(50) {
                    Mode::Exclusive
                } else {
                    Mode::Shared { max: 0 }
                };
                let req = AcquireRequest {
                    name: &n,
                    mode,
                    wait: if rng.chance(50) { None } else { Some(0) },
                    hold: None,
                    queue: None,
                };
                e.acquire(c, b"t", &req, now);
            }
            6..=8 => {
                let held: Vec<(Vec<u8>, u64)> = e
                    .holds_of(c)
                    .map(|h| (h.name.to_vec(), h.token.unwrap()))
                    .collect();
                if !held.is_empty() {
                    let (n, t) = &held[rng.below(held.len() as u64) as usize];
                    e.release(c, n, Some(*t), now).unwrap();
                }
            }
            _ => {
                e.disconnect(c, now);
            }
        }
        let mut sink = Vec::new();
        e.take_events(&mut sink);
    }

    /// Lists locks, holds and clients in random batches with random changes in between,
    /// and checks the scan guarantee against snapshots taken after every change.
    #[test]
    fn scan_guarantee_under_random_changes() {
        for seed in 0..300u64 {
            let mut rng = Rng::new(seed);
            let mut e = Engine::new(Fence::starting_at(1), 0, 1000);
            for c in 0..CLIENTS {
                e.connect(c, addr());
            }
            for _ in 0..rng.below(120) {
                mutate(&mut e, &mut rng, 0);
            }
            let (locks0, holds0, clients0) = snapshot(&e);
            // Items that exist from the start, minus those seen missing after a change.
            let (mut locks_kept, mut holds_kept, mut clients_kept) =
                (locks0.clone(), holds0.clone(), clients0.clone());
            // Lives: a lock name's life number grows each time it is seen re-created.
            let mut life: HashMap<Vec<u8>, u32> = locks0.iter().map(|n| (n.clone(), 0)).collect();
            let mut present = locks0;
            let mut client_life: HashMap<ClientId, u32> =
                clients0.iter().map(|&c| (c, 0)).collect();
            let mut connected = clients0.clone();
            let mut seen_locks: HashMap<(Vec<u8>, u32), u32> = HashMap::new();
            let mut seen_holds: HashMap<u64, u32> = HashMap::new();
            let mut seen_clients: HashMap<(ClientId, u32), u32> = HashMap::new();
            let (mut cl, mut ch, mut cc) =
                (Cursor::default(), Cursor::default(), Cursor::default());
            let (mut dl, mut dh, mut dc) = (false, false, false);
            let mut rounds = 0;
            while !(dl && dh && dc) {
                rounds += 1;
                assert!(rounds < 100_000, "seed {seed}: scans never end");
                let slots = rng.range_usize(1, 6);
                let stop_after = rng.range_usize(1, 4);
                if !dl {
                    let mut n = 0;
                    let r = e.scan_locks(&mut cl, slots, |(name, info)| {
                        assert!(info.holders + info.waiters > 0, "seed {seed}: empty lock");
                        let l = life[name];
                        *seen_locks.entry((name.to_vec(), l)).or_default() += 1;
                        n += 1;
                        n < stop_after
                    });
                    dl = r == Scan::Done;
                }
                if !dh {
                    let mut n = 0;
                    let r = e.scan_holds(&mut ch, slots, |h| {
                        assert!(e
                            .holds_on(h.name)
                            .any(|(t, c)| t == h.token && c == h.client));
                        *seen_holds.entry(h.token).or_default() += 1;
                        n += 1;
                        n < stop_after
                    });
                    dh = r == Scan::Done;
                }
                if !dc {
                    let mut n = 0;
                    let r = e.scan_clients(&mut cc, slots, |(id, _, counts)| {
                        assert_eq!(counts, e.table.owner_counts(id));
                        let l = client_life[&id];
                        *seen_clients.entry((id, l)).or_default() += 1;
                        n += 1;
                        n < stop_after
                    });
                    dc = r == Scan::Done;
                }
                for _ in 0..rng.below(3) {
                    mutate(&mut e, &mut rng, 0);
                    let (locks, holds, clients) = snapshot(&e);
                    locks_kept.retain(|n| locks.contains(n));
                    holds_kept.retain(|t| holds.contains(t));
                    clients_kept.retain(|c| clients.contains(c));
                    for n in &locks {
                        if !present.contains(n) {
                            *life.entry(n.clone()).or_default() += 1;
                        }
                    }
                    present = locks;
                    for &c in &clients {
                        if !connected.contains(&c) {
                            *client_life.entry(c).or_default() += 1;
                        }
                    }
                    connected = clients;
                }
            }
            for ((n, l), times) in &seen_locks {
                assert_eq!(
                    *times, 1,
                    "seed {seed}: lock {n:?} life {l} seen {times} times"
                );
            }
            for n in &locks_kept {
                assert!(
                    seen_locks.contains_key(&(n.clone(), 0)),
                    "seed {seed}: lock {n:?} existed throughout but was not listed"
                );
            }
            for (t, times) in &seen_holds {
                assert_eq!(*times, 1, "seed {seed}: hold {t} seen {times} times");
            }
            for t in &holds_kept {
                assert!(seen_holds.contains_key(t), "seed {seed}: hold {t} missed");
            }
            for ((c, l), times) in &seen_clients {
                assert_eq!(
                    *times, 1,
                    "seed {seed}: client {c} life {l} seen {times} times"
                );
            }
            for &c in &clients_kept {
                assert!(
                    seen_clients.contains_key(&(c, 0)),
                    "seed {seed}: client {c} missed"
                );
            }
        }
    }

    #[test]
    fn empty_engine_scans_are_done_at_once() {
        let e = Engine::new(Fence::starting_at(1), 0, 10);
        let mut c = Cursor::default();
        assert_eq!(e.scan_locks(&mut c, 10, |_| panic!("no lock")), Scan::Done);
        let mut c = Cursor::default();
        assert_eq!(e.scan_holds(&mut c, 10, |_| panic!("no hold")), Scan::Done);
        let mut c = Cursor::default();
        assert_eq!(
            e.scan_clients(&mut c, 10, |_| panic!("no client")),
            Scan::Done
        );
    }

    #[test]
    fn a_batch_visits_at_most_its_slots_and_stops_when_asked() {
        let mut e = Engine::new(Fence::starting_at(1), 0, 100);
        e.connect(0, addr());
        for i in 0..10 {
            let n = name(i);
            let req = AcquireRequest {
                name: &n,
                mode: Mode::Exclusive,
                wait: None,
                hold: None,
                queue: None,
            };
            e.acquire(0, b"t", &req, 0);
        }
        let mut c = Cursor::default();
        let mut got = Vec::new();
        assert_eq!(
            e.scan_locks(&mut c, 3, |(n, _)| {
                got.push(n.to_vec());
                true
            }),
            Scan::More
        );
        assert_eq!(got.len(), 3, "three slots, all occupied");
        assert_eq!(
            e.scan_locks(&mut c, 100, |_| false),
            Scan::More,
            "stopped after one"
        );
        let mut rest = 0;
        assert_eq!(
            e.scan_locks(&mut c, 100, |_| {
                rest += 1;
                true
            }),
            Scan::Done
        );
        assert_eq!(rest, 6);
    }
}
