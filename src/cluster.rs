//! `cairn server` as one node of a cluster (docs/cluster.md): starts Raft
//! and the shard listener (over TLS with the node's certificate when
//! `--cluster-tls-*` are set), joins the cluster, and opens the engine on
//! the replicated metadata store and on every node's drives.
//!
//! Drive ids are cluster-wide: node ids sorted ascending, each node's
//! drives in its `--drives` order, so the node at position p (from 0) owns
//! ids p·n … p·n+n−1. Every node has the same number of drives n.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_cluster::{
    ClusterAuth, ClusterNode, ClusterSecret, ClusterTls, ClusterWriter, Faults, RaftCommitter,
    RemoteDrive, RunningNode, serve_shards,
};
use cairn_storage_engine::{
    DataRootKey, Engine, EngineConfig, EngineMetrics, LocalDrive, MetaStore, ShardStore,
};

use crate::config::{ClusterConfig, ServerConfig};
use cairn_cluster::raft_config as openraft_config;

/// How long a node waits for an existing leader before the lowest id
/// initializes a new cluster.
const LEADER_WAIT: Duration = Duration::from_secs(3);
/// How long start-up waits for a leader at all.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a node re-reads the stored access keys (a key created or
/// deleted through another node takes effect here within this time).
pub const KEY_RELOAD_PERIOD: Duration = Duration::from_secs(2);
/// How often the leader compares Raft's members with the configured nodes.
const MEMBERSHIP_CHECK_PERIOD: Duration = Duration::from_secs(2);
/// The rate of the rebalance the leader starts after adding nodes or when
/// started with nodes to drain (`cairn admin cluster rebalance` sets its own).
const AUTO_REBALANCE_BYTES_PER_SEC: u64 = 64 << 20;
/// How often a node publishes the start of its oldest write in flight.
const WRITER_HORIZON_PERIOD: Duration = Duration::from_secs(5);
/// How long one metadata commit may wait for a quorum.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Raft timing: heartbeats every 150 ms; a follower that hears nothing for
/// 0.8–1.6 s starts an election.
fn raft_config() -> openraft_config::Config {
    openraft_config::Config {
        cluster_name: "cairn".into(),
        heartbeat_interval: 150,
        election_timeout_min: 800,
        election_timeout_max: 1600,
        snapshot_policy: openraft_config::SnapshotPolicy::LogsSinceLast(20_000),
        // Entries kept behind a snapshot: a follower that lags by fewer
        // catches up from the log, not by a whole snapshot.
        max_in_snapshot_log_to_keep: 50_000,
        // A follower imports a received snapshot while answering its last
        // chunk: give that time.
        install_snapshot_timeout: 120_000,
        ..Default::default()
    }
}

/// A node's two cluster listeners: Raft messages on `--cluster-listen`,
/// shard transfers on its port + 1. The server binds them with its S3 and
/// admin listeners, before it creates anything, so that a busy port stops a
/// start that would otherwise leave a data directory and keys behind.
///
/// The cluster TLS files are read here too, for the same reason: a wrong
/// certificate stops the start before anything is made.
pub struct ClusterListeners {
    raft: tokio::net::TcpListener,
    shard: tokio::net::TcpListener,
    tls: Option<Arc<ClusterTls>>,
}

pub async fn bind_listeners(cluster: &ClusterConfig) -> Result<ClusterListeners, String> {
    let shard_listen = ClusterConfig::shard_addr(&cluster.listen)?;
    let tls = match &cluster.tls {
        None => None,
        Some(files) => Some(Arc::new(
            ClusterTls::from_files(cluster.node_id, &files.ca, &files.cert, &files.key)
                .map_err(|e| e.to_string())?,
        )),
    };
    Ok(ClusterListeners {
        tls,
        raft: crate::server::bind(&cluster.listen, "--cluster-listen (Raft messages)").await?,
        shard: crate::server::bind(
            &shard_listen,
            "--cluster-listen (shard transfers use its port + 1)",
        )
        .await?,
    })
}

