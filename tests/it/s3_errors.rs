//! Bad input gets the S3 answer — status, `<Code>`, request id — and
//! nothing is stored; the server stays healthy afterwards. Requests are
//! built byte for byte (and signed with `aws-sigv4` where needed).

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use aws_sdk_s3::error::DisplayErrorContext;

const BUCKET: &str = "errors-bucket";

async fn setup() -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, BUCKET).await;
    (server, c)
}

/// The server is alive and still does its job.
async fn assert_still_serves(server: &TestServer, c: &aws_sdk_s3::Client) {
    let (status, body) = server.admin_get("/health/live");
    assert_eq!(status, 200, "/health/live after bad input: {body}");
    let (status, body) = server.admin_get("/health/ready");
    assert_eq!(status, 200, "/health/ready after bad input: {body}");
    let mut rng = Rng::new(0x5eed);
    let data = rng.bytes(200 * KIB + 3);
    let etag = put_bytes(c, BUCKET, "health/check", &data).await;
    assert_eq!(etag, format!("\"{}\"", md5_hex(&data)));
    assert_eq!(get_bytes(c, BUCKET, "health/check").await, data);
}

fn path(key: &str) -> String {
    format!("/{BUCKET}/{}", encode_key(key))
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_get_403_with_s3_codes_and_store_nothing() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();

    let r = RawRequest::new("PUT", &path("auth/wrong-secret"))
        .body("payload")
        .sign_with(addr, ACCESS_KEY, "not-the-right-secret", Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(
        403,
        "SignatureDoesNotMatch",
        "PUT signed with a wrong secret",
    );
    assert!(!object_exists(&c, BUCKET, "auth/wrong-secret").await);

    let r = RawRequest::new("PUT", &path("auth/unknown-key"))
        .body("payload")
        .sign_with(addr, "NOSUCHACCESSKEY00000", SECRET_KEY, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(
        403,
        "InvalidAccessKeyId",
        "PUT signed with an unknown access key",
    );
    assert!(!object_exists(&c, BUCKET, "auth/unknown-key").await);

    let r = RawRequest::new("PUT", &path("auth/anonymous"))
        .body("payload")
        .send(addr)
        .await;
    r.assert_s3_error(403, "AccessDenied", "anonymous PUT");
    assert!(!object_exists(&c, BUCKET, "auth/anonymous").await);

    let r = RawRequest::new("GET", "/").send(addr).await;
    r.assert_s3_error(403, "AccessDenied", "anonymous ListBuckets");
    let r = RawRequest::new("GET", &format!("/{BUCKET}?list-type=2"))
        .send(addr)
        .await;
    r.assert_s3_error(403, "AccessDenied", "anonymous ListObjectsV2");

    // A signature made for another region.
    put_bytes(&c, BUCKET, "auth/existing", b"secret data").await;
    let r = RawRequest::new("GET", &path("auth/existing")).sign(addr, Payload::Signed);
    let tampered = RawRequest {
        headers: r
            .headers
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("authorization") {
                    (k.clone(), v.replace("/us-east-1/", "/eu-west-1/"))
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect(),
        ..r
    };
    let resp = tampered.send(addr).await;
    assert_eq!(
        resp.status / 100,
        4,
        "wrong-region signature must be a 4xx: {}",
        resp.text()
    );
    assert!(
        !resp.body.windows(11).any(|w| w == b"secret data"),
        "data leaked to a bad signature"
    );

    // The SDK with a wrong secret sees the same code.
    let bad = sdk_client_for(&server.endpoint(), ACCESS_KEY, "wrong-secret-123", &[]);
    let e = bad
        .put_object()
        .bucket(BUCKET)
        .key("auth/sdk-wrong-secret")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("SDK PUT with a wrong secret");
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("SignatureDoesNotMatch"),
        "{}",
        DisplayErrorContext(&e)
    );
    assert!(!object_exists(&c, BUCKET, "auth/sdk-wrong-secret").await);

    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_bodies_are_malformed_xml_and_change_nothing() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let key = "xml/complete-me";

    // CompleteMultipartUpload with broken XML.
    let up = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = up.upload_id().unwrap().to_owned();
    let part = Rng::new(7).bytes(100 * KIB);
    let etag = c
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from(part.clone()))
        .send()
        .await
        .expect("UploadPart")
        .e_tag()
        .unwrap()
        .to_owned();
    let complete_path = format!("{}?uploadId={}", path(key), encode_query(&id));
    for body in [
        format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part"),
        "this is not xml at all".to_owned(),
        "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber></Part></CompleteMultipartUpload>"
            .to_owned(),
    ] {
        let r = RawRequest::new("POST", &complete_path)
            .header("content-type", "application/xml")
            .body(body.clone())
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        r.assert_s3_error(400, "MalformedXML", &format!("Complete with body {body:?}"));
        assert!(!object_exists(&c, BUCKET, key).await, "a failed Complete created the object");
    }
    // The upload is still there and completes with good XML.
    let parts = c
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .send()
        .await
        .expect("ListParts after MalformedXML");
    assert_eq!(parts.parts().len(), 1);
    let good = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = RawRequest::new("POST", &complete_path)
        .body(good)
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "Complete with good XML: {}", r.text());
    assert!(
        r.text().contains("<CompleteMultipartUploadResult"),
        "{}",
        r.text()
    );
    assert_eq!(get_bytes(&c, BUCKET, key).await, part);

    // DeleteObjects with broken XML deletes nothing.
    put_bytes(&c, BUCKET, "xml/keep-me", b"keep").await;
    for body in [
        "<Delete><Object><Key>xml/keep-me</Key></Object".to_owned(),
        "<Delete><Object><Key>xml/keep-me</Key></Object></Delete><trailing>".to_owned(),
        "\u{0}\u{1}binary".to_owned(),
    ] {
        let r = RawRequest::new("POST", &format!("/{BUCKET}?delete"))
            .header("content-md5", &md5_b64(body.as_bytes()))
            .header("content-type", "application/xml")
            .body(body.clone())
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        r.assert_s3_error(
            400,
            "MalformedXML",
            &format!("DeleteObjects with body {body:?}"),
        );
        assert!(
            object_exists(&c, BUCKET, "xml/keep-me").await,
            "broken DeleteObjects deleted a key"
        );
    }
    // Well-formed XML with the MD5 works.
    let body = "<Delete><Object><Key>xml/keep-me</Key></Object></Delete>";
    let r = RawRequest::new("POST", &format!("/{BUCKET}?delete"))
        .header("content-md5", &md5_b64(body.as_bytes()))
        .body(body)
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!object_exists(&c, BUCKET, "xml/keep-me").await);

    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_mismatches_are_rejected_and_store_nothing() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let body = Rng::new(11).bytes(150 * KIB);

    // Content-MD5 of other bytes.
    let r = RawRequest::new("PUT", &path("digest/md5"))
        .header("content-md5", &md5_b64(b"something else"))
        .body(body.clone())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "BadDigest", "PUT with a wrong Content-MD5");
    assert!(!object_exists(&c, BUCKET, "digest/md5").await);

    // x-amz-checksum-crc32 of other bytes.
    let r = RawRequest::new("PUT", &path("digest/crc32"))
        .header("x-amz-checksum-crc32", &crc32_b64(b"something else"))
        .body(body.clone())
        .sign(addr, Payload::Unsigned)
        .send(addr)
        .await;
    r.assert_s3_error(400, "BadDigest", "PUT with a wrong x-amz-checksum-crc32");
    assert!(!object_exists(&c, BUCKET, "digest/crc32").await);

    // A signed payload whose body is not the one declared.
    let r = RawRequest::new("PUT", &path("digest/sha256"))
        .body(body.clone())
        .sign(
            addr,
            Payload::Declared(sha256_hex(b"the body I meant to send")),
        )
        .send(addr)
        .await;
    r.assert_s3_error(
        400,
        "XAmzContentSHA256Mismatch",
        "PUT whose body differs from x-amz-content-sha256",
    );
    assert!(!object_exists(&c, BUCKET, "digest/sha256").await);

    // UploadPart with a wrong Content-MD5 stores no part.
    let up = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("digest/part")
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = up.upload_id().unwrap().to_owned();
    let r = RawRequest::new(
        "PUT",
        &format!(
            "{}?partNumber=1&uploadId={}",
            path("digest/part"),
            encode_query(&id)
        ),
    )
    .header("content-md5", &md5_b64(b"not the part"))
    .body(body.clone())
    .sign(addr, Payload::Signed)
    .send(addr)
    .await;
    r.assert_s3_error(400, "BadDigest", "UploadPart with a wrong Content-MD5");
    let parts = c
        .list_parts()
        .bucket(BUCKET)
        .key("digest/part")
        .upload_id(&id)
        .send()
        .await
        .expect("ListParts");
    assert!(
        parts.parts().is_empty(),
        "a rejected part was stored: {:?}",
        parts.parts()
    );

    // Control: the right digests are accepted.
    let r = RawRequest::new("PUT", &path("digest/good"))
        .header("content-md5", &md5_b64(&body))
        .header("x-amz-checksum-crc32", &crc32_b64(&body))
        .body(body.clone())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "PUT with correct digests: {}", r.text());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&body)).as_str())
    );
    assert_eq!(get_bytes(&c, BUCKET, "digest/good").await, body);

    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_creates_no_object() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let full = Rng::new(3).bytes(1000);

    for (key, payload) in [
        ("truncated/unsigned", Payload::Unsigned),
        ("truncated/signed", Payload::Declared(sha256_hex(&full))),
    ] {
        let mut req = RawRequest::new("PUT", &path(key))
            .header("content-length", "1000")
            .sign(addr, payload);
        req.body = full[..10].to_vec();
        let resp = tokio::task::spawn_blocking(move || {
            raw_tcp_exchange(addr, &req.to_wire(addr), true, Duration::from_secs(30))
        })
        .await
        .unwrap();
        if let Some(r) = &resp {
            assert_eq!(
                r.status,
                400,
                "{key}: a response to a truncated body must be 400: {}",
                r.text()
            );
        }
        // Whatever the server still does with the connection, no object.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !object_exists(&c, BUCKET, key).await,
            "{key}: truncated PUT created an object"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for key in ["truncated/unsigned", "truncated/signed"] {
        assert!(
            !object_exists(&c, BUCKET, key).await,
            "{key} appeared later"
        );
    }
    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bucket_names_and_too_long_keys_are_rejected() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();

    let long = "n".repeat(64);
    let bad_names = [
        "Bad_Name",
        "ab",
        "UPPERCASE",
        "-leading-dash",
        "trailing-dash-",
        "double..dot",
        "192.168.5.4",
        long.as_str(),
    ];
    for name in bad_names {
        let r = RawRequest::new("PUT", &format!("/{name}"))
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        r.assert_s3_error(400, "InvalidBucketName", &format!("CreateBucket {name:?}"));
    }
    let listed = c.list_buckets().send().await.expect("ListBuckets");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, [BUCKET], "invalid buckets must not exist");

    // Boundaries that are valid.
    for name in ["abc", &"v".repeat(63), "with.dots-and-1"] {
        let r = RawRequest::new("PUT", &format!("/{name}"))
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        assert_eq!(r.status, 200, "CreateBucket {name:?}: {}", r.text());
    }

    // Keys: 1024 bytes is the limit.
    let too_long = "k".repeat(1025);
    let r = RawRequest::new("PUT", &path(&too_long))
        .body("x")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "KeyTooLongError", "PUT with a 1025-byte key");
    // Multi-byte: 513 × 'é' is 1026 bytes.
    let too_long_utf8 = "é".repeat(513);
    let r = RawRequest::new("PUT", &path(&too_long_utf8))
        .body("x")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "KeyTooLongError", "PUT with a 1026-byte UTF-8 key");
    let max = "m".repeat(1024);
    put_bytes(&c, BUCKET, &max, b"at the limit").await;
    assert_eq!(get_bytes(&c, BUCKET, &max).await, b"at the limit");
    let out = c
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [max.as_str()], "only the 1024-byte key exists");

    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_buckets_keys_and_uploads_are_404_with_s3_codes() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let get = |method: &'static str, pq: String| async move {
        RawRequest::new(method, &pq)
            .sign(addr, Payload::Signed)
            .send(addr)
            .await
    };

    get("GET", "/no-such-bucket/k".into())
        .await
        .assert_s3_error(404, "NoSuchBucket", "GET object in a missing bucket");
    get("GET", "/no-such-bucket?list-type=2".into())
        .await
        .assert_s3_error(404, "NoSuchBucket", "ListObjectsV2 of a missing bucket");
    get("DELETE", "/no-such-bucket".into())
        .await
        .assert_s3_error(404, "NoSuchBucket", "DeleteBucket of a missing bucket");
    let r = RawRequest::new("PUT", "/no-such-bucket/k")
        .body("data")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(404, "NoSuchBucket", "PUT into a missing bucket");
    let listed = c.list_buckets().send().await.unwrap();
    assert_eq!(
        listed.buckets().len(),
        1,
        "PUT into a missing bucket must not create it"
    );

    get("GET", path("no/such/key"))
        .await
        .assert_s3_error(404, "NoSuchKey", "GET of a missing key");

    for pq in [
        path("no/such/key"),
        "/no-such-bucket/k".to_owned(),
        "/no-such-bucket".to_owned(),
    ] {
        let r = get("HEAD", pq.clone()).await;
        assert_eq!(r.status, 404, "HEAD {pq}");
        assert!(r.body.is_empty(), "HEAD {pq} must have no body");
        assert!(
            r.header("x-amz-request-id").is_some_and(|v| !v.is_empty()),
            "HEAD {pq}: x-amz-request-id"
        );
    }

    let r = get("GET", format!("{}?uploadId=nosuchupload", path("k"))).await;
    r.assert_s3_error(404, "NoSuchUpload", "ListParts of an unknown upload");
    let r = RawRequest::new(
        "PUT",
        &format!("{}?partNumber=1&uploadId=nosuchupload", path("k")),
    )
    .body("part")
    .sign(addr, Payload::Signed)
    .send(addr)
    .await;
    r.assert_s3_error(404, "NoSuchUpload", "UploadPart to an unknown upload");

    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsatisfiable_range_is_416_invalid_range() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    put_bytes(&c, BUCKET, "range/k", &[7u8; 1000]).await;
    for range in ["bytes=1000-", "bytes=5000-6000"] {
        let r = RawRequest::new("GET", &path("range/k"))
            .header("range", range)
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        r.assert_s3_error(416, "InvalidRange", range);
    }
    assert_still_serves(&server, &c).await;
}

