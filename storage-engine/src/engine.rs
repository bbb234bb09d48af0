//! The engine: opens metadata and drives, and owns bucket, credential and
//! object-level operations. Object data paths live in `put`, `get`, `list`
//! and `multipart`; the drives' identity check at open in `drive_identity`.

use std::path::PathBuf;
use std::sync::Arc;

use cairn_dedup::ChunkerConfig;

use crate::error::{EngineError, EngineResult};
use crate::meta::{MetaStore, prefix_successor};
use crate::metrics::EngineMetrics;
use crate::parts::chunks::Chunks;
use crate::parts::drives::DriveSet;
use crate::parts::jobs::Jobs;
use crate::parts::keys::AccessKeyVault;
use crate::parts::objects::Objects;
use crate::parts::writers::Writers;
use crate::records::{BucketRecord, ManifestRef, ObjectVersion};

/// Everything the engine needs to open.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// RocksDB directory (`<data-dir>/meta` by default).
    pub meta_dir: PathBuf,
    /// One directory per drive; the index in this list is the drive's id and
    /// must stay stable (shard locations refer to it).
    pub drive_dirs: Vec<PathBuf>,
    pub data_shards: usize,
    pub parity_shards: usize,
    pub chunker: ChunkerConfig,
    pub segment_size_max_bytes: u64,
    /// Chunks being encoded or decoded at once across all requests: bounds
    /// the engine's working memory to roughly this many × 2 × max chunk size.
    pub chunk_workers_max: usize,
    /// PutObject bodies up to this size are stored sealed inside their
    /// metadata record instead of as erasure-coded chunks (0: never). See
    /// "Small objects" in docs/ARCHITECTURE.md for the measurement.
    pub inline_max_bytes: usize,
    /// Cluster nodes whose drives new shards no longer go to (being
    /// drained before removal); a rebalance moves their shards off.
    pub placement_excluded_nodes: Vec<u16>,
    /// How long after opening with a replaced drive the automatic heal
    /// starts: the server is serving by then, and status shows the drive
    /// `replaced` before the rebuild load begins.
    pub heal_start_delay: std::time::Duration,
}

impl EngineConfig {
    /// The embedded default layout under one data directory: metadata in
    /// `meta/`, six drives `drives/0..5`, Reed–Solomon 4+2.
    pub fn single_dir(data_dir: &std::path::Path) -> Self {
        EngineConfig {
            meta_dir: data_dir.join("meta"),
            drive_dirs: (0..6)
                .map(|i| data_dir.join("drives").join(i.to_string()))
                .collect(),
            data_shards: 4,
            parity_shards: 2,
            chunker: ChunkerConfig::default(),
            segment_size_max_bytes: 256 << 20,
            chunk_workers_max: 8,
            inline_max_bytes: INLINE_MAX_BYTES_DEFAULT,
            placement_excluded_nodes: Vec::new(),
            heal_start_delay: HEAL_START_DELAY_DEFAULT,
        }
    }

    pub(crate) fn validate(&self) -> EngineResult<()> {
        let shards = self.data_shards + self.parity_shards;
        if self.data_shards == 0 {
            return Err(EngineError::Config("data shards must be at least 1".into()));
        }
        if shards > 255 {
            return Err(EngineError::Config("at most 255 shards per chunk".into()));
        }
        self.chunker
            .validate()
            .map_err(|e| EngineError::Config(format!("chunker: {e}")))?;
        if self.chunk_workers_max == 0 {
            return Err(EngineError::Config(
                "chunk_workers_max must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Default [`EngineConfig::heal_start_delay`].
pub const HEAL_START_DELAY_DEFAULT: std::time::Duration = std::time::Duration::from_secs(10);

/// Default [`EngineConfig::inline_max_bytes`].
pub const INLINE_MAX_BYTES_DEFAULT: usize = 4096;

/// Information about a bucket.
#[derive(Clone, Debug)]
pub struct BucketInfo {
    pub name: String,
    pub created_ms: u64,
}

/// The engine's state: the metadata store, the config and the metrics,
/// and one of each part (`parts/`), which own everything else.
pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    /// Shared with the cluster's state machine when this is a replica.
    pub(crate) meta: Arc<MetaStore>,
    pub(crate) metrics: EngineMetrics,
    pub(crate) drives: DriveSet,
    pub(crate) chunks: Chunks,
    pub(crate) objects: Objects,
    pub(crate) writers: Writers,
    pub(crate) jobs: Jobs,
    pub(crate) keys: AccessKeyVault,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("meta_dir", &self.config.meta_dir)
            .field("drives", &self.drives.stores.len())
            .finish_non_exhaustive()
    }
}

/// The storage engine. Cheap to clone (an `Arc`).
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// Runs blocking engine work (RocksDB writes, drive I/O) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> EngineResult<T> + Send + 'static,
) -> EngineResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(EngineError::join)?
}

impl Engine {
    /// On a cluster node, waits until this node has applied every metadata
    /// change committed before the call, so the request that follows reads
    /// what any node acknowledged (read-after-write across nodes). Free on
    /// a single node.
    pub async fn read_barrier(&self) -> EngineResult<()> {
        self.inner.meta.read_barrier().await
    }

