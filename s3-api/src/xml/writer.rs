//! The one way response XML is written: [`XmlText`] (S3's escaping rules),
//! the text values and elements a document is made of, and [`to_xml`].
//!
//! Owns: escaping, the XML declaration, the root element and its namespace.
//! Must never: write unescaped text from a string (every string reaches the
//! output through [`XmlText`]), or know what any document means.
//!
//! Why not serde: quick-xml's serializer writes control characters raw,
//! while S3 (and so Cairn) writes them as character references (`&#x1;`,
//! `&#xD;`), which XML 1.0 needs for a key holding them to survive parsing.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The namespace of every S3 response document except `Error`.
pub(crate) const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// The namespace that `xsi:type` (an ACL grantee's kind) belongs to.
pub(crate) const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Escapes text for element content. Besides the five XML specials, control
/// characters (legal in S3 keys, illegal raw in XML 1.0) become numeric
/// character references, as S3 does.
pub(crate) fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n') => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Text content of an element, written with S3's escaping ([`escape`]).
/// Borrowed or owned, so a document can point at what the handler holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct XmlText<'a>(Cow<'a, str>);

impl<'a> From<&'a str> for XmlText<'a> {
    fn from(s: &'a str) -> Self {
        XmlText(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a String> for XmlText<'a> {
    fn from(s: &'a String) -> Self {
        XmlText(Cow::Borrowed(s.as_str()))
    }
}

impl From<String> for XmlText<'static> {
    fn from(s: String) -> Self {
        XmlText(Cow::Owned(s))
    }
}

/// An object's ETag as documents write it: the engine's bare digest in
/// quotes, escaped like any text (`&quot;…&quot;`), with no quoted copy
/// made per listed key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuotedEtag<'a>(pub(crate) &'a str);

impl XmlValue for QuotedEtag<'_> {
    fn write_value(&self, out: &mut String) {
        escape("\"", out);
        escape(self.0, out);
        escape("\"", out);
    }
}

/// What can be an element's text: [`XmlText`], numbers and booleans.
pub(crate) trait XmlValue {
    fn write_value(&self, out: &mut String);
}

impl XmlValue for XmlText<'_> {
    fn write_value(&self, out: &mut String) {
        escape(&self.0, out);
    }
}

