//! Compact byte strings: 24 bytes in place, up to [`INLINE`] bytes of content stored
//! inside them, longer content in one heap buffer.
//!
//! The lock table keeps a lock's name and the engine a request's tag in one of these,
//! once per lock and once per claim, so their size is what a million holds cost: a
//! `SmallVec<[u8; 24]>` is 32 bytes and a `SmallVec<[u8; 32]>` 40, a [`Compact`] 24
//! (names and request ids of up to 22 bytes, loadgen's and the Rust client's among
//! them, need no heap buffer). Longer ones take a heap buffer that outlives them: the
//! table keeps its ended locks' name buffers, the engine its ended claims' tag buffers,
//! for the next long name or tag ([`Compact::into_buffer`], [`Compact::in_buffer`]).
//!
//! # Invariants
//! - Content of at most [`INLINE`] bytes is always stored inline (so
//!   [`Compact::spilled`] says whether a heap buffer exists).
//! - A heap buffer holds at least the content (a reused buffer may be longer: only its
//!   first `len` bytes are the content).

use std::fmt;
use std::ops::Deref;

/// The most bytes stored inline.
pub const INLINE: usize = 22;

/// A byte string of any length in 24 bytes (see the module documentation).
#[derive(Clone)]
pub struct Compact(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    /// The content is `buf[..len]`.
    Heap {
        len: u32,
        buf: Box<[u8]>,
    },
}

impl Compact {
    /// The empty string.
    pub const EMPTY: Compact = Compact(Repr::Inline {
        len: 0,
        bytes: [0; INLINE],
    });

    /// A copy of `s`, inline when it fits.
    #[inline]
    pub fn from_slice(s: &[u8]) -> Compact {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s);
            Compact(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Compact(Repr::Heap {
                len: heap_len(s),
                buf: Box::from(s),
            })
        }
    }

    /// A copy of `s` (longer than [`INLINE`]) in the reused heap buffer `buf`, or `buf`
    /// back when it is too short for `s` (or `s` would fit inline).
    pub fn in_buffer(mut buf: Box<[u8]>, s: &[u8]) -> Result<Compact, Box<[u8]>> {
        if s.len() <= INLINE || buf.len() < s.len() {
            return Err(buf);
        }
        buf[..s.len()].copy_from_slice(s);
        Ok(Compact(Repr::Heap {
            len: heap_len(s),
            buf,
        }))
    }

    /// A copy of `s`: inline when it fits, else in the buffer on top of `spare` (a pool
    /// of buffers given back by [`Compact::into_buffer`]) when that one is long enough
    /// (one too short is dropped), else in a new buffer of `fresh` bytes (at least
    /// `s.len()`). So a pool that is never empty makes strings without allocating.
    #[inline(always)]
    pub fn from_spare(spare: &mut Vec<Box<[u8]>>, s: &[u8], fresh: usize) -> Compact {
        if s.len() <= INLINE {
            return Compact::from_slice(s);
        }
        if let Some(buf) = spare.pop() {
            if let Ok(c) = Compact::in_buffer(buf, s) {
                return c;
            }
        }
        let buf = vec![0; fresh.max(s.len())].into_boxed_slice();
        Compact::in_buffer(buf, s).unwrap_or_else(|_| Compact::from_slice(s))
    }

    /// The heap buffer, if the content did not fit inline (for reuse).
    pub fn into_buffer(self) -> Option<Box<[u8]>> {
        match self.0 {
            Repr::Inline { .. } => None,
            Repr::Heap { buf, .. } => Some(buf),
        }
    }

    /// True when the content is in a heap buffer.
    pub fn spilled(&self) -> bool {
        matches!(self.0, Repr::Heap { .. })
    }

    /// The content.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // (`min` instead of a bounds check: the invariants make it a no-op, and the
        // lookups that compare names stay small enough to be inlined.)
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..(*len as usize).min(INLINE)],
            Repr::Heap { len, buf } => &buf[..(*len as usize).min(buf.len())],
        }
    }
}

fn heap_len(s: &[u8]) -> u32 {
    u32::try_from(s.len()).expect("a compact byte string longer than 4 GiB")
}

impl Default for Compact {
    fn default() -> Self {
        Compact::EMPTY
    }
}

impl Deref for Compact {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Compact {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Compact {
    fn eq(&self, other: &Compact) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Compact {}

impl fmt::Debug for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_24_bytes_and_an_option_of_it_too() {
        assert_eq!(std::mem::size_of::<Compact>(), 24);
        assert_eq!(std::mem::size_of::<Option<Compact>>(), 24);
    }

    #[test]
    fn round_trips_every_length_inline_up_to_22_bytes() {
        for n in 0..=300usize {
            let s: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let c = Compact::from_slice(&s);
            assert_eq!(c.as_slice(), &s[..], "length {n}");
            assert_eq!(&*c.clone(), &s[..], "clone of length {n}");
            assert_eq!(c.spilled(), n > INLINE, "length {n}");
            assert_eq!(c.into_buffer().is_some(), n > INLINE);
        }
        assert_eq!(Compact::default().as_slice(), b"");
    }

    #[test]
    fn a_reused_buffer_holds_shorter_content_and_a_short_one_comes_back() {
        let long = [b'x'; 100];
        let buf = Compact::from_slice(&long).into_buffer().unwrap();
        let c = Compact::in_buffer(buf, &[b'y'; 40]).unwrap();
        assert_eq!(c.as_slice(), &[b'y'; 40][..]);
        let buf = c.into_buffer().unwrap();
        assert_eq!(buf.len(), 100, "the same buffer");
        let buf = Compact::in_buffer(buf, &[b'z'; 101]).unwrap_err();
        let buf = Compact::in_buffer(buf, b"short").unwrap_err();
        assert_eq!(buf.len(), 100);
        assert_eq!(Compact::from_slice(b"ab"), Compact::from_slice(b"ab"));
        assert_ne!(Compact::from_slice(b"ab"), Compact::from_slice(b"abc"));
    }
}
