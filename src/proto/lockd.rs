//! The lockd / glockd protocol: text lines, try-locks in two namespaces.
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
//! - **Name escaping** ([`super::names`]). Engine names are 1 to 255 bytes without
//!   controls, space or DEL; lockd names are anything but `\n`. [`engine_name`] writes
//!   each byte `0x00..=0x20`, `0x7F` and `%` as `%XX` (uppercase hex) and leaves every
//!   other byte alone; the empty name becomes `%`. So `job 1` is `job%201` in `LIST`, and
//!   `50%` is `50%25`. The mapping is injective, and no image starts with `%s`, so
//!   exclusive and shared names cannot meet. A name whose image is over 255 bytes cannot
//!   be locked: `g` and `sg` answer `0 ... Get Failure`, `r`/`sr` fail, `i`/`si` say not
//!   locked.
//! - **Re-get.** `g` of a lock this connection holds succeeds without a second claim;
//!   `sg` of a shared lock it holds answers the current count without adding to it.
//! - **Views** (`i si d sd dump q`) see every engine lock whose name is the image of
//!   some lockd name: exclusive views show names outside the shared prefix (locks
//!   taken by native or officer clients included), shared views the prefixed ones.
//!   `i NAME` says locked when the engine name has any hold (so exactly when `g` by
//!   another connection would fail). `d`/`sd` print one `NAME: HOLDER` line per hold,
//!   HOLDER being the client's registry name or else its `ip:port`. Bare `d` (no space
//!   after the word) lists every hold of the namespace; `d NAME` only NAME's holders,
//!   also when NAME is empty (`d ` with its space lists the holder of the empty-named
//!   lock that `g ` takes), in grant order when there are at most [`INLINE_HOLDERS`].
//!   `dump` prints one JSON object, name -> `ip:port` of the first holder (`dump
//!   shared`: name -> list of `ip:port`s in grant order, at most [`DUMP_HOLDERS_CAP`]),
//!   as the original printed its raw maps.
//! - **Listings.** `q`, bare `d`/`sd`, `d NAME` on a lock with more than
//!   [`INLINE_HOLDERS`] holders, `dump` and `who` cover the whole table or every
//!   connection, so they are written a batch at a time ([`super::listing`]), in order
//!   all the same: `d` / `sd` in grant order (by fencing token), `dump` by name, `who`
//!   by address; each hold, lock or client that lasts the whole listing exactly once,
//!   one created or removed meanwhile may or may not be listed, a `dump` key never
//!   twice. The connection's next request is read once the listing is written.
//! - **Registry.** `iam NAME` (NAME not empty) records NAME in the session, exactly as
//!   sent; `iam` and `iam ` clear it. The engine's client name, which the native protocol
//!   prints raw in `CLIENTS`, `WHOAMI` and `INSPECT owner=`, must stay a valid native
//!   client name (1 to 64 bytes, no controls, space or DEL), so it is set to
//!   [`client_name`]`(NAME)`: NAME escaped as lock names are (`the boss` is
//!   `the%20boss`), or no name at all (native shows the `ip:port`) when the escaped form
//!   is over 64 bytes. lockd shows registry names unescaped: its own connection's from
//!   the session (so `me`, `who`, `d` and `sd` of that connection show NAME exactly,
//!   whatever its length), another connection's by decoding its engine name (exact for
//!   names set through lockd; a native `NAME` that happens to be an escape image, like
//!   `a%20b`, shows decoded as `a b`). A name over the limit is therefore seen by other
//!   connections as the `ip:port`. `who [NAME]` lists named clients sorted by address;
//!   an empty NAME lists them all (no registry name is empty).
//! - **Counters** ([`Tally`], in [`super::Totals`]): per-command counts (counted even
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
//! - `d ` and `sd ` (with the space) list the holders of the empty-named lock; glockd
//!   trimmed the line, so they listed every lock as bare `d` does.
//! - A registry name longer than 64 bytes once escaped is shown only by its own
//!   connection; other connections (lockd `who`, `d`, `sd`, native views) see its
//!   `ip:port`.
//! - `dump` is JSON (glockd printed Go's `map[...]` syntax); the blank line is not
//!   counted as an invalid command.
//! - `dump shared` lists at most [`DUMP_HOLDERS_CAP`] holders per name.

