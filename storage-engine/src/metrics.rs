//! Engine metrics (Prometheus). Names follow Prometheus conventions:
//! `cairn_` prefix, base units, `_total` for counters. Labels are bounded
//! (drive index, a fixed set of outcomes) — never key names, and bucket
//! names only for the largest [`crate::totals::METRICS_BUCKETS_MAX`]
//! buckets, the rest summed under `bucket="_other"`.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::error::{EngineError, EngineResult};

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> EngineResult<prometheus::IntGaugeVec> {
    reg(
        registry,
        prometheus::IntGaugeVec::new(Opts::new(name, help), &[label])
            .map_err(EngineError::metric(name))?,
    )
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    c: T,
) -> EngineResult<T> {
    registry
        .register(Box::new(c.clone()))
        .map_err(EngineError::metric("registering"))?;
    Ok(c)
}

fn counter(registry: &Registry, name: &str, help: &str) -> EngineResult<IntCounter> {
    let c = IntCounter::new(name, help).map_err(EngineError::metric(name))?;
    reg(registry, c)
}

/// Counters that show what the pipeline saves, plus integrity events.
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    /// Bytes clients stored (object and part bodies), before any saving.
    pub logical_bytes: IntCounter,
    /// Bytes of newly stored chunks after dedup and compression (sealed,
    /// before parity): what `logical_bytes` became.
    pub stored_bytes: IntCounter,
    /// Bytes written to drives for new chunks: all shards incl. parity and
    /// record headers.
    pub raw_bytes: IntCounter,
    pub chunks_new: IntCounter,
    pub chunks_dedup: IntCounter,
    pub chunks_compressed: IntCounter,
    /// Shard reads that failed, by reason (missing, corrupt, io).
    pub shard_read_errors: IntCounterVec,
    /// Chunks that needed Reed–Solomon reconstruction to read.
    pub chunks_reconstructed: IntCounter,
    /// Chunks that could not be read at all.
    pub chunks_unrecoverable: IntCounter,
    /// Shards rebuilt and rewritten (read-repair, scrub, heal).
    pub shards_repaired: IntCounter,
    /// Shards read and checked by the scrubber.
    pub scrub_shards_verified: IntCounter,
    /// Bad shards the scrubber found, by kind (missing, corrupt).
    pub scrub_shards_bad: IntCounterVec,
    /// Bytes of shards known bad (found by the current or last scrub) and
    /// not rebuilt yet: what a heal still has to write.
    pub heal_backlog_bytes: prometheus::IntGauge,
    /// Unreferenced chunk records deleted by garbage collection.
    pub gc_chunks_deleted: IntCounter,
    /// Metadata writes redone because another writer (another node of a
    /// cluster) changed the key first.
    pub meta_conflicts: IntCounter,
    /// Shards moved to the drive the placement rule picks now.
    pub shards_rebalanced: IntCounter,
    /// SSE-KMS data keys re-wrapped under their key's newest material after
    /// a rotation (`kms_rewrap.rs`).
    pub kms_data_keys_rewrapped: IntCounter,
    /// Metadata records an older version stored in plaintext, stored again
    /// sealed (`metadata_seal.rs`).
    pub metadata_records_sealed: IntCounter,
    /// Segment files rewritten (live shards moved) and deleted.
    pub gc_segments_compacted: IntCounter,
    /// Bytes of segment files given back to the filesystem.
    pub gc_bytes_reclaimed: IntCounter,
    /// Incomplete multipart uploads aborted for age.
    pub gc_uploads_expired: IntCounter,
    drive_written: IntCounterVec,
    drive_read: IntCounterVec,
    drive_faulty: prometheus::IntGaugeVec,
    /// Per drive: bytes of segment files, and free/total bytes of its filesystem.
    pub(crate) drive_segment_bytes: prometheus::IntGaugeVec,
    pub(crate) drive_fs_free_bytes: prometheus::IntGaugeVec,
    pub(crate) drive_fs_size_bytes: prometheus::IntGaugeVec,
    /// RocksDB: live SST bytes, memtable bytes, pending compaction bytes.
    pub(crate) meta_bytes: prometheus::IntGaugeVec,
    /// Segment bytes not referenced at the last GC sweep (what compaction can
    /// still give back).
    pub(crate) gc_reclaimable_bytes: prometheus::IntGauge,
    /// Scrub progress: 1 while running; chunks checked by the current/last one.
    pub(crate) scrub_running: prometheus::IntGauge,
    pub(crate) scrub_chunks_checked: prometheus::IntGauge,
    drive_fsync: HistogramVec,
    /// What is stored now, from the totals kept in the metadata (survive a
    /// restart, unlike the `cairn_pipeline_*_total` counters): objects,
    /// logical bytes, after dedup + compression + encryption, on drives,
    /// distinct chunks, small objects' bytes kept in the metadata.
    pub(crate) stored_objects: prometheus::IntGauge,
    pub(crate) stored_logical_bytes: prometheus::IntGauge,
    pub(crate) stored_bytes_now: prometheus::IntGauge,
    pub(crate) stored_raw_bytes: prometheus::IntGauge,
    pub(crate) stored_chunks: prometheus::IntGauge,
    pub(crate) stored_inline_bytes: prometheus::IntGauge,
    pub(crate) stored_noncurrent_versions: prometheus::IntGauge,
    pub(crate) stored_noncurrent_bytes: prometheus::IntGauge,
    pub(crate) stored_delete_markers: prometheus::IntGauge,
    /// Per bucket (the largest ones, then `_other`): objects, logical bytes.
    pub(crate) bucket_objects: prometheus::IntGaugeVec,
    pub(crate) bucket_logical_bytes: prometheus::IntGaugeVec,
    /// Lifecycle passes finished.
    pub(crate) lifecycle_passes: IntCounter,
    /// Lifecycle deletions and aborts done, by action (`expire_current`,
    /// `expire_noncurrent`, `remove_marker`, `abort_upload`).
    pub(crate) lifecycle_actions: IntCounterVec,
    /// Due lifecycle deletions Object Lock refused.
    pub(crate) lifecycle_skipped_locked: IntCounter,
    /// Versions and delete markers a lifecycle pass examined.
    pub(crate) lifecycle_scanned: IntCounter,
    /// Due actions found and not yet carried out (rate-limited) in the
    /// running pass.
    pub(crate) lifecycle_backlog: prometheus::IntGauge,
    /// 1 while a lifecycle pass runs.
    pub(crate) lifecycle_running: prometheus::IntGauge,
    /// When the last lifecycle pass finished (unix seconds; 0: never).
    pub(crate) lifecycle_last_pass_end: prometheus::IntGauge,
}

