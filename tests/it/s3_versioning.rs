//! S3 versioning end to end, through `aws-sdk-s3`, hand-built signed
//! requests and boto3, each expectation taken from the AWS documentation
//! (the S3 User Guide chapters on versioning and the API reference pages of
//! the operations involved; the test comments name the page):
//!
//! * the bucket states: never versioned (no `Status`), `Enabled`,
//!   `Suspended`, and no way back to unversioned; MFA delete refused;
//! * versions: distinct version ids, newest first in ListObjectVersions,
//!   each version readable by id, the `null` version of objects written
//!   before versioning or while it is suspended;
//! * delete markers: created by a DELETE without a version id, answered
//!   with 404 (`x-amz-delete-marker: true`) or 405 when addressed by id,
//!   hidden from ListObjects, removed by deleting their version id;
//! * permanent deletes of one version, malformed version ids;
//! * ListObjectVersions paging (key-marker / version-id-marker), prefixes,
//!   delimiters and `encoding-type=url`;
//! * DeleteObjects, CopyObject, UploadPartCopy, object tagging and
//!   CompleteMultipartUpload on versions; DeleteBucket with versions left;
//! * concurrent writers of one key and conditional writes against the
//!   latest version.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, Delete, MfaDelete, MfaDeleteStatus, ObjectIdentifier, Tag, Tagging,
    VersioningConfiguration,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Asserts that an SDK call failed with HTTP `status` and, when given, the
/// S3 error `code`; returns the error for further checks.
fn expect_err<T, E>(
    res: Result<T, SdkError<E, HttpResponse>>,
    status: u16,
    code: Option<&str>,
    what: &str,
) -> SdkError<E, HttpResponse>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let e = match res {
        Ok(_) => panic!("{what}: succeeded, expected {status} {code:?}"),
        Err(e) => e,
    };
    assert_eq!(sdk_error_status(&e), Some(status), "{what}: {}", show(&e));
    if let Some(code) = code {
        assert_eq!(
            sdk_error_code(&e).as_deref(),
            Some(code),
            "{what}: {}",
            show(&e)
        );
    }
    e
}

/// A response header of a failed SDK call.
fn err_header<E>(e: &SdkError<E, HttpResponse>, name: &str) -> Option<String> {
    e.raw_response()
        .and_then(|r| r.headers().get(name))
        .map(str::to_owned)
}

async fn set_versioning(c: &aws_sdk_s3::Client, bucket: &str, status: BucketVersioningStatus) {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketVersioning {bucket}: {}", show(&e)));
}

async fn versioning_status(
    c: &aws_sdk_s3::Client,
    bucket: &str,
) -> (Option<BucketVersioningStatus>, Option<MfaDeleteStatus>) {
    let out = c
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetBucketVersioning {bucket}: {}", show(&e)));
    (out.status().cloned(), out.mfa_delete().cloned())
}

/// A server with `bucket` created and versioning enabled on it.
async fn versioned_bucket(bucket: &str) -> (TestServer, aws_sdk_s3::Client) {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, bucket).await;
    set_versioning(&c, bucket, BucketVersioningStatus::Enabled).await;
    (server, c)
}

/// PUTs `body` and returns (version id, ETag); the version id must be sent
/// (PutObject API reference: in a versioning-enabled bucket "Amazon S3
/// returns this ID in the response").
async fn put_version(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &[u8],
) -> (String, String) {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {}", show(&e)));
    let vid = out
        .version_id()
        .unwrap_or_else(|| panic!("PUT {key} in a versioned bucket: no x-amz-version-id"))
        .to_owned();
    assert_ne!(vid, "null", "PUT {key} in a versioning-enabled bucket");
    assert!(!vid.is_empty(), "PUT {key}: empty version id");
    (vid, out.e_tag().unwrap_or_default().to_owned())
}

/// A PUT whose response version id is not looked at (unversioned or
/// suspended buckets); returns the response's version id, if any.
async fn put_plain(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) -> Option<String> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {}", show(&e)))
        .version_id()
        .map(str::to_owned)
}

/// GET of one version: (body, x-amz-version-id, ETag).
async fn get_version(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    vid: &str,
) -> (Vec<u8>, Option<String>, Option<String>) {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(vid)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}?versionId={vid}: {}", show(&e)));
    let vid_out = out.version_id().map(str::to_owned);
    let etag = out.e_tag().map(str::to_owned);
    let body = out.body.collect().await.unwrap().into_bytes().to_vec();
    (body, vid_out, etag)
}

/// A simple DELETE (no version id): (x-amz-delete-marker, x-amz-version-id).
async fn simple_delete(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Option<bool>, Option<String>) {
    let out = c
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DELETE {bucket}/{key}: {}", show(&e)));
    (out.delete_marker(), out.version_id().map(str::to_owned))
}

/// Deletes one version by id; returns (x-amz-delete-marker, x-amz-version-id).
async fn delete_version(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    vid: &str,
) -> (Option<bool>, Option<String>) {
    let out = c
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(vid)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DELETE {key}?versionId={vid}: {}", show(&e)));
    (out.delete_marker(), out.version_id().map(str::to_owned))
}

/// Every key ListObjectsV2 returns (one page: the tests' buckets are small).
async fn list_keys(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = c
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}: {}", show(&e)));
    assert_ne!(out.is_truncated(), Some(true));
    out.contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect()
}

/// A signed request built by hand (for headers the SDK hides and for
/// inputs it will not send).
async fn raw(
    server: &TestServer,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let addr = server.s3_addr();
    let mut req = RawRequest::new(method, path_and_query);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.body(body.to_vec())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await
}

fn object_path(bucket: &str, key: &str, vid: Option<&str>) -> String {
    match vid {
        None => format!("/{bucket}/{}", encode_key(key)),
        Some(v) => format!(
            "/{bucket}/{}?versionId={}",
            encode_key(key),
            encode_query(v)
        ),
    }
}

/// One `<Version>` or `<DeleteMarker>` of a ListVersionsResult, in document
/// order (the SDK splits the two kinds into separate lists and loses it).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    marker: bool,
    key: String,
    version_id: String,
    is_latest: bool,
}

/// The inner text of every `<name>…</name>` element in `xml`, in order.
fn blocks<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn parse_entries(xml: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rest = xml;
    loop {
        let v = rest.find("<Version>");
        let d = rest.find("<DeleteMarker>");
        let (start, marker) = match (v, d) {
            (None, None) => break,
            (Some(a), Some(b)) => {
                if b < a {
                    (b, true)
                } else {
                    (a, false)
                }
            }
            (Some(a), None) => (a, false),
            (None, Some(b)) => (b, true),
        };
        let (open, close) = if marker {
            ("<DeleteMarker>", "</DeleteMarker>")
        } else {
            ("<Version>", "</Version>")
        };
        let body_at = start + open.len();
        let end = body_at
            + rest[body_at..]
                .find(close)
                .unwrap_or_else(|| panic!("unterminated {open} in {xml}"));
        let inner = &rest[body_at..end];
        let field = |n: &str| {
            xml_field(inner, n).unwrap_or_else(|| panic!("no <{n}> in {open}{inner}{close}"))
        };
        let is_latest = field("IsLatest");
        assert!(
            is_latest == "true" || is_latest == "false",
            "IsLatest {is_latest:?}"
        );
        out.push(Entry {
            marker,
            key: field("Key"),
            version_id: field("VersionId"),
            is_latest: is_latest == "true",
        });
        rest = &rest[end + close.len()..];
    }
    out
}

/// One ListObjectVersions page, raw: (status, body text, entries).
async fn list_versions_page(
    server: &TestServer,
    bucket: &str,
    query: &str,
) -> (String, Vec<Entry>) {
    let sep = if query.is_empty() { "" } else { "&" };
    let r = raw(
        server,
        "GET",
        &format!("/{bucket}?versions{sep}{query}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "ListObjectVersions {query}: {}", r.text());
    let text = r.text();
    let entries = parse_entries(&text);
    (text, entries)
}

/// Every version and delete marker of `bucket` (one page of up to 1000).
async fn all_entries(server: &TestServer, bucket: &str) -> Vec<Entry> {
    let (text, entries) = list_versions_page(server, bucket, "max-keys=1000").await;
    assert_eq!(
        xml_field(&text, "IsTruncated").as_deref(),
        Some("false"),
        "{text}"
    );
    entries
}

fn entries_of<'a>(entries: &'a [Entry], key: &str) -> Vec<&'a Entry> {
    entries.iter().filter(|e| e.key == key).collect()
}

/// (marker?, version id) of `key`'s entries, newest first.
fn history(entries: &[Entry], key: &str) -> Vec<(bool, String)> {
    entries_of(entries, key)
        .into_iter()
        .map(|e| (e.marker, e.version_id.clone()))
        .collect()
}

fn v(id: &str) -> (bool, String) {
    (false, id.to_owned())
}

fn dm(id: &str) -> (bool, String) {
    (true, id.to_owned())
}

