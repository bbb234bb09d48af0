//! # cairn-storage-engine
//!
//! Owns everything between an S3 request and the disks: metadata (RocksDB),
//! placement, the put/get orchestration of the chunk pipeline, multipart
//! state, listing and stored credentials.
//!
//! The pipeline for every byte (see docs/ARCHITECTURE.md):
//! stream → FastCDC chunks (`cairn-dedup`) → keyed BLAKE3 chunk id → dedup
//! lookup → zstd (kept raw when it does not shrink) → AES-256-GCM with a
//! per-chunk key (`cairn-crypto`) → Reed–Solomon k+m shards with checksums
//! (`cairn-erasure`) → append to segment files on k+m drives → fsync →
//! one RocksDB batch with the WAL synced → only then is the write acknowledged.
//!
//! This crate must never:
//! - know about HTTP, SigV4 or S3 XML (that is `cairn-s3-api`);
//! - acknowledge a write before its shards and metadata are durable;
//! - return bytes that failed a checksum, authentication or chunk-id check;
//! - hold a whole object in memory (bodies stream through bounded queues).
//!
//! Invariants:
//! - a chunk record's refcount equals the number of manifest entries (object
//!   versions and multipart parts) naming it; it never goes negative;
//! - a manifest only names chunks whose records exist and whose shards were
//!   durable before the manifest was written.

#![forbid(unsafe_code)]

mod access_keys;
mod bucket_documents;
mod bucket_ops;
mod codec;
mod drive;
mod drive_identity;
mod engine;
mod error;
mod gc;
mod get;
mod kms_keys;
mod kms_rewrap;
pub mod lifecycle;
mod lifecycle_pass;
mod list;
mod meta;
mod meta_command;
mod metadata_seal;
mod metrics;
mod multipart;
pub mod notifications;
mod object_lock;
mod object_ops;
mod object_tags;
mod open;
mod part_copy;
mod parts;
mod pipeline;
mod placement;
mod put;
mod rebalance;
mod records;
mod recovery;
mod repair;
mod status;
mod totals;
mod versions;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod gc_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod repair_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod versions_tests;

pub use access_keys::{
    ACCESS_KEYS_MAX, StoredAccessKey, generate_credentials, valid_access_key_id,
};
pub use bucket_documents::BucketDocument;
pub use cairn_crypto::{DataRootKey, MasterKey};
pub use cairn_dedup::{ChunkId, ChunkerConfig};
pub use drive::{LocalDrive, ScannedShard, SegmentInfo, ShardReadError, ShardStore};
pub use drive_identity::{DriveState, MARKER_FILE};
pub use engine::{BucketInfo, Engine, EngineConfig, INLINE_MAX_BYTES_DEFAULT};
pub use error::{ChunkCheck, ChunkFault, CodecError, EngineError, EngineResult};
pub use gc::{GcOptions, GcReport};
pub use get::ObjectReader;
pub use kms_keys::{
    DEFAULT_KMS_ALIAS, KMS_KEYS_MAX, KmsKeyInfo, valid_kms_alias, valid_kms_key_id,
};
pub use kms_rewrap::RewrapReport;
pub use lifecycle_pass::{LifecyclePassOptions, LifecyclePassReport};
pub use list::{BucketUsage, ListPage, ListQuery, ListedObject, ListedUpload, UploadPage};
pub use meta::{
    Buckets, Chunks, GuardedRow, InlineData, KeyRange, Manifests, MergeTable, MetaBatch,
    MetaCommitter, MetaStore, Objects, Parts, System, Table, UploadId, UploadIndex, Uploads,
    Versions,
};
pub use meta_command::{MetaCf, MetaCommand, MetaGuard, MetaOp};
pub use metadata_seal::MetadataSealReport;
pub use metrics::EngineMetrics;
pub use multipart::{CompletedPart, NewPart, PART_NUMBER_MAX, PART_SIZE_MIN_BYTES, PartsPage};
pub use object_ops::DeleteOutcome;
pub use parts::jobs::{RebalanceReport, RebalanceStatus, ScrubReport, ScrubStatus};
pub use parts::objects::WriteCondition;
pub use placement::{ClusterDrive, place_across_nodes};
pub use put::{OBJECT_SIZE_MAX_BYTES, ObjectWriter, StagedObject};
pub use rebalance::RebalanceOptions;
pub use records::{
    AccessKeyRecord, BucketGrant, DefaultRetention, KmsEnvelope, ManifestRef, ObjectLockConfig,
    ObjectMetadata, ObjectVersion, PartRecord, Retention, RetentionMode, RetentionPeriod,
    ShardLocation, UploadRecord, VersionId, VersionLock, VersionRef, Versioning,
};
pub use recovery::RecountReport;
pub use repair::ScrubOptions;
pub use status::{DriveStatus, EngineStatus};
pub use totals::{BucketTotals, StoredTotals, TotalsRecord};
pub use versions::{ListedVersion, VersionListQuery, VersionPage};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `N` random bytes from the OS. If the OS generator fails (it does not on
/// Linux once booted), falls back to hashing a process-unique counter and the
/// clock: ids must be unique, they need not be secret.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::fill(&mut out).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = blake3::Hasher::new();
        h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        h.update(&now_ms().to_le_bytes());
        h.update(&std::process::id().to_le_bytes());
        h.finalize_xof().fill(&mut out);
    }
    out
}
