//! Building and running the HTTP server.

use crate::config::{SHUTDOWN_GRACE, Settings};
use crate::key_store::KeyStore;
use crate::routes::{admin, health, openapi, random_number};
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use shared_auth::telemetry::RequestTelemetry;
use shared_auth::{RequireApiKey, json_error};
use std::net::TcpListener;

/// Largest request body accepted (admin bodies are a few hundred bytes).
const MAX_BODY_BYTES: usize = 16 * 1024;

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
        let server = run(listener, store)?;
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

fn run(listener: TcpListener, store: KeyStore) -> std::io::Result<Server> {
    let function_ring = store.function_ring();
    let master_ring = store.master_ring();
    let store = web::Data::new(store);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(RequestTelemetry)
            .app_data(store.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/openapi.json", web::get().to(openapi::openapi))
            .service(
                web::scope("/api")
                    .wrap(RequireApiKey::new(function_ring.clone()))
                    .service(
                        web::resource("/RandomNumber")
                            .route(web::get().to(random_number::random_number))
                            .route(web::post().to(random_number::random_number))
                            .default_service(web::to(method_not_allowed)),
                    ),
            )
            .service(
                web::scope("/admin")
                    .wrap(RequireApiKey::new(master_ring.clone()))
                    .configure(admin::configure),
            )
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}

async fn not_found() -> actix_web::HttpResponse {
    json_error(StatusCode::NOT_FOUND, "not_found", "No such route.")
}

async fn method_not_allowed() -> actix_web::HttpResponse {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Use GET or POST.",
    )
}
