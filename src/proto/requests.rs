//! The per-connection map `request key -> waiting | held | gone` of the codecs whose
//! clients name their requests (locker's sequence numbers, live-mutex's uuids), with
//! one bounded-size policy: see [`RequestMap`].
//!
//! # Invariants
//! - A `Waiting` or `Held` entry is a claim the engine had when the codec last heard of
//!   it; one taken away without an event is found at its next use or rebuild.
//! - The map holds at most twice the connection's live claims after its last rebuild,
//!   plus the remembered gone requests (at most `remember_gone`).

use crate::engine::{ClientId, Engine};
use hashbrown::{Equivalent, HashMap};
use std::collections::VecDeque;
use std::hash::Hash;

/// Where one of a connection's requests is, as its [`RequestMap`] knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Queued in the engine.
    Waiting,
    /// Granted, with this fencing token.
    Held {
        /// The hold's token.
        token: u64,
    },
    /// It was held, and the hold ended without the client asking: it ran out, or was
    /// force-released. Only kept by maps that remember gone requests.
    Gone,
}

#[derive(Debug)]
struct Entry {
    /// The engine lock name.
    name: Box<[u8]>,
    status: Status,
    /// For `Gone`: its number in the order of going (see `RequestMap::gone`).
    gone_at: u64,
}

/// The map is rebuilt from the engine when it reaches this size (then twice its size).
const REBUILD_MIN: usize = 1024;

/// One connection's requests by the client's key for them, following the engine.
///
/// The codec inserts a request when the engine queues or grants it, and reports the
/// engine's events for it ([`RequestMap::granted`], [`RequestMap::timed_out`],
/// [`RequestMap::expired`]). A hold taken away without an event (a force release) is
/// found at the request's next use ([`RequestMap::status`]) or at the next rebuild.
///
/// **Size.** Whenever an insert brings the map to twice its size after the last rebuild
/// (at least `REBUILD_MIN` = 1024 entries), it is rebuilt from the engine's claims of the
/// connection, so it holds the connection's live claims plus the remembered gone
/// requests, and costs amortised O(1) per request.
///
/// **Gone requests.** A map made with `remember_gone = n > 0` keeps the last `n` requests
/// whose hold ended without the client asking, as [`Status::Gone`], until the client
/// uses them ([`RequestMap::take`] or a new request with the same key) or `n` later
/// holds have gone; rebuilds keep them. With `remember_gone = 0` such requests are
/// simply forgotten. Which requests are known therefore depends only on what happened
/// to this connection's requests, never on when a rebuild ran.
#[derive(Debug)]
pub struct RequestMap<K> {
    entries: HashMap<K, Entry>,
    /// Keys in the order their holds went, with their `gone_at`; an element whose entry
    /// is no longer that `Gone` entry is stale and skipped.
    gone: VecDeque<(K, u64)>,
    gone_count: u64,
    remember_gone: usize,
    rebuild_at: usize,
    /// The key of a request from its engine tag (`None`: not one of this map's).
    key_of: fn(&[u8]) -> Option<K>,
    /// Rebuilds record holds only: the codec finds waits in the engine's index (and
    /// never inserts them), so a waiting request costs no entry.
    holds_only: bool,
}

impl<K: Hash + Eq + Clone> RequestMap<K> {
    /// An empty map; `key_of` recovers a request's key from its engine tag.
    pub fn new(key_of: fn(&[u8]) -> Option<K>, remember_gone: usize) -> Self {
        RequestMap {
            entries: HashMap::new(),
            gone: VecDeque::new(),
            gone_count: 0,
            remember_gone,
            rebuild_at: REBUILD_MIN,
            key_of,
            holds_only: false,
        }
    }

    /// A map whose codec keeps only held (and gone) requests in it and asks the engine
    /// about waits ([`crate::engine::Engine::is_waiting`]).
    pub fn holds_only(mut self) -> Self {
        self.holds_only = true;
        self
    }

    /// Entries, gone ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (the connection is closing).
    pub fn clear(&mut self) {
        let holds_only = self.holds_only;
        *self = RequestMap::new(self.key_of, self.remember_gone);
        self.holds_only = holds_only;
    }

