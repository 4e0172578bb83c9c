//! Reading the store and changing it: a blob is read (or created) and re-read; a change is
//! applied to the document in force and written, conditionally on the ETag read for a blob, and
//! applied again to a fresh read when another replica wrote first.

use super::error::{KeyStoreError, LoadError, PersistError};
use super::file;
use super::{
    Backend, BlobKeyStore, BlobWriteError, KeyDocument, KeyStore, KeyValue, MasterKeySource,
    WriteCondition,
};
use azure_core::http::Etag;
use std::path::Path;
use std::sync::atomic::Ordering;

/// How many times a change is re-applied on a fresh read when another replica wrote first.
const CONFLICT_ATTEMPTS: usize = 8;
/// The least time between two reads of the store made because a presented key was unknown: a
/// flood of wrong keys costs one read a second per replica.
pub const UNKNOWN_KEY_READ_GAP: std::time::Duration = std::time::Duration::from_secs(1);

impl KeyStore {
    /// Reads the blob store, creating an empty one (no function key, and a generated master key
    /// unless it is kept in Key Vault) when there is none, marked as made so: a replica that
    /// holds keys puts them back over it at its next refresh ([`KeyStore::refresh`]). An
    /// unparsable blob is an error naming it, never quoting it. A file store is loaded already.
    pub async fn load(&self) -> Result<(), KeyStoreError> {
        let Backend::Blob(blob) = &self.backend else {
            return Ok(());
        };
        let mut current = self.current.lock().await;
        loop {
            if let Some((document, etag)) = self.read_blob(blob).await? {
                self.install(&mut current, document, Some(etag));
                return Ok(());
            }
            let master = (self.master_source == MasterKeySource::Store).then(KeyValue::generate);
            let document = KeyDocument::created_empty(master.as_ref());
            match blob.write(document.to_json(), WriteCondition::Absent).await {
                Ok(etag) => {
                    tracing::info!(blob = %blob.url(), "created a new key store");
                    self.install(&mut current, document, Some(etag));
                    return Ok(());
                }
                // Another replica created it first: read theirs.
                Err(BlobWriteError::Conflict) => continue,
                Err(BlobWriteError::Failed(reason)) => {
                    return Err(KeyStoreError::Persist {
                        location: blob.url().to_string(),
                        reason: PersistError::Blob(reason),
                    });
                }
            }
        }
    }

    /// Re-reads the blob store; true when it changed. On any error the keys in force stay.
    ///
    /// A store never silently empties: when the blob is gone, or was replaced by an empty one a
    /// starting replica made where it found none, and this replica holds keys, it writes them
    /// back (conditionally, so a change made meanwhile wins) instead of dropping them.
    pub async fn refresh(&self) -> Result<bool, KeyStoreError> {
        let Backend::Blob(blob) = &self.backend else {
            return Ok(false);
        };
        if !self.loaded.load(Ordering::Acquire) {
            self.load().await?;
            return Ok(true);
        }
        let mut current = self.current.lock().await;
        let held = current
            .document
            .clone()
            .filter(|d| d.has_keys() && !d.is_created_empty());
        match (self.read_blob(blob).await?, held) {
            (Some((_, etag)), _) if current.etag.as_ref() == Some(&etag) => Ok(false),
            (Some((found, etag)), Some(held)) if found.is_created_empty() && !found.has_keys() => {
                tracing::warn!(blob = %blob.url(), "a replica made an empty key store over a deleted one: restoring the keys this replica holds");
                self.restore(blob, &mut current, held, WriteCondition::Matches(etag))
                    .await
            }
            (Some((document, etag)), _) => {
                self.install(&mut current, document, Some(etag));
                Ok(true)
            }
            (None, Some(held)) => {
                tracing::warn!(blob = %blob.url(), "the key store is gone: restoring the keys this replica holds");
                self.restore(blob, &mut current, held, WriteCondition::Absent)
                    .await
            }
            (None, None) => Err(KeyStoreError::Load {
                location: blob.url().to_string(),
                reason: LoadError::Deleted,
            }),
        }
    }

