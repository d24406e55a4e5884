//! The live-mutex protocol: JSON lines as spoken
//! by the `live-mutex` npm client (`dist/client.js`) to its broker (`dist/broker.js`).
//!
//! # Format
//! One JSON object per `\n`-terminated line each way (`\r\n` accepted). A line longer
//! than `--max-line` bytes closes the connection, so a session buffers at most that
//! much. A line that is not JSON is ignored (as the original's stream parser does) and
//! counted in `errors_total`; blank lines are ignored.
//!
//! | request `type` | reply |
//! |---|---|
//! | `version` | none |
//! | `lock` `{uuid,key,ttl,max}` | `{"readersCount":0,"uuid":U,"key":K,"lockRequestCount":N,"type":"lock","acquired":true\|false}` |
//! | (later, unprompted) | `{"readersCount":0,"uuid":U,"key":K,"lockRequestCount":N,"type":"lock","acquired":true}` |
//! | `unlock` `{uuid,_uuid,key,force}` | `{"uuid":U2,"key":K,"lockRequestCount":N,"type":"unlock","unlocked":true}` or `...,"error":E,"unlocked":false}` |
//! | `lock-received`, `lock-received-rejected` | none (ignored) |
//! | `lock-client-timeout`, `lock-client-error` `{uuid,key}` | none; ends that request |
//! | `ls` | `{"ls_result":[names],"uuid":U}` |
//! | `lock-info-request` `{uuid,key}` | `{"key":K,"uuid":U,"lockholderUUIDs":[],"lockRequestCount":N,"isLocked":B,"lockInfo":true,"type":"lock-info-response"}` |
//! | a `lock` or `unlock` with a bad field | `{"key":K,"uuid":U,"type":T,"error":E}` |
//! | anything else | `{"key":K,"uuid":U,"error":"Malformed data sent to Live-Mutex broker."}` |
//!
//! `lockRequestCount` is the number of requests waiting on the key (for a refused or
//! queued lock: the number that waited before it). Replies always carry `uuid` and
//! `key` as the client sent them; the client checks both.
//!
//! # Mapping onto the engine
//! - Keys: a key maps to the engine name [`super::names::engine_name`]`("", KEY)`, as
//!   lockd's and officer's names do: itself for ordinary keys, with bytes `0x00..=0x20`,
//!   `0x7F` and `%` written as `%XX` and the empty key as `%`. So key `foo` is the same
//!   lock as native `LOCK foo`, lockd's `g foo`, officer's and locker's `foo`. A key
//!   whose escaped form is over 255 bytes gets an `error` reply.
//! - The tag of a lock request is `[uuid length: u8] uuid key` (the key as sent), so a
//!   grant event can be answered with both. uuids are 1 to 255 bytes; others get an
//!   `error` reply.
//! - `lock`: [`Engine::acquire`] with `wait = None` (the broker never times a wait out;
//!   the client gives up on its own and says so with `lock-client-timeout`), `hold` from
//!   `ttl`: `null` = no deadline, a missing or 0 `ttl` = 5000 ms (the broker's default
//!   `lockExpiresAfter`), else `ttl` ms. `max` missing, `null` or 1 = exclusive; `max`
//!   = N >= 2 = shared with at most N holders (a counting semaphore). Granted now ->
//!   `acquired:true`; else queued FIFO -> `acquired:false` now and `acquired:true`
//!   with the same uuid when the engine grants it.
//! - The same uuid and key again (the client retries a pending request with the same
//!   uuid) is the same request: no second claim; the reply says where it is
//!   (`acquired:false` while queued, `acquired:true` once held).
//! - `unlock` with `_uuid` naming a held request of this connection -> releases that
//!   hold. `force:true` -> releases every hold on the key owned by a live-mutex
//!   connection ([`Engine::force_release`]); holds taken through other protocols are
//!   never revoked by it. `_uuid` naming a queued request -> withdraws it. A
//!   `_uuid` whose hold ran out (ttl) or was force-released -> `unlocked:true`, once, as
//!   in the original (its `lockholderTimeouts` / `lockholdersAllReleased`), provided it
//!   is among the connection's last [`REMEMBER_GONE`] requests whose hold went that
//!   way (the original remembered them all). No such request and the key is free ->
//!   `unlocked:true` with a `warning` (as the original for a key it never saw).
//!   Otherwise `unlocked:false` and
//!   `error: "You need to pass the correct uuid, or use force."`. The answer depends
//!   only on what happened to the connection's requests and the key, never on the
//!   session's bookkeeping (map rebuilds).
//! - ttl expiry is silent (the original force-unlocked the key and told nobody); the
//!   next waiter is granted.
//! - `lock-client-timeout` / `lock-client-error` (the client gave up on a request)
//!   cancel that request if queued, and release it if it was granted meanwhile, so a
//!   grant that crossed the client's give-up is not leaked. `lock-received-rejected`,
//!   which the client sends after such a crossed grant, or for a grant it no longer
//!   expects, is therefore ignored: releasing on it would take away a lock the client
//!   holds when a retried request crossed its own grant.
//!
//! The session keeps a [`RequestMap`] `tag -> held(token) | gone` of its granted lock
//! requests (gone = the hold ran out or was force-released; the last [`REMEMBER_GONE`]
//! are remembered so their late unlock succeeds); a waiting request is found in the
//! engine's index of waits by tag ([`Engine::is_waiting`]), so a waiter costs the
//! engine's claim and nothing here. The map follows the engine's events; a
//! hold forced away by another connection is found at its next use or at the map's
//! next rebuild from the engine, which keeps the remembered gone requests, so the map
//! stays within twice the connection's live claims plus a constant.
//!
//! # Deviations from the original broker
//! - A disconnect releases only that connection's holds and cancels only its waits.
//!   (The original force-unlocked *every* key of every client whenever any client
//!   disconnected.) `keepLocksAfterDeath` is ignored: claims die with their connection.
//! - `ttl` is per hold: each hold has its own deadline, and expiry releases that hold
//!   only. (The original kept one timer per key, restarted by every grant, which
//!   force-released all holders of the key.)
//! - `max` belongs to the request, not to the key: a request without `max` on a key
//!   held as a semaphore waits for it to empty. (The original stored the last `max`
//!   seen on the key and applied it to every later request.)
//! - No re-election: the original took a grant back when `lock-received` did not arrive
//!   within 4.5 s; lockbox relies on TCP and on the disconnect cleanup instead.
//! - `version` is never answered with `version-mismatch`; the read-write-lock messages
//!   (`increment-readers`, `register-write-flag-check`, ...) and `inspectCommand` are
//!   unknown (error reply), so `RWLockClient` is not supported. `ls` lists the keys
//!   of current locks, every protocol's, that are images of keys (the original's list
//!   was always empty), sorted, written a batch at a time
//!   ([`super::listing`]: a lock that lasts the whole listing is in it exactly once;
//!   the connection's next message is read, and its grants are written, after the
//!   line); `lock-info-request` leaves `lockholderUUIDs` empty (the
//!   original filled it with internal field names).
//! - Unlock with `_uuid` naming a queued request withdraws it (the original answered
//!   the wrong-uuid error and kept it queued). Unlock naming no request of this
//!   connection on a free key answers `unlocked:true` with a `warning`, also when the
//!   key was used before (the original said so only for keys it never saw).
//! - A `lock` whose uuid, key, `ttl` or `max` is malformed gets an `error` reply (the
//!   original took whatever came, e.g. `max: 0` made a lock nobody could get).
//! - The client's `wait: false` option is not sent on the wire: the request stays
//!   queued after its `acquired:false`, and a later grant is dropped by the client and
//!   held until its ttl (or the disconnect), as with the original.

