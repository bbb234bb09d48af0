//! Certificates for TLS between nodes (`cairn admin cluster certs`): a
//! cluster CA and, under it, one certificate per node naming it as
//! [`node_dns_name`]. ECDSA P-256 keys (rcgen with ring), PEM files.
//!
//! The CA may only issue names under `cairn.internal` (a name constraint),
//! so its certificate vouches for nothing else even where it is trusted by
//! mistake. A node certificate is valid for both ends of a connection
//! (server and client authentication): every node is both.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};

use crate::NodeId;
use crate::tls::node_dns_name;

/// The subject of every cluster CA this module makes. A CA is read back
/// from its key and this name (rcgen needs no more to sign with it), so
/// it must never change.
const CA_COMMON_NAME: &str = "Cairn cluster CA";
const CA_ORGANIZATION: &str = "Cairn";
/// The only DNS names the CA may issue.
const PERMITTED_DOMAIN: &str = "cairn.internal";
/// Certificates start being valid this long before they are made, for
/// nodes whose clocks are a little behind.
const BACKDATE: time::Duration = time::Duration::hours(1);

/// A cluster CA able to issue node certificates.
pub struct CertAuthority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertAuthority(..)")
    }
}

fn ca_params(days: u32) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    name.push(DnType::OrganizationName, CA_ORGANIZATION);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(PERMITTED_DOMAIN.to_owned())],
        excluded_subtrees: Vec::new(),
    });
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(i64::from(days));
    params
}

impl CertAuthority {
    /// A new CA, valid for `days`.
    pub fn generate(days: u32) -> Result<Self, String> {
        let key = KeyPair::generate().map_err(|e| format!("generating the CA key: {e}"))?;
        let params = ca_params(days);
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("making the CA certificate: {e}"))?;
        Ok(CertAuthority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA this module made earlier, from its certificate and key (PEM).
    /// Certificates it issues are checked against `cert_pem` by the caller
    /// ([`crate::ClusterTls::from_pem`]): a key that is not this CA's gives
    /// certificates that do not verify.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("reading the CA key: {e}"))?;
        // Only the subject, key identifier method and key usages matter for
        // signing: the same as when it was made (validity is not used).
        Ok(CertAuthority {
            cert_pem: cert_pem.to_owned(),
            issuer: Issuer::new(ca_params(1), key),
        })
    }

    /// The CA certificate (PEM): what every node trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM). Secret: whoever has it can join the
    /// cluster's TLS as any node.
    pub fn key_pem(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(self.issuer.key().serialize_pem())
    }

    /// A new key and certificate for node `id` (PEM: certificate, key),
    /// valid for `days`.
    pub fn issue_node(
        &self,
        id: NodeId,
        days: u32,
    ) -> Result<(String, zeroize::Zeroizing<String>), String> {
        let name = node_dns_name(id);
        let key = KeyPair::generate().map_err(|e| format!("generating node {id}'s key: {e}"))?;
        let mut params = CertificateParams::new(vec![name.clone()])
            .map_err(|e| format!("node {id}'s certificate: {e}"))?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        subject.push(DnType::OrganizationName, CA_ORGANIZATION);
        params.distinguished_name = subject;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + time::Duration::days(i64::from(days));
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("signing node {id}'s certificate: {e}"))?;
        Ok((cert.pem(), zeroize::Zeroizing::new(key.serialize_pem())))
    }
}
