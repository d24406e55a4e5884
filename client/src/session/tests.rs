use super::*;
use crate::proto::Grant;
use std::sync::Arc;
use std::task::Wake;
use std::time::Duration;

struct Flag;
impl Wake for Flag {
    fn wake(self: Arc<Self>) {}
}

fn cx_waker() -> Waker {
    Waker::from(Arc::new(Flag))
}

fn out(s: &mut Session) -> String {
    let mut b = Vec::new();
    s.take_out(&mut b);
    String::from_utf8(b).unwrap()
}

fn feed(s: &mut Session, line: &str) {
    let mut w = Vec::new();
    s.on_line(line.as_bytes(), &mut w).unwrap();
}

fn poll(s: &mut Session, id: u64) -> Poll<Result<Reply>> {
    let w = cx_waker();
    s.poll_reply(id, &mut Context::from_waker(&w))
}

#[test]
fn routes_by_id_in_completion_order() {
    let mut s = Session::new();
    let a = s.submit(Request::lock("x").into()).unwrap();
    let b = s.submit(Request::Ping).unwrap();
    assert_eq!(out(&mut s), "1 LOCK x\n2 PING\n");
    assert!(poll(&mut s, a).is_pending());
    feed(&mut s, "2 PONG");
    assert!(matches!(poll(&mut s, b), Poll::Ready(Ok(Reply::Pong))));
    feed(&mut s, "1 OK 77");
    assert!(matches!(
        poll(&mut s, a),
        Poll::Ready(Ok(Reply::Granted(Grant { token: 77, .. })))
    ));
    // The grant's entry stays for its guard, and gets EXPIRED.
    assert_eq!(s.lost(a), None);
    feed(&mut s, "1 EXPIRED 77");
    assert_eq!(s.lost(a), Some(Lost::Expired(77)));
    s.release_detached(a, "x".into(), 77);
    assert_eq!(out(&mut s), "", "an expired hold is not unlocked again");
    assert_eq!(s.len(), 0);
    assert_eq!(s.lost(a), Some(Lost::Released));
}

#[test]
fn submit_waiting_wakes_and_poll_grant_hands_over_the_name() {
    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(Default::default()));
    let waker = Waker::from(count.clone());
    let mut s = Session::new();
    let a = s
        .submit_waiting(Request::lock("jobs:1").into(), &waker)
        .unwrap();
    assert_eq!(out(&mut s), "1 LOCK jobs:1\n");
    let mut wake = Vec::new();
    s.on_line(b"1 OK 42", &mut wake).unwrap();
    assert_eq!(
        wake.len(),
        1,
        "the waker given at submit is woken by the reply"
    );
    wake.into_iter().for_each(Waker::wake);
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    let mut name = None;
    let r = s.poll_grant(a, &mut Context::from_waker(&waker), &mut name);
    assert!(matches!(
        r,
        Poll::Ready(Ok(Reply::Granted(Grant { token: 42, .. })))
    ));
    assert_eq!(name.as_deref(), Some("jobs:1"));
    assert_eq!(s.take_name(a), None, "the entry no longer has it");
    // The hold is still tracked (EXPIRED reaches it) and released with the
    // caller's name.
    assert_eq!(s.lost(a), None);
    s.release_detached(a, name.unwrap(), 42);
    assert_eq!(out(&mut s), "2 UNLOCK jobs:1 42\n");
    assert_eq!(s.len(), 1, "only the UNLOCK's own entry");
    feed(&mut s, "2 OK");
    assert_eq!(s.len(), 0, "a detached request's reply is dropped");
}

#[test]
fn abandoned_wait_is_cancelled() {
    let mut s = Session::new();
    let a = s.submit(Request::lock("x").into()).unwrap();
    out(&mut s);
    s.abandon(a);
    assert_eq!(out(&mut s), "2 CANCEL 1\n");
    feed(&mut s, "1 CANCELLED");
    feed(&mut s, "2 OK 1");
    assert_eq!(out(&mut s), "");
    assert_eq!(s.len(), 0);
}

#[test]
fn grant_that_crossed_the_cancel_is_released() {
    let mut s = Session::new();
    let a = s.submit(Request::lock("x").into()).unwrap();
    out(&mut s);
    s.abandon(a);
    assert_eq!(out(&mut s), "2 CANCEL 1\n");
    // The server granted before it read the CANCEL.
    feed(&mut s, "1 OK 99");
    assert_eq!(out(&mut s), "3 UNLOCK x 99\n");
    feed(&mut s, "2 ERR not_waiting no pending wait with that id");
    feed(&mut s, "3 OK");
    assert_eq!(s.len(), 0);
}

#[test]
fn grant_received_but_not_taken_is_released() {
    let mut s = Session::new();
    let a = s.submit(Request::share("q").into()).unwrap();
    out(&mut s);
    feed(&mut s, "1 OK 5 1");
    s.abandon(a);
    assert_eq!(out(&mut s), "2 UNLOCK q 5\n");
}

#[test]
fn close_fails_pending_and_loses_holds() {
    let mut s = Session::new();
    let a = s.submit(Request::lock("x").into()).unwrap();
    let b = s.submit(Request::lock("y").into()).unwrap();
    feed(&mut s, "1 OK 1");
    assert!(poll(&mut s, a).is_ready());
    let mut w = Vec::new();
    s.close(&mut w);
    assert_eq!(s.lost(a), Some(Lost::ConnectionLost));
    assert!(matches!(
        poll(&mut s, b),
        Poll::Ready(Err(Error::ConnectionLost))
    ));
    assert!(matches!(
        s.submit(Request::Ping),
        Err(Error::ConnectionLost)
    ));
    assert_eq!(out(&mut s), "");
}

