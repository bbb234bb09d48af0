//! UploadPartCopy: a multipart part made from a byte range of an existing
//! object version, by reference wherever possible.
//!
//! Every chunk of the source lying wholly inside the range becomes a manifest
//! entry of the part (one more reference, nothing stored). Only the chunks
//! cut by the range edges are read, sliced and written again through the
//! normal pipeline ([`ObjectWriter`]), as is a small source stored inline in
//! its record (it has no chunks). Every chunk in the range is still read
//! once, because the part's ETag is the MD5 of its bytes.
//!
//! Safety against garbage collection: each source chunk is pinned (+1, under
//! its chunk lock, only if its record still exists) before it is read or
//! referenced. Pins of referenced chunks become the part's references in the
//! commit batch ([`Engine::commit_part`]); pins of edge chunks are released
//! once their bytes are rewritten. So the copy is of exactly the version the
//! caller looked up (and evaluated `x-amz-copy-source-if-*` against), even if
//! the source key is overwritten meanwhile.

use std::collections::VecDeque;

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::task::JoinHandle;

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::get::read_chunk;
use crate::meta::UploadId;
use crate::multipart::NewPart;
use crate::parts::writers::WriterTicket;
use crate::put::{ChunkPins, ObjectWriter, StagedObject};
use crate::records::{ManifestEntry, ManifestRef, ObjectVersion, PartRecord};

/// Source chunks read ahead of the one being processed.
const COPY_PREFETCH_CHUNKS: usize = 3;

/// One source chunk overlapping the range: `from..to` of its plaintext is
/// in the part (the whole chunk when `from == 0 && to == len`).
#[derive(Clone, Copy, Debug)]
struct Piece {
    entry: ManifestEntry,
    from: usize,
    to: usize,
}

impl Piece {
    fn whole(&self) -> bool {
        self.from == 0 && self.to == self.entry.len as usize
    }
}

/// The part being assembled: referenced entries and rewritten edge bytes,
/// in order.
struct Assembly {
    entries: Vec<ManifestEntry>,
    new_chunks: Vec<(cairn_dedup::ChunkId, crate::records::ChunkRecord)>,
    pins: ChunkPins,
    writer: Option<ObjectWriter>,
    /// The copy's one registration (tracked): every edge writer appends
    /// under it, and it is held until the part's commit, so compaction
    /// leaves the segments of all rewritten slices alone until then.
    ticket: Option<WriterTicket>,
    md5: Md5,
}

impl Assembly {
    /// Appends the bytes written since the last referenced chunk.
    async fn flush(&mut self) -> EngineResult<()> {
        if let Some(w) = self.writer.take() {
            let staged = w.finish().await?;
            debug_assert!(staged.data.is_none(), "part bytes are never inline");
            let StagedObject {
                entries,
                new_chunks,
                pins,
                _ticket,
                ..
            } = staged;
            self.ticket = Some(_ticket);
            self.entries.extend(entries);
            self.new_chunks.extend(new_chunks);
            self.pins.absorb(pins);
        }
        Ok(())
    }

    async fn write(&mut self, engine: &Engine, bucket: &str, bytes: Bytes) -> EngineResult<()> {
        self.md5.update(&bytes);
        let w = match &mut self.writer {
            Some(w) => w,
            None => {
                let ticket = match self.ticket.take() {
                    Some(t) => t,
                    None => engine.inner.writers.register_body_writer(),
                };
                self.writer
                    .insert(engine.object_writer_with(bucket, ticket)?)
            }
        };
        w.write(bytes).await
    }
}

