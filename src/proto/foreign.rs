//! Helpers shared by the foreign-protocol codecs ([`super::lockd`], [`super::officer`],
//! [`super::locker`], [`super::livemutex`]).
//!
//! # Name escaping
//! Engine lock names are 1 to [`MAX_NAME`] bytes without ASCII controls, space or DEL
//! (the native grammar); foreign names are any bytes, possibly empty. [`engine_name`]
//! writes each byte `0x00..=0x20`, `0x7F` and `%` as `%XX` (uppercase hex) and leaves
//! every other byte alone; the empty name becomes `%`. So `job 1` is `job%201` in native
//! `LIST` and `50%` is `50%25`, and an ordinary name is itself, which is what makes a
//! lockd `g x`, an officer `lock x`, a locker `x`, a live-mutex key `x` and a native
//! `LOCK x` the same lock. The mapping is injective; [`wire_name`] inverts it and
//! rejects every string that is no image. A name whose image is longer than the limit
//! has no engine name (each codec says what it answers then).
//!
//! Client names use the same escape with the native client-name limit
//! ([`MAX_CLIENT_NAME`], see [`client_name`]), so a name set through a foreign protocol
//! is always a valid native client name.
//!
//! # JSON
//! [`push_json_str`] is the one way the JSON codecs write a string: bytes that are not
//! UTF-8 (engine names set by other protocols) are replaced by U+FFFD.
//!
//! # Request maps
//! [`RequestMap`] is the per-connection map `request key -> waiting | held | gone` of
//! the codecs whose clients name their requests (locker's sequence numbers,
//! live-mutex's uuids), with one bounded-size policy; see its doc.

use super::native::{MAX_CLIENT_NAME, MAX_NAME};
use super::push_addr;
use crate::engine::{ClientId, Engine};
use hashbrown::{Equivalent, HashMap};
use std::collections::VecDeque;
use std::hash::Hash;

/// An escaped name built on the stack: at most [`MAX_NAME`] bytes.
#[derive(Clone, Copy)]
pub struct EngineName {
    buf: [u8; MAX_NAME],
    len: usize,
}

