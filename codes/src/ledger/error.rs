//! Why the ledger could not answer, and whether that is the ledger's state or a record's.

use shared_auth::azure_error::AzureError;

/// Why the ledger could not answer; the Display is the operator's text (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Storage refused this identity (403): it lacks [`LEDGER_ROLE`](super::LEDGER_ROLE) on the container.
    #[error(transparent)]
    Forbidden(AzureError),
    /// Storage failed, refused the token, could not be reached or did not answer in time.
    #[error(transparent)]
    Unavailable(AzureError),
    /// Storage answered without the record's ETag, so the record cannot be changed safely.
    #[error("the ledger returned no ETag")]
    NoEtag,
    /// The record kept changing while it was being removed (concurrent writers).
    #[error("the record kept changing while it was being removed")]
    Contended,
}

impl LedgerError {
    /// Whether the ledger failed rather than this record: Storage unreachable, slow, failing,
    /// throttling (429, 503 `ServerBusy`) or refusing this identity (401, 403). Such a failure
    /// says nothing of the message being handled: worth waiting out, never the message's fault.
    /// Only a request Storage refused for itself (another 4xx) is the record's, as is a record
    /// that kept changing under a removal.
    pub fn is_dependency_failure(&self) -> bool {
        match self {
            Self::Forbidden(_) | Self::NoEtag => true,
            Self::Unavailable(error) => error.status().is_none_or(|status| {
                !status.is_client_error() || matches!(u16::from(status), 401 | 403 | 408 | 429)
            }),
            Self::Contended => false,
        }
    }
}

impl From<AzureError> for LedgerError {
    fn from(error: AzureError) -> Self {
        if error.is_forbidden() {
            Self::Forbidden(error)
        } else {
            Self::Unavailable(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LEDGER_ROLE, RECORD};
    use super::*;
    use azure_core::error::ErrorKind;
    use azure_core::http::StatusCode;
    use shared_auth::azure_error::AzureCall;
    use std::time::Duration;

    fn storage_error(status: u16) -> azure_core::Error {
        azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status: StatusCode::from(status),
                error_code: Some("AuthorizationPermissionMismatch".into()),
                raw_response: None,
            },
            "the body",
        )
    }

    #[test]
    fn a_403_is_forbidden_and_names_the_role_anything_else_is_unavailable() {
        let call = AzureCall::new(RECORD, "ledger container codes")
            .needs_role(LEDGER_ROLE, "container codes");
        let forbidden = LedgerError::from(call.failed(&storage_error(403)));
        assert!(matches!(forbidden, LedgerError::Forbidden(_)));
        assert_eq!(
            forbidden.to_string(),
            "could not record a code in ledger container codes: 403 \
             AuthorizationPermissionMismatch; the identity needs the role Storage Blob Data \
             Contributor on container codes"
        );
        let busy = LedgerError::from(call.failed(&storage_error(503)));
        assert!(matches!(busy, LedgerError::Unavailable(_)));
        let slow = LedgerError::from(call.timed_out(Duration::from_secs(2)));
        assert!(matches!(slow, LedgerError::Unavailable(_)));
        assert!(slow.to_string().ends_with("did not answer within 2 s"));
    }
}
