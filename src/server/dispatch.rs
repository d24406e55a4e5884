//! Dispatch: decoding a connection's buffered input a request at a time (a listing in
//! progress first) within its turn, counting and logging refusals, and routing the
//! engine's events to the connections they are for.

use super::*;

impl Server {
    /// Continues the connection's listing, if any, then decodes and handles every
    /// complete request in `src`, routing engine events after each one; keeps what is
    /// left in the connection's `partial` buffer.
    ///
    /// `now` is the clock read after the bytes in `src` were read, so no request's
    /// deadlines start before it was read; it is read again whenever the turn's time is
    /// checked. Stops early (`Yielded`) once the clock passes `turn_end`, or at such a
    /// check when a deadline is due (deadlines fire between turns: see `timers`).
    pub(super) fn dispatch(
        &mut self,
        k: usize,
        src: Source,
        mut now: u64,
        mut turn_end: u64,
    ) -> Turn {
        let mut pos = 0;
        let mut turn = Turn::Done;
        let mut unchecked = 0;
        loop {
            let Some(conn) = self.conns.get_mut(k) else {
                return turn;
            };
            let live = || {
                matches!(
                    conn.phase,
                    Phase::Open | Phase::HalfClosed | Phase::Draining
                )
            };
            if conn.codec.listing() && live() {
                // A listing in progress goes first: later requests wait their turn.
                if conn.out.len() >= output_mark(self.cfg.output_high_water, self.cfg.output_limit)
                {
                    // Continue once the client has read (flush resumes it).
                    conn.paused = true;
                    break;
                }
                let now = self.clock.now_us();
                if now >= turn_end {
                    turn = Turn::Yielded;
                    break;
                }
                let mut cx = ctx!(self, conn, now);
                conn.codec
                    .proceed(&mut cx, Batch::new(self.cfg.output_limit));
                self.mark_dirty(k);
                continue;
            }
            let input = match src {
                Source::Shared(n) => &self.rbuf[pos..n],
                Source::Partial => &conn.partial[pos..],
            };
            if input.is_empty() || conn.phase != Phase::Open {
                break;
            }
            if conn.out.len() >= self.cfg.output_high_water {
                // Backpressure with requests still buffered: `flush` resumes the
                // connection once its output drains (no readiness event will).
                conn.paused = true;
                break;
            }
            if now >= turn_end {
                turn = Turn::Yielded;
                break;
            }
            let out_before = conn.out.len();
            let mut cx = ctx!(self, conn, now);
            let refusals = (
                cx.engine.counters().limit_refusals_total,
                cx.stats.auth_failures_total,
            );
            let input_len = input.len();
            let progress = conn.codec.decode(input, &mut cx);
            let start = pos;
            match progress {
                Progress::Consumed(n) => pos += n,
                Progress::Incomplete => break,
                Progress::Close(n) => {
                    pos += n;
                    conn.phase = Phase::Draining;
                    conn.linger = true;
                }
                Progress::CloseDelayed(n) => {
                    pos += n;
                    conn.phase = Phase::Delayed;
                    conn.linger = true;
                }
            }
            // Everything decoded and no listing started: the loop would only find that
            // out again at its top.
            let exhausted = pos - start == input_len && !conn.codec.listing();
            self.stats.requests_total[conn.protocol as usize] += 1;
            unchecked += 1;
            if unchecked >= TURN_CHECK_REQUESTS || conn.out.len() >= out_before + TURN_CHECK_BYTES {
                unchecked = 0;
                now = self.clock.now_us();
                if self.engine.due(now) || self.timers.due(now) {
                    // A deadline is due: it goes before the rest of this turn.
                    turn_end = now;
                }
            }
            let client = conn.client;
            if conn.phase == Phase::Delayed {
                self.set_timer(
                    k,
                    now + AUTH_FAIL_DELAY_MS * US_PER_MS,
                    ConnTimer::AuthDelay,
                );
            } else if (!conn.out.is_empty() || conn.phase != Phase::Open) && !conn.dirty {
                // `mark_dirty`, with the connection at hand
                conn.dirty = true;
                self.dirty.push(k);
            }
            self.warn_refusals(client, refusals, now);
            if self.engine.has_events() {
                self.route_events();
            }
            if exhausted {
                if let Source::Shared(_) = src {
                    // Nothing is left to keep in `partial` (see below).
                    return turn;
                }
                break;
            }
        }
        let Some(conn) = self.conns.get_mut(k) else {
            return turn;
        };
        match src {
            // Most batches end on a line end: nothing to keep, no call.
            Source::Shared(n) if conn.phase == Phase::Open && pos < n => {
                conn.partial.extend_from_slice(&self.rbuf[pos..n])
            }
            Source::Shared(_) => {}
            Source::Partial if conn.phase == Phase::Open => {
                conn.partial.drain(..pos);
                if conn.partial.capacity() > PARTIAL_KEEP {
                    if conn.partial.is_empty() {
                        // Idle connections keep no input memory worth counting.
                        conn.partial = Vec::new();
                    } else if conn.partial.len() <= PARTIAL_STEP {
                        // The rest of a turn cut short, decoded: what is left (part of
                        // a request) needs no more than the next read's step.
                        conn.partial.shrink_to(PARTIAL_KEEP);
                    }
                }
            }
            Source::Partial => conn.partial = Vec::new(),
        }
        turn
    }

    /// Logs (rate-limited, at warn) the refusals one request of client `client`
    /// caused, given the counters `(limit refusals, auth failures)` from before it.
    fn warn_refusals(&mut self, client: ClientId, before: (u64, u64), now: u64) {
        let limits = self.engine.counters().limit_refusals_total;
        if limits != before.0 {
            if let Some(left_out) = self.stats.refusal_log.limits.admit(now / US_PER_MS) {
                let peer = Peer::of(&self.engine, client);
                match self.engine.last_refusal() {
                    Refusal::Pending => warn!(
                        "{peer}: lock request refused, {} holds and waits on this \
                         connection (--max-pending){left_out}",
                        self.cfg.max_pending
                    ),
                    Refusal::Claims => warn!(
                        "{peer}: lock request refused, {} holds and waits on the server \
                         (--max-claims){left_out}",
                        self.cfg.max_claims
                    ),
                    Refusal::Detached => warn!(
                        "{peer}: lock request refused, detached holds at their limit \
                         ({} holds or {} bytes of values){left_out}",
                        crate::engine::MAX_DETACHED,
                        crate::engine::MAX_ATTACHMENT_BYTES
                    ),
                }
            }
        }
        if self.stats.auth_failures_total != before.1 {
            if let Some(left_out) = self.stats.refusal_log.auth.admit(now / US_PER_MS) {
                warn!(
                    "{}: wrong AUTH secret, closing{left_out}",
                    Peer::of(&self.engine, client)
                );
            }
        }
    }

    /// Hands every queued engine event to its connection's codec.
    pub(super) fn route_events(&mut self) {
        self.engine.take_events(&mut self.events);
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            let Some(&Some(k)) = self.ids.get(event.client as usize) else {
                continue; // a closed connection's: nobody to tell
            };
            if let Some(conn) = self.conns.get_mut(k) {
                if conn.phase != Phase::Closed {
                    conn.codec.encode_event(&event, &self.engine, &mut conn.out);
                    self.mark_dirty(k);
                }
            }
        }
        self.events = events;
    }

    /// Puts a connection on the `resume` list, unless it is on it already.
    pub(super) fn push_resume(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k) {
            if !conn.resuming {
                conn.resuming = true;
                self.resume.push(k);
            }
        }
    }

    pub(super) fn mark_dirty(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(k);
            }
        }
    }
}
