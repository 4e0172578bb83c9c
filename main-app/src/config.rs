//! Settings of main-app, read once from the environment with the Python sample's names.

use codes::envelope::MessageEncoding;
use service_kit::service::settings::{bind_address, parsed_in, port, seconds};
use service_kit::telemetry::IncomingTrace;
use shared_auth::config::{http_url, https_url};
use shared_auth::{ConfigError, EnvSource};
use std::net::IpAddr;
use std::time::Duration;

use codes::variables::{CODE_LEDGER_URL, STORAGE_QUEUE_URL};
use service_kit::service::settings::{BIND_ADDRESS, PORT};
use shared_auth::variables::{
    DEFAULT_SECRET_NAME, KEY_VAULT_URL, SECRET_CACHE_TTL_SECONDS, THIRD_PARTY_API_ENDPOINT,
    THIRD_PARTY_API_SECRET_NAME,
};

/// Seconds a code stays valid.
pub const CODE_TTL_SECONDS: &str = "CODE_TTL_SECONDS";
/// Total time allowed for one call to the third-party API.
pub const THIRD_PARTY_API_TIMEOUT_SECONDS: &str = "THIRD_PARTY_API_TIMEOUT_SECONDS";
/// The most one request may take, whatever hangs behind it (Key Vault, identity, the
/// third-party API, Storage); past it the answer is 503 with `Retry-After`.
pub const REQUEST_TIMEOUT_SECONDS: &str = "REQUEST_TIMEOUT_SECONDS";

/// How many getcode and verify requests work on their dependencies at once; more wait for a
/// turn within their budget. It bounds the connections (and so the memory) a replica holds to
/// each dependency; a replica's capacity beyond it comes from scaling out.
pub const MAX_CONCURRENT_REQUESTS: &str = "MAX_CONCURRENT_REQUESTS";

/// What main-app, a public endpoint, does with a caller's `traceparent`: `link` (the default:
/// each request starts a trace of its own, linked to the caller's, so no caller chooses this
/// system's trace ids or sampling) or `continue` (the request joins the caller's trace: for a
/// trusted front end that starts the traces).
pub const INCOMING_TRACEPARENT: &str = "INCOMING_TRACEPARENT";

/// Every variable main-app reads itself (identity: `shared_auth::variables::COMMON_VARIABLES`; telemetry:
/// `service_kit::telemetry::VARIABLES`).
pub const VARIABLES: &[&str] = &[
    THIRD_PARTY_API_ENDPOINT,
    KEY_VAULT_URL,
    THIRD_PARTY_API_SECRET_NAME,
    STORAGE_QUEUE_URL,
    CODE_LEDGER_URL,
    CODE_TTL_SECONDS,
    SECRET_CACHE_TTL_SECONDS,
    THIRD_PARTY_API_TIMEOUT_SECONDS,
    REQUEST_TIMEOUT_SECONDS,
    MAX_CONCURRENT_REQUESTS,
    INCOMING_TRACEPARENT,
    PORT,
    BIND_ADDRESS,
    codes::envelope::QUEUE_MESSAGE_ENCODING,
];

/// Default of [`SECRET_CACHE_TTL_SECONDS`]: a rotated key is in use within five minutes (at
/// once on a 401, since the old key is refused).
pub const DEFAULT_SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// Default of [`PORT`].
pub const DEFAULT_PORT: u16 = 8080;
/// Default code lifetime.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(600);
/// Default request budget.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of a third-party call.
pub const DEFAULT_THIRD_PARTY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`MAX_CONCURRENT_REQUESTS`] (BENCHMARKS.md): at 64 connections, 16 keep main-app
/// at 16.5 MiB resident (23.4 unbounded) with its baseline's throughput; 8 saved 1 MiB more and
/// cost a fifth of it.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 16;
/// Longest code lifetime: what one delayed queue message can cover, 7 days.
pub const MAX_CODE_TTL: Duration = codes::envelope::MAX_CODE_TTL;

/// Everything main-app reads from its environment (identity variables are read by
/// `shared-auth::credential`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listening address.
    pub bind_address: IpAddr,
    /// Listening port; 0 picks one.
    pub port: u16,
    /// The third-party function URL.
    pub third_party_api_endpoint: reqwest::Url,
    /// Timeout of one third-party call.
    pub third_party_timeout: Duration,
    /// The most one request may take.
    pub request_timeout: Duration,
    /// How many requests work on their dependencies at once.
    pub max_concurrent_requests: usize,
    /// The vault URL.
    pub key_vault_url: reqwest::Url,
    /// The secret's name.
    pub secret_name: String,
    /// The queue URL.
    pub queue_url: reqwest::Url,
    /// The ledger container URL.
    pub ledger_url: reqwest::Url,
    /// How long a code is valid.
    pub code_ttl: Duration,
    /// How long the third-party key read from Key Vault is used before it is read again.
    pub secret_cache_ttl: Duration,
    /// Queue message encoding.
    pub encoding: MessageEncoding,
    /// What a caller's `traceparent` does.
    pub incoming_trace: IncomingTrace,
}

