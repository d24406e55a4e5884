//! Script variants: texts that differ from a catalogued one only in comments, white
//! space and quote style ([`same_script`]), and the SHA1s of loaded variants
//! ([`Aliases`]) that `EVALSHA` finds afterwards.
//!
//! # Invariants
//! - [`Aliases`] is a fixed ring of [`MAX_ALIASES`] entries, the oldest forgotten
//!   first: remembering a SHA1 allocates nothing.
//! - The text memo is [`MAX_MEMO`] buffers of at most [`MAX_MEMO_TEXT`] bytes each,
//!   reused: only remembering a text longer than its buffer's capacity allocates, so
//!   repeating an `EVAL` allocates nothing.
//! - A memo hit answers exactly what the full recognition would: the memo holds only
//!   texts it recognised, with their SHA1, and is used only while that SHA1's alias is
//!   still in the ring (so `EVALSHA` after the `EVAL` finds it, as before); `clear`
//!   forgets the memo with the aliases.

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
/// [`MAX_ALIASES`], the oldest forgotten first. The last [`MAX_MEMO`] variant texts are
/// also remembered by their bytes, so an `EVAL` that sends one of them again is found
/// by one comparison instead of a [`same_script`] pass over the catalogue and a SHA1.
#[derive(Clone, Debug)]
pub struct Aliases {
    entries: [(Sha1, u8); MAX_ALIASES],
    len: usize,
    next: usize,
    memo: [Memo; MAX_MEMO],
    memo_next: usize,
}

/// One remembered variant text (empty: unused; an empty text is never a script).
#[derive(Clone, Debug, Default)]
struct Memo {
    text: Vec<u8>,
    /// Its catalogue index.
    script: u8,
    /// The SHA1 of `text`.
    sha: Sha1,
    /// The alias ring entry that holds `sha`; the memo is good while it still does.
    slot: u8,
}

impl Default for Aliases {
    fn default() -> Self {
        Aliases {
            entries: [([0; SHA1_LEN], 0); MAX_ALIASES],
            len: 0,
            next: 0,
            memo: Default::default(),
            memo_next: 0,
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
        if let Some(s) = by_exact_text(text) {
            return Some((s, s.sha1));
        }
        let memo = self
            .memo
            .iter()
            .position(|m| !m.text.is_empty() && m.text.len() == text.len() && m.text == text);
        if let Some(hit) = memo.and_then(|i| self.memo_hit(i)) {
            return Some(hit);
        }
        let script = CATALOGUE
            .iter()
            .find(|s| same_script(s.text.as_bytes(), text))?;
        let sha = sha1_of(text);
        let index = CATALOGUE.iter().position(|s| core::ptr::eq(s, script))? as u8;
        let slot = match self.entries[..self.len].iter().position(|(s, _)| *s == sha) {
            Some(slot) => slot,
            None => {
                let slot = self.next;
                self.entries[slot] = (sha, index);
                self.next = (self.next + 1) % MAX_ALIASES;
                self.len = (self.len + 1).min(MAX_ALIASES);
                slot
            }
        };
        if text.len() <= MAX_MEMO_TEXT {
            // A stale memo of this text is brought up to date in place.
            let i = memo.unwrap_or_else(|| {
                let i = self.memo_next;
                self.memo_next = (i + 1) % MAX_MEMO;
                i
            });
            let m = &mut self.memo[i];
            m.text.clear();
            m.text.extend_from_slice(text);
            (m.script, m.sha, m.slot) = (index, sha, slot as u8);
        }
        Some((script, sha))
    }

    /// Memo `i`'s script and SHA1, while its alias is still in the ring.
    fn memo_hit(&self, i: usize) -> Option<(&'static Script, Sha1)> {
        let m = &self.memo[i];
        let slot = usize::from(m.slot);
        if slot >= self.len || self.entries[slot] != (m.sha, m.script) {
            return None; // its alias was forgotten: recognise it afresh
        }
        Some((CATALOGUE.get(usize::from(m.script))?, m.sha))
    }

    /// Forgets every variant (`SCRIPT FLUSH`); the catalogue stays.
    pub fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
        for m in &mut self.memo {
            m.text.clear();
        }
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
