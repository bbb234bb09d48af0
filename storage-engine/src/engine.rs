//! The engine façade: `EngineConfig`, and `Engine`/`Inner`, which hold the
//! metadata store, the config, the metrics and one of each part
//! (`parts/`). Here only what needs several parts at once: readiness, the
//! write quorum, a drive's state. Opening is `open.rs`; the operations are
//! `impl Engine` blocks in `bucket_ops`, `object_ops`, `put`, `get`,
//! `list`, `multipart`, `part_copy`, `object_tags`, `access_keys`, `gc`,
//! `repair`, `rebalance`, `recovery`, `status` and `totals`.
//!
//! This module must never import an operation module: the layering is
//! parts → façade → operations (→ `open`, which calls recovery and heal).

use std::path::PathBuf;
use std::sync::Arc;

use cairn_dedup::ChunkerConfig;

use crate::error::{EngineError, EngineResult};
use crate::meta::{MetaStore, System};
use crate::metrics::EngineMetrics;
use crate::parts::chunks::Chunks;
use crate::parts::drives::DriveSet;
use crate::parts::jobs::Jobs;
use crate::parts::keys::AccessKeyVault;
use crate::parts::objects::Objects;
use crate::parts::writers::Writers;

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
    /// The length of a lifecycle rule's day in ms:
    /// [`crate::lifecycle::DAY_MS`]; tests shorten it to accelerate time
    /// through the same evaluation.
    pub lifecycle_day_ms: u64,
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
            lifecycle_day_ms: crate::lifecycle::DAY_MS,
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
    pub versioning: crate::records::Versioning,
    /// `Some` when the bucket has Object Lock.
    pub object_lock: Option<crate::records::ObjectLockConfig>,
    /// The access key id that created it; empty: not recorded.
    pub owner: String,
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
            .get::<System>("format")
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
