//! Start-up recovery after an unclean shutdown.
//!
//! Acknowledged data needs no recovery (see "Durability order" in
//! docs/ARCHITECTURE.md): RocksDB replays its WAL, and segment bytes that no
//! record names are invisible and reclaimed by compaction. What a crash *can*
//! leave wrong is a chunk's reference count: a dedup pin taken by a write that
//! never committed (see `put.rs`) stays counted, so the chunk would never be
//! collected. So: a graceful shutdown records `clean-shutdown` in the local
//! column family; opening removes it; opening without it recounts every
//! chunk's references from the manifests (object versions and multipart
//! parts) before anything is served, and corrects the records.
//!
//! Cost: one pass over the object, part and chunk records; memory ≈ 64 bytes
//! per distinct referenced chunk.

use std::collections::HashMap;

use cairn_dedup::ChunkId;

use crate::engine::{Engine, Inner};
use crate::error::EngineResult;
use crate::meta::{Chunks, Objects, Parts, System, Versions};
use crate::records::ChunkRefDelta;

const CLEAN_SHUTDOWN: &str = "clean-shutdown";
const RECOUNT_BATCH: usize = 1024;

/// What a recount changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecountReport {
    pub chunks_checked: u64,
    pub refcounts_fixed: u64,
}

impl Inner {
    /// Called by `Engine::open` before serving: recounts references unless
    /// the previous run shut down cleanly. Returns `None` after a clean one.
    pub(crate) fn recover_on_open(&self, first_start: bool) -> EngineResult<Option<RecountReport>> {
        // The marker lives in `local` (never replicated); before that it was
        // in `system`, where an older version may have left it.
        let legacy = self.meta.get::<System>(CLEAN_SHUTDOWN)?.is_some();
        let clean = legacy || self.meta.local(CLEAN_SHUTDOWN)?.is_some();
        // From now on a crash is unclean until the next graceful stop.
        self.meta.set_local(CLEAN_SHUTDOWN, None)?;
        if legacy {
            let mut b = self.meta.batch();
            b.delete::<System>(CLEAN_SHUTDOWN);
            self.meta.write(b)?;
        }
        if clean || first_start {
            return Ok(None);
        }
        if self.meta.is_replica() {
            // Other nodes write while this one starts, so a recount would
            // race them. A pin this node took and lost in the crash keeps
            // its chunk alive (space, never data); see docs/cluster.md.
            tracing::warn!(
                "unclean shutdown of a cluster node: chunk references are not recounted"
            );
            return Ok(None);
        }
        let report = self.recount_references()?;
        tracing::warn!(
            checked = report.chunks_checked,
            fixed = report.refcounts_fixed,
            "recovered from an unclean shutdown: chunk references recounted"
        );
        Ok(Some(report))
    }

    /// Sets every chunk's refcount to the number of manifest entries naming
    /// it. Only correct while no write is in flight (start-up).
    pub(crate) fn recount_references(&self) -> EngineResult<RecountReport> {
        let mut counts: HashMap<ChunkId, u64> = HashMap::new();
        let mut count_version = |v: crate::records::ObjectVersion| {
            for e in self.objects.manifest_entries(&v)? {
                *counts.entry(e.chunk).or_default() += 1;
            }
            Ok(())
        };
        self.meta.for_each::<Objects>(&mut count_version)?;
        self.meta.for_each::<Versions>(&mut count_version)?;
        self.meta.for_each::<Parts>(|p| {
            for e in &p.entries {
                *counts.entry(e.chunk).or_default() += 1;
            }
            Ok(())
        })?;
        let mut report = RecountReport::default();
        let mut after: Option<ChunkId> = None;
        loop {
            let page = self
                .meta
                .page_after::<Chunks>(after.as_ref(), RECOUNT_BATCH)?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = Some(*last);
            let mut batch = self.meta.batch();
            for (id, rec) in &page {
                report.chunks_checked += 1;
                let want = counts.get(id).copied().unwrap_or(0);
                if want != rec.refcount {
                    let delta = i64::try_from(want).unwrap_or(i64::MAX)
                        - i64::try_from(rec.refcount).unwrap_or(i64::MAX);
                    batch.merge::<Chunks>(id, &ChunkRefDelta::refs(delta));
                    report.refcounts_fixed += 1;
                }
            }
            self.meta.write(batch)?;
        }
        Ok(report)
    }
}

impl Engine {
    /// Records a graceful shutdown, so the next start skips the recount.
    /// Call last, once no request or background task can write any more.
    pub fn mark_clean_shutdown(&self) -> EngineResult<()> {
        self.inner.meta.set_local(CLEAN_SHUTDOWN, Some(&[1]))
    }
}
