//! The Key Vault secret cache against devstack's Key Vault emulator: TTL, forced refresh, single
//! flight under 100 concurrent callers, stale-while-error and while Key Vault hangs, recovery
//! without restart.

use azure_security_keyvault_secrets::models::SetSecretParameters;
use devstack::rbac::{Role, Scope};
use devstack::stack::SECRET_NAME;
use devstack::stack::{Identity, Principal};
use shared_auth::CheckState;
use shared_auth::secret_cache::{SecretCache, SecretCacheOptions};
use shared_auth::transport::azure_client_options;
use std::time::Duration;
use test_kit::clients::secret_client;
use test_kit::{TestStack, eventually, start_stack};

fn cache(stack: &TestStack, ttl: Duration) -> SecretCache {
    SecretCache::new(
        stack.urls.key_vault.parse().unwrap(),
        stack.credential(Identity::MainApp).unwrap(),
        SECRET_NAME,
        Some(SecretCacheOptions {
            client_options: azure_client_options(stack.http()),
            ttl,
            min_retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_millis(200),
            ..Default::default()
        }),
    )
    .unwrap()
}

async fn rotate(stack: &TestStack, value: &str) {
    secret_client(stack, Principal::Devstack)
        .set_secret(
            SECRET_NAME,
            SetSecretParameters {
                value: Some(value.into()),
                ..Default::default()
            }
            .try_into()
            .unwrap(),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn values_are_cached_for_the_ttl_then_fetched_again() {
    let stack = start_stack(&[]).await;
    let cache = cache(&stack, Duration::from_millis(400));
    let first = cache.get().await.unwrap();
    assert_eq!(first.value.expose(), stack.third_party_api_key().expose());
    cache.get().await.unwrap();
    assert_eq!(cache.fetch_count(), 1);
    rotate(&stack, "rotated-value-0123456789").await;
    assert_eq!(
        cache.get().await.unwrap().value.expose(),
        first.value.expose(),
        "still cached"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = cache.get().await.unwrap();
    assert_eq!(second.value.expose(), "rotated-value-0123456789");
    assert_eq!(cache.fetch_count(), 2);
    assert_eq!(second.generation, first.generation + 1);
}

#[tokio::test]
async fn a_hundred_concurrent_callers_cause_one_fetch_and_a_rejection_one_refresh() {
    let stack = start_stack(&[]).await;
    let cache = cache(&stack, Duration::from_secs(300));
    let results = futures::future::join_all((0..100).map(|_| cache.get())).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(cache.fetch_count(), 1);
    let generation = results[0].as_ref().unwrap().generation;

    rotate(&stack, "after-rotation-0123456789").await;
    let refreshed =
        futures::future::join_all((0..100).map(|_| cache.refresh_after_rejection(generation)))
            .await;
    assert!(
        refreshed
            .iter()
            .all(|r| r.as_ref().unwrap().value.expose() == "after-rotation-0123456789")
    );
    assert_eq!(
        cache.fetch_count(),
        2,
        "one refresh for all rejected callers"
    );
}

#[tokio::test]
async fn the_last_good_value_is_served_while_key_vault_refuses_then_it_recovers() {
    let stack = start_stack(&[]).await;
    let cache = cache(&stack, Duration::from_millis(200));
    let good = cache.get().await.unwrap();
    let scope = Scope::Secret(SECRET_NAME.into());
    assert!(stack.revoke(Identity::MainApp, Role::KeyVaultSecretsUser, &scope));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stale = cache.get().await.unwrap();
    assert_eq!(stale.value.expose(), good.value.expose());
    assert_eq!(cache.readiness(), CheckState::Passing, "ready while stale");
    match cache.last_error() {
        Some(e) => assert!(e.contains("Secrets User"), "{e}"),
        None => panic!("expected the refresh failure kept while stale"),
    }

    stack.grant(Identity::MainApp, Role::KeyVaultSecretsUser, scope);
    rotate(&stack, "fresh-after-recovery-0123").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = cache.get().await.unwrap();
    assert_eq!(fresh.value.expose(), "fresh-after-recovery-0123");
    assert_eq!(cache.readiness(), CheckState::Passing);
    assert_eq!(cache.last_error(), None);
}

#[tokio::test]
async fn a_hanging_key_vault_costs_a_caller_with_a_stale_value_at_most_the_patience() {
    let stack = start_stack(&[]).await;
    let cache = cache(&stack, Duration::from_millis(200));
    let good = cache.get().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.vault.stall().set(true);
    let patience = SecretCacheOptions::default().stale_patience;

    // The first caller fetches, waits its patience, is served the stale value.
    let started = std::time::Instant::now();
    let (first, second) = tokio::join!(cache.get(), async {
        // Asks while the first one's fetch hangs: served at once, not queued behind it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = std::time::Instant::now();
        (cache.get().await, asked.elapsed())
    });
    let waited = started.elapsed();
    assert_eq!(first.unwrap().value.expose(), good.value.expose());
    assert!(waited >= patience, "{waited:?}");
    assert!(waited < patience + Duration::from_secs(1), "{waited:?}");
    let (second, second_waited) = second;
    assert_eq!(second.unwrap().value.expose(), good.value.expose());
    assert!(
        second_waited < Duration::from_millis(200),
        "{second_waited:?}"
    );
    assert!(stack.vault.stall().held() >= 1, "the vault did hang");
    match cache.last_error() {
        Some(e) => assert!(e.contains("did not answer"), "{e}"),
        None => panic!("the hang is recorded"),
    }
    // Within the back-off the stale value is served without asking the hanging vault again.
    let again = std::time::Instant::now();
    cache.get().await.unwrap();
    assert!(again.elapsed() < Duration::from_millis(200));

    stack.vault.stall().set(false);
    rotate(&stack, "fresh-after-the-hang-0123").await;
    eventually(
        Duration::from_secs(5),
        "a fresh value after the hang",
        || async { cache.get().await.unwrap().value.expose() == "fresh-after-the-hang-0123" },
    )
    .await;
}

#[tokio::test]
async fn never_loaded_is_not_ready_and_the_refresher_recovers_without_restart() {
    let stack = start_stack(&[]).await;
    let scope = Scope::Secret(SECRET_NAME.into());
    stack.revoke(Identity::MainApp, Role::KeyVaultSecretsUser, &scope);

    let cache = cache(&stack, Duration::from_secs(300));
    let refresher = cache.spawn_refresher();
    let err = cache.get().await.unwrap_err();
    assert!(
        err.reason.contains("ForbiddenByRbac") || err.reason.contains("Secrets User"),
        "{err}"
    );
    assert!(
        !err.to_string()
            .contains(stack.third_party_api_key().expose())
    );
    assert!(matches!(cache.readiness(), CheckState::Failing(_)));

    stack.grant(Identity::MainApp, Role::KeyVaultSecretsUser, scope);
    eventually(
        Duration::from_secs(10),
        "the refresher recovers",
        || async { cache.readiness() == CheckState::Passing },
    )
    .await;
    refresher.abort();
    // Served from memory now: no further fetch.
    let fetches = cache.fetch_count();
    assert_eq!(
        cache.get().await.unwrap().value.expose(),
        stack.third_party_api_key().expose()
    );
    assert_eq!(cache.fetch_count(), fetches);
}
