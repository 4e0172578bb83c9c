//! The one place that builds the HTTP client every Azure SDK client and outbound call uses:
//! extra trusted CAs, timeouts, connection reuse.

use crate::config::{ConfigError, EnvSource};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::variables::EXTRA_CA_CERTS;

/// How long establishing a TCP and TLS connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one whole request, body included, may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle pooled connection is kept for reuse.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Settings for the shared HTTP client.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// CA certificates to trust in addition to the system roots.
    pub extra_ca_certs: Option<PathBuf>,
    /// Connect timeout (TCP + TLS).
    pub connect_timeout: Duration,
    /// Total timeout of one request.
    pub request_timeout: Duration,
    /// Idle time after which a pooled connection is closed.
    pub pool_idle_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            extra_ca_certs: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
        }
    }
}

impl TransportOptions {
    /// Defaults plus `EXTRA_CA_CERTS` from the environment.
    pub fn from_env(env: &dyn EnvSource) -> Self {
        Self {
            extra_ca_certs: env.var(EXTRA_CA_CERTS).map(PathBuf::from),
            ..Self::default()
        }
    }
}

/// Builds the shared client. A bad `EXTRA_CA_CERTS` is a configuration error naming it.
pub fn http_client(options: &TransportOptions) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .pool_idle_timeout(options.pool_idle_timeout)
        .tcp_nodelay(true)
        // Azure REST APIs do not redirect; a redirect is a misconfiguration, not a path to follow
        // with a bearer token attached.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("keyless-azure/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &options.extra_ca_certs {
        builder = builder.tls_certs_merge(load_pem_bundle(path)?);
    }
    builder.build().map_err(|e| {
        ConfigError::new(
            EXTRA_CA_CERTS,
            format!("the HTTP client could not be built with these certificates: {e}"),
        )
    })
}

/// Builds the shared client from the environment.
pub fn http_client_from_env(env: &dyn EnvSource) -> Result<reqwest::Client, ConfigError> {
    http_client(&TransportOptions::from_env(env))
}

/// How many times an Azure SDK call is retried on a transient failure.
pub const AZURE_MAX_RETRIES: u32 = 3;
/// The longest an Azure SDK call keeps retrying. The SDK's own default is a minute, far longer
/// than a caller waits for a request: services answer 503 and let the caller retry instead.
pub const AZURE_MAX_RETRY_ELAPSED: Duration = Duration::from_secs(10);

/// Azure SDK client options that send every request through `client`, with bounded retries.
pub fn azure_client_options(client: &reqwest::Client) -> ClientOptions {
    let retry = ExponentialRetryOptions {
        max_retries: AZURE_MAX_RETRIES,
        initial_delay: azure_core::time::Duration::milliseconds(200),
        max_delay: azure_core::time::Duration::seconds(2),
        max_total_elapsed: azure_core::time::Duration::try_from(AZURE_MAX_RETRY_ELAPSED)
            .expect("a small constant duration"),
    };
    ClientOptions {
        transport: Some(Transport::new(Arc::new(client.clone()))),
        retry: RetryOptions::exponential(retry),
        ..Default::default()
    }
}

fn load_pem_bundle(path: &PathBuf) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::new(EXTRA_CA_CERTS, format!("cannot read {shown}: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        ConfigError::new(EXTRA_CA_CERTS, format!("{shown} is not a PEM bundle: {e}"))
    })?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            EXTRA_CA_CERTS,
            format!("{shown} holds no PEM certificate"),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    #[test]
    fn unreadable_or_empty_ca_file_names_the_variable() {
        let env = MapEnv::new().with(EXTRA_CA_CERTS, "/nonexistent/ca.pem");
        let err = http_client_from_env(&env).unwrap_err();
        assert_eq!(err.variable, EXTRA_CA_CERTS);

        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "not a certificate\n").unwrap();
        let env = MapEnv::new().with(EXTRA_CA_CERTS, file.path().to_str().unwrap());
        let err = http_client_from_env(&env).unwrap_err();
        assert_eq!(err.variable, EXTRA_CA_CERTS);
        assert!(err.problem.contains("no PEM certificate"), "{err}");
    }
}
