//! The key store: function keys, host keys and the master key, kept in a local file (atomic
//! write, 0600) or in one blob shared by every replica (ETag-conditional writes, re-read every
//! few seconds), and mirrored into the API-key rings that guard the routes. The master key
//! lives in the store, or in Key Vault (then the store holds none and the admin API cannot set it).

mod blob;
mod document;
mod file;

pub use blob::{BlobKeyStore, BlobWriteError, WriteCondition};
pub use document::{
    FUNCTION_NAME, KeyDocument, KeyName, KeyScope, KeyValue, MASTER_KEY_NAME, redact_json_error,
};

use azure_core::http::Etag;
use shared_auth::ApiKeyRing;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// How many times a change is re-applied on a fresh read when another replica wrote first.
const CONFLICT_ATTEMPTS: usize = 8;

/// Why the store could not be opened or changed. Messages never carry a key value.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The store could not be read or parsed.
    #[error("the key store {location} cannot be loaded: {reason}")]
    Load {
        /// The file or blob URL.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// The store was read but is not a valid key store (named, never quoted).
    #[error("the key store {location} is not valid: {reason}")]
    Invalid {
        /// The file or blob URL.
        location: String,
        /// What is wrong and where.
        reason: String,
    },
    /// The store could not be written; the keys in force are unchanged.
    #[error("the key store {location} cannot be written: {reason}")]
    Persist {
        /// The file or blob URL.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// No key of that name in that scope.
    #[error("no {scope} key named `{name}`")]
    NotFound {
        /// `function` or `host`.
        scope: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The master key is kept in Key Vault, not in the store.
    #[error(
        "the master key is kept in Key Vault: set a new version of its secret; third-party-api picks it up"
    )]
    MasterKeyInVault,
}

/// Whether a set created a key or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// The key did not exist.
    Created,
    /// The key existed and now has the new value.
    Replaced,
}

/// Which key a set or delete is about: a named key of a scope, or the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A function or host key.
    Named(KeyScope, KeyName),
    /// The master key (`_master` in the host-keys API).
    Master,
}

/// Where the master key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeySource {
    /// The store's own `masterKey`.
    Store,
    /// A Key Vault secret, handed in with [`KeyStore::set_vault_master_key`].
    KeyVault,
}

enum Backend {
    File(PathBuf),
    Blob(Box<BlobKeyStore>),
}

/// The document in force and the ETag it was read or written with (blob store only).
#[derive(Default)]
struct Current {
    document: Option<KeyDocument>,
    etag: Option<Etag>,
}

/// The keys of this host, in their store and in the rings.
pub struct KeyStore {
    backend: Backend,
    master_source: MasterKeySource,
    /// Held across a read-modify-write, so one replica's changes never race each other.
    current: tokio::sync::Mutex<Current>,
    vault_master: RwLock<Option<KeyValue>>,
    loaded: AtomicBool,
    function_ring: Arc<ApiKeyRing>,
    master_ring: Arc<ApiKeyRing>,
}

impl KeyStore {
    /// Opens the file store at `path`, creating it from the seeds when it does not exist; its
    /// master key is its own.
    pub fn open(
        path: &Path,
        seed_master: Option<KeyValue>,
        seed_function_keys: Vec<(KeyName, KeyValue)>,
    ) -> Result<Self, KeyStoreError> {
        Self::open_file(
            path,
            seed_master,
            seed_function_keys,
            MasterKeySource::Store,
        )
    }

    /// Opens the file store at `path` with the master key from `master_source`.
    pub fn open_file(
        path: &Path,
        seed_master: Option<KeyValue>,
        seed_function_keys: Vec<(KeyName, KeyValue)>,
        master_source: MasterKeySource,
    ) -> Result<Self, KeyStoreError> {
        let document = file::load_or_create(path, seed_master, seed_function_keys)?;
        let mut store = Self::new(Backend::File(path.to_owned()), master_source);
        let mut current = Current::default();
        store.install(&mut current, document, None);
        store.current = tokio::sync::Mutex::new(current);
        Ok(store)
    }

    /// A store kept in `blob`, not loaded yet: [`KeyStore::load`] reads it (or creates it).
    pub fn blob(blob: BlobKeyStore, master_source: MasterKeySource) -> Self {
        Self::new(Backend::Blob(Box::new(blob)), master_source)
    }

    fn new(backend: Backend, master_source: MasterKeySource) -> Self {
        Self {
            backend,
            master_source,
            current: tokio::sync::Mutex::default(),
            vault_master: RwLock::default(),
            loaded: AtomicBool::new(false),
            function_ring: Arc::default(),
            master_ring: Arc::default(),
        }
    }

