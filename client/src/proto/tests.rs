use super::frame::find_newline;
use super::*;
use crate::error::{Error, Result};

fn enc(r: &Request) -> String {
    let mut v = Vec::new();
    r.encode("1", &mut v);
    String::from_utf8(v).unwrap()
}

#[test]
fn encodes_every_verb() {
    let cases: Vec<(Request, &str)> = vec![
        (Request::lock("a").into(), "1 LOCK a\n"),
        (
            Request::lock("a").wait(0).hold(5).queue(2).into(),
            "1 LOCK a wait=0 hold=5 queue=2\n",
        ),
        (
            Request::lock("a").wait(u32::MAX).hold(4_000_000_000).into(),
            "1 LOCK a wait=4294967295 hold=4000000000\n",
        ),
        (
            Request::Unlock {
                name: "b:7".into(),
                token: Some(u64::MAX),
            },
            "1 UNLOCK b:7 18446744073709551615\n",
        ),
        (
            Request::Acquire(Acquire {
                kind: LockKind::Shared { max: Some(3) },
                ..Request::share("q").wait(10)
            }),
            "1 SHARE q max=3 wait=10\n",
        ),
        (Request::share("q").into(), "1 SHARE q\n"),
        (
            Request::Unlock {
                name: "a".into(),
                token: None,
            },
            "1 UNLOCK a\n",
        ),
        (
            Request::Unlock {
                name: "a".into(),
                token: Some(9),
            },
            "1 UNLOCK a 9\n",
        ),
        (
            Request::Extend {
                name: "a".into(),
                token: 9,
                hold: 100,
            },
            "1 EXTEND a 9 hold=100\n",
        ),
        (Request::Cancel { id: "x-1".into() }, "1 CANCEL x-1\n"),
        (Request::Reset, "1 RESET\n"),
        (Request::Inspect { name: "a".into() }, "1 INSPECT a\n"),
        (Request::List { prefix: None }, "1 LIST\n"),
        (
            Request::List {
                prefix: Some("jobs:".into()),
            },
            "1 LIST jobs:\n",
        ),
        (Request::Name { name: "me".into() }, "1 NAME me\n"),
        (Request::Whoami, "1 WHOAMI\n"),
        (Request::Clients, "1 CLIENTS\n"),
        (Request::Stats, "1 STATS\n"),
        (Request::Ping, "1 PING\n"),
        (Request::Quit, "1 QUIT\n"),
        (
            Request::Auth {
                secret: "s3".into(),
            },
            "1 AUTH s3\n",
        ),
    ];
    for (r, want) in cases {
        r.validate().unwrap();
        assert_eq!(enc(&r), want);
        // The numeric-id encoder writes the same line after the same id.
        for id in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            12_345,
            10u64.pow(18),
            10u64.pow(19) - 1,
            10u64.pow(19),
            u64::MAX,
        ] {
            let mut v = Vec::new();
            r.encode_with_id(id, &mut v);
            let want = format!("{id}{}", &want[1..]);
            assert_eq!(String::from_utf8(v).unwrap(), want);
        }
    }
}

#[test]
fn validation_follows_the_server_rules() {
    let bad_names = ["", "a b", "tab\there", "nl\n", "del\x7f", &"x".repeat(256)];
    for n in bad_names {
        let r: Request = Request::lock(n).into();
        assert!(matches!(r.validate(), Err(Error::BadName(_))), "{n:?}");
    }
    let ok: Request = Request::lock("x".repeat(255)).into();
    ok.validate().unwrap();
    let utf8: Request = Request::lock("été:1").into();
    utf8.validate().unwrap();
    let max0 = Request::Acquire(Acquire {
        kind: LockKind::Shared { max: Some(0) },
        ..Request::share("q")
    });
    assert!(matches!(max0.validate(), Err(Error::BadOption(_))));
    let long_client = Request::Name {
        name: "n".repeat(65),
    };
    assert!(matches!(long_client.validate(), Err(Error::BadName(_))));
    Request::Name {
        name: "n".repeat(64),
    }
    .validate()
    .unwrap();
    for id in ["", "a b", "é", &"i".repeat(33)] {
        let r = Request::Cancel { id: id.into() };
        assert!(matches!(r.validate(), Err(Error::BadRequest(_))), "{id:?}");
    }
    let r = Request::Auth {
        secret: "two words".into(),
    };
    assert!(matches!(r.validate(), Err(Error::BadRequest(_))));
    let r = Request::Auth {
        secret: "s".repeat(5000),
    };
    assert!(matches!(r.validate(), Err(Error::LineTooLong(_))));
    let r = Request::List {
        prefix: Some("a b".into()),
    };
    assert!(matches!(r.validate(), Err(Error::BadName(_))));
}

