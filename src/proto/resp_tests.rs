//! Byte-level tests of the RESP framing: requests whole, pipelined and split at every
//! byte, every malformed form, limits, a seeded fuzz, and the reply writer.

use super::*;
use crate::testrng::Rng;

/// A parse outcome with owned arguments, so outcomes can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Request(Vec<Vec<u8>>, usize),
    Incomplete,
    Error(RespError),
}

fn parse_one(input: &[u8], limits: &Limits) -> Got {
    let mut args = Args::new();
    match parse(input, limits, &mut args) {
        Parsed::Request(r, used) => {
            assert!(
                used > 0 && used <= input.len(),
                "used {used} of {}",
                input.len()
            );
            assert_eq!(r.len(), r.iter().count());
            assert_eq!(r.is_empty(), r.get(0).is_none());
            Got::Request(r.iter().map(<[u8]>::to_vec).collect(), used)
        }
        Parsed::Incomplete => Got::Incomplete,
        Parsed::Error(e) => Got::Error(e),
    }
}

fn req(args: &[&[u8]], used: usize) -> Got {
    Got::Request(args.iter().map(|a| a.to_vec()).collect(), used)
}

fn err(input: &[u8], e: RespError) {
    assert_eq!(
        parse_one(input, &Limits::default()),
        Got::Error(e),
        "{:?}",
        String::from_utf8_lossy(input)
    );
}

/// One request's arguments, owned.
type Owned = Vec<Vec<u8>>;

/// Drains every request from `input` as a connection would: parse, drop what was used.
/// Returns the requests (empty ones included) and what was left unparsed, or the error.
fn drain(input: &[u8], limits: &Limits) -> Result<(Vec<Owned>, usize), RespError> {
    let mut args = Args::new();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        match parse(&input[pos..], limits, &mut args) {
            Parsed::Request(r, used) => {
                out.push(r.iter().map(<[u8]>::to_vec).collect());
                pos += used;
            }
            Parsed::Incomplete => return Ok((out, input.len() - pos)),
            Parsed::Error(e) => return Err(e),
        }
    }
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    array(&mut v, args.len());
    for a in args {
        bulk(&mut v, a);
    }
    v
}

#[test]
fn array_request() {
    let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
    assert_eq!(
        parse_one(input, &Limits::default()),
        req(&[b"SET", b"k", b""], input.len())
    );
    // Binary-safe: CR, LF and NUL inside bulk data are data.
    let input = b"*2\r\n$3\r\nGET\r\n$4\r\na\r\n\0\r\n";
    assert_eq!(
        parse_one(input, &Limits::default()),
        req(&[b"GET", b"a\r\n\0"], input.len())
    );
}

#[test]
fn inline_request() {
    let l = Limits::default();
    assert_eq!(parse_one(b"PING\r\n", &l), req(&[b"PING"], 6));
    assert_eq!(parse_one(b"PING\n", &l), req(&[b"PING"], 5));
    assert_eq!(
        parse_one(b"  SET\tk  v \r\nX", &l),
        req(&[b"SET", b"k", b"v"], 13)
    );
    assert_eq!(parse_one(b"\r\n", &l), req(&[], 2));
    assert_eq!(parse_one(b" \t \n", &l), req(&[], 4));
    // \v and \f are skipped before an argument, and part of one after its start (as
    // Redis's sdssplitargs).
    assert_eq!(
        parse_one(b"\x0bGET\x0c k\x0b\n", &l),
        req(&[b"GET\x0c", b"k\x0b"], 9)
    );
    assert_eq!(parse_one(b"PING", &l), Got::Incomplete);
    assert_eq!(parse_one(b"PING\r", &l), Got::Incomplete);
    err(b"SET \"a b\" v\r\n", RespError::QuotedInline);
    err(b"SET 'a' v\r\n", RespError::QuotedInline);
    // Redis unquotes from a quote inside an argument too: refused as well.
    err(b"a\"b\n", RespError::QuotedInline);
    err(b"ECHO a\"b c\"\r\n", RespError::QuotedInline);
}