impl Engine {
    /// Stores bytes `range` (`start..end`, within `source`) of the object
    /// version `source` as part `part_number` of upload `id` of
    /// `bucket/key`, replacing a previous part of that number. Returns the
    /// part (its `md5` is the ETag). `NoSuchKey` if the version's chunks were
    /// collected meanwhile (the source was replaced long ago).
    pub async fn copy_part(
        &self,
        source: &ObjectVersion,
        range: (u64, u64),
        bucket: &str,
        key: &str,
        id: UploadId,
        part_number: u32,
    ) -> EngineResult<PartRecord> {
        let (start, end) = range;
        if start > end || end > source.size {
            return Err(EngineError::Internal(format!(
                "copy range {start}..{end} outside object of {} bytes",
                source.size
            )));
        }
        self.upload(bucket, key, id)?;
        // One tracked registration for the whole copy: it counts from the
        // first rewritten slice's append and claims the segments of every
        // slice until the commit (referenced chunks are pinned instead).
        let mut asm = Assembly {
            entries: Vec::new(),
            new_chunks: Vec::new(),
            pins: ChunkPins::new(self.inner.clone()),
            writer: None,
            ticket: Some(self.inner.writers.register_body_writer()),
            md5: Md5::new(),
        };
        if let ManifestRef::Data { .. } | ManifestRef::DataElsewhere { .. } = &source.manifest {
            // Stored in the record: no chunk to reference.
            let mut reader = self.read_version(source.clone(), Some((start, end)))?;
            while let Some(piece) = reader.next_bytes().await {
                asm.write(self, bucket, piece?).await?;
            }
        } else if start < end {
            self.copy_chunks(source, start, end, bucket, &mut asm)
                .await?;
        }
        asm.flush().await?;
        let Assembly {
            entries,
            new_chunks,
            pins,
            md5,
            ticket,
            ..
        } = asm;
        let ticket = match ticket {
            Some(t) => t,
            None => {
                return Err(EngineError::Internal(
                    "part copy lost its writer ticket".into(),
                ));
            }
        };
        debug_assert_eq!(
            entries.iter().map(|e| u64::from(e.len)).sum::<u64>(),
            end - start,
            "the part's manifest must cover the range exactly"
        );
        let staged = StagedObject {
            data: None,
            entries,
            new_chunks,
            pins,
            _ticket: ticket,
            size: end - start,
        };
        self.commit_part(
            bucket,
            key,
            id,
            part_number,
            NewPart {
                staged,
                md5: md5.finalize().into(),
                checksums: Vec::new(),
                cipher_stream: 0,
            },
        )
        .await
    }

