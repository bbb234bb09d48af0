//! The policy language against the AWS documentation's examples ("Bucket
//! policy examples", "IAM JSON policy elements: Condition operators",
//! "Policy evaluation logic", "The meaning of public").

use proptest::prelude::*;

use super::*;

const B: &str = "amzn-s3-demo-bucket";

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// The test keys' ids: `alice` → `AKALICE`.
fn key_id(name: &str) -> Option<String> {
    Some(format!("AK{}", name.to_ascii_uppercase()))
}

/// Parses and binds as PutBucketPolicy does (every name to `key_id`).
fn parse(statements: &str) -> Policy {
    let mut p = Policy::parse(doc(statements).as_bytes(), B)
        .unwrap_or_else(|e| panic!("{e}: {statements}"));
    p.bind(key_id).unwrap();
    p
}

fn err(document: &str) -> PolicyError {
    Policy::parse(document.as_bytes(), B).expect_err(document)
}

struct Ask<'a> {
    who: Principal<'a>,
    action: &'a str,
    resource: String,
    context: Context,
}

fn ask<'a>(who: Principal<'a>, action: &'a str, key: Option<&str>) -> Ask<'a> {
    let resource = match key {
        Some(k) => format!("arn:aws:s3:::{B}/{k}"),
        None => format!("arn:aws:s3:::{B}"),
    };
    Ask {
        who,
        action,
        resource,
        context: Context::new(),
    }
}

impl Ask<'_> {
    fn with(mut self, key: &str, value: &str) -> Self {
        self.context.add(key, value);
        self
    }

    fn on(&self, p: &Policy) -> Decision {
        p.evaluate(&Request {
            principal: self.who,
            action: self.action,
            resource: &self.resource,
            context: &self.context,
        })
    }
}

const ANON: Principal<'static> = Principal::Anonymous;
const ALICE: Principal<'static> = Principal::User {
    id: "AKALICE",
    name: "alice",
};

#[test]
fn public_read_only_for_anonymous_users() {
    let p = parse(
        r#"{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":["arn:aws:s3:::amzn-s3-demo-bucket/*"]}"#,
    );
    assert_eq!(
        ask(ANON, "s3:GetObject", Some("a/b")).on(&p),
        Decision::Allow
    );
    assert_eq!(
        ask(ALICE, "s3:GetObject", Some("x")).on(&p),
        Decision::Allow
    );
    assert_eq!(
        ask(ANON, "s3:PutObject", Some("x")).on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(ANON, "s3:ListBucket", None).on(&p),
        Decision::NotApplicable
    );
    assert!(p.is_public());
}

