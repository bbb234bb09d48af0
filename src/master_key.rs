//! The master key and the data directory's keyring, for `cairn server` and
//! `cairn admin master-key rotate`: where the key may be and is
//! ([`load_master_key`]), the data root it opens ([`open_data_root`]), and
//! the offline rotation ([`rotate`]).
//!
//! The keyring's format and the rotation's steps live in `cairn-crypto`
//! (`keyring`, `rotation`); this module owns the rules about which files
//! may be used, the data directory's lock, and every message an operator
//! reads. It must never derive a data key from the master key: only the
//! root ([`cairn_storage_engine::DataRootKey`]) leaves it.

use std::path::{Path, PathBuf};

use cairn_crypto::CryptoError;
use cairn_crypto::keyring::keyring_path;
use cairn_crypto::rotation::{Progress, Rotation, RotationFiles};
use cairn_storage_engine::{DataRootKey, MasterKey};

use crate::config::MasterKeySource;

/// Where the master key is, after the rules about where it may be.
enum KeyLocation<'a> {
    /// CAIRN_MASTER_KEY or the config file's `master_key`.
    Given(&'a str),
    /// A key file; `may_create`: it may be made (the data directory holds
    /// nothing sealed yet) if it does not exist.
    File { path: PathBuf, may_create: bool },
}

/// Applies the rules: a key inside the data directory is refused unless the
/// operator allows it (an old data directory's `master.key` gets the
/// command to move it), and a data directory that holds data is never
/// given a new key.
fn locate(src: &MasterKeySource) -> Result<KeyLocation<'_>, String> {
    let file = &src.file;
    let old_place = src.data_dir.join("master.key");
    let env_key = src.hex.is_some();
    if !src.allow_in_data_dir {
        let how = "or start with --allow-master-key-in-data-dir to accept the risk";
        if old_place.exists() {
            let move_it = if env_key {
                format!(
                    "CAIRN_MASTER_KEY is given too: if it holds this key, delete {}",
                    old_place.display()
                )
            } else if src.file_is_default && !file.exists() {
                format!(
                    "move it out and keep it elsewhere (another disk, a secret store):\n    mv {} {}\nor give --master-key-file / CAIRN_MASTER_KEY",
                    old_place.display(),
                    file.display()
                )
            } else {
                format!(
                    "the key in use is {}: if {} is a copy of it, delete the copy",
                    file.display(),
                    old_place.display()
                )
            };
            return Err(format!(
                "the master key is inside the data directory ({}), where a copy of the directory or a stolen disk carries it; {move_it}; {how}",
                old_place.display()
            ));
        }
        if !env_key && is_inside(file, &src.data_dir) {
            return Err(format!(
                "the master key file {} is inside the data directory {}, where a copy of the directory or a stolen disk carries it; keep it elsewhere, {how}",
                file.display(),
                src.data_dir.display()
            ));
        }
    }
    if let Some(hex) = &src.hex {
        return Ok(KeyLocation::Given(hex));
    }
    if src.file_is_default && !file.exists() && old_place.exists() {
        // Allowed above: the old place, as before.
        return Ok(KeyLocation::File {
            path: old_place,
            may_create: false,
        });
    }
    if !file.exists() && holds_data(&src.data_dir) {
        return Err(format!(
            "no master key at {}, but the data directory {} already holds data sealed under one: give its key with --master-key-file or CAIRN_MASTER_KEY (a new key would read nothing)",
            file.display(),
            src.data_dir.display()
        ));
    }
    Ok(KeyLocation::File {
        path: file.clone(),
        may_create: true,
    })
}

