//! The table against a naive reference model, driven by seeded random operations.

use super::*;
use crate::testrng::Rng;
use std::collections::{BTreeMap, VecDeque};

/// Model id of a claim; also the payload `P` of the table under test.
type Mid = u64;

/// Few names, so contention is high; the last one is too long to be stored inline.
const NAMES: [&[u8]; 4] = [
    b"a",
    b"b",
    b"jobs:42",
    b"a-name-longer-than-twenty-four-bytes-so-it-spills",
];
const OWNERS: u32 = 5;

#[derive(Clone, Copy, Debug)]
struct MClaim {
    owner: OwnerId,
    name: usize,
    mode: Mode,
    /// `Some` once held (the token the table gave it).
    token: Option<u64>,
    /// The table's index of this claim.
    id: ClaimId,
}

#[derive(Default, Debug)]
struct MLock {
    /// In grant order.
    holds: Vec<Mid>,
    /// Strict FIFO, exclusive and shared together.
    waiters: VecDeque<Mid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Granted { holders: u32 },
    Queued,
    Busy,
    QueueFull,
}

/// The spec's rules, implemented in the most obvious way.
struct Model {
    claims: BTreeMap<Mid, MClaim>,
    locks: Vec<MLock>,
    next: Mid,
}

impl Model {
    fn new() -> Self {
        Model {
            claims: BTreeMap::new(),
            locks: (0..NAMES.len()).map(|_| MLock::default()).collect(),
            next: 0,
        }
    }

    fn compatible(&self, l: usize, mode: Mode) -> bool {
        let holds = &self.locks[l].holds;
        match mode {
            Mode::Exclusive => holds.is_empty(),
            Mode::Shared { max } => {
                holds.iter().all(|h| self.claims[h].mode != Mode::Exclusive)
                    && (max == 0 || holds.len() < max as usize)
            }
        }
    }

    /// The fate of a new request, decided before it is recorded.
    fn fate(&self, l: usize, mode: Mode, may_wait: bool, queue: Option<u32>) -> Fate {
        let lock = &self.locks[l];
        if lock.waiters.is_empty() && self.compatible(l, mode) {
            Fate::Granted {
                holders: lock.holds.len() as u32 + 1,
            }
        } else if !may_wait {
            Fate::Busy
        } else if queue.is_some_and(|q| lock.waiters.len() >= q as usize) {
            Fate::QueueFull
        } else {
            Fate::Queued
        }
    }

    /// Grants head waiters while compatible: (claim, holders after its grant).
    fn grant(&mut self, l: usize) -> Vec<(Mid, u32)> {
        let mut out = Vec::new();
        while let Some(&head) = self.locks[l].waiters.front() {
            if !self.compatible(l, self.claims[&head].mode) {
                break;
            }
            self.locks[l].waiters.pop_front();
            self.locks[l].holds.push(head);
            out.push((head, self.locks[l].holds.len() as u32));
        }
        out
    }

    fn remove(&mut self, m: Mid) -> (MClaim, Vec<(Mid, u32)>) {
        let c = self.claims.remove(&m).expect("model claim");
        let lock = &mut self.locks[c.name];
        if c.token.is_some() {
            lock.holds.retain(|&h| h != m);
        } else {
            lock.waiters.retain(|&w| w != m);
        }
        (c, self.grant(c.name))
    }

    fn held(&self) -> Vec<Mid> {
        self.claims
            .iter()
            .filter(|(_, c)| c.token.is_some())
            .map(|(&m, _)| m)
            .collect()
    }

    fn waiting(&self) -> Vec<Mid> {
        self.claims
            .iter()
            .filter(|(_, c)| c.token.is_none())
            .map(|(&m, _)| m)
            .collect()
    }

    /// An owner's waits in request order.
    fn waits_of(&self, o: OwnerId) -> Vec<Mid> {
        self.claims
            .iter()
            .filter(|(_, c)| c.owner == o && c.token.is_none())
            .map(|(&m, _)| m)
            .collect()
    }

    /// An owner's holds in grant (= token) order.
    fn holds_of(&self, o: OwnerId) -> Vec<Mid> {
        let mut v: Vec<Mid> = self
            .claims
            .iter()
            .filter(|(_, c)| c.owner == o && c.token.is_some())
            .map(|(&m, _)| m)
            .collect();
        v.sort_by_key(|m| self.claims[m].token);
        v
    }
}

struct Harness {
    table: Table<Mid>,
    model: Model,
    last_token: u64,
    ctx: String,
    /// How often interesting cases came up, to check the mix exercises them.
    seen: Seen,
}

#[derive(Default, Debug)]
struct Seen {
    /// Owners found indexed by key after a step's lookups.
    keyed: u64,
    fates: [u64; 4],
    multi_grants: u64,
    token_required: u64,
    found: u64,
}

