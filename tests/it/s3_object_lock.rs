//! Object Lock end to end with aws-sdk-s3 and hand-built requests, written
//! from the S3 documentation (user guide "Locking objects with Object
//! Lock"; API reference PutObjectLockConfiguration, PutObjectRetention,
//! PutObjectLegalHold, DeleteObject): a bucket created with Object Lock is
//! versioned and cannot be suspended; a default retention locks every new
//! version; COMPLIANCE is never shortened or removed and its versions never
//! deleted before the date — by anyone, the admin key included; GOVERNANCE
//! only with `x-amz-bypass-governance-retention` by a key allowed to bypass
//! (an admin key); a legal hold blocks deletion until removed; a DELETE
//! without a version id only places a delete marker. Every refusal is
//! `403 AccessDenied` and changes nothing.

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, Delete, ObjectIdentifier, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
};

use crate::common::*;

async fn lock_bucket(c: &aws_sdk_s3::Client, bucket: &str) {
    c.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
}

fn in_secs(secs: i64) -> DateTime {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    DateTime::from_secs(now + secs)
}

async fn put(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) -> String {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

async fn delete_version_code(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: &str,
    bypass: bool,
) -> Option<String> {
    let mut req = c
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version);
    if bypass {
        req = req.bypass_governance_retention(true);
    }
    match req.send().await {
        Ok(_) => None,
        Err(e) => Some(sdk_error_code(&e).unwrap_or_default()),
    }
}

