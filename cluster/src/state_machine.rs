//! The Raft state machine: Cairn's metadata store.
//!
//! Applying a normal entry decodes its `MetaCommand` and, if its guards hold
//! against the state at that point of the log, writes it together with the
//! entry's log id under `system/raft-applied` in one RocksDB batch, so the
//! data and the applied position never disagree after a crash. A command
//! whose guard fails writes nothing but the position and answers
//! `GuardFailed` — on every node alike, since every node applies the same
//! log to the same state. Request ids are remembered (`system/raft-req/…`,
//! with a time index `raft-req-at/…` trimmed every 256th entry by the
//! requests' own clock) so a request committed twice is applied once. Apply
//! writes are not synced: the entries are durable in the Raft log (synced
//! before they could commit), and openraft re-applies what lies between the
//! last applied and the committed id at start-up.
//!
//! Snapshots are files in the node's snapshot directory, streamed in
//! bounded memory: `MetaStore::export_stream` writes every replicated key
//! and value of one RocksDB snapshot (with a BLAKE3 trailer) to
//! `snap-<id>.snap`, fsynced, and `current.json` (written last, renamed into
//! place) names the current one and its Raft metadata. A snapshot received
//! from the leader is written by openraft into `recv-<random>.tmp`, checked
//! end to end (`MetaStore::verify_stream`), then imported in bounded batches
//! (`MetaStore::import_stream`) under a node-local marker
//! (`local/snapshot-installing`), so an install cut short by a crash is
//! redone from the same file before the node uses its store again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_storage_engine::{KeyRange, MetaCf, MetaCommand, MetaOp, MetaStore, System};
use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};

use crate::{
    ClusterNode, ClusterRequest, ClusterResponse, DEDUP_WINDOW_MS, NodeId, StorageError, TypeConfig,
};

/// The last applied log id and the last membership, as openraft asks.
type AppliedState = (Option<LogId<NodeId>>, StoredMembership<NodeId, ClusterNode>);

const APPLIED_KEY: &str = "raft-applied";
const SEEN_PREFIX: &str = "raft-req/";
const SEEN_AT_PREFIX: &str = "raft-req-at/";
const MEMBERSHIP_KEY: &str = "raft-membership";

fn sm_read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn sm_write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn snapshot_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(None, &std::io::Error::other(e.to_string())).into()
}

/// What `current.json` says: the current snapshot's file id and metadata.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct CurrentSnapshot {
    file: String,
    meta: SnapshotMeta<NodeId, ClusterNode>,
}

/// The node-local marker of an install under way.
const INSTALLING_KEY: &str = "snapshot-installing";
const CURRENT_FILE: &str = "current.json";

fn io_err(e: std::io::Error) -> StorageError {
    snapshot_err(e)
}

/// The state machine over one [`MetaStore`]; clones share it.
#[derive(Clone)]
pub struct MetaStateMachine {
    store: Arc<MetaStore>,
    /// Where snapshot files live.
    dir: PathBuf,
    /// The file openraft is writing a received snapshot into.
    receiving: Arc<Mutex<Option<PathBuf>>>,
    /// Serialises everything that touches the snapshot files and
    /// `current.json` (a build runs in its own task beside installs).
    files: Arc<Mutex<()>>,
}

impl std::fmt::Debug for MetaStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaStateMachine(..)")
    }
}

impl MetaStateMachine {
    /// The state machine over `store`, with snapshot files in `dir`
    /// (created). Finishes an install a crash interrupted first.
    pub fn open(store: Arc<MetaStore>, dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let sm = MetaStateMachine {
            store,
            dir: dir.to_owned(),
            receiving: Arc::new(Mutex::new(None)),
            files: Arc::new(Mutex::new(())),
        };
        // Transfers and installs a restart cut short.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let partial = ["recv-", "install-", "build-"]
                    .iter()
                    .any(|p| name.starts_with(p));
                if partial && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        if let Some(marker) = sm.store.local(INSTALLING_KEY).map_err(sm_read_err)? {
            let pending: CurrentSnapshot = serde_json::from_slice(&marker).map_err(snapshot_err)?;
            tracing::warn!(snapshot = %pending.meta.snapshot_id, "redoing a snapshot install a crash interrupted");
            let path = sm.snapshot_path(&pending.file);
            sm.install_file(&path, &pending)?;
        } else if let Some(current) = sm.read_current()? {
            // Only the current snapshot's file is kept.
            sm.remove_other_snapshots(&current.file);
        }
        Ok(sm)
    }

