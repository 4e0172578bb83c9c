//! The emulators of one local Azure, served in this process over HTTPS: the identity emulator,
//! the Key Vault emulator and a storage gate per service, sharing one PKI, one set of identities
//! and one role table. The in-process stack and `compose serve` both start them so.

use super::topology::grant_role_table;
use crate::access_log::AccessLog;
use crate::caller::AccessCheck;
use crate::identity::IdentityProvider;
use crate::keyvault::KeyVault;
use crate::pki::DevPki;
use crate::rbac::RoleAssignments;
use crate::storage_gate::{StorageGate, StorageService};
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use service_kit::telemetry::RequestTelemetry;
use shared_auth::transport::{TransportOptions, http_client};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

/// Serves `configure` over HTTPS on `listener`, in this process.
fn serve_https<F>(
    listener: TcpListener,
    tls: &rustls::ServerConfig,
    configure: F,
) -> anyhow::Result<ServerHandle>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let server = HttpServer::new(move || {
        App::new()
            .wrap(RequestTelemetry::default())
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

/// The emulators' shared state: certificates, identities, the role table (granted from
/// [`grant_role_table`]) and the vault, with the HTTP client that trusts the local CA.
pub(crate) struct Emulators {
    /// Certificates.
    pub pki: DevPki,
    /// The servers' TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// The client that trusts [`DevPki::ca_cert`].
    pub http: reqwest::Client,
    /// Identities and their token signer.
    pub identities: Arc<IdentityProvider>,
    /// The role table the vault and the gates enforce.
    pub roles: Arc<RoleAssignments>,
    /// The Key Vault emulator, empty.
    pub vault: Arc<KeyVault>,
    /// Every access the vault and the gates judged.
    pub access_log: Arc<AccessLog>,
}

impl Emulators {
    /// The PKI of `pki_dir` (created when absent), `identities` granted the role table, an
    /// empty vault.
    pub fn new(pki_dir: &Path, identities: IdentityProvider) -> anyhow::Result<Self> {
        let pki = DevPki::ensure(pki_dir)?;
        let tls = pki.server_config()?;
        let http = http_client(&TransportOptions {
            extra_ca_certs: Some(pki.ca_cert.clone()),
            ..Default::default()
        })?;
        let identities = Arc::new(identities);
        let roles = Arc::new(RoleAssignments::default());
        grant_role_table(&identities, &roles);
        let access_log = Arc::new(AccessLog::default());
        let vault = Arc::new(KeyVault::new(AccessCheck::new(
            identities.clone(),
            roles.clone(),
            access_log.clone(),
            "Key Vault",
        )));
        Ok(Self {
            pki,
            tls,
            http,
            identities,
            roles,
            vault,
            access_log,
        })
    }

    /// Serves the identity emulator on `identity` and the vault on `key_vault`.
    pub fn serve_identity_and_vault(
        &self,
        identity: TcpListener,
        key_vault: TcpListener,
    ) -> anyhow::Result<Vec<ServerHandle>> {
        let provider = self.identities.clone();
        let vault = self.vault.clone();
        Ok(vec![
            serve_https(identity, &self.tls, move |cfg| provider.configure(cfg))?,
            serve_https(key_vault, &self.tls, move |cfg| vault.configure(cfg))?,
        ])
    }

    /// Serves a gate for `service` on `listener`, forwarding to Azurite at `upstream`.
    pub fn serve_gate(
        &self,
        listener: TcpListener,
        service: StorageService,
        upstream: String,
    ) -> anyhow::Result<(ServerHandle, Arc<StorageGate>)> {
        let access = AccessCheck::new(
            self.identities.clone(),
            self.roles.clone(),
            self.access_log.clone(),
            service.azure_name(),
        );
        let gate = Arc::new(StorageGate::new(
            service,
            upstream,
            self.http.clone(),
            access,
        ));
        let served = gate.clone();
        let server = serve_https(listener, &self.tls, move |cfg| served.configure(cfg))?;
        Ok((server, gate))
    }
}
