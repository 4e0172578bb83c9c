//! A running stack from start to stop: the emulators bound and served, Azurite started behind the
//! gates, the vault and storage seeded, the services launched and awaited on `/readyz`, stopped
//! gracefully or crashed.

use super::console::ConsolePlan;
use super::emulators::Emulators;
use super::options::StackOptions;
use super::provision::{provision_storage, write_key_store};
use super::topology::{MASTER_KEY_SECRET_NAME, Ports, Principal, SECRET_NAME, Service, Urls};
use crate::azurite::{Azurite, AzuriteOptions, free_port};
use crate::console::Console;
use crate::identity::IdentityProvider;
use crate::keyvault::KeyVault;
use crate::pki::DevPki;
use crate::process::{ChildProcess, LogSink};
use crate::rbac::RoleAssignments;
use crate::storage_gate::{OperationCount, StorageGate, StorageService};
use actix_web::dev::ServerHandle;
use anyhow::{Context, bail};
use parking_lot::Mutex;
use shared_auth::Secret;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;

const SERVICE_READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A running stack. Dropping it stops every child process; [`DevStack::stop`] does it gracefully.
pub struct DevStack {
    /// Identities and their token signer.
    pub identities: Arc<IdentityProvider>,
    /// The role table the emulators enforce.
    pub roles: Arc<RoleAssignments>,
    /// The Key Vault emulator.
    pub vault: Arc<KeyVault>,
    /// Certificates.
    pub pki: DevPki,
    /// Addresses.
    pub urls: Urls,
    /// State directory.
    pub state_dir: PathBuf,
    /// Where child output goes.
    pub sink: LogSink,
    /// The ports everything listens on, as bound (none is 0).
    pub(super) ports: Ports,
    pub(super) http: reqwest::Client,
    pub(super) rust_log: String,
    pub(super) telemetry_env: Vec<(String, String)>,
    pub(super) azurite: Mutex<Option<Azurite>>,
    pub(super) azurite_options: AzuriteOptions,
    pub(super) stopped_azurite_ports: Mutex<Option<[u16; 3]>>,
    pub(super) services: Vec<(Service, ChildProcess)>,
    servers: Vec<ServerHandle>,
    pub(super) console: Option<Console>,
    third_party_api_key: Secret,
    master_key: Secret,
    bin_dir: PathBuf,
    gates: Vec<Arc<StorageGate>>,
}

impl std::fmt::Debug for DevStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevStack")
            .field("urls", &self.urls)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// Binds `port` on loopback; a port in use is named in the error.
pub(super) fn bind(port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {port} ({what}) is already in use: stop whatever holds it (another devstack?) \
                 or free the port"
            )
        } else {
            anyhow::anyhow!("cannot listen on 127.0.0.1:{port} ({what}): {e}")
        }
    })
}

/// The port a child process is to bind: `port`, or a free one for 0.
fn child_port(port: u16) -> anyhow::Result<u16> {
    match port {
        0 => free_port(),
        p => Ok(p),
    }
}

fn random_key() -> Secret {
    Secret::new(function_keys::KeyValue::generate().expose())
}

/// The port a listener is bound to.
fn bound_port(listener: &TcpListener) -> anyhow::Result<u16> {
    Ok(listener.local_addr()?.port())
}

impl DevStack {
    /// Starts everything and returns once the services answer `/readyz`.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let state_dir = options.state_dir.clone();
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        let identities = IdentityProvider::new(&Principal::names())?;
        let emulators = Emulators::new(&state_dir.join("pki"), identities)?;

