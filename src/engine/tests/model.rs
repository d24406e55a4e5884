//! The engine against a reference model that predicts every answer and event, driven
//! by seeded random operations, with attached and detached holds mixed.

use super::*;
use crate::testrng::Rng;
use std::collections::{BTreeMap, HashSet, VecDeque};

const CLIENTS: u32 = 4;
const NAMES: [&[u8]; 3] = [b"a", b"b", b"c"];
const MAX_PENDING: u32 = 4;
/// Below `CLIENTS * MAX_PENDING`, so that the server-wide limit is reached too.
const MAX_CLAIMS: usize = 8;

/// A request's id in the test; its tag is the decimal id, zero-padded to a length
/// from [`TAG_LENS`], so tags are unique.
type Rid = u64;

/// The lengths tags are padded to, in turn: bare digits, the longest inline tag, the
/// shortest and the longest in a recycled buffer, and a foreign codec's longer tag in
/// a buffer of its own. Buffers go from one length to another as they are reused.
const TAG_LENS: [usize; 5] = [0, INLINE, INLINE + 1, TAG_BUFFER, 40];

fn tag_of(rid: Rid) -> Tag {
    let digits = rid.to_string();
    let len = TAG_LENS[(rid % TAG_LENS.len() as u64) as usize].max(digits.len());
    Tag::from_slice(format!("{digits:0>len$}").as_bytes())
}

/// The request of a tag the engine gave back, which must be that request's tag exactly
/// (a recycled buffer's earlier bytes must never show).
fn rid_of(tag: &[u8]) -> Rid {
    let rid = std::str::from_utf8(tag).unwrap().parse().unwrap();
    assert_eq!(&tag_of(rid)[..], tag, "tag of request {rid}");
    rid
}

/// A live request in the reference model.
#[derive(Clone, Copy, Debug)]
struct MReq {
    /// The requesting client; [`DETACHED`] once a detached request is granted.
    client: ClientId,
    /// Made with `acquire_detached` (its attachment is the request id's digits).
    detached: bool,
    name: usize,
    mode: Mode,
    hold: Option<u32>,
    /// `Some` once held; the token comes from the engine (checked to increase).
    token: Option<u64>,
    /// The running deadline (wait while waiting, hold while held) and the sequence
    /// number of its timer: equal deadlines fire in timer creation order.
    timer: Option<(u64, u64)>,
}

/// An event the model expects; a grant's token is checked separately (only its
/// order is specified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Granted { holders: u32, shared: bool },
    Timeout,
    Expired { token: u64 },
}

/// The spec, naively: one FIFO and one hold list per name, deadlines as numbers.
struct EModel {
    reqs: BTreeMap<Rid, MReq>,
    holds: Vec<Vec<Rid>>,
    waiters: Vec<VecDeque<Rid>>,
    connected: Vec<bool>,
    seq: u64,
    counters: Counters,
}

impl EModel {
    fn compatible(&self, l: usize, mode: Mode) -> bool {
        let holds = &self.holds[l];
        match mode {
            Mode::Exclusive => holds.is_empty(),
            Mode::Shared { max } => {
                holds.iter().all(|h| self.reqs[h].mode != Mode::Exclusive)
                    && (max == 0 || holds.len() < max as usize)
            }
        }
    }

    fn timer(&mut self, now: u64, ms: Option<u32>) -> Option<(u64, u64)> {
        let ms = ms?;
        self.seq += 1;
        Some((now + u64::from(ms) + 1, self.seq))
    }

    fn grant(&mut self, l: usize, now: u64, out: &mut Vec<(Rid, Want)>) {
        while let Some(&head) = self.waiters[l].front() {
            let mode = self.reqs[&head].mode;
            if !self.compatible(l, mode) {
                break;
            }
            self.waiters[l].pop_front();
            self.holds[l].push(head);
            self.counters.grants_total += 1;
            let hold = self.reqs[&head].hold;
            let timer = self.timer(now, hold);
            let r = self.reqs.get_mut(&head).unwrap();
            r.timer = timer;
            r.token = Some(0); // the engine's token is filled in from its event
            if r.detached {
                r.client = DETACHED;
            }
            let holders = self.holds[l].len() as u32;
            out.push((
                head,
                Want::Granted {
                    holders,
                    shared: mode != Mode::Exclusive,
                },
            ));
        }
    }

    /// Takes a request off its lock's lists (no grants).
    fn unlink(&mut self, rid: Rid) -> MReq {
        let r = self.reqs.remove(&rid).unwrap();
        self.holds[r.name].retain(|&h| h != rid);
        self.waiters[r.name].retain(|&w| w != rid);
        r
    }

