//! The officer protocol: JSON lines both ways.
//!
//! # Wire
//! One JSON object per `\n`-terminated line (a trailing `\r` is dropped), with a
//! `"command"` of `lock`, `unlock`, `reset`, `locks`, `connections`, `my_locks` or
//! `keep_alive`. Replies are single lines with officer's key order:
//! `{"name":N,"result":"acquired"}`, `{"name":N,"queue":[..],"result":"timed_out"}`,
//! `{"result":"reset_succeeded"}`, `{"value":..,"result":"locks"}`. A line that is not a
//! JSON object, names no known command, or has a malformed field (`name` not a
//! non-empty string, `timeout` not a number or null, `queue_max` not a positive integer
//! or null) closes the connection, as the original's exception did. So does a line
//! longer than `--max-line` bytes.
//!
//! # Mapping onto the engine
//! - **Names.** An officer name maps to the engine name
//!   [`super::names::engine_name`]`("", NAME)`: itself for ordinary names, with bytes
//!   `0x00..=0x20`, `0x7F` and `%` escaped as `%XX` (so `"my lock"` is `my%20lock` in native
//!   `LIST`). The same name therefore is the same lock for officer, lockd's `g` and native
//!   `LOCK`. A name whose escaped form is over 255 bytes is a malformed request (closes).
//! - **lock** is an exclusive claim whose tag is the engine name (events carry it back).
//!   `timeout` seconds (fractional; negative = 0) become the wait in ms, rounded up and
//!   capped at `u32::MAX`; null or absent waits as long as the connection lives.
//!   Before acquiring: the holder asking again gets `already_acquired`; a connection
//!   already waiting for the name gets no reply (its first request stands, with its own
//!   timeout); with `queue_max` Q, holders + waiters >= Q gets `queue_maxed`. A wait that
//!   runs out gets `timed_out`; `queue` lists the `ip:port` of holders (grant order) then
//!   waiters (FIFO), without the request that timed out (see below for when it is
//!   read), at most [`LIST_CAP`] of them. A later grant is
//!   `{"name":N,"result":"acquired"}`.
//!   Over `--max-pending` or `--max-claims`, the answer is `queue_maxed`.
//! - **unlock** releases this connection's hold (`released`; the next waiter is granted),
//!   or withdraws its wait for the name (also `released`, as officer did), else
//!   `release_failed`.
//! - **reset** cancels every wait (silently) and releases every hold: `reset_succeeded`.
//! - **locks** lists every engine lock whose name is an officer name (native and lockd
//!   exclusive locks included; lockd's `%shared:` names and names that are not the image
//!   of a UTF-8 string are left out), each with its holders then waiters (at most
//!   [`LIST_CAP`]).
//! - **connections** lists every connection with at least one such hold or wait, with
//!   its names (holds in grant order, then waits; at most [`LIST_CAP`]); **my_locks**
//!   lists this connection's names the same way, all of them (waits included, as in
//!   officer).
//! - `locks` and `connections` cover the whole table or every connection, so each is
//!   written a batch at a time ([`super::listing`]): one JSON line whose entries are
//!   sorted (`locks` by name, `connections` by `ip:port` as text); a lock or connection
//!   that lasts the whole listing is in it exactly once, one created or removed
//!   meanwhile may or may not be, and no key is repeated. The connection's next
//!   request is read once the line is written, and events for it (grants, timeouts)
//!   follow the line.
//!
//! # Deviations from officer
//! - Objects in `locks` and `connections` are sorted (officer used insertion order);
//!   connections that hold and wait for nothing are not listed.
//! - Lists that other clients can grow are capped at [`LIST_CAP`] items: the `queue` of
//!   `timed_out` and `queue_maxed`, each lock's queue in `locks`, each connection's
//!   names in `connections` (officer listed them whole, so a crowded lock could make a
//!   reply big enough to get its reader disconnected).
//! - A repeated `lock` while waiting does not start a timer the first request lacked.
//! - The idle-connection reaper (`--max-idle`) is not implemented: `keep_alive` is
//!   accepted and needs no reply; connections live until they close.
//! - **When a `timed_out` queue is read.** A `timeout` of 0 on a busy lock is answered
//!   at once, with the queue of that moment. A wait that runs out later is answered
//!   from an engine event, and the engine fires every deadline that is due in one batch
//!   (every deadline up to the moment being processed that the loop had not reached
//!   yet) before any event is written. The queue is read when
//!   the event is written, so it reflects the whole batch: waits that ran out in the
//!   same batch are already gone from it (two waiters timing out together do not list
//!   each other), and a hold whose lease (a native `hold=` or live-mutex `ttl`) ran out
//!   in the batch is gone too, the waiter it granted already shown as holder. officer
//!   fired one timer at a time and listed the queue at that instant, including waiters
//!   whose timers were due in the same instant but had not fired yet. Reading the queue
//!   at the instant of each timeout needs the engine to pass it with the event (or to
//!   route events between timers); the codec cannot see it afterwards.

