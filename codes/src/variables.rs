//! The environment variables naming the resources main-app, queue-worker and the operator tool
//! share: one name each, read by every crate that needs the resource.

/// The queue `code-issued` messages go to and the worker consumes.
pub const STORAGE_QUEUE_URL: &str = "STORAGE_QUEUE_URL";
/// The poison queue; unset, `<STORAGE_QUEUE_URL>-poison`.
pub const POISON_QUEUE_URL: &str = "POISON_QUEUE_URL";
/// The ledger container (one blob per code).
pub const CODE_LEDGER_URL: &str = "CODE_LEDGER_URL";
