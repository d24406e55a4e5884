//! The lockd / glockd protocol (`shared/spec/compat.md`). Skeleton: being implemented.

use super::{Ctx, Progress};
use crate::config::Config;
use crate::engine::{Engine, Event};

/// Per-connection state.
#[derive(Debug)]
pub struct Session {}

/// lockd's server-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {}

impl Session {
    /// A session for a new connection.
    pub fn new(_cfg: &Config) -> Self {
        Session {}
    }

    /// Decodes and handles at most one request.
    pub fn decode(&mut self, input: &[u8], _cx: &mut Ctx) -> Progress {
        Progress::Close(input.len())
    }

    /// Writes an engine event.
    pub fn encode_event(&mut self, _event: &Event, _engine: &Engine, _out: &mut Vec<u8>) {}

    /// The connection is closing.
    pub fn on_close(&mut self, _cx: &mut Ctx) {}
}