use super::framing::{decode_line, Flow, Lines};
use super::json::Object;
use super::listing::Batch;
use super::names::{engine_name, holders, waiters, EngineName};
use super::requests::{RequestMap, Status};
use super::{Ctx, Progress, Protocol, Wire};
use crate::config::Config;
use crate::engine::{AcquireRequest, Acquired, Engine, Event, EventKind, Mode, Tag};
use serde_json::{Map, Value};

mod listing;

/// The broker's default hold when `ttl` is missing or 0 (`lockExpiresAfter`), ms.
pub const DEFAULT_TTL_MS: u32 = 5000;
/// Longest uuid, in bytes.
pub const MAX_UUID: usize = u8::MAX as usize;
/// The error text of an unlock with the wrong `_uuid` (the original's words).
pub const WRONG_UUID: &str = "You need to pass the correct uuid, or use force.";
/// The error text for an unknown message (the original's words).
pub const MALFORMED: &str = "Malformed data sent to Live-Mutex broker.";

/// How many requests whose hold ran out or was force-released a connection remembers,
/// so that their late unlock answers `unlocked:true` (see the module doc).
pub const REMEMBER_GONE: usize = 1024;

/// The engine tag of lock request `uuid` on `key`: `[uuid.len()] uuid key`.
pub fn make_tag(uuid: &[u8], key: &[u8]) -> Tag {
    debug_assert!(uuid.len() <= MAX_UUID);
    let mut tag = Tag::with_capacity(1 + uuid.len() + key.len());
    tag.push(uuid.len() as u8);
    tag.extend_from_slice(uuid);
    tag.extend_from_slice(key);
    tag
}

