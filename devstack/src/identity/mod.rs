//! The identity emulator: the App Service / Container Apps managed-identity endpoint
//! (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`), an Entra token endpoint for the client-secret and
//! workload-identity (federated token) flows (`AZURE_AUTHORITY_HOST`), and the signing keys. Each
//! named identity has its own endpoint header, client secret and federated subject, so the other
//! emulators can tell callers apart by the token's `oid`. Ids are derived from the name, so a
//! compose file can name a client id without a secret.

//!
//! By concern: this module holds the identities and issues their tokens; `routes` serves the
//! token endpoints.

mod routes;

use crate::jwt::{Claims, TENANT_ID, TokenSigner, TokenVerifier, issuer};
use crate::stall::Stall;
use base64::Engine;
use rand::RngCore;
use shared_auth::{ApiKeyRing, Secret};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use time::OffsetDateTime;

/// The managed-identity protocol version Container Apps and App Service speak.
pub const MSI_API_VERSION: &str = "2019-08-01";
/// Path of the managed-identity endpoint.
pub const MSI_PATH: &str = "/msi/token";
/// Lifetime of issued tokens, as Entra's default for app tokens.
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// Issuer of federated (workload identity) tokens: the stand-in for a cluster's OIDC issuer.
pub const FEDERATION_ISSUER: &str = "https://devstack.local/workload-identity";
/// The audience Entra requires of a federated token.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// `client_assertion_type` of the federated-token grant.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The federated subject trusted for identity `name`, as a Kubernetes service account.
pub fn federated_subject(name: &str) -> String {
    format!("system:serviceaccount:devstack:{name}")
}

