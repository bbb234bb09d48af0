//! The metadata store: RocksDB with one column family per record kind.
//!
//! | column family  | key                                         | value            |
//! |----------------|---------------------------------------------|------------------|
//! | `buckets`      | bucket name (UTF-8)                         | [`BucketRecord`] |
//! | `objects`      | bucket id (u64 BE) ++ object key (UTF-8)    | [`ObjectVersion`] |
//! | `manifests`    | version id (16) ++ block index (u32 BE)     | [`ManifestBlock`] |
//! | `inline_data`  | version id (16)                             | sealed bytes of a small object ([`ManifestRef::DataElsewhere`]) |
//! | `chunks`       | chunk id (32)                               | [`ChunkRecord`], updated by merge of [`ChunkRefDelta`] |
//! | `uploads`      | upload id (16)                              | [`UploadRecord`] |
//! | `upload_index` | bucket id (u64 BE) ++ key ++ 0x00 ++ upload id | empty         |
//! | `parts`        | upload id (16) ++ part number (u32 BE)      | [`PartRecord`]   |
//! | `system`       | ASCII name                                  | per entry; `totals` and `totals/bucket/<id hex>`: [`TotalsRecord`], updated by merge (`totals.rs`) |
//! | `local`        | ASCII name (this node only, never replicated) | per entry      |
//!
//! Every write that acknowledges client data goes through [`MetaStore::write`]
//! with the WAL synced. Reads are plain point lookups and bounded iterators.

use std::path::Path;
use std::sync::Arc;

use cairn_dedup::ChunkId;
use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBWithThreadMode,
    MergeOperands, MultiThreaded, Options, ReadOptions, WriteBatch, WriteOptions,
};

use crate::error::{CodecError, EngineError, EngineResult};
use crate::meta_command::{MetaCf, MetaCommand, MetaGuard, MetaOp};
use crate::records::{
    BucketRecord, ChunkRecord, ChunkRefDelta, ManifestBlock, ManifestRef, ObjectVersion,
    PartRecord, TotalsRecord, UploadRecord, VersionId,
};
use crate::totals::{BUCKET_TOTALS_PREFIX, TOTALS_KEY, TotalsSnapshot};

pub type Db = DBWithThreadMode<MultiThreaded>;

pub const CF_BUCKETS: &str = "buckets";
pub const CF_OBJECTS: &str = "objects";
pub const CF_MANIFESTS: &str = "manifests";
pub const CF_INLINE_DATA: &str = "inline_data";
pub const CF_CHUNKS: &str = "chunks";
pub const CF_UPLOADS: &str = "uploads";
pub const CF_UPLOAD_INDEX: &str = "upload_index";
pub const CF_PARTS: &str = "parts";
pub const CF_SYSTEM: &str = "system";
/// This node's own state, never replicated nor in snapshots (not a
/// `MetaCf`): the clean-shutdown marker.
pub const CF_LOCAL: &str = "local";

const ALL_CFS: [&str; 10] = [
    CF_BUCKETS,
    CF_OBJECTS,
    CF_MANIFESTS,
    CF_INLINE_DATA,
    CF_CHUNKS,
    CF_UPLOADS,
    CF_UPLOAD_INDEX,
    CF_PARTS,
    CF_SYSTEM,
    CF_LOCAL,
];

/// Reads of a record whose inline bytes vanished under a concurrent
/// overwrite before `object` gives up.
const INLINE_READ_ATTEMPTS: usize = 8;

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

/// Upload ids are 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(pub [u8; 16]);

impl UploadId {
    pub fn random() -> Self {
        UploadId(crate::random_bytes())
    }
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(UploadId(out))
    }
}

impl std::fmt::Debug for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UploadId({})", self.to_hex())
    }
}

pub fn object_key(bucket_id: u64, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&bucket_id.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

pub fn manifest_key(version: VersionId, block: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&version.0);
    k[16..].copy_from_slice(&block.to_be_bytes());
    k
}

pub fn part_key(upload: UploadId, part_number: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&upload.0);
    k[16..].copy_from_slice(&part_number.to_be_bytes());
    k
}

