//! Bucket documents: ListAllMyBucketsResult (ListBuckets),
//! LocationConstraint (GetBucketLocation) and the CreateBucketConfiguration
//! request. (VersioningConfiguration is in versioning.rs.)

use serde::Deserialize;

use super::Owner;
use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};

/// ListBuckets' answer: one page of buckets in name order.
#[derive(Debug)]
pub(crate) struct ListAllMyBucketsResult<'a> {
    pub(crate) owner: Owner<'a>,
    pub(crate) buckets: Vec<BucketEntry<'a>>,
    /// Where the next page starts (only when this one is truncated).
    pub(crate) continuation_token: Option<XmlText<'a>>,
    pub(crate) prefix: Option<XmlText<'a>>,
}

#[derive(Debug)]
pub(crate) struct BucketEntry<'a> {
    pub(crate) name: XmlText<'a>,
    pub(crate) creation_date: XmlText<'a>,
    pub(crate) bucket_region: XmlText<'a>,
}

impl XmlElement for BucketEntry<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Name", &self.name)
            .elem("CreationDate", &self.creation_date)
            .elem("BucketRegion", &self.bucket_region);
    }
}

/// `<Buckets>`: present (and possibly empty) in every answer.
struct Buckets<'b, 'a>(&'b [BucketEntry<'a>]);

impl XmlElement for Buckets<'_, '_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.children("Bucket", self.0);
    }
}

impl XmlElement for ListAllMyBucketsResult<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child("Owner", &self.owner)
            .child("Buckets", &Buckets(&self.buckets))
            .opt_elem("ContinuationToken", &self.continuation_token)
            .opt_elem("Prefix", &self.prefix);
    }
}

impl XmlDocument for ListAllMyBucketsResult<'_> {
    fn root(&self) -> &'static str {
        "ListAllMyBucketsResult"
    }
}

/// GetBucketLocation's answer: the region as the root's text (S3 reports
/// us-east-1 as empty; the handler decides).
#[derive(Debug)]
pub(crate) struct LocationConstraint<'a> {
    pub(crate) region: XmlText<'a>,
}

impl XmlElement for LocationConstraint<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.text(&self.region);
    }
}

impl XmlDocument for LocationConstraint<'_> {
    fn root(&self) -> &'static str {
        "LocationConstraint"
    }
}

/// CreateBucket's optional request body.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateBucketConfigurationDoc {
    #[serde(rename = "LocationConstraint", default)]
    pub(crate) location_constraint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::{KEY, cairn_owner};
    use crate::xml::to_xml;

    fn bucket(name: &str) -> BucketEntry<'_> {
        BucketEntry {
            name: name.into(),
            creation_date: "2026-01-02T03:04:05.006Z".into(),
            bucket_region: "us-east-1".into(),
        }
    }

    #[test]
    fn list_all_my_buckets_empty() {
        let doc = ListAllMyBucketsResult {
            owner: cairn_owner(),
            buckets: vec![],
            continuation_token: None,
            prefix: None,
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><Buckets></Buckets></ListAllMyBucketsResult>"
        );
    }

    #[test]
    fn list_all_my_buckets_page() {
        let doc = ListAllMyBucketsResult {
            owner: cairn_owner(),
            buckets: vec![bucket("alpha"), bucket("b&c")],
            continuation_token: Some("YiZj".into()),
            prefix: Some("p&<".into()),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><Buckets><Bucket><Name>alpha</Name><CreationDate>2026-01-02T03:04:05.006Z</CreationDate><BucketRegion>us-east-1</BucketRegion></Bucket><Bucket><Name>b&amp;c</Name><CreationDate>2026-01-02T03:04:05.006Z</CreationDate><BucketRegion>us-east-1</BucketRegion></Bucket></Buckets><ContinuationToken>YiZj</ContinuationToken><Prefix>p&amp;&lt;</Prefix></ListAllMyBucketsResult>"
        );
    }

    #[test]
    fn location_constraint() {
        let us = LocationConstraint { region: "".into() };
        assert_eq!(
            to_xml(&us),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>"
        );
        let eu = LocationConstraint {
            region: "eu-west-1".into(),
        };
        assert_eq!(
            to_xml(&eu),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">eu-west-1</LocationConstraint>"
        );
        // Not a region, but the text newtype escapes whatever it holds.
        let odd = LocationConstraint { region: KEY.into() };
        assert!(to_xml(&odd).contains("&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;"));
    }

    #[test]
    fn parses_create_bucket_configuration() {
        let doc: CreateBucketConfigurationDoc = crate::xml::parse(
            "<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>",
        )
        .unwrap();
        assert_eq!(doc.location_constraint.as_deref(), Some("eu-west-1"));
        let empty: CreateBucketConfigurationDoc =
            crate::xml::parse("<CreateBucketConfiguration/>").unwrap();
        assert!(empty.location_constraint.is_none());
    }
}