#[test]
fn empty_arrays_are_empty_requests() {
    let l = Limits::default();
    assert_eq!(parse_one(b"*0\r\n", &l), req(&[], 4));
    assert_eq!(parse_one(b"*-1\r\n*1\r\n", &l), req(&[], 5));
    // Any negative count, as Redis 7.0 reads it.
    assert_eq!(parse_one(b"*-2\r\n*1\r\n", &l), req(&[], 5));
    assert_eq!(parse_one(b"*-9223372036854775808\r\n", &l), req(&[], 23));
    assert_eq!(parse_one(b"", &l), Got::Incomplete);
}

#[test]
fn pipelined_requests_in_order() {
    let mut input = encode(&[b"SET", b"k", b"tok", b"NX", b"PX", b"30000"]);
    input.extend_from_slice(b"PING\r\n");
    input.extend_from_slice(&encode(&[b"GET", b"k"]));
    input.extend_from_slice(b"*0\r\n");
    input.extend_from_slice(&encode(&[b"DEL", b"k"]));
    input.extend_from_slice(b"*2\r\n$3\r\nGE"); // a partial request at the end
    let (reqs, left) = drain(&input, &Limits::default()).unwrap();
    let want: Vec<Vec<Vec<u8>>> = vec![
        vec![
            b"SET".to_vec(),
            b"k".to_vec(),
            b"tok".to_vec(),
            b"NX".to_vec(),
            b"PX".to_vec(),
            b"30000".to_vec(),
        ],
        vec![b"PING".to_vec()],
        vec![b"GET".to_vec(), b"k".to_vec()],
        vec![],
        vec![b"DEL".to_vec(), b"k".to_vec()],
    ];
    assert_eq!(reqs, want);
    assert_eq!(left, 10);
}

/// Feeds `input` as a connection receives it, in chunks cut at `cuts`, parsing after
/// each chunk and keeping the unparsed rest, as the server's buffer does.
fn feed(input: &[u8], cuts: &[usize], limits: &Limits) -> Result<Vec<Vec<Vec<u8>>>, RespError> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[from..to]);
        from = to;
        let (reqs, left) = drain(&buf, limits)?;
        out.extend(reqs);
        buf.drain(..buf.len() - left);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(out)
}

fn sample_stream() -> Vec<u8> {
    let mut input = Vec::new();
    input.extend_from_slice(&encode(&[b"HELLO", b"3"]));
    input.extend_from_slice(&encode(&[
        b"SET",
        b"lock:a",
        b"0123456789abcdef",
        b"NX",
        b"PX",
        b"500",
    ]));
    input.extend_from_slice(b"PING\r\n");
    input.extend_from_slice(&encode(&[
        b"EVALSHA",
        b"c3f8721cbb97f72bc19e972846bd7aaf91901658",
        b"1",
        b"lock:a",
        b"x",
    ]));
    input.extend_from_slice(b"*-1\r\n\r\nECHO hi\n");
    input.extend_from_slice(&encode(&[b"ECHO", b"", b"\r\n"]));
    input
}

#[test]
fn split_at_every_byte() {
    let l = Limits::default();
    let input = sample_stream();
    let whole = feed(&input, &[], &l).unwrap();
    assert_eq!(whole.len(), 8);
    for cut in 1..input.len() {
        assert_eq!(feed(&input, &[cut], &l).unwrap(), whole, "cut at {cut}");
    }
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(
        feed(&input, &every, &l).unwrap(),
        whole,
        "one byte at a time"
    );
}

#[test]
fn every_proper_prefix_of_a_request_is_incomplete() {
    let l = Limits::default();
    let one = encode(&[b"SET", b"k", b"v", b"NX"]);
    for n in 0..one.len() {
        assert_eq!(parse_one(&one[..n], &l), Got::Incomplete, "prefix {n}");
    }
    assert_eq!(
        parse_one(&one, &l),
        req(&[b"SET", b"k", b"v", b"NX"], one.len())
    );
}

#[test]
fn bad_multibulk_lengths() {
    for input in [
        &b"*abc\r\n"[..],
        b"*\r\n",
        b"*1\n$4\r\nPING\r\n", // LF without CR
        b"*-0\r\n",
        b"*01\r\n",
        b"*+1\r\n",
        b"* 1\r\n",
        b"*1025\r\n",
        b"*99999999999999999999\r\n", // over i64
        b"*9223372036854775807\r\n",
    ] {
        err(input, RespError::InvalidMultibulkLength);
    }
    // At the limit is fine (and incomplete until the arguments come).
    assert_eq!(parse_one(b"*1024\r\n", &Limits::default()), Got::Incomplete);
}

