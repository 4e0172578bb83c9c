//! The whole local Azure, started together: PKI, identity and Key Vault emulators, Azurite behind
//! the storage gates, the seed (secret, queues, container, key store, roles), then the services
//! as child processes with the production environment variables.

use crate::azurite::{ACCOUNT, Azurite, AzuriteOptions};
use crate::identity::{IdentityProvider, MSI_PATH};
use crate::jwt::TENANT_ID;
use crate::keyvault::KeyVault;
use crate::pki::DevPki;
use crate::process::{ChildProcess, LogSink};
use crate::rbac::{Role, RoleAssignments, Scope};
use crate::storage_gate::{StorageGate, StorageService};
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use anyhow::{Context, bail};
use azure_core::credentials::TokenCredential;
use shared_auth::telemetry::RequestTelemetry;
use shared_auth::transport::{TransportOptions, azure_client_options, http_client};
use shared_auth::{MapEnv, Secret};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// The queue main-app writes and queue-worker reads.
pub const QUEUE: &str = "code-requests";
/// Where failing messages go.
pub const POISON_QUEUE: &str = "code-requests-poison";
/// The ledger container.
pub const CONTAINER: &str = "codes";
/// The Key Vault secret holding main-app's key for third-party-api.
pub const SECRET_NAME: &str = "third-party-api-key";
/// The Key Vault secret holding third-party-api's master key.
pub const MASTER_KEY_SECRET_NAME: &str = "third-party-api-master-key";
/// third-party-api's key store container (one blob, shared by every replica).
pub const KEY_STORE_CONTAINER: &str = "third-party-api-keys";
/// The key store blob in [`KEY_STORE_CONTAINER`].
pub const KEY_STORE_BLOB: &str = "keys.json";
/// The function key name that secret matches in third-party-api's store.
pub const FUNCTION_KEY_NAME: &str = "main-app";
/// Identities of the stack: one per service, the rotation job, a developer, and the stack's own
/// (for seeding).
pub const IDENTITIES: &[&str] = &[
    "main-app",
    "queue-worker",
    "third-party-api",
    "rotation",
    "developer",
    "devstack",
];
const SERVICE_READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A service of the system, run from its binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The example third-party API.
    ThirdPartyApi,
    /// The public app.
    MainApp,
    /// The queue consumer.
    QueueWorker,
}

impl Service {
    /// Every service devstack can run today, in start order.
    pub const ALL: &'static [Service] = &[
        Service::ThirdPartyApi,
        Service::MainApp,
        Service::QueueWorker,
    ];

    /// Binary, identity and log prefix name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ThirdPartyApi => "third-party-api",
            Self::MainApp => "main-app",
            Self::QueueWorker => "queue-worker",
        }
    }
}

/// Ports to listen on; 0 picks a free one.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Identity emulator (HTTPS).
    pub identity: u16,
    /// Key Vault emulator (HTTPS).
    pub key_vault: u16,
    /// Blob storage gate (HTTPS).
    pub blob: u16,
    /// Queue storage gate (HTTPS).
    pub queue: u16,
    /// third-party-api (HTTP).
    pub third_party_api: u16,
    /// main-app (HTTP).
    pub main_app: u16,
    /// queue-worker's health port (HTTP).
    pub queue_worker: u16,
}

impl Ports {
    /// The documented ports of `cargo run -p devstack`.
    pub const DEFAULT: Ports = Ports {
        identity: 42356,
        key_vault: 8443,
        blob: 10000,
        queue: 10001,
        third_party_api: 7071,
        main_app: 8080,
        queue_worker: 8081,
    };
    /// Free ports everywhere (tests, several stacks at once).
    pub const EPHEMERAL: Ports = Ports {
        identity: 0,
        key_vault: 0,
        blob: 0,
        queue: 0,
        third_party_api: 0,
        main_app: 0,
        queue_worker: 0,
    };
}