use super::framing::{decode_line, Flow, Lines};
use super::json::{push_array, push_quoted_addr, push_str, Object};
use super::listing::Batch;
use super::names::{engine_name, utf8_name, wire_name};
use super::{Ctx, Progress, Protocol, Wire};
use crate::config::Config;
use crate::engine::{AcquireRequest, Acquired, ClientId, Engine, Event, EventKind, Mode};
use serde_json::{Map, Value};

mod listing;

/// The most items any list in a reply that other clients can grow holds: the `queue`
/// of `timed_out`, `queue_maxed` and each `locks` entry (holders first, then the
/// longest waiting), and the names of each `connections` entry. officer's clients
/// read a whole line of any length, so any cap works for them; 100 keeps such a reply
/// under about 5 KB (an `ip:port` is at most 47 bytes), and a reply that many
/// timeouts cause at once stays small.
pub const LIST_CAP: usize = 100;

/// Per-connection state.
#[derive(Debug)]
pub struct Session {
    lines: Lines,
    /// `locks` or `connections` in progress.
    listings: listing::Listings,
}

/// A parsed request.
#[derive(Debug, PartialEq)]
enum Request<'a> {
    Lock {
        name: &'a str,
        wait: Option<u32>,
        queue_max: Option<u64>,
    },
    Unlock {
        name: &'a str,
    },
    Reset,
    Locks,
    Connections,
    MyLocks,
    KeepAlive,
}

/// Parses a request object; `None` for anything officer would have choked on.
fn parse(obj: &Map<String, Value>) -> Option<Request<'_>> {
    let name = || -> Option<&str> {
        match obj.get("name")? {
            Value::String(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    };
    Some(match obj.get("command")?.as_str()? {
        "lock" => {
            let wait = match obj.get("timeout") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(seconds_to_ms(n.as_f64()?)),
                Some(_) => return None,
            };
            let queue_max = match obj.get("queue_max") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|&q| q > 0)?),
            };
            Request::Lock {
                name: name()?,
                wait,
                queue_max,
            }
        }
        "unlock" => Request::Unlock { name: name()? },
        "reset" => Request::Reset,
        "locks" => Request::Locks,
        "connections" => Request::Connections,
        "my_locks" => Request::MyLocks,
        "keep_alive" => Request::KeepAlive,
        _ => return None,
    })
}

/// Seconds to whole milliseconds, rounded up, within `0..=u32::MAX`.
fn seconds_to_ms(s: f64) -> u32 {
    let ms = (s * 1000.0).ceil();
    if ms.is_nan() || ms <= 0.0 {
        0
    } else if ms >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        ms as u32
    }
}

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: &Config) -> Self {
        Session {
            lines: Lines::new(cfg.max_line),
            listings: listing::Listings::default(),
        }
    }
}

