//! The environments a stack hands out: each service's production variables pointing at the
//! emulators, a service principal per identity (developers, tests, the rotation job), and the
//! `<name>.env` files they are written to. Every name is the constant the reader exports.

use super::lifecycle::DevStack;
use super::topology::Principal;
use super::topology::{MASTER_KEY_SECRET_NAME, SECRET_NAME, Service};
use crate::identity::ServicePrincipal;
use crate::jwt::TENANT_ID;
use anyhow::Context;
use azure_core::credentials::TokenCredential;
use codes::variables::{CODE_LEDGER_URL, POISON_QUEUE_URL, STORAGE_QUEUE_URL};
use service_kit::service::settings::{BIND_ADDRESS, PORT};
use service_kit::telemetry::RUST_LOG;
use shared_auth::MapEnv;
use shared_auth::variables::{
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID,
    AZURE_TOKEN_CREDENTIALS, EXTRA_CA_CERTS, IDENTITY_ENDPOINT, IDENTITY_HEADER, KEY_VAULT_URL,
    THIRD_PARTY_API_ENDPOINT, THIRD_PARTY_API_KEYS_URL, THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
    THIRD_PARTY_API_SECRET_NAME,
};
use std::path::PathBuf;
use std::sync::Arc;

/// `identity` as a service principal: its client secret, exchanged at the identity emulator
/// whose base is `authority_host`.
pub(crate) fn service_principal_env(identity: &ServicePrincipal, authority_host: &str) -> MapEnv {
    MapEnv::new()
        .with(AZURE_TOKEN_CREDENTIALS, "ClientSecretCredential")
        .with(AZURE_TENANT_ID, TENANT_ID)
        .with(AZURE_CLIENT_ID, &identity.client_id)
        .with(AZURE_CLIENT_SECRET, identity.client_secret().expose())
        .with(AZURE_AUTHORITY_HOST, authority_host)
}

impl DevStack {
    /// The environment `service` runs with: the production variable names, pointing here.
    pub fn service_env(&self, service: Service) -> Vec<(String, String)> {
        let identity = self
            .identities
            .get(service.name())
            .expect("every service has an identity");
        let mut env = vec![
            (
                AZURE_TOKEN_CREDENTIALS,
                "ManagedIdentityCredential".to_owned(),
            ),
            (IDENTITY_ENDPOINT, self.urls.msi_endpoint.clone()),
            (
                IDENTITY_HEADER,
                identity.identity_header().expose().to_owned(),
            ),
            (EXTRA_CA_CERTS, self.pki.ca_cert.display().to_string()),
            (RUST_LOG, self.rust_log.clone()),
            (BIND_ADDRESS, "127.0.0.1".to_owned()),
            (PORT, self.ports.of(service).to_string()),
        ];
        match service {
            Service::QueueWorker => env.extend([
                (STORAGE_QUEUE_URL, self.urls.queue.clone()),
                (POISON_QUEUE_URL, self.urls.poison_queue.clone()),
                (CODE_LEDGER_URL, self.urls.container.clone()),
            ]),
            Service::MainApp => env.extend([
                (
                    THIRD_PARTY_API_ENDPOINT,
                    self.urls.third_party_api_endpoint.clone(),
                ),
                (KEY_VAULT_URL, self.urls.key_vault.clone()),
                (THIRD_PARTY_API_SECRET_NAME, SECRET_NAME.to_owned()),
                (STORAGE_QUEUE_URL, self.urls.queue.clone()),
                (CODE_LEDGER_URL, self.urls.container.clone()),
            ]),
            Service::ThirdPartyApi => env.extend([
                (THIRD_PARTY_API_KEYS_URL, self.urls.key_store.clone()),
                (KEY_VAULT_URL, self.urls.key_vault.clone()),
                (
                    THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
                    MASTER_KEY_SECRET_NAME.to_owned(),
                ),
            ]),
        }
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        env.extend(self.telemetry_env.iter().cloned());
        env
    }

    /// A service principal environment for `identity` (client secret through the identity
    /// emulator): what a developer or a test uses to call the emulators as that identity.
    pub fn client_env(&self, identity: impl Into<Principal>) -> anyhow::Result<MapEnv> {
        let name = identity.into().name();
        let id = self
            .identities
            .get(name)
            .with_context(|| format!("no identity named {name}"))?;
        Ok(service_principal_env(&id, &self.urls.identity)
            .with(EXTRA_CA_CERTS, self.pki.ca_cert.display().to_string()))
    }

    /// `service`'s production environment with its identity as a service principal instead of a
    /// managed identity (which is read from the process environment, so an in-process client
    /// uses the service's identity this way), on a free port.
    pub fn service_env_as_client(&self, service: Service) -> anyhow::Result<MapEnv> {
        let managed = [IDENTITY_ENDPOINT, IDENTITY_HEADER, AZURE_TOKEN_CREDENTIALS];
        let production = self.service_env(service).into_iter();
        let kept = production.filter(|(k, _)| !managed.contains(&k.as_str()));
        let client = self.client_env(service)?;
        Ok(kept
            .fold(client, |env, (k, v)| env.with(&k, v))
            .with(PORT, "0"))
    }

    /// What `keyless rotate` runs with: the rotation identity as a service principal, the
    /// vault, the two secrets and third-party-api (its admin API is at the same origin).
    pub fn rotation_env(&self) -> anyhow::Result<MapEnv> {
        Ok(self
            .client_env(ops::roles::Identity::Rotation)?
            .with(KEY_VAULT_URL, &self.urls.key_vault)
            .with(THIRD_PARTY_API_SECRET_NAME, SECRET_NAME)
            .with(
                THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
                MASTER_KEY_SECRET_NAME,
            )
            .with(
                THIRD_PARTY_API_ENDPOINT,
                &self.urls.third_party_api_endpoint,
            ))
    }

    /// A real `ClientSecretCredential` for `identity`, built by `shared-auth`.
    pub fn credential(
        &self,
        identity: impl Into<Principal>,
    ) -> anyhow::Result<Arc<dyn TokenCredential>> {
        let env = self.client_env(identity)?;
        Ok(shared_auth::credential_from_env(&env, &self.http)?.credential)
    }

    /// Writes `<state>/<name>.env` (mode 0600) with `env` as `KEY=VALUE` lines.
    pub fn write_env_file(&self, name: &str, env: &[(String, String)]) -> anyhow::Result<PathBuf> {
        let path = self.state_dir.join(format!("{name}.env"));
        // The text holds a client secret: sized once, wiped once written.
        let size = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut text = zeroize::Zeroizing::new(String::with_capacity(size));
        for (key, value) in env {
            text.extend([key.as_str(), "=", value.as_str(), "\n"]);
        }
        crate::pki::write_file(&path, text.as_bytes(), 0o600, None)?;
        Ok(path)
    }
}
