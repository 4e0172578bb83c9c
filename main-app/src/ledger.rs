//! The code ledger, main-app's side: verification consumes a code atomically. The queue-worker
//! writes one blob per issued code (expiry in its metadata); a verify reads its ETag and deletes
//! it on that ETag only, so of two concurrent verifies exactly one wins.

use crate::code::Code;
use azure_core::credentials::TokenCredential;
use azure_core::http::StatusCode;
use azure_storage_blob::models::{BlobClientDeleteOptions, BlobClientGetPropertiesResultHeaders};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use shared_auth::credential::error_chain;
use shared_auth::transport::azure_client_options;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Metadata key holding the code's expiry (RFC 3339).
pub const EXPIRES_AT: &str = "expires_at";
/// Metadata key holding the issue time (RFC 3339).
pub const ISSUED_AT: &str = "issued_at";

/// The ledger could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

/// The ledger container.
#[derive(Clone)]
pub struct CodeLedger {
    container: Arc<BlobContainerClient>,
}

impl CodeLedger {
    /// The ledger at `url` with `credential` through the shared `http` client.
    pub fn new(
        url: reqwest::Url,
        credential: Arc<dyn TokenCredential>,
        http: &reqwest::Client,
    ) -> azure_core::Result<Self> {
        let container = BlobContainerClient::new(
            url,
            Some(credential),
            Some(BlobContainerClientOptions {
                client_options: azure_client_options(http),
                ..Default::default()
            }),
        )?;
        Ok(Self {
            container: Arc::new(container),
        })
    }

    /// True once for a recorded, unexpired code; false when unknown, used or expired.
    #[tracing::instrument(name = "ledger.consume", skip_all)]
    pub async fn consume(&self, code: &Code) -> Result<bool, LedgerError> {
        let blob = self.container.blob_client(code.as_str());
        let properties = match blob.get_properties(None).await {
            Ok(p) => p,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(false),
            Err(e) => return Err(failure(&e)),
        };
        let etag = properties.etag().map_err(|e| failure(&e))?;
        let metadata = properties.metadata().map_err(|e| failure(&e))?;
        let expired = metadata
            .get(EXPIRES_AT)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .is_none_or(|expires| OffsetDateTime::now_utc() >= expires);
        if expired {
            return Ok(false);
        }
        let Some(etag) = etag else {
            return Err(LedgerError("the ledger returned no ETag".into()));
        };
        match blob
            .delete(Some(BlobClientDeleteOptions {
                if_match: Some(etag),
                ..Default::default()
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.http_status(),
                    Some(StatusCode::PreconditionFailed | StatusCode::NotFound)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(failure(&e)),
        }
    }
}

fn failure(error: &azure_core::Error) -> LedgerError {
    LedgerError(match error.http_status() {
        Some(StatusCode::Forbidden) => {
            "the ledger refused access: the identity needs Storage Blob Data Contributor on the container".into()
        }
        Some(status) => format!("the ledger answered {}", u16::from(status)),
        None => format!("the ledger could not be reached: {}", error_chain(error)),
    })
}
