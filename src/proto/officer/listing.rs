//! officer's `locks` and `connections`, each one JSON line written a batch at a time
//! ([`crate::proto::listing`]): `{"value":{` first, then one entry per lock or
//! connection in order, then `},"result":"locks"}` (or `connections`): the bytes of
//! the same object written at once.
//!
//! # Invariants
//! - Entries come sorted, through the session's [`Sorted`]: `locks` by name,
//!   `connections` by `ip:port` as text; each key once.
//! - Every list inside an entry is capped at [`super::LIST_CAP`] items, so one entry is
//!   bounded whatever other clients do.
//! - Between `{"value":{` and the closing `}`, nothing else is written to the
//!   connection (its events are held back by [`crate::proto::Codec`]).

use super::{write_names_of, write_queue};
use crate::engine::{Cursor, Scan};
use crate::proto::json::push_str;
use crate::proto::listing::{Batch, Rows, Sorted};
use crate::proto::names::utf8_name;
use crate::proto::Ctx;

/// Which listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `locks`: every lock with an officer name, with its queue.
    Locks,
    /// `connections`: every connection holding or waiting for an officer name.
    Connections,
}

impl Kind {
    fn result(self) -> &'static str {
        match self {
            Kind::Locks => "locks",
            Kind::Connections => "connections",
        }
    }
}

/// An officer session's listing state.
#[derive(Debug, Default)]
pub struct Listings {
    /// The listing, and whether an entry has been written yet.
    current: Option<(Kind, bool)>,
    /// The sort buffer; kept between listings.
    sorted: Sorted,
}

impl Listings {
    /// True while a listing is in progress.
    pub fn active(&self) -> bool {
        self.current.is_some()
    }

    /// Starts `locks` or `connections`: writes `{"value":{`.
    pub fn start(&mut self, out: &mut Vec<u8>, kind: Kind) {
        debug_assert!(self.current.is_none(), "a listing is already in progress");
        out.extend_from_slice(b"{\"value\":{");
        self.sorted.start();
        self.current = Some((kind, false));
    }

    /// Writes one batch of entries; the end of the line once the scan is done.
    pub fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        let Some((kind, wrote)) = self.current.as_mut() else {
            return;
        };
        let (engine, out) = (&*cx.engine, &mut *cx.out);
        let kind = *kind;
        let scan = |cursor: &mut Cursor, slots, rows: &mut Rows| match kind {
            Kind::Locks => engine.scan_locks(cursor, slots, |(en, _)| {
                if let Some(name) = utf8_name(en) {
                    rows.add(name.as_bytes(), |row| {
                        entry_key(row, name.as_bytes());
                        write_queue(row, engine, en);
                    });
                }
                true
            }),
            Kind::Connections => engine.scan_clients(cursor, slots, |(client, c, _)| {
                let officer_name = |v: crate::engine::ClaimView| utf8_name(v.name).is_some();
                if engine
                    .holds_of(client)
                    .chain(engine.waits_of(client))
                    .any(officer_name)
                {
                    let addr = c.addr().to_string();
                    rows.add(addr.as_bytes(), |row| {
                        entry_key(row, addr.as_bytes());
                        write_names_of(row, engine, client, super::LIST_CAP);
                    });
                }
                true
            }),
        };
        let scan = self.sorted.proceed_joined(out, batch, scan, wrote);
        if scan == Scan::Done {
            let result = kind.result();
            out.extend_from_slice(b"},\"result\":\"");
            out.extend_from_slice(result.as_bytes());
            out.extend_from_slice(b"\"}\n");
            self.current = None;
        }
    }
}

/// `"KEY":`, the start of an entry.
fn entry_key(out: &mut Vec<u8>, key: &[u8]) {
    push_str(out, key);
    out.push(b':');
}
