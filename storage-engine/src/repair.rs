//! Finding and fixing bad shards: read-repair, the scrubber, and healing.
//!
//! Every path ends in [`repair_chunk`]: with at least k intact shards, the
//! missing or corrupt ones are recomputed (Reed–Solomon), the chunk is
//! decoded and verified end to end (GCM tag, keyed BLAKE3 id) *before*
//! anything is written, each rebuilt shard is appended to its drive and
//! fsynced, and the record is pointed at the new copy (conditional merge,
//! WAL synced). A repair never writes bytes it has not verified.
//!
//! * read-repair: a GET that had to reconstruct a chunk schedules its repair
//!   in the background (bounded; skipped when busy — the scrubber catches up);
//! * scrub ([`Engine::scrub`]): every shard of every chunk read and verified,
//!   at a bytes/s limit, bad ones repaired;
//! * heal: a drive lost and replaced by an empty directory is a drive whose
//!   shards are all missing, so a scrub rebuilds them onto it. The engine
//!   starts one itself when it opens with a replaced drive
//!   ([`Engine::start_heal`]); a drive stays *replaced* until a scrub that
//!   started after it was found completes with every bad shard rebuilt.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_dedup::ChunkId;
use cairn_erasure::shard_checksum;

use crate::drive::ShardReadError;
use crate::engine::{Engine, Inner, blocking};
use crate::error::{EngineError, EngineResult};
use crate::meta::Chunks;
use crate::parts::jobs::{ScrubReport, ScrubStatus};
use crate::records::{ChunkRecord, ChunkRefDelta, ShardMove};

/// Chunk records checked per blocking step of a scrub.
const SCRUB_PAGE: usize = 64;
/// Read-repairs running at once; more are skipped (the scrubber finds them).
pub(crate) const READ_REPAIRS_MAX: usize = 2;

/// How fast a scrub may read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScrubOptions {
    /// Shard bytes read per second at most (`None`: as fast as possible).
    pub bytes_per_sec: Option<u64>,
}

/// The shards of one chunk after reading every one of them.
struct CheckedChunk {
    shards: Vec<Option<Bytes>>,
    missing: Vec<usize>,
    corrupt: Vec<usize>,
    bytes_read: u64,
}

fn check_chunk(inner: &Inner, id: &ChunkId, rec: &ChunkRecord) -> CheckedChunk {
    let mut out = CheckedChunk {
        shards: vec![None; rec.shards.len()],
        missing: Vec::new(),
        corrupt: Vec::new(),
        bytes_read: 0,
    };
    for (i, loc) in rec.shards.iter().enumerate() {
        let result = match inner.drives.stores.get(usize::from(loc.drive)) {
            _ if loc.is_unwritten() => Err(ShardReadError::Missing("never written".into())),
            Some(d) if loc.node == 0 => d.read(loc, id, i as u8, rec.shard_len),
            _ => Err(ShardReadError::Missing("no such drive".into())),
        };
        match result {
            Ok(b) => {
                out.bytes_read += b.len() as u64;
                out.shards[i] = Some(b);
            }
            Err(ShardReadError::Missing(_)) => out.missing.push(i),
            Err(_) => out.corrupt.push(i),
        }
    }
    out
}

/// Every shard of a chunk, the missing ones (`None` in `shards`)
/// recomputed with Reed–Solomon, after the whole chunk was decoded and
/// verified end to end (GCM tag, keyed BLAKE3 id): nothing derived from bad
/// bytes ever leaves here.
pub(crate) fn rebuild_verified(
    inner: &Inner,
    id: &ChunkId,
    rec: &ChunkRecord,
    shards: Vec<Option<Bytes>>,
) -> EngineResult<Vec<Option<Vec<u8>>>> {
    let coder = inner.chunks.coder(rec.data_shards, rec.parity_shards)?;
    let mut work: Vec<Option<Vec<u8>>> =
        shards.into_iter().map(|s| s.map(|b| b.to_vec())).collect();
    coder
        .reconstruct_all(&mut work)
        .map_err(|e| EngineError::ChunkUnavailable {
            chunk: *id,
            reason: format!("cannot rebuild: {e}"),
        })?;
    let k = usize::from(rec.data_shards);
    let mut sealed = Vec::with_capacity(k * rec.shard_len as usize);
    for s in work.iter().take(k) {
        sealed.extend_from_slice(s.as_deref().unwrap_or_default());
    }
    sealed.truncate(rec.sealed_len as usize);
    inner
        .chunks
        .codec
        .open(id, &sealed, rec.compressed, rec.plain_len)?;
    Ok(work)
}

