//! Latency samples and their percentiles (nearest rank, on the sorted samples: no histogram rounding).

use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Samples(pub Vec<u64>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_nanos() as u64);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The p-th percentile (0..=100) in milliseconds; 0 when empty.
    pub fn pct_ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.0.len()) - 1;
        self.0[i] as f64 / 1e6
    }

    pub fn max_ms(&self) -> f64 {
        self.0.iter().copied().max().unwrap_or(0) as f64 / 1e6
    }

    pub fn mean_ms(&self) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.iter().map(|&x| x as f64).sum::<f64>() / self.0.len() as f64 / 1e6
    }
}

/// Median, minimum and maximum of repeated measurements, for "median (min..max)" in reports.
pub fn spread(xs: &[f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples((1..=100).map(|x| x * 1_000_000).collect());
        assert_eq!(s.pct_ms(50.0), 50.0);
        assert_eq!(s.pct_ms(99.0), 99.0);
        assert_eq!(s.pct_ms(100.0), 100.0);
        assert_eq!(s.max_ms(), 100.0);
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
    }
}
