//! The key-management API of Azure Functions, authorised by the master key only:
//! `/admin/functions/RandomNumber/keys[/{name}]` and `/admin/host/keys[/{name}]`.

use crate::key_store::{
    FUNCTION_NAME, KeyName, KeyRef, KeyScope, KeyStore, KeyStoreError, KeyValue, MASTER_KEY_NAME,
    SetOutcome,
};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use shared_auth::json_error;

/// One key as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyEntry {
    /// The key's name.
    pub name: String,
    /// The key's value (the caller holds the master key).
    pub value: String,
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
    /// Optional; when present it must equal the name in the path.
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
    /// The store could not be written; nothing changed.
    #[error("the key store could not be written; the keys in force are unchanged")]
    Storage,
}

impl actix_web::ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Storage => "storage_unavailable",
        };
        json_error(self.status_code(), code, self.to_string())
    }
}

impl From<KeyStoreError> for AdminError {
    fn from(error: KeyStoreError) -> Self {
        match error {
            KeyStoreError::NotFound { .. } => Self::NotFound(error.to_string()),
            KeyStoreError::Persist { .. } | KeyStoreError::Load { .. } => {
                tracing::error!(error = %error, "admin change not applied");
                Self::Storage
            }
        }
    }
}

/// Registers the admin routes (the caller wraps them with the master-key guard).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/functions/{function}/keys",
        web::get().to(list_function_keys),
    )
    .route(
        "/functions/{function}/keys/{name}",
        web::put().to(put_function_key),
    )
    .route(
        "/functions/{function}/keys/{name}",
        web::post().to(generate_function_key),
    )
    .route(
        "/functions/{function}/keys/{name}",
        web::delete().to(delete_function_key),
    )
    .route("/host/keys", web::get().to(list_host_keys))
    .route("/host/keys/{name}", web::put().to(put_host_key))
    .route("/host/keys/{name}", web::post().to(generate_host_key))
    .route("/host/keys/{name}", web::delete().to(delete_host_key));
}

fn check_function(function: &str) -> Result<(), AdminError> {
    if function.eq_ignore_ascii_case(FUNCTION_NAME) {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!(
            "no function named `{function}`"
        )))
    }
}

/// Resolves a path name: `_master` is the master key in the host scope, other names must parse.
fn key_ref(scope: KeyScope, name: &str) -> Result<KeyRef, AdminError> {
    if scope == KeyScope::Host && name == MASTER_KEY_NAME {
        return Ok(KeyRef::Master);
    }
    KeyName::parse(name)
        .map(|n| KeyRef::Named(scope, n))
        .map_err(AdminError::BadRequest)
}

fn parse_put_body(body: &[u8], path_name: &str) -> Result<KeyValue, AdminError> {
    let put: PutKey = serde_json::from_slice(body).map_err(|e| {
        AdminError::BadRequest(format!(
            "the body must be JSON {{\"name\": optional, \"value\": \"...\"}}: {}",
            redact_serde_error(&e)
        ))
    })?;
    if put.name.as_deref().is_some_and(|n| n != path_name) {
        return Err(AdminError::BadRequest(
            "the name in the body differs from the name in the path".into(),
        ));
    }
    KeyValue::parse(&put.value).map_err(AdminError::BadRequest)
}

/// serde's message can quote the input; keep only its category and position.
fn redact_serde_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "malformed JSON",
        Category::Data => "wrong fields or types",
        Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
}

async fn list(store: &KeyStore, scope: KeyScope, req: &HttpRequest) -> HttpResponse {
    let keys = store
        .list(scope)
        .await
        .into_iter()
        .map(|(name, value)| KeyEntry {
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

async fn list_function_keys(
    store: web::Data<KeyStore>,
    function: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    check_function(&function)?;
    Ok(list(&store, KeyScope::Function, &req).await)
}

async fn put_function_key(
    store: web::Data<KeyStore>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let (function, name) = path.into_inner();
    check_function(&function)?;
    let key = key_ref(KeyScope::Function, &name)?;
    let value = parse_put_body(&body, &name)?;
    set(&store, key, Some(value), &name).await
}

async fn generate_function_key(
    store: web::Data<KeyStore>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (function, name) = path.into_inner();
    check_function(&function)?;
    set(&store, key_ref(KeyScope::Function, &name)?, None, &name).await
}

async fn delete_function_key(
    store: web::Data<KeyStore>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (function, name) = path.into_inner();
    check_function(&function)?;
    delete(&store, key_ref(KeyScope::Function, &name)?).await
}

async fn list_host_keys(store: web::Data<KeyStore>, req: HttpRequest) -> HttpResponse {
    list(&store, KeyScope::Host, &req).await
}

async fn put_host_key(
    store: web::Data<KeyStore>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let key = key_ref(KeyScope::Host, &name)?;
    let value = parse_put_body(&body, &name)?;
    set(&store, key, Some(value), &name).await
}

async fn generate_host_key(
    store: web::Data<KeyStore>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set(&store, key_ref(KeyScope::Host, &name)?, None, &name).await
}

async fn delete_host_key(
    store: web::Data<KeyStore>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    delete(&store, key_ref(KeyScope::Host, &name)?).await
}
