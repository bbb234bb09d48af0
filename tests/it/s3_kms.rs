//! SSE-KMS (server-side encryption with keys of a key service) end to end,
//! written from the AWS documentation ("Using server-side encryption with
//! AWS KMS keys (SSE-KMS)", "Specifying server-side encryption with AWS KMS
//! (SSE-KMS)", the PutObject / GetObject / HeadObject / CopyObject /
//! CreateMultipartUpload / UploadPart / UploadPartCopy /
//! CompleteMultipartUpload headers `x-amz-server-side-encryption: aws:kms`,
//! `x-amz-server-side-encryption-aws-kms-key-id`,
//! `x-amz-server-side-encryption-context` and
//! `x-amz-server-side-encryption-bucket-key-enabled`, "Setting default
//! server-side encryption behavior for Amazon S3 buckets", and the KMS error
//! codes `KMS.NotFoundException` / `KMS.DisabledException`) and from Cairn's
//! built-in key service, driven with `cairn admin kms key …`.
//!
//! Covered: the admin commands (create, list, rotate, disable, enable, their
//! JSON, unknown keys, keys surviving kill -9); objects written under a key
//! named by id, ARN, alias or alias ARN report the key's ARN, the context
//! and the bucket-key flag; the default key `alias/aws/s3`; refusals (unknown
//! key, key id without `aws:kms`, malformed context) that store nothing; a
//! disabled key refuses writes and reads but not HEAD, until enabled again;
//! rotation keeps every object readable; multipart uploads and part copies;
//! copies between SSE-S3, SSE-KMS and SSE-C; bucket default encryption with
//! a KMS key; no plaintext on disk; and boto3 seeing the same.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{MetadataDirective, ServerSideEncryption};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::common::*;

const SSE: &str = "x-amz-server-side-encryption";
const KMS_KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT: &str = "x-amz-server-side-encryption-context";
const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";

// ---------------------------------------------------------------------------
// The key service, through `cairn admin kms key …`
// ---------------------------------------------------------------------------

/// A key made by `cairn admin kms key create`, with the reply it printed.
#[derive(Clone, Debug)]
struct KmsKey {
    id: String,
    arn: String,
    json: Value,
}

/// `cairn admin kms key <args> --json`, parsed.
fn kms_admin(server: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["kms", "key"];
    all.extend_from_slice(args);
    admin_json(server, &all)
}

/// `cairn admin kms key <args>` that must fail: its stderr.
fn kms_admin_fails(server: &TestServer, args: &[&str]) -> String {
    let mut all = vec!["kms", "key"];
    all.extend_from_slice(args);
    let (ok, out, err) = cairn_admin_as(server, ACCESS_KEY, SECRET_KEY, &all);
    assert!(!ok, "cairn admin {all:?} should fail; it printed: {out}");
    err
}

/// Whether `s` is a lowercase UUID v4 (8-4-4-4-12 hex digits).
fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
            }
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Checks the shape every key's JSON has.
#[track_caller]
fn check_key_json(v: &Value) {
    let id = text(v, "id");
    assert!(is_uuid_v4(&id), "id is not a lowercase UUID v4: {v}");
    assert_eq!(
        text(v, "arn"),
        format!("arn:aws:kms:{REGION}::key/{id}"),
        "arn: {v}"
    );
    // Milliseconds since the epoch, as every admin reply's times.
    assert!(
        v["created_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 1_700_000_000_000),
        "created_ms: {v}"
    );
    assert!(v["alias"].is_string(), "alias: {v}");
    assert!(v["description"].is_string(), "description: {v}");
    assert!(v["enabled"].is_boolean(), "enabled: {v}");
    assert!(
        v["versions"].as_u64().is_some_and(|n| n >= 1),
        "versions: {v}"
    );
}

/// `cairn admin kms key create [--alias A] --description D`, its reply
/// checked (the whole shape is checked by the admin test; here what the S3
/// tests rely on).
fn create_kms_key(server: &TestServer, alias: Option<&str>, description: &str) -> KmsKey {
    let mut args = vec!["create", "--description", description];
    if let Some(a) = alias {
        args.extend(["--alias", a]);
    }
    let v = kms_admin(server, &args);
    let id = text(&v, "id");
    assert!(is_uuid_v4(&id), "id is not a lowercase UUID v4: {v}");
    assert_eq!(text(&v, "arn"), format!("arn:aws:kms:{REGION}::key/{id}"));
    assert_eq!(text(&v, "alias"), alias.unwrap_or(""), "alias: {v}");
    assert_eq!(text(&v, "description"), description, "description: {v}");
    assert_eq!(v["enabled"], true, "a new key is enabled: {v}");
    assert_eq!(v["versions"], 1, "a new key has one version: {v}");
    KmsKey {
        id: text(&v, "id"),
        arn: text(&v, "arn"),
        json: v,
    }
}

/// `cairn admin kms key list --json`.
fn listed(server: &TestServer) -> Vec<Value> {
    let v = kms_admin(server, &["list"]);
    v.as_array()
        .unwrap_or_else(|| panic!("kms key list --json is not an array: {v}"))
        .clone()
}

/// The listed key with this id.
#[track_caller]
fn listed_key(keys: &[Value], id: &str) -> Value {
    keys.iter()
        .find(|k| k["id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("key {id} not listed: {keys:?}"))
        .clone()
}

/// The listed keys whose alias is `alias`.
fn with_alias(keys: &[Value], alias: &str) -> Vec<Value> {
    keys.iter()
        .filter(|k| k["alias"].as_str() == Some(alias))
        .cloned()
        .collect()
}

/// A random UUID v4 no key has.
fn unknown_key_id(rng: &mut Rng) -> String {
    let h = rng.hex(32);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

// ---------------------------------------------------------------------------
// Encryption as the S3 API reports it
// ---------------------------------------------------------------------------

/// An SSE-C key: base64 of the key and of its MD5.
struct CustomerKey {
    key: String,
    md5: String,
}

fn customer_key(byte: u8) -> CustomerKey {
    let raw = [byte; 32];
    CustomerKey {
        key: BASE64.encode(raw),
        md5: md5_b64(&raw),
    }
}

/// How an object is expected to be encrypted.
#[derive(Clone, Copy)]
enum Enc<'a> {
    /// SSE-S3: `AES256`, no KMS key.
    S3,
    /// SSE-KMS under the key with this ARN.
    Kms(&'a str),
    /// SSE-C with this customer key.
    C(&'a CustomerKey),
}

/// Compares (x-amz-server-side-encryption, …-aws-kms-key-id,
/// …-customer-algorithm) of a response with what `enc` means.
#[track_caller]
fn check_enc(
    what: &str,
    enc: Enc<'_>,
    sse: Option<&ServerSideEncryption>,
    kms_key: Option<&str>,
    customer: Option<&str>,
) {
    let want = match enc {
        Enc::S3 => (Some(ServerSideEncryption::Aes256), None, None),
        Enc::Kms(arn) => (Some(ServerSideEncryption::AwsKms), Some(arn), None),
        Enc::C(_) => (None, None, Some("AES256")),
    };
    assert_eq!(
        (sse.cloned(), kms_key, customer),
        want,
        "{what}: (server-side-encryption, aws-kms-key-id, customer-algorithm)"
    );
}

/// [`check_enc`] of an SDK output that reports all three (PUT, GET, HEAD,
/// copy and multipart outputs).
macro_rules! check_out {
    ($what:expr, $enc:expr, $out:expr) => {
        check_enc(
            $what,
            $enc,
            $out.server_side_encryption(),
            $out.ssekms_key_id(),
            $out.sse_customer_algorithm(),
        )
    };
}

/// GET and HEAD `bucket/key` (with the customer key for SSE-C): the bytes
/// are `body` and both report the encryption `enc`.
async fn expect_object(c: &aws_sdk_s3::Client, bucket: &str, key: &str, enc: Enc<'_>, body: &[u8]) {
    let what = format!("{bucket}/{key}");
    let mut get = c.get_object().bucket(bucket).key(key);
    let mut head = c.head_object().bucket(bucket).key(key);
    if let Enc::C(k) = enc {
        get = get
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&k.key)
            .sse_customer_key_md5(&k.md5);
        head = head
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&k.key)
            .sse_customer_key_md5(&k.md5);
    }
    let got = get
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {what}: {}", show(&e)));
    check_out!(&format!("GET {what}"), enc, got);
    let bytes = got
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {what} body: {e}"))
        .into_bytes();
    assert!(
        bytes.as_ref() == body,
        "GET {what}: {} bytes back, {} written, and they differ",
        bytes.len(),
        body.len()
    );
    let h = head
        .send()
        .await
        .unwrap_or_else(|e| panic!("HEAD {what}: {}", show(&e)));
    check_out!(&format!("HEAD {what}"), enc, h);
    assert_eq!(
        h.content_length(),
        Some(body.len() as i64),
        "HEAD {what}: Content-Length"
    );
}

/// `bytes=first-last` of a KMS object, checking it still reports the key.
async fn get_range(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    (first, last): (usize, usize),
    arn: &str,
) -> Vec<u8> {
    let what = format!("GET {bucket}/{key} bytes={first}-{last}");
    let got = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {}", show(&e)));
    check_enc(
        &what,
        Enc::Kms(arn),
        got.server_side_encryption(),
        got.ssekms_key_id(),
        None,
    );
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// PutObject with `aws:kms` and, if given, a key id.
async fn put_kms(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &[u8],
    key_id: Option<&str>,
) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .set_ssekms_key_id(key_id.map(str::to_owned))
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key} (aws:kms, key {key_id:?}): {}", show(&e)))
}

/// Asserts a refusal through the SDK: its HTTP status and S3 error code.
#[track_caller]
fn refused<T: std::fmt::Debug, E>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    status: u16,
    code: &str,
    what: &str,
) where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => panic!("{what}: expected {status} {code}, got a success: {v:?}"),
        Err(e) => assert_eq!(
            (sdk_error_status(&e), sdk_error_code(&e).as_deref()),
            (Some(status), Some(code)),
            "{what}: {}",
            show(&e)
        ),
    }
}

