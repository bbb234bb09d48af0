//! Persisted metadata records and their versioned encodings.
//!
//! Each record's `encode` writes format version [`FORMAT_V1`] first. When a
//! record changes shape, add a `V2`, keep the V1 decoder frozen, and migrate on
//! read — never edit what V1 means. The byte layouts are listed in
//! docs/ARCHITECTURE.md ("On-disk formats").

use cairn_dedup::ChunkId;

use crate::codec::{RecordReader, RecordWriter};
use crate::error::CodecError;

pub const FORMAT_V1: u8 = 1;

fn check_version(r: &mut RecordReader<'_>, what: &'static str) -> Result<(), CodecError> {
    match r.u8()? {
        FORMAT_V1 => Ok(()),
        version => Err(CodecError::UnknownVersion { what, version }),
    }
}

/// A random 128-bit identifier of one stored version of an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(pub [u8; 16]);

impl VersionId {
    pub fn random() -> Self {
        VersionId(crate::random_bytes())
    }
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// A version as clients name it (`versionId`, `x-amz-version-id`):
/// `null`, or 48 hex digits — the version's `seq` subtracted from
/// `u64::MAX` (so a key's newer versions sort first), then its
/// [`VersionId`]. Opaque to clients; a lookup by it is one point read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VersionRef {
    Null,
    Id { seq: u64, id: VersionId },
}

impl VersionRef {
    /// The reference a client sent; `None` if it cannot name any version
    /// (S3 answers such ids with `InvalidArgument`).
    pub fn parse(s: &str) -> Option<VersionRef> {
        if s == "null" {
            return Some(VersionRef::Null);
        }
        if s.len() != 48 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let inverted = u64::from_str_radix(s.get(..16)?, 16).ok()?;
        let mut id = [0u8; 16];
        hex::decode_to_slice(s.get(16..)?, &mut id).ok()?;
        Some(VersionRef::Id {
            seq: u64::MAX - inverted,
            id: VersionId(id),
        })
    }
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionRef::Null => f.write_str("null"),
            VersionRef::Id { seq, id } => write!(f, "{:016x}{}", u64::MAX - seq, id.to_hex()),
        }
    }
}

impl std::fmt::Debug for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VersionId({})", self.to_hex())
    }
}

/// Where one shard of a chunk lives: `(node, drive, segment, offset)`.
/// Node 0 is the local node; the cluster issue gives other nodes ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardLocation {
    pub node: u16,
    pub drive: u16,
    pub segment: u64,
    pub offset: u64,
}

impl ShardLocation {
    const ENCODED_BYTES: usize = 20;

    /// The location of a shard that could not be written (its drive was
    /// faulty): segment 0 never exists, so reads find it missing and a
    /// scrub rebuilds it onto `drive`.
    pub fn unwritten(drive: u16) -> Self {
        ShardLocation {
            node: 0,
            drive,
            segment: 0,
            offset: 0,
        }
    }

    pub fn is_unwritten(&self) -> bool {
        self.segment == 0
    }
}

/// One stored chunk: how it was transformed and where its shards are.
///
/// Invariant: `shards.len() == data_shards + parity_shards`; shard `i` of the
/// erasure-coded, sealed chunk is at `shards[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Number of manifest entries (object versions, multipart parts) that
    /// reference this chunk. Zero means "garbage once the grace period ends".
    pub refcount: u64,
    pub plain_len: u32,
    /// Length of the sealed (compressed-or-raw + encrypted) form, which is
    /// what the erasure coder split into shards.
    pub sealed_len: u32,
    pub compressed: bool,
    pub data_shards: u8,
    pub parity_shards: u8,
    pub shard_len: u32,
    pub shards: Vec<ShardLocation>,
    /// When the refcount last became zero (unix ms); 0 while referenced.
    /// Garbage collection deletes the record once this is older than its
    /// grace period.
    pub zero_since_ms: u64,
}

impl ChunkRecord {
    pub fn encode(&self) -> Vec<u8> {
        debug_assert_eq!(
            self.shards.len(),
            usize::from(self.data_shards) + usize::from(self.parity_shards)
        );
        let mut w = RecordWriter::with_version(FORMAT_V1);
        w.u64(self.refcount)
            .u32(self.plain_len)
            .u32(self.sealed_len)
            .u8(u8::from(self.compressed))
            .u8(self.data_shards)
            .u8(self.parity_shards)
            .u32(self.shard_len)
            .u32(self.shards.len() as u32);
        for s in &self.shards {
            w.u16(s.node).u16(s.drive).u64(s.segment).u64(s.offset);
        }
        w.u64(self.zero_since_ms);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "chunk");
        check_version(&mut r, "chunk")?;
        let refcount = r.u64()?;
        let plain_len = r.u32()?;
        let sealed_len = r.u32()?;
        let compressed = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(CodecError::Invalid("chunk")),
        };
        let data_shards = r.u8()?;
        let parity_shards = r.u8()?;
        let shard_len = r.u32()?;
        let n = r.count(ShardLocation::ENCODED_BYTES)?;
        if n != usize::from(data_shards) + usize::from(parity_shards) || data_shards == 0 {
            return Err(CodecError::Invalid("chunk"));
        }
        let mut shards = Vec::with_capacity(n);
        for _ in 0..n {
            shards.push(ShardLocation {
                node: r.u16()?,
                drive: r.u16()?,
                segment: r.u64()?,
                offset: r.u64()?,
            });
        }
        let zero_since_ms = r.u64()?;
        r.finish()?;
        Ok(ChunkRecord {
            refcount,
            plain_len,
            sealed_len,
            compressed,
            data_shards,
            parity_shards,
            shard_len,
            shards,
            zero_since_ms,
        })
    }
}

/// A merge operand on a chunk record, applied in order by the merge operator
/// (`meta.rs`):
///
/// * add `delta` references (`at_ms` stamps a transition to zero, which
///   starts the garbage-collection grace period);
/// * if the record does not exist yet, `record` (written by this PUT) creates
///   it. Two PUTs that race to store the same new chunk both send a `record`;
///   the first one merged wins and the loser's shards become unreferenced
///   segment space (reclaimed by compaction);
/// * `relocate`: compaction moved shard `index` from `from` to `to`; applied
///   only if the record still points at `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRefDelta {
    pub delta: i64,
    pub at_ms: u64,
    pub record: Option<ChunkRecord>,
    pub relocate: Option<ShardMove>,
}

/// One shard moved by compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardMove {
    pub index: u8,
    pub from: ShardLocation,
    pub to: ShardLocation,
}

fn write_location(w: &mut RecordWriter, s: &ShardLocation) {
    w.u16(s.node).u16(s.drive).u64(s.segment).u64(s.offset);
}

fn read_location(r: &mut RecordReader<'_>) -> Result<ShardLocation, CodecError> {
    Ok(ShardLocation {
        node: r.u16()?,
        drive: r.u16()?,
        segment: r.u64()?,
        offset: r.u64()?,
    })
}

