//! Reading object data: manifest → chunks in order → any k intact shards →
//! (RS decode only if a data shard is missing) → decrypt → decompress →
//! verify the chunk id → bytes. Range reads touch only the chunks they need.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::drive::ShardReadError;
use crate::engine::{Engine, Inner};
use crate::error::{EngineError, EngineResult};
use crate::meta::Chunks;
use crate::records::{ManifestEntry, ManifestRef, ObjectVersion};

/// Chunks fetched ahead of the one being sent, per reader.
const READER_PREFETCH_CHUNKS: usize = 3;

/// Streams a byte range of one object version.
#[derive(Debug)]
pub struct ObjectReader {
    inner: Arc<Inner>,
    version: ObjectVersion,
    /// Entries of the current manifest block (or the inline manifest).
    entries: Vec<ManifestEntry>,
    next_entry: usize,
    next_block: u32,
    /// Object offset of `entries[next_entry]`.
    entry_offset: u64,
    /// Next object byte to schedule, and one past the last byte wanted.
    pos: u64,
    end: u64,
    queue: VecDeque<JoinHandle<EngineResult<Bytes>>>,
    /// The requested range of an object stored inline, decoded up front.
    ready: Option<Bytes>,
}

impl Engine {
    /// Opens `bucket/key` for reading `range` (`start..end`, end exclusive;
    /// the whole object if `None`). The range must be within the object; the
    /// S3 layer resolves `Range` headers against the size first.
    pub fn read_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> EngineResult<ObjectReader> {
        let version = self.head_object(bucket, key)?;
        self.read_version(version, range)
    }

    /// Reads a version already looked up (so HEAD-then-GET sees one version).
    pub fn read_version(
        &self,
        version: ObjectVersion,
        range: Option<(u64, u64)>,
    ) -> EngineResult<ObjectReader> {
        let (start, end) = range.unwrap_or((0, version.size));
        if start > end || end > version.size {
            return Err(EngineError::Internal(format!(
                "range {start}..{end} outside object of {} bytes",
                version.size
            )));
        }
        let mut reader = ObjectReader {
            inner: self.inner.clone(),
            entries: Vec::new(),
            next_entry: 0,
            next_block: 0,
            entry_offset: 0,
            pos: start,
            end,
            queue: VecDeque::new(),
            ready: None,
            version,
        };
        if let ManifestRef::Data {
            chunk,
            compressed,
            sealed,
        } = &reader.version.manifest
        {
            let plain_len = u32::try_from(reader.version.size)
                .map_err(|_| EngineError::Corrupt("inline object too large".into()))?;
            let plain = self
                .inner
                .chunks
                .codec
                .open(chunk, sealed, *compressed, plain_len)?;
            if start < end {
                reader.ready = Some(plain.slice(start as usize..end as usize));
            }
            reader.pos = end;
            return Ok(reader);
        }
        reader.seek_manifest(start)?;
        Ok(reader)
    }
}

impl ObjectReader {
    pub fn version(&self) -> &ObjectVersion {
        &self.version
    }

    /// Positions the manifest cursor on the entry containing `offset`.
    fn seek_manifest(&mut self, offset: u64) -> EngineResult<()> {
        match &self.version.manifest {
            ManifestRef::Inline(entries) => {
                self.entries = entries.clone();
                self.next_block = 1;
                self.entry_offset = 0;
            }
            ManifestRef::Data { .. } => {
                self.entries.clear();
                self.entry_offset = 0;
            }
            ManifestRef::DataElsewhere { .. } => {
                return Err(crate::parts::objects::unresolved_inline(&self.version));
            }
            ManifestRef::Blocks {
                block_first_offsets,
            } => {
                // The last block whose first offset is <= offset.
                let block = block_first_offsets
                    .partition_point(|&o| o <= offset)
                    .saturating_sub(1);
                self.entry_offset = block_first_offsets.get(block).copied().unwrap_or(0);
                self.entries = self
                    .inner
                    .meta
                    .manifest_block(self.version.version_id, block as u32)?
                    .entries;
                self.next_block = block as u32 + 1;
            }
        }
        self.next_entry = 0;
        // Skip entries that end at or before `offset`.
        while let Some(e) = self.entries.get(self.next_entry) {
            if self.entry_offset + u64::from(e.len) > offset {
                break;
            }
            self.entry_offset += u64::from(e.len);
            self.next_entry += 1;
        }
        Ok(())
    }

    /// The next manifest entry and its object offset, loading blocks as needed.
    fn next_manifest_entry(&mut self) -> EngineResult<Option<(ManifestEntry, u64)>> {
        loop {
            if let Some(e) = self.entries.get(self.next_entry).copied() {
                let off = self.entry_offset;
                self.next_entry += 1;
                self.entry_offset += u64::from(e.len);
                return Ok(Some((e, off)));
            }
            let ManifestRef::Blocks {
                block_first_offsets,
            } = &self.version.manifest
            else {
                return Ok(None);
            };
            if self.next_block as usize >= block_first_offsets.len() {
                return Ok(None);
            }
            self.entries = self
                .inner
                .meta
                .manifest_block(self.version.version_id, self.next_block)?
                .entries;
            self.next_block += 1;
            self.next_entry = 0;
        }
    }