/// A signed request built by hand (for headers the SDK would not send, and
/// headers it does not parse).
async fn raw(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut r = RawRequest::new(method, path).body(body.to_vec());
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.sign(server.s3_addr(), Payload::Signed)
        .send(server.s3_addr())
        .await
}

/// A PutObject of `/kms/refused` and a CreateMultipartUpload of
/// `/kms/refused-upload` with `headers`: both refused with `status` and
/// `code`.
async fn refused_put_and_upload(
    server: &TestServer,
    headers: &[(&str, &str)],
    status: u16,
    code: &str,
    what: &str,
) {
    raw(server, "PUT", "/kms/refused", headers, b"x")
        .await
        .assert_s3_error(status, code, &format!("PUT: {what}"));
    raw(server, "POST", "/kms/refused-upload?uploads", headers, b"")
        .await
        .assert_s3_error(status, code, &format!("CreateMultipartUpload: {what}"));
}

/// The encryption context header for a JSON object.
fn context(json: &str) -> String {
    BASE64.encode(json)
}

/// Uploads `parts` (1..=N) to an upload without any SSE header: their ETags.
async fn upload_parts(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[Vec<u8>],
    arn: Option<&str>,
) -> Vec<String> {
    let mut etags = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {n} of {bucket}/{key}: {}", show(&e)));
        if let Some(arn) = arn {
            check_out!(
                &format!("UploadPart {n} of {bucket}/{key}"),
                Enc::Kms(arn),
                out
            );
        }
        etags.push(out.e_tag().unwrap().to_owned());
    }
    etags
}

async fn complete_upload(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    etags: &[String],
) -> aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput {
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(completed(etags))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload {bucket}/{key}: {}", show(&e)))
}

/// Random bytes with `marker` every ~4 KiB (incompressible around it).
fn marked_body(rng: &mut Rng, marker: &str, len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len + 4096);
    while body.len() < len {
        body.extend_from_slice(marker.as_bytes());
        let n = 3900 + rng.below(300) as usize;
        body.extend_from_slice(&rng.bytes(n));
    }
    body.truncate(len);
    body
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// `cairn admin kms key create / list / rotate / disable / enable`: the JSON
/// of a key, ids and aliases as names, unknown keys and a taken alias
/// refused, and all of it kept across a kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_keys_are_created_listed_rotated_disabled_and_enabled_with_cairn_admin() {
    let mut server = TestServer::start();
    let mut rng = Rng::new(test_seed("kms-admin"));
    assert_eq!(
        listed(&server),
        Vec::<Value>::new(),
        "a new server has no keys (the default key appears on first use)"
    );

    let named = create_kms_key(&server, Some("backups"), "nightly backups");
    check_key_json(&named.json);
    let bare = kms_admin(&server, &["create"]);
    check_key_json(&bare);
    assert_eq!(text(&bare, "alias"), "", "no --alias: {bare}");
    assert_eq!(bare["enabled"], true, "{bare}");
    assert_eq!(bare["versions"], 1, "{bare}");
    let bare_id = text(&bare, "id");
    assert_ne!(bare_id, named.id, "two keys, two ids");

    // The list holds both, as create answered them.
    let all = listed(&server);
    assert_eq!(all.len(), 2, "{all:?}");
    for k in &all {
        check_key_json(k);
    }
    assert_eq!(listed_key(&all, &named.id), named.json);
    assert_eq!(listed_key(&all, &bare_id), bare);
    // Without --json: a table a person reads.
    let (ok, table, err) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["kms", "key", "list"]);
    assert!(ok, "kms key list: {err}");
    assert!(
        table.contains("backups") && table.contains(&named.id),
        "kms key list shows the alias and the id: {table}"
    );

    // Rotation, by alias then by id: one more version each, same key.
    let r = kms_admin(&server, &["rotate", "alias/backups"]);
    check_key_json(&r);
    assert_eq!(
        (text(&r, "id"), text(&r, "arn"), r["versions"].clone()),
        (named.id.clone(), named.arn.clone(), Value::from(2)),
        "rotate alias/backups: {r}"
    );
    let r = kms_admin(&server, &["rotate", &named.id]);
    assert_eq!(r["versions"], 3, "rotate by id: {r}");
    assert_eq!(r["enabled"], true, "{r}");
    assert_eq!(r["created_ms"], named.json["created_ms"], "{r}");

    // Disable and enable, by alias and by id.
    let d = kms_admin(&server, &["disable", "alias/backups"]);
    check_key_json(&d);
    assert_eq!(
        (text(&d, "id"), d["enabled"].clone(), d["versions"].clone()),
        (named.id.clone(), Value::from(false), Value::from(3)),
        "disable alias/backups: {d}"
    );
    let d = kms_admin(&server, &["disable", &bare_id]);
    assert_eq!(d["enabled"], false, "disable by id: {d}");
    let e = kms_admin(&server, &["enable", &bare_id]);
    assert_eq!(e["enabled"], true, "enable by id: {e}");
    let e = kms_admin(&server, &["disable", &bare_id]);
    assert_eq!(e["enabled"], false, "{e}");
    let e = kms_admin(&server, &["enable", "alias/backups"]);
    assert_eq!(e["enabled"], true, "enable alias/backups: {e}");
    let e = kms_admin(&server, &["disable", "alias/backups"]);
    assert_eq!(e["enabled"], false, "{e}");

    // Unknown keys: a failure that says what is wrong.
    let ghost = unknown_key_id(&mut rng);
    for args in [
        ["rotate", ghost.as_str()],
        ["disable", ghost.as_str()],
        ["enable", ghost.as_str()],
        ["rotate", "alias/ghost"],
        ["disable", "alias/ghost"],
        ["enable", "alias/ghost"],
    ] {
        let err = kms_admin_fails(&server, &args);
        let lower = err.to_lowercase();
        assert!(
            err.contains(args[1].trim_start_matches("alias/"))
                || lower.contains("not found")
                || lower.contains("no such")
                || lower.contains("unknown"),
            "kms key {args:?}: the message should say the key is unknown: {err}"
        );
    }
    // An alias names one key.
    kms_admin_fails(&server, &["create", "--alias", "backups"]);
    assert_eq!(listed(&server).len(), 2, "a refused create made no key");

    // kill -9: every key comes back as it was (versions, enabled state,
    // creation time, alias, description).
    let before = listed(&server);
    server.restart(true);
    let after = listed(&server);
    assert_eq!(after.len(), 2, "{after:?}");
    for k in &before {
        assert_eq!(&listed_key(&after, &text(k, "id")), k, "after kill -9");
    }
    let n = listed_key(&after, &named.id);
    assert_eq!(
        (n["enabled"].clone(), n["versions"].clone()),
        (Value::from(false), Value::from(3))
    );
    assert_eq!(listed_key(&after, &bare_id)["enabled"], false);
    // And they still answer to their names.
    let e = kms_admin(&server, &["enable", "alias/backups"]);
    assert_eq!(
        (text(&e, "id"), e["enabled"].clone()),
        (named.id, Value::from(true))
    );
}

