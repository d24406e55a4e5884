//! Numbers as ASCII in byte buffers: decimal and hex written into a caller's buffer and
//! decimal read back from a borrowed slice, without allocating (the poll loops build
//! and read every request and reply with these), plus [`show`] for quoting a reply.

/// `"00"`, `"01"`, ... `"99"`: the decimal digits of every number below 100, so
/// numbers are written two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Most decimal digits of a `u64`.
const U64_DIGITS: usize = 20;

/// How many decimal digits `v` has.
fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Write `v` in decimal at the start of `buf`, returning how many digits.
fn fmt_left(mut v: u64, buf: &mut [u8; U64_DIGITS]) -> usize {
    let n = decimal_len(v);
    let mut i = n;
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i] = DIGIT_PAIRS[d];
        buf[i + 1] = DIGIT_PAIRS[d + 1];
    }
    if v >= 10 {
        let d = v as usize * 2;
        buf[0] = DIGIT_PAIRS[d];
        buf[1] = DIGIT_PAIRS[d + 1];
    } else {
        buf[0] = b'0' + v as u8;
    }
    n
}

/// Write `v` in decimal into `buf`, returning the digits.
pub(crate) fn fmt_u64(v: u64, buf: &mut [u8; U64_DIGITS]) -> &[u8] {
    let n = fmt_left(v, buf);
    &buf[..n]
}

/// Append `v` in decimal to `out`.
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = [0u8; U64_DIGITS];
    let n = fmt_left(v, &mut b);
    // A copy of the whole (fixed-size) array is a few moves, not a call; the bytes past
    // the digits are cut off again.
    let len = out.len();
    out.extend_from_slice(&b);
    out.truncate(len + n);
}

/// Parse a decimal `u64` (1 to 20 digits, no sign, no overflow).
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > U64_DIGITS {
        return None;
    }
    if b.len() < U64_DIGITS {
        // At most 19 digits: below 10^19, no overflow possible.
        let mut v: u64 = 0;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u64::from(d);
        }
        return Some(v);
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Append request id `v` in decimal, left-padded with `0` to `width` bytes (`--id-len`;
/// 0: no padding). An id with more digits than `width` is written whole, never cut, so
/// ids stay distinct.
pub(crate) fn push_id(out: &mut Vec<u8>, v: u64, width: usize) {
    let n = decimal_len(v);
    if width > n {
        out.resize(out.len() + (width - n), b'0');
    }
    push_u64(out, v);
}

/// Parse a request id as [`push_id`] writes it with `width`: with a width, only that
/// exact form (`width` bytes, or the bare digits of an id longer than that), so a
/// reply whose id differs from the request's by a byte is a reply to no request.
pub(crate) fn parse_id(b: &[u8], width: usize) -> Option<u64> {
    if width == 0 {
        return parse_u64(b);
    }
    let zeros = b.iter().take_while(|&&c| c == b'0').count();
    // keep one digit of an all-zero id
    let digits = &b[zeros.min(b.len().saturating_sub(1))..];
    let v = parse_u64(digits)?;
    (b.len() == width.max(digits.len())).then_some(v)
}

/// Append `v` as exactly 16 lowercase hex digits.
pub(crate) fn push_hex16(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    out.extend_from_slice(&digits);
}

/// How much of a reply [`show`] quotes.
const SHOWN_BYTES: usize = 200;

/// The first [`SHOWN_BYTES`] bytes of `line`, as text for an error message.
pub(crate) fn show(line: &[u8]) -> String {
    let cut = &line[..line.len().min(SHOWN_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests;
