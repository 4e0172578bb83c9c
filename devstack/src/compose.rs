//! devstack in containers (`docker-compose.yml`): `devstack compose init` prepares the volumes
//! once, `devstack compose serve` runs the identity and Key Vault emulators and the storage
//! gates in front of the Azurite container.
//!
//! The services reach their identity as workload identity does on Kubernetes: each one reads a
//! federated token from a file (`AZURE_FEDERATED_TOKEN_FILE`) and exchanges it at the identity
//! emulator (`AZURE_AUTHORITY_HOST`) for its own access tokens. The compose file then names only
//! client ids, which are not secrets; every secret is generated here, into the volumes.
//!
//! Layout under `--dir` (default `/devstack`): each subdirectory is its own named volume, so a
//! container mounts only what it needs (`docker-compose.yml` says who mounts which):
//! - `keys/` (volume `devstack-keys`; `init` and `local-azure` only): `pki/` (the dev CA with its
//!   key, local-azure's server certificate), `identity/signing.pk8` (the token signing key, so
//!   restarts keep tokens valid), `keyvault/secrets.json` (what the vault holds at start:
//!   main-app's function key `third-party-api-key` and third-party-api's master key
//!   `third-party-api-master-key`).
//! - `ca/ca.pem` (volume `ca-public`): the CA certificate alone, for the services.
//! - `azurite-tls/` (volume `azurite-tls`): Azurite's own certificate and key, for `azurite` only.
//! - `workload-identity/<service>/token` (volume `token-<service>`): one service's federated
//!   token, renewed by `serve`.
//!
//! third-party-api keeps its keys as in Azure: in the blob `third-party-api-keys/keys.json`,
//! which `serve` writes once storage is provisioned (holding the vault's `third-party-api-key` as
//! function key `main-app`; an existing blob with keys is kept, so a restart keeps a rotated
//! store), read through the storage gate with its own identity; its master key comes from the
//! vault.
//!
//! Run as root (compose runs `init` so, since fresh volumes belong to root), `init` and `serve`
//! give every file and directory they write to [`SERVICE_USER`], the user every image runs as.

use crate::identity::IdentityProvider;
use crate::jwt::TokenSigner;
use crate::keyvault::KeyVault;
use crate::pki::{DevPki, write_file};
use crate::rbac::RoleAssignments;
use crate::stack::{
    FUNCTION_KEY_NAME, IDENTITIES, KEY_STORE_BLOB, KEY_STORE_CONTAINER, KeyStoreWrite,
    MASTER_KEY_SECRET_NAME, Ports, SECRET_NAME, grant_role_table, write_key_store,
};
use crate::storage_gate::{StorageGate, StorageService};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use shared_auth::transport::{TransportOptions, http_client};
use shared_auth::{MapEnv, Secret};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use third_party_api::key_store::{
    BlobKeyStore, KeyDocument, KeyName, KeyScope, KeyValue, WriteCondition,
};

/// Where the volumes are mounted in every container (`--dir`).
pub const DEFAULT_DIR: &str = "/devstack";
/// The services that get a federated token file.
pub const WORKLOADS: &[&str] = &["main-app", "queue-worker", "third-party-api"];
/// The vault's secrets `init` generates when absent: main-app's key and the master key.
pub const VAULT_SECRETS: &[&str] = &[SECRET_NAME, MASTER_KEY_SECRET_NAME];
/// Lifetime of a federated token, as a projected service account token's default.
pub const FEDERATED_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How often `serve` rewrites the federated tokens (the SDK re-reads the file every 10 min).
pub const FEDERATED_TOKEN_RENEWAL: Duration = Duration::from_secs(300);
/// `serve`'s readiness port (plain HTTP on loopback, for the container's health check).
pub const READY_PORT: u16 = 8079;
/// Azurite's blob and queue ports inside the compose network.
pub const AZURITE_PORTS: (u16, u16) = (10000, 10001);
/// Azurite's host name in compose: the only name its certificate is valid for.
pub const AZURITE_HOST: &str = "azurite";
/// The user and group every image runs as (distroless `nonroot`).
pub const SERVICE_USER: (u32, u32) = (65532, 65532);

/// The volumes mounted under one directory (`--dir`).
#[derive(Debug, Clone)]
pub struct Volume {
    dir: PathBuf,
}

