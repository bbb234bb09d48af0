//! Drives: where shards are stored.
//!
//! [`ShardStore`] is the one interface the engine uses; [`LocalDrive`] keeps
//! shards in append-only *segment files* in a directory (one directory per
//! physical disk in a real deployment). A remote node is another
//! implementation of the same trait (cluster issue).
//!
//! ## Segment file format (version 1)
//! `<drive>/segments/<segment id as 16 hex digits>.seg`:
//! ```text
//! header  (32 bytes): "CAIRNSEG" | format u32 = 1 | drive index u16 | 0u16 | segment id u64 | created unix ms u64
//! records (repeated): "CSHD" | version u8 = 1 | shard index u8 | 0u16 | chunk id [32]
//!                     | payload length u32 | CRC-64/NVME of payload u64 | payload
//! ```
//! Records are appended under the drive's append lock, so a segment is a
//! gap-free sequence of records, possibly followed by one torn record after a
//! crash. Metadata (`ChunkRecord`) is the index: a record nobody references is
//! garbage for compaction, never something a reader finds by scanning.
//!
//! A drive directory also holds its identity marker (`cairn-drive`, see
//! `drive_identity.rs`); this module never reads or writes it.
//!
//! ## Durability (group commit)
//! `append` returns a completion sequence number; `sync(seq)` returns once an
//! fsync that started after that append completed has finished. Concurrent
//! callers share one fsync: whoever holds the sync lock fsyncs every segment
//! dirtied so far and publishes the sequence it covered. A new segment file is
//! fsynced together with its directory before any record is put in it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use cairn_dedup::ChunkId;
use cairn_erasure::{ShardChecksum, shard_checksum};

use crate::error::{EngineError, EngineResult};
use crate::records::ShardLocation;

/// A drive's metric handles (made by `EngineMetrics::drive`, cloned into
/// each [`LocalDrive`]): the drive counts its own bytes and fsyncs.
#[derive(Clone, Debug)]
pub struct DriveMetrics {
    pub bytes_written: prometheus::IntCounter,
    pub bytes_read: prometheus::IntCounter,
    pub fsync_seconds: prometheus::Histogram,
}

const SEGMENT_MAGIC: &[u8; 8] = b"CAIRNSEG";
const SEGMENT_FORMAT_V1: u32 = 1;
pub const SEGMENT_HEADER_BYTES: u64 = 32;
const RECORD_MAGIC: &[u8; 4] = b"CSHD";
const RECORD_FORMAT_V1: u8 = 1;
pub const RECORD_HEADER_BYTES: usize = 52;
/// Open read handles kept per drive; the map is cleared when it grows past this.
const READ_HANDLES_MAX: usize = 128;

/// Why a shard could not be read. Every variant means "use another shard";
/// none of them is fatal for a read while k shards remain.
#[derive(Debug, thiserror::Error)]
pub enum ShardReadError {
    #[error("shard is missing: {0}")]
    Missing(String),
    #[error("shard is corrupt: {0}")]
    Corrupt(String),
    #[error("drive I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// One segment file of a drive, as compaction sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: u64,
    pub len_bytes: u64,
    /// Last modification (unix ms): the time of its last append.
    pub modified_ms: u64,
    /// The segment currently receiving appends (never compacted).
    pub active: bool,
}

/// One record header found by scanning a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedShard {
    pub offset: u64,
    pub chunk: ChunkId,
    pub shard_index: u8,
    pub payload_len: u32,
}

