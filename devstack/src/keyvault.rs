//! The Key Vault emulator: the secrets REST API as Azure serves it, over HTTPS, with challenge
//! authentication, token checks (signature, issuer, audience, lifetime) and RBAC per secret.
//! It works unchanged with the Rust `SecretClient` and Python's `azure-keyvault-secrets`.

use crate::identity::IdentityProvider;
use crate::jwt::{TENANT_ID, TokenError, TokenVerifier, bearer};
use crate::rbac::{DataAction, RoleAssignments, Scope};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use shared_auth::Secret;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

/// The audience of Key Vault tokens.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// API versions accepted (what current SDKs send).
pub const API_VERSIONS: &[&str] = &[
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-07-01",
    "2026-04-01",
];
/// Days a deleted secret stays recoverable.
const RECOVERABLE_DAYS: i64 = 90;
/// Largest secret value Azure accepts.
const MAX_VALUE_BYTES: usize = 25 * 1024;
/// Default and largest page size of list operations.
const DEFAULT_PAGE: usize = 25;
const MAX_PAGE: usize = 25;

#[derive(Clone)]
struct Version {
    version: String,
    value: Secret,
    content_type: Option<String>,
    tags: Option<Map<String, Value>>,
    enabled: bool,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: i64,
    updated: i64,
}

#[derive(Clone, Default)]
struct SecretEntry {
    /// Oldest first; the last is the current version.
    versions: Vec<Version>,
}

#[derive(Clone)]
struct Deleted {
    entry: SecretEntry,
    deleted_date: i64,
}

/// One vault: its secrets, and who may do what.
pub struct KeyVault {
    secrets: RwLock<BTreeMap<String, SecretEntry>>,
    /// Successful reads of each secret's value (tests check refresh counts with it).
    reads: RwLock<BTreeMap<String, u64>>,
    /// False simulates an outage: every request gets 503.
    available: std::sync::atomic::AtomicBool,
    deleted: RwLock<BTreeMap<String, Deleted>>,
    verifier: TokenVerifier,
    identities: Arc<IdentityProvider>,
    roles: Arc<RoleAssignments>,
}

/// An error as Key Vault answers it.
#[derive(Debug)]
struct VaultError {
    status: StatusCode,
    code: &'static str,
    message: String,
    inner: Option<&'static str>,
}

