//! Browser-form uploads (S3's POST Object): the SigV4 signature of the
//! form's `policy` and the policy document's conditions.
//!
//! References: "Authenticating Requests in Browser-Based Uploads Using POST"
//! (`sigv4-authentication-HTTPPOST.html`), "Creating a POST Policy"
//! (`sigv4-HTTPPOSTConstructPolicy.html`) and "POST Object" in the Amazon S3
//! API reference.
//!
//! Owns: the form's fields as S3 compares them ([`PostForm`]: names
//! case-insensitive, repeated fields joined with commas), the verification
//! of `x-amz-signature` over the base64 policy as sent ([`verify_post`]),
//! parsing the policy ([`PostPolicy::parse`]) and checking the fields
//! against it ([`PostPolicy::check`]).
//!
//! Must never: read the file (the caller enforces `content-length-range`
//! while it streams), do I/O, or echo a secret; every client value that goes
//! into an error is bounded.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use super::sigv4::{
    SecretLookup, VerifyConfig, check_scope_date, hmac_sha256, parse_amz_date, parse_credential,
    scope_problem, signatures_match, signing_key,
};
use super::{AuthError, SignatureMismatch};

/// The only algorithm a POST policy may be signed with.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Most fields a form may carry before its file (S3 caps their bytes at
/// 20 KiB, which the caller enforces; this bounds the count as well).
pub const MAX_POST_FIELDS: usize = 1000;
/// Longest client value echoed back in an error message.
const MAX_ECHO_LEN: usize = 256;

/// The fields of a form that precede its `file`, as S3 compares them:
/// names lowercased (S3's field names are case-insensitive); a name sent
/// more than once has its values joined with `,`.
#[derive(Debug, Default, Clone)]
pub struct PostForm {
    /// (lowercase name, value) in the order first seen.
    fields: Vec<(String, String)>,
}

impl PostForm {
    /// Adds a field; a repeated name extends the earlier value. Refuses
    /// more than [`MAX_POST_FIELDS`] distinct names.
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), AuthError> {
        let name = name.to_ascii_lowercase();
        if let Some((_, v)) = self.fields.iter_mut().find(|(n, _)| *n == name) {
            v.push(',');
            v.push_str(value);
            return Ok(());
        }
        if self.fields.len() >= MAX_POST_FIELDS {
            return Err(AuthError::LimitExceeded("too many form fields"));
        }
        self.fields.push((name, value.to_owned()));
        Ok(())
    }

    /// The value of a field (`name` in lowercase).
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces a field's value (the `key` once `${filename}` is expanded).
    pub fn set(&mut self, name: &str, value: String) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name.to_owned(), value)),
        }
    }

    /// Every field, names lowercase.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A form whose policy signature verified.
#[derive(Debug)]
pub struct VerifiedPost {
    /// The access key that signed the policy.
    pub access_key: String,
    /// The policy, parsed; its conditions are still to be checked
    /// ([`PostPolicy::check`]).
    pub policy: PostPolicy,
}

