//! End-to-end tests of conditional writes through `aws-sdk-s3` against a
//! real `cairn` process: `If-None-Match: *` and `If-Match: <etag>` on
//! PutObject, CopyObject (destination) and CompleteMultipartUpload, checked
//! atomically with the commit (16 racing creators of one key: exactly one
//! wins).

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;

/// Asserts an SDK call failed with `status` and S3 error `code`.
macro_rules! assert_s3_err {
    ($res:expr, $status:expr, $code:expr, $what:expr) => {
        match $res {
            Ok(_) => panic!("{}: succeeded, expected {} {}", $what, $status, $code),
            Err(e) => {
                assert_eq!(
                    sdk_error_status(&e),
                    Some($status),
                    "{}: {}",
                    $what,
                    show(&e)
                );
                assert_eq!(
                    sdk_error_code(&e).as_deref(),
                    Some($code),
                    "{}: {}",
                    $what,
                    show(&e)
                );
            }
        }
    };
}

async fn put_if(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    data: &[u8],
    if_none_match: Option<&str>,
    if_match: Option<&str>,
) -> Result<
    aws_sdk_s3::operation::put_object::PutObjectOutput,
    aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::put_object::PutObjectError>,
> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .set_if_none_match(if_none_match.map(str::to_owned))
        .set_if_match(if_match.map(str::to_owned))
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_if_none_match_and_if_match() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "cond";
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("put_object_if_none_match_and_if_match"));

    // Small (stored inline) and large (chunked) bodies take the same checks.
    for (key, size) in [("small", 1000usize), ("large", 3 * MIB + 17)] {
        let first = rng.bytes(size);
        let out = put_if(&c, bucket, key, &first, Some("*"), None)
            .await
            .unwrap_or_else(|e| panic!("create {key}: {}", show(&e)));
        let etag1 = out.e_tag().unwrap().to_owned();
        assert_eq!(etag1, format!("\"{}\"", md5_hex(&first)));

        let second = rng.bytes(size);
        assert_s3_err!(
            put_if(&c, bucket, key, &second, Some("*"), None).await,
            412,
            "PreconditionFailed",
            format!("{key}: If-None-Match * on an existing key")
        );
        assert_eq!(get_bytes(&c, bucket, key).await, first, "{key} unchanged");

        // If-Match: the current ETag (quoted or not) replaces; a stale one fails.
        let out = put_if(&c, bucket, key, &second, None, Some(&etag1))
            .await
            .unwrap_or_else(|e| panic!("{key}: If-Match current: {}", show(&e)));
        let etag2 = out.e_tag().unwrap().to_owned();
        assert_eq!(get_bytes(&c, bucket, key).await, second);
        assert_s3_err!(
            put_if(&c, bucket, key, &first, None, Some(&etag1)).await,
            412,
            "PreconditionFailed",
            format!("{key}: If-Match with a stale ETag")
        );
        assert_eq!(get_bytes(&c, bucket, key).await, second, "{key} unchanged");
        let third = rng.bytes(size);
        put_if(&c, bucket, key, &third, None, Some(etag2.trim_matches('"')))
            .await
            .unwrap_or_else(|e| panic!("{key}: If-Match unquoted: {}", show(&e)));
        assert_eq!(get_bytes(&c, bucket, key).await, third);
    }

    // If-Match on a missing key: 404 NoSuchKey, nothing created.
    assert_s3_err!(
        put_if(&c, bucket, "missing", b"x", None, Some("\"0123\"")).await,
        404,
        "NoSuchKey",
        "If-Match on a missing key"
    );
    assert!(!object_exists(&c, bucket, "missing").await);
    // S3 accepts only `*` in If-None-Match on a write.
    assert_s3_err!(
        put_if(&c, bucket, "other", b"x", Some("\"0123\""), None).await,
        501,
        "NotImplemented",
        "If-None-Match with an ETag"
    );
    assert!(!object_exists(&c, bucket, "other").await);
    // After a delete, If-None-Match * creates again.
    c.delete_object()
        .bucket(bucket)
        .key("small")
        .send()
        .await
        .unwrap();
    put_if(&c, bucket, "small", b"again", Some("*"), None)
        .await
        .unwrap_or_else(|e| panic!("re-create: {}", show(&e)));
    assert_eq!(get_bytes(&c, bucket, "small").await, b"again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_creators_exactly_one_wins() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "race";
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("sixteen_racing_creators_exactly_one_wins"));

    for (round, key) in ["inline-and-chunked", "second-round"].iter().enumerate() {
        // Mixed sizes: inline bodies commit fast, chunked ones slowly.
        let bodies: Vec<Vec<u8>> = (0..16)
            .map(|i| {
                let n = if (i + round) % 2 == 0 {
                    2000 + i
                } else {
                    300 * KIB + i
                };
                rng.bytes(n)
            })
            .collect();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(bodies.len()));
        let mut tasks = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let (c, body, barrier, key) = (c.clone(), body.clone(), barrier.clone(), *key);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let r = put_if(&c, bucket, key, &body, Some("*"), None).await;
                (i, r)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (i, r) = t.await.unwrap();
            match r {
                Ok(out) => winners.push((i, out.e_tag().unwrap().to_owned())),
                Err(e) => {
                    assert_eq!(sdk_error_status(&e), Some(412), "creator {i}: {}", show(&e));
                    assert_eq!(sdk_error_code(&e).as_deref(), Some("PreconditionFailed"));
                }
            }
        }
        assert_eq!(winners.len(), 1, "exactly one creator wins: {winners:?}");
        let (w, etag) = &winners[0];
        let got = get_bytes(&c, bucket, key).await;
        assert!(got == bodies[*w], "the object holds the winner's bytes");
        assert_eq!(*etag, format!("\"{}\"", md5_hex(&bodies[*w])));
    }
}

