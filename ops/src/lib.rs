//! ops: the operator command line `keyless` and the role table the whole system shares.
//!
//! - [`roles`]: who holds which role where, with Azure's names and ids (doctor, devstack, infra).
//! - [`cli`]: the command line (`clap`), exit codes, human or `--json` output.
//! - [`connect`]: the credential, HTTP client and URLs, read exactly as the services read them.
//! - [`doctor`]: one real, harmless call per permission a service needs; names missing roles.
//! - [`azure_scope`]: the Azure resource id and `az role assignment create` line for a grant.
//! - [`queue`]: peek, clear and requeue-poison.
//! - [`code`]: what the ledger says about one code.
//! - [`rotate`]: zero-downtime rotation of main-app's key for third-party-api, rerunnable.
//! - [`vault`]: Key Vault secrets, their versions and the harmless write probe.
//! - [`admin_client`]: third-party-api's admin API (function keys and `lastAccepted`).

pub mod admin_client;
pub mod azure_scope;
pub mod cli;
pub mod code;
pub mod connect;
pub mod doctor;
pub mod queue;
pub mod roles;
pub mod rotate;
pub mod vault;

/// Exit code when everything asked for is fine.
pub const EXIT_OK: i32 = 0;
/// Exit code when a check or an operation failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code for bad input: unknown command or flag, malformed or missing variable.
pub const EXIT_USAGE: i32 = 2;

/// Why a command did not succeed; the text is one line and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpsError {
    /// Bad input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The operation failed (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl OpsError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Failed(_) => EXIT_FAILED,
        }
    }
}

impl From<shared_auth::ConfigError> for OpsError {
    fn from(e: shared_auth::ConfigError) -> Self {
        Self::Usage(e.to_string())
    }
}