impl ChunkRefDelta {
    /// A plain reference change.
    pub fn refs(delta: i64) -> Self {
        ChunkRefDelta {
            delta,
            at_ms: crate::now_ms(),
            record: None,
            relocate: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(FORMAT_V1);
        w.i64(self.delta).u64(self.at_ms);
        match &self.record {
            Some(rec) => {
                w.u8(1).bytes(&rec.encode());
            }
            None => {
                w.u8(0);
            }
        }
        match &self.relocate {
            Some(m) => {
                w.u8(1).u8(m.index);
                write_location(&mut w, &m.from);
                write_location(&mut w, &m.to);
            }
            None => {
                w.u8(0);
            }
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "chunk delta");
        check_version(&mut r, "chunk delta")?;
        let delta = r.i64()?;
        let at_ms = r.u64()?;
        let record = match r.u8()? {
            0 => None,
            1 => Some(ChunkRecord::decode(r.bytes()?)?),
            _ => return Err(CodecError::Invalid("chunk delta")),
        };
        let relocate = match r.u8()? {
            0 => None,
            1 => Some(ShardMove {
                index: r.u8()?,
                from: read_location(&mut r)?,
                to: read_location(&mut r)?,
            }),
            _ => return Err(CodecError::Invalid("chunk delta")),
        };
        r.finish()?;
        Ok(ChunkRefDelta {
            delta,
            at_ms,
            record,
            relocate,
        })
    }
}

impl ChunkRefDelta {
    /// Whether an encoded operand carries a record (may create the chunk
    /// record), read from its fixed header without decoding the rest:
    /// version u8, delta i64, at_ms u64, record flag u8.
    pub fn encoded_carries_record(buf: &[u8]) -> bool {
        buf.first() == Some(&FORMAT_V1) && buf.get(17) == Some(&1)
    }
}

/// What is stored now (not what happened since the process started): the
/// totals kept in `system` under `totals` (everything) and
/// `totals/bucket/<bucket id, 16 hex digits>` (one bucket: only `objects`
/// and `logical_bytes` are used). Kept up to date by the metadata store in
/// the same write as each change it counts (`totals.rs`), as merge operands
/// of this same shape holding signed differences, which the `system`
/// merge operator sums.
///
/// Encoding: version u8 = 1, field count u8, then that many i64 LE in the
/// order of the fields below. A decoder takes missing trailing fields as 0
/// and ignores extra ones (fields are only ever appended); the encoder
/// always writes all [`TotalsRecord::FIELDS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TotalsRecord {
    /// Current object versions.
    pub objects: i64,
    /// Sum of their sizes: what clients see.
    pub logical_bytes: i64,
    /// After dedup, compression and encryption: every chunk record's sealed
    /// length once (however many versions reference it, including chunks
    /// awaiting garbage collection), plus the sealed bytes of small objects
    /// kept in the metadata.
    pub stored_bytes: i64,
    /// On drives: every chunk's k+m shards with their record headers, plus
    /// the small objects' sealed bytes once (they live in the metadata).
    pub raw_bytes: i64,
    /// Chunk records.
    pub chunks: i64,
    /// The part of `stored_bytes` (and `raw_bytes`) kept in the metadata.
    pub inline_bytes: i64,
    /// Noncurrent versions (older versions of versioned keys), delete
    /// markers not included.
    pub noncurrent_versions: i64,
    /// Sum of their sizes.
    pub noncurrent_bytes: i64,
    /// Delete markers, current or not.
    pub delete_markers: i64,
}

impl TotalsRecord {
    pub const FIELDS: u8 = 9;

    fn fields(&self) -> [i64; 9] {
        [
            self.objects,
            self.logical_bytes,
            self.stored_bytes,
            self.raw_bytes,
            self.chunks,
            self.inline_bytes,
            self.noncurrent_versions,
            self.noncurrent_bytes,
            self.delete_markers,
        ]
    }

    fn from_fields(f: [i64; 9]) -> Self {
        TotalsRecord {
            objects: f[0],
            logical_bytes: f[1],
            stored_bytes: f[2],
            raw_bytes: f[3],
            chunks: f[4],
            inline_bytes: f[5],
            noncurrent_versions: f[6],
            noncurrent_bytes: f[7],
            delete_markers: f[8],
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == TotalsRecord::default()
    }

    /// Field-wise sum (saturating).
    pub fn add(&mut self, other: &TotalsRecord) {
        let (a, b) = (self.fields(), other.fields());
        let mut out = [0i64; 9];
        for i in 0..9 {
            out[i] = a[i].saturating_add(b[i]);
        }
        *self = TotalsRecord::from_fields(out);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(FORMAT_V1);
        w.u8(Self::FIELDS);
        for f in self.fields() {
            w.i64(f);
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "totals");
        check_version(&mut r, "totals")?;
        let n = r.u8()?;
        let mut f = [0i64; 9];
        for i in 0..usize::from(n) {
            let v = r.i64()?;
            if let Some(slot) = f.get_mut(i) {
                *slot = v;
            }
        }
        r.finish()?;
        Ok(TotalsRecord::from_fields(f))
    }
}

/// One entry of an object's or part's manifest: a chunk and its plaintext length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub chunk: ChunkId,
    pub len: u32,
}

impl ManifestEntry {
    const ENCODED_BYTES: usize = 36;
}

fn write_entries(w: &mut RecordWriter, entries: &[ManifestEntry]) {
    w.u32(entries.len() as u32);
    for e in entries {
        w.fixed(e.chunk.as_bytes()).u32(e.len);
    }
}

fn read_entries(r: &mut RecordReader<'_>) -> Result<Vec<ManifestEntry>, CodecError> {
    let n = r.count(ManifestEntry::ENCODED_BYTES)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(ManifestEntry {
            chunk: ChunkId::from_bytes(r.fixed::<32>()?),
            len: r.u32()?,
        });
    }
    Ok(entries)
}

/// Entries per manifest block for objects whose manifest is not inline.
pub const MANIFEST_BLOCK_ENTRIES: usize = 1024;
/// Manifests with at most this many entries are stored inside the object
/// record, so a small object costs one metadata read.
pub const MANIFEST_INLINE_ENTRIES_MAX: usize = 32;

/// A block of a large object's manifest, stored under
/// `version_id ++ block_index (u32 BE)` in the `manifests` column family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestBlock {
    pub entries: Vec<ManifestEntry>,
}

impl ManifestBlock {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(FORMAT_V1);
        write_entries(&mut w, &self.entries);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "manifest block");
        check_version(&mut r, "manifest block")?;
        let entries = read_entries(&mut r)?;
        r.finish()?;
        Ok(ManifestBlock { entries })
    }
}

/// Where an object's chunk list is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestRef {
    Inline(Vec<ManifestEntry>),
    /// `block_first_offsets[i]` is the object offset of block `i`'s first byte.
    Blocks {
        block_first_offsets: Vec<u64>,
    },
    /// A small object stored in the metadata itself (no chunks, no shards):
    /// sealed exactly like a chunk (zstd if it shrinks, AES-256-GCM under the
    /// key derived for `chunk`, the keyed BLAKE3 of the plaintext).
    Data {
        chunk: ChunkId,
        compressed: bool,
        sealed: Vec<u8>,
    },
    /// How [`ManifestRef::Data`] is stored since the `inline_data` column
    /// family exists: the sealed bytes live there under the version id, so
    /// listings read only the record. [`crate::meta::MetaStore::object`]
    /// resolves it to `Data`; only raw iteration (listing, recount) sees it.
    DataElsewhere {
        chunk: ChunkId,
        compressed: bool,
    },
}

/// Client-visible metadata stored with an object (or a multipart upload until
/// it completes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMetadata {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names lowercased and without the prefix.
    pub user_metadata: Vec<(String, String)>,
    /// Object tags (`x-amz-tagging`), in the client's order.
    pub tags: Vec<(String, String)>,
    /// Additional checksums: (algorithm name as the SDKs spell it, base64 value).
    pub checksums: Vec<(String, String)>,
    /// SSE-C: the check of the customer key the object's bytes are
    /// encrypted under (salt and keyed hash, never the key). Kept in an
    /// object record only (flag [`FLAG_SSE_C`]); uploads and bucket
    /// documents never carry one.
    pub sse_c: Option<cairn_crypto::customer_key::KeyCheck>,
    /// SSE-KMS: the object's data key, wrapped by a key-service key
    /// (flag [`FLAG_SSE_KMS`] in an object record, format 4 of an upload
    /// record). Never together with `sse_c`.
    pub sse_kms: Option<KmsEnvelope>,
    /// An SSE-C or SSE-KMS multipart object's keystream id per part, in
    /// order (flag [`FLAG_CIPHER_STREAMS`]; as many as `part_sizes`).
    /// Empty: part `i` is keystream `i + 1` (objects completed before
    /// streams were recorded).
    pub cipher_streams: Vec<u64>,
}

