//! Latency histograms: fixed log-scaled buckets from 1 µs to about an hour, cheap to record into
//! from any thread and summarised as count, p50/p95/p99 and max. Used for LSP methods and for
//! each provider's time to first token and total time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets per power of two: 4 gives at most ~19% relative error on a percentile.
const SUB: u32 = 4;
const BUCKETS: usize = 34 * SUB as usize;

#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max_us: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// A histogram's summary, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

fn bucket(us: u64) -> usize {
    if us < 2 {
        return us as usize;
    }
    let log = 63 - us.leading_zeros();
    let frac = if log >= 2 {
        ((us >> (log - 2)) & 0b11) as u32
    } else {
        ((us << (2 - log)) & 0b11) as u32
    };
    ((log * SUB + frac) as usize).min(BUCKETS - 1)
}

/// The upper edge of a bucket, in microseconds.
fn upper(index: usize) -> f64 {
    let log = index as u32 / SUB;
    let frac = index as u32 % SUB;
    let base = 2f64.powi(log as i32);
    base * (1.0 + (frac + 1) as f64 / SUB as f64)
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn summary(&self) -> Summary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed) as f64;
        let quantile = |q: f64| -> f64 {
            if count == 0 {
                return 0.0;
            }
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return upper(i).min(max_us) / 1000.0;
                }
            }
            max_us / 1000.0
        };
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        Summary {
            count,
            p50_ms: round(quantile(0.50)),
            p95_ms: round(quantile(0.95)),
            p99_ms: round(quantile(0.99)),
            max_ms: round(max_us / 1000.0),
            mean_ms: if count == 0 {
                0.0
            } else {
                round(self.sum_us.load(Ordering::Relaxed) as f64 / count as f64 / 1000.0)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_a_bucket_of_the_truth() {
        let h = Histogram::new();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.max_ms, 100.0);
        assert!((50.0..=60.0).contains(&s.p50_ms), "{s:?}");
        assert!((95.0..=100.0).contains(&s.p99_ms), "{s:?}");
        assert!((s.mean_ms - 50.5).abs() < 0.01);
        assert_eq!(Histogram::new().summary(), Summary::default());
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for us in (0..5_000_000u64).step_by(997) {
            let b = bucket(us);
            assert!(b >= last);
            assert!(upper(b) >= us as f64, "{us}");
            last = b;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }
}
