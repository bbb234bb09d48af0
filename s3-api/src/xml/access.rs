//! Access documents: the public access block (request and response) and
//! the policy status.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::writer::{ElementWriter, XmlDocument, XmlElement};

/// PutPublicAccessBlock's body. An element left out is `false` (S3).
/// Values are judged by the handler (`true`/`false` only).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublicAccessBlockDoc {
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "BlockPublicAcls", default)]
    pub(crate) block_public_acls: Option<String>,
    #[serde(rename = "IgnorePublicAcls", default)]
    pub(crate) ignore_public_acls: Option<String>,
    #[serde(rename = "BlockPublicPolicy", default)]
    pub(crate) block_public_policy: Option<String>,
    #[serde(rename = "RestrictPublicBuckets", default)]
    pub(crate) restrict_public_buckets: Option<String>,
}

/// GetBucketPolicyStatus's answer.
#[derive(Debug)]
pub(crate) struct PolicyStatus {
    pub(crate) is_public: bool,
}

impl XmlElement for PolicyStatus {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("IsPublic", &self.is_public);
    }
}

impl XmlDocument for PolicyStatus {
    fn root(&self) -> &'static str {
        "PolicyStatus"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse, to_xml};

    #[test]
    fn policy_status() {
        assert_eq!(
            to_xml(&PolicyStatus { is_public: true }),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PolicyStatus xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsPublic>true</IsPublic></PolicyStatus>"
        );
    }

    #[test]
    fn parses_public_access_block() {
        let doc: PublicAccessBlockDoc = parse(
            "<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><BlockPublicAcls>true</BlockPublicAcls><RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
        )
        .unwrap();
        assert_eq!(doc.block_public_acls.as_deref(), Some("true"));
        assert_eq!(doc.restrict_public_buckets.as_deref(), Some("false"));
        assert!(doc.ignore_public_acls.is_none() && doc.block_public_policy.is_none());
        assert!(
            parse::<PublicAccessBlockDoc>(
                "<PublicAccessBlockConfiguration><Other>true</Other></PublicAccessBlockConfiguration>"
            )
            .is_err()
        );
    }
}