/// SSE-KMS envelope of one object (or multipart upload): which key-service
/// key wraps its data key, under which material version, and the wrapped
/// key itself. The data key is bound (AES-GCM associated data, crypto's
/// `kms::wrap_aad`) to the key id, the version, the bucket, the object key
/// and `context`, so this record cannot be moved to another object.
#[derive(Clone, PartialEq, Eq)]
pub struct KmsEnvelope {
    /// The key-service key's id (a UUID, `kms_keys.rs`).
    pub key_id: String,
    /// The material version the data key is wrapped under (1, 2, …).
    pub key_version: u32,
    /// `nonce || wrapped data key || tag`.
    pub wrapped_key: Vec<u8>,
    /// The client's encryption context exactly as sent
    /// (`x-amz-server-side-encryption-context`, base64 JSON), empty if none.
    pub context: String,
    /// `x-amz-server-side-encryption-bucket-key-enabled`, echoed back.
    pub bucket_key_enabled: bool,
}

impl std::fmt::Debug for KmsEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsEnvelope")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

impl KmsEnvelope {
    fn write(&self, w: &mut RecordWriter) {
        w.str(&self.key_id)
            .u32(self.key_version)
            .bytes(&self.wrapped_key)
            .str(&self.context)
            .u8(u8::from(self.bucket_key_enabled));
    }

    fn read(r: &mut RecordReader<'_>, what: &'static str) -> Result<Self, CodecError> {
        Ok(KmsEnvelope {
            key_id: r.string()?,
            key_version: r.u32()?,
            wrapped_key: r.bytes()?.to_vec(),
            context: r.string()?,
            bucket_key_enabled: match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(CodecError::Invalid(what)),
            },
        })
    }
}

fn write_pairs(w: &mut RecordWriter, pairs: &[(String, String)]) {
    w.u32(pairs.len() as u32);
    for (k, v) in pairs {
        w.str(k).str(v);
    }
}

fn read_pairs(r: &mut RecordReader<'_>) -> Result<Vec<(String, String)>, CodecError> {
    let n = r.count(8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((r.string()?, r.string()?));
    }
    Ok(out)
}

impl ObjectMetadata {
    fn write(&self, w: &mut RecordWriter) {
        w.opt_str(self.content_type.as_deref())
            .opt_str(self.content_encoding.as_deref())
            .opt_str(self.content_disposition.as_deref())
            .opt_str(self.content_language.as_deref())
            .opt_str(self.cache_control.as_deref())
            .opt_str(self.expires.as_deref());
        write_pairs(w, &self.user_metadata);
        write_pairs(w, &self.tags);
        write_pairs(w, &self.checksums);
    }

    fn read(r: &mut RecordReader<'_>) -> Result<Self, CodecError> {
        Ok(ObjectMetadata {
            content_type: r.opt_string()?,
            content_encoding: r.opt_string()?,
            content_disposition: r.opt_string()?,
            content_language: r.opt_string()?,
            cache_control: r.opt_string()?,
            expires: r.opt_string()?,
            user_metadata: read_pairs(r)?,
            tags: read_pairs(r)?,
            checksums: read_pairs(r)?,
            sse_c: None,
            sse_kms: None,
            cipher_streams: Vec::new(),
        })
    }
}

/// The current version of an object, stored under `bucket_id ++ key` in the
/// `objects` column family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub version_id: VersionId,
    pub size: u64,
    pub last_modified_ms: u64,
    /// Without quotes: hex MD5 for a single PUT, `hex-N` for multipart.
    pub etag: String,
    pub meta: ObjectMetadata,
    /// Sizes of the parts of a multipart object; empty for a single PUT.
    pub part_sizes: Vec<u64>,
    pub manifest: ManifestRef,
    /// The version's place in its key's history: a new version takes the
    /// current one's `seq + 1` when it is committed (the guarded commit
    /// makes that a total order, on a cluster too). Records written before
    /// versioning existed read as 0.
    pub seq: u64,
    /// Whether this is the key's `null` version (written while the bucket
    /// was unversioned or versioning was suspended). At most one version
    /// of a key is `null`.
    pub null_version: bool,
    /// A delete marker: no data (size 0, empty manifest), only a place in
    /// the history saying "deleted here".
    pub delete_marker: bool,
    /// Object Lock retention: until when the version cannot be deleted.
    pub retention: Option<Retention>,
    /// Object Lock legal hold: the version cannot be deleted while set.
    pub legal_hold: bool,
}

/// Object Lock retention modes (S3's `GOVERNANCE` and `COMPLIANCE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetentionMode {
    /// Deletable before the date only with `x-amz-bypass-governance-retention`
    /// by a key allowed to bypass it; can be shortened the same way.
    Governance,
    /// Nobody, the admin key included, can delete the version or shorten
    /// the retention before the date.
    Compliance,
}

/// An Object Lock retention on one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub mode: RetentionMode,
    /// Unix ms; the version is protected while `now < until_ms`.
    pub until_ms: u64,
}

impl RetentionMode {
    fn to_u8(self) -> u8 {
        match self {
            RetentionMode::Governance => 1,
            RetentionMode::Compliance => 2,
        }
    }

    fn from_u8(v: u8, what: &'static str) -> Result<Option<Self>, CodecError> {
        match v {
            0 => Ok(None),
            1 => Ok(Some(RetentionMode::Governance)),
            2 => Ok(Some(RetentionMode::Compliance)),
            _ => Err(CodecError::Invalid(what)),
        }
    }
}

/// The Object Lock a write asks for (S3's `x-amz-object-lock-*` headers):
/// kept with a multipart upload until it completes, set on the version a
/// write makes. No retention here means the bucket's default applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionLock {
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

/// Record format of [`ObjectVersion`] since versioning: version 1's fields,
/// then `seq` u64, a flags u8 (bit 0 null version, bit 1 delete marker,
/// bit 2 legal hold), the retention mode u8 (0 none, 1 governance, 2
/// compliance) and, if a mode is set, the retain-until time u64 (unix ms).
pub const OBJECT_FORMAT_V2: u8 = 2;

const FLAG_NULL_VERSION: u8 = 1;
const FLAG_DELETE_MARKER: u8 = 2;
const FLAG_LEGAL_HOLD: u8 = 4;
/// The version's bytes are SSE-C encrypted: its key check (salt, digest)
/// follows the retention.
const FLAG_SSE_C: u8 = 8;
/// The version's bytes are SSE-KMS encrypted: its [`KmsEnvelope`] follows
/// the SSE-C key check's place (key id string, version u32, wrapped key
/// bytes, context string, bucket-key u8).
const FLAG_SSE_KMS: u8 = 16;
/// The keystream id of each part follows (after the SSE-KMS envelope's
/// place): count u32 (= the number of parts) and a u64 each.
const FLAG_CIPHER_STREAMS: u8 = 32;

/// What an object record counts for in the stored totals, read without
/// decoding the whole record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordShare {
    pub size: u64,
    /// Sealed bytes held inside the record (written before `inline_data`).
    pub embedded: u64,
    pub delete_marker: bool,
}

impl ObjectVersion {
    /// A version written now (its last-modified time is the current time).
    pub fn new_now(
        version_id: VersionId,
        size: u64,
        etag: String,
        meta: ObjectMetadata,
        part_sizes: Vec<u64>,
        manifest: ManifestRef,
    ) -> Self {
        ObjectVersion {
            version_id,
            size,
            last_modified_ms: crate::now_ms(),
            etag,
            meta,
            part_sizes,
            manifest,
            seq: 0,
            null_version: true,
            delete_marker: false,
            retention: None,
            legal_hold: false,
        }
    }

    /// A delete marker written now (its `seq` and `null_version` are set
    /// when it is committed, like any version's).
    pub fn delete_marker_now() -> Self {
        ObjectVersion {
            delete_marker: true,
            ..ObjectVersion::new_now(
                VersionId::random(),
                0,
                String::new(),
                ObjectMetadata::default(),
                Vec::new(),
                ManifestRef::Inline(Vec::new()),
            )
        }
    }

    /// The version id clients see: `null`, or the version's place in its
    /// key's history and its id ([`VersionRef`]).
    pub fn public_id(&self) -> String {
        self.version_ref().to_string()
    }

