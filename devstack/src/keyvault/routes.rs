//! The vault's routes: the secrets REST API (get, set, update, list, delete, recover, purge)
//! over the state, each held first while the vault is stalled ([`hold`]), then authorized.

use super::KeyVault;
use super::error::{VaultError, VaultResult};
use super::model::{SetBody, UpdateBody, check_name, parse_json, query, render, render_deleted};
use super::state::{Deleted, now};
use super::{DEFAULT_PAGE, MAX_PAGE, MAX_VALUE_BYTES};
use crate::rbac::{DataAction, Scope};
use crate::stall::hold;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use shared_auth::Secret;
use std::sync::Arc;

impl KeyVault {
    /// Registers the secrets API routes.
    pub fn configure(self: &Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::from(self.clone()))
            .app_data(web::PayloadConfig::new(64 * 1024))
            .service(
                web::scope("/secrets")
                    .wrap(from_fn(hold::<KeyVault>))
                    .route("", web::get().to(list_secrets))
                    .route("/{name}", web::put().to(set_secret))
                    .route("/{name}", web::get().to(get_secret))
                    .route("/{name}", web::delete().to(delete_secret))
                    .route("/{name}/", web::get().to(get_secret))
                    .route("/{name}/", web::patch().to(update_secret))
                    .route("/{name}/versions", web::get().to(list_versions))
                    .route("/{name}/{version}", web::get().to(get_secret))
                    .route("/{name}/{version}", web::patch().to(update_secret)),
            )
            .service(
                web::scope("/deletedsecrets")
                    .wrap(from_fn(hold::<KeyVault>))
                    .route("/{name}", web::get().to(get_deleted))
                    .route("/{name}", web::delete().to(purge_deleted))
                    .route("/{name}/recover", web::post().to(recover_deleted)),
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
}

/// `scheme://host` of `req`, what ids and links start with.
fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn ok(body: Value) -> VaultResult {
    Ok(HttpResponse::Ok().json(body))
}

async fn set_secret(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> VaultResult {
    check_name(&name)?;
    vault.authorize_secret(&req, DataAction::SecretSet, &name)?;
    if vault.deleted.read().contains_key(name.as_str()) {
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
    vault.changed();
    let v = vault.find(&name, Some(&version))?;
    ok(render(&base_url(&req), &name, &v, true, true))
}

fn get(vault: &KeyVault, req: &HttpRequest, name: &str, version: Option<&str>) -> VaultResult {
    check_name(name)?;
    vault.authorize_secret(req, DataAction::SecretGet, name)?;
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
    vault.count_read(name);
    ok(render(&base_url(req), name, &v, true, true))
}

/// A secret's path: `{name}`, with `{version}` when it names one (empty: the latest).
#[derive(serde::Deserialize)]
struct SecretPath {
    name: String,
    version: Option<String>,
}

impl SecretPath {
    /// The version named, if any.
    fn version(&self) -> Option<&str> {
        self.version.as_deref().filter(|v| !v.is_empty())
    }
}

/// Get Secret: `/secrets/{name}`, `/secrets/{name}/` (the latest) or `/secrets/{name}/{version}`.
async fn get_secret(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    path: web::Path<SecretPath>,
) -> VaultResult {
    get(&vault, &req, &path.name, path.version())
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
    vault.authorize_secret(&req, DataAction::SecretReadMetadata, &name)?;
    let base = base_url(&req);
    let secrets = vault.secrets.read();
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

/// Update Secret: `/secrets/{name}/` (the latest) or `/secrets/{name}/{version}`.
async fn update_secret(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    path: web::Path<SecretPath>,
    body: web::Bytes,
) -> VaultResult {
    update(&vault, &req, &path.name, path.version(), &body)
}

fn update(
    vault: &KeyVault,
    req: &HttpRequest,
    name: &str,
    version: Option<&str>,
    body: &[u8],
) -> VaultResult {
    check_name(name)?;
    vault.authorize_secret(req, DataAction::SecretUpdate, name)?;
    let body: UpdateBody = parse_json(body)?;
    let mut secrets = vault.secrets.write();
    let entry = secrets
        .get_mut(name)
        .ok_or_else(|| VaultError::not_found(name))?;
    let v = match version {
        None => entry.versions.last_mut(),
        Some(version) => entry.versions.iter_mut().find(|v| v.version == version),
    }
    .ok_or_else(|| VaultError::not_found(name))?;
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
    let rendered = render(&base_url(req), name, v, false, true);
    ok(rendered)
}

async fn delete_secret(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    check_name(&name)?;
    vault.authorize_secret(&req, DataAction::SecretDelete, &name)?;
    let entry = vault
        .secrets
        .write()
        .remove(name.as_str())
        .ok_or_else(|| VaultError::not_found(&name))?;
    let deleted = Deleted {
        entry,
        deleted_date: now(),
    };
    let body = render_deleted(&base_url(&req), &name, &deleted);
    vault.deleted.write().insert(name.to_string(), deleted);
    vault.changed();
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
    vault.authorize_secret(&req, DataAction::SecretReadMetadata, &name)?;
    let deleted = vault.deleted.read();
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
    vault.authorize_secret(&req, DataAction::SecretPurge, &name)?;
    vault
        .deleted
        .write()
        .remove(name.as_str())
        .ok_or_else(|| deleted_not_found(&name))?;
    Ok(HttpResponse::NoContent().finish())
}

async fn recover_deleted(
    vault: web::Data<KeyVault>,
    req: HttpRequest,
    name: web::Path<String>,
) -> VaultResult {
    vault.authorize_secret(&req, DataAction::SecretRecover, &name)?;
    let d = vault
        .deleted
        .write()
        .remove(name.as_str())
        .ok_or_else(|| deleted_not_found(&name))?;
    let body = d
        .entry
        .versions
        .last()
        .map(|v| render(&base_url(&req), &name, v, false, true))
        .unwrap_or_default();
    vault.secrets.write().insert(name.to_string(), d.entry);
    vault.changed();
    ok(body)
}
