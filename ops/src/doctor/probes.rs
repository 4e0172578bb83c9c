//! The probes themselves: one real and harmless call per permission, each recorded as a check.

use super::checks::{Checks, Outcome, call, timed_out};
use super::{CHECK_TIMEOUT, PROBE_TTL_SECONDS};
use crate::connect;
use crate::roles::{Role, ScopeKind};
use crate::vault::{Vault, WriteCheck};
use azure_core::http::RequestContent;
use azure_core::http::headers::HeaderName;
use azure_storage_blob::BlobContainerClient;
use azure_storage_queue::QueueClient;
use azure_storage_queue::models::{QueueClientSendMessageOptions, QueueMessage};
use codes::envelope::probe_text;

const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");
/// What a secret that could be read says (its value is dropped unread).
const READABLE: &str = "readable (value not shown)";

/// What a check of secret `name` says when the vault has no such secret.
fn absent(name: &str) -> String {
    format!("secret {name} does not exist (provisioning creates it)")
}

/// Reads secret `name` (the value is dropped unread); a refusal names Key Vault Secrets User
/// on `scope`.
pub(super) async fn read_secret(
    checks: &mut Checks<'_>,
    vault: &Vault,
    name: &str,
    scope: ScopeKind,
) {
    let outcome = call(async { vault.latest(name).await }).await;
    let outcome = match outcome {
        Outcome::Done(None) => Outcome::Failed(absent(name)),
        Outcome::Done(Some(_)) => Outcome::Done(()),
        Outcome::Forbidden(d) => Outcome::Forbidden(d),
        Outcome::Failed(d) => Outcome::Failed(d),
    };
    checks.record(
        format!("read secret {name}"),
        outcome,
        (Role::KeyVaultSecretsUser, scope),
        READABLE,
    );
}

/// What rotation needs on secret `name`: read it, and write it (its latest version's attributes
/// written back unchanged, as `keyless rotate`'s preflight does). A refusal of either names Key
/// Vault Secrets Officer on `scope`.
pub(super) async fn read_and_write_secret(
    checks: &mut Checks<'_>,
    vault: &Vault,
    name: &str,
    scope: ScopeKind,
) {
    let role = (Role::KeyVaultSecretsOfficer, scope);
    let read = format!("read secret {name}");
    let write = format!("write secret {name}");
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, vault.check_writable(name)).await;
    match outcome {
        Err(_) => checks.failed(read, timed_out()),
        Ok(WriteCheck::Writable(_)) => {
            checks.passed(read, READABLE);
            checks.passed(
                write,
                "writable (proven by rewriting its attributes unchanged)",
            );
        }
        Ok(WriteCheck::ReadForbidden(d)) => {
            checks.record::<()>(read, Outcome::Forbidden(d), role, "");
        }
        Ok(WriteCheck::WriteForbidden(_, d)) => {
            checks.passed(read, READABLE);
            checks.record::<()>(write, Outcome::Forbidden(d), role, "");
        }
        Ok(WriteCheck::Absent) => checks.failed(read, absent(name)),
        Ok(WriteCheck::Failed(d)) => checks.failed(read, d),
    }
}

/// Sends a hidden, short-lived probe; for the worker also updates and deletes it (the calls its
/// visibility renewal and completion make). Receiving is not called: Get Messages would hide
/// real messages for their visibility timeout. The worker's delete is allowed by
/// `messages/process/action`, the data action receiving needs, and no other role it holds
/// allows either, so the delete answers for both. On the poison queue the worker may only send: the
/// probe is then deleted when allowed, else it expires unseen.
pub(super) async fn probe_queue(
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
            checks.failed(format!("send to queue {queue}"), e.to_string());
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
    // The worker sends nothing to its queue, so it holds no Sender there: its probe goes in
    // through `messages/write`, which its Updater role grants and which Put Message accepts.
    let send_role = if worker {
        Role::StorageQueueDataMessageUpdater
    } else {
        Role::StorageQueueDataMessageSender
    };
    let sent = checks.record(
        format!("send to queue {queue}"),
        sent,
        (send_role, scope),
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
            format!("receive and delete messages from queue {queue}"),
            deleted,
            (Role::StorageQueueDataMessageProcessor, scope),
            "the probe was deleted (messages/process: the right to receive and to complete)",
        );
    } else {
        // Best effort: an identity that may only send leaves the probe to expire unseen.
        let _ = call(client.delete_message(&id, &receipt, None)).await;
    }
}

/// Writes, reads and deletes a probe blob whose name is neither a code nor `keys.json`; a
/// refusal names Storage Blob Data Contributor on `scope`.
pub(super) async fn probe_container(
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
