//! The key store: function keys, host keys and the master key, kept in a local file (atomic
//! write, 0600) or in one blob shared by every replica (ETag-conditional writes, re-read every
//! few seconds), and mirrored into the API-key rings that guard the routes. The master key
//! lives in the store, or in Key Vault (then the store holds none and the admin API cannot set it).
//!
//! - `function_keys` (its own crate, the format devstack seeds with too): one key's name, value
//!   and scope, the JSON document (the same in a file and in a blob), and the blob.
//! - `file`: the other place a document is kept.
//! - `sync`: reading the store and changing it (read, edit, conditional write, retry).
//! - `rings`: the keys in force, mirrored into the API-key rings.

mod error;
mod file;
mod rings;
mod sync;

pub use error::{KeyStoreError, LoadError, PersistError};
pub use function_keys::{
    BlobError, BlobKeyStore, BlobKeyStoreOptions, BlobWriteError, DEFAULT_KEY_NAME, DocumentError,
    FUNCTION_NAME, KeyDocument, KeyError, KeyName, KeyScope, KeyValue, MASTER_KEY_NAME,
    RedactedJsonError, WriteCondition, redact_json_error,
};
use function_keys::{blob, document};

use azure_core::http::Etag;
use parking_lot::RwLock;
use rings::describe;
use shared_auth::ApiKeyRing;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

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
    /// When a key nobody knew last made this replica read the store (one read at a time).
    last_unknown_key_read: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl KeyStore {
    /// Opens the file store at `path`, creating it from the seeds when it does not exist; its
    /// master key from `master_source`.
    pub fn open(
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
            last_unknown_key_read: tokio::sync::Mutex::default(),
        }
    }

    /// Where the store lives (a path or a blob URL), for messages.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::File(path) => path.display().to_string(),
            Backend::Blob(blob) => blob.url().to_string(),
        }
    }

    /// True when the store can serve: loaded, and for a file store still on disk (a restart
    /// would find the keys).
    pub fn is_ready(&self) -> bool {
        match &self.backend {
            Backend::File(path) => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
            Backend::Blob(_) => self.loaded.load(Ordering::Acquire),
        }
    }

    /// Installs the master key read from Key Vault (`None`: the secret holds no valid key, as
    /// before the first rotation); the rings change at once.
    pub async fn set_vault_master_key(&self, value: Option<KeyValue>) {
        let current = self.current.lock().await;
        *self.vault_master.write() = value;
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
            .last_accepted(&rings::ring_name(scope.label(), name))
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
}
