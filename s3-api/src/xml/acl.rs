//! ACL documents: the AccessControlPolicy GetBucketAcl / GetObjectAcl
//! answer, and the one PutBucketAcl / PutObjectAcl read.

use serde::Deserialize;

use super::Owner;
use super::writer::{ElementWriter, XSI_NS, XmlDocument, XmlElement, XmlText};

/// An ACL: its owner and its grants.
#[derive(Debug)]
pub(crate) struct AccessControlPolicy<'a> {
    pub(crate) owner: Owner<'a>,
    pub(crate) grants: Vec<Grant<'a>>,
}

/// A grant to a canonical user (`xsi:type="CanonicalUser"`).
#[derive(Debug)]
pub(crate) struct Grant<'a> {
    pub(crate) grantee: Owner<'a>,
    pub(crate) permission: XmlText<'a>,
}

impl XmlElement for Grant<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child_with_attributes(
            "Grantee",
            &[("xmlns:xsi", XSI_NS), ("xsi:type", "CanonicalUser")],
            &self.grantee,
        )
        .elem("Permission", &self.permission);
    }
}

struct AccessControlList<'b, 'a>(&'b [Grant<'a>]);

impl XmlElement for AccessControlList<'_, '_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.children("Grant", self.0);
    }
}

impl XmlElement for AccessControlPolicy<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child("Owner", &self.owner)
            .child("AccessControlList", &AccessControlList(&self.grants));
    }
}

impl XmlDocument for AccessControlPolicy<'_> {
    fn root(&self) -> &'static str {
        "AccessControlPolicy"
    }
}

/// A PutBucketAcl / PutObjectAcl body: only what deciding "owner only"
/// needs is read.
#[derive(Debug, Deserialize)]
pub(crate) struct AccessControlPolicyDoc {
    #[serde(rename = "AccessControlList", default)]
    pub(crate) list: Option<AccessControlListDoc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AccessControlListDoc {
    #[serde(rename = "Grant", default)]
    pub(crate) grants: Vec<GrantDoc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GrantDoc {
    #[serde(rename = "Grantee")]
    pub(crate) grantee: GranteeDoc,
    #[serde(rename = "Permission")]
    pub(crate) permission: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GranteeDoc {
    #[serde(rename = "ID", default)]
    pub(crate) id: Option<String>,
    #[serde(rename = "URI", default)]
    pub(crate) uri: Option<String>,
    #[serde(rename = "EmailAddress", default)]
    pub(crate) email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::cairn_owner;
    use crate::xml::to_xml;

    #[test]
    fn owner_full_control() {
        let doc = AccessControlPolicy {
            owner: cairn_owner(),
            grants: vec![Grant {
                grantee: cairn_owner(),
                permission: "FULL_CONTROL".into(),
            }],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>cairn</ID><DisplayName>cairn</DisplayName></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>cairn</ID><DisplayName>cairn</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>"
        );
    }
}
