//! devstack in containers (`docker-compose.yml`): `devstack compose init` prepares the shared
//! volume once, `devstack compose serve` runs the identity and Key Vault emulators and the
//! storage gates in front of the Azurite container.
//!
//! The services reach their identity as workload identity does on Kubernetes: each one reads a
//! federated token from a file (`AZURE_FEDERATED_TOKEN_FILE`) and exchanges it at the identity
//! emulator (`AZURE_AUTHORITY_HOST`) for its own access tokens. The compose file then names only
//! client ids, which are not secrets; every secret is generated here, into the volume.
//!
//! Volume layout (`--dir`, default `/devstack`):
//! - `pki/`: the dev CA and the server certificate (every compose host name).
//! - `identity/signing.pk8`: the token signing key, so restarts keep tokens valid.
//! - `workload-identity/<service>/token`: each service's federated token, renewed by `serve`.
//! - `third-party-api/keys.json`: third-party-api's key store.
//! - `keyvault/secrets.json`: what the vault holds at start (the key main-app fetches).

use crate::identity::IdentityProvider;
use crate::jwt::TokenSigner;
use crate::keyvault::KeyVault;
use crate::pki::{DevPki, write_private};
use crate::rbac::RoleAssignments;
use crate::stack::{FUNCTION_KEY_NAME, IDENTITIES, Ports, SECRET_NAME, grant_role_table};
use crate::storage_gate::{StorageGate, StorageService};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use shared_auth::transport::{TransportOptions, http_client};
use shared_auth::{MapEnv, Secret};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use third_party_api::key_store::{KeyName, KeyScope, KeyStore, KeyValue};

/// The shared volume's mount point in every container.
pub const DEFAULT_DIR: &str = "/devstack";
/// The services that get a federated token file.
pub const WORKLOADS: &[&str] = &["main-app", "queue-worker"];
/// Lifetime of a federated token, as a projected service account token's default.
pub const FEDERATED_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How often `serve` rewrites the federated tokens (the SDK re-reads the file every 10 min).
pub const FEDERATED_TOKEN_RENEWAL: Duration = Duration::from_secs(300);
/// `serve`'s readiness port (plain HTTP on loopback, for the container's health check).
pub const READY_PORT: u16 = 8079;
/// Azurite's blob and queue ports inside the compose network.
pub const AZURITE_PORTS: (u16, u16) = (10000, 10001);

/// The files of one volume.
#[derive(Debug, Clone)]
pub struct Volume {
    dir: PathBuf,
}

impl Volume {
    /// The volume mounted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    fn signing_key(&self) -> PathBuf {
        self.dir.join("identity/signing.pk8")
    }

    /// The federated token file of `workload`.
    pub fn federated_token(&self, workload: &str) -> PathBuf {
        self.dir
            .join("workload-identity")
            .join(workload)
            .join("token")
    }

    /// third-party-api's key store.
    pub fn key_store(&self) -> PathBuf {
        self.dir.join("third-party-api/keys.json")
    }

    fn vault_seed(&self) -> PathBuf {
        self.dir.join("keyvault/secrets.json")
    }

    fn identities(&self) -> anyhow::Result<IdentityProvider> {
        let signer = TokenSigner::load_or_create(&self.signing_key())?;
        Ok(IdentityProvider::with_signer(IDENTITIES, signer))
    }
}

