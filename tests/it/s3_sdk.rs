//! End-to-end S3 behaviour through the official Rust SDK (`aws-sdk-s3`)
//! against a real `cairn` process: bucket and object lifecycle with
//! metadata, copies, batch deletes, a >100 MiB multipart upload, range and
//! conditional reads, and paginated listings with delimiters.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;

use crate::common::*;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{Delete, EncodingType, MetadataDirective, ObjectIdentifier};
use md5::Digest as _;

// ---------------------------------------------------------------------------
// 1. Lifecycle
// ---------------------------------------------------------------------------

const LIFECYCLE_BUCKET: &str = "lifecycle-bucket";
const REPORT_KEY: &str = "docs/report 2025+final.txt";

/// A server with `lifecycle-bucket` created, and a client for it.
async fn lifecycle_server() -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, LIFECYCLE_BUCKET).await;
    (server, c)
}

/// The object every lifecycle test starts from: `REPORT_KEY` with a body,
/// every standard header and two `x-amz-meta-*` entries.
struct Report {
    body: Vec<u8>,
    etag: String,
}

async fn put_report(c: &aws_sdk_s3::Client) -> Report {
    let mut rng = Rng::new(test_seed("lifecycle"));
    let body = rng.bytes(300 * KIB + 17);
    let put = c
        .put_object()
        .bucket(LIFECYCLE_BUCKET)
        .key(REPORT_KEY)
        .body(ByteStream::from(body.clone()))
        .content_type("text/plain; charset=utf-8")
        .cache_control("max-age=3600, must-revalidate")
        .content_disposition("attachment; filename=\"report.txt\"")
        .content_language("en-GB")
        .metadata("color", "blue")
        .metadata("project-name", "cairn e2e")
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject: {}", show(&e)));
    let etag = format!("\"{}\"", md5_hex(&body));
    assert_eq!(
        put.e_tag(),
        Some(etag.as_str()),
        "PUT ETag must be the hex MD5"
    );
    Report { body, etag }
}

/// The report's metadata as PutObject set it.
fn report_meta() -> HashMap<String, String> {
    [
        ("color".to_owned(), "blue".to_owned()),
        ("project-name".to_owned(), "cairn e2e".to_owned()),
    ]
    .into()
}

/// The report as a copy source (the SDK wants it URL-encoded).
fn report_source() -> String {
    format!("{LIFECYCLE_BUCKET}/{}", encode_key(REPORT_KEY))
}

