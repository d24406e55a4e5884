//! One connection: its [`Session`] behind a lock, the reader and writer tasks that
//! move its bytes, the `AUTH`/`NAME`/`PING` handshake, and [`ReplyFuture`], the wait
//! for one request's reply.

use super::options::ConnectOptions;
use crate::error::{Error, Result};
use crate::proto::{Reply, Request};
use crate::session::Session;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Bytes read from the socket at a time.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// One connection: its session, the writer's wake-up, and whether it lives.
pub(crate) struct Conn {
    session: Mutex<Session>,
    write: Notify,
    alive: AtomicBool,
    /// Set when the client is gone: the writer flushes and shuts the socket down.
    shutdown: AtomicBool,
}

impl Conn {
    pub(super) fn new() -> Conn {
        Conn {
            session: Mutex::new(Session::new()),
            write: Notify::new(),
            alive: AtomicBool::new(true),
            shutdown: AtomicBool::new(false),
        }
    }

    pub(crate) fn session(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock cannot leave the session half-updated in a way
        // that matters more than losing the connection; keep going.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection that never was: the first request of a lazy client replaces it.
    pub(super) fn unconnected() -> Conn {
        let c = Conn::new();
        c.alive.store(false, Ordering::Release);
        c.session().close(&mut Vec::new());
        c
    }

    pub(super) fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Queues a request and wakes the writer. Only the request that finds the queue
    /// empty wakes it: whoever queued the bytes already there woke it after queueing
    /// them, and the writer takes everything queued when it runs.
    fn submit(&self, req: Request) -> Result<u64> {
        let (id, first) = {
            let mut s = self.session();
            let first = s.out_is_empty();
            (s.submit(req)?, first)
        };
        if first {
            self.write.notify_one();
        }
        Ok(id)
    }

    /// Sends `req` and waits for its reply.
    pub(crate) async fn call(&self, req: Request) -> Result<Reply> {
        ReplyFuture::send(self, req).await
    }

    /// Runs a session operation that may queue bytes, then wakes the writer.
    pub(crate) fn with_session(&self, f: impl FnOnce(&mut Session)) {
        f(&mut self.session());
        self.write.notify_one();
    }

    /// The connection is gone: fail everything pending, lose every hold.
    fn fail(&self) {
        self.alive.store(false, Ordering::Release);
        let mut wake = Vec::new();
        self.session().close(&mut wake);
        self.write.notify_one();
        wake.into_iter().for_each(Waker::wake);
    }

    pub(super) fn shut_down(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.write.notify_one();
    }
}

pub(super) async fn writer(conn: Arc<Conn>, mut w: OwnedWriteHalf) {
    let mut buf = Vec::new();
    loop {
        let (had, closed) = {
            let mut s = conn.session();
            (s.take_out(&mut buf), s.is_closed())
        };
        if closed {
            break;
        }
        if !had {
            if conn.shutdown.load(Ordering::Acquire) {
                break;
            }
            conn.write.notified().await;
            continue;
        }
        if w.write_all(&buf).await.is_err() {
            conn.fail();
            break;
        }
        buf.clear();
    }
    // Dropping the write half shuts the socket's write side down: the server answers
    // what it got, then closes, and the reader sees the end.
    let _ = w.shutdown().await;
}

pub(super) async fn reader(conn: Arc<Conn>, mut r: OwnedReadHalf) {
    let mut lines = crate::proto::LineBuffer::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut wake = Vec::new();
    'read: loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lines.extend(&chunk[..n]);
        let (broken, queued) = {
            let mut s = conn.session();
            let broken = match lines.complete_lines() {
                Ok(block) => s.on_lines(block, &mut wake).is_err(),
                Err(_) => true,
            };
            (broken, !s.out_is_empty())
        };
        // The woken tasks run first and queue their next requests; the writer, woken
        // after them, sends them all in one write.
        wake.drain(..).for_each(Waker::wake);
        // Replies may have queued requests (an UNLOCK of a grant nobody took).
        if queued {
            conn.write.notify_one();
        }
        if broken {
            break 'read;
        }
    }
    conn.fail();
}

