//! Listing documents: ListBucketResult (ListObjects V1 and V2),
//! ListVersionsResult (ListObjectVersions) and ListMultipartUploadsResult.
//! Keys, prefixes and markers arrive already `encoding-type=url`-encoded
//! when the request asked for it (the handler's decision); here they are
//! text like any other.

use super::Owner;
use super::writer::{ElementWriter, QuotedEtag, XmlDocument, XmlElement, XmlText};

/// `MaxKeys`, `Delimiter`, `EncodingType` and `IsTruncated`: written in
/// this order, in the middle of the object and version listings.
#[derive(Debug)]
pub(crate) struct ListSettings<'a> {
    pub(crate) max_keys: usize,
    pub(crate) delimiter: Option<XmlText<'a>>,
    pub(crate) encoding_type: Option<XmlText<'a>>,
    pub(crate) is_truncated: bool,
}

impl ListSettings<'_> {
    fn write_inline(&self, w: &mut ElementWriter) {
        w.elem("MaxKeys", &self.max_keys)
            .opt_elem("Delimiter", &self.delimiter)
            .opt_elem("EncodingType", &self.encoding_type)
            .elem("IsTruncated", &self.is_truncated);
    }
}

/// One `<Contents>` of an object listing.
#[derive(Debug)]
pub(crate) struct ObjectEntry<'a> {
    pub(crate) key: XmlText<'a>,
    pub(crate) last_modified: XmlText<'a>,
    pub(crate) etag: QuotedEtag<'a>,
    pub(crate) size: u64,
    /// V1 always, V2 with `fetch-owner=true`.
    pub(crate) owner: Option<Owner<'a>>,
    pub(crate) storage_class: XmlText<'a>,
}

impl XmlElement for ObjectEntry<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Key", &self.key)
            .elem("LastModified", &self.last_modified)
            .elem("ETag", &self.etag)
            .elem("Size", &self.size);
        if let Some(owner) = &self.owner {
            w.child("Owner", owner);
        }
        w.elem("StorageClass", &self.storage_class);
    }
}

/// One `<CommonPrefixes>`: the keys rolled up under a delimiter.
#[derive(Debug)]
pub(crate) struct CommonPrefix<'a> {
    pub(crate) prefix: XmlText<'a>,
}

impl XmlElement for CommonPrefix<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Prefix", &self.prefix);
    }
}

/// ListObjects (V1).
#[derive(Debug)]
pub(crate) struct ListBucketResultV1<'a> {
    pub(crate) name: XmlText<'a>,
    pub(crate) prefix: XmlText<'a>,
    pub(crate) marker: XmlText<'a>,
    pub(crate) next_marker: Option<XmlText<'a>>,
    pub(crate) settings: ListSettings<'a>,
    pub(crate) contents: Vec<ObjectEntry<'a>>,
    pub(crate) common_prefixes: Vec<CommonPrefix<'a>>,
}

impl XmlElement for ListBucketResultV1<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Name", &self.name)
            .elem("Prefix", &self.prefix)
            .elem("Marker", &self.marker)
            .opt_elem("NextMarker", &self.next_marker);
        self.settings.write_inline(w);
        w.children("Contents", &self.contents)
            .children("CommonPrefixes", &self.common_prefixes);
    }
}

impl XmlDocument for ListBucketResultV1<'_> {
    fn root(&self) -> &'static str {
        "ListBucketResult"
    }
}

/// ListObjectsV2.
#[derive(Debug)]
pub(crate) struct ListBucketResultV2<'a> {
    pub(crate) name: XmlText<'a>,
    pub(crate) prefix: XmlText<'a>,
    pub(crate) continuation_token: Option<XmlText<'a>>,
    pub(crate) start_after: Option<XmlText<'a>>,
    pub(crate) key_count: usize,
    pub(crate) next_continuation_token: Option<XmlText<'a>>,
    pub(crate) settings: ListSettings<'a>,
    pub(crate) contents: Vec<ObjectEntry<'a>>,
    pub(crate) common_prefixes: Vec<CommonPrefix<'a>>,
}

