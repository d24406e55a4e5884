//! lockbox's line protocol, client side: the requests a cycle sends (`PING`, `LOCK` /
//! `SHARE` with their options, `UNLOCK`) and the replies and `EXPIRED` events it reads,
//! matched to their slot by request id.
//!
//! Under `--chaos` also `CANCEL`, `RESET`, `EXTEND` and `INSPECT`, and the `CANCELLED`
//! event (their handling is in `chaos`).
//!
//! Request ids are decimal: the k-th request of pipeline slot j is `j + D*k`, so a reply
//! maps to its slot as `id % D` and an id that is not the slot's expected one (nor its
//! pending `CANCEL`'s) is a reply to no pending request. With `--id-len N` every id is
//! left-padded with `0` to N bytes (in `CANCEL`'s argument too), and a reply's id must
//! be in exactly that form.

use std::io::Write as _;
use std::time::Instant;

mod line;

use super::{Chaos, SlotState, Worker, NO_ID};
use crate::ascii::{parse_id, parse_u64, push_id, push_u64, show};
use crate::options::{CycleKind, Options};
use crate::verify::Property;
use line::Line;

/// The connection check: request line.
pub(crate) const HELLO: &[u8] = b"lg-hello PING\n";
/// The connection check: expected reply line (without the newline).
pub(crate) const HELLO_REPLY: &[u8] = b"lg-hello PONG";

/// ` max=M wait=W hold=H\n` (those given) ending every `LOCK` / `SHARE` of a run.
pub(crate) fn acquire_suffix(opts: &Options) -> Vec<u8> {
    let mut suffix = Vec::new();
    if opts.mode == CycleKind::Share {
        if let Some(m) = opts.max {
            let _ = write!(suffix, " max={m}");
        }
    }
    if let Some(w) = opts.wait_ms {
        let _ = write!(suffix, " wait={w}");
    }
    if let Some(h) = opts.hold_ms {
        let _ = write!(suffix, " hold={h}");
    }
    suffix.push(b'\n');
    suffix
}

impl Worker {
    /// A fresh request id of slot `s`.
    pub(super) fn alloc_id(&mut self, s: usize) -> u64 {
        let slot = &mut self.slots[s];
        let id = u64::from(slot.j) + self.plan.pipeline as u64 * slot.k;
        slot.k += 1;
        id
    }

    /// The next request of connection `ci`: its sequence number (requests are read by
    /// the server in this order).
    pub(super) fn next_seq(&mut self, ci: usize) -> u64 {
        self.conns[ci].seq += 1;
        self.conns[ci].seq
    }

    /// The next request id of slot `s` on connection `ci`, now the one whose reply it
    /// expects.
    fn next_id(&mut self, s: usize, ci: usize) -> u64 {
        let id = self.alloc_id(s);
        let seq = self.next_seq(ci);
        let slot = &mut self.slots[s];
        slot.expect = id;
        slot.expect_seq = seq;
        id
    }

    /// Append the full name of lock number `name` to connection `ci`'s output.
    fn push_name(&mut self, ci: usize, name: u64) {
        let b = &mut self.conns[ci].wbuf;
        b.extend_from_slice(&self.plan.prefix);
        push_u64(b, name);
    }

    /// Queue `ID PING`, `ID LOCK name ...` or `ID SHARE name ...` for slot `s`.
    pub(super) fn write_native_acquire(&mut self, s: usize, ci: usize) {
        let id = self.next_id(s, ci);
        let mode = self.plan.mode;
        if self.plan.chaos.is_some() {
            return self.write_chaos_acquire(s, ci, id);
        }
        let plan = &*self.plan;
        let b = &mut self.conns[ci].wbuf;
        push_id(b, id, plan.id_len);
        match mode {
            CycleKind::Ping => b.extend_from_slice(b" PING\n"),
            CycleKind::Lock | CycleKind::Share => {
                b.extend_from_slice(if mode == CycleKind::Lock {
                    b" LOCK "
                } else {
                    b" SHARE "
                });
                b.extend_from_slice(&plan.prefix);
                push_u64(b, self.slots[s].name);
                b.extend_from_slice(&plan.acquire_suffix);
            }
        }
    }