/// Verifies a form's SigV4 policy signature. `Ok(None)`: the form carries
/// no authentication at all (an anonymous upload, which only a bucket
/// policy can allow). A form with some of the fields but not all, one
/// signed with Signature Version 2, or with a signature that does not
/// verify is refused.
pub fn verify_post(
    form: &PostForm,
    secrets: &dyn SecretLookup,
    cfg: &VerifyConfig,
) -> Result<Option<VerifiedPost>, AuthError> {
    const SIGV4_FIELDS: [(&str, &str); 5] = [
        ("policy", "Policy"),
        ("x-amz-algorithm", "X-Amz-Algorithm"),
        ("x-amz-credential", "X-Amz-Credential"),
        ("x-amz-date", "X-Amz-Date"),
        ("x-amz-signature", "X-Amz-Signature"),
    ];
    let sigv4 = SIGV4_FIELDS.map(|(name, _)| form.get(name));
    // `policy` is common to both versions; the others say which one.
    let sigv4_named = sigv4.iter().skip(1).any(Option::is_some);
    let sigv2 = form.get("awsaccesskeyid").is_some() || form.get("signature").is_some();
    if !sigv4_named && sigv2 {
        // What boto3 makes without `signature_version="s3v4"`.
        return Err(AuthError::SigV2NotSupported);
    }
    if sigv4.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [policy, algorithm, credential, date, signature] = sigv4;
    let missing = |i: usize| AuthError::PostFieldMissing(SIGV4_FIELDS[i].1);
    let policy = policy.ok_or_else(|| missing(0))?;
    let algorithm = algorithm.ok_or_else(|| missing(1))?;
    let credential = credential.ok_or_else(|| missing(2))?;
    let date = date.ok_or_else(|| missing(3))?;
    let signature = signature.ok_or_else(|| missing(4))?;
    if algorithm != ALGORITHM {
        return Err(AuthError::UnsupportedAlgorithm(echo(algorithm)));
    }
    let scope = parse_credential(credential, false).map_err(|_| {
        AuthError::PostFieldInvalid(
            "the X-Amz-Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".".into(),
        )
    })?;
    if let Some(problem) = scope_problem(&scope, cfg) {
        return Err(AuthError::PostFieldInvalid(problem));
    }
    if parse_amz_date(date).is_none() {
        return Err(AuthError::PostFieldInvalid(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not \"{}\".",
            echo(date)
        )));
    }
    check_scope_date(&scope.date, date, false).map_err(|_| {
        AuthError::PostFieldInvalid(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            echo(&scope.date),
            echo(date.get(..8).unwrap_or(""))
        ))
    })?;
    let Some(secret) = secrets.secret_key(&scope.access_key) else {
        return Err(AuthError::InvalidAccessKeyId {
            access_key: echo(&scope.access_key),
        });
    };
    let key = zeroize::Zeroizing::new(signing_key(
        &secret,
        &scope.date,
        &scope.region,
        &scope.service,
    ));
    drop(zeroize::Zeroizing::new(secret));
    // The string to sign is the base64 policy exactly as the form sent it.
    let expected = hmac_sha256(key.as_slice(), policy.as_bytes());
    if !signatures_match(&expected, signature) {
        return Err(AuthError::SignatureDoesNotMatch(Box::new(
            SignatureMismatch {
                access_key: echo(&scope.access_key),
                signature_provided: echo(signature),
                string_to_sign: echo_long(policy),
                canonical_request: String::new(),
            },
        )));
    }
    let policy = PostPolicy::parse(policy)?;
    Ok(Some(VerifiedPost {
        access_key: scope.access_key,
        policy,
    }))
}

/// One condition of a POST policy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`.
    Eq { field: String, value: String },
    /// `["starts-with", "$field", "prefix"]` (an empty prefix: any value,
    /// but the field must be sent).
    StartsWith { field: String, prefix: String },
    /// `["content-length-range", min, max]`, inclusive.
    ContentLengthRange { min: u64, max: u64 },
}

/// A POST policy: when it expires and what the form must satisfy.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    expiration: SystemTime,
    conditions: Vec<(Condition, String)>,
}

/// The size bounds a policy puts on the file, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthRange {
    pub min: u64,
    pub max: u64,
}

