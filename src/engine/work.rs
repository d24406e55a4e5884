//! Deferred work and closing clients: grants cut short by the table's grant batch,
//! then the claims of closing clients, a budget of steps at a time, so that no single
//! release or close stalls the loop; and the bookkeeping of every grant (its event,
//! histogram observation, detaching and hold timer).

use super::*;

impl Engine {
    /// Starts forgetting a connection: from now on it gets no events and its waits are
    /// never granted; [`Engine::work`] removes its claims (releasing holds grants the
    /// next waiters) and then frees its id ([`Engine::take_freed`]). False when `id`
    /// is not a connected client.
    pub fn begin_disconnect(&mut self, id: ClientId) -> bool {
        match self.clients.get_mut(id as usize) {
            Some(Some(c)) if !c.closing => {
                c.closing = true;
                self.connections -= 1;
                self.table.close_owner(id);
                self.closing.push_back(id);
                true
            }
            _ => false,
        }
    }

    /// Removes one claim of closing client `id` (a wait first, then a hold); false
    /// when it has none left.
    pub(super) fn reclaim_one(&mut self, id: ClientId, now: u64) -> bool {
        if let Some(claim) = self.table.first_wait(id) {
            self.remove(claim, now);
        } else if let Some(claim) = self.table.first_hold(id) {
            self.remove(claim, now);
            self.counters.released_on_disconnect_total += 1;
        } else {
            return false;
        }
        true
    }

    /// Does up to `budget` steps of deferred work: grants cut short by
    /// [`crate::table::GRANT_BATCH`] (FIFO, from each queue's head), then the claims of
    /// closing clients, one step each. Returns the steps taken.
    pub fn work(&mut self, now: u64, budget: u32) -> u32 {
        let mut granted = std::mem::take(&mut self.granted);
        let mut used = self.table.continue_grants(budget, &mut granted);
        self.process_grants(&mut granted, now);
        self.granted = granted;
        self.forget_dropped();
        while used < budget {
            let Some(&id) = self.closing.front() else {
                break;
            };
            if self.reclaim_one(id, now) {
                used += 1;
                continue;
            }
            self.closing.pop_front();
            self.clients[id as usize] = None;
            self.freed.push(id);
        }
        used
    }

    /// True when [`Engine::work`] has something to do.
    pub fn has_work(&self) -> bool {
        !self.closing.is_empty() || self.table.has_backlog()
    }

    /// Moves the ids of closing clients that are now gone into `into`: free for reuse.
    pub fn take_freed(&mut self, into: &mut Vec<ClientId>) {
        into.append(&mut self.freed);
    }

    /// Removes the waits listed in `scratch` (one client's, in request order), latest
    /// first, and returns how many.
    ///
    /// Latest first matters when the client waits twice on one lock: removing a waiter
    /// can only grant requests queued *behind* it, and none of those is one of the
    /// client's earlier waits, so no wait being cancelled is ever granted on the way.
    pub(super) fn withdraw_scratch(&mut self, now: u64) -> u32 {
        let n = self.scratch.len() as u32;
        while let Some(claim) = self.scratch.pop() {
            debug_assert_eq!(
                self.table.claim(claim).state(),
                State::Waiting,
                "cancelling a granted claim {claim}"
            );
            self.remove(claim, now);
        }
        n
    }

    /// Removes a claim, cancelling its timer, and processes the grants it causes.
    pub(super) fn remove(&mut self, claim: impl Into<Found>, now: u64) {
        let found = claim.into();
        let claim = found.claim();
        let c = self.table.claim_mut(claim);
        let (owner, token) = (c.owner(), c.token());
        if let Some(t) = c.data.timer.take() {
            self.wheel.cancel(t);
            if token.is_none() {
                self.count_timed(owner, false);
            }
        }
        let now_ms = now / self.ticks_per_ms;
        if token.is_some() {
            let since = self.table.claim(claim).data.since;
            self.hold_duration.observe(elapsed(since, now_ms));
        }
        let removed = self.table.remove_found(found, &mut self.granted);
        recycle_tag(&mut self.spare_tags, removed.data.tag);
        // Each check below is a branch on the lock cycle's path (no call unless needed).
        if !self.attachments.is_empty() {
            self.forget_attachment(claim);
        }
        if !self.granted.is_empty() {
            let mut granted = std::mem::take(&mut self.granted);
            self.process_grants(&mut granted, now);
            self.granted = granted;
        }
        if self.table.has_dropped() {
            self.forget_dropped();
        }
    }

    /// Counts the grants in `granted`, queues their events, detaches the holds of
    /// detached requests and starts their hold timers.
    fn process_grants(&mut self, granted: &mut Vec<Grant>, now: u64) {
        for g in granted.drain(..) {
            self.counters.grants_total += 1;
            let c = self.table.claim_mut(g.claim);
            let owner = c.owner();
            if let Some(t) = c.data.timer.take() {
                self.wheel.cancel(t);
                self.count_timed(owner, false);
            }
            let now_ms = now / self.ticks_per_ms;
            let c = self.table.claim_mut(g.claim);
            self.grant_wait.observe(elapsed(c.data.since, now_ms));
            c.data.since = now_ms as u32;
            let shared = matches!(c.mode(), Mode::Shared { .. });
            let token = c.token().unwrap_or(0);
            let event = Event {
                client: owner,
                tag: Tag::from_slice(&c.data.tag),
                kind: EventKind::Granted {
                    token,
                    holders: g.holders,
                    shared,
                },
            };
            if !self.attachments.is_empty() && self.attachments.contains_key(&g.claim) {
                self.table.detach(g.claim);
            }
            self.events.push(event);
            self.start_hold_timer(g.claim, now);
        }
    }

    /// Starts the hold timer of a just-granted (or extended) claim, if it has a hold.
    pub(super) fn start_hold_timer(&mut self, claim: ClaimId, now: u64) {
        let c = self.table.claim_mut(claim);
        debug_assert!(c.data.timer.is_none(), "claim {claim} already has a timer");
        if let Some(ms) = c.data.hold {
            let at = self.deadline(now, ms);
            let id = self.wheel.insert(at, (claim, Deadline::Hold));
            self.table.claim_mut(claim).data.timer = Some(id);
        }
    }
}
