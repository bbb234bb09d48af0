//! Bucket operations: create, look up, list and delete buckets. A bucket is
//! deleted only while it holds no object and no upload, on whichever node
//! the last one was written (guarded commit); its in-progress uploads are
//! aborted first. Must never delete a bucket that holds data.

use crate::engine::{BucketInfo, Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Buckets, prefix_successor};
use crate::records::{BucketRecord, ObjectLockConfig, Versioning};

fn bucket_info(name: String, rec: &BucketRecord) -> BucketInfo {
    BucketInfo {
        name,
        created_ms: rec.created_ms,
        versioning: rec.versioning,
        object_lock: rec.object_lock,
        owner: rec.owner.clone(),
    }
}

impl Engine {
    pub async fn create_bucket(&self, name: &str) -> EngineResult<()> {
        self.create_bucket_with(name, false).await
    }

    /// Creates a bucket; with `object_lock` it has Object Lock (and so
    /// versioning enabled) from the start, as S3's
    /// `x-amz-bucket-object-lock-enabled: true`.
    pub async fn create_bucket_with(&self, name: &str, object_lock: bool) -> EngineResult<()> {
        self.create_bucket_owned(name, object_lock, "").await
    }

    /// [`Engine::create_bucket_with`], recording `owner` (the creating
    /// access key's id) as the bucket's owner. A bucket of that name that
    /// exists already is `BucketAlreadyOwnedByYou`, whichever key asks
    /// (all keys are one account's).
    pub async fn create_bucket_owned(
        &self,
        name: &str,
        object_lock: bool,
        owner: &str,
    ) -> EngineResult<()> {
        let _g = self.inner.objects.bucket_lock.lock().await;
        let inner = self.inner.clone();
        let name = name.to_owned();
        let owner = owner.to_owned();
        blocking(move || {
            if inner.meta.get::<Buckets>(&name)?.is_some() {
                // Every key belongs to Cairn's one account: the bucket is
                // the caller's account's, whichever key made it.
                return Err(EngineError::BucketAlreadyOwnedByYou);
            }
            let id = u64::from_le_bytes(crate::random_bytes()).max(1);
            let mut b = inner.meta.batch();
            // Another node may create the same name first.
            b.guard(crate::MetaGuard::value_is(
                crate::MetaCf::Buckets,
                name.as_bytes(),
                None,
            ));
            let mut rec = BucketRecord::new(id, crate::now_ms());
            rec.owner = owner.clone();
            if object_lock {
                rec.versioning = Versioning::Enabled;
                rec.object_lock = Some(ObjectLockConfig::default());
            }
            b.put::<Buckets>(&name, &rec);
            match inner.meta.write(b) {
                Err(EngineError::GuardFailed(_)) => Err(EngineError::BucketAlreadyOwnedByYou),
                r => r,
            }
        })
        .await
    }

    pub fn bucket_info(&self, name: &str) -> EngineResult<BucketInfo> {
        let rec = self.inner.objects.bucket(name)?;
        Ok(bucket_info(name.to_owned(), &rec))
    }

    pub fn list_buckets(&self) -> EngineResult<Vec<BucketInfo>> {
        Ok(self
            .inner
            .meta
            .page_after::<Buckets>(None, usize::MAX)?
            .into_iter()
            .map(|(name, rec)| bucket_info(name, &rec))
            .collect())
    }

