//! The fast path of the native grammar: one pass over the two request shapes that make
//! up a lock cycle, `<id> LOCK <name>` and `<id> UNLOCK <name> [<token>]`, from the
//! first byte of the id to the line end.
//!
//! The general parser ([`super::parse()`]) also has to find the line end first
//! (`memchr`), then split the line into tokens, look the verb up among fifteen and
//! parse options; for these two shapes that is most of a request's user-space cost.
//! Here every byte is classified once, through one table, on the way to the `\n`.
//!
//! Anything else (other verbs, lower-case verbs, options, tabs or repeated blanks,
//! leading or trailing blanks, invalid bytes, numbers out of range, a line without its
//! `\n` yet, a line over the connection's limit) is left to the general path, so this
//! module never decides an error: it either returns exactly what the general parser
//! would return for the line, or nothing.
//!
//! What it finds is a [`Fast`] line, not the general parser's `RequestLine`: the
//! session executes it directly (`execute_fast` in the parent module), so no `Request`
//! is built and matched on the lock cycle's path.
//!
//! # Invariants
//! - [`parse_line`] returns `Some((fast, n))` only when `input[..n]` is one complete
//!   line (its `\n` at `n - 1`, a `\r` before it allowed) of at most `max_line` bytes
//!   before the line end, and `super::parse()` of that line is
//!   `Ok(Some(fast.request_line()))`. The tests check this against the general parser
//!   on seeded random lines.

#[cfg(test)]
use super::parse::{Request, RequestLine, Verb};
use super::parse::{MAX_ID, MAX_NAME};
#[cfg(test)]
use crate::engine::{AcquireRequest, Mode};

/// A line of one of the two shapes the fast path takes, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fast<'a> {
    /// `<id> LOCK <name>`: an exclusive acquire with no options.
    Lock {
        /// The request id.
        id: &'a [u8],
        /// The lock name.
        name: &'a [u8],
    },
    /// `<id> UNLOCK <name> [<token>]`.
    Unlock {
        /// The request id.
        id: &'a [u8],
        /// The lock name.
        name: &'a [u8],
        /// The token, when given.
        token: Option<u64>,
    },
}

#[cfg(test)]
impl<'a> Fast<'a> {
    /// The general parser's form of the same line.
    pub(super) fn request_line(self) -> RequestLine<'a> {
        match self {
            Fast::Lock { id, name } => RequestLine {
                id,
                verb: Verb::Lock,
                request: Request::Acquire(AcquireRequest {
                    name,
                    mode: Mode::Exclusive,
                    wait: None,
                    hold: None,
                    queue: None,
                }),
            },
            Fast::Unlock { id, name, token } => RequestLine {
                id,
                verb: Verb::Unlock,
                request: Request::Unlock { name, token },
            },
        }
    }
}

/// Byte class bit: allowed in a request id.
const ID: u8 = 1;
/// Byte class bit: allowed in a name (`%x21-7E / %x80-FF`).
const NAME: u8 = 2;
/// Byte class bit: a decimal digit.
const DIGIT: u8 = 4;

/// The class bits of every byte value.
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0;
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-') {
            bits |= ID;
        }
        if c > b' ' && c != 0x7f {
            bits |= NAME;
        }
        if c.is_ascii_digit() {
            bits |= DIGIT;
        }
        t[b] = bits;
        b += 1;
    }
    t
}

/// Decimal digits of the largest token (`u64::MAX`).
const TOKEN_DIGITS: usize = 20;
/// Digits that can never overflow a `u64` (`10^19 - 1 < u64::MAX`).
const SAFE_DIGITS: usize = 19;

