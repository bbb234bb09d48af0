//! What a run measures: per operation class, a latency histogram, payload
//! bytes, failed requests and failed verifications; and the summaries
//! (rates, percentiles) computed from them.
//!
//! The histogram has fixed size (log buckets, 128 per power of two: a
//! percentile is within 0.8 % of the true value), so a run of any length
//! uses the same memory. Recording is lock-free; only the first few error
//! messages are kept. This module never does I/O.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for any u64 microsecond count.
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;
/// Error messages kept for the report.
pub const FIRST_ERRORS_MAX: usize = 5;

fn bucket_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (micros >> shift) - SUB;
    (SUB + u64::from(shift) * SUB + sub) as usize
}

/// The middle of bucket `index`, in microseconds.
fn bucket_value(index: usize) -> u64 {
    let i = index as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let sub = SUB + (i - SUB) % SUB;
    let low = sub << shift;
    low + (1u64 << shift) / 2
}

/// Latency histogram in microseconds.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn add(&self, other: &Histogram) {
        for (a, b) in self.buckets.iter().zip(other.buckets.iter()) {
            a.fetch_add(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.count
            .fetch_add(other.count.load(Ordering::Relaxed), Ordering::Relaxed);
        self.sum_micros
            .fetch_add(other.sum_micros.load(Ordering::Relaxed), Ordering::Relaxed);
        self.max_micros
            .fetch_max(other.max_micros.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Nearest-rank percentile `p` (0–100] in microseconds; 0 if empty.
    pub fn percentile_micros(&self, p: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * count as f64).ceil().clamp(1.0, count as f64) as u64;
        let max = self.max_micros.load(Ordering::Relaxed);
        let mut seen = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return bucket_value(i).min(max);
            }
        }
        max
    }

    pub fn latency_ms(&self) -> LatencyMs {
        let count = self.count();
        let ms = |micros: u64| round3(micros as f64 / 1000.0);
        LatencyMs {
            p50: ms(self.percentile_micros(50.0)),
            p90: ms(self.percentile_micros(90.0)),
            p99: ms(self.percentile_micros(99.0)),
            max: ms(self.max_micros.load(Ordering::Relaxed)),
            mean: if count == 0 {
                0.0
            } else {
                round3(self.sum_micros.load(Ordering::Relaxed) as f64 / count as f64 / 1000.0)
            },
        }
    }
}

/// Rounds to three decimals, for JSON that people read.
pub fn round3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// Latency percentiles of successful requests, milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Operation classes, reported separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Delete,
    List,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Put, Op::Get, Op::Delete, Op::List];

    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::Delete => "DELETE",
            Op::List => "LIST",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
struct OpCounters {
    latency: Histogram,
    bytes: AtomicU64,
    errors: AtomicU64,
    verify_failures: AtomicU64,
}

/// Everything the workers record, shared by all of them.
#[derive(Debug, Default)]
pub struct Recorder {
    ops: [OpCounters; 4],
    first_errors: Mutex<Vec<String>>,
}

impl Recorder {
    /// A successful request that moved `bytes` of payload.
    pub fn ok(&self, op: Op, latency: Duration, bytes: u64) {
        let c = &self.ops[op.slot()];
        c.latency.record(latency);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A request that failed (transport error, unexpected status).
    pub fn error(&self, op: Op, message: String) {
        self.ops[op.slot()].errors.fetch_add(1, Ordering::Relaxed);
        self.keep(op, message);
    }

    /// A request that succeeded with the wrong body.
    pub fn verify_failure(&self, op: Op, message: String) {
        self.ops[op.slot()]
            .verify_failures
            .fetch_add(1, Ordering::Relaxed);
        self.keep(op, message);
    }

    fn keep(&self, op: Op, message: String) {
        if let Ok(mut kept) = self.first_errors.lock()
            && kept.len() < FIRST_ERRORS_MAX
        {
            kept.push(format!("{}: {message}", op.name()));
        }
    }

    pub fn first_errors(&self) -> Vec<String> {
        self.first_errors
            .lock()
            .map(|kept| kept.clone())
            .unwrap_or_default()
    }

    /// Failed requests plus failed verifications, over all classes.
    pub fn failures(&self) -> u64 {
        self.ops
            .iter()
            .map(|c| c.errors.load(Ordering::Relaxed) + c.verify_failures.load(Ordering::Relaxed))
            .sum()
    }

    /// Summaries of the classes that saw any request, then the total.
    pub fn summarize(&self, seconds: f64) -> (Vec<(Op, OpSummary)>, OpSummary) {
        let total = Histogram::default();
        let (mut bytes, mut errors, mut verify) = (0, 0, 0);
        let mut rows = Vec::new();
        for op in Op::ALL {
            let c = &self.ops[op.slot()];
            let s = OpSummary::new(
                &c.latency,
                c.bytes.load(Ordering::Relaxed),
                c.errors.load(Ordering::Relaxed),
                c.verify_failures.load(Ordering::Relaxed),
                seconds,
            );
            if s.ops + s.errors + s.verify_failures == 0 {
                continue;
            }
            total.add(&c.latency);
            bytes += s.bytes;
            errors += s.errors;
            verify += s.verify_failures;
            rows.push((op, s));
        }
        let total = OpSummary::new(&total, bytes, errors, verify, seconds);
        (rows, total)
    }
}

/// One class's (or all classes') results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpSummary {
    /// Successful requests.
    pub ops: u64,
    /// Payload bytes of successful requests (PUT bodies sent, GET bodies received).
    pub bytes: u64,
    pub ops_per_sec: f64,
    pub mib_per_sec: f64,
    pub latency_ms: LatencyMs,
    /// Failed requests: transport errors and unexpected HTTP statuses.
    pub errors: u64,
    /// Successful responses whose body was not the content written.
    pub verify_failures: u64,
}

