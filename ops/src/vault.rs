//! Key Vault through the official `SecretClient`, built as `shared-auth` builds it (the shared
//! HTTP client, challenge verification relaxed only off Azure's vault domains): the latest
//! version of a secret with its attributes, a write that changes nothing (the
//! permission probe of `rotate` and `doctor --as rotation`), a new expiry for a version and a
//! new version with an expiry.
//!
//! Values are [`Secret`]s from the moment they leave the SDK's model; nothing here prints one.

use crate::OpsError;
use crate::connect::{self, Connection};
use azure_core::credentials::TokenCredential;
use azure_core::http::{RequestContent, StatusCode, Url};
use azure_security_keyvault_secrets::models::{
    Secret as SecretModel, SecretAttributes, SecretClientUpdateSecretPropertiesOptions,
    SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use shared_auth::Secret;
use shared_auth::transport::azure_client_options;
use std::sync::Arc;
use time::OffsetDateTime;

/// The value provisioning gives a secret before the first rotation: never a key (`:` is outside
/// the key alphabet).
pub const PLACEHOLDER: &str = "pending:first-rotation";

/// One version of a secret, with its value.
#[derive(Debug, Clone)]
pub struct SecretVersion {
    /// The secret's name.
    pub name: String,
    /// The version id (empty when the vault did not say).
    pub version: String,
    /// The value; never printed.
    pub value: Secret,
    /// When this version was created.
    pub created: Option<OffsetDateTime>,
    /// Its expiry (`exp`), when set.
    pub expires: Option<OffsetDateTime>,
    /// Its not-before (`nbf`), when set.
    pub not_before: Option<OffsetDateTime>,
    /// Whether it is enabled, when the vault said.
    pub enabled: Option<bool>,
}

impl SecretVersion {
    /// The value when it is a key; `None` for the placeholder or anything else ("no key yet").
    pub fn key(&self) -> Option<&Secret> {
        let key = function_keys::KeyValue::parse(self.value.expose());
        key.is_ok().then_some(&self.value)
    }
}

/// Whether an identity may read and write a secret, as one harmless probe shows.
#[derive(Debug, Clone)]
pub enum WriteCheck {
    /// Read, and proven writable; the latest version.
    Writable(SecretVersion),
    /// Reading was refused (403), in words safe to print.
    ReadForbidden(String),
    /// Reading worked, the write probe was refused (403).
    WriteForbidden(SecretVersion, String),
    /// The secret does not exist.
    Absent,
    /// Another failure, in words safe to print.
    Failed(String),
}

/// Options of a [`Vault`].
#[derive(Debug, Clone, Default)]
pub struct VaultOptions {
    /// The Azure SDK's client options: `azure_client_options(&http)` sends every request through
    /// the shared HTTP client (the project's timeouts, trusted CAs and Azure retry policy); the
    /// default is the SDK's own transport.
    pub client_options: azure_core::http::ClientOptions,
}

impl From<&Connection> for VaultOptions {
    /// The connection's HTTP client.
    fn from(conn: &Connection) -> Self {
        Self {
            client_options: azure_client_options(&conn.http),
        }
    }
}

/// A vault, reached with the identity of a [`Connection`].
pub struct Vault {
    client: SecretClient,
    url: Url,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A client of the vault at `url` (`KEY_VAULT_URL`) with `credential`.
    pub fn new(
        url: Url,
        credential: Arc<dyn TokenCredential>,
        options: Option<VaultOptions>,
    ) -> Result<Self, OpsError> {
        let options = options.unwrap_or_default();
        let client = SecretClient::new(
            url.as_str(),
            credential,
            Some(SecretClientOptions {
                client_options: options.client_options,
                verify_challenge_resource: Some(
                    shared_auth::secret_cache::verify_challenge_resource(&url),
                ),
                ..Default::default()
            }),
        )
        .map_err(|e| OpsError::Usage(format!("cannot use KEY_VAULT_URL {url}: {e}")))?;
        Ok(Self { client, url })
    }

    /// The vault's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The latest version of `name` with its value; `None` when the secret does not exist.
    pub async fn latest(&self, name: &str) -> azure_core::Result<Option<SecretVersion>> {
        let mut secret = match self.client.get_secret(name, None).await {
            Ok(response) => response.into_model()?,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let value = Secret::new(secret.value.take().unwrap_or_default());
        Ok(Some(secret_version(name, &secret, value)))
    }

    /// Sets the expiry of version `current` to `expires` (its value and other attributes
    /// unchanged, no new version); returns the version as the vault now has it.
    pub async fn renew(
        &self,
        current: &SecretVersion,
        expires: OffsetDateTime,
    ) -> azure_core::Result<SecretVersion> {
        self.update_attributes(current, Some(expires)).await
    }

    /// Writes `current`'s attributes back with `expires` as its expiry.
    async fn update_attributes(
        &self,
        current: &SecretVersion,
        expires: Option<OffsetDateTime>,
    ) -> azure_core::Result<SecretVersion> {
        let attributes = SecretAttributes {
            enabled: Some(current.enabled.unwrap_or(true)),
            expires,
            not_before: current.not_before,
            ..Default::default()
        };
        let parameters = UpdateSecretPropertiesParameters {
            secret_attributes: Some(attributes),
            ..Default::default()
        };
        let content: RequestContent<UpdateSecretPropertiesParameters> = parameters.try_into()?;
        let options = SecretClientUpdateSecretPropertiesOptions {
            secret_version: (!current.version.is_empty()).then(|| current.version.clone()),
            ..Default::default()
        };
        let updated = self
            .client
            .update_secret_properties(&current.name, content, Some(options))
            .await?
            .into_model()?;
        Ok(secret_version(
            &current.name,
            &updated,
            current.value.clone(),
        ))
    }

    /// Reads the latest version of `name`, then proves the right to write it without changing
    /// anything that matters: its attributes written back as they are (Key Vault records only a
    /// new `updated` time). What `rotate` needs before it changes anything; a 403 means Key Vault
    /// Secrets Officer is missing.
    pub async fn check_writable(&self, name: &str) -> WriteCheck {
        let version = match self.latest(name).await {
            Ok(Some(version)) => version,
            Ok(None) => return WriteCheck::Absent,
            Err(e) if connect::is_forbidden(&e) => {
                return WriteCheck::ReadForbidden(connect::describe(&e));
            }
            Err(e) => return WriteCheck::Failed(connect::describe(&e)),
        };
        match self.update_attributes(&version, version.expires).await {
            Ok(_) => WriteCheck::Writable(version),
            Err(e) if connect::is_forbidden(&e) => {
                WriteCheck::WriteForbidden(version, connect::describe(&e))
            }
            Err(e) => WriteCheck::Failed(connect::describe(&e)),
        }
    }

    /// Writes `value` as a new version of `name` that expires at `expires`; returns the version
    /// as the vault recorded it.
    pub async fn set(
        &self,
        name: &str,
        value: &Secret,
        expires: OffsetDateTime,
    ) -> azure_core::Result<SecretVersion> {
        let parameters = SetSecretParameters {
            value: Some(value.expose().to_owned()),
            secret_attributes: Some(SecretAttributes {
                enabled: Some(true),
                expires: Some(expires),
                ..Default::default()
            }),
            ..Default::default()
        };
        let content: RequestContent<SetSecretParameters> = parameters.try_into()?;
        let written = self
            .client
            .set_secret(name, content, None)
            .await?
            .into_model()?;
        Ok(secret_version(name, &written, value.clone()))
    }
}

/// The version id in a resource's id (empty when the vault did not say).
fn version_id(resource: &impl ResourceExt) -> String {
    resource
        .resource_id()
        .ok()
        .and_then(|id| id.version)
        .unwrap_or_default()
}

/// Version `secret` of `name` as the vault answered it, holding `value`.
fn secret_version(name: &str, secret: &SecretModel, value: Secret) -> SecretVersion {
    let attributes = secret.attributes.clone().unwrap_or_default();
    SecretVersion {
        name: name.to_owned(),
        version: version_id(secret),
        value,
        created: attributes.created,
        expires: attributes.expires,
        not_before: attributes.not_before,
        enabled: attributes.enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_holding_the_placeholder_has_no_key() {
        let mut version = SecretVersion {
            name: "third-party-api-key".into(),
            version: "v1".into(),
            value: Secret::new(PLACEHOLDER),
            created: None,
            expires: None,
            not_before: None,
            enabled: Some(true),
        };
        assert!(version.key().is_none());
        version.value = Secret::new("k".repeat(43));
        assert!(version.key().is_some());
        assert!(!format!("{version:?}").contains(&"k".repeat(43)));
    }
}
