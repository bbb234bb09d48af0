//! S3 additional checksums (`x-amz-checksum-*`): CRC32 (ISO-HDLC), CRC32C (Castagnoli),
//! CRC64/NVME, SHA-1 and SHA-256. Values on the wire are base64 of the big-endian
//! CRC bytes or of the digest.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crc_fast::CrcAlgorithm;
use sha1::Digest as _;

/// An S3 checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32/ISO-HDLC (the zlib / Ethernet CRC-32).
    Crc32,
    /// CRC-32C (Castagnoli, iSCSI).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm, in S3's documentation order.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The request/response header carrying this checksum, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Inverse of [`header_name`](Self::header_name), case-insensitive.
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name))
    }

    /// Parses the name used by `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm`
    /// (`CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`), case-insensitive.
    pub fn from_sdk_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_sdk_name().eq_ignore_ascii_case(name))
    }

    /// The upper-case name S3 uses in `x-amz-checksum-algorithm` and XML (`CRC32`, …).
    pub fn as_sdk_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Length in bytes of the raw (not base64) checksum value.
    pub fn output_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// A fresh incremental hasher.
    pub fn hasher(self) -> ChecksumHasher {
        let inner = match self {
            ChecksumAlgorithm::Crc32 => {
                Inner::Crc32(crc_fast::Digest::new(CrcAlgorithm::Crc32IsoHdlc))
            }
            ChecksumAlgorithm::Crc32c => {
                Inner::Crc32(crc_fast::Digest::new(CrcAlgorithm::Crc32Iscsi))
            }
            ChecksumAlgorithm::Crc64Nvme => {
                Inner::Crc64(crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme))
            }
            ChecksumAlgorithm::Sha1 => Inner::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Inner::Sha256(sha2::Sha256::new()),
        };
        ChecksumHasher {
            algorithm: self,
            inner,
        }
    }

    /// Decodes a base64 checksum value as sent by a client; `None` unless it is valid
    /// base64 of exactly [`output_len`](Self::output_len) bytes.
    pub fn decode_value(self, value: &str) -> Option<Vec<u8>> {
        // Bound the work before decoding: base64 of 32 bytes is 44 characters.
        if value.len() > 64 {
            return None;
        }
        let raw = BASE64.decode(value.trim()).ok()?;
        (raw.len() == self.output_len()).then_some(raw)
    }
}

/// How the checksum of a multipart object is derived from its parts
/// (`x-amz-checksum-type`). A single PUT's checksum is always `FULL_OBJECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumType {
    /// `H(H(part 1) ++ … ++ H(part N))`, sent as `base64-N`.
    Composite,
    /// The checksum of the whole object (CRCs only: combined from the parts'
    /// CRCs and sizes).
    FullObject,
}

impl ChecksumType {
    /// `COMPOSITE` or `FULL_OBJECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::Composite => "COMPOSITE",
            ChecksumType::FullObject => "FULL_OBJECT",
        }
    }

    /// Inverse of [`as_str`](Self::as_str), case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        [ChecksumType::Composite, ChecksumType::FullObject]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Reserved entry names in `ObjectMetadata::checksums` (never algorithm
/// names: those are letters and digits only). On an object record,
/// `CHECKSUM_TYPE_KEY` holds the stored checksum's type (absent: a single
/// PUT, `FULL_OBJECT`); on an upload record, `CHECKSUM_ALGORITHM_KEY` and
/// `CHECKSUM_TYPE_KEY` remember CreateMultipartUpload's
/// `x-amz-checksum-algorithm` / `x-amz-checksum-type`.
pub const CHECKSUM_TYPE_KEY: &str = "@type";
/// See [`CHECKSUM_TYPE_KEY`].
pub const CHECKSUM_ALGORITHM_KEY: &str = "@algorithm";

/// The checksums stored with an object: each algorithm and base64 value
/// (reserved entries skipped), and the type.
pub fn stored_checksums(
    pairs: &[(String, String)],
) -> (Vec<(ChecksumAlgorithm, &str)>, ChecksumType) {
    let mut values = Vec::new();
    let mut ty = ChecksumType::FullObject;
    for (name, value) in pairs {
        if name == CHECKSUM_TYPE_KEY {
            ty = ChecksumType::parse(value).unwrap_or(ChecksumType::FullObject);
        } else if let Some(a) = ChecksumAlgorithm::from_sdk_name(name) {
            values.push((a, value.as_str()));
        }
    }
    (values, ty)
}

impl ChecksumAlgorithm {
    /// Whether S3 allows this algorithm with this multipart checksum type:
    /// FULL_OBJECT only for CRCs, COMPOSITE for all but CRC64NVME.
    pub fn supports(self, ty: ChecksumType) -> bool {
        match ty {
            ChecksumType::FullObject => self.is_crc(),
            ChecksumType::Composite => self != ChecksumAlgorithm::Crc64Nvme,
        }
    }

    /// S3's default multipart checksum type for the algorithm.
    pub fn default_type(self) -> ChecksumType {
        if self == ChecksumAlgorithm::Crc64Nvme {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        }
    }

