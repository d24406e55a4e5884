//! The frames of one request gathered into its typed [`Reply`]: what shape of reply
//! a request expects ([`Expect`]) and the [`Assembler`] that decodes its lines.

use super::frame::{parse_u64, protocol};
use super::{
    words, ClientInfo, Frame, Grant, LockInfo, LockKind, LockSummary, Mode, Reply, Request, Stats,
    WhoAmI,
};
use crate::error::{Error, Result};

/// The shape of reply a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `OK <token>` or, shared, `OK <token> <holders>`; or `TIMEOUT` / `CANCELLED`.
    Acquire {
        /// `SHARE`.
        shared: bool,
    },
    /// A bare `OK`.
    Ok,
    /// `OK <n>`.
    Cancel,
    /// `OK <released> <cancelled>`.
    Reset,
    /// `OK mode=...`.
    Inspect,
    /// `ITEM` rows, `END`.
    List,
    /// `OK <addr> <name>`.
    Whoami,
    /// `CLIENT` rows, `END`.
    Clients,
    /// `STAT` rows, `END`.
    Stats,
    /// `PONG`.
    Pong,
}

impl Expect {
    /// What `req` gets.
    pub fn of(req: &Request) -> Expect {
        match req {
            Request::Acquire(a) => Expect::Acquire {
                shared: matches!(a.kind, LockKind::Shared { .. }),
            },
            Request::Unlock { .. }
            | Request::Extend { .. }
            | Request::Name { .. }
            | Request::Quit
            | Request::Auth { .. } => Expect::Ok,
            Request::Cancel { .. } => Expect::Cancel,
            Request::Reset => Expect::Reset,
            Request::Inspect { .. } => Expect::Inspect,
            Request::List { .. } => Expect::List,
            Request::Whoami => Expect::Whoami,
            Request::Clients => Expect::Clients,
            Request::Stats => Expect::Stats,
            Request::Ping => Expect::Pong,
        }
    }

    /// True when the reply is rows then `END`.
    pub fn multi_line(self) -> bool {
        matches!(self, Expect::List | Expect::Clients | Expect::Stats)
    }
}

/// Collects the lines of one request's reply into a [`Reply`].
#[derive(Debug)]
pub struct Assembler {
    expect: Expect,
    list: Vec<LockSummary>,
    clients: Vec<ClientInfo>,
    stats: Vec<(String, String)>,
    rows: u64,
}

/// Splits `key=value`, checking the key.
fn field<'a>(tok: Option<&'a str>, key: &str, line: &str) -> Result<&'a str> {
    tok.and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('='))
        .ok_or_else(|| protocol(&format!("expected {key}=..."), line))
}

impl Assembler {
    /// An assembler for the reply to `req`.
    pub fn new(req: &Request) -> Assembler {
        Assembler::for_expect(Expect::of(req))
    }

    /// An assembler for a reply of shape `expect`.
    pub fn for_expect(expect: Expect) -> Assembler {
        Assembler {
            expect,
            list: Vec::new(),
            clients: Vec::new(),
            stats: Vec::new(),
            rows: 0,
        }
    }

    /// The expected shape.
    pub fn expect(&self) -> Expect {
        self.expect
    }

    /// Takes the next line of the reply: `Some(result)` when it was the last one.
    /// `EXPIRED` is not part of a reply (it comes after a grant): route it before.
    pub fn push(&mut self, frame: Frame<'_>) -> Option<Result<Reply>> {
        match self.push_inner(frame) {
            Ok(None) => None,
            Ok(Some(r)) => Some(Ok(r)),
            Err(e) => Some(Err(e)),
        }
    }

    fn push_inner(&mut self, frame: Frame<'_>) -> Result<Option<Reply>> {
        let e = self.expect;
        let unexpected = |what: &str| Err(Error::Protocol(format!("unexpected {what} for {e:?}")));
        match frame {
            Frame::Err { code, text } => Err(Error::from_code(code, text)),
            Frame::Timeout if matches!(e, Expect::Acquire { .. }) => Err(Error::Timeout),
            Frame::Cancelled if matches!(e, Expect::Acquire { .. }) => Err(Error::Cancelled),
            Frame::Pong if e == Expect::Pong => Ok(Some(Reply::Pong)),
            Frame::Ok(fields) => self.ok(fields).map(Some),
            Frame::Row { kind, rest } => {
                self.row(kind, rest)?;
                Ok(None)
            }
            Frame::End(n) if e.multi_line() => {
                if n != self.rows {
                    return Err(Error::Protocol(format!("END {n} after {} rows", self.rows)));
                }
                Ok(Some(match e {
                    Expect::List => Reply::List(std::mem::take(&mut self.list)),
                    Expect::Clients => Reply::Clients(std::mem::take(&mut self.clients)),
                    _ => Reply::Stats(Stats {
                        rows: std::mem::take(&mut self.stats),
                    }),
                }))
            }
            Frame::Timeout => unexpected("TIMEOUT"),
            Frame::Cancelled => unexpected("CANCELLED"),
            Frame::Pong => unexpected("PONG"),
            Frame::End(_) => unexpected("END"),
            Frame::Expired(_) => unexpected("EXPIRED"),
        }
    }

