//! Shard transfer over real HTTP on loopback: `serve_shards` in front of a
//! real `LocalDrive` in a temporary directory, used through `RemoteDrive`
//! from blocking threads, and probed with hand-made requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cairn_erasure::shard_checksum;
use cairn_storage_engine::{ChunkId, LocalDrive, ShardLocation, ShardReadError, ShardStore};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::network::Route;
use crate::shards::{RemoteDrive, ShardSigner, serve_shards};
use crate::{ClusterSecret, NodeId};

const DRIVE: u16 = 5;
/// The node serving the drive, and the node calling it.
const PEER: NodeId = 2;
const ME: NodeId = 1;
const TO_PEER: Route = Route { from: ME, to: PEER };

fn secret() -> ClusterSecret {
    ClusterSecret::from_bytes([7; 32])
}

/// A peer serving one local drive.
struct Peer {
    addr: SocketAddr,
    drive: Arc<LocalDrive>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Peer {
    async fn start() -> Peer {
        let dir = tempfile::tempdir().unwrap();
        // Small segments, so a few shards roll over to a new one.
        let drive = Arc::new(LocalDrive::open(DRIVE, dir.path(), 1 << 20, None).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let drives: Vec<Arc<dyn ShardStore>> = vec![drive.clone()];
        let server = tokio::spawn(serve_shards(listener, PEER, drives, secret()));
        Peer {
            addr,
            drive,
            server,
            _dir: dir,
        }
    }

    fn remote(&self, index: u16, secret: ClusterSecret) -> Arc<RemoteDrive> {
        Arc::new(RemoteDrive::new(
            index,
            PEER as u16,
            ME,
            &self.addr.to_string(),
            secret,
            tokio::runtime::Handle::current(),
        ))
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    /// How many shards the drive holds.
    fn shard_count(&self) -> usize {
        let drive = &self.drive;
        drive
            .segments()
            .unwrap()
            .iter()
            .map(|s| drive.scan_segment(s.id).unwrap().len())
            .sum()
    }
}

/// Runs `f` on a blocking thread, as the engine calls drives.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A reply to a hand-made request: status, error kind, body.
struct Reply {
    status: StatusCode,
    kind: Option<String>,
}

async fn send(
    method: Method,
    addr: SocketAddr,
    path_and_query: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path_and_query}"))
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let kind = resp
        .headers()
        .get("x-cairn-shard-error")
        .map(|v| v.to_str().unwrap().to_owned());
    let _ = resp.into_body().collect().await.unwrap();
    Reply { status, kind }
}

/// SigV4 headers for a request, as a peer holding `secret` makes them.
fn signed(
    secret: &ClusterSecret,
    method: &Method,
    path_and_query: &str,
    host: &str,
    body_sha256: &str,
    time: SystemTime,
) -> Vec<(&'static str, String)> {
    ShardSigner::new(secret)
        .unwrap()
        .headers(
            TO_PEER,
            method.as_str(),
            path_and_query,
            host,
            body_sha256,
            time,
        )
        .unwrap()
}

fn append_query(chunk: &ChunkId, shard: u8, body: &[u8]) -> String {
    format!(
        "/shard/v1/append?drive={DRIVE}&chunk={chunk}&shard={shard}&checksum={}&len={}",
        shard_checksum(body).0,
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_round_trip_to_a_remote_local_drive() {
    let peer = Peer::start().await;
    let remote = peer.remote(DRIVE, secret());
    let local = peer.drive.clone();
    blocking(move || {
        assert_eq!(remote.index(), DRIVE);
        let sizes = [1usize, 17, 4096, 200_000, 700_000, 2 << 20, 3];
        let mut written = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let chunk = ChunkId::from_bytes([i as u8 + 1; 32]);
            let shard = i as u8;
            let data = payload(i as u8, len);
            let (loc, seq) = remote
                .append(&chunk, shard, &data, shard_checksum(&data))
                .unwrap();
            assert_eq!(seq, 0);
            remote.sync(seq).unwrap();
            assert_eq!(loc.drive, DRIVE, "the peer's drive index passes through");
            written.push((loc, chunk, shard, data));
        }
        for (loc, chunk, shard, data) in &written {
            let len = data.len() as u32;
            let got = remote.read(loc, chunk, *shard, len).unwrap();
            assert_eq!(&got[..], &data[..], "byte-exact through the wire");
            // And on the peer's drive itself, at the location returned.
            let there = local.read(loc, chunk, *shard, len).unwrap();
            assert_eq!(&there[..], &data[..]);
        }

        // Listing and scanning: the same as the drive answers locally.
        let segments = remote.segments().unwrap();
        assert_eq!(segments, local.segments().unwrap());
        assert!(
            segments.len() >= 2,
            "shards should have rolled: {segments:?}"
        );
        assert_eq!(segments.iter().filter(|s| s.active).count(), 1);
        let first = segments[0].id;
        let scanned = remote.scan_segment(first).unwrap();
        assert_eq!(scanned, local.scan_segment(first).unwrap());
        let in_first: Vec<_> = written.iter().filter(|w| w.0.segment == first).collect();
        assert_eq!(scanned.len(), in_first.len());
        for (s, (loc, chunk, shard, data)) in scanned.iter().zip(in_first) {
            assert_eq!(s.offset, loc.offset);
            assert_eq!(s.chunk, *chunk);
            assert_eq!(s.shard_index, *shard);
            assert_eq!(s.payload_len as usize, data.len());
        }

        // Wrong expectations: what the drive says, passed through.
        let (loc, chunk, shard, data) = &written[1];
        let len = data.len() as u32;
        let other = ChunkId::from_bytes([0xee; 32]);
        assert!(matches!(
            remote.read(loc, &other, *shard, len),
            Err(ShardReadError::Corrupt(_))
        ));
        assert!(matches!(
            remote.read(loc, chunk, shard + 1, len),
            Err(ShardReadError::Corrupt(_))
        ));
        let nowhere = ShardLocation {
            segment: 12345,
            ..*loc
        };
        assert!(matches!(
            remote.read(&nowhere, chunk, *shard, len),
            Err(ShardReadError::Missing(_))
        ));
        let past_end = ShardLocation {
            offset: 1 << 30,
            ..*loc
        };
        assert!(matches!(
            remote.read(&past_end, chunk, *shard, len),
            Err(ShardReadError::Missing(_))
        ));

        // Seal the active segment: the next append starts another.
        let active = segments.iter().find(|s| s.active).unwrap().id;
        assert!(matches!(
            remote.remove_segment(active),
            Err(cairn_storage_engine::EngineError::Internal(_))
        ));
        assert!(remote.seal_active(active));
        assert!(!remote.seal_active(active));
        let data = payload(9, 100);
        let chunk = ChunkId::from_bytes([9; 32]);
        let (loc, _) = remote
            .append(&chunk, 0, &data, shard_checksum(&data))
            .unwrap();
        assert!(loc.segment > active);

        // Remove a sealed segment: its shards are gone.
        let freed = remote.remove_segment(first).unwrap();
        assert_eq!(freed, segments[0].len_bytes);
        let (loc, chunk, shard, data) = &written[0];
        assert!(matches!(
            remote.read(loc, chunk, *shard, data.len() as u32),
            Err(ShardReadError::Missing(_))
        ));
        assert_eq!(remote.remove_segment(first).unwrap(), 0);
        assert!(!local.segments().unwrap().iter().any(|s| s.id == first));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_concurrent_appends_share_one_remote_drive() {
    let peer = Peer::start().await;
    let remote = peer.remote(DRIVE, secret());
    let threads: Vec<_> = (0..6u8)
        .map(|t| {
            let remote = remote.clone();
            tokio::task::spawn_blocking(move || {
                let chunk = ChunkId::from_bytes([t; 32]);
                (0..15)
                    .map(|i| {
                        let data = payload(t ^ i, 1000 + usize::from(i) * 97);
                        let (loc, _) = remote
                            .append(&chunk, t, &data, shard_checksum(&data))
                            .unwrap();
                        (loc, chunk, t, data)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.await.unwrap());
    }
    let reader = remote.clone();
    blocking(move || {
        for (loc, chunk, shard, data) in &all {
            let got = reader.read(loc, chunk, *shard, data.len() as u32).unwrap();
            assert_eq!(&got[..], &data[..]);
        }
    })
    .await;
    assert_eq!(peer.shard_count(), 6 * 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_unknown_drive_and_unreachable_peer_are_errors() {
    let peer = Peer::start().await;
    let unknown = peer.remote(DRIVE + 1, secret());
    // A port nobody listens on (bound, then released).
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let unreachable = Arc::new(RemoteDrive::new(
        DRIVE,
        3,
        ME,
        &closed.to_string(),
        secret(),
        tokio::runtime::Handle::current(),
    ));
    blocking(move || {
        for drive in [unknown, unreachable] {
            let data = payload(1, 64);
            let chunk = ChunkId::from_bytes([1; 32]);
            let err = drive
                .append(&chunk, 0, &data, shard_checksum(&data))
                .unwrap_err();
            assert!(
                matches!(err, cairn_storage_engine::EngineError::Io { .. }),
                "{err}"
            );
            let loc = ShardLocation {
                node: 0,
                drive: drive.index(),
                segment: 1,
                offset: 32,
            };
            assert!(matches!(
                drive.read(&loc, &chunk, 0, 64),
                Err(ShardReadError::Io(_))
            ));
            assert!(drive.segments().is_err());
            assert!(drive.scan_segment(1).is_err());
            assert!(drive.remove_segment(1).is_err());
            assert!(!drive.seal_active(1));
        }
    })
    .await;
    assert_eq!(peer.shard_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_requests_without_a_valid_signature_are_refused() {
    let peer = Peer::start().await;

    // A peer with another cluster's secret.
    let stranger = peer.remote(DRIVE, ClusterSecret::from_bytes([8; 32]));
    blocking(move || {
        let data = payload(1, 64);
        let chunk = ChunkId::from_bytes([1; 32]);
        let err = stranger
            .append(&chunk, 0, &data, shard_checksum(&data))
            .unwrap_err();
        assert!(err.to_string().contains("401 Unauthorized"), "{err}");
        assert!(stranger.segments().is_err());
        assert!(!stranger.seal_active(1));
    })
    .await;

    let body = payload(2, 100);
    let chunk = ChunkId::from_bytes([2; 32]);
    let path = append_query(&chunk, 0, &body);
    let body_sha = sha256_hex(&body);
    let now = SystemTime::now();
    let unauthorized = |r: Reply| {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.kind.as_deref(), Some("unauthorized"));
    };

    // No signature at all.
    let headers = vec![("x-amz-content-sha256", body_sha.clone())];
    unauthorized(send(Method::POST, peer.addr, path.clone(), headers, body.clone()).await);

    // A tampered signature.
    let mut headers = signed(
        &secret(),
        &Method::POST,
        &path,
        &peer.host(),
        &body_sha,
        now,
    );
    for (name, value) in &mut headers {
        if *name == "authorization" {
            let last = if value.ends_with('0') { "1" } else { "0" };
            value.pop();
            value.push_str(last);
        }
    }
    unauthorized(send(Method::POST, peer.addr, path.clone(), headers, body.clone()).await);

    // Signed for other parameters (shard 0), sent with shard 1.
    let headers = signed(
        &secret(),
        &Method::POST,
        &path,
        &peer.host(),
        &body_sha,
        now,
    );
    let moved = append_query(&chunk, 1, &body);
    unauthorized(send(Method::POST, peer.addr, moved, headers, body.clone()).await);

    // Stale and future dates, even correctly signed.
    let ten_minutes = Duration::from_secs(600);
    for time in [now - ten_minutes, now + ten_minutes] {
        let headers = signed(
            &secret(),
            &Method::POST,
            &path,
            &peer.host(),
            &body_sha,
            time,
        );
        unauthorized(send(Method::POST, peer.addr, path.clone(), headers, body.clone()).await);
    }
    assert_eq!(peer.shard_count(), 0, "nothing refused was appended");

    // Within the allowed skew it is accepted.
    let headers = signed(
        &secret(),
        &Method::POST,
        &path,
        &peer.host(),
        &body_sha,
        now - Duration::from_secs(120),
    );
    let r = send(Method::POST, peer.addr, path.clone(), headers, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(peer.shard_count(), 1);
}

/// Shard requests go through the S3 verifier configured for shards: signed
/// with the cluster's key but for the `s3` service, or without the body's
/// SHA-256 (`UNSIGNED-PAYLOAD`), they are refused before the body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_requests_for_another_service_or_without_a_body_hash_are_refused() {
    let peer = Peer::start().await;
    let body = payload(4, 100);
    let chunk = ChunkId::from_bytes([4; 32]);
    let path = append_query(&chunk, 0, &body);
    let signer = ShardSigner::new(&secret()).unwrap();
    let now = SystemTime::now();
    for (service, declared) in [
        ("s3", sha256_hex(&body)),
        ("cairn-shard", "UNSIGNED-PAYLOAD".to_owned()),
    ] {
        let headers = signer
            .headers_for(
                service,
                TO_PEER,
                "POST",
                &path,
                &peer.host(),
                &declared,
                now,
            )
            .unwrap();
        let r = send(Method::POST, peer.addr, path.clone(), headers, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{service} {declared}");
    }
    assert_eq!(peer.shard_count(), 0, "nothing refused was appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_bodies_that_do_not_match_are_refused() {
    let peer = Peer::start().await;
    let body = payload(3, 1000);
    let chunk = ChunkId::from_bytes([3; 32]);
    let host = peer.host();
    let now = SystemTime::now();
    let post = |path: String, signed_sha: String, body: Vec<u8>| {
        let headers = signed(&secret(), &Method::POST, &path, &host, &signed_sha, now);
        send(Method::POST, peer.addr, path, headers, body)
    };

    // A checksum that is not the payload's.
    let path = format!(
        "/shard/v1/append?drive={DRIVE}&chunk={chunk}&shard=0&checksum={}&len={}",
        shard_checksum(&body).0 ^ 1,
        body.len()
    );
    let r = post(path, sha256_hex(&body), body.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.kind.as_deref(), Some("bad-request"));

    // A body other than the one signed.
    let mut altered = body.clone();
    altered[10] ^= 1;
    let r = post(append_query(&chunk, 0, &body), sha256_hex(&body), altered).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A length that is not the body's.
    let path = format!(
        "/shard/v1/append?drive={DRIVE}&chunk={chunk}&shard=0&checksum={}&len=999",
        shard_checksum(&body).0
    );
    let r = post(path, sha256_hex(&body), body.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Missing parameters, an unknown route, the wrong method.
    let r = post(
        format!("/shard/v1/append?drive={DRIVE}"),
        sha256_hex(&body),
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post(
        format!("/shard/v1/format?drive={DRIVE}"),
        sha256_hex(b""),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.kind.as_deref(), Some("no-such-route"));
    let r = post(
        format!("/shard/v1/segments?drive={DRIVE}"),
        sha256_hex(b""),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = post(
        format!("/shard/v1/seal?drive={}&segment=1", DRIVE + 1),
        sha256_hex(b""),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.kind.as_deref(), Some("no-such-drive"));
    assert_eq!(peer.shard_count(), 0);

    // The matching request is accepted.
    let r = post(
        append_query(&chunk, 0, &body),
        sha256_hex(&body),
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(peer.shard_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_bodies_over_64_mib_are_refused_unread() {
    let peer = Peer::start().await;
    let chunk = ChunkId::from_bytes([4; 32]);
    let len = (64 << 20) + 1;
    let path = format!("/shard/v1/append?drive={DRIVE}&chunk={chunk}&shard=0&checksum=0&len={len}");
    // The signature covers a claimed body hash; the size is refused before
    // any body is read, so none is sent.
    let headers = signed(
        &secret(),
        &Method::POST,
        &path,
        &peer.host(),
        &sha256_hex(b""),
        SystemTime::now(),
    );
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {len}\r\n",
        peer.host()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(peer.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let status_line = String::from_utf8_lossy(&answer);
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert_eq!(peer.shard_count(), 0);
}

/// Regression (issue 19, replay across nodes): the node ids are signed, so
/// a request captured on its way to node 2 is refused by node 3 (as it was,
/// or with its ids rewritten); a signature that does not cover the ids, a
/// request to another node, or one claiming to come from the receiver is
/// refused too — all before the body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_requests_are_bound_to_their_sender_and_receiver() {
    let peer = Peer::start().await;
    let body = payload(6, 100);
    let chunk = ChunkId::from_bytes([6; 32]);
    let path = append_query(&chunk, 0, &body);
    let body_sha = sha256_hex(&body);
    let now = SystemTime::now();
    let signer = ShardSigner::new(&secret()).unwrap();
    let sign = |route: Route| {
        signer
            .headers(route, "POST", &path, &peer.host(), &body_sha, now)
            .unwrap()
    };
    let with_ids = |mut headers: Vec<(&'static str, String)>, from: &str, to: &str| {
        for (name, value) in &mut headers {
            match *name {
                "x-cairn-node-from" => *value = from.to_owned(),
                "x-cairn-node-to" => *value = to.to_owned(),
                _ => {}
            }
        }
        headers
    };
    let refused = |r: Reply, why: &str| {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(r.kind.as_deref(), Some("unauthorized"), "{why}");
    };
    let post = |headers| send(Method::POST, peer.addr, path.clone(), headers, body.clone());

    // Captured on its way to node 3 (this peer is node 2): as it was, and
    // with the receiver rewritten to 2.
    let to_3 = sign(Route { from: ME, to: 3 });
    refused(post(to_3.clone()).await, "to another node");
    refused(post(with_ids(to_3, "1", "2")).await, "receiver rewritten");
    // Signed to node 2, sender rewritten.
    refused(
        post(with_ids(sign(TO_PEER), "3", "2")).await,
        "sender rewritten",
    );
    // From the receiver itself, and from node 0, correctly signed.
    for from in [PEER, 0] {
        refused(
            post(sign(Route { from, to: PEER })).await,
            "from itself or 0",
        );
    }
    // Signed without the ids (a valid signature otherwise), ids added.
    let mut unbound: Vec<(&'static str, String)> = {
        let mut settings = aws_sigv4::http_request::SigningSettings::default();
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        let identity = aws_credential_types::Credentials::new(
            "cairn-node",
            secret().derive_hex("cairn shard transfer v1").unwrap(),
            None,
            None,
            "test",
        )
        .into();
        let params: aws_sigv4::http_request::SigningParams<'_> =
            aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region("cairn")
                .name("cairn-shard")
                .time(now)
                .settings(settings)
                .build()
                .unwrap()
                .into();
        let host = peer.host();
        let signable = aws_sigv4::http_request::SignableRequest::new(
            "POST",
            &path,
            [("host", host.as_str())].into_iter(),
            aws_sigv4::http_request::SignableBody::Precomputed(body_sha.clone()),
        )
        .unwrap();
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .unwrap()
            .into_parts();
        let (headers, _) = instructions.into_parts();
        headers
            .into_iter()
            .map(|h| (h.name(), h.value().to_owned()))
            .collect()
    };
    // The same key signs correctly: without the ids the verifier would
    // take it, so the refusal below is the id binding's.
    unbound.push(("x-cairn-node-from", ME.to_string()));
    unbound.push(("x-cairn-node-to", PEER.to_string()));
    refused(post(unbound).await, "ids not signed");
    // No ids at all.
    let bare: Vec<_> = sign(TO_PEER)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("x-cairn-node-"))
        .collect();
    refused(post(bare).await, "no ids");
    assert_eq!(peer.shard_count(), 0, "nothing refused was appended");

    // And the request as signed for node 2 is taken.
    let r = post(sign(TO_PEER)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(peer.shard_count(), 1);
}
