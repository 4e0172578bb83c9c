//! `cargo run -p devstack`: local Azure and every service, with the production variables.
//!
//! Options: `--ephemeral-ports` (free ports instead of the documented ones), `--state-dir DIR`
//! (instead of `target/devstack`), `--no-build` (do not `cargo build` the services first),
//! `--no-console` (no console; it serves on 127.0.0.1:18888 with a token printed in its URL).
//!
//! In containers (`docker-compose.yml`): `devstack compose init [--dir DIR]` writes each
//! container's files into its own volume (the vault's two keys among them; no network),
//! `devstack compose serve [--dir DIR] [--azurite HOST]` runs the emulators and provisions
//! storage with third-party-api's key store blob, and `devstack compose healthcheck` probes a
//! running `serve`.

use clap::{Parser, Subcommand};
use codes::variables::CODE_LEDGER_URL;
use codes::variables::STORAGE_QUEUE_URL;
use devstack::stack::{DevStack, Principal, Service, StackOptions};
use service_kit::telemetry::init_telemetry;
use service_kit::telemetry::{LOG_FORMAT, RUST_LOG};
use shared_auth::variables::KEY_VAULT_URL;
use shared_auth::variables::THIRD_PARTY_API_ENDPOINT;
use shared_auth::variables::{
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID,
    AZURE_TOKEN_CREDENTIALS, EXTRA_CA_CERTS,
};
use shared_auth::{EnvSource, MapEnv, ProcessEnv};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("devstack: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `devstack`: local Azure and every service; `devstack compose ...` for docker-compose.yml.
#[derive(Debug, Parser)]
#[command(
    name = "devstack",
    version,
    about = "Local Azure (identity, Key Vault, Queue and Blob Storage behind their role checks) and every service, with the production variables; Ctrl-C stops it all.",
    after_help = "RUST_LOG and LOG_FORMAT set devstack's own log; OTEL_* pass to the services."
)]
struct Cli {
    /// Free ports instead of the documented ones.
    #[arg(long)]
    ephemeral_ports: bool,
    /// Where the stack keeps its state (PKI, Azurite's data, the services' environments).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Do not `cargo build` the services first.
    #[arg(long)]
    no_build: bool,
    /// Do not serve the console (on 127.0.0.1:18888, or a free port with --ephemeral-ports).
    #[arg(long)]
    no_console: bool,
    /// Show Azurite's access log (a line per storage request; off by default, errors always).
    #[arg(long)]
    azurite_access_log: bool,
    /// In containers instead (docker-compose.yml).
    #[command(subcommand)]
    compose: Option<Compose>,
}

/// `devstack compose ...`.
#[derive(Debug, Subcommand)]
enum Compose {
    /// The emulators in containers (docker-compose.yml).
    Compose {
        /// What to do.
        #[command(subcommand)]
        step: ComposeStep,
        /// The folder of the volumes.
        #[arg(long, value_name = "DIR", global = true, default_value = devstack::compose::DEFAULT_DIR)]
        dir: PathBuf,
        /// Azurite's host name.
        #[arg(long, value_name = "HOST", global = true, default_value = "azurite")]
        azurite: String,
    },
}

/// One step of the compose system.
#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
enum ComposeStep {
    /// Write each container's files into its own volume (keys, certificates, tokens); no network.
    Init,
    /// Run the emulators and storage gates, provision storage, renew the federated tokens.
    Serve,
    /// Probe a running `serve` (exit 0 when ready).
    Healthcheck,
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)));
        }
    };
    if let Some(Compose::Compose { step, dir, azurite }) = cli.compose {
        return compose(step, dir, azurite).await;
    }
    let mut options = StackOptions::for_development();
    if cli.ephemeral_ports {
        options.ports = devstack::stack::Ports::EPHEMERAL;
        options.console = Some(0);
    }
    if cli.no_console {
        options.console = None;
    }
    if let Some(dir) = cli.state_dir {
        options.state_dir = dir;
    }
    options.azurite_access_log = cli.azurite_access_log;
    let build = !cli.no_build;
    let _telemetry = init_telemetry("devstack", &log_env())?;

    std::fs::create_dir_all(&options.state_dir)?;
    let pid_file = options.state_dir.join("devstack.pid");
    if let Some(pid) = running_instance(&pid_file) {
        eprintln!(
            "devstack: already running (pid {pid}, {}); stop it first (Ctrl-C or kill {pid})",
            pid_file.display()
        );
        return Ok(ExitCode::from(2));
    }
    std::fs::write(&pid_file, std::process::id().to_string())?;
    let result = serve(options, build).await;
    let _ = std::fs::remove_file(&pid_file);
    result
}

/// devstack's own log: warnings and its own lines, unless `RUST_LOG` says otherwise.
fn log_env() -> MapEnv {
    MapEnv::new()
        .with(
            RUST_LOG,
            ProcessEnv
                .var(RUST_LOG)
                .unwrap_or_else(|| "warn,devstack=info".into()),
        )
        .with(
            LOG_FORMAT,
            ProcessEnv.var(LOG_FORMAT).unwrap_or_else(|| "json".into()),
        )
}

