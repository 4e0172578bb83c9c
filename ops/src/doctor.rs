//! `keyless doctor`: for the identity in the environment, one real and harmless call per
//! permission its service needs, one line each. A refused call names the role from the role
//! table, its id, the scope and the `az` line that grants it.
//!
//! Harmless: the queue probe is the readiness probe main-app sends (hidden for all but its last
//! second, then expired; the worker deletes probes unread), and doctor deletes it itself when it
//! may; the ledger and key store checks write, read and delete a blob that is neither a code
//! nor `keys.json`; rotation's write check rewrites a secret's attributes unchanged.

use crate::OpsError;
use crate::azure_scope::MissingRole;
use crate::connect::{
    self, CODE_LEDGER_URL, Connection, KEY_VAULT_URL, STORAGE_QUEUE_URL, THIRD_PARTY_API_KEYS_URL,
};
use crate::roles::{Identity, Role, ScopeKind};
use crate::rotate::THIRD_PARTY_API_ENDPOINT;
use crate::vault::{Vault, WriteCheck};
use azure_core::http::RequestContent;
use azure_core::http::headers::HeaderName;
use azure_storage_blob::BlobContainerClient;
use azure_storage_queue::QueueClient;
use azure_storage_queue::models::{QueueClientSendMessageOptions, QueueMessage};
use codes::envelope::probe_text;
use shared_auth::EnvSource;
use shared_auth::azure_error::{Failure, error_chain};
use std::future::Future;
use std::time::Duration;

/// How long one check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// The probe's life in the queue: hidden for all but its last second (as main-app's probe).
pub const PROBE_TTL_SECONDS: i32 = 30;
const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What happened, in words safe to print.
    pub detail: String,
    /// The role whose absence made it fail, when that is the cause.
    pub missing: Option<MissingRole>,
}

/// Every check for one identity.
#[derive(Debug, Clone)]
pub struct Report {
    /// The identity checked.
    pub identity: Identity,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The report for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let checks: Vec<serde_json::Value> = self
            .checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "check": c.name,
                    "ok": c.ok,
                    "detail": c.detail,
                    "missing_role": c.missing.as_ref().map(MissingRole::to_json),
                })
            })
            .collect();
        serde_json::json!({ "identity": self.identity.name(), "ok": self.ok(), "checks": checks })
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = format!("keyless doctor: checking as {}\n", self.identity.name());
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            out.push_str(&format!("  {mark}  {}: {}\n", c.name, c.detail));
            if let Some(m) = &c.missing {
                out.push_str(&m.render("        "));
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            out.push_str(&format!(
                "all {} checks passed for {}\n",
                self.checks.len(),
                self.identity.name()
            ));
        } else {
            out.push_str(&format!(
                "{failed} of {} checks failed for {}\n",
                self.checks.len(),
                self.identity.name()
            ));
        }
        out
    }
}

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

/// What a call did: success, refused for want of a role, or failed otherwise.
enum Outcome<T> {
    Done(T),
    Forbidden(String),
    Failed(String),
}

async fn call<T>(fut: impl Future<Output = azure_core::Result<T>>) -> Outcome<T> {
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(v)) => Outcome::Done(v),
        Ok(Err(e)) if connect::is_forbidden(&e) => Outcome::Forbidden(connect::describe(&e)),
        Ok(Err(e)) => Outcome::Failed(connect::describe(&e)),
        Err(_) => Outcome::Failed(Failure::TimedOut(CHECK_TIMEOUT).to_string()),
    }
}

/// Collects checks; a refusal becomes a failure naming `role` on `scope`.
struct Checks<'a> {
    env: &'a dyn EnvSource,
    list: Vec<Check>,
}

impl Checks<'_> {
    fn record<T>(
        &mut self,
        name: String,
        outcome: Outcome<T>,
        role: (Role, ScopeKind),
        ok_detail: &str,
    ) -> Option<T> {
        let (ok, detail, missing, value) = match outcome {
            Outcome::Done(v) => (true, ok_detail.to_owned(), None, Some(v)),
            Outcome::Forbidden(d) => (
                false,
                d,
                Some(MissingRole::new(self.env, role.0, role.1)),
                None,
            ),
            Outcome::Failed(d) => (false, d, None, None),
        };
        self.list.push(Check {
            name,
            ok,
            detail,
            missing,
        });
        value
    }

    fn plain(&mut self, name: String, result: Result<String, String>) {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.list.push(Check {
            name,
            ok,
            detail,
            missing: None,
        });
    }
}

