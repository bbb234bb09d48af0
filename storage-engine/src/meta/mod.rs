//! The metadata store: RocksDB with one column family per record kind,
//! each read and written as a typed [`Table`] (`tables/`, one file per
//! column family with its key layout and codec).
//!
//! | column family  | table           | key                                         | value            |
//! |----------------|-----------------|---------------------------------------------|------------------|
//! | `buckets`      | [`Buckets`]     | bucket name (UTF-8)                         | [`BucketRecord`] |
//! | `objects`      | [`Objects`]     | bucket id (u64 BE) ++ object key (UTF-8)    | [`ObjectVersion`] |
//! | `manifests`    | [`Manifests`]   | version id (16) ++ block index (u32 BE)     | [`ManifestBlock`] |
//! | `inline_data`  | [`InlineData`]  | version id (16)                             | sealed bytes of a small object ([`ManifestRef::DataElsewhere`]) |
//! | `chunks`       | [`Chunks`]      | chunk id (32)                               | [`ChunkRecord`], updated by merge of [`ChunkRefDelta`] |
//! | `uploads`      | [`Uploads`]     | upload id (16)                              | [`UploadRecord`] |
//! | `upload_index` | [`UploadIndex`] | bucket id (u64 BE) ++ key ++ 0x00 ++ upload id | empty         |
//! | `parts`        | [`Parts`]       | upload id (16) ++ part number (u32 BE)      | [`PartRecord`]   |
//! | `system`       | [`System`]      | ASCII name                                  | per entry; `totals` and `totals/bucket/<id hex>`: [`TotalsRecord`], updated by merge (`totals.rs`); `lifecycle/<bucket id, 16 hex>`: a bucket's lifecycle rules (`lifecycle.rs` format 1, `lifecycle_pass.rs`) |
//! | `local`        | —               | ASCII name (this node only, never replicated) | per entry      |
//!
//! This module owns opening the store (options, merge operators), the
//! generic reads (`get`, `get_guarded`, `page`, `page_after`,
//! `page_guarded`, `keys`, `for_each`), the batch ([`MetaBatch`]: `put`,
//! `delete`, `merge`, guards), and writing: [`MetaStore::write`] hands a batch's
//! [`MetaCommand`] to the cluster's [`MetaCommitter`] or to
//! [`MetaStore::apply`], the only code that writes replicated metadata.
//! Whole-store copies are in `stream.rs`, the totals reads in `totals.rs`.
//! It must never write a replicated column family other than through
//! `apply`, nor know what the engine does with the records.
//!
//! Every write that acknowledges client data goes through [`MetaStore::write`]
//! with the WAL synced. Reads are plain point lookups and bounded iterators.
//!
//! [`BucketRecord`]: crate::records::BucketRecord
//! [`ObjectVersion`]: crate::records::ObjectVersion
//! [`ManifestBlock`]: crate::records::ManifestBlock
//! [`ChunkRecord`]: crate::records::ChunkRecord
//! [`ChunkRefDelta`]: crate::records::ChunkRefDelta
//! [`UploadRecord`]: crate::records::UploadRecord
//! [`PartRecord`]: crate::records::PartRecord
//! [`TotalsRecord`]: crate::records::TotalsRecord
//! [`ManifestRef::DataElsewhere`]: crate::records::ManifestRef::DataElsewhere

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBWithThreadMode,
    MultiThreaded, Options, ReadOptions, WriteBatch, WriteOptions,
};

use crate::error::{CodecError, EngineError, EngineResult};
use crate::meta_command::{MetaCf, MetaCommand, MetaGuard, MetaOp};
use crate::totals::TOTALS_KEY;

mod sealing;
mod stream;
mod table;
mod tables;
mod totals;

pub use sealing::SEALED_CFS;
use sealing::{RecordSealer, is_sealed_cf, is_sealed_value};
pub use table::{KeyRange, MergeTable, Table};
pub use tables::{
    Buckets, Chunks, InlineData, Manifests, Objects, Parts, System, UploadId, UploadIndex, Uploads,
    Versions,
};

pub type Db = DBWithThreadMode<MultiThreaded>;

pub const CF_BUCKETS: &str = MetaCf::Buckets.name();
pub const CF_OBJECTS: &str = MetaCf::Objects.name();
pub const CF_MANIFESTS: &str = MetaCf::Manifests.name();
pub const CF_INLINE_DATA: &str = MetaCf::InlineData.name();
pub const CF_CHUNKS: &str = MetaCf::Chunks.name();
pub const CF_UPLOADS: &str = MetaCf::Uploads.name();
pub const CF_UPLOAD_INDEX: &str = MetaCf::UploadIndex.name();
pub const CF_PARTS: &str = MetaCf::Parts.name();
pub const CF_SYSTEM: &str = MetaCf::System.name();
pub const CF_VERSIONS: &str = MetaCf::Versions.name();
pub const CF_EVENTS: &str = MetaCf::Events.name();
/// This node's own state, never replicated nor in snapshots (not a
/// `MetaCf`): the clean-shutdown marker.
pub const CF_LOCAL: &str = "local";

const ALL_CFS: [&str; 12] = [
    CF_BUCKETS,
    CF_OBJECTS,
    CF_MANIFESTS,
    CF_INLINE_DATA,
    CF_CHUNKS,
    CF_UPLOADS,
    CF_UPLOAD_INDEX,
    CF_PARTS,
    CF_SYSTEM,
    CF_VERSIONS,
    CF_EVENTS,
    CF_LOCAL,
];

/// `local` record: the last epoch of locally assigned event sequences
/// (u64 LE). Each opening takes the next epoch, so sequences keep
/// increasing across restarts. (This node's own: a cluster's sequences
/// come from its log.)
const EVENT_EPOCH_KEY: &[u8] = b"event-epoch";
/// Bits of a local event sequence below its epoch: 2^40 events per opening
/// (over three years at 10,000 events per second).
const EVENT_EPOCH_SHIFT: u32 = 40;

/// The local event sequences one `apply` took, released (no longer in
/// flight) when it returns.
struct InFlightEvents<'a> {
    store: &'a MetaStore,
    seqs: Vec<u64>,
}