use super::framing::{decode_line, Flow, Lines};
use super::listing::Batch;
use super::names::{client_name, engine_name, holders, wire_name};
use super::{push_addr, push_u64, Ctx, Progress, Protocol, Wire};
use crate::config::Config;
use crate::engine::{AcquireRequest, Acquired, ClientId, Engine, Event, Mode};
use memchr::memchr;
use std::borrow::Cow;

mod listing;

pub use listing::{DUMP_HOLDERS_CAP, INLINE_HOLDERS};

/// Engine-name prefix of lockd's shared namespace.
pub const SHARED_PREFIX: &[u8] = b"%shared:";

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
    Query,
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
        Verb::Query,
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
            Verb::Query => "q",
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

/// lockd's server-wide counters, printed by `q`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests per verb (indexed by [`Verb`]).
    pub commands: [u64; Verb::ALL.len()],
    /// Lines whose word is no lockd command.
    pub invalid_commands: u64,
    /// Exclusive holds released because their connection closed.
    pub orphans: u64,
    /// Shared holds released because their connection closed.
    pub shared_orphans: u64,
}

/// A parsed lockd request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `g NAME` / `sg NAME`: take the exclusive or a shared lock.
    Get {
        /// The shared namespace.
        shared: bool,
        /// The lockd name.
        name: &'a [u8],
    },
    /// `r NAME` / `sr NAME`: release it.
    Release {
        /// The shared namespace.
        shared: bool,
        /// The lockd name.
        name: &'a [u8],
    },
    /// `i NAME` / `si NAME`: is it held?
    Inspect {
        /// The shared namespace.
        shared: bool,
        /// The lockd name.
        name: &'a [u8],
    },
    /// `d [NAME]` / `sd [NAME]`: holders, of every lock when no name was given.
    Holders {
        /// The shared namespace.
        shared: bool,
        /// `None`: no space after the word; `Some(b"")`: the empty name.
        name: Option<&'a [u8]>,
    },
    /// `dump [shared]`: the namespace as JSON.
    Dump {
        /// `dump shared`.
        shared: bool,
    },
    /// `me`.
    Me,
    /// `iam [NAME]`: set (or, empty, clear) the registry name.
    Iam {
        /// The name as sent.
        name: &'a [u8],
    },
    /// `who [NAME]`: named clients (all when NAME is empty).
    Who {
        /// The name to look for.
        name: &'a [u8],
    },
    /// `q`.
    Query,
}

