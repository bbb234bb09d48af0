//! Bucket policies and public access blocks, end to end, written from the
//! AWS documentation ("Bucket policy examples", "Policy evaluation logic",
//! "Blocking public access to your Amazon S3 storage", the PutBucketPolicy
//! / GetBucketPolicyStatus / PutPublicAccessBlock API references): two
//! keys made with `cairn admin key create`, the test's admin key and
//! unsigned (anonymous) requests, through aws-sdk-s3 and hand-built
//! requests.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

use crate::common::*;

/// A policy document from its statements.
fn policy(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

async fn put_policy(c: &aws_sdk_s3::Client, bucket: &str, doc: &str) {
    c.put_bucket_policy()
        .bucket(bucket)
        .policy(doc)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketPolicy {doc}: {e:?}"));
}

async fn put_policy_err(c: &aws_sdk_s3::Client, bucket: &str, doc: &str) -> (String, String) {
    let e = c
        .put_bucket_policy()
        .bucket(bucket)
        .policy(doc)
        .send()
        .await
        .expect_err(doc);
    let code = sdk_error_code(&e).unwrap_or_default();
    let message = e
        .as_service_error()
        .and_then(aws_sdk_s3::error::ProvideErrorMetadata::message)
        .unwrap_or_default()
        .to_owned();
    (code, message)
}

/// An unsigned request.
async fn anonymous(server: &TestServer, method: &str, path: &str) -> RawResponse {
    RawRequest::new(method, path).send(server.s3_addr()).await
}

fn assert_denied<T, E, R>(r: Result<T, aws_sdk_s3::error::SdkError<E, R>>, what: &str)
where
    T: std::fmt::Debug,
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(v) => panic!("{what}: should be denied, got {v:?}"),
        Err(e) => assert_eq!(
            sdk_error_code(&e).as_deref(),
            Some("AccessDenied"),
            "{what}: {e:?}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_documents_are_stored_returned_validated_and_deleted() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "docs-bucket").await;
    create_key(&server, "alice", &[]);

    // Never set: NoSuchBucketPolicy for the policy and its status.
    let e = c
        .get_bucket_policy()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("NoSuchBucketPolicy"));
    let e = c
        .get_bucket_policy_status()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("NoSuchBucketPolicy"));

    // Stored as sent, returned as sent.
    let doc = policy(
        r#"{"Sid":"AliceReads","Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::docs-bucket","arn:aws:s3:::docs-bucket/*"]}"#,
    );
    put_policy(&c, "docs-bucket", &doc).await;
    let got = c
        .get_bucket_policy()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(doc.as_str()));
    let status = c
        .get_bucket_policy_status()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(false),
        "a policy naming one key is not public"
    );

    // Refused before anything is stored: the old policy stays.
    for (bad, what) in [
        ("not json".to_owned(), "not JSON"),
        (r#"{"Version":"2012-10-17"}"#.to_owned(), "no Statement"),
        (
            policy(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}"#,
            ),
            "a resource of another bucket",
        ),
        (
            policy(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:NoSuchThing","Resource":"arn:aws:s3:::docs-bucket/*"}"#,
            ),
            "an unknown action",
        ),
        (
            policy(
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/nobody"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::docs-bucket/*"}"#,
            ),
            "a key that does not exist",
        ),
        (
            policy(
                r#"{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs-bucket/*"}"#,
            ),
            "an Effect other than Allow/Deny",
        ),
        (
            policy(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs-bucket/*","Condition":{"StringEqualsSometimes":{"aws:Referer":"x"}}}"#,
            ),
            "an unknown condition operator",
        ),
        (
            policy(
                r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::docs-bucket/*","Condition":{"StringNotEquals":{"aws:SourceVpc":"vpc-1"}}}"#,
            ),
            "a condition key Cairn does not supply (it would never match)",
        ),
        (
            format!(
                "{{\"Version\":\"2012-10-17\",\"Id\":\"{}\",\"Statement\":[]}}",
                "x".repeat(21 * 1024)
            ),
            "over 20 KiB",
        ),
    ] {
        let (code, message) = put_policy_err(&c, "docs-bucket", &bad).await;
        assert_eq!(code, "MalformedPolicy", "{what}: {message}");
        assert!(!message.is_empty(), "{what}: a message says why");
    }
    let got = c
        .get_bucket_policy()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(doc.as_str()), "refusals stored nothing");

    // Only an admin key manages policies, even one the policy allows.
    let (id, secret) = create_key(&server, "bob", &["docs-bucket:rw"]);
    let bob = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    assert_denied(
        bob.delete_bucket_policy()
            .bucket("docs-bucket")
            .send()
            .await,
        "a bucket key deleting the policy",
    );

    c.delete_bucket_policy()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap();
    let e = c
        .get_bucket_policy()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("NoSuchBucketPolicy"));
    // Deleting again is a success (S3: 204).
    c.delete_bucket_policy()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap();
    // A policy goes with its bucket.
    put_policy(&c, "docs-bucket", &doc).await;
    c.delete_bucket()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap();
    create_bucket(&c, "docs-bucket").await;
    let e = c
        .get_bucket_policy()
        .bucket("docs-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error_code(&e).as_deref(), Some("NoSuchBucketPolicy"));
}

/// "Granting read-only permission to public anonymous users" — refused by
/// the server-wide block by default, and with the block lifted, each
/// bucket's own PutPublicAccessBlock settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_read_needs_the_operator_and_the_bucket_block_overrides_it() {
    let read_only_public = policy(
        r#"{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::site/public/*"]}"#,
    );
    // Default: no bucket can be made public.
    {
        let server = TestServer::start();
        let c = sdk_client(&server);
        create_bucket(&c, "site").await;
        let (code, _) = put_policy_err(&c, "site", &read_only_public).await;
        assert_eq!(code, "AccessDenied", "BlockPublicPolicy is on server-wide");
        // Without a policy, unsigned requests get nothing.
        put_bytes(&c, "site", "public/index.html", b"<h1>hi</h1>").await;
        anonymous(&server, "GET", "/site/public/index.html")
            .await
            .assert_s3_error(403, "AccessDenied", "anonymous GET without a policy");
        // A policy restricted to fixed source addresses is not public.
        let from_lan = policy(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/public/*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}}"#,
        );
        put_policy(&c, "site", &from_lan).await;
        let status = c
            .get_bucket_policy_status()
            .bucket("site")
            .send()
            .await
            .unwrap();
        assert_eq!(
            status.policy_status().and_then(|s| s.is_public()),
            Some(false)
        );
        let r = anonymous(&server, "GET", "/site/public/index.html").await;
        assert_eq!(r.status, 200, "anonymous GET from 127.0.0.1: {}", r.text());
        assert_eq!(&r.body[..], b"<h1>hi</h1>");
    }

    let server = TestServer::start_with_args(&["--allow-public-buckets"]);
    let c = sdk_client(&server);
    create_bucket(&c, "site").await;
    put_bytes(&c, "site", "public/index.html", b"<h1>hi</h1>").await;
    put_bytes(&c, "site", "private/secret.txt", b"secret").await;
    put_policy(&c, "site", &read_only_public).await;
    let status = c
        .get_bucket_policy_status()
        .bucket("site")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(true)
    );

    // What the policy allows, anonymously: GET (and HEAD) of public/*.
    let r = anonymous(&server, "GET", "/site/public/index.html").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body[..], b"<h1>hi</h1>");
    assert_eq!(
        anonymous(&server, "HEAD", "/site/public/index.html")
            .await
            .status,
        200
    );
    // Everything else stays refused.
    anonymous(&server, "GET", "/site/private/secret.txt")
        .await
        .assert_s3_error(403, "AccessDenied", "outside the allowed prefix");
    // Without s3:ListBucket a missing key is 403 too (S3: no probing).
    anonymous(&server, "GET", "/site/public/missing.html")
        .await
        .assert_s3_error(403, "AccessDenied", "a missing key without ListBucket");
    anonymous(&server, "GET", "/site?list-type=2")
        .await
        .assert_s3_error(403, "AccessDenied", "listing is not allowed");
    anonymous(&server, "GET", "/")
        .await
        .assert_s3_error(403, "AccessDenied", "ListBuckets");
    let put = RawRequest::new("PUT", "/site/public/evil.html")
        .body(b"defaced".to_vec())
        .send(server.s3_addr())
        .await;
    put.assert_s3_error(403, "AccessDenied", "anonymous PUT");
    anonymous(&server, "DELETE", "/site/public/index.html")
        .await
        .assert_s3_error(403, "AccessDenied", "anonymous DELETE");
    anonymous(&server, "GET", "/site?policy")
        .await
        .assert_s3_error(403, "AccessDenied", "anonymous GetBucketPolicy");
    // A bucket that does not exist looks the same as a refusal.
    anonymous(&server, "GET", "/no-such-bucket/public/index.html")
        .await
        .assert_s3_error(403, "AccessDenied", "a missing bucket");
    // A wrong signature is never treated as anonymous.
    let forged = RawRequest::new("GET", "/site/public/index.html").sign_with(
        server.s3_addr(),
        ACCESS_KEY,
        "not-the-secret",
        Payload::Unsigned,
    );
    let r = forged.send(server.s3_addr()).await;
    r.assert_s3_error(403, "SignatureDoesNotMatch", "a bad signature");

    // The bucket's own RestrictPublicBuckets: anonymous access through the
    // public policy ends; keys are unaffected.
    c.put_public_access_block()
        .bucket("site")
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = c
        .get_public_access_block()
        .bucket("site")
        .send()
        .await
        .unwrap();
    let cfg = got.public_access_block_configuration().unwrap();
    assert_eq!(cfg.restrict_public_buckets(), Some(true));
    assert_eq!(cfg.block_public_policy(), Some(false));
    anonymous(&server, "GET", "/site/public/index.html")
        .await
        .assert_s3_error(403, "AccessDenied", "RestrictPublicBuckets");
    assert_eq!(
        get_bytes(&c, "site", "public/index.html").await,
        b"<h1>hi</h1>"
    );

    // BlockPublicPolicy: a public policy can no longer be put (the one in
    // place stays, as in S3).
    c.put_public_access_block()
        .bucket("site")
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_policy(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (code, _) = put_policy_err(&c, "site", &read_only_public).await;
    assert_eq!(code, "AccessDenied");

    // Deleting the block restores the public policy's effect.
    c.delete_public_access_block()
        .bucket("site")
        .send()
        .await
        .unwrap();
    let e = c
        .get_public_access_block()
        .bucket("site")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&e).as_deref(),
        Some("NoSuchPublicAccessBlockConfiguration")
    );
    let r = anonymous(&server, "GET", "/site/public/index.html").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// "Policy evaluation logic": an explicit Deny beats every Allow, a key's
/// own grant included, and even an admin key's — except for managing the
/// policy itself, so an admin can always recover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_deny_beats_grants_and_admins_but_not_policy_recovery() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "archive").await;
    put_bytes(&root, "archive", "keep/a.tar", b"precious").await;
    put_bytes(&root, "archive", "tmp/b.tmp", b"scratch").await;
    let (id, secret) = create_key(&server, "writer", &["archive:rw"]);
    let writer = sdk_client_for(&server.endpoint(), &id, &secret, &[]);

    put_policy(
        &root,
        "archive",
        &policy(
            r#"{"Sid":"NoDeletesOfKeep","Effect":"Deny","Principal":"*","Action":["s3:DeleteObject","s3:DeleteObjectVersion","s3:PutObject"],"Resource":"arn:aws:s3:::archive/keep/*"}"#,
        ),
    )
    .await;
    // The writer's grant still covers everything else.
    put_bytes(&writer, "archive", "tmp/c.tmp", b"new").await;
    assert_eq!(
        get_bytes(&writer, "archive", "keep/a.tar").await,
        b"precious"
    );
    assert_denied(
        writer
            .delete_object()
            .bucket("archive")
            .key("keep/a.tar")
            .send()
            .await,
        "the writer deleting under keep/",
    );
    assert_denied(
        writer
            .put_object()
            .bucket("archive")
            .key("keep/a.tar")
            .body(b"ransom".to_vec().into())
            .send()
            .await,
        "the writer overwriting under keep/",
    );
    // Admins too.
    assert_denied(
        root.delete_object()
            .bucket("archive")
            .key("keep/a.tar")
            .send()
            .await,
        "an admin deleting under keep/",
    );
    // DeleteObjects judges each key as its own DeleteObject.
    let del = aws_sdk_s3::types::Delete::builder()
        .objects(
            aws_sdk_s3::types::ObjectIdentifier::builder()
                .key("keep/a.tar")
                .build()
                .unwrap(),
        )
        .objects(
            aws_sdk_s3::types::ObjectIdentifier::builder()
                .key("tmp/b.tmp")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = writer
        .delete_objects()
        .bucket("archive")
        .delete(del)
        .send()
        .await
        .unwrap();
    let errors: Vec<_> = out
        .errors()
        .iter()
        .map(|e| (e.key().unwrap_or(""), e.code().unwrap_or("")))
        .collect();
    assert_eq!(errors, vec![("keep/a.tar", "AccessDenied")]);
    let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, vec!["tmp/b.tmp"]);
    assert_eq!(get_bytes(&root, "archive", "keep/a.tar").await, b"precious");

    // A policy that locks everyone out of everything...
    put_policy(
        &root,
        "archive",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::archive","arn:aws:s3:::archive/*"]}"#,
        ),
    )
    .await;
    assert_denied(
        root.list_objects_v2().bucket("archive").send().await,
        "an admin listing under deny-all",
    );
    // ...is still the admin's to read and remove.
    root.get_bucket_policy()
        .bucket("archive")
        .send()
        .await
        .unwrap();
    root.delete_bucket_policy()
        .bucket("archive")
        .send()
        .await
        .unwrap();
    root.list_objects_v2()
        .bucket("archive")
        .send()
        .await
        .unwrap();
}

/// A key without grants is given access by naming it in the policy; what
/// the policy does not name stays refused. "Managing user access to
/// specific folders" with `${aws:username}` and `s3:prefix`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_grants_named_keys_their_home_folders() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "homes").await;
    let (alice_id, alice_secret) = create_key(&server, "alice", &[]);
    let (bob_id, bob_secret) = create_key(&server, "bob", &[]);
    let alice = sdk_client_for(&server.endpoint(), &alice_id, &alice_secret, &[]);
    let bob = sdk_client_for(&server.endpoint(), &bob_id, &bob_secret, &[]);
    put_bytes(&root, "homes", "home/bob/notes.txt", b"bob's").await;

    // Before any policy: nothing.
    assert_denied(
        alice.list_objects_v2().bucket("homes").send().await,
        "alice without a policy",
    );
    put_policy(
        &root,
        "homes",
        &policy(
            r#"{"Sid":"ListOwnHome","Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/alice","arn:aws:iam:::user/bob"]},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::homes","Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*","home/${aws:username}/"]}}},
               {"Sid":"OwnHome","Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/alice","arn:aws:iam:::user/bob"]},"Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::homes/home/${aws:username}/*"}"#,
        ),
    )
    .await;
    put_bytes(&alice, "homes", "home/alice/diary.txt", b"dear diary").await;
    assert_eq!(
        get_bytes(&alice, "homes", "home/alice/diary.txt").await,
        b"dear diary"
    );
    let listed = alice
        .list_objects_v2()
        .bucket("homes")
        .prefix("home/alice/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(1));
    // Not someone else's home, and not the whole bucket.
    assert_denied(
        alice
            .get_object()
            .bucket("homes")
            .key("home/bob/notes.txt")
            .send()
            .await,
        "alice reading bob's home",
    );
    assert_denied(
        alice
            .list_objects_v2()
            .bucket("homes")
            .prefix("home/bob/")
            .send()
            .await,
        "alice listing bob's home",
    );
    assert_denied(
        alice.list_objects_v2().bucket("homes").send().await,
        "alice listing everything",
    );
    assert_eq!(
        get_bytes(&bob, "homes", "home/bob/notes.txt").await,
        b"bob's"
    );
    // The policy allows object actions only: no bucket configuration.
    assert_denied(
        alice.get_bucket_versioning().bucket("homes").send().await,
        "a bucket action the policy does not name",
    );

    // A presigned URL is judged as its signer.
    let own = alice
        .get_object()
        .bucket("homes")
        .key("home/alice/diary.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let other = alice
        .get_object()
        .bucket("homes")
        .key("home/bob/notes.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let path = |u: &str| {
        let u: http::Uri = u.parse().unwrap();
        u.path_and_query().unwrap().as_str().to_owned()
    };
    let r = anonymous(&server, "GET", &path(own.uri())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    anonymous(&server, "GET", &path(other.uri()))
        .await
        .assert_s3_error(403, "AccessDenied", "presigned by alice for bob's file");

    // Copying needs read on the source: bob cannot copy alice's file into
    // his home, alice can copy her own.
    assert_denied(
        bob.copy_object()
            .bucket("homes")
            .key("home/bob/stolen.txt")
            .copy_source("homes/home/alice/diary.txt")
            .send()
            .await,
        "bob copying from alice's home",
    );
    alice
        .copy_object()
        .bucket("homes")
        .key("home/alice/copy.txt")
        .copy_source("homes/home/alice/diary.txt")
        .send()
        .await
        .unwrap();
}

/// Condition keys from the AWS examples: `aws:SecureTransport`,
/// `s3:x-amz-server-side-encryption` ("Requiring encryption"),
/// `aws:Referer`, `s3:ExistingObjectTag`, `s3:RequestObjectTag`,
/// `aws:SourceIp` (NotIpAddress) and `aws:CurrentTime`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condition_keys_decide_as_the_aws_examples_say() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "cond").await;
    let (id, secret) = create_key(&server, "app", &["cond:rw"]);
    let app = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    let deny = |action: &str, condition: &str| {
        policy(&format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":"{action}","Resource":"arn:aws:s3:::cond/*","Condition":{condition}}}"#
        ))
    };

    // HTTPS only: every plain-HTTP request of this test server is refused.
    put_policy(
        &root,
        "cond",
        &deny("s3:*", r#"{"Bool":{"aws:SecureTransport":"false"}}"#),
    )
    .await;
    assert_denied(
        app.put_object()
            .bucket("cond")
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        "plain HTTP under SecureTransport",
    );

    // Encryption required: a PUT without x-amz-server-side-encryption is
    // refused, with AES256 it is stored.
    put_policy(
        &root,
        "cond",
        &deny(
            "s3:PutObject",
            r#"{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}"#,
        ),
    )
    .await;
    assert_denied(
        app.put_object()
            .bucket("cond")
            .key("plain")
            .body(b"x".to_vec().into())
            .send()
            .await,
        "PUT without the encryption header",
    );
    app.put_object()
        .bucket("cond")
        .key("sealed")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();

    // Tagged before the tag policy below.
    root.put_object()
        .bucket("cond")
        .key("tagged-early")
        .tagging("classification=secret")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    // Tags: objects tagged classification=secret are unreadable; new
    // objects may not be tagged so.
    put_policy(
        &root,
        "cond",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cond/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/classification":"secret"}}},
               {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::cond/*","Condition":{"StringEquals":{"s3:RequestObjectTag/classification":"secret"}}}"#,
        ),
    )
    .await;
    root.put_object()
        .bucket("cond")
        .key("tagged")
        .tagging("classification=secret")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect_err("the admin is denied too");
    // PutObjectTagging takes its tags from its body, read after the
    // decision: under a policy with RequestObjectTag conditions it is
    // refused (fail closed), admins included.
    put_bytes(&root, "cond", "tagged", b"x").await;
    let refused = root
        .put_object_tagging()
        .bucket("cond")
        .key("tagged")
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("classification")
                        .value("secret")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_denied(
        refused,
        "PutObjectTagging under RequestObjectTag conditions",
    );
    assert_denied(
        app.get_object()
            .bucket("cond")
            .key("tagged-early")
            .send()
            .await,
        "reading an object tagged secret",
    );
    put_bytes(&app, "cond", "open", b"y").await;
    assert_eq!(get_bytes(&app, "cond", "open").await, b"y");

    // Source address and time: a deny outside 10.0.0.0/8 refuses loopback;
    // a deny after 2000-01-01 refuses now.
    put_policy(
        &root,
        "cond",
        &deny(
            "s3:GetObject",
            r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","::1/128"]}}"#,
        ),
    )
    .await;
    assert_denied(
        app.get_object().bucket("cond").key("open").send().await,
        "127.0.0.1 is outside 10.0.0.0/8",
    );
    put_policy(
        &root,
        "cond",
        &deny(
            "s3:GetObject",
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2000-01-01T00:00:00Z"}}"#,
        ),
    )
    .await;
    assert_denied(
        app.get_object().bucket("cond").key("open").send().await,
        "after 2000",
    );
    put_policy(
        &root,
        "cond",
        &deny(
            "s3:GetObject",
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2999-01-01T00:00:00Z"}}"#,
        ),
    )
    .await;
    assert_eq!(get_bytes(&app, "cond", "open").await, b"y");

    // Referer ("Restricting access to a specific HTTP referer"), with
    // anonymous callers allowed only from one site (a non-public policy is
    // not: Referer is no restriction S3 accepts, so it needs the block
    // lifted; here the key is checked instead).
    put_policy(
        &root,
        "cond",
        &deny(
            "s3:GetObject",
            r#"{"StringNotLike":{"aws:Referer":["https://www.example.com/*"]}}"#,
        ),
    )
    .await;
    let addr = server.s3_addr();
    let without =
        RawRequest::new("GET", "/cond/open").sign_with(addr, &id, &secret, Payload::Unsigned);
    without
        .send(addr)
        .await
        .assert_s3_error(403, "AccessDenied", "no Referer");
    let with = RawRequest::new("GET", "/cond/open")
        .header("referer", "https://www.example.com/page.html")
        .sign_with(addr, &id, &secret, Payload::Unsigned);
    let r = with.send(addr).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// boto3 (client API, and `botocore.UNSIGNED` for anonymous requests):
/// tests/it/boto3_suite.py, mode `policy`.
#[test]
fn boto3_policy_suite() {
    let server = TestServer::start_with_args(&["--allow-public-buckets"]);
    let (id, secret) = create_key(&server, "uploader", &[]);
    run_boto3_suite(
        &server,
        "policy",
        &[
            ("CAIRN_USER_NAME", "uploader"),
            ("CAIRN_USER_KEY", &id),
            ("CAIRN_USER_SECRET", &secret),
        ],
    );
}

/// Regression (attacker review): a condition key Cairn never supplies (a
/// typo, another service's, one of AWS's it does not offer) was accepted
/// and never matched, so a `Deny` conditioned on it never fired. Refused at
/// PutBucketPolicy with S3's message, as are unknown policy variables
/// (the one list, `cairn_policy::SUPPORTED_CONDITION_KEYS`; cases beyond
/// `policy_documents_are_stored_returned_validated_and_deleted`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_condition_keys_and_variables_are_refused_at_put() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "keys").await;
    let with = |condition: &str| {
        policy(&format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::keys/*","Condition":{condition}}}"#
        ))
    };
    for key in [
        "aws:SourceIpp",
        "aws:SourceVpce",
        "s3:x-amz-grant-read",
        "ec2:Region",
    ] {
        let (code, message) = put_policy_err(
            &c,
            "keys",
            &with(&format!(r#"{{"StringEquals":{{"{key}":"x"}}}}"#)),
        )
        .await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("MalformedPolicy", "Policy has an invalid condition key"),
            "{key}"
        );
    }
    let (code, message) = put_policy_err(
        &c,
        "keys",
        &policy(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::keys/${aws:usename}/*"}"#,
        ),
    )
    .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("MalformedPolicy", "Policy has invalid resource")
    );
    // Supported keys, in AWS's spelling or not, are accepted.
    put_policy(
        &c,
        "keys",
        &with(r#"{"StringEquals":{"AWS:SOURCEIP":"10.0.0.1","s3:ExistingObjectTag/Team":"x"}}"#),
    )
    .await;
}

/// Regression (attacker review): wildcard matching costs pattern × text and
/// the request chooses the text. An evaluation past the bound is refused
/// (fail closed) in well under a second, and other requests are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costly_policy_evaluation_is_refused_and_others_are_served() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "glob").await;
    let (id, secret) = create_key(&server, "app", &["glob:rw"]);
    put_bytes(&root, "glob", "k", b"v").await;
    // 18 patterns of ~1 KiB that retry a long literal at every position
    // of a text of `a`s (the policy stays under 20 KiB).
    let pattern = format!("\"*{}b\"", "a".repeat(1000));
    let patterns = vec![pattern; 18].join(",");
    put_policy(
        &root,
        "glob",
        &policy(&format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::glob/*","Condition":{{"StringLike":{{"aws:UserAgent":[{patterns}]}}}}}}"#
        )),
    )
    .await;
    let addr = server.s3_addr();
    let get = |agent: String| {
        RawRequest::new("GET", "/glob/k")
            .header("user-agent", &agent)
            .sign_with(addr, &id, &secret, Payload::Unsigned)
    };
    let t = std::time::Instant::now();
    get("a".repeat(8 * 1024)).send(addr).await.assert_s3_error(
        403,
        "AccessDenied",
        "a user agent built against the policy",
    );
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "refused in {took:?}");
    let r = get("aws-sdk-rust".to_owned()).send(addr).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Regression (attacker review): ranges written IPv4-mapped
/// (`::ffff:127.0.0.0/104`) never matched IPv4 clients, so a Deny on them
/// never fired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_mapped_ranges_match_ipv4_clients() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "mapped").await;
    let (id, secret) = create_key(&server, "app", &["mapped:rw"]);
    let app = sdk_client_for(&server.endpoint(), &id, &secret, &[]);
    put_bytes(&root, "mapped", "k", b"v").await;
    put_policy(
        &root,
        "mapped",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::mapped/*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:127.0.0.0/104"}}}"#,
        ),
    )
    .await;
    assert_denied(
        app.get_object().bucket("mapped").key("k").send().await,
        "127.0.0.1 is in ::ffff:127.0.0.0/104",
    );
    put_policy(
        &root,
        "mapped",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::mapped/*","Condition":{"NotIpAddress":{"aws:SourceIp":"::ffff:127.0.0.1"}}}"#,
        ),
    )
    .await;
    assert_eq!(get_bytes(&app, "mapped", "k").await, b"v");
}

/// Regression (attacker review): CopyObject's condition values were the
/// raw headers. `s3:x-amz-copy-source` is the source the handler copies
/// (`bucket/key`, decoded), `s3:x-amz-metadata-directive` the directive it
/// acts on, and `s3:RequestObjectTag/…` the tags it sets — the source's
/// unless `x-amz-tagging-directive: REPLACE`, never an ignored header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_conditions_see_what_the_copy_does() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "copies").await;
    let (id, secret) = create_key(&server, "app", &["copies:rw"]);
    let addr = server.s3_addr();
    put_bytes(&root, "copies", "private/x.txt", b"p").await;
    put_bytes(&root, "copies", "public/x.txt", b"q").await;
    root.put_object()
        .bucket("copies")
        .key("public/secret.txt")
        .tagging("classification=secret")
        .body(b"s".to_vec().into())
        .send()
        .await
        .unwrap();
    let copy = |dest: &str, headers: &[(&str, &str)]| {
        let mut r = RawRequest::new("PUT", &format!("/copies/{dest}"));
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.sign_with(addr, &id, &secret, Payload::Unsigned)
    };

    put_policy(
        &root,
        "copies",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::copies/*","Condition":{"StringLike":{"s3:x-amz-copy-source":"copies/private/*"}}}"#,
        ),
    )
    .await;
    for source in [
        "/copies/private/x.txt",
        "copies%2Fprivate%2Fx.txt",
        "copies/private/x.txt?versionId=null",
    ] {
        copy("out/a", &[("x-amz-copy-source", source)])
            .send(addr)
            .await
            .assert_s3_error(403, "AccessDenied", source);
    }
    let r = copy("out/b", &[("x-amz-copy-source", "/copies/public/x.txt")])
        .send(addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    put_policy(
        &root,
        "copies",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::copies/*","Condition":{"StringEquals":{"s3:x-amz-metadata-directive":"REPLACE"}}}"#,
        ),
    )
    .await;
    copy(
        "out/c",
        &[
            ("x-amz-copy-source", "copies/public/x.txt"),
            ("x-amz-metadata-directive", "replace"),
        ],
    )
    .send(addr)
    .await
    .assert_s3_error(403, "AccessDenied", "a lowercase REPLACE");

    put_policy(
        &root,
        "copies",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::copies/*","Condition":{"StringEquals":{"s3:RequestObjectTag/classification":"secret"}}}"#,
        ),
    )
    .await;
    // The source's tags are copied: an ignored header does not hide them.
    copy(
        "out/d",
        &[
            ("x-amz-copy-source", "copies/public/secret.txt"),
            ("x-amz-tagging", "classification=public"),
        ],
    )
    .send(addr)
    .await
    .assert_s3_error(403, "AccessDenied", "copying secret-tagged data");
    // REPLACE sets the header's tags.
    let r = copy(
        "out/e",
        &[
            ("x-amz-copy-source", "copies/public/secret.txt"),
            ("x-amz-tagging-directive", "REPLACE"),
            ("x-amz-tagging", "classification=public"),
        ],
    )
    .send(addr)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An untagged source with an ignored header: nothing secret is set.
    let r = copy(
        "out/f",
        &[
            ("x-amz-copy-source", "copies/public/x.txt"),
            ("x-amz-tagging", "classification=secret"),
        ],
    )
    .send(addr)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tags = root
        .get_object_tagging()
        .bucket("copies")
        .key("out/f")
        .send()
        .await
        .unwrap();
    assert!(tags.tag_set().is_empty(), "{tags:?}");
}

/// Regression (attacker review): principals named keys by name, so a key
/// created under a deleted key's name inherited its grants. A policy binds
/// each named principal to the key's id when it is put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_under_an_old_name_is_not_the_old_principal() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "named").await;
    put_bytes(&root, "named", "k", b"v").await;
    let (old_id, old_secret) = create_key(&server, "alice", &[]);
    let doc = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::named/*"}"#,
    );
    put_policy(&root, "named", &doc).await;
    let old = sdk_client_for(&server.endpoint(), &old_id, &old_secret, &[]);
    assert_eq!(get_bytes(&old, "named", "k").await, b"v");

    admin_json(&server, &["key", "delete", &old_id]);
    let (new_id, new_secret) = create_key(&server, "alice", &[]);
    let new = sdk_client_for(&server.endpoint(), &new_id, &new_secret, &[]);
    assert_denied(
        new.get_object().bucket("named").key("k").send().await,
        "a new key named alice",
    );
    // The document is returned as sent.
    let got = root
        .get_bucket_policy()
        .bucket("named")
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(doc.as_str()));
    // Putting the policy again names the key that has the name now.
    put_policy(&root, "named", &doc).await;
    assert_eq!(get_bytes(&new, "named", "k").await, b"v");
    // It survives a restart (the binding is stored).
    let mut server = server;
    server.restart(true);
    let new = sdk_client_for(&server.endpoint(), &new_id, &new_secret, &[]);
    assert_eq!(get_bytes(&new, "named", "k").await, b"v");

    // Names a policy could not name exactly are refused at creation.
    for bad in ["team/alice", "al ice", "a*"] {
        let (ok, _, err) = cairn_admin_as(&server, ACCESS_KEY, SECRET_KEY, &["key", "create", bad]);
        assert!(!ok && err.contains("key name"), "{bad}: {err}");
    }
}

/// A policy stored before bindings existed (policy record v1: the JSON
/// document alone) still loads after an upgrade — its named principals
/// match by key name, as they did — and GetBucketPolicy answers it; putting
/// it again stores a v2 record that binds the name to the key's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_record_from_before_key_bindings_still_loads() {
    let mut server = TestServer::start();
    let root = sdk_client(&server);
    create_bucket(&root, "legacy").await;
    put_bytes(&root, "legacy", "k", b"v").await;
    let (old_id, _) = create_key(&server, "alice", &[]);
    let doc = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::legacy/*"}"#,
    );
    put_policy(&root, "legacy", &doc).await;
    admin_json(&server, &["key", "delete", &old_id]);
    let (id, secret) = create_key(&server, "alice", &[]);

    // Rewrite the stored record as an older version wrote it.
    server.stop();
    {
        use cairn_storage_engine::{KeyRange, MetaStore, System};
        let meta = MetaStore::open(&server.data_dir().join("meta")).unwrap();
        let names: Vec<String> = meta
            .keys::<System>(KeyRange::all(), usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with("bucket-doc/") && n.ends_with("/policy"))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let stored = meta.get::<System>(&names[0]).unwrap().unwrap();
        assert_eq!(stored.first(), Some(&2u8), "written as record v2");
        let mut batch = meta.batch();
        batch.put::<System>(&names[0], &doc.as_bytes().to_vec());
        meta.write(batch).unwrap();
    }
    server.start_again();
    let root = sdk_client(&server);
    let alice = sdk_client_for(&server.endpoint(), &id, &secret, &[]);

    // v1: by name, so the key now named alice is the principal.
    assert_eq!(get_bytes(&alice, "legacy", "k").await, b"v");
    let got = root
        .get_bucket_policy()
        .bucket("legacy")
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(doc.as_str()));
    let status = root
        .get_bucket_policy_status()
        .bucket("legacy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(false)
    );
    let log = server.stderr_text_with("stored before key bindings", Duration::from_secs(10));
    assert!(log.contains("stored before key bindings"), "{log}");

    // Put again: bound to this alice's id (a v2 record), still allowed.
    put_policy(&root, "legacy", &doc).await;
    assert_eq!(get_bytes(&alice, "legacy", "k").await, b"v");
}

/// PutBucketPolicy's public check and PutPublicAccessBlock serialise: run
/// side by side, every policy PUT is either stored before the block
/// (success) or refused by it, and neither waits on the other forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_public_access_block_changes_serialise() {
    let server = TestServer::start_with_args(&["--allow-public-buckets"]);
    let c = sdk_client(&server);
    create_bucket(&c, "race").await;
    let public = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::race/*"}"#,
    );
    for round in 0..10 {
        c.delete_public_access_block()
            .bucket("race")
            .send()
            .await
            .unwrap();
        let block = c
            .put_public_access_block()
            .bucket("race")
            .public_access_block_configuration(
                aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                    .block_public_policy(true)
                    .build(),
            )
            .send();
        let put = c.put_bucket_policy().bucket("race").policy(&public).send();
        let (block, put) =
            tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(block, put) })
                .await
                .expect("no deadlock");
        block.unwrap();
        if let Err(e) = put {
            assert_eq!(
                sdk_error_code(&e).as_deref(),
                Some("AccessDenied"),
                "{round}"
            );
        }
    }
}

/// The policy elements and condition keys the other tests do not reach,
/// each as the IAM reference defines it: `NotPrincipal`, `NotAction`,
/// `NotResource`; `aws:userid`, `aws:PrincipalArn` with `ArnLike`,
/// `s3:max-keys` with `Numeric*`, `s3:delimiter` with `…IfExists`,
/// `s3:x-amz-acl`, `Null`, `ForAnyValue:` and `ForAllValues:` over
/// `s3:RequestObjectTagKeys`, `s3:object-lock-mode` and
/// `s3:object-lock-remaining-retention-days`. Two keys with grants on the
/// bucket; each `Deny` must refuse exactly what it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_policy_element_and_condition_key_decides_as_documented() {
    let server = TestServer::start();
    let root = sdk_client(&server);
    root.create_bucket()
        .bucket("more")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    for k in ["public/p", "private/q", "x"] {
        put_bytes(&root, "more", k, b"data").await;
    }
    let (app_id, app_secret) = create_key(&server, "app", &["more:rw"]);
    let (other_id, other_secret) = create_key(&server, "other", &["more:rw"]);
    let app = sdk_client_for(&server.endpoint(), &app_id, &app_secret, &[]);
    let other = sdk_client_for(&server.endpoint(), &other_id, &other_secret, &[]);
    let get = |c: &aws_sdk_s3::Client, k: &'static str| c.get_object().bucket("more").key(k).send();
    let put = |c: &aws_sdk_s3::Client, k: &'static str| {
        c.put_object()
            .bucket("more")
            .key(k)
            .body(b"x".to_vec().into())
    };
    let deny =
        |element: &str, rest: &str| policy(&format!(r#"{{"Effect":"Deny",{element},{rest}}}"#));
    let root_ref = &root;
    let set = |doc: String| async move { put_policy(root_ref, "more", &doc).await };

    // NotPrincipal: everyone but app is refused.
    set(deny(
        r#""NotPrincipal":{"AWS":"arn:aws:iam:::user/app"}"#,
        r#""Action":"s3:GetObject","Resource":"arn:aws:s3:::more/*""#,
    ))
    .await;
    get(&app, "x").await.unwrap();
    assert_denied(get(&other, "x").await, "NotPrincipal: other");

    // NotAction: app may do nothing but GetObject.
    set(deny(
        r#""Principal":{"AWS":"arn:aws:iam:::user/app"}"#,
        r#""NotAction":"s3:GetObject","Resource":"arn:aws:s3:::more/*""#,
    ))
    .await;
    get(&app, "x").await.unwrap();
    assert_denied(put(&app, "y").send().await, "NotAction: PUT");
    put(&other, "y").send().await.unwrap();

    // NotResource: app reads only under public/.
    set(deny(
        r#""Principal":{"AWS":"arn:aws:iam:::user/app"}"#,
        r#""Action":"s3:GetObject","NotResource":"arn:aws:s3:::more/public/*""#,
    ))
    .await;
    get(&app, "public/p").await.unwrap();
    assert_denied(get(&app, "private/q").await, "NotResource: private");

    let on_objects = |action: &str, condition: &str| {
        deny(
            r#""Principal":"*""#,
            &format!(
                r#""Action":"{action}","Resource":"arn:aws:s3:::more/*","Condition":{condition}"#
            ),
        )
    };
    let on_bucket = |condition: &str| {
        deny(
            r#""Principal":"*""#,
            &format!(
                r#""Action":"s3:ListBucket","Resource":"arn:aws:s3:::more","Condition":{condition}"#
            ),
        )
    };

    // aws:userid (the access key id) and ArnLike on aws:PrincipalArn.
    set(on_objects(
        "s3:GetObject",
        &format!(r#"{{"StringEquals":{{"aws:userid":"{other_id}"}}}}"#),
    ))
    .await;
    get(&app, "x").await.unwrap();
    assert_denied(get(&other, "x").await, "aws:userid");
    set(on_objects(
        "s3:GetObject",
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam:::user/oth*"}}"#,
    ))
    .await;
    get(&app, "x").await.unwrap();
    assert_denied(get(&other, "x").await, "ArnLike aws:PrincipalArn");

    // s3:max-keys: no page larger than 100.
    set(on_bucket(r#"{"NumericGreaterThan":{"s3:max-keys":"100"}}"#)).await;
    let list = |max: i32| app.list_objects_v2().bucket("more").max_keys(max).send();
    list(100).await.unwrap();
    assert_denied(list(500).await, "s3:max-keys 500");

    // s3:delimiter with IfExists: a listing must use "/" (a listing
    // without a delimiter lacks the key, and a negated …IfExists holds).
    set(on_bucket(
        r#"{"StringNotEqualsIfExists":{"s3:delimiter":"/"}}"#,
    ))
    .await;
    let listed = |d: Option<&'static str>| {
        app.list_objects_v2()
            .bucket("more")
            .set_delimiter(d.map(str::to_owned))
            .send()
    };
    listed(Some("/")).await.unwrap();
    assert_denied(listed(Some(",")).await, "s3:delimiter ,");
    assert_denied(listed(None).await, "s3:delimiter absent");

    // Null: a PUT without x-amz-server-side-encryption is refused.
    set(on_objects(
        "s3:PutObject",
        r#"{"Null":{"s3:x-amz-server-side-encryption":"true"}}"#,
    ))
    .await;
    assert_denied(put(&app, "n1").send().await, "Null: no header");
    put(&app, "n2")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();

    // s3:x-amz-acl.
    set(on_objects(
        "s3:PutObject",
        r#"{"StringEquals":{"s3:x-amz-acl":"private"}}"#,
    ))
    .await;
    assert_denied(
        put(&app, "a1")
            .acl(aws_sdk_s3::types::ObjectCannedAcl::Private)
            .send()
            .await,
        "s3:x-amz-acl private",
    );
    put(&app, "a2").send().await.unwrap();

    // ForAnyValue: no tag named "secret"; ForAllValues: not only a and b.
    set(on_objects(
        "s3:PutObject",
        r#"{"ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["secret"]}}"#,
    ))
    .await;
    assert_denied(
        put(&app, "t1").tagging("secret=1&b=2").send().await,
        "ForAnyValue: secret",
    );
    put(&app, "t2").tagging("public=1").send().await.unwrap();
    set(on_objects(
        "s3:PutObject",
        r#"{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["a","b"]}}"#,
    ))
    .await;
    assert_denied(
        put(&app, "t3").tagging("a=1&b=2").send().await,
        "ForAllValues: a, b",
    );
    assert_denied(put(&app, "t4").send().await, "ForAllValues: no tags at all");
    put(&app, "t5").tagging("a=1&c=3").send().await.unwrap();

    // Object Lock: no COMPLIANCE mode, no retention beyond 30 days.
    let until = |days: i64| {
        aws_sdk_s3::primitives::DateTime::from_secs(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                + days * 86_400,
        )
    };
    let locked = |k: &'static str, mode: aws_sdk_s3::types::ObjectLockMode, days: i64| {
        put(&app, k)
            .object_lock_mode(mode)
            .object_lock_retain_until_date(until(days))
            .send()
    };
    use aws_sdk_s3::types::ObjectLockMode::{Compliance, Governance};
    set(on_objects(
        "s3:PutObject",
        r#"{"StringEquals":{"s3:object-lock-mode":"COMPLIANCE"}}"#,
    ))
    .await;
    assert_denied(locked("l1", Compliance, 1).await, "s3:object-lock-mode");
    locked("l2", Governance, 1).await.unwrap();
    set(on_objects(
        "s3:PutObject",
        r#"{"NumericGreaterThan":{"s3:object-lock-remaining-retention-days":"30"}}"#,
    ))
    .await;
    assert_denied(locked("l3", Governance, 60).await, "60 days of retention");
    locked("l4", Governance, 10).await.unwrap();
}
