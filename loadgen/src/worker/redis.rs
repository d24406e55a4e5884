//! Redis's RESP2, client side: the usual lock recipe (`SET name token NX PX hold`,
//! retried while busy; release by the compare-and-delete `EVAL` script) and `PING`, and
//! a parser that tells replies apart by shape. Replies carry no id: they come back in
//! request order, matched through the connection's `fifo`.

use std::sync::Arc;
use std::time::Instant;

use super::{SlotState, Worker, MAX_REPLY};
use crate::ascii::{fmt_u64, push_hex16, push_u64, show};
use crate::options::{CycleKind, REDIS_UNLOCK_SCRIPT};
use crate::verify::Property;

/// The connection check: `PING`.
pub(crate) const HELLO: &[u8] = b"*1\r\n$4\r\nPING\r\n";
/// The connection check: expected reply line (without the line end).
pub(crate) const HELLO_REPLY: &[u8] = b"+PONG";
/// Deepest nesting of arrays the parser follows.
const MAX_DEPTH: usize = 8;
/// Most elements of one array the parser walks over.
const MAX_ARRAY: i64 = 1 << 20;

/// The `PX` value `px` (ms) as a RESP bulk string.
pub(crate) fn px_bulk(px: u64) -> Vec<u8> {
    let px = px.to_string();
    format!("${}\r\n{}\r\n", px.len(), px).into_bytes()
}

/// `EVAL` with the unlock script and one key, up to the key.
pub(crate) fn eval_head() -> Vec<u8> {
    format!(
        "*5\r\n$4\r\nEVAL\r\n${}\r\n{}\r\n$1\r\n1\r\n",
        REDIS_UNLOCK_SCRIPT.len(),
        REDIS_UNLOCK_SCRIPT
    )
    .into_bytes()
}

