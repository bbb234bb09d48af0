//! Multipart documents: InitiateMultipartUploadResult, CopyPartResult
//! (UploadPartCopy), CompleteMultipartUploadResult and ListPartsResult, and
//! the CompleteMultipartUpload request.

use serde::Deserialize;

use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};
use super::{Checksum, Owner};

/// CreateMultipartUpload's answer.
#[derive(Debug)]
pub(crate) struct InitiateMultipartUploadResult<'a> {
    pub(crate) bucket: XmlText<'a>,
    pub(crate) key: XmlText<'a>,
    pub(crate) upload_id: XmlText<'a>,
}

impl XmlElement for InitiateMultipartUploadResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Bucket", &self.bucket)
            .elem("Key", &self.key)
            .elem("UploadId", &self.upload_id);
    }
}

impl XmlDocument for InitiateMultipartUploadResult<'_> {
    fn root(&self) -> &'static str {
        "InitiateMultipartUploadResult"
    }
}

/// UploadPartCopy's answer.
#[derive(Debug)]
pub(crate) struct CopyPartResult<'a> {
    pub(crate) last_modified: XmlText<'a>,
    pub(crate) etag: XmlText<'a>,
}

impl XmlElement for CopyPartResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("LastModified", &self.last_modified)
            .elem("ETag", &self.etag);
    }
}

impl XmlDocument for CopyPartResult<'_> {
    fn root(&self) -> &'static str {
        "CopyPartResult"
    }
}

/// CompleteMultipartUpload's answer (also for a repeated Complete).
#[derive(Debug)]
pub(crate) struct CompleteMultipartUploadResult<'a> {
    pub(crate) location: XmlText<'a>,
    pub(crate) bucket: XmlText<'a>,
    pub(crate) key: XmlText<'a>,
    pub(crate) etag: XmlText<'a>,
    /// The object's checksums, then their type (absent with none).
    pub(crate) checksums: Vec<Checksum<'a>>,
    pub(crate) checksum_type: Option<XmlText<'a>>,
}

impl XmlElement for CompleteMultipartUploadResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Location", &self.location)
            .elem("Bucket", &self.bucket)
            .elem("Key", &self.key)
            .elem("ETag", &self.etag);
        for c in &self.checksums {
            c.write(w);
        }
        w.opt_elem("ChecksumType", &self.checksum_type);
    }
}

impl XmlDocument for CompleteMultipartUploadResult<'_> {
    fn root(&self) -> &'static str {
        "CompleteMultipartUploadResult"
    }
}

/// One `<Part>` of ListParts.
#[derive(Debug)]
pub(crate) struct PartEntry<'a> {
    pub(crate) part_number: u32,
    pub(crate) last_modified: XmlText<'a>,
    pub(crate) etag: XmlText<'a>,
    pub(crate) size: u64,
    pub(crate) checksums: Vec<Checksum<'a>>,
}

impl XmlElement for PartEntry<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("PartNumber", &self.part_number)
            .elem("LastModified", &self.last_modified)
            .elem("ETag", &self.etag)
            .elem("Size", &self.size);
        for c in &self.checksums {
            c.write(w);
        }
    }
}

/// ListParts' answer.
#[derive(Debug)]
pub(crate) struct ListPartsResult<'a> {
    pub(crate) bucket: XmlText<'a>,
    pub(crate) key: XmlText<'a>,
    pub(crate) upload_id: XmlText<'a>,
    pub(crate) initiator: Owner<'a>,
    pub(crate) owner: Owner<'a>,
    pub(crate) storage_class: XmlText<'a>,
    pub(crate) part_number_marker: u32,
    pub(crate) next_part_number_marker: Option<u32>,
    pub(crate) max_parts: usize,
    pub(crate) is_truncated: bool,
    pub(crate) parts: Vec<PartEntry<'a>>,
}

impl XmlElement for ListPartsResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Bucket", &self.bucket)
            .elem("Key", &self.key)
            .elem("UploadId", &self.upload_id)
            .child("Initiator", &self.initiator)
            .child("Owner", &self.owner)
            .elem("StorageClass", &self.storage_class)
            .elem("PartNumberMarker", &self.part_number_marker)
            .opt_elem("NextPartNumberMarker", &self.next_part_number_marker)
            .elem("MaxParts", &self.max_parts)
            .elem("IsTruncated", &self.is_truncated)
            .children("Part", &self.parts);
    }
}

impl XmlDocument for ListPartsResult<'_> {
    fn root(&self) -> &'static str {
        "ListPartsResult"
    }
}

