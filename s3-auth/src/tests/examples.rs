//! Known-answer tests from the Amazon S3 API reference:
//! - "Signature Calculations for the Authorization Header: Transferring Payload in a Single
//!   Chunk": <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! - "... Transferring Payload in Multiple Chunks (Chunked Upload)":
//!   <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>
//! - "Signature calculations for trailing headers (chunked uploads)":
//!   <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html>
//!   (values as also asserted by aws-runtime's own tests)
//! - "Authenticating Requests: Using Query Parameters":
//!   <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>

use bytes::Bytes;

use super::*;
use crate::sigv4::{ChunkSigner, sha256, signing_key};
use crate::{AwsChunkedDecoder, ChunkedError, PayloadHash};

const GET_OBJECT_SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
const PUT_OBJECT_SIG: &str = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
const LIFECYCLE_SIG: &str = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543";
const LIST_OBJECTS_SIG: &str = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
const PRESIGNED_SIG: &str = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

const CHUNKED_SEED_SIG: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNKED_SIGS: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];

const TRAILER_SEED_SIG: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const TRAILER_CHUNK_SIGS: [&str; 3] = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const TRAILER_SIG: &str = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";

fn get_object(signature: &str) -> Parts {
    parts(
        "GET",
        "/test.txt",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                &authz("host;range;x-amz-content-sha256;x-amz-date", signature),
            ),
        ],
    )
}

#[test]
fn get_object_with_range() {
    let v = verify(&get_object(GET_OBJECT_SIG)).unwrap();
    assert_eq!(v.access_key, AK);
    assert_eq!(v.payload, PayloadHash::Sha256(sha256(b"")));
    assert!(!v.presigned);
    assert!(v.chunk_signer.is_none());
}

#[test]
fn get_object_mismatch_reports_documented_canonical_request() {
    let bad = "0".repeat(64);
    let Err(AuthError::SignatureDoesNotMatch(m)) = verify(&get_object(&bad)) else {
        panic!("expected mismatch");
    };
    assert_eq!(
        m.canonical_request,
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
         x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
         x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        m.string_to_sign,
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
         7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    );
    assert_eq!(m.access_key, AK);
    assert_eq!(m.signature_provided, bad);
    // Never the secret.
    assert!(!format!("{m:?}").contains(SK));
}

#[test]
fn get_object_tolerates_spaces_and_component_order() {
    let header = format!(
        "AWS4-HMAC-SHA256  Signature={GET_OBJECT_SIG} ,  SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Credential={AK}/20130524/us-east-1/s3/aws4_request"
    );
    let p = parts(
        "GET",
        "/test.txt",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", &header),
        ],
    );
    verify(&p).unwrap();
    // Upper-case hex in the signature is the same signature.
    verify(&get_object(&GET_OBJECT_SIG.to_uppercase())).unwrap();
}

#[test]
fn put_object() {
    let body = b"Welcome to Amazon S3.";
    let body_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    assert_eq!(hex::encode(sha256(body)), body_hash);
    let p = parts(
        "PUT",
        "/test$file.text",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", body_hash),
            (
                "authorization",
                &authz(
                    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                    PUT_OBJECT_SIG,
                ),
            ),
        ],
    );
    let v = verify(&p).unwrap();
    assert_eq!(v.payload, PayloadHash::Sha256(sha256(body)));

    // The same request with `$` percent-encoded on the wire verifies too.
    let mut p2 = p;
    p2.uri = "/test%24file.text".parse().unwrap();
    verify(&p2).unwrap();
}

#[test]
fn get_bucket_lifecycle() {
    let p = parts(
        "GET",
        "/?lifecycle",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            (
                "authorization",
                &authz("host;x-amz-content-sha256;x-amz-date", LIFECYCLE_SIG),
            ),
        ],
    );
    verify(&p).unwrap();
}

#[test]
fn get_bucket_list_objects() {
    let p = parts(
        "GET",
        "/?max-keys=2&prefix=J",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            (
                "authorization",
                &authz("host;x-amz-content-sha256;x-amz-date", LIST_OBJECTS_SIG),
            ),
        ],
    );
    verify(&p).unwrap();
    // Parameter order on the wire does not matter.
    let mut p2 = p;
    p2.uri = "/?prefix=J&max-keys=2".parse().unwrap();
    verify(&p2).unwrap();
    // A changed value does.
    let mut p3 = p2;
    p3.uri = "/?prefix=K&max-keys=2".parse().unwrap();
    assert_mismatch(verify(&p3));
}

pub(super) fn presigned_example_uri() -> String {
    format!(
        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature={PRESIGNED_SIG}"
    )
}

#[test]
fn presigned_get_object() {
    let p = parts(
        "GET",
        &presigned_example_uri(),
        &[("host", "examplebucket.s3.amazonaws.com")],
    );
    let v = verify(&p).unwrap();
    assert!(v.presigned);
    assert_eq!(v.payload, PayloadHash::Unsigned);
    assert_eq!(v.access_key, AK);
    // Still valid just before expiry, a day later.
    verify_at(&p, example_time() + Duration::from_secs(86_400)).unwrap();
    // A changed host is a changed signed header.
    let p2 = parts(
        "GET",
        &presigned_example_uri(),
        &[("host", "otherbucket.s3.amazonaws.com")],
    );
    assert_mismatch(verify(&p2));
}

