//! Object documents: CopyObjectResult, GetObjectAttributesResponse,
//! DeleteResult and PostResponse, and the Delete (DeleteObjects) request.

use serde::Deserialize;

use super::Checksum;
use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};

/// CopyObject's answer.
#[derive(Debug)]
pub(crate) struct CopyObjectResult<'a> {
    pub(crate) last_modified: XmlText<'a>,
    pub(crate) etag: XmlText<'a>,
}

impl XmlElement for CopyObjectResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("LastModified", &self.last_modified)
            .elem("ETag", &self.etag);
    }
}

impl XmlDocument for CopyObjectResult<'_> {
    fn root(&self) -> &'static str {
        "CopyObjectResult"
    }
}

/// POST Object's answer with `success_action_status` 201. S3 writes it
/// without a namespace.
#[derive(Debug)]
pub(crate) struct PostResponse<'a> {
    pub(crate) location: XmlText<'a>,
    pub(crate) bucket: XmlText<'a>,
    pub(crate) key: XmlText<'a>,
    pub(crate) etag: XmlText<'a>,
}

impl XmlElement for PostResponse<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Location", &self.location)
            .elem("Bucket", &self.bucket)
            .elem("Key", &self.key)
            .elem("ETag", &self.etag);
    }
}

impl XmlDocument for PostResponse<'_> {
    fn root(&self) -> &'static str {
        "PostResponse"
    }
    fn namespaced(&self) -> bool {
        false
    }
}

/// GetObjectAttributes' answer: each element present only when it was
/// asked for (and, for `Checksum` and `ObjectParts`, exists).
#[derive(Debug, Default)]
pub(crate) struct GetObjectAttributesResponse<'a> {
    pub(crate) etag: Option<XmlText<'a>>,
    pub(crate) checksum: Option<ObjectChecksum<'a>>,
    pub(crate) object_parts: Option<ObjectParts>,
    pub(crate) storage_class: Option<XmlText<'a>>,
    pub(crate) object_size: Option<u64>,
}

/// The object's checksums and their type.
#[derive(Debug)]
pub(crate) struct ObjectChecksum<'a> {
    pub(crate) checksums: Vec<Checksum<'a>>,
    pub(crate) checksum_type: XmlText<'a>,
}

impl XmlElement for ObjectChecksum<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        for c in &self.checksums {
            c.write(w);
        }
        w.elem("ChecksumType", &self.checksum_type);
    }
}

/// One page of a multipart object's parts.
#[derive(Debug)]
pub(crate) struct ObjectParts {
    pub(crate) parts_count: usize,
    pub(crate) part_number_marker: u32,
    pub(crate) next_part_number_marker: Option<usize>,
    pub(crate) max_parts: u32,
    pub(crate) is_truncated: bool,
    pub(crate) parts: Vec<ObjectPart>,
}

#[derive(Debug)]
pub(crate) struct ObjectPart {
    pub(crate) part_number: usize,
    pub(crate) size: u64,
}

impl XmlElement for ObjectPart {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("PartNumber", &self.part_number)
            .elem("Size", &self.size);
    }
}

impl XmlElement for ObjectParts {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("PartsCount", &self.parts_count)
            .elem("PartNumberMarker", &self.part_number_marker)
            .opt_elem("NextPartNumberMarker", &self.next_part_number_marker)
            .elem("MaxParts", &self.max_parts)
            .elem("IsTruncated", &self.is_truncated)
            .children("Part", &self.parts);
    }
}

impl XmlElement for GetObjectAttributesResponse<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.opt_elem("ETag", &self.etag)
            .opt_child("Checksum", &self.checksum)
            .opt_child("ObjectParts", &self.object_parts)
            .opt_elem("StorageClass", &self.storage_class)
            .opt_elem("ObjectSize", &self.object_size);
    }
}

