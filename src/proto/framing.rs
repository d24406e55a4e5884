//! Line framing for the line protocols (native, lockd, officer, live-mutex): one
//! `\n`-terminated request at a time out of a connection's buffered input, with one rule
//! for lines that never end.
//!
//! # Invariants
//! - A line longer than the codec's `max_line` (not counting a `\r` before its `\n`)
//!   closes the connection after the codec's [`decode_line`] hook has answered it, so a
//!   line that never ends costs at most `max_line + 1` bytes of buffer.
//! - A partial line is never consumed: [`Progress::Incomplete`] leaves it buffered.
//! - [`Lines`] remembers how far a partial line has been searched for its `\n`, so a
//!   line that arrives a byte at a time costs O(its length) in all, not O(length^2).
//!   That is sound because the next input after `Incomplete` starts at the same byte.

use super::{Ctx, Progress, Protocol};

/// One request line framed out of a connection's buffered input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A complete line (without `\n` and a `\r` before it) and the bytes it used.
    Complete(&'a [u8], usize),
    /// No `\n` yet, and the partial line is still within the limit.
    Incomplete,
    /// Over `max_line`: the line (or its start) and the bytes to drop.
    TooLong(&'a [u8], usize),
}

/// One connection's line framing: the line limit, and how much of the buffered partial
/// line is known to hold no `\n`.
#[derive(Clone, Copy, Debug)]
pub struct Lines {
    max_line: usize,
    scanned: usize,
}

impl Lines {
    /// Framing with lines of at most `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Lines {
            max_line,
            scanned: 0,
        }
    }

    /// The line limit.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Changes the line limit (from the next line on).
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }

    /// Forgets how far the partial line was searched: the caller consumed the buffered
    /// input's first line without framing it here (the native fast path).
    pub fn restart(&mut self) {
        self.scanned = 0;
    }

    /// Frames the first line of `input`, the connection's buffered input, which starts
    /// where the input of the previous call started unless that call framed a line.
    pub fn frame<'a>(&mut self, input: &'a [u8]) -> Framed<'a> {
        let framed = frame_line(input, self.max_line, self.scanned.min(input.len()));
        self.scanned = match framed {
            Framed::Incomplete => input.len(),
            _ => 0,
        };
        framed
    }
}

/// Frames the first `\n`-terminated line of `input`, allowing at most `max_line` bytes
/// before the line end (a `\r` just before the `\n` does not count). The first
/// `scanned` bytes are known to hold no `\n` and are not searched again.
pub fn frame_line(input: &[u8], max_line: usize, scanned: usize) -> Framed<'_> {
    #[cfg(test)]
    searched::add(input.len() - scanned);
    match memchr::memchr(b'\n', &input[scanned..]).map(|i| scanned + i) {
        Some(nl) => {
            let line = input[..nl].strip_suffix(b"\r").unwrap_or(&input[..nl]);
            if line.len() > max_line {
                Framed::TooLong(line, nl + 1)
            } else {
                Framed::Complete(line, nl + 1)
            }
        }
        // The partial line may still get a `\r` before its `\n`: allow one byte more.
        None if input.len() > max_line + 1 => Framed::TooLong(input, input.len()),
        None => Framed::Incomplete,
    }
}

/// What the connection does after a request line was executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on reading requests.
    Continue,
    /// Close once the output is flushed.
    Close,
    /// Close once the output is flushed, after the auth-failure delay.
    CloseDelayed,
}

/// Hands a line framed by [`Lines::frame`] to `execute`. A line over the limit is
/// given to `too_long` (which may answer it, or count it) and closes the connection.
pub fn decode_line(
    protocol: Protocol,
    framed: Framed,
    cx: &mut Ctx,
    too_long: impl FnOnce(&[u8], &mut Ctx),
    execute: impl FnOnce(&[u8], &mut Ctx) -> Flow,
) -> Progress {
    match framed {
        Framed::Incomplete => Progress::Incomplete,
        Framed::TooLong(line, consumed) => {
            log::debug!(
                "{} {}: line over the limit, closing",
                protocol.as_str(),
                super::Peer::of(cx.engine, cx.client)
            );
            too_long(line, cx);
            Progress::Close(consumed)
        }
        Framed::Complete(line, consumed) => match execute(line, cx) {
            Flow::Continue => Progress::Consumed(consumed),
            Flow::Close => Progress::Close(consumed),
            Flow::CloseDelayed => Progress::CloseDelayed(consumed),
        },
    }
}

/// Bytes searched for a line end on this thread, so tests count work, not time.
#[cfg(test)]
mod searched {
    use std::cell::Cell;

    thread_local! {
        static BYTES: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn add(n: usize) {
        BYTES.with(|b| b.set(b.get() + n));
    }

    pub(super) fn get() -> usize {
        BYTES.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::{frame_line, searched, Framed, Lines};

    #[test]
    fn frames_lines() {
        assert_eq!(frame_line(b"a\nb", 10, 0), Framed::Complete(b"a", 2));
        assert_eq!(frame_line(b"a\r\n", 1, 0), Framed::Complete(b"a", 3));
        assert_eq!(frame_line(b"\n", 10, 0), Framed::Complete(b"", 1));
        assert_eq!(frame_line(b"abc", 3, 0), Framed::Incomplete);
        assert_eq!(frame_line(b"abc\r", 3, 0), Framed::Incomplete);
        assert_eq!(frame_line(b"abcde", 3, 0), Framed::TooLong(b"abcde", 5));
        assert_eq!(frame_line(b"abcd\nx", 3, 0), Framed::TooLong(b"abcd", 5));
    }

    /// A line that arrives one byte per read is searched once in all, not from its
    /// start after every byte (n^2 / 2 bytes for a line of n).
    #[test]
    fn a_trickled_line_is_searched_once() {
        let n = 4000;
        let mut line = vec![b'x'; n];
        line.push(b'\n');
        let mut lines = Lines::new(n);
        let before = searched::get();
        for end in 1..=line.len() {
            let framed = lines.frame(&line[..end]);
            if end < line.len() {
                assert_eq!(framed, Framed::Incomplete);
            } else {
                assert_eq!(framed, Framed::Complete(&line[..n], n + 1));
            }
        }
        let work = searched::get() - before;
        assert!(
            work <= 2 * (n + 1),
            "{work} bytes searched for a line of {n}"
        );
        // After a framed line the next one is searched from its own start.
        assert_eq!(lines.frame(b"ab\n"), Framed::Complete(b"ab", 3));
        assert_eq!(lines.frame(b"c"), Framed::Incomplete);
        assert_eq!(lines.frame(b"cd\n"), Framed::Complete(b"cd", 3));
    }
}