    /// Queue `ID LOCK name` or `ID SHARE name max=M` with this cycle's own options
    /// (`--chaos`: the verb, `max=` and lease change from cycle to cycle).
    fn write_chaos_acquire(&mut self, s: usize, ci: usize, id: u64) {
        let (name, shared, max, lease) = {
            let sl = &self.slots[s];
            (sl.name, sl.shared, sl.max, sl.lease)
        };
        let wait = self.plan.wait_ms;
        push_id(&mut self.conns[ci].wbuf, id, self.plan.id_len);
        self.conns[ci]
            .wbuf
            .extend_from_slice(if shared { b" SHARE " } else { b" LOCK " });
        self.push_name(ci, name);
        let b = &mut self.conns[ci].wbuf;
        if let (true, Some(m)) = (shared, max) {
            b.extend_from_slice(b" max=");
            push_u64(b, m);
        }
        if let Some(w) = wait {
            b.extend_from_slice(b" wait=");
            push_u64(b, w);
        }
        if let Some(h) = lease {
            b.extend_from_slice(b" hold=");
            push_u64(b, h.as_millis() as u64);
        }
        b.push(b'\n');
    }

    /// Queue `ID CANCEL rid` for slot `s` (a side request: the acquire stays expected).
    pub(super) fn write_native_cancel(&mut self, s: usize, ci: usize, rid: u64) {
        let id = self.alloc_id(s);
        let seq = self.next_seq(ci);
        let slot = &mut self.slots[s];
        slot.side = id;
        slot.side_for = rid;
        slot.side_seq = seq;
        slot.side_server = self.conns[ci].server;
        let width = self.plan.id_len;
        let b = &mut self.conns[ci].wbuf;
        push_id(b, id, width);
        b.extend_from_slice(b" CANCEL ");
        push_id(b, rid, width);
        b.push(b'\n');
    }

    /// Queue `ID RESET` for slot `s`; returns its sequence number.
    pub(super) fn write_native_reset(&mut self, s: usize, ci: usize) -> u64 {
        let id = self.next_id(s, ci);
        let width = self.plan.id_len;
        let b = &mut self.conns[ci].wbuf;
        push_id(b, id, width);
        b.extend_from_slice(b" RESET\n");
        self.slots[s].expect_seq
    }

    /// Queue `ID EXTEND name token hold=ms` for slot `s`.
    pub(super) fn write_native_extend(&mut self, s: usize, ci: usize, ms: u64) {
        self.write_name_token(s, ci, b" EXTEND ");
        let b = &mut self.conns[ci].wbuf;
        b.extend_from_slice(b" hold=");
        push_u64(b, ms);
        b.push(b'\n');
    }

    /// Queue `ID INSPECT name` for slot `s`.
    pub(super) fn write_native_inspect(&mut self, s: usize, ci: usize) {
        let name = self.slots[s].name;
        let id = self.next_id(s, ci);
        let width = self.plan.id_len;
        let b = &mut self.conns[ci].wbuf;
        push_id(b, id, width);
        b.extend_from_slice(b" INSPECT ");
        self.push_name(ci, name);
        self.conns[ci].wbuf.push(b'\n');
    }

    /// Queue `ID UNLOCK name token` for slot `s`.
    pub(super) fn write_native_unlock(&mut self, s: usize, ci: usize) {
        self.write_name_token(s, ci, b" UNLOCK ");
        self.conns[ci].wbuf.push(b'\n');
    }

