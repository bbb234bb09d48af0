//! The data directory's keyring: the data root, sealed under each master key
//! that may open it, so that the master key can change while the root (and
//! everything sealed under it) stays.
//!
//! A data directory without a keyring uses its master key's bytes as the
//! root ([`MasterKey::root_when_no_keyring`]); the first rotation
//! ([`crate::rotation`]) writes the keyring, sealing that same root.
//!
//! # Format (version 1), `<data-dir>/keyring`
//!
//! ```text
//! magic      8 B  "CAIRNKEY"
//! version    1 B  1
//! count      1 B  number of entries, 1 or 2 (2: a rotation has not finished;
//!                 entry 1 is the key being retired, entry 2 its successor)
//! entry × count, 76 B each:
//!   fingerprint  16 B  blake3::derive_key(KEYRING_FINGERPRINT_CONTEXT, master)[..16]
//!   sealed root  60 B  nonce [12] | AES-256-GCM(root) [32] | tag [16]
//!                      key: blake3::derive_key(KEYRING_WRAP_CONTEXT, master)
//!                      AAD: magic | version | fingerprint
//! check     32 B  BLAKE3 hash of every byte before it
//! ```
//!
//! Invariants:
//!
//! * Reading refuses anything but exactly this layout: any truncation,
//!   extension or flipped bit is an error ([`CryptoError::KeyringInvalid`]),
//!   never a wrong root. The check catches accidents anywhere in the file;
//!   the AEAD of the entry in use catches a forgery even with a recomputed
//!   check.
//! * Fingerprints in one keyring are distinct.
//! * The file is replaced atomically (temporary file, fsync, rename, fsync
//!   of the directory), mode 0600. It holds no secret that opens without a
//!   master key.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{
    CryptoError, DataRootKey, FINGERPRINT_LEN_BYTES, KEY_LEN_BYTES, KeyFingerprint, MasterKey,
    SEAL_OVERHEAD_BYTES, open_with_key, seal_with_key, write_private_file,
};

/// The keyring's file name inside the data directory.
pub const KEYRING_FILE_NAME: &str = "keyring";
/// The first bytes of every keyring file.
pub const KEYRING_MAGIC: &[u8; 8] = b"CAIRNKEY";
/// The format this build writes (and the only one it reads).
pub const KEYRING_VERSION: u8 = 1;
/// Most entries in a keyring: the current key and, during a rotation, its
/// successor.
pub const KEYRING_ENTRIES_MAX: usize = 2;

const HEADER_LEN_BYTES: usize = KEYRING_MAGIC.len() + 2;
const SEALED_ROOT_LEN_BYTES: usize = KEY_LEN_BYTES + SEAL_OVERHEAD_BYTES;
const ENTRY_LEN_BYTES: usize = FINGERPRINT_LEN_BYTES + SEALED_ROOT_LEN_BYTES;
const CHECK_LEN_BYTES: usize = 32;
/// The largest valid file; reading stops one byte after it.
const FILE_LEN_MAX_BYTES: usize =
    HEADER_LEN_BYTES + KEYRING_ENTRIES_MAX * ENTRY_LEN_BYTES + CHECK_LEN_BYTES;

/// `<data_dir>/keyring`.
pub fn keyring_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYRING_FILE_NAME)
}

#[derive(Clone)]
struct Entry {
    fingerprint: KeyFingerprint,
    sealed_root: [u8; SEALED_ROOT_LEN_BYTES],
}

/// A decoded keyring: 1..=[`KEYRING_ENTRIES_MAX`] entries, each the data
/// root sealed under one master key. `Debug` shows the fingerprints only.
#[derive(Clone)]
pub struct Keyring {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("fingerprints", &self.fingerprints())
            .finish_non_exhaustive()
    }
}

/// AAD of an entry: the format it belongs to and whose it is.
fn entry_aad(fingerprint: &KeyFingerprint) -> [u8; HEADER_LEN_BYTES - 1 + FINGERPRINT_LEN_BYTES] {
    let mut aad = [0u8; HEADER_LEN_BYTES - 1 + FINGERPRINT_LEN_BYTES];
    let (magic, rest) = aad.split_at_mut(KEYRING_MAGIC.len());
    magic.copy_from_slice(KEYRING_MAGIC);
    let (version, fp) = rest.split_at_mut(1);
    version[0] = KEYRING_VERSION;
    fp.copy_from_slice(&fingerprint.0);
    aad
}

