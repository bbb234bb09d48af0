//! Point-in-time gauges for operators: space per drive and filesystem,
//! drive states (see `drive_identity`), metadata size, scrub progress. Refreshed when `/metrics` is scraped
//! ([`Engine::refresh_gauges`]), so they cost nothing between scrapes. And
//! the stored totals (`totals.rs` keeps them in the metadata): read, checked
//! against a recount, and turned into gauges.

use crate::engine::Engine;
use crate::error::{EngineError, EngineResult};
use crate::meta::Buckets;
use crate::totals::StoredTotals;

/// One drive, as `cairn admin status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveStatus {
    pub index: usize,
    pub path: std::path::PathBuf,
    pub present: bool,
    pub faulty: bool,
    /// This node's own drive (its marker checked here), not another node's.
    pub local: bool,
    /// Ok, missing, replaced (healing), foreign or faulty.
    pub state: crate::DriveState,
    pub segment_bytes: u64,
    pub fs_free_bytes: u64,
    pub fs_size_bytes: u64,
}

/// A snapshot of the engine for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineStatus {
    pub data_shards: usize,
    pub parity_shards: usize,
    pub drives: Vec<DriveStatus>,
    /// What is stored now (the totals kept in the metadata, so they survive
    /// restarts): objects, their bytes as clients see them, after dedup +
    /// compression + encryption, and on the drives with parity.
    pub objects: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    pub raw_bytes: u64,
    /// Older versions kept by versioning (counted in `objects` and
    /// `logical_bytes` too), and delete markers.
    pub noncurrent_versions: u64,
    pub noncurrent_bytes: u64,
    pub delete_markers: u64,
    pub metadata_sst_bytes: u64,
    pub heal_backlog_bytes: u64,
    pub scrub: crate::ScrubStatus,
}

impl Engine {
    /// Drives, space, pipeline savings and scrub state (refreshes the gauges).
    pub fn status(&self) -> EngineStatus {
        self.refresh_gauges();
        let totals = self.stored_totals();
        let m = &self.inner.metrics;
        let cfg = &self.inner.config;
        let gauge = |v: &prometheus::IntGaugeVec, d: usize| {
            u64::try_from(v.with_label_values(&[d.to_string().as_str()]).get()).unwrap_or(0)
        };
        let drives = self
            .inner
            .drives
            .stores
            .iter()
            .enumerate()
            .map(|(d, store)| DriveStatus {
                index: d,
                path: store
                    .local_dir()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|| store.describe().into()),
                present: store.present(),
                faulty: !self.inner.drives.usable(d),
                local: store.local_dir().is_some(),
                state: self.inner.drive_state(d),
                segment_bytes: gauge(&m.drive_segment_bytes, d),
                fs_free_bytes: gauge(&m.drive_fs_free_bytes, d),
                fs_size_bytes: gauge(&m.drive_fs_size_bytes, d),
            })
            .collect();
        EngineStatus {
            data_shards: cfg.data_shards,
            parity_shards: cfg.parity_shards,
            drives,
            objects: totals.objects,
            logical_bytes: totals.logical_bytes,
            stored_bytes: totals.stored_bytes,
            raw_bytes: totals.raw_bytes,
            noncurrent_versions: totals.noncurrent_versions,
            noncurrent_bytes: totals.noncurrent_bytes,
            delete_markers: totals.delete_markers,
            metadata_sst_bytes: self.inner.meta.property_sum("rocksdb.total-sst-files-size"),
            heal_backlog_bytes: u64::try_from(m.heal_backlog_bytes.get()).unwrap_or(0),
            scrub: self.scrub_status(),
        }
    }

    /// Updates the gauges that are read from the system rather than counted
    /// as work happens. Cheap: one directory listing and one `statvfs` per
    /// drive, three RocksDB properties.
    pub fn refresh_gauges(&self) {
        let m = &self.inner.metrics;
        self.refresh_total_gauges();
        for (d, store) in self.inner.drives.stores.iter().enumerate() {
            let label = d.to_string();
            // Another node's drives report on that node's /metrics.
            let Some(dir) = store.local_dir() else {
                continue;
            };
            if let Ok(segments) = store.segments() {
                let bytes: u64 = segments.iter().map(|s| s.len_bytes).sum();
                m.drive_segment_bytes
                    .with_label_values(&[label.as_str()])
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            if let Ok(st) = rustix::fs::statvfs(dir) {
                let frsize = st.f_frsize.max(1);
                let free = st.f_bavail.saturating_mul(frsize);
                let size = st.f_blocks.saturating_mul(frsize);
                m.drive_fs_free_bytes
                    .with_label_values(&[label.as_str()])
                    .set(i64::try_from(free).unwrap_or(i64::MAX));
                m.drive_fs_size_bytes
                    .with_label_values(&[label.as_str()])
                    .set(i64::try_from(size).unwrap_or(i64::MAX));
            }
            // Keep the faulty gauge current even when nothing touched the drive.
            let _ = self.inner.drives.usable(d);
        }
        for (kind, prop) in [
            ("sst", "rocksdb.total-sst-files-size"),
            ("memtables", "rocksdb.cur-size-all-mem-tables"),
            (
                "compaction_pending",
                "rocksdb.estimate-pending-compaction-bytes",
            ),
        ] {
            m.meta_bytes
                .with_label_values(&[kind])
                .set(i64::try_from(self.inner.meta.property_sum(prop)).unwrap_or(i64::MAX));
        }
        let scrub = self.scrub_status();
        m.scrub_running.set(i64::from(scrub.running));
        m.scrub_chunks_checked
            .set(i64::try_from(scrub.report.chunks_checked).unwrap_or(i64::MAX));
    }
}

