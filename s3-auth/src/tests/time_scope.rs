//! Clock skew, presign expiry, credential scope and malformed-auth handling.

use std::time::Duration;

use super::examples::presigned_example_uri;
use super::*;

const GET_OBJECT_SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

fn get_object_with(authorization: &str, extra: &[(&str, &str)]) -> Parts {
    let mut headers = vec![
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ("x-amz-date", "20130524T000000Z"),
        ("authorization", authorization),
    ];
    headers.extend_from_slice(extra);
    parts("GET", "/test.txt", &headers)
}

fn get_object() -> Parts {
    get_object_with(
        &authz("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG),
        &[],
    )
}

fn presigned(uri: &str) -> Parts {
    parts("GET", uri, &[("host", "examplebucket.s3.amazonaws.com")])
}

#[test]
fn header_auth_clock_skew() {
    let p = get_object();
    let min = Duration::from_secs(60);
    verify_at(&p, example_time() + 14 * min).unwrap();
    verify_at(&p, example_time() - 14 * min).unwrap();
    for now in [example_time() + 16 * min, example_time() - 16 * min] {
        match verify_at(&p, now) {
            Err(AuthError::RequestTimeTooSkewed {
                request_time,
                server_time,
            }) => {
                assert_eq!(request_time, example_time());
                assert_eq!(server_time, now);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn presigned_expiry() {
    let p = presigned(&presigned_example_uri());
    // Valid for 86400 s; presigned URLs are not subject to the 15-minute skew window.
    verify_at(&p, example_time() + Duration::from_secs(86_000)).unwrap();
    match verify_at(&p, example_time() + Duration::from_secs(86_401)) {
        Err(AuthError::RequestExpired {
            expires_at,
            server_time: _,
        }) => assert_eq!(expires_at, example_time() + Duration::from_secs(86_400)),
        other => panic!("{other:?}"),
    }
    // Dated too far in the future.
    assert!(matches!(
        verify_at(&p, example_time() - Duration::from_secs(16 * 60)),
        Err(AuthError::RequestNotYetValid { .. })
    ));
    // A little in the future (client clock ahead) is fine.
    verify_at(&p, example_time() - Duration::from_secs(60)).unwrap();
}

#[test]
fn presigned_expires_bounds() {
    for bad in ["604801", "-1", "abc", "", "99999999999999999999"] {
        let uri =
            presigned_example_uri().replace("X-Amz-Expires=86400", &format!("X-Amz-Expires={bad}"));
        match verify(&presigned(&uri)) {
            Err(AuthError::AuthorizationQueryParametersError(msg)) => {
                assert!(msg.contains("X-Amz-Expires"), "{msg}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let uri = presigned_example_uri().replace("X-Amz-Expires=86400", "X-Amz-Expires=-1");
    match verify(&presigned(&uri)) {
        Err(AuthError::AuthorizationQueryParametersError(msg)) => {
            assert_eq!(msg, "X-Amz-Expires must be non-negative")
        }
        other => panic!("{other:?}"),
    }
    // Zero: a URL that expired as it was made.
    let uri = presigned_example_uri().replace("X-Amz-Expires=86400", "X-Amz-Expires=0");
    assert!(matches!(
        verify(&presigned(&uri)),
        Err(AuthError::RequestExpired { .. })
    ));
    // 604800 is accepted as far as bounds go (the signature then differs).
    let uri = presigned_example_uri().replace("X-Amz-Expires=86400", "X-Amz-Expires=604800");
    assert_mismatch(verify(&presigned(&uri)));
    // A configured maximum below 7 days is enforced too.
    let mut cfg = cfg();
    cfg.max_presign_expiry = Duration::from_secs(3600);
    assert!(matches!(
        verify_request(
            &presigned(&presigned_example_uri()),
            &Keys,
            &cfg,
            example_time()
        ),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
}

#[test]
fn presigned_missing_parameter() {
    let uri = presigned_example_uri().replace("&X-Amz-SignedHeaders=host", "");
    assert!(matches!(
        verify(&presigned(&uri)),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
    let uri = format!("{}&X-Amz-Date=20130524T000000Z", presigned_example_uri());
    assert!(matches!(
        verify(&presigned(&uri)),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
}

#[test]
fn wrong_region() {
    let header = authz("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG)
        .replace("/us-east-1/", "/us-west-2/");
    match verify(&get_object_with(&header, &[])) {
        Err(AuthError::AuthorizationHeaderMalformed(msg)) => {
            assert!(
                msg.contains("the region 'us-west-2' is wrong; expecting 'us-east-1'"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    let uri = presigned_example_uri().replace("%2Fus-east-1%2F", "%2Feu-west-1%2F");
    match verify(&presigned(&uri)) {
        Err(AuthError::AuthorizationQueryParametersError(msg)) => {
            assert!(
                msg.contains("the region 'eu-west-1' is wrong; expecting 'us-east-1'"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_service_terminator_and_scope_date() {
    for (from, to) in [
        ("/s3/", "/iam/"),
        ("/aws4_request", "/aws4_reques"),
        ("/20130524/", "/20130523/"),
        ("/20130524/", "/2013-05-24/"),
    ] {
        let header =
            authz("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG).replace(from, to);
        assert!(
            matches!(
                verify(&get_object_with(&header, &[])),
                Err(AuthError::AuthorizationHeaderMalformed(_))
            ),
            "{to}"
        );
    }
    let uri = presigned_example_uri().replace("%2Fs3%2F", "%2Fsts%2F");
    assert!(matches!(
        verify(&presigned(&uri)),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
}

#[test]
fn content_sha256_required_and_validated() {
    let header = authz("host;range;x-amz-date", GET_OBJECT_SIG);
    let p = parts(
        "GET",
        "/test.txt",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", &header),
        ],
    );
    assert!(matches!(verify(&p), Err(AuthError::MissingContentSha256)));
    for bad in [
        "abc",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        &"g".repeat(64),
    ] {
        let mut p = get_object();
        p.headers
            .insert("x-amz-content-sha256", bad.parse().unwrap());
        assert!(
            matches!(verify(&p), Err(AuthError::InvalidContentSha256)),
            "{bad}"
        );
    }
}

#[test]
fn missing_or_bad_date() {
    let mut p = get_object();
    p.headers.remove("x-amz-date");
    assert!(matches!(verify(&p), Err(AuthError::MissingOrInvalidDate)));
    for bad in [
        "2013-05-24T00:00:00Z",
        "20130524T000000",
        "20131324T000000Z",
        "x",
    ] {
        let mut p = get_object();
        p.headers.insert("x-amz-date", bad.parse().unwrap());
        assert!(
            matches!(verify(&p), Err(AuthError::MissingOrInvalidDate)),
            "{bad}"
        );
    }
}

#[test]
fn unknown_access_key() {
    let header = authz("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG)
        .replace(AK, "AKIDUNKNOWN");
    match verify(&get_object_with(&header, &[])) {
        Err(AuthError::InvalidAccessKeyId { access_key }) => assert_eq!(access_key, "AKIDUNKNOWN"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn authentication_kinds() {
    // None at all.
    let p = parts("GET", "/test.txt", &[("host", "h")]);
    assert!(matches!(verify(&p), Err(AuthError::MissingAuthentication)));
    // SigV2 header and query.
    let p = parts(
        "GET",
        "/test.txt",
        &[
            ("host", "h"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
            ),
        ],
    );
    assert!(matches!(verify(&p), Err(AuthError::SigV2NotSupported)));
    let p = parts(
        "GET",
        "/test.txt?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D",
        &[("host", "h")],
    );
    assert!(matches!(verify(&p), Err(AuthError::SigV2NotSupported)));
    // SigV4a.
    let p = get_object_with(
        &authz("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG)
            .replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
        &[],
    );
    match verify(&p) {
        Err(AuthError::UnsupportedAlgorithm(alg)) => assert_eq!(alg, "AWS4-ECDSA-P256-SHA256"),
        other => panic!("{other:?}"),
    }
    let uri = presigned_example_uri().replace(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256",
    );
    assert!(matches!(
        verify(&presigned(&uri)),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
    // Both mechanisms at once.
    let mut p = presigned(&presigned_example_uri());
    p.headers.insert(
        "authorization",
        authz("host", GET_OBJECT_SIG).parse().unwrap(),
    );
    assert!(matches!(verify(&p), Err(AuthError::MultipleAuthMechanisms)));
}

#[test]
fn malformed_authorization_headers() {
    let sh = "host;range;x-amz-content-sha256;x-amz-date";
    let cred = format!("Credential={AK}/20130524/us-east-1/s3/aws4_request");
    let sig = format!("Signature={GET_OBJECT_SIG}");
    for bad in [
        "AWS4-HMAC-SHA256".to_owned(),
        format!("AWS4-HMAC-SHA256 {cred}, {sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders={sh}, {sig}, {sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders={sh}, {sig}, Extra=1"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders={sh}, Signature"),
        format!(
            "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3, SignedHeaders={sh}, {sig}"
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, SignedHeaders={sh}, {sig}"
        ),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=range;x-amz-date, {sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=Host;range, {sig}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;range, {sig}"),
    ] {
        assert!(
            matches!(
                verify(&get_object_with(&bad, &[])),
                Err(AuthError::AuthorizationHeaderMalformed(_))
            ),
            "{bad}"
        );
    }
    // Over-long header and too many signed headers are bounded.
    let long = format!(
        "AWS4-HMAC-SHA256 {cred}, SignedHeaders={sh}, {sig}{}",
        " ".repeat(20_000)
    );
    assert!(matches!(
        verify(&get_object_with(&long, &[])),
        Err(AuthError::LimitExceeded(_))
    ));
    let many: Vec<String> = (0..200).map(|i| format!("h{i}")).collect();
    let bad = format!(
        "AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;{}, {sig}",
        many.join(";")
    );
    assert!(matches!(
        verify(&get_object_with(&bad, &[])),
        Err(AuthError::LimitExceeded(_))
    ));
}

#[test]
fn bad_signatures_are_mismatches() {
    for bad in ["", "zz", &"g".repeat(64), &"0".repeat(63), &"0".repeat(65)] {
        assert_mismatch(verify(&get_object_with(
            &authz("host;range;x-amz-content-sha256;x-amz-date", bad),
            &[],
        )));
    }
    // A signed header that is absent.
    let p = get_object_with(
        &authz(
            "host;range;x-amz-content-sha256;x-amz-date;x-amz-meta-absent",
            GET_OBJECT_SIG,
        ),
        &[],
    );
    assert_mismatch(verify(&p));
}

#[test]
fn errors_never_contain_the_secret() {
    let bad = "1".repeat(64);
    let results = [
        verify(&get_object_with(
            &authz("host;range;x-amz-content-sha256;x-amz-date", &bad),
            &[],
        )),
        verify(&presigned(
            &presigned_example_uri().replace("X-Amz-Signature=a", "X-Amz-Signature=b"),
        )),
    ];
    for r in results {
        let e = r.unwrap_err();
        assert!(!format!("{e:?} {e}").contains(SK));
        assert!(!format!("{e:?} {e}").contains("EXAMPLEKEY"));
    }
    // Nor does the chunk signer's Debug output.
    let v = verify(&super::examples::chunked_example_parts()).unwrap();
    let dbg = format!("{v:?}");
    assert!(dbg.contains("ChunkSigner"));
    assert!(!dbg.contains("signing_key"));
}
