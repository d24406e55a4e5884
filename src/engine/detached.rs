//! Detached holds: holds that belong to no connection once granted (the Redis
//! dialect's keys), with an attachment of opaque bytes each; made, viewed, counted,
//! re-attached and extended by token here, their attachments dropped with their claims.
//!
//! # Invariants
//! - A claim has an entry in `attachments` iff it was made by `acquire_detached`;
//!   `attachment_bytes` is the sum of their value lengths, at most
//!   [`MAX_ATTACHMENT_BYTES`], and there are at most [`MAX_DETACHED`] entries.
//! - A dropped attachment's buffer is kept for reuse (at most [`SPARE_VALUES`] of them,
//!   none over [`SPARE_VALUE_CAPACITY`]), so the steady cycle allocates nothing.

use super::*;

/// What a detached hold carries besides its claim.
#[derive(Debug)]
pub(super) struct Attachment {
    /// The group of the connection that made it.
    origin: u8,
    /// Opaque bytes set by the codec that made it (the Redis dialect's value).
    value: Vec<u8>,
}

/// One detached hold as codecs see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetachedHold<'a> {
    /// Its fencing token (its identity).
    pub token: u64,
    /// The group of the connection that made it (see [`Engine::connect_in`]).
    pub origin: u8,
    /// When it ends (engine ticks), or `None` for never.
    pub deadline: Option<u64>,
    /// Its attachment.
    pub value: &'a [u8],
}

/// Why a detached hold's attachment could not be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// No detached hold with that token on that name.
    NotHeld,
    /// Over [`MAX_ATTACHMENT`] or [`MAX_ATTACHMENT_BYTES`].
    Limit,
}

impl Engine {
    /// Asks for a lock whose hold, once granted, is **detached**: it leaves `client`
    /// and lives on its own until its `hold` deadline (`None`: forever), or until
    /// [`Engine::release`] / [`Engine::extend`] with its token from any client. It
    /// carries `value` (at most [`MAX_ATTACHMENT`] bytes), which
    /// [`Engine::detached_on`] shows and [`Engine::attach`] replaces. A wait before the
    /// grant is `client`'s like any other (its disconnect cancels it); the grant event
    /// goes to `client` too, but an expiry sends none.
    ///
    /// [`Acquired::Limit`] also when [`MAX_DETACHED`] or [`MAX_ATTACHMENT_BYTES`] would
    /// be passed.
    pub fn acquire_detached(
        &mut self,
        client: ClientId,
        tag: &[u8],
        req: &AcquireRequest,
        value: &[u8],
        now: u64,
    ) -> Acquired {
        if self.attachments.len() >= MAX_DETACHED
            || value.len() > MAX_ATTACHMENT
            || self.attachment_bytes + value.len() > MAX_ATTACHMENT_BYTES
        {
            self.refuse(Refusal::Detached);
            return Acquired::Limit;
        }
        self.acquire_as(client, tag, req, Some(value), now)
    }