    async fn copy_chunks(
        &self,
        source: &ObjectVersion,
        start: u64,
        end: u64,
        bucket: &str,
        asm: &mut Assembly,
    ) -> EngineResult<()> {
        let inner = self.inner.clone();
        let version = source.clone();
        let all = blocking(move || match inner.objects.manifest_entries(&version) {
            Ok(entries) => Ok(entries),
            // Manifest blocks are deleted in the batch that releases their
            // version: a missing first block means the source was replaced
            // since it was looked up, not corruption.
            Err(EngineError::Corrupt(detail)) => {
                if matches!(
                    inner.meta.manifest_block(version.version_id, 0),
                    Err(EngineError::Corrupt(_))
                ) {
                    Err(EngineError::NoSuchKey)
                } else {
                    Err(EngineError::Corrupt(detail))
                }
            }
            Err(e) => Err(e),
        })
        .await?;
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        for entry in all {
            let (a, b) = (offset, offset + u64::from(entry.len));
            offset = b;
            if a >= end {
                break;
            }
            if b <= start {
                continue;
            }
            pieces.push(Piece {
                entry,
                from: (start.max(a) - a) as usize,
                to: (end.min(b) - a) as usize,
            });
        }
        // Pin every chunk before it is read or referenced: referenced ones
        // into the part's pins, edge ones into pins dropped (released) at the
        // end of this function, after their bytes were rewritten.
        let list = pieces.clone();
        let mut ref_pins = ChunkPins::new(self.inner.clone());
        let mut edge_pins = ChunkPins::new(self.inner.clone());
        let (ref_pins, edge_pins) = blocking(move || {
            for p in &list {
                let pins = if p.whole() {
                    &mut ref_pins
                } else {
                    &mut edge_pins
                };
                if !pins.pin_existing(&p.entry.chunk)? {
                    tracing::warn!(chunk = %p.entry.chunk, "copy source chunk was collected; the source version is gone");
                    return Err(EngineError::NoSuchKey);
                }
            }
            Ok((ref_pins, edge_pins))
        })
        .await?;
        asm.pins.absorb(ref_pins);

        let mut queue: VecDeque<(Piece, JoinHandle<EngineResult<Bytes>>)> = VecDeque::new();
        let mut next = pieces.into_iter();
        loop {
            while queue.len() < COPY_PREFETCH_CHUNKS {
                let Some(p) = next.next() else { break };
                let inner = self.inner.clone();
                let entry = p.entry;
                queue.push_back((
                    p,
                    tokio::task::spawn_blocking(move || read_chunk(&inner, &entry)),
                ));
            }
            let Some((p, handle)) = queue.pop_front() else {
                break;
            };
            let bytes = handle.await.map_err(EngineError::join)??;
            if bytes.len() != p.entry.len as usize {
                return Err(EngineError::Corrupt(format!(
                    "chunk {} read as {} bytes, manifest says {}",
                    p.entry.chunk,
                    bytes.len(),
                    p.entry.len
                )));
            }
            if p.whole() {
                asm.md5.update(&bytes);
                asm.flush().await?;
                asm.entries.push(p.entry);
            } else {
                asm.write(self, bucket, bytes.slice(p.from..p.to)).await?;
            }
        }
        // The edge bytes were read (and handed to the writer): the source's
        // edge chunks need no pin any more.
        drop(edge_pins);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use crate::records::ManifestRef;
    use crate::test_support::{open_with, pseudo_random, small_chunk_config, try_put, try_read};
    use crate::{CompletedPart, Engine, EngineError, ObjectMetadata};

    fn refcount(e: &Engine, id: &cairn_dedup::ChunkId) -> u64 {
        e.inner
            .meta
            .get::<crate::meta::Chunks>(id)
            .unwrap()
            .map(|r| r.refcount)
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn whole_chunks_are_referenced_and_edges_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_with(small_chunk_config(dir.path()), 0x51);
        e.create_bucket("b").await.unwrap();
        let data = pseudo_random(3_000_000, 7);
        let src = try_put(&e, "b", "src", &data, 100_000).await.unwrap();
        assert!(matches!(src.manifest, ManifestRef::Blocks { .. }));
        let entries = e.inner.objects.manifest_entries(&src).unwrap();
        let (start, end) = (1_000u64, 2_500_000u64);

        let id = e
            .create_upload("b", "dst", ObjectMetadata::default())
            .await
            .unwrap();
        let part = e
            .copy_part(&src, (start, end), "b", "dst", id, 1)
            .await
            .unwrap();
        assert_eq!(part.size, end - start);
        let want = &data[start as usize..end as usize];
        assert_eq!(part.md5, <[u8; 16]>::from(Md5::digest(want)));

        // Whole chunks inside the range: named by the source and the part;
        // edge chunks: by the source only (their copy pins were released).
        let mut offset = 0u64;
        let (mut whole, mut edges) = (0, 0);
        for entry in &entries {
            let (a, b) = (offset, offset + u64::from(entry.len));
            offset = b;
            let expected = if a >= start && b <= end {
                whole += 1;
                2
            } else {
                if a < end && b > start {
                    edges += 1;
                }
                1
            };
            assert_eq!(refcount(&e, &entry.chunk), expected, "chunk at {a}..{b}");
        }
        assert!(whole >= 20, "{whole} whole chunks");
        assert_eq!(edges, 2);
        // The part starts and ends with rewritten edge bytes around exactly
        // the referenced chunks.
        assert!(
            part.entries.len() >= whole + 2,
            "{} entries",
            part.entries.len()
        );

        let v = e
            .complete_upload(
                "b",
                "dst",
                id,
                vec![CompletedPart {
                    part_number: 1,
                    etag: hex::encode(part.md5),
                }],
            )
            .await
            .unwrap();
        assert_eq!(v.size, end - start);
        assert_eq!(try_read(&e, "b", "dst", None).await.unwrap(), want);
        // Deleting the source leaves the copy's references.
        e.delete_object("b", "src").await.unwrap();
        assert_eq!(try_read(&e, "b", "dst", None).await.unwrap(), want);
        for entry in e.inner.objects.manifest_entries(&v).unwrap() {
            assert_eq!(refcount(&e, &entry.chunk), 1);
        }
    }

    #[tokio::test]
    async fn a_source_replaced_after_lookup_is_no_such_key() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_with(small_chunk_config(dir.path()), 0x52);
        e.create_bucket("b").await.unwrap();
        let stale = try_put(&e, "b", "src", &pseudo_random(3_000_000, 8), 100_000)
            .await
            .unwrap();
        try_put(&e, "b", "src", &pseudo_random(10_000, 9), 10_000)
            .await
            .unwrap();
        let id = e
            .create_upload("b", "dst", ObjectMetadata::default())
            .await
            .unwrap();
        let r = e.copy_part(&stale, (0, 1_000_000), "b", "dst", id, 1).await;
        assert!(matches!(r, Err(EngineError::NoSuchKey)), "{r:?}");
        let page = e.list_parts("b", "dst", id, 0, 10).await.unwrap();
        assert!(page.parts.is_empty());
    }
}