/// A stable UUID for `purpose` and `name`: the same on every run and in every container.
fn stable_id(purpose: &str, name: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("devstack {purpose} {name}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The client id of identity `name` (what `AZURE_CLIENT_ID` names).
pub fn client_id_of(name: &str) -> String {
    stable_id("client", name)
}

/// One identity: a managed identity of a service, or a developer's service principal.
pub struct ServicePrincipal {
    /// Name used in the role table (`main-app`, `queue-worker`, ...).
    pub name: String,
    /// Object id: what role assignments and tokens name.
    pub object_id: String,
    /// Client (application) id.
    pub client_id: String,
    identity_header: Secret,
    client_secret: Secret,
}

impl std::fmt::Debug for ServicePrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServicePrincipal")
            .field("name", &self.name)
            .field("object_id", &self.object_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ServicePrincipal {
    /// The `IDENTITY_HEADER` value that makes the endpoint answer as this identity.
    pub fn identity_header(&self) -> &Secret {
        &self.identity_header
    }

    /// The client secret of this identity's service principal.
    pub fn client_secret(&self) -> &Secret {
        &self.client_secret
    }
}

fn random_secret() -> Secret {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// All identities of one stack and the key their tokens are signed with.
pub struct IdentityProvider {
    identities: Vec<Arc<ServicePrincipal>>,
    signer: TokenSigner,
    headers: ApiKeyRing,
    client_secrets: ApiKeyRing,
    available: AtomicBool,
    /// The simulated hang ([`Self::stall`]).
    stall: Stall,
    token_lifetime: AtomicI64,
    /// Tokens issued so far, by identity name and audience.
    issued: parking_lot::Mutex<std::collections::BTreeMap<(String, String), u64>>,
}

impl IdentityProvider {
    /// Creates `names` identities with fresh headers and secrets, and a fresh signing key.
    pub fn new(names: &[&str]) -> anyhow::Result<Self> {
        Ok(Self::with_signer(names, TokenSigner::generate()?))
    }

    /// Creates `names` identities with fresh headers and secrets, signing with `signer`.
    pub fn with_signer(names: &[&str], signer: TokenSigner) -> Self {
        let identities: Vec<Arc<ServicePrincipal>> = names
            .iter()
            .map(|name| {
                Arc::new(ServicePrincipal {
                    name: (*name).to_owned(),
                    object_id: stable_id("object", name),
                    client_id: client_id_of(name),
                    identity_header: random_secret(),
                    client_secret: random_secret(),
                })
            })
            .collect();
        let headers = ApiKeyRing::new(
            identities
                .iter()
                .map(|i| (i.name.as_str(), &i.identity_header)),
        );
        let client_secrets = ApiKeyRing::new(
            identities
                .iter()
                .map(|i| (i.client_id.as_str(), &i.client_secret)),
        );
        Self {
            identities,
            signer,
            headers,
            client_secrets,
            available: AtomicBool::new(true),
            stall: Stall::default(),
            token_lifetime: AtomicI64::new(TOKEN_LIFETIME_SECONDS),
            issued: Default::default(),
        }
    }

    /// The identity named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<ServicePrincipal>> {
        self.identities.iter().find(|i| i.name == name).cloned()
    }

    /// The identity whose object id is `oid`.
    pub fn by_object_id(&self, oid: &str) -> Option<Arc<ServicePrincipal>> {
        self.identities.iter().find(|i| i.object_id == oid).cloned()
    }

    /// Every identity.
    pub fn all(&self) -> &[Arc<ServicePrincipal>] {
        &self.identities
    }

    /// The verifier the other emulators check tokens with.
    pub fn verifier(&self) -> TokenVerifier {
        self.signer.verifier()
    }

    /// Issues a token for `identity` and `resource` valid for `lifetime_seconds` from now
    /// (negative for an already expired token, in tests).
    pub fn issue(
        &self,
        identity: &ServicePrincipal,
        resource: &str,
        lifetime_seconds: i64,
    ) -> String {
        *self
            .issued
            .lock()
            .entry((identity.name.clone(), resource.to_owned()))
            .or_default() += 1;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let nbf = now.min(now + lifetime_seconds - 1);
        let exp = now + lifetime_seconds;
        let subject = identity.object_id.clone();
        self.signer.sign(&app_claims(
            identity,
            resource,
            issuer(),
            subject,
            (nbf, exp),
        ))
    }

    /// How many tokens were issued so far, by identity name and audience (sorted).
    pub fn tokens_issued(&self) -> Vec<(String, String, u64)> {
        self.issued
            .lock()
            .iter()
            .map(|((name, audience), count)| (name.clone(), audience.clone(), *count))
            .collect()
    }

    /// A federated token for `identity`, as a cluster projects one into a pod: issued by
    /// [`FEDERATION_ISSUER`] for [`TOKEN_EXCHANGE_AUDIENCE`], subject [`federated_subject`].
    pub fn issue_federated(&self, identity: &ServicePrincipal, lifetime_seconds: i64) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (issuer, subject) = (
            FEDERATION_ISSUER.to_owned(),
            federated_subject(&identity.name),
        );
        let valid = (now, now + lifetime_seconds);
        self.signer.sign(&app_claims(
            identity,
            TOKEN_EXCHANGE_AUDIENCE,
            issuer,
            subject,
            valid,
        ))
    }

    /// Simulates an outage of the token endpoints (`false`: answered 503) or ends it.
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    /// Sets the lifetime of the access tokens issued from now on; under five minutes, the
    /// Azure SDK credentials try to refresh on every use (fault tests make them do so).
    pub fn set_token_lifetime(&self, seconds: i64) {
        self.token_lifetime.store(seconds, Ordering::SeqCst);
    }

    /// The token endpoints' simulated hang: while set, every token request waits, unanswered,
    /// until the stall ends or its client gives up. The signing keys' discovery, `/healthz` and
    /// the control methods keep answering.
    pub fn stall(&self) -> &Stall {
        &self.stall
    }
}

impl AsRef<Stall> for IdentityProvider {
    fn as_ref(&self) -> &Stall {
        &self.stall
    }
}

/// An app token's claims for `identity`: audience, issuer, subject, and `(nbf, exp)` (issued at
/// `nbf`).
fn app_claims(
    identity: &ServicePrincipal,
    aud: &str,
    iss: String,
    sub: String,
    (nbf, exp): (i64, i64),
) -> Claims {
    Claims {
        aud: aud.to_owned(),
        iss,
        iat: nbf,
        nbf,
        exp,
        oid: identity.object_id.clone(),
        sub,
        appid: identity.client_id.clone(),
        tid: TENANT_ID.to_owned(),
        ver: "1.0".into(),
        idtyp: "app".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, test};
    use std::time::Duration;

    /// Stalled token endpoints hold a request while the key discovery and the control methods
    /// keep answering, and answer it once un-stalled.
    #[actix_web::test]
    async fn stalled_token_endpoints_hold_requests_until_unstalled() {
        let provider = Arc::new(IdentityProvider::new(&["main-app"]).unwrap());
        let app = test::init_service(App::new().configure(|cfg| provider.configure(cfg))).await;
        let token = || {
            test::TestRequest::get()
                .uri(&format!("{MSI_PATH}?api-version={MSI_API_VERSION}"))
                .to_request()
        };
        provider.stall().set(true);
        let mut held = std::pin::pin!(test::call_service(&app, token()));
        let waited = tokio::time::timeout(Duration::from_millis(300), held.as_mut()).await;
        assert!(waited.is_err(), "answered while stalled");
        assert_eq!(provider.stall().held(), 1);
        provider.set_token_lifetime(600);
        let keys = test::TestRequest::get()
            .uri(&format!("/{TENANT_ID}/discovery/v2.0/keys"))
            .to_request();
        assert_eq!(test::call_service(&app, keys).await.status(), 200);
        provider.stall().set(false);
        let res = tokio::time::timeout(Duration::from_secs(5), held)
            .await
            .expect("answered once un-stalled");
        assert_eq!(res.status(), 401, "no identity header, as without a stall");
        assert_eq!(provider.stall().held(), 1, "nothing held after the stall");
    }
}
