//! One poll loop: its share of the clients, their connections to every server and
//! their pipeline slots, driven by one `mio` poll and a timer heap.
//!
//! Owns the life of a cycle, whatever the protocol: start (pick a name, route it), grant,
//! hold, release, timeout, failure, and the drain at the end; and the loop's [`Tally`].
//! The wire formats are elsewhere: `native` writes and reads lockbox's line protocol,
//! `redis` writes and reads RESP, and `conn` sets connections up and moves their bytes.
//! The life of a cycle is in `cycle`, the slot states in `slot`, and the counts in
//! `tally`; this file owns the loop: setup, polling, timers, the drain.
//!
//! `--chaos` (lockbox only) lives in `chaos`: closing and reopening connections, CANCEL,
//! RESET, EXTEND, leases let run out, and the checks that go with them.
//!
//! # Invariants
//! - Slot `s` belongs to client `s / pipeline`; its connection to server `k` is
//!   `conns[client * servers + k]`.
//! - A slot has at most one main request in flight (`expect`) and, under `--chaos`, at
//!   most one `CANCEL` (`side`); lockbox request ids (`j + D*k` for slot `j`) map a reply
//!   to its slot without a table, and Redis replies come back in the order of the
//!   connection's `fifo`.
//! - `active` counts the slots not yet `Done`; the loop ends when it reaches 0.
//! - A timer carries its slot's generation; bumping `gen` cancels it. Chaos actions run
//!   only from timers, never while a batch of replies is being parsed, so a connection
//!   is never closed under the parser.

mod chaos;
mod conn;
mod cycle;
pub(crate) mod native;
pub(crate) mod redis;
mod slot;
mod tally;

pub(crate) use tally::{Samples, Tally};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use mio::Poll;

use crate::options::{CycleKind, Target};
use crate::procfs::{cpu_secs_between, read_cpu_secs};
use crate::run::{Interval, Msg, Plan, Shared};
use crate::shard::fmix64;
use crate::verify::owner_id;
use conn::ServerConn;
use slot::{Chaos, Slot, SlotState};

/// Longest reply loadgen accepts before calling the connection broken.
const MAX_REPLY: usize = 1 << 20;
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 64 * 1024;
/// Readiness events taken from one poll.
const EVENTS: usize = 1024;
/// Longest sleep in one poll, so stop and abort are seen soon.
const POLL_MAX: Duration = Duration::from_millis(50);
/// How often a loop sends its [`Interval`] to the controlling thread.
const INTERVAL: Duration = Duration::from_secs(1);
/// "No request expected" in [`Slot::expect`] and [`Slot::hold_id`].
const NO_ID: u64 = u64::MAX;
/// `--chaos`: the lease (`hold=`, ms) of a cycle that lets its hold expire on purpose.
pub(crate) const CHAOS_LEASE_MS: u64 = 3;
/// `--chaos`, lock mode: one lock name in this many is a semaphore name.
pub(crate) const SEMAPHORE_EVERY: u64 = 4;

/// What a poll loop is given when its thread starts.
pub(crate) struct WorkerInit {
    pub(crate) tid: usize,
    /// Global number of its first client.
    pub(crate) first_client: usize,
    pub(crate) nclients: usize,
    pub(crate) plan: Arc<Plan>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) tx: mpsc::Sender<Msg>,
    /// Passed once connections are ready (or failed).
    pub(crate) barrier: Arc<Barrier>,
    /// Mixed into Redis tokens.
    pub(crate) salt: u64,
}

/// What a poll loop hands back when it ends.
pub(crate) struct WorkerResult {
    pub(crate) tally: Tally,
    /// Requests still awaiting a reply at the end.
    pub(crate) unanswered: u64,
    /// The thread's CPU time over its wall time, percent of one core.
    pub(crate) cpu_percent: Option<f64>,
}