/// What the engine needs from a place that stores shards.
/// Calls block: the engine runs them on the blocking thread pool.
pub trait ShardStore: Send + Sync + std::fmt::Debug {
    /// The drive's id (the `drive` of a [`ShardLocation`]): its index in the
    /// engine's drive list — on a cluster, in the cluster-wide list.
    fn index(&self) -> u16;
    /// The cluster node that holds the drive (0 on a single node).
    fn node(&self) -> u16 {
        0
    }
    /// Where it is, for status and messages (a path or a peer's address).
    fn describe(&self) -> String {
        format!("drive {}", self.index())
    }
    /// Whether it is there at all (a local drive's directory exists). A
    /// remote drive counts as present; failed calls mark it faulty.
    fn present(&self) -> bool {
        true
    }
    /// The local directory, for file-system space gauges and the identity
    /// marker (`None`: remote).
    fn local_dir(&self) -> Option<&Path> {
        None
    }
    /// Refuses every write from now on (appends, segment removal) and lists
    /// no segments: the drive holds data that is not this server's (see
    /// `drive_identity.rs`). Until the process restarts.
    fn refuse(&self, _reason: &str) {}
    /// Appends one shard; returns its location and a completion sequence
    /// number to pass to [`ShardStore::sync`].
    fn append(
        &self,
        chunk: &ChunkId,
        shard_index: u8,
        payload: &[u8],
        checksum: ShardChecksum,
    ) -> EngineResult<(ShardLocation, u64)>;
    /// Returns once everything appended up to `seq` is durable.
    fn sync(&self, seq: u64) -> EngineResult<()>;
    /// Whether the caller should start a [`sync`](Self::sync) in the
    /// background now: enough has been appended since the last one that
    /// the disk can write it while more arrives, so writers' own syncs find
    /// less to flush. At most one claim is outstanding per drive; the
    /// claimer calls [`early_sync_finished`](Self::early_sync_finished).
    fn claim_early_sync(&self) -> bool {
        false
    }
    /// Ends a claim of [`claim_early_sync`](Self::claim_early_sync).
    fn early_sync_finished(&self) {}
    /// Reads one shard and verifies it is the expected, intact shard.
    fn read(
        &self,
        loc: &ShardLocation,
        chunk: &ChunkId,
        shard_index: u8,
        payload_len: u32,
    ) -> Result<Bytes, ShardReadError>;
    /// Every segment of the drive.
    fn segments(&self) -> EngineResult<Vec<SegmentInfo>>;
    /// The record headers of a segment, in order, up to the first torn or
    /// unreadable record.
    fn scan_segment(&self, segment: u64) -> EngineResult<Vec<ScannedShard>>;
    /// Deletes a segment (durably: directory fsynced). Returns its size.
    fn remove_segment(&self, segment: u64) -> EngineResult<u64>;
    /// Stops appending to `segment` if it is the active one (the next append
    /// starts a new segment), so compaction may reclaim it. Returns whether
    /// it was active.
    fn seal_active(&self, segment: u64) -> bool;
}

/// Appended bytes after which a background sync is worth starting (a
/// 16 MiB object puts ~4 MiB on each of 4+2 drives). On this project's VM,
/// PUT 16 MiB c=4 on disk: no early sync ~440 MiB/s, 8 MiB ~490, 4 MiB
/// ~540, 2 MiB ~560.
const EARLY_SYNC_BYTES: u64 = 2 << 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the protected
    // state half-updated in a way later callers would misread (every update
    // is a single assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct ActiveSegment {
    id: u64,
    file: Arc<File>,
    len: u64,
}

#[derive(Debug, Default)]
struct PendingSync {
    completed_seq: u64,
    dirty: Vec<(u64, Arc<File>)>,
}

/// Shards in segment files under one directory.
#[derive(Debug)]
pub struct LocalDrive {
    index: u16,
    /// The cluster node it belongs to (0 on a single node): placement
    /// scores a drive by (node, index) on every node alike.
    node: u16,
    root: PathBuf,
    segments_dir: PathBuf,
    segment_size_max_bytes: u64,
    next_segment_id: Mutex<u64>,
    active: Mutex<Option<ActiveSegment>>,
    pending: Mutex<PendingSync>,
    /// The highest completion sequence known durable.
    synced_seq: Mutex<u64>,
    /// Set after an fsync failed: durability of earlier writes is unknown, so
    /// the drive refuses further writes until restarted.
    failed: AtomicBool,
    /// Set when the drive's identity check refused it (see
    /// [`ShardStore::refuse`]); the reason is in `refusal`.
    refused: AtomicBool,
    refusal: Mutex<String>,
    /// Bytes appended since the last sync began (for `claim_early_sync`).
    unsynced_bytes: AtomicU64,
    early_sync_claimed: AtomicBool,
    read_handles: Mutex<HashMap<u64, Arc<File>>>,
    metrics: Option<DriveMetrics>,
}

fn segment_file_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