/// How to start a stack.
#[derive(Clone)]
pub struct StackOptions {
    /// Certificates, key store, env files, Azurite data.
    pub state_dir: PathBuf,
    /// Where Azurite's npm package is installed (shared between stacks).
    pub npm_dir: PathBuf,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// Listening ports.
    pub ports: Ports,
    /// Services to launch.
    pub services: Vec<Service>,
    /// Keep Azurite's data in `state_dir/azurite` (otherwise in memory).
    pub persist_storage: bool,
    /// Where child output goes.
    pub sink: LogSink,
    /// `RUST_LOG` for the services.
    pub rust_log: String,
    /// Telemetry settings passed to every service as they are (`OTEL_*`, `LOG_FORMAT`): the
    /// services start with a cleared environment, so nothing else reaches them.
    pub telemetry_env: Vec<(String, String)>,
}

/// Whether a variable of devstack's own environment is telemetry to pass to the services.
pub fn is_telemetry_variable(name: &str) -> bool {
    name.starts_with("OTEL_") || name == "LOG_FORMAT"
}

/// `target/` of this workspace (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The directory of the running executable's profile (`target/debug`), also from a test binary
/// in `target/debug/deps`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

impl StackOptions {
    /// `cargo run -p devstack`: documented ports, state in `target/devstack`, every service.
    pub fn for_development() -> Self {
        let state_dir = target_dir().join("devstack");
        Self {
            npm_dir: state_dir.join("npm"),
            state_dir,
            bin_dir: profile_dir(),
            ports: Ports::DEFAULT,
            services: Service::ALL.to_vec(),
            persist_storage: true,
            sink: LogSink::Stdout,
            rust_log: "info".into(),
            telemetry_env: std::env::vars()
                .filter(|(name, _)| is_telemetry_variable(name))
                .collect(),
        }
    }

    /// An isolated stack in `state_dir`: free ports, in-memory storage, captured logs.
    pub fn for_tests(state_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_owned(),
            npm_dir: target_dir().join("devstack/npm"),
            bin_dir: profile_dir(),
            ports: Ports::EPHEMERAL,
            services: Vec::new(),
            persist_storage: false,
            sink: LogSink::capture(),
            rust_log: "info".into(),
            telemetry_env: Vec::new(),
        }
    }
}

/// Where everything listens.
#[derive(Debug, Clone)]
pub struct Urls {
    /// Identity emulator base, also `AZURE_AUTHORITY_HOST`.
    pub identity: String,
    /// `IDENTITY_ENDPOINT`.
    pub msi_endpoint: String,
    /// `KEY_VAULT_URL`.
    pub key_vault: String,
    /// Blob service of the account, through the gate.
    pub blob_service: String,
    /// Queue service of the account, through the gate.
    pub queue_service: String,
    /// `STORAGE_QUEUE_URL`.
    pub queue: String,
    /// The poison queue.
    pub poison_queue: String,
    /// `CODE_LEDGER_URL`.
    pub container: String,
    /// `THIRD_PARTY_API_KEYS_URL`: third-party-api's key store blob.
    pub key_store: String,
    /// third-party-api base.
    pub third_party_api: String,
    /// `THIRD_PARTY_API_ENDPOINT`.
    pub third_party_api_endpoint: String,
    /// main-app base.
    pub main_app: String,
    /// queue-worker's health port base.
    pub queue_worker: String,
}

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
    http: reqwest::Client,
    servers: Vec<ServerHandle>,
    azurite: std::sync::Mutex<Option<Azurite>>,
    azurite_options: AzuriteOptions,
    stopped_azurite_ports: std::sync::Mutex<Option<[u16; 3]>>,
    services: Vec<(Service, ChildProcess)>,
    third_party_api_key: Secret,
    master_key: Secret,
    rust_log: String,
    telemetry_env: Vec<(String, String)>,
    bin_dir: PathBuf,
    main_app_port: u16,
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

