//! The cross-thread half of `--verify`: per lock name, the holds this process believes
//! live, checked for mutual exclusion, increasing tokens and the shared maximum whenever
//! a grant arrives (the rules are in the crate documentation).
//!
//! Owns [`Verifier`]; the per-connection checks (exactly-once replies, token order on a
//! connection) are the worker's, since only it sees one connection's replies in order.
//!
//! # Invariants
//! - A hold is in its name's `live` list from its grant until [`Verifier::release`]
//!   (UNLOCK queued, EXPIRED seen or connection closed), never longer.
//! - With `--hold`, a hold counts as live only while [`Verifier::surely_live`] says the
//!   server cannot have expired it yet, so an expiry race is never reported.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::options::{CycleKind, Options, Target};
use crate::shard::fmix64;

/// Verification slack for hold deadlines (see the crate documentation).
const HOLD_SLACK: Duration = Duration::from_millis(2);
/// Mutex-guarded shards of the per-name table (poll loops lock one per grant/release).
const SHARDS: usize = 64;
/// Bits of an owner id that hold the pipeline slot; the client number is above them.
const SLOT_BITS: u32 = 20;

/// The id of pipeline slot `slot` of (global) client `client`, as [`HoldRec::owner`].
pub(crate) fn owner_id(client: usize, slot: u32) -> u64 {
    ((client as u64) << SLOT_BITS) | u64::from(slot)
}

/// The table key of lock `name` (its number after the prefix) on server `server`.
fn name_key(server: u16, name: u64) -> u64 {
    (u64::from(server) << 32) | name
}

/// One grant as the verifier remembers it.
#[derive(Clone, Copy)]
pub(crate) struct HoldRec {
    /// [`owner_id`] of the slot holding it.
    pub(crate) owner: u64,
    /// The grant's token.
    pub(crate) token: u64,
    /// When the acquire request that got this grant was sent.
    pub(crate) sent: Instant,
    /// When the grant was received.
    pub(crate) granted: Instant,
}

/// What the verifier knows of one lock name on one server.
#[derive(Default)]
struct NameRec {
    /// Holds granted and not yet released, as far as this process knows.
    live: Vec<HoldRec>,
    /// The grant with the largest token seen so far (lock mode on lockbox).
    last: Option<HoldRec>,
}

/// Cross-thread per-name bookkeeping for `--verify`.
pub(crate) struct Verifier {
    /// `(server << 32 | name)` -> its record, sharded by hash.
    shards: Vec<Mutex<HashMap<u64, NameRec>>>,
    /// Lock mode: at most one live hold per name.
    exclusive: bool,
    /// Lockbox lock mode: tokens increase per name.
    check_order: bool,
    /// Share mode with `--max`: at most this many live holds per name.
    max: Option<u64>,
    /// The hold deadline (`--hold`, Redis: `PX`), after which a hold may have expired.
    hold: Option<Duration>,
    /// Server addresses, for the evidence.
    servers: Vec<String>,
    /// Lock name prefix, for the evidence.
    prefix: String,
    /// Start of the run, evidence times are relative to it.
    start: Instant,
}

impl Verifier {
    /// The verifier of a run with `opts`: `None` without `--verify` or in ping mode (no
    /// holds to check). `hold` is the hold deadline in effect; `start` the run's start.
    pub(crate) fn for_run(
        opts: &Options,
        hold: Option<Duration>,
        start: Instant,
    ) -> Option<Verifier> {
        (opts.verify && opts.mode != CycleKind::Ping).then(|| Verifier {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            exclusive: opts.mode == CycleKind::Lock,
            check_order: opts.mode == CycleKind::Lock && opts.target == Target::Lockbox,
            max: if opts.mode == CycleKind::Share {
                opts.max
            } else {
                None
            },
            hold,
            servers: opts.servers.clone(),
            prefix: opts.prefix.clone(),
            start,
        })
    }

    fn tracks_names(&self) -> bool {
        self.exclusive || self.max.is_some()
    }

