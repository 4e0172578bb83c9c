//! Which credential the environment configures, decided without any network call: the order of
//! the chain, what `AZURE_TOKEN_CREDENTIALS` narrows it to, and why each credential tried was
//! not usable.

use super::{
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE,
    AZURE_TENANT_ID, AZURE_TOKEN_CREDENTIALS, CredentialChoice, CredentialError, CredentialKind,
    IDENTITY_ENDPOINT, IDENTITY_HEADER,
};
use crate::config::{ConfigError, EnvSource};
use std::path::{Path, PathBuf};

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
            tried.push(not_on_path(CredentialKind::AzureCli, "az"));
            tried.push(not_on_path(CredentialKind::AzureDeveloperCli, "azd"));
            Ok(None)
        }
    }
}

fn azure_cli_only(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    named_tool(env, tried, CredentialKind::AzureCli, "az")
}

fn azd_only(env: &dyn EnvSource, tried: &mut Vec<String>) -> Probe {
    named_tool(env, tried, CredentialKind::AzureDeveloperCli, "azd")
}

/// The developer tool `program`, as credential `kind`, that `AZURE_TOKEN_CREDENTIALS` names.
fn named_tool(
    env: &dyn EnvSource,
    tried: &mut Vec<String>,
    kind: CredentialKind,
    program: &str,
) -> Probe {
    let Some(path) = find_on_path(env, program) else {
        tried.push(not_on_path(kind, program));
        return Ok(None);
    };
    Ok(Some(CredentialChoice {
        kind,
        reason: format!(
            "AZURE_TOKEN_CREDENTIALS names it; found at {}",
            path.display()
        ),
    }))
}

/// Why a developer credential was not usable: its tool is not installed.
fn not_on_path(kind: CredentialKind, program: &str) -> String {
    format!("{kind}: `{program}` is not on PATH")
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