impl XmlElement for ListBucketResultV2<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Name", &self.name)
            .elem("Prefix", &self.prefix)
            .opt_elem("ContinuationToken", &self.continuation_token)
            .opt_elem("StartAfter", &self.start_after)
            .elem("KeyCount", &self.key_count)
            .opt_elem("NextContinuationToken", &self.next_continuation_token);
        self.settings.write_inline(w);
        w.children("Contents", &self.contents)
            .children("CommonPrefixes", &self.common_prefixes);
    }
}

impl XmlDocument for ListBucketResultV2<'_> {
    fn root(&self) -> &'static str {
        "ListBucketResult"
    }
}

/// One `<Version>` of ListObjectVersions.
#[derive(Debug)]
pub(crate) struct VersionEntry<'a> {
    pub(crate) key: XmlText<'a>,
    pub(crate) version_id: XmlText<'a>,
    pub(crate) is_latest: bool,
    pub(crate) last_modified: XmlText<'a>,
    pub(crate) etag: QuotedEtag<'a>,
    pub(crate) size: u64,
    pub(crate) owner: Owner<'a>,
    pub(crate) storage_class: XmlText<'a>,
}

impl XmlElement for VersionEntry<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Key", &self.key)
            .elem("VersionId", &self.version_id)
            .elem("IsLatest", &self.is_latest)
            .elem("LastModified", &self.last_modified)
            .elem("ETag", &self.etag)
            .elem("Size", &self.size)
            .child("Owner", &self.owner)
            .elem("StorageClass", &self.storage_class);
    }
}

/// One `<DeleteMarker>` of ListObjectVersions: a version that records a
/// delete, so it has no ETag, size or storage class.
#[derive(Debug)]
pub(crate) struct DeleteMarkerEntry<'a> {
    pub(crate) key: XmlText<'a>,
    pub(crate) version_id: XmlText<'a>,
    pub(crate) is_latest: bool,
    pub(crate) last_modified: XmlText<'a>,
    pub(crate) owner: Owner<'a>,
}

impl XmlElement for DeleteMarkerEntry<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Key", &self.key)
            .elem("VersionId", &self.version_id)
            .elem("IsLatest", &self.is_latest)
            .elem("LastModified", &self.last_modified)
            .child("Owner", &self.owner);
    }
}

/// One entry of a version listing. S3 lists a key's versions newest first
/// with its delete markers among them, so the two kinds share one list and
/// are written in the order the handler gives.
#[derive(Debug)]
pub(crate) enum VersionListEntry<'a> {
    Version(VersionEntry<'a>),
    DeleteMarker(DeleteMarkerEntry<'a>),
}

impl VersionListEntry<'_> {
    fn write(&self, w: &mut ElementWriter) {
        match self {
            VersionListEntry::Version(v) => w.child("Version", v),
            VersionListEntry::DeleteMarker(d) => w.child("DeleteMarker", d),
        };
    }
}

/// ListObjectVersions. `KeyMarker` and `VersionIdMarker` echo the request
/// and are always written (empty when it had none), as S3 does;
/// `NextKeyMarker` and `NextVersionIdMarker` only when the handler sets
/// them (a truncated page; S3 leaves `NextVersionIdMarker` out when the
/// page ends on a common prefix).
#[derive(Debug)]
pub(crate) struct ListVersionsResult<'a> {
    pub(crate) name: XmlText<'a>,
    pub(crate) prefix: XmlText<'a>,
    pub(crate) key_marker: XmlText<'a>,
    pub(crate) version_id_marker: XmlText<'a>,
    pub(crate) next_key_marker: Option<XmlText<'a>>,
    pub(crate) next_version_id_marker: Option<XmlText<'a>>,
    pub(crate) settings: ListSettings<'a>,
    /// Versions and delete markers, in listing order.
    pub(crate) entries: Vec<VersionListEntry<'a>>,
    pub(crate) common_prefixes: Vec<CommonPrefix<'a>>,
}

