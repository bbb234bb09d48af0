//! The aws-chunked decoder: split independence, signatures, trailers, truncation, limits.

use aws_sigv4::http_request::SignableBody;
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::http::Headers;
use bytes::Bytes;
use proptest::prelude::*;

use super::examples::{chunked_example_body, chunked_example_parts};
use super::roundtrip::{identity, signed_parts};
use super::*;
use crate::chunked::canonical_trailer;
use crate::{
    AwsChunkedDecoder, ChecksumAlgorithm, ChunkSigner, ChunkedError, MAX_CHUNK_LINE_LEN,
    MAX_TRAILER_HEADERS, PayloadHash,
};

type Outcome = (Vec<u8>, Result<Vec<(String, String)>, ChunkedError>);

/// Feeds `body` cut at `cuts` (sorted, deduplicated inside), then finishes.
fn decode_split(
    signer: Option<ChunkSigner>,
    trailer: bool,
    body: &[u8],
    cuts: &[usize],
) -> Outcome {
    let mut dec = AwsChunkedDecoder::new(signer, trailer);
    let input = Bytes::copy_from_slice(body);
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    for w in points.windows(2) {
        if let Err(e) = dec.push(input.slice(w[0]..w[1]), &mut out) {
            let data = out.iter().flat_map(|b| b.iter().copied()).collect();
            // Errors are sticky.
            assert_eq!(dec.push(Bytes::from_static(b"x"), &mut Vec::new()), Err(e));
            assert_eq!(dec.finish(), Err(e));
            return (data, Err(e));
        }
    }
    let data = out.iter().flat_map(|b| b.iter().copied()).collect();
    (data, dec.finish())
}

fn decode(signer: Option<ChunkSigner>, trailer: bool, body: &[u8]) -> Outcome {
    decode_split(signer, trailer, body, &[])
}

fn example_signer() -> ChunkSigner {
    verify(&chunked_example_parts())
        .unwrap()
        .chunk_signer
        .unwrap()
}

/// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` body as aws-sdk-rust / botocore send it.
fn unsigned_trailer_body(data: &[u8], chunk: usize, crc32: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for c in data.chunks(chunk) {
        body.extend_from_slice(format!("{:X}\r\n", c.len()).as_bytes());
        body.extend_from_slice(c);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc32}\r\n\r\n").as_bytes());
    body
}

/// Replaces the last occurrence of `from` (the trailer is at the end of the body).
fn replace_bytes(haystack: &[u8], from: &str, to: &str) -> Vec<u8> {
    let from = from.as_bytes();
    let at = haystack
        .windows(from.len())
        .rposition(|w| w == from)
        .expect("pattern present");
    let mut out = haystack[..at].to_vec();
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(&haystack[at + from.len()..]);
    out
}

fn crc32_b64(data: &[u8]) -> String {
    let mut h = ChecksumAlgorithm::Crc32.hasher();
    h.update(data);
    h.finalize_base64()
}

fn signing_params_time() -> SystemTime {
    example_time() + Duration::from_secs(1_000_000)
}

