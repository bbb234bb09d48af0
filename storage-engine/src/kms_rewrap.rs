//! Re-wrapping after a key-service key's rotation: every object version
//! (current and noncurrent) whose data key is wrapped under an older
//! material version of the key gets its data key unwrapped and wrapped
//! again under the newest one. Only the envelope in the metadata record
//! changes; the object's bytes (encrypted under the data key) are not
//! touched.
//!
//! Owns that pass. Each record is rewritten in its own batch guarded on
//! the stored record it read, so a concurrent write (an overwrite, a tag
//! change, a delete) wins and the record is counted as skipped; a pass can
//! be run again at any time (it only ever moves envelopes to the newest
//! version). Uploads in progress keep their version (their parts are under
//! the same data key; they complete under it).
//!
//! A pass that found nothing left behind (no record skipped) records on
//! this node the version it brought the key to (`local`
//! `kms-rewrapped/<id>`); [`Engine::resume_kms_rewraps`], run soon after
//! start, runs the pass again for every key rotated past its record — a
//! pass cut short by a restart or a crash is finished then, not at the
//! next rotation.
//!
//! Never: rewrap under anything but the key's newest material, or write a
//! record it did not read in the same pass.

use cairn_crypto::kms::wrap_aad;

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Buckets, GuardedRow, KeyRange, MetaBatch, MetaStore, Objects, Table, Versions};
use crate::records::ObjectVersion;

/// Records read per page of the pass.
const PAGE: usize = 256;

/// What a re-wrap pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Object versions read.
    pub scanned: u64,
    /// Envelopes moved to the newest material version.
    pub rewrapped: u64,
    /// Envelopes left as they were: their record changed meanwhile.
    pub skipped: u64,
}

/// The node-local record of the version a complete pass brought key `id`
/// to (u32 BE).
fn done_name(id: &str) -> String {
    format!("kms-rewrapped/{id}")
}

impl Engine {
    /// Runs [`Engine::rewrap_kms_key`] for every key rotated since its last
    /// complete pass on this node (keys never rotated have nothing to do),
    /// while `keep_going()`. Returns how many passes ran.
    pub async fn resume_kms_rewraps(&self, keep_going: impl Fn() -> bool) -> EngineResult<usize> {
        let mut passes = 0;
        for key in self.kms_keys()? {
            if !keep_going() {
                break;
            }
            if key.versions <= 1 || self.kms_rewrapped_through(&key.id)? >= key.versions {
                continue;
            }
            let report = self.rewrap_kms_key(&key.id).await?;
            tracing::info!(kms_key = %key.id, ?report, "KMS key re-wrap pass resumed after start");
            passes += 1;
        }
        Ok(passes)
    }

    /// The version the last complete pass on this node brought key `id` to
    /// (0: none).
    fn kms_rewrapped_through(&self, id: &str) -> EngineResult<u32> {
        Ok(match self.inner.meta.local(&done_name(id))? {
            Some(v) => v.as_slice().try_into().map(u32::from_be_bytes).unwrap_or(0),
            None => 0,
        })
    }

    /// Re-wraps under the newest material of key `id` every data key
    /// wrapped under an older version of it (see the module docs).
    pub async fn rewrap_kms_key(&self, id: &str) -> EngineResult<RewrapReport> {
        let this = self.clone();
        let id = id.to_owned();
        blocking(move || this.rewrap_blocking(&id)).await
    }

