//! Building and running main-app: credential, secret cache, clients, HTTP server.

use crate::config::Settings;
use crate::queue::CodeQueue;
use crate::routes::{AppState, getcode, health, home, openapi, verify};
use crate::third_party::ThirdPartyApi;
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use codes::ledger::CodeLedger;
use shared_auth::http_methods::resource;
use shared_auth::secret_cache::{SecretCache, SecretCacheOptions};
use shared_auth::telemetry::RequestTelemetry;
use shared_auth::transport::http_client_from_env;
use shared_auth::{EnvSource, credential_from_env, json_error};
use std::net::TcpListener;
use std::time::Duration;

/// How long a client has to send a request's head; then 408 and the connection closes.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long in-flight requests may take after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// A built application: bound, background tasks started, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Builds everything from `settings`; identity and transport variables come from `env`.
    /// Key Vault or the queue being down does not fail this: readiness reports it.
    pub fn build(settings: Settings, env: &dyn EnvSource) -> anyhow::Result<Self> {
        let cache = SecretCacheOptions {
            ttl: settings.secret_cache_ttl,
            ..SecretCacheOptions::default()
        };
        Self::build_with_cache_options(settings, env, cache)
    }

    /// [`Application::build`] with explicit secret cache timing (tests shorten it).
    pub fn build_with_cache_options(
        settings: Settings,
        env: &dyn EnvSource,
        cache: SecretCacheOptions,
    ) -> anyhow::Result<Self> {
        let http = http_client_from_env(env)?;
        let credential = credential_from_env(env, &http)?.credential;
        let secret = SecretCache::new(
            &settings.key_vault_url,
            &settings.secret_name,
            credential.clone(),
            &http,
            cache,
        )
        .context("the Key Vault client cannot be built")?;
        let queue = CodeQueue::new(
            settings.queue_url.clone(),
            credential.clone(),
            &http,
            settings.encoding,
        )
        .context("the queue client cannot be built")?;
        let ledger = CodeLedger::new(settings.ledger_url.clone(), credential, &http)
            .context("the ledger client cannot be built")?;
        let third_party = ThirdPartyApi::new(
            http,
            settings.third_party_api_endpoint.clone(),
            settings.third_party_timeout,
            secret.clone(),
        );
        let background = vec![secret.spawn_refresher(), queue.spawn_prober()];
        let state = AppState {
            third_party,
            queue,
            ledger,
            secret,
            code_ttl: settings.code_ttl,
            request_timeout: settings.request_timeout,
        };
        let listener =
            TcpListener::bind((settings.bind_address, settings.port)).with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.bind_address, settings.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let server = run(listener, state)?;
        Ok(Self {
            port,
            server,
            background,
        })
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, lets in-flight requests finish, stops background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.background {
            task.abort();
        }
        result
    }
}

fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(RequestTelemetry)
            .app_data(state.clone())
            .service(resource("/").get(home::home))
            .service(resource("/api/v1/getcode").get(getcode::get_code))
            .service(resource("/api/v1/codes/verify").post(verify::verify))
            .service(resource("/healthz").get(health::healthz))
            .service(resource("/readyz").get(health::readyz))
            .service(resource("/openapi.json").get(openapi::openapi))
            .default_service(web::to(|| async {
                json_error(StatusCode::NOT_FOUND, "not_found", "No such route.")
            }))
    })
    .client_request_timeout(REQUEST_HEAD_TIMEOUT)
    .client_disconnect_timeout(Duration::from_secs(1))
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}
