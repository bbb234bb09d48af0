//! The engine: opens metadata and drives, and owns bucket, credential and
//! object-level operations. Object data paths live in `put`, `get`, `list`
//! and `multipart`; the drives' identity check at open in `drive_identity`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cairn_crypto::{MasterKey, SecretSealer};
use cairn_dedup::{ChunkId, ChunkerConfig};
use cairn_erasure::ErasureCoder;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard, Semaphore};

use crate::drive::{LocalDrive, ShardStore};
use crate::error::{EngineError, EngineResult};
use crate::meta::{MetaBatch, MetaStore, prefix_successor};
use crate::metrics::EngineMetrics;
use crate::pipeline::ChunkCodec;
use crate::records::{
    BucketRecord, ChunkRefDelta, MANIFEST_BLOCK_ENTRIES, MANIFEST_INLINE_ENTRIES_MAX,
    ManifestBlock, ManifestEntry, ManifestRef, ObjectVersion,
};

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

    fn validate(&self) -> EngineResult<()> {
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

const KEY_LOCK_STRIPES: usize = 1024;

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
    fn new(gauge: prometheus::IntGauge) -> Self {
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
const CHUNK_LOCK_STRIPES: usize = 256;

/// The writers in flight (object and part bodies, part copies, repair,
/// rebalance, compaction itself), so compaction can leave alone every
/// segment that may hold shards of a write not yet committed.
///
/// Invariant: a shard appended by a writer whose commit has not happened
/// (or whose outcome is unknown) lies in a segment that is either claimed by
/// that writer (`WriterEntry::segments`), or was modified at or after
/// [`Inner::compaction_horizon_ms`] (an append in progress, or a writer that
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
    inner: Arc<Inner>,
    id: u64,
}

impl WriterTicket {
    /// When dropped, keep counting this writer as in flight for `ms` more:
    /// its commit may still apply (unknown outcome).
    pub(crate) fn linger(&self, ms: u64) {
        let mut w = self.inner.writers.lock().unwrap_or_else(|e| e.into_inner());
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
            inner: self.inner.clone(),
            id: self.id,
        }
    }
}

