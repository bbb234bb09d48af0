//! S3 XML: one type per document Cairn writes or reads, grouped by resource
//! family (buckets, bucket configurations, ACLs, tagging, listings,
//! multipart uploads, objects, versioning, Object Lock, lifecycle,
//! errors), and [`parse`] for request bodies.
//!
//! Owns: the shape of every S3 XML document — element names, their order
//! and nesting, which ones may be absent — and S3's escaping rules, kept in
//! one place: [`XmlText`] (writer.rs). Each response document is a struct
//! with a golden test of its exact bytes; request documents are serde
//! `Deserialize` structs beside their responses. The versioning, Object
//! Lock and lifecycle request documents refuse elements S3 does not define
//! (`deny_unknown_fields`, so `MalformedXML`), as S3 validates bodies
//! against its schema; the older ones ignore them.
//!
//! Must never: call the engine, look at a request, or decide S3 semantics
//! (which elements a response carries, what a value means, how a key is
//! encoded): handlers fill the structs and this module only writes what they
//! hold. Request documents are size-limited by the caller before [`parse`].

mod access;
mod acl;
mod bucket;
mod config;
mod cors;
mod error;
mod lifecycle;
mod list;
mod lock;
mod multipart;
mod notification;
mod object;
mod tagging;
mod versioning;
mod writer;

pub(crate) use access::*;
pub(crate) use acl::*;
pub(crate) use bucket::*;
pub(crate) use config::*;
pub(crate) use cors::*;
pub(crate) use error::*;
#[allow(unused_imports)]
pub(crate) use lifecycle::*;
pub(crate) use list::*;
pub(crate) use lock::*;
pub(crate) use multipart::*;
pub(crate) use notification::*;
pub(crate) use object::*;
pub(crate) use tagging::*;
pub(crate) use versioning::*;
pub(crate) use writer::{QuotedEtag, XmlText, to_xml};

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

/// One checksum of an object or part: an element named `Checksum` and the
/// algorithm (`<ChecksumCRC32>…</ChecksumCRC32>`).
#[derive(Clone, Debug)]
pub(crate) struct Checksum<'a> {
    /// The algorithm's SDK name (`CRC32`, `SHA256`, …).
    pub(crate) algorithm: &'a str,
    pub(crate) value: XmlText<'a>,
}

impl Checksum<'_> {
    /// Written in its parent's content, beside its siblings.
    fn write(&self, w: &mut ElementWriter) {
        w.elem_joined("Checksum", self.algorithm, &self.value);
    }
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