/// Splits a tag made by [`make_tag`] into (uuid, key).
pub fn split_tag(tag: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = tag.split_first()?;
    (rest.len() >= usize::from(n)).then(|| rest.split_at(usize::from(n)))
}

/// The map key of a request: its whole tag (a valid one).
fn tag_key(tag: &[u8]) -> Option<Tag> {
    split_tag(tag)?;
    Some(Tag::from_slice(tag))
}

/// Per-connection state.
#[derive(Debug)]
pub struct Session {
    lines: Lines,
    requests: RequestMap<Tag>,
    /// `ls` in progress.
    listings: listing::Listings,
}

/// A lock reply `{"readersCount":0,"uuid":U,"key":K,"lockRequestCount":N,"type":"lock","acquired":B}`.
fn write_lock_reply(out: &mut Vec<u8>, uuid: &[u8], key: &[u8], waiting: u32, acquired: bool) {
    Object::new(out)
        .num("readersCount", 0)
        .bytes("uuid", uuid)
        .bytes("key", key)
        .num("lockRequestCount", u64::from(waiting))
        .str("type", "lock")
        .bool("acquired", acquired)
        .end_line();
}

/// An error reply to a request of type `ty` (`None`: unknown type).
fn write_error(cx: &mut Ctx, ty: Option<&str>, uuid: Option<&str>, key: Option<&str>, e: &str) {
    cx.stats.errors_total += 1;
    Object::new(cx.out)
        .opt_str("key", key)
        .opt_str("uuid", uuid)
        .opt_str("type", ty)
        .str("error", e)
        .end_line();
}

/// A string field.
fn str_field<'v>(obj: &'v Map<String, Value>, k: &str) -> Option<&'v str> {
    obj.get(k).and_then(Value::as_str)
}

/// A valid uuid: 1 to 255 bytes.
fn valid_uuid(s: &str) -> bool {
    (1..=MAX_UUID).contains(&s.len())
}

/// The engine name of `key`, if it has one (see the module doc).
fn lock_name(key: &[u8]) -> Option<EngineName> {
    engine_name(b"", key)
}

const BAD_KEY: &str = "key must be a string whose escaped form is at most 255 bytes";