/// Sends `req` over a raw connection (no client library would send such
/// headers) and returns the response.
async fn raw_exchange(addr: SocketAddr, req: RawRequest, what: &str) -> RawResponse {
    let wire = req.sign(addr, Payload::Signed).to_wire(addr);
    tokio::task::spawn_blocking(move || {
        raw_tcp_exchange(addr, &wire, false, Duration::from_secs(30))
    })
    .await
    .unwrap()
    .unwrap_or_else(|| panic!("no response to {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_header_is_rejected_and_server_survives() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let big = "a".repeat(200 * KIB);
    let get = RawRequest::new("GET", &path("anything")).header("x-amz-meta-big", &big);
    let resp = raw_exchange(addr, get, "a GET with a 200 KiB header").await;
    assert_eq!(
        resp.status,
        400,
        "a 200 KiB header must get 400, got: {}",
        resp.text()
    );
    assert!(
        resp.text()
            .contains("<Code>RequestHeaderSectionTooLarge</Code>"),
        "S3's error XML: {}",
        resp.text()
    );

    // The same as a PUT: nothing stored.
    let put = RawRequest::new("PUT", &path("big-header"))
        .header("x-amz-meta-big", &big)
        .body("data")
        .header("content-length", "4");
    let resp = raw_exchange(addr, put, "a PUT with a 200 KiB header").await;
    assert_eq!(
        resp.status / 100,
        4,
        "PUT with a 200 KiB header: {}",
        resp.status
    );
    assert!(!object_exists(&c, BUCKET, "big-header").await);

    // Past hyper's buffer (256 KiB) hyper itself refuses it, with 431.
    let huge = "a".repeat(600 * KIB);
    let get = RawRequest::new("GET", &path("anything")).header("x-amz-meta-big", &huge);
    let resp = raw_exchange(addr, get, "a GET with a 600 KiB header").await;
    assert!(
        resp.status == 431 || resp.status == 400,
        "a 600 KiB header must get 431 or 400, got {}",
        resp.status
    );

    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_configurations_never_set_answer_as_s3_and_puts_are_not_implemented() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let get = |sub: &str| {
        RawRequest::new("GET", &format!("/{BUCKET}?{sub}"))
            .sign(addr, Payload::Signed)
            .send(addr)
    };
    // S3's "not configured" answers: clients read these as "none" and carry on.
    for (sub, code) in [
        ("cors", "NoSuchCORSConfiguration"),
        ("lifecycle", "NoSuchLifecycleConfiguration"),
        ("object-lock", "ObjectLockConfigurationNotFoundError"),
        ("policy", "NoSuchBucketPolicy"),
        ("website", "NoSuchWebsiteConfiguration"),
        ("replication", "ReplicationConfigurationNotFoundError"),
        ("analytics&id=a", "NoSuchConfiguration"),
        // The server-wide block is S3's account-level one; the bucket has
        // none of its own.
        ("publicAccessBlock", "NoSuchPublicAccessBlockConfiguration"),
        ("policyStatus", "NoSuchBucketPolicy"),
    ] {
        let r = get(sub).await;
        r.assert_s3_error(404, code, &format!("GET ?{sub}"));
        assert!(
            r.text()
                .contains(&format!("<BucketName>{BUCKET}</BucketName>")),
            "{}",
            r.text()
        );
    }
    // Configurations that are empty documents when nothing is set, and
    // Cairn's fixed behaviour reported as S3 reports its defaults.
    for (sub, root, inner) in [
        ("notification", "NotificationConfiguration", ""),
        ("logging", "BucketLoggingStatus", ""),
        ("accelerate", "AccelerateConfiguration", ""),
        (
            "requestPayment",
            "RequestPaymentConfiguration",
            "<Payer>BucketOwner</Payer>",
        ),
        (
            "encryption",
            "ServerSideEncryptionConfiguration",
            "<SSEAlgorithm>AES256</SSEAlgorithm>",
        ),
        (
            "ownershipControls",
            "OwnershipControls",
            "<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>",
        ),
        (
            "inventory",
            "ListInventoryConfigurationsResult",
            "<IsTruncated>false</IsTruncated>",
        ),
    ] {
        let r = get(sub).await;
        assert_eq!(r.status, 200, "GET ?{sub}: {}", r.text());
        assert!(
            r.text().contains(&format!("<{root}")),
            "GET ?{sub}: {}",
            r.text()
        );
        assert!(r.text().contains(inner), "GET ?{sub}: {}", r.text());
    }
    // The SDK reads them the same way.
    let err = c.get_bucket_cors().bucket(BUCKET).send().await.unwrap_err();
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("NoSuchCORSConfiguration")
    );
    let enc = c
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let rules = enc.server_side_encryption_configuration().unwrap().rules();
    assert_eq!(
        rules[0]
            .apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    // A missing bucket is still NoSuchBucket.
    let r = RawRequest::new("GET", "/no-such-bucket-here?cors")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(404, "NoSuchBucket", "GET ?cors of a missing bucket");
    // DELETE of a configuration never set: nothing to remove, 204.
    let r = RawRequest::new("DELETE", &format!("/{BUCKET}?lifecycle"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    assert_eq!(r.status, 204, "DELETE ?lifecycle: {}", r.text());

    let xml = "<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status></Rule></LifecycleConfiguration>";
    let r = RawRequest::new("PUT", &format!("/{BUCKET}?lifecycle"))
        .header("content-md5", &md5_b64(xml.as_bytes()))
        .body(xml)
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    // Lifecycle is implemented: a rule without a filter or an action is
    // refused as S3 refuses it, and nothing is stored.
    r.assert_s3_error(400, "MalformedXML", "PUT ?lifecycle");
    get("lifecycle").await.assert_s3_error(
        404,
        "NoSuchLifecycleConfiguration",
        "GET ?lifecycle after a refused PUT",
    );
    // Website hosting is not implemented: its PUT is refused, nothing stored.
    let xml = "<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>";
    let r = RawRequest::new("PUT", &format!("/{BUCKET}?website"))
        .header("content-md5", &md5_b64(xml.as_bytes()))
        .body(xml)
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(501, "NotImplemented", "PUT ?website");
    get("website").await.assert_s3_error(
        404,
        "NoSuchWebsiteConfiguration",
        "GET ?website after a refused PUT",
    );
    // S3 subresources Cairn does not know never fall through to a listing.
    for sub in ["session", "metadataTable", "abac", "metadataConfiguration"] {
        let r = get(sub).await;
        r.assert_s3_error(501, "NotImplemented", &format!("GET ?{sub}"));
        assert!(!r.text().contains("ListBucketResult"), "{}", r.text());
    }
    // Object Lock state of an object: no bucket has Object Lock.
    put_bytes(&c, BUCKET, "locked?", b"x").await;
    for sub in ["retention", "legal-hold"] {
        let r = RawRequest::new("GET", &format!("{}?{sub}", path("locked?")))
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        r.assert_s3_error(400, "InvalidRequest", &format!("GET object ?{sub}"));
        assert!(r.text().contains("Object Lock"), "{}", r.text());
    }
    // The bucket is untouched and still a bucket.
    c.head_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("HeadBucket");
    assert_still_serves(&server, &c).await;
}

// Headers S3 defines whose promise Cairn cannot keep (a customer key, KMS,
// a lock, another storage class, a website redirect, another owner) are
// refused with AWS's error before anything is stored; SSE-S3 (AES256),
// which Cairn always does, is accepted and reported.

/// A signed PUT of `secret payload` to `key` with `headers`.
async fn put_with(addr: std::net::SocketAddr, key: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut r = RawRequest::new("PUT", &path(key)).body("secret payload");
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.sign(addr, Payload::Signed).send(addr).await
}

/// SSE-C headers: a customer-provided AES256 key and its MD5.
fn sse_c_headers() -> [(&'static str, String); 3] {
    [
        (
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256".to_owned(),
        ),
        (
            "x-amz-server-side-encryption-customer-key",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
        ),
        (
            "x-amz-server-side-encryption-customer-key-md5",
            md5_b64(b"0123456789abcdef0123456789abcdef"),
        ),
    ]
}

/// SSE-C over plain HTTP: refused as S3 refuses it (the key would cross
/// the network in the clear), before anything is stored; a read "with a
/// key" likewise (tests/it/s3_sse_c.rs covers SSE-C itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_over_plain_http_is_refused_for_put_object_and_get_object_and_stores_nothing() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let sse_c = sse_c_headers();
    let headers: Vec<(&str, &str)> = sse_c.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = put_with(addr, "sse-c", &headers).await;
    r.assert_s3_error(400, "InvalidRequest", "PutObject with SSE-C over HTTP");
    assert!(r.text().contains("secure connection"), "{}", r.text());
    assert!(!object_exists(&c, BUCKET, "sse-c").await);
    put_bytes(&c, BUCKET, "plain", b"plain").await;
    let mut g = RawRequest::new("GET", &path("plain"));
    for (k, v) in &headers {
        g = g.header(k, v);
    }
    g.sign(addr, Payload::Signed)
        .send(addr)
        .await
        .assert_s3_error(400, "InvalidRequest", "GetObject with SSE-C over HTTP");
    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_with_dsse_an_unknown_kms_key_a_lock_a_storage_class_a_redirect_or_another_owner_is_refused_and_stores_nothing()
 {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    for (key, headers, status, code) in [
        (
            "kms-dsse",
            vec![("x-amz-server-side-encryption", "aws:kms:dsse")],
            501,
            "NotImplemented",
        ),
        (
            "kms-key",
            vec![
                ("x-amz-server-side-encryption", "aws:kms"),
                (
                    "x-amz-server-side-encryption-aws-kms-key-id",
                    "arn:aws:kms:us-east-1:1:key/x",
                ),
            ],
            400,
            "KMS.NotFoundException",
        ),
        (
            "kms-key-without-kms",
            vec![(
                "x-amz-server-side-encryption-aws-kms-key-id",
                "alias/aws/s3",
            )],
            400,
            "InvalidArgument",
        ),
        (
            "bad-sse",
            vec![("x-amz-server-side-encryption", "AES512")],
            400,
            "InvalidArgument",
        ),
        (
            "lock-mode",
            vec![
                ("x-amz-object-lock-mode", "COMPLIANCE"),
                (
                    "x-amz-object-lock-retain-until-date",
                    "2030-01-01T00:00:00Z",
                ),
            ],
            400,
            "InvalidRequest",
        ),
        (
            "legal-hold",
            vec![("x-amz-object-lock-legal-hold", "ON")],
            400,
            "InvalidRequest",
        ),
        (
            "glacier",
            vec![("x-amz-storage-class", "GLACIER")],
            400,
            "InvalidStorageClass",
        ),
        (
            "rrs",
            vec![("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            400,
            "InvalidStorageClass",
        ),
        (
            "redirect",
            vec![("x-amz-website-redirect-location", "/elsewhere")],
            501,
            "NotImplemented",
        ),
        (
            "owner",
            vec![("x-amz-expected-bucket-owner", "111122223333")],
            403,
            "AccessDenied",
        ),
    ] {
        let r = put_with(addr, key, &headers).await;
        r.assert_s3_error(status, code, &format!("PutObject {headers:?}"));
        assert!(!object_exists(&c, BUCKET, key).await, "{key} was stored");
    }
    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_multipart_upload_with_an_object_lock_is_refused_before_an_upload_exists() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let r = RawRequest::new("POST", &format!("{}?uploads", path("mp-lock")))
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .header(
            "x-amz-object-lock-retain-until-date",
            "2030-01-01T00:00:00Z",
        )
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "InvalidRequest", "CreateMultipartUpload with a lock");
    let uploads = c
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_to_deep_archive_is_invalid_storage_class_and_copies_nothing() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    put_bytes(&c, BUCKET, "plain", b"plain").await;
    let r = RawRequest::new("PUT", &path("copy-glacier"))
        .header("x-amz-copy-source", &format!("/{BUCKET}/plain"))
        .header("x-amz-storage-class", "DEEP_ARCHIVE")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "InvalidStorageClass", "CopyObject to DEEP_ARCHIVE");
    assert!(!object_exists(&c, BUCKET, "copy-glacier").await);
    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_bucket_with_a_malformed_object_lock_flag_creates_nothing() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    let r = RawRequest::new("PUT", "/locked-bucket")
        .header("x-amz-bucket-object-lock-enabled", "yes")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(
        400,
        "InvalidArgument",
        "CreateBucket with a malformed lock flag",
    );
    let err = c
        .head_bucket()
        .bucket("locked-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_status(&err), Some(404));
    assert_still_serves(&server, &c).await;
}

/// A PUT with what Cairn does (SSE-S3, STANDARD, its owner) is accepted and
/// reported.
async fn put_sse_s3(server: &TestServer, c: &aws_sdk_s3::Client) {
    let r = put_with(
        server.s3_addr(),
        "sse-s3",
        &[
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-storage-class", "STANDARD"),
            ("x-amz-expected-bucket-owner", "cairn"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("AES256"));
    let head = c
        .head_object()
        .bucket(BUCKET)
        .key("sse-s3")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_the_standard_class_and_cairn_as_owner_are_accepted_and_reported() {
    let (server, c) = setup().await;
    put_sse_s3(&server, &c).await;
    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_delete_object_is_not_implemented_rather_than_unconditional() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    put_sse_s3(&server, &c).await;
    let r = RawRequest::new("DELETE", &path("sse-s3"))
        .header("if-match", "\"0000\"")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(501, "NotImplemented", "DeleteObject with If-Match");
    assert!(object_exists(&c, BUCKET, "sse-s3").await);
    assert_still_serves(&server, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_object_acl_of_a_malformed_or_unknown_version_is_refused() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    put_sse_s3(&server, &c).await;
    let r = RawRequest::new(
        "GET",
        &format!("{}?acl&versionId=3HL4kqtJlcpXroDTDmJ", path("sse-s3")),
    )
    .sign(addr, Payload::Signed)
    .send(addr)
    .await;
    r.assert_s3_error(
        400,
        "InvalidArgument",
        "GetObjectAcl of a malformed version id",
    );
    let unknown = format!("{}{}", "f".repeat(16), "0".repeat(32));
    let r = RawRequest::new(
        "GET",
        &format!("{}?acl&versionId={unknown}", path("sse-s3")),
    )
    .sign(addr, Payload::Signed)
    .send(addr)
    .await;
    r.assert_s3_error(404, "NoSuchVersion", "GetObjectAcl of another version");
    assert_still_serves(&server, &c).await;
}

/// Keys with characters XML 1.0 cannot carry are refused on write (S3 would
/// store them and then list them as `&#x1;`, which no XML parser accepts),
/// so every listing stays well-formed; legal control characters (tab, CR,
/// LF) still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_xml_cannot_carry_are_refused_and_listings_stay_well_formed() {
    let (server, c) = setup().await;
    let addr = server.s3_addr();
    for (enc, what) in [
        ("a%00b", "NUL"),
        ("a%01b", "U+0001"),
        ("x%1Fy", "U+001F"),
        ("z%EF%BF%BEz", "U+FFFE"),
    ] {
        let r = RawRequest::new("PUT", &format!("/{BUCKET}/ctl/{enc}"))
            .body("x")
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        r.assert_s3_error(400, "InvalidArgument", &format!("PUT of a key with {what}"));
        let r = RawRequest::new("POST", &format!("/{BUCKET}/ctl/{enc}?uploads"))
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        r.assert_s3_error(
            400,
            "InvalidArgument",
            &format!("CreateMultipartUpload {what}"),
        );
        let r = RawRequest::new("PUT", &format!("/{BUCKET}/ctl/{enc}"))
            .header("x-amz-copy-source", &format!("/{BUCKET}/health/check"))
            .sign(addr, Payload::Signed)
            .send(addr)
            .await;
        assert_eq!(
            r.status,
            400,
            "CopyObject to a key with {what}: {}",
            r.text()
        );
    }
    // Tab, CR and LF are XML 1.0 characters: stored and listed.
    put_bytes(&c, BUCKET, "ctl/tab\there", b"t").await;
    put_bytes(&c, BUCKET, "ctl/cr\rlf\n", b"c").await;
    let r = RawRequest::new("GET", &format!("/{BUCKET}?list-type=2&prefix=ctl%2F"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(!text.contains("&#x0;") && !text.contains("&#x1;"), "{text}");
    assert!(text.contains("<KeyCount>2</KeyCount>"), "{text}");
    let keys: Vec<String> = c
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("ctl/")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(
        keys,
        vec!["ctl/cr\rlf\n".to_owned(), "ctl/tab\there".to_owned()]
    );
    assert_still_serves(&server, &c).await;
}
