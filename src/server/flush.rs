//! Flushing: every dirty connection's output written once per iteration, WRITABLE
//! interest kept iff output is left, paused connections resumed below half the mark,
//! and drained connections closed.

use super::*;

impl Server {
    /// Writes every dirty connection's output once.
    pub(super) fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for k in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(k) else {
                continue;
            };
            conn.dirty = false;
            if !matches!(
                conn.phase,
                Phase::Open | Phase::HalfClosed | Phase::Draining
            ) {
                continue;
            }
            let written = match write_some(&mut conn.stream, &conn.out) {
                Ok(n) => n,
                Err(e) => {
                    debug!("write to {}: {e}", conn.addr);
                    self.close(k);
                    continue;
                }
            };
            self.stats.bytes_out += written as u64;
            if written == conn.out.len() {
                conn.out.clear(); // the common case: no tail to move
            } else {
                conn.out.drain(..written);
            }
            if conn.out.is_empty() && conn.out.capacity() > OUT_KEEP {
                // A burst is over: give the memory back. Only a client that gets more
                // than OUT_KEEP (over 500 replies) in one round regrows it, once.
                conn.out = Vec::new();
            }
            let want_writable = !conn.out.is_empty();
            if want_writable != conn.writable {
                let interest = if want_writable {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                if let Err(e) =
                    self.poll
                        .registry()
                        .reregister(&mut conn.stream, Token(k), interest)
                {
                    debug!("reregister {}: {e}", conn.addr);
                    self.close(k);
                    continue;
                }
                conn.writable = want_writable;
            }
            if conn.out.len() + conn.codec.held_len() > self.cfg.output_limit {
                // A hard limit: whatever the client reads, memory stays bounded.
                warn!(
                    "{} does not read its replies ({} bytes pending): disconnecting",
                    Peer::of(&self.engine, conn.client),
                    conn.out.len() + conn.codec.held_len()
                );
                conn.linger = true;
                self.close(k);
            } else if conn.phase == Phase::Open && !conn.paused {
                // The common case: nothing to close or resume.
            } else if conn.phase == Phase::Draining && conn.out.is_empty() && !conn.codec.listing()
            {
                self.close(k);
            } else if conn.phase == Phase::HalfClosed
                && conn.out.is_empty()
                && !conn.codec.listing()
                && (!conn.codec.answers_after_half_close()
                    || self.engine.timed_waits(conn.client) == 0)
            {
                // Every wait with a deadline has been answered: the rest of the claims
                // go with the connection.
                self.close(k);
            } else if conn.paused && conn.out.len() < self.cfg.output_high_water / 2 {
                // Drained enough: read again (edge-triggered, so nobody else will say so).
                conn.paused = false;
                self.push_resume(k);
            }
        }
        self.dirty = dirty;
    }
}

/// Writes as much of `buf` as the socket takes; `Ok(n)` with n < len on WouldBlock.
fn write_some(stream: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match stream.write(&buf[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
