//! The JSON error body every service answers with: `{"error": "<code>", "message": "..."}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A machine-readable code and a human-readable message; never an internal detail or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable error code (`unauthorized`, `bad_request`, ...).
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl ErrorBody {
    /// Builds a body.
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            message: message.into(),
        }
    }

    /// The body as a response with `status`.
    pub fn respond(&self, status: StatusCode) -> HttpResponse {
        HttpResponse::build(status).json(self)
    }
}

/// A JSON error response in one call.
pub fn json_error(status: StatusCode, error: &str, message: impl Into<String>) -> HttpResponse {
    ErrorBody::new(error, message).respond(status)
}
