//! The last good token per scope set, served while a refresh fails and it is still valid.
//!
//! The `azure_identity` credentials cache a token and refresh it in its last five minutes; when
//! that refresh fails (the identity endpoint down or stalled) they return the error although the
//! token in hand is good for minutes more. [`LastGoodToken`] wraps any credential: a refresh
//! that fails, or that takes longer than [`REFRESH_PATIENCE`] while a valid token is held,
//! yields that token and a warning instead of failing the caller's request; for
//! [`RETRY_REFRESH_AFTER`] after such a failure the held token is served without asking again,
//! so an outage costs no request any latency and the endpoint is not hammered.

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// How long a refresh may take while a still-valid token could be served instead.
pub const REFRESH_PATIENCE: Duration = Duration::from_secs(3);
/// After a failed refresh, the held token is served without a new attempt for this long.
pub const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(5);
/// A cached token is served only while it has at least this much life left.
pub const MIN_REMAINING: Duration = Duration::from_secs(30);

/// A credential that falls back to its last good, unexpired token when a refresh fails.
#[derive(Debug)]
pub struct LastGoodToken {
    inner: Arc<dyn TokenCredential>,
    tokens: Mutex<HashMap<Vec<String>, Held>>,
}

#[derive(Debug, Clone)]
struct Held {
    token: AccessToken,
    failed_at: Option<tokio::time::Instant>,
}

impl LastGoodToken {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn TokenCredential>) -> Self {
        Self {
            inner,
            tokens: Mutex::default(),
        }
    }

    fn usable(&self, key: &[String]) -> Option<Held> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(key)
            .filter(|h| h.token.expires_on > OffsetDateTime::now_utc() + MIN_REMAINING)
            .cloned()
    }

    fn store(&self, key: Vec<String>, token: AccessToken, failed_at: Option<tokio::time::Instant>) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Held { token, failed_at });
    }
}

#[async_trait::async_trait]
impl TokenCredential for LastGoodToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let key: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let held = self.usable(&key);
        if let Some(held) = &held
            && held
                .failed_at
                .is_some_and(|t| t.elapsed() < RETRY_REFRESH_AFTER)
        {
            return Ok(held.token.clone());
        }
        let fetch = self.inner.get_token(scopes, options);
        let fetched = match &held {
            Some(_) => match tokio::time::timeout(REFRESH_PATIENCE, fetch).await {
                Ok(result) => result,
                Err(_) => Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    format!("the token refresh took longer than {REFRESH_PATIENCE:?}"),
                )),
            },
            None => fetch.await,
        };
        match (fetched, held) {
            (Ok(token), _) => {
                self.store(key, token.clone(), None);
                Ok(token)
            }
            (Err(e), Some(held)) => {
                tracing::warn!(
                    scopes = ?scopes,
                    expires_on = %held.token.expires_on,
                    error = %crate::azure_error::error_chain(&e),
                    "token refresh failed; serving the last good token while it is valid"
                );
                self.store(key, held.token.clone(), Some(tokio::time::Instant::now()));
                Ok(held.token)
            }
            (Err(e), None) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fault injection: answers from a script of outcomes, then hangs.
    #[derive(Debug)]
    struct Scripted {
        outcomes: Mutex<Vec<Option<time::Duration>>>,
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Scripted {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.outcomes.lock().unwrap().get(n).cloned();
            match next {
                Some(Some(life)) => Ok(AccessToken::new(
                    format!("token-{n}"),
                    OffsetDateTime::now_utc() + life,
                )),
                Some(None) => Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "identity endpoint down",
                )),
                None => std::future::pending().await,
            }
        }
    }

    fn scripted(outcomes: Vec<Option<time::Duration>>) -> LastGoodToken {
        LastGoodToken::new(Arc::new(Scripted {
            outcomes: Mutex::new(outcomes),
            calls: AtomicUsize::new(0),
        }))
    }

    const SCOPE: &[&str] = &["https://storage.azure.com/.default"];

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_serves_the_valid_token_and_a_later_success_replaces_it() {
        let credential = scripted(vec![
            Some(time::Duration::minutes(4)),
            None,
            Some(time::Duration::hours(1)),
        ]);
        let first = credential.get_token(SCOPE, None).await.unwrap();
        let during_outage = credential.get_token(SCOPE, None).await.unwrap();
        assert_eq!(during_outage.token.secret(), first.token.secret());
        // Within the back-off the held token is served without asking (the script is not
        // consumed: the next answer is still the good one).
        let again = credential.get_token(SCOPE, None).await.unwrap();
        assert_eq!(again.token.secret(), first.token.secret());
        tokio::time::advance(RETRY_REFRESH_AFTER).await;
        let after = credential.get_token(SCOPE, None).await.unwrap();
        assert_eq!(after.token.secret(), "token-2");
    }

    #[tokio::test]
    async fn without_a_valid_token_the_error_is_returned() {
        // Nothing cached yet.
        let credential = scripted(vec![None]);
        assert!(credential.get_token(SCOPE, None).await.is_err());
        // Cached, but with less than MIN_REMAINING left.
        let credential = scripted(vec![Some(time::Duration::seconds(10)), None]);
        credential.get_token(SCOPE, None).await.unwrap();
        assert!(credential.get_token(SCOPE, None).await.is_err());
        // Another scope set has its own token.
        let credential = scripted(vec![Some(time::Duration::minutes(4)), None]);
        credential.get_token(SCOPE, None).await.unwrap();
        let other = ["https://vault.azure.net/.default"];
        assert!(credential.get_token(&other, None).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_refresh_serves_the_valid_token_after_the_patience() {
        // The script ends after the first token: every later call hangs.
        let credential = scripted(vec![Some(time::Duration::minutes(4))]);
        let first = credential.get_token(SCOPE, None).await.unwrap();
        let started = tokio::time::Instant::now();
        let served = credential.get_token(SCOPE, None).await.unwrap();
        assert_eq!(served.token.secret(), first.token.secret());
        assert_eq!(started.elapsed(), REFRESH_PATIENCE);
    }
}
