//! Azure-Functions-style keys as third-party-api keeps them, the contract between it and whoever
//! seeds or inspects its store (devstack, tests): a key's name, value and scope
//! ([`key`]), the JSON document of every key ([`document`]), and the one blob every replica
//! shares, read and written on its ETag ([`blob`]). How third-party-api keeps the store in force
//! (file or blob, refresh, the API-key rings) stays in third-party-api.

pub mod blob;
pub mod document;
pub mod key;

pub use blob::{BlobError, BlobKeyStore, BlobKeyStoreOptions, BlobWriteError, WriteCondition};
pub use document::{DocumentError, KeyDocument, RedactedJsonError, redact_json_error};
pub use key::{
    DEFAULT_KEY_NAME, FUNCTION_NAME, KeyError, KeyName, KeyScope, KeyValue, MASTER_KEY_NAME,
    MAX_NAME_LEN,
};