impl EngineMetrics {
    pub fn register(registry: &Registry) -> EngineResult<Self> {
        let vec = |name: &str, help: &str, labels: &[&str]| -> EngineResult<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .map_err(EngineError::metric(name))?;
            reg(registry, c)
        };
        let fsync = HistogramVec::new(
            HistogramOpts::new(
                "cairn_drive_fsync_seconds",
                "Latency of segment fsyncs per drive",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["drive"],
        )
        .map_err(EngineError::metric("cairn_drive_fsync_seconds"))?;
        let gauge = |name: &str, help: &str| -> EngineResult<prometheus::IntGauge> {
            reg(
                registry,
                prometheus::IntGauge::new(name, help).map_err(EngineError::metric(name))?,
            )
        };
        let metrics = EngineMetrics {
            stored_objects: gauge(
                "cairn_stored_objects",
                "Objects stored now (current versions), kept in the metadata",
            )?,
            stored_logical_bytes: gauge(
                "cairn_stored_logical_bytes",
                "Sum of the sizes of the objects stored now (what clients see)",
            )?,
            stored_bytes_now: gauge(
                "cairn_stored_bytes",
                "Bytes stored now after dedup, compression and encryption (each chunk once, plus small objects kept in the metadata), before parity",
            )?,
            stored_raw_bytes: gauge(
                "cairn_stored_raw_bytes",
                "Bytes stored now on drives: every chunk's shards incl. parity and shard headers, plus small objects kept in the metadata",
            )?,
            stored_chunks: gauge(
                "cairn_stored_chunks",
                "Distinct chunks stored now (including unreferenced ones awaiting garbage collection)",
            )?,
            stored_inline_bytes: gauge(
                "cairn_stored_inline_bytes",
                "Sealed bytes of small objects kept in the metadata store (part of cairn_stored_bytes)",
            )?,
            stored_noncurrent_versions: gauge(
                "cairn_stored_noncurrent_versions",
                "Older versions of keys in versioned buckets kept now (delete markers not counted)",
            )?,
            stored_noncurrent_bytes: gauge(
                "cairn_stored_noncurrent_bytes",
                "Sum of the sizes of the older versions kept now (what clients could read back; chunks shared with other versions are stored once)",
            )?,
            stored_delete_markers: gauge(
                "cairn_stored_delete_markers",
                "Delete markers kept now in versioned buckets",
            )?,
            bucket_objects: gauge_vec(
                registry,
                "cairn_bucket_objects",
                "Objects stored now per bucket (the 100 largest buckets; the rest summed as bucket=\"_other\")",
                "bucket",
            )?,
            bucket_logical_bytes: gauge_vec(
                registry,
                "cairn_bucket_logical_bytes",
                "Sum of object sizes stored now per bucket (the 100 largest buckets; the rest summed as bucket=\"_other\")",
                "bucket",
            )?,
            logical_bytes: counter(
                registry,
                "cairn_pipeline_logical_bytes_total",
                "Bytes of object data received from clients, before dedup and compression",
            )?,
            stored_bytes: counter(
                registry,
                "cairn_pipeline_stored_bytes_total",
                "Bytes of new chunks after dedup, compression and encryption, before parity",
            )?,
            raw_bytes: counter(
                registry,
                "cairn_pipeline_raw_bytes_total",
                "Bytes written to drives for new chunks, including parity shards and shard headers",
            )?,
            chunks_new: counter(
                registry,
                "cairn_pipeline_chunks_stored_total",
                "Chunks stored for the first time",
            )?,
            chunks_dedup: counter(
                registry,
                "cairn_pipeline_chunks_deduplicated_total",
                "Chunks that were already stored and only gained a reference",
            )?,
            chunks_compressed: counter(
                registry,
                "cairn_pipeline_chunks_compressed_total",
                "New chunks stored compressed (the rest were incompressible and stored raw)",
            )?,
            shard_read_errors: vec(
                "cairn_shard_read_errors_total",
                "Shard reads that failed, by reason",
                &["reason"],
            )?,
            chunks_reconstructed: counter(
                registry,
                "cairn_chunks_reconstructed_total",
                "Chunk reads that needed parity to rebuild missing or corrupt shards",
            )?,
            chunks_unrecoverable: counter(
                registry,
                "cairn_chunks_unrecoverable_total",
                "Chunk reads that failed because too few intact shards remained",
            )?,
            shards_repaired: counter(
                registry,
                "cairn_shards_repaired_total",
                "Shards rebuilt from the others and rewritten (read-repair, scrub, heal)",
            )?,
            scrub_shards_verified: counter(
                registry,
                "cairn_scrub_shards_verified_total",
                "Shards read and checksum-verified by the scrubber",
            )?,
            scrub_shards_bad: vec(
                "cairn_scrub_shards_bad_total",
                "Missing or corrupt shards found by the scrubber",
                &["kind"],
            )?,
            heal_backlog_bytes: reg(
                registry,
                prometheus::IntGauge::new(
                    "cairn_heal_backlog_bytes",
                    "Shard bytes found missing or corrupt by the scrubber and not yet rebuilt",
                )
                .map_err(EngineError::metric("cairn_heal_backlog_bytes"))?,
            )?,
            shards_rebalanced: counter(
                registry,
                "cairn_shards_rebalanced_total",
                "Shards moved by a rebalance to the drive the placement rule picks now",
            )?,
            kms_data_keys_rewrapped: counter(
                registry,
                "cairn_kms_data_keys_rewrapped_total",
                "SSE-KMS data keys re-wrapped under their key's newest material after a rotation",
            )?,
            metadata_records_sealed: counter(
                registry,
                "cairn_metadata_records_sealed_total",
                "Metadata records an older version stored in plaintext, stored again sealed",
            )?,
            meta_conflicts: counter(
                registry,
                "cairn_meta_conflicts_total",
                "Metadata writes redone because another writer changed the key first",
            )?,
            gc_chunks_deleted: counter(
                registry,
                "cairn_gc_chunks_deleted_total",
                "Unreferenced chunk records deleted after their grace period",
            )?,
            gc_segments_compacted: counter(
                registry,
                "cairn_gc_segments_compacted_total",
                "Segment files whose live shards were moved and which were then deleted",
            )?,
            gc_bytes_reclaimed: counter(
                registry,
                "cairn_gc_reclaimed_bytes_total",
                "Bytes of segment files deleted by compaction (before re-written live shards)",
            )?,
            lifecycle_passes: counter(
                registry,
                "cairn_lifecycle_passes_total",
                "Lifecycle passes finished (every bucket's rules applied once)",
            )?,
            lifecycle_actions: vec(
                "cairn_lifecycle_actions_total",
                "Lifecycle deletions and aborts done, by action",
                &["action"],
            )?,
            lifecycle_skipped_locked: counter(
                registry,
                "cairn_lifecycle_skipped_locked_total",
                "Due lifecycle deletions refused because Object Lock protects the version",
            )?,
            lifecycle_scanned: counter(
                registry,
                "cairn_lifecycle_scanned_versions_total",
                "Versions and delete markers lifecycle passes examined",
            )?,
            lifecycle_backlog: gauge(
                "cairn_lifecycle_backlog",
                "Due lifecycle actions found and not yet carried out in the running pass",
            )?,
            lifecycle_running: gauge(
                "cairn_lifecycle_pass_running",
                "1 while a lifecycle pass runs",
            )?,
            lifecycle_last_pass_end: gauge(
                "cairn_lifecycle_last_pass_end_timestamp_seconds",
                "When the last lifecycle pass finished (unix seconds; 0: never)",
            )?,
            gc_uploads_expired: counter(
                registry,
                "cairn_gc_uploads_expired_total",
                "Incomplete multipart uploads aborted because they were older than the limit",
            )?,
            drive_written: vec(
                "cairn_drive_written_bytes_total",
                "Bytes appended to segment files per drive",
                &["drive"],
            )?,
            drive_read: vec(
                "cairn_drive_read_bytes_total",
                "Bytes read from segment files per drive",
                &["drive"],
            )?,
            drive_fsync: reg(registry, fsync)?,
            drive_segment_bytes: gauge_vec(
                registry,
                "cairn_drive_segment_bytes",
                "Bytes of segment files on each drive",
                "drive",
            )?,
            drive_fs_free_bytes: gauge_vec(
                registry,
                "cairn_drive_filesystem_free_bytes",
                "Free bytes (for unprivileged users) of each drive's filesystem",
                "drive",
            )?,
            drive_fs_size_bytes: gauge_vec(
                registry,
                "cairn_drive_filesystem_size_bytes",
                "Size in bytes of each drive's filesystem",
                "drive",
            )?,
            meta_bytes: gauge_vec(
                registry,
                "cairn_metadata_bytes",
                "RocksDB metadata: sst (live SST files), memtables, compaction_pending",
                "kind",
            )?,
            gc_reclaimable_bytes: reg(
                registry,
                prometheus::IntGauge::new(
                    "cairn_gc_reclaimable_bytes",
                    "Segment bytes unreferenced at the last garbage-collection sweep",
                )
                .map_err(EngineError::metric("cairn_gc_reclaimable_bytes"))?,
            )?,
            scrub_running: reg(
                registry,
                prometheus::IntGauge::new("cairn_scrub_running", "1 while a scrub runs")
                    .map_err(EngineError::metric("cairn_scrub_running"))?,
            )?,
            scrub_chunks_checked: reg(
                registry,
                prometheus::IntGauge::new(
                    "cairn_scrub_chunks_checked",
                    "Chunks checked by the running (or last) scrub",
                )
                .map_err(EngineError::metric("cairn_scrub_chunks_checked"))?,
            )?,
            drive_faulty: reg(
                registry,
                prometheus::IntGaugeVec::new(
                    Opts::new(
                        "cairn_drive_faulty",
                        "1 while a drive is marked faulty and skipped, else 0",
                    ),
                    &["drive"],
                )
                .map_err(EngineError::metric("cairn_drive_faulty"))?,
            )?,
        };
        // Bounded label sets are created up front, so dashboards and alerts
        // see a 0 rather than no series before the first event.
        for reason in ["missing", "corrupt", "io"] {
            metrics.shard_read_errors.with_label_values(&[reason]);
        }
        for kind in ["missing", "corrupt"] {
            metrics.scrub_shards_bad.with_label_values(&[kind]);
        }
        for kind in ["sst", "memtables", "compaction_pending"] {
            metrics.meta_bytes.with_label_values(&[kind]);
        }
        for v in [&metrics.bucket_objects, &metrics.bucket_logical_bytes] {
            v.with_label_values(&[crate::totals::METRICS_OTHER_BUCKETS]);
        }
        for action in [
            "expire_current",
            "expire_noncurrent",
            "remove_marker",
            "abort_upload",
        ] {
            metrics.lifecycle_actions.with_label_values(&[action]);
        }
        Ok(metrics)
    }