/// Parses one request line: `Ok(None)` for an empty line, `Err(word)` for a word that
/// is no lockd command.
pub fn parse(line: &[u8]) -> Result<Option<(Verb, Request<'_>)>, &[u8]> {
    if line.is_empty() {
        return Ok(None);
    }
    // `None`: no space after the word (`d`); `Some(b"")`: an explicit empty name (`d `).
    let (word, given) = match memchr(b' ', line) {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let name = given.unwrap_or_default();
    let verb = Verb::from_word(word).ok_or(word)?;
    let request = match verb {
        Verb::Get | Verb::SharedGet => Request::Get {
            shared: verb == Verb::SharedGet,
            name,
        },
        Verb::Release | Verb::SharedRelease => Request::Release {
            shared: verb == Verb::SharedRelease,
            name,
        },
        Verb::Inspect | Verb::SharedInspect => Request::Inspect {
            shared: verb == Verb::SharedInspect,
            name,
        },
        Verb::Dump | Verb::SharedDump => Request::Holders {
            shared: verb == Verb::SharedDump,
            name: given,
        },
        Verb::FullDump => Request::Dump {
            shared: name == b"shared",
        },
        Verb::Me => Request::Me,
        Verb::Iam => Request::Iam { name },
        Verb::Who => Request::Who { name },
        Verb::Query => Request::Query,
    };
    Ok(Some((verb, request)))
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
    lines: Lines,
    dump: bool,
    registry: bool,
    /// The registry name given to `iam`, exactly as sent.
    name: Option<Box<[u8]>>,
    /// `q`, `d`, `sd`, `dump` or `who` in progress.
    listings: listing::Listings,
}

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: &Config) -> Self {
        Session {
            lines: Lines::new(cfg.max_line),
            dump: cfg.lockd_dump,
            registry: cfg.lockd_registry,
            name: None,
            listings: listing::Listings::default(),
        }
    }

    /// Executes one parsed request.
    fn execute(&mut self, verb: Verb, request: Request, cx: &mut Ctx) {
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
        match request {
            Request::Get {
                shared: false,
                name,
            } => get(cx, name),
            Request::Get { shared: true, name } => shared_get(cx, name),
            Request::Release { shared, name } => {
                let ok = engine_name(namespace(shared), name).is_some_and(|n| {
                    cx.engine
                        .release(cx.client, n.as_bytes(), None, cx.now)
                        .is_ok()
                });
                let text = match (shared, ok) {
                    (false, true) => "Lock Release Success",
                    (false, false) => "Lock Release Failure",
                    (true, true) => "Shared Lock Release Success",
                    (true, false) => "Shared Lock Release Failure",
                };
                answer(cx.out, u64::from(ok), text, name);
            }
            Request::Inspect { shared, name } => {
                let n = engine_name(namespace(shared), name)
                    .map_or(0, |n| holders(cx.engine, n.as_bytes()));
                let (text, n) = match (shared, n > 0) {
                    (false, true) => ("Lock Is Locked", 1),
                    (false, false) => ("Lock Not Locked", 0),
                    (true, true) => ("Shared Lock Is Locked", n),
                    (true, false) => ("Shared Lock Not Locked", 0),
                };
                answer(cx.out, u64::from(n), text, name);
            }
            Request::Holders { shared, name } => self.holders(cx, shared, name),
            Request::Dump { shared } => self.listings.start_dump(cx.out, shared),
            Request::Me => {
                cx.out.extend_from_slice(b"1 ");
                push_addr(cx.out, cx.engine, cx.client);
                cx.out.push(b' ');
                let my_name = self.name.as_deref();
                push_label(cx.out, my_name, cx.engine, cx.client, cx.client);
                cx.out.push(b'\n');
            }
            Request::Iam { name } => {
                self.name = (!name.is_empty()).then(|| Box::from(name));
                let engine_name = client_name(name);
                if engine_name.is_none() && !name.is_empty() {
                    log::debug!(
                        "lockd {}: name over the native limit once escaped; \
                         known to this connection only",
                        super::Peer::of(cx.engine, cx.client)
                    );
                }
                cx.engine
                    .set_name(cx.client, engine_name.as_ref().map(|n| n.as_bytes()));
                cx.out.extend_from_slice(b"1 ok\n");
            }
            Request::Who { name } => self.listings.start_who(name),
            Request::Query => self.listings.start_query(),
        }
    }

    /// `d` / `sd`: `NAME: HOLDER` per hold. Bare, every hold of the namespace (listed
    /// a batch at a time); with a name (maybe the empty one), that lock's holds: in
    /// grant order at once when they are few, else listed like bare `d`.
    fn holders(&mut self, cx: &mut Ctx, shared: bool, name: Option<&[u8]>) {
        let Some(arg) = name else {
            return self.listings.start_holders(shared);
        };
        let Some(en) = listing::holders_name(shared, arg) else {
            return;
        };
        if holders(cx.engine, en.as_bytes()) > INLINE_HOLDERS {
            return self.listings.start_holders_of(shared, arg, en);
        }
        let my_name = self.name.as_deref();
        for (_, client) in cx.engine.holds_on(en.as_bytes()) {
            listing::write_holder(cx.out, cx.engine, my_name, cx.client, arg, client);
        }
    }
}

/// Appends `client`'s registry name as lockd shows it, or its `ip:port`. This
/// connection (`me`, whose name given to `iam` is `my_name`) shows its own name exactly
/// as given; another shows its engine name, unescaped when it is the image of a name.
fn push_label(
    out: &mut Vec<u8>,
    my_name: Option<&[u8]>,
    engine: &Engine,
    me: ClientId,
    client: ClientId,
) {
    match registry_name(my_name, engine, me, client) {
        Some(name) => out.extend_from_slice(&name),
        None => push_addr(out, engine, client),
    }
}

