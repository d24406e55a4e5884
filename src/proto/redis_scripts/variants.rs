//! Script variants: texts that differ from a catalogued one only in comments, white
//! space and quote style ([`same_script`]), and the SHA1s of loaded variants
//! ([`Aliases`]) that `EVALSHA` finds afterwards.
//!
//! # Invariants
//! - [`Aliases`] is a fixed ring of [`MAX_ALIASES`] entries, the oldest forgotten
//!   first: remembering allocates nothing.

use super::*;

/// True when `a` and `b` differ only in comments, white space and quote style.
pub fn same_script(a: &[u8], b: &[u8]) -> bool {
    Normalized::new(a).eq(Normalized::new(b))
}

/// A script's bytes with `--` comments dropped, white space kept only as one space
/// between two word characters, and `'` read as `"`.
struct Normalized<'a> {
    s: &'a [u8],
    i: usize,
    /// A byte to give after the separating space just given.
    held: Option<u8>,
    /// The last byte given was a word character.
    after_word: bool,
}

impl<'a> Normalized<'a> {
    fn new(s: &'a [u8]) -> Self {
        Normalized {
            s,
            i: 0,
            held: None,
            after_word: false,
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Iterator for Normalized<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if let Some(b) = self.held.take() {
            self.after_word = is_word(b);
            return Some(b);
        }
        let mut gap = false;
        while let Some(&b) = self.s.get(self.i) {
            if b.is_ascii_whitespace() {
                gap = true;
                self.i += 1;
            } else if self.s[self.i..].starts_with(b"--") {
                gap = true;
                while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                    self.i += 1;
                }
            } else {
                self.i += 1;
                let b = if b == b'\'' { b'"' } else { b };
                if gap && self.after_word && is_word(b) {
                    self.held = Some(b);
                    self.after_word = false;
                    return Some(b' ');
                }
                self.after_word = is_word(b);
                return Some(b);
            }
        }
        None
    }
}

/// SHA1s of loaded variants, remembered so `EVALSHA` finds them: a fixed ring of
/// [`MAX_ALIASES`], the oldest forgotten first.
#[derive(Clone, Debug)]
pub struct Aliases {
    entries: [(Sha1, u8); MAX_ALIASES],
    len: usize,
    next: usize,
}

impl Default for Aliases {
    fn default() -> Self {
        Aliases {
            entries: [([0; SHA1_LEN], 0); MAX_ALIASES],
            len: 0,
            next: 0,
        }
    }
}

impl Aliases {
    /// No aliases.
    pub fn new() -> Self {
        Aliases::default()
    }

    /// The catalogued script with this SHA1, or the one a remembered variant maps to.
    pub fn resolve(&self, sha: &Sha1) -> Option<&'static Script> {
        by_sha1(sha).or_else(|| {
            let (_, i) = self.entries[..self.len].iter().find(|(s, _)| s == sha)?;
            CATALOGUE.get(usize::from(*i))
        })
    }

    /// Recognises `text` (`EVAL`, `SCRIPT LOAD`) and remembers its SHA1 when it is a
    /// variant; returns the script and the SHA1 of `text`.
    pub fn load(&mut self, text: &[u8]) -> Option<(&'static Script, Sha1)> {
        let (script, sha) = by_text(text)?;
        if self.resolve(&sha).is_none() {
            let index = CATALOGUE.iter().position(|s| core::ptr::eq(s, script))?;
            self.entries[self.next] = (sha, index as u8);
            self.next = (self.next + 1) % MAX_ALIASES;
            self.len = (self.len + 1).min(MAX_ALIASES);
        }
        Some((script, sha))
    }

    /// Forgets every variant (`SCRIPT FLUSH`); the catalogue stays.
    pub fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    /// Variants remembered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no variant is remembered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
