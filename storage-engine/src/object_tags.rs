//! Object and bucket tags.
//!
//! Object tags: replacing the tag set of an object's current version.
//! Tags are part of the version's metadata record. Changing them rewrites
//! that record in place: same version id, size, ETag, last-modified time and
//! manifest, so no chunk reference changes (S3 does not treat a tag change
//! as a new object either). Validation of the tags is the caller's job.

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::parts::objects::Located;
use crate::records::{ObjectVersion, VersionRef};

impl Engine {
    /// Replaces the tags of the version `version` names (the current one
    /// for `None`) of `bucket/key` (an empty list removes them), under the
    /// key's lock and in one synced metadata batch. Returns the updated
    /// version; `NoSuchKey` / `NoSuchVersion` if there is none, and
    /// `DeleteMarker` for a marker (S3 tags no marker).
    pub async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionRef>,
        tags: Vec<(String, String)>,
    ) -> EngineResult<ObjectVersion> {
        self.update_version(bucket, key, version, move |v| {
            v.meta.tags = tags;
            Ok(())
        })
        .await
    }

    /// Changes a version in place (its data, id and place in the history
    /// stay) with `change`, under the key's lock, guarded against a
    /// concurrent change of the same row (then `SourceChanged`).
    pub(crate) async fn update_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionRef>,
        change: impl FnOnce(&mut ObjectVersion) -> EngineResult<()> + Send + 'static,
    ) -> EngineResult<ObjectVersion> {
        let b = self.inner.objects.bucket(bucket)?;
        let _g = self
            .inner
            .objects
            .lock_keys(&(b.id, key), None::<&()>)
            .await;
        let inner = self.inner.clone();
        let key = key.to_owned();
        blocking(move || {
            let located = match &version {
                None => {
                    let (v, unchanged) = inner.meta.object_guarded(b.id, &key)?;
                    Located::Current(v.ok_or(EngineError::NoSuchKey)?, unchanged)
                }
                Some(r) => inner
                    .objects
                    .locate(b.id, &key, r)?
                    .ok_or(EngineError::NoSuchVersion)?,
            };
            let current = located.version();
            if current.delete_marker {
                return Err(EngineError::DeleteMarker {
                    version_id: current.public_id(),
                    last_modified_ms: current.last_modified_ms,
                    named: version.is_some(),
                });
            }
            let mut updated = current.clone();
            change(&mut updated)?;
            let mut batch = inner.meta.batch();
            // Replaced elsewhere meanwhile: the change was for that version.
            inner
                .objects
                .rewrite_version(&mut batch, b.id, &key, &located, &updated);
            match inner.meta.write(batch) {
                Err(EngineError::GuardFailed(_)) => Err(EngineError::SourceChanged),
                r => r,
            }?;
            Ok(updated)
        })
        .await
    }

    /// The bucket's tags (empty when none are set).
    pub fn bucket_tags(&self, bucket: &str) -> EngineResult<Vec<(String, String)>> {
        Ok(self.inner.objects.bucket(bucket)?.tags)
    }

    /// Replaces the bucket's tags (empty removes them), under the bucket
    /// lock and in one synced metadata batch. Validation is the caller's job.
    pub async fn set_bucket_tags(
        &self,
        bucket: &str,
        tags: Vec<(String, String)>,
    ) -> EngineResult<()> {
        self.update_bucket(bucket, move |rec| {
            rec.tags = tags;
            Ok(())
        })
        .await
    }
}
