//! Opening the engine: checks the configuration and the drives' identity,
//! builds the parts, writes the format record on first start, recovers
//! what a crash left (`recovery`), and starts the heal of replaced drives
//! (`repair`). It must never serve a request or write client data.

use std::sync::Arc;

use cairn_crypto::DataRootKey;

use crate::drive::{LocalDrive, ShardStore};
use crate::engine::{Engine, EngineConfig, Inner};
use crate::error::{EngineError, EngineResult};
use crate::meta::{MetaStore, System};
use crate::metrics::EngineMetrics;
use crate::parts::chunks::Chunks;
use crate::parts::drives::DriveSet;
use crate::parts::jobs::Jobs;
use crate::parts::keys::AccessKeyVault;
use crate::parts::objects::Objects;
use crate::parts::writers::Writers;

impl Engine {
    /// Opens (creating on first start) the metadata store and all drives.
    pub fn open(
        config: EngineConfig,
        root: &DataRootKey,
        registry: &prometheus::Registry,
    ) -> EngineResult<Engine> {
        config.validate()?;
        let metrics = EngineMetrics::register(registry)?;
        let drives = Self::local_drives(&config, &metrics)?;
        Self::open_with_stores(config, root, metrics, drives)
    }

    /// The configured local drives, opened (up to `parity_shards` missing
    /// ones stand in as unavailable).
    pub(crate) fn local_drives(
        config: &EngineConfig,
        metrics: &EngineMetrics,
    ) -> EngineResult<Vec<Arc<dyn ShardStore>>> {
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
        Ok(drives)
    }

    /// Opens the engine on the given shard stores (one per configured drive,
    /// in drive order): for tests that wrap drives with fault injection, and
    /// for other kinds of stores.
    pub fn open_with_stores(
        config: EngineConfig,
        root: &DataRootKey,
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
        let meta = Arc::new(MetaStore::open_sealed(&config.meta_dir, root)?);
        Self::open_on(config, root, metrics, drives, meta)
    }

    /// Opens the engine on an open metadata store and on `drives`, which
    /// may include other nodes' drives (a cluster: `drives` is then every
    /// drive of the cluster in cluster order — its index is the drive id in
    /// shard locations — and `meta` has a committer, see
    /// [`MetaStore::set_committer`]). `config.drive_dirs` is not used here.
    pub fn open_on(
        config: EngineConfig,
        root: &DataRootKey,
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
        let (placement_ids, placement_drives) =
            crate::parts::drives::placement_of(&drives, &config.placement_excluded_nodes);
        if placement_ids.len() < shards {
            return Err(too_few(placement_ids.len(), " outside the drained nodes"));
        }
        let first_start = meta.get::<System>("format")?.is_none();
        let identities = crate::drive_identity::check_drives(
            &meta,
            &crate::drive_identity::MarkerKey::derive(root),
            &drives,
            first_start,
        )?;
        let inner = Inner {
            drives: DriveSet::new(
                drives,
                identities,
                (placement_ids, placement_drives),
                &metrics,
            ),
            chunks: Chunks::new(
                root,
                config.data_shards,
                config.parity_shards,
                config.chunk_workers_max,
            )?,
            objects: Objects::new(meta.clone(), metrics.meta_conflicts.clone()),
            writers: Writers::default(),
            jobs: Jobs::default(),
            keys: AccessKeyVault::new(root),
            meta,
            metrics,
            config,
        };
        inner.init_format()?;
        inner.recover_on_open(first_start)?;
        let engine = Engine {
            inner: Arc::new(inner),
        };
        if !engine.inner.drives.needing_heal().is_empty() {
            engine.start_heal();
        }
        Ok(engine)
    }
}

impl Inner {
    /// Writes the data directory's format record on first start.
    pub(crate) fn init_format(&self) -> EngineResult<()> {
        if self.meta.get::<System>("format")?.is_some() {
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
        b.put::<System>("format", &value);
        match self.meta.write(b) {
            // Another node of the cluster wrote it first.
            Err(EngineError::GuardFailed(_)) => Ok(()),
            r => r,
        }
    }
}