/// A key named by its id, its ARN, `alias/NAME` or the alias ARN: every
/// response names the key's ARN; the context and the bucket-key flag are
/// echoed; no key id means the default key `alias/aws/s3`, made once; ranges
/// of a KMS object are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_objects_report_the_key_arn_whatever_form_of_key_id_was_given() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "kms").await;
    let mut rng = Rng::new(test_seed("kms-forms"));
    let key = create_kms_key(&server, Some("photos"), "photo archive");
    let other = create_kms_key(&server, None, "another key");

    let alias_arn = format!("arn:aws:kms:{REGION}::alias/photos");
    for (name, given) in [
        ("by-id", key.id.as_str()),
        ("by-arn", key.arn.as_str()),
        ("by-alias", "alias/photos"),
        ("by-alias-arn", alias_arn.as_str()),
    ] {
        let n = 1000 + rng.below(50_000) as usize;
        let body = rng.bytes(n);
        let put = put_kms(&c, "kms", name, &body, Some(given)).await;
        check_out!(&format!("PUT {name} ({given})"), Enc::Kms(&key.arn), put);
        expect_object(&c, "kms", name, Enc::Kms(&key.arn), &body).await;
    }
    let body = rng.bytes(777);
    put_kms(&c, "kms", "other", &body, Some(&other.id)).await;
    expect_object(&c, "kms", "other", Enc::Kms(&other.arn), &body).await;

    // The encryption context and the bucket key: echoed as sent, on PUT,
    // GET and HEAD.
    let ctx = context(r#"{"project":"cairn","team":"storage ✓","ticket":"KMS-1"}"#);
    let body = rng.bytes(123_456);
    let put = c
        .put_object()
        .bucket("kms")
        .key("with-context")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/photos")
        .ssekms_encryption_context(&ctx)
        .bucket_key_enabled(true)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT with a context: {}", show(&e)));
    assert_eq!(put.ssekms_key_id(), Some(key.arn.as_str()));
    assert_eq!(put.ssekms_encryption_context(), Some(ctx.as_str()));
    assert_eq!(put.bucket_key_enabled(), Some(true));
    expect_object(&c, "kms", "with-context", Enc::Kms(&key.arn), &body).await;
    let got = c
        .get_object()
        .bucket("kms")
        .key("with-context")
        .send()
        .await
        .unwrap();
    assert_eq!(got.bucket_key_enabled(), Some(true), "GET: bucket key");
    for method in ["GET", "HEAD"] {
        let r = raw(&server, method, "/kms/with-context", &[], b"").await;
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        assert_eq!(
            (
                r.header(SSE),
                r.header(KMS_KEY_ID),
                r.header(CONTEXT),
                r.header(BUCKET_KEY)
            ),
            (
                Some("aws:kms"),
                Some(key.arn.as_str()),
                Some(ctx.as_str()),
                Some("true")
            ),
            "{method} /kms/with-context"
        );
    }

    // No key id: the default key, alias aws/s3, made on first use, then
    // always the same one.
    let body = rng.bytes(4321);
    let put = put_kms(&c, "kms", "default-1", &body, None).await;
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    let default_arn = put
        .ssekms_key_id()
        .expect("PUT aws:kms without a key id names the key used")
        .to_owned();
    let prefix = format!("arn:aws:kms:{REGION}::key/");
    assert!(
        default_arn.strip_prefix(&prefix).is_some_and(is_uuid_v4),
        "the default key's ARN: {default_arn}"
    );
    assert!(default_arn != key.arn && default_arn != other.arn);
    expect_object(&c, "kms", "default-1", Enc::Kms(&default_arn), &body).await;
    let keys = listed(&server);
    let defaults = with_alias(&keys, "aws/s3");
    assert_eq!(defaults.len(), 1, "one key with alias aws/s3: {keys:?}");
    assert_eq!(text(&defaults[0], "arn"), default_arn);
    assert_eq!(defaults[0]["enabled"], true);
    let body2 = rng.bytes(5000);
    let put = put_kms(&c, "kms", "default-2", &body2, None).await;
    assert_eq!(put.ssekms_key_id(), Some(default_arn.as_str()));
    let put = put_kms(&c, "kms", "default-3", &body2, Some("alias/aws/s3")).await;
    assert_eq!(
        put.ssekms_key_id(),
        Some(default_arn.as_str()),
        "alias/aws/s3 named"
    );
    expect_object(&c, "kms", "default-2", Enc::Kms(&default_arn), &body2).await;
    expect_object(&c, "kms", "default-3", Enc::Kms(&default_arn), &body2).await;
    assert_eq!(with_alias(&listed(&server), "aws/s3").len(), 1, "made once");
    assert_eq!(listed(&server).len(), 3);

    // Ranges of a multi-chunk KMS object.
    let large = rng.bytes(3 * MIB + 12_345);
    put_kms(&c, "kms", "large", &large, Some(&key.id)).await;
    expect_object(&c, "kms", "large", Enc::Kms(&key.arn), &large).await;
    let len = large.len();
    for (first, last) in [
        (0, 0),
        (1000, 1999),
        (262_140, 900_001),
        (MIB - 3, 2 * MIB + 3),
        (len - 100, len - 1),
        (len - 1, len - 1),
    ] {
        let got = get_range(&c, "kms", "large", (first, last), &key.arn).await;
        assert!(
            got == large[first..=last],
            "bytes={first}-{last}: {} bytes back",
            got.len()
        );
    }

    // The control: without SSE headers, SSE-S3 as before.
    put_bytes(&c, "kms", "plain", b"plain object").await;
    expect_object(&c, "kms", "plain", Enc::S3, b"plain object").await;
}

