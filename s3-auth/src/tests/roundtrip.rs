//! Round trips: requests signed by the official `aws-sigv4` crate with S3's settings
//! (single percent-encoding, no path normalisation, x-amz-content-sha256) must verify,
//! and any change to a signed element must not.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::HOST;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::*;
use crate::PayloadHash;

/// What S3 SDKs leave unencoded in a path (plus `/`) and in a query component.
const PATH_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(super) fn identity() -> Identity {
    Credentials::new(AK, SK, None, None, "test").into()
}

pub(super) fn s3_settings(presign: Option<Duration>) -> SigningSettings {
    let mut s = SigningSettings::default();
    s.percent_encoding_mode = PercentEncodingMode::Single;
    s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    s.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    if let Some(expires) = presign {
        s.signature_location = SignatureLocation::QueryParams;
        s.expires_in = Some(expires);
    }
    s
}

/// Signs with aws-sigv4 and returns the request as the server would see it.
pub(super) fn signed_parts(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: SignableBody<'_>,
    presign: Option<Duration>,
    time: SystemTime,
) -> Parts {
    let identity = identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(s3_settings(presign))
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new(method, url, headers.iter().map(|(k, v)| (*k, *v)), body).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    to_server_view(req.into_parts().0)
}

/// HTTP/1.1 as hyper delivers it: Host header plus origin-form URI.
pub(super) fn to_server_view(mut parts: Parts) -> Parts {
    if let Some(authority) = parts.uri.authority().cloned()
        && !parts.headers.contains_key(HOST)
    {
        parts
            .headers
            .insert(HOST, authority.as_str().parse().unwrap());
    }
    let pq = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    parts.uri = pq.parse().unwrap();
    parts
}

fn enc_path(key: &str) -> String {
    utf8_percent_encode(key, PATH_SET).to_string()
}

fn enc_query(params: &[(&str, Option<&str>)]) -> String {
    params
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!(
                "{}={}",
                utf8_percent_encode(k, QUERY_SET),
                utf8_percent_encode(v, QUERY_SET)
            ),
            None => utf8_percent_encode(k, QUERY_SET).to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

const AWKWARD_KEYS: &[&str] = &[
    "plain.txt",
    "dir/sub dir/file with  spaces.txt",
    "a+b=c&d?e#f.txt",
    "unicodé/日本語/😀.bin",
    "100%/%41%zz.txt",
    "tilde~star*quote'paren(x)!",
    "semi;colon:at@dollar$comma,bracket[x]{y}",
    "dots/../and/./double//slash/",
    "trailing space ",
];

fn awkward_query() -> String {
    enc_query(&[
        ("prefix", Some("a+b c&d=e")),
        ("marker", Some("")),
        ("delimiter", Some("/")),
        ("encoding-type", Some("url")),
        ("x-unicode", Some("ü€😀")),
        ("pct", Some("100%")),
        ("uploads", None),
        ("dup", Some("2")),
        ("dup", Some("1")),
    ])
}

fn now() -> SystemTime {
    example_time() + Duration::from_secs(1_000_000)
}

fn header_signed(method: &str, key: &str, query: &str, extra: &[(&str, &str)]) -> Parts {
    let url = if query.is_empty() {
        format!("http://localhost:9000/bucket/{}", enc_path(key))
    } else {
        format!("http://localhost:9000/bucket/{}?{query}", enc_path(key))
    };
    signed_parts(method, &url, extra, SignableBody::Bytes(b""), None, now())
}

fn presign(method: &str, key: &str, query: &str, extra: &[(&str, &str)]) -> Parts {
    let url = if query.is_empty() {
        format!("http://localhost:9000/bucket/{}", enc_path(key))
    } else {
        format!("http://localhost:9000/bucket/{}?{query}", enc_path(key))
    };
    signed_parts(
        method,
        &url,
        extra,
        SignableBody::UnsignedPayload,
        Some(Duration::from_secs(3600)),
        now(),
    )
}

const EXTRA_HEADERS: &[(&str, &str)] = &[
    ("x-amz-meta-spaces", "  a   b  c "),
    ("x-amz-meta-rep", "one"),
    ("x-amz-meta-rep", "two,three"),
    ("content-type", "text/plain; charset=utf-8"),
];

#[test]
fn header_auth_round_trips() {
    for key in AWKWARD_KEYS {
        for query in [String::new(), awkward_query()] {
            let p = header_signed("GET", key, &query, &[]);
            let v = verify_at(&p, now()).unwrap_or_else(|e| panic!("{key:?} {query:?}: {e:?}"));
            assert_eq!(v.payload, PayloadHash::Sha256(crate::sigv4::sha256(b"")));
            assert!(!v.presigned);

            let p = header_signed("PUT", key, &query, EXTRA_HEADERS);
            verify_at(&p, now()).unwrap_or_else(|e| panic!("{key:?} {query:?}: {e:?}"));
        }
    }
}

#[test]
fn presigned_round_trips() {
    for key in AWKWARD_KEYS {
        for query in [String::new(), awkward_query()] {
            let p = presign("GET", key, &query, &[]);
            let v = verify_at(&p, now()).unwrap_or_else(|e| panic!("{key:?} {query:?}: {e:?}"));
            assert!(v.presigned);
            assert_eq!(v.payload, PayloadHash::Unsigned);

            let p = presign("PUT", key, &query, &[("x-amz-meta-rep", "one")]);
            verify_at(&p, now()).unwrap_or_else(|e| panic!("{key:?} {query:?}: {e:?}"));
        }
    }
}

/// Re-encodes the URI of `p` (path and query) differently but equivalently.
fn with_uri(p: &Parts, uri: &str) -> Parts {
    let mut q = p.clone();
    q.uri = uri.parse().unwrap();
    q
}

#[test]
fn differently_encoded_but_equivalent_uris_verify() {
    let p = header_signed("GET", "a!b~c", "prefix=x%2Cy&list-type=2", &[]);
    assert_eq!(p.uri.path(), "/bucket/a%21b~c");
    // Reserved characters left raw, unreserved ones needlessly encoded, lower-case hex.
    for uri in [
        "/bucket/a!b~c?prefix=x,y&list-type=2",
        "/bucket/a%21b%7Ec?list-type=2&prefix=x%2cy",
        "/bucket/%61!b~c?prefix=x%2Cy&list-type=%32",
    ] {
        verify_at(&with_uri(&p, uri), now()).unwrap_or_else(|e| panic!("{uri}: {e:?}"));
    }
    // Case in the path matters.
    assert_mismatch(verify_at(
        &with_uri(&p, "/bucket/A!b~c?prefix=x,y&list-type=2"),
        now(),
    ));

    // `+` in a query is a literal plus (S3), not a space (HTML forms).
    let plus = header_signed("GET", "k", "q=a%2Bb", &[]);
    verify_at(&with_uri(&plus, "/bucket/k?q=a+b"), now()).unwrap();
    let space = header_signed("GET", "k", "q=a%20b", &[]);
    assert_mismatch(verify_at(&with_uri(&space, "/bucket/k?q=a+b"), now()));
}

#[test]
fn http2_style_request_without_host_header() {
    // HTTP/2: the authority is in the URI, hyper gives no Host header.
    let identity = identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(now())
        .settings(s3_settings(None))
        .build()
        .unwrap()
        .into();
    let url = "https://localhost:9443/bucket/key";
    let signable =
        SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(b"")).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().uri(url).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    let p = req.into_parts().0;
    assert!(!p.headers.contains_key(HOST));
    verify_at(&p, now()).unwrap();
}

