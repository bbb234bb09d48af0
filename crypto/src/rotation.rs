//! Replacing a data directory's master key (`cairn admin master-key
//! rotate`): a new master key comes to open the keyring, the old one stops
//! opening it, and the data root — so every chunk, sealed secret and drive
//! marker — stays as it is.
//!
//! The steps, each durable before the next:
//!
//! 1. a new key N is generated into `<key file>.new` (mode 0600, fsync,
//!    rename, fsync of the directory);
//! 2. the keyring becomes {M, N}, both sealing the root that the current
//!    key M opens (or M's own bytes, when there was no keyring);
//! 3. `<key file>.new` is renamed over the key file, the directory fsynced;
//! 4. the keyring becomes {N}.
//!
//! Resuming ([`rotate`] again after a crash anywhere): the files say where
//! it stopped, and no second key is ever generated mid-rotation.
//!
//! | found | left to do |
//! |---|---|
//! | no `.new`, keyring absent or of 1 entry | everything (a new rotation) |
//! | `.new` (keyring of M, or {M, N}) | steps 2–4 with the key in `.new` |
//! | no `.new`, keyring {old, current} | step 4 |
//! | no `.new`, keyring {current, lost} | the new key was lost before it was installed: the keyring goes back to {current}, nothing rotated ([`Rotation::Abandoned`]) |
//!
//! The caller must hold the data directory's lock: no server may run on
//! it while the keyring and the key file change.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::keyring::{Keyring, keyring_path, read_and_open};
use crate::{CryptoError, DataRootKey, KeyFingerprint, MasterKey, sync_parent_dir};

/// The files a rotation changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationFiles {
    /// The master key file (read at start, replaced at step 3).
    pub key_file: PathBuf,
    /// `<key file>.new`: the new key from step 1 until step 3.
    pub new_key_file: PathBuf,
    /// `<data-dir>/keyring`.
    pub keyring: PathBuf,
}

impl RotationFiles {
    /// The files for the data directory `data_dir` whose key is `key_file`.
    pub fn new(data_dir: &Path, key_file: &Path) -> RotationFiles {
        let mut new_name = key_file.as_os_str().to_owned();
        new_name.push(".new");
        RotationFiles {
            key_file: key_file.to_path_buf(),
            new_key_file: PathBuf::from(new_name),
            keyring: keyring_path(data_dir),
        }
    }
}

/// What a rotation did, step by step, for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Step 1: a new key was written to `<key file>.new`.
    NewKeyGenerated {
        /// The new key.
        new: KeyFingerprint,
    },
    /// Step 1, resuming: `<key file>.new` from an interrupted rotation is
    /// used (never a second new key).
    NewKeyFound {
        /// The key found there.
        new: KeyFingerprint,
    },
    /// Step 2: the keyring opens with both keys.
    KeyringHoldsBoth {
        /// The key being retired.
        old: KeyFingerprint,
        /// Its successor.
        new: KeyFingerprint,
    },
    /// Step 3: the new key is in the key file.
    NewKeyInstalled {
        /// The key now in the key file.
        new: KeyFingerprint,
    },
    /// Resuming: the keyring opens with two keys and there is no
    /// `<key file>.new`, so only step 4 is left.
    OnlyRetirementLeft,
    /// Step 4: the keyring opens with `kept` only.
    OldKeyRetired {
        /// The key that no longer opens the keyring.
        retired: KeyFingerprint,
        /// The one that does.
        kept: KeyFingerprint,
    },
}

/// How [`rotate`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The key file holds `new`, the only key that opens the keyring.
    Done {
        /// The retired key.
        old: KeyFingerprint,
        /// The key now in the key file.
        new: KeyFingerprint,
        /// `Some(true)`: the data root is the retired key's own bytes (the
        /// key the data directory was made with, at its first rotation),
        /// so that key still decrypts the data without the keyring.
        /// `None`: not known (only step 4 was left, the old key is gone).
        root_is_retired_key: Option<bool>,
    },
    /// A rotation had written the keyring {current, N} but N was lost
    /// before it was installed (no `<key file>.new`, the key file still the
    /// old key): the keyring was put back to {current}. Nothing rotated.
    Abandoned {
        /// The key in the key file, the only one that opens the keyring.
        kept: KeyFingerprint,
        /// The lost key, no longer in the keyring.
        lost: KeyFingerprint,
    },
}

/// The current key, the keyring (if any) and the root it opens.
struct Current {
    key: MasterKey,
    keyring: Option<Keyring>,
    root: DataRootKey,
}

fn read_current(files: &RotationFiles) -> Result<Current, CryptoError> {
    let key = MasterKey::load(&files.key_file)?;
    let (keyring, root) = read_and_open(&files.keyring, &key)?;
    Ok(Current { key, keyring, root })
}

