//! The writing commands of the Redis dialect: `SET` (with `NX`/`XX`, `GET`, `PX`/`EX`)
//! and `HSET`/`HMSET`.

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
