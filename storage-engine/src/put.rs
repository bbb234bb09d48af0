//! Writing object data: stream → chunks → dedup check → seal → shards on
//! drives → fsync, then one metadata batch.
//!
//! Durability order (docs/ARCHITECTURE.md): every new chunk's shards are
//! appended and fsynced ([`ObjectWriter::finish`]) before the metadata batch
//! that references them is written with the WAL synced ([`Engine::commit_object`]),
//! and only after that does the S3 layer answer 200. A crash anywhere before
//! the batch leaves at most unreferenced segment space, never a partial object.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use cairn_dedup::{ChunkId, StreamChunker};
use tokio::task::JoinHandle;

use crate::engine::{Engine, Inner, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Chunks, MetaBatch};
use crate::notifications::ObjectEvent;
use crate::parts::objects::{NewCurrent, WriteCondition};
use crate::parts::writers::{WriterAppender, WriterTicket};
use crate::records::{
    ChunkRecord, ChunkRefDelta, ManifestEntry, ObjectMetadata, ObjectVersion, VersionLock,
};

/// Chunks of one request being processed at once (in addition to the global
/// `chunk_workers_max` bound).
const WRITER_INFLIGHT_CHUNKS_MAX: usize = 4;

/// S3's limit on one object (5 TiB).
pub const OBJECT_SIZE_MAX_BYTES: u64 = 5 << 40;

/// References taken on existing chunks when a write deduplicated against
/// them ("pins"): they keep garbage collection from deleting a chunk between
/// the dedup check and the commit that references it. The commit turns them
/// into the version's own references in its batch (`unpin`); if the write
/// fails or is dropped, `Drop` releases them.
///
/// Weakness: a crash between pin and commit leaks the pin (the chunk's count
/// stays one too high, so it is never collected; space, not data, is lost).
#[derive(Debug)]
pub(crate) struct ChunkPins {
    inner: Arc<Inner>,
    ids: Vec<ChunkId>,
}

impl ChunkPins {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        ChunkPins {
            inner,
            ids: Vec::new(),
        }
    }

    pub(crate) fn absorb(&mut self, mut other: ChunkPins) {
        self.ids.append(&mut other.ids);
    }

    /// Pins `id` if its record exists (+1, under the chunk's lock, so garbage
    /// collection cannot delete it between the check and the pin). Returns
    /// whether it was pinned; a missing record pins nothing.
    pub(crate) fn pin_existing(&mut self, id: &ChunkId) -> EngineResult<bool> {
        let inner = self.inner.clone();
        let _g = inner.chunks.lock(id);
        if inner.meta.get::<Chunks>(id)?.is_none() {
            return Ok(false);
        }
        let mut batch = inner.meta.batch();
        // The record may be collected elsewhere (another node) between the
        // read and the pin: the pin applies only while it exists.
        batch.guard_present::<Chunks>(id);
        batch.merge::<Chunks>(id, &ChunkRefDelta::refs(1));
        match inner.meta.write_unsynced(batch) {
            Ok(()) => {}
            Err(EngineError::GuardFailed(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.ids.push(*id);
        Ok(true)
    }

    /// Adds the release of every pin to `batch`; after `batch` is written
    /// the pins must be forgotten with [`ChunkPins::disarm`].
    pub(crate) fn unpin(&self, batch: &mut MetaBatch) -> EngineResult<()> {
        for id in &self.ids {
            batch.merge::<Chunks>(id, &ChunkRefDelta::refs(-1));
        }
        Ok(())
    }

    pub(crate) fn disarm(&mut self) {
        self.ids.clear();
    }

    /// After the commit that carried [`ChunkPins::unpin`]: the pins are
    /// spent if it applied — or may have (a cluster that could not confirm
    /// in time: releasing them again could drop a reference that exists,
    /// so they are kept, costing space, never data). Otherwise they are
    /// still held and released on drop.
    pub(crate) fn settle<T>(&mut self, committed: &EngineResult<T>) {
        if let Err(EngineError::Unavailable(_)) = committed {
            tracing::warn!(
                pins = self.ids.len(),
                "commit outcome unknown: chunk pins kept"
            );
        }
        if matches!(committed, Ok(_) | Err(EngineError::Unavailable(_))) {
            self.disarm();
        }
    }
}

impl Drop for ChunkPins {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut batch = self.inner.meta.batch();
        if let Err(e) = self.unpin(&mut batch) {
            tracing::error!(error = %e, pins = self.ids.len(), "releasing chunk pins failed; chunks stay referenced");
            return;
        }
        let pins = self.ids.len();
        let inner = self.inner.clone();
        let release = move || {
            if let Err(e) = inner.meta.write_unsynced(batch) {
                // Unknown outcome on a cluster, or a failed write: the chunks
                // stay referenced (space, never data).
                tracing::error!(error = %e, pins, "releasing chunk pins failed; chunks stay referenced");
            }
        };
        // A replica's write goes through the cluster log and blocks on the
        // runtime: never from async code (a request dropped mid-body).
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if self.inner.meta.is_replica() => {
                handle.spawn_blocking(release);
            }
            _ => release(),
        }
    }
}

