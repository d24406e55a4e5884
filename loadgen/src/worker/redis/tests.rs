//! The RESP parser on complete, incomplete and malformed replies.

use super::*;

#[test]
fn resp_parser() {
    assert_eq!(parse_resp(b"+OK\r\n", 0), Ok(Some((Resp::Simple, 5))));
    assert_eq!(parse_resp(b"+OK\r", 0), Ok(None));
    assert_eq!(parse_resp(b"$-1\r\n", 0), Ok(Some((Resp::Nil, 5))));
    assert_eq!(parse_resp(b":1\r\n:0\r\n", 0), Ok(Some((Resp::Int(1), 4))));
    assert_eq!(parse_resp(b"-ERR x\r\n", 0), Ok(Some((Resp::Error, 8))));
    assert_eq!(parse_resp(b"$3\r\nabc\r\n", 0), Ok(Some((Resp::Bulk, 9))));
    assert_eq!(parse_resp(b"$3\r\nab", 0), Ok(None));
    assert_eq!(
        parse_resp(b"*2\r\n$1\r\na\r\n:5\r\n", 0),
        Ok(Some((Resp::Array, 15)))
    );
    assert_eq!(parse_resp(b"*2\r\n$1\r\na\r\n", 0), Ok(None));
    assert!(parse_resp(b"?x\r\n", 0).is_err());
    assert!(parse_resp(b":x\r\n", 0).is_err());
}

#[test]
fn numbers_as_str_parse_reads_them() {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let alphabet = b"0123456789+- a\xff";
    let mut cases: Vec<Vec<u8>> = [
        "",
        "-",
        "+",
        "0",
        "-0",
        "+0",
        "007",
        "-1",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "1 ",
        "--1",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for _ in 0..20_000 {
        let len = (next() % 22) as usize;
        cases.push(
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect(),
        );
    }
    for c in &cases {
        let want = std::str::from_utf8(c)
            .ok()
            .and_then(|s| s.parse::<i64>().ok());
        assert_eq!(parse_i64(c), want, "{:?}", String::from_utf8_lossy(c));
    }
}

#[test]
fn a_line_ends_at_the_first_crlf() {
    assert_eq!(parse_resp(b"+a\nb\r\n", 0), Ok(Some((Resp::Simple, 6))));
    assert_eq!(parse_resp(b"+a\rb\r\n+x", 0), Ok(Some((Resp::Simple, 6))));
    assert_eq!(parse_resp(b"+\r\r\n", 0), Ok(Some((Resp::Simple, 4))));
    assert_eq!(
        parse_resp(b"\n\r\n", 0).map(|r| r.map(|(_, n)| n)).ok(),
        None
    );
    assert_eq!(parse_resp(b"+ab\n", 0), Ok(None));
}