impl Drop for WriterTicket {
    fn drop(&mut self) {
        let mut w = self.inner.writers.lock().unwrap_or_else(|e| e.into_inner());
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
    inner: Arc<Inner>,
    id: u64,
}

impl WriterAppender {
    /// Call before appending shards: from now until the returned guard is
    /// dropped, compaction keeps clear of every segment modified since
    /// (the append's segment is not known before it happens). The writer
    /// starts counting here if this is its first append.
    pub(crate) fn begin(&self) -> AppendGuard {
        let now = crate::now_ms();
        let mut w = self.inner.writers.lock().unwrap_or_else(|e| e.into_inner());
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
        let inner = &self.appender.inner;
        let mut w = inner.writers.lock().unwrap_or_else(|e| e.into_inner());
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

pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    /// Shared with the cluster's state machine when this is a replica.
    pub(crate) meta: Arc<MetaStore>,
    /// The drives new shards may go to (not on an excluded node): their
    /// (node, drive id) for the placement rule, and their drive ids.
    pub(crate) placement_drives: Vec<crate::placement::ClusterDrive>,
    pub(crate) placement_ids: Vec<usize>,
    /// One rebalance at a time, and its progress.
    pub(crate) rebalance_lock: AsyncMutex<()>,
    pub(crate) rebalance_status: Mutex<crate::rebalance::RebalanceStatus>,
    pub(crate) drives: Vec<Arc<dyn ShardStore>>,
    /// Per drive: whether it is currently considered faulty.
    pub(crate) health: Vec<DriveHealth>,
    /// Per drive: what the identity check at open found (local drives),
    /// updated when a heal completes.
    pub(crate) identities: Vec<Mutex<crate::drive_identity::DriveIdentity>>,
    /// The heal started at open for replaced drives, if one runs.
    pub(crate) startup_heal: crate::drive_identity::StartupHeal,
    pub(crate) codec: ChunkCodec,
    coders: Mutex<HashMap<(u8, u8), Arc<ErasureCoder>>>,
    pub(crate) metrics: EngineMetrics,
    /// Serialises read-modify-write of one object key or upload id.
    key_locks: Vec<AsyncMutex<()>>,
    /// Serialises bucket creation and deletion.
    pub(crate) bucket_lock: AsyncMutex<()>,
    /// Serialise, per chunk, "the record exists → pin it" (dedup) with "the
    /// record is still unreferenced → delete it" (garbage collection).
    chunk_locks: Vec<Mutex<()>>,
    pub(crate) writers: Mutex<WriterRegistry>,
    /// One garbage-collection pass at a time.
    pub(crate) gc_lock: AsyncMutex<()>,
    /// One scrub at a time, and its progress.
    pub(crate) scrub_lock: AsyncMutex<()>,
    pub(crate) scrub_status: Mutex<crate::repair::ScrubStatus>,
    /// Read-repairs in flight (bounded by `repair::READ_REPAIRS_MAX`).
    pub(crate) read_repairs: std::sync::atomic::AtomicUsize,
    pub(crate) chunk_permits: Arc<Semaphore>,
    pub(crate) secret_sealer: SecretSealer,
    /// Serialises changes to access keys (create, delete, grants).
    pub(crate) key_lock: AsyncMutex<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("meta_dir", &self.config.meta_dir)
            .field("drives", &self.drives.len())
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

/// The lock guards of one or two stripes, taken in index order.
pub(crate) struct KeyGuards<'a> {
    _first: AsyncMutexGuard<'a, ()>,
    _second: Option<AsyncMutexGuard<'a, ()>>,
}

impl Engine {
    /// Opens (creating on first start) the metadata store and all drives.
    pub fn open(
        config: EngineConfig,
        master: &MasterKey,
        registry: &prometheus::Registry,
    ) -> EngineResult<Engine> {
        config.validate()?;
        let metrics = EngineMetrics::register(registry)?;
        let mut drives: Vec<Arc<dyn ShardStore>> = Vec::with_capacity(config.drive_dirs.len());
        let mut unavailable = 0;
        for (i, dir) in config.drive_dirs.iter().enumerate() {
            let index =
                u16::try_from(i).map_err(|_| EngineError::Config("too many drives".into()))?;
            let seg_max = config.segment_size_max_bytes;
            let drive = match LocalDrive::open(index, dir, seg_max, Some(metrics.drive(index))) {
                Ok(d) => d,
                // Up to m drives may be missing: their shards are read from
                // the others, and the status reports them.
                Err(e) if unavailable < config.parity_shards => {
                    unavailable += 1;
                    tracing::error!(drive = i, path = %dir.display(), error = %e, "drive cannot be opened; starting without it");
                    LocalDrive::unavailable(index, dir, seg_max, Some(metrics.drive(index)))
                }
                Err(e) => return Err(e),
            };
            drives.push(Arc::new(drive));
        }
        Self::open_with_stores(config, master, metrics, drives)
    }

    /// Opens the engine on the given shard stores (one per configured drive,
    /// in drive order): for tests that wrap drives with fault injection, and
    /// for other kinds of stores.
    pub fn open_with_stores(
        config: EngineConfig,
        master: &MasterKey,
        metrics: EngineMetrics,
        drives: Vec<Arc<dyn ShardStore>>,
    ) -> EngineResult<Engine> {
        config.validate()?;
        if drives.len() != config.drive_dirs.len() {
            return Err(EngineError::Config(format!(
                "{} stores for {} configured drives",
                drives.len(),
                config.drive_dirs.len()
            )));
        }
        let meta = Arc::new(MetaStore::open(&config.meta_dir)?);
        Self::open_on(config, master, metrics, drives, meta)
    }