/// The shards of a chunk rebuilt from whatever can be read of it (see
/// [`rebuild_verified`]). Drives marked faulty are not asked (a dead node
/// would cost a connect timeout per shard); one that fails with an I/O
/// error is marked faulty.
pub(crate) fn rebuild_chunk_shards(
    inner: &Inner,
    id: &ChunkId,
    rec: &ChunkRecord,
) -> EngineResult<Vec<Option<Vec<u8>>>> {
    let mut shards = vec![None; rec.shards.len()];
    for (i, loc) in rec.shards.iter().enumerate() {
        let d = usize::from(loc.drive);
        if loc.is_unwritten() || loc.node != 0 || !inner.drives.usable(d) {
            continue;
        }
        let Some(drive) = inner.drives.stores.get(d) else {
            continue;
        };
        match drive.read(loc, id, i as u8, rec.shard_len) {
            Ok(b) => shards[i] = Some(b),
            Err(ShardReadError::Io(e)) => {
                let e = EngineError::io(format!("reading a shard of {id}"), e);
                inner.drives.health[d].mark_faulty(d, &e);
            }
            Err(_) => {}
        }
    }
    rebuild_verified(inner, id, rec, shards)
}

/// Rebuilds shards `bad` of a chunk from the intact ones in `shards` and
/// stores them (see the module docs). Returns how many were rewritten.
fn repair_chunk(
    inner: &Arc<Inner>,
    id: &ChunkId,
    rec: &ChunkRecord,
    shards: Vec<Option<Bytes>>,
    bad: &[usize],
) -> EngineResult<u64> {
    if bad.is_empty() {
        return Ok(0);
    }
    let work = rebuild_verified(inner, id, rec, shards)?;
    let ticket = inner.writers.register_writer();
    let mut moves = Vec::with_capacity(bad.len());
    for &i in bad {
        let (Some(from), Some(Some(payload))) = (rec.shards.get(i), work.get(i)) else {
            continue;
        };
        let Some(drive) = inner.drives.stores.get(usize::from(from.drive)) else {
            continue;
        };
        if !inner.drives.usable(usize::from(from.drive)) {
            continue; // rebuilt once the drive is back
        }
        let (to, seq) = drive.append(id, i as u8, payload, shard_checksum(payload))?;
        drive.sync(seq)?;
        moves.push(ShardMove {
            index: i as u8,
            from: *from,
            to,
        });
    }
    commit_relocations(inner, id, &moves, &ticket)?;
    inner.metrics.shards_repaired.inc_by(moves.len() as u64);
    Ok(moves.len() as u64)
}

