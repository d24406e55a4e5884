//! Reply lines of lockbox's line protocol cut out of the bytes read, in one pass and
//! without copying: each line's words (split at spaces and tabs) are found while its
//! end is looked for, and only an incomplete line at the end of a read is kept, in the
//! connection's carry buffer, until the read that completes it.
//!
//! # Invariants
//! - A line ends at `\n`; one `\r` just before it is not part of the line.
//! - Words are the non-empty runs between spaces and tabs; a line without a word is
//!   skipped.
//! - Every byte read is handed out in exactly one line, in order, or stays in the carry.

/// Words of a line kept: the id, the kind and two arguments.
pub(crate) const WORDS: usize = 4;

/// One line, split into its first [`WORDS`] words (borrowed from the bytes read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The first words, in order; empty past the line's last word.
    pub(crate) words: [&'a [u8]; WORDS],
    /// The whole line without its end (`\n` or `\r\n`), for messages.
    pub(crate) raw: &'a [u8],
}

/// `0x0101...01`: a byte of 1 in every byte of a word.
const ONES: u64 = u64::MAX / 255;
/// The high bit of every byte of a word.
const HIGHS: u64 = ONES << 7;

/// The position of the first space, tab or `\n` of `input` at or after `i`.
///
/// Eight bytes at a time: `(x - 0x21..21) & !x & 0x80..80` flags every byte of `x`
/// below `0x21` (and possibly a byte after a flagged one, through the borrow), so the
/// few flagged bytes are the only ones looked at one by one.
fn next_split(input: &[u8], mut i: usize) -> Option<usize> {
    while let Some(chunk) = input.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let mut flags = x.wrapping_sub(ONES * 0x21) & !x & HIGHS;
        while flags != 0 {
            let k = i + (flags.trailing_zeros() / 8) as usize;
            if matches!(input[k], b' ' | b'\t' | b'\n') {
                return Some(k);
            }
            flags &= flags - 1;
        }
        i += 8;
    }
    input
        .get(i..)?
        .iter()
        .position(|c| matches!(c, b' ' | b'\t' | b'\n'))
        .map(|k| i + k)
}

/// The next line of `input` from `*pos` that has a word; `*pos` moves past its `\n`.
/// `None` when no such line is complete: `*pos` is then past the last `\n` (the lines
/// before it have no word), and what follows it is an incomplete line.
pub(crate) fn next_line<'a>(input: &'a [u8], pos: &mut usize) -> Option<Line<'a>> {
    let mut line_start = *pos;
    let mut words: [&'a [u8]; WORDS] = [b""; WORDS];
    let mut n = 0;
    // where the word being read starts: just after the last split
    let mut word = line_start;
    while let Some(k) = next_split(input, word) {
        let c = input[k];
        let mut end = k;
        // `\r` and other control bytes are word bytes, but for one `\r` at the line end
        if c == b'\n' && end > line_start && input[end - 1] == b'\r' {
            end -= 1;
        }
        // (a word that was only the cut-off `\r` is none)
        if word < end {
            if n < WORDS {
                words[n] = &input[word..end];
            }
            n += 1;
        }
        word = k + 1;
        if c == b'\n' {
            *pos = k + 1;
            if n > 0 {
                return Some(Line {
                    words,
                    raw: &input[line_start..end],
                });
            }
            line_start = k + 1;
        }
    }
    None
}

/// Hands every complete line of `carry` followed by `data` to `on_line`, in order,
/// while it returns `true`, and leaves in `carry` the incomplete line at the end.
/// Returns `false` (and leaves `carry` as it is) when `on_line` stopped it.
///
/// `data` is read in place: only a line begun in an earlier read is completed in
/// `carry` (by the bytes of `data` up to its first line end), and only an incomplete
/// line at the end of `data` is copied there.
pub(crate) fn feed(
    carry: &mut Vec<u8>,
    mut data: &[u8],
    mut on_line: impl FnMut(&Line<'_>) -> bool,
) -> bool {
    if !carry.is_empty() {
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            carry.extend_from_slice(data);
            // the carry may hold complete lines from before the workload (after the
            // connection check): hand them out, as a later line end would
            let Some(used) = each_line(carry, &mut on_line) else {
                return false;
            };
            carry.drain(..used);
            return true;
        };
        carry.extend_from_slice(&data[..=nl]);
        if each_line(carry, &mut on_line).is_none() {
            return false;
        }
        carry.clear();
        data = &data[nl + 1..];
    }
    let Some(used) = each_line(data, &mut on_line) else {
        return false;
    };
    carry.extend_from_slice(&data[used..]);
    true
}

/// Hands every complete line of `input` to `on_line` while it returns `true`; the bytes
/// used (up to the last line end), or `None` when `on_line` stopped.
fn each_line(input: &[u8], on_line: &mut impl FnMut(&Line<'_>) -> bool) -> Option<usize> {
    let mut pos = 0;
    while let Some(line) = next_line(input, &mut pos) {
        if !on_line(&line) {
            return None;
        }
    }
    Some(pos)
}

#[cfg(test)]
mod tests;
