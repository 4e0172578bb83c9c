//! Choosing the Azure credential: the `DefaultAzureCredential` idea, decided once from the
//! environment at start-up, steered by `AZURE_TOKEN_CREDENTIALS` as the other Azure SDKs are.
//!
//! Order of the chain: service principal with a client secret, workload identity, managed
//! identity (the "prod" part), then Azure CLI and Azure Developer CLI (the "dev" part). The first
//! credential whose configuration is present is chosen and used for the life of the process: a
//! deployed service never falls back to a developer identity at run time, and nothing probes the
//! instance metadata endpoint (IMDS) off Azure. IMDS is used only when named explicitly
//! (`AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential` without `IDENTITY_ENDPOINT`).

mod choice;

use crate::variables::{
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE,
    AZURE_TENANT_ID, AZURE_TOKEN_CREDENTIALS, IDENTITY_ENDPOINT, IDENTITY_HEADER,
};
pub use choice::choose_credential;

use crate::azure_error::error_chain;
use crate::config::{ConfigError, EnvSource};
use crate::transport::azure_client_options;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret as AzureSecret, TokenCredential};
use azure_identity::{
    AzureCliCredential, AzureDeveloperCliCredential, ClientSecretCredential,
    ClientSecretCredentialOptions, DeveloperToolsCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use azure_identity::{ClientAssertionCredentialOptions, DeveloperToolsCredentialOptions};
use std::fmt;
use std::sync::Arc;

/// A credential this crate can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Service principal with a client secret from `AZURE_*` variables.
    ClientSecret,
    /// Kubernetes workload identity: a federated token file exchanged with Entra.
    WorkloadIdentity,
    /// Managed identity through `IDENTITY_ENDPOINT` (App Service, Container Apps).
    ManagedIdentityEndpoint,
    /// Managed identity through the instance metadata service (VMs, AKS nodes).
    ManagedIdentityImds,
    /// The signed-in Azure CLI user.
    AzureCli,
    /// The signed-in Azure Developer CLI user.
    AzureDeveloperCli,
    /// Azure CLI, then Azure Developer CLI, both installed.
    DeveloperTools,
}

impl CredentialKind {
    /// The name the Azure SDKs use for this credential.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecret => "ClientSecretCredential",
            Self::WorkloadIdentity => "WorkloadIdentityCredential",
            Self::ManagedIdentityEndpoint | Self::ManagedIdentityImds => {
                "ManagedIdentityCredential"
            }
            Self::AzureCli => "AzureCliCredential",
            Self::AzureDeveloperCli => "AzureDeveloperCliCredential",
            Self::DeveloperTools => "DeveloperToolsCredential",
        }
    }

    /// True for credentials that stand for a person rather than a deployed workload.
    pub fn is_developer(self) -> bool {
        matches!(
            self,
            Self::AzureCli | Self::AzureDeveloperCli | Self::DeveloperTools
        )
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The credential chosen and why, in words safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialChoice {
    /// Which credential.
    pub kind: CredentialKind,
    /// Why it was chosen.
    pub reason: String,
}

/// Why no credential could be chosen or built.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A variable is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Nothing in the environment configures a credential of the requested set.
    #[error(
        "no Azure credential is available ({mode}). Tried: {tried}. Set AZURE_CLIENT_SECRET with \
         AZURE_TENANT_ID and AZURE_CLIENT_ID (service principal), AZURE_FEDERATED_TOKEN_FILE \
         (workload identity), IDENTITY_ENDPOINT and IDENTITY_HEADER (managed identity), \
         AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential (managed identity through IMDS on an \
         Azure VM), or sign in with `az login` or `azd auth login` (developer)"
    )]
    NothingAvailable {
        /// The mode requested through `AZURE_TOKEN_CREDENTIALS`.
        mode: String,
        /// Each credential tried and why it was not usable, joined for display.
        tried: String,
    },
    /// The Azure SDK refused to build the chosen credential.
    #[error("{kind} could not be built: {message}")]
    Build {
        /// The credential that failed.
        kind: CredentialKind,
        /// The SDK's error with its cause chain.
        message: String,
    },
}

/// A credential ready for the Azure SDK clients, with the choice that produced it.
#[derive(Clone)]
pub struct SelectedCredential {
    /// The credential itself.
    pub credential: Arc<dyn TokenCredential>,
    /// Which one, and why.
    pub choice: CredentialChoice,
}

impl fmt::Debug for SelectedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedCredential")
            .field("choice", &self.choice)
            .finish_non_exhaustive()
    }
}

/// Chooses and builds the credential, logging one line that names it and why; it serves its
/// last good token while a refresh fails ([`crate::token_cache`]).
/// Token requests go through `http` (the shared transport, so `EXTRA_CA_CERTS` applies).
pub fn credential_from_env(
    env: &dyn EnvSource,
    http: &reqwest::Client,
) -> Result<SelectedCredential, CredentialError> {
    let choice = choose_credential(env)?;
    let credential: Arc<dyn TokenCredential> = Arc::new(crate::token_cache::LastGoodToken::new(
        build_credential(&choice, env, http)?,
    ));
    tracing::info!(
        credential = choice.kind.name(),
        reason = %choice.reason,
        "selected Azure credential"
    );
    Ok(SelectedCredential { credential, choice })
}

/// Builds the credential `choice` names.
pub fn build_credential(
    choice: &CredentialChoice,
    env: &dyn EnvSource,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let kind = choice.kind;
    let mut client_options = azure_client_options(http);
    if let Some(host) = env.var(AZURE_AUTHORITY_HOST) {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = host;
        client_options.cloud = Some(Arc::new(CloudConfiguration::from(custom)));
    }
    let build_error = |e: azure_core::Error| CredentialError::Build {
        kind,
        message: error_chain(&e),
    };
    let credential: Arc<dyn TokenCredential> = match kind {
        CredentialKind::ClientSecret => ClientSecretCredential::new(
            &env.required(AZURE_TENANT_ID)?,
            env.required(AZURE_CLIENT_ID)?,
            AzureSecret::new(env.required(AZURE_CLIENT_SECRET)?),
            Some(ClientSecretCredentialOptions { client_options }),
        )
        .map_err(build_error)?,
        CredentialKind::WorkloadIdentity => {
            WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options },
                client_id: Some(env.required(AZURE_CLIENT_ID)?),
                tenant_id: Some(env.required(AZURE_TENANT_ID)?),
                token_file_path: Some(env.required(AZURE_FEDERATED_TOKEN_FILE)?.into()),
            }))
            .map_err(build_error)?
        }
        CredentialKind::ManagedIdentityEndpoint | CredentialKind::ManagedIdentityImds => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: env.var(AZURE_CLIENT_ID).map(UserAssignedId::ClientId),
                client_options,
            }))
            .map_err(build_error)?
        }
        CredentialKind::AzureCli => AzureCliCredential::new(None).map_err(build_error)?,
        CredentialKind::AzureDeveloperCli => {
            AzureDeveloperCliCredential::new(None).map_err(build_error)?
        }
        CredentialKind::DeveloperTools => {
            DeveloperToolsCredential::new(Some(DeveloperToolsCredentialOptions::default()))
                .map_err(build_error)?
        }
    };
    Ok(credential)
}