/// Runs every check `identity` needs with the credential and URLs in `env`.
pub async fn run(env: &dyn EnvSource, identity: Identity) -> Result<Report, OpsError> {
    // Every variable first: a missing one is bad input, not a failed check.
    let vault = match identity {
        Identity::MainApp | Identity::ThirdPartyApi | Identity::Rotation => {
            Some(connect::https_url(env, KEY_VAULT_URL)?)
        }
        Identity::QueueWorker => None,
    };
    let (queue, ledger) = match identity {
        Identity::MainApp | Identity::QueueWorker => (
            Some(connect::https_url(env, STORAGE_QUEUE_URL)?),
            Some(connect::https_url(env, CODE_LEDGER_URL)?),
        ),
        Identity::ThirdPartyApi | Identity::Rotation => (None, None),
    };
    let poison = match identity {
        Identity::QueueWorker => Some(connect::poison_queue_url(env)?),
        _ => None,
    };
    let key_store = match identity {
        Identity::ThirdPartyApi => Some(connect::key_store_container_url(env)?),
        _ => None,
    };
    let encoding = connect::encoding(env)?;
    let conn = Connection::from_env(env)?;
    let mut checks = Checks {
        env,
        list: Vec::new(),
    };
    checks.plain(
        "credential".into(),
        Ok(format!(
            "{} ({})",
            conn.credential.choice.kind.name(),
            conn.credential.choice.reason
        )),
    );
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
        let result = match got {
            Ok(Ok(_token)) => Ok("issued".to_owned()),
            Ok(Err(e)) => Err(connect::one_line(&error_chain(&e))),
            Err(_) => Err(Failure::TimedOut(CHECK_TIMEOUT).to_string()),
        };
        checks.plain(format!("token for {scope}"), result);
    }
    if let Some(vault) = &vault {
        let vault = Vault::new(&conn, vault)?;
        match identity {
            Identity::MainApp => {
                let name = connect::secret_name(env);
                read_secret(&mut checks, &vault, &name, ScopeKind::Secret).await;
            }
            Identity::ThirdPartyApi => {
                let name = connect::master_key_secret_name(env);
                read_secret(&mut checks, &vault, &name, ScopeKind::MasterKeySecret).await;
            }
            Identity::Rotation => {
                for (name, scope) in [
                    (connect::secret_name(env), ScopeKind::Secret),
                    (
                        connect::master_key_secret_name(env),
                        ScopeKind::MasterKeySecret,
                    ),
                ] {
                    read_and_write_secret(&mut checks, &vault, &name, scope).await;
                }
            }
            Identity::QueueWorker => {}
        }
    }
    if let Some(queue) = &queue {
        let client = conn.queue(queue)?;
        let worker = identity == Identity::QueueWorker;
        probe_queue(&mut checks, &client, encoding, ScopeKind::Queue, worker).await;
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
    if let Some(poison) = &poison {
        let client = conn.queue(poison)?;
        probe_queue(
            &mut checks,
            &client,
            encoding,
            ScopeKind::PoisonQueue,
            false,
        )
        .await;
    }
    if let Some(ledger) = &ledger {
        let container = conn.container(ledger, CODE_LEDGER_URL)?;
        let name = format!("the ledger container {}", connect::resource_name(ledger));
        probe_container(&mut checks, &container, &name, ScopeKind::Container).await;
    }
    if let Some(store) = &key_store {
        let container = conn.container(store, THIRD_PARTY_API_KEYS_URL)?;
        let name = format!("the key store container {}", connect::resource_name(store));
        probe_container(&mut checks, &container, &name, ScopeKind::KeyStoreContainer).await;
    }
    Ok(Report {
        identity,
        checks: checks.list,
    })
}

/// Reads secret `name` (the value is dropped unread); a refusal names Key Vault Secrets User
/// on `scope`.
async fn read_secret(checks: &mut Checks<'_>, vault: &Vault, name: &str, scope: ScopeKind) {
    let outcome = call(async { vault.latest(name).await }).await;
    let outcome = match outcome {
        Outcome::Done(None) => Outcome::Failed(format!(
            "secret {name} does not exist (provisioning creates it)"
        )),
        Outcome::Done(Some(_)) => Outcome::Done(()),
        Outcome::Forbidden(d) => Outcome::Forbidden(d),
        Outcome::Failed(d) => Outcome::Failed(d),
    };
    checks.record(
        format!("read secret {name}"),
        outcome,
        (Role::KeyVaultSecretsUser, scope),
        "readable (value not shown)",
    );
}