    /// Queue `ID<verb>name token` for slot `s`, without the line end (`verb` with its
    /// spaces).
    fn write_name_token(&mut self, s: usize, ci: usize, verb: &[u8]) {
        let (name, token) = (self.slots[s].name, self.slots[s].token);
        let id = self.next_id(s, ci);
        let width = self.plan.id_len;
        let b = &mut self.conns[ci].wbuf;
        push_id(b, id, width);
        b.extend_from_slice(verb);
        self.push_name(ci, name);
        let b = &mut self.conns[ci].wbuf;
        b.push(b' ');
        push_u64(b, token);
    }

    /// Handle every complete line of `carry` (an incomplete line kept from before)
    /// followed by `data`, until connection `ci` is closed; what is left of a line is
    /// kept in `carry`.
    pub(super) fn consume_lines(
        &mut self,
        ci: usize,
        carry: &mut Vec<u8>,
        data: &[u8],
        now: Instant,
    ) {
        line::feed(carry, data, |l| {
            self.on_line(ci, l, now);
            !self.conns[ci].dead
        });
    }

    /// One reply or event line from connection `ci`.
    fn on_line(&mut self, ci: usize, line: &Line<'_>, now: Instant) {
        let [idb, kind, arg0, arg1] = line.words;
        let Some(id) = parse_id(idb, self.plan.id_len) else {
            self.anomaly(
                Property::ExactlyOnce,
                format!("reply with an id loadgen never sent: '{}'", show(line.raw)),
            );
            return;
        };
        if self.plan.verify {
            self.checked(Property::ExactlyOnce);
        }
        let reply = ReplyLine {
            id,
            kind,
            args: [arg0, arg1],
            raw: line.raw,
        };
        let d = self.plan.pipeline as u64;
        let s = self.conns[ci].client as usize * self.plan.pipeline + (id % d) as usize;
        if kind == b"EXPIRED" {
            self.on_expired(ci, s, &reply, now);
        } else if kind == b"CANCELLED" {
            self.on_cancelled(ci, s, &reply, now);
        } else if self.slots[s].side == id && self.slots[s].side_server == self.conns[ci].server {
            self.on_cancel_reply(ci, s, &reply, now);
        } else {
            self.on_reply(ci, s, &reply, now);
        }
    }

    /// `ID EXPIRED token`: the hold of slot `s` ended at the server.
    fn on_expired(&mut self, ci: usize, s: usize, reply: &ReplyLine<'_>, now: Instant) {
        let token = parse_u64(reply.args[0]);
        let slot = &self.slots[s];
        let ok = slot.hold_id == reply.id
            && slot.server == self.conns[ci].server
            && slot.st.has_hold()
            && token == Some(slot.token)
            && !slot.expired;
        if !ok {
            self.anomaly(
                Property::ExactlyOnce,
                format!(
                    "EXPIRED event for a hold loadgen does not have: '{}'",
                    show(reply.raw)
                ),
            );
            return;
        }
        self.tally.expired += 1;
        self.slots[s].expired = true;
        if self.slots[s].st == SlotState::Hold {
            if self.slots[s].chaos == Chaos::Expire {
                self.tally.chaos.expire += 1;
            }
            self.release_hold(s);
            self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
            self.fail_cycle(s, now);
        }
    }