impl PostPolicy {
    /// Parses the base64 JSON policy. Refused with `InvalidPolicyDocument`'s
    /// texts when it is not base64, not JSON, lacks `expiration` or
    /// `conditions`, or a condition has a shape S3 does not define.
    pub fn parse(policy_b64: &str) -> Result<PostPolicy, AuthError> {
        let invalid = |m: &str| AuthError::PostPolicyMalformed(format!("Invalid Policy: {m}"));
        let json = BASE64
            .decode(policy_b64.trim().as_bytes())
            .map_err(|_| invalid("Invalid Base64 encoding."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let Value::Object(doc) = doc else {
            return Err(invalid("Invalid JSON."));
        };
        let mut expiration = None;
        let mut conditions = None;
        for (name, value) in doc {
            match name.as_str() {
                "expiration" => expiration = Some(value),
                "conditions" => conditions = Some(value),
                other => {
                    return Err(invalid(&format!(
                        "Unexpected policy field '{}'.",
                        echo(other)
                    )));
                }
            }
        }
        let expiration = match expiration {
            None => return Err(invalid("Policy missing expiration.")),
            Some(Value::String(s)) => parse_expiration(&s)
                .ok_or_else(|| invalid(&format!("Invalid 'expiration' value: '{}'", echo(&s))))?,
            Some(_) => return Err(invalid("Invalid 'expiration' value: not a string")),
        };
        let list = match conditions {
            None => return Err(invalid("Policy missing conditions.")),
            Some(Value::Array(list)) if !list.is_empty() => list,
            Some(Value::Array(_)) => return Err(invalid("Policy has no conditions.")),
            Some(_) => return Err(invalid("Policy conditions must be a list.")),
        };
        let mut parsed = Vec::with_capacity(list.len());
        for c in &list {
            parsed.push((parse_condition(c).map_err(|m| invalid(&m))?, render(c)));
        }
        Ok(PostPolicy {
            expiration,
            conditions: parsed,
        })
    }

    /// Checks the policy against the form: not expired, every condition
    /// met (`$bucket` is the bucket the request addresses; every other
    /// field must have been sent), and every field covered by a condition
    /// except `x-amz-signature`, `file`, `policy` and `x-ignore-*`. Answers
    /// the file's size bounds (`content-length-range`, or none).
    pub fn check(
        &self,
        form: &PostForm,
        bucket: &str,
        now: SystemTime,
    ) -> Result<Option<LengthRange>, AuthError> {
        let denied =
            |m: String| AuthError::PostPolicyDenied(format!("Invalid according to Policy: {m}"));
        if now > self.expiration {
            return Err(denied("Policy expired.".into()));
        }
        let value_of = |field: &str| {
            if field == "bucket" {
                Some(bucket)
            } else {
                form.get(field)
            }
        };
        let mut range: Option<LengthRange> = None;
        for (condition, text) in &self.conditions {
            let met = match condition {
                Condition::Eq { field, value } => value_of(field) == Some(value.as_str()),
                Condition::StartsWith { field, prefix } => value_of(field).is_some_and(|v| {
                    if field == "content-type" {
                        // A list of types: each must match.
                        v.split(',').all(|t| t.trim().starts_with(prefix.as_str()))
                    } else {
                        v.starts_with(prefix.as_str())
                    }
                }),
                Condition::ContentLengthRange { min, max } => {
                    // Several ranges: the file must satisfy them all.
                    let r = range.get_or_insert(LengthRange {
                        min: 0,
                        max: u64::MAX,
                    });
                    r.min = r.min.max(*min);
                    r.max = r.max.min(*max);
                    true
                }
            };
            if !met {
                return Err(denied(format!("Policy Condition failed: {text}")));
            }
        }
        let covered = |name: &str| {
            self.conditions.iter().any(|(c, _)| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => field == name,
                Condition::ContentLengthRange { .. } => false,
            })
        };
        let extra: Vec<&str> = form
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                !matches!(*name, "x-amz-signature" | "file" | "policy")
                    && !name.starts_with("x-ignore-")
                    && !covered(name)
            })
            .collect();
        if !extra.is_empty() {
            return Err(denied(format!(
                "Extra input fields: {}",
                echo(&extra.join(", "))
            )));
        }
        Ok(range)
    }
}

/// `2026-12-06T12:00:00Z` or `2026-12-06T12:00:00.000Z` (UTC).
fn parse_expiration(s: &str) -> Option<SystemTime> {
    if !s.ends_with('Z') {
        return None;
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, t.nanosecond()))
}

/// A condition's field name: `$name` (the `$` required), compared lowercase.
fn field_name(v: &Value) -> Result<String, String> {
    match v.as_str().and_then(|s| s.strip_prefix('$')) {
        Some(name) if !name.is_empty() => Ok(name.to_ascii_lowercase()),
        _ => Err(format!(
            "Invalid condition field: {} (a field is named \"$name\").",
            echo_value(v)
        )),
    }
}

