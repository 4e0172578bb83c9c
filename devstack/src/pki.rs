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
        let (ca_cert, issuer) = load_or_create_ca(dir)?;
        let server_cert = dir.join("server.pem");
        let server_key = dir.join("server.key");
        issue(&issuer, &ca_cert, SERVER_NAMES, &server_cert, &server_key)?;
        Ok(Self {
            ca_cert,
            server_cert,
            server_key,
        })
    }

    /// Issues a certificate for `names` only, signed by the CA of `dir` (made by
    /// [`DevPki::ensure`]): the chain (leaf then CA) to `cert`, the key (mode 0600) to `key`.
    pub fn issue_server_cert(
        dir: &Path,
        names: &[&str],
        cert: &Path,
        key: &Path,
    ) -> anyhow::Result<()> {
        let ca_cert = dir.join("ca.pem");
        let ca_key = std::fs::read_to_string(dir.join("ca.key"))
            .with_context(|| format!("no CA in {}", dir.display()))?;
        let issuer = Issuer::new(
            ca_params(),
            KeyPair::from_pem(&ca_key).context("the stored CA key is unreadable")?,
        );
        issue(&issuer, &ca_cert, names, cert, key)
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

/// The CA of `dir` (`ca.pem`, and `ca.key` mode 0600), created if either is missing.
fn load_or_create_ca(dir: &Path) -> anyhow::Result<(PathBuf, Issuer<'static, KeyPair>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_cert = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let ca_key = match (std::fs::read_to_string(&ca_key_path), ca_cert.exists()) {
        (Ok(pem), true) => KeyPair::from_pem(&pem).context("the stored CA key is unreadable")?,
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&ca_cert, cert.pem())?;
            key
        }
    };
    Ok((ca_cert, Issuer::new(ca_params(), ca_key)))
}

/// A fresh key and a certificate for `names` from `issuer`: the chain (leaf, then the CA of
/// `ca_cert`) to `cert_path`, the key (mode 0600) to `key_path`.
fn issue(
    issuer: &Issuer<'_, KeyPair>,
    ca_cert: &Path,
    names: &[&str],
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<()> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "keyless-azure devstack");
    let leaf = params.signed_by(&key, issuer)?;
    let chain = format!("{}{}", leaf.pem(), std::fs::read_to_string(ca_cert)?);
    write_file(cert_path, chain.as_bytes(), 0o644, None)?;
    write_private(key_path, key.serialize_pem().as_bytes())
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
    write_file(path, bytes, 0o600, None)
}

/// Writes `bytes` to `path` with `mode`, owned by `owner` (`(uid, gid)`; `None` keeps the
/// writer's) before it appears, atomically (a reader sees the old file or the new one),
/// creating the parent directory. The temporary `<path>.partial` is never opened through a
/// symbolic link.
pub(crate) fn write_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .with_context(|| format!("cannot give {} to {uid}:{gid}", partial.display()))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn write_file_sets_mode_and_owner_and_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::fs::metadata(dir.path()).unwrap();
        let path = dir.path().join("a/b.pem");
        write_file(&path, b"one", 0o644, Some((me.uid(), me.gid()))).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644);
        assert_eq!((meta.uid(), meta.gid()), (me.uid(), me.gid()));
        // Two files of one stem do not share a temporary name.
        write_private(&dir.path().join("a/b.key"), b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");

        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("a/c.partial")).unwrap();
        assert!(write_private(&dir.path().join("a/c"), b"secret").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!dir.path().join("a/c").exists());
    }
}
