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
use crate::meta::{
    Buckets, Chunks, InlineData, Manifests, MetaBatch, MetaStore, Objects as ObjectsTable, Versions,
};
use crate::meta_command::MetaGuard;
use crate::notifications::{NotificationRules, ObjectEvent};
use crate::records::{
    BucketRecord, ChunkRefDelta, DefaultRetention, MANIFEST_BLOCK_ENTRIES,
    MANIFEST_INLINE_ENTRIES_MAX, ManifestBlock, ManifestEntry, ManifestRef, ObjectVersion,
    Retention, RetentionMode, RetentionPeriod, VersionRef, Versioning,
};

const KEY_LOCK_STRIPES: usize = 1024;

/// Attempts of [`Objects::replace_current`] before a key that keeps changing
/// under it is reported as a conflict.
const REPLACE_ATTEMPTS: usize = 8;

/// Noncurrent versions read per step when walking a key's history.
const HISTORY_PAGE: usize = 256;

/// What a write makes of a key's current version.
#[derive(Clone, Debug)]
pub(crate) enum NewCurrent {
    /// This version becomes current (its `seq` and `null_version` are set
    /// at commit).
    Version(Box<ObjectVersion>),
    /// A DELETE without a version id.
    Delete,
}

/// A version found by [`Objects::locate`], with a guard on its row.
#[derive(Clone, Debug)]
pub(crate) enum Located {
    Current(ObjectVersion, MetaGuard),
    Noncurrent(ObjectVersion, MetaGuard),
}

impl Located {
    pub(crate) fn version(&self) -> &ObjectVersion {
        match self {
            Located::Current(v, _) | Located::Noncurrent(v, _) => v,
        }
    }

    pub(crate) fn into_version(self) -> ObjectVersion {
        match self {
            Located::Current(v, _) | Located::Noncurrent(v, _) => v,
        }
    }
}