fn assemble(req: &Request, lines: &[&str]) -> Result<Reply> {
    let mut a = Assembler::new(req);
    for (i, l) in lines.iter().enumerate() {
        let (id, f) = parse_line(l)?;
        assert_eq!(id, "1");
        if let Some(r) = a.push(f) {
            assert_eq!(i, lines.len() - 1, "finished early");
            return r;
        }
    }
    panic!("not finished");
}

#[test]
fn decodes_replies() {
    let lock: Request = Request::lock("a").into();
    assert_eq!(
        assemble(&lock, &["1 OK 42"]).unwrap(),
        Reply::Granted(Grant {
            token: 42,
            holders: None
        })
    );
    assert!(matches!(
        assemble(&lock, &["1 TIMEOUT"]),
        Err(Error::Timeout)
    ));
    assert!(matches!(
        assemble(&lock, &["1 CANCELLED"]),
        Err(Error::Cancelled)
    ));
    assert!(matches!(
        assemble(&lock, &["1 ERR queue_full too many requests already wait"]),
        Err(Error::QueueFull(t)) if t == "too many requests already wait"
    ));
    let share: Request = Request::share("q").into();
    assert_eq!(
        assemble(&share, &["1 OK 43 2"]).unwrap(),
        Reply::Granted(Grant {
            token: 43,
            holders: Some(2)
        })
    );
    assert!(matches!(
        assemble(&share, &["1 OK 43"]),
        Err(Error::Protocol(_))
    ));
    let ins = Request::Inspect { name: "a".into() };
    assert_eq!(
        assemble(
            &ins,
            &["1 OK mode=exclusive holders=1 waiters=2 token=7 owner=127.0.0.1:5"]
        )
        .unwrap(),
        Reply::Inspect(LockInfo {
            mode: Mode::Exclusive,
            holders: 1,
            waiters: 2,
            token: Some(7),
            owner: Some("127.0.0.1:5".into())
        })
    );
    let list = Request::List { prefix: None };
    let r = assemble(
        &list,
        &[
            "1 ITEM a mode=exclusive holders=1 waiters=0",
            "1 ITEM b mode=shared holders=2 waiters=1",
            "1 END 2",
        ],
    )
    .unwrap();
    match r {
        Reply::List(rows) => {
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[1].name, "b");
            assert_eq!(rows[1].mode, Mode::Shared);
            assert_eq!(rows[1].waiters, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        assemble(&list, &["1 END 1"]),
        Err(Error::Protocol(_))
    ));
    let st = assemble(
        &Request::Stats,
        &["1 STAT holds 3", "1 STAT cmd_lock 9", "1 END 2"],
    )
    .unwrap();
    match st {
        Reply::Stats(s) => {
            assert_eq!(s.get("cmd_lock"), Some(9));
            assert_eq!(s.get("nope"), None);
        }
        other => panic!("{other:?}"),
    }
    let cl = assemble(
        &Request::Clients,
        &["1 CLIENT 127.0.0.1:9 name=w holds=1 waits=0", "1 END 1"],
    )
    .unwrap();
    assert!(matches!(cl, Reply::Clients(c) if c[0].name == "w" && c[0].holds == 1));
    assert_eq!(
        assemble(&Request::Whoami, &["1 OK 127.0.0.1:9 w"]).unwrap(),
        Reply::Whoami(WhoAmI {
            addr: "127.0.0.1:9".into(),
            name: "w".into()
        })
    );
    assert_eq!(
        assemble(&Request::Reset, &["1 OK 2 1"]).unwrap(),
        Reply::Reset {
            released: 2,
            cancelled: 1
        }
    );
    assert_eq!(
        assemble(&Request::Cancel { id: "x".into() }, &["1 OK 1"]).unwrap(),
        Reply::Cancelled(1)
    );
    assert_eq!(assemble(&Request::Ping, &["1 PONG"]).unwrap(), Reply::Pong);
    assert_eq!(assemble(&Request::Quit, &["1 OK"]).unwrap(), Reply::Ok);
    assert!(matches!(
        assemble(&Request::Ping, &["1 ERR wat something new"]),
        Err(Error::Server { code, .. }) if code == "wat"
    ));
}

