//! Request tags of 23 to 32 bytes (too long to be stored inline) in recycled buffers:
//! every way a claim ends gives its buffer back to the spare pool, new tags take it
//! from there, the pool is bounded, and a tag in a buffer that held a longer one before
//! comes back in events and callbacks exactly as it was given.

use super::*;

/// A 32-byte tag (the longest native request id).
const ID32: &[u8; 32] = b"0123456789abcdef0123456789ABCDEF";
/// A 23-byte tag (the shortest that is not stored inline), no byte in common with
/// [`ID32`]: a byte of the old tag left over would show.
const ID23: &[u8; 23] = b"zyxwvutsrqponmlkjihgfed";

/// Where a claim's tag is stored (its heap buffer, when it has one).
fn tag_at(e: &Engine, claim: ClaimId) -> *const u8 {
    e.table.claim(claim).data.tag.as_ptr()
}

/// Where each spare buffer is.
fn spares(e: &Engine) -> Vec<*const u8> {
    e.spare_tags.iter().map(|b| b.as_ptr()).collect()
}

/// The claim of `client`'s only hold.
fn hold_of(e: &Engine, client: ClientId) -> ClaimId {
    e.table.first_hold(client).expect("a hold")
}

/// The claim of `client`'s first wait.
fn wait_of(e: &Engine, client: ClientId) -> ClaimId {
    e.table.first_wait(client).expect("a wait")
}

/// One way for a claim to end: sets up a claim of client 0 with tag [`ID32`] (clients 1
/// and 2 help), ends it, checks the events and callbacks that carry its tag, and
/// returns where its buffer was.
type Ending = fn(&mut Engine) -> *const u8;

fn held(e: &mut Engine, client: ClientId, tag: &[u8], name: &[u8], hold: Option<u32>) -> u64 {
    match e.acquire(client, tag, &req(name, X, None, hold), 0) {
        Acquired::Granted { token, .. } => token,
        other => panic!("{name:?} not granted: {other:?}"),
    }
}

fn queued(e: &mut Engine, client: ClientId, tag: &[u8], name: &[u8], wait: Option<u32>) {
    let got = e.acquire(client, tag, &req(name, X, wait, None), 0);
    assert_eq!(got, Acquired::Queued, "{name:?}");
}

const ENDINGS: [(&str, Ending); 9] = [
    ("release", |e| {
        let token = held(e, 0, ID32, b"a", None);
        let at = tag_at(e, hold_of(e, 0));
        e.release(0, b"a", Some(token), 1).unwrap();
        at
    }),
    ("expiry", |e| {
        let token = held(e, 0, ID32, b"a", Some(5));
        let at = tag_at(e, hold_of(e, 0));
        e.advance(10);
        let want = Event {
            client: 0,
            tag: Tag::from_slice(ID32),
            kind: EventKind::Expired { token },
        };
        assert_eq!(events(e), vec![want]);
        at
    }),
    ("wait timeout", |e| {
        held(e, 1, b"h", b"a", None);
        queued(e, 0, ID32, b"a", Some(5));
        let at = tag_at(e, wait_of(e, 0));
        e.advance(10);
        let got = events(e);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].client, &got[0].tag[..], got[0].kind),
            (0, &ID32[..], EventKind::Timeout)
        );
        at
    }),
    ("cancel", |e| {
        held(e, 1, b"h", b"a", None);
        queued(e, 0, ID32, b"a", None);
        let at = tag_at(e, wait_of(e, 0));
        let mut seen = Vec::new();
        assert_eq!(e.cancel(0, ID32, 1, |t| seen.push(t.to_vec())), 1);
        assert_eq!(seen, vec![ID32.to_vec()]);
        at
    }),
    ("reset", |e| {
        held(e, 1, b"h", b"a", None);
        queued(e, 0, ID32, b"a", None);
        let at = tag_at(e, wait_of(e, 0));
        let mut seen = Vec::new();
        assert_eq!(e.reset(0, 1, |t| seen.push(t.to_vec())), (0, 1));
        assert_eq!(seen, vec![ID32.to_vec()]);
        at
    }),
    ("force release", |e| {
        held(e, 0, ID32, b"a", None);
        let at = tag_at(e, hold_of(e, 0));
        assert_eq!(e.force_release(b"a", 0, 1), 1);
        at
    }),
    ("disconnect", |e| {
        held(e, 0, ID32, b"a", None);
        let at = tag_at(e, hold_of(e, 0));
        assert_eq!(e.disconnect(0, 1), 1);
        e.connect(0, addr());
        at
    }),
    ("a closing client's claim, removed by work", |e| {
        held(e, 0, ID32, b"a", None);
        let at = tag_at(e, hold_of(e, 0));
        assert!(e.begin_disconnect(0));
        while e.has_work() {
            e.work(1, 10);
        }
        let mut freed = Vec::new();
        e.take_freed(&mut freed);
        assert_eq!(freed, vec![0]);
        e.connect(0, addr());
        at
    }),
    ("a closing client's wait, dropped from its queue", |e| {
        held(e, 1, b"h", b"a", None);
        queued(e, 0, ID32, b"a", Some(50));
        let at = tag_at(e, wait_of(e, 0));
        assert!(e.begin_disconnect(0));
        // The release reaches the wait at the head of the queue: the table drops it.
        e.release(1, b"a", None, 1).unwrap();
        assert_eq!(
            e.spare_tags.len(),
            1,
            "dropped at the release, before any work"
        );
        while e.has_work() {
            e.work(1, 10);
        }
        e.take_freed(&mut Vec::new());
        e.connect(0, addr());
        assert!(events(e).is_empty());
        at
    }),
];

