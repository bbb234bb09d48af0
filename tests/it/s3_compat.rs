//! End-to-end tests of the wider S3 surface through `aws-sdk-s3` against a
//! real `cairn` process: ListObjectVersions (every object is the one
//! version `null`), ListBuckets pagination, CopyObject directives and
//! `x-amz-copy-source-if-*` conditions, the object tagging API and the
//! `x-amz-tagging` header, virtual-hosted-style addressing, bucket tagging,
//! ACLs, and protocol details as S3 has them.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, EncodingType, MetadataDirective, Tag, Tagging,
    TaggingDirective,
};

pub(crate) fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

pub(crate) fn tagging(tags: Vec<Tag>) -> Tagging {
    Tagging::builder().set_tag_set(Some(tags)).build().unwrap()
}

async fn tags_of(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    c.get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectTagging {key}: {}", show(&e)))
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn secs_from_now(delta: i64) -> DateTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    DateTime::from_secs(now + delta)
}

fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

// ---------------------------------------------------------------------------
// 1. ListObjectVersions
// ---------------------------------------------------------------------------

/// Pages through ListObjectVersions with the Next*Marker pair; returns the
/// (key, version id) of every version and every common prefix, in order.
async fn list_versions_all(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: i32,
    url: bool,
) -> (Vec<String>, Vec<String>) {
    let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
    let (mut key_marker, mut vid_marker): (Option<String>, Option<String>) = (None, None);
    let dec = |s: &str| if url { url_decode(s) } else { s.to_owned() };
    for page in 0.. {
        assert!(page < 1000, "ListObjectVersions does not terminate");
        let mut req = c
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(max_keys)
            .set_delimiter(delimiter.map(str::to_owned))
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(vid_marker.clone());
        if url {
            req = req.encoding_type(EncodingType::Url);
        }
        let out = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectVersions: {}", show(&e)));
        let n = out.versions().len() + out.common_prefixes().len();
        assert!(n <= max_keys as usize, "page of {n} > max-keys {max_keys}");
        assert_eq!(out.max_keys(), Some(max_keys));
        assert!(out.delete_markers().is_empty(), "no delete markers exist");
        assert_eq!(
            out.key_marker().map(dec),
            key_marker.clone().or(Some(String::new()))
        );
        for v in out.versions() {
            assert_eq!(v.version_id(), Some("null"), "version id of {:?}", v.key());
            assert_eq!(v.is_latest(), Some(true));
            assert!(v.e_tag().is_some_and(|e| e.starts_with('"')));
            assert!(v.last_modified().is_some() && v.size().is_some());
            keys.push(dec(v.key().unwrap()));
        }
        for p in out.common_prefixes() {
            prefixes.push(dec(p.prefix().unwrap()));
        }
        if out.is_truncated() != Some(true) {
            assert!(out.next_key_marker().is_none());
            break;
        }
        assert!(n > 0, "a truncated page returns something");
        key_marker = out.next_key_marker().map(dec);
        assert!(key_marker.is_some(), "truncated page without NextKeyMarker");
        vid_marker = out.next_version_id_marker().map(str::to_owned);
        if let Some(v) = &vid_marker {
            assert_eq!(v, "null");
        }
    }
    (keys, prefixes)
}

/// What a listing must return, computed from the full key set.
fn expected(
    keys: &BTreeSet<String>,
    prefix: &str,
    delim: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let (mut contents, mut prefixes) = (Vec::new(), BTreeSet::new());
    for k in keys.iter().filter(|k| k.starts_with(prefix)) {
        match delim.and_then(|d| k[prefix.len()..].find(d).map(|i| (i, d))) {
            Some((i, d)) => {
                prefixes.insert(k[..prefix.len() + i + d.len()].to_owned());
            }
            None => contents.push(k.clone()),
        }
    }
    (contents, prefixes.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_object_versions_reports_null_versions_with_prefixes_markers_and_url_encoding() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let bucket = "versions-bucket";
    create_bucket(&c, bucket).await;
    let keys: BTreeSet<String> = [
        "a/1",
        "a/2",
        "a/b/3",
        "a/b/4",
        "b",
        "c d+e&f",
        "dir/x/y/z",
        "dir/x2",
        "é/ü",
        "z",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for k in &keys {
        put_bytes(&c, bucket, k, k.as_bytes()).await;
    }

    for (prefix, delim) in [
        ("", None),
        ("", Some("/")),
        ("a/", Some("/")),
        ("a/", None),
        ("dir/", Some("/")),
        ("nothing", Some("/")),
    ] {
        let want = expected(&keys, prefix, delim);
        for max_keys in [1, 2, 3, 1000] {
            let got = list_versions_all(&c, bucket, prefix, delim, max_keys, false).await;
            assert_eq!(
                got, want,
                "prefix={prefix:?} delim={delim:?} max={max_keys}"
            );
        }
        let got = list_versions_all(&c, bucket, prefix, delim, 2, true).await;
        assert_eq!(got, want, "url-encoded prefix={prefix:?} delim={delim:?}");
    }

    // encoding-type=url really encodes.
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.encoding_type(), Some(&EncodingType::Url));
    let raw: Vec<&str> = out.versions().iter().filter_map(|v| v.key()).collect();
    assert!(raw.contains(&"c%20d%2Be%26f"), "{raw:?}");

    // A key marker alone, and with version-id-marker=null, both start after the key.
    for vid in [None, Some("null")] {
        let out = c
            .list_object_versions()
            .bucket(bucket)
            .key_marker("b")
            .set_version_id_marker(vid.map(str::to_owned))
            .max_keys(1)
            .send()
            .await
            .unwrap();
        let got: Vec<&str> = out.versions().iter().filter_map(|v| v.key()).collect();
        assert_eq!(got, vec!["c d+e&f"], "after b (version-id-marker {vid:?})");
        assert_eq!(out.key_marker(), Some("b"));
        // S3 always sends the (possibly empty) marker elements.
        assert_eq!(out.version_id_marker(), Some(vid.unwrap_or("")));
        assert_eq!(out.next_key_marker(), Some("c d+e&f"));
        assert_eq!(out.next_version_id_marker(), Some("null"));
        assert_eq!(out.is_truncated(), Some(true));
    }

    // Bad markers are InvalidArgument, as in S3.
    let err = c
        .list_object_versions()
        .bucket(bucket)
        .version_id_marker("null")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidArgument"));
    let err = c
        .list_object_versions()
        .bucket(bucket)
        .key_marker("a/1")
        .version_id_marker("3HL4kqtJlcpXroDTDmJ")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidArgument"));
    let err = c
        .list_object_versions()
        .bucket("no-such-versions-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchBucket"));

    // The `null` version id addresses an object written without versioning;
    // any other id never touches it.
    let got = c
        .get_object()
        .bucket(bucket)
        .key("b")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"b"
    );
    // A version id Cairn could never have given: 400 InvalidArgument, as
    // S3 answers a malformed one; nothing is deleted.
    let err = c
        .delete_object()
        .bucket(bucket)
        .key("b")
        .version_id("3HL4kqtJlcpXroDTDmJ")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidArgument"));
    assert!(object_exists(&c, bucket, "b").await);
    // A well-formed id of no version: success (as S3), nothing deleted.
    let unknown = format!("{}{}", "f".repeat(16), "0".repeat(32));
    let out = c
        .delete_object()
        .bucket(bucket)
        .key("b")
        .version_id(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(unknown.as_str()));
    assert!(object_exists(&c, bucket, "b").await);
    c.delete_object()
        .bucket(bucket)
        .key("b")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert!(!object_exists(&c, bucket, "b").await);
}

