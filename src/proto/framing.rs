//! Line framing for the line protocols (native, lockd, officer, live-mutex): one
//! `\n`-terminated request at a time out of a connection's buffered input, with one rule
//! for lines that never end.
//!
//! # Invariants
//! - A line longer than the codec's `max_line` (not counting a `\r` before its `\n`)
//!   closes the connection after the codec's [`decode_line`] hook has answered it, so a
//!   line that never ends costs at most `max_line + 1` bytes of buffer.
//! - A partial line is never consumed: [`Progress::Incomplete`] leaves it buffered.

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

/// Frames the first `\n`-terminated line of `input`, allowing at most `max_line` bytes
/// before the line end (a `\r` just before the `\n` does not count).
pub fn frame_line(input: &[u8], max_line: usize) -> Framed<'_> {
    match memchr::memchr(b'\n', input) {
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
}

/// Frames one line of `input` and hands it to `execute`. A line over `max_line` is
/// given to `too_long` (which may answer it, or count it) and closes the connection.
pub fn decode_line(
    protocol: Protocol,
    input: &[u8],
    max_line: usize,
    cx: &mut Ctx,
    too_long: impl FnOnce(&[u8], &mut Ctx),
    execute: impl FnOnce(&[u8], &mut Ctx) -> Flow,
) -> Progress {
    match frame_line(input, max_line) {
        Framed::Incomplete => Progress::Incomplete,
        Framed::TooLong(line, consumed) => {
            log::debug!(
                "{} {}: line over {max_line} bytes, closing",
                protocol.as_str(),
                super::Peer::of(cx.engine, cx.client)
            );
            too_long(line, cx);
            Progress::Close(consumed)
        }
        Framed::Complete(line, consumed) => match execute(line, cx) {
            Flow::Continue => Progress::Consumed(consumed),
            Flow::Close => Progress::Close(consumed),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{frame_line, Framed};

    #[test]
    fn frames_lines() {
        assert_eq!(frame_line(b"a\nb", 10), Framed::Complete(b"a", 2));
        assert_eq!(frame_line(b"a\r\n", 1), Framed::Complete(b"a", 3));
        assert_eq!(frame_line(b"\n", 10), Framed::Complete(b"", 1));
        assert_eq!(frame_line(b"abc", 3), Framed::Incomplete);
        assert_eq!(frame_line(b"abc\r", 3), Framed::Incomplete);
        assert_eq!(frame_line(b"abcde", 3), Framed::TooLong(b"abcde", 5));
        assert_eq!(frame_line(b"abcd\nx", 3), Framed::TooLong(b"abcd", 5));
    }
}
