//! Clients that stop sending a request body.
//!
//! * Hundreds of signed uploads that sent headers and 1,000 bytes, then
//!   nothing, must not freeze anyone else (they used to park one blocking
//!   thread each, and the pool the storage path needs ran dry); the body
//!   idle timeout then answers them `RequestTimeout`, closes them, and
//!   stores nothing.
//! * A client below the minimum body rate is cut off; one above it is not.
//! * An upload that sent only headers (or a few bytes) must not stop
//!   compaction from giving back the space of deleted objects.
//!
//! Everything runs against a real `cairn` process on loopback, with loops
//! bounded in count and time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The connection caps (listener_limits.rs): raised for this
/// test's one client address, when the server has them.
fn connection_cap_args() -> Vec<&'static str> {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["server", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut args = Vec::new();
    if help.contains("--connections-per-address-max") {
        args.extend(["--connections-per-address-max", "4000"]);
    }
    if help.contains("--connections-max") {
        args.extend(["--connections-max", "4000"]);
    }
    args
}

/// How many stalled connections this machine's descriptor limit allows
/// (both ends are in processes with the same limit): at most 600.
fn stall_count() -> usize {
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -n"])
        .output()
        .unwrap();
    let limit: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(1024);
    600.min(limit / 2)
}

/// A PUT (or UploadPart: `path` with its query) of `body`, signed with the
/// SHA-256 of all of it, of which only the first `sent` bytes are written;
/// the connection is returned open.
async fn stalled_put(
    addr: SocketAddr,
    path: &str,
    body_len: usize,
    sha: &str,
    sent: &[u8],
) -> TcpStream {
    let req = RawRequest::new("PUT", path)
        .header("content-length", &body_len.to_string())
        .sign(addr, Payload::Declared(sha.to_owned()));
    let mut wire = req.to_wire(addr);
    wire.extend_from_slice(sent);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&wire).await.unwrap();
    s
}

/// What the server sent until it closed the connection (or `limit`
/// passed: `None`).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&buf).into_owned()),
        // A reset after the answer still counts as closed.
        Ok(Err(_)) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

