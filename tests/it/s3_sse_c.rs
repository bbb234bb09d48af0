//! SSE-C (server-side encryption with customer-provided keys), written from
//! the AWS documentation ("Using server-side encryption with customer-
//! provided keys (SSE-C)", the PutObject / GetObject / HeadObject request
//! headers): the key travels with every request and is never stored; an
//! object encrypted with it answers nothing without it; no SSE-C object's
//! content is recognisable (no dedup against other objects); and what is
//! not implemented yet (copies, multipart uploads) is refused, never done
//! without the key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Digest as _;

use crate::common::*;

/// A customer key: (base64 key, base64 MD5 of the key).
fn customer_key(byte: u8) -> (String, String) {
    let raw = [byte; 32];
    (BASE64.encode(raw), BASE64.encode(md5::Md5::digest(raw)))
}

async fn put_sse_c(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &[u8],
    (k, k_md5): &(String, String),
) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(k)
        .sse_customer_key_md5(k_md5)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("SSE-C PUT {key}: {e:?}"))
}

async fn get_sse_c(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    range: Option<&str>,
    (k, k_md5): &(String, String),
) -> Result<Vec<u8>, String> {
    let got = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_range(range.map(str::to_owned))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(k)
        .sse_customer_key_md5(k_md5)
        .send()
        .await
        .map_err(|e| sdk_error_code(&e).unwrap_or_else(|| format!("{e:?}")))?;
    assert_eq!(got.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(got.sse_customer_key_md5(), Some(k_md5.as_str()));
    assert_eq!(got.server_side_encryption(), None);
    Ok(got.body.collect().await.unwrap().into_bytes().to_vec())
}

/// A raw PUT with SSE-C headers (to send what the SDK would not).
async fn raw_put(server: &TestServer, key: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut r = RawRequest::new("PUT", &format!("/sse/{key}")).body("x");
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.sign(server.s3_addr(), Payload::Signed)
        .send(server.s3_addr())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_objects_read_back_only_with_their_key() {
    let mut server = TestServer::start_with_args(&["--allow-sse-c-over-http"]);
    let c = sdk_client(&server);
    create_bucket(&c, "sse").await;
    let key = customer_key(0x5c);
    let other = customer_key(0x77);
    let mut rng = Rng::new(test_seed("sse-c"));
    let small = b"a small reading, kept in the metadata record".to_vec();
    let large: Vec<u8> = rng.bytes(3 * MIB + 12_345);

    let put = put_sse_c(&c, "sse", "small", &small, &key).await;
    assert_eq!(put.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(put.sse_customer_key_md5(), Some(key.1.as_str()));
    assert_eq!(put.server_side_encryption(), None, "not SSE-S3's header");
    // The ETag is not the MD5 of the content (that would let anyone who
    // may list the bucket confirm a guess of it).
    let etag = put.e_tag().unwrap().trim_matches('"').to_owned();
    assert_ne!(etag, hex::encode(md5::Md5::digest(&small)));
    put_sse_c(&c, "sse", "large", &large, &key).await;
    put_bytes(&c, "sse", "plain", b"no customer key").await;

    // With the key: the bytes, whole and ranged (inside a chunk and across
    // the first chunk boundary region).
    assert_eq!(
        get_sse_c(&c, "sse", "small", None, &key).await.unwrap(),
        small
    );
    assert_eq!(
        get_sse_c(&c, "sse", "large", None, &key).await.unwrap(),
        large
    );
    for (first, last) in [
        (1000, 1999),
        (262_140, 900_001),
        (3 * MIB, 3 * MIB + 12_344),
    ] {
        let got = get_sse_c(
            &c,
            "sse",
            "large",
            Some(&format!("bytes={first}-{last}")),
            &key,
        )
        .await
        .unwrap();
        assert_eq!(got, large[first..=last], "bytes={first}-{last}");
    }
    let head = c
        .head_object()
        .bucket("sse")
        .key("large")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key.0)
        .sse_customer_key_md5(&key.1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(large.len() as i64));
    assert_eq!(head.sse_customer_key_md5(), Some(key.1.as_str()));

    // Without the key: 400; with another key: 403; a key for an object
    // without SSE-C: 400. HEAD answers the same statuses.
    assert_eq!(
        get_sse_c(&c, "sse", "small", None, &other)
            .await
            .unwrap_err(),
        "AccessDenied"
    );
    let e = c
        .get_object()
        .bucket("sse")
        .key("small")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));
    let e = c
        .head_object()
        .bucket("sse")
        .key("large")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_status(&e), Some(400));
    let e = c
        .head_object()
        .bucket("sse")
        .key("large")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other.0)
        .sse_customer_key_md5(&other.1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_status(&e), Some(403));
    assert_eq!(
        get_sse_c(&c, "sse", "plain", None, &key).await.unwrap_err(),
        "InvalidRequest"
    );
    // Attributes too need the key.
    let e = c
        .get_object_attributes()
        .bucket("sse")
        .key("small")
        .object_attributes(aws_sdk_s3::types::ObjectAttributes::ObjectSize)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));

    // Malformed requests, refused before anything is stored.
    let (k, k_md5) = &key;
    for (headers, code) in [
        (
            vec![("x-amz-server-side-encryption-customer-algorithm", "AES256")],
            "InvalidArgument",
        ),
        (
            vec![
                ("x-amz-server-side-encryption-customer-algorithm", "AES128"),
                ("x-amz-server-side-encryption-customer-key", k.as_str()),
                (
                    "x-amz-server-side-encryption-customer-key-md5",
                    k_md5.as_str(),
                ),
            ],
            "InvalidEncryptionAlgorithmError",
        ),
        (
            vec![
                ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                ("x-amz-server-side-encryption-customer-key", k.as_str()),
                (
                    "x-amz-server-side-encryption-customer-key-md5",
                    other.1.as_str(),
                ),
            ],
            "InvalidArgument",
        ),
        (
            vec![
                ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                ("x-amz-server-side-encryption-customer-key", "c2hvcnQ="),
                ("x-amz-server-side-encryption-customer-key-md5", "c2hvcnQ="),
            ],
            "InvalidArgument",
        ),
        (
            vec![
                ("x-amz-server-side-encryption", "AES256"),
                ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                ("x-amz-server-side-encryption-customer-key", k.as_str()),
                (
                    "x-amz-server-side-encryption-customer-key-md5",
                    k_md5.as_str(),
                ),
            ],
            "InvalidArgument",
        ),
    ] {
        raw_put(&server, "refused", &headers).await.assert_s3_error(
            400,
            code,
            &format!("{headers:?}"),
        );
    }
    assert!(!object_exists(&c, "sse", "refused").await);

    // Copies between encryption modes. Without the source's key: refused.
    let copy = |src: &str, dst: &str| {
        c.copy_object()
            .bucket("sse")
            .key(dst)
            .copy_source(format!("sse/{src}"))
    };
    let e = copy("small", "copy").send().await.unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));
    let e = copy("small", "copy")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&other.0)
        .copy_source_sse_customer_key_md5(&other.1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_status(&e), Some(403));
    assert!(!object_exists(&c, "sse", "copy").await);
    // SSE-C → SSE-S3 (the source's key given): a plain object.
    let out = copy("large", "decrypted")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key.0)
        .copy_source_sse_customer_key_md5(&key.1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.copy_object_result()
            .unwrap()
            .e_tag()
            .unwrap()
            .trim_matches('"'),
        hex::encode(md5::Md5::digest(&large)),
        "a plain copy's ETag is its MD5"
    );
    assert_eq!(get_bytes(&c, "sse", "decrypted").await, large);
    // SSE-S3 → SSE-C.
    copy("plain", "encrypted")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other.0)
        .sse_customer_key_md5(&other.1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_sse_c(&c, "sse", "encrypted", None, &other)
            .await
            .unwrap(),
        b"no customer key"
    );
    // A new key for an object, in place (S3's way to rotate an SSE-C key).
    copy("small", "small")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key.0)
        .copy_source_sse_customer_key_md5(&key.1)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other.0)
        .sse_customer_key_md5(&other.1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_sse_c(&c, "sse", "small", None, &other).await.unwrap(),
        small
    );
    assert_eq!(
        get_sse_c(&c, "sse", "small", None, &key).await.unwrap_err(),
        "AccessDenied"
    );

    // After a kill -9 the objects still open with their key only.
    server.restart(true);
    let c = sdk_client(&server);
    assert_eq!(
        get_sse_c(&c, "sse", "large", None, &key).await.unwrap(),
        large
    );
    assert_eq!(
        get_sse_c(&c, "sse", "large", None, &other)
            .await
            .unwrap_err(),
        "AccessDenied"
    );
}