/// The master key: CAIRN_MASTER_KEY, else the key file — which must not be
/// inside the data directory (unless the operator allows it), and is
/// created only for a data directory that holds nothing yet (a missing key
/// for existing data is an error, never a fresh key that reads nothing).
pub(crate) fn load_master_key(src: &MasterKeySource) -> Result<MasterKey, String> {
    match locate(src)? {
        KeyLocation::Given(hex) => MasterKey::from_hex(hex)
            .map_err(|e| format!("CAIRN_MASTER_KEY is not a valid key (64 hex digits): {e}")),
        KeyLocation::File {
            path,
            may_create: false,
        } => MasterKey::load(&path).map_err(|e| e.to_string()),
        KeyLocation::File {
            path,
            may_create: true,
        } => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::server::create_private_dir(parent)?;
            }
            // The error names the file already.
            let (key, created) = MasterKey::load_or_create(&path).map_err(|e| e.to_string())?;
            if created {
                println!(
                    "cairn: generated a new master key in {} (mode 0600). Back it up: without it the data cannot be read.",
                    path.display()
                );
            }
            Ok(key)
        }
    }
}

/// Whether `path` is (or would be created) inside `dir`, after resolving
/// symlinks of whatever part of each exists.
fn is_inside(path: &Path, dir: &Path) -> bool {
    fn resolved(p: &Path) -> PathBuf {
        let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        // The longest existing prefix, canonicalised, plus the rest.
        let mut existing = absolute.as_path();
        let mut rest = Vec::new();
        loop {
            if let Ok(canonical) = existing.canonicalize() {
                let mut out = canonical;
                out.extend(rest.iter().rev());
                return out;
            }
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                _ => return absolute,
            }
        }
    }
    resolved(path).starts_with(resolved(dir))
}

/// Whether the data directory already holds something sealed under some
/// master key: a metadata store, or a keyring (a data directory rotated
/// before its first object).
fn holds_data(dir: &Path) -> bool {
    dir.join("meta").join("CURRENT").exists() || keyring_path(dir).exists()
}

/// Where the key in use came from, for messages.
fn key_origin(src: &MasterKeySource) -> String {
    if src.hex.is_some() {
        "CAIRN_MASTER_KEY".to_owned()
    } else {
        src.file.display().to_string()
    }
}

/// The message for a master key that has no entry in the keyring.
fn not_in_keyring(data_dir: &Path, origin: &str, e: &CryptoError) -> String {
    format!(
        "the master key in use does not open this data directory's keyring: {} has {e}. The key in use comes from {origin}; start with the key the last `cairn admin master-key rotate` on {} left in its key file — a key from before that rotation no longer opens it",
        keyring_path(data_dir).display(),
        data_dir.display()
    )
}

/// The data root of `src`'s data directory, opened with `master` (which is
/// dropped, and so zeroized, by the caller once this returns): from the
/// keyring if there is one, else the master key's own bytes. With
/// `random_root_if_new`, a data directory that holds nothing yet first gets
/// a random root in a keyring of its own (a single node's; cluster nodes
/// share their root through their shared key, so they keep the key's
/// bytes). A keyring of two keys (a rotation that did not finish) is
/// logged as a warning.
pub(crate) fn open_data_root(
    src: &MasterKeySource,
    master: &MasterKey,
    random_root_if_new: bool,
) -> Result<DataRootKey, String> {
    if cairn_crypto::keyring::root_is_in_keyring(&src.data_dir)
        && !keyring_path(&src.data_dir).exists()
    {
        return Err(format!(
            "the data directory's keyring {} is missing: this data directory's data root is random and kept only there (sealed under the master key), so nothing can be read without it. Restore it from the backup of the data directory; the master key alone does not open the data",
            keyring_path(&src.data_dir).display()
        ));
    }
    if random_root_if_new && !holds_data(&src.data_dir) {
        cairn_crypto::keyring::create_random_root(&src.data_dir, master)
            .map_err(|e| format!("creating the data directory's keyring: {e}"))?;
        tracing::info!(
            keyring = %keyring_path(&src.data_dir).display(),
            "new data directory: its data root is random, sealed in the keyring under the master key"
        );
    }
    let opened =
        cairn_crypto::keyring::open_data_root(&src.data_dir, master).map_err(|e| match e {
            CryptoError::KeyNotInKeyring { .. } => {
                not_in_keyring(&src.data_dir, &key_origin(src), &e)
            }
            other => format!("opening the data directory's keyring: {other}"),
        })?;
    if opened.keyring_entries > 1 {
        tracing::warn!(
            keyring = %keyring_path(&src.data_dir).display(),
            "the keyring opens with two master keys: a `cairn admin master-key rotate` did not finish. Stop the server and run the rotate command again to retire the old key"
        );
    }
    Ok(opened.root)
}

