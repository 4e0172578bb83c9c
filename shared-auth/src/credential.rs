//! Choosing the Azure credential: the `DefaultAzureCredential` idea, decided once from the
//! environment at start-up, steered by `AZURE_TOKEN_CREDENTIALS` as the other Azure SDKs are.
//!
//! Order of the chain: service principal with a client secret, workload identity, managed
//! identity (the "prod" part), then Azure CLI and Azure Developer CLI (the "dev" part). The first
//! credential whose configuration is present is chosen and used for the life of the process: a
//! deployed service never falls back to a developer identity at run time, and nothing probes the
//! instance metadata endpoint (IMDS) off Azure. IMDS is used only when named explicitly
//! (`AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential` without `IDENTITY_ENDPOINT`).

// Re-exported for devstack, which still names it here; new code takes it from `azure_error`.
pub use crate::azure_error::error_chain;
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
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Chooses the credential: `dev`, `prod`, or one credential's name.
pub const AZURE_TOKEN_CREDENTIALS: &str = "AZURE_TOKEN_CREDENTIALS";
/// Entra tenant of a service principal or workload identity.
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// Client ID of a service principal, workload identity or user-assigned managed identity.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// Client secret of a service principal.
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// File holding a federated token (Kubernetes workload identity).
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// Entra authority host (https), for sovereign clouds and local emulators.
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// Managed identity endpoint of App Service and Container Apps.
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// Shared secret header value for `IDENTITY_ENDPOINT`.
pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";

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

/// What `AZURE_TOKEN_CREDENTIALS` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Chain,
    Prod,
    Dev,
    Exactly(Named),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
    AzureDeveloperCli,
}

const ACCEPTED: &str = "dev, prod, EnvironmentCredential, ClientSecretCredential, \
    WorkloadIdentityCredential, ManagedIdentityCredential, AzureCliCredential, \
    AzureDeveloperCliCredential";

impl Mode {
    fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let Some(raw) = env.var(AZURE_TOKEN_CREDENTIALS) else {
            return Ok(Self::Chain);
        };
        let mode = match raw.trim().to_ascii_lowercase().as_str() {
            "prod" => Self::Prod,
            "dev" => Self::Dev,
            "environmentcredential" | "clientsecretcredential" => {
                Self::Exactly(Named::ClientSecret)
            }
            "workloadidentitycredential" => Self::Exactly(Named::WorkloadIdentity),
            "managedidentitycredential" => Self::Exactly(Named::ManagedIdentity),
            "azureclicredential" => Self::Exactly(Named::AzureCli),
            "azuredeveloperclicredential" => Self::Exactly(Named::AzureDeveloperCli),
            _ => {
                return Err(ConfigError::new(
                    AZURE_TOKEN_CREDENTIALS,
                    format!("`{}` is not one of: {ACCEPTED}", raw.trim()),
                ));
            }
        };
        Ok(mode)
    }

    fn describe(self) -> String {
        match self {
            Self::Chain => "AZURE_TOKEN_CREDENTIALS unset: whole chain".into(),
            Self::Prod => "AZURE_TOKEN_CREDENTIALS=prod".into(),
            Self::Dev => "AZURE_TOKEN_CREDENTIALS=dev".into(),
            Self::Exactly(n) => format!("AZURE_TOKEN_CREDENTIALS={n:?}Credential"),
        }
    }
}

/// Outcome of looking at one credential: chosen, or not usable and why.
type Probe = Result<Option<CredentialChoice>, ConfigError>;
/// One look at one credential; unusable ones add a line to `tried`.
type Step = fn(&dyn EnvSource, &mut Vec<String>) -> Probe;

/// Chooses the credential from the environment, without any network call.
pub fn choose_credential(env: &dyn EnvSource) -> Result<CredentialChoice, CredentialError> {
    let mode = Mode::from_env(env)?;
    let mut tried = Vec::new();
    let steps: &[Step] = match mode {
        Mode::Chain => &[
            client_secret,
            workload_identity,
            managed_identity,
            developer_tools,
        ],
        Mode::Prod => &[client_secret, workload_identity, managed_identity],
        Mode::Dev => &[developer_tools],
        Mode::Exactly(Named::ClientSecret) => &[client_secret_required],
        Mode::Exactly(Named::WorkloadIdentity) => &[workload_identity_required],
        Mode::Exactly(Named::ManagedIdentity) => &[managed_identity_named],
        Mode::Exactly(Named::AzureCli) => &[azure_cli_only],
        Mode::Exactly(Named::AzureDeveloperCli) => &[azd_only],
    };
    for step in steps {
        if let Some(choice) = step(env, &mut tried)? {
            return Ok(choice);
        }
    }
    Err(CredentialError::NothingAvailable {
        mode: mode.describe(),
        tried: tried.join("; "),
    })
}

fn client_secret(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    if env.var(AZURE_CLIENT_SECRET).is_none() {
        tried.push("ClientSecretCredential: AZURE_CLIENT_SECRET is not set".into());
        return Ok(None);
    }
    client_secret_required(env, tried)
}

fn client_secret_required(env: &dyn EnvSource, _: &mut Vec<String>) -> Probe {
    env.required(AZURE_CLIENT_SECRET)?;
    let tenant = env.required(AZURE_TENANT_ID)?;
    let client = env.required(AZURE_CLIENT_ID)?;
    check_authority_host(env)?;
    Ok(Some(CredentialChoice {
        kind: CredentialKind::ClientSecret,
        reason: format!(
            "AZURE_CLIENT_SECRET is set: service principal {client} in tenant {tenant}"
        ),
    }))
}