#[test]
fn deny_wins_over_allow() {
    let p = parse(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"},
           {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
    );
    assert_eq!(
        ask(ALICE, "s3:DeleteObject", Some("k")).on(&p),
        Decision::Deny
    );
    assert_eq!(
        ask(ALICE, "s3:GetObject", Some("k")).on(&p),
        Decision::Allow
    );
    assert_eq!(
        ask(ANON, "s3:DeleteObject", Some("k")).on(&p),
        Decision::Allow
    );
}

#[test]
fn actions_are_case_insensitive_with_wildcards() {
    let p = parse(
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/alice"]},"Action":"S3:get*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
    );
    assert_eq!(
        ask(ALICE, "s3:GetObject", Some("k")).on(&p),
        Decision::Allow
    );
    assert_eq!(
        ask(ALICE, "s3:GetObjectTagging", Some("k")).on(&p),
        Decision::Allow
    );
    assert_eq!(
        ask(ALICE, "s3:PutObject", Some("k")).on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(ANON, "s3:GetObject", Some("k")).on(&p),
        Decision::NotApplicable
    );
    assert!(!p.is_public());
    assert_eq!(p.named_users(), vec!["alice"]);
}

#[test]
fn not_principal_not_action_not_resource() {
    // Deny everyone but alice everything but reads, outside public/.
    let p = parse(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam:::user/alice"},"NotAction":["s3:GetObject"],"NotResource":"arn:aws:s3:::amzn-s3-demo-bucket/public/*"}"#,
    );
    assert_eq!(ask(ANON, "s3:PutObject", Some("x")).on(&p), Decision::Deny);
    assert_eq!(
        ask(ANON, "s3:GetObject", Some("x")).on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(ANON, "s3:PutObject", Some("public/x")).on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(ALICE, "s3:PutObject", Some("x")).on(&p),
        Decision::NotApplicable
    );
    // An Allow through NotPrincipal reaches everyone else: public.
    let p = parse(
        r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
    );
    assert!(p.is_public());
}

#[test]
fn restricting_to_ip_ranges() {
    // "Restricting access to specific IP addresses".
    let p = parse(
        r#"{"Sid":"IPAllow","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::amzn-s3-demo-bucket","arn:aws:s3:::amzn-s3-demo-bucket/*"],"Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:DB8:1234:5678::/64"]}}}"#,
    );
    let from = |ip: &str| {
        ask(ALICE, "s3:GetObject", Some("k"))
            .with("aws:SourceIp", ip)
            .on(&p)
    };
    assert_eq!(from("192.0.2.7"), Decision::NotApplicable);
    assert_eq!(from("192.0.3.7"), Decision::Deny);
    assert_eq!(from("2001:db8:1234:5678::9"), Decision::NotApplicable);
    assert_eq!(from("2001:db8:1234:5679::9"), Decision::Deny);
    assert_eq!(
        from("::ffff:192.0.2.7"),
        Decision::NotApplicable,
        "v4-mapped"
    );
    // A range written in IPv4-mapped form is that IPv4 range.
    let mapped = parse(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:192.0.2.0/120"}}}"#,
    );
    let from_mapped = |ip: &str| {
        ask(ALICE, "s3:GetObject", Some("k"))
            .with("aws:SourceIp", ip)
            .on(&mapped)
    };
    assert_eq!(from_mapped("192.0.2.9"), Decision::Deny);
    assert_eq!(from_mapped("::ffff:192.0.2.9"), Decision::Deny);
    assert_eq!(from_mapped("192.0.3.9"), Decision::NotApplicable);
    // Allow * from a fixed /24 is not public; from 0.0.0.0/0 it is.
    let allow = |cidr: &str| {
        parse(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{{"IpAddress":{{"aws:SourceIp":"{cidr}"}}}}}}"#
        ))
    };
    assert!(!allow("192.0.2.0/24").is_public());
    assert!(allow("0.0.0.0/0").is_public());
    assert!(allow("10.0.0.0/7").is_public());
    // Many narrow blocks that add up to more than one /8 are public too.
    let all: Vec<String> = (0..=255).map(|i| format!("\"{i}.0.0.0/8\"")).collect();
    let many = parse(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{{"IpAddress":{{"aws:SourceIp":[{}]}}}}}}"#,
        all.join(",")
    ));
    assert!(many.is_public());
    let two = parse(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/9","192.0.2.0/24"]}}}"#,
    );
    assert!(!two.is_public());
}

#[test]
fn secure_transport_and_missing_keys() {
    // "Managing access based on HTTP or HTTPS requests".
    let p = parse(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
    );
    let via = |tls: &str| {
        ask(ANON, "s3:GetObject", Some("k"))
            .with("aws:SecureTransport", tls)
            .on(&p)
    };
    assert_eq!(via("false"), Decision::Deny);
    assert_eq!(via("true"), Decision::NotApplicable);
    // A missing key fails a positive operator...
    assert_eq!(
        ask(ANON, "s3:GetObject", Some("k")).on(&p),
        Decision::NotApplicable
    );
    // ...holds a negated one ("Requiring encryption").
    let enc = parse(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}}"#,
    );
    assert_eq!(
        ask(ALICE, "s3:PutObject", Some("k")).on(&enc),
        Decision::Deny
    );
    let put = |v: &str| {
        ask(ALICE, "s3:PutObject", Some("k"))
            .with("s3:x-amz-server-side-encryption", v)
            .on(&enc)
    };
    assert_eq!(put("AES256"), Decision::NotApplicable);
    assert_eq!(put("aws:kms"), Decision::Deny);
    // IfExists holds when absent; Null tests presence.
    let if_exists = parse(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"StringEqualsIfExists":{"aws:Referer":"https://example.com/"}}}"#,
    );
    assert_eq!(
        ask(ANON, "s3:GetObject", Some("k")).on(&if_exists),
        Decision::Allow
    );
    let null = parse(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}"#,
    );
    assert_eq!(
        ask(ALICE, "s3:PutObject", Some("k")).on(&null),
        Decision::Deny
    );
    assert_eq!(
        ask(ALICE, "s3:PutObject", Some("k"))
            .with("s3:x-amz-server-side-encryption", "AES256")
            .on(&null),
        Decision::NotApplicable
    );
}

#[test]
fn home_folders_with_policy_variables() {
    let p = parse(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket","Condition":{"StringLike":{"s3:prefix":["","home/","home/${aws:username}/*"]}}},
           {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"}"#,
    );
    let alice = |action: &'static str, key: Option<&str>| {
        ask(ALICE, action, key).with("aws:username", "alice")
    };
    assert_eq!(
        alice("s3:PutObject", Some("home/alice/a")).on(&p),
        Decision::Allow
    );
    assert_eq!(
        alice("s3:PutObject", Some("home/bob/a")).on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        alice("s3:ListBucket", None)
            .with("s3:prefix", "home/alice/x")
            .on(&p),
        Decision::Allow
    );
    assert_eq!(
        alice("s3:ListBucket", None)
            .with("s3:prefix", "home/bob/")
            .on(&p),
        Decision::NotApplicable
    );
    // Version 2008-10-17: variables are literal text.
    let old = Policy::parse(
        br#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"}}"#,
        B,
    )
    .unwrap();
    assert_eq!(
        ask(ANON, "s3:GetObject", Some("${aws:username}/x"))
            .with("aws:username", "alice")
            .on(&old),
        Decision::Allow
    );
}

#[test]
fn operators_compare_as_documented() {
    let cond = |c: &str| {
        parse(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket","Condition":{c}}}"#
        ))
    };
    let list = |p: &Policy, key: &str, v: &str| ask(ANON, "s3:ListBucket", None).with(key, v).on(p);
    let p = cond(r#"{"NumericLessThanEquals":{"s3:max-keys":10}}"#);
    assert_eq!(list(&p, "s3:max-keys", "10"), Decision::Allow);
    assert_eq!(list(&p, "s3:max-keys", "11"), Decision::NotApplicable);
    assert_eq!(list(&p, "s3:max-keys", "ten"), Decision::NotApplicable);
    let p = cond(r#"{"StringEqualsIgnoreCase":{"s3:delimiter":"A"}}"#);
    assert_eq!(list(&p, "s3:delimiter", "a"), Decision::Allow);
    let p = cond(r#"{"StringEquals":{"s3:prefix":"a*"}}"#);
    assert_eq!(
        list(&p, "s3:prefix", "abc"),
        Decision::NotApplicable,
        "no wildcards"
    );
    assert_eq!(
        list(&p, "s3:prefix", "a*"),
        Decision::Allow,
        "a literal star"
    );
    let p = cond(r#"{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}"#);
    assert_eq!(
        list(&p, "aws:CurrentTime", "2026-12-05T08:00:00Z"),
        Decision::Allow
    );
    assert_eq!(
        list(&p, "aws:CurrentTime", "2027-12-05T08:00:00Z"),
        Decision::NotApplicable
    );
    let p = cond(r#"{"DateGreaterThan":{"aws:EpochTime":"2026-01-01"}}"#);
    assert_eq!(list(&p, "aws:EpochTime", "1796000000"), Decision::Allow);
    let p = cond(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam:::user/a*"}}"#);
    assert_eq!(
        list(&p, "aws:PrincipalArn", "arn:aws:iam:::user/alice"),
        Decision::Allow
    );
    // Two keys in one operator, and two operators: AND. Values: OR.
    let p = cond(
        r#"{"StringEquals":{"s3:prefix":["a","b"],"s3:delimiter":"/"},"NumericLessThan":{"s3:max-keys":"100"}}"#,
    );
    let full = |prefix: &str, delim: &str, max: &str| {
        ask(ANON, "s3:ListBucket", None)
            .with("s3:prefix", prefix)
            .with("s3:delimiter", delim)
            .with("s3:max-keys", max)
            .on(&p)
    };
    assert_eq!(full("b", "/", "5"), Decision::Allow);
    assert_eq!(full("c", "/", "5"), Decision::NotApplicable);
    assert_eq!(full("a", "-", "5"), Decision::NotApplicable);
    assert_eq!(full("a", "/", "500"), Decision::NotApplicable);
}

#[test]
fn set_operators_on_multivalued_keys() {
    // ForAllValues: every tag key the request sets is an allowed one.
    let p = parse(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["Project","Team"]}}}"#,
    );
    let put = |keys: &[&str]| {
        let mut a = ask(ANON, "s3:PutObject", Some("k"));
        for k in keys {
            a = a.with("s3:RequestObjectTagKeys", k);
        }
        a.on(&p)
    };
    assert_eq!(put(&["Project"]), Decision::Allow);
    assert_eq!(put(&["Project", "Team"]), Decision::Allow);
    assert_eq!(put(&["Project", "Cost"]), Decision::NotApplicable);
    assert_eq!(put(&[]), Decision::Allow, "ForAllValues of nothing holds");
    let any = parse(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"ForAnyValue:StringLike":{"s3:RequestObjectTagKeys":"secret*"}}}"#,
    );
    let put_any = |keys: &[&str]| {
        let mut a = ask(ANON, "s3:PutObject", Some("k"));
        for k in keys {
            a = a.with("s3:RequestObjectTagKeys", k);
        }
        a.on(&any)
    };
    assert_eq!(put_any(&["a", "secret-x"]), Decision::Deny);
    assert_eq!(put_any(&["a"]), Decision::NotApplicable);
    assert_eq!(put_any(&[]), Decision::NotApplicable);
}

#[test]
fn tag_condition_keys_keep_the_tag_keys_case() {
    let p = parse(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/Environment":"production"}}}"#,
    );
    assert!(p.uses_condition_key("s3:existingobjecttag/"));
    assert!(!p.uses_condition_key("s3:RequestObjectTag/"));
    let get = |k: &str| {
        ask(ANON, "s3:GetObject", Some("x"))
            .with(k, "production")
            .on(&p)
    };
    assert_eq!(get("S3:ExistingObjectTag/Environment"), Decision::Allow);
    assert_eq!(
        get("s3:ExistingObjectTag/environment"),
        Decision::NotApplicable
    );
}

#[test]
fn malformed_documents_get_s3s_messages() {
    let ok = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#;
    assert_eq!(err("[]"), PolicyError::NotAnObject);
    assert_eq!(err("{"), PolicyError::InvalidJson);
    assert_eq!(
        err(r#"{"Version":"2012-10-17"}"#),
        PolicyError::MissingField("Statement")
    );
    assert_eq!(err(&doc("")), PolicyError::EmptyStatement);
    assert_eq!(
        err(r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#),
        PolicyError::UnknownField("Extra".into())
    );
    assert_eq!(
        err(r#"{"Version":"2020-01-01","Statement":[]}"#),
        PolicyError::Version("2020-01-01".into())
    );
    let with = |from: &str, to: &str| err(&doc(&ok.replace(from, to)));
    assert_eq!(
        with(r#""Effect":"Allow""#, r#""Effect":"allow""#),
        PolicyError::Effect("allow".into())
    );
    assert_eq!(
        with(r#""Principal":"*","#, ""),
        PolicyError::MissingField("Principal")
    );
    assert_eq!(
        with(
            r#""Principal":"*""#,
            r#""Principal":{"Service":"s3.amazonaws.com"}"#
        ),
        PolicyError::Principal
    );
    assert_eq!(
        with(
            r#""Principal":"*""#,
            r#""Principal":{"AWS":"123456789012"}"#
        ),
        PolicyError::Principal
    );
    assert_eq!(
        with(r#""Principal":"*""#, r#""Principal":"alice""#),
        PolicyError::Principal
    );
    assert_eq!(with("s3:GetObject", "s3:Fly"), PolicyError::Action);
    assert_eq!(with("s3:GetObject", "iam:CreateUser"), PolicyError::Action);
    assert_eq!(
        with("amzn-s3-demo-bucket/*", "other-bucket/*"),
        PolicyError::Resource
    );
    assert_eq!(
        with("arn:aws:s3:::amzn-s3-demo-bucket/*", "*"),
        PolicyError::Resource
    );
    assert_eq!(
        with(
            r#""Resource""#,
            r#""Condition":{"StringLikeish":{"aws:Referer":"x"}},"Resource""#
        ),
        PolicyError::ConditionOperator("StringLikeish".into())
    );
    assert_eq!(
        with(
            r#""Resource""#,
            r#""Condition":{"StringLike":{"Referer":"x"}},"Resource""#
        ),
        PolicyError::ConditionKey
    );
    // Keys Cairn does not supply (AWS keys for other contexts, typos,
    // other services): refused, since such a condition never matches and
    // a Deny on it would never deny.
    for key in [
        "aws:SourceVpc",
        "aws:PrincipalOrgID",
        "aws:usrname",
        "s3:x-amz-grant-read",
        "ec2:Region",
        "s3:ExistingObjectTag/",
    ] {
        assert_eq!(
            with(
                r#""Resource""#,
                &format!(r#""Condition":{{"StringEquals":{{"{key}":"x"}}}},"Resource""#)
            ),
            PolicyError::ConditionKey,
            "{key}"
        );
    }
    // …and so are unknown policy variables, in values and resources.
    assert_eq!(
        with(
            r#""Resource""#,
            r#""Condition":{"StringLike":{"s3:prefix":"home/${aws:usrname}/*"}},"Resource""#
        ),
        PolicyError::ConditionKey
    );
    assert_eq!(
        with(
            "amzn-s3-demo-bucket/*",
            "amzn-s3-demo-bucket/${aws:SourceVpc}/*"
        ),
        PolicyError::Resource
    );
    // Every supplied key is accepted, any case.
    for key in SUPPORTED_CONDITION_KEYS
        .iter()
        .map(|k| k.to_string())
        .chain(["s3:RequestObjectTag/Team".into(), "AWS:SourceIP".into()])
    {
        let statement = ok.replace(
            r#""Resource""#,
            &format!(r#""Condition":{{"StringLikeIfExists":{{"{key}":"*"}}}},"Resource""#),
        );
        Policy::parse(doc(&statement).as_bytes(), "amzn-s3-demo-bucket")
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    assert_eq!(
        with(
            r#""Resource""#,
            r#""Condition":{"NumericEquals":{"s3:max-keys":"many"}},"Resource""#
        ),
        PolicyError::ConditionValue("NumericEquals".into())
    );
    assert_eq!(
        with(
            r#""Resource""#,
            r#""Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}},"Resource""#
        ),
        PolicyError::ConditionValue("IpAddress".into())
    );
    assert_eq!(
        err(&doc(&format!(
            "{},{}",
            ok.replace(r#""Effect""#, r#""Sid":"same","Effect""#),
            ok.replace(r#""Effect""#, r#""Sid":"same","Effect""#)
        ))),
        PolicyError::DuplicateSid
    );
    assert_eq!(
        with("}", r#","Bogus":1}"#),
        PolicyError::UnknownField("Bogus".into())
    );
    let big = format!(
        r#"{{"Id":"{}","Statement":[]}}"#,
        "x".repeat(MAX_POLICY_BYTES)
    );
    assert_eq!(err(&big), PolicyError::TooLarge);
    // Whitespace does not count.
    let padded = format!(
        "{{ {} \"Version\":\"2012-10-17\",\"Statement\":{ok}}}",
        " ".repeat(MAX_POLICY_BYTES)
    );
    Policy::parse(padded.as_bytes(), B).unwrap();
    // Scalars of every JSON kind are accepted as condition values.
    parse(&ok.replace(
        r#""Resource""#,
        r#""Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":[5,"6"]}},"Resource""#,
    ));
    // A bare statement object (not an array) is a policy too.
    Policy::parse(
        format!(r#"{{"Version":"2012-10-17","Statement":{ok}}}"#).as_bytes(),
        B,
    )
    .unwrap();
}

/// Regression (attacker review): a condition key the server never supplies
/// was accepted and never matched, so a `Deny` conditioned on a misspelt
/// or unsupported key never fired. Cases beyond
/// `malformed_documents_get_s3s_messages`: near-misses of supported keys,
/// and variables in `StringEqualsIgnoreCase` (compared as text before, so
/// an unknown one slipped past the variable check and never matched).
#[test]
fn unknown_condition_keys_and_variables_are_refused() {
    let with_condition = |c: &str| {
        Policy::parse(
            doc(&format!(
                r#"{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{c}}}"#
            ))
            .as_bytes(),
            B,
        )
    };
    for key in [
        "aws:SourceIP6",  // a typo
        "aws:SourceVpce", // AWS's, but never supplied by Cairn
        "s3:ExistingObjectTags/Team",
        "s3:RequestObjectTag/",  // no tag key
        "ec2:SourceInstanceARN", // another service
        "Referer",
    ] {
        let e = with_condition(&format!(r#"{{"StringEquals":{{"{key}":"x"}}}}"#));
        assert_eq!(e.unwrap_err(), PolicyError::ConditionKey, "{key}");
    }
    assert_eq!(
        PolicyError::ConditionKey.to_string(),
        "Policy has an invalid condition key"
    );
    // Variables: the same list, in resources and in every string operator.
    let resource = |r: &str| {
        Policy::parse(
            doc(&format!(
                r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/{r}"}}"#
            ))
            .as_bytes(),
            B,
        )
    };
    for bad in ["${aws:PrincipalTag/team}/*", "${home}/*"] {
        assert_eq!(resource(bad).unwrap_err(), PolicyError::Resource, "{bad}");
    }
    resource("${aws:username}/${s3:ExistingObjectTag/Team}/${*}").unwrap();
    for operator in ["StringEquals", "StringNotEquals", "StringEqualsIgnoreCase"] {
        assert_eq!(
            with_condition(&format!(
                r#"{{"{operator}":{{"s3:prefix":"home/${{aws:userId2}}/"}}}}"#
            ))
            .unwrap_err(),
            PolicyError::ConditionKey,
            "{operator}"
        );
    }
    // Without Version 2012-10-17 `${…}` is text, not a variable.
    Policy::parse(
        br#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/${home}/*"}}"#,
        B,
    )
    .unwrap();
    // StringEqualsIgnoreCase resolves variables too (it compared them as
    // text before).
    let p = parse(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket","Condition":{"StringEqualsIgnoreCase":{"s3:prefix":"HOME/${aws:username}"}}}"#,
    );
    assert_eq!(
        ask(ALICE, "s3:ListBucket", None)
            .with("aws:username", "alice")
            .with("s3:prefix", "home/ALICE")
            .on(&p),
        Decision::Deny
    );
}

/// Regression (attacker review): wildcard matching costs pattern × text,
/// and the request chooses the text. A hostile evaluation stops at the
/// bound and is a `Deny`, quickly; ordinary requests cost a few hundred
/// steps.
#[test]
fn a_costly_evaluation_is_refused_at_the_bound() {
    // Patterns that make the one-backtrack matcher retry a long literal at
    // every position, and the pattern of the review (`*a*a*…b`), against
    // an 8 KiB header of `a`s; as many as a 20 KiB policy holds.
    let costly = format!("*{}b", "a".repeat(1000));
    let review = format!("{}b", "*a".repeat(500));
    let values: Vec<String> = [costly.as_str(), review.as_str()]
        .iter()
        .cycle()
        .take(18)
        .map(|v| format!("\"{v}\""))
        .collect();
    let p = parse(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam:::user/alice"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}},
           {{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{{"StringLike":{{"aws:UserAgent":[{}]}}}}}}"#,
        values.join(",")
    ));
    let hostile = "a".repeat(8 * 1024);
    let a = ask(ALICE, "s3:GetObject", Some("k")).with("aws:UserAgent", &hostile);
    let request = Request {
        principal: a.who,
        action: a.action,
        resource: &a.resource,
        context: &a.context,
    };
    let t = std::time::Instant::now();
    let cost = p.evaluate_within(&request, EVALUATION_STEPS_MAX);
    let took = t.elapsed();
    assert_eq!(cost.decision, Decision::Deny, "fail closed");
    assert!(cost.exhausted);
    assert!(cost.steps <= EVALUATION_STEPS_MAX);
    assert_eq!(p.evaluate(&request), Decision::Deny);
    // Generous for unoptimised builds; unbounded it takes ~70 M steps.
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    // Without the bound the same request is allowed (the Deny's patterns
    // do not match): the refusal is the bound's.
    assert_eq!(
        p.evaluate_within(&request, u64::MAX).decision,
        Decision::Allow
    );
    // An ordinary user agent: allowed, for a few steps.
    let ok = ask(ALICE, "s3:GetObject", Some("k")).with("aws:UserAgent", "aws-sdk-rust/1.0");
    let cost = p.evaluate_within(
        &Request {
            principal: ok.who,
            action: ok.action,
            resource: &ok.resource,
            context: &ok.context,
        },
        EVALUATION_STEPS_MAX,
    );
    assert_eq!(cost.decision, Decision::Allow);
    assert!(!cost.exhausted && cost.steps < 1_000, "{cost:?}");
    // A bound too small for even an ordinary request refuses it too.
    let tiny = p.evaluate_within(
        &Request {
            principal: ok.who,
            action: ok.action,
            resource: &ok.resource,
            context: &ok.context,
        },
        3,
    );
    assert_eq!((tiny.decision, tiny.exhausted), (Decision::Deny, true));
}

/// Regression (attacker review): dual-stack listeners report IPv4 clients
/// as `::ffff:a.b.c.d`, and ranges can be written so; both meet IPv4
/// ranges in one (canonical) form.
#[test]
fn ipv4_mapped_addresses_and_ranges_are_ipv4() {
    let deny_outside = |ranges: &str| {
        parse(&format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{{"NotIpAddress":{{"aws:SourceIp":{ranges}}}}}}}"#
        ))
    };
    let from = |p: &Policy, ip: &str| {
        ask(ALICE, "s3:GetObject", Some("k"))
            .with("aws:SourceIp", ip)
            .on(p)
    };
    for p in [
        deny_outside(r#"["10.1.0.0/16"]"#),
        deny_outside(r#"["::ffff:10.1.0.0/112"]"#),
        deny_outside(r#"["::FFFF:10.1.2.3"]"#),
    ] {
        assert_eq!(from(&p, "10.1.2.3"), Decision::NotApplicable);
        assert_eq!(from(&p, "::ffff:10.1.2.3"), Decision::NotApplicable);
        assert_eq!(from(&p, "10.2.0.1"), Decision::Deny);
        assert_eq!(from(&p, "::ffff:10.2.0.1"), Decision::Deny);
        assert_eq!(from(&p, "2001:db8::1"), Decision::Deny);
    }
    let allow_from = |range: &str| {
        parse(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*","Condition":{{"IpAddress":{{"aws:SourceIp":"{range}"}}}}}}"#
        ))
    };
    let p = allow_from("::ffff:192.0.2.0/120");
    assert_eq!(from(&p, "::ffff:192.0.2.9"), Decision::Allow);
    assert_eq!(from(&p, "192.0.2.9"), Decision::Allow);
    assert_eq!(from(&p, "192.0.3.9"), Decision::NotApplicable);
    assert!(!p.is_public());
    // Every IPv4 address, written mapped, is public as 0.0.0.0/0 is.
    assert!(allow_from("::ffff:0.0.0.0/96").is_public());
    assert!(allow_from("::ffff:10.0.0.0/103").is_public(), "a /7");
    assert!(!allow_from("::ffff:10.0.0.0/104").is_public(), "a /8");
    assert!(allow_from("0.0.0.0/0").is_public());
    // A mapped prefix under /96 is an IPv6 range.
    let p = allow_from("::ffff:0:0/95");
    assert_eq!(from(&p, "::ffff:192.0.2.9"), Decision::NotApplicable);
    assert_eq!(from(&p, "::fffe:0:1"), Decision::Allow);
}

/// Regression (attacker review): principals named keys by their (reusable)
/// names, so a key created under a deleted key's name inherited its
/// grants. A named principal matches only the key id it was bound to.
#[test]
fn named_principals_match_the_key_they_were_bound_to() {
    let statements = r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/alice","arn:aws:iam:::user/bob"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#;
    let p = parse(statements);
    let as_key = |id: &'static str, name: &'static str| {
        ask(Principal::User { id, name }, "s3:GetObject", Some("k")).on(&p)
    };
    assert_eq!(as_key("AKALICE", "alice"), Decision::Allow);
    assert_eq!(
        as_key("AKNEWALICE", "alice"),
        Decision::NotApplicable,
        "a new key under the old name"
    );
    // The id decides (a key's name never changes).
    assert_eq!(as_key("AKALICE", "alice"), Decision::Allow);
    let ids = p.bindings().unwrap();
    assert_eq!(ids.get("alice").map(String::as_str), Some("AKALICE"));
    assert_eq!(ids.len(), 2);
    // Stored bindings come back with the document; a name without one
    // matches nobody.
    let unparsed = Policy::parse(doc(statements).as_bytes(), B).unwrap();
    assert_eq!(
        ask(ALICE, "s3:GetObject", Some("k")).on(&unparsed),
        Decision::NotApplicable,
        "unbound: named principals match nobody"
    );
    let only_bob = unparsed.clone().with_bindings(
        [("bob".to_owned(), "AKBOB".to_owned())]
            .into_iter()
            .collect(),
    );
    assert_eq!(
        ask(ALICE, "s3:GetObject", Some("k")).on(&only_bob),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(
            Principal::User {
                id: "AKBOB",
                name: "bob"
            },
            "s3:GetObject",
            Some("k")
        )
        .on(&only_bob),
        Decision::Allow
    );
    // Policies stored before bindings: by name, as before.
    let legacy = unparsed.clone().bound_by_name();
    assert_eq!(as_key_on(&legacy, "AKNEWALICE", "alice"), Decision::Allow);
    assert_eq!(legacy.bindings(), None);
    // Binding fails on a name without a key.
    let mut q = unparsed;
    assert_eq!(
        q.bind(|n| (n == "alice").then(|| "AKALICE".to_owned())),
        Err("bob".to_owned())
    );
}

fn as_key_on(p: &Policy, id: &'static str, name: &'static str) -> Decision {
    ask(Principal::User { id, name }, "s3:GetObject", Some("k")).on(p)
}

fn any_statement() -> impl Strategy<Value = String> {
    let effect = prop_oneof![Just("Allow"), Just("Deny")];
    let principal = prop_oneof![
        Just(r#""*""#.to_owned()),
        Just(r#"{"AWS":"arn:aws:iam:::user/alice"}"#.to_owned()),
        Just(r#"{"AWS":["arn:aws:iam:::user/bob","*"]}"#.to_owned()),
    ];
    let action = prop_oneof![
        Just("s3:*"),
        Just("s3:GetObject"),
        Just("s3:Put*"),
        Just("s3:List*"),
        Just("*")
    ];
    let resource = prop_oneof![
        Just("arn:aws:s3:::amzn-s3-demo-bucket"),
        Just("arn:aws:s3:::amzn-s3-demo-bucket/*"),
        Just("arn:aws:s3:::amzn-s3-demo-bucket/a/*"),
        Just("arn:aws:s3:::amzn-s3-demo-bucket/?"),
    ];
    (effect, principal, action, resource).prop_map(|(e, p, a, r)| {
        format!(r#"{{"Effect":"{e}","Principal":{p},"Action":"{a}","Resource":"{r}"}}"#)
    })
}

proptest! {
    /// Adding a matching Deny to any policy turns its decision into Deny;
    /// adding an Allow never turns a Deny into anything else.
    #[test]
    fn deny_always_wins(
        statements in proptest::collection::vec(any_statement(), 1..6),
        anonymous in any::<bool>(),
        action in prop_oneof![Just("s3:GetObject"), Just("s3:PutObject"), Just("s3:ListBucket")],
        key in prop_oneof![Just(None), Just(Some("a/b")), Just(Some("x"))],
    ) {
        let who = if anonymous { ANON } else { ALICE };
        let p = parse(&statements.join(","));
        let a = ask(who, action, key);
        let before = a.on(&p);
        let resource = a.resource.clone();
        let deny = format!(r#"{{"Effect":"Deny","Principal":"*","Action":"{action}","Resource":"{resource}"}}"#);
        let with_deny = parse(&format!("{},{deny}", statements.join(",")));
        prop_assert_eq!(a.on(&with_deny), Decision::Deny);
        let allow = format!(r#"{{"Effect":"Allow","Principal":"*","Action":"{action}","Resource":"{resource}"}}"#);
        let with_allow = parse(&format!("{allow},{}", statements.join(",")));
        let after = a.on(&with_allow);
        if before == Decision::Deny {
            prop_assert_eq!(after, Decision::Deny);
        } else {
            prop_assert_eq!(after, Decision::Allow);
        }
    }
}

/// Prints the cost of one evaluation of a 20-statement policy with a
/// context as the server builds it (bench/policy.sh's policy). Not a
/// timing assertion: run with `--ignored --nocapture`.
#[test]
#[ignore]
fn print_evaluation_cost() {
    let mut st = Vec::new();
    for i in 0..19 {
        st.push(format!(r#"{{"Sid":"Reader{i}","Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::pol","arn:aws:s3:::pol/team{i}/*"],"Condition":{{"IpAddress":{{"aws:SourceIp":["10.{i}.0.0/16","192.0.2.0/24"]}},"StringLike":{{"aws:Referer":"https://app{i}.example.com/*"}}}}}}"#));
    }
    st.push(r#"{"Sid":"TlsOnlyWrites","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pol","arn:aws:s3:::pol/*"],"Condition":{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"s3:x-amz-acl":"public-read"}}}"#.to_owned());
    let p = Policy::parse(
        doc(&st.join(","))
            .replace("amzn-s3-demo-bucket", "pol")
            .as_bytes(),
        "pol",
    )
    .unwrap();
    let n = 200_000u32;
    let t = std::time::Instant::now();
    let mut allowed = 0;
    for i in 0..n {
        let mut c = Context::new();
        c.set("aws:CurrentTime", "2026-12-05T08:00:00Z");
        c.set("aws:EpochTime", "1796000000");
        c.set("aws:SecureTransport", "false");
        c.set("aws:SourceIp", "127.0.0.1");
        c.set("aws:PrincipalType", "User");
        c.set("aws:username", "bench");
        c.set("aws:userid", "AKBENCH0000000000001");
        c.set("aws:PrincipalArn", "arn:aws:iam:::user/bench");
        c.set("s3:signatureversion", "AWS4-HMAC-SHA256");
        c.set("s3:authType", "REST-HEADER");
        c.set("aws:UserAgent", "s3bench/0.1");
        c.set("s3:x-amz-content-sha256", "UNSIGNED-PAYLOAD");
        let resource = format!("arn:aws:s3:::pol/g/obj-{i:08}");
        let d = p.evaluate(&Request {
            principal: Principal::User {
                id: "AKBENCH0000000000001",
                name: "bench",
            },
            action: "s3:GetObject",
            resource: &resource,
            context: &c,
        });
        allowed += usize::from(d == Decision::Allow);
        assert!(!p.uses_condition_key("s3:ExistingObjectTag/"));
    }
    let per = t.elapsed() / n;
    println!("context + evaluation: {per:?} per request ({allowed} allowed)");
    let mut c = Context::new();
    c.set("aws:SecureTransport", "false");
    c.set("aws:SourceIp", "127.0.0.1");
    let resource = "arn:aws:s3:::pol/g/obj-00000001".to_owned();
    let t = std::time::Instant::now();
    for _ in 0..n {
        let d = p.evaluate(&Request {
            principal: Principal::User {
                id: "AKBENCH0000000000001",
                name: "bench",
            },
            action: "s3:GetObject",
            resource: &resource,
            context: &c,
        });
        allowed += usize::from(d == Decision::Allow);
    }
    println!(
        "evaluation alone: {:?} per request ({allowed})",
        t.elapsed() / n
    );
    let cost = p.evaluate_within(
        &Request {
            principal: Principal::User {
                id: "AKBENCH0000000000001",
                name: "bench",
            },
            action: "s3:GetObject",
            resource: &resource,
            context: &c,
        },
        EVALUATION_STEPS_MAX,
    );
    println!(
        "steps per evaluation: {} of {EVALUATION_STEPS_MAX}",
        cost.steps
    );
}

/// The precomputed action bits decide exactly as matching each `Action`
/// pattern against the request's action would, for every known action in
/// any letter case, and unknown actions still go through the patterns.
#[test]
fn action_bits_decide_as_the_patterns_do() {
    assert!(
        S3_ACTIONS.windows(2).all(|w| w[0] < w[1]),
        "S3_ACTIONS sorted"
    );
    let patterns = [
        "*",
        "s3:*",
        "s3:Get*",
        "s3:*Object",
        "s3:?etObject",
        "S3:GETOBJECT",
        "s3:list*",
        "s3:*Tagging*",
        "s3:PutObject",
    ];
    let budget = Budget::new(EVALUATION_STEPS_MAX);
    for pattern in patterns {
        for not_action in [false, true] {
            let element = if not_action { "NotAction" } else { "Action" };
            let p = parse(&format!(
                r#"{{"Effect":"Allow","Principal":"*","{element}":"{pattern}","Resource":"arn:aws:s3:::{B}/*"}}"#
            ));
            let s = &p.statements[0];
            let context = Context::new();
            let mut names: Vec<String> = S3_ACTIONS.iter().map(|a| a.to_string()).collect();
            names.extend(S3_ACTIONS.iter().map(|a| a.to_ascii_lowercase()));
            names.extend(S3_ACTIONS.iter().map(|a| a.to_ascii_uppercase()));
            for name in names
                .iter()
                .map(String::as_str)
                .chain(["s3:GetNewThing", "s3:*"])
            {
                let request = Request {
                    principal: Principal::Anonymous,
                    action: name,
                    resource: "arn:aws:s3:::amzn-s3-demo-bucket/k",
                    context: &context,
                };
                let by_patterns = s.applies(&request, None, &p.binding, &budget);
                let by_bits = s.applies(&request, action_index(name), &p.binding, &budget);
                assert_eq!(by_bits, by_patterns, "{element} {pattern} against {name}");
            }
        }
    }
    assert_eq!(action_index("s3:GetObject"), action_index("S3:getobject"));
    assert_eq!(action_index("s3:GetNewThing"), None);
}

/// A lazy context computes a key only when a statement that reaches its
/// conditions reads it, once however often it is read, and decides as a
/// context filled in advance does.
#[test]
fn a_lazy_context_computes_only_the_keys_reached_and_each_once() {
    let p = parse(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/team/*","Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}},
           {{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::{B}/*","Condition":{{"Bool":{{"aws:SecureTransport":"false"}},"StringLike":{{"aws:UserAgent":"*bot*"}}}}}},
           {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*","Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}"#
    ));
    let asked = std::cell::RefCell::new(Vec::<String>::new());
    let compute = |key: &str| {
        asked.borrow_mut().push(key.to_owned());
        match key {
            "aws:securetransport" => Some(vec!["false".to_owned()]),
            "aws:sourceip" => Some(vec!["10.1.2.3".to_owned()]),
            _ => None,
        }
    };
    let decide = |resource: &str, context: &dyn ConditionValues| {
        p.evaluate(&Request {
            principal: Principal::Anonymous,
            action: "s3:GetObject",
            resource,
            context,
        })
    };
    let lazy = LazyContext::new(&p, compute);
    let other = format!("arn:aws:s3:::{B}/other/k");
    assert_eq!(decide(&other, &lazy), Decision::Allow);
    // The first statement's resource does not match: its address is never
    // computed; the user agent is absent, so the Deny does not apply.
    assert_eq!(
        *asked.borrow(),
        ["aws:securetransport", "aws:useragent"],
        "each key once, in the order reached"
    );
    // The same decisions as an eager context, for both resources.
    let mut eager = Context::new();
    eager.set("aws:SecureTransport", "false");
    eager.set("aws:SourceIp", "10.1.2.3");
    let team = format!("arn:aws:s3:::{B}/team/k");
    for resource in [&other, &team] {
        let lazy = LazyContext::new(&p, compute);
        assert_eq!(
            decide(resource, &lazy),
            decide(resource, &eager),
            "{resource}"
        );
    }
    // A key the policy does not read is absent, and never computed.
    asked.borrow_mut().clear();
    let lazy = LazyContext::new(&p, compute);
    assert_eq!(lazy.values("aws:referer"), None);
    assert!(asked.borrow().is_empty());
}