    fn rewrap_blocking(&self, id: &str) -> EngineResult<RewrapReport> {
        let (info, newest) = self.kms_key_material(id, None)?;
        let meta = &self.inner.meta;
        let names: std::collections::HashMap<u64, String> = meta
            .page::<Buckets>(KeyRange::all(), usize::MAX)?
            .into_iter()
            .map(|(name, b)| (b.id, name))
            .collect();
        let mut report = RewrapReport::default();
        // The material of each older version, opened once.
        let mut older = std::collections::HashMap::new();
        let mut rewrap =
            |bucket_id: u64, key: &str, v: &ObjectVersion| -> EngineResult<Option<ObjectVersion>> {
                let Some(env) = &v.meta.sse_kms else {
                    return Ok(None);
                };
                if env.key_id != info.id || env.key_version >= info.versions {
                    return Ok(None);
                }
                let Some(bucket) = names.get(&bucket_id) else {
                    return Ok(None);
                };
                let material = match older.entry(env.key_version) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(self.kms_material(id, env.key_version)?)
                    }
                };
                let aad = wrap_aad(&env.key_id, env.key_version, bucket, key, &env.context);
                let data_key = material.unwrap(&env.wrapped_key, &aad).map_err(|_| {
                    EngineError::Corrupt(format!(
                        "the data key of {bucket}/{key} does not unwrap under its key version"
                    ))
                })?;
                let aad = wrap_aad(&env.key_id, info.versions, bucket, key, &env.context);
                let wrapped = newest
                    .wrap(&data_key, &aad)
                    .map_err(|e| EngineError::Internal(format!("wrapping a data key: {e}")))?;
                let mut new = v.clone();
                if let Some(e) = new.meta.sse_kms.as_mut() {
                    e.key_version = info.versions;
                    e.wrapped_key = wrapped;
                }
                Ok(Some(new))
            };
        let write =
            |batch: crate::meta::MetaBatch, report: &mut RewrapReport| match meta.write(batch) {
                Ok(()) => {
                    report.rewrapped += 1;
                    self.inner.metrics.kms_data_keys_rewrapped.inc();
                    Ok(())
                }
                Err(EngineError::GuardFailed(_)) => {
                    report.skipped += 1;
                    Ok(())
                }
                Err(e) => Err(e),
            };

        let mut visit = |bucket_id: u64,
                         key: &str,
                         v: &ObjectVersion,
                         guard,
                         put: &dyn Fn(&mut MetaBatch, &ObjectVersion),
                         report: &mut RewrapReport|
         -> EngineResult<()> {
            report.scanned += 1;
            if let Some(new) = rewrap(bucket_id, key, v)? {
                // The writers' lock of this key: none of them reads the
                // record and writes it back around this write.
                let _key = self.inner.objects.lock_key_blocking(&(bucket_id, key));
                let mut batch = meta.batch();
                batch.guard(guard);
                put(&mut batch, &new);
                write(batch, report)?;
            }
            Ok(())
        };
        let mut after: Option<Vec<u8>> = None;
        while let Some(rows) =
            next_page::<Objects>(meta, &mut after, |(b, k)| Objects::key((*b, k)))?
        {
            for ((b, k), v, guard) in rows {
                visit(
                    b,
                    &k,
                    &v,
                    guard,
                    &|batch, new| batch.put::<Objects>((b, &k), new),
                    &mut report,
                )?;
            }
        }
        let mut after: Option<Vec<u8>> = None;
        while let Some(rows) =
            next_page::<Versions>(meta, &mut after, |(b, k, s)| Versions::key((*b, k, *s)))?
        {
            for ((b, k, seq), v, guard) in rows {
                visit(
                    b,
                    &k,
                    &v,
                    guard,
                    &|batch, new| batch.put::<Versions>((b, &k, seq), new),
                    &mut report,
                )?;
            }
        }
        if report.skipped == 0 {
            meta.set_local(&done_name(id), Some(&info.versions.to_be_bytes()))?;
        }
        Ok(report)
    }
}

