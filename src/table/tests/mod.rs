//! Unit tests that spell out the queueing rules of the protocol's "Locks and holds"
//! section, and the invariant check every table test runs; [`model`] checks the table
//! against a naive reference model.

use super::*;

mod model;

/// Keys of the test payloads: three, so that owners have several waits per key.
const KEYS: [&[u8]; 3] = [b"k0", b"k1", b"k2"];

impl Keyed for u64 {
    fn key(&self) -> &[u8] {
        KEYS[(*self % 3) as usize]
    }
}

const X: Mode = Mode::Exclusive;
const S: Mode = Mode::Shared { max: 0 };

fn table() -> Table<u64> {
    Table::new(Fence::starting_at(1))
}

/// Acquires with `may_wait` and no queue limit.
fn ask(t: &mut Table<u64>, owner: OwnerId, name: &[u8], mode: Mode) -> Acquire {
    t.acquire(owner, name, mode, true, None, 0)
}

fn claim_of(a: &Acquire) -> ClaimId {
    match *a {
        Acquire::Granted { claim, .. } | Acquire::Queued { claim } => claim,
        ref other => panic!("no claim in {other:?}"),
    }
}

fn info(t: &Table<u64>, name: &[u8]) -> (bool, u32, u32) {
    let i = t.inspect(name).expect("lock exists");
    (i.exclusive, i.holders, i.waiters)
}

/// Removes a claim and returns the grants it caused.
fn remove(t: &mut Table<u64>, claim: ClaimId) -> Vec<Grant> {
    let mut granted = Vec::new();
    t.remove(claim, &mut granted);
    t.check();
    granted
}

#[test]
fn long_names_reuse_heap_buffers() {
    let mut t: Table<()> = Table::new(Fence::starting_at(1));
    let mut granted = Vec::new();
    let long = [b'n'; 40];
    let Acquire::Granted { claim, .. } = t.acquire(0, &long, Mode::Exclusive, true, None, ())
    else {
        panic!("free lock not granted")
    };
    let first = t.claim_name(claim).as_ptr();
    t.remove(claim, &mut granted);
    assert_eq!(t.spare_names.len(), 1, "the dropped long name is kept");
    // A short name stays inline and leaves the spare alone.
    let Acquire::Granted { claim: short, .. } = t.acquire(0, b"s", Mode::Exclusive, true, None, ())
    else {
        panic!()
    };
    assert_eq!(t.spare_names.len(), 1);
    t.remove(short, &mut granted);
    let other = [b'm'; 30];
    let Acquire::Granted { claim, .. } = t.acquire(0, &other, Mode::Exclusive, true, None, ())
    else {
        panic!()
    };
    assert_eq!(t.claim_name(claim), &other[..]);
    assert_eq!(
        t.claim_name(claim).as_ptr(),
        first,
        "the heap buffer was reused"
    );
    assert!(t.spare_names.is_empty());
    t.check();
}

#[test]
fn first_request_is_granted_with_token_and_lock_vanishes_when_released() {
    let mut t = table();
    assert_eq!(
        ask(&mut t, 0, b"a", X),
        Acquire::Granted {
            claim: 0,
            token: 1,
            holders: 1
        }
    );
    assert_eq!(info(&t, b"a"), (true, 1, 0));
    assert_eq!(t.find_hold(0, b"a", None), Ok(0));
    assert_eq!(t.find_hold(1, b"a", None), Err(FindError::NotHeld));
    assert!(remove(&mut t, 0).is_empty());
    assert_eq!(t.inspect(b"a"), None);
    assert_eq!((t.lock_count(), t.hold_count(), t.wait_count()), (0, 0, 0));
    assert_eq!(t.find_hold(0, b"a", None), Err(FindError::NotHeld));
}

#[test]
fn exclusive_waits_for_shared_holds_to_drain() {
    let mut t = table();
    let s1 = claim_of(&ask(&mut t, 0, b"a", S));
    let s2 = claim_of(&ask(&mut t, 1, b"a", S));
    let x = ask(&mut t, 2, b"a", X);
    assert!(matches!(x, Acquire::Queued { .. }));
    assert_eq!(info(&t, b"a"), (false, 2, 1));
    assert!(
        remove(&mut t, s1).is_empty(),
        "one shared hold left: still waits"
    );
    let g = remove(&mut t, s2);
    assert_eq!(
        g,
        vec![Grant {
            claim: claim_of(&x),
            holders: 1
        }]
    );
    assert_eq!(t.claim(claim_of(&x)).token(), Some(3));
    assert_eq!(info(&t, b"a"), (true, 1, 0));
}

