//! Multipart uploads. A part is stored like an object body (same pipeline,
//! same durability order) and holds references to its chunks until the upload
//! completes (references move to the object) or is aborted (released).

use md5::{Digest, Md5};

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Parts, UploadId, Uploads};
use crate::notifications::ObjectEvent;
use crate::parts::objects::{NewCurrent, WriteCondition, add_ref_deltas};
use crate::put::StagedObject;
use crate::records::{ObjectMetadata, ObjectVersion, PartRecord, UploadRecord, VersionLock};

/// S3's minimum size of every part but the last.
pub const PART_SIZE_MIN_BYTES: u64 = 5 << 20;
/// S3's part number range.
pub const PART_NUMBER_MAX: u32 = 10_000;

/// A part as the client names it in CompleteMultipartUpload.
#[derive(Clone, Debug)]
pub struct CompletedPart {
    pub part_number: u32,
    /// The ETag the client got from UploadPart (quotes optional).
    pub etag: String,
}

/// A page of ListParts.
#[derive(Clone, Debug)]
pub struct PartsPage {
    pub upload: UploadRecord,
    pub parts: Vec<(u32, PartRecord)>,
    pub is_truncated: bool,
}

fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_ascii_lowercase()
}

/// A part body written through the pipeline, with the digests the S3 layer
/// computed over it.
#[derive(Debug)]
pub struct NewPart {
    pub staged: StagedObject,
    /// MD5 of the part body (its ETag).
    pub md5: [u8; 16],
    /// Checksums sent with the part: (algorithm SDK name, base64 value).
    pub checksums: Vec<(String, String)>,
    /// The keystream id its bytes are encrypted with (SSE-C / SSE-KMS
    /// uploads), 0 for none.
    pub cipher_stream: u64,
}