impl XmlElement for ListVersionsResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Name", &self.name)
            .elem("Prefix", &self.prefix)
            .elem("KeyMarker", &self.key_marker)
            .elem("VersionIdMarker", &self.version_id_marker)
            .opt_elem("NextKeyMarker", &self.next_key_marker)
            .opt_elem("NextVersionIdMarker", &self.next_version_id_marker);
        self.settings.write_inline(w);
        for entry in &self.entries {
            entry.write(w);
        }
        w.children("CommonPrefixes", &self.common_prefixes);
    }
}

impl XmlDocument for ListVersionsResult<'_> {
    fn root(&self) -> &'static str {
        "ListVersionsResult"
    }
}

/// One `<Upload>` of ListMultipartUploads.
#[derive(Debug)]
pub(crate) struct UploadEntry<'a> {
    pub(crate) key: XmlText<'a>,
    pub(crate) upload_id: XmlText<'a>,
    pub(crate) initiator: Owner<'a>,
    pub(crate) owner: Owner<'a>,
    pub(crate) storage_class: XmlText<'a>,
    pub(crate) initiated: XmlText<'a>,
}

impl XmlElement for UploadEntry<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Key", &self.key)
            .elem("UploadId", &self.upload_id)
            .child("Initiator", &self.initiator)
            .child("Owner", &self.owner)
            .elem("StorageClass", &self.storage_class)
            .elem("Initiated", &self.initiated);
    }
}

/// ListMultipartUploads (its settings come in another order than the
/// object listings').
#[derive(Debug)]
pub(crate) struct ListMultipartUploadsResult<'a> {
    pub(crate) bucket: XmlText<'a>,
    pub(crate) key_marker: XmlText<'a>,
    pub(crate) upload_id_marker: XmlText<'a>,
    pub(crate) next_key_marker: Option<XmlText<'a>>,
    pub(crate) next_upload_id_marker: Option<XmlText<'a>>,
    pub(crate) delimiter: Option<XmlText<'a>>,
    pub(crate) prefix: XmlText<'a>,
    pub(crate) max_uploads: usize,
    pub(crate) encoding_type: Option<XmlText<'a>>,
    pub(crate) is_truncated: bool,
    pub(crate) uploads: Vec<UploadEntry<'a>>,
    pub(crate) common_prefixes: Vec<CommonPrefix<'a>>,
}

impl XmlElement for ListMultipartUploadsResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Bucket", &self.bucket)
            .elem("KeyMarker", &self.key_marker)
            .elem("UploadIdMarker", &self.upload_id_marker)
            .opt_elem("NextKeyMarker", &self.next_key_marker)
            .opt_elem("NextUploadIdMarker", &self.next_upload_id_marker)
            .opt_elem("Delimiter", &self.delimiter)
            .elem("Prefix", &self.prefix)
            .elem("MaxUploads", &self.max_uploads)
            .opt_elem("EncodingType", &self.encoding_type)
            .elem("IsTruncated", &self.is_truncated)
            .children("Upload", &self.uploads)
            .children("CommonPrefixes", &self.common_prefixes);
    }
}