impl Keyring {
    /// A keyring in which each of `masters` (1..=2 distinct keys, in the
    /// order given: the key being retired first) opens `root`.
    pub fn seal(root: &DataRootKey, masters: &[&MasterKey]) -> Result<Keyring, CryptoError> {
        if masters.is_empty() || masters.len() > KEYRING_ENTRIES_MAX {
            return Err(CryptoError::RotationState(format!(
                "a keyring holds 1 to {KEYRING_ENTRIES_MAX} keys, not {}",
                masters.len()
            )));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(masters.len());
        for master in masters {
            let fingerprint = master.fingerprint();
            if entries.iter().any(|e| e.fingerprint == fingerprint) {
                return Err(CryptoError::RotationState(format!(
                    "the key {fingerprint} is given twice for one keyring"
                )));
            }
            let sealed = seal_with_key(
                &master.keyring_wrap_key(),
                &entry_aad(&fingerprint),
                &root.bytes,
            )?;
            let sealed_root: [u8; SEALED_ROOT_LEN_BYTES] =
                sealed
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::KeyringInvalid {
                        path: PathBuf::new(),
                        reason: "a sealed root of the wrong length".into(),
                    })?;
            entries.push(Entry {
                fingerprint,
                sealed_root,
            });
        }
        Ok(Keyring { entries })
    }

    /// The fingerprints of the keys that open this keyring, in file order.
    pub fn fingerprints(&self) -> Vec<KeyFingerprint> {
        self.entries.iter().map(|e| e.fingerprint).collect()
    }

    /// How many keys open it (2: a rotation has not finished).
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Whether `master` has an entry (by fingerprint; [`open`](Self::open)
    /// proves it).
    pub fn has_entry_for(&self, master: &MasterKey) -> bool {
        let fingerprint = master.fingerprint();
        self.entries.iter().any(|e| e.fingerprint == fingerprint)
    }

    /// The data root, opened with `master`'s entry.
    pub fn open(&self, master: &MasterKey) -> Result<DataRootKey, CryptoError> {
        let fingerprint = master.fingerprint();
        let entry = self
            .entries
            .iter()
            .find(|e| e.fingerprint == fingerprint)
            .ok_or_else(|| CryptoError::KeyNotInKeyring {
                key: fingerprint.to_string(),
                entries: self.fingerprints().iter().map(|f| f.to_string()).collect(),
            })?;
        let plain = Zeroizing::new(
            open_with_key(
                &master.keyring_wrap_key(),
                &entry_aad(&fingerprint),
                &entry.sealed_root,
            )
            .map_err(|_| CryptoError::KeyringInvalid {
                path: PathBuf::new(),
                reason: format!(
                    "the entry of the master key {fingerprint} does not authenticate: the keyring was altered"
                ),
            })?,
        );
        let mut bytes = [0u8; KEY_LEN_BYTES];
        if plain.len() != KEY_LEN_BYTES {
            return Err(CryptoError::KeyringInvalid {
                path: PathBuf::new(),
                reason: "the sealed root has the wrong length".into(),
            });
        }
        bytes.copy_from_slice(&plain);
        Ok(DataRootKey::from_bytes(bytes))
    }

    /// The file's bytes (format above).
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!((1..=KEYRING_ENTRIES_MAX).contains(&self.entries.len()));
        let mut out = Vec::with_capacity(FILE_LEN_MAX_BYTES);
        out.extend_from_slice(KEYRING_MAGIC);
        out.push(KEYRING_VERSION);
        // At most KEYRING_ENTRIES_MAX (2): fits in a byte.
        out.push(self.entries.len() as u8);
        for entry in &self.entries {
            out.extend_from_slice(&entry.fingerprint.0);
            out.extend_from_slice(&entry.sealed_root);
        }
        let check = blake3::hash(&out);
        out.extend_from_slice(check.as_bytes());
        debug_assert_eq!(
            out.len(),
            HEADER_LEN_BYTES + self.entries.len() * ENTRY_LEN_BYTES + CHECK_LEN_BYTES
        );
        out
    }

