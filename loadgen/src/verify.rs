//! The cross-thread half of `--verify`: per lock name, the holds this process believes
//! live, checked for mutual exclusion, increasing tokens and the shared maximum whenever
//! a grant arrives (the rules are in the crate documentation); and [`Property`], the
//! names under which every check and violation is counted.
//!
//! Owns [`Verifier`]; the per-connection checks (exactly-once replies, token order on a
//! connection, cancelled waits, RESET and close) are the worker's, since only it sees
//! one connection's replies in order.
//!
//! # Invariants
//! - A hold is in its name's `live` list from its grant until [`Verifier::release`]
//!   (UNLOCK or RESET queued, EXPIRED seen or connection closed), never longer.
//! - A hold with a lease (`hold=`) counts as live only while [`HoldRec::surely_live`]
//!   says the server cannot have expired it yet, so an expiry race is never reported.
//! - A grant is checked only against holds that were certainly held at one moment
//!   together with it (see [`Verifier::grant`]), so every violation reported is one the
//!   server really committed.

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

/// A guarantee `--verify` checks; every check and every violation is counted under one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    /// No grant while a conflicting hold is surely live (exclusive vs anything).
    Exclusion,
    /// A shared grant's `holders` and the live shared holds stay within `max=`.
    SharedMax,
    /// Tokens strictly increase per server: over the whole run (a grant's token is
    /// larger than every token seen before its request was sent), per connection and
    /// per name.
    Tokens,
    /// Every reply and event answers exactly one pending request (requests on a
    /// connection loadgen closed itself are exempt).
    ExactlyOnce,
    /// A wait ended by `CANCEL` or `RESET` is never granted afterwards, its `CANCELLED`
    /// comes before the `OK` of the request that ended it, and `not_waiting` only comes
    /// once the wait was answered.
    CancelledWaits,
    /// A hold ends for good when its connection closes or sends `RESET`: after the
    /// server closed a half-closed connection, `INSPECT` never shows its tokens, and an
    /// `UNLOCK` or `EXTEND` after a `RESET` finds nothing held.
    EndedHolds,
    /// Replies have the shape their request calls for.
    Protocol,
}

impl Property {
    /// Every property, in report order.
    pub const ALL: [Property; 7] = [
        Property::Exclusion,
        Property::SharedMax,
        Property::Tokens,
        Property::ExactlyOnce,
        Property::CancelledWaits,
        Property::EndedHolds,
        Property::Protocol,
    ];

    /// The name used in reports (the JSON key).
    pub fn as_str(self) -> &'static str {
        match self {
            Property::Exclusion => "exclusion",
            Property::SharedMax => "shared_max",
            Property::Tokens => "tokens",
            Property::ExactlyOnce => "exactly_once",
            Property::CancelledWaits => "cancelled_waits",
            Property::EndedHolds => "ended_holds",
            Property::Protocol => "protocol",
        }
    }

    /// Its index in [`Property::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Counts per [`Property`], indexed by [`Property::index`].
pub(crate) type PerProperty = [u64; Property::ALL.len()];

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
    /// When the grant was received.
    pub(crate) granted: Instant,
    /// A shared hold (`SHARE`), else exclusive.
    pub(crate) shared: bool,
    /// The server cannot expire the hold before this (its acquire was sent at least
    /// `hold=` before); `None`: no lease.
    pub(crate) lease_end: Option<Instant>,
    /// A shared grant's `holders` field, for the evidence.
    pub(crate) holders: Option<u64>,
}

impl HoldRec {
    /// Whether the hold is certainly still held at the server at `now` as far as its
    /// lease goes (no expiry can have happened yet).
    pub(crate) fn surely_live(&self, now: Instant) -> bool {
        self.lease_end.is_none_or(|e| now + HOLD_SLACK < e)
    }
}

/// What the verifier knows of one lock name on one server.
#[derive(Default)]
struct NameRec {
    /// Holds granted and not yet released, as far as this process knows.
    live: Vec<HoldRec>,
    /// The exclusive grant with the largest token seen so far.
    last_excl: Option<HoldRec>,
    /// The grant with the largest token seen so far.
    last_any: Option<HoldRec>,
}