impl Drop for InFlightEvents<'_> {
    fn drop(&mut self) {
        if self.seqs.is_empty() {
            return;
        }
        let mut in_flight = self
            .store
            .events_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for s in &self.seqs {
            in_flight.remove(s);
        }
    }
}

/// Lock stripes over chunk ids held by [`MetaStore::apply`] while it reads
/// whether a chunk record exists and writes the change (see `totals.rs`).
const APPLY_CHUNK_STRIPES: usize = 1024;

/// A key a guard read, and its value then.
type GuardRead<'a> = (MetaCf, &'a [u8], Option<Vec<u8>>);

fn apply_chunk_stripe(key: &[u8]) -> usize {
    let hi = usize::from(key.first().copied().unwrap_or(0));
    let lo = usize::from(key.get(1).copied().unwrap_or(0));
    ((hi << 8) | lo) % APPLY_CHUNK_STRIPES
}

/// Bounds on RocksDB's memory: one shared block cache and a global memtable budget.
const BLOCK_CACHE_BYTES: usize = 64 << 20;
const WRITE_BUFFER_TOTAL_BYTES: usize = 64 << 20;
const WRITE_BUFFER_PER_CF_BYTES: usize = 16 << 20;

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` when there is none (all 0xFF).
/// Whether `op` changes what a bucket-configuration cache holds: a bucket
/// record, or a `system` record of a bucket's documents
/// (`crate::bucket_documents`) or lifecycle rules.
fn changes_bucket_config(op: &MetaOp) -> bool {
    let (cf, key) = match op {
        MetaOp::Put { cf, key, .. } | MetaOp::Delete { cf, key } => (*cf, key.as_slice()),
        MetaOp::Merge { .. } | MetaOp::Append { .. } => return false,
    };
    match cf {
        MetaCf::Buckets => true,
        MetaCf::System => {
            key.starts_with(crate::bucket_documents::NAME_PREFIX.as_bytes())
                || key.starts_with(b"lifecycle/")
        }
        _ => false,
    }
}

pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// A row of table `T` read by [`MetaStore::page_guarded`]: key, value, and
/// a guard that it is still exactly that row.
pub type GuardedRow<T> = (<T as Table>::KeyOwned, <T as Table>::Value, MetaGuard);

/// A stored value as `T` reads it: `None` when absent (or empty, for a
/// table where empty means absent).
fn decode_present<T: Table>(raw: Option<&[u8]>) -> Result<Option<T::Value>, CodecError> {
    match raw {
        Some(v) if !(T::EMPTY_MEANS_ABSENT && v.is_empty()) => T::decode(v).map(Some),
        _ => Ok(None),
    }
}

/// Where a store's metadata commands are committed when it is one replica
/// of a cluster (the Raft log in `cairn-cluster`). Without one, a store
/// applies its commands itself.
///
/// `commit` blocks (callers are on blocking threads) and returns `Ok` only
/// once the command is committed on a quorum **and applied to this store**,
/// so a read that follows sees it. A guard that failed is
/// `EngineError::GuardFailed`, exactly as a local apply reports it.
pub trait MetaCommitter: Send + Sync + std::fmt::Debug {
    fn commit(&self, command: MetaCommand) -> EngineResult<()>;
    /// Completes once this store has applied every command committed
    /// before the call (anywhere in the cluster): a read after it sees them.
    fn read_barrier(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = EngineResult<()>> + Send + '_>>;
}

#[derive(Debug)]
pub struct MetaStore {
    db: Arc<Db>,
    sync_write: bool,
    /// Set once when the store joins a cluster (see [`MetaCommitter`]).
    committer: std::sync::OnceLock<Arc<dyn MetaCommitter>>,
    /// Bumped when a snapshot import starts and when it ends (odd while one
    /// runs): a reader that must not act on a half-imported store (segment
    /// compaction) compares it before and after.
    import_generation: std::sync::atomic::AtomicU64,
    /// Bumped after every applied command that changes a bucket record or
    /// a bucket's configuration documents ([`changes_bucket_config`]), and
    /// around snapshot imports: what a cache of those compares.
    bucket_config_epoch: std::sync::atomic::AtomicU64,
    /// See [`APPLY_CHUNK_STRIPES`].
    apply_chunk_stripes: Vec<std::sync::Mutex<()>>,
    /// Seals the values of the sealed column families (`sealing.rs`);
    /// `None` only in tests that need no metadata key (a sealed value then
    /// does not read).
    sealer: Option<Arc<RecordSealer>>,
    /// The next locally assigned event sequence: this opening's epoch
    /// above the low [`EVENT_EPOCH_SHIFT`] bits (see [`EVENT_EPOCH_KEY`]).
    /// A cluster's state machine assigns sequences from the log index
    /// instead.
    next_event_seq: std::sync::atomic::AtomicU64,
    /// Local sequences taken by writes not yet done: a reader of the queue
    /// never goes past the lowest (a write holding a lower sequence may
    /// land after one holding a higher), so a key's events are read in
    /// the order their writes committed.
    events_in_flight: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    /// Events queued per target (rows of `events`), counted at open and
    /// kept by `apply`.
    event_counts: std::sync::Mutex<std::collections::HashMap<Vec<u8>, u64>>,
    /// Woken after a command that queued events is applied.
    events_queued: tokio::sync::Notify,
    /// Events not queued because their target's queue was full.
    events_dropped: std::sync::atomic::AtomicU64,
    /// Tests only: every command written, encoded, in the order RocksDB
    /// applied them (see `record_commands`).
    #[cfg(test)]
    recorded: std::sync::Mutex<Option<Vec<Vec<u8>>>>,
}

impl MetaStore {
    /// Opens the store with the metadata key of `root`: records of the
    /// sealed column families are sealed when written and opened when read.
    pub fn open_sealed(path: &Path, root: &cairn_crypto::DataRootKey) -> EngineResult<Self> {
        Self::open_with(
            path,
            Some(Arc::new(RecordSealer::new(root.metadata_sealer()))),
        )
    }

    /// Opens the store without a metadata key: records are written in the
    /// clear (tests of the store and the state machine only).
    pub fn open(path: &Path) -> EngineResult<Self> {
        Self::open_with(path, None)
    }

    fn open_with(path: &Path, sealer: Option<Arc<RecordSealer>>) -> EngineResult<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| EngineError::io(format!("creating {}", path.display()), e))?;
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cf_opts = |name: &str| {
            let mut block = BlockBasedOptions::default();
            block.set_block_cache(&cache);
            block.set_bloom_filter(10.0, false);
            block.set_cache_index_and_filter_blocks(true);
            let mut o = Options::default();
            o.set_block_based_table_factory(&block);
            o.set_write_buffer_size(WRITE_BUFFER_PER_CF_BYTES);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            if name == CF_CHUNKS {
                o.set_merge_operator(
                    "cairn-chunk-refs-v1",
                    tables::chunk_full_merge,
                    tables::chunk_partial_merge,
                );
            }
            if name == CF_SYSTEM {
                // Only the totals keys receive merges (sums).
                o.set_merge_operator(
                    "cairn-totals-v1",
                    crate::totals::totals_full_merge,
                    crate::totals::totals_partial_merge,
                );
                // Every object write merges onto the same few keys: fold
                // them in the memtable rather than keep long operand chains.
                o.set_max_successive_merges(16);
            }
            ColumnFamilyDescriptor::new(name, o)
        };
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_db_write_buffer_size(WRITE_BUFFER_TOTAL_BYTES);
        opts.set_max_open_files(512);
        opts.set_keep_log_file_num(4);
        opts.set_max_total_wal_size(256 << 20);
        opts.increase_parallelism(2);
        let cfs: Vec<_> = ALL_CFS.iter().map(|n| cf_opts(n)).collect();
        let db = Db::open_cf_descriptors(&opts, path, cfs)?;
        let store = MetaStore {
            db: Arc::new(db),
            sync_write: true,
            committer: std::sync::OnceLock::new(),
            import_generation: std::sync::atomic::AtomicU64::new(0),
            bucket_config_epoch: std::sync::atomic::AtomicU64::new(0),
            apply_chunk_stripes: (0..APPLY_CHUNK_STRIPES)
                .map(|_| std::sync::Mutex::new(()))
                .collect(),
            sealer,
            next_event_seq: std::sync::atomic::AtomicU64::new(0),
            events_in_flight: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            event_counts: std::sync::Mutex::new(std::collections::HashMap::new()),
            events_queued: tokio::sync::Notify::new(),
            events_dropped: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            recorded: std::sync::Mutex::new(None),
        };
        // Metadata written before the totals existed: count them once.
        store.ensure_totals()?;
        store.open_event_epoch()?;
        store.count_events()?;
        Ok(store)
    }

    fn cf(&self, name: &'static str) -> EngineResult<Arc<BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| EngineError::Internal(format!("missing column family {name}")))
    }

    fn get_cf(&self, cf: &'static str, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        Ok(self.db.get_cf(&self.cf(cf)?, key)?)
    }

    /// A stored value as read from column family `cf` (no decoding; a
    /// sealed record stays sealed: see [`MetaStore::plain`]).
    pub(crate) fn get_raw(&self, cf: MetaCf, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.get_cf(cf.name(), key)
    }

    /// The plaintext of a value stored under `key` of `cf` (a sealed
    /// record opened; any other value as it is). Every reader of stored
    /// values of a sealed column family goes through it.
    pub fn plain<'a>(
        &self,
        cf: MetaCf,
        key: &[u8],
        stored: &'a [u8],
    ) -> EngineResult<std::borrow::Cow<'a, [u8]>> {
        sealing::plain(self.sealer.as_deref(), cf, key, stored)
    }

    /// A stored value of `T` decoded (opened first if sealed).
    fn decode_stored<T: Table>(
        &self,
        key: &[u8],
        stored: Option<&[u8]>,
    ) -> EngineResult<Option<T::Value>> {
        match stored {
            Some(v) => Ok(decode_present::<T>(Some(&self.plain(T::CF, key, v)?))?),
            None => Ok(None),
        }
    }

    /// The row of table `T` under `key`, if there is one.
    pub fn get<T: Table>(&self, key: T::Key<'_>) -> EngineResult<Option<T::Value>> {
        let key = T::key(key);
        let raw = self.get_raw(T::CF, key.as_ref())?;
        self.decode_stored::<T>(key.as_ref(), raw.as_deref())
    }

    /// [`MetaStore::get`], and a guard that the row is still exactly the
    /// one read (or still absent): a command built from it carries the
    /// guard, so it applies only if no other writer changed the row first.
    pub fn get_guarded<T: Table>(
        &self,
        key: T::Key<'_>,
    ) -> EngineResult<(Option<T::Value>, MetaGuard)> {
        let key = T::key(key);
        let raw = self.get_raw(T::CF, key.as_ref())?;
        let value = self.decode_stored::<T>(key.as_ref(), raw.as_deref())?;
        // The guard is on the stored bytes (sealed ones included): the
        // replicated command never carries a hash of plaintext.
        Ok((
            value,
            MetaGuard::value_is(T::CF, key.as_ref(), raw.as_deref()),
        ))
    }

    /// Rows of `T` in `range`, in key order, at most `limit` (keys of
    /// another shape, and empty values where empty means absent, are
    /// skipped and not counted).
    pub fn page<T: Table>(
        &self,
        range: KeyRange<'_>,
        limit: usize,
    ) -> EngineResult<Vec<(T::KeyOwned, T::Value)>> {
        self.page_rows::<T, _>(range, limit, |key, value, _, _| (key, value))
    }

    /// The walk behind [`MetaStore::page`] and [`MetaStore::page_guarded`]:
    /// each decoded row of `T` in `range` becomes `row(key, value, raw key,
    /// raw value)`, at most `limit` of them.
    fn page_rows<T: Table, R>(
        &self,
        range: KeyRange<'_>,
        limit: usize,
        mut row: impl FnMut(T::KeyOwned, T::Value, &[u8], &[u8]) -> R,
    ) -> EngineResult<Vec<R>> {
        let mut out = Vec::new();
        self.walk(T::CF, range, |k, v| {
            if out.len() >= limit {
                return Ok(false);
            }
            if T::EMPTY_MEANS_ABSENT && v.is_empty() {
                return Ok(true);
            }
            if let Some(key) = T::decode_key(k)? {
                let value = T::decode(&self.plain(T::CF, k, v)?)?;
                out.push(row(key, value, k, v));
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Rows of `T` after the key `after` (exclusive; from the first for
    /// `None`), in key order, at most `limit`: a walk over a whole table
    /// in pages.
    pub fn page_after<T: Table>(
        &self,
        after: Option<T::Key<'_>>,
        limit: usize,
    ) -> EngineResult<Vec<(T::KeyOwned, T::Value)>> {
        let after = after.map(T::key);
        self.page::<T>(KeyRange::after(after.as_ref().map(AsRef::as_ref)), limit)
    }

    /// [`MetaStore::page`], each row with a guard that it is still exactly
    /// that row.
    pub fn page_guarded<T: Table>(
        &self,
        range: KeyRange<'_>,
        limit: usize,
    ) -> EngineResult<Vec<GuardedRow<T>>> {
        self.page_rows::<T, _>(range, limit, |key, value, k, v| {
            (key, value, MetaGuard::value_is(T::CF, k, Some(v)))
        })
    }

    /// Keys of `T` in `range`, in order, at most `limit`; values are not
    /// decoded.
    pub fn keys<T: Table>(
        &self,
        range: KeyRange<'_>,
        limit: usize,
    ) -> EngineResult<Vec<T::KeyOwned>> {
        let mut out = Vec::new();
        self.walk(T::CF, range, |k, v| {
            if out.len() >= limit {
                return Ok(false);
            }
            if T::EMPTY_MEANS_ABSENT && v.is_empty() {
                return Ok(true);
            }
            if let Some(key) = T::decode_key(k)? {
                out.push(key);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `f` with every value of `T`, in key order (for walks over a
    /// whole column family that keep nothing but what `f` keeps).
    pub fn for_each<T: Table>(
        &self,
        mut f: impl FnMut(T::Value) -> EngineResult<()>,
    ) -> EngineResult<()> {
        self.walk(T::CF, KeyRange::all(), |k, v| {
            if !(T::EMPTY_MEANS_ABSENT && v.is_empty()) {
                f(T::decode(&self.plain(T::CF, k, v)?)?)?;
            }
            Ok(true)
        })
    }

    /// Visits the raw keys and values of `cf` in `range`, in order, while
    /// `f` returns true.
    fn walk(
        &self,
        cf: MetaCf,
        range: KeyRange<'_>,
        mut f: impl FnMut(&[u8], &[u8]) -> EngineResult<bool>,
    ) -> EngineResult<()> {
        let KeyRange { start, end } = range;
        let mut it = self.range_iter(cf.name(), end)?;
        match start {
            Bound::Unbounded => it.seek_to_first(),
            Bound::Included(k) | Bound::Excluded(k) => it.seek(k),
        }
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let excluded = matches!(start, Bound::Excluded(s) if s == k);
            if !excluded && !f(k, v)? {
                break;
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// A RocksDB integer property summed over every column family.
    pub fn property_sum(&self, name: &str) -> u64 {
        ALL_CFS
            .iter()
            .filter_map(|cf| self.cf(cf).ok())
            .filter_map(|cf| self.db.property_int_value_cf(&cf, name).ok().flatten())
            .sum()
    }

    /// Makes every earlier (unsynced) write durable.
    pub fn sync_wal(&self) -> EngineResult<()> {
        Ok(self.db.flush_wal(true)?)
    }

    /// A node-local value (column family `local`).
    pub fn local(&self, name: &str) -> EngineResult<Option<Vec<u8>>> {
        self.get_cf(CF_LOCAL, name.as_bytes())
    }

    /// Sets (`Some`) or removes (`None`) a node-local value, synced. Not a
    /// `MetaCommand`: it is never replicated.
    pub fn set_local(&self, name: &str, value: Option<&[u8]>) -> EngineResult<()> {
        let cf = self.cf(CF_LOCAL)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync_write);
        let result = match value {
            Some(v) => self.db.put_cf_opt(&cf, name.as_bytes(), v, &wo),
            None => self.db.delete_cf_opt(&cf, name.as_bytes(), &wo),
        };
        Ok(result?)
    }

    /// An iterator over one column family restricted to `[lower, upper)`.
    pub fn range_iter(
        &self,
        cf: &'static str,
        upper: Option<Vec<u8>>,
    ) -> EngineResult<rocksdb::DBRawIteratorWithThreadMode<'_, Db>> {
        let handle = self.cf(cf)?;
        let mut ro = ReadOptions::default();
        if let Some(u) = upper {
            ro.set_iterate_upper_bound(u);
        }
        Ok(self.db.raw_iterator_cf_opt(&handle, ro))
    }

    /// Routes every later [`MetaStore::write`] through `committer` (a
    /// cluster's log). Set once, before the engine opens on this store;
    /// returns false if one was already set.
    pub fn set_committer(&self, committer: Arc<dyn MetaCommitter>) -> bool {
        self.committer.set(committer).is_ok()
    }

    /// Whether this store is a cluster replica (writes go through a log).
    pub fn is_replica(&self) -> bool {
        self.committer.get().is_some()
    }

    /// Waits until every change committed anywhere before the call is
    /// applied here (immediate on a single node, where it always is).
    pub async fn read_barrier(&self) -> EngineResult<()> {
        match self.committer.get() {
            Some(c) => c.read_barrier().await,
            None => Ok(()),
        }
    }

    pub fn batch(&self) -> MetaBatch {
        MetaBatch {
            command: MetaCommand::default(),
            sealer: self.sealer.clone(),
            seal_failed: None,
        }
    }

    /// changes whose loss in a crash is harmless (a later synced write makes
    /// them durable too, since the WAL is sequential).
    pub fn write_unsynced(&self, batch: MetaBatch) -> EngineResult<()> {
        self.write_with(batch, false)
    }

    /// Writes a batch atomically with the WAL synced (the commit point of
    /// every acknowledged change).
    pub fn write(&self, batch: MetaBatch) -> EngineResult<()> {
        self.write_with(batch, self.sync_write)
    }

    fn write_with(&self, batch: MetaBatch, sync: bool) -> EngineResult<()> {
        if let Some(e) = batch.seal_failed {
            return Err(EngineError::Internal(e));
        }
        if let Some(committer) = self.committer.get() {
            // A replica: the command reaches this store through the log,
            // applied by the state machine like on every other node.
            return committer.commit(batch.command);
        }
        #[cfg(test)]
        {
            let mut rec = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(log) = rec.as_mut() {
                // Under the lock, so the log has RocksDB's order.
                self.apply(&batch.command, sync)?;
                log.push(batch.command.encode());
                return Ok(());
            }
        }
        self.apply(&batch.command, sync)
    }

    /// Applies one command atomically: the only code that turns metadata
    /// changes into RocksDB writes (so a replica applying the same commands
    /// in the same order holds the same metadata).
    ///
    /// Guards are checked first; if one fails nothing is written and the
    /// result is `GuardFailed(index)`. Check and write are not one atomic
    /// step: callers apply guarded commands one at a time (the Raft state
    /// machine) or under the engine's key locks.
    ///
    /// The stored totals (`totals.rs`) are derived from the command and
    /// written in the same batch, unless the command sets them itself.
    pub fn apply(&self, command: &MetaCommand, sync: bool) -> EngineResult<()> {
        self.apply_indexed(command, sync, None)
    }

    /// [`MetaStore::apply`], with the index of the log entry the command is
    /// (a cluster's state machine): an `Append` op's sequence is then
    /// `index << 16 | its ordinal among the command's appends`, the same on
    /// every node; without one it is assigned locally.
    pub fn apply_indexed(
        &self,
        command: &MetaCommand,
        sync: bool,
        index: Option<u64>,
    ) -> EngineResult<()> {
        let explicit_totals = crate::totals::sets_totals_explicitly(command);
        // Whether a chunk record exists is read and acted on under its
        // stripe: two commands creating the same chunk count it once.
        let _stripes = if explicit_totals {
            Vec::new()
        } else {
            let mut stripes: Vec<usize> = crate::totals::chunk_keys_changing_existence(command)
                .map(apply_chunk_stripe)
                .collect();
            stripes.sort_unstable();
            stripes.dedup();
            stripes
                .into_iter()
                .map(|i| {
                    self.apply_chunk_stripes[i]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                })
                .collect()
        };
        // Values the guards read, reused to derive the totals (the object
        // a PUT replaces is read once).
        let mut read: Vec<GuardRead<'_>> = Vec::new();
        for (i, guard) in command.guards.iter().enumerate() {
            let holds = match guard {
                MetaGuard::NoneWithPrefix { cf, prefix } => {
                    let mut it = self.range_iter(cf.name(), prefix_successor(prefix))?;
                    it.seek(prefix);
                    let found = it.valid();
                    it.status()?;
                    !found
                }
                _ => {
                    let value = self.get_cf(guard.cf().name(), guard.key())?;
                    let holds = guard.holds(value.as_deref());
                    read.push((guard.cf(), guard.key(), value));
                    holds
                }
            };
            if !holds {
                return Err(EngineError::GuardFailed(i));
            }
        }
        let totals = if explicit_totals {
            None
        } else {
            // The totals read plaintext: stored values (sealed or not)
            // are opened before they are counted.
            let open = |cf: MetaCf, key: &[u8], stored: &[u8]| {
                self.plain(cf, key, stored)
                    .map(std::borrow::Cow::into_owned)
            };
            Some(crate::totals::derive(
                command,
                |cf, key| {
                    let stored = match read.iter().find(|(c, k, _)| *c == cf && *k == key) {
                        Some((_, _, v)) => v.clone(),
                        None => self.get_cf(cf.name(), key)?,
                    };
                    // A value that does not open counts as nothing (like
                    // one that does not decode): a damaged record must not
                    // stop the write that replaces it, nor a replica's log.
                    Ok(stored.and_then(|v| match open(cf, key, &v) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            tracing::warn!(error = %e, "record not counted in the stored totals");
                            None
                        }
                    }))
                },
                open,
            )?)
        };
        let mut wb = WriteBatch::default();
        // Queue length changes per target, applied to `event_counts` once
        // the write is done.
        let mut queued: Vec<(&[u8], i64)> = Vec::new();
        let mut deleted_events: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
        let mut appended = 0u64;
        // Released when this function returns: the write has landed (or
        // will never).
        let mut taken = InFlightEvents {
            store: self,
            seqs: Vec::new(),
        };
        for op in &command.ops {
            match op {
                MetaOp::Put { cf, key, value } => wb.put_cf(&self.cf(cf.name())?, key, value),
                MetaOp::Delete { cf, key } => {
                    // A row counts out once, however often the command
                    // deletes it.
                    if *cf == MetaCf::Events
                        && let Some(at) = key.iter().position(|b| *b == 0)
                        && deleted_events.insert(key.as_slice())
                        && self.get_cf(CF_EVENTS, key)?.is_some()
                    {
                        queued.push((&key[..=at], -1));
                    }
                    wb.delete_cf(&self.cf(cf.name())?, key)
                }
                MetaOp::Merge { cf, key, operand } => {
                    wb.merge_cf(&self.cf(cf.name())?, key, operand)
                }
                MetaOp::Append { cf, prefix, value } => {
                    // A command appends a few rows (one per matching rule,
                    // ≤ `notifications::RULES_MAX`), far fewer than 2^16.
                    debug_assert!(appended < 1 << 16);
                    let seq = match index {
                        Some(i) => (i << 16) | (appended & 0xFFFF),
                        None => {
                            let mut in_flight = self
                                .events_in_flight
                                .lock()
                                .unwrap_or_else(|e| e.into_inner());
                            let seq = self
                                .next_event_seq
                                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            in_flight.insert(seq);
                            taken.seqs.push(seq);
                            seq
                        }
                    };
                    appended += 1;
                    let mut key = Vec::with_capacity(prefix.len() + 8);
                    key.extend_from_slice(prefix);
                    key.extend_from_slice(&seq.to_be_bytes());
                    if *cf == MetaCf::Events {
                        queued.push((prefix.as_slice(), 1));
                    }
                    wb.put_cf(&self.cf(cf.name())?, key, value)
                }
            }
        }
        if let Some(d) = totals {
            let system = self.cf(CF_SYSTEM)?;
            if !d.global.is_zero() {
                wb.merge_cf(&system, TOTALS_KEY, d.global.encode());
            }
            for (id, t) in &d.buckets {
                if !t.is_zero() {
                    wb.merge_cf(&system, crate::totals::bucket_totals_key(*id), t.encode());
                }
            }
            for id in &d.dropped_buckets {
                wb.delete_cf(&system, crate::totals::bucket_totals_key(*id));
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(wb, &wo).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("No space left") {
                EngineError::StorageFull(msg)
            } else {
                EngineError::Metadata(e)
            }
        })?;
        // After the write is visible: a cache that read the epoch before
        // reading the old value is now stale by epoch.
        if command.ops.iter().any(changes_bucket_config) {
            self.bump_bucket_config_epoch();
        }
        if !queued.is_empty() {
            let mut counts = self.event_counts.lock().unwrap_or_else(|e| e.into_inner());
            let mut added = false;
            for (prefix, delta) in queued {
                let n = counts.entry(prefix.to_vec()).or_insert(0);
                *n = n.saturating_add_signed(delta);
                added |= delta > 0;
            }
            drop(counts);
            if added {
                self.events_queued.notify_waiters();
            }
        }
        Ok(())
    }

    /// Takes this opening's epoch of local event sequences (a synced
    /// write to this node's `local` column family, before any command is
    /// applied).
    fn open_event_epoch(&self) -> EngineResult<()> {
        let last = match self.get_cf(CF_LOCAL, EVENT_EPOCH_KEY)? {
            Some(v) => {
                let bytes: [u8; 8] = v.as_slice().try_into().map_err(|_| {
                    EngineError::Corrupt("the event epoch record is not 8 bytes".into())
                })?;
                u64::from_le_bytes(bytes)
            }
            None => 0,
        };
        let epoch = last.saturating_add(1);
        if epoch >= 1 << (64 - EVENT_EPOCH_SHIFT) {
            return Err(EngineError::Corrupt("the event epoch is exhausted".into()));
        }
        let mut wb = WriteBatch::default();
        wb.put_cf(&self.cf(CF_LOCAL)?, EVENT_EPOCH_KEY, epoch.to_le_bytes());
        self.write_raw(wb, true)?;
        self.next_event_seq.store(
            epoch << EVENT_EPOCH_SHIFT,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    /// Counts the queued events of every target (at open, and after a
    /// snapshot replaced the store's contents).
    pub(crate) fn count_events(&self) -> EngineResult<()> {
        let mut counts = std::collections::HashMap::new();
        let h = self.cf(CF_EVENTS)?;
        let mut it = self.db.raw_iterator_cf(&h);
        it.seek_to_first();
        while let Some(key) = it.key() {
            if let Some(at) = key.iter().position(|b| *b == 0) {
                *counts.entry(key[..=at].to_vec()).or_insert(0u64) += 1;
            }
            it.next();
        }
        it.status()?;
        *self.event_counts.lock().unwrap_or_else(|e| e.into_inner()) = counts;
        Ok(())
    }

    /// Events queued for the target whose key prefix is `prefix`.
    pub fn queued_events(&self, prefix: &[u8]) -> u64 {
        self.event_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(prefix)
            .copied()
            .unwrap_or(0)
    }

    /// Every target with queued events and how many.
    pub fn queued_event_counts(&self) -> Vec<(Vec<u8>, u64)> {
        let mut v: Vec<_> = self
            .event_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        v.sort();
        v
    }

    /// Counts events not queued by a write that committed.
    pub(crate) fn count_dropped_events(&self, n: u64) {
        self.events_dropped
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn dropped_events(&self) -> u64 {
        self.events_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Completes after the next command that queues events is applied.
    pub fn events_queued(&self) -> tokio::sync::futures::Notified<'_> {
        self.events_queued.notified()
    }

    /// Up to `max` rows of `events` starting with `prefix`, oldest first:
    /// (stored key, plaintext value).
    /// Each row's value is opened on its own: one that does not open is
    /// returned as an error for the caller to drop, never a failed read.
    #[allow(clippy::type_complexity)]
    pub fn event_rows(
        &self,
        prefix: &[u8],
        from: &[u8],
        max: usize,
    ) -> EngineResult<Vec<(Vec<u8>, EngineResult<Vec<u8>>)>> {
        debug_assert!(from.starts_with(prefix));
        // Rows at or past the lowest sequence still being written wait.
        let limit = self
            .events_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .copied()
            .unwrap_or(u64::MAX);
        let mut it = self.range_iter(CF_EVENTS, prefix_successor(prefix))?;
        it.seek(from);
        let mut out = Vec::new();
        while out.len() < max {
            let (Some(key), Some(value)) = (it.key(), it.value()) else {
                break;
            };
            if !key.starts_with(prefix) {
                break;
            }
            let seq = key
                .get(prefix.len()..)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(u64::from_be_bytes);
            if seq.is_some_and(|s| s >= limit) {
                break;
            }
            let plain = match &self.sealer {
                Some(s) if is_sealed_value(value) => s.open_event(prefix, value),
                _ => Ok(value.to_vec()),
            };
            out.push((key.to_vec(), plain));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// See `bucket_config_epoch`.
    pub fn bucket_config_epoch(&self) -> u64 {
        self.bucket_config_epoch
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn bump_bucket_config_epoch(&self) {
        self.bucket_config_epoch
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl MetaStore {
    pub(crate) fn get_cf_for_tests(&self, cf: MetaCf, key: &[u8]) -> Option<Vec<u8>> {
        self.get_cf(cf.name(), key).unwrap()
    }

    /// From now on, keeps every command written (see `recorded_commands`).
    pub fn record_commands(&self) {
        *self.recorded.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// The commands written since `record_commands`, encoded, in order.
    pub fn recorded_commands(&self) -> Vec<Vec<u8>> {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Every key and value of every replicated column family, for comparing
    /// two stores.
    pub fn dump(&self) -> Vec<(MetaCf, Vec<u8>, Vec<u8>)> {
        self.export()
            .unwrap()
            .ops
            .into_iter()
            .map(|op| match op {
                MetaOp::Put { cf, key, value } => (cf, key, value),
                other => panic!("export only puts: {other:?}"),
            })
            .collect()
    }
}

/// An atomic set of metadata changes, typed by table; written as one
/// [`MetaCommand`].
#[derive(Clone)]
pub struct MetaBatch {
    command: MetaCommand,
    /// The store's sealer: values of the sealed column families are
    /// sealed as they are added (`sealing.rs`).
    sealer: Option<Arc<RecordSealer>>,
    /// A value that could not be sealed: the write refuses the batch.
    seal_failed: Option<String>,
}

impl std::fmt::Debug for MetaBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetaBatch({} ops)", self.command.ops.len())
    }
}

impl MetaBatch {
    /// Makes the whole batch conditional on `guard` (checked when applied,
    /// before anything is written).
    pub fn guard(&mut self, guard: MetaGuard) {
        self.command.guards.push(guard);
    }

    /// Guards added so far.
    pub fn guard_count(&self) -> usize {
        self.command.guards.len()
    }

    /// Makes the batch conditional on `T` having a (non-empty) row under
    /// `key`.
    pub fn guard_present<T: Table>(&mut self, key: T::Key<'_>) {
        self.guard(MetaGuard::Present {
            cf: T::CF,
            key: T::key(key).into(),
        });
    }

    /// Stores `value` under `key` (see [`Table::put_into`]: a row may write
    /// more than one column family).
    pub fn put<T: Table>(&mut self, key: T::Key<'_>, value: &T::Value) {
        T::put_into(self, key, value);
    }

    /// Removes the row under `key`.
    pub fn delete<T: Table>(&mut self, key: T::Key<'_>) {
        self.push_delete(T::CF, T::key(key).into());
    }

    /// Merges `operand` onto the row under `key` (the column family's merge
    /// operator combines them when read).
    pub fn merge<T: MergeTable>(&mut self, key: T::Key<'_>, operand: &T::Operand) {
        self.command.ops.push(MetaOp::Merge {
            cf: T::CF,
            key: T::key(key).into(),
            operand: T::encode_operand(operand),
        });
    }

    pub(in crate::meta) fn push_put(&mut self, cf: MetaCf, key: Vec<u8>, value: Vec<u8>) {
        let value = match &self.sealer {
            Some(s) if is_sealed_cf(cf) => match s.seal(cf, &key, &value) {
                Ok(sealed) => sealed,
                Err(e) => {
                    self.seal_failed.get_or_insert(e.to_string());
                    return;
                }
            },
            _ => value,
        };
        self.command.ops.push(MetaOp::Put { cf, key, value });
    }

    pub(in crate::meta) fn push_delete(&mut self, cf: MetaCf, key: Vec<u8>) {
        self.command.ops.push(MetaOp::Delete { cf, key });
    }

    /// Queues an event for the target whose `events` key prefix is
    /// `prefix` (its sequence is assigned when the batch is applied). The
    /// value is sealed under the store-wide key, bound to the prefix.
    pub fn append_event(&mut self, prefix: Vec<u8>, value: Vec<u8>) {
        let value = match &self.sealer {
            Some(s) => match s.seal_event(&prefix, &value) {
                Ok(sealed) => sealed,
                Err(e) => {
                    self.seal_failed.get_or_insert(e.to_string());
                    return;
                }
            },
            None => value,
        };
        self.command.ops.push(MetaOp::Append {
            cf: MetaCf::Events,
            prefix,
            value,
        });
    }

    /// Removes a delivered event.
    pub fn delete_event(&mut self, key: Vec<u8>) {
        self.push_delete(MetaCf::Events, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Local event sequences are taken before a write lands: a reader of
    /// the queue stops below the lowest one still in flight (a lower
    /// sequence may yet appear), and sees everything once it landed. Queue
    /// counts follow appends and deletes of rows that exist.
    #[test]
    fn queued_events_are_read_only_below_a_write_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let prefix = b"t\0".to_vec();
        for _ in 0..3 {
            let mut b = store.batch();
            b.append_event(prefix.clone(), b"e".to_vec());
            store.write(b).unwrap();
        }
        let rows = store.event_rows(&prefix, &prefix, 10).unwrap();
        assert_eq!(rows.len(), 3);
        let seq = |row: &[u8]| u64::from_be_bytes(row[2..].try_into().unwrap());
        let first = seq(&rows[0].0);
        assert!(seq(&rows[1].0) > first && seq(&rows[2].0) > seq(&rows[1].0));
        assert_eq!(first >> EVENT_EPOCH_SHIFT, 1, "the first opening's epoch");
        // A write holding the sequence after the first row has not landed.
        store.events_in_flight.lock().unwrap().insert(first + 1);
        let rows_now = store.event_rows(&prefix, &prefix, 10).unwrap();
        assert_eq!(rows_now.len(), 1, "only what is below the write in flight");
        store.events_in_flight.lock().unwrap().clear();
        assert_eq!(store.event_rows(&prefix, &prefix, 10).unwrap().len(), 3);
        assert_eq!(store.queued_events(&prefix), 3);
        let mut b = store.batch();
        b.delete_event(rows[0].0.clone());
        b.delete_event(rows[0].0.clone());
        store.write(b).unwrap();
        let mut b = store.batch();
        b.delete_event(rows[0].0.clone());
        store.write(b).unwrap();
        assert_eq!(store.queued_events(&prefix), 2, "a row is counted out once");
        assert!(store.events_in_flight.lock().unwrap().is_empty());
        drop(store);
        // Reopened: the next epoch, the counts recounted.
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(store.queued_events(&prefix), 2);
        let mut b = store.batch();
        b.append_event(prefix.clone(), b"e".to_vec());
        store.write(b).unwrap();
        let last = store.event_rows(&prefix, &prefix, 10).unwrap();
        assert_eq!(seq(&last[2].0) >> EVENT_EPOCH_SHIFT, 2);
    }

    /// The guard that keeps a bucket delete from orphaning an object
    /// committed meanwhile (by another node): it holds only while no key
    /// has the prefix, whatever sorts next to it.
    #[test]
    fn none_with_prefix_guard_sees_any_key_under_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let guarded = |prefix: &[u8]| MetaCommand {
            guards: vec![MetaGuard::NoneWithPrefix {
                cf: MetaCf::Objects,
                prefix: prefix.to_vec(),
            }],
            ops: vec![MetaOp::Put {
                cf: MetaCf::System,
                key: b"marker".to_vec(),
                value: b"1".to_vec(),
            }],
        };
        let put = |key: &[u8]| MetaCommand {
            guards: vec![],
            ops: vec![MetaOp::Put {
                cf: MetaCf::Objects,
                key: key.to_vec(),
                value: b"v".to_vec(),
            }],
        };
        // Neighbours on both sides do not count.
        store
            .apply(&put(&[0, 0, 0, 0, 0, 0, 0, 6, b'z']), true)
            .unwrap();
        store.apply(&put(&[0, 0, 0, 0, 0, 0, 0, 8]), true).unwrap();
        store.apply(&guarded(&7u64.to_be_bytes()), true).unwrap();
        store
            .apply(&put(&[0, 0, 0, 0, 0, 0, 0, 7, b'k']), true)
            .unwrap();
        assert!(matches!(
            store.apply(&guarded(&7u64.to_be_bytes()), true),
            Err(EngineError::GuardFailed(0))
        ));
    }

    fn version_with_meta(secret: &str) -> crate::records::ObjectVersion {
        let meta = crate::records::ObjectMetadata {
            user_metadata: vec![("owner".into(), secret.into())],
            tags: vec![("project".into(), format!("tag-{secret}"))],
            ..Default::default()
        };
        crate::records::ObjectVersion::new_now(
            crate::records::VersionId::random(),
            10,
            "etag".into(),
            meta,
            Vec::new(),
            crate::records::ManifestRef::Inline(Vec::new()),
        )
    }

    /// Records written in the clear (before sealing existed) still read
    /// with a sealing store, are sealed when rewritten, and the stored
    /// totals follow both; a sealed record opens only under its own row
    /// and root.
    #[test]
    fn plaintext_records_still_read_and_are_sealed_when_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let root = cairn_crypto::DataRootKey::from_bytes([5; 32]);
        let old = version_with_meta("legacy-secret");
        {
            let store = MetaStore::open(dir.path()).unwrap();
            let mut b = store.batch();
            b.put::<Objects>((7, "old"), &old);
            store.write(b).unwrap();
            let stored = store
                .get_raw(MetaCf::Objects, &Objects::key((7, "old")))
                .unwrap()
                .unwrap();
            assert_ne!(stored[0], sealing::SEALED_MAGIC, "no key: in the clear");
        }
        let store = MetaStore::open_sealed(dir.path(), &root).unwrap();
        assert_eq!(store.get::<Objects>((7, "old")).unwrap(), Some(old.clone()));
        assert_eq!(store.totals().unwrap().global.objects, 1);

        let new = version_with_meta("new-secret");
        let (_, guard) = store.get_guarded::<Objects>((7, "old")).unwrap();
        let mut b = store.batch();
        b.guard(guard);
        b.put::<Objects>((7, "old"), &new);
        b.put::<Objects>((7, "other"), &new);
        store.write(b).unwrap();
        for key in ["old", "other"] {
            let rkey = Objects::key((7, key));
            let stored = store.get_raw(MetaCf::Objects, &rkey).unwrap().unwrap();
            assert_eq!(stored[0], sealing::SEALED_MAGIC);
            assert!(!stored.windows(10).any(|w| w == b"new-secret"));
            assert_eq!(store.get::<Objects>((7, key)).unwrap(), Some(new.clone()));
            let page = store
                .page::<Objects>(
                    KeyRange::between(&rkey, &prefix_successor(&rkey).unwrap()),
                    10,
                )
                .unwrap();
            assert_eq!(page[0].1, new);
        }
        let t = store.totals().unwrap();
        assert_eq!((t.global.objects, t.global.logical_bytes), (2, 20));
        let (kept, counted) = store.kept_and_recounted_totals().unwrap();
        assert_eq!(kept, counted);

        // A guard from the sealed bytes holds until they change.
        let (_, guard) = store.get_guarded::<Objects>((7, "old")).unwrap();
        let mut b = store.batch();
        b.guard(guard.clone());
        b.put::<Objects>((7, "old"), &old);
        store.write(b).unwrap();
        let mut b = store.batch();
        b.guard(guard);
        b.put::<Objects>((7, "old"), &new);
        assert!(matches!(store.write(b), Err(EngineError::GuardFailed(0))));

        // Moved to another row (or another bucket), it does not open.
        let sealed = store
            .get_raw(MetaCf::Objects, &Objects::key((7, "old")))
            .unwrap()
            .unwrap();
        for other in [Objects::key((7, "elsewhere")), Objects::key((8, "old"))] {
            assert!(store.plain(MetaCf::Objects, &other, &sealed).is_err());
        }
        assert!(
            store
                .plain(MetaCf::Versions, &Objects::key((7, "old")), &sealed)
                .is_err()
        );
        drop(store);
        // Nor under another root, nor without one.
        let other_root = cairn_crypto::DataRootKey::from_bytes([6; 32]);
        let store = MetaStore::open_sealed(dir.path(), &other_root).unwrap();
        assert!(store.get::<Objects>((7, "old")).is_err());
        drop(store);
        let store = MetaStore::open(dir.path()).unwrap();
        assert!(store.get::<Objects>((7, "old")).is_err());
    }

    #[test]
    fn prefix_successor_works() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
    }
}
