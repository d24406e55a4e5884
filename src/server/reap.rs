//! Reaping: the connections closed in this iteration handed to the engine to forget
//! (then lingering or freed), and freeing a connection's slot, timer and registration.

use super::*;

impl Server {
    /// Marks a connection for reaping at the end of this iteration.
    pub(super) fn close(&mut self, k: usize) {
        if let Some(conn) = self.conns.get_mut(k) {
            if conn.phase != Phase::Closed {
                conn.phase = Phase::Closed;
                self.closing.push(k);
            }
        }
    }

    /// Handles closed connections: a live one is handed to the engine to forget (its
    /// waits are never granted from now on; its claims are removed by the engine's
    /// deferred work, most often in this same iteration) and then lingers or is freed;
    /// a lingering one is freed.
    pub(super) fn reap(&mut self, now: u64) {
        if self.closing.is_empty() {
            return;
        }
        let mut closing = std::mem::take(&mut self.closing);
        for k in closing.drain(..) {
            let Some(conn) = self.conns.get_mut(k) else {
                continue;
            };
            if conn.ended {
                self.free(k);
                continue;
            }
            conn.ended = true;
            let mut cx = ctx!(self, conn, now);
            conn.codec.on_close(&mut cx);
            let peer = log::log_enabled!(log::Level::Debug)
                .then(|| Peer::of(&self.engine, conn.client).to_string());
            self.engine.begin_disconnect(conn.client);
            self.ids[conn.client as usize] = None;
            self.stats.open_connections[conn.protocol as usize] -= 1;
            if let Some(peer) = peer {
                let (holds, waits) = self.engine.pending(conn.client);
                debug!(
                    "close {} {peer}: releasing {holds} holds, dropping {waits} waits",
                    conn.protocol.as_str()
                );
            }
            conn.out = Vec::new();
            conn.partial = Vec::new();
            if conn.linger && conn.stream.shutdown(std::net::Shutdown::Write).is_ok() {
                conn.phase = Phase::Lingering;
                self.set_timer(k, now + LINGER_MS * US_PER_MS, ConnTimer::Linger);
                // Input may be waiting already (no new readiness event would say so).
                self.linger_read(k);
            } else {
                self.free(k);
            }
        }
        // Lingering connections closed just now are freed next iteration.
        let later = std::mem::replace(&mut self.closing, closing);
        self.closing.extend(later);
        self.route_events();
    }

    /// Drops a reaped connection's socket and slot.
    pub(super) fn free(&mut self, k: usize) {
        let mut conn = self.conns.remove(k);
        if let Some(t) = conn.timer.take() {
            self.timers.cancel(t);
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
    }
}
