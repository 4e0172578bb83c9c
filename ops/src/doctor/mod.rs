//! `keyless doctor`: for the identity in the environment, one real and harmless call per
//! permission its service needs, one line each. A refused call names the role from the role
//! table, its id, the scope and the `az` line that grants it.
//!
//! Harmless: the queue probe is the readiness probe main-app sends (hidden for all but its last
//! second, then expired; the worker deletes probes unread), and doctor deletes it itself when it
//! may; the ledger and key store checks write, read and delete a blob that is neither a code
//! nor `keys.json`; rotation's write check rewrites a secret's attributes unchanged.

mod checks;
mod probes;
mod report;

use codes::variables::CODE_LEDGER_URL;
use codes::variables::STORAGE_QUEUE_URL;
pub use report::{Check, Report};
use shared_auth::config::https_url;
use shared_auth::variables::KEY_VAULT_URL;
use shared_auth::variables::THIRD_PARTY_API_KEYS_URL;

use crate::OpsError;
use crate::connect::{self, Connection};
use crate::roles::{Identity, Role, ScopeKind};
use crate::vault::{Vault, VaultOptions};
use azure_core::http::Url;
use checks::{Checks, call, timed_out};
use probes::{probe_container, probe_queue, read_and_write_secret, read_secret};
use shared_auth::EnvSource;
use shared_auth::azure_error::error_chain;
use shared_auth::variables::THIRD_PARTY_API_ENDPOINT;
use std::time::Duration;

/// How long one check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// The probe's life in the queue: hidden for all but its last second (as main-app's probe).
pub const PROBE_TTL_SECONDS: i32 = 30;
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The identity the environment belongs to, from the variables its service reads: vault and
/// queue (main-app), queue only (queue-worker), the key store (third-party-api), vault and
/// third-party-api's endpoint without a queue (rotation), vault only (third-party-api).
pub fn infer_identity(env: &dyn EnvSource) -> Option<Identity> {
    let set = |name: &str| env.var(name).is_some();
    match (set(KEY_VAULT_URL), set(STORAGE_QUEUE_URL)) {
        (true, true) => Some(Identity::MainApp),
        (false, true) => Some(Identity::QueueWorker),
        _ if set(THIRD_PARTY_API_KEYS_URL) => Some(Identity::ThirdPartyApi),
        (true, false) if set(THIRD_PARTY_API_ENDPOINT) => Some(Identity::Rotation),
        (true, false) => Some(Identity::ThirdPartyApi),
        (false, false) => None,
    }
}

/// What one identity's checks reach, read from the environment before any call.
struct Targets {
    vault: Option<Url>,
    queue: Option<Url>,
    ledger: Option<Url>,
    poison: Option<Url>,
    key_store: Option<Url>,
    encoding: codes::MessageEncoding,
}

impl Targets {
    /// Every variable `identity` needs: a missing one is bad input, not a failed check.
    fn from_env(env: &dyn EnvSource, identity: Identity) -> Result<Self, OpsError> {
        use Identity::{MainApp, QueueWorker, Rotation, ThirdPartyApi};
        let needs = |who: &[Identity]| who.contains(&identity);
        Ok(Self {
            vault: needs(&[MainApp, ThirdPartyApi, Rotation])
                .then(|| https_url(env, KEY_VAULT_URL))
                .transpose()?,
            queue: needs(&[MainApp, QueueWorker])
                .then(|| codes::queues::queue_url(env))
                .transpose()?,
            ledger: needs(&[MainApp, QueueWorker])
                .then(|| https_url(env, CODE_LEDGER_URL))
                .transpose()?,
            poison: needs(&[QueueWorker])
                .then(|| codes::queues::poison_queue_url(env))
                .transpose()?,
            key_store: needs(&[ThirdPartyApi])
                .then(|| connect::key_store_container_url(env))
                .transpose()?,
            encoding: codes::MessageEncoding::from_env(env)?,
        })
    }
}