impl Harness {
    /// Checks the table's grants against the model's and records their tokens.
    fn grants(&mut self, got: &[Grant], want: &[(Mid, u32)]) {
        let ctx = &self.ctx;
        let got_m: Vec<(Mid, u32)> = got
            .iter()
            .map(|g| (self.table.claim(g.claim).data, g.holders))
            .collect();
        assert_eq!(got_m, want, "{ctx}: grants (model id, holders)");
        self.seen.multi_grants += u64::from(got.len() > 1);
        for g in got {
            let m = self.table.claim(g.claim).data;
            let token = self.table.claim(g.claim).token();
            let token = token.unwrap_or_else(|| panic!("{}: granted claim {m} not held", self.ctx));
            self.token(token);
            self.model.claims.get_mut(&m).unwrap().token = Some(token);
        }
    }

    fn token(&mut self, token: u64) {
        assert!(
            token > self.last_token,
            "{}: token {token} not above {}",
            self.ctx,
            self.last_token
        );
        self.last_token = token;
    }

    fn remove(&mut self, m: Mid) {
        let id = self.model.claims[&m].id;
        let mut got = Vec::new();
        let removed = self.table.remove(id, &mut got);
        self.removed(m, removed, got);
    }

    /// Releases held `m` the way the engine's release does: found by owner, name and
    /// token, then removed through the index slot found ([`Table::remove_found`]).
    fn release(&mut self, m: Mid) {
        let c = self.model.claims[&m];
        let found = self
            .table
            .find_hold_at(c.owner, NAMES[c.name], c.token)
            .unwrap_or_else(|e| panic!("{}: find_hold_at: {e:?}", self.ctx));
        assert_eq!(found.claim(), c.id, "{}: found claim", self.ctx);
        let mut got = Vec::new();
        let removed = self.table.remove_found(found, &mut got);
        self.removed(m, removed, got);
    }

    fn removed(&mut self, m: Mid, removed: Removed<Mid>, got: Vec<Grant>) {
        let (c, want) = self.model.remove(m);
        assert_eq!(removed.data, m, "{}: removed payload", self.ctx);
        let state = c
            .token
            .map_or(State::Waiting, |token| State::Held { token });
        assert_eq!(removed.state, state, "{}: removed state", self.ctx);
        self.grants(&got, &want);
    }

    fn acquire(
        &mut self,
        owner: OwnerId,
        l: usize,
        mode: Mode,
        may_wait: bool,
        queue: Option<u32>,
    ) {
        let m = self.model.next;
        self.model.next += 1;
        let want = self.model.fate(l, mode, may_wait, queue);
        self.seen.fates[match want {
            Fate::Granted { .. } => 0,
            Fate::Queued => 1,
            Fate::Busy => 2,
            Fate::QueueFull => 3,
        }] += 1;
        let got = self
            .table
            .acquire(owner, NAMES[l], mode, may_wait, queue, m);
        let ctx = &self.ctx;
        let (id, token) = match (got, want) {
            (
                Acquire::Granted {
                    claim,
                    token,
                    holders,
                },
                Fate::Granted { holders: h },
            ) => {
                assert_eq!(holders, h, "{ctx}: holders of an immediate grant");
                (claim, Some(token))
            }
            (Acquire::Queued { claim }, Fate::Queued) => (claim, None),
            (Acquire::Busy, Fate::Busy) | (Acquire::QueueFull, Fate::QueueFull) => return,
            (got, want) => panic!("{ctx}: acquire gave {got:?}, model says {want:?}"),
        };
        assert!(
            !self.model.claims.values().any(|c| c.id == id),
            "{ctx}: claim index {id} in use"
        );
        let c = MClaim {
            owner,
            name: l,
            mode,
            token,
            id,
        };
        self.model.claims.insert(m, c);
        match token {
            Some(t) => {
                self.token(t);
                self.model.locks[l].holds.push(m);
            }
            None => self.model.locks[l].waiters.push_back(m),
        }
    }

    /// Removes every claim of `owner` the way a disconnect does: waits, then holds.
    fn remove_owner(&mut self, o: OwnerId) {
        while let Some(id) = self.table.first_wait(o) {
            let m = self.table.claim(id).data;
            let want = self.model.waits_of(o).first().copied();
            assert_eq!(Some(m), want, "{}: first_wait({o})", self.ctx);
            self.remove(m);
        }
        assert!(
            self.model.waits_of(o).is_empty(),
            "{}: waits of {o} left",
            self.ctx
        );
        while let Some(id) = self.table.first_hold(o) {
            let m = self.table.claim(id).data;
            let want = self.model.holds_of(o).first().copied();
            assert_eq!(Some(m), want, "{}: first_hold({o})", self.ctx);
            self.remove(m);
        }
        assert!(
            self.model.holds_of(o).is_empty(),
            "{}: holds of {o} left",
            self.ctx
        );
        assert_eq!(self.table.owner_counts(o), (0, 0), "{}", self.ctx);
    }

