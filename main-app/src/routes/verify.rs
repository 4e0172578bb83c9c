//! `POST /api/v1/codes/verify`: `{"code": "..."}` → `{"valid": true}` once, for a recorded
//! unexpired code; `{"valid": false}` (200) for unknown, used or expired codes; 400 for a
//! malformed body or code.

use super::{AppState, RETRY_AFTER_SECONDS};
use crate::code::Code;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use shared_auth::json_error;

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

/// Verifies and consumes a code.
#[tracing::instrument(name = "verify_code", skip_all)]
pub async fn verify(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let request: VerifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The body must be JSON: {\"code\": \"AAA-N-BBB\"}.",
            );
        }
    };
    let code = match Code::parse(request.code.trim()) {
        Ok(code) => code,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, "invalid_code", why),
    };
    match state.ledger.consume(code.as_str()).await {
        Ok(valid) => HttpResponse::Ok().json(Verdict { valid }),
        Err(e) => {
            tracing::warn!(error = %e, "verify failed");
            let mut response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                "Codes cannot be checked right now; try again shortly.",
            );
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(RETRY_AFTER_SECONDS),
            );
            response
        }
    }
}