    /// The reference that names this version.
    pub fn version_ref(&self) -> VersionRef {
        if self.null_version {
            VersionRef::Null
        } else {
            VersionRef::Id {
                seq: self.seq,
                id: self.version_id,
            }
        }
    }

    /// Whether `r` names this version.
    pub fn is_named_by(&self, r: &VersionRef) -> bool {
        match r {
            VersionRef::Null => self.null_version,
            VersionRef::Id { seq, id } => {
                !self.null_version && self.seq == *seq && self.version_id == *id
            }
        }
    }

    /// The record exactly as held (a `Data` manifest keeps its bytes in the
    /// record, tag 2 — the form written before the `inline_data` column
    /// family; kept for old records and tests).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(&self.manifest)
    }

    /// The record as the metadata store writes it, and the sealed inline
    /// bytes that go to the `inline_data` column family (if any): a `Data`
    /// manifest is written as `DataElsewhere`.
    pub fn encode_stored(&self) -> (Vec<u8>, Option<&[u8]>) {
        match &self.manifest {
            ManifestRef::Data {
                chunk,
                compressed,
                sealed,
            } => {
                let elsewhere = ManifestRef::DataElsewhere {
                    chunk: *chunk,
                    compressed: *compressed,
                };
                (self.encode_with(&elsewhere), Some(sealed.as_slice()))
            }
            m => (self.encode_with(m), None),
        }
    }

    fn encode_with(&self, manifest: &ManifestRef) -> Vec<u8> {
        debug_assert!(
            !self.delete_marker || (self.size == 0 && manifest == &ManifestRef::Inline(Vec::new())),
            "a delete marker has no data"
        );
        let mut w = RecordWriter::with_version(OBJECT_FORMAT_V2);
        w.fixed(&self.version_id.0)
            .u64(self.size)
            .u64(self.last_modified_ms)
            .str(&self.etag);
        self.meta.write(&mut w);
        w.u32(self.part_sizes.len() as u32);
        for s in &self.part_sizes {
            w.u64(*s);
        }
        match manifest {
            ManifestRef::Inline(entries) => {
                w.u8(0);
                write_entries(&mut w, entries);
            }
            ManifestRef::Blocks {
                block_first_offsets,
            } => {
                w.u8(1).u32(block_first_offsets.len() as u32);
                for o in block_first_offsets {
                    w.u64(*o);
                }
            }
            ManifestRef::Data {
                chunk,
                compressed,
                sealed,
            } => {
                w.u8(2)
                    .fixed(chunk.as_bytes())
                    .u8(u8::from(*compressed))
                    .bytes(sealed);
            }
            ManifestRef::DataElsewhere { chunk, compressed } => {
                w.u8(3).fixed(chunk.as_bytes()).u8(u8::from(*compressed));
            }
        }
        let mut flags = 0u8;
        if self.null_version {
            flags |= FLAG_NULL_VERSION;
        }
        if self.delete_marker {
            flags |= FLAG_DELETE_MARKER;
        }
        if self.legal_hold {
            flags |= FLAG_LEGAL_HOLD;
        }
        if self.meta.sse_c.is_some() {
            flags |= FLAG_SSE_C;
        }
        if self.meta.sse_kms.is_some() {
            flags |= FLAG_SSE_KMS;
        }
        if !self.meta.cipher_streams.is_empty() {
            flags |= FLAG_CIPHER_STREAMS;
        }
        w.u64(self.seq).u8(flags);
        match &self.retention {
            Some(r) => {
                w.u8(r.mode.to_u8()).u64(r.until_ms);
            }
            None => {
                w.u8(0);
            }
        }
        if let Some(check) = &self.meta.sse_c {
            w.fixed(&check.salt).fixed(&check.digest);
        }
        if let Some(envelope) = &self.meta.sse_kms {
            envelope.write(&mut w);
        }
        if !self.meta.cipher_streams.is_empty() {
            // One per part; decode refuses any other count (a record that
            // breaks this is unreadable rather than read wrong).
            w.u32(self.meta.cipher_streams.len() as u32);
            for s in &self.meta.cipher_streams {
                w.u64(*s);
            }
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "object");
        let format = object_format(&mut r)?;
        let version_id = VersionId(r.fixed::<16>()?);
        let size = r.u64()?;
        let last_modified_ms = r.u64()?;
        let etag = r.string()?;
        let meta = ObjectMetadata::read(&mut r)?;
        let n = r.count(8)?;
        let mut part_sizes = Vec::with_capacity(n);
        for _ in 0..n {
            part_sizes.push(r.u64()?);
        }
        let manifest = match r.u8()? {
            0 => ManifestRef::Inline(read_entries(&mut r)?),
            1 => {
                let n = r.count(8)?;
                let mut offs = Vec::with_capacity(n);
                for _ in 0..n {
                    offs.push(r.u64()?);
                }
                ManifestRef::Blocks {
                    block_first_offsets: offs,
                }
            }
            2 => {
                let chunk = ChunkId::from_bytes(r.fixed::<32>()?);
                let compressed = read_flag(&mut r)?;
                ManifestRef::Data {
                    chunk,
                    compressed,
                    sealed: r.bytes()?.to_vec(),
                }
            }
            3 => ManifestRef::DataElsewhere {
                chunk: ChunkId::from_bytes(r.fixed::<32>()?),
                compressed: read_flag(&mut r)?,
            },
            _ => return Err(CodecError::Invalid("object")),
        };
        let (seq, flags, retention) = read_version_tail(&mut r, format)?;
        let mut meta = meta;
        if flags & FLAG_SSE_C != 0 {
            meta.sse_c = Some(cairn_crypto::customer_key::KeyCheck {
                salt: r.fixed::<16>()?,
                digest: r.fixed::<32>()?,
            });
        }
        if flags & FLAG_SSE_KMS != 0 {
            if meta.sse_c.is_some() {
                return Err(CodecError::Invalid("object"));
            }
            meta.sse_kms = Some(KmsEnvelope::read(&mut r, "object")?);
        }
        if flags & FLAG_CIPHER_STREAMS != 0 {
            let n = r.count(8)?;
            if n != part_sizes.len() {
                return Err(CodecError::Invalid("object"));
            }
            meta.cipher_streams = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
        }
        r.finish()?;
        let delete_marker = flags & FLAG_DELETE_MARKER != 0;
        if delete_marker && (size != 0 || manifest != ManifestRef::Inline(Vec::new())) {
            return Err(CodecError::Invalid("object"));
        }
        Ok(ObjectVersion {
            version_id,
            size,
            last_modified_ms,
            etag,
            meta,
            part_sizes,
            manifest,
            seq,
            null_version: flags & FLAG_NULL_VERSION != 0,
            delete_marker,
            retention,
            legal_hold: flags & FLAG_LEGAL_HOLD != 0,
        })
    }
}

/// The record format of an object record (1 or [`OBJECT_FORMAT_V2`]).
fn object_format(r: &mut RecordReader<'_>) -> Result<u8, CodecError> {
    match r.u8()? {
        v @ (FORMAT_V1 | OBJECT_FORMAT_V2) => Ok(v),
        version => Err(CodecError::UnknownVersion {
            what: "object",
            version,
        }),
    }
}

/// The fields version 2 appends: (seq, flags, retention). A version 1
/// record is the key's only version, the `null` one, unlocked.
fn read_version_tail(
    r: &mut RecordReader<'_>,
    format: u8,
) -> Result<(u64, u8, Option<Retention>), CodecError> {
    if format == FORMAT_V1 {
        return Ok((0, FLAG_NULL_VERSION, None));
    }
    let seq = r.u64()?;
    let flags = r.u8()?;
    if flags
        & !(FLAG_NULL_VERSION
            | FLAG_DELETE_MARKER
            | FLAG_LEGAL_HOLD
            | FLAG_SSE_C
            | FLAG_SSE_KMS
            | FLAG_CIPHER_STREAMS)
        != 0
    {
        return Err(CodecError::Invalid("object"));
    }
    let retention = match RetentionMode::from_u8(r.u8()?, "object")? {
        Some(mode) => Some(Retention {
            mode,
            until_ms: r.u64()?,
        }),
        None => None,
    };
    Ok((seq, flags, retention))
}

