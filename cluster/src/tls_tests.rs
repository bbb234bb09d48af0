//! TLS between nodes, in process over loopback: certificates from
//! [`CertAuthority`], a shard listener and a Raft node serving TLS, used
//! through `RemoteDrive` and `HttpNetwork` with the right certificate, with
//! none, with one from another CA, and with a node's certificate claiming
//! another node or reaching an address that is another node's.

use std::sync::Arc;
use std::time::Duration;

use cairn_erasure::shard_checksum;
use cairn_storage_engine::{ChunkId, EngineError, LocalDrive, ShardStore};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};

use crate::{
    CertAuthority, ClusterAuth, ClusterNode, ClusterSecret, ClusterTls, Faults, HttpNetwork,
    NodeId, RemoteDrive, RunningNode, serve_shards,
};

const DRIVE: u16 = 5;

fn secret() -> ClusterSecret {
    ClusterSecret::from_bytes([7; 32])
}

/// A CA and the TLS settings of its nodes.
struct Pki {
    ca: CertAuthority,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            ca: CertAuthority::generate(2).unwrap(),
        }
    }

    /// Node `id`'s settings: a new certificate of its own.
    fn tls(&self, id: NodeId) -> Arc<ClusterTls> {
        let (cert, key) = self.ca.issue_node(id, 2).unwrap();
        Arc::new(
            ClusterTls::from_pem(
                id,
                self.ca.cert_pem().as_bytes(),
                cert.as_bytes(),
                key.as_bytes(),
            )
            .unwrap(),
        )
    }

    fn auth(&self, id: NodeId) -> ClusterAuth {
        ClusterAuth {
            secret: secret(),
            tls: Some(self.tls(id)),
        }
    }
}

