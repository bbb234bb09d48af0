//! Listing objects and multipart uploads in UTF-8 byte order, with prefix,
//! delimiter and a start-after marker. A page costs in proportion to what it
//! returns: each common prefix is one seek past all keys under it — plus,
//! in a versioned bucket, the keys whose current version is a delete
//! marker, which are stepped over (as S3, whose listings slow down the same
//! way with many markers).

use crate::engine::{Engine, blocking};
use crate::error::{CodecError, EngineError, EngineResult};
use crate::meta::{CF_OBJECTS, CF_UPLOAD_INDEX, UploadId, Uploads, prefix_successor};
use crate::meta_command::MetaCf;
use crate::records::ObjectVersion;

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Return only keys (and common prefixes) strictly greater than this.
    /// A common prefix returned on an earlier page works too: everything
    /// under it is skipped.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Clone, Debug)]
pub struct ListedObject {
    pub key: String,
    pub version: ObjectVersion,
}

/// One page of a listing, entries and common prefixes each in order.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned (the marker for the next page).
    pub last_returned: Option<String>,
}

/// One in-progress multipart upload.
#[derive(Clone, Debug)]
pub struct ListedUpload {
    pub key: String,
    pub upload_id: UploadId,
    pub created_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct UploadPage {
    pub uploads: Vec<ListedUpload>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<UploadId>,
}

fn key_str(bytes: &[u8]) -> EngineResult<&str> {
    std::str::from_utf8(bytes)
        .map_err(|_| EngineError::Codec(CodecError::InvalidUtf8("object key")))
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    let pos = rest.find(d)?;
    key.get(..prefix.len() + pos + d.len())
}

impl Engine {
    pub async fn list_objects(&self, bucket: &str, q: ListQuery) -> EngineResult<ListPage> {
        let b = self.inner.objects.bucket(bucket)?;
        let inner = self.inner.clone();
        blocking(move || {
            let mut page = ListPage::default();
            if q.max_keys == 0 {
                return Ok(page);
            }
            let base = b.id.to_be_bytes();
            let mut lower = base.to_vec();
            lower.extend_from_slice(q.prefix.as_bytes());
            let upper = prefix_successor(&lower);
            let mut it = inner.meta.range_iter(CF_OBJECTS, upper)?;
            match q.start_after.as_deref() {
                Some(m) if m >= q.prefix.as_str() => {
                    let mut k = base.to_vec();
                    k.extend_from_slice(m.as_bytes());
                    k.push(0);
                    it.seek(&k);
                }
                _ => it.seek(&lower),
            }
            let delimiter = q.delimiter.as_deref();
            let mut count = 0usize;
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let key = key_str(&k[8..])?;
                if let Some(cp) = common_prefix(key, &q.prefix, delimiter) {
                    // A key whose current version is a delete marker is
                    // not listed, and alone makes no common prefix.
                    let v = inner.meta.plain(MetaCf::Objects, k, v)?;
                    if ObjectVersion::decode_share(&v)?.delete_marker {
                        it.next();
                        continue;
                    }
                    let seen = q.start_after.as_deref().is_some_and(|m| cp <= m);
                    if !seen {
                        if count == q.max_keys {
                            page.is_truncated = true;
                            break;
                        }
                        page.common_prefixes.push(cp.to_owned());
                        page.last_returned = Some(cp.to_owned());
                        count += 1;
                    }
                    let mut skip = base.to_vec();
                    skip.extend_from_slice(cp.as_bytes());
                    match prefix_successor(&skip) {
                        Some(s) => it.seek(&s),
                        None => break,
                    }
                    continue;
                }
                let version = ObjectVersion::decode(&inner.meta.plain(MetaCf::Objects, k, v)?)?;
                if version.delete_marker {
                    it.next();
                    continue;
                }
                if count == q.max_keys {
                    page.is_truncated = true;
                    break;
                }
                page.objects.push(ListedObject {
                    key: key.to_owned(),
                    version,
                });
                page.last_returned = Some(key.to_owned());
                count += 1;
                it.next();
            }
            it.status()?;
            Ok(page)
        })
        .await
    }

