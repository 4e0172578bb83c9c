//! Entry point (`healthcheck` as first argument probes a running instance instead): configuration, telemetry, then the server until SIGTERM.

use shared_auth::ProcessEnv;
use shared_auth::telemetry::init_telemetry;
use std::process::ExitCode;
use third_party_api::config::Settings;
use third_party_api::startup::Application;

fn main() -> ExitCode {
    if let Some(code) = shared_auth::healthcheck::run_if_requested(&ProcessEnv, 7071) {
        return code;
    }
    serve()
}

#[actix_web::main]
async fn serve() -> ExitCode {
    let _telemetry = match init_telemetry("third-party-api", &ProcessEnv) {
        Ok(guard) => guard,
        Err(e) => return fail(&e),
    };
    let settings = match Settings::from_env(&ProcessEnv) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    let app = match Application::build(settings, &ProcessEnv).await {
        Ok(app) => app,
        Err(e) => return fail(&*e),
    };
    tracing::info!(port = app.port(), "third-party-api listening");
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("third-party-api stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!(error = %error, "third-party-api cannot run");
    eprintln!("third-party-api: {error}");
    ExitCode::from(2)
}
