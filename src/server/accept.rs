//! Accepting connections: from each listener until `WouldBlock`, refusing politely
//! past `--max-connections`, and backing off for [`ACCEPT_BACKOFF_MS`] when `accept`
//! itself fails (out of descriptors or memory).

use super::*;

impl Server {
    /// Accepts from listener `i` until WouldBlock.
    pub(super) fn accept(&mut self, i: usize, now: u64) {
        loop {
            let (mut stream, addr) = match self.listeners[i].socket.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // That one connection died before we took it: take the next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of descriptors or memory: stop accepting for a while, keep serving.
                    warn!("accept failed: {e}; retrying in {ACCEPT_BACKOFF_MS} ms");
                    self.accept_after = Some(now + ACCEPT_BACKOFF_MS * US_PER_MS);
                    return;
                }
            };
            let addr = canonical(addr);
            let protocol = self.listeners[i].protocol;
            if self.conns.len() >= self.cfg.max_connections {
                // Refuse politely and move on; the socket closes when dropped.
                self.stats.refused_connections_total += 1;
                if let Some(left_out) = self.stats.refusal_log.connections.admit(now / US_PER_MS) {
                    warn!(
                        "refused {} connection from {addr}: {} connections open \
                         (--max-connections){left_out}",
                        protocol.as_str(),
                        self.conns.len()
                    );
                }
                if let Some(refusal) = protocol.refusal() {
                    let _ = stream.write(refusal);
                }
                continue;
            }
            let _ = stream.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let k = entry.key();
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut stream, Token(k), Interest::READABLE)
            {
                warn!("cannot register connection from {addr}: {e}");
                continue;
            }
            debug!("open {} connection from {addr}", protocol.as_str());
            self.stats.open_connections[protocol as usize] += 1;
            self.stats.connections_total[protocol as usize] += 1;
            let client = self.ids.insert(Some(k)) as ClientId;
            let codec = Codec::new(protocol, &self.cfg);
            let awaiting_auth = codec.awaiting_auth();
            entry.insert(Conn {
                stream,
                addr,
                client,
                protocol,
                codec,
                partial: Vec::new(),
                out: Vec::new(),
                phase: Phase::Open,
                dirty: false,
                writable: false,
                paused: false,
                resuming: false,
                linger: false,
                ended: false,
                lingered: 0,
                timer: None,
            });
            self.engine.connect_in(client, addr, protocol as u8);
            if awaiting_auth {
                let at = now + self.cfg.auth_timeout_ms * US_PER_MS;
                self.set_timer(k, at, ConnTimer::AuthDeadline);
            }
        }
    }

    /// Accepts again once an accept backoff has passed.
    pub(super) fn retry_accept(&mut self, now: u64) {
        if self.accept_after.is_some_and(|t| now >= t) {
            self.accept_after = None;
            for i in 0..self.listeners.len() {
                self.accept(i, now);
            }
        }
    }
}

/// IPv4 peers of an IPv6 listener are shown as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}
