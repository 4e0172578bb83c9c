//! The `code-issued` message: built as a versioned envelope and sent to Queue Storage with the
//! app's Entra identity (no key anywhere).

use azure_core::credentials::TokenCredential;
use azure_core::http::StatusCode;
use azure_storage_queue::models::QueueMessage;
use azure_storage_queue::{QueueClient, QueueClientOptions};
use shared_auth::credential::error_chain;
use shared_auth::envelope::{CodeEnvelope, MessageEncoding};
use shared_auth::transport::azure_client_options;
use std::sync::{Arc, RwLock};

/// Why a message was not sent, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// Whether the queue answers with our token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueHealth {
    /// Not probed yet.
    Unknown,
    /// The service answered and accepted the token.
    Reachable,
    /// It did not; why.
    Unreachable(String),
}

/// The outgoing queue.
#[derive(Clone)]
pub struct CodeQueue {
    client: Arc<QueueClient>,
    encoding: MessageEncoding,
    health: Arc<RwLock<QueueHealth>>,
    last_send_error: Arc<RwLock<Option<String>>>,
}

fn describe(error: &azure_core::Error) -> String {
    match error.http_status() {
        Some(StatusCode::Forbidden) => "the queue refused the request (AuthorizationPermissionMismatch): the identity needs Storage Queue Data Message Sender on the queue".into(),
        Some(StatusCode::Unauthorized) => "the queue did not accept the token".into(),
        Some(StatusCode::NotFound) => "the queue does not exist".into(),
        Some(status) => format!("the queue answered {}", u16::from(status)),
        None => format!("the queue could not be reached: {}", error_chain(error)),
    }
}

impl CodeQueue {
    /// A sender to `url` with `credential` through the shared `http` client.
    pub fn new(
        url: reqwest::Url,
        credential: Arc<dyn TokenCredential>,
        http: &reqwest::Client,
        encoding: MessageEncoding,
    ) -> azure_core::Result<Self> {
        let client = QueueClient::new(
            url,
            Some(credential),
            Some(QueueClientOptions {
                client_options: azure_client_options(http),
                ..Default::default()
            }),
        )?;
        Ok(Self {
            client: Arc::new(client),
            encoding,
            health: Arc::new(RwLock::new(QueueHealth::Unknown)),
            last_send_error: Arc::default(),
        })
    }

    /// Sends one envelope; returns once Queue Storage has it durably.
    #[tracing::instrument(name = "queue.send code-issued", skip_all, fields(otel.kind = "producer", message.id = %envelope.id))]
    pub async fn send(&self, envelope: &CodeEnvelope) -> Result<(), QueueError> {
        let message = QueueMessage {
            message_text: Some(envelope.encode(self.encoding)),
        };
        let content = message
            .try_into()
            .map_err(|e: azure_core::Error| QueueError(e.to_string()))?;
        let result = self.client.send_message(content, None).await;
        let mut last = self
            .last_send_error
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                *last = None;
                Ok(())
            }
            Err(e) => {
                let reason = describe(&e);
                *last = Some(reason.clone());
                Err(QueueError(reason))
            }
        }
    }

    /// Asks the queue service for the queue's properties: any answer that accepts the token
    /// (including 403 for a sender, which may not read properties) means reachable.
    pub async fn probe(&self) -> QueueHealth {
        let health = match self.client.get_properties(None).await {
            Ok(_) => QueueHealth::Reachable,
            Err(e) if e.http_status() == Some(StatusCode::Forbidden) => QueueHealth::Reachable,
            Err(e) => QueueHealth::Unreachable(describe(&e)),
        };
        *self.health.write().unwrap_or_else(|p| p.into_inner()) = health.clone();
        health
    }

    /// The last probe's result.
    pub fn health(&self) -> QueueHealth {
        self.health
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The last send failure, cleared by a successful send.
    pub fn last_send_error(&self) -> Option<String> {
        self.last_send_error
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Probes at start and then periodically (quickly while unreachable).
    pub fn spawn_prober(&self) -> tokio::task::JoinHandle<()> {
        let queue = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = match queue.probe().await {
                    QueueHealth::Reachable => std::time::Duration::from_secs(30),
                    _ => std::time::Duration::from_secs(1),
                };
                tokio::time::sleep(wait).await;
            }
        })
    }
}