/// A `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` request and body, signed entirely by
/// aws-sigv4 (seed, chunks, trailer), plus our verified chunk signer for it.
fn signed_trailer_body(data: &[u8], chunk: usize) -> (Vec<u8>, ChunkSigner) {
    let crc = crc32_b64(data);
    let decoded_len = data.len().to_string();
    let p = signed_parts(
        "PUT",
        "http://localhost:9000/bucket/key",
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", &decoded_len),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
        SignableBody::StreamingSignedPayloadTrailer,
        None,
        signing_params_time(),
    );
    let seed = p
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .rsplit("Signature=")
        .next()
        .unwrap()
        .to_owned();
    let v = verify_at(&p, signing_params_time()).unwrap();
    assert_eq!(v.payload, PayloadHash::StreamingSignedTrailer);

    let identity = identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(signing_params_time())
        .settings(())
        .build()
        .unwrap();
    let mut prev = seed;
    let mut body = Vec::new();
    for c in data.chunks(chunk).chain(std::iter::once(&[][..])) {
        let sig = v4::sign_chunk(&Bytes::copy_from_slice(c), &prev, &params)
            .unwrap()
            .signature()
            .to_owned();
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
        if !c.is_empty() {
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
        prev = sig;
    }
    let mut trailers = Headers::new();
    trailers.insert("x-amz-checksum-crc32", crc.clone());
    let tsig = v4::sign_trailer(&trailers, &prev, &params)
        .unwrap()
        .signature()
        .to_owned();
    body.extend_from_slice(
        format!("x-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n").as_bytes(),
    );
    (body, v.chunk_signer.unwrap())
}

#[test]
fn unsigned_trailer_body_decodes() {
    let data = b"Hello world";
    let crc = crc32_b64(data);
    assert_eq!(crc, "i9aeUg==");
    let body = unsigned_trailer_body(data, 1024, &crc);
    assert_eq!(
        body,
        b"B\r\nHello world\r\n0\r\nx-amz-checksum-crc32:i9aeUg==\r\n\r\n"
    );
    let (out, r) = decode(None, true, &body);
    assert_eq!(out, data);
    assert_eq!(
        r.unwrap(),
        vec![("x-amz-checksum-crc32".to_owned(), "i9aeUg==".to_owned())]
    );

    // Several chunks, lower-case hex sizes, extensions, spacing in the trailer line.
    let body =
        b"5;ext=1\r\nHello\r\n6 \r\n world\r\n0\r\nX-Amz-Checksum-CRC32 :  i9aeUg== \r\n\r\n";
    let (out, r) = decode(None, true, body);
    assert_eq!(out, data);
    assert_eq!(
        r.unwrap(),
        vec![("x-amz-checksum-crc32".to_owned(), "i9aeUg==".to_owned())]
    );
}

#[test]
fn missing_final_crlf_after_complete_trailer_is_tolerated() {
    let body = b"B\r\nHello world\r\n0\r\nx-amz-checksum-crc32:i9aeUg==\r\n";
    let (out, r) = decode(None, true, body);
    assert_eq!(out, b"Hello world");
    assert_eq!(r.unwrap().len(), 1);
    let body = b"B\r\nHello world\r\n0\r\nx-amz-checksum-crc32:i9aeUg==\r\n\r";
    assert_eq!(decode(None, true, body).1.unwrap().len(), 1);
    // ...but not a partial trailer line, nor no trailer at all.
    for body in [
        &b"B\r\nHello world\r\n0\r\nx-amz-checksum-crc32:i9aeUg=="[..],
        &b"B\r\nHello world\r\n0\r\n"[..],
        &b"B\r\nHello world\r\n0\r\nx-amz-checksum-crc32:i9aeUg==\r"[..],
    ] {
        assert_eq!(decode(None, true, body).1, Err(ChunkedError::Incomplete));
    }
}

#[test]
fn signed_trailer_body_built_with_aws_sigv4() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (body, signer) = signed_trailer_body(&data, 32 * 1024);
    let (out, r) = decode(Some(signer.clone()), true, &body);
    assert_eq!(out, data);
    assert_eq!(
        r.unwrap(),
        vec![("x-amz-checksum-crc32".to_owned(), crc32_b64(&data))]
    );

    // Tampered trailer value.
    let crc = crc32_b64(&data);
    let tampered = replace_bytes(&body, &format!("crc32:{crc}"), "crc32:AAAAAA==");
    assert_eq!(
        decode(Some(signer.clone()), true, &tampered).1,
        Err(ChunkedError::TrailerSignatureMismatch)
    );
    // Trailer signature removed.
    let start = body.len() - "x-amz-trailer-signature:".len() - 64 - 4;
    let mut stripped = body[..start].to_vec();
    stripped.extend_from_slice(b"\r\n");
    assert!(stripped.ends_with(b"==\r\n\r\n"));
    assert_eq!(
        decode(Some(signer.clone()), true, &stripped).1,
        Err(ChunkedError::TrailerSignatureMismatch)
    );
    // A trailer header added after signing.
    let added = replace_bytes(
        &body,
        "x-amz-trailer-signature:",
        "x-amz-checksum-sha1:2jmj7l5rSw0yVb/vlWAYkK/YBwk=\r\nx-amz-trailer-signature:",
    );
    assert_eq!(
        decode(Some(signer.clone()), true, &added).1,
        Err(ChunkedError::TrailerSignatureMismatch)
    );
    // A data byte changed.
    let mut corrupt = body.clone();
    let pos = body.windows(2).position(|w| w == b"\r\n").unwrap() + 2 + 10;
    corrupt[pos] ^= 1;
    assert_eq!(
        decode(Some(signer), true, &corrupt).1,
        Err(ChunkedError::ChunkSignatureMismatch)
    );
}

