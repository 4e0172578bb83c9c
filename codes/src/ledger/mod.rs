//! The code ledger: one blob per issued code in a Blob Storage container, reached with a token.
//! main-app reserves each code by recording it before it answers (no live code is ever equal to
//! another: a name held by a live record is drawn again), the queue-worker confirms each record
//! from its `code-issued` message and sweeps records away after expiry ([`sweep`]), and main-app
//! consumes them.
//!
//! A record is never deleted by a verify: consuming marks it used with a conditional metadata
//! write on its ETag (of concurrent verifies exactly one wins), and the record stays as a
//! tombstone until its expiry. That is what makes recording idempotent: a duplicate `code-issued`
//! delivered after the code was used finds the record (create-if-absent does nothing), and one
//! delivered after expiry is recognised as expired and skipped; a deleted record could not tell
//! "never recorded" from "already used" and would make a used code valid again.

use crate::{Code, CodeEnvelope};
use azure_core::credentials::TokenCredential;
use azure_core::http::{Etag, RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientGetPropertiesResultHeaders, BlobClientSetMetadataOptions, BlobClientUploadOptions,
};
use azure_storage_blob::{BlobClient, BlobContainerClient, BlobContainerClientOptions};
use shared_auth::azure_error::{AzureCall, resource_name};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod error;
mod record;
pub mod sweep;
pub use error::LedgerError;
pub(crate) use record::{EXPIRES_AT, ISSUED_AT, MESSAGE_ID, STATE, USED_AT, USED_BY};
pub use record::{Record, RecordState};
pub use sweep::Swept;

/// The role the ledger's users need on its container.
pub const LEDGER_ROLE: &str = shared_auth::role_names::BLOB_DATA_CONTRIBUTOR;

/// What recording a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The record was created now.
    Created,
    /// This message's record already existed (main-app reserved it, or a duplicate delivery):
    /// nothing changed.
    AlreadyRecorded,
    /// A record of an earlier, used or expired, code equal to this one was replaced.
    ReplacedDead,
    /// A live record of another message holds this code: nothing changed.
    HeldByAnother,
}

/// What recording does next: write a new record, replace a dead one, or read what is there.
enum Step {
    Create,
    Replace(Etag),
    Read,
}

/// Options of a [`CodeLedger`].
#[derive(Debug, Clone, Default)]
pub struct CodeLedgerOptions {
    /// The Azure SDK's client options: `azure_client_options(&http)` sends every request through
    /// the shared HTTP client (the project's timeouts, trusted CAs and Azure retry policy); the
    /// default is the SDK's own transport.
    pub client_options: azure_core::http::ClientOptions,
}

impl From<azure_core::http::ClientOptions> for CodeLedgerOptions {
    fn from(client_options: azure_core::http::ClientOptions) -> Self {
        Self { client_options }
    }
}

/// The ledger container.
#[derive(Clone)]
pub struct CodeLedger {
    container: Arc<BlobContainerClient>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

// What the ledger was doing when storage failed, in the operator's words.
const RECORD: &str = "record a code in";
/// How many times recording reads and writes again when the record changes under it.
const RECORD_ATTEMPTS: usize = 4;
const READ: &str = "read a code's record in";
const MARK_USED: &str = "mark a code used in";
const CONSUME: &str = "consume a code in";

impl CodeLedger {
    /// Doing `action` to this container, for errors: a 403 names [`LEDGER_ROLE`] on it.
    fn call(&self, action: &str) -> AzureCall {
        let container = resource_name(self.container.url());
        AzureCall::new(action, format!("ledger container {container}"))
            .needs_role(LEDGER_ROLE, format!("container {container}"))
    }

    /// Storage's `error` while doing `action`, in the operator's words.
    fn failure(&self, action: &str, error: &azure_core::Error) -> LedgerError {
        self.call(action).failed(error).into()
    }

    /// The ledger at `url` with `credential`.
    pub fn new(
        url: azure_core::http::Url,
        credential: Arc<dyn TokenCredential>,
        options: Option<CodeLedgerOptions>,
    ) -> azure_core::Result<Self> {
        let options = options.unwrap_or_default();
        let container = BlobContainerClient::new(
            url,
            Some(credential),
            Some(BlobContainerClientOptions {
                client_options: options.client_options,
                ..Default::default()
            }),
        )?;
        Ok(Self {
            container: Arc::new(container),
        })
    }

    /// Creates the record of `code` unless one exists for the same message (a duplicate
    /// delivery changes nothing). A record another message left that can no longer be used
    /// (used, or expired) is replaced, conditionally on its ETag: an old code never blocks a new
    /// one equal to it. A live record of another message is left alone and reported. This is
    /// how main-app reserves a code before answering: the write comes first (one Put Blob when
    /// the name is free).
    #[tracing::instrument(name = "ledger.record", skip_all, fields(otel.kind = "client"))]
    pub async fn record(
        &self,
        code: &Code,
        issued_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        message_id: &str,
    ) -> Result<Recorded, LedgerError> {
        self.record_from(Step::Create, code, issued_at, expires_at, message_id)
            .await
    }

    /// [`CodeLedger::record`] for `envelope`'s code, most likely recorded already (main-app
    /// reserved it): the read comes first, one Get Blob Properties when it is there.
    #[tracing::instrument(name = "ledger.confirm", skip_all, fields(otel.kind = "client"))]
    pub async fn confirm(&self, envelope: &CodeEnvelope) -> Result<Recorded, LedgerError> {
        let (issued, expires) = (envelope.issued_at, envelope.expires_at);
        let id = envelope.id.to_string();
        self.record_from(Step::Read, &envelope.code, issued, expires, &id)
            .await
    }