/// Asserts that exactly the newest entry of every key is `IsLatest`.
fn assert_latest_flags(entries: &[Entry]) {
    let mut seen = BTreeSet::new();
    for e in entries {
        let first = seen.insert(e.key.clone());
        assert_eq!(
            e.is_latest, first,
            "IsLatest must be set on the newest entry of a key only: {entries:#?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Bucket versioning state
// ---------------------------------------------------------------------------

/// PutBucketVersioning: "If the versioning state has never been set on a
/// bucket, it has no versioning state; a GetBucketVersioning request does
/// not return a versioning state value."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_bucket_versioning_of_a_new_bucket_has_no_status() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "never-versioned").await;
    assert_eq!(
        versioning_status(&c, "never-versioned").await,
        (None, None),
        "a bucket that was never versioned"
    );
    let r = raw(&server, "GET", "/never-versioned?versioning", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains("<VersioningConfiguration"), "{text}");
    assert!(!text.contains("<Status>"), "no Status element: {text}");
    assert!(
        !text.contains("<MfaDelete>"),
        "no MfaDelete element: {text}"
    );
}

/// PutBucketVersioning: the state is `Enabled` or `Suspended`, and
/// GetBucketVersioning reports what was set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_bucket_versioning_enabled_and_suspended_are_reported() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "states").await;
    set_versioning(&c, "states", BucketVersioningStatus::Enabled).await;
    assert_eq!(
        versioning_status(&c, "states").await.0,
        Some(BucketVersioningStatus::Enabled)
    );
    set_versioning(&c, "states", BucketVersioningStatus::Suspended).await;
    assert_eq!(
        versioning_status(&c, "states").await.0,
        Some(BucketVersioningStatus::Suspended)
    );
    set_versioning(&c, "states", BucketVersioningStatus::Enabled).await;
    assert_eq!(
        versioning_status(&c, "states").await.0,
        Some(BucketVersioningStatus::Enabled)
    );
    // Raw XML shows the element itself.
    let r = raw(&server, "GET", "/states?versioning", &[], b"").await;
    assert_eq!(
        xml_field(&r.text(), "Status").as_deref(),
        Some("Enabled"),
        "{}",
        r.text()
    );
    // Suspending a bucket that was never versioned is allowed too.
    create_bucket(&c, "suspended-first").await;
    set_versioning(&c, "suspended-first", BucketVersioningStatus::Suspended).await;
    assert_eq!(
        versioning_status(&c, "suspended-first").await.0,
        Some(BucketVersioningStatus::Suspended)
    );
}

/// User Guide, "Using versioning in S3 buckets": once versioning is enabled
/// the bucket can never return to the unversioned state, only be suspended.
/// The Status element takes `Enabled | Suspended` only (VersioningConfiguration),
/// so any other value does not validate against the schema: 400 MalformedXML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_bucket_cannot_return_to_unversioned() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "no-way-back").await;
    set_versioning(&c, "no-way-back", BucketVersioningStatus::Enabled).await;
    set_versioning(&c, "no-way-back", BucketVersioningStatus::Suspended).await;
    assert_eq!(
        versioning_status(&c, "no-way-back").await.0,
        Some(BucketVersioningStatus::Suspended),
        "suspended, not unversioned"
    );
    for status in ["Disabled", "Off"] {
        let body = format!(
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Status>{status}</Status></VersioningConfiguration>"
        );
        let md5 = md5_b64(body.as_bytes());
        let r = raw(
            &server,
            "PUT",
            "/no-way-back?versioning",
            &[("content-md5", md5.as_str())],
            body.as_bytes(),
        )
        .await;
        r.assert_s3_error(400, "MalformedXML", &format!("Status {status:?}"));
        assert_eq!(
            versioning_status(&c, "no-way-back").await.0,
            Some(BucketVersioningStatus::Suspended),
            "after a refused Status {status:?}"
        );
    }
}

/// Cairn does not implement MFA delete (it has no MFA devices). Turning it
/// on must fail rather than be silently accepted: a client that asked for
/// MFA-protected deletes must not believe it has them. The code we expect
/// is 501 NotImplemented (S3's code for "functionality that is not
/// implemented"); any 4xx refusal is also accepted, since S3 itself refuses
/// the request with a 4xx when no valid `x-amz-mfa` accompanies it
/// (PutBucketVersioning: to enable MFA delete "you must include the
/// x-amz-mfa request header"). Either way the state must not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_delete_enabled_is_refused() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "mfa").await;
    for mfa_header in [None, Some("arn:aws:iam::123456789012:mfa/user 123456")] {
        let res = c
            .put_bucket_versioning()
            .bucket("mfa")
            .set_mfa(mfa_header.map(str::to_owned))
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .mfa_delete(MfaDelete::Enabled)
                    .build(),
            )
            .send()
            .await;
        let e = match res {
            Ok(_) => panic!("MfaDelete=Enabled (x-amz-mfa {mfa_header:?}) was accepted"),
            Err(e) => e,
        };
        let status = sdk_error_status(&e).unwrap_or_else(|| panic!("no response: {}", show(&e)));
        assert!(
            (400..500).contains(&status) || status == 501,
            "MfaDelete=Enabled: expected 501 NotImplemented or a 4xx, got {status}: {}",
            show(&e)
        );
        eprintln!(
            "MfaDelete=Enabled (x-amz-mfa {mfa_header:?}): {status} {:?}",
            sdk_error_code(&e)
        );
        let (st, mfa) = versioning_status(&c, "mfa").await;
        assert_eq!(st, None, "a refused request must not enable versioning");
        assert_ne!(mfa, Some(MfaDeleteStatus::Enabled));
    }
}

// ---------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------

/// PutBucketVersioning: "Enabled—Enables versioning for the objects in the
/// bucket. All objects added to the bucket receive a unique version ID."
/// ListObjectVersions / User Guide "Retrieving object versions": versions
/// of a key are listed newest first, `IsLatest` on the current one only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_get_distinct_version_ids_listed_newest_first() {
    let (server, c) = versioned_bucket("ordering").await;
    let mut ids = Vec::new();
    for i in 0..5u8 {
        let (vid, etag) = put_version(&c, "ordering", "k", &[i; 100]).await;
        assert_eq!(etag, format!("\"{}\"", md5_hex(&[i; 100])));
        ids.push(vid);
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "version ids repeat: {ids:?}");

    let entries = all_entries(&server, "ordering").await;
    let newest_first: Vec<(bool, String)> = ids.iter().rev().map(|i| v(i)).collect();
    assert_eq!(history(&entries, "k"), newest_first);
    assert_latest_flags(&entries);

    // The SDK's view agrees: sizes, ETags and flags per version.
    let out = c
        .list_object_versions()
        .bucket("ordering")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectVersions: {}", show(&e)));
    assert!(out.delete_markers().is_empty());
    let listed: Vec<(&str, bool, &str, i64)> = out
        .versions()
        .iter()
        .map(|x| {
            (
                x.version_id().unwrap(),
                x.is_latest().unwrap(),
                x.e_tag().unwrap(),
                x.size().unwrap(),
            )
        })
        .collect();
    let etags: Vec<String> = (0..5u8)
        .rev()
        .map(|i| format!("\"{}\"", md5_hex(&[i; 100])))
        .collect();
    let want: Vec<(&str, bool, &str, i64)> = ids
        .iter()
        .rev()
        .zip(&etags)
        .enumerate()
        .map(|(n, (id, e))| (id.as_str(), n == 0, e.as_str(), 100))
        .collect();
    assert_eq!(listed, want);
}

/// GetObject / HeadObject `versionId`: "Version ID used to reference a
/// specific version of the object"; the response's `x-amz-version-id`
/// names it. A request without a version id gets the current version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_head_with_version_id_return_that_version() {
    let (_server, c) = versioned_bucket("by-id").await;
    let mut rng = Rng::new(test_seed(
        "get_and_head_with_version_id_return_that_version",
    ));
    let mut written = Vec::new();
    for size in [10usize, 300 * KIB + 7, 0, 2 * MIB + 1] {
        let body = rng.bytes(size);
        let (vid, etag) = put_version(&c, "by-id", "obj", &body).await;
        written.push((vid, etag, body));
    }
    for (vid, etag, body) in &written {
        let (got, got_vid, got_etag) = get_version(&c, "by-id", "obj", vid).await;
        assert!(got == *body, "GET ?versionId={vid}: wrong bytes");
        assert_eq!(
            got_vid.as_deref(),
            Some(vid.as_str()),
            "GET x-amz-version-id"
        );
        assert_eq!(got_etag.as_deref(), Some(etag.as_str()), "GET ETag");
        let h = c
            .head_object()
            .bucket("by-id")
            .key("obj")
            .version_id(vid)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD ?versionId={vid}: {}", show(&e)));
        assert_eq!(h.version_id(), Some(vid.as_str()), "HEAD x-amz-version-id");
        assert_eq!(h.e_tag(), Some(etag.as_str()), "HEAD ETag");
        assert_eq!(h.content_length(), Some(body.len() as i64), "HEAD length");
        assert_ne!(h.delete_marker(), Some(true));
    }
    // A ranged GET of an older version reads that version.
    let (vid, _, body) = &written[1];
    let out = c
        .get_object()
        .bucket("by-id")
        .key("obj")
        .version_id(vid)
        .range("bytes=1000-1999")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ranged GET ?versionId: {}", show(&e)));
    let got = out.body.collect().await.unwrap().into_bytes();
    assert!(
        got.as_ref() == &body[1000..2000],
        "ranged GET of an old version"
    );
    // No version id: the latest.
    let (latest_vid, _, latest_body) = written.last().unwrap();
    let out = c
        .get_object()
        .bucket("by-id")
        .key("obj")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET latest: {}", show(&e)));
    assert_eq!(out.version_id(), Some(latest_vid.as_str()));
    let got = out.body.collect().await.unwrap().into_bytes();
    assert!(got.as_ref() == latest_body.as_slice(), "GET latest bytes");
}

