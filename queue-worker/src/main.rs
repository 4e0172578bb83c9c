//! Entry point (`healthcheck` as first argument probes a running instance instead): telemetry, configuration, then consume until SIGTERM or SIGINT.

use queue_worker::config::Settings;
use queue_worker::startup::Application;
use shared_auth::ProcessEnv;
use shared_auth::telemetry::init_telemetry;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = shared_auth::healthcheck::run_if_requested(&ProcessEnv, 8081) {
        return code;
    }
    serve()
}

#[tokio::main]
async fn serve() -> ExitCode {
    let _telemetry = match init_telemetry("queue-worker", &ProcessEnv) {
        Ok(guard) => guard,
        Err(e) => return fail(&e),
    };
    let settings = match Settings::from_env(&ProcessEnv) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    let app = match Application::build(settings, &ProcessEnv) {
        Ok(app) => app,
        Err(e) => return fail(&format!("{e:#}")),
    };
    tracing::info!(port = app.port(), "queue-worker started");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stop signal received");
        let _ = stop.send(true);
    });
    app.run_until(stopped).await;
    tracing::info!("queue-worker stopped");
    ExitCode::SUCCESS
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!(error = %error, "queue-worker cannot run");
    eprintln!("queue-worker: {error}");
    ExitCode::from(2)
}
