//! Object operations that touch only metadata: head, delete, and copy
//! (a copy references the source's chunks; no data moves). Each commits
//! through `Objects::replace_current` under the key's stripe lock. Must
//! never read or write chunk data.

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::Objects;
use crate::records::{ManifestRef, ObjectVersion};

impl Engine {
    /// The current version of an object.
    pub fn head_object(&self, bucket: &str, key: &str) -> EngineResult<ObjectVersion> {
        let b = self.inner.objects.bucket(bucket)?;
        self.inner
            .meta
            .object(b.id, key)?
            .ok_or(EngineError::NoSuchKey)
    }

    /// Deletes an object's current version. Deleting a missing key succeeds
    /// (S3 semantics); a missing bucket does not.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> EngineResult<()> {
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
            let mut batch = inner.meta.batch();
            batch.delete::<Objects>((b.id, &key));
            inner.objects.replace_current(
                &bucket,
                b.id,
                &key,
                &batch,
                &crate::parts::objects::WriteCondition::None,
            )
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
            dst_bucket,
            dst_key,
            new_meta,
            crate::parts::objects::WriteCondition::None,
            None,
        )
        .await
    }

    /// [`Engine::copy_object`] if `cond` holds for the destination key's
    /// current version, checked under the destination's stripe lock in the
    /// same critical section as the commit, and, with `source_version`, only
    /// if the source is still that version (else `SourceChanged`: the
    /// caller checked conditions or took metadata from an older one).
    #[allow(clippy::too_many_arguments)]
    pub async fn copy_object_if(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        new_meta: Option<crate::records::ObjectMetadata>,
        cond: crate::parts::objects::WriteCondition,
        source_version: Option<crate::records::VersionId>,
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
            let (src, src_unchanged) = inner.meta.object_guarded(src_b.id, &src_key)?;
            let src = src.ok_or(EngineError::NoSuchKey)?;
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
            batch.put::<Objects>((dst_b.id, &dst_key), &version);
            match inner
                .objects
                .replace_current(&dst_bucket, dst_b.id, &dst_key, &batch, &cond)
            {
                Err(EngineError::GuardFailed(0)) => Err(EngineError::SourceChanged),
                r => r,
            }?;
            Ok(version)
        })
        .await
    }
}
