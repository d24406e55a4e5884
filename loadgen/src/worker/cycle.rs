//! The life of one cycle, whatever the protocol: take a ticket, start (pick a name,
//! route it), acquire, grant (and the token checks), hold, release, timeout, failure,
//! and the slot's retirement at the end.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::conn;
use super::slot::{Chaos, SlotState};
use super::{chaos, micros, splitmix64, Worker, NO_ID};
use crate::options::{CycleKind, Target};
use crate::verify::{HoldRec, Property};

impl Worker {
    pub(super) fn finish_slot(&mut self, s: usize) {
        if self.slots[s].st != SlotState::Done {
            self.slots[s].st = SlotState::Done;
            self.active -= 1;
        }
    }

    /// Give the slot's `--cycles` ticket back and retire it.
    pub(super) fn retire(&mut self, s: usize) {
        self.return_ticket(s);
        self.finish_slot(s);
    }

    pub(super) fn return_ticket(&mut self, s: usize) {
        if self.slots[s].ticket {
            self.slots[s].ticket = false;
            self.shared.tickets.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// `false` when the budget is spent.
    fn take_ticket(&mut self, s: usize) -> bool {
        let Some(limit) = self.plan.cycles_limit else {
            return true;
        };
        if self.slots[s].ticket {
            return true;
        }
        let got = self
            .shared
            .tickets
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (t < limit).then_some(t + 1)
            })
            .is_ok();
        self.slots[s].ticket = got;
        got
    }

    /// Start a new cycle on slot `s`, or retire the slot when the run is stopping.
    pub(super) fn start_cycle(&mut self, s: usize, now: Instant) {
        if self.stopping() || self.shared.abort.load(Ordering::Relaxed) || !self.take_ticket(s) {
            self.finish_slot(s);
            return;
        }
        let r = splitmix64(&mut self.rng);
        let name = ((u128::from(r) * u128::from(self.plan.locks)) >> 64) as u64;
        let server = self.plan.route(name);
        let slot = &mut self.slots[s];
        slot.name = name;
        slot.server = server;
        slot.t_start = now;
        slot.expired = false;
        slot.hold_id = NO_ID;
        slot.reset_seq = 0;
        slot.probe = 0;
        if self.plan.target == Target::Redis && self.plan.mode != CycleKind::Ping {
            slot.token = splitmix64(&mut self.rng) ^ self.salt;
        }
        if self.plan.chaos.is_some() {
            let ci = self.conn_index(s);
            if self.conns[ci].setup != conn::Setup::Ready {
                // That connection is being reopened after a close by loadgen: start
                // again once it is ready.
                self.slots[s].st = SlotState::Reconnect;
                self.return_ticket(s);
                return;
            }
            self.plan_chaos(s);
        }
        self.send_acquire(s, now);
        if matches!(self.slots[s].chaos, Chaos::Cancel | Chaos::CloseWaiting) {
            self.set_wait_timer(s, now);
        }
    }

    /// Send (or, for Redis, re-send) the acquire request or ping of slot `s`.
    pub(super) fn send_acquire(&mut self, s: usize, now: Instant) {
        let ci = self.conn_index(s);
        match self.plan.target {
            Target::Lockbox => self.write_native_acquire(s, ci),
            Target::Redis => self.write_redis_acquire(s, ci),
        }
        if self.plan.verify && self.plan.target == Target::Lockbox {
            let server = self.slots[s].server as usize;
            self.slots[s].floor = self.shared.token_floor[server].load(Ordering::Relaxed);
        }
        let slot = &mut self.slots[s];
        slot.st = if self.plan.mode == CycleKind::Ping {
            SlotState::Ping
        } else {
            SlotState::Acquire
        };
        slot.t_sent = now;
        self.mark_dirty(ci);
    }

    /// Send the release request of slot `s`, whose hold ends here.
    pub(super) fn send_unlock(&mut self, s: usize, now: Instant) {
        let ci = self.conn_index(s);
        // The hold ends, from the client's point of view, before the request is written.
        self.release_hold(s);
        match self.plan.target {
            Target::Lockbox => self.write_native_unlock(s, ci),
            Target::Redis => self.write_redis_unlock(s, ci),
        }
        let slot = &mut self.slots[s];
        slot.st = SlotState::Release;
        slot.t_rel = now;
        self.mark_dirty(ci);
    }

    /// Tell the verifier that the hold of slot `s` has ended.
    pub(super) fn release_hold(&self, s: usize) {
        if let Some(v) = &self.shared.verifier {
            let slot = &self.slots[s];
            v.release(slot.server, slot.name, self.owner(s), slot.token);
        }
    }

    fn complete_cycle(&mut self, s: usize, now: Instant) {
        self.tally.cycles += 1;
        self.interval.cycles += 1;
        if !self.shared.stop.load(Ordering::Relaxed) {
            self.tally.window_cycles += 1;
        }
        self.tally.per_server[self.slots[s].server as usize] += 1;
        if let Some(limit) = self.plan.cycles_limit {
            self.slots[s].ticket = false;
            let done = self.shared.completed.fetch_add(1, Ordering::SeqCst) + 1;
            if done >= limit {
                self.shared.request_stop();
            }
        }
        self.start_cycle(s, now);
    }

    /// The cycle ended without completing (timeout, error, expiry): next one.
    pub(super) fn fail_cycle(&mut self, s: usize, now: Instant) {
        self.return_ticket(s);
        self.start_cycle(s, now);
    }

