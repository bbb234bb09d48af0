//! The CORS configuration document (PutBucketCors's body, GetBucketCors's
//! answer, and the form Cairn stores a bucket's rules in).

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::XmlText;
use super::writer::{ElementWriter, XmlDocument, XmlElement};

/// `<CORSConfiguration>` as a request sends it. Elements S3's schema does
/// not define are refused (`MalformedXML`), as S3 validates the body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CorsConfigurationDoc {
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<IgnoredAny>,
    #[serde(rename = "CORSRule", default)]
    pub(crate) rules: Vec<CorsRuleDoc>,
}

/// One `<CORSRule>`; the handler decides what is missing or invalid.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CorsRuleDoc {
    #[serde(rename = "ID", default)]
    pub(crate) id: Option<String>,
    #[serde(rename = "AllowedHeader", default)]
    pub(crate) allowed_headers: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    pub(crate) allowed_methods: Vec<String>,
    #[serde(rename = "AllowedOrigin", default)]
    pub(crate) allowed_origins: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    pub(crate) expose_headers: Vec<String>,
    /// Text, so that the handler answers a non-number as S3 does.
    #[serde(rename = "MaxAgeSeconds", default)]
    pub(crate) max_age_seconds: Option<String>,
}

/// GetBucketCors's answer: the rules, in order, each written `ID`,
/// `AllowedHeader`s, `AllowedMethod`s, `AllowedOrigin`s, `ExposeHeader`s,
/// `MaxAgeSeconds` (the order of S3's schema).
#[derive(Debug)]
pub(crate) struct CorsConfiguration<'a> {
    pub(crate) rules: Vec<CorsRule<'a>>,
}

#[derive(Debug)]
pub(crate) struct CorsRule<'a> {
    pub(crate) id: Option<XmlText<'a>>,
    pub(crate) allowed_headers: Vec<XmlText<'a>>,
    pub(crate) allowed_methods: Vec<XmlText<'a>>,
    pub(crate) allowed_origins: Vec<XmlText<'a>>,
    pub(crate) expose_headers: Vec<XmlText<'a>>,
    pub(crate) max_age_seconds: Option<u32>,
}

impl XmlElement for CorsRule<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.opt_elem("ID", &self.id);
        for (name, values) in [
            ("AllowedHeader", &self.allowed_headers),
            ("AllowedMethod", &self.allowed_methods),
            ("AllowedOrigin", &self.allowed_origins),
            ("ExposeHeader", &self.expose_headers),
        ] {
            for value in values {
                w.elem(name, value);
            }
        }
        w.opt_elem("MaxAgeSeconds", &self.max_age_seconds);
    }
}

impl XmlElement for CorsConfiguration<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.children("CORSRule", &self.rules);
    }
}

impl XmlDocument for CorsConfiguration<'_> {
    fn root(&self) -> &'static str {
        "CORSConfiguration"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::writer::S3_XMLNS;
    use crate::xml::{parse, to_xml};

    /// What boto3 sends for `put_bucket_cors` with two rules.
    #[test]
    fn parses_what_boto3_sends() {
        let doc: CorsConfigurationDoc = parse(&format!(
            "<CORSConfiguration xmlns=\"{S3_XMLNS}\"><CORSRule><ID>web</ID><AllowedHeader>*</AllowedHeader><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>"
        ))
        .unwrap();
        assert_eq!(doc.rules.len(), 2);
        let web = &doc.rules[0];
        assert_eq!(web.id.as_deref(), Some("web"));
        assert_eq!(web.allowed_headers, ["*"]);
        assert_eq!(web.allowed_methods, ["PUT", "GET"]);
        assert_eq!(web.allowed_origins, ["https://*.example.com"]);
        assert_eq!(web.expose_headers, ["ETag"]);
        assert_eq!(web.max_age_seconds.as_deref(), Some("3000"));
        let any = &doc.rules[1];
        assert!(any.id.is_none() && any.allowed_headers.is_empty());
        assert!(any.max_age_seconds.is_none());
    }

    #[test]
    fn refuses_unknown_elements() {
        let r: Result<CorsConfigurationDoc, _> = parse(
            "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><AllowedCredentials>true</AllowedCredentials></CORSRule></CORSConfiguration>",
        );
        assert!(r.is_err());
    }

    #[test]
    fn writes_the_rules() {
        let doc = CorsConfiguration {
            rules: vec![
                CorsRule {
                    id: Some("web".into()),
                    allowed_headers: vec!["x-amz-*".into()],
                    allowed_methods: vec!["PUT".into(), "GET".into()],
                    allowed_origins: vec!["https://app.example.com".into()],
                    expose_headers: vec!["ETag".into(), "x-amz-request-id".into()],
                    max_age_seconds: Some(600),
                },
                CorsRule {
                    id: None,
                    allowed_headers: vec![],
                    allowed_methods: vec!["GET".into()],
                    allowed_origins: vec!["*".into()],
                    expose_headers: vec![],
                    max_age_seconds: None,
                },
            ],
        };
        assert_eq!(
            to_xml(&doc),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CORSConfiguration xmlns=\"{S3_XMLNS}\"><CORSRule><ID>web</ID><AllowedHeader>x-amz-*</AllowedHeader><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedOrigin>https://app.example.com</AllowedOrigin><ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>"
            )
        );
    }
}
