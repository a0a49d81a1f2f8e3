//! Summaries of repeated measurements: median and range over runs, percentiles of
//! samples.

use std::time::Duration;

use serde::Serialize;

/// The median and the range of one figure over several runs, with every run's value.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The median over runs (the mean of the middle two for an even count).
    pub median: f64,
    /// The lowest run.
    pub min: f64,
    /// The highest run.
    pub max: f64,
    /// Every run's value, in run order.
    pub runs: Vec<f64>,
}

impl Summary {
    /// Summarizes the values of the runs (an empty list gives zeros).
    pub fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
        };
        Self {
            median,
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
            runs: values.to_vec(),
        }
    }
}

/// The nearest-rank percentile `p` (0–100) of `samples` (zero when there are none).
pub fn percentile(samples: &[f64], p: usize) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p.min(100) * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// A count as a float, for rates and ratios (counts here stay far below 2^52).
#[allow(
    clippy::cast_precision_loss,
    reason = "task and command counts are far below 2^52"
)]
pub fn count(n: usize) -> f64 {
    n as f64
}

/// A 64-bit count as a float, for rates and ratios.
#[allow(
    clippy::cast_precision_loss,
    reason = "task and command counts are far below 2^52"
)]
pub fn count64(n: u64) -> f64 {
    n as f64
}

/// KiB (as `/proc` reports memory) in megabytes of 10^6 bytes, the unit the targets
/// are set in.
pub fn megabytes(kib: u64) -> f64 {
    count64(kib) * 1024.0 / 1e6
}

/// `n` events over `elapsed`, per second.
pub fn rate(n: usize, elapsed: Duration) -> f64 {
    count(n) / elapsed.as_secs_f64().max(1e-9)
}

/// A duration in milliseconds, as a float.
pub fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = Summary::of(&[3.0, 1.0, 2.0]);
        assert!((s.median - 2.0).abs() < 1e-12);
        assert!((s.min - 1.0).abs() < 1e-12);
        assert!((s.max - 3.0).abs() < 1e-12);
        let even = Summary::of(&[4.0, 1.0, 2.0, 3.0]);
        assert!((even.median - 2.5).abs() < 1e-12);
        assert_eq!(even.runs.len(), 4);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&samples, 50) - 50.0).abs() < 1e-12);
        assert!((percentile(&samples, 99) - 99.0).abs() < 1e-12);
        assert!((percentile(&samples, 100) - 100.0).abs() < 1e-12);
        assert!((percentile(&[7.0], 99) - 7.0).abs() < 1e-12);
        assert!(percentile(&[], 50).abs() < 1e-12);
    }
}
