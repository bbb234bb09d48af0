//! One running cluster node: its Raft log and metadata store on disk, its
//! Raft instance and its HTTP listener.

use std::path::Path;
use std::sync::Arc;

use cairn_storage_engine::MetaStore;
use openraft::{Config, Raft};

use crate::{
    ClusterAuth, ClusterNode, Faults, HttpNetwork, LogStore, MetaStateMachine, NodeId, TypeConfig,
    serve,
};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid Raft configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("opening the Raft log: {0}")]
    Log(#[from] openraft::StorageError<NodeId>),
    #[error("opening the metadata store: {0}")]
    Meta(#[from] cairn_storage_engine::EngineError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("starting Raft: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
    /// The cluster TLS files are unreadable, or not a certificate the
    /// other nodes would accept for this node.
    #[error("cluster TLS: {0}")]
    Tls(String),
}

/// What a node knows about the cluster, for `cairn admin cluster status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub state: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// One member as this node sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub raft_addr: String,
    pub voter: bool,
    /// The last log index the leader knows this member holds (only the
    /// leader tracks it: `None` elsewhere, or for an unreachable member).
    pub matched_index: Option<u64>,
}

/// A started node. Dropping it leaves Raft running; call
/// [`RunningNode::shutdown`].
pub struct RunningNode {
    pub id: NodeId,
    pub raft: Raft<TypeConfig>,
    pub store: Arc<MetaStore>,
    /// Where it listens (the Raft address is the bound one, so port 0 works).
    pub info: ClusterNode,
    pub network: HttpNetwork,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunningNode({} at {})", self.id, self.info.raft_addr)
    }
}

