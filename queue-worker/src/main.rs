//! Entry point: `healthcheck` probes a running instance; otherwise configuration, then consume
//! until SIGTERM or SIGINT and drain (see [`service_kit::service::main`]).

use queue_worker::config::{DEFAULT_PORT, Settings};
use queue_worker::startup::Application;

fn main() -> std::process::ExitCode {
    service_kit::service::main(
        "queue-worker",
        "The consumer of code-requests: confirms each code in the ledger, retries, poisons.",
        DEFAULT_PORT,
        |env| async move { Application::build(Settings::from_env(env)?, env) },
    )
}
