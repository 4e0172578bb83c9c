//! `compose serve`: the emulators on their documented ports, the gates in front of the Azurite
//! container, the federated tokens renewed, and storage with third-party-api's key store
//! provisioned as soon as Azurite answers; ready (on [`READY_PORT`]) from then on.

use super::volume::{Volume, file_owner, read_vault_seed, write_federated_tokens};
use super::{AZURITE_PORTS, FEDERATED_TOKEN_RENEWAL, READY_PORT};
use crate::identity::IdentityProvider;
use crate::stack::{
    Emulators, Ports, Principal, SECRET_NAME, Urls, function_key_document, key_store,
    provision_storage, service_principal_env,
};
use crate::storage_gate::StorageService;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use azure_core::credentials::TokenCredential;
use function_keys::{KeyDocument, KeyScope, KeyValue, WriteCondition};
use shared_auth::Secret;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `compose serve`: the emulators on their documented ports on every interface, gates in front
/// of Azurite at `azurite_host`, storage and third-party-api's key store provisioned as soon as
/// Azurite answers (ready from then on). Runs until SIGTERM or SIGINT.
pub async fn serve(volume: &Volume, azurite_host: &str) -> anyhow::Result<()> {
    let emulators = Emulators::new(&volume.pki_dir(), volume.identities()?)?;
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
        emulators.vault.seed(&name, &Secret::new(value));
    }
    // What rotation writes (a new function key, a generated master key) survives a restart.
    emulators
        .vault
        .persist_to(volume.vault_seed(), file_owner()?)?;

    let ports = Ports::DEFAULT;
    let listen = |port: u16| {
        TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("cannot listen on {port}"))
    };
    let mut servers =
        emulators.serve_identity_and_vault(listen(ports.identity)?, listen(ports.key_vault)?)?;
    for (port, service, upstream_port) in [
        (ports.blob, StorageService::Blob, AZURITE_PORTS.0),
        (ports.queue, StorageService::Queue, AZURITE_PORTS.1),
    ] {
        let upstream = format!("https://{azurite_host}:{upstream_port}");
        let (server, _) = emulators.serve_gate(listen(port)?, service, upstream)?;
        servers.push(server);
    }

    let ready = Arc::new(AtomicBool::new(false));
    servers.push(serve_readiness(ready.clone())?);

    let renew_volume = volume.clone();
    let renew_identities = emulators.identities.clone();
    let owner = file_owner()?;
    tokio::spawn(async move {
        loop {
            if let Err(e) = write_federated_tokens(&renew_volume, &renew_identities, owner) {
                tracing::error!(error = %format!("{e:#}"), "cannot renew the federated tokens");
            }
            tokio::time::sleep(FEDERATED_TOKEN_RENEWAL).await;
        }
    });

    let provision = provision_until_done(
        emulators.identities.clone(),
        emulators.http.clone(),
        Urls::on_loopback(&ports),
        function_key,
        ready,
    );
    tokio::pin!(provision);
    let shutdown = service_kit::service::shutdown_signal();
    tokio::pin!(shutdown);
    let mut provisioned = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            result = &mut provision, if !provisioned => {
                result?;
                provisioned = true;
            }
        }
    }
    tracing::info!("stopping");
    for server in servers {
        server.stop(true).await;
    }
    Ok(())
}

/// `/readyz` on [`READY_PORT`] (plain HTTP on loopback, for the container's health check): 200
/// once `ready` holds.
fn serve_readiness(ready: Arc<AtomicBool>) -> anyhow::Result<ServerHandle> {
    let health = HttpServer::new(move || {
        let readiness = ready.clone();
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
    let handle = health.handle();
    tokio::spawn(health);
    Ok(handle)
}

/// Creates the queues, the containers and third-party-api's key store (holding `function_key`,
/// the vault's [`SECRET_NAME`]) through the local gates at `urls` as the `devstack` identity,
/// retrying (with a log line each time) until Azurite answers; then marks the emulators ready.
async fn provision_until_done(
    identities: Arc<IdentityProvider>,
    http: reqwest::Client,
    urls: Urls,
    function_key: Secret,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let admin = identities
        .get(Principal::Devstack.name())
        .context("no devstack identity")?;
    let env = service_principal_env(&admin, &urls.identity);
    let credential = shared_auth::credential_from_env(&env, &http)?.credential;
    let mut delay = Duration::from_millis(500);
    loop {
        match provision(
            &http,
            credential.clone(),
            &urls.queue_service,
            &urls.blob_service,
            &function_key,
        )
        .await
        {
            Ok(holds_key) => {
                if !holds_key {
                    tracing::error!(
                        blob = %urls.key_store,
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

/// Creates the queues and the ledger container, then third-party-api's key store holding
/// `function_key` as [`crate::stack::FUNCTION_KEY_NAME`] unless a store with keys exists (a restart keeps a
/// rotated one). An empty store is the one third-party-api creates when it starts first (compose
/// tools that ignore health conditions): `function_key` goes into it. Whether the store holds
/// `function_key` under any name (false: main-app's key would be refused).
async fn provision(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    queue_service: &str,
    blob_service: &str,
    function_key: &Secret,
) -> anyhow::Result<bool> {
    provision_storage(http, credential.clone(), queue_service, blob_service).await?;
    let url = crate::stack::key_store_url(blob_service);
    let store = key_store(http, credential, &url).await?;
    let Some((bytes, etag)) = store.read().await.map_err(anyhow::Error::msg)? else {
        let document = function_key_document(None, function_key)?;
        store
            .write(document.to_json(), WriteCondition::Absent)
            .await
            .context("cannot write the key store")?;
        return Ok(true);
    };
    let document = KeyDocument::from_json(&bytes)
        .map_err(|why| anyhow::anyhow!("the key store blob {url} is invalid: {why}"))?;
    if !document.has_keys() {
        let seeded = function_key_document(document.master_key().as_ref(), function_key)?;
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
mod tests;
