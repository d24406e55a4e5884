//! Round trips at the edges: zero, `u64::MAX`, overflow, empty and non-digit input.

use super::*;

#[test]
fn numbers_and_hex() {
    let mut b = [0u8; 20];
    assert_eq!(fmt_u64(0, &mut b), b"0");
    assert_eq!(fmt_u64(u64::MAX, &mut b), b"18446744073709551615");
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u64(b"18446744073709551616"), None);
    assert_eq!(parse_u64(b""), None);
    assert_eq!(parse_u64(b"1a"), None);
    let mut v = Vec::new();
    push_hex16(&mut v, 0x0123_4567_89ab_cdef);
    assert_eq!(v, b"0123456789abcdef");
}