    /// Records request `key` on engine name `name` (replacing any entry for `key`), and
    /// rebuilds the map when it has grown enough.
    pub fn insert(
        &mut self,
        key: K,
        name: &[u8],
        status: Status,
        engine: &Engine,
        client: ClientId,
    ) {
        let entry = Entry {
            name: Box::from(name),
            status,
            gone_at: 0,
        };
        self.entries.insert(key, entry);
        if self.entries.len() >= self.rebuild_at {
            self.rebuild(engine, client);
        }
    }

    /// The status of request `key`, checking that a hold is still the engine's: one
    /// taken away without an event becomes gone (or is forgotten).
    pub fn status<Q>(&mut self, key: &Q, engine: &Engine, client: ClientId) -> Option<Status>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (k, e) = self.entries.get_key_value(key)?;
        if let Status::Held { token } = e.status {
            let held = engine
                .holds_on(&e.name)
                .any(|(t, c)| t == token && c == client);
            if !held {
                let k = k.clone();
                self.go(k);
                return self.entries.get(key).map(|e| e.status);
            }
        }
        Some(e.status)
    }

    /// The engine granted waiting request `key`.
    pub fn granted<Q>(&mut self, key: &Q, token: u64)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if let Some(e) = self.entries.get_mut(key) {
            e.status = Status::Held { token };
        }
    }

    /// Request `key`'s wait ran out.
    pub fn timed_out<Q>(&mut self, key: &Q)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.entries.remove(key);
    }

    /// Request `key`'s hold with `token` ran out.
    pub fn expired<Q>(&mut self, key: &Q, token: u64)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if let Some((k, e)) = self.entries.get_key_value(key) {
            if e.status == (Status::Held { token }) {
                let k = k.clone();
                self.go(k);
            }
        }
    }

    /// Removes request `key`: its engine name and last known status.
    pub fn take<Q>(&mut self, key: &Q) -> Option<(Box<[u8]>, Status)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.entries.remove(key).map(|e| (e.name, e.status))
    }

    /// Marks `key`'s hold gone: remembered, or forgotten when the map remembers none.
    fn go(&mut self, key: K) {
        if self.remember_gone == 0 {
            self.entries.remove(&key);
            return;
        }
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        self.gone_count += 1;
        e.status = Status::Gone;
        e.gone_at = self.gone_count;
        self.gone.push_back((key, self.gone_count));
        while self.gone.len() > self.remember_gone {
            let Some((old, at)) = self.gone.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&old)
                .is_some_and(|e| e.status == Status::Gone && e.gone_at == at)
            {
                self.entries.remove(&old);
            }
        }
    }

    /// Rebuilds the map from the engine's claims of `client`, keeping remembered gone
    /// requests; holds that vanished without an event become gone.
    fn rebuild(&mut self, engine: &Engine, client: ClientId) {
        let mut fresh: HashMap<K, Entry> = HashMap::with_capacity(self.entries.len());
        let waits = engine.waits_of(client).filter(|_| !self.holds_only);
        for v in engine.holds_of(client).chain(waits) {
            let Some(key) = (self.key_of)(v.tag) else {
                continue;
            };
            let status = match v.token {
                Some(token) => Status::Held { token },
                None => Status::Waiting,
            };
            let entry = Entry {
                name: Box::from(v.name),
                status,
                gone_at: 0,
            };
            fresh.insert(key, entry);
        }
        let old = std::mem::replace(&mut self.entries, fresh);
        let mut vanished = Vec::new();
        for (key, entry) in old {
            if self.entries.contains_key(&key) {
                continue;
            }
            match entry.status {
                Status::Gone => {
                    self.entries.insert(key, entry);
                }
                Status::Held { .. } => {
                    self.entries.insert(key.clone(), entry);
                    vanished.push(key);
                }
                Status::Waiting => {}
            }
        }
        for key in vanished {
            self.go(key);
        }
        self.rebuild_at = REBUILD_MIN.max(2 * self.entries.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AcquireRequest, Acquired, Mode};
    use crate::fence::Fence;

    fn addr() -> std::net::SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    fn key_of(tag: &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(tag.try_into().ok()?))
    }

    /// Locks `name` for `client` with tag `key` and records it in `map`.
    fn lock(
        e: &mut Engine,
        map: &mut RequestMap<u32>,
        client: u32,
        key: u32,
        name: &str,
        hold: Option<u32>,
    ) -> Status {
        let req = AcquireRequest {
            name: name.as_bytes(),
            mode: Mode::Exclusive,
            wait: None,
            hold,
            queue: None,
        };
        let status = match e.acquire(client, &key.to_le_bytes(), &req, 0) {
            Acquired::Granted { token, .. } => Status::Held { token },
            Acquired::Queued => Status::Waiting,
            other => panic!("{other:?}"),
        };
        map.insert(key, name.as_bytes(), status, e, client);
        status
    }

    #[test]
    fn gone_requests_survive_rebuilds_within_the_bound() {
        let mut e = Engine::new(Fence::starting_at(1), 0, 100_000);
        e.connect(1, addr());
        let mut map = RequestMap::new(key_of, 2);
        // Three holds that run out one after the other.
        for k in 0..3 {
            lock(&mut e, &mut map, 1, k, &format!("t{k}"), Some(5 + k));
        }
        let mut events = Vec::new();
        for now in 0..10 {
            e.advance(now);
            e.take_events(&mut events);
            for ev in events.drain(..) {
                if let crate::engine::EventKind::Expired { token } = ev.kind {
                    map.expired(&key_of(&ev.tag).unwrap(), token);
                }
            }
        }
        // Only the last two are remembered.
        assert_eq!(map.status(&0, &e, 1), None);
        assert_eq!(map.status(&1, &e, 1), Some(Status::Gone));
        assert_eq!(map.status(&2, &e, 1), Some(Status::Gone));
        // Enough live requests to rebuild several times: the gone ones stay.
        for k in 100..3000 {
            lock(&mut e, &mut map, 1, k, &format!("l{k}"), None);
        }
        assert!(map.len() < 2 * 2900 + 2, "rebuilt: {}", map.len());
        assert_eq!(map.status(&1, &e, 1), Some(Status::Gone));
        assert_eq!(map.take(&2).map(|(_, s)| s), Some(Status::Gone));
        assert_eq!(map.take(&2), None, "used once");
        assert!(matches!(map.status(&100, &e, 1), Some(Status::Held { .. })));
    }

    #[test]
    fn a_hold_forced_away_is_found_at_its_next_use_or_rebuild() {
        let mut e = Engine::new(Fence::starting_at(1), 0, 100_000);
        e.connect_in(1, addr(), 7);
        for remember in [0, 10] {
            let mut map = RequestMap::new(key_of, remember);
            let gone = (remember > 0).then_some(Status::Gone);
            lock(&mut e, &mut map, 1, 1, "f1", None);
            lock(&mut e, &mut map, 1, 2, "f2", None);
            assert_eq!(e.force_release(b"f1", 7, 0), 1);
            assert_eq!(e.force_release(b"f2", 7, 0), 1);
            assert_eq!(map.status(&1, &e, 1), gone);
            // f2 is found by the rebuild.
            for k in 10..(10 + REBUILD_MIN as u32) {
                lock(&mut e, &mut map, 1, k, &format!("n{k}-{remember}"), None);
            }
            assert_eq!(map.take(&2).map(|(_, s)| s), gone);
            e.reset(1, 0, |_| {});
        }
    }

    #[test]
    fn events_move_requests() {
        let mut e = Engine::new(Fence::starting_at(1), 0, 100_000);
        e.connect(1, addr());
        e.connect(2, addr());
        let mut map = RequestMap::new(key_of, 4);
        let Status::Held { token } = lock(&mut e, &mut map, 2, 9, "q", None) else {
            panic!()
        };
        assert_eq!(lock(&mut e, &mut map, 1, 1, "q", None), Status::Waiting);
        e.release(2, b"q", Some(token), 0).unwrap();
        let mut events = Vec::new();
        e.take_events(&mut events);
        let crate::engine::EventKind::Granted { token, .. } = events[0].kind else {
            panic!("{events:?}")
        };
        map.granted(&1, token);
        assert_eq!(map.status(&1, &e, 1), Some(Status::Held { token }));
        map.expired(&1, token + 1);
        assert_eq!(map.status(&1, &e, 1), Some(Status::Held { token }));
        map.timed_out(&1);
        assert_eq!(map.status(&1, &e, 1), None);
        map.clear();
        assert!(map.is_empty());
    }
}
