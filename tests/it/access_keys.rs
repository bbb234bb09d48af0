//! Access keys with per-bucket grants, end to end: `cairn admin key …`
//! creates, lists, changes and deletes keys on a live server, and aws-sdk-s3
//! requests signed with those keys are allowed or refused (`AccessDenied`)
//! bucket by bucket. Keys survive a restart; deleted keys stop working.

use crate::common::*;

async fn denied<T, E, R>(r: Result<T, aws_sdk_s3::error::SdkError<E, R>>, what: &str)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
    T: std::fmt::Debug,
{
    match r {
        Ok(v) => panic!("{what} should be denied, got {v:?}"),
        Err(e) => assert_eq!(
            sdk_error_code(&e).as_deref(),
            Some("AccessDenied"),
            "{what}: {e:?}"
        ),
    }
}

/// A server with buckets `photos`, `logs` (holding `day1.log`) and
/// `private` (holding `secret.txt`), and a bucket key "backup-job" made by
/// `cairn admin key create` with `photos:rw` and `logs:r`.
struct GrantedKey {
    server: TestServer,
    user: aws_sdk_s3::Client,
    id: String,
    secret: String,
}

async fn granted_key() -> GrantedKey {
    let server = TestServer::start();
    let root = sdk_client(&server);
    for b in ["photos", "logs", "private"] {
        create_bucket(&root, b).await;
    }
    put_bytes(&root, "logs", "day1.log", b"log line").await;
    put_bytes(&root, "private", "secret.txt", b"top secret").await;

    let created = admin_json(
        &server,
        &[
            "key",
            "create",
            "backup-job",
            "--allow",
            "photos:rw",
            "--allow",
            "logs:r",
        ],
    );
    let (id, secret) = (text(&created, "id"), text(&created, "secret"));
    assert_eq!(text(&created, "name"), "backup-job");
    assert_eq!(created["admin"], false);
    let user = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    GrantedKey {
        server,
        user,
        id,
        secret,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_key_reads_and_writes_with_rw_and_only_reads_with_r() {
    let GrantedKey {
        server: _server,
        user,
        ..
    } = granted_key().await;
    // photos: read and write.
    put_bytes(&user, "photos", "a.jpg", &[7u8; 5000]).await;
    assert_eq!(get_bytes(&user, "photos", "a.jpg").await, vec![7u8; 5000]);
    // logs: read only.
    assert_eq!(get_bytes(&user, "logs", "day1.log").await, b"log line");
    denied(
        user.put_object()
            .bucket("logs")
            .key("x")
            .body(b"x".to_vec().into())
            .send()
            .await,
        "PutObject on a read-only bucket",
    )
    .await;
    denied(
        user.delete_object()
            .bucket("logs")
            .key("day1.log")
            .send()
            .await,
        "DeleteObject on a read-only bucket",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_key_without_a_grant_cannot_get_head_or_list_the_bucket() {
    let GrantedKey {
        server: _server,
        user,
        ..
    } = granted_key().await;
    denied(
        user.get_object()
            .bucket("private")
            .key("secret.txt")
            .send()
            .await,
        "GetObject without a grant",
    )
    .await;
    assert!(
        user.head_bucket().bucket("private").send().await.is_err(),
        "HeadBucket without a grant"
    );
    denied(
        user.list_objects_v2().bucket("private").send().await,
        "ListObjectsV2 without a grant",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_by_a_bucket_key_needs_read_on_the_source_bucket() {
    let GrantedKey {
        server: _server,
        user,
        ..
    } = granted_key().await;
    denied(
        user.copy_object()
            .bucket("photos")
            .key("stolen.txt")
            .copy_source("private/secret.txt")
            .send()
            .await,
        "CopyObject from a bucket without a grant",
    )
    .await;
    user.copy_object()
        .bucket("photos")
        .key("copied.log")
        .copy_source("logs/day1.log")
        .send()
        .await
        .expect("copy from a readable bucket");
}

/// Bucket creation and deletion are for admin keys, and the refusal says so
/// (restic init with a bucket key otherwise reads a bare "Access Denied").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_delete_bucket_by_a_bucket_key_are_refused_saying_an_admin_key_is_needed() {
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    let GrantedKey {
        server: _server,
        user,
        ..
    } = granted_key().await;
    let e = user
        .create_bucket()
        .bucket("mine")
        .send()
        .await
        .expect_err("CreateBucket by a non-admin key");
    assert_eq!(
        (e.code(), sdk_error_status(&e)),
        (Some("AccessDenied"), Some(403)),
        "{e:?}"
    );
    let message = e.message().unwrap_or_default();
    assert!(
        message.starts_with("Creating a bucket needs an admin key;")
            && message.contains("grants on buckets only"),
        "CreateBucket refusal: {message}"
    );
    let e = user
        .delete_bucket()
        .bucket("logs")
        .send()
        .await
        .expect_err("DeleteBucket by a non-admin key");
    assert_eq!(
        (e.code(), sdk_error_status(&e)),
        (Some("AccessDenied"), Some(403)),
        "{e:?}"
    );
    let message = e.message().unwrap_or_default();
    assert!(
        message.starts_with("Deleting a bucket needs an admin key;"),
        "DeleteBucket refusal: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_by_a_bucket_key_shows_only_the_granted_buckets() {
    let GrantedKey {
        server: _server,
        user,
        ..
    } = granted_key().await;
    let names: Vec<String> = user
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["logs", "photos"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_a_bucket_key_and_says_why() {
    let GrantedKey {
        server, id, secret, ..
    } = granted_key().await;
    let (ok, _, err) = cairn_admin_as(&server, &id, &secret, &["status"]);
    assert!(!ok);
    assert!(err.contains("not an admin key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_allow_and_deny_change_grants_at_once() {
    let GrantedKey {
        server, user, id, ..
    } = granted_key().await;
    admin_json(&server, &["key", "allow", &id, "private", "--read"]);
    assert_eq!(
        get_bytes(&user, "private", "secret.txt").await,
        b"top secret"
    );
    let after = admin_json(&server, &["key", "deny", &id, "photos"]);
    assert_eq!(after["grants"].as_array().unwrap().len(), 2, "{after}");
    denied(
        user.put_object()
            .bucket("photos")
            .key("b.jpg")
            .body(b"x".to_vec().into())
            .send()
            .await,
        "PutObject after deny",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_list_shows_keys_and_grants_and_no_secret() {
    let GrantedKey {
        server, id, secret, ..
    } = granted_key().await;
    admin_json(&server, &["key", "allow", &id, "private", "--read"]);
    admin_json(&server, &["key", "deny", &id, "photos"]);
    let (ok, listing, _) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["key", "list"]);
    assert!(ok);
    assert!(
        listing.contains(&id) && listing.contains("backup-job"),
        "{listing}"
    );
    assert!(
        listing.contains("private:r") && listing.contains("logs:r"),
        "{listing}"
    );
    let list = admin_json(&server, &["key", "list"]);
    let raw = list.to_string();
    assert!(raw.contains(&id) && !raw.contains(&secret), "{raw}");
    assert!(
        raw.contains(ACCESS_KEY),
        "the start-up key is listed: {raw}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_info_reports_objects_bytes_and_the_keys_that_may_use_the_bucket() {
    let GrantedKey {
        server, user, id, ..
    } = granted_key().await;
    put_bytes(&user, "photos", "a.jpg", &[7u8; 5000]).await;
    user.copy_object()
        .bucket("photos")
        .key("copied.log")
        .copy_source("logs/day1.log")
        .send()
        .await
        .expect("copy from a readable bucket");
    admin_json(&server, &["key", "allow", &id, "private", "--read"]);
    let info = admin_json(&server, &["bucket", "info", "photos"]);
    assert_eq!(info["objects"], 2, "{info}");
    assert_eq!(info["logical_bytes"], 5000 + 8, "{info}");
    let info = admin_json(&server, &["bucket", "info", "private"]);
    assert!(info["keys"].to_string().contains(&id), "{info}");
    let (ok, _, err) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["bucket", "info", "nope"]);
    assert!(!ok && err.contains("no such bucket"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_grants_survive_a_restart() {
    let GrantedKey {
        mut server,
        id,
        secret,
        ..
    } = granted_key().await;
    server.restart(true);
    let user = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    assert_eq!(get_bytes(&user, "logs", "day1.log").await, b"log line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_key_stops_working_at_once() {
    let GrantedKey {
        server, user, id, ..
    } = granted_key().await;
    admin_json(&server, &["key", "delete", &id]);
    let err = user
        .get_object()
        .bucket("logs")
        .key("day1.log")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidAccessKeyId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_key_cannot_be_deleted_through_the_api() {
    let GrantedKey { server, .. } = granted_key().await;
    let (ok, _, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &["key", "delete", ACCESS_KEY],
    );
    assert!(!ok && err.contains("start-up"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_key_created_through_the_api_administers() {
    let server = TestServer::start();
    let created = admin_json(&server, &["key", "create", "ops", "--admin"]);
    let (id, secret) = (text(&created, "id"), text(&created, "secret"));
    let ops = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    create_bucket(&ops, "anything").await;
    put_bytes(&ops, "anything", "k", b"v").await;
    let (ok, out, err) = cairn_admin_as(&server, &id, &secret, &["status", "--json"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"drives\""), "{out}");
    // Bad grant specs are refused with a reason.
    let (ok, _, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &["key", "create", "x", "--allow", "photos:admin"],
    );
    assert!(!ok && err.contains("unknown right"), "{err}");
}

/// A presigned URL could be replayed until it expires: the admin API takes
/// header signatures only, even from an admin key.
#[test]
fn the_admin_api_refuses_presigned_urls() {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let server = TestServer::start();
    let url = format!("http://{}/admin/status", server.admin_addr());
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(std::time::Duration::from_secs(600));
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let host = server.admin_addr().to_string();
    let signable = SignableRequest::new(
        "GET",
        &url,
        [("host", host.as_str())].into_iter(),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let query: Vec<String> = instructions
        .params()
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    let (status, body) = http_get(
        server.admin_addr(),
        &format!("/admin/status?{}", query.join("&")),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("does not accept presigned URLs"), "{body}");
}

/// A device key (`--bucket fleet --prefix devices/42/ --write-only`)
/// creates objects under its prefix — PutObject, a multipart upload, a
/// presigned PUT sent by plain `curl` — and can do nothing else: no other
/// prefix, no GET or HEAD of what it wrote, no listing, no delete, no
/// tagging, and ListBuckets does not show the bucket. The key survives a
/// restart with its prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_key_creates_objects_under_its_prefix_and_nothing_else() {
    let mut server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "fleet").await;
    put_bytes(&root, "fleet", "devices/42/old.json", b"{}").await;
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
            "--expires-in",
            "12h",
        ],
    );
    let (id, secret) = (text(&created, "id"), text(&created, "secret"));
    assert_eq!(created["grants"][0]["prefix"], "devices/42/");
    let expires = created["expires_ms"].as_u64().expect("an expiry");
    let in_12h = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 12 * 3_600_000;
    assert!(expires.abs_diff(in_12h) < 120_000, "{expires} vs {in_12h}");

    for round in ["before a restart", "after a restart"] {
        // The port changes with a restart.
        let root = sdk_client(&server);
        let device = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
        let key = format!("devices/42/{}.json", round.len());
        device
            .put_object()
            .bucket("fleet")
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                b"{\"t\":21.5}",
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{round}: PUT under the prefix: {}", show(&e)));
        assert_eq!(get_bytes(&root, "fleet", &key).await, b"{\"t\":21.5}");

        // A multipart upload under the prefix.
        let up = device
            .create_multipart_upload()
            .bucket("fleet")
            .key("devices/42/big.bin")
            .send()
            .await
            .unwrap();
        let upload_id = up.upload_id().unwrap();
        let part = device
            .upload_part()
            .bucket("fleet")
            .key("devices/42/big.bin")
            .upload_id(upload_id)
            .part_number(1)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"part one"))
            .send()
            .await
            .unwrap();
        device
            .complete_multipart_upload()
            .bucket("fleet")
            .key("devices/42/big.bin")
            .upload_id(upload_id)
            .multipart_upload(completed(&[part.e_tag().unwrap().to_owned()]))
            .send()
            .await
            .unwrap();

        // Nothing else.
        let put = |k: &'static str| {
            device
                .put_object()
                .bucket("fleet")
                .key(k)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
                .send()
        };
        denied(
            put("devices/43/spoof.json").await,
            "PUT under another device's prefix",
        )
        .await;
        denied(
            put("devices/42").await,
            "PUT of the prefix without its slash",
        )
        .await;
        denied(put("firmware/latest.bin").await, "PUT outside the prefix").await;
        denied(
            put("devices/42/../43/x.json").await,
            "PUT through a .. segment",
        )
        .await;
        let locked = device
            .put_object()
            .bucket("fleet")
            .key("devices/42/locked.json")
            .object_lock_legal_hold_status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await;
        denied(locked, "PUT with a legal hold").await;
        let get = device.get_object().bucket("fleet").key(&key).send().await;
        denied(get, "GET of its own reading").await;
        let head = device.head_object().bucket("fleet").key(&key).send().await;
        assert_eq!(
            head.map(|_| ()).map_err(|e| sdk_error_status(&e)),
            Err(Some(403))
        );
        let list = device
            .list_objects_v2()
            .bucket("fleet")
            .prefix("devices/42/")
            .send()
            .await;
        denied(list, "listing its own prefix").await;
        let delete = device
            .delete_object()
            .bucket("fleet")
            .key(&key)
            .send()
            .await;
        denied(delete, "DELETE of its own reading").await;
        let tagging = device
            .put_object_tagging()
            .bucket("fleet")
            .key(&key)
            .tagging(crate::s3_compat::tagging(vec![crate::s3_compat::tag(
                "a", "b",
            )]))
            .send()
            .await;
        denied(tagging, "tagging its own reading").await;
        let copy = device
            .copy_object()
            .bucket("fleet")
            .key("devices/42/copy.json")
            .copy_source(format!("fleet/{key}"))
            .send()
            .await;
        denied(copy, "copying (reads the source)").await;
        let buckets = device.list_buckets().send().await.unwrap();
        assert!(buckets.buckets().is_empty(), "{buckets:?}");

        server.restart(true);
    }

    // The recipe of docs/operations.md: a presigned PUT URL (made where the
    // secret is kept) and a device with nothing but curl.
    let root = sdk_client(&server);
    let device = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    let presigned = device
        .put_object()
        .bucket("fleet")
        .key("devices/42/from-curl.csv")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(
                3600,
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args(["--data-binary", "t,21.5\n", presigned.uri()])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    assert_eq!(
        get_bytes(&root, "fleet", "devices/42/from-curl.csv").await,
        b"t,21.5\n"
    );
}

/// A key created with `--expires-in` stops working when it expires: its
/// requests fail as those of an unknown key, presigned URLs included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_refused_as_unknown() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "fleet").await;
    let created = admin_json(
        &server,
        &[
            "key",
            "create",
            "short-lived",
            "--allow",
            "fleet:rw",
            "--expires-in",
            "2s",
        ],
    );
    let (id, secret) = (text(&created, "id"), text(&created, "secret"));
    let user = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    put_bytes(&user, "fleet", "a", b"while valid").await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let err = user
        .put_object()
        .bucket("fleet")
        .key("b")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"late"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("InvalidAccessKeyId"),
        "{err:?}"
    );
    let (ok, _, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &["key", "create", "bad", "--allow", "fleet/devices/:rw"],
    );
    assert!(!ok && err.contains("may only create objects"), "{err}");
    // A prefix grant beside another grant on its bucket would merge into a
    // whole-bucket grant: refused.
    let (ok, _, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &[
            "key",
            "create",
            "mixed",
            "--allow",
            "fleet:r",
            "--bucket",
            "fleet",
            "--prefix",
            "d/",
            "--write-only",
        ],
    );
    assert!(!ok && err.contains("only grant on bucket"), "{err}");
}