fn parse_condition(c: &Value) -> Result<Condition, String> {
    match c {
        Value::Object(map) => {
            let mut it = map.iter();
            let (Some((name, value)), None) = (it.next(), it.next()) else {
                return Err(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
                        .into(),
                );
            };
            let Value::String(value) = value else {
                return Err(format!(
                    "Invalid Simple-Condition: value must be a string. ({})",
                    echo(name)
                ));
            };
            if name.is_empty() {
                return Err("Invalid Simple-Condition: the field name is empty.".into());
            }
            Ok(Condition::Eq {
                field: name.trim_start_matches('$').to_ascii_lowercase(),
                value: value.clone(),
            })
        }
        Value::Array(items) => {
            let op = items
                .first()
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            match (op.as_deref(), items.len()) {
                (Some("eq"), 3) | (Some("starts-with"), 3) => {
                    let field = field_name(&items[1])?;
                    let Some(value) = items[2].as_str() else {
                        return Err(format!(
                            "Invalid condition {}: the value must be a string.",
                            render(c)
                        ));
                    };
                    Ok(if op.as_deref() == Some("eq") {
                        Condition::Eq {
                            field,
                            value: value.to_owned(),
                        }
                    } else {
                        Condition::StartsWith {
                            field,
                            prefix: value.to_owned(),
                        }
                    })
                }
                (Some("content-length-range"), 3) => {
                    let (Some(min), Some(max)) = (length(&items[1]), length(&items[2])) else {
                        return Err(format!(
                            "Invalid content-length-range {}: the bounds must be non-negative integers.",
                            render(c)
                        ));
                    };
                    if min > max {
                        return Err(format!(
                            "Invalid content-length-range {}: the minimum exceeds the maximum.",
                            render(c)
                        ));
                    }
                    Ok(Condition::ContentLengthRange { min, max })
                }
                (Some("eq" | "starts-with" | "content-length-range"), _) => Err(format!(
                    "Invalid condition {}: wrong number of arguments.",
                    render(c)
                )),
                _ => Err(format!(
                    "Invalid condition {}: unknown operation.",
                    render(c)
                )),
            }
        }
        other => Err(format!(
            "Invalid condition {}: a condition is an object or a list.",
            echo_value(other)
        )),
    }
}

/// A `content-length-range` bound: a non-negative integer or a string of one.
fn length(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A condition as S3 quotes it in "Policy Condition failed: …": a list with
/// `", "` between items; a simple condition as its `eq` list.
fn render(c: &Value) -> String {
    let items: Vec<String> = match c {
        Value::Object(map) => match map.iter().next() {
            Some((name, value)) => vec![
                "\"eq\"".into(),
                Value::String(format!("${}", name.trim_start_matches('$'))).to_string(),
                value.to_string(),
            ],
            None => Vec::new(),
        },
        Value::Array(items) => items.iter().map(Value::to_string).collect(),
        other => vec![other.to_string()],
    };
    echo_long(&format!("[{}]", items.join(", ")))
}

fn echo_value(v: &Value) -> String {
    echo(&v.to_string())
}

/// A client value made safe to echo: bounded, no control characters.
fn echo(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ECHO_LEN)
        .collect()
}

