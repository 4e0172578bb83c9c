//! `compose init`: the volumes prepared once, with no network: PKI, Azurite's certificate, the
//! signing key, the vault's contents and the federated tokens. What exists is kept.

use super::volume::{Volume, file_owner, give_tree, read_vault_seed, write_federated_tokens};
use super::{AZURITE_HOST, VAULT_SECRETS};
use crate::pki::{DevPki, write_file};
use function_keys::KeyValue;

/// `compose init`: PKI, signing key, vault contents and federated tokens, each into its volume.
/// What exists is kept (the CA, the signing key, each secret of the vault), so running it again
/// changes no credential. It needs no network: `serve` writes the key store blob.
pub async fn init(volume: &Volume) -> anyhow::Result<()> {
    init_as(volume, file_owner()?).await
}

/// [`init`], giving every file and directory it writes to `owner` when one is given.
pub(super) async fn init_as(volume: &Volume, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    DevPki::ensure(&volume.pki_dir())?;
    DevPki::issue_server_cert(
        &volume.pki_dir(),
        &[AZURITE_HOST],
        &volume.azurite_cert(),
        &volume.azurite_key(),
    )?;
    let ca = std::fs::read(volume.pki_dir().join("ca.pem"))?;
    write_file(&volume.ca_cert(), &ca, 0o644, owner)?;
    let identities = volume.identities()?;
    let mut seed = read_vault_seed(volume)?.unwrap_or_default();
    for name in VAULT_SECRETS {
        seed.entry((*name).to_owned())
            .or_insert_with(|| KeyValue::generate().expose().to_owned());
    }
    write_file(
        &volume.vault_seed(),
        &serde_json::to_vec(&seed)?,
        0o600,
        owner,
    )?;
    write_federated_tokens(volume, &identities, owner)?;
    if let Some(owner) = owner {
        for dir in volume.mount_points() {
            give_tree(&dir, owner)?;
        }
    }
    tracing::info!(dir = %volume.dir.display(), "devstack volumes ready");
    Ok(())
}
