//! Building the worker and its health port, and running both until a stop signal.

use crate::config::Settings;
use crate::handler::CodeHandler;
use crate::worker::Worker;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use azure_storage_queue::{QueueClient, QueueClientOptions};
use codes::ledger::CodeLedger;
use shared_auth::telemetry::RequestTelemetry;
use shared_auth::transport::{azure_client_options, http_client_from_env};
use shared_auth::{EnvSource, credential_from_env};
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::watch;

/// A built worker with its health server bound.
pub struct Application {
    worker: Worker,
    port: u16,
    server: actix_web::dev::Server,
    handle: ServerHandle,
}

impl Application {
    /// Builds from `settings`; identity and transport variables come from `env`.
    pub fn build(settings: Settings, env: &dyn EnvSource) -> anyhow::Result<Self> {
        let http = http_client_from_env(env)?;
        let credential = credential_from_env(env, &http)?.credential;
        let options = || QueueClientOptions {
            client_options: azure_client_options(&http),
            ..Default::default()
        };
        let queue = Arc::new(
            QueueClient::new(
                settings.queue_url.clone(),
                Some(credential.clone()),
                Some(options()),
            )
            .context("the queue client cannot be built")?,
        );
        let poison = Arc::new(
            QueueClient::new(
                settings.poison_queue_url.clone(),
                Some(credential.clone()),
                Some(options()),
            )
            .context("the poison queue client cannot be built")?,
        );
        let ledger = CodeLedger::new(settings.ledger_url.clone(), credential, &http)
            .context("the ledger client cannot be built")?;
        let handler = CodeHandler::new(ledger, queue.clone(), settings.encoding);
        let listener =
            TcpListener::bind((settings.bind_address, settings.port)).with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.bind_address, settings.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let worker = Worker::new(queue, poison, handler, settings);
        let data = web::Data::new(worker.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(RequestTelemetry)
                .app_data(data.clone())
                .configure(crate::health::configure)
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        Ok(Self {
            worker,
            port,
            server,
            handle,
        })
    }

    /// The health port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The worker (counters, status).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Runs until `shutdown` turns true, drains in-flight work, stops the health port.
    pub async fn run_until(self, shutdown: watch::Receiver<bool>) {
        let server = tokio::spawn(self.server);
        self.worker.run(shutdown).await;
        self.handle.stop(true).await;
        let _ = server.await;
    }
}
