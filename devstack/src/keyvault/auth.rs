//! Who may call the vault, checked before any route acts: the vault is available, the
//! `api-version` is one Key Vault accepts, and the caller (the check the storage gate shares)
//! holds a role granting the action on the secret or the vault. Refusals are worded as Key Vault
//! words them (`AKV100xx`, `ForbiddenByRbac`).

use super::error::VaultError;
use super::model::query;
use super::{API_VERSIONS, KeyVault, VAULT_RESOURCE};
use crate::caller::{Need, Refusal};
use crate::jwt::TokenError;
use crate::rbac::{DataAction, Scope};
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use std::sync::atomic::Ordering;

impl KeyVault {
    /// [`KeyVault::authorize`] on the secret `name`.
    pub(super) fn authorize_secret(
        &self,
        req: &HttpRequest,
        action: DataAction,
        name: &str,
    ) -> Result<(), VaultError> {
        self.authorize(req, action, &Scope::Secret(name.to_owned()))
    }

    /// Checks availability, api-version, token and role.
    pub(super) fn authorize(
        &self,
        req: &HttpRequest,
        action: DataAction,
        resource: &Scope,
    ) -> Result<(), VaultError> {
        if !self.available.load(Ordering::SeqCst) {
            return Err(VaultError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            ));
        }
        let version = query(req)
            .remove("api-version")
            .ok_or_else(|| VaultError::bad("The 'api-version' query parameter is missing."))?;
        if !API_VERSIONS.contains(&version.as_str()) {
            return Err(VaultError::bad(format!(
                "The specified version ({version}) is not recognized. Consider using the latest \
                 supported version (2026-04-01)."
            )));
        }
        self.access
            .check(
                req.headers().get("authorization"),
                &[VAULT_RESOURCE],
                &Need::One(action),
                resource,
                operation_of(action),
            )
            .map(drop)
            .map_err(refused)
    }
}

/// The Key Vault operation a request for `action` is, in the REST API's words.
fn operation_of(action: DataAction) -> &'static str {
    match action {
        DataAction::SecretGet => "Get Secret",
        DataAction::SecretReadMetadata => "Get Secret Properties",
        DataAction::SecretSet => "Set Secret",
        DataAction::SecretUpdate => "Update Secret",
        DataAction::SecretDelete => "Delete Secret",
        DataAction::SecretPurge => "Purge Deleted Secret",
        DataAction::SecretRecover => "Recover Deleted Secret",
        _ => "Key Vault request",
    }
}

/// A refusal as Key Vault words it.
fn refused(refusal: Refusal) -> VaultError {
    let unauthorized = |message| VaultError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message);
    match refusal {
        Refusal::MissingToken => {
            unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        }
        Refusal::InvalidToken(e) => unauthorized(match e {
            TokenError::WrongAudience => "AKV10022: Invalid audience.",
            TokenError::WrongIssuer => "AKV10032: Invalid issuer.",
            TokenError::Expired => "AKV10023: Token expired.",
            TokenError::NotYetValid => "AKV10024: Token not yet valid.",
            TokenError::BadSignature => "AKV10031: Invalid token signature.",
            TokenError::Malformed => "AKV10001: Unable to parse the token.",
        }),
        Refusal::Forbidden {
            caller,
            action,
            scope,
        } => {
            let who = caller.name.as_deref().unwrap_or("unknown");
            let target = match scope {
                Scope::Secret(name) => format!("secrets/{name}"),
                _ => "vault".into(),
            };
            let claims = &caller.claims;
            VaultError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "Caller is not authorized to perform action on resource.\r\nIf role \
                     assignments, deny assignments or role definitions were changed recently, \
                     please observe propagation time.\r\nCaller: appid={};oid={};iss={} ({who})\r\n\
                     Action: '{}'\r\nResource: '{target}'\r\nAssignment: (not found)\r\n\
                     DenyAssignmentId: null\r\nDecisionReason: null\r\nVault: devstack;location=local\r\n",
                    claims.appid,
                    claims.oid,
                    claims.iss,
                    action.azure_name()
                ),
            )
            .inner("ForbiddenByRbac")
        }
    }
}