/// `ttl` as a hold: `Ok(None)` = no deadline.
fn parse_ttl(v: Option<&Value>) -> Result<Option<u32>, &'static str> {
    let ms = match v {
        Some(Value::Null) => return Ok(None),
        None => 0.0,
        Some(v) => v
            .as_f64()
            .filter(|ms| *ms >= 0.0)
            .ok_or("ttl must be null or a number of milliseconds")?,
    };
    if ms == 0.0 {
        return Ok(Some(DEFAULT_TTL_MS));
    }
    Ok(Some(ms.ceil().min(f64::from(u32::MAX)) as u32))
}

/// `max` as a lock mode.
fn parse_max(v: Option<&Value>) -> Result<Mode, &'static str> {
    match v {
        None | Some(Value::Null) => Ok(Mode::Exclusive),
        Some(v) => match v.as_u64() {
            Some(1) => Ok(Mode::Exclusive),
            Some(n) if n >= 2 => Ok(Mode::Shared {
                max: u32::try_from(n).unwrap_or(u32::MAX),
            }),
            _ => Err("max must be null or a positive integer"),
        },
    }
}

/// A parsed live-mutex message.
#[derive(Clone, Copy, Debug)]
pub enum Request<'a> {
    /// `version`, `lock-received`, `lock-received-rejected`, or a give-up naming no
    /// request: no answer.
    Ignored,
    /// `lock`, with every field checked.
    Lock {
        /// The request's uuid.
        uuid: &'a str,
        /// The key as sent.
        key: &'a str,
        /// The key's engine name.
        name: EngineName,
        /// The hold from `ttl` (`None`: no deadline).
        hold: Option<u32>,
        /// Exclusive, or a semaphore of `max` holders.
        mode: Mode,
    },
    /// `unlock`.
    Unlock {
        /// The uuid to answer with (none: no answer).
        uuid: Option<&'a str>,
        /// The key as sent.
        key: &'a str,
        /// The key's engine name.
        name: EngineName,
        /// `_uuid`: the lock request to end, when it is a valid uuid.
        lock_uuid: Option<&'a str>,
        /// `force`, as JavaScript reads it.
        force: bool,
    },
    /// `lock-client-timeout` / `lock-client-error`: the client gave up on a request.
    Abandon {
        /// The request's uuid.
        uuid: &'a str,
        /// The key as sent.
        key: &'a str,
        /// The key's engine name.
        name: EngineName,
    },
    /// `ls`.
    Ls {
        /// The uuid to answer with.
        uuid: Option<&'a str>,
    },
    /// `lock-info-request`.
    Info {
        /// The uuid to answer with.
        uuid: Option<&'a str>,
        /// The key as sent (it has an engine name).
        key: &'a str,
    },
    /// Anything malformed: answered with an `error` reply.
    Refused {
        /// The `type` to answer with (`None`: unknown type).
        ty: Option<&'static str>,
        /// The uuid as sent.
        uuid: Option<&'a str>,
        /// The key as sent.
        key: Option<&'a str>,
        /// The error text.
        error: &'static str,
    },
}

