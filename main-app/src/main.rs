//! Entry point: `healthcheck` probes a running instance; otherwise configuration, then the
//! server until SIGTERM or SIGINT (see [`service_kit::service::main`]).

use main_app::config::{DEFAULT_PORT, Settings};
use main_app::startup::Application;

fn main() -> std::process::ExitCode {
    service_kit::service::main(
        "main-app",
        "The public app: issues codes (Key Vault key, third-party call, ledger, queue) and verifies them.",
        DEFAULT_PORT,
        |env| async move { Application::build(Settings::from_env(env)?, env) },
    )
}