impl Volume {
    /// The volumes mounted under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The private volume: CA key, signing key, vault contents (`init` and `serve` only).
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    fn pki_dir(&self) -> PathBuf {
        self.keys_dir().join("pki")
    }

    fn signing_key(&self) -> PathBuf {
        self.keys_dir().join("identity/signing.pk8")
    }

    fn vault_seed(&self) -> PathBuf {
        self.keys_dir().join("keyvault/secrets.json")
    }

    /// The CA certificate the services trust (`EXTRA_CA_CERTS`), alone in its volume.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca/ca.pem")
    }

    /// Azurite's certificate chain (valid for [`AZURITE_HOST`] only).
    pub fn azurite_cert(&self) -> PathBuf {
        self.dir.join("azurite-tls/server.pem")
    }

    /// Azurite's private key.
    pub fn azurite_key(&self) -> PathBuf {
        self.dir.join("azurite-tls/server.key")
    }

    /// The federated token file of `workload`, alone in its volume.
    pub fn federated_token(&self, workload: &str) -> PathBuf {
        self.dir
            .join("workload-identity")
            .join(workload)
            .join("token")
    }

    /// Every volume's mount point, the private one first.
    pub fn mount_points(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.keys_dir()];
        for file in [self.ca_cert(), self.azurite_cert()]
            .into_iter()
            .chain(WORKLOADS.iter().map(|w| self.federated_token(w)))
        {
            dirs.extend(file.parent().map(Path::to_owned));
        }
        dirs
    }

    fn identities(&self) -> anyhow::Result<IdentityProvider> {
        let signer = TokenSigner::load_or_create(&self.signing_key())?;
        Ok(IdentityProvider::with_signer(IDENTITIES, signer))
    }
}

/// Who gets the files `init` and `serve` write: [`SERVICE_USER`] when running as root, else
/// nobody (the writer keeps them).
fn file_owner() -> anyhow::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::MetadataExt;
    // proc(5): /proc/<pid> belongs to the process's effective user and group.
    let uid = std::fs::metadata("/proc/self")
        .context("cannot tell which user this is (no /proc)")?
        .uid();
    Ok((uid == 0).then_some(SERVICE_USER))
}

/// `compose init`: PKI, signing key, vault contents and federated tokens, each into its volume.
/// What exists is kept (the CA, the signing key, each secret of the vault), so running it again
/// changes no credential. It needs no network: `serve` writes the key store blob.
pub async fn init(volume: &Volume) -> anyhow::Result<()> {
    init_as(volume, file_owner()?).await
}

/// [`init`], giving every file and directory it writes to `owner` when one is given.
async fn init_as(volume: &Volume, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    DevPki::ensure(&volume.pki_dir())?;
    DevPki::issue_server_cert(
        &volume.pki_dir(),
        &[AZURITE_HOST],
        &volume.azurite_cert(),
        &volume.azurite_key(),
    )?;
    let ca = std::fs::read(volume.pki_dir().join("ca.pem"))?;
    write_file(&volume.ca_cert(), &ca, 0o644, owner)?;
    let identities = volume.identities()?;
    let mut seed = read_vault_seed(volume)?.unwrap_or_default();
    for name in VAULT_SECRETS {
        seed.entry((*name).to_owned())
            .or_insert_with(|| KeyValue::generate().expose().to_owned());
    }
    write_file(
        &volume.vault_seed(),
        &serde_json::to_vec(&seed)?,
        0o600,
        owner,
    )?;
    write_federated_tokens(volume, &identities, owner)?;
    if let Some(owner) = owner {
        for dir in volume.mount_points() {
            give_tree(&dir, owner)?;
        }
    }
    tracing::info!(dir = %volume.dir.display(), "devstack volumes ready");
    Ok(())
}

/// The vault contents `init` wrote, if it did: secret name to value.
fn read_vault_seed(volume: &Volume) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let path = volume.vault_seed();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // The position only: serde's message could quote a value, and every value is a secret.
    let seed = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a JSON object of secret names to values (line {}, column {}): remove the \
             devstack-keys volume to start afresh",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    Ok(Some(seed))
}

/// Gives `dir` and everything under it to `owner` (symbolic links themselves, not followed).
fn give_tree(dir: &Path, (uid, gid): (u32, u32)) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
        .with_context(|| format!("cannot give {} to {uid}:{gid}", dir.display()))?;
    if std::fs::symlink_metadata(dir)?.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            give_tree(&entry?.path(), (uid, gid))?;
        }
    }
    Ok(())
}

