//! Reply lines: cut from a byte stream ([`LineBuffer`]) and split into an id and a
//! [`Frame`] ([`parse_line`]), without allocating.

use super::{parse_digits, split_space, MAX_REPLY_LINE};
use crate::error::{Error, Result};

/// One reply line, split: what follows the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `OK [fields]` (fields without the leading space; empty when none).
    Ok(&'a str),
    /// `TIMEOUT`.
    Timeout,
    /// `ERR <code> <text>`.
    Err {
        /// The stable code word.
        code: &'a str,
        /// Human text.
        text: &'a str,
    },
    /// `EXPIRED <token>`: a hold of this request ran out and was taken back.
    Expired(u64),
    /// `CANCELLED`: the wait was ended by CANCEL or RESET.
    Cancelled,
    /// `PONG`.
    Pong,
    /// `END <rows>`: the end of a multi-line reply.
    End(u64),
    /// A row of a multi-line reply: `ITEM ...`, `CLIENT ...`, `STAT ...`.
    Row {
        /// The row word.
        kind: &'a str,
        /// The rest of the row.
        rest: &'a str,
    },
}

pub(super) fn protocol(what: &str, line: &str) -> Error {
    Error::Protocol(format!("{what}: {line:?}"))
}

pub(super) fn parse_u64(s: &str, line: &str) -> Result<u64> {
    match parse_digits(s) {
        Some(n) => Ok(n),
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(protocol("number out of range", line))
        }
        None => Err(protocol("expected a number", line)),
    }
}

/// Splits a reply line (without its `\n`; a `\r` before it is not expected) into its id
/// and [`Frame`].
pub fn parse_line(line: &str) -> Result<(&str, Frame<'_>)> {
    let (id, rest) = split_space(line)
        .ok_or_else(|| protocol("reply line without a word after the id", line))?;
    let (word, fields) = split_space(rest).unwrap_or((rest, ""));
    let frame = match word {
        "OK" => Frame::Ok(fields),
        "TIMEOUT" => Frame::Timeout,
        "CANCELLED" => Frame::Cancelled,
        "PONG" => Frame::Pong,
        "EXPIRED" => Frame::Expired(parse_u64(fields, line)?),
        "END" => Frame::End(parse_u64(fields, line)?),
        "ERR" => {
            let (code, text) = split_space(fields).unwrap_or((fields, ""));
            if code.is_empty() {
                return Err(protocol("ERR without a code", line));
            }
            Frame::Err { code, text }
        }
        "ITEM" | "CLIENT" | "STAT" => Frame::Row {
            kind: word,
            rest: fields,
        },
        _ => return Err(protocol("unknown reply word", line)),
    };
    Ok((id, frame))
}

/// The index of the first `\n` in `bytes`, eight bytes at a time.
pub(super) fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Bytes equal to '\n' become zero; the lowest flagged byte is the first zero
        // (flags above a zero byte can be false, below it they cannot).
        let x = u64::from_le_bytes(word) ^ NEWLINES;
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| base + i)
}

/// Splits a byte stream into reply lines of at most [`MAX_REPLY_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        LineBuffer::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its `\n` (and a `\r` before it, if any), or
    /// `Ok(None)` when only a partial line is buffered.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>> {
        let rest = &self.buf[self.start..];
        match find_newline(rest) {
            Some(pos) => {
                let s = self.start;
                self.start += pos + 1;
                let mut line = &self.buf[s..s + pos];
                if let Some(l) = line.strip_suffix(b"\r") {
                    line = l;
                }
                Ok(Some(line))
            }
            None if rest.len() > MAX_REPLY_LINE => Err(Error::Protocol(format!(
                "reply line longer than {MAX_REPLY_LINE} bytes"
            ))),
            None => Ok(None),
        }
    }

    /// Every complete line buffered, as one block ending in `\n` (empty when there is
    /// none), for a caller that handles many lines at once (see
    /// [`crate::session::Session::on_lines`]). Err when the partial line after them is
    /// already longer than [`MAX_REPLY_LINE`].
    pub fn complete_lines(&mut self) -> Result<&[u8]> {
        let rest = &self.buf[self.start..];
        let end = rest.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if rest.len() - end > MAX_REPLY_LINE {
            return Err(Error::Protocol(format!(
                "reply line longer than {MAX_REPLY_LINE} bytes"
            )));
        }
        let s = self.start;
        self.start += end;
        Ok(&self.buf[s..s + end])
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}