/// Node 2 serving one drive over TLS.
struct Peer {
    addr: String,
    _drive: Arc<LocalDrive>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve_peer(pki: &Pki, me: NodeId) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let drive = Arc::new(LocalDrive::open(DRIVE, dir.path(), 1 << 20, None).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let drives: Vec<Arc<dyn ShardStore>> = vec![drive.clone()];
    let server = tokio::spawn(serve_shards(listener, me, drives, pki.auth(me)));
    Peer {
        addr,
        _drive: drive,
        server,
        _dir: dir,
    }
}

/// An append through `drive` (on a blocking thread, as the engine calls
/// drives): its error, if any.
async fn append(drive: RemoteDrive) -> Result<(), EngineError> {
    tokio::task::spawn_blocking(move || {
        let data = vec![7u8; 1000];
        let chunk = ChunkId::from_bytes([1; 32]);
        drive
            .append(&chunk, 0, &data, shard_checksum(&data))
            .map(|_| ())
    })
    .await
    .unwrap()
}

fn remote(peer: &Peer, node: u16, from: NodeId, auth: impl Into<ClusterAuth>) -> RemoteDrive {
    RemoteDrive::new(
        DRIVE,
        node,
        from,
        &peer.addr,
        auth,
        tokio::runtime::Handle::current(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_shard_transfer_needs_the_right_node_certificates() {
    let pki = Pki::new();
    let peer = serve_peer(&pki, 2).await;

    // Node 1 with its own certificate, to node 2: taken.
    append(remote(&peer, 2, 1, pki.auth(1))).await.unwrap();

    // Plain HTTP to a TLS listener: no answer at all.
    let err = append(remote(&peer, 2, 1, secret())).await.unwrap_err();
    assert!(matches!(err, EngineError::Io { .. }), "{err}");

    // A certificate for node 1 from another CA: the handshake fails.
    let stranger = Pki::new();
    let err = append(remote(&peer, 2, 1, stranger.auth(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Io { .. }), "{err}");
    assert!(
        !err.to_string().contains("401 Unauthorized"),
        "refused in TLS: {err}"
    );

    // Node 3's certificate, claiming to be node 1 (the secret is right):
    // the listener refuses the request.
    let auth = ClusterAuth {
        secret: secret(),
        tls: Some(pki.tls(3)),
    };
    let err = append(remote(&peer, 2, 1, auth)).await.unwrap_err();
    assert!(err.to_string().contains("401 Unauthorized"), "{err}");

    // Node 1 meaning to reach node 3 at this address (now node 2's): the
    // server's certificate does not name node 3, the client hangs up.
    let err = append(remote(&peer, 3, 1, pki.auth(1))).await.unwrap_err();
    assert!(matches!(err, EngineError::Io { .. }), "{err}");
    assert!(
        !err.to_string().contains("401 Unauthorized"),
        "refused in TLS: {err}"
    );
}

fn config() -> openraft::Config {
    openraft::Config {
        cluster_name: "test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        ..Default::default()
    }
}

/// One vote request from `net` to node `target` at `addr`: whether it got
/// Raft's answer.
async fn vote(net: &mut HttpNetwork, target: NodeId, addr: &str) -> Result<(), String> {
    let node = ClusterNode {
        raft_addr: addr.to_owned(),
        s3_addr: String::new(),
    };
    let mut conn = net.new_client(target, &node).await;
    let req = // Every network here is node 1's: the candidate is the sender (the
    // receiver checks that the vote names it).
    openraft::raft::VoteRequest::new(openraft::Vote::new(1, 1), None);
    let option = RPCOption::new(Duration::from_secs(5));
    conn.vote(req, option)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_raft_messages_need_the_right_node_certificates() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let node = RunningNode::start(
        2,
        dir.path(),
        "127.0.0.1:0",
        config(),
        pki.auth(2),
        Arc::new(Faults::default()),
    )
    .await
    .unwrap();
    let addr = node.info.raft_addr.clone();
    let faults = Arc::new(Faults::default());

    let mut good = HttpNetwork::new(1, pki.auth(1), faults.clone());
    vote(&mut good, 2, &addr).await.unwrap();

    let mut plain = HttpNetwork::new(1, secret(), faults.clone());
    assert!(vote(&mut plain, 2, &addr).await.is_err());

    let mut stranger = HttpNetwork::new(1, Pki::new().auth(1), faults.clone());
    let err = vote(&mut stranger, 2, &addr).await.unwrap_err();
    assert!(!err.contains("401 Unauthorized"), "{err}");

    // Node 3's certificate claiming to be node 1.
    let auth = ClusterAuth {
        secret: secret(),
        tls: Some(pki.tls(3)),
    };
    let mut impostor = HttpNetwork::new(1, auth, faults.clone());
    let err = vote(&mut impostor, 2, &addr).await.unwrap_err();
    assert!(err.contains("401 Unauthorized"), "{err}");

    // Meant for node 3, sent to node 2's address.
    let err = vote(&mut good, 3, &addr).await.unwrap_err();
    assert!(!err.contains("401 Unauthorized"), "{err}");

    // A node refuses to start with another node's certificate.
    let other = tempfile::tempdir().unwrap();
    let err = RunningNode::start(
        4,
        other.path(),
        "127.0.0.1:0",
        config(),
        pki.auth(5),
        Arc::new(Faults::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("node 5"), "{err}");
    node.shutdown().await;
}

/// A CA's certificate can only vouch for names under cairn.internal.
#[test]
fn tls_certificates_name_their_node_only() {
    let pki = Pki::new();
    let (cert, key) = pki.ca.issue_node(7, 2).unwrap();
    let ca = pki.ca.cert_pem().as_bytes();
    ClusterTls::from_pem(7, ca, cert.as_bytes(), key.as_bytes()).unwrap();
    let err = ClusterTls::from_pem(8, ca, cert.as_bytes(), key.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("node-8.cairn.internal"), "{err}");
    let other = Pki::new();
    let err = ClusterTls::from_pem(
        7,
        other.ca.cert_pem().as_bytes(),
        cert.as_bytes(),
        key.as_bytes(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("under the cluster CA"), "{err}");
    // Reloaded from its PEM files, the CA issues certificates that verify.
    let again = CertAuthority::from_pem(pki.ca.cert_pem(), &pki.ca.key_pem()).unwrap();
    let (cert, key) = again.issue_node(9, 2).unwrap();
    ClusterTls::from_pem(9, ca, cert.as_bytes(), key.as_bytes()).unwrap();
    // Someone else's key does not.
    let forged = CertAuthority::from_pem(pki.ca.cert_pem(), &other.ca.key_pem()).unwrap();
    let (cert, key) = forged.issue_node(9, 2).unwrap();
    assert!(ClusterTls::from_pem(9, ca, cert.as_bytes(), key.as_bytes()).is_err());
}

/// A certificate speaks for a node only if that node's name is its one and
/// only name: one naming two nodes, or a wildcard, speaks for none (an
/// operator's own CA may issue such names under cairn.internal).
#[test]
fn a_certificate_with_several_names_speaks_for_no_node() {
    use crate::tls::Peer;
    let cert = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let c = rcgen::generate_simple_self_signed(names).unwrap();
        Peer::Certified(Arc::new(c.cert.der().clone()))
    };
    assert!(cert(&["node-1.cairn.internal"]).may_speak_for(1));
    assert!(!cert(&["node-1.cairn.internal"]).may_speak_for(2));
    let two = cert(&["node-1.cairn.internal", "node-2.cairn.internal"]);
    assert!(!two.may_speak_for(1) && !two.may_speak_for(2));
    let wildcard = cert(&["*.cairn.internal"]);
    assert!(!wildcard.may_speak_for(1));
}