    /// Re-reads the blob store because a request presented a key this replica does not hold:
    /// one that missed a refresh (a failed read, a write landing just after it) catches up on the
    /// first request with the new key instead of refusing it until its next refresh. One read at
    /// a time and at most one per `UNKNOWN_KEY_READ_GAP`; a caller that waited for another's
    /// read finds the rings it left. Errors keep the keys in force (logged).
    pub async fn refresh_for_unknown_key(&self) {
        let mut last = self.last_unknown_key_read.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_READ_GAP) {
            return;
        }
        *last = Some(std::time::Instant::now());
        match self.refresh().await {
            Ok(true) => tracing::info!("an unknown key was presented: the key store had changed"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "an unknown key was presented and the key store could not be read")
            }
        }
    }

    /// Writes `held` over what is there when `condition` still holds; a lost race is no error:
    /// the next refresh reads the winner.
    async fn restore(
        &self,
        blob: &BlobKeyStore,
        current: &mut super::Current,
        held: KeyDocument,
        condition: WriteCondition,
    ) -> Result<bool, KeyStoreError> {
        match blob.write(held.to_json(), condition).await {
            Ok(etag) => {
                self.install(current, held, Some(etag));
                Ok(true)
            }
            Err(BlobWriteError::Conflict) => Ok(false),
            Err(BlobWriteError::Failed(reason)) => Err(KeyStoreError::Persist {
                location: blob.url().to_string(),
                reason: PersistError::Blob(reason),
            }),
        }
    }

    /// The blob's document and ETag; `None` when there is no blob.
    async fn read_blob(
        &self,
        blob: &BlobKeyStore,
    ) -> Result<Option<(KeyDocument, Etag)>, KeyStoreError> {
        let location = || blob.url().to_string();
        let Some((bytes, etag)) = blob.read().await.map_err(|e| KeyStoreError::Load {
            location: location(),
            reason: LoadError::Blob(e),
        })?
        else {
            return Ok(None);
        };
        let document = KeyDocument::from_json(&bytes).map_err(|reason| KeyStoreError::Invalid {
            location: location(),
            reason,
        })?;
        Ok(Some((document, etag)))
    }

    /// Applies `edit` to the document in force and writes the result. A blob write is
    /// conditional on the ETag read; when another replica wrote first, the blob is read again
    /// and `edit` applied to it, so neither change is lost.
    pub(super) async fn change<T>(
        &self,
        mut edit: impl FnMut(&mut KeyDocument) -> Result<T, KeyStoreError>,
    ) -> Result<T, KeyStoreError> {
        let mut current = self.current.lock().await;
        let location = self.location();
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(document) = &current.document else {
                return Err(KeyStoreError::Load {
                    location,
                    reason: LoadError::NotRead,
                });
            };
            let mut next = document.clone();
            let result = edit(&mut next)?;
            next.mark_chosen();
            let written = match &self.backend {
                Backend::File(path) => write_file(path, &next).await.map(|()| None),
                Backend::Blob(blob) => {
                    let condition = match current.etag.clone() {
                        Some(etag) => WriteCondition::Matches(etag),
                        None => WriteCondition::Absent,
                    };
                    match blob.write(next.to_json(), condition).await {
                        Ok(etag) => Ok(Some(etag)),
                        Err(BlobWriteError::Conflict) => {
                            tracing::info!(blob = %blob.url(), "the key store changed meanwhile; applying the change to the new version");
                            match self.read_blob(blob).await? {
                                Some((fresh, etag)) => {
                                    self.install(&mut current, fresh, Some(etag))
                                }
                                None => current.etag = None,
                            }
                            continue;
                        }
                        Err(BlobWriteError::Failed(e)) => Err(PersistError::Blob(e)),
                    }
                }
            };
            let etag = written.map_err(|reason| KeyStoreError::Persist {
                location: location.clone(),
                reason,
            })?;
            self.install(&mut current, next, etag);
            return Ok(result);
        }
        Err(KeyStoreError::Persist {
            location,
            reason: PersistError::Contended(CONFLICT_ATTEMPTS),
        })
    }
}

/// Writes `document` to the file store at `path` off the async threads.
async fn write_file(path: &Path, document: &KeyDocument) -> Result<(), PersistError> {
    let path = path.to_owned();
    let document = document.clone();
    tokio::task::spawn_blocking(move || file::write_atomically(&path, &document))
        .await
        .map_err(PersistError::Task)?
        .map_err(PersistError::Io)
}