fn workload_identity(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    if env.var(AZURE_FEDERATED_TOKEN_FILE).is_none() {
        tried.push("WorkloadIdentityCredential: AZURE_FEDERATED_TOKEN_FILE is not set".into());
        return Ok(None);
    }
    workload_identity_required(env, tried)
}

fn workload_identity_required(env: &dyn EnvSource, _: &mut Vec<String>) -> Probe {
    let file = env.required(AZURE_FEDERATED_TOKEN_FILE)?;
    if !Path::new(&file).is_file() {
        return Err(ConfigError::new(
            AZURE_FEDERATED_TOKEN_FILE,
            format!("{file} is not a readable file"),
        ));
    }
    let tenant = env.required(AZURE_TENANT_ID)?;
    let client = env.required(AZURE_CLIENT_ID)?;
    check_authority_host(env)?;
    Ok(Some(CredentialChoice {
        kind: CredentialKind::WorkloadIdentity,
        reason: format!(
            "AZURE_FEDERATED_TOKEN_FILE is set: workload identity {client} in tenant {tenant}"
        ),
    }))
}

fn managed_identity(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    if env.var(IDENTITY_ENDPOINT).is_none() {
        tried.push(
            "ManagedIdentityCredential: IDENTITY_ENDPOINT is not set (IMDS is used only when \
             AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential)"
                .into(),
        );
        return Ok(None);
    }
    managed_identity_named(env, tried)
}

fn managed_identity_named(env: &dyn EnvSource, _: &mut Vec<String>) -> Probe {
    let who = match env.var(AZURE_CLIENT_ID) {
        Some(id) => format!("user-assigned identity {id}"),
        None => "system-assigned identity".to_owned(),
    };
    let Some(endpoint) = env.var(IDENTITY_ENDPOINT) else {
        return Ok(Some(CredentialChoice {
            kind: CredentialKind::ManagedIdentityImds,
            reason: format!(
                "AZURE_TOKEN_CREDENTIALS names ManagedIdentityCredential and IDENTITY_ENDPOINT \
                 is not set: {who} through IMDS"
            ),
        }));
    };
    let url = azure_core::http::Url::parse(&endpoint)
        .map_err(|e| ConfigError::new(IDENTITY_ENDPOINT, format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            IDENTITY_ENDPOINT,
            "must be an http(s) URL",
        ));
    }
    env.required(IDENTITY_HEADER)?;
    Ok(Some(CredentialChoice {
        kind: CredentialKind::ManagedIdentityEndpoint,
        reason: format!("IDENTITY_ENDPOINT and IDENTITY_HEADER are set: {who}"),
    }))
}

fn developer_tools(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    let az = find_on_path(env, "az");
    let azd = find_on_path(env, "azd");
    let choice = |kind, reason: String| Ok(Some(CredentialChoice { kind, reason }));
    match (az, azd) {
        (Some(az), Some(azd)) => choice(
            CredentialKind::DeveloperTools,
            format!(
                "developer tools found: {} then {}",
                az.display(),
                azd.display()
            ),
        ),
        (Some(az), None) => choice(
            CredentialKind::AzureCli,
            format!("Azure CLI found at {}", az.display()),
        ),
        (None, Some(azd)) => choice(
            CredentialKind::AzureDeveloperCli,
            format!("Azure Developer CLI found at {}", azd.display()),
        ),
        (None, None) => {
            tried.push("AzureCliCredential: `az` is not on PATH".into());
            tried.push("AzureDeveloperCliCredential: `azd` is not on PATH".into());
            Ok(None)
        }
    }
}

fn azure_cli_only(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    Ok(find_on_path(env, "az")
        .map(|az| CredentialChoice {
            kind: CredentialKind::AzureCli,
            reason: format!(
                "AZURE_TOKEN_CREDENTIALS names it; found at {}",
                az.display()
            ),
        })
        .or_else(|| {
            tried.push("AzureCliCredential: `az` is not on PATH".into());
            None
        }))
}

fn azd_only(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    Ok(find_on_path(env, "azd")
        .map(|azd| CredentialChoice {
            kind: CredentialKind::AzureDeveloperCli,
            reason: format!(
                "AZURE_TOKEN_CREDENTIALS names it; found at {}",
                azd.display()
            ),
        })
        .or_else(|| {
            tried.push("AzureDeveloperCliCredential: `azd` is not on PATH".into());
            None
        }))
}

fn check_authority_host(env: &dyn EnvSource) -> Result<(), ConfigError> {
    if let Some(host) = env.var(AZURE_AUTHORITY_HOST) {
        let url = azure_core::http::Url::parse(&host)
            .map_err(|e| ConfigError::new(AZURE_AUTHORITY_HOST, format!("is not a URL: {e}")))?;
        if url.scheme() != "https" {
            return Err(ConfigError::new(
                AZURE_AUTHORITY_HOST,
                "must be an https URL",
            ));
        }
    }
    Ok(())
}

fn find_on_path(env: &dyn EnvSource, program: &str) -> Option<PathBuf> {
    let path = env.var("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
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