fn fsync_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// The drive index written in the header of segment `segment` of the drive
/// at `root`; `None` if the file is too short or not a version 1 segment.
pub(crate) fn segment_header_drive(root: &Path, segment: u64) -> std::io::Result<Option<u16>> {
    let file = File::open(root.join("segments").join(segment_file_name(segment)))?;
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if &header[0..8] != SEGMENT_MAGIC || header[8..12] != SEGMENT_FORMAT_V1.to_le_bytes() {
        return Ok(None);
    }
    Ok(Some(u16::from_le_bytes([header[12], header[13]])))
}

impl LocalDrive {
    /// Opens (creating if needed) a drive directory.
    pub fn open(
        index: u16,
        root: &Path,
        segment_size_max_bytes: u64,
        metrics: Option<DriveMetrics>,
    ) -> EngineResult<Self> {
        let segments_dir = root.join("segments");
        let existed = segments_dir.is_dir();
        fs::create_dir_all(&segments_dir)
            .map_err(|e| EngineError::io(format!("creating {}", segments_dir.display()), e))?;
        if !existed {
            // Normal on a first start; a drive that was lost is reported by
            // the identity check (drive_identity.rs), which knows which it is.
            tracing::debug!(drive = index, path = %root.display(), "drive directory created");
            fsync_dir(root).map_err(|e| EngineError::io("fsync drive dir", e))?;
        }
        let mut max_id = 0u64;
        let entries = fs::read_dir(&segments_dir)
            .map_err(|e| EngineError::io(format!("listing {}", segments_dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io("listing segments", e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
                continue;
            };
            if let Ok(id) = u64::from_str_radix(stem, 16) {
                max_id = max_id.max(id);
            }
        }
        Ok(Self::new(
            index,
            root,
            segment_size_max_bytes,
            max_id,
            metrics,
        ))
    }

    fn new(
        index: u16,
        root: &Path,
        segment_size_max_bytes: u64,
        max_segment_id: u64,
        metrics: Option<DriveMetrics>,
    ) -> Self {
        LocalDrive {
            index,
            node: 0,
            root: root.to_path_buf(),
            segments_dir: root.join("segments"),
            segment_size_max_bytes: segment_size_max_bytes.max(SEGMENT_HEADER_BYTES + 4096),
            // Never append to a segment from before a restart: its tail may
            // be torn. Start a fresh one. Ids are never reused, even on a
            // replaced (empty) drive whose old ids metadata still names:
            // they start at the current time × 1024.
            next_segment_id: Mutex::new((max_segment_id + 1).max(crate::now_ms() << 10)),
            active: Mutex::new(None),
            pending: Mutex::new(PendingSync::default()),
            synced_seq: Mutex::new(0),
            failed: AtomicBool::new(false),
            refused: AtomicBool::new(false),
            refusal: Mutex::new(String::new()),
            unsynced_bytes: AtomicU64::new(0),
            early_sync_claimed: AtomicBool::new(false),
            read_handles: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// A drive whose directory could not be opened or created: not
    /// [`present`](ShardStore::present) and refusing writes, so the engine
    /// can start without it (its shards are read from the others) and
    /// report it missing.
    pub fn unavailable(
        index: u16,
        root: &Path,
        segment_size_max_bytes: u64,
        metrics: Option<DriveMetrics>,
    ) -> Self {
        let drive = Self::new(index, root, segment_size_max_bytes, 0, metrics);
        drive.failed.store(true, Ordering::Release);
        drive
    }

    /// The drive as one of cluster node `node`'s.
    pub fn on_node(mut self, node: u16) -> Self {
        self.node = node;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.segments_dir.join(segment_file_name(id))
    }

    /// Creates the next segment file: header written and, with its directory
    /// entry, durable before it is handed out.
    fn create_segment(&self) -> EngineResult<ActiveSegment> {
        let id = {
            let mut next = lock(&self.next_segment_id);
            let id = *next;
            *next += 1;
            id
        };
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| EngineError::io(format!("creating {}", path.display()), e))?;
        let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES as usize);
        header.extend_from_slice(SEGMENT_MAGIC);
        header.extend_from_slice(&SEGMENT_FORMAT_V1.to_le_bytes());
        header.extend_from_slice(&self.index.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(&id.to_le_bytes());
        header.extend_from_slice(&crate::now_ms().to_le_bytes());
        debug_assert_eq!(header.len() as u64, SEGMENT_HEADER_BYTES);
        file.write_all_at(&header, 0)
            .and_then(|()| file.sync_all())
            .and_then(|()| fsync_dir(&self.segments_dir))
            .map_err(|e| EngineError::io(format!("initialising {}", path.display()), e))?;
        Ok(ActiveSegment {
            id,
            file: Arc::new(file),
            len: SEGMENT_HEADER_BYTES,
        })
    }

    fn read_handle(&self, segment: u64) -> Result<Arc<File>, ShardReadError> {
        if let Some(f) = lock(&self.read_handles).get(&segment) {
            return Ok(f.clone());
        }
        let path = self.segment_path(segment);
        let file = match File::open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ShardReadError::Missing(format!(
                    "{} not found",
                    path.display()
                )));
            }
            Err(e) => return Err(ShardReadError::Io(e)),
        };
        let mut handles = lock(&self.read_handles);
        if handles.len() >= READ_HANDLES_MAX {
            handles.clear();
        }
        handles.insert(segment, file.clone());
        Ok(file)
    }