        let identity_listener = bind(options.ports.identity, "identity emulator")?;
        let vault_listener = bind(options.ports.key_vault, "Key Vault emulator")?;
        let blob_listener = bind(options.ports.blob, "blob storage gate")?;
        let queue_listener = bind(options.ports.queue, "queue storage gate")?;
        let ports = Ports {
            identity: bound_port(&identity_listener)?,
            key_vault: bound_port(&vault_listener)?,
            blob: bound_port(&blob_listener)?,
            queue: bound_port(&queue_listener)?,
            third_party_api: child_port(options.ports.third_party_api)?,
            main_app: child_port(options.ports.main_app)?,
            queue_worker: child_port(options.ports.queue_worker)?,
        };
        let urls = Urls::on_loopback(&ports);
        let mut servers = emulators.serve_identity_and_vault(identity_listener, vault_listener)?;
        // The console binds first: the services export their telemetry to it.
        let mut sink = options.sink.clone();
        let mut telemetry_env = options.telemetry_env.clone();
        let console = ConsolePlan::bind(options.console, &mut sink, &mut telemetry_env)?;

        let azurite_options = AzuriteOptions {
            npm_dir: options.npm_dir.clone(),
            data_dir: options.persist_storage.then(|| state_dir.join("azurite")),
            cert: emulators.pki.server_cert.clone(),
            key: emulators.pki.server_key.clone(),
            access_log: options.azurite_access_log,
        };
        let azurite = Azurite::start(&azurite_options, &sink).await?;
        let azurite_endpoints = (
            azurite.queue_endpoint.clone(),
            azurite.blob_endpoint.clone(),
        );
        let mut gates = Vec::new();
        for (listener, service, upstream) in [
            (
                blob_listener,
                StorageService::Blob,
                azurite.blob_endpoint.clone(),
            ),
            (
                queue_listener,
                StorageService::Queue,
                azurite.queue_endpoint.clone(),
            ),
        ] {
            let (server, gate) = emulators.serve_gate(listener, service, upstream)?;
            servers.push(server);
            gates.push(gate);
        }

