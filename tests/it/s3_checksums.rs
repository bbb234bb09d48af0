//! End-to-end tests of S3 additional checksums on multipart objects through
//! `aws-sdk-s3` against a real `cairn` process: the COMPOSITE checksum
//! (`base64(H(part checksums))-N`) and the FULL_OBJECT checksum (the CRC of
//! the whole object, combined from the parts) derived at
//! CompleteMultipartUpload, reported by Complete, HEAD / GET with
//! `ChecksumMode::Enabled` and GetObjectAttributes, and checked here against
//! CRCs computed independently by the test; per-part checksums in the
//! Complete document verified (`InvalidPart`), a wrong whole-object value
//! (`BadDigest`) and CreateMultipartUpload's algorithm / type rules.

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

const MIB: usize = 1 << 20;

// ---- independent, table-driven reflected CRCs ------------------------------

fn crc32_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    for (i, slot) in t.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    t
}

/// CRC-32/ISO-HDLC (S3's CRC32), big-endian bytes.
fn crc32(data: &[u8]) -> [u8; 4] {
    let t = crc32_table();
    let mut c = 0xFFFF_FFFFu32;
    for b in data {
        c = t[((c ^ u32::from(*b)) & 0xFF) as usize] ^ (c >> 8);
    }
    (c ^ 0xFFFF_FFFF).to_be_bytes()
}

/// CRC-64/NVME (reflected polynomial 0x9A6C9329AC4BC9B5), big-endian bytes.
fn crc64nvme(data: &[u8]) -> [u8; 8] {
    let mut t = [0u64; 256];
    for (i, slot) in t.iter_mut().enumerate() {
        let mut c = i as u64;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x9A6C_9329_AC4B_C9B5
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut c = u64::MAX;
    for b in data {
        c = t[((c ^ u64::from(*b)) & 0xFF) as usize] ^ (c >> 8);
    }
    (c ^ u64::MAX).to_be_bytes()
}

#[test]
fn independent_crcs_match_the_catalogue_check_values() {
    assert_eq!(hex::encode(crc32(b"123456789")), "cbf43926");
    assert_eq!(hex::encode(crc64nvme(b"123456789")), "ae8b14860a799888");
}

// ---- helpers ---------------------------------------------------------------

/// Deterministic, non-repeating test data.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// The part boundaries used by every upload here: 5 MiB, 5 MiB, 1 MiB + 123.
fn split(body: &[u8]) -> Vec<&[u8]> {
    vec![
        &body[..5 * MIB],
        &body[5 * MIB..10 * MIB],
        &body[10 * MIB..],
    ]
}

struct Uploaded {
    id: String,
    /// (ETag, the part checksum the server returned).
    parts: Vec<(String, String)>,
}

/// Creates an upload with `algo` (and `ty`, if given) and uploads the parts
/// with the SDK computing each part's checksum.
async fn upload_parts(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    algo: ChecksumAlgorithm,
    ty: Option<ChecksumType>,
    parts: &[&[u8]],
) -> Uploaded {
    let created = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .checksum_algorithm(algo.clone())
        .set_checksum_type(ty.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {key}: {}", show(&e)));
    assert_eq!(created.checksum_algorithm(), Some(&algo));
    let want_ty = ty.unwrap_or(if algo == ChecksumAlgorithm::Crc64Nvme {
        ChecksumType::FullObject
    } else {
        ChecksumType::Composite
    });
    assert_eq!(created.checksum_type(), Some(&want_ty));
    let id = created.upload_id().unwrap().to_owned();
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let r = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(algo.clone())
            .body(ByteStream::from(p.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("part {} of {key}: {}", i + 1, show(&e)));
        let sum = match algo {
            ChecksumAlgorithm::Crc32 => r.checksum_crc32(),
            ChecksumAlgorithm::Crc64Nvme => r.checksum_crc64_nvme(),
            _ => unreachable!("only CRC32 and CRC64NVME are used here"),
        };
        out.push((
            r.e_tag().unwrap().to_owned(),
            sum.expect("part checksum echoed").to_owned(),
        ));
    }
    Uploaded { id, parts: out }
}

fn completed(u: &Uploaded, algo: &ChecksumAlgorithm) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            u.parts
                .iter()
                .enumerate()
                .map(|(i, (etag, sum))| {
                    let b = CompletedPart::builder()
                        .part_number(i as i32 + 1)
                        .e_tag(etag);
                    match algo {
                        ChecksumAlgorithm::Crc32 => b.checksum_crc32(sum),
                        _ => b.checksum_crc64_nvme(sum),
                    }
                    .build()
                })
                .collect(),
        ))
        .build()
}