    /// Sets the stored-totals gauges (see `Engine::refresh_total_gauges`):
    /// the largest buckets by logical bytes one by one (ties by name), the
    /// rest summed under `_other`; buckets gone since the last call vanish.
    pub(crate) fn set_stored_totals(&self, t: &crate::totals::StoredTotals) {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.stored_objects.set(g(t.objects));
        self.stored_logical_bytes.set(g(t.logical_bytes));
        self.stored_bytes_now.set(g(t.stored_bytes));
        self.stored_raw_bytes.set(g(t.raw_bytes));
        self.stored_chunks.set(g(t.chunks));
        self.stored_inline_bytes.set(g(t.inline_bytes));
        self.stored_noncurrent_versions
            .set(g(t.noncurrent_versions));
        self.stored_noncurrent_bytes.set(g(t.noncurrent_bytes));
        self.stored_delete_markers.set(g(t.delete_markers));
        let mut by_size: Vec<&crate::totals::BucketTotals> = t.buckets.iter().collect();
        by_size.sort_by(|a, b| {
            b.logical_bytes
                .cmp(&a.logical_bytes)
                .then_with(|| a.bucket.cmp(&b.bucket))
        });
        let max = crate::totals::METRICS_BUCKETS_MAX;
        self.bucket_objects.reset();
        self.bucket_logical_bytes.reset();
        for b in by_size.iter().take(max) {
            let label = [b.bucket.as_str()];
            self.bucket_objects
                .with_label_values(&label)
                .set(g(b.objects));
            self.bucket_logical_bytes
                .with_label_values(&label)
                .set(g(b.logical_bytes));
        }
        // Always present (0 while every bucket has its own series), so
        // dashboards find the series before there are 100 buckets.
        let (objects, bytes) = by_size.iter().skip(max).fold((0u64, 0u64), |(o, l), b| {
            (
                o.saturating_add(b.objects),
                l.saturating_add(b.logical_bytes),
            )
        });
        let label = [crate::totals::METRICS_OTHER_BUCKETS];
        self.bucket_objects
            .with_label_values(&label)
            .set(g(objects));
        self.bucket_logical_bytes
            .with_label_values(&label)
            .set(g(bytes));
    }

    pub(crate) fn drive_faulty(&self, index: u16) -> prometheus::IntGauge {
        self.drive_faulty
            .with_label_values(&[index.to_string().as_str()])
    }

    pub fn drive(&self, index: u16) -> crate::drive::DriveMetrics {
        let label = index.to_string();
        crate::drive::DriveMetrics {
            bytes_written: self.drive_written.with_label_values(&[label.as_str()]),
            bytes_read: self.drive_read.with_label_values(&[label.as_str()]),
            fsync_seconds: self.drive_fsync.with_label_values(&[label.as_str()]),
        }
    }
}