/// The next page of `T` after `after` (advanced to its last key), or
/// `None` once the table is walked.
fn next_page<T: Table>(
    meta: &MetaStore,
    after: &mut Option<Vec<u8>>,
    stored_key: impl Fn(&T::KeyOwned) -> Vec<u8>,
) -> EngineResult<Option<Vec<GuardedRow<T>>>> {
    let rows = meta.page_guarded::<T>(KeyRange::after(after.as_deref()), PAGE)?;
    let Some((last, _, _)) = rows.last() else {
        return Ok(None);
    };
    *after = Some(stored_key(last));
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use cairn_crypto::kms::DataKey;

    use crate::records::{KmsEnvelope, ObjectMetadata};
    use crate::test_support::{open_with, small_chunk_config};

    /// Commits `b/object` (bytes standing for ciphertext) with `envelope`.
    async fn put_under(e: &crate::Engine, object: &str, envelope: KmsEnvelope) {
        let mut w = e.object_writer("b").unwrap();
        w.write(Bytes::from_static(b"ciphertext")).await.unwrap();
        let staged = w.finish().await.unwrap();
        let metadata = ObjectMetadata {
            sse_kms: Some(envelope),
            ..Default::default()
        };
        e.commit_object("b", object, staged, "etag".into(), metadata)
            .await
            .unwrap();
    }

    /// After a rotation the pass moves every envelope of the key (current
    /// and noncurrent versions) to the newest material, the data key inside
    /// unchanged; envelopes of other keys and already-newest ones stay; a
    /// second pass has nothing to do.
    #[tokio::test]
    async fn a_pass_rewraps_older_versions_under_the_newest_material() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_with(small_chunk_config(dir.path()), 0x42);
        e.create_bucket("b").await.unwrap();
        e.set_bucket_versioning("b", crate::Versioning::Enabled)
            .await
            .unwrap();
        let key = e.create_kms_key(None, "k").await.unwrap();
        let other = e.create_kms_key(None, "other").await.unwrap();
        let data_key = DataKey::generate().unwrap();
        let envelope = |id: &str, object: &str| {
            let (info, m) = e.kms_key_material(id, None).unwrap();
            let aad = super::wrap_aad(id, info.versions, "b", object, "ctx");
            KmsEnvelope {
                key_id: id.to_owned(),
                key_version: info.versions,
                wrapped_key: m.wrap(&data_key, &aad).unwrap(),
                context: "ctx".into(),
                bucket_key_enabled: false,
            }
        };
        let put = |object: &'static str, env: KmsEnvelope| put_under(&e, object, env);
        put("a", envelope(&key.id, "a")).await;
        put("a", envelope(&key.id, "a")).await; // the first becomes noncurrent
        put("x", envelope(&other.id, "x")).await;
        e.rotate_kms_key(&key.id).await.unwrap();
        put("new", envelope(&key.id, "new")).await; // already under version 2

        let report = e.rewrap_kms_key(&key.id).await.unwrap();
        assert_eq!(report.rewrapped, 2, "{report:?}");
        assert_eq!(report.skipped, 0);
        assert!(report.scanned >= 4, "{report:?}");
        let (_, v2) = e.kms_key_material(&key.id, Some(2)).unwrap();
        let mut probe = *b"same data key?";
        let mut expected = probe;
        data_key.object_cipher().apply(&mut expected);
        let current = e
            .inner
            .meta
            .object(e.inner.objects.bucket("b").unwrap().id, "a")
            .unwrap()
            .unwrap();
        let env = current.meta.sse_kms.unwrap();
        assert_eq!(env.key_version, 2);
        let unwrapped = v2
            .unwrap(
                &env.wrapped_key,
                &super::wrap_aad(&key.id, 2, "b", "a", "ctx"),
            )
            .unwrap();
        unwrapped.object_cipher().apply(&mut probe);
        assert_eq!(probe, expected, "the same data key, wrapped anew");
        let x = e
            .inner
            .meta
            .object(e.inner.objects.bucket("b").unwrap().id, "x")
            .unwrap()
            .unwrap();
        assert_eq!(
            x.meta.sse_kms.unwrap().key_version,
            1,
            "another key's object stays"
        );
        assert_eq!(e.rewrap_kms_key(&key.id).await.unwrap().rewrapped, 0);
        e.check_stored_totals().unwrap();
    }

    /// A rotation whose pass never ran (the server stopped right after it)
    /// is re-wrapped by the pass resumed after start; keys never rotated,
    /// or whose last pass completed, are not walked again.
    #[tokio::test]
    async fn a_rotation_whose_pass_never_ran_is_rewrapped_after_start() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_with(small_chunk_config(dir.path()), 0x43);
        e.create_bucket("b").await.unwrap();
        let key = e.create_kms_key(None, "k").await.unwrap();
        let _never_rotated = e.create_kms_key(None, "other").await.unwrap();
        let (info, m) = e.kms_key_material(&key.id, None).unwrap();
        let aad = super::wrap_aad(&key.id, info.versions, "b", "a", "");
        let envelope = KmsEnvelope {
            key_id: key.id.clone(),
            key_version: info.versions,
            wrapped_key: m.wrap(&DataKey::generate().unwrap(), &aad).unwrap(),
            context: String::new(),
            bucket_key_enabled: false,
        };
        put_under(&e, "a", envelope).await;
        let version_of_a = |e: &crate::Engine| {
            let id = e.inner.objects.bucket("b").unwrap().id;
            let v = e.inner.meta.object(id, "a").unwrap().unwrap();
            v.meta.sse_kms.unwrap().key_version
        };
        assert_eq!(
            e.resume_kms_rewraps(|| true).await.unwrap(),
            0,
            "nothing rotated"
        );

        e.rotate_kms_key(&key.id).await.unwrap();
        drop(e);
        let e = open_with(small_chunk_config(dir.path()), 0x43);
        assert_eq!(version_of_a(&e), 1);
        assert_eq!(
            e.resume_kms_rewraps(|| false).await.unwrap(),
            0,
            "told to stop"
        );
        assert_eq!(e.resume_kms_rewraps(|| true).await.unwrap(), 1);
        assert_eq!(version_of_a(&e), 2);
        assert_eq!(e.resume_kms_rewraps(|| true).await.unwrap(), 0, "done");
        e.rotate_kms_key(&key.id).await.unwrap();
        assert_eq!(e.resume_kms_rewraps(|| true).await.unwrap(), 1);
        assert_eq!(version_of_a(&e), 3);
    }
}
