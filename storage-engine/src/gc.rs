//! Space reclamation: garbage collection of unreferenced chunks, compaction
//! of segment files, and expiry of abandoned multipart uploads.
//!
//! One pass ([`Engine::collect_garbage`]):
//! 1. abort multipart uploads older than `upload_max_age` (their parts'
//!    references are released like an explicit abort);
//! 2. sweep the chunk records: a record whose refcount has been zero for at
//!    least `grace` is deleted, under the chunk's lock so a concurrent dedup
//!    either pins it first (and it survives) or finds it gone (and stores
//!    the chunk anew); meanwhile count the live bytes of every segment;
//! 3. compact: a sealed segment whose live share is below
//!    `compact_below_live_ratio` has its live shards (records that still
//!    point at them) appended to the drive's active segment and fsynced, the
//!    records are pointed at the new places (conditional merge, WAL synced),
//!    and only then is the old file deleted (directory fsynced).
//!
//! Invariant: nothing a writer appended but has not committed yet is ever
//! compacted away. This node's writers are kept clear of in two ways
//! (`WriterRegistry` in engine.rs): a segment an object or part body
//! (or part copy) appended to is *claimed* by it until its request ends,
//! and is skipped; and a segment modified at or after the compaction
//! horizon (an append in progress, whose segment is not known yet, or a
//! repair/rebalance/compaction writer, which count by time) is skipped too.
//! A body writer counts only from its first append, so a client that sent
//! headers and stalled holds nothing back, and one that stalled after some
//! chunks holds back only the segments it wrote to — not the drive — until
//! the body timeouts end its request. Other nodes' writers are known only
//! by time: on a cluster every segment modified after the oldest write of
//! any other node (`cluster_horizon`) is skipped, and each node compacts
//! only its own drives.

use std::collections::HashMap;
use std::time::Duration;

use cairn_dedup::ChunkId;
use cairn_erasure::shard_checksum;

use crate::drive::RECORD_HEADER_BYTES;
use crate::engine::{Engine, Inner, blocking};
use crate::error::EngineResult;
use crate::meta::{Chunks, KeyRange, System, Uploads};
use crate::records::{ChunkRefDelta, ShardLocation, ShardMove};

/// Chunk records read per sweep step.
const SWEEP_PAGE: usize = 1024;
/// Relocations written per metadata batch during compaction.
const RELOCATE_BATCH: usize = 1024;

/// What one garbage-collection pass may do.
#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// How long a chunk must have been unreferenced before it is deleted.
    pub grace: Duration,
    /// Sealed segments with less than this share of live bytes are compacted.
    pub compact_below_live_ratio: f64,
    /// Incomplete multipart uploads older than this are aborted (`None`: never).
    pub upload_max_age: Option<Duration>,
    /// A segment is only compacted if it was last modified this long before
    /// the oldest write in flight started: slack for the coarse clock the
    /// filesystem stamps modification times with.
    pub segment_settle: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(3600),
            compact_below_live_ratio: 0.5,
            upload_max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            segment_settle: Duration::from_secs(2),
        }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub uploads_expired: u64,
    pub chunks_deleted: u64,
    pub chunks_live: u64,
    pub segments_compacted: u64,
    pub shards_moved: u64,
    /// Segment bytes deleted minus live bytes re-written.
    pub bytes_reclaimed: u64,
}

