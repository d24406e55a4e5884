//! The writing commands of the Redis dialect: `SET` (with `NX`/`XX`, `GET`, `PX`/`EX`),
//! `PEXPIRE`/`EXPIRE` (with `NX`/`XX`/`GT`/`LT`) and `HSET`/`HMSET`.

use super::*;

impl State {
    /// `SET key value [NX|XX] [GET] [PX ms|EX s]`.
    pub(super) fn set(&mut self, req: &Request, cx: &mut Ctx) {
        let (key, value) = (req.get(1).unwrap_or(&[]), req.get(2).unwrap_or(&[]));
        // As Redis: the options are checked first, the time after (the last one given:
        // `PX` may be repeated, not mixed with `EX`).
        let (mut nx, mut xx, mut get) = (false, false, false);
        let mut ttl: Option<(bool, &[u8])> = None; // (in seconds, the number)
        let mut i = 3;
        while let Some(opt) = req.get(i) {
            let ex = is(opt, "ex");
            if is(opt, "nx") && !xx {
                nx = true;
            } else if is(opt, "xx") && !nx {
                xx = true;
            } else if is(opt, "get") {
                get = true;
            } else if (ex || is(opt, "px")) && ttl.is_none_or(|(was_ex, _)| was_ex == ex) {
                let Some(n) = req.get(i + 1) else {
                    err(cx, SYNTAX);
                    return;
                };
                ttl = Some((ex, n));
                i += 1;
            } else {
                err(cx, SYNTAX);
                return;
            }
            i += 1;
        }
        let ttl = match ttl {
            None => None,
            Some((ex, n)) => {
                let Some(n) = int(n) else {
                    err(cx, NOT_INTEGER);
                    return;
                };
                let ms = if ex { n.checked_mul(1000) } else { Some(n) };
                match ms.filter(|ms| (1..=scripts::MAX_TTL_MS).contains(ms)) {
                    Some(ms) => Some(ms),
                    None => {
                        err(cx, b"ERR invalid expire time in 'set' command");
                        return;
                    }
                }
            }
        };
        if value.len() > MAX_VALUE {
            err(cx, TOO_LONG_VALUE);
            return;
        }
        let Some(name) = name_of(key, cx) else {
            return;
        };
        let name = name.as_bytes();
        let hold = ttl.map(|ms| ms as u32);
        let version = self.version;
        match key_state(cx.engine, name) {
            Key::None if xx => resp::null(cx.out, version),
            Key::None => {
                self.enc.clear();
                self.enc.push(b's');
                self.enc.extend_from_slice(value);
                if create(cx, name, &self.enc, hold) {
                    if get {
                        resp::null(cx.out, version);
                    } else {
                        resp::simple(cx.out, b"OK");
                    }
                }
            }
            Key::Foreign if nx => {
                if get {
                    resp::bulk(cx.out, FOREIGN_VALUE);
                } else {
                    resp::null(cx.out, version);
                }
            }
            Key::Foreign => err(cx, LOCKED),
            Key::Redis {
                value: Value::Hash(_),
                ..
            } if get => err(cx, WRONGTYPE),
            Key::Redis {
                value: Value::Str(old),
                ..
            } if nx => {
                if get {
                    resp::bulk(cx.out, old);
                } else {
                    resp::null(cx.out, version);
                }
            }
            Key::Redis { .. } if nx => resp::null(cx.out, version),
            Key::Redis {
                token, value: old, ..
            } => {
                let mark = cx.out.len();
                if get {
                    match old {
                        Value::Str(v) => resp::bulk(cx.out, v),
                        Value::Hash(_) => resp::null(cx.out, version),
                    }
                } else {
                    resp::simple(cx.out, b"OK");
                }
                self.enc.clear();
                self.enc.push(b's');
                self.enc.extend_from_slice(value);
                if cx.engine.attach(name, token, &self.enc).is_err() {
                    cx.out.truncate(mark);
                    err(cx, OOM);
                    return;
                }
                let _ = cx.engine.extend_detached(name, token, hold, cx.now);
            }
        }
    }

