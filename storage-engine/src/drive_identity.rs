//! Drive identity: which drive a directory is, and whether it still holds
//! what this server put there.
//!
//! Owns the drive marker file (`<drive>/cairn-drive`), the data directory's
//! identity (a random id in the node-local metadata), the check every local
//! drive goes through when the engine opens, and the state operators see
//! ([`DriveState`]). Remote drives (another cluster node's) are that node's
//! business and are not checked here.
//!
//! This module must never write to a drive whose marker names another data
//! directory or another drive index, nor overwrite a marker it cannot verify:
//! such a drive is *refused* (no appends, no segment removal) and reported.
//!
//! ## Marker file format (version 1)
//! `<drive>/cairn-drive`, UTF-8 text, exactly five lines, each `\n`-ended:
//! ```text
//! cairn-drive 1
//! data-dir <32 lowercase hex digits: the data directory's id>
//! index <the drive's index, decimal>
//! created-ms <unix ms when the marker was written, decimal>
//! mac <64 lowercase hex digits>
//! ```
//! `mac` is BLAKE3 in keyed mode over the bytes of the first four lines, with
//! a key derived from the data root key ([`MARKER_MAC_CONTEXT`]; the root is
//! the master key's bytes, or opened from the keyring with it — see
//! `cairn_crypto::keyring`): a marker cannot be edited, nor made for a
//! server whose master key one does not hold. It is
//! written atomically (temporary file, fsync, rename, fsync of the drive
//! directory). A marker of another version is refused, not rewritten.
//!
//! ## Metadata (column family `local`, never replicated)
//! * `data-dir-id`: 16 random bytes, made the first time a data directory is
//!   opened by a version that knows about markers;
//! * `drives-initialised`: format byte 1, then the index (u16 LE) of every
//!   local drive that was given a marker. A drive listed here that comes back
//!   without a marker and without segments was wiped or replaced; one not
//!   listed is new. Before this record exists (a data directory written by
//!   an older version) a drive without a marker that holds segments is
//!   adopted (its segments' headers must name its index);
//! * `drive-needs-heal/<index>`: present from the moment a replaced drive is
//!   found until a full scrub rebuilt every shard onto it;
//! * `drive-own-filesystem/<index>`: present while the drive's directory is
//!   a mount point (its device differs from its parent's), refreshed at
//!   every open that verifies the marker.
//!
//! ## Decision table when the engine opens
//! | marker                          | segments | known drive | state                |
//! |---------------------------------|----------|-------------|----------------------|
//! | ours, this index                | any      | -           | ok (or replaced while a heal is pending) |
//! | another data dir / index / bad  | any      | -           | foreign (refused)    |
//! | none                            | none     | yes, was on its own filesystem, is not now | missing (not mounted; refused) |
//! | none                            | none     | yes         | replaced → heal      |
//! | none                            | some     | yes         | foreign (refused)    |
//! | none                            | none     | no (new)    | ok, marker written   |
//! | none, before markers existed    | some     | -           | ok, marker written (upgrade) |
//! | none, before markers existed    | none     | -           | ok on a first start or an empty store, else replaced |
//!
//! A marker that must be written and cannot be (read-only or failing disk)
//! leaves the drive unused and faulty until a restart; the server starts.
//!
//! A disk that failed to mount leaves its mount point: an empty directory on
//! the filesystem below. Taking that for a replaced drive would rebuild a
//! whole disk's shards onto the root filesystem, so a known drive that was
//! on a filesystem of its own and comes back empty on its parent's is
//! reported missing and not written to until the disk is mounted again.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cairn_crypto::DataRootKey;

use crate::drive::ShardStore;
use crate::error::{EngineError, EngineResult};
use crate::meta::{Chunks, MetaStore};

/// The marker's file name inside a drive directory.
pub const MARKER_FILE: &str = "cairn-drive";
const MARKER_MAGIC: &str = "cairn-drive";
const MARKER_FORMAT_V1: u32 = 1;
/// Key derivation context of the marker MAC key (BLAKE3 `derive_key`).
pub const MARKER_MAC_CONTEXT: &str = "cairn 2026-12 drive marker MAC v1";

const LOCAL_DATA_DIR_ID: &str = "data-dir-id";
const LOCAL_DRIVES_INITIALISED: &str = "drives-initialised";
const DRIVES_INITIALISED_FORMAT_V1: u8 = 1;
const LOCAL_NEEDS_HEAL_PREFIX: &str = "drive-needs-heal/";
const LOCAL_OWN_FILESYSTEM_PREFIX: &str = "drive-own-filesystem/";

/// A data directory's identity: random, made once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataDirId(pub [u8; 16]);

impl DataDirId {
    fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// The key that signs markers (derived from the data root key).
pub(crate) struct MarkerKey([u8; 32]);

impl std::fmt::Debug for MarkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkerKey(..)")
    }
}