/// Unknown keys (`KMS.NotFoundException`), a key id without `aws:kms` or
/// with `AES256`, a context that is not base64 of a JSON object of strings
/// (`InvalidArgument`), `aws:kms:dsse` (`NotImplemented`): refused, on PUT,
/// CreateMultipartUpload and CopyObject, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_requests_with_unknown_keys_or_malformed_headers_are_refused_and_store_nothing() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "kms").await;
    let mut rng = Rng::new(test_seed("kms-refusals"));
    let key = create_kms_key(&server, Some("real"), "the one key");
    put_bytes(&c, "kms", "source", b"a source object").await;

    let ghost = unknown_key_id(&mut rng);
    let ghost_arn = format!("arn:aws:kms:{REGION}::key/{ghost}");
    let ghost_alias_arn = format!("arn:aws:kms:{REGION}::alias/ghost");
    let not_found = [
        ghost.as_str(),
        ghost_arn.as_str(),
        "alias/ghost",
        ghost_alias_arn.as_str(),
    ];
    for id in not_found {
        let headers = [(SSE, "aws:kms"), (KMS_KEY_ID, id)];
        refused_put_and_upload(
            &server,
            &headers,
            400,
            "KMS.NotFoundException",
            &format!("key {id}"),
        )
        .await;
        let copy = [
            (SSE, "aws:kms"),
            (KMS_KEY_ID, id),
            ("x-amz-copy-source", "/kms/source"),
        ];
        raw(&server, "PUT", "/kms/refused-copy", &copy, b"")
            .await
            .assert_s3_error(
                400,
                "KMS.NotFoundException",
                &format!("CopyObject key {id}"),
            );
    }
    let uploads = c
        .list_multipart_uploads()
        .bucket("kms")
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "refused uploads were created: {uploads:?}"
    );
    // An alias's name alone (without `alias/`) names no key.
    raw(
        &server,
        "PUT",
        "/kms/refused",
        &[(SSE, "aws:kms"), (KMS_KEY_ID, "real")],
        b"x",
    )
    .await
    .assert_s3_error(400, "KMS.NotFoundException", "an alias without alias/");

    // A key id without aws:kms.
    for (headers, what) in [
        (
            vec![(SSE, "AES256"), (KMS_KEY_ID, key.id.as_str())],
            "a key id with AES256",
        ),
        (
            vec![(KMS_KEY_ID, key.id.as_str())],
            "a key id without x-amz-server-side-encryption",
        ),
    ] {
        refused_put_and_upload(&server, &headers, 400, "InvalidArgument", what).await;
    }

    // Contexts that are not base64 of a JSON object of strings.
    let bad_contexts = [
        ("not base64", "this is not base64!".to_owned()),
        ("base64 of text", context("just some text")),
        ("base64 of a JSON array", context(r#"["a","b"]"#)),
        ("base64 of a JSON string", context(r#""a""#)),
        ("a number value", context(r#"{"a":1}"#)),
        ("an object value", context(r#"{"a":{"b":"c"}}"#)),
        ("a null value", context(r#"{"a":null}"#)),
        ("truncated JSON", context(r#"{"a":"b""#)),
        ("invalid UTF-8", BASE64.encode(b"{\"a\":\"\xff\xfe\"}")),
    ];
    for (what, ctx) in &bad_contexts {
        let headers = [
            (SSE, "aws:kms"),
            (KMS_KEY_ID, key.id.as_str()),
            (CONTEXT, ctx.as_str()),
        ];
        raw(&server, "PUT", "/kms/refused", &headers, b"x")
            .await
            .assert_s3_error(400, "InvalidArgument", &format!("PUT context: {what}"));
        let copy = [
            (SSE, "aws:kms"),
            (KMS_KEY_ID, key.id.as_str()),
            (CONTEXT, ctx.as_str()),
            ("x-amz-copy-source", "/kms/source"),
        ];
        raw(&server, "PUT", "/kms/refused-copy", &copy, b"")
            .await
            .assert_s3_error(
                400,
                "InvalidArgument",
                &format!("CopyObject context: {what}"),
            );
    }

    // DSSE-KMS is not done.
    raw(
        &server,
        "PUT",
        "/kms/refused",
        &[(SSE, "aws:kms:dsse"), (KMS_KEY_ID, key.id.as_str())],
        b"x",
    )
    .await
    .assert_s3_error(501, "NotImplemented", "PUT aws:kms:dsse");

    for k in ["refused", "refused-copy"] {
        assert!(!object_exists(&c, "kms", k).await, "{k} was stored");
    }
    let uploads = c
        .list_multipart_uploads()
        .bucket("kms")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
    // The refusals made no key (no default key either).
    assert_eq!(listed(&server).len(), 1);

    // The controls: the same requests with the real key and a good context
    // succeed.
    let ctx = context(r#"{"a":"b","empty":""}"#);
    let headers = [
        (SSE, "aws:kms"),
        (KMS_KEY_ID, "alias/real"),
        (CONTEXT, ctx.as_str()),
    ];
    let r = raw(&server, "PUT", "/kms/accepted", &headers, b"accepted").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header(CONTEXT), Some(ctx.as_str()));
    expect_object(&c, "kms", "accepted", Enc::Kms(&key.arn), b"accepted").await;
}

/// A disabled key: PUT, GET (whole, ranged), CopyObject and UploadPartCopy
/// from its objects, CopyObject and CreateMultipartUpload to it are
/// `400 KMS.DisabledException`; HEAD still answers; other keys work; the
/// state survives kill -9; enabled again, everything reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_key_refuses_writes_and_reads_but_not_head_until_enabled() {
    let mut server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "cold").await;
    let mut rng = Rng::new(test_seed("kms-disabled"));
    let cold = create_kms_key(&server, Some("cold"), "to be disabled");
    let warm = create_kms_key(&server, Some("warm"), "stays enabled");
    let small = rng.bytes(50);
    let large = rng.bytes(2 * MIB + 99);
    put_kms(&c, "cold", "small", &small, Some("alias/cold")).await;
    put_kms(&c, "cold", "large", &large, Some(&cold.id)).await;
    put_bytes(&c, "cold", "plain", b"plain bytes").await;

    let d = kms_admin(&server, &["disable", "alias/cold"]);
    assert_eq!(d["enabled"], false, "{d}");

    // Writes under it.
    let disabled = "KMS.DisabledException";
    raw(
        &server,
        "PUT",
        "/cold/new",
        &[(SSE, "aws:kms"), (KMS_KEY_ID, "alias/cold")],
        b"new",
    )
    .await
    .assert_s3_error(400, disabled, "PUT under a disabled key");
    refused(
        c.put_object()
            .bucket("cold")
            .key("new")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&cold.arn)
            .body(ByteStream::from_static(b"new"))
            .send()
            .await,
        400,
        disabled,
        "PUT under a disabled key (by ARN)",
    );
    refused(
        c.copy_object()
            .bucket("cold")
            .key("copy-to")
            .copy_source("cold/plain")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&cold.id)
            .send()
            .await,
        400,
        disabled,
        "CopyObject to a disabled key",
    );
    refused(
        c.create_multipart_upload()
            .bucket("cold")
            .key("upload")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("alias/cold")
            .send()
            .await,
        400,
        disabled,
        "CreateMultipartUpload under a disabled key",
    );

    // Reads of its objects.
    raw(&server, "GET", "/cold/small", &[], b"")
        .await
        .assert_s3_error(400, disabled, "GET under a disabled key");
    refused(
        c.get_object().bucket("cold").key("large").send().await,
        400,
        disabled,
        "GET large",
    );
    refused(
        c.get_object()
            .bucket("cold")
            .key("large")
            .range("bytes=1000-1999")
            .send()
            .await,
        400,
        disabled,
        "ranged GET",
    );
    refused(
        c.copy_object()
            .bucket("cold")
            .key("copy-from")
            .copy_source("cold/large")
            .send()
            .await,
        400,
        disabled,
        "CopyObject from an object under a disabled key",
    );
    let up = c
        .create_multipart_upload()
        .bucket("cold")
        .key("part-copy")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap().to_owned();
    refused(
        c.upload_part_copy()
            .bucket("cold")
            .key("part-copy")
            .upload_id(&upload_id)
            .part_number(1)
            .copy_source("cold/large")
            .send()
            .await,
        400,
        disabled,
        "UploadPartCopy from an object under a disabled key",
    );
    for k in ["new", "copy-to", "copy-from", "part-copy"] {
        assert!(!object_exists(&c, "cold", k).await, "{k} was stored");
    }

    // HEAD does not decrypt: it answers.
    for (k, len) in [("small", small.len()), ("large", large.len())] {
        let h = c
            .head_object()
            .bucket("cold")
            .key(k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {k} under a disabled key: {}", show(&e)));
        check_enc(
            &format!("HEAD {k}"),
            Enc::Kms(&cold.arn),
            h.server_side_encryption(),
            h.ssekms_key_id(),
            None,
        );
        assert_eq!(h.content_length(), Some(len as i64));
    }

    // Other keys and plain objects are untouched.
    let body = rng.bytes(10_000);
    put_kms(&c, "cold", "warm", &body, Some("alias/warm")).await;
    expect_object(&c, "cold", "warm", Enc::Kms(&warm.arn), &body).await;
    expect_object(&c, "cold", "plain", Enc::S3, b"plain bytes").await;

    // kill -9: still disabled, still refused.
    server.restart(true);
    let c = sdk_client(&server);
    let keys = listed(&server);
    assert_eq!(listed_key(&keys, &cold.id)["enabled"], false, "{keys:?}");
    assert_eq!(listed_key(&keys, &warm.id)["enabled"], true, "{keys:?}");
    refused(
        c.get_object().bucket("cold").key("small").send().await,
        400,
        disabled,
        "GET under a disabled key after kill -9",
    );
    refused(
        c.put_object()
            .bucket("cold")
            .key("new")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("alias/cold")
            .body(ByteStream::from_static(b"new"))
            .send()
            .await,
        400,
        disabled,
        "PUT under a disabled key after kill -9",
    );

    // Enabled again: every object reads back, and it takes new ones.
    let e = kms_admin(&server, &["enable", &cold.id]);
    assert_eq!(e["enabled"], true, "{e}");
    expect_object(&c, "cold", "small", Enc::Kms(&cold.arn), &small).await;
    expect_object(&c, "cold", "large", Enc::Kms(&cold.arn), &large).await;
    let got = get_range(&c, "cold", "large", (1000, 1999), &cold.arn).await;
    assert!(got == large[1000..2000]);
    put_kms(&c, "cold", "new", b"new", Some("alias/cold")).await;
    expect_object(&c, "cold", "new", Enc::Kms(&cold.arn), b"new").await;
    let copy = c
        .copy_object()
        .bucket("cold")
        .key("copy-from")
        .copy_source("cold/large")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/cold")
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy after enable: {}", show(&e)));
    assert_eq!(copy.ssekms_key_id(), Some(cold.arn.as_str()));
    expect_object(&c, "cold", "copy-from", Enc::Kms(&cold.arn), &large).await;
}

/// Rotation: objects written before, between and after two rotations (and
/// a multipart upload whose parts straddle one) read back byte for byte,
/// all under the same ARN, also after kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_reads_old_and_new_objects_and_keeps_its_arn() {
    let mut server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "rot").await;
    let mut rng = Rng::new(test_seed("kms-rotate"));
    let key = create_kms_key(&server, Some("rotating"), "rotated twice");
    let arn = key.arn.as_str();
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();

    let body = rng.bytes(100);
    put_kms(&c, "rot", "before-small", &body, Some("alias/rotating")).await;
    objects.push(("before-small".into(), body));
    let body = rng.bytes(3 * MIB + 17);
    put_kms(&c, "rot", "before-large", &body, Some(&key.id)).await;
    objects.push(("before-large".into(), body));

    // A multipart upload begun before the rotation, finished after it.
    let up = c
        .create_multipart_upload()
        .bucket("rot")
        .key("straddling")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/rotating")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload: {}", show(&e)));
    let upload_id = up.upload_id().unwrap().to_owned();
    let part1 = rng.bytes(5 * MIB);
    let mut etags = upload_parts(
        &c,
        "rot",
        "straddling",
        &upload_id,
        std::slice::from_ref(&part1),
        None,
    )
    .await;

    let r = kms_admin(&server, &["rotate", "alias/rotating"]);
    assert_eq!(
        (text(&r, "arn"), r["versions"].clone()),
        (key.arn.clone(), Value::from(2))
    );
    // The data keys wrapped under version 1 (the two objects; not the
    // upload in progress) are re-wrapped under version 2 in the background,
    // their bytes untouched; they read below like every other.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let rewrapped = loop {
        let n = metric_sum(
            &server.metrics(),
            "cairn_kms_data_keys_rewrapped_total",
            &[],
        );
        if n >= 2.0 || std::time::Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(rewrapped, 2.0, "both objects' data keys re-wrapped");

    let part2 = rng.bytes(4321);
    let out = c
        .upload_part()
        .bucket("rot")
        .key("straddling")
        .upload_id(&upload_id)
        .part_number(2)
        .body(ByteStream::from(part2.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart 2 after the rotation: {}", show(&e)));
    etags.push(out.e_tag().unwrap().to_owned());
    let body = rng.bytes(2000);
    let put = put_kms(&c, "rot", "between", &body, Some("alias/rotating")).await;
    assert_eq!(
        put.ssekms_key_id(),
        Some(arn),
        "the ARN is the key's, not a version's"
    );
    objects.push(("between".into(), body));

    let r = kms_admin(&server, &["rotate", &key.id]);
    assert_eq!(
        (text(&r, "arn"), r["versions"].clone()),
        (key.arn.clone(), Value::from(3))
    );

    let done = complete_upload(&c, "rot", "straddling", &upload_id, &etags).await;
    assert_eq!(done.ssekms_key_id(), Some(arn));
    objects.push(("straddling".into(), [part1, part2].concat()));
    let body = rng.bytes(3 * MIB + 5);
    let ctx = context(r#"{"after":"rotation"}"#);
    let put = c
        .put_object()
        .bucket("rot")
        .key("after-large")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(arn)
        .ssekms_encryption_context(&ctx)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT after-large: {}", show(&e)));
    assert_eq!(put.ssekms_key_id(), Some(arn));
    assert_eq!(put.ssekms_encryption_context(), Some(ctx.as_str()));
    objects.push(("after-large".into(), body));

    for (k, body) in &objects {
        expect_object(&c, "rot", k, Enc::Kms(arn), body).await;
    }
    for k in ["before-large", "after-large"] {
        let whole = &objects.iter().find(|(n, _)| n == k).unwrap().1;
        let got = get_range(&c, "rot", k, (MIB - 7, 2 * MIB + 7), arn).await;
        assert!(got == whole[MIB - 7..=2 * MIB + 7], "{k}: range");
    }
    // The copy of an old object under the rotated key is the same bytes.
    let copy = c
        .copy_object()
        .bucket("rot")
        .key("before-copied")
        .copy_source("rot/before-large")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/rotating")
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy of an old object: {}", show(&e)));
    assert_eq!(copy.ssekms_key_id(), Some(arn));
    let old = objects[1].1.clone();
    objects.push(("before-copied".into(), old));

    // kill -9: the key with its versions, and every object.
    server.restart(true);
    let c = sdk_client(&server);
    let k = listed_key(&listed(&server), &key.id);
    assert_eq!(
        (k["versions"].clone(), k["enabled"].clone()),
        (Value::from(3), Value::from(true)),
        "{k}"
    );
    for (name, body) in &objects {
        expect_object(&c, "rot", name, Enc::Kms(arn), body).await;
    }
    let body = rng.bytes(999);
    let put = put_kms(&c, "rot", "after-restart", &body, Some("alias/rotating")).await;
    assert_eq!(put.ssekms_key_id(), Some(arn));
    expect_object(&c, "rot", "after-restart", Enc::Kms(arn), &body).await;
}

/// Multipart uploads under a KMS key: CreateMultipartUpload names the key,
/// parts are sent without SSE headers, Complete answers the key; reads
/// across part boundaries and by part number are exact. UploadPartCopy from
/// a KMS object into a plain upload and into an upload under another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_and_part_copies_under_kms_keys() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "multi").await;
    let mut rng = Rng::new(test_seed("kms-multipart"));
    let a = create_kms_key(&server, Some("mp-a"), "multipart a");
    let b = create_kms_key(&server, Some("mp-b"), "multipart b");

    let ctx = context(r#"{"upload":"multipart"}"#);
    let up = c
        .create_multipart_upload()
        .bucket("multi")
        .key("big")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/mp-a")
        .ssekms_encryption_context(&ctx)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload: {}", show(&e)));
    check_out!("CreateMultipartUpload", Enc::Kms(&a.arn), up);
    assert_eq!(up.ssekms_encryption_context(), Some(ctx.as_str()));
    let upload_id = up.upload_id().unwrap().to_owned();
    let parts = vec![
        rng.bytes(5 * MIB),
        rng.bytes(5 * MIB + 7),
        rng.bytes(123_457),
    ];
    let etags = upload_parts(&c, "multi", "big", &upload_id, &parts, Some(&a.arn)).await;
    let done = complete_upload(&c, "multi", "big", &upload_id, &etags).await;
    assert_eq!(
        (done.server_side_encryption(), done.ssekms_key_id()),
        (Some(&ServerSideEncryption::AwsKms), Some(a.arn.as_str())),
        "CompleteMultipartUpload"
    );
    assert!(
        done.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        done.e_tag()
    );
    let whole = parts.concat();
    expect_object(&c, "multi", "big", Enc::Kms(&a.arn), &whole).await;
    let r = raw(&server, "HEAD", "/multi/big", &[], b"").await;
    assert_eq!(
        r.header(CONTEXT),
        Some(ctx.as_str()),
        "HEAD: the upload's context"
    );
    let boundary = 5 * MIB;
    for (first, last) in [
        (boundary - 10, boundary + 10),
        (boundary - 1, boundary),
        (boundary, boundary),
        (2 * boundary + 7 - 3, 2 * boundary + 7 + 3),
        (0, whole.len() - 1),
        (whole.len() - 10, whole.len() - 1),
    ] {
        let got = get_range(&c, "multi", "big", (first, last), &a.arn).await;
        assert!(got == whole[first..=last], "bytes={first}-{last}");
    }
    let p2 = c
        .get_object()
        .bucket("multi")
        .key("big")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(p2.ssekms_key_id(), Some(a.arn.as_str()));
    assert!(
        p2.body.collect().await.unwrap().into_bytes() == parts[1],
        "partNumber=2"
    );

    // UploadPartCopy from a KMS object (under a) into a plain upload.
    let src = rng.bytes(6 * MIB + 11);
    put_kms(&c, "multi", "src", &src, Some(&a.id)).await;
    let up = c
        .create_multipart_upload()
        .bucket("multi")
        .key("copied-plain")
        .send()
        .await
        .unwrap();
    let plain_id = up.upload_id().unwrap().to_owned();
    let mut etags = Vec::new();
    for (n, (first, last)) in [(1, (0, 5 * MIB - 1)), (2, (5 * MIB, src.len() - 1))] {
        let out = c
            .upload_part_copy()
            .bucket("multi")
            .key("copied-plain")
            .upload_id(&plain_id)
            .part_number(n)
            .copy_source("multi/src")
            .copy_source_range(format!("bytes={first}-{last}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPartCopy {n} from a KMS object: {}", show(&e)));
        etags.push(out.copy_part_result().unwrap().e_tag().unwrap().to_owned());
    }
    complete_upload(&c, "multi", "copied-plain", &plain_id, &etags).await;
    expect_object(&c, "multi", "copied-plain", Enc::S3, &src).await;

    // Into an upload under b: a KMS range, a plain object, an uploaded tail.
    let plain = rng.bytes(5 * MIB + 3);
    put_bytes(&c, "multi", "plain", &plain).await;
    let up = c
        .create_multipart_upload()
        .bucket("multi")
        .key("copied-kms")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&b.id)
        .send()
        .await
        .unwrap();
    assert_eq!(up.ssekms_key_id(), Some(b.arn.as_str()));
    let kms_id = up.upload_id().unwrap().to_owned();
    let mut etags = Vec::new();
    for (n, source, range) in [
        (
            1,
            "multi/src",
            Some(format!("bytes=100-{}", 100 + 5 * MIB - 1)),
        ),
        (2, "multi/plain", None),
    ] {
        let out = c
            .upload_part_copy()
            .bucket("multi")
            .key("copied-kms")
            .upload_id(&kms_id)
            .part_number(n)
            .copy_source(source)
            .set_copy_source_range(range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPartCopy {n} from {source}: {}", show(&e)));
        check_out!(&format!("UploadPartCopy {n}"), Enc::Kms(&b.arn), out);
        etags.push(out.copy_part_result().unwrap().e_tag().unwrap().to_owned());
    }
    let tail = rng.bytes(1000);
    let out = c
        .upload_part()
        .bucket("multi")
        .key("copied-kms")
        .upload_id(&kms_id)
        .part_number(3)
        .body(ByteStream::from(tail.clone()))
        .send()
        .await
        .unwrap();
    etags.push(out.e_tag().unwrap().to_owned());
    let done = complete_upload(&c, "multi", "copied-kms", &kms_id, &etags).await;
    assert_eq!(done.ssekms_key_id(), Some(b.arn.as_str()));
    let want = [&src[100..100 + 5 * MIB], &plain[..], &tail[..]].concat();
    expect_object(&c, "multi", "copied-kms", Enc::Kms(&b.arn), &want).await;
    let got = get_range(
        &c,
        "multi",
        "copied-kms",
        (5 * MIB - 5, 5 * MIB + 5),
        &b.arn,
    )
    .await;
    assert!(got == want[5 * MIB - 5..=5 * MIB + 5]);
}

/// CopyObject between encryption modes: SSE-S3 → KMS, KMS → SSE-S3, key
/// a → key b (with a context), in place onto itself under another key
/// (metadata kept), KMS → SSE-C and SSE-C → KMS. Every copy is the same
/// bytes and reports its own encryption.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_move_objects_between_sse_s3_sse_kms_and_sse_c() {
    let server = TestServer::start_with_args(&["--allow-sse-c-over-http"]);
    let c = sdk_client(&server);
    create_bucket(&c, "copies").await;
    let mut rng = Rng::new(test_seed("kms-copies"));
    let a = create_kms_key(&server, Some("copy-a"), "copies a");
    let b = create_kms_key(&server, Some("copy-b"), "copies b");
    let ck = customer_key(0x3c);
    let body = rng.bytes(3 * MIB + 333);
    c.put_object()
        .bucket("copies")
        .key("plain")
        .metadata("note", "kept across copies")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let copy = |src: &str, dst: &str| {
        c.copy_object()
            .bucket("copies")
            .key(dst)
            .copy_source(format!("copies/{src}"))
    };

    // SSE-S3 → KMS.
    let out = copy("plain", "kms-a")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&a.id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("plain → kms: {}", show(&e)));
    check_out!("CopyObject plain → kms", Enc::Kms(&a.arn), out);
    expect_object(&c, "copies", "kms-a", Enc::Kms(&a.arn), &body).await;

    // KMS → SSE-S3: no SSE header on the copy.
    let out = copy("kms-a", "back-to-plain")
        .send()
        .await
        .unwrap_or_else(|e| panic!("kms → plain: {}", show(&e)));
    check_out!("CopyObject kms → plain", Enc::S3, out);
    expect_object(&c, "copies", "back-to-plain", Enc::S3, &body).await;

    // Key a → key b, with a context.
    let ctx = context(r#"{"copied":"from a"}"#);
    let out = copy("kms-a", "kms-b")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/copy-b")
        .ssekms_encryption_context(&ctx)
        .send()
        .await
        .unwrap_or_else(|e| panic!("kms a → kms b: {}", show(&e)));
    check_out!("CopyObject kms a → kms b", Enc::Kms(&b.arn), out);
    assert_eq!(out.ssekms_encryption_context(), Some(ctx.as_str()));
    expect_object(&c, "copies", "kms-b", Enc::Kms(&b.arn), &body).await;
    let r = raw(&server, "HEAD", "/copies/kms-b", &[], b"").await;
    assert_eq!(r.header(CONTEXT), Some(ctx.as_str()), "HEAD kms-b: context");

    // In place, onto itself, under another key, metadata copied: allowed
    // because the encryption changes.
    let out = copy("kms-a", "kms-a")
        .metadata_directive(MetadataDirective::Copy)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&b.arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("kms a → kms b in place: {}", show(&e)));
    assert_eq!(out.ssekms_key_id(), Some(b.arn.as_str()));
    expect_object(&c, "copies", "kms-a", Enc::Kms(&b.arn), &body).await;
    let h = c
        .head_object()
        .bucket("copies")
        .key("kms-a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata().and_then(|m| m.get("note")).map(String::as_str),
        Some("kept across copies"),
        "metadata after the in-place copy"
    );

    // KMS → SSE-C.
    let out = copy("kms-b", "sse-c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ck.key)
        .sse_customer_key_md5(&ck.md5)
        .send()
        .await
        .unwrap_or_else(|e| panic!("kms → SSE-C: {}", show(&e)));
    check_out!("CopyObject kms → SSE-C", Enc::C(&ck), out);
    expect_object(&c, "copies", "sse-c", Enc::C(&ck), &body).await;

    // SSE-C → KMS.
    let out = copy("sse-c", "from-sse-c")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&ck.key)
        .copy_source_sse_customer_key_md5(&ck.md5)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/copy-a")
        .send()
        .await
        .unwrap_or_else(|e| panic!("SSE-C → kms: {}", show(&e)));
    check_out!("CopyObject SSE-C → kms", Enc::Kms(&a.arn), out);
    expect_object(&c, "copies", "from-sse-c", Enc::Kms(&a.arn), &body).await;

    // The sources are unchanged.
    expect_object(&c, "copies", "plain", Enc::S3, &body).await;
    expect_object(&c, "copies", "kms-b", Enc::Kms(&b.arn), &body).await;
}

/// GetBucketEncryption: (algorithm, KMSMasterKeyID, BucketKeyEnabled).
async fn bucket_default(
    c: &aws_sdk_s3::Client,
    bucket: &str,
) -> (String, Option<String>, Option<bool>) {
    let got = c
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetBucketEncryption {bucket}: {}", show(&e)));
    let rules = got
        .server_side_encryption_configuration()
        .expect("a configuration")
        .rules();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let d = rules[0]
        .apply_server_side_encryption_by_default()
        .expect("ApplyServerSideEncryptionByDefault");
    (
        d.sse_algorithm().as_str().to_owned(),
        d.kms_master_key_id().map(str::to_owned),
        rules[0].bucket_key_enabled(),
    )
}

/// Bucket default encryption with `aws:kms`: answered as set; PUT,
/// CreateMultipartUpload and CopyObject without SSE headers are encrypted
/// under the bucket's key; an explicit header wins; no key id means the
/// default key; `aws:kms:dsse` is `501 NotImplemented`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_default_encryption_with_a_kms_key_applies_to_writes_without_sse_headers() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "dflt").await;
    create_bucket(&c, "other").await;
    let mut rng = Rng::new(test_seed("kms-bucket-default"));
    let a = create_kms_key(&server, Some("bucket-default"), "the bucket's key");
    let b = create_kms_key(&server, Some("explicit"), "named per request");

    c.put_bucket_encryption()
        .bucket("dflt")
        .server_side_encryption_configuration(crate::s3_encryption::configuration(
            ServerSideEncryption::AwsKms,
            Some("alias/bucket-default"),
            Some(true),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketEncryption aws:kms: {}", show(&e)));
    assert_eq!(
        bucket_default(&c, "dflt").await,
        (
            "aws:kms".to_owned(),
            Some("alias/bucket-default".to_owned()),
            Some(true)
        )
    );

    // A PUT without SSE headers: under the bucket's key.
    let body = rng.bytes(200_000);
    let put = c
        .put_object()
        .bucket("dflt")
        .key("implicit")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    check_out!("PUT without SSE headers", Enc::Kms(&a.arn), put);
    expect_object(&c, "dflt", "implicit", Enc::Kms(&a.arn), &body).await;
    // Explicit headers win: AES256, and another KMS key.
    let put = c
        .put_object()
        .bucket("dflt")
        .key("explicit-aes")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    check_out!("PUT AES256", Enc::S3, put);
    expect_object(&c, "dflt", "explicit-aes", Enc::S3, &body).await;
    let put = put_kms(&c, "dflt", "explicit-kms", &body, Some("alias/explicit")).await;
    assert_eq!(put.ssekms_key_id(), Some(b.arn.as_str()));
    expect_object(&c, "dflt", "explicit-kms", Enc::Kms(&b.arn), &body).await;

    // A multipart upload without SSE headers.
    let up = c
        .create_multipart_upload()
        .bucket("dflt")
        .key("implicit-mp")
        .send()
        .await
        .unwrap();
    check_out!(
        "CreateMultipartUpload without SSE headers",
        Enc::Kms(&a.arn),
        up
    );
    let upload_id = up.upload_id().unwrap().to_owned();
    let parts = vec![rng.bytes(5 * MIB), rng.bytes(777)];
    let etags = upload_parts(&c, "dflt", "implicit-mp", &upload_id, &parts, None).await;
    complete_upload(&c, "dflt", "implicit-mp", &upload_id, &etags).await;
    expect_object(&c, "dflt", "implicit-mp", Enc::Kms(&a.arn), &parts.concat()).await;

    // A copy into the bucket without SSE headers.
    put_bytes(&c, "other", "src", &body).await;
    let out = c
        .copy_object()
        .bucket("dflt")
        .key("copied-in")
        .copy_source("other/src")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.ssekms_key_id(),
        Some(a.arn.as_str()),
        "copy into the bucket"
    );
    expect_object(&c, "dflt", "copied-in", Enc::Kms(&a.arn), &body).await;
    // The other bucket is unchanged.
    expect_object(&c, "other", "src", Enc::S3, &body).await;

    // The bare key id as the bucket's key.
    c.put_bucket_encryption()
        .bucket("dflt")
        .server_side_encryption_configuration(crate::s3_encryption::configuration(
            ServerSideEncryption::AwsKms,
            Some(&b.id),
            None,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bucket_default(&c, "dflt").await.1, Some(b.id.clone()));
    let put = c
        .put_object()
        .bucket("dflt")
        .key("implicit-b")
        .body(ByteStream::from_static(b"under b"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.ssekms_key_id(), Some(b.arn.as_str()));
    expect_object(&c, "dflt", "implicit-b", Enc::Kms(&b.arn), b"under b").await;
    // Objects written earlier keep their key.
    expect_object(&c, "dflt", "implicit", Enc::Kms(&a.arn), &body).await;

    // aws:kms without a key: the default key aws/s3.
    c.put_bucket_encryption()
        .bucket("dflt")
        .server_side_encryption_configuration(crate::s3_encryption::configuration(
            ServerSideEncryption::AwsKms,
            None,
            None,
        ))
        .send()
        .await
        .unwrap();
    let (algorithm, key_id, _) = bucket_default(&c, "dflt").await;
    assert_eq!((algorithm.as_str(), key_id), ("aws:kms", None));
    let put = c
        .put_object()
        .bucket("dflt")
        .key("implicit-default")
        .body(ByteStream::from_static(b"default key"))
        .send()
        .await
        .unwrap();
    let keys = listed(&server);
    let defaults = with_alias(&keys, "aws/s3");
    assert_eq!(defaults.len(), 1, "{keys:?}");
    let default_arn = text(&defaults[0], "arn");
    assert_eq!(put.ssekms_key_id(), Some(default_arn.as_str()));
    expect_object(
        &c,
        "dflt",
        "implicit-default",
        Enc::Kms(&default_arn),
        b"default key",
    )
    .await;

    // DSSE-KMS: not implemented; the configuration is unchanged.
    let e = c
        .put_bucket_encryption()
        .bucket("dflt")
        .server_side_encryption_configuration(crate::s3_encryption::configuration(
            ServerSideEncryption::AwsKmsDsse,
            Some(&a.id),
            None,
        ))
        .send();
    refused(
        e.await,
        501,
        "NotImplemented",
        "PutBucketEncryption aws:kms:dsse",
    );
    assert_eq!(bucket_default(&c, "dflt").await.0, "aws:kms");
}

/// No file under the data directory holds a KMS object's plaintext: single
/// PUTs (inline and chunked), a multipart upload, a copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_object_bytes_never_appear_in_plaintext_on_disk() {
    let mut server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "rest").await;
    let mut rng = Rng::new(test_seed("kms-at-rest"));
    let key = create_kms_key(&server, Some("at-rest"), "at rest");
    let marker = format!("CAIRN-KMS-MARKER-{}", rng.hex(24));

    // The scan itself works.
    let probe = tempfile::tempdir().unwrap();
    let sample = marked_body(&mut rng, &marker, 10_000);
    std::fs::write(probe.path().join("probe"), &sample[5..]).unwrap();
    assert_eq!(
        crate::pipeline::files_containing(probe.path(), marker.as_bytes()).len(),
        1,
        "marker scan is broken"
    );

    let small = marked_body(&mut rng, &marker, 200);
    let large = marked_body(&mut rng, &marker, 2 * MIB);
    put_kms(&c, "rest", "small", &small, Some("alias/at-rest")).await;
    put_kms(&c, "rest", "large", &large, Some(&key.id)).await;
    let up = c
        .create_multipart_upload()
        .bucket("rest")
        .key("multipart")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&key.arn)
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap().to_owned();
    let parts = vec![
        marked_body(&mut rng, &marker, 5 * MIB),
        marked_body(&mut rng, &marker, MIB),
    ];
    let etags = upload_parts(&c, "rest", "multipart", &upload_id, &parts, None).await;
    complete_upload(&c, "rest", "multipart", &upload_id, &etags).await;
    c.copy_object()
        .bucket("rest")
        .key("copy")
        .copy_source("rest/large")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/at-rest")
        .send()
        .await
        .unwrap();

    server.stop();
    let found = crate::pipeline::files_containing(server.data_dir(), marker.as_bytes());
    assert!(found.is_empty(), "plaintext of a KMS object in {found:?}");

    // And it is all still there.
    server.start_again();
    let c = sdk_client(&server);
    expect_object(&c, "rest", "small", Enc::Kms(&key.arn), &small).await;
    expect_object(&c, "rest", "large", Enc::Kms(&key.arn), &large).await;
    expect_object(&c, "rest", "multipart", Enc::Kms(&key.arn), &parts.concat()).await;
    expect_object(&c, "rest", "copy", Enc::Kms(&key.arn), &large).await;
}

/// boto3, another client, against the same server: PutObject / GetObject /
/// HeadObject with a key id, a context and the bucket key, a ranged GET,
/// CopyObject to another key (named by alias), and the errors of a disabled
/// and an unknown key.
const BOTO3_KMS: &str = r#"
import base64, json, os, sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

phase = sys.argv[1]
env = os.environ
bucket = "boto-kms"
s3 = boto3.client(
    "s3",
    endpoint_url=env["CAIRN_ENDPOINT"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
)
body = bytes((i * 7 + 3) % 251 for i in range(300_000))
ctx = base64.b64encode(json.dumps({"client": "boto3", "why": "e2e"}).encode()).decode()


def kms(resp, arn, what):
    got = (resp.get("ServerSideEncryption"), resp.get("SSEKMSKeyId"))
    assert got == ("aws:kms", arn), f"{what}: {got}, want ('aws:kms', {arn!r})"


def header(resp, name):
    return resp["ResponseMetadata"]["HTTPHeaders"].get(name)


def refused(call, code, what):
    try:
        call()
    except ClientError as e:
        got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        assert got == (400, code), f"{what}: {got}, want (400, {code!r})"
        return
    raise AssertionError(f"{what}: succeeded, want 400 {code}")


if phase == "write":
    s3.create_bucket(Bucket=bucket)
    put = s3.put_object(
        Bucket=bucket, Key="a", Body=body, ServerSideEncryption="aws:kms",
        SSEKMSKeyId=env["KEY_A"], SSEKMSEncryptionContext=ctx, BucketKeyEnabled=True,
    )
    kms(put, env["ARN_A"], "PutObject")
    assert put.get("SSEKMSEncryptionContext") == ctx, put.get("SSEKMSEncryptionContext")
    assert put.get("BucketKeyEnabled") is True, put.get("BucketKeyEnabled")
    got = s3.get_object(Bucket=bucket, Key="a")
    kms(got, env["ARN_A"], "GetObject")
    assert got["Body"].read() == body, "GetObject: bytes differ"
    assert header(got, "x-amz-server-side-encryption-context") == ctx, "GetObject: context"
    assert got.get("BucketKeyEnabled") is True, "GetObject: bucket key"
    head = s3.head_object(Bucket=bucket, Key="a")
    kms(head, env["ARN_A"], "HeadObject")
    assert head["ContentLength"] == len(body), head["ContentLength"]
    assert header(head, "x-amz-server-side-encryption-context") == ctx, "HeadObject: context"
    part = s3.get_object(Bucket=bucket, Key="a", Range="bytes=1000-99999")
    kms(part, env["ARN_A"], "ranged GetObject")
    assert part["Body"].read() == body[1000:100000], "ranged GetObject: bytes differ"
    copy = s3.copy_object(
        Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "a"},
        ServerSideEncryption="aws:kms", SSEKMSKeyId=env["KEY_B"],
    )
    kms(copy, env["ARN_B"], "CopyObject")
    got = s3.get_object(Bucket=bucket, Key="b")
    kms(got, env["ARN_B"], "GetObject of the copy")
    assert got["Body"].read() == body, "copy: bytes differ"
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=env["KEY_C"])
    kms(put, env["ARN_C"], "PutObject c")
elif phase == "disabled":
    refused(lambda: s3.get_object(Bucket=bucket, Key="c"), "KMS.DisabledException", "GetObject under a disabled key")
    refused(
        lambda: s3.put_object(Bucket=bucket, Key="d", Body=b"d", ServerSideEncryption="aws:kms", SSEKMSKeyId=env["KEY_C"]),
        "KMS.DisabledException", "PutObject under a disabled key",
    )
    kms(s3.head_object(Bucket=bucket, Key="c"), env["ARN_C"], "HeadObject under a disabled key")
    refused(
        lambda: s3.put_object(Bucket=bucket, Key="e", Body=b"e", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/no-such-key"),
        "KMS.NotFoundException", "PutObject under an unknown key",
    )
elif phase == "enabled":
    got = s3.get_object(Bucket=bucket, Key="c")
    kms(got, env["ARN_C"], "GetObject after enable")
    assert got["Body"].read() == body, "c: bytes differ"
else:
    raise SystemExit(f"unknown phase {phase}")
print("boto3 kms passed")
"#;

#[test]
fn boto3_sees_the_same_sse_kms_objects_and_errors() {
    if !crate::clients::require_python_module("boto3") {
        return;
    }
    let server = TestServer::start();
    let a = create_kms_key(&server, None, "boto3 a");
    let b = create_kms_key(&server, Some("boto-b"), "boto3 b");
    let k = create_kms_key(&server, Some("boto-c"), "boto3 c");
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("kms.py");
    std::fs::write(&script, BOTO3_KMS).unwrap();
    let run = |phase: &str| {
        let mut cmd = boto3_command(&server, home.path());
        cmd.arg(&script)
            .arg(phase)
            .env("KEY_A", &a.id)
            .env("ARN_A", &a.arn)
            .env("KEY_B", "alias/boto-b")
            .env("ARN_B", &b.arn)
            .env("KEY_C", &k.arn)
            .env("ARN_C", &k.arn);
        let out = run_checked(&mut cmd, &format!("boto3 kms {phase}"), &server);
        assert!(
            out.contains("boto3 kms passed"),
            "boto3 kms {phase}:\n{out}"
        );
    };
    run("write");
    kms_admin(&server, &["disable", &k.id]);
    run("disabled");
    kms_admin(&server, &["enable", "alias/boto-c"]);
    run("enabled");
}

/// Key rotation under load (the issue's "key rotation under load: no
/// request fails, every object reads after"): writers and readers run
/// while the key is rotated again and again; every request succeeds and
/// every object written at any version reads back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_key_under_load_fails_no_request_and_loses_no_object() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "load").await;
    let key = admin_json(&server, &["kms", "key", "create", "--alias", "load"]);
    let arn = text(&key, "arn");
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for writer in 0..2u64 {
        let (c, written, stop, arn) = (c.clone(), written.clone(), stop.clone(), arn.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(writer + 1);
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 5 {
                let name = format!("w{writer}/{n}");
                let len = 1 + rng.below(96 << 10) as usize;
                let body = rng.bytes(len);
                let put = c
                    .put_object()
                    .bucket("load")
                    .key(&name)
                    .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                    .ssekms_key_id("alias/load")
                    .body(body.clone().into())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("PUT {name} during rotation: {e:?}"));
                assert_eq!(put.ssekms_key_id(), Some(arn.as_str()));
                // Read back at once, and an earlier object too.
                assert_eq!(get_bytes(&c, "load", &name).await, body, "{name}");
                let earlier = {
                    let w = written.lock().unwrap();
                    (!w.is_empty()).then(|| w[rng.below(w.len() as u64) as usize].clone())
                };
                if let Some((k, b)) = earlier {
                    assert_eq!(get_bytes(&c, "load", &k).await, b, "{k}");
                }
                written.lock().unwrap().push((name, body));
                n += 1;
            }
        }));
    }
    let mut versions = 1;
    for _ in 0..6 {
        // The runtime's other worker keeps the writers going meanwhile.
        let rotated = tokio::task::block_in_place(|| {
            admin_json(&server, &["kms", "key", "rotate", "alias/load"])
        });
        versions += 1;
        assert_eq!(rotated["versions"], versions);
        assert_eq!(rotated["arn"], arn.as_str());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let written = written.lock().unwrap().clone();
    assert!(
        written.len() >= 10,
        "only {} objects written",
        written.len()
    );
    for (k, b) in &written {
        assert_eq!(
            &get_bytes(&c, "load", k).await,
            b,
            "{k} after the rotations"
        );
    }
}

/// Part numbers with gaps (S3 allows completing with parts 1 and 3), and a
/// part number uploaded twice, under SSE-KMS and SSE-C: every part keeps
/// the keystream it was encrypted with, so the object reads back exactly
/// (whole, across the part boundary, and copied), never as the wrong
/// part's keystream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_multipart_objects_with_gaps_and_replaced_parts_read_back() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let server = TestServer::start_with_args(&["--allow-sse-c-over-http"]);
    let c = sdk_client(&server);
    create_bucket(&c, "gaps").await;
    let key = create_kms_key(&server, Some("gaps"), "");
    let ck = customer_key(9);
    let mut rng = Rng::new(31);
    let part1_old = rng.bytes(5 << 20);
    let part1 = rng.bytes(5 << 20);
    let part3 = rng.bytes(1234);
    for (name, sse_c) in [("kms", false), ("sse-c", true)] {
        let mut create = c.create_multipart_upload().bucket("gaps").key(name);
        create = if sse_c {
            create
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&ck.key)
                .sse_customer_key_md5(&ck.md5)
        } else {
            create
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id("alias/gaps")
        };
        let upload_id = create.send().await.unwrap().upload_id().unwrap().to_owned();
        let etag = |n: i32, data: &[u8]| {
            let mut up = c
                .upload_part()
                .bucket("gaps")
                .key(name)
                .upload_id(&upload_id)
                .part_number(n)
                .body(ByteStream::from(data.to_vec()));
            if sse_c {
                up = up
                    .sse_customer_algorithm("AES256")
                    .sse_customer_key(&ck.key)
                    .sse_customer_key_md5(&ck.md5);
            }
            async move { up.send().await.unwrap().e_tag().unwrap().to_owned() }
        };
        // Part 1 twice (the second replaces the first), part 3, no part 2.
        let _ = etag(1, &part1_old).await;
        let e1 = etag(1, &part1).await;
        let e3 = etag(3, &part3).await;
        let mut complete = c
            .complete_multipart_upload()
            .bucket("gaps")
            .key(name)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(e1).build())
                    .parts(CompletedPart::builder().part_number(3).e_tag(e3).build())
                    .build(),
            );
        if sse_c {
            complete = complete
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&ck.key)
                .sse_customer_key_md5(&ck.md5);
        }
        complete.send().await.unwrap();
        let whole: Vec<u8> = [part1.as_slice(), part3.as_slice()].concat();
        let enc = if sse_c {
            Enc::C(&ck)
        } else {
            Enc::Kms(&key.arn)
        };
        expect_object(&c, "gaps", name, enc, &whole).await;
        // Across the boundary.
        let (first, last) = ((5 << 20) - 100, (5 << 20) + 100);
        let mut get = c
            .get_object()
            .bucket("gaps")
            .key(name)
            .range(format!("bytes={first}-{last}"));
        if sse_c {
            get = get
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&ck.key)
                .sse_customer_key_md5(&ck.md5);
        }
        let got = get
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert!(
            got.as_ref() == &whole[first..=last],
            "{name}: range across parts 1|3"
        );
        // A copy (decrypted part by part) is the same bytes.
        let mut copy = c
            .copy_object()
            .bucket("gaps")
            .key(format!("{name}-copy"))
            .copy_source(format!("gaps/{name}"));
        if sse_c {
            copy = copy
                .copy_source_sse_customer_algorithm("AES256")
                .copy_source_sse_customer_key(&ck.key)
                .copy_source_sse_customer_key_md5(&ck.md5);
        }
        copy.send().await.unwrap();
        assert!(
            get_bytes(&c, "gaps", &format!("{name}-copy")).await == whole,
            "{name}: copy"
        );
    }
}

