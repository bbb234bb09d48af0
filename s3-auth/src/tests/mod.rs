//! Tests for the auth module: AWS's published examples, round trips with the official
//! `aws-sigv4` signer, the aws-chunked decoder and the time/scope checks.

mod chunked;
mod examples;
mod roundtrip;
mod time_scope;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::request::Parts;

use super::{AuthError, SecretLookup, VerifiedRequest, VerifyConfig, verify_request};

/// The example credentials of the AWS documentation.
pub(super) const AK: &str = "AKIAIOSFODNN7EXAMPLE";
pub(super) const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub(super) const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub(super) struct Keys;

impl SecretLookup for Keys {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        (access_key == AK).then(|| SK.to_owned())
    }
}

/// 2013-05-24T00:00:00Z, the timestamp of every AWS example.
pub(super) fn example_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_369_353_600)
}

pub(super) fn cfg() -> VerifyConfig {
    VerifyConfig::new("us-east-1")
}

/// Request parts as hyper hands them to the server: origin-form URI plus headers.
pub(super) fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

pub(super) fn verify_at(parts: &Parts, now: SystemTime) -> Result<VerifiedRequest, AuthError> {
    verify_request(parts, &Keys, &cfg(), now)
}

pub(super) fn verify(parts: &Parts) -> Result<VerifiedRequest, AuthError> {
    verify_at(parts, example_time())
}

pub(super) fn assert_mismatch(r: Result<VerifiedRequest, AuthError>) {
    match r {
        Err(AuthError::SignatureDoesNotMatch(_)) => {}
        other => panic!("expected SignatureDoesNotMatch, got {other:?}"),
    }
}

pub(super) fn authz(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed_headers},Signature={signature}"
    )
}
