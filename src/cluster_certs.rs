//! `cairn admin cluster certs`: the certificates for TLS between cluster
//! nodes (docs/cluster.md, "TLS between nodes"), offline: a cluster CA and
//! one certificate and key per node, as PEM files in one directory.
//!
//! Files: `ca.pem` (every node's `--cluster-tls-ca`), `ca.key` (keep it
//! offline: it makes node certificates), `node-ID.pem` / `node-ID.key`
//! (node ID's `--cluster-tls-cert` / `--cluster-tls-key`). Keys are written
//! 0600, nothing is ever overwritten, and a directory that already holds
//! `ca.pem` and `ca.key` is reused: only the missing nodes' files are made
//! (adding a node, or a node's new certificate after its files were moved
//! away).

use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_cluster::{CertAuthority, ClusterTls, node_dns_name};

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// The node ids to make certificates for, comma-separated (as in
    /// --cluster-nodes).
    #[arg(long, value_delimiter = ',', required = true, value_name = "ID,…")]
    nodes: Vec<u64>,
    /// Where to write them (created if missing, mode 0700). A directory
    /// with ca.pem and ca.key already in it: that CA issues the new ones.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How long the node certificates are valid, days.
    #[arg(long, default_value_t = 825)]
    days: u32,
    /// How long a new CA certificate is valid, days.
    #[arg(long, default_value_t = 3650)]
    ca_days: u32,
}

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";

fn node_files(out: &Path, id: u64) -> (PathBuf, PathBuf) {
    (
        out.join(format!("node-{id}.pem")),
        out.join(format!("node-{id}.key")),
    )
}

/// Creates `path` with `mode` (never over an existing file) holding `text`.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} exists; not overwriting it", path.display())
            } else {
                format!("cannot create {}: {e}", path.display())
            }
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Runs the command; prints each file written.
pub fn run(args: &CertsArgs) -> Result<(), String> {
    let mut ids = args.nodes.clone();
    ids.sort_unstable();
    ids.dedup();
    if let Some(bad) = ids
        .iter()
        .find(|id| **id == 0 || **id > u64::from(u16::MAX))
    {
        return Err(format!("node id {bad}: ids are 1–65535"));
    }
    if args.days == 0 || args.ca_days == 0 {
        return Err("--days and --ca-days must be at least 1".into());
    }
    let out = &args.out;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    }
    // Nothing is written unless everything can be.
    for id in &ids {
        let (cert, key) = node_files(out, *id);
        for path in [cert, key] {
            if path.exists() {
                return Err(format!(
                    "{} exists; not overwriting it (move it away to make node {id} a new certificate)",
                    path.display()
                ));
            }
        }
    }
    let (ca_cert, ca_key) = (out.join(CA_CERT), out.join(CA_KEY));
    let ca = match (ca_cert.exists(), ca_key.exists()) {
        (true, true) => {
            let ca = CertAuthority::from_pem(&read(&ca_cert)?, &read(&ca_key)?)?;
            println!(
                "using the CA in {} and {}",
                ca_cert.display(),
                ca_key.display()
            );
            ca
        }
        (false, false) => {
            let ca = CertAuthority::generate(args.ca_days)?;
            write_new(&ca_key, &ca.key_pem(), 0o600)?;
            println!(
                "wrote {} (the CA's key, mode 0600: keep it off the nodes)",
                ca_key.display()
            );
            write_new(&ca_cert, ca.cert_pem(), 0o644)?;
            println!(
                "wrote {} (the cluster CA: every node's --cluster-tls-ca)",
                ca_cert.display()
            );
            ca
        }
        _ => {
            return Err(format!(
                "{} holds only one of {CA_CERT} and {CA_KEY}: give both (to reuse that CA) or neither",
                out.display()
            ));
        }
    };
    for id in ids {
        let (cert_pem, key_pem) = ca.issue_node(id, args.days)?;
        // The checks every node makes at start and on every handshake: a
        // reused CA whose key is not the certificate's fails here.
        ClusterTls::from_pem(
            id,
            ca.cert_pem().as_bytes(),
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
        )
        .map_err(|e| format!("node {id}'s new certificate does not verify: {e}"))?;
        let (cert, key) = node_files(out, id);
        write_new(&key, &key_pem, 0o600)?;
        write_new(&cert, &cert_pem, 0o644)?;
        println!(
            "wrote {} and {} (node {id}, {}: its --cluster-tls-cert and --cluster-tls-key)",
            cert.display(),
            key.display(),
            node_dns_name(id)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(out: &Path, nodes: &[u64]) -> CertsArgs {
        CertsArgs {
            nodes: nodes.to_vec(),
            out: out.to_owned(),
            days: 30,
            ca_days: 60,
        }
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn certs_are_made_once_keys_private_and_a_kept_ca_issues_more() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        run(&args(&out, &[2, 1])).unwrap();
        assert_eq!(mode(&out.join("ca.key")), 0o600);
        assert_eq!(mode(&out.join("node-1.key")), 0o600);
        assert_eq!(mode(&out.join("node-2.pem")), 0o644);
        let ca = std::fs::read(out.join("ca.pem")).unwrap();
        let before = std::fs::read(out.join("node-1.pem")).unwrap();

        // Never overwritten, and nothing written when refused.
        let err = run(&args(&out, &[3, 1])).unwrap_err();
        assert!(err.contains("node-1"), "{err}");
        assert!(!out.join("node-3.pem").exists());
        assert_eq!(std::fs::read(out.join("node-1.pem")).unwrap(), before);

        // The same CA issues a new node's certificate.
        run(&args(&out, &[3])).unwrap();
        assert_eq!(std::fs::read(out.join("ca.pem")).unwrap(), ca);
        for id in [1, 2, 3] {
            ClusterTls::from_files(
                id,
                &out.join("ca.pem"),
                &out.join(format!("node-{id}.pem")),
                &out.join(format!("node-{id}.key")),
            )
            .unwrap();
        }
        // A certificate is its own node's only.
        let err = ClusterTls::from_files(
            2,
            &out.join("ca.pem"),
            &out.join("node-1.pem"),
            &out.join("node-1.key"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("node-2.cairn.internal"), "{err}");

        // Half a CA is refused.
        std::fs::remove_file(out.join("ca.key")).unwrap();
        assert!(run(&args(&out, &[4])).unwrap_err().contains("only one"));
        assert!(run(&args(&out, &[0])).is_err());
    }
}