/// What rotation needs on secret `name`: read it, and write it (its latest version's attributes
/// written back unchanged, as `keyless rotate`'s preflight does). A refusal of either names Key
/// Vault Secrets Officer on `scope`.
async fn read_and_write_secret(
    checks: &mut Checks<'_>,
    vault: &Vault,
    name: &str,
    scope: ScopeKind,
) {
    let role = (Role::KeyVaultSecretsOfficer, scope);
    let read = format!("read secret {name}");
    let write = format!("write secret {name}");
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, vault.check_writable(name)).await;
    let timeout = || Failure::TimedOut(CHECK_TIMEOUT).to_string();
    match outcome {
        Err(_) => checks.plain(read, Err(timeout())),
        Ok(WriteCheck::Writable(_)) => {
            checks.plain(read, Ok("readable (value not shown)".into()));
            checks.plain(
                write,
                Ok("writable (proven by rewriting its attributes unchanged)".into()),
            );
        }
        Ok(WriteCheck::ReadForbidden(d)) => {
            checks.record::<()>(read, Outcome::Forbidden(d), role, "");
        }
        Ok(WriteCheck::WriteForbidden(_, d)) => {
            checks.plain(read, Ok("readable (value not shown)".into()));
            checks.record::<()>(write, Outcome::Forbidden(d), role, "");
        }
        Ok(WriteCheck::Absent) => checks.plain(
            read,
            Err(format!(
                "secret {name} does not exist (provisioning creates it)"
            )),
        ),
        Ok(WriteCheck::Failed(d)) => checks.plain(read, Err(d)),
    }
}

/// Sends a hidden, short-lived probe; for the worker also updates and deletes it (the calls its
/// visibility renewal and completion make). On the poison queue the worker may only send: the
/// probe is then deleted when allowed, else it expires unseen.
async fn probe_queue(
    checks: &mut Checks<'_>,
    client: &QueueClient,
    encoding: codes::MessageEncoding,
    scope: ScopeKind,
    worker: bool,
) {
    let queue = connect::resource_name(client.url());
    let content: RequestContent<QueueMessage, _> = match (QueueMessage {
        message_text: Some(probe_text(encoding)),
    })
    .try_into()
    {
        Ok(c) => c,
        Err(e) => {
            let e: azure_core::Error = e;
            checks.plain(format!("send to queue {queue}"), Err(e.to_string()));
            return;
        }
    };
    let options = QueueClientSendMessageOptions {
        visibility_timeout: Some(PROBE_TTL_SECONDS - 1),
        message_time_to_live: Some(PROBE_TTL_SECONDS),
        ..Default::default()
    };
    let sent = call(async {
        let response = client.send_message(content, Some(options)).await?;
        let model = response.into_model()?;
        Ok(model.items.unwrap_or_default().into_iter().next())
    })
    .await;
    let sent = checks.record(
        format!("send to queue {queue}"),
        sent,
        (Role::StorageQueueDataMessageSender, scope),
        if scope == ScopeKind::PoisonQueue {
            "a hidden probe message was accepted (it expires unseen in 30 s)"
        } else {
            "a hidden probe message was accepted (it expires in 30 s; workers delete probes unread)"
        },
    );
    let Some(Some(message)) = sent else { return };
    let (Some(id), Some(mut receipt)) = (message.message_id, message.pop_receipt) else {
        return;
    };
    if worker {
        let updated = call(client.update_message(&id, &receipt, PROBE_TTL_SECONDS - 1, None)).await;
        if let Some(response) = checks.record(
            format!("update a message in queue {queue}"),
            updated,
            (Role::StorageQueueDataMessageUpdater, scope),
            "visibility renewed (what long handling needs)",
        ) && let Some(new) = response.headers().get_optional_string(&POP_RECEIPT)
        {
            receipt = new;
        }
        let deleted = call(client.delete_message(&id, &receipt, None)).await;
        checks.record(
            format!("delete a message from queue {queue}"),
            deleted,
            (Role::StorageQueueDataMessageProcessor, scope),
            "the probe was deleted (what completing a message needs)",
        );
    } else {
        // Best effort: an identity that may only send leaves the probe to expire unseen.
        let _ = call(client.delete_message(&id, &receipt, None)).await;
    }
}

/// Writes, reads and deletes a probe blob whose name is neither a code nor `keys.json`; a
/// refusal names Storage Blob Data Contributor on `scope`.
async fn probe_container(
    checks: &mut Checks<'_>,
    container: &BlobContainerClient,
    name: &str,
    scope: ScopeKind,
) {
    let blob = container.blob_client(&format!("keyless-doctor-{}", uuid::Uuid::new_v4()));
    let role = (Role::StorageBlobDataContributor, scope);
    let written = call(blob.upload(RequestContent::from(b"doctor".to_vec()), None)).await;
    if checks
        .record(
            format!("write to {name}"),
            written,
            role,
            "a probe blob was written",
        )
        .is_none()
    {
        return;
    }
    let read = call(blob.get_properties(None)).await;
    checks.record(
        format!("read from {name}"),
        read,
        role,
        "the probe blob was read",
    );
    let deleted = call(blob.delete(None)).await;
    checks.record(
        format!("delete from {name}"),
        deleted,
        role,
        "the probe blob was deleted",
    );
}
