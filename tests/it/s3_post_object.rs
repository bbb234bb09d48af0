//! POST Object: form uploads as browsers and devices send them — the policy
//! made by boto3's `generate_presigned_post`, the form sent by `curl -F` —
//! checked against the AWS documentation ("POST Object", "Creating a POST
//! Policy", "Browser-Based Uploads Using POST").

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A presigned POST as boto3 makes it: the URL and the fields, in order.
struct PresignedPost {
    url: String,
    fields: Vec<(String, String)>,
}

impl PresignedPost {
    fn field(&self, name: &str) -> &str {
        &self
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no field {name}"))
            .1
    }

    fn with(&self, name: &str, value: &str) -> PresignedPost {
        let mut fields = self.fields.clone();
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => fields.push((name.to_owned(), value.to_owned())),
        }
        PresignedPost {
            url: self.url.clone(),
            fields,
        }
    }

    fn without(&self, name: &str) -> PresignedPost {
        PresignedPost {
            url: self.url.clone(),
            fields: self
                .fields
                .iter()
                .filter(|(n, _)| n != name)
                .cloned()
                .collect(),
        }
    }
}

/// boto3's `generate_presigned_post(bucket, key, Fields, Conditions,
/// ExpiresIn)`, signed with `key_id`/`secret` (callers check first that
/// boto3 is installed).
fn presigned_post(
    server: &TestServer,
    creds: (&str, &str),
    bucket: &str,
    key: &str,
    fields: &str,
    conditions: &str,
    expires_in: i64,
) -> PresignedPost {
    let home = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/presigned_post.py");
    let mut cmd = boto3_command(server, home.path());
    cmd.env("AWS_ACCESS_KEY_ID", creds.0)
        .env("AWS_SECRET_ACCESS_KEY", creds.1)
        .arg(script)
        .args([bucket, key, fields, conditions, &expires_in.to_string()]);
    let out = run_checked(&mut cmd, "presigned_post.py", server);
    let json: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    PresignedPost {
        url: json["url"].as_str().unwrap().to_owned(),
        fields: json["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    }
}

/// What `curl` got back.
#[derive(Debug)]
struct CurlResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl CurlResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error's message, unescaped.
    fn message(&self) -> String {
        xml_field(&self.body, "Message")
            .map(|m| xml_unescape(&m))
            .unwrap_or_default()
    }

    fn assert_error(&self, status: u16, code: &str, what: &str) {
        assert_eq!(self.status, status, "{what}: {self:?}");
        assert_eq!(
            xml_field(&self.body, "Code").as_deref(),
            Some(code),
            "{what}: {self:?}"
        );
    }
}

/// Sends the form with `curl -F`: every field as a literal string
/// (`--form-string`, so no value is read as a file name), then the file
/// (`filename` as the part's file name) unless `file` is `None`.
fn curl_form(url: &str, fields: &[(String, String)], file: Option<(&Path, &str)>) -> CurlResponse {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"]);
    for (name, value) in fields {
        cmd.arg("--form-string").arg(format!("{name}={value}"));
    }
    if let Some((path, filename)) = file {
        cmd.arg("-F").arg(format!(
            "file=@{};filename={filename};type=application/octet-stream",
            path.display()
        ));
    }
    cmd.arg(url);
    let out = cmd.output().expect("run curl");
    assert!(out.status.success(), "curl: {out:?}");
    let headers = std::fs::read_to_string(&head)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    CurlResponse {
        status: String::from_utf8_lossy(&out.stdout).parse().unwrap(),
        headers,
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    }
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// The device recipe: a policy made where the secret is kept lets a device
/// with only `curl` upload under one prefix, within a size range; what the
/// form sets (content type, metadata, `${filename}`) lands on the object,
/// and each answer S3 documents comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boto3_presigned_post_uploads_from_curl_as_documented() {
    if !crate::clients::require_python_module("boto3") {
        return;
    }
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "fleet").await;
    let post = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "readings/${filename}",
        r#"{"Content-Type": "application/json", "x-amz-meta-site": "north", "success_action_status": "201"}"#,
        r#"[["starts-with", "$key", "readings/"], ["content-length-range", 2, 4096],
            {"Content-Type": "application/json"}, {"x-amz-meta-site": "north"},
            {"success_action_status": "201"}]"#,
        3600,
    );
    let dir = tempfile::tempdir().unwrap();
    let reading = br#"{"t": 21.5, "rh": 40}"#;
    let file = write_file(dir.path(), "reading.json", reading);

    // 201: the PostResponse document, the object as the form described it.
    let r = curl_form(&post.url, &post.fields, Some((&file, "sensor-7.json")));
    assert_eq!(r.status, 201, "{r:?}");
    let etag = format!("\"{}\"", md5_hex(reading));
    assert_eq!(
        xml_field(&r.body, "Bucket").as_deref(),
        Some("fleet"),
        "{r:?}"
    );
    assert_eq!(
        xml_field(&r.body, "Key").as_deref(),
        Some("readings/sensor-7.json"),
        "{r:?}"
    );
    assert_eq!(
        xml_field(&r.body, "ETag").map(|e| xml_unescape(&e)),
        Some(etag.clone()),
        "{r:?}"
    );
    assert!(
        !r.body.contains("xmlns"),
        "S3 writes PostResponse without a namespace: {r:?}"
    );
    assert_eq!(r.header("etag"), Some(etag.as_str()), "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(format!("{}/fleet/readings%2Fsensor-7.json", server.endpoint()).as_str()),
        "{r:?}"
    );
    let head = root
        .head_object()
        .bucket("fleet")
        .key("readings/sensor-7.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("site"))
            .map(String::as_str),
        Some("north")
    );
    assert_eq!(
        get_bytes(&root, "fleet", "readings/sensor-7.json").await,
        reading
    );

    // Without success_action_status (its condition dropped too): 204 with
    // ETag and Location, as S3's default.
    let plain = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "readings/plain.json",
        "{}",
        "[]",
        3600,
    );
    let r = curl_form(&plain.url, &plain.fields, Some((&file, "x.json")));
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.header("location").is_some(), "{r:?}");
    assert_eq!(
        get_bytes(&root, "fleet", "readings/plain.json").await,
        reading
    );

    // success_action_redirect: 303 to the URL, bucket, key and ETag added.
    let redirect = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "readings/r.json",
        r#"{"success_action_redirect": "https://example.com/done?x=1"}"#,
        r#"[{"success_action_redirect": "https://example.com/done?x=1"}]"#,
        3600,
    );
    let r = curl_form(&redirect.url, &redirect.fields, Some((&file, "x.json")));
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(
            format!(
                "https://example.com/done?x=1&bucket=fleet&key=readings%2Fr.json&etag=%22{}%22",
                md5_hex(reading)
            )
            .as_str()
        ),
        "{r:?}"
    );

    // A 20 MiB file streams through (the form holds only its fields).
    let big = Rng::new(test_seed("post-big")).bytes(20 * MIB + 7);
    let big_file = write_file(dir.path(), "big.bin", &big);
    let large = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "big.bin",
        "{}",
        "[]",
        3600,
    );
    let r = curl_form(&large.url, &large.fields, Some((&big_file, "big.bin")));
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(get_bytes(&root, "fleet", "big.bin").await, big);
}

