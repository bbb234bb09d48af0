//! Sealing the metadata records an older version stored in plaintext: a
//! data directory written before metadata was sealed at rest (2026-12)
//! keeps user metadata, tags and checksums readable on disk until each
//! record is rewritten; this pass rewrites them all, once, in the
//! background.
//!
//! Owns that pass. Each plaintext record is stored again, sealed, with the
//! same plaintext (`MetaBatch::seal_stored`), in its own batch guarded on
//! the bytes it read and under the lock the row's writers take (on a
//! single node a guard's check and the write are not one atomic step): a
//! write that got there first wins and the record is counted as skipped.
//! Through a cluster's log the sealed bytes reach every node; only the
//! leader rewrites, every node checks that nothing is left in its own
//! store. Once nothing is, every sealed column family is compacted with
//! the bottommost level forced, so the plaintext leaves RocksDB's files
//! (old SSTs are deleted; the write-ahead log that held them is gone once
//! flushed), and the pass is recorded node-locally (`metadata-sealed-v1`):
//! later starts do not walk the metadata again.
//!
//! Never: change what a record says (only its stored form), or write a
//! record it did not read in this pass.

use crate::engine::{Engine, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::{Objects, Parts, SEALED_CFS, Table, Uploads, Versions};
use crate::meta_command::MetaCf;

/// Rows looked at per page.
const PAGE: usize = 512;

/// The node-local record of a complete pass.
const DONE: &str = "metadata-sealed-v1";

/// What a sealing pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetadataSealReport {
    /// Stored values looked at.
    pub scanned: u64,
    /// Plaintext records stored again sealed.
    pub sealed: u64,
    /// Plaintext records left: their row changed meanwhile (and was sealed
    /// by that write).
    pub skipped: u64,
    /// Whether there is nothing left to seal: the pass walked everything,
    /// or an earlier one on this node did (then nothing is scanned), or
    /// the store does not seal. False: stopped by `keep_going`.
    pub complete: bool,
}

impl Engine {
    /// Seals every metadata record still stored in plaintext (see the
    /// module docs), while `keep_going()`. With `rewrite` false (a cluster
    /// node that is not the leader) nothing is written: the pass only looks
    /// whether the leader's rewrites have all arrived, and if so compacts
    /// this node's files and records it. Nothing to do when an earlier pass
    /// on this node completed or the store does not seal.
    pub async fn seal_plaintext_metadata(
        &self,
        rewrite: bool,
        keep_going: impl Fn() -> bool + Send + 'static,
    ) -> EngineResult<MetadataSealReport> {
        let this = self.clone();
        blocking(move || this.seal_plaintext_blocking(rewrite, &keep_going)).await
    }

