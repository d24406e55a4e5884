//! A Redis key's value and state: the encoding of a value in its hold's attachment
//! ([`Value`]: a string, or a hash's fields), what a key is right now ([`Key`]: free,
//! a Redis key, or foreign), and the engine calls that create, delete and expire keys.
//!
//! # Invariants
//! - A key is a Redis key only while its name has an exclusive detached hold of origin
//!   [`Protocol::Redis`]; anything else on the name makes it [`Key::Foreign`].
//! - An encoded field is a 2-byte big-endian length then at most [`MAX_VALUE`] bytes.

use super::*;

/// A key's value as stored in its hold's attachment (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Str(&'a [u8]),
    /// Encoded fields: (2-byte length, bytes) name then value, repeated.
    Hash(&'a [u8]),
}

impl<'a> Value<'a> {
    pub(super) fn decode(raw: &'a [u8]) -> Value<'a> {
        match raw.split_first() {
            Some((b'h', rest)) => Value::Hash(rest),
            Some((_, rest)) => Value::Str(rest),
            None => Value::Str(&[]),
        }
    }
}

/// The fields of an encoded hash, in order.
pub(super) fn fields(mut enc: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let f = take_field(&mut enc)?;
        let v = take_field(&mut enc)?;
        Some((f, v))
    })
}

fn take_field<'a>(enc: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = enc.split_first_chunk::<2>()?;
    let n = usize::from(u16::from_be_bytes(*len));
    let (v, rest) = rest.split_at_checked(n)?;
    *enc = rest;
    Some(v)
}

pub(super) fn push_field(out: &mut Vec<u8>, v: &[u8]) {
    debug_assert!(v.len() <= MAX_VALUE);
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

pub(super) fn hash_get<'a>(enc: &'a [u8], field: &[u8]) -> Option<&'a [u8]> {
    fields(enc).find(|(f, _)| *f == field).map(|(_, v)| v)
}

/// What a key is right now.
#[derive(Clone, Copy, Debug)]
pub(super) enum Key<'a> {
    /// No hold, no waiter.
    None,
    /// A Redis key: its hold's token, deadline and value.
    Redis {
        token: u64,
        deadline: Option<u64>,
        value: Value<'a>,
    },
    /// Held (or waited for) through another protocol.
    Foreign,
}

pub(super) fn key_state<'e>(engine: &'e Engine, name: &[u8]) -> Key<'e> {
    match engine.inspect_detached(name) {
        None => Key::None,
        Some((info, detached)) => held_key(&info, detached.as_ref()),
    }
}

/// What a name with a lock entry is, from its lock and its first detached hold.
fn held_key<'e>(info: &LockInfo, detached: Option<&DetachedHold<'e>>) -> Key<'e> {
    match detached {
        Some(d) if info.exclusive && d.origin == Protocol::Redis as u8 => Key::Redis {
            token: d.token,
            deadline: d.deadline,
            value: Value::decode(d.value),
        },
        _ => Key::Foreign,
    }
}

/// Deletes `name` when it is a Redis string key whose value is `value` (the
/// compare-and-delete), from one lookup; true when it did.
pub(super) fn delete_if_equal(cx: &mut Ctx, name: &[u8], value: &[u8]) -> bool {
    cx.engine.release_detached_if(name, cx.now, |info, d| {
        matches!(held_key(info, Some(d)), Key::Redis { value: Value::Str(v), .. } if v == value)
    })
}

/// Milliseconds left before `deadline` (engine ticks; the hold ends once the clock
/// reaches it), given the engine's ticks per millisecond.
pub(super) fn ms_left(deadline: u64, now: u64, ticks_per_ms: u64) -> i64 {
    (deadline.saturating_sub(now + 1) / ticks_per_ms) as i64
}

/// The token of `name` when it is a Redis string key whose value is `value`.
pub(super) fn string_equal(engine: &Engine, name: &[u8], value: &[u8]) -> Option<u64> {
    match key_state(engine, name) {
        Key::Redis {
            token,
            value: Value::Str(v),
            ..
        } if v == value => Some(token),
        _ => None,
    }
}

/// Creates a Redis key (`name` must be free); writes `-OOM` and says false when the
/// engine has no room.
pub(super) fn create(cx: &mut Ctx, name: &[u8], value: &[u8], hold: Option<u32>) -> bool {
    let req = AcquireRequest {
        name,
        mode: Mode::Exclusive,
        wait: Some(0),
        hold,
        queue: None,
    };
    match cx
        .engine
        .acquire_detached(cx.client, b"", &req, value, cx.now)
    {
        Acquired::Granted { .. } => true,
        // The detached-hold limits, or `--max-claims`.
        Acquired::Limit | Acquired::Full => {
            err(cx, OOM);
            false
        }
        // Checked free just before: nothing else runs in between.
        other => {
            debug_assert!(false, "create of a free key: {other:?}");
            err(cx, OOM);
            false
        }
    }
}

/// Deletes a Redis key; its waiters are granted.
pub(super) fn delete(cx: &mut Ctx, name: &[u8], token: u64) {
    let _ = cx.engine.release_detached(name, token, cx.now);
}

/// `PEXPIRE` of a Redis key: 0 or less deletes it.
pub(super) fn expire(cx: &mut Ctx, name: &[u8], token: u64, ms: i64) {
    if ms <= 0 {
        delete(cx, name, token);
    } else {
        let hold = u32::try_from(ms).unwrap_or(u32::MAX);
        let _ = cx.engine.extend_detached(name, token, Some(hold), cx.now);
    }
}