/// A multipart upload begun with a customer key: every part needs that
/// key, each part has its own keystream, and reads across part boundaries
/// (ranges, partNumber) decrypt exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_multipart_uploads_need_the_key_for_every_part() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let server = TestServer::start_with_args(&["--allow-sse-c-over-http"]);
    let c = sdk_client(&server);
    create_bucket(&c, "sse").await;
    let (k, k_md5) = customer_key(0x11);
    let other = customer_key(0x22);
    let mut rng = Rng::new(test_seed("sse-c-multipart"));
    let parts_data = [
        rng.bytes(5 * MIB),
        rng.bytes(5 * MIB + 7),
        rng.bytes(123_457),
    ];

    let up = c
        .create_multipart_upload()
        .bucket("sse")
        .key("mp")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k)
        .sse_customer_key_md5(&k_md5)
        .send()
        .await
        .unwrap();
    assert_eq!(up.sse_customer_key_md5(), Some(k_md5.as_str()));
    let id = up.upload_id().unwrap().to_owned();
    let part = |n: i32, data: Vec<u8>, key: Option<&(String, String)>| {
        let mut p = c
            .upload_part()
            .bucket("sse")
            .key("mp")
            .upload_id(&id)
            .part_number(n)
            .body(data.into());
        if let Some((k, m)) = key {
            p = p
                .sse_customer_algorithm("AES256")
                .sse_customer_key(k)
                .sse_customer_key_md5(m);
        }
        p.send()
    };
    // Without the key, or with another: refused.
    let e = part(1, parts_data[0].clone(), None).await.unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));
    let e = part(1, parts_data[0].clone(), Some(&other))
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("InvalidRequest"),
        "{e:?}"
    );
    // UploadPartCopy into it needs the upload's key too.
    put_bytes(&c, "sse", "plain", b"plain").await;
    let e = c
        .upload_part_copy()
        .bucket("sse")
        .key("mp")
        .upload_id(&id)
        .part_number(9)
        .copy_source("sse/plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));
    // Part 2 is copied from a range of an object under another customer
    // key: decrypted from the middle of its keystream, encrypted into
    // this part's. Without the source's key it is refused.
    let mut source = rng.bytes(50);
    source.extend_from_slice(&parts_data[1]);
    source.extend_from_slice(&rng.bytes(100));
    put_sse_c(&c, "sse", "src", &source, &other).await;
    let range = format!("bytes=50-{}", 50 + parts_data[1].len() - 1);
    let copy_part = |with_source_key: bool| {
        let mut p = c
            .upload_part_copy()
            .bucket("sse")
            .key("mp")
            .upload_id(&id)
            .part_number(2)
            .copy_source("sse/src")
            .copy_source_range(&range)
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&k)
            .sse_customer_key_md5(&k_md5);
        if with_source_key {
            p = p
                .copy_source_sse_customer_algorithm("AES256")
                .copy_source_sse_customer_key(&other.0)
                .copy_source_sse_customer_key_md5(&other.1);
        }
        p.send()
    };
    let e = copy_part(false).await.unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));
    let copied = copy_part(true).await.unwrap();
    assert_eq!(copied.sse_customer_key_md5(), Some(k_md5.as_str()));
    let copied_etag = copied
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_owned();
    let key = (k.clone(), k_md5.clone());
    let mut completed = Vec::new();
    for (i, data) in parts_data.iter().enumerate() {
        let n = i as i32 + 1;
        let etag = if n == 2 {
            copied_etag.clone()
        } else {
            let r = part(n, data.clone(), Some(&key)).await.unwrap();
            assert_eq!(r.sse_customer_key_md5(), Some(k_md5.as_str()));
            r.e_tag().unwrap().to_owned()
        };
        assert_ne!(etag.trim_matches('"'), hex::encode(md5::Md5::digest(data)));
        completed.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    let done = c
        .complete_multipart_upload()
        .bucket("sse")
        .key("mp")
        .upload_id(&id)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k)
        .sse_customer_key_md5(&k_md5)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-3\""));
    let whole: Vec<u8> = parts_data.concat();
    assert_eq!(get_sse_c(&c, "sse", "mp", None, &key).await.unwrap(), whole);
    let boundary = 5 * MIB;
    for (first, last) in [
        (boundary - 10, boundary + 10),
        (boundary - 1, boundary),
        (0, 2 * boundary + 100),
        (2 * boundary + 7, whole.len() - 1),
    ] {
        let got = get_sse_c(
            &c,
            "sse",
            "mp",
            Some(&format!("bytes={first}-{last}")),
            &key,
        )
        .await
        .unwrap();
        assert_eq!(got, whole[first..=last], "bytes={first}-{last}");
    }
    let part2 = c
        .get_object()
        .bucket("sse")
        .key("mp")
        .part_number(2)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k)
        .sse_customer_key_md5(&k_md5)
        .send()
        .await
        .unwrap();
    assert_eq!(
        part2.body.collect().await.unwrap().into_bytes().to_vec(),
        parts_data[1]
    );
    assert_eq!(
        get_sse_c(&c, "sse", "mp", None, &other).await.unwrap_err(),
        "AccessDenied"
    );
}

