//! The lockd / glockd protocol (`shared/spec/compat.md`, "lockd / glockd").
//!
//! # Wire
//! A request is a line: a word, then optionally one space and a lock name that runs to
//! the end of the line (it may be empty and may contain spaces). `\n` or `\r\n` ends
//! it; replies end with `\n`. Words are case-sensitive: `g r i sg sr si d sd dump me
//! iam who q`. An unknown word gets no reply and counts in `invalid_commands`; an empty
//! line is ignored (not counted). Every request is answered at once, in order, so
//! pipelined requests work. A line longer than `--max-line` bytes closes the connection
//! (lockd has no error reply, and silently dropping it would hang the client).
//!
//! # Mapping onto the engine
//! lockd is try-lock only: every acquire is `wait = 0`, no hold deadline, no queue
//! limit, with an empty tag, so the engine never sends this codec an event.
//!
//! - **Exclusive** `g NAME` is an exclusive claim on the engine name [`engine_name`]`(NAME)`:
//!   the name itself for ordinary names, so a lockd `g x`, a native `LOCK x` and an officer
//!   `lock x` exclude each other (one lock box while migrating).
//! - **Shared** `sg NAME` is a shared claim (no cap) on [`SHARED_PREFIX`]` + `[`engine_name`]`(NAME)`,
//!   e.g. `%shared:x`; lockd's two namespaces never collide (see below), and native
//!   clients see lockd's shared locks under that prefix in `LIST`.
//! - **Name escaping.** Engine names are 1 to 255 bytes without controls, space or DEL;
//!   lockd names are anything but `\n`. [`engine_name`] writes each byte `0x00..=0x20`,
//!   `0x7F` and `%` as `%XX` (uppercase hex) and leaves every other byte alone; the empty
//!   name becomes `%`. So `job 1` is `job%201` in `LIST`, and `50%` is `50%25`. The
//!   mapping is injective, and no image starts with `%s`, so exclusive and shared names
//!   cannot meet. A name whose image is over 255 bytes cannot be locked: `g` and `sg`
//!   answer `0 ... Get Failure`, `r`/`sr` fail, `i`/`si` say not locked.
//! - **Re-get.** `g` of a lock this connection holds succeeds without a second claim;
//!   `sg` of a shared lock it holds answers the current count without adding to it.
//! - **Views** (`i si d sd dump q`) see every engine lock whose name is the image of
//!   some lockd name: exclusive views show names outside the shared prefix (locks
//!   taken by native or officer clients included), shared views the prefixed ones.
//!   `i NAME` says locked when the engine name has any hold (so exactly when `g` by
//!   another connection would fail). `d`/`sd` print one `NAME: HOLDER` line per hold in
//!   grant order (by fencing token, across names when no name is given), HOLDER being
//!   the client's registered name or else its `ip:port`. `dump` prints a JSON object
//!   sorted by name, name -> `ip:port` of the first holder (`dump shared`: name -> list
//!   of `ip:port`s in grant order), as the original printed its raw maps.
//! - **Registry.** `iam NAME` sets the engine's client name (shared with the native
//!   `NAME` verb, so native names show in `who` and `d` too); bare `iam` clears it.
//!   `who [NAME]` lists named clients sorted by address.
//! - **Counters** ([`Counters`], in [`super::Stats`]): per-command counts (counted even
//!   when the feature is disabled), `invalid_commands`, `orphans` and `shared_orphans`
//!   (holds a closing connection still had, counted in [`Session::on_close`]). `q`
//!   prints them with `connections` (every live connection of the lock box, all
//!   protocols), `locks` and `shared_locks` (names held in each view), sorted by key.
//!   As in the original, `command_me`, `command_iam` and `command_who` appear only once
//!   used; the other ten are always printed.
//! - **Flags.** `--lockd-no-dump` answers `d`, `sd`, `dump` and `who` with `0 disabled`;
//!   `--lockd-no-registry` answers `me`, `iam` and `who` with `0 disabled`.
//!
//! # Deviations from glockd
//! - Replies end with `\n` only (glockd ended some with `\r\n`).
//! - The name is the rest of the line as sent; glockd trimmed it and collapsed runs of
//!   whitespace.
//! - `sg` can fail (`0 Shared Lock Get Failure: NAME`) where glockd always succeeded: for
//!   a name over the length limit, past `--max-pending`, or when a native client holds or
//!   waits for the prefixed name exclusively.
//! - `me` is part of the registry and disabled with it (glockd always answered it).
//! - `dump` is JSON (glockd printed Go's `map[...]` syntax); the blank line is not
//!   counted as an invalid command.

