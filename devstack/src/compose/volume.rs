//! What `compose init` and `serve` keep in the volumes: the layout under `--dir`, the vault's
//! contents, the federated token of each workload, and who owns the files.

use super::{FEDERATED_TOKEN_LIFETIME, SERVICE_USER, WORKLOADS};
use crate::identity::IdentityProvider;
use crate::jwt::TokenSigner;
use crate::pki::write_file;
use crate::stack::Principal;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The volumes mounted under one directory (`--dir`).
#[derive(Debug, Clone)]
pub struct Volume {
    pub(super) dir: PathBuf,
}

impl Volume {
    /// The volumes mounted under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The private volume: CA key, signing key, vault contents (`init` and `serve` only).
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    pub(super) fn pki_dir(&self) -> PathBuf {
        self.keys_dir().join("pki")
    }

    pub(super) fn signing_key(&self) -> PathBuf {
        self.keys_dir().join("identity/signing.pk8")
    }

    pub(super) fn vault_seed(&self) -> PathBuf {
        self.keys_dir().join("keyvault/secrets.json")
    }

    /// The CA certificate the services trust (`EXTRA_CA_CERTS`), alone in its volume.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca/ca.pem")
    }

    /// Azurite's certificate chain (valid for [`super::AZURITE_HOST`] only).
    pub fn azurite_cert(&self) -> PathBuf {
        self.dir.join("azurite-tls/server.pem")
    }

    /// Azurite's private key.
    pub fn azurite_key(&self) -> PathBuf {
        self.dir.join("azurite-tls/server.key")
    }

    /// The federated token file of `workload`, alone in its volume.
    pub fn federated_token(&self, workload: &str) -> PathBuf {
        self.dir
            .join("workload-identity")
            .join(workload)
            .join("token")
    }

    /// Every volume's mount point, the private one first.
    pub fn mount_points(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.keys_dir()];
        for file in [self.ca_cert(), self.azurite_cert()]
            .into_iter()
            .chain(WORKLOADS.iter().map(|w| self.federated_token(w)))
        {
            dirs.extend(file.parent().map(Path::to_owned));
        }
        dirs
    }

    pub(super) fn identities(&self) -> anyhow::Result<IdentityProvider> {
        let signer = TokenSigner::load_or_create(&self.signing_key())?;
        Ok(IdentityProvider::with_signer(&Principal::names(), signer))
    }
}

/// Who gets the files `init` and `serve` write: [`SERVICE_USER`] when running as root, else
/// nobody (the writer keeps them).
pub(super) fn file_owner() -> anyhow::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::MetadataExt;
    // proc(5): /proc/<pid> belongs to the process's effective user and group.
    let uid = std::fs::metadata("/proc/self")
        .context("cannot tell which user this is (no /proc)")?
        .uid();
    Ok((uid == 0).then_some(SERVICE_USER))
}

/// The vault contents `init` wrote, if it did: secret name to value.
pub(super) fn read_vault_seed(volume: &Volume) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let path = volume.vault_seed();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // The position only: serde's message could quote a value, and every value is a secret.
    let seed = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a JSON object of secret names to values (line {}, column {}): remove the \
             devstack-keys volume to start afresh",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    Ok(Some(seed))
}

/// Gives `dir` and everything under it to `owner` (symbolic links themselves, not followed).
pub(super) fn give_tree(dir: &Path, (uid, gid): (u32, u32)) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
        .with_context(|| format!("cannot give {} to {uid}:{gid}", dir.display()))?;
    if std::fs::symlink_metadata(dir)?.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            give_tree(&entry?.path(), (uid, gid))?;
        }
    }
    Ok(())
}

/// Writes every workload's federated token into its volume (mode 0600, owned by `owner` when
/// given, replaced atomically).
pub(super) fn write_federated_tokens(
    volume: &Volume,
    identities: &IdentityProvider,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    for workload in WORKLOADS {
        let identity = identities
            .get(workload)
            .with_context(|| format!("no identity named {workload}"))?;
        let token =
            identities.issue_federated(&identity, FEDERATED_TOKEN_LIFETIME.as_secs() as i64);
        write_file(
            &volume.federated_token(workload),
            token.as_bytes(),
            0o600,
            owner,
        )?;
    }
    Ok(())
}