    /// Decodes a keyring file's bytes; `path` names it in errors.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Keyring, CryptoError> {
        let invalid = |reason: String| CryptoError::KeyringInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let damaged = |what: String| {
            invalid(format!(
                "damaged ({what}): restore the keyring from a backup of the data directory"
            ))
        };
        if bytes.len() < HEADER_LEN_BYTES {
            return Err(damaged(format!("truncated to {} bytes", bytes.len())));
        }
        if &bytes[..KEYRING_MAGIC.len()] != KEYRING_MAGIC {
            return Err(invalid(
                "not a Cairn keyring (its first bytes are not \"CAIRNKEY\")".into(),
            ));
        }
        let version = bytes[KEYRING_MAGIC.len()];
        if version != KEYRING_VERSION {
            return Err(invalid(format!(
                "format version {version}, which this build does not know (this build reads version {KEYRING_VERSION}; a newer cairn wrote it?)"
            )));
        }
        let count = usize::from(bytes[KEYRING_MAGIC.len() + 1]);
        if !(1..=KEYRING_ENTRIES_MAX).contains(&count) {
            return Err(damaged(format!(
                "it claims {count} entries; a keyring has 1 to {KEYRING_ENTRIES_MAX}"
            )));
        }
        let want_len = HEADER_LEN_BYTES + count * ENTRY_LEN_BYTES + CHECK_LEN_BYTES;
        if bytes.len() != want_len {
            return Err(damaged(format!(
                "{} bytes, where a {count}-entry keyring has {want_len}",
                bytes.len()
            )));
        }
        let (body, check) = bytes.split_at(want_len - CHECK_LEN_BYTES);
        let check: [u8; CHECK_LEN_BYTES] = check
            .try_into()
            .map_err(|_| damaged("no checksum".into()))?;
        // blake3::Hash compares in constant time (not that it matters here).
        if blake3::hash(body) != blake3::Hash::from_bytes(check) {
            return Err(damaged("its checksum does not match its content".into()));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for raw in body[HEADER_LEN_BYTES..].chunks_exact(ENTRY_LEN_BYTES) {
            let (fp, sealed) = raw.split_at(FINGERPRINT_LEN_BYTES);
            let mut entry = Entry {
                fingerprint: KeyFingerprint([0u8; FINGERPRINT_LEN_BYTES]),
                sealed_root: [0u8; SEALED_ROOT_LEN_BYTES],
            };
            entry.fingerprint.0.copy_from_slice(fp);
            entry.sealed_root.copy_from_slice(sealed);
            if entries.iter().any(|e| e.fingerprint == entry.fingerprint) {
                return Err(invalid(format!(
                    "two entries for the master key {}",
                    entry.fingerprint
                )));
            }
            entries.push(entry);
        }
        Ok(Keyring { entries })
    }

    /// Reads `path`: `None` if there is no such file.
    pub fn read(path: &Path) -> Result<Option<Keyring>, CryptoError> {
        let io_error = |source: io::Error| CryptoError::KeyringIo {
            path: path.to_path_buf(),
            source,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error(source)),
        };
        let mut bytes = Vec::with_capacity(FILE_LEN_MAX_BYTES + 1);
        // One byte more than the largest keyring tells "too long" apart.
        file.take(FILE_LEN_MAX_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        Keyring::decode(&bytes, path).map(Some)
    }

    /// Replaces `path` with this keyring, atomically and durably (mode 0600).
    pub fn write(&self, path: &Path) -> Result<(), CryptoError> {
        write_private_file(path, &self.encode())
            .map_err(|(path, source)| CryptoError::KeyringIo { path, source })
    }
}

/// The data root of the data directory `data_dir` for `master`, and how
/// many keys its keyring holds (0: no keyring, the root is `master`'s own
/// bytes; 2: a rotation has not finished).
#[derive(Debug)]
pub struct OpenedRoot {
    /// The root every data key derives from.
    pub root: DataRootKey,
    /// Entries in the keyring; 0 when there is none.
    pub keyring_entries: usize,
}

/// Opens the data root of `data_dir` with `master`: from its keyring if it
/// has one, else `master`'s own bytes.
pub fn open_data_root(data_dir: &Path, master: &MasterKey) -> Result<OpenedRoot, CryptoError> {
    let (keyring, root) = read_and_open(&keyring_path(data_dir), master)?;
    Ok(OpenedRoot {
        root,
        keyring_entries: keyring.as_ref().map_or(0, Keyring::entry_count),
    })
}