impl VaultError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            inner: None,
        }
    }

    fn inner(mut self, code: &'static str) -> Self {
        self.inner = Some(code);
        self
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }

    fn not_found(name: &str) -> Self {
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
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl VaultError {
    fn into_response(self) -> HttpResponse {
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

type VaultResult = Result<HttpResponse, VaultError>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AttributesIn {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    value: Option<String>,
    content_type: Option<String>,
    attributes: Option<AttributesIn>,
    tags: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    content_type: Option<String>,
    attributes: Option<AttributesIn>,
    tags: Option<Map<String, Value>>,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn check_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= 127
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(VaultError::bad(format!(
            "The request URI contains an invalid name: {name}"
        )))
    }
}

impl KeyVault {
    /// An empty vault whose tokens come from `identities` and whose roles are `roles`.
    pub fn new(identities: Arc<IdentityProvider>, roles: Arc<RoleAssignments>) -> Self {
        Self {
            secrets: RwLock::default(),
            reads: RwLock::default(),
            available: std::sync::atomic::AtomicBool::new(true),
            deleted: RwLock::default(),
            verifier: identities.verifier(),
            identities,
            roles,
        }
    }

    /// Sets a secret directly (seeding), as a new version; returns the version id.
    pub fn seed(&self, name: &str, value: &Secret) -> String {
        self.add_version(name, value.clone(), None, None, AttributesIn::default())
    }

    /// How many times the value of `name` was read successfully.
    pub fn reads(&self, name: &str) -> u64 {
        self.reads
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Simulates an outage (`false`: every request is answered 503) or ends it.
    pub fn set_available(&self, available: bool) {
        self.available
            .store(available, std::sync::atomic::Ordering::SeqCst);
    }

    /// Registers the secrets API routes.
    pub fn configure(self: &Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::from(self.clone()))
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/secrets", web::get().to(list_secrets))
            .route("/secrets/{name}", web::put().to(set_secret))
            .route("/secrets/{name}", web::get().to(get_latest))
            .route("/secrets/{name}", web::delete().to(delete_secret))
            .route("/secrets/{name}/", web::get().to(get_latest))
            .route("/secrets/{name}/", web::patch().to(update_latest))
            .route("/secrets/{name}/versions", web::get().to(list_versions))
            .route("/secrets/{name}/{version}", web::get().to(get_version))
            .route("/secrets/{name}/{version}", web::patch().to(update_secret))
            .route("/deletedsecrets/{name}", web::get().to(get_deleted))
            .route("/deletedsecrets/{name}", web::delete().to(purge_deleted))
            .route(
                "/deletedsecrets/{name}/recover",
                web::post().to(recover_deleted),
            )
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().finish() }),
            )
            .default_service(web::to(|| async {
                VaultError::new(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "The requested resource or operation does not exist.",
                )
                .into_response()
            }));
    }

    /// Checks api-version, token and role; returns the caller's object id.
    fn authorize(
        &self,
        req: &HttpRequest,
        action: DataAction,
        resource: &Scope,
    ) -> Result<String, VaultError> {
        if !self.available.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(VaultError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            ));
        }
        let query = query(req);
        match query.get("api-version") {
            None => {
                return Err(VaultError::bad(
                    "The 'api-version' query parameter is missing.",
                ));
            }
            Some(v) if !API_VERSIONS.contains(&v.as_str()) => {
                return Err(VaultError::bad(format!(
                    "The specified version ({v}) is not recognized. Consider using the latest \
                     supported version (2026-04-01)."
                )));
            }
            Some(_) => {}
        }
        let Some(token) = bearer(req.headers().get("authorization")) else {
            return Err(VaultError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            ));
        };
        let claims = self
            .verifier
            .verify(token, &[VAULT_RESOURCE])
            .map_err(|e| {
                let message = match e {
                    TokenError::WrongAudience => "AKV10022: Invalid audience.",
                    TokenError::WrongIssuer => "AKV10032: Invalid issuer.",
                    TokenError::Expired => "AKV10023: Token expired.",
                    TokenError::NotYetValid => "AKV10024: Token not yet valid.",
                    TokenError::BadSignature => "AKV10031: Invalid token signature.",
                    TokenError::Malformed => "AKV10001: Unable to parse the token.",
                };
                VaultError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
            })?;
        if !self.roles.allows(&claims.oid, action, resource) {
            let who = self
                .identities
                .by_object_id(&claims.oid)
                .map(|i| i.name.clone())
                .unwrap_or_else(|| "unknown".into());
            let target = match resource {
                Scope::Secret(name) => format!("secrets/{name}"),
                _ => "vault".into(),
            };
            return Err(VaultError::new(
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
            .inner("ForbiddenByRbac"));
        }
        Ok(claims.oid)
    }

    fn secrets(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, SecretEntry>> {
        self.secrets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn secrets_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, SecretEntry>> {
        self.secrets.write().unwrap_or_else(|p| p.into_inner())
    }

    fn deleted(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Deleted>> {
        self.deleted.read().unwrap_or_else(|p| p.into_inner())
    }

    fn deleted_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Deleted>> {
        self.deleted.write().unwrap_or_else(|p| p.into_inner())
    }

    fn add_version(
        &self,
        name: &str,
        value: Secret,
        content_type: Option<String>,
        tags: Option<Map<String, Value>>,
        attributes: AttributesIn,
    ) -> String {
        let version = uuid::Uuid::new_v4().simple().to_string();
        let at = now();
        self.secrets_mut()
            .entry(name.to_owned())
            .or_default()
            .versions
            .push(Version {
                version: version.clone(),
                value,
                content_type,
                tags,
                enabled: attributes.enabled.unwrap_or(true),
                nbf: attributes.nbf,
                exp: attributes.exp,
                created: at,
                updated: at,
            });
        version
    }

    fn find(&self, name: &str, version: Option<&str>) -> Result<Version, VaultError> {
        let secrets = self.secrets();
        let entry = secrets
            .get(name)
            .ok_or_else(|| VaultError::not_found(name))?;
        match version {
            None => entry.versions.last().cloned(),
            Some(v) => entry.versions.iter().find(|x| x.version == v).cloned(),
        }
        .ok_or_else(|| VaultError::not_found(name))
    }
}

fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn attributes(v: &Version) -> Value {
    let mut attributes = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    });
    if let Some(nbf) = v.nbf {
        attributes["nbf"] = nbf.into();
    }
    if let Some(exp) = v.exp {
        attributes["exp"] = exp.into();
    }
    attributes
}