impl MarkerKey {
    pub(crate) fn derive(root: &DataRootKey) -> Self {
        MarkerKey(*root.derive(MARKER_MAC_CONTEXT).as_bytes())
    }

    fn mac(&self, signed: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.0, signed)
    }
}

/// What a marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DriveMarker {
    pub(crate) data_dir: DataDirId,
    pub(crate) index: u16,
    pub(crate) created_ms: u64,
}

impl DriveMarker {
    /// The marker file's bytes (see the module docs).
    pub(crate) fn encode(&self, key: &MarkerKey) -> String {
        let signed = format!(
            "{MARKER_MAGIC} {MARKER_FORMAT_V1}\ndata-dir {}\nindex {}\ncreated-ms {}\n",
            self.data_dir.to_hex(),
            self.index,
            self.created_ms
        );
        let mac = key.mac(signed.as_bytes());
        let text = format!("{signed}mac {}\n", mac.to_hex());
        debug_assert_eq!(DriveMarker::decode(&text, key), Ok(*self));
        text
    }

    /// Parses and verifies a marker file. Anything but a well-formed version
    /// 1 marker with a valid MAC is an error (the reason says what).
    pub(crate) fn decode(text: &str, key: &MarkerKey) -> Result<DriveMarker, String> {
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        if !text.ends_with('\n') || lines.len() != 5 {
            return Err("not a five-line marker".into());
        }
        let field = |line: &str, name: &str| -> Result<String, String> {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("expected a `{name}` line"))
        };
        let version = field(lines[0], MARKER_MAGIC)?;
        if version != MARKER_FORMAT_V1.to_string() {
            return Err(format!("unsupported marker format version {version:?}"));
        }
        let mac_hex = field(lines[4], "mac")?;
        let mac = blake3::Hash::from_hex(mac_hex.as_bytes()).map_err(|_| "malformed mac")?;
        let signed_len = text.len() - lines[4].len() - 1;
        // Constant-time comparison (blake3::Hash's PartialEq).
        if key.mac(&text.as_bytes()[..signed_len]) != mac {
            return Err(
                "it does not verify: made with another master key (another server's drive?) or edited".into(),
            );
        }
        let id_hex = field(lines[1], "data-dir")?;
        let mut id = [0u8; 16];
        hex::decode_to_slice(&id_hex, &mut id).map_err(|_| "malformed data-dir id")?;
        let index = field(lines[2], "index")?
            .parse::<u16>()
            .map_err(|_| "malformed index")?;
        let created_ms = field(lines[3], "created-ms")?
            .parse::<u64>()
            .map_err(|_| "malformed created-ms")?;
        Ok(DriveMarker {
            data_dir: DataDirId(id),
            index,
            created_ms,
        })
    }
}

fn marker_path(dir: &Path) -> PathBuf {
    dir.join(MARKER_FILE)
}

/// Reads a drive's marker file; `None` if it has none.
fn read_marker(dir: &Path) -> std::io::Result<Option<String>> {
    match fs::read(marker_path(dir)) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a marker atomically: temporary file, fsync, rename, fsync of the
/// directory.
fn write_marker(dir: &Path, marker: &DriveMarker, key: &MarkerKey) -> EngineResult<()> {
    let path = marker_path(dir);
    let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
    let io = |what: &str, e| EngineError::io(format!("{what} {}", path.display()), e);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io("creating the marker", e))?;
    file.write_all(marker.encode(key).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing the marker", e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io("renaming the marker", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory of the marker", e))
}

/// The state of one drive, as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveState {
    /// Its marker verified and nothing is pending.
    Ok,
    /// The directory is not there (removed while running, or it could not
    /// be created at start).
    Missing,
    /// It came back empty (wiped or a new disk in place of a known one):
    /// its shards are being rebuilt onto it (`healing`: a scrub runs, or
    /// the heal started at open is due), or will be by the next scrub.
    /// Reads are served from the other shards meanwhile.
    Replaced { healing: bool },
    /// It holds data that is not this server's, or this drive's, or that
    /// cannot be verified (`reason` says which): never written to.
    Foreign { reason: String },
    /// Writes or reads on it failed recently (skipped during a cool-down).
    Faulty,
}

impl DriveState {
    /// Every state's label, for the `cairn_drive_state` metric.
    pub const LABELS: [&'static str; 5] = ["ok", "missing", "replaced", "foreign", "faulty"];

    /// A one-word label: `ok`, `missing`, `replaced`, `foreign`, `faulty`.
    pub fn label(&self) -> &'static str {
        match self {
            DriveState::Ok => "ok",
            DriveState::Missing => "missing",
            DriveState::Replaced { .. } => "replaced",
            DriveState::Foreign { .. } => "foreign",
            DriveState::Faulty => "faulty",
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, DriveState::Ok)
    }
}