impl Engine {
    /// Runs one garbage-collection pass (see the module docs).
    pub async fn collect_garbage(&self, opts: GcOptions) -> EngineResult<GcReport> {
        let _one_pass = self.inner.jobs.gc.lock().await;
        let mut report = GcReport::default();
        if let Some(age) = opts.upload_max_age {
            report.uploads_expired = self.expire_uploads(age).await?;
        }
        let inner = self.inner.clone();
        let (deleted, live_chunks, live) =
            blocking(move || sweep_chunks(&inner, opts.grace)).await?;
        report.chunks_deleted = deleted;
        report.chunks_live = live_chunks;
        let live_total: u64 = live.values().flat_map(|segs| segs.values()).sum();
        // The writes in flight that compaction must keep clear of: this
        // node's, and on a cluster every node's (see `cluster_horizon`).
        let horizon = if self.inner.meta.is_replica() {
            match self.inner.meta.read_barrier().await {
                Ok(()) => {
                    let inner = self.inner.clone();
                    blocking(move || cluster_horizon(&inner)).await?
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no compaction: cannot catch up with the cluster");
                    None
                }
            }
        } else {
            Some(self.inner.writers.compaction_horizon_ms())
        };
        // Only this node's own drives (each node compacts its own).
        let drives: Vec<usize> = (0..self.inner.drives.stores.len())
            .filter(|d| horizon.is_some() && self.inner.drives.stores[*d].local_dir().is_some())
            .collect();
        for drive in drives {
            let inner = self.inner.clone();
            let live = live.get(&drive).cloned().unwrap_or_default();
            let horizon = horizon.unwrap_or(0);
            let (segments, moved, reclaimed) =
                blocking(move || compact_drive(&inner, drive, &live, &opts, horizon)).await?;
            report.segments_compacted += segments;
            report.shards_moved += moved;
            report.bytes_reclaimed += reclaimed;
        }
        let m = &self.inner.metrics;
        let on_drives: u64 = self
            .inner
            .drives
            .stores
            .iter()
            // This node's drives only: a remote drive's calls block (and
            // that node reports its own).
            .filter(|d| d.local_dir().is_some())
            .filter_map(|d| d.segments().ok())
            .flatten()
            .map(|s| {
                s.len_bytes
                    .saturating_sub(crate::drive::SEGMENT_HEADER_BYTES)
            })
            .sum();
        m.gc_reclaimable_bytes
            .set(i64::try_from(on_drives.saturating_sub(live_total)).unwrap_or(i64::MAX));
        m.gc_uploads_expired.inc_by(report.uploads_expired);
        m.gc_chunks_deleted.inc_by(report.chunks_deleted);
        m.gc_segments_compacted.inc_by(report.segments_compacted);
        m.gc_bytes_reclaimed.inc_by(report.bytes_reclaimed);
        if report != GcReport::default() {
            tracing::info!(?report, "garbage collection pass");
        }
        Ok(report)
    }

