//! The drives part: every drive the engine writes shards to, and what is
//! known about each right now.
//!
//! Owns the shard stores (in drive-id order), each drive's fault state
//! (faulty after a failed write or repeated read errors, for a cool-down),
//! what the identity check at open found (`drive_identity`), the automatic
//! heal's flags, and which drives new shards may go to (placement excludes
//! drained nodes). It must never read or write shards itself: the
//! operations do, and report back with `mark_faulty`/`read_failed`/
//! `succeeded`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::DriveState;
use crate::drive::ShardStore;
use crate::drive_identity::{DriveIdentity, StartupHeal, needs_heal_key};
use crate::error::{EngineError, EngineResult};
use crate::meta::MetaStore;
use crate::metrics::EngineMetrics;
use crate::placement::ClusterDrive;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The drives part (see the module doc).
pub(crate) struct DriveSet {
    /// Every drive, in drive-id order (an index here is the drive id in
    /// shard locations).
    pub(crate) stores: Vec<Arc<dyn ShardStore>>,
    /// Per drive: whether it is currently considered faulty.
    pub(crate) health: Vec<DriveHealth>,
    /// Per drive: what the identity check at open found (local drives),
    /// updated when a heal completes.
    identities: Vec<Mutex<DriveIdentity>>,
    /// The heal started at open for replaced drives, if one runs.
    pub(crate) startup_heal: StartupHeal,
    /// The drives new shards may go to (not on an excluded node): their
    /// (node, drive id) for the placement rule, and their drive ids.
    pub(crate) placement_drives: Vec<ClusterDrive>,
    pub(crate) placement_ids: Vec<usize>,
}

impl std::fmt::Debug for DriveSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriveSet")
            .field("drives", &self.stores.len())
            .finish_non_exhaustive()
    }
}

impl DriveSet {
    /// `identities` has one entry per drive (the identity check's result);
    /// drives it refused are faulty until a restart.
    pub(crate) fn new(
        stores: Vec<Arc<dyn ShardStore>>,
        identities: Vec<DriveIdentity>,
        (placement_ids, placement_drives): (Vec<usize>, Vec<ClusterDrive>),
        metrics: &EngineMetrics,
    ) -> Self {
        let health: Vec<DriveHealth> = (0..stores.len())
            .map(|d| DriveHealth::new(metrics.drive_faulty(d as u16)))
            .collect();
        for (d, identity) in identities.iter().enumerate() {
            if matches!(
                identity,
                DriveIdentity::Refused(_) | DriveIdentity::Unavailable | DriveIdentity::Broken(_)
            ) && let Some(h) = health.get(d)
            {
                h.refuse();
            }
        }
        DriveSet {
            stores,
            health,
            identities: identities.into_iter().map(Mutex::new).collect(),
            startup_heal: StartupHeal::default(),
            placement_drives,
            placement_ids,
        }
    }

    #[cfg(test)]
    pub(crate) fn identities_for_tests(&self) -> Vec<DriveIdentity> {
        self.identities.iter().map(|i| lock(i).clone()).collect()
    }

    /// Whether drive `d` is usable now (not marked faulty).
    pub(crate) fn usable(&self, d: usize) -> bool {
        self.health.get(d).is_some_and(|h| !h.is_faulty())
    }

    /// The state of drive `d` now (see [`DriveState`]).
    /// `scrub_running`: a full scrub is in progress (it heals too).
    pub(crate) fn state(&self, d: usize, scrub_running: bool) -> DriveState {
        let identity = self
            .identities
            .get(d)
            .map_or(DriveIdentity::Remote, |i| lock(i).clone());
        let present = self.stores.get(d).is_some_and(|s| s.present());
        match identity {
            DriveIdentity::Refused(reason) => DriveState::Foreign { reason },
            _ if !present => DriveState::Missing,
            DriveIdentity::Unavailable | DriveIdentity::Unmounted => DriveState::Missing,
            DriveIdentity::Broken(_) => DriveState::Faulty,
            DriveIdentity::NeedsHeal => DriveState::Replaced {
                healing: self.startup_heal.running.load(Ordering::Acquire) || scrub_running,
            },
            _ if !self.usable(d) => DriveState::Faulty,
            DriveIdentity::Remote | DriveIdentity::Verified => DriveState::Ok,
        }
    }

    /// Drives whose shards still have to be rebuilt onto them.
    pub(crate) fn needing_heal(&self) -> Vec<usize> {
        self.identities
            .iter()
            .enumerate()
            .filter(|(_, i)| *lock(i) == DriveIdentity::NeedsHeal)
            .map(|(d, _)| d)
            .collect()
    }