/// The marker a data directory whose root is random keeps beside its
/// keyring: with it and no keyring, the root is lost, and a start says so
/// instead of falling back to the master key's bytes (which open nothing).
pub const ROOT_IN_KEYRING_MARKER: &str = "keyring-holds-the-root";

/// Whether `data_dir`'s data root is known to live only in its keyring
/// ([`ROOT_IN_KEYRING_MARKER`]).
pub fn root_is_in_keyring(data_dir: &Path) -> bool {
    data_dir.join(ROOT_IN_KEYRING_MARKER).exists()
}

/// Gives the data directory `data_dir`, which holds nothing sealed yet, a
/// new random data root in a keyring of one entry sealed under `master`
/// (durable before it returns). From then on the root is not any master
/// key's bytes, so a rotation retires every earlier key for good. Refuses
/// to replace a keyring that exists.
pub fn create_random_root(data_dir: &Path, master: &MasterKey) -> Result<(), CryptoError> {
    let path = keyring_path(data_dir);
    if Keyring::read(&path)?.is_some() {
        return Err(CryptoError::RotationState(format!(
            "{} exists already; a new data root would make everything sealed under the old one unreadable",
            path.display()
        )));
    }
    let root = DataRootKey::generate()?;
    Keyring::seal(&root, &[master])?.write(&path)?;
    // After the keyring: a crash in between leaves a keyring without the
    // marker, which still opens (the marker only turns a lost keyring
    // into a clear error).
    write_private_file(
        &data_dir.join(ROOT_IN_KEYRING_MARKER),
        b"This data directory's data root is random and kept only in ./keyring, sealed under the master key: back the keyring up with the data.\n",
    )
    .map_err(|(path, source)| CryptoError::KeyringIo { path, source })
}

