//! Building the worker and its health port, and running both until a stop signal.

use crate::config::Settings;
use crate::handler::CodeHandler;
use crate::sweep::sweep_until;
use crate::worker::Worker;
use actix_web::{App, web};
use anyhow::Context;
use azure_storage_queue::{QueueClient, QueueClientOptions};
use codes::ledger::CodeLedger;
use service_kit::service::{HttpService, ServerOptions, Service, listen};
use service_kit::telemetry::RequestTelemetry;
use shared_auth::transport::{azure_client_options, http_client_from_env};
use shared_auth::{EnvSource, credential_from_env};
use std::sync::Arc;
use tokio::sync::watch;

/// A built worker with its health server bound.
pub struct Application {
    worker: Worker,
    health: HttpService,
    /// The ledger to sweep and how often, unless the sweep is off.
    sweep: Option<(CodeLedger, std::time::Duration)>,
}

impl Application {
    /// Builds from `settings`; identity and transport variables come from `env`.
    pub fn build(settings: Settings, env: &dyn EnvSource) -> anyhow::Result<Self> {
        let http = http_client_from_env(env)?;
        let credential = credential_from_env(env, &http)?.credential;
        let queue_client = |url: &reqwest::Url, which: &str| {
            let options = QueueClientOptions {
                client_options: azure_client_options(&http),
                ..Default::default()
            };
            QueueClient::new(url.clone(), Some(credential.clone()), Some(options))
                .map(Arc::new)
                .with_context(|| format!("the {which} client cannot be built"))
        };
        let queue = queue_client(&settings.queue_url, "queue")?;
        let poison = queue_client(&settings.poison_queue_url, "poison queue")?;
        let ledger = CodeLedger::new(
            settings.ledger_url.clone(),
            credential,
            Some(azure_client_options(&http).into()),
        )
        .context("the ledger client cannot be built")?;
        let sweep = settings
            .sweep_interval
            .map(|interval| (ledger.clone(), interval));
        let handler = CodeHandler::new(ledger);
        let listener = listen(settings.bind_address, settings.port)?;
        let worker = Worker::new(queue, poison, handler, settings);
        let data = web::Data::new(worker.clone());
        // One event loop, the default: the worker serves only its probes.
        let health =
            HttpService::start(listener, ServerOptions::default(), Vec::new(), move || {
                App::new()
                    .wrap(RequestTelemetry::default())
                    .app_data(data.clone())
                    .configure(crate::health::configure)
            })?;
        Ok(Self {
            worker,
            health,
            sweep,
        })
    }

    /// The worker (counters, status).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }
}

impl Service for Application {
    /// The health port bound.
    fn port(&self) -> u16 {
        self.health.port()
    }

    /// Consumes until `shutdown` resolves, drains in-flight messages within the worker's grace,
    /// then stops the health port (it answers during the drain).
    async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let consume_then_drain = async move {
            let signal = async move {
                shutdown.await;
                let _ = stop.send(true);
            };
            let (stats, sweep_stopped) = (self.worker.stats.clone(), stopped.clone());
            let sweep = async move {
                if let Some((ledger, interval)) = self.sweep {
                    sweep_until(ledger, interval, stats, sweep_stopped).await;
                }
            };
            tokio::join!(signal, sweep, self.worker.run(stopped));
        };
        self.health.run_until(consume_then_drain).await
    }
}
