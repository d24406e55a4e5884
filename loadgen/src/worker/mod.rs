//! One poll loop: its share of the clients, their connections to every server and
//! their pipeline slots, driven by one `mio` poll and a timer heap.
//!
//! Owns the life of a cycle, whatever the protocol: start (pick a name, route it), grant,
//! hold, release, timeout, failure, and the drain at the end; and the loop's [`Tally`].
//! The wire formats are elsewhere: `native` writes and reads lockbox's line protocol,
//! `redis` writes and reads RESP, and `conn` sets connections up and moves their bytes.
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
pub(crate) mod native;
pub(crate) mod redis;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::Poll;

use crate::options::{CycleKind, Target};
use crate::procfs::{cpu_secs_between, read_cpu_secs};
use crate::report::{new_histogram, ChaosCounts};
use crate::run::{Interval, Msg, Plan, Shared};
use crate::shard::fmix64;
use crate::verify::{owner_id, HoldRec, PerProperty, Property};
use conn::ServerConn;

/// Samples kept per thread for errors and violations.
const SAMPLES_PER_THREAD: usize = 20;
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

/// A poll loop's counts over the whole run.
pub(crate) struct Tally {
    pub(crate) cycles: u64,
    /// Cycles completed before the stop.
    pub(crate) window_cycles: u64,
    pub(crate) timeouts: u64,
    pub(crate) errors: u64,
    pub(crate) expired: u64,
    pub(crate) violations: u64,
    pub(crate) lost_clients: u64,
    /// What `--chaos` did.
    pub(crate) chaos: ChaosCounts,
    /// `--verify`: observations checked, per property.
    pub(crate) checked: PerProperty,
    /// `--verify`: violations, per property.
    pub(crate) failed: PerProperty,
    /// Completed cycles per server.
    pub(crate) per_server: Vec<u64>,
    /// Acquire latency, microseconds.
    pub(crate) acquire: Histogram<u64>,
    /// Release latency, microseconds.
    pub(crate) release: Histogram<u64>,
    /// How late `TIMEOUT` replies came after `--wait`, microseconds.
    pub(crate) timeout_lateness: Histogram<u64>,
    /// Evidence of the first violations.
    pub(crate) violation_samples: Samples,
    /// The first error messages.
    pub(crate) error_samples: Samples,
}

/// The first [`SAMPLES_PER_THREAD`] messages of one kind, and how many more there were.
pub(crate) struct Samples {
    pub(crate) kept: Vec<String>,
    pub(crate) omitted: u64,
}

impl Samples {
    fn new() -> Samples {
        Samples {
            kept: Vec::new(),
            omitted: 0,
        }
    }

    fn push(&mut self, msg: String) {
        if self.kept.len() < SAMPLES_PER_THREAD {
            self.kept.push(msg);
        } else {
            self.omitted += 1;
        }
    }
}

impl Tally {
    fn new(servers: usize) -> Tally {
        Tally {
            cycles: 0,
            window_cycles: 0,
            timeouts: 0,
            errors: 0,
            expired: 0,
            violations: 0,
            lost_clients: 0,
            chaos: ChaosCounts::default(),
            checked: [0; Property::ALL.len()],
            failed: [0; Property::ALL.len()],
            per_server: vec![0; servers],
            acquire: new_histogram(),
            release: new_histogram(),
            timeout_lateness: new_histogram(),
            violation_samples: Samples::new(),
            error_samples: Samples::new(),
        }
    }
}

/// Where a pipeline slot is in its cycle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
    /// Not yet started.
    Idle,
    /// Acquire request sent.
    Acquire,
    /// Granted, waiting for the work timer.
    Hold,
    /// Release request sent.
    Release,
    /// Redis: busy, waiting for the retry timer.
    Retry,
    /// Ping sent.
    Ping,
    /// Chaos: the wait was answered `CANCELLED`, the `CANCEL`'s own reply is pending.
    Cancelled,
    /// Chaos: `EXTEND` sent.
    Extend,
    /// Chaos: `RESET` sent.
    Reset,
    /// Chaos: the connection was closed by loadgen and is being opened again.
    Reconnect,
    /// Chaos: `INSPECT` sent after a confirmed close.
    Probe,
    /// Finished for good.
    Done,
}

impl SlotState {
    /// Whether the slot's main request is waiting for its reply.
    fn awaits_reply(self) -> bool {
        matches!(
            self,
            SlotState::Acquire
                | SlotState::Release
                | SlotState::Ping
                | SlotState::Extend
                | SlotState::Reset
                | SlotState::Probe
        )
    }

    /// Whether the slot holds a lock the server granted (or granted and was asked to
    /// release, with no answer yet).
    fn has_hold(self) -> bool {
        matches!(
            self,
            SlotState::Hold | SlotState::Release | SlotState::Extend | SlotState::Reset
        )
    }
}