#[test]
fn bad_bulk_lengths() {
    for input in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$-5\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$4\n",
        b"*1\r\n$65537\r\n", // over MAX_BULK, refused before any data
        b"*1\r\n$99999999999999999999\r\n",
        b"*1\r\n$-9223372036854775808\r\n",
    ] {
        err(input, RespError::InvalidBulkLength);
    }
    let at_limit = format!("*1\r\n${MAX_BULK}\r\n");
    assert_eq!(
        parse_one(at_limit.as_bytes(), &Limits::default()),
        Got::Incomplete
    );
}

#[test]
fn nesting_and_other_element_types_are_refused() {
    err(b"*1\r\n*1\r\n$4\r\nPING\r\n", RespError::ExpectedBulk(b'*'));
    err(b"*2\r\n$3\r\nGET\r\n*0\r\n", RespError::ExpectedBulk(b'*'));
    err(b"*1\r\n:1\r\n", RespError::ExpectedBulk(b':'));
    err(b"*1\r\n+OK\r\n", RespError::ExpectedBulk(b'+'));
    err(b"*1\r\nfoo\r\n", RespError::ExpectedBulk(b'f'));
    err(b"*1\r\n\r\n", RespError::ExpectedBulk(b'\r'));
}

#[test]
fn bulk_data_must_end_in_crlf() {
    err(b"*1\r\n$3\r\nfooXX", RespError::ExpectedCrlf);
    err(b"*1\r\n$3\r\nfoo\rX", RespError::ExpectedCrlf);
    err(b"*1\r\n$3\r\nfoo\n\r", RespError::ExpectedCrlf);
    // Decided on the first wrong byte, without waiting for the second.
    err(b"*1\r\n$3\r\nfoo\n", RespError::ExpectedCrlf);
    assert_eq!(
        parse_one(b"*1\r\n$3\r\nfoo\r", &Limits::default()),
        Got::Incomplete
    );
}

#[test]
fn header_lines_are_bounded() {
    let l = Limits::default();
    // A header with no line end is refused once it is longer than any valid one.
    let long = [b'*']
        .iter()
        .chain([b'1'; MAX_HEADER + CRLF].iter())
        .copied()
        .collect::<Vec<u8>>();
    assert_eq!(parse_one(&long[..MAX_HEADER + CRLF], &l), Got::Incomplete);
    assert_eq!(
        parse_one(&long, &l),
        Got::Error(RespError::TooBigMultibulkCount)
    );
    let mut bulk_hdr = b"*1\r\n$".to_vec();
    bulk_hdr.extend_from_slice(&[b'1'; MAX_HEADER + CRLF]);
    assert_eq!(
        parse_one(&bulk_hdr, &l),
        Got::Error(RespError::TooBigBulkCount)
    );
    // Leading zeros cannot make a long valid header either.
    err(
        b"*0000000000000000000000000000001\r\n",
        RespError::InvalidMultibulkLength,
    );
}

#[test]
fn inline_lines_are_bounded() {
    let l = Limits {
        max_inline: 16,
        ..Limits::default()
    };
    let line = b"SET k 0123456789";
    assert_eq!(line.len(), 16);
    assert_eq!(
        parse_one(&[&line[..], b"\r\n"].concat(), &l),
        req(&[b"SET", b"k", b"0123456789"], 18)
    );
    assert_eq!(parse_one(line, &l), Got::Incomplete);
    assert_eq!(parse_one(&[&line[..], b"\r"].concat(), &l), Got::Incomplete);
    assert_eq!(parse_one(&[&line[..], b"x"].concat(), &l), Got::Incomplete);
    assert_eq!(
        parse_one(&[&line[..], b"xy"].concat(), &l),
        Got::Error(RespError::TooBigInline)
    );
    assert_eq!(
        parse_one(&[&line[..], b"x\n"].concat(), &l),
        Got::Error(RespError::TooBigInline)
    );
    let many = Limits {
        max_args: 3,
        ..Limits::default()
    };
    assert_eq!(parse_one(b"a b c\n", &many), req(&[b"a", b"b", b"c"], 6));
    assert_eq!(
        parse_one(b"a b c d\n", &many),
        Got::Error(RespError::TooManyArgs)
    );
    assert_eq!(
        parse_one(b"*4\r\n", &many),
        Got::Error(RespError::InvalidMultibulkLength)
    );
}