/// Runs every check `identity` needs with the credential and URLs in `env`.
pub async fn run(env: &dyn EnvSource, identity: Identity) -> Result<Report, OpsError> {
    let targets = Targets::from_env(env, identity)?;
    let conn = Connection::from_env(env)?;
    let mut checks = Checks::new(env);
    checks.passed(
        "credential".into(),
        format!(
            "{} ({})",
            conn.credential.choice.kind.name(),
            conn.credential.choice.reason
        ),
    );
    check_tokens(&mut checks, &conn, identity).await;
    if let Some(vault) = &targets.vault {
        let vault = Vault::new(
            vault.clone(),
            conn.credential.credential.clone(),
            Some(VaultOptions::from(&conn)),
        )?;
        check_secrets(&mut checks, &vault, env, identity).await;
    }
    if let Some(queue) = &targets.queue {
        let client = conn.queue(queue)?;
        let worker = identity == Identity::QueueWorker;
        probe_queue(
            &mut checks,
            &client,
            targets.encoding,
            ScopeKind::Queue,
            worker,
        )
        .await;
        if worker {
            let name = format!("queue length of {}", connect::resource_name(queue));
            let outcome = call(client.get_properties(None)).await;
            checks.record(
                name,
                outcome,
                (Role::StorageQueueDataReader, ScopeKind::Queue),
                "readable (what KEDA scales on)",
            );
        }
    }
    if let Some(poison) = &targets.poison {
        let client = conn.queue(poison)?;
        let scope = ScopeKind::PoisonQueue;
        probe_queue(&mut checks, &client, targets.encoding, scope, false).await;
    }
    if let Some(ledger) = &targets.ledger {
        let container = conn.container(ledger, CODE_LEDGER_URL)?;
        let name = format!("the ledger container {}", connect::resource_name(ledger));
        probe_container(&mut checks, &container, &name, ScopeKind::Container).await;
    }
    if let Some(store) = &targets.key_store {
        let container = conn.container(store, THIRD_PARTY_API_KEYS_URL)?;
        let name = format!("the key store container {}", connect::resource_name(store));
        probe_container(&mut checks, &container, &name, ScopeKind::KeyStoreContainer).await;
    }
    Ok(Report {
        identity,
        checks: checks.into_list(),
    })
}

/// A token for each resource `identity` calls (Key Vault, Storage), each its own check.
async fn check_tokens(checks: &mut Checks<'_>, conn: &Connection, identity: Identity) {
    let scopes: &[&str] = match identity {
        Identity::MainApp | Identity::ThirdPartyApi => &[VAULT_SCOPE, STORAGE_SCOPE],
        Identity::QueueWorker => &[STORAGE_SCOPE],
        Identity::Rotation => &[VAULT_SCOPE],
    };
    for scope in scopes {
        let got = tokio::time::timeout(
            CHECK_TIMEOUT,
            conn.credential.credential.get_token(&[scope], None),
        )
        .await;
        let name = format!("token for {scope}");
        match got {
            Ok(Ok(_token)) => checks.passed(name, "issued"),
            Ok(Err(e)) => checks.failed(name, connect::one_line(&error_chain(&e))),
            Err(_) => checks.failed(name, timed_out()),
        }
    }
}

/// The secrets `identity` reads (main-app, third-party-api) or rotates (rotation).
async fn check_secrets(
    checks: &mut Checks<'_>,
    vault: &Vault,
    env: &dyn EnvSource,
    identity: Identity,
) {
    match identity {
        Identity::MainApp => {
            let name = connect::secret_name(env);
            read_secret(checks, vault, &name, ScopeKind::Secret).await;
        }
        Identity::ThirdPartyApi => {
            let name = connect::master_key_secret_name(env);
            read_secret(checks, vault, &name, ScopeKind::MasterKeySecret).await;
        }
        Identity::Rotation => {
            for (name, scope) in [
                (connect::secret_name(env), ScopeKind::Secret),
                (
                    connect::master_key_secret_name(env),
                    ScopeKind::MasterKeySecret,
                ),
            ] {
                read_and_write_secret(checks, vault, &name, scope).await;
            }
        }
        Identity::QueueWorker => {}
    }
}