fn mutations_fail(p: &Parts, presigned: bool) {
    verify_at(p, now()).unwrap();

    let mut m = p.clone();
    m.method = if m.method == http::Method::GET {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    assert_mismatch(verify_at(&m, now()));

    let path = p.uri.path();
    let query = p.uri.query().unwrap_or("");
    assert_mismatch(verify_at(&with_uri(p, &format!("{path}x?{query}")), now()));
    assert_mismatch(verify_at(
        &with_uri(
            p,
            &format!("{path}?{}", query.replacen("prefix=a", "prefix=b", 1)),
        ),
        now(),
    ));
    // An extra query parameter.
    assert_mismatch(verify_at(
        &with_uri(p, &format!("{path}?{query}&extra=1")),
        now(),
    ));

    // A signed header value.
    let mut m = p.clone();
    m.headers
        .insert("x-amz-meta-rep", "changed".parse().unwrap());
    assert_mismatch(verify_at(&m, now()));
    let mut m = p.clone();
    m.headers.insert(HOST, "evil.example:9000".parse().unwrap());
    assert_mismatch(verify_at(&m, now()));
    // A signed header removed.
    let mut m = p.clone();
    m.headers.remove("x-amz-meta-rep");
    assert_mismatch(verify_at(&m, now()));

    // The date.
    if presigned {
        let shifted = query.replace("X-Amz-Date=20130604T134640Z", "X-Amz-Date=20130604T134641Z");
        assert_ne!(shifted, query);
        assert_mismatch(verify_at(&with_uri(p, &format!("{path}?{shifted}")), now()));
    } else {
        let mut m = p.clone();
        m.headers
            .insert("x-amz-date", "20130604T134641Z".parse().unwrap());
        assert_mismatch(verify_at(&m, now()));
        // The payload hash.
        let mut m = p.clone();
        m.headers
            .insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        assert_mismatch(verify_at(&m, now()));
    }
}

#[test]
fn header_auth_mutations_fail() {
    // now() is 2013-06-04T13:46:40Z.
    let query = enc_query(&[("prefix", Some("a+b")), ("marker", Some(""))]);
    let p = header_signed("PUT", "some key+1", &query, &[("x-amz-meta-rep", "one")]);
    mutations_fail(&p, false);
}

#[test]
fn presigned_mutations_fail() {
    let query = enc_query(&[("prefix", Some("a+b")), ("marker", Some(""))]);
    let p = presign("PUT", "some key+1", &query, &[("x-amz-meta-rep", "one")]);
    mutations_fail(&p, true);
    // The signature itself.
    let uri = p.uri.to_string();
    let tampered = uri.replacen("X-Amz-Signature=", "X-Amz-Signature=0", 1);
    assert_mismatch(verify_at(&with_uri(&p, &tampered), now()));
    // The expiry.
    let tampered = uri.replacen("X-Amz-Expires=3600", "X-Amz-Expires=3601", 1);
    assert_mismatch(verify_at(&with_uri(&p, &tampered), now()));
}

#[test]
fn streaming_modes_round_trip() {
    let url = "http://localhost:9000/bucket/key";
    let headers = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "11"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    let cases = [
        (
            SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned()),
            PayloadHash::StreamingSigned,
            true,
        ),
        (
            SignableBody::StreamingSignedPayloadTrailer,
            PayloadHash::StreamingSignedTrailer,
            true,
        ),
        (
            SignableBody::StreamingUnsignedPayloadTrailer,
            PayloadHash::StreamingUnsignedTrailer,
            false,
        ),
        (SignableBody::UnsignedPayload, PayloadHash::Unsigned, false),
    ];
    for (body, expected, has_signer) in cases {
        let p = signed_parts("PUT", url, &headers, body, None, now());
        let v = verify_at(&p, now()).unwrap();
        assert_eq!(v.payload, expected);
        assert_eq!(v.chunk_signer.is_some(), has_signer);
    }
}