/// What a cycle does wrong on purpose (`--chaos`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Chaos {
    /// Nothing: a well-behaved cycle.
    None,
    /// Close the connection while the acquire waits.
    CloseWaiting,
    /// Close the connection while holding.
    CloseHolding,
    /// `CANCEL` the pending acquire.
    Cancel,
    /// `RESET` the connection while holding.
    Reset,
    /// `EXTEND` the hold, then hold on and unlock.
    Extend,
    /// Take a short lease and let it expire.
    Expire,
}

impl Chaos {
    /// The misbehaviours [`Worker::start_cycle`] picks from, uniformly.
    const PICK: [Chaos; 6] = [
        Chaos::CloseWaiting,
        Chaos::CloseHolding,
        Chaos::Cancel,
        Chaos::Reset,
        Chaos::Extend,
        Chaos::Expire,
    ];
}

/// One of a client's `--pipeline` cycles in flight.
struct Slot {
    st: SlotState,
    /// Client number within this loop.
    client: u32,
    /// Slot number within the client.
    j: u32,
    server: u16,
    /// Lock number (the name is the prefix and this number).
    name: u64,
    /// Requests sent so far by this slot (ids are `j + D*k`).
    k: u64,
    /// Id of the request whose reply is expected (lockbox), or NO_ID.
    expect: u64,
    /// Id of the acquire request of the current hold (EXPIRED events carry it).
    hold_id: u64,
    token: u64,
    /// Cycle start (first acquire attempt).
    t_start: Instant,
    /// Latest acquire request sent.
    t_sent: Instant,
    /// Release request sent.
    t_rel: Instant,
    /// Timer generation; a popped timer with another generation is stale.
    gen: u32,
    expired: bool,
    /// Holds one of the `--cycles` budget.
    ticket: bool,
    /// This cycle's misbehaviour (`--chaos`).
    chaos: Chaos,
    /// This cycle acquires with `SHARE` (share mode, or a semaphore name under chaos).
    shared: bool,
    /// `max=` of this cycle's `SHARE`.
    max: Option<u64>,
    /// The lease (`hold=`) this cycle's acquire asks for.
    lease: Option<Duration>,
    /// Connection sequence number of the pending main request.
    expect_seq: u64,
    /// Id of a pending `CANCEL`, or NO_ID.
    side: u64,
    /// The acquire id the pending `CANCEL` cancels.
    side_for: u64,
    /// Connection sequence number of the pending `CANCEL`.
    side_seq: u64,
    /// The server the pending `CANCEL` went to (the slot may have moved on to another).
    side_server: u16,
    /// Id of the latest acquire answered `CANCELLED` (a grant for it is a violation).
    cancelled: u64,
    /// Largest token seen from this server before the acquire was sent (`--verify`).
    floor: u64,
    /// Sequence number of the `RESET` that released the hold, or 0.
    reset_seq: u64,
    /// Token of an exclusive hold to look for with `INSPECT` after a confirmed close,
    /// or 0.
    probe: u64,
    /// When the pending `EXTEND` was sent, and its `hold=`.
    t_ext: Instant,
    ext_ms: u64,
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
    fn new(init: WorkerInit, poll: Poll) -> Worker {
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

    fn finish_slot(&mut self, s: usize) {
        if self.slots[s].st != SlotState::Done {
            self.slots[s].st = SlotState::Done;
            self.active -= 1;
        }
    }

    /// Give the slot's `--cycles` ticket back and retire it.
    fn retire(&mut self, s: usize) {
        self.return_ticket(s);
        self.finish_slot(s);
    }

    fn return_ticket(&mut self, s: usize) {
        if self.slots[s].ticket {
            self.slots[s].ticket = false;
            self.shared.tickets.fetch_sub(1, Ordering::SeqCst);
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

    fn error(&mut self, msg: String) {
        self.tally.errors += 1;
        self.interval.errors += 1;
        self.tally.error_samples.push(msg);
    }

    fn violation(&mut self, prop: Property, msg: String) {
        self.tally.violations += 1;
        self.tally.failed[prop.index()] += 1;
        self.tally.violation_samples.push(msg);
    }

    /// One observation checked against `prop` (`--verify`).
    fn checked(&mut self, prop: Property) {
        self.tally.checked[prop.index()] += 1;
    }

    /// A protocol anomaly: a violation of `prop` under `--verify`, an error otherwise.
    fn anomaly(&mut self, prop: Property, msg: String) {
        if self.plan.verify {
            self.violation(prop, msg);
        } else {
            self.error(msg);
        }
    }

    /// Take one cycle of the `--cycles` budget for slot `s` (if it has none yet);
    /// `false` when the budget is spent.
    fn take_ticket(&mut self, s: usize) -> bool {
        let Some(limit) = self.plan.cycles_limit else {
            return true;
        };
        if self.slots[s].ticket {
            return true;
        }
        let got = self
            .shared
            .tickets
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (t < limit).then_some(t + 1)
            })
            .is_ok();
        self.slots[s].ticket = got;
        got
    }

    /// Start a new cycle on slot `s`, or retire the slot when the run is stopping.
    fn start_cycle(&mut self, s: usize, now: Instant) {
        if self.stopping() || self.shared.abort.load(Ordering::Relaxed) || !self.take_ticket(s) {
            self.finish_slot(s);
            return;
        }
        let r = splitmix64(&mut self.rng);
        let name = ((u128::from(r) * u128::from(self.plan.locks)) >> 64) as u64;
        let server = self.plan.route(name);
        let slot = &mut self.slots[s];
        slot.name = name;
        slot.server = server;
        slot.t_start = now;
        slot.expired = false;
        slot.hold_id = NO_ID;
        slot.reset_seq = 0;
        slot.probe = 0;
        if self.plan.target == Target::Redis && self.plan.mode != CycleKind::Ping {
            slot.token = splitmix64(&mut self.rng) ^ self.salt;
        }
        if self.plan.chaos.is_some() {
            let ci = self.conn_index(s);
            if self.conns[ci].setup != conn::Setup::Ready {
                // That connection is being reopened after a close by loadgen: start
                // again once it is ready.
                self.slots[s].st = SlotState::Reconnect;
                self.return_ticket(s);
                return;
            }
            self.plan_chaos(s);
        }
        self.send_acquire(s, now);
        if matches!(self.slots[s].chaos, Chaos::Cancel | Chaos::CloseWaiting) {
            self.set_wait_timer(s, now);
        }
    }

    /// Send (or, for Redis, re-send) the acquire request or ping of slot `s`.
    fn send_acquire(&mut self, s: usize, now: Instant) {
        let ci = self.conn_index(s);
        match self.plan.target {
            Target::Lockbox => self.write_native_acquire(s, ci),
            Target::Redis => self.write_redis_acquire(s, ci),
        }
        if self.plan.verify && self.plan.target == Target::Lockbox {
            let server = self.slots[s].server as usize;
            self.slots[s].floor = self.shared.token_floor[server].load(Ordering::Relaxed);
        }
        let slot = &mut self.slots[s];
        slot.st = if self.plan.mode == CycleKind::Ping {
            SlotState::Ping
        } else {
            SlotState::Acquire
        };
        slot.t_sent = now;
        self.mark_dirty(ci);
    }

    /// Send the release request of slot `s`, whose hold ends here.
    fn send_unlock(&mut self, s: usize, now: Instant) {
        let ci = self.conn_index(s);
        // The hold ends, from the client's point of view, before the request is written.
        self.release_hold(s);
        match self.plan.target {
            Target::Lockbox => self.write_native_unlock(s, ci),
            Target::Redis => self.write_redis_unlock(s, ci),
        }
        let slot = &mut self.slots[s];
        slot.st = SlotState::Release;
        slot.t_rel = now;
        self.mark_dirty(ci);
    }

    /// Tell the verifier that the hold of slot `s` has ended.
    fn release_hold(&self, s: usize) {
        if let Some(v) = &self.shared.verifier {
            let slot = &self.slots[s];
            v.release(slot.server, slot.name, self.owner(s), slot.token);
        }
    }

    fn complete_cycle(&mut self, s: usize, now: Instant) {
        self.tally.cycles += 1;
        self.interval.cycles += 1;
        if !self.shared.stop.load(Ordering::Relaxed) {
            self.tally.window_cycles += 1;
        }
        self.tally.per_server[self.slots[s].server as usize] += 1;
        if let Some(limit) = self.plan.cycles_limit {
            self.slots[s].ticket = false;
            let done = self.shared.completed.fetch_add(1, Ordering::SeqCst) + 1;
            if done >= limit {
                self.shared.request_stop();
            }
        }
        self.start_cycle(s, now);
    }

    /// The cycle ended without completing (timeout, error, expiry): next one.
    fn fail_cycle(&mut self, s: usize, now: Instant) {
        self.return_ticket(s);
        self.start_cycle(s, now);
    }

    /// A ping's reply arrived: record its round trip, next cycle.
    fn on_pong(&mut self, s: usize, now: Instant) {
        let lat = micros(now.saturating_duration_since(self.slots[s].t_start));
        self.tally.acquire.saturating_record(lat);
        self.interval.acquire.saturating_record(lat);
        self.complete_cycle(s, now);
    }

    /// The reply to a release arrived: record its latency, next cycle.
    fn on_released(&mut self, s: usize, now: Instant) {
        let lat = micros(now.saturating_duration_since(self.slots[s].t_rel));
        self.tally.release.saturating_record(lat);
        self.complete_cycle(s, now);
    }

    /// A reply that fits no rule: an anomaly; a release still ends its cycle.
    fn on_unexpected(&mut self, s: usize, msg: String, now: Instant) {
        self.anomaly(Property::Protocol, msg);
        if self.slots[s].st.has_hold() {
            self.release_hold(s);
        }
        if self.slots[s].st == SlotState::Release {
            self.complete_cycle(s, now);
        } else {
            self.fail_cycle(s, now);
        }
    }

    /// A grant arrived for slot `s` on connection `ci`: check it, then hold or release.
    fn on_grant(&mut self, s: usize, ci: usize, token: u64, holders: Option<u64>, now: Instant) {
        let lat = micros(now.saturating_duration_since(self.slots[s].t_start));
        self.tally.acquire.saturating_record(lat);
        self.interval.acquire.saturating_record(lat);
        // Chaos timers of the wait (CANCEL, close) have nothing left to do.
        self.slots[s].gen = self.slots[s].gen.wrapping_add(1);
        if self.plan.verify && self.plan.target == Target::Lockbox {
            self.check_tokens(s, ci, token);
        }
        self.slots[s].token = token;
        // A RESET sent after the acquire may have released this hold before its grant
        // arrived: it is not counted as held, and the UNLOCK may find nothing.
        let dead_on_arrival = self.conns[ci].last_reset_seq > self.slots[s].expect_seq;
        if dead_on_arrival {
            self.slots[s].reset_seq = self.conns[ci].last_reset_seq;
        }
        if let (Some(v), false) = (&self.shared.verifier, dead_on_arrival) {
            let slot = &self.slots[s];
            let rec = HoldRec {
                owner: self.owner(s),
                token,
                granted: now,
                shared: slot.shared,
                lease_end: slot.lease.map(|l| slot.t_sent + l),
                holders,
            };
            let (shared, max) = (slot.shared, slot.max);
            let out = v.grant(slot.server, slot.name, rec, max, holders);
            if v.tracks_names() {
                self.checked(Property::Exclusion);
            }
            if shared && max.is_some() {
                self.checked(Property::SharedMax);
            }
            for (prop, msg) in out {
                self.violation(prop, msg);
            }
        }
        match self.slots[s].chaos {
            Chaos::Expire if !self.draining => {
                let lease = self.slots[s].lease.unwrap_or_default();
                self.set_timer(s, SlotState::Hold, now + lease + chaos::EXPIRE_WATCHDOG);
            }
            Chaos::None if self.plan.work.is_zero() => self.send_unlock(s, now),
            _ => {
                let at = now + self.plan.work;
                self.set_timer(s, SlotState::Hold, at);
            }
        }
    }

    /// `--verify`: a grant's token is larger than every token seen from its server
    /// before the request was sent, and than every earlier grant on its connection.
    fn check_tokens(&mut self, s: usize, ci: usize, token: u64) {
        self.checked(Property::Tokens);
        let server_ix = self.conns[ci].server as usize;
        let floor = self.slots[s].floor;
        if token <= floor {
            let server = self.plan.servers[server_ix].clone();
            let c = self.first_client + self.conns[ci].client as usize;
            self.violation(
                Property::Tokens,
                format!(
                    "token reused or going back on {server}: grant token {token} to client {c} \
                     for {} is not greater than token {floor}, seen from that server before \
                     the request was sent",
                    self.plan.name_string(self.slots[s].name)
                ),
            );
        }
        self.shared.token_floor[server_ix].fetch_max(token, Ordering::Relaxed);
        let max = self.conns[ci].max_token;
        if token <= max && max != 0 {
            let server = self.plan.servers[server_ix].clone();
            let c = self.first_client + self.conns[ci].client as usize;
            self.violation(
                Property::Tokens,
                format!(
                    "token order on connection of client {c} to {server}: grant token {token} \
                     for {} is not greater than earlier grant token {max}",
                    self.plan.name_string(self.slots[s].name)
                ),
            );
        }
        self.conns[ci].max_token = max.max(token);
    }

    /// The acquire of slot `s` timed out (lockbox `TIMEOUT`, Redis: `--wait` spent).
    fn on_timeout(&mut self, s: usize, now: Instant) {
        self.tally.timeouts += 1;
        self.interval.timeouts += 1;
        if let (Some(w), Target::Lockbox) = (self.plan.wait, self.plan.target) {
            let waited = now.saturating_duration_since(self.slots[s].t_start);
            self.tally
                .timeout_lateness
                .saturating_record(micros(waited.saturating_sub(w)));
        }
        self.fail_cycle(s, now);
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