impl XmlDocument for GetObjectAttributesResponse<'_> {
    fn root(&self) -> &'static str {
        "GetObjectAttributesResponse"
    }
}

/// DeleteObjects' answer: one entry per key, in the request's order.
#[derive(Debug)]
pub(crate) struct DeleteResult<'a> {
    pub(crate) entries: Vec<DeleteEntry<'a>>,
}

#[derive(Debug)]
pub(crate) enum DeleteEntry<'a> {
    Deleted {
        key: XmlText<'a>,
        version_id: Option<XmlText<'a>>,
        /// A delete marker was placed or removed (`<DeleteMarker>true`).
        delete_marker: bool,
        delete_marker_version_id: Option<XmlText<'a>>,
    },
    Error {
        key: XmlText<'a>,
        version_id: Option<XmlText<'a>>,
        code: XmlText<'a>,
        message: XmlText<'a>,
    },
}

impl XmlElement for DeleteEntry<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        match self {
            DeleteEntry::Deleted {
                key,
                version_id,
                delete_marker,
                delete_marker_version_id,
            } => {
                w.elem("Key", key).opt_elem("VersionId", version_id);
                if *delete_marker {
                    w.elem("DeleteMarker", &XmlText::from("true"));
                }
                w.opt_elem("DeleteMarkerVersionId", delete_marker_version_id);
            }
            DeleteEntry::Error {
                key,
                version_id,
                code,
                message,
            } => {
                w.elem("Key", key)
                    .opt_elem("VersionId", version_id)
                    .elem("Code", code)
                    .elem("Message", message);
            }
        }
    }
}

impl XmlElement for DeleteResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        for entry in &self.entries {
            let name = match entry {
                DeleteEntry::Deleted { .. } => "Deleted",
                DeleteEntry::Error { .. } => "Error",
            };
            w.child(name, entry);
        }
    }
}

impl XmlDocument for DeleteResult<'_> {
    fn root(&self) -> &'static str {
        "DeleteResult"
    }
}