    /// `PEXPIRE key ms [NX|XX|GT|LT]` (`EXPIRE`: in seconds), checked in Redis's order:
    /// the options, the number, its range, then the key. `NX`: only a key without a
    /// deadline; `XX`: only one with; `GT`: only a later deadline (none counts as
    /// infinite, so never); `LT`: only an earlier one (none counts as infinite).
    pub(super) fn pexpire(&mut self, req: &Request, cx: &mut Ctx, seconds: bool) {
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        for opt in req.iter().skip(3) {
            if is(opt, "nx") {
                nx = true;
            } else if is(opt, "xx") {
                xx = true;
            } else if is(opt, "gt") {
                gt = true;
            } else if is(opt, "lt") {
                lt = true;
            } else {
                cx.stats.errors_total += 1;
                cx.out.extend_from_slice(b"-ERR Unsupported option ");
                cx.out.extend(opt.iter().take(QUOTE_MAX).map(|&b| safe(b)));
                cx.out.extend_from_slice(b"\r\n");
                return;
            }
        }
        if nx && (xx || gt || lt) {
            return err(
                cx,
                b"ERR NX and XX, GT or LT options at the same time are not compatible",
            );
        }
        if gt && lt {
            return err(
                cx,
                b"ERR GT and LT options at the same time are not compatible",
            );
        }
        let Some(n) = int(req.get(2).unwrap_or(&[])) else {
            return err(cx, NOT_INTEGER);
        };
        let ms = if seconds {
            n.checked_mul(1000)
        } else {
            Some(n)
        };
        let Some(ms) = ms.filter(|&ms| ms <= scripts::MAX_TTL_MS) else {
            cx.stats.errors_total += 1;
            let cmd: &[u8] = if seconds { b"expire" } else { b"pexpire" };
            cx.out.extend_from_slice(b"-ERR invalid expire time in '");
            cx.out.extend_from_slice(cmd);
            cx.out.extend_from_slice(b"' command\r\n");
            return;
        };
        let Some(name) = name_of(req.get(1).unwrap_or(&[]), cx) else {
            return;
        };
        match key_state(cx.engine, name.as_bytes()) {
            Key::None => resp::integer(cx.out, 0),
            Key::Foreign => err(cx, LOCKED),
            Key::Redis {
                token, deadline, ..
            } => {
                let left = deadline.map(|d| ms_left(d, cx.now, cx.engine.ticks_per_ms()));
                let refused = match left {
                    None => xx || gt,
                    Some(left) => nx || (gt && ms <= left) || (lt && ms >= left),
                };
                if refused {
                    resp::integer(cx.out, 0);
                } else {
                    expire(cx, name.as_bytes(), token, ms);
                    resp::integer(cx.out, 1);
                }
            }
        }
    }

    /// `HSET key f v [f v ...]` (`HMSET`: the same, answering `+OK`).
    pub(super) fn hset(&mut self, req: &Request, cx: &mut Ctx, hmset: bool) {
        let Some(name) = name_of(req.get(1).unwrap_or(&[]), cx) else {
            return;
        };
        let name = name.as_bytes();
        if req.iter().skip(2).any(|a| a.len() > MAX_VALUE) {
            err(cx, TOO_LONG_VALUE);
            return;
        }
        let (token, old): (Option<u64>, &[u8]) = match key_state(cx.engine, name) {
            Key::None => (None, &[]),
            Key::Foreign => return err(cx, LOCKED),
            Key::Redis {
                value: Value::Str(_),
                ..
            } => return err(cx, WRONGTYPE),
            Key::Redis {
                token,
                value: Value::Hash(h),
                ..
            } => (Some(token), h),
        };
        // Merge: old fields (updated), then new ones in request order.
        self.enc.clear();
        self.enc.push(b'h');
        let pairs = || {
            let mut it = req.iter().skip(2);
            std::iter::from_fn(move || Some((it.next()?, it.next()?)))
        };
        let last = |f: &[u8]| pairs().filter(|(g, _)| *g == f).last().map(|(_, v)| v);
        let mut count = 0;
        for (f, v) in fields(old) {
            push_field(&mut self.enc, f);
            push_field(&mut self.enc, last(f).unwrap_or(v));
            count += 1;
        }
        let mut added = 0;
        for (i, (f, v)) in pairs().enumerate() {
            let seen_before = pairs().take(i).any(|(g, _)| g == f);
            if seen_before || hash_get(old, f).is_some() {
                continue;
            }
            push_field(&mut self.enc, f);
            push_field(&mut self.enc, last(f).unwrap_or(v));
            added += 1;
            count += 1;
        }
        if count > MAX_FIELDS {
            return err(cx, TOO_MANY_FIELDS);
        }
        let done = match token {
            None => create(cx, name, &self.enc, None),
            Some(t) => match cx.engine.attach(name, t, &self.enc) {
                Ok(()) => true,
                Err(_) => {
                    err(cx, OOM);
                    false
                }
            },
        };
        if done {
            if hmset {
                resp::simple(cx.out, b"OK");
            } else {
                resp::integer(cx.out, added);
            }
        }
    }
}