impl Wire for Session {
    /// Decodes and executes at most one request line.
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        decode_line(
            Protocol::Officer,
            self.lines.frame(input),
            cx,
            |_, _| {},
            |line, cx| {
                let value: Value = match serde_json::from_slice(line) {
                    Ok(v) => v,
                    Err(e) => {
                        log::debug!(
                            "officer {}: bad JSON ({e}), closing",
                            super::Peer::of(cx.engine, cx.client)
                        );
                        return Flow::Close;
                    }
                };
                let Some(request) = value.as_object().and_then(parse) else {
                    log::debug!(
                        "officer {}: invalid request, closing",
                        super::Peer::of(cx.engine, cx.client)
                    );
                    return Flow::Close;
                };
                execute(request, cx, &mut self.listings)
            },
        )
    }

    fn listing(&self) -> bool {
        self.listings.active()
    }

    fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        self.listings.proceed(cx, batch)
    }

    /// Writes an engine event: a deferred grant or a wait that ran out.
    fn encode_event(&mut self, event: &Event, engine: &Engine, out: &mut Vec<u8>) {
        let name = wire_name(&event.tag).unwrap_or_default();
        match event.kind {
            EventKind::Granted { .. } => write_result(out, &name, "acquired"),
            EventKind::Timeout => write_with_queue(out, engine, &event.tag, &name, "timed_out"),
            // officer never sets a hold deadline.
            EventKind::Expired { .. } => {}
        }
    }
}

/// Executes one request; `Flow::Close` for a name officer could not have stored.
fn execute(request: Request, cx: &mut Ctx, listings: &mut listing::Listings) -> Flow {
    let me = cx.client;
    match request {
        Request::Lock {
            name,
            wait,
            queue_max,
        } => {
            let Some(en) = engine_name(b"", name.as_bytes()) else {
                log::debug!(
                    "officer {}: lock name too long, closing",
                    super::Peer::of(cx.engine, me)
                );
                return Flow::Close;
            };
            let en = en.as_bytes();
            if let Some((info, holder)) = cx.engine.inspect(en) {
                if holder.is_some_and(|h| h.client == me) {
                    write_result(cx.out, name.as_bytes(), "already_acquired");
                    return Flow::Continue;
                }
                // A lock request's tag is its engine name: O(1).
                if cx.engine.is_waiting(me, en) {
                    return Flow::Continue;
                }
                if queue_max.is_some_and(|q| u64::from(info.holders) + u64::from(info.waiters) >= q)
                {
                    write_with_queue(cx.out, cx.engine, en, name.as_bytes(), "queue_maxed");
                    return Flow::Continue;
                }
            }
            let req = AcquireRequest {
                name: en,
                mode: Mode::Exclusive,
                wait,
                hold: None,
                queue: None,
            };
            match cx.engine.acquire(me, en, &req, cx.now) {
                Acquired::Granted { .. } => write_result(cx.out, name.as_bytes(), "acquired"),
                Acquired::Queued => {}
                Acquired::Timeout => {
                    write_with_queue(cx.out, cx.engine, en, name.as_bytes(), "timed_out")
                }
                Acquired::QueueFull | Acquired::Limit | Acquired::Full => {
                    write_with_queue(cx.out, cx.engine, en, name.as_bytes(), "queue_maxed")
                }
            }
        }
        Request::Unlock { name } => {
            let released = engine_name(b"", name.as_bytes()).is_some_and(|en| {
                let en = en.as_bytes();
                cx.engine.release(me, en, None, cx.now).is_ok()
                    || cx.engine.cancel(me, en, cx.now, |_| {}) > 0
            });
            let result = if released {
                "released"
            } else {
                "release_failed"
            };
            write_result(cx.out, name.as_bytes(), result);
        }
        Request::Reset => {
            cx.engine.reset(me, cx.now, |_| {});
            Object::new(cx.out)
                .str("result", "reset_succeeded")
                .end_line();
        }
        Request::Locks => listings.start(cx.out, listing::Kind::Locks),
        Request::Connections => listings.start(cx.out, listing::Kind::Connections),
        Request::MyLocks => Object::new(cx.out)
            .with(b"value", |out| {
                write_names_of(out, cx.engine, me, usize::MAX)
            })
            .str("result", "my_locks")
            .end_line(),
        Request::KeepAlive => {}
    }
    Flow::Continue
}