// ---------------------------------------------------------------------------
// 2. ListBuckets
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_pages_with_prefix_max_buckets_and_continuation_token() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let names = [
        "lb-a-1",
        "lb-a-2",
        "lb-a-3",
        "lb-a-4",
        "lb-a-5",
        "lb-b-1",
        "other-bucket",
    ];
    for n in names {
        create_bucket(&c, n).await;
    }

    // Without parameters: everything, no token, no prefix.
    let all = c.list_buckets().send().await.unwrap();
    let got: Vec<&str> = all.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(got, names.to_vec());
    assert!(all.continuation_token().is_none() && all.prefix().is_none());
    assert!(
        all.buckets()
            .iter()
            .all(|b| b.bucket_region() == Some(REGION))
    );

    // Pages of two under a prefix, following the opaque token.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = c
            .list_buckets()
            .prefix("lb-a-")
            .max_buckets(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListBuckets: {}", show(&e)));
        pages += 1;
        assert!(pages < 10);
        assert_eq!(out.prefix(), Some("lb-a-"), "Prefix echoed");
        assert!(out.buckets().len() <= 2);
        seen.extend(out.buckets().iter().map(|b| b.name().unwrap().to_owned()));
        match out.continuation_token() {
            Some(t) => {
                assert!(!t.starts_with("lb-"), "token should be opaque: {t}");
                token = Some(t.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen, ["lb-a-1", "lb-a-2", "lb-a-3", "lb-a-4", "lb-a-5"]);
    assert_eq!(pages, 3);

    // The SDK's paginator agrees.
    let mut paged = Vec::new();
    let mut stream = c.list_buckets().max_buckets(3).into_paginator().send();
    while let Some(page) = stream.next().await {
        let page = page.unwrap();
        paged.extend(page.buckets().iter().map(|b| b.name().unwrap().to_owned()));
    }
    assert_eq!(paged, names.to_vec());

    // Another region has none of our buckets.
    let out = c
        .list_buckets()
        .bucket_region("eu-west-3")
        .send()
        .await
        .unwrap();
    assert!(out.buckets().is_empty());

    for bad in [0, 10_001] {
        let err = c.list_buckets().max_buckets(bad).send().await.unwrap_err();
        assert_eq!(
            sdk_error_code(&err).as_deref(),
            Some("InvalidArgument"),
            "{bad}"
        );
    }
    let err = c
        .list_buckets()
        .continuation_token("!!not a token!!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidArgument"));
}

// ---------------------------------------------------------------------------
// 3. CopyObject
// ---------------------------------------------------------------------------

/// A server with `copy-bucket/src`: a body, Content-Type, Cache-Control,
/// one `x-amz-meta-*` and two tags. Returns the body and its ETag.
async fn copy_source_server() -> (TestServer, aws_sdk_s3::Client, Vec<u8>, String) {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, COPY_BUCKET).await;
    let body = Rng::new(test_seed("copy")).bytes(200 * KIB + 3);
    let put = c
        .put_object()
        .bucket(COPY_BUCKET)
        .key("src")
        .content_type("text/plain")
        .cache_control("max-age=60")
        .metadata("colour", "blue")
        .tagging("team=storage&tier=gold")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    (server, c, body, etag)
}