/// `cairn admin master-key rotate` options: where the data directory and
/// its key are, found as `cairn server` finds them.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The server's data directory (its --data-dir). [default: the config
    /// file's data_dir, else ./cairn-data]
    #[arg(long, env = "CAIRN_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The master key file to rotate (the server's --master-key-file).
    /// [default: as the server: the config file's master_key_file, the
    /// systemd credential cairn-master-key, else <data-dir>.master.key]
    #[arg(long, env = "CAIRN_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// The server's TOML configuration file, for its data_dir and
    /// master_key_file.
    #[arg(long, env = "CAIRN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Rotate a key file inside the data directory (as the server's flag).
    #[arg(long, env = "CAIRN_ALLOW_MASTER_KEY_IN_DATA_DIR")]
    allow_master_key_in_data_dir: bool,
}

/// Why the key cannot be rotated where it comes from.
fn env_key_refusal(data_dir: &Path) -> String {
    let dir = data_dir.display();
    format!(
        "the master key comes from CAIRN_MASTER_KEY (or the config file's master_key), which this command cannot change. \
         Put it into a file first: (umask 077; printf '%s\\n' \"$CAIRN_MASTER_KEY\" > /path/to/master.key); \
         then unset CAIRN_MASTER_KEY (and remove master_key from the config file), \
         run: cairn admin master-key rotate --data-dir {dir} --master-key-file /path/to/master.key; \
         and start the server with --master-key-file /path/to/master.key, or copy that file's new content into \
         the secret store that sets CAIRN_MASTER_KEY and delete the file"
    )
}

/// The key file to rotate: it must exist, be a regular file (not a
/// symlink, which the rename would replace) and not be a systemd
/// credential (a read-only copy).
fn rotatable_key_file(src: &MasterKeySource) -> Result<PathBuf, String> {
    let path = match locate(src)? {
        KeyLocation::Given(_) => return Err(env_key_refusal(&src.data_dir)),
        KeyLocation::File { path, .. } => path,
    };
    if let Some(credentials) = std::env::var_os("CREDENTIALS_DIRECTORY")
        && path.starts_with(&credentials)
    {
        return Err(format!(
            "the master key {} is a systemd credential, a read-only copy: rotate the file the unit's LoadCredential=cairn-master-key:FILE names, with --master-key-file FILE, then restart the unit",
            path.display()
        ));
    }
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "the master key file {} is a symbolic link: give the file it points to with --master-key-file (a rotation replaces the file, which would replace the link)",
            path.display()
        )),
        Ok(_) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no master key at {}: nothing to rotate. Give the key file the server uses with --master-key-file (or --config)",
            path.display()
        )),
        Err(e) => Err(format!("master key file {}: {e}", path.display())),
    }
}

/// One line per step, as it becomes durable.
fn progress_line(files: &RotationFiles, progress: &Progress) -> String {
    match progress {
        Progress::NewKeyGenerated { new } => format!(
            "1/4 a new master key ({new}) is in {} (mode 0600)",
            files.new_key_file.display()
        ),
        Progress::NewKeyFound { new } => format!(
            "1/4 continuing the interrupted rotation with the new key ({new}) already in {}",
            files.new_key_file.display()
        ),
        Progress::KeyringHoldsBoth { old, new } => format!(
            "2/4 the keyring {} opens with the old key ({old}) and the new key ({new})",
            files.keyring.display()
        ),
        Progress::NewKeyInstalled { new } => format!(
            "3/4 the new key ({new}) replaced the old one in {}",
            files.key_file.display()
        ),
        Progress::OnlyRetirementLeft => format!(
            "an interrupted rotation left the keyring {} with two keys and no {}: finishing it (step 4)",
            files.keyring.display(),
            files.new_key_file.display()
        ),
        Progress::OldKeyRetired { retired, kept } => format!(
            "4/4 the keyring {} opens with {kept} only; {retired} is retired",
            files.keyring.display()
        ),
    }
}

