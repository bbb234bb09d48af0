//! The writers part: which writes are in flight, so compaction never
//! rewrites a segment that may hold shards of a write not yet committed.
//!
//! Owns the writer registry (tickets, appenders, lingering writers whose
//! commit outcome is unknown) and the horizons derived from it. It must
//! never touch metadata, drives or the engine: it only records and answers.

use std::sync::{Arc, Mutex};

use crate::error::EngineError;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The engine's writer registry (see [`WriterRegistry`]).
#[derive(Debug, Default)]
pub(crate) struct Writers {
    registry: Arc<Mutex<WriterRegistry>>,
}

impl Writers {
    /// Registers a writer that counts by time from now (repair, rebalance,
    /// compaction): segments modified after now are left alone until it is
    /// dropped.
    pub(crate) fn register_writer(&self) -> WriterTicket {
        self.register(WriterEntry {
            started_ms: Some(crate::now_ms()),
            ..WriterEntry::default()
        })
    }

    /// Registers a tracked writer (an object or part body, a part copy): it
    /// holds nothing back until its first append, and then only the
    /// segments it appended to (announced through
    /// [`WriterTicket::appender`]).
    pub(crate) fn register_body_writer(&self) -> WriterTicket {
        self.register(WriterEntry {
            tracked: true,
            ..WriterEntry::default()
        })
    }

    fn register(&self, entry: WriterEntry) -> WriterTicket {
        let mut w = lock(&self.registry);
        let id = w.next_id;
        w.next_id += 1;
        w.live.insert(id, entry);
        WriterTicket {
            registry: self.registry.clone(),
            id,
        }
    }

    /// Start of the oldest writer in flight that has begun appending (or
    /// lingers), or now if none: every shard not yet committed by a writer
    /// of this node was appended after it. What a cluster node publishes
    /// (gc.rs `publish_writer_horizon`).
    pub(crate) fn oldest_writer_ms(&self) -> u64 {
        let now = crate::now_ms();
        let mut w = lock(&self.registry);
        w.lingering.retain(|(_, until)| *until > now);
        w.live
            .values()
            .chain(w.lingering.iter().map(|(e, _)| e))
            .filter_map(|e| e.started_ms)
            .min()
            .unwrap_or(now)
    }

    /// For this node's own compaction: segments modified at or after this
    /// time may hold uncommitted shards of a write not tracked by segment
    /// (an append in progress, or a writer counting by time); now if none.
    pub(crate) fn compaction_horizon_ms(&self) -> u64 {
        let now = crate::now_ms();
        let mut w = lock(&self.registry);
        w.lingering.retain(|(_, until)| *until > now);
        w.live
            .values()
            .chain(w.lingering.iter().map(|(e, _)| e))
            .filter_map(WriterEntry::time_horizon_ms)
            .min()
            .map_or(now, |t| t.min(now))
    }

    /// Whether a tracked writer in flight (or lingering) appended to
    /// `segment` of drive `drive`: compaction must leave it alone.
    pub(crate) fn segment_claimed(&self, drive: usize, segment: u64) -> bool {
        let now = crate::now_ms();
        let w = lock(&self.registry);
        w.live
            .values()
            .chain(
                w.lingering
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .map(|(e, _)| e),
            )
            .any(|e| e.segments.contains(&(drive, segment)))
    }
}

/// The writers in flight (object and part bodies, part copies, repair,
/// rebalance, compaction itself), so compaction can leave alone every
/// segment that may hold shards of a write not yet committed.
///
/// Invariant: a shard appended by a writer whose commit has not happened
/// (or whose outcome is unknown) lies in a segment that is either claimed by
/// that writer (`WriterEntry::segments`), or was modified at or after
/// [`Writers::compaction_horizon_ms`] (an append in progress, or a writer that
/// counts by time). Compaction skips both (gc.rs `compact_drive`).
///
/// Body writers are *tracked*: they start counting only at their first
/// append (a client that sent headers, or a few bytes, holds nothing back)
/// and they hold back only the segments they appended to, not the drive.
/// Repair, rebalance and compaction count by time, from registration.
#[derive(Debug, Default)]
pub(crate) struct WriterRegistry {
    next_id: u64,
    live: std::collections::BTreeMap<u64, WriterEntry>,
    /// Writers whose commit had an unknown outcome (a cluster that did not
    /// confirm in time): they may still commit, so they keep holding
    /// compaction back until `until` — (entry, until).
    lingering: Vec<(WriterEntry, u64)>,
}

/// One writer of the registry.
#[derive(Debug, Default)]
struct WriterEntry {
    /// When it started to count: registration (untracked), or its first
    /// append (tracked; `None` until then).
    started_ms: Option<u64>,
    /// Tracked: the segments it appended to are in `segments`.
    tracked: bool,
    /// Start times of its appends in progress whose segments are not in
    /// `segments` yet (≤ a few: one per chunk in flight).
    appending_ms: Vec<u64>,
    /// (drive index, segment id) of every segment it appended to.
    segments: std::collections::BTreeSet<(usize, u64)>,
    /// When dropped, keep counting for this long (ms).
    linger_ms: Option<u64>,
}

