//! Why the key store could not be opened, read or changed. No message carries a key value.

use super::blob::BlobError;
use super::document::DocumentError;
use std::fmt;

/// Why the store could not be opened or changed. Messages never carry a key value.
#[derive(thiserror::Error)]
pub enum KeyStoreError {
    /// The store could not be read or parsed.
    #[error("the key store {location} cannot be loaded: {reason}")]
    Load {
        /// The file or blob URL.
        location: String,
        /// What went wrong.
        reason: LoadError,
    },
    /// The store was read but is not a valid key store (named, never quoted).
    #[error("the key store {location} is not valid: {reason}")]
    Invalid {
        /// The file or blob URL.
        location: String,
        /// What is wrong and where.
        reason: DocumentError,
    },
    /// The store could not be written; the keys in force are unchanged.
    #[error("the key store {location} cannot be written: {reason}")]
    Persist {
        /// The file or blob URL.
        location: String,
        /// What went wrong.
        reason: PersistError,
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

/// The message: a log or a test reading the Debug form sees what went wrong and where.
impl fmt::Debug for KeyStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why the store could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(std::io::Error),
    /// The file is not a valid key store.
    #[error("{0}")]
    Document(DocumentError),
    /// The file holds no master key, which a file store keeps itself.
    #[error("masterKey is missing (a file store keeps its master key)")]
    NoMasterKey,
    /// The path is a symbolic link, which the store never follows.
    #[error("it is a symbolic link; the store must be a regular file")]
    SymbolicLink,
    /// Storage could not read the blob.
    #[error("{0}")]
    Blob(BlobError),
    /// The blob is gone after it was read once.
    #[error("the blob was deleted; the last keys read stay in force")]
    Deleted,
    /// A change was asked for before the store was ever read.
    #[error("the key store has not been read yet")]
    NotRead,
}

/// Why the store could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file or its directory could not be written.
    #[error("{0}")]
    Io(std::io::Error),
    /// The task writing the file did not finish.
    #[error("{0}")]
    Task(tokio::task::JoinError),
    /// Storage could not write the blob.
    #[error("{0}")]
    Blob(BlobError),
    /// Other replicas kept changing the blob between this one's read and write.
    #[error("still changing after {0} attempts; try again")]
    Contended(usize),
}
