//! The Azure role names the services' errors name when a call is refused (403). One spelling for
//! every crate; the role ids, and who holds which role where, are the operator tool's table
//! (`ops::roles`), which takes its names from here.

/// Key Vault Secrets User: read a secret's value.
pub const KEY_VAULT_SECRETS_USER: &str = "Key Vault Secrets User";
/// Key Vault Secrets Officer: read and write secrets (the key rotation).
pub const KEY_VAULT_SECRETS_OFFICER: &str = "Key Vault Secrets Officer";
/// Storage Queue Data Message Sender: put messages on a queue.
pub const QUEUE_MESSAGE_SENDER: &str = "Storage Queue Data Message Sender";
/// Storage Queue Data Message Processor: peek, receive and delete messages.
pub const QUEUE_MESSAGE_PROCESSOR: &str = "Storage Queue Data Message Processor";
/// Storage Queue Data Reader: read a queue's properties (its length) and peek.
pub const QUEUE_DATA_READER: &str = "Storage Queue Data Reader";
/// Storage Queue Data Contributor: every queue data action.
pub const QUEUE_DATA_CONTRIBUTOR: &str = "Storage Queue Data Contributor";
/// The project's custom role with the one data action Update Message needs (`messages/write`),
/// which neither Message Processor nor Message Sender grants.
pub const QUEUE_MESSAGE_UPDATER: &str = "Storage Queue Data Message Updater";
/// Storage Blob Data Contributor: read, write and delete blobs.
pub const BLOB_DATA_CONTRIBUTOR: &str = "Storage Blob Data Contributor";
/// AcrPull: pull images from a container registry.
pub const ACR_PULL: &str = "AcrPull";