    /// Opens the engine on an open metadata store and on `drives`, which
    /// may include other nodes' drives (a cluster: `drives` is then every
    /// drive of the cluster in cluster order — its index is the drive id in
    /// shard locations — and `meta` has a committer, see
    /// [`MetaStore::set_committer`]). `config.drive_dirs` is not used here.
    pub fn open_on(
        config: EngineConfig,
        master: &MasterKey,
        metrics: EngineMetrics,
        drives: Vec<Arc<dyn ShardStore>>,
        meta: Arc<MetaStore>,
    ) -> EngineResult<Engine> {
        config.validate()?;
        let shards = config.data_shards + config.parity_shards;
        let too_few = |usable: usize, which: &str| {
            EngineError::Config(format!(
                "{}+{} erasure coding needs at least {shards} drives{which}, {usable} configured",
                config.data_shards, config.parity_shards,
            ))
        };
        if drives.len() < shards {
            return Err(too_few(drives.len(), ""));
        }
        if drives.len() > usize::from(u16::MAX) {
            return Err(EngineError::Config("too many drives".into()));
        }
        for (i, d) in drives.iter().enumerate() {
            if usize::from(d.index()) != i {
                return Err(EngineError::Config(format!(
                    "drive {i} reports index {}",
                    d.index()
                )));
            }
        }
        let (placement_ids, placement_drives): (Vec<usize>, Vec<_>) = drives
            .iter()
            .enumerate()
            .filter(|(_, d)| !config.placement_excluded_nodes.contains(&d.node()))
            .map(|(i, d)| {
                (
                    i,
                    crate::placement::ClusterDrive {
                        node: d.node(),
                        drive: d.index(),
                    },
                )
            })
            .unzip();
        if placement_ids.len() < shards {
            return Err(too_few(placement_ids.len(), " outside the drained nodes"));
        }
        let health: Vec<DriveHealth> = (0..drives.len())
            .map(|d| DriveHealth::new(metrics.drive_faulty(d as u16)))
            .collect();
        let first_start = meta.system("format")?.is_none();
        let identities = crate::drive_identity::check_drives(
            &meta,
            &crate::drive_identity::MarkerKey::derive(master),
            &drives,
            first_start,
        )?;
        for (d, identity) in identities.iter().enumerate() {
            use crate::drive_identity::DriveIdentity;
            if matches!(
                identity,
                DriveIdentity::Refused(_) | DriveIdentity::Unavailable | DriveIdentity::Broken(_)
            ) {
                health[d].refuse();
            }
        }
        let mut coders = HashMap::new();
        let coder = ErasureCoder::new(config.data_shards, config.parity_shards)
            .map_err(|e| EngineError::Config(format!("erasure coder: {e}")))?;
        coders.insert(
            (config.data_shards as u8, config.parity_shards as u8),
            Arc::new(coder),
        );
        let inner = Inner {
            meta,
            placement_drives,
            placement_ids,
            rebalance_lock: AsyncMutex::new(()),
            rebalance_status: Mutex::new(crate::rebalance::RebalanceStatus::default()),
            drives,
            health,
            identities: identities.into_iter().map(Mutex::new).collect(),
            startup_heal: crate::drive_identity::StartupHeal::default(),
            codec: ChunkCodec::new(master),
            coders: Mutex::new(coders),
            metrics,
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| AsyncMutex::new(())).collect(),
            bucket_lock: AsyncMutex::new(()),
            chunk_locks: (0..CHUNK_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            writers: Mutex::new(WriterRegistry::default()),
            gc_lock: AsyncMutex::new(()),
            scrub_lock: AsyncMutex::new(()),
            scrub_status: Mutex::new(crate::repair::ScrubStatus::default()),
            read_repairs: std::sync::atomic::AtomicUsize::new(0),
            chunk_permits: Arc::new(Semaphore::new(config.chunk_workers_max)),
            secret_sealer: master.secret_sealer(),
            key_lock: AsyncMutex::new(()),
            config,
        };
        inner.init_format()?;
        inner.recover_on_open(first_start)?;
        let engine = Engine {
            inner: Arc::new(inner),
        };
        if !engine.inner.drives_needing_heal().is_empty() {
            engine.start_heal();
        }
        Ok(engine)
    }

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
        for (i, d) in self.inner.drives.iter().enumerate() {
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
            if !d.present() || !self.inner.drive_usable(i) {
                down += 1;
            }
            degraded.push(format!("drive {i} ({}) {what}", d.describe()));
        }
        let usable = self.inner.drives.len() - down;
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
        let _g = self.inner.bucket_lock.lock().await;
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
        let rec = self.inner.bucket(name)?;
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
        let _g = self.inner.bucket_lock.lock().await;
        let rec = self.inner.bucket(name)?;
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
        let b = self.inner.bucket(bucket)?;
        self.inner
            .meta
            .object(b.id, key)?
            .ok_or(EngineError::NoSuchKey)
    }