/// One poll loop's state.
struct Worker {
    first_client: usize,
    nclients: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    poll: Poll,
    conns: Vec<ServerConn>,
    slots: Vec<Slot>,
    /// `(when, slot, generation)`, earliest first.
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// Connections with bytes to write.
    dirty: Vec<usize>,
    rng: u64,
    salt: u64,
    tally: Tally,
    interval: Interval,
    draining: bool,
    active: usize,
    scratch: Vec<u8>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A poll-loop thread: connect, wait for the others at the barrier, run the load until
/// the drain ends (or the abort), and hand the tally back.
pub(crate) fn thread_main(init: WorkerInit) -> WorkerResult {
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            init.shared
                .set_connect_failed(format!("cannot create poll: {e}"));
            init.barrier.wait();
            let _ = init.tx.send(Msg::Done);
            return WorkerResult {
                tally: Tally::new(init.plan.servers.len()),
                unanswered: 0,
                cpu_percent: None,
            };
        }
    };
    let barrier = Arc::clone(&init.barrier);
    let mut w = Worker::new(init, poll);
    if let Err(msg) = w.connect_all() {
        w.shared.set_connect_failed(msg);
    }
    barrier.wait();
    let cpu0 = read_cpu_secs("/proc/thread-self/stat");
    let t0 = Instant::now();
    if !w.shared.abort.load(Ordering::SeqCst) && !w.shared.connect_failed() {
        w.run_loop(t0);
    }
    let cpu1 = read_cpu_secs("/proc/thread-self/stat");
    let wall = t0.elapsed().as_secs_f64();
    let cpu_percent = cpu_secs_between(cpu0, cpu1)
        .filter(|_| wall > 0.0)
        .map(|cpu| cpu / wall * 100.0);
    w.finish(cpu_percent)
}

impl Worker {
    pub(super) fn new(init: WorkerInit, poll: Poll) -> Worker {
        let mut rng = init.plan.seed ^ fmix64(init.tid as u64 + 0x1234);
        splitmix64(&mut rng);
        Worker {
            first_client: init.first_client,
            nclients: init.nclients,
            tally: Tally::new(init.plan.servers.len()),
            plan: init.plan,
            shared: init.shared,
            tx: init.tx,
            poll,
            conns: Vec::new(),
            slots: Vec::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            rng,
            salt: init.salt,
            interval: Interval::new(),
            draining: false,
            active: 0,
            scratch: vec![0u8; READ_CHUNK],
        }
    }

