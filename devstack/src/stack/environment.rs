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
use codes::variables::CODE_LEDGER_URL;
use codes::variables::POISON_QUEUE_URL;
use codes::variables::STORAGE_QUEUE_URL;
use shared_auth::variables::KEY_VAULT_URL;
use shared_auth::variables::THIRD_PARTY_API_MASTER_KEY_SECRET_NAME;
use shared_auth::variables::THIRD_PARTY_API_SECRET_NAME;
// main-app and queue-worker read these names; `keyless` (ops) exports them as the services read
// them, and devstack depends on ops, not on the two services.
use service_kit::service::settings::{BIND_ADDRESS, PORT};
use service_kit::telemetry::RUST_LOG;
use shared_auth::variables::THIRD_PARTY_API_ENDPOINT;
use shared_auth::variables::{
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID,
    AZURE_TOKEN_CREDENTIALS, EXTRA_CA_CERTS, IDENTITY_ENDPOINT, IDENTITY_HEADER,
};
use shared_auth::{EnvSource, MapEnv};
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
            Service::QueueWorker => {
                env.push((STORAGE_QUEUE_URL, self.urls.queue.clone()));
                env.push((POISON_QUEUE_URL, self.urls.poison_queue.clone()));
                env.push((CODE_LEDGER_URL, self.urls.container.clone()));
            }
            Service::MainApp => {
                env.push((
                    THIRD_PARTY_API_ENDPOINT,
                    self.urls.third_party_api_endpoint.clone(),
                ));
                env.push((KEY_VAULT_URL, self.urls.key_vault.clone()));
                env.push((THIRD_PARTY_API_SECRET_NAME, SECRET_NAME.to_owned()));
                env.push((STORAGE_QUEUE_URL, self.urls.queue.clone()));
                env.push((CODE_LEDGER_URL, self.urls.container.clone()));
            }
            Service::ThirdPartyApi => {
                env.push((
                    shared_auth::variables::THIRD_PARTY_API_KEYS_URL,
                    self.urls.key_store.clone(),
                ));
                env.push((
                    shared_auth::variables::KEY_VAULT_URL,
                    self.urls.key_vault.clone(),
                ));
                env.push((
                    shared_auth::variables::THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
                    MASTER_KEY_SECRET_NAME.to_owned(),
                ));
            }
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
        let mut env: MapEnv = self
            .service_env(service)
            .into_iter()
            .filter(|(k, _)| !managed.contains(&k.as_str()))
            .collect();
        let client = self.client_env(service)?;
        for var in [
            AZURE_TOKEN_CREDENTIALS,
            AZURE_TENANT_ID,
            AZURE_CLIENT_ID,
            AZURE_CLIENT_SECRET,
            AZURE_AUTHORITY_HOST,
        ] {
            if let Some(value) = client.var(var) {
                env = env.with(var, value);
            }
        }
        Ok(env.with(PORT, "0"))
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
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.state_dir.join(format!("{name}.env"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        for (key, value) in env {
            writeln!(file, "{key}={value}")?;
        }
        Ok(path)
    }
}