pub fn upload_index_key(bucket_id: u64, key: &str, upload: UploadId) -> Vec<u8> {
    let mut k = object_key(bucket_id, key);
    k.push(0);
    k.extend_from_slice(&upload.0);
    k
}

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` when there is none (all 0xFF).
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

/// Full merge of chunk reference deltas onto a chunk record.
///
/// An empty value stands for "no record" (a delta without a record arrived
/// for a chunk that does not exist — a logic error we log, never hide).
fn chunk_full_merge(
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut current = match existing {
        Some(v) if !v.is_empty() => Some(ChunkRecord::decode(v).ok()?),
        _ => None,
    };
    for op in operands {
        let delta = ChunkRefDelta::decode(op).ok()?;
        match (&mut current, delta.record) {
            (Some(rec), _) => {
                let next = i128::from(rec.refcount) + i128::from(delta.delta);
                debug_assert!(next >= 0, "chunk refcount went negative");
                if next < 0 {
                    tracing::error!(chunk = %hex::encode(key), "chunk refcount went negative; clamped to 0");
                }
                rec.refcount = u64::try_from(next.max(0)).unwrap_or(u64::MAX);
                if let Some(m) = delta.relocate
                    && let Some(slot) = rec.shards.get_mut(usize::from(m.index))
                    && *slot == m.from
                {
                    *slot = m.to;
                }
                stamp_zero(rec, delta.at_ms);
            }
            (None, Some(mut rec)) => {
                rec.refcount = u64::try_from(delta.delta.max(0)).unwrap_or(0);
                rec.zero_since_ms = 0;
                stamp_zero(&mut rec, delta.at_ms);
                current = Some(rec);
            }
            // A relocation or release racing with the record's collection:
            // nothing left to change.
            (None, None) if delta.delta <= 0 => {}
            (None, None) => {
                tracing::error!(chunk = %hex::encode(key), delta = delta.delta, "reference delta for a missing chunk record");
            }
        }
    }
    Some(current.map(|r| r.encode()).unwrap_or_default())
}

/// Keeps `zero_since_ms` in step with the refcount: set when it becomes zero,
/// cleared while referenced.
fn stamp_zero(rec: &mut ChunkRecord, at_ms: u64) {
    if rec.refcount > 0 {
        rec.zero_since_ms = 0;
    } else if rec.zero_since_ms == 0 {
        rec.zero_since_ms = at_ms.max(1);
    }
}

/// Partial merges are declined (RocksDB then keeps the operands): combining
/// deltas is only associative while no delta is dangling, and we prefer the
/// exact sequential semantics of [`chunk_full_merge`].
fn chunk_partial_merge(_: &[u8], _: Option<&[u8]>, _: &MergeOperands) -> Option<Vec<u8>> {
    None
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
    /// See [`APPLY_CHUNK_STRIPES`].
    apply_chunk_stripes: Vec<std::sync::Mutex<()>>,
    /// Tests only: every command written, encoded, in the order RocksDB
    /// applied them (see `record_commands`).
    #[cfg(test)]
    recorded: std::sync::Mutex<Option<Vec<Vec<u8>>>>,
}

impl MetaStore {
    pub fn open(path: &Path) -> EngineResult<Self> {
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
                o.set_merge_operator("cairn-chunk-refs-v1", chunk_full_merge, chunk_partial_merge);
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
            apply_chunk_stripes: (0..APPLY_CHUNK_STRIPES)
                .map(|_| std::sync::Mutex::new(()))
                .collect(),
            #[cfg(test)]
            recorded: std::sync::Mutex::new(None),
        };
        // Metadata written before the totals existed: count them once.
        store.ensure_totals()?;
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

    pub fn bucket(&self, name: &str) -> EngineResult<Option<BucketRecord>> {
        self.get_cf(CF_BUCKETS, name.as_bytes())?
            .map(|v| BucketRecord::decode(&v).map_err(EngineError::from))
            .transpose()
    }

    /// A bucket record and a guard that it is still exactly this record (a
    /// bucket deleted and created again has a new id, so a new record).
    pub fn bucket_guarded(&self, name: &str) -> EngineResult<(Option<BucketRecord>, MetaGuard)> {
        let raw = self.get_cf(CF_BUCKETS, name.as_bytes())?;
        let rec = raw.as_deref().map(BucketRecord::decode).transpose()?;
        Ok((
            rec,
            MetaGuard::value_is(MetaCf::Buckets, name.as_bytes(), raw.as_deref()),
        ))
    }

    pub fn buckets(&self) -> EngineResult<Vec<(String, BucketRecord)>> {
        let cf = self.cf(CF_BUCKETS)?;
        let mut it = self.db.raw_iterator_cf(&cf);
        it.seek_to_first();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let name = String::from_utf8(k.to_vec())
                .map_err(|_| EngineError::Codec(CodecError::InvalidUtf8("bucket name")))?;
            out.push((name, BucketRecord::decode(v)?));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// The current version of `key`, with a small object's inline bytes
    /// attached (`DataElsewhere` resolved to `Data`), so a reader holds one
    /// consistent version however the record changes afterwards.
    pub fn object(&self, bucket_id: u64, key: &str) -> EngineResult<Option<ObjectVersion>> {
        Ok(self.object_guarded(bucket_id, key)?.0)
    }

    /// [`MetaStore::object`], and a guard that the key's record is still the
    /// one read: a command built from this version carries it, so it
    /// applies only if no other writer (on any node) replaced it first.
    pub fn object_guarded(
        &self,
        bucket_id: u64,
        key: &str,
    ) -> EngineResult<(Option<ObjectVersion>, MetaGuard)> {
        let okey = object_key(bucket_id, key);
        let guard = |raw: Option<&[u8]>| MetaGuard::value_is(MetaCf::Objects, &okey, raw);
        let mut previous: Option<VersionId> = None;
        // The record and its inline bytes are two reads: a writer may replace
        // the version (deleting its bytes) in between. Bytes found under the
        // version id are that version's (ids are never reused); bytes gone
        // mean a newer record, so read again.
        for _ in 0..INLINE_READ_ATTEMPTS {
            let Some(raw) = self.get_cf(CF_OBJECTS, &okey)? else {
                return Ok((None, guard(None)));
            };
            let mut v = ObjectVersion::decode(&raw)?;
            let ManifestRef::DataElsewhere { chunk, compressed } = v.manifest else {
                return Ok((Some(v), guard(Some(&raw))));
            };
            if let Some(sealed) = self.get_cf(CF_INLINE_DATA, &v.version_id.0)? {
                v.manifest = ManifestRef::Data {
                    chunk,
                    compressed,
                    sealed,
                };
                return Ok((Some(v), guard(Some(&raw))));
            }
            if previous == Some(v.version_id) {
                return Err(EngineError::Corrupt(format!(
                    "inline data of {:?} is missing",
                    v.version_id
                )));
            }
            previous = Some(v.version_id);
        }
        Err(EngineError::Internal(format!(
            "object {key} kept changing while being read"
        )))
    }

    pub fn manifest_block(&self, version: VersionId, block: u32) -> EngineResult<ManifestBlock> {
        let v = self
            .get_cf(CF_MANIFESTS, &manifest_key(version, block))?
            .ok_or_else(|| {
                EngineError::Corrupt(format!("manifest block {block} of {version:?} is missing"))
            })?;
        Ok(ManifestBlock::decode(&v)?)
    }

    /// A chunk record and a guard that it is still exactly this record.
    pub fn chunk_guarded(&self, id: &ChunkId) -> EngineResult<(Option<ChunkRecord>, MetaGuard)> {
        let raw = self.get_cf(CF_CHUNKS, id.as_bytes())?;
        let rec = match raw.as_deref() {
            Some(v) if !v.is_empty() => Some(ChunkRecord::decode(v)?),
            _ => None,
        };
        Ok((
            rec,
            MetaGuard::value_is(MetaCf::Chunks, id.as_bytes(), raw.as_deref()),
        ))
    }

    pub fn chunk(&self, id: &ChunkId) -> EngineResult<Option<ChunkRecord>> {
        match self.get_cf(CF_CHUNKS, id.as_bytes())? {
            Some(v) if !v.is_empty() => Ok(Some(ChunkRecord::decode(&v)?)),
            _ => Ok(None),
        }
    }

    /// An upload record and a guard that it is still exactly this record.
    pub fn upload_guarded(&self, id: UploadId) -> EngineResult<(Option<UploadRecord>, MetaGuard)> {
        let raw = self.get_cf(CF_UPLOADS, &id.0)?;
        let rec = raw.as_deref().map(UploadRecord::decode).transpose()?;
        Ok((
            rec,
            MetaGuard::value_is(MetaCf::Uploads, &id.0, raw.as_deref()),
        ))
    }

    /// A part record and a guard that it is still exactly this record.
    pub fn part_guarded(
        &self,
        upload: UploadId,
        part_number: u32,
    ) -> EngineResult<(Option<PartRecord>, MetaGuard)> {
        let key = part_key(upload, part_number);
        let raw = self.get_cf(CF_PARTS, &key)?;
        let rec = raw.as_deref().map(PartRecord::decode).transpose()?;
        Ok((
            rec,
            MetaGuard::value_is(MetaCf::Parts, &key, raw.as_deref()),
        ))
    }

    pub fn upload(&self, id: UploadId) -> EngineResult<Option<UploadRecord>> {
        self.get_cf(CF_UPLOADS, &id.0)?
            .map(|v| UploadRecord::decode(&v).map_err(EngineError::from))
            .transpose()
    }

    pub fn part(&self, upload: UploadId, part_number: u32) -> EngineResult<Option<PartRecord>> {
        self.get_cf(CF_PARTS, &part_key(upload, part_number))?
            .map(|v| PartRecord::decode(&v).map_err(EngineError::from))
            .transpose()
    }

    /// Parts of an upload with part number > `after`, at most `limit`, in order.
    pub fn parts(
        &self,
        upload: UploadId,
        after: u32,
        limit: usize,
    ) -> EngineResult<Vec<(u32, PartRecord)>> {
        Ok(self
            .parts_guarded(upload, after, limit)?
            .into_iter()
            .map(|(n, rec, _)| (n, rec))
            .collect())
    }

    /// [`MetaStore::parts`], each with a guard that it is still exactly
    /// that record.
    pub fn parts_guarded(
        &self,
        upload: UploadId,
        after: u32,
        limit: usize,
    ) -> EngineResult<Vec<(u32, PartRecord, MetaGuard)>> {
        let cf = self.cf(CF_PARTS)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(prefix_successor(&upload.0).unwrap_or_default());
        let mut it = self.db.raw_iterator_cf_opt(&cf, ro);
        let start = after.checked_add(1).map(|n| part_key(upload, n));
        match start {
            Some(k) => it.seek(k),
            None => return Ok(Vec::new()),
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if k.len() != 20 || k[..16] != upload.0 {
                break;
            }
            let mut n = [0u8; 4];
            n.copy_from_slice(&k[16..20]);
            out.push((
                u32::from_be_bytes(n),
                PartRecord::decode(v)?,
                MetaGuard::value_is(MetaCf::Parts, k, Some(v)),
            ));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Multipart uploads in id order after `after`, at most `limit`.
    pub fn uploads_page(
        &self,
        after: Option<UploadId>,
        limit: usize,
    ) -> EngineResult<Vec<(UploadId, UploadRecord)>> {
        let cf = self.cf(CF_UPLOADS)?;
        let mut it = self.db.raw_iterator_cf(&cf);
        match after {
            Some(a) => it.seek(a.0),
            None => it.seek_to_first(),
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if let Ok(id) = <[u8; 16]>::try_from(k)
                && Some(UploadId(id)) != after
            {
                out.push((UploadId(id), UploadRecord::decode(v)?));
            }
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// A RocksDB integer property summed over every column family.
    pub fn property_sum(&self, name: &str) -> u64 {
        ALL_CFS
            .iter()
            .filter_map(|cf| self.cf(cf).ok())
            .filter_map(|cf| self.db.property_int_value_cf(&cf, name).ok().flatten())
            .sum()
    }

    /// How many chunk records there are: the count the stored totals keep
    /// in the same commits as the records (exact, unlike RocksDB's
    /// `estimate-num-keys`), for the progress of jobs that walk every
    /// chunk. 0 if it cannot be read.
    pub fn chunk_count(&self) -> u64 {
        match self.get_cf(CF_SYSTEM, TOTALS_KEY.as_bytes()) {
            Ok(Some(v)) => TotalsRecord::decode(&v)
                .ok()
                .and_then(|t| u64::try_from(t.chunks).ok())
                .unwrap_or(0),
            Ok(None) | Err(_) => 0,
        }
    }

    /// Calls `f` with every object version (any bucket), in key order.
    pub fn for_each_object(
        &self,
        mut f: impl FnMut(ObjectVersion) -> EngineResult<()>,
    ) -> EngineResult<()> {
        let cf = self.cf(CF_OBJECTS)?;
        for item in self.db.iterator_cf(&cf, rocksdb::IteratorMode::Start) {
            let (_, v) = item?;
            f(ObjectVersion::decode(&v)?)?;
        }
        Ok(())
    }

    /// Calls `f` with every stored multipart part.
    pub fn for_each_part(
        &self,
        mut f: impl FnMut(PartRecord) -> EngineResult<()>,
    ) -> EngineResult<()> {
        let cf = self.cf(CF_PARTS)?;
        for item in self.db.iterator_cf(&cf, rocksdb::IteratorMode::Start) {
            let (_, v) = item?;
            f(PartRecord::decode(&v)?)?;
        }
        Ok(())
    }

    /// Makes every earlier (unsynced) write durable.
    pub fn sync_wal(&self) -> EngineResult<()> {
        Ok(self.db.flush_wal(true)?)
    }

    pub fn system(&self, name: &str) -> EngineResult<Option<Vec<u8>>> {
        self.get_cf(CF_SYSTEM, name.as_bytes())
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

    /// Names in `system` from `from` (inclusive) to `to` (exclusive), in
    /// order, at most `limit`.
    pub fn system_names(&self, from: &str, to: &str, limit: usize) -> EngineResult<Vec<String>> {
        let mut it = self.range_iter(CF_SYSTEM, Some(to.as_bytes().to_vec()))?;
        it.seek(from.as_bytes());
        let mut out = Vec::new();
        while let Some(k) = it.key() {
            if out.len() >= limit {
                break;
            }
            out.push(String::from_utf8_lossy(k).into_owned());
            it.next();
        }
        it.status()?;
        Ok(out)
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
        }
    }

    /// Chunk records in id order, starting after `after`, at most `limit`.
    pub fn chunks_page(
        &self,
        after: Option<&ChunkId>,
        limit: usize,
    ) -> EngineResult<Vec<(ChunkId, ChunkRecord)>> {
        let cf = self.cf(CF_CHUNKS)?;
        let start: Vec<u8> = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
        let iter = self.db.iterator_cf(
            &cf,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        let mut out = Vec::with_capacity(limit.min(4096));
        for item in iter {
            let (k, v) = item?;
            if after.is_some() && *k == *start {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            let Ok(bytes) = <[u8; 32]>::try_from(&*k) else {
                continue;
            };
            if v.is_empty() {
                continue;
            }
            out.push((ChunkId::from_bytes(bytes), ChunkRecord::decode(&v)?));
        }
        Ok(out)
    }

    /// Writes without waiting for the WAL to reach the disk. Only for
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
            Some(crate::totals::derive(command, |cf, key| {
                match read.iter().find(|(c, k, _)| *c == cf && *k == key) {
                    Some((_, _, v)) => Ok(v.clone()),
                    None => self.get_cf(cf.name(), key),
                }
            })?)
        };
        let mut wb = WriteBatch::default();
        for op in &command.ops {
            match op {
                MetaOp::Put { cf, key, value } => wb.put_cf(&self.cf(cf.name())?, key, value),
                MetaOp::Delete { cf, key } => wb.delete_cf(&self.cf(cf.name())?, key),
                MetaOp::Merge { cf, key, operand } => {
                    wb.merge_cf(&self.cf(cf.name())?, key, operand)
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
        })
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

impl MetaStore {
    /// Everything in the replicated column families as one command of puts
    /// (merges resolved), in column family then key order: what a replica
    /// needs to start from this state. Holds it all in memory — for a
    /// snapshot of a small deployment or a test, not for the data path.
    pub fn export(&self) -> EngineResult<MetaCommand> {
        // One RocksDB snapshot: every column family as of the same moment.
        let snapshot = self.db.snapshot();
        let mut ops = Vec::new();
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            for item in snapshot.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, v) = item?;
                ops.push(MetaOp::Put {
                    cf,
                    key: k.to_vec(),
                    value: v.to_vec(),
                });
            }
        }
        Ok(MetaCommand {
            guards: Vec::new(),
            ops,
        })
    }

    /// Replaces everything in the replicated column families by `command`
    /// (an [`MetaStore::export`] of another store), atomically.
    pub fn replace_all(&self, command: &MetaCommand, sync: bool) -> EngineResult<()> {
        let mut all = MetaCommand::default();
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            for item in self.db.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, _) = item?;
                all.ops.push(MetaOp::Delete {
                    cf,
                    key: k.to_vec(),
                });
            }
        }
        all.ops.extend(command.ops.iter().cloned());
        self.apply(&all, sync)?;
        // A store exported before the totals existed carried none.
        self.ensure_totals()
    }
}

/// Start of a metadata stream ([`MetaStore::export_stream`]).
const STREAM_MAGIC: &[u8; 8] = b"CAIRNMDS";
const STREAM_FORMAT_V1: u8 = 1;
/// Writes and deletes per batch while a stream is imported.
const IMPORT_BATCH_BYTES: usize = 4 << 20;

/// A writer that hashes what passes through it.
struct HashingWriter<'a> {
    inner: &'a mut dyn std::io::Write,
    hasher: blake3::Hasher,
}

impl std::io::Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn stream_io(e: std::io::Error) -> EngineError {
    EngineError::io("metadata stream", e)
}

fn read_exact_or_corrupt(r: &mut dyn std::io::Read, buf: &mut [u8]) -> EngineResult<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            EngineError::Corrupt("metadata stream is truncated".into())
        } else {
            stream_io(e)
        }
    })
}

/// One key and value of a metadata stream, with its column family.
type StreamRecord = (MetaCf, Vec<u8>, Vec<u8>);

/// One record of a stream, or `None` at the end.
fn read_stream_record(r: &mut dyn std::io::Read) -> EngineResult<Option<StreamRecord>> {
    let mut cf = [0u8; 1];
    read_exact_or_corrupt(r, &mut cf)?;
    if cf[0] == 0 {
        return Ok(None);
    }
    let cf = MetaCf::from_u8(cf[0]).ok_or_else(|| {
        EngineError::Corrupt(format!("metadata stream names column family {}", cf[0]))
    })?;
    let read_bytes = |r: &mut dyn std::io::Read| -> EngineResult<Vec<u8>> {
        let mut len = [0u8; 4];
        read_exact_or_corrupt(r, &mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        // Bounded by what a record may hold (keys ≤ 1 KiB + prefix, values
        // ≤ an inline object or a manifest block).
        if len > 64 << 20 {
            return Err(EngineError::Corrupt(format!(
                "metadata stream record of {len} bytes"
            )));
        }
        let mut v = vec![0u8; len];
        read_exact_or_corrupt(r, &mut v)?;
        Ok(v)
    };
    let key = read_bytes(r)?;
    let value = read_bytes(r)?;
    Ok(Some((cf, key, value)))
}

impl MetaStore {
    /// Writes every key and value of the replicated column families, as of
    /// one RocksDB snapshot, to `out` as a stream (memory: one record at a
    /// time): `CAIRNMDS`, format u8 = 1, then per record cf u8 (`MetaCf`
    /// number), key and value as u32-LE-length bytes, in column family then
    /// key order; a 0 byte; the BLAKE3 of everything before it [32].
    /// Returns the values the `system` names in `wanted` had in that same
    /// snapshot (a Raft state machine's applied position).
    pub fn export_stream(
        &self,
        out: &mut dyn std::io::Write,
        wanted: &[&str],
    ) -> EngineResult<Vec<Option<Vec<u8>>>> {
        let snapshot = self.db.snapshot();
        let mut found = vec![None; wanted.len()];
        let mut w = HashingWriter {
            inner: out,
            hasher: blake3::Hasher::new(),
        };
        use std::io::Write as _;
        w.write_all(STREAM_MAGIC).map_err(stream_io)?;
        w.write_all(&[STREAM_FORMAT_V1]).map_err(stream_io)?;
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            for item in snapshot.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, v) = item?;
                if cf == MetaCf::System
                    && let Some(i) = wanted.iter().position(|n| n.as_bytes() == &*k)
                {
                    found[i] = Some(v.to_vec());
                }
                let (kl, vl) = (
                    u32::try_from(k.len())
                        .map_err(|_| EngineError::Internal("key too long".into()))?,
                    u32::try_from(v.len())
                        .map_err(|_| EngineError::Internal("value too long".into()))?,
                );
                w.write_all(&[cf as u8]).map_err(stream_io)?;
                w.write_all(&kl.to_le_bytes()).map_err(stream_io)?;
                w.write_all(&k).map_err(stream_io)?;
                w.write_all(&vl.to_le_bytes()).map_err(stream_io)?;
                w.write_all(&v).map_err(stream_io)?;
            }
        }
        w.write_all(&[0]).map_err(stream_io)?;
        let digest = w.hasher.finalize();
        w.inner.write_all(digest.as_bytes()).map_err(stream_io)?;
        w.inner.flush().map_err(stream_io)?;
        Ok(found)
    }

    /// Checks a stream written by [`MetaStore::export_stream`] end to end
    /// (format, every record, the BLAKE3 at the end) without changing
    /// anything. Call before [`MetaStore::import_stream`].
    pub fn verify_stream(r: &mut dyn std::io::Read) -> EngineResult<()> {
        let mut hasher = blake3::Hasher::new();
        let mut head = [0u8; 9];
        read_exact_or_corrupt(r, &mut head)?;
        if &head[..8] != STREAM_MAGIC || head[8] != STREAM_FORMAT_V1 {
            return Err(EngineError::Corrupt(
                "not a metadata stream (format 1)".into(),
            ));
        }
        hasher.update(&head);
        let mut tee = HashingReader { inner: r, hasher };
        while read_stream_record(&mut tee)?.is_some() {}
        let expected = tee.hasher.finalize();
        let mut digest = [0u8; 32];
        read_exact_or_corrupt(tee.inner, &mut digest)?;
        if expected.as_bytes() != &digest {
            return Err(EngineError::Corrupt(
                "metadata stream fails its BLAKE3 check".into(),
            ));
        }
        let mut extra = [0u8; 1];
        match tee.inner.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(EngineError::Corrupt(
                "metadata stream has bytes after its digest".into(),
            )),
            Err(e) => Err(stream_io(e)),
        }
    }

    /// Replaces everything in the replicated column families by the stream
    /// (already checked with [`MetaStore::verify_stream`]), then applies
    /// `last` (a state machine's position), syncing at the end. Not atomic:
    /// it runs in bounded batches, so the caller records that an import is
    /// under way (node-local) and redoes it after a crash before using the
    /// store.
    pub fn import_stream(&self, r: &mut dyn std::io::Read, last: &MetaCommand) -> EngineResult<()> {
        use std::sync::atomic::Ordering;
        self.import_generation.fetch_add(1, Ordering::SeqCst);
        let result = self.import_stream_inner(r, last);
        self.import_generation.fetch_add(1, Ordering::SeqCst);
        result
    }

    /// See `import_generation`: odd while an import runs.
    pub fn import_generation(&self) -> u64 {
        self.import_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn import_stream_inner(
        &self,
        r: &mut dyn std::io::Read,
        last: &MetaCommand,
    ) -> EngineResult<()> {
        // Everything goes first, in bounded batches.
        for cf in MetaCf::ALL {
            let h = self.cf(cf.name())?;
            let mut batch = WriteBatch::default();
            for item in self.db.iterator_cf(&h, rocksdb::IteratorMode::Start) {
                let (k, _) = item?;
                batch.delete_cf(&h, &k);
                if batch.size_in_bytes() >= IMPORT_BATCH_BYTES {
                    self.write_raw(std::mem::take(&mut batch), false)?;
                }
            }
            self.write_raw(batch, false)?;
        }
        let mut head = [0u8; 9];
        read_exact_or_corrupt(r, &mut head)?;
        if &head[..8] != STREAM_MAGIC || head[8] != STREAM_FORMAT_V1 {
            return Err(EngineError::Corrupt(
                "not a metadata stream (format 1)".into(),
            ));
        }
        let mut batch = WriteBatch::default();
        while let Some((cf, key, value)) = read_stream_record(r)? {
            batch.put_cf(&self.cf(cf.name())?, &key, &value);
            if batch.size_in_bytes() >= IMPORT_BATCH_BYTES {
                self.write_raw(std::mem::take(&mut batch), false)?;
            }
        }
        self.write_raw(batch, false)?;
        self.apply(last, true)?;
        // A snapshot from a node that predates the totals carries none.
        self.ensure_totals()
    }

    fn write_raw(&self, batch: WriteBatch, sync: bool) -> EngineResult<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        Ok(self.db.write_opt(batch, &wo)?)
    }
}

impl MetaStore {
    /// The totals as kept (`totals.rs`): everything and per bucket id.
    pub(crate) fn totals(&self) -> EngineResult<TotalsSnapshot> {
        let global = self
            .get_cf(CF_SYSTEM, TOTALS_KEY.as_bytes())?
            .map(|v| TotalsRecord::decode(&v))
            .transpose()?
            .unwrap_or_default();
        let mut buckets = std::collections::BTreeMap::new();
        let mut it =
            self.range_iter(CF_SYSTEM, prefix_successor(BUCKET_TOTALS_PREFIX.as_bytes()))?;
        it.seek(BUCKET_TOTALS_PREFIX.as_bytes());
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if let Some(id) = crate::totals::bucket_id_of_totals_key(k) {
                buckets.insert(id, TotalsRecord::decode(v)?);
            }
            it.next();
        }
        it.status()?;
        Ok(TotalsSnapshot { global, buckets })
    }

    /// One bucket's totals (zero if it has none: empty).
    pub(crate) fn bucket_totals(&self, bucket_id: u64) -> EngineResult<TotalsRecord> {
        let key = crate::totals::bucket_totals_key(bucket_id);
        Ok(self
            .get_cf(CF_SYSTEM, key.as_bytes())?
            .map(|v| TotalsRecord::decode(&v))
            .transpose()?
            .unwrap_or_default())
    }

    /// If the totals are missing (metadata written before they existed, or
    /// installed from such a store), counts them from the records and
    /// stores them. Only while nothing else writes (opening, installing a
    /// snapshot).
    pub(crate) fn ensure_totals(&self) -> EngineResult<()> {
        if self.get_cf(CF_SYSTEM, TOTALS_KEY.as_bytes())?.is_some() {
            return Ok(());
        }
        let snapshot = self.db.snapshot();
        let counted = self.count_totals(&snapshot)?;
        drop(snapshot);
        tracing::info!(
            objects = counted.global.objects,
            logical_bytes = counted.global.logical_bytes,
            stored_bytes = counted.global.stored_bytes,
            "stored totals counted from the metadata records"
        );
        let mut command = MetaCommand::default();
        // Leftovers of an earlier count whose global record went.
        for id in self.totals()?.buckets.keys() {
            command.ops.push(MetaOp::Delete {
                cf: MetaCf::System,
                key: crate::totals::bucket_totals_key(*id).into_bytes(),
            });
        }
        for (id, t) in &counted.buckets {
            command.ops.push(MetaOp::Put {
                cf: MetaCf::System,
                key: crate::totals::bucket_totals_key(*id).into_bytes(),
                value: t.encode(),
            });
        }
        command.ops.push(MetaOp::Put {
            cf: MetaCf::System,
            key: TOTALS_KEY.as_bytes().to_vec(),
            value: counted.global.encode(),
        });
        // Sets the totals explicitly: nothing is derived from it.
        self.apply(&command, self.sync_write)
    }

    /// The totals kept and the totals counted from the records, both as of
    /// one snapshot of the metadata.
    pub(crate) fn kept_and_recounted_totals(
        &self,
    ) -> EngineResult<(TotalsSnapshot, TotalsSnapshot)> {
        let snapshot = self.db.snapshot();
        let counted = self.count_totals(&snapshot)?;
        let system = self.cf(CF_SYSTEM)?;
        let mut kept = TotalsSnapshot::default();
        for item in snapshot.iterator_cf(&system, rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            if *k == *TOTALS_KEY.as_bytes() {
                kept.global = TotalsRecord::decode(&v)?;
            } else if let Some(id) = crate::totals::bucket_id_of_totals_key(&k) {
                kept.buckets.insert(id, TotalsRecord::decode(&v)?);
            }
        }
        Ok((kept, counted))
    }

    /// Counts the totals from the object, inline-data and chunk records.
    fn count_totals(
        &self,
        snapshot: &rocksdb::SnapshotWithThreadMode<'_, Db>,
    ) -> EngineResult<TotalsSnapshot> {
        let mut out = TotalsSnapshot::default();
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for item in snapshot.iterator_cf(&self.cf(CF_OBJECTS)?, rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            let Some(o) = crate::totals::object_share(&v) else {
                continue;
            };
            let size = to_i64(o.size);
            out.global.objects += 1;
            out.global.logical_bytes += size;
            let n = to_i64(o.embedded);
            out.global.stored_bytes += n;
            out.global.raw_bytes += n;
            out.global.inline_bytes += n;
            if let Some(id) = k.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                let t = out.buckets.entry(u64::from_be_bytes(id)).or_default();
                t.objects += 1;
                t.logical_bytes += size;
            }
        }
        for item in snapshot.iterator_cf(&self.cf(CF_INLINE_DATA)?, rocksdb::IteratorMode::Start) {
            let (_, v) = item?;
            let n = to_i64(v.len() as u64);
            out.global.stored_bytes += n;
            out.global.raw_bytes += n;
            out.global.inline_bytes += n;
        }
        for item in snapshot.iterator_cf(&self.cf(CF_CHUNKS)?, rocksdb::IteratorMode::Start) {
            let (_, v) = item?;
            let Some((sealed, raw)) = crate::totals::chunk_share(&v) else {
                continue;
            };
            out.global.chunks += 1;
            out.global.stored_bytes += to_i64(sealed);
            out.global.raw_bytes += to_i64(raw);
        }
        Ok(out)
    }

    /// Tests only: removes the totals, as in a store written before they
    /// existed.
    #[cfg(test)]
    pub(crate) fn forget_totals(&self) -> EngineResult<()> {
        let mut command = MetaCommand::default();
        for id in self.totals()?.buckets.keys() {
            command.ops.push(MetaOp::Delete {
                cf: MetaCf::System,
                key: crate::totals::bucket_totals_key(*id).into_bytes(),
            });
        }
        command.ops.push(MetaOp::Delete {
            cf: MetaCf::System,
            key: TOTALS_KEY.as_bytes().to_vec(),
        });
        self.apply(&command, true)
    }
}

/// A reader that hashes what passes through it.
struct HashingReader<'a> {
    inner: &'a mut dyn std::io::Read,
    hasher: blake3::Hasher,
}

impl std::io::Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An atomic set of metadata changes, typed by record kind; written as one
/// [`MetaCommand`].
#[derive(Clone)]
pub struct MetaBatch {
    command: MetaCommand,
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

    /// Makes the batch conditional on chunk `id` having a record.
    pub fn guard_chunk_present(&mut self, id: &ChunkId) {
        self.guard(MetaGuard::Present {
            cf: MetaCf::Chunks,
            key: id.as_bytes().to_vec(),
        });
    }

    fn put(&mut self, cf: MetaCf, key: &[u8], value: Vec<u8>) -> EngineResult<()> {
        self.command.ops.push(MetaOp::Put {
            cf,
            key: key.to_vec(),
            value,
        });
        Ok(())
    }

    fn delete(&mut self, cf: MetaCf, key: &[u8]) -> EngineResult<()> {
        self.command.ops.push(MetaOp::Delete {
            cf,
            key: key.to_vec(),
        });
        Ok(())
    }

    pub fn put_bucket(&mut self, name: &str, rec: &BucketRecord) -> EngineResult<()> {
        self.put(MetaCf::Buckets, name.as_bytes(), rec.encode())
    }

    pub fn delete_bucket(&mut self, name: &str) -> EngineResult<()> {
        self.delete(MetaCf::Buckets, name.as_bytes())
    }

    /// Writes a version record; a small object's sealed bytes go to
    /// `inline_data` under its version id (see [`ObjectVersion::encode_stored`]).
    pub fn put_object(&mut self, bucket_id: u64, key: &str, v: &ObjectVersion) -> EngineResult<()> {
        let (record, inline) = v.encode_stored();
        if let Some(sealed) = inline {
            self.put(MetaCf::InlineData, &v.version_id.0, sealed.to_vec())?;
        }
        self.put(MetaCf::Objects, &object_key(bucket_id, key), record)
    }

    /// Writes a record in the form used before `inline_data` existed
    /// (inline bytes inside the record), to test that it still reads.
    #[cfg(test)]
    pub fn put_object_with_bytes_in_record(
        &mut self,
        bucket_id: u64,
        key: &str,
        v: &ObjectVersion,
    ) -> EngineResult<()> {
        self.put(MetaCf::Objects, &object_key(bucket_id, key), v.encode())
    }

    /// Removes a version's inline bytes (a no-op for a record that keeps
    /// them itself, written before the `inline_data` column family).
    pub fn delete_inline_data(&mut self, version: VersionId) -> EngineResult<()> {
        self.delete(MetaCf::InlineData, &version.0)
    }

    pub fn delete_object(&mut self, bucket_id: u64, key: &str) -> EngineResult<()> {
        self.delete(MetaCf::Objects, &object_key(bucket_id, key))
    }

    pub fn put_manifest_block(
        &mut self,
        version: VersionId,
        block: u32,
        b: &ManifestBlock,
    ) -> EngineResult<()> {
        self.put(MetaCf::Manifests, &manifest_key(version, block), b.encode())
    }

    pub fn delete_manifest_block(&mut self, version: VersionId, block: u32) -> EngineResult<()> {
        self.delete(MetaCf::Manifests, &manifest_key(version, block))
    }

    pub fn chunk_ref(&mut self, id: &ChunkId, delta: &ChunkRefDelta) -> EngineResult<()> {
        self.command.ops.push(MetaOp::Merge {
            cf: MetaCf::Chunks,
            key: id.as_bytes().to_vec(),
            operand: delta.encode(),
        });
        Ok(())
    }

    /// Removes a chunk record (garbage collection, under the chunk's lock).
    pub fn delete_chunk(&mut self, id: &ChunkId) -> EngineResult<()> {
        self.delete(MetaCf::Chunks, id.as_bytes())
    }

    pub fn put_upload(&mut self, id: UploadId, rec: &UploadRecord) -> EngineResult<()> {
        self.put(MetaCf::Uploads, &id.0, rec.encode())?;
        self.put(
            MetaCf::UploadIndex,
            &upload_index_key(rec.bucket_id, &rec.key, id),
            Vec::new(),
        )
    }

    pub fn delete_upload(&mut self, id: UploadId, rec: &UploadRecord) -> EngineResult<()> {
        self.delete(MetaCf::Uploads, &id.0)?;
        self.delete(
            MetaCf::UploadIndex,
            &upload_index_key(rec.bucket_id, &rec.key, id),
        )
    }

    pub fn put_part(&mut self, upload: UploadId, n: u32, p: &PartRecord) -> EngineResult<()> {
        self.put(MetaCf::Parts, &part_key(upload, n), p.encode())
    }

    pub fn delete_part(&mut self, upload: UploadId, n: u32) -> EngineResult<()> {
        self.delete(MetaCf::Parts, &part_key(upload, n))
    }

    pub fn put_system(&mut self, name: &str, value: &[u8]) -> EngineResult<()> {
        self.put(MetaCf::System, name.as_bytes(), value.to_vec())
    }

    pub fn delete_system(&mut self, name: &str) -> EngineResult<()> {
        self.delete(MetaCf::System, name.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ShardLocation;

    fn rec(refcount: u64, segment: u64) -> ChunkRecord {
        ChunkRecord {
            refcount,
            plain_len: 10,
            sealed_len: 40,
            compressed: false,
            data_shards: 1,
            parity_shards: 1,
            shard_len: 40,
            shards: vec![
                ShardLocation {
                    node: 0,
                    drive: 0,
                    segment,
                    offset: 0
                };
                2
            ],
            zero_since_ms: 0,
        }
    }

    fn delta(delta: i64, record: Option<ChunkRecord>) -> ChunkRefDelta {
        ChunkRefDelta {
            delta,
            at_ms: 1000,
            record,
            relocate: None,
        }
    }

    #[test]
    fn chunk_refs_merge_first_record_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let id = ChunkId::from_bytes([9; 32]);
        assert!(store.chunk(&id).unwrap().is_none());

        // Two writers race to create the same chunk: the first merged wins.
        let mut b = store.batch();
        b.chunk_ref(&id, &delta(1, Some(rec(0, 1)))).unwrap();
        store.write(b).unwrap();
        let mut b = store.batch();
        b.chunk_ref(&id, &delta(2, Some(rec(0, 2)))).unwrap();
        store.write(b).unwrap();
        let got = store.chunk(&id).unwrap().unwrap();
        assert_eq!(got.refcount, 3);
        assert_eq!(got.shards[0].segment, 1);

        let mut b = store.batch();
        b.chunk_ref(&id, &delta(-3, None)).unwrap();
        store.write(b).unwrap();
        let got = store.chunk(&id).unwrap().unwrap();
        assert_eq!(got.refcount, 0);
        assert_eq!(
            got.zero_since_ms, 1000,
            "grace period starts at the release"
        );

        // A relocation applies only while the record still points at `from`.
        let from = got.shards[1];
        let to = ShardLocation {
            segment: 99,
            offset: 64,
            ..from
        };
        for (from, expect) in [(to, from), (from, to)] {
            let mut b = store.batch();
            let mut d = delta(0, None);
            d.relocate = Some(crate::records::ShardMove { index: 1, from, to });
            b.chunk_ref(&id, &d).unwrap();
            store.write(b).unwrap();
            assert_eq!(store.chunk(&id).unwrap().unwrap().shards[1], expect);
        }

        // A new reference clears the stamp.
        let mut b = store.batch();
        b.chunk_ref(&id, &delta(1, None)).unwrap();
        store.write(b).unwrap();
        assert_eq!(store.chunk(&id).unwrap().unwrap().zero_since_ms, 0);
    }

    #[test]
    fn merges_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let id = ChunkId::from_bytes([1; 32]);
        {
            let store = MetaStore::open(dir.path()).unwrap();
            for i in 0..50 {
                let mut b = store.batch();
                let record = (i == 0).then(|| rec(0, 7));
                b.chunk_ref(&id, &delta(1, record)).unwrap();
                store.write(b).unwrap();
            }
            store
                .db
                .compact_range_cf(&store.cf(CF_CHUNKS).unwrap(), None::<&[u8]>, None::<&[u8]>);
        }
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(store.chunk(&id).unwrap().unwrap().refcount, 50);
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

    #[test]
    fn prefix_successor_works() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
    }
}
