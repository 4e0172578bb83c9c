//! What every command reads from the environment, exactly as the services read it: the
//! credential (`shared_auth::credential_from_env`), the one HTTP client with `EXTRA_CA_CERTS`
//! (`shared_auth::transport::http_client_from_env`) and the resource URLs.

use crate::OpsError;
use azure_core::http::{StatusCode, Url};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use codes::CodeLedger;
use codes::variables::CODE_LEDGER_URL;
use shared_auth::azure_error::Failure;
pub use shared_auth::azure_error::{blob_container_name, one_line, resource_name};
use shared_auth::transport::azure_client_options;
use shared_auth::variables::{
    DEFAULT_MASTER_KEY_SECRET_NAME, DEFAULT_SECRET_NAME, THIRD_PARTY_API_KEYS_URL,
    THIRD_PARTY_API_MASTER_KEY_SECRET_NAME, THIRD_PARTY_API_SECRET_NAME,
};
use shared_auth::{EnvSource, SelectedCredential};

/// The key store's container when [`THIRD_PARTY_API_KEYS_URL`] is unset.
pub const DEFAULT_KEY_STORE_CONTAINER: &str = "third-party-api-keys";

/// An authenticated way to Azure: the HTTP client and the credential the services would use.
pub struct Connection {
    /// The shared HTTP client (system roots plus `EXTRA_CA_CERTS`).
    pub http: reqwest::Client,
    /// The selected credential and why it was chosen.
    pub credential: SelectedCredential,
}

impl Connection {
    /// Builds the client and the credential from `env`; a bad variable is a usage error.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, OpsError> {
        let http = shared_auth::transport::http_client_from_env(env)?;
        let credential = shared_auth::credential_from_env(env, &http)
            .map_err(|e| OpsError::Usage(one_line(&e.to_string())))?;
        Ok(Self { http, credential })
    }

    /// A queue client for `url`.
    pub fn queue(&self, url: &Url) -> Result<QueueClient, OpsError> {
        QueueClient::new(
            url.clone(),
            Some(self.credential.credential.clone()),
            Some(QueueClientOptions {
                client_options: azure_client_options(&self.http),
                ..Default::default()
            }),
        )
        .map_err(|e| OpsError::Usage(format!("cannot use queue URL {url}: {e}")))
    }

    /// The code ledger at `url` with this identity.
    pub fn ledger(&self, url: &Url) -> Result<CodeLedger, OpsError> {
        CodeLedger::new(
            url.clone(),
            self.credential.credential.clone(),
            Some(azure_client_options(&self.http).into()),
        )
        .map_err(|e| OpsError::Usage(format!("cannot use {CODE_LEDGER_URL}: {e}")))
    }

    /// A client of the blob container at `url` (read from `variable`) with this identity.
    pub fn container(&self, url: &Url, variable: &str) -> Result<BlobContainerClient, OpsError> {
        BlobContainerClient::new(
            url.clone(),
            Some(self.credential.credential.clone()),
            Some(BlobContainerClientOptions {
                client_options: azure_client_options(&self.http),
                ..Default::default()
            }),
        )
        .map_err(|e| OpsError::Usage(format!("cannot use {variable}: {e}")))
    }
}

/// The secret name the apps read.
pub fn secret_name(env: &dyn EnvSource) -> String {
    env.var(THIRD_PARTY_API_SECRET_NAME)
        .unwrap_or_else(|| DEFAULT_SECRET_NAME.to_owned())
}

/// The secret third-party-api reads its master key from.
pub fn master_key_secret_name(env: &dyn EnvSource) -> String {
    env.var(THIRD_PARTY_API_MASTER_KEY_SECRET_NAME)
        .unwrap_or_else(|| DEFAULT_MASTER_KEY_SECRET_NAME.to_owned())
}

/// The key store's container URL, from the blob URL in [`THIRD_PARTY_API_KEYS_URL`]
/// (`https://<account>.blob.core.windows.net/third-party-api-keys/keys.json`).
pub fn key_store_container_url(env: &dyn EnvSource) -> Result<Url, OpsError> {
    let blob = shared_auth::config::https_url(env, THIRD_PARTY_API_KEYS_URL)?;
    let container = blob_container_name(&blob).ok_or_else(|| {
        OpsError::Usage(format!(
            "{THIRD_PARTY_API_KEYS_URL} must name a blob in a container (`.../<container>/keys.json`)"
        ))
    })?;
    let mut segments: Vec<String> = blob
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    segments.pop();
    debug_assert_eq!(segments.last(), Some(&container));
    let mut url = blob.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&format!("/{}", segments.join("/")));
    Ok(url)
}

/// Azure's answer in a few words (`403 AuthorizationPermissionMismatch (the identity lacks a
/// role)`, `not reachable: ...`), as every service words it. Never a token or a body.
pub fn describe(error: &azure_core::Error) -> String {
    Failure::of(error).to_string()
}

/// Whether `error` is Azure's "you lack a role" answer.
pub fn is_forbidden(error: &azure_core::Error) -> bool {
    error.http_status() == Some(StatusCode::Forbidden)
}