impl WriterEntry {
    /// The time before which nothing of this writer can have been appended
    /// to a segment it does not claim; `None`: it holds no time back.
    fn time_horizon_ms(&self) -> Option<u64> {
        if self.tracked {
            self.appending_ms.iter().copied().min()
        } else {
            self.started_ms
        }
    }
}

/// How long a writer whose commit outcome is unknown keeps holding
/// compaction back: far beyond any election or commit timeout.
pub(crate) const UNKNOWN_OUTCOME_LINGER_MS: u64 = 60 * 60 * 1000;

/// Registration of one writer; deregisters on drop (the request ended:
/// committed, failed, or dropped by a client that went away or timed out).
#[derive(Debug)]
pub(crate) struct WriterTicket {
    registry: Arc<Mutex<WriterRegistry>>,
    id: u64,
}

impl WriterTicket {
    /// When dropped, keep counting this writer as in flight for `ms` more:
    /// its commit may still apply (unknown outcome).
    pub(crate) fn linger(&self, ms: u64) {
        let mut w = lock(&self.registry);
        if let Some(entry) = w.live.get_mut(&self.id) {
            entry.linger_ms = Some(ms);
        }
    }

    /// [`WriterTicket::linger`] for an hour if `e` leaves the commit's
    /// outcome unknown (a cluster that did not confirm in time).
    pub(crate) fn linger_if_unknown(&self, e: &EngineError) {
        if matches!(e, EngineError::Unavailable(_)) {
            self.linger(UNKNOWN_OUTCOME_LINGER_MS);
        }
    }

    /// A handle for the tasks that append this writer's shards.
    pub(crate) fn appender(&self) -> WriterAppender {
        WriterAppender {
            registry: self.registry.clone(),
            id: self.id,
        }
    }
}

impl Drop for WriterTicket {
    fn drop(&mut self) {
        let mut w = lock(&self.registry);
        if let Some(entry) = w.live.remove(&self.id)
            && let Some(ms) = entry.linger_ms
            && entry.started_ms.is_some()
        {
            w.lingering
                .push((entry, crate::now_ms().saturating_add(ms)));
        }
    }
}

/// Lets the chunk tasks of a tracked writer announce their appends (see
/// [`WriterAppender::begin`]). Holds no registration itself: appends made
/// after the ticket is gone belong to a write that can no longer commit.
#[derive(Clone, Debug)]
pub(crate) struct WriterAppender {
    registry: Arc<Mutex<WriterRegistry>>,
    id: u64,
}

impl WriterAppender {
    /// Call before appending shards: from now until the returned guard is
    /// dropped, compaction keeps clear of every segment modified since
    /// (the append's segment is not known before it happens). The writer
    /// starts counting here if this is its first append.
    pub(crate) fn begin(&self) -> AppendGuard {
        let now = crate::now_ms();
        let mut w = lock(&self.registry);
        if let Some(entry) = w.live.get_mut(&self.id) {
            debug_assert!(entry.tracked, "only tracked writers announce appends");
            // The earliest start of any of its appends: another task's
            // `begin` may have taken the lock first with a later `now`
            // (and the wall clock may step back).
            let started = entry.started_ms.get_or_insert(now);
            *started = (*started).min(now);
            entry.appending_ms.push(now);
        }
        AppendGuard {
            appender: self.clone(),
            started_ms: now,
            segments: Vec::new(),
        }
    }
}

/// One batch of appends in progress (see [`WriterAppender::begin`]). On
/// drop — after success or failure alike — the segments appended to become
/// the writer's claims, and the time it held back is released.
#[derive(Debug)]
pub(crate) struct AppendGuard {
    appender: WriterAppender,
    started_ms: u64,
    segments: Vec<(usize, u64)>,
}

impl AppendGuard {
    /// Records that a shard was appended to `segment` of drive `drive`.
    pub(crate) fn appended(&mut self, drive: usize, segment: u64) {
        if !self.segments.contains(&(drive, segment)) {
            self.segments.push((drive, segment));
        }
    }
}

impl Drop for AppendGuard {
    fn drop(&mut self) {
        let mut w = lock(&self.appender.registry);
        if let Some(entry) = w.live.get_mut(&self.appender.id) {
            // Claims first, then the time is released: under one lock, so
            // compaction never sees neither.
            entry.segments.extend(self.segments.drain(..));
            if let Some(i) = entry
                .appending_ms
                .iter()
                .position(|t| *t == self.started_ms)
            {
                entry.appending_ms.swap_remove(i);
            }
            debug_assert!(entry.started_ms.is_some_and(|s| s <= self.started_ms));
        }
    }
}