    fn schedule(&mut self) -> EngineResult<()> {
        while self.queue.len() < READER_PREFETCH_CHUNKS && self.pos < self.end {
            let Some((entry, offset)) = self.next_manifest_entry()? else {
                return Err(EngineError::Corrupt(format!(
                    "manifest of {:?} ends before byte {}",
                    self.version.version_id, self.pos
                )));
            };
            let chunk_end = offset + u64::from(entry.len);
            if chunk_end <= self.pos {
                continue;
            }
            let from = (self.pos - offset) as usize;
            let to = (self.end.min(chunk_end) - offset) as usize;
            self.pos = self.end.min(chunk_end);
            let inner = self.inner.clone();
            self.queue.push_back(tokio::task::spawn_blocking(move || {
                let data = read_chunk(&inner, &entry)?;
                Ok(data.slice(from..to))
            }));
        }
        Ok(())
    }

    /// The next piece of the range, or `None` at its end. An error means the
    /// rest of the object cannot be delivered intact: the caller must abort
    /// the response rather than send anything unverified.
    pub async fn next_bytes(&mut self) -> Option<EngineResult<Bytes>> {
        if let Some(b) = self.ready.take() {
            return Some(Ok(b));
        }
        if let Err(e) = self.schedule() {
            return Some(Err(e));
        }
        let handle = self.queue.pop_front()?;
        let res = match handle.await {
            Ok(r) => r,
            Err(e) => Err(EngineError::join(e)),
        };
        Some(res)
    }
}

/// Reads and verifies one chunk: data shards first, parity only as needed.
pub(crate) fn read_chunk(inner: &Arc<Inner>, entry: &ManifestEntry) -> EngineResult<Bytes> {
    let id = entry.chunk;
    let rec = inner.meta.get::<Chunks>(&id)?.ok_or_else(|| {
        EngineError::Corrupt(format!(
            "chunk record {id} referenced by a manifest is missing"
        ))
    })?;
    if rec.plain_len != entry.len {
        return Err(EngineError::Corrupt(format!(
            "chunk {id}: manifest says {} bytes, record says {}",
            entry.len, rec.plain_len
        )));
    }
    let k = usize::from(rec.data_shards);
    let n = rec.shards.len();
    let mut shards: Vec<Option<Bytes>> = vec![None; n];
    let mut present = 0usize;
    let mut failures = Vec::new();
    // Data shards first: if all are intact no decoding is needed.
    for (i, loc) in rec.shards.iter().enumerate() {
        if present == k {
            break;
        }
        let d = usize::from(loc.drive);
        let result = match inner.drives.stores.get(d) {
            _ if loc.is_unwritten() => Err(ShardReadError::Missing("never written".into())),
            // A faulty drive is skipped while enough other shards remain.
            Some(_) if !inner.drives.usable(d) && n - i > k - present => Err(
                ShardReadError::Missing(format!("drive {d} is marked faulty")),
            ),
            Some(drive) if loc.node == 0 => {
                let r = drive.read(loc, &id, i as u8, rec.shard_len);
                match &r {
                    Ok(_) => inner.drives.health[d].succeeded(),
                    Err(ShardReadError::Io(e)) => inner.drives.health[d].read_failed(d, e),
                    Err(_) => {}
                }
                r
            }
            _ => Err(ShardReadError::Missing(format!(
                "no drive {} on node {}",
                loc.drive, loc.node
            ))),
        };
        match result {
            Ok(b) => {
                shards[i] = Some(b);
                present += 1;
            }
            Err(e) => {
                let reason = match &e {
                    ShardReadError::Missing(_) => "missing",
                    ShardReadError::Corrupt(_) => "corrupt",
                    ShardReadError::Io(_) => "io",
                };
                inner
                    .metrics
                    .shard_read_errors
                    .with_label_values(&[reason])
                    .inc();
                failures.push(format!("shard {i} on drive {}: {e}", loc.drive));
            }
        }
    }
    if present < k {
        inner.metrics.chunks_unrecoverable.inc();
        tracing::error!(chunk = %id, failures = ?failures, "chunk unrecoverable");
        return Err(EngineError::ChunkUnavailable {
            chunk: id,
            reason: format!("{present} of {k} needed shards readable"),
        });
    }
    if !failures.is_empty() {
        inner.metrics.chunks_reconstructed.inc();
        tracing::warn!(chunk = %id, failures = ?failures, "reconstructing chunk from parity");
    }
    let coder = inner.chunks.coder(rec.data_shards, rec.parity_shards)?;
    let sealed = coder.decode(shards, rec.sealed_len as usize).map_err(|e| {
        crate::pipeline::corrupt(&id, crate::error::ChunkCheck::ErasureDecode, Some(e.into()))
    })?;
    let plain = inner
        .chunks
        .codec
        .open(&id, &sealed, rec.compressed, rec.plain_len)?;
    if !failures.is_empty() {
        inner.schedule_read_repair(id);
    }
    Ok(plain)
}