#[test]
fn finds_newlines_at_every_position() {
    for len in 0..40 {
        // Bytes that differ from '\n' by one bit, and 0x8a/0x0b around it, to catch
        // a carry or a false flag in the word-at-a-time search.
        let fill: Vec<u8> = (0..len)
            .map(|i| [b'a', 0x0b, 0x8a, 0x09, 0x00, 0xff][i % 6])
            .collect();
        assert_eq!(find_newline(&fill), None, "len {len}");
        for at in 0..len {
            let mut v = fill.clone();
            v[at] = b'\n';
            assert_eq!(find_newline(&v), Some(at), "len {len} at {at}");
            // A second newline later does not matter.
            if at + 3 < len {
                v[at + 3] = b'\n';
                assert_eq!(find_newline(&v), Some(at), "len {len} at {at}, twice");
            }
        }
    }
}

#[test]
fn complete_lines_come_as_one_block() {
    let mut b = LineBuffer::new();
    assert_eq!(b.complete_lines().unwrap(), b"");
    b.extend(b"1 OK\n2 PO");
    assert_eq!(b.complete_lines().unwrap(), b"1 OK\n");
    assert_eq!(b.complete_lines().unwrap(), b"");
    b.extend(b"NG\n3 OK 5\n");
    assert_eq!(b.complete_lines().unwrap(), b"2 PONG\n3 OK 5\n");
    b.extend(&vec![b'x'; MAX_REPLY_LINE + 1]);
    assert!(b.complete_lines().is_err());
}

#[test]
fn splits_words_on_spaces() {
    assert_eq!(split_space("1 OK 5"), Some(("1", "OK 5")));
    assert_eq!(split_space(" x"), Some(("", "x")));
    assert_eq!(split_space("é x"), Some(("é", "x")));
    assert_eq!(split_space("none"), None);
    let w: Vec<&str> = words("  a bb  c ").collect();
    assert_eq!(w, ["a", "bb", "c"]);
    assert_eq!(words("").count(), 0);
    assert_eq!(words("   ").count(), 0);
}

#[test]
fn parses_events_and_rejects_garbage() {
    assert_eq!(
        parse_line("5 EXPIRED 17").unwrap(),
        ("5", Frame::Expired(17))
    );
    assert_eq!(parse_line("5 CANCELLED").unwrap(), ("5", Frame::Cancelled));
    assert!(parse_line("5").is_err());
    assert!(parse_line("5 WHAT").is_err());
    assert!(parse_line("5 EXPIRED x").is_err());
    assert_eq!(parse_id("123"), Some(123));
    assert_eq!(parse_id("*"), None);
    assert_eq!(parse_id("99999999999999999999"), None);
    assert_eq!(parse_id("18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_id("18446744073709551616"), None);
    assert_eq!(parse_id("0"), Some(0));
    assert_eq!(
        parse_id("9999999999999999999"),
        Some(9_999_999_999_999_999_999)
    );
    assert_eq!(parse_id("00000000000000000000042"), Some(42));
    for bad in ["", "+1", "-1", "1 ", " 1", "1a", "0x1", "\u{663}"] {
        assert_eq!(parse_id(bad), None, "{bad:?}");
    }
    assert!(matches!(
        parse_line("1 EXPIRED 18446744073709551615"),
        Ok((_, Frame::Expired(u64::MAX)))
    ));
    assert!(parse_line("1 EXPIRED 18446744073709551616").is_err());
    assert!(parse_line("1 EXPIRED 1x").is_err());
}

#[test]
fn line_buffer_splits_and_limits() {
    let mut b = LineBuffer::new();
    b.extend(b"1 OK 5\r\n2 PO");
    assert_eq!(b.next_line().unwrap(), Some(&b"1 OK 5"[..]));
    assert_eq!(b.next_line().unwrap(), None);
    b.extend(b"NG\n");
    assert_eq!(b.next_line().unwrap(), Some(&b"2 PONG"[..]));
    b.extend(&vec![b'x'; MAX_REPLY_LINE + 1]);
    assert!(b.next_line().is_err());
}

#[test]
fn ids_count_up() {
    let mut a = IdAllocator::new();
    assert_eq!(a.next_id(), 1);
    assert_eq!(a.next_id(), 2);
    assert!(valid_id(u64::MAX.to_string().as_bytes()));
}

#[test]
fn mode_words_round_trip_with_the_parser() {
    for m in [Mode::Free, Mode::Exclusive, Mode::Shared] {
        assert_eq!(Mode::parse(m.as_str(), "test").unwrap(), m);
        assert_eq!(m.to_string(), m.as_str());
    }
    // Display honours width and alignment, for tables.
    assert_eq!(format!("{:<7}|", Mode::Free), "free   |");
}
