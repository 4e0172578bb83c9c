//! What a message means: `code-issued` confirms the code's record in the ledger (main-app
//! reserved it before answering; one read finds it) and records it when it is missing (a message
//! sent by hand or by an earlier version); the record carries its own expiry, which verify
//! checks and the ledger sweep acts on, so nothing is scheduled per code. Idempotent.

use codes::envelope::{CodeEnvelope, MessageType};
use codes::ledger::{CodeLedger, LedgerError, Recorded};
use time::OffsetDateTime;

/// What handling a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The code was recorded (over a used or expired record of an equal code, if there was one).
    Recorded,
    /// A live record of another message holds the same code: nothing changed (logged).
    HeldByAnother,
    /// The record was there already (reserved by main-app, or a duplicate delivery): nothing
    /// changed.
    Confirmed,
    /// The code had already expired when its message arrived: nothing to record.
    AlreadyExpired,
}

/// Handles envelopes against the ledger.
#[derive(Clone)]
pub struct CodeHandler {
    ledger: CodeLedger,
}

impl CodeHandler {
    /// A handler writing to `ledger`.
    pub fn new(ledger: CodeLedger) -> Self {
        Self { ledger }
    }

    /// Handles one envelope; an error is worth retrying (the ledger failed).
    pub async fn handle(&self, envelope: &CodeEnvelope) -> Result<Outcome, LedgerError> {
        let now = OffsetDateTime::now_utc();
        match envelope.kind {
            MessageType::CodeIssued if now >= envelope.expires_at => Ok(Outcome::AlreadyExpired),
            MessageType::CodeIssued => {
                let recorded = self.ledger.confirm(envelope).await?;
                Ok(match recorded {
                    Recorded::Created | Recorded::ReplacedDead => Outcome::Recorded,
                    Recorded::AlreadyRecorded => Outcome::Confirmed,
                    Recorded::HeldByAnother => {
                        tracing::error!(envelope.id = %envelope.id, "a live record of another message holds this code: it is not recorded again");
                        Outcome::HeldByAnother
                    }
                })
            }
        }
    }
}
