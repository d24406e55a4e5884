//! Native protocol: request ids too long to be stored inline (23 to 32 bytes), which the
//! server keeps in buffers it reuses from one request to the next. Every reply and
//! event carries exactly the id of its request, whatever longer id its buffer held
//! before: grants at once and after a wait, timeouts, cancels, resets, expiries, and
//! waits that end with their connection.

use crate::common;

use common::*;

/// Rounds of the test below: each ends claims of every kind and starts new ones, so
/// buffers go from one kind of ending (and one id length) to another many times.
const ROUNDS: usize = 40;

/// Request ids of 32 and 23 bytes in turn, each different, none a prefix of another: a
/// 23-byte id whose reply showed any byte of the 32-byte id its buffer held before would
/// not be its own.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> String {
        self.0 += 1;
        let n = self.0;
        let id = if n.is_multiple_of(2) {
            format!("L-{n:030}")
        } else {
            format!("m.{n:021}")
        };
        assert!(id.len() == 32 || id.len() == 23, "{id}");
        id
    }
}

#[test]
fn long_and_mid_length_ids_come_back_exactly_in_every_reply_and_event() {
    let addr = start();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let mut ids = Ids(0);
    // A hold of `a` for the whole test: waits on it are ended only by their connection.
    let id = ids.next();
    let pinned = a.lock(&id, "pinned");
    for round in 0..ROUNDS {
        // Granted at once (the fast path: `LOCK name`).
        let id = ids.next();
        let t1 = a.lock(&id, "n1");
        // Queued, then granted by the release.
        let queued = ids.next();
        b.send(&format!("{queued} LOCK n1 wait=60000"));
        b.sync();
        let id = ids.next();
        a.unlock(&id, &format!("n1 {t1}"));
        let t2 = ok_token(&b.recv(), &queued);
        // Timed out.
        let id = ids.next();
        assert_eq!(
            a.req(&format!("{id} LOCK n1 wait=2")),
            format!("{id} TIMEOUT")
        );
        // Cancelled by CANCEL.
        let waiting = ids.next();
        a.send(&format!("{waiting} LOCK n1"));
        let id = ids.next();
        a.send(&format!("{id} CANCEL {waiting}"));
        assert_eq!(a.recv(), format!("{waiting} CANCELLED"));
        assert_eq!(a.recv(), format!("{id} OK 1"));
        // Cancelled by RESET (which releases nothing here: `a` holds only `pinned`,
        // which must survive, so the RESET goes to a third connection).
        let mut c = Client::connect(addr);
        let (w1, w2) = (ids.next(), ids.next());
        c.send(&format!("{w1} LOCK n1"));
        c.send(&format!("{w2} LOCK n1 wait=60000"));
        let id = ids.next();
        c.send(&format!("{id} RESET"));
        assert_eq!(c.recv(), format!("{w1} CANCELLED"));
        assert_eq!(c.recv(), format!("{w2} CANCELLED"));
        assert_eq!(c.recv(), format!("{id} OK 0 2"));
        // Waits that end with their connection (no reply: the next ids must still be
        // exact). Neither has a wait deadline: a closed connection with one stays until
        // it is answered (the peer may only have shut down its writing side).
        let (w1, w2) = (ids.next(), ids.next());
        c.send(&format!("{w1} LOCK pinned"));
        c.send(&format!("{w2} LOCK pinned queue=1000"));
        c.sync();
        drop(c);
        // Expired.
        let id = ids.next();
        let t3 = b.lock(&id, "n2 hold=2");
        assert_eq!(expired_token(&b.recv(), &id), t3, "round {round}");
        // Released (the fast path: `UNLOCK name token`).
        let id = ids.next();
        b.unlock(&id, &format!("n1 {t2}"));
    }
    // Everything ended but `pinned`'s hold (the closed connections' waits are gone).
    let want = format!(
        "mode=exclusive holders=1 waiters=0 token={pinned} owner={}",
        a.addr()
    );
    eventually("the closed connections' waits end", || {
        a.inspect("pinned") == want
    });
    assert_eq!(a.inspect("n1"), "mode=free holders=0 waiters=0");
    assert_eq!(a.inspect("n2"), "mode=free holders=0 waiters=0");
}