    async fn record_from(
        &self,
        mut step: Step,
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
        })
        .to_string()
        .into_bytes();
        let blob = self.container.blob_client(code.as_str());
        for _ in 0..RECORD_ATTEMPTS {
            let replacing = match step {
                Step::Read => None,
                Step::Create => Some(None),
                Step::Replace(ref etag) => Some(Some(etag.clone())),
            };
            if let Some(replacing) = replacing {
                let options = BlobClientUploadOptions {
                    metadata: Some(metadata.clone()),
                    blob_content_type: Some("application/json".into()),
                    // One request for a record of a few hundred bytes; left unset, the SDK
                    // sizes its transfer pool by reading the cgroup files on every upload.
                    parallel: Some(std::num::NonZero::<usize>::MIN),
                    ..Default::default()
                };
                let replaced = replacing.is_some();
                let options = match replacing {
                    None => options.if_not_exists(),
                    Some(etag) => BlobClientUploadOptions {
                        if_match: Some(etag),
                        ..options
                    },
                };
                let result = blob
                    .upload(RequestContent::from(body.clone()), Some(options))
                    .await;
                match result {
                    Ok(_) if replaced => return Ok(Recorded::ReplacedDead),
                    Ok(_) => return Ok(Recorded::Created),
                    Err(e)
                        if matches!(
                            e.http_status(),
                            Some(StatusCode::Conflict | StatusCode::PreconditionFailed)
                        ) => {}
                    Err(e) => return Err(self.failure(RECORD, &e)),
                }
            }
            // A record is there (or changed since it was read): whose, and can it still be used?
            let Some((found, etag)) = self.properties(&blob).await? else {
                step = Step::Create;
                continue;
            };
            if found.get(MESSAGE_ID).is_some_and(|id| id == message_id) {
                return Ok(Recorded::AlreadyRecorded);
            }
            let record = Record::from_metadata(&found);
            let now = OffsetDateTime::now_utc();
            if record.state == RecordState::Issued && !record.expired_at(now) {
                return Ok(Recorded::HeldByAnother);
            }
            step = Step::Replace(etag.ok_or(LedgerError::NoEtag)?);
        }
        Err(LedgerError::Contended)
    }

    /// [`CodeLedger::consume`] within `budget`; storage silent that long is
    /// [`LedgerError::Unavailable`].
    pub async fn consume_within(&self, code: &Code, budget: Duration) -> Result<bool, LedgerError> {
        tokio::time::timeout(budget, self.consume(code))
            .await
            .map_err(|_| LedgerError::Unavailable(self.call(CONSUME).timed_out(budget)))?
    }

    /// What the ledger holds about `code` (one Get Blob Properties), or `None` when nothing.
    #[tracing::instrument(name = "ledger.lookup", skip_all, fields(otel.kind = "client"))]
    pub async fn lookup(&self, code: &Code) -> Result<Option<Record>, LedgerError> {
        let blob = self.container.blob_client(code.as_str());
        let found = self.properties(&blob).await?;
        Ok(found.map(|(metadata, _)| Record::from_metadata(&metadata)))
    }

    /// True once for a recorded, unused, unexpired code; false when unknown, used or expired.
    #[tracing::instrument(name = "ledger.consume", skip_all, fields(otel.kind = "client"))]
    pub async fn consume(&self, code: &Code) -> Result<bool, LedgerError> {
        let blob = self.container.blob_client(code.as_str());
        let Some((mut metadata, etag)) = self.properties(&blob).await? else {
            return Ok(false);
        };
        let now = OffsetDateTime::now_utc();
        if !Record::from_metadata(&metadata).usable_at(now) {
            return Ok(false);
        }
        let Some(etag) = etag else {
            return Err(LedgerError::NoEtag);
        };
        let writer = uuid::Uuid::new_v4().to_string();
        metadata.insert(STATE.to_owned(), "used".to_owned());
        metadata.insert(USED_AT.to_owned(), rfc3339(now));
        metadata.insert(USED_BY.to_owned(), writer.clone());
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
            // Another verify changed the record first, or this one did and the answer to it was
            // lost (the retry then meets its own write): the record says which.
            Err(e)
                if matches!(
                    e.http_status(),
                    Some(StatusCode::PreconditionFailed | StatusCode::NotFound)
                ) =>
            {
                self.used_by(&blob, &writer).await
            }
            Err(e) => match self.used_by(&blob, &writer).await {
                Ok(true) => Ok(true),
                _ => Err(self.failure(MARK_USED, &e)),
            },
        }
    }

    /// Whether the record of `blob` was marked used by the verify `writer`.
    async fn used_by(&self, blob: &BlobClient, writer: &str) -> Result<bool, LedgerError> {
        let found = self.properties(blob).await?;
        Ok(found.is_some_and(|(metadata, _)| metadata.get(USED_BY).is_some_and(|by| by == writer)))
    }

    /// The metadata and ETag of `blob` (one Get Blob Properties), or `None` when it is absent.
    async fn properties(&self, blob: &BlobClient) -> Result<Option<Properties>, LedgerError> {
        let properties = match blob.get_properties(None).await {
            Ok(p) => p,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(self.failure(READ, &e)),
        };
        let metadata = properties.metadata().map_err(|e| self.failure(READ, &e))?;
        let etag = properties.etag().map_err(|e| self.failure(READ, &e))?;
        Ok(Some((metadata, etag)))
    }
}

/// A record blob's metadata and ETag.
type Properties = (HashMap<String, String>, Option<Etag>);
