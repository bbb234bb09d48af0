//! Three Raft nodes in one process, talking HTTP over loopback: replication,
//! forwarding from a follower, a partitioned leader, healing, a stopped
//! node, catching up by snapshot, and refusing unsigned messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_storage_engine::{MetaCf, MetaCommand, MetaOp};
use openraft::Config;

use crate::network::Route;
use crate::{
    ClusterNode, ClusterRequest, ClusterSecret, ClusterWriter, Faults, HttpNetwork, NodeId,
    RunningNode,
};

type Node = RunningNode;

fn secret() -> ClusterSecret {
    ClusterSecret::from_bytes([7; 32])
}

fn config() -> Config {
    // Generous for 2 busy CI cores: heartbeats every 100 ms, elections after
    // 0.6–1.2 s without one.
    Config {
        cluster_name: "test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        ..Default::default()
    }
}

/// Nodes keep their data dirs until the test ends.
async fn start(
    id: NodeId,
    faults: &Arc<Faults>,
    config: Config,
    dirs: &mut Vec<tempfile::TempDir>,
) -> (Node, ClusterNode) {
    let dir = tempfile::tempdir().unwrap();
    let node = RunningNode::start(
        id,
        dir.path(),
        "127.0.0.1:0",
        config,
        secret(),
        faults.clone(),
    )
    .await
    .unwrap();
    dirs.push(dir);
    let info = node.info.clone();
    (node, info)
}

/// Nodes 1, 2 and 3, initialized as one cluster.
async fn start_three(
    faults: &Arc<Faults>,
    config: Config,
    dirs: &mut Vec<tempfile::TempDir>,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        let (node, addr) = start(id, faults, config.clone(), dirs).await;
        members.insert(id, addr);
        nodes.push(node);
    }
    nodes[0].raft.initialize(members).await.unwrap();
    nodes
}

fn request(key: &str) -> ClusterRequest {
    ClusterRequest::new(
        MetaCommand {
            guards: vec![],
            ops: vec![MetaOp::Put {
                cf: MetaCf::Objects,
                key: key.as_bytes().to_vec(),
                value: b"v".to_vec(),
            }],
        }
        .encode(),
    )
}

fn has(node: &Node, key: &str) -> bool {
    node.store.export().unwrap().ops.iter().any(
        |op| matches!(op, MetaOp::Put { cf: MetaCf::Objects, key: k, .. } if k == key.as_bytes()),
    )
}

async fn leader_among(nodes: &[&Node], not: Option<NodeId>) -> NodeId {
    let m = nodes[0]
        .raft
        .wait(Some(Duration::from_secs(20)))
        .metrics(
            |m| m.current_leader.is_some() && m.current_leader != not,
            "a leader",
        )
        .await
        .unwrap();
    m.current_leader.unwrap()
}