/// The CompleteMultipartUpload request: the parts to join, in order.
#[derive(Debug, Deserialize)]
pub(crate) struct CompleteMultipartUploadDoc {
    #[serde(rename = "Part", default)]
    pub(crate) parts: Vec<CompletedPartDoc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CompletedPartDoc {
    #[serde(rename = "PartNumber")]
    pub(crate) part_number: u32,
    #[serde(rename = "ETag")]
    pub(crate) etag: String,
    #[serde(rename = "ChecksumCRC32", default)]
    pub(crate) checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C", default)]
    pub(crate) checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME", default)]
    pub(crate) checksum_crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1", default)]
    pub(crate) checksum_sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256", default)]
    pub(crate) checksum_sha256: Option<String>,
}

impl CompletedPartDoc {
    /// The part checksums the client listed: (algorithm SDK name, value).
    pub(crate) fn checksums(&self) -> Vec<(&'static str, &str)> {
        [
            ("CRC32", &self.checksum_crc32),
            ("CRC32C", &self.checksum_crc32c),
            ("CRC64NVME", &self.checksum_crc64nvme),
            ("SHA1", &self.checksum_sha1),
            ("SHA256", &self.checksum_sha256),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_deref().map(|v| (name, v.trim())))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::{KEY, cairn_owner};
    use crate::xml::{parse, to_xml};

    const T: &str = "2026-01-02T03:04:05.006Z";
    const ID: &str = "00112233445566778899aabbccddeeff";
    const ETAG: &str = "\"0123456789abcdef0123456789abcdef\"";

    #[test]
    fn initiate() {
        let doc = InitiateMultipartUploadResult {
            bucket: "bkt".into(),
            key: KEY.into(),
            upload_id: ID.into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bkt</Bucket><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><UploadId>00112233445566778899aabbccddeeff</UploadId></InitiateMultipartUploadResult>"
        );
    }

    #[test]
    fn copy_part() {
        let doc = CopyPartResult {
            last_modified: T.into(),
            etag: ETAG.into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag></CopyPartResult>"
        );
    }

    #[test]
    fn complete_without_checksums() {
        let doc = CompleteMultipartUploadResult {
            location: format!("/bkt/{KEY}").into(),
            bucket: "bkt".into(),
            key: KEY.into(),
            etag: "\"0123456789abcdef0123456789abcdef-2\"".into(),
            checksums: vec![],
            checksum_type: None,
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/bkt/a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Location><Bucket>bkt</Bucket><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><ETag>&quot;0123456789abcdef0123456789abcdef-2&quot;</ETag></CompleteMultipartUploadResult>"
        );
    }

    #[test]
    fn complete_with_checksum() {
        let doc = CompleteMultipartUploadResult {
            location: "/bkt/k".into(),
            bucket: "bkt".into(),
            key: "k".into(),
            etag: "\"0123456789abcdef0123456789abcdef-2\"".into(),
            checksums: vec![Checksum {
                algorithm: "CRC32",
                value: "AAAAAA==-2".into(),
            }],
            checksum_type: Some("COMPOSITE".into()),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/bkt/k</Location><Bucket>bkt</Bucket><Key>k</Key><ETag>&quot;0123456789abcdef0123456789abcdef-2&quot;</ETag><ChecksumCRC32>AAAAAA==-2</ChecksumCRC32><ChecksumType>COMPOSITE</ChecksumType></CompleteMultipartUploadResult>"
        );
    }

    fn list_parts(
        key: &'static str,
        marker: u32,
        max_parts: usize,
        is_truncated: bool,
        parts: Vec<PartEntry<'static>>,
    ) -> ListPartsResult<'static> {
        ListPartsResult {
            bucket: "bkt".into(),
            key: key.into(),
            upload_id: ID.into(),
            initiator: cairn_owner(),
            owner: cairn_owner(),
            storage_class: "STANDARD".into(),
            part_number_marker: marker,
            next_part_number_marker: parts.last().map(|p| p.part_number),
            max_parts,
            is_truncated,
            parts,
        }
    }

    #[test]
    fn list_parts_empty() {
        assert_eq!(
            to_xml(&list_parts(KEY, 0, 1000, false, vec![])),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bkt</Bucket><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><UploadId>00112233445566778899aabbccddeeff</UploadId><Initiator><ID>cairn</ID><DisplayName>cairn</DisplayName></Initiator><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass><PartNumberMarker>0</PartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated></ListPartsResult>"
        );
    }

    #[test]
    fn list_parts_page() {
        let part = |n, size, checksums| PartEntry {
            part_number: n,
            last_modified: T.into(),
            etag: ETAG.into(),
            size,
            checksums,
        };
        let parts = vec![
            part(
                2,
                5_242_880,
                vec![Checksum {
                    algorithm: "CRC32C",
                    value: "q83vEg==".into(),
                }],
            ),
            part(3, 1, vec![]),
        ];
        assert_eq!(
            to_xml(&list_parts("k", 1, 2, true, parts)),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bkt</Bucket><Key>k</Key><UploadId>00112233445566778899aabbccddeeff</UploadId><Initiator><ID>cairn</ID><DisplayName>cairn</DisplayName></Initiator><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass><PartNumberMarker>1</PartNumberMarker><NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated><Part><PartNumber>2</PartNumber><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>5242880</Size><ChecksumCRC32C>q83vEg==</ChecksumCRC32C></Part><Part><PartNumber>3</PartNumber><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>1</Size></Part></ListPartsResult>"
        );
    }

    #[test]
    fn parses_complete_document() {
        let doc: CompleteMultipartUploadDoc = parse(
            r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
                 <Part><ETag>"abc"</ETag><PartNumber>1</PartNumber></Part>
                 <Part><PartNumber>2</PartNumber><ETag>def</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
               </CompleteMultipartUpload>"#,
        )
        .unwrap();
        assert_eq!(doc.parts.len(), 2);
        assert_eq!(doc.parts[0].etag, "\"abc\"");
        assert_eq!(doc.parts[1].part_number, 2);
        assert!(doc.parts[0].checksums().is_empty());
        assert_eq!(doc.parts[1].checksums(), vec![("CRC32", "AAAAAA==")]);
        assert!(parse::<CompleteMultipartUploadDoc>("not xml").is_err());
    }
}
