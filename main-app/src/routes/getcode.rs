//! `GET /api/v1/getcode`: a number from the third-party API, a code around it reserved in the
//! ledger (no live code is ever equal to another), a durable `code-issued` message, and only then
//! the answer.

use super::AppState;
use crate::queue::QueueError;
use crate::third_party::UpstreamError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use codes::Code;
use codes::CodeEnvelope;
use codes::ledger::{LedgerError, Recorded};
use serde::{Deserialize, Serialize};
use service_kit::ErrorBody;
use service_kit::service::response_builder;
use service_kit::telemetry::traceparent;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssuedCode {
    /// `AAA-N-BBB`.
    pub code: String,
    /// When it was issued (RFC 3339, UTC).
    pub timestamp: String,
}

/// How many codes are drawn for one request before giving up: a live record holding a drawn
/// code is one chance in billions, four in a row means the source is broken.
const DRAWS: usize = 4;

/// Where the letters of a code come from: [`Code::generate`] (a CSPRNG) unless a test says
/// otherwise.
#[derive(Clone)]
pub struct CodeSource(Arc<dyn Fn(u32) -> Code + Send + Sync>);

impl CodeSource {
    /// A source drawing each code with `draw` from the third-party number.
    pub fn new(draw: impl Fn(u32) -> Code + Send + Sync + 'static) -> Self {
        Self(Arc::new(draw))
    }

    fn draw(&self, number: u32) -> Code {
        (self.0)(number)
    }
}

impl Default for CodeSource {
    fn default() -> Self {
        Self::new(Code::generate)
    }
}

/// Why no code was issued; the status mapping lives here and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum GetCodeError {
    /// The third-party call or the key failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The message could not be queued.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// The code could not be reserved in the ledger.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// Every code drawn was held by a live record.
    #[error("{DRAWS} codes drawn, each held by a live record")]
    NoFreeCode,
    /// The request's budget ran out before the number came back (Key Vault, identity or the
    /// third-party API hung).
    #[error("no number within the request budget")]
    Deadline,
}

impl ResponseError for GetCodeError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Upstream(UpstreamError::Auth | UpstreamError::Failed(_)) => {
                StatusCode::BAD_GATEWAY
            }
            Self::Upstream(UpstreamError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(UpstreamError::Secret(_))
            | Self::Queue(_)
            | Self::Ledger(_)
            | Self::NoFreeCode
            | Self::Deadline => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, message) = match self {
            Self::Upstream(UpstreamError::Auth) => (
                "upstream_auth_failed",
                "The number service refused this app's credentials.",
            ),
            Self::Upstream(UpstreamError::Failed(_)) => {
                ("upstream_error", "The number service failed.")
            }
            Self::Upstream(UpstreamError::Timeout) => (
                "upstream_timeout",
                "The number service did not answer in time.",
            ),
            Self::Upstream(UpstreamError::Secret(_)) => (
                "secret_unavailable",
                "The service cannot reach its key store right now; try again shortly.",
            ),
            Self::Queue(_) => (
                "queue_unavailable",
                "The code could not be recorded; try again shortly.",
            ),
            Self::Ledger(_) | Self::NoFreeCode => (
                "ledger_unavailable",
                "The code could not be reserved; try again shortly.",
            ),
            Self::Deadline => (
                "deadline_exceeded",
                "The service could not answer in time; try again shortly.",
            ),
        };
        tracing::warn!(error = %self, status = self.status_code().as_u16(), "getcode failed");
        response_builder(self.status_code()).json(ErrorBody::new(code, message))
    }
}

/// Issues a code, within the request budget whatever hangs.
#[tracing::instrument(name = "issue_code", skip_all)]
pub async fn get_code(state: web::Data<AppState>) -> Result<HttpResponse, GetCodeError> {
    let envelope = issue(&state).await?;
    tracing::info!(message_id = %envelope.id, "code issued");
    Ok(HttpResponse::Ok().json(IssuedCode {
        timestamp: envelope.issued_at.format(&Rfc3339).unwrap_or_default(),
        code: envelope.code.to_string(),
    }))
}

/// What getcode does before it answers: a number, a code reserved in the ledger around it, its
/// `code-issued` message sent; all within the request budget.
pub async fn issue(state: &AppState) -> Result<CodeEnvelope, GetCodeError> {
    let deadline = tokio::time::Instant::now() + state.request_timeout;
    let _turn = tokio::time::timeout_at(deadline, state.turns.acquire())
        .await
        .map_err(|_| GetCodeError::Deadline)?
        .map_err(|_| GetCodeError::Deadline)?;
    let number = tokio::time::timeout_at(deadline, state.third_party.random_number())
        .await
        .map_err(|_| GetCodeError::Deadline)??;
    let mut envelope = CodeEnvelope::issued(
        state.codes.draw(number),
        OffsetDateTime::now_utc(),
        state.code_ttl,
        traceparent(&tracing::Span::current()),
    );
    let budget = deadline.saturating_duration_since(tokio::time::Instant::now());
    tokio::time::timeout_at(deadline, reserve(state, &mut envelope, number))
        .await
        .map_err(|_| {
            state.reservations.timed_out(budget);
            GetCodeError::Deadline
        })??;
    state.queue.send(&envelope, deadline).await?;
    Ok(envelope)
}

/// Records `envelope`'s code in the ledger, drawing another code while a live record holds it.
async fn reserve(
    state: &AppState,
    envelope: &mut CodeEnvelope,
    number: u32,
) -> Result<(), GetCodeError> {
    let id = envelope.id.to_string();
    for draw in 1..=DRAWS {
        if draw > 1 {
            envelope.code = state.codes.draw(number);
        }
        let recorded = state
            .reservations
            .reserve(&envelope.code, envelope.issued_at, envelope.expires_at, &id)
            .await?;
        if recorded != Recorded::HeldByAnother {
            return Ok(());
        }
        tracing::info!(
            draw,
            "the code drawn is held by a live record: drawing another"
        );
    }
    Err(GetCodeError::NoFreeCode)
}
