//! Reading a connection: into the shared read buffer until drained (see [`Drain`]) or
//! the turn's budget is used, keeping only a trailing partial request; and reading and
//! dropping the input of a lingering connection.

use super::*;

impl Server {
    /// Decodes held-back input, then reads until the socket is drained (see [`Drain`]),
    /// EOF or the end of the connection's turn: [`READ_BUDGET`] bytes or [`TURN_MS`] of
    /// work, after which it waits on the `resume` list for the next iteration (fairness).
    pub(super) fn read(&mut self, k: usize, drain: Drain) {
        let Some(conn) = self.conns.get(k) else {
            return;
        };
        if conn.phase == Phase::Lingering {
            self.linger_read(k);
            return;
        }
        // Set by the turn's first clock reading.
        let mut turn_end = None;
        if !conn.partial.is_empty() || conn.codec.listing() {
            let now = self.clock.now_us();
            let end = *turn_end.insert(now + TURN_MS * US_PER_MS);
            if self.dispatch(k, Source::Partial, now, end) == Turn::Yielded {
                self.push_resume(k);
                return;
            }
        }
        let mut budget = READ_BUDGET;
        loop {
            let Some(conn) = self.conns.get_mut(k) else {
                return;
            };
            if conn.phase != Phase::Open {
                return;
            }
            if conn.paused || conn.out.len() >= self.cfg.output_high_water {
                // Backpressure: stop reading until flush drains the output.
                conn.paused = true;
                return;
            }
            if budget == 0 {
                self.push_resume(k);
                return;
            }
            let turn = match conn.stream.read(&mut self.rbuf) {
                Ok(0) => {
                    // Peer closed its side: answer what it sent (native: waits with a
                    // deadline included), then close (see `flush`).
                    conn.phase = Phase::HalfClosed;
                    self.mark_dirty(k);
                    return;
                }
                Ok(n) => {
                    self.stats.bytes_in += n as u64;
                    budget = budget.saturating_sub(n);
                    // One clock reading for the batch: all of it has arrived by now.
                    let now = self.clock.now_us();
                    let end = *turn_end.get_or_insert(now + TURN_MS * US_PER_MS);
                    let turn = if conn.partial.is_empty() {
                        self.dispatch(k, Source::Shared(n), now, end)
                    } else {
                        self.dispatch_behind_partial(k, n, now, end)
                    };
                    if turn == Turn::Done && n < self.rbuf.len() && drain == Drain::UntilShortRead {
                        // The kernel had no more: skip the read that would say WouldBlock.
                        return;
                    }
                    if self.conns.get(k).is_some_and(|c| c.out.len() >= OUT_TURN) {
                        // Output enough for one flush: the rest of the turn comes after it.
                        Turn::Yielded
                    } else {
                        turn
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("read from {}: {e}", conn.addr);
                    self.close(k);
                    return;
                }
            };
            if turn == Turn::Yielded {
                self.push_resume(k);
                return;
            }
        }
    }

    /// Decodes the `n` bytes just read behind the connection's held-back input: first
    /// that input completed by the new bytes up to their last line end within
    /// [`PARTIAL_STEP`], from `partial`; then, if that emptied it, the rest straight from
    /// the shared buffer (else the rest joins `partial`, as a request longer than the
    /// step needs).
    fn dispatch_behind_partial(&mut self, k: usize, n: usize, now: u64, end: u64) -> Turn {
        let cut = memchr::memrchr(b'\n', &self.rbuf[..n.min(PARTIAL_STEP)]).map_or(n, |i| i + 1);
        let Some(conn) = self.conns.get_mut(k) else {
            return Turn::Done;
        };
        conn.partial.extend_from_slice(&self.rbuf[..cut]);
        let turn = self.dispatch(k, Source::Partial, now, end);
        let Some(conn) = self.conns.get_mut(k) else {
            return turn;
        };
        if cut == n || conn.phase != Phase::Open {
            return turn;
        }
        if turn == Turn::Done && !conn.paused && conn.partial.is_empty() {
            // Decoded in place, moved to the front first (a burst's reads only).
            self.rbuf.copy_within(cut..n, 0);
            return self.dispatch(k, Source::Shared(n - cut), now, end);
        }
        conn.partial.extend_from_slice(&self.rbuf[cut..n]);
        if turn == Turn::Done && !conn.paused {
            // A request longer than the step: decode it with the rest of the read.
            return self.dispatch(k, Source::Partial, now, end);
        }
        turn
    }

    /// Reads and drops a lingering connection's input; closes it at EOF, on an error or
    /// past [`LINGER_BYTES`].
    pub(super) fn linger_read(&mut self, k: usize) {
        let Some(conn) = self.conns.get_mut(k) else {
            return;
        };
        loop {
            match conn.stream.read(&mut self.rbuf) {
                Ok(n) if n > 0 && conn.lingered + n <= LINGER_BYTES => conn.lingered += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EOF, an error, or too much: done.
                _ => {
                    self.close(k);
                    return;
                }
            }
        }
    }

    /// Closes `k` if it is in `phase`.
    pub(super) fn close_if(&mut self, k: usize, phase: Phase) {
        if self.conns.get(k).is_some_and(|c| c.phase == phase) {
            self.close(k);
        }
    }
}
