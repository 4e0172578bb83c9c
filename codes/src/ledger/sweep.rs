//! The sweep: removes records whose own expiry has passed, a page of up to 5,000 records per
//! list call. It replaces a delayed `code-expire` message per code (three storage operations per
//! code) with one list per interval and one delete per expired record; in Azure a Storage
//! lifecycle rule can do the deleting instead, at no transaction cost.

use super::{CodeLedger, LedgerError, Record};
use azure_core::http::StatusCode;
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobContainerClientListBlobsOptions, BlobItem, ListBlobsIncludeItem,
};
use futures::TryStreamExt;
use time::OffsetDateTime;

const LIST: &str = "list the records in";
const SWEEP: &str = "remove an expired record from";

/// What one sweep found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Records listed.
    pub scanned: usize,
    /// Expired records deleted by this sweep.
    pub removed: usize,
}

/// Whether a listed blob is a record whose own expiry is at or before `now`; anything without a
/// readable expiry (a probe blob, a file put there by hand) is left alone.
fn expired(item: &BlobItem, now: OffsetDateTime) -> bool {
    let metadata = item.metadata.as_ref().and_then(|m| m.values.as_ref());
    metadata.is_some_and(|values| Record::from_metadata(values).expired_at(now))
}

impl CodeLedger {
    /// Deletes every record whose expiry is at or before `now`. Each delete is conditional on the
    /// ETag listed, so a record changed since (a verify marking it used) is left for the next
    /// sweep; one already gone is fine. Another replica sweeping at the same time is harmless.
    #[tracing::instrument(name = "ledger.sweep", skip_all, fields(otel.kind = "client"))]
    pub async fn sweep_expired(&self, now: OffsetDateTime) -> Result<Swept, LedgerError> {
        let options = BlobContainerClientListBlobsOptions {
            include: Some(vec![ListBlobsIncludeItem::Metadata]),
            ..Default::default()
        };
        let mut pages = self
            .container
            .list_blobs(Some(options))
            .map_err(|e| self.failure(LIST, &e))?
            .into_pages();
        let mut swept = Swept::default();
        while let Some(page) = pages.try_next().await.map_err(|e| self.failure(LIST, &e))? {
            let page = page.into_model().map_err(|e| self.failure(LIST, &e))?;
            for item in page.blob_items {
                swept.scanned += 1;
                let Some(name) = item.name.as_deref().filter(|_| expired(&item, now)) else {
                    continue;
                };
                // Without the listed ETag the delete could not be conditional: next sweep.
                let Some(etag) = item.properties.and_then(|p| p.etag) else {
                    continue;
                };
                let options = BlobClientDeleteOptions {
                    if_match: Some(etag),
                    ..Default::default()
                };
                match self.container.blob_client(name).delete(Some(options)).await {
                    Ok(_) => swept.removed += 1,
                    Err(e)
                        if matches!(
                            e.http_status(),
                            Some(StatusCode::NotFound | StatusCode::PreconditionFailed)
                        ) => {}
                    Err(e) => return Err(self.failure(SWEEP, &e)),
                }
            }
        }
        Ok(swept)
    }
}
