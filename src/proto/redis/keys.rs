//! Listing keys: `SCAN` (the cursor is a lock slot) and Redis's glob for `MATCH` and
//! `KEYS`.

use super::*;

impl State {
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`: the cursor is a lock slot.
    pub(super) fn scan(&mut self, req: &Request, cx: &mut Ctx) {
        let Some(cursor) = req.get(1).and_then(scan_cursor) else {
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
        let mut slot = usize::try_from(cursor).unwrap_or(usize::MAX);
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

/// A `SCAN` cursor as Redis reads one (C's `strtoul`, base 10, the whole argument up
/// to a NUL byte): an optional sign then digits, a negative one wrapping around (so
/// `-1` is past every slot: the scan is over), nothing at all being 0; white space
/// first, anything after the digits, or more than 64 bits is no cursor.
fn scan_cursor(arg: &[u8]) -> Option<u64> {
    let s = arg.split(|&b| b == 0).next().unwrap_or(&[]);
    if s.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Redis's glob (its `stringmatchlen`, case-sensitive): `*`, `?`, `[abc]`, `[^a]`,
/// `[a-z]` (either order), `\x`, taken as Redis takes them at the edges too: a `[`
/// never closed is a class up to the end of the pattern, a `\` that ends the pattern
/// or a class is itself, and the empty key matches only the empty pattern, except that
/// the pattern `*` alone matches every key (`KEYS` and `SCAN` do so).
///
/// Iterative (one backtracking point, the last `*`), so no pattern nests deeply.
pub fn glob(pattern: &[u8], s: &[u8]) -> bool {
    if pattern == b"*" {
        return true;
    }
    if s.is_empty() {
        return pattern.is_empty();
    }
    let (mut p, mut i) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                star = Some((p + 1, i));
                p += 1;
                continue;
            }
            if let Some(next) = one(pattern, p, s[i]) {
                p = next;
                i += 1;
                continue;
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
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches the byte `c` against the pattern element at `pattern[p]` (not `*`): the
/// index after the element when it matches.
fn one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => {
            let (matched, next) = class(pattern, p, c);
            matched.then_some(next)
        }
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b => (b == c).then_some(p + 1),
    }
}

/// Matches `c` against the class starting at `pattern[p] == '['`: (matched, index
/// after it). As Redis: `\x` is `x` unless the pattern ends there, `a-z` needs three
/// bytes left (`]` may be the end of a range), and a class never closed ends with
/// the pattern.
fn class(pattern: &[u8], p: usize, c: u8) -> (bool, usize) {
    let n = pattern.len();
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    loop {
        if j >= n {
            return (matched != negate, n);
        }
        match pattern[j] {
            b'\\' if n - j >= 2 => {
                j += 1;
                matched |= pattern[j] == c;
            }
            b']' => return (matched != negate, j + 1),
            lo if n - j >= 3 && pattern[j + 1] == b'-' => {
                let hi = pattern[j + 2];
                matched |= (lo.min(hi)..=lo.max(hi)).contains(&c);
                j += 2;
            }
            b => matched |= b == c,
        }
        j += 1;
    }
}