use super::{frame_line, push_addr, push_label, push_u64, Ctx, Line, Progress};
use crate::config::Config;
use crate::engine::{AcquireRequest, Acquired, ClientId, Engine, Event};
use crate::table::Mode;
use memchr::memchr;
use std::io::Write;

/// Engine-name prefix of lockd's shared namespace.
pub const SHARED_PREFIX: &[u8] = b"%shared:";

/// Longest engine name, in bytes.
pub const MAX_ENGINE_NAME: usize = 255;

/// The lockd commands, in `q` order of their `command_<word>` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `d [NAME]`: exclusive holders.
    Dump,
    /// `dump [shared]`: JSON of a namespace.
    FullDump,
    /// `g NAME`: try to lock.
    Get,
    /// `i NAME`: is it locked?
    Inspect,
    /// `iam [NAME]`: set or clear this connection's name.
    Iam,
    /// `me`: this connection's address and name.
    Me,
    /// `q`: counters.
    Stats,
    /// `r NAME`: release.
    Release,
    /// `sd [NAME]`: shared holders.
    SharedDump,
    /// `sg NAME`: take a shared lock.
    SharedGet,
    /// `si NAME`: how many hold the shared lock?
    SharedInspect,
    /// `sr NAME`: release a shared lock.
    SharedRelease,
    /// `who [NAME]`: named clients.
    Who,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 13] = [
        Verb::Dump,
        Verb::FullDump,
        Verb::Get,
        Verb::Inspect,
        Verb::Iam,
        Verb::Me,
        Verb::Stats,
        Verb::Release,
        Verb::SharedDump,
        Verb::SharedGet,
        Verb::SharedInspect,
        Verb::SharedRelease,
        Verb::Who,
    ];

    /// The word on the wire (and in `command_<word>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Dump => "d",
            Verb::FullDump => "dump",
            Verb::Get => "g",
            Verb::Inspect => "i",
            Verb::Iam => "iam",
            Verb::Me => "me",
            Verb::Stats => "q",
            Verb::Release => "r",
            Verb::SharedDump => "sd",
            Verb::SharedGet => "sg",
            Verb::SharedInspect => "si",
            Verb::SharedRelease => "sr",
            Verb::Who => "who",
        }
    }

    /// The verb for a (case-sensitive) word.
    pub fn from_word(word: &[u8]) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str().as_bytes() == word)
    }

    /// glockd printed these counters in `q` even before first use.
    fn always_in_stats(self) -> bool {
        !matches!(self, Verb::Me | Verb::Iam | Verb::Who)
    }
}

/// lockd's server-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests per verb (indexed by [`Verb`]).
    pub commands: [u64; Verb::ALL.len()],
    /// Lines whose word is no lockd command.
    pub invalid_commands: u64,
    /// Exclusive holds released because their connection closed.
    pub orphans: u64,
    /// Shared holds released because their connection closed.
    pub shared_orphans: u64,
}

/// An engine name built on the stack: at most [`MAX_ENGINE_NAME`] bytes.
#[derive(Clone, Copy)]
pub struct EngineName {
    buf: [u8; MAX_ENGINE_NAME],
    len: usize,
}

impl EngineName {
    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) -> Option<()> {
        *self.buf.get_mut(self.len)? = b;
        self.len += 1;
        Some(())
    }
}

