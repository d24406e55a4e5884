//! lockd's table-wide views written a batch at a time ([`crate::proto::listing`]):
//! `q` (its counts of held locks), bare `d` / `sd` (every hold of a namespace), `d NAME`
//! / `sd NAME` on a lock with many holders, `dump` / `dump shared` (one JSON object)
//! and `who`.
//!
//! # Invariants
//! - Rows come in slot order: `d` / `sd` in claim-slot order (a hold is listed once,
//!   as long as it lasts the whole listing), `dump` and `q` in lock-slot order, `who`
//!   in connection order.
//! - `dump shared` lists at most [`DUMP_HOLDERS_CAP`] holders per name, so one entry
//!   is bounded whatever other clients do.
//! - `q` counts what its scan saw; its lines are written at the end, in key order.

use super::{classify, engine_name, namespace, push_label, registry_name, write_stats};
use crate::engine::{ClientId, Cursor, Engine, Scan};
use crate::proto::json::{push_quoted_addr, push_str};
use crate::proto::listing::Batch;
use crate::proto::names::EngineName;
use crate::proto::Ctx;

/// `dump shared` lists at most this many holders (in grant order) per name.
pub const DUMP_HOLDERS_CAP: usize = 100;

/// `d NAME` / `sd NAME` on a lock with at most this many holders is answered at once,
/// in grant order; with more, it is listed a batch at a time like bare `d`.
pub const INLINE_HOLDERS: u32 = 256;

/// What is being listed.
#[derive(Debug)]
enum Kind {
    /// `q`: held locks counted so far, per namespace.
    Query { locks: u64, shared_locks: u64 },
    /// `d` / `sd`: holds of the namespace, or (`only`) of the engine name kept in the
    /// session's `en` (the lockd name as sent is its `arg`).
    Holders { shared: bool, only: bool },
    /// `dump` / `dump shared`: `{` is written; `first` until an entry is.
    Dump { shared: bool, first: bool },
    /// `who [NAME]`: the name to match is the session's `arg` (empty: everyone).
    Who,
}

/// A lockd session's listing state.
#[derive(Debug, Default)]
pub struct Listings {
    current: Option<(Kind, Cursor)>,
    /// The name argument of `d NAME` / `who NAME`; kept (cleared) between listings.
    arg: Vec<u8>,
    /// The engine name of `d NAME`; kept (cleared) between listings.
    en: Vec<u8>,
}

impl Listings {
    /// True while a listing is in progress.
    pub fn active(&self) -> bool {
        self.current.is_some()
    }

    fn start(&mut self, kind: Kind) {
        debug_assert!(self.current.is_none(), "a listing is already in progress");
        self.current = Some((kind, Cursor::default()));
    }

    /// Starts `q`.
    pub fn start_query(&mut self) {
        self.start(Kind::Query {
            locks: 0,
            shared_locks: 0,
        });
    }

    /// Starts bare `d` / `sd`.
    pub fn start_holders(&mut self, shared: bool) {
        self.start(Kind::Holders {
            shared,
            only: false,
        });
    }

    /// Starts `d NAME` / `sd NAME` for a lock with many holders: `arg` is the name as
    /// sent, `en` its engine name.
    pub fn start_holders_of(&mut self, shared: bool, arg: &[u8], en: EngineName) {
        self.arg.clear();
        self.arg.extend_from_slice(arg);
        self.en.clear();
        self.en.extend_from_slice(en.as_bytes());
        self.start(Kind::Holders { shared, only: true });
    }

    /// Starts `dump` / `dump shared`: writes the `{`.
    pub fn start_dump(&mut self, out: &mut Vec<u8>, shared: bool) {
        out.push(b'{');
        self.start(Kind::Dump {
            shared,
            first: true,
        });
    }

    /// Starts `who [NAME]`.
    pub fn start_who(&mut self, arg: &[u8]) {
        self.arg.clear();
        self.arg.extend_from_slice(arg);
        self.start(Kind::Who);
    }

    /// Writes one batch; the listing's end once the scan is done. `my_name` is this
    /// connection's registry name, as given to `iam`.
    pub fn proceed(&mut self, cx: &mut Ctx, batch: Batch, my_name: Option<&[u8]>) {
        let Some((kind, cursor)) = self.current.as_mut() else {
            return;
        };
        let me = cx.client;
        let (engine, out) = (&*cx.engine, &mut *cx.out);
        let stop = batch.stop_at(out.len());
        let (arg, en) = (&self.arg[..], &self.en[..]);
        let scan = match kind {
            Kind::Query {
                locks,
                shared_locks,
            } => engine.scan_locks(cursor, batch.slots, |(name, info)| {
                if info.holders > 0 {
                    match classify(name) {
                        Some((true, _)) => *shared_locks += 1,
                        Some((false, _)) => *locks += 1,
                        None => {}
                    }
                }
                true
            }),
            Kind::Holders { shared, only } => engine.scan_holds(cursor, batch.slots, |h| {
                let wire;
                let name = match only {
                    true if h.name == en => arg,
                    true => return true,
                    false => match classify(h.name) {
                        Some((s, w)) if s == *shared => {
                            wire = w;
                            &wire[..]
                        }
                        _ => return true,
                    },
                };
                write_holder(out, engine, my_name, me, name, h.client);
                out.len() < stop
            }),
            Kind::Dump { shared, first } => {
                engine.scan_locks(cursor, batch.slots, |(name, info)| {
                    if info.holders == 0 {
                        return true;
                    }
                    let wire = match classify(name) {
                        Some((s, wire)) if s == *shared => wire,
                        _ => return true,
                    };
                    if !std::mem::take(first) {
                        out.push(b',');
                    }
                    push_str(out, &wire);
                    out.push(b':');
                    let mut holds = engine.holds_on(name).map(|(_, client)| client);
                    if *shared {
                        out.push(b'[');
                        for (i, client) in holds.take(DUMP_HOLDERS_CAP).enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            push_quoted_addr(out, engine, client);
                        }
                        out.push(b']');
                    } else if let Some(client) = holds.next() {
                        push_quoted_addr(out, engine, client);
                    } else {
                        out.extend_from_slice(b"\"\"");
                    }
                    out.len() < stop
                })
            }
            Kind::Who => engine.scan_clients(cursor, batch.slots, |(id, c, _)| {
                let Some(name) = registry_name(my_name, engine, me, id) else {
                    return true;
                };
                if !arg.is_empty() && *name != *arg {
                    return true;
                }
                let _ = std::io::Write::write_fmt(out, format_args!("{}", c.addr()));
                out.extend_from_slice(b": ");
                out.extend_from_slice(&name);
                out.push(b'\n');
                out.len() < stop
            }),
        };
        if scan == Scan::More {
            return;
        }
        match self.current.take() {
            Some((
                Kind::Query {
                    locks,
                    shared_locks,
                },
                _,
            )) => write_stats(cx, locks, shared_locks),
            Some((Kind::Dump { .. }, _)) => cx.out.extend_from_slice(b"}\n"),
            _ => {}
        }
    }
}

/// `NAME: HOLDER`.
pub fn write_holder(
    out: &mut Vec<u8>,
    engine: &Engine,
    my_name: Option<&[u8]>,
    me: ClientId,
    name: &[u8],
    client: ClientId,
) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    push_label(out, my_name, engine, me, client);
    out.push(b'\n');
}

/// The engine name of `d NAME` / `sd NAME`, when NAME has one.
pub fn holders_name(shared: bool, arg: &[u8]) -> Option<EngineName> {
    engine_name(namespace(shared), arg)
}
