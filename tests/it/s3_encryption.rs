//! Server-side encryption as S3 clients see it, written from the AWS
//! documentation ("Setting default server-side encryption behavior for
//! Amazon S3 buckets", the PutBucketEncryption / GetBucketEncryption /
//! DeleteBucketEncryption references, "Using server-side encryption with
//! Amazon S3 managed keys (SSE-S3)"): every bucket encrypts with SSE-S3
//! (AES256), a default configuration is stored and answered as set, and
//! what Cairn does not do (KMS) is refused, never accepted.

use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};

use crate::common::*;

/// A PutBucketEncryption configuration of one rule (also used by s3_kms).
pub(crate) fn configuration(
    algorithm: ServerSideEncryption,
    kms_key: Option<&str>,
    bucket_key: Option<bool>,
) -> ServerSideEncryptionConfiguration {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(algorithm)
        .set_kms_master_key_id(kms_key.map(str::to_owned))
        .build()
        .unwrap();
    ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .set_bucket_key_enabled(bucket_key)
                .build(),
        )
        .build()
        .unwrap()
}

async fn default_encryption(c: &aws_sdk_s3::Client, bucket: &str) -> (String, Option<bool>) {
    let got = c
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rules = got.server_side_encryption_configuration().unwrap().rules();
    assert_eq!(rules.len(), 1);
    let algorithm = rules[0]
        .apply_server_side_encryption_by_default()
        .unwrap()
        .sse_algorithm()
        .as_str()
        .to_owned();
    (algorithm, rules[0].bucket_key_enabled())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_default_encryption_is_sse_s3_and_dual_layer_kms_is_refused() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "enc").await;

    // Every bucket has SSE-S3 by default, as every S3 bucket since 2023.
    assert_eq!(
        default_encryption(&c, "enc").await,
        ("AES256".to_owned(), Some(false))
    );

    // AES256 is stored and answered as set.
    c.put_bucket_encryption()
        .bucket("enc")
        .server_side_encryption_configuration(configuration(
            ServerSideEncryption::Aes256,
            None,
            Some(true),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        default_encryption(&c, "enc").await,
        ("AES256".to_owned(), Some(true))
    );

    // Dual-layer KMS is not done: refused, and the configuration is
    // unchanged. (aws:kms itself: tests/it/s3_kms.rs.)
    let e = c
        .put_bucket_encryption()
        .bucket("enc")
        .server_side_encryption_configuration(configuration(
            ServerSideEncryption::AwsKmsDsse,
            None,
            None,
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("NotImplemented"));
    let e = c
        .put_bucket_encryption()
        .bucket("enc")
        .server_side_encryption_configuration(configuration(
            ServerSideEncryption::Aes256,
            Some("some-key"),
            None,
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("InvalidArgument"));
    assert_eq!(
        default_encryption(&c, "enc").await,
        ("AES256".to_owned(), Some(true))
    );

    // Objects report SSE-S3 on PUT, HEAD and GET, with or without the header.
    let put = c
        .put_object()
        .bucket("enc")
        .key("a")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(b"secret".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    put_bytes(&c, "enc", "b", b"also secret").await;
    let head = c.head_object().bucket("enc").key("b").send().await.unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let e = c
        .put_object()
        .bucket("enc")
        .key("kms")
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("NotImplemented"));
    assert!(!object_exists(&c, "enc", "kms").await);

    // Only an admin key changes it; a bucket key may read it.
    let (id, secret) = create_key(&server, "app", &["enc:rw"]);
    let app = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    assert_eq!(default_encryption(&app, "enc").await.0, "AES256");
    let e = app
        .delete_bucket_encryption()
        .bucket("enc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("AccessDenied"));

    // Deleted: back to the default.
    c.delete_bucket_encryption()
        .bucket("enc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        default_encryption(&c, "enc").await,
        ("AES256".to_owned(), Some(false))
    );
    // A missing bucket.
    let e = c
        .get_bucket_encryption()
        .bucket("no-such-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("NoSuchBucket"));
}
