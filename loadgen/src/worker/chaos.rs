//! `--chaos`: cycles that misbehave on purpose, and the checks that keep `--verify`
//! sound while they do.
//!
//! A cycle chosen by the rate (seeded PRNG) does one of: close its connection while its
//! acquire waits or while it holds (then reconnect; half of the closes shut only the
//! writing side, read until the server closes, and `INSPECT` the exclusive holds the
//! connection had), `CANCEL` its wait, `RESET` its connection while holding, `EXTEND`
//! its hold, or take a short lease and let it expire. In lock mode, one name in
//! [`SEMAPHORE_EVERY`] is a semaphore name: half the cycles on it use `SHARE max=M`
//! (the same M, 1 to 3, for every request on that name) instead of `LOCK`.
//!
//! What the server owes under chaos, and how it is checked without false positives:
//! - A hold ends, from the client's side, when its `UNLOCK` or `RESET` is queued, its
//!   `EXPIRED` arrives, its lease may have run out, or its connection is closed by
//!   loadgen; the server can only release it after reading one of those, so a grant
//!   seen while the hold had not ended is a real overlap.
//! - A `RESET` sent after an acquire may release the hold before its grant arrives:
//!   such a grant is "dead on arrival", never counted as held, and its `UNLOCK` must
//!   find nothing (`not_held`). Every request sent before a `RESET` is answered before
//!   the `RESET`'s `OK` (waits with `CANCELLED`).
//! - A `CANCEL` may cross the grant (or `TIMEOUT`) on the wire: the wait is then
//!   answered first and the `CANCEL` gets `ERR not_waiting`, and the hold is a normal
//!   one. Otherwise `<rid> CANCELLED` comes before the `CANCEL`'s `OK 1`, and a grant of
//!   that request afterwards is a violation.
//! - Requests pending on a connection loadgen closed are exempt from exactly-once.
//! - After a half-close, the server closing its side proves it processed the end of
//!   the connection (it releases holds before closing), so an `INSPECT` sent on the new
//!   connection must not show any token of the old one.
//!
//! # Invariants
//! - A slot in `Reconnect` has nothing pending and no timer; it starts again (or sends
//!   its `INSPECT`) when its connection is `Ready` again.
//! - A connection's `seq` counts the requests written on it since it was opened;
//!   `last_reset_seq` is the `seq` of its latest `RESET`.

use std::io::{self, Read};
use std::net::Shutdown;
use std::ops::Range;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::conn::Setup;
use super::native::ReplyLine;
use super::{splitmix64, Chaos, SlotState, Worker, CHAOS_LEASE_MS, NO_ID, SEMAPHORE_EVERY};
use crate::ascii::{parse_u64, show};
use crate::options::CycleKind;
use crate::shard::fmix64;
use crate::verify::{LeaseChange, Property};

/// How long after its lease a hold let run out may go without its `EXPIRED` before
/// loadgen unlocks it anyway (so a server that never expires cannot stall a slot).
pub(super) const EXPIRE_WATCHDOG: Duration = Duration::from_secs(1);
/// Longest delay between an acquire and its `CANCEL` or the close of its connection, ms
/// (0 sends the `CANCEL` in the same write as the acquire).
const WAIT_DELAY_MAX_MS: u64 = 3;
/// `hold=` of an `EXTEND` when the run has no `--hold`, ms.
const EXTEND_MS: u64 = 30_000;
/// Largest `max=` of a semaphore name.
const SEMAPHORE_MAX: u64 = 3;

impl Worker {
    /// Choose this cycle's misbehaviour, verb, `max=` and lease (`--chaos`).
    pub(super) fn plan_chaos(&mut self, s: usize) {
        let rate = self.plan.chaos.unwrap_or(0.0);
        let r = splitmix64(&mut self.rng);
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
        let chosen = unit < rate;
        let chaos = if chosen {
            self.tally.chaos.chosen += 1;
            let k = splitmix64(&mut self.rng) % Chaos::PICK.len() as u64;
            Chaos::PICK[k as usize]
        } else {
            Chaos::None
        };
        let (shared, max) = match self.plan.mode {
            CycleKind::Lock => {
                let h = fmix64(self.slots[s].name ^ fmix64(self.plan.seed ^ 0x5e3a));
                if h.is_multiple_of(SEMAPHORE_EVERY) && r & 1 == 1 {
                    self.tally.chaos.share += 1;
                    (true, Some(1 + (h >> 32) % SEMAPHORE_MAX))
                } else {
                    (false, None)
                }
            }
            _ => (true, self.plan.max),
        };
        let lease = if chaos == Chaos::Expire {
            Some(Duration::from_millis(CHAOS_LEASE_MS))
        } else {
            self.plan.hold
        };
        let slot = &mut self.slots[s];
        slot.chaos = chaos;
        slot.shared = shared;
        slot.max = max;
        slot.lease = lease;
    }