    /// Deletes an object's current version. Deleting a missing key succeeds
    /// (S3 semantics); a missing bucket does not.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> EngineResult<()> {
        let b = self.inner.bucket(bucket)?;
        let _g = self.inner.lock_keys(&(b.id, key), None::<&()>).await;
        let inner = self.inner.clone();
        let key = key.to_owned();
        let bucket = bucket.to_owned();
        blocking(move || {
            let mut batch = inner.meta.batch();
            batch.delete_object(b.id, &key)?;
            inner.replace_current(
                &bucket,
                b.id,
                &key,
                &batch,
                &crate::put::WriteCondition::None,
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
            crate::put::WriteCondition::None,
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
        cond: crate::put::WriteCondition,
        source_version: Option<crate::records::VersionId>,
    ) -> EngineResult<ObjectVersion> {
        let src_b = self.inner.bucket(src_bucket)?;
        let dst_b = self.inner.bucket(dst_bucket)?;
        let _g = self
            .inner
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
            let entries = inner.manifest_entries(&src)?;
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
                ManifestRef::DataElsewhere { .. } => return Err(unresolved_inline(&src)),
                _ => inner.build_version(
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
            match inner.replace_current(&dst_bucket, dst_b.id, &dst_key, &batch, &cond) {
                Err(EngineError::GuardFailed(0)) => Err(EngineError::SourceChanged),
                r => r,
            }?;
            Ok(version)
        })
        .await
    }
}

/// Attempts of [`Inner::replace_current`] before a key that keeps changing
/// under it is reported as a conflict.
const REPLACE_ATTEMPTS: usize = 8;

impl Inner {
    /// Commits `batch` — which writes the new state of `bucket/key` (a put
    /// or a delete of its record) and may carry guards of its own — after
    /// adding the release of whatever version is current, if `cond` holds
    /// for it. Guarded so that it applies only if that version is still
    /// current and the bucket is still the same bucket: a writer elsewhere
    /// (another node of a cluster) that changed either first makes this
    /// re-read and try again. Callers hold the key's stripe lock, so on a
    /// single node the guards always hold.
    pub(crate) fn replace_current(
        &self,
        bucket: &str,
        bucket_id: u64,
        key: &str,
        batch: &MetaBatch,
        cond: &crate::put::WriteCondition,
    ) -> EngineResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (b, bucket_unchanged) = self.meta.bucket_guarded(bucket)?;
            if b.is_none_or(|b| b.id != bucket_id) {
                return Err(EngineError::NoSuchBucket);
            }
            let (old, unchanged) = self.meta.object_guarded(bucket_id, key)?;
            cond.check(old.as_ref())?;
            let mut b = batch.clone();
            b.guard(bucket_unchanged);
            b.guard(unchanged);
            if let Some(old) = &old {
                self.release_version(&mut b, old)?;
            }
            match self.meta.write(b) {
                // Only the two guards added here are retried; a caller's
                // own guard (index below them) failing is the caller's.
                Err(EngineError::GuardFailed(i))
                    if i >= batch.guard_count() && attempt < REPLACE_ATTEMPTS =>
                {
                    self.metrics.meta_conflicts.inc();
                }
                r => return r,
            }
        }
    }

    fn init_format(&self) -> EngineResult<()> {
        if self.meta.system("format")?.is_some() {
            return Ok(());
        }
        let mut value = vec![1u8];
        value.extend_from_slice(&crate::random_bytes::<16>());
        let mut b = self.meta.batch();
        b.guard(crate::MetaGuard::value_is(
            crate::MetaCf::System,
            b"format",
            None,
        ));
        b.put_system("format", &value)?;
        match self.meta.write(b) {
            // Another node of the cluster wrote it first.
            Err(EngineError::GuardFailed(_)) => Ok(()),
            r => r,
        }
    }

    pub(crate) fn bucket(&self, name: &str) -> EngineResult<BucketRecord> {
        self.meta.bucket(name)?.ok_or(EngineError::NoSuchBucket)
    }

