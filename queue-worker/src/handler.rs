//! What a message means: `code-issued` records the code in the ledger and schedules its expiry
//! (a `code-expire` message hidden until then); `code-expire` removes the record, or reschedules
//! itself when the expiry lies beyond what one delayed message can cover. Both are idempotent.

use azure_storage_queue::QueueClient;
use azure_storage_queue::models::{QueueClientSendMessageOptions, QueueMessage};
use codes::envelope::{CodeEnvelope, MessageEncoding, MessageType};
use codes::ledger::{CodeLedger, LedgerError, Recorded, Removal};
use shared_auth::azure_error::AzureError;
use std::sync::Arc;
use time::OffsetDateTime;

/// The longest a message can stay hidden in Queue Storage (7 days), less a safety margin.
pub const MAX_DELAY_SECONDS: i64 = 7 * 24 * 3600 - 60;

/// What handling a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The code was recorded and its expiry scheduled.
    Recorded,
    /// The code was already recorded (duplicate delivery); expiry scheduled again (harmless).
    Duplicate,
    /// The code had already expired when its message arrived: nothing to record.
    AlreadyExpired,
    /// The record was removed (or was already gone).
    Expired,
    /// The ledger says the code is still valid: the record was kept (an early or forged
    /// `code-expire`); its own expiry message removes it later.
    KeptUnexpired,
    /// The expiry is further than one delayed message: scheduled again.
    Rescheduled,
}

/// Why a message could not be handled now; every variant is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The ledger failed or refused.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The `code-expire` message could not be sent.
    #[error(transparent)]
    Schedule(AzureError),
}

/// Handles envelopes against the ledger and the queue.
#[derive(Clone)]
pub struct CodeHandler {
    ledger: CodeLedger,
    queue: Arc<QueueClient>,
    encoding: MessageEncoding,
}

impl CodeHandler {
    /// A handler writing to `ledger` and scheduling on `queue`.
    pub fn new(ledger: CodeLedger, queue: Arc<QueueClient>, encoding: MessageEncoding) -> Self {
        Self {
            ledger,
            queue,
            encoding,
        }
    }

    /// Handles one envelope; an error is worth retrying (the ledger or queue failed).
    pub async fn handle(&self, envelope: &CodeEnvelope) -> Result<Outcome, HandlerError> {
        let now = OffsetDateTime::now_utc();
        match envelope.kind {
            MessageType::CodeIssued if now >= envelope.expires_at => Ok(Outcome::AlreadyExpired),
            MessageType::CodeIssued => {
                let recorded = self
                    .ledger
                    .record(
                        &envelope.code,
                        envelope.issued_at,
                        envelope.expires_at,
                        &envelope.id.to_string(),
                    )
                    .await?;
                // Scheduled on every delivery: a crash between record and schedule must not
                // leave a record without its expiry; a duplicate expiry is harmless.
                self.schedule_expiry(envelope).await?;
                Ok(match recorded {
                    Recorded::Created => Outcome::Recorded,
                    Recorded::AlreadyRecorded => Outcome::Duplicate,
                })
            }
            MessageType::CodeExpire if now < envelope.expires_at => {
                self.schedule_expiry(envelope).await?;
                Ok(Outcome::Rescheduled)
            }
            MessageType::CodeExpire => {
                let removal = self.ledger.remove_expired(&envelope.code).await?;
                Ok(match removal {
                    Removal::Removed | Removal::Absent => Outcome::Expired,
                    Removal::NotYetExpired(_) => Outcome::KeptUnexpired,
                })
            }
        }
    }

    /// Sends a `code-expire` for `envelope`'s code, hidden until its expiry (capped at 7 days).
    async fn schedule_expiry(&self, envelope: &CodeEnvelope) -> Result<(), HandlerError> {
        let failed = |e: azure_core::Error| {
            let call = crate::queue_call(
                &self.queue,
                "schedule a code's expiry on",
                crate::SENDER_ROLE,
            );
            HandlerError::Schedule(call.failed(&e))
        };
        let remaining = (envelope.expires_at - OffsetDateTime::now_utc()).whole_seconds();
        let delay = remaining.clamp(0, MAX_DELAY_SECONDS);
        let expire = envelope.expiry();
        let content = QueueMessage {
            message_text: Some(expire.encode(self.encoding)),
        }
        .try_into()
        .map_err(failed)?;
        self.queue
            .send_message(
                content,
                Some(QueueClientSendMessageOptions {
                    visibility_timeout: Some(delay as i32),
                    // Never expire: the message must outlive its own delay.
                    message_time_to_live: Some(-1),
                    ..Default::default()
                }),
            )
            .await
            .map_err(failed)?;
        Ok(())
    }
}