/// The DeleteObjects request.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteDoc {
    #[serde(rename = "Quiet", default)]
    pub(crate) quiet: Option<bool>,
    #[serde(rename = "Object", default)]
    pub(crate) objects: Vec<DeleteObjectDoc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteObjectDoc {
    #[serde(rename = "Key")]
    pub(crate) key: String,
    #[serde(rename = "VersionId", default)]
    pub(crate) version_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::KEY;
    use crate::xml::{parse, to_xml};

    #[test]
    fn copy_object() {
        let doc = CopyObjectResult {
            last_modified: "2026-01-02T03:04:05.006Z".into(),
            etag: "\"0123456789abcdef0123456789abcdef\"".into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag></CopyObjectResult>"
        );
    }

    #[test]
    fn post_response_has_no_namespace() {
        let doc = PostResponse {
            location: "http://h/b/a%2Fb".into(),
            bucket: "b".into(),
            key: "a/b&c".into(),
            etag: "\"0123456789abcdef0123456789abcdef\"".into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>http://h/b/a%2Fb</Location><Bucket>b</Bucket><Key>a/b&amp;c</Key><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag></PostResponse>"
        );
    }

    const ETAG: &str = "0123456789abcdef0123456789abcdef-3";

    #[test]
    fn attributes_all() {
        let doc = GetObjectAttributesResponse {
            etag: Some(ETAG.into()),
            checksum: Some(ObjectChecksum {
                checksums: vec![Checksum {
                    algorithm: "CRC64NVME",
                    value: "AAAAAAAAAAA=".into(),
                }],
                checksum_type: "FULL_OBJECT".into(),
            }),
            object_parts: Some(ObjectParts {
                parts_count: 3,
                part_number_marker: 1,
                next_part_number_marker: Some(2),
                max_parts: 1,
                is_truncated: true,
                parts: vec![ObjectPart {
                    part_number: 2,
                    size: 6,
                }],
            }),
            storage_class: Some("STANDARD".into()),
            object_size: Some(12345),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ETag>0123456789abcdef0123456789abcdef-3</ETag><Checksum><ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME><ChecksumType>FULL_OBJECT</ChecksumType></Checksum><ObjectParts><PartsCount>3</PartsCount><PartNumberMarker>1</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>1</MaxParts><IsTruncated>true</IsTruncated><Part><PartNumber>2</PartNumber><Size>6</Size></Part></ObjectParts><StorageClass>STANDARD</StorageClass><ObjectSize>12345</ObjectSize></GetObjectAttributesResponse>"
        );
    }

    #[test]
    fn attributes_etag_only() {
        let doc = GetObjectAttributesResponse {
            etag: Some(ETAG.into()),
            ..Default::default()
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ETag>0123456789abcdef0123456789abcdef-3</ETag></GetObjectAttributesResponse>"
        );
    }

    #[test]
    fn attributes_none_present() {
        assert_eq!(
            to_xml(&GetObjectAttributesResponse::default()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></GetObjectAttributesResponse>"
        );
    }

    #[test]
    fn attributes_last_page_of_parts() {
        let doc = GetObjectAttributesResponse {
            object_parts: Some(ObjectParts {
                parts_count: 2,
                part_number_marker: 0,
                next_part_number_marker: None,
                max_parts: 1000,
                is_truncated: false,
                parts: vec![
                    ObjectPart {
                        part_number: 1,
                        size: 5,
                    },
                    ObjectPart {
                        part_number: 2,
                        size: 6,
                    },
                ],
            }),
            ..Default::default()
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectParts><PartsCount>2</PartsCount><PartNumberMarker>0</PartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><Size>5</Size></Part><Part><PartNumber>2</PartNumber><Size>6</Size></Part></ObjectParts></GetObjectAttributesResponse>"
        );
    }

    #[test]
    fn delete_result_empty() {
        assert_eq!(
            to_xml(&DeleteResult { entries: vec![] }),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></DeleteResult>"
        );
    }

    #[test]
    fn delete_result_in_request_order() {
        let doc = DeleteResult {
            entries: vec![
                DeleteEntry::Deleted {
                    key: KEY.into(),
                    version_id: None,
                    delete_marker: false,
                    delete_marker_version_id: None,
                },
                DeleteEntry::Error {
                    key: "k2".into(),
                    version_id: None,
                    code: "NoSuchVersion".into(),
                    message: "The specified version does not exist.".into(),
                },
                DeleteEntry::Deleted {
                    key: "k3".into(),
                    version_id: Some("null".into()),
                    delete_marker: false,
                    delete_marker_version_id: None,
                },
                DeleteEntry::Deleted {
                    key: "k4".into(),
                    version_id: None,
                    delete_marker: true,
                    delete_marker_version_id: Some("m1".into()),
                },
                DeleteEntry::Error {
                    key: "k5".into(),
                    version_id: Some("v5".into()),
                    code: "AccessDenied".into(),
                    message: "Access Denied".into(),
                },
            ],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Deleted><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key></Deleted><Error><Key>k2</Key><Code>NoSuchVersion</Code><Message>The specified version does not exist.</Message></Error><Deleted><Key>k3</Key><VersionId>null</VersionId></Deleted><Deleted><Key>k4</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>m1</DeleteMarkerVersionId></Deleted><Error><Key>k5</Key><VersionId>v5</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>"
        );
    }

    #[test]
    fn parses_delete_document() {
        let del: DeleteDoc = parse(
            "<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key><VersionId>null</VersionId></Object></Delete>",
        )
        .unwrap();
        assert_eq!(del.quiet, Some(true));
        assert_eq!(del.objects[0].key, "a&b");
        assert_eq!(del.objects[1].version_id.as_deref(), Some("null"));
        assert!(parse::<DeleteDoc>("<Delete><Object>").is_err());
    }
}