    fn ok(&mut self, fields: &str) -> Result<Reply> {
        let line = fields;
        let mut w = words(fields);
        let reply = match self.expect {
            Expect::Acquire { shared } => {
                let token = parse_u64(w.next().unwrap_or(""), line)?;
                let holders = if shared {
                    Some(parse_u64(w.next().unwrap_or(""), line)?)
                } else {
                    None
                };
                Reply::Granted(Grant { token, holders })
            }
            Expect::Ok => Reply::Ok,
            Expect::Cancel => Reply::Cancelled(parse_u64(w.next().unwrap_or(""), line)?),
            Expect::Reset => {
                let released = parse_u64(w.next().unwrap_or(""), line)?;
                let cancelled = parse_u64(w.next().unwrap_or(""), line)?;
                Reply::Reset {
                    released,
                    cancelled,
                }
            }
            Expect::Inspect => {
                let mode = Mode::parse(field(w.next(), "mode", line)?, line)?;
                let holders = parse_u64(field(w.next(), "holders", line)?, line)?;
                let waiters = parse_u64(field(w.next(), "waiters", line)?, line)?;
                let (token, owner) = match w.next() {
                    None => (None, None),
                    t => (
                        Some(parse_u64(field(t, "token", line)?, line)?),
                        Some(field(w.next(), "owner", line)?.to_string()),
                    ),
                };
                Reply::Inspect(LockInfo {
                    mode,
                    holders,
                    waiters,
                    token,
                    owner,
                })
            }
            Expect::Whoami => {
                let addr = w.next().ok_or_else(|| protocol("WHOAMI", line))?;
                let name = w.next().ok_or_else(|| protocol("WHOAMI", line))?;
                Reply::Whoami(WhoAmI {
                    addr: addr.to_string(),
                    name: name.to_string(),
                })
            }
            Expect::Pong | Expect::List | Expect::Clients | Expect::Stats => {
                return Err(protocol("unexpected OK", line))
            }
        };
        if w.next().is_some() {
            return Err(protocol("extra fields", line));
        }
        Ok(reply)
    }

    fn row(&mut self, kind: &str, rest: &str) -> Result<()> {
        let line = rest;
        let mut w = rest.split(' ');
        match (self.expect, kind) {
            (Expect::List, "ITEM") => {
                let name = w.next().ok_or_else(|| protocol("ITEM", line))?;
                let mode = Mode::parse(field(w.next(), "mode", line)?, line)?;
                let holders = parse_u64(field(w.next(), "holders", line)?, line)?;
                let waiters = parse_u64(field(w.next(), "waiters", line)?, line)?;
                self.list.push(LockSummary {
                    name: name.to_string(),
                    mode,
                    holders,
                    waiters,
                });
            }
            (Expect::Clients, "CLIENT") => {
                let addr = w.next().ok_or_else(|| protocol("CLIENT", line))?;
                let name = field(w.next(), "name", line)?;
                let holds = parse_u64(field(w.next(), "holds", line)?, line)?;
                let waits = parse_u64(field(w.next(), "waits", line)?, line)?;
                self.clients.push(ClientInfo {
                    addr: addr.to_string(),
                    name: name.to_string(),
                    holds,
                    waits,
                });
            }
            (Expect::Stats, "STAT") => {
                let key = w.next().ok_or_else(|| protocol("STAT", line))?;
                let value = w.next().ok_or_else(|| protocol("STAT", line))?;
                self.stats.push((key.to_string(), value.to_string()));
            }
            _ => {
                return Err(Error::Protocol(format!(
                    "unexpected {kind} row for {:?}",
                    self.expect
                )))
            }
        }
        if w.next().is_some() {
            return Err(protocol("extra fields in row", line));
        }
        self.rows += 1;
        Ok(())
    }
}
