//! Settings of third-party-api, read once from the environment.

use crate::key_store::{KeyError, KeyName, KeyValue};
use service_kit::request_body::BodyLimits;
use service_kit::service::ServerOptions;
use service_kit::service::settings::{bind_address, port, seconds};
use shared_auth::config::https_url;
use shared_auth::{ConfigError, EnvSource};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use service_kit::service::settings::{BIND_ADDRESS, PORT};
use shared_auth::variables::{
    DEFAULT_MASTER_KEY_SECRET_NAME, KEY_VAULT_URL, THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
    THIRD_PARTY_API_KEYS_URL, THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
};

/// The JSON key store.
pub const THIRD_PARTY_API_KEYS_FILE: &str = "THIRD_PARTY_API_KEYS_FILE";
/// Master key for a new store.
pub const THIRD_PARTY_API_MASTER_KEY: &str = "THIRD_PARTY_API_MASTER_KEY";
/// Function keys for a new store: `name=value,name=value`.
pub const THIRD_PARTY_API_FUNCTION_KEYS: &str = "THIRD_PARTY_API_FUNCTION_KEYS";
/// One function key value for a new store, named `default` (what a Key Vault reference gives).
pub const THIRD_PARTY_API_FUNCTION_KEY: &str = "THIRD_PARTY_API_FUNCTION_KEY";
/// Default of [`THIRD_PARTY_API_KEYS_REFRESH_SECONDS`].
pub const DEFAULT_KEYS_REFRESH: Duration = Duration::from_secs(10);

/// Every variable third-party-api reads itself (identity: `shared_auth::variables::COMMON_VARIABLES`; telemetry:
/// `service_kit::telemetry::VARIABLES`).
pub const VARIABLES: &[&str] = &[
    PORT,
    BIND_ADDRESS,
    THIRD_PARTY_API_KEYS_FILE,
    THIRD_PARTY_API_MASTER_KEY,
    THIRD_PARTY_API_FUNCTION_KEYS,
    THIRD_PARTY_API_FUNCTION_KEY,
    THIRD_PARTY_API_KEYS_URL,
    THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
    KEY_VAULT_URL,
    THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
];

/// Default port, the Azure Functions host's.
pub const DEFAULT_PORT: u16 = 7071;
/// Default key store location, relative to the working directory.
pub const DEFAULT_KEYS_FILE: &str = ".third-party-api/keys.json";

/// What a body may be (admin `PUT`s are a few hundred bytes): 16 KiB, within 10 s.
pub const BODY_LIMITS: BodyLimits = BodyLimits {
    max_bytes: 16 * 1024,
    timeout: Duration::from_secs(10),
};

/// Where the keys are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStoreLocation {
    /// A local file (one process).
    File(PathBuf),
    /// One blob shared by every replica.
    Blob(azure_core::http::Url),
}

/// The Key Vault secret holding the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeySecret {
    /// The vault (`https://<name>.vault.azure.net/`).
    pub vault_url: reqwest::Url,
    /// The secret's name.
    pub secret_name: String,
}

/// Everything third-party-api reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listening address.
    pub bind_address: IpAddr,
    /// Listening port; 0 picks a free one (tests).
    pub port: u16,
    /// Where keys persist.
    pub key_store: KeyStoreLocation,
    /// How often the blob store and the master key are read again.
    pub keys_refresh: Duration,
    /// The master key's secret, when it lives in Key Vault.
    pub master_key_secret: Option<MasterKeySecret>,
    /// Seed for the master key of a new store; generated when absent.
    pub seed_master_key: Option<KeyValue>,
    /// Seed for the function keys of a new store; one generated `default` key when empty.
    pub seed_function_keys: Vec<(KeyName, KeyValue)>,
    /// The HTTP server's timeouts and keep-alive (the service skeleton's defaults).
    pub server: ServerOptions,
    /// What an admin body may be ([`BODY_LIMITS`]).
    pub body: BodyLimits,
}

