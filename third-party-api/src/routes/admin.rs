//! The key-management API of Azure Functions, authorised by the master key only:
//! `/admin/functions/RandomNumber/keys[/{name}]` and `/admin/host/keys[/{name}]`.

use crate::key_store::{
    FUNCTION_NAME, KeyName, KeyRef, KeyScope, KeyStore, KeyStoreError, KeyValue, MASTER_KEY_NAME,
    SetOutcome, redact_json_error,
};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use service_kit::http_methods::resource;
use service_kit::json_error;
use service_kit::request_body::{BodyError, BodyLimits};

/// One key as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyEntry {
    /// The key's name.
    pub name: String,
    /// The key's value (the caller holds the master key).
    pub value: String,
    /// When this replica last accepted the key (RFC 3339), `null` if never since it started:
    /// what a rotation watches before revoking an old key. Not in Azure Functions' answer.
    #[serde(
        rename = "lastAccepted",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_accepted: Option<Option<String>>,
}

/// A list of keys, with a link to itself as Azure Functions answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyList {
    /// The keys, sorted by name.
    pub keys: Vec<KeyEntry>,
    /// `self` link.
    pub links: Vec<Link>,
}

/// A hypermedia link.
#[derive(Debug, Serialize, Deserialize)]
pub struct Link {
    /// Relation.
    pub rel: String,
    /// Target.
    pub href: String,
}

/// Body of `PUT .../keys/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutKey {
    /// Optional and ignored: the path names the key.
    pub name: Option<String>,
    /// The new value.
    pub value: String,
}

/// Why an admin request was refused; mapped to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The path or body is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No such function or key.
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than the limit.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive in time; the connection is closed.
    #[error("the body did not arrive in time")]
    Timeout,
    /// The store could not be written; nothing changed.
    #[error("the key store could not be written; the keys in force are unchanged")]
    Storage,
    /// The change is not made here (the master key lives in Key Vault).
    #[error("{0}")]
    Conflict(String),
}

impl actix_web::ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Storage => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Conflict(_) => StatusCode::CONFLICT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Timeout => "request_timeout",
            Self::Storage => "storage_unavailable",
            Self::Conflict(_) => "conflict",
        };
        let mut response = json_error(self.status_code(), code, self.to_string());
        if matches!(self, Self::Timeout) {
            // The rest of the body may still come; this connection is not reused.
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        response
    }
}

impl From<KeyStoreError> for AdminError {
    fn from(error: KeyStoreError) -> Self {
        match error {
            KeyStoreError::NotFound { .. } => Self::NotFound(error.to_string()),
            KeyStoreError::MasterKeyInVault => Self::Conflict(error.to_string()),
            KeyStoreError::Persist { .. }
            | KeyStoreError::Load { .. }
            | KeyStoreError::Invalid { .. } => {
                tracing::error!(error = %error, "admin change not applied");
                Self::Storage
            }
        }
    }
}

/// Registers the admin routes (the caller wraps them with the master-key guard); a method a
/// path does not declare gets 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for keys in ["/functions/{function}/keys", "/host/keys"] {
        cfg.service(resource(keys).get(list_keys)).service(
            resource(&format!("{keys}/{{name}}"))
                .put(put_key)
                .post(generate_key)
                .delete(delete_key),
        );
    }
}