    /// Records that a full scrub rebuilt everything onto drive `d`.
    pub(crate) fn healed(&self, meta: &MetaStore, d: usize) -> EngineResult<()> {
        let Some(identity) = self.identities.get(d) else {
            return Ok(());
        };
        let mut identity = lock(identity);
        if *identity != DriveIdentity::NeedsHeal {
            return Ok(());
        }
        let index = u16::try_from(d).map_err(|_| EngineError::Internal("drive index".into()))?;
        meta.set_local(&needs_heal_key(index), None)?;
        *identity = DriveIdentity::Verified;
        tracing::info!(drive = d, "drive healed: every shard rebuilt onto it");
        Ok(())
    }
}

/// The drives new shards may go to (not on an excluded node): their ids,
/// and their (node, drive id) for the placement rule.
pub(crate) fn placement_of(
    stores: &[Arc<dyn ShardStore>],
    excluded_nodes: &[u16],
) -> (Vec<usize>, Vec<ClusterDrive>) {
    stores
        .iter()
        .enumerate()
        .filter(|(_, d)| !excluded_nodes.contains(&d.node()))
        .map(|(i, d)| {
            (
                i,
                ClusterDrive {
                    node: d.node(),
                    drive: d.index(),
                },
            )
        })
        .unzip()
}

/// How long a drive that failed a write (or kept failing reads) is skipped
/// before it is tried again.
const DRIVE_FAULT_COOLDOWN_MS: u64 = 30_000;
/// Consecutive read I/O errors that mark a drive faulty.
const DRIVE_READ_ERRORS_MAX: u32 = 3;

/// The fault state of one drive. A faulty drive is skipped: reads go to the
/// other shards, writes place fewer shards (down to the write quorum) and
/// repairs leave its shards for later. After the cool-down it is tried again;
/// a success clears the state.
#[derive(Debug)]
pub(crate) struct DriveHealth {
    faulty_until_ms: std::sync::atomic::AtomicU64,
    read_errors: std::sync::atomic::AtomicU32,
    /// Refused by the identity check at open: faulty until a restart.
    refused: std::sync::atomic::AtomicBool,
    gauge: prometheus::IntGauge,
}

impl DriveHealth {
    pub(crate) fn new(gauge: prometheus::IntGauge) -> Self {
        DriveHealth {
            faulty_until_ms: std::sync::atomic::AtomicU64::new(0),
            read_errors: std::sync::atomic::AtomicU32::new(0),
            refused: std::sync::atomic::AtomicBool::new(false),
            gauge,
        }
    }

    /// Never usable again in this process (see `drive_identity`).
    fn refuse(&self) {
        self.refused
            .store(true, std::sync::atomic::Ordering::Release);
        self.gauge.set(1);
    }

    pub(crate) fn is_faulty(&self) -> bool {
        let until = self
            .faulty_until_ms
            .load(std::sync::atomic::Ordering::Acquire);
        // The common case (never faulty) costs two loads: no clock, no gauge.
        if until == 0 {
            return self.refused.load(std::sync::atomic::Ordering::Relaxed);
        }
        if self.refused.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let faulty = crate::now_ms() < until;
        if !faulty {
            self.gauge.set(0); // cool-down over
        }
        faulty
    }

    pub(crate) fn mark_faulty(&self, drive: usize, why: &dyn std::fmt::Display) {
        let was = self.is_faulty();
        self.faulty_until_ms.store(
            crate::now_ms() + DRIVE_FAULT_COOLDOWN_MS,
            std::sync::atomic::Ordering::Release,
        );
        self.gauge.set(1);
        if !was {
            tracing::error!(drive, error = %why, "drive marked faulty; skipping it for {} s", DRIVE_FAULT_COOLDOWN_MS / 1000);
        }
    }

    pub(crate) fn read_failed(&self, drive: usize, why: &dyn std::fmt::Display) {
        let n = self
            .read_errors
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        if n >= DRIVE_READ_ERRORS_MAX {
            self.mark_faulty(drive, why);
        }
    }

    /// Ends the cool-down now (tests: "the drive was replaced").
    #[cfg(test)]
    pub(crate) fn succeeded_after_cooldown_for_tests(&self) {
        self.faulty_until_ms
            .store(0, std::sync::atomic::Ordering::Release);
        self.succeeded();
    }

    pub(crate) fn succeeded(&self) {
        // Only write when there is something to reset: this runs on every
        // shard read, and a store would bounce the cache line between cores.
        if self.refused.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if self.read_errors.load(std::sync::atomic::Ordering::Relaxed) != 0 {
            self.read_errors
                .store(0, std::sync::atomic::Ordering::Release);
        }
        if self
            .faulty_until_ms
            .load(std::sync::atomic::Ordering::Acquire)
            != 0
            && !self.is_faulty()
        {
            self.faulty_until_ms
                .store(0, std::sync::atomic::Ordering::Release);
            self.gauge.set(0);
        }
    }
}