    fn check_writable(&self) -> EngineResult<()> {
        if self.refused.load(Ordering::Acquire) {
            return Err(EngineError::Io {
                context: format!("drive {} ({})", self.index, self.root.display()),
                source: std::io::Error::other(format!("drive refused: {}", lock(&self.refusal))),
            });
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(EngineError::Io {
                context: format!("drive {} ({})", self.index, self.root.display()),
                source: std::io::Error::other("an earlier fsync failed; drive refuses writes"),
            });
        }
        Ok(())
    }
}

impl ShardStore for LocalDrive {
    fn index(&self) -> u16 {
        self.index
    }

    fn node(&self) -> u16 {
        self.node
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn present(&self) -> bool {
        self.segments_dir.is_dir()
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn refuse(&self, reason: &str) {
        *lock(&self.refusal) = reason.to_owned();
        self.refused.store(true, Ordering::Release);
    }

    fn append(
        &self,
        chunk: &ChunkId,
        shard_index: u8,
        payload: &[u8],
        checksum: ShardChecksum,
    ) -> EngineResult<(ShardLocation, u64)> {
        self.check_writable()?;
        debug_assert_eq!(
            shard_checksum(payload),
            checksum,
            "checksum must match before write"
        );
        let payload_len = u32::try_from(payload.len())
            .map_err(|_| EngineError::Internal("shard larger than 4 GiB".into()))?;
        let mut header = Vec::with_capacity(RECORD_HEADER_BYTES);
        header.extend_from_slice(RECORD_MAGIC);
        header.push(RECORD_FORMAT_V1);
        header.push(shard_index);
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(chunk.as_bytes());
        header.extend_from_slice(&payload_len.to_le_bytes());
        header.extend_from_slice(&checksum.0.to_le_bytes());
        debug_assert_eq!(header.len(), RECORD_HEADER_BYTES);
        let record_len = (RECORD_HEADER_BYTES + payload.len()) as u64;

        let (segment, offset, file) = {
            let mut active = lock(&self.active);
            let needs_new = match active.as_ref() {
                None => true,
                Some(a) => {
                    a.len + record_len > self.segment_size_max_bytes && a.len > SEGMENT_HEADER_BYTES
                }
            };
            if needs_new {
                *active = Some(self.create_segment()?);
            }
            let Some(a) = active.as_mut() else {
                return Err(EngineError::Internal("no active segment".into()));
            };
            let offset = a.len;
            // Written under the lock so a segment never has holes. Header
            // and payload are two writes rather than one copied record: a
            // failed or torn second write leaves `len` where it was, and a
            // crash before the sync leaves a torn record, which scans stop at.
            let write_err = |e| {
                EngineError::io(
                    format!("writing segment {} on drive {}", a.id, self.index),
                    e,
                )
            };
            a.file.write_all_at(&header, offset).map_err(write_err)?;
            a.file
                .write_all_at(payload, offset + RECORD_HEADER_BYTES as u64)
                .map_err(write_err)?;
            a.len += record_len;
            (a.id, offset, a.file.clone())
        };
        let seq = {
            let mut p = lock(&self.pending);
            p.completed_seq += 1;
            if !p.dirty.iter().any(|(id, _)| *id == segment) {
                p.dirty.push((segment, file));
            }
            p.completed_seq
        };
        self.unsynced_bytes.fetch_add(record_len, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.bytes_written.inc_by(record_len);
        }
        Ok((
            ShardLocation {
                node: 0,
                drive: self.index,
                segment,
                offset,
            },
            seq,
        ))
    }

    fn sync(&self, seq: u64) -> EngineResult<()> {
        let mut synced = lock(&self.synced_seq);
        if *synced >= seq {
            return Ok(());
        }
        self.check_writable()?;
        let (target, files) = {
            let mut p = lock(&self.pending);
            // Appends from here on are the next sync's (approximately: one
            // racing append may be counted for either).
            self.unsynced_bytes.store(0, Ordering::Relaxed);
            (p.completed_seq, std::mem::take(&mut p.dirty))
        };
        debug_assert!(target >= seq);
        let started = Instant::now();
        for (id, file) in &files {
            if let Err(e) = file.sync_data() {
                self.failed.store(true, Ordering::Release);
                tracing::error!(drive = self.index, segment = id, error = %e, "fsync failed; drive marked failed");
                return Err(EngineError::io(format!("fsync segment {id}"), e));
            }
        }
        if let Some(m) = &self.metrics {
            m.fsync_seconds.observe(started.elapsed().as_secs_f64());
        }
        *synced = target;
        Ok(())
    }

    fn read(
        &self,
        loc: &ShardLocation,
        chunk: &ChunkId,
        shard_index: u8,
        payload_len: u32,
    ) -> Result<Bytes, ShardReadError> {
        debug_assert_eq!(loc.drive, self.index);
        let file = self.read_handle(loc.segment)?;
        let mut buf = vec![0u8; RECORD_HEADER_BYTES + payload_len as usize];
        file.read_exact_at(&mut buf, loc.offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ShardReadError::Missing(format!(
                    "segment {} is shorter than offset {}",
                    loc.segment, loc.offset
                ))
            } else {
                ShardReadError::Io(e)
            }
        })?;
        let header = &buf[..RECORD_HEADER_BYTES];
        if &header[0..4] != RECORD_MAGIC || header[4] != RECORD_FORMAT_V1 {
            return Err(ShardReadError::Corrupt("bad record header".into()));
        }
        if header[5] != shard_index || &header[8..40] != chunk.as_bytes() {
            return Err(ShardReadError::Corrupt(
                "record belongs to another shard".into(),
            ));
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[40..44]);
        if u32::from_le_bytes(len) != payload_len {
            return Err(ShardReadError::Corrupt("record length mismatch".into()));
        }
        let mut crc = [0u8; 8];
        crc.copy_from_slice(&header[44..52]);
        let payload = Bytes::from(buf).slice(RECORD_HEADER_BYTES..);
        if shard_checksum(&payload) != ShardChecksum(u64::from_le_bytes(crc)) {
            return Err(ShardReadError::Corrupt("checksum mismatch".into()));
        }
        if let Some(m) = &self.metrics {
            m.bytes_read
                .inc_by(payload.len() as u64 + RECORD_HEADER_BYTES as u64);
        }
        Ok(payload)
    }

