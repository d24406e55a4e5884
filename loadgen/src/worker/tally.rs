//! A poll loop's bookkeeping: its counts over the run ([`Tally`]), the samples of
//! what went wrong, and how errors, violations and checks are counted.

use hdrhistogram::Histogram;

use super::Worker;
use crate::report::{new_histogram, ChaosCounts};
use crate::verify::{PerProperty, Property};

/// Samples kept per thread for errors and violations.
const SAMPLES_PER_THREAD: usize = 20;

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
    pub(super) fn new() -> Samples {
        Samples {
            kept: Vec::new(),
            omitted: 0,
        }
    }

    pub(super) fn push(&mut self, msg: String) {
        if self.kept.len() < SAMPLES_PER_THREAD {
            self.kept.push(msg);
        } else {
            self.omitted += 1;
        }
    }
}

impl Tally {
    pub(super) fn new(servers: usize) -> Tally {
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

impl Worker {
    pub(super) fn error(&mut self, msg: String) {
        self.tally.errors += 1;
        self.interval.errors += 1;
        self.tally.error_samples.push(msg);
    }

    pub(super) fn violation(&mut self, prop: Property, msg: String) {
        self.tally.violations += 1;
        self.tally.failed[prop.index()] += 1;
        self.tally.violation_samples.push(msg);
    }

    /// One observation checked against `prop` (`--verify`).
    pub(super) fn checked(&mut self, prop: Property) {
        self.tally.checked[prop.index()] += 1;
    }

    /// A protocol anomaly: a violation of `prop` under `--verify`, an error otherwise.
    pub(super) fn anomaly(&mut self, prop: Property, msg: String) {
        if self.plan.verify {
            self.violation(prop, msg);
        } else {
            self.error(msg);
        }
    }
}
