//! `cargo run -p devstack`: local Azure and every service, with the production variables.
//!
//! Options: `--ephemeral-ports` (free ports instead of the documented ones), `--state-dir DIR`
//! (instead of `target/devstack`), `--no-build` (do not `cargo build` the services first).
//!
//! In containers (`docker-compose.yml`): `devstack compose init [--dir DIR]` writes each
//! container's files into its own volume (the vault's two keys among them; no network),
//! `devstack compose serve [--dir DIR] [--azurite HOST]` runs the emulators and provisions
//! storage with third-party-api's key store blob, and `devstack compose healthcheck` probes a
//! running `serve`.

use devstack::stack::{DevStack, Service, StackOptions};
use ops::connect::{CODE_LEDGER_URL, KEY_VAULT_URL, STORAGE_QUEUE_URL};
use ops::rotate::THIRD_PARTY_API_ENDPOINT;
use shared_auth::telemetry::init_telemetry;
use shared_auth::variables::{
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID,
    AZURE_TOKEN_CREDENTIALS, EXTRA_CA_CERTS, LOG_FORMAT, RUST_LOG,
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

async fn run() -> anyhow::Result<ExitCode> {
    if std::env::args().nth(1).as_deref() == Some("compose") {
        return compose(std::env::args().skip(2).collect()).await;
    }
    let mut options = StackOptions::for_development();
    let mut build = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ephemeral-ports" => options.ports = devstack::stack::Ports::EPHEMERAL,
            "--no-build" => build = false,
            "--state-dir" => {
                let dir = PathBuf::from(args.next().unwrap_or_default());
                options.state_dir = dir;
            }
            other => anyhow::bail!(
                "unknown argument {other}; use --ephemeral-ports, --state-dir DIR, --no-build"
            ),
        }
    }
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
    let stack = DevStack::start(options).await?;
    let developer_env = developer_env(&stack)?;
    let rotation_env = rotation_env(&stack)?;
    print_summary(&stack, &developer_env, &rotation_env);

    shared_auth::service::shutdown_signal().await;
    eprintln!("devstack: stopping");
    stack.stop().await;
    eprintln!("devstack: stopped");
    Ok(ExitCode::SUCCESS)
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
    let mut pairs = pairs_of(&stack.client_env("developer")?, CLIENT_VARIABLES);
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
         environments                   {}/<service>.env, {}, {}\n",
        u.msi_endpoint,
        u.key_vault,
        u.queue,
        u.container,
        u.third_party_api_endpoint,
        u.main_app,
        stack.state_dir.display(),
        developer_env.display(),
        rotation_env.display(),
    );
}

/// `devstack compose init|serve|healthcheck [--dir DIR] [--azurite HOST]`.
async fn compose(args: Vec<String>) -> anyhow::Result<ExitCode> {
    use devstack::compose;
    let mut dir = PathBuf::from(compose::DEFAULT_DIR);
    let mut azurite = "azurite".to_owned();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--dir" => dir = rest.next().map(PathBuf::from).unwrap_or_default(),
            "--azurite" => azurite = rest.next().cloned().unwrap_or_default(),
            other => anyhow::bail!("unknown argument {other}; use --dir DIR, --azurite HOST"),
        }
    }
    let volume = compose::Volume::new(dir);
    match args.first().map(String::as_str) {
        Some("healthcheck") => {
            return Ok(shared_auth::healthcheck::check(
                compose::READY_PORT,
                "/readyz",
            ));
        }
        Some("init") | Some("serve") => {}
        _ => anyhow::bail!(
            "usage: devstack compose init|serve|healthcheck [--dir DIR] [--azurite HOST]"
        ),
    }
    let _telemetry = init_telemetry("devstack", &log_env())?;
    if args[0] == "init" {
        compose::init(&volume).await?;
    } else {
        compose::serve(&volume, &azurite).await?;
    }
    Ok(ExitCode::SUCCESS)
}
