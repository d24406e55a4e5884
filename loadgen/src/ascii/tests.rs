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

#[test]
fn padded_request_ids_round_trip_in_their_exact_form_only() {
    let id = |v, w| {
        let mut out = Vec::new();
        push_id(&mut out, v, w);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(id(7, 0), "7");
    assert_eq!(id(7, 1), "7");
    assert_eq!(id(0, 4), "0000");
    assert_eq!(id(123, 32), format!("{}123", "0".repeat(29)));
    assert_eq!(id(u64::MAX, 32).len(), 32);
    // wider than the width: written whole
    assert_eq!(id(12345, 3), "12345");
    for w in [0, 1, 3, 5, 20, 23, 32] {
        for v in [0, 1, 9, 10, 99, 12345, 1 << 40, u64::MAX] {
            assert_eq!(parse_id(id(v, w).as_bytes(), w), Some(v), "{v} width {w}");
        }
    }
    // any other form of the same number is refused with a width
    assert_eq!(parse_id(b"0007", 3), None);
    assert_eq!(parse_id(b"07", 3), None);
    assert_eq!(parse_id(b"00", 1), None);
    assert_eq!(parse_id(b"012345", 3), None);
    assert_eq!(parse_id(b"000", 3), Some(0));
    assert_eq!(parse_id(b"", 3), None);
    assert_eq!(parse_id(b"00x", 3), None);
    assert_eq!(
        parse_id(format!("{}1", "0".repeat(32)).as_bytes(), 32),
        None
    );
}
