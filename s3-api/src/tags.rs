//! Object tags: S3's limits and character rules, and the two ways a tag set
//! arrives (the `x-amz-tagging` header, URL-query encoded, and the
//! `<Tagging>` document of PutObjectTagging). One validation for both, so a
//! tag set stored by PutObject is always one PutObjectTagging would accept.

use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// Tags per object.
pub const TAGS_PER_OBJECT_MAX: usize = 10;
/// S3's limit on tags per bucket.
pub const TAGS_PER_BUCKET_MAX: usize = 50;
/// Tag key length in Unicode characters.
pub const TAG_KEY_MAX_CHARS: usize = 128;
/// Tag value length in Unicode characters.
pub const TAG_VALUE_MAX_CHARS: usize = 256;

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, message)
}

/// Letters, digits and spaces in any script, and `+ - = . _ : / @`.
fn tag_char_ok(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

/// Checks a whole tag set against S3's rules: at most 10 tags, unique keys
/// of 1–128 characters not starting with `aws:`, values of 0–256
/// characters, both from the allowed character set.
pub fn validate_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > TAGS_PER_OBJECT_MAX {
        return Err(invalid(format!(
            "Object tags cannot be greater than {TAGS_PER_OBJECT_MAX}"
        )));
    }
    validate_tag_pairs(tags)
}

/// Bucket tag sets: the same rules with up to 50 tags.
pub fn validate_bucket_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > TAGS_PER_BUCKET_MAX {
        return Err(invalid(format!(
            "Bucket tags cannot be greater than {TAGS_PER_BUCKET_MAX}"
        )));
    }
    validate_tag_pairs(tags)
}

fn validate_tag_pairs(tags: &[(String, String)]) -> S3Result<()> {
    for (i, (key, value)) in tags.iter().enumerate() {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > TAG_KEY_MAX_CHARS || !key.chars().all(tag_char_ok) {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid("Your TagKey cannot be prefixed with aws:"));
        }
        if value.chars().count() > TAG_VALUE_MAX_CHARS || !value.chars().all(tag_char_ok) {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags[..i].iter().any(|(k, _)| k == key) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// Form-decodes one component of `x-amz-tagging` (`+` is a space, as in
/// HTML form encoding; a literal plus arrives as `%2B`).
fn form_decode(s: &str) -> S3Result<String> {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| invalid("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
}

/// Parses and validates `x-amz-tagging: k1=v1&k2=v2` (a key without `=` has
/// an empty value; an empty header is an empty tag set).
pub fn parse_tagging_header(raw: &str) -> S3Result<Vec<(String, String)>> {
    let mut tags = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        tags.push((form_decode(k)?, form_decode(v)?));
        // Stop early on hostile input; validation reports the count.
        if tags.len() > TAGS_PER_OBJECT_MAX {
            break;
        }
    }
    validate_tags(&tags)?;
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn header_is_form_decoded() {
        assert_eq!(
            parse_tagging_header("a=1&b+c=x%2By&empty=&bare").unwrap(),
            t(&[("a", "1"), ("b c", "x+y"), ("empty", ""), ("bare", "")])
        );
        assert_eq!(parse_tagging_header("").unwrap(), t(&[]));
        assert_eq!(
            parse_tagging_header("k%C3%A9=v%C3%A9").unwrap(),
            t(&[("ké", "vé")])
        );
    }

    #[test]
    fn limits_and_rules() {
        let ten: Vec<_> = (0..10).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(validate_tags(&ten).is_ok());
        let mut eleven = ten.clone();
        eleven.push(("k10".into(), "v".into()));
        let bad = |tags: &[(String, String)]| validate_tags(tags).unwrap_err().code;
        assert_eq!(bad(&eleven), S3ErrorCode::InvalidTag);
        assert!(validate_tags(&t(&[(&"k".repeat(128), &"v".repeat(256))])).is_ok());
        assert!(validate_tags(&t(&[("é".repeat(128).as_str(), "ü")])).is_ok());
        assert_eq!(bad(&t(&[(&"k".repeat(129), "v")])), S3ErrorCode::InvalidTag);
        assert_eq!(bad(&t(&[("k", &"v".repeat(257))])), S3ErrorCode::InvalidTag);
        assert_eq!(bad(&t(&[("", "v")])), S3ErrorCode::InvalidTag);
        assert_eq!(bad(&t(&[("a", "1"), ("a", "2")])), S3ErrorCode::InvalidTag);
        assert_eq!(bad(&t(&[("aws:x", "1")])), S3ErrorCode::InvalidTag);
        assert_eq!(bad(&t(&[("a", "semi;colon")])), S3ErrorCode::InvalidTag);
        assert!(validate_tags(&t(&[("Project Name", "a+b-c=d.e_f:g/h@i")])).is_ok());
        assert!(parse_tagging_header("a=1&a=2").is_err());
        assert!(parse_tagging_header("a=%FF").is_err());
    }
}