#[test]
fn shared_behind_a_waiting_exclusive_waits() {
    let mut t = table();
    let s1 = claim_of(&ask(&mut t, 0, b"a", S));
    let x = claim_of(&ask(&mut t, 1, b"a", X));
    // Compatible with the shared hold, but a writer waits ahead: no overtaking.
    let s2 = ask(&mut t, 2, b"a", S);
    assert_eq!(
        s2,
        Acquire::Queued {
            claim: claim_of(&s2)
        }
    );
    assert_eq!(t.acquire(3, b"a", S, false, None, 0), Acquire::Busy);
    assert_eq!(
        t.waiters_on(b"a").collect::<Vec<_>>(),
        vec![x, claim_of(&s2)]
    );
    // The writer goes first, then the reader.
    assert_eq!(
        remove(&mut t, s1),
        vec![Grant {
            claim: x,
            holders: 1
        }]
    );
    assert_eq!(
        remove(&mut t, x),
        vec![Grant {
            claim: claim_of(&s2),
            holders: 1
        }]
    );
}

#[test]
fn consecutive_shared_waiters_are_granted_together_up_to_an_exclusive() {
    let mut t = table();
    let x1 = claim_of(&ask(&mut t, 0, b"a", X));
    let s: Vec<ClaimId> = (1..4).map(|o| claim_of(&ask(&mut t, o, b"a", S))).collect();
    let x2 = claim_of(&ask(&mut t, 4, b"a", X));
    let s4 = claim_of(&ask(&mut t, 5, b"a", S));
    let g = remove(&mut t, x1);
    assert_eq!(
        g,
        vec![
            Grant {
                claim: s[0],
                holders: 1
            },
            Grant {
                claim: s[1],
                holders: 2
            },
            Grant {
                claim: s[2],
                holders: 3
            },
        ]
    );
    let tokens: Vec<u64> = s.iter().map(|&c| t.claim(c).token().unwrap()).collect();
    assert_eq!(tokens, vec![2, 3, 4], "tokens in grant order");
    assert_eq!(t.waiters_on(b"a").collect::<Vec<_>>(), vec![x2, s4]);
    assert_eq!(info(&t, b"a"), (false, 3, 2));
}

#[test]
fn semaphore_max_caps_shared_holds() {
    let mut t = table();
    let sem = Mode::Shared { max: 2 };
    let a = claim_of(&ask(&mut t, 0, b"q", sem));
    assert!(matches!(
        ask(&mut t, 1, b"q", sem),
        Acquire::Granted { holders: 2, .. }
    ));
    assert_eq!(t.acquire(2, b"q", sem, false, None, 0), Acquire::Busy);
    let c = claim_of(&ask(&mut t, 2, b"q", sem));
    // Uncapped shared would fit, but it queues behind the waiting semaphore request.
    let d = claim_of(&ask(&mut t, 3, b"q", S));
    assert_eq!(info(&t, b"q"), (false, 2, 2));
    // One slot frees: the capped request takes it, and the uncapped one follows.
    assert_eq!(
        remove(&mut t, a),
        vec![
            Grant {
                claim: c,
                holders: 2
            },
            Grant {
                claim: d,
                holders: 3
            }
        ]
    );
    // max is per request: a request with max=1 waits while any shared hold exists.
    assert_eq!(
        t.acquire(4, b"q", Mode::Shared { max: 1 }, false, None, 0),
        Acquire::Busy
    );
    assert!(matches!(
        t.acquire(4, b"q", Mode::Shared { max: 4 }, false, None, 0),
        Acquire::Granted { holders: 4, .. }
    ));
}

#[test]
fn removing_the_waiting_exclusive_at_the_head_grants_the_shared_behind_it() {
    let mut t = table();
    let s1 = claim_of(&ask(&mut t, 0, b"a", S));
    let x = claim_of(&ask(&mut t, 1, b"a", X));
    let s2 = claim_of(&ask(&mut t, 2, b"a", S));
    let s3 = claim_of(&ask(&mut t, 3, b"a", S));
    // A timeout or cancel of the writer: the readers behind it join the hold.
    assert_eq!(
        remove(&mut t, x),
        vec![
            Grant {
                claim: s2,
                holders: 2
            },
            Grant {
                claim: s3,
                holders: 3
            }
        ]
    );
    assert_eq!(t.holds_on(b"a").collect::<Vec<_>>(), vec![s1, s2, s3]);
    assert_eq!(t.wait_count(), 0);
}

#[test]
fn try_is_busy_and_queue_limit_is_queue_full() {
    let mut t = table();
    ask(&mut t, 0, b"a", X);
    assert_eq!(t.acquire(1, b"a", X, false, None, 0), Acquire::Busy);
    assert_eq!(t.acquire(1, b"a", X, true, Some(0), 0), Acquire::QueueFull);
    assert!(matches!(
        t.acquire(1, b"a", X, true, Some(1), 0),
        Acquire::Queued { .. }
    ));
    assert_eq!(t.acquire(2, b"a", S, true, Some(1), 0), Acquire::QueueFull);
    assert!(matches!(
        t.acquire(2, b"a", S, true, Some(2), 0),
        Acquire::Queued { .. }
    ));
    // Refusals leave no trace.
    assert_eq!((t.lock_count(), t.hold_count(), t.wait_count()), (1, 1, 2));
    t.check();
}