fn exists(path: &Path) -> Result<bool, CryptoError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CryptoError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Step 1: the new key in `<key file>.new` — generated (durably) if the
/// file does not exist, else read from it. Returns it and whether it was
/// generated.
pub fn new_key(files: &RotationFiles) -> Result<(MasterKey, bool), CryptoError> {
    MasterKey::load_or_create(&files.new_key_file)
}

/// Steps 2 and 4: the keyring replaced (atomically, durably) by one in
/// which `masters` (the key being retired first) open `root`.
pub fn write_keyring(
    files: &RotationFiles,
    root: &DataRootKey,
    masters: &[&MasterKey],
) -> Result<(), CryptoError> {
    Keyring::seal(root, masters)?.write(&files.keyring)
}

/// Step 3: `<key file>.new` renamed over the key file, the directory
/// fsynced.
pub fn install_new_key(files: &RotationFiles) -> Result<(), CryptoError> {
    fs::rename(&files.new_key_file, &files.key_file).map_err(|source| CryptoError::KeyFileIo {
        path: files.new_key_file.clone(),
        source,
    })?;
    sync_parent_dir(&files.key_file)
        .map_err(|(path, source)| CryptoError::KeyFileIo { path, source })
}

/// Rotates the master key of the data directory whose files are `files`,
/// or finishes a rotation that stopped (see the module docs), reporting
/// each step to `progress`.
pub fn rotate(
    files: &RotationFiles,
    progress: &mut dyn FnMut(Progress),
) -> Result<Rotation, CryptoError> {
    let current = read_current(files)?;
    let current_fp = current.key.fingerprint();
    let two_entries = current
        .keyring
        .as_ref()
        .filter(|k| k.entry_count() == 2)
        .map(Keyring::fingerprints);

    let new = if exists(&files.new_key_file)? {
        let (new, _) = new_key(files)?;
        if new.fingerprint() == current_fp {
            return Err(CryptoError::RotationState(format!(
                "{} holds the same key as {}: delete {} and run the rotation again",
                files.new_key_file.display(),
                files.key_file.display(),
                files.new_key_file.display()
            )));
        }
        progress(Progress::NewKeyFound {
            new: new.fingerprint(),
        });
        new
    } else if let Some(fingerprints) = two_entries {
        progress(Progress::OnlyRetirementLeft);
        write_keyring(files, &current.root, &[&current.key])?;
        let other = fingerprints
            .iter()
            .copied()
            .find(|f| *f != current_fp)
            .ok_or_else(|| CryptoError::RotationState("the keyring holds one key twice".into()))?;
        progress(Progress::OldKeyRetired {
            retired: other,
            kept: current_fp,
        });
        // Step 2 writes the key being retired first: if that is the key
        // in the key file, its successor never got there.
        return Ok(if fingerprints.first() == Some(&current_fp) {
            Rotation::Abandoned {
                kept: current_fp,
                lost: other,
            }
        } else {
            Rotation::Done {
                old: other,
                new: current_fp,
                root_is_retired_key: None,
            }
        });
    } else {
        let (new, generated) = new_key(files)?;
        debug_assert!(generated, "the file did not exist a moment ago");
        progress(Progress::NewKeyGenerated {
            new: new.fingerprint(),
        });
        new
    };
    let new_fp = new.fingerprint();

    write_keyring(files, &current.root, &[&current.key, &new])?;
    progress(Progress::KeyringHoldsBoth {
        old: current_fp,
        new: new_fp,
    });
    install_new_key(files)?;
    progress(Progress::NewKeyInstalled { new: new_fp });
    write_keyring(files, &current.root, &[&new])?;
    progress(Progress::OldKeyRetired {
        retired: current_fp,
        kept: new_fp,
    });
    Ok(Rotation::Done {
        old: current_fp,
        new: new_fp,
        root_is_retired_key: Some(current.root.is_bytes_of(&current.key)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CHUNK_ID_CONTEXT;
    use crate::keyring::open_data_root;

    /// A data directory and its key file beside it.
    struct Setup {
        _tmp: tempfile::TempDir,
        data_dir: PathBuf,
        files: RotationFiles,
    }

    fn setup() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        fs::create_dir(&data_dir).unwrap();
        let key_file = tmp.path().join("data.master.key");
        let (_, created) = MasterKey::load_or_create(&key_file).unwrap();
        assert!(created);
        let files = RotationFiles::new(&data_dir, &key_file);
        Setup {
            _tmp: tmp,
            data_dir,
            files,
        }
    }

    /// What a data key derived from the root looks like (the root itself
    /// has no accessor).
    fn root_id(root: &DataRootKey) -> [u8; 32] {
        *root.derive(CHUNK_ID_CONTEXT).as_bytes()
    }

    fn key_in(path: &Path) -> MasterKey {
        MasterKey::load(path).unwrap()
    }

    fn rotate_quietly(files: &RotationFiles) -> Result<Rotation, CryptoError> {
        rotate(files, &mut |_| {})
    }

    /// The end state of every rotation: the key file opens the data
    /// directory, the keyring has it alone, the root is unchanged, the old
    /// key is refused and no `.new` is left.
    fn assert_rotated(s: &Setup, old: &MasterKey, root_before: [u8; 32]) -> MasterKey {
        let new = key_in(&s.files.key_file);
        assert_ne!(new.fingerprint(), old.fingerprint(), "the key changed");
        let opened = open_data_root(&s.data_dir, &new).unwrap();
        assert_eq!(opened.keyring_entries, 1);
        assert_eq!(root_id(&opened.root), root_before, "the root is the same");
        assert!(matches!(
            open_data_root(&s.data_dir, old),
            Err(CryptoError::KeyNotInKeyring { .. })
        ));
        assert!(!s.files.new_key_file.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [&s.files.key_file, &s.files.keyring] {
                let mode = fs::metadata(path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", path.display());
            }
        }
        new
    }

    #[test]
    fn a_first_rotation_keeps_the_old_key_as_root_and_reports_every_step() {
        let s = setup();
        let old = key_in(&s.files.key_file);
        let root_before = root_id(&old.root_when_no_keyring());
        let mut steps = Vec::new();
        let done = rotate(&s.files, &mut |p| steps.push(p)).unwrap();
        let new = assert_rotated(&s, &old, root_before);
        let (old_fp, new_fp) = (old.fingerprint(), new.fingerprint());
        assert_eq!(
            steps,
            [
                Progress::NewKeyGenerated { new: new_fp },
                Progress::KeyringHoldsBoth {
                    old: old_fp,
                    new: new_fp
                },
                Progress::NewKeyInstalled { new: new_fp },
                Progress::OldKeyRetired {
                    retired: old_fp,
                    kept: new_fp
                },
            ]
        );
        assert_eq!(
            done,
            Rotation::Done {
                old: old_fp,
                new: new_fp,
                root_is_retired_key: Some(true)
            }
        );

        // A second rotation: the root is no longer the retired key.
        let done = rotate_quietly(&s.files).unwrap();
        let newer = assert_rotated(&s, &new, root_before);
        assert_eq!(
            done,
            Rotation::Done {
                old: new_fp,
                new: newer.fingerprint(),
                root_is_retired_key: Some(false)
            }
        );
        assert!(open_data_root(&s.data_dir, &old).is_err());
    }

    /// A crash after each step (simulated by running the steps one by one
    /// and stopping), then the command again: the rotation always ends with
    /// the key generated at step 1 alone opening the unchanged root. Run
    /// both for a data directory without a keyring and for one rotated
    /// before; stale temporary files of a crash inside a step are left
    /// behind too.
    #[test]
    fn a_rotation_stopped_after_any_step_finishes_when_run_again() {
        for rotated_before in [false, true] {
            for stop_after in 0..=4 {
                let s = setup();
                if rotated_before {
                    rotate_quietly(&s.files).unwrap();
                }
                let old = key_in(&s.files.key_file);
                let root_before = root_id(&open_data_root(&s.data_dir, &old).unwrap().root);
                let root = open_data_root(&s.data_dir, &old).unwrap().root;

                let mut generated = None;
                if stop_after >= 1 {
                    let (new, created) = new_key(&s.files).unwrap();
                    assert!(created);
                    generated = Some(new.fingerprint());
                    if stop_after >= 2 {
                        write_keyring(&s.files, &root, &[&old, &new]).unwrap();
                    }
                    if stop_after >= 3 {
                        install_new_key(&s.files).unwrap();
                    }
                    if stop_after >= 4 {
                        write_keyring(&s.files, &root, &[&new]).unwrap();
                    }
                }
                // A crash inside the next step leaves its temporary file.
                let mut tmp = s.files.keyring.as_os_str().to_owned();
                tmp.push(".tmp");
                fs::write(PathBuf::from(tmp), b"torn").unwrap();
                let mut tmp = s.files.new_key_file.as_os_str().to_owned();
                tmp.push(".tmp");
                fs::write(PathBuf::from(tmp), b"torn").unwrap();

                // Between steps 2 and 4 the data directory opens with
                // either key the key file might hold (so a server started
                // then runs, and warns).
                if (2..4).contains(&stop_after) {
                    let here = key_in(&s.files.key_file);
                    let opened = open_data_root(&s.data_dir, &here).unwrap();
                    assert_eq!(opened.keyring_entries, 2);
                    assert_eq!(root_id(&opened.root), root_before);
                }

                let what =
                    format!("rotated before: {rotated_before}, stopped after step {stop_after}");
                let in_key_file = key_in(&s.files.key_file);
                let done = rotate_quietly(&s.files).unwrap_or_else(|e| panic!("{what}: {e}"));
                if stop_after == 4 {
                    // That rotation had finished: running the command
                    // again is a new rotation.
                    assert_eq!(Some(in_key_file.fingerprint()), generated, "{what}");
                    assert_rotated(&s, &in_key_file, root_before);
                    assert!(open_data_root(&s.data_dir, &old).is_err(), "{what}");
                    continue;
                }
                let new = assert_rotated(&s, &old, root_before);
                if let Some(generated) = generated {
                    assert_eq!(
                        new.fingerprint(),
                        generated,
                        "{what}: a second key was generated"
                    );
                }
                let Rotation::Done { old: o, new: n, .. } = done else {
                    panic!("{what}: {done:?}");
                };
                assert_eq!((o, n), (old.fingerprint(), new.fingerprint()), "{what}");
                // And once more: a new, complete rotation.
                rotate_quietly(&s.files).unwrap();
                let newest = key_in(&s.files.key_file);
                assert_rotated(&s, &new, root_before);
                assert_ne!(newest.fingerprint(), new.fingerprint());
            }
        }
    }

    /// After step 3 only step 4 is left: reported, and done without the
    /// old key.
    #[test]
    fn resuming_after_step_3_reports_only_the_retirement() {
        let s = setup();
        let old = key_in(&s.files.key_file);
        let root = old.root_when_no_keyring();
        let (new, _) = new_key(&s.files).unwrap();
        write_keyring(&s.files, &root, &[&old, &new]).unwrap();
        install_new_key(&s.files).unwrap();
        let mut steps = Vec::new();
        let done = rotate(&s.files, &mut |p| steps.push(p)).unwrap();
        assert_eq!(
            steps,
            [
                Progress::OnlyRetirementLeft,
                Progress::OldKeyRetired {
                    retired: old.fingerprint(),
                    kept: new.fingerprint()
                }
            ]
        );
        assert_eq!(
            done,
            Rotation::Done {
                old: old.fingerprint(),
                new: new.fingerprint(),
                root_is_retired_key: None
            }
        );
        assert_rotated(&s, &old, root_id(&root));
    }

    /// The new key deleted after step 2 (by hand): the keyring goes back
    /// to the key in the key file, and says nothing rotated.
    #[test]
    fn a_new_key_lost_before_it_was_installed_abandons_the_rotation() {
        let s = setup();
        let old = key_in(&s.files.key_file);
        let root = old.root_when_no_keyring();
        let (new, _) = new_key(&s.files).unwrap();
        write_keyring(&s.files, &root, &[&old, &new]).unwrap();
        fs::remove_file(&s.files.new_key_file).unwrap();
        let done = rotate_quietly(&s.files).unwrap();
        assert_eq!(
            done,
            Rotation::Abandoned {
                kept: old.fingerprint(),
                lost: new.fingerprint()
            }
        );
        let opened = open_data_root(&s.data_dir, &old).unwrap();
        assert_eq!(opened.keyring_entries, 1);
        assert_eq!(root_id(&opened.root), root_id(&root));
        assert!(open_data_root(&s.data_dir, &new).is_err());
    }

    #[test]
    fn a_key_that_does_not_open_the_keyring_changes_nothing() {
        let s = setup();
        let other = MasterKey::from_bytes([3; 32]);
        write_keyring(&s.files, &DataRootKey::from_bytes([4; 32]), &[&other]).unwrap();
        let before = fs::read(&s.files.keyring).unwrap();
        let key_before = fs::read(&s.files.key_file).unwrap();
        let err = rotate_quietly(&s.files).unwrap_err();
        assert!(matches!(err, CryptoError::KeyNotInKeyring { .. }), "{err}");
        assert_eq!(fs::read(&s.files.keyring).unwrap(), before);
        assert_eq!(fs::read(&s.files.key_file).unwrap(), key_before);
        assert!(!s.files.new_key_file.exists(), "no key generated");
    }

    #[test]
    fn a_missing_key_file_is_an_error_not_a_new_key() {
        let s = setup();
        fs::remove_file(&s.files.key_file).unwrap();
        let err = rotate_quietly(&s.files).unwrap_err();
        assert!(matches!(err, CryptoError::KeyFileIo { .. }), "{err}");
        assert!(!s.files.key_file.exists() && !s.files.new_key_file.exists());
    }

    #[test]
    fn a_new_file_holding_the_current_key_is_refused() {
        let s = setup();
        fs::copy(&s.files.key_file, &s.files.new_key_file).unwrap();
        let err = rotate_quietly(&s.files).unwrap_err();
        assert!(err.to_string().contains("holds the same key"), "{err}");
    }
}