/// User Guide, "How S3 Versioning works": objects stored before versioning
/// was enabled have the version ID `null`; enabling versioning does not
/// change them, and later PUTs add versions on top of the `null` one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_written_before_versioning_keeps_version_id_null() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "late").await;
    let vid = put_plain(&c, "late", "old", b"before versioning").await;
    assert!(
        vid.is_none() || vid.as_deref() == Some("null"),
        "PUT in a never-versioned bucket returned version id {vid:?}"
    );
    set_versioning(&c, "late", BucketVersioningStatus::Enabled).await;

    let entries = all_entries(&server, "late").await;
    assert_eq!(history(&entries, "old"), vec![v("null")]);
    assert!(entries[0].is_latest);

    let (v1, _) = put_version(&c, "late", "old", b"first versioned").await;
    let (v2, _) = put_version(&c, "late", "old", b"second versioned").await;
    let entries = all_entries(&server, "late").await;
    assert_eq!(history(&entries, "old"), vec![v(&v2), v(&v1), v("null")]);
    assert_latest_flags(&entries);

    let (body, got_vid, etag) = get_version(&c, "late", "old", "null").await;
    assert_eq!(body, b"before versioning");
    // Once the bucket has had versioning, reads name the null version
    // `null` (S3 answers `x-amz-version-id: null`; versitygw#2165 records
    // S3's answer), while a PUT in a suspended bucket omits the header.
    assert_eq!(
        got_vid.as_deref(),
        Some("null"),
        "GET ?versionId=null answered version {got_vid:?}"
    );
    assert_eq!(
        etag.as_deref(),
        Some(format!("\"{}\"", md5_hex(b"before versioning")).as_str())
    );
    let h = c
        .head_object()
        .bucket("late")
        .key("old")
        .version_id("null")
        .send()
        .await
        .unwrap_or_else(|e| panic!("HEAD ?versionId=null: {}", show(&e)));
    assert_eq!(h.content_length(), Some(b"before versioning".len() as i64));
    assert_eq!(get_bytes(&c, "late", "old").await, b"second versioned");
}

/// User Guide, "Adding objects to versioning-suspended buckets": a PUT
/// stores the object with version ID `null`; "If a null version is already
/// in the bucket and you add another object with the same key, the added
/// object overwrites the original null version", while versions with other
/// ids are not overwritten, and the PUT version becomes the current one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_in_a_suspended_bucket_replaces_only_the_null_version() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "suspended").await;
    // "pre" has a null version from before versioning was ever enabled.
    put_plain(&c, "suspended", "pre", b"pre null").await;
    set_versioning(&c, "suspended", BucketVersioningStatus::Enabled).await;
    let (a1, _) = put_version(&c, "suspended", "k", b"k one").await;
    let (a2, _) = put_version(&c, "suspended", "k", b"k two").await;
    let (p1, _) = put_version(&c, "suspended", "pre", b"pre one").await;
    set_versioning(&c, "suspended", BucketVersioningStatus::Suspended).await;

    let vid = put_plain(&c, "suspended", "k", b"k null 1").await;
    assert!(
        vid.is_none() || vid.as_deref() == Some("null"),
        "PUT in a suspended bucket answered version id {vid:?}"
    );
    let entries = all_entries(&server, "suspended").await;
    assert_eq!(history(&entries, "k"), vec![v("null"), v(&a2), v(&a1)]);

    put_plain(&c, "suspended", "k", b"k null 2").await;
    put_plain(&c, "suspended", "pre", b"pre null 2").await;
    let entries = all_entries(&server, "suspended").await;
    assert_eq!(
        history(&entries, "k"),
        vec![v("null"), v(&a2), v(&a1)],
        "the second PUT replaced the null version, nothing else"
    );
    assert_eq!(
        history(&entries, "pre"),
        vec![v("null"), v(&p1)],
        "the pre-versioning null version was replaced"
    );
    assert_latest_flags(&entries);

    assert_eq!(get_bytes(&c, "suspended", "k").await, b"k null 2");
    assert_eq!(
        get_version(&c, "suspended", "k", "null").await.0,
        b"k null 2"
    );
    assert_eq!(get_version(&c, "suspended", "k", &a1).await.0, b"k one");
    assert_eq!(get_version(&c, "suspended", "k", &a2).await.0, b"k two");
    assert_eq!(
        get_version(&c, "suspended", "pre", "null").await.0,
        b"pre null 2"
    );
    assert_eq!(get_version(&c, "suspended", "pre", &p1).await.0, b"pre one");
}

/// User Guide, "Deleting objects from versioning-suspended buckets": a
/// simple DELETE removes the null version (if any) and inserts a delete
/// marker whose version ID is `null`; other versions stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_in_a_suspended_bucket_puts_a_null_delete_marker() {
    let (server, c) = versioned_bucket("suspended-delete").await;
    let (v1, _) = put_version(&c, "suspended-delete", "k", b"kept").await;
    set_versioning(&c, "suspended-delete", BucketVersioningStatus::Suspended).await;
    put_plain(&c, "suspended-delete", "k", b"null content").await;

    let (marker, vid) = simple_delete(&c, "suspended-delete", "k").await;
    assert_eq!(marker, Some(true), "x-amz-delete-marker");
    assert_eq!(vid.as_deref(), Some("null"), "the marker's version id");
    let entries = all_entries(&server, "suspended-delete").await;
    assert_eq!(history(&entries, "k"), vec![dm("null"), v(&v1)]);
    assert_latest_flags(&entries);
    assert!(!object_exists(&c, "suspended-delete", "k").await);
    assert_eq!(
        get_version(&c, "suspended-delete", "k", &v1).await.0,
        b"kept"
    );

    // Without a null version the DELETE only adds the (null) marker.
    let (w1, _) = {
        set_versioning(&c, "suspended-delete", BucketVersioningStatus::Enabled).await;
        let r = put_version(&c, "suspended-delete", "other", b"other").await;
        set_versioning(&c, "suspended-delete", BucketVersioningStatus::Suspended).await;
        r
    };
    let (marker, vid) = simple_delete(&c, "suspended-delete", "other").await;
    assert_eq!((marker, vid.as_deref()), (Some(true), Some("null")));
    let entries = all_entries(&server, "suspended-delete").await;
    assert_eq!(history(&entries, "other"), vec![dm("null"), v(&w1)]);
}

// ---------------------------------------------------------------------------
// Delete markers
// ---------------------------------------------------------------------------

/// DeleteObject API reference and User Guide "Deleting object versions": a
/// DELETE without a version id in a versioning-enabled bucket returns 204,
/// `x-amz-delete-marker: true` and the new marker's `x-amz-version-id`;
/// the marker becomes the current version and nothing is erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_without_version_id_creates_a_delete_marker() {
    let (server, c) = versioned_bucket("markers").await;
    let (v1, _) = put_version(&c, "markers", "k", b"one").await;
    let (v2, _) = put_version(&c, "markers", "k", b"two").await;

    let r = raw(
        &server,
        "DELETE",
        &object_path("markers", "k", None),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-delete-marker"), Some("true"));
    let m = r
        .header("x-amz-version-id")
        .expect("x-amz-version-id of the delete marker")
        .to_owned();
    assert!(
        m != v1 && m != v2 && m != "null" && !m.is_empty(),
        "marker id {m:?}"
    );

    let entries = all_entries(&server, "markers").await;
    assert_eq!(history(&entries, "k"), vec![dm(&m), v(&v2), v(&v1)]);
    assert_latest_flags(&entries);
    // The SDK's typed view: one DeleteMarker entry, IsLatest.
    let out = c
        .list_object_versions()
        .bucket("markers")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectVersions: {}", show(&e)));
    assert_eq!(out.delete_markers().len(), 1);
    let d = &out.delete_markers()[0];
    assert_eq!(
        (d.key(), d.version_id(), d.is_latest()),
        (Some("k"), Some(m.as_str()), Some(true))
    );
    assert!(d.last_modified().is_some(), "DeleteMarker LastModified");
    assert_eq!(out.versions().len(), 2);
    assert!(out.versions().iter().all(|x| x.is_latest() == Some(false)));
    // Both versions are still there, by id.
    assert_eq!(get_version(&c, "markers", "k", &v1).await.0, b"one");
    assert_eq!(get_version(&c, "markers", "k", &v2).await.0, b"two");
}