    /// Arm the timer that cancels the wait of slot `s`, or closes its connection.
    pub(super) fn set_wait_timer(&mut self, s: usize, now: Instant) {
        let ms = splitmix64(&mut self.rng) % (WAIT_DELAY_MAX_MS + 1);
        self.set_timer(s, SlotState::Acquire, now + Duration::from_millis(ms));
    }

    /// The slots that belong to connection `ci`'s client (on any server).
    fn client_slots(&self, ci: usize) -> Range<usize> {
        let d = self.plan.pipeline;
        let c = self.conns[ci].client as usize;
        c * d..(c + 1) * d
    }

    /// The slots with a cycle under way on connection `ci`.
    fn conn_slots(&self, ci: usize) -> Vec<usize> {
        let server = self.conns[ci].server;
        self.client_slots(ci)
            .filter(|&q| {
                self.slots[q].server == server
                    && !matches!(
                        self.slots[q].st,
                        SlotState::Idle | SlotState::Done | SlotState::Reconnect
                    )
            })
            .collect()
    }

    /// The timer armed at the acquire: cancel the wait or close the connection, if the
    /// wait is still pending.
    pub(super) fn on_wait_timer(&mut self, s: usize, now: Instant) {
        if self.draining || self.slots[s].expect == NO_ID {
            return;
        }
        let ci = self.conn_index(s);
        match self.slots[s].chaos {
            Chaos::CloseWaiting => {
                self.tally.chaos.close_waiting += 1;
                self.close_conn(ci, now);
            }
            Chaos::Cancel if self.slots[s].side == NO_ID => {
                let rid = self.slots[s].expect;
                self.write_native_cancel(s, ci, rid);
                self.tally.chaos.cancel += 1;
                self.mark_dirty(ci);
            }
            _ => {}
        }
    }

    /// The work timer: unlock, or misbehave while holding.
    pub(super) fn on_hold_timer(&mut self, s: usize, now: Instant) {
        let chaos = if self.draining {
            Chaos::None
        } else {
            self.slots[s].chaos
        };
        let ci = self.conn_index(s);
        match chaos {
            Chaos::CloseHolding => {
                self.tally.chaos.close_holding += 1;
                self.close_conn(ci, now);
            }
            Chaos::Reset => self.send_reset(s, ci, now),
            Chaos::Extend => self.send_extend(s, ci, now),
            _ => self.send_unlock(s, now),
        }
    }

    /// `RESET` from slot `s`: every hold of the connection ends here.
    fn send_reset(&mut self, s: usize, ci: usize, now: Instant) {
        let seq = self.write_native_reset(s, ci);
        self.conns[ci].last_reset_seq = seq;
        self.tally.chaos.reset += 1;
        for q in self.conn_slots(ci) {
            if matches!(self.slots[q].st, SlotState::Hold | SlotState::Extend) {
                self.release_hold(q);
                if self.slots[q].reset_seq == 0 {
                    self.slots[q].reset_seq = seq;
                }
            }
        }
        let slot = &mut self.slots[s];
        slot.st = SlotState::Reset;
        slot.t_rel = now;
        self.mark_dirty(ci);
    }