/// Everything a policy forbids is refused with S3's error, and nothing is
/// stored: sizes outside the range, a key outside the prefix, a field the
/// policy does not name, a changed policy or signature, an expired policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_outside_its_policy_is_refused_and_stores_nothing() {
    if !crate::clients::require_python_module("boto3") {
        return;
    }
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "fleet").await;
    let post = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "in/${filename}",
        "{}",
        r#"[["starts-with", "$key", "in/"], ["content-length-range", 10, 100]]"#,
        3600,
    );
    let dir = tempfile::tempdir().unwrap();
    let small = write_file(dir.path(), "small", b"123456789");
    let fits = write_file(dir.path(), "fits", b"1234567890");
    let large = write_file(dir.path(), "large", &[b'x'; 101]);

    let r = curl_form(&post.url, &post.fields, Some((&large, "a")));
    r.assert_error(400, "EntityTooLarge", "101 bytes, range 10-100");
    assert_eq!(xml_field(&r.body, "MaxSizeAllowed").as_deref(), Some("100"));
    let r = curl_form(&post.url, &post.fields, Some((&small, "a")));
    r.assert_error(400, "EntityTooSmall", "9 bytes, range 10-100");
    assert!(
        !object_exists(&root, "fleet", "in/a").await,
        "a refused upload stored"
    );

    let r = curl_form(
        &post.url,
        &post.with("key", "out/a").fields,
        Some((&fits, "a")),
    );
    r.assert_error(403, "AccessDenied", "key outside the prefix");
    assert!(
        r.message()
            == "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"in/\"]",
        "{r:?}"
    );
    let r = curl_form(
        &post.url,
        &post.with("x-amz-meta-extra", "1").fields,
        Some((&fits, "a")),
    );
    r.assert_error(403, "AccessDenied", "a field the policy does not name");
    assert!(
        r.body
            .contains("Invalid according to Policy: Extra input fields: x-amz-meta-extra"),
        "{r:?}"
    );
    // x-ignore-* fields need no condition.
    let r = curl_form(
        &post.url,
        &post.with("x-ignore-note", "anything").fields,
        Some((&fits, "ok")),
    );
    assert_eq!(r.status, 204, "{r:?}");

    // The policy or its signature changed: the signature no longer verifies.
    let policy = post.field("policy").to_owned();
    let widened = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let json = String::from_utf8(b64.decode(&policy).unwrap()).unwrap();
        b64.encode(json.replace("\"in/\"", "\"\""))
    };
    let r = curl_form(
        &post.url,
        &post.with("policy", &widened).fields,
        Some((&fits, "b")),
    );
    r.assert_error(403, "SignatureDoesNotMatch", "a widened policy");
    let mut sig = post.field("x-amz-signature").to_owned();
    let last = if sig.ends_with('0') { "1" } else { "0" };
    sig.replace_range(sig.len() - 1.., last);
    let r = curl_form(
        &post.url,
        &post.with("x-amz-signature", &sig).fields,
        Some((&fits, "b")),
    );
    r.assert_error(403, "SignatureDoesNotMatch", "a changed signature");
    let r = curl_form(
        &post.url,
        &post.without("x-amz-signature").fields,
        Some((&fits, "b")),
    );
    r.assert_error(400, "InvalidArgument", "no signature");

    // Expired: boto3 with a negative lifetime writes a past expiration.
    let expired = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "in/late",
        "{}",
        "[]",
        -60,
    );
    let r = curl_form(&expired.url, &expired.fields, Some((&fits, "late")));
    r.assert_error(403, "AccessDenied", "an expired policy");
    assert!(
        r.body
            .contains("Invalid according to Policy: Policy expired."),
        "{r:?}"
    );

    // Another bucket's form cannot be sent to this one: boto3 puts the
    // bucket in the policy.
    create_bucket(&root, "other").await;
    let other_url = post.url.replace("/fleet", "/other");
    let r = curl_form(&other_url, &post.fields, Some((&fits, "c")));
    r.assert_error(403, "AccessDenied", "the form of another bucket");

    // No file, no key, not a form.
    let r = curl_form(&post.url, &post.fields, None);
    r.assert_error(400, "InvalidArgument", "no file");
    assert!(
        r.body
            .contains("POST requires exactly one file upload per request."),
        "{r:?}"
    );
    let r = curl_form(&post.url, &post.without("key").fields, Some((&fits, "d")));
    r.assert_error(400, "InvalidArgument", "no key");
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "--data", "key=a", &post.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n412"), "an urlencoded body: {text}");
    assert!(text.contains("multipart/form-data"), "{text}");

    // More than 20 KiB of fields before the file.
    let r = curl_form(
        &post.url,
        &post.with("x-ignore-pad", &"p".repeat(21 * 1024)).fields,
        Some((&fits, "e")),
    );
    r.assert_error(400, "MaxPostPreDataLengthExceeded", "21 KiB of fields");

    // A canned ACL other than the owner's: refused as on a PUT (the bucket
    // owner enforces ownership), though the policy allows the field.
    let public = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "in/public",
        r#"{"acl": "public-read"}"#,
        r#"[{"acl": "public-read"}]"#,
        3600,
    );
    let r = curl_form(&public.url, &public.fields, Some((&fits, "p")));
    r.assert_error(400, "AccessControlListNotSupported", "acl=public-read");

    // A query on the bucket's POST is no form upload.
    let r = curl_form(
        &format!("{}?uploads", post.url),
        &post.fields,
        Some((&fits, "q")),
    );
    assert!(
        matches!(r.status, 403 | 405),
        "unsigned head, refused before routing matters: {r:?}"
    );

    let listed = root.list_objects_v2().bucket("fleet").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["in/ok"], "only the accepted upload is stored");
}

