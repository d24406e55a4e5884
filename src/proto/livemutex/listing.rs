//! live-mutex `ls`: one JSON line `{"ls_result":[keys],"uuid":U}` written a batch at a
//! time ([`crate::proto::listing`]): `{"ls_result":[` first, the keys as the scan of
//! the lock table reaches them (slot order), then `],"uuid":U}`. The bytes are those
//! of the same object written at once; only the key order is the scan's.
//!
//! # Invariants
//! - Between `{"ls_result":[` and `]`, nothing else is written to the connection (its
//!   events are held back by [`crate::proto::Codec`]).

use crate::engine::{Cursor, Scan};
use crate::proto::json::push_str;
use crate::proto::listing::Batch;
use crate::proto::names::utf8_name;
use crate::proto::Ctx;

/// A live-mutex session's listing state.
#[derive(Debug, Default)]
pub struct Listings {
    /// The cursor, and whether a key has been written yet.
    current: Option<(Cursor, bool)>,
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
        self.current = Some((Cursor::default(), false));
    }

    /// Writes one batch of keys; the end of the line once the scan is done.
    pub fn proceed(&mut self, cx: &mut Ctx, batch: Batch) {
        let Some((cursor, wrote)) = self.current.as_mut() else {
            return;
        };
        let out = &mut *cx.out;
        let stop = batch.stop_at(out.len());
        let scan = cx.engine.scan_locks(cursor, batch.slots, |(name, _)| {
            // Engine names that are no key's image (lockd's `%shared:` ones) are left out.
            let Some(key) = utf8_name(name) else {
                return true;
            };
            if std::mem::replace(wrote, true) {
                out.push(b',');
            }
            push_str(out, key.as_bytes());
            out.len() < stop
        });
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