    /// `ID OK released cancelled` to slot `s`'s `RESET`: every request sent before it
    /// must have been answered by now.
    pub(super) fn on_reset_reply(
        &mut self,
        ci: usize,
        s: usize,
        reply: &ReplyLine<'_>,
        now: Instant,
    ) {
        match (parse_u64(reply.args[0]), parse_u64(reply.args[1])) {
            (Some(released), Some(_)) => self.tally.chaos.reset_released += released,
            _ => self.anomaly(
                Property::Protocol,
                format!("malformed RESET reply: '{}'", show(reply.raw)),
            ),
        }
        if self.plan.verify {
            self.checked(Property::CancelledWaits);
        }
        let rseq = self.slots[s].expect_seq;
        let server = self.plan.servers[self.conns[ci].server as usize].clone();
        for q in self.conn_slots(ci) {
            if q == s {
                continue;
            }
            let sl = &self.slots[q];
            let main_open = sl.expect != NO_ID && sl.expect_seq < rseq;
            let side_open = sl.side != NO_ID && sl.side_seq < rseq;
            if !main_open && !side_open {
                continue;
            }
            let open = if main_open { sl.expect } else { sl.side };
            let msg = format!(
                "RESET {} on {server} answered OK while request {open} for {}, sent before it \
                 on the same connection, had no reply ({:?}); its wait should have been \
                 answered CANCELLED first",
                reply.id,
                self.plan.name_string(sl.name),
                sl.st
            );
            self.anomaly(Property::CancelledWaits, msg);
            if side_open {
                self.slots[q].side = NO_ID;
            }
            if main_open && self.slots[q].st == SlotState::Acquire {
                // Treat it as cancelled: a grant for it later is reported as such.
                let sl = &mut self.slots[q];
                sl.cancelled = sl.expect;
                sl.expect = NO_ID;
                sl.gen = sl.gen.wrapping_add(1);
                self.fail_cycle(q, now);
            }
        }
        self.on_released(s, now);
    }

    /// `<rid> CANCELLED`: a wait ended by this slot's `CANCEL` or by a `RESET`.
    pub(super) fn on_cancelled(
        &mut self,
        ci: usize,
        s: usize,
        reply: &ReplyLine<'_>,
        now: Instant,
    ) {
        let sl = &self.slots[s];
        let by_cancel = sl.side != NO_ID && sl.side_for == reply.id;
        let by_reset = self.conns[ci].last_reset_seq > sl.expect_seq;
        let ok = sl.expect == reply.id
            && sl.server == self.conns[ci].server
            && sl.st == SlotState::Acquire
            && (by_cancel || by_reset);
        if !ok {
            let msg = format!(
                "CANCELLED for a request loadgen has not cancelled (or not pending) from {}: '{}'",
                self.plan.servers[self.conns[ci].server as usize],
                show(reply.raw)
            );
            self.anomaly(Property::CancelledWaits, msg);
            return;
        }
        let sl = &mut self.slots[s];
        sl.cancelled = reply.id;
        sl.expect = NO_ID;
        sl.gen = sl.gen.wrapping_add(1);
        if by_cancel {
            sl.st = SlotState::Cancelled;
        } else {
            self.tally.chaos.reset_cancelled += 1;
            self.fail_cycle(s, now);
        }
    }

    /// The reply to slot `s`'s `CANCEL`: `OK 1` after its `CANCELLED`, or
    /// `ERR not_waiting` once the wait was answered (a grant or `TIMEOUT` crossed it).
    pub(super) fn on_cancel_reply(
        &mut self,
        ci: usize,
        s: usize,
        reply: &ReplyLine<'_>,
        now: Instant,
    ) {
        let rid = self.slots[s].side_for;
        self.slots[s].side = NO_ID;
        if self.plan.verify {
            self.checked(Property::CancelledWaits);
        }
        let answered = self.slots[s].expect != rid;
        let was_cancelled = self.slots[s].cancelled == rid;
        let server = self.plan.servers[self.conns[ci].server as usize].clone();
        let name = self.plan.name_string(self.slots[s].name);
        match reply.kind {
            b"OK" => {
                if parse_u64(reply.args[0]) == Some(1) && was_cancelled {
                    self.tally.chaos.cancelled += 1;
                } else {
                    self.anomaly(
                        Property::CancelledWaits,
                        format!(
                            "CANCEL of request {rid} for {name} on {server} answered '{}' \
                             without a CANCELLED line for that request before it",
                            show(reply.raw)
                        ),
                    );
                }
            }
            b"ERR" if reply.args[0] == b"not_waiting" => {
                if !answered {
                    self.anomaly(
                        Property::CancelledWaits,
                        format!(
                            "CANCEL of request {rid} for {name} on {server} answered \
                             not_waiting while that request had no reply yet: '{}'",
                            show(reply.raw)
                        ),
                    );
                } else if was_cancelled {
                    self.tally.chaos.reset_cancelled += 1;
                } else {
                    self.tally.chaos.cancel_crossed += 1;
                }
            }
            _ => self.anomaly(
                Property::Protocol,
                format!(
                    "unexpected reply to CANCEL from {server}: '{}'",
                    show(reply.raw)
                ),
            ),
        }
        if self.slots[s].st == SlotState::Cancelled {
            self.fail_cycle(s, now);
        }
    }

