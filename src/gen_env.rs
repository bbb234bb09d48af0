//! `cairn gen-env`: a new `.env` for docker-compose.yml — S3 credentials,
//! the cluster secret, the master key and Grafana's admin password, all
//! random. Nothing fixed ships: compose refuses to start without these.

use std::io::Write;
use std::path::Path;

use cairn_storage_engine::{generate_credentials, random_bytes};

/// The file's text (fresh random values each call).
pub fn env_text() -> String {
    let (access, secret) = generate_credentials();
    let (_, grafana) = generate_credentials();
    format!(
        "# Secrets for docker-compose.yml, made by `cairn gen-env`. Keep this file\n\
         # private (mode 0600) and back it up: on a cluster CAIRN_MASTER_KEY encrypts\n\
         # the data (a single node keeps its own key in its data volume).\n\
         CAIRN_ACCESS_KEY={access}\n\
         CAIRN_SECRET_KEY={secret}\n\
         CAIRN_CLUSTER_SECRET={}\n\
         CAIRN_MASTER_KEY={}\n\
         GRAFANA_ADMIN_PASSWORD={grafana}\n",
        hex::encode(random_bytes::<32>()),
        hex::encode(random_bytes::<32>()),
    )
}

/// Writes the text to `output` (created with mode 0600; an existing file is
/// never overwritten: it may hold the only copy of a master key) or stdout.
pub fn run(output: Option<&Path>) -> Result<(), String> {
    let text = env_text();
    match output {
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing to stdout: {e}")),
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        format!("{} exists; not overwriting it (it may hold the only copy of a master key)", path.display())
                    } else {
                        format!("cannot create {}: {e}", path.display())
                    }
                })?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            eprintln!("cairn: wrote {} (mode 0600)", path.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn generated_env_passes_the_credential_rules_and_differs_each_time() {
        let text = super::env_text();
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        crate::config::validate_credentials(&get("CAIRN_ACCESS_KEY"), &get("CAIRN_SECRET_KEY"))
            .unwrap();
        for hex64 in ["CAIRN_CLUSTER_SECRET", "CAIRN_MASTER_KEY"] {
            let v = get(hex64);
            assert_eq!(v.len(), 64);
            assert!(v.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(super::env_text(), text);
    }
}
