//! A Key Vault secret held in memory: fetched with `SecretClient`, kept for a TTL, refreshed in
//! the background before it goes stale, refreshed on demand after the value was rejected
//! upstream (rotation), one fetch at a time however many callers wait (single flight), and the
//! last good value kept in service while Key Vault is briefly unreachable.

use crate::azure_error::AzureCall;
use crate::check_state::CheckState;
use crate::secret::Secret;
use azure_core::credentials::TokenCredential;
use azure_core::http::Url;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Host suffixes of Azure Key Vault and Managed HSM: challenge verification stays on for them.
const AZURE_VAULT_DOMAINS: &[&str] = &[
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
    ".managedhsm.azure.net",
    ".managedhsm.azure.cn",
    ".managedhsm.usgovcloudapi.net",
];

/// Options of a [`SecretCache`]: its HTTP client and its timing.
#[derive(Debug, Clone)]
pub struct SecretCacheOptions {
    /// The Azure SDK's client options: `azure_client_options(&http)` sends every request through
    /// the shared HTTP client (the project's timeouts, trusted CAs and Azure retry policy); the
    /// default is the SDK's own transport.
    pub client_options: azure_core::http::ClientOptions,
    /// How long a fetched value is fresh.
    pub ttl: Duration,
    /// Fraction of the TTL after which the background task refreshes (before anyone waits).
    pub refresh_at: f64,
    /// First retry delay after a failed fetch; doubles up to `max_retry_delay`.
    pub min_retry_delay: Duration,
    /// Longest retry delay.
    pub max_retry_delay: Duration,
    /// With a stale value in hand, how long a caller waits for Key Vault before it is served
    /// that value (a hanging vault then costs a request this, not its whole budget).
    pub stale_patience: Duration,
}

impl Default for SecretCacheOptions {
    fn default() -> Self {
        Self {
            client_options: Default::default(),
            ttl: Duration::from_secs(300),
            refresh_at: 0.8,
            min_retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            stale_patience: Duration::from_secs(1),
        }
    }
}

/// A value handed out, with the generation it belongs to (for [`SecretCache::refresh_after_rejection`]).
#[derive(Debug, Clone)]
pub struct CachedSecret {
    /// The secret.
    pub value: Secret,
    /// Increases by one with every successful fetch.
    pub generation: u64,
}

/// Why no value can be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {name} is unavailable: {reason}")]
pub struct SecretUnavailable {
    /// The secret's name.
    pub name: String,
    /// Why, in words an operator can act on (never the value).
    pub reason: String,
}

struct Loaded {
    value: Secret,
    fetched_at: Instant,
}

#[derive(Default)]
struct State {
    loaded: Option<Loaded>,
    generation: u64,
    last_error: Option<String>,
    /// No fetch on the request path before this instant (after a failure).
    retry_after: Option<Instant>,
    failures: u32,
}

struct Inner {
    client: SecretClient,
    name: String,
    options: SecretCacheOptions,
    state: RwLock<State>,
    single_flight: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

/// The cache; cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct SecretCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache")
            .field("name", &self.inner.name)
            .field("generation", &self.read().generation)
            .finish_non_exhaustive()
    }
}

/// Whether the client must check that a challenge's resource matches the vault's domain: yes for
/// Azure's vault domains, no for any other host (local emulators), which is logged.
pub fn verify_challenge_resource(vault_url: &Url) -> bool {
    let host = vault_url
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let azure = AZURE_VAULT_DOMAINS.iter().any(|d| host.ends_with(d));
    if !azure {
        tracing::info!(
            host = %host,
            "Key Vault host is not an Azure vault domain: challenge resource verification relaxed"
        );
    }
    azure
}

