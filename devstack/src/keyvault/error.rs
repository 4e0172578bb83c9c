//! Errors as Key Vault answers them: status, `error.code`, `error.message`, an `innererror`
//! code, and the authentication challenge on 401.

use super::VAULT_RESOURCE;
use crate::jwt::TENANT_ID;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

/// An error as Key Vault answers it.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub(super) struct VaultError {
    status: StatusCode,
    code: &'static str,
    message: String,
    inner: Option<&'static str>,
}

impl VaultError {
    /// An error with `status`, Azure's `code` and `message`.
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            inner: None,
        }
    }

    /// With Azure's `innererror` code.
    pub(super) fn inner(mut self, code: &'static str) -> Self {
        self.inner = Some(code);
        self
    }

    /// 400 `BadParameter`.
    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }

    /// 404 `SecretNotFound` for `name`.
    pub(super) fn not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            format!(
                "A secret with (name/id) {name} was not found in this key vault. If you recently \
                 deleted this secret you may be able to recover it using the correct recovery \
                 command. For help resolving this issue, please see \
                 https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
        )
    }

    /// The response Key Vault sends.
    pub(super) fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

impl actix_web::ResponseError for VaultError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(inner) = self.inner {
            error["innererror"] = json!({ "code": inner });
        }
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", challenge()));
        }
        response.json(json!({ "error": error }))
    }
}

/// The challenge Key Vault sends to a request without a valid token.
fn challenge() -> String {
    format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{TENANT_ID}\", \
         resource=\"{VAULT_RESOURCE}\""
    )
}

/// What a route returns.
pub(super) type VaultResult = Result<HttpResponse, VaultError>;