/// User Guide, "Working with delete markers": when the current version is a
/// delete marker a GET gets "A 404 (Object not found) error" and "A
/// response header, x-amz-delete-marker: true"; HeadObject behaves the
/// same way (HEAD answers have no body, so only status and header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_head_of_a_deleted_key_are_404_with_the_delete_marker_header() {
    let (server, c) = versioned_bucket("gone").await;
    put_version(&c, "gone", "k", b"data").await;
    simple_delete(&c, "gone", "k").await;

    let r = raw(&server, "GET", &object_path("gone", "k", None), &[], b"").await;
    r.assert_s3_error(
        404,
        "NoSuchKey",
        "GET of a key whose latest is a delete marker",
    );
    assert_eq!(
        r.header("x-amz-delete-marker"),
        Some("true"),
        "GET 404 header"
    );
    let r = raw(&server, "HEAD", &object_path("gone", "k", None), &[], b"").await;
    assert_eq!(
        r.status, 404,
        "HEAD of a key whose latest is a delete marker"
    );
    assert_eq!(
        r.header("x-amz-delete-marker"),
        Some("true"),
        "HEAD 404 header"
    );

    // Through the SDK: NoSuchKey, and the header on the raw response.
    let e = expect_err(
        c.get_object().bucket("gone").key("k").send().await,
        404,
        Some("NoSuchKey"),
        "SDK GET",
    );
    assert_eq!(
        err_header(&e, "x-amz-delete-marker").as_deref(),
        Some("true")
    );
    // A key that never existed has no such header.
    let r = raw(
        &server,
        "GET",
        &object_path("gone", "never", None),
        &[],
        b"",
    )
    .await;
    r.assert_s3_error(404, "NoSuchKey", "GET of a key that never existed");
    assert_eq!(r.header("x-amz-delete-marker"), None);
}

/// GetObject / HeadObject API reference: "If the specified version in the
/// request is a delete marker, the response returns a 405 Method Not
/// Allowed error and the Last-Modified: timestamp response header."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_head_of_a_delete_marker_by_version_id_are_405() {
    let (server, c) = versioned_bucket("marker-by-id").await;
    put_version(&c, "marker-by-id", "k", b"data").await;
    let (_, m) = simple_delete(&c, "marker-by-id", "k").await;
    let m = m.expect("marker version id");

    let path = object_path("marker-by-id", "k", Some(&m));
    let r = raw(&server, "GET", &path, &[], b"").await;
    r.assert_s3_error(405, "MethodNotAllowed", "GET ?versionId=<delete marker>");
    assert!(
        r.header("last-modified").is_some(),
        "GET 405: no Last-Modified"
    );
    let r = raw(&server, "HEAD", &path, &[], b"").await;
    assert_eq!(r.status, 405, "HEAD ?versionId=<delete marker>");
    assert!(
        r.header("last-modified").is_some(),
        "HEAD 405: no Last-Modified"
    );

    expect_err(
        c.get_object()
            .bucket("marker-by-id")
            .key("k")
            .version_id(&m)
            .send()
            .await,
        405,
        Some("MethodNotAllowed"),
        "SDK GET of a delete marker",
    );
}

/// User Guide, "Working with delete markers": "a GET Bucket request does
/// not return objects whose current version is a delete marker" (the
/// figure), for ListObjectsV2 and ListObjects alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_objects_hides_keys_whose_latest_is_a_delete_marker() {
    let (_server, c) = versioned_bucket("hidden").await;
    for k in ["a", "b", "c", "dir/x", "dir/y"] {
        put_version(&c, "hidden", k, k.as_bytes()).await;
        put_version(&c, "hidden", k, b"again").await;
    }
    simple_delete(&c, "hidden", "b").await;
    simple_delete(&c, "hidden", "dir/y").await;
    simple_delete(&c, "hidden", "never-existed").await;

    let keys = list_keys(&c, "hidden").await;
    assert_eq!(keys, vec!["a", "c", "dir/x"]);
    let v1 = c
        .list_objects()
        .bucket("hidden")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjects: {}", show(&e)));
    let v1_keys: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(v1_keys, vec!["a", "c", "dir/x"]);
    // A prefix whose only keys are deleted is no CommonPrefix.
    simple_delete(&c, "hidden", "dir/x").await;
    let out = c
        .list_objects_v2()
        .bucket("hidden")
        .delimiter("/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2: {}", show(&e)));
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["a", "c"]);
    assert!(
        out.common_prefixes().is_empty(),
        "{:?}",
        out.common_prefixes()
    );
    assert_eq!(out.key_count(), Some(2));
}

/// User Guide, "Removing delete markers to make an older version current":
/// a DELETE with the marker's version id removes the marker (response 204,
/// `x-amz-version-id` of the marker, `x-amz-delete-marker: true`) and a
/// simple GET returns the previous version again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_delete_marker_brings_the_object_back() {
    let (server, c) = versioned_bucket("undelete").await;
    let (v1, _) = put_version(&c, "undelete", "k", b"one").await;
    let (v2, _) = put_version(&c, "undelete", "k", b"two").await;
    let (_, m) = simple_delete(&c, "undelete", "k").await;
    let m = m.expect("marker version id");

    let r = raw(
        &server,
        "DELETE",
        &object_path("undelete", "k", Some(&m)),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-version-id"), Some(m.as_str()));
    assert_eq!(r.header("x-amz-delete-marker"), Some("true"));

    assert_eq!(get_bytes(&c, "undelete", "k").await, b"two");
    let entries = all_entries(&server, "undelete").await;
    assert_eq!(history(&entries, "k"), vec![v(&v2), v(&v1)]);
    assert_latest_flags(&entries);
    let keys = list_keys(&c, "undelete").await;
    assert_eq!(keys, vec!["k"]);
}

/// User Guide, "Managing delete markers": "If you use a DeleteObject request
/// where the current version is a delete marker (without specifying the
/// version ID of the delete marker), Amazon S3 does not delete the delete
/// marker, but instead PUTs another delete marker."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simple_delete_of_a_deleted_key_adds_another_delete_marker() {
    let (server, c) = versioned_bucket("double").await;
    let (v1, _) = put_version(&c, "double", "k", b"one").await;
    let (_, m1) = simple_delete(&c, "double", "k").await;
    let (marker, m2) = simple_delete(&c, "double", "k").await;
    assert_eq!(marker, Some(true));
    let (m1, m2) = (m1.unwrap(), m2.unwrap());
    assert_ne!(m1, m2, "a second marker with its own version id");
    let entries = all_entries(&server, "double").await;
    assert_eq!(history(&entries, "k"), vec![dm(&m2), dm(&m1), v(&v1)]);
    assert_latest_flags(&entries);
    // Removing the newer marker leaves the object deleted (the older one is
    // now current); removing both brings it back.
    delete_version(&c, "double", "k", &m2).await;
    assert!(!object_exists(&c, "double", "k").await);
    delete_version(&c, "double", "k", &m1).await;
    assert_eq!(get_bytes(&c, "double", "k").await, b"one");
}

// ---------------------------------------------------------------------------
// Permanent deletes and version ids
// ---------------------------------------------------------------------------

/// User Guide, "Deleting object versions": "To delete versioned objects
/// permanently, you must use DELETE Object versionId"; DeleteObject returns
/// the deleted version's id in `x-amz-version-id`. A GET of that id then
/// fails with 404 NoSuchVersion; deleting the current version makes the
/// previous one current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_version_id_removes_that_version_permanently() {
    let (server, c) = versioned_bucket("permanent").await;
    let (v1, _) = put_version(&c, "permanent", "k", b"one").await;
    let (v2, _) = put_version(&c, "permanent", "k", b"two").await;
    let (v3, _) = put_version(&c, "permanent", "k", b"three").await;

    // A noncurrent version.
    let r = raw(
        &server,
        "DELETE",
        &object_path("permanent", "k", Some(&v2)),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-amz-version-id"), Some(v2.as_str()));
    assert_ne!(
        r.header("x-amz-delete-marker"),
        Some("true"),
        "the deleted version was no delete marker"
    );
    expect_err(
        c.get_object()
            .bucket("permanent")
            .key("k")
            .version_id(&v2)
            .send()
            .await,
        404,
        Some("NoSuchVersion"),
        "GET of a permanently deleted version",
    );
    expect_err(
        c.head_object()
            .bucket("permanent")
            .key("k")
            .version_id(&v2)
            .send()
            .await,
        404,
        None,
        "HEAD of a permanently deleted version",
    );
    let entries = all_entries(&server, "permanent").await;
    assert_eq!(history(&entries, "k"), vec![v(&v3), v(&v1)]);
    assert_eq!(get_bytes(&c, "permanent", "k").await, b"three");

    // The current version: the previous one becomes current, no marker.
    let (marker, vid) = delete_version(&c, "permanent", "k", &v3).await;
    assert_eq!(vid.as_deref(), Some(v3.as_str()));
    assert_ne!(marker, Some(true));
    assert_eq!(get_bytes(&c, "permanent", "k").await, b"one");
    let entries = all_entries(&server, "permanent").await;
    assert_eq!(history(&entries, "k"), vec![v(&v1)]);
    assert_latest_flags(&entries);

    // The last version: the key is gone without a trace (no marker).
    delete_version(&c, "permanent", "k", &v1).await;
    assert!(all_entries(&server, "permanent").await.is_empty());
    let r = raw(
        &server,
        "GET",
        &object_path("permanent", "k", None),
        &[],
        b"",
    )
    .await;
    r.assert_s3_error(404, "NoSuchKey", "GET after every version was deleted");
    assert_eq!(r.header("x-amz-delete-marker"), None);
}