impl std::fmt::Debug for EngineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// True for a byte [`engine_name`] writes as `%XX`.
fn needs_escape(b: u8) -> bool {
    b <= b' ' || b == 0x7f || b == b'%'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `prefix` followed by the escaped `name` (see the module doc), or `None` when that
/// is longer than [`MAX_ENGINE_NAME`] bytes. `prefix` must itself be a valid name part.
pub fn engine_name(prefix: &[u8], name: &[u8]) -> Option<EngineName> {
    let mut n = EngineName {
        buf: [0; MAX_ENGINE_NAME],
        len: 0,
    };
    for &b in prefix {
        n.push(b)?;
    }
    if name.is_empty() {
        n.push(b'%')?;
    }
    for &b in name {
        if needs_escape(b) {
            n.push(b'%')?;
            n.push(HEX[usize::from(b >> 4)])?;
            n.push(HEX[usize::from(b & 15)])?;
        } else {
            n.push(b)?;
        }
    }
    Some(n)
}

/// The name whose [`engine_name`] (without prefix) is `escaped`, if there is one.
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

/// Which of lockd's namespaces an engine name is in, with its lockd name.
fn classify(name: &[u8]) -> Option<(bool, Vec<u8>)> {
    match name.strip_prefix(SHARED_PREFIX) {
        Some(rest) => wire_name(rest).map(|n| (true, n)),
        None => wire_name(name).map(|n| (false, n)),
    }
}

/// Per-connection state.
#[derive(Debug)]
pub struct Session {
    max_line: usize,
    dump: bool,
    registry: bool,
}

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: &Config) -> Self {
        Session {
            max_line: cfg.max_line,
            dump: cfg.lockd_dump,
            registry: cfg.lockd_registry,
        }
    }

    /// Decodes and handles at most one request line.
    pub fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        match frame_line(input, self.max_line) {
            Line::Incomplete => Progress::Incomplete,
            // lockd has no error reply: a silent drop would leave the client waiting.
            Line::TooLong(_, consumed) => {
                log::debug!(
                    "lockd client {}: line over {} bytes, closing",
                    cx.client,
                    self.max_line
                );
                Progress::Close(consumed)
            }
            Line::Complete(line, consumed) => {
                self.handle(line, cx);
                Progress::Consumed(consumed)
            }
        }
    }

    /// lockd never waits and never sets a hold deadline, so no event concerns it.
    pub fn encode_event(&mut self, event: &Event, _engine: &Engine, _out: &mut Vec<u8>) {
        log::debug!("lockd: unexpected event {event:?}");
    }

    /// The connection is closing: its remaining holds are orphans.
    pub fn on_close(&mut self, cx: &mut Ctx) {
        let (mut exclusive, mut shared) = (0, 0);
        for h in cx.engine.holds_of(cx.client) {
            if h.shared {
                shared += 1;
            } else {
                exclusive += 1;
            }
        }
        cx.stats.lockd.orphans += exclusive;
        cx.stats.lockd.shared_orphans += shared;
    }

    fn handle(&mut self, line: &[u8], cx: &mut Ctx) {
        if line.is_empty() {
            return;
        }
        let (word, arg) = match memchr(b' ', line) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let Some(verb) = Verb::from_word(word) else {
            cx.stats.lockd.invalid_commands += 1;
            log::debug!(
                "lockd client {}: invalid command {:?}",
                cx.client,
                String::from_utf8_lossy(word)
            );
            return;
        };
        cx.stats.lockd.commands[verb as usize] += 1;
        let disabled = match verb {
            Verb::Dump | Verb::SharedDump | Verb::FullDump => !self.dump,
            Verb::Me | Verb::Iam => !self.registry,
            Verb::Who => !(self.dump && self.registry),
            _ => false,
        };
        if disabled {
            cx.out.extend_from_slice(b"0 disabled\n");
            return;
        }
        match verb {
            Verb::Get => get(cx, arg),
            Verb::Release => {
                let ok = engine_name(b"", arg).is_some_and(|n| {
                    cx.engine
                        .release(cx.client, n.as_bytes(), None, cx.now)
                        .is_ok()
                });
                let text = if ok {
                    "Lock Release Success"
                } else {
                    "Lock Release Failure"
                };
                answer(cx.out, u64::from(ok), text, arg);
            }
            Verb::Inspect => {
                let locked = engine_name(b"", arg).is_some_and(|n| holders(cx.engine, &n) > 0);
                let text = if locked {
                    "Lock Is Locked"
                } else {
                    "Lock Not Locked"
                };
                answer(cx.out, u64::from(locked), text, arg);
            }
            Verb::SharedGet => shared_get(cx, arg),
            Verb::SharedRelease => {
                let ok = engine_name(SHARED_PREFIX, arg).is_some_and(|n| {
                    cx.engine
                        .release(cx.client, n.as_bytes(), None, cx.now)
                        .is_ok()
                });
                let text = if ok {
                    "Shared Lock Release Success"
                } else {
                    "Shared Lock Release Failure"
                };
                answer(cx.out, u64::from(ok), text, arg);
            }
            Verb::SharedInspect => {
                let n = engine_name(SHARED_PREFIX, arg).map_or(0, |n| holders(cx.engine, &n));
                let text = if n > 0 {
                    "Shared Lock Is Locked"
                } else {
                    "Shared Lock Not Locked"
                };
                answer(cx.out, u64::from(n), text, arg);
            }
            Verb::Dump => write_holders(cx, false, arg),
            Verb::SharedDump => write_holders(cx, true, arg),
            Verb::FullDump => write_json_dump(cx, arg == b"shared"),
            Verb::Me => {
                cx.out.extend_from_slice(b"1 ");
                if let Some(c) = cx.engine.client(cx.client) {
                    let _ = write!(cx.out, "{}", c.addr());
                    cx.out.push(b' ');
                    push_label(cx.out, cx.engine, cx.client);
                }
                cx.out.push(b'\n');
            }
            Verb::Iam => {
                let name = (!arg.is_empty()).then_some(arg);
                cx.engine.set_name(cx.client, name);
                cx.out.extend_from_slice(b"1 ok\n");
            }
            Verb::Who => write_who(cx, arg),
            Verb::Stats => write_stats(cx),
        }
    }
}