    /// `ID KIND args...`: the reply to slot `s`'s pending request.
    fn on_reply(&mut self, ci: usize, s: usize, reply: &ReplyLine<'_>, now: Instant) {
        let server = self.conns[ci].server;
        let st = self.slots[s].st;
        if self.slots[s].expect != reply.id || self.slots[s].server != server || !st.awaits_reply()
        {
            if reply.id == self.slots[s].cancelled && reply.kind == b"OK" {
                self.violation(
                    Property::CancelledWaits,
                    format!(
                        "grant of a cancelled wait: request {} for {} on {} was answered \
                         CANCELLED, then granted: '{}'",
                        reply.id,
                        self.plan.name_string(self.slots[s].name),
                        self.plan.servers[server as usize],
                        show(reply.raw)
                    ),
                );
                return;
            }
            self.anomaly(
                Property::ExactlyOnce,
                format!(
                    "reply to no pending request (unknown id or second reply) from {}: '{}'",
                    self.plan.servers[server as usize],
                    show(reply.raw)
                ),
            );
            return;
        }
        self.slots[s].expect = NO_ID;
        if self.plan.verify {
            self.checked(Property::Protocol);
        }
        let gone = self.slots[s].expired || self.slots[s].reset_seq != 0;
        let not_held = reply.kind == b"ERR" && reply.args[0] == b"not_held";
        match (st, reply.kind) {
            (SlotState::Ping, b"PONG") => self.on_pong(s, now),
            (SlotState::Acquire, b"OK") => self.on_native_grant(ci, s, reply, now),
            (SlotState::Acquire, b"TIMEOUT") => self.on_timeout(s, now),
            (SlotState::Release, b"OK") => {
                self.check_after_reset(s, "UNLOCK", reply, true);
                self.on_released(s, now)
            }
            (SlotState::Release, b"ERR") if gone && not_held => {
                self.check_after_reset(s, "UNLOCK", reply, false);
                self.on_released(s, now)
            }
            (SlotState::Extend, b"OK") => {
                self.check_after_reset(s, "EXTEND", reply, true);
                self.on_extended(s, now)
            }
            (SlotState::Extend, b"ERR") if gone && not_held => {
                self.check_after_reset(s, "EXTEND", reply, false);
                self.release_hold(s);
                self.fail_cycle(s, now)
            }
            (SlotState::Reset, b"OK") => self.on_reset_reply(ci, s, reply, now),
            (SlotState::Probe, b"OK") => self.on_probe_reply(ci, s, reply.raw, now),
            (_, b"ERR") => {
                let what = match st {
                    SlotState::Acquire => "acquire",
                    SlotState::Release => "UNLOCK",
                    SlotState::Extend => "EXTEND",
                    SlotState::Reset => "RESET",
                    SlotState::Probe => "INSPECT",
                    _ => "PING",
                };
                let name = self.plan.name_string(self.slots[s].name);
                self.error(format!(
                    "{what} of {name} on {}: '{}'",
                    self.plan.servers[server as usize],
                    show(reply.raw)
                ));
                if st.has_hold() {
                    self.release_hold(s);
                }
                self.fail_cycle(s, now);
            }
            _ => {
                let msg = format!(
                    "unexpected reply from {} in state {:?}: '{}'",
                    self.plan.servers[server as usize],
                    st,
                    show(reply.raw)
                );
                self.on_unexpected(s, msg, now);
            }
        }
    }

    /// `ID OK token` (share mode: `ID OK token holders`).
    fn on_native_grant(&mut self, ci: usize, s: usize, reply: &ReplyLine<'_>, now: Instant) {
        let share = self.slots[s].shared;
        let token = parse_u64(reply.args[0]);
        let holders = if share {
            parse_u64(reply.args[1])
        } else {
            Some(0)
        };
        match (token, holders) {
            (Some(t), Some(h)) => {
                self.slots[s].hold_id = reply.id;
                self.on_grant(s, ci, t, share.then_some(h), now);
            }
            _ => {
                self.anomaly(
                    Property::Protocol,
                    format!("malformed grant: '{}'", show(reply.raw)),
                );
                self.fail_cycle(s, now);
            }
        }
    }
}

/// One line from the server, split into words (borrowed from the read buffer).
pub(super) struct ReplyLine<'a> {
    /// The request id it answers (or, for `EXPIRED`, the id of the acquire).
    pub(super) id: u64,
    /// `OK`, `TIMEOUT`, `ERR`, `PONG`, `EXPIRED`, `CANCELLED`...
    pub(super) kind: &'a [u8],
    /// The next two words (empty when absent).
    pub(super) args: [&'a [u8]; 2],
    /// The whole line, for messages.
    pub(super) raw: &'a [u8],
}
