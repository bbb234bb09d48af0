//! Bucket operations: create, look up, list and delete buckets. A bucket is
//! deleted only while it holds no object and no upload, on whichever node
//! the last one was written (guarded commit); its in-progress uploads are
//! aborted first. Must never delete a bucket that holds data.

use crate::engine::{BucketInfo, Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Buckets, prefix_successor};
use crate::records::BucketRecord;

impl Engine {
    pub async fn create_bucket(&self, name: &str) -> EngineResult<()> {
        let _g = self.inner.objects.bucket_lock.lock().await;
        let inner = self.inner.clone();
        let name = name.to_owned();
        blocking(move || {
            if inner.meta.get::<Buckets>(&name)?.is_some() {
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
            b.put::<Buckets>(
                &name,
                &BucketRecord {
                    id,
                    created_ms: crate::now_ms(),
                    tags: Vec::new(),
                },
            );
            match inner.meta.write(b) {
                Err(EngineError::GuardFailed(_)) => Err(EngineError::BucketAlreadyOwnedByYou),
                r => r,
            }
        })
        .await
    }

    pub fn bucket_info(&self, name: &str) -> EngineResult<BucketInfo> {
        let rec = self.inner.objects.bucket(name)?;
        Ok(BucketInfo {
            name: name.to_owned(),
            created_ms: rec.created_ms,
        })
    }

    pub fn list_buckets(&self) -> EngineResult<Vec<BucketInfo>> {
        Ok(self
            .inner
            .meta
            .page_after::<Buckets>(None, usize::MAX)?
            .into_iter()
            .map(|(name, rec)| BucketInfo {
                name,
                created_ms: rec.created_ms,
            })
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
                cf: crate::MetaCf::UploadIndex,
                prefix,
            });
            b.delete::<Buckets>(&name);
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
