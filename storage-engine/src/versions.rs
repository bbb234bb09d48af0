//! Listing every version of a bucket's keys (S3's ListObjectVersions):
//! for each key in UTF-8 byte order, its current version (`objects`) and
//! then its noncurrent ones newest first (`versions`), with prefix,
//! delimiter and the key / version-id markers. A page costs in proportion
//! to what it returns: one seek per key into its history, one seek past
//! each common prefix. Must never change anything.

use std::ops::Bound;

use crate::engine::{Engine, blocking};
use crate::error::{CodecError, EngineError, EngineResult};
use crate::meta::{CF_OBJECTS, KeyRange, Versions, prefix_successor};
use crate::meta_command::MetaCf;
use crate::records::{ObjectVersion, VersionRef};

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct VersionListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Start after this key (all of its versions), or, with
    /// `version_id_marker`, after that version of it.
    pub key_marker: Option<String>,
    pub version_id_marker: Option<VersionRef>,
    pub max_keys: usize,
}

/// One listed version.
#[derive(Clone, Debug)]
pub struct ListedVersion {
    pub key: String,
    pub version: ObjectVersion,
    pub is_latest: bool,
}

/// One page: versions and common prefixes, each in order.
#[derive(Clone, Debug, Default)]
pub struct VersionPage {
    pub versions: Vec<ListedVersion>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// Where the next page starts (`NextKeyMarker`, `NextVersionIdMarker`):
    /// the last version or common prefix returned.
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}

/// Where in one key's versions a listing starts.
#[derive(Clone, Copy, Debug)]
enum StartIn {
    /// With the current version.
    Current,
    /// With the noncurrent versions older than this seq, or all of them.
    Noncurrent(Option<u64>),
}

/// Noncurrent versions read per step.
const HISTORY_PAGE: usize = 256;

fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    let pos = rest.find(d)?;
    key.get(..prefix.len() + pos + d.len())
}

/// Collects one page, counting every version and common prefix.
struct PageBuilder {
    page: VersionPage,
    max: usize,
}

impl PageBuilder {
    /// Adds a version, or reports `false` (and marks the page truncated)
    /// when the page is full.
    fn push(&mut self, key: &str, version: ObjectVersion, is_latest: bool) -> bool {
        if self.full() {
            return false;
        }
        self.page.next_key_marker = Some(key.to_owned());
        self.page.next_version_id_marker = Some(version.public_id());
        self.page.versions.push(ListedVersion {
            key: key.to_owned(),
            version,
            is_latest,
        });
        true
    }

    fn push_prefix(&mut self, cp: &str) -> bool {
        if self.full() {
            return false;
        }
        self.page.next_key_marker = Some(cp.to_owned());
        self.page.next_version_id_marker = None;
        self.page.common_prefixes.push(cp.to_owned());
        true
    }

    fn full(&mut self) -> bool {
        let full = self.page.versions.len() + self.page.common_prefixes.len() >= self.max;
        if full {
            self.page.is_truncated = true;
        }
        full
    }

    fn finish(mut self) -> VersionPage {
        if !self.page.is_truncated {
            self.page.next_key_marker = None;
            self.page.next_version_id_marker = None;
        }
        self.page
    }
}

impl Engine {
    /// One page of the bucket's versions and delete markers (see the
    /// module doc). `version_id_marker` without `key_marker` is the
    /// caller's error to refuse (S3: `InvalidArgument`).
    pub async fn list_versions(
        &self,
        bucket: &str,
        q: VersionListQuery,
    ) -> EngineResult<VersionPage> {
        let b = self.inner.objects.bucket(bucket)?;
        let inner = self.inner.clone();
        blocking(move || {
            let mut out = PageBuilder {
                page: VersionPage::default(),
                max: q.max_keys,
            };
            if q.max_keys == 0 {
                return Ok(out.finish());
            }
            let meta = &inner.meta;
            let delimiter = q.delimiter.as_deref();
            // Emits `key`'s versions from `start`; `false` once the page is full.
            let emit_key = |out: &mut PageBuilder,
                            key: &str,
                            current: ObjectVersion,
                            start: StartIn|
             -> EngineResult<bool> {
                let mut after = match start {
                    StartIn::Current => {
                        if !out.push(key, current, true) {
                            return Ok(false);
                        }
                        None
                    }
                    StartIn::Noncurrent(after) => after,
                };
                loop {
                    let prefix = Versions::key_prefix(b.id, key);
                    let end = prefix_successor(&prefix);
                    let start_key =
                        after.map(|seq| <Versions as crate::meta::Table>::key((b.id, key, seq)));
                    let range = KeyRange {
                        start: match &start_key {
                            Some(k) => Bound::Excluded(k.as_slice()),
                            None => Bound::Included(prefix.as_slice()),
                        },
                        end,
                    };
                    let rows = meta.page::<Versions>(range, HISTORY_PAGE)?;
                    let n = rows.len();
                    for ((bid, k, seq), v) in rows {
                        after = Some(seq);
                        // A key with U+0000 could share the prefix.
                        if bid != b.id || k != key {
                            continue;
                        }
                        if !out.push(key, v, false) {
                            return Ok(false);
                        }
                    }
                    if n < HISTORY_PAGE {
                        return Ok(true);
                    }
                }
            };

            let base = b.id.to_be_bytes();
            let mut lower = base.to_vec();
            lower.extend_from_slice(q.prefix.as_bytes());
            let upper = prefix_successor(&lower);
            let mut it = meta.range_iter(CF_OBJECTS, upper)?;
            let marker = q.key_marker.as_deref().filter(|m| *m >= q.prefix.as_str());
            match marker {
                Some(m) => {
                    // The rest of the marker key's own versions first.
                    if let Some(vm) = &q.version_id_marker
                        && m.starts_with(q.prefix.as_str())
                        && common_prefix(m, &q.prefix, delimiter).is_none()
                        && let Some(current) = meta.object(b.id, m)?
                    {
                        let start = if current.is_named_by(vm) {
                            Some(StartIn::Noncurrent(None))
                        } else {
                            match vm {
                                VersionRef::Id { seq, .. } => Some(StartIn::Noncurrent(Some(*seq))),
                                VersionRef::Null => inner
                                    .objects
                                    .noncurrent_null(b.id, m)?
                                    .map(|(v, _)| StartIn::Noncurrent(Some(v.seq))),
                            }
                        };
                        if let Some(start) = start
                            && !emit_key(&mut out, m, current, start)?
                        {
                            return Ok(out.finish());
                        }
                    }
                    let mut k = base.to_vec();
                    k.extend_from_slice(m.as_bytes());
                    k.push(0);
                    it.seek(&k);
                }
                None => it.seek(&lower),
            }
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let key = std::str::from_utf8(&k[8..])
                    .map_err(|_| EngineError::Codec(CodecError::InvalidUtf8("object key")))?
                    .to_owned();
                if let Some(cp) = common_prefix(&key, &q.prefix, delimiter) {
                    let seen = marker.is_some_and(|m| cp <= m);
                    if !seen && !out.push_prefix(cp) {
                        break;
                    }
                    let mut skip = base.to_vec();
                    skip.extend_from_slice(cp.as_bytes());
                    match prefix_successor(&skip) {
                        Some(s) => it.seek(&s),
                        None => break,
                    }
                    continue;
                }
                let current = ObjectVersion::decode(&meta.plain(MetaCf::Objects, k, v)?)?;
                if !emit_key(&mut out, &key, current, StartIn::Current)? {
                    break;
                }
                it.next();
            }
            it.status()?;
            Ok(out.finish())
        })
        .await
    }
}
