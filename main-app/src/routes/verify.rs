//! `POST /api/v1/codes/verify`: `{"code": "..."}` → `{"valid": true}` once, for a recorded
//! unexpired code; `{"valid": false}` (200) for unknown, used or expired codes; 400 for a
//! malformed body or code; 415 unless the body is declared `application/json` (so a cross-site
//! form post cannot spend codes); 503 with `Retry-After` when the ledger cannot answer in time.

use super::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use codes::{Code, CodeError, LedgerError};
use serde::{Deserialize, Serialize};
use service_kit::ErrorBody;
use service_kit::request_body::{BodyError, BodyLimits, read_body};
use service_kit::service::response_builder;
use std::time::Duration;

/// A verify body: at most 4 KiB (`{"code": "AAA-999-BBB"}` is 24 bytes), within 10 s.
pub const BODY_LIMITS: BodyLimits = BodyLimits {
    max_bytes: 4 * 1024,
    timeout: Duration::from_secs(10),
};

/// The request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The code to check.
    pub code: String,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Verdict {
    /// True the first time a valid code is presented.
    pub valid: bool,
}

/// Why a code could not be checked; the status mapping lives here and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The body is not declared as JSON.
    #[error("the body is not declared application/json")]
    UnsupportedMediaType,
    /// The body is not `{"code": "..."}`.
    #[error("the body is not {{\"code\": ...}}")]
    BadBody,
    /// The body is too large, or did not arrive in time.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The code is not `AAA-N-BBB`.
    #[error(transparent)]
    InvalidCode(#[from] CodeError),
    /// The ledger failed or did not answer within the request budget.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// No turn to reach the ledger came within the request budget.
    #[error("no turn to reach the ledger within the request budget")]
    Busy,
}

impl ResponseError for VerifyError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadBody | Self::InvalidCode(_) | Self::Body(BodyError::Unreadable) => {
                StatusCode::BAD_REQUEST
            }
            Self::Body(BodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(BodyError::Timeout(_)) => StatusCode::REQUEST_TIMEOUT,
            Self::Ledger(_) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, message) = match self {
            Self::UnsupportedMediaType => (
                "unsupported_media_type",
                "The body must be sent as Content-Type: application/json.".to_owned(),
            ),
            Self::BadBody => (
                "bad_request",
                "The body must be JSON: {\"code\": \"AAA-N-BBB\"}.".to_owned(),
            ),
            Self::InvalidCode(e) => ("invalid_code", e.to_string()),
            Self::Body(BodyError::TooLarge(_)) => ("payload_too_large", self.to_string()),
            Self::Body(BodyError::Timeout(_)) => ("request_timeout", self.to_string()),
            Self::Body(BodyError::Unreadable) => ("bad_request", self.to_string()),
            Self::Ledger(_) | Self::Busy => (
                "ledger_unavailable",
                "Codes cannot be checked right now; try again shortly.".to_owned(),
            ),
        };
        if matches!(self, Self::Ledger(_) | Self::Busy) {
            tracing::warn!(reason = %self, "verify failed");
        }
        let mut response = response_builder(self.status_code());
        if let Self::Body(BodyError::Timeout(_)) = self {
            response.force_close();
        }
        response.json(ErrorBody::new(code, message))
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Verifies and consumes a code, within the request budget.
#[tracing::instrument(name = "verify_code", skip_all)]
pub async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, VerifyError> {
    if !is_json(&req) {
        return Err(VerifyError::UnsupportedMediaType);
    }
    let body = read_body(&req, payload, BODY_LIMITS).await?;
    let request: VerifyRequest = serde_json::from_slice(&body).map_err(|_| VerifyError::BadBody)?;
    let code = Code::parse(request.code.trim())?;
    let started = tokio::time::Instant::now();
    let _turn = tokio::time::timeout(state.request_timeout, state.turns.acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(VerifyError::Busy)?;
    let left = state.request_timeout.saturating_sub(started.elapsed());
    let consumed = state.ledger.consume_within(&code, left).await?;
    Ok(HttpResponse::Ok().json(Verdict { valid: consumed }))
}
