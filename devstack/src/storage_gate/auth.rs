//! Who may pass the gate. Key-based authorization is refused as by an account with
//! `allowSharedKeyAccess: false`; a bearer token is checked with the vault's own caller check
//! against what the request needs at its scope; refusals are worded as Azure Storage words them.

use super::StorageGate;
use super::classify::{classify, operation};
use super::errors::storage_error;
use crate::caller::{Caller, Refusal};
use crate::storage_path::CheckedPath;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse};

/// What an `Authorization` header or the query asks for, before any token is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyBased {
    /// `SharedKey` or `SharedKeyLite` (Azurite takes any value starting with `SharedKey`).
    SharedKey,
    /// An account or service SAS: signed with an account key.
    KeySas,
    /// A user-delegation SAS (`skoid`/`sktid`): signed with a key obtained with a token.
    UserDelegationSas,
}

/// Whether the request uses key-based authorization, as Azurite would read it: any
/// `Authorization` value starting with `SharedKey`, any query key starting with `sig` (so
/// `SIG`, `%73ig` and `sig[]` too).
fn key_based(authorization: &[&HeaderValue], query: &[(String, String)]) -> Option<KeyBased> {
    let shared_key = authorization.iter().any(|value| {
        let value = String::from_utf8_lossy(value.as_bytes());
        value
            .trim_start()
            .get(..9)
            .is_some_and(|s| s.eq_ignore_ascii_case("sharedkey"))
    });
    if shared_key {
        return Some(KeyBased::SharedKey);
    }
    let has = |prefix: &str| {
        query.iter().any(|(k, _)| {
            k.trim_start()
                .get(..prefix.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
        })
    };
    if !has("sig") {
        return None;
    }
    if has("skoid") || has("sktid") {
        Some(KeyBased::UserDelegationSas)
    } else {
        Some(KeyBased::KeySas)
    }
}

/// Why the gate refuses a request before it reaches Azurite.
#[derive(Debug)]
pub(super) enum GateRefusal {
    /// Key-based authorization of any kind.
    KeyBased(KeyBased),
    /// More than one `Authorization` header.
    SeveralAuthorizations,
    /// The caller check's refusal.
    Caller(Refusal),
}

impl StorageGate {
    /// The caller of `req` on `path`, or why it is refused.
    pub(super) fn authorize(
        &self,
        req: &HttpRequest,
        path: &CheckedPath,
        query: &[(String, String)],
    ) -> Result<Caller, GateRefusal> {
        let authorization: Vec<_> = req.headers().get_all("authorization").collect();
        if let Some(key_based) = key_based(&authorization, query) {
            return Err(GateRefusal::KeyBased(key_based));
        }
        if authorization.len() > 1 {
            return Err(GateRefusal::SeveralAuthorizations);
        }
        let (scope, need) = classify(self.service, req.method().as_str(), path, query);
        let audiences = self.audiences();
        let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
        let operation = operation(self.service, req.method().as_str(), path, query);
        self.access
            .check(
                authorization.first().copied(),
                &audiences,
                &need,
                &scope,
                operation,
            )
            .map_err(GateRefusal::Caller)
    }
}

impl GateRefusal {
    /// The refusal as Azure Storage words it.
    pub(super) fn into_response(self) -> HttpResponse {
        match self {
            GateRefusal::KeyBased(KeyBased::SharedKey | KeyBased::KeySas) => storage_error(
                StatusCode::FORBIDDEN,
                "KeyBasedAuthenticationNotPermitted",
                "Key based authentication is not permitted on this storage account.",
            ),
            GateRefusal::KeyBased(KeyBased::UserDelegationSas) => storage_error(
                StatusCode::FORBIDDEN,
                "AuthorizationFailure",
                "This request is not authorized to perform this operation. (devstack: user \
                 delegation SAS is not supported locally; use a token)",
            ),
            GateRefusal::SeveralAuthorizations => storage_error(
                StatusCode::BAD_REQUEST,
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format.",
            ),
            GateRefusal::Caller(refusal) => caller_refused(refusal),
        }
    }
}

/// A refusal of the caller check as Azure Storage words it.
fn caller_refused(refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::MissingToken => storage_error(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in \
             the www-authenticate header.",
        ),
        Refusal::InvalidToken(e) => storage_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationInfo",
            &format!("Server failed to authenticate the request: {e}."),
        ),
        Refusal::Forbidden {
            caller,
            action,
            scope,
        } => {
            tracing::info!(
                caller = %caller.name_or_oid(),
                action = action.azure_name(),
                scope = ?scope,
                "storage gate: permission mismatch"
            );
            storage_error(
                StatusCode::FORBIDDEN,
                "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this permission.",
            )
        }
    }
}