/// A bucket policy that requires one KMS key (`s3:x-amz-server-side-
/// encryption-aws-kms-key-id`, written with the key's ARN as the AWS
/// documentation's example does) sees every way of naming that key as
/// that key — its id, `alias/…`, an ARN with any account — and no other
/// key's name as it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_requiring_a_kms_key_sees_every_name_of_it_and_no_other() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "pol").await;
    let a = create_kms_key(&server, Some("pol-a"), "");
    let b = create_kms_key(&server, Some("pol-b"), "");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"OnlyKeyA","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pol/*","Condition":{{"StringNotEquals":{{"s3:x-amz-server-side-encryption-aws-kms-key-id":"{}"}}}}}}]}}"#,
        a.arn
    );
    c.put_bucket_policy()
        .bucket("pol")
        .policy(policy)
        .send()
        .await
        .unwrap();
    let other_account = format!("arn:aws:kms:{REGION}:111122223333:key/{}", a.id);
    for name in [
        a.arn.as_str(),
        a.id.as_str(),
        "alias/pol-a",
        other_account.as_str(),
    ] {
        put_kms(&c, "pol", "ok", b"x", Some(name)).await;
    }
    for name in [b.arn.as_str(), b.id.as_str(), "alias/pol-b"] {
        let r = c
            .put_object()
            .bucket("pol")
            .key("no")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(name)
            .body(ByteStream::from(b"x".to_vec()))
            .send()
            .await;
        refused(r, 403, "AccessDenied", &format!("PUT under {name}"));
    }
    let r = c
        .put_object()
        .bucket("pol")
        .key("no")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await;
    refused(r, 403, "AccessDenied", "PUT without a KMS key");
    assert!(!object_exists(&c, "pol", "no").await);
}

/// `alias/aws/s3` named explicitly (a bucket default as Terraform writes
/// it, or a request header) before anything has used the default key:
/// the key is made, as when no key id is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_key_named_explicitly_is_made_on_first_use() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "aws-s3").await;
    c.put_bucket_encryption()
        .bucket("aws-s3")
        .server_side_encryption_configuration(crate::s3_encryption::configuration(
            ServerSideEncryption::AwsKms,
            Some("alias/aws/s3"),
            None,
        ))
        .send()
        .await
        .unwrap();
    put_bytes(&c, "aws-s3", "implicit", b"by the bucket default").await;
    let keys = listed(&server);
    let default = with_alias(&keys, "aws/s3");
    assert_eq!(default.len(), 1, "{keys:?}");
    let arn = text(&default[0], "arn");
    expect_object(
        &c,
        "aws-s3",
        "implicit",
        Enc::Kms(&arn),
        b"by the bucket default",
    )
    .await;
    let put = put_kms(&c, "aws-s3", "explicit", b"named", Some("alias/aws/s3")).await;
    assert_eq!(put.ssekms_key_id(), Some(arn.as_str()));
}