#[test]
fn connection_level_error_is_reported_to_pending() {
    let mut s = Session::new();
    let a = s.submit(Request::Ping).unwrap();
    feed(&mut s, "* ERR limit too many connections");
    s.close(&mut Vec::new());
    assert!(matches!(poll(&mut s, a), Poll::Ready(Err(Error::Limit(_)))));
}

#[test]
fn reset_loses_every_hold() {
    let mut s = Session::new();
    let a = s.submit(Request::lock("x").into()).unwrap();
    feed(&mut s, "1 OK 1");
    assert!(poll(&mut s, a).is_ready());
    let r = s.submit(Request::Reset).unwrap();
    feed(&mut s, "2 OK 1 0");
    assert!(matches!(
        poll(&mut s, r),
        Poll::Ready(Ok(Reply::Reset { .. }))
    ));
    assert_eq!(s.lost(a), Some(Lost::Reset));
}

#[test]
fn a_block_of_lines_is_routed_line_by_line() {
    let mut s = Session::new();
    let a = s.submit(Request::Ping).unwrap();
    let b = s.submit(Request::lock("x").into()).unwrap();
    let c = s.submit(Request::Ping).unwrap();
    let mut w = Vec::new();
    s.on_lines(b"1 PONG\r\n2 OK 7\n", &mut w).unwrap();
    assert!(matches!(poll(&mut s, a), Poll::Ready(Ok(Reply::Pong))));
    assert!(matches!(
        poll(&mut s, b),
        Poll::Ready(Ok(Reply::Granted(Grant { token: 7, .. })))
    ));
    assert!(poll(&mut s, c).is_pending());
    s.on_lines(b"", &mut w).unwrap();
    // Not UTF-8: still handled line by line, and the bad line is an error after
    // the good ones before it were routed.
    assert!(s.on_lines(b"3 PONG\n\xff\n", &mut w).is_err());
    assert!(matches!(poll(&mut s, c), Poll::Ready(Ok(Reply::Pong))));
    // An empty line is a protocol error, as on its own.
    assert!(s.on_lines(b"\n", &mut w).is_err());
}

#[test]
fn garbage_is_a_protocol_error() {
    let mut s = Session::new();
    assert!(s.on_line(b"nonsense", &mut Vec::new()).is_err());
    // Unknown ids are ignored.
    s.on_line(b"42 OK", &mut Vec::new()).unwrap();
}

#[test]
fn a_lease_moves_only_to_a_later_confirmation_and_runs_out_on_time() {
    let mut s = Session::new();
    let a = s.submit(Request::lock("x").into()).unwrap();
    feed(&mut s, "1 OK 5");
    assert!(poll(&mut s, a).is_ready());
    let t0 = Instant::now();
    let hold = Duration::from_millis(100);
    s.confirm_lease(a, Lease::new(t0, hold));
    assert_eq!(s.lease(a).unwrap().until, t0 + hold - LEASE_MARGIN);
    // A late reply to an EXTEND sent before the one already recorded changes nothing.
    let later = Lease::new(t0 + Duration::from_millis(50), hold);
    s.confirm_lease(a, later);
    s.confirm_lease(a, Lease::new(t0 + Duration::from_millis(10), hold));
    assert_eq!(s.lease(a), Some(later));
    let mut wake = Vec::new();
    assert_eq!(
        s.check_lease(a, later.until - Duration::from_millis(1), &mut wake),
        Some(later.until)
    );
    assert_eq!(s.lost(a), None);
    // At the deadline it is lost, once.
    let w = cx_waker();
    assert!(s.poll_lost(a, &mut Context::from_waker(&w)).is_pending());
    assert_eq!(s.check_lease(a, later.until, &mut wake), None);
    assert_eq!(wake.len(), 1, "the lost() waker is woken");
    assert_eq!(s.lost(a), Some(Lost::LeaseUnconfirmed));
    // EXPIRED or a close afterwards do not change why.
    feed(&mut s, "1 EXPIRED 5");
    assert_eq!(s.lost(a), Some(Lost::LeaseUnconfirmed));
    // The server may still have it: dropping the guard still unlocks it.
    out(&mut s);
    s.release_detached(a, "x".into(), 5);
    assert_eq!(out(&mut s), "2 UNLOCK x 5\n");
}

#[test]
fn holds_without_a_lease_or_already_lost_are_not_watched() {
    let mut s = Session::new();
    let a = s.submit(Request::lock("x").into()).unwrap();
    feed(&mut s, "1 OK 5");
    assert!(poll(&mut s, a).is_ready());
    let mut wake = Vec::new();
    let far = Instant::now() + Duration::from_secs(3600);
    assert_eq!(s.check_lease(a, far, &mut wake), None);
    assert_eq!(s.lost(a), None, "no deadline, nothing to run out");
    s.confirm_lease(a, Lease::new(Instant::now(), Duration::from_millis(10)));
    s.mark_lost(a, Lost::Expired(5), &mut wake);
    assert_eq!(s.check_lease(a, far, &mut wake), None);
    assert_eq!(s.lost(a), Some(Lost::Expired(5)));
    // A hold the server let go is not unlocked again; a hold shorter than the
    // margin is vouched for no time at all.
    out(&mut s);
    s.release_detached(a, "x".into(), 5);
    assert_eq!(out(&mut s), "");
    let t = Instant::now();
    assert_eq!(Lease::new(t, Duration::from_millis(1)).until, t);
}
