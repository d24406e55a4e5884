//! Listing keys: `SCAN` (the cursor is a lock slot) and Redis's glob for `MATCH` and
//! `KEYS`.

use super::*;

impl State {
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`: the cursor is a lock slot.
    pub(super) fn scan(&mut self, req: &Request, cx: &mut Ctx) {
        let Some(cursor) = req.get(1).and_then(int).filter(|&c| c >= 0) else {
            return err(cx, b"ERR invalid cursor");
        };
        let (mut pattern, mut count, mut type_) = (&b"*"[..], SCAN_COUNT, None);
        let mut i = 2;
        while let Some(opt) = req.get(i) {
            let Some(v) = req.get(i + 1) else {
                return err(cx, SYNTAX);
            };
            if is(opt, "match") {
                pattern = v;
            } else if is(opt, "count") {
                match int(v) {
                    Some(n) if n >= 1 => count = (n as usize).min(MAX_SCAN_COUNT),
                    Some(_) => return err(cx, SYNTAX),
                    None => return err(cx, NOT_INTEGER),
                }
            } else if is(opt, "type") {
                type_ = Some(v);
            } else {
                return err(cx, SYNTAX);
            }
            i += 2;
        }
        let slots = cx.engine.lock_slots();
        let mut slot = cursor as usize;
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut visited = 0;
        while slot < slots && found.len() < count && visited < count * SCAN_SLOTS_PER_KEY {
            if let Some(key) = cx.engine.lock_at(slot).and_then(wire_name) {
                let is_hash = key_name(&key).is_some_and(|n| {
                    matches!(
                        key_state(cx.engine, n.as_bytes()),
                        Key::Redis {
                            value: Value::Hash(_),
                            ..
                        }
                    )
                });
                let t: &[u8] = if is_hash { b"hash" } else { b"string" };
                if glob(pattern, &key) && type_.is_none_or(|w| w.eq_ignore_ascii_case(t)) {
                    found.push(key);
                }
            }
            slot += 1;
            visited += 1;
        }
        let next = if slot >= slots { 0 } else { slot };
        resp::array(cx.out, 2);
        let mut digits = Vec::with_capacity(20);
        crate::proto::push_u64(&mut digits, next as u64);
        resp::bulk(cx.out, &digits);
        resp::array(cx.out, found.len());
        for k in &found {
            resp::bulk(cx.out, k);
        }
    }
}

/// Redis's glob: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`.
pub fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, end)) = class(pattern, p, s[i]) {
                        if matched {
                            p = end;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == s[i] => {
                    p += 2;
                    i += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, si)) => {
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[p] == '['`: (matched, index
/// after `]`), or `None` when the class is not closed.
fn class(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    loop {
        let b = *pattern.get(j)?;
        if b == b']' {
            return Some((matched != negate, j + 1));
        }
        if b == b'\\' {
            let e = *pattern.get(j + 1)?;
            matched |= e == c;
            j += 2;
        } else if pattern.get(j + 1) == Some(&b'-')
            && pattern.get(j + 2).is_some_and(|&e| e != b']')
        {
            let (lo, hi) = (b.min(pattern[j + 2]), b.max(pattern[j + 2]));
            matched |= (lo..=hi).contains(&c);
            j += 3;
        } else {
            matched |= b == c;
            j += 1;
        }
    }
}