fn bind(port: u16, what: &str) -> anyhow::Result<TcpListener> {
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

/// Serves `configure` over HTTPS on `listener`, in this process.
pub(crate) fn serve_https<F>(
    listener: TcpListener,
    tls: &rustls::ServerConfig,
    configure: F,
) -> anyhow::Result<ServerHandle>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let server = HttpServer::new(move || {
        App::new()
            .wrap(RequestTelemetry)
            .configure(configure.clone())
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .listen_rustls_0_23(listener, tls.clone())?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}

impl DevStack {
    /// Starts everything and returns once the services answer `/readyz`.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let state_dir = options.state_dir.clone();
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        let pki = DevPki::ensure(&state_dir.join("pki"))?;
        let tls = pki.server_config()?;
        let http = http_client(&TransportOptions {
            extra_ca_certs: Some(pki.ca_cert.clone()),
            ..Default::default()
        })?;

        let identities = Arc::new(IdentityProvider::new(IDENTITIES)?);
        let roles = Arc::new(RoleAssignments::default());
        grant_role_table(&identities, &roles);
        let vault = Arc::new(KeyVault::new(identities.clone(), roles.clone()));

        let identity_listener = bind(options.ports.identity, "identity emulator")?;
        let vault_listener = bind(options.ports.key_vault, "Key Vault emulator")?;
        let blob_listener = bind(options.ports.blob, "blob storage gate")?;
        let queue_listener = bind(options.ports.queue, "queue storage gate")?;
        let port = |l: &TcpListener| l.local_addr().map(|a| a.port());
        let identity_base = format!("https://127.0.0.1:{}", port(&identity_listener)?);
        let vault_base = format!("https://127.0.0.1:{}", port(&vault_listener)?);
        let blob_service = format!("https://127.0.0.1:{}/{ACCOUNT}", port(&blob_listener)?);
        let queue_service = format!("https://127.0.0.1:{}/{ACCOUNT}", port(&queue_listener)?);
        let third_party_api_port = match options.ports.third_party_api {
            0 => crate::azurite::free_port()?,
            p => p,
        };
        let main_app_port = match options.ports.main_app {
            0 => crate::azurite::free_port()?,
            p => p,
        };
        let queue_worker_port = match options.ports.queue_worker {
            0 => crate::azurite::free_port()?,
            p => p,
        };
        let third_party_api = format!("http://127.0.0.1:{third_party_api_port}");
        let urls = Urls {
            msi_endpoint: format!("{identity_base}{MSI_PATH}"),
            identity: identity_base,
            key_vault: vault_base,
            queue: format!("{queue_service}/{QUEUE}"),
            poison_queue: format!("{queue_service}/{POISON_QUEUE}"),
            container: format!("{blob_service}/{CONTAINER}"),
            key_store: format!("{blob_service}/{KEY_STORE_CONTAINER}/{KEY_STORE_BLOB}"),
            blob_service,
            queue_service,
            third_party_api_endpoint: format!("{third_party_api}/api/RandomNumber"),
            third_party_api,
            main_app: format!("http://127.0.0.1:{main_app_port}"),
            queue_worker: format!("http://127.0.0.1:{queue_worker_port}"),
        };

        let mut servers = Vec::new();
        let mut gates = Vec::new();
        let provider = identities.clone();
        servers.push(serve_https(identity_listener, &tls, move |cfg| {
            provider.configure(cfg)
        })?);
        let kv = vault.clone();
        servers.push(serve_https(vault_listener, &tls, move |cfg| {
            kv.configure(cfg)
        })?);

        let azurite_options = AzuriteOptions {
            npm_dir: options.npm_dir.clone(),
            data_dir: options.persist_storage.then(|| state_dir.join("azurite")),
            cert: pki.server_cert.clone(),
            key: pki.server_key.clone(),
        };
        let azurite = Azurite::start(&azurite_options, &options.sink).await?;
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
            let gate = Arc::new(StorageGate::new(
                service,
                upstream,
                http.clone(),
                identities.clone(),
                roles.clone(),
            ));
            gates.push(gate.clone());
            servers.push(serve_https(listener, &tls, move |cfg| gate.configure(cfg))?);
        }

        let mut stack = Self {
            identities,
            roles,
            vault,
            pki,
            urls,
            state_dir,
            sink: options.sink.clone(),
            http,
            servers,
            azurite: std::sync::Mutex::new(Some(azurite)),
            azurite_options,
            stopped_azurite_ports: std::sync::Mutex::default(),
            services: Vec::new(),
            third_party_api_key: random_key(),
            master_key: random_key(),
            rust_log: options.rust_log.clone(),
            telemetry_env: options.telemetry_env.clone(),
            bin_dir: options.bin_dir.clone(),
            main_app_port,
            gates,
        };
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
        let credential = self.credential("devstack")?;
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
            KeyStoreWrite::Replace,
        )
        .await?;
        Ok(())
    }

    /// The environment `service` runs with: the production variable names, pointing here.
    pub fn service_env(&self, service: Service) -> Vec<(String, String)> {
        let identity = self
            .identities
            .get(service.name())
            .expect("every service has an identity");
        let mut env = vec![
            (
                "AZURE_TOKEN_CREDENTIALS",
                "ManagedIdentityCredential".to_owned(),
            ),
            ("IDENTITY_ENDPOINT", self.urls.msi_endpoint.clone()),
            (
                "IDENTITY_HEADER",
                identity.identity_header().expose().to_owned(),
            ),
            ("EXTRA_CA_CERTS", self.pki.ca_cert.display().to_string()),
            ("RUST_LOG", self.rust_log.clone()),
            ("BIND_ADDRESS", "127.0.0.1".to_owned()),
        ];
        match service {
            Service::QueueWorker => {
                let port = self
                    .urls
                    .queue_worker
                    .rsplit(':')
                    .next()
                    .unwrap_or_default();
                env.push(("PORT", port.to_owned()));
                env.push(("STORAGE_QUEUE_URL", self.urls.queue.clone()));
                env.push(("POISON_QUEUE_URL", self.urls.poison_queue.clone()));
                env.push(("CODE_LEDGER_URL", self.urls.container.clone()));
            }
            Service::MainApp => {
                env.push(("PORT", self.main_app_port.to_string()));
                env.push((
                    "THIRD_PARTY_API_ENDPOINT",
                    self.urls.third_party_api_endpoint.clone(),
                ));
                env.push(("KEY_VAULT_URL", self.urls.key_vault.clone()));
                env.push(("THIRD_PARTY_API_SECRET_NAME", SECRET_NAME.to_owned()));
                env.push(("STORAGE_QUEUE_URL", self.urls.queue.clone()));
                env.push(("CODE_LEDGER_URL", self.urls.container.clone()));
            }
            Service::ThirdPartyApi => {
                let port = self
                    .urls
                    .third_party_api
                    .rsplit(':')
                    .next()
                    .unwrap_or_default();
                env.push(("PORT", port.to_owned()));
                env.push(("THIRD_PARTY_API_KEYS_URL", self.urls.key_store.clone()));
                env.push(("KEY_VAULT_URL", self.urls.key_vault.clone()));
                env.push((
                    "THIRD_PARTY_API_MASTER_KEY_SECRET_NAME",
                    MASTER_KEY_SECRET_NAME.to_owned(),
                ));
            }
        }
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        env.extend(self.telemetry_env.iter().cloned());
        env
    }

    /// A service principal environment for `identity` (client secret through the identity
    /// emulator): what a developer or a test uses to call the emulators as that identity.
    pub fn client_env(&self, identity: &str) -> anyhow::Result<MapEnv> {
        let id = self
            .identities
            .get(identity)
            .with_context(|| format!("no identity named {identity}"))?;
        Ok(MapEnv::new()
            .with("AZURE_TOKEN_CREDENTIALS", "ClientSecretCredential")
            .with("AZURE_TENANT_ID", TENANT_ID)
            .with("AZURE_CLIENT_ID", &id.client_id)
            .with("AZURE_CLIENT_SECRET", id.client_secret().expose())
            .with("AZURE_AUTHORITY_HOST", &self.urls.identity)
            .with("EXTRA_CA_CERTS", self.pki.ca_cert.display().to_string()))
    }

    /// What `keyless rotate` runs with: the rotation identity as a service principal, the
    /// vault, the two secrets and third-party-api (its admin API is at the same origin).
    pub fn rotation_env(&self) -> anyhow::Result<MapEnv> {
        Ok(self
            .client_env("rotation")?
            .with("KEY_VAULT_URL", &self.urls.key_vault)
            .with("THIRD_PARTY_API_SECRET_NAME", SECRET_NAME)
            .with(
                "THIRD_PARTY_API_MASTER_KEY_SECRET_NAME",
                MASTER_KEY_SECRET_NAME,
            )
            .with(
                "THIRD_PARTY_API_ENDPOINT",
                &self.urls.third_party_api_endpoint,
            ))
    }

    /// A real `ClientSecretCredential` for `identity`, built by `shared-auth`.
    pub fn credential(&self, identity: &str) -> anyhow::Result<Arc<dyn TokenCredential>> {
        let env = self.client_env(identity)?;
        Ok(shared_auth::credential_from_env(&env, &self.http)?.credential)
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

    /// The port main-app is to listen on.
    pub fn main_app_port(&self) -> u16 {
        self.main_app_port
    }

    /// Requests the storage gates forwarded to Azurite so far, by caller and operation.
    pub fn storage_operations(&self) -> Vec<crate::storage_gate::OperationCount> {
        let mut counts: Vec<_> = self
            .gates
            .iter()
            .flat_map(|gate| gate.operation_counts().snapshot())
            .collect();
        counts.sort();
        counts
    }

    /// Process ids of every child (Azurite and the services).
    pub fn child_pids(&self) -> Vec<u32> {
        self.azurite_pid()
            .into_iter()
            .chain(self.services.iter().map(|(_, p)| p.pid()))
            .collect()
    }

    /// The process id of a running `service`, for fault injection.
    pub fn service_pid(&self, service: Service) -> Option<u32> {
        self.services
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, p)| p.pid())
    }

    /// Azurite's process id, for fault injection (SIGSTOP as a storage stall).
    pub fn azurite_pid(&self) -> Option<u32> {
        self.azurite
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|a| a.process.pid())
    }

    /// Stops Azurite (a storage outage); [`DevStack::start_azurite`] brings it back on the same
    /// ports with the same data (when the stack persists storage).
    pub async fn stop_azurite(&self) {
        let azurite = self
            .azurite
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(azurite) = azurite {
            let ports = azurite.stop_keeping_ports().await;
            *self
                .stopped_azurite_ports
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(ports);
        }
    }

    /// Starts Azurite again after [`DevStack::stop_azurite`].
    pub async fn start_azurite(&self) -> anyhow::Result<()> {
        let ports = self
            .stopped_azurite_ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .context("Azurite was not stopped")?;
        let azurite = Azurite::start_on(&self.azurite_options, &self.sink, ports).await?;
        *self.azurite.lock().unwrap_or_else(|p| p.into_inner()) = Some(azurite);
        Ok(())
    }

    /// Writes `<state>/<name>.env` (mode 0600) with `env` as `KEY=VALUE` lines.
    pub fn write_env_file(&self, name: &str, env: &[(String, String)]) -> anyhow::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.state_dir.join(format!("{name}.env"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        for (key, value) in env {
            writeln!(file, "{key}={value}")?;
        }
        Ok(path)
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
        let base = match service {
            Service::ThirdPartyApi => self.urls.third_party_api.clone(),
            Service::MainApp => self.urls.main_app.clone(),
            Service::QueueWorker => self.urls.queue_worker.clone(),
        };
        let process = self.spawn_instance(service, overrides, &base).await?;
        self.services.push((service, process));
        Ok(())
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
        let azurite = self
            .azurite
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(azurite) = azurite {
            azurite.process.stop(Duration::from_secs(5)).await;
        }
        for server in self.servers.drain(..) {
            server.stop(true).await;
        }
    }
}