impl RunningNode {
    /// Listens for Raft messages on `raft_listen`, opens `data_dir/meta`
    /// without a metadata key (records in the clear: tests and benches),
    /// then as [`Self::start_on`].
    pub async fn start(
        id: NodeId,
        data_dir: &Path,
        raft_listen: &str,
        config: Config,
        auth: impl Into<ClusterAuth>,
        faults: Arc<Faults>,
    ) -> Result<Self, StartError> {
        let listener = tokio::net::TcpListener::bind(raft_listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: raft_listen.to_owned(),
                source,
            })?;
        let store = Arc::new(MetaStore::open(&data_dir.join("meta"))?);
        Self::start_on(id, data_dir, store, listener, config, auth, faults).await
    }

    /// Opens `data_dir/raft`, applies the log to `store` (the node's
    /// metadata store, `data_dir/meta`, opened by the caller with its
    /// metadata key: `MetaStore::open_sealed`), serves Raft messages on
    /// `listener` (bound by the caller, so that a busy port is found before
    /// anything is created), and starts Raft (not yet part of any cluster
    /// until `initialize` or a membership change names it). With TLS in
    /// `auth`, its certificate must be this node's.
    pub async fn start_on(
        id: NodeId,
        data_dir: &Path,
        store: Arc<MetaStore>,
        listener: tokio::net::TcpListener,
        config: Config,
        auth: impl Into<ClusterAuth>,
        faults: Arc<Faults>,
    ) -> Result<Self, StartError> {
        let auth = auth.into();
        if let Some(tls) = &auth.tls
            && tls.node_id() != id
        {
            return Err(StartError::Tls(format!(
                "the TLS settings are node {}'s, not node {id}'s",
                tls.node_id()
            )));
        }
        let raft_addr = listener
            .local_addr()
            .map_err(|source| StartError::Listen {
                addr: "the Raft listener".to_owned(),
                source,
            })?
            .to_string();
        let config = Arc::new(config.validate()?);
        let log = LogStore::open(&data_dir.join("raft"))?;
        let network = HttpNetwork::new(id, auth.clone(), faults);
        let sm = MetaStateMachine::open(store.clone(), &data_dir.join("raft-snapshots"))?;
        let raft = Raft::new(id, config, network.clone(), log, sm).await?;
        let server = tokio::spawn(serve(listener, raft.clone(), id, auth));
        Ok(RunningNode {
            id,
            raft,
            store,
            info: ClusterNode {
                raft_addr,
                s3_addr: String::new(),
            },
            network,
            server,
        })
    }

    /// Makes this node part of the cluster `members` (every node, by id):
    /// if no leader shows up within `wait` and this node has the lowest id
    /// and an empty log, it initializes the cluster with all of them (the
    /// first start of a new cluster); otherwise it waits for the leader's
    /// messages. Returns once a leader is known, or `Err` after `timeout`.
    ///
    /// A wiped node with the lowest id also has an empty log, but the
    /// running cluster's leader reaches it within `wait` (it is still a
    /// member), so it joins rather than starting a second cluster.
    pub async fn join(
        &self,
        members: std::collections::BTreeMap<NodeId, ClusterNode>,
        wait: std::time::Duration,
        timeout: std::time::Duration,
    ) -> Result<NodeId, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let lowest = members.keys().next().copied();
        if !members.contains_key(&self.id) {
            return Err(format!("node {} is not in the member list", self.id));
        }
        let leader = self
            .raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await;
        if leader.is_err() && lowest == Some(self.id) {
            let m = self.raft.metrics().borrow().clone();
            if m.last_log_index.is_none() && m.vote.leader_id().term == 0 {
                tracing::info!(members = members.len(), "initializing a new cluster");
                if let Err(e) = self.raft.initialize(members).await {
                    // Someone else did (or the log is no longer empty).
                    tracing::info!("cluster initialization skipped: {e}");
                }
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = self
            .raft
            .wait(Some(left))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .map_err(|e| format!("no cluster leader after {timeout:?}: {e}"))?;
        m.current_leader
            .ok_or_else(|| "no cluster leader".to_owned())
    }

    /// On the leader: makes Raft's voters the configured `members` minus
    /// the `drained` ones. Added nodes join as learners, catch up, then
    /// become voters; drained nodes stop being voters but stay learners
    /// (they keep the log while they still hold shards), so a drained node
    /// that is then stopped no longer counts against the quorum. Nodes never
    /// leave the member list: drive ids follow it. Returns whether it
    /// changed anything; a node that does not lead does nothing.
    pub async fn reconcile_membership(
        &self,
        members: &std::collections::BTreeMap<NodeId, ClusterNode>,
        drained: &[NodeId],
    ) -> Result<bool, String> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader != Some(self.id) {
            return Ok(false);
        }
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let known: std::collections::BTreeSet<NodeId> =
            membership.nodes().map(|(id, _)| *id).collect();
        let wanted: std::collections::BTreeSet<NodeId> = members
            .keys()
            .copied()
            .filter(|id| !drained.contains(id))
            .collect();
        if voters == wanted {
            return Ok(false);
        }
        if wanted.is_empty() {
            return Err("every node is being drained: no voters would be left".into());
        }
        if let Some(gone) = voters
            .iter()
            .find(|v| !members.contains_key(v) && !drained.contains(v))
        {
            return Err(format!(
                "voter {gone} is missing from the configured nodes: nodes are never removed from the list (drain them instead)"
            ));
        }
        for (id, node) in members {
            if !known.contains(id) {
                tracing::info!(node = id, "adding a node to the cluster (learner)");
                self.raft
                    .add_learner(*id, node.clone(), true)
                    .await
                    .map_err(|e| format!("adding node {id}: {e}"))?;
            }
        }
        tracing::info!(voters = ?wanted, "changing the cluster's voters");
        // Nodes dropped from the voters stay learners (retain).
        self.raft
            .change_membership(wanted, true)
            .await
            .map_err(|e| format!("changing membership: {e}"))?;
        Ok(true)
    }

    /// Whether this node currently leads the cluster.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                id: *id,
                raft_addr: node.raft_addr.clone(),
                voter: voters.contains(id),
                matched_index: m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).cloned().flatten())
                    .map(|l| l.index),
            })
            .collect();
        NodeStatus {
            node_id: self.id,
            state: format!("{:?}", m.state),
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            members,
        }
    }

    /// Stops Raft and the listener.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft node {} shutdown: {e}", self.id);
        }
        self.server.abort();
    }
}