    pub(crate) fn coder(&self, k: u8, m: u8) -> EngineResult<Arc<ErasureCoder>> {
        let mut coders = self.coders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = coders.get(&(k, m)) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            ErasureCoder::new(usize::from(k), usize::from(m)).map_err(|e| {
                EngineError::Corrupt(format!("chunk has unusable {k}+{m} coding: {e}"))
            })?,
        );
        coders.insert((k, m), c.clone());
        Ok(c)
    }

    /// Whether drive `d` is usable now (not marked faulty).
    pub(crate) fn drive_usable(&self, d: usize) -> bool {
        self.health.get(d).is_some_and(|h| !h.is_faulty())
    }

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

    /// The lock stripe of one chunk id (see `chunk_locks`).
    pub(crate) fn chunk_lock(&self, id: &ChunkId) -> std::sync::MutexGuard<'_, ()> {
        let i = usize::from(id.as_bytes()[0]) % CHUNK_LOCK_STRIPES;
        self.chunk_locks[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a writer that counts by time from now (repair, rebalance,
    /// compaction): segments modified after now are left alone until it is
    /// dropped.
    pub(crate) fn register_writer(self: &Arc<Self>) -> WriterTicket {
        self.register(WriterEntry {
            started_ms: Some(crate::now_ms()),
            ..WriterEntry::default()
        })
    }

    /// Registers a tracked writer (an object or part body, a part copy): it
    /// holds nothing back until its first append, and then only the
    /// segments it appended to (announced through
    /// [`WriterTicket::appender`]).
    pub(crate) fn register_body_writer(self: &Arc<Self>) -> WriterTicket {
        self.register(WriterEntry {
            tracked: true,
            ..WriterEntry::default()
        })
    }

    fn register(self: &Arc<Self>, entry: WriterEntry) -> WriterTicket {
        let mut w = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let id = w.next_id;
        w.next_id += 1;
        w.live.insert(id, entry);
        WriterTicket {
            inner: self.clone(),
            id,
        }
    }

    /// Start of the oldest writer in flight that has begun appending (or
    /// lingers), or now if none: every shard not yet committed by a writer
    /// of this node was appended after it. What a cluster node publishes
    /// (gc.rs `publish_writer_horizon`).
    pub(crate) fn oldest_writer_ms(&self) -> u64 {
        let now = crate::now_ms();
        let mut w = self.writers.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut w = self.writers.lock().unwrap_or_else(|e| e.into_inner());
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
        let w = self.writers.lock().unwrap_or_else(|e| e.into_inner());
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

    pub(crate) fn configured_coder(&self) -> EngineResult<Arc<ErasureCoder>> {
        self.coder(
            self.config.data_shards as u8,
            self.config.parity_shards as u8,
        )
    }

    /// Locks the stripe of `a` and, if given, of `b` (in stripe order, once
    /// if they share a stripe, so two locks can never deadlock).
    pub(crate) async fn lock_keys<A: Hash + ?Sized, B: Hash + ?Sized>(
        &self,
        a: &A,
        b: Option<&B>,
    ) -> KeyGuards<'_> {
        let ia = stripe_of(a);
        let ib = b.map(stripe_of);
        match ib {
            Some(ib) if ib != ia => {
                let (lo, hi) = if ia < ib { (ia, ib) } else { (ib, ia) };
                let first = self.key_locks[lo].lock().await;
                let second = self.key_locks[hi].lock().await;
                KeyGuards {
                    _first: first,
                    _second: Some(second),
                }
            }
            _ => KeyGuards {
                _first: self.key_locks[ia].lock().await,
                _second: None,
            },
        }
    }

    /// All manifest entries of a version, in object order.
    pub(crate) fn manifest_entries(&self, v: &ObjectVersion) -> EngineResult<Vec<ManifestEntry>> {
        match &v.manifest {
            ManifestRef::Inline(entries) => Ok(entries.clone()),
            // Small objects keep their sealed bytes in the metadata:
            // they reference no chunk.
            ManifestRef::Data { .. } | ManifestRef::DataElsewhere { .. } => Ok(Vec::new()),
            ManifestRef::Blocks {
                block_first_offsets,
            } => {
                let mut out = Vec::new();
                for i in 0..block_first_offsets.len() {
                    out.extend(self.meta.manifest_block(v.version_id, i as u32)?.entries);
                }
                Ok(out)
            }
        }
    }

    /// Adds to `batch` the removal of a version's manifest blocks or inline
    /// bytes and one reference release per manifest entry.
    pub(crate) fn release_version(
        &self,
        batch: &mut MetaBatch,
        v: &ObjectVersion,
    ) -> EngineResult<()> {
        let entries = self.manifest_entries(v)?;
        match &v.manifest {
            ManifestRef::Blocks {
                block_first_offsets,
            } => {
                for i in 0..block_first_offsets.len() {
                    batch.delete_manifest_block(v.version_id, i as u32)?;
                }
            }
            ManifestRef::Data { .. } | ManifestRef::DataElsewhere { .. } => {
                batch.delete_inline_data(v.version_id)?;
            }
            ManifestRef::Inline(_) => {}
        }
        add_ref_deltas(batch, &entries, &[], -1)
    }

    /// Builds a new version record for `entries`, writing manifest blocks
    /// (if not inline) and one reference per entry into `batch`. `new_chunks`
    /// carries the records of chunks this request stored.
    /// The caller chooses the version id: a fresh random one, or for a
    /// completed multipart upload's object the upload's id, so a repeated
    /// Complete can recognise the object it made.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build_version(
        &self,
        version_id: crate::records::VersionId,
        batch: &mut MetaBatch,
        entries: &[ManifestEntry],
        new_chunks: &[(ChunkId, crate::records::ChunkRecord)],
        size: u64,
        etag: String,
        meta: crate::records::ObjectMetadata,
        part_sizes: Vec<u64>,
    ) -> EngineResult<ObjectVersion> {
        debug_assert_eq!(
            entries.iter().map(|e| u64::from(e.len)).sum::<u64>(),
            size,
            "manifest must cover the object exactly"
        );
        let manifest = write_manifest(batch, version_id, entries)?;
        add_ref_deltas(batch, entries, new_chunks, 1)?;
        Ok(ObjectVersion::new_now(
            version_id, size, etag, meta, part_sizes, manifest,
        ))
    }
}

