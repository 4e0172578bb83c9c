//! `keyless doctor`: for the identity in the environment, one real and harmless call per
//! permission its service needs, one line each. A refused call names the role from the role
//! table, its id, the scope and the `az` line that grants it.
//!
//! Harmless: the queue probe is the readiness probe main-app sends (hidden for all but its last
//! second, then expired; the worker deletes probes unread), and doctor deletes it itself when it
//! may; the ledger check writes, reads and deletes a blob whose name is not a code.

use crate::OpsError;
use crate::azure_scope::MissingRole;
use crate::connect::{self, CODE_LEDGER_URL, Connection, KEY_VAULT_URL, STORAGE_QUEUE_URL};
use crate::roles::{Identity, Role, ScopeKind};
use azure_core::http::headers::HeaderName;
use azure_core::http::{RequestContent, Url};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use azure_storage_queue::QueueClient;
use azure_storage_queue::models::{QueueClientSendMessageOptions, QueueMessage};
use codes::envelope::probe_text;
use shared_auth::EnvSource;
use shared_auth::transport::azure_client_options;
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
                    "missing_role": c.missing.as_ref().map(|m| serde_json::json!({
                        "role": m.role.name(),
                        "role_id": m.role.id(),
                        "scope": m.scope_name,
                        "scope_id": m.scope_id,
                        "grant": m.grant_command,
                    })),
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
                out.push_str(&format!(
                    "        missing role: {} ({}) on {}\n        scope: {}\n        grant it: {}\n",
                    m.role.name(),
                    m.role_id(),
                    m.scope_name,
                    m.scope_id,
                    m.grant_command
                ));
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
/// queue (main-app), queue only (queue-worker), vault only (third-party-api).
pub fn infer_identity(env: &dyn EnvSource) -> Option<Identity> {
    match (
        env.var(KEY_VAULT_URL).is_some(),
        env.var(STORAGE_QUEUE_URL).is_some(),
    ) {
        (true, true) => Some(Identity::MainApp),
        (false, true) => Some(Identity::QueueWorker),
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
        Err(_) => Outcome::Failed(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
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
        Identity::MainApp => &[VAULT_SCOPE, STORAGE_SCOPE],
        Identity::QueueWorker => &[STORAGE_SCOPE],
        Identity::ThirdPartyApi | Identity::Rotation => &[VAULT_SCOPE],
    };
    for scope in scopes {
        let got = tokio::time::timeout(
            CHECK_TIMEOUT,
            conn.credential.credential.get_token(&[scope], None),
        )
        .await;
        let result = match got {
            Ok(Ok(_token)) => Ok("issued".to_owned()),
            Ok(Err(e)) => Err(connect::one_line(&shared_auth::credential::error_chain(&e))),
            Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        };
        checks.plain(format!("token for {scope}"), result);
    }
    if let Some(vault) = &vault {
        read_secret(&mut checks, &conn, vault).await;
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
        check_ledger(&mut checks, &conn, ledger).await?;
    }
    Ok(Report {
        identity,
        checks: checks.list,
    })
}

async fn read_secret(checks: &mut Checks<'_>, conn: &Connection, vault: &Url) {
    let name = connect::secret_name(checks.env);
    let client = SecretClient::new(
        vault.as_str(),
        conn.credential.credential.clone(),
        Some(SecretClientOptions {
            client_options: azure_client_options(&conn.http),
            verify_challenge_resource: Some(shared_auth::secret_cache::verify_challenge_resource(
                vault,
            )),
            ..Default::default()
        }),
    );
    let outcome = match client {
        // The value is dropped unread: only whether it could be read matters.
        Ok(client) => call(async { client.get_secret(&name, None).await.map(drop) }).await,
        Err(e) => Outcome::Failed(connect::describe(&e)),
    };
    checks.record(
        format!("read secret {name}"),
        outcome,
        (Role::KeyVaultSecretsUser, ScopeKind::Secret),
        "readable (value not shown)",
    );
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

async fn check_ledger(
    checks: &mut Checks<'_>,
    conn: &Connection,
    ledger: &Url,
) -> Result<(), OpsError> {
    let container = conn.ledger(ledger)?;
    let name = connect::resource_name(ledger);
    // Not a code (`AAA-N-BBB`), so never mistaken for a record.
    let blob = container.blob_client(&format!("keyless-doctor-{}", uuid::Uuid::new_v4()));
    let role = (Role::StorageBlobDataContributor, ScopeKind::Container);
    let written = call(blob.upload(RequestContent::from(b"doctor".to_vec()), None)).await;
    if checks
        .record(
            format!("write to the ledger container {name}"),
            written,
            role,
            "a probe blob was written",
        )
        .is_none()
    {
        return Ok(());
    }
    let read = call(blob.get_properties(None)).await;
    checks.record(
        format!("read from the ledger container {name}"),
        read,
        role,
        "the probe blob was read",
    );
    let deleted = call(blob.delete(None)).await;
    checks.record(
        format!("delete from the ledger container {name}"),
        deleted,
        role,
        "the probe blob was deleted",
    );
    Ok(())
}