    /// Changes when a cluster node installs a metadata snapshot, and is odd
    /// while it does (the metadata is then partly imported): a reader that
    /// caches metadata compares it before and after reading.
    pub fn metadata_import_generation(&self) -> u64 {
        self.inner.meta.import_generation()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Ready to serve: metadata readable and enough drives usable for a
    /// write to reach its quorum. `Ok` carries what is degraded (one line
    /// per drive that is not ok: missing, replaced and healing, foreign,
    /// faulty) — the server still serves, from parity where it must; taking
    /// it out of a load balancer would only make the data unavailable.
    pub fn readiness(&self) -> Result<Vec<String>, String> {
        self.inner
            .meta
            .system("format")
            .map_err(|e| format!("metadata store: {e}"))?;
        let mut degraded = Vec::new();
        let mut down = 0;
        for (i, d) in self.inner.drives.stores.iter().enumerate() {
            let state = self.inner.drive_state(i);
            let what = match &state {
                crate::DriveState::Ok => continue,
                crate::DriveState::Missing => "is missing".to_owned(),
                crate::DriveState::Replaced { healing: true } => "was replaced: healing".to_owned(),
                crate::DriveState::Replaced { healing: false } => {
                    "was replaced: needs heal".to_owned()
                }
                crate::DriveState::Foreign { reason } => format!("is refused: {reason}"),
                crate::DriveState::Faulty => "is marked faulty".to_owned(),
            };
            if !d.present() || !self.inner.drives.usable(i) {
                down += 1;
            }
            degraded.push(format!("drive {i} ({}) {what}", d.describe()));
        }
        let usable = self.inner.drives.stores.len() - down;
        let (k, m) = (
            self.inner.config.data_shards,
            self.inner.config.parity_shards,
        );
        let quorum = self.inner.write_quorum(k, m);
        if usable < quorum {
            return Err(format!(
                "{usable} usable drives, writes need {quorum}: {}",
                degraded.join("; ")
            ));
        }
        Ok(degraded)
    }

    // ---- buckets ------------------------------------------------------

    pub async fn create_bucket(&self, name: &str) -> EngineResult<()> {
        let _g = self.inner.objects.bucket_lock.lock().await;
        let inner = self.inner.clone();
        let name = name.to_owned();
        blocking(move || {
            if inner.meta.bucket(&name)?.is_some() {
                return Err(EngineError::BucketAlreadyOwnedByYou);
            }
            let id = u64::from_le_bytes(crate::random_bytes()).max(1);
            let mut b = inner.meta.batch();
            // Another node may create the same name first.
            b.guard(crate::MetaGuard::value_is(
                crate::MetaCf::Buckets,
                name.as_bytes(),
                None,
            ));
            b.put_bucket(
                &name,
                &BucketRecord {
                    id,
                    created_ms: crate::now_ms(),
                    tags: Vec::new(),
                },
            )?;
            match inner.meta.write(b) {
                Err(EngineError::GuardFailed(_)) => Err(EngineError::BucketAlreadyOwnedByYou),
                r => r,
            }
        })
        .await
    }

    pub fn bucket_info(&self, name: &str) -> EngineResult<BucketInfo> {
        let rec = self.inner.objects.bucket(name)?;
        Ok(BucketInfo {
            name: name.to_owned(),
            created_ms: rec.created_ms,
        })
    }

    pub fn list_buckets(&self) -> EngineResult<Vec<BucketInfo>> {
        Ok(self
            .inner
            .meta
            .buckets()?
            .into_iter()
            .map(|(name, rec)| BucketInfo {
                name,
                created_ms: rec.created_ms,
            })
            .collect())
    }

    /// Deletes an empty bucket. In-progress multipart uploads are aborted
    /// (their chunk references released) as part of the deletion.
    pub async fn delete_bucket(&self, name: &str) -> EngineResult<()> {
        let _g = self.inner.objects.bucket_lock.lock().await;
        let rec = self.inner.objects.bucket(name)?;
        let inner = self.inner.clone();
        let base = rec.id.to_be_bytes();
        let has_object = blocking(move || {
            let mut it = inner
                .meta
                .range_iter(crate::meta::CF_OBJECTS, prefix_successor(&base))?;
            it.seek(base);
            let found = it.valid();
            it.status()?;
            Ok(found)
        })
        .await?;
        if has_object {
            return Err(EngineError::BucketNotEmpty);
        }
        for upload in self.bucket_upload_ids(rec.id).await? {
            match self.abort_upload_by_id(upload).await {
                Ok(()) | Err(EngineError::NoSuchUpload) => {}
                Err(e) => return Err(e),
            }
        }
        let inner = self.inner.clone();
        let name = name.to_owned();
        blocking(move || {
            let (current, unchanged) = inner.meta.bucket_guarded(&name)?;
            if current.is_none_or(|c| c.id != rec.id) {
                return Err(EngineError::NoSuchBucket);
            }
            let mut b = inner.meta.batch();
            b.guard(unchanged);
            // Still empty when applied: an object or upload committed
            // meanwhile (on another node) keeps the bucket.
            let prefix = rec.id.to_be_bytes().to_vec();
            b.guard(crate::MetaGuard::NoneWithPrefix {
                cf: crate::MetaCf::Objects,
                prefix: prefix.clone(),
            });
            b.guard(crate::MetaGuard::NoneWithPrefix {
                cf: crate::MetaCf::UploadIndex,
                prefix,
            });
            b.delete_bucket(&name)?;
            match inner.meta.write(b) {
                // The bucket record changed meanwhile (deleted, or its tags
                // set elsewhere).
                Err(EngineError::GuardFailed(0)) => match inner.meta.bucket(&name)? {
                    None => Err(EngineError::NoSuchBucket),
                    Some(_) => Err(EngineError::SourceChanged),
                },
                Err(EngineError::GuardFailed(_)) => Err(EngineError::BucketNotEmpty),
                r => r,
            }
        })
        .await
    }

    // ---- objects: metadata-only operations ------------------------------

    /// The current version of an object.
    pub fn head_object(&self, bucket: &str, key: &str) -> EngineResult<ObjectVersion> {
        let b = self.inner.objects.bucket(bucket)?;
        self.inner
            .meta
            .object(b.id, key)?
            .ok_or(EngineError::NoSuchKey)
    }

    /// Deletes an object's current version. Deleting a missing key succeeds
    /// (S3 semantics); a missing bucket does not.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> EngineResult<()> {
        let b = self.inner.objects.bucket(bucket)?;
        let _g = self
            .inner
            .objects
            .lock_keys(&(b.id, key), None::<&()>)
            .await;
        let inner = self.inner.clone();
        let key = key.to_owned();
        let bucket = bucket.to_owned();
        blocking(move || {
            let mut batch = inner.meta.batch();
            batch.delete_object(b.id, &key)?;
            inner.objects.replace_current(
                &bucket,
                b.id,
                &key,
                &batch,
                &crate::parts::objects::WriteCondition::None,
            )
        })
        .await
    }