/// Parses one JSON message (see the module doc for the fields of each type).
pub fn parse<'a>(value: &'a Value) -> Request<'a> {
    let Value::Object(obj) = value else {
        return Request::Refused {
            ty: None,
            uuid: None,
            key: None,
            error: MALFORMED,
        };
    };
    let uuid = str_field(obj, "uuid");
    let key = str_field(obj, "key");
    let refused = |ty, error| Request::Refused {
        ty,
        uuid,
        key,
        error,
    };
    let named = |k: Option<&'a str>| k.and_then(|k| Some((k, lock_name(k.as_bytes())?)));
    match str_field(obj, "type") {
        Some("version" | "lock-received" | "lock-received-rejected") => Request::Ignored,
        Some("lock") => {
            let fail = |e| refused(Some("lock"), e);
            let Some(uuid) = uuid.filter(|u| valid_uuid(u)) else {
                return fail("uuid must be a string of 1 to 255 bytes");
            };
            let Some((key, name)) = named(key) else {
                return fail(BAD_KEY);
            };
            let hold = match parse_ttl(obj.get("ttl")) {
                Ok(h) => h,
                Err(e) => return fail(e),
            };
            match parse_max(obj.get("max")) {
                Ok(mode) => Request::Lock {
                    uuid,
                    key,
                    name,
                    hold,
                    mode,
                },
                Err(e) => fail(e),
            }
        }
        Some("unlock") => match named(key) {
            Some((key, name)) => Request::Unlock {
                uuid,
                key,
                name,
                lock_uuid: str_field(obj, "_uuid").filter(|u| valid_uuid(u)),
                force: obj.get("force").is_some_and(truthy),
            },
            None => refused(Some("unlock"), BAD_KEY),
        },
        Some("lock-client-timeout" | "lock-client-error") => {
            match (uuid.filter(|u| valid_uuid(u)), named(key)) {
                (Some(uuid), Some((key, name))) => Request::Abandon { uuid, key, name },
                _ => Request::Ignored,
            }
        }
        Some("ls") => Request::Ls { uuid },
        Some("lock-info-request") => match named(key) {
            Some((key, _)) => Request::Info { uuid, key },
            None => refused(Some("lock-info-response"), BAD_KEY),
        },
        _ => refused(None, MALFORMED),
    }
}

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: &Config) -> Self {
        Session {
            lines: Lines::new(cfg.max_line),
            requests: RequestMap::new(tag_key, REMEMBER_GONE).holds_only(),
            listings: listing::Listings::default(),
        }
    }

    /// Executes one parsed message.
    fn execute(&mut self, request: Request, cx: &mut Ctx) {
        match request {
            Request::Ignored => {}
            Request::Lock {
                uuid,
                key,
                name,
                hold,
                mode,
            } => self.lock(uuid, key, name.as_bytes(), hold, mode, cx),
            Request::Unlock {
                uuid,
                key,
                name,
                lock_uuid,
                force,
            } => self.unlock(uuid, key, name.as_bytes(), lock_uuid, force, cx),
            Request::Abandon { uuid, key, name } => {
                let tag = make_tag(uuid.as_bytes(), key.as_bytes());
                self.end_request(&tag, name.as_bytes(), cx);
            }
            Request::Ls { uuid } => self.listings.start(cx.out, uuid),
            Request::Info { uuid, key } => write_info(cx, uuid, key),
            Request::Refused {
                ty,
                uuid,
                key,
                error,
            } => write_error(cx, ty, uuid, key, error),
        }
    }

    fn lock(
        &mut self,
        uuid: &str,
        key: &str,
        name: &[u8],
        hold: Option<u32>,
        mode: Mode,
        cx: &mut Ctx,
    ) {
        let fail = |cx: &mut Ctx, e: &str| write_error(cx, Some("lock"), Some(uuid), Some(key), e);
        let (uuid_b, key_b) = (uuid.as_bytes(), key.as_bytes());
        let tag = make_tag(uuid_b, key_b);
        // The same request again (a client retry): answer with where it is.
        match self.requests.status(&tag[..], cx.engine, cx.client) {
            Some(Status::Held { .. }) => {
                let w = waiters(cx.engine, name);
                return write_lock_reply(cx.out, uuid_b, key_b, w, true);
            }
            _ if cx.engine.is_waiting(cx.client, &tag) => {
                let before = waiters(cx.engine, name).saturating_sub(1);
                return write_lock_reply(cx.out, uuid_b, key_b, before, false);
            }
            Some(Status::Waiting | Status::Gone) | None => {}
        }
        let req = AcquireRequest {
            name,
            mode,
            wait: None,
            hold,
            queue: None,
        };
        let status = match cx.engine.acquire(cx.client, &tag, &req, cx.now) {
            Acquired::Granted { token, .. } => {
                write_lock_reply(cx.out, uuid_b, key_b, waiters(cx.engine, name), true);
                Status::Held { token }
            }
            Acquired::Queued => {
                // Found in the engine's index of waits; recorded here once granted.
                let before = waiters(cx.engine, name).saturating_sub(1);
                return write_lock_reply(cx.out, uuid_b, key_b, before, false);
            }
            Acquired::Limit => {
                return fail(cx, "too many holds and waits on this connection");
            }
            Acquired::Full => {
                return fail(cx, "too many holds and waits on this server");
            }
            Acquired::Timeout | Acquired::QueueFull => {
                return fail(cx, "lock request refused");
            }
        };
        self.requests
            .insert(tag, name, status, cx.engine, cx.client);
    }

    fn unlock(
        &mut self,
        uuid: Option<&str>,
        key: &str,
        name: &[u8],
        lock_uuid: Option<&str>,
        force: bool,
        cx: &mut Ctx,
    ) {
        let mut unlocked = false;
        if let Some(lock_uuid) = lock_uuid {
            let tag = make_tag(lock_uuid.as_bytes(), key.as_bytes());
            unlocked = self.end_request(&tag, name, cx);
        }
        if force {
            cx.engine
                .force_release(name, Protocol::LiveMutex as u8, cx.now);
            unlocked = true;
        }
        let mut warning = None;
        if !unlocked && holders(cx.engine, name) == 0 {
            unlocked = true;
            warning = Some(format!("no lock with key => \"{key}\"."));
        }
        let Some(uuid) = uuid else {
            // The original answers only requests that carry a uuid.
            return;
        };
        let obj = Object::new(cx.out)
            .str("uuid", uuid)
            .str("key", key)
            .num("lockRequestCount", u64::from(waiters(cx.engine, name)))
            .str("type", "unlock");
        if unlocked {
            obj.bool("unlocked", true)
                .opt_str("warning", warning.as_deref())
                .end_line();
        } else {
            cx.stats.errors_total += 1;
            obj.str("error", WRONG_UUID)
                .bool("unlocked", false)
                .end_line();
        }
    }

    /// Ends this connection's request `tag` on engine name `name`: releases its hold or
    /// cancels its wait. True when the request was known (also when its hold is gone).
    fn end_request(&mut self, tag: &[u8], name: &[u8], cx: &mut Ctx) -> bool {
        match self.requests.take(tag) {
            Some((_, Status::Held { token })) => {
                // Err: forced away meanwhile, which the original also answered with
                // `unlocked:true`.
                let _ = cx.engine.release(cx.client, name, Some(token), cx.now);
                true
            }
            Some((_, Status::Gone)) => true,
            Some((_, Status::Waiting)) | None => {
                cx.engine.cancel(cx.client, tag, cx.now, |_| {}) > 0
            }
        }
    }
}