    /// Lists in-progress uploads ordered by key, then upload id.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: String,
        delimiter: Option<String>,
        key_marker: Option<String>,
        upload_id_marker: Option<UploadId>,
        max_uploads: usize,
    ) -> EngineResult<UploadPage> {
        let b = self.inner.objects.bucket(bucket)?;
        let inner = self.inner.clone();
        blocking(move || {
            let mut page = UploadPage::default();
            if max_uploads == 0 {
                return Ok(page);
            }
            let base = b.id.to_be_bytes();
            let mut lower = base.to_vec();
            lower.extend_from_slice(prefix.as_bytes());
            let mut it = inner
                .meta
                .range_iter(CF_UPLOAD_INDEX, prefix_successor(&base))?;
            match key_marker.as_deref() {
                Some(m) if m >= prefix.as_str() => {
                    let mut k = base.to_vec();
                    k.extend_from_slice(m.as_bytes());
                    match upload_id_marker {
                        // Uploads of the marker key after the given id.
                        Some(id) => {
                            k.push(0);
                            k.extend_from_slice(&id.0);
                            k.push(0);
                        }
                        // Everything after the marker key.
                        None => k.push(1),
                    }
                    it.seek(&k);
                }
                _ => it.seek(&lower),
            }
            let mut count = 0usize;
            while let Some(k) = it.key() {
                if k.len() < 8 + 17 || !k[8..].starts_with(prefix.as_bytes()) {
                    break;
                }
                let key = key_str(&k[8..k.len() - 17])?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&k[k.len() - 16..]);
                if let Some(cp) = common_prefix(key, &prefix, delimiter.as_deref()) {
                    let seen = key_marker.as_deref().is_some_and(|m| cp <= m);
                    if !seen {
                        if count == max_uploads {
                            page.is_truncated = true;
                            break;
                        }
                        page.common_prefixes.push(cp.to_owned());
                        page.next_key_marker = Some(cp.to_owned());
                        page.next_upload_id_marker = None;
                        count += 1;
                    }
                    let mut skip = base.to_vec();
                    skip.extend_from_slice(cp.as_bytes());
                    match prefix_successor(&skip) {
                        Some(s) => it.seek(&s),
                        None => break,
                    }
                    continue;
                }
                if count == max_uploads {
                    page.is_truncated = true;
                    break;
                }
                let upload_id = UploadId(id);
                let created_ms = inner
                    .meta
                    .get::<Uploads>(upload_id)?
                    .map(|u| u.created_ms)
                    .unwrap_or(0);
                page.uploads.push(ListedUpload {
                    key: key.to_owned(),
                    upload_id,
                    created_ms,
                });
                page.next_key_marker = Some(key.to_owned());
                page.next_upload_id_marker = Some(upload_id);
                count += 1;
                it.next();
            }
            it.status()?;
            Ok(page)
        })
        .await
    }

    /// Ids of every upload in a bucket (used when deleting the bucket).
    pub(crate) async fn bucket_upload_ids(&self, bucket_id: u64) -> EngineResult<Vec<UploadId>> {
        let inner = self.inner.clone();
        blocking(move || {
            let base = bucket_id.to_be_bytes();
            let mut it = inner
                .meta
                .range_iter(CF_UPLOAD_INDEX, prefix_successor(&base))?;
            it.seek(base);
            let mut out = Vec::new();
            while let Some(k) = it.key() {
                if k.len() >= 8 + 17 {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(&k[k.len() - 16..]);
                    out.push(UploadId(id));
                }
                it.next();
            }
            it.status()?;
            Ok(out)
        })
        .await
    }

    /// Objects and their logical bytes in `bucket` (from its stored totals,
    /// one read), and its multipart uploads in progress (an index scan of
    /// the bucket's uploads): an admin query, not for request paths.
    pub async fn bucket_usage(&self, bucket: &str) -> EngineResult<BucketUsage> {
        let rec = self.inner.objects.bucket(bucket)?;
        let inner = self.inner.clone();
        let totals = blocking(move || inner.meta.bucket_totals(rec.id)).await?;
        Ok(BucketUsage {
            objects: u64::try_from(totals.objects).unwrap_or(0),
            logical_bytes: u64::try_from(totals.logical_bytes).unwrap_or(0),
            uploads_in_progress: self.bucket_upload_ids(rec.id).await?.len() as u64,
        })
    }
}

/// What one bucket holds (see [`Engine::bucket_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketUsage {
    pub objects: u64,
    /// Sum of object sizes as clients see them (before dedup/compression).
    pub logical_bytes: u64,
    pub uploads_in_progress: u64,
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "a/", None), None);
        assert_eq!(common_prefix("a--b--c", "", Some("--")), Some("a--"));
        assert_eq!(common_prefix("a/b", "", Some("")), None);
    }
}