/// What the check at open found for one drive (the persistent part of its
/// [`DriveState`]; presence and faults are looked up live).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DriveIdentity {
    /// Another node's drive: not checked here.
    Remote,
    /// Marker verified (or just written on a first start, an upgrade or a
    /// new drive).
    Verified,
    /// Replaced: marker written, shards still to be rebuilt onto it.
    NeedsHeal,
    /// Not written to (the reason says why).
    Refused(String),
    /// The directory was not there and could not be created.
    Unavailable,
    /// The drive was on a filesystem of its own and is now an empty
    /// directory on its parent's: its disk is not mounted. Not written to.
    Unmounted,
    /// Its marker could not be written (read-only or failing disk): not
    /// used until a restart, reported faulty.
    Broken(String),
}

pub(crate) fn needs_heal_key(index: u16) -> String {
    format!("{LOCAL_NEEDS_HEAL_PREFIX}{index}")
}

fn own_filesystem_key(index: u16) -> String {
    format!("{LOCAL_OWN_FILESYSTEM_PREFIX}{index}")
}

/// Whether `dir` is a mount point: on another device than its parent.
/// `false` when either cannot be read (the caller then decides on what it
/// can read, the marker and the segments).
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(canonical) = fs::canonicalize(dir) else {
        return false;
    };
    let Some(parent) = canonical.parent() else {
        return true; // `/` itself
    };
    match (fs::metadata(&canonical), fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

fn decode_initialised(value: &[u8]) -> EngineResult<BTreeSet<u16>> {
    let corrupt = || EngineError::Corrupt("drives-initialised record is malformed".into());
    let (&format, rest) = value.split_first().ok_or_else(corrupt)?;
    if format != DRIVES_INITIALISED_FORMAT_V1 || rest.len() % 2 != 0 {
        return Err(corrupt());
    }
    Ok(rest
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect())
}

fn encode_initialised(set: &BTreeSet<u16>) -> Vec<u8> {
    let mut out = vec![DRIVES_INITIALISED_FORMAT_V1];
    for i in set {
        out.extend_from_slice(&i.to_le_bytes());
    }
    out
}

/// The data directory's id, made (and stored) on first use.
fn data_dir_id(meta: &MetaStore) -> EngineResult<DataDirId> {
    if let Some(v) = meta.local(LOCAL_DATA_DIR_ID)? {
        let id: [u8; 16] = v
            .as_slice()
            .try_into()
            .map_err(|_| EngineError::Corrupt("data-dir-id record is malformed".into()))?;
        return Ok(DataDirId(id));
    }
    let id = DataDirId(crate::random_bytes());
    meta.set_local(LOCAL_DATA_DIR_ID, Some(&id.0))?;
    Ok(id)
}

/// Whether the metadata names any chunk (the store has data to heal).
fn store_has_chunks(meta: &MetaStore) -> EngineResult<bool> {
    Ok(!meta.page_after::<Chunks>(None, 1)?.is_empty())
}

/// Checks every local drive's marker at open and returns each drive's
/// identity, in drive order (see the module docs for the rules). Writes
/// markers where the rules say so; never to a refused drive.
pub(crate) fn check_drives(
    meta: &MetaStore,
    key: &MarkerKey,
    drives: &[Arc<dyn ShardStore>],
    first_start: bool,
) -> EngineResult<Vec<DriveIdentity>> {
    let data_dir = data_dir_id(meta)?;
    let initialised = meta
        .local(LOCAL_DRIVES_INITIALISED)?
        .map(|v| decode_initialised(&v))
        .transpose()?;
    let mut now_initialised = initialised.clone().unwrap_or_default();
    let mut has_chunks: Option<bool> = None;
    let mut out = Vec::with_capacity(drives.len());
    for store in drives {
        let Some(dir) = store.local_dir() else {
            out.push(DriveIdentity::Remote);
            continue;
        };
        let index = store.index();
        let identity = if !store.present() {
            DriveIdentity::Unavailable
        } else {
            let mut ctx = CheckContext {
                meta,
                key,
                data_dir,
                first_start,
                initialised: initialised.as_ref(),
                has_chunks: &mut has_chunks,
            };
            ctx.check_one(store.as_ref(), dir, index)?
        };
        match &identity {
            DriveIdentity::Verified | DriveIdentity::NeedsHeal => {
                now_initialised.insert(index);
                record_filesystem(meta, dir, index)?;
            }
            DriveIdentity::Refused(reason) => {
                tracing::error!(drive = index, path = %dir.display(), reason = %reason, "drive refused: nothing will be written to it; see docs/operations.md, \"Drive identity and states\"");
                store.refuse(reason);
            }
            DriveIdentity::Unavailable => {
                tracing::error!(drive = index, path = %dir.display(), "drive directory is missing and could not be created");
            }
            DriveIdentity::Unmounted => {
                tracing::error!(drive = index, path = %dir.display(), "drive is not mounted: it was on a filesystem of its own and is now an empty directory on its parent's; mount its disk there and restart (nothing is written to it meanwhile)");
                store.refuse("its filesystem is not mounted");
            }
            DriveIdentity::Broken(reason) => {
                tracing::error!(drive = index, path = %dir.display(), error = %reason, "drive marker cannot be written: drive not used until a restart");
                store.refuse(reason);
            }
            DriveIdentity::Remote => {}
        }
        out.push(identity);
    }
    debug_assert_eq!(out.len(), drives.len(), "one identity per drive");
    if initialised.as_ref() != Some(&now_initialised) {
        meta.set_local(
            LOCAL_DRIVES_INITIALISED,
            Some(&encode_initialised(&now_initialised)),
        )?;
    }
    Ok(out)
}

struct CheckContext<'a> {
    meta: &'a MetaStore,
    key: &'a MarkerKey,
    data_dir: DataDirId,
    first_start: bool,
    /// `None`: no drive was ever given a marker (first start or upgrade).
    initialised: Option<&'a BTreeSet<u16>>,
    has_chunks: &'a mut Option<bool>,
}

