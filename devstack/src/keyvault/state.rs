//! What the vault holds: every version of every secret, the deleted ones until purged or
//! recovered, and how often each value was read.

use super::KeyVault;
use super::error::VaultError;
use serde::Deserialize;
use serde_json::{Map, Value};
use shared_auth::Secret;
use time::OffsetDateTime;

/// The attributes of a version a request may set.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct AttributesIn {
    pub(super) enabled: Option<bool>,
    pub(super) nbf: Option<i64>,
    pub(super) exp: Option<i64>,
}

/// Now, in unix seconds.
pub(super) fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// One version of a secret.
#[derive(Clone)]
pub(super) struct Version {
    pub(super) version: String,
    pub(super) value: Secret,
    pub(super) content_type: Option<String>,
    pub(super) tags: Option<Map<String, Value>>,
    pub(super) enabled: bool,
    pub(super) nbf: Option<i64>,
    pub(super) exp: Option<i64>,
    pub(super) created: i64,
    pub(super) updated: i64,
}

/// A secret: its versions.
#[derive(Clone, Default)]
pub(super) struct SecretEntry {
    /// Oldest first; the last is the current version.
    pub(super) versions: Vec<Version>,
}

/// A deleted secret, recoverable until purged.
#[derive(Clone)]
pub(super) struct Deleted {
    pub(super) entry: SecretEntry,
    pub(super) deleted_date: i64,
}

impl KeyVault {
    /// Adds a version of `name` (creating the secret); returns the version id.
    pub(super) fn add_version(
        &self,
        name: &str,
        value: Secret,
        content_type: Option<String>,
        tags: Option<Map<String, Value>>,
        attributes: AttributesIn,
    ) -> String {
        let version = uuid::Uuid::new_v4().simple().to_string();
        let at = now();
        self.secrets
            .write()
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

    /// Version `version` of `name`, or its current one.
    pub(super) fn find(&self, name: &str, version: Option<&str>) -> Result<Version, VaultError> {
        let secrets = self.secrets.read();
        let entry = secrets
            .get(name)
            .ok_or_else(|| VaultError::not_found(name))?;
        match version {
            None => entry.versions.last().cloned(),
            Some(v) => entry.versions.iter().find(|x| x.version == v).cloned(),
        }
        .ok_or_else(|| VaultError::not_found(name))
    }

    /// Counts one successful read of `name`'s value.
    pub(super) fn count_read(&self, name: &str) {
        *self.reads.write().entry(name.to_owned()).or_default() += 1;
    }
}