impl ObjectVersion {
    /// The size and the length of sealed bytes held in the record itself
    /// (a `Data` manifest; else 0), read without decoding the rest (no
    /// allocation): what the stored totals need on every object write.
    /// What the record counts for in the stored totals, skipping what
    /// does not matter for that.
    pub fn decode_share(buf: &[u8]) -> Result<RecordShare, CodecError> {
        let mut r = RecordReader::new(buf, "object");
        let format = object_format(&mut r)?;
        r.fixed::<16>()?;
        let size = r.u64()?;
        r.u64()?;
        r.bytes()?; // etag
        for _ in 0..6 {
            if r.u8()? == 1 {
                r.bytes()?;
            }
        }
        for _ in 0..3 {
            let n = r.count(8)?;
            for _ in 0..n {
                r.bytes()?;
                r.bytes()?;
            }
        }
        let n = r.count(8)?;
        for _ in 0..n {
            r.u64()?;
        }
        let embedded = match r.u8()? {
            0 => {
                read_entries(&mut r)?;
                0
            }
            1 => {
                let n = r.count(8)?;
                for _ in 0..n {
                    r.u64()?;
                }
                0
            }
            2 => {
                r.fixed::<32>()?;
                r.u8()?;
                r.bytes()?.len() as u64
            }
            3 => {
                r.fixed::<32>()?;
                r.u8()?;
                0
            }
            _ => return Err(CodecError::Invalid("object")),
        };
        let (_, flags, _) = read_version_tail(&mut r, format)?;
        Ok(RecordShare {
            size,
            embedded,
            delete_marker: flags & FLAG_DELETE_MARKER != 0,
        })
    }
}

fn read_flag(r: &mut RecordReader<'_>) -> Result<bool, CodecError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::Invalid("object")),
    }
}

/// A bucket, stored under its name in the `buckets` column family.
/// A bucket's versioning state. Once versioned, a bucket is never
/// unversioned again (only suspended), as in S3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

/// How long a bucket's default retention keeps a new version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionPeriod {
    Days(u32),
    Years(u32),
}

/// A bucket's Object Lock default retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultRetention {
    pub mode: RetentionMode,
    pub period: RetentionPeriod,
}

/// Object Lock on a bucket (only possible with versioning enabled, which
/// can then not be suspended).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectLockConfig {
    pub default_retention: Option<DefaultRetention>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketRecord {
    pub id: u64,
    pub created_ms: u64,
    pub tags: Vec<(String, String)>,
    pub versioning: Versioning,
    /// `Some` once Object Lock is enabled (it is never disabled).
    pub object_lock: Option<ObjectLockConfig>,
    /// The access key id of the key that created the bucket, its owner as
    /// ACLs and listings show it; empty for a bucket made before owners
    /// were kept (or by the engine itself), shown as Cairn's one account.
    pub owner: String,
}

const BUCKET_FORMAT_V2: u8 = 2;
/// Version 2's fields, then versioning u8 (0 unversioned, 1 enabled, 2
/// suspended), Object Lock u8 (0 off, 1 on), and if on: the default
/// retention's mode u8 (0 none, 1 governance, 2 compliance) and, with a
/// mode, its unit u8 (1 days, 2 years) and count u32.
const BUCKET_FORMAT_V3: u8 = 3;
/// Version 3's fields, then the owner's access key id (string, empty:
/// none recorded).
const BUCKET_FORMAT_V4: u8 = 4;

impl BucketRecord {
    /// A bucket created now, unversioned, without Object Lock.
    pub fn new(id: u64, created_ms: u64) -> Self {
        BucketRecord {
            id,
            created_ms,
            tags: Vec::new(),
            versioning: Versioning::Unversioned,
            object_lock: None,
            owner: String::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(
            self.object_lock.is_none() || self.versioning == Versioning::Enabled,
            "Object Lock needs versioning enabled"
        );
        let mut w = RecordWriter::with_version(BUCKET_FORMAT_V4);
        w.u64(self.id).u64(self.created_ms);
        write_pairs(&mut w, &self.tags);
        w.u8(match self.versioning {
            Versioning::Unversioned => 0,
            Versioning::Enabled => 1,
            Versioning::Suspended => 2,
        });
        match &self.object_lock {
            None => {
                w.u8(0);
            }
            Some(lock) => {
                w.u8(1);
                match &lock.default_retention {
                    None => {
                        w.u8(0);
                    }
                    Some(d) => {
                        let (unit, n) = match d.period {
                            RetentionPeriod::Days(n) => (1, n),
                            RetentionPeriod::Years(n) => (2, n),
                        };
                        w.u8(d.mode.to_u8()).u8(unit).u32(n);
                    }
                }
            }
        }
        w.str(&self.owner);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "bucket");
        let version = r.u8()?;
        if !matches!(
            version,
            FORMAT_V1 | BUCKET_FORMAT_V2 | BUCKET_FORMAT_V3 | BUCKET_FORMAT_V4
        ) {
            return Err(CodecError::UnknownVersion {
                what: "bucket",
                version,
            });
        }
        let id = r.u64()?;
        let created_ms = r.u64()?;
        let tags = if version >= BUCKET_FORMAT_V2 {
            read_pairs(&mut r)?
        } else {
            Vec::new()
        };
        let mut rec = BucketRecord {
            tags,
            ..BucketRecord::new(id, created_ms)
        };
        if version >= BUCKET_FORMAT_V3 {
            rec.versioning = match r.u8()? {
                0 => Versioning::Unversioned,
                1 => Versioning::Enabled,
                2 => Versioning::Suspended,
                _ => return Err(CodecError::Invalid("bucket")),
            };
            rec.object_lock = match r.u8()? {
                0 => None,
                1 => {
                    let default_retention = match RetentionMode::from_u8(r.u8()?, "bucket")? {
                        None => None,
                        Some(mode) => {
                            let unit = r.u8()?;
                            let n = r.u32()?;
                            let period = match unit {
                                1 => RetentionPeriod::Days(n),
                                2 => RetentionPeriod::Years(n),
                                _ => return Err(CodecError::Invalid("bucket")),
                            };
                            Some(DefaultRetention { mode, period })
                        }
                    };
                    Some(ObjectLockConfig { default_retention })
                }
                _ => return Err(CodecError::Invalid("bucket")),
            };
        }
        if version >= BUCKET_FORMAT_V4 {
            rec.owner = r.string()?;
        }
        r.finish()?;
        Ok(rec)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketGrant {
    pub bucket: String,
    /// GET/HEAD objects, list, read tags and attributes.
    pub read: bool,
    /// PUT/copy/delete objects, multipart uploads, tags.
    pub write: bool,
    /// Empty: the whole bucket. Otherwise a device grant: only creating
    /// objects whose keys start with it (PutObject and the multipart
    /// upload operations) — no reading, listing, deleting or tagging;
    /// `read` is then false and `write` true.
    pub prefix: String,
}

/// Everything about an access key but its secret (which is stored sealed
/// beside it), under `access-key-info/<id>` in `system`. A key without this
/// record was created before grants existed and is an admin key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyRecord {
    /// Free text for humans ("backup job", "sensor fleet").
    pub name: String,
    pub created_ms: u64,
    /// Admin keys may do everything: every bucket, CreateBucket and
    /// DeleteBucket, the admin API. `grants` are ignored for them.
    pub admin: bool,
    /// At most one grant per bucket, sorted by bucket name.
    pub grants: Vec<BucketGrant>,
    /// When the key stops working (unix ms); `None`: never.
    pub expires_ms: Option<u64>,
}

/// Version 1's fields with each grant followed by its prefix (string), and
/// after the grants the expiry: u8 (0 never, 1: unix ms u64 follows).
const ACCESS_KEY_FORMAT_V2: u8 = 2;

impl AccessKeyRecord {
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.grants.windows(2).all(|w| w[0].bucket < w[1].bucket));
        let mut w = RecordWriter::with_version(ACCESS_KEY_FORMAT_V2);
        w.str(&self.name)
            .u64(self.created_ms)
            .u8(u8::from(self.admin))
            .u32(self.grants.len() as u32);
        for g in &self.grants {
            w.str(&g.bucket)
                .u8(u8::from(g.read) | (u8::from(g.write) << 1))
                .str(&g.prefix);
        }
        match self.expires_ms {
            Some(ms) => {
                w.u8(1).u64(ms);
            }
            None => {
                w.u8(0);
            }
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "access key");
        let version = r.u8()?;
        if version != FORMAT_V1 && version != ACCESS_KEY_FORMAT_V2 {
            return Err(CodecError::UnknownVersion {
                what: "access key",
                version,
            });
        }
        let name = r.string()?;
        let created_ms = r.u64()?;
        let admin = r.u8()? != 0;
        let n = r.count(5)?;
        let mut grants = Vec::with_capacity(n);
        for _ in 0..n {
            let bucket = r.string()?;
            let bits = r.u8()?;
            let prefix = if version >= ACCESS_KEY_FORMAT_V2 {
                r.string()?
            } else {
                String::new()
            };
            // A prefix grant only creates: never read, always write.
            if !prefix.is_empty() && (bits & 1 != 0 || bits & 2 == 0) {
                return Err(CodecError::Invalid("access key"));
            }
            grants.push(BucketGrant {
                prefix,
                bucket,
                read: bits & 1 != 0,
                write: bits & 2 != 0,
            });
        }
        let expires_ms = if version >= ACCESS_KEY_FORMAT_V2 {
            match r.u8()? {
                0 => None,
                1 => Some(r.u64()?),
                _ => return Err(CodecError::Invalid("access key")),
            }
        } else {
            None
        };
        r.finish()?;
        Ok(AccessKeyRecord {
            expires_ms,
            name,
            created_ms,
            admin,
            grants,
        })
    }
}