/// `client`'s registry name (see [`push_label`]), if it has one.
fn registry_name<'e>(
    my_name: Option<&'e [u8]>,
    engine: &'e Engine,
    me: ClientId,
    client: ClientId,
) -> Option<Cow<'e, [u8]>> {
    if client == me {
        return my_name.map(Cow::Borrowed);
    }
    let name = engine.client(client)?.name()?;
    Some(match wire_name(name) {
        Some(plain) if !plain.is_empty() => Cow::Owned(plain),
        _ => Cow::Borrowed(name),
    })
}

impl Wire for Session {
    /// Decodes and executes at most one request line.
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        // lockd has no error reply for a line too long: closing beats a silent drop,
        // which would leave the client waiting.
        decode_line(
            Protocol::Lockd,
            self.lines.frame(input),
            cx,
            |_, _| {},
            |line, cx| {
                match parse(line) {
                    Ok(Some((verb, request))) => self.execute(verb, request, cx),
                    Ok(None) => {}
                    Err(word) => {
                        cx.stats.lockd.invalid_commands += 1;
                        log::debug!(
                            "lockd {}: invalid command {:?}",
                            super::Peer::of(cx.engine, cx.client),
                            String::from_utf8_lossy(word)
                        );
                    }
                }
                Flow::Continue
            },
        )
    }

    fn listing(&self) -> bool {
        self.listings.active()
    }

    fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        self.listings.proceed(cx, batch, self.name.as_deref())
    }

    /// lockd never waits and never sets a hold deadline, so no event concerns it.
    fn encode_event(&mut self, event: &Event, _engine: &Engine, _out: &mut Vec<u8>) {
        log::debug!("lockd: unexpected event {event:?}");
    }

    /// The connection is closing: its remaining holds are orphans.
    fn on_close(&mut self, cx: &mut Ctx) {
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
}

/// The engine-name prefix of a namespace.
fn namespace(shared: bool) -> &'static [u8] {
    if shared {
        SHARED_PREFIX
    } else {
        b""
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
            return Some(holders(cx.engine, n.as_bytes()));
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

/// `q`: `key: value` lines sorted by key; `locks` and `shared_locks` are the held
/// locks of each namespace, counted by a scan of the table.
fn write_stats(cx: &mut Ctx, locks: u64, shared_locks: u64) {
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
    use crate::proto::native::MAX_NAME;

    #[test]
    fn namespaces_never_meet() {
        for name in crate::proto::names::SAMPLE_NAMES {
            let e = engine_name(b"", name).unwrap();
            let s = engine_name(SHARED_PREFIX, name).unwrap();
            assert_eq!(classify(s.as_bytes()), Some((true, name.to_vec())));
            assert_eq!(classify(e.as_bytes()), Some((false, name.to_vec())));
        }
        assert_eq!(classify(b"%shared"), None);
        assert_eq!(classify(b"%shared:%4"), None);
        assert_eq!(classify(b"a b"), None, "no image: not a lockd name");
    }

    #[test]
    fn shared_names_leave_room_for_the_prefix() {
        let fits = MAX_NAME - SHARED_PREFIX.len();
        assert!(engine_name(SHARED_PREFIX, &vec![b'a'; fits]).is_some());
        assert!(engine_name(SHARED_PREFIX, &vec![b'a'; fits + 1]).is_none());
    }

    #[test]
    fn parse_types_requests_and_keeps_the_rest_of_the_line() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"G x"), Err(&b"G"[..]));
        assert_eq!(
            parse(b"sg a b "),
            Ok(Some((
                Verb::SharedGet,
                Request::Get {
                    shared: true,
                    name: b"a b "
                }
            )))
        );
        assert_eq!(
            parse(b"d"),
            Ok(Some((
                Verb::Dump,
                Request::Holders {
                    shared: false,
                    name: None
                }
            )))
        );
        assert_eq!(
            parse(b"sd "),
            Ok(Some((
                Verb::SharedDump,
                Request::Holders {
                    shared: true,
                    name: Some(b"")
                }
            )))
        );
        assert_eq!(
            parse(b"dump shared"),
            Ok(Some((Verb::FullDump, Request::Dump { shared: true })))
        );
        assert_eq!(parse(b"q"), Ok(Some((Verb::Query, Request::Query))));
        assert_eq!(
            parse(b"iam"),
            Ok(Some((Verb::Iam, Request::Iam { name: b"" })))
        );
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