async fn version_exists(c: &aws_sdk_s3::Client, bucket: &str, key: &str, version: &str) -> bool {
    c.head_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_created_with_object_lock_is_versioned_and_cannot_be_suspended() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    lock_bucket(&c, "locked").await;
    let v = c
        .get_bucket_versioning()
        .bucket("locked")
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    let cfg = c
        .get_object_lock_configuration()
        .bucket("locked")
        .send()
        .await
        .unwrap();
    let cfg = cfg.object_lock_configuration().unwrap();
    assert_eq!(cfg.object_lock_enabled(), Some(&ObjectLockEnabled::Enabled));
    assert!(cfg.rule().is_none());
    let err = c
        .put_bucket_versioning()
        .bucket("locked")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidBucketState"));
    // A bucket without Object Lock has no configuration.
    create_bucket(&c, "plain").await;
    let err = c
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("ObjectLockConfigurationNotFoundError")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_governance_retention_protects_new_versions_until_bypassed() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    lock_bucket(&c, "gov").await;
    c.put_object_lock_configuration()
        .bucket("gov")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v = put(&c, "gov", "backup.tar", b"day one").await;
    let head = c
        .head_object()
        .bucket("gov")
        .key("backup.tar")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let expected = in_secs(86_400).secs();
    assert!((until - expected).abs() < 120, "{until} vs {expected}");
    let r = c
        .get_object_retention()
        .bucket("gov")
        .key("backup.tar")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Governance)
    );
    // Deleting the version: refused without the bypass; nothing changes.
    assert_eq!(
        delete_version_code(&c, "gov", "backup.tar", &v, false)
            .await
            .as_deref(),
        Some("AccessDenied")
    );
    assert!(version_exists(&c, "gov", "backup.tar", &v).await);
    // A DELETE without a version id only places a marker.
    let d = c
        .delete_object()
        .bucket("gov")
        .key("backup.tar")
        .send()
        .await
        .unwrap();
    assert_eq!(d.delete_marker(), Some(true));
    assert!(version_exists(&c, "gov", "backup.tar", &v).await);
    // Shortening GOVERNANCE needs the bypass too.
    let shorten = c
        .put_object_retention()
        .bucket("gov")
        .key("backup.tar")
        .version_id(&v)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .retain_until_date(in_secs(60))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&shorten).as_deref(), Some("AccessDenied"));
    // The admin key with the bypass may delete it.
    assert_eq!(
        delete_version_code(&c, "gov", "backup.tar", &v, true).await,
        None
    );
    assert!(!version_exists(&c, "gov", "backup.tar", &v).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_is_never_shortened_removed_or_deleted_by_anyone() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    lock_bucket(&c, "comp").await;
    let out = c
        .put_object()
        .bucket("comp")
        .key("ledger")
        .body(b"entries".to_vec().into())
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_secs(3600))
        .send()
        .await
        .unwrap();
    let v = out.version_id().unwrap().to_owned();
    for bypass in [false, true] {
        assert_eq!(
            delete_version_code(&c, "comp", "ledger", &v, bypass)
                .await
                .as_deref(),
            Some("AccessDenied"),
            "bypass {bypass}"
        );
    }
    let retention = |mode, secs| {
        ObjectLockRetention::builder()
            .mode(mode)
            .retain_until_date(in_secs(secs))
            .build()
    };
    for (mode, secs) in [
        (ObjectLockRetentionMode::Compliance, 60),
        (ObjectLockRetentionMode::Governance, 7200),
    ] {
        let err = c
            .put_object_retention()
            .bucket("comp")
            .key("ledger")
            .version_id(&v)
            .bypass_governance_retention(true)
            .retention(retention(mode.clone(), secs))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            sdk_error_code(&err).as_deref(),
            Some("AccessDenied"),
            "{mode:?}"
        );
    }
    // Extending is allowed.
    c.put_object_retention()
        .bucket("comp")
        .key("ledger")
        .version_id(&v)
        .retention(retention(ObjectLockRetentionMode::Compliance, 7200))
        .send()
        .await
        .unwrap();
    // DeleteObjects refuses the version too, per key.
    let out = c
        .delete_objects()
        .bucket("comp")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("ledger")
                        .version_id(&v)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    assert!(version_exists(&c, "comp", "ledger", &v).await);
    // The bucket holding it cannot be deleted.
    let err = c.delete_bucket().bucket("comp").send().await.unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("BucketNotEmpty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_blocks_deletion_until_removed() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    lock_bucket(&c, "hold").await;
    let v = put(&c, "hold", "evidence", b"exhibit A").await;
    let hold = |status| {
        c.put_object_legal_hold()
            .bucket("hold")
            .key("evidence")
            .version_id(&v)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
    };
    hold(ObjectLockLegalHoldStatus::On).await.unwrap();
    let got = c
        .get_object_legal_hold()
        .bucket("hold")
        .key("evidence")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.legal_hold().unwrap().status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        delete_version_code(&c, "hold", "evidence", &v, true)
            .await
            .as_deref(),
        Some("AccessDenied")
    );
    hold(ObjectLockLegalHoldStatus::Off).await.unwrap();
    assert_eq!(
        delete_version_code(&c, "hold", "evidence", &v, false).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_key_cannot_bypass_governance() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    lock_bucket(&c, "team").await;
    let out = c
        .put_object()
        .bucket("team")
        .key("f")
        .body(b"x".to_vec().into())
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_secs(3600))
        .send()
        .await
        .unwrap();
    let v = out.version_id().unwrap().to_owned();
    let (ok, out, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &["key", "create", "writer", "--allow", "team:rw", "--json"],
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let user = sdk_client_for(
        &server.endpoint(),
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
        &[],
    );
    assert_eq!(
        delete_version_code(&user, "team", "f", &v, true)
            .await
            .as_deref(),
        Some("AccessDenied")
    );
    assert!(version_exists(&c, "team", "f", &v).await);
}

