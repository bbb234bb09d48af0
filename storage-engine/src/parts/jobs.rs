//! The maintenance jobs part: at most one run of each job at a time, and
//! what each is doing or did.
//!
//! Owns the one-at-a-time locks of garbage collection, scrub and rebalance,
//! their live status and reports (what the admin API shows), and the count
//! of read-repairs in flight. It must never run a job itself: `gc`,
//! `repair` and `rebalance` do, holding the lock and updating the status
//! here.

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use tokio::sync::Mutex as AsyncMutex;

/// One kind of job: its one-at-a-time lock and its status.
#[derive(Debug, Default)]
pub(crate) struct Job<S> {
    /// Held for the whole run.
    pub(crate) lock: AsyncMutex<()>,
    status: Mutex<S>,
}

impl<S: Copy> Job<S> {
    /// The current or last run's state.
    pub(crate) fn status(&self) -> S {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut S)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// The jobs part (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    /// One garbage-collection pass at a time (it keeps no status).
    pub(crate) gc: AsyncMutex<()>,
    pub(crate) scrub: Job<ScrubStatus>,
    pub(crate) rebalance: Job<RebalanceStatus>,
    /// Read-repairs in flight (bounded by `repair::READ_REPAIRS_MAX`).
    pub(crate) read_repairs: AtomicUsize,
}

/// What a scrub found and did (also the live progress of a running one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub chunks_checked: u64,
    pub shards_verified: u64,
    pub shards_missing: u64,
    pub shards_corrupt: u64,
    pub shards_repaired: u64,
    pub chunks_unrecoverable: u64,
    pub bytes_read: u64,
}

/// The state of the scrubber, for the admin API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrubStatus {
    pub running: bool,
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Chunk records when the job started (the stored totals' count;
    /// writes and garbage collection during the job move it).
    pub chunks_total_estimate: u64,
    pub report: ScrubReport,
}

/// What a rebalance did (also the live progress of a running one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RebalanceReport {
    pub chunks_checked: u64,
    /// Chunks with at least one shard off its rule drive when checked.
    pub chunks_misplaced: u64,
    pub shards_moved: u64,
    pub bytes_moved: u64,
    /// Shards that could not be read where they were (a dead node being
    /// drained, a bad copy) and were rebuilt from the others to be moved.
    pub shards_rebuilt: u64,
    /// Shards left where they are this pass: their rule drive is faulty, or
    /// they could neither be read nor rebuilt.
    pub shards_skipped: u64,
}

/// The state of the rebalancer, for the admin API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RebalanceStatus {
    pub running: bool,
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Chunk records when the job started (the stored totals' count;
    /// writes and garbage collection during the job move it).
    pub chunks_total_estimate: u64,
    pub report: RebalanceReport,
}