const COPY_BUCKET: &str = "copy-bucket";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_by_default_copies_data_headers_metadata_and_tags() {
    let (_server, c, body, etag) = copy_source_server().await;
    let bucket = COPY_BUCKET;
    // COPY (default): data, metadata and tags come from the source.
    c.copy_object()
        .bucket(bucket)
        .key("copied")
        .copy_source(format!("{bucket}/src"))
        .send()
        .await
        .unwrap();
    let got = c
        .get_object()
        .bucket(bucket)
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(
        got.metadata().unwrap().get("colour").map(String::as_str),
        Some("blue")
    );
    assert_eq!(got.tag_count(), Some(2));
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_with_metadata_directive_replace_takes_headers_from_the_request_and_copies_tags()
 {
    let (_server, c, _, _) = copy_source_server().await;
    let bucket = COPY_BUCKET;
    // REPLACE: headers and user metadata from the request; tags still copied.
    c.copy_object()
        .bucket(bucket)
        .key("replaced")
        .copy_source(format!("{bucket}/src"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/json")
        .metadata("shape", "round")
        .tagging("ignored=yes")
        .send()
        .await
        .unwrap();
    let head = c
        .head_object()
        .bucket(bucket)
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    assert_eq!(head.cache_control(), None);
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("shape").map(String::as_str), Some("round"));
    assert!(!meta.contains_key("colour"));
    assert_eq!(
        tags_of(&c, bucket, "replaced").await,
        pairs(&[("team", "storage"), ("tier", "gold")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_with_tagging_directive_replace_takes_tags_from_the_request_and_copies_metadata()
 {
    let (_server, c, _, _) = copy_source_server().await;
    let bucket = COPY_BUCKET;
    // Tagging REPLACE: tags from x-amz-tagging, metadata still copied.
    c.copy_object()
        .bucket(bucket)
        .key("retagged")
        .copy_source(format!("{bucket}/src"))
        .tagging_directive(TaggingDirective::Replace)
        .tagging("env=prod")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&c, bucket, "retagged").await,
        pairs(&[("env", "prod")])
    );
    let head = c
        .head_object()
        .bucket(bucket)
        .key("retagged")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_with_invalid_replacement_tags_is_invalid_tag_and_copies_nothing() {
    let (_server, c, _, _) = copy_source_server().await;
    let bucket = COPY_BUCKET;
    let err = c
        .copy_object()
        .bucket(bucket)
        .key("badtags")
        .copy_source(format!("{bucket}/src"))
        .tagging_directive(TaggingDirective::Replace)
        .tagging("a=1&a=2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidTag"));
    assert!(!object_exists(&c, bucket, "badtags").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_onto_itself_is_illegal_without_replace_and_updates_metadata_with_it() {
    let (_server, c, body, etag) = copy_source_server().await;
    let bucket = COPY_BUCKET;
    let err = c
        .copy_object()
        .bucket(bucket)
        .key("src")
        .copy_source(format!("{bucket}/src"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_status(&err), Some(400));
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidRequest"));
    assert_eq!(
        err.message(),
        Some(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        )
    );
    c.copy_object()
        .bucket(bucket)
        .key("src")
        .copy_source(format!("{bucket}/src"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/markdown")
        .send()
        .await
        .unwrap();
    let head = c
        .head_object()
        .bucket(bucket)
        .key("src")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/markdown"));
    assert_eq!(
        head.e_tag(),
        Some(etag.as_str()),
        "self-copy keeps the data"
    );
    assert_eq!(get_bytes(&c, bucket, "src").await, body);
}

type CopyBuilder = aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
/// Adds `x-amz-copy-source-if-*` headers given the source's ETag, a time
/// in the past and one in the future.
type CopyCondition = fn(CopyBuilder, &str, DateTime, DateTime) -> CopyBuilder;

/// Each source condition (and S3's documented combinations), and whether
/// the copy goes ahead.
fn copy_source_condition_cases() -> Vec<(&'static str, CopyCondition, bool)> {
    vec![
        ("if-match ok", |b, e, _, _| b.copy_source_if_match(e), true),
        ("if-match *", |b, _, _, _| b.copy_source_if_match("*"), true),
        (
            "if-match wrong",
            |b, _, _, _| b.copy_source_if_match("\"0123\""),
            false,
        ),
        (
            "if-none-match same",
            |b, e, _, _| b.copy_source_if_none_match(e),
            false,
        ),
        (
            "if-none-match other",
            |b, _, _, _| b.copy_source_if_none_match("\"0123\""),
            true,
        ),
        (
            "if-modified-since past",
            |b, _, p, _| b.copy_source_if_modified_since(p),
            true,
        ),
        (
            "if-modified-since future",
            |b, _, _, f| b.copy_source_if_modified_since(f),
            false,
        ),
        (
            "if-unmodified-since future",
            |b, _, _, f| b.copy_source_if_unmodified_since(f),
            true,
        ),
        (
            "if-unmodified-since past",
            |b, _, p, _| b.copy_source_if_unmodified_since(p),
            false,
        ),
        // S3's documented combinations: a matching if-match wins over a
        // failing if-unmodified-since; a matching if-none-match fails even
        // with a true if-modified-since.
        (
            "if-match ok + if-unmodified-since past",
            |b, e, p, _| b.copy_source_if_match(e).copy_source_if_unmodified_since(p),
            true,
        ),
        (
            "if-none-match same + if-modified-since past",
            |b, e, p, _| {
                b.copy_source_if_none_match(e)
                    .copy_source_if_modified_since(p)
            },
            false,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_source_conditions_copy_when_true_and_fail_412_with_nothing_written_when_false()
{
    let (_server, c, body, etag) = copy_source_server().await;
    let bucket = COPY_BUCKET;
    let past = || secs_from_now(-3600);
    let future = || secs_from_now(3600);
    for (i, (what, cond, ok)) in copy_source_condition_cases().into_iter().enumerate() {
        let dst = format!("cond-{i}");
        let req = c
            .copy_object()
            .bucket(bucket)
            .key(&dst)
            .copy_source(format!("{bucket}/src"));
        let res = cond(req, &etag, past(), future()).send().await;
        if ok {
            res.unwrap_or_else(|e| panic!("{what}: {}", show(&e)));
            assert_eq!(get_bytes(&c, bucket, &dst).await, body, "{what}");
        } else {
            let err = res.expect_err(what);
            assert_eq!(sdk_error_status(&err), Some(412), "{what}");
            assert_eq!(
                sdk_error_code(&err).as_deref(),
                Some("PreconditionFailed"),
                "{what}"
            );
            assert!(
                !object_exists(&c, bucket, &dst).await,
                "{what}: nothing copied"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_of_a_missing_source_is_no_such_key_also_with_conditions() {
    let (_server, c, _, etag) = copy_source_server().await;
    let bucket = COPY_BUCKET;
    let err = c
        .copy_object()
        .bucket(bucket)
        .key("x")
        .copy_source(format!("{bucket}/missing"))
        .copy_source_if_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchKey"));
}

// ---------------------------------------------------------------------------
// 4. Object tagging
// ---------------------------------------------------------------------------

const TAGGING_BUCKET: &str = "tagging-bucket";

/// A server with `tagging-bucket/obj` (body `tagged`) put with
/// `x-amz-tagging` (form-encoded: `+` and %20 are spaces). Returns its ETag.
async fn tagged_object_server() -> (TestServer, aws_sdk_s3::Client, String) {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, TAGGING_BUCKET).await;
    let put = c
        .put_object()
        .bucket(TAGGING_BUCKET)
        .key("obj")
        .tagging("project=cairn&owner=Data+Team&path=a%2Fb%20c")
        .body(ByteStream::from_static(b"tagged"))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    (server, c, etag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_x_amz_tagging_is_form_decoded_and_counted_on_get_and_head() {
    let (server, c, _) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    assert_eq!(
        tags_of(&c, bucket, "obj").await,
        pairs(&[
            ("project", "cairn"),
            ("owner", "Data Team"),
            ("path", "a/b c")
        ])
    );
    let got = c
        .get_object()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(3));
    let head = RawRequest::new("HEAD", &format!("/{bucket}/obj"))
        .sign(server.s3_addr(), Payload::Unsigned)
        .send(server.s3_addr())
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-amz-tagging-count"), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_tagging_replaces_the_set_and_leaves_data_etag_and_last_modified_alone() {
    let (_server, c, etag) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    let got = c
        .get_object()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    let modified = got.last_modified().copied();
    let set = vec![
        tag("env", "prod"),
        tag("empty", ""),
        tag("ünïcode", "välue @:/=+-._"),
    ];
    c.put_object_tagging()
        .bucket(bucket)
        .key("obj")
        .tagging(tagging(set))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObjectTagging: {}", show(&e)));
    assert_eq!(
        tags_of(&c, bucket, "obj").await,
        pairs(&[
            ("env", "prod"),
            ("empty", ""),
            ("ünïcode", "välue @:/=+-._")
        ])
    );
    let got = c
        .get_object()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(3));
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.last_modified().copied(), modified);
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"tagged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_tagging_takes_10_tags_at_the_length_limits_and_refuses_more_as_invalid_tag() {
    let (_server, c, _) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    // The limits: 10 tags, 128-character keys, 256-character values.
    let ten: Vec<Tag> = (0..10)
        .map(|i| tag(&format!("{i}{}", "k".repeat(127)), &"v".repeat(256)))
        .collect();
    c.put_object_tagging()
        .bucket(bucket)
        .key("obj")
        .tagging(tagging(ten))
        .send()
        .await
        .unwrap_or_else(|e| panic!("10 tags at the limits: {}", show(&e)));
    assert_eq!(tags_of(&c, bucket, "obj").await.len(), 10);
    let too_many: Vec<Tag> = (0..11).map(|i| tag(&format!("k{i}"), "v")).collect();
    let bad_sets: Vec<(&str, Vec<Tag>)> = vec![
        ("11 tags", too_many),
        ("129-char key", vec![tag(&"k".repeat(129), "v")]),
        ("257-char value", vec![tag("k", &"v".repeat(257))]),
        ("duplicate key", vec![tag("k", "1"), tag("k", "2")]),
        ("empty key", vec![tag("", "v")]),
        ("aws: prefix", vec![tag("aws:reserved", "v")]),
        ("bad character", vec![tag("k", "semi;colon")]),
    ];
    for (what, set) in bad_sets {
        let err = c
            .put_object_tagging()
            .bucket(bucket)
            .key("obj")
            .tagging(tagging(set))
            .send()
            .await
            .expect_err(what);
        assert_eq!(sdk_error_status(&err), Some(400), "{what}");
        assert_eq!(
            sdk_error_code(&err).as_deref(),
            Some("InvalidTag"),
            "{what}"
        );
    }
    assert_eq!(
        tags_of(&c, bucket, "obj").await.len(),
        10,
        "failed puts change nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_with_an_invalid_x_amz_tagging_header_is_invalid_tag_and_stores_nothing() {
    let (_server, c, _) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    // The same rules for the header; a rejected PutObject stores nothing.
    let eleven = (0..11)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    for (what, header) in [
        ("11 tags", eleven.as_str()),
        ("duplicate", "a=1&a=2"),
        ("long key", &format!("{}=v", "k".repeat(129))),
        ("bad utf-8", "a=%FF"),
    ] {
        let err = c
            .put_object()
            .bucket(bucket)
            .key("rejected")
            .tagging(header)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err(what);
        assert_eq!(
            sdk_error_code(&err).as_deref(),
            Some("InvalidTag"),
            "{what}"
        );
    }
    assert!(!object_exists(&c, bucket, "rejected").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_tagging_refuses_malformed_xml_and_a_body_without_content_md5() {
    let (server, _c, _) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    // Malformed documents are MalformedXML.
    for doc in [
        "<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
        "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>",
        "not xml at all",
        "<Tagging/>",
    ] {
        let resp = RawRequest::new("PUT", &format!("/{bucket}/obj?tagging"))
            .header("content-md5", &md5_b64(doc.as_bytes()))
            .body(doc)
            .sign(server.s3_addr(), Payload::Signed)
            .send(server.s3_addr())
            .await;
        resp.assert_s3_error(400, "MalformedXML", doc);
    }
    // Like S3, PutObjectTagging needs a body digest.
    let doc = "<Tagging><TagSet></TagSet></Tagging>";
    let resp = RawRequest::new("PUT", &format!("/{bucket}/obj?tagging"))
        .body(doc)
        .sign(server.s3_addr(), Payload::Signed)
        .send(server.s3_addr())
        .await;
    resp.assert_s3_error(
        400,
        "InvalidRequest",
        "PutObjectTagging without Content-MD5",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_object_tagging_empties_the_set_and_drops_the_tag_count() {
    let (_server, c, _) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    c.delete_object_tagging()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    assert!(tags_of(&c, bucket, "obj").await.is_empty());
    let got = c
        .get_object()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tagging_of_missing_objects_buckets_and_non_null_versions_is_refused() {
    let (_server, c, _) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    let err = c
        .get_object_tagging()
        .bucket(bucket)
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchKey"));
    let err = c
        .put_object_tagging()
        .bucket(bucket)
        .key("nope")
        .tagging(tagging(vec![tag("a", "b")]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchKey"));
    let err = c
        .delete_object_tagging()
        .bucket(bucket)
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchKey"));
    let err = c
        .get_object_tagging()
        .bucket("no-such-tag-bucket")
        .key("obj")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchBucket"));
    let err = c
        .get_object_tagging()
        .bucket(bucket)
        .key("obj")
        .version_id("3HL4kqtJlcpXroDTDmJ")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidArgument"));
    let err = c
        .get_object_tagging()
        .bucket(bucket)
        .key("obj")
        .version_id(format!("{}{}", "f".repeat(16), "0".repeat(32)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchVersion"));
    let out = c
        .get_object_tagging()
        .bucket(bucket)
        .key("obj")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some("null"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tags_are_not_bucket_tags() {
    let (_server, c, _) = tagged_object_server().await;
    let err = c
        .get_bucket_tagging()
        .bucket(TAGGING_BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchTagSet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_multipart_upload_x_amz_tagging_reaches_the_completed_object_and_survives_a_restart()
{
    let (mut server, c, _) = tagged_object_server().await;
    let bucket = TAGGING_BUCKET;
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key("mp")
        .tagging("kind=multipart&n=1")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket(bucket)
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"one part"))
        .send()
        .await
        .unwrap();
    c.complete_multipart_upload()
        .bucket(bucket)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&c, bucket, "mp").await,
        pairs(&[("kind", "multipart"), ("n", "1")])
    );

    // Tags survive a restart (they are in the synced metadata record).
    server.restart(true);
    let c = sdk_client(&server);
    assert_eq!(
        tags_of(&c, bucket, "mp").await,
        pairs(&[("kind", "multipart"), ("n", "1")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_multipart_upload_with_an_aws_prefixed_tag_is_invalid_tag() {
    let (_server, c, _) = tagged_object_server().await;
    let err = c
        .create_multipart_upload()
        .bucket(TAGGING_BUCKET)
        .key("mp2")
        .tagging("aws:x=1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidTag"));
}

// ---------------------------------------------------------------------------
// 5. Virtual-hosted-style addressing
// ---------------------------------------------------------------------------

const VHOST_DOMAIN: &str = "s3.cairn.test";
const VHOST_BUCKET: &str = "vhost-bucket";
const VHOST_KEYS: [&str; 4] = ["plain", "dir/sub/file name+x.bin", "/leading-slash", "a//b"];

/// A server with `--domain` (given in mixed case with a trailing dot), a
/// virtual-host client and a path-style one, and `vhost-bucket` created and
/// filled through the virtual host. Every request of the virtual-host client
/// is signed for `<bucket>.s3.cairn.test:<port>` with the key as the whole
/// path. Returns the body every key holds.
async fn vhost_server() -> (TestServer, aws_sdk_s3::Client, aws_sdk_s3::Client, Vec<u8>) {
    let server = TestServer::start_with_args(&["--domain", "S3.Cairn.Test."]);
    let vh = sdk_client_virtual_host(&server, VHOST_DOMAIN);
    let path = sdk_client(&server);
    let bucket = VHOST_BUCKET;
    vh.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket (virtual host): {}", show(&e)));
    let body = Rng::new(test_seed("vhost")).bytes(700 * KIB);
    for k in VHOST_KEYS {
        vh.put_object()
            .bucket(bucket)
            .key(k)
            .metadata("via", "vhost")
            .tagging("style=virtual")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {k:?} (virtual host): {}", show(&e)));
    }
    (server, vh, path, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style_puts_read_back_in_both_styles_with_ranges_and_tags() {
    let (_server, vh, path, body) = vhost_server().await;
    let bucket = VHOST_BUCKET;
    for k in VHOST_KEYS {
        // Read back both ways: the same bucket and key.
        assert_eq!(
            get_bytes(&vh, bucket, k).await,
            body,
            "{k:?} via virtual host"
        );
        assert_eq!(
            get_bytes(&path, bucket, k).await,
            body,
            "{k:?} via path style"
        );
    }
    let ranged = vh
        .get_object()
        .bucket(bucket)
        .key("plain")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[10..20]
    );
    assert_eq!(
        tags_of(&vh, bucket, "plain").await,
        pairs(&[("style", "virtual")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style_listings_take_the_whole_path_as_the_key_and_the_bare_domain_lists_buckets()
 {
    let (_server, vh, _path, _) = vhost_server().await;
    let bucket = VHOST_BUCKET;
    let listed = vh
        .list_objects_v2()
        .bucket(bucket)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let got: BTreeSet<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, BTreeSet::from(["plain"]));
    let got: BTreeSet<&str> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(got, BTreeSet::from(["/", "a/", "dir/"]));
    let versions = vh
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), VHOST_KEYS.len());

    // The bare domain is the service: ListBuckets.
    let buckets = vh.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec![bucket]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style_copies_work_and_errors_name_the_right_resource() {
    let (_server, vh, path, body) = vhost_server().await;
    let bucket = VHOST_BUCKET;
    vh.copy_object()
        .bucket(bucket)
        .key("copy")
        .copy_source(format!("{bucket}/plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&path, bucket, "copy").await, body);
    let err = vh
        .get_object()
        .bucket(bucket)
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchKey"));
    let err = vh
        .head_bucket()
        .bucket("other-vhost-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_status(&err), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style_presigned_get_is_signed_for_the_virtual_host() {
    let (server, vh, _path, body) = vhost_server().await;
    let bucket = VHOST_BUCKET;
    let presigned = vh
        .get_object()
        .bucket(bucket)
        .key("dir/sub/file name+x.bin")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap();
    // Presigning runs the connect-to interceptor too: the URI names the
    // loopback address and the signed virtual host is in the headers.
    let uri: http::Uri = presigned.uri().parse().unwrap();
    let host = presigned
        .headers()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| uri.authority().unwrap().to_string());
    assert!(
        host.starts_with(&format!("{bucket}.{VHOST_DOMAIN}:")),
        "{host}"
    );
    let resp = RawRequest::new("GET", uri.path_and_query().unwrap().as_str())
        .header("host", &host)
        .send(server.s3_addr())
        .await;
    assert_eq!(
        resp.status,
        200,
        "presigned virtual-host GET: {}",
        resp.text()
    );
    assert_eq!(resp.body.as_ref(), &body[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style_deletes_remove_every_object_and_the_bucket() {
    let (_server, vh, path, _) = vhost_server().await;
    let bucket = VHOST_BUCKET;
    for k in VHOST_KEYS {
        vh.delete_object()
            .bucket(bucket)
            .key(k)
            .send()
            .await
            .unwrap();
    }
    vh.delete_bucket().bucket(bucket).send().await.unwrap();
    let all = path.list_buckets().send().await.unwrap();
    assert!(all.buckets().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_domain_a_virtual_host_name_is_path_style_and_slash_lists_buckets() {
    let bucket = VHOST_BUCKET;
    let plain = TestServer::start();
    let c = sdk_client(&plain);
    create_bucket(&c, bucket).await;
    let resp = RawRequest::new("GET", "/")
        .header(
            "host",
            &format!("{bucket}.{VHOST_DOMAIN}:{}", plain.s3_addr().port()),
        )
        .sign(plain.s3_addr(), Payload::Unsigned)
        .send(plain.s3_addr())
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.text().contains("<ListAllMyBucketsResult"),
        "{}",
        resp.text()
    );
}

#[test]
fn bucket_tagging_put_get_delete_limits_and_restart() {
    use aws_sdk_s3::types::{Tag, Tagging};
    fn tagging(n: usize) -> Tagging {
        let tags = (0..n)
            .map(|i| {
                Tag::builder()
                    .key(format!("key-{i}"))
                    .value(format!("value {i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        Tagging::builder().set_tag_set(Some(tags)).build().unwrap()
    }
    run(async {
        let mut server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, "tagged-bucket").await;

        // No tag set yet: NoSuchTagSet (404).
        let err = c
            .get_bucket_tagging()
            .bucket("tagged-bucket")
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchTagSet"));

        c.put_bucket_tagging()
            .bucket("tagged-bucket")
            .tagging(tagging(3))
            .send()
            .await
            .unwrap();
        let got = c
            .get_bucket_tagging()
            .bucket("tagged-bucket")
            .send()
            .await
            .unwrap();
        let pairs: Vec<(&str, &str)> = got.tag_set().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(
            pairs,
            [
                ("key-0", "value 0"),
                ("key-1", "value 1"),
                ("key-2", "value 2")
            ]
        );

        // Up to 50 tags; 51 is InvalidTag and changes nothing.
        c.put_bucket_tagging()
            .bucket("tagged-bucket")
            .tagging(tagging(50))
            .send()
            .await
            .unwrap();
        let err = c
            .put_bucket_tagging()
            .bucket("tagged-bucket")
            .tagging(tagging(51))
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidTag"));
        let got = c
            .get_bucket_tagging()
            .bucket("tagged-bucket")
            .send()
            .await
            .unwrap();
        assert_eq!(got.tag_set().len(), 50);

        // Missing bucket.
        let err = c
            .get_bucket_tagging()
            .bucket("no-such-bucket")
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchBucket"));

        // Survives a restart; DeleteBucketTagging removes the set.
        server.restart(false);
        let c = sdk_client(&server);
        let got = c
            .get_bucket_tagging()
            .bucket("tagged-bucket")
            .send()
            .await
            .unwrap();
        assert_eq!(got.tag_set().len(), 50);
        c.delete_bucket_tagging()
            .bucket("tagged-bucket")
            .send()
            .await
            .unwrap();
        let err = c
            .get_bucket_tagging()
            .bucket("tagged-bucket")
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchTagSet"));
    });
}

/// A server with bucket `acl` (created with the canned `private` ACL) and
/// object `acl/k` (put with `bucket-owner-full-control`).
async fn acl_server() -> (TestServer, aws_sdk_s3::Client) {
    use aws_sdk_s3::types::{BucketCannedAcl, ObjectCannedAcl};
    let server = TestServer::start();
    let c = sdk_client(&server);
    c.create_bucket()
        .bucket("acl")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    c.put_object()
        .bucket("acl")
        .key("k")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap();
    (server, c)
}

// ACLs as on an S3 bucket with Object Ownership "bucket owner enforced":
// the owner-only policy is accepted (in headers or as a document) and
// reported; anything granting others access is refused with S3's codes,
// never accepted silently.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_bucket_with_a_public_read_acl_is_refused_and_creates_nothing() {
    use aws_sdk_s3::types::BucketCannedAcl;
    let (_server, c) = acl_server().await;
    let err = c
        .create_bucket()
        .bucket("acl-public")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("InvalidBucketAclWithObjectOwnership"),
        "{}",
        show(&err)
    );
    assert!(c.head_bucket().bucket("acl-public").send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_with_a_public_read_acl_is_refused_and_stores_nothing() {
    use aws_sdk_s3::types::ObjectCannedAcl;
    let (_server, c) = acl_server().await;
    let err = c
        .put_object()
        .bucket("acl")
        .key("public")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("AccessControlListNotSupported"),
        "{}",
        show(&err)
    );
    assert!(
        !object_exists(&c, "acl", "public").await,
        "refused PUT stored nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_acl_accepts_the_canned_private_acl_and_refuses_public_read_write() {
    use aws_sdk_s3::types::{BucketCannedAcl, ObjectCannedAcl};
    let (_server, c) = acl_server().await;
    // PutObjectAcl / PutBucketAcl with the canned owner-only ACL: accepted.
    c.put_object_acl()
        .bucket("acl")
        .key("k")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    c.put_bucket_acl()
        .bucket("acl")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    let err = c
        .put_object_acl()
        .bucket("acl")
        .key("k")
        .acl(ObjectCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("AccessControlListNotSupported"),
        "{}",
        show(&err)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_accept_the_owner_only_policy_and_refuse_grants() {
    use aws_sdk_s3::types::{AccessControlPolicy, Grant, Grantee, Owner, Permission, Type};
    let (_server, c) = acl_server().await;
    // The document form: the policy GetObjectAcl reports goes back in as is.
    let acl = c
        .get_object_acl()
        .bucket("acl")
        .key("k")
        .send()
        .await
        .unwrap();
    let owner_id = acl.owner().and_then(|o| o.id()).unwrap().to_owned();
    assert_eq!(acl.grants().len(), 1);
    assert_eq!(acl.grants()[0].permission(), Some(&Permission::FullControl));
    let owner_grant = Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::CanonicalUser)
                .id(&owner_id)
                .build()
                .unwrap(),
        )
        .permission(Permission::FullControl)
        .build();
    let policy = |grants: Vec<Grant>| {
        AccessControlPolicy::builder()
            .owner(Owner::builder().id(&owner_id).build())
            .set_grants(Some(grants))
            .build()
    };
    c.put_object_acl()
        .bucket("acl")
        .key("k")
        .access_control_policy(policy(vec![owner_grant.clone()]))
        .send()
        .await
        .unwrap();
    let everyone = Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::Group)
                .uri("http://acs.amazonaws.com/groups/global/AllUsers")
                .build()
                .unwrap(),
        )
        .permission(Permission::Read)
        .build();
    let err = c
        .put_bucket_acl()
        .bucket("acl")
        .access_control_policy(policy(vec![owner_grant, everyone]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("AccessControlListNotSupported"),
        "{}",
        show(&err)
    );
}

/// A bucket's owner is the key that created it (Object Ownership "bucket
/// owner enforced": also every object's owner): GetBucketAcl,
/// GetObjectAcl, ListObjects and ListObjectVersions name it by a canonical
/// user id (64 hex digits, not its access key id) and its name; the same
/// after a kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_is_owned_by_the_key_that_created_it() {
    let mut server = TestServer::start();
    let make_admin = |name: &str| {
        let k = admin_json(&server, &["key", "create", name, "--admin"]);
        (text(&k, "id"), text(&k, "secret"))
    };
    let (a_id, a_secret) = make_admin("owner-a");
    let (b_id, b_secret) = make_admin("owner-b");
    let a = sdk_client_for(&server.endpoint(), &a_id, &a_secret, &[]);
    let b = sdk_client_for(&server.endpoint(), &b_id, &b_secret, &[]);
    create_bucket(&a, "owned").await;
    put_bytes(&a, "owned", "k", b"x").await;
    let acl = b.get_bucket_acl().bucket("owned").send().await.unwrap();
    let owner = acl.owner().unwrap();
    // A canonical user id (64 hex digits), never the access key id.
    let canonical = owner.id().unwrap().to_owned();
    assert!(
        canonical.len() == 64 && canonical.bytes().all(|b| b.is_ascii_hexdigit()),
        "{canonical}"
    );
    assert!(!canonical.contains(&a_id));
    let check = |id: Option<&str>, name: Option<&str>, what: &str| {
        assert_eq!(id, Some(canonical.as_str()), "{what}: owner id");
        assert_eq!(name, Some("owner-a"), "{what}: display name");
    };
    check(owner.id(), owner.display_name(), "GetBucketAcl");
    let grantee = acl.grants()[0].grantee().unwrap();
    check(grantee.id(), grantee.display_name(), "GetBucketAcl grantee");
    let acl = b
        .get_object_acl()
        .bucket("owned")
        .key("k")
        .send()
        .await
        .unwrap();
    let owner = acl.owner().unwrap();
    check(owner.id(), owner.display_name(), "GetObjectAcl");
    let listed = b
        .list_objects_v2()
        .bucket("owned")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let owner = listed.contents()[0].owner().unwrap();
    check(owner.id(), owner.display_name(), "ListObjectsV2");
    let versions = b
        .list_object_versions()
        .bucket("owned")
        .send()
        .await
        .unwrap();
    let owner = versions.versions()[0].owner().unwrap();
    check(owner.id(), owner.display_name(), "ListObjectVersions");
    // The owner's own ACL document goes back in.
    let grant = aws_sdk_s3::types::Grant::builder()
        .grantee(
            aws_sdk_s3::types::Grantee::builder()
                .r#type(aws_sdk_s3::types::Type::CanonicalUser)
                .id(&canonical)
                .build()
                .unwrap(),
        )
        .permission(aws_sdk_s3::types::Permission::FullControl)
        .build();
    a.put_bucket_acl()
        .bucket("owned")
        .access_control_policy(
            aws_sdk_s3::types::AccessControlPolicy::builder()
                .owner(aws_sdk_s3::types::Owner::builder().id(&canonical).build())
                .grants(grant)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // All keys are one account's: creating the name again is the legacy
    // us-east-1 200 for either key, and the owner stays the creator.
    a.create_bucket().bucket("owned").send().await.unwrap();
    b.create_bucket().bucket("owned").send().await.unwrap();
    // A bucket of the start-up key is that key's: another canonical id.
    let c = sdk_client(&server);
    create_bucket(&c, "startup").await;
    let acl = c.get_bucket_acl().bucket("startup").send().await.unwrap();
    let startup = acl.owner().and_then(|o| o.id()).unwrap().to_owned();
    assert!(startup.len() == 64 && startup != canonical && !startup.contains(ACCESS_KEY));
    // The owner is in the bucket's record: it survives a kill -9.
    server.restart(true);
    let b = sdk_client_for(&server.endpoint(), &b_id, &b_secret, &[]);
    let acl = b.get_bucket_acl().bucket("owned").send().await.unwrap();
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(canonical.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_acl_of_a_missing_key_is_no_such_key() {
    use aws_sdk_s3::types::ObjectCannedAcl;
    let (_server, c) = acl_server().await;
    let err = c
        .put_object_acl()
        .bucket("acl")
        .key("nope")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"), "{}", show(&err));
}

// ---------------------------------------------------------------------------
// 6. Protocol details as S3 has them
// ---------------------------------------------------------------------------

/// A request signed by hand (SigV4, header form) so that header values can
/// be any bytes and the date can come from a `Date` header. `headers` must
/// include `host`; every header given is signed. Returns the wire bytes.
fn hand_signed(
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    time: SystemTime,
    date_header: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
    let (y, mo, d, h, mi, s, _) = civil(time);
    let stamp = format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z");
    let day = &stamp[..8];
    let payload = sha256_hex(body);
    let mut all: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_vec()))
        .collect();
    all.push(("x-amz-content-sha256".into(), payload.clone().into_bytes()));
    match date_header {
        Some(d) => all.push(("date".into(), d.as_bytes().to_vec())),
        None => all.push(("x-amz-date".into(), stamp.clone().into_bytes())),
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let signed: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let mut canonical = format!("{method}\n{path}\n\n").into_bytes();
    for (k, v) in &all {
        canonical.extend_from_slice(k.as_bytes());
        canonical.push(b':');
        canonical.extend_from_slice(v.trim_ascii());
        canonical.push(b'\n');
    }
    canonical.extend_from_slice(format!("\n{signed}\n{payload}").as_bytes());
    let sts = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{day}/{REGION}/s3/aws4_request\n{}",
        sha256_hex(&canonical)
    );
    let key = generate_signing_key(SECRET_KEY, time, REGION, "s3");
    let sig = calculate_signature(key, sts.as_bytes());
    let mut wire = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (k, v) in &all {
        wire.extend_from_slice(k.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(v);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(
        format!(
            "authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{day}/{REGION}/s3/aws4_request, SignedHeaders={signed}, Signature={sig}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    wire.extend_from_slice(body);
    wire
}

/// UTC calendar fields of `t`: year, month, day, hour, minute, second and
/// the weekday (0 = Sunday).
fn civil(t: SystemTime) -> (i64, u32, u32, u64, u64, u64, u64) {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = ((days + 4).rem_euclid(7)) as u64;
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60, weekday)
}

const PROTOCOL_BUCKET: &str = "protocol-bucket";

/// A server with `protocol-bucket` holding `kept` (a single PUT).
async fn protocol_server() -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, PROTOCOL_BUCKET).await;
    put_bytes(&c, PROTOCOL_BUCKET, "kept", b"kept").await;
    (server, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_bucket_of_an_owned_bucket_in_us_east_1_is_200_and_changes_nothing() {
    let (_server, c) = protocol_server().await;
    let bucket = PROTOCOL_BUCKET;
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("second CreateBucket: {}", show(&e)));
    assert_eq!(get_bytes(&c, bucket, "kept").await, b"kept");
}

/// A `Date` header with a numeric zone (what botocore sends when a caller
/// sets Date) authenticates like its GMT form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_header_with_a_numeric_zone_authenticates_like_its_gmt_form() {
    let (server, _c) = protocol_server().await;
    let addr = server.s3_addr();
    let host = addr.to_string();
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let now = UNIX_EPOCH + Duration::from_secs(secs);
    let (y, mo, d, h, mi, s, wd) = civil(now);
    let date = format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} -0000",
        ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][wd as usize],
        [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
        ][mo as usize - 1]
    );
    let wire = hand_signed(
        "GET",
        &format!("/{PROTOCOL_BUCKET}/kept"),
        &[("host", host.as_bytes())],
        now,
        Some(&date),
        b"",
    );
    let r = raw_tcp_exchange(addr, &wire, false, Duration::from_secs(10)).unwrap();
    assert_eq!(r.status, 200, "Date: {date}: {}", r.text());
    assert_eq!(r.body.as_ref(), b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_encoding_is_stored_byte_for_byte() {
    let (_server, c) = protocol_server().await;
    let bucket = PROTOCOL_BUCKET;
    c.put_object()
        .bucket(bucket)
        .key("enc")
        .content_encoding("deflate, gzip")
        .body(ByteStream::from_static(b"zz"))
        .send()
        .await
        .unwrap();
    let head = c
        .head_object()
        .bucket(bucket)
        .key("enc")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_encoding(), Some("deflate, gzip"));
}

/// Non-ASCII user metadata comes back RFC 2047-encoded ("mail-safe"), as
/// S3 documents, never as raw bytes a client reads as Latin-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_user_metadata_comes_back_rfc_2047_encoded() {
    let (server, c) = protocol_server().await;
    let bucket = PROTOCOL_BUCKET;
    let addr = server.s3_addr();
    let host = addr.to_string();
    let value = "Grüße, 東京";
    let wire = hand_signed(
        "PUT",
        &format!("/{bucket}/utf8-meta"),
        &[
            ("host", host.as_bytes()),
            ("x-amz-meta-city", value.as_bytes()),
        ],
        SystemTime::now(),
        None,
        b"m",
    );
    let r = raw_tcp_exchange(addr, &wire, false, Duration::from_secs(10)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let head = c
        .head_object()
        .bucket(bucket)
        .key("utf8-meta")
        .send()
        .await
        .unwrap();
    let got = head.metadata().unwrap().get("city").unwrap();
    use base64::Engine as _;
    let expected = format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(value)
    );
    assert_eq!(got, &expected);
}

/// An upload of `protocol-bucket/mp` with CRC32 checksums: a 5 MiB part and
/// a 1000-byte one, ready to complete.
struct Crc32Upload {
    id: String,
    parts: Vec<CompletedPart>,
    /// The whole-object composite checksum, with its `-N`.
    composite: String,
}

impl Crc32Upload {
    async fn start(c: &aws_sdk_s3::Client) -> Crc32Upload {
        let bucket = PROTOCOL_BUCKET;
        let up = c
            .create_multipart_upload()
            .bucket(bucket)
            .key("mp")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_owned();
        let parts_data = [vec![1u8; 5 * MIB], vec![2u8; 1000]];
        let mut parts = Vec::new();
        let mut raw_crcs = Vec::new();
        for (i, data) in parts_data.iter().enumerate() {
            let n = i as i32 + 1;
            let out = c
                .upload_part()
                .bucket(bucket)
                .key("mp")
                .upload_id(&id)
                .part_number(n)
                .checksum_crc32(crc32_b64(data))
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .unwrap();
            raw_crcs.extend_from_slice(&crc32(data).to_be_bytes());
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(out.e_tag().unwrap())
                    .checksum_crc32(crc32_b64(data))
                    .build(),
            );
        }
        let composite = format!("{}-2", crc32_b64(&raw_crcs));
        Crc32Upload {
            id,
            parts,
            composite,
        }
    }

    /// CompleteMultipartUpload with every part and the composite checksum.
    async fn complete(
        &self,
        c: &aws_sdk_s3::Client,
    ) -> Result<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
        aws_sdk_s3::error::SdkError<
            aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
        >,
    > {
        c.complete_multipart_upload()
            .bucket(PROTOCOL_BUCKET)
            .key("mp")
            .upload_id(&self.id)
            .checksum_crc32(&self.composite)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_upload_with_a_part_listed_twice_is_invalid_part_order_and_keeps_the_upload()
 {
    let (_server, c) = protocol_server().await;
    let up = Crc32Upload::start(&c).await;
    // S3's InvalidPartOrder (strictly ascending), and the upload is still there.
    let twice = vec![up.parts[0].clone(), up.parts[0].clone()];
    let err = c
        .complete_multipart_upload()
        .bucket(PROTOCOL_BUCKET)
        .key("mp")
        .upload_id(&up.id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(twice))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidPartOrder"));
    up.complete(&c)
        .await
        .unwrap_or_else(|e| panic!("Complete after InvalidPartOrder: {}", show(&e)));
}

/// The whole-object composite checksum with its `-N` is accepted and
/// returned, and the same Complete again (an SDK retrying a lost answer)
/// gets the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_upload_repeated_returns_the_same_etag_and_composite_checksum() {
    let (_server, c) = protocol_server().await;
    let up = Crc32Upload::start(&c).await;
    let first = up
        .complete(&c)
        .await
        .unwrap_or_else(|e| panic!("Complete with a composite -N checksum: {}", show(&e)));
    assert_eq!(first.checksum_crc32(), Some(up.composite.as_str()));
    let again = up
        .complete(&c)
        .await
        .unwrap_or_else(|e| panic!("a repeated Complete: {}", show(&e)));
    assert_eq!(again.e_tag(), first.e_tag());
    assert_eq!(again.checksum_crc32(), first.checksum_crc32());
}

/// A part beyond the last is S3's 416 InvalidPartNumber (its error table),
/// for a multipart object and for a single-PUT one (one part); partNumber
/// and Range together are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_a_part_number_beyond_the_last_is_416_invalid_part_number() {
    let (server, c) = protocol_server().await;
    let (addr, bucket) = (server.s3_addr(), PROTOCOL_BUCKET);
    let up = Crc32Upload::start(&c).await;
    up.complete(&c).await.unwrap();
    let r = RawRequest::new("GET", &format!("/{bucket}/mp?partNumber=3"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(416, "InvalidPartNumber", "GET ?partNumber=3 of 2 parts");
    assert!(
        r.text().contains("<ActualPartCount>2</ActualPartCount>"),
        "{}",
        r.text()
    );
    let r = RawRequest::new("GET", &format!("/{bucket}/kept?partNumber=2"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(
        416,
        "InvalidPartNumber",
        "GET ?partNumber=2 of a single PUT",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_part_number_and_range_together_is_invalid_request() {
    let (server, c) = protocol_server().await;
    let (addr, bucket) = (server.s3_addr(), PROTOCOL_BUCKET);
    let up = Crc32Upload::start(&c).await;
    up.complete(&c).await.unwrap();
    let r = RawRequest::new("GET", &format!("/{bucket}/mp?partNumber=1"))
        .header("range", "bytes=0-9")
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "InvalidRequest", "partNumber and Range together");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_upload_after_the_key_holds_another_object_is_no_such_upload() {
    let (_server, c) = protocol_server().await;
    let up = Crc32Upload::start(&c).await;
    up.complete(&c).await.unwrap();
    // Once the key holds another object, the upload is simply gone.
    put_bytes(&c, PROTOCOL_BUCKET, "mp", b"replaced").await;
    let err = up.complete(&c).await.unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchUpload"));
}
