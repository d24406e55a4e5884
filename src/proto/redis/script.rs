//! `SCRIPT` and the execution of the scripts [`crate::proto::redis_scripts`] maps to typed
//! calls, each run as one atomic operation.

use super::*;

impl State {
    /// `SCRIPT LOAD|EXISTS|FLUSH|KILL`.
    pub(super) fn script(&mut self, req: &Request, cx: &mut Ctx) {
        let sub = req.get(1).unwrap_or(&[]);
        if is(sub, "load") {
            if req.len() != 3 {
                return wrong_args(cx, b"script|load");
            }
            match self.aliases.load(req.get(2).unwrap_or(&[])) {
                Some((_, sha)) => {
                    let mut hex = Vec::with_capacity(scripts::SHA1_HEX_LEN);
                    scripts::push_sha1_hex(&mut hex, &sha);
                    resp::bulk(cx.out, &hex);
                }
                None => {
                    cx.stats.errors_total += 1;
                    ScriptError::UnknownScript.write(cx.out);
                }
            }
        } else if is(sub, "exists") {
            if req.len() < 3 {
                return wrong_args(cx, b"script|exists");
            }
            resp::array(cx.out, req.len() - 2);
            for s in req.iter().skip(2) {
                let known = scripts::parse_sha1_hex(s)
                    .and_then(|sha| self.aliases.resolve(&sha))
                    .is_some();
                resp::integer(cx.out, i64::from(known));
            }
        } else if is(sub, "flush") {
            self.aliases.clear();
            resp::simple(cx.out, b"OK");
        } else if is(sub, "kill") {
            err(cx, b"NOTBUSY No scripts in execution right now.");
        } else {
            unknown_subcommand(cx, sub, "SCRIPT");
        }
    }

    /// Runs one bound script call.
    pub(super) fn run(&mut self, call: Call, cx: &mut Ctx) {
        let n = match call {
            Call::HashCreate {
                key,
                id,
                owner,
                ttl_ms,
            } => {
                let Some(name) = name_of(key, cx) else { return };
                if !matches!(key_state(cx.engine, name.as_bytes()), Key::None) {
                    0
                } else if id.len() > MAX_VALUE || owner.len() > MAX_VALUE {
                    return err(cx, TOO_LONG_VALUE);
                } else if ttl_ms <= 0 {
                    1 // created and gone at once, as PEXPIRE <= 0 does
                } else {
                    self.enc.clear();
                    self.enc.push(b'h');
                    for v in [&b"id"[..], id, b"owner", owner] {
                        push_field(&mut self.enc, v);
                    }
                    if !create(cx, name.as_bytes(), &self.enc, Some(ttl_ms as u32)) {
                        return;
                    }
                    1
                }
            }
            Call::HashCompareDelete { key, id } | Call::HashComparePexpire { key, id, .. } => {
                let Some(name) = name_of(key, cx) else { return };
                match key_state(cx.engine, name.as_bytes()) {
                    Key::Redis {
                        token,
                        value: Value::Hash(h),
                        ..
                    } if hash_get(h, b"id") == Some(id) => {
                        match call {
                            Call::HashComparePexpire { ttl_ms, .. } => {
                                expire(cx, name.as_bytes(), token, ttl_ms)
                            }
                            _ => delete(cx, name.as_bytes(), token),
                        }
                        1
                    }
                    _ => 0,
                }
            }
            Call::CompareDelete { keys, value } => {
                let mut n = 0;
                for key in keys.iter() {
                    let Some(name) = key_name(key) else {
                        continue;
                    };
                    if delete_if_equal(cx, name.as_bytes(), value) {
                        n += 1;
                    }
                }
                n
            }
            Call::ComparePexpire { key, value, ttl_ms } => {
                let Some(name) = name_of(key, cx) else { return };
                match string_equal(cx.engine, name.as_bytes(), value) {
                    Some(token) => {
                        expire(cx, name.as_bytes(), token, ttl_ms);
                        1
                    }
                    None => 0,
                }
            }
            Call::CompareExtend {
                key,
                value,
                ms,
                replace,
            } => {
                let Some(name) = name_of(key, cx) else { return };
                match key_state(cx.engine, name.as_bytes()) {
                    Key::Redis {
                        token,
                        deadline: Some(d),
                        value: Value::Str(v),
                    } if v == value => {
                        let new = if replace {
                            ms
                        } else {
                            ms_left(d, cx.now, cx.engine.ticks_per_ms()).saturating_add(ms)
                        };
                        if new > scripts::MAX_TTL_MS {
                            return err(cx, b"ERR invalid expire time in 'pexpire' command");
                        }
                        expire(cx, name.as_bytes(), token, new);
                        1
                    }
                    _ => 0,
                }
            }
            Call::MultiSetIfNone {
                keys,
                value,
                ttl_ms,
            } => {
                if value.len() > MAX_VALUE {
                    return err(cx, TOO_LONG_VALUE);
                }
                for key in keys.iter() {
                    let Some(name) = name_of(key, cx) else { return };
                    if !matches!(key_state(cx.engine, name.as_bytes()), Key::None) {
                        resp::integer(cx.out, 0);
                        return;
                    }
                }
                self.enc.clear();
                self.enc.push(b's');
                self.enc.extend_from_slice(value);
                for (i, key) in keys.iter().enumerate() {
                    let name = key_name(key).expect("checked above");
                    if keys.iter().take(i).any(|k| k == key) {
                        continue; // named twice: set once
                    }
                    if !create(cx, name.as_bytes(), &self.enc, Some(ttl_ms as u32)) {
                        // Out of room: undo, so the call stays all or nothing.
                        for k in keys.iter().take(i) {
                            let n = key_name(k).expect("checked above");
                            if let Some(t) = string_equal(cx.engine, n.as_bytes(), value) {
                                delete(cx, n.as_bytes(), t);
                            }
                        }
                        return;
                    }
                }
                keys.len() as i64
            }
            Call::MultiCompareSet {
                keys,
                value,
                ttl_ms,
            } => {
                let all = keys.iter().all(|key| {
                    key_name(key)
                        .is_some_and(|n| string_equal(cx.engine, n.as_bytes(), value).is_some())
                });
                if !all {
                    0
                } else {
                    for key in keys.iter() {
                        let name = key_name(key).expect("checked above");
                        if let Some(t) = string_equal(cx.engine, name.as_bytes(), value) {
                            expire(cx, name.as_bytes(), t, ttl_ms);
                        }
                    }
                    keys.len() as i64
                }
            }
        };
        resp::integer(cx.out, n);
    }
}
