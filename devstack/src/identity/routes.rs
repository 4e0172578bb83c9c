//! The identity emulator's endpoints: the managed-identity endpoint (App Service protocol), the
//! Entra token endpoint (client secret or federated token), and the signing keys' discovery.
//! While stalled, the two token endpoints hold each request until the stall ends ([`hold`]).

use super::{
    FEDERATION_ISSUER, IdentityProvider, JWT_BEARER_ASSERTION, MSI_API_VERSION, MSI_PATH,
    TOKEN_EXCHANGE_AUDIENCE, federated_subject,
};
use crate::jwt::{TENANT_ID, issuer};
use crate::stall::hold;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use time::OffsetDateTime;

impl IdentityProvider {
    /// The 503 every token endpoint answers while an outage is simulated.
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
            .service(
                web::resource(MSI_PATH)
                    .wrap(from_fn(hold::<IdentityProvider>))
                    .get(managed_identity_token),
            )
            .service(
                web::resource("/{tenant}/oauth2/v2.0/token")
                    .wrap(from_fn(hold::<IdentityProvider>))
                    .post(entra_token),
            )
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
    let lifetime = provider.token_lifetime.load(Ordering::SeqCst);
    let expires_on = OffsetDateTime::now_utc().unix_timestamp() + lifetime;
    HttpResponse::Ok().json(json!({
        "access_token": provider.issue(&identity, resource, lifetime),
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
    let lifetime = provider.token_lifetime.load(Ordering::SeqCst);
    HttpResponse::Ok().json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": provider.issue(&identity, resource, lifetime),
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
