//! Bucket lifecycle end to end, written from the S3 documentation rather
//! than from Cairn's code: the API reference (PutBucketLifecycleConfiguration,
//! GetBucketLifecycleConfiguration, DeleteBucketLifecycle, LifecycleRuleFilter,
//! LifecycleExpiration, NoncurrentVersionExpiration) and the user guide
//! ("Lifecycle configuration elements", "Expiring objects", "Examples of S3
//! Lifecycle configurations", "How Amazon S3 handles conflicts in lifecycle
//! configurations", "Object Lock considerations").
//!
//! What the documents promise and these tests hold Cairn to:
//! * a configuration round-trips (a rule without `ID` gets one), a PUT
//!   replaces the whole configuration, DELETE answers 204 and GET then
//!   `404 NoSuchLifecycleConfiguration`; invalid documents get AWS's error and
//!   store nothing; only an admin key may change a configuration;
//! * `Expiration` removes a current object in an unversioned bucket, places
//!   one delete marker in a versioned one (a `null` one in a suspended one)
//!   and removes a delete marker that is the only version left;
//!   `NoncurrentVersionExpiration` removes noncurrent versions, keeping the
//!   `NewerNoncurrentVersions` newest; `AbortIncompleteMultipartUpload`
//!   aborts uploads; filters (prefix, tags, size) choose what a rule touches;
//!   a `Disabled` rule does nothing; a version under Object Lock is never
//!   deleted by lifecycle;
//! * GET, HEAD and PUT of an object a rule will expire carry
//!   `x-amz-expiration: expiry-date="<HTTP date>", rule-id="<id>"`, the date
//!   being creation + Days rounded up to the next midnight UTC, and the
//!   shorter of two overlapping expirations winning.
//!
//! Time is compressed: `--lifecycle-day-secs 2` makes a lifecycle "day" two
//! seconds (its "midnight" the next multiple of two seconds since the epoch)
//! and `--lifecycle-interval-secs 1` starts a pass every second, so `Days` 1
//! means two to four seconds. Every wait polls against a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectLockLegalHoldStatus, ObjectLockMode,
    Tag, VersioningConfiguration,
};

use crate::common::*;

/// How long a lifecycle action may take to show (a `Days` 1 action is due
/// within four seconds; passes start every second).
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(200);

/// 2099-01-01T00:00:00Z and 2020-01-01T00:00:00Z, seconds since the epoch.
const Y2099_SECS: i64 = 4_070_908_800;
const PAST_DATE: &str = "2020-01-01T00:00:00Z";

/// A server whose lifecycle "day" is two seconds, with a pass every second.
fn fast_server() -> TestServer {
    TestServer::start_with_args(&[
        "--lifecycle-interval-secs",
        "1",
        "--lifecycle-day-secs",
        "2",
    ])
}

fn passes(server: &TestServer) -> f64 {
    server.metric("cairn_lifecycle_passes_total")
}

fn actions(server: &TestServer, action: &str) -> f64 {
    server.metric_with("cairn_lifecycle_actions_total", &[("action", action)])
}