    /// `EXTEND` the hold of slot `s` (to `--hold`, or a long lease without one).
    fn send_extend(&mut self, s: usize, ci: usize, now: Instant) {
        let ms = self.plan.hold_ms.unwrap_or(EXTEND_MS);
        self.write_native_extend(s, ci, ms);
        self.tally.chaos.extend += 1;
        let slot = &mut self.slots[s];
        slot.st = SlotState::Extend;
        slot.t_ext = now;
        slot.ext_ms = ms;
        self.set_lease(s, LeaseChange::AtMost(now + Duration::from_millis(ms)));
        self.mark_dirty(ci);
    }

    /// `OK` to the `EXTEND` of slot `s`: the new lease counts; hold on, then unlock.
    pub(super) fn on_extended(&mut self, s: usize, now: Instant) {
        self.tally.chaos.extended += 1;
        let slot = &self.slots[s];
        let end = slot.t_ext + Duration::from_millis(slot.ext_ms);
        self.set_lease(s, LeaseChange::Replace(end));
        self.slots[s].chaos = Chaos::None;
        let at = now + self.plan.work;
        self.set_timer(s, SlotState::Hold, at);
    }

    fn set_lease(&self, s: usize, change: LeaseChange) {
        if let Some(v) = &self.shared.verifier {
            let slot = &self.slots[s];
            v.set_lease(slot.server, slot.name, self.owner(s), slot.token, change);
        }
    }

    /// The reply to an `UNLOCK` or `EXTEND` of slot `s` (`held`: answered `OK`): when a
    /// `RESET` sent before it had released the hold, it must find nothing.
    pub(super) fn check_after_reset(
        &mut self,
        s: usize,
        what: &str,
        reply: &ReplyLine<'_>,
        held: bool,
    ) {
        let sl = &self.slots[s];
        if sl.reset_seq == 0 || sl.expect_seq <= sl.reset_seq {
            return;
        }
        if self.plan.verify {
            self.checked(Property::EndedHolds);
        }
        if !held {
            return;
        }
        let sl = &self.slots[s];
        let msg = format!(
            "hold survived a RESET: {what} of token {} for {} on {} answered '{}' although \
             a RESET sent before it on the same connection had released that hold",
            sl.token,
            self.plan.name_string(sl.name),
            self.plan.servers[sl.server as usize],
            show(reply.raw)
        );
        self.anomaly(Property::EndedHolds, msg);
    }

    /// Close connection `ci` on purpose: its holds end now, its pending requests are
    /// exempt; then reopen it, at once or (half the time) after shutting its writing
    /// side and reading until the server closed, followed by `INSPECT`s.
    fn close_conn(&mut self, ci: usize, _now: Instant) {
        // What was queued reaches the server first.
        self.flush(ci);
        if self.conns[ci].dead {
            return;
        }
        let confirm = splitmix64(&mut self.rng) & 1 == 1;
        for q in self.conn_slots(ci) {
            let sl = &self.slots[q];
            self.tally.chaos.closed_pending += u64::from(sl.expect != NO_ID);
            if sl.st.has_hold() {
                self.release_hold(q);
            }
            let sl = &mut self.slots[q];
            sl.probe = if confirm && sl.st.has_hold() && !sl.shared {
                sl.token
            } else {
                0
            };
            sl.expect = NO_ID;
            sl.gen = sl.gen.wrapping_add(1);
            sl.st = SlotState::Reconnect;
            self.return_ticket(q);
        }
        // CANCELs sent here (also by slots that have since moved on to another server;
        // those on other servers stay pending).
        let server = self.conns[ci].server;
        for q in self.client_slots(ci) {
            let sl = &mut self.slots[q];
            if sl.side != NO_ID && sl.side_server == server {
                sl.side = NO_ID;
                self.tally.chaos.closed_pending += 1;
            }
        }
        if confirm {
            self.tally.chaos.close_confirmed += 1;
            self.conns[ci].setup = Setup::Closing;
            if self.conns[ci].stream.shutdown(Shutdown::Write).is_err() {
                self.reopen(ci);
            }
        } else {
            self.reopen(ci);
        }
    }

