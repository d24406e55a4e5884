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