/// `compose init`: PKI, signing key, key store, vault contents and federated tokens. What exists
/// is kept (the CA, the keys, the secret), so running it again changes no credential.
pub async fn init(volume: &Volume) -> anyhow::Result<()> {
    DevPki::ensure(&volume.pki_dir())?;
    let identities = volume.identities()?;
    let store = KeyStore::open(
        &volume.key_store(),
        None,
        vec![(
            KeyName::parse(FUNCTION_KEY_NAME).map_err(anyhow::Error::msg)?,
            KeyValue::generate(),
        )],
    )?;
    if !volume.vault_seed().exists() {
        let key = store
            .list(KeyScope::Function)
            .await
            .into_iter()
            .find(|(name, _)| name == FUNCTION_KEY_NAME)
            .map(|(_, value)| value)
            .context("the key store has no key for main-app")?;
        let seed = BTreeMap::from([(SECRET_NAME, key.expose())]);
        write_private(&volume.vault_seed(), &serde_json::to_vec(&seed)?)?;
    }
    write_federated_tokens(volume, &identities)?;
    tracing::info!(dir = %volume.dir.display(), "devstack volume ready");
    Ok(())
}

/// Writes every workload's federated token (mode 0600, replaced atomically).
fn write_federated_tokens(volume: &Volume, identities: &IdentityProvider) -> anyhow::Result<()> {
    for workload in WORKLOADS {
        let identity = identities
            .get(workload)
            .with_context(|| format!("no identity named {workload}"))?;
        let token =
            identities.issue_federated(&identity, FEDERATED_TOKEN_LIFETIME.as_secs() as i64);
        write_private(&volume.federated_token(workload), token.as_bytes())?;
    }
    Ok(())
}

/// `compose serve`: the emulators on their documented ports on every interface, gates in front
/// of Azurite at `azurite_host`, storage provisioned as soon as Azurite answers. Runs until
/// SIGTERM or SIGINT.
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
    let seed: BTreeMap<String, String> = serde_json::from_slice(
        &std::fs::read(volume.vault_seed())
            .context("the volume has no vault contents: run `devstack compose init` first")?,
    )?;
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
    tokio::spawn(async move {
        loop {
            if let Err(e) = write_federated_tokens(&renew_volume, &renew_identities) {
                tracing::error!(error = %format!("{e:#}"), "cannot renew the federated tokens");
            }
            tokio::time::sleep(FEDERATED_TOKEN_RENEWAL).await;
        }
    });

    let provision = provision_until_done(identities.clone(), http.clone(), ports, ready);
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

/// Creates the queues and the container through the local gates as the `devstack` identity,
/// retrying (with a log line each time) until Azurite answers; then marks the emulators ready.
async fn provision_until_done(
    identities: Arc<IdentityProvider>,
    http: reqwest::Client,
    ports: Ports,
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
        match crate::stack::provision_storage(
            &http,
            credential.clone(),
            &queue_service,
            &blob_service,
        )
        .await
        {
            Ok(()) => {
                ready.store(true, Ordering::Relaxed);
                tracing::info!("storage provisioned: queues and ledger container exist; ready");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(
                    error = %format!("{e:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "Azurite is not answering yet; not ready"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn init_creates_every_file_private_and_a_second_run_keeps_the_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        init(&volume).await.unwrap();
        let ca = std::fs::read(dir.path().join("pki/ca.pem")).unwrap();
        let key = std::fs::read(volume.signing_key()).unwrap();
        let seed = std::fs::read(volume.vault_seed()).unwrap();
        let store = std::fs::read(volume.key_store()).unwrap();
        for path in [
            volume.signing_key(),
            volume.vault_seed(),
            volume.key_store(),
            volume.federated_token("main-app"),
        ] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let seed_json: BTreeMap<String, String> = serde_json::from_slice(&seed).unwrap();
        let store_text = String::from_utf8(store.clone()).unwrap();
        assert!(store_text.contains(&seed_json[SECRET_NAME]));

        init(&volume).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("pki/ca.pem")).unwrap(), ca);
        assert_eq!(std::fs::read(volume.signing_key()).unwrap(), key);
        assert_eq!(std::fs::read(volume.vault_seed()).unwrap(), seed);
        assert_eq!(std::fs::read(volume.key_store()).unwrap(), store);
    }

    #[tokio::test]
    async fn a_federated_token_from_the_volume_verifies_with_the_reloaded_key() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::new(dir.path());
        init(&volume).await.unwrap();
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
