//! One running cluster node: its Raft log and metadata store on disk, its
//! Raft instance and its HTTP listener.

use std::path::Path;
use std::sync::Arc;

use cairn_storage_engine::MetaStore;
use openraft::{Config, Raft};

use crate::{
    ClusterNode, ClusterSecret, Faults, HttpNetwork, LogStore, MetaStateMachine, NodeId,
    TypeConfig, serve,
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
    /// Opens `data_dir/raft` and `data_dir/meta`, listens for Raft messages
    /// on `raft_listen`, and starts Raft (not yet part of any cluster until
    /// `initialize` or a membership change names it).
    pub async fn start(
        id: NodeId,
        data_dir: &Path,
        raft_listen: &str,
        config: Config,
        secret: ClusterSecret,
        faults: Arc<Faults>,
    ) -> Result<Self, StartError> {
        let config = Arc::new(config.validate()?);
        let log = LogStore::open(&data_dir.join("raft"))?;
        let store = Arc::new(MetaStore::open(&data_dir.join("meta"))?);
        let listener = tokio::net::TcpListener::bind(raft_listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: raft_listen.to_owned(),
                source,
            })?;
        let raft_addr = listener
            .local_addr()
            .map_err(|source| StartError::Listen {
                addr: raft_listen.to_owned(),
                source,
            })?
            .to_string();
        let network = HttpNetwork::new(id, secret.clone(), faults);
        let sm = MetaStateMachine::new(store.clone());
        let raft = Raft::new(id, config, network.clone(), log, sm).await?;
        let server = tokio::spawn(serve(listener, raft.clone(), secret));
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

    /// Stops Raft and the listener.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft node {} shutdown: {e}", self.id);
        }
        self.server.abort();
    }
}