/// Whether Object Lock lets `v` be deleted (or its retention shortened)
/// now: never under a legal hold or an unexpired COMPLIANCE retention;
/// under an unexpired GOVERNANCE retention only with `bypass_governance`.
/// The one check every path that removes a version goes through.
pub(crate) fn check_deletable(
    v: &ObjectVersion,
    bypass_governance: bool,
    now_ms: u64,
) -> EngineResult<()> {
    if v.legal_hold {
        return Err(EngineError::ObjectLocked);
    }
    match v.retention {
        Some(Retention { mode, until_ms }) if now_ms < until_ms => match mode {
            RetentionMode::Compliance => Err(EngineError::ObjectLocked),
            RetentionMode::Governance if !bypass_governance => Err(EngineError::ObjectLocked),
            RetentionMode::Governance => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The retention a bucket's default gives a version written at `now_ms`
/// (a year is 365 days, as S3 counts it).
pub(crate) fn default_retention_from(d: DefaultRetention, now_ms: u64) -> Retention {
    const DAY_MS: u64 = 86_400_000;
    let days = match d.period {
        RetentionPeriod::Days(n) => u64::from(n),
        RetentionPeriod::Years(n) => u64::from(n) * 365,
    };
    Retention {
        mode: d.mode,
        until_ms: now_ms.saturating_add(days.saturating_mul(DAY_MS)),
    }
}

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
    /// Only if the current version is still exactly this one (its write's
    /// unique id) and not a delete marker: lifecycle expiry acts on the
    /// version it evaluated, never on one written since.
    IfCurrentIs(crate::records::VersionId),
}

impl WriteCondition {
    /// `Ok` if the write may replace `current`. A failed `IfMatch` on a
    /// missing key is `NoSuchKey` (as S3), any other failure
    /// `PreconditionFailed`.
    pub fn check(&self, current: Option<&ObjectVersion>) -> EngineResult<()> {
        // A key whose current version is a delete marker has no object.
        let current = current.filter(|v| !v.delete_marker);
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
            (WriteCondition::IfCurrentIs(id), Some(v)) if v.version_id == *id => Ok(()),
            (WriteCondition::IfCurrentIs(_), _) => {
                Err(EngineError::PreconditionFailed("current version"))
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
    /// Each bucket's notification rules as last read, with the bucket
    /// configuration epoch read before reading them (every write consults
    /// them; a change of any bucket's documents moves the epoch).
    rules_cache: std::sync::Mutex<HashMap<u64, CachedRules>>,
}

/// A bucket's rules and the epoch they were read at.
type CachedRules = (u64, Option<Arc<NotificationRules>>);

/// Buckets whose rules are cached at most (the cache is emptied beyond).
const RULES_CACHE_MAX: usize = 4096;

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
            rules_cache: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The bucket's notification rules (`None`: none), cached while the
    /// bucket configuration epoch stands still.
    pub(crate) fn notification_rules(
        &self,
        bucket_id: u64,
    ) -> EngineResult<Option<Arc<NotificationRules>>> {
        let epoch = self.meta.bucket_config_epoch();
        if let Some((at, rules)) = self
            .rules_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&bucket_id)
            && *at == epoch
        {
            return Ok(rules.clone());
        }
        let rules = crate::notifications::read_rules(&self.meta, bucket_id)?;
        let mut cache = self.rules_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= RULES_CACHE_MAX {
            cache.clear();
        }
        cache.insert(bucket_id, (epoch, rules.clone()));
        Ok(rules)
    }

    pub(crate) fn bucket(&self, name: &str) -> EngineResult<BucketRecord> {
        self.meta
            .get::<Buckets>(name)?
            .ok_or(EngineError::NoSuchBucket)
    }

    /// Locks the stripe of `a` from a blocking thread (never from async
    /// code): for the background passes that rewrite records in place, so
    /// a writer's read-modify-write of the same row cannot interleave with
    /// theirs (on a single node a guard's check and the write are not one
    /// atomic step: see `MetaStore::apply`).
    pub(crate) fn lock_key_blocking<A: Hash + ?Sized>(&self, a: &A) -> AsyncMutexGuard<'_, ()> {
        self.key_locks[stripe_of(a)].blocking_lock()
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

    /// Commits `batch` (the new version's manifest and references, and
    /// whatever else the caller changes with it; it may carry guards of its
    /// own) together with the new state of `bucket/key`, if `cond` holds
    /// for the key's current version (a delete marker counts as none).
    ///
    /// What happens to the version it replaces depends on the bucket's
    /// versioning, read in the same guarded step:
    /// - unversioned: it is released (its references and manifest go);
    /// - enabled: it becomes the newest noncurrent version;
    /// - suspended: the new version is the `null` one, so an existing
    ///   `null` version (current or noncurrent) is released, and a non-null
    ///   current version becomes noncurrent.
    ///
    /// `NewCurrent::Delete` removes the current version in an unversioned
    /// bucket and places a delete marker in a versioned one.
    ///
    /// The new version takes the replaced one's `seq + 1`. Guarded so that
    /// it applies only if every row read (bucket, current version, a
    /// released `null` version) is unchanged: a writer elsewhere (another
    /// node of a cluster) that changed one first makes this re-read and
    /// try again — so versions of a key get one total order, the log's.
    /// Callers hold the key's stripe lock, so on a single node the guards
    /// always hold.
    ///
    /// Returns the key's new current version (`None`: it has none).
    ///
    /// `event` (a PUT, POST, copy, completed upload, or `Delete` for a
    /// delete) is queued in the same batch for every notification rule of
    /// the bucket it matches (`notifications.rs`); a delete that places a
    /// marker is announced as `DeleteMarkerCreated`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn replace_current(
        &self,
        bucket: &str,
        bucket_id: u64,
        key: &str,
        batch: &MetaBatch,
        cond: &WriteCondition,
        new: NewCurrent,
        event: Option<ObjectEvent>,
    ) -> EngineResult<Option<ObjectVersion>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (b, bucket_unchanged) = self.meta.get_guarded::<Buckets>(bucket)?;
            let b = match b {
                Some(b) if b.id == bucket_id => b,
                _ => return Err(EngineError::NoSuchBucket),
            };
            let (old, unchanged) = self.meta.object_guarded(bucket_id, key)?;
            cond.check(old.as_ref())?;
            let mut bt = batch.clone();
            bt.guard(bucket_unchanged);
            bt.guard(unchanged);
            let seq = old.as_ref().map_or(1, |o| o.seq.saturating_add(1));
            let now = crate::now_ms();
            let current = match (&new, b.versioning) {
                (NewCurrent::Delete, Versioning::Unversioned) => None,
                (NewCurrent::Delete, versioning) => {
                    let mut m = ObjectVersion::delete_marker_now();
                    m.seq = seq;
                    m.null_version = versioning == Versioning::Suspended;
                    Some(m)
                }
                (NewCurrent::Version(v), versioning) => {
                    let mut v = (**v).clone();
                    v.seq = seq;
                    v.null_version = versioning != Versioning::Enabled;
                    if v.retention.is_none()
                        && let Some(d) = b.object_lock.and_then(|l| l.default_retention)
                    {
                        v.retention = Some(default_retention_from(d, now));
                    }
                    Some(v)
                }
            };
            if let Some(old) = &old {
                let keep_old = match b.versioning {
                    Versioning::Unversioned => false,
                    Versioning::Enabled => true,
                    Versioning::Suspended => !old.null_version,
                };
                if keep_old {
                    bt.put_noncurrent(bucket_id, key, old);
                } else {
                    check_deletable(old, false, now)?;
                    self.release_version(&mut bt, old)?;
                }
            }
            if b.versioning == Versioning::Suspended
                && old.as_ref().is_some_and(|o| !o.null_version)
                && let Some((null, null_unchanged)) = self.noncurrent_null(bucket_id, key)?
            {
                check_deletable(&null, false, now)?;
                bt.guard(null_unchanged);
                self.release_version(&mut bt, &null)?;
                bt.delete::<Versions>((bucket_id, key, null.seq));
            }
            match &current {
                Some(v) => bt.put_current(bucket_id, key, v),
                None => bt.delete::<ObjectsTable>((bucket_id, key)),
            }
            let mut dropped = 0;
            if let Some(event) = event {
                let (event, announced) = match (&current, event) {
                    (Some(marker), ObjectEvent::Delete) if marker.delete_marker => {
                        (ObjectEvent::DeleteMarkerCreated, Some(marker))
                    }
                    (None, ObjectEvent::Delete) => (ObjectEvent::Delete, old.as_ref()),
                    (current, event) => (event, current.as_ref()),
                };
                // Deleting nothing announces nothing.
                if let (Some(v), Some(rules)) = (announced, self.notification_rules(bucket_id)?) {
                    dropped = crate::notifications::queue_events(
                        &self.meta, &rules, &mut bt, bucket, key, event, v, now,
                    )?;
                }
            }
            match self.meta.write(bt) {
                // Only the guards added here are retried; a caller's own
                // guard (index below them) failing is the caller's.
                Err(EngineError::GuardFailed(i))
                    if i >= batch.guard_count() && attempt < REPLACE_ATTEMPTS =>
                {
                    self.conflicts.inc();
                }
                Err(e) => return Err(e),
                Ok(()) => {
                    self.meta.count_dropped_events(dropped);
                    return Ok(current);
                }
            }
        }
    }

    /// The key's noncurrent `null` version, if it has one (a walk over its
    /// history, newest first, in pages).
    pub(crate) fn noncurrent_null(
        &self,
        bucket_id: u64,
        key: &str,
    ) -> EngineResult<Option<(ObjectVersion, MetaGuard)>> {
        let mut after = None;
        loop {
            let page = self
                .meta
                .noncurrent_versions(bucket_id, key, after, HISTORY_PAGE)?;
            let Some(last) = page.last() else {
                return Ok(None);
            };
            after = Some(last.0.seq);
            let full = page.len() == HISTORY_PAGE;
            if let Some(found) = page.into_iter().find(|(v, _)| v.null_version) {
                return Ok(Some(found));
            }
            if !full {
                return Ok(None);
            }
        }
    }

    /// Finds the version of `key` that `r` names: the current one or a
    /// noncurrent one, with a guard on its row. A small object's inline
    /// bytes are attached.
    pub(crate) fn locate(
        &self,
        bucket_id: u64,
        key: &str,
        r: &VersionRef,
    ) -> EngineResult<Option<Located>> {
        let (current, unchanged) = self.meta.object_guarded(bucket_id, key)?;
        let Some(current) = current else {
            // No current version, no history.
            return Ok(None);
        };
        if current.is_named_by(r) {
            return Ok(Some(Located::Current(current, unchanged)));
        }
        let seq = match r {
            VersionRef::Id { seq, .. } => *seq,
            VersionRef::Null => match self.noncurrent_null(bucket_id, key)? {
                Some((v, _)) => v.seq,
                None => return Ok(None),
            },
        };
        match self.meta.version_guarded(bucket_id, key, seq)? {
            (Some(v), guard) if v.is_named_by(r) => Ok(Some(Located::Noncurrent(v, guard))),
            _ => Ok(None),
        }
    }

    /// Adds to `batch` the permanent removal of a located version: its
    /// release, and for the current version the promotion of the newest
    /// noncurrent one (or the removal of the key). Refused with
    /// `ObjectLocked` if Object Lock protects it.
    pub(crate) fn remove_version(
        &self,
        batch: &mut MetaBatch,
        bucket_id: u64,
        key: &str,
        located: &Located,
        bypass_governance: bool,
    ) -> EngineResult<()> {
        let now = crate::now_ms();
        match located {
            Located::Current(v, unchanged) => {
                check_deletable(v, bypass_governance, now)?;
                batch.guard(unchanged.clone());
                self.release_version(batch, v)?;
                match self.meta.newest_noncurrent(bucket_id, key)? {
                    Some((next, next_unchanged)) => {
                        batch.guard(next_unchanged);
                        batch.delete::<Versions>((bucket_id, key, next.seq));
                        batch.put_current(bucket_id, key, &next);
                    }
                    None => batch.delete::<ObjectsTable>((bucket_id, key)),
                }
            }
            Located::Noncurrent(v, unchanged) => {
                check_deletable(v, bypass_governance, now)?;
                batch.guard(unchanged.clone());
                self.release_version(batch, v)?;
                batch.delete::<Versions>((bucket_id, key, v.seq));
            }
        }
        Ok(())
    }

    /// Adds to `batch` the rewrite of a located version in place (same
    /// id, data and place in the history: tags, retention, legal hold).
    pub(crate) fn rewrite_version(
        &self,
        batch: &mut MetaBatch,
        bucket_id: u64,
        key: &str,
        located: &Located,
        updated: &ObjectVersion,
    ) {
        debug_assert_eq!(located.version().version_id, updated.version_id);
        debug_assert_eq!(located.version().seq, updated.seq);
        match located {
            Located::Current(_, unchanged) => {
                batch.guard(unchanged.clone());
                batch.put_current(bucket_id, key, updated);
            }
            Located::Noncurrent(_, unchanged) => {
                batch.guard(unchanged.clone());
                batch.put_noncurrent(bucket_id, key, updated);
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
        let v = ObjectVersion::new_now(
            VersionId::random(),
            0,
            "abc123".into(),
            ObjectMetadata::default(),
            Vec::new(),
            ManifestRef::Inline(Vec::new()),
        );
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
        // A delete marker as the current version is no object.
        let marker = ObjectVersion::delete_marker_now();
        assert!(ok(WriteCondition::IfNoneMatchAny, Some(&marker)));
        assert!(matches!(
            WriteCondition::IfMatch("*".into()).check(Some(&marker)),
            Err(EngineError::NoSuchKey)
        ));
    }

    #[test]
    fn object_lock_decides_what_may_be_deleted() {
        use super::check_deletable;
        use crate::records::{Retention, RetentionMode};
        let mut v = ObjectVersion::delete_marker_now();
        assert!(check_deletable(&v, false, 10).is_ok());
        v.legal_hold = true;
        assert!(check_deletable(&v, true, 10).is_err());
        v.legal_hold = false;
        for (mode, bypass, now, ok) in [
            (RetentionMode::Governance, false, 10, false),
            (RetentionMode::Governance, true, 10, true),
            (RetentionMode::Governance, false, 20, true),
            (RetentionMode::Compliance, true, 19, false),
            (RetentionMode::Compliance, false, 20, true),
        ] {
            v.retention = Some(Retention { mode, until_ms: 20 });
            assert_eq!(
                check_deletable(&v, bypass, now).is_ok(),
                ok,
                "{mode:?} {bypass} {now}"
            );
        }
    }
}