/// Polls `check` until it holds; panics after [`WAIT`] with the number of
/// lifecycle passes and the server's stderr.
async fn eventually<F, Fut>(server: &TestServer, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if check().await {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {WAIT:?} ({} lifecycle passes); cairn stderr:\n{}",
                passes(server),
                server.stderr_text()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `n` more lifecycle passes have started, so that a state seen
/// once is known to survive further passes.
async fn more_passes(server: &TestServer, n: f64) {
    let start = passes(server);
    eventually(
        server,
        &format!("{n} more lifecycle passes"),
        move || async move { passes(server) >= start + n + 1.0 },
    )
    .await;
}

/// A `<LifecycleConfiguration>` document holding `rules`.
fn config(rules: &str) -> String {
    format!(
        "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</LifecycleConfiguration>"
    )
}

/// One `<Rule>`; `filter` is the whole `<Filter>` element (or a legacy
/// `<Prefix>`, or nothing), `actions` the action elements.
fn rule(id: &str, filter: &str, status: &str, actions: &str) -> String {
    format!("<Rule><ID>{id}</ID>{filter}<Status>{status}</Status>{actions}</Rule>")
}

fn prefix_filter(prefix: &str) -> String {
    format!("<Filter><Prefix>{prefix}</Prefix></Filter>")
}

/// PutBucketLifecycleConfiguration with a hand-written document, signed,
/// with `Content-MD5` (the API reference: "Content-MD5 ... required").
async fn put_lifecycle_raw(server: &TestServer, bucket: &str, xml: &str) -> RawResponse {
    let addr = server.s3_addr();
    RawRequest::new("PUT", &format!("/{bucket}?lifecycle"))
        .header("content-md5", &md5_b64(xml.as_bytes()))
        .header("content-type", "application/xml")
        .body(xml.as_bytes().to_vec())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await
}

/// Like [`put_lifecycle_raw`], panicking unless the server answers 200.
async fn put_lifecycle(server: &TestServer, bucket: &str, xml: &str) {
    let r = put_lifecycle_raw(server, bucket, xml).await;
    assert_eq!(
        r.status,
        200,
        "PutBucketLifecycleConfiguration {bucket}: {}\n{xml}",
        r.text()
    );
}

async fn get_lifecycle_raw(server: &TestServer, bucket: &str) -> RawResponse {
    let addr = server.s3_addr();
    RawRequest::new("GET", &format!("/{bucket}?lifecycle"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await
}

async fn delete_lifecycle_raw(server: &TestServer, bucket: &str) -> RawResponse {
    let addr = server.s3_addr();
    RawRequest::new("DELETE", &format!("/{bucket}?lifecycle"))
        .sign(addr, Payload::Signed)
        .send(addr)
        .await
}

async fn versioned_bucket(c: &aws_sdk_s3::Client, bucket: &str) {
    create_bucket(c, bucket).await;
    set_versioning(c, bucket, BucketVersioningStatus::Enabled).await;
}

async fn set_versioning(c: &aws_sdk_s3::Client, bucket: &str, status: BucketVersioningStatus) {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketVersioning {bucket}: {}", show(&e)));
}

/// Puts `body` at `key` and returns the new version id (`null` in a bucket
/// that never had versioning, or with it suspended).
async fn put_version(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) -> String {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {}", show(&e)))
        .version_id()
        .unwrap_or("null")
        .to_owned()
}

async fn put_tagged(c: &aws_sdk_s3::Client, bucket: &str, key: &str, tagging: &str) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .tagging(tagging)
        .body(b"tagged".to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key} tagged {tagging}: {}", show(&e)));
}

/// One key's history: data versions and delete markers, each as
/// (version id, is latest).
#[derive(Debug, Default)]
struct History {
    versions: Vec<(String, bool)>,
    markers: Vec<(String, bool)>,
}

impl History {
    fn has_version(&self, id: &str) -> bool {
        self.versions.iter().any(|(v, _)| v == id)
    }

    fn latest_is_marker(&self) -> bool {
        self.markers.iter().any(|(_, latest)| *latest)
    }

    fn version_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.versions.iter().map(|(v, _)| v.clone()).collect();
        ids.sort();
        ids
    }
}

async fn history(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> History {
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectVersions {bucket}/{key}: {}", show(&e)));
    let mut h = History::default();
    for v in out.versions() {
        if v.key() == Some(key) {
            h.versions.push((
                v.version_id().unwrap_or("null").to_owned(),
                v.is_latest().unwrap_or(false),
            ));
        }
    }
    for m in out.delete_markers() {
        if m.key() == Some(key) {
            h.markers.push((
                m.version_id().unwrap_or("null").to_owned(),
                m.is_latest().unwrap_or(false),
            ));
        }
    }
    h
}

async fn version_readable(c: &aws_sdk_s3::Client, bucket: &str, key: &str, version: &str) -> bool {
    c.head_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .is_ok()
}

/// Every key in `bucket`, in order (one page: the tests store few).
async fn keys(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = c
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}: {}", show(&e)));
    out.contents()
        .iter()
        .map(|o| o.key().unwrap_or_default().to_owned())
        .collect()
}

/// `expiry-date` and `rule-id` of an `x-amz-expiration` value such as
/// `expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="picture-deletion-rule"`.
fn parse_expiration(value: &str) -> (String, String) {
    let field = |name: &str| {
        let open = format!("{name}=\"");
        let start = value
            .find(&open)
            .unwrap_or_else(|| panic!("no {name} in x-amz-expiration {value:?}"))
            + open.len();
        let len = value[start..]
            .find('"')
            .unwrap_or_else(|| panic!("unterminated {name} in x-amz-expiration {value:?}"));
        value[start..start + len].to_owned()
    };
    (field("expiry-date"), field("rule-id"))
}

fn http_date(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(DateTimeFormat::HttpDate)
        .expect("format an HTTP date")
}

/// The expiry dates S3 may announce for an object last modified at
/// `modified_secs` (whole seconds) under a `Days` rule: creation + days,
/// "rounding the resulting time to the next day midnight UTC". A
/// Last-Modified that is itself on a midnight hides the creation's
/// fraction of a second, so both neighbouring midnights are allowed then.
fn expected_expiry(modified_secs: i64, days: i64) -> Vec<String> {
    const DAY: i64 = 86_400;
    let t = modified_secs + days * DAY;
    let next = (t / DAY + 1) * DAY;
    if t % DAY == 0 {
        vec![http_date(t), http_date(next)]
    } else {
        vec![http_date(next)]
    }
}

// ---------------------------------------------------------------------------
// The configuration API
// ---------------------------------------------------------------------------

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_round_trips_is_replaced_whole_and_deleted() {
    let server = TestServer::start_with_args(&["--lifecycle-interval-secs", "0"]);
    let c = sdk_client(&server);
    create_bucket(&c, "conf").await;

    // GetBucketLifecycleConfiguration: "NoSuchLifecycleConfiguration — The
    // lifecycle configuration does not exist. HTTP Status Code: 404".
    get_lifecycle_raw(&server, "conf").await.assert_s3_error(
        404,
        "NoSuchLifecycleConfiguration",
        "GET ?lifecycle before any PUT",
    );

    let rules = vec![
        LifecycleRule::builder()
            .id("logs")
            .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
            .status(ExpirationStatus::Enabled)
            .expiration(LifecycleExpiration::builder().days(30).build())
            .build()
            .unwrap(),
        LifecycleRule::builder()
            .id("tagged docs")
            .filter(
                LifecycleRuleFilter::builder()
                    .and(
                        LifecycleRuleAndOperator::builder()
                            .prefix("docs/")
                            .tags(tag("class", "draft"))
                            .tags(tag("team", "blue"))
                            .object_size_greater_than(1024)
                            .object_size_less_than(1_048_576)
                            .build(),
                    )
                    .build(),
            )
            .status(ExpirationStatus::Enabled)
            .expiration(
                LifecycleExpiration::builder()
                    .date(DateTime::from_secs(Y2099_SECS))
                    .build(),
            )
            .build()
            .unwrap(),
        LifecycleRule::builder()
            .id("old versions")
            .filter(
                LifecycleRuleFilter::builder()
                    .object_size_greater_than(10)
                    .build(),
            )
            .status(ExpirationStatus::Enabled)
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(7)
                    .newer_noncurrent_versions(3)
                    .build(),
            )
            .build()
            .unwrap(),
        // No ID: "ID ... Unique identifier for the rule" — S3 gives one.
        LifecycleRule::builder()
            .filter(LifecycleRuleFilter::builder().prefix("uploads/").build())
            .status(ExpirationStatus::Disabled)
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(2)
                    .build(),
            )
            .build()
            .unwrap(),
        LifecycleRule::builder()
            .id("markers")
            .filter(LifecycleRuleFilter::builder().build())
            .status(ExpirationStatus::Enabled)
            .expiration(
                LifecycleExpiration::builder()
                    .expired_object_delete_marker(true)
                    .build(),
            )
            .build()
            .unwrap(),
    ];
    // The SDK sends the checksum the operation requires.
    c.put_bucket_lifecycle_configuration()
        .bucket("conf")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketLifecycleConfiguration: {}", show(&e)));

    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("conf")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetBucketLifecycleConfiguration: {}", show(&e)));
    let got = got.rules();
    assert_eq!(got.len(), 5, "{got:#?}");
    let by_id = |id: &str| {
        got.iter()
            .find(|r| r.id() == Some(id))
            .unwrap_or_else(|| panic!("no rule {id:?} in {got:#?}"))
    };

    let logs = by_id("logs");
    assert_eq!(logs.status(), &ExpirationStatus::Enabled);
    assert_eq!(logs.filter().and_then(|f| f.prefix()), Some("logs/"));
    assert_eq!(logs.expiration().and_then(|e| e.days()), Some(30));

    let docs = by_id("tagged docs");
    let and = docs
        .filter()
        .and_then(|f| f.and())
        .unwrap_or_else(|| panic!("no <And> in {docs:#?}"));
    assert_eq!(and.prefix(), Some("docs/"));
    let mut tags: Vec<(&str, &str)> = and.tags().iter().map(|t| (t.key(), t.value())).collect();
    tags.sort();
    assert_eq!(tags, [("class", "draft"), ("team", "blue")]);
    assert_eq!(and.object_size_greater_than(), Some(1024));
    assert_eq!(and.object_size_less_than(), Some(1_048_576));
    assert_eq!(
        docs.expiration().and_then(|e| e.date()).map(DateTime::secs),
        Some(Y2099_SECS)
    );

    let old = by_id("old versions");
    assert_eq!(
        old.filter().and_then(|f| f.object_size_greater_than()),
        Some(10)
    );
    let nve = old.noncurrent_version_expiration().unwrap();
    assert_eq!(nve.noncurrent_days(), Some(7));
    assert_eq!(nve.newer_noncurrent_versions(), Some(3));

    let unnamed = got
        .iter()
        .find(|r| r.abort_incomplete_multipart_upload().is_some())
        .unwrap_or_else(|| panic!("the AbortIncompleteMultipartUpload rule is missing: {got:#?}"));
    assert!(
        unnamed.id().is_some_and(|id| !id.is_empty()),
        "a rule sent without an ID is given one: {unnamed:#?}"
    );
    assert_eq!(unnamed.status(), &ExpirationStatus::Disabled);
    assert_eq!(
        unnamed
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(2)
    );
    assert_eq!(unnamed.filter().and_then(|f| f.prefix()), Some("uploads/"));

    let markers = by_id("markers");
    assert_eq!(
        markers
            .expiration()
            .and_then(|e| e.expired_object_delete_marker()),
        Some(true)
    );

    // "this will overwrite an existing lifecycle configuration": a second PUT
    // leaves only its own rules.
    put_lifecycle(
        &server,
        "conf",
        &config(&rule(
            "only",
            &prefix_filter("tmp/"),
            "Enabled",
            "<Expiration><Days>1</Days></Expiration>",
        )),
    )
    .await;
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = got.rules().iter().map(|r| r.id()).collect();
    assert_eq!(ids, [Some("only")]);

    // A rule with the legacy top-level <Prefix> (PutBucketLifecycle's form,
    // "supported for backward compatibility") is accepted and read back.
    put_lifecycle(
        &server,
        "conf",
        &config(&rule(
            "legacy",
            "<Prefix>legacy/</Prefix>",
            "Enabled",
            "<Expiration><Days>5</Days></Expiration>",
        )),
    )
    .await;
    let r = get_lifecycle_raw(&server, "conf").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<Prefix>legacy/</Prefix>"),
        "the legacy prefix is read back: {}",
        r.text()
    );
    assert_eq!(xml_fields(&r.text(), "ID"), ["legacy"]);

    // DeleteBucketLifecycle: "HTTP/1.1 204 No Content"; then GET is 404.
    let r = delete_lifecycle_raw(&server, "conf").await;
    assert_eq!(r.status, 204, "DELETE ?lifecycle: {}", r.text());
    get_lifecycle_raw(&server, "conf").await.assert_s3_error(
        404,
        "NoSuchLifecycleConfiguration",
        "GET ?lifecycle after DELETE",
    );

    // A bucket that does not exist.
    get_lifecycle_raw(&server, "no-such-bucket")
        .await
        .assert_s3_error(404, "NoSuchBucket", "GET ?lifecycle of a missing bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configurations_get_the_aws_error_and_store_nothing() {
    let server = TestServer::start_with_args(&["--lifecycle-interval-secs", "0"]);
    let c = sdk_client(&server);
    create_bucket(&c, "bad").await;
    let days = |n: &str| format!("<Expiration><Days>{n}</Days></Expiration>");
    let one_day = days("1");
    let all = "<Filter></Filter>".to_owned();

    // (document, expected status, acceptable codes, what the documents say)
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        (
            config(&rule("zero", &all, "Enabled", &days("0"))),
            "LifecycleExpiration Days: \"The value must be a non-zero positive integer\"",
            vec!["InvalidArgument"],
        ),
        (
            config(&rule(
                "zero-noncurrent",
                &all,
                "Enabled",
                "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>",
            )),
            "NoncurrentDays: \"The value must be a non-zero positive integer\"",
            vec!["InvalidArgument"],
        ),
        (
            config(&format!(
                "{}{}",
                rule("twice", &prefix_filter("a/"), "Enabled", &one_day),
                rule("twice", &prefix_filter("b/"), "Enabled", &one_day)
            )),
            "\"The <ID> element uniquely identifies a rule\"",
            vec!["InvalidArgument"],
        ),
        (
            config(&rule(&"i".repeat(256), &all, "Enabled", &one_day)),
            "\"ID length is limited to 255 characters\"",
            vec!["InvalidArgument"],
        ),
        (
            config(&rule("status", &all, "Maybe", &one_day)),
            "\"The <Status> element value can be either Enabled or Disabled\"",
            vec!["MalformedXML"],
        ),
        (
            config(&rule(
                "noon",
                &all,
                "Enabled",
                "<Expiration><Date>2099-01-01T12:00:00Z</Date></Expiration>",
            )),
            "Date: \"The time is always midnight UTC\"",
            vec!["InvalidArgument"],
        ),
        (
            config(&rule(
                "two-predicates",
                "<Filter><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                "Enabled",
                &one_day,
            )),
            "LifecycleRuleFilter: \"A Filter can have exactly one of Prefix, Tag, \
             ObjectSizeGreaterThan, ObjectSizeLessThan, or And specified\"",
            vec!["MalformedXML"],
        ),
        (
            config("<Rule><ID>broken</ID><Status>Enabled</Status><Expiration><Days>1</Days>"),
            "a document that is not well-formed XML",
            vec!["MalformedXML"],
        ),
        (
            config(&rule(
                "markers-and-days",
                &all,
                "Enabled",
                "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
            )),
            "ExpiredObjectDeleteMarker: \"This cannot be specified with Days or Date in a \
             Lifecycle Expiration Policy\"",
            vec!["MalformedXML", "InvalidArgument", "InvalidRequest"],
        ),
        (
            config(&rule(
                "markers-by-tag",
                "<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                "Enabled",
                "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
            )),
            "ExpiredObjectDeleteMarker: \"You cannot specify this lifecycle action in a rule \
             that specifies a filter based on object tags\"",
            vec!["InvalidRequest", "InvalidArgument", "MalformedXML"],
        ),
        (
            config(&rule(
                "abort-by-tag",
                "<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                "Enabled",
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
            )),
            "AbortIncompleteMultipartUpload: \"You cannot specify this lifecycle action in a \
             rule that specifies a filter based on object tags\"",
            vec!["InvalidRequest", "InvalidArgument", "MalformedXML"],
        ),
        (
            config(&rule("idle", &all, "Enabled", "")),
            "a rule consists of \"one or more transition or expiration actions\"",
            vec!["InvalidRequest", "MalformedXML"],
        ),
        (
            config(&rule(
                "too-many-kept",
                &all,
                "Enabled",
                "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>\
                 <NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>",
            )),
            "NewerNoncurrentVersions: \"You can specify up to 100 noncurrent versions to retain\"",
            vec!["InvalidArgument", "MalformedXML", "InvalidRequest"],
        ),
        (
            config(
                &(0..1001)
                    .map(|i| {
                        rule(
                            &format!("r{i}"),
                            &prefix_filter(&format!("p{i}/")),
                            "Enabled",
                            &one_day,
                        )
                    })
                    .collect::<String>(),
            ),
            "\"A lifecycle configuration can have up to 1,000 rules\"",
            vec!["InvalidArgument", "MalformedXML", "InvalidRequest"],
        ),
        // Cairn has one storage class: a transition has nowhere to go.
        (
            config(&rule(
                "to-glacier",
                &all,
                "Enabled",
                "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>",
            )),
            "Cairn has only STANDARD",
            vec!["InvalidStorageClass"],
        ),
        (
            config(&rule(
                "noncurrent-to-ia",
                &all,
                "Enabled",
                "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>\
                 <StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>",
            )),
            "Cairn has only STANDARD",
            vec!["InvalidStorageClass"],
        ),
    ];
    for (xml, why, codes) in &cases {
        let r = put_lifecycle_raw(&server, "bad", xml).await;
        let shown = if xml.len() > 400 { &xml[..400] } else { xml };
        assert_eq!(
            r.status,
            400,
            "{why}: expected 400 {codes:?}, got {} {:?}\n{shown}\n{}",
            r.status,
            r.code(),
            r.text()
        );
        let code = r.code().unwrap_or_default();
        assert!(
            codes.contains(&code.as_str()),
            "{why}: expected one of {codes:?}, got {code}\n{shown}\n{}",
            r.text()
        );
        r.assert_s3_error(400, &code, why);
    }

    // An invalid date: not ISO 8601.
    let r = put_lifecycle_raw(
        &server,
        "bad",
        &config(&rule(
            "not-a-date",
            &all,
            "Enabled",
            "<Expiration><Date>20200101</Date></Expiration>",
        )),
    )
    .await;
    assert_eq!(r.status, 400, "a Date that is not ISO 8601: {}", r.text());

    // Neither Content-MD5 nor a checksum: "Missing required header for this
    // request: Content-MD5" (InvalidRequest), as for every PutBucket* with
    // a required digest.
    let xml = config(&rule("ok", &all, "Enabled", &one_day));
    let addr = server.s3_addr();
    let r = RawRequest::new("PUT", "/bad?lifecycle")
        .body(xml.as_bytes().to_vec())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "InvalidRequest", "PUT ?lifecycle without Content-MD5");
    // A wrong Content-MD5 is BadDigest.
    let r = RawRequest::new("PUT", "/bad?lifecycle")
        .header("content-md5", &md5_b64(b"something else"))
        .body(xml.as_bytes().to_vec())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "BadDigest", "PUT ?lifecycle with a wrong Content-MD5");

    // Nothing of the refused documents was stored.
    get_lifecycle_raw(&server, "bad").await.assert_s3_error(
        404,
        "NoSuchLifecycleConfiguration",
        "GET ?lifecycle after refused PUTs",
    );

    // Days and a valid midnight Date are accepted (the control case), and a
    // refused PUT leaves an existing configuration as it was.
    put_lifecycle(&server, "bad", &xml).await;
    let r = put_lifecycle_raw(
        &server,
        "bad",
        &config(&rule("zero", &all, "Enabled", &days("0"))),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = get_lifecycle_raw(&server, "bad").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_fields(&r.text(), "ID"), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_key_may_change_a_configuration() {
    let server = TestServer::start_with_args(&["--lifecycle-interval-secs", "0"]);
    let c = sdk_client(&server);
    create_bucket(&c, "team").await;
    let (ok, out, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &["key", "create", "writer", "--allow", "team:rw", "--json"],
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let xml = config(&rule(
        "wipe",
        "<Filter></Filter>",
        "Enabled",
        "<Expiration><Days>1</Days></Expiration>",
    ));
    let addr = server.s3_addr();
    let r = RawRequest::new("PUT", "/team?lifecycle")
        .header("content-md5", &md5_b64(xml.as_bytes()))
        .body(xml.as_bytes().to_vec())
        .sign_with(addr, id, secret, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(403, "AccessDenied", "PUT ?lifecycle with a bucket key");
    get_lifecycle_raw(&server, "team").await.assert_s3_error(
        404,
        "NoSuchLifecycleConfiguration",
        "nothing stored by the bucket key",
    );

    // The admin key sets one; the bucket key cannot delete it.
    put_lifecycle(&server, "team", &xml).await;
    let r = RawRequest::new("DELETE", "/team?lifecycle")
        .sign_with(addr, id, secret, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(403, "AccessDenied", "DELETE ?lifecycle with a bucket key");
    let r = get_lifecycle_raw(&server, "team").await;
    assert_eq!(
        r.status,
        200,
        "the configuration is still there: {}",
        r.text()
    );
}

// ---------------------------------------------------------------------------
// The worker: expiration of current versions
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_removes_objects_under_the_prefix_in_an_unversioned_bucket() {
    let server = &fast_server();
    let c = &sdk_client(server);
    create_bucket(c, "plain").await;
    let created = Instant::now();
    for key in ["logs/a", "logs/b", "keep/c", "logsx"] {
        put_bytes(c, "plain", key, b"entry").await;
    }
    put_lifecycle(
        server,
        "plain",
        &config(&rule(
            "logs",
            &prefix_filter("logs/"),
            "Enabled",
            "<Expiration><Days>1</Days></Expiration>",
        )),
    )
    .await;
    // "adding the number of days specified in the rule to the object
    // creation time and rounding the resulting time to the next day midnight
    // UTC": one (two-second) day, so nothing is due in the first 1.5 s.
    if created.elapsed() < Duration::from_millis(1500) {
        assert!(
            object_exists(c, "plain", "logs/a").await,
            "expired before its day was over"
        );
    }
    let before = passes(server);
    // "Nonversioned bucket – ... permanently removing the object."
    eventually(server, "logs/a and logs/b expire", move || async move {
        !object_exists(c, "plain", "logs/a").await && !object_exists(c, "plain", "logs/b").await
    })
    .await;
    more_passes(server, 2.0).await;
    assert!(
        object_exists(c, "plain", "keep/c").await,
        "keep/c is outside the prefix"
    );
    assert!(
        object_exists(c, "plain", "logsx").await,
        "logsx is outside logs/"
    );
    assert!(passes(server) > before, "passes are counted");
    assert_eq!(actions(server, "expire_current"), 2.0);
    assert_eq!(keys(c, "plain").await, ["keep/c", "logsx"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_in_the_past_expires_every_object_with_the_tags() {
    // "If you specify a lifecycle action with a date that is in the past,
    // all qualified objects become immediately eligible for that lifecycle
    // action." The day length plays no part: the server keeps its default.
    let server = &TestServer::start_with_args(&["--lifecycle-interval-secs", "1"]);
    let c = &sdk_client(server);
    create_bucket(c, "tags").await;
    put_tagged(c, "tags", "temp-1", "class=temp").await;
    // "If an object has additional tags specified, the filter will still apply."
    put_tagged(c, "tags", "temp-2", "class=temp&owner=ci").await;
    put_tagged(c, "tags", "keep-1", "class=keep").await;
    put_tagged(c, "tags", "keep-2", "owner=temp").await;
    put_bytes(c, "tags", "untagged", b"plain").await;
    // Two tags under <And>: "applies to a subset of objects that has all the
    // tags specified".
    put_tagged(c, "tags", "both", "class=old&team=red").await;
    put_tagged(c, "tags", "one-of-two", "class=old").await;
    put_lifecycle(
        server,
        "tags",
        &config(&format!(
            "{}{}",
            rule(
                "temp",
                "<Filter><Tag><Key>class</Key><Value>temp</Value></Tag></Filter>",
                "Enabled",
                &format!("<Expiration><Date>{PAST_DATE}</Date></Expiration>"),
            ),
            rule(
                "old-red",
                "<Filter><And><Tag><Key>class</Key><Value>old</Value></Tag>\
                 <Tag><Key>team</Key><Value>red</Value></Tag></And></Filter>",
                "Enabled",
                &format!("<Expiration><Date>{PAST_DATE}</Date></Expiration>"),
            )
        )),
    )
    .await;
    eventually(server, "the tagged objects expire", move || async move {
        keys(c, "tags").await.len() == 4
    })
    .await;
    more_passes(server, 2.0).await;
    let left = keys(c, "tags").await;
    assert_eq!(left, ["keep-1", "keep-2", "one-of-two", "untagged"]);
    assert_eq!(actions(server, "expire_current"), 3.0);

    // "The date-based action is not a one-time action ... S3 also continues
    // to expire any new objects you create in the bucket."
    put_tagged(c, "tags", "temp-3", "class=temp").await;
    eventually(
        server,
        "a new tagged object expires too",
        move || async move { !object_exists(c, "tags", "temp-3").await },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_filters_choose_objects_by_size() {
    let server = &TestServer::start_with_args(&["--lifecycle-interval-secs", "1"]);
    let c = &sdk_client(server);
    create_bucket(c, "sizes").await;
    for (key, size) in [
        ("s/small", 10),
        ("s/middle", 5_000),
        ("s/large", 200_000),
        ("t/middle", 5_000),
        ("big/one", 70_000),
        ("big/tiny", 100),
    ] {
        put_bytes(c, "sizes", key, &vec![b'x'; size]).await;
    }
    let past = format!("<Expiration><Date>{PAST_DATE}</Date></Expiration>");
    put_lifecycle(
        server,
        "sizes",
        &config(&format!(
            "{}{}",
            // "you can specify a range of object sizes in the same filter"
            rule(
                "middle",
                "<Filter><And><Prefix>s/</Prefix><ObjectSizeGreaterThan>1000</ObjectSizeGreaterThan>\
                 <ObjectSizeLessThan>100000</ObjectSizeLessThan></And></Filter>",
                "Enabled",
                &past,
            ),
            rule(
                "big",
                "<Filter><ObjectSizeGreaterThan>65536</ObjectSizeGreaterThan></Filter>",
                "Enabled",
                &past,
            )
        )),
    )
    .await;
    eventually(server, "s/middle and big/one expire", move || async move {
        !object_exists(c, "sizes", "s/middle").await && !object_exists(c, "sizes", "big/one").await
    })
    .await;
    more_passes(server, 2.0).await;
    // s/large is over 65536 too: the "big" rule takes it.
    let left = keys(c, "sizes").await;
    assert_eq!(left, ["big/tiny", "s/small", "t/middle"]);
    assert_eq!(actions(server, "expire_current"), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_rule_does_nothing_until_enabled() {
    let server = &TestServer::start_with_args(&["--lifecycle-interval-secs", "1"]);
    let c = &sdk_client(server);
    create_bucket(c, "off").await;
    put_bytes(c, "off", "doc", b"keep me").await;
    let xml = |status| {
        config(&rule(
            "all",
            "<Filter></Filter>",
            status,
            &format!("<Expiration><Date>{PAST_DATE}</Date></Expiration>"),
        ))
    };
    // "If a rule is disabled, Amazon S3 doesn't perform any actions specified
    // in the rule."
    put_lifecycle(server, "off", &xml("Disabled")).await;
    more_passes(server, 3.0).await;
    assert!(object_exists(c, "off", "doc").await);
    assert_eq!(actions(server, "expire_current"), 0.0);
    put_lifecycle(server, "off", &xml("Enabled")).await;
    eventually(
        server,
        "doc expires once the rule is enabled",
        move || async move { !object_exists(c, "off", "doc").await },
    )
    .await;
    assert_eq!(actions(server, "expire_current"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_in_a_versioned_bucket_places_exactly_one_delete_marker() {
    let server = &fast_server();
    let c = &sdk_client(server);
    versioned_bucket(c, "ver").await;
    let v1 = put_version(c, "ver", "report", b"first").await;
    let v2 = put_version(c, "ver", "report", b"second").await;
    put_lifecycle(
        server,
        "ver",
        &config(&rule(
            "expire",
            "<Filter></Filter>",
            "Enabled",
            "<Expiration><Days>1</Days></Expiration>",
        )),
    )
    .await;
    // "Versioning-enabled bucket – If the current object version is not a
    // delete marker, Amazon S3 adds a delete marker with a unique version ID.
    // This makes the current version noncurrent, and the delete marker the
    // current version."
    eventually(
        server,
        "a delete marker becomes current",
        move || async move { history(c, "ver", "report").await.latest_is_marker() },
    )
    .await;
    // "Amazon S3 doesn't take any action if there are one or more object
    // versions and the delete marker is the current version."
    more_passes(server, 3.0).await;
    let h = history(c, "ver", "report").await;
    assert_eq!(h.markers.len(), 1, "exactly one marker: {h:?}");
    assert!(h.markers[0].1, "the marker is current: {h:?}");
    assert_eq!(h.version_ids(), {
        let mut v = vec![v1.clone(), v2.clone()];
        v.sort();
        v
    });
    assert!(h.versions.iter().all(|(_, latest)| !latest), "{h:?}");
    // "Object expiration applies only to an object's current version (it has
    // no impact on noncurrent object versions)."
    assert!(!object_exists(c, "ver", "report").await);
    assert!(version_readable(c, "ver", "report", &v1).await);
    assert!(version_readable(c, "ver", "report", &v2).await);
    assert_eq!(actions(server, "expire_current"), 1.0);
    assert_eq!(actions(server, "expire_noncurrent"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_in_a_suspended_bucket_replaces_the_null_version_with_a_null_marker() {
    let server = &fast_server();
    let c = &sdk_client(server);
    versioned_bucket(c, "susp").await;
    let old = put_version(c, "susp", "mixed", b"kept, it has an id").await;
    set_versioning(c, "susp", BucketVersioningStatus::Suspended).await;
    assert_eq!(put_version(c, "susp", "mixed", b"null one").await, "null");
    assert_eq!(
        put_version(c, "susp", "only-null", b"null too").await,
        "null"
    );
    put_lifecycle(
        server,
        "susp",
        &config(&rule(
            "expire",
            "<Filter></Filter>",
            "Enabled",
            "<Expiration><Days>1</Days></Expiration>",
        )),
    )
    .await;
    // "Versioning-suspended bucket – Amazon S3 creates a delete marker with
    // null as the version ID. This delete marker replaces any object version
    // with a null version ID in the version hierarchy".
    eventually(
        server,
        "the null versions are replaced",
        move || async move {
            !history(c, "susp", "mixed").await.has_version("null")
                && !history(c, "susp", "only-null").await.has_version("null")
        },
    )
    .await;
    more_passes(server, 2.0).await;
    let h = history(c, "susp", "mixed").await;
    assert_eq!(h.version_ids(), std::slice::from_ref(&old), "{h:?}");
    assert_eq!(
        h.markers,
        [("null".to_owned(), true)],
        "one null marker, current: {h:?}"
    );
    assert!(!object_exists(c, "susp", "mixed").await);
    assert!(version_readable(c, "susp", "mixed", &old).await);
    // only-null: its marker may itself be removed as an expired object
    // delete marker; either way no data is left.
    let h = history(c, "susp", "only-null").await;
    assert!(h.versions.is_empty(), "{h:?}");
    assert!(h.markers.iter().all(|(id, _)| id == "null"), "{h:?}");
    assert!(!object_exists(c, "susp", "only-null").await);
}

// ---------------------------------------------------------------------------
// The worker: noncurrent versions, delete markers, uploads
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noncurrent_versions_expire_keeping_the_newest_noncurrent_ones() {
    let server = &fast_server();
    let c = &sdk_client(server);
    versioned_bucket(c, "noncurrent").await;
    let mut keep = Vec::new();
    for i in 0..4 {
        keep.push(put_version(c, "noncurrent", "keep1/k", format!("v{i}").as_bytes()).await);
    }
    let mut all = Vec::new();
    for i in 0..3 {
        all.push(put_version(c, "noncurrent", "all/k", format!("v{i}").as_bytes()).await);
    }
    let mut other = Vec::new();
    for i in 0..2 {
        other.push(put_version(c, "noncurrent", "other/k", format!("v{i}").as_bytes()).await);
    }
    put_lifecycle(
        server,
        "noncurrent",
        &config(&format!(
            "{}{}",
            // "NewerNoncurrentVersions — Specifies how many noncurrent
            // versions Amazon S3 will retain ... Amazon S3 will permanently
            // delete any additional noncurrent versions beyond the specified
            // number to retain."
            rule(
                "keep-one",
                &prefix_filter("keep1/"),
                "Enabled",
                "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>\
                 <NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration>",
            ),
            rule(
                "keep-none",
                &prefix_filter("all/"),
                "Enabled",
                "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>",
            )
        )),
    )
    .await;
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let keep_expected = &sorted(&keep[2..]);
    let all_expected = &sorted(&all[2..]);
    eventually(
        server,
        "the older noncurrent versions expire",
        move || async move {
            history(c, "noncurrent", "keep1/k").await.version_ids() == *keep_expected
                && history(c, "noncurrent", "all/k").await.version_ids() == *all_expected
        },
    )
    .await;
    more_passes(server, 2.0).await;
    assert_eq!(
        history(c, "noncurrent", "keep1/k").await.version_ids(),
        *keep_expected
    );
    assert_eq!(
        history(c, "noncurrent", "all/k").await.version_ids(),
        *all_expected
    );
    assert_eq!(
        history(c, "noncurrent", "other/k").await.version_ids(),
        sorted(&other),
        "no rule covers other/"
    );
    // The current versions are untouched.
    assert_eq!(get_bytes(c, "noncurrent", "keep1/k").await, b"v3");
    assert_eq!(get_bytes(c, "noncurrent", "all/k").await, b"v2");
    assert!(!version_readable(c, "noncurrent", "keep1/k", &keep[0]).await);
    assert!(version_readable(c, "noncurrent", "keep1/k", &keep[2]).await);
    assert_eq!(actions(server, "expire_noncurrent"), 4.0);
    assert_eq!(actions(server, "expire_current"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_object_delete_markers_are_removed() {
    let server = &fast_server();
    let c = &sdk_client(server);
    versioned_bucket(c, "lone-markers").await;
    // lone: every version deleted, only the marker left — "a delete marker
    // with zero noncurrent versions is referred to as the expired object
    // delete marker".
    let v = put_version(c, "lone-markers", "lone", b"gone").await;
    delete_key(c, "lone-markers", "lone").await;
    c.delete_object()
        .bucket("lone-markers")
        .key("lone")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    // kept: a marker over a noncurrent version is not expired.
    let kept_v = put_version(c, "lone-markers", "kept", b"still here").await;
    delete_key(c, "lone-markers", "kept").await;
    put_version(c, "lone-markers", "live", b"current").await;
    assert_eq!(history(c, "lone-markers", "lone").await.markers.len(), 1);
    put_lifecycle(
        server,
        "lone-markers",
        &config(&rule(
            "markers",
            "<Filter></Filter>",
            "Enabled",
            "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
        )),
    )
    .await;
    eventually(server, "the lone marker is removed", move || async move {
        history(c, "lone-markers", "lone").await.markers.is_empty()
    })
    .await;
    more_passes(server, 2.0).await;
    let h = history(c, "lone-markers", "kept").await;
    assert_eq!(h.markers.len(), 1, "{h:?}");
    assert_eq!(h.version_ids(), [kept_v], "{h:?}");
    assert_eq!(get_bytes(c, "lone-markers", "live").await, b"current");
    assert_eq!(actions(server, "remove_marker"), 1.0);
    assert_eq!(actions(server, "expire_current"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiration_days_rule_also_removes_expired_object_delete_markers() {
    // "If the current object version is the only object version and it is
    // also a delete marker (also referred as an expired object delete
    // marker, ...), Amazon S3 removes the expired object delete marker."
    // ("Expiring objects"); "If the lifecycle configuration is set to delete
    // current versions, or the ExpiredObjectDeleteMarker action is explicitly
    // set, Amazon S3 removes the expired object's delete marker."
    let server = &fast_server();
    let c = &sdk_client(server);
    versioned_bucket(c, "dm2").await;
    let v = put_version(c, "dm2", "lone", b"gone").await;
    delete_key(c, "dm2", "lone").await;
    c.delete_object()
        .bucket("dm2")
        .key("lone")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    put_lifecycle(
        server,
        "dm2",
        &config(&rule(
            "days",
            &prefix_filter("lone"),
            "Enabled",
            "<Expiration><Days>1</Days></Expiration>",
        )),
    )
    .await;
    eventually(server, "the lone marker is removed", move || async move {
        let h = history(c, "dm2", "lone").await;
        h.markers.is_empty() && h.versions.is_empty()
    })
    .await;
    assert_eq!(actions(server, "remove_marker"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_multipart_uploads_are_aborted() {
    let server = &fast_server();
    let c = &sdk_client(server);
    create_bucket(c, "mpu").await;
    // "If the applicable multipart uploads (determined by the key name prefix
    // specified in the lifecycle rule) are not successfully completed within
    // the predefined time period, Amazon S3 aborts the incomplete multipart
    // uploads." The configuration comes first: S3 applies the action to
    // uploads initiated after it is set.
    put_lifecycle(
        server,
        "mpu",
        &config(&rule(
            "abort",
            &prefix_filter("tmp/"),
            "Enabled",
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>\
             </AbortIncompleteMultipartUpload>",
        )),
    )
    .await;
    let mut ids = Vec::new();
    for key in ["tmp/big", "keep/big"] {
        let up = c
            .create_multipart_upload()
            .bucket("mpu")
            .key(key)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_owned();
        c.upload_part()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .part_number(1)
            .body(vec![1u8; 1000].into())
            .send()
            .await
            .unwrap();
        ids.push(id);
    }
    // "Object expiration lifecycle polices do not remove incomplete multipart
    // uploads" — and the abort action does not remove objects.
    put_bytes(c, "mpu", "tmp/done", b"complete").await;
    let uploads = move || async move {
        let out = c
            .list_multipart_uploads()
            .bucket("mpu")
            .send()
            .await
            .unwrap();
        out.uploads()
            .iter()
            .map(|u| u.key().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    eventually(server, "tmp/big's upload is aborted", move || async move {
        uploads().await == ["keep/big"]
    })
    .await;
    more_passes(server, 2.0).await;
    assert_eq!(uploads().await, ["keep/big"]);
    let err = c
        .list_parts()
        .bucket("mpu")
        .key("tmp/big")
        .upload_id(&ids[0])
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("NoSuchUpload"));
    assert_eq!(get_bytes(c, "mpu", "tmp/done").await, b"complete");
    assert_eq!(actions(server, "abort_upload"), 1.0);
    assert_eq!(actions(server, "expire_current"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_never_deletes_a_locked_version() {
    // "Object Lock considerations", section "Managing S3 Lifecycle policies
    // with Object Lock" (paraphrased): lifecycle keeps working on protected
    // objects, delete markers included, but never deletes a locked version.
    // Whether a marker goes on a locked current version is left open here.
    let server = &fast_server();
    let c = &sdk_client(server);
    c.create_bucket()
        .bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let until = DateTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600,
    );
    let comp = c
        .put_object()
        .bucket("locked")
        .key("comp")
        .body(b"compliance".to_vec().into())
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let held = c
        .put_object()
        .bucket("locked")
        .key("held")
        .body(b"legal hold".to_vec().into())
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let free = &put_version(c, "locked", "free", b"unprotected").await;
    put_lifecycle(
        server,
        "locked",
        &config(&rule(
            "everything",
            "<Filter></Filter>",
            "Enabled",
            "<Expiration><Days>1</Days></Expiration>\
             <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>",
        )),
    )
    .await;
    // The unlocked version goes: a marker first, then the noncurrent version.
    eventually(server, "free's version is deleted", move || async move {
        !history(c, "locked", "free").await.has_version(free)
    })
    .await;
    more_passes(server, 2.0).await;
    for (key, v) in [("comp", &comp), ("held", &held)] {
        let h = history(c, "locked", key).await;
        assert!(h.has_version(v), "{key}: the locked version stays: {h:?}");
        assert!(version_readable(c, "locked", key, v).await, "{key}");
        assert!(h.markers.len() <= 1, "{key}: at most one marker: {h:?}");
    }
    // The current version may be hidden by a marker (allowed); by id it
    // still reads back whole.
    let out = c
        .get_object()
        .bucket("locked")
        .key("comp")
        .version_id(&comp)
        .send()
        .await
        .unwrap();
    let body = out.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), b"compliance");
    assert_eq!(actions(server, "expire_noncurrent"), 1.0);
    assert!(
        server.metric("cairn_lifecycle_skipped_locked_total") > 0.0,
        "skipping locked versions is counted"
    );
}

// ---------------------------------------------------------------------------
// x-amz-expiration
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_amz_expiration_names_the_expiry_date_and_the_rule() {
    // The worker is off: only the header is under test, with real days.
    let server = TestServer::start_with_args(&["--lifecycle-interval-secs", "0"]);
    let c = sdk_client(&server);
    create_bucket(&c, "hdr").await;
    put_lifecycle(
        &server,
        "hdr",
        &config(&format!(
            "{}{}{}",
            rule(
                "three-days",
                &prefix_filter("tmp/"),
                "Enabled",
                "<Expiration><Days>3</Days></Expiration>",
            ),
            // "if two expiration policies overlap, the shorter expiration
            // policy is honored"
            rule(
                "one-day",
                &prefix_filter("tmp/short/"),
                "Enabled",
                "<Expiration><Days>1</Days></Expiration>",
            ),
            rule(
                "fixed-date",
                &prefix_filter("dated/"),
                "Enabled",
                "<Expiration><Date>2099-01-01T00:00:00Z</Date></Expiration>",
            )
        )),
    )
    .await;

    for (key, days, rule_id) in [
        ("tmp/a", Some(3), "three-days"),
        ("tmp/short/b", Some(1), "one-day"),
        ("dated/c", None, "fixed-date"),
    ] {
        let put = c
            .put_object()
            .bucket("hdr")
            .key(key)
            .body(b"expiring".to_vec().into())
            .send()
            .await
            .unwrap();
        let head = c.head_object().bucket("hdr").key(key).send().await.unwrap();
        let modified = head.last_modified().unwrap().secs();
        let expected = match days {
            Some(d) => expected_expiry(modified, d),
            None => vec![http_date(Y2099_SECS)],
        };
        let get = c.get_object().bucket("hdr").key(key).send().await.unwrap();
        for (op, value) in [
            ("PUT", put.expiration()),
            ("HEAD", head.expiration()),
            ("GET", get.expiration()),
        ] {
            let value = value.unwrap_or_else(|| panic!("{op} {key}: no x-amz-expiration header"));
            let (date, id) = parse_expiration(value);
            assert!(
                expected.contains(&date),
                "{op} {key}: expiry-date {date:?}, expected one of {expected:?} \
                 (Last-Modified {modified})"
            );
            assert_eq!(id, rule_id, "{op} {key}: {value:?}");
        }
    }

    // CopyObject and CompleteMultipartUpload answer it too ("If the object
    // expiration is configured, this will contain the expiration date").
    let copy = c
        .copy_object()
        .bucket("hdr")
        .key("tmp/copied")
        .copy_source("hdr/dated/c")
        .send()
        .await
        .unwrap();
    let value = copy.expiration().expect("CopyObject: no x-amz-expiration");
    assert_eq!(parse_expiration(value).1, "three-days", "{value}");
    let upload = c
        .create_multipart_upload()
        .bucket("hdr")
        .key("tmp/short/multi")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("hdr")
        .key("tmp/short/multi")
        .upload_id(id)
        .part_number(1)
        .body(b"one part".to_vec().into())
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("hdr")
        .key("tmp/short/multi")
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let value = done
        .expiration()
        .expect("CompleteMultipartUpload: no x-amz-expiration");
    assert_eq!(parse_expiration(value).1, "one-day", "{value}");

    // An object no rule covers has no header.
    let put = c
        .put_object()
        .bucket("hdr")
        .key("other/d")
        .body(b"forever".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(put.expiration(), None);
    let head = c
        .head_object()
        .bucket("hdr")
        .key("other/d")
        .send()
        .await
        .unwrap();
    assert_eq!(head.expiration(), None);

    // Once the configuration is deleted, nothing is announced.
    let r = delete_lifecycle_raw(&server, "hdr").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let head = c
        .head_object()
        .bucket("hdr")
        .key("tmp/a")
        .send()
        .await
        .unwrap();
    assert_eq!(head.expiration(), None);

    // --lifecycle-interval-secs 0 disables the worker.
    assert_eq!(passes(&server), 0.0);
    assert!(object_exists(&c, "hdr", "tmp/a").await);
}
