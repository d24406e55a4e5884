//! Unit tests of the native grammar ([`parse`]) and of the auth-file secret; the
//! seeded fuzz of the parser and the wire behaviour are integration tests.

use super::*;
use crate::engine::AcquireRequest;

fn ok(line: &str) -> RequestLine<'_> {
    match parse(line.as_bytes()) {
        Ok(Some(l)) => l,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn code(line: &[u8]) -> (Option<&[u8]>, ErrorCode) {
    match parse(line) {
        Err(e) => (e.id, e.code),
        other => panic!("{line:?}: {other:?}"),
    }
}

#[test]
fn acquire_options_in_any_order_and_case() {
    let l = ok("  r1\tshare jobs:1 QUEUE=3 max=2 hold=10  ");
    assert_eq!((l.id, l.verb), (&b"r1"[..], Verb::Share));
    assert_eq!(
        l.request,
        Request::Acquire(AcquireRequest {
            name: b"jobs:1",
            mode: Mode::Shared { max: 2 },
            wait: None,
            hold: Some(10),
            queue: Some(3),
        })
    );
    let l = ok("a LOCK x wait=0");
    assert_eq!(
        l.request,
        Request::Acquire(AcquireRequest {
            name: b"x",
            mode: Mode::Exclusive,
            wait: Some(0),
            hold: None,
            queue: None,
        })
    );
}

#[test]
fn detached_needs_hold_and_is_0_or_1() {
    let want = AcquireRequest {
        name: b"x",
        mode: Mode::Exclusive,
        wait: None,
        hold: Some(5),
        queue: None,
    };
    assert_eq!(
        ok("a LOCK x hold=5 DETACHED=1").request,
        Request::AcquireDetached(want)
    );
    assert_eq!(
        ok("a LOCK x detached=0 hold=5").request,
        Request::Acquire(want)
    );
    let shared = ok("a SHARE x detached=1 hold=5").request;
    assert!(matches!(
        shared,
        Request::AcquireDetached(AcquireRequest {
            mode: Mode::Shared { max: 0 },
            ..
        })
    ));
    assert_eq!(code(b"a LOCK x detached=1").1, ErrorCode::BadOption);
    assert_eq!(code(b"a LOCK x detached=2 hold=1").1, ErrorCode::BadOption);
    assert_eq!(
        code(b"a LOCK x detached=1 detached=1 hold=1").1,
        ErrorCode::BadOption
    );
    assert_eq!(
        code(b"a EXTEND x 5 hold=1 detached=1").1,
        ErrorCode::BadOption
    );
}

#[test]
fn every_verb_without_arguments_parses_alone() {
    for (line, request) in [
        ("a reset", Request::Reset),
        ("a whoami", Request::Whoami),
        ("a clients", Request::Clients),
        ("a stats", Request::Stats),
        ("a ping", Request::Ping),
        ("a quit", Request::Quit),
        ("a list", Request::List { prefix: b"" }),
    ] {
        assert_eq!(ok(line).request, request, "{line}");
        let extra = format!("{line} x y");
        assert_eq!(code(extra.as_bytes()).1, ErrorCode::BadRequest, "{extra}");
    }
}

#[test]
fn arguments_are_typed() {
    assert_eq!(
        ok("a UNLOCK n 42").request,
        Request::Unlock {
            name: b"n",
            token: Some(42)
        }
    );
    assert_eq!(
        ok("a EXTEND n 7 hold=5").request,
        Request::Extend {
            name: b"n",
            token: 7,
            hold: 5
        }
    );
    assert_eq!(ok("a CANCEL b-2").request, Request::Cancel { rid: b"b-2" });
    assert_eq!(ok("a NAME me").request, Request::Name { name: b"me" });
    assert_eq!(ok("a AUTH s3").request, Request::Auth { secret: b"s3" });
}

#[test]
fn refusals_name_the_id_when_it_can_be_read() {
    assert_eq!(parse(b"   ").unwrap(), None, "blank line");
    assert_eq!(code(b"a/b PING"), (None, ErrorCode::BadRequest));
    assert_eq!(code(b"a"), (Some(&b"a"[..]), ErrorCode::BadRequest));
    assert_eq!(
        code(b"a FROB"),
        (Some(&b"a"[..]), ErrorCode::UnknownCommand)
    );
    assert_eq!(code(b"a LOCK b\x7f").1, ErrorCode::BadName);
    assert_eq!(code(b"a LOCK x max=2").1, ErrorCode::BadOption);
    assert_eq!(code(b"a SHARE x max=0").1, ErrorCode::BadOption);
    assert_eq!(code(b"a LOCK x wait=1 wait=2").1, ErrorCode::BadOption);
    assert_eq!(code(b"a LOCK x wait=4294967296").1, ErrorCode::BadOption);
    assert_eq!(code(b"a EXTEND x 1").1, ErrorCode::BadOption);
    assert_eq!(code(b"a UNLOCK x -1").1, ErrorCode::BadOption);
    let long = [b'n'; MAX_NAME + 1];
    let mut line = b"a LOCK ".to_vec();
    line.extend_from_slice(&long);
    assert_eq!(code(&line).1, ErrorCode::BadName);
    let name = [b'n'; MAX_CLIENT_NAME + 1];
    let mut line = b"a NAME ".to_vec();
    line.extend_from_slice(&name);
    assert_eq!(code(&line).1, ErrorCode::BadName);
}

#[test]
fn ids_and_names() {
    assert!(valid_id(b"A-z_0.9:x"));
    assert!(valid_id(&[b'i'; MAX_ID]));
    assert!(!valid_id(&[b'i'; MAX_ID + 1]));
    assert!(!valid_id(b""));
    assert!(!valid_id(b"a/b"));
    assert!(valid_name("caf\u{e9}".as_bytes(), 10));
    assert!(!valid_name(b"a b", 10));
    assert!(!valid_name(b"abc", 2));
}

#[test]
fn secrets_are_the_first_line_of_the_file() {
    assert_eq!(secret_from_file(b"s3cret\r\nmore"), Some(&b"s3cret"[..]));
    assert_eq!(secret_from_file(b"s3cret"), Some(&b"s3cret"[..]));
    assert_eq!(secret_from_file(b"\nsecond"), None);
    assert_eq!(secret_from_file(b"two words\n"), None);
    assert_eq!(
        secret_from_file(&[b's'; MAX_SECRET]),
        Some(&[b's'; MAX_SECRET][..])
    );
    assert_eq!(secret_from_file(&[b's'; MAX_SECRET + 1]), None);
}

/// The id of a fast-path reply is copied exactly, whether it fits the fixed-size copy
/// (and the input has that many bytes) or not.
#[test]
fn push_id_copies_exactly_the_id() {
    for (input, id_len) in [
        (&b"7 LOCK a-longer-name:0123456789\n"[..], 1),
        (b"0123456789abcdef LOCK n\n", 16),
        (b"0123456789abcdefg LOCK n\n", 17),
        (b"x LOCK n\n", 1),
        (b"12345678901234567890123456789012 UNLOCK n 1\n", 32),
    ] {
        let id = &input[..id_len];
        let mut out = b"before ".to_vec();
        push_id(&mut out, input, id);
        let mut want = b"before ".to_vec();
        want.extend_from_slice(id);
        assert_eq!(out, want, "{:?}", String::from_utf8_lossy(input));
    }
}
