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

/// The one-digit-per-division formatter and checked parser these replaced: the
/// reference the faster ones must agree with.
fn old_fmt(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        out.insert(0, b'0' + (v % 10) as u8);
        v /= 10;
        if v == 0 {
            return out;
        }
    }
}

fn old_parse(b: &[u8]) -> Option<u64> {
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

#[test]
fn formatting_and_parsing_agree_with_the_digit_by_digit_versions() {
    let mut vals: Vec<u64> = (0..=1000).collect();
    let mut p: u64 = 1;
    for _ in 0..20 {
        vals.extend([p - 1, p, p + 1, p.wrapping_mul(7) / 3]);
        p = p.saturating_mul(10);
    }
    vals.extend([
        u64::MAX,
        u64::MAX - 1,
        u64::MAX / 10,
        10_000_000_000_000_000_000,
    ]);
    let mut x: u64 = 0x1234_5678;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        vals.extend([x, x >> (x % 64)]);
    }
    for &v in &vals {
        let want = old_fmt(v);
        let mut b = [0u8; 20];
        assert_eq!(fmt_u64(v, &mut b), want.as_slice(), "{v}");
        let mut out = b"x".to_vec();
        push_u64(&mut out, v);
        assert_eq!(&out[1..], want.as_slice(), "{v}");
        assert_eq!(parse_u64(&want), Some(v), "{v}");
        for w in [0, 1, 5, 19, 20, 21, 32] {
            let mut out = Vec::new();
            push_id(&mut out, v, w);
            let mut padded = vec![b'0'; w.saturating_sub(want.len())];
            padded.extend_from_slice(&want);
            assert_eq!(out, padded, "{v} width {w}");
        }
    }
    let odd: [&[u8]; 14] = [
        b"",
        b"0",
        b"00",
        b"007",
        b"-1",
        b"+1",
        b"1 ",
        b" 1",
        b"9/",
        b":0",
        b"99999999999999999999",
        b"18446744073709551616",
        b"018446744073709551615",
        b"1844674407370955161a",
    ];
    for b in odd {
        assert_eq!(
            parse_u64(b),
            old_parse(b),
            "{:?}",
            String::from_utf8_lossy(b)
        );
    }
    for len in 1..=21 {
        for c in [b'0', b'9', b'/', b':', b'a', 0xff] {
            let b = vec![c; len];
            assert_eq!(parse_u64(&b), old_parse(&b), "{c} x {len}");
        }
    }
}