impl Settings {
    /// Reads and validates the settings; an error names the variable at fault.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let positive = |name, default| seconds(env, name, default, 1..);
        let code_ttl_range = 1..=MAX_CODE_TTL.as_secs();
        Ok(Self {
            bind_address: bind_address(env)?,
            port: port(env, DEFAULT_PORT)?,
            third_party_api_endpoint: http_url(env, THIRD_PARTY_API_ENDPOINT)?,
            third_party_timeout: positive(
                THIRD_PARTY_API_TIMEOUT_SECONDS,
                DEFAULT_THIRD_PARTY_TIMEOUT,
            )?,
            request_timeout: positive(REQUEST_TIMEOUT_SECONDS, DEFAULT_REQUEST_TIMEOUT)?,
            max_concurrent_requests: parsed_in(
                env,
                MAX_CONCURRENT_REQUESTS,
                DEFAULT_MAX_CONCURRENT_REQUESTS,
                1..=1024,
            )?,
            key_vault_url: https_url(env, KEY_VAULT_URL)?,
            secret_name: env
                .var(THIRD_PARTY_API_SECRET_NAME)
                .unwrap_or_else(|| DEFAULT_SECRET_NAME.to_owned()),
            queue_url: codes::queues::queue_url(env)?,
            ledger_url: https_url(env, CODE_LEDGER_URL)?,
            code_ttl: seconds(env, CODE_TTL_SECONDS, DEFAULT_CODE_TTL, code_ttl_range)?,
            secret_cache_ttl: positive(SECRET_CACHE_TTL_SECONDS, DEFAULT_SECRET_CACHE_TTL)?,
            encoding: MessageEncoding::from_env(env)?,
            incoming_trace: env.parsed_or(INCOMING_TRACEPARENT, IncomingTrace::Link)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::MapEnv;

    fn complete() -> MapEnv {
        MapEnv::new()
            .with(
                THIRD_PARTY_API_ENDPOINT,
                "http://127.0.0.1:7071/api/RandomNumber",
            )
            .with(KEY_VAULT_URL, "https://myvault.vault.azure.net")
            .with(
                STORAGE_QUEUE_URL,
                "https://acct.queue.core.windows.net/code-requests",
            )
            .with(CODE_LEDGER_URL, "https://acct.blob.core.windows.net/codes")
    }

    #[test]
    fn a_callers_trace_is_linked_unless_told_to_continue_it() {
        let linked = Settings::from_env(&complete()).unwrap();
        assert_eq!(linked.incoming_trace, IncomingTrace::Link);
        let continued =
            Settings::from_env(&complete().with(INCOMING_TRACEPARENT, "continue")).unwrap();
        assert_eq!(continued.incoming_trace, IncomingTrace::Continue);
        let err = Settings::from_env(&complete().with(INCOMING_TRACEPARENT, "follow")).unwrap_err();
        assert!(err.to_string().contains(INCOMING_TRACEPARENT), "{err}");
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_env(&complete()).unwrap();
        assert_eq!(s.port, 8080);
        assert_eq!(s.secret_name, "third-party-api-key");
        assert_eq!(s.code_ttl, DEFAULT_CODE_TTL);
        assert_eq!(s.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(s.max_concurrent_requests, DEFAULT_MAX_CONCURRENT_REQUESTS);
        assert_eq!(s.encoding, MessageEncoding::Base64);
    }

    #[test]
    fn each_missing_or_malformed_variable_is_named() {
        for name in [
            THIRD_PARTY_API_ENDPOINT,
            KEY_VAULT_URL,
            STORAGE_QUEUE_URL,
            CODE_LEDGER_URL,
        ] {
            let err = Settings::from_env(&complete().with(name, "")).unwrap_err();
            assert_eq!(err.variable, name);
            let err = Settings::from_env(&complete().with(name, "not a url")).unwrap_err();
            assert_eq!(err.variable, name);
        }
        for (name, value) in [
            (KEY_VAULT_URL, "http://myvault.vault.azure.net"),
            (STORAGE_QUEUE_URL, "http://acct.queue.core.windows.net/q"),
            (CODE_TTL_SECONDS, "0"),
            (CODE_TTL_SECONDS, "ten"),
            (CODE_TTL_SECONDS, "999999999"),
            (THIRD_PARTY_API_TIMEOUT_SECONDS, "-1"),
            (REQUEST_TIMEOUT_SECONDS, "0"),
            (REQUEST_TIMEOUT_SECONDS, "soon"),
            (MAX_CONCURRENT_REQUESTS, "0"),
            (MAX_CONCURRENT_REQUESTS, "many"),
            (MAX_CONCURRENT_REQUESTS, "5000"),
            (PORT, "99999"),
            ("QUEUE_MESSAGE_ENCODING", "gzip"),
        ] {
            let err = Settings::from_env(&complete().with(name, value)).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
        }
    }
}
