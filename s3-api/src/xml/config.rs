//! Bucket configuration documents (bucket_config.rs): the lists of
//! analytics, inventory, metrics and Intelligent-Tiering configurations,
//! the configurations answered empty, and the ones that describe what
//! Cairn always does (encryption, ownership, public access block, payer).

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};

/// PutBucketEncryption's body. Elements S3's schema does not define are
/// refused (`MalformedXML`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSideEncryptionConfigurationDoc {
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "Rule", default)]
    pub(crate) rules: Vec<EncryptionRuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EncryptionRuleDoc {
    #[serde(rename = "ApplyServerSideEncryptionByDefault", default)]
    pub(crate) default: Option<EncryptionByDefaultDoc>,
    /// Text, so that the handler decides what a non-boolean is.
    #[serde(rename = "BucketKeyEnabled", default)]
    pub(crate) bucket_key_enabled: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EncryptionByDefaultDoc {
    #[serde(rename = "SSEAlgorithm", default)]
    pub(crate) sse_algorithm: Option<String>,
    #[serde(rename = "KMSMasterKeyID", default)]
    pub(crate) kms_master_key_id: Option<String>,
}

/// Which list of configurations a [`ConfigurationList`] is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConfigurationListKind {
    Analytics,
    Inventory,
    Metrics,
    IntelligentTiering,
}

/// A list of bucket configurations with none in it (`IsTruncated` only).
#[derive(Debug)]
pub(crate) struct ConfigurationList {
    pub(crate) kind: ConfigurationListKind,
    pub(crate) is_truncated: bool,
}

impl XmlElement for ConfigurationList {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("IsTruncated", &self.is_truncated);
    }
}

impl XmlDocument for ConfigurationList {
    fn root(&self) -> &'static str {
        match self.kind {
            ConfigurationListKind::Analytics => "ListBucketAnalyticsConfigurationResult",
            ConfigurationListKind::Inventory => "ListInventoryConfigurationsResult",
            ConfigurationListKind::Metrics => "ListMetricsConfigurationsResult",
            ConfigurationListKind::IntelligentTiering => {
                "ListBucketIntelligentTieringConfigurationsOutput"
            }
        }
    }
}

/// A configuration document with nothing set: just its root.
#[derive(Clone, Copy, Debug)]
pub(crate) enum EmptyConfiguration {
    Accelerate,
    Logging,
    Notification,
}

impl XmlElement for EmptyConfiguration {
    fn write_content(&self, _: &mut ElementWriter) {}
}

impl XmlDocument for EmptyConfiguration {
    fn root(&self) -> &'static str {
        match self {
            EmptyConfiguration::Accelerate => "AccelerateConfiguration",
            EmptyConfiguration::Logging => "BucketLoggingStatus",
            EmptyConfiguration::Notification => "NotificationConfiguration",
        }
    }
}

#[derive(Debug)]
pub(crate) struct RequestPaymentConfiguration<'a> {
    pub(crate) payer: XmlText<'a>,
}

impl XmlElement for RequestPaymentConfiguration<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Payer", &self.payer);
    }
}

impl XmlDocument for RequestPaymentConfiguration<'_> {
    fn root(&self) -> &'static str {
        "RequestPaymentConfiguration"
    }
}

/// One rule: the default encryption applied to new objects.
#[derive(Debug)]
pub(crate) struct ServerSideEncryptionConfiguration<'a> {
    pub(crate) sse_algorithm: XmlText<'a>,
    /// With `aws:kms`: the key new objects are encrypted under, as the
    /// configuration named it (none: the default key `aws/s3`).
    pub(crate) kms_master_key_id: Option<XmlText<'a>>,
    pub(crate) bucket_key_enabled: bool,
}

struct ApplyServerSideEncryptionByDefault<'b, 'a>(&'b ServerSideEncryptionConfiguration<'a>);

impl XmlElement for ApplyServerSideEncryptionByDefault<'_, '_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("SSEAlgorithm", &self.0.sse_algorithm);
        if let Some(id) = &self.0.kms_master_key_id {
            w.elem("KMSMasterKeyID", id);
        }
    }
}

struct EncryptionRule<'b, 'a>(&'b ServerSideEncryptionConfiguration<'a>);

impl XmlElement for EncryptionRule<'_, '_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child(
            "ApplyServerSideEncryptionByDefault",
            &ApplyServerSideEncryptionByDefault(self.0),
        )
        .elem("BucketKeyEnabled", &self.0.bucket_key_enabled);
    }
}