/// Keeps `drive-own-filesystem/<index>` true to what `dir` is now (for a
/// drive whose marker is ours).
fn record_filesystem(meta: &MetaStore, dir: &Path, index: u16) -> EngineResult<()> {
    let key = own_filesystem_key(index);
    let own = is_mount_point(dir);
    if own != meta.local(&key)?.is_some() {
        meta.set_local(&key, own.then_some(&[1u8][..]))?;
    }
    Ok(())
}

impl CheckContext<'_> {
    fn check_one(
        &mut self,
        store: &dyn ShardStore,
        dir: &Path,
        index: u16,
    ) -> EngineResult<DriveIdentity> {
        let text = match read_marker(dir) {
            Ok(t) => t,
            Err(e) => {
                return Ok(DriveIdentity::Refused(format!(
                    "its marker cannot be read: {e}"
                )));
            }
        };
        if let Some(text) = text {
            return Ok(match DriveMarker::decode(&text, self.key) {
                Ok(m) if m.data_dir != self.data_dir => DriveIdentity::Refused(format!(
                    "its marker belongs to another data directory (id {}; this one is {})",
                    m.data_dir.to_hex(),
                    self.data_dir.to_hex()
                )),
                Ok(m) if m.index != index => DriveIdentity::Refused(format!(
                    "its marker says it is drive {} of this data directory, not drive {index} (drives swapped?)",
                    m.index
                )),
                Ok(_) if self.meta.local(&needs_heal_key(index))?.is_some() => {
                    tracing::warn!(
                        drive = index,
                        "drive was replaced and is not fully healed yet: healing"
                    );
                    DriveIdentity::NeedsHeal
                }
                Ok(_) => DriveIdentity::Verified,
                Err(reason) => DriveIdentity::Refused(format!("its marker is invalid: {reason}")),
            });
        }
        let segments = match store.segments() {
            Ok(s) => s,
            Err(e) => {
                return Ok(DriveIdentity::Refused(format!(
                    "its segments cannot be listed: {e}"
                )));
            }
        };
        let marker = DriveMarker {
            data_dir: self.data_dir,
            index,
            created_ms: crate::now_ms(),
        };
        match (self.initialised.map(|s| s.contains(&index)), segments.first()) {
            // Known, and came back empty: its disk not mounted, or wiped or
            // replaced.
            (Some(true), None)
                if !is_mount_point(dir)
                    && self.meta.local(&own_filesystem_key(index))?.is_some() =>
            {
                Ok(DriveIdentity::Unmounted)
            }
            (Some(true), None) => self.replaced(dir, &marker, index),
            (Some(true), Some(_)) => Ok(DriveIdentity::Refused(
                "it holds segments but no marker, though this drive was given one (marker deleted, or another disk?)".into(),
            )),
            // A drive added to the configuration.
            (Some(false), None) => {
                if let Err(e) = write_marker(dir, &marker, self.key) {
                    return Ok(DriveIdentity::Broken(e.to_string()));
                }
                tracing::info!(drive = index, path = %dir.display(), "new drive initialised");
                Ok(DriveIdentity::Verified)
            }
            (Some(false), Some(_)) => Ok(DriveIdentity::Refused(
                "a drive new to this data directory already holds segments (from another server?)"
                    .into(),
            )),
            // No marker was ever written here: a first start, or a data
            // directory from a version without markers.
            (None, Some(first)) => {
                match crate::drive::segment_header_drive(dir, first.id) {
                    Ok(Some(written_as)) if written_as != index => {
                        return Ok(DriveIdentity::Refused(format!(
                            "its segments were written as drive {written_as}, not drive {index} (drives swapped?)"
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Ok(DriveIdentity::Refused(format!(
                            "its first segment cannot be read: {e}"
                        )));
                    }
                }
                if let Err(e) = write_marker(dir, &marker, self.key) {
                    return Ok(DriveIdentity::Broken(e.to_string()));
                }
                tracing::info!(drive = index, "marker written for a drive of an existing data directory");
                Ok(DriveIdentity::Verified)
            }
            (None, None) => {
                let nothing_lost = self.first_start
                    || self.meta.is_replica()
                    || !*self
                        .has_chunks
                        .get_or_insert(store_has_chunks(self.meta)?);
                if nothing_lost {
                    if let Err(e) = write_marker(dir, &marker, self.key) {
                        return Ok(DriveIdentity::Broken(e.to_string()));
                    }
                    tracing::debug!(drive = index, "drive initialised");
                    Ok(DriveIdentity::Verified)
                } else {
                    self.replaced(dir, &marker, index)
                }
            }
        }
    }

    /// Takes an empty drive in place of a lost one: the pending heal is
    /// recorded first, then the marker (the drive is ours from then on), so
    /// a crash in between finds the drive replaced again, never verified
    /// and unhealed.
    fn replaced(
        &self,
        dir: &Path,
        marker: &DriveMarker,
        index: u16,
    ) -> EngineResult<DriveIdentity> {
        self.meta.set_local(&needs_heal_key(index), Some(&[1]))?;
        if let Err(e) = write_marker(dir, marker, self.key) {
            return Ok(DriveIdentity::Broken(e.to_string()));
        }
        tracing::warn!(drive = index, path = %dir.display(), "drive was replaced or wiped (empty, no marker): its shards will be rebuilt onto it");
        Ok(DriveIdentity::NeedsHeal)
    }
}

/// The heal started when the engine opens with replaced drives.
#[derive(Debug, Default)]
pub(crate) struct StartupHeal {
    /// Set while the task runs (cleared after it dropped its engine handle).
    pub(crate) running: Arc<AtomicBool>,
    /// Asks it to stop after the current page (a shutdown).
    pub(crate) stop: AtomicBool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn key(byte: u8) -> MarkerKey {
        MarkerKey::derive(&DataRootKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap())
    }

    fn marker() -> DriveMarker {
        DriveMarker {
            data_dir: DataDirId([7; 16]),
            index: 3,
            created_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn marker_round_trips() {
        let k = key(1);
        let text = marker().encode(&k);
        assert!(text.starts_with("cairn-drive 1\ndata-dir 0707"), "{text}");
        assert_eq!(text.lines().count(), 5);
        assert_eq!(DriveMarker::decode(&text, &k), Ok(marker()));
    }

    #[test]
    fn tampered_or_foreign_markers_are_refused() {
        let k = key(1);
        let text = marker().encode(&k);
        // Another index, same MAC.
        let edited = text.replace("index 3\n", "index 4\n");
        assert!(
            DriveMarker::decode(&edited, &k)
                .unwrap_err()
                .contains("does not verify"),
            "an edited marker must not verify"
        );
        // A flipped MAC digit.
        let last = text.len() - 2;
        let mut bytes = text.clone().into_bytes();
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(DriveMarker::decode(&flipped, &k).is_err());
        // Made with another master key.
        assert!(DriveMarker::decode(&text, &key(2)).is_err());
        // Truncated, or with an extra line.
        assert!(DriveMarker::decode(&text[..text.len() - 1], &k).is_err());
        assert!(DriveMarker::decode(&format!("{text}x\n"), &k).is_err());
        assert!(DriveMarker::decode("", &k).is_err());
    }

    #[test]
    fn other_format_versions_are_refused() {
        let k = key(1);
        // A correctly signed marker of version 2: refused for its version.
        let signed = format!(
            "cairn-drive 2\ndata-dir {}\nindex 3\ncreated-ms 1\n",
            hex::encode([7u8; 16])
        );
        let text = format!("{signed}mac {}\n", k.mac(signed.as_bytes()).to_hex());
        let err = DriveMarker::decode(&text, &k).unwrap_err();
        assert!(err.contains("version"), "{err}");
    }

    #[test]
    fn initialised_set_round_trips() {
        let set: BTreeSet<u16> = [0, 5, 300].into_iter().collect();
        assert_eq!(decode_initialised(&encode_initialised(&set)).unwrap(), set);
        assert!(decode_initialised(&[2, 0, 0]).is_err());
        assert!(decode_initialised(&[1, 0]).is_err());
    }

    use crate::test_support::{open_with, pseudo_random, small_chunk_config, try_put, try_read};

    const KEY_BYTE: u8 = 0x5a;

    /// The engine's view of every drive.
    fn identities(e: &crate::Engine) -> Vec<DriveIdentity> {
        e.inner.drives.identities_for_tests()
    }

    fn config(dir: &Path) -> crate::EngineConfig {
        let mut cfg = small_chunk_config(dir);
        // Tests start (or wait for) heals themselves.
        cfg.heal_start_delay = std::time::Duration::from_secs(3600);
        cfg
    }

    fn drive_dir(dir: &Path, d: usize) -> PathBuf {
        dir.join("drives").join(d.to_string())
    }

    async fn filled(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let e = open_with(config(dir), KEY_BYTE);
        e.create_bucket("b").await.unwrap();
        let mut objects = Vec::new();
        for i in 0..4u64 {
            let data = pseudo_random(150_000 + i as usize * 10_000, i);
            try_put(&e, "b", &format!("k{i}"), &data, 65_536)
                .await
                .unwrap();
            objects.push((format!("k{i}"), data));
        }
        assert!(identities(&e).iter().all(|i| *i == DriveIdentity::Verified));
        e.wait_for_background_repairs().await;
        objects
    }

    /// Every path under `dir`.
    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            }
            out.push(path);
        }
        out
    }

    async fn assert_readable(e: &crate::Engine, objects: &[(String, Vec<u8>)]) {
        for (k, data) in objects {
            assert_eq!(&try_read(e, "b", k, None).await.unwrap(), data, "{k}");
        }
    }

    #[tokio::test]
    async fn an_unmounted_drive_is_missing_and_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let objects = filled(dir.path()).await;
        {
            // Drive 3 was a disk of its own (a temporary directory cannot
            // be one here: the record says so instead).
            let e = open_with(config(dir.path()), KEY_BYTE);
            e.inner
                .meta
                .set_local(&own_filesystem_key(3), Some(&[1]))
                .unwrap();
            e.wait_for_background_repairs().await;
        }
        // Its disk did not mount: what is left is the empty mount point.
        let d3 = drive_dir(dir.path(), 3);
        fs::remove_dir_all(&d3).unwrap();
        fs::create_dir(&d3).unwrap();
        let e = open_with(config(dir.path()), KEY_BYTE);
        assert_eq!(identities(&e)[3], DriveIdentity::Unmounted);
        assert_eq!(e.inner.drive_state(3), DriveState::Missing);
        assert!(e.inner.drives.needing_heal().is_empty(), "no heal onto it");
        assert_eq!(e.readiness().unwrap().len(), 1);
        assert_readable(&e, &objects).await;
        let data = pseudo_random(300_000, 9);
        try_put(&e, "b", "after", &data, 65_536).await.unwrap();
        assert_eq!(try_read(&e, "b", "after", None).await.unwrap(), data);
        e.wait_for_background_repairs().await;
        // Opening a drive makes its (empty) `segments` directory; no file
        // is written: no marker, no segment.
        let written: Vec<_> = walk(&d3).into_iter().filter(|p| p.is_file()).collect();
        assert!(
            written.is_empty(),
            "written to the unmounted drive's directory: {written:?}"
        );
    }

    #[tokio::test]
    async fn a_first_start_writes_markers_and_a_wiped_drive_is_replaced_then_healed() {
        let dir = tempfile::tempdir().unwrap();
        let objects = filled(dir.path()).await;
        for d in 0..6 {
            assert!(drive_dir(dir.path(), d).join(MARKER_FILE).is_file());
        }
        fs::remove_dir_all(drive_dir(dir.path(), 2)).unwrap();
        let e = open_with(config(dir.path()), KEY_BYTE);
        assert_eq!(identities(&e)[2], DriveIdentity::NeedsHeal);
        assert!(matches!(
            e.inner.drive_state(2),
            DriveState::Replaced { .. }
        ));
        assert!(drive_dir(dir.path(), 2).join(MARKER_FILE).is_file());
        let degraded = e.readiness().unwrap();
        assert_eq!(degraded.len(), 1, "{degraded:?}");
        assert!(degraded[0].contains("replaced"), "{degraded:?}");
        // Any complete scrub heals it (here instead of the delayed one).
        let report = e
            .scrub(crate::ScrubOptions::default())
            .await
            .unwrap()
            .unwrap();
        assert!(report.shards_missing > 0, "{report:?}");
        assert_eq!(report.shards_repaired, report.shards_missing, "{report:?}");
        assert_readable(&e, &objects).await;
        assert_eq!(identities(&e)[2], DriveIdentity::Verified);
        assert_eq!(e.inner.drive_state(2), DriveState::Ok);
        assert!(e.readiness().unwrap().is_empty());
        e.wait_for_background_repairs().await;
        drop(e);
        // Healed is remembered.
        let e = open_with(config(dir.path()), KEY_BYTE);
        assert!(identities(&e).iter().all(|i| *i == DriveIdentity::Verified));
        assert_readable(&e, &objects).await;
    }

    #[tokio::test]
    async fn the_automatic_heal_runs_and_a_restart_midway_resumes_it() {
        let dir = tempfile::tempdir().unwrap();
        let objects = filled(dir.path()).await;
        fs::remove_dir_all(drive_dir(dir.path(), 4)).unwrap();
        {
            // Stopped before it starts: still pending at the next open.
            let e = open_with(config(dir.path()), KEY_BYTE);
            assert!(e.inner.drives.startup_heal.running.load(Ordering::Acquire));
            e.wait_for_background_repairs().await;
            assert_eq!(identities(&e)[4], DriveIdentity::NeedsHeal);
        }
        let mut cfg = config(dir.path());
        cfg.heal_start_delay = std::time::Duration::ZERO;
        let e = open_with(cfg, KEY_BYTE);
        assert_eq!(identities(&e)[4], DriveIdentity::NeedsHeal);
        for _ in 0..500 {
            if !e.inner.drives.startup_heal.running.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(identities(&e)[4], DriveIdentity::Verified);
        let after = e
            .scrub(crate::ScrubOptions::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.shards_missing, 0, "{after:?}");
        assert_readable(&e, &objects).await;
    }

    #[tokio::test]
    async fn swapped_and_foreign_drives_are_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let objects = filled(dir.path()).await;
        // Another data directory (same master key): its drive 0 in place
        // of our drive 5.
        let other = tempfile::tempdir().unwrap();
        filled(other.path()).await;
        fs::remove_dir_all(drive_dir(dir.path(), 5)).unwrap();
        fs::rename(drive_dir(other.path(), 0), drive_dir(dir.path(), 5)).unwrap();
        // Drives 1 and 2 swapped.
        let tmp = dir.path().join("drives").join("tmp");
        fs::rename(drive_dir(dir.path(), 1), &tmp).unwrap();
        fs::rename(drive_dir(dir.path(), 2), drive_dir(dir.path(), 1)).unwrap();
        fs::rename(&tmp, drive_dir(dir.path(), 2)).unwrap();
        let before: Vec<u64> = (0..6)
            .map(|d| crate::test_support::dir_bytes(&drive_dir(dir.path(), d)))
            .collect();

        let e = open_with(config(dir.path()), KEY_BYTE);
        let ids = identities(&e);
        for d in [1, 2, 5] {
            let DriveState::Foreign { reason } = e.inner.drive_state(d) else {
                panic!("drive {d}: {:?}", ids[d]);
            };
            let expected = if d == 5 {
                "another data directory"
            } else {
                "swapped"
            };
            assert!(reason.contains(expected), "drive {d}: {reason}");
            assert!(!e.inner.drives.usable(d));
        }
        // Three drives out: not ready (writes need 5), and writes fail
        // rather than touching the refused drives.
        assert!(e.readiness().is_err());
        assert!(
            try_put(&e, "b", "new", &pseudo_random(100_000, 9), 65_536)
                .await
                .is_err()
        );
        e.collect_garbage(crate::GcOptions::default())
            .await
            .unwrap();
        e.wait_for_background_repairs().await;
        drop(e);
        let after: Vec<u64> = (0..6)
            .map(|d| crate::test_support::dir_bytes(&drive_dir(dir.path(), d)))
            .collect();
        for d in [1, 2, 5] {
            assert_eq!(before[d], after[d], "drive {d} was written");
        }

        // Put back in order (and our drive 5 lost): readable again.
        let tmp = dir.path().join("drives").join("tmp");
        fs::rename(drive_dir(dir.path(), 1), &tmp).unwrap();
        fs::rename(drive_dir(dir.path(), 2), drive_dir(dir.path(), 1)).unwrap();
        fs::rename(&tmp, drive_dir(dir.path(), 2)).unwrap();
        fs::remove_dir_all(drive_dir(dir.path(), 5)).unwrap();
        let e = open_with(config(dir.path()), KEY_BYTE);
        let ids = identities(&e);
        assert_eq!(ids[1], DriveIdentity::Verified);
        assert_eq!(ids[2], DriveIdentity::Verified);
        assert_eq!(ids[5], DriveIdentity::NeedsHeal);
        assert_readable(&e, &objects).await;
    }

    /// Up to m drives that cannot be opened at all are missing, and the
    /// engine serves without them; more is an error.
    #[tokio::test]
    async fn drives_that_cannot_be_opened_are_missing_up_to_parity() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("drives")).unwrap();
        // A file where a drive directory must be: not creatable, even as root.
        fs::write(drive_dir(dir.path(), 4), b"not a directory").unwrap();
        {
            let e = open_with(config(dir.path()), KEY_BYTE);
            assert_eq!(identities(&e)[4], DriveIdentity::Unavailable);
            assert_eq!(e.inner.drive_state(4), DriveState::Missing);
            assert!(!e.inner.drives.usable(4));
            assert_eq!(e.readiness().unwrap().len(), 1);
            e.create_bucket("b").await.unwrap();
            let data = pseudo_random(200_000, 4);
            try_put(&e, "b", "k", &data, 65_536).await.unwrap();
            assert_eq!(try_read(&e, "b", "k", None).await.unwrap(), data);
            e.wait_for_background_repairs().await;
        }
        for d in [1, 2] {
            fs::remove_dir_all(drive_dir(dir.path(), d)).unwrap();
            fs::write(drive_dir(dir.path(), d), b"not a directory").unwrap();
        }
        let master = DataRootKey::from_hex(&format!("{KEY_BYTE:02x}").repeat(32)).unwrap();
        let three = crate::Engine::open(config(dir.path()), &master, &prometheus::Registry::new());
        assert!(three.is_err(), "three of 4+2 drives cannot be opened");
    }

    /// A drive whose marker cannot be written does not stop the start: it
    /// is faulty until a restart, and nothing is written to it.
    #[tokio::test]
    async fn a_drive_whose_marker_cannot_be_written_is_faulty() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the marker's temporary file must go.
        fs::create_dir_all(drive_dir(dir.path(), 3).join("cairn-drive.tmp")).unwrap();
        let e = open_with(config(dir.path()), KEY_BYTE);
        assert!(matches!(identities(&e)[3], DriveIdentity::Broken(_)));
        assert_eq!(e.inner.drive_state(3), DriveState::Faulty);
        assert!(!e.inner.drives.usable(3));
        assert_eq!(e.readiness().unwrap().len(), 1);
        e.create_bucket("b").await.unwrap();
        try_put(&e, "b", "k", &pseudo_random(200_000, 1), 65_536)
            .await
            .unwrap();
        assert!(!drive_dir(dir.path(), 3).join(MARKER_FILE).exists());
        assert_eq!(
            crate::test_support::dir_bytes(&drive_dir(dir.path(), 3)),
            0,
            "nothing written to it"
        );
    }

    /// A refused drive elsewhere does not keep a replaced one from being
    /// healed (its own shards are rebuilt; the refused drive's cannot be).
    #[tokio::test]
    async fn a_replaced_drive_heals_while_another_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let objects = filled(dir.path()).await;
        fs::remove_dir_all(drive_dir(dir.path(), 2)).unwrap();
        let marker = drive_dir(dir.path(), 0).join(MARKER_FILE);
        let text = fs::read_to_string(&marker).unwrap();
        fs::write(&marker, text.replace("index 0\n", "index 9\n")).unwrap();
        // Its shards are lost too, so the scrub cannot rebuild all.
        fs::remove_dir_all(drive_dir(dir.path(), 0).join("segments")).unwrap();
        let e = open_with(config(dir.path()), KEY_BYTE);
        assert!(matches!(e.inner.drive_state(0), DriveState::Foreign { .. }));
        assert_eq!(identities(&e)[2], DriveIdentity::NeedsHeal);
        let report = e
            .scrub(crate::ScrubOptions::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.chunks_unrecoverable, 0, "{report:?}");
        assert!(report.shards_repaired < report.shards_missing, "{report:?}");
        assert_eq!(e.inner.drive_state(2), DriveState::Ok);
        assert_readable(&e, &objects).await;
    }

    /// A data directory from before markers: drives holding segments are
    /// adopted (no heal); one swapped is caught by its segment headers.
    #[tokio::test]
    async fn a_data_directory_without_markers_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let objects = filled(dir.path()).await;
        let forget_markers = |dir: &Path| {
            for d in 0..6 {
                fs::remove_file(drive_dir(dir, d).join(MARKER_FILE)).unwrap();
            }
            let meta = MetaStore::open(&dir.join("meta")).unwrap();
            meta.set_local(LOCAL_DRIVES_INITIALISED, None).unwrap();
            meta.set_local(LOCAL_DATA_DIR_ID, None).unwrap();
        };
        forget_markers(dir.path());
        let e = open_with(config(dir.path()), KEY_BYTE);
        assert!(
            identities(&e).iter().all(|i| *i == DriveIdentity::Verified),
            "{:?}",
            identities(&e)
        );
        assert!(e.inner.drives.needing_heal().is_empty());
        assert!(!e.inner.drives.startup_heal.running.load(Ordering::Acquire));
        for d in 0..6 {
            assert!(drive_dir(dir.path(), d).join(MARKER_FILE).is_file());
        }
        assert_readable(&e, &objects).await;
        e.wait_for_background_repairs().await;
        drop(e);

        // Without markers, swapped drives are told by their segments.
        forget_markers(dir.path());
        let tmp = dir.path().join("drives").join("tmp");
        fs::rename(drive_dir(dir.path(), 3), &tmp).unwrap();
        fs::rename(drive_dir(dir.path(), 4), drive_dir(dir.path(), 3)).unwrap();
        fs::rename(&tmp, drive_dir(dir.path(), 4)).unwrap();
        let e = open_with(config(dir.path()), KEY_BYTE);
        for d in [3, 4] {
            let DriveState::Foreign { reason } = e.inner.drive_state(d) else {
                panic!("drive {d} accepted");
            };
            assert!(reason.contains("written as drive"), "{reason}");
            assert!(!drive_dir(dir.path(), d).join(MARKER_FILE).exists());
        }
    }

    #[test]
    fn markers_are_written_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(9);
        write_marker(dir.path(), &marker(), &k).unwrap();
        assert!(!dir.path().join("cairn-drive.tmp").exists());
        let text = read_marker(dir.path()).unwrap().unwrap();
        assert_eq!(DriveMarker::decode(&text, &k), Ok(marker()));
        assert_eq!(read_marker(&dir.path().join("none")).unwrap(), None);
    }
}