/// A secret bundle (with the value) or item (without), as Key Vault renders them.
fn render(base: &str, name: &str, v: &Version, with_value: bool, versioned_id: bool) -> Value {
    let id = if versioned_id {
        format!("{base}/secrets/{name}/{}", v.version)
    } else {
        format!("{base}/secrets/{name}")
    };
    let mut body = json!({ "id": id, "attributes": attributes(v) });
    if with_value {
        body["value"] = v.value.expose().into();
    }
    if let Some(ct) = &v.content_type {
        body["contentType"] = ct.clone().into();
    }
    if let Some(tags) = &v.tags {
        body["tags"] = Value::Object(tags.clone());
    }
    body
}

fn ok(body: Value) -> VaultResult {
    Ok(HttpResponse::Ok().json(body))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, VaultError> {
    serde_json::from_slice(body).map_err(|e| {
        VaultError::bad(format!(
            "The request body is not valid JSON for this operation (line {} column {}).",
            e.line(),
            e.column()
        ))
    })
}

async fn set_secret(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> VaultResult {
    check_name(&name)?;
    vault.authorize(
        &req,
        DataAction::SecretSet,
        &Scope::Secret(name.to_string()),
    )?;
    if vault.deleted().contains_key(name.as_str()) {
        return Err(VaultError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Secret {name} is currently in a deleted but recoverable state, and its name \
                 cannot be reused; in this state, the secret can only be recovered or purged."
            ),
        )
        .inner("ObjectIsDeletedButRecoverable"));
    }
    let body: SetBody = parse_json(&body)?;
    let value = body
        .value
        .ok_or_else(|| VaultError::bad("Property 'value' is required."))?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(VaultError::bad("The secret value exceeds 25 KB."));
    }
    let version = vault.add_version(
        &name,
        Secret::new(value),
        body.content_type,
        body.tags,
        body.attributes.unwrap_or_default(),
    );
    let v = vault.find(&name, Some(&version))?;
    ok(render(&base_url(&req), &name, &v, true, true))
}

fn get(vault: &KeyVault, req: &HttpRequest, name: &str, version: Option<&str>) -> VaultResult {
    check_name(name)?;
    vault.authorize(req, DataAction::SecretGet, &Scope::Secret(name.to_owned()))?;
    let v = vault.find(name, version)?;
    if !v.enabled {
        return Err(VaultError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
        )
        .inner("SecretDisabled"));
    }
    // Like Azure, `nbf` and `exp` do not block a get: they are for the application to honour.
    *vault
        .reads
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(name.to_owned())
        .or_default() += 1;
    ok(render(&base_url(req), name, &v, true, true))
}

async fn get_latest(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    get(&vault, &req, &name, None)
}

async fn get_version(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> VaultResult {
    let (name, version) = path.into_inner();
    get(
        &vault,
        &req,
        &name,
        Some(version.as_str()).filter(|v| !v.is_empty()),
    )
}

/// One page of `items`, with a `nextLink` that carries the offset.
fn page(req: &HttpRequest, items: Vec<Value>) -> VaultResult {
    let query = query(req);
    let size = match query.get("maxresults") {
        None => DEFAULT_PAGE,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(VaultError::bad(format!(
                    "maxresults must be between 1 and {MAX_PAGE}."
                )));
            }
        },
    };
    let skip: usize = query
        .get("$skiptoken")
        .map(|t| {
            t.parse()
                .map_err(|_| VaultError::bad("Invalid $skiptoken."))
        })
        .transpose()?
        .unwrap_or(0);
    let end = (skip + size).min(items.len());
    let next = (end < items.len()).then(|| {
        let mut url = format!("{}{}?", base_url(req), req.path());
        url.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair("api-version", &query["api-version"])
                .append_pair("$skiptoken", &end.to_string())
                .append_pair("maxresults", &size.to_string())
                .finish(),
        );
        url
    });
    let items = items.get(skip.min(end)..end).unwrap_or_default().to_vec();
    ok(json!({ "value": items, "nextLink": next }))
}

async fn list_secrets(vault: web::Data<KeyVault>, req: HttpRequest) -> VaultResult {
    vault.authorize(&req, DataAction::SecretReadMetadata, &Scope::Vault)?;
    let base = base_url(&req);
    let items = vault
        .secrets
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|(name, e)| {
            e.versions
                .last()
                .map(|v| render(&base, name, v, false, false))
        })
        .collect();
    page(&req, items)
}