#[test]
fn an_owner_queues_behind_itself_and_needs_tokens_for_several_holds() {
    let mut t = table();
    let x = claim_of(&ask(&mut t, 0, b"a", X));
    let again = ask(&mut t, 0, b"a", X);
    assert!(
        matches!(again, Acquire::Queued { .. }),
        "holds are per request"
    );
    remove(&mut t, x);
    assert_eq!(t.find_hold(0, b"a", None), Ok(claim_of(&again)));
    let s1 = claim_of(&ask(&mut t, 1, b"b", S));
    let s2 = claim_of(&ask(&mut t, 1, b"b", S));
    assert_eq!(t.find_hold(1, b"b", None), Err(FindError::TokenRequired));
    let tok2 = t.claim(s2).token().unwrap();
    assert_eq!(t.find_hold(1, b"b", Some(tok2)), Ok(s2));
    assert_eq!(t.find_hold(0, b"b", Some(tok2)), Err(FindError::NotHeld));
    assert_eq!(
        t.find_hold(1, b"b", Some(tok2 + 100)),
        Err(FindError::NotHeld)
    );
    let tok1 = t.claim(s1).token().unwrap();
    assert_eq!(t.find_hold(1, b"a", Some(tok1)), Err(FindError::NotHeld));
}

impl<P: Keyed> Table<P> {
    /// Checks every invariant in the module doc; for tests.
    pub(crate) fn check(&self) {
        let mut held = 0;
        for (l, lock) in self.locks.iter() {
            assert!(
                !(lock.holds.is_empty() && lock.waiters.is_empty()),
                "empty lock {l} kept"
            );
            assert_eq!(
                self.find_lock(self.hash(&lock.name), &lock.name),
                Some(l as u32),
                "lock {l} not indexed"
            );
            let holds: Vec<_> = lock.holds.iter(&self.claims, by_lock()).collect();
            for &c in &holds {
                let claim = &self.claims[c as usize];
                assert!(
                    matches!(claim.state(), State::Held { .. }),
                    "claim {c} in holds but waiting"
                );
                assert_eq!(claim.lock, l as u32);
                assert_eq!(claim.exclusive, lock.exclusive(), "mixed modes on lock {l}");
            }
            if lock.exclusive() {
                assert_eq!(
                    holds.len(),
                    1,
                    "exclusive lock {l} with {} holds",
                    holds.len()
                );
            }
            // The counts, with the flags beside them in the same words.
            assert_eq!(lock.holds.len() as usize, holds.len(), "lock {l}: holds");
            let waiters = lock.waiters.iter(&self.claims, by_lock()).count();
            assert_eq!(lock.waiters.len() as usize, waiters, "lock {l}: waiters");
            held += holds.len();
            for c in lock.waiters.iter(&self.claims, by_lock()) {
                let claim = &self.claims[c as usize];
                assert_eq!(
                    claim.state(),
                    State::Waiting,
                    "claim {c} in waiters but held"
                );
                assert_eq!(claim.lock, l as u32);
            }
            if let Some(head) = lock.waiters.front().filter(|_| !lock.backlogged()) {
                let c = &self.claims[head as usize];
                assert!(
                    !compatible(lock, c.mode()) && !self.owners[c.owner as usize].closing,
                    "lock {l} stalls: head {head} grantable"
                );
            }
            if lock.backlogged() {
                assert!(
                    self.backlog.contains(&(l as u32)),
                    "lock {l} off the backlog"
                );
            }
        }
        assert_eq!(held, self.held);
        assert_eq!(self.index.len(), self.locks.len());
        let mut owned = 0;
        for (o, own) in self.owners.iter().enumerate() {
            for c in own.holds.iter(&self.claims, by_owner()) {
                assert_eq!(self.claims[c as usize].owner, o as u32);
                assert!(matches!(
                    self.claims[c as usize].state(),
                    State::Held { .. }
                ));
                owned += 1;
            }
            for c in own.waits.iter(&self.claims, by_owner()) {
                assert_eq!(self.claims[c as usize].owner, o as u32);
                assert_eq!(self.claims[c as usize].state(), State::Waiting);
                owned += 1;
            }
        }
        assert_eq!(
            owned,
            self.claims.len(),
            "claims not in exactly one owner list"
        );
        // by_key: for each keyed owner (and only those), one list per (owner, key) with
        // waits, exactly those, in request order.
        let mut keyed = 0;
        for (o, own) in self.owners.iter().enumerate() {
            if !own.keyed {
                continue;
            }
            let waits: Vec<ClaimId> = own.waits.iter(&self.claims, by_owner()).collect();
            for &w in &waits {
                let key = self.claims[w as usize].data.key();
                let want: Vec<ClaimId> = waits
                    .iter()
                    .copied()
                    .filter(|&v| self.claims[v as usize].data.key() == key)
                    .collect();
                let got: Vec<ClaimId> = self.indexed_waits(o as OwnerId, key).collect();
                assert_eq!(got, want, "owner {o}: waits with key {key:?}");
                if want[0] == w {
                    keyed += 1;
                }
            }
        }
        assert_eq!(self.by_key.len(), keyed, "by_key lists without waits");
    }
}
