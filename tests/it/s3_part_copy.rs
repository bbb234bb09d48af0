//! End-to-end tests of UploadPartCopy through `aws-sdk-s3` against a real
//! `cairn` process: whole-object and ranged copies (ranges starting and
//! ending inside chunks), inline and multipart sources, the
//! `x-amz-copy-source-if-*` conditions and range errors. The server's
//! pipeline counters prove that chunks wholly inside a copied range are
//! referenced, not stored again. Also GetObjectAttributes, on single-PUT
//! and (copied) multipart objects.

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;

async fn create_upload(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    c.create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned()
}

/// UploadPartCopy of `src` (`range` = inclusive `first-last`, or the whole
/// object); returns the part's ETag after checking it is the MD5 of `want`.
#[allow(clippy::too_many_arguments)]
async fn copy_part(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    id: &str,
    n: i32,
    src: &str,
    range: Option<(usize, usize)>,
    want: &[u8],
) -> String {
    let out = c
        .upload_part_copy()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .copy_source(format!("{bucket}/{src}"))
        .set_copy_source_range(range.map(|(a, b)| format!("bytes={a}-{b}")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPartCopy {n} of {src} {range:?}: {}", show(&e)));
    let result = out.copy_part_result().expect("CopyPartResult");
    assert!(result.last_modified().is_some(), "LastModified");
    let etag = result.e_tag().unwrap().to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", md5_hex(want)),
        "part {n} ETag = MD5"
    );
    etag
}

async fn complete(c: &aws_sdk_s3::Client, bucket: &str, key: &str, id: &str, etags: &[String]) {
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(completed(etags))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Complete {key}: {}", show(&e)));
}

/// A server collecting garbage at once (grace 0, no background runs) with
/// bucket `part-copy` holding `src`: 12 MiB of random data, about 40 chunks
/// of 64 KiB – 1 MiB.
struct ChunkedSource {
    server: TestServer,
    c: aws_sdk_s3::Client,
    rng: Rng,
    src: Vec<u8>,
    /// The chunks `src` was stored in.
    src_chunks: f64,
}

const PART_COPY_BUCKET: &str = "part-copy";

async fn chunked_source() -> ChunkedSource {
    let server = TestServer::start_with_args(&["--gc-grace-secs", "0", "--gc-interval-secs", "0"]);
    let c = sdk_client(&server);
    create_bucket(&c, PART_COPY_BUCKET).await;
    let mut rng = Rng::new(test_seed("upload_part_copy_references_whole_chunks"));
    let src = rng.bytes(12 * MIB);
    let chunks0 = server.metric("cairn_pipeline_chunks_stored_total");
    put_bytes(&c, PART_COPY_BUCKET, "src", &src).await;
    let src_chunks = server.metric("cairn_pipeline_chunks_stored_total") - chunks0;
    assert!(src_chunks >= 12.0, "source stored in {src_chunks} chunks");
    ChunkedSource {
        server,
        c,
        rng,
        src,
        src_chunks,
    }
}

/// The pipeline's stored chunks and bytes so far.
fn stored(server: &TestServer) -> (f64, f64) {
    (
        server.metric("cairn_pipeline_chunks_stored_total"),
        server.metric("cairn_pipeline_stored_bytes_total"),
    )
}

/// Whole-object copy of `src` to `whole`: every chunk referenced, nothing
/// stored.
async fn copy_whole(s: &ChunkedSource) {
    let (c, bucket) = (&s.c, PART_COPY_BUCKET);
    let (chunks1, bytes1) = stored(&s.server);
    let id = create_upload(c, bucket, "whole").await;
    let e1 = copy_part(c, bucket, "whole", &id, 1, "src", None, &s.src).await;
    assert_eq!(
        s.server.metric("cairn_pipeline_chunks_stored_total"),
        chunks1,
        "a whole-object copy stores no chunk"
    );
    assert_eq!(
        s.server.metric("cairn_pipeline_stored_bytes_total"),
        bytes1,
        "a whole-object copy stores no byte"
    );
    complete(c, bucket, "whole", &id, &[e1]).await;
    assert!(
        get_bytes(c, bucket, "whole").await == s.src,
        "whole copy bytes"
    );
}

/// `ranged`: two ranges of `src` starting and ending inside chunks (odd
/// offsets), plus an uploaded last part; only the four edge chunks' slices
/// are stored. Returns the object's bytes.
async fn copy_ranges(s: &mut ChunkedSource) -> Vec<u8> {
    let (c, bucket, src) = (&s.c, PART_COPY_BUCKET, &s.src);
    let (chunks2, bytes2) = stored(&s.server);
    let r1 = (1_001, 6 * MIB + 12_345);
    let r2 = (6 * MIB + 12_346, 12 * MIB - 778);
    let id = create_upload(c, bucket, "ranged").await;
    let p1 = copy_part(
        c,
        bucket,
        "ranged",
        &id,
        1,
        "src",
        Some(r1),
        &src[r1.0..=r1.1],
    )
    .await;
    let p2 = copy_part(
        c,
        bucket,
        "ranged",
        &id,
        2,
        "src",
        Some(r2),
        &src[r2.0..=r2.1],
    )
    .await;
    let stored_chunks = s.server.metric("cairn_pipeline_chunks_stored_total") - chunks2;
    let stored_bytes = s.server.metric("cairn_pipeline_stored_bytes_total") - bytes2;
    // Each of the 4 edges is a slice of one chunk (< 1 MiB): at most 4 MiB
    // (plus AEAD overhead) may be stored; the ~10 MiB of whole chunks not.
    assert!(stored_chunks >= 1.0, "edges are rewritten");
    assert!(
        stored_bytes <= (4 * MIB + 64 * KIB) as f64,
        "only edge slices stored: {stored_bytes} bytes in {stored_chunks} chunks"
    );
    assert!(
        stored_chunks < s.src_chunks / 2.0,
        "{stored_chunks} chunks stored for a copy of {}",
        s.src_chunks
    );
    let tail = s.rng.bytes(1234);
    let p3 = c
        .upload_part()
        .bucket(bucket)
        .key("ranged")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from(tail.clone()))
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    let parts = c
        .list_parts()
        .bucket(bucket)
        .key("ranged")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let sizes: Vec<i64> = parts.parts().iter().map(|p| p.size().unwrap()).collect();
    assert_eq!(
        sizes,
        vec![(r1.1 - r1.0 + 1) as i64, (r2.1 - r2.0 + 1) as i64, 1234]
    );
    complete(c, bucket, "ranged", &id, &[p1, p2, p3]).await;
    let mut want = src[r1.0..=r1.1].to_vec();
    want.extend_from_slice(&src[r2.0..=r2.1]);
    want.extend_from_slice(&tail);
    assert!(
        get_bytes(c, bucket, "ranged").await == want,
        "ranged copy bytes"
    );
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_of_a_whole_object_references_every_chunk_and_stores_nothing() {
    let s = chunked_source().await;
    copy_whole(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_of_ranges_inside_chunks_rewrites_only_the_edge_slices() {
    let mut s = chunked_source().await;
    copy_ranges(&mut s).await;
}

/// The source and the whole copy can go: the ranged copy holds its own
/// references. Collection (grace 0) deletes the source's chunks nothing
/// else names (its 3 edge chunks: the ranges meet inside one), and the
/// ranged copy still reads back intact. With every object gone, collection
/// deletes every chunk ever stored (none leaked by a pin or a missing
/// release).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copies_hold_their_own_chunk_references_through_gc() {
    let mut s = chunked_source().await;
    copy_whole(&s).await;
    let want = copy_ranges(&mut s).await;
    let (server, c, bucket) = (&s.server, &s.c, PART_COPY_BUCKET);
    for key in ["src", "whole"] {
        c.delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    let (code, body) = admin_post(server, "/admin/gc").await;
    assert_eq!(code, 200, "POST /admin/gc: {body}");
    let deleted = server.metric("cairn_gc_chunks_deleted_total");
    assert!(
        deleted >= 3.0 && deleted < s.src_chunks,
        "{deleted} chunks collected of {}: {body}",
        s.src_chunks
    );
    assert!(
        get_bytes(c, bucket, "ranged").await == want,
        "ranged copy after GC"
    );
    // Reference counts balance.
    c.delete_object()
        .bucket(bucket)
        .key("ranged")
        .send()
        .await
        .unwrap();
    let (code, body) = admin_post(server, "/admin/gc").await;
    assert_eq!(code, 200, "POST /admin/gc: {body}");
    assert_eq!(
        server.metric("cairn_gc_chunks_deleted_total"),
        server.metric("cairn_pipeline_chunks_stored_total"),
        "every stored chunk collected: {body}"
    );
}

/// `POST path` on the admin listener (no body).
/// A signed POST to the admin API (it requires SigV4 like S3).
async fn admin_post(server: &TestServer, path: &str) -> (u16, String) {
    let addr = server.admin_addr();
    let resp = RawRequest::new("POST", path)
        .sign(addr, Payload::Unsigned)
        .send(addr)
        .await;
    (resp.status, resp.text())
}

/// A server with bucket `part-copy-2` holding `small` (3000 bytes, stored
/// inline in its record: no chunks) and `mp-src` (a multipart object of a
/// 5 MiB and a 2 MiB part), and an upload to `dst` to copy parts into.
struct CopySources {
    _server: TestServer,
    c: aws_sdk_s3::Client,
    small: Vec<u8>,
    small_etag: String,
    big1: Vec<u8>,
    big2: Vec<u8>,
    /// The upload to `dst`.
    id: String,
}

const PART_COPY_2: &str = "part-copy-2";

impl CopySources {
    /// `mp-src`'s bytes.
    fn mp_src(&self) -> Vec<u8> {
        let mut mp_src = self.big1.clone();
        mp_src.extend_from_slice(&self.big2);
        mp_src
    }

    /// An UploadPartCopy of part 1 of `dst` from `source`.
    fn copy_to_dst(
        &self,
        source: &str,
    ) -> aws_sdk_s3::operation::upload_part_copy::builders::UploadPartCopyFluentBuilder {
        self.c
            .upload_part_copy()
            .bucket(PART_COPY_2)
            .key("dst")
            .upload_id(&self.id)
            .part_number(1)
            .copy_source(format!("{PART_COPY_2}/{source}"))
    }

    async fn assert_dst_has_no_part(&self) {
        assert!(
            self.c
                .list_parts()
                .bucket(PART_COPY_2)
                .key("dst")
                .upload_id(&self.id)
                .send()
                .await
                .unwrap()
                .parts()
                .is_empty(),
            "failed copies store no part"
        );
    }
}

async fn copy_sources() -> CopySources {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = PART_COPY_2;
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("upload_part_copy_from_inline_and_multipart"));
    let small = rng.bytes(3000);
    let small_etag = put_bytes(&c, bucket, "small", &small).await;
    let big1 = rng.bytes(5 * MIB);
    let big2 = rng.bytes(2 * MIB + 3);
    let id = create_upload(&c, bucket, "mp-src").await;
    let mut etags = Vec::new();
    for (n, body) in [(1, &big1), (2, &big2)] {
        etags.push(
            c.upload_part()
                .bucket(bucket)
                .key("mp-src")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .unwrap()
                .e_tag()
                .unwrap()
                .to_owned(),
        );
    }
    complete(&c, bucket, "mp-src", &id, &etags).await;
    let id = create_upload(&c, bucket, "dst").await;
    CopySources {
        _server: server,
        c,
        small,
        small_etag,
        big1,
        big2,
        id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_with_a_failing_source_condition_is_412_and_stores_no_part() {
    let s = copy_sources().await;
    let failed = s
        .copy_to_dst("small")
        .copy_source_if_match("\"00000000000000000000000000000000\"")
        .send()
        .await;
    let e = failed.expect_err("a failing x-amz-copy-source-if-match");
    assert_eq!(sdk_error_status(&e), Some(412), "{}", show(&e));
    assert_eq!(sdk_error_code(&e).as_deref(), Some("PreconditionFailed"));
    let failed = s
        .copy_to_dst("small")
        .copy_source_if_none_match(&s.small_etag)
        .send()
        .await;
    let e = failed.expect_err("a failing x-amz-copy-source-if-none-match");
    assert_eq!(sdk_error_status(&e), Some(412), "{}", show(&e));
    s.assert_dst_has_no_part().await;
}

/// Ranges beyond the source, as S3 answers them today: one that starts past
/// the end is InvalidRequest; one that only ends past it, and a malformed
/// one (reversed, open-ended), InvalidArgument.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_ranges_beyond_the_source_or_malformed_are_refused_as_s3_does() {
    let s = copy_sources().await;
    let e = s
        .copy_to_dst("small")
        .copy_source_range("bytes=5000-6000")
        .send()
        .await
        .expect_err("a range starting beyond the source");
    assert_eq!(sdk_error_status(&e), Some(400), "{}", show(&e));
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidRequest"));
    for bad in ["bytes=0-3000", "bytes=10-5", "bytes=5-"] {
        let e = s
            .copy_to_dst("small")
            .copy_source_range(bad)
            .send()
            .await
            .expect_err(bad);
        assert_eq!(sdk_error_status(&e), Some(400), "{bad}: {}", show(&e));
        assert_eq!(
            sdk_error_code(&e).as_deref(),
            Some("InvalidArgument"),
            "{bad}"
        );
    }
    s.assert_dst_has_no_part().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_of_a_missing_source_is_no_such_key_and_stores_no_part() {
    let s = copy_sources().await;
    let e = s
        .copy_to_dst("nope")
        .send()
        .await
        .expect_err("missing source");
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchKey"),
        "{}",
        show(&e)
    );
    s.assert_dst_has_no_part().await;
}

/// Part 1: a ~6 MiB range crossing the source's part boundary at 5 MiB,
/// with a matching condition; part 2: a range of the inline object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_of_ranges_of_multipart_and_inline_sources_reads_back() {
    let s = copy_sources().await;
    let (c, bucket, id) = (&s.c, PART_COPY_2, &s.id);
    let mp_src = s.mp_src();
    let r1 = (MIB + 7, 7 * MIB + 1);
    let ok = s
        .copy_to_dst("mp-src")
        .copy_source_range(format!("bytes={}-{}", r1.0, r1.1))
        .copy_source_if_match(multipart_etag(&[md5_raw(&s.big1), md5_raw(&s.big2)]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy of a multipart range: {}", show(&e)));
    let p1 = ok.copy_part_result().unwrap().e_tag().unwrap().to_owned();
    assert_eq!(p1, format!("\"{}\"", md5_hex(&mp_src[r1.0..=r1.1])));
    let p2 = copy_part(
        c,
        bucket,
        "dst",
        id,
        2,
        "small",
        Some((7, 2999)),
        &s.small[7..],
    )
    .await;
    complete(c, bucket, "dst", id, &[p1, p2]).await;
    let mut want = mp_src[r1.0..=r1.1].to_vec();
    want.extend_from_slice(&s.small[7..]);
    assert!(get_bytes(c, bucket, "dst").await == want, "copied bytes");
}

/// The whole inline object as a (last) part, replacing an earlier part 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_of_a_whole_inline_object_replaces_an_earlier_part() {
    let s = copy_sources().await;
    let (c, bucket) = (&s.c, PART_COPY_2);
    let mp_src = s.mp_src();
    let id = create_upload(c, bucket, "dst2").await;
    copy_part(
        c,
        bucket,
        "dst2",
        &id,
        1,
        "mp-src",
        Some((0, 99)),
        &mp_src[..100],
    )
    .await;
    let p = copy_part(c, bucket, "dst2", &id, 1, "small", None, &s.small).await;
    complete(c, bucket, "dst2", &id, &[p]).await;
    assert_eq!(get_bytes(c, bucket, "dst2").await, s.small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_object_attributes_reports_etag_checksum_parts_class_and_size() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectAttributes};
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "attributes";
    create_bucket(&c, bucket).await;
    let mut rng = Rng::new(test_seed("get_object_attributes"));

    // A single PUT with a CRC32 checksum.
    let body = rng.bytes(100_000);
    c.put_object()
        .bucket(bucket)
        .key("single")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let all = [
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ];
    let out = c
        .get_object_attributes()
        .bucket(bucket)
        .key("single")
        .set_object_attributes(Some(all.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectAttributes single: {}", show(&e)));
    assert_eq!(out.e_tag(), Some(md5_hex(&body).as_str()));
    assert_eq!(out.object_size(), Some(100_000));
    assert_eq!(out.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    assert_eq!(
        out.checksum().and_then(|c| c.checksum_crc32()),
        Some(crc32_b64(&body).as_str())
    );
    assert!(out.object_parts().is_none(), "a single PUT has no parts");
    assert!(out.last_modified().is_some());

    // A multipart object of three parts (two copied), paged two at a time.
    let id = create_upload(&c, bucket, "multi").await;
    let big = rng.bytes(5 * MIB);
    put_bytes(&c, bucket, "big", &big).await;
    let e1 = copy_part(&c, bucket, "multi", &id, 1, "big", None, &big).await;
    let e2 = copy_part(&c, bucket, "multi", &id, 2, "big", None, &big).await;
    let e3 = copy_part(
        &c,
        bucket,
        "multi",
        &id,
        3,
        "single",
        Some((0, 999)),
        &body[..1000],
    )
    .await;
    complete(&c, bucket, "multi", &id, &[e1, e2, e3]).await;
    let page = |marker: Option<&str>| {
        c.get_object_attributes()
            .bucket(bucket)
            .key("multi")
            .object_attributes(ObjectAttributes::ObjectParts)
            .object_attributes(ObjectAttributes::ObjectSize)
            .max_parts(2)
            .set_part_number_marker(marker.map(str::to_owned))
            .send()
    };
    let p1 = page(None)
        .await
        .unwrap_or_else(|e| panic!("page 1: {}", show(&e)));
    assert_eq!(p1.object_size(), Some((10 * MIB + 1000) as i64));
    assert!(p1.e_tag().is_none(), "only the attributes asked for");
    let parts = p1.object_parts().unwrap();
    assert_eq!(parts.total_parts_count(), Some(3));
    assert_eq!(parts.is_truncated(), Some(true));
    let sizes: Vec<(i32, i64)> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
        .collect();
    assert_eq!(sizes, vec![(1, 5 * MIB as i64), (2, 5 * MIB as i64)]);
    let next = parts.next_part_number_marker().unwrap().to_owned();
    let p2 = page(Some(&next)).await.unwrap();
    let parts = p2.object_parts().unwrap();
    assert_eq!(parts.is_truncated(), Some(false));
    let sizes: Vec<(i32, i64)> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
        .collect();
    assert_eq!(sizes, vec![(3, 1000)]);

    // Errors: no attribute asked for, a missing key.
    let e = c
        .get_object_attributes()
        .bucket(bucket)
        .key("single")
        .set_object_attributes(Some(Vec::new()))
        .send()
        .await
        .expect_err("no attributes");
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("InvalidArgument"),
        "{}",
        show(&e)
    );
    let e = c
        .get_object_attributes()
        .bucket(bucket)
        .key("nope")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .expect_err("missing key");
    assert_eq!(sdk_error_status(&e), Some(404), "{}", show(&e));
}