/// A form is authorized as a PutObject by the key that signed its policy:
/// a device key may post under its prefix only, an unsigned form needs a
/// bucket policy that lets anyone put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_is_authorized_as_its_signer_or_as_anonymous() {
    if !crate::clients::require_python_module("boto3") {
        return;
    }
    let server = TestServer::start_with_args(&["--allow-public-buckets"]);
    let root = sdk_client(&server);
    create_bucket(&root, "fleet").await;
    let created = admin_json(
        &server,
        &[
            "key",
            "create",
            "sensor-42",
            "--bucket",
            "fleet",
            "--prefix",
            "devices/42/",
            "--write-only",
        ],
    );
    let device = (text(&created, "id"), text(&created, "secret"));
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "r.csv", b"t,21.5\n");

    let own = presigned_post(
        &server,
        (&device.0, &device.1),
        "fleet",
        "devices/42/${filename}",
        "{}",
        r#"[["starts-with", "$key", "devices/42/"]]"#,
        3600,
    );
    let r = curl_form(&own.url, &own.fields, Some((&file, "r1.csv")));
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        get_bytes(&root, "fleet", "devices/42/r1.csv").await,
        b"t,21.5\n"
    );

    // A policy the device signed for another prefix: its own key's grant
    // refuses it, whatever the policy says.
    let elsewhere = presigned_post(
        &server,
        (&device.0, &device.1),
        "fleet",
        "devices/43/${filename}",
        "{}",
        r#"[["starts-with", "$key", ""]]"#,
        3600,
    );
    let r = curl_form(&elsewhere.url, &elsewhere.fields, Some((&file, "r.csv")));
    r.assert_error(403, "AccessDenied", "a device key outside its prefix");
    // Nor may it lock what it writes.
    let locking = presigned_post(
        &server,
        (&device.0, &device.1),
        "fleet",
        "devices/42/locked.csv",
        r#"{"x-amz-object-lock-legal-hold": "ON"}"#,
        r#"[{"x-amz-object-lock-legal-hold": "ON"}]"#,
        3600,
    );
    let r = curl_form(&locking.url, &locking.fields, Some((&file, "r.csv")));
    r.assert_error(403, "AccessDenied", "a device key setting a legal hold");

    // Unsigned: refused on a private bucket, accepted once a policy allows
    // anyone to put under a prefix.
    let anonymous = vec![("key".to_owned(), "drop/a.csv".to_owned())];
    let r = curl_form(
        &format!("{}/fleet", server.endpoint()),
        &anonymous,
        Some((&file, "a")),
    );
    r.assert_error(403, "AccessDenied", "an unsigned form on a private bucket");
    root.put_bucket_policy()
        .bucket("fleet")
        .policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::fleet/drop/*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let r = curl_form(
        &format!("{}/fleet", server.endpoint()),
        &anonymous,
        Some((&file, "a")),
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(get_bytes(&root, "fleet", "drop/a.csv").await, b"t,21.5\n");
    let outside = vec![("key".to_owned(), "other/a.csv".to_owned())];
    let r = curl_form(
        &format!("{}/fleet", server.endpoint()),
        &outside,
        Some((&file, "a")),
    );
    r.assert_error(
        403,
        "AccessDenied",
        "an unsigned form outside the policy's prefix",
    );

    // A bucket policy can tell form uploads apart (`s3:authType` is `POST`).
    root.put_bucket_policy()
        .bucket("fleet")
        .policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::fleet/drop/*"},
               {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::fleet/forms-off/*","Condition":{"StringEquals":{"s3:authType":"POST"}}}]}"#,
        )
        .send()
        .await
        .unwrap();
    let off = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "forms-off/a.csv",
        "{}",
        "[]",
        3600,
    );
    let r = curl_form(&off.url, &off.fields, Some((&file, "a")));
    r.assert_error(403, "AccessDenied", "a form where the policy denies POST");
    put_bytes(&root, "fleet", "forms-off/a.csv", b"signed PUT").await;

    // Checksums in the form are verified against the file.
    let checked = presigned_post(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        "fleet",
        "checked.csv",
        "{}",
        r#"[["starts-with", "$x-amz-checksum-sha256", ""]]"#,
        3600,
    );
    let good = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"t,21.5\n"))
    };
    let r = curl_form(
        &checked.url,
        &checked.with("x-amz-checksum-sha256", &good).fields,
        Some((&file, "c")),
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.header("x-amz-checksum-sha256"),
        Some(good.as_str()),
        "{r:?}"
    );
    let bad = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([0u8; 32])
    };
    let r = curl_form(
        &checked.url,
        &checked.with("x-amz-checksum-sha256", &bad).fields,
        Some((&file, "c")),
    );
    r.assert_error(400, "BadDigest", "a checksum the file does not have");
}

/// A client that trickles its form one byte per chunk is cut off once it
/// has sent too many pieces before the file (the parser rescans what it
/// holds on each one), with S3's error and long before its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_trickled_byte_by_byte_is_refused() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    create_bucket(&sdk_client(&server), "fleet").await;
    let addr = server.s3_addr();
    let response = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        let head = format!(
            "POST /fleet HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=XYZ\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        // A part header that never ends, one byte per chunk.
        let mut sent = 0;
        for _ in 0..6000 {
            if s.write_all(b"1\r\n-\r\n").is_err() {
                break;
            }
            sent += 1;
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (sent, String::from_utf8_lossy(&out).into_owned())
    })
    .await
    .unwrap();
    assert!(
        response.1.starts_with("HTTP/1.1 400")
            && response.1.contains("<Code>MalformedPOSTRequest</Code>"),
        "after {} one-byte chunks: {}",
        response.0,
        response.1
    );
}