    fn is_crc(self) -> bool {
        matches!(
            self,
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
        )
    }

    fn crc_algorithm(self) -> Option<CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }

    /// The object checksum of a multipart upload from its parts' raw
    /// checksums and sizes, in part order, as S3 reports it: COMPOSITE is
    /// `base64(H(c1 ++ … ++ cN))-N`, FULL_OBJECT the base64 CRC of the whole
    /// object (the parts' CRCs combined). `None` if the type does not apply
    /// to the algorithm, there are no parts, or a value has the wrong length.
    pub fn multipart_checksum(self, ty: ChecksumType, parts: &[(Vec<u8>, u64)]) -> Option<String> {
        if parts.is_empty()
            || !self.supports(ty)
            || parts.iter().any(|(raw, _)| raw.len() != self.output_len())
        {
            return None;
        }
        match ty {
            ChecksumType::Composite => {
                let mut h = self.hasher();
                for (raw, _) in parts {
                    h.update(raw);
                }
                Some(format!("{}-{}", h.finalize_base64(), parts.len()))
            }
            ChecksumType::FullObject => {
                let crc = self.crc_algorithm()?;
                let as_u64 =
                    |raw: &[u8]| raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                let mut acc = as_u64(&parts[0].0);
                for (raw, size) in &parts[1..] {
                    // Appending nothing leaves the CRC as it is.
                    if *size > 0 {
                        acc = crc_fast::checksum_combine(crc, acc, as_u64(raw), *size);
                    }
                }
                let bytes = acc.to_be_bytes();
                Some(BASE64.encode(&bytes[8 - self.output_len()..]))
            }
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sdk_name())
    }
}