/// The outcome of storing one chunk.
#[derive(Debug)]
struct StoredChunk {
    entry: ManifestEntry,
    /// Set when this request wrote the chunk (it was not stored before).
    new_record: Option<ChunkRecord>,
    /// Set when the chunk was already stored and this request pinned it.
    pin: Option<ChunkPins>,
    /// Drive index and completion sequence of each shard appended.
    syncs: Vec<(usize, u64)>,
}

/// Data written and durable, not yet visible: commit it with
/// [`Engine::commit_object`] or [`Engine::commit_part`], or drop it (its
/// pins are released and its shards become unreferenced space).
#[derive(Debug)]
pub struct StagedObject {
    /// Set for a small body stored in the metadata record (no chunks).
    pub(crate) data: Option<crate::records::ManifestRef>,
    pub(crate) entries: Vec<ManifestEntry>,
    pub(crate) new_chunks: Vec<(ChunkId, ChunkRecord)>,
    pub(crate) pins: ChunkPins,
    /// Keeps compaction away from the segments this write appended to until
    /// it is committed (or dropped).
    pub(crate) _ticket: WriterTicket,
    pub size: u64,
}

/// Streams one object body into the pipeline.
#[derive(Debug)]
pub struct ObjectWriter {
    engine: Engine,
    ticket: WriterTicket,
    /// Small bodies may be stored inline (PutObject; never parts).
    allow_inline: bool,
    chunker: StreamChunker,
    inflight: VecDeque<JoinHandle<EngineResult<StoredChunk>>>,
    done: Vec<StoredChunk>,
    size: u64,
}

impl Engine {
    /// Starts writing an object or part body (the bucket must exist).
    ///
    /// The writer holds nothing back from compaction until its first chunk
    /// is stored (a client that sent only headers, or a few bytes, costs no
    /// reclaimable space), and then only the segments it appended to, until
    /// it is committed or dropped (`WriterRegistry` in engine.rs).
    pub fn object_writer(&self, bucket: &str) -> EngineResult<ObjectWriter> {
        self.object_writer_with(bucket, self.inner.writers.register_body_writer())
    }

    /// [`Engine::object_writer`] registered under `ticket` (a tracked one,
    /// `Inner::register_body_writer`): several writers whose chunks one
    /// commit references share it (UploadPartCopy).
    pub(crate) fn object_writer_with(
        &self,
        bucket: &str,
        ticket: WriterTicket,
    ) -> EngineResult<ObjectWriter> {
        self.inner.objects.bucket(bucket)?;
        let chunker = StreamChunker::new(self.inner.config.chunker)
            .map_err(|e| EngineError::Config(format!("chunker: {e}")))?;
        Ok(ObjectWriter {
            engine: self.clone(),
            ticket,
            allow_inline: false,
            chunker,
            inflight: VecDeque::new(),
            done: Vec::new(),
            size: 0,
        })
    }