pub async fn open(
    cfg: &ServerConfig,
    cluster: &ClusterConfig,
    listeners: ClusterListeners,
    engine_cfg: EngineConfig,
    root: DataRootKey,
    registry: &prometheus::Registry,
) -> Result<(Engine, Arc<RunningNode>), String> {
    let mut secret = [0u8; 32];
    hex::decode_to_slice(&cluster.secret_hex, &mut secret)
        .map_err(|_| "CAIRN_CLUSTER_SECRET must be 64 hex digits".to_owned())?;
    let secret = ClusterSecret::from_bytes(secret);
    let tls = listeners.tls;
    if tls.is_some() {
        println!(
            "cairn: cluster node {}: TLS between nodes, as {}",
            cluster.node_id,
            cairn_cluster::node_dns_name(cluster.node_id)
        );
    }
    let auth = ClusterAuth { secret, tls };
    let per_node = cfg.drives.len();
    let position = cluster
        .nodes
        .keys()
        .position(|id| *id == cluster.node_id)
        .ok_or("this node is not in the cluster list")?;
    let metrics = EngineMetrics::register(registry).map_err(|e| format!("metrics: {e}"))?;

    // Every drive of the cluster, in cluster order.
    let runtime = tokio::runtime::Handle::current();
    let mut drives: Vec<Arc<dyn ShardStore>> = Vec::new();
    let mut local: Vec<Arc<dyn ShardStore>> = Vec::new();
    for (p, (id, addr)) in cluster.nodes.iter().enumerate() {
        let node = u16::try_from(*id).map_err(|_| format!("node id {id} is too large"))?;
        for i in 0..per_node {
            let index = u16::try_from(p * per_node + i)
                .map_err(|_| "too many drives in the cluster".to_owned())?;
            if p == position {
                let drive: Arc<dyn ShardStore> = Arc::new(
                    LocalDrive::open(
                        index,
                        &cfg.drives[i],
                        engine_cfg.segment_size_max_bytes,
                        Some(metrics.drive(index)),
                    )
                    .map_err(|e| format!("opening drive {}: {e}", cfg.drives[i].display()))?
                    .on_node(node),
                );
                local.push(drive.clone());
                drives.push(drive);
            } else {
                let shard_addr = ClusterConfig::shard_addr(addr)?;
                drives.push(Arc::new(RemoteDrive::new(
                    index,
                    node,
                    cluster.node_id,
                    &shard_addr,
                    auth.clone(),
                    runtime.clone(),
                )));
            }
        }
    }

    tokio::spawn(serve_shards(
        listeners.shard,
        cluster.node_id,
        local,
        auth.clone(),
    ));

    let store = Arc::new(
        MetaStore::open_sealed(&cfg.data_dir.join("meta"), &root)
            .map_err(|e| format!("opening the metadata store: {e}"))?,
    );
    let node = RunningNode::start_on(
        cluster.node_id,
        &cfg.data_dir,
        store,
        listeners.raft,
        raft_config(),
        auth,
        Arc::new(Faults::default()),
    )
    .await
    .map_err(|e| format!("starting cluster node {}: {e}", cluster.node_id))?;
    let members: BTreeMap<u64, ClusterNode> = cluster
        .nodes
        .iter()
        .map(|(id, addr)| {
            (
                *id,
                ClusterNode {
                    raft_addr: addr.clone(),
                    s3_addr: String::new(),
                },
            )
        })
        .collect();
    println!(
        "cairn: cluster node {} of {}: waiting for a leader",
        cluster.node_id,
        members.len()
    );
    let leader = node
        .join(members.clone(), LEADER_WAIT, JOIN_TIMEOUT)
        .await?;
    println!("cairn: cluster leader is node {leader}");
    let node = Arc::new(node);
    let writer = ClusterWriter::new(node.raft.clone(), node.network.clone(), COMMIT_TIMEOUT);
    if !node
        .store
        .set_committer(Arc::new(RaftCommitter::new(writer, runtime)))
    {
        return Err("the metadata store already had a committer".into());
    }
    let store = node.store.clone();
    // Opening commits through Raft (blocking on this runtime): off it.
    let engine = tokio::task::spawn_blocking(move || {
        let engine = Engine::open_on(engine_cfg, &root, metrics, drives, store);
        drop(root);
        engine
    })
    .await
    .map_err(|e| format!("opening storage: {e}"))?
    .map_err(|e| format!("opening storage: {e}"))?;
    // Nodes added to the configuration join once the leader sees them; the
    // leader then moves their share of the shards onto them, and moves the
    // shards of drained nodes off, in the background at a bounded rate.
    let (reconciling, rebalancing) = (node.clone(), engine.clone());
    let mut rebalance_due = !cluster.drain.is_empty();
    let drained: Vec<u64> = cluster.drain.iter().map(|d| u64::from(*d)).collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MEMBERSHIP_CHECK_PERIOD);
        loop {
            tick.tick().await;
            match reconciling.reconcile_membership(&members, &drained).await {
                Ok(true) => {
                    println!("cairn: cluster membership now {:?}", members.keys());
                    rebalance_due = true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("cluster membership: {e}"),
            }
            if rebalance_due && reconciling.is_leader() {
                rebalance_due = false;
                let engine = rebalancing.clone();
                tokio::spawn(async move {
                    let opts = cairn_storage_engine::RebalanceOptions {
                        bytes_per_sec: Some(AUTO_REBALANCE_BYTES_PER_SEC),
                    };
                    match engine.rebalance(opts).await {
                        Ok(Some(r)) => println!(
                            "cairn: rebalance finished: {} shards moved, {} skipped",
                            r.shards_moved, r.shards_skipped
                        ),
                        Ok(None) => {} // one was already running
                        Err(e) => tracing::error!(error = %e, "background rebalance failed"),
                    }
                });
            }
        }
    });
    // Every node's compaction keeps clear of this node's writes in flight.
    let horizon_engine = engine.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WRITER_HORIZON_PERIOD);
        loop {
            tick.tick().await;
            if let Err(e) = horizon_engine.publish_writer_horizon().await {
                tracing::debug!(error = %e, "publishing the writer horizon");
            }
        }
    });
    Ok((engine, node))
}
