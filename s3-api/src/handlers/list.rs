//! ListObjects (V1), ListObjectsV2, ListObjectVersions and
//! ListMultipartUploads.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cairn_storage_engine::{ListQuery, UploadId, VersionListQuery};
use http::{Response, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3Result};
use crate::headers::{iso8601, parse_version_id};
use crate::response::{RespBody, xml_response};
use crate::xml::{
    CommonPrefix, DeleteMarkerEntry, ListBucketResultV1, ListBucketResultV2,
    ListMultipartUploadsResult, ListSettings, ListVersionsResult, ObjectEntry, QuotedEtag,
    UploadEntry, VersionEntry, VersionListEntry, XmlText, to_xml,
};

/// The one storage class Cairn has.
const STORAGE_CLASS: &str = "STANDARD";

/// S3's cap on keys per page.
const MAX_KEYS_LIMIT: usize = 1000;

/// `encoding-type=url`: everything but unreserved characters and `/`.
const URL_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

struct Encoder {
    url: bool,
}

impl Encoder {
    fn from_query(ctx: &RequestCtx) -> S3Result<Self> {
        match ctx.query.get("encoding-type") {
            None => Ok(Encoder { url: false }),
            Some(v) if v.eq_ignore_ascii_case("url") => Ok(Encoder { url: true }),
            Some(v) => Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
                "encoding-type",
                v,
            )),
        }
    }

    /// `EncodingType`, present when the listing is URL-encoded.
    fn encoding_type(&self) -> Option<XmlText<'static>> {
        self.url.then(|| "url".into())
    }

    /// `s` as the listing writes it: percent-encoded, or borrowed as it is.
    fn enc<'a>(&self, s: &'a str) -> XmlText<'a> {
        if self.url {
            utf8_percent_encode(s, URL_ENCODE_SET).to_string().into()
        } else {
            s.into()
        }
    }
}

fn max_param(ctx: &RequestCtx, name: &str) -> S3Result<usize> {
    match ctx.query.get(name) {
        None => Ok(MAX_KEYS_LIMIT),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as u64).min(MAX_KEYS_LIMIT as u64) as usize)
            .ok_or_else(|| {
                S3Error::invalid_argument(
                    format!("Provided {name} not an integer or within integer range"),
                    name,
                    v,
                )
            }),
    }
}

pub(crate) fn encode_token(marker: &str) -> String {
    URL_SAFE_NO_PAD.encode(marker.as_bytes())
}

pub(crate) fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "The continuation token provided is incorrect",
                "continuation-token",
                token,
            )
        })
}

