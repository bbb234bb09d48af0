//! Signing modes as clients use them: the SDK's default CRC32 trailers
//! (aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER) for PutObject and
//! UploadPart, hand-made STREAMING-AWS4-HMAC-SHA256-PAYLOAD uploads with
//! per-chunk signatures (good, corrupted, tampered), unsigned trailers with
//! a wrong CRC, and presigned URLs from the SDK sent over raw HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_s3::error::{BoxError, DisplayErrorContext};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

const BUCKET: &str = "signing-bucket";

/// Records the headers of every request the SDK sends.
#[derive(Clone, Debug, Default)]
struct Capture(Arc<Mutex<Vec<HashMap<String, String>>>>);

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "cairn-e2e-capture"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request();
        let mut m: HashMap<String, String> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        m.insert(":method".into(), req.method().to_owned());
        m.insert(":uri".into(), req.uri().to_owned());
        self.0.lock().unwrap().push(m);
        Ok(())
    }
}

impl Capture {
    fn last(&self) -> HashMap<String, String> {
        self.0
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a captured request")
    }
}

/// Asserts that the request went out as aws-chunked with a CRC32 trailer.
fn assert_crc32_trailer(h: &HashMap<String, String>, what: &str) {
    let sha = h
        .get("x-amz-content-sha256")
        .map(String::as_str)
        .unwrap_or("");
    assert!(
        sha.starts_with("STREAMING-") && sha.ends_with("-TRAILER"),
        "{what}: expected a streaming trailer payload, sent x-amz-content-sha256={sha:?} ({h:?})"
    );
    assert_eq!(
        h.get("x-amz-trailer").map(String::as_str),
        Some("x-amz-checksum-crc32"),
        "{what}: {h:?}"
    );
    assert!(
        h.get("content-encoding")
            .is_some_and(|v| v.contains("aws-chunked")),
        "{what}: {h:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_default_crc32_trailers_work_for_put_object_and_upload_part() {
    let server = TestServer::start();
    let cap = Capture::default();
    let c = sdk_client_for(
        &server.endpoint(),
        ACCESS_KEY,
        SECRET_KEY,
        &[SharedInterceptor::new(cap.clone())],
    );
    create_bucket(&c, BUCKET).await;
    let mut rng = Rng::new(test_seed("trailers"));
    let tmp = tempfile::tempdir().unwrap();

    // Streaming PutObject: aws-chunked with a CRC32 trailer.
    let data = rng.bytes(3 * MIB + 77);
    let file = tmp.path().join("put.bin");
    std::fs::write(&file, &data).unwrap();
    let out = c
        .put_object()
        .bucket(BUCKET)
        .key("trailer/put")
        .body(ByteStream::from_path(&file).await.unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("streaming PutObject: {}", DisplayErrorContext(&e)));
    assert_crc32_trailer(&cap.last(), "streaming PutObject");
    assert_eq!(
        out.e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert_eq!(
        out.checksum_crc32(),
        Some(crc32_b64(&data).as_str()),
        "PutObject echoes the CRC32"
    );
    assert!(get_bytes(&c, BUCKET, "trailer/put").await == data);

    // In-memory PutObject: CRC32 in a header.
    let small = rng.bytes(10 * KIB);
    put_bytes(&c, BUCKET, "trailer/in-memory", &small).await;
    let h = cap.last();
    assert_eq!(
        h.get("x-amz-checksum-crc32").map(String::as_str),
        Some(crc32_b64(&small).as_str()),
        "in-memory PutObject sends the CRC32 header: {h:?}"
    );
    assert!(get_bytes(&c, BUCKET, "trailer/in-memory").await == small);

    // Empty streaming body.
    let empty = tmp.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    c.put_object()
        .bucket(BUCKET)
        .key("trailer/empty")
        .body(ByteStream::from_path(&empty).await.unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("empty streaming PutObject: {}", DisplayErrorContext(&e)));
    assert!(get_bytes(&c, BUCKET, "trailer/empty").await.is_empty());

    // UploadPart from a file: trailers too.
    let part1 = rng.bytes(5 * MIB);
    let part2 = rng.bytes(MIB + 9);
    let pfile = tmp.path().join("parts.bin");
    std::fs::write(&pfile, [part1.as_slice(), part2.as_slice()].concat()).unwrap();
    let id = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("trailer/multipart")
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id()
        .unwrap()
        .to_owned();
    let mut parts = Vec::new();
    for (pn, off, len) in [
        (1, 0u64, part1.len() as u64),
        (2, part1.len() as u64, part2.len() as u64),
    ] {
        let body = ByteStream::read_from()
            .path(&pfile)
            .offset(off)
            .length(Length::Exact(len))
            .build()
            .await
            .unwrap();
        let out = c
            .upload_part()
            .bucket(BUCKET)
            .key("trailer/multipart")
            .upload_id(&id)
            .part_number(pn)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {pn}: {}", DisplayErrorContext(&e)));
        assert_crc32_trailer(&cap.last(), "streaming UploadPart");
        parts.push(
            CompletedPart::builder()
                .part_number(pn)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("trailer/multipart")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("Complete: {}", DisplayErrorContext(&e)));
    assert_eq!(
        done.e_tag(),
        Some(multipart_etag(&[md5_raw(&part1), md5_raw(&part2)]).as_str())
    );
    let got = get_bytes(&c, BUCKET, "trailer/multipart").await;
    assert!(got == [part1, part2].concat(), "multipart content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_streaming_uploads_verify_every_chunk_signature() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let addr = server.s3_addr();
    create_bucket(&c, BUCKET).await;
    let mut rng = Rng::new(test_seed("chunk-signatures"));
    let data = rng.bytes(200 * KIB + 123);

    // Good: 64 KiB chunks (4 data chunks and the final empty one).
    let req = streaming_signed_put(
        addr,
        &format!("/{BUCKET}/chunked/good"),
        &data,
        64 * KIB,
        None,
    );
    let r = req.send(addr).await;
    assert_eq!(r.status, 200, "signed aws-chunked PUT: {}", r.text());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert!(get_bytes(&c, BUCKET, "chunked/good").await == data);
    let head = c
        .head_object()
        .bucket(BUCKET)
        .key("chunked/good")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_length(),
        Some(data.len() as i64),
        "decoded length, not encoded"
    );
    assert_eq!(
        head.content_encoding(),
        None,
        "aws-chunked is not a stored Content-Encoding"
    );

    // One chunk (plus the final one), and an empty body (final chunk only).
    let r = streaming_signed_put(
        addr,
        &format!("/{BUCKET}/chunked/one"),
        &data[..1000],
        64 * KIB,
        None,
    )
    .send(addr)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(get_bytes(&c, BUCKET, "chunked/one").await == data[..1000]);
    let r = streaming_signed_put(
        addr,
        &format!("/{BUCKET}/chunked/empty"),
        b"",
        64 * KIB,
        None,
    )
    .send(addr)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(get_bytes(&c, BUCKET, "chunked/empty").await.is_empty());

    // Corrupted signature of a middle chunk, and of the final chunk.
    for (key, bad) in [("chunked/bad-middle", 2usize), ("chunked/bad-final", 4)] {
        let r = streaming_signed_put(
            addr,
            &format!("/{BUCKET}/{key}"),
            &data,
            64 * KIB,
            Some(bad),
        )
        .send(addr)
        .await;
        r.assert_s3_error(
            403,
            "SignatureDoesNotMatch",
            &format!("{key}: corrupted chunk signature {bad}"),
        );
        assert!(
            !object_exists(&c, BUCKET, key).await,
            "{key}: stored despite a bad chunk signature"
        );
    }

    // Chunk data changed after signing (signatures intact).
    let mut req = streaming_signed_put(
        addr,
        &format!("/{BUCKET}/chunked/tampered"),
        &data,
        64 * KIB,
        None,
    );
    // Inside the first chunk's data (its header line is 88 bytes).
    let header_len = req.body.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    assert_eq!(header_len, 88);
    req.body[header_len + 100] ^= 0x01;
    let r = req.send(addr).await;
    r.assert_s3_error(403, "SignatureDoesNotMatch", "tampered chunk data");
    assert!(!object_exists(&c, BUCKET, "chunked/tampered").await);

    // The same upload as UploadPart.
    let id = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("chunked/part")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let part_path = format!(
        "/{BUCKET}/chunked/part?partNumber=1&uploadId={}",
        encode_query(&id)
    );
    let r = streaming_signed_put(addr, &part_path, &data, 64 * KIB, Some(1))
        .send(addr)
        .await;
    r.assert_s3_error(
        403,
        "SignatureDoesNotMatch",
        "UploadPart with a corrupted chunk signature",
    );
    let lp = c
        .list_parts()
        .bucket(BUCKET)
        .key("chunked/part")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        lp.parts().is_empty(),
        "a part with a bad chunk signature was stored"
    );
    let r = streaming_signed_put(addr, &part_path, &data, 64 * KIB, None)
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "signed aws-chunked UploadPart: {}", r.text());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
}

/// An aws-chunked body with an unsigned CRC32 trailer.
fn unsigned_trailer_put(
    addr: std::net::SocketAddr,
    path: &str,
    data: &[u8],
    crc_b64: &str,
) -> RawRequest {
    let mut body = Vec::new();
    for c in data.chunks(64 * KIB) {
        body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        body.extend_from_slice(c);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc_b64}\r\n\r\n").as_bytes());
    RawRequest::new("PUT", path)
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &data.len().to_string())
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .header("content-length", &body.len().to_string())
        .body(body)
        .sign(
            addr,
            Payload::Declared("STREAMING-UNSIGNED-PAYLOAD-TRAILER".into()),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_payload_trailer_with_a_wrong_crc32_is_bad_digest() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let addr = server.s3_addr();
    create_bucket(&c, BUCKET).await;
    let data = Rng::new(test_seed("trailer-crc")).bytes(150 * KIB);

    let r = unsigned_trailer_put(addr, &format!("/{BUCKET}/t/good"), &data, &crc32_b64(&data))
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "unsigned trailer PUT: {}", r.text());
    assert!(get_bytes(&c, BUCKET, "t/good").await == data);

    let r = unsigned_trailer_put(
        addr,
        &format!("/{BUCKET}/t/bad"),
        &data,
        &crc32_b64(b"other"),
    )
    .send(addr)
    .await;
    r.assert_s3_error(
        400,
        "BadDigest",
        "aws-chunked body with a wrong CRC32 trailer",
    );
    assert!(!object_exists(&c, BUCKET, "t/bad").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_presigned_put_and_get_work_over_raw_http_and_are_checked() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let addr = server.s3_addr();
    create_bucket(&c, BUCKET).await;
    let data = Rng::new(test_seed("presign")).bytes(123 * KIB);

    let path_of = |uri: &str| -> String {
        let u: http::Uri = uri.parse().expect("presigned URI");
        assert_eq!(
            u.authority().map(|a| a.as_str()),
            Some(addr.to_string().as_str())
        );
        u.path_and_query().unwrap().as_str().to_owned()
    };

    let presigned = c
        .put_object()
        .bucket(BUCKET)
        .key("presigned/put me.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .expect("presign PUT");
    assert_eq!(presigned.method(), "PUT");
    let pq = path_of(presigned.uri());
    assert!(pq.contains("X-Amz-Signature="), "{pq}");
    let mut req = RawRequest::new("PUT", &pq).body(data.clone());
    for (k, v) in presigned.headers() {
        req = req.header(k, v);
    }
    let r = req.clone().send(addr).await;
    assert_eq!(r.status, 200, "presigned PUT: {}", r.text());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert!(get_bytes(&c, BUCKET, "presigned/put me.bin").await == data);

    // Presigned GET.
    let g = c
        .get_object()
        .bucket(BUCKET)
        .key("presigned/put me.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .expect("presign GET");
    let gpq = path_of(g.uri());
    let r = RawRequest::new("GET", &gpq).send(addr).await;
    assert_eq!(r.status, 200, "presigned GET: {}", r.text());
    assert!(r.body[..] == data[..]);

    // A tampered signature.
    let sig_at = gpq.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut bad = gpq.clone();
    let flipped = if &bad[sig_at..=sig_at] == "0" {
        "1"
    } else {
        "0"
    };
    bad.replace_range(sig_at..=sig_at, flipped);
    let r = RawRequest::new("GET", &bad).send(addr).await;
    r.assert_s3_error(
        403,
        "SignatureDoesNotMatch",
        "presigned GET with a tampered signature",
    );

    // The presigned PUT URL used for another key fails and stores nothing.
    let other = pq.replacen("put%20me.bin", "other.bin", 1);
    assert_ne!(
        other, pq,
        "expected the key encoded as put%20me.bin in {pq}"
    );
    let mut req2 = RawRequest::new("PUT", &other).body(data.clone());
    for (k, v) in presigned.headers() {
        req2 = req2.header(k, v);
    }
    let r = req2.send(addr).await;
    r.assert_s3_error(
        403,
        "SignatureDoesNotMatch",
        "presigned PUT URL reused for another key",
    );
    assert!(!object_exists(&c, BUCKET, "presigned/other.bin").await);

    // An expired URL.
    let short = c
        .get_object()
        .bucket(BUCKET)
        .key("presigned/put me.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).unwrap())
        .await
        .expect("presign short GET");
    let spq = path_of(short.uri());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = RawRequest::new("GET", &spq).send(addr).await;
    r.assert_s3_error(403, "AccessDenied", "expired presigned GET");
}

// ---------------------------------------------------------------------------
// Presigned URLs carry only what was signed
// ---------------------------------------------------------------------------

/// A presigned PUT's holder adds `x-amz-*` headers the signer never listed:
/// a copy source (which would turn the PUT into a CopyObject of a bucket the
/// holder cannot read), metadata, tagging, a checksum. S3 refuses each with
/// AccessDenied ("There were headers present in the request which were not
/// signed") and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_requests_refuse_unsigned_amz_headers() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let addr = server.s3_addr();
    create_bucket(&c, BUCKET).await;
    create_bucket(&c, "private-bucket").await;
    put_bytes(&c, "private-bucket", "secret.txt", b"top secret").await;

    let presigned = c
        .put_object()
        .bucket(BUCKET)
        .key("upload-here.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .expect("presign PUT");
    let pq = {
        let u: http::Uri = presigned.uri().parse().unwrap();
        u.path_and_query().unwrap().as_str().to_owned()
    };
    let base = || {
        let mut req = RawRequest::new("PUT", &pq).body(b"hello".to_vec());
        for (k, v) in presigned.headers() {
            req = req.header(k, v);
        }
        req
    };
    for (name, value) in [
        ("x-amz-copy-source", "/private-bucket/secret.txt"),
        ("x-amz-meta-planted", "yes"),
        ("x-amz-tagging", "a=b"),
        ("x-amz-checksum-crc32", "NhCmhg=="),
        ("x-amz-acl", "public-read"),
        ("X-Amz-Storage-Class", "STANDARD"),
    ] {
        let r = base().header(name, value).send(addr).await;
        r.assert_s3_error(403, "AccessDenied", &format!("presigned PUT + {name}"));
        assert!(
            r.text()
                .contains("There were headers present in the request which were not signed"),
            "{name}: {}",
            r.text()
        );
        assert!(
            r.text()
                .to_ascii_lowercase()
                .contains(&name.to_ascii_lowercase()),
            "the error names {name}: {}",
            r.text()
        );
        assert!(
            !object_exists(&c, BUCKET, "upload-here.txt").await,
            "{name}: nothing is stored"
        );
    }
    // A negative expiry is named as such (S3's message), not "not a number".
    let negative = pq.replacen("X-Amz-Expires=300", "X-Amz-Expires=-300", 1);
    assert_ne!(negative, pq);
    let r = RawRequest::new("PUT", &negative)
        .body(b"hello".to_vec())
        .send(addr)
        .await;
    r.assert_s3_error(
        400,
        "AuthorizationQueryParametersError",
        "negative X-Amz-Expires",
    );
    assert!(
        r.text().contains("X-Amz-Expires must be non-negative"),
        "{}",
        r.text()
    );
    // Headers that do not start with x-amz- are the holder's to choose,
    // and the URL itself still works.
    let r = base().header("content-type", "text/plain").send(addr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get_bytes(&c, BUCKET, "upload-here.txt").await, b"hello");
}

/// With `--domain`, the bucket comes from the `Host` header, which the
/// signature covers. An absolute-form request target naming another bucket
/// must neither read from nor write into that bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_targets_cannot_reroute_a_signed_request() {
    let domain = "s3.cairn.test";
    let server = TestServer::start_with_args(&["--domain", domain]);
    let addr = server.s3_addr();
    let port = addr.port();
    let c = sdk_client(&server);
    let vh = sdk_client_virtual_host(&server, domain);
    create_bucket(&c, "pub-bucket").await;
    create_bucket(&c, "priv-bucket").await;
    put_bytes(&c, "pub-bucket", "secret.txt", b"public").await;
    put_bytes(&c, "priv-bucket", "secret.txt", b"PRIVATE").await;

    let signed_host = |presigned: &aws_sdk_s3::presigning::PresignedRequest| -> String {
        presigned
            .headers()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.to_owned())
            .unwrap_or_else(|| {
                let u: http::Uri = presigned.uri().parse().unwrap();
                u.authority().unwrap().to_string()
            })
    };
    let path_of = |presigned: &aws_sdk_s3::presigning::PresignedRequest| -> String {
        let u: http::Uri = presigned.uri().parse().unwrap();
        u.path_and_query().unwrap().as_str().to_owned()
    };

    let get = vh
        .get_object()
        .bucket("pub-bucket")
        .key("secret.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let host = signed_host(&get);
    assert_eq!(host, format!("pub-bucket.{domain}:{port}"));
    let target = format!("http://priv-bucket.{domain}:{port}{}", path_of(&get));
    let wire = RawRequest::new("GET", &target)
        .header("host", &host)
        .to_wire(addr);
    let r = raw_tcp_exchange(addr, &wire, false, Duration::from_secs(10))
        .expect("a response to the rerouted GET");
    assert!(
        !r.text().contains("PRIVATE"),
        "the private object leaked: {}",
        r.text()
    );
    r.assert_s3_error(400, "InvalidArgument", "authority and Host disagree");

    // Both naming the private bucket: the signature (for pub-bucket) fails.
    let wire = RawRequest::new("GET", &target)
        .header("host", &format!("priv-bucket.{domain}:{port}"))
        .to_wire(addr);
    let r = raw_tcp_exchange(addr, &wire, false, Duration::from_secs(10)).unwrap();
    r.assert_s3_error(403, "SignatureDoesNotMatch", "URL moved to another host");

    // The same presigned URL sent as signed (origin-form, or absolute-form
    // naming the same host) still works.
    let wire = RawRequest::new("GET", &format!("http://{host}{}", path_of(&get)))
        .header("host", &host)
        .to_wire(addr);
    let r = raw_tcp_exchange(addr, &wire, false, Duration::from_secs(10)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_ref(), b"public");

    // A presigned PUT for pub-bucket/planted.txt cannot plant into priv-bucket.
    let put = vh
        .put_object()
        .bucket("pub-bucket")
        .key("planted.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let target = format!("http://priv-bucket.{domain}:{port}{}", path_of(&put));
    let wire = RawRequest::new("PUT", &target)
        .header("host", &signed_host(&put))
        .header("content-length", "7")
        .body(b"planted".to_vec())
        .to_wire(addr);
    let r = raw_tcp_exchange(addr, &wire, false, Duration::from_secs(10)).unwrap();
    r.assert_s3_error(400, "InvalidArgument", "rerouted presigned PUT");
    assert!(!object_exists(&c, "priv-bucket", "planted.txt").await);
    assert!(!object_exists(&c, "pub-bucket", "planted.txt").await);
}