impl EngineName {
    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Debug for EngineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// True for a byte the escape writes as `%XX`.
fn needs_escape(b: u8) -> bool {
    b <= b' ' || b == 0x7f || b == b'%'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `prefix` followed by the escaped `name`, or `None` when that is longer than `max`
/// (at most [`MAX_NAME`]) bytes. `prefix` must itself be a valid name part.
fn escape(prefix: &[u8], name: &[u8], max: usize) -> Option<EngineName> {
    debug_assert!(max <= MAX_NAME);
    let mut n = EngineName {
        buf: [0; MAX_NAME],
        len: 0,
    };
    let mut push = |b: u8| {
        if n.len == max {
            return None;
        }
        n.buf[n.len] = b;
        n.len += 1;
        Some(())
    };
    for &b in prefix {
        push(b)?;
    }
    if name.is_empty() {
        push(b'%')?;
    }
    for &b in name {
        if needs_escape(b) {
            push(b'%')?;
            push(HEX[usize::from(b >> 4)])?;
            push(HEX[usize::from(b & 15)])?;
        } else {
            push(b)?;
        }
    }
    Some(n)
}

/// The engine lock name of a foreign `name` under `prefix` (see the module doc), or
/// `None` when it is longer than [`MAX_NAME`] bytes.
pub fn engine_name(prefix: &[u8], name: &[u8]) -> Option<EngineName> {
    escape(prefix, name, MAX_NAME)
}

/// The engine client name of a foreign client name: escaped like a lock name, so it is
/// a valid native client name; `None` when `name` is empty or its image is longer than
/// [`MAX_CLIENT_NAME`] bytes.
pub fn client_name(name: &[u8]) -> Option<EngineName> {
    if name.is_empty() {
        return None;
    }
    escape(b"", name, MAX_CLIENT_NAME)
}

/// The foreign name whose escaped form is `escaped`, if there is one.
pub fn wire_name(escaped: &[u8]) -> Option<Vec<u8>> {
    if escaped == b"%" {
        return Some(Vec::new());
    }
    let hex = |b: u8| HEX.iter().position(|&h| h == b).map(|v| v as u8);
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        let b = escaped[i];
        if b == b'%' {
            let hi = hex(*escaped.get(i + 1)?)?;
            let lo = hex(*escaped.get(i + 2)?)?;
            let v = hi << 4 | lo;
            if !needs_escape(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if needs_escape(b) {
            return None;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

/// The foreign name of engine name `escaped` when it is one and is UTF-8: the names
/// the JSON protocols (officer, live-mutex) can list.
pub fn utf8_name(escaped: &[u8]) -> Option<String> {
    String::from_utf8(wire_name(escaped)?).ok()
}

/// Holds on engine name `name` (0 when it is free).
pub fn holders(engine: &Engine, name: &[u8]) -> u32 {
    engine.inspect(name).map_or(0, |(info, _)| info.holders)
}

/// Requests waiting on engine name `name`.
pub fn waiters(engine: &Engine, name: &[u8]) -> u32 {
    engine.inspect(name).map_or(0, |(info, _)| info.waiters)
}

/// Appends `s` as a JSON string; bytes that are not UTF-8 become U+FFFD.
pub fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    let s = String::from_utf8_lossy(s);
    serde_json::to_writer(&mut *out, &*s).expect("writing JSON to a Vec cannot fail");
}

/// Appends `"ip:port"` of `client` (`""` if it is gone).
pub fn push_json_addr(out: &mut Vec<u8>, engine: &Engine, client: ClientId) {
    out.push(b'"');
    push_addr(out, engine, client);
    out.push(b'"');
}

/// Appends a JSON array, each item written by `item`.
pub fn push_json_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, v) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, v);
    }
    out.push(b']');
}

/// Appends a JSON object of `(key, value)` entries in the order given, each value
/// written by `value`.
pub fn push_json_object<K: AsRef<[u8]>, T>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (K, T)>,
    mut value: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, k.as_ref());
        out.push(b':');
        value(out, v);
    }
    out.push(b'}');
}

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
        }
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
        *self = RequestMap::new(self.key_of, self.remember_gone);
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
        let claims = engine.holds_of(client).chain(engine.waits_of(client));
        for v in claims {
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

/// Foreign names that exercise the escape (for the codecs' tests).
#[cfg(test)]
pub(crate) const SAMPLE_NAMES: [&[u8]; 11] = [
    b"x",
    b"",
    b"a b",
    b"50%",
    b"%",
    b"%shared:x",
    b"shared:x",
    b"tab\there",
    b"\x7f\x00",
    "caf\u{e9}".as_bytes(),
    b"%41",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AcquireRequest, Acquired};
    use crate::fence::Fence;
    use crate::proto::native::valid_name;
    use crate::table::Mode;

    #[test]
    fn escaping_round_trips_and_keeps_plain_names() {
        for name in SAMPLE_NAMES {
            let e = engine_name(b"", name).unwrap();
            assert!(valid_name(e.as_bytes(), MAX_NAME), "{e:?} is no valid name");
            assert_eq!(wire_name(e.as_bytes()).as_deref(), Some(name), "{e:?}");
            let p = engine_name(b"%p:", name).unwrap();
            assert_eq!(&p.as_bytes()[..3], b"%p:");
            assert_eq!(&p.as_bytes()[3..], e.as_bytes());
        }
        assert_eq!(
            engine_name(b"", b"plain.name:1").unwrap().as_bytes(),
            b"plain.name:1"
        );
        assert_eq!(engine_name(b"", b"a b%").unwrap().as_bytes(), b"a%20b%25");
        assert_eq!(engine_name(b"", b"").unwrap().as_bytes(), b"%");
    }

    #[test]
    fn only_images_decode() {
        for bad in ["%41", "50%", "%2", "%g0", "a%20%", "%%", "%20x%", "a b", ""] {
            assert_eq!(wire_name(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn length_limits() {
        assert!(engine_name(b"", &[b'a'; MAX_NAME]).is_some());
        assert!(engine_name(b"", &[b'a'; MAX_NAME + 1]).is_none());
        assert!(engine_name(b"", &[b' '; MAX_NAME / 3]).is_some());
        assert!(engine_name(b"", &[b' '; MAX_NAME / 3 + 1]).is_none());
        assert!(engine_name(b"ab", &[b'a'; MAX_NAME - 2]).is_some());
        assert!(engine_name(b"ab", &[b'a'; MAX_NAME - 1]).is_none());
    }

    #[test]
    fn client_names_are_valid_native_client_names() {
        for name in [
            &b"the boss"[..],
            b"cr\rin",
            b"\x1b[31m",
            b"\x7f",
            b"%",
            "caf\u{e9}".as_bytes(),
            &[b'n'; MAX_CLIENT_NAME],
            &[b' '; MAX_CLIENT_NAME / 3],
        ] {
            let c = client_name(name).unwrap();
            assert!(valid_name(c.as_bytes(), MAX_CLIENT_NAME), "{c:?}");
            assert_eq!(wire_name(c.as_bytes()).as_deref(), Some(name));
        }
        assert!(client_name(b"").is_none());
        assert!(client_name(&[b'n'; MAX_CLIENT_NAME + 1]).is_none());
        assert!(client_name(&[b' '; MAX_CLIENT_NAME / 3 + 1]).is_none());
        assert!(client_name(&[b'n'; 300]).is_none());
    }

    #[test]
    fn json_writers() {
        let mut out = Vec::new();
        push_json_str(&mut out, b"a\"b\n\xff");
        assert_eq!(out, "\"a\\\"b\\n\u{fffd}\"".as_bytes());
        out.clear();
        push_json_object(&mut out, [("k", [1u64, 2]), ("e", [3, 4])], |out, v| {
            push_json_array(out, v, super::super::push_u64)
        });
        assert_eq!(out, br#"{"k":[1,2],"e":[3,4]}"#);
        out.clear();
        push_json_array(&mut out, Vec::<u64>::new(), |_, _| {});
        push_json_object(&mut out, Vec::<(&str, u64)>::new(), |_, _| {});
        assert_eq!(out, b"[]{}");
    }

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
