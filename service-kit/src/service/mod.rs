//! The skeleton every service binary shares: one entry point ([`main`]), one stop signal
//! ([`shutdown_signal`]) and grace ([`SHUTDOWN_GRACE`]), one HTTP server set-up
//! ([`HttpService`]), one `/readyz` vocabulary ([`Readiness`] of `shared_auth::CheckState`s) and the
//! settings every service reads ([`settings`]).
//!
//! A service is a library with `Application::build(settings, env)` returning a [`Service`]; its
//! `main.rs` is one call to [`main`]. Tests build the same application on port 0 and stop it
//! with any future instead of a signal.

mod cli;
mod head_deadline;
mod http;
mod readiness;
pub mod settings;

pub use cli::{ServiceCli, ServiceCommand};
pub use http::{HttpService, ServerOptions, listen, not_found};
pub use readiness::{RETRY_AFTER_SECONDS, Readiness, healthz, response_builder};

use crate::telemetry::init_telemetry;
use shared_auth::config::{EnvSource, ProcessEnv};
use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

/// How long in-flight work may take after the stop signal: requests in the HTTP services,
/// messages in the worker. Under the 30 s Container Apps and Kubernetes give before SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// The exit code of a service that cannot run (bad configuration, port taken, ...).
pub const CANNOT_RUN: u8 = 2;

/// A built service: bound, background tasks started, serving once run.
pub trait Service: Sized {
    /// The port bound (settings may ask for 0: any free port).
    fn port(&self) -> u16;

    /// Serves until `shutdown` resolves, then drains within [`SHUTDOWN_GRACE`] and stops.
    fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Runs a service binary named `name` (`about` is its `--help` line): `<binary> healthcheck
/// [PATH]` probes a running one on `PORT` (default `default_port`); otherwise telemetry,
/// `build`, then serve until SIGTERM or SIGINT. Exits 0 after a clean stop, 2 when the service
/// cannot run (logged and printed) or the command line is wrong.
pub fn main<S, B, F, E>(
    name: &'static str,
    about: &'static str,
    default_port: u16,
    build: B,
) -> ExitCode
where
    S: Service,
    B: FnOnce(&'static dyn EnvSource) -> F,
    F: Future<Output = Result<S, E>>,
    E: Display,
{
    match ServiceCli::try_parse_as(name, about, std::env::args_os()) {
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(CANNOT_RUN));
        }
        Ok(ServiceCli {
            command: Some(ServiceCommand::Healthcheck { path }),
        }) => return crate::healthcheck::run(&ProcessEnv, default_port, &path),
        Ok(ServiceCli { command: None }) => {}
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(serve(name, build)),
        Err(e) => cannot_run(name, &format!("no runtime: {e}")),
    }
}

async fn serve<S, B, F, E>(name: &'static str, build: B) -> ExitCode
where
    S: Service,
    B: FnOnce(&'static dyn EnvSource) -> F,
    F: Future<Output = Result<S, E>>,
    E: Display,
{
    let _telemetry = match init_telemetry(name, &ProcessEnv) {
        Ok(guard) => guard,
        Err(e) => return cannot_run(name, &e),
    };
    let service = match build(&ProcessEnv).await {
        Ok(service) => service,
        Err(e) => return cannot_run(name, &format!("{e:#}")),
    };
    tracing::info!(port = service.port(), "{name} listening");
    match service.run_until(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("{name} stopped");
            ExitCode::SUCCESS
        }
        Err(e) => cannot_run(name, &e),
    }
}

/// Logs and prints why `name` cannot run, and returns [`CANNOT_RUN`].
fn cannot_run(name: &str, error: &dyn Display) -> ExitCode {
    tracing::error!(error = %error, "{name} cannot run");
    eprintln!("{name}: {error}");
    ExitCode::from(CANNOT_RUN)
}

/// Resolves at the first SIGTERM (what orchestrators send) or SIGINT (Ctrl-C); both drain.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGTERM cannot be watched; only SIGINT stops gracefully");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "SIGINT cannot be watched");
            std::future::pending::<()>().await;
        }
    };
    let signal = tokio::select! {
        () = terminate => "SIGTERM",
        () = interrupt => "SIGINT",
    };
    tracing::info!(signal, "stop signal received; draining");
}