pub(crate) async fn list_objects(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
    v2: bool,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let enc = Encoder::from_query(ctx)?;
    let prefix = ctx.query.get("prefix").unwrap_or("").to_owned();
    let delimiter = ctx
        .query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let max_keys = max_param(ctx, "max-keys")?;
    let continuation = ctx.query.get("continuation-token");
    let start_after = if v2 {
        match continuation {
            Some(t) => Some(decode_token(t)?),
            None => ctx
                .query
                .get("start-after")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        }
    } else {
        ctx.query
            .get("marker")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let page = svc
        .engine
        .list_objects(
            bucket,
            ListQuery {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                start_after,
                max_keys,
            },
        )
        .await?;
    let fetch_owner = !v2 || ctx.query.get("fetch-owner") == Some("true");
    let owner = if fetch_owner {
        Some(super::bucket_owner(svc, bucket)?)
    } else {
        None
    };

    let settings = list_settings(max_keys, delimiter.as_deref(), &enc, page.is_truncated);
    let contents = page
        .objects
        .iter()
        .map(|o| ObjectEntry {
            key: enc.enc(&o.key),
            last_modified: iso8601(o.version.last_modified_ms).into(),
            etag: QuotedEtag(&o.version.etag),
            size: o.version.size,
            owner: owner.clone(),
            storage_class: STORAGE_CLASS.into(),
        })
        .collect();
    let common_prefixes = common_prefixes(&page.common_prefixes, &enc);
    let xml = if v2 {
        to_xml(&ListBucketResultV2 {
            name: bucket.into(),
            prefix: enc.enc(&prefix),
            continuation_token: continuation.map(Into::into),
            start_after: ctx.query.get("start-after").map(|s| enc.enc(s)),
            key_count: page.objects.len() + page.common_prefixes.len(),
            next_continuation_token: page
                .last_returned
                .as_deref()
                .filter(|_| page.is_truncated)
                .map(|last| encode_token(last).into()),
            settings,
            contents,
            common_prefixes,
        })
    } else {
        to_xml(&ListBucketResultV1 {
            name: bucket.into(),
            prefix: enc.enc(&prefix),
            marker: enc.enc(ctx.query.get("marker").unwrap_or("")),
            next_marker: page
                .last_returned
                .as_deref()
                .filter(|_| page.is_truncated && delimiter.is_some())
                .map(|last| enc.enc(last)),
            settings,
            contents,
            common_prefixes,
        })
    };
    xml_response(StatusCode::OK, xml)
}

/// ListObjectVersions: every version and delete marker, key by key in
/// UTF-8 order, each key's newest first, from the engine's listing (a page
/// costs what it returns).
pub(crate) async fn list_object_versions(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let enc = Encoder::from_query(ctx)?;
    let prefix = ctx.query.get("prefix").unwrap_or("").to_owned();
    let delimiter = ctx
        .query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let max_keys = max_param(ctx, "max-keys")?;
    let key_marker = ctx.query.get("key-marker").filter(|s| !s.is_empty());
    let version_id_marker = ctx.query.get("version-id-marker").filter(|s| !s.is_empty());
    if let Some(v) = version_id_marker
        && key_marker.is_none()
    {
        return Err(S3Error::invalid_argument(
            "A version-id marker cannot be specified without a key marker.",
            "version-id-marker",
            v,
        ));
    }
    let version_ref = parse_version_id(version_id_marker, "version-id-marker")?;
    let page = svc
        .engine
        .list_versions(
            bucket,
            VersionListQuery {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                key_marker: key_marker.map(str::to_owned),
                version_id_marker: version_ref,
                max_keys,
            },
        )
        .await?;
    let owner = super::bucket_owner(svc, bucket)?;
    let doc = ListVersionsResult {
        name: bucket.into(),
        prefix: enc.enc(&prefix),
        key_marker: enc.enc(key_marker.unwrap_or("")),
        version_id_marker: version_id_marker.unwrap_or("").into(),
        next_key_marker: page.next_key_marker.as_deref().map(|k| enc.enc(k)),
        next_version_id_marker: page.next_version_id_marker.as_deref().map(XmlText::from),
        settings: list_settings(max_keys, delimiter.as_deref(), &enc, page.is_truncated),
        entries: page
            .versions
            .iter()
            .map(|v| {
                let (key, version_id, last_modified) = (
                    enc.enc(&v.key),
                    XmlText::from(v.version.public_id()),
                    iso8601(v.version.last_modified_ms).into(),
                );
                if v.version.delete_marker {
                    VersionListEntry::DeleteMarker(DeleteMarkerEntry {
                        key,
                        version_id,
                        is_latest: v.is_latest,
                        last_modified,
                        owner: owner.clone(),
                    })
                } else {
                    VersionListEntry::Version(VersionEntry {
                        key,
                        version_id,
                        is_latest: v.is_latest,
                        last_modified,
                        etag: QuotedEtag(&v.version.etag),
                        size: v.version.size,
                        owner: owner.clone(),
                        storage_class: STORAGE_CLASS.into(),
                    })
                }
            })
            .collect(),
        common_prefixes: common_prefixes(&page.common_prefixes, &enc),
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}

pub(crate) async fn list_multipart_uploads(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?;
    let enc = Encoder::from_query(ctx)?;
    let prefix = ctx.query.get("prefix").unwrap_or("").to_owned();
    let delimiter = ctx
        .query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let max_uploads = max_param(ctx, "max-uploads")?;
    let key_marker = ctx
        .query
        .get("key-marker")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    // An upload-id-marker is only meaningful with a key-marker; an id we
    // never issued cannot match any upload, so it just means "after this key".
    let upload_id_marker = key_marker
        .as_ref()
        .and_then(|_| ctx.query.get("upload-id-marker"))
        .and_then(UploadId::from_hex);
    let page = svc
        .engine
        .list_uploads(
            bucket,
            prefix.clone(),
            delimiter.clone(),
            key_marker.clone(),
            upload_id_marker,
            max_uploads,
        )
        .await?;
    let owner = super::bucket_owner(svc, bucket)?;
    let doc = ListMultipartUploadsResult {
        bucket: bucket.into(),
        key_marker: enc.enc(key_marker.as_deref().unwrap_or("")),
        upload_id_marker: ctx.query.get("upload-id-marker").unwrap_or("").into(),
        next_key_marker: page
            .is_truncated
            .then(|| enc.enc(page.next_key_marker.as_deref().unwrap_or(""))),
        next_upload_id_marker: page.is_truncated.then(|| {
            page.next_upload_id_marker
                .map(|u| u.to_hex())
                .unwrap_or_default()
                .into()
        }),
        delimiter: delimiter.as_deref().map(|d| enc.enc(d)),
        prefix: enc.enc(&prefix),
        max_uploads,
        encoding_type: enc.encoding_type(),
        is_truncated: page.is_truncated,
        uploads: page
            .uploads
            .iter()
            .map(|u| UploadEntry {
                key: enc.enc(&u.key),
                upload_id: u.upload_id.to_hex().into(),
                initiator: owner.clone(),
                owner: owner.clone(),
                storage_class: STORAGE_CLASS.into(),
                initiated: iso8601(u.created_ms).into(),
            })
            .collect(),
        common_prefixes: common_prefixes(&page.common_prefixes, &enc),
    };
    xml_response(StatusCode::OK, to_xml(&doc))
}

/// `MaxKeys`, `Delimiter`, `EncodingType` and `IsTruncated`, shared by the
/// object and version listings.
fn list_settings<'a>(
    max_keys: usize,
    delimiter: Option<&'a str>,
    enc: &Encoder,
    is_truncated: bool,
) -> ListSettings<'a> {
    ListSettings {
        max_keys,
        delimiter: delimiter.map(|d| enc.enc(d)),
        encoding_type: enc.encoding_type(),
        is_truncated,
    }
}

fn common_prefixes<'a>(prefixes: &'a [String], enc: &Encoder) -> Vec<CommonPrefix<'a>> {
    prefixes
        .iter()
        .map(|p| CommonPrefix { prefix: enc.enc(p) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for m in ["", "a/b c", "é+&", "dir/"] {
            assert_eq!(decode_token(&encode_token(m)).unwrap(), m);
        }
        assert!(decode_token("!!!").is_err());
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        let e = Encoder { url: true };
        assert_eq!(e.enc("a b/c+d&é"), XmlText::from("a%20b/c%2Bd%26%C3%A9"));
    }
}