/// A version whose inline bytes were not attached: it came from raw
/// iteration, not from [`crate::meta::MetaStore::object`] (a bug).
pub(crate) fn unresolved_inline(v: &ObjectVersion) -> EngineError {
    EngineError::Internal(format!(
        "inline data of {:?} was not read with its record",
        v.version_id
    ))
}

/// Writes a manifest inline or as blocks.
pub(crate) fn write_manifest(
    batch: &mut MetaBatch,
    version_id: crate::records::VersionId,
    entries: &[ManifestEntry],
) -> EngineResult<ManifestRef> {
    if entries.len() <= MANIFEST_INLINE_ENTRIES_MAX {
        return Ok(ManifestRef::Inline(entries.to_vec()));
    }
    let mut offsets = Vec::with_capacity(entries.len().div_ceil(MANIFEST_BLOCK_ENTRIES));
    let mut offset = 0u64;
    for (i, block) in entries.chunks(MANIFEST_BLOCK_ENTRIES).enumerate() {
        offsets.push(offset);
        offset += block.iter().map(|e| u64::from(e.len)).sum::<u64>();
        batch.put_manifest_block(
            version_id,
            i as u32,
            &ManifestBlock {
                entries: block.to_vec(),
            },
        )?;
    }
    Ok(ManifestRef::Blocks {
        block_first_offsets: offsets,
    })
}

/// One merge per distinct chunk: `sign` × (number of entries naming it). New
/// chunk records ride along with the first delta for their id.
pub(crate) fn add_ref_deltas(
    batch: &mut MetaBatch,
    entries: &[ManifestEntry],
    new_chunks: &[(ChunkId, crate::records::ChunkRecord)],
    sign: i64,
) -> EngineResult<()> {
    let mut counts: HashMap<ChunkId, i64> = HashMap::new();
    let mut order = Vec::new();
    for e in entries {
        let c = counts.entry(e.chunk).or_insert_with(|| {
            order.push(e.chunk);
            0
        });
        *c += sign;
    }
    let mut records: HashMap<ChunkId, &crate::records::ChunkRecord> = HashMap::new();
    for (id, rec) in new_chunks {
        records.entry(*id).or_insert(rec);
    }
    for id in order {
        let delta = counts.get(&id).copied().unwrap_or(0);
        batch.chunk_ref(
            &id,
            &ChunkRefDelta {
                record: records.get(&id).map(|r| (*r).clone()),
                ..ChunkRefDelta::refs(delta)
            },
        )?;
    }
    Ok(())
}

fn stripe_of<T: Hash + ?Sized>(t: &T) -> usize {
    let mut s = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut s);
    (s.finish() as usize) % KEY_LOCK_STRIPES
}