/// Like [`echo`], with a larger bound (a policy or a condition).
fn echo_long(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(4096).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneKey;
    impl SecretLookup for OneKey {
        fn secret_key(&self, access_key: &str) -> Option<String> {
            (access_key == "AKIAIOSFODNN7EXAMPLE")
                .then(|| "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned())
        }
    }

    fn b64(json: &str) -> String {
        BASE64.encode(json)
    }

    fn form(fields: &[(&str, &str)]) -> PostForm {
        let mut f = PostForm::default();
        for (n, v) in fields {
            f.push(n, v).unwrap();
        }
        f
    }

    fn at(s: &str) -> SystemTime {
        parse_expiration(s).unwrap()
    }

    /// The worked example of AWS's "Example: Browser-Based Upload using
    /// HTTP POST (Using AWS Signature Version 4)": its policy, credential and
    /// the signature the page gives.
    #[test]
    fn the_aws_documentation_example_verifies() {
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        let f = form(&[
            ("key", "user/user1/photo.jpg"),
            ("acl", "public-read"),
            (
                "success_action_redirect",
                "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
            ),
            ("Content-Type", "image/jpeg"),
            ("x-amz-meta-uuid", "14365123651274"),
            ("x-amz-server-side-encryption", "AES256"),
            (
                "X-Amz-Credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
            ),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Date", "20151229T000000Z"),
            ("x-amz-meta-tag", ""),
            ("Policy", policy),
            (
                "X-Amz-Signature",
                "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e",
            ),
        ]);
        let cfg = VerifyConfig::new("us-east-1");
        let verified = verify_post(&f, &OneKey, &cfg).unwrap().unwrap();
        assert_eq!(verified.access_key, "AKIAIOSFODNN7EXAMPLE");
        // Before its expiration every condition holds and every field is covered.
        let range = verified
            .policy
            .check(&f, "sigv4examplebucket", at("2015-12-29T10:00:00Z"))
            .unwrap();
        assert_eq!(range, None);
        // After it: expired.
        let e = verified
            .policy
            .check(&f, "sigv4examplebucket", at("2015-12-30T12:00:01Z"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid according to Policy: Policy expired."
        );
        // Another bucket fails the bucket condition, quoted as S3 does.
        let e = verified
            .policy
            .check(&f, "other", at("2015-12-29T10:00:00Z"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$bucket\", \"sigv4examplebucket\"]"
        );
        // One changed byte of the policy: the signature no longer verifies.
        let mut tampered = f.clone();
        tampered.set("policy", policy.replacen('e', "f", 1));
        assert!(matches!(
            verify_post(&tampered, &OneKey, &cfg),
            Err(AuthError::SignatureDoesNotMatch(_))
        ));
        // Another region, an unknown key.
        assert!(matches!(
            verify_post(&f, &OneKey, &VerifyConfig::new("eu-west-1")),
            Err(AuthError::PostFieldInvalid(m)) if m.contains("the region 'us-east-1' is wrong")
        ));
        let mut unknown = f.clone();
        unknown.set(
            "x-amz-credential",
            "AKIAOTHER/20151229/us-east-1/s3/aws4_request".into(),
        );
        assert!(matches!(
            verify_post(&unknown, &OneKey, &cfg),
            Err(AuthError::InvalidAccessKeyId { .. })
        ));
    }

    #[test]
    fn a_form_names_every_signature_field_or_none() {
        let cfg = VerifyConfig::new("us-east-1");
        assert!(
            verify_post(&form(&[("key", "k")]), &OneKey, &cfg)
                .unwrap()
                .is_none()
        );
        let e = verify_post(
            &form(&[
                ("key", "k"),
                ("policy", "e30="),
                ("x-amz-algorithm", ALGORITHM),
            ]),
            &OneKey,
            &cfg,
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::PostFieldMissing("X-Amz-Credential")));
        let e = verify_post(&form(&[("x-amz-signature", "00")]), &OneKey, &cfg).unwrap_err();
        assert!(matches!(e, AuthError::PostFieldMissing("Policy")));
        let e = verify_post(
            &form(&[
                ("AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"),
                ("signature", "x"),
            ]),
            &OneKey,
            &cfg,
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::SigV2NotSupported));
    }

    fn policy(conditions: &str) -> PostPolicy {
        PostPolicy::parse(&b64(&format!(
            "{{\"expiration\": \"2030-01-01T00:00:00.000Z\", \"conditions\": {conditions}}}"
        )))
        .unwrap()
    }

    fn now() -> SystemTime {
        at("2026-12-06T00:00:00Z")
    }

    #[test]
    fn conditions_decide_as_documented() {
        let p = policy(
            r#"[{"bucket": "b"}, ["starts-with", "$key", "user/"], ["eq", "$Content-Type", "text/csv"],
                ["content-length-range", 10, "100"], ["starts-with", "$x-amz-meta-tag", ""]]"#,
        );
        let ok = form(&[
            ("KEY", "user/a.csv"),
            ("content-type", "text/csv"),
            ("x-amz-meta-tag", ""),
            ("x-ignore-me", "anything"),
            ("file", "ignored"),
        ]);
        assert_eq!(
            p.check(&ok, "b", now()).unwrap(),
            Some(LengthRange { min: 10, max: 100 })
        );
        // Values are compared case-sensitively.
        let mut f = ok.clone();
        f.set("content-type", "Text/CSV".into());
        assert!(p.check(&f, "b", now()).is_err());
        // A starts-with condition on a field not sent fails, even with "".
        let mut f = PostForm::default();
        for (n, v) in ok.iter().filter(|(n, _)| *n != "x-amz-meta-tag") {
            f.push(n, v).unwrap();
        }
        let e = p.check(&f, "b", now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$x-amz-meta-tag\", \"\"]"
        );
        // A field no condition names.
        let mut f = ok.clone();
        f.push("x-amz-meta-other", "1").unwrap();
        assert_eq!(
            p.check(&f, "b", now()).unwrap_err().to_string(),
            "Invalid according to Policy: Extra input fields: x-amz-meta-other"
        );
        // Key outside the prefix.
        let mut f = ok.clone();
        f.set("key", "other/a.csv".into());
        assert!(p.check(&f, "b", now()).is_err());
    }

    #[test]
    fn content_type_lists_match_item_by_item_and_repeated_fields_join() {
        let p =
            policy(r#"[["starts-with", "$key", ""], ["starts-with", "$Content-Type", "image/"]]"#);
        let mut f = form(&[("key", "k"), ("content-type", "image/png")]);
        assert!(p.check(&f, "b", now()).is_ok());
        f.push("Content-Type", "image/jpeg").unwrap();
        assert_eq!(f.get("content-type"), Some("image/png,image/jpeg"));
        assert!(p.check(&f, "b", now()).is_ok());
        f.push("content-type", "text/plain").unwrap();
        assert!(p.check(&f, "b", now()).is_err());
    }

    #[test]
    fn malformed_policies_are_refused_with_s3s_texts() {
        let cases = [
            ("not base64!", "Invalid Policy: Invalid Base64 encoding."),
            (&b64("{"), "Invalid Policy: Invalid JSON."),
            (
                &b64(r#"{"conditions": [{"a": "b"}]}"#),
                "Invalid Policy: Policy missing expiration.",
            ),
            (
                &b64(r#"{"expiration": "2030-01-01T00:00:00Z"}"#),
                "Invalid Policy: Policy missing conditions.",
            ),
            (
                &b64(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": []}"#),
                "Invalid Policy: Policy has no conditions.",
            ),
            (
                &b64(r#"{"expiration": "tomorrow", "conditions": [{"a": "b"}]}"#),
                "Invalid Policy: Invalid 'expiration' value: 'tomorrow'",
            ),
            (
                &b64(r#"{"EXPIRATION": "2030-01-01T00:00:00Z", "conditions": [{"a": "b"}]}"#),
                "Invalid Policy: Unexpected policy field 'EXPIRATION'.",
            ),
            (
                &b64(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{}]}"#),
                "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
            ),
            (
                &b64(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": 1}]}"#),
                "Invalid Policy: Invalid Simple-Condition: value must be a string. (a)",
            ),
            (
                &b64(
                    r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 5]]}"#,
                ),
                "Invalid Policy: Invalid condition [\"content-length-range\", 5]: wrong number of arguments.",
            ),
            (
                &b64(
                    r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", -1, 5]]}"#,
                ),
                "Invalid Policy: Invalid content-length-range [\"content-length-range\", -1, 5]: the bounds must be non-negative integers.",
            ),
            (
                &b64(
                    r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 6, 5]]}"#,
                ),
                "Invalid Policy: Invalid content-length-range [\"content-length-range\", 6, 5]: the minimum exceeds the maximum.",
            ),
            (
                &b64(
                    r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "key", "x"]]}"#,
                ),
                "Invalid Policy: Invalid condition field: \"key\" (a field is named \"$name\").",
            ),
            (
                &b64(
                    r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["in", "$key", ["x"]]]}"#,
                ),
                "Invalid Policy: Invalid condition [\"in\", \"$key\", [\"x\"]]: unknown operation.",
            ),
        ];
        for (policy, message) in cases {
            match PostPolicy::parse(policy) {
                Err(AuthError::PostPolicyMalformed(m)) => assert_eq!(m, message, "{policy}"),
                other => panic!("{policy}: {other:?}"),
            }
        }
        // Operation names compare case-insensitively, as S3's tests expect.
        let p = policy(r#"[["StArTs-WiTh", "$key", "a"]]"#);
        assert!(p.check(&form(&[("key", "ab")]), "b", now()).is_ok());
    }
}
