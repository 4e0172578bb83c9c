//! The steps of a run that change something or read the state they start from: the preflight,
//! the master key (generated from the placeholder, its expiry renewed), add, write and revoke.
//! Each completed step reports one [`Step`].

use super::decide::expiry_due;
use super::plan::{KeyInfo, KeySource, Plan};
use super::report::{Reporter, Step, Version};
use super::{RotateConfig, RotateSettings, admin_failure, vault_failure};
use crate::OpsError;
use crate::admin_client::{AdminClient, FunctionKey};
use crate::azure_scope::MissingRole;
use crate::roles::{Role, ScopeKind};
use crate::vault::{SecretVersion, Vault, WriteCheck};
use shared_auth::{EnvSource, Secret};
use time::OffsetDateTime;

/// The latest versions of both secrets, each read and proven writable.
pub(super) struct Preflight {
    /// The apps' secret (main-app's key).
    pub(super) secret: SecretVersion,
    /// third-party-api's master key.
    pub(super) master: SecretVersion,
}

/// Step 0: reads both secrets and proves the right to write each without changing it. Missing
/// roles are all collected before anything stops; nothing has been written at that point.
pub(super) async fn preflight(
    env: &dyn EnvSource,
    vault: &Vault,
    config: &RotateConfig,
) -> Result<Result<Preflight, Vec<MissingRole>>, OpsError> {
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for (name, scope) in [
        (&config.secret_name, ScopeKind::Secret),
        (&config.master_secret_name, ScopeKind::MasterKeySecret),
    ] {
        match vault.check_writable(name).await {
            WriteCheck::Writable(version) => found.push(version),
            WriteCheck::ReadForbidden(_) | WriteCheck::WriteForbidden(..) => {
                missing.push(MissingRole::new(env, Role::KeyVaultSecretsOfficer, scope));
            }
            WriteCheck::Absent => {
                return Err(OpsError::Failed(format!(
                    "secret {name} does not exist in the vault {}: provisioning creates it (with \
                     the placeholder {})",
                    vault.url(),
                    crate::vault::PLACEHOLDER
                )));
            }
            WriteCheck::Failed(why) => {
                return Err(OpsError::Failed(format!("secret {name}: {why}")));
            }
        }
    }
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    match (found.pop(), found.pop()) {
        (Some(master), Some(secret)) => Ok(Ok(Preflight { secret, master })),
        _ => Err(OpsError::Failed(
            "the preflight read fewer than two secrets".into(),
        )),
    }
}

/// The function keys as the plan sees them: whether the vault holds each, no value.
pub(super) fn key_infos(keys: &[FunctionKey], vault_value: &Secret) -> Vec<KeyInfo> {
    keys.iter()
        .map(|k| KeyInfo {
            name: k.name.clone(),
            in_vault: k.value == *vault_value,
            last_accepted: k.last_accepted,
        })
        .collect()
}

/// The new expiry of a version written or renewed now.
fn new_expiry(settings: &RotateSettings) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(i64::from(settings.expires_in_days))
}

/// Writes a generated master key in place of the placeholder; returns it and its version.
pub(super) async fn generate_master(
    vault: &Vault,
    config: &RotateConfig,
    settings: &RotateSettings,
) -> Result<(Secret, SecretVersion), OpsError> {
    let key = function_keys::KeyValue::generate().secret().clone();
    let written = vault
        .set(&config.master_secret_name, &key, new_expiry(settings))
        .await
        .map_err(|e| vault_failure("writing the generated master key", &e))?;
    Ok((key, written))
}

/// Renews the expiry of the master key's latest version when it has none or it is within half
/// of `--expires-in-days`: the same value, a new `exp`, no new version.
pub(super) async fn renew_master(
    vault: &Vault,
    master: &SecretVersion,
    settings: &RotateSettings,
    report: &mut Reporter<'_>,
) -> Result<(), OpsError> {
    let due = expiry_due(
        master.expires,
        settings.expires_in_days,
        OffsetDateTime::now_utc(),
    );
    let renewed = if due {
        let renewed = vault
            .renew(master, new_expiry(settings))
            .await
            .map_err(|e| vault_failure("renewing the master key's expiry", &e))?;
        Some(Version::from(&renewed))
    } else {
        None
    };
    report.done(Step::RenewMaster {
        master: Version::from(master),
        renewed,
    });
    Ok(())
}

/// Step 1: adds the plan's new key, or finds the one an interrupted run added.
pub(super) async fn add(
    admin: &AdminClient,
    keys: Vec<FunctionKey>,
    plan: &Plan,
    secret: &str,
    report: &mut Reporter<'_>,
) -> Result<FunctionKey, OpsError> {
    let key = if plan.source == KeySource::New {
        admin
            .generate(&plan.key)
            .await
            .map_err(|e| admin_failure(&format!("adding function key {}", plan.key), &e))?
    } else {
        keys.into_iter()
            .find(|k| k.name == plan.key)
            .ok_or_else(|| {
                OpsError::Failed(format!(
                    "function key {} is no longer in the key store; run `keyless rotate` again",
                    plan.key
                ))
            })?
    };
    report.done(Step::Add {
        key: key.name.clone(),
        source: plan.source,
        secret: secret.to_owned(),
    });
    Ok(key)
}

/// Step 2: writes `key` as a new version of the apps' secret with an expiry (the caller has
/// waited until every replica loaded it), unless the vault already holds it (`current`).
pub(super) async fn write(
    vault: &Vault,
    key: &FunctionKey,
    current: Option<&SecretVersion>,
    (settings, config): (&RotateSettings, &RotateConfig),
    report: &mut Reporter<'_>,
) -> Result<SecretVersion, OpsError> {
    let written = match current {
        Some(current) => current.clone(),
        None => vault
            .set(&config.secret_name, &key.value, new_expiry(settings))
            .await
            .map_err(|e| vault_failure(&format!("writing {} to the vault", key.name), &e))?,
    };
    report.done(Step::Write {
        key: key.name.clone(),
        version: Version::from(&written),
        unchanged: current.is_some(),
    });
    Ok(written)
}

/// Step 5: revokes the `older` keys; returns those that still existed.
pub(super) async fn revoke(
    admin: &AdminClient,
    older: &[String],
    report: &mut Reporter<'_>,
) -> Result<Vec<String>, OpsError> {
    let mut revoked = Vec::new();
    for name in older {
        let existed = admin
            .delete(name)
            .await
            .map_err(|e| admin_failure(&format!("revoking function key {name}"), &e))?;
        if existed {
            revoked.push(name.clone());
        }
    }
    report.done(Step::Revoke {
        revoked: revoked.clone(),
    });
    Ok(revoked)
}
