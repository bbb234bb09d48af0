//! Object operations that touch only metadata: head, delete, and copy
//! (a copy references the source's chunks; no data moves). Each commits
//! through `Objects::replace_current` under the key's stripe lock. Must
//! never read or write chunk data.

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::Buckets;
use crate::notifications::ObjectEvent;
use crate::parts::objects::{Located, NewCurrent, WriteCondition};
use crate::records::{ManifestRef, ObjectVersion, VersionLock, VersionRef};

/// Attempts of a version deletion whose rows keep changing under it (on
/// another node) before it reports a conflict.
const DELETE_VERSION_ATTEMPTS: usize = 8;

/// What a DELETE did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The version id to report (`x-amz-version-id`): the delete marker
    /// placed, or the version named; `None` in an unversioned bucket.
    pub version_id: Option<String>,
    /// Whether a delete marker was placed or removed
    /// (`x-amz-delete-marker: true`).
    pub delete_marker: bool,
}

impl Engine {
    /// The current version of an object. A current delete marker is
    /// `DeleteMarker` (not named).
    pub fn head_object(&self, bucket: &str, key: &str) -> EngineResult<ObjectVersion> {
        self.head_version(bucket, key, None)
    }

    /// The version `version` names, or the current one for `None`.
    /// `NoSuchKey` if the key has no current version, `NoSuchVersion` if
    /// the named version does not exist, `DeleteMarker` for a marker.
    pub fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&VersionRef>,
    ) -> EngineResult<ObjectVersion> {
        let b = self.inner.objects.bucket(bucket)?;
        let v = match version {
            None => self
                .inner
                .meta
                .object(b.id, key)?
                .ok_or(EngineError::NoSuchKey)?,
            Some(r) => self
                .inner
                .objects
                .locate(b.id, key, r)?
                .ok_or(EngineError::NoSuchVersion)?
                .into_version(),
        };
        if v.delete_marker {
            return Err(EngineError::DeleteMarker {
                version_id: v.public_id(),
                last_modified_ms: v.last_modified_ms,
                named: version.is_some(),
            });
        }
        Ok(v)
    }

    /// DELETE without a version id: in an unversioned bucket the current
    /// version goes (a missing key succeeds, as in S3); in a versioned one
    /// a delete marker becomes the current version. A missing bucket is
    /// an error.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> EngineResult<DeleteOutcome> {
        self.delete_object_if(bucket, key, WriteCondition::None)
            .await
    }

    /// [`Engine::delete_object`] only if `condition` holds for the current
    /// version when the delete commits (under the key's lock): otherwise
    /// `PreconditionFailed` (or `NoSuchKey` for an `IfMatch` on no object)
    /// and nothing changes.
    pub async fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        condition: WriteCondition,
    ) -> EngineResult<DeleteOutcome> {
        self.delete_object_announced(bucket, key, condition, Some(ObjectEvent::Delete))
            .await
    }

    /// [`Engine::delete_object_if`], announcing `event` (`None`: nothing,
    /// for a lifecycle expiration, which S3 announces as another event
    /// type Cairn does not offer).
    pub(crate) async fn delete_object_announced(
        &self,
        bucket: &str,
        key: &str,
        condition: WriteCondition,
        event: Option<ObjectEvent>,
    ) -> EngineResult<DeleteOutcome> {
        let b = self.inner.objects.bucket(bucket)?;
        let _g = self
            .inner
            .objects
            .lock_keys(&(b.id, key), None::<&()>)
            .await;
        let inner = self.inner.clone();
        let key = key.to_owned();
        let bucket = bucket.to_owned();
        blocking(move || {
            let batch = inner.meta.batch();
            let current = inner.objects.replace_current(
                &bucket,
                b.id,
                &key,
                &batch,
                &condition,
                NewCurrent::Delete,
                event,
            )?;
            Ok(match current {
                Some(marker) => DeleteOutcome {
                    version_id: Some(marker.public_id()),
                    delete_marker: true,
                },
                None => DeleteOutcome {
                    version_id: None,
                    delete_marker: false,
                },
            })
        })
        .await
    }

    /// Permanently deletes the version `version` names (a delete marker
    /// included), releasing its data; deleting the current version makes
    /// the newest noncurrent one current. A version that does not exist
    /// succeeds, as in S3. Object Lock is enforced (`ObjectLocked`):
    /// GOVERNANCE retention only yields to `bypass_governance`.
    pub async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef,
        bypass_governance: bool,
    ) -> EngineResult<DeleteOutcome> {
        self.delete_version_where(bucket, key, version, bypass_governance, VersionPlace::Any)
            .await
    }

    /// [`Engine::delete_version`] only if the version is, when the delete
    /// commits, where `place` says (else `PreconditionFailed` and nothing
    /// changes; a version that no longer exists still succeeds).
    pub(crate) async fn delete_version_where(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef,
        bypass_governance: bool,
        place: VersionPlace,
    ) -> EngineResult<DeleteOutcome> {
        let b = self.inner.objects.bucket(bucket)?;
        let _g = self
            .inner
            .objects
            .lock_keys(&(b.id, key), None::<&()>)
            .await;
        let inner = self.inner.clone();
        let key = key.to_owned();
        let bucket = bucket.to_owned();
        blocking(move || {
            for _ in 0..DELETE_VERSION_ATTEMPTS {
                let (rec, bucket_unchanged) = inner.meta.get_guarded::<Buckets>(&bucket)?;
                if rec.is_none_or(|r| r.id != b.id) {
                    return Err(EngineError::NoSuchBucket);
                }
                let Some(located) = inner.objects.locate(b.id, &key, &version)? else {
                    return Ok(DeleteOutcome {
                        version_id: Some(version.to_string()),
                        delete_marker: false,
                    });
                };
                let mut batch = inner.meta.batch();
                batch.guard(bucket_unchanged);
                match (place, &located) {
                    (VersionPlace::Any, _)
                    | (VersionPlace::Noncurrent, Located::Noncurrent(..)) => {}
                    (VersionPlace::LoneMarker, Located::Current(v, _)) if v.delete_marker => {
                        // The marker's key must have no history left, when
                        // the batch applies (another node may add one).
                        batch.guard(crate::MetaGuard::NoneWithPrefix {
                            cf: crate::MetaCf::Versions,
                            prefix: crate::meta::Versions::key_prefix(b.id, &key),
                        });
                    }
                    _ => return Err(EngineError::PreconditionFailed("version place")),
                }
                inner.objects.remove_version(
                    &mut batch,
                    b.id,
                    &key,
                    &located,
                    bypass_governance,
                )?;
                // A client's delete of a version is announced; the
                // lifecycle's removals (the other places) are not.
                let mut dropped = 0;
                if place == VersionPlace::Any
                    && let Some(rules) = inner.objects.notification_rules(b.id)?
                {
                    dropped = crate::notifications::queue_events(
                        &inner.meta,
                        &rules,
                        &mut batch,
                        &bucket,
                        &key,
                        ObjectEvent::Delete,
                        located.version(),
                        crate::now_ms(),
                    )?;
                }
                match inner.meta.write(batch) {
                    Err(EngineError::GuardFailed(_)) if place == VersionPlace::LoneMarker => {
                        return Err(EngineError::PreconditionFailed("version place"));
                    }
                    Err(EngineError::GuardFailed(_)) => continue,
                    Err(e) => return Err(e),
                    Ok(()) => {
                        inner.meta.count_dropped_events(dropped);
                        return Ok(DeleteOutcome {
                            version_id: Some(located.version().public_id()),
                            delete_marker: located.version().delete_marker,
                        });
                    }
                }
            }
            Err(EngineError::SourceChanged)
        })
        .await
    }

    /// Copies an object by reference: the new version points at the same
    /// chunks (each gains a reference); no data is read or rewritten.
    /// `new_meta` replaces the metadata (REPLACE directive), else it is copied.
    pub async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        new_meta: Option<crate::records::ObjectMetadata>,
    ) -> EngineResult<ObjectVersion> {
        self.copy_object_if(
            src_bucket,
            src_key,
            None,
            dst_bucket,
            dst_key,
            new_meta,
            WriteCondition::None,
            None,
            VersionLock::default(),
        )
        .await
    }

    /// [`Engine::copy_object`] of the source version `src_ref` names (the
    /// current one for `None`), if `cond` holds for the destination key's
    /// current version, checked under the destination's stripe lock in the
    /// same critical section as the commit, and, with `source_version`, only
    /// if the source is still that version (else `SourceChanged`: the
    /// caller checked conditions or took metadata from an older one).
    #[allow(clippy::too_many_arguments)]
    pub async fn copy_object_if(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_ref: Option<VersionRef>,
        dst_bucket: &str,
        dst_key: &str,
        new_meta: Option<crate::records::ObjectMetadata>,
        cond: WriteCondition,
        source_version: Option<crate::records::VersionId>,
        lock: VersionLock,
    ) -> EngineResult<ObjectVersion> {
        let src_b = self.inner.objects.bucket(src_bucket)?;
        let dst_b = self.inner.objects.bucket(dst_bucket)?;
        let _g = self
            .inner
            .objects
            .lock_keys(&(dst_b.id, dst_key), None::<&()>)
            .await;
        let inner = self.inner.clone();
        let (src_key, dst_key) = (src_key.to_owned(), dst_key.to_owned());
        let dst_bucket = dst_bucket.to_owned();
        blocking(move || {
            let (src, src_unchanged) = match &src_ref {
                None => {
                    let (v, guard) = inner.meta.object_guarded(src_b.id, &src_key)?;
                    (v.ok_or(EngineError::NoSuchKey)?, guard)
                }
                Some(r) => match inner.objects.locate(src_b.id, &src_key, r)? {
                    Some(Located::Current(v, g) | Located::Noncurrent(v, g)) => (v, g),
                    None => return Err(EngineError::NoSuchVersion),
                },
            };
            if src.delete_marker {
                return Err(EngineError::DeleteMarker {
                    version_id: src.public_id(),
                    last_modified_ms: src.last_modified_ms,
                    named: src_ref.is_some(),
                });
            }
            if source_version.is_some_and(|v| v != src.version_id) {
                return Err(EngineError::SourceChanged);
            }
            let entries = inner.objects.manifest_entries(&src)?;
            let mut batch = inner.meta.batch();
            // The new references are only valid while the source (and so
            // its chunks) still exists: a delete elsewhere fails this copy.
            batch.guard(src_unchanged);
            let meta = new_meta.unwrap_or_else(|| src.meta.clone());
            let version = match &src.manifest {
                // Inline bytes are copied under the new version id by
                // `MetaBatch::put::<Objects>`: nothing to reference.
                ManifestRef::Data { .. } => ObjectVersion::new_now(
                    crate::records::VersionId::random(),
                    src.size,
                    src.etag.clone(),
                    meta,
                    src.part_sizes.clone(),
                    src.manifest.clone(),
                ),
                ManifestRef::DataElsewhere { .. } => {
                    return Err(crate::parts::objects::unresolved_inline(&src));
                }
                _ => inner.objects.build_version(
                    crate::records::VersionId::random(),
                    &mut batch,
                    &entries,
                    &[],
                    src.size,
                    src.etag.clone(),
                    meta,
                    src.part_sizes.clone(),
                )?,
            };
            // The copy's Object Lock is the request's (or the destination
            // bucket's default), never the source's: as S3.
            let mut version = version;
            version.retention = lock.retention;
            version.legal_hold = lock.legal_hold;
            match inner.objects.replace_current(
                &dst_bucket,
                dst_b.id,
                &dst_key,
                &batch,
                &cond,
                NewCurrent::Version(Box::new(version)),
                Some(ObjectEvent::Copy),
            ) {
                Err(EngineError::GuardFailed(0)) => Err(EngineError::SourceChanged),
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(EngineError::Internal(
                    "a copy left no current version".into(),
                )),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// Where a version must be for [`Engine::delete_version_where`] to delete
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VersionPlace {
    /// Anywhere in its key's history.
    Any,
    /// Not the current version.
    Noncurrent,
    /// The current version, a delete marker, with no other version of its
    /// key left (S3's "expired object delete marker").
    LoneMarker,
}