/// S3 answers a `versionId` it cannot parse with 400 InvalidArgument
/// ("Invalid version id specified"), and an empty one with 400
/// InvalidArgument ("Version id cannot be the empty string"). These are
/// S3's observed answers (quoted by the SDKs' and other implementations'
/// issue trackers); the API reference documents only the parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_empty_version_ids_are_400_invalid_argument() {
    let (server, c) = versioned_bucket("bad-ids").await;
    put_version(&c, "bad-ids", "k", b"data").await;
    for (q, what) in [
        ("versionId=", "empty versionId"),
        ("versionId=not%20a%20version%20id%21", "malformed versionId"),
    ] {
        for method in ["GET", "DELETE"] {
            let r = raw(&server, method, &format!("/bad-ids/k?{q}"), &[], b"").await;
            r.assert_s3_error(400, "InvalidArgument", &format!("{method} with {what}"));
        }
        let r = raw(&server, "HEAD", &format!("/bad-ids/k?{q}"), &[], b"").await;
        assert_eq!(r.status, 400, "HEAD with {what}");
    }
    // Nothing was deleted.
    assert_eq!(get_bytes(&c, "bad-ids", "k").await, b"data");
    assert_eq!(all_entries(&server, "bad-ids").await.len(), 1);
}

// ---------------------------------------------------------------------------
// ListObjectVersions: paging, prefixes, encoding
// ---------------------------------------------------------------------------

/// The versions each key should list, newest first: (marker?, version id).
type Model = BTreeMap<String, Vec<(bool, String)>>;

/// Builds keys with several versions, delete markers and a `null` version.
async fn build_history(server: &TestServer, c: &aws_sdk_s3::Client, bucket: &str) -> Model {
    let mut model = Model::new();
    create_bucket(c, bucket).await;
    // Written before versioning: a null version.
    put_plain(c, bucket, "epsilon", b"null").await;
    model.insert("epsilon".to_owned(), vec![v("null")]);
    set_versioning(c, bucket, BucketVersioningStatus::Enabled).await;

    async fn put(c: &aws_sdk_s3::Client, bucket: &str, model: &mut Model, key: &str) {
        let (vid, _) = put_version(c, bucket, key, key.as_bytes()).await;
        model.entry(key.to_owned()).or_default().insert(0, v(&vid));
    }
    async fn del(c: &aws_sdk_s3::Client, bucket: &str, model: &mut Model, key: &str) {
        let (marker, vid) = simple_delete(c, bucket, key).await;
        assert_eq!(marker, Some(true));
        let vid = vid.expect("delete marker version id");
        model.entry(key.to_owned()).or_default().insert(0, dm(&vid));
    }
    let script: &[(&str, bool)] = &[
        ("alpha", true),
        ("alpha", true),
        ("alpha", true),
        ("beta", true),
        ("beta", false),
        ("beta", true),
        ("gamma", true),
        ("gamma", false),
        ("delta", true),
        ("delta", false),
        ("delta", false),
        ("epsilon", true),
        ("dir/one", true),
        ("dir/one", true),
        ("dir/two", true),
        ("dir/two", false),
        ("dir/sub/three", true),
        ("dir/sub/four", false),
        ("zeta", false),
    ];
    for (key, is_put) in script {
        if *is_put {
            put(c, bucket, &mut model, key).await;
        } else {
            del(c, bucket, &mut model, key).await;
        }
    }
    // The model is what the server lists.
    let entries = all_entries(server, bucket).await;
    assert_eq!(flatten(&model, "", None).0, entries, "full listing");
    assert_latest_flags(&entries);
    model
}

/// The entries and common prefixes a listing of `model` must return.
fn flatten(model: &Model, prefix: &str, delimiter: Option<&str>) -> (Vec<Entry>, Vec<String>) {
    let (mut entries, mut prefixes) = (Vec::new(), BTreeSet::new());
    for (key, hist) in model.range(prefix.to_owned()..) {
        if !key.starts_with(prefix) {
            break;
        }
        if let Some(d) = delimiter
            && let Some(i) = key[prefix.len()..].find(d)
        {
            prefixes.insert(key[..prefix.len() + i + d.len()].to_owned());
            continue;
        }
        for (n, (marker, vid)) in hist.iter().enumerate() {
            entries.push(Entry {
                marker: *marker,
                key: key.clone(),
                version_id: vid.clone(),
                is_latest: n == 0,
            });
        }
    }
    (entries, prefixes.into_iter().collect())
}

fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap_or_else(|e| panic!("{s:?} is not percent-encoded UTF-8: {e}"))
        .into_owned()
}

/// Pages through ListObjectVersions with raw requests, following
/// NextKeyMarker / NextVersionIdMarker; returns every entry and common
/// prefix in order (keys decoded when `url` asks for encoding-type=url).
async fn list_all_pages(
    server: &TestServer,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
    url: bool,
) -> (Vec<Entry>, Vec<String>) {
    let dec = |s: String| if url { url_decode(&s) } else { s };
    let (mut entries, mut prefixes) = (Vec::new(), Vec::new());
    let mut markers: Option<(String, Option<String>)> = None;
    for page in 0.. {
        assert!(page < 500, "ListObjectVersions does not terminate");
        let mut q = format!("max-keys={max_keys}&prefix={}", encode_query(prefix));
        if let Some(d) = delimiter {
            q.push_str(&format!("&delimiter={}", encode_query(d)));
        }
        if url {
            q.push_str("&encoding-type=url");
        }
        if let Some((k, vid)) = &markers {
            q.push_str(&format!("&key-marker={}", encode_query(k)));
            if let Some(vid) = vid {
                q.push_str(&format!("&version-id-marker={}", encode_query(vid)));
            }
        }
        let (text, page_entries) = list_versions_page(server, bucket, &q).await;
        let page_prefixes: Vec<String> = blocks(&text, "CommonPrefixes")
            .into_iter()
            .map(|b| dec(xml_field(b, "Prefix").expect("CommonPrefixes/Prefix")))
            .collect();
        let n = page_entries.len() + page_prefixes.len();
        assert!(
            n <= max_keys,
            "a page of {n} entries with max-keys {max_keys}: {text}"
        );
        assert_eq!(
            xml_field(&text, "MaxKeys").as_deref(),
            Some(max_keys.to_string().as_str()),
            "{text}"
        );
        if url {
            assert_eq!(xml_field(&text, "EncodingType").as_deref(), Some("url"));
        }
        entries.extend(page_entries.into_iter().map(|mut e| {
            e.key = dec(e.key);
            e
        }));
        prefixes.extend(page_prefixes);
        match xml_field(&text, "IsTruncated").as_deref() {
            Some("false") => {
                assert!(
                    xml_field(&text, "NextKeyMarker").is_none(),
                    "NextKeyMarker on the last page: {text}"
                );
                break;
            }
            Some("true") => {
                assert!(n > 0, "a truncated page returns something: {text}");
                let k = xml_field(&text, "NextKeyMarker")
                    .unwrap_or_else(|| panic!("truncated page without NextKeyMarker: {text}"));
                let vid = xml_field(&text, "NextVersionIdMarker").filter(|v| !v.is_empty());
                let next = (dec(k), vid);
                assert_ne!(markers.as_ref(), Some(&next), "the markers did not move");
                markers = Some(next);
            }
            other => panic!("IsTruncated {other:?}: {text}"),
        }
    }
    (entries, prefixes)
}

/// ListObjectVersions API reference: `max-keys` bounds the entries per
/// response; a truncated response carries `NextKeyMarker` and
/// `NextVersionIdMarker` "as a starting place in another request to return
/// the rest of the results". Following them with any page size must give
/// exactly the single-page listing: versions and delete markers
/// interleaved in order (keys ascending, each key's entries newest first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_object_versions_pages_through_versions_and_delete_markers() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let model = build_history(&server, &c, "paging").await;
    let want = flatten(&model, "", None);
    for max_keys in [1, 2, 3, 4, 7, 1000] {
        let got = list_all_pages(&server, "paging", "", None, max_keys, false).await;
        assert_eq!(got, want, "max-keys {max_keys}");
    }
    // A prefix alone.
    let want = flatten(&model, "dir/", None);
    for max_keys in [1, 3] {
        let got = list_all_pages(&server, "paging", "dir/", None, max_keys, false).await;
        assert_eq!(got, want, "prefix dir/, max-keys {max_keys}");
    }

    // The SDK paging the same way sees the same versions and markers.
    let (mut versions, mut markers) = (Vec::new(), Vec::new());
    let (mut key_marker, mut vid_marker): (Option<String>, Option<String>) = (None, None);
    for page in 0.. {
        assert!(page < 500, "SDK paging does not terminate");
        let out = c
            .list_object_versions()
            .bucket("paging")
            .max_keys(2)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(vid_marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectVersions: {}", show(&e)));
        for x in out.versions() {
            versions.push((
                x.key().unwrap().to_owned(),
                x.version_id().unwrap().to_owned(),
            ));
        }
        for x in out.delete_markers() {
            markers.push((
                x.key().unwrap().to_owned(),
                x.version_id().unwrap().to_owned(),
            ));
        }
        if out.is_truncated() != Some(true) {
            break;
        }
        key_marker = out.next_key_marker().map(str::to_owned);
        vid_marker = out.next_version_id_marker().map(str::to_owned);
    }
    let all = flatten(&model, "", None).0;
    let pick = |marker: bool| -> Vec<(String, String)> {
        all.iter()
            .filter(|e| e.marker == marker)
            .map(|e| (e.key.clone(), e.version_id.clone()))
            .collect()
    };
    assert_eq!(versions, pick(false), "SDK: versions");
    assert_eq!(markers, pick(true), "SDK: delete markers");
}