impl XmlValue for bool {
    fn write_value(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! decimal_values {
    ($($t:ty),*) => {$(
        impl XmlValue for $t {
            fn write_value(&self, out: &mut String) {
                // Writing to a String cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
decimal_values!(u32, u64, usize);

/// An element's content (its children, or its text), in document order.
pub(crate) trait XmlElement {
    fn write_content(&self, w: &mut ElementWriter);
}

/// A whole response document: its root element's name, and whether the
/// root carries the S3 namespace (every document but `Error` does).
pub(crate) trait XmlDocument: XmlElement {
    fn root(&self) -> &'static str;
    fn namespaced(&self) -> bool {
        true
    }
}

/// Writes a response document: the XML declaration, then the root element.
pub(crate) fn to_xml(doc: &impl XmlDocument) -> String {
    let mut w = ElementWriter {
        out: String::with_capacity(512),
    };
    w.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    w.out.push_str(doc.root());
    if doc.namespaced() {
        w.out.push_str(" xmlns=\"");
        w.out.push_str(S3_XMLNS);
        w.out.push('"');
    }
    w.out.push('>');
    doc.write_content(&mut w);
    w.end_tag(doc.root());
    w.out
}

/// The output of [`to_xml`], handed to each element in turn. Element names
/// are the documents' constants, written as given; text goes through
/// [`XmlValue`].
#[derive(Debug)]
pub(crate) struct ElementWriter {
    out: String,
}

impl ElementWriter {
    fn start_tag(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    fn end_tag(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>value</name>`.
    pub(crate) fn elem(&mut self, name: &str, value: &impl XmlValue) -> &mut Self {
        self.start_tag(name);
        value.write_value(&mut self.out);
        self.end_tag(name);
        self
    }

    /// `<name>value</name>`, or nothing.
    pub(crate) fn opt_elem(&mut self, name: &str, value: &Option<impl XmlValue>) -> &mut Self {
        if let Some(v) = value {
            self.elem(name, v);
        }
        self
    }

    /// `<{prefix}{suffix}>value</{prefix}{suffix}>`: an element whose name
    /// is made of two parts (`ChecksumCRC32`).
    pub(crate) fn elem_joined(
        &mut self,
        prefix: &str,
        suffix: &str,
        value: &impl XmlValue,
    ) -> &mut Self {
        for close in [false, true] {
            self.out.push_str(if close { "</" } else { "<" });
            self.out.push_str(prefix);
            self.out.push_str(suffix);
            self.out.push('>');
            if !close {
                value.write_value(&mut self.out);
            }
        }
        self
    }

    /// The element's own text (a root that is only text).
    pub(crate) fn text(&mut self, value: &impl XmlValue) -> &mut Self {
        value.write_value(&mut self.out);
        self
    }

    /// `<name>…</name>` around a child's content.
    pub(crate) fn child(&mut self, name: &str, child: &impl XmlElement) -> &mut Self {
        self.start_tag(name);
        child.write_content(self);
        self.end_tag(name);
        self
    }

    /// The child, or nothing.
    pub(crate) fn opt_child(&mut self, name: &str, child: &Option<impl XmlElement>) -> &mut Self {
        if let Some(c) = child {
            self.child(name, c);
        }
        self
    }

    /// One `<name>` element per item, in order.
    pub(crate) fn children(&mut self, name: &str, items: &[impl XmlElement]) -> &mut Self {
        for item in items {
            self.child(name, item);
        }
        self
    }

    /// A child whose start tag carries attributes (`name="value"`, values
    /// escaped like text).
    pub(crate) fn child_with_attributes(
        &mut self,
        name: &str,
        attributes: &[(&str, &str)],
        child: &impl XmlElement,
    ) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        for (attr, value) in attributes {
            self.out.push(' ');
            self.out.push_str(attr);
            self.out.push_str("=\"");
            escape(value, &mut self.out);
            self.out.push('"');
        }
        self.out.push('>');
        child.write_content(self);
        self.end_tag(name);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Doc<'a> {
        a: XmlText<'a>,
        b: Option<u64>,
        c: Vec<Inner>,
        flag: bool,
    }

    struct Inner(u32);

    impl XmlElement for Inner {
        fn write_content(&self, w: &mut ElementWriter) {
            w.elem("D", &self.0)
                .elem_joined("Checksum", "CRC32", &XmlText::from("x"));
        }
    }

    impl XmlElement for Doc<'_> {
        fn write_content(&self, w: &mut ElementWriter) {
            w.elem("A", &self.a)
                .opt_elem("B", &self.b)
                .children("C", &self.c)
                .elem("F", &self.flag);
        }
    }

    impl XmlDocument for Doc<'_> {
        fn root(&self) -> &'static str {
            "R"
        }
    }

    #[test]
    fn escapes_specials_and_controls() {
        let mut s = String::new();
        escape("a<b>&\"c'\u{1}é\r\t\n", &mut s);
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;c&apos;&#x1;é&#xD;\t\n");
    }

    #[test]
    fn writes_documents() {
        let doc = Doc {
            a: "x&y".into(),
            b: None,
            c: vec![Inner(1), Inner(2)],
            flag: false,
        };
        assert_eq!(
            to_xml(&doc),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"{S3_XMLNS}\"><A>x&amp;y</A><C><D>1</D><ChecksumCRC32>x</ChecksumCRC32></C><C><D>2</D><ChecksumCRC32>x</ChecksumCRC32></C><F>false</F></R>"
            )
        );
    }
}
