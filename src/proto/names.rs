//! Foreign names and the engine names they map to.
//!
//! Engine lock names are 1 to [`MAX_NAME`] bytes without ASCII controls, space or DEL
//! (the native grammar); foreign names are any bytes, possibly empty. [`engine_name`]
//! writes each byte `0x00..=0x20`, `0x7F` and `%` as `%XX` (uppercase hex) and leaves
//! every other byte alone; the empty name becomes `%`. So `job 1` is `job%201` in native
//! `LIST` and `50%` is `50%25`, and an ordinary name is itself, which is what makes a
//! lockd `g x`, an officer `lock x`, a locker `x`, a live-mutex key `x` and a native
//! `LOCK x` the same lock. A name whose image is longer than the limit has no engine
//! name (each codec says what it answers then).
//!
//! Client names use the same escape with the native client-name limit
//! ([`MAX_CLIENT_NAME`], see [`client_name`]), so a name set through a foreign protocol
//! is always a valid native client name.
//!
//! # Invariants
//! - The mapping is injective: [`wire_name`] inverts [`engine_name`] and rejects every
//!   string that is no image.
//! - Every image is a valid native name of at most the limit it was built for.

use super::native::MAX_CLIENT_NAME;
use crate::engine::{Engine, MAX_NAME};

/// An escaped name built on the stack: at most [`MAX_NAME`] bytes.
#[derive(Clone, Copy)]
pub struct EngineName {
    buf: [u8; MAX_NAME],
    len: usize,
}