    fn remove(&mut self, rid: Rid, now: u64, out: &mut Vec<(Rid, Want)>) {
        let r = self.unlink(rid);
        self.grant(r.name, now, out);
    }

    /// A client's (holds in grant order, waits in request order).
    fn pending(&self, c: ClientId) -> (Vec<Rid>, Vec<Rid>) {
        let mine = self.reqs.iter().filter(|(_, r)| r.client == c);
        let (mut holds, waits): (Vec<_>, Vec<_>) = mine.partition(|(_, r)| r.token.is_some());
        holds.sort_by_key(|(_, r)| r.token);
        let ids = |v: Vec<(&Rid, &MReq)>| v.into_iter().map(|(&id, _)| id).collect();
        (ids(holds), ids(waits))
    }

    /// `c`'s hold on `l` (with `token`, or its only one); failing that, with a token,
    /// the detached hold on `l` with that token.
    fn find_hold(&self, c: ClientId, l: usize, token: Option<u64>) -> Result<Rid, FindError> {
        let find = |c: ClientId| -> Vec<Rid> {
            self.holds[l]
                .iter()
                .copied()
                .filter(|h| {
                    let r = &self.reqs[h];
                    r.client == c && token.is_none_or(|t| r.token == Some(t))
                })
                .collect()
        };
        match (&find(c)[..], token) {
            ([], Some(_)) => find(DETACHED).first().copied().ok_or(FindError::NotHeld),
            ([], None) => Err(FindError::NotHeld),
            ([rid], _) => Ok(*rid),
            _ => Err(FindError::TokenRequired),
        }
    }

    /// Cancels every wait of `c` (as one step: none of them can be granted), then
    /// releases its holds in grant order. Returns (released, cancelled waits).
    fn reset(&mut self, c: ClientId, now: u64, out: &mut Vec<(Rid, Want)>) -> (u32, Vec<Rid>) {
        let (holds, waits) = self.pending(c);
        let mut names: Vec<usize> = waits.iter().map(|&w| self.unlink(w).name).collect();
        names.sort_unstable();
        names.dedup();
        for l in names {
            self.grant(l, now, out);
        }
        for &h in &holds {
            self.remove(h, now, out);
        }
        (holds.len() as u32, waits)
    }

    /// Fires every deadline `<= now`, earliest first, equal ones in creation order.
    /// Detached holds expire without an event: they are listed in `silent`.
    fn advance(&mut self, now: u64, out: &mut Vec<(Rid, Want)>, silent: &mut Vec<Rid>) {
        let mut due: Vec<(u64, u64, Rid, bool)> = self
            .reqs
            .iter()
            .filter_map(|(&id, r)| {
                let (d, seq) = r.timer?;
                (d <= now).then_some((d, seq, id, r.token.is_none()))
            })
            .collect();
        due.sort_unstable();
        for (_, _, rid, was_waiting) in due {
            match (was_waiting, self.reqs[&rid].token) {
                (true, None) => {
                    self.counters.timeouts_total += 1;
                    out.push((rid, Want::Timeout));
                }
                // Granted earlier in this batch: it outlived its wait deadline.
                (true, Some(_)) => continue,
                (false, Some(_)) if self.reqs[&rid].client == DETACHED => {
                    self.counters.expired_total += 1;
                    silent.push(rid);
                }
                (false, Some(token)) => {
                    self.counters.expired_total += 1;
                    out.push((rid, Want::Expired { token }));
                }
                (false, None) => unreachable!("a hold deadline on a wait"),
            }
            self.remove(rid, now, out);
        }
    }
}

/// What the test knows of a request from the engine's answers and events alone,
/// independently of the model: its state and running deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Queued {
        deadline: Option<u64>,
    },
    Held {
        name: usize,
        mode: Mode,
        token: u64,
        deadline: Option<u64>,
    },
    Over,
}

/// How often interesting cases came up, to check the mix exercises them.
#[derive(Default, Debug)]
struct ESeen {
    /// Granted, Queued, Timeout, QueueFull, Limit.
    acquired: [u64; 6],
    grant_events: u64,
    timeouts: u64,
    expired: u64,
    cancelled: u64,
    extended: u64,
    released: u64,
    /// Grants of a request whose own wait deadline had passed (same batch).
    granted_at_own_deadline: u64,
    /// Bounded advances that stopped with deadlines still due (see [`Sim::batch`]).
    batches_left_due: u64,
    /// Detached holds granted, released or extended by a client other than the one
    /// that asked, expired silently, and outliving their connection.
    detached_granted: u64,
    detached_by_other: u64,
    detached_expired: u64,
    detached_orphaned: u64,
}