impl OpSummary {
    fn new(h: &Histogram, bytes: u64, errors: u64, verify_failures: u64, seconds: f64) -> Self {
        let ops = h.count();
        let per_sec = |v: f64| {
            if seconds > 0.0 {
                round3(v / seconds)
            } else {
                0.0
            }
        };
        OpSummary {
            ops,
            bytes,
            ops_per_sec: per_sec(ops as f64),
            mib_per_sec: per_sec(bytes as f64 / (1u64 << 20) as f64),
            latency_ms: h.latency_ms(),
            errors,
            verify_failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..5_000u64).chain([1 << 20, (1 << 20) + 1, 123_456_789, u64::MAX / 2]) {
            let b = bucket_of(v);
            assert!(b >= last || v > 5_000);
            last = b;
            let mid = bucket_value(b);
            let err = mid.abs_diff(v) as f64 / v.max(1) as f64;
            assert!(err <= 1.0 / SUB as f64, "{v} -> {mid}");
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
        assert_eq!(bucket_of(127), 127);
    }

    #[test]
    fn percentiles_of_1_to_100_ms() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let l = h.latency_ms();
        for (got, want) in [(l.p50, 50.0), (l.p90, 90.0), (l.p99, 99.0)] {
            assert!((got - want).abs() / want <= 0.008, "{got} vs {want}");
        }
        assert_eq!(l.max, 100.0);
        assert_eq!(l.mean, 50.5);
    }

    #[test]
    fn small_latencies_are_exact_and_empty_is_zero() {
        let h = Histogram::default();
        assert_eq!(h.latency_ms(), LatencyMs::default());
        for us in [90, 100, 110] {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.latency_ms().p50, 0.1);
        assert_eq!(h.latency_ms().max, 0.11);
    }

    #[test]
    fn a_percentile_never_exceeds_the_maximum() {
        let h = Histogram::default();
        h.record(Duration::from_micros(1_000_001));
        assert_eq!(h.percentile_micros(99.0), 1_000_001);
    }

    #[test]
    fn recorder_summarizes_per_class_and_in_total() {
        let r = Recorder::default();
        r.ok(Op::Put, Duration::from_millis(2), 1 << 20);
        r.ok(Op::Put, Duration::from_millis(4), 1 << 20);
        r.ok(Op::Get, Duration::from_millis(1), 3 << 20);
        r.error(Op::Get, "HTTP 500".into());
        r.verify_failure(Op::Get, "body differs".into());
        let (rows, total) = r.summarize(2.0);
        let names: Vec<_> = rows.iter().map(|(op, _)| op.name()).collect();
        assert_eq!(names, ["PUT", "GET"]);
        assert_eq!(rows[0].1.mib_per_sec, 1.0);
        assert_eq!(total.ops, 3);
        assert_eq!(total.bytes, 5 << 20);
        assert_eq!(total.mib_per_sec, 2.5);
        assert_eq!(total.ops_per_sec, 1.5);
        assert_eq!((total.errors, total.verify_failures), (1, 1));
        assert_eq!(r.failures(), 2);
        assert_eq!(r.first_errors(), ["GET: HTTP 500", "GET: body differs"]);
    }
}