#[test]
fn requests_are_bounded_in_total() {
    let l = Limits {
        max_request: 64,
        max_bulk: 40,
        ..Limits::default()
    };
    let fits = encode(&[b"SET", &[b'k'; 20], &[b'v'; 14]]);
    assert!(fits.len() <= 64, "{}", fits.len());
    assert!(matches!(parse_one(&fits, &l), Got::Request(..)));
    // Refused as soon as the declared sizes pass the limit, before the data is there.
    assert_eq!(
        parse_one(b"*3\r\n$3\r\nSET\r\n$20\r\n", &l),
        Got::Incomplete
    );
    assert_eq!(
        parse_one(
            b"*3\r\n$3\r\nSET\r\n$20\r\nkkkkkkkkkkkkkkkkkkkk\r\n$40\r\n",
            &l
        ),
        Got::Error(RespError::RequestTooBig)
    );
    // Many small arguments add up too.
    let mut many = b"*30\r\n".to_vec();
    for _ in 0..30 {
        many.extend_from_slice(b"$1\r\nx\r\n");
    }
    assert_eq!(parse_one(&many, &l), Got::Error(RespError::RequestTooBig));
}

#[test]
fn args_storage_is_reused() {
    let l = Limits::default();
    let mut args = Args::new();
    let wide = encode(&[b"EVALSHA", b"sha", b"3", b"a", b"b", b"c", b"tok", b"100"]);
    assert!(matches!(parse(&wide, &l, &mut args), Parsed::Request(r, _) if r.len() == 8));
    let cap = args.capacity();
    for input in [
        encode(&[b"GET", b"k"]),
        wide.clone(),
        b"PING\r\n".to_vec(),
        wide,
    ] {
        assert!(matches!(parse(&input, &l, &mut args), Parsed::Request(..)));
        assert_eq!(
            args.capacity(),
            cap,
            "no growth for requests no wider than the widest"
        );
    }
}

/// Seeded fuzz: random bytes, valid streams with random bytes flipped, and random
/// truncations never panic, never use more than the input, and stay within the bound
/// on buffered bytes whenever they say `Incomplete`.
#[test]
fn fuzz_never_panics_and_stays_bounded() {
    let mut rng = Rng::new(0x5e5b_7e57);
    let alphabet = b"*$:+-\r\n0123456789abc \"";
    let valid = sample_stream();
    let small = Limits {
        max_args: 8,
        max_bulk: 64,
        max_request: 256,
        max_inline: 64,
    };
    for round in 0..20_000 {
        let limits = if round % 2 == 0 {
            small
        } else {
            Limits::default()
        };
        let input: Vec<u8> = match rng.below(3) {
            0 => (0..rng.range_usize(0, 80))
                .map(|_| *rng.pick(alphabet))
                .collect(),
            1 => {
                let mut v = valid.clone();
                for _ in 0..rng.range_usize(1, 4) {
                    let i = rng.range_usize(0, v.len() - 1);
                    v[i] = *rng.pick(alphabet);
                }
                v
            }
            _ => (0..rng.range_usize(0, 600))
                .map(|_| rng.next_u64() as u8)
                .collect(),
        };
        let cut = rng.range_usize(0, input.len());
        let input = &input[..cut];
        let mut args = Args::new();
        match parse(input, &limits, &mut args) {
            Parsed::Request(r, used) => {
                assert!(used > 0 && used <= input.len());
                assert!(r.len() <= limits.max_args);
                assert!(r
                    .iter()
                    .all(|a| a.len() <= limits.max_bulk.max(limits.max_inline)));
            }
            Parsed::Incomplete => assert!(
                input.len() <= limits.max_buffered(),
                "incomplete with {} bytes buffered",
                input.len()
            ),
            Parsed::Error(_) => {}
        }
    }
}

