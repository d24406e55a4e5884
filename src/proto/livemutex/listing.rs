//! live-mutex `ls`: one JSON line `{"ls_result":[keys],"uuid":U}` written a batch at a
//! time ([`crate::proto::listing`]): `{"ls_result":[` first, the keys sorted (through
//! the session's [`Sorted`], each key once), then `],"uuid":U}`: the bytes of the
//! same object written at once.
//!
//! # Invariants
//! - Between `{"ls_result":[` and `]`, nothing else is written to the connection (its
//!   events are held back by [`crate::proto::Codec`]).

use crate::engine::{Cursor, Scan};
use crate::proto::json::push_str;
use crate::proto::listing::{Batch, Rows, Sorted};
use crate::proto::names::utf8_name;
use crate::proto::Ctx;

/// A live-mutex session's listing state.
#[derive(Debug, Default)]
pub struct Listings {
    /// Whether a key has been written yet, while a listing is in progress.
    current: Option<bool>,
    /// The sort buffer; kept between listings.
    sorted: Sorted,
    /// The request's uuid (when it had one), for the end of the line; kept (cleared)
    /// between listings.
    uuid: Option<Vec<u8>>,
}

impl Listings {
    /// True while a listing is in progress.
    pub fn active(&self) -> bool {
        self.current.is_some()
    }

    /// Starts `ls`: writes `{"ls_result":[`.
    pub fn start(&mut self, out: &mut Vec<u8>, uuid: Option<&str>) {
        debug_assert!(self.current.is_none(), "a listing is already in progress");
        out.extend_from_slice(b"{\"ls_result\":[");
        self.uuid = uuid.map(|u| {
            let mut buf = self.uuid.take().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(u.as_bytes());
            buf
        });
        self.sorted.start();
        self.current = Some(false);
    }

    /// Writes one batch of keys; the end of the line once the scan is done.
    pub fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        let Some(wrote) = self.current.as_mut() else {
            return;
        };
        let (engine, out) = (&*cx.engine, &mut *cx.out);
        let scan = |cursor: &mut Cursor, slots, rows: &mut Rows| {
            engine.scan_locks(cursor, slots, |(name, _)| {
                // Engine names that are no key's image (lockd's `%shared:` ones) are
                // left out.
                if let Some(key) = utf8_name(name) {
                    rows.add(key.as_bytes(), |row| push_str(row, key.as_bytes()));
                }
                true
            })
        };
        let scan = self.sorted.proceed_joined(out, batch, scan, wrote);
        if scan == Scan::Done {
            out.push(b']');
            if let Some(uuid) = &self.uuid {
                out.extend_from_slice(b",\"uuid\":");
                push_str(out, uuid);
            }
            out.extend_from_slice(b"}\n");
            self.current = None;
        }
    }
}