impl Wire for Session {
    /// Decodes and executes at most one line.
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        decode_line(
            Protocol::LiveMutex,
            self.lines.frame(input),
            cx,
            |_, cx| cx.stats.errors_total += 1,
            |line, cx| {
                if line.iter().all(u8::is_ascii_whitespace) {
                    return Flow::Continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(value) => self.execute(parse(&value), cx),
                    Err(e) => {
                        log::debug!(
                            "live-mutex {}: line is not JSON: {e}",
                            super::Peer::of(cx.engine, cx.client)
                        );
                        cx.stats.errors_total += 1;
                    }
                }
                Flow::Continue
            },
        )
    }

    /// Writes an engine event: a grant is the unprompted `acquired:true`; expiry is silent.
    fn encode_event(&mut self, event: &Event, engine: &Engine, out: &mut Vec<u8>) {
        let Some((uuid, key)) = split_tag(&event.tag) else {
            debug_assert!(false, "bad live-mutex tag");
            return;
        };
        match event.kind {
            EventKind::Granted { token, .. } => {
                let name = lock_name(key);
                if let Some(n) = &name {
                    let held = Status::Held { token };
                    let tag = Tag::from_slice(&event.tag);
                    self.requests
                        .insert(tag, n.as_bytes(), held, engine, event.client);
                }
                let w = name.map_or(0, |n| waiters(engine, n.as_bytes()));
                write_lock_reply(out, uuid, key, w, true);
            }
            EventKind::Timeout => {
                // Waits have no deadline here; say so plainly if one ever ends.
                self.requests.timed_out(&event.tag[..]);
                Object::new(out)
                    .bytes("uuid", uuid)
                    .bytes("key", key)
                    .str("type", "lock")
                    .str("error", "lock request timed out")
                    .end_line();
            }
            EventKind::Expired { token } => self.requests.expired(&event.tag[..], token),
        }
    }

    fn listing(&self) -> bool {
        self.listings.active()
    }

    fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        self.listings.proceed(cx, batch)
    }

    /// The connection is closing: the engine releases its claims right after.
    fn on_close(&mut self, _cx: &mut Ctx) {
        self.requests.clear();
    }
}