/// A peer that never ends its request is cut off within the buffered-bytes bound.
#[test]
fn endless_inputs_are_refused_within_the_bound() {
    let l = Limits {
        max_request: 1024,
        max_bulk: 512,
        max_inline: 256,
        ..Limits::default()
    };
    let endless: [Vec<u8>; 3] = [
        b"x".repeat(4096),
        [&b"*1\r\n$512\r\n"[..], &b"y".repeat(4096)].concat(),
        [&b"*1000\r\n"[..], &b"$1\r\nz\r\n".repeat(1000)].concat(),
    ];
    for input in &endless {
        let decided =
            (1..=input.len()).find(|&n| !matches!(parse_one(&input[..n], &l), Got::Incomplete));
        let n = decided.expect("never decided");
        assert!(n <= l.max_buffered(), "decided only after {n} bytes");
        assert!(matches!(parse_one(&input[..n], &l), Got::Error(_)));
    }
}

#[test]
fn error_replies_read_as_redis_words_them() {
    let cases: [(RespError, &[u8]); 10] = [
        (
            RespError::InvalidMultibulkLength,
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            RespError::InvalidBulkLength,
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            RespError::ExpectedBulk(b'*'),
            b"-ERR Protocol error: expected '$', got '*'\r\n",
        ),
        (
            RespError::ExpectedBulk(b'\r'),
            b"-ERR Protocol error: expected '$', got '\\x0d'\r\n",
        ),
        (
            RespError::ExpectedCrlf,
            b"-ERR Protocol error: expected CRLF after bulk data\r\n",
        ),
        (
            RespError::TooBigInline,
            b"-ERR Protocol error: too big inline request\r\n",
        ),
        (
            RespError::TooBigMultibulkCount,
            b"-ERR Protocol error: too big mbulk count string\r\n",
        ),
        (
            RespError::TooBigBulkCount,
            b"-ERR Protocol error: too big bulk count string\r\n",
        ),
        (
            RespError::RequestTooBig,
            b"-ERR Protocol error: request too big\r\n",
        ),
        (
            RespError::TooManyArgs,
            b"-ERR Protocol error: too many arguments\r\n",
        ),
    ];
    for (e, want) in cases {
        let mut out = Vec::new();
        e.write(&mut out);
        assert_eq!(out, want, "{e:?}");
    }
}

#[test]
fn reply_writer() {
    let mut out = Vec::new();
    simple(&mut out, b"OK");
    error(&mut out, b"ERR bad\r\nthing");
    integer(&mut out, 0);
    integer(&mut out, -2);
    integer(&mut out, i64::MIN);
    integer(&mut out, i64::MAX);
    bulk(&mut out, b"");
    bulk(&mut out, b"a\r\nb");
    null(&mut out, Version::Resp2);
    null(&mut out, Version::Resp3);
    array(&mut out, 0);
    array(&mut out, 2);
    map(&mut out, 3, Version::Resp2);
    map(&mut out, 3, Version::Resp3);
    let want: &[u8] = b"+OK\r\n-ERR bad  thing\r\n:0\r\n:-2\r\n:-9223372036854775808\r\n\
:9223372036854775807\r\n$0\r\n\r\n$4\r\na\r\nb\r\n$-1\r\n_\r\n*0\r\n*2\r\n*6\r\n%3\r\n";
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
}

#[test]
fn written_requests_parse_back() {
    let args: [&[u8]; 4] = [b"HSET", b"lock:x", b"id", b"\x00\xff\r\n"];
    let enc = encode(&args);
    assert_eq!(parse_one(&enc, &Limits::default()), req(&args, enc.len()));
}

/// The framing of arrays written the plain way (memchr for every header line, the
/// strict integer parse, the CRLF compared as a slice): the reference the one-pass
/// parser is checked against.
mod reference {
    use super::super::*;

    fn header(
        input: &[u8],
        at: usize,
        bad: RespError,
        too_big: RespError,
    ) -> Result<Option<(i64, usize)>, RespError> {
        let start = at + 1;
        let window = input
            .get(start..input.len().min(start + MAX_HEADER + CRLF))
            .unwrap_or(&[]);
        let Some(nl) = memchr(b'\n', window) else {
            return if window.len() >= MAX_HEADER + CRLF {
                Err(too_big)
            } else {
                Ok(None)
            };
        };
        let line = window[..nl].strip_suffix(b"\r").ok_or(bad)?;
        let n = parse_i64(line).ok_or(bad)?;
        Ok(Some((n, start + nl + 1)))
    }

