//! Percentiles of a set of measured durations (start to ready, issued to verifiable).

use serde::Serialize;
use std::time::Duration;

/// A named set of durations and its percentiles (nearest rank), in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct TimingRow {
    pub label: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl TimingRow {
    /// The row for `samples` (any order).
    pub fn of(label: &str, samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort();
        Self {
            label: label.to_owned(),
            samples: sorted.len(),
            p50_ms: percentile_ms(&sorted, 50.0),
            p99_ms: percentile_ms(&sorted, 99.0),
            max_ms: percentile_ms(&sorted, 100.0),
        }
    }
}

/// The `p`th percentile (nearest rank) of `sorted` in milliseconds; 0 when empty.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(i.saturating_sub(1))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_millis).collect();
        let row = TimingRow::of("x", &samples);
        assert_eq!(
            (row.samples, row.p50_ms, row.p99_ms, row.max_ms),
            (200, 100.0, 198.0, 200.0)
        );
        assert_eq!(TimingRow::of("none", &[]).p99_ms, 0.0);
    }
}