async fn one_part_upload(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    data: &[u8],
) -> (String, String) {
    let id = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let etag = c
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart: {}", show(&e)))
        .e_tag()
        .unwrap()
        .to_owned();
    (id, etag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_and_copy_object_honour_write_conditions() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "cond-mp";
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("complete_multipart_and_copy_object"));

    let existing = rng.bytes(10_000);
    let existing_etag = put_bytes(&c, bucket, "mp", &existing).await;
    let part = rng.bytes(MIB + 5);
    let (id, part_etag) = one_part_upload(&c, bucket, "mp", &part).await;
    let complete = |cond_none: Option<&str>, cond_match: Option<&str>| {
        c.complete_multipart_upload()
            .bucket(bucket)
            .key("mp")
            .upload_id(&id)
            .multipart_upload(completed(std::slice::from_ref(&part_etag)))
            .set_if_none_match(cond_none.map(str::to_owned))
            .set_if_match(cond_match.map(str::to_owned))
            .send()
    };
    assert_s3_err!(
        complete(Some("*"), None).await,
        412,
        "PreconditionFailed",
        "Complete with If-None-Match * on an existing key"
    );
    assert_s3_err!(
        complete(None, Some("\"00000000000000000000000000000000\"")).await,
        412,
        "PreconditionFailed",
        "Complete with a stale If-Match"
    );
    // A failed condition leaves the upload and its part in place.
    let parts = c
        .list_parts()
        .bucket(bucket)
        .key("mp")
        .upload_id(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListParts after failed completes: {}", show(&e)));
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(get_bytes(&c, bucket, "mp").await, existing);
    let out = complete(None, Some(&existing_etag))
        .await
        .unwrap_or_else(|e| panic!("Complete with the current If-Match: {}", show(&e)));
    assert_eq!(out.e_tag().unwrap(), multipart_etag(&[md5_raw(&part)]));
    assert_eq!(get_bytes(&c, bucket, "mp").await, part);

    // A new key: If-None-Match * completes; If-Match on it fails with 404.
    let (id2, etag2) = one_part_upload(&c, bucket, "mp-new", b"tiny last part").await;
    assert_s3_err!(
        c.complete_multipart_upload()
            .bucket(bucket)
            .key("mp-new")
            .upload_id(&id2)
            .multipart_upload(completed(std::slice::from_ref(&etag2)))
            .if_match("\"abc\"")
            .send()
            .await,
        404,
        "NoSuchKey",
        "Complete with If-Match on a missing key"
    );
    c.complete_multipart_upload()
        .bucket(bucket)
        .key("mp-new")
        .upload_id(&id2)
        .multipart_upload(completed(std::slice::from_ref(&etag2)))
        .if_none_match("*")
        .send()
        .await
        .unwrap_or_else(|e| panic!("Complete with If-None-Match * on a new key: {}", show(&e)));
    assert_eq!(get_bytes(&c, bucket, "mp-new").await, b"tiny last part");

    // CopyObject: the conditions apply to the destination.
    assert_s3_err!(
        c.copy_object()
            .bucket(bucket)
            .key("mp-new")
            .copy_source(format!("{bucket}/mp"))
            .if_none_match("*")
            .send()
            .await,
        412,
        "PreconditionFailed",
        "CopyObject with If-None-Match * onto an existing key"
    );
    assert_eq!(get_bytes(&c, bucket, "mp-new").await, b"tiny last part");
    c.copy_object()
        .bucket(bucket)
        .key("copy-new")
        .copy_source(format!("{bucket}/mp"))
        .if_none_match("*")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject If-None-Match * onto a new key: {}", show(&e)));
    assert_eq!(get_bytes(&c, bucket, "copy-new").await, part);
}