    /// What `parse` answers for an input starting with `*`: (arguments, used).
    pub(super) fn array(
        input: &[u8],
        limits: &Limits,
    ) -> Result<Option<(super::Owned, usize)>, RespError> {
        let bad = RespError::InvalidMultibulkLength;
        let Some((count, mut pos)) = header(input, 0, bad, RespError::TooBigMultibulkCount)? else {
            return Ok(None);
        };
        let mut args = Vec::new();
        if count <= 0 {
            return Ok(Some((args, pos)));
        }
        let count = usize::try_from(count).map_err(|_| bad)?;
        if count > limits.max_args {
            return Err(bad);
        }
        for _ in 0..count {
            if pos > limits.max_request {
                return Err(RespError::RequestTooBig);
            }
            let Some(&first) = input.get(pos) else {
                return Ok(None);
            };
            if first != b'$' {
                return Err(RespError::ExpectedBulk(first));
            }
            let bad = RespError::InvalidBulkLength;
            let Some((len, data)) = header(input, pos, bad, RespError::TooBigBulkCount)? else {
                return Ok(None);
            };
            let len = usize::try_from(len).map_err(|_| bad)?;
            if len > limits.max_bulk {
                return Err(bad);
            }
            let end = data + len;
            if end + CRLF > limits.max_request {
                return Err(RespError::RequestTooBig);
            }
            let tail = input.get(end..input.len().min(end + CRLF)).unwrap_or(&[]);
            if !b"\r\n".starts_with(tail) {
                return Err(RespError::ExpectedCrlf);
            }
            if tail.len() < CRLF {
                return Ok(None);
            }
            args.push(input[data..end].to_vec());
            pos = end + CRLF;
        }
        Ok(Some((args, pos)))
    }
}

/// Seeded differential fuzz: on arrays built from headers with every kind of number
/// (leading zeros, signs, 17 to 21 digits, overflow), bytes flipped and every
/// truncation, the parser answers exactly what the plain reference does.
#[test]
fn arrays_parse_as_the_plain_reference_does() {
    let mut rng = Rng::new(0xa11a_4e5f);
    let small = Limits {
        max_args: 8,
        max_bulk: 64,
        max_request: 256,
        max_inline: 64,
    };
    let numbers: Vec<Vec<u8>> = [
        "0",
        "1",
        "2",
        "3",
        "5",
        "00",
        "01",
        "-1",
        "-0",
        "+1",
        "10",
        "64",
        "65",
        "255",
        "257",
        "999999999999999999",
        "1000000000000000000",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999",
        "123456789012345678901",
        "1a",
        "",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let alphabet = b"*$:+-\r\n0123456789ab ";
    let mut checked = 0;
    for round in 0..4_000 {
        let limits = if round % 2 == 0 {
            small
        } else {
            Limits::default()
        };
        // An array whose count and lengths are right, or any of `numbers`.
        let args: Vec<Vec<u8>> = (0..rng.range_usize(0, 6))
            .map(|_| {
                (0..rng.range_usize(0, 12))
                    .map(|_| *rng.pick(b"ab\r\n$*"))
                    .collect()
            })
            .collect();
        let mut input = Vec::new();
        input.push(b'*');
        if rng.chance(80) {
            input.extend_from_slice(args.len().to_string().as_bytes());
        } else {
            input.extend_from_slice(rng.pick::<Vec<u8>>(&numbers));
        }
        input.extend_from_slice(b"\r\n");
        for a in &args {
            input.push(b'$');
            if rng.chance(80) {
                input.extend_from_slice(a.len().to_string().as_bytes());
            } else {
                input.extend_from_slice(rng.pick::<Vec<u8>>(&numbers));
            }
            input.extend_from_slice(b"\r\n");
            input.extend_from_slice(a);
            input.extend_from_slice(b"\r\n");
        }
        for _ in 0..rng.range_usize(0, 3) {
            let i = rng.range_usize(1, input.len() - 1);
            input[i] = *rng.pick(alphabet);
        }
        for cut in 1..=input.len() {
            let input = &input[..cut];
            let want = match reference::array(input, &limits) {
                Ok(Some((args, used))) => Got::Request(args, used),
                Ok(None) => Got::Incomplete,
                Err(e) => Got::Error(e),
            };
            assert_eq!(
                parse_one(input, &limits),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000);
}