/// `<n> <text>: <name>\n`.
fn answer(out: &mut Vec<u8>, n: u64, text: &str, name: &[u8]) {
    push_u64(out, n);
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(name);
    out.push(b'\n');
}

/// Holds on an engine name.
fn holders(engine: &Engine, name: &EngineName) -> u32 {
    engine
        .inspect(name.as_bytes())
        .map_or(0, |(info, _)| info.holders)
}

fn get(cx: &mut Ctx, arg: &[u8]) {
    let ok = match engine_name(b"", arg) {
        None => false,
        Some(n) => {
            let mine = matches!(cx.engine.inspect(n.as_bytes()), Some((_, Some(h))) if h.client == cx.client);
            mine || {
                let req = AcquireRequest {
                    name: n.as_bytes(),
                    mode: Mode::Exclusive,
                    wait: Some(0),
                    hold: None,
                    queue: None,
                };
                matches!(
                    cx.engine.acquire(cx.client, b"", &req, cx.now),
                    Acquired::Granted { .. }
                )
            }
        }
    };
    let text = if ok {
        "Lock Get Success"
    } else {
        "Lock Get Failure"
    };
    answer(cx.out, u64::from(ok), text, arg);
}

fn shared_get(cx: &mut Ctx, arg: &[u8]) {
    let count = engine_name(SHARED_PREFIX, arg).and_then(|n| {
        let me = cx.client;
        if cx.engine.holds_on(n.as_bytes()).any(|(_, c)| c == me) {
            return Some(holders(cx.engine, &n));
        }
        let req = AcquireRequest {
            name: n.as_bytes(),
            mode: Mode::Shared { max: 0 },
            wait: Some(0),
            hold: None,
            queue: None,
        };
        match cx.engine.acquire(me, b"", &req, cx.now) {
            Acquired::Granted { holders, .. } => Some(holders),
            _ => None,
        }
    });
    match count {
        Some(n) => answer(cx.out, u64::from(n), "Shared Lock Get Success", arg),
        None => answer(cx.out, 0, "Shared Lock Get Failure", arg),
    }
}

/// The client's registered name, or its `ip:port`.
/// `d` / `sd`: `NAME: HOLDER` per hold, in grant order.
fn write_holders(cx: &mut Ctx, shared: bool, arg: &[u8]) {
    let prefix: &[u8] = if shared { SHARED_PREFIX } else { b"" };
    // (token, lockd name, client); introspection, so a list is fine.
    let mut rows: Vec<(u64, Vec<u8>, ClientId)> = Vec::new();
    if arg.is_empty() {
        for (name, _) in cx.engine.locks() {
            let Some((s, wire)) = classify(name) else {
                continue;
            };
            if s != shared {
                continue;
            }
            for (token, client) in cx.engine.holds_on(name) {
                rows.push((token, wire.clone(), client));
            }
        }
        rows.sort_unstable_by_key(|r| r.0);
    } else if let Some(n) = engine_name(prefix, arg) {
        rows.extend(
            cx.engine
                .holds_on(n.as_bytes())
                .map(|(token, client)| (token, arg.to_vec(), client)),
        );
    }
    for (_, name, client) in rows {
        cx.out.extend_from_slice(&name);
        cx.out.extend_from_slice(b": ");
        push_label(cx.out, cx.engine, client);
        cx.out.push(b'\n');
    }
}

/// A JSON string (lossy UTF-8).
fn push_json_str(out: &mut Vec<u8>, s: &[u8]) {
    let s = String::from_utf8_lossy(s);
    serde_json::to_writer(&mut *out, &*s).expect("writing JSON to a Vec cannot fail");
}

/// `dump` / `dump shared`: one JSON object, sorted by name.
fn write_json_dump(cx: &mut Ctx, shared: bool) {
    let mut rows: Vec<(Vec<u8>, &[u8])> = cx
        .engine
        .locks()
        .filter(|(_, info)| info.holders > 0)
        .filter_map(|(name, _)| match classify(name) {
            Some((s, wire)) if s == shared => Some((wire, name)),
            _ => None,
        })
        .collect();
    rows.sort_unstable();
    let out = &mut *cx.out;
    out.push(b'{');
    for (i, (wire, name)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, wire);
        out.push(b':');
        let mut holds = cx.engine.holds_on(name);
        if shared {
            out.push(b'[');
            for (j, (_, client)) in holds.enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                push_addr(out, cx.engine, client);
                out.push(b'"');
            }
            out.push(b']');
        } else {
            out.push(b'"');
            if let Some((_, client)) = holds.next() {
                push_addr(out, cx.engine, client);
            }
            out.push(b'"');
        }
    }
    out.extend_from_slice(b"}\n");
}