/// How [`Verifier::set_lease`] changes a hold's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseChange {
    /// An `EXTEND` is in flight: the lease may end at the earlier of the two.
    AtMost(Instant),
    /// The `EXTEND` was answered `OK`: the new lease replaces the old one.
    Replace(Instant),
}

/// Cross-thread per-name bookkeeping for `--verify`.
pub(crate) struct Verifier {
    /// `(server << 32 | name)` -> its record, sharded by hash.
    shards: Vec<Mutex<HashMap<u64, NameRec>>>,
    /// Whether names are tracked at all (exclusive grants happen, or a `max=` is set).
    tracks: bool,
    /// Lockbox: tokens increase per name.
    check_order: bool,
    /// Server addresses, for the evidence.
    servers: Vec<String>,
    /// Lock name prefix, for the evidence.
    prefix: String,
    /// Start of the run, evidence times are relative to it.
    start: Instant,
}

/// One violation found by a check: the property and its evidence.
pub(crate) type Finding = (Property, String);

impl Verifier {
    /// The verifier of a run with `opts`: `None` without `--verify` or in ping mode (no
    /// holds to check). `start` is the run's start.
    pub(crate) fn for_run(opts: &Options, start: Instant) -> Option<Verifier> {
        (opts.verify && opts.mode != CycleKind::Ping).then(|| Verifier {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            tracks: opts.mode == CycleKind::Lock || opts.max.is_some(),
            check_order: opts.target == Target::Lockbox,
            servers: opts.servers.clone(),
            prefix: opts.prefix.clone(),
            start,
        })
    }

    /// Whether grants are checked against other holds of their name.
    pub(crate) fn tracks_names(&self) -> bool {
        self.tracks
    }

    fn shard(&self, key: u64) -> &Mutex<HashMap<u64, NameRec>> {
        let i = (fmix64(key) % self.shards.len() as u64) as usize;
        &self.shards[i]
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

    /// Holds, as evidence.
    fn list<'a>(&self, holds: impl Iterator<Item = &'a HoldRec>) -> String {
        let v: Vec<String> = holds
            .map(|o| {
                format!(
                    "token {} of {} granted at {}{}",
                    o.token,
                    self.who(o.owner),
                    self.at(o.granted),
                    o.holders
                        .map_or(String::new(), |h| format!(" (holders={h})"))
                )
            })
            .collect();
        v.join(", ")
    }