    /// A readiness event on connection `ci` while it is not `Ready` (closing or
    /// reconnecting after a close by loadgen).
    pub(super) fn on_setup_event(&mut self, ci: usize, failed: bool, now: Instant) {
        match self.conns[ci].setup {
            Setup::Closing => self.drain_closing(ci),
            Setup::Connecting | Setup::Hello => match self.connect_step(ci) {
                Ok(true) => self.on_reconnected(ci, now),
                Ok(false) if failed && self.conns[ci].setup == Setup::Connecting => {
                    self.close_client(ci, "reconnect refused or reset".into())
                }
                Ok(false) => {}
                Err(msg) => self.close_client(ci, format!("reconnect: {msg}")),
            },
            Setup::Ready => {}
        }
    }

    /// A half-closed connection: discard what the server still sends until it closes,
    /// then reopen.
    fn drain_closing(&mut self, ci: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        // Bounded: the server sends at most the replies to what was already sent.
        for _ in 0..1_000_000 {
            match self.conns[ci].stream.read(&mut scratch) {
                Ok(0) => {
                    self.reopen(ci);
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Reset by the server: it has dropped the connection too.
                    self.reopen(ci);
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Replace connection `ci`'s socket by a new connection to the same server.
    fn reopen(&mut self, ci: usize) {
        let server = self.conns[ci].server as usize;
        let addr = self.plan.addrs[server];
        let _ = self.poll.registry().deregister(&mut self.conns[ci].stream);
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.conns[ci].stream.shutdown(Shutdown::Both);
                self.close_client(ci, format!("reconnect: {e}"));
                return;
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(ci),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.close_client(ci, format!("reconnect: register: {e}"));
            return;
        }
        // Dropping the old socket closes it (with unread input: a reset).
        let c = &mut self.conns[ci];
        c.stream = stream;
        c.setup = Setup::Connecting;
        c.rbuf.clear();
        c.wbuf.clear();
        c.wpos = 0;
        c.max_token = 0;
        c.seq = 0;
        c.last_reset_seq = 0;
        c.fifo.clear();
    }

    /// Connection `ci` is open again: its slots look for their old holds or start anew.
    fn on_reconnected(&mut self, ci: usize, now: Instant) {
        self.tally.chaos.reconnects += 1;
        let server = self.conns[ci].server;
        for q in self.client_slots(ci) {
            if self.slots[q].st != SlotState::Reconnect || self.slots[q].server != server {
                continue;
            }
            if self.slots[q].probe != 0 {
                self.write_native_inspect(q, ci);
                self.slots[q].st = SlotState::Probe;
                self.tally.chaos.probes += 1;
                self.mark_dirty(ci);
            } else {
                self.start_cycle(q, now);
            }
        }
    }

    /// The `INSPECT` after a confirmed close: the old hold's token must be gone.
    pub(super) fn on_probe_reply(&mut self, ci: usize, s: usize, raw: &[u8], now: Instant) {
        let token = std::mem::take(&mut self.slots[s].probe);
        if self.plan.verify {
            self.checked(Property::EndedHolds);
        }
        let shown = raw.windows(7).position(|w| w == b" token=").and_then(|p| {
            let rest = &raw[p + 7..];
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            parse_u64(&rest[..end])
        });
        if shown == Some(token) {
            let msg = format!(
                "hold kept after its connection closed: token {token} on {} on {} still shows \
                 in INSPECT after the server closed loadgen's half-closed connection: '{}'",
                self.plan.name_string(self.slots[s].name),
                self.plan.servers[self.conns[ci].server as usize],
                show(raw)
            );
            self.anomaly(Property::EndedHolds, msg);
        }
        self.start_cycle(s, now);
    }
}