async fn list_versions(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    check_name(&name)?;
    vault.authorize(
        &req,
        DataAction::SecretReadMetadata,
        &Scope::Secret(name.to_string()),
    )?;
    let base = base_url(&req);
    let secrets = vault.secrets();
    let entry = secrets
        .get(name.as_str())
        .ok_or_else(|| VaultError::not_found(&name))?;
    let items = entry
        .versions
        .iter()
        .map(|v| render(&base, &name, v, false, true))
        .collect();
    drop(secrets);
    page(&req, items)
}

async fn update_latest(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> VaultResult {
    update(&vault, &req, name.into_inner(), String::new(), &body)
}

async fn update_secret(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> VaultResult {
    let (name, version) = path.into_inner();
    update(&vault, &req, name, version, &body)
}

fn update(
    vault: &KeyVault,
    req: &HttpRequest,
    name: String,
    version: String,
    body: &[u8],
) -> VaultResult {
    check_name(&name)?;
    vault.authorize(req, DataAction::SecretUpdate, &Scope::Secret(name.clone()))?;
    let body: UpdateBody = parse_json(body)?;
    let mut secrets = vault.secrets_mut();
    let entry = secrets
        .get_mut(&name)
        .ok_or_else(|| VaultError::not_found(&name))?;
    let v = if version.is_empty() {
        entry.versions.last_mut()
    } else {
        entry.versions.iter_mut().find(|v| v.version == version)
    }
    .ok_or_else(|| VaultError::not_found(&name))?;
    if let Some(a) = body.attributes {
        if let Some(enabled) = a.enabled {
            v.enabled = enabled;
        }
        if a.nbf.is_some() {
            v.nbf = a.nbf;
        }
        if a.exp.is_some() {
            v.exp = a.exp;
        }
    }
    if body.content_type.is_some() {
        v.content_type = body.content_type;
    }
    if body.tags.is_some() {
        v.tags = body.tags;
    }
    v.updated = now();
    let rendered = render(&base_url(req), &name, v, false, true);
    ok(rendered)
}

fn render_deleted(base: &str, name: &str, deleted: &Deleted) -> Value {
    let mut body = deleted
        .entry
        .versions
        .last()
        .map(|v| render(base, name, v, false, true))
        .unwrap_or_else(|| json!({}));
    body["recoveryId"] = format!("{base}/deletedsecrets/{name}").into();
    body["deletedDate"] = deleted.deleted_date.into();
    body["scheduledPurgeDate"] = (deleted.deleted_date + RECOVERABLE_DAYS * 86_400).into();
    body
}

async fn delete_secret(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    check_name(&name)?;
    vault.authorize(
        &req,
        DataAction::SecretDelete,
        &Scope::Secret(name.to_string()),
    )?;
    let entry = vault
        .secrets_mut()
        .remove(name.as_str())
        .ok_or_else(|| VaultError::not_found(&name))?;
    let deleted = Deleted {
        entry,
        deleted_date: now(),
    };
    let body = render_deleted(&base_url(&req), &name, &deleted);
    vault.deleted_mut().insert(name.to_string(), deleted);
    ok(body)
}

fn deleted_not_found(name: &str) -> VaultError {
    VaultError::new(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        format!("Deleted Secret not found: {name}"),
    )
}

async fn get_deleted(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    vault.authorize(
        &req,
        DataAction::SecretReadMetadata,
        &Scope::Secret(name.to_string()),
    )?;
    let deleted = vault.deleted();
    let d = deleted
        .get(name.as_str())
        .ok_or_else(|| deleted_not_found(&name))?;
    ok(render_deleted(&base_url(&req), &name, d))
}

async fn purge_deleted(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    vault.authorize(
        &req,
        DataAction::SecretPurge,
        &Scope::Secret(name.to_string()),
    )?;
    vault
        .deleted_mut()
        .remove(name.as_str())
        .ok_or_else(|| deleted_not_found(&name))?;
    Ok(HttpResponse::NoContent().finish())
}

async fn recover_deleted(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    vault.authorize(
        &req,
        DataAction::SecretRecover,
        &Scope::Secret(name.to_string()),
    )?;
    let d = vault
        .deleted_mut()
        .remove(name.as_str())
        .ok_or_else(|| deleted_not_found(&name))?;
    let body = d
        .entry
        .versions
        .last()
        .map(|v| render(&base_url(&req), &name, v, false, true))
        .unwrap_or_default();
    vault.secrets_mut().insert(name.to_string(), d.entry);
    ok(body)
}