#[test]
fn canonical_trailer_form() {
    let t = vec![
        ("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned()),
        ("x-amz-checksum-crc32".to_owned(), "AAAAAA==".to_owned()),
    ];
    assert_eq!(
        canonical_trailer(&t),
        b"x-amz-checksum-crc32:AAAAAA==\nx-amz-checksum-crc32c:sOO8/Q==\n"
    );
}

#[test]
fn signed_trailer_mode_without_any_trailer() {
    // aws-sdk-rust with a signed trailer body but no checksum: `0;chunk-signature=..\r\n\r\n`.
    let (out, r) = decode(Some(example_signer()), true, &chunked_example_body());
    assert_eq!(out.len(), 66560);
    assert_eq!(r.unwrap(), vec![]);
}

#[test]
fn corrupted_chunk_byte_is_a_signature_mismatch() {
    let mut body = chunked_example_body();
    body[100] = b'b';
    let (_, r) = decode(Some(example_signer()), false, &body);
    assert_eq!(r, Err(ChunkedError::ChunkSignatureMismatch));
    // Without a signer the same body decodes (signatures ignored).
    let (out, r) = decode(None, false, &body);
    assert!(r.is_ok());
    assert_eq!(out.len(), 66560);
}

#[test]
fn corrupted_or_reordered_signatures_fail() {
    let body = String::from_utf8(chunked_example_body()).unwrap();
    // A final-chunk signature from the wrong position.
    let s1 = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
    let s2 = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";
    let swapped = body.replace(s2, s1);
    assert_eq!(
        decode(Some(example_signer()), false, swapped.as_bytes()).1,
        Err(ChunkedError::ChunkSignatureMismatch)
    );
    let bad_hex = body.replace(s1, &"z".repeat(64));
    assert_eq!(
        decode(Some(example_signer()), false, bad_hex.as_bytes()).1,
        Err(ChunkedError::ChunkSignatureMismatch)
    );
    let missing = body.replace(&format!(";chunk-signature={s1}"), "");
    assert!(matches!(
        decode(Some(example_signer()), false, missing.as_bytes()).1,
        Err(ChunkedError::Malformed(_))
    ));
}

#[test]
fn truncated_bodies_are_incomplete() {
    let body = chunked_example_body();
    for len in [
        0,
        1,
        10,
        88,
        1000,
        65_624,
        65_626,
        66_700,
        body.len() - 2,
        body.len() - 1,
    ] {
        let (_, r) = decode(Some(example_signer()), false, &body[..len]);
        assert_eq!(r, Err(ChunkedError::Incomplete), "len {len}");
    }
    let body = unsigned_trailer_body(b"Hello world", 4, "i9aeUg==");
    for len in 0..body.len() - "x-amz-checksum-crc32:i9aeUg==\r\n\r\n".len() {
        let (_, r) = decode(None, true, &body[..len]);
        assert_eq!(r, Err(ChunkedError::Incomplete), "len {len}");
    }
}

#[test]
fn malformed_and_oversized_input() {
    let cases: &[(&[u8], bool, ChunkedError)] = &[
        (
            b"x\r\n",
            false,
            ChunkedError::Malformed("invalid chunk size"),
        ),
        (
            b"\r\n",
            false,
            ChunkedError::Malformed("invalid chunk size"),
        ),
        (
            b"-1\r\n",
            false,
            ChunkedError::Malformed("invalid chunk size"),
        ),
        (
            b"5\nhello",
            false,
            ChunkedError::Malformed("chunk-size line must end with CRLF"),
        ),
        (
            b"5\r\nhelloXX",
            false,
            ChunkedError::Malformed("chunk data not followed by CRLF"),
        ),
        (
            b"0\r\n\r\nmore",
            false,
            ChunkedError::Malformed("data after the end of the aws-chunked body"),
        ),
        (
            b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
            false,
            ChunkedError::Malformed("trailer in a body declared without trailer"),
        ),
        (
            b"0\r\nno colon\r\n\r\n",
            true,
            ChunkedError::Malformed("trailer line without ':'"),
        ),
        (
            b"0\r\nbad name:v\r\n\r\n",
            true,
            ChunkedError::Malformed("invalid trailer name"),
        ),
        (b"4000001\r\n", false, ChunkedError::TooLarge),
        (b"FFFFFFFFFFFFFFFF\r\n", false, ChunkedError::TooLarge),
        (
            b"10000000000000000\r\n",
            false,
            ChunkedError::Malformed("invalid chunk size"),
        ),
    ];
    for (body, trailer, expected) in cases {
        let (_, r) = decode(None, *trailer, body);
        assert_eq!(r, Err(*expected), "{:?}", String::from_utf8_lossy(body));
    }

    // Chunk-size line over 4 KiB, even when it arrives byte by byte.
    let mut long = b"5;".to_vec();
    long.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE_LEN));
    let cuts: Vec<usize> = (0..long.len()).collect();
    assert_eq!(
        decode_split(None, false, &long, &cuts).1,
        Err(ChunkedError::TooLarge)
    );

    // Too many trailer headers.
    let mut body = b"0\r\n".to_vec();
    for i in 0..=MAX_TRAILER_HEADERS {
        body.extend_from_slice(format!("x-amz-meta-{i}:v\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    assert_eq!(decode(None, true, &body).1, Err(ChunkedError::TooLarge));

    // Trailer section over 16 KiB.
    let mut body = b"0\r\n".to_vec();
    for i in 0..4 {
        body.extend_from_slice(format!("x-amz-meta-{i}:{}\r\n", "v".repeat(5000)).as_bytes());
    }
    assert_eq!(decode(None, true, &body).1, Err(ChunkedError::TooLarge));
}

#[test]
fn empty_pushes_and_byte_by_byte() {
    let body = unsigned_trailer_body(b"Hello world", 3, "i9aeUg==");
    let mut dec = AwsChunkedDecoder::new(None, true);
    let mut out = Vec::new();
    for b in &body {
        dec.push(Bytes::new(), &mut out).unwrap();
        dec.push(Bytes::copy_from_slice(&[*b]), &mut out).unwrap();
    }
    assert_eq!(dec.finish().unwrap().len(), 1);
    let data: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(data, b"Hello world");
    assert_eq!(dec.decoded_len_bytes(), 11);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn signed_example_split_anywhere(cuts in proptest::collection::vec(0usize..70_000, 0..24)) {
        let body = chunked_example_body();
        let (out, r) = decode_split(Some(example_signer()), false, &body, &cuts);
        prop_assert_eq!(r, Ok(vec![]));
        prop_assert_eq!(out, vec![b'a'; 66560]);
    }

    #[test]
    fn unsigned_trailer_split_anywhere(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..700,
        cuts in proptest::collection::vec(0usize..4000, 0..24),
    ) {
        let crc = crc32_b64(&data);
        let body = unsigned_trailer_body(&data, chunk, &crc);
        let whole = decode(None, true, &body);
        let split = decode_split(None, true, &body, &cuts);
        prop_assert_eq!(&whole.0, &data);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(
            whole.1,
            Ok(vec![("x-amz-checksum-crc32".to_owned(), crc)])
        );
    }

    #[test]
    fn signed_trailer_split_anywhere(cuts in proptest::collection::vec(0usize..3000, 0..24)) {
        let data: Vec<u8> = (0..2000u32).map(|i| (i % 13) as u8).collect();
        let (body, signer) = signed_trailer_body(&data, 700);
        let (out, r) = decode_split(Some(signer), true, &body, &cuts);
        prop_assert_eq!(out, data);
        prop_assert!(r.is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(0usize..512, 0..8),
        trailer in any::<bool>(),
    ) {
        let _ = decode_split(None, trailer, &body, &cuts);
        let _ = decode_split(Some(example_signer()), trailer, &body, &cuts);
    }
}
