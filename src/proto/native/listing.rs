//! Native `LIST [prefix]` and `CLIENTS`, written a batch at a time
//! ([`crate::proto::listing`]).
//!
//! # Invariants
//! - A listing's rows all carry its request id and its `END <rows>` counts exactly the
//!   rows written; nothing else is written to the connection between them.
//! - `LIST` rows come sorted by name, byte by byte, each name once (through the
//!   session's [`Sorted`], which keeps only names with the prefix); `CLIENTS` rows in
//!   connection-slot order.
//! - The session keeps one prefix buffer and one sort buffer for the life of the
//!   connection, so a small `LIST` allocates nothing once it has seen its longest
//!   prefix.

use super::{mode_word, push_counts, start, write_end};
use crate::engine::{Cursor, Scan, Tag};
use crate::proto::listing::{Batch, Rows, Sorted};
use crate::proto::{push_addr, push_label, push_u64, Ctx};

/// What is being listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `LIST`: locks whose name starts with the session's prefix buffer.
    Locks,
    /// `CLIENTS`: every connection.
    Clients,
}

/// A listing in progress.
#[derive(Debug)]
struct Progress {
    id: Tag,
    kind: Kind,
    cursor: Cursor,
    rows: u64,
}

/// The native session's listing state.
#[derive(Debug, Default)]
pub struct Listings {
    current: Option<Progress>,
    /// The `LIST` prefix; kept (cleared) between listings.
    prefix: Vec<u8>,
    /// `LIST`'s sort buffer; kept between listings.
    sorted: Sorted,
}

impl Listings {
    /// True while a listing is in progress.
    pub fn active(&self) -> bool {
        self.current.is_some()
    }

    /// Starts `LIST prefix`; its rows are written by [`Listings::proceed`].
    pub fn start_locks(&mut self, id: &[u8], prefix: &[u8]) {
        self.prefix.clear();
        self.prefix.extend_from_slice(prefix);
        self.sorted.start();
        self.start(id, Kind::Locks);
    }

    /// Starts `CLIENTS`.
    pub fn start_clients(&mut self, id: &[u8]) {
        self.start(id, Kind::Clients);
    }

    fn start(&mut self, id: &[u8], kind: Kind) {
        debug_assert!(self.current.is_none(), "a listing is already in progress");
        self.current = Some(Progress {
            id: Tag::from_slice(id),
            kind,
            cursor: Cursor::default(),
            rows: 0,
        });
    }

    /// Writes one batch of rows; the `END` line once the scan is done.
    pub fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        let Some(p) = self.current.as_mut() else {
            return;
        };
        let (engine, out) = (&*cx.engine, &mut *cx.out);
        let stop = batch.stop_at(out.len());
        let Progress {
            id,
            kind,
            cursor,
            rows,
        } = p;
        let prefix = &self.prefix[..];
        let scan = match kind {
            Kind::Locks => {
                let scan = |cursor: &mut Cursor, slots, rows: &mut Rows| {
                    engine.scan_locks(cursor, slots, |(name, info)| {
                        if name.starts_with(prefix) {
                            rows.add_prefixed(name, |row| {
                                row.extend_from_slice(name);
                                row.push(b' ');
                                let mode = mode_word(info.exclusive, info.holders);
                                push_counts(row, mode, info.holders, info.waiters);
                                let detached = engine.detached_count_on(name);
                                if detached > 0 {
                                    row.extend_from_slice(b" detached=");
                                    push_u64(row, u64::from(detached));
                                }
                            });
                        }
                        true
                    })
                };
                let write = |out: &mut Vec<u8>, row: &[u8]| {
                    start(out, id, b"ITEM");
                    out.extend_from_slice(row);
                    out.push(b'\n');
                    *rows += 1;
                };
                match self.sorted.proceed(out, batch, scan, write) {
                    true => Scan::Done,
                    false => Scan::More,
                }
            }
            Kind::Clients => {
                engine.scan_clients(cursor, batch.slots, |(client, _, (holds, waits))| {
                    start(out, id, b"CLIENT");
                    push_addr(out, engine, client);
                    out.extend_from_slice(b" name=");
                    push_label(out, engine, client);
                    out.extend_from_slice(b" holds=");
                    push_u64(out, u64::from(holds));
                    out.extend_from_slice(b" waits=");
                    push_u64(out, u64::from(waits));
                    out.push(b'\n');
                    *rows += 1;
                    out.len() < stop
                })
            }
        };
        if scan == Scan::Done {
            // Detached holds belong to no connection: one row counts them all.
            if *kind == Kind::Clients {
                let detached = engine.detached_count();
                if detached > 0 {
                    start(out, id, b"CLIENT");
                    out.extend_from_slice(b"detached name=detached holds=");
                    push_u64(out, detached as u64);
                    out.extend_from_slice(b" waits=0\n");
                    *rows += 1;
                }
            }
            write_end(out, id, *rows as usize);
            self.current = None;
        }
    }
}