/// `{"name":N,"result":R}`.
fn write_result(out: &mut Vec<u8>, name: &[u8], result: &str) {
    Object::new(out)
        .bytes("name", name)
        .str("result", result)
        .end_line();
}

/// `{"name":N,"queue":[holders then waiters],"result":R}`.
fn write_with_queue(out: &mut Vec<u8>, engine: &Engine, en: &[u8], name: &[u8], result: &str) {
    Object::new(out)
        .bytes("name", name)
        .with(b"queue", |out| write_queue(out, engine, en))
        .str("result", result)
        .end_line();
}

/// `["ip:port",...]`: holders in grant order, then waiters in FIFO order, at most
/// [`LIST_CAP`] of them.
fn write_queue(out: &mut Vec<u8>, engine: &Engine, en: &[u8]) {
    let holders = engine.holds_on(en).map(|(_, c)| c);
    let queue = holders.chain(engine.waiters_on(en)).take(LIST_CAP);
    push_array(out, queue, |out, client| {
        push_quoted_addr(out, engine, client)
    });
}

/// `[names]` of one connection: holds in grant order, then waits; at most `cap`.
fn write_names_of(out: &mut Vec<u8>, engine: &Engine, client: ClientId, cap: usize) {
    let names = engine
        .holds_of(client)
        .chain(engine.waits_of(client))
        .filter_map(|c| utf8_name(c.name))
        .take(cap);
    push_array(out, names, |out, name| push_str(out, name.as_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &str) -> Option<Request<'static>> {
        let v: &'static Value = Box::leak(Box::new(serde_json::from_str(line).ok()?));
        parse(v.as_object()?)
    }

    #[test]
    fn timeouts_round_up_and_clamp() {
        assert_eq!(seconds_to_ms(0.0), 0);
        assert_eq!(seconds_to_ms(-3.0), 0);
        assert_eq!(seconds_to_ms(0.0001), 1);
        assert_eq!(seconds_to_ms(1.5), 1500);
        assert_eq!(seconds_to_ms(2.0), 2000);
        assert_eq!(seconds_to_ms(1e12), u32::MAX);
    }

    #[test]
    fn requests() {
        assert_eq!(
            req(r#"{"command":"lock","name":"a","timeout":0.25,"queue_max":2}"#),
            Some(Request::Lock {
                name: "a",
                wait: Some(250),
                queue_max: Some(2)
            })
        );
        assert_eq!(
            req(r#"{"command":"lock","name":"a","timeout":null}"#),
            Some(Request::Lock {
                name: "a",
                wait: None,
                queue_max: None
            })
        );
        assert_eq!(
            req(r#"{"command":"unlock","name":"a b"}"#),
            Some(Request::Unlock { name: "a b" })
        );
        assert_eq!(req(r#"{"command":"keep_alive"}"#), Some(Request::KeepAlive));
        for bad in [
            r#"{"command":"lock"}"#,
            r#"{"command":"lock","name":""}"#,
            r#"{"command":"lock","name":5}"#,
            r#"{"command":"lock","name":"a","timeout":"1"}"#,
            r#"{"command":"lock","name":"a","queue_max":0}"#,
            r#"{"command":"lock","name":"a","queue_max":1.5}"#,
            r#"{"command":"unlock"}"#,
            r#"{"command":"nope"}"#,
            r#"{"name":"a"}"#,
            r#"["lock"]"#,
            r#"{"command":5}"#,
        ] {
            assert_eq!(req(bad), None, "{bad}");
        }
    }
}
