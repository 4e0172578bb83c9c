//! The consumer loop, with semantics at least as good as the Azure Functions queue trigger:
//! batches, fetching again when in-flight work falls to half, exponential idle back-off with
//! jitter (reset by a message), visibility renewal while a handler works, delete only after
//! success, a failed message visible again, poison after the last allowed delivery (or at once
//! when undecodable), and a drain on shutdown that never deletes unfinished work. Beyond the
//! Functions host: while the ledger fails, messages are kept, not retried into poison
//! ([`crate::hold`]).

use crate::config::{MIN_POLL_INTERVAL, Settings};
use crate::handler::{CodeHandler, Outcome};
use crate::hold::LedgerHealth;
use crate::polling::{jittered, next_idle};
use crate::{PROCESSOR_ROLE, SENDER_ROLE, UPDATER_ROLE, queue_call};
use azure_core::http::headers::HeaderName;
use azure_storage_queue::QueueClient;
use azure_storage_queue::models::{
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions, QueueMessage, ReceivedMessage,
};
use codes::ledger::LedgerError;
use codes::{CodeEnvelope, Incoming};
use parking_lot::Mutex;
use service_kit::telemetry::{continue_trace, trace_id};
use shared_auth::{CheckState, Health};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Counters, exposed at `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages handled and deleted.
    pub processed: AtomicU64,
    /// Failed attempts made visible again for another try.
    pub retried: AtomicU64,
    /// Messages moved to the poison queue.
    pub poisoned: AtomicU64,
    /// Expired ledger records removed by the sweep.
    pub swept: AtomicU64,
}

/// The worker: the queue, the poison queue, the handler, the settings.
#[derive(Clone)]
pub struct Worker {
    queue: Arc<QueueClient>,
    poison: Arc<QueueClient>,
    handler: CodeHandler,
    settings: Arc<Settings>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Whether receiving works: pending until the first receive answers.
    status: Health,
    /// Whether the ledger answers.
    ledger: Arc<LedgerHealth>,
}

const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");

impl Worker {
    /// A worker over `queue` and `poison` with `handler`.
    pub fn new(
        queue: Arc<QueueClient>,
        poison: Arc<QueueClient>,
        handler: CodeHandler,
        settings: Settings,
    ) -> Self {
        Self {
            queue,
            poison,
            handler,
            settings: Arc::new(settings),
            stats: Arc::default(),
            status: Health::new(|state| match state {
                CheckState::Failing(reason) => {
                    tracing::error!(reason = %reason, "receiving from the queue failed");
                }
                _ => tracing::info!("receiving from the queue works"),
            }),
            ledger: Arc::default(),
        }
    }

    /// Whether the ledger answers (for `/readyz`).
    pub fn ledger_state(&self) -> CheckState {
        self.ledger.state()
    }

    /// Whether receiving works (for `/readyz`).
    pub fn status(&self) -> CheckState {
        self.status.get()
    }

    /// Consumes until `shutdown` turns true, then lets in-flight work finish within the grace
    /// period; work still running then is abandoned undeleted, to reappear after its visibility
    /// timeout.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let batch = self.settings.batch_size as usize;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        let mut idle = MIN_POLL_INTERVAL;
        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            // Fetch again only when in-flight work has fallen to half the batch.
            if in_flight.load(Ordering::SeqCst) > batch / 2 {
                tokio::select! {
                    _ = finished.notified() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            // While the ledger fails, receive only at the pace held messages are retried.
            if let Some(pause) = self.ledger.receive_pause() {
                tokio::select! {
                    () = self.ledger.wait_or_answer(pause) => {}
                    _ = shutdown.changed() => continue,
                }
            }
            let wanted = batch - in_flight.load(Ordering::SeqCst);
            let received = self
                .queue
                .receive_messages(Some(QueueClientReceiveMessagesOptions {
                    number_of_messages: Some(wanted as i32),
                    visibility_timeout: Some(self.settings.visibility_timeout.as_secs() as i32),
                    ..Default::default()
                }))
                .await
                .and_then(|r| r.into_model());
            let call = || queue_call(&self.queue, "receive messages from", PROCESSOR_ROLE);
            self.status
                .note(received.as_ref().map(drop).map_err(|e| call().failed(e)));
            let messages = received
                .ok()
                .and_then(|list| list.items)
                .unwrap_or_default();
            if messages.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(jittered(idle)) => {}
                    _ = shutdown.changed() => {}
                }
                idle = next_idle(idle, self.settings.max_poll_interval);
                continue;
            }
            idle = MIN_POLL_INTERVAL;
            for message in messages {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let (worker, in_flight, finished, stop) = (
                    self.clone(),
                    in_flight.clone(),
                    finished.clone(),
                    shutdown.clone(),
                );
                tasks.spawn(async move {
                    worker.process(message, stop).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    finished.notify_one();
                });
            }
        }
        let pending = tasks.len();
        tracing::info!(
            in_flight = pending,
            "stopping: no new messages; finishing in-flight work"
        );
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = tasks.len(),
                "grace period over: unfinished messages are left to reappear"
            );
            tasks.abort_all();
        }
    }

    /// Handles one message: decode, handle with visibility renewal (kept through a ledger
    /// outage), then delete, retry or poison.
    async fn process(&self, message: ReceivedMessage, shutdown: watch::Receiver<bool>) {
        let id = message.message_id.clone().unwrap_or_default();
        let receipt = Arc::new(Mutex::new(message.pop_receipt.clone().unwrap_or_default()));
        let text = message.message_text.clone().unwrap_or_default();
        let dequeue_count = message.dequeue_count.unwrap_or(1);
        let span = tracing::info_span!(
            "queue.process",
            otel.kind = "consumer",
            message.id = %id,
            message.dequeue_count = dequeue_count,
            message.kind = tracing::field::Empty,
            envelope.id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let envelope = match Incoming::decode(&text, self.settings.encoding) {
            Ok(Incoming::Code(envelope)) => envelope,
            Ok(Incoming::Probe) => {
                // A producer's readiness probe: proof enough that it arrived; nothing to do.
                let current = receipt.lock().clone();
                if let Err(e) = self.queue.delete_message(&id, &current, None).await {
                    let reason =
                        queue_call(&self.queue, "delete a readiness probe from", PROCESSOR_ROLE)
                            .failed(&e);
                    tracing::debug!(reason = %reason, "readiness probe not deleted; it expires by itself");
                }
                return;
            }
            Err(e) => {
                let reason = format!("undecodable: {e}");
                let poisoned = self.poison(&id, &receipt, &text, dequeue_count, &reason);
                poisoned.instrument(span).await;
                return;
            }
        };
        if let Some(parent) = &envelope.traceparent {
            continue_trace(&span, parent);
        }
        if let Some(trace) = trace_id(&span) {
            span.record("trace_id", trace.as_str());
        }
        span.record("message.kind", format!("{:?}", envelope.kind).as_str());
        // The envelope's id outlives the queue's: a poisoned copy gets a new message id, so the
        // operator finds this message's log lines by this one (`keyless queue peek --poison`).
        span.record("envelope.id", envelope.id.to_string().as_str());
        async {
            let outcome = tokio::select! {
                outcome = self.handle_through_outages(&envelope, shutdown) => outcome,
                never = self.renew_visibility(&id, &receipt) => match never {},
            };
            let Some(outcome) = outcome else {
                tracing::info!("stopping while the ledger fails: the message is left to reappear");
                return;
            };
            match outcome {
                Ok(outcome) => {
                    let current = receipt.lock().clone();
                    match self.queue.delete_message(&id, &current, None).await {
                        Ok(_) => {
                            self.stats.processed.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(?outcome, code_kind = ?envelope.kind, "message handled");
                        }
                        Err(e) => {
                            let reason = queue_call(&self.queue, "delete a handled message from", PROCESSOR_ROLE).failed(&e);
                            tracing::warn!(reason = %reason, "handled but not deleted: it will be delivered again (handling is idempotent)");
                        }
                    }
                }
                Err(reason) if dequeue_count >= self.settings.max_dequeue_count => {
                    let reason = format!("failed {dequeue_count} times; last error: {reason}");
                    self.poison(&id, &receipt, &text, dequeue_count, &reason).await;
                }
                Err(reason) => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(reason = %reason, dequeue_count, "handling failed; the message will be retried");
                    let current = receipt.lock().clone();
                    let delay = self.settings.retry_delay.as_secs() as i32;
                    if let Err(e) = self.queue.update_message(&id, &current, delay, None).await {
                        let reason = queue_call(&self.queue, "make a failed message visible again in", UPDATER_ROLE).failed(&e);
                        tracing::warn!(reason = %reason, "could not make the message visible early; it reappears after its visibility timeout");
                    }
                }
            }
        }
        .instrument(span)
        .await;
    }

    /// Handles `envelope`, trying again while the ledger fails, however long (the message is
    /// kept hidden meanwhile); `None` when the worker stops first.
    async fn handle_through_outages(
        &self,
        envelope: &CodeEnvelope,
        mut shutdown: watch::Receiver<bool>,
    ) -> Option<Result<Outcome, LedgerError>> {
        loop {
            match self.handler.handle(envelope).await {
                Err(e) if e.is_dependency_failure() => {
                    let wait = self.ledger.failed(&e);
                    tracing::debug!(reason = %e, wait_ms = wait.as_millis() as u64, "ledger failing; the message is kept");
                    tokio::select! {
                        () = self.ledger.wait_or_answer(wait) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return None,
                    }
                }
                outcome => {
                    if outcome.is_ok() {
                        self.ledger.answered();
                    }
                    return Some(outcome);
                }
            }
        }
    }

    /// Extends the message's visibility every half timeout while its handler runs; never returns
    /// (after a refused renewal it just waits for the handler).
    async fn renew_visibility(&self, id: &str, receipt: &Mutex<String>) -> Infallible {
        let timeout = self.settings.visibility_timeout;
        loop {
            tokio::time::sleep(timeout / 2).await;
            let current = receipt.lock().clone();
            match self
                .queue
                .update_message(id, &current, timeout.as_secs() as i32, None)
                .await
            {
                Ok(response) => {
                    if let Some(new) = response.headers().get_optional_string(&POP_RECEIPT) {
                        *receipt.lock() = new;
                    }
                    tracing::debug!("visibility renewed");
                }
                Err(e) => {
                    let reason =
                        queue_call(&self.queue, "renew a message's visibility in", UPDATER_ROLE)
                            .failed(&e);
                    tracing::warn!(reason = %reason, "visibility renewal refused; the message may reappear while it is handled (handling is idempotent)");
                    return std::future::pending::<Infallible>().await;
                }
            }
        }
    }

    /// Moves a message to the poison queue exactly as it came (what the Functions host does: any
    /// message that fitted the main queue fits there), then deletes it from the main queue. The
    /// reason and the delivery count go to the log with the message id.
    async fn poison(
        &self,
        id: &str,
        receipt: &Mutex<String>,
        text: &str,
        dequeue_count: i64,
        reason: &str,
    ) {
        let sent = async {
            let content = QueueMessage {
                message_text: Some(text.to_owned()),
            }
            .try_into()?;
            let options = QueueClientSendMessageOptions {
                message_time_to_live: Some(-1),
                ..Default::default()
            };
            self.poison.send_message(content, Some(options)).await
        }
        .await;
        if let Err(e) = sent {
            // Not deleted: it comes back and is poisoned on a later delivery.
            let reason = queue_call(&self.poison, "move a message to", SENDER_ROLE).failed(&e);
            tracing::error!(reason = %reason, "could not write to the poison queue");
            return;
        }
        let current = receipt.lock().clone();
        if let Err(e) = self.queue.delete_message(id, &current, None).await {
            let reason = queue_call(
                &self.queue,
                "delete a poisoned message from",
                PROCESSOR_ROLE,
            )
            .failed(&e);
            tracing::warn!(reason = %reason, "poisoned but not deleted");
        }
        self.stats.poisoned.fetch_add(1, Ordering::Relaxed);
        let envelope_id = CodeEnvelope::decode(text, self.settings.encoding)
            .map(|e| e.id.to_string())
            .unwrap_or_default();
        tracing::warn!(
            reason = %reason,
            dequeue_count,
            message.id = %id,
            envelope.id = %envelope_id,
            poison_queue = %self.poison.url().path(),
            "message moved to the poison queue unchanged"
        );
    }
}