/// JavaScript truthiness, for `force`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `lock-info-request`.
fn write_info(cx: &mut Ctx, uuid: Option<&str>, key: &str) {
    let (holders, waiters) = lock_name(key.as_bytes())
        .and_then(|n| cx.engine.inspect(n.as_bytes()))
        .map_or((0, 0), |(info, _)| (info.holders, info.waiters));
    Object::new(cx.out)
        .str("key", key)
        .opt_str("uuid", uuid)
        .with(b"lockholderUUIDs", |out| out.extend_from_slice(b"[]"))
        .num("lockRequestCount", u64::from(waiters))
        .bool("isLocked", holders > 0)
        .bool("lockInfo", true)
        .str("type", "lock-info-response")
        .end_line();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let tag = make_tag(b"u-1", b"key\0with nul");
        assert_eq!(split_tag(&tag), Some((&b"u-1"[..], &b"key\0with nul"[..])));
        assert_eq!(split_tag(&[5, b'a']), None);
        assert_eq!(split_tag(&[]), None);
    }

    #[test]
    fn ttl_and_max() {
        assert_eq!(parse_ttl(Some(&Value::Null)), Ok(None));
        assert_eq!(parse_ttl(None), Ok(Some(DEFAULT_TTL_MS)));
        assert_eq!(parse_ttl(Some(&0.into())), Ok(Some(DEFAULT_TTL_MS)));
        assert_eq!(parse_ttl(Some(&7050.into())), Ok(Some(7050)));
        assert_eq!(parse_ttl(Some(&1e12.into())), Ok(Some(u32::MAX)));
        assert!(parse_ttl(Some(&(-1).into())).is_err());
        assert!(parse_ttl(Some(&"5".into())).is_err());
        assert_eq!(parse_max(None), Ok(Mode::Exclusive));
        assert_eq!(parse_max(Some(&Value::Null)), Ok(Mode::Exclusive));
        assert_eq!(parse_max(Some(&1.into())), Ok(Mode::Exclusive));
        assert_eq!(parse_max(Some(&3.into())), Ok(Mode::Shared { max: 3 }));
        assert!(parse_max(Some(&0.into())).is_err());
        assert!(parse_max(Some(&1.5.into())).is_err());
    }

    #[test]
    fn json_writer_escapes() {
        let mut out = Vec::new();
        write_lock_reply(&mut out, b"u\"1", "k\n€".as_bytes(), 2, false);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["uuid"], "u\"1");
        assert_eq!(v["key"], "k\n€");
        assert_eq!(v["acquired"], false);
        assert_eq!(v["lockRequestCount"], 2);
        assert!(out.ends_with(b"}\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    }
}