#[test]
fn unsigned_amz_header_is_refused() {
    let mut p = header_signed("PUT", "k", "", &[("x-amz-meta-a", "1")]);
    verify_at(&p, now()).unwrap();
    p.headers
        .insert("x-amz-acl", "public-read".parse().unwrap());
    match verify_at(&p, now()) {
        Err(AuthError::HeadersNotSigned { headers }) => assert_eq!(headers, "x-amz-acl"),
        other => panic!("{other:?}"),
    }
}

/// A GET of `/bucket/key` dated by a `Date` header (no `x-amz-date`), for
/// 2013-05-24 00:00:00 UTC, signed by hand: aws-sigv4 always sets
/// x-amz-date, so this uses its primitives.
fn signed_with_date_header(date: &str) -> Parts {
    let canonical = format!(
        "GET\n/bucket/key\n\ndate:{date}\nhost:localhost\n\
         x-amz-content-sha256:{EMPTY_SHA256_HEX}\n\ndate;host;x-amz-content-sha256\n{EMPTY_SHA256_HEX}"
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{}",
        hex::encode(crate::sigv4::sha256(canonical.as_bytes()))
    );
    let key = v4::generate_signing_key(SK, example_time(), "us-east-1", "s3");
    let sig = v4::calculate_signature(key, sts.as_bytes());
    parts(
        "GET",
        "/bucket/key",
        &[
            ("host", "localhost"),
            ("date", date),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            (
                "authorization",
                &authz("date;host;x-amz-content-sha256", &sig),
            ),
        ],
    )
}

#[test]
fn date_header_instead_of_x_amz_date() {
    verify(&signed_with_date_header("Fri, 24 May 2013 00:00:00 GMT")).unwrap();
}

/// A presigned URL's holder cannot add `x-amz-*` headers the signer did not
/// list (a copy source, metadata, tags, checksums): S3 refuses them.
#[test]
fn presigned_unsigned_amz_headers_are_refused() {
    let p = presign("PUT", "k", "", &[]);
    verify_at(&p, now()).unwrap();
    for (name, value) in [
        ("x-amz-copy-source", "/priv/secret.txt"),
        ("x-amz-meta-a", "1"),
        ("x-amz-tagging", "a=b"),
        ("x-amz-checksum-crc32", "AAAAAA=="),
        ("x-amz-date", "20130524T000000Z"),
    ] {
        let mut q = p.clone();
        q.headers
            .insert(http::HeaderName::from_static(name), value.parse().unwrap());
        match verify_at(&q, now()) {
            Err(AuthError::HeadersNotSigned { headers }) => assert_eq!(headers, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Signed ones are fine, and so are headers outside x-amz-*.
    let mut q = presign("PUT", "k", "", &[("x-amz-meta-a", "1")]);
    q.headers
        .insert("content-type", "text/plain".parse().unwrap());
    verify_at(&q, now()).unwrap();
}

#[test]
fn date_header_with_a_numeric_zone() {
    for date in [
        "Fri, 24 May 2013 00:00:00 -0000",
        "Fri, 24 May 2013 00:00:00 +0000",
        "Fri, 24 May 2013 02:00:00 +0200",
    ] {
        verify(&signed_with_date_header(date)).unwrap_or_else(|e| panic!("{date}: {e:?}"));
    }
}
