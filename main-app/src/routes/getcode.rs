//! `GET /api/v1/getcode`: a number from the third-party API, a code around it, a durable
//! `code-issued` message, and only then the answer.

use super::AppState;
use crate::queue::QueueError;
use crate::third_party::UpstreamError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use codes::Code;
use codes::CodeEnvelope;
use serde::{Deserialize, Serialize};
use shared_auth::ErrorBody;
use shared_auth::service::response_builder;
use shared_auth::telemetry::traceparent;
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

/// Why no code was issued; the status mapping lives here and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum GetCodeError {
    /// The third-party call or the key failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The message could not be queued.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
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
            Self::Upstream(UpstreamError::Secret(_)) | Self::Queue(_) | Self::Deadline => {
                StatusCode::SERVICE_UNAVAILABLE
            }
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
    let deadline = tokio::time::Instant::now() + state.request_timeout;
    let number = tokio::time::timeout_at(deadline, state.third_party.random_number())
        .await
        .map_err(|_| GetCodeError::Deadline)??;
    let envelope = CodeEnvelope::issued(
        Code::generate(number),
        OffsetDateTime::now_utc(),
        state.code_ttl,
        traceparent(&tracing::Span::current()),
    );
    state.queue.send(&envelope, deadline).await?;
    tracing::info!(message_id = %envelope.id, "code issued");
    Ok(HttpResponse::Ok().json(IssuedCode {
        timestamp: envelope.issued_at.format(&Rfc3339).unwrap_or_default(),
        code: envelope.code.to_string(),
    }))
}
