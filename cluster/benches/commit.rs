//! `cargo bench --workspace --bench commit`: metadata commits per second
//! with 64 concurrent writers, on the disk under the temp dir:
//! - the single-node path (one synced `MetaStore::apply` per command, as the
//!   server does today; RocksDB groups concurrent synced writes);
//! - a 1-node Raft cluster and a 3-node loopback cluster (`client_write` on
//!   the leader: appended and synced on a majority, then applied).
//!
//! Each command is one ~300-byte object record, like a small PUT's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_cluster::{ClusterRequest, ClusterSecret, Faults, MetaStore, RunningNode};
use cairn_storage_engine::{MetaCf, MetaCommand, MetaOp};

const WRITERS: usize = 64;
const PER_WRITER: usize = 150;

fn command(w: usize, i: usize) -> MetaCommand {
    MetaCommand {
        guards: vec![],
        ops: vec![MetaOp::Put {
            cf: MetaCf::Objects,
            key: format!("bench/{w:03}/{i:05}").into_bytes(),
            value: vec![0x5a; 300],
        }],
    }
}

fn report(name: &str, started: Instant, mut latencies: Vec<Duration>) {
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<34} {:>8.0} commits/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
        latencies.len() as f64 / secs,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}

async fn single_node(dir: &std::path::Path) {
    let store = Arc::new(MetaStore::open(&dir.join("single")).unwrap());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut lat = Vec::new();
            for i in 0..PER_WRITER {
                let t = Instant::now();
                store.apply(&command(w, i), true).unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    report("single node, synced apply", started, all);
}

async fn raft_cluster(dir: &std::path::Path, size: u64) {
    let faults = Arc::new(Faults::default());
    let config = openraft::Config {
        cluster_name: "bench".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        ..Default::default()
    };
    let mut nodes = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=size {
        let node = RunningNode::start(
            id,
            &dir.join(format!("raft{size}-{id}")),
            "127.0.0.1:0",
            config.clone(),
            ClusterSecret::from_bytes([3; 32]),
            faults.clone(),
        )
        .await
        .unwrap();
        members.insert(id, node.info.clone());
        nodes.push(node);
    }
    nodes[0].raft.initialize(members).await.unwrap();
    let m = nodes[0]
        .raft
        .wait(Some(Duration::from_secs(20)))
        .metrics(|m| m.current_leader.is_some(), "leader")
        .await
        .unwrap();
    let leader = nodes
        .iter()
        .find(|n| Some(n.id) == m.current_leader)
        .unwrap()
        .raft
        .clone();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let raft = leader.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 0..PER_WRITER {
                let t = Instant::now();
                raft.client_write(ClusterRequest::new(command(w, i).encode()))
                    .await
                    .unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    report(&format!("{size}-node Raft, client_write"), started, all);
    for n in &nodes {
        n.shutdown().await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
            .unwrap();
    println!(
        "{WRITERS} writers × {PER_WRITER} commits each, data under {}",
        dir.path().display()
    );
    rt.block_on(async {
        single_node(dir.path()).await;
        raft_cluster(dir.path(), 1).await;
        raft_cluster(dir.path(), 3).await;
    });
}
