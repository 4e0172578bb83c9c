//! queue-worker: consumes `code-requests`. It records each issued code in the ledger and
//! schedules its expiry, removes expired records, and moves what it cannot handle to
//! `code-requests-poison` with the reason.
//!
//! Layout: [`worker::Worker`] is the consumer loop (batches, back-off, visibility renewal,
//! retries, poison, drain on shutdown); [`handler::CodeHandler`] is what a message means;
//! [`health`] is the small HTTP port; [`startup::Application`] wires them with the identity.

pub mod config;
pub mod handler;
pub mod health;
pub mod startup;
pub mod worker;

/// A Queue Storage error in words an operator can act on (never a secret).
pub fn describe_queue_error(error: &azure_core::Error) -> String {
    use azure_core::http::StatusCode;
    match error.http_status() {
        Some(StatusCode::Forbidden) => "the queue refused the request (AuthorizationPermissionMismatch): check the identity's queue roles (Message Processor to receive and delete, Message Sender to send)".into(),
        Some(StatusCode::Unauthorized) => "the queue did not accept the token".into(),
        Some(StatusCode::NotFound) => "the queue or message does not exist".into(),
        Some(status) => format!("the queue answered {}", u16::from(status)),
        None => format!(
            "the queue could not be reached: {}",
            shared_auth::credential::error_chain(error)
        ),
    }
}
