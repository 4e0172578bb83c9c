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

/// How many times a change is re-applied on a fresh read when another replica wrote first.
const CONFLICT_ATTEMPTS: usize = 8;

impl KeyStore {
    /// Reads the blob store, creating an empty one (no function key, and a generated master key
    /// unless it is kept in Key Vault) when there is none. An unparsable blob is an error naming
    /// it, never quoting it. A file store is loaded already.
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
            let document = KeyDocument::new(master.as_ref(), &[]);
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
    pub async fn refresh(&self) -> Result<bool, KeyStoreError> {
        let Backend::Blob(blob) = &self.backend else {
            return Ok(false);
        };
        if !self.is_loaded() {
            self.load().await?;
            return Ok(true);
        }
        let mut current = self.current.lock().await;
        match self.read_blob(blob).await? {
            Some((_, etag)) if current.etag.as_ref() == Some(&etag) => Ok(false),
            Some((document, etag)) => {
                self.install(&mut current, document, Some(etag));
                Ok(true)
            }
            None => Err(KeyStoreError::Load {
                location: blob.url().to_string(),
                reason: LoadError::Deleted,
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
            let etag = match &self.backend {
                Backend::File(path) => {
                    write_file(path, &next)
                        .await
                        .map_err(|reason| KeyStoreError::Persist {
                            location: location.clone(),
                            reason,
                        })?;
                    None
                }
                Backend::Blob(blob) => {
                    let condition = match current.etag.clone() {
                        Some(etag) => WriteCondition::Matches(etag),
                        None => WriteCondition::Absent,
                    };
                    match blob.write(next.to_json(), condition).await {
                        Ok(etag) => Some(etag),
                        Err(BlobWriteError::Conflict) => {
                            tracing::info!(blob = %blob.url(), "the key store changed meanwhile; applying the change to the new version");
                            match self.read_blob(blob).await? {
                                Some((fresh, etag)) => {
                                    self.install(&mut current, fresh, Some(etag))
                                }
                                None => {
                                    current.etag = None;
                                }
                            }
                            continue;
                        }
                        Err(BlobWriteError::Failed(e)) => {
                            return Err(KeyStoreError::Persist {
                                location,
                                reason: PersistError::Blob(e),
                            });
                        }
                    }
                }
            };
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