    /// Makes staged data the current version of `bucket/key`, replacing (and
    /// releasing the chunks of) any previous version, in one synced batch.
    pub async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        staged: StagedObject,
        etag: String,
        meta: ObjectMetadata,
    ) -> EngineResult<ObjectVersion> {
        self.commit_object_if(bucket, key, staged, etag, meta, WriteCondition::None)
            .await
    }

    /// [`Engine::commit_object`] if `cond` holds for the key's current
    /// version, checked under the key's stripe lock right before the batch.
    /// On failure nothing is committed and the staged data is dropped (its
    /// pins released; its new shards become unreferenced space).
    pub async fn commit_object_if(
        &self,
        bucket: &str,
        key: &str,
        staged: StagedObject,
        etag: String,
        meta: ObjectMetadata,
        cond: WriteCondition,
    ) -> EngineResult<ObjectVersion> {
        self.commit_object_with(
            bucket,
            key,
            staged,
            etag,
            meta,
            cond,
            VersionLock::default(),
            ObjectEvent::Put,
        )
        .await
    }

    /// [`Engine::commit_object_if`] of a version with `lock` (Object Lock
    /// asked for by the request; without a retention the bucket's default
    /// applies), announced to the bucket's notification targets as `event`.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_object_with(
        &self,
        bucket: &str,
        key: &str,
        staged: StagedObject,
        etag: String,
        meta: ObjectMetadata,
        cond: WriteCondition,
        lock: VersionLock,
        event: ObjectEvent,
    ) -> EngineResult<ObjectVersion> {
        let b = self.inner.objects.bucket(bucket)?;
        let _g = self
            .inner
            .objects
            .lock_keys(&(b.id, key), None::<&()>)
            .await;
        let inner = self.inner.clone();
        let key = key.to_owned();
        let bucket = bucket.to_owned();
        let size = staged.size;
        let version = blocking(move || {
            let mut staged = staged;
            let mut batch = inner.meta.batch();
            staged.pins.unpin(&mut batch)?;
            let version = match staged.data.take() {
                Some(manifest) => ObjectVersion::new_now(
                    crate::records::VersionId::random(),
                    staged.size,
                    etag,
                    meta,
                    Vec::new(),
                    manifest,
                ),
                None => inner.objects.build_version(
                    crate::records::VersionId::random(),
                    &mut batch,
                    &staged.entries,
                    &staged.new_chunks,
                    staged.size,
                    etag,
                    meta,
                    Vec::new(),
                )?,
            };
            let mut version = version;
            version.retention = lock.retention;
            version.legal_hold = lock.legal_hold;
            let committed = inner.objects.replace_current(
                &bucket,
                b.id,
                &key,
                &batch,
                &cond,
                NewCurrent::Version(Box::new(version)),
                Some(event),
            );
            staged.settle(&committed);
            committed?.ok_or_else(|| EngineError::Internal("a PUT left no current version".into()))
        })
        .await?;
        self.inner.metrics.logical_bytes.inc_by(size);
        Ok(version)
    }
}

impl ObjectWriter {
    /// Feeds the next piece of the body.
    pub async fn write(&mut self, piece: Bytes) -> EngineResult<()> {
        self.size = self.size.saturating_add(piece.len() as u64);
        if self.size > OBJECT_SIZE_MAX_BYTES {
            return Err(EngineError::EntityTooLarge);
        }
        self.chunker.push(piece);
        while let Some(chunk) = self.chunker.next_chunk() {
            self.dispatch(chunk).await?;
        }
        Ok(())
    }

    /// Lets a body of at most `inline_max_bytes` be stored inside its
    /// metadata record. Only for whole objects: parts must be chunks, since
    /// completing an upload concatenates their manifests.
    pub fn allow_inline(mut self) -> Self {
        self.allow_inline = true;
        self
    }

    pub fn bytes_written(&self) -> u64 {
        self.size
    }