/// A stolen read-write key must not be able to switch the protection off:
/// suspending versioning, replacing the default retention and releasing a
/// legal hold are the bucket owner's (an admin key's), while a writer may
/// still lengthen a retention (backup tools extend theirs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_key_cannot_switch_protection_off() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    lock_bucket(&c, "vault").await;
    let out = c
        .put_object()
        .bucket("vault")
        .key("f")
        .body(b"x".to_vec().into())
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_secs(3600))
        .send()
        .await
        .unwrap();
    let v = out.version_id().unwrap().to_owned();
    let (ok, out, err) = cairn_admin_as(
        &server,
        ACCESS_KEY,
        SECRET_KEY,
        &["key", "create", "writer", "--allow", "vault:rw", "--json"],
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let user = sdk_client_for(
        &server.endpoint(),
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
        &[],
    );
    let err = user
        .put_object_lock_configuration()
        .bucket("vault")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("AccessDenied"));
    let err = user
        .put_bucket_versioning()
        .bucket("vault")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("AccessDenied"));
    let err = user
        .put_object_legal_hold()
        .bucket("vault")
        .key("f")
        .version_id(&v)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("AccessDenied"));
    // Lengthening is a writer's right.
    user.put_object_retention()
        .bucket("vault")
        .key("f")
        .version_id(&v)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .retain_until_date(in_secs(7200))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let hold = c
        .get_object_legal_hold()
        .bucket("vault")
        .key("f")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hold.legal_hold().and_then(|h| h.status()),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    let cfg = c
        .get_object_lock_configuration()
        .bucket("vault")
        .send()
        .await
        .unwrap();
    assert!(cfg.object_lock_configuration().is_some());
    assert_eq!(
        delete_version_code(&user, "vault", "f", &v, true)
            .await
            .as_deref(),
        Some("AccessDenied")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_headers_are_checked_before_anything_is_stored() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "plain").await;
    lock_bucket(&c, "locked").await;
    let addr = server.s3_addr();
    let until = "2099-01-01T00:00:00Z";
    // On a bucket without Object Lock: InvalidRequest.
    let r = RawRequest::new("PUT", "/plain/k")
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .header("x-amz-object-lock-retain-until-date", until)
        .header("content-md5", "DMF1ucDxtqgxw5niaXcmYQ==")
        .body(b"a".to_vec())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "InvalidRequest", "lock headers without Object Lock");
    for (headers, what) in [
        (
            vec![("x-amz-object-lock-mode", "GOVERNANCE")],
            "mode without date",
        ),
        (
            vec![
                ("x-amz-object-lock-mode", "GOVERNANCE"),
                (
                    "x-amz-object-lock-retain-until-date",
                    "2001-01-01T00:00:00Z",
                ),
            ],
            "date in the past",
        ),
        (
            vec![
                ("x-amz-object-lock-mode", "FOREVER"),
                ("x-amz-object-lock-retain-until-date", until),
            ],
            "unknown mode",
        ),
        (
            vec![("x-amz-object-lock-legal-hold", "on")],
            "legal hold not ON/OFF",
        ),
    ] {
        let mut req = RawRequest::new("PUT", "/locked/k")
            .header("content-md5", "DMF1ucDxtqgxw5niaXcmYQ==")
            .body(b"a".to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = req.sign(addr, Payload::Signed).send(addr).await;
        r.assert_s3_error(400, "InvalidArgument", what);
    }
    // A locking PUT needs Content-MD5 or a checksum, as S3.
    let r = RawRequest::new("PUT", "/locked/k")
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .header("x-amz-object-lock-retain-until-date", until)
        .body(b"a".to_vec())
        .sign(addr, Payload::Signed)
        .send(addr)
        .await;
    r.assert_s3_error(400, "InvalidRequest", "lock without Content-MD5");
    let listed = c
        .list_object_versions()
        .bucket("locked")
        .send()
        .await
        .unwrap();
    assert!(listed.versions().is_empty(), "nothing was stored");
    // Retention of an object in a bucket without Object Lock.
    put_bytes(&c, "plain", "o", b"x").await;
    let err = c
        .get_object_retention()
        .bucket("plain")
        .key("o")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&err).as_deref(), Some("InvalidRequest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_keeps_the_lock_it_was_created_with() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    lock_bucket(&c, "mp-lock").await;
    let up = c
        .create_multipart_upload()
        .bucket("mp-lock")
        .key("big")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_secs(3600))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("mp-lock")
        .key("big")
        .upload_id(id)
        .part_number(1)
        .body(vec![7u8; 1000].into())
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("mp-lock")
        .key("big")
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
    let v = done.version_id().unwrap();
    let head = c
        .head_object()
        .bucket("mp-lock")
        .key("big")
        .version_id(v)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        delete_version_code(&c, "mp-lock", "big", v, true)
            .await
            .as_deref(),
        Some("AccessDenied")
    );
}