impl Settings {
    /// Reads and validates the settings; an error names the variable at fault.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let seed_master_key = env
            .var(THIRD_PARTY_API_MASTER_KEY)
            .map(|v| {
                KeyValue::parse(&v)
                    .map_err(|why| ConfigError::new(THIRD_PARTY_API_MASTER_KEY, why.to_string()))
            })
            .transpose()?;
        let mut seed_function_keys = match env.var(THIRD_PARTY_API_FUNCTION_KEYS) {
            Some(list) => parse_key_list(&list)
                .map_err(|why| ConfigError::new(THIRD_PARTY_API_FUNCTION_KEYS, why.to_string()))?,
            None => Vec::new(),
        };
        if let Some(value) = env.var(THIRD_PARTY_API_FUNCTION_KEY) {
            let value = KeyValue::parse(value.trim())
                .map_err(|why| ConfigError::new(THIRD_PARTY_API_FUNCTION_KEY, why.to_string()))?;
            let name = KeyName::default_key();
            if seed_function_keys.iter().any(|(n, _)| n == &name) {
                return Err(ConfigError::new(
                    THIRD_PARTY_API_FUNCTION_KEY,
                    "THIRD_PARTY_API_FUNCTION_KEYS already names a `default` key",
                ));
            }
            seed_function_keys.push((name, value));
        }
        Ok(Self {
            bind_address: bind_address(env)?,
            port: port(env, DEFAULT_PORT)?,
            key_store: key_store_location(env)?,
            keys_refresh: seconds(
                env,
                THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
                DEFAULT_KEYS_REFRESH,
                1..=3600,
            )?,
            master_key_secret: master_key_secret(env)?,
            seed_master_key,
            seed_function_keys,
            server: ServerOptions::default(),
            body: BODY_LIMITS,
        })
    }
}

/// The file or the blob; both set is an error, as a blob URL that is not `https` or names no blob.
fn key_store_location(env: &dyn EnvSource) -> Result<KeyStoreLocation, ConfigError> {
    let file = env.var(THIRD_PARTY_API_KEYS_FILE);
    if env.var(THIRD_PARTY_API_KEYS_URL).is_none() {
        return Ok(KeyStoreLocation::File(
            file.unwrap_or_else(|| DEFAULT_KEYS_FILE.to_owned()).into(),
        ));
    }
    if file.is_some() {
        return Err(ConfigError::new(
            THIRD_PARTY_API_KEYS_URL,
            format!("set it or {THIRD_PARTY_API_KEYS_FILE}, not both"),
        ));
    }
    let url = https_url(env, THIRD_PARTY_API_KEYS_URL)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            THIRD_PARTY_API_KEYS_URL,
            "must not carry a query (no SAS: the app's identity reads the blob)",
        ));
    }
    let segments = url
        .path_segments()
        .map_or(0, |s| s.filter(|x| !x.is_empty()).count());
    if segments < 2 || url.path().ends_with('/') {
        return Err(ConfigError::new(
            THIRD_PARTY_API_KEYS_URL,
            "must name a blob: https://<account>.blob.core.windows.net/<container>/<blob>",
        ));
    }
    Ok(KeyStoreLocation::Blob(url))
}

/// The master key's secret when [`KEY_VAULT_URL`] is set; then no master key seed is allowed.
fn master_key_secret(env: &dyn EnvSource) -> Result<Option<MasterKeySecret>, ConfigError> {
    if env.var(KEY_VAULT_URL).is_none() {
        return Ok(None);
    }
    let vault_url = https_url(env, KEY_VAULT_URL)?;
    if env.var(THIRD_PARTY_API_MASTER_KEY).is_some() {
        return Err(ConfigError::new(
            THIRD_PARTY_API_MASTER_KEY,
            format!("the master key comes from Key Vault when {KEY_VAULT_URL} is set; unset it"),
        ));
    }
    let secret_name = env
        .var(THIRD_PARTY_API_MASTER_KEY_SECRET_NAME)
        .unwrap_or_else(|| DEFAULT_MASTER_KEY_SECRET_NAME.to_owned());
    let valid_name = !secret_name.is_empty()
        && secret_name.len() <= 127
        && secret_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_name {
        return Err(ConfigError::new(
            THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
            "a Key Vault secret name has 1 to 127 letters, digits and `-`",
        ));
    }
    Ok(Some(MasterKeySecret {
        vault_url,
        secret_name,
    }))
}

/// Parses `name=value,name=value`; the error never quotes a value.
fn parse_key_list(list: &str) -> Result<Vec<(KeyName, KeyValue)>, String> {
    let mut keys: Vec<(KeyName, KeyValue)> = Vec::new();
    for (position, item) in list.split(',').map(str::trim).enumerate() {
        let entry = position + 1;
        let invalid = |reason: KeyError| format!("entry {entry}: {reason}");
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("entry {entry} is not `name=value`"))?;
        let name = KeyName::parse(name.trim()).map_err(invalid)?;
        let value = KeyValue::parse(value.trim()).map_err(invalid)?;
        if keys.iter().any(|(n, _)| n == &name) {
            return Err(format!(
                "entry {entry}: its key name is used by an earlier entry"
            ));
        }
        keys.push((name, value));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests;
