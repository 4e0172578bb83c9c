//! The last good token per scope set, served while a refresh fails and it is still valid.
//!
//! The `azure_identity` credentials cache a token and refresh it in its last five minutes; when
//! that refresh fails (the identity endpoint down or stalled) they return the error although the
//! token in hand is good for minutes more. [`LastGoodToken`] wraps any credential: a refresh
//! that fails, or that takes longer than [`REFRESH_PATIENCE`] while a valid token is held,
//! yields that token and a warning instead of failing the caller's request; for
//! [`RETRY_REFRESH_AFTER`] after a refresh started (or failed) the held token is served without
//! asking again, so an outage costs no request more than the patience and the endpoint is not
//! hammered. The refresh runs as its own task: a caller that gives up (its request's deadline)
//! does not cancel it, and its outcome is recorded for the next callers.

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;

/// How long a refresh may take while a still-valid token could be served instead.
pub const REFRESH_PATIENCE: Duration = Duration::from_secs(1);
/// After a refresh started or failed, the held token is served without a new attempt this long.
pub const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(5);
/// A cached token is served only while it has at least this much life left.
pub const MIN_REMAINING: Duration = Duration::from_secs(30);

/// Tokens held, per scope set.
type Tokens = Arc<Mutex<HashMap<Vec<String>, Held>>>;

/// A credential that falls back to its last good, unexpired token when a refresh fails.
#[derive(Debug)]
pub struct LastGoodToken {
    inner: Arc<dyn TokenCredential>,
    tokens: Tokens,
}

#[derive(Debug, Clone)]
struct Held {
    token: AccessToken,
    /// When the last refresh started or failed; `None` once one succeeded.
    attempted_at: Option<Instant>,
}

impl LastGoodToken {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn TokenCredential>) -> Self {
        Self {
            inner,
            tokens: Tokens::default(),
        }
    }

    fn usable(&self, key: &[String]) -> Option<Held> {
        let tokens = self.tokens.lock();
        tokens
            .get(key)
            .filter(|h| h.token.expires_on > OffsetDateTime::now_utc() + MIN_REMAINING)
            .cloned()
    }

    /// Stores `token` as the one to serve for `key`, a refresh having just succeeded.
    fn store(tokens: &Tokens, key: Vec<String>, token: AccessToken) {
        let held = Held {
            token,
            attempted_at: None,
        };
        tokens.lock().insert(key, held);
    }

    /// Marks a refresh of `key` as started or failed now: the held token is served meanwhile.
    fn mark_attempt(tokens: &Tokens, key: &[String]) {
        if let Some(held) = tokens.lock().get_mut(key) {
            held.attempted_at = Some(Instant::now());
        }
    }

    /// Refreshes `key` in a task of its own, recording the outcome whoever waits for it.
    fn spawn_refresh(&self, key: Vec<String>) -> tokio::task::JoinHandle<azure_core::Result<()>> {
        let (inner, tokens) = (self.inner.clone(), self.tokens.clone());
        tokio::spawn(async move {
            let scopes: Vec<&str> = key.iter().map(String::as_str).collect();
            match inner.get_token(&scopes, None).await {
                Ok(token) => {
                    Self::store(&tokens, key, token);
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(
                        scopes = ?scopes,
                        error = %crate::azure_error::error_chain(&e),
                        "token refresh failed; serving the last good token while it is valid"
                    );
                    Self::mark_attempt(&tokens, &key);
                    Err(e)
                }
            }
        })
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
        let Some(held) = self.usable(&key) else {
            // Nothing to fall back on: the caller waits for the credential itself.
            let token = self.inner.get_token(scopes, options).await?;
            Self::store(&self.tokens, key, token.clone());
            return Ok(token);
        };
        if held
            .attempted_at
            .is_some_and(|t| t.elapsed() < RETRY_REFRESH_AFTER)
        {
            return Ok(held.token);
        }
        // Marked before it starts: callers meanwhile, and after this one gives up, are served
        // the held token instead of waiting in turn.
        Self::mark_attempt(&self.tokens, &key);
        let refresh = self.spawn_refresh(key.clone());
        match tokio::time::timeout(REFRESH_PATIENCE, refresh).await {
            Ok(Ok(Ok(()))) => Ok(self.usable(&key).map_or(held.token, |h| h.token)),
            // The failure is logged by the refresh itself.
            Ok(Ok(Err(_))) => Ok(held.token),
            Ok(Err(join)) => {
                tracing::warn!(error = %join, "token refresh task failed; serving the last good token");
                Ok(held.token)
            }
            Err(_) => {
                tracing::warn!(
                    scopes = ?scopes,
                    expires_on = %held.token.expires_on,
                    "token refresh is taking longer than {REFRESH_PATIENCE:?}; serving the last good token while it is valid"
                );
                Ok(held.token)
            }
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
            let next = self.outcomes.lock().get(n).cloned();
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

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_leaves_the_next_ones_served_at_once() {
        // Every refresh after the first token hangs; each caller allows itself less than the
        // patience, as a request with a short budget does.
        let credential = scripted(vec![Some(time::Duration::minutes(4))]);
        let first = credential.get_token(SCOPE, None).await.unwrap();
        let short = REFRESH_PATIENCE / 2;
        let gave_up = tokio::time::timeout(short, credential.get_token(SCOPE, None)).await;
        assert!(gave_up.is_err(), "the first caller waits on the refresh");
        let started = tokio::time::Instant::now();
        let next = tokio::time::timeout(short, credential.get_token(SCOPE, None))
            .await
            .expect("served without waiting")
            .unwrap();
        assert_eq!(next.token.secret(), first.token.secret());
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_during_a_refresh_start_only_one() {
        let inner = Arc::new(Scripted {
            outcomes: Mutex::new(vec![
                Some(time::Duration::minutes(4)),
                Some(time::Duration::hours(1)),
            ]),
            calls: AtomicUsize::new(0),
        });
        let credential = LastGoodToken::new(inner.clone());
        credential.get_token(SCOPE, None).await.unwrap();
        let (a, b) = tokio::join!(
            credential.get_token(SCOPE, None),
            credential.get_token(SCOPE, None)
        );
        let secrets = [a.unwrap(), b.unwrap()].map(|t| t.token.secret().to_owned());
        assert!(secrets.contains(&"token-1".to_owned()), "{secrets:?}");
        assert_eq!(
            inner.calls.load(Ordering::SeqCst),
            2,
            "one refresh, not two"
        );
    }
}
