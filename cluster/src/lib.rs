//! # cairn-cluster
//!
//! Owns the replication of Cairn's metadata with Raft (`openraft` 0.9, see
//! docs/cluster-plan.md): the Raft log on RocksDB ([`LogStore`]) and the
//! state machine ([`MetaStateMachine`]) that applies committed
//! [`cairn_storage_engine::MetaCommand`]s to a [`MetaStore`], plus its
//! snapshots.
//!
//! Also: [`RaftCommitter`], the engine's `MetaCommitter` on a cluster node
//! (commits through Raft, read barriers through the leader's read index);
//! shard transfer between nodes ([`RemoteDrive`], [`serve_shards`]); a
//! node's start, join and membership reconciliation ([`RunningNode`]).
//! Snapshots are files streamed in bounded memory. Messages between nodes
//! are authenticated with a shared [`ClusterSecret`]: Raft messages with an
//! HMAC tag, shard transfers with SigV4, both covering the sender's and the
//! receiver's node ids. With [`ClusterTls`] they also travel over TLS with
//! node certificates from the cluster's own CA, each naming its node
//! (tls.rs). The user guide is docs/cluster.md.
//!
//! This crate must never:
//! - apply anything but committed entries to the state machine, or apply
//!   them differently on different nodes (no clock, randomness or local
//!   settings inside `apply`);
//! - report a log append as done before it is on disk;
//! - know about S3 (that is `cairn-s3-api`).

#![forbid(unsafe_code)]
// openraft's storage traits fix the error type (`StorageError`, ~224 bytes);
// our helpers return the same type rather than converting at every call.
#![allow(clippy::result_large_err)]

mod certs;
mod committer;
mod log_store;
mod network;
mod node;
mod shards;
mod state_machine;
mod tls;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
pub use cairn_storage_engine::MetaStore;
pub use certs::CertAuthority;
pub use committer::RaftCommitter;

/// openraft's settings, so callers configure Raft without naming openraft.
pub mod raft_config {
    pub use openraft::{Config, SnapshotPolicy};
}
pub use log_store::LogStore;
pub use network::{
    CONNECTIONS_MAX as LISTENER_CONNECTIONS_MAX, ClusterSecret, ClusterWriter, Faults,
    HttpConnection, HttpNetwork, WriteError, serve,
};
pub use node::{MemberStatus, NodeStatus, RunningNode, StartError};
use serde::{Deserialize, Serialize};
pub use shards::{RemoteDrive, serve_shards};
pub use state_machine::MetaStateMachine;
pub use tls::{ClusterAuth, ClusterTls, node_dns_name};

/// A cluster node id (openraft's `NodeId`).
pub type NodeId = u64;

/// Where a node listens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// Host and port of its Raft (node-to-node) listener.
    pub raft_addr: String,
    /// Host and port of its S3 listener.
    pub s3_addr: String,
}

/// What a client proposes: one encoded `MetaCommand`, under a random
/// request id and the proposer's clock. The state machine remembers ids for
/// `DEDUP_WINDOW_MS` (by `at_ms`), so a request sent twice — a retry after
/// a lost answer, or a replayed message — is applied once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireRequest", into = "WireRequest")]
pub struct ClusterRequest {
    pub id: [u8; 16],
    pub at_ms: u64,
    pub command: Vec<u8>,
}

/// How long applied request ids are remembered, by the proposer's clock.
pub const DEDUP_WINDOW_MS: u64 = 15 * 60 * 1000;

impl ClusterRequest {
    /// A new request (fresh id, now) for an encoded command.
    pub fn new(command: Vec<u8>) -> Self {
        let mut id = [0u8; 16];
        // An id that is not random only weakens deduplication (a collision
        // would drop a write), so a failure here must not go unnoticed.
        if let Err(e) = getrandom::fill(&mut id) {
            tracing::error!("no randomness for a request id: {e}");
        }
        ClusterRequest {
            id,
            at_ms: network::now_ms(),
            command,
        }
    }
}

/// The JSON form: hex id, time, base64 command.
#[derive(Serialize, Deserialize)]
struct WireRequest {
    id: String,
    at_ms: u64,
    command: String,
}

impl From<ClusterRequest> for WireRequest {
    fn from(r: ClusterRequest) -> Self {
        WireRequest {
            id: hex::encode(r.id),
            at_ms: r.at_ms,
            command: BASE64.encode(&r.command),
        }
    }
}

impl TryFrom<WireRequest> for ClusterRequest {
    type Error = String;
    fn try_from(w: WireRequest) -> Result<Self, String> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(&w.id, &mut id).map_err(|e| format!("request id: {e}"))?;
        let command = BASE64
            .decode(w.command.as_bytes())
            .map_err(|e| format!("command: {e}"))?;
        Ok(ClusterRequest {
            id,
            at_ms: w.at_ms,
            command,
        })
    }
}

/// What applying one entry did; the same on every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterResponse {
    /// A blank or membership entry, or a command applied.
    Applied,
    /// A command that did not decode: recorded as applied, changed nothing.
    Rejected(String),
    /// A command whose guard (by index) did not hold when its turn came:
    /// recorded as applied, changed nothing; the proposer may re-read and
    /// retry.
    GuardFailed(usize),
}

openraft::declare_raft_types!(
    /// Cairn's openraft type configuration.
    pub TypeConfig:
        D = ClusterRequest,
        R = ClusterResponse,
        NodeId = NodeId,
        Node = ClusterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// openraft's storage error for this configuration.
pub type StorageError = openraft::StorageError<NodeId>;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod shards_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