    pub fn store(&self) -> &Arc<MetaStore> {
        &self.store
    }

    fn read<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.store.get::<System>(key).map_err(sm_read_err)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(sm_read_err)?)),
            None => Ok(None),
        }
    }

    fn system_put<T: serde::Serialize>(key: &str, value: &T) -> Result<MetaOp, StorageError> {
        Ok(MetaOp::Put {
            cf: MetaCf::System,
            key: key.as_bytes().to_vec(),
            value: serde_json::to_vec(value).map_err(sm_write_err)?,
        })
    }

    fn snapshot_path(&self, file: &str) -> PathBuf {
        self.dir.join(format!("snap-{file}.snap"))
    }

    fn lock_files(&self) -> std::sync::MutexGuard<'_, ()> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove_other_snapshots(&self, keep_file: &str) {
        let keep = format!("snap-{keep_file}.snap");
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("snap-") && name != keep {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Makes `current` the current snapshot: `current.json` replaced
    /// atomically (its file is already durable), older snapshot files
    /// removed. Called with the files lock held.
    fn set_current(&self, current: &CurrentSnapshot) -> Result<(), StorageError> {
        let tmp = self.dir.join(format!("{CURRENT_FILE}.tmp"));
        let body = serde_json::to_vec(current).map_err(snapshot_err)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io_err)?;
            f.write_all(&body).map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
        }
        std::fs::rename(&tmp, self.dir.join(CURRENT_FILE)).map_err(io_err)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)?;
        self.remove_other_snapshots(&current.file);
        Ok(())
    }

    fn read_current(&self) -> Result<Option<CurrentSnapshot>, StorageError> {
        match std::fs::read(self.dir.join(CURRENT_FILE)) {
            Ok(body) => Ok(Some(serde_json::from_slice(&body).map_err(snapshot_err)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Imports the snapshot file at `path` — moved to its place first if it
    /// is still where it was received — and makes it current, under the
    /// install marker, set before the file is even checked: openraft may
    /// purge the log as soon as it handed the snapshot over, so from then on
    /// the file is the only way back (blocking). A file that fails its
    /// check is dropped and the marker cleared.
    fn install_file(&self, path: &Path, target: &CurrentSnapshot) -> Result<(), StorageError> {
        let _files = self.lock_files();
        let marker = serde_json::to_vec(target).map_err(snapshot_err)?;
        let dest = self.snapshot_path(&target.file);
        if path != dest {
            std::fs::rename(path, &dest).map_err(io_err)?;
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err)?;
        }
        self.store
            .set_local(INSTALLING_KEY, Some(&marker))
            .map_err(snapshot_err)?;
        let mut r = std::io::BufReader::new(std::fs::File::open(&dest).map_err(io_err)?);
        if let Err(e) = MetaStore::verify_stream(&mut r) {
            let _ = std::fs::remove_file(&dest);
            self.store
                .set_local(INSTALLING_KEY, None)
                .map_err(snapshot_err)?;
            return Err(snapshot_err(e));
        }
        let last = only(vec![
            Self::system_put(APPLIED_KEY, &target.meta.last_log_id)?,
            Self::system_put(MEMBERSHIP_KEY, &target.meta.last_membership)?,
        ]);
        let mut r = std::io::BufReader::new(std::fs::File::open(&dest).map_err(io_err)?);
        self.store
            .import_stream(&mut r, &last)
            .map_err(snapshot_err)?;
        self.set_current(target)?;
        self.store
            .set_local(INSTALLING_KEY, None)
            .map_err(snapshot_err)
    }

    /// Builds a snapshot file of the store as it is now (blocking).
    fn build_file(&self) -> Result<CurrentSnapshot, StorageError> {
        // Not beside an install: the export must see a whole store.
        let _files = self.lock_files();
        let tmp = self.dir.join(format!(
            "build-{}.tmp",
            hex::encode(cairn_storage_engine::random_bytes::<8>())
        ));
        let found = {
            let f = std::fs::File::create(&tmp).map_err(io_err)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            let found = self
                .store
                .export_stream(&mut w, &[APPLIED_KEY, MEMBERSHIP_KEY])
                .map_err(snapshot_err)?;
            let f = w.into_inner().map_err(|e| io_err(e.into_error()))?;
            f.sync_all().map_err(io_err)?;
            found
        };
        // The applied id and membership come from the same RocksDB
        // snapshot as the data, so they agree while entries are applied.
        let decode = |v: &Option<Vec<u8>>| -> Result<Option<serde_json::Value>, StorageError> {
            v.as_deref()
                .map(serde_json::from_slice)
                .transpose()
                .map_err(snapshot_err)
        };
        let last_log_id: Option<LogId<NodeId>> = match decode(&found[0])? {
            Some(v) => serde_json::from_value(v).map_err(snapshot_err)?,
            None => None,
        };
        let last_membership: StoredMembership<NodeId, ClusterNode> = match decode(&found[1])? {
            Some(v) => serde_json::from_value(v).map_err(snapshot_err)?,
            None => StoredMembership::default(),
        };
        let snapshot_id = match last_log_id {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_owned(),
        };
        let current = CurrentSnapshot {
            // Unique per build, even of the same position.
            file: format!(
                "{snapshot_id}-{}",
                hex::encode(cairn_storage_engine::random_bytes::<4>())
            ),
            meta: SnapshotMeta {
                last_log_id,
                last_membership,
                snapshot_id,
            },
        };
        // openraft may purge the log up to this snapshot as soon as it is
        // built, and the applies it reflects were written unsynced: make
        // them durable first, or a power loss could leave the node with
        // neither the entries nor their effects.
        self.store.sync_wal().map_err(snapshot_err)?;
        // Never go back to an older snapshot than the current one.
        if let Some(existing) = self.read_current()?
            && existing.meta.last_log_id > current.meta.last_log_id
        {
            let _ = std::fs::remove_file(&tmp);
            return Ok(existing);
        }
        std::fs::rename(&tmp, self.snapshot_path(&current.file)).map_err(io_err)?;
        self.set_current(&current)?;
        Ok(current)
    }

    /// The current snapshot, opened (under the files lock, so its file
    /// cannot be replaced between reading `current.json` and opening it).
    fn open_current(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let _files = self.lock_files();
        let Some(current) = self.read_current()? else {
            return Ok(None);
        };
        let file = std::fs::File::open(self.snapshot_path(&current.file)).map_err(io_err)?;
        Ok(Some(Snapshot {
            meta: current.meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }

    fn applied_and_membership(&self) -> Result<AppliedState, StorageError> {
        Ok((
            self.read(APPLIED_KEY)?,
            self.read(MEMBERSHIP_KEY)?.unwrap_or_default(),
        ))
    }
}

/// A command without guards.
fn only(ops: Vec<MetaOp>) -> MetaCommand {
    MetaCommand {
        guards: vec![],
        ops,
    }
}

/// `raft-req/<id>`: the response a request got, while its id is remembered.
fn seen_key(id: &[u8; 16]) -> String {
    format!("{SEEN_PREFIX}{}", hex::encode(id))
}

/// `raft-req-at/<at_ms, 16 hex>/<id>`: the same ids ordered by time, to
/// forget them.
fn seen_at_key(at_ms: u64, id: &[u8; 16]) -> String {
    format!("{SEEN_AT_PREFIX}{at_ms:016x}/{}", hex::encode(id))
}

impl MetaStateMachine {
    /// Applies one proposed request exactly once: a request id seen within
    /// the window answers what it answered the first time and changes
    /// nothing else. Every branch writes the position too, and the same
    /// branch is taken on every node.
    fn apply_request(
        &self,
        req: &ClusterRequest,
        index: u64,
        position: MetaOp,
        to_storage_error: impl Fn(cairn_storage_engine::EngineError) -> StorageError,
    ) -> Result<ClusterResponse, StorageError> {
        if let Some(earlier) = self.read::<ClusterResponse>(&seen_key(&req.id))? {
            self.store
                .apply(&only(vec![position]), false)
                .map_err(&to_storage_error)?;
            return Ok(earlier);
        }
        let remember = |response: &ClusterResponse| -> Result<Vec<MetaOp>, StorageError> {
            let mut ops = vec![
                Self::system_put(&seen_key(&req.id), response)?,
                MetaOp::Put {
                    cf: MetaCf::System,
                    key: seen_at_key(req.at_ms, &req.id).into_bytes(),
                    value: Vec::new(),
                },
                position.clone(),
            ];
            // Forget old ids now and then (every 256th entry: the same
            // entries on every node), by the request's own clock.
            if index.is_multiple_of(256) {
                ops.extend(self.forget_before(req.at_ms.saturating_sub(DEDUP_WINDOW_MS))?);
            }
            Ok(ops)
        };
        let mut command = match MetaCommand::decode(&req.command) {
            Ok(c) => c,
            // Decoding is the same everywhere, so is the refusal.
            Err(e) => {
                let response = ClusterResponse::Rejected(e.to_string());
                self.store
                    .apply(&only(remember(&response)?), false)
                    .map_err(&to_storage_error)?;
                return Ok(response);
            }
        };
        command.ops.extend(remember(&ClusterResponse::Applied)?);
        // Appended rows (queued events) take their keys from the index.
        match self.store.apply_indexed(&command, false, Some(index)) {
            Ok(()) => Ok(ClusterResponse::Applied),
            // The state the command was built on moved: nothing of it is
            // written (the same on every node), only the bookkeeping.
            Err(cairn_storage_engine::EngineError::GuardFailed(i)) => {
                let response = ClusterResponse::GuardFailed(i);
                self.store
                    .apply(&only(remember(&response)?), false)
                    .map_err(&to_storage_error)?;
                Ok(response)
            }
            Err(e) => Err(to_storage_error(e)),
        }
    }

    /// Deletes of the remembered ids older than `cutoff_ms` (at most 10,000
    /// per call).
    fn forget_before(&self, cutoff_ms: u64) -> Result<Vec<MetaOp>, StorageError> {
        let names = self
            .store
            .keys::<System>(
                KeyRange::between(
                    SEEN_AT_PREFIX.as_bytes(),
                    format!("{SEEN_AT_PREFIX}{cutoff_ms:016x}").as_bytes(),
                ),
                10_000,
            )
            .map_err(sm_read_err)?;
        let mut ops = Vec::with_capacity(names.len() * 2);
        for name in names {
            if let Some(id_hex) = name.rsplit('/').next() {
                ops.push(MetaOp::Delete {
                    cf: MetaCf::System,
                    key: format!("{SEEN_PREFIX}{id_hex}").into_bytes(),
                });
            }
            ops.push(MetaOp::Delete {
                cf: MetaCf::System,
                key: name.into_bytes(),
            });
        }
        Ok(ops)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for MetaStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let sm = self.clone();
        tokio::task::spawn_blocking(move || {
            sm.build_file()?;
            sm.open_current()?
                .ok_or_else(|| snapshot_err("no current snapshot after building one"))
        })
        .await
        .map_err(snapshot_err)?
    }
}

impl RaftStateMachine<TypeConfig> for MetaStateMachine {
    type SnapshotBuilder = MetaStateMachine;

    async fn applied_state(&mut self) -> Result<AppliedState, StorageError> {
        self.applied_and_membership()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ClusterResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            let position = Self::system_put(APPLIED_KEY, &Some(entry.log_id))?;
            let to_storage_error = |e: cairn_storage_engine::EngineError| -> StorageError {
                StorageIOError::apply(entry.log_id, &std::io::Error::other(e.to_string())).into()
            };
            let response = match &entry.payload {
                EntryPayload::Blank => {
                    self.store
                        .apply(&only(vec![position]), false)
                        .map_err(to_storage_error)?;
                    ClusterResponse::Applied
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(entry.log_id), m.clone());
                    let ops = vec![Self::system_put(MEMBERSHIP_KEY, &stored)?, position];
                    self.store
                        .apply(&only(ops), false)
                        .map_err(to_storage_error)?;
                    ClusterResponse::Applied
                }
                EntryPayload::Normal(req) => {
                    self.apply_request(req, entry.log_id.index, position, to_storage_error)?
                }
            };
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.dir.join(format!(
            "recv-{}.tmp",
            hex::encode(cairn_storage_engine::random_bytes::<8>())
        ));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(io_err)?;
        let previous = self
            .receiving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(path);
        if let Some(old) = previous {
            // An earlier transfer that never finished.
            let _ = std::fs::remove_file(old);
        }
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        // Copied from whatever handle openraft gives (the file it received
        // into, or any other snapshot's) into a file of our own.
        let path = self.dir.join(format!(
            "install-{}.tmp",
            hex::encode(cairn_storage_engine::random_bytes::<8>())
        ));
        {
            use tokio::io::AsyncSeekExt;
            let mut src = snapshot;
            src.seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(io_err)?;
            let mut out = tokio::fs::File::create(&path).await.map_err(io_err)?;
            tokio::io::copy(&mut *src, &mut out).await.map_err(io_err)?;
            out.sync_all().await.map_err(io_err)?;
        }
        let received = self
            .receiving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(received) = received {
            let _ = std::fs::remove_file(received);
        }
        let target = CurrentSnapshot {
            file: format!(
                "{}-{}",
                meta.snapshot_id,
                hex::encode(cairn_storage_engine::random_bytes::<4>())
            ),
            meta: meta.clone(),
        };
        let sm = self.clone();
        // Checked whole (inside `install_file`) before the store is touched.
        tokio::task::spawn_blocking(move || sm.install_file(&path, &target))
            .await
            .map_err(snapshot_err)?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let sm = self.clone();
        tokio::task::spawn_blocking(move || sm.open_current())
            .await
            .map_err(snapshot_err)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> MetaOp {
        MetaOp::Put {
            cf: MetaCf::Objects,
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
        }
    }

    /// A crash in the middle of a snapshot install leaves the marker and
    /// the file: opening the state machine again finishes the install, and
    /// the store then holds exactly the snapshot and its position.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_install_is_redone_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(MetaStore::open(&dir.path().join("a")).unwrap());
        for i in 0..500 {
            a.apply(&only(vec![put(&format!("k{i:04}"))]), false)
                .unwrap();
        }
        let applied = LogId::new(openraft::CommittedLeaderId::new(3, 1), 77);
        a.apply(
            &only(vec![
                MetaStateMachine::system_put(APPLIED_KEY, &Some(applied)).unwrap(),
            ]),
            false,
        )
        .unwrap();
        let sm_a = MetaStateMachine::open(a.clone(), &dir.path().join("snaps-a")).unwrap();
        let built = sm_a.build_file().unwrap();
        assert_eq!(built.meta.last_log_id, Some(applied));

        // Node b: half-installed (some stale data, the marker, the file).
        let b = Arc::new(MetaStore::open(&dir.path().join("b")).unwrap());
        b.apply(&only(vec![put("stale")]), false).unwrap();
        let snaps_b = dir.path().join("snaps-b");
        std::fs::create_dir_all(&snaps_b).unwrap();
        std::fs::copy(
            sm_a.snapshot_path(&built.file),
            snaps_b.join(format!("snap-{}.snap", built.file)),
        )
        .unwrap();
        b.set_local(INSTALLING_KEY, Some(&serde_json::to_vec(&built).unwrap()))
            .unwrap();

        let mut sm_b = MetaStateMachine::open(b.clone(), &snaps_b).unwrap();
        assert!(b.local(INSTALLING_KEY).unwrap().is_none());
        assert!(b.object(0, "stale").unwrap().is_none());
        let (b_applied, _) = sm_b.applied_state().await.unwrap();
        assert_eq!(b_applied, Some(applied));
        let objects = |s: &MetaStore| -> Vec<MetaOp> {
            s.export()
                .unwrap()
                .ops
                .into_iter()
                .filter(|op| {
                    !matches!(
                        op,
                        MetaOp::Put {
                            cf: MetaCf::System,
                            ..
                        }
                    )
                })
                .collect()
        };
        assert_eq!(objects(&b).len(), 500);
        assert_eq!(objects(&b), objects(&a));
        let current = sm_b.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, built.meta);
    }

    /// A damaged stream is refused before anything is imported.
    #[test]
    fn a_damaged_snapshot_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let a = MetaStore::open(&dir.path().join("a")).unwrap();
        a.apply(&only(vec![put("x")]), false).unwrap();
        let mut bytes = Vec::new();
        a.export_stream(&mut bytes, &[]).unwrap();
        MetaStore::verify_stream(&mut &bytes[..]).unwrap();
        for cut in [5, bytes.len() / 2, bytes.len() - 1] {
            assert!(MetaStore::verify_stream(&mut &bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        assert!(MetaStore::verify_stream(&mut &flipped[..]).is_err());
    }
}