impl EngineName {
    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Debug for EngineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// True for a byte the escape writes as `%XX`.
fn needs_escape(b: u8) -> bool {
    b <= b' ' || b == 0x7f || b == b'%'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `prefix` followed by the escaped `name`, or `None` when that is longer than `max`
/// (at most [`MAX_NAME`]) bytes. `prefix` must itself be a valid name part.
fn escape(prefix: &[u8], name: &[u8], max: usize) -> Option<EngineName> {
    debug_assert!(max <= MAX_NAME);
    let mut n = EngineName {
        buf: [0; MAX_NAME],
        len: 0,
    };
    let mut push = |b: u8| {
        if n.len == max {
            return None;
        }
        n.buf[n.len] = b;
        n.len += 1;
        Some(())
    };
    for &b in prefix {
        push(b)?;
    }
    if name.is_empty() {
        push(b'%')?;
    }
    for &b in name {
        if needs_escape(b) {
            push(b'%')?;
            push(HEX[usize::from(b >> 4)])?;
            push(HEX[usize::from(b & 15)])?;
        } else {
            push(b)?;
        }
    }
    Some(n)
}

/// The engine lock name of a foreign `name` under `prefix` (see the module doc), or
/// `None` when it is longer than [`MAX_NAME`] bytes.
pub fn engine_name(prefix: &[u8], name: &[u8]) -> Option<EngineName> {
    escape(prefix, name, MAX_NAME)
}

/// True when `name` is its own engine name (`engine_name(b"", name)` is `name`): 1 to
/// [`MAX_NAME`] bytes, none of which the escape writes as `%XX`. A codec can then use
/// the bytes it was sent as they are, without building an [`EngineName`].
pub fn is_plain(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.iter().any(|&b| needs_escape(b))
}

/// The engine client name of a foreign client name: escaped like a lock name, so it is
/// a valid native client name; `None` when `name` is empty or its image is longer than
/// [`MAX_CLIENT_NAME`] bytes.
pub fn client_name(name: &[u8]) -> Option<EngineName> {
    if name.is_empty() {
        return None;
    }
    escape(b"", name, MAX_CLIENT_NAME)
}

/// The foreign name whose escaped form is `escaped`, if there is one.
pub fn wire_name(escaped: &[u8]) -> Option<Vec<u8>> {
    if escaped == b"%" {
        return Some(Vec::new());
    }
    let hex = |b: u8| HEX.iter().position(|&h| h == b).map(|v| v as u8);
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        let b = escaped[i];
        if b == b'%' {
            let hi = hex(*escaped.get(i + 1)?)?;
            let lo = hex(*escaped.get(i + 2)?)?;
            let v = hi << 4 | lo;
            if !needs_escape(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if needs_escape(b) {
            return None;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

/// The foreign name of engine name `escaped` when it is one and is UTF-8: the names
/// the JSON protocols (officer, live-mutex) can list.
pub fn utf8_name(escaped: &[u8]) -> Option<String> {
    String::from_utf8(wire_name(escaped)?).ok()
}

/// Holds on engine name `name` (0 when it is free).
pub fn holders(engine: &Engine, name: &[u8]) -> u32 {
    engine.inspect(name).map_or(0, |(info, _)| info.holders)
}

/// Requests waiting on engine name `name`.
pub fn waiters(engine: &Engine, name: &[u8]) -> u32 {
    engine.inspect(name).map_or(0, |(info, _)| info.waiters)
}

/// Foreign names that exercise the escape (for the codecs' tests).
/// Foreign names that exercise the escape (for the codecs' tests).
#[cfg(test)]
pub(crate) const SAMPLE_NAMES: [&[u8]; 11] = [
    b"x",
    b"",
    b"a b",
    b"50%",
    b"%",
    b"%shared:x",
    b"shared:x",
    b"tab\there",
    b"\x7f\x00",
    "caf\u{e9}".as_bytes(),
    b"%41",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::native::valid_name;

    #[test]
    fn escaping_round_trips_and_keeps_plain_names() {
        for name in SAMPLE_NAMES {
            let e = engine_name(b"", name).unwrap();
            assert!(valid_name(e.as_bytes(), MAX_NAME), "{e:?} is no valid name");
            assert_eq!(wire_name(e.as_bytes()).as_deref(), Some(name), "{e:?}");
            let p = engine_name(b"%p:", name).unwrap();
            assert_eq!(&p.as_bytes()[..3], b"%p:");
            assert_eq!(&p.as_bytes()[3..], e.as_bytes());
        }
        assert_eq!(
            engine_name(b"", b"plain.name:1").unwrap().as_bytes(),
            b"plain.name:1"
        );
        assert_eq!(engine_name(b"", b"a b%").unwrap().as_bytes(), b"a%20b%25");
        assert_eq!(engine_name(b"", b"").unwrap().as_bytes(), b"%");
    }

    /// The escape written a byte at a time, as the module doc states it.
    fn escape_plainly(prefix: &[u8], name: &[u8], max: usize) -> Option<Vec<u8>> {
        let mut out = prefix.to_vec();
        if name.is_empty() {
            out.push(b'%');
        }
        for &b in name {
            if needs_escape(b) {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            } else {
                out.push(b);
            }
        }
        (out.len() <= max).then_some(out)
    }

    #[test]
    fn escape_and_is_plain_agree_with_the_plain_statement() {
        let mut rng = crate::testrng::Rng::new(0x4a3e_5ca9);
        let any = b"ab%: \x00\x7f\xff\t";
        let plain = b"ab:\xff";
        for round in 0..20_000 {
            let max = if rng.chance(50) {
                MAX_NAME
            } else {
                MAX_CLIENT_NAME
            };
            // Around the limit now and then, with or without bytes that need the escape.
            let len = if round % 4 == 0 {
                rng.range_usize(max - 6, max + 2)
            } else {
                rng.range_usize(0, 12)
            };
            let bytes: &[u8] = if rng.chance(50) { plain } else { any };
            let name: Vec<u8> = (0..len).map(|_| *rng.pick(bytes)).collect();
            let prefix: &[u8] = if rng.chance(50) { b"" } else { b"%p:" };
            let want = escape_plainly(prefix, &name, max);
            assert_eq!(
                escape(prefix, &name, max).map(|n| n.as_bytes().to_vec()),
                want,
                "{name:?} under {prefix:?}, most {max}"
            );
            if prefix.is_empty() && max == MAX_NAME {
                assert_eq!(is_plain(&name), want.as_ref() == Some(&name), "{name:?}");
            }
        }
    }

    #[test]
    fn only_images_decode() {
        for bad in ["%41", "50%", "%2", "%g0", "a%20%", "%%", "%20x%", "a b", ""] {
            assert_eq!(wire_name(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn length_limits() {
        assert!(engine_name(b"", &[b'a'; MAX_NAME]).is_some());
        assert!(engine_name(b"", &[b'a'; MAX_NAME + 1]).is_none());
        assert!(engine_name(b"", &[b' '; MAX_NAME / 3]).is_some());
        assert!(engine_name(b"", &[b' '; MAX_NAME / 3 + 1]).is_none());
        assert!(engine_name(b"ab", &[b'a'; MAX_NAME - 2]).is_some());
        assert!(engine_name(b"ab", &[b'a'; MAX_NAME - 1]).is_none());
    }

    #[test]
    fn client_names_are_valid_native_client_names() {
        for name in [
            &b"the boss"[..],
            b"cr\rin",
            b"\x1b[31m",
            b"\x7f",
            b"%",
            "caf\u{e9}".as_bytes(),
            &[b'n'; MAX_CLIENT_NAME],
            &[b' '; MAX_CLIENT_NAME / 3],
        ] {
            let c = client_name(name).unwrap();
            assert!(valid_name(c.as_bytes(), MAX_CLIENT_NAME), "{c:?}");
            assert_eq!(wire_name(c.as_bytes()).as_deref(), Some(name));
        }
        assert!(client_name(b"").is_none());
        assert!(client_name(&[b'n'; MAX_CLIENT_NAME + 1]).is_none());
        assert!(client_name(&[b' '; MAX_CLIENT_NAME / 3 + 1]).is_none());
        assert!(client_name(&[b'n'; 300]).is_none());
    }
}