/// ListObjectVersions API reference: with a delimiter, keys sharing the
/// part of their name up to the delimiter are rolled up into one
/// `CommonPrefixes` entry (counted once against max-keys), whatever mix of
/// versions and delete markers they have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_object_versions_rolls_keys_up_into_common_prefixes() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    let model = build_history(&server, &c, "prefixes").await;
    for (prefix, delim) in [
        ("", "/"),
        ("dir/", "/"),
        ("dir/sub/", "/"),
        ("d", "/"),
        ("", "a"),
    ] {
        let want = flatten(&model, prefix, Some(delim));
        for max_keys in [1, 2, 5, 1000] {
            let got =
                list_all_pages(&server, "prefixes", prefix, Some(delim), max_keys, false).await;
            assert_eq!(
                got, want,
                "prefix {prefix:?} delimiter {delim:?} max-keys {max_keys}"
            );
        }
    }
    // The top level rolls dir/ up (dir/sub/four is only a delete marker).
    let (_, top) = flatten(&model, "", Some("/"));
    assert_eq!(top, vec!["dir/"]);
    let (_, sub) = flatten(&model, "dir/", Some("/"));
    assert_eq!(sub, vec!["dir/sub/"]);
}

/// ListObjectVersions API reference, `encoding-type=url`: keys (and the
/// markers and prefixes derived from them) in the response are URL-encoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_object_versions_url_encodes_keys_when_asked() {
    let (server, c) = versioned_bucket("encoded").await;
    let mut model = Model::new();
    for key in ["plain", "sp ace/a+b&c", "sp ace/ü=é", "q?uery#frag", "x%y"] {
        for _ in 0..2 {
            let (vid, _) = put_version(&c, "encoded", key, b"x").await;
            model.entry(key.to_owned()).or_default().insert(0, v(&vid));
        }
        let (_, m) = simple_delete(&c, "encoded", key).await;
        model
            .entry(key.to_owned())
            .or_default()
            .insert(0, dm(&m.expect("marker id")));
    }
    for (prefix, delim) in [("", None), ("", Some("/")), ("sp ace/", None)] {
        let want = flatten(&model, prefix, delim);
        for max_keys in [1, 2, 1000] {
            let got = list_all_pages(&server, "encoded", prefix, delim, max_keys, true).await;
            assert_eq!(
                got, want,
                "url: prefix {prefix:?} delim {delim:?} max {max_keys}"
            );
        }
    }
    // The raw document really is encoded: no space, '&' or '?' in a key.
    let (text, entries) = list_versions_page(&server, "encoded", "encoding-type=url").await;
    assert_eq!(entries.len(), 15, "{text}");
    for e in &entries {
        assert!(
            !e.key.contains(' ') && !e.key.contains('&') && !e.key.contains('?'),
            "key {:?} is not URL-encoded",
            e.key
        );
    }
    assert!(
        entries.iter().any(|e| e.key.starts_with("sp%20ace/")),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// DeleteObjects, copies, tagging, multipart
// ---------------------------------------------------------------------------

/// DeleteObjects API reference (DeletedObject): `DeleteMarker` "indicates
/// whether the specified object version that was permanently deleted was
/// (true) or was not (false) a delete marker before deletion. In a simple
/// DELETE, this header indicates whether (true) or not (false) the current
/// version of the object is a delete marker"; `DeleteMarkerVersionId` is
/// "the version ID of the delete marker created as a result of the DELETE
/// operation. If you delete a specific object version, the value returned
/// by this header is the version ID of the object version deleted."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_with_and_without_version_ids() {
    let (server, c) = versioned_bucket("multi-delete").await;
    let (plain1, _) = put_version(&c, "multi-delete", "plain", b"p").await;
    let (old1, _) = put_version(&c, "multi-delete", "old", b"o1").await;
    let (old2, _) = put_version(&c, "multi-delete", "old", b"o2").await;
    let (marked1, _) = put_version(&c, "multi-delete", "marked", b"m").await;
    let (_, mk) = simple_delete(&c, "multi-delete", "marked").await;
    let mk = mk.expect("marker id");

    let ident = |k: &str, vid: Option<&str>| {
        ObjectIdentifier::builder()
            .key(k)
            .set_version_id(vid.map(str::to_owned))
            .build()
            .unwrap()
    };
    let out = c
        .delete_objects()
        .bucket("multi-delete")
        .delete(
            Delete::builder()
                .set_objects(Some(vec![
                    ident("plain", None),
                    ident("old", Some(&old1)),
                    ident("marked", Some(&mk)),
                ]))
                .quiet(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObjects: {}", show(&e)));
    assert!(out.errors().is_empty(), "errors: {:?}", out.errors());
    let by_key: BTreeMap<&str, _> = out
        .deleted()
        .iter()
        .map(|d| (d.key().unwrap(), d))
        .collect();
    assert_eq!(by_key.len(), 3, "{:?}", out.deleted());

    // No version id: a delete marker was created.
    let d = by_key["plain"];
    assert_eq!(d.delete_marker(), Some(true), "plain: {d:?}");
    let new_marker = d
        .delete_marker_version_id()
        .unwrap_or_else(|| panic!("plain: no DeleteMarkerVersionId: {d:?}"))
        .to_owned();
    // A noncurrent version deleted by id: no marker involved.
    let d = by_key["old"];
    assert_eq!(d.version_id(), Some(old1.as_str()), "old: {d:?}");
    assert_ne!(d.delete_marker(), Some(true), "old: {d:?}");
    // A delete marker deleted by id.
    let d = by_key["marked"];
    assert_eq!(d.version_id(), Some(mk.as_str()), "marked: {d:?}");
    assert_eq!(d.delete_marker(), Some(true), "marked: {d:?}");
    assert_eq!(
        d.delete_marker_version_id(),
        Some(mk.as_str()),
        "marked: {d:?}"
    );

    let entries = all_entries(&server, "multi-delete").await;
    assert_eq!(
        history(&entries, "plain"),
        vec![dm(&new_marker), v(&plain1)]
    );
    assert_eq!(history(&entries, "old"), vec![v(&old2)]);
    assert_eq!(history(&entries, "marked"), vec![v(&marked1)]);
    assert_latest_flags(&entries);
    assert!(!object_exists(&c, "multi-delete", "plain").await);
    assert_eq!(get_bytes(&c, "multi-delete", "marked").await, b"m");
    assert_eq!(get_bytes(&c, "multi-delete", "old").await, b"o2");

    // Quiet mode reports nothing for successes, versions or not.
    let out = c
        .delete_objects()
        .bucket("multi-delete")
        .delete(
            Delete::builder()
                .set_objects(Some(vec![
                    ident("old", Some(&old2)),
                    ident("plain", Some(&new_marker)),
                ]))
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("quiet DeleteObjects: {}", show(&e)));
    assert!(
        out.deleted().is_empty() && out.errors().is_empty(),
        "{out:?}"
    );
    let entries = all_entries(&server, "multi-delete").await;
    assert!(entries_of(&entries, "old").is_empty());
    assert_eq!(history(&entries, "plain"), vec![v(&plain1)]);
}

/// CopyObject API reference: "To copy a specific version of an object,
/// append ?versionId=<version-id> to the x-amz-copy-source"; the response
/// has `x-amz-copy-source-version-id` (the source version copied) and, in a
/// versioning-enabled destination, `x-amz-version-id` of the new copy.
/// "If the current version of the source object is a delete marker, Amazon
/// S3 behaves as if the object was deleted" (404), and naming a delete
/// marker by version id in x-amz-copy-source is a 400 error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_from_an_older_version_reports_both_version_ids() {
    let (server, c) = versioned_bucket("copies").await;
    let mut rng = Rng::new(test_seed("copy_object_from_an_older_version"));
    let (a, b) = (rng.bytes(200 * KIB + 3), rng.bytes(1000));
    let (va, _) = put_version(&c, "copies", "src", &a).await;
    let (vb, _) = put_version(&c, "copies", "src", &b).await;

    let out = c
        .copy_object()
        .bucket("copies")
        .key("dst")
        .copy_source(format!("copies/src?versionId={}", encode_query(&va)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject ?versionId: {}", show(&e)));
    assert_eq!(out.copy_source_version_id(), Some(va.as_str()));
    let d1 = out
        .version_id()
        .expect("x-amz-version-id of the copy")
        .to_owned();
    assert!(d1 != va && d1 != vb && d1 != "null", "copy version {d1}");
    assert_eq!(
        out.copy_object_result().and_then(|r| r.e_tag()),
        Some(format!("\"{}\"", md5_hex(&a)).as_str())
    );
    assert!(
        get_bytes(&c, "copies", "dst").await == a,
        "copy of the old version"
    );
    assert!(get_version(&c, "copies", "dst", &d1).await.0 == a);

    // Without a version id: the current version, and it says which.
    let out = c
        .copy_object()
        .bucket("copies")
        .key("dst")
        .copy_source("copies/src")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CopyObject latest: {}", show(&e)));
    assert_eq!(out.copy_source_version_id(), Some(vb.as_str()));
    let d2 = out.version_id().expect("second copy version").to_owned();
    assert_ne!(d2, d1);
    let entries = all_entries(&server, "copies").await;
    assert_eq!(history(&entries, "dst"), vec![v(&d2), v(&d1)]);
    assert_eq!(
        history(&entries, "src"),
        vec![v(&vb), v(&va)],
        "source unchanged"
    );

    // The source's current version is a delete marker.
    let (_, m) = simple_delete(&c, "copies", "src").await;
    let m = m.expect("marker id");
    expect_err(
        c.copy_object()
            .bucket("copies")
            .key("dst2")
            .copy_source("copies/src")
            .send()
            .await,
        404,
        Some("NoSuchKey"),
        "copy from a key whose latest is a delete marker",
    );
    expect_err(
        c.copy_object()
            .bucket("copies")
            .key("dst2")
            .copy_source(format!("copies/src?versionId={}", encode_query(&m)))
            .send()
            .await,
        400,
        None,
        "copy naming a delete marker by version id",
    );
    assert!(!object_exists(&c, "copies", "dst2").await);
    // Older versions remain copyable.
    let out = c
        .copy_object()
        .bucket("copies")
        .key("dst2")
        .copy_source(format!("copies/src?versionId={}", encode_query(&vb)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy from a noncurrent version: {}", show(&e)));
    assert_eq!(out.copy_source_version_id(), Some(vb.as_str()));
    assert!(get_bytes(&c, "copies", "dst2").await == b);
}

/// UploadPartCopy API reference: the copy source may name a version
/// (`?versionId=`), and the response's `x-amz-copy-source-version-id` is
/// "the version of the source object that was copied".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_from_older_versions_copies_their_bytes() {
    let (server, c) = versioned_bucket("part-copies").await;
    let mut rng = Rng::new(test_seed("upload_part_copy_from_older_versions"));
    let (a, b, cur) = (
        rng.bytes(5 * MIB + 11),
        rng.bytes(300 * KIB),
        rng.bytes(5 * MIB + 11),
    );
    let (va, _) = put_version(&c, "part-copies", "src", &a).await;
    let (vb, _) = put_version(&c, "part-copies", "src", &b).await;
    put_version(&c, "part-copies", "src", &cur).await;

    let id = c
        .create_multipart_upload()
        .bucket("part-copies")
        .key("dst")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload: {}", show(&e)))
        .upload_id()
        .unwrap()
        .to_owned();
    let mut etags = Vec::new();
    for (n, vid, range, want) in [
        (1, &va, None, &a[..]),
        (2, &vb, Some("bytes=100-1099"), &b[100..1100]),
    ] {
        let out = c
            .upload_part_copy()
            .bucket("part-copies")
            .key("dst")
            .upload_id(&id)
            .part_number(n)
            .copy_source(format!("part-copies/src?versionId={}", encode_query(vid)))
            .set_copy_source_range(range.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPartCopy part {n}: {}", show(&e)));
        assert_eq!(out.copy_source_version_id(), Some(vid.as_str()), "part {n}");
        let etag = out
            .copy_part_result()
            .and_then(|r| r.e_tag())
            .expect("CopyPartResult ETag")
            .to_owned();
        assert_eq!(etag, format!("\"{}\"", md5_hex(want)), "part {n} ETag");
        etags.push(etag);
    }
    let out = c
        .complete_multipart_upload()
        .bucket("part-copies")
        .key("dst")
        .upload_id(&id)
        .multipart_upload(completed(&etags))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload: {}", show(&e)));
    let dst_vid = out.version_id().expect("version id of the completed copy");
    let mut want = a.clone();
    want.extend_from_slice(&b[100..1100]);
    assert!(get_bytes(&c, "part-copies", "dst").await == want);
    let entries = all_entries(&server, "part-copies").await;
    assert_eq!(history(&entries, "dst"), vec![v(dst_vid)]);
}

/// PutObjectTagging / GetObjectTagging API reference: `versionId` names the
/// version whose tag set is replaced or read, and the response's
/// `x-amz-version-id` names it; without it, the current version is meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tagging_with_version_id_touches_only_that_version() {
    let (_server, c) = versioned_bucket("tags").await;
    let (v1, _) = put_version(&c, "tags", "k", b"one").await;
    let (v2, _) = put_version(&c, "tags", "k", b"two").await;
    let tagging = |pairs: &[(&str, &str)]| {
        Tagging::builder()
            .set_tag_set(Some(
                pairs
                    .iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
                    .collect(),
            ))
            .build()
            .unwrap()
    };
    let get_tags = |vid: Option<String>| {
        let c = c.clone();
        async move {
            let out = c
                .get_object_tagging()
                .bucket("tags")
                .key("k")
                .set_version_id(vid.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetObjectTagging {vid:?}: {}", show(&e)));
            let tags: Vec<(String, String)> = out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect();
            (tags, out.version_id().map(str::to_owned))
        }
    };

    let out = c
        .put_object_tagging()
        .bucket("tags")
        .key("k")
        .version_id(&v1)
        .tagging(tagging(&[("age", "old")]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObjectTagging ?versionId: {}", show(&e)));
    assert_eq!(out.version_id(), Some(v1.as_str()));

    let (tags, vid) = get_tags(Some(v1.clone())).await;
    assert_eq!(tags, vec![("age".to_owned(), "old".to_owned())]);
    assert_eq!(vid.as_deref(), Some(v1.as_str()));
    let (tags, vid) = get_tags(None).await;
    assert!(tags.is_empty(), "the latest version has no tags: {tags:?}");
    assert_eq!(vid.as_deref(), Some(v2.as_str()), "latest version id");

    // Tagging the latest leaves the older version's tags alone.
    let out = c
        .put_object_tagging()
        .bucket("tags")
        .key("k")
        .tagging(tagging(&[("age", "new"), ("x", "y")]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObjectTagging latest: {}", show(&e)));
    assert_eq!(out.version_id(), Some(v2.as_str()));
    assert_eq!(get_tags(Some(v2.clone())).await.0.len(), 2);
    assert_eq!(
        get_tags(Some(v1.clone())).await.0,
        vec![("age".to_owned(), "old".to_owned())]
    );
    // The tag count a GET reports is that version's.
    let out = c
        .get_object()
        .bucket("tags")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.tag_count(), Some(1));
    // Deleting the tags of one version.
    let out = c
        .delete_object_tagging()
        .bucket("tags")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObjectTagging ?versionId: {}", show(&e)));
    assert_eq!(out.version_id(), Some(v1.as_str()));
    assert!(get_tags(Some(v1.clone())).await.0.is_empty());
    assert_eq!(get_tags(None).await.0.len(), 2);
}

/// DeleteBucket API reference: "All objects (including all object versions
/// and delete markers) in the bucket must be deleted before the bucket
/// itself can be deleted"; otherwise 409 BucketNotEmpty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_bucket_with_versions_or_delete_markers_left_is_409_bucket_not_empty() {
    let (server, c) = versioned_bucket("leftovers").await;
    let (v1, _) = put_version(&c, "leftovers", "k", b"data").await;
    let (_, m) = simple_delete(&c, "leftovers", "k").await;
    let m = m.expect("marker id");
    // ListObjectsV2 is empty, but a version and a marker remain.
    assert!(list_keys(&c, "leftovers").await.is_empty());
    expect_err(
        c.delete_bucket().bucket("leftovers").send().await,
        409,
        Some("BucketNotEmpty"),
        "DeleteBucket with a version and a delete marker left",
    );
    // Only the delete marker left.
    delete_version(&c, "leftovers", "k", &v1).await;
    assert_eq!(
        history(&all_entries(&server, "leftovers").await, "k"),
        vec![dm(&m)]
    );
    expect_err(
        c.delete_bucket().bucket("leftovers").send().await,
        409,
        Some("BucketNotEmpty"),
        "DeleteBucket with only a delete marker left",
    );
    // Only a noncurrent version left (its marker gone).
    let (v2, _) = put_version(&c, "leftovers", "k", b"again").await;
    let (_, m2) = simple_delete(&c, "leftovers", "k").await;
    delete_version(&c, "leftovers", "k", &m).await;
    delete_version(&c, "leftovers", "k", &m2.unwrap()).await;
    assert_eq!(
        history(&all_entries(&server, "leftovers").await, "k"),
        vec![v(&v2)]
    );
    expect_err(
        c.delete_bucket().bucket("leftovers").send().await,
        409,
        Some("BucketNotEmpty"),
        "DeleteBucket with one version left",
    );
    // Empty at last.
    delete_version(&c, "leftovers", "k", &v2).await;
    c.delete_bucket()
        .bucket("leftovers")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteBucket of an empty versioned bucket: {}", show(&e)));
}

/// CompleteMultipartUpload API reference: "x-amz-version-id: Version ID of
/// the newly created object, in case the bucket has versioning turned on."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_upload_creates_a_new_version() {
    let (server, c) = versioned_bucket("mpu").await;
    let mut rng = Rng::new(test_seed("complete_multipart_upload_creates_a_new_version"));
    let (v1, _) = put_version(&c, "mpu", "big", b"small first version").await;
    let parts = [rng.bytes(5 * MIB), rng.bytes(123 * KIB)];
    let id = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("big")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload: {}", show(&e)))
        .upload_id()
        .unwrap()
        .to_owned();
    let mut etags = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let out = c
            .upload_part()
            .bucket("mpu")
            .key("big")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {}: {}", i + 1, show(&e)));
        etags.push(out.e_tag().unwrap().to_owned());
    }
    let out = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(completed(&etags))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload: {}", show(&e)));
    let v2 = out
        .version_id()
        .expect("x-amz-version-id of the completed upload")
        .to_owned();
    assert!(v2 != v1 && v2 != "null", "version {v2}");
    let etag = multipart_etag(&[md5_raw(&parts[0]), md5_raw(&parts[1])]);
    assert_eq!(out.e_tag(), Some(etag.as_str()));

    let entries = all_entries(&server, "mpu").await;
    assert_eq!(history(&entries, "big"), vec![v(&v2), v(&v1)]);
    assert_latest_flags(&entries);
    let whole = parts.concat();
    let (body, vid, got_etag) = get_version(&c, "mpu", "big", &v2).await;
    assert!(body == whole, "the multipart version's bytes");
    assert_eq!(
        (vid.as_deref(), got_etag.as_deref()),
        (Some(v2.as_str()), Some(etag.as_str()))
    );
    assert_eq!(
        get_version(&c, "mpu", "big", &v1).await.0,
        b"small first version"
    );
}

// ---------------------------------------------------------------------------
// Concurrency and conditional writes
// ---------------------------------------------------------------------------

/// Object Versioning: "if Amazon S3 receives multiple write requests for
/// the same object simultaneously, it stores all of the objects" (PutObject
/// API reference, x-amz-version-id). Eight racing PUTs make eight versions
/// with distinct ids, exactly one of them current, holding one PUT's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_of_one_key_all_become_versions() {
    let (server, c) = versioned_bucket("race").await;
    let mut rng = Rng::new(test_seed("concurrent_puts_of_one_key_all_become_versions"));
    let bodies: Vec<Vec<u8>> = (0..8)
        .map(|i| rng.bytes(if i % 2 == 0 { 1000 + i } else { 256 * KIB + i }))
        .collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let mut tasks = Vec::new();
    for body in &bodies {
        let (c, body, barrier) = (c.clone(), body.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            put_version(&c, "race", "k", &body).await.0
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 8, "version ids repeat: {ids:?}");

    let entries = all_entries(&server, "race").await;
    assert_eq!(entries.len(), 8, "{entries:#?}");
    let listed: BTreeSet<&String> = entries.iter().map(|e| &e.version_id).collect();
    assert_eq!(listed, distinct, "listed ids are the PUTs' ids");
    assert!(entries.iter().all(|e| !e.marker));
    assert_eq!(entries.iter().filter(|e| e.is_latest).count(), 1);
    assert_latest_flags(&entries);

    let latest = &entries[0].version_id;
    let out = c.get_object().bucket("race").key("k").send().await.unwrap();
    assert_eq!(
        out.version_id(),
        Some(latest.as_str()),
        "GET serves the listed latest"
    );
    let got = out.body.collect().await.unwrap().into_bytes().to_vec();
    let i = ids.iter().position(|x| x == latest).unwrap();
    assert!(got == bodies[i], "the latest holds the bytes its PUT sent");
    for (vid, body) in ids.iter().zip(&bodies) {
        assert!(
            get_version(&c, "race", "k", vid).await.0 == *body,
            "version {vid}"
        );
    }
}

async fn put_if(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &[u8],
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<
    aws_sdk_s3::operation::put_object::PutObjectOutput,
    SdkError<aws_sdk_s3::operation::put_object::PutObjectError, HttpResponse>,
> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(if_match.map(str::to_owned))
        .set_if_none_match(if_none_match.map(str::to_owned))
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
}

/// User Guide, "How to prevent object overwrites with conditional writes":
/// the conditions apply to the current version of the object in a
/// versioned bucket. If-Match with the current ETag writes a new version;
/// with an older version's ETag it fails with 412 PreconditionFailed and
/// writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_is_checked_against_the_latest_version() {
    let (server, c) = versioned_bucket("cond").await;
    let (v1, e1) = put_version(&c, "cond", "k", b"one").await;
    let (v2, e2) = put_version(&c, "cond", "k", b"two").await;

    expect_err(
        put_if(&c, "cond", "k", b"stale", Some(&e1), None).await,
        412,
        Some("PreconditionFailed"),
        "If-Match with an older version's ETag",
    );
    expect_err(
        put_if(&c, "cond", "k", b"exists", None, Some("*")).await,
        412,
        Some("PreconditionFailed"),
        "If-None-Match * with a current version",
    );
    let entries = all_entries(&server, "cond").await;
    assert_eq!(
        history(&entries, "k"),
        vec![v(&v2), v(&v1)],
        "nothing written"
    );

    let out = put_if(&c, "cond", "k", b"three", Some(&e2), None)
        .await
        .unwrap_or_else(|e| panic!("If-Match with the latest ETag: {}", show(&e)));
    let v3 = out.version_id().expect("version id").to_owned();
    let entries = all_entries(&server, "cond").await;
    assert_eq!(history(&entries, "k"), vec![v(&v3), v(&v2), v(&v1)]);
    assert_eq!(get_bytes(&c, "cond", "k").await, b"three");
}

/// User Guide, conditional writes: `If-None-Match: *` writes only when no
/// object with the key exists, and "applies only to the current version of
/// objects in a versioned bucket"; a key whose current version is a delete
/// marker behaves as deleted (User Guide, "Working with delete markers"),
/// so the write succeeds and adds a version on top of the marker, which
/// stays. Once the key is live again, If-None-Match fails with 412.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_star_writes_over_a_delete_marker() {
    let (server, c) = versioned_bucket("cond-marker").await;
    let (v1, _) = put_version(&c, "cond-marker", "k", b"one").await;
    let (_, m) = simple_delete(&c, "cond-marker", "k").await;
    let m = m.expect("marker id");

    let out = put_if(&c, "cond-marker", "k", b"reborn", None, Some("*"))
        .await
        .unwrap_or_else(|e| panic!("If-None-Match * over a delete marker: {}", show(&e)));
    let v2 = out.version_id().expect("version id").to_owned();
    let entries = all_entries(&server, "cond-marker").await;
    assert_eq!(history(&entries, "k"), vec![v(&v2), dm(&m), v(&v1)]);
    assert_latest_flags(&entries);
    assert_eq!(get_bytes(&c, "cond-marker", "k").await, b"reborn");
    expect_err(
        put_if(&c, "cond-marker", "k", b"again", None, Some("*")).await,
        412,
        Some("PreconditionFailed"),
        "If-None-Match * once the key is live again",
    );
}

/// If-Match compares with the current version only (User Guide,
/// conditional writes); when that is a delete marker there is no current
/// object to match, as for a key that does not exist, for which S3 answers
/// If-Match with 404 NoSuchKey (inferred: the guide does not spell out the
/// delete-marker case). Nothing is written either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_over_a_delete_marker_is_404_no_such_key() {
    let (server, c) = versioned_bucket("cond-marker-match").await;
    let (v1, e1) = put_version(&c, "cond-marker-match", "k", b"one").await;
    let (_, m) = simple_delete(&c, "cond-marker-match", "k").await;
    let m = m.expect("marker id");
    expect_err(
        put_if(&c, "cond-marker-match", "k", b"x", Some(&e1), None).await,
        404,
        Some("NoSuchKey"),
        "If-Match (the old version's ETag) on a key whose latest is a delete marker",
    );
    let entries = all_entries(&server, "cond-marker-match").await;
    assert_eq!(
        history(&entries, "k"),
        vec![dm(&m), v(&v1)],
        "nothing written"
    );
}

// ---------------------------------------------------------------------------
// boto3
// ---------------------------------------------------------------------------

/// boto3's versioning calls (resource and client APIs, the
/// ListObjectVersions paginator, `object_versions.delete()`) against a
/// server: tests/it/boto3_suite.py, mode `versioning`.
#[test]
fn boto3_versioning_suite() {
    let server = TestServer::start();
    run_boto3_suite(&server, "versioning", &[]);
}