/// The 66560-byte example body: a 65536-byte and a 1024-byte chunk of 'a', then the
/// final chunk, with the documented signatures.
pub(super) fn chunked_example_body() -> Vec<u8> {
    let mut body = Vec::new();
    for (size, sig) in [(0x10000usize, CHUNKED_SIGS[0]), (0x400, CHUNKED_SIGS[1])] {
        body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', size));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("0;chunk-signature={}\r\n\r\n", CHUNKED_SIGS[2]).as_bytes());
    body
}

pub(super) fn chunked_example_parts() -> Parts {
    parts(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            (
                "authorization",
                &authz(
                    "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
                    CHUNKED_SEED_SIG,
                ),
            ),
        ],
    )
}

#[test]
fn chunked_upload_seed_and_chunk_signatures() {
    let v = verify(&chunked_example_parts()).unwrap();
    assert_eq!(v.payload, PayloadHash::StreamingSigned);
    let signer = v
        .chunk_signer
        .expect("streaming-signed gives a chunk signer");

    // The chain itself, chunk by chunk.
    let mut chain = signer.clone();
    chain
        .verify_chunk(&sha256(&[b'a'; 65536]), CHUNKED_SIGS[0])
        .unwrap();
    chain
        .verify_chunk(&sha256(&[b'a'; 1024]), CHUNKED_SIGS[1])
        .unwrap();
    assert!(matches!(
        chain.clone().verify_chunk(&sha256(b""), CHUNKED_SIGS[1]),
        Err(AuthError::ChunkSignatureMismatch)
    ));
    chain.verify_chunk(&sha256(b""), CHUNKED_SIGS[2]).unwrap();

    // The decoder over the exact example body.
    let body = chunked_example_body();
    assert_eq!(body.len(), 66824);
    let input = Bytes::from(body);
    let mut dec = AwsChunkedDecoder::new(Some(signer), false);
    let mut out = Vec::new();
    dec.push(input.clone(), &mut out).unwrap();
    assert_eq!(dec.finish().unwrap(), Vec::<(String, String)>::new());
    assert_eq!(dec.decoded_len_bytes(), 66560);
    let decoded: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(decoded, vec![b'a'; 66560]);
    // Zero copy: every output slice points into the input buffer.
    let range = input.as_ptr_range();
    for b in &out {
        assert!(range.contains(&b.as_ptr()));
    }
}

#[test]
fn chunked_upload_with_trailer_example() {
    // 64 KiB + 1 KiB of 'a', trailer x-amz-checksum-crc32c:sOO8/Q==; the seed signature
    // comes from the request headers of that example.
    let p = parts(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            ),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
            (
                "authorization",
                &authz(
                    "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
                    TRAILER_SEED_SIG,
                ),
            ),
        ],
    );
    let v = verify(&p).unwrap();
    assert_eq!(v.payload, PayloadHash::StreamingSignedTrailer);
    let signer = v.chunk_signer.unwrap();

    // The same chain from a signer built directly from the documented seed.
    let key = signing_key(SK, "20130524", "us-east-1", "s3");
    let seed: [u8; 32] = hex::decode(TRAILER_SEED_SIG).unwrap().try_into().unwrap();
    let mut direct = ChunkSigner::new(
        key,
        "20130524/us-east-1/s3/aws4_request".to_owned(),
        "20130524T000000Z".to_owned(),
        seed,
    );
    direct
        .verify_chunk(&sha256(&[b'a'; 65536]), TRAILER_CHUNK_SIGS[0])
        .unwrap();
    direct
        .verify_chunk(&sha256(&[b'a'; 1024]), TRAILER_CHUNK_SIGS[1])
        .unwrap();
    direct
        .verify_chunk(&sha256(b""), TRAILER_CHUNK_SIGS[2])
        .unwrap();
    assert!(matches!(
        direct
            .clone()
            .verify_trailer(b"x-amz-checksum-crc32c:sOO8/Q=\n", TRAILER_SIG),
        Err(AuthError::TrailerSignatureMismatch)
    ));
    direct
        .verify_trailer(b"x-amz-checksum-crc32c:sOO8/Q==\n", TRAILER_SIG)
        .unwrap();

    let mut body = Vec::new();
    for (size, sig) in [
        (0x10000usize, TRAILER_CHUNK_SIGS[0]),
        (0x400, TRAILER_CHUNK_SIGS[1]),
    ] {
        body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', size));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("0;chunk-signature={}\r\n", TRAILER_CHUNK_SIGS[2]).as_bytes());
    body.extend_from_slice(
        format!("x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:{TRAILER_SIG}\r\n\r\n")
            .as_bytes(),
    );

    let mut dec = AwsChunkedDecoder::new(Some(signer.clone()), true);
    let mut out = Vec::new();
    dec.push(Bytes::from(body.clone()), &mut out).unwrap();
    assert_eq!(
        dec.finish().unwrap(),
        vec![("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned())]
    );
    assert_eq!(dec.decoded_len_bytes(), 66560);

    // A different checksum value breaks the trailer signature.
    let tampered = String::from_utf8(body)
        .unwrap()
        .replace("sOO8/Q==", "AAAAAA==");
    let mut dec = AwsChunkedDecoder::new(Some(signer), true);
    dec.push(Bytes::from(tampered), &mut Vec::new())
        .unwrap_err();
    assert_eq!(dec.finish(), Err(ChunkedError::TrailerSignatureMismatch));
}
