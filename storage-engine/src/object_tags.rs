//! Object and bucket tags.
//!
//! Object tags: replacing the tag set of an object's current version.
//! Tags are part of the version's metadata record. Changing them rewrites
//! that record in place: same version id, size, ETag, last-modified time and
//! manifest, so no chunk reference changes (S3 does not treat a tag change
//! as a new object either). Validation of the tags is the caller's job.

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Buckets, Objects};
use crate::records::ObjectVersion;

impl Engine {
    /// Replaces the tags of the current version of `bucket/key` (an empty
    /// list removes them), under the key's lock and in one synced metadata
    /// batch. Returns the updated version; `NoSuchKey` if there is none.
    pub async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: Vec<(String, String)>,
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
            let (version, unchanged) = inner.meta.object_guarded(b.id, &key)?;
            let mut version = version.ok_or(EngineError::NoSuchKey)?;
            version.meta.tags = tags;
            let mut batch = inner.meta.batch();
            // Replaced elsewhere meanwhile: the tags were for that version.
            batch.guard(unchanged);
            batch.put::<Objects>((b.id, &key), &version);
            match inner.meta.write(batch) {
                Err(EngineError::GuardFailed(_)) => Err(EngineError::SourceChanged),
                r => r,
            }?;
            Ok(version)
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
        let _g = self.inner.objects.bucket_lock.lock().await;
        let inner = self.inner.clone();
        let name = bucket.to_owned();
        blocking(move || {
            let (rec, unchanged) = inner.meta.get_guarded::<Buckets>(&name)?;
            let mut rec = rec.ok_or(EngineError::NoSuchBucket)?;
            rec.tags = tags;
            let mut batch = inner.meta.batch();
            batch.guard(unchanged);
            batch.put::<Buckets>(&name, &rec);
            match inner.meta.write(batch) {
                Err(EngineError::GuardFailed(_)) => Err(EngineError::SourceChanged),
                r => r,
            }
        })
        .await
    }
}