/// A multipart upload in progress, stored under its id in `uploads`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    pub bucket_id: u64,
    pub key: String,
    pub created_ms: u64,
    pub meta: ObjectMetadata,
    /// The Object Lock the completed object gets.
    pub lock: VersionLock,
}

/// Version 1's fields, then flags u8 (1 legal hold), retention mode u8
/// (0 none, 1 governance, 2 compliance) and with a mode the retain-until
/// ms u64.
const UPLOAD_FORMAT_V2: u8 = 2;
/// Version 2's fields, then SSE-C u8 (0 none, 1: the key check follows,
/// salt [16] and digest [32]): the upload's parts are encrypted under that
/// customer key, and so is the object it completes into.
const UPLOAD_FORMAT_V3: u8 = 3;
/// Version 3's fields, then SSE-KMS u8 (0 none, 1: a [`KmsEnvelope`]
/// follows): the upload's parts are encrypted under that data key, and so
/// is the object it completes into.
const UPLOAD_FORMAT_V4: u8 = 4;

impl UploadRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(UPLOAD_FORMAT_V4);
        w.u64(self.bucket_id).str(&self.key).u64(self.created_ms);
        self.meta.write(&mut w);
        w.u8(u8::from(self.lock.legal_hold));
        match &self.lock.retention {
            Some(r) => {
                w.u8(r.mode.to_u8()).u64(r.until_ms);
            }
            None => {
                w.u8(0);
            }
        }
        match &self.meta.sse_c {
            Some(check) => {
                w.u8(1).fixed(&check.salt).fixed(&check.digest);
            }
            None => {
                w.u8(0);
            }
        }
        match &self.meta.sse_kms {
            Some(envelope) => {
                w.u8(1);
                envelope.write(&mut w);
            }
            None => {
                w.u8(0);
            }
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "upload");
        let version = r.u8()?;
        if ![
            FORMAT_V1,
            UPLOAD_FORMAT_V2,
            UPLOAD_FORMAT_V3,
            UPLOAD_FORMAT_V4,
        ]
        .contains(&version)
        {
            return Err(CodecError::UnknownVersion {
                what: "upload",
                version,
            });
        }
        let mut rec = UploadRecord {
            bucket_id: r.u64()?,
            key: r.string()?,
            created_ms: r.u64()?,
            meta: ObjectMetadata::read(&mut r)?,
            lock: VersionLock::default(),
        };
        if version >= UPLOAD_FORMAT_V2 {
            rec.lock.legal_hold = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(CodecError::Invalid("upload")),
            };
            rec.lock.retention = match RetentionMode::from_u8(r.u8()?, "upload")? {
                Some(mode) => Some(Retention {
                    mode,
                    until_ms: r.u64()?,
                }),
                None => None,
            };
        }
        if version >= UPLOAD_FORMAT_V3 {
            rec.meta.sse_c = match r.u8()? {
                0 => None,
                1 => Some(cairn_crypto::customer_key::KeyCheck {
                    salt: r.fixed::<16>()?,
                    digest: r.fixed::<32>()?,
                }),
                _ => return Err(CodecError::Invalid("upload")),
            };
        }
        if version >= UPLOAD_FORMAT_V4 {
            rec.meta.sse_kms = match r.u8()? {
                0 => None,
                1 if rec.meta.sse_c.is_none() => Some(KmsEnvelope::read(&mut r, "upload")?),
                _ => return Err(CodecError::Invalid("upload")),
            };
        }
        r.finish()?;
        Ok(rec)
    }
}

/// One uploaded part, stored under `upload_id ++ part_number (u32 BE)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRecord {
    pub md5: [u8; 16],
    pub size: u64,
    pub last_modified_ms: u64,
    pub checksums: Vec<(String, String)>,
    pub entries: Vec<ManifestEntry>,
    /// The keystream id the part's bytes are encrypted with, in an SSE-C
    /// or SSE-KMS upload (crypto's `new_part_stream`); 0: none recorded
    /// (not encrypted, or written before: its part number is its stream).
    pub cipher_stream: u64,
}

/// Version 1's fields, then the cipher stream u64.
const PART_FORMAT_V2: u8 = 2;