/// boto3's own SSE-C helpers: put/get/head, and upload_file/download_file
/// (s3transfer: multipart, ranged parallel downloads) with the key.
#[test]
fn boto3_puts_and_transfers_with_a_customer_key() {
    let server = TestServer::start_with_args(&["--allow-sse-c-over-http"]);
    run_boto3_suite(&server, "sse_c", &[]);
}

/// Over plain HTTP SSE-C is refused (the key would cross the network in
/// the clear) unless the operator allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_over_plain_http_is_refused_by_default() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "sse").await;
    let (k, k_md5) = customer_key(1);
    let e = c
        .put_object()
        .bucket("sse")
        .key("x")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k)
        .sse_customer_key_md5(&k_md5)
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));
    assert!(!object_exists(&c, "sse", "x").await);
}

/// No SSE-C object shares a chunk with another object (its content is not
/// recognisable by dedup), the key is nowhere on disk, and neither is the
/// plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_content_is_not_recognisable_and_the_key_is_not_stored() {
    let mut server = TestServer::start_with_args(&["--allow-sse-c-over-http"]);
    let c = sdk_client(&server);
    create_bucket(&c, "sse").await;
    let mut rng = Rng::new(test_seed("sse-c-dedup"));
    let marker = format!("CAIRN-SSE-C-MARKER-{}", rng.hex(24));
    let mut body = Vec::new();
    while body.len() < 2 * MIB {
        body.extend_from_slice(marker.as_bytes());
        body.extend_from_slice(&rng.bytes(4000));
    }
    let key = customer_key(0x42);
    let deduplicated =
        |server: &TestServer| server.metric("cairn_pipeline_chunks_deduplicated_total");

    put_bytes(&c, "sse", "plain", &body).await;
    let before = deduplicated(&server);
    // The same bytes under a customer key, twice: nothing matches the plain
    // copy, nor the other SSE-C copy (each object has its own key).
    put_sse_c(&c, "sse", "secret-1", &body, &key).await;
    put_sse_c(&c, "sse", "secret-2", &body, &key).await;
    assert_eq!(
        deduplicated(&server),
        before,
        "an SSE-C chunk was deduplicated"
    );
    // The control: the same bytes without a key are recognised.
    put_bytes(&c, "sse", "plain-again", &body).await;
    assert!(
        deduplicated(&server) > before,
        "dedup of plain objects broke"
    );

    server.stop();
    let raw = [0x42u8; 32];
    for needle in [
        marker.as_bytes().to_vec(),
        raw.to_vec(),
        key.0.as_bytes().to_vec(),
        hex::encode(raw).into_bytes(),
    ] {
        let found = crate::pipeline::files_containing(server.data_dir(), &needle);
        assert!(
            found.is_empty(),
            "found {:?} in {found:?}",
            String::from_utf8_lossy(&needle)
        );
    }
}