    fn shard(&self, key: u64) -> &Mutex<HashMap<u64, NameRec>> {
        let i = (fmix64(key) % self.shards.len() as u64) as usize;
        &self.shards[i]
    }

    /// Whether a hold whose acquire was sent at `sent` is certainly still held at the
    /// server at `now` (no expiry can have happened yet).
    fn surely_live(&self, sent: Instant, now: Instant) -> bool {
        match self.hold {
            None => true,
            Some(h) => now + HOLD_SLACK < sent + h,
        }
    }

    fn who(&self, owner: u64) -> String {
        format!(
            "client {} slot {}",
            owner >> SLOT_BITS,
            owner & ((1 << SLOT_BITS) - 1)
        )
    }

    fn at(&self, t: Instant) -> String {
        format!(
            "+{:.6}s",
            t.saturating_duration_since(self.start).as_secs_f64()
        )
    }

    fn name(&self, server: u16, name: u64) -> String {
        format!(
            "{}{} on {}",
            self.prefix,
            name,
            self.servers
                .get(server as usize)
                .map_or("?", |s| s.as_str())
        )
    }

    /// Record a grant; returns violation evidence (empty when fine).
    pub(crate) fn grant(
        &self,
        server: u16,
        name: u64,
        rec: HoldRec,
        holders: Option<u64>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some(max), Some(h)) = (self.max, holders) {
            if h > max || h == 0 {
                out.push(format!(
                    "shared grant of {} to {} (token {}) at {} reports holders={} with max={}",
                    self.name(server, name),
                    self.who(rec.owner),
                    rec.token,
                    self.at(rec.granted),
                    h,
                    max
                ));
            }
        }
        if !self.tracks_names() {
            return out;
        }
        let key = name_key(server, name);
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let nr = map.entry(key).or_default();
        let now = rec.granted;
        if self.exclusive {
            if let Some(other) = nr.live.iter().find(|o| self.surely_live(o.sent, now)) {
                out.push(format!(
                    "exclusive overlap on {}: token {} granted to {} at {} while token {} of {} \
                     (granted at {}) was still held (its UNLOCK not yet sent)",
                    self.name(server, name),
                    rec.token,
                    self.who(rec.owner),
                    self.at(now),
                    other.token,
                    self.who(other.owner),
                    self.at(other.granted)
                ));
            }
            if self.check_order {
                if let Some(last) = nr.last {
                    if rec.token <= last.token && self.surely_live(rec.sent, now) {
                        out.push(format!(
                            "tokens not increasing on {}: token {} granted to {} at {} after \
                             token {} granted to {} at {}",
                            self.name(server, name),
                            rec.token,
                            self.who(rec.owner),
                            self.at(now),
                            last.token,
                            self.who(last.owner),
                            self.at(last.granted)
                        ));
                    }
                }
                if nr.last.is_none_or(|l| rec.token > l.token) {
                    nr.last = Some(rec);
                }
            }
        }
        if let Some(max) = self.max {
            let live = nr
                .live
                .iter()
                .filter(|o| self.surely_live(o.sent, now))
                .count() as u64;
            if live + 1 > max {
                out.push(format!(
                    "shared max exceeded on {}: token {} granted to {} at {} while {} other \
                     shared holds (max={}) were still held, e.g. token {}",
                    self.name(server, name),
                    rec.token,
                    self.who(rec.owner),
                    self.at(now),
                    live,
                    max,
                    nr.live.first().map_or(0, |o| o.token)
                ));
            }
        }
        nr.live.push(rec);
        out
    }

    /// A hold ended from the client's point of view (UNLOCK queued, EXPIRED seen,
    /// connection closed).
    pub(crate) fn release(&self, server: u16, name: u64, owner: u64, token: u64) {
        if !self.tracks_names() {
            return;
        }
        let key = name_key(server, name);
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(nr) = map.get_mut(&key) {
            if let Some(i) = nr
                .live
                .iter()
                .position(|o| o.owner == owner && o.token == token)
            {
                nr.live.swap_remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests;
