//! The vault's wire model: the query parameters and request bodies it reads, the secret names it
//! accepts, and secrets, versions and deleted secrets rendered as Key Vault renders them.

use super::RECOVERABLE_DAYS;
use super::error::VaultError;
use super::state::{AttributesIn, Deleted, Version};
use actix_web::HttpRequest;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The body of Set Secret.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SetBody {
    pub(super) value: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) attributes: Option<AttributesIn>,
    pub(super) tags: Option<Map<String, Value>>,
}

/// The body of Update Secret (a `value` in it is ignored, as Key Vault ignores it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateBody {
    pub(super) content_type: Option<String>,
    pub(super) attributes: Option<AttributesIn>,
    pub(super) tags: Option<Map<String, Value>>,
}

/// The query parameters of `req`.
pub(super) fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// A secret name as Key Vault accepts them: 1 to 127 letters, digits and dashes.
pub(super) fn check_name(name: &str) -> Result<(), VaultError> {
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

/// A version's attributes as Key Vault renders them.
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
pub(super) fn render(
    base: &str,
    name: &str,
    v: &Version,
    with_value: bool,
    versioned_id: bool,
) -> Value {
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

/// The JSON body of a request, or 400 naming where it breaks (never quoting it).
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, VaultError> {
    serde_json::from_slice(body).map_err(|e| {
        VaultError::bad(format!(
            "The request body is not valid JSON for this operation (line {} column {}).",
            e.line(),
            e.column()
        ))
    })
}

/// A deleted secret as Key Vault renders it.
pub(super) fn render_deleted(base: &str, name: &str, deleted: &Deleted) -> Value {
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
