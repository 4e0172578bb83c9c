//! The call to the third-party API: the key from the Key Vault secret cache in `x-functions-key`,
//! pooled connections, a timeout, a bounded retry with jittered back-off on connection errors and
//! 5xx (none on 4xx, none on a timeout), and one secret refresh after a 401/403, which is how a
//! rotated key is picked up without a restart.

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use service_kit::telemetry::inject_traceparent;
use shared_auth::Secret;
use shared_auth::azure_error::error_chain;
use shared_auth::secret_cache::{SecretCache, SecretUnavailable};
use std::time::Duration;
use tracing::Instrument;

/// Attempts per call when the upstream fails transiently.
pub const MAX_ATTEMPTS: u32 = 3;
/// First back-off delay; doubled each attempt, with ±50 % jitter.
pub const BASE_BACKOFF: Duration = Duration::from_millis(100);

/// Why no number was obtained.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The key was refused, even after fetching it again from Key Vault.
    #[error("the third-party API refused the key")]
    Auth,
    /// The API failed (5xx after retries, unreachable, or an invalid answer).
    #[error("the third-party API failed: {0}")]
    Failed(Failure),
    /// The API did not answer within the timeout.
    #[error("the third-party API timed out")]
    Timeout,
    /// No key could be had from Key Vault.
    #[error(transparent)]
    Secret(#[from] SecretUnavailable),
}

/// Why a call that was answered, or not, gave no number.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The key cannot be sent as a header value.
    #[error("the key is not a valid header value")]
    InvalidKey,
    /// No connection, or it broke before an answer.
    #[error("unreachable: {}", error_chain(.0))]
    Unreachable(reqwest::Error),
    /// An answer with a status that carries no number.
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    /// A 2xx whose body could not be read.
    #[error("body unreadable: {}", error_chain(.0))]
    Body(reqwest::Error),
    /// A 2xx whose body is not `{"value": 1..999}`.
    #[error("answered something other than {{\"value\": 1..999}}")]
    InvalidAnswer,
}

/// Outcome of one HTTP call.
enum Attempt {
    Rejected,
    Timeout,
    Retryable(Failure),
    Fatal(Failure),
}

#[derive(Deserialize)]
struct RandomNumber {
    value: u32,
}

/// Client of the third-party RandomNumber function.
#[derive(Clone)]
pub struct ThirdPartyApi {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    timeout: Duration,
    secrets: SecretCache,
}

impl ThirdPartyApi {
    /// A client calling `endpoint` through `http` with keys from `secrets`.
    pub fn new(
        http: reqwest::Client,
        endpoint: reqwest::Url,
        timeout: Duration,
        secrets: SecretCache,
    ) -> Self {
        Self {
            http,
            endpoint,
            timeout,
            secrets,
        }
    }

    /// A number from 1 to 999.
    #[tracing::instrument(name = "third_party.random_number", skip(self), fields(otel.kind = "client"))]
    pub async fn random_number(&self) -> Result<u32, UpstreamError> {
        let key = self.secrets.get().await?;
        match self.call_with_retries(&key.value).await {
            Err(Attempt::Rejected) => {
                tracing::info!("third-party API refused the key; fetching it again from Key Vault");
                let fresh = self.secrets.refresh_after_rejection(key.generation).await?;
                match self.call_with_retries(&fresh.value).await {
                    Err(Attempt::Rejected) => Err(UpstreamError::Auth),
                    other => other.map_err(into_error),
                }
            }
            other => other.map_err(into_error),
        }
    }

    async fn call_with_retries(&self, key: &Secret) -> Result<u32, Attempt> {
        let mut attempt = 1;
        loop {
            match self.call_once(key).await {
                Err(Attempt::Retryable(reason)) if attempt < MAX_ATTEMPTS => {
                    let delay = jittered(BASE_BACKOFF * 2u32.pow(attempt - 1));
                    tracing::warn!(attempt, reason = %reason, delay_ms = delay.as_millis() as u64, "third-party call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn call_once(&self, key: &Secret) -> Result<u32, Attempt> {
        let span = tracing::info_span!(
            "GET RandomNumber",
            otel.kind = "client",
            http.response.status_code = tracing::field::Empty
        );
        let mut headers = HeaderMap::new();
        inject_traceparent(&span, &mut headers);
        let mut value =
            HeaderValue::from_str(key.expose()).map_err(|_| Attempt::Fatal(Failure::InvalidKey))?;
        value.set_sensitive(true);
        headers.insert(shared_auth::api_key::KEY_HEADER, value);
        let response = self
            .http
            .get(self.endpoint.clone())
            .headers(headers)
            .timeout(self.timeout)
            .send()
            .instrument(span.clone())
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(Attempt::Timeout),
            Err(e) => return Err(Attempt::Retryable(Failure::Unreachable(e))),
        };
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        match status.as_u16() {
            401 | 403 => Err(Attempt::Rejected),
            500..=599 => Err(Attempt::Retryable(Failure::Status(status))),
            200..=299 => {
                let body = response.bytes().await.map_err(|e| {
                    if e.is_timeout() {
                        Attempt::Timeout
                    } else {
                        Attempt::Retryable(Failure::Body(e))
                    }
                })?;
                match serde_json::from_slice::<RandomNumber>(&body) {
                    Ok(n) if (1..=999).contains(&n.value) => Ok(n.value),
                    _ => Err(Attempt::Fatal(Failure::InvalidAnswer)),
                }
            }
            _ => Err(Attempt::Fatal(Failure::Status(status))),
        }
    }
}

fn into_error(attempt: Attempt) -> UpstreamError {
    match attempt {
        Attempt::Rejected => UpstreamError::Auth,
        Attempt::Timeout => UpstreamError::Timeout,
        Attempt::Retryable(reason) | Attempt::Fatal(reason) => UpstreamError::Failed(reason),
    }
}

/// `base` scaled by a random factor in [0.5, 1.5): retries from many replicas do not align.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.5..1.5))
}