struct Sim {
    e: Engine,
    m: EModel,
    life: BTreeMap<Rid, Life>,
    /// The client of every request ever made, by id.
    owner: Vec<ClientId>,
    now: u64,
    last_token: u64,
    ctx: String,
    seen: ESeen,
    /// Every advance is a run of bounded advances of this many deadlines each
    /// (`usize::MAX`: one advance).
    batch: usize,
}

impl Sim {
    fn new() -> Self {
        let mut e = Engine::new(Fence::starting_at(1), 0, MAX_PENDING).with_max_claims(MAX_CLAIMS);
        for c in 0..CLIENTS {
            e.connect(c, addr());
        }
        Sim {
            e,
            m: EModel {
                reqs: BTreeMap::new(),
                holds: vec![Vec::new(); NAMES.len()],
                waiters: vec![VecDeque::new(); NAMES.len()],
                connected: vec![true; CLIENTS as usize],
                seq: 0,
                counters: Counters {
                    connections_total: u64::from(CLIENTS),
                    ..Counters::default()
                },
            },
            life: BTreeMap::new(),
            owner: Vec::new(),
            now: 0,
            last_token: 0,
            ctx: String::new(),
            seen: ESeen::default(),
            batch: usize::MAX,
        }
    }

    fn token(&mut self, token: u64) {
        let last = self.last_token;
        assert!(token > last, "{}: token {token} after {last}", self.ctx);
        self.last_token = token;
    }

    /// The holds on `l` the test knows of, from the engine's answers alone.
    fn known_holds(&self, l: usize) -> Vec<(Mode, u64)> {
        self.life
            .values()
            .filter_map(|v| match *v {
                Life::Held {
                    name, mode, token, ..
                } if name == l => Some((mode, token)),
                _ => None,
            })
            .collect()
    }

    /// Never an exclusive hold together with any other hold.
    fn check_exclusion(&self, l: usize) {
        let holds = self.known_holds(l);
        if holds.iter().any(|h| h.0 == Mode::Exclusive) {
            assert_eq!(
                holds.len(),
                1,
                "{}: conflicting holds on {l}: {holds:?}",
                self.ctx
            );
        }
    }