    async fn dispatch(&mut self, chunk: Bytes) -> EngineResult<()> {
        while self.inflight.len() >= WRITER_INFLIGHT_CHUNKS_MAX {
            self.collect_one().await?;
        }
        let permit = self
            .engine
            .inner
            .chunks
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EngineError::Internal("chunk workers closed".into()))?;
        let inner = self.engine.inner.clone();
        let appender = self.ticket.appender();
        self.inflight
            .push_back(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                store_chunk(&inner, &appender, chunk)
            }));
        Ok(())
    }

    async fn collect_one(&mut self) -> EngineResult<()> {
        if let Some(h) = self.inflight.pop_front() {
            self.done.push(h.await.map_err(EngineError::join)??);
        }
        Ok(())
    }

    /// Ends the body: stores the last chunks and makes every new shard
    /// durable. Returns the staged object, ready to commit.
    pub async fn finish(mut self) -> EngineResult<StagedObject> {
        let inline_max = self.engine.inner.config.inline_max_bytes as u64;
        if self.allow_inline
            && self.size > 0
            && self.size <= inline_max
            && self.done.is_empty()
            && self.inflight.is_empty()
            && let Some(body) = self.chunker.finish()
        {
            // Nothing was cut yet, so the chunker held the whole body.
            debug_assert_eq!(body.len() as u64, self.size);
            let inner = self.engine.inner.clone();
            let data = blocking(move || {
                let id = inner.chunks.codec.chunk_id(&body);
                let sealed = inner.chunks.codec.seal(&id, &body)?;
                inner
                    .metrics
                    .stored_bytes
                    .inc_by(sealed.sealed.len() as u64);
                Ok(crate::records::ManifestRef::Data {
                    chunk: id,
                    compressed: sealed.compressed,
                    sealed: sealed.sealed,
                })
            })
            .await?;
            return Ok(StagedObject {
                data: Some(data),
                entries: Vec::new(),
                new_chunks: Vec::new(),
                pins: ChunkPins::new(self.engine.inner.clone()),
                _ticket: self.ticket,
                size: self.size,
            });
        }
        while let Some(chunk) = self.chunker.finish() {
            self.dispatch(chunk).await?;
        }
        while !self.inflight.is_empty() {
            self.collect_one().await?;
        }
        // Group commit: one sync per drive covering this object's last append
        // there (the drive shares the fsync with concurrent writers).
        let mut per_drive: HashMap<usize, u64> = HashMap::new();
        for c in &self.done {
            for (d, seq) in &c.syncs {
                let e = per_drive.entry(*d).or_insert(0);
                *e = (*e).max(*seq);
            }
        }
        let syncs: Vec<_> = per_drive
            .into_iter()
            .map(|(d, seq)| {
                let drive = self.engine.inner.drives.stores[d].clone();
                (d, tokio::task::spawn_blocking(move || drive.sync(seq)))
            })
            .collect();
        // Any failed sync fails the write (its shards' durability is
        // unknown); the drive is then skipped by the client's retry.
        let mut first_err = None;
        for (d, s) in syncs {
            if let Err(e) = s.await.map_err(EngineError::join).and_then(|r| r) {
                if !matches!(e, EngineError::StorageFull(_)) {
                    self.engine.inner.drives.health[d].mark_faulty(d, &e);
                }
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let mut entries = Vec::with_capacity(self.done.len());
        let mut new_chunks = Vec::new();
        let mut pins = ChunkPins::new(self.engine.inner.clone());
        for c in self.done {
            entries.push(c.entry);
            if let Some(rec) = c.new_record {
                new_chunks.push((c.entry.chunk, rec));
            }
            if let Some(p) = c.pin {
                pins.absorb(p);
            }
        }
        debug_assert_eq!(
            entries.iter().map(|e| u64::from(e.len)).sum::<u64>(),
            self.size
        );
        Ok(StagedObject {
            data: None,
            entries,
            new_chunks,
            pins,
            _ticket: self.ticket,
            size: self.size,
        })
    }
}

/// A claimed early sync of `drive` (see `ShardStore::claim_early_sync`),
/// released when dropped: after the sync, or if the task never runs.
struct EarlySyncClaim(Arc<dyn crate::drive::ShardStore>);

impl Drop for EarlySyncClaim {
    fn drop(&mut self) {
        self.0.early_sync_finished();
    }
}

/// Syncs `drive` up to `seq` in the background: the disk writes what is
/// appended so far while more arrives, and the writers' own syncs (which
/// still run before any commit) find less to flush. Nothing waits for it:
/// a failure marks the drive failed, and the next writer's sync reports it.
fn start_early_sync(drive: Arc<dyn crate::drive::ShardStore>, seq: u64) {
    let claim = EarlySyncClaim(drive);
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn_blocking(move || {
            let _ = claim.0.sync(seq);
        });
    }
}

