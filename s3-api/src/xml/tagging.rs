//! Tagging: the `<Tagging><TagSet>` document, answered by
//! GetObjectTagging / GetBucketTagging and read from PutObjectTagging /
//! PutBucketTagging bodies.

use serde::Deserialize;

use super::writer::{ElementWriter, XmlDocument, XmlElement, XmlText};

/// A tag set, in the order it was stored.
#[derive(Debug)]
pub(crate) struct Tagging<'a> {
    pub(crate) tags: Vec<Tag<'a>>,
}

#[derive(Debug)]
pub(crate) struct Tag<'a> {
    pub(crate) key: XmlText<'a>,
    pub(crate) value: XmlText<'a>,
}

impl XmlElement for Tag<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.elem("Key", &self.key).elem("Value", &self.value);
    }
}

struct TagSet<'b, 'a>(&'b [Tag<'a>]);

impl XmlElement for TagSet<'_, '_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.children("Tag", self.0);
    }
}

impl XmlElement for Tagging<'_> {
    fn write_content(&self, w: &mut ElementWriter) {
        w.child("TagSet", &TagSet(&self.tags));
    }
}

impl XmlDocument for Tagging<'_> {
    fn root(&self) -> &'static str {
        "Tagging"
    }
}

/// PutObjectTagging: `<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>`.
#[derive(Debug, Deserialize)]
pub(crate) struct TaggingDoc {
    #[serde(rename = "TagSet")]
    pub(crate) tag_set: TagSetDoc,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TagSetDoc {
    #[serde(rename = "Tag", default)]
    pub(crate) tags: Vec<TagDoc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TagDoc {
    #[serde(rename = "Key")]
    pub(crate) key: String,
    #[serde(rename = "Value")]
    pub(crate) value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tests::KEY;
    use crate::xml::writer::S3_XMLNS;
    use crate::xml::{parse, to_xml};

    #[test]
    fn tagging_empty() {
        assert_eq!(
            to_xml(&Tagging { tags: vec![] }),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet></TagSet></Tagging>"
        );
    }

    #[test]
    fn tagging_escapes_keys_and_values() {
        let doc = Tagging {
            tags: vec![
                Tag {
                    key: KEY.into(),
                    value: "v&<>".into(),
                },
                Tag {
                    key: "e".into(),
                    value: "".into(),
                },
            ],
        };
        assert_eq!(
            to_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x1;f&#xD;\tg/é</Key><Value>v&amp;&lt;&gt;</Value></Tag><Tag><Key>e</Key><Value></Value></Tag></TagSet></Tagging>"
        );
    }

    #[test]
    fn parses_tagging() {
        let doc: TaggingDoc = parse(&format!(
            "<Tagging xmlns=\"{S3_XMLNS}\"><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag><Tag><Key>e</Key><Value></Value></Tag><Tag><Key>f</Key><Value/></Tag></TagSet></Tagging>"
        ))
        .unwrap();
        let got: Vec<(&str, &str)> = doc
            .tag_set
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(got, vec![("a b", "1&2"), ("e", ""), ("f", "")]);
        let empty: TaggingDoc = parse("<Tagging><TagSet/></Tagging>").unwrap();
        assert!(empty.tag_set.tags.is_empty());
        for bad in [
            "<Tagging/>",
            "<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>",
            "<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
            "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet>",
        ] {
            assert!(parse::<TaggingDoc>(bad).is_err(), "{bad}");
        }
    }
}
