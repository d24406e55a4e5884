//! The one-pass parser against the parser it replaced (whole input buffered, line end
//! found, then split into words), on the same bytes cut into reads every which way.

use super::*;

/// A line as both parsers give it: its first [`WORDS`] words and its raw bytes.
type Owned = (Vec<Vec<u8>>, Vec<u8>);

/// The replaced parser: the carry and the read joined, each line found by its `\n`,
/// one `\r` cut, split at spaces and tabs with empty words dropped, lines without a
/// word skipped; stops after the line `stop_after` (counting every line handed out).
fn old_feed(carry: &mut Vec<u8>, data: &[u8], out: &mut Vec<Owned>, stop_after: usize) -> bool {
    let mut buf = std::mem::take(carry);
    let input: &[u8] = if buf.is_empty() {
        data
    } else {
        buf.extend_from_slice(data);
        &buf
    };
    let mut pos = 0;
    let mut alive = true;
    while let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') {
        let mut line = &input[pos..pos + nl];
        pos += nl + 1;
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        let mut words = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|t| !t.is_empty());
        let Some(id) = words.next() else {
            continue;
        };
        let mut ws = vec![id.to_vec()];
        for _ in 1..WORDS {
            ws.push(words.next().unwrap_or(b"").to_vec());
        }
        out.push((ws, line.to_vec()));
        if out.len() >= stop_after {
            alive = false;
            break;
        }
    }
    if !alive {
        return false;
    }
    let used = pos;
    if buf.is_empty() {
        buf.extend_from_slice(&data[used..]);
    } else {
        buf.drain(..used);
    }
    *carry = buf;
    true
}

fn new_feed(carry: &mut Vec<u8>, data: &[u8], out: &mut Vec<Owned>, stop_after: usize) -> bool {
    feed(carry, data, |l| {
        out.push((l.words.iter().map(|w| w.to_vec()).collect(), l.raw.to_vec()));
        out.len() < stop_after
    })
}

/// Both parsers over `stream` cut at `cuts` (ascending positions), starting with the
/// carry `start`: the same lines, the same carry after every read, the same stop.
fn check(start: &[u8], stream: &[u8], cuts: &[usize], stop_after: usize) {
    let (mut c_old, mut c_new) = (start.to_vec(), start.to_vec());
    let (mut out_old, mut out_new) = (Vec::new(), Vec::new());
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&stream.len())) {
        let data = &stream[from..to];
        from = to;
        let a = old_feed(&mut c_old, data, &mut out_old, stop_after);
        let b = new_feed(&mut c_new, data, &mut out_new, stop_after);
        let at = || format!("{:?} cut at {cuts:?}", String::from_utf8_lossy(stream));
        assert_eq!(out_new, out_old, "{}", at());
        assert_eq!(a, b, "{}", at());
        if !a {
            return;
        }
        assert_eq!(c_new, c_old, "{}", at());
    }
}

/// Replies as the server writes them, and every odd form the old parser accepted.
const STREAM: &[u8] = b"17 OK 123456\n\
    49 PONG\r\n\
    81 TIMEOUT\n\
    \n\
    \r\n\
    \x20 \t \r\n\
    113   ERR\tnot_held  \n\
    \t145 OK 99 3 extra words here\r\n\
    177 OK 5\r\r\n\
    209 OK\t\r\n\
    241 OK \r\n\
    a\rb c\x0bd \x7f\xff\n\
    \r\r\n\
    273 EXPIRED 123456789012345678901234567890\n\
    305 OK 1\n\
    337 CANCELLED";

#[test]
fn one_read_or_split_at_every_position_gives_the_old_lines() {
    check(b"", STREAM, &[], usize::MAX);
    for i in 0..=STREAM.len() {
        check(b"", STREAM, &[i], usize::MAX);
    }
    // one byte per read
    let every: Vec<usize> = (1..STREAM.len()).collect();
    check(b"", STREAM, &every, usize::MAX);
    // every pair of cuts over the first lines (several replies in one read, a reply
    // over three reads)
    let head = &STREAM[..120];
    for i in 0..=head.len() {
        for j in i..=head.len() {
            check(b"", head, &[i, j], usize::MAX);
        }
    }
}

#[test]
fn lines_are_cut_as_before_when_a_reply_is_split_at_every_byte() {
    let (mut carry, mut lines) = (Vec::new(), Vec::new());
    for &b in b"7 OK 42\r\n8 PONG\n" {
        assert!(new_feed(&mut carry, &[b], &mut lines, usize::MAX));
    }
    let words = |w: &[&[u8]]| w.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        lines,
        vec![
            (words(&[b"7", b"OK", b"42", b""]), b"7 OK 42".to_vec()),
            (words(&[b"8", b"PONG", b"", b""]), b"8 PONG".to_vec()),
        ]
    );
    assert!(carry.is_empty());
}

#[test]
fn a_stop_hands_out_no_line_after_it() {
    for stop in 1..8 {
        check(b"", STREAM, &[], stop);
        for i in 0..=STREAM.len() {
            check(b"", STREAM, &[i], stop);
        }
    }
}

#[test]
fn a_carry_with_complete_lines_is_handed_out_as_before() {
    // after the connection check the carry may still hold whole lines
    for start in [&b"1 OK 2\n3 PO"[..], b"1 OK 2\n", b"\n\n3", b"x"] {
        for i in 0..=40 {
            check(start, &STREAM[..40], &[i], usize::MAX);
        }
        check(start, b"NG", &[], usize::MAX);
        check(start, b"", &[], usize::MAX);
    }
}

#[test]
fn random_bytes_and_random_reads_give_the_old_lines() {
    const ALPHABET: &[u8] = b"0123OKPNG \t\r\n\n\x0bx";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let len = (next() % 80) as usize;
        let stream: Vec<u8> = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        let mut cuts: Vec<usize> = (0..next() % 6)
            .map(|_| (next() % (len as u64 + 1)) as usize)
            .collect();
        cuts.sort_unstable();
        let start: &[u8] = [&b""[..], b"5 O", b"\r", b"1 2\n3"][(next() % 4) as usize];
        let stop = if next() % 4 == 0 {
            (next() % 5 + 1) as usize
        } else {
            usize::MAX
        };
        check(start, &stream, &cuts, stop);
    }
}
