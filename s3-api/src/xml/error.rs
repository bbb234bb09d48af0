//! The `Error` document every failed request (but HEAD and 304) carries.

use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};

/// An S3 error: code, message, the error's own fields (`Key`,
/// `BucketName`, `Resource`, …, in the order given), request id and host
/// id. The only document without the S3 namespace, as S3 writes it.
#[derive(Debug)]
pub(crate) struct ErrorDocument<'a> {
    pub(crate) code: XmlText<'a>,
    pub(crate) message: XmlText<'a>,
    pub(crate) fields: Vec<(&'static str, XmlText<'a>)>,
    pub(crate) request_id: XmlText<'a>,
    pub(crate) host_id: XmlText<'a>,
}

impl XmlElement for ErrorDocument<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Code", &self.code).elem("Message", &self.message);
        for (name, value) in &self.fields {
            w.elem(name, value);
        }
        w.elem("RequestId", &self.request_id)
            .elem("HostId", &self.host_id);
    }
}

impl XmlDocument for ErrorDocument<'_> {
    fn root(&self) -> &'static str {
        "Error"
    }

    fn namespaced(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::KEY;
    use crate::xml::to_xml;

    #[test]
    fn error_with_fields() {
        let doc = ErrorDocument {
            code: "NoSuchKey".into(),
            message: "The specified key does not exist.".into(),
            fields: vec![("Key", KEY.into()), ("Resource", "/bkt/a&b".into())],
            request_id: "0123456789ABCDEF".into(),
            host_id: "aG9zdA+/=".into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><Resource>/bkt/a&amp;b</Resource><RequestId>0123456789ABCDEF</RequestId><HostId>aG9zdA+/=</HostId></Error>"
        );
    }

    #[test]
    fn error_without_fields() {
        let doc = ErrorDocument {
            code: "InternalError".into(),
            message: "We encountered an internal error. Please try again.".into(),
            fields: vec![],
            request_id: "0123456789ABCDEF".into(),
            host_id: "aG9zdA+/=".into(),
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>0123456789ABCDEF</RequestId><HostId>aG9zdA+/=</HostId></Error>"
        );
    }
}