async fn applied_everywhere(nodes: &[&Node], index: u64) {
    for n in nodes {
        n.raft
            .wait(Some(Duration::from_secs(20)))
            .applied_index_at_least(Some(index), "applied")
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_survive_a_partition_and_a_stopped_node() {
    let faults = Arc::new(Faults::default());
    let mut dirs = Vec::new();
    let nodes = start_three(&faults, config(), &mut dirs).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let by_id = |id: NodeId| nodes.iter().find(|n| n.id == id).unwrap();

    // A write on the leader reaches every node's metadata.
    let leader = leader_among(&all, None).await;
    let w = by_id(leader)
        .raft
        .client_write(request("k1"))
        .await
        .unwrap();
    applied_everywhere(&all, w.log_id.index).await;
    assert!(nodes.iter().all(|n| has(n, "k1")));
    // A write handed to a follower is forwarded to the leader.
    let follower = nodes.iter().find(|n| n.id != leader).unwrap();
    let writer = ClusterWriter::new(
        follower.raft.clone(),
        HttpNetwork::new(follower.id, secret(), faults.clone()),
        Duration::from_secs(10),
    );
    let forwarded = writer.write(request("via-follower")).await.unwrap();
    applied_everywhere(&all, forwarded.index).await;
    assert!(nodes.iter().all(|n| has(n, "via-follower")));
    // A command whose guard no longer holds commits as a refusal, and the
    // writer says so (nothing is written anywhere).
    let stale_view = ClusterRequest::new(
        MetaCommand {
            guards: vec![cairn_storage_engine::MetaGuard::value_is(
                MetaCf::Objects,
                b"k1",
                None,
            )],
            ops: vec![MetaOp::Put {
                cf: MetaCf::Objects,
                key: b"never".to_vec(),
                value: b"v".to_vec(),
            }],
        }
        .encode(),
    );
    assert!(matches!(
        writer.write(stale_view).await,
        Err(crate::WriteError::GuardFailed(0))
    ));
    assert!(nodes.iter().all(|n| !has(n, "never")));

    // Partition the leader away: the majority elects another and goes on.
    faults.isolate(leader, &[1, 2, 3]);
    let cut_at = std::time::Instant::now();
    let majority: Vec<&Node> = nodes.iter().filter(|n| n.id != leader).collect();
    let new_leader = leader_among(&majority, Some(leader)).await;
    eprintln!(
        "failover: node {new_leader} leads {} ms after leader {leader} was cut off",
        cut_at.elapsed().as_millis()
    );
    assert_ne!(new_leader, leader);
    let w2 = by_id(new_leader)
        .raft
        .client_write(request("k2"))
        .await
        .unwrap();
    applied_everywhere(&majority, w2.log_id.index).await;
    // The minority side cannot commit: its write never completes.
    let stale = tokio::time::timeout(
        Duration::from_secs(3),
        by_id(leader).raft.client_write(request("k3")),
    )
    .await;
    assert!(
        !matches!(stale, Ok(Ok(_))),
        "a partitioned leader committed a write"
    );
    // Through the forwarding writer too: it gives up with a timeout.
    let cut_writer = ClusterWriter::new(
        by_id(leader).raft.clone(),
        HttpNetwork::new(leader, secret(), faults.clone()),
        Duration::from_secs(2),
    );
    assert!(matches!(
        cut_writer.write(request("k3")).await,
        Err(crate::WriteError::Timeout(_))
    ));

    // Healed, the old leader follows; what was acknowledged is everywhere,
    // what was not is nowhere.
    faults.heal();
    applied_everywhere(&all, w2.log_id.index).await;
    let w3 = by_id(new_leader)
        .raft
        .client_write(request("k4"))
        .await
        .unwrap();
    applied_everywhere(&all, w3.log_id.index).await;
    for n in &nodes {
        assert!(
            has(n, "k1") && has(n, "k2") && has(n, "k4"),
            "node {}",
            n.id
        );
        assert!(
            !has(n, "k3"),
            "node {} applied an unacknowledged write",
            n.id
        );
    }

    // One node stopped: two of three still commit.
    let follower = nodes.iter().find(|n| n.id != new_leader).unwrap();
    follower.shutdown().await;
    let live: Vec<&Node> = nodes.iter().filter(|n| n.id != follower.id).collect();
    let leader_now = leader_among(&live, None).await;
    let w4 = by_id(leader_now)
        .raft
        .client_write(request("k5"))
        .await
        .unwrap();
    applied_everywhere(&live, w4.log_id.index).await;
    assert!(live.iter().all(|n| has(n, "k5")));
    for n in &nodes {
        n.shutdown().await;
    }
}

/// A follower cut off while the others write and compact their logs comes
/// back and catches up by installing a snapshot sent over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_catches_up_by_snapshot() {
    let faults = Arc::new(Faults::default());
    let mut dirs = Vec::new();
    let compacting = Config {
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(10),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..config()
    };
    let nodes = start_three(&faults, compacting.clone(), &mut dirs).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = leader_among(&all, None).await;
    let by_id = |id: NodeId| nodes.iter().find(|n| n.id == id).unwrap();
    let lagging = nodes.iter().find(|n| n.id != leader).unwrap();
    faults.isolate(lagging.id, &[1, 2, 3]);
    let mut last = 0;
    for i in 0..40 {
        last = by_id(leader)
            .raft
            .client_write(request(&format!("key-{i:02}")))
            .await
            .unwrap()
            .log_id
            .index;
    }
    // The leader's log no longer holds what the lagging node misses.
    by_id(leader)
        .raft
        .wait(Some(Duration::from_secs(20)))
        .metrics(|m| m.purged.is_some_and(|p| p.index > 5), "purged")
        .await
        .unwrap();
    faults.heal();
    applied_everywhere(&all, last).await;
    let m = lagging.raft.metrics().borrow().clone();
    assert!(m.snapshot.is_some(), "caught up through a snapshot: {m:?}");
    let want = by_id(leader).store.export().unwrap();
    let got = lagging.store.export().unwrap();
    let data = |c: &MetaCommand| -> Vec<MetaOp> {
        c.ops
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    MetaOp::Put {
                        cf: MetaCf::Objects,
                        ..
                    }
                )
            })
            .cloned()
            .collect()
    };
    assert_eq!(data(&got).len(), 40);
    assert_eq!(data(&got), data(&want));
    for n in &nodes {
        n.shutdown().await;
    }
}

