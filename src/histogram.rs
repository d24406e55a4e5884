//! Fixed-bucket histograms of millisecond durations (grant wait, hold duration) and of
//! timer lateness in microseconds, kept by the engine and shown by the metrics endpoint
//! in the Prometheus histogram form (and the lateness by `STATS` too).
//!
//! The buckets are one constant list, so an observation is a binary search and three
//! additions: no allocation, no floating point.
//!
//! # Invariants
//! - `count` is the number of observations; `buckets[i]` counts those in
//!   `(BOUNDS_MS[i-1], BOUNDS_MS[i]]` (the first from 0), and `count - sum(buckets)` those
//!   above the last bound.
//! - `sum_ms` is the sum of the observations, saturating at `u64::MAX`.
//! - The same holds for [`Lateness`] with [`BOUNDS_US`] and `sum_us`; its `max_us` is
//!   the largest observation (0 before any).

/// Upper bounds of the buckets, in milliseconds (`le` in the exposition, in seconds).
/// From the 1 ms resolution of the engine's clock up to five minutes.
pub const BOUNDS_MS: [u64; 16] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// A histogram of millisecond durations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u64; BOUNDS_MS.len()],
    count: u64,
    sum_ms: u64,
}

impl Histogram {
    /// Records one duration of `ms` milliseconds.
    pub fn observe(&mut self, ms: u64) {
        // Most grants and holds on a busy server take under a millisecond: the first
        // bucket without the search.
        let i = if ms <= BOUNDS_MS[0] {
            0
        } else {
            BOUNDS_MS.partition_point(|&b| b < ms)
        };
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations, in milliseconds.
    pub fn sum_ms(&self) -> u64 {
        self.sum_ms
    }

    /// `(bound_ms, observations <= bound_ms)` for every bound, in increasing order
    /// (cumulative, as Prometheus' `le` buckets; the `+Inf` bucket is [`Histogram::count`]).
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut total = 0;
        BOUNDS_MS.iter().zip(&self.buckets).map(move |(&b, &n)| {
            total += n;
            (b, total)
        })
    }
}

/// Upper bounds of the timer-lateness buckets, in microseconds: fine below a
/// millisecond (where an exact wake-up lands), coarse up to a second.
pub const BOUNDS_US: [u64; 12] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 100_000, 1_000_000,
];

/// How late deadlines fired: fire time minus deadline, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lateness {
    buckets: [u64; BOUNDS_US.len()],
    count: u64,
    sum_us: u64,
    max_us: u64,
}

impl Lateness {
    /// Records one deadline that fired `us` microseconds after it was due.
    pub fn observe(&mut self, us: u64) {
        let i = BOUNDS_US.partition_point(|&b| b < us);
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    /// Deadlines fired so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the lateness, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// The largest lateness seen, in microseconds.
    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// `(bound_us, observations <= bound_us)` for every bound, in increasing order.
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut total = 0;
        BOUNDS_US.iter().zip(&self.buckets).map(move |(&b, &n)| {
            total += n;
            (b, total)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Histogram, Lateness, BOUNDS_MS, BOUNDS_US};
    use crate::testrng::Rng;

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let mut h = Histogram::default();
        for ms in [0, 1, 2, 3, 1_000, 300_000, 300_001, u64::MAX] {
            h.observe(ms);
        }
        let c: Vec<(u64, u64)> = h.cumulative().collect();
        assert_eq!(c[0], (1, 2), "0 and 1 ms are <= 1 ms");
        assert_eq!(c[1], (2, 3));
        assert_eq!(c[2], (5, 4));
        assert_eq!(c[9], (1_000, 5));
        assert_eq!(*c.last().unwrap(), (300_000, 6));
        assert_eq!(h.count(), 8, "two above the last bound");
        assert_eq!(h.sum_ms(), u64::MAX, "the sum saturates");
    }

    #[test]
    fn matches_a_naive_count() {
        let mut rng = Rng::new(13);
        let mut h = Histogram::default();
        let mut seen = Vec::new();
        for _ in 0..5_000 {
            let ms = rng.below(400_000);
            h.observe(ms);
            seen.push(ms);
        }
        for (bound, n) in h.cumulative() {
            let naive = seen.iter().filter(|&&ms| ms <= bound).count() as u64;
            assert_eq!(n, naive, "bucket le={bound}");
        }
        assert_eq!(h.count(), seen.len() as u64);
        assert_eq!(h.sum_ms(), seen.iter().sum::<u64>());
        assert_eq!(BOUNDS_MS.windows(2).filter(|w| w[0] >= w[1]).count(), 0);
    }

    #[test]
    fn lateness_matches_a_naive_count() {
        let mut rng = Rng::new(17);
        let mut h = Lateness::default();
        let mut seen = Vec::new();
        for _ in 0..5_000 {
            let us = match rng.below(3) {
                0 => rng.below(1_000),
                1 => rng.below(20_000),
                _ => rng.below(3_000_000),
            };
            h.observe(us);
            seen.push(us);
        }
        for (bound, n) in h.cumulative() {
            let naive = seen.iter().filter(|&&us| us <= bound).count() as u64;
            assert_eq!(n, naive, "bucket le={bound}");
        }
        assert_eq!(h.count(), seen.len() as u64);
        assert_eq!(h.sum_us(), seen.iter().sum::<u64>());
        assert_eq!(h.max_us(), *seen.iter().max().unwrap());
        assert_eq!(BOUNDS_US.windows(2).filter(|w| w[0] >= w[1]).count(), 0);
        let mut empty = Lateness::default();
        assert_eq!((empty.count(), empty.max_us()), (0, 0));
        empty.observe(1_000);
        let c: Vec<(u64, u64)> = empty.cumulative().collect();
        assert_eq!(c[5], (500, 0));
        assert_eq!(c[6], (1_000, 1), "bounds are inclusive");
    }
}
