//! A request as its wire line: `<id> VERB args\n`, numbers written without
//! formatting machinery (this runs once per request on the hot path).

use super::{Acquire, LockKind, Request};

impl Request {
    /// Appends the request line with id `id` and its `\n` to `out`. Call
    /// [`Request::validate`] first: this writes what it is given.
    pub fn encode(&self, id: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(id.as_bytes());
        self.encode_tail(out);
    }

    /// [`Request::encode`] with a numeric id (as [`IdAllocator`](super::IdAllocator) hands out), written
    /// straight into `out` without formatting machinery or a temporary string.
    pub fn encode_with_id(&self, id: u64, out: &mut Vec<u8>) {
        push_u64(out, id);
        self.encode_tail(out);
    }

    /// Everything after the id: ` VERB args\n`.
    fn encode_tail(&self, out: &mut Vec<u8>) {
        // The hot verbs as constants (copied inline; a verb of unknown length is a
        // call to memcpy).
        match self {
            Request::Acquire(Acquire {
                kind: LockKind::Exclusive,
                ..
            }) => out.extend_from_slice(b" LOCK"),
            Request::Unlock { .. } => out.extend_from_slice(b" UNLOCK"),
            _ => {
                out.push(b' ');
                out.extend_from_slice(self.verb().as_bytes());
            }
        }
        match self {
            Request::Acquire(a) => {
                push_word(out, &a.name);
                if let LockKind::Shared { max: Some(m) } = a.kind {
                    push_option(out, b" max=", m);
                }
                if let Some(w) = a.wait {
                    push_option(out, b" wait=", w);
                }
                if let Some(h) = a.hold {
                    push_option(out, b" hold=", h);
                }
                if let Some(q) = a.queue {
                    push_option(out, b" queue=", q);
                }
            }
            Request::Unlock { name, token } => {
                push_word(out, name);
                if let Some(t) = token {
                    out.push(b' ');
                    push_u64(out, *t);
                }
            }
            Request::Extend { name, token, hold } => {
                push_word(out, name);
                out.push(b' ');
                push_u64(out, *token);
                push_option(out, b" hold=", *hold);
            }
            Request::Cancel { id } => push_word(out, id),
            Request::Inspect { name } | Request::Name { name } => push_word(out, name),
            Request::List { prefix: Some(p) } => push_word(out, p),
            Request::Auth { secret } => push_word(out, secret),
            Request::List { prefix: None }
            | Request::Reset
            | Request::Whoami
            | Request::Clients
            | Request::Stats
            | Request::Ping
            | Request::Quit => {}
        }
        out.push(b'\n');
    }
}

/// Appends ` word`.
fn push_word(out: &mut Vec<u8>, word: &str) {
    out.push(b' ');
    out.extend_from_slice(word.as_bytes());
}

/// Appends ` key=value` (`key` given with its space and `=`).
#[inline(always)]
fn push_option<const N: usize>(out: &mut Vec<u8>, key: &[u8; N], value: u32) {
    out.extend_from_slice(key);
    push_u64(out, u64::from(value));
}

/// "00" to "99": two digits per division when formatting numbers.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[i..]);
}