/// `0x0101..01`: one in every byte of a word.
const ONES: u64 = u64::from_le_bytes([1; 8]);
/// `0x8080..80`: the high bit of every byte of a word.
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// The eight bytes at `input[at..]` as a little-endian word (first byte lowest), if
/// there are eight.
fn word_at(input: &[u8], at: usize) -> Option<u64> {
    let bytes = input.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// How many of a word's bytes, from the first, are name bytes (`> 0x20` and not DEL).
///
/// A byte below `0x21` borrows in `w - 0x21..21` and has its high bit clear, so its high
/// bit is set in the first mask; a DEL is a zero byte of `w ^ 0x7f..7f`, found the
/// same way. Borrows only run from a flagged byte upwards, so the lowest flag is exact.
fn name_bytes(w: u64) -> usize {
    let low = w.wrapping_sub(ONES * 0x21) & !w & HIGHS;
    let x = w ^ (ONES * 0x7f);
    let del = x.wrapping_sub(ONES) & !x & HIGHS;
    ((low | del).trailing_zeros() / 8) as usize
}

/// How many of a word's bytes, from the first, are ASCII digits.
///
/// `w ^ 0x30..30` maps the digits to 0-9; a byte is not a digit when that is 10 or more:
/// its low seven bits plus `0x76` reach the high bit (no carry out of the byte), or its
/// high bit was set already.
fn digit_bytes(w: u64) -> usize {
    let t = w ^ (ONES * 0x30);
    let big = ((t & (ONES * 0x7f)).wrapping_add(ONES * 0x76) | t) & HIGHS;
    (big.trailing_zeros() / 8) as usize
}

/// The number written by eight ASCII digits (first byte lowest), if all are digits.
fn eight_digits(w: u64) -> Option<u64> {
    // every byte 0x30..=0x39: its high nibble is 3, and adding 6 does not carry out
    let all_digits = w & (ONES * 0xf0) == ONES * 0x30
        && w.wrapping_add(ONES * 0x06) & (ONES * 0xf0) == ONES * 0x30;
    if !all_digits {
        return None;
    }
    // pairs, then quads, then all eight: each step is `high * 10^k + low` in one multiply
    let v = w & (ONES * 0x0f);
    let v = (v.wrapping_mul(10 << 8 | 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_ffff_0000_ffff;
    Some(v.wrapping_mul(10_000 << 32 | 1) >> 32)
}

/// The line starting at `input[0]` when it is `<id> LOCK <name>` or
/// `<id> UNLOCK <name> [<token>]` in canonical form (single spaces, upper-case verb, no
/// options), with the bytes it takes including its line end; `None` for anything else
/// (see the module doc).
#[inline]
pub(super) fn parse_line(input: &[u8], max_line: usize) -> Option<(Fast<'_>, usize)> {
    // id: 1 to MAX_ID id bytes, then one space. Ids are often numbers: the digits of
    // the first eight bytes in one word step, the rest (if any) a byte at a time.
    let mut i = word_at(input, 0).map_or(0, digit_bytes);
    while i < input.len() && CLASS[usize::from(input[i])] & ID != 0 {
        i += 1;
    }
    if i == 0 || i > MAX_ID || input.get(i) != Some(&b' ') {
        return None;
    }
    let id = &input[..i];
    let rest = &input[i + 1..];
    let (unlock, after_verb) = if rest.starts_with(b"LOCK ") {
        (false, i + 1 + 5)
    } else if rest.starts_with(b"UNLOCK ") {
        (true, i + 1 + 7)
    } else {
        return None;
    };
    // name: 1 to MAX_NAME name bytes, eight at a time while the input has them
    let mut j = after_verb;
    while let Some(chunk) = word_at(input, j) {
        let n = name_bytes(chunk);
        j += n;
        if n < 8 {
            break;
        }
    }
    while j < input.len() && CLASS[usize::from(input[j])] & NAME != 0 {
        j += 1;
    }
    if j == after_verb || j - after_verb > MAX_NAME {
        return None;
    }
    let name = &input[after_verb..j];
    // UNLOCK's optional token: one space, 1 to 20 digits, no overflow
    let mut token = None;
    if unlock && input.get(j) == Some(&b' ') {
        let start = j + 1;
        let mut k = start;
        let mut n: u64 = 0;
        // Eight digits at a time for the first 16 (no overflow: n < 10^16).
        while k + 8 - start <= SAFE_DIGITS {
            match word_at(input, k).and_then(eight_digits) {
                Some(v) => {
                    n = n * 100_000_000 + v;
                    k += 8;
                }
                None => break,
            }
        }
        while k < input.len() && CLASS[usize::from(input[k])] & DIGIT != 0 {
            let d = u64::from(input[k] - b'0');
            n = match k - start {
                // n < 10^18 here: no overflow up to 19 digits
                i if i < SAFE_DIGITS => n * 10 + d,
                i if i < TOKEN_DIGITS => n.checked_mul(10)?.checked_add(d)?,
                _ => return None,
            };
            k += 1;
        }
        if k == start {
            return None;
        }
        token = Some(n);
        j = k;
    }
    // the line end: `\n` or `\r\n`
    let (line_len, used) = match input.get(j..j + 2) {
        Some([b'\n', ..]) => (j, j + 1),
        Some(b"\r\n") => (j, j + 2),
        None if input.get(j) == Some(&b'\n') => (j, j + 1),
        _ => return None,
    };
    if line_len > max_line {
        return None;
    }
    let fast = if unlock {
        Fast::Unlock { id, name, token }
    } else {
        Fast::Lock { id, name }
    };
    Some((fast, used))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;
    use crate::testrng::Rng;

    fn fast(line: &str) -> Option<(RequestLine<'_>, usize)> {
        parse_line(line.as_bytes(), 4096).map(|(f, n)| (f.request_line(), n))
    }

    #[test]
    fn word_helpers() {
        let w = |b: &[u8; 8]| u64::from_le_bytes(*b);
        assert_eq!(eight_digits(w(b"12345678")), Some(12_345_678));
        assert_eq!(eight_digits(w(b"00000000")), Some(0));
        assert_eq!(eight_digits(w(b"99999999")), Some(99_999_999));
        for bad in [
            b"1234567/",
            b"1234567:",
            b"a2345678",
            b"1234 678",
            b"\xb1\xb2345678",
        ] {
            assert_eq!(eight_digits(w(bad)), None, "{bad:?}");
        }
        assert_eq!(digit_bytes(w(b"12345678")), 8);
        assert_eq!(digit_bytes(w(b"1234 678")), 4);
        assert_eq!(digit_bytes(w(b"/0123456")), 0);
        assert_eq!(digit_bytes(w(b"9:345678")), 1);
        assert_eq!(name_bytes(w(b"lg:12345")), 8);
        assert_eq!(name_bytes(w(b"lg:1 345")), 4);
        assert_eq!(name_bytes(w(b"\n2345678")), 0);
        assert_eq!(name_bytes(w(b"ab\x7f\x01 \n\t\r")), 2);
        assert_eq!(name_bytes(w(b"\xff\x80\xa1!~\x7f12")), 5);
        // every single byte value in every position agrees with the class table
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = *b"abcdefgh";
                bytes[pos] = b;
                let want = if CLASS[usize::from(b)] & NAME != 0 {
                    8
                } else {
                    pos
                };
                assert_eq!(name_bytes(w(&bytes)), want, "byte {b:#x} at {pos}");
                let mut digits = *b"31415926";
                digits[pos] = b;
                let ok = b.is_ascii_digit();
                assert_eq!(
                    eight_digits(w(&digits)).is_some(),
                    ok,
                    "byte {b:#x} at {pos}"
                );
                let run = if ok { 8 } else { pos };
                assert_eq!(digit_bytes(w(&digits)), run, "byte {b:#x} at {pos}");
            }
        }
    }

    #[test]
    fn takes_the_two_cycle_shapes() {
        let (l, n) = fast("17 LOCK jobs:1\nrest").unwrap();
        assert_eq!(n, 15);
        assert_eq!(l, parse(b"17 LOCK jobs:1").unwrap().unwrap());
        let (l, n) = fast("a.b UNLOCK jobs:1 18446744073709551615\r\n").unwrap();
        assert_eq!(n, 40);
        assert_eq!(
            l.request,
            Request::Unlock {
                name: b"jobs:1",
                token: Some(u64::MAX)
            }
        );
        let (l, n) = fast("a UNLOCK b 18446744073709551615\nnext line\n").unwrap();
        assert_eq!(n, 32);
        assert_eq!(
            l.request,
            Request::Unlock {
                name: b"b",
                token: Some(u64::MAX)
            }
        );
        let (l, _) = fast("a UNLOCK b 00000000000000000042\nnext line\n").unwrap();
        assert_eq!(
            l.request,
            Request::Unlock {
                name: b"b",
                token: Some(42)
            }
        );
        let (l, _) = fast("x UNLOCK n\n").unwrap();
        assert_eq!(
            l.request,
            Request::Unlock {
                name: b"n",
                token: None
            }
        );
    }

    #[test]
    fn leaves_everything_else_to_the_general_parser() {
        for line in [
            "17 LOCK jobs:1",                              // no line end yet
            "17 LOCK jobs:1\r",                            // no line end yet
            "17 lock jobs:1\n",                            // lower case
            "17 LOCK jobs:1 wait=5\n",                     // options
            "17 LOCK  jobs:1\n",                           // two blanks
            "17\tLOCK jobs:1\n",                           // tab
            " 17 LOCK jobs:1\n",                           // leading blank
            "17 LOCK jobs:1 \n",                           // trailing blank
            "17 LOCK \n",                                  // no name
            "17 LOCK a\rb\n",                              // control byte in the name
            "17 UNLOCK n 18446744073709551616\n",          // token overflows
            "17 UNLOCK n 000000000000000000001\n",         // 21 digits
            "17 UNLOCK n 18446744073709551616\nmore\n",    // overflows
            "17 UNLOCK n 000000000000000000001\nmore\n",   // 21 digits
            "17 UNLOCK n 123456789x\nmore lines\n",        // not a number
            "17 UNLOCK n 12x\n",                           // not a number
            "17 UNLOCK n 1 2\n",                           // too many arguments
            "17 SHARE n\n",                                // another verb
            "017_abcdefghijklmnopqrstuvwxyz0123 LOCK n\n", // id of 33 bytes
            "1/ LOCK n\n",                                 // bad id byte
        ] {
            assert_eq!(fast(line), None, "{line:?}");
        }
        let long = format!("1 LOCK {}\n", "n".repeat(256));
        assert_eq!(fast(&long), None, "name of 256 bytes");
        assert_eq!(parse_line(b"1 LOCK abc\n", 8), None, "over max_line");
        assert!(parse_line(b"1 LOCK abc\n", 10).is_some(), "at max_line");
    }

    /// Seeded random lines close to the two shapes: whatever the fast path takes, the
    /// general parser must parse to the same request, and the canonical ones must be
    /// taken (so the fast path is really used).
    #[test]
    fn agrees_with_the_general_parser() {
        let mut rng = Rng::new(0x5eed_fa57);
        let pieces: [&[u8]; 18] = [
            b"1",
            b"r-9.x:y_z",
            b" ",
            b"  ",
            b"\t",
            b"LOCK",
            b"UNLOCK",
            b"lock",
            b"x",
            b"name/with/slashes",
            b"\x7f",
            b"\xff\x80",
            b"\r",
            b"0",
            b"18446744073709551615",
            b"18446744073709551616",
            b"wait=1",
            b"=",
        ];
        let ids: [&[u8]; 6] = [
            b"1",
            b"id.2",
            b"A-b",
            b"12345678901",
            b"42x:7",
            b"12345678901234567890123456789012",
        ];
        let verbs: [&[u8]; 2] = [b" LOCK ", b" UNLOCK "];
        let names: [&[u8]; 6] = [
            b"n",
            b"q:1",
            b"\xc3\xa9",
            b"zz",
            b"a-rather-long-lock-name:0123456789",
            b"\x7f",
        ];
        let ends: [&[u8]; 4] = [b"\n", b"\r\n", b"", b"\nmore\n"];
        let mut taken = 0;
        for round in 0..20_000 {
            let mut line = Vec::new();
            if round % 2 == 0 {
                // canonical, sometimes with a broken piece
                line.extend(rng.pick(&ids).iter());
                line.extend(rng.pick(&verbs).iter());
                for _ in 0..rng.range_usize(1, 4) {
                    line.extend(rng.pick(&names).iter());
                }
                if rng.chance(50) {
                    line.push(b' ');
                    let t = rng.next_u64() >> rng.below(64);
                    line.extend_from_slice(t.to_string().as_bytes());
                }
                if rng.chance(10) {
                    line.extend(rng.pick(&pieces).iter());
                }
            } else {
                for _ in 0..rng.range_usize(1, 8) {
                    line.extend(rng.pick(&pieces).iter());
                }
            }
            line.extend(rng.pick(&ends).iter());
            let nl = line.iter().position(|&b| b == b'\n');
            match parse_line(&line, 4096) {
                Some((req, used)) => {
                    let req = req.request_line();
                    taken += 1;
                    let nl = nl.expect("taken without a line end");
                    assert_eq!(used, nl + 1, "{line:?}");
                    let body = line[..nl].strip_suffix(b"\r").unwrap_or(&line[..nl]);
                    assert_eq!(parse(body), Ok(Some(req)), "{line:?}");
                }
                None => {
                    // Only lines in canonical form must be taken.
                    if let Some(nl) = nl {
                        let body = line[..nl].strip_suffix(b"\r").unwrap_or(&line[..nl]);
                        let canonical = matches!(
                            parse(body),
                            Ok(Some(RequestLine {
                                verb: Verb::Lock | Verb::Unlock,
                                ..
                            }))
                        ) && body.split(|&b| b == b' ').all(|t| !t.is_empty())
                            && !body.contains(&b'\t')
                            && !body.contains(&b'=')
                            && (body.windows(6).any(|w| w == b" LOCK ")
                                || body.windows(8).any(|w| w == b" UNLOCK "));
                        assert!(!canonical, "canonical line not taken: {line:?}");
                    }
                }
            }
        }
        assert!(taken > 2_500, "only {taken} lines took the fast path");
    }
}
