//! The `code-issued` message: built as a versioned envelope and sent to Queue Storage with the
//! app's Entra identity (no key anywhere). Readiness here means "can send": every send's outcome
//! counts. A readiness probe (a short-lived hidden message the worker deletes unread) proves the
//! Message Sender role and a storage that answers in time at start, and again every second while
//! sends fail; a queue that takes messages costs no probe, so an idle system leaves
//! `code-requests` empty and KEDA can scale the worker to zero.

use azure_core::credentials::TokenCredential;
use azure_storage_queue::models::{QueueClientSendMessageOptions, QueueMessage};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use codes::envelope::{CodeEnvelope, MessageEncoding, probe_text};

use shared_auth::azure_error::{AzureCall, AzureError, resource_name};
use shared_auth::{CheckState, Health};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a readiness probe may take before the queue counts as stalled.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a queue that cannot take messages is probed again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A probe lives this long in the queue, hidden for all but its last second: a stopped worker
/// never finds a backlog of them, and KEDA's count (hidden messages included) sees one for two
/// seconds at most, so a main-app start does not wake a worker scaled to zero.
const PROBE_TTL_SECONDS: i32 = 2;

/// The role this app needs on the queue to send.
pub const SENDER_ROLE: &str = shared_auth::role_names::QUEUE_MESSAGE_SENDER;

/// Why a message was not sent; the Display is the operator's text (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue answered with an error, or could not be reached.
    #[error(transparent)]
    Refused(AzureError),
    /// The queue did not answer before the deadline.
    #[error(transparent)]
    Timeout(AzureError),
}

/// Options of a [`CodeQueue`].
#[derive(Debug, Clone, Default)]
pub struct CodeQueueOptions {
    /// The Azure SDK's client options: `azure_client_options(&http)` sends every request through
    /// the shared HTTP client (the project's timeouts, trusted CAs and Azure retry policy); the
    /// default is the SDK's own transport.
    pub client_options: azure_core::http::ClientOptions,
    /// How envelopes are written to the queue (base64 unless told otherwise).
    pub encoding: MessageEncoding,
}

/// The outgoing queue.
#[derive(Clone)]
pub struct CodeQueue {
    client: Arc<QueueClient>,
    encoding: MessageEncoding,
    /// Pending until a send or probe answers; passing while the last one succeeded; failing with
    /// why (naming the missing role when that is the cause) after it failed.
    health: Health,
}

impl CodeQueue {
    /// A sender to `url` with `credential`.
    pub fn new(
        url: reqwest::Url,
        credential: Arc<dyn TokenCredential>,
        options: Option<CodeQueueOptions>,
    ) -> azure_core::Result<Self> {
        let options = options.unwrap_or_default();
        let client = QueueClient::new(
            url,
            Some(credential),
            Some(QueueClientOptions {
                client_options: options.client_options,
                ..Default::default()
            }),
        )?;
        Ok(Self {
            client: Arc::new(client),
            encoding: options.encoding,
            health: Health::new(|state| match state {
                CheckState::Failing(reason) => {
                    tracing::warn!(reason = %reason, "readiness: cannot send to the queue");
                }
                _ => tracing::info!("readiness: the queue takes messages"),
            }),
        })
    }

    /// Sending to this queue, for errors: a 403 names [`SENDER_ROLE`] on it.
    fn send_call(&self) -> AzureCall {
        let queue = format!("queue {}", resource_name(self.client.url()));
        AzureCall::new("send a message to", queue.clone()).needs_role(SENDER_ROLE, queue)
    }

    /// Sends one envelope; returns once Queue Storage has it durably, or fails at `deadline`.
    #[tracing::instrument(name = "queue.send code-issued", skip_all, fields(otel.kind = "producer", message.id = %envelope.id))]
    pub async fn send(&self, envelope: &CodeEnvelope, deadline: Instant) -> Result<(), QueueError> {
        self.send_text(envelope.encode(self.encoding), None, deadline)
            .await
    }

    async fn send_text(
        &self,
        text: String,
        options: Option<QueueClientSendMessageOptions<'_>>,
        deadline: Instant,
    ) -> Result<(), QueueError> {
        let content = QueueMessage {
            message_text: Some(text),
        }
        .try_into()
        .map_err(|e: azure_core::Error| QueueError::Refused(self.send_call().failed(&e)))?;
        let budget = deadline.saturating_duration_since(Instant::now());
        let sent =
            tokio::time::timeout_at(deadline, self.client.send_message(content, options)).await;
        let outcome = match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(QueueError::Refused(self.send_call().failed(&e))),
            Err(_) => Err(QueueError::Timeout(self.send_call().timed_out(budget))),
        };
        self.health.note(outcome.as_ref().map(drop));
        outcome
    }

    /// Sends one readiness probe (hidden until its last second, then expired), bounded by
    /// [`PROBE_TIMEOUT`]; the outcome updates [`CodeQueue::health`].
    pub async fn probe(&self) -> CheckState {
        let options = QueueClientSendMessageOptions {
            visibility_timeout: Some(PROBE_TTL_SECONDS - 1),
            message_time_to_live: Some(PROBE_TTL_SECONDS),
            ..Default::default()
        };
        let _ = self
            .send_text(
                probe_text(self.encoding),
                Some(options),
                Instant::now() + PROBE_TIMEOUT,
            )
            .await;
        self.health()
    }

    /// What the last send or probe showed.
    pub fn health(&self) -> CheckState {
        self.health.get()
    }

    /// Probes at start, then every [`RETRY_INTERVAL`] while the last send or probe failed.
    pub fn spawn_prober(&self) -> tokio::task::JoinHandle<()> {
        let queue = self.clone();
        let probe = move || {
            let queue = queue.clone();
            async move { drop(queue.probe().await) }
        };
        self.health.spawn_prober(RETRY_INTERVAL, probe)
    }
}
