//! ops: the operator command line `keyless` and the role table the whole system shares.
//!
//! - [`roles`]: who holds which role where, with Azure's names and ids (doctor, devstack, infra).
//! - [`cli`]: the command line (`clap`), exit codes; [`output`]: each result as text or `--json`.
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
pub mod output;
pub mod queue;
pub mod roles;
pub mod rotate;
pub mod vault;

use roles::Role;
use shared_auth::azure_error::AzureError;

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
    /// A failed Azure call, in shared-auth's words (`could not peek queue code-requests: 403
    /// AuthorizationPermissionMismatch; the identity needs the role ... on queue code-requests`);
    /// after a 403 it adds `role`'s id and points to `keyless doctor`.
    pub fn azure(error: &AzureError, role: Role) -> Self {
        let mut text = error.to_string();
        if error.is_forbidden() {
            match role.id() {
                Some(id) => text.push_str(&format!(" (role id {id}; run `keyless doctor`)")),
                None => text.push_str(" (a custom role; run `keyless doctor`)"),
            }
        }
        Self::Failed(text)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::error::ErrorKind;
    use shared_auth::azure_error::AzureCall;

    fn failed(status: u16) -> AzureError {
        let error = azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status: status.into(),
                error_code: Some("AuthorizationPermissionMismatch".into()),
                raw_response: None,
            },
            "the body",
        );
        AzureCall::new("peek", "queue q")
            .needs_role("R", "queue q")
            .failed(&error)
    }

    #[test]
    fn a_403_adds_the_roles_id_and_doctor_anything_else_is_shared_auths_sentence() {
        let sentence = "could not peek queue q: 403 AuthorizationPermissionMismatch; the identity \
                        needs the role R on queue q";
        assert_eq!(
            OpsError::azure(&failed(403), Role::StorageQueueDataMessageSender),
            OpsError::Failed(format!(
                "{sentence} (role id c6a89b2d-59bc-44d0-9896-0f6e12d7b80a; run `keyless doctor`)"
            ))
        );
        assert_eq!(
            OpsError::azure(&failed(403), Role::StorageQueueDataMessageUpdater),
            OpsError::Failed(format!("{sentence} (a custom role; run `keyless doctor`)"))
        );
        assert_eq!(
            OpsError::azure(&failed(503), Role::StorageQueueDataMessageSender),
            OpsError::Failed(failed(503).to_string())
        );
        assert!(!failed(503).to_string().contains("doctor"));
    }
}