/// For every way a claim ends: its [`ID32`] buffer goes to the pool, a new [`ID23`]
/// request takes that very buffer, and the grant event of that request carries exactly
/// [`ID23`] (none of the 32 bytes the buffer held before).
#[test]
fn every_way_a_claim_ends_gives_its_long_tags_buffer_to_the_next_long_tag() {
    for (what, end) in ENDINGS {
        let mut e = engine();
        let at = end(&mut e);
        assert_eq!(spares(&e), vec![at], "{what}: the buffer is kept");
        assert!(events(&mut e).is_empty(), "{what}: events left unchecked");
        // The next long tag takes it, whether granted at once or queued.
        held(&mut e, 2, b"h2", b"z", None);
        queued(&mut e, 3, ID23, b"z", None);
        let claim = wait_of(&e, 3);
        assert_eq!(tag_at(&e, claim), at, "{what}: the spare was reused");
        assert_eq!(&e.table.claim(claim).data.tag[..], &ID23[..]);
        assert!(e.spare_tags.is_empty(), "{what}");
        e.release(2, b"z", None, 20).unwrap();
        let got = events(&mut e);
        assert_eq!(got.len(), 1, "{what}: {got:?}");
        assert_eq!((got[0].client, &got[0].tag[..]), (3, &ID23[..]), "{what}");
        // Listings see the same 23 bytes.
        assert_eq!(
            e.holds_of(3).map(|h| h.tag.to_vec()).collect::<Vec<_>>(),
            vec![ID23.to_vec()],
            "{what}"
        );
    }
}

