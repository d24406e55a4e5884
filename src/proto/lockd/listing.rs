//! lockd's table-wide views written a batch at a time ([`crate::proto::listing`]):
//! `q` (its counts of held locks), bare `d` / `sd` (every hold of a namespace), `d NAME`
//! / `sd NAME` on a lock with many holders, `dump` / `dump shared` (one JSON object)
//! and `who`.
//!
//! # Invariants
//! - Rows come in order, through the session's [`Sorted`]: `d` / `sd` in grant order
//!   (by fencing token: tokens grow with every grant), `dump` by lockd name, `who` by
//!   address (as text). A hold, lock or client that lasts the whole listing is listed
//!   exactly once; a name is never a repeated `dump` key.
//! - `dump shared` lists at most [`DUMP_HOLDERS_CAP`] holders per name, so one entry
//!   is bounded whatever other clients do.
//! - `q` counts what its scan saw; its lines are written at the end, in key order.

use super::{classify, engine_name, namespace, push_label, registry_name, write_stats};
use crate::engine::{ClientId, Cursor, Engine, Scan};
use crate::proto::json::{push_quoted_addr, push_str};
use crate::proto::listing::{Batch, Rows, Sorted};
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
    /// The sort buffer of `d`, `sd`, `dump` and `who`; kept between listings.
    sorted: Sorted,
}

impl Listings {
    /// True while a listing is in progress.
    pub fn active(&self) -> bool {
        self.current.is_some()
    }

    fn start(&mut self, kind: Kind) {
        debug_assert!(self.current.is_none(), "a listing is already in progress");
        self.sorted.start();
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
            Kind::Holders { shared, only } => {
                let scan = |cursor: &mut Cursor, slots, rows: &mut Rows| {
                    engine.scan_holds(cursor, slots, |h| {
                        let key = h.token.to_be_bytes();
                        if !rows.wants(&key) {
                            return true;
                        }
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
                        rows.add(&key, |row| {
                            write_holder(row, engine, my_name, me, name, h.client)
                        });
                        true
                    })
                };
                let write = |out: &mut Vec<u8>, row: &[u8]| out.extend_from_slice(row);
                sorted(self.sorted.proceed(out, batch, scan, write))
            }
            Kind::Dump { shared, first } => {
                let shared = *shared;
                let scan = |cursor: &mut Cursor, slots, rows: &mut Rows| {
                    engine.scan_locks(cursor, slots, |(name, info)| {
                        if info.holders == 0 {
                            return true;
                        }
                        let wire = match classify(name) {
                            Some((s, wire)) if s == shared => wire,
                            _ => return true,
                        };
                        rows.add(&wire, |row| {
                            write_dump_entry(row, engine, shared, &wire, name)
                        });
                        true
                    })
                };
                let write = |out: &mut Vec<u8>, row: &[u8]| {
                    if !std::mem::take(first) {
                        out.push(b',');
                    }
                    out.extend_from_slice(row);
                };
                sorted(self.sorted.proceed(out, batch, scan, write))
            }
            Kind::Who => {
                let scan = |cursor: &mut Cursor, slots, rows: &mut Rows| {
                    engine.scan_clients(cursor, slots, |(id, c, _)| {
                        let Some(name) = registry_name(my_name, engine, me, id) else {
                            return true;
                        };
                        if !arg.is_empty() && *name != *arg {
                            return true;
                        }
                        let mut addr = [0u8; ADDR_BYTES];
                        let addr = format_addr(&mut addr, c.addr());
                        rows.add_prefixed(addr, |row| {
                            row.extend_from_slice(addr);
                            row.extend_from_slice(b": ");
                            row.extend_from_slice(&name);
                            row.push(b'\n');
                        });
                        true
                    })
                };
                let write = |out: &mut Vec<u8>, row: &[u8]| out.extend_from_slice(row);
                sorted(self.sorted.proceed(out, batch, scan, write))
            }
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

/// [`Scan::Done`] once a sorted listing has written its last row.
fn sorted(done: bool) -> Scan {
    if done {
        Scan::Done
    } else {
        Scan::More
    }
}

/// The longest `ip:port` as text (`[v6%scope]:port`).
const ADDR_BYTES: usize = 64;

/// `addr` as text (`ip:port`), written into `buf`.
fn format_addr(buf: &mut [u8; ADDR_BYTES], addr: std::net::SocketAddr) -> &[u8] {
    let mut w = &mut buf[..];
    let _ = std::io::Write::write_fmt(&mut w, format_args!("{addr}"));
    let left = w.len();
    &buf[..ADDR_BYTES - left]
}

/// One `dump` entry: `"NAME":"ip:port"` (the first holder), or for `dump shared`
/// `"NAME":["ip:port",...]` (at most [`DUMP_HOLDERS_CAP`] holders, in grant order).
fn write_dump_entry(out: &mut Vec<u8>, engine: &Engine, shared: bool, wire: &[u8], name: &[u8]) {
    push_str(out, wire);
    out.push(b':');
    let mut holds = engine.holds_on(name).map(|(_, client)| client);
    if shared {
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