    async fn expire_uploads(&self, max_age: Duration) -> EngineResult<u64> {
        let cutoff = crate::now_ms().saturating_sub(max_age.as_millis() as u64);
        let mut after = None;
        let mut expired = 0;
        loop {
            let inner = self.inner.clone();
            let page =
                blocking(move || inner.meta.page_after::<Uploads>(after, SWEEP_PAGE)).await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = Some(*last);
            for (id, rec) in page {
                if rec.created_ms < cutoff {
                    match self.abort_upload_by_id(id).await {
                        Ok(()) => expired += 1,
                        // Completed or aborted meanwhile.
                        Err(crate::EngineError::NoSuchUpload) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(expired)
    }
}

/// Live bytes per segment of one drive.
type LiveBytes = HashMap<u64, u64>;

/// Deletes expired unreferenced chunk records; returns (deleted, live
/// records, live bytes per drive and segment).
fn sweep_chunks(
    inner: &Inner,
    grace: Duration,
) -> EngineResult<(u64, u64, HashMap<usize, LiveBytes>)> {
    let now = crate::now_ms();
    let grace_ms = grace.as_millis() as u64;
    let mut live: HashMap<usize, LiveBytes> = HashMap::new();
    let mut deleted = 0u64;
    let mut live_chunks = 0u64;
    let mut after: Option<ChunkId> = None;
    loop {
        let page = inner
            .meta
            .page_after::<Chunks>(after.as_ref(), SWEEP_PAGE)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(*last);
        for (id, rec) in page {
            let expired =
                |zero_since: u64| zero_since != 0 && now.saturating_sub(zero_since) >= grace_ms;
            if rec.refcount == 0 && expired(rec.zero_since_ms) {
                let _g = inner.chunks.lock(&id);
                // Re-read under the lock: a dedup may have pinned it. The
                // guard covers pins taken elsewhere (another node of a
                // cluster): the delete applies only to the record read here.
                let (current, unchanged) = inner.meta.get_guarded::<Chunks>(&id)?;
                if let Some(current) = current
                    && current.refcount == 0
                    && expired(current.zero_since_ms)
                {
                    let mut batch = inner.meta.batch();
                    batch.guard(unchanged);
                    batch.delete::<Chunks>(&id);
                    match inner.meta.write_unsynced(batch) {
                        Ok(()) => {
                            deleted += 1;
                            continue;
                        }
                        // Pinned meanwhile: it lives.
                        Err(crate::EngineError::GuardFailed(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            live_chunks += 1;
            let shard_bytes = RECORD_HEADER_BYTES as u64 + u64::from(rec.shard_len);
            for loc in &rec.shards {
                if loc.node == 0 {
                    *live
                        .entry(usize::from(loc.drive))
                        .or_default()
                        .entry(loc.segment)
                        .or_default() += shard_bytes;
                }
            }
        }
    }
    // Deletions must be durable before compaction drops the shards they
    // pointed at: a record resurrected by a crash would point at nothing.
    inner.meta.sync_wal()?;
    Ok((deleted, live_chunks, live))
}

/// `system` names under which each cluster node publishes the start of its
/// oldest write in flight and when it published it (two u64 LE ms, by its
/// clock).
const WRITERS_PREFIX: &str = "writers/";

/// On a cluster: the start of the oldest write in flight on any other node
/// (and this node's own compaction horizon), or `None` if some node never
/// published one (then nothing is compacted).
///
/// Each node publishes `min(its oldest writer's start, now)` through the
/// log. Any writer it starts later starts after that moment, so a report is
/// a lower bound for as long as it is the latest — a stale one (a node
/// down or cut off) only holds compaction back. Read after a read barrier,
/// the reports are applied here together with every commit their nodes made
/// before them, so no committed record naming a shard is missed. Writers
/// whose commit outcome was unknown keep counting for an hour
/// (`UNKNOWN_OUTCOME_LINGER_MS`). Node clocks must agree within
/// `GcOptions::segment_settle` (the server uses 60 s on a cluster).
///
/// This node's own report is required but its value not used: its own
/// writers are known here exactly (claimed segments, appends in progress),
/// and only this node compacts its drives; the report is for the others.
fn cluster_horizon(inner: &Inner) -> EngineResult<Option<u64>> {
    // Every node this one knows of must have reported, and every report
    // counts, also from nodes this node's configuration does not list yet
    // (a node being added while the others restart).
    let mut nodes: std::collections::BTreeSet<u16> =
        inner.drives.stores.iter().map(|d| d.node()).collect();
    for name in inner.meta.keys::<System>(
        KeyRange::between(WRITERS_PREFIX.as_bytes(), b"writers0"),
        65_536,
    )? {
        if let Ok(node) = name[WRITERS_PREFIX.len()..].parse::<u16>() {
            nodes.insert(node);
        }
    }
    let now = crate::now_ms();
    let own = inner
        .drives
        .stores
        .iter()
        .find(|d| d.local_dir().is_some())
        .map(|d| d.node());
    let mut horizon = inner.writers.compaction_horizon_ms();
    for node in nodes {
        // (oldest writer's start, when published).
        let reported = inner
            .meta
            .get::<System>(&format!("{WRITERS_PREFIX}{node}"))?
            .and_then(|v| {
                let start = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
                let published = u64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
                Some((start, published))
            });
        // A drained node that has not published for longer than any commit
        // can linger is gone for good: it must not hold compaction back for
        // ever. (A drained node still running publishes every 5 s, so its
        // long writes keep counting.)
        let drained = inner.config.placement_excluded_nodes.contains(&node);
        let gone = |published: u64| {
            now.saturating_sub(published) > 2 * crate::parts::writers::UNKNOWN_OUTCOME_LINGER_MS
        };
        match reported {
            Some((_, published)) if drained && gone(published) => {}
            // Our own writers are in `compaction_horizon_ms` and the claims.
            Some(_) if Some(node) == own => {}
            Some((start, _)) => horizon = horizon.min(start),
            None if drained => {}
            None => return Ok(None),
        }
    }
    Ok(Some(horizon))
}

impl Engine {
    /// On a cluster node: publishes through the log the start of this
    /// node's oldest write in flight (or now), which every node's compaction
    /// keeps clear of (see `cluster_horizon`). Call every few seconds.
    pub async fn publish_writer_horizon(&self) -> EngineResult<()> {
        let inner = self.inner.clone();
        blocking(move || {
            let Some(node) = inner
                .drives
                .stores
                .iter()
                .find(|d| d.local_dir().is_some())
                .map(|d| d.node())
            else {
                return Ok(());
            };
            let horizon = inner.writers.oldest_writer_ms();
            let mut value = horizon.to_le_bytes().to_vec();
            value.extend_from_slice(&crate::now_ms().to_le_bytes());
            let mut b = inner.meta.batch();
            b.put::<System>(&format!("{WRITERS_PREFIX}{node}"), &value);
            inner.meta.write(b)
        })
        .await
    }
}

/// Compacts the sparse sealed segments of one drive; returns (segments
/// compacted, shards moved, bytes reclaimed).
fn compact_drive(
    inner: &std::sync::Arc<Inner>,
    drive: usize,
    live: &LiveBytes,
    opts: &GcOptions,
    horizon_ms: u64,
) -> EngineResult<(u64, u64, u64)> {
    let below_ratio = opts.compact_below_live_ratio;
    let Some(store) = inner.drives.stores.get(drive).cloned() else {
        return Ok((0, 0, 0));
    };
    // Registered for the whole pass: segments this compaction appends to are
    // then themselves too recent to be compacted by it.
    let ticket = inner.writers.register_writer();
    let settled_before = horizon_ms.saturating_sub(opts.segment_settle.as_millis() as u64);
    // A snapshot import (a cluster follower far behind) empties and refills
    // the metadata: a record missing meanwhile is not an orphan. Any import
    // that starts or runs during a segment's pass cancels its deletion.
    let generation = inner.meta.import_generation();
    let imported_meanwhile = || {
        let now = inner.meta.import_generation();
        generation % 2 == 1 || now != generation
    };
    let mut compacted = 0;
    let mut moved_total = 0;
    let mut reclaimed = 0u64;
    // A segment a body writer in flight appended to may hold its shards,
    // not referenced until its commit: left alone (see the module docs).
    let claimed = |segment: u64| inner.writers.segment_claimed(drive, segment);
    for seg in store.segments()? {
        if seg.modified_ms >= settled_before || claimed(seg.id) {
            continue;
        }
        let used = seg
            .len_bytes
            .saturating_sub(crate::drive::SEGMENT_HEADER_BYTES);
        let live_bytes = live.get(&seg.id).copied().unwrap_or(0);
        if used > 0 && (live_bytes as f64) >= below_ratio * used as f64 {
            continue;
        }
        // A mostly dead active segment that nobody appended to since the
        // oldest write in flight started is sealed and compacted too, so a
        // quiet server gives space back without waiting for it to fill.
        if seg.active {
            if used == 0 || !store.seal_active(seg.id) {
                continue;
            }
            // An append may have landed between the listing and the seal:
            // look again now that no more can. Its writer has claimed the
            // segment by now, or its append began after the horizon was
            // taken (and the segment's time shows it).
            let now = store.segments()?.into_iter().find(|s| s.id == seg.id);
            if now.is_none_or(|s| s.modified_ms >= settled_before) || claimed(seg.id) {
                continue;
            }
        }
        let drive_index = store.index();
        let mut moves: Vec<(ChunkId, ShardMove)> = Vec::new();
        let mut last_seq = 0u64;
        let mut rewritten = 0u64;
        for shard in store.scan_segment(seg.id)? {
            let from = ShardLocation {
                node: 0,
                drive: drive_index,
                segment: seg.id,
                offset: shard.offset,
            };
            let Some(rec) = inner.meta.get::<Chunks>(&shard.chunk)? else {
                continue;
            };
            if rec.shards.get(usize::from(shard.shard_index)) != Some(&from) {
                continue; // superseded or orphaned
            }
            match store.read(&from, &shard.chunk, shard.shard_index, shard.payload_len) {
                Ok(payload) => {
                    let (to, seq) = store.append(
                        &shard.chunk,
                        shard.shard_index,
                        &payload,
                        shard_checksum(&payload),
                    )?;
                    last_seq = last_seq.max(seq);
                    rewritten += (RECORD_HEADER_BYTES + payload.len()) as u64;
                    moves.push((
                        shard.chunk,
                        ShardMove {
                            index: shard.shard_index,
                            from,
                            to,
                        },
                    ));
                }
                Err(e) => {
                    // Already unreadable: nothing to save here; reads
                    // reconstruct it from the other shards.
                    tracing::warn!(drive = drive_index, segment = seg.id, chunk = %shard.chunk, error = %e, "skipping unreadable shard during compaction");
                }
            }
        }
        if last_seq > 0 {
            store.sync(last_seq)?;
        }
        for group in moves.chunks(RELOCATE_BATCH) {
            let mut batch = inner.meta.batch();
            for (id, m) in group {
                batch.merge::<Chunks>(
                    id,
                    &ChunkRefDelta {
                        relocate: Some(*m),
                        ..ChunkRefDelta::refs(0)
                    },
                );
            }
            inner
                .meta
                .write(batch)
                .inspect_err(|e| ticket.linger_if_unknown(e))?;
        }
        if imported_meanwhile() {
            tracing::warn!(
                drive = drive_index,
                "compaction stopped: a metadata snapshot was installed meanwhile"
            );
            break;
        }
        // No writer can have claimed it since the checks above: it is
        // sealed, and any append to it in progress then would have made it
        // too recent. Checked anyway: a claimed segment is never deleted.
        let late_claim = claimed(seg.id);
        debug_assert!(
            !late_claim,
            "segment {} of drive {drive} was claimed by a writer during its compaction",
            seg.id
        );
        if late_claim {
            continue;
        }
        let removed = store.remove_segment(seg.id)?;
        compacted += 1;
        moved_total += moves.len() as u64;
        reclaimed += removed.saturating_sub(rewritten);
    }
    Ok((compacted, moved_total, reclaimed))
}