    /// A ping's reply arrived: record its round trip, next cycle.
    pub(super) fn on_pong(&mut self, s: usize, now: Instant) {
        let lat = micros(now.saturating_duration_since(self.slots[s].t_start));
        self.tally.acquire.saturating_record(lat);
        self.interval.acquire.saturating_record(lat);
        self.complete_cycle(s, now);
    }

    /// The reply to a release arrived: record its latency, next cycle.
    pub(super) fn on_released(&mut self, s: usize, now: Instant) {
        let lat = micros(now.saturating_duration_since(self.slots[s].t_rel));
        self.tally.release.saturating_record(lat);
        self.complete_cycle(s, now);
    }

    /// A reply that fits no rule: an anomaly; a release still ends its cycle.
    pub(super) fn on_unexpected(&mut self, s: usize, msg: String, now: Instant) {
        self.anomaly(Property::Protocol, msg);
        if self.slots[s].st.has_hold() {
            self.release_hold(s);
        }
        if self.slots[s].st == SlotState::Release {
            self.complete_cycle(s, now);
        } else {
            self.fail_cycle(s, now);
        }
    }

    /// A grant arrived for slot `s` on connection `ci`: check it, then hold or release.
    pub(super) fn on_grant(
        &mut self,
        s: usize,
        ci: usize,
        token: u64,
        holders: Option<u64>,
        now: Instant,
    ) {
        let lat = micros(now.saturating_duration_since(self.slots[s].t_start));
        self.tally.acquire.saturating_record(lat);
        self.interval.acquire.saturating_record(lat);
        // Chaos timers of the wait (CANCEL, close) have nothing left to do.
        self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
        if self.plan.verify && self.plan.target == Target::Lockbox {
            self.check_tokens(s, ci, token);
        }
        self.slots[s].token = token;
        // A RESET sent after the acquire may have released this hold before its grant
        // arrived: it is not counted as held, and the UNLOCK may find nothing.
        let dead_on_arrival = self.conns[ci].last_reset_seq > self.slots[s].expect_seq;
        if dead_on_arrival {
            self.slots[s].reset_seq = self.conns[ci].last_reset_seq;
        }
        if let (Some(v), false) = (&self.shared.verifier, dead_on_arrival) {
            let slot = &self.slots[s];
            let rec = HoldRec {
                owner: self.owner(s),
                token,
                granted: now,
                shared: slot.shared,
                lease_end: slot.lease.map(|l| slot.t_sent + l),
                holders,
            };
            let (shared, max) = (slot.shared, slot.max);
            let out = v.grant(slot.server, slot.name, rec, max, holders);
            if v.tracks_names() {
                self.checked(Property::Exclusion);
            }
            if shared && max.is_some() {
                self.checked(Property::SharedMax);
            }
            for (prop, msg) in out {
                self.violation(prop, msg);
            }
        }
        match self.slots[s].chaos {
            Chaos::Expire if !self.draining => {
                let lease = self.slots[s].lease.unwrap_or_default();
                self.set_timer(s, SlotState::Hold, now + lease + chaos::EXPIRE_WATCHDOG);
            }
            Chaos::None if self.plan.work.is_zero() => self.send_unlock(s, now),
            _ => {
                let at = now + self.plan.work;
                self.set_timer(s, SlotState::Hold, at);
            }
        }
    }

    /// `--verify`: a grant's token is larger than every token seen from its server
    /// before the request was sent, and than every earlier grant on its connection.
    fn check_tokens(&mut self, s: usize, ci: usize, token: u64) {
        self.checked(Property::Tokens);
        let server_ix = self.conns[ci].server as usize;
        let floor = self.slots[s].floor;
        if token <= floor {
            let server = self.plan.servers[server_ix].clone();
            let c = self.first_client + self.conns[ci].client as usize;
            self.violation(
                Property::Tokens,
                format!(
                    "token reused or going back on {server}: grant token {token} to client {c} \
                     for {} is not greater than token {floor}, seen from that server before \
                     the request was sent",
                    self.plan.name_string(self.slots[s].name)
                ),
            );
        }
        self.shared.token_floor[server_ix].fetch_max(token, Ordering::Relaxed);
        let max = self.conns[ci].max_token;
        if token <= max && max != 0 {
            let server = self.plan.servers[server_ix].clone();
            let c = self.first_client + self.conns[ci].client as usize;
            self.violation(
                Property::Tokens,
                format!(
                    "token order on connection of client {c} to {server}: grant token {token} \
                     for {} is not greater than earlier grant token {max}",
                    self.plan.name_string(self.slots[s].name)
                ),
            );
        }
        self.conns[ci].max_token = max.max(token);
    }

    /// The acquire of slot `s` timed out (lockbox `TIMEOUT`, Redis: `--wait` spent).
    pub(super) fn on_timeout(&mut self, s: usize, now: Instant) {
        self.tally.timeouts += 1;
        self.interval.timeouts += 1;
        if let (Some(w), Target::Lockbox) = (self.plan.wait, self.plan.target) {
            let waited = now.saturating_duration_since(self.slots[s].t_start);
            self.tally
                .timeout_lateness
                .saturating_record(micros(waited.saturating_sub(w)));
        }
        self.fail_cycle(s, now);
    }
}