/// A buffer that held [`ID32`] and then [`ID23`] comes back with [`ID23`] in every event
/// kind and callback: grant, timeout, expiry, cancel and reset.
#[test]
fn a_shorter_tag_in_a_recycled_buffer_is_exactly_itself_in_every_event() {
    let mut e = engine();
    let recycle = |e: &mut Engine| {
        let token = held(e, 0, ID32, b"r", None);
        e.release(0, b"r", Some(token), 0).unwrap();
        assert_eq!(e.spare_tags.len(), 1);
    };
    held(&mut e, 1, b"h", b"a", None);
    // Timeout.
    recycle(&mut e);
    queued(&mut e, 0, ID23, b"a", Some(5));
    e.advance(10);
    assert_eq!(
        events(&mut e),
        vec![ev(0, "zyxwvutsrqponmlkjihgfed", EventKind::Timeout)]
    );
    // Cancel and reset.
    for reset in [false, true] {
        recycle(&mut e);
        queued(&mut e, 0, ID23, b"a", None);
        let mut seen = Vec::new();
        if reset {
            e.reset(0, 20, |t| seen.push(t.to_vec()));
        } else {
            e.cancel(0, ID23, 20, |t| seen.push(t.to_vec()));
        }
        assert_eq!(seen, vec![ID23.to_vec()], "reset: {reset}");
    }
    // Grant, then expiry.
    recycle(&mut e);
    assert_eq!(
        e.acquire(0, ID23, &req(b"a", X, None, Some(5)), 20),
        Acquired::Queued
    );
    e.release(1, b"a", None, 20).unwrap();
    let got = events(&mut e);
    let EventKind::Granted { token, .. } = got[0].kind else {
        panic!("{got:?}")
    };
    assert_eq!(
        got,
        vec![ev(0, "zyxwvutsrqponmlkjihgfed", granted(token, 1, false))]
    );
    e.advance(30);
    assert_eq!(
        events(&mut e),
        vec![ev(
            0,
            "zyxwvutsrqponmlkjihgfed",
            EventKind::Expired { token }
        )]
    );
    assert_eq!(e.spare_tags.len(), 1, "and its buffer is back");
}

/// The pool keeps at most [`SPARE_TAGS`] buffers, all of [`TAG_BUFFER`] bytes: tags
/// that fit inline or are longer than [`TAG_BUFFER`] (a foreign codec's) leave none.
#[test]
fn the_spare_pool_is_bounded_and_holds_only_tag_sized_buffers() {
    let mut e = engine_with(100_000);
    for tag in [
        &b"short"[..],
        &[b'x'; 22][..],
        &[b'y'; TAG_BUFFER + 1][..],
        &[b'z'; 200][..],
    ] {
        let token = held(&mut e, 0, tag, b"a", None);
        e.release(0, b"a", Some(token), 0).unwrap();
        assert!(e.spare_tags.is_empty(), "a tag of {} bytes", tag.len());
    }
    let n = SPARE_TAGS + 100;
    for i in 0..n {
        let mut tag = *ID32;
        tag[..8].copy_from_slice(format!("{i:08}").as_bytes());
        held(&mut e, 0, &tag, format!("n{i}").as_bytes(), None);
    }
    assert!(e.spare_tags.is_empty(), "each took a new buffer");
    assert_eq!(e.reset(0, 1, |_| {}), (n as u32, 0));
    assert_eq!(e.spare_tags.len(), SPARE_TAGS, "the rest were freed");
    assert!(e.spare_tags.iter().all(|b| b.len() == TAG_BUFFER));
    // A tag of any length from 23 to 32 bytes fits any of them.
    for len in INLINE + 1..=TAG_BUFFER {
        let before = e.spare_tags.len();
        held(&mut e, 1, &ID32[..len], format!("m{len}").as_bytes(), None);
        assert_eq!(e.spare_tags.len(), before - 1, "a tag of {len} bytes");
        let claim = hold_of(&e, 1);
        assert_eq!(&e.table.claim(claim).data.tag[..], &ID32[..len]);
        e.reset(1, 1, |_| {});
        assert_eq!(e.spare_tags.len(), before);
    }
}

/// A request the engine refuses makes no claim, and so takes no spare buffer.
#[test]
fn a_refused_request_takes_no_spare_buffer() {
    let mut e = engine_with(2);
    held(&mut e, 1, b"h", b"a", None);
    let token = held(&mut e, 0, ID32, b"r", None);
    e.release(0, b"r", Some(token), 0).unwrap();
    assert_eq!(e.spare_tags.len(), 1);
    let busy = req(b"a", X, Some(0), None);
    assert_eq!(e.acquire(0, ID23, &busy, 0), Acquired::Timeout);
    let full = AcquireRequest {
        queue: Some(0),
        ..forever(b"a", X)
    };
    assert_eq!(e.acquire(0, ID23, &full, 0), Acquired::QueueFull);
    held(&mut e, 0, b"1", b"b", None);
    held(&mut e, 0, b"2", b"c", None);
    assert_eq!(e.acquire(0, ID23, &forever(b"d", X), 0), Acquired::Limit);
    assert_eq!(e.spare_tags.len(), 1, "still there");
}