impl XmlDocument for ListMultipartUploadsResult<'_> {
    fn root(&self) -> &'static str {
        "ListMultipartUploadsResult"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::{KEY, KEY_URL, cairn_owner};
    use crate::xml::to_xml;

    const T: &str = "2026-01-02T03:04:05.006Z";
    const ETAG_1: &str = "0123456789abcdef0123456789abcdef";
    const ETAG_2: &str = "fedcba9876543210fedcba9876543210-2";

    /// The two objects every listing case shows: one with a key needing
    /// escapes (or URL-encoded), one plain.
    fn objects(key: &'static str, owner: bool) -> Vec<ObjectEntry<'static>> {
        vec![
            ObjectEntry {
                key: key.into(),
                last_modified: T.into(),
                etag: QuotedEtag(ETAG_1),
                size: 0,
                owner: owner.then(cairn_owner),
                storage_class: "STANDARD".into(),
            },
            ObjectEntry {
                key: "plain.txt".into(),
                last_modified: T.into(),
                etag: QuotedEtag(ETAG_2),
                size: 12_345_678_901,
                owner: owner.then(cairn_owner),
                storage_class: "STANDARD".into(),
            },
        ]
    }

    fn prefixes(p: &[&'static str]) -> Vec<CommonPrefix<'static>> {
        p.iter()
            .map(|p| CommonPrefix {
                prefix: (*p).into(),
            })
            .collect()
    }

    fn settings(
        max_keys: usize,
        delimiter: Option<&'static str>,
        url: bool,
        is_truncated: bool,
    ) -> ListSettings<'static> {
        ListSettings {
            max_keys,
            delimiter: delimiter.map(Into::into),
            encoding_type: url.then(|| "url".into()),
            is_truncated,
        }
    }

    #[test]
    fn v1_empty() {
        let doc = ListBucketResultV1 {
            name: "bkt".into(),
            prefix: "".into(),
            marker: "".into(),
            next_marker: None,
            settings: settings(1000, None, false, false),
            contents: vec![],
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"
        );
    }

    #[test]
    fn v1_page_escapes_keys() {
        let doc = ListBucketResultV1 {
            name: "bkt".into(),
            prefix: "a&".into(),
            marker: "a&<m".into(),
            next_marker: Some("a&b/".into()),
            settings: settings(2, Some("/"), false, true),
            contents: objects(KEY, true),
            common_prefixes: prefixes(&["a&b/"]),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>a&amp;</Prefix><Marker>a&amp;&lt;m</Marker><NextMarker>a&amp;b/</NextMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>0</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>plain.txt</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;fedcba9876543210fedcba9876543210-2&quot;</ETag><Size>12345678901</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>a&amp;b/</Prefix></CommonPrefixes></ListBucketResult>"
        );
    }

    #[test]
    fn v1_url_encoded() {
        let doc = ListBucketResultV1 {
            name: "bkt".into(),
            prefix: KEY_URL.into(),
            marker: KEY_URL.into(),
            next_marker: Some(KEY_URL.into()),
            settings: settings(3, Some("%01"), true, true),
            contents: objects(KEY_URL, true),
            common_prefixes: prefixes(&[KEY_URL]),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Prefix><Marker>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Marker><NextMarker>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</NextMarker><MaxKeys>3</MaxKeys><Delimiter>%01</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>0</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>plain.txt</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;fedcba9876543210fedcba9876543210-2&quot;</ETag><Size>12345678901</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Prefix></CommonPrefixes></ListBucketResult>"
        );
    }

    #[test]
    fn v1_truncated_without_next_marker() {
        let mut contents = objects(KEY, true);
        contents.truncate(1);
        let doc = ListBucketResultV1 {
            name: "bkt".into(),
            prefix: "".into(),
            marker: "".into(),
            next_marker: None,
            settings: settings(1, None, false, true),
            contents,
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix><Marker></Marker><MaxKeys>1</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>0</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
        );
    }

    #[test]
    fn v2_empty() {
        let doc = ListBucketResultV2 {
            name: "bkt".into(),
            prefix: "".into(),
            continuation_token: None,
            start_after: None,
            key_count: 0,
            next_continuation_token: None,
            settings: settings(1000, None, false, false),
            contents: vec![],
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"
        );
    }

    #[test]
    fn v2_page_url_encoded_without_owner() {
        let doc = ListBucketResultV2 {
            name: "bkt".into(),
            prefix: KEY_URL.into(),
            continuation_token: Some("dG9rZW4".into()),
            start_after: Some(KEY_URL.into()),
            key_count: 3,
            next_continuation_token: Some("ZCYv".into()),
            settings: settings(3, Some("/"), true, true),
            contents: objects(KEY_URL, false),
            common_prefixes: prefixes(&["d%26/"]),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Prefix><ContinuationToken>dG9rZW4</ContinuationToken><StartAfter>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</StartAfter><KeyCount>3</KeyCount><NextContinuationToken>ZCYv</NextContinuationToken><MaxKeys>3</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>plain.txt</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;fedcba9876543210fedcba9876543210-2&quot;</ETag><Size>12345678901</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>d%26/</Prefix></CommonPrefixes></ListBucketResult>"
        );
    }

    #[test]
    fn v2_fetch_owner_and_empty_start_after() {
        let doc = ListBucketResultV2 {
            name: "bkt".into(),
            prefix: "".into(),
            continuation_token: None,
            start_after: Some("".into()),
            key_count: 2,
            next_continuation_token: None,
            settings: settings(0, None, false, false),
            contents: objects(KEY, true),
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix><StartAfter></StartAfter><KeyCount>2</KeyCount><MaxKeys>0</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>0</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>plain.txt</Key><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;fedcba9876543210fedcba9876543210-2&quot;</ETag><Size>12345678901</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
        );
    }

    fn versions(key: &'static str, n: usize) -> Vec<VersionListEntry<'static>> {
        objects(key, true)
            .into_iter()
            .take(n)
            .map(|o| {
                VersionListEntry::Version(VersionEntry {
                    key: o.key,
                    version_id: "null".into(),
                    is_latest: true,
                    last_modified: o.last_modified,
                    etag: o.etag,
                    size: o.size,
                    owner: cairn_owner(),
                    storage_class: o.storage_class,
                })
            })
            .collect()
    }

    #[test]
    fn versions_empty() {
        let doc = ListVersionsResult {
            name: "bkt".into(),
            prefix: "".into(),
            key_marker: "".into(),
            version_id_marker: "".into(),
            next_key_marker: None,
            next_version_id_marker: None,
            settings: settings(1000, None, false, false),
            entries: vec![],
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListVersionsResult>"
        );
    }

    #[test]
    fn versions_page_url_encoded() {
        let doc = ListVersionsResult {
            name: "bkt".into(),
            prefix: KEY_URL.into(),
            key_marker: KEY_URL.into(),
            version_id_marker: "null".into(),
            next_key_marker: Some("plain.txt".into()),
            next_version_id_marker: Some("null".into()),
            settings: settings(2, Some("/"), true, true),
            entries: versions(KEY_URL, 2),
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Prefix><KeyMarker>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</KeyMarker><VersionIdMarker>null</VersionIdMarker><NextKeyMarker>plain.txt</NextKeyMarker><NextVersionIdMarker>null</NextVersionIdMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Version><Key>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Key><VersionId>null</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>0</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Version><Version><Key>plain.txt</Key><VersionId>null</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;fedcba9876543210fedcba9876543210-2&quot;</ETag><Size>12345678901</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Version></ListVersionsResult>"
        );
    }

    #[test]
    fn versions_ending_in_a_prefix() {
        let doc = ListVersionsResult {
            name: "bkt".into(),
            prefix: "".into(),
            key_marker: "".into(),
            version_id_marker: "".into(),
            next_key_marker: Some("d/".into()),
            next_version_id_marker: None,
            settings: settings(2, Some("/"), false, true),
            entries: versions(KEY, 1),
            common_prefixes: prefixes(&["d/"]),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><NextKeyMarker>d/</NextKeyMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><Version><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><VersionId>null</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>0</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Version><CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes></ListVersionsResult>"
        );
    }

    /// A key's history newest first: a delete marker on top of two
    /// versions, then a key whose only entry is a marker (an expired
    /// object delete marker); both kinds keep the order given.
    #[test]
    fn versions_with_delete_markers() {
        let marker = |key: &'static str, id: &'static str, is_latest| {
            VersionListEntry::DeleteMarker(DeleteMarkerEntry {
                key: key.into(),
                version_id: id.into(),
                is_latest,
                last_modified: T.into(),
                owner: cairn_owner(),
            })
        };
        let version = |id: &'static str| {
            VersionListEntry::Version(VersionEntry {
                key: KEY.into(),
                version_id: id.into(),
                is_latest: false,
                last_modified: T.into(),
                etag: QuotedEtag(ETAG_1),
                size: 3,
                owner: cairn_owner(),
                storage_class: "STANDARD".into(),
            })
        };
        let doc = ListVersionsResult {
            name: "bkt".into(),
            prefix: "".into(),
            key_marker: "".into(),
            version_id_marker: "".into(),
            next_key_marker: Some("gone".into()),
            next_version_id_marker: Some("0000000000000003".into()),
            settings: settings(4, None, false, true),
            entries: vec![
                marker(KEY, "0000000000000009", true),
                version("0000000000000007"),
                version("null"),
                marker("gone", "0000000000000003", true),
            ],
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><NextKeyMarker>gone</NextKeyMarker><NextVersionIdMarker>0000000000000003</NextVersionIdMarker><MaxKeys>4</MaxKeys><IsTruncated>true</IsTruncated><DeleteMarker><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><VersionId>0000000000000009</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-02T03:04:05.006Z</LastModified><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner></DeleteMarker><Version><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><VersionId>0000000000000007</VersionId><IsLatest>false</IsLatest><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>3</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Version><Version><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><VersionId>null</VersionId><IsLatest>false</IsLatest><LastModified>2026-01-02T03:04:05.006Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>3</Size><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Version><DeleteMarker><Key>gone</Key><VersionId>0000000000000003</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-02T03:04:05.006Z</LastModified><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner></DeleteMarker></ListVersionsResult>"
        );
    }

    #[test]
    fn uploads_empty() {
        let doc = ListMultipartUploadsResult {
            bucket: "bkt".into(),
            key_marker: "".into(),
            upload_id_marker: "".into(),
            next_key_marker: None,
            next_upload_id_marker: None,
            delimiter: None,
            prefix: "".into(),
            max_uploads: 1000,
            encoding_type: None,
            is_truncated: false,
            uploads: vec![],
            common_prefixes: vec![],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bkt</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix></Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"
        );
    }

    #[test]
    fn uploads_page_url_encoded() {
        let id = "00112233445566778899aabbccddeeff";
        let doc = ListMultipartUploadsResult {
            bucket: "bkt".into(),
            key_marker: KEY_URL.into(),
            upload_id_marker: "junk&".into(),
            next_key_marker: Some(KEY_URL.into()),
            next_upload_id_marker: Some(id.into()),
            delimiter: Some("/".into()),
            prefix: KEY_URL.into(),
            max_uploads: 2,
            encoding_type: Some("url".into()),
            is_truncated: true,
            uploads: vec![UploadEntry {
                key: KEY_URL.into(),
                upload_id: id.into(),
                initiator: cairn_owner(),
                owner: cairn_owner(),
                storage_class: "STANDARD".into(),
                initiated: T.into(),
            }],
            common_prefixes: prefixes(&["d/"]),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bkt</Bucket><KeyMarker>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</KeyMarker><UploadIdMarker>junk&amp;</UploadIdMarker><NextKeyMarker>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</NextKeyMarker><NextUploadIdMarker>00112233445566778899aabbccddeeff</NextUploadIdMarker><Delimiter>/</Delimiter><Prefix>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Prefix><MaxUploads>2</MaxUploads><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Upload><Key>a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9</Key><UploadId>00112233445566778899aabbccddeeff</UploadId><Initiator><ID>cairn</ID><DisplayName>cairn</DisplayName></Initiator><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><StorageClass>STANDARD</StorageClass><Initiated>2026-01-02T03:04:05.006Z</Initiated></Upload><CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes></ListMultipartUploadsResult>"
        );
    }
}