    fn seal_plaintext_blocking(
        &self,
        rewrite: bool,
        keep_going: &dyn Fn() -> bool,
    ) -> EngineResult<MetadataSealReport> {
        let meta = &self.inner.meta;
        let mut report = MetadataSealReport::default();
        if !meta.seals() || meta.local(DONE)?.is_some() {
            report.complete = true;
            return Ok(report);
        }
        let mut left = 0u64;
        for cf in SEALED_CFS {
            let mut after: Option<Vec<u8>> = None;
            loop {
                if !keep_going() {
                    return Ok(report);
                }
                let page = meta.plaintext_page(cf, after.as_deref(), PAGE)?;
                report.scanned += page.scanned as u64;
                for (key, stored) in &page.rows {
                    if !rewrite {
                        left += 1;
                        continue;
                    }
                    match self.seal_row(cf, key, stored) {
                        Ok(()) => {
                            report.sealed += 1;
                            self.inner.metrics.metadata_records_sealed.inc();
                        }
                        Err(EngineError::GuardFailed(_)) => report.skipped += 1,
                        Err(e) => return Err(e),
                    }
                }
                match page.last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
        if left > 0 {
            // The leader has not sealed everything yet: look again later.
            return Ok(report);
        }
        // Every sealed column family, whether this pass rewrote it or an
        // earlier one cut short did (or the leader, through the log).
        for cf in SEALED_CFS {
            meta.compact_cf(cf)?;
        }
        meta.set_local(DONE, Some(b"1"))?;
        report.complete = true;
        Ok(report)
    }

    /// Stores one plaintext row again sealed, under the lock its writers
    /// take (a bucket's record: the bucket lock; an object's current or
    /// older versions: the key's stripe; an upload and its parts: the
    /// upload id's), so no read-modify-write of the row interleaves.
    fn seal_row(&self, cf: MetaCf, key: &[u8], stored: &[u8]) -> EngineResult<()> {
        let objects = &self.inner.objects;
        let _lock = match cf {
            MetaCf::Buckets => objects.bucket_lock.blocking_lock(),
            MetaCf::Objects => match Objects::decode_key(key)? {
                Some((bucket, name)) => objects.lock_key_blocking(&(bucket, name.as_str())),
                None => return Ok(()),
            },
            MetaCf::Versions => match Versions::decode_key(key)? {
                Some((bucket, name, _)) => objects.lock_key_blocking(&(bucket, name.as_str())),
                None => return Ok(()),
            },
            MetaCf::Uploads => match Uploads::decode_key(key)? {
                Some(id) => objects.lock_key_blocking(&id),
                None => return Ok(()),
            },
            MetaCf::Parts => match Parts::decode_key(key)? {
                Some((id, _)) => objects.lock_key_blocking(&id),
                None => return Ok(()),
            },
            other => {
                return Err(EngineError::Internal(format!(
                    "{} is not a sealed column family",
                    other.name()
                )));
            }
        };
        let meta = &self.inner.meta;
        let mut batch = meta.batch();
        batch.seal_stored(cf, key, stored);
        meta.write(batch)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cairn_crypto::DataRootKey;

    use crate::meta::{MetaStore, SEALED_CFS};
    use crate::metrics::EngineMetrics;
    use crate::records::ObjectMetadata;
    use crate::test_support::{small_chunk_config, try_put};
    use crate::{Engine, Versioning};

    /// Every plaintext row left in the sealed column families.
    fn plaintext_rows(e: &Engine) -> usize {
        let meta = &e.inner.meta;
        SEALED_CFS
            .iter()
            .map(|cf| {
                let page = meta.plaintext_page(*cf, None, usize::MAX).unwrap();
                assert!(page.last.is_none());
                page.rows.len()
            })
            .sum()
    }

    fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path.display().to_string());
            }
        }
        found
    }

    /// A data directory written without sealing (as before 2026-12),
    /// opened with a key: one pass seals every record in place (the same
    /// records, the same totals), the plaintext leaves the store's files,
    /// and a later pass on this node does not walk the metadata again.
    #[tokio::test]
    async fn a_pass_seals_every_plaintext_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small_chunk_config(dir.path());
        let root = DataRootKey::from_hex(&"42".repeat(32)).unwrap();
        const SECRET: &[u8] = b"legacy-plaintext-marker";
        let marker = String::from_utf8(SECRET.to_vec()).unwrap();
        {
            // What an older version wrote: the same records, unsealed.
            let metrics = EngineMetrics::register(&prometheus::Registry::new()).unwrap();
            let drives = Engine::local_drives(&cfg, &metrics).unwrap();
            let store = Arc::new(MetaStore::open(&cfg.meta_dir).unwrap());
            let e = Engine::open_on(cfg.clone(), &root, metrics, drives, store).unwrap();
            e.create_bucket("b").await.unwrap();
            e.set_bucket_versioning("b", Versioning::Enabled)
                .await
                .unwrap();
            for (i, key) in ["a", "a", "b"].iter().enumerate() {
                let mut w = e.object_writer("b").unwrap();
                w.write(bytes::Bytes::from(vec![i as u8; 100]))
                    .await
                    .unwrap();
                let staged = w.finish().await.unwrap();
                let meta = ObjectMetadata {
                    user_metadata: vec![("note".into(), marker.clone())],
                    tags: vec![("colour".into(), format!("{marker}-{i}"))],
                    ..ObjectMetadata::default()
                };
                e.commit_object("b", key, staged, "etag".into(), meta)
                    .await
                    .unwrap();
            }
            try_put(&e, "b", "plain", b"no metadata", 4).await.unwrap();
            assert!(
                plaintext_rows(&e) >= 5,
                "buckets, objects and versions in the clear"
            );
        }
        assert!(!files_containing(&cfg.meta_dir, SECRET).is_empty());

        let registry = prometheus::Registry::new();
        let e = Engine::open(cfg.clone(), &root, &registry).unwrap();
        let before = plaintext_rows(&e);
        let read = |e: &Engine| {
            let v = e.head_version("b", "a", None).unwrap();
            (v.meta.user_metadata, v.meta.tags, v.version_id)
        };
        let a_before = read(&e);
        let totals_before = e.inner.meta.totals().unwrap();

        let report = e.seal_plaintext_metadata(true, || true).await.unwrap();
        assert!(report.complete, "{report:?}");
        assert_eq!((report.sealed, report.skipped), (before as u64, 0));
        assert!(report.scanned >= report.sealed);
        assert_eq!(plaintext_rows(&e), 0);
        assert_eq!(read(&e), a_before, "the same record, sealed");
        let totals = e.inner.meta.totals().unwrap();
        assert_eq!(totals.global, totals_before.global);
        let (kept, counted) = e.inner.meta.kept_and_recounted_totals().unwrap();
        assert_eq!(kept, counted);
        let versions = e
            .list_versions(
                "b",
                crate::versions::VersionListQuery {
                    max_keys: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(versions.versions.len(), 4);

        // Done on this node: a second pass walks nothing.
        let again = e.seal_plaintext_metadata(true, || true).await.unwrap();
        assert_eq!(
            again,
            super::MetadataSealReport {
                complete: true,
                ..Default::default()
            }
        );
        drop(e);
        let left = files_containing(&cfg.meta_dir, SECRET);
        assert!(left.is_empty(), "plaintext still in {left:?}");
    }

    /// A pass told to stop stops, records nothing, and the next one
    /// finishes the work; a pass that may not rewrite completes only once
    /// nothing is left.
    #[tokio::test]
    async fn a_stopped_pass_is_finished_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small_chunk_config(dir.path());
        let root = DataRootKey::from_hex(&"43".repeat(32)).unwrap();
        {
            let metrics = EngineMetrics::register(&prometheus::Registry::new()).unwrap();
            let drives = Engine::local_drives(&cfg, &metrics).unwrap();
            let store = Arc::new(MetaStore::open(&cfg.meta_dir).unwrap());
            let e = Engine::open_on(cfg.clone(), &root, metrics, drives, store).unwrap();
            e.create_bucket("b").await.unwrap();
            try_put(&e, "b", "x", b"x", 1).await.unwrap();
        }
        let e = Engine::open(cfg, &root, &prometheus::Registry::new()).unwrap();
        let stopped = e.seal_plaintext_metadata(true, || false).await.unwrap();
        assert!(!stopped.complete);
        assert_eq!(stopped.sealed, 0);
        // A node that does not rewrite (a cluster follower) only looks: not
        // done while plaintext is left.
        let looked = e.seal_plaintext_metadata(false, || true).await.unwrap();
        assert!(
            !looked.complete && looked.sealed == 0 && looked.scanned > 0,
            "{looked:?}"
        );
        assert!(plaintext_rows(&e) >= 2);
        let done = e.seal_plaintext_metadata(true, || true).await.unwrap();
        assert!(done.complete && done.sealed >= 2, "{done:?}");
        assert_eq!(plaintext_rows(&e), 0);
        let after = e.seal_plaintext_metadata(false, || true).await.unwrap();
        assert!(after.complete && after.scanned == 0, "recorded: {after:?}");
    }
}
