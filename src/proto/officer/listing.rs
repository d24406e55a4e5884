//! officer's `locks` and `connections`, each one JSON line written a batch at a time
//! ([`crate::proto::listing`]): `{"value":{` first, then one entry per lock or
//! connection as the scan reaches it, then `},"result":"locks"}` (or `connections`).
//! The bytes are those of the same object written at once; only the entry order is
//! the scan's (slot order).
//!
//! # Invariants
//! - Every list inside an entry is capped at [`super::LIST_CAP`] items, so one entry is
//!   bounded whatever other clients do.
//! - Between `{"value":{` and the closing `}`, nothing else is written to the
//!   connection (its events are held back by [`crate::proto::Codec`]).

use super::{write_names_of, write_queue};
use crate::engine::{Cursor, Scan};
use crate::proto::json::push_str;
use crate::proto::listing::Batch;
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
    /// The listing, its cursor, and whether an entry has been written yet.
    current: Option<(Kind, Cursor, bool)>,
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
        self.current = Some((kind, Cursor::default(), false));
    }

    /// Writes one batch of entries; the end of the line once the scan is done.
    pub fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        let Some((kind, cursor, wrote)) = self.current.as_mut() else {
            return;
        };
        let (engine, out) = (&*cx.engine, &mut *cx.out);
        let stop = batch.stop_at(out.len());
        let mut key = |out: &mut Vec<u8>, k: &[u8]| {
            if std::mem::replace(wrote, true) {
                out.push(b',');
            }
            push_str(out, k);
            out.push(b':');
        };
        let scan = match kind {
            Kind::Locks => engine.scan_locks(cursor, batch.slots, |(en, _)| {
                let Some(name) = utf8_name(en) else {
                    return true;
                };
                key(out, name.as_bytes());
                write_queue(out, engine, en);
                out.len() < stop
            }),
            Kind::Connections => engine.scan_clients(cursor, batch.slots, |(client, c, _)| {
                let officer_name = |v: crate::engine::ClaimView| utf8_name(v.name).is_some();
                if !engine
                    .holds_of(client)
                    .chain(engine.waits_of(client))
                    .any(officer_name)
                {
                    return true;
                }
                key(out, c.addr().to_string().as_bytes());
                write_names_of(out, engine, client, super::LIST_CAP);
                out.len() < stop
            }),
        };
        if scan == Scan::Done {
            let result = kind.result();
            out.extend_from_slice(b"},\"result\":\"");
            out.extend_from_slice(result.as_bytes());
            out.extend_from_slice(b"\"}\n");
            self.current = None;
        }
    }
}
