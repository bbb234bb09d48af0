//! S3 XML: one type per document Cairn writes or reads, grouped by resource
//! family (buckets, bucket configurations, ACLs, tagging, listings,
//! multipart uploads, objects, errors), and [`parse`] for request bodies.
//!
//! Owns: the shape of every S3 XML document — element names, their order
//! and nesting, which ones may be absent — and S3's escaping rules, kept in
//! one place: [`XmlText`] (writer.rs). Each response document is a struct
//! with a golden test of its exact bytes; request documents are serde
//! `Deserialize` structs beside their responses.
//!
//! Must never: call the engine, look at a request, or decide S3 semantics
//! (which elements a response carries, what a value means, how a key is
//! encoded): handlers fill the structs and this module only writes what they
//! hold. Request documents are size-limited by the caller before [`parse`].

mod acl;
mod bucket;
mod config;
mod error;
mod list;
mod tagging;
mod writer;

pub(crate) use acl::*;
pub(crate) use bucket::*;
pub(crate) use config::*;
pub(crate) use error::*;
pub(crate) use list::*;
pub(crate) use tagging::*;
pub use writer::{S3_XMLNS, escape};
pub(crate) use writer::{XmlText, to_xml};

use serde::Deserialize;
use writer::{ElementWriter, XmlElement};

/// An owner (or initiator) as S3 names one: `<ID>` and `<DisplayName>`.
#[derive(Clone, Debug)]
pub(crate) struct Owner<'a> {
    pub(crate) id: XmlText<'a>,
    pub(crate) display_name: XmlText<'a>,
}

impl XmlElement for Owner<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("ID", &self.id)
            .elem("DisplayName", &self.display_name);
    }
}

/// Builds an XML document element by element (being replaced by the typed
/// documents; see writer.rs).
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// Starts a document whose root carries the S3 namespace.
    pub fn new(root: &str) -> Self {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        out.push_str(root);
        out.push_str(" xmlns=\"");
        out.push_str(S3_XMLNS);
        out.push_str("\">");
        XmlWriter { out }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        escape(text, &mut self.out);
        self.close(name)
    }

    pub fn opt_elem(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.elem(name, t);
        }
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// The one fixed owner of everything in a single-tenant deployment.
pub fn owner(w: &mut XmlWriter, tag: &str) {
    w.open(tag)
        .elem("ID", crate::OWNER_ID)
        .elem("DisplayName", crate::OWNER_DISPLAY_NAME)
        .close(tag);
}

/// Parses a request document; any failure is the caller's `MalformedXML`.
pub fn parse<'de, T: Deserialize<'de>>(body: &'de str) -> Result<T, quick_xml::DeError> {
    check_well_formed(body)?;
    quick_xml::de::from_str(body)
}

/// Checks that `body` is one well-formed XML document: exactly one root
/// element, matching end tags, and nothing but whitespace, comments or
/// processing instructions around the root. serde deserialisation alone
/// stops at the root's end tag and would accept trailing garbage.
fn check_well_formed(body: &str) -> Result<(), quick_xml::DeError> {
    use quick_xml::events::Event;
    let malformed = |what: &str| quick_xml::DeError::Custom(what.to_owned());
    let mut reader = quick_xml::Reader::from_str(body);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match reader.read_event()? {
            Event::Start(_) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Empty(_) if depth == 0 => roots += 1,
            Event::Text(t) if depth == 0 && !t.clone().into_inner().trim().is_empty() => {
                return Err(malformed("text outside the root element"));
            }
            Event::CData(_) if depth == 0 => {
                return Err(malformed("CDATA outside the root element"));
            }
            Event::Eof => break,
            _ => {}
        }
        if roots > 1 {
            return Err(malformed("more than one root element"));
        }
    }
    if depth != 0 || roots != 1 {
        return Err(malformed("document is not one complete element"));
    }
    Ok(())
}

// ---- request documents ---------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct CompleteMultipartUploadDoc {
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletedPartDoc>,
}

#[derive(Debug, Deserialize)]
pub struct CompletedPartDoc {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "ChecksumCRC32", default)]
    pub checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C", default)]
    pub checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME", default)]
    pub checksum_crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1", default)]
    pub checksum_sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256", default)]
    pub checksum_sha256: Option<String>,
}

impl CompletedPartDoc {
    /// The part checksums the client listed: (algorithm SDK name, value).
    pub fn checksums(&self) -> Vec<(&'static str, &str)> {
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

#[derive(Debug, Deserialize)]
pub struct DeleteDoc {
    #[serde(rename = "Quiet", default)]
    pub quiet: Option<bool>,
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteObjectDoc>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteObjectDoc {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key that needs every escape: the five specials, a control
    /// character (U+0001) and a carriage return (both as character
    /// references), a tab (kept), a slash and a non-ASCII letter.
    pub(super) const KEY: &str = "a&b<c>\"d'e\u{1}f\r\tg/é";
    /// [`KEY`] as `encoding-type=url` writes it.
    pub(super) const KEY_URL: &str = "a%26b%3Cc%3E%22d%27e%01f%0D%09g/%C3%A9";

    pub(super) fn cairn_owner() -> Owner<'static> {
        Owner {
            id: crate::OWNER_ID.into(),
            display_name: crate::OWNER_DISPLAY_NAME.into(),
        }
    }

    #[test]
    fn writer_builds_documents() {
        let mut w = XmlWriter::new("R");
        w.elem("A", "x&y")
            .opt_elem("B", None)
            .open("C")
            .elem("D", "1")
            .close("C");
        assert_eq!(
            w.finish("R"),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"{S3_XMLNS}\"><A>x&amp;y</A><C><D>1</D></C></R>"
            )
        );
    }

    #[test]
    fn parses_complete_and_delete_documents() {
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

        let del: DeleteDoc = parse(
            "<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key><VersionId>null</VersionId></Object></Delete>",
        )
        .unwrap();
        assert_eq!(del.quiet, Some(true));
        assert_eq!(del.objects[0].key, "a&b");
        assert_eq!(del.objects[1].version_id.as_deref(), Some("null"));

        assert!(parse::<DeleteDoc>("<Delete><Object>").is_err());
        assert!(parse::<CompleteMultipartUploadDoc>("not xml").is_err());
    }

    #[test]
    fn rejects_documents_that_are_not_one_element() {
        let ok = "<?xml version=\"1.0\"?>\n<Delete><Object><Key>k</Key></Object></Delete>\n";
        assert!(parse::<DeleteDoc>(ok).is_ok());
        for bad in [
            "<Delete><Object><Key>k</Key></Object></Delete><trailing>",
            "<Delete><Object><Key>k</Key></Object></Delete>junk",
            "<Delete><Object><Key>k</Key></Object></Delete><Delete/>",
            "<Delete><Object><Key>k</Key></Object></Wrong>",
            "",
        ] {
            assert!(parse::<DeleteDoc>(bad).is_err(), "{bad:?}");
        }
    }
}