/// `who [NAME]`: `ADDR: NAME` for named clients, sorted by address.
fn write_who(cx: &mut Ctx, arg: &[u8]) {
    let mut rows: Vec<(String, &[u8])> = cx
        .engine
        .clients()
        .filter_map(|(_, c, _)| Some((c.addr().to_string(), c.name()?)))
        .filter(|(_, name)| arg.is_empty() || *name == arg)
        .collect();
    rows.sort_unstable();
    for (addr, name) in rows {
        cx.out.extend_from_slice(addr.as_bytes());
        cx.out.extend_from_slice(b": ");
        cx.out.extend_from_slice(name);
        cx.out.push(b'\n');
    }
}

/// `q`: `key: value` lines sorted by key.
fn write_stats(cx: &mut Ctx) {
    let (mut locks, mut shared_locks) = (0u64, 0u64);
    for (name, info) in cx.engine.locks() {
        if info.holders == 0 {
            continue;
        }
        match classify(name) {
            Some((true, _)) => shared_locks += 1,
            Some((false, _)) => locks += 1,
            None => {}
        }
    }
    let c = &cx.stats.lockd;
    let mut rows: Vec<(String, u64)> = Verb::ALL
        .into_iter()
        .map(|v| (v, c.commands[v as usize]))
        .filter(|&(v, n)| v.always_in_stats() || n > 0)
        .map(|(v, n)| (format!("command_{}", v.as_str()), n))
        .collect();
    rows.extend([
        ("connections".to_string(), cx.engine.gauges().0 as u64),
        ("invalid_commands".to_string(), c.invalid_commands),
        ("locks".to_string(), locks),
        ("orphans".to_string(), c.orphans),
        ("shared_locks".to_string(), shared_locks),
        ("shared_orphans".to_string(), c.shared_orphans),
    ]);
    rows.sort_unstable();
    for (key, value) in rows {
        cx.out.extend_from_slice(key.as_bytes());
        cx.out.extend_from_slice(b": ");
        push_u64(cx.out, value);
        cx.out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_keeps_plain_names() {
        for name in [
            &b"x"[..],
            b"",
            b"a b",
            b"50%",
            b"%",
            b"%shared:x",
            b"tab\there",
            b"\x7f\x00",
            "caf\u{e9}".as_bytes(),
            b"%41",
        ] {
            let e = engine_name(b"", name).unwrap();
            assert!(
                crate::proto::native::valid_name(e.as_bytes(), MAX_ENGINE_NAME),
                "{e:?} is no valid engine name"
            );
            assert_eq!(wire_name(e.as_bytes()).as_deref(), Some(name), "{e:?}");
            let s = engine_name(SHARED_PREFIX, name).unwrap();
            assert_eq!(classify(s.as_bytes()), Some((true, name.to_vec())));
            assert_eq!(classify(e.as_bytes()), Some((false, name.to_vec())));
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
        for bad in [
            &b"%41"[..],
            b"50%",
            b"%2",
            b"%g0",
            b"a%20%",
            b"%%",
            b"%20x%",
            b"a b",
            b"",
        ] {
            assert_eq!(wire_name(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(classify(b"%shared"), None);
        assert_eq!(classify(b"%shared:%4"), None);
    }

    #[test]
    fn length_limit() {
        assert!(engine_name(b"", &[b'a'; 255]).is_some());
        assert!(engine_name(b"", &[b'a'; 256]).is_none());
        assert!(engine_name(b"", &[b' '; 85]).is_some());
        assert!(engine_name(b"", &[b' '; 86]).is_none());
        assert!(engine_name(SHARED_PREFIX, &[b'a'; 255 - SHARED_PREFIX.len()]).is_some());
        assert!(engine_name(SHARED_PREFIX, &[b'a'; 256 - SHARED_PREFIX.len()]).is_none());
    }

    #[test]
    fn verbs_are_case_sensitive_words() {
        for v in Verb::ALL {
            assert_eq!(Verb::from_word(v.as_str().as_bytes()), Some(v));
        }
        assert_eq!(Verb::from_word(b"G"), None);
        assert_eq!(Verb::from_word(b""), None);
        assert_eq!(Verb::from_word(b"stats"), None);
    }
}
