//! Read-only views of locks and claims for codecs' listings and lookups: who holds or
//! waits on a name, a client's holds and waits, lock slots. A closing client is left
//! out of every listing.

use super::*;

/// Who holds a lock exclusively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The hold's token.
    pub token: u64,
    /// The connection holding it.
    pub client: ClientId,
}

/// One claim as codecs see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimView<'a> {
    /// The lock name.
    pub name: &'a [u8],
    /// The request's tag.
    pub tag: &'a [u8],
    /// The fencing token, when held.
    pub token: Option<u64>,
    /// The request was shared.
    pub shared: bool,
}

impl Engine {
    /// The state of one lock (`None` when free).
    pub fn inspect(&self, name: &[u8]) -> Option<(LockInfo, Option<Holder>)> {
        let info = self.table.inspect(name)?;
        let holder = if info.exclusive {
            self.holds_on(name)
                .next()
                .map(|(token, client)| Holder { token, client })
        } else {
            None
        };
        Some((info, holder))
    }

    /// Every lock with holds or waiters, in no particular order.
    pub fn locks(&self) -> impl Iterator<Item = (&[u8], LockInfo)> + '_ {
        self.table.locks()
    }

    /// The holds of `name` (token, client), in grant order; a closing client's are left
    /// out.
    pub fn holds_on<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = (u64, ClientId)> + 'a {
        self.table.holds_on(name).filter_map(|c| {
            let claim = self.table.claim(c);
            let owner = claim.owner();
            self.listed(owner)
                .then(|| (claim.token().unwrap_or(0), owner))
        })
    }

    /// The waiters of `name` (client), in FIFO order; a closing client's are left out.
    pub fn waiters_on<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = ClientId> + 'a {
        self.table
            .waiters_on(name)
            .map(|c| self.table.claim(c).owner())
            .filter(|&owner| self.listed(owner))
    }

    /// True when listings show claims of `owner`: a connected client that is not
    /// closing, or [`DETACHED`]. A closing client's claims still count in a lock's
    /// holders and waiters (they block others until [`Engine::work`] removes them),
    /// but no listing names the connection.
    pub(super) fn listed(&self, owner: ClientId) -> bool {
        owner == DETACHED
            || self
                .clients
                .get(owner as usize)
                .and_then(Option::as_ref)
                .is_some_and(|c| !c.closing)
    }

    /// The holds of `client`, in grant order.
    pub fn holds_of(&self, client: ClientId) -> impl Iterator<Item = ClaimView<'_>> + '_ {
        self.table.holds_of(client).map(|c| self.view(c))
    }

    /// The waits of `client`, in request order.
    pub fn waits_of(&self, client: ClientId) -> impl Iterator<Item = ClaimView<'_>> + '_ {
        self.table.waits_of(client).map(|c| self.view(c))
    }

    fn view(&self, c: ClaimId) -> ClaimView<'_> {
        let claim = self.table.claim(c);
        ClaimView {
            name: self.table.claim_name(c),
            tag: &claim.data.tag,
            token: claim.token(),
            shared: matches!(claim.mode(), Mode::Shared { .. }),
        }
    }

    /// The hold deadlines (engine ticks; `None`: none) of every hold on `name`, in grant order.
    pub fn hold_deadlines<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = Option<u64>> + 'a {
        self.table.holds_on(name).map(|c| {
            self.table
                .claim(c)
                .data
                .timer
                .map(|t| self.wheel.deadline(t))
        })
    }

    /// One past the highest lock slot in use (see [`Engine::lock_at`]).
    pub fn lock_slots(&self) -> usize {
        self.table.lock_slots()
    }

    /// The name of the lock in slot `i`, if any. A lock keeps its slot as long as it
    /// lives, so a walk over the slots sees every lock that lives throughout it.
    pub fn lock_at(&self, i: usize) -> Option<&[u8]> {
        self.table.lock_at(i)
    }
}