    /// Close the connections, tell the controlling thread, and hand the tally back.
    fn finish(mut self, cpu_percent: Option<f64>) -> WorkerResult {
        let unanswered = match self.plan.target {
            Target::Lockbox => self
                .slots
                .iter()
                .map(|s| u64::from(s.expect != NO_ID) + u64::from(s.side != NO_ID))
                .sum(),
            Target::Redis => self.slots.iter().filter(|s| s.st.awaits_reply()).count() as u64,
        };
        for c in &mut self.conns {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        let _ = self.tx.send(Msg::Done);
        WorkerResult {
            tally: self.tally,
            unanswered,
            cpu_percent,
        }
    }

    fn nservers(&self) -> usize {
        self.plan.addrs.len()
    }

    /// Create the pipeline slots of every client, all idle.
    fn create_slots(&mut self) {
        let now = Instant::now();
        for c in 0..self.nclients {
            for j in 0..self.plan.pipeline {
                self.slots.push(Slot {
                    st: SlotState::Idle,
                    client: c as u32,
                    j: j as u32,
                    server: 0,
                    name: 0,
                    k: 0,
                    expect: NO_ID,
                    hold_id: NO_ID,
                    token: 0,
                    t_start: now,
                    t_sent: now,
                    t_rel: now,
                    gen: 0,
                    expired: false,
                    ticket: false,
                    chaos: Chaos::None,
                    shared: self.plan.mode == CycleKind::Share,
                    max: self.plan.max,
                    lease: self.plan.hold,
                    expect_seq: 0,
                    side: NO_ID,
                    side_for: NO_ID,
                    side_seq: 0,
                    side_server: 0,
                    cancelled: NO_ID,
                    floor: 0,
                    reset_seq: 0,
                    probe: 0,
                    t_ext: now,
                    ext_ms: 0,
                });
            }
        }
        self.active = self.slots.len();
    }

    /// The load: start every slot, then poll, fire timers and flush until every slot is
    /// done, the drain time runs out, or the run is aborted.
    fn run_loop(&mut self, t0: Instant) {
        let mut events = mio::Events::with_capacity(EVENTS);
        let mut next_interval = t0 + INTERVAL;
        let mut drain_deadline: Option<Instant> = None;
        for s in 0..self.slots.len() {
            self.start_cycle(s, t0);
        }
        loop {
            let now = Instant::now();
            if self.shared.abort.load(Ordering::Relaxed) {
                break;
            }
            if !self.draining && self.shared.stop.load(Ordering::Relaxed) {
                self.begin_drain();
                drain_deadline = Some(now + self.plan.drain);
            }
            self.fire_timers(now);
            self.flush_dirty();
            if self.active == 0 || drain_deadline.is_some_and(|dd| now >= dd) {
                break;
            }
            if now >= next_interval {
                self.send_interval();
                next_interval += INTERVAL;
                if next_interval <= now {
                    next_interval = now + INTERVAL;
                }
            }
            let mut wake = next_interval.min(now + POLL_MAX);
            if let Some(Reverse((t, _, _))) = self.timers.peek() {
                wake = wake.min(*t);
            }
            if let Some(dd) = drain_deadline {
                wake = wake.min(dd);
            }
            if !self.poll_once(&mut events, wake.saturating_duration_since(now)) {
                break;
            }
        }
        self.send_interval();
    }

    /// Wait up to `timeout` for readiness and serve it; `false` when polling failed.
    fn poll_once(&mut self, events: &mut mio::Events, timeout: Duration) -> bool {
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                return true;
            }
            self.error(format!("poll: {e}"));
            return false;
        }
        for ev in events.iter() {
            let ci = ev.token().0;
            if self.conns[ci].dead {
                continue;
            }
            if self.conns[ci].setup != conn::Setup::Ready {
                let failed = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
                self.on_setup_event(ci, failed, Instant::now());
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                self.on_readable(ci);
            }
            if ev.is_writable() && !self.conns[ci].dead {
                self.flush(ci);
            }
        }
        true
    }

    /// Send this interval's counts to the controlling thread and start a new interval.
    fn send_interval(&mut self) {
        let iv = std::mem::replace(&mut self.interval, Interval::new());
        let _ = self.tx.send(Msg::Interval(Box::new(iv)));
    }

    /// The stop: retire the slots with nothing in flight; the others finish their cycle.
    fn begin_drain(&mut self) {
        self.draining = true;
        for s in 0..self.slots.len() {
            match self.slots[s].st {
                SlotState::Idle => self.finish_slot(s),
                SlotState::Retry | SlotState::Reconnect => {
                    self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
                    self.retire(s);
                }
                _ => {}
            }
        }
    }

    /// Whether the run is stopping (no new cycles, no more retries).
    fn stopping(&self) -> bool {
        self.draining || self.shared.stop.load(Ordering::Relaxed)
    }

    fn owner(&self, s: usize) -> u64 {
        let slot = &self.slots[s];
        owner_id(self.first_client + slot.client as usize, slot.j)
    }

    fn conn_index(&self, s: usize) -> usize {
        self.slots[s].client as usize * self.nservers() + self.slots[s].server as usize
    }

    fn mark_dirty(&mut self, ci: usize) {
        if !self.conns[ci].dirty {
            self.conns[ci].dirty = true;
            self.dirty.push(ci);
        }
    }

    /// Wake slot `s` at `at` (work done, or Redis retry), cancelling its earlier timer.
    fn set_timer(&mut self, s: usize, st: SlotState, at: Instant) {
        let slot = &mut self.slots[s];
        slot.st = st;
        slot.gen = slot.gen.wrapping_add(1);
        self.timers.push(Reverse((at, s as u32, slot.gen)));
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, s, gen))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let s = s as usize;
            if self.slots[s].gen != gen {
                continue;
            }
            match self.slots[s].st {
                SlotState::Hold => self.on_hold_timer(s, now),
                SlotState::Acquire => self.on_wait_timer(s, now),
                SlotState::Retry if self.draining => self.retire(s),
                SlotState::Retry => self.send_acquire(s, now),
                _ => {}
            }
        }
    }
}