/// The pid in `pid_file` if that process is still alive.
fn running_instance(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

async fn serve(options: StackOptions, build: bool) -> anyhow::Result<ExitCode> {
    if build {
        build_services(&options.services).await?;
    }
    let mut stack = DevStack::start(options).await?;
    let developer_env = developer_env(&stack)?;
    let rotation_env = rotation_env(&stack)?;
    print_summary(&stack, &developer_env, &rotation_env);

    let died = tokio::select! {
        () = service_kit::service::shutdown_signal() => None,
        died = first_exit(&mut stack) => Some(died),
    };
    let code = match died {
        None => {
            eprintln!("devstack: stopping");
            ExitCode::SUCCESS
        }
        Some((name, status)) => {
            eprintln!(
                "devstack: {name} exited ({status}); its last lines are above. Stopping everything: \
                 run `cargo run -p devstack` again"
            );
            ExitCode::from(1)
        }
    };
    stack.stop().await;
    eprintln!("devstack: stopped");
    Ok(code)
}

/// Resolves when a child of `stack` (Azurite, a service) has exited: looked at twice a second.
async fn first_exit(stack: &mut DevStack) -> (String, std::process::ExitStatus) {
    loop {
        if let Some(died) = stack.exited_child() {
            return died;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `cargo build` of the services when run through cargo, in the same profile.
async fn build_services(services: &[Service]) -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let mut command = tokio::process::Command::new(cargo);
    command.args(["build", "--quiet"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    for service in services {
        command.args(["-p", service.name()]);
    }
    let status = command.status().await?;
    anyhow::ensure!(status.success(), "building the services failed");
    Ok(())
}

/// What a service principal environment from `DevStack::client_env` holds.
const CLIENT_VARIABLES: &[&str] = &[
    AZURE_TOKEN_CREDENTIALS,
    AZURE_TENANT_ID,
    AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET,
    AZURE_AUTHORITY_HOST,
    EXTRA_CA_CERTS,
];

/// The `(name, value)` pairs of `names` that `env` sets, in that order.
fn pairs_of(env: &MapEnv, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|k| env.var(k).map(|v| (k.to_string(), v)))
        .collect()
}

/// `developer.env`: a service principal for the developer identity, to run a service or a
/// script against the emulators by hand.
fn developer_env(stack: &DevStack) -> anyhow::Result<PathBuf> {
    let mut pairs = pairs_of(&stack.client_env(Principal::Developer)?, CLIENT_VARIABLES);
    pairs.push((KEY_VAULT_URL.into(), stack.urls.key_vault.clone()));
    pairs.push((STORAGE_QUEUE_URL.into(), stack.urls.queue.clone()));
    pairs.push((CODE_LEDGER_URL.into(), stack.urls.container.clone()));
    pairs.push((
        THIRD_PARTY_API_ENDPOINT.into(),
        stack.urls.third_party_api_endpoint.clone(),
    ));
    stack.write_env_file("developer", &pairs)
}

/// `rotation.env`: the rotation job's identity and settings, for `cargo run -p ops -- rotate`.
fn rotation_env(stack: &DevStack) -> anyhow::Result<PathBuf> {
    let env = stack.rotation_env()?;
    let mut pairs = pairs_of(&env, CLIENT_VARIABLES);
    pairs.extend(pairs_of(&env, ops::rotate::VARIABLES));
    stack.write_env_file("rotation", &pairs)
}

fn print_summary(stack: &DevStack, developer_env: &Path, rotation_env: &Path) {
    let u = &stack.urls;
    println!(
        "{}",
        serde_json::json!({
            "message": "devstack ready",
            "identity": u.identity,
            "msi_endpoint": u.msi_endpoint,
            "key_vault": u.key_vault,
            "queue": u.queue,
            "poison_queue": u.poison_queue,
            "ledger": u.container,
            "third_party_api": u.third_party_api_endpoint,
            "main_app": u.main_app,
            "queue_worker": u.queue_worker,
            "state_dir": stack.state_dir,
            "developer_env": developer_env,
            "rotation_env": rotation_env,
            "pids": stack.child_pids(),
            "console": stack.console().map(|c| c.url()),
        })
    );
    eprintln!(
        "\ndevstack ready (Ctrl-C stops everything)\n  \
         identity (IDENTITY_ENDPOINT)   {}\n  \
         Key Vault (KEY_VAULT_URL)      {}\n  \
         queue (STORAGE_QUEUE_URL)      {}\n  \
         ledger (CODE_LEDGER_URL)       {}\n  \
         third-party-api                {}\n  \
         main-app                       {}\n  \
         environments                   {}/<service>.env, {}, {}\n\n  \
         console                        {}\n",
        u.msi_endpoint,
        u.key_vault,
        u.queue,
        u.container,
        u.third_party_api_endpoint,
        u.main_app,
        stack.state_dir.display(),
        developer_env.display(),
        rotation_env.display(),
        stack
            .console()
            .map_or_else(|| "off (--no-console)".to_owned(), |c| c.url()),
    );
}

/// `devstack compose init|serve|healthcheck [--dir DIR] [--azurite HOST]`.
async fn compose(step: ComposeStep, dir: PathBuf, azurite: String) -> anyhow::Result<ExitCode> {
    use devstack::compose;
    if step == ComposeStep::Healthcheck {
        return Ok(service_kit::healthcheck::check(
            compose::READY_PORT,
            "/readyz",
        ));
    }
    let volume = compose::Volume::new(dir);
    let _telemetry = init_telemetry("devstack", &log_env())?;
    if step == ComposeStep::Init {
        compose::init(&volume).await?;
    } else {
        compose::serve(&volume, &azurite).await?;
    }
    Ok(ExitCode::SUCCESS)
}
