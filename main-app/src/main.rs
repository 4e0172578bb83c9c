//! Entry point (`healthcheck` as first argument probes a running instance instead): telemetry, configuration, then the server until SIGTERM.

use main_app::config::Settings;
use main_app::startup::Application;
use shared_auth::ProcessEnv;
use shared_auth::telemetry::init_telemetry;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = shared_auth::healthcheck::run_if_requested(&ProcessEnv, 8080) {
        return code;
    }
    serve()
}

#[actix_web::main]
async fn serve() -> ExitCode {
    let _telemetry = match init_telemetry("main-app", &ProcessEnv) {
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
    tracing::info!(port = app.port(), "main-app listening");
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("main-app stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!(error = %error, "main-app cannot run");
    eprintln!("main-app: {error}");
    ExitCode::from(2)
}