/// Writes every workload's federated token into its volume (mode 0600, owned by `owner` when
/// given, replaced atomically).
fn write_federated_tokens(
    volume: &Volume,
    identities: &IdentityProvider,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    for workload in WORKLOADS {
        let identity = identities
            .get(workload)
            .with_context(|| format!("no identity named {workload}"))?;
        let token =
            identities.issue_federated(&identity, FEDERATED_TOKEN_LIFETIME.as_secs() as i64);
        write_file(
            &volume.federated_token(workload),
            token.as_bytes(),
            0o600,
            owner,
        )?;
    }
    Ok(())
}

/// `compose serve`: the emulators on their documented ports on every interface, gates in front
/// of Azurite at `azurite_host`, storage and third-party-api's key store provisioned as soon as
/// Azurite answers (ready from then on). Runs until SIGTERM or SIGINT.
pub async fn serve(volume: &Volume, azurite_host: &str) -> anyhow::Result<()> {
    let pki = DevPki::ensure(&volume.pki_dir())?;
    let tls = pki.server_config()?;
    let http = http_client(&TransportOptions {
        extra_ca_certs: Some(pki.ca_cert.clone()),
        ..Default::default()
    })?;
    let identities = Arc::new(volume.identities()?);
    let roles = Arc::new(RoleAssignments::default());
    grant_role_table(&identities, &roles);
    let vault = Arc::new(KeyVault::new(identities.clone(), roles.clone()));
    let seed = read_vault_seed(volume)?
        .context("the volume has no vault contents: run `devstack compose init` first")?;
    let function_key = Secret::new(
        seed.get(SECRET_NAME)
            .with_context(|| {
                format!("the vault contents have no {SECRET_NAME}: run `devstack compose init`")
            })?
            .as_str(),
    );
    KeyValue::parse(function_key.expose()).map_err(|why| {
        anyhow::anyhow!("the vault's {SECRET_NAME} cannot be a function key: {why}")
    })?;
    for (name, value) in seed {
        vault.seed(&name, &Secret::new(value));
    }

    let ports = Ports::DEFAULT;
    let listen = |port: u16| {
        TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("cannot listen on {port}"))
    };
    let mut servers = Vec::new();
    let provider = identities.clone();
    servers.push(crate::stack::serve_https(
        listen(ports.identity)?,
        &tls,
        move |cfg| provider.configure(cfg),
    )?);
    let kv = vault.clone();
    servers.push(crate::stack::serve_https(
        listen(ports.key_vault)?,
        &tls,
        move |cfg| kv.configure(cfg),
    )?);
    for (port, service, upstream_port) in [
        (ports.blob, StorageService::Blob, AZURITE_PORTS.0),
        (ports.queue, StorageService::Queue, AZURITE_PORTS.1),
    ] {
        let gate = Arc::new(StorageGate::new(
            service,
            format!("https://{azurite_host}:{upstream_port}"),
            http.clone(),
            identities.clone(),
            roles.clone(),
        ));
        servers.push(crate::stack::serve_https(
            listen(port)?,
            &tls,
            move |cfg| gate.configure(cfg),
        )?);
    }

    let ready = Arc::new(AtomicBool::new(false));
    let readiness = ready.clone();
    let health = HttpServer::new(move || {
        let readiness = readiness.clone();
        App::new().route(
            "/readyz",
            web::get().to(move || {
                let ready = readiness.load(Ordering::Relaxed);
                async move {
                    if ready {
                        HttpResponse::Ok().body("ready")
                    } else {
                        HttpResponse::ServiceUnavailable().body("storage not provisioned yet")
                    }
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", READY_PORT))?
    .run();
    let health_handle = health.handle();
    tokio::spawn(health);

    let renew_volume = volume.clone();
    let renew_identities = identities.clone();
    let owner = file_owner()?;
    tokio::spawn(async move {
        loop {
            if let Err(e) = write_federated_tokens(&renew_volume, &renew_identities, owner) {
                tracing::error!(error = %format!("{e:#}"), "cannot renew the federated tokens");
            }
            tokio::time::sleep(FEDERATED_TOKEN_RENEWAL).await;
        }
    });

    let provision =
        provision_until_done(identities.clone(), http.clone(), ports, function_key, ready);
    tokio::pin!(provision);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut provisioned = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            result = &mut provision, if !provisioned => {
                result?;
                provisioned = true;
            }
        }
    }
    tracing::info!("stopping");
    for server in servers.into_iter().chain([health_handle]) {
        server.stop(true).await;
    }
    Ok(())
}

/// Creates the queues, the containers and third-party-api's key store (holding `function_key`,
/// the vault's [`SECRET_NAME`]) through the local gates as the `devstack` identity, retrying
/// (with a log line each time) until Azurite answers; then marks the emulators ready.
async fn provision_until_done(
    identities: Arc<IdentityProvider>,
    http: reqwest::Client,
    ports: Ports,
    function_key: Secret,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let admin = identities.get("devstack").context("no devstack identity")?;
    let env = MapEnv::new()
        .with("AZURE_TOKEN_CREDENTIALS", "ClientSecretCredential")
        .with("AZURE_TENANT_ID", crate::jwt::TENANT_ID)
        .with("AZURE_CLIENT_ID", &admin.client_id)
        .with("AZURE_CLIENT_SECRET", admin.client_secret().expose())
        .with(
            "AZURE_AUTHORITY_HOST",
            format!("https://127.0.0.1:{}", ports.identity),
        );
    let credential = shared_auth::credential_from_env(&env, &http)?.credential;
    let account = crate::azurite::ACCOUNT;
    let queue_service = format!("https://127.0.0.1:{}/{account}", ports.queue);
    let blob_service = format!("https://127.0.0.1:{}/{account}", ports.blob);
    let mut delay = Duration::from_millis(500);
    loop {
        match provision(
            &http,
            credential.clone(),
            &queue_service,
            &blob_service,
            &function_key,
        )
        .await
        {
            Ok(holds_key) => {
                if !holds_key {
                    tracing::error!(
                        blob = %key_store_url(&blob_service),
                        "the key store does not hold the vault's {SECRET_NAME}, so main-app's \
                         calls to third-party-api will be refused: Azurite's data is older than \
                         the devstack-keys volume (or the vault lost a rotation at a restart); \
                         `down -v` starts afresh"
                    );
                }
                ready.store(true, Ordering::Relaxed);
                tracing::info!(
                    "storage provisioned: queues, ledger container and key store exist; ready"
                );
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(
                    error = %format!("{e:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "storage not provisioned yet (is Azurite answering?); not ready"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// third-party-api's key store blob under `blob_service` (`https://host:port/<account>`).
pub fn key_store_url(blob_service: &str) -> String {
    format!("{blob_service}/{KEY_STORE_CONTAINER}/{KEY_STORE_BLOB}")
}

/// Creates the queues and the ledger container, then third-party-api's key store holding
/// `function_key` as [`FUNCTION_KEY_NAME`] unless a store with keys exists (a restart keeps a
/// rotated one). An empty store is the one third-party-api creates when it starts first (compose
/// tools that ignore health conditions): `function_key` goes into it. Whether the store holds
/// `function_key` under any name (false: main-app's key would be refused).
async fn provision(
    http: &reqwest::Client,
    credential: Arc<dyn azure_core::credentials::TokenCredential>,
    queue_service: &str,
    blob_service: &str,
    function_key: &Secret,
) -> anyhow::Result<bool> {
    crate::stack::provision_storage(http, credential.clone(), queue_service, blob_service).await?;
    let url = key_store_url(blob_service);
    write_key_store(
        http,
        credential.clone(),
        &url,
        function_key,
        KeyStoreWrite::KeepExisting,
    )
    .await?;
    let store = BlobKeyStore::new(url.parse()?, credential, http)?;
    let (bytes, etag) = store
        .read()
        .await
        .map_err(anyhow::Error::msg)?
        .context("the key store blob vanished after it was written")?;
    let document = KeyDocument::from_json(&bytes)
        .map_err(|why| anyhow::anyhow!("the key store blob {url} is invalid: {why}"))?;
    let empty = document.keys(KeyScope::Function).next().is_none()
        && document.keys(KeyScope::Host).next().is_none();
    if empty {
        let seeded = KeyDocument::new(
            document.master_key().as_ref(),
            &[(
                KeyName::parse(FUNCTION_KEY_NAME).map_err(anyhow::Error::msg)?,
                KeyValue::parse(function_key.expose()).map_err(anyhow::Error::msg)?,
            )],
        );
        // On a conflict (third-party-api changed it meanwhile) the caller tries again.
        store
            .write(seeded.to_json(), WriteCondition::Matches(etag))
            .await
            .context("cannot write main-app's key into the empty key store")?;
        tracing::info!(blob = %url, "the key store third-party-api created was empty: main-app's key written into it");
        return Ok(true);
    }
    Ok(document
        .keys(KeyScope::Function)
        .any(|(_, value)| value.expose() == function_key.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// Every file under `dir`, relative to it, sorted.
    fn files(dir: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn is_root() -> bool {
        std::fs::metadata("/proc/self").unwrap().uid() == 0
    }

    #[tokio::test]
    async fn init_creates_every_file_private_and_a_second_run_keeps_the_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        init_as(&volume, None).await.unwrap();
        let ca = std::fs::read(volume.ca_cert()).unwrap();
        let key = std::fs::read(volume.signing_key()).unwrap();
        let seed = std::fs::read(volume.vault_seed()).unwrap();
        for path in [
            volume.signing_key(),
            volume.pki_dir().join("ca.key"),
            volume.vault_seed(),
            volume.azurite_key(),
        ]
        .into_iter()
        .chain(WORKLOADS.iter().map(|w| volume.federated_token(w)))
        {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        assert_eq!(mode(&volume.ca_cert()), 0o644);
        // The vault holds main-app's function key and the master key: two distinct valid keys.
        let seed_json: BTreeMap<String, String> = serde_json::from_slice(&seed).unwrap();
        assert_eq!(
            seed_json.keys().map(String::as_str).collect::<Vec<_>>(),
            [SECRET_NAME, MASTER_KEY_SECRET_NAME]
        );
        for value in seed_json.values() {
            KeyValue::parse(value).unwrap();
        }
        assert_ne!(seed_json[SECRET_NAME], seed_json[MASTER_KEY_SECRET_NAME]);

        init_as(&volume, None).await.unwrap();
        assert_eq!(std::fs::read(volume.ca_cert()).unwrap(), ca);
        assert_eq!(std::fs::read(volume.signing_key()).unwrap(), key);
        assert_eq!(std::fs::read(volume.vault_seed()).unwrap(), seed);
    }

    #[tokio::test]
    async fn init_keeps_each_secret_the_vault_has_and_adds_the_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        // What init wrote before the master key moved to the vault: main-app's key alone.
        let old_key = KeyValue::generate();
        let old = BTreeMap::from([(SECRET_NAME, old_key.expose())]);
        write_file(
            &volume.vault_seed(),
            &serde_json::to_vec(&old).unwrap(),
            0o600,
            None,
        )
        .unwrap();
        init_as(&volume, None).await.unwrap();
        let seed = read_vault_seed(&volume).unwrap().unwrap();
        assert_eq!(seed[SECRET_NAME], old_key.expose());
        let master = seed[MASTER_KEY_SECRET_NAME].clone();
        KeyValue::parse(&master).unwrap();
        init_as(&volume, None).await.unwrap();
        assert_eq!(read_vault_seed(&volume).unwrap().unwrap(), seed);
        assert_eq!(seed[MASTER_KEY_SECRET_NAME], master);
    }

    #[tokio::test]
    async fn a_vault_seed_that_is_not_json_stops_init_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        let value = KeyValue::generate();
        let broken = format!("{{\"{SECRET_NAME}\": {}}}", value.expose());
        write_file(&volume.vault_seed(), broken.as_bytes(), 0o600, None).unwrap();
        let error = format!("{:#}", init_as(&volume, None).await.unwrap_err());
        assert!(error.contains("secrets.json"), "{error}");
        assert!(
            !error.contains(value.expose()),
            "the error quotes the value"
        );
        // Nothing replaced it: the operator decides.
        assert_eq!(
            std::fs::read(volume.vault_seed()).unwrap(),
            broken.as_bytes()
        );
    }

    #[tokio::test]
    async fn init_knows_every_identity_and_writes_tokens_for_the_workloads_only() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        init_as(&volume, None).await.unwrap();
        let identities = volume.identities().unwrap();
        for name in IDENTITIES {
            assert!(identities.get(name).is_some(), "{name}");
        }
        let tokens = files(&dir.path().join("workload-identity"));
        let expected: Vec<String> = {
            let mut names: Vec<String> = WORKLOADS.iter().map(|w| format!("{w}/token")).collect();
            names.sort();
            names
        };
        assert_eq!(tokens, expected);
        assert!(!tokens.iter().any(|t| t.starts_with("rotation/")));
    }

    #[tokio::test]
    async fn each_volume_holds_only_its_consumers_files_and_no_key_leaves_the_keys_volume() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        init_as(&volume, None).await.unwrap();
        let mounts = volume.mount_points();
        assert_eq!(mounts[0], volume.keys_dir());
        let listing = |sub: &str| files(&dir.path().join(sub));
        assert_eq!(
            listing("keys"),
            [
                "identity/signing.pk8",
                "keyvault/secrets.json",
                "pki/ca.key",
                "pki/ca.pem",
                "pki/server.key",
                "pki/server.pem"
            ]
        );
        assert_eq!(listing("ca"), ["ca.pem"]);
        assert_eq!(listing("azurite-tls"), ["server.key", "server.pem"]);
        for workload in WORKLOADS {
            assert_eq!(listing(&format!("workload-identity/{workload}")), ["token"]);
        }
        assert!(!dir.path().join("third-party-api").exists());
        // Every directory of the tree is one mount point or holds only mount points.
        let mut all: Vec<String> = files(dir.path());
        for mount in &mounts {
            let prefix = mount.strip_prefix(dir.path()).unwrap();
            all.retain(|f| !Path::new(f).starts_with(prefix));
        }
        assert!(all.is_empty(), "files outside every volume: {all:?}");

        assert_eq!(
            std::fs::read(volume.ca_cert()).unwrap(),
            std::fs::read(volume.pki_dir().join("ca.pem")).unwrap()
        );
        let mut secrets = vec![
            std::fs::read(volume.pki_dir().join("ca.key")).unwrap(),
            std::fs::read(volume.pki_dir().join("server.key")).unwrap(),
            std::fs::read(volume.signing_key()).unwrap(),
        ];
        secrets.extend(
            read_vault_seed(&volume)
                .unwrap()
                .unwrap()
                .into_values()
                .map(String::into_bytes),
        );
        for mount in &mounts[1..] {
            for file in files(mount) {
                let bytes = std::fs::read(mount.join(&file)).unwrap();
                for secret in &secrets {
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                        "{}/{file} holds a private key of the keys volume",
                        mount.display()
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn azurites_certificate_is_valid_for_azurite_only() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        init_as(&volume, None).await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(volume.ca_cert()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap();
        let chain = CertificateDer::pem_file_iter(volume.azurite_cert())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let verify = |name: &'static str| {
            verifier.verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from(name).unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        assert!(verify(AZURITE_HOST).is_ok());
        for other in ["local-azure", "main-app", "localhost"] {
            assert!(verify(other).is_err(), "{other}");
        }
    }

    #[tokio::test]
    async fn provisioning_writes_the_key_store_once_keeps_a_rotated_one_and_fills_an_empty_one() {
        let stack = crate::testing::start_stack(&[]).await;
        let http = stack.http().clone();
        let credential = stack.credential("devstack").unwrap();
        let urls = &stack.urls;
        assert_eq!(key_store_url(&urls.blob_service), urls.key_store);
        let store =
            BlobKeyStore::new(urls.key_store.parse().unwrap(), credential.clone(), &http).unwrap();
        let read = || async { store.read().await.unwrap() };
        let key = Secret::new(KeyValue::generate().expose());
        let run = || {
            provision(
                &http,
                credential.clone(),
                &urls.queue_service,
                &urls.blob_service,
                &key,
            )
        };

        // No store yet (a fresh Azurite; the stack wrote one, so remove it): written with the
        // vault's key as `main-app`.
        let client = azure_storage_blob::BlobClient::new(
            urls.key_store.parse().unwrap(),
            Some(credential.clone()),
            Some(azure_storage_blob::BlobClientOptions {
                client_options: shared_auth::transport::azure_client_options(&http),
                ..Default::default()
            }),
        )
        .unwrap();
        client.delete(None).await.unwrap();
        assert!(read().await.is_none());
        assert!(run().await.unwrap());
        let (bytes, _) = read().await.unwrap();
        let document = KeyDocument::from_json(&bytes).unwrap();
        let keys = |document: &KeyDocument| -> Vec<(String, String)> {
            document
                .keys(KeyScope::Function)
                .map(|(n, v)| (n.to_owned(), v.expose().to_owned()))
                .collect()
        };
        let seeded = [(FUNCTION_KEY_NAME.to_owned(), key.expose().to_owned())];
        assert_eq!(keys(&document), seeded);
        assert!(
            document.master_key().is_none(),
            "the master key stays in the vault"
        );

        // Run again (local-azure restarted): nothing changes.
        let (_, etag) = read().await.unwrap();
        assert!(run().await.unwrap());
        assert_eq!(read().await.unwrap().1, etag);

        // A rotated store (another key holds the vault's new value) is kept as it is; provisioning
        // tells whether it holds the key the vault gives.
        let rotated = KeyValue::generate();
        let name = KeyName::parse("main-app-20260101000000").unwrap();
        let document = KeyDocument::new(None, &[(name, rotated.clone())]);
        store
            .write(document.to_json(), WriteCondition::Matches(etag))
            .await
            .unwrap();
        let (bytes, etag) = read().await.unwrap();
        assert!(!run().await.unwrap(), "the store lacks the old key");
        assert_eq!(read().await.unwrap(), (bytes.clone(), etag));
        let rotated = Secret::new(rotated.expose());
        assert!(
            provision(
                &http,
                credential.clone(),
                &urls.queue_service,
                &urls.blob_service,
                &rotated,
            )
            .await
            .unwrap()
        );
        assert_eq!(read().await.unwrap().0, bytes);

        // third-party-api started first and created an empty store (it does when it finds none):
        // main-app's key goes into it.
        client.delete(None).await.unwrap();
        store
            .write(
                KeyDocument::new(None, &[]).to_json(),
                WriteCondition::Absent,
            )
            .await
            .unwrap();
        assert!(run().await.unwrap());
        let (bytes, etag) = read().await.unwrap();
        assert_eq!(keys(&KeyDocument::from_json(&bytes).unwrap()), seeded);
        assert!(run().await.unwrap());
        assert_eq!(read().await.unwrap().1, etag, "written once");
    }

    #[tokio::test]
    async fn run_as_root_init_gives_every_volume_to_the_services_user() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        // Only root can give files away; otherwise this run gives them to their own user.
        let owner = if is_root() {
            assert_eq!(file_owner().unwrap(), Some(SERVICE_USER));
            SERVICE_USER
        } else {
            let me = std::fs::metadata(dir.path()).unwrap();
            (me.uid(), me.gid())
        };
        init_as(&volume, Some(owner)).await.unwrap();
        for mount in volume.mount_points() {
            let meta = std::fs::metadata(&mount).unwrap();
            assert_eq!((meta.uid(), meta.gid()), owner, "{}", mount.display());
            for file in files(&mount) {
                let meta = std::fs::metadata(mount.join(&file)).unwrap();
                assert_eq!(
                    (meta.uid(), meta.gid()),
                    owner,
                    "{}/{file}",
                    mount.display()
                );
            }
        }
        // The renewal `serve` does keeps them so.
        let identities = volume.identities().unwrap();
        write_federated_tokens(&volume, &identities, Some(owner)).unwrap();
        let token = std::fs::metadata(volume.federated_token("main-app")).unwrap();
        assert_eq!((token.uid(), token.gid()), owner);
        assert_eq!(mode(&volume.federated_token("main-app")), 0o600);
    }

    #[tokio::test]
    async fn a_federated_token_from_the_volume_verifies_with_the_reloaded_key() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        init_as(&volume, None).await.unwrap();
        let token = std::fs::read_to_string(volume.federated_token("queue-worker")).unwrap();
        let reloaded = volume.identities().unwrap();
        let claims = reloaded
            .verifier()
            .verify_from(
                &token,
                crate::identity::FEDERATION_ISSUER,
                &[crate::identity::TOKEN_EXCHANGE_AUDIENCE],
            )
            .unwrap();
        assert_eq!(
            claims.sub,
            crate::identity::federated_subject("queue-worker")
        );
        let fresh = IdentityProvider::new(IDENTITIES).unwrap();
        assert!(
            fresh
                .verifier()
                .verify_from(
                    &token,
                    crate::identity::FEDERATION_ISSUER,
                    &[crate::identity::TOKEN_EXCHANGE_AUDIENCE]
                )
                .is_err()
        );
    }
}