    /// Copies an object by reference: the new version points at the same
    /// chunks (each gains a reference); no data is read or rewritten.
    /// `new_meta` replaces the metadata (REPLACE directive), else it is copied.
    pub async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        new_meta: Option<crate::records::ObjectMetadata>,
    ) -> EngineResult<ObjectVersion> {
        self.copy_object_if(
            src_bucket,
            src_key,
            dst_bucket,
            dst_key,
            new_meta,
            crate::parts::objects::WriteCondition::None,
            None,
        )
        .await
    }

    /// [`Engine::copy_object`] if `cond` holds for the destination key's
    /// current version, checked under the destination's stripe lock in the
    /// same critical section as the commit, and, with `source_version`, only
    /// if the source is still that version (else `SourceChanged`: the
    /// caller checked conditions or took metadata from an older one).
    #[allow(clippy::too_many_arguments)]
    pub async fn copy_object_if(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        new_meta: Option<crate::records::ObjectMetadata>,
        cond: crate::parts::objects::WriteCondition,
        source_version: Option<crate::records::VersionId>,
    ) -> EngineResult<ObjectVersion> {
        let src_b = self.inner.objects.bucket(src_bucket)?;
        let dst_b = self.inner.objects.bucket(dst_bucket)?;
        let _g = self
            .inner
            .objects
            .lock_keys(&(dst_b.id, dst_key), None::<&()>)
            .await;
        let inner = self.inner.clone();
        let (src_key, dst_key) = (src_key.to_owned(), dst_key.to_owned());
        let dst_bucket = dst_bucket.to_owned();
        blocking(move || {
            let (src, src_unchanged) = inner.meta.object_guarded(src_b.id, &src_key)?;
            let src = src.ok_or(EngineError::NoSuchKey)?;
            if source_version.is_some_and(|v| v != src.version_id) {
                return Err(EngineError::SourceChanged);
            }
            let entries = inner.objects.manifest_entries(&src)?;
            let mut batch = inner.meta.batch();
            // The new references are only valid while the source (and so
            // its chunks) still exists: a delete elsewhere fails this copy.
            batch.guard(src_unchanged);
            let meta = new_meta.unwrap_or_else(|| src.meta.clone());
            let version = match &src.manifest {
                // Inline bytes are copied under the new version id by
                // `put_object`: nothing to reference.
                ManifestRef::Data { .. } => ObjectVersion::new_now(
                    crate::records::VersionId::random(),
                    src.size,
                    src.etag.clone(),
                    meta,
                    src.part_sizes.clone(),
                    src.manifest.clone(),
                ),
                ManifestRef::DataElsewhere { .. } => {
                    return Err(crate::parts::objects::unresolved_inline(&src));
                }
                _ => inner.objects.build_version(
                    crate::records::VersionId::random(),
                    &mut batch,
                    &entries,
                    &[],
                    src.size,
                    src.etag.clone(),
                    meta,
                    src.part_sizes.clone(),
                )?,
            };
            batch.put_object(dst_b.id, &dst_key, &version)?;
            match inner
                .objects
                .replace_current(&dst_bucket, dst_b.id, &dst_key, &batch, &cond)
            {
                Err(EngineError::GuardFailed(0)) => Err(EngineError::SourceChanged),
                r => r,
            }?;
            Ok(version)
        })
        .await
    }
}

impl Inner {
    /// Shards a chunk write needs durable to be acknowledged: k + 1 when
    /// there is parity (one more loss survivable right away), else k.
    pub(crate) fn write_quorum(&self, k: usize, m: usize) -> usize {
        if self.meta.is_replica() {
            // A cluster keeps taking writes with up to m nodes down: k
            // shards on distinct nodes are durable, and the missing ones are
            // recorded and rebuilt by the next scrub (docs/cluster.md).
            return k;
        }
        k + m.min(1)
    }
}

impl Inner {
    /// The state of drive `d` now (see [`crate::DriveState`]); a running
    /// scrub counts as healing a replaced drive.
    pub(crate) fn drive_state(&self, d: usize) -> crate::DriveState {
        self.drives.state(d, self.jobs.scrub.status().running)
    }
}
