//! queue-worker: consumes `code-requests`. It records each issued code in the ledger, sweeps
//! expired records away, and moves what it cannot handle to `code-requests-poison` unchanged (the
//! reason goes to its log). The message flow: `docs/ARCHITECTURE.md` at the repository's root.
//!
//! Layout: [`worker::Worker`] is the consumer loop (batches, back-off, visibility renewal,
//! retries, poison, drain on shutdown); [`handler::CodeHandler`] is what a message means;
//! [`hold`] keeps messages through a ledger outage without spending their deliveries;
//! [`polling`] is the idle back-off;
//! [`sweep`] removes expired records; [`health`] is the small HTTP port; [`startup::Application`] wires them with the identity.

use azure_storage_queue::QueueClient;
use shared_auth::azure_error::{AzureCall, resource_name};
use shared_auth::role_names;

pub mod config;
pub mod handler;
pub mod health;
pub mod hold;
pub mod polling;
pub mod startup;
pub mod sweep;
pub mod worker;

/// The role receiving and deleting messages needs on the queue.
pub const PROCESSOR_ROLE: &str = role_names::QUEUE_MESSAGE_PROCESSOR;
/// The role moving a message to the poison queue needs on it.
pub const SENDER_ROLE: &str = role_names::QUEUE_MESSAGE_SENDER;
/// The custom role Update Message (visibility renewal, early retry) needs on the queue.
pub const UPDATER_ROLE: &str = role_names::QUEUE_MESSAGE_UPDATER;

/// Doing `action` to the queue `client` reaches, for errors: a 403 names `role` on that queue.
pub fn queue_call(client: &QueueClient, action: &str, role: &str) -> AzureCall {
    let queue = format!("queue {}", resource_name(client.url()));
    AzureCall::new(action, queue.clone()).needs_role(role, queue)
}
