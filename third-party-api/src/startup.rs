//! Building and running the HTTP server.

use crate::config::{HttpLimits, SHUTDOWN_GRACE, Settings};
use crate::key_store::KeyStore;
use crate::routes::{admin, health, openapi, random_number};
use actix_web::dev::Server;
use actix_web::http::{KeepAlive, StatusCode};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use shared_auth::http_methods::resource;
use shared_auth::telemetry::RequestTelemetry;
use shared_auth::{RequireApiKey, json_error};
use std::net::TcpListener;

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Opens the key store and binds the listener; fails with the reason (never a key).
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = KeyStore::open(
            &settings.keys_file,
            settings.seed_master_key,
            settings.seed_function_keys,
        )?;
        let listener =
            TcpListener::bind((settings.bind_address, settings.port)).with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.bind_address, settings.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let server = run(listener, store, settings.http)?;
        Ok(Self { port, server })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn run(listener: TcpListener, store: KeyStore, limits: HttpLimits) -> std::io::Result<Server> {
    let function_ring = store.function_ring();
    let master_ring = store.master_ring();
    let store = web::Data::new(store);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(RequestTelemetry)
            .app_data(store.clone())
            .app_data(web::Data::new(limits))
            .app_data(web::PayloadConfig::new(limits.max_body_bytes))
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
            .service(resource("/openapi.json").get(openapi::openapi))
            .service(
                web::scope("/api")
                    .wrap(RequireApiKey::new(function_ring.clone()))
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
    .client_request_timeout(limits.request_head_timeout)
    .client_disconnect_timeout(limits.disconnect_timeout)
    .keep_alive(match limits.keep_alive {
        Some(idle) => KeepAlive::Timeout(idle),
        None => KeepAlive::Disabled,
    })
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}

async fn not_found() -> actix_web::HttpResponse {
    json_error(StatusCode::NOT_FOUND, "not_found", "No such route.")
}