/// A time as RFC 3339 UTC with milliseconds.
fn rfc3339(at: std::time::SystemTime) -> String {
    let at: time::OffsetDateTime = at.into();
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A key path: `/functions/{function}/keys[/{name}]` or `/host/keys[/{name}]`.
#[derive(Deserialize)]
struct KeyPath {
    function: Option<String>,
    name: Option<String>,
}

impl KeyPath {
    /// The scope the path names: the host's, or RandomNumber's (any other function is 404).
    fn scope(&self) -> Result<KeyScope, AdminError> {
        match &self.function {
            None => Ok(KeyScope::Host),
            Some(f) if f.eq_ignore_ascii_case(FUNCTION_NAME) => Ok(KeyScope::Function),
            Some(f) => Err(AdminError::NotFound(format!("no function named `{f}`"))),
        }
    }

    /// The key the path names, and its name as written.
    fn key(&self) -> Result<(KeyRef, &str), AdminError> {
        let name = self.name.as_deref().unwrap_or_default();
        Ok((key_ref(self.scope()?, name)?, name))
    }
}

/// Resolves a path name: `_master` is the master key in the host scope, other names must parse.
fn key_ref(scope: KeyScope, name: &str) -> Result<KeyRef, AdminError> {
    if scope == KeyScope::Host && name == MASTER_KEY_NAME {
        return Ok(KeyRef::Master);
    }
    KeyName::parse(name)
        .map(|n| KeyRef::Named(scope, n))
        .map_err(|e| AdminError::BadRequest(e.to_string()))
}

/// Reads a body within `limits`.
async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    limits: &BodyLimits,
) -> Result<web::Bytes, AdminError> {
    service_kit::request_body::read_body(request, payload, *limits)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(max) => AdminError::PayloadTooLarge(max),
            BodyError::Timeout(_) => AdminError::Timeout,
            BodyError::Unreadable => AdminError::BadRequest("the body could not be read".into()),
        })
}

/// The key value of a PUT body. The path names the key; a `name` in the body is informative
/// and ignored (a schema cannot say "equal to the path", so refusing a different one would
/// refuse bodies the published schema allows).
fn parse_put_body(body: &[u8]) -> Result<KeyValue, AdminError> {
    let put: PutKey = serde_json::from_slice(body).map_err(|e| {
        AdminError::BadRequest(format!(
            "the body must be JSON {{\"name\": optional, \"value\": \"...\"}}: {}",
            redact_json_error(&e)
        ))
    })?;
    KeyValue::parse(&put.value).map_err(|e| AdminError::BadRequest(e.to_string()))
}

async fn list(store: &KeyStore, scope: KeyScope, req: &HttpRequest) -> HttpResponse {
    let keys = store
        .list(scope)
        .await
        .into_iter()
        .map(|(name, value)| KeyEntry {
            last_accepted: Some(store.last_accepted(scope, &name).map(rfc3339)),
            name,
            value: value.expose().to_owned(),
        })
        .collect();
    HttpResponse::Ok().json(KeyList {
        keys,
        links: vec![Link {
            rel: "self".into(),
            href: req.uri().path().to_owned(),
        }],
    })
}

async fn set(
    store: &KeyStore,
    key: KeyRef,
    value: Option<KeyValue>,
    name: &str,
) -> Result<HttpResponse, AdminError> {
    let (value, outcome) = store.set(key, value).await?;
    let status = match outcome {
        SetOutcome::Created => StatusCode::CREATED,
        SetOutcome::Replaced => StatusCode::OK,
    };
    Ok(HttpResponse::build(status).json(KeyEntry {
        name: name.to_owned(),
        value: value.expose().to_owned(),
        last_accepted: None,
    }))
}

async fn delete(store: &KeyStore, key: KeyRef) -> Result<HttpResponse, AdminError> {
    match key {
        KeyRef::Master => Err(AdminError::BadRequest(
            "the master key cannot be deleted; regenerate it with POST".into(),
        )),
        KeyRef::Named(scope, name) => {
            store.delete(scope, &name).await?;
            Ok(HttpResponse::NoContent().finish())
        }
    }
}

async fn list_keys(
    store: web::Data<KeyStore>,
    path: web::Path<KeyPath>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    Ok(list(&store, path.scope()?, &req).await)
}

async fn put_key(
    store: web::Data<KeyStore>,
    limits: web::Data<BodyLimits>,
    path: web::Path<KeyPath>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let (key, name) = path.key()?;
    let body = read_body(&request, payload, &limits).await?;
    let value = parse_put_body(&body)?;
    set(&store, key, Some(value), name).await
}

async fn generate_key(
    store: web::Data<KeyStore>,
    path: web::Path<KeyPath>,
) -> Result<HttpResponse, AdminError> {
    let (key, name) = path.key()?;
    set(&store, key, None, name).await
}

async fn delete_key(
    store: web::Data<KeyStore>,
    path: web::Path<KeyPath>,
) -> Result<HttpResponse, AdminError> {
    delete(&store, path.key()?.0).await
}
