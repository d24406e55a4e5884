//! Hierarchical timer wheel (skeleton: being implemented).

/// Handle to a scheduled timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u32);

/// Hierarchical timer wheel with 1 ms resolution.
pub struct Wheel<T> {
    _p: std::marker::PhantomData<T>,
}

impl<T> Wheel<T> {
    /// A wheel whose clock starts at `now` (ms).
    pub fn new(now: u64) -> Self {
        let _ = now;
        todo!()
    }
    /// Time the wheel has advanced to.
    pub fn now(&self) -> u64 {
        todo!()
    }
    /// Schedules `value` to fire at `deadline` (absolute ms).
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerId {
        let _ = (deadline, value);
        todo!()
    }
    /// Removes a scheduled timer and returns its value.
    pub fn cancel(&mut self, id: TimerId) -> T {
        let _ = id;
        todo!()
    }
    /// The deadline of a scheduled timer.
    pub fn deadline(&self, id: TimerId) -> u64 {
        let _ = id;
        todo!()
    }
    /// A lower bound on the earliest deadline, for the poll timeout.
    pub fn next_wake(&self) -> Option<u64> {
        todo!()
    }
    /// Fires every timer with deadline <= now, appending (deadline, value).
    pub fn advance(&mut self, now: u64, fired: &mut Vec<(u64, T)>) {
        let _ = (now, fired);
        todo!()
    }
    /// Number of scheduled timers.
    pub fn len(&self) -> usize {
        todo!()
    }
    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
