//! ListObjects (V1), ListObjectsV2, ListObjectVersions and
//! ListMultipartUploads.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cairn_storage_engine::{ListQuery, UploadId};
use http::{Response, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{S3Error, S3Result};
use crate::headers::{iso8601, quoted_etag};
use crate::service::{RequestCtx, RespBody, ServiceInner, xml_response};
use crate::xml::{XmlWriter, owner};

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

    fn enc(&self, s: &str) -> String {
        if self.url {
            utf8_percent_encode(s, URL_ENCODE_SET).to_string()
        } else {
            s.to_owned()
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

    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", bucket).elem("Prefix", &enc.enc(&prefix));
    if v2 {
        if let Some(t) = continuation {
            w.elem("ContinuationToken", t);
        }
        if let Some(s) = ctx.query.get("start-after") {
            w.elem("StartAfter", &enc.enc(s));
        }
        w.elem(
            "KeyCount",
            &(page.objects.len() + page.common_prefixes.len()).to_string(),
        );
        if page.is_truncated
            && let Some(last) = &page.last_returned
        {
            w.elem("NextContinuationToken", &encode_token(last));
        }
    } else {
        w.elem("Marker", &enc.enc(ctx.query.get("marker").unwrap_or("")));
        if page.is_truncated
            && delimiter.is_some()
            && let Some(last) = &page.last_returned
        {
            w.elem("NextMarker", &enc.enc(last));
        }
    }
    page_settings(
        &mut w,
        max_keys,
        delimiter.as_deref(),
        &enc,
        page.is_truncated,
    );
    for o in &page.objects {
        w.open("Contents")
            .elem("Key", &enc.enc(&o.key))
            .elem("LastModified", &iso8601(o.version.last_modified_ms))
            .elem("ETag", &quoted_etag(&o.version.etag))
            .elem("Size", &o.version.size.to_string());
        if fetch_owner {
            owner(&mut w, "Owner");
        }
        w.elem("StorageClass", "STANDARD").close("Contents");
    }
    for p in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.enc(p))
            .close("CommonPrefixes");
    }
    xml_response(StatusCode::OK, w.finish("ListBucketResult"))
}

/// The one version id every object has while versioning does not exist.
const NULL_VERSION_ID: &str = "null";

/// ListObjectVersions without versioning: every object is one version,
/// `null`, and the latest; there are no delete markers. Pages come from the
/// same engine listing as ListObjects, so a page costs what it returns.
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
    if let Some(v) = version_id_marker {
        if key_marker.is_none() {
            return Err(S3Error::invalid_argument(
                "A version-id marker cannot be specified without a key marker.",
                "version-id-marker",
                v,
            ));
        }
        if v != NULL_VERSION_ID {
            return Err(S3Error::invalid_argument(
                "Invalid version id specified",
                "version-id-marker",
                v,
            ));
        }
    }
    // With one version per key, "after version null of K" and "after K"
    // are the same place.
    let page = svc
        .engine
        .list_objects(
            bucket,
            ListQuery {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                start_after: key_marker.map(str::to_owned),
                max_keys,
            },
        )
        .await?;

    let mut w = XmlWriter::new("ListVersionsResult");
    w.elem("Name", bucket)
        .elem("Prefix", &enc.enc(&prefix))
        .elem("KeyMarker", &enc.enc(key_marker.unwrap_or("")))
        .elem("VersionIdMarker", version_id_marker.unwrap_or(""));
    if page.is_truncated
        && let Some(last) = &page.last_returned
    {
        w.elem("NextKeyMarker", &enc.enc(last));
        // A common prefix has no version to continue after.
        let last_is_prefix = page.common_prefixes.last() == Some(last);
        if !last_is_prefix {
            w.elem("NextVersionIdMarker", NULL_VERSION_ID);
        }
    }
    page_settings(
        &mut w,
        max_keys,
        delimiter.as_deref(),
        &enc,
        page.is_truncated,
    );
    for o in &page.objects {
        w.open("Version")
            .elem("Key", &enc.enc(&o.key))
            .elem("VersionId", NULL_VERSION_ID)
            .elem("IsLatest", "true")
            .elem("LastModified", &iso8601(o.version.last_modified_ms))
            .elem("ETag", &quoted_etag(&o.version.etag))
            .elem("Size", &o.version.size.to_string());
        owner(&mut w, "Owner");
        w.elem("StorageClass", "STANDARD").close("Version");
    }
    for p in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.enc(p))
            .close("CommonPrefixes");
    }
    xml_response(StatusCode::OK, w.finish("ListVersionsResult"))
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
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", bucket)
        .elem("KeyMarker", &enc.enc(key_marker.as_deref().unwrap_or("")))
        .elem(
            "UploadIdMarker",
            ctx.query.get("upload-id-marker").unwrap_or(""),
        );
    if page.is_truncated {
        w.elem(
            "NextKeyMarker",
            &enc.enc(page.next_key_marker.as_deref().unwrap_or("")),
        )
        .elem(
            "NextUploadIdMarker",
            &page
                .next_upload_id_marker
                .map(|u| u.to_hex())
                .unwrap_or_default(),
        );
    }
    if let Some(d) = &delimiter {
        w.elem("Delimiter", &enc.enc(d));
    }
    w.elem("Prefix", &enc.enc(&prefix))
        .elem("MaxUploads", &max_uploads.to_string());
    if enc.url {
        w.elem("EncodingType", "url");
    }
    w.elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    for u in &page.uploads {
        w.open("Upload")
            .elem("Key", &enc.enc(&u.key))
            .elem("UploadId", &u.upload_id.to_hex());
        owner(&mut w, "Initiator");
        owner(&mut w, "Owner");
        w.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601(u.created_ms))
            .close("Upload");
    }
    for p in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.enc(p))
            .close("CommonPrefixes");
    }
    xml_response(StatusCode::OK, w.finish("ListMultipartUploadsResult"))
}

/// `MaxKeys`, `Delimiter`, `EncodingType` and `IsTruncated`, shared by the
/// object and version listings.
fn page_settings(
    w: &mut XmlWriter,
    max_keys: usize,
    delimiter: Option<&str>,
    enc: &Encoder,
    is_truncated: bool,
) {
    w.elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = delimiter {
        w.elem("Delimiter", &enc.enc(d));
    }
    if enc.url {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", if is_truncated { "true" } else { "false" });
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
        assert_eq!(e.enc("a b/c+d&é"), "a%20b/c%2Bd%26%C3%A9");
    }
}