/// Points chunk `id`'s record at the new copies in `moves` (conditional
/// relocations: each applies only if the slot still names the old place),
/// in one synced or replicated write. The new copies are durable already.
/// If the outcome is unknown, `ticket` lingers: the relocations may still
/// apply, so their copies stay safe from compaction meanwhile.
pub(crate) fn commit_relocations(
    inner: &Inner,
    id: &ChunkId,
    moves: &[ShardMove],
    ticket: &crate::parts::writers::WriterTicket,
) -> EngineResult<()> {
    let mut batch = inner.meta.batch();
    for m in moves {
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
        .inspect_err(|e| ticket.linger_if_unknown(e))
}

/// Checks one chunk completely and repairs what is bad; adds to `report`.
fn scrub_chunk(inner: &Arc<Inner>, id: &ChunkId, rec: &ChunkRecord, report: &mut ScrubReport) {
    let checked = check_chunk(inner, id, rec);
    report.chunks_checked += 1;
    report.bytes_read += checked.bytes_read;
    report.shards_verified += rec.shards.len() as u64;
    report.shards_missing += checked.missing.len() as u64;
    report.shards_corrupt += checked.corrupt.len() as u64;
    let m = &inner.metrics;
    m.scrub_shards_verified.inc_by(rec.shards.len() as u64);
    m.scrub_shards_bad
        .with_label_values(&["missing"])
        .inc_by(checked.missing.len() as u64);
    m.scrub_shards_bad
        .with_label_values(&["corrupt"])
        .inc_by(checked.corrupt.len() as u64);
    let mut bad = checked.missing.clone();
    bad.extend_from_slice(&checked.corrupt);
    if bad.is_empty() {
        return;
    }
    let shard_bytes = i64::from(rec.shard_len);
    m.heal_backlog_bytes.add(bad.len() as i64 * shard_bytes);
    match repair_chunk(inner, id, rec, checked.shards, &bad) {
        Ok(n) => {
            report.shards_repaired += n;
            m.heal_backlog_bytes.sub(n as i64 * shard_bytes);
        }
        Err(e) => {
            report.chunks_unrecoverable += 1;
            m.chunks_unrecoverable.inc();
            tracing::error!(chunk = %id, error = %e, "scrub could not repair chunk");
        }
    }
}

impl Inner {
    /// After a read had to reconstruct `id`: repair it in the background,
    /// unless enough repairs are already running.
    pub(crate) fn schedule_read_repair(self: &Arc<Self>, id: ChunkId) {
        let running = self.jobs.read_repairs.fetch_add(1, Ordering::AcqRel);
        if running >= READ_REPAIRS_MAX {
            self.jobs.read_repairs.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.jobs.read_repairs.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        let inner = self.clone();
        handle.spawn_blocking(move || {
            if let Ok(Some(rec)) = inner.meta.get::<Chunks>(&id) {
                let mut report = ScrubReport::default();
                scrub_chunk(&inner, &id, &rec, &mut report);
                if report.shards_repaired > 0 {
                    tracing::info!(chunk = %id, shards = report.shards_repaired, "read-repair rewrote shards");
                }
            }
            inner.jobs.read_repairs.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

impl Engine {
    /// The scrubber's current or last state.
    pub fn scrub_status(&self) -> ScrubStatus {
        self.inner.jobs.scrub.status()
    }

    /// Verifies every shard of every chunk and repairs what is missing or
    /// corrupt (this is also how a replaced drive is healed). One scrub at a
    /// time: returns `None` without doing anything while another runs.
    /// While the heal started at open runs, waits for it instead, then scrubs.
    pub async fn scrub(&self, opts: ScrubOptions) -> EngineResult<Option<ScrubReport>> {
        let one = match self.inner.jobs.scrub.lock.try_lock() {
            Ok(g) => g,
            Err(_)
                if self
                    .inner
                    .drives
                    .startup_heal
                    .running
                    .load(Ordering::Acquire) =>
            {
                self.inner.jobs.scrub.lock.lock().await
            }
            Err(_) => return Ok(None),
        };
        self.scrub_locked(opts, one, false)
            .await
            .map(|(report, _)| Some(report))
    }

    /// Starts healing the replaced drives in the background (called by
    /// `open`): after [`crate::EngineConfig::heal_start_delay`], a full
    /// scrub at full speed (after any scrub already running; one that
    /// completes meanwhile heals them as well). Without a Tokio runtime it
    /// only logs that `cairn admin heal` is due.
    pub(crate) fn start_heal(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("replaced drives need a heal: run `cairn admin heal`");
            return;
        };
        let running = self.inner.drives.startup_heal.running.clone();
        running.store(true, Ordering::Release);
        let engine = self.clone();
        handle.spawn(async move {
            {
                let engine = engine;
                let stop = &engine.inner.drives.startup_heal.stop;
                let due = Instant::now() + engine.inner.config.heal_start_delay;
                while Instant::now() < due && !stop.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let one = engine.inner.jobs.scrub.lock.lock().await;
                if !stop.load(Ordering::Acquire) && !engine.inner.drives.needing_heal().is_empty() {
                    tracing::info!(drives = ?engine.inner.drives.needing_heal(), "healing replaced drives");
                    match engine.scrub_locked(ScrubOptions::default(), one, true).await {
                        Ok((_, false)) => tracing::info!("heal stopped (shutdown); it resumes at the next start"),
                        Ok((r, true)) if engine.inner.drives.needing_heal().is_empty() => {
                            tracing::info!(shards_repaired = r.shards_repaired, "heal finished");
                        }
                        Ok((r, true)) => {
                            tracing::error!(report = ?r, "heal could not rebuild every shard; run `cairn admin heal` once the cause is fixed");
                        }
                        Err(e) => tracing::error!(error = %e, "heal failed"),
                    }
                }
            }
            // Only now: the engine handle above is dropped.
            running.store(false, Ordering::Release);
        });
    }

    /// A full scrub, holding the scrub lock `_one`. Returns its report and
    /// whether it went through every chunk (a heal started at open stops
    /// early when asked to, `stoppable`). One that went through every chunk
    /// with none unrecoverable completes the heal of the drives that were
    /// replaced when it started and are still usable: every bad shard on a
    /// usable drive is either rebuilt or its chunk counted unrecoverable
    /// (`repair_chunk` skips only unusable drives).
    async fn scrub_locked(
        &self,
        opts: ScrubOptions,
        _one: tokio::sync::MutexGuard<'_, ()>,
        stoppable: bool,
    ) -> EngineResult<(ScrubReport, bool)> {
        let healing = self.inner.drives.needing_heal();
        let started = Instant::now();
        let total = self.inner.meta.chunk_count();
        // The backlog is re-measured by this scrub.
        self.inner.metrics.heal_backlog_bytes.set(0);
        self.inner.jobs.scrub.update(|s| {
            *s = ScrubStatus {
                running: true,
                started_ms: crate::now_ms(),
                finished_ms: 0,
                chunks_total_estimate: total,
                report: ScrubReport::default(),
            }
        });
        let mut report = ScrubReport::default();
        let mut after: Option<ChunkId> = None;
        let result = loop {
            let inner = self.inner.clone();
            let step = blocking(move || {
                let page = inner
                    .meta
                    .page_after::<Chunks>(after.as_ref(), SCRUB_PAGE)?;
                let mut part = ScrubReport::default();
                for (id, rec) in &page {
                    scrub_chunk(&inner, id, rec, &mut part);
                }
                Ok((page.last().map(|(id, _)| *id), part))
            })
            .await;
            let (last, part) = match step {
                Ok(s) => s,
                Err(e) => break Err(e),
            };
            add(&mut report, &part);
            self.inner.jobs.scrub.update(|s| s.report = report);
            let Some(last) = last else {
                break Ok((report, true));
            };
            if stoppable && self.inner.drives.startup_heal.stop.load(Ordering::Acquire) {
                break Ok((report, false));
            }
            after = Some(last);
            if let Some(rate) = opts.bytes_per_sec.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(report.bytes_read as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        };
        self.inner.jobs.scrub.update(|s| {
            s.running = false;
            s.finished_ms = crate::now_ms();
            s.report = report;
        });
        if let Ok((r, complete)) = &result {
            tracing::info!(report = ?r, complete, "scrub finished");
            if *complete && r.chunks_unrecoverable == 0 {
                for d in healing {
                    if self.inner.drives.usable(d) {
                        self.inner.drives.healed(&self.inner.meta, d)?;
                    }
                }
            }
        }
        result
    }

    /// Waits until no read-repair is running, and stops the heal started at
    /// open after its current page (it resumes at the next start). Before
    /// a clean shutdown, or before opening the same data directory again.
    pub async fn wait_for_background_repairs(&self) {
        self.inner
            .drives
            .startup_heal
            .stop
            .store(true, Ordering::Release);
        while self.inner.jobs.read_repairs.load(Ordering::Acquire) > 0
            || self
                .inner
                .drives
                .startup_heal
                .running
                .load(Ordering::Acquire)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn add(total: &mut ScrubReport, part: &ScrubReport) {
    total.chunks_checked += part.chunks_checked;
    total.shards_verified += part.shards_verified;
    total.shards_missing += part.shards_missing;
    total.shards_corrupt += part.shards_corrupt;
    total.shards_repaired += part.shards_repaired;
    total.chunks_unrecoverable += part.chunks_unrecoverable;
    total.bytes_read += part.bytes_read;
}
