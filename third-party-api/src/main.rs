//! Entry point: `healthcheck` probes a running instance; otherwise configuration, then the
//! server until SIGTERM or SIGINT (see [`service_kit::service::main`]).

use third_party_api::config::{DEFAULT_PORT, Settings};
use third_party_api::startup::Application;

fn main() -> std::process::ExitCode {
    service_kit::service::main(
        "third-party-api",
        "The example API: RandomNumber behind Azure-Functions-style keys, with its admin API.",
        DEFAULT_PORT,
        |env| async move { Application::build(Settings::from_env(env)?, env).await },
    )
}
