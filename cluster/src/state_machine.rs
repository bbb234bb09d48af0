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
//! Snapshots are the whole replicated metadata as one `MetaCommand` of puts
//! (`MetaStore::export`), held in memory: fine for the small deployments and
//! tests this first version serves, to be streamed through a file before
//! large metadata is replicated.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use cairn_storage_engine::{MetaCf, MetaCommand, MetaOp, MetaStore};
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

/// A snapshot built or installed last.
#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, ClusterNode>,
    data: Vec<u8>,
}

/// The state machine over one [`MetaStore`]; clones share it.
#[derive(Clone)]
pub struct MetaStateMachine {
    store: Arc<MetaStore>,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
}

impl std::fmt::Debug for MetaStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaStateMachine(..)")
    }
}

impl MetaStateMachine {
    pub fn new(store: Arc<MetaStore>) -> Self {
        MetaStateMachine {
            store,
            current: Arc::new(Mutex::new(None)),
        }
    }

    pub fn store(&self) -> &Arc<MetaStore> {
        &self.store
    }

    fn read<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.store.system(key).map_err(sm_read_err)? {
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

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<StoredSnapshot>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
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
        match self.store.apply(&command, false) {
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
            .system_names(
                SEEN_AT_PREFIX,
                &format!("{SEEN_AT_PREFIX}{cutoff_ms:016x}"),
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
        // `export` reads every column family from one RocksDB snapshot, and
        // the applied id is taken from that same export, so the data and its
        // position agree even while entries are being applied.
        let export = self.store.export().map_err(snapshot_err)?;
        let find = |key: &str| {
            export.ops.iter().find_map(|op| match op {
                MetaOp::Put { cf, key: k, value }
                    if *cf == MetaCf::System && k == key.as_bytes() =>
                {
                    Some(value.clone())
                }
                _ => None,
            })
        };
        let last_log_id: Option<LogId<NodeId>> = match find(APPLIED_KEY) {
            Some(v) => serde_json::from_slice(&v).map_err(snapshot_err)?,
            None => None,
        };
        let last_membership: StoredMembership<NodeId, ClusterNode> = match find(MEMBERSHIP_KEY) {
            Some(v) => serde_json::from_slice(&v).map_err(snapshot_err)?,
            None => StoredMembership::default(),
        };
        let snapshot_id = match last_log_id {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        // openraft may purge the log up to this snapshot as soon as it is
        // built, and the applies it reflects were written unsynced: make
        // them durable first, or a power loss could leave the node with
        // neither the entries nor their effects.
        self.store.sync_wal().map_err(snapshot_err)?;
        let data = export.encode();
        *self.lock_current() = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut command = MetaCommand::decode(&data).map_err(snapshot_err)?;
        // The snapshot's own position wins over whatever it carried.
        command
            .ops
            .push(Self::system_put(APPLIED_KEY, &meta.last_log_id)?);
        command
            .ops
            .push(Self::system_put(MEMBERSHIP_KEY, &meta.last_membership)?);
        self.store
            .replace_all(&command, true)
            .map_err(snapshot_err)?;
        *self.lock_current() = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.lock_current().clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