    /// The first detached hold on `name` (the only one, when exclusive), if any.
    pub fn detached_on(&self, name: &[u8]) -> Option<DetachedHold<'_>> {
        let claim = self.table.first_detached_on(name)?;
        Some(self.detached_view(claim))
    }

    /// `name`'s lock (as [`Engine::inspect`] without the holder) and its first detached
    /// hold (as [`Engine::detached_on`]), from one table lookup; `None` when nothing
    /// holds or waits for `name`.
    pub fn inspect_detached(&self, name: &[u8]) -> Option<(LockInfo, Option<DetachedHold<'_>>)> {
        let (info, first) = self.table.inspect_detached(name)?;
        Some((info, first.map(|c| self.detached_view(c))))
    }

    /// Releases the detached hold on `name` with `token`, as [`Engine::release`] with
    /// that token does from a client that holds nothing there, with one table lookup.
    pub fn release_detached(&mut self, name: &[u8], token: u64, now: u64) -> Result<(), FindError> {
        let claim = self
            .table
            .find_detached(name, token)
            .ok_or(FindError::NotHeld)?;
        self.remove(claim, now);
        Ok(())
    }

    /// Releases the first detached hold on `name` when `release` says so, given the lock
    /// and that hold as [`Engine::inspect_detached`] shows them: a compare-and-delete
    /// from one table lookup. True when it released.
    pub fn release_detached_if(
        &mut self,
        name: &[u8],
        now: u64,
        release: impl FnOnce(&LockInfo, &DetachedHold<'_>) -> bool,
    ) -> bool {
        let Some((info, Some(claim))) = self.table.inspect_detached(name) else {
            return false;
        };
        if !release(&info, &self.detached_view(claim)) {
            return false;
        }
        self.remove(claim, now);
        true
    }

    fn detached_view(&self, claim: ClaimId) -> DetachedHold<'_> {
        let c = self.table.claim(claim);
        let a = self.attachments.get(&claim);
        DetachedHold {
            token: c.token().unwrap_or(0),
            origin: a.map_or(0, |a| a.origin),
            deadline: c.data.timer.map(|t| self.wheel.deadline(t)),
            value: a.map_or(&[][..], |a| &a.value),
        }
    }

    /// Number of detached holds on `name`.
    pub fn detached_count_on(&self, name: &[u8]) -> u32 {
        self.table
            .holds_on(name)
            .filter(|&c| self.table.claim(c).owner() == DETACHED)
            .count() as u32
    }

    /// Number of detached holds in the whole table.
    pub fn detached_count(&self) -> usize {
        self.table.detached_count()
    }

    /// Replaces the attachment of the detached hold on `name` with `token`.
    pub fn attach(&mut self, name: &[u8], token: u64, value: &[u8]) -> Result<(), AttachError> {
        let claim = self
            .table
            .find_detached(name, token)
            .ok_or(AttachError::NotHeld)?;
        let a = self
            .attachments
            .get_mut(&claim)
            .ok_or(AttachError::NotHeld)?;
        let bytes = self.attachment_bytes - a.value.len() + value.len();
        if value.len() > MAX_ATTACHMENT || bytes > MAX_ATTACHMENT_BYTES {
            return Err(AttachError::Limit);
        }
        a.value.clear();
        a.value.extend_from_slice(value);
        self.attachment_bytes = bytes;
        Ok(())
    }

    /// Sets the deadline of the detached hold on `name` with `token` to `now + hold`
    /// (`None`: it no longer ends by itself).
    pub fn extend_detached(
        &mut self,
        name: &[u8],
        token: u64,
        hold: Option<u32>,
        now: u64,
    ) -> Result<(), FindError> {
        let claim = self
            .table
            .find_detached(name, token)
            .ok_or(FindError::NotHeld)?;
        self.set_hold(claim, hold, now);
        Ok(())
    }

    /// Records the attachment of a new detached claim.
    pub(super) fn attach_new(&mut self, client: ClientId, claim: ClaimId, value: &[u8]) {
        let origin = self.client(client).map_or(0, |c| c.group);
        let mut buf = self.spare_values.pop().unwrap_or_default();
        buf.extend_from_slice(value);
        self.attachment_bytes += value.len();
        self.attachments
            .insert(claim, Attachment { origin, value: buf });
    }

    /// Drops the attachment of removed claim `claim`, if it had one. Only claims made by
    /// `acquire_detached` have attachments (the claim carries no flag of its own: it
    /// would grow past its size budget).
    pub(super) fn forget_attachment(&mut self, claim: ClaimId) {
        if let Some(a) = self.attachments.remove(&claim) {
            self.attachment_bytes -= a.value.len();
            let mut buf = a.value;
            if self.spare_values.len() < SPARE_VALUES && buf.capacity() <= SPARE_VALUE_CAPACITY {
                buf.clear();
                self.spare_values.push(buf);
            }
        }
    }

    /// Forgets closing clients' waits the table dropped from queues: cancels their
    /// timers, keeps their tags' buffers and drops their attachments (a detached
    /// request of a closing client).
    pub(super) fn forget_dropped(&mut self) {
        self.table.take_dropped(&mut self.dropped);
        let mut dropped = std::mem::take(&mut self.dropped);
        for (claim, p) in dropped.drain(..) {
            if let Some(t) = p.timer {
                self.wheel.cancel(t);
            }
            recycle_tag(&mut self.spare_tags, p.tag);
            if !self.attachments.is_empty() {
                self.forget_attachment(claim);
            }
        }
        self.dropped = dropped;
    }
}