    fn find_hold(&mut self, o: OwnerId, l: usize, token: Option<u64>) {
        let mine: Vec<Mid> = self.model.locks[l]
            .holds
            .iter()
            .copied()
            .filter(|h| {
                let c = &self.model.claims[h];
                c.owner == o && token.is_none_or(|t| c.token == Some(t))
            })
            .collect();
        let want = match mine[..] {
            [] => Err(FindError::NotHeld),
            [m] => Ok(self.model.claims[&m].id),
            _ => Err(FindError::TokenRequired),
        };
        let got = self.table.find_hold(o, NAMES[l], token);
        self.seen.token_required += u64::from(want == Err(FindError::TokenRequired));
        self.seen.found += u64::from(want.is_ok());
        assert_eq!(got, want, "{}: find_hold({o}, {l}, {token:?})", self.ctx);
    }

    /// The lookup by key against the reference: every owner's waits with each key
    /// (which indexes the owners with more than `KEY_SCAN_MAX` waits, so later steps
    /// run with both kinds of owners).
    fn lookup_by_key(&mut self) {
        let owners: Vec<OwnerId> = (0..OWNERS).collect();
        for o in owners {
            let waits = self.model.waits_of(o);
            for key in super::KEYS {
                let want: Vec<Mid> = waits.iter().copied().filter(|m| m.key() == key).collect();
                let t = &mut self.table;
                let ids: Vec<ClaimId> = t.waits_with_key(o, key).collect();
                let got: Vec<Mid> = ids.iter().map(|&c| t.claim(c).data).collect();
                assert_eq!(got, want, "{}: waits_with_key({o}, {key:?})", self.ctx);
            }
            self.seen.keyed += u64::from(self.table.keyed(o));
        }
    }

    /// Everything observable, against the model.
    fn compare(&mut self) {
        self.lookup_by_key();
        let (t, m, ctx) = (&self.table, &self.model, &self.ctx);
        t.check();
        let mut locks = 0;
        let mut want_locks = Vec::new();
        for (l, name) in NAMES.iter().enumerate() {
            let ml = &m.locks[l];
            let holds: Vec<Mid> = t.holds_on(name).map(|c| t.claim(c).data).collect();
            let waiters: Vec<Mid> = t.waiters_on(name).map(|c| t.claim(c).data).collect();
            assert_eq!(holds, ml.holds, "{ctx}: holds on {l}");
            assert_eq!(
                waiters,
                Vec::from(ml.waiters.clone()),
                "{ctx}: waiters on {l}"
            );
            if ml.holds.is_empty() {
                assert!(ml.waiters.is_empty(), "{ctx}: model stalls on {l}");
                assert_eq!(t.inspect(name), None, "{ctx}: empty lock {l} still there");
                continue;
            }
            locks += 1;
            let info = LockInfo {
                exclusive: m.claims[&ml.holds[0]].mode == Mode::Exclusive,
                holders: ml.holds.len() as u32,
                waiters: ml.waiters.len() as u32,
            };
            let got = t.inspect(name);
            assert_eq!(got.as_ref(), Some(&info), "{ctx}: inspect {l}");
            want_locks.push((name.to_vec(), info));
        }
        let mut got_locks: Vec<(Vec<u8>, LockInfo)> =
            t.locks().map(|(n, i)| (n.to_vec(), i)).collect();
        got_locks.sort_by(|a, b| a.0.cmp(&b.0));
        want_locks.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got_locks, want_locks, "{ctx}: locks()");
        assert_eq!(t.lock_count(), locks, "{ctx}: lock_count");
        assert_eq!(t.hold_count(), m.held().len(), "{ctx}: hold_count");
        assert_eq!(t.wait_count(), m.waiting().len(), "{ctx}: wait_count");
        for (&mid, c) in &m.claims {
            assert!(t.contains(c.id), "{ctx}: claim {mid} gone");
            let tc = t.claim(c.id);
            assert_eq!(tc.data, mid, "{ctx}: payload of {}", c.id);
            assert_eq!(
                (tc.owner(), tc.mode(), tc.token()),
                (c.owner, c.mode, c.token),
                "{ctx}: claim {mid}"
            );
            let state = c
                .token
                .map_or(State::Waiting, |token| State::Held { token });
            assert_eq!(tc.state(), state, "{ctx}: state of {mid}");
            assert_eq!(t.claim_name(c.id), NAMES[c.name], "{ctx}: name of {mid}");
        }
        for o in 0..OWNERS {
            let (holds, waits) = (m.holds_of(o), m.waits_of(o));
            assert_eq!(
                t.owner_counts(o),
                (holds.len() as u32, waits.len() as u32),
                "{ctx}: counts of {o}"
            );
            let got: Vec<Mid> = t.waits_of(o).map(|c| t.claim(c).data).collect();
            assert_eq!(got, waits, "{ctx}: waits_of({o})");
            let got: Vec<Mid> = t.holds_of(o).map(|c| t.claim(c).data).collect();
            assert_eq!(got, holds, "{ctx}: holds_of({o})");
            let id = |m: Option<&Mid>| m.map(|m| self.model.claims[m].id);
            assert_eq!(t.first_wait(o), id(waits.first()), "{ctx}: first_wait({o})");
            assert_eq!(t.first_hold(o), id(holds.first()), "{ctx}: first_hold({o})");
        }
    }
}