    fn claim_early_sync(&self) -> bool {
        self.unsynced_bytes.load(Ordering::Relaxed) >= EARLY_SYNC_BYTES
            && !self.early_sync_claimed.swap(true, Ordering::AcqRel)
    }

    fn early_sync_finished(&self) {
        self.early_sync_claimed.store(false, Ordering::Release);
    }

    fn segments(&self) -> EngineResult<Vec<SegmentInfo>> {
        if self.refused.load(Ordering::Acquire) {
            // Nothing on a refused drive is this server's: compaction must
            // not see (and delete) its segments.
            return Ok(Vec::new());
        }
        let active = lock(&self.active).as_ref().map(|a| a.id);
        let entries = fs::read_dir(&self.segments_dir)
            .map_err(|e| EngineError::io(format!("listing {}", self.segments_dir.display()), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io("listing segments", e))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|stem| u64::from_str_radix(stem, 16).ok())
            else {
                continue;
            };
            let Ok(md) = entry.metadata() else {
                continue; // removed meanwhile
            };
            let modified_ms = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(u64::MAX, |d| d.as_millis() as u64);
            out.push(SegmentInfo {
                id,
                len_bytes: md.len(),
                modified_ms,
                active: active == Some(id),
            });
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    fn scan_segment(&self, segment: u64) -> EngineResult<Vec<ScannedShard>> {
        let path = self.segment_path(segment);
        let file = File::open(&path)
            .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| EngineError::io(format!("stat {}", path.display()), e))?
            .len();
        let mut out = Vec::new();
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut header = [0u8; RECORD_HEADER_BYTES];
        while offset + RECORD_HEADER_BYTES as u64 <= len {
            if file.read_exact_at(&mut header, offset).is_err() {
                break;
            }
            if &header[0..4] != RECORD_MAGIC || header[4] != RECORD_FORMAT_V1 {
                break; // torn tail
            }
            let mut id = [0u8; 32];
            id.copy_from_slice(&header[8..40]);
            let mut plen = [0u8; 4];
            plen.copy_from_slice(&header[40..44]);
            let payload_len = u32::from_le_bytes(plen);
            let next = offset + RECORD_HEADER_BYTES as u64 + u64::from(payload_len);
            if next > len {
                break;
            }
            out.push(ScannedShard {
                offset,
                chunk: ChunkId::from_bytes(id),
                shard_index: header[5],
                payload_len,
            });
            offset = next;
        }
        Ok(out)
    }

