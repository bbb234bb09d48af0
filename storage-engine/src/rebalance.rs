//! Rebalancing: moving shards to where the placement rule puts them now.
//!
//! The rule ([`crate::placement::place_across_nodes`]) depends on the set of
//! drives. When drives or nodes are added, or a node is being drained (its
//! drives excluded from placement, `EngineConfig::placement_excluded_nodes`),
//! existing chunks keep their old locations: reads work, but the data is not
//! where new writes would put it. [`Engine::rebalance`] walks every chunk
//! record and, for each shard not on its rule drive, copies it there:
//!
//! 1. read the shard from where it is (checksum verified by the drive);
//! 2. append it to the rule's drive and fsync (a remote drive answers after
//!    its fsync);
//! 3. point the record at the copy with a conditional relocation (the same
//!    merge as compaction and repair: it applies only if the slot still
//!    names the old place), WAL synced / committed through the cluster log.
//!
//! A shard that cannot be read (its node is dead and being drained, or the
//! copy is bad) is rebuilt from the chunk's other shards — decoded and
//! verified end to end first — and the rebuilt shard is what moves; a
//! target drive that is faulty is skipped until the next pass. The old copy
//! becomes unreferenced segment space (reclaimed by compaction on a single
//! node). One pass at a time, at a bytes/s limit, with progress in
//! [`RebalanceStatus`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_dedup::ChunkId;
use cairn_erasure::shard_checksum;

use crate::engine::{Engine, Inner, blocking};
use crate::error::EngineResult;
use crate::meta::Chunks;
use crate::parts::jobs::{RebalanceReport, RebalanceStatus};
use crate::records::{ChunkRecord, ShardMove};

/// Chunk records examined per blocking step.
const REBALANCE_PAGE: usize = 64;

/// How fast a rebalance may move data.
#[derive(Clone, Copy, Debug, Default)]
pub struct RebalanceOptions {
    /// Shard bytes copied per second at most (`None`: as fast as possible).
    pub bytes_per_sec: Option<u64>,
}

impl Inner {
    /// Every drive new shards may go to, as drive ids, in the rule's order
    /// for `id`: shard i belongs on the i-th.
    pub(crate) fn placement_ranking(&self, id: &ChunkId) -> Vec<usize> {
        crate::placement::place_across_nodes(
            id,
            &self.drives.placement_drives,
            self.drives.placement_drives.len(),
        )
        .into_iter()
        .filter_map(|i| self.drives.placement_ids.get(i).copied())
        .collect()
    }
}

/// Moves the misplaced shards of one chunk; adds to `report`.
fn rebalance_chunk(
    inner: &Arc<Inner>,
    id: &ChunkId,
    rec: &ChunkRecord,
    report: &mut RebalanceReport,
) -> EngineResult<()> {
    report.chunks_checked += 1;
    let mut targets = inner.placement_ranking(id);
    targets.truncate(rec.shards.len());
    // As sets: a shard already on one of the rule's drives stays, whatever
    // its index (moving it would only trade places); a shard elsewhere goes
    // to a rule drive no shard of this chunk occupies. So no two shards
    // ever share a drive, and adding a node moves only its share.
    let occupied: std::collections::BTreeSet<usize> =
        rec.shards.iter().map(|s| usize::from(s.drive)).collect();
    let misplaced: Vec<usize> = (0..rec.shards.len())
        .filter(|&i| !targets.contains(&usize::from(rec.shards[i].drive)))
        .collect();
    if misplaced.is_empty() {
        return Ok(());
    }
    report.chunks_misplaced += 1;
    let free: Vec<usize> = targets
        .iter()
        .copied()
        .filter(|d| !occupied.contains(d))
        .collect();
    let ticket = inner.writers.register_writer();
    let mut moves = Vec::with_capacity(misplaced.len());
    // All shards rebuilt from the readable ones, once, if one is needed.
    let mut rebuilt: Option<Vec<Option<Vec<u8>>>> = None;
    for (i, to_drive) in misplaced.into_iter().zip(free) {
        let from = rec.shards[i];
        let (Some(source), Some(target)) = (
            inner.drives.stores.get(usize::from(from.drive)),
            inner.drives.stores.get(to_drive),
        ) else {
            report.shards_skipped += 1;
            continue;
        };
        if !inner.drives.usable(to_drive) {
            report.shards_skipped += 1;
            continue;
        }
        let from_drive = usize::from(from.drive);
        let read = if from.is_unwritten() {
            Err(crate::drive::ShardReadError::Missing(
                "never written".into(),
            ))
        } else if !inner.drives.usable(from_drive) {
            Err(crate::drive::ShardReadError::Missing(
                "drive marked faulty".into(),
            ))
        } else {
            source.read(&from, id, i as u8, rec.shard_len)
        };
        if let Err(crate::drive::ShardReadError::Io(e)) = &read {
            let e = crate::EngineError::io(
                "reading a shard to move",
                std::io::Error::new(e.kind(), e.to_string()),
            );
            inner.drives.health[from_drive].mark_faulty(from_drive, &e);
        }
        let payload = match read {
            Ok(p) => p,
            // Its drive is gone (a dead node being drained) or the copy is
            // bad: rebuild it from the other shards, verified, and move
            // the rebuilt shard (this is how a lost node's data reaches the
            // live ones).
            Err(e) => {
                if rebuilt.is_none() {
                    rebuilt = match crate::repair::rebuild_chunk_shards(inner, id, rec) {
                        Ok(all) => Some(all),
                        Err(rebuild) => {
                            tracing::warn!(chunk = %id, shard = i, error = %e, rebuild = %rebuild, "rebalance: shard unreadable and not rebuildable");
                            report.shards_skipped += 1;
                            continue;
                        }
                    };
                }
                match rebuilt
                    .as_ref()
                    .and_then(|all| all.get(i).cloned().flatten())
                {
                    Some(p) => {
                        report.shards_rebuilt += 1;
                        bytes::Bytes::from(p)
                    }
                    None => {
                        report.shards_skipped += 1;
                        continue;
                    }
                }
            }
        };
        let appended = target
            .append(id, i as u8, &payload, shard_checksum(&payload))
            .and_then(|(to, seq)| target.sync(seq).map(|()| to));
        match appended {
            Ok(to) => {
                report.bytes_moved += payload.len() as u64;
                moves.push(ShardMove {
                    index: i as u8,
                    from,
                    to,
                });
            }
            Err(e) => {
                inner.drives.health[to_drive].mark_faulty(to_drive, &e);
                report.shards_skipped += 1;
            }
        }
    }
    if moves.is_empty() {
        return Ok(());
    }
    crate::repair::commit_relocations(inner, id, &moves, &ticket)?;
    report.shards_moved += moves.len() as u64;
    inner.metrics.shards_rebalanced.inc_by(moves.len() as u64);
    Ok(())
}

