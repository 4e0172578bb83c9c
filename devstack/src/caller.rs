//! Who is calling and whether they may: the one check the Key Vault emulator and the storage gate
//! share. A bearer token is verified (signature, issuer, audience, lifetime), its object id looked
//! up in the role table for what the request needs at its scope, and the outcome is typed: the
//! caller, or why not. Each emulator words the refusal as its Azure service does.

use crate::access_log::{AccessLog, Outcome};
use crate::identity::IdentityProvider;
use crate::jwt::{Claims, TokenError, TokenVerifier, bearer};
use crate::rbac::{DataAction, RoleAssignments, Scope};
use actix_web::http::header::HeaderValue;
use std::sync::Arc;

/// What a request needs: one action, any of several, or all of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// This action.
    One(DataAction),
    /// At least one of these.
    Any(Vec<Need>),
    /// Every one of these.
    All(Vec<Need>),
}

impl Need {
    fn satisfied(&self, roles: &RoleAssignments, principal: &str, scope: &Scope) -> bool {
        match self {
            Need::One(action) => roles.allows(principal, *action, scope),
            Need::Any(needs) => needs.iter().any(|n| n.satisfied(roles, principal, scope)),
            Need::All(needs) => needs.iter().all(|n| n.satisfied(roles, principal, scope)),
        }
    }

    /// The action a refusal names: the first one listed.
    fn first_action(&self) -> DataAction {
        match self {
            Need::One(action) => *action,
            Need::Any(needs) | Need::All(needs) => needs[0].first_action(),
        }
    }
}

/// A caller whose token verified.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's claims.
    pub claims: Claims,
    /// The identity's name in the stack, when the object id is one of its identities.
    pub name: Option<String>,
}

impl Caller {
    /// The identity's name, or the token's object id for a principal the stack does not know.
    pub fn name_or_oid(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.claims.oid)
    }
}

/// Why a request is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Unauthenticated: no bearer token in the `Authorization` header.
    #[error("no bearer token")]
    MissingToken,
    /// Unauthenticated: a token that does not verify.
    #[error(transparent)]
    InvalidToken(#[from] TokenError),
    /// Forbidden: a verified caller holds no role granting `action` at `scope`.
    #[error("{} holds no role granting {} at {scope:?}", caller.name_or_oid(), action.azure_name())]
    Forbidden {
        /// Who called.
        caller: Box<Caller>,
        /// The action a role would have to grant (the first the request needs).
        action: DataAction,
        /// Where.
        scope: Scope,
    },
}

/// The check itself: tokens from one identity provider, roles from one table, every decision
/// written to one access log.
pub struct AccessCheck {
    verifier: TokenVerifier,
    identities: Arc<IdentityProvider>,
    roles: Arc<RoleAssignments>,
    log: Arc<AccessLog>,
    service: &'static str,
}

impl AccessCheck {
    /// Checks tokens signed by `identities` against `roles` for `service` (`Key Vault`, ...),
    /// writing each decision to `log`.
    pub fn new(
        identities: Arc<IdentityProvider>,
        roles: Arc<RoleAssignments>,
        log: Arc<AccessLog>,
        service: &'static str,
    ) -> Self {
        Self {
            verifier: identities.verifier(),
            identities,
            roles,
            log,
            service,
        }
    }

    /// The caller of a request for `operation` whose `Authorization` header is
    /// `authorization`, when it holds a token for one of `audiences` and the role table grants
    /// `need` at `scope`. The decision goes to the access log either way.
    pub fn check(
        &self,
        authorization: Option<&HeaderValue>,
        audiences: &[&str],
        need: &Need,
        scope: &Scope,
        operation: &str,
    ) -> Result<Caller, Refusal> {
        let decided = self.decide(authorization, audiences, need, scope);
        let (identity, outcome) = match &decided {
            Ok(caller) => (caller.name_or_oid(), Outcome::Allowed),
            Err(Refusal::Forbidden { caller, action, .. }) => {
                (caller.name_or_oid(), Outcome::Forbidden(*action))
            }
            Err(refusal) => ("anonymous", Outcome::Unauthenticated(refusal.to_string())),
        };
        self.log
            .record(self.service, identity, operation, scope, outcome);
        decided
    }

    fn decide(
        &self,
        authorization: Option<&HeaderValue>,
        audiences: &[&str],
        need: &Need,
        scope: &Scope,
    ) -> Result<Caller, Refusal> {
        let token = bearer(authorization).ok_or(Refusal::MissingToken)?;
        let claims = self.verifier.verify(token, audiences)?;
        let caller = Caller {
            name: self
                .identities
                .by_object_id(&claims.oid)
                .map(|i| i.name.clone()),
            claims,
        };
        if need.satisfied(&self.roles, &caller.claims.oid, scope) {
            Ok(caller)
        } else {
            Err(Refusal::Forbidden {
                caller: Box::new(caller),
                action: need.first_action(),
                scope: scope.clone(),
            })
        }
    }
}
