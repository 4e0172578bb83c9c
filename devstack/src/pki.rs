//! The development PKI: a local CA (kept between runs, so whatever trusts it keeps working) and a
//! server certificate for every local host name, made at run time. Nothing here is ever committed.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Host names the server certificate covers: loopback and the compose service names.
pub const SERVER_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "identity",
    "keyvault",
    "azurite",
    "storage",
    "local-azure",
    "third-party-api",
    "main-app",
    "queue-worker",
];

const CA_COMMON_NAME: &str = "keyless-azure devstack CA";

/// The CA and server certificate files of one state directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// CA certificate (PEM): what clients trust through `EXTRA_CA_CERTS`.
    pub ca_cert: PathBuf,
    /// Server certificate chain (PEM): leaf then CA.
    pub server_cert: PathBuf,
    /// Server private key (PKCS#8 PEM, mode 0600).
    pub server_key: PathBuf,
}

impl DevPki {
    /// Loads the CA from `dir` or creates it, then issues a fresh server certificate.
    pub fn ensure(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_cert = dir.join("ca.pem");
        let ca_key_path = dir.join("ca.key");
        let ca_key = match (std::fs::read_to_string(&ca_key_path), ca_cert.exists()) {
            (Ok(pem), true) => {
                KeyPair::from_pem(&pem).context("the stored CA key is unreadable")?
            }
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params().self_signed(&key)?;
                write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
                std::fs::write(&ca_cert, cert.pem())?;
                key
            }
        };
        let issuer = Issuer::new(ca_params(), ca_key);

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(
            SERVER_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )?;
        params
            .distinguished_name
            .push(DnType::CommonName, "keyless-azure devstack");
        let leaf = params.signed_by(&server_key, &issuer)?;
        let chain = format!("{}{}", leaf.pem(), std::fs::read_to_string(&ca_cert)?);
        let server_cert = dir.join("server.pem");
        let server_key_path = dir.join("server.key");
        std::fs::write(&server_cert, chain)?;
        write_private(&server_key_path, server_key.serialize_pem().as_bytes())?;
        Ok(Self {
            ca_cert,
            server_cert,
            server_key: server_key_path,
        })
    }

    /// A rustls server configuration serving the server certificate.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(&self.server_cert)
            .context("server certificate")?
            .collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&self.server_key)
            .context("server key")?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
        Ok(Arc::new(config))
    }
}

/// The CA's parameters; the same every time so a reloaded key signs as the stored certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params
}

/// Writes `bytes` to `path` readable by its owner only (mode 0600), atomically (a reader sees
/// the old file or the new one), creating the parent directory.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