/// Creates the queues and the ledger container (an existing one is fine) through the storage
/// endpoints `queue_service` and `blob_service` (`https://host:port/<account>`).
pub async fn provision_storage(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    queue_service: &str,
    blob_service: &str,
) -> anyhow::Result<()> {
    let queue_options = azure_storage_queue::QueueClientOptions {
        client_options: azure_client_options(http),
        ..Default::default()
    };
    for queue in [QUEUE, POISON_QUEUE] {
        let url = format!("{queue_service}/{queue}");
        let client = azure_storage_queue::QueueClient::new(
            url.parse()?,
            Some(credential.clone()),
            Some(queue_options.clone()),
        )?;
        if let Err(e) = client.create(None).await
            && e.http_status() != Some(azure_core::http::StatusCode::Conflict)
        {
            return Err(e).with_context(|| format!("cannot create queue {url}"));
        }
    }
    create_container(http, credential, &format!("{blob_service}/{CONTAINER}"))
        .await
        .context("cannot create the ledger container")
}

/// Creates the blob container at `url` (an existing one is fine).
async fn create_container(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    url: &str,
) -> anyhow::Result<()> {
    let container = azure_storage_blob::BlobContainerClient::new(
        url.parse()?,
        Some(credential),
        Some(azure_storage_blob::BlobContainerClientOptions {
            client_options: azure_client_options(http),
            ..Default::default()
        }),
    )?;
    match container.create(None).await {
        Err(e) if e.http_status() != Some(azure_core::http::StatusCode::Conflict) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Whether [`write_key_store`] replaces a key store that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreWrite {
    /// Always write (a fresh stack: the vault is new too).
    Replace,
    /// Keep an existing store (compose: what exists is kept).
    KeepExisting,
}

/// Writes third-party-api's key store blob at `url` holding main-app's function key
/// ([`FUNCTION_KEY_NAME`] = `key`), creating its container first.
pub async fn write_key_store(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    url: &str,
    key: &Secret,
    mode: KeyStoreWrite,
) -> anyhow::Result<()> {
    use third_party_api::key_store::{KeyDocument, KeyName, KeyValue};
    let blob_url: azure_core::http::Url = url.parse()?;
    let container_url = url
        .rsplit_once('/')
        .map(|(container, _)| container.to_owned())
        .context("the key store URL names no blob")?;
    create_container(http, credential.clone(), &container_url)
        .await
        .context("cannot create the key store container")?;
    let document = KeyDocument::new(
        None,
        &[(
            KeyName::parse(FUNCTION_KEY_NAME).map_err(anyhow::Error::msg)?,
            KeyValue::parse(key.expose()).map_err(anyhow::Error::msg)?,
        )],
    );
    let store = third_party_api::key_store::BlobKeyStore::new(blob_url, credential, http)?;
    let condition = match (mode, store.read().await.map_err(anyhow::Error::msg)?) {
        (KeyStoreWrite::KeepExisting, Some(_)) => return Ok(()),
        (_, Some((_, etag))) => third_party_api::key_store::WriteCondition::Matches(etag),
        (_, None) => third_party_api::key_store::WriteCondition::Absent,
    };
    store
        .write(document.to_json(), condition)
        .await
        .context("cannot write the key store")?;
    Ok(())
}

fn random_key() -> Secret {
    Secret::new(third_party_api::key_store::KeyValue::generate().expose())
}

/// The local resource a scope of the role table stands for; `None` for the container registry
/// (image pulls have no local counterpart).
pub fn local_scope(kind: ops::roles::ScopeKind) -> Option<Scope> {
    use ops::roles::ScopeKind;
    match kind {
        ScopeKind::Secret => Some(Scope::Secret(SECRET_NAME.to_owned())),
        ScopeKind::MasterKeySecret => Some(Scope::Secret(MASTER_KEY_SECRET_NAME.to_owned())),
        ScopeKind::KeyStoreContainer => Some(Scope::Container(KEY_STORE_CONTAINER.to_owned())),
        ScopeKind::Queue => Some(Scope::Queue(QUEUE.to_owned())),
        ScopeKind::PoisonQueue => Some(Scope::Queue(POISON_QUEUE.to_owned())),
        ScopeKind::Container => Some(Scope::Container(CONTAINER.to_owned())),
        ScopeKind::Registry => None,
    }
}

/// The role table (`ops::roles`, the one `infra/` and `keyless doctor` use), and nothing more;
/// plus the developer (an operator: the apps' data roles and Processor on the poison queue) and
/// the stack's own seeding identity.
pub(crate) fn grant_role_table(identities: &IdentityProvider, roles: &RoleAssignments) {
    let oid = |name: &str| {
        identities
            .get(name)
            .expect("known identity")
            .object_id
            .clone()
    };
    for row in ops::roles::GRANTS {
        if let Some(at) = local_scope(row.scope) {
            roles.grant(&oid(row.identity.name()), row.role, at);
        }
    }
    for (role, kind) in ops::roles::operator_grants() {
        if let Some(at) = local_scope(kind) {
            roles.grant(&oid("developer"), role, at);
        }
    }
    let admin = oid("devstack");
    roles.grant(&admin, Role::KeyVaultSecretsOfficer, Scope::Vault);
    roles.grant(
        &admin,
        Role::StorageQueueDataContributor,
        Scope::StorageAccount,
    );
    roles.grant(
        &admin,
        Role::StorageBlobDataContributor,
        Scope::StorageAccount,
    );
}