// ---- tests -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc32_multipart_gets_a_composite_checksum() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "cksums").await;
    let body = data(11 * MIB + 123, 1);
    let parts = split(&body);
    let up = upload_parts(
        &c,
        "cksums",
        "composite",
        ChecksumAlgorithm::Crc32,
        None,
        &parts,
    )
    .await;

    // The part checksums are CRC32s of the parts; the object's is the CRC32
    // of their concatenated raw bytes, with "-3".
    let mut concat = Vec::new();
    for ((_, sum), p) in up.parts.iter().zip(&parts) {
        assert_eq!(sum, &BASE64.encode(crc32(p)));
        concat.extend_from_slice(&crc32(p));
    }
    let want = format!("{}-3", BASE64.encode(crc32(&concat)));

    let done = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("composite")
        .upload_id(&up.id)
        .multipart_upload(completed(&up, &ChecksumAlgorithm::Crc32))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete: {}", show(&e)));
    assert_eq!(done.checksum_crc32(), Some(want.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));

    let head = c
        .head_object()
        .bucket("cksums")
        .key("composite")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let value = head.checksum_crc32().expect("checksum in HEAD");
    assert!(value.ends_with("-3"), "{value}");
    assert_eq!(value, want);
    assert_eq!(head.checksum_type(), Some(&ChecksumType::Composite));

    // Without checksum mode: no checksum.
    let plain = c
        .head_object()
        .bucket("cksums")
        .key("composite")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.checksum_crc32(), None);

    let got = c
        .get_object()
        .bucket("cksums")
        .key("composite")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32(), Some(want.as_str()));
    assert_eq!(got.checksum_type(), Some(&ChecksumType::Composite));
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);

    // A range (or one part) is not the whole object: no whole-object checksum.
    let ranged = c
        .get_object()
        .bucket("cksums")
        .key("composite")
        .range("bytes=100-199")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.checksum_crc32(), None);
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes(),
        &body[100..200]
    );
    let part2 = c
        .get_object()
        .bucket("cksums")
        .key("composite")
        .part_number(2)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(part2.checksum_crc32(), None);
    assert_eq!(part2.body.collect().await.unwrap().into_bytes(), parts[1]);

    let attrs = c
        .get_object_attributes()
        .bucket("cksums")
        .key("composite")
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    let sum = attrs.checksum().expect("Checksum attribute");
    assert_eq!(sum.checksum_crc32(), Some(want.as_str()));
    assert_eq!(sum.checksum_type(), Some(&ChecksumType::Composite));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc64nvme_and_crc32_full_object_multipart_checksums_are_whole_object_crcs() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "cksums").await;

    // CRC64NVME: FULL_OBJECT by default.
    let body = data(11 * MIB + 123, 2);
    let up = upload_parts(
        &c,
        "cksums",
        "nvme",
        ChecksumAlgorithm::Crc64Nvme,
        None,
        &split(&body),
    )
    .await;
    let want = BASE64.encode(crc64nvme(&body));
    let done = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("nvme")
        .upload_id(&up.id)
        .multipart_upload(completed(&up, &ChecksumAlgorithm::Crc64Nvme))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete: {}", show(&e)));
    assert_eq!(done.checksum_crc64_nvme(), Some(want.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
    let head = c
        .head_object()
        .bucket("cksums")
        .key("nvme")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc64_nvme(), Some(want.as_str()));
    assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
    // The SDK validates a full-object checksum against the body it reads.
    let got = c
        .get_object()
        .bucket("cksums")
        .key("nvme")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc64_nvme(), Some(want.as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);

    // CRC32 with x-amz-checksum-type: FULL_OBJECT; the whole-object value
    // sent with Complete is checked (here: right).
    let body = data(11 * MIB + 123, 3);
    let up = upload_parts(
        &c,
        "cksums",
        "crc32-full",
        ChecksumAlgorithm::Crc32,
        Some(ChecksumType::FullObject),
        &split(&body),
    )
    .await;
    let want = BASE64.encode(crc32(&body));
    let done = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("crc32-full")
        .upload_id(&up.id)
        .checksum_type(ChecksumType::FullObject)
        .checksum_crc32(&want)
        .multipart_upload(completed(&up, &ChecksumAlgorithm::Crc32))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete: {}", show(&e)));
    assert_eq!(done.checksum_crc32(), Some(want.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
    let got = c
        .get_object()
        .bucket("cksums")
        .key("crc32-full")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32(), Some(want.as_str()));
    assert_eq!(got.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);

    // A single PUT's checksum is FULL_OBJECT too.
    c.put_object()
        .bucket("cksums")
        .key("single")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let head = c
        .head_object()
        .bucket("cksums")
        .key("single")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.checksum_crc32(),
        Some(BASE64.encode(crc32(b"hello")).as_str())
    );
    assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_checksums_in_complete_and_invalid_declarations_are_refused() {
    let server = TestServer::start();
    let c = sdk_client(&server);
    create_bucket(&c, "cksums").await;
    let body = data(11 * MIB + 123, 4);
    let mut up = upload_parts(
        &c,
        "cksums",
        "wrong",
        ChecksumAlgorithm::Crc32,
        None,
        &split(&body),
    )
    .await;

    // A per-part checksum that is not the stored one: InvalidPart.
    let right = up.parts[1].1.clone();
    up.parts[1].1 = BASE64.encode(crc32(b"something else"));
    let err = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("wrong")
        .upload_id(&up.id)
        .multipart_upload(completed(&up, &ChecksumAlgorithm::Crc32))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("InvalidPart"),
        "{}",
        show(&err)
    );
    assert_eq!(sdk_error_status(&err), Some(400));
    up.parts[1].1 = right;

    // A checksum of another algorithm than the parts carry: InvalidPart.
    let other = CompletedMultipartUpload::builder()
        .set_parts(Some(
            up.parts
                .iter()
                .enumerate()
                .map(|(i, (etag, _))| {
                    CompletedPart::builder()
                        .part_number(i as i32 + 1)
                        .e_tag(etag)
                        .checksum_sha256(BASE64.encode([0u8; 32]))
                        .build()
                })
                .collect(),
        ))
        .build();
    let err = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("wrong")
        .upload_id(&up.id)
        .multipart_upload(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("InvalidPart"),
        "{}",
        show(&err)
    );

    // A wrong composite value for the whole object: BadDigest.
    let err = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("wrong")
        .upload_id(&up.id)
        .checksum_crc32(BASE64.encode(crc32(b"nope")))
        .multipart_upload(completed(&up, &ChecksumAlgorithm::Crc32))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("BadDigest"),
        "{}",
        show(&err)
    );

    // A type other than the one the upload was created with: InvalidRequest.
    let err = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("wrong")
        .upload_id(&up.id)
        .checksum_type(ChecksumType::FullObject)
        .multipart_upload(completed(&up, &ChecksumAlgorithm::Crc32))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error_code(&err).as_deref(),
        Some("InvalidRequest"),
        "{}",
        show(&err)
    );

    // Failed completions left the upload in place: the right one succeeds.
    assert!(!object_exists(&c, "cksums", "wrong").await);
    let done = c
        .complete_multipart_upload()
        .bucket("cksums")
        .key("wrong")
        .upload_id(&up.id)
        .multipart_upload(completed(&up, &ChecksumAlgorithm::Crc32))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete: {}", show(&e)));
    assert!(done.checksum_crc32().unwrap().ends_with("-3"));

    // CreateMultipartUpload: FULL_OBJECT needs a CRC, COMPOSITE is not
    // allowed with CRC64NVME.
    for (algo, ty) in [
        (ChecksumAlgorithm::Sha256, ChecksumType::FullObject),
        (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite),
    ] {
        let err = c
            .create_multipart_upload()
            .bucket("cksums")
            .key("bad-type")
            .checksum_algorithm(algo.clone())
            .checksum_type(ty.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            sdk_error_code(&err).as_deref(),
            Some("InvalidRequest"),
            "{algo:?} {ty:?}: {}",
            show(&err)
        );
    }
}