    fn seal_active(&self, segment: u64) -> bool {
        let mut active = lock(&self.active);
        if active.as_ref().map(|a| a.id) == Some(segment) {
            *active = None;
            true
        } else {
            false
        }
    }

    fn remove_segment(&self, segment: u64) -> EngineResult<u64> {
        self.check_writable()?;
        if lock(&self.active).as_ref().map(|a| a.id) == Some(segment) {
            return Err(EngineError::Internal(
                "refusing to remove the active segment".into(),
            ));
        }
        let path = self.segment_path(segment);
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        lock(&self.read_handles).remove(&segment);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(EngineError::io(format!("removing {}", path.display()), e)),
        }
        fsync_dir(&self.segments_dir).map_err(|e| EngineError::io("fsync segments dir", e))?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(dir: &Path, max: u64) -> LocalDrive {
        LocalDrive::open(3, dir, max, None).unwrap()
    }

    #[test]
    fn append_sync_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = drive(dir.path(), 1 << 20);
        let id = ChunkId::from_bytes([4; 32]);
        let payload = b"hello shard".to_vec();
        let (loc, seq) = d
            .append(&id, 2, &payload, shard_checksum(&payload))
            .unwrap();
        d.sync(seq).unwrap();
        assert_eq!(loc.drive, 3);
        assert_eq!(loc.offset, SEGMENT_HEADER_BYTES);
        let got = d.read(&loc, &id, 2, payload.len() as u32).unwrap();
        assert_eq!(&got[..], &payload[..]);
        // Wrong expectations are detected, not returned.
        assert!(matches!(
            d.read(&loc, &id, 1, payload.len() as u32),
            Err(ShardReadError::Corrupt(_))
        ));
        let other = ChunkId::from_bytes([5; 32]);
        assert!(matches!(
            d.read(&loc, &other, 2, payload.len() as u32),
            Err(ShardReadError::Corrupt(_))
        ));
    }

    /// A background sync is offered once `EARLY_SYNC_BYTES` are appended,
    /// to one claimer at a time, and a sync starts the count again.
    #[test]
    fn early_sync_is_claimed_once_per_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let d = drive(dir.path(), 64 << 20);
        let id = ChunkId::from_bytes([5; 32]);
        let payload = vec![7u8; (EARLY_SYNC_BYTES / 4) as usize];
        let checksum = shard_checksum(&payload);
        let mut seq = 0;
        for _ in 0..3 {
            seq = d.append(&id, 0, &payload, checksum).unwrap().1;
            assert!(!d.claim_early_sync(), "below the threshold");
        }
        seq = seq.max(d.append(&id, 0, &payload, checksum).unwrap().1);
        assert!(d.claim_early_sync());
        assert!(!d.claim_early_sync(), "one claim at a time");
        d.sync(seq).unwrap();
        d.early_sync_finished();
        assert!(!d.claim_early_sync(), "the sync started the count again");
        for _ in 0..4 {
            d.append(&id, 0, &payload, checksum).unwrap();
        }
        assert!(d.claim_early_sync());
    }

    #[test]
    fn bit_rot_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let d = drive(dir.path(), 1 << 20);
        let id = ChunkId::from_bytes([4; 32]);
        let payload = vec![7u8; 1000];
        let (loc, seq) = d
            .append(&id, 0, &payload, shard_checksum(&payload))
            .unwrap();
        d.sync(seq).unwrap();
        let path = dir
            .path()
            .join("segments")
            .join(segment_file_name(loc.segment));
        let mut bytes = fs::read(&path).unwrap();
        let pos = (loc.offset as usize) + RECORD_HEADER_BYTES + 500;
        bytes[pos] ^= 0x10;
        fs::write(&path, bytes).unwrap();
        let d = drive(dir.path(), 1 << 20);
        assert!(matches!(
            d.read(&loc, &id, 0, 1000),
            Err(ShardReadError::Corrupt(_))
        ));
    }

    #[test]
    fn segments_roll_and_restart_uses_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let id = ChunkId::from_bytes([1; 32]);
        let payload = vec![1u8; 3000];
        let mut locs = Vec::new();
        {
            let d = drive(dir.path(), 8192);
            for _ in 0..5 {
                let (loc, seq) = d
                    .append(&id, 0, &payload, shard_checksum(&payload))
                    .unwrap();
                d.sync(seq).unwrap();
                locs.push(loc);
            }
        }
        let segments: std::collections::BTreeSet<u64> = locs.iter().map(|l| l.segment).collect();
        assert!(segments.len() >= 2, "expected rolls, got {segments:?}");
        let d = drive(dir.path(), 8192);
        let (loc, _) = d
            .append(&id, 0, &payload, shard_checksum(&payload))
            .unwrap();
        assert!(loc.segment > *segments.iter().max().unwrap());
        for l in &locs {
            d.read(l, &id, 0, 3000).unwrap();
        }
    }

    /// A refused drive takes no writes, lists no segments (so compaction
    /// never deletes them) and keeps its files.
    #[test]
    fn a_refused_drive_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let d = drive(dir.path(), 1 << 20);
        let id = ChunkId::from_bytes([4; 32]);
        let payload = vec![7u8; 100];
        let (loc, seq) = d
            .append(&id, 0, &payload, shard_checksum(&payload))
            .unwrap();
        d.sync(seq).unwrap();
        assert_eq!(
            segment_header_drive(dir.path(), loc.segment).unwrap(),
            Some(3)
        );
        assert!(d.seal_active(loc.segment));
        d.refuse("test");
        let err = d
            .append(&id, 0, &payload, shard_checksum(&payload))
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(d.segments().unwrap().is_empty());
        assert!(d.remove_segment(loc.segment).is_err());
        assert!(
            dir.path()
                .join("segments")
                .join(segment_file_name(loc.segment))
                .exists()
        );
    }

    #[test]
    fn an_unavailable_drive_is_absent_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDrive::unavailable(1, &dir.path().join("gone"), 1 << 20, None);
        assert!(!d.present());
        let payload = vec![1u8; 10];
        let id = ChunkId::from_bytes([1; 32]);
        assert!(
            d.append(&id, 0, &payload, shard_checksum(&payload))
                .is_err()
        );
    }

    #[test]
    fn missing_segment_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let d = drive(dir.path(), 1 << 20);
        let id = ChunkId::from_bytes([1; 32]);
        let loc = ShardLocation {
            node: 0,
            drive: 3,
            segment: 99,
            offset: 32,
        };
        assert!(matches!(
            d.read(&loc, &id, 0, 10),
            Err(ShardReadError::Missing(_))
        ));
    }

    #[test]
    fn concurrent_appends_group_commit() {
        let dir = tempfile::tempdir().unwrap();
        let d = Arc::new(drive(dir.path(), 1 << 20));
        let handles: Vec<_> = (0..8u8)
            .map(|t| {
                let d = d.clone();
                std::thread::spawn(move || {
                    let id = ChunkId::from_bytes([t; 32]);
                    let mut out = Vec::new();
                    for i in 0..50u32 {
                        let payload = i.to_le_bytes().repeat(100);
                        let (loc, seq) = d
                            .append(&id, t, &payload, shard_checksum(&payload))
                            .unwrap();
                        d.sync(seq).unwrap();
                        out.push((loc, payload));
                    }
                    (id, out)
                })
            })
            .collect();
        for (t, h) in handles.into_iter().enumerate() {
            let (id, out) = h.join().unwrap();
            for (loc, payload) in out {
                let got = d.read(&loc, &id, t as u8, payload.len() as u32).unwrap();
                assert_eq!(&got[..], &payload[..]);
            }
        }
    }
}