fn random_mode(rng: &mut Rng) -> Mode {
    if rng.chance(40) {
        Mode::Exclusive
    } else {
        Mode::Shared {
            max: rng.below(4) as u32,
        }
    }
}

fn pick(rng: &mut Rng, v: &[Mid]) -> Option<Mid> {
    (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize])
}

/// Random operations over 5 owners and 4 names against [`Model`].
#[test]
fn model() {
    let mut seen = Seen::default();
    for seed in 0..30 {
        let mut rng = Rng::new(seed);
        let mut h = Harness {
            // Owners here have a few waits: index them past 0, 1 or 2 (and past the
            // real limit for some seeds: never).
            table: Table::new(Fence::starting_at(1 + seed * 1000))
                .with_key_scan_max([0, 1, 2, crate::table::index::KEY_SCAN_MAX][seed as usize % 4]),
            model: Model::new(),
            last_token: 0,
            ctx: String::new(),
            seen: Seen::default(),
        };
        for step in 0..3000 {
            // Keep the table small enough that holds and waits both come and go.
            let crowded = h.model.claims.len() >= 24;
            let r = if crowded {
                40 + rng.below(60)
            } else {
                rng.below(100)
            };
            let owner = rng.below(u64::from(OWNERS)) as OwnerId;
            let l = rng.below(NAMES.len() as u64) as usize;
            h.ctx = format!("seed {seed} step {step} r {r} owner {owner} name {l}");
            match r {
                0..=39 => {
                    let mode = random_mode(&mut rng);
                    let may_wait = rng.chance(80);
                    let queue = rng.chance(30).then(|| rng.below(4) as u32);
                    h.ctx += &format!(" acquire {mode:?} may_wait {may_wait} queue {queue:?}");
                    h.acquire(owner, l, mode, may_wait, queue);
                }
                40..=59 => {
                    if let Some(m) = pick(&mut rng, &h.model.held()) {
                        h.ctx += &format!(" release {m}");
                        if rng.chance(50) {
                            h.release(m);
                        } else {
                            h.remove(m);
                        }
                    }
                }
                60..=74 => {
                    if let Some(m) = pick(&mut rng, &h.model.waiting()) {
                        h.ctx += &format!(" cancel {m}");
                        h.remove(m);
                    }
                }
                75..=79 => {
                    h.ctx += " disconnect";
                    h.remove_owner(owner);
                }
                _ => {
                    let token = match rng.below(4) {
                        0 => None,
                        1 => Some(rng.below(h.last_token + 2)),
                        _ => pick(&mut rng, &h.model.held()).and_then(|m| h.model.claims[&m].token),
                    };
                    h.ctx += &format!(" find_hold {token:?}");
                    h.find_hold(owner, l, token);
                    // With no token too, and for an owner that never had anything.
                    h.find_hold(owner, l, None);
                    assert_eq!(
                        h.table.find_hold(OWNERS + 7, NAMES[l], token),
                        Err(FindError::NotHeld)
                    );
                }
            }
            h.compare();
        }
        for o in 0..OWNERS {
            h.ctx = format!("seed {seed} final disconnect of {o}");
            h.remove_owner(o);
            h.compare();
        }
        assert_eq!(h.table.lock_count(), 0, "seed {seed}: locks left");
        for (i, n) in h.seen.fates.iter().enumerate() {
            seen.fates[i] += n;
        }
        seen.multi_grants += h.seen.multi_grants;
        seen.token_required += h.seen.token_required;
        seen.found += h.seen.found;
        seen.keyed += h.seen.keyed;
    }
    // The mix must reach every outcome often.
    assert!(seen.fates.iter().all(|&n| n > 1000), "{seen:?}");
    assert!(
        seen.multi_grants > 200 && seen.token_required > 100,
        "{seen:?}"
    );
    assert!(seen.found > 1000, "{seen:?}");
    assert!(seen.keyed > 1000, "owners indexed by key: {seen:?}");
    eprintln!("table model: {seen:?}");
}
