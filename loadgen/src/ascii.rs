//! Numbers as ASCII in byte buffers: decimal and hex written into a caller's buffer and
//! decimal read back from a borrowed slice, without allocating (the poll loops build
//! and read every request and reply with these), plus [`show`] for quoting a reply.

/// Write `v` in decimal into `buf`, returning the digits.
pub(crate) fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Append `v` in decimal to `out`.
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = [0u8; 20];
    out.extend_from_slice(fmt_u64(v, &mut b));
}

/// Parse a decimal `u64` (1 to 20 digits, no sign, no overflow).
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
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
    let mut b = [0u8; 20];
    let digits = fmt_u64(v, &mut b);
    out.resize(out.len() + width.saturating_sub(digits.len()), b'0');
    out.extend_from_slice(digits);
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
