//! The objects part: what makes a change to a key's current version safe.
//!
//! Owns the key and bucket lock stripes, the write conditions
//! (`If-None-Match`/`If-Match`), the guarded replace of a key's current
//! version, and the bookkeeping of a version's manifest and chunk
//! references (build on commit, release on overwrite or delete). It must
//! never touch drives or chunk data, and never commits anything but the
//! batch it is given plus the release of the version it replaces.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use cairn_dedup::ChunkId;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard};

use crate::error::{EngineError, EngineResult};
use crate::meta::{Buckets, Chunks, InlineData, Manifests, MetaBatch, MetaStore};
use crate::records::{
    BucketRecord, ChunkRefDelta, MANIFEST_BLOCK_ENTRIES, MANIFEST_INLINE_ENTRIES_MAX,
    ManifestBlock, ManifestEntry, ManifestRef, ObjectVersion,
};

const KEY_LOCK_STRIPES: usize = 1024;

/// Attempts of [`Objects::replace_current`] before a key that keeps changing
/// under it is reported as a conflict.
const REPLACE_ATTEMPTS: usize = 8;

/// A condition on the current version of a key that a write checks under
/// the key's stripe lock, in the same critical section as its commit: two
/// racing writers with `IfNoneMatchAny` cannot both succeed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WriteCondition {
    /// Unconditional.
    #[default]
    None,
    /// `If-None-Match: *`: only if the key has no current version.
    IfNoneMatchAny,
    /// `If-Match: <etag>[, <etag>…]` (quotes optional, `*` = any): only if
    /// the key exists and its ETag is one of these.
    IfMatch(String),
}

impl WriteCondition {
    /// `Ok` if the write may replace `current`. A failed `IfMatch` on a
    /// missing key is `NoSuchKey` (as S3), any other failure
    /// `PreconditionFailed`.
    pub fn check(&self, current: Option<&ObjectVersion>) -> EngineResult<()> {
        match (self, current) {
            (WriteCondition::None, _) | (WriteCondition::IfNoneMatchAny, None) => Ok(()),
            (WriteCondition::IfNoneMatchAny, Some(_)) => {
                Err(EngineError::PreconditionFailed("If-None-Match"))
            }
            (WriteCondition::IfMatch(_), None) => Err(EngineError::NoSuchKey),
            (WriteCondition::IfMatch(list), Some(v)) => {
                let matches = list.split(',').any(|t| {
                    let t = t.trim().trim_matches('"');
                    t == "*" || t.eq_ignore_ascii_case(&v.etag)
                });
                if matches {
                    Ok(())
                } else {
                    Err(EngineError::PreconditionFailed("If-Match"))
                }
            }
        }
    }
}

/// The lock guards of one or two stripes, taken in index order.
pub(crate) struct KeyGuards<'a> {
    _first: AsyncMutexGuard<'a, ()>,
    _second: Option<AsyncMutexGuard<'a, ()>>,
}

/// The objects part (see the module doc).
pub(crate) struct Objects {
    meta: Arc<MetaStore>,
    /// `cairn_meta_conflicts_total`: guarded commits retried.
    conflicts: prometheus::IntCounter,
    /// Serialises read-modify-write of one object key or upload id.
    key_locks: Vec<AsyncMutex<()>>,
    /// Serialises bucket creation and deletion.
    pub(crate) bucket_lock: AsyncMutex<()>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").finish_non_exhaustive()
    }
}

impl Objects {
    pub(crate) fn new(meta: Arc<MetaStore>, conflicts: prometheus::IntCounter) -> Self {
        Objects {
            meta,
            conflicts,
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| AsyncMutex::new(())).collect(),
            bucket_lock: AsyncMutex::new(()),
        }
    }

    pub(crate) fn bucket(&self, name: &str) -> EngineResult<BucketRecord> {
        self.meta
            .get::<Buckets>(name)?
            .ok_or(EngineError::NoSuchBucket)
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
        cond: &WriteCondition,
    ) -> EngineResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (b, bucket_unchanged) = self.meta.get_guarded::<Buckets>(bucket)?;
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
                    self.conflicts.inc();
                }
                r => return r,
            }
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
                    batch.delete::<Manifests>((v.version_id, i as u32));
                }
            }
            ManifestRef::Data { .. } | ManifestRef::DataElsewhere { .. } => {
                batch.delete::<InlineData>(v.version_id);
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
        batch.put::<Manifests>(
            (version_id, i as u32),
            &ManifestBlock {
                entries: block.to_vec(),
            },
        );
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
        batch.merge::<Chunks>(
            &id,
            &ChunkRefDelta {
                record: records.get(&id).map(|r| (*r).clone()),
                ..ChunkRefDelta::refs(delta)
            },
        );
    }
    Ok(())
}

fn stripe_of<T: Hash + ?Sized>(t: &T) -> usize {
    let mut s = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut s);
    (s.finish() as usize) % KEY_LOCK_STRIPES
}

#[cfg(test)]
mod tests {
    use super::WriteCondition;
    use crate::EngineError;
    use crate::records::{ManifestRef, ObjectMetadata, ObjectVersion, VersionId};

    #[test]
    fn write_conditions_check_the_current_version() {
        let v = ObjectVersion {
            version_id: VersionId::random(),
            size: 0,
            last_modified_ms: 0,
            etag: "abc123".into(),
            meta: ObjectMetadata::default(),
            part_sizes: Vec::new(),
            manifest: ManifestRef::Inline(Vec::new()),
        };
        let ok = |c: WriteCondition, cur: Option<&ObjectVersion>| c.check(cur).is_ok();
        assert!(ok(WriteCondition::None, None));
        assert!(ok(WriteCondition::None, Some(&v)));
        assert!(ok(WriteCondition::IfNoneMatchAny, None));
        assert!(matches!(
            WriteCondition::IfNoneMatchAny.check(Some(&v)),
            Err(EngineError::PreconditionFailed("If-None-Match"))
        ));
        for tag in ["abc123", "\"abc123\"", " \"ABC123\" ", "x, \"abc123\"", "*"] {
            assert!(ok(WriteCondition::IfMatch(tag.into()), Some(&v)), "{tag}");
        }
        assert!(matches!(
            WriteCondition::IfMatch("\"other\"".into()).check(Some(&v)),
            Err(EngineError::PreconditionFailed("If-Match"))
        ));
        assert!(matches!(
            WriteCondition::IfMatch("*".into()).check(None),
            Err(EngineError::NoSuchKey)
        ));
    }
}