        let Emulators {
            pki,
            http,
            identities,
            roles,
            vault,
            access_log,
            ..
        } = emulators;
        let mut stack = Self {
            identities,
            roles,
            vault,
            pki,
            urls,
            state_dir,
            sink,
            ports,
            http,
            rust_log: options.rust_log.clone(),
            telemetry_env,
            servers,
            console: None,
            azurite: Mutex::new(Some(azurite)),
            azurite_options,
            stopped_azurite_ports: Mutex::default(),
            services: Vec::new(),
            third_party_api_key: random_key(),
            master_key: random_key(),
            bin_dir: options.bin_dir.clone(),
            gates,
        };
        if let Some(plan) = console {
            stack.serve_console(plan, access_log, &options.services, &azurite_endpoints)?;
        }
        stack.seed().await?;
        for service in &options.services {
            stack.launch(*service).await?;
        }
        Ok(stack)
    }

    /// The secrets, queues, containers and third-party-api's key store (a blob holding
    /// main-app's function key; the master key stays in the vault).
    async fn seed(&self) -> anyhow::Result<()> {
        self.vault.seed(SECRET_NAME, &self.third_party_api_key);
        self.vault.seed(MASTER_KEY_SECRET_NAME, &self.master_key);
        let credential = self.credential(Principal::Devstack)?;
        provision_storage(
            &self.http,
            credential.clone(),
            &self.urls.queue_service,
            &self.urls.blob_service,
        )
        .await?;
        write_key_store(
            &self.http,
            credential,
            &self.urls.key_store,
            &self.third_party_api_key,
        )
        .await?;
        Ok(())
    }

    /// The console, when the options asked for one.
    pub fn console(&self) -> Option<&Console> {
        self.console.as_ref()
    }

    /// The HTTP client that trusts the stack's CA.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The seeded third-party API key (in the vault and in third-party-api's store).
    pub fn third_party_api_key(&self) -> &Secret {
        &self.third_party_api_key
    }

    /// third-party-api's master key, as seeded in the vault.
    pub fn master_key(&self) -> &Secret {
        &self.master_key
    }

    /// The gate in front of one storage service, for faults of that service alone.
    pub fn storage_gate(&self, service: StorageService) -> &StorageGate {
        self.gates
            .iter()
            .find(|gate| gate.service() == service)
            .expect("a gate for each storage service")
    }

    /// Requests the storage gates forwarded to Azurite so far, by caller and operation.
    pub fn storage_operations(&self) -> Vec<OperationCount> {
        let mut counts: Vec<_> = self
            .gates
            .iter()
            .flat_map(|gate| gate.operation_counts().snapshot())
            .collect();
        counts.sort();
        counts
    }

    /// How many `operation` requests (`Get Blob`, `Set Blob Metadata`...) `caller` sent through
    /// the storage gates so far.
    pub fn storage_operations_by(&self, caller: &str, operation: &str) -> u64 {
        self.storage_operations()
            .iter()
            .filter(|c| c.caller == caller && c.operation == operation)
            .map(|c| c.count)
            .sum()
    }

    /// Starts `service` with its environment and waits for `/readyz`.
    pub async fn launch(&mut self, service: Service) -> anyhow::Result<()> {
        self.launch_with(service, &[]).await
    }

    /// Stops a running `service`: SIGTERM and its grace period, or SIGKILL when `crash`.
    /// Returns its exit status.
    pub async fn stop_service(
        &mut self,
        service: Service,
        crash: bool,
    ) -> Option<std::process::ExitStatus> {
        let index = self.services.iter().position(|(s, _)| *s == service)?;
        let (_, process) = self.services.remove(index);
        if crash {
            process.kill().await
        } else {
            process.stop(STOP_GRACE).await
        }
    }

    /// Starts `service` with its environment plus `overrides` and waits for `/readyz`.
    pub async fn launch_with(
        &mut self,
        service: Service,
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let base = self.urls.of(service).to_owned();
        let process = self.spawn_instance(service, overrides, &base).await?;
        self.services.push((service, process));
        Ok(())
    }

    /// The first child (Azurite or a service) that has exited, named, with its status: a stack
    /// with a dead child answers half its requests, so `cargo run -p devstack` stops on it.
    pub fn exited_child(&mut self) -> Option<(String, std::process::ExitStatus)> {
        let azurite = self.azurite.get_mut();
        if let Some(status) = azurite.as_mut().and_then(|a| a.process.try_exit()) {
            return Some(("azurite".to_owned(), status));
        }
        self.services.iter_mut().find_map(|(service, process)| {
            process
                .try_exit()
                .map(|status| (service.name().to_owned(), status))
        })
    }

    /// Starts one more instance of `service` (a replica: give it its own `PORT` in
    /// `overrides`), waits until `base/readyz` answers 200 and hands the process to the caller.
    pub async fn spawn_instance(
        &self,
        service: Service,
        overrides: &[(&str, &str)],
        base: &str,
    ) -> anyhow::Result<ChildProcess> {
        let binary = self.bin_dir.join(service.name());
        if !binary.is_file() {
            bail!(
                "{} is not built: run `cargo build -p {}` (looked in {})",
                service.name(),
                service.name(),
                self.bin_dir.display()
            );
        }
        let mut env = self.service_env(service);
        for (key, value) in overrides {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        self.write_env_file(service.name(), &env)?;
        let mut command = Command::new(&binary);
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut process = ChildProcess::spawn(service.name(), command, &self.sink)
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let started = Instant::now();
        loop {
            if let Some(status) = process.try_exit() {
                bail!(
                    "{} exited during start-up ({status}); its log is above",
                    service.name()
                );
            }
            let ready = self
                .http
                .get(format!("{base}/readyz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(process);
            }
            if started.elapsed() > SERVICE_READY_TIMEOUT {
                bail!(
                    "{} was not ready within {SERVICE_READY_TIMEOUT:?}",
                    service.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the services (SIGTERM, grace period), Azurite and the emulators.
    pub async fn stop(mut self) {
        for (_, process) in self.services.drain(..).rev() {
            process.stop(STOP_GRACE).await;
        }
        let azurite = self.azurite.get_mut().take();
        if let Some(azurite) = azurite {
            azurite.process.stop(Duration::from_secs(5)).await;
        }
        for server in self.servers.drain(..) {
            server.stop(true).await;
        }
        if let Some(console) = self.console.take() {
            console.stop().await;
        }
    }
}