impl XmlElement for ServerSideEncryptionConfiguration<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child("Rule", &EncryptionRule(self));
    }
}

impl XmlDocument for ServerSideEncryptionConfiguration<'_> {
    fn root(&self) -> &'static str {
        "ServerSideEncryptionConfiguration"
    }
}

/// One rule: who owns the objects written to the bucket.
#[derive(Debug)]
pub(crate) struct OwnershipControls<'a> {
    pub(crate) object_ownership: XmlText<'a>,
}

struct OwnershipRule<'b, 'a>(&'b XmlText<'a>);

impl XmlElement for OwnershipRule<'_, '_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("ObjectOwnership", self.0);
    }
}

impl XmlElement for OwnershipControls<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child("Rule", &OwnershipRule(&self.object_ownership));
    }
}

impl XmlDocument for OwnershipControls<'_> {
    fn root(&self) -> &'static str {
        "OwnershipControls"
    }
}

#[derive(Debug)]
pub(crate) struct PublicAccessBlockConfiguration {
    pub(crate) block_public_acls: bool,
    pub(crate) ignore_public_acls: bool,
    pub(crate) block_public_policy: bool,
    pub(crate) restrict_public_buckets: bool,
}

impl XmlElement for PublicAccessBlockConfiguration {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("BlockPublicAcls", &self.block_public_acls)
            .elem("IgnorePublicAcls", &self.ignore_public_acls)
            .elem("BlockPublicPolicy", &self.block_public_policy)
            .elem("RestrictPublicBuckets", &self.restrict_public_buckets);
    }
}

impl XmlDocument for PublicAccessBlockConfiguration {
    fn root(&self) -> &'static str {
        "PublicAccessBlockConfiguration"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::to_xml;

    #[test]
    fn configuration_lists() {
        let list = |kind| {
            to_xml(&ConfigurationList {
                kind,
                is_truncated: false,
            })
        };
        assert_eq!(
            list(ConfigurationListKind::Analytics),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketAnalyticsConfigurationResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated></ListBucketAnalyticsConfigurationResult>"
        );
        assert_eq!(
            list(ConfigurationListKind::Inventory),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListInventoryConfigurationsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated></ListInventoryConfigurationsResult>"
        );
        assert_eq!(
            list(ConfigurationListKind::Metrics),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMetricsConfigurationsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated></ListMetricsConfigurationsResult>"
        );
        assert_eq!(
            list(ConfigurationListKind::IntelligentTiering),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketIntelligentTieringConfigurationsOutput xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated></ListBucketIntelligentTieringConfigurationsOutput>"
        );
    }

    #[test]
    fn empty_configurations() {
        assert_eq!(
            to_xml(&EmptyConfiguration::Accelerate),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccelerateConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></AccelerateConfiguration>"
        );
        assert_eq!(
            to_xml(&EmptyConfiguration::Logging),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BucketLoggingStatus xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></BucketLoggingStatus>"
        );
        assert_eq!(
            to_xml(&EmptyConfiguration::Notification),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></NotificationConfiguration>"
        );
    }

    #[test]
    fn fixed_configurations() {
        let payment = RequestPaymentConfiguration {
            payer: "BucketOwner".into(),
        };
        assert_eq!(
            to_xml(&payment),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RequestPaymentConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Payer>BucketOwner</Payer></RequestPaymentConfiguration>"
        );
        let encryption = ServerSideEncryptionConfiguration {
            sse_algorithm: "AES256".into(),
            kms_master_key_id: None,
            bucket_key_enabled: false,
        };
        assert_eq!(
            to_xml(&encryption),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"
        );
        let kms = ServerSideEncryptionConfiguration {
            sse_algorithm: "aws:kms".into(),
            kms_master_key_id: Some("alias/backups".into()),
            bucket_key_enabled: true,
        };
        assert_eq!(
            to_xml(&kms),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>alias/backups</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"
        );
        let ownership = OwnershipControls {
            object_ownership: "BucketOwnerEnforced".into(),
        };
        assert_eq!(
            to_xml(&ownership),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OwnershipControls xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>"
        );
        let block = PublicAccessBlockConfiguration {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        assert_eq!(
            to_xml(&block),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>"
        );
    }
}
