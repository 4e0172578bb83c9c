//! Building and running main-app: credential, secret cache, clients, HTTP server.

use crate::config::Settings;
use crate::queue::{CodeQueue, CodeQueueOptions};
use crate::reservations::Reservations;
use crate::routes::getcode::CodeSource;
use crate::routes::{self, AppState};
use crate::third_party::ThirdPartyApi;
use actix_web::{App, web};
use anyhow::Context;
use codes::ledger::CodeLedger;
use service_kit::service::{HttpService, ServerOptions, listen};
use service_kit::telemetry::RequestTelemetry;
use shared_auth::secret_cache::{SecretCache, SecretCacheOptions};
use shared_auth::transport::azure_client_options;
use shared_auth::transport::http_client_from_env;
use shared_auth::{EnvSource, credential_from_env};
use std::sync::Arc;

/// main-app's wiring. What [`Application::build`] returns is the service itself, an
/// [`HttpService`] (a [`Service`](service_kit::service::Service)): bound, background tasks
/// started, serving once run. Nothing of main-app's own is added to running it.
pub struct Application;

impl Application {
    /// Builds everything from `settings`; identity and transport variables come from `env`.
    /// Key Vault or the queue being down does not fail this: readiness reports it.
    pub fn build(settings: Settings, env: &dyn EnvSource) -> anyhow::Result<HttpService> {
        let cache = SecretCacheOptions {
            ttl: settings.secret_cache_ttl,
            ..SecretCacheOptions::default()
        };
        Self::build_with(settings, env, cache, CodeSource::default())
    }

    /// [`Application::build`] with explicit secret cache timing and code source (tests shorten
    /// the one and make the other deterministic).
    pub fn build_with(
        settings: Settings,
        env: &dyn EnvSource,
        cache: SecretCacheOptions,
        codes: CodeSource,
    ) -> anyhow::Result<HttpService> {
        let state = AppState {
            codes,
            ..Self::state(&settings, env, cache)?
        };
        let background = vec![
            state.secret.spawn_refresher(),
            state.queue.spawn_prober(),
            state.reservations.spawn_prober(),
        ];
        let listener = listen(settings.bind_address, settings.port)?;
        let state = web::Data::new(state);
        let telemetry = RequestTelemetry::new(settings.incoming_trace);
        let server =
            HttpService::start(listener, ServerOptions::default(), background, move || {
                App::new()
                    .wrap(telemetry)
                    .app_data(state.clone())
                    .configure(routes::configure)
            })?;
        Ok(server)
    }

    /// The clients the handlers share, built from `settings` and `env` without contacting
    /// anything and without starting the background refresh and probe.
    pub fn state(
        settings: &Settings,
        env: &dyn EnvSource,
        cache: SecretCacheOptions,
    ) -> anyhow::Result<AppState> {
        let http = http_client_from_env(env)?;
        let credential = credential_from_env(env, &http)?.credential;
        let options = SecretCacheOptions {
            client_options: azure_client_options(&http),
            ..cache
        };
        let secret = SecretCache::new(
            settings.key_vault_url.clone(),
            credential.clone(),
            &settings.secret_name,
            Some(options),
        )
        .context("the Key Vault client cannot be built")?;
        let queue_options = CodeQueueOptions {
            client_options: azure_client_options(&http),
            encoding: settings.encoding,
        };
        let queue = CodeQueue::new(
            settings.queue_url.clone(),
            credential.clone(),
            Some(queue_options),
        )
        .context("the queue client cannot be built")?;
        let ledger = CodeLedger::new(
            settings.ledger_url.clone(),
            credential,
            Some(azure_client_options(&http).into()),
        )
        .context("the ledger client cannot be built")?;
        let third_party = ThirdPartyApi::new(
            http,
            settings.third_party_api_endpoint.clone(),
            settings.third_party_timeout,
            secret.clone(),
        );
        Ok(AppState {
            third_party,
            queue,
            reservations: Reservations::new(ledger.clone()),
            ledger,
            secret,
            codes: Default::default(),
            code_ttl: settings.code_ttl,
            request_timeout: settings.request_timeout,
            turns: Arc::new(tokio::sync::Semaphore::new(
                settings.max_concurrent_requests,
            )),
        })
    }
}