/// A message without the cluster's tag, with a wrong one, or with a stale
/// timestamp is refused before its body is read; a body that is not the
/// one the tag covers is refused too.
#[tokio::test]
async fn raft_messages_need_the_cluster_secret() {
    let faults = Arc::new(Faults::default());
    let mut dirs = Vec::new();
    let (node, addr) = start(1, &faults, config(), &mut dirs).await;
    let addr = addr.raft_addr;
    let path = "/raft/v1/vote";
    let now = crate::network::now_ms();
    let to_1 = Route { from: 2, to: 1 };
    let ids = Some((2, 1));
    let vote = vote_body(2);
    assert_eq!(post_status(&addr, path, ids, None, &vote).await, 401);
    let wrong = ClusterSecret::from_bytes([8; 32]).sign(path, to_1, now, &vote);
    assert_eq!(post_status(&addr, path, ids, wrong, &vote).await, 401);
    let stale = secret().sign(path, to_1, now - 10 * 60 * 1000, &vote);
    assert_eq!(post_status(&addr, path, ids, stale, &vote).await, 401);
    let other_path = secret().sign("/raft/v1/append", to_1, now, &vote);
    assert_eq!(post_status(&addr, path, ids, other_path, &vote).await, 401);
    // Tagged for another body: the body check refuses it.
    let other_body = secret().sign(path, to_1, now, b"{}");
    assert_eq!(post_status(&addr, path, ids, other_body, &vote).await, 400);
    let good = secret().sign(path, to_1, now, &vote);
    assert_eq!(post_status(&addr, path, ids, good, &vote).await, 200);
    node.shutdown().await;
}

/// A candidate's vote request, sent by node `from` (the vote names it).
fn vote_body(from: NodeId) -> Vec<u8> {
    serde_json::to_vec(&openraft::raft::VoteRequest::<NodeId>::new(
        openraft::Vote::new(9, from),
        None,
    ))
    .unwrap()
}

/// Regression (issue 19, replay across nodes): the tag covers the sender's
/// and the receiver's ids, so a message captured on its way to node 2 is
/// refused by node 3, whichever ids the replayer writes in the headers; a
/// message without the ids, to another node, or claiming to come from the
/// receiver itself is refused too — all before the body is read.
#[tokio::test]
async fn raft_messages_are_bound_to_their_sender_and_receiver() {
    let faults = Arc::new(Faults::default());
    let mut dirs = Vec::new();
    let (n2, a2) = start(2, &faults, config(), &mut dirs).await;
    let (n3, a3) = start(3, &faults, config(), &mut dirs).await;
    let path = "/raft/v1/vote";
    let vote = vote_body(1);
    let now = crate::network::now_ms();
    let captured = secret().sign(path, Route { from: 1, to: 2 }, now, &vote);
    // Meant for node 2: node 2 takes it.
    let status = post_status(&a2.raft_addr, path, Some((1, 2)), captured.clone(), &vote).await;
    assert_eq!(status, 200);
    // Replayed to node 3, as it was, or with the receiver id rewritten.
    for ids in [(1, 2), (1, 3)] {
        let status = post_status(&a3.raft_addr, path, Some(ids), captured.clone(), &vote).await;
        assert_eq!(status, 401, "{ids:?}");
    }
    // Node 2 again, claiming another sender.
    let status = post_status(&a2.raft_addr, path, Some((3, 2)), captured.clone(), &vote).await;
    assert_eq!(status, 401);
    // No ids at all.
    let status = post_status(&a2.raft_addr, path, None, captured, &vote).await;
    assert_eq!(status, 401);
    // Correctly tagged, but from the receiver itself, or from node 0.
    for from in [2, 0] {
        let route = Route { from, to: 2 };
        let tag = secret().sign(path, route, now, &vote);
        let status = post_status(&a2.raft_addr, path, Some((from, 2)), tag, &vote).await;
        assert_eq!(status, 401, "from {from}");
    }
    // Authenticated as node 1, but the vote inside names node 3 as the
    // candidate: refused (a node cannot campaign, or lead, as another).
    let impostor = vote_body(3);
    let tag = secret().sign(path, Route { from: 1, to: 2 }, now, &impostor);
    let status = post_status(&a2.raft_addr, path, Some((1, 2)), tag, &impostor).await;
    assert_eq!(status, 401);
    n2.shutdown().await;
    n3.shutdown().await;
}

/// One POST over a fresh connection with the given (from, to) ids and
/// (tag, body hash) headers; the status code.
async fn post_status(
    addr: &str,
    path: &str,
    ids: Option<(NodeId, NodeId)>,
    signed: Option<(String, String)>,
    body: &[u8],
) -> u16 {
    use http_body_util::Full;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::post(path).header("host", addr);
    if let Some((from, to)) = ids {
        req = req
            .header("x-cairn-node-from", from)
            .header("x-cairn-node-to", to);
    }
    if let Some((auth, sha)) = signed {
        req = req
            .header("x-cairn-raft-auth", auth)
            .header("x-cairn-body-sha256", sha);
    }
    let req = req
        .body(Full::new(bytes::Bytes::copy_from_slice(body)))
        .unwrap();
    send.send_request(req).await.unwrap().status().as_u16()
}