impl Worker {
    /// Append lock number `name` as a bulk string to connection `ci`'s output.
    fn push_redis_name(&mut self, ci: usize, name: u64) {
        let mut d = [0u8; 20];
        let digits = fmt_u64(name, &mut d);
        let b = &mut self.conns[ci].wbuf;
        let len = self.plan.prefix.len() + digits.len();
        if len < 10 {
            b.extend_from_slice(&[b'$', b'0' + len as u8, b'\r', b'\n']);
        } else if len < 100 {
            let (tens, ones) = (b'0' + (len / 10) as u8, b'0' + (len % 10) as u8);
            b.extend_from_slice(&[b'$', tens, ones, b'\r', b'\n']);
        } else {
            b.push(b'$');
            push_u64(b, len as u64);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(&self.plan.prefix);
        b.extend_from_slice(digits);
        b.extend_from_slice(b"\r\n");
    }

    /// Append slot `s`'s token as a 16-hex-digit bulk string.
    fn push_redis_token(&mut self, ci: usize, s: usize) {
        let token = self.slots[s].token;
        let b = &mut self.conns[ci].wbuf;
        b.extend_from_slice(b"$16\r\n");
        push_hex16(b, token);
        b.extend_from_slice(b"\r\n");
    }

    /// Queue `PING` or `SET name token NX PX hold` for slot `s`.
    pub(super) fn write_redis_acquire(&mut self, s: usize, ci: usize) {
        if self.plan.mode == CycleKind::Ping {
            self.conns[ci].wbuf.extend_from_slice(HELLO);
        } else {
            self.conns[ci]
                .wbuf
                .extend_from_slice(b"*6\r\n$3\r\nSET\r\n");
            self.push_redis_name(ci, self.slots[s].name);
            self.push_redis_token(ci, s);
            let plan = Arc::clone(&self.plan);
            let b = &mut self.conns[ci].wbuf;
            b.extend_from_slice(b"$2\r\nNX\r\n$2\r\nPX\r\n");
            b.extend_from_slice(&plan.redis_px);
        }
        self.conns[ci].fifo.push_back(s as u32);
    }

    /// Queue the compare-and-delete `EVAL` for slot `s`.
    pub(super) fn write_redis_unlock(&mut self, s: usize, ci: usize) {
        let plan = Arc::clone(&self.plan);
        self.conns[ci].wbuf.extend_from_slice(&plan.redis_eval_head);
        self.push_redis_name(ci, self.slots[s].name);
        self.push_redis_token(ci, s);
        self.conns[ci].fifo.push_back(s as u32);
    }

    /// Handle every complete reply in `input`; returns the bytes used.
    pub(super) fn consume_resp(&mut self, ci: usize, input: &[u8], now: Instant) -> usize {
        let mut pos = 0;
        loop {
            match parse_resp(&input[pos..], 0) {
                Ok(Some((v, n))) => {
                    let frame = &input[pos..pos + n];
                    pos += n;
                    self.on_resp(ci, v, frame, now);
                    if self.conns[ci].dead {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.anomaly(Property::Protocol, format!("unparseable Redis reply: {e}"));
                    self.close_client(ci, "protocol error".into());
                    break;
                }
            }
        }
        pos
    }

    /// One reply from connection `ci`, for the oldest request still pending on it.
    fn on_resp(&mut self, ci: usize, v: Resp, frame: &[u8], now: Instant) {
        let plan = Arc::clone(&self.plan);
        let server = &plan.servers[self.conns[ci].server as usize];
        let Some(s) = self.conns[ci].fifo.pop_front() else {
            let msg = format!(
                "Redis reply with no pending request from {server}: '{}'",
                show(frame).trim_end()
            );
            self.anomaly(Property::ExactlyOnce, msg);
            return;
        };
        let s = s as usize;
        if self.plan.verify {
            self.checked(Property::ExactlyOnce);
        }
        let st = self.slots[s].st;
        match (st, v) {
            (SlotState::Ping, Resp::Simple) if frame.starts_with(HELLO_REPLY) => {
                self.on_pong(s, now)
            }
            (SlotState::Acquire, Resp::Simple) if frame.starts_with(b"+OK") => {
                let token = self.slots[s].token;
                self.on_grant(s, ci, token, None, now);
            }
            (SlotState::Acquire, Resp::Nil) => self.on_busy(s, now),
            (SlotState::Release, Resp::Int(n)) if n == 0 || n == 1 => {
                if n == 0 {
                    self.tally.expired += 1;
                }
                self.on_released(s, now);
            }
            (_, Resp::Error) => {
                let msg = format!(
                    "Redis error for {} on {server}: '{}'",
                    self.plan.name_string(self.slots[s].name),
                    show(frame).trim_end()
                );
                self.error(msg);
                self.fail_cycle(s, now);
            }
            _ => {
                let msg = format!(
                    "unexpected Redis reply from {server} in state {st:?}: '{}'",
                    show(frame).trim_end()
                );
                self.on_unexpected(s, msg, now);
            }
        }
    }

    /// `SET NX` found the lock taken: retry after `--retry`, time out when `--wait`
    /// would run out first, or retire the slot when the run is stopping.
    fn on_busy(&mut self, s: usize, now: Instant) {
        let waited = now.saturating_duration_since(self.slots[s].t_start);
        match self.plan.wait {
            Some(w) if waited + self.plan.retry > w => self.on_timeout(s, now),
            _ if self.stopping() => self.retire(s),
            _ => {
                let at = now + self.plan.retry;
                self.set_timer(s, SlotState::Retry, at);
            }
        }
    }
}

/// The shape of one RESP2 reply (only what loadgen needs to tell apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resp {
    /// `+...`
    Simple,
    /// `-...`
    Error,
    /// `:n`
    Int(i64),
    /// `$n` with n >= 0
    Bulk,
    /// `$-1` or `*-1`
    Nil,
    /// `*n` with n >= 0 (elements skipped)
    Array,
}

/// A decimal `i64` as `str::parse` reads one (an optional `+` or `-`, then digits,
/// no overflow), without the UTF-8 check.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        let d = i64::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// Parse one RESP reply at the start of `buf`: `Ok(None)` when incomplete, else the reply
/// and its length in bytes.
fn parse_resp(buf: &[u8], depth: usize) -> Result<Option<(Resp, usize)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    if depth > MAX_DEPTH {
        return Err("nesting too deep".into());
    }
    // The first `\r\n`: the first `\n` with a `\r` before it.
    let eol = buf
        .iter()
        .enumerate()
        .skip(1)
        .find(|&(i, &b)| b == b'\n' && buf[i - 1] == b'\r')
        .map(|(i, _)| i - 1);
    let Some(eol) = eol else {
        if buf.len() > MAX_REPLY {
            return Err("line too long".into());
        }
        return Ok(None);
    };
    let line = &buf[1..eol];
    let after = eol + 2;
    let num = || -> Result<i64, String> {
        parse_i64(line).ok_or_else(|| format!("bad number '{}'", show(line)))
    };
    match buf[0] {
        b'+' => Ok(Some((Resp::Simple, after))),
        b'-' => Ok(Some((Resp::Error, after))),
        b':' => Ok(Some((Resp::Int(num()?), after))),
        b'$' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((Resp::Nil, after)));
            }
            let n = n as usize;
            if n > MAX_REPLY {
                return Err("bulk string too long".into());
            }
            if buf.len() < after + n + 2 {
                return Ok(None);
            }
            if &buf[after + n..after + n + 2] != b"\r\n" {
                return Err("bulk string not terminated by CRLF".into());
            }
            Ok(Some((Resp::Bulk, after + n + 2)))
        }
        b'*' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((Resp::Nil, after)));
            }
            let mut pos = after;
            for _ in 0..n.min(MAX_ARRAY) {
                match parse_resp(&buf[pos..], depth + 1)? {
                    Some((_, used)) => pos += used,
                    None => return Ok(None),
                }
            }
            Ok(Some((Resp::Array, pos)))
        }
        other => Err(format!("unknown reply type byte 0x{other:02x}")),
    }
}

#[cfg(test)]
mod tests;