    fn kind(shared: bool) -> &'static str {
        if shared {
            "shared"
        } else {
            "exclusive"
        }
    }

    /// Record a grant whose request carried `max` (shared grants) and whose reply said
    /// `holders`; returns the violations found (empty when fine).
    ///
    /// A live hold `o` counts against the new one only when both were certainly held at
    /// one moment: `o` is surely held now (so since its grant), and either `o` was
    /// granted first (smaller token, lockbox) or the new hold's lease cannot have run
    /// out by the time `o`'s grant arrived (a hold with a short lease may have expired
    /// at the server before a later grant was made, although its own grant arrives
    /// last). Holds that each overlap the new one and are all held now were all held
    /// together at one moment (intervals that meet pairwise share a point).
    pub(crate) fn grant(
        &self,
        server: u16,
        name: u64,
        rec: HoldRec,
        max: Option<u64>,
        holders: Option<u64>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        if let (Some(max), Some(h), true) = (max, holders, rec.shared) {
            if h > max || h == 0 {
                out.push((
                    Property::SharedMax,
                    format!(
                        "shared grant of {} to {} (token {}) at {} reports holders={} with max={}",
                        self.name(server, name),
                        self.who(rec.owner),
                        rec.token,
                        self.at(rec.granted),
                        h,
                        max
                    ),
                ));
            }
        }
        if !self.tracks {
            return out;
        }
        let key = name_key(server, name);
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let nr = map.entry(key).or_default();
        let now = rec.granted;
        // `o` and the new hold were certainly held at one moment: `o` is held now, and
        // either it was granted first (smaller token) or the new hold could not yet have
        // expired when `o` was granted (at the latest when `o`'s grant arrived).
        let check_order = self.check_order;
        let together = |o: &HoldRec| {
            o.surely_live(now)
                && ((check_order && o.token < rec.token) || rec.surely_live(o.granted))
        };
        let conflict = nr
            .live
            .iter()
            .find(|o| (!rec.shared || !o.shared) && together(o));
        if let Some(other) = conflict {
            out.push((
                Property::Exclusion,
                format!(
                    "exclusive overlap on {}: {} token {} granted to {} at {} while {} token {} \
                     of {} (granted at {}) was still held (its UNLOCK not yet sent)",
                    self.name(server, name),
                    Self::kind(rec.shared),
                    rec.token,
                    self.who(rec.owner),
                    self.at(now),
                    Self::kind(other.shared),
                    other.token,
                    self.who(other.owner),
                    self.at(other.granted)
                ),
            ));
        }
        if let (true, Some(max)) = (rec.shared, max) {
            // Holds that each overlap the new one and all overlap each other (all held
            // now) were all held at one moment.
            let live = nr.live.iter().filter(|o| o.shared && together(o)).count() as u64;
            if live + 1 > max {
                out.push((
                    Property::SharedMax,
                    format!(
                        "shared max exceeded on {}: token {} (holders={}) granted to {} at {} \
                         while {} other shared holds (max={}) were still held: {}",
                        self.name(server, name),
                        rec.token,
                        holders.unwrap_or(0),
                        self.who(rec.owner),
                        self.at(now),
                        live,
                        max,
                        self.list(nr.live.iter().filter(|o| o.shared && together(o)))
                    ),
                ));
            }
        }
        if self.check_order && rec.surely_live(now) {
            // A grant with a smaller token was made earlier at the server; if it is still
            // held now, the later exclusive grant (or this exclusive one) overlapped it.
            let behind = nr
                .last_excl
                .filter(|l| rec.token <= l.token)
                .or(nr.last_any.filter(|l| !rec.shared && rec.token <= l.token));
            if let Some(last) = behind {
                out.push((
                    Property::Tokens,
                    format!(
                        "tokens not increasing on {}: token {} granted to {} at {} after \
                         token {} granted to {} at {}",
                        self.name(server, name),
                        rec.token,
                        self.who(rec.owner),
                        self.at(now),
                        last.token,
                        self.who(last.owner),
                        self.at(last.granted)
                    ),
                ));
            }
        }
        if self.check_order {
            if nr.last_any.is_none_or(|l| rec.token > l.token) {
                nr.last_any = Some(rec);
            }
            if !rec.shared && nr.last_excl.is_none_or(|l| rec.token > l.token) {
                nr.last_excl = Some(rec);
            }
        }
        nr.live.push(rec);
        out
    }

    /// Change the lease of a live hold (an `EXTEND` sent or answered); nothing when the
    /// hold is no longer live.
    pub(crate) fn set_lease(
        &self,
        server: u16,
        name: u64,
        owner: u64,
        token: u64,
        change: LeaseChange,
    ) {
        if !self.tracks {
            return;
        }
        let key = name_key(server, name);
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let Some(nr) = map.get_mut(&key) else {
            return;
        };
        if let Some(h) = nr
            .live
            .iter_mut()
            .find(|o| o.owner == owner && o.token == token)
        {
            h.lease_end = match change {
                LeaseChange::AtMost(t) => Some(h.lease_end.map_or(t, |e| e.min(t))),
                LeaseChange::Replace(t) => Some(t),
            };
        }
    }

    /// A hold ended from the client's point of view (UNLOCK or RESET queued, EXPIRED
    /// seen, connection closed). Releasing a hold that is not live does nothing.
    pub(crate) fn release(&self, server: u16, name: u64, owner: u64, token: u64) {
        if !self.tracks {
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