impl Engine {
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMetadata,
    ) -> EngineResult<UploadId> {
        self.create_upload_with(bucket, key, meta, VersionLock::default())
            .await
    }

    /// [`Engine::create_upload`] whose object gets `lock` (Object Lock
    /// asked for at CreateMultipartUpload) when it completes.
    pub async fn create_upload_with(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMetadata,
        lock: VersionLock,
    ) -> EngineResult<UploadId> {
        let b = self.inner.objects.bucket(bucket)?;
        let inner = self.inner.clone();
        let id = UploadId::random();
        let rec = UploadRecord {
            bucket_id: b.id,
            key: key.to_owned(),
            created_ms: crate::now_ms(),
            meta,
            lock,
        };
        blocking(move || {
            let mut batch = inner.meta.batch();
            batch.put::<Uploads>(id, &rec);
            inner.meta.write(batch)
        })
        .await?;
        Ok(id)
    }

    /// The upload, checked to belong to `bucket/key`.
    pub fn upload(&self, bucket: &str, key: &str, id: UploadId) -> EngineResult<UploadRecord> {
        let b = self.inner.objects.bucket(bucket)?;
        match self.inner.meta.get::<Uploads>(id)? {
            Some(u) if u.bucket_id == b.id && u.key == key => Ok(u),
            _ => Err(EngineError::NoSuchUpload),
        }
    }

    /// Makes a staged part durable-visible, replacing a previous upload of the
    /// same part number.
    pub async fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        id: UploadId,
        part_number: u32,
        part: NewPart,
    ) -> EngineResult<PartRecord> {
        let NewPart {
            staged,
            md5,
            checksums,
            cipher_stream,
        } = part;
        self.upload(bucket, key, id)?;
        let _g = self.inner.objects.lock_keys(&id, None::<&()>).await;
        let inner = self.inner.clone();
        let size = staged.size;
        let part = blocking(move || {
            let mut staged = staged;
            if staged.data.is_some() {
                return Err(EngineError::Internal(
                    "a part body was staged inline".into(),
                ));
            }
            // Re-check under the lock: a concurrent complete/abort wins. The
            // guards carry both reads to the apply, for writers elsewhere.
            let (upload, upload_unchanged) = inner.meta.get_guarded::<Uploads>(id)?;
            if upload.is_none() {
                return Err(EngineError::NoSuchUpload);
            }
            let (old, old_unchanged) = inner.meta.get_guarded::<Parts>((id, part_number))?;
            let mut batch = inner.meta.batch();
            batch.guard(upload_unchanged);
            batch.guard(old_unchanged);
            staged.pins.unpin(&mut batch)?;
            add_ref_deltas(&mut batch, &staged.entries, &staged.new_chunks, 1)?;
            if let Some(old) = old {
                add_ref_deltas(&mut batch, &old.entries, &[], -1)?;
            }
            let part = PartRecord {
                md5,
                size: staged.size,
                last_modified_ms: crate::now_ms(),
                checksums,
                entries: std::mem::take(&mut staged.entries),
                cipher_stream,
            };
            batch.put::<Parts>((id, part_number), &part);
            let committed = inner.meta.write(batch);
            staged.settle(&committed);
            committed?;
            Ok(part)
        })
        .await?;
        self.inner.metrics.logical_bytes.inc_by(size);
        Ok(part)
    }

    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        id: UploadId,
        part_number_marker: u32,
        max_parts: usize,
    ) -> EngineResult<PartsPage> {
        let upload = self.upload(bucket, key, id)?;
        let inner = self.inner.clone();
        blocking(move || {
            let mut parts =
                inner
                    .meta
                    .parts(id, part_number_marker, max_parts.saturating_add(1))?;
            let is_truncated = parts.len() > max_parts;
            parts.truncate(max_parts);
            Ok(PartsPage {
                upload,
                parts,
                is_truncated,
            })
        })
        .await
    }

    /// Assembles the listed parts into the object, atomically replacing any
    /// current version of the key, and ends the upload.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        id: UploadId,
        parts: Vec<CompletedPart>,
    ) -> EngineResult<ObjectVersion> {
        self.complete_upload_if(bucket, key, id, parts, WriteCondition::None, |_| {
            Ok(Vec::new())
        })
        .await
    }

    /// [`Engine::complete_upload`] if `cond` holds for the key's current
    /// version, checked under the key's (and the upload's) stripe lock before
    /// anything is written. A failed condition leaves the upload and its
    /// parts in place.
    ///
    /// `derive` is called in the same critical section, with exactly the
    /// chosen parts in order, once they are validated; its result becomes the
    /// object's `meta.checksums` (the S3 layer derives the multipart
    /// checksum there — the engine knows no checksum algorithm). An error
    /// from it fails the completion like any other: nothing is written.
    pub async fn complete_upload_if(
        &self,
        bucket: &str,
        key: &str,
        id: UploadId,
        parts: Vec<CompletedPart>,
        cond: WriteCondition,
        derive: impl FnOnce(&[(u32, PartRecord)]) -> EngineResult<Vec<(String, String)>>
        + Send
        + 'static,
    ) -> EngineResult<ObjectVersion> {
        let b = self.inner.objects.bucket(bucket)?;
        self.upload(bucket, key, id)?;
        let _g = self.inner.objects.lock_keys(&id, Some(&(b.id, key))).await;
        let inner = self.inner.clone();
        let key = key.to_owned();
        let bucket = bucket.to_owned();
        let version = blocking(move || {
            let (upload, upload_unchanged) = inner.meta.get_guarded::<Uploads>(id)?;
            let upload = match upload {
                Some(u) if u.bucket_id == b.id && u.key == key => u,
                _ => return Err(EngineError::NoSuchUpload),
            };
            cond.check(inner.meta.object(b.id, &key)?.as_ref())?;
            if parts.is_empty() {
                return Err(EngineError::InvalidPart { part_number: 0 });
            }
            for w in parts.windows(2) {
                if w[1].part_number <= w[0].part_number {
                    return Err(EngineError::InvalidPartOrder);
                }
            }
            let stored = inner
                .meta
                .parts_guarded(id, 0, PART_NUMBER_MAX as usize + 1)?;
            let mut batch = inner.meta.batch();
            // Every record read below is released: all must be as read.
            batch.guard(upload_unchanged);
            let mut by_number: std::collections::HashMap<u32, PartRecord> =
                std::collections::HashMap::with_capacity(stored.len());
            for (n, rec, unchanged) in stored {
                batch.guard(unchanged);
                by_number.insert(n, rec);
            }
            let mut chosen = Vec::with_capacity(parts.len());
            for (i, p) in parts.iter().enumerate() {
                let Some(rec) = by_number.remove(&p.part_number) else {
                    return Err(EngineError::InvalidPart {
                        part_number: p.part_number,
                    });
                };
                if normalize_etag(&p.etag) != hex::encode(rec.md5) {
                    return Err(EngineError::InvalidPart {
                        part_number: p.part_number,
                    });
                }
                if i + 1 < parts.len() && rec.size < PART_SIZE_MIN_BYTES {
                    return Err(EngineError::EntityTooSmall {
                        part_number: p.part_number,
                    });
                }
                chosen.push((p.part_number, rec));
            }
            let checksums = derive(&chosen)?;
            let mut md5s = Md5::new();
            let mut entries = Vec::new();
            let mut part_sizes = Vec::with_capacity(chosen.len());
            for (_, rec) in &chosen {
                md5s.update(rec.md5);
                entries.extend_from_slice(&rec.entries);
                part_sizes.push(rec.size);
            }
            let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
            let size: u64 = part_sizes.iter().sum();

            // References move from the chosen parts to the object: build the
            // version (+1 per entry), then release the parts (-1 per entry).
            // The object takes the upload's id as its version id: a repeated
            // Complete finds it by that (see the S3 layer).
            let mut version = inner.objects.build_version(
                crate::records::VersionId(id.0),
                &mut batch,
                &entries,
                &[],
                size,
                etag,
                upload.meta.clone(),
                part_sizes,
            )?;
            version.meta.checksums = checksums;
            // An encrypted object keeps each part's keystream id: a part's
            // own, or its number for one written before parts had their
            // own (so gaps in the numbers decrypt right either way).
            if upload.meta.sse_c.is_some() || upload.meta.sse_kms.is_some() {
                version.meta.cipher_streams = chosen
                    .iter()
                    .map(|(n, rec)| match rec.cipher_stream {
                        0 => u64::from(*n),
                        s => s,
                    })
                    .collect();
            }
            version.retention = upload.lock.retention;
            version.legal_hold = upload.lock.legal_hold;
            for (n, rec) in &chosen {
                add_ref_deltas(&mut batch, &rec.entries, &[], -1)?;
                batch.delete::<Parts>((id, *n));
            }
            // Parts uploaded but not listed are released too.
            for (n, rec) in by_number {
                add_ref_deltas(&mut batch, &rec.entries, &[], -1)?;
                batch.delete::<Parts>((id, n));
            }
            batch.delete_upload_and_index(id, &upload);
            match inner.objects.replace_current(
                &bucket,
                b.id,
                &key,
                &batch,
                &cond,
                NewCurrent::Version(Box::new(version)),
                Some(ObjectEvent::CompleteMultipartUpload),
            ) {
                // The upload or a part changed elsewhere (an abort, or a
                // part uploaded again): as if that had come first.
                Err(EngineError::GuardFailed(_)) => Err(EngineError::NoSuchUpload),
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(EngineError::Internal(
                    "a completed upload left no current version".into(),
                )),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(version)
    }

    pub async fn abort_upload(&self, bucket: &str, key: &str, id: UploadId) -> EngineResult<()> {
        self.upload(bucket, key, id)?;
        self.abort_upload_by_id(id).await
    }

    pub(crate) async fn abort_upload_by_id(&self, id: UploadId) -> EngineResult<()> {
        let _g = self.inner.objects.lock_keys(&id, None::<&()>).await;
        let inner = self.inner.clone();
        blocking(move || {
            let (upload, upload_unchanged) = inner.meta.get_guarded::<Uploads>(id)?;
            let Some(upload) = upload else {
                return Err(EngineError::NoSuchUpload);
            };
            let mut batch = inner.meta.batch();
            batch.guard(upload_unchanged);
            for (n, rec, unchanged) in
                inner
                    .meta
                    .parts_guarded(id, 0, PART_NUMBER_MAX as usize + 1)?
            {
                batch.guard(unchanged);
                add_ref_deltas(&mut batch, &rec.entries, &[], -1)?;
                batch.delete::<Parts>((id, n));
            }
            batch.delete_upload_and_index(id, &upload);
            match inner.meta.write(batch) {
                // Completed, aborted or given a new part elsewhere meanwhile.
                Err(EngineError::GuardFailed(_)) => Err(EngineError::NoSuchUpload),
                r => r,
            }
        })
        .await
    }
}
