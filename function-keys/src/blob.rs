//! The key store as one blob shared by every replica, read and written with the app's own
//! identity (Storage Blob Data Contributor on its container). Every write is conditional on the
//! ETag read, so two replicas changing keys at once cannot overwrite each other's change.

use azure_core::credentials::TokenCredential;
use azure_core::http::{Etag, RequestContent, StatusCode, Url};
use azure_storage_blob::models::{BlobClientDownloadOptions, BlobClientUploadOptions};
use azure_storage_blob::{BlobClient, BlobClientOptions};
use shared_auth::azure_error::{AzureCall, AzureError, blob_container_name, resource_name};
use std::sync::Arc;
use std::time::Duration;

/// How long one read or write of the blob may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The role reading and writing the key store needs on its container.
const KEY_STORE_ROLE: &str = shared_auth::role_names::BLOB_DATA_CONTRIBUTOR;

/// Options of a [`BlobKeyStore`].
#[derive(Debug, Clone, Default)]
pub struct BlobKeyStoreOptions {
    /// The Azure SDK's client options: `azure_client_options(&http)` sends every request through
    /// the shared HTTP client (the project's timeouts, trusted CAs and Azure retry policy); the
    /// default is the SDK's own transport.
    pub client_options: azure_core::http::ClientOptions,
}

/// The blob holding the key document.
pub struct BlobKeyStore {
    client: BlobClient,
    url: Url,
}

/// What a write may replace.
#[derive(Debug, Clone)]
pub enum WriteCondition {
    /// Only create: the blob must not exist.
    Absent,
    /// Only replace the version read: the blob's ETag must still be this one.
    Matches(Etag),
}

/// Why storage could not read or write the blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Storage refused, failed or did not answer in time (in an operator's words).
    #[error(transparent)]
    Azure(Box<AzureError>),
    /// Storage read the blob but gave no ETag, so no later write could be conditional.
    #[error("storage gave no ETag for the key store")]
    NoReadEtag,
    /// Storage wrote the blob but gave no ETag.
    #[error("storage gave no ETag for the write")]
    NoWriteEtag,
}

impl From<AzureError> for BlobError {
    fn from(error: AzureError) -> Self {
        Self::Azure(Box::new(error))
    }
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BlobWriteError {
    /// Another writer changed the blob since it was read (or created it first).
    #[error("the key store changed since it was read")]
    Conflict,
    /// Storage refused or did not answer.
    #[error(transparent)]
    Failed(BlobError),
}

impl BlobKeyStore {
    /// A client of the blob at `url` (`https://<account>.blob.core.windows.net/<container>/<blob>`).
    pub fn new(
        url: Url,
        credential: Arc<dyn TokenCredential>,
        options: Option<BlobKeyStoreOptions>,
    ) -> azure_core::Result<Self> {
        let options = options.unwrap_or_default();
        let client = BlobClient::new(
            url.clone(),
            Some(credential),
            Some(BlobClientOptions {
                client_options: options.client_options,
                ..Default::default()
            }),
        )?;
        Ok(Self { client, url })
    }

    /// Doing `action` to the blob, for errors: a 403 names [`KEY_STORE_ROLE`] on its container
    /// (`.../<container>/<blob>`).
    fn call(&self, action: &str) -> AzureCall {
        let container = blob_container_name(&self.url).map_or_else(
            || "the key store's container".to_owned(),
            |c| format!("container {c}"),
        );
        AzureCall::new(
            action,
            format!("the key store blob {}", resource_name(&self.url)),
        )
        .needs_role(KEY_STORE_ROLE, container)
    }

    /// The blob's URL (names no secret).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The blob's content and ETag; `None` when it does not exist yet.
    pub async fn read(&self) -> Result<Option<(Vec<u8>, Etag)>, BlobError> {
        let download = async {
            let response = self
                .client
                .download(Some(BlobClientDownloadOptions::default()))
                .await?;
            let etag = response.properties.etag.clone();
            let bytes = response.body.collect().await?;
            Ok::<_, azure_core::Error>((bytes.to_vec(), etag))
        };
        match tokio::time::timeout(CALL_TIMEOUT, download).await {
            Err(_) => Err(self.call("read").timed_out(CALL_TIMEOUT).into()),
            Ok(Err(e)) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Ok(Err(e)) => Err(self.call("read").failed(&e).into()),
            Ok(Ok((_, None))) => Err(BlobError::NoReadEtag),
            Ok(Ok((bytes, Some(etag)))) => Ok(Some((bytes, etag))),
        }
    }

    /// Writes `bytes` if `condition` holds; the new ETag.
    pub async fn write(
        &self,
        bytes: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<Etag, BlobWriteError> {
        let options = BlobClientUploadOptions {
            blob_content_type: Some("application/json".into()),
            ..Default::default()
        };
        let options = match condition {
            WriteCondition::Absent => options.if_not_exists(),
            WriteCondition::Matches(etag) => BlobClientUploadOptions {
                if_match: Some(etag),
                ..options
            },
        };
        let upload = self
            .client
            .upload(RequestContent::from(bytes), Some(options));
        match tokio::time::timeout(CALL_TIMEOUT, upload).await {
            Err(_) => Err(BlobWriteError::Failed(
                self.call("write").timed_out(CALL_TIMEOUT).into(),
            )),
            Ok(Err(e))
                if matches!(
                    e.http_status(),
                    Some(StatusCode::PreconditionFailed | StatusCode::Conflict)
                ) =>
            {
                Err(BlobWriteError::Conflict)
            }
            Ok(Err(e)) => Err(BlobWriteError::Failed(self.call("write").failed(&e).into())),
            Ok(Ok(result)) => result
                .etag
                .ok_or(BlobWriteError::Failed(BlobError::NoWriteEtag)),
        }
    }
}