/// The keyring at `path`, if there is one, and the root `master` opens:
/// from it, else `master`'s own bytes. Errors name `path`.
pub(crate) fn read_and_open(
    path: &Path,
    master: &MasterKey,
) -> Result<(Option<Keyring>, DataRootKey), CryptoError> {
    let keyring = Keyring::read(path)?;
    let root = match &keyring {
        None => master.root_when_no_keyring(),
        Some(k) => k.open(master).map_err(|e| match e {
            CryptoError::KeyringInvalid { reason, .. } => CryptoError::KeyringInvalid {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })?,
    };
    Ok((keyring, root))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::CHUNK_ID_CONTEXT;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    fn root() -> DataRootKey {
        DataRootKey::from_bytes([0x55; 32])
    }

    fn same_root(a: &DataRootKey, b: &DataRootKey) -> bool {
        a.derive(CHUNK_ID_CONTEXT).as_bytes() == b.derive(CHUNK_ID_CONTEXT).as_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Keyring, CryptoError> {
        Keyring::decode(bytes, Path::new("keyring"))
    }

    #[test]
    fn round_trip_one_entry() {
        let keyring = Keyring::seal(&root(), &[&key(1)]).unwrap();
        let bytes = keyring.encode();
        assert_eq!(bytes.len(), 10 + 76 + 32);
        assert_eq!(&bytes[..8], b"CAIRNKEY");
        assert_eq!(bytes[8..10], [1, 1]);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.fingerprints(), [key(1).fingerprint()]);
        assert_eq!(decoded.entry_count(), 1);
        assert!(same_root(&decoded.open(&key(1)).unwrap(), &root()));
        assert_eq!(
            decoded.encode(),
            bytes,
            "decode then encode is the identity"
        );
    }

    #[test]
    fn two_entries_open_the_same_root_in_order() {
        let keyring = Keyring::seal(&root(), &[&key(1), &key(2)]).unwrap();
        let decoded = decode(&keyring.encode()).unwrap();
        assert_eq!(
            decoded.fingerprints(),
            [key(1).fingerprint(), key(2).fingerprint()]
        );
        assert!(same_root(&decoded.open(&key(1)).unwrap(), &root()));
        assert!(same_root(&decoded.open(&key(2)).unwrap(), &root()));
        assert!(decoded.has_entry_for(&key(2)) && !decoded.has_entry_for(&key(3)));
    }

    #[test]
    fn seal_refuses_no_keys_too_many_and_duplicates() {
        assert!(Keyring::seal(&root(), &[]).is_err());
        assert!(Keyring::seal(&root(), &[&key(1), &key(2), &key(3)]).is_err());
        assert!(Keyring::seal(&root(), &[&key(1), &key(1)]).is_err());
    }

    #[test]
    fn a_wrong_key_is_refused_naming_fingerprints() {
        let keyring = Keyring::seal(&root(), &[&key(1)]).unwrap();
        match keyring.open(&key(9)) {
            Err(CryptoError::KeyNotInKeyring { key: k, entries }) => {
                assert_eq!(k, key(9).fingerprint().to_string());
                assert_eq!(entries, [key(1).fingerprint().to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fingerprint_and_wrap_key_differ_from_the_key_and_each_other() {
        let master = key(7);
        let fp = master.fingerprint();
        assert_ne!(fp.0, [7u8; 16]);
        assert_ne!(fp.0[..], master.keyring_wrap_key()[..16]);
        assert_ne!(fp, key(8).fingerprint());
        // Regression pin (our own value when written): the fingerprint is
        // part of the on-disk format.
        assert_eq!(fp.to_string().len(), 32);
        assert_eq!(
            fp,
            KeyFingerprint(
                blake3::derive_key("cairn 2026-12 keyring fingerprint v1", &[7u8; 32])[..16]
                    .try_into()
                    .unwrap()
            )
        );
    }

    /// Every single-byte change, and every truncation, is an error: never a
    /// keyring that opens (to a wrong root or at all).
    #[test]
    fn every_byte_flip_and_truncation_is_refused() {
        let bytes = Keyring::seal(&root(), &[&key(1), &key(2)])
            .unwrap()
            .encode();
        for index in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut tampered = bytes.clone();
                tampered[index] ^= flip;
                assert!(
                    decode(&tampered).is_err(),
                    "flip {flip:#x} at byte {index} was accepted"
                );
            }
        }
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(matches!(err, CryptoError::KeyringInvalid { .. }), "{err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    /// With the checksum recomputed (a deliberate edit, not an accident),
    /// a change to the header or to the entry in use still never yields a
    /// root: the AEAD binds magic, version, fingerprint and sealed root.
    #[test]
    fn a_forged_entry_with_a_recomputed_check_does_not_open() {
        let bytes = Keyring::seal(&root(), &[&key(1)]).unwrap().encode();
        let body_len = bytes.len() - 32;
        for index in 0..body_len {
            let mut tampered = bytes[..body_len].to_vec();
            tampered[index] ^= 0x01;
            let check = blake3::hash(&tampered);
            tampered.extend_from_slice(check.as_bytes());
            if let Ok(keyring) = decode(&tampered) {
                assert!(
                    keyring.open(&key(1)).is_err(),
                    "byte {index} changed and the entry still opened"
                );
            }
        }
    }

    #[test]
    fn unknown_version_and_foreign_files_are_named() {
        let mut bytes = Keyring::seal(&root(), &[&key(1)]).unwrap().encode();
        bytes[8] = 2;
        let message = decode(&bytes).unwrap_err().to_string();
        assert!(message.contains("format version 2"), "{message}");
        let message = decode(b"hello, world, this is not a keyring")
            .unwrap_err()
            .to_string();
        assert!(message.contains("not a Cairn keyring"), "{message}");
        let message = decode(&[]).unwrap_err().to_string();
        assert!(message.contains("damaged"), "{message}");
    }

    #[test]
    fn duplicate_fingerprints_are_refused() {
        let one = Keyring::seal(&root(), &[&key(1)]).unwrap().encode();
        let mut two = one[..10].to_vec();
        two[9] = 2;
        two.extend_from_slice(&one[10..86]);
        two.extend_from_slice(&one[10..86]);
        let check = blake3::hash(&two);
        two.extend_from_slice(check.as_bytes());
        let message = decode(&two).unwrap_err().to_string();
        assert!(message.contains("two entries"), "{message}");
    }

    #[test]
    fn a_new_data_directory_gets_a_random_root_that_no_key_is() {
        let dir = tempfile::tempdir().unwrap();
        create_random_root(dir.path(), &key(5)).unwrap();
        let opened = open_data_root(dir.path(), &key(5)).unwrap();
        assert_eq!(opened.keyring_entries, 1);
        assert!(!opened.root.is_bytes_of(&key(5)));
        // Another directory, another root.
        let other = tempfile::tempdir().unwrap();
        create_random_root(other.path(), &key(5)).unwrap();
        let other_root = open_data_root(other.path(), &key(5)).unwrap().root;
        assert!(!same_root(&opened.root, &other_root));
        // Never replaced: that would orphan everything sealed under it.
        assert!(create_random_root(dir.path(), &key(5)).is_err());
        assert!(
            root_is_in_keyring(dir.path()) && !root_is_in_keyring(other.path().join("x").as_path())
        );
        assert!(same_root(
            &open_data_root(dir.path(), &key(5)).unwrap().root,
            &opened.root
        ));
    }

    #[test]
    fn file_round_trip_is_0600_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = keyring_path(dir.path());
        assert!(Keyring::read(&path).unwrap().is_none());
        std::fs::write(dir.path().join("keyring.tmp"), b"stale").unwrap();
        Keyring::seal(&root(), &[&key(1), &key(2)])
            .unwrap()
            .write(&path)
            .unwrap();
        assert!(!dir.path().join("keyring.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Keyring::seal(&root(), &[&key(2)])
            .unwrap()
            .write(&path)
            .unwrap();
        let read = Keyring::read(&path).unwrap().unwrap();
        assert_eq!(read.fingerprints(), [key(2).fingerprint()]);

        let opened = open_data_root(dir.path(), &key(2)).unwrap();
        assert_eq!(opened.keyring_entries, 1);
        assert!(same_root(&opened.root, &root()));
        let err = open_data_root(dir.path(), &key(1)).unwrap_err();
        assert!(matches!(err, CryptoError::KeyNotInKeyring { .. }), "{err}");

        // A file far too long is refused without reading it all.
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        assert!(Keyring::read(&path).is_err());
    }

    #[test]
    fn no_keyring_means_the_master_key_is_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open_data_root(dir.path(), &key(4)).unwrap();
        assert_eq!(opened.keyring_entries, 0);
        assert!(same_root(&opened.root, &DataRootKey::from_bytes([4; 32])));
        assert!(opened.root.is_bytes_of(&key(4)));
        assert!(!opened.root.is_bytes_of(&key(5)));
    }

    #[test]
    fn debug_shows_fingerprints_only() {
        let keyring = Keyring::seal(&root(), &[&key(1)]).unwrap();
        let text = format!("{keyring:?}");
        assert!(text.contains(&key(1).fingerprint().to_string()), "{text}");
        assert!(!text.contains("sealed"), "{text}");
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            root_bytes in any::<[u8; 32]>(),
            first in any::<[u8; 32]>(),
            second in proptest::option::of(any::<[u8; 32]>()),
        ) {
            prop_assume!(second != Some(first));
            let root = DataRootKey::from_bytes(root_bytes);
            let a = MasterKey::from_bytes(first);
            let b = second.map(MasterKey::from_bytes);
            let mut masters = vec![&a];
            if let Some(b) = &b {
                masters.push(b);
            }
            let bytes = Keyring::seal(&root, &masters).unwrap().encode();
            let decoded = decode(&bytes).unwrap();
            prop_assert_eq!(decoded.encode(), bytes);
            prop_assert_eq!(decoded.entry_count(), masters.len());
            for master in masters {
                prop_assert!(same_root(&decoded.open(master).unwrap(), &root));
            }
        }

        #[test]
        fn a_flipped_bit_anywhere_is_refused(
            position in any::<prop::sample::Index>(),
            bit in 0u8..8,
            two in any::<bool>(),
        ) {
            let masters: Vec<MasterKey> = if two { vec![key(1), key(2)] } else { vec![key(1)] };
            let refs: Vec<&MasterKey> = masters.iter().collect();
            let mut bytes = Keyring::seal(&root(), &refs).unwrap().encode();
            let index = position.index(bytes.len());
            bytes[index] ^= 1 << bit;
            prop_assert!(decode(&bytes).is_err());
        }
    }
}