async fn head(
    c: &aws_sdk_s3::Client,
    key: &str,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    c.head_object()
        .bucket(LIFECYCLE_BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("HeadObject {key}: {}", show(&e)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_headed_listed_with_creation_dates_and_located_in_us_east_1() {
    let (_server, c) = lifecycle_server().await;
    let bucket = LIFECYCLE_BUCKET;
    c.head_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("HeadBucket");
    let missing = c.head_bucket().bucket("no-such-bucket-here").send().await;
    assert_eq!(
        missing.as_ref().err().and_then(sdk_error_status),
        Some(404),
        "HeadBucket of a missing bucket must be 404"
    );
    let listed = c.list_buckets().send().await.expect("ListBuckets");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert!(names.contains(&bucket), "ListBuckets: {names:?}");
    assert!(
        listed.buckets().iter().all(|b| b.creation_date().is_some()),
        "every bucket has a CreationDate"
    );

    let loc = c
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .expect("GetBucketLocation");
    // S3 answers an empty LocationConstraint for us-east-1.
    let loc = loc
        .location_constraint()
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default();
    assert!(
        loc.is_empty(),
        "GetBucketLocation for us-east-1 should be empty, got {loc:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_headers_and_metadata_come_back_on_get_and_head() {
    let (_server, c) = lifecycle_server().await;
    let Report { body, etag } = put_report(&c).await;

    let got = c
        .get_object()
        .bucket(LIFECYCLE_BUCKET)
        .key(REPORT_KEY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject: {}", show(&e)));
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert_eq!(got.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(got.cache_control(), Some("max-age=3600, must-revalidate"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"report.txt\"")
    );
    assert_eq!(got.content_language(), Some("en-GB"));
    assert!(got.last_modified().is_some(), "Last-Modified");
    let meta = got.metadata().cloned().unwrap_or_default();
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("blue"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("project-name").map(String::as_str),
        Some("cairn e2e"),
        "{meta:?}"
    );
    let got_body = got.body.collect().await.expect("body").into_bytes();
    assert!(got_body[..] == body[..], "GET body differs from PUT body");

    let head = head(&c, REPORT_KEY).await;
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(head.cache_control(), Some("max-age=3600, must-revalidate"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"report.txt\"")
    );
    assert_eq!(head.metadata().cloned().unwrap_or_default(), meta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_with_metadata_directive_copy_keeps_the_etag_headers_and_metadata() {
    let (_server, c) = lifecycle_server().await;
    let Report { body, etag } = put_report(&c).await;
    let copied = c
        .copy_object()
        .bucket(LIFECYCLE_BUCKET)
        .key("copies/same-meta")
        .copy_source(report_source())
        .metadata_directive(MetadataDirective::Copy)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject COPY: {}", show(&e)));
    let copy_etag = copied
        .copy_object_result()
        .and_then(|r| r.e_tag())
        .map(str::to_owned);
    assert_eq!(
        copy_etag.as_deref(),
        Some(etag.as_str()),
        "copy of a single-PUT object keeps the MD5 ETag"
    );
    let h = head(&c, "copies/same-meta").await;
    assert_eq!(
        h.metadata().cloned().unwrap_or_default(),
        report_meta(),
        "COPY directive keeps metadata"
    );
    assert_eq!(h.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(h.cache_control(), Some("max-age=3600, must-revalidate"));
    assert_eq!(
        get_bytes(&c, LIFECYCLE_BUCKET, "copies/same-meta").await,
        body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_with_metadata_directive_replace_stores_only_the_new_headers_and_metadata() {
    let (_server, c) = lifecycle_server().await;
    let Report { body, .. } = put_report(&c).await;
    c.copy_object()
        .bucket(LIFECYCLE_BUCKET)
        .key("copies/new-meta")
        .copy_source(report_source())
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-cairn")
        .metadata("shape", "round")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject REPLACE: {}", show(&e)));
    let h = head(&c, "copies/new-meta").await;
    let m = h.metadata().cloned().unwrap_or_default();
    assert_eq!(m.get("shape").map(String::as_str), Some("round"), "{m:?}");
    assert!(
        !m.contains_key("color"),
        "REPLACE must drop the old metadata: {m:?}"
    );
    assert_eq!(h.content_type(), Some("application/x-cairn"));
    assert_eq!(
        h.cache_control(),
        None,
        "REPLACE must drop the old Cache-Control"
    );
    assert_eq!(
        get_bytes(&c, LIFECYCLE_BUCKET, "copies/new-meta").await,
        body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_onto_itself_is_refused_without_replace_and_changes_only_metadata_with_it() {
    let (_server, c) = lifecycle_server().await;
    let Report { body, etag } = put_report(&c).await;
    // Copying an object onto itself without changing anything is illegal in S3.
    let same = c
        .copy_object()
        .bucket(LIFECYCLE_BUCKET)
        .key(REPORT_KEY)
        .copy_source(report_source())
        .send()
        .await;
    let err = same.expect_err("copy onto itself without REPLACE must fail");
    assert_eq!(sdk_error_status(&err), Some(400), "{}", show(&err));
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("InvalidRequest"),
        "{}",
        show(&err)
    );

    // …but with REPLACE it changes the metadata in place.
    c.copy_object()
        .bucket(LIFECYCLE_BUCKET)
        .key(REPORT_KEY)
        .copy_source(report_source())
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/markdown")
        .metadata("color", "green")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject onto itself REPLACE: {}", show(&e)));
    let h = head(&c, REPORT_KEY).await;
    let m = h.metadata().cloned().unwrap_or_default();
    let want: HashMap<String, String> = [("color".to_owned(), "green".to_owned())].into();
    assert_eq!(
        m, want,
        "self-copy with REPLACE sets exactly the new metadata"
    );
    assert_eq!(h.content_type(), Some("text/markdown"));
    assert_eq!(
        h.e_tag(),
        Some(etag.as_str()),
        "the body (and its MD5) is unchanged"
    );
    assert_eq!(get_bytes(&c, LIFECYCLE_BUCKET, REPORT_KEY).await, body);
}

fn object_ids(keys: &[&str]) -> Vec<ObjectIdentifier> {
    keys.iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_lists_every_key_when_verbose_and_none_when_quiet() {
    let (_server, c) = lifecycle_server().await;
    let bucket = LIFECYCLE_BUCKET;
    for k in ["del/a", "del/b", "del/c", "del/d", "del/e"] {
        put_bytes(&c, bucket, k, k.as_bytes()).await;
    }
    let verbose = c
        .delete_objects()
        .bucket(bucket)
        .delete(
            Delete::builder()
                .set_objects(Some(object_ids(&["del/a", "del/b", "del/never-existed"])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObjects verbose: {}", show(&e)));
    let mut deleted: Vec<&str> = verbose.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort_unstable();
    assert_eq!(
        deleted,
        ["del/a", "del/b", "del/never-existed"],
        "verbose DeleteObjects lists every key (missing keys count as deleted)"
    );
    assert!(
        verbose.errors().is_empty(),
        "errors: {:?}",
        verbose.errors()
    );

    let quiet = c
        .delete_objects()
        .bucket(bucket)
        .delete(
            Delete::builder()
                .set_objects(Some(object_ids(&["del/c", "del/d"])))
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObjects quiet: {}", show(&e)));
    assert!(
        quiet.deleted().is_empty(),
        "quiet mode reports no successes: {:?}",
        quiet.deleted()
    );
    assert!(quiet.errors().is_empty(), "errors: {:?}", quiet.errors());
    for k in ["del/a", "del/b", "del/c", "del/d"] {
        assert!(
            !object_exists(&c, bucket, k).await,
            "{k} still exists after DeleteObjects"
        );
    }
    assert!(
        object_exists(&c, bucket, "del/e").await,
        "del/e was not in any delete request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_object_succeeds_for_a_missing_key_and_leaves_a_deleted_key_no_such_key() {
    let (_server, c) = lifecycle_server().await;
    let bucket = LIFECYCLE_BUCKET;
    put_bytes(&c, bucket, "del/e", b"del/e").await;
    // DeleteObject of a missing key succeeds (204).
    c.delete_object()
        .bucket(bucket)
        .key("del/never-existed")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObject of a missing key: {}", show(&e)));
    c.delete_object()
        .bucket(bucket)
        .key("del/e")
        .send()
        .await
        .expect("DeleteObject");
    assert!(!object_exists(&c, bucket, "del/e").await);
    let g = c.get_object().bucket(bucket).key("del/e").send().await;
    let e = g.expect_err("GET of a deleted key");
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchKey"),
        "{}",
        show(&e)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_bucket_refuses_a_non_empty_bucket_and_removes_an_empty_one() {
    let (_server, c) = lifecycle_server().await;
    let bucket = LIFECYCLE_BUCKET;
    put_report(&c).await;
    let not_empty = c.delete_bucket().bucket(bucket).send().await;
    let e = not_empty.expect_err("DeleteBucket of a non-empty bucket must fail");
    assert_eq!(sdk_error_status(&e), Some(409), "{}", show(&e));
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("BucketNotEmpty"),
        "{}",
        show(&e)
    );
    c.head_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket still there");

    c.delete_object()
        .bucket(bucket)
        .key(REPORT_KEY)
        .send()
        .await
        .expect("DeleteObject");
    c.delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteBucket of an empty bucket: {}", show(&e)));
    let gone = c.head_bucket().bucket(bucket).send().await;
    assert_eq!(gone.as_ref().err().and_then(sdk_error_status), Some(404));
    let listed = c.list_buckets().send().await.expect("ListBuckets");
    assert!(
        !listed.buckets().iter().any(|b| b.name() == Some(bucket)),
        "deleted bucket still listed"
    );
}

// ---------------------------------------------------------------------------
// 2. Multipart ≥ 100 MiB
// ---------------------------------------------------------------------------

const MP_PART: usize = 12 * MIB;
const MP_PARTS: usize = 9; // 8 × 12 MiB + a 4 MiB + 333 KiB + 7 B last part
const MP_TOTAL: usize = 8 * MP_PART + 4 * MIB + 333 * KIB + 7;

/// The multipart source: a file written as it is generated, with each
/// part's MD5 and size and the whole file's MD5.
struct BigSource {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    part_md5s: Vec<Vec<u8>>,
    part_sizes: Vec<usize>,
    whole_md5: String,
}

// The source lives in a file: parts stream from it (the SDK then sends
// aws-chunked bodies with CRC32 trailers) and it is hashed as written.
fn write_big_source(rng: &mut Rng) -> BigSource {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let mut whole = md5::Md5::new();
    let mut part_md5s = Vec::new();
    let mut part_sizes = Vec::new();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut left = MP_TOTAL;
    while left > 0 {
        let n = left.min(MP_PART);
        let part = rng.bytes(n);
        whole.update(&part);
        part_md5s.push(md5_raw(&part));
        part_sizes.push(n);
        f.write_all(&part).unwrap();
        left -= n;
    }
    f.flush().unwrap();
    assert_eq!(part_md5s.len(), MP_PARTS);
    BigSource {
        _dir: dir,
        path,
        part_md5s,
        part_sizes,
        whole_md5: hex::encode(whole.finalize()),
    }
}

/// Uploads the source's parts two at a time, streamed from the file;
/// returns their ETags in part order.
async fn upload_parts_two_at_a_time(
    c: &aws_sdk_s3::Client,
    bucket: &'static str,
    key: &'static str,
    upload_id: &str,
    src: &BigSource,
) -> Vec<String> {
    let mut etags = vec![String::new(); MP_PARTS];
    let mut offset = 0u64;
    let mut idx = 0;
    while idx < MP_PARTS {
        let mut set = tokio::task::JoinSet::new();
        for (i, &part_size) in src
            .part_sizes
            .iter()
            .enumerate()
            .take(MP_PARTS)
            .skip(idx)
            .take(2)
        {
            let c = c.clone();
            let (path, id) = (src.path.clone(), upload_id.to_owned());
            let (off, len) = (offset, part_size as u64);
            offset += len;
            set.spawn(async move {
                let body = ByteStream::read_from()
                    .path(&path)
                    .offset(off)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .expect("part body from file");
                let out = c
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(i as i32 + 1)
                    .body(body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("UploadPart {}: {}", i + 1, show(&e)));
                (i, out.e_tag().unwrap_or_default().to_owned())
            });
        }
        while let Some(r) = set.join_next().await {
            let (i, etag) = r.expect("upload task");
            etags[i] = etag;
        }
        idx += 2;
    }
    etags
}

/// ListParts lists every part with its size and ETag, and paginates with
/// max-parts and part-number-marker.
async fn assert_list_parts(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    src: &BigSource,
    etags: &[String],
) {
    let parts = c
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListParts: {}", show(&e)));
    let listed: Vec<(i32, i64, String)> = parts
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap_or(0),
                p.size().unwrap_or(-1),
                p.e_tag().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(i32, i64, String)> = (0..MP_PARTS)
        .map(|i| (i as i32 + 1, src.part_sizes[i] as i64, etags[i].clone()))
        .collect();
    assert_eq!(listed, expected, "ListParts");

    // ListParts paginates with max-parts.
    let page = c
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .max_parts(4)
        .send()
        .await
        .expect("ListParts max-parts=4");
    assert_eq!(page.parts().len(), 4);
    assert_eq!(page.is_truncated(), Some(true));
    let marker = page
        .next_part_number_marker()
        .expect("NextPartNumberMarker")
        .to_owned();
    assert_eq!(marker, "4");
    let page2 = c
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number_marker(marker)
        .send()
        .await
        .expect("ListParts after marker");
    let nums: Vec<i32> = page2
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(nums, (5..=MP_PARTS as i32).collect::<Vec<_>>());
}

/// Completing with a wrong ETag is InvalidPart and creates nothing.
async fn assert_complete_with_a_wrong_etag_is_invalid_part(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    etags: &[String],
) {
    let mut wrong = etags.to_vec();
    wrong[1] = format!("\"{}\"", md5_hex(b"not the part"));
    let bad = c
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(completed(&wrong))
        .send()
        .await;
    let e = bad.expect_err("Complete with a wrong ETag");
    assert_eq!(sdk_error_status(&e), Some(400), "{}", show(&e));
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("InvalidPart"),
        "{}",
        show(&e)
    );
    assert!(
        !object_exists(c, bucket, key).await,
        "a failed Complete must not create the object"
    );
}

/// The multipart object reads back whole (hashed as it streams), by
/// partNumber, and by a range across a part boundary.
async fn assert_big_object_reads_back(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    want_etag: &str,
    src: &BigSource,
) {
    // Download, hashing as it streams.
    let mut got = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject: {}", show(&e)));
    assert_eq!(got.e_tag(), Some(want_etag));
    let mut h = md5::Md5::new();
    let mut n = 0usize;
    while let Some(chunk) = got.body.try_next().await.expect("body chunk") {
        n += chunk.len();
        h.update(&chunk);
    }
    assert_eq!(n, MP_TOTAL, "downloaded length");
    assert_eq!(
        hex::encode(h.finalize()),
        src.whole_md5,
        "downloaded bytes differ"
    );

    // partNumber=2 returns exactly part 2.
    let p2 = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .part_number(2)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject partNumber=2: {}", show(&e)));
    assert_eq!(p2.parts_count(), Some(MP_PARTS as i32));
    assert_eq!(p2.content_length(), Some(MP_PART as i64));
    assert_eq!(
        p2.content_range(),
        Some(format!("bytes {}-{}/{MP_TOTAL}", MP_PART, 2 * MP_PART - 1).as_str())
    );
    let p2 = p2.body.collect().await.expect("part 2 body").into_bytes();
    assert_eq!(md5_raw(&p2), src.part_md5s[1], "partNumber=2 body");

    // A range across the boundary of parts 3 and 4.
    let (a, b) = (3 * MP_PART - 1000, 3 * MP_PART + 999);
    let r = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={a}-{b}"))
        .send()
        .await
        .expect("ranged GET across parts");
    let r = r.body.collect().await.unwrap().into_bytes();
    let file = std::fs::read(&src.path).unwrap();
    assert!(r[..] == file[a..=b], "range across a part boundary");
}

async fn listed_uploads(c: &aws_sdk_s3::Client, bucket: &str) -> BTreeSet<(String, String)> {
    let ups = c
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListMultipartUploads: {}", show(&e)));
    ups.uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap_or_default().to_owned(),
                u.upload_id().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn create_upload(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload {key}: {}", show(&e)));
    up.upload_id().expect("UploadId").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_multipart_upload_of_100_mib_lists_completes_and_reads_back() {
    const { assert!(MP_TOTAL >= 100 * MIB) };
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "multipart-bucket";
    create_bucket(&c, bucket).await;
    let src = write_big_source(&mut Rng::new(test_seed("multipart")));
    let key = "big/object.bin";

    let create = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("application/octet-stream")
        .metadata("origin", "multipart-test")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload: {}", show(&e)));
    let upload_id = create.upload_id().expect("UploadId").to_owned();

    let etags = upload_parts_two_at_a_time(&c, bucket, key, &upload_id, &src).await;
    for (i, e) in etags.iter().enumerate() {
        assert_eq!(
            *e,
            format!("\"{}\"", hex::encode(&src.part_md5s[i])),
            "part {} ETag",
            i + 1
        );
    }
    assert_list_parts(&c, bucket, key, &upload_id, &src, &etags).await;
    assert!(
        listed_uploads(&c, bucket)
            .await
            .contains(&(key.to_owned(), upload_id.clone())),
        "the live upload is listed"
    );

    // A wrong ETag fails, and the upload survives it.
    assert_complete_with_a_wrong_etag_is_invalid_part(&c, bucket, key, &upload_id, &etags).await;
    let done = c
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(completed(&etags))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload: {}", show(&e)));
    let want_etag = multipart_etag(&src.part_md5s);
    assert_eq!(
        done.e_tag(),
        Some(want_etag.as_str()),
        "multipart ETag = md5-of-md5s-N"
    );
    assert!(want_etag.ends_with(&format!("-{MP_PARTS}\"")));

    let ups = listed_uploads(&c, bucket).await;
    assert!(ups.is_empty(), "completed upload still listed: {ups:?}");

    let head = c
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.content_length(), Some(MP_TOTAL as i64));
    assert_eq!(head.e_tag(), Some(want_etag.as_str()));
    assert_eq!(head.content_type(), Some("application/octet-stream"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("multipart-test")
    );
    assert_big_object_reads_back(&c, bucket, key, &want_etag, &src).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_multipart_upload_drops_the_upload_from_listings_and_its_parts() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "multipart-bucket";
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("multipart-abort"));
    let key = "big/object.bin";
    let upload_id = create_upload(&c, bucket, key).await;
    let other_id = create_upload(&c, bucket, "big/aborted.bin").await;
    c.upload_part()
        .bucket(bucket)
        .key("big/aborted.bin")
        .upload_id(&other_id)
        .part_number(1)
        .body(ByteStream::from(rng.bytes(64 * KIB)))
        .send()
        .await
        .expect("UploadPart on the upload to abort");

    // ListMultipartUploads shows both.
    let pairs = listed_uploads(&c, bucket).await;
    assert!(
        pairs.contains(&(key.to_owned(), upload_id.clone())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("big/aborted.bin".to_owned(), other_id.clone())),
        "{pairs:?}"
    );

    // Abort the other one: gone from the listing, its parts unreachable.
    c.abort_multipart_upload()
        .bucket(bucket)
        .key("big/aborted.bin")
        .upload_id(&other_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AbortMultipartUpload: {}", show(&e)));
    let ids: Vec<String> = listed_uploads(&c, bucket)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(
        !ids.contains(&other_id),
        "aborted upload still listed: {ids:?}"
    );
    assert!(ids.contains(&upload_id), "live upload vanished: {ids:?}");
    let lp = c
        .list_parts()
        .bucket(bucket)
        .key("big/aborted.bin")
        .upload_id(&other_id)
        .send()
        .await;
    let e = lp.expect_err("ListParts of an aborted upload");
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchUpload"),
        "{}",
        show(&e)
    );
    assert!(!object_exists(&c, bucket, "big/aborted.bin").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_upload_with_a_1_mib_non_last_part_is_entity_too_small() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "multipart-bucket";
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("multipart-small"));
    let small_id = create_upload(&c, bucket, "big/small-parts").await;
    let mut small_tags = Vec::new();
    for pn in 1..=2 {
        let out = c
            .upload_part()
            .bucket(bucket)
            .key("big/small-parts")
            .upload_id(&small_id)
            .part_number(pn)
            .body(ByteStream::from(rng.bytes(MIB)))
            .send()
            .await
            .expect("UploadPart small");
        small_tags.push(out.e_tag().unwrap().to_owned());
    }
    let too_small = c
        .complete_multipart_upload()
        .bucket(bucket)
        .key("big/small-parts")
        .upload_id(&small_id)
        .multipart_upload(completed(&small_tags))
        .send()
        .await;
    let e = too_small.expect_err("Complete with a 1 MiB non-last part");
    assert_eq!(sdk_error_status(&e), Some(400), "{}", show(&e));
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("EntityTooSmall"),
        "{}",
        show(&e)
    );
    assert!(!object_exists(&c, bucket, "big/small-parts").await);
    c.abort_multipart_upload()
        .bucket(bucket)
        .key("big/small-parts")
        .upload_id(&small_id)
        .send()
        .await
        .expect("Abort");
}

// ---------------------------------------------------------------------------
// 3. Range and conditional reads
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_return_206_with_content_range_across_chunk_boundaries() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let addr = server.s3_addr();
    let bucket = "range-bucket";
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("range"));
    // 5 MiB: several chunks (default chunks are at most 1 MiB).
    let data = rng.bytes(5 * MIB + 12345);
    let len = data.len();
    put_bytes(&c, bucket, "obj", &data).await;
    put_bytes(&c, bucket, "empty", b"").await;

    let get_range = |key: &'static str, range: String| async move {
        RawRequest::new("GET", &format!("/{bucket}/{key}"))
            .header("range", &range)
            .sign(addr, Payload::Signed)
            .send(addr)
            .await
    };
    let cases: Vec<(String, usize, usize)> = vec![
        ("bytes=0-0".into(), 0, 0),
        // ~2.4 MB from the middle: crosses at least two chunk boundaries.
        ("bytes=1000001-3456789".into(), 1_000_001, 3_456_789),
        (format!("bytes=-{}", 777_777), len - 777_777, len - 1),
        ("bytes=4000000-".into(), 4_000_000, len - 1),
        // An end past the object is clamped.
        (
            format!("bytes={}-{}", len - 10, len + 1_000_000),
            len - 10,
            len - 1,
        ),
        (format!("bytes={}-{}", len - 1, len - 1), len - 1, len - 1),
        // Suffix longer than the object: the whole object.
        (format!("bytes=-{}", len + 5), 0, len - 1),
    ];
    for (range, a, b) in cases {
        let r = get_range("obj", range.clone()).await;
        assert_eq!(r.status, 206, "{range}: {}", r.text());
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((b - a + 1).to_string().as_str()),
            "{range}"
        );
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{range}");
        assert!(r.body[..] == data[a..=b], "{range}: wrong bytes");
        assert!(r.header("x-amz-request-id").is_some());
    }

    // The SDK sees the same.
    let out = c
        .get_object()
        .bucket(bucket)
        .key("obj")
        .range("bytes=2097100-2097199")
        .send()
        .await
        .expect("SDK ranged GET");
    assert_eq!(
        out.content_range(),
        Some(format!("bytes 2097100-2097199/{len}").as_str())
    );
    let b = out.body.collect().await.unwrap().into_bytes();
    assert!(b[..] == data[2_097_100..2_097_200]);

    // Unsatisfiable ranges.
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 100, len + 200),
    ] {
        let r = get_range("obj", range.clone()).await;
        r.assert_s3_error(416, "InvalidRange", &range);
    }
    // Any range of an empty object is unsatisfiable.
    let r = get_range("empty", "bytes=0-0".into()).await;
    r.assert_s3_error(416, "InvalidRange", "bytes=0-0 of an empty object");
    // Without a range the empty object is a plain 200 with no body.
    let r = RawRequest::new("GET", &format!("/{bucket}/empty"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(b"")).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_gets_honour_if_match_and_if_none_match() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let addr = server.s3_addr();
    let bucket = "cond-bucket";
    create_bucket(&c, bucket).await;
    let etag = put_bytes(&c, bucket, "k", b"conditional body").await;
    let get = |h: &'static str, v: String| async move {
        RawRequest::new("GET", &format!("/{bucket}/k"))
            .header(h, &v)
            .sign(addr, Payload::Signed)
            .send(addr)
            .await
    };
    let r = get("if-match", etag.clone()).await;
    assert_eq!(r.status, 200, "If-Match with the ETag: {}", r.text());
    assert_eq!(&r.body[..], b"conditional body");
    let r = get("if-match", "\"0123456789abcdef0123456789abcdef\"".into()).await;
    r.assert_s3_error(412, "PreconditionFailed", "If-Match with another ETag");
    let r = get("if-none-match", etag.clone()).await;
    assert_eq!(r.status, 304, "If-None-Match with the ETag: {}", r.text());
    assert!(r.body.is_empty(), "304 has no body");
    let r = get(
        "if-none-match",
        "\"0123456789abcdef0123456789abcdef\"".into(),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(
        "if-unmodified-since",
        "Mon, 01 Jan 2001 00:00:00 GMT".into(),
    )
    .await;
    r.assert_s3_error(412, "PreconditionFailed", "If-Unmodified-Since long ago");
    let r = get("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT".into()).await;
    assert_eq!(r.status, 200, "If-Modified-Since long ago");
    let plain = RawRequest::new("GET", &format!("/{bucket}/k"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    let last_modified = plain
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();
    let r = get("if-modified-since", last_modified).await;
    assert_eq!(r.status, 304, "If-Modified-Since its own Last-Modified");
}

// ---------------------------------------------------------------------------
// 4. Listings
// ---------------------------------------------------------------------------

fn listing_keys() -> Vec<String> {
    let mut keys = Vec::new();
    let dirs = ["alpha", "beta gamma", "plus+dir", "ünïcødé", "amp&lt<dir"];
    for d in dirs {
        for sub in 0..5 {
            for f in 0..9 {
                keys.push(format!("{d}/{sub}/file-{f}.txt"));
            }
        }
    }
    for k in [
        "a/b/c",
        "a/b/c/d",
        "a/b/c/d/e",
        "a/b/e f",
        "a/b+/g",
        "a/b/",
        "a/x&y<z>",
        "top-1",
        "top 2.txt",
        "top+3",
        "tóp&<4",
        "zzz/last",
        "日本/語/ファイル",
        "日本/名前",
        "space /x",
        "!bang",
        "~tilde",
        "percent%20literal",
        "quote\"and'apos",
        "semi;colon=eq?q",
    ] {
        keys.push(k.to_owned());
    }
    keys
}

/// (contents, common prefixes) as S3 lists them for prefix/delimiter.
fn expected_listing(
    keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut contents = Vec::new();
    let mut prefixes = BTreeSet::new();
    for k in keys.iter().filter(|k| k.starts_with(prefix)) {
        let rest = &k[prefix.len()..];
        match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
            Some((i, d)) => {
                prefixes.insert(format!("{prefix}{}", &rest[..i + d.len()]));
            }
            None => contents.push(k.clone()),
        }
    }
    (contents, prefixes.into_iter().collect())
}

/// application/x-www-form-urlencoded decoding, as clients decode
/// `encoding-type=url` listings ('+' is a space).
fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .expect("decoded key is UTF-8")
        .into_owned()
}

fn assert_strictly_increasing(v: &[String], what: &str) {
    for w in v.windows(2) {
        assert!(
            w[0] < w[1],
            "{what}: not in order / duplicated: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

async fn list_v2_all(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: i32,
    url: bool,
) -> (Vec<String>, Vec<String>, usize) {
    let (mut contents, mut prefixes, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut token: Option<String> = None;
    let dec = |s: &str| if url { url_decode(s) } else { s.to_owned() };
    loop {
        let mut req = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(max_keys)
            .set_delimiter(delimiter.map(str::to_owned))
            .set_continuation_token(token.clone());
        if url {
            req = req.encoding_type(EncodingType::Url);
        }
        let out = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectsV2 prefix={prefix:?}: {}", show(&e)));
        pages += 1;
        assert!(pages < 1000, "ListObjectsV2 does not terminate");
        let n = out.contents().len() + out.common_prefixes().len();
        assert!(
            n <= max_keys as usize,
            "page has {n} > max-keys {max_keys} entries"
        );
        assert_eq!(out.key_count(), Some(n as i32), "KeyCount");
        assert_eq!(out.max_keys(), Some(max_keys));
        if !prefix.is_empty() {
            assert_eq!(
                out.prefix().map(dec).as_deref(),
                Some(prefix),
                "echoed Prefix"
            );
        }
        assert_eq!(
            out.continuation_token(),
            token.as_deref(),
            "echoed ContinuationToken"
        );
        contents.extend(out.contents().iter().map(|o| dec(o.key().expect("Key"))));
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .map(|p| dec(p.prefix().expect("Prefix"))),
        );
        for o in out.contents() {
            assert!(o.size().is_some() && o.e_tag().is_some() && o.last_modified().is_some());
        }
        if out.is_truncated() == Some(true) {
            assert!(n > 0, "a truncated page must not be empty");
            token = Some(
                out.next_continuation_token()
                    .expect("NextContinuationToken")
                    .to_owned(),
            );
        } else {
            assert!(
                out.next_continuation_token().is_none(),
                "NextContinuationToken on the last page"
            );
            break;
        }
    }
    (contents, prefixes, pages)
}

async fn list_v1_all(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: i32,
) -> (Vec<String>, Vec<String>) {
    let (mut contents, mut prefixes) = (Vec::new(), Vec::new());
    let mut marker: Option<String> = None;
    for _ in 0..1000 {
        let out = c
            .list_objects()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(max_keys)
            .set_delimiter(delimiter.map(str::to_owned))
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjects prefix={prefix:?}: {}", show(&e)));
        let n = out.contents().len() + out.common_prefixes().len();
        assert!(n <= max_keys as usize);
        assert_eq!(
            out.marker().unwrap_or(""),
            marker.as_deref().unwrap_or(""),
            "echoed Marker"
        );
        contents.extend(out.contents().iter().map(|o| o.key().unwrap().to_owned()));
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_owned()),
        );
        if out.is_truncated() != Some(true) {
            return (contents, prefixes);
        }
        marker = Some(match delimiter {
            // With a delimiter S3 always returns NextMarker on a truncated page.
            Some(_) => out
                .next_marker()
                .expect("NextMarker with a delimiter")
                .to_owned(),
            None => out
                .next_marker()
                .map(str::to_owned)
                .unwrap_or_else(|| out.contents().last().unwrap().key().unwrap().to_owned()),
        });
    }
    panic!("ListObjects does not terminate");
}

/// A server whose `listing-bucket` holds every key of [`listing_keys`]
/// (uploaded with 8 requests in flight), and a key in another bucket that
/// must never show up; returns the keys in S3's order.
async fn listing_server() -> (TestServer, aws_sdk_s3::Client, BTreeSet<String>) {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = LISTING_BUCKET;
    create_bucket(&c, bucket).await;
    let all = listing_keys();
    assert!(all.len() >= 240, "{}", all.len());
    let keys: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(keys.len(), all.len());

    let mut set = tokio::task::JoinSet::new();
    for (i, k) in all.iter().enumerate() {
        let c = c.clone();
        let k = k.clone();
        set.spawn(
            async move { put_bytes(&c, bucket, &k, format!("body of {k}").as_bytes()).await },
        );
        if i % 8 == 7 {
            while set.join_next().await.is_some() {}
        }
    }
    while let Some(r) = set.join_next().await {
        r.expect("put task");
    }
    create_bucket(&c, "listing-other").await;
    put_bytes(&c, "listing-other", "alpha/intruder", b"x").await;
    (server, c, keys)
}

const LISTING_BUCKET: &str = "listing-bucket";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_without_a_delimiter_page_through_every_key_in_order_in_v2_and_v1() {
    let (_server, c, keys) = listing_server().await;
    let bucket = LISTING_BUCKET;
    // Everything, no delimiter: ~37 pages of 7.
    let (contents, prefixes, pages) = list_v2_all(&c, bucket, "", None, 7, false).await;
    assert!(prefixes.is_empty());
    assert_strictly_increasing(&contents, "V2 all");
    assert_eq!(
        contents,
        keys.iter().cloned().collect::<Vec<_>>(),
        "V2 all keys"
    );
    assert_eq!(pages, keys.len().div_ceil(7));

    // V1 without a delimiter follows the last key.
    let (got_c, _) = list_v1_all(&c, bucket, "", None, 7).await;
    assert_eq!(
        got_c,
        keys.iter().cloned().collect::<Vec<_>>(),
        "V1 all keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_group_common_prefixes_under_a_prefix_and_delimiter_in_v2_and_v1() {
    let (_server, c, keys) = listing_server().await;
    let bucket = LISTING_BUCKET;
    // Root with delimiter '/', and several prefixes, V2 and V1.
    let cases: [(&str, Option<&str>); 9] = [
        ("", Some("/")),
        ("beta gamma/", Some("/")),
        ("plus+dir/3/", None),
        ("ünïcødé/", Some("/")),
        ("amp&lt<dir/1/", Some("/")),
        ("a/", Some("/")),
        ("a/b/", Some("/")),
        ("top", Some("/")),
        ("日本/", Some("/")),
    ];
    for (prefix, delim) in cases {
        let (want_c, want_p) = expected_listing(&keys, prefix, delim);
        assert!(
            !want_c.is_empty() || !want_p.is_empty(),
            "bad case {prefix:?}"
        );
        let (got_c, got_p, _) = list_v2_all(&c, bucket, prefix, delim, 7, false).await;
        assert_strictly_increasing(&got_c, "V2 contents");
        assert_strictly_increasing(&got_p, "V2 prefixes");
        assert_eq!(
            got_c, want_c,
            "V2 contents prefix={prefix:?} delimiter={delim:?}"
        );
        assert_eq!(
            got_p, want_p,
            "V2 common prefixes prefix={prefix:?} delimiter={delim:?}"
        );

        let (got_c, got_p) = list_v1_all(&c, bucket, prefix, delim, 7).await;
        assert_strictly_increasing(&got_c, "V1 contents");
        assert_strictly_increasing(&got_p, "V1 prefixes");
        assert_eq!(
            got_c, want_c,
            "V1 contents prefix={prefix:?} delimiter={delim:?}"
        );
        assert_eq!(
            got_p, want_p,
            "V1 common prefixes prefix={prefix:?} delimiter={delim:?}"
        );
    }
    // The root listing is what we think it is.
    let (root_c, root_p) = expected_listing(&keys, "", Some("/"));
    assert!(root_p.contains(&"amp&lt<dir/".to_owned()) && root_p.contains(&"a/".to_owned()));
    assert!(root_c.contains(&"top 2.txt".to_owned()) && root_c.contains(&"tóp&<4".to_owned()));

    // A prefix matching nothing.
    let (got_c, got_p, _) = list_v2_all(&c, bucket, "nothing-here/", Some("/"), 7, false).await;
    assert!(got_c.is_empty() && got_p.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_objects_v2_start_after_lists_only_the_later_keys() {
    let (_server, c, keys) = listing_server().await;
    let after = "beta gamma/2/file-4.txt";
    let out = c
        .list_objects_v2()
        .bucket(LISTING_BUCKET)
        .start_after(after)
        .max_keys(1000)
        .send()
        .await
        .expect("ListObjectsV2 start-after");
    let got: Vec<String> = out
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect();
    let want: Vec<String> = keys
        .iter()
        .filter(|k| k.as_str() > after)
        .cloned()
        .collect();
    assert_eq!(got, want, "start-after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_objects_v2_with_encoding_type_url_encodes_every_key_and_prefix_reversibly() {
    let (_server, c, keys) = listing_server().await;
    let bucket = LISTING_BUCKET;
    // encoding-type=url: every key and prefix comes back encoded and
    // decodes to the original.
    for (prefix, delim) in [
        ("", None),
        ("", Some("/")),
        ("plus+dir/", Some("/")),
        ("a/", Some("/")),
    ] {
        let (want_c, want_p) = expected_listing(&keys, prefix, delim);
        let (got_c, got_p, _) = list_v2_all(&c, bucket, prefix, delim, 7, true).await;
        assert_eq!(got_c, want_c, "url-encoded contents prefix={prefix:?}");
        assert_eq!(got_p, want_p, "url-encoded prefixes prefix={prefix:?}");
    }
    // The raw encoded form carries no character that needs encoding.
    let out = c
        .list_objects_v2()
        .bucket(bucket)
        .encoding_type(EncodingType::Url)
        .max_keys(1000)
        .send()
        .await
        .expect("ListObjectsV2 encoding-type=url");
    assert_eq!(out.encoding_type(), Some(&EncodingType::Url));
    for o in out.contents() {
        let raw = o.key().unwrap();
        assert!(
            raw.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.~/%+*".contains(ch)),
            "key not URL-encoded: {raw:?}"
        );
    }
}