impl Engine {
    /// What is stored now, everything and per bucket: the totals kept in the
    /// metadata (see the module docs). Zeros, logged, if the metadata cannot
    /// be read.
    pub fn stored_totals(&self) -> StoredTotals {
        self.try_stored_totals().unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading the stored totals failed");
            StoredTotals::default()
        })
    }

    /// [`Engine::stored_totals`], failing if the metadata cannot be read.
    pub fn try_stored_totals(&self) -> EngineResult<StoredTotals> {
        let held = self.inner.meta.totals()?;
        let buckets = self.inner.meta.page_after::<Buckets>(None, usize::MAX)?;
        Ok(StoredTotals::from_records(
            &held.global,
            &held.buckets,
            &buckets,
        ))
    }

    /// Recounts the totals from the object, inline-data and chunk records
    /// and compares them with the ones kept, both read from one consistent
    /// snapshot of the metadata (so writes in flight do not matter). An
    /// error describes the first difference. For tests and `fsck`-style
    /// checks: it reads every record.
    pub fn check_stored_totals(&self) -> EngineResult<()> {
        let (kept, recounted) = self.inner.meta.kept_and_recounted_totals()?;
        let (kept, recounted) = (kept.normalised(), recounted.normalised());
        if kept.global != recounted.global {
            return Err(EngineError::Corrupt(format!(
                "stored totals {:?} differ from a recount {:?}",
                kept.global, recounted.global
            )));
        }
        if kept.buckets != recounted.buckets {
            let ids: std::collections::BTreeSet<_> = kept
                .buckets
                .keys()
                .chain(recounted.buckets.keys())
                .collect();
            for id in ids {
                let (a, b) = (kept.buckets.get(id), recounted.buckets.get(id));
                if a != b {
                    return Err(EngineError::Corrupt(format!(
                        "bucket {id:016x}: stored totals {a:?} differ from a recount {b:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Sets the `cairn_stored_*` and `cairn_bucket_*` gauges from the kept
    /// totals (call when `/metrics` is scraped). Cost: one read per bucket
    /// record and per bucket totals record.
    pub fn refresh_total_gauges(&self) {
        let totals = match self.try_stored_totals() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "stored totals not readable; gauges not refreshed");
                return;
            }
        };
        self.inner.metrics.set_stored_totals(&totals);
    }
}