impl PartRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_version(PART_FORMAT_V2);
        w.fixed(&self.md5).u64(self.size).u64(self.last_modified_ms);
        write_pairs(&mut w, &self.checksums);
        write_entries(&mut w, &self.entries);
        w.u64(self.cipher_stream);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = RecordReader::new(buf, "part");
        let version = r.u8()?;
        if version != FORMAT_V1 && version != PART_FORMAT_V2 {
            return Err(CodecError::UnknownVersion {
                what: "part",
                version,
            });
        }
        let mut rec = PartRecord {
            md5: r.fixed::<16>()?,
            size: r.u64()?,
            last_modified_ms: r.u64()?,
            checksums: read_pairs(&mut r)?,
            entries: read_entries(&mut r)?,
            cipher_stream: 0,
        };
        if version >= PART_FORMAT_V2 {
            rec.cipher_stream = r.u64()?;
        }
        r.finish()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunk_record() -> ChunkRecord {
        ChunkRecord {
            refcount: 3,
            plain_len: 1000,
            sealed_len: 700,
            compressed: true,
            data_shards: 4,
            parity_shards: 2,
            shard_len: 175,
            shards: (0..6)
                .map(|i| ShardLocation {
                    node: 0,
                    drive: i,
                    segment: 9,
                    offset: u64::from(i) * 1000,
                })
                .collect(),
            zero_since_ms: 77,
        }
    }

    fn meta() -> ObjectMetadata {
        ObjectMetadata {
            content_type: Some("text/plain".into()),
            cache_control: Some("no-cache".into()),
            user_metadata: vec![("mtime".into(), "12345".into())],
            checksums: vec![("CRC32".into(), "AAAAAA==".into())],
            ..Default::default()
        }
    }

    #[test]
    fn access_key_records_round_trip() {
        let k = AccessKeyRecord {
            expires_ms: None,
            name: "backup job".into(),
            created_ms: 42,
            admin: false,
            grants: vec![
                BucketGrant {
                    prefix: String::new(),
                    bucket: "logs".into(),
                    read: true,
                    write: false,
                },
                BucketGrant {
                    prefix: String::new(),
                    bucket: "photos".into(),
                    read: true,
                    write: true,
                },
            ],
        };
        assert_eq!(AccessKeyRecord::decode(&k.encode()).unwrap(), k);
        let bytes = k.encode();
        assert!(AccessKeyRecord::decode(&bytes[..bytes.len() - 1]).is_err());

        // A device key: a prefix grant and an expiry.
        let device = AccessKeyRecord {
            expires_ms: Some(1_800_000_000_000),
            name: "sensor-42".into(),
            created_ms: 43,
            admin: false,
            grants: vec![BucketGrant {
                prefix: "devices/42/".into(),
                bucket: "fleet".into(),
                read: false,
                write: true,
            }],
        };
        assert_eq!(AccessKeyRecord::decode(&device.encode()).unwrap(), device);
        // A prefix grant that reads (or does not write) is not a record
        // this version writes: refused, never widened.
        for (read, write) in [(true, true), (false, false)] {
            let mut bad = device.clone();
            bad.grants[0].read = read;
            bad.grants[0].write = write;
            assert!(AccessKeyRecord::decode(&bad.encode()).is_err());
        }

        // Version 1 (before prefixes and expiry), as stored then: still read.
        let mut v1 = RecordWriter::with_version(FORMAT_V1);
        v1.str("backup job").u64(42).u8(0).u32(2);
        v1.str("logs").u8(1).str("photos").u8(3);
        assert_eq!(AccessKeyRecord::decode(&v1.finish()).unwrap(), k);
    }

    #[test]
    fn records_round_trip() {
        let c = chunk_record();
        assert_eq!(ChunkRecord::decode(&c.encode()).unwrap(), c);
        let d = ChunkRefDelta {
            delta: -2,
            at_ms: 5,
            record: Some(c.clone()),
            relocate: None,
        };
        assert_eq!(ChunkRefDelta::decode(&d.encode()).unwrap(), d);
        let moved = ChunkRefDelta {
            delta: 0,
            at_ms: 6,
            record: None,
            relocate: Some(ShardMove {
                index: 3,
                from: c.shards[3],
                to: c.shards[0],
            }),
        };
        assert_eq!(ChunkRefDelta::decode(&moved.encode()).unwrap(), moved);
        let entries: Vec<ManifestEntry> = (0..40u8)
            .map(|i| ManifestEntry {
                chunk: ChunkId::from_bytes([i; 32]),
                len: u32::from(i) * 7,
            })
            .collect();
        for manifest in [
            ManifestRef::Inline(entries.clone()),
            ManifestRef::Blocks {
                block_first_offsets: vec![0, 100, 200],
            },
            ManifestRef::Data {
                chunk: ChunkId::from_bytes([7; 32]),
                compressed: true,
                sealed: vec![1, 2, 3, 4, 5],
            },
            ManifestRef::DataElsewhere {
                chunk: ChunkId::from_bytes([8; 32]),
                compressed: false,
            },
        ] {
            let o = ObjectVersion {
                version_id: VersionId([5; 16]),
                size: 77,
                last_modified_ms: 1_700_000_000_000,
                etag: "abc-2".into(),
                meta: meta(),
                part_sizes: vec![5, 72],
                manifest,
                seq: 9,
                null_version: false,
                delete_marker: false,
                retention: Some(Retention {
                    mode: RetentionMode::Compliance,
                    until_ms: 1_900_000_000_000,
                }),
                legal_hold: true,
            };
            assert_eq!(ObjectVersion::decode(&o.encode()).unwrap(), o);
            // With an SSE-C key check (flag bit and its 48 bytes).
            let mut sealed_for_customer = o.clone();
            sealed_for_customer.meta.sse_c = Some(cairn_crypto::customer_key::KeyCheck {
                salt: [3; 16],
                digest: [4; 32],
            });
            let encoded = sealed_for_customer.encode();
            assert_eq!(
                ObjectVersion::decode(&encoded).unwrap(),
                sealed_for_customer
            );
            assert_eq!(encoded.len(), o.encode().len() + 48);
            // With an SSE-KMS envelope (flag bit and its fields).
            let mut wrapped_by_kms = o.clone();
            wrapped_by_kms.meta.sse_kms = Some(KmsEnvelope {
                key_id: "1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
                key_version: 3,
                wrapped_key: vec![9; 60],
                context: "eyJhIjoiYiJ9".into(),
                bucket_key_enabled: true,
            });
            let encoded = wrapped_by_kms.encode();
            assert_eq!(ObjectVersion::decode(&encoded).unwrap(), wrapped_by_kms);
            assert_eq!(ObjectVersion::decode_share(&encoded).unwrap().size, o.size);
            // With a keystream per part (as many as parts; no other count).
            let mut streamed = wrapped_by_kms.clone();
            streamed.meta.cipher_streams = vec![1 << 63 | 5, 2];
            assert_eq!(ObjectVersion::decode(&streamed.encode()).unwrap(), streamed);
            let mut miscounted = streamed.clone();
            miscounted.part_sizes.push(1);
            assert!(ObjectVersion::decode(&miscounted.encode()).is_err());
            // Never both: a record claiming both is refused.
            let mut both = wrapped_by_kms.clone();
            both.meta.sse_c = sealed_for_customer.meta.sse_c;
            assert!(ObjectVersion::decode(&both.encode()).is_err());
            assert_eq!(ObjectVersion::decode_share(&encoded).unwrap().size, o.size);
            let embedded = match &o.manifest {
                ManifestRef::Data { sealed, .. } => sealed.len() as u64,
                _ => 0,
            };
            assert_eq!(
                ObjectVersion::decode_share(&o.encode()).unwrap(),
                RecordShare {
                    size: o.size,
                    embedded,
                    delete_marker: false
                }
            );
            // The stored form moves inline bytes out of the record.
            let (record, outside) = o.encode_stored();
            let stored = ObjectVersion::decode(&record).unwrap();
            match &o.manifest {
                ManifestRef::Data {
                    chunk,
                    compressed,
                    sealed,
                } => {
                    assert_eq!(outside, Some(sealed.as_slice()));
                    assert_eq!(
                        stored.manifest,
                        ManifestRef::DataElsewhere {
                            chunk: *chunk,
                            compressed: *compressed
                        }
                    );
                }
                m => {
                    assert_eq!(outside, None);
                    assert_eq!(&stored.manifest, m);
                }
            }
        }
        let b = ManifestBlock { entries };
        assert_eq!(ManifestBlock::decode(&b.encode()).unwrap(), b);
        let mut u = UploadRecord {
            bucket_id: 4,
            key: "a/b".into(),
            created_ms: 1,
            meta: meta(),
            lock: VersionLock::default(),
        };
        assert_eq!(UploadRecord::decode(&u.encode()).unwrap(), u);
        u.lock = VersionLock {
            retention: Some(Retention {
                mode: RetentionMode::Governance,
                until_ms: 99,
            }),
            legal_hold: true,
        };
        assert_eq!(UploadRecord::decode(&u.encode()).unwrap(), u);
        // A version-3 upload (before SSE-KMS) reads without an envelope.
        let mut v3 = u.encode();
        v3.truncate(v3.len() - 1);
        v3[0] = UPLOAD_FORMAT_V3;
        assert_eq!(UploadRecord::decode(&v3).unwrap(), u);
        // A version-2 upload (before SSE-C) reads without a key check.
        let mut v2 = v3.clone();
        v2.truncate(v2.len() - 1);
        v2[0] = UPLOAD_FORMAT_V2;
        assert_eq!(UploadRecord::decode(&v2).unwrap(), u);
        // A version-1 upload (before Object Lock) reads without a lock.
        let mut v1 = v2.clone();
        v1.truncate(v1.len() - 10);
        v1[0] = FORMAT_V1;
        assert_eq!(
            UploadRecord::decode(&v1).unwrap().lock,
            VersionLock::default()
        );
        let mut sse_c = u.clone();
        sse_c.meta.sse_c = Some(cairn_crypto::customer_key::KeyCheck {
            salt: [1; 16],
            digest: [2; 32],
        });
        assert_eq!(UploadRecord::decode(&sse_c.encode()).unwrap(), sse_c);
        let mut sse_kms = u.clone();
        sse_kms.meta.sse_kms = Some(KmsEnvelope {
            key_id: "k".into(),
            key_version: 1,
            wrapped_key: vec![1; 60],
            context: String::new(),
            bucket_key_enabled: false,
        });
        assert_eq!(UploadRecord::decode(&sse_kms.encode()).unwrap(), sse_kms);
        let mut both = sse_kms.clone();
        both.meta.sse_c = sse_c.meta.sse_c;
        assert!(UploadRecord::decode(&both.encode()).is_err());
        let mut p = PartRecord {
            md5: [1; 16],
            size: 9,
            last_modified_ms: 2,
            checksums: vec![],
            entries: b.entries.clone(),
            cipher_stream: 0,
        };
        assert_eq!(PartRecord::decode(&p.encode()).unwrap(), p);
        // A version-1 part (before streams) reads with none.
        let mut v1 = p.encode();
        v1.truncate(v1.len() - 8);
        v1[0] = FORMAT_V1;
        assert_eq!(PartRecord::decode(&v1).unwrap(), p);
        p.cipher_stream = 1 << 63 | 77;
        assert_eq!(PartRecord::decode(&p.encode()).unwrap(), p);
        let mut br = BucketRecord::new(42, 7);
        assert_eq!(BucketRecord::decode(&br.encode()).unwrap(), br);
        br.tags = vec![("team".into(), "ops".into())];
        assert_eq!(BucketRecord::decode(&br.encode()).unwrap(), br);
        br.versioning = Versioning::Suspended;
        assert_eq!(BucketRecord::decode(&br.encode()).unwrap(), br);
        br.versioning = Versioning::Enabled;
        br.object_lock = Some(ObjectLockConfig::default());
        assert_eq!(BucketRecord::decode(&br.encode()).unwrap(), br);
        for period in [RetentionPeriod::Days(30), RetentionPeriod::Years(7)] {
            br.object_lock = Some(ObjectLockConfig {
                default_retention: Some(DefaultRetention {
                    mode: RetentionMode::Governance,
                    period,
                }),
            });
            assert_eq!(BucketRecord::decode(&br.encode()).unwrap(), br);
        }
        br.owner = "CKOWNER".into();
        let with_owner = br.encode();
        assert_eq!(BucketRecord::decode(&with_owner).unwrap(), br);
        // A version-3 record (before owners) reads with no owner.
        let mut v3 = with_owner[..with_owner.len() - 4 - "CKOWNER".len()].to_vec();
        v3[0] = BUCKET_FORMAT_V3;
        let old = BucketRecord::decode(&v3).unwrap();
        assert_eq!(old.owner, "");
        assert_eq!(old.object_lock, br.object_lock);
        // A version-2 record (before versioning) reads as unversioned.
        let mut v2 = vec![BUCKET_FORMAT_V2];
        v2.extend_from_slice(&42u64.to_le_bytes());
        v2.extend_from_slice(&7u64.to_le_bytes());
        v2.extend_from_slice(&0u32.to_le_bytes());
        let old = BucketRecord::decode(&v2).unwrap();
        assert_eq!(old, BucketRecord::new(42, 7));
        // A version-1 record (before tags) still reads, with no tags.
        let mut v1 = vec![FORMAT_V1];
        v1.extend_from_slice(&42u64.to_le_bytes());
        v1.extend_from_slice(&7u64.to_le_bytes());
        let old = BucketRecord::decode(&v1).unwrap();
        assert_eq!((old.id, old.created_ms, old.tags.len()), (42, 7, 0));
    }

    #[test]
    fn version_refs_round_trip_and_sort_newest_first() {
        let id = VersionId([0xab; 16]);
        let older = VersionRef::Id { seq: 7, id };
        let newer = VersionRef::Id { seq: 8, id };
        for r in [VersionRef::Null, older, newer] {
            assert_eq!(VersionRef::parse(&r.to_string()), Some(r));
        }
        assert_eq!(older.to_string().len(), 48);
        assert!(newer.to_string() < older.to_string());
        for bad in [
            "",
            "NULL",
            "x",
            &older.to_string()[1..],
            &format!("{older}0"),
        ] {
            assert_eq!(VersionRef::parse(bad), None, "{bad:?}");
        }
        let mut v = ObjectVersion::delete_marker_now();
        assert_eq!(v.public_id(), "null");
        v.null_version = false;
        v.seq = 3;
        assert!(v.is_named_by(&VersionRef::parse(&v.public_id()).unwrap()));
        assert!(!v.is_named_by(&VersionRef::Null));
    }

    #[test]
    fn version_1_object_records_read_as_the_null_version() {
        let mut v = ObjectVersion::new_now(
            VersionId([1; 16]),
            3,
            "e".into(),
            meta(),
            vec![],
            ManifestRef::Inline(vec![]),
        );
        v.seq = 5;
        v.null_version = false;
        let mut bytes = v.encode();
        // Strip what version 2 appends (seq 8, flags 1, mode 1) and mark it
        // version 1: the record as written before versioning.
        bytes.truncate(bytes.len() - 10);
        bytes[0] = FORMAT_V1;
        let old = ObjectVersion::decode(&bytes).unwrap();
        assert_eq!(
            (old.seq, old.null_version, old.delete_marker),
            (0, true, false)
        );
        assert_eq!((old.retention, old.legal_hold), (None, false));
        assert_eq!(old.etag, "e");
        let marker = ObjectVersion::delete_marker_now();
        let share = ObjectVersion::decode_share(&marker.encode()).unwrap();
        assert!(share.delete_marker);
    }

    #[test]
    fn totals_records_round_trip() {
        let t = TotalsRecord {
            objects: 3,
            logical_bytes: -5,
            stored_bytes: 7,
            raw_bytes: 11,
            chunks: 2,
            inline_bytes: 1,
            noncurrent_versions: 4,
            noncurrent_bytes: 400,
            delete_markers: 2,
        };
        let bytes = t.encode();
        assert_eq!(bytes.len(), 2 + 9 * 8);
        assert_eq!(TotalsRecord::decode(&bytes).unwrap(), t);
        assert!(TotalsRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        // Fewer fields (an older writer): the rest are zero.
        let mut short = vec![FORMAT_V1, 2];
        short.extend_from_slice(&4i64.to_le_bytes());
        short.extend_from_slice(&9i64.to_le_bytes());
        let s = TotalsRecord::decode(&short).unwrap();
        assert_eq!((s.objects, s.logical_bytes, s.stored_bytes), (4, 9, 0));
        // The record flag of a chunk delta is read without decoding it.
        let with = ChunkRefDelta {
            record: Some(chunk_record()),
            ..ChunkRefDelta::refs(1)
        };
        assert!(ChunkRefDelta::encoded_carries_record(&with.encode()));
        assert!(!ChunkRefDelta::encoded_carries_record(
            &ChunkRefDelta::refs(1).encode()
        ));
    }

    #[test]
    fn unknown_version_is_rejected() {
        let mut buf = chunk_record().encode();
        buf[0] = 99;
        assert_eq!(
            ChunkRecord::decode(&buf),
            Err(CodecError::UnknownVersion {
                what: "chunk",
                version: 99
            })
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = ChunkRecord::decode(&buf);
            let _ = ChunkRefDelta::decode(&buf);
            let _ = ObjectVersion::decode(&buf);
            let _ = ManifestBlock::decode(&buf);
            let _ = UploadRecord::decode(&buf);
            let _ = PartRecord::decode(&buf);
            let _ = BucketRecord::decode(&buf);
            let _ = TotalsRecord::decode(&buf);
            let _ = ObjectVersion::decode_share(&buf);
        }
    }
}
