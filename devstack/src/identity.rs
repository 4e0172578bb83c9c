//! The identity emulator: the App Service / Container Apps managed-identity endpoint
//! (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`), an Entra token endpoint for the client-secret and
//! workload-identity (federated token) flows (`AZURE_AUTHORITY_HOST`), and the signing keys. Each
//! named identity has its own endpoint header, client secret and federated subject, so the other
//! emulators can tell callers apart by the token's `oid`. Ids are derived from the name, so a
//! compose file can name a client id without a secret.

use crate::jwt::{Claims, TENANT_ID, TokenSigner, TokenVerifier, issuer};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use shared_auth::{ApiKeyRing, Secret};
use std::collections::HashMap;
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
pub struct Identity {
    /// Name used in the role table (`main-app`, `queue-worker`, ...).
    pub name: String,
    /// Object id: what role assignments and tokens name.
    pub object_id: String,
    /// Client (application) id.
    pub client_id: String,
    identity_header: Secret,
    client_secret: Secret,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("object_id", &self.object_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
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
    identities: Vec<Arc<Identity>>,
    signer: TokenSigner,
    headers: ApiKeyRing,
    client_secrets: ApiKeyRing,
    available: AtomicBool,
    token_lifetime: AtomicI64,
}

impl IdentityProvider {
    /// Creates `names` identities with fresh headers and secrets, and a fresh signing key.
    pub fn new(names: &[&str]) -> anyhow::Result<Self> {
        Ok(Self::with_signer(names, TokenSigner::generate()?))
    }

    /// Creates `names` identities with fresh headers and secrets, signing with `signer`.
    pub fn with_signer(names: &[&str], signer: TokenSigner) -> Self {
        let identities: Vec<Arc<Identity>> = names
            .iter()
            .map(|name| {
                Arc::new(Identity {
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
            token_lifetime: AtomicI64::new(TOKEN_LIFETIME_SECONDS),
        }
    }

    /// The identity named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Identity>> {
        self.identities.iter().find(|i| i.name == name).cloned()
    }

    /// The identity whose object id is `oid`.
    pub fn by_object_id(&self, oid: &str) -> Option<Arc<Identity>> {
        self.identities.iter().find(|i| i.object_id == oid).cloned()
    }

    /// Every identity.
    pub fn all(&self) -> &[Arc<Identity>] {
        &self.identities
    }

    /// The verifier the other emulators check tokens with.
    pub fn verifier(&self) -> TokenVerifier {
        self.signer.verifier()
    }

    /// Issues a token for `identity` and `resource` valid for `lifetime_seconds` from now
    /// (negative for an already expired token, in tests).
    pub fn issue(&self, identity: &Identity, resource: &str, lifetime_seconds: i64) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let nbf = now.min(now + lifetime_seconds - 1);
        self.signer.sign(&Claims {
            aud: resource.to_owned(),
            iss: issuer(),
            iat: nbf,
            nbf,
            exp: now + lifetime_seconds,
            oid: identity.object_id.clone(),
            sub: identity.object_id.clone(),
            appid: identity.client_id.clone(),
            tid: TENANT_ID.to_owned(),
            ver: "1.0".into(),
            idtyp: "app".into(),
        })
    }

    /// A federated token for `identity`, as a cluster projects one into a pod: issued by
    /// [`FEDERATION_ISSUER`] for [`TOKEN_EXCHANGE_AUDIENCE`], subject [`federated_subject`].
    pub fn issue_federated(&self, identity: &Identity, lifetime_seconds: i64) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.signer.sign(&Claims {
            aud: TOKEN_EXCHANGE_AUDIENCE.to_owned(),
            iss: FEDERATION_ISSUER.to_owned(),
            iat: now,
            nbf: now,
            exp: now + lifetime_seconds,
            oid: identity.object_id.clone(),
            sub: federated_subject(&identity.name),
            appid: identity.client_id.clone(),
            tid: TENANT_ID.to_owned(),
            ver: "1.0".into(),
            idtyp: "app".into(),
        })
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

    fn unavailable(&self) -> Option<HttpResponse> {
        (!self.available.load(Ordering::SeqCst)).then(|| {
            HttpResponse::ServiceUnavailable().json(json!({
                "error": "temporarily_unavailable",
                "error_description": "The identity endpoint is unavailable (simulated outage)."
            }))
        })
    }

    /// Registers the endpoints.
    pub fn configure(self: &Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::from(self.clone()))
            .route(MSI_PATH, web::get().to(managed_identity_token))
            .route("/{tenant}/oauth2/v2.0/token", web::post().to(entra_token))
            .route("/{tenant}/discovery/v2.0/keys", web::get().to(jwks))
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                web::get().to(openid_configuration),
            )
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().finish() }),
            );
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// `GET /msi/token?api-version=2019-08-01&resource=...[&client_id=...]`, header
/// `x-identity-header`: the App Service protocol.
async fn managed_identity_token(
    provider: web::Data<IdentityProvider>,
    req: HttpRequest,
) -> HttpResponse {
    if let Some(outage) = provider.unavailable() {
        return outage;
    }
    let Some(name) = req
        .headers()
        .get("x-identity-header")
        .and_then(|h| provider.headers.verify(h.as_bytes()))
    else {
        return HttpResponse::Unauthorized().json(json!({
            "statusCode": 401,
            "message": "Unauthorized request: x-identity-header is missing or wrong."
        }));
    };
    let identity = provider.get(&name.name).expect("ring names are identities");
    let query = query(&req);
    if query.get("api-version").map(String::as_str) != Some(MSI_API_VERSION) {
        return HttpResponse::BadRequest().json(json!({
            "statusCode": 400,
            "message": format!("api-version must be {MSI_API_VERSION}")
        }));
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return HttpResponse::BadRequest()
            .json(json!({ "statusCode": 400, "message": "resource is required" }));
    };
    if let Some(client_id) = query.get("client_id")
        && client_id != &identity.client_id
    {
        return HttpResponse::BadRequest().json(json!({
            "statusCode": 400,
            "message": "No managed identity with this client_id is assigned to this resource."
        }));
    }
    let expires_on =
        OffsetDateTime::now_utc().unix_timestamp() + provider.token_lifetime.load(Ordering::SeqCst);
    HttpResponse::Ok().json(json!({
        "access_token": provider.issue(
            &identity,
            resource,
            provider.token_lifetime.load(Ordering::SeqCst),
        ),
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }))
}