impl SecretCache {
    /// A cache of secret `name` in the vault at `vault_url`, fetched with `credential`. The
    /// secret's name has no default, so it is a required argument after the credential.
    pub fn new(
        vault_url: Url,
        credential: Arc<dyn TokenCredential>,
        name: &str,
        options: Option<SecretCacheOptions>,
    ) -> azure_core::Result<Self> {
        let options = options.unwrap_or_default();
        let client = SecretClient::new(
            vault_url.as_str(),
            credential,
            Some(SecretClientOptions {
                client_options: options.client_options.clone(),
                verify_challenge_resource: Some(verify_challenge_resource(&vault_url)),
                ..Default::default()
            }),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                name: name.to_owned(),
                options,
                state: RwLock::default(),
                single_flight: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    fn read(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.inner.state.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        self.inner.state.write()
    }

    /// The fresh value if there is one.
    fn fresh(&self) -> Option<CachedSecret> {
        let state = self.read();
        let loaded = state.loaded.as_ref()?;
        (loaded.fetched_at.elapsed() < self.inner.options.ttl).then(|| CachedSecret {
            value: loaded.value.clone(),
            generation: state.generation,
        })
    }

    /// The last value, fresh or not.
    fn last(&self) -> Option<CachedSecret> {
        let state = self.read();
        state.loaded.as_ref().map(|l| CachedSecret {
            value: l.value.clone(),
            generation: state.generation,
        })
    }

    /// The secret: cached while fresh; otherwise fetched once for all waiting callers; the last
    /// good value when Key Vault fails or hangs (stale while error: a caller with a stale value
    /// never queues behind a fetch in flight, and waits at most `stale_patience` for its own);
    /// an error only if none was ever loaded.
    pub async fn get(&self) -> Result<CachedSecret, SecretUnavailable> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let stale = self.last();
        let _flight = match (stale.as_ref(), self.inner.single_flight.try_lock()) {
            (_, Ok(flight)) => flight,
            (Some(stale), Err(_)) => return Ok(stale.clone()),
            (None, Err(_)) => self.inner.single_flight.lock().await,
        };
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let backing_off = self.read().retry_after.is_some_and(|t| Instant::now() < t);
        if !backing_off {
            let patience = self.inner.options.stale_patience;
            let fetched = match stale {
                None => self.fetch().await,
                Some(_) => tokio::time::timeout(patience, self.fetch())
                    .await
                    .unwrap_or_else(|_| {
                        Err(self.failed(format!("Key Vault did not answer within {patience:?}")))
                    }),
            };
            match fetched {
                Ok(fetched) => return Ok(fetched),
                Err(e) => {
                    tracing::warn!(secret = %self.inner.name, reason = %e.reason, "secret refresh failed")
                }
            }
        }
        self.last().ok_or_else(|| self.unavailable())
    }

    /// After `rejected` was refused upstream (401/403): fetch a new value unless another caller
    /// already did since that generation. One fetch however many callers ask.
    pub async fn refresh_after_rejection(
        &self,
        rejected_generation: u64,
    ) -> Result<CachedSecret, SecretUnavailable> {
        let _flight = self.inner.single_flight.lock().await;
        if self.read().generation > rejected_generation
            && let Some(newer) = self.last()
        {
            return Ok(newer);
        }
        self.fetch().await
    }

    /// Refreshes now (the background task's step). Holds the single-flight lock.
    pub async fn refresh(&self) -> Result<CachedSecret, SecretUnavailable> {
        let _flight = self.inner.single_flight.lock().await;
        self.fetch().await
    }

    /// Fetches and stores; the caller holds the single-flight lock.
    #[tracing::instrument(name = "keyvault.get_secret", skip_all, fields(otel.kind = "client", secret = %self.inner.name))]
    async fn fetch(&self) -> Result<CachedSecret, SecretUnavailable> {
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.inner.client.get_secret(&self.inner.name, None).await;
        let secret = result
            .and_then(|response| response.into_model())
            .map_err(|e| self.read_call().failed(&e).to_string())
            .and_then(|model| {
                if let Some(expires) = model.attributes.as_ref().and_then(|a| a.expires)
                    && expires < time::OffsetDateTime::now_utc()
                {
                    tracing::warn!(secret = %self.inner.name, %expires, "Key Vault secret is past its expiry date");
                }
                model
                    .value
                    .ok_or_else(|| "Key Vault returned the secret without a value".to_owned())
            });
        match secret {
            Ok(value) => {
                let mut state = self.write();
                state.generation += 1;
                state.loaded = Some(Loaded {
                    value: Secret::new(value),
                    fetched_at: Instant::now(),
                });
                state.last_error = None;
                state.retry_after = None;
                state.failures = 0;
                Ok(CachedSecret {
                    value: state.loaded.as_ref().expect("just set").value.clone(),
                    generation: state.generation,
                })
            }
            Err(reason) => Err(self.failed(reason)),
        }
    }

    /// Records a failed fetch (no fetch on the request path until the back-off ends) and says
    /// why.
    fn failed(&self, reason: String) -> SecretUnavailable {
        let mut state = self.write();
        state.failures = state.failures.saturating_add(1);
        state.retry_after = Some(Instant::now() + self.retry_delay(state.failures));
        state.last_error = Some(reason.clone());
        SecretUnavailable {
            name: self.inner.name.clone(),
            reason,
        }
    }

    fn retry_delay(&self, failures: u32) -> Duration {
        let options = &self.inner.options;
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        options
            .min_retry_delay
            .saturating_mul(factor)
            .min(options.max_retry_delay)
    }

    fn unavailable(&self) -> SecretUnavailable {
        SecretUnavailable {
            name: self.inner.name.clone(),
            reason: self
                .read()
                .last_error
                .clone()
                .unwrap_or_else(|| "not loaded yet".into()),
        }
    }

    /// Passing once a value is loaded (stale or not); failing, and why, while nothing is loaded
    /// and the last fetch failed; pending before any fetch answered.
    pub fn readiness(&self) -> CheckState {
        let state = self.read();
        match (&state.loaded, &state.last_error) {
            (Some(_), _) => CheckState::Passing,
            (None, Some(e)) => CheckState::Failing(e.clone()),
            (None, None) => CheckState::Pending,
        }
    }

    /// The last fetch failure, while a loaded value is served stale or nothing is loaded yet.
    pub fn last_error(&self) -> Option<String> {
        self.read().last_error.clone()
    }

    /// Reading the secret, for errors: a 403 names Key Vault Secrets User on it (a disabled
    /// secret is refused with 403 too, hence the second condition).
    fn read_call(&self) -> AzureCall {
        let name = &self.inner.name;
        AzureCall::new("read", format!("secret {name} from Key Vault")).needs_role(
            crate::role_names::KEY_VAULT_SECRETS_USER,
            format!("secret {name}, and the secret must be enabled"),
        )
    }

    /// How many times Key Vault was asked (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Starts the background task: loads at once (retrying with back-off while Key Vault is
    /// unavailable, so a service started before Key Vault becomes ready by itself), then
    /// refreshes before the value goes stale. Stops when the returned handle is aborted.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = {
                    let state = cache.read();
                    match (&state.loaded, state.retry_after) {
                        (_, Some(retry)) => retry.saturating_duration_since(Instant::now()),
                        (Some(loaded), None) => cache
                            .inner
                            .options
                            .ttl
                            .mul_f64(cache.inner.options.refresh_at)
                            .saturating_sub(loaded.fetched_at.elapsed()),
                        (None, None) => Duration::ZERO,
                    }
                };
                tokio::time::sleep(wait).await;
                if let Err(e) = cache.refresh().await {
                    tracing::warn!(secret = %e.name, reason = %e.reason, "background secret refresh failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_verification_stays_on_for_azure_vaults_only() {
        let check = |u: &str| verify_challenge_resource(&azure_core::http::Url::parse(u).unwrap());
        assert!(check("https://myvault.vault.azure.net"));
        assert!(check("https://MyVault.Vault.Azure.Net/"));
        assert!(check("https://hsm.managedhsm.azure.net"));
        assert!(!check("https://127.0.0.1:8443"));
        assert!(!check("https://keyvault:8443"));
        assert!(!check("https://vault.azure.net.evil.example"));
    }
}
