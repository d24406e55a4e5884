//! The server's per-connection buffers, driven step by step (accept, read, flush) over
//! a real loopback connection: a pipelined burst keeps neither buffer big, and both are
//! given back once drained. Sizes only, never time.

use super::*;
use std::net::TcpStream as StdStream;

/// A server on a free loopback port with one accepted native connection (key 0).
fn server_with_client() -> (Server, StdStream) {
    let cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let mut server = Server::bind(cfg).unwrap();
    let client = StdStream::connect(server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // The kernel completed the handshake: accept finds it at once (bounded retries).
    for _ in 0..1000 {
        server.accept(0, server.clock.now_us());
        if server.conns.contains(0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(server.conns.contains(0), "connection not accepted");
    (server, client)
}

/// `n` pings with ids `from..from + n`.
fn pings(from: usize, n: usize) -> Vec<u8> {
    (from..from + n)
        .flat_map(|i| format!("{i} PING\n").into_bytes())
        .collect()
}

/// One turn of connection 0 as the loop gives it: read (a resumed turn reads to
/// `WouldBlock`), then the iteration's flush.
fn turn(server: &mut Server) {
    server.resume.clear();
    if let Some(conn) = server.conns.get_mut(0) {
        conn.resuming = false;
    }
    server.read(0, Drain::ToWouldBlock);
    server.flush();
}

#[test]
fn held_back_input_is_completed_a_step_at_a_time_not_a_read_at_a_time() {
    let (mut server, mut client) = server_with_client();
    // A request cut in two, behind a few complete ones.
    let mut first = pings(0, 10);
    first.extend_from_slice(b"x PI");
    client.write_all(&first).unwrap();
    let expect = pings(0, 10).len(); // "i PONG\n" is as long as "i PING\n"
    let mut replies = Vec::new();
    while replies.len() < expect {
        turn(&mut server);
        let mut buf = [0; 4096];
        let n = client.read(&mut buf).unwrap();
        replies.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&server.conns[0].partial[..], b"x PI");
    // Its end, then 150 more (about 1.3 KB in one read), again cut at the end: the
    // held-back request takes a step of the read, the rest is decoded in place, so the
    // buffer never holds the read (it would then be over PARTIAL_KEEP, or shrunk to
    // exactly that once decoded).
    let mut second = b"NG\n".to_vec();
    second.extend(pings(10, 150));
    second.extend_from_slice(b"y PI");
    assert!(second.len() > PARTIAL_KEEP);
    client.write_all(&second).unwrap();
    let want = b"x PONG\n".len() + pings(10, 150).len();
    let mut got = 0;
    while got < want {
        turn(&mut server);
        let conn = &server.conns[0];
        assert!(
            conn.partial.capacity() < PARTIAL_KEEP,
            "{} bytes of held-back input in {} bytes of capacity",
            conn.partial.len(),
            conn.partial.capacity()
        );
        let mut buf = vec![0; 64 * 1024];
        got += client.read(&mut buf).unwrap();
    }
    assert_eq!(&server.conns[0].partial[..], b"y PI");
    // The end of the last one: answered, and nothing is held back.
    client.write_all(b"NG\n").unwrap();
    let mut last = Vec::new();
    while last.len() < b"y PONG\n".len() {
        turn(&mut server);
        let mut buf = [0; 64];
        let n = client.read(&mut buf).unwrap();
        last.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&last[..], b"y PONG\n");
    assert!(server.conns[0].partial.is_empty());
}

#[test]
fn a_turn_that_left_a_flush_worth_of_output_reads_no_more_until_flushed() {
    let (mut server, mut client) = server_with_client();
    server.conns[0].out.extend_from_slice(&[b'#'; OUT_TURN]);
    server.mark_dirty(0);
    client.write_all(&pings(0, 10)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // A resumed turn reads to WouldBlock; this one stops after its first read.
    server.read(0, Drain::ToWouldBlock);
    let conn = &server.conns[0];
    assert_eq!(
        conn.out.len(),
        OUT_TURN + pings(0, 10).len(),
        "one read, answered"
    );
    assert!(conn.resuming, "its turn goes on in the next iteration");
    server.flush();
    turn(&mut server);
    let mut got = vec![0; OUT_TURN + pings(0, 10).len()];
    client.read_exact(&mut got).unwrap();
    assert!(got[..OUT_TURN].iter().all(|&b| b == b'#'));
    assert_eq!(
        &got[OUT_TURN..],
        b"0 PONG\n1 PONG\n2 PONG\n3 PONG\n4 PONG\n5 PONG\n6 PONG\n7 PONG\n8 PONG\n9 PONG\n"
    );
}

#[test]
fn a_pipelined_burst_is_answered_whole_and_its_buffers_given_back() {
    let (mut server, mut client) = server_with_client();
    // 15,000 pings (about 150 KB, twice the output mark plus a read) in the server's
    // socket before its first turn (a turn's time may end it before its output does).
    socket2::SockRef::from(&server.conns[0].stream)
        .set_recv_buffer_size(1 << 20)
        .unwrap();
    let burst = pings(0, 15_000);
    let want = burst.len();
    let writer = {
        let mut w = client.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&burst).unwrap())
    };
    for _ in 0..2000 {
        if writer.is_finished() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut got = 0;
    let mut turns = 0;
    let mut biggest = 0;
    while got < want {
        turns += 1;
        assert!(turns < 100_000, "no progress");
        server.resume.clear();
        if let Some(conn) = server.conns.get_mut(0) {
            conn.resuming = false;
        }
        let before = server.conns[0].out.len();
        server.read(0, Drain::ToWouldBlock);
        // Before the flush: what one turn added.
        biggest = biggest.max(server.conns[0].out.len() - before);
        server.flush();
        let conn = &server.conns[0];
        assert!(
            conn.out.capacity() <= OUT_KEEP || !conn.out.is_empty(),
            "an emptied output buffer of {} bytes was kept",
            conn.out.capacity()
        );
        let mut buf = vec![0; 256 * 1024];
        client.set_nonblocking(true).unwrap();
        match client.read(&mut buf) {
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        client.set_nonblocking(false).unwrap();
    }
    writer.join().unwrap();
    assert!(
        biggest <= OUT_TURN + READ_CHUNK,
        "one turn added {biggest} bytes of output"
    );
    assert!(turns > 1, "the burst took more than one turn");
    let conn = &server.conns[0];
    assert!(conn.out.is_empty() && conn.out.capacity() <= OUT_KEEP);
    assert!(conn.partial.capacity() <= PARTIAL_KEEP);
}