    /// Takes the engine's events and checks them against `want` (in any order across
    /// requests: each request gets at most one event per call) and against `life`.
    /// `exact_holders`: the holds the test knows of are exactly the lock's holds.
    fn events(&mut self, want: Vec<(Rid, Want)>, exact_holders: bool) {
        let got = events(&mut self.e);
        let ctx = self.ctx.clone();
        let mut got_m: Vec<(Rid, ClientId, Want)> = got
            .iter()
            .map(|ev| {
                let kind = match ev.kind {
                    EventKind::Granted {
                        holders, shared, ..
                    } => Want::Granted { holders, shared },
                    EventKind::Timeout => Want::Timeout,
                    EventKind::Expired { token } => Want::Expired { token },
                };
                (rid_of(&ev.tag), ev.client, kind)
            })
            .collect();
        got_m.sort_by_key(|g| g.0);
        let mut want_m: Vec<(Rid, ClientId, Want)> = want
            .iter()
            .map(|&(rid, w)| (rid, self.owner[rid as usize], w))
            .collect();
        want_m.sort_by_key(|w| w.0);
        assert_eq!(got_m, want_m, "{ctx}: events (request, client, kind)");
        for ev in &got {
            let rid = rid_of(&ev.tag);
            let client = ev.client as usize;
            assert!(
                self.m.connected[client],
                "{ctx}: {ev:?} for a closed client"
            );
            let next = match (ev.kind, self.life[&rid]) {
                (
                    EventKind::Granted {
                        token,
                        holders,
                        shared,
                    },
                    Life::Queued { deadline },
                ) => {
                    self.token(token);
                    let r = self.m.reqs.get_mut(&rid).unwrap();
                    r.token = Some(token);
                    let r = *r;
                    if let Mode::Shared { max } = r.mode {
                        assert!(shared && (max == 0 || holders <= max), "{ctx}: {ev:?}");
                    }
                    self.seen.grant_events += 1;
                    if deadline.is_some_and(|d| d <= self.now) {
                        self.seen.granted_at_own_deadline += 1;
                    }
                    let deadline = r.hold.map(|h| self.now + u64::from(h) + 1);
                    Life::Held {
                        name: r.name,
                        mode: r.mode,
                        token,
                        deadline,
                    }
                }
                (EventKind::Timeout, Life::Queued { deadline: Some(d) }) => {
                    assert!(self.now >= d, "{ctx}: {rid} timed out before {d}");
                    self.seen.timeouts += 1;
                    Life::Over
                }
                (
                    EventKind::Expired { token },
                    Life::Held {
                        token: t,
                        deadline: Some(d),
                        ..
                    },
                ) => {
                    assert_eq!(token, t, "{ctx}: expired token of {rid}");
                    assert!(self.now >= d, "{ctx}: hold {rid} expired before {d}");
                    self.seen.expired += 1;
                    Life::Over
                }
                (kind, life) => panic!("{ctx}: {kind:?} for request {rid} in state {life:?}"),
            };
            self.life.insert(rid, next);
            if let (Life::Held { name, .. }, EventKind::Granted { holders, .. }) = (next, ev.kind) {
                self.check_exclusion(name);
                if exact_holders {
                    let n = self.known_holds(name).len();
                    assert_eq!(holders as usize, n, "{ctx}: holders in {ev:?}");
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn acquire(
        &mut self,
        c: ClientId,
        l: usize,
        mode: Mode,
        wait: Option<u32>,
        hold: Option<u32>,
        queue: Option<u32>,
        detached: bool,
    ) {
        let rid = self.owner.len() as Rid;
        self.owner.push(c);
        let now = self.now;
        let (holds, waits) = self.m.pending(c);
        let waiting = self.m.waiters[l].len();
        let want = if (holds.len() + waits.len()) as u32 >= MAX_PENDING {
            Acquired::Limit
        } else if self.m.holds.iter().map(Vec::len).sum::<usize>()
            + self.m.waiters.iter().map(VecDeque::len).sum::<usize>()
            >= MAX_CLAIMS
        {
            Acquired::Full
        } else if waiting == 0 && self.m.compatible(l, mode) {
            let holders = self.m.holds[l].len() as u32 + 1;
            Acquired::Granted { token: 0, holders }
        } else if wait == Some(0) {
            Acquired::Timeout
        } else if queue.is_some_and(|q| waiting >= q as usize) {
            Acquired::QueueFull
        } else {
            Acquired::Queued
        };
        let req = AcquireRequest {
            name: NAMES[l],
            mode,
            wait,
            hold,
            queue,
        };
        let tag = tag_of(rid);
        let got = if detached {
            self.e.acquire_detached(c, &tag, &req, &tag, now)
        } else {
            self.e.acquire(c, &tag, &req, now)
        };
        let (got_m, token) = match got {
            Acquired::Granted { token, holders } => {
                (Acquired::Granted { token: 0, holders }, token)
            }
            other => (other, 0),
        };
        assert_eq!(got_m, want, "{}: acquire as request {rid}", self.ctx);
        let mut r = MReq {
            client: c,
            detached,
            name: l,
            mode,
            hold,
            token: None,
            timer: None,
        };
        let slot = match want {
            Acquired::Granted { .. } => 0,
            Acquired::Queued => 1,
            Acquired::Timeout => 2,
            Acquired::QueueFull => 3,
            Acquired::Limit => 4,
            Acquired::Full => 5,
        };
        self.seen.acquired[slot] += 1;
        match want {
            Acquired::Granted { .. } => {
                self.token(token);
                self.m.counters.grants_total += 1;
                r.token = Some(token);
                r.timer = self.m.timer(now, hold);
                if detached {
                    r.client = DETACHED;
                    self.seen.detached_granted += 1;
                }
                self.m.holds[l].push(rid);
                let deadline = hold.map(|h| now + u64::from(h) + 1);
                self.life.insert(
                    rid,
                    Life::Held {
                        name: l,
                        mode,
                        token,
                        deadline,
                    },
                );
                self.check_exclusion(l);
            }
            Acquired::Queued => {
                self.m.counters.waits_total += 1;
                r.timer = self.m.timer(now, wait);
                self.m.waiters[l].push_back(rid);
                let deadline = wait.map(|w| now + u64::from(w) + 1);
                self.life.insert(rid, Life::Queued { deadline });
            }
            Acquired::Timeout => self.m.counters.timeouts_total += 1,
            Acquired::Limit | Acquired::Full => self.m.counters.limit_refusals_total += 1,
            Acquired::QueueFull => {}
        }
        if r.timer.is_some() || r.token.is_some() || want == Acquired::Queued {
            self.m.reqs.insert(rid, r);
        }
        self.events(Vec::new(), true);
    }

    fn release(&mut self, c: ClientId, l: usize, token: Option<u64>) {
        let want = self.m.find_hold(c, l, token);
        let got = self.e.release(c, NAMES[l], token, self.now);
        assert_eq!(
            got,
            want.map(|_| ()),
            "{}: release, model says {want:?}",
            self.ctx
        );
        let mut out = Vec::new();
        if let Ok(rid) = want {
            self.seen.released += 1;
            if self.m.reqs[&rid].client == DETACHED && self.owner[rid as usize] != c {
                self.seen.detached_by_other += 1;
            }
            self.m.remove(rid, self.now, &mut out);
            self.life.insert(rid, Life::Over);
        }
        self.events(out, true);
    }

    fn extend(&mut self, c: ClientId, l: usize, token: u64, hold: u32) {
        let want = self.m.find_hold(c, l, Some(token));
        let got = self.e.extend(c, NAMES[l], token, hold, self.now);
        assert_eq!(
            got,
            want.map(|_| ()),
            "{}: extend, model says {want:?}",
            self.ctx
        );
        if let Ok(rid) = want {
            self.seen.extended += 1;
            if self.m.reqs[&rid].client == DETACHED && self.owner[rid as usize] != c {
                self.seen.detached_by_other += 1;
            }
            let timer = self.m.timer(self.now, Some(hold));
            let r = self.m.reqs.get_mut(&rid).unwrap();
            r.hold = Some(hold);
            r.timer = timer;
            let d = self.now + u64::from(hold) + 1;
            let Some(Life::Held { deadline, .. }) = self.life.get_mut(&rid) else {
                panic!("{}: extended {rid}, not held", self.ctx)
            };
            *deadline = Some(d);
        }
        self.events(Vec::new(), true);
    }

    fn cancel(&mut self, c: ClientId, rid: Rid) {
        let mine = self
            .m
            .reqs
            .get(&rid)
            .is_some_and(|r| r.client == c && r.token.is_none());
        let want: Vec<Rid> = if mine { vec![rid] } else { vec![] };
        let mut called = Vec::new();
        let n = self
            .e
            .cancel(c, &tag_of(rid), self.now, |t| called.push(rid_of(t)));
        assert_eq!(
            (n as usize, &called),
            (want.len(), &want),
            "{}: cancel",
            self.ctx
        );
        let mut out = Vec::new();
        for &w in &want {
            self.seen.cancelled += 1;
            self.m.remove(w, self.now, &mut out);
            self.life.insert(w, Life::Over);
        }
        self.events(out, true);
    }

    /// Ends every request of `c` in the test's own records, except its detached holds,
    /// which outlive it.
    fn forget(&mut self, c: ClientId) {
        for (rid, life) in self.life.iter_mut() {
            let detached = self.m.reqs.get(rid).is_some_and(|r| r.client == DETACHED);
            if detached && self.owner[*rid as usize] == c {
                self.seen.detached_orphaned += 1;
            }
            if self.owner[*rid as usize] == c && !detached {
                *life = Life::Over;
            }
        }
    }

    fn reset(&mut self, c: ClientId) {
        let mut out = Vec::new();
        let (released, waits) = self.m.reset(c, self.now, &mut out);
        let mut called = Vec::new();
        let got = self.e.reset(c, self.now, |t| called.push(rid_of(t)));
        let want = (released, waits.len() as u32);
        assert_eq!((got, &called), (want, &waits), "{}: reset", self.ctx);
        self.forget(c);
        self.events(out, false);
    }

    fn disconnect(&mut self, c: ClientId) {
        let mut out = Vec::new();
        let (released, _) = self.m.reset(c, self.now, &mut out);
        self.m.counters.released_on_disconnect_total += u64::from(released);
        self.m.connected[c as usize] = false;
        let got = self.e.disconnect(c, self.now);
        assert_eq!(got, released, "{}: disconnect", self.ctx);
        self.forget(c);
        self.events(out, false);
    }

    fn connect(&mut self, c: ClientId) {
        self.e.connect(c, addr());
        self.m.connected[c as usize] = true;
        self.m.counters.connections_total += 1;
    }

    fn advance(&mut self, dt: u64) {
        self.now += dt;
        let (mut out, mut silent) = (Vec::new(), Vec::new());
        self.m.advance(self.now, &mut out, &mut silent);
        if self.batch == usize::MAX {
            self.e.advance(self.now);
        } else {
            while self.e.advance_bounded(self.now, self.batch) == Advance::More {
                assert!(self.e.due(self.now), "{}: More but not due", self.ctx);
                self.seen.batches_left_due += 1;
            }
        }
        let silent_count = silent.len();
        for rid in silent {
            let Some(Life::Held {
                deadline: Some(d), ..
            }) = self.life.get(&rid).copied()
            else {
                panic!(
                    "{}: detached {rid} expired, not held with a deadline",
                    self.ctx
                )
            };
            assert!(
                self.now >= d,
                "{}: detached {rid} expired before {d}",
                self.ctx
            );
            self.seen.detached_expired += 1;
            self.life.insert(rid, Life::Over);
        }
        // Silent expiries have no place in the order of events: the model's holders
        // (in `out`) are then the only check of each grant's holders.
        let exact = silent_count == 0;
        self.events(out, exact);
        // Nothing due is left for a later advance.
        for (rid, life) in &self.life {
            let d = match *life {
                Life::Queued { deadline } | Life::Held { deadline, .. } => deadline,
                Life::Over => None,
            };
            assert!(
                d.is_none_or(|d| d > self.now),
                "{}: {rid} ({life:?}) did not fire by {}",
                self.ctx,
                self.now
            );
        }
    }

    /// Everything observable, against the model.
    fn compare(&self) {
        let (e, m, ctx) = (&self.e, &self.m, &self.ctx);
        // The spare tag buffers: bounded, all tag-sized, and none of them a live claim's.
        assert!(e.spare_tags.len() <= SPARE_TAGS, "{ctx}: spare tags");
        assert!(e.spare_tags.iter().all(|b| b.len() == TAG_BUFFER), "{ctx}");
        let live: HashSet<*const u8> = (0..e.table.claim_slots() as ClaimId)
            .filter(|&c| e.table.contains(c))
            .map(|c| e.table.claim(c).data.tag.as_ptr())
            .collect();
        assert!(
            e.spare_tags.iter().all(|b| !live.contains(&b.as_ptr())),
            "{ctx}: a spare tag buffer is a live claim's"
        );
        let (mut locks, mut holds, mut waits) = (0, 0, 0);
        let mut want_locks = Vec::new();
        for (l, name) in NAMES.iter().enumerate() {
            let want_holds: Vec<(u64, ClientId)> = m.holds[l]
                .iter()
                .map(|h| (m.reqs[h].token.unwrap(), m.reqs[h].client))
                .collect();
            let want_waiters: Vec<ClientId> =
                m.waiters[l].iter().map(|w| m.reqs[w].client).collect();
            assert_eq!(
                e.holds_on(name).collect::<Vec<_>>(),
                want_holds,
                "{ctx}: holds on {l}"
            );
            assert_eq!(
                e.waiters_on(name).collect::<Vec<_>>(),
                want_waiters,
                "{ctx}: waiters on {l}"
            );
            holds += want_holds.len();
            waits += want_waiters.len();
            let detached: Vec<&Rid> = m.holds[l]
                .iter()
                .filter(|h| m.reqs[h].client == DETACHED)
                .collect();
            assert_eq!(
                e.detached_count_on(name) as usize,
                detached.len(),
                "{ctx}: detached on {l}"
            );
            let want_view = detached.first().map(|&&h| {
                let r = &m.reqs[&h];
                (r.token.unwrap(), r.timer.map(|t| t.0), tag_of(h).to_vec())
            });
            let got_view = e
                .detached_on(name)
                .map(|d| (d.token, d.deadline, d.value.to_vec()));
            assert_eq!(got_view, want_view, "{ctx}: detached_on {l}");
            let got_both = e.inspect_detached(name).map(|(info, d)| {
                let view = d.map(|d| (d.token, d.deadline, d.value.to_vec()));
                (info, view)
            });
            if want_holds.is_empty() {
                assert!(want_waiters.is_empty(), "{ctx}: model stalls on {l}");
                assert_eq!(e.inspect(name), None, "{ctx}: inspect {l}");
                assert_eq!(got_both, None, "{ctx}: inspect_detached {l}");
                continue;
            }
            locks += 1;
            let exclusive = m.reqs[&m.holds[l][0]].mode == Mode::Exclusive;
            let info = LockInfo {
                exclusive,
                holders: want_holds.len() as u32,
                waiters: want_waiters.len() as u32,
            };
            let (token, client) = want_holds[0];
            let holder = exclusive.then_some(Holder { token, client });
            assert_eq!(
                got_both.as_ref().map(|(i, v)| (i, v)),
                Some((&info, &want_view)),
                "{ctx}: inspect_detached {l}"
            );
            let got = e.inspect(name);
            assert_eq!(got.as_ref(), Some(&(info, holder)), "{ctx}: inspect {l}");
            want_locks.push((name.to_vec(), (exclusive, want_holds.len() as u32)));
        }
        let mut got_locks: Vec<(Vec<u8>, (bool, u32))> = e
            .locks()
            .map(|(n, i)| (n.to_vec(), (i.exclusive, i.holders)))
            .collect();
        got_locks.sort();
        assert_eq!(got_locks, want_locks, "{ctx}: locks()");
        let connected = m.connected.iter().filter(|&&c| c).count();
        assert_eq!(
            e.gauges(),
            (connected, locks, holds, waits),
            "{ctx}: gauges"
        );
        assert_eq!(e.counters(), m.counters, "{ctx}: counters");
        let want_detached = m.reqs.values().filter(|r| r.client == DETACHED).count();
        assert_eq!(e.detached_count(), want_detached, "{ctx}: detached_count");
        let clients: Vec<(ClientId, (u32, u32))> = e.clients().map(|(c, _, n)| (c, n)).collect();
        let want_clients: Vec<(ClientId, (u32, u32))> = (0..CLIENTS)
            .filter(|&c| m.connected[c as usize])
            .map(|c| {
                let (h, w) = m.pending(c);
                (c, (h.len() as u32, w.len() as u32))
            })
            .collect();
        assert_eq!(clients, want_clients, "{ctx}: clients()");
        for c in (0..CLIENTS).filter(|&c| m.connected[c as usize]) {
            let timed = m
                .reqs
                .values()
                .filter(|r| r.client == c && r.token.is_none() && r.timer.is_some())
                .count();
            assert_eq!(e.timed_waits(c) as usize, timed, "{ctx}: timed_waits({c})");
        }
        let first = m.reqs.values().filter_map(|r| r.timer).map(|t| t.0).min();
        match (e.next_wake(), first) {
            (None, None) => {}
            (Some(t), Some(d)) => assert!(t <= d, "{ctx}: next_wake {t} after deadline {d}"),
            (got, _) => panic!("{ctx}: next_wake {got:?}, first deadline {first:?}"),
        }
    }
}

fn pick<T: Copy>(rng: &mut Rng, v: &[T]) -> Option<T> {
    (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize])
}

/// Random operations against [`EModel`]. Unless `self_queue`, a client never has two
/// waits on one lock at once. Advances fire deadlines in batches of `batch` (see
/// [`Sim::batch`]): the model always fires them all at once.
fn engine_model(seeds: std::ops::Range<u64>, ops: usize, self_queue: bool, batch: usize) {
    let mut seen = ESeen::default();
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let mut sim = Sim::new();
        sim.batch = batch;
        for step in 0..ops {
            let c = rng.below(u64::from(CLIENTS)) as ClientId;
            let l = rng.below(NAMES.len() as u64) as usize;
            let r = rng.below(100);
            sim.ctx = format!(
                "seed {seed} step {step} now {} client {c} name {l}",
                sim.now
            );
            if !sim.m.connected[c as usize] {
                sim.ctx += " connect";
                sim.connect(c);
                sim.compare();
                continue;
            }
            match r {
                0..=39 => {
                    let mode = if rng.chance(40) {
                        Mode::Exclusive
                    } else {
                        Mode::Shared {
                            max: rng.below(4) as u32,
                        }
                    };
                    let mut wait = match rng.below(10) {
                        0 | 1 => None,
                        2 => Some(0),
                        _ => Some(rng.below(50) as u32),
                    };
                    let hold = (!rng.chance(30)).then(|| rng.below(50) as u32);
                    let queue = rng.chance(25).then(|| rng.below(3) as u32);
                    let detached = rng.chance(20);
                    let waits_here = sim.m.waiters[l].iter().any(|w| sim.m.reqs[w].client == c);
                    if waits_here && !self_queue {
                        wait = Some(0); // a try: it cannot queue
                    }
                    sim.ctx += &format!(
                        " acquire {mode:?} wait {wait:?} hold {hold:?} queue {queue:?} \
                         detached {detached}"
                    );
                    sim.acquire(c, l, mode, wait, hold, queue, detached);
                }
                40..=54 => {
                    let held: Vec<Rid> = sim.m.holds.iter().flatten().copied().collect();
                    let (c, l, token) = match pick(&mut rng, &held) {
                        Some(h) if rng.chance(75) => {
                            let r = sim.m.reqs[&h];
                            let by = if r.client == DETACHED { c } else { r.client };
                            (by, r.name, rng.chance(60).then(|| r.token.unwrap()))
                        }
                        _ => (c, l, rng.chance(50).then(|| rng.below(sim.last_token + 2))),
                    };
                    sim.ctx += &format!(" release client {c} name {l} token {token:?}");
                    sim.release(c, l, token);
                }
                55..=61 => {
                    let held: Vec<Rid> = sim.m.holds.iter().flatten().copied().collect();
                    let (c, l, token) = match pick(&mut rng, &held) {
                        Some(h) if rng.chance(80) => {
                            let r = sim.m.reqs[&h];
                            let by = if r.client == DETACHED { c } else { r.client };
                            (by, r.name, r.token.unwrap())
                        }
                        _ => (c, l, rng.below(sim.last_token + 2)),
                    };
                    let hold = rng.below(50) as u32;
                    sim.ctx += &format!(" extend client {c} name {l} token {token} hold {hold}");
                    sim.extend(c, l, token, hold);
                }
                62..=68 => {
                    let waiting: Vec<Rid> = sim.m.waiters.iter().flatten().copied().collect();
                    let (c, rid) = match pick(&mut rng, &waiting) {
                        Some(w) if rng.chance(75) => (sim.m.reqs[&w].client, w),
                        _ => (c, rng.below(sim.owner.len() as u64 + 1)),
                    };
                    sim.ctx += &format!(" cancel client {c} request {rid}");
                    sim.cancel(c, rid);
                }
                69..=70 => {
                    sim.ctx += " reset";
                    sim.reset(c);
                }
                71..=72 => {
                    sim.ctx += " disconnect";
                    sim.disconnect(c);
                }
                73..=96 => {
                    let dt = rng.below(31);
                    sim.ctx += &format!(" advance {dt}");
                    sim.advance(dt);
                }
                _ => {
                    // Time passes without an advance (the poll loop was busy).
                    sim.now += rng.below(31);
                }
            }
            sim.compare();
        }
        // Detached holds outlive every connection: after the other clients are gone
        // (their disconnects may grant detached waiters), client 0 releases them by
        // token, then leaves too.
        if !sim.m.connected[0] {
            sim.connect(0);
        }
        for c in 1..CLIENTS {
            if sim.m.connected[c as usize] {
                sim.ctx = format!("seed {seed} final disconnect of {c}");
                sim.disconnect(c);
                sim.compare();
            }
        }
        // (A release may grant a waiting detached request: take the first each time.)
        while let Some((&rid, &r)) = sim.m.reqs.iter().find(|(_, r)| r.client == DETACHED) {
            sim.ctx = format!("seed {seed} final release of detached {rid}");
            sim.release(0, r.name, r.token);
            sim.compare();
        }
        sim.ctx = format!("seed {seed} final disconnect of 0");
        sim.disconnect(0);
        sim.compare();
        let open: Vec<_> = sim.life.iter().filter(|(_, l)| **l != Life::Over).collect();
        assert!(
            open.is_empty(),
            "seed {seed}: requests without an end: {open:?}"
        );
        assert_eq!(sim.e.gauges(), (0, 0, 0, 0), "seed {seed}");
        let s = &sim.seen;
        for (i, n) in s.acquired.iter().enumerate() {
            seen.acquired[i] += n;
        }
        seen.grant_events += s.grant_events;
        seen.timeouts += s.timeouts;
        seen.expired += s.expired;
        seen.cancelled += s.cancelled;
        seen.extended += s.extended;
        seen.released += s.released;
        seen.granted_at_own_deadline += s.granted_at_own_deadline;
        seen.batches_left_due += s.batches_left_due;
        seen.detached_granted += s.detached_granted;
        seen.detached_by_other += s.detached_by_other;
        seen.detached_expired += s.detached_expired;
        seen.detached_orphaned += s.detached_orphaned;
    }
    eprintln!("engine model: {seen:?}");
    assert!(seen.acquired.iter().all(|&n| n > 50), "{seen:?}");
    let s = &seen;
    let counts = [
        s.grant_events,
        s.timeouts,
        s.expired,
        s.cancelled,
        s.extended,
        s.released,
        s.detached_granted,
        s.detached_by_other,
        s.detached_expired,
        s.detached_orphaned,
    ];
    assert!(counts.iter().all(|&n| n > 100), "{seen:?}");
    assert!(seen.granted_at_own_deadline > 0, "{seen:?}");
    assert_eq!(seen.batches_left_due > 100, batch < 3, "{seen:?}");
}

#[test]
fn model() {
    engine_model(0..20, 2000, false, usize::MAX);
}

/// The same with clients queueing twice on one lock, the case `reset` and `disconnect`
/// withdraw latest first (see `reset_cancels_a_clients_second_wait_on_the_same_lock`).
#[test]
fn model_with_clients_queueing_twice_on_one_lock() {
    engine_model(0..20, 2000, true, usize::MAX);
}

/// Deadlines fired in bounded batches (the poll loop's, between connections' turns)
/// have exactly the effect of one advance: the same events in the same order.
#[test]
fn model_with_deadlines_in_bounded_batches() {
    engine_model(100..120, 2000, false, 1);
    engine_model(120..140, 2000, true, 2);
}
