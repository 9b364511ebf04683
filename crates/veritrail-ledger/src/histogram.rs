//! A lock-free histogram with fixed bucket bounds, for the ledger's and the server's
//! Prometheus metrics (batch sizes, commit latency). Observing is two atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of observations at or below each bound (cumulative when rendered), their
/// number and their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// `buckets[i]` counts observations in `(bounds[i-1], bounds[i]]`; the last one is
    /// `+Inf`.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum of observations, as `f64` bits.
    sum_bits: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds`, which must be ascending.
    #[must_use]
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of the observations so far.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `(+Inf, count)`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.buckets)
            .map(|(bound, bucket)| {
                total += bucket.load(Ordering::Relaxed);
                (bound, total)
            })
            .collect()
    }
}

/// Bounds for latencies in seconds, 50 µs to 10 s.
pub const LATENCY_SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Bounds for counts of events per batch.
pub const BATCH_EVENTS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_holds_them() {
        let histogram = Histogram::new(&[1.0, 10.0]);
        for value in [0.5, 1.0, 1.5, 10.0, 11.0, 100.0] {
            histogram.observe(value);
        }
        assert_eq!(
            histogram.cumulative(),
            vec![(1.0, 2), (10.0, 4), (f64::INFINITY, 6)]
        );
        assert_eq!(histogram.count(), 6);
        assert!((histogram.sum() - 124.0).abs() < 1e-9);
    }
}
