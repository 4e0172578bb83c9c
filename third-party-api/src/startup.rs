//! Building and running the HTTP server.

use crate::config::{KeyStoreLocation, Settings};
use crate::key_store::{
    BlobKeyStore, BlobKeyStoreOptions, KeyStore, KeyStoreError, KeyValue, MasterKeySource,
};
use crate::routes::{admin, health, random_number};
use actix_web::http::StatusCode;
use actix_web::{App, web};
use service_kit::api_key::ReloadOnMiss;
use service_kit::http_methods::{json_document, resource};
use service_kit::request_body::BodyLimits;
use service_kit::service::{HttpService, ServerOptions, listen, not_found};
use service_kit::telemetry::RequestTelemetry;
use service_kit::{RequireApiKey, json_error};
use shared_auth::secret_cache::{SecretCache, SecretCacheOptions};
use shared_auth::transport::azure_client_options;
use shared_auth::transport::http_client_from_env;
use shared_auth::{EnvSource, credential_from_env};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// third-party-api's wiring. What [`Application::build`] returns is the service itself, an
/// [`HttpService`] (a [`Service`](service_kit::service::Service)): bound to its port, with its
/// background refreshers, serving once run.
pub struct Application;

impl Application {
    /// Opens the key store and binds the listener; fails with the reason (never a key). A blob
    /// store that cannot be parsed stops start-up; one that cannot be reached does not: the
    /// service starts not ready and keeps trying.
    pub async fn build(settings: Settings, env: &dyn EnvSource) -> anyhow::Result<HttpService> {
        let master_source = match settings.master_key_secret {
            Some(_) => MasterKeySource::KeyVault,
            None => MasterKeySource::Store,
        };
        let needs_azure = settings.master_key_secret.is_some()
            || matches!(settings.key_store, KeyStoreLocation::Blob(_));
        let azure = if needs_azure {
            let http = http_client_from_env(env)?;
            let credential = credential_from_env(env, &http)?.credential;
            Some((http, credential))
        } else {
            None
        };
        let store = match &settings.key_store {
            KeyStoreLocation::File(path) => KeyStore::open(
                path,
                settings.seed_master_key,
                settings.seed_function_keys,
                master_source,
            )?,
            KeyStoreLocation::Blob(url) => {
                let (http, credential) = azure.as_ref().expect("built for a blob store");
                if !settings.seed_function_keys.is_empty() || settings.seed_master_key.is_some() {
                    tracing::warn!("the seed variables apply to a file store only; ignored");
                }
                let options = BlobKeyStoreOptions {
                    client_options: azure_client_options(http),
                };
                let blob = BlobKeyStore::new(url.clone(), credential.clone(), Some(options))?;
                KeyStore::blob(blob, master_source)
            }
        };
        let store = Arc::new(store);
        match store.load().await {
            Ok(()) => {}
            Err(e @ KeyStoreError::Invalid { .. }) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "key store not loaded yet; starting not ready and retrying");
            }
        }
        let mut refreshers = Vec::new();
        if matches!(settings.key_store, KeyStoreLocation::Blob(_)) {
            refreshers.push(spawn_store_refresher(store.clone(), settings.keys_refresh));
        }
        if let Some(secret) = &settings.master_key_secret {
            let (http, credential) = azure.as_ref().expect("built for Key Vault");
            let options = SecretCacheOptions {
                client_options: azure_client_options(http),
                ttl: settings.keys_refresh,
                ..SecretCacheOptions::default()
            };
            let cache = SecretCache::new(
                secret.vault_url.clone(),
                credential.clone(),
                &secret.secret_name,
                Some(options),
            )?;
            refreshers.push(spawn_master_key_refresher(
                store.clone(),
                cache,
                settings.keys_refresh,
            ));
        }
        let listener = listen(settings.bind_address, settings.port)?;
        Ok(serve(
            listener,
            store,
            (settings.server, settings.body),
            refreshers,
        )?)
    }
}

/// Re-reads the blob store every `every`: a change made by another replica is in force here
/// within that time; a failed or invalid read keeps the last good keys and is logged.
fn spawn_store_refresher(store: Arc<KeyStore>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::time::sleep(every).await;
            match store.refresh().await {
                Ok(changed) => {
                    if changed {
                        tracing::info!(blob = %store.location(), "key store changed; new keys in force");
                    }
                    if std::mem::take(&mut failing) {
                        tracing::info!(blob = %store.location(), "key store readable again");
                    }
                }
                Err(e) => {
                    failing = true;
                    tracing::error!(error = %e, "key store refresh failed; the last good keys stay in force");
                }
            }
        }
    })
}

/// Reads the master key from Key Vault every `every` and installs it when it changes. A value
/// that is not a key (the placeholder before the first rotation) leaves the admin API closed.
fn spawn_master_key_refresher(
    store: Arc<KeyStore>,
    cache: SecretCache,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The value last installed: a fetch of the same value (every `every`) changes nothing
        // and logs nothing.
        let mut installed: Option<shared_auth::Secret> = None;
        loop {
            match cache.get().await {
                Ok(secret) if installed.as_ref() != Some(&secret.value) => {
                    installed = Some(secret.value.clone());
                    match KeyValue::parse(secret.value.expose()) {
                        Ok(master) => {
                            tracing::info!(
                                generation = secret.generation,
                                "master key from Key Vault in force"
                            );
                            store.set_vault_master_key(Some(master)).await;
                        }
                        Err(why) => {
                            tracing::warn!(reason = %why, "the master key secret holds no valid key (a placeholder before the first rotation?); the admin API stays closed");
                            store.set_vault_master_key(None).await;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "master key not read; the one in force stays");
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}

fn serve(
    listener: TcpListener,
    store: Arc<KeyStore>,
    (server, body): (ServerOptions, BodyLimits),
    refreshers: Vec<tokio::task::JoinHandle<()>>,
) -> std::io::Result<HttpService> {
    let function_ring = store.function_ring();
    let master_ring = store.master_ring();
    let reader = store.clone();
    let reload: ReloadOnMiss = Arc::new(move || {
        let store = reader.clone();
        Box::pin(async move { store.refresh_for_unknown_key().await })
    });
    let store = web::Data::from(store);
    HttpService::start(listener, server, refreshers, move || {
        App::new()
            .wrap(RequestTelemetry::default())
            .app_data(store.clone())
            .app_data(web::Data::new(body))
            .app_data(web::PayloadConfig::new(body.max_bytes))
            .app_data(web::PathConfig::default().error_handler(|error, _| {
                // The extractor's message may quote the path; answer without it.
                actix_web::error::InternalError::from_response(
                    error,
                    json_error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "The path is malformed.",
                    ),
                )
                .into()
            }))
            .service(resource("/healthz").get(health::healthz))
            .service(resource("/readyz").get(health::readyz))
            .service(resource("/openapi.json").get(json_document(include_str!("../openapi.json"))))
            .service(
                web::scope("/api")
                    .wrap(
                        RequireApiKey::new(function_ring.clone()).reloading_on_miss(reload.clone()),
                    )
                    .service(
                        resource("/RandomNumber")
                            .get(random_number::random_number)
                            .post(random_number::random_number),
                    ),
            )
            .service(
                web::scope("/admin")
                    .wrap(RequireApiKey::new(master_ring.clone()))
                    .configure(admin::configure),
            )
            .default_service(web::to(not_found))
    })
}