fn entra_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": error,
        "error_description": description,
        "error_codes": [],
        "timestamp": OffsetDateTime::now_utc().to_string(),
    }))
}

/// `POST /{tenant}/oauth2/v2.0/token`, client-credentials grant with a client secret or a
/// federated token (`client_assertion`).
async fn entra_token(
    provider: web::Data<IdentityProvider>,
    tenant: web::Path<String>,
    form: web::Bytes,
) -> HttpResponse {
    if let Some(outage) = provider.unavailable() {
        return outage;
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&form).into_owned().collect();
    if tenant.as_str() != TENANT_ID {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: Tenant not found.",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: only client_credentials is supported here.",
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let Some(identity) = provider
        .all()
        .iter()
        .find(|i| i.client_id == client_id)
        .cloned()
    else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    };
    if let Some(assertion) = form.get("client_assertion") {
        // Workload identity: a federated token whose issuer and subject this app trusts.
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER_ASSERTION) {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "AADSTS50027: client_assertion_type must be jwt-bearer.",
            );
        }
        let trusted = provider
            .verifier()
            .verify_from(assertion, FEDERATION_ISSUER, &[TOKEN_EXCHANGE_AUDIENCE])
            .is_ok_and(|claims| claims.sub == federated_subject(&identity.name));
        if !trusted {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "AADSTS700213: No matching federated identity record found for the presented \
                 assertion, or it is expired or not signed by the trusted issuer.",
            );
        }
    } else {
        let secret_ok = form
            .get("client_secret")
            .and_then(|s| provider.client_secrets.verify(s.as_bytes()))
            .is_some_and(|k| *k.name == *identity.client_id);
        if !secret_ok {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
            );
        }
    }
    let Some(resource) = form
        .get("scope")
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.strip_suffix("/.default"))
    else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The scope must be <resource>/.default.",
        );
    };
    HttpResponse::Ok().json(json!({
        "token_type": "Bearer",
        "expires_in": provider.token_lifetime.load(Ordering::SeqCst),
        "ext_expires_in": provider.token_lifetime.load(Ordering::SeqCst),
        "access_token": provider.issue(
            &identity,
            resource,
            provider.token_lifetime.load(Ordering::SeqCst),
        ),
    }))
}

async fn jwks(provider: web::Data<IdentityProvider>) -> HttpResponse {
    HttpResponse::Ok().json(provider.verifier().jwks())
}

async fn openid_configuration(req: HttpRequest) -> HttpResponse {
    let info = req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    HttpResponse::Ok().json(json!({
        "issuer": issuer(),
        "token_endpoint": format!("{base}/{TENANT_ID}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/{TENANT_ID}/oauth2/v2.0/authorize"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "response_types_supported": ["code", "token"],
        "subject_types_supported": ["pairwise"],
        "jwks_uri": format!("{base}/{TENANT_ID}/discovery/v2.0/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}