/// Runs `cairn admin master-key rotate`: `Ok(true)` when the key in the key
/// file is a new one that alone opens the data directory.
pub(crate) fn rotate(args: RotateArgs) -> Result<bool, String> {
    let src = MasterKeySource::from_args(
        args.config.as_deref(),
        args.data_dir,
        args.master_key_file,
        args.allow_master_key_in_data_dir,
    )?;
    let data_dir = src.data_dir.clone();
    if !data_dir.is_dir() {
        return Err(format!(
            "no data directory at {}: give the server's --data-dir (or --config)",
            data_dir.display()
        ));
    }
    // Held until the rotation is over: no server may start meanwhile.
    let _lock = crate::server::lock_data_dir(&data_dir).map_err(|e| match e {
        crate::server::LockError::InUse { who } => format!(
            "a cairn server is running on the data directory {} ({who}): stop it first. The master key is rotated offline (on a cluster, one node at a time)",
            data_dir.display()
        ),
        crate::server::LockError::Failed(message) => message,
    })?;
    let key_file = rotatable_key_file(&src)?;
    let files = RotationFiles::new(&data_dir, &key_file);
    println!(
        "cairn: rotating the master key of the data directory {} (key file {})",
        data_dir.display(),
        key_file.display()
    );
    let rotation = cairn_crypto::rotation::rotate(&files, &mut |p| {
        println!("cairn: {}", progress_line(&files, &p));
    })
    .map_err(|e| match e {
        CryptoError::KeyNotInKeyring { .. } => {
            not_in_keyring(&data_dir, &key_file.display().to_string(), &e)
        }
        other => format!("rotating the master key: {other}"),
    })?;
    match rotation {
        Rotation::Done {
            old,
            new,
            root_is_retired_key,
        } => {
            println!(
                "cairn: done. The new key ({new}) is in {}; the old key ({old}) no longer opens this data directory. Back up the new key apart from the data, and destroy the copies of the old one.",
                key_file.display()
            );
            if root_is_retired_key == Some(true) {
                println!(
                    "cairn: note: the old key ({old}) is also this data directory's data root — the directory was made with it, and a rotation does not re-encrypt data. A copy of that key still decrypts the data with no keyring at all: destroy every copy. If it may have leaked, a rotation does not help; copy the data into a new installation (docs/security.md, \"Rotating the master key\")."
                );
            }
            Ok(true)
        }
        Rotation::Abandoned { kept, lost } => {
            println!(
                "cairn: the rotation begun earlier lost its new key ({lost}) before it reached {} ({} is gone): the keyring opens with the key in {} ({kept}) only, as before that rotation. Nothing was rotated; run the command again to rotate.",
                key_file.display(),
                files.new_key_file.display(),
                key_file.display()
            );
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    /// A key file is inside the data directory however the paths are
    /// spelled: relative, with `..`, through a symlink, not yet existing.
    #[test]
    fn a_key_inside_the_data_dir_is_recognised() {
        use super::is_inside;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        assert!(is_inside(&data.join("master.key"), &data));
        assert!(is_inside(&data.join("sub/new/master.key"), &data));
        assert!(is_inside(&data.join("../data/master.key"), &data));
        assert!(!is_inside(&tmp.path().join("data.master.key"), &data));
        assert!(!is_inside(&tmp.path().join("database/master.key"), &data));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        assert!(is_inside(&link.join("master.key"), &data));
        assert!(is_inside(&data.join("k"), &link));
    }

    /// A data directory rotated before it held any data is never given a
    /// fresh key: its keyring counts as data.
    #[test]
    fn a_keyring_counts_as_data() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!super::holds_data(tmp.path()));
        std::fs::write(tmp.path().join("keyring"), b"x").unwrap();
        assert!(super::holds_data(tmp.path()));
    }
}