    /// Where the store lives (a path or a blob URL), for messages.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::File(path) => path.display().to_string(),
            Backend::Blob(blob) => blob.url().to_string(),
        }
    }

    /// Where the master key comes from.
    pub fn master_key_source(&self) -> MasterKeySource {
        self.master_source
    }

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
                        reason,
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
                reason: "the blob was deleted; the last keys read stay in force".into(),
            }),
        }
    }

    async fn read_blob(
        &self,
        blob: &BlobKeyStore,
    ) -> Result<Option<(KeyDocument, Etag)>, KeyStoreError> {
        let location = || blob.url().to_string();
        let Some((bytes, etag)) = blob.read().await.map_err(|reason| KeyStoreError::Load {
            location: location(),
            reason,
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

    /// True once the keys are loaded (always for a file store).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// True when the store can serve: loaded, and for a file store still on disk (a restart
    /// would find the keys).
    pub fn is_ready(&self) -> bool {
        match &self.backend {
            Backend::File(path) => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
            Backend::Blob(_) => self.is_loaded(),
        }
    }

    /// Installs the master key read from Key Vault (`None`: the secret holds no valid key, as
    /// before the first rotation); the rings change at once.
    pub async fn set_vault_master_key(&self, value: Option<KeyValue>) {
        let current = self.current.lock().await;
        *self.vault_master.write().unwrap_or_else(|p| p.into_inner()) = value;
        if let Some(document) = &current.document {
            self.refresh_rings(document);
        }
    }

    /// The ring that opens `RandomNumber`: its function keys, every host key, the master key.
    pub fn function_ring(&self) -> Arc<ApiKeyRing> {
        self.function_ring.clone()
    }

    /// The ring that opens the admin API: the master key only.
    pub fn master_ring(&self) -> Arc<ApiKeyRing> {
        self.master_ring.clone()
    }

    /// The keys of `scope` (name, value), sorted by name. The master key is never listed.
    pub async fn list(&self, scope: KeyScope) -> Vec<(String, KeyValue)> {
        let current = self.current.lock().await;
        current
            .document
            .iter()
            .flat_map(|d| d.keys(scope))
            .map(|(n, v)| (n.to_owned(), v))
            .collect()
    }

    /// When this replica last accepted the key `name` of `scope`.
    pub fn last_accepted(&self, scope: KeyScope, name: &str) -> Option<SystemTime> {
        self.function_ring
            .last_accepted(&ring_name(scope.label(), name))
    }

    /// Sets a key to `value`, or to a generated value when `None`; persists, then swaps the
    /// rings. When the write fails nothing changes, in the store or in force.
    pub async fn set(
        &self,
        key: KeyRef,
        value: Option<KeyValue>,
    ) -> Result<(KeyValue, SetOutcome), KeyStoreError> {
        if key == KeyRef::Master && self.master_source == MasterKeySource::KeyVault {
            return Err(KeyStoreError::MasterKeyInVault);
        }
        let value = value.unwrap_or_else(KeyValue::generate);
        let outcome = self
            .change(|document| match &key {
                KeyRef::Master => {
                    document.set_master_key(&value);
                    Ok(SetOutcome::Replaced)
                }
                KeyRef::Named(scope, name) => Ok(if document.insert(*scope, name, &value) {
                    SetOutcome::Created
                } else {
                    SetOutcome::Replaced
                }),
            })
            .await?;
        tracing::info!(key = %describe(&key), outcome = ?outcome, "key set");
        Ok((value, outcome))
    }

    /// Deletes a function or host key; persists, then swaps the rings.
    pub async fn delete(&self, scope: KeyScope, name: &KeyName) -> Result<(), KeyStoreError> {
        self.change(|document| {
            if document.remove(scope, name) {
                Ok(())
            } else {
                Err(KeyStoreError::NotFound {
                    scope: scope.label(),
                    name: name.to_string(),
                })
            }
        })
        .await?;
        tracing::info!(key = %describe(&KeyRef::Named(scope, name.clone())), "key deleted");
        Ok(())
    }

    /// Applies `edit` to the document in force and writes the result. A blob write is
    /// conditional on the ETag read; when another replica wrote first, the blob is read again
    /// and `edit` applied to it, so neither change is lost.
    async fn change<T>(
        &self,
        mut edit: impl FnMut(&mut KeyDocument) -> Result<T, KeyStoreError>,
    ) -> Result<T, KeyStoreError> {
        let mut current = self.current.lock().await;
        let location = self.location();
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(document) = &current.document else {
                return Err(KeyStoreError::Load {
                    location,
                    reason: "the key store has not been read yet".into(),
                });
            };
            let mut next = document.clone();
            let result = edit(&mut next)?;
            let etag = match &self.backend {
                Backend::File(path) => {
                    let path = path.clone();
                    let to_write = next.clone();
                    tokio::task::spawn_blocking(move || file::write_atomically(&path, &to_write))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
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
                        Err(BlobWriteError::Failed(reason)) => {
                            return Err(KeyStoreError::Persist { location, reason });
                        }
                    }
                }
            };
            self.install(&mut current, next, etag);
            return Ok(result);
        }
        Err(KeyStoreError::Persist {
            location,
            reason: format!("still changing after {CONFLICT_ATTEMPTS} attempts; try again"),
        })
    }

    fn install(&self, current: &mut Current, document: KeyDocument, etag: Option<Etag>) {
        self.refresh_rings(&document);
        current.document = Some(document);
        current.etag = etag;
        self.loaded.store(true, Ordering::Release);
    }

    fn refresh_rings(&self, document: &KeyDocument) {
        let master = match self.master_source {
            MasterKeySource::Store => document.master_key(),
            MasterKeySource::KeyVault => self
                .vault_master
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        };
        let mut entries: Vec<(String, KeyValue)> = Vec::new();
        for scope in [KeyScope::Function, KeyScope::Host] {
            for (name, value) in document.keys(scope) {
                entries.push((ring_name(scope.label(), name), value));
            }
        }
        if let Some(master) = &master {
            entries.push(("master".into(), master.clone()));
        }
        self.function_ring
            .replace(entries.iter().map(|(n, v)| (n.as_str(), v.secret())));
        self.master_ring
            .replace(master.iter().map(|m| ("master", m.secret())));
    }
}

/// A key's name in the rings: `function/<name>` or `host/<name>`.
fn ring_name(scope: &str, name: &str) -> String {
    format!("{scope}/{name}")
}

fn describe(key: &KeyRef) -> String {
    match key {
        KeyRef::Master => "master".into(),
        KeyRef::Named(scope, name) => ring_name(scope.label(), name.as_str()),
    }
}