/// Connects once: TCP (with TCP_NODELAY), tasks, then `AUTH`, `NAME` and `PING`
/// pipelined, all within the connect timeout.
pub(super) async fn connect_once(addr: &str, opts: &ConnectOptions) -> Result<Arc<Conn>> {
    let timeout = opts.connect_timeout;
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(Error::ConnectTimeout(addr.to_string())),
        Ok(r) => r?,
    };
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    let conn = Arc::new(Conn::new());
    tokio::spawn(reader(conn.clone(), r));
    tokio::spawn(writer(conn.clone(), w));
    let handshake = async {
        let mut ids = Vec::new();
        if let Some(secret) = &opts.auth {
            ids.push(conn.submit(Request::Auth {
                secret: secret.clone(),
            })?);
        }
        if let Some(name) = &opts.name {
            ids.push(conn.submit(Request::Name { name: name.clone() })?);
        }
        ids.push(conn.submit(Request::Ping)?);
        for id in ids {
            ReplyFuture::sent(&conn, id).await?;
        }
        Ok::<_, Error>(())
    };
    let result = match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err(Error::ConnectTimeout(addr.to_string())),
        Ok(r) => r,
    };
    match result {
        Ok(()) => Ok(conn),
        Err(e) => {
            conn.shut_down();
            conn.fail();
            Err(e)
        }
    }
}

/// Sends one request (on its first poll) and waits for its reply; dropping it after
/// the request was queued abandons the request.
///
/// Queueing on the first poll takes the session lock once for what would otherwise be
/// a submit and a first poll (queue the line, register the waker), and lets a guard's
/// release forget its entry in the same step.
pub(crate) struct ReplyFuture<'a> {
    conn: &'a Conn,
    call: Call,
    /// For an acquire whose caller keeps the name: set with the grant.
    pub(super) name: Option<String>,
    take_name: bool,
}

pub(super) enum Call {
    /// Not queued yet. `forget`: an entry to drop when it is (a released hold's).
    Unsent { req: Request, forget: Option<u64> },
    /// Queued with this id; the reply is not taken yet.
    Sent(u64),
    /// The reply was taken (or queueing failed).
    Done(Option<u64>),
}

impl<'a> ReplyFuture<'a> {
    /// A request to queue when first polled.
    pub(super) fn send(conn: &'a Conn, req: Request) -> Self {
        ReplyFuture {
            conn,
            call: Call::Unsent { req, forget: None },
            name: None,
            take_name: false,
        }
    }

    /// The reply to a request already queued as `id`.
    fn sent(conn: &'a Conn, id: u64) -> Self {
        ReplyFuture {
            conn,
            call: Call::Sent(id),
            name: None,
            take_name: false,
        }
    }

    /// Also forgets session entry `id` when the request is queued.
    pub(super) fn forgetting(mut self, id: u64) -> Self {
        if let Call::Unsent { forget, .. } = &mut self.call {
            *forget = Some(id);
        }
        self
    }

    /// For an acquire: with the grant, move the lock name out of the session entry
    /// (see [`ReplyFuture::take_name`]).
    pub(super) fn taking_name(mut self) -> Self {
        self.take_name = true;
        self
    }

    /// The request id, once queued.
    pub(super) fn id(&self) -> Option<u64> {
        match self.call {
            Call::Unsent { .. } => None,
            Call::Sent(id) => Some(id),
            Call::Done(id) => id,
        }
    }

    /// The lock name handed over with a grant (with [`ReplyFuture::taking_name`]).
    pub(super) fn take_name(&mut self) -> Option<String> {
        self.name.take()
    }
}

impl Future for ReplyFuture<'_> {
    type Output = Result<Reply>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Reply>> {
        let this = &mut *self;
        let mut s = this.conn.session();
        let id = match std::mem::replace(&mut this.call, Call::Done(None)) {
            Call::Unsent { req, forget } => {
                if let Some(f) = forget {
                    s.forget(f);
                }
                // Only the request that finds the queue empty wakes the writer: whoever
                // queued the bytes already there woke it, and it takes everything.
                let first = s.out_is_empty();
                let id = match s.submit_waiting(req, cx.waker()) {
                    Ok(id) => id,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                drop(s);
                this.call = Call::Sent(id);
                if first {
                    this.conn.write.notify_one();
                }
                return Poll::Pending;
            }
            Call::Sent(id) => id,
            Call::Done(_) => {
                return Poll::Ready(Err(Error::Protocol(
                    "reply polled after it was taken".into(),
                )))
            }
        };
        let r = if this.take_name {
            s.poll_grant(id, cx, &mut this.name)
        } else {
            s.poll_reply(id, cx)
        };
        this.call = if r.is_ready() {
            Call::Done(Some(id))
        } else {
            Call::Sent(id)
        };
        r
    }
}

impl Drop for ReplyFuture<'_> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.call, Call::Done(None)) {
            Call::Sent(id) => self.conn.with_session(|s| s.abandon(id)),
            // Never queued; a release that never ran still releases (in the background).
            Call::Unsent {
                req,
                forget: Some(f),
            } => self.conn.with_session(|s| {
                s.forget(f);
                s.submit_detached(req);
            }),
            Call::Unsent { forget: None, .. } | Call::Done(_) => {}
        }
    }
}