impl Engine {
    /// Moves every shard that is not on the drive the placement rule picks
    /// now (see the module docs). One pass at a time: returns `None` without
    /// doing anything while another runs.
    /// The rebalancer's current or last state.
    pub fn rebalance_status(&self) -> RebalanceStatus {
        self.inner.jobs.rebalance.status()
    }

    pub async fn rebalance(&self, opts: RebalanceOptions) -> EngineResult<Option<RebalanceReport>> {
        let Ok(_one) = self.inner.jobs.rebalance.lock.try_lock() else {
            return Ok(None);
        };
        let started = Instant::now();
        let total = self.inner.meta.chunk_count();
        self.inner.jobs.rebalance.update(|s| {
            *s = RebalanceStatus {
                running: true,
                started_ms: crate::now_ms(),
                finished_ms: 0,
                chunks_total_estimate: total,
                report: RebalanceReport::default(),
            }
        });
        let mut report = RebalanceReport::default();
        let mut after: Option<ChunkId> = None;
        let result = loop {
            let inner = self.inner.clone();
            let mut part = report;
            let step = blocking(move || {
                let page = inner
                    .meta
                    .page_after::<Chunks>(after.as_ref(), REBALANCE_PAGE)?;
                for (id, rec) in &page {
                    rebalance_chunk(&inner, id, rec, &mut part)?;
                }
                Ok((page.last().map(|(id, _)| *id), part))
            })
            .await;
            let last = match step {
                Ok((last, part)) => {
                    report = part;
                    last
                }
                Err(e) => break Err(e),
            };
            self.inner.jobs.rebalance.update(|s| s.report = report);
            let Some(last) = last else {
                break Ok(report);
            };
            after = Some(last);
            if let Some(rate) = opts.bytes_per_sec.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(report.bytes_moved as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        };
        self.inner.jobs.rebalance.update(|s| {
            s.running = false;
            s.finished_ms = crate::now_ms();
            s.report = report;
        });
        match &result {
            Ok(r) => tracing::info!(report = ?r, "rebalance finished"),
            Err(e) => tracing::error!(error = %e, "rebalance stopped"),
        }
        result.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{dir_bytes, open_with, small_chunk_config, try_put, try_read};
    use crate::{EngineConfig, RebalanceOptions};

    /// Two drives added to a 6-drive node: a rebalance moves their share of
    /// the shards onto them, reads stay exact, and a second pass finds
    /// nothing misplaced.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn added_drives_get_their_share() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small_chunk_config(dir.path());
        let data: Vec<Vec<u8>> = (0..4)
            .map(|i| crate::test_support::pseudo_random(400_000 + i * 10_000, i as u64))
            .collect();
        {
            let e = open_with(cfg.clone(), 7);
            e.create_bucket("b").await.unwrap();
            for (i, d) in data.iter().enumerate() {
                try_put(&e, "b", &format!("k{i}"), d, 65_536).await.unwrap();
            }
            e.mark_clean_shutdown().unwrap();
        }
        let mut grown: EngineConfig = cfg;
        for i in 6..8 {
            grown
                .drive_dirs
                .push(dir.path().join("drives").join(i.to_string()));
        }
        let e = open_with(grown.clone(), 7);
        let first = e
            .rebalance(RebalanceOptions::default())
            .await
            .unwrap()
            .unwrap();
        assert!(first.chunks_checked > 0);
        assert!(first.shards_moved > 0, "{first:?}");
        assert_eq!(first.shards_skipped, 0, "{first:?}");
        for d in &grown.drive_dirs[6..] {
            assert!(dir_bytes(d) > 0, "nothing moved to {}", d.display());
        }
        for (i, d) in data.iter().enumerate() {
            assert_eq!(&try_read(&e, "b", &format!("k{i}"), None).await.unwrap(), d);
        }
        let second = e
            .rebalance(RebalanceOptions::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.chunks_misplaced, 0, "{second:?}");
        // Moves fill free rule drives only: no two shards of a chunk on one
        // drive, and only about the new drives' share moved (2 of 8).
        for (id, rec) in e
            .inner
            .meta
            .page_after::<crate::meta::Chunks>(None, 10_000)
            .unwrap()
        {
            let drives: std::collections::BTreeSet<u16> =
                rec.shards.iter().map(|s| s.drive).collect();
            assert_eq!(drives.len(), rec.shards.len(), "{id}: {:?}", rec.shards);
        }
        let total_shards = first.chunks_checked * 6;
        assert!(
            first.shards_moved * 2 < total_shards,
            "{} of {total_shards} shards moved",
            first.shards_moved
        );
        assert_eq!(e.rebalance_status().report, second);
    }
}