/// Identifies one chunk and, unless it is already stored, seals it,
/// erasure-codes it and appends its shards to their drives (not yet synced).
/// Every segment appended to is claimed for the writer (`appender`) before
/// this returns, so compaction leaves it alone until the writer is done.
fn store_chunk(
    inner: &Arc<Inner>,
    appender: &WriterAppender,
    chunk: Bytes,
) -> EngineResult<StoredChunk> {
    let len = u32::try_from(chunk.len())
        .map_err(|_| EngineError::Internal("chunk larger than 4 GiB".into()))?;
    let id = inner.chunks.codec.chunk_id(&chunk);
    let entry = ManifestEntry { chunk: id, len };
    {
        // Dedup: under the chunk's lock, so garbage collection cannot delete
        // the record between this check and the pin.
        let mut pin = ChunkPins::new(inner.clone());
        if pin.pin_existing(&id)? {
            inner.metrics.chunks_dedup.inc();
            return Ok(StoredChunk {
                entry,
                new_record: None,
                pin: Some(pin),
                syncs: Vec::new(),
            });
        }
    }
    let coder = inner.chunks.configured_coder()?;
    // Sealed into a buffer with room for the parity shards: erasure coding
    // then works in place (no copy, no zeroing of the data part).
    let sealed = inner
        .chunks
        .codec
        .seal_reserving(&id, &chunk, |n| coder.encoded_len_bytes(n))?;
    let sealed_len = sealed.sealed.len();
    let compressed = sealed.compressed;
    let encoded = coder
        .encode_owned(sealed.sealed)
        .map_err(EngineError::Erasure)?;
    let shard_count = coder.total_shards();
    // Rendezvous order over all drives; healthy drives first so a faulty one
    // is replaced by the next candidate when there is a spare drive.
    // One node is exactly `placement::place`; a cluster spreads shards one
    // per node first.
    let ranking = inner.placement_ranking(&id);
    let targets: Vec<usize> = if inner.meta.is_replica() {
        // A cluster keeps the rule's drives even when some are down: a
        // substitute would put more shards on one node than its failure
        // may take. The missing shards are recorded and rebuilt in place.
        ranking.into_iter().take(shard_count).collect()
    } else {
        let (healthy, faulty): (Vec<usize>, Vec<usize>) =
            ranking.into_iter().partition(|&d| inner.drives.usable(d));
        healthy
            .into_iter()
            .chain(faulty)
            .take(shard_count)
            .collect()
    };
    let quorum = inner.write_quorum(coder.data_shards(), coder.parity_shards());
    let mut shards = Vec::with_capacity(shard_count);
    let mut syncs = Vec::with_capacity(shard_count);
    let mut raw = 0u64;
    let mut written = 0usize;
    // Announced before the first append: until the guard is dropped (with
    // the segments recorded as claims), compaction keeps clear of every
    // segment modified since — the appends' segments are not known before.
    let mut appends = appender.begin();
    for (i, &d) in targets.iter().enumerate() {
        let payload = encoded.shard(i);
        let appended = if inner.drives.usable(d) {
            inner.drives.stores[d].append(&id, i as u8, &payload, encoded.checksum(i))
        } else {
            Err(EngineError::Internal(format!("drive {d} is marked faulty")))
        };
        match appended {
            Ok((loc, seq)) => {
                appends.appended(d, loc.segment);
                raw += (payload.len() + crate::drive::RECORD_HEADER_BYTES) as u64;
                shards.push(loc);
                syncs.push((d, seq));
                written += 1;
                if inner.drives.stores[d].claim_early_sync() {
                    start_early_sync(inner.drives.stores[d].clone(), seq);
                }
            }
            // A full disk fails the write: S3 clients get InsufficientStorage
            // and nothing is stored (the appended shards are unreferenced).
            Err(e @ EngineError::StorageFull(_)) => return Err(e),
            Err(e) => {
                if inner.drives.usable(d) {
                    inner.drives.health[d].mark_faulty(d, &e);
                }
                // Never written: a location no segment has (reads it as
                // missing; scrub rebuilds it once the drive is back).
                shards.push(crate::records::ShardLocation::unwritten(d as u16));
            }
        }
    }
    drop(appends);
    if written < quorum {
        return Err(EngineError::ChunkUnavailable {
            chunk: id,
            reason: format!(
                "only {written} of {shard_count} shards could be written; {quorum} needed"
            ),
        });
    }
    let m = &inner.metrics;
    m.chunks_new.inc();
    if compressed {
        m.chunks_compressed.inc();
    }
    m.stored_bytes.inc_by(sealed_len as u64);
    m.raw_bytes.inc_by(raw);
    let record = ChunkRecord {
        refcount: 0,
        plain_len: len,
        sealed_len: sealed_len as u32,
        compressed,
        data_shards: coder.data_shards() as u8,
        parity_shards: coder.parity_shards() as u8,
        shard_len: encoded.shard_len_bytes() as u32,
        shards,
        zero_since_ms: 0,
    };
    Ok(StoredChunk {
        entry,
        new_record: Some(record),
        pin: None,
        syncs,
    })
}

impl StagedObject {
    /// After the commit of this staged data: settles its pins (see
    /// [`ChunkPins::settle`]) and, if the outcome is unknown, keeps its
    /// writer holding compaction back (its shards may still be committed).
    pub(crate) fn settle<T>(&mut self, committed: &EngineResult<T>) {
        self.pins.settle(committed);
        if let Err(EngineError::Unavailable(_)) = committed {
            self._ticket
                .linger(crate::parts::writers::UNKNOWN_OUTCOME_LINGER_MS);
        }
    }
}