    /// Deletes an empty bucket. In-progress multipart uploads are aborted
    /// (their chunk references released) as part of the deletion.
    pub async fn delete_bucket(&self, name: &str) -> EngineResult<()> {
        let _g = self.inner.objects.bucket_lock.lock().await;
        let rec = self.inner.objects.bucket(name)?;
        let inner = self.inner.clone();
        let base = rec.id.to_be_bytes();
        let has_object = blocking(move || {
            let mut it = inner
                .meta
                .range_iter(crate::meta::CF_OBJECTS, prefix_successor(&base))?;
            it.seek(base);
            let found = it.valid();
            it.status()?;
            Ok(found)
        })
        .await?;
        if has_object {
            return Err(EngineError::BucketNotEmpty);
        }
        for upload in self.bucket_upload_ids(rec.id).await? {
            match self.abort_upload_by_id(upload).await {
                Ok(()) | Err(EngineError::NoSuchUpload) => {}
                Err(e) => return Err(e),
            }
        }
        let inner = self.inner.clone();
        let name = name.to_owned();
        blocking(move || {
            let (current, unchanged) = inner.meta.get_guarded::<Buckets>(&name)?;
            if current.is_none_or(|c| c.id != rec.id) {
                return Err(EngineError::NoSuchBucket);
            }
            let mut b = inner.meta.batch();
            b.guard(unchanged);
            // Still empty when applied: an object or upload committed
            // meanwhile (on another node) keeps the bucket.
            let prefix = rec.id.to_be_bytes().to_vec();
            b.guard(crate::MetaGuard::NoneWithPrefix {
                cf: crate::MetaCf::Objects,
                prefix: prefix.clone(),
            });
            b.guard(crate::MetaGuard::NoneWithPrefix {
                cf: crate::MetaCf::Versions,
                prefix: prefix.clone(),
            });
            b.guard(crate::MetaGuard::NoneWithPrefix {
                cf: crate::MetaCf::UploadIndex,
                prefix,
            });
            b.delete::<Buckets>(&name);
            // Its lifecycle rules go with it (a bucket later created under
            // the name has a new id and starts without).
            b.delete::<crate::meta::System>(&crate::lifecycle_pass::config_name(rec.id));
            // So do its documents (policy, CORS, ...).
            for kind in crate::bucket_documents::BucketDocument::ALL {
                b.delete::<crate::meta::System>(&kind.name(rec.id));
            }
            match inner.meta.write(b) {
                // The bucket record changed meanwhile (deleted, or its tags
                // set elsewhere).
                Err(EngineError::GuardFailed(0)) => match inner.meta.get::<Buckets>(&name)? {
                    None => Err(EngineError::NoSuchBucket),
                    Some(_) => Err(EngineError::SourceChanged),
                },
                Err(EngineError::GuardFailed(_)) => Err(EngineError::BucketNotEmpty),
                r => r,
            }
        })
        .await
    }
}

impl Engine {
    /// Sets a bucket's versioning to `Enabled` or `Suspended` (never back
    /// to unversioned). A bucket with Object Lock cannot be suspended.
    pub async fn set_bucket_versioning(
        &self,
        bucket: &str,
        versioning: Versioning,
    ) -> EngineResult<()> {
        if versioning == Versioning::Unversioned {
            return Err(EngineError::InvalidBucketState(
                "a versioned bucket cannot become unversioned",
            ));
        }
        self.update_bucket(bucket, move |rec| {
            if rec.object_lock.is_some() && versioning != Versioning::Enabled {
                return Err(EngineError::InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
                ));
            }
            rec.versioning = versioning;
            Ok(())
        })
        .await
    }

    /// Sets a bucket's Object Lock configuration. Enabling it on an
    /// existing bucket needs versioning enabled (as S3); once enabled it
    /// is never disabled.
    pub async fn set_object_lock_config(
        &self,
        bucket: &str,
        config: ObjectLockConfig,
    ) -> EngineResult<()> {
        self.update_bucket(bucket, move |rec| {
            if rec.versioning != Versioning::Enabled {
                return Err(EngineError::InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
                ));
            }
            rec.object_lock = Some(config);
            Ok(())
        })
        .await
    }

    /// Changes a bucket's record under the bucket lock, in one guarded,
    /// synced batch (a concurrent change elsewhere: `SourceChanged`).
    pub(crate) async fn update_bucket(
        &self,
        bucket: &str,
        change: impl FnOnce(&mut BucketRecord) -> EngineResult<()> + Send + 'static,
    ) -> EngineResult<()> {
        let _g = self.inner.objects.bucket_lock.lock().await;
        let inner = self.inner.clone();
        let name = bucket.to_owned();
        blocking(move || {
            let (rec, unchanged) = inner.meta.get_guarded::<Buckets>(&name)?;
            let mut rec = rec.ok_or(EngineError::NoSuchBucket)?;
            change(&mut rec)?;
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