fn status_of(response: &str) -> Option<u16> {
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Keys under `prefix`, by a signed ListObjectsV2.
async fn keys_under(addr: SocketAddr, bucket: &str, prefix: &str) -> usize {
    let r = RawRequest::new("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    xml_field(&r.text(), "KeyCount").unwrap().parse().unwrap()
}

/// Runs `f`, failing the test if it takes longer than `limit`.
async fn within<T>(what: &str, limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!(
            "{what} did not complete within {limit:?} (after {:?}) while uploads stall",
            started.elapsed()
        ),
    }
}

#[test]
fn hundreds_of_stalled_signed_uploads_freeze_nobody_and_time_out() {
    run(async {
        let idle_secs = 8;
        let mut args = vec!["--body-idle-timeout-secs", "8"];
        args.extend(connection_cap_args());
        let server = TestServer::start_with_args(&args);
        let addr = server.s3_addr();
        let c = sdk_client(&server);
        create_bucket(&c, "stalls").await;
        let mut rng = Rng::new(test_seed("stalls"));
        let existing = rng.bytes(300 * KIB);
        put_bytes(&c, "stalls", "existing", &existing).await;

        // Each stalled upload: 1 MiB declared, its real SHA-256 signed,
        // 1,000 bytes sent, then silence.
        let body = rng.bytes(MIB);
        let sha = sha256_hex(&body);
        let n = stall_count();
        let started = Instant::now();
        let mut stalled = Vec::with_capacity(n);
        for i in 0..n {
            stalled.push(
                stalled_put(
                    addr,
                    &format!("/stalls/stall/{i}"),
                    MIB,
                    &sha,
                    &body[..1000],
                )
                .await,
            );
        }
        eprintln!("{n} uploads stalled in {:?}", started.elapsed());
        // Let the server take them all in (headers read, bodies begun).
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // Everyone else is served promptly: reads, small and large writes
        // (the large one hashes its signed body), listings.
        let quick = Duration::from_secs(4);
        let got = within("GET", quick, get_bytes(&c, "stalls", "existing")).await;
        assert_eq!(got, existing);
        let small = rng.bytes(20 * KIB);
        within("small PUT", quick, put_bytes(&c, "stalls", "small", &small)).await;
        let large = rng.bytes(MIB);
        let r = within(
            "signed 1 MiB PUT",
            quick,
            RawRequest::new("PUT", "/stalls/large")
                .body(large.clone())
                .sign(addr, Payload::Signed)
                .send(addr),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let listed = within("ListObjectsV2", quick, keys_under(addr, "stalls", "")).await;
        assert_eq!(listed, 3, "only the completed objects are listed");
        assert!(
            started.elapsed() < Duration::from_secs(idle_secs),
            "the checks must run while the uploads still stall (took {:?})",
            started.elapsed()
        );

        // The idle timeout answers each stalled upload RequestTimeout and
        // closes it.
        let mut readers = tokio::task::JoinSet::new();
        for (i, mut s) in stalled.into_iter().enumerate() {
            readers.spawn(
                async move { (i, read_until_closed(&mut s, Duration::from_secs(40)).await) },
            );
        }
        let mut timed_out = 0;
        while let Some(res) = readers.join_next().await {
            let (i, response) = res.unwrap();
            let response =
                response.unwrap_or_else(|| panic!("stalled upload {i} was never closed"));
            assert_eq!(status_of(&response), Some(400), "upload {i}: {response}");
            assert!(
                response.contains("<Code>RequestTimeout</Code>"),
                "upload {i}: {response}"
            );
            timed_out += 1;
        }
        assert_eq!(timed_out, n);
        assert!(
            started.elapsed() < Duration::from_secs(idle_secs + 30),
            "closed late: {:?}",
            started.elapsed()
        );
        // Nothing of them was stored, and the server still works.
        assert_eq!(keys_under(addr, "stalls", "stall/").await, 0);
        assert_eq!(get_bytes(&c, "stalls", "large").await, large);
    });
}

#[test]
fn a_client_below_the_minimum_body_rate_is_cut_off() {
    run(async {
        let server = TestServer::start_with_args(&[
            "--body-idle-timeout-secs",
            "30",
            "--body-min-rate-bytes-per-sec",
            "4096",
            "--body-min-rate-window-secs",
            "2",
        ]);
        let addr = server.s3_addr();
        let c = sdk_client(&server);
        create_bucket(&c, "slow").await;
        let mut rng = Rng::new(test_seed("slow"));
        let body = rng.bytes(128 * KIB);
        let sha = sha256_hex(&body);

        // Sends `step` bytes every 250 ms (never idle long), until the body
        // is sent or the server stops it; returns the server's answer.
        async fn trickle(
            addr: SocketAddr,
            key: &str,
            body: &[u8],
            sha: &str,
            step: usize,
        ) -> (String, Duration) {
            let s = stalled_put(addr, &format!("/slow/{key}"), body.len(), sha, &[]).await;
            let (mut rd, mut wr) = s.into_split();
            let started = Instant::now();
            let body = body.to_vec();
            let writer = tokio::spawn(async move {
                // Bounded: the body's pieces, each 250 ms apart.
                for piece in body.chunks(step) {
                    if wr.write_all(piece).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                // Keep the write half open until the answer is read.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let deadline = started + Duration::from_secs(60);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, rd.read(&mut chunk)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => {
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf);
                        // A complete answer (a small XML document or an empty 200).
                        if text.contains("</Error>")
                            || (text.starts_with("HTTP/1.1 200") && text.contains("\r\n\r\n"))
                        {
                            break;
                        }
                    }
                }
            }
            writer.abort();
            (
                String::from_utf8_lossy(&buf).into_owned(),
                started.elapsed(),
            )
        }

        // 200 bytes per 250 ms = 800 B/s, below 4 KiB/s: cut off after the
        // first 2 s window of waiting (the whole body would take 160 s).
        let (response, took) = trickle(addr, "trickled", &body, &sha, 200).await;
        assert_eq!(status_of(&response), Some(400), "{response}");
        assert!(
            response.contains("<Code>RequestTimeout</Code>"),
            "{response}"
        );
        assert!(
            response.to_ascii_lowercase().contains("connection: close"),
            "the connection is closed: {response}"
        );
        assert!(took < Duration::from_secs(15), "cut off after {took:?}");
        assert!(
            !object_exists(&c, "slow", "trickled").await,
            "nothing is stored"
        );

        // 16 KiB per 250 ms = 64 KiB/s: slow, but above the minimum.
        let (response, took) = trickle(addr, "steady", &body, &sha, 16 * KIB).await;
        assert_eq!(
            status_of(&response),
            Some(200),
            "after {took:?}: {response}"
        );
        assert_eq!(get_bytes(&c, "slow", "steady").await, body);
    });
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[test]
fn stalled_uploads_do_not_stop_space_reclamation() {
    run(async {
        let server =
            TestServer::start_with_args(&["--gc-grace-secs", "0", "--gc-interval-secs", "0"]);
        let addr = server.s3_addr();
        let c = sdk_client(&server);
        create_bucket(&c, "reclaim").await;
        let mut rng = Rng::new(test_seed("reclaim"));
        let keep = rng.bytes(300 * KIB);
        put_bytes(&c, "reclaim", "keep", &keep).await;
        for i in 0..12 {
            put_bytes(&c, "reclaim", &format!("tmp/{i}"), &rng.bytes(MIB)).await;
        }
        let drives = server.data_dir().join("drives");
        let full = dir_bytes(&drives);
        for i in 0..12 {
            delete_key(&c, "reclaim", &format!("tmp/{i}")).await;
        }

        // Right after: uploads that stall — a PUT that sent only its
        // headers, one that sent 1,000 bytes, and an UploadPart of headers.
        let body = rng.bytes(MIB);
        let sha = sha256_hex(&body);
        let headers_only = stalled_put(addr, "/reclaim/stalled-a", MIB, &sha, &[]).await;
        let some_bytes = stalled_put(addr, "/reclaim/stalled-b", MIB, &sha, &body[..1000]).await;
        let created = RawRequest::new("POST", "/reclaim/mp?uploads")
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        assert_eq!(created.status, 200, "{}", created.text());
        let upload_id = xml_field(&created.text(), "UploadId").unwrap();
        let part = stalled_put(
            addr,
            &format!(
                "/reclaim/mp?partNumber=1&uploadId={}",
                encode_query(&upload_id)
            ),
            MIB,
            &sha,
            &[],
        )
        .await;

        // Segments last written within the settle time (2 s) are left
        // alone; the stalls are still open (the idle timeout is 20 s).
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let (ok, out, err) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["gc"]);
        assert!(ok, "{out}\n{err}");
        assert!(count_before(&out, "chunks deleted") > 0, "{out}");
        let after = dir_bytes(&drives);
        assert!(
            after * 4 < full,
            "with uploads stalled, drives: {full} bytes before, {after} after ({out})"
        );
        assert_eq!(get_bytes(&c, "reclaim", "keep").await, keep);
        drop((headers_only, some_bytes, part));
    });
}