#[derive(Clone)]
enum Inner {
    Crc32(crc_fast::Digest),
    Crc64(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

/// Incremental checksum over a byte stream.
#[derive(Clone)]
pub struct ChecksumHasher {
    algorithm: ChecksumAlgorithm,
    inner: Inner,
}

impl fmt::Debug for ChecksumHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChecksumHasher")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl ChecksumHasher {
    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            Inner::Crc32(d) | Inner::Crc64(d) => d.update(data),
            Inner::Sha1(d) => d.update(data),
            Inner::Sha256(d) => d.update(data),
        }
    }

    /// The raw checksum: big-endian CRC bytes, or the digest.
    pub fn finalize(self) -> Vec<u8> {
        match self.inner {
            Inner::Crc32(d) => {
                // A 32-bit CRC always fits; the truncation only drops zero bits.
                let v = (d.finalize() & 0xFFFF_FFFF) as u32;
                v.to_be_bytes().to_vec()
            }
            Inner::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
            Inner::Sha1(d) => d.finalize().to_vec(),
            Inner::Sha256(d) => d.finalize().to_vec(),
        }
    }

    /// The checksum as S3 sends it in `x-amz-checksum-*`: standard base64 with padding.
    pub fn finalize_base64(self) -> String {
        BASE64.encode(self.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut h = alg.hasher();
        h.update(data);
        hex::encode(h.finalize())
    }

    #[test]
    fn crc_check_values_123456789() {
        // The standard CRC catalogue check values.
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32, b"123456789"), "cbf43926");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32c, b"123456789"), "e3069283");
        assert_eq!(
            hex_of(ChecksumAlgorithm::Crc64Nvme, b"123456789"),
            "ae8b14860a799888"
        );
    }

    #[test]
    fn aws_sdk_known_values_for_test_data() {
        // Values from aws-smithy-checksums' own tests for the input "test data".
        let d = b"test data";
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32, d), "d308aeb2");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32c, d), "3379b4ca");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc64Nvme, d), "aecaf3af9c98a855");
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha1, d),
            "f48dd853820860816c75d54d0f584dc863327a7c"
        );
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha256, d),
            "916f0027a575074ce72a331777c3478d6513f786a591bd892da1a577bf2335f9"
        );
    }

    #[test]
    fn base64_forms() {
        let b64 = |alg: ChecksumAlgorithm, data: &[u8]| {
            let mut h = alg.hasher();
            h.update(data);
            h.finalize_base64()
        };
        assert_eq!(b64(ChecksumAlgorithm::Crc32, b"123456789"), "y/Q5Jg==");
        assert_eq!(b64(ChecksumAlgorithm::Crc32c, b"123456789"), "4waSgw==");
        assert_eq!(
            b64(ChecksumAlgorithm::Crc64Nvme, b"123456789"),
            "rosUhgp5mIg="
        );
        // Empty input: CRCs are zero, SHA-256 is the well-known empty digest.
        assert_eq!(b64(ChecksumAlgorithm::Crc32, b""), "AAAAAA==");
        assert_eq!(b64(ChecksumAlgorithm::Crc32c, b""), "AAAAAA==");
        assert_eq!(b64(ChecksumAlgorithm::Crc64Nvme, b""), "AAAAAAAAAAA=");
        assert_eq!(
            b64(ChecksumAlgorithm::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            b64(ChecksumAlgorithm::Sha1, b""),
            "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
        // S3's aws-chunked trailer example: 66560 bytes of 'a' have CRC32C sOO8/Q==.
        assert_eq!(
            b64(ChecksumAlgorithm::Crc32c, &vec![b'a'; 66560]),
            "sOO8/Q=="
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        for alg in ChecksumAlgorithm::ALL {
            let mut one = alg.hasher();
            one.update(&data);
            let mut inc = alg.hasher();
            for part in data.chunks(333) {
                inc.update(part);
            }
            assert_eq!(one.finalize(), inc.finalize(), "{alg}");
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in ChecksumAlgorithm::ALL {
            assert_eq!(
                ChecksumAlgorithm::from_header_name(alg.header_name()),
                Some(alg)
            );
            assert_eq!(
                ChecksumAlgorithm::from_header_name(&alg.header_name().to_uppercase()),
                Some(alg)
            );
            assert_eq!(
                ChecksumAlgorithm::from_sdk_name(alg.as_sdk_name()),
                Some(alg)
            );
            assert_eq!(
                ChecksumAlgorithm::from_sdk_name(&alg.as_sdk_name().to_lowercase()),
                Some(alg)
            );
            let mut h = alg.hasher();
            h.update(b"x");
            assert_eq!(h.finalize().len(), alg.output_len());
        }
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"),
            None
        );
        assert_eq!(ChecksumAlgorithm::from_sdk_name("MD5"), None);
        assert_eq!(
            ChecksumAlgorithm::Crc32.header_name(),
            "x-amz-checksum-crc32"
        );
        assert_eq!(ChecksumAlgorithm::Crc64Nvme.as_sdk_name(), "CRC64NVME");
    }

    #[test]
    fn multipart_checksums_composite_and_full_object() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 + 7) as u8).collect();
        let cuts = [0usize, 40_000, 40_000, 90_000, 100_000];
        let raw = |alg: ChecksumAlgorithm, d: &[u8]| {
            let mut h = alg.hasher();
            h.update(d);
            h.finalize()
        };
        for alg in ChecksumAlgorithm::ALL {
            let parts: Vec<(Vec<u8>, u64)> = cuts
                .windows(2)
                .map(|w| (raw(alg, &data[w[0]..w[1]]), (w[1] - w[0]) as u64))
                .collect();
            if alg.supports(ChecksumType::FullObject) {
                assert_eq!(
                    alg.multipart_checksum(ChecksumType::FullObject, &parts),
                    Some(BASE64.encode(raw(alg, &data))),
                    "{alg}"
                );
            } else {
                assert_eq!(
                    alg.multipart_checksum(ChecksumType::FullObject, &parts),
                    None
                );
            }
            if alg.supports(ChecksumType::Composite) {
                let concat: Vec<u8> = parts.iter().flat_map(|(c, _)| c.clone()).collect();
                assert_eq!(
                    alg.multipart_checksum(ChecksumType::Composite, &parts),
                    Some(format!("{}-4", BASE64.encode(raw(alg, &concat)))),
                    "{alg}"
                );
            } else {
                assert_eq!(
                    alg.multipart_checksum(ChecksumType::Composite, &parts),
                    None
                );
            }
            assert_eq!(alg.multipart_checksum(alg.default_type(), &[]), None);
        }
        assert_eq!(
            ChecksumAlgorithm::Crc32
                .multipart_checksum(ChecksumType::Composite, &[(vec![1, 2], 5)]),
            None
        );
    }

    #[test]
    fn stored_checksums_skip_reserved_entries() {
        let pairs = vec![
            ("CRC32".to_owned(), "AAAAAA==-2".to_owned()),
            (CHECKSUM_TYPE_KEY.to_owned(), "COMPOSITE".to_owned()),
        ];
        let (values, ty) = stored_checksums(&pairs);
        assert_eq!(values, vec![(ChecksumAlgorithm::Crc32, "AAAAAA==-2")]);
        assert_eq!(ty, ChecksumType::Composite);
        let single = [("SHA256".to_owned(), "x".to_owned())];
        let (values, ty) = stored_checksums(&single);
        assert_eq!(values.len(), 1);
        assert_eq!(ty, ChecksumType::FullObject);
        assert_eq!(
            ChecksumType::parse("full_object"),
            Some(ChecksumType::FullObject)
        );
        assert_eq!(ChecksumType::parse("other"), None);
    }

    #[test]
    fn decode_value_checks_length() {
        assert_eq!(
            ChecksumAlgorithm::Crc32.decode_value("y/Q5Jg=="),
            Some(vec![0xcb, 0xf4, 0x39, 0x26])
        );
        assert_eq!(ChecksumAlgorithm::Crc64Nvme.decode_value("y/Q5Jg=="), None);
        assert_eq!(ChecksumAlgorithm::Crc32.decode_value("not base64!"), None);
        assert_eq!(
            ChecksumAlgorithm::Crc32.decode_value(&"A".repeat(1000)),
            None
        );
    }
}
