//! The code ledger: one blob per issued code in a Blob Storage container, reached with a token.
//! The queue-worker records codes and removes them after expiry; main-app consumes them.
//!
//! A record is never deleted by a verify: consuming marks it used with a conditional metadata
//! write on its ETag (of concurrent verifies exactly one wins), and the record stays as a
//! tombstone until its expiry. That is what makes recording idempotent: a duplicate `code-issued`
//! delivered after the code was used finds the record (create-if-absent does nothing), and one
//! delivered after expiry is recognised as expired and skipped; a deleted record could not tell
//! "never recorded" from "already used" and would make a used code valid again.

use crate::Code;
use azure_core::credentials::TokenCredential;
use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobClientGetPropertiesResultHeaders, BlobClientSetMetadataOptions,
    BlobClientUploadOptions,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use shared_auth::credential::error_chain;
use shared_auth::transport::azure_client_options;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Metadata: when the code was issued (RFC 3339).
pub const ISSUED_AT: &str = "issued_at";
/// Metadata: when the code stops being valid (RFC 3339).
pub const EXPIRES_AT: &str = "expires_at";
/// Metadata: `issued` or `used`.
pub const STATE: &str = "state";
/// Metadata: when the code was used (RFC 3339).
pub const USED_AT: &str = "used_at";
/// Metadata: the id of the message that recorded the code.
pub const MESSAGE_ID: &str = "message_id";

/// The ledger could not be asked; the text says why (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

/// What recording a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The record was created now.
    Created,
    /// A record already existed (duplicate delivery): nothing changed.
    AlreadyRecorded,
}

/// The ledger container.
#[derive(Clone)]
pub struct CodeLedger {
    container: Arc<BlobContainerClient>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn failure(error: &azure_core::Error) -> LedgerError {
    LedgerError(match error.http_status() {
        Some(StatusCode::Forbidden) => "the ledger refused access (AuthorizationPermissionMismatch): the identity needs Storage Blob Data Contributor on the container".into(),
        Some(StatusCode::Unauthorized) => "the ledger did not accept the token".into(),
        Some(status) => format!("the ledger answered {}", u16::from(status)),
        None => format!("the ledger could not be reached: {}", error_chain(error)),
    })
}

impl CodeLedger {
    /// The ledger at `url` with `credential` through the shared `http` client.
    pub fn new(
        url: azure_core::http::Url,
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

    /// Creates the record of `code` unless one exists (idempotent).
    #[tracing::instrument(name = "ledger.record", skip_all, fields(otel.kind = "client"))]
    pub async fn record(
        &self,
        code: &Code,
        issued_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        message_id: &str,
    ) -> Result<Recorded, LedgerError> {
        let metadata = HashMap::from([
            (ISSUED_AT.to_owned(), rfc3339(issued_at)),
            (EXPIRES_AT.to_owned(), rfc3339(expires_at)),
            (STATE.to_owned(), "issued".to_owned()),
            (MESSAGE_ID.to_owned(), message_id.to_owned()),
        ]);
        let body = serde_json::json!({
            "code": code.as_str(),
            "issued_at": rfc3339(issued_at),
            "expires_at": rfc3339(expires_at),
            "message_id": message_id,
        });
        let result = self
            .container
            .blob_client(code.as_str())
            .upload(
                RequestContent::from(body.to_string().into_bytes()),
                Some(
                    BlobClientUploadOptions {
                        metadata: Some(metadata),
                        blob_content_type: Some("application/json".into()),
                        ..Default::default()
                    }
                    .if_not_exists(),
                ),
            )
            .await;
        match result {
            Ok(_) => Ok(Recorded::Created),
            Err(e)
                if matches!(
                    e.http_status(),
                    Some(StatusCode::Conflict | StatusCode::PreconditionFailed)
                ) =>
            {
                Ok(Recorded::AlreadyRecorded)
            }
            Err(e) => Err(failure(&e)),
        }
    }

    /// True once for a recorded, unused, unexpired code; false when unknown, used or expired.
    #[tracing::instrument(name = "ledger.consume", skip_all, fields(otel.kind = "client"))]
    pub async fn consume(&self, code: &Code) -> Result<bool, LedgerError> {
        let blob = self.container.blob_client(code.as_str());
        let properties = match blob.get_properties(None).await {
            Ok(p) => p,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(false),
            Err(e) => return Err(failure(&e)),
        };
        let etag = properties.etag().map_err(|e| failure(&e))?;
        let mut metadata = properties.metadata().map_err(|e| failure(&e))?;
        let now = OffsetDateTime::now_utc();
        let expired = metadata
            .get(EXPIRES_AT)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .is_none_or(|expires| now >= expires);
        let used = metadata.get(STATE).is_some_and(|s| s == "used");
        if expired || used {
            return Ok(false);
        }
        let Some(etag) = etag else {
            return Err(LedgerError("the ledger returned no ETag".into()));
        };
        metadata.insert(STATE.to_owned(), "used".to_owned());
        metadata.insert(USED_AT.to_owned(), rfc3339(now));
        let result = blob
            .set_metadata(
                &metadata,
                Some(BlobClientSetMetadataOptions {
                    if_match: Some(etag),
                    ..Default::default()
                }),
            )
            .await;
        match result {
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

    /// Removes the record of `code` once the record itself says it has expired; a record whose
    /// expiry lies ahead (a forged or early `code-expire`) is kept. Absent is fine (idempotent);
    /// the delete is conditional on the ETag read, so a record changed meanwhile is read again.
    #[tracing::instrument(name = "ledger.remove", skip_all, fields(otel.kind = "client"))]
    pub async fn remove_expired(&self, code: &Code) -> Result<Removal, LedgerError> {
        let blob = self.container.blob_client(code.as_str());
        for _ in 0..3 {
            let properties = match blob.get_properties(None).await {
                Ok(p) => p,
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                    return Ok(Removal::Absent);
                }
                Err(e) => return Err(failure(&e)),
            };
            let etag = properties.etag().map_err(|e| failure(&e))?;
            let metadata = properties.metadata().map_err(|e| failure(&e))?;
            let expires = metadata
                .get(EXPIRES_AT)
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
            if let Some(expires) = expires
                && OffsetDateTime::now_utc() < expires
            {
                return Ok(Removal::NotYetExpired(expires));
            }
            let options = BlobClientDeleteOptions {
                if_match: etag,
                ..Default::default()
            };
            match blob.delete(Some(options)).await {
                Ok(_) => return Ok(Removal::Removed),
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                    return Ok(Removal::Absent);
                }
                Err(e) if e.http_status() == Some(StatusCode::PreconditionFailed) => continue,
                Err(e) => return Err(failure(&e)),
            }
        }
        Err(LedgerError(
            "the record kept changing while it was being removed".into(),
        ))
    }
}

/// What [`CodeLedger::remove_expired`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The expired record was deleted.
    Removed,
    /// There was no record (already removed, or never recorded).
    Absent,
    /// The record says it is valid until then: kept.
    NotYetExpired(OffsetDateTime),
}
