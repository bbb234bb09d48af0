//! Bucket documents: the configurations S3 sets on a bucket as one whole
//! document each — its policy, public access block, CORS rules and default
//! encryption.
//!
//! Owns: the `system` records `bucket-doc/<bucket id, 16 hex>/<kind>`
//! ([`BucketDocument::name`]). The engine stores each value as the caller
//! gives it and never interprets it: the front end defines (and versions)
//! each kind's format and validates before storing — except the
//! notification rules, whose format `notifications.rs` owns (the engine
//! reads them on every object change). Keyed by bucket id, so
//! a bucket deleted and created again under its name starts without any;
//! every document is removed in the batch that deletes its bucket.
//!
//! Must never: store a document for a bucket that does not exist (every
//! write is guarded on the bucket record), or let a cache of documents
//! outlive a change — each applied change bumps the metadata store's bucket
//! configuration epoch ([`Engine::bucket_config_epoch`]), on every node of
//! a cluster, since replicas apply the same commands.

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Buckets, System};

/// The common start of every bucket document's `system` name.
pub(crate) const NAME_PREFIX: &str = "bucket-doc/";

/// Which document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BucketDocument {
    /// The bucket policy: the front end's record of the JSON as PUT and
    /// the key ids its principals name (s3-api `access::PolicyRecord`).
    Policy,
    /// The bucket's public access block.
    PublicAccessBlock,
    /// The bucket's CORS rules.
    Cors,
    /// The bucket's default encryption.
    Encryption,
    /// The bucket's event notification rules: the one document the engine
    /// reads itself, in its own format (`notifications.rs`).
    Notification,
}

impl BucketDocument {
    pub const ALL: [BucketDocument; 5] = [
        BucketDocument::Policy,
        BucketDocument::PublicAccessBlock,
        BucketDocument::Cors,
        BucketDocument::Encryption,
        BucketDocument::Notification,
    ];

    fn label(self) -> &'static str {
        match self {
            BucketDocument::Policy => "policy",
            BucketDocument::PublicAccessBlock => "public-access-block",
            BucketDocument::Cors => "cors",
            BucketDocument::Encryption => "encryption",
            BucketDocument::Notification => "notification",
        }
    }

    /// The `system` name of this document of the bucket `bucket_id`.
    pub(crate) fn name(self, bucket_id: u64) -> String {
        format!("{NAME_PREFIX}{bucket_id:016x}/{}", self.label())
    }
}

impl Engine {
    /// Changes whenever a bucket record or a bucket's documents or
    /// lifecycle rules change on this node (applied locally or from the
    /// cluster's log). A cache reads it before reading what it caches and
    /// keeps the entry only while it is unchanged.
    pub fn bucket_config_epoch(&self) -> u64 {
        self.inner.meta.bucket_config_epoch()
    }

    /// The bucket's document of `kind`, if one is set (`NoSuchBucket` when
    /// there is no such bucket).
    pub fn bucket_document(
        &self,
        bucket: &str,
        kind: BucketDocument,
    ) -> EngineResult<Option<Vec<u8>>> {
        let b = self.inner.objects.bucket(bucket)?;
        self.inner.meta.get::<System>(&kind.name(b.id))
    }

    /// Replaces (or with `None` removes) the bucket's document of `kind`,
    /// in one synced batch guarded on the bucket record (a bucket deleted
    /// meanwhile is `NoSuchBucket`). Validation is the caller's.
    pub async fn set_bucket_document(
        &self,
        bucket: &str,
        kind: BucketDocument,
        document: Option<Vec<u8>>,
    ) -> EngineResult<()> {
        self.set_bucket_system_record(bucket, move |id| kind.name(id), document)
            .await
    }

    /// Puts (or with `None` deletes) the `system` record `name(bucket id)`
    /// of a bucket, in one synced batch guarded on the bucket record: a
    /// bucket deleted meanwhile is `NoSuchBucket`, one changed meanwhile
    /// `SourceChanged`. The bucket lock orders it with other bucket writes.
    pub(crate) async fn set_bucket_system_record(
        &self,
        bucket: &str,
        name: impl FnOnce(u64) -> String + Send + 'static,
        value: Option<Vec<u8>>,
    ) -> EngineResult<()> {
        let _g = self.inner.objects.bucket_lock.lock().await;
        let inner = self.inner.clone();
        let bucket = bucket.to_owned();
        blocking(move || {
            let (rec, unchanged) = inner.meta.get_guarded::<Buckets>(&bucket)?;
            let rec = rec.ok_or(EngineError::NoSuchBucket)?;
            let mut batch = inner.meta.batch();
            batch.guard(unchanged);
            let name = name(rec.id);
            match &value {
                Some(v) => batch.put::<System>(&name, v),
                None => batch.delete::<System>(&name),
            }
            match inner.meta.write(batch) {
                Err(EngineError::GuardFailed(_)) => match inner.meta.get::<Buckets>(&bucket)? {
                    None => Err(EngineError::NoSuchBucket),
                    Some(_) => Err(EngineError::SourceChanged),
                },
                r => r,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::BucketDocument;
    use crate::EngineError;
    use crate::test_support::{open_with, small_chunk_config};

    #[tokio::test]
    async fn documents_live_and_die_with_their_bucket_and_move_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_with(small_chunk_config(dir.path()), 0x19);
        e.create_bucket("b").await.unwrap();
        assert_eq!(
            e.bucket_document("b", BucketDocument::Policy).unwrap(),
            None
        );
        let before = e.bucket_config_epoch();
        e.set_bucket_document("b", BucketDocument::Policy, Some(b"{}".to_vec()))
            .await
            .unwrap();
        let after_put = e.bucket_config_epoch();
        assert!(after_put > before, "a stored document moves the epoch");
        assert_eq!(
            e.bucket_document("b", BucketDocument::Policy).unwrap(),
            Some(b"{}".to_vec())
        );
        // Kinds are separate.
        assert_eq!(e.bucket_document("b", BucketDocument::Cors).unwrap(), None);
        // An object write does not move it (caches stay warm under load).
        crate::test_support::try_put(&e, "b", "k", b"data", 4096)
            .await
            .unwrap();
        assert_eq!(e.bucket_config_epoch(), after_put);
        e.set_bucket_document("b", BucketDocument::Cors, Some(b"x".to_vec()))
            .await
            .unwrap();
        e.set_bucket_document("b", BucketDocument::Cors, None)
            .await
            .unwrap();
        assert_eq!(e.bucket_document("b", BucketDocument::Cors).unwrap(), None);
        // No document for a missing bucket.
        assert!(matches!(
            e.set_bucket_document("nope", BucketDocument::Policy, Some(b"{}".to_vec()))
                .await,
            Err(EngineError::NoSuchBucket)
        ));
        // Deleted with the bucket: a new bucket under the name has none.
        e.delete_object("b", "k").await.unwrap();
        e.delete_bucket("b").await.unwrap();
        assert!(matches!(
            e.bucket_document("b", BucketDocument::Policy),
            Err(EngineError::NoSuchBucket)
        ));
        e.create_bucket("b").await.unwrap();
        assert_eq!(
            e.bucket_document("b", BucketDocument::Policy).unwrap(),
            None
        );
    }
}
